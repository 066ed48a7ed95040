#!/usr/bin/env bash
# cortex_m.sh [OUT_DIR]: poolkit on emulated microcontrollers, with no heap.
# Cross-builds the library (src/ but src/hosted/, PK_HOSTED=0, with the
# library's warnings), the shared driver (tests/driver/) and the test image
# (tests/cortex-m/main.c) with the start-up code, linker script and
# semihosting of port/cortex-m (port/riscv), -ffreestanding -Os, into four
# images in OUT_DIR (default build/cortex-m):
#   cortex-m3        -mcpu=cortex-m3 -mthumb, run on qemu-system-arm -M mps2-an385
#   cortex-m3-debug  the same with PK_DEBUG=1 (the debug layer, freestanding)
#   cortex-m4f       -mcpu=cortex-m4 -mfloat-abi=hard -mfpu=fpv4-sp-d16, on mps2-an386
#   rv32imac         riscv64-unknown-elf-gcc -march=rv32imac -mabi=ilp32, on virt
# For each: the build; an nm check that it links no heap (malloc, free,
# _sbrk, ...) and no stdio; the run, which passes only if QEMU, under
# timeout, exits 0 after the line "N passed, 0 failed" with N the image's
# test count. Then a self-test: four images broken on purpose
# (tests/cortex-m/inject.c: malloc, a failing test, a bad pointer, an
# endless loop) must each be rejected. Prints the image sizes and ends with
# "N passed, N failed", counting each image's own tests, each build, nm check
# and run, and each self-test case, and the build of make bench-cortex-m's
# images (scripts/cortex_m_bench.sh --no-trace, which prints the code-size
# table); exits 1 if anything failed.
set -u
cd "$(dirname "$0")/.." || exit 2
. scripts/cortex_m_env.sh
out=${1:-build/cortex-m}

EXPECTED_TESTS=28 # the tests of tests/cortex-m/main.c: keep in step with it
RUN_TIMEOUT=60    # s; a run takes 2 to 25 (the debug image)
HANG_TIMEOUT=5    # s, for the self-test's endless loop
IMAGES="cortex-m3 cortex-m3-debug cortex-m4f rv32imac"

# Any heap or stdio: the allocation functions and newlib's reentrant forms,
# sbrk, the printf/puts/FILE families and newlib's stdio internals and
# system calls.
forbidden='(_?(malloc|free|calloc|realloc|reallocf|memalign|aligned_alloc|posix_memalign|valloc|pvalloc)(_r)?'
forbidden+='|_?sbrk(_r)?|__malloc_(lock|unlock)'
forbidden+='|_?v?(f|s|sn|as|d)?printf(_r)?|_?i?v?(f|s)?scanf(_r)?|_?f?puts(_r)?|_?f?putc(har)?(_r)?|_?f?getc(har)?(_r)?'
forbidden+='|_?gets(_r)?|_?fgets(_r)?|_?f(write|read|open|close|flush|seek|tell)(_r)?|_?setvbuf(_r)?|_?perror(_r)?'
forbidden+='|__sinit|__sfp|__smakebuf_r|__swsetup_r|__sflush_r|__sfvwrite_r|__srefill_r|__swbuf_r|__sprint_r'
forbidden+='|__sread|__swrite|__sseek|__sclose|_fwalk(_reent)?|_cleanup_r|stdin|stdout|stderr|__sf'
forbidden+='|_write(_r)?|_read(_r)?|_open(_r)?|_close(_r)?|_lseek(_r)?|_fstat(_r)?|_isatty(_r)?)'

passed=0 failed=0
good() { passed=$((passed + 1)); }
bad() { echo "cortex-m: FAIL $*"; failed=$((failed + 1)); }

for tool in arm-none-eabi-gcc qemu-system-arm riscv64-unknown-elf-gcc qemu-system-riscv32 timeout; do
    if ! command -v "$tool" >/dev/null; then
        echo "cortex-m: FAILED: $tool not found; run scripts/deps.sh test (as root)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

# build IMAGE DIR [INJECT FROM]: DIR/image.elf from the library, the driver,
# the test image and the port; messages in DIR/build.log. With INJECT, the
# breakage of that number from tests/cortex-m/inject.c, the library, driver
# and port objects taken from the image built in FROM.
build() {
    local image=$1 dir=$2 inject=${3-} from=${4-} src tests=(tests/driver/driver.c tests/cortex-m/main.c)
    configure "$image"
    rm -rf "$dir"
    mkdir -p "$dir/obj"
    local base=("${arch[@]}" "${common[@]}" "${defines[@]}" -I"$port" "${sysinclude[@]}")
    if [ -n "$inject" ]; then
        cp "$from"/obj/*.o "$dir/obj/" || return 1
        rm -f "$dir/obj/test_main.o"
        base+=(-DPK_CM_INJECT="$inject")
        tests=(tests/cortex-m/main.c tests/cortex-m/inject.c)
    else
        for src in $lib_sources; do
            compile "$src" "$dir/obj/$(basename "$src" .c).o" "${base[@]}" -DPK_BUILDING_LIBRARY -Isrc \
                "${lib_warnings[@]}"
        done
        for src in "${port_sources[@]}"; do
            compile "$port/$src" "$dir/obj/port_$(basename "$src").o" "${base[@]}" "${lib_warnings[@]}"
        done
    fi
    for src in "${tests[@]}"; do
        compile "$src" "$dir/obj/test_$(basename "$src" .c).o" "${base[@]}" -Itests "${test_warnings[@]}"
    done
    wait
    cat "$dir"/obj/*.log >"$dir/build.log"
    compgen -G "$dir/obj/*.failed" >/dev/null && return 1
    "$tool-gcc" "${arch[@]}" -nostdlib -T "$port/$script" -Wl,--gc-sections -Wl,-Map="$dir/image.map" \
        -o "$dir/image.elf" "$dir"/obj/*.o "${libs[@]}" >>"$dir/build.log" 2>&1
}

# heap_symbols ELF: the forbidden symbols the image holds, on one line.
heap_symbols() {
    "$tool-nm" "$1" | awk '{print $NF}' | grep -xE "$forbidden" | sort -u | tr '\n' ' ' | sed 's/ $//'
}

# run DIR TIMEOUT TESTS: runs DIR/image.elf (output in DIR/run.log), which
# must run TESTS tests; sets the counts of its last line, run_status, and
# run_problem, empty if the run passed.
run() {
    local dir=$1 limit=$2 expected=$3 last
    timeout "$limit" "${board[@]}" -kernel "$dir/image.elf" </dev/null >"$dir/run.log" 2>&1
    run_status=$?
    last=$(tail -n 1 "$dir/run.log" | tr -d '\r')
    run_passed=0 run_failed=0 run_problem=
    local counted=0
    if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        run_passed=${BASH_REMATCH[1]} run_failed=${BASH_REMATCH[2]} counted=1
    fi
    if [ "$run_status" -eq 124 ]; then
        run_problem="hung: killed after $limit s"
    elif [ "$counted" -eq 0 ]; then
        run_problem="exit status $run_status without a final count; last line: $last"
    elif [ "$run_failed" -ne 0 ]; then
        run_problem="$run_failed of $((run_passed + run_failed)) tests failed (exit status $run_status)"
    elif [ $((run_passed + run_failed)) -ne "$expected" ]; then
        run_problem="$((run_passed + run_failed)) tests ran, $expected expected"
    elif [ "$run_status" -ne 0 ]; then
        run_problem="exit status $run_status though no test failed"
    fi
}

stage_start=$SECONDS
sizes=()
for image in $IMAGES; do
    start=$SECONDS dir=$out/$image
    if ! build "$image" "$dir"; then
        cat "$dir/build.log"
        bad "$image: build failed (log: $dir/build.log)"
        continue
    fi
    good
    sizes+=("$("$tool-size" "$dir/image.elf" | awk -v n="$image" 'NR == 2 {printf "%-16s %6d %6d %7d", n, $1, $2, $3}')")
    symbols=$(heap_symbols "$dir/image.elf")
    if [ -n "$symbols" ]; then
        bad "$image links a heap or stdio: $symbols"
    else
        good
    fi
    run "$dir" "$RUN_TIMEOUT" "$EXPECTED_TESTS"
    passed=$((passed + run_passed)) failed=$((failed + run_failed))
    if [ -n "$run_problem" ]; then
        cat "$dir/run.log"
        bad "$image on ${board[*]:0:3}: $run_problem (log: $dir/run.log)"
    else
        good
    fi
    echo "cortex-m: $image on ${board[*]:0:3}: $run_passed passed, $run_failed failed ($((SECONDS - start)) s)"
done

# The self-test: each broken image is caught by the check meant for it.
for kind in 1 2 3 4; do
    dir=$out/inject-$kind
    if ! build cortex-m3 "$dir" "$kind" "$out/cortex-m3"; then
        cat "$dir/build.log"
        bad "self-test $kind: build failed (log: $dir/build.log)"
        continue
    fi
    case $kind in
        1) symbols=$(heap_symbols "$dir/image.elf")
           if [[ " $symbols " == *" malloc "* ]]; then
               good
               echo "cortex-m: self-test: an image calling malloc is refused: links $symbols"
           else
               bad "self-test: an image calling malloc passed the nm check (found: '$symbols')"
           fi ;;
        2|3|4)
           limit=$RUN_TIMEOUT
           [ "$kind" -eq 4 ] && limit=$HANG_TIMEOUT
           run "$dir" "$limit" $((EXPECTED_TESTS + 1)) # and the injected one
           case $kind in
               2) want="a failing test" ok=$([ "$run_failed" -eq 1 ] && echo 1) ;;
               3) want="a bad pointer" ok=$(grep -q '^FAIL HardFault' "$dir/run.log" && [ "$run_status" -eq 2 ] && echo 1) ;;
               4) want="an endless loop" ok=$([ "$run_status" -eq 124 ] && echo 1) ;;
           esac
           if [ -n "$run_problem" ] && [ -n "$ok" ]; then
               good
               detail=$(grep -m 1 '^FAIL' "$dir/run.log")
               [[ $run_problem == *"$detail"* ]] || run_problem+="; $detail"
               echo "cortex-m: self-test: an image with $want is refused: $run_problem"
           else
               cat "$dir/run.log"
               bad "self-test: an image with $want was not refused as expected (status $run_status)"
           fi ;;
    esac
done

# The code-size probes and the instruction-count image of make
# bench-cortex-m, built (and the probes run) so that they keep working.
start=$SECONDS
if scripts/cortex_m_bench.sh --no-trace "$out/bench"; then
    good
    echo "cortex-m: the code-size probes and the measure image of make bench-cortex-m build ($((SECONDS - start)) s)"
else
    bad "scripts/cortex_m_bench.sh --no-trace failed"
fi

echo "cortex-m: image sizes (bytes; the tests' buffers are most of bss):"
printf '  %-16s %6s %6s %7s\n' image text data bss
printf '  %s\n' "${sizes[@]}"
echo "cortex-m: $((SECONDS - stage_start)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
