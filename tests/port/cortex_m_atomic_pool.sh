#!/usr/bin/env bash
# The atomic pool is lock-free on ARMv7-M: src/atomic_pool.c cross-compiled
# for Cortex-M3 and M4 with the library's strict warnings uses the packed
# 32-bit head (LDREX/STREX in the code) and calls no __atomic_* or __sync_*
# helper (which would be libatomic's locks). On Cortex-M0+ (ARMv6-M, no
# compare-and-swap) it must refuse to build with its own message, rather than
# fall back to a lock. A missing cross toolchain fails the test.
# usage: cortex_m_atomic_pool.sh SOURCE_DIR
set -eu
src=$1
for tool in arm-none-eabi-gcc arm-none-eabi-objdump arm-none-eabi-nm; do
    if ! command -v "$tool" >/dev/null; then
        echo "cortex_m_atomic_pool: FAILED: $tool not found; install gcc-arm-none-eabi, binutils-arm-none-eabi and libnewlib-arm-none-eabi (scripts/deps.sh test, as root)" >&2
        exit 1
    fi
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

flags=(-mthumb -Os -std=c11 -ffreestanding -Wall -Wextra -Werror -pedantic -Wconversion -Wshadow
       -Wstrict-prototypes -Wmissing-prototypes -Wcast-align -Wundef
       -I"$src/include" -I"$src/src" -c "$src/src/atomic_pool.c")
fail=0
for cpu in cortex-m3 cortex-m4; do
    obj=$tmp/$cpu.o
    if ! arm-none-eabi-gcc -mcpu=$cpu "${flags[@]}" -o "$obj"; then
        echo "cortex_m_atomic_pool: $cpu: does not compile" >&2
        fail=1
        continue
    fi
    helpers=$(arm-none-eabi-nm -u "$obj" | grep -E '__atomic_|__sync_' || true)
    if [ -n "$helpers" ]; then
        echo "cortex_m_atomic_pool: $cpu: not lock-free, calls $helpers" >&2
        fail=1
    fi
    code=$(arm-none-eabi-objdump -d --no-show-raw-insn "$obj")
    for insn in ldrex strex; do
        if ! grep -qw "$insn" <<<"$code"; then
            echo "cortex_m_atomic_pool: $cpu: no $insn in the code" >&2
            fail=1
        fi
    done
    [ "$fail" -eq 0 ] && echo "cortex_m_atomic_pool: $cpu: lock-free (ldrex/strex, no atomic helpers), $(arm-none-eabi-size "$obj" | awk 'NR == 2 {print $1}') bytes of code"
done
if arm-none-eabi-gcc -mcpu=cortex-m0plus "${flags[@]}" -o "$tmp/m0.o" 2>"$tmp/m0.log"; then
    echo "cortex_m_atomic_pool: cortex-m0plus: built, though ARMv6-M has no compare-and-swap" >&2
    fail=1
elif ! grep -q "the atomic pool needs lock-free atomics" "$tmp/m0.log"; then
    echo "cortex_m_atomic_pool: cortex-m0plus: failed without the pool's message:" >&2
    cat "$tmp/m0.log" >&2
    fail=1
fi
exit $fail
