#!/usr/bin/env bash
# coverage.sh [DIR]: line and branch coverage of src/ over the union of the
# unit-test runs of a release and a debug build (gcc --coverage -O0, in
# DIR/release and DIR/debug; DIR defaults to build/test/coverage). Prints the
# figures per file, the exclusion markers in src/ with their count, writes the
# HTML report to build/coverage/index.html, and fails when line coverage is
# below PK_COVERAGE_LINE_FLOOR (95) or branch coverage below
# PK_COVERAGE_BRANCH_FLOOR (85) percent. Its last line is "N passed, N failed":
# "1 passed, 0 failed" when both floors hold; otherwise one failure per floor
# not met, per build that fails to build, and per failing unit-test run.
set -u
cd "$(dirname "$0")/.." || exit

dir=${1:-build/test/coverage}
line_floor=${PK_COVERAGE_LINE_FLOOR:-95}
branch_floor=${PK_COVERAGE_BRANCH_FLOOR:-85}
html_dir=build/coverage
# 10^4 randomized operations per configuration: the same figures as with
# 10^5 (measured), in a quarter of the time (-O0 with atomic counters is slow).
random_ops=${PK_COVERAGE_RANDOM_OPS:-10000}
# Atomic counters: test_threads runs the library on five threads, and racing
# increments leave counts gcovr cannot parse.
flags="--coverage -fprofile-update=atomic -O0"
# Scripts that compile or run programs of their own (with their own flags, or
# under valgrind) test no code of these builds' objects.
not_unit_tests='install_consumer|abi_guard|release_symbols|freestanding_core|cortex_m_|tools_debug_'

failed=0
tracefiles=()
for build in release debug; do
  bdir=$dir/$build
  debug=OFF
  [ "$build" = debug ] && debug=ON
  echo "=== coverage: $build build"
  mkdir -p "$bdir"
  if ! { CC=gcc CXX=g++ cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=Debug \
           -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
           -DPOOLKIT_TESTS=ON -DPOOLKIT_TOOLS=OFF -DPOOLKIT_DEBUG=$debug -DPOOLKIT_SANITIZE= \
           -DPK_RANDOM_OPS="$random_ops" &&
         cmake --build "$bdir" -j2; } >"$bdir/build.log" 2>&1; then
    cat "$bdir/build.log"
    echo "coverage: the $build build failed (log: $bdir/build.log)"
    failed=$((failed + 1))
    continue
  fi
  # Counters from an earlier run would add to this one's.
  find "$bdir" -name '*.gcda' -delete
  if ! ctest --test-dir "$bdir" --output-on-failure --no-tests=error -j2 -E "$not_unit_tests"; then
    echo "coverage: unit tests failed in the $build build"
    failed=$((failed + 1))
  fi
  # The objects the unit tests run: the library and the test variants' copies
  # of it (not tools_debug's, which only its scripts run, nor the shared
  # library, which no test links).
  if ! gcovr --root . --filter 'src/' --json "$bdir/coverage.json" \
         "$bdir/CMakeFiles/poolkit_static.dir" "$bdir"/tests/CMakeFiles/*_library.dir; then
    failed=$((failed + 1))
    continue
  fi
  # In debug builds the public entry points are wrappers defined elsewhere in
  # the file; gcovr 5.2 refuses to merge a function found at two lines, so the
  # debug build's functions get their own names.
  if [ "$build" = debug ]; then
    python3 - "$bdir/coverage.json" <<'PY' || failed=$((failed + 1))
import json, sys
with open(sys.argv[1]) as f:
    report = json.load(f)
for source in report["files"]:
    for function in source["functions"]:
        function["name"] += " (debug build)"
with open(sys.argv[1], "w") as f:
    json.dump(report, f)
PY
  fi
  tracefiles+=(--add-tracefile "$bdir/coverage.json")
done

if [ "$failed" -eq 0 ]; then
  echo "=== coverage of src/ (release and debug unit tests), per file"
  mkdir -p "$html_dir"
  gcovr --root . "${tracefiles[@]}" --txt - --html-details "$html_dir/index.html"
  gcovr --root . "${tracefiles[@]}" --txt - --branches

  markers=$(grep -rnE 'GCOVR_EXCL_|LCOV_EXCL_' src/ || true)  # any kind, branch markers too
  echo "$(grep -c . <<<"$markers") exclusion markers"
  [ -n "$markers" ] && printf '%s\n' "$markers"

  # "lines: 98.5% (4593 out of 4663)": the floors are checked on the counts,
  # not on the rounded percentage.
  # (--txt to a file of ours: gcovr replaces its output file, and /dev/null
  # replaced is a regular file for every process on the machine.)
  summary=$(gcovr --root . "${tracefiles[@]}" --print-summary --txt "$dir/summary.txt")
  echo "$summary" | grep -E '^(lines|branches):'
  echo "floors: lines ${line_floor}%, branches ${branch_floor}%; HTML: $html_dir/index.html"
  for kind in lines branches; do
    floor=$line_floor
    [ "$kind" = branches ] && floor=$branch_floor
    if ! sed -nE "s/^$kind: .*\(([0-9]+) out of ([0-9]+)\)/\1 \2/p" <<<"$summary" |
           awk -v floor="$floor" 'NF == 2 { found = 1; ok = $1 * 100 >= floor * $2 }
                                  END { exit !(found && ok) }'; then
      echo "coverage: $kind below the floor of $floor%"
      failed=$((failed + 1))
    fi
  done
fi

if [ "$failed" -eq 0 ]; then
  echo "1 passed, 0 failed"
else
  echo "0 passed, $failed failed"
fi
[ "$failed" -eq 0 ]
