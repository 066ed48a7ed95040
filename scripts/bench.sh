#!/usr/bin/env bash
# The pool benchmark (make bench): alloc+free pairs of 64-byte blocks through
# function pointers for pk_pool, a bare intrusive free list (the floor) and
# glibc malloc. Instructions per pair come from callgrind (repeatable), net of
# the same loop calling empty functions; ns per pair are the median, min and
# max of interleaved runs (noisy on a shared machine: read them as a ratio).
set -eu
build=${1:-build/bench}
bench=$build/bench/bench_pool
pairs=100000
target=30
[ -x "$bench" ] || { echo "bench.sh: $bench not built (run make bench)" >&2; exit 2; }

instructions() { # mode -> instructions collected inside the loop
    valgrind --tool=callgrind --toggle-collect='run_pairs*' --callgrind-out-file=/dev/null \
        "$bench" "$1" "$pairs" 2>&1 | awk '/Collected/ {print $4}'
}

empty=$(instructions empty)
echo "Alloc+free pairs of 64-byte blocks, $(${CC:-gcc} --version | head -1), -O2, $(uname -m)"
echo "called through function pointers; net of the loop calling empty functions"
echo
printf '%-10s %22s\n' allocator 'instructions per pair'
status=0
for mode in pk_pool freelist malloc; do
    total=$(instructions "$mode")
    net=$(( (total - empty + pairs / 2) / pairs ))
    note=""
    if [ "$mode" = pk_pool ]; then
        if [ "$net" -le "$target" ]; then note="(target <= $target: met)"; else note="(target <= $target: MISSED)"; status=1; fi
    fi
    printf '%-10s %22d  %s\n' "$mode" "$net" "$note"
done
echo
"$bench" --time 2000000 15
exit $status
