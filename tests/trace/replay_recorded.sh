#!/usr/bin/env bash
# replay_recorded.sh POOLKIT KNOWN_DIR REAL_DIR: the recorded traces replayed
# (issue 11's check): `poolkit replay --allocator heap` on the trace of
# tests/trace/known_allocs.c (KNOWN_DIR/trace, its calls listed in
# KNOWN_DIR/expected) and on each trace of tests/trace/record_real.sh
# (REAL_DIR/*.trace: sqlite3, python3, the cross-thread program).
# Every trace: each event replayed or skipped (calls + skipped = the trace's
# events), no failure in the default arena, the peak footprint at least the
# peak of live requested bytes. The known trace: skipped exactly the calls
# the program saw fail (listed with result 0 and a size), and at least as
# many events of each operation as the program made (the C runtime allocates
# too: stdio, threads). The real traces: nothing skipped (they are
# consistent: tests/trace/trace_check.c). Runs after trace_known_allocs and
# trace_real_programs (a ctest fixture). Ends with "N passed, N failed".
set -u
if [ $# -ne 3 ]; then
  echo "usage: $0 POOLKIT KNOWN_DIR REAL_DIR" >&2
  exit 2
fi
poolkit=$1 known=$2 real=$3
passed=0 failed=0

pass() { passed=$((passed + 1)); echo "ok      $*"; }
fail() { failed=$((failed + 1)); echo "FAILED  $*"; }

# replay TRACE: runs the replay; sets events, per_op (the header's "N malloc,
# N calloc, ..." part), calls, failures, skipped, peak_live, peak_in_use.
replay() {
  local out
  if ! out=$("$poolkit" replay "$1" --allocator heap 2>&1); then
    fail "$1: poolkit replay failed: $out"
    return 1
  fi
  events=$(sed -nE 's/^trace: .* ([0-9]+) events \(.*/\1/p' <<<"$out")
  per_op=$(sed -nE 's/^trace: .* events \([0-9]+ missing\): (.*)$/\1/p' <<<"$out")
  peak_live=$(sed -nE 's/^peak live: ([0-9]+) B requested.*/\1/p' <<<"$out")
  read -r calls failures skipped peak_in_use < <(awk '$1 == "heap" { print $2, $3, $4, $5 }' <<<"$out")
  if [ -z "$events" ] || [ -z "$calls" ] || [ -z "$peak_live" ]; then
    fail "$1: unexpected output: $out"
    return 1
  fi
}

# common NAME: the checks every trace passes.
common() {
  if [ $((calls + skipped)) -eq "$events" ] && [ "$failures" -eq 0 ] && [ "$peak_in_use" -ge "$peak_live" ]; then
    pass "$1: $events events: $calls calls, $skipped skipped, no failure, peak in use $peak_in_use B >= $peak_live B live"
  else
    fail "$1: $events events, $calls calls, $skipped skipped, $failures failures, peak in use $peak_in_use B, peak live $peak_live B"
  fi
}

if replay "$known/trace"; then
  common known_allocs
  made_failed=$(awk '($1 == "M" || $1 == "W") && $5 == "0" && $3 != "0" && $2 != "5"' "$known/expected" | wc -l)
  if [ "$skipped" -eq "$made_failed" ]; then
    pass "known_allocs: skipped $skipped, the calls that failed in the program ($made_failed)"
  else
    fail "known_allocs: skipped $skipped, but the program saw $made_failed calls fail"
  fi
  short=""
  for op in 1:malloc 2:calloc 3:realloc 4:aligned 5:free; do
    made=$(awk -v op="${op%%:*}" '($1 == "M" || $1 == "W") && $2 == op' "$known/expected" | wc -l)
    traced=$(grep -oE "[0-9]+ ${op#*:}" <<<"$per_op" | cut -d' ' -f1)
    [ "${traced:-0}" -ge "$made" ] || short+=" ${op#*:}: $made made, ${traced:-0} traced;"
  done
  if [ -z "$short" ]; then
    pass "known_allocs: each operation's events at least the program's calls ($per_op)"
  else
    fail "known_allocs:$short"
  fi
fi

found=0
for trace in "$real"/*.trace; do
  [ -f "$trace" ] || continue
  found=$((found + 1))
  name=$(basename "$trace" .trace)
  if replay "$trace"; then
    common "$name"
    if [ "$skipped" -eq 0 ]; then
      pass "$name: nothing skipped"
    else
      fail "$name: $skipped events skipped in a consistent trace"
    fi
  fi
done
[ "$found" -gt 0 ] || fail "no trace in $real (run trace_real_programs first)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
