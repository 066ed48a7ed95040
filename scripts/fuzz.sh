#!/usr/bin/env bash
# fuzz.sh DIR SECONDS DEBUG_SECONDS: builds the libFuzzer targets of fuzz/
# (clang, -fsanitize=fuzzer,address,undefined) in DIR/release and, with
# POOLKIT_DEBUG=ON, in DIR/debug; runs each target for SECONDS (DEBUG_SECONDS
# in the debug build) from its seed corpus fuzz/corpus/<target>/, then
# replays every input in fuzz/regressions/<target>/ in both builds. One test
# per run and per replay; a new crash lands in DIR/<build>/crashes/<target>/
# (README "Fuzzing" says how to keep it as a regression). The corpus grown by
# the runs stays in DIR/<build>/corpus/<target>/ and seeds the next run.
# Ends with "N passed, N failed"; exits 1 if anything failed.
set -u
cd "$(dirname "$0")/.." || exit

if [ $# -ne 3 ]; then
  echo "usage: scripts/fuzz.sh DIR SECONDS DEBUG_SECONDS" >&2
  exit 2
fi
dir=$1 seconds=$2 debug_seconds=$3
TARGETS="pool atomic_pool classes slab buddy heap fit arena trace"
JOBS=$(nproc 2>/dev/null || echo 2)
[ "$JOBS" -gt 2 ] && JOBS=2

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "ok      $1"; }
fail() { failed=$((failed + 1)); echo "FAILED  $1"; }

# fuzz_build NAME DEBUG: configures and builds DIR/NAME; 0 on success.
fuzz_build() {
  local build=$dir/$1
  mkdir -p "$build"
  if ! { CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOOLKIT_FUZZ=ON \
           -DPOOLKIT_SANITIZE=address,undefined -DPOOLKIT_DEBUG="$2" -DPOOLKIT_TESTS=OFF \
           -DPOOLKIT_TOOLS=OFF -DPOOLKIT_SHARED=OFF &&
         cmake --build "$build" -j "$JOBS"; } >"$build/build.log" 2>&1; then
    cat "$build/build.log"
    return 1
  fi
}

# fuzz_run NAME TARGET SECONDS: one bounded run; its last status line kept.
fuzz_run() {
  local build=$dir/$1 target=$2
  local corpus=$build/corpus/$target crashes=$build/crashes/$target log=$build/run-$target.log
  mkdir -p "$corpus" "$crashes"
  if "$build/fuzz/fuzz_$target" -max_total_time="$3" -timeout=10 -print_final_stats=1 \
       -artifact_prefix="$crashes/" "$corpus" "fuzz/corpus/$target" >"$log" 2>&1; then
    pass "$1 $target: $3 s, $(sed -nE 's/^stat::number_of_executed_units: *//p' "$log") inputs, $(grep -oE 'cov: [0-9]+' "$log" | tail -n 1)"
  else
    grep -E '^fuzz\[|^bad free|^alloc of|ERROR|SUMMARY|Test unit written' "$log"
    fail "$1 $target (log: $log)"
  fi
}

# fuzz_replay NAME TARGET: every regression input of TARGET, one test each.
fuzz_replay() {
  local build=$dir/$1 target=$2 input
  for input in fuzz/regressions/"$target"/*; do
    [ -f "$input" ] || continue
    if "$build/fuzz/fuzz_$target" "$input" >"$build/replay.log" 2>&1; then
      pass "$1 $target replays $input"
    else
      grep -E '^fuzz\[|^bad free|^alloc of|ERROR|SUMMARY' "$build/replay.log"
      fail "$1 $target replays $input"
    fi
  done
}

for build in release debug; do
  debug=OFF time=$seconds
  [ "$build" = debug ] && debug=ON time=$debug_seconds
  echo "--- $build: building in $dir/$build"
  if ! fuzz_build "$build" "$debug"; then
    fail "$build build (log: $dir/$build/build.log)"
    continue
  fi
  for target in $TARGETS; do
    fuzz_replay "$build" "$target"
  done
  for target in $TARGETS; do
    fuzz_run "$build" "$target" "$time"
  done
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
