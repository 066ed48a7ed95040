#!/usr/bin/env bash
# test.sh: the full CI matrix. Each stage configures, builds and runs ctest in
# build/test/<stage>; a failing stage does not stop the others. The cortex-m
# stage instead runs scripts/cortex_m.sh (bare-metal images on QEMU, in
# build/test/cortex-m), the fuzz stage scripts/fuzz.sh (the libFuzzer
# targets for 15 s each, 5 s in the debug build, and the regression inputs,
# in build/test/fuzz), the coverage stage scripts/coverage.sh (the coverage
# floors of src/), the stack stage scripts/stack_check.py (frames and
# recursion in src/), the static stage scripts/static_check.sh
# (clang-tidy and cppcheck) and the malloc-real stage the real programs of
# tests/malloc/real_programs.sh on the malloc drop-in. Ends with the per-stage results and "N passed, N
# failed" (ctest tests and the scripts' counts over all stages; a stage that
# fails to configure or build counts as 1 failed), and exits 1 if anything
# failed. Run a subset with PK_TEST_STAGES="gcc-release valgrind".
set -u
cd "$(dirname "$0")/.." || exit

STAGES=${PK_TEST_STAGES:-gcc-release gcc-debug gcc-m32 gcc-m32-debug stack static clang-release clang-debug asan-ubsan tsan valgrind cortex-m fuzz coverage malloc-real}
JOBS=$(nproc 2>/dev/null || echo 2)
m32=(-DCMAKE_C_FLAGS=-m32 -DCMAKE_CXX_FLAGS=-m32 -DPOOLKIT_TOOLS=OFF -DPK_RANDOM_OPS=100000)
m32_skip='install_consumer|abi_guard|release_symbols|freestanding_core|cortex_m_|tools_debug_valgrind|malloc_reports'
VALGRIND_OPTS="-q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite"

passed=0 failed=0 results=()

# run_script_stage NAME COMMAND...: a stage run by a script whose last line
# is "N passed, N failed" (cortex-m, fuzz, coverage, stack, static), with its
# output in build/test/NAME.
run_script_stage() {
  local name=$1 dir=build/test/$1 start=$SECONDS p=0 f=1 counts status
  shift
  echo "=== $name"
  mkdir -p "$dir"
  "$@" 2>&1 | tee "$dir/stage.log"
  local rc=${PIPESTATUS[0]}
  counts=$(tail -n 1 "$dir/stage.log" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p')
  [ -n "$counts" ] && read -r p f <<<"$counts"
  [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
  if [ "$f" -eq 0 ]; then status="ok"; else status="FAILED"; fi
  passed=$((passed + p)) failed=$((failed + f))
  results+=("$(printf '%-14s %s: %d passed, %d failed (%d s)' "$name" "$status" "$p" "$f" $((SECONDS - start)))")
}

# malloc_real DIR: the malloc-real stage: the drop-in built in DIR/build, the
# real programs of tests/malloc/real_programs.sh run on its release build
# (all seven) and on its debug twin (python3, sqlite3 and git: the debug
# checks on software we did not write), each also on glibc; ends with the
# two runs' "N passed, N failed" summed.
malloc_real() {
  local dir=$1 p=0 f=0
  if ! { CC=gcc cmake -S . -B "$dir/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOOLKIT_TESTS=OFF \
           -DPOOLKIT_TOOLS=OFF -DPOOLKIT_DEBUG=OFF -DPOOLKIT_SANITIZE= &&
         cmake --build "$dir/build" -j "$JOBS" --target poolkit-malloc poolkit-malloc-debug; } >"$dir/build.log" 2>&1; then
    cat "$dir/build.log"
    echo "0 passed, 1 failed"
    return 1
  fi
  # real_run LIBRARY WORKDIR [OPTIONS...]: one run, its counts added to p and f.
  real_run() {
    local counts rp rf
    tests/malloc/real_programs.sh "$dir/build/$1" "$dir/$2" "${@:3}" | tee "$dir/run.log"
    counts=$(tail -n 1 "$dir/run.log" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p')
    if [ -n "$counts" ]; then
      read -r rp rf <<<"$counts"
      p=$((p + rp)) f=$((f + rf))
    else
      f=$((f + 1))
    fi
  }
  real_run libpoolkit-malloc.so work
  real_run libpoolkit-malloc-debug.so work-debug --only python3,sqlite3,git
  echo "$p passed, $f failed"
  [ "$f" -eq 0 ]
}

# run_stage NAME: one stage; adds its counts to passed/failed and a line to results.
run_stage() {
  local name=$1 dir=build/test/$1 cc=gcc cxx=g++ type=RelWithDebInfo opts=() env=() ctest_opts=()
  case $name in
    gcc-release)   type=Release ;;  # -O3: its warnings differ from -O2's
    gcc-debug)     opts=(-DPOOLKIT_DEBUG=ON) ;;
    # i386 (-m32): size and alignment assumptions of 64-bit targets. The test
    # programs only: the tools (they load the host's 64-bit mallocs) are not
    # built; the scripts that compile or link with the bare compiler (64-bit)
    # or run valgrind (it needs libc6-dbg:i386) are left out, and so are
    # those whose result does not depend on the target, and malloc_reports
    # (it preloads the drop-in into the host's 64-bit sort). 10^5 randomized ops:
    # a size assumption shows early, the 64-bit stages run 10^6.
    gcc-m32)       opts=("${m32[@]}") ctest_opts=(-E "$m32_skip") ;;
    gcc-m32-debug) opts=("${m32[@]}" -DPOOLKIT_DEBUG=ON) ctest_opts=(-E "$m32_skip") ;;
    clang-release) cc=clang cxx=clang++ ;;
    clang-debug)   cc=clang cxx=clang++ opts=(-DPOOLKIT_DEBUG=ON) ;;
    asan-ubsan)    cc=clang cxx=clang++ opts=("-DPOOLKIT_SANITIZE=address,undefined")
                   env=(ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1) ;;
    tsan)          cc=clang cxx=clang++ opts=(-DPOOLKIT_SANITIZE=thread)
                   env=(TSAN_OPTIONS=halt_on_error=1)
                   # every program (several share an allocator between threads); not the scripts
                   ctest_opts=(-E 'install_consumer|abi_guard|release_symbols|freestanding_core|cortex_m_') ;;
    valgrind)      opts=(-DPK_RANDOM_OPS=10000)  # fewer randomized ops under valgrind
                   # scripts, not programs: nothing of ours for memcheck to see
                   # (tools_debug_: scripts that run valgrind or ASan themselves);
                   # nor glibc's malloc or the preloaded drop-in, which valgrind
                   # replaces (malloc_api_prefixed runs the drop-in's code)
                   # (nor the tracer's preloaded tests and the replay of their traces)
                   ctest_opts=(-E 'install_consumer|abi_guard|release_symbols|freestanding_core|cortex_m_|demo_e2e|tools_debug_|malloc_api_glibc|malloc_api_poolkit|malloc_misuse|malloc_reports|trace_known_allocs|trace_real_programs|trace_replay_recorded' -T memcheck
                     --overwrite MemoryCheckCommand="$(command -v valgrind)"
                     --overwrite MemoryCheckCommandOptions="$VALGRIND_OPTS") ;;
    *) results+=("$(printf "%-14s unknown stage" "$name")"); failed=$((failed + 1)); return ;;
  esac

  echo "=== $name"
  local start=$SECONDS p=0 f=1 status
  mkdir -p "$dir"
  if ! { CC=$cc CXX=$cxx cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" \
           -DPOOLKIT_TESTS=ON -DPOOLKIT_DEBUG=OFF -DPOOLKIT_SANITIZE= "${opts[@]}" &&
         cmake --build "$dir" -j "$JOBS"; } >"$dir/build.log" 2>&1; then
    cat "$dir/build.log"
    status="FAILED to configure or build (log: $dir/build.log)"
  else
    touch "$dir/DartConfiguration.tcl"  # quiets ctest -T's "Cannot find file" warnings
    rm -f "$dir"/Testing/Temporary/MemoryChecker.*.log
    env "${env[@]}" ctest --test-dir "$dir" --output-on-failure --no-tests=error \
      --timeout 1200 -j2 "${ctest_opts[@]}" 2>&1 | tee "$dir/ctest.log"
    local rc=${PIPESTATUS[0]} counts total
    # ctest's summary: "NN% tests passed, F tests failed out of T"
    counts=$(sed -nE 's/.*tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\1 \2/p' "$dir/ctest.log" | tail -n 1)
    if [ -n "$counts" ]; then
      read -r f total <<<"$counts"
      p=$((total - f))
    fi
    # A failing run without a failed test (e.g. memcheck defects) counts as 1.
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    for log in "$dir"/Testing/Temporary/MemoryChecker.*.log; do
      [ -s "$log" ] && { echo "--- valgrind: $log"; cat "$log"; }
    done
    if [ "$f" -eq 0 ]; then status="ok"; else status="FAILED"; fi
    status="$status: $p passed, $f failed"
  fi
  passed=$((passed + p)) failed=$((failed + f))
  results+=("$(printf '%-14s %s (%d s)' "$name" "$status" $((SECONDS - start)))")
}

for stage in $STAGES; do
  case $stage in
    cortex-m) run_script_stage cortex-m scripts/cortex_m.sh build/test/cortex-m ;;
    fuzz)     run_script_stage fuzz scripts/fuzz.sh build/test/fuzz 15 5 ;;
    coverage) run_script_stage coverage scripts/coverage.sh build/test/coverage ;;
    stack)    run_script_stage stack python3 scripts/stack_check.py --out build/test/stack ;;
    static)   run_script_stage static scripts/static_check.sh build/test/static ;;
    malloc-real) mkdir -p build/test/malloc-real && run_script_stage malloc-real malloc_real build/test/malloc-real ;;
    *)        run_stage "$stage" ;;
  esac
done

echo "=== results"
printf '%s\n' "${results[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
