#!/usr/bin/env bash
# The PRIMASK lock of port/cortex-m, cross-compiled for Cortex-M with the
# library's strict warnings: its enter reads PRIMASK (mrs) and then disables
# interrupts (cpsid i) before it writes the state; its exit writes the state
# and then restores PRIMASK (msr) last; it calls nothing outside itself but
# the library's ABI-guard symbol. And, inlined at -O2 into a function that
# counts inside the critical section, no store is moved before the cpsid or
# after the msr (what the asm statements' "memory" clobbers guarantee). Built with arm-none-eabi-gcc for M3 (the
# required case), M0+ (ARMv6-M) and M4, and with clang for M3 when clang is
# installed. A missing cross toolchain fails the test (scripts/deps.sh test
# installs it); it is not skipped.
# usage: cortex_m_primask.sh SOURCE_DIR
set -eu
src=$1
for tool in arm-none-eabi-gcc arm-none-eabi-objdump arm-none-eabi-nm; do
    if ! command -v "$tool" >/dev/null; then
        echo "cortex_m_primask: FAILED: $tool not found; install gcc-arm-none-eabi and binutils-arm-none-eabi (scripts/deps.sh test, as root)" >&2
        exit 1
    fi
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

flags=(-mthumb -Os -std=c11 -ffreestanding -Wall -Wextra -Werror -pedantic -Wconversion -Wshadow
       -Wstrict-prototypes -Wmissing-prototypes -Wcast-align -Wundef
       -I"$src/include" -I"$src/port/cortex-m" -c "$src/port/cortex-m/primask_lock.c")
builds=()
for cpu in cortex-m3 cortex-m0plus cortex-m4; do
    arm-none-eabi-gcc -mcpu=$cpu "${flags[@]}" -o "$tmp/gcc-$cpu.o"
    builds+=("gcc-$cpu")
done
if command -v clang >/dev/null; then
    clang --target=arm-none-eabi -mcpu=cortex-m3 "${flags[@]}" -o "$tmp/clang-cortex-m3.o"
    builds+=(clang-cortex-m3)
fi

fail=0
bad() { echo "cortex_m_primask: $1: $2" >&2; fail=1; }
# body OBJ FUNCTION: the function's instructions, one per line.
body() {
    arm-none-eabi-objdump -d --no-show-raw-insn "$1" |
        awk -v f="<$2>:" '$2 == f { on = 1; next } on && NF == 0 { exit } on { print }'
}
for build in "${builds[@]}"; do
    obj=$tmp/$build.o
    enter=$(body "$obj" pk_cortex_m_primask_enter)
    exit_=$(body "$obj" pk_cortex_m_primask_exit)
    [ -n "$enter" ] || bad "$build" "no pk_cortex_m_primask_enter"
    [ -n "$exit_" ] || bad "$build" "no pk_cortex_m_primask_exit"
    # enter: mrs rN, PRIMASK, then cpsid i, and no store before cpsid.
    mrs=$(grep -niE 'mrs[[:space:]]+r[0-9]+, *primask' <<<"$enter" | head -n 1 | cut -d: -f1)
    cpsid=$(grep -niE 'cpsid[[:space:]]+i' <<<"$enter" | head -n 1 | cut -d: -f1)
    if [ -z "$mrs" ] || [ -z "$cpsid" ]; then
        bad "$build" "enter lacks mrs ..., primask or cpsid i:"$'\n'"$enter"
    elif [ "$mrs" -gt "$cpsid" ]; then
        bad "$build" "enter disables interrupts before reading PRIMASK:"$'\n'"$enter"
    elif head -n "$cpsid" <<<"$enter" | grep -qE $'\tstr'; then
        bad "$build" "enter writes memory before cpsid i:"$'\n'"$enter"
    fi
    # exit: msr primask, rN, and no store after it.
    msr=$(grep -niE 'msr[[:space:]]+primask, *r[0-9]+' <<<"$exit_" | head -n 1 | cut -d: -f1)
    if [ -z "$msr" ]; then
        bad "$build" "exit lacks msr primask, ...:"$'\n'"$exit_"
    elif tail -n "+$msr" <<<"$exit_" | grep -qE $'\tstr'; then
        bad "$build" "exit writes memory after restoring PRIMASK:"$'\n'"$exit_"
    fi
    undefined=$(arm-none-eabi-nm -u "$obj" | awk '{print $2}' | grep -vxE 'pk_abi_(release|debug)_build' || true)
    [ -z "$undefined" ] || bad "$build" "calls outside itself: $undefined"
done
# The critical section inlined: every store between cpsid i and msr primask
# (or the return of the path that leaves interrupts disabled).
cat >"$tmp/probe.c" <<'PROBE'
#include "primask_lock.c"
unsigned pk_probe_counter;
void pk_probe(pk_cortex_m_primask_state *st);
void pk_probe(pk_cortex_m_primask_state *st)
{
    pk_cortex_m_primask_enter(st);
    pk_probe_counter++;
    pk_cortex_m_primask_exit(st);
}
PROBE
probe_flags=("${flags[@]}")
probe_flags[${#probe_flags[@]}-1]=$tmp/probe.c
probe_flags=("${probe_flags[@]/-Os/-O2}")
probes=()
arm-none-eabi-gcc -mcpu=cortex-m3 "${probe_flags[@]}" -o "$tmp/probe-gcc.o"
probes+=(gcc)
if command -v clang >/dev/null; then
    clang --target=arm-none-eabi -mcpu=cortex-m3 "${probe_flags[@]}" -o "$tmp/probe-clang.o"
    probes+=(clang)
fi
for build in "${probes[@]}"; do
    probe=$(body "$tmp/probe-$build.o" pk_probe)
    grep -qiE 'cpsid' <<<"$probe" && grep -qiE 'msr[[:space:]]+primask' <<<"$probe" ||
        bad "probe-$build" "pk_probe lacks cpsid i or msr primask:"$'\n'"$probe"
    outside=$(awk 'BEGIN { open = 1 }
        tolower($0) ~ /cpsid/ { open = 0 }
        tolower($0) ~ /msr[ \t]+primask/ { open = 1; next }
        $0 ~ /\t(bx|pop)/ { open = 0 }
        open && $0 ~ /\tstr/ { print }' <<<"$probe")
    [ -z "$outside" ] || bad "probe-$build" "stores outside the critical section: $outside"$'\n'"$probe"
done
[ "$fail" -eq 0 ] || exit 1
echo "cortex_m_primask: ${builds[*]}: mrs/cpsid i before the state is written, msr primask after; nothing external;" \
    "inlined (${probes[*]} -O2): no store moved out of the critical section"
