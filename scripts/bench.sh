#!/usr/bin/env bash
# make bench: the benchmarks, with their targets. Exits 1 if a target is MISSED.
#
# 1. The pool: alloc+free pairs of 64-byte blocks through function pointers for
#    pk_pool, pk_pool with a pthread mutex (pk_pool_locked: the cost of the
#    lock, uncontended), the lock-free pk_atomic_pool, a bare intrusive free
#    list (the floor) and glibc malloc, on one thread.
#    Instructions per pair come from callgrind (repeatable), net of the same
#    loop calling empty functions; ns per pair are the median, min and max of
#    interleaved runs (noisy on a shared machine: read them as a ratio).
# 2. The variable-size allocators (bench/bench_heaps.c): pk_heap, pk_fit in
#    each policy and glibc malloc on a random live set of 4,096 objects of
#    16 B..4 KiB: instructions per free+alloc step (callgrind, net of a null
#    allocator), ns per call (minimum of three identical passes), and the
#    fraction of a 1 MiB buffer live at the first failure.
# 2b. The debug build's cost: bench_pool and bench_heaps built again with
#    POOLKIT_DEBUG=ON (guards, poisoning, quarantine, tags) in BUILD-debug
#    (build/bench-debug), their callgrind counts taken the same way, shown as
#    "release N / debug M instructions per pair" (or per step). The release
#    counts are the ones above: the release build is not touched. No target.
# 3. Slab caches (bench/bench_slab.c): alloc+free pairs of a constructed
#    object (a 312-byte request descriptor) from a slab cache, whose
#    constructor ran when the slab was made, against pk_pool and malloc
#    constructing it at every allocation; as for the pool.
# 4. Threads (bench/bench_threads.c): alloc+free throughput of pk_atomic_pool,
#    pk_pool with a pthread mutex and glibc malloc with 1 and 2 threads, both
#    threads sharing the one pool; million pairs per second over all threads
#    (median, min, max of interleaved runs) and the 2-thread/1-thread scaling.
#    No target: wall-clock throughput on a shared machine is too noisy.
# 5. poolkit bench (tools/bench/): every poolkit allocator against glibc
#    malloc, jemalloc, mimalloc and tcmalloc (dlopened; a missing one is
#    skipped with a note) on fixed 64 B pairs, a batch of 4,096 x 64 B freed in
#    random order, and random live sets of 16 B..4 KiB and 16 B..64 KiB: ns per
#    call (median, min, max of 5 runs), per-call latency percentiles and max,
#    and instructions per call from callgrind for poolkit and glibc (one
#    callgrind run per allocator and workload, counted inside the loop only,
#    net of the harness). Tables here and build/report/bench.html.
#    No target: the comparison is the point.
# 6. Cortex-M3 (scripts/cortex_m_bench.sh, also `make bench-cortex-m`): each
#    allocator's code size, and its instructions per alloc and free counted
#    on QEMU over a random run and a constructed worst case. No target.
# 7. The malloc drop-in (scripts/malloc_bench.sh): the programs of
#    bench/malloc/ (a larson-style server with cross-thread frees, small
#    objects, realloc growth, large blocks) and the real programs of
#    tests/malloc/real_programs.sh under glibc and with
#    LD_PRELOAD=BUILD/libpoolkit-malloc.so, interleaved in the same run:
#    time (median of 3 runs) and peak RSS (max of 3), checksums compared.
#    Targets: total time and peak RSS at most 1.25x glibc's (RSS: each
#    program's and the sum over programs).
set -eu
build=${1:-build/bench}
bench=$build/bench/bench_pool
heaps=$build/bench/bench_heaps
slab=$build/bench/bench_slab
threads=$build/bench/bench_threads
poolkit=$build/poolkit
pairs=100000
target=30
for program in "$bench" "$heaps" "$slab" "$threads" "$poolkit"; do
    [ -x "$program" ] || { echo "bench.sh: $program not built (run make bench)" >&2; exit 2; }
done
start=$SECONDS

# The debug build of the pool and heap benchmarks (section 2b), configured
# like the release one but for POOLKIT_DEBUG.
debug_build=${build%/}-debug
debug_bench=$debug_build/bench/bench_pool
debug_heaps=$debug_build/bench/bench_heaps
source_dir=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$debug_build"
if ! { CC=${CC:-gcc} CXX=${CXX:-g++} cmake -S "$source_dir" -B "$debug_build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
         -DPOOLKIT_DEBUG=ON -DPOOLKIT_SANITIZE= -DPOOLKIT_TESTS=OFF -DPOOLKIT_TOOLS=ON &&
       cmake --build "$debug_build" -j "$(nproc 2>/dev/null || echo 2)" --target bench_pool bench_heaps; } \
       >"$debug_build/bench-build.log" 2>&1; then
    cat "$debug_build/bench-build.log" >&2
    echo "bench.sh: the debug build of the benchmarks failed (log: $debug_build/bench-build.log)" >&2
    exit 2
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
echo "Machine: ${cpu:-unknown CPU}, $(nproc) CPUs, $(uname -sr) $(uname -m)"
echo "Compiler: $("$heaps" --about)"
echo

instructions() { # mode [program] -> instructions collected inside the loop
    valgrind --tool=callgrind --toggle-collect='run_pairs*' --callgrind-out-file=/dev/null \
        "${2:-$bench}" "$1" "$pairs" 2>&1 | awk '/Collected/ {print $4}'
}

echo "== Fixed-size pool"
empty=$(instructions empty)
echo "Alloc+free pairs of 64-byte blocks, $(${CC:-gcc} --version | head -1), -O2, $(uname -m)"
echo "called through function pointers; net of the loop calling empty functions"
echo "(pk_arena: an alloc of 64 bytes, reset when full; an arena has no free)"
echo "(pk_pool_locked: pk_pool with pk_pthread_lock, uncontended, lock and unlock included;"
echo " pk_atomic_pool: lock-free; each atomic read-modify-write counts as one instruction"
echo " but costs tens of cycles: compare the ns below)"
echo
printf '%-16s %22s\n' allocator 'instructions per pair'
status=0
missed=()
declare -A pool_net # mode -> release instructions per pair (for section 2b)
for mode in pk_pool pk_pool_locked pk_atomic_pool freelist pk_arena malloc; do
    total=$(instructions "$mode")
    net=$(( (total - empty + pairs / 2) / pairs ))
    pool_net[$mode]=$net
    note=""
    if [ "$mode" = pk_pool ]; then
        if [ "$net" -le "$target" ]; then note="(target <= $target: met)"; else note="(target <= $target: MISSED)"; status=1; missed+=("pool: instructions"); fi
    fi
    printf '%-16s %22d  %s\n' "$mode" "$net" "$note"
done
echo
"$bench" --time 2000000 15
echo

# bench_heaps --list: "NAME STEPS" per allocator built in, null (the harness) first.
heap_instructions() { # name steps [program] -> instructions collected inside measured_loop_*
    valgrind --tool=callgrind --toggle-collect='measured_loop_*' --callgrind-out-file=/dev/null \
        "${3:-$heaps}" --run "$1" "$2" 2>&1 </dev/null | awk '/Collected/ {print $4}'
}
echo "== Variable-size allocators: a random live set of 4,096 objects, 16 B..4 KiB"
echo "log-uniform, each step freeing a random slot's object and allocating anew; 32 MiB buffer"
echo
counts=()
while read -r name steps; do
    total=$(heap_instructions "$name" "$steps")
    [ -n "$total" ] || { echo "bench.sh: callgrind run of bench_heaps --run $name failed" >&2; exit 2; }
    counts+=("$name=$steps:$total")
done < <("$heaps" --list)
# table LABEL ARGS...: one of bench_heaps' tables; its exit status 1 is a missed target.
table() {
    local rc=0
    "$heaps" "${@:2}" || rc=$?
    case $rc in
        0) ;;
        1) status=1; missed+=("$1") ;;
        *) echo "bench.sh: bench_heaps $2 failed (exit status $rc)" >&2; exit 2 ;;
    esac
    echo
}
table "heaps: instructions" --instructions "${counts[@]}"
table "heaps: latency" --latency
table "heaps: fragmentation" --frag

echo "== Debug builds: cost per operation beside release"
echo "The same loops built with POOLKIT_DEBUG=ON ($debug_build): guards, poisoning and"
echo "the check of the poison at reuse, a quarantine of $(sed -n 's/^#define PK_QUARANTINE_SIZE //p' \
    "$source_dir/include/poolkit/debug.h") blocks, tags with owner and sequence number."
echo "Calls through function pointers record no call site (the site macros add a store of"
echo "file and line per call). Release counts as above."
echo
debug_empty=$(instructions empty "$debug_bench")
for mode in pk_pool pk_pool_locked pk_atomic_pool pk_arena; do
    total=$(instructions "$mode" "$debug_bench")
    [ -n "$total" ] || { echo "bench.sh: callgrind run of the debug bench_pool $mode failed" >&2; exit 2; }
    net=$(( (total - debug_empty + pairs / 2) / pairs ))
    printf '%-16s release %d / debug %d instructions per pair\n' "$mode" "${pool_net[$mode]}" "$net"
done
# Per step, net of the harness, as bench_heaps --instructions computes it.
per_step() { # steps total null_steps null_total
    awk -v s="$1" -v t="$2" -v ns="$3" -v nt="$4" 'BEGIN { x = t / s - nt / ns; printf "%d", (x < 0 ? x - 0.5 : x + 0.5) }'
}
release_null=${counts[0]#*=}
debug_null=
while read -r line; do
    # A quarter of the steps: the debug build is slow under callgrind, and the
    # count per step is as steady (the live set is filled before counting).
    name=${line% *} steps=$(( ${line##* } / 4 ))
    total=$(heap_instructions "$name" "$steps" "$debug_heaps")
    [ -n "$total" ] || { echo "bench.sh: callgrind run of the debug bench_heaps --run $name failed" >&2; exit 2; }
    if [ -z "$debug_null" ]; then
        debug_null="$steps:$total" # the first is null, the harness
        continue
    fi
    [[ $name == *malloc* ]] && continue # not poolkit's
    release=
    for entry in "${counts[@]}"; do
        [ "${entry%%=*}" = "$name" ] && release=${entry#*=}
    done
    [ -n "$release" ] || continue
    printf '%-16s release %d / debug %d instructions per step (live set, 16 B..4 KiB)\n' "$name" \
        "$(per_step "${release%%:*}" "${release#*:}" "${release_null%%:*}" "${release_null#*:}")" \
        "$(per_step "$steps" "$total" "${debug_null%%:*}" "${debug_null#*:}")"
done < <("$debug_heaps" --list)
echo

echo "== Slab caches: alloc+free pairs of a constructed 312-byte object"
echo "pk_slab: constructed when its slab was made; pk_pool, malloc: constructed at every alloc"
echo "(pk_slab_empties: the slab's only object, so every pair moves the slab between lists)"
echo
slab_instructions() { # mode -> instructions collected inside run_pairs_*
    valgrind --tool=callgrind --toggle-collect='run_pairs*' --callgrind-out-file=/dev/null \
        "$slab" "$1" "$pairs" 2>&1 | awk '/Collected/ {print $4}'
}
slab_empty=$(slab_instructions empty)
printf '%-16s %22s\n' mode 'instructions per pair'
while read -r mode; do
    total=$(slab_instructions "$mode")
    [ -n "$total" ] || { echo "bench.sh: callgrind run of bench_slab $mode failed" >&2; exit 2; }
    printf '%-16s %22d\n' "$mode" $(( (total - slab_empty + pairs / 2) / pairs ))
done < <("$slab" --modes)
echo
"$slab" --time 2000000 15
echo

echo "== Threads: alloc+free throughput with 1 and 2 threads (no target: wall clock, noisy machine)"
echo "Each thread: allocate 8 blocks of 64 bytes, write a byte into each, free them; again"
echo "and again. With 2 threads both use the one pool (contending for its free-list head or"
echo "its mutex); glibc malloc's threads each have their own cache. Million alloc+free pairs"
echo "per second over all threads, from the first thread's start (at a barrier) to the"
echo "last one's end; median, min and max of interleaved runs."
echo
"$threads" 2000000 11 || { echo "bench.sh: bench_threads failed" >&2; exit 2; }
echo

echo "== poolkit bench: poolkit's allocators against glibc, jemalloc, mimalloc, tcmalloc"
# Instructions per call: `poolkit bench --count list` names the pairs
# (workload, allocator; the harness "null" included), each counted in its
# own callgrind run over 100,000 calls; poolkit bench nets them and shows them.
counts=$build/bench_instructions.txt
: >"$counts"
while read -r workload allocator; do
    out=$(valgrind --tool=callgrind --toggle-collect=bench_counted_loop --callgrind-out-file=/dev/null \
        "$poolkit" bench --count "$workload:$allocator" --ops 100000 2>&1 </dev/null) || true
    calls=$(awk -v w="$workload" -v a="$allocator" '$1 == w && $2 == a && $4 == "calls" {print $3}' <<<"$out")
    total=$(awk '/Collected/ {print $4}' <<<"$out")
    if [ -z "$calls" ] || [ -z "$total" ]; then
        echo "$out" >&2
        echo "bench.sh: callgrind run of poolkit bench --count $workload:$allocator failed" >&2
        exit 2
    fi
    echo "$workload $allocator $calls $total" >>"$counts"
done < <("$poolkit" bench --count list)
"$poolkit" bench --instructions "$counts" --out build/report || { echo "bench.sh: poolkit bench failed" >&2; exit 2; }
echo

echo "== Cortex-M3: code size and instructions per call"
"$source_dir/scripts/cortex_m_bench.sh" || { echo "bench.sh: scripts/cortex_m_bench.sh failed" >&2; exit 2; }
echo

rc=0
PKM_BENCH_LIB=$build/libpoolkit-malloc.so "$source_dir/scripts/malloc_bench.sh" "$build" || rc=$?
case $rc in
    0) ;;
    1) status=1; missed+=("malloc drop-in") ;;
    *) echo "bench.sh: scripts/malloc_bench.sh failed (exit status $rc)" >&2; exit 2 ;;
esac
echo

if [ "$status" -eq 0 ]; then
    echo "bench: all targets met ($((SECONDS - start)) s)"
else
    list=$(printf '%s, ' "${missed[@]}")
    echo "bench: targets MISSED in ${list%, } ($((SECONDS - start)) s)"
fi
exit $status
