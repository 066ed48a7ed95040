#!/usr/bin/env bash
# reports.sh BUILD_DIR: the drop-in's reports at exit, preloaded
# (BUILD_DIR/libpoolkit-malloc.so) into sort, which closes stderr in an
# atexit handler before the drop-in's destructor runs: POOLKIT_MALLOC_STATS=1
# must print the summary (each allocator's line) and POOLKIT_MALLOC_CHECK=1
# the check's verdict, on the copy of stderr taken at start-up; with neither
# set, nothing. And POOLKIT_MALLOC_DEBUG=1 must make the release library say
# that it has no debug checks. Ends with "N passed, N failed".
set -u
library=${1:?usage: reports.sh BUILD_DIR}/libpoolkit-malloc.so
passed=0 failed=0
input=$(mktemp)
trap 'rm -f "$input"' EXIT
seq 1 50000 >"$input"

# expect NAME PATTERN ENV...: sort's stderr, run with ENV, must match PATTERN
# (grep -E; an empty PATTERN: stderr must be empty).
expect() {
  local name=$1 pattern=$2 err
  shift 2
  err=$(env "$@" LD_PRELOAD="$library" sort -rn "$input" 2>&1 >/dev/null)
  if { [ -z "$pattern" ] && [ -z "$err" ]; } || { [ -n "$pattern" ] && grep -qE "$pattern" <<<"$err"; }; then
    passed=$((passed + 1))
    echo "ok      $name"
  else
    failed=$((failed + 1))
    echo "FAILED  $name: wanted /$pattern/ on stderr, got:"
    echo "$err"
  fi
}

expect stats_header 'poolkit-malloc stats \(pid [0-9]+\): 1 thread heaps' POOLKIT_MALLOC_STATS=1
expect stats_small '  small \(size classes, pk_pool pages of 64 KiB\): 1 chunks' POOLKIT_MALLOC_STATS=1
expect stats_class '    class 16 B: pages 1, live [0-9]+, allocs on these pages [0-9]+' POOLKIT_MALLOC_STATS=1
expect stats_medium '  medium \(one arena, a pk_heap per 4 MiB chunk, to 128 KiB\): [0-9]+ chunks' POOLKIT_MALLOC_STATS=1
expect stats_large '  large \(mmap\): allocs [1-9][0-9]*, frees [0-9]+' POOLKIT_MALLOC_STATS=1
expect stats_totals 'chunks mapped [0-9]+, unmapped [0-9]+; frees from other threads [0-9]+; bootstrap [0-9]+ B; glibc pointers freed 0; ENOMEM 0' POOLKIT_MALLOC_STATS=1
expect check_ok 'poolkit-malloc check \(pid [0-9]+\): 1 thread heaps and the medium arena checked, 0 heaps in use elsewhere: ok' POOLKIT_MALLOC_CHECK=1
expect quiet_by_default '' POOLKIT_MALLOC_STATS=0
expect debug_note 'POOLKIT_MALLOC_DEBUG is ignored by this release build; preload libpoolkit-malloc-debug.so' POOLKIT_MALLOC_DEBUG=1
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
