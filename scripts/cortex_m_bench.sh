#!/usr/bin/env bash
# cortex_m_bench.sh [--no-trace] [OUT_DIR]: what each allocator costs on a
# Cortex-M3, in two tables (Markdown, as in the README): make
# bench-cortex-m, and make bench, run it. With --no-trace (the cortex-m stage
# of make test, scripts/cortex_m.sh), the first table only, and the measure
# image built but not run: what CI does not build rots. Built as scripts/cortex_m.sh builds its images
# (scripts/cortex_m_env.sh: -Os, -ffunction-sections -fdata-sections,
# --gc-sections), in OUT_DIR (default build/cortex-m-bench).
#
# 1. Code size: tests/cortex-m/size_probe.c, one minimal image per allocator
#    (initialise it on a static buffer, one alloc and one free or reset
#    through its own functions) and a baseline with the same start-up and
#    buffer and no allocator, release and debug (PK_DEBUG=1). Flash is
#    text + data as arm-none-eabi-size counts them (code, constants, .data's
#    initial values), RAM is .data + .bss (the buffer, in .dma_ram, and the
#    stack are not counted); each less the baseline's. Each probe is run on
#    QEMU and must exit 0. About 10 s.
# 2. Instructions per call: tests/cortex-m/measure.c (release) on
#    qemu-system-arm -M mps2-an385 with -singlestep -d exec,nochain, whose
#    trace of every instruction executed goes through a pipe to
#    scripts/cortex_m_count.awk, which counts each call of the allocator's
#    functions (see there). The counter is checked first on a loop of known
#    length (2n + 1 instructions for n = 1 and 1000): the script fails if
#    it counts otherwise. About 30 s.
# Exits 1 if a build, a probe, the measure run or the counter's check fails.
set -u
cd "$(dirname "$0")/.." || exit 2
. scripts/cortex_m_env.sh
trace=1
if [ "${1-}" = --no-trace ]; then
    trace=0
    shift
fi
out=${1:-build/cortex-m-bench}

PROBES="baseline pool atomic_pool classes slab buddy heap fit arena"
TRACE_TIMEOUT=300 # s; the traced run takes about 30

for program in arm-none-eabi-gcc qemu-system-arm timeout awk; do
    if ! command -v "$program" >/dev/null; then
        echo "cortex_m_bench.sh: $program not found; run scripts/deps.sh bench (as root)" >&2
        exit 2
    fi
done

fail() {
    echo "cortex_m_bench.sh: $*" >&2
    exit 1
}

# objects IMAGE DIR: the library and the port for IMAGE in DIR/obj.
objects() {
    local image=$1 dir=$2 src
    configure "$image"
    rm -rf "$dir"
    mkdir -p "$dir/obj"
    base=("${arch[@]}" "${common[@]}" "${defines[@]}" -I"$port")
    for src in $lib_sources; do
        compile "$src" "$dir/obj/$(basename "$src" .c).o" "${base[@]}" -DPK_BUILDING_LIBRARY -Isrc "${lib_warnings[@]}"
    done
    for src in "${port_sources[@]}"; do
        compile "$port/$src" "$dir/obj/port_$(basename "$src").o" "${base[@]}" "${lib_warnings[@]}"
    done
    wait
    if compgen -G "$dir/obj/*.failed" >/dev/null; then
        cat "$dir"/obj/*.log >&2
        fail "$image: the library or the port did not build"
    fi
}

# image DIR NAME SOURCE FLAGS...: DIR/NAME.elf from SOURCE and DIR/obj.
image() {
    local dir=$1 name=$2 src=$3
    shift 3
    "$tool-gcc" "${base[@]}" -Itests "${test_warnings[@]}" "$@" -c "$src" -o "$dir/$name.o" \
        >"$dir/$name.log" 2>&1 &&
        "$tool-gcc" "${arch[@]}" -nostdlib -T "$port/$script" -Wl,--gc-sections -o "$dir/$name.elf" \
            "$dir"/obj/*.o "$dir/$name.o" "${libs[@]}" >>"$dir/$name.log" 2>&1 ||
        { cat "$dir/$name.log" >&2; fail "$dir/$name.elf did not build"; }
}

start=$SECONDS

# 1. Code size.
declare -A flash ram
for variant in release debug; do
    image_name=cortex-m3
    [ "$variant" = debug ] && image_name=cortex-m3-debug
    dir=$out/size-$variant
    objects "$image_name" "$dir"
    for probe in $PROBES; do
        image "$dir" "$probe" tests/cortex-m/size_probe.c -DPK_PROBE="PK_PROBE_${probe^^}"
        timeout 10 "${board[@]}" -kernel "$dir/$probe.elf" </dev/null >"$dir/$probe.run" 2>&1 ||
            { cat "$dir/$probe.run" >&2; fail "the $variant $probe probe failed on QEMU (status $?)"; }
        # Flash: what is loaded there (.data's initial values included);
        # RAM: .data and .bss (not the stack, nor the buffer in .dma_ram).
        read -r f r < <("$tool-size" -A "$dir/$probe.elf" | awk '
            $1 ~ /^\.(vectors|text|rodata|ARM\.exidx|data)$/ { f += $2 }
            $1 ~ /^\.(data|bss)$/ { r += $2 }
            END { print f, r }')
        flash[$variant,$probe]=$f ram[$variant,$probe]=$r
    done
done
size_seconds=$((SECONDS - start))

echo "Code size of each allocator alone on Cortex-M3 (arm-none-eabi-gcc $("$tool-gcc" -dumpversion), -Os,"
echo "--gc-sections): bytes of flash (code and constants) and RAM (its static state), release"
echo "and debug (PK_DEBUG=1), less a baseline image with the same start-up and no allocator."
echo "An image initialises the allocator on a static buffer (not counted) and makes one"
echo "allocation and one free (the arena: a reset) through its own functions."
echo
echo "| allocator | flash, release | RAM, release | flash, debug | RAM, debug |"
echo "| --- | ---: | ---: | ---: | ---: |"
for probe in $PROBES; do
    [ "$probe" = baseline ] && continue
    label=${probe//_/ }
    [ "$probe" = slab ] && label="slab (with its buddy page source)"
    printf '| %s | %d | %d | %d | %d |\n' "$label" \
        $((flash[release,$probe] - flash[release,baseline])) $((ram[release,$probe] - ram[release,baseline])) \
        $((flash[debug,$probe] - flash[debug,baseline])) $((ram[debug,$probe] - ram[debug,baseline]))
done
echo "(The baseline image: ${flash[release,baseline]} B of flash, ${ram[release,baseline]} B of RAM besides its stack;"
echo "the size table took $size_seconds s.)"
echo

# 2. Instructions per call.
count_start=$SECONDS
dir=$out/size-release # the release library's objects
image "$dir" measure tests/cortex-m/measure.c
symbols=$out/measure.symbols
# The functions of measure.c, each as the counter must see it; known_loop,
# the loop it is checked on, is counted like the allocators' code.
declare -A mine
while read -r _ type name; do
    [[ $type == [tT] && $name != \$* && $name != known_loop ]] && mine[$name]=1
done < <("$tool-nm" --defined-only "$dir/measure.o")
while read -r address size type name; do
    [ -n "${mine[$name]-}" ] || continue
    case $name in
        measure_*) kind=wrapper ;;
        phase_*) kind=phase ;;
        *) kind=home ;;
    esac
    echo "$kind $name $((16#$address & ~1)) $((16#$size))" # nm shows a Thumb function's address + 1
done < <("$tool-nm" -S --defined-only "$dir/measure.elf" | awk 'NF == 4 && $3 ~ /^[tT]$/') >"$symbols"
[ "$(grep -c '^wrapper' "$symbols")" -ge 17 ] || fail "the measure image's wrappers are not all in $symbols"

[ "$trace" -eq 1 ] || exit 0
configure cortex-m3
counts=$out/measure.counts
set -o pipefail
timeout "$TRACE_TIMEOUT" "${board[@]}" -kernel "$dir/measure.elf" -singlestep -d exec,nochain -D /dev/stdout \
    </dev/null 2>"$out/measure.run" | awk -f scripts/cortex_m_count.awk "$symbols" - >"$counts" ||
    { cat "$out/measure.run" >&2; fail "the traced run of the measure image failed"; }
set +o pipefail
grep -q '^measure: done' "$out/measure.run" || { cat "$out/measure.run" >&2; fail "the measure image failed"; }
count_seconds=$((SECONDS - count_start))

# The counter's check: measure_known(1) and measure_known(1000).
known=$(awk '$1 == "known" {printf "%s ", $3}' "$counts")
[ "$known" = "3 2001 " ] || fail "the counter counted '$known' for loops of 3 and 2001 instructions"

declare -A mean worst
while read -r phase name _ m w; do
    mean[$phase,$name]=$m worst[$phase,$name]=$w
done < <(grep -v '^known' "$counts")
# cell PHASE NAME: "mean / max" of the random run.
cell() {
    [ -n "${mean[$1,$2]-}" ] || fail "no count for $2 in the $1 phase"
    printf '%.0f / %d' "${mean[$1,$2]}" "${worst[$1,$2]}"
}
# top NAME: the largest count of NAME in the constructed sequence.
top() {
    [ -n "${worst[worst,$1]-}" ] || fail "no count for $1 in the constructed sequence"
    printf '%d' "${worst[worst,$1]}"
}

echo "Instructions per call on Cortex-M3 (release, -Os; QEMU mps2-an385, every instruction"
echo "traced), the allocator's function and all it calls: mean / max over a random run of"
echo "10,000 operations (a random slot of 64 freed or filled, sizes log-uniform), and the"
echo "max over a sequence built to take its longest path. The counter counted 3 and 2001"
echo "instructions for hand-written loops of 3 and 2001 (checked at every run)."
echo
echo "| allocator | alloc, random | free, random | alloc, constructed | free, constructed | constructed sequence |"
echo "| --- | ---: | ---: | ---: | ---: | --- |"
row() { # allocator label alloc free description
    printf '| %s | %s | %s | %s | %s | %s |\n' "$2" "$(cell random "$3")" "$(cell random "$4")" "$(top "$3")" \
        "$(top "$4")" "$5"
}
row pool pool pool_alloc pool_free "carving a block never used, a pop, a push, the exhausted pool"
row atomic_pool "atomic pool" atomic_pool_alloc atomic_pool_free "uncontended: carving, a pop, a push, the exhausted pool"
row classes classes classes_alloc classes_free "5 classes, fall-through from the first to the last, then through all to none"
row slab "slab (40 B, 4 KiB slabs)" slab_alloc slab_free \
    "a new slab from the buddy (split from 32 KiB), a free that empties it; the shrink giving it back: $(top slab_shrink)"
row buddy "buddy (16 KiB, 16 B blocks)" buddy_alloc buddy_free "the smallest block from a fresh buddy (10 splits), its free (10 merges)"
row heap "heap (TLSF)" heap_alloc heap_free "a split of the one free block; a free merging on both sides, each the only block of its class"
row fit "fit (first fit)" fit_alloc fit_free \
    "first fit past 32 free blocks too small; a free with 32 live blocks to the next free one; a merge on both sides"
row arena "arena (free: reset)" arena_alloc arena_reset "the bump with 4 KiB alignment; the reset"
echo "(The trace took $count_seconds s.)"
