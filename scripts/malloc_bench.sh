#!/usr/bin/env bash
# malloc_bench.sh BUILD_DIR: the malloc drop-in against glibc malloc, in the
# same run: time and peak RSS of the programs in bench/malloc/ (built in
# BUILD_DIR/bench/malloc_*) run as they are and with LD_PRELOAD=LIB, and of
# the real programs of tests/malloc/real_programs.sh when that script exists.
#
# Usage: scripts/malloc_bench.sh BUILD_DIR
#   PKM_BENCH_LIB    the preloaded library (default BUILD_DIR/libpoolkit-malloc.so;
#                    e.g. /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 to try the harness)
#   PKM_BENCH_RUNS   runs of each program under each allocator (default 3)
#   PKM_BENCH_SCALE  the programs' SCALE argument (default 1: 1..5 s each on glibc)
#
# Each program runs PKM_BENCH_RUNS times under glibc and under LIB, the two
# interleaved (which goes first alternates), through /usr/bin/time -f '%e %M';
# its time is the median of its runs, its peak RSS the maximum. Every run must
# print the same "checksum NAME HEX" line, else the program FAILs. The real
# programs are run by `tests/malloc/real_programs.sh LIB BUILD_DIR/malloc-bench-real
# --bench PKM_BENCH_RUNS`, whose lines `real NAME GLIBC_S LIB_S GLIBC_KIB LIB_KIB`
# become rows named real:NAME (its whole output: BUILD_DIR/malloc-bench-real.log).
#
# Output: a header, then one row per program, whitespace-separated:
#   NAME GLIBC_S LIB_S TIME_RATIO GLIBC_MIB LIB_MIB RSS_RATIO
# (or "NAME FAILED reason"), then the targets, each ending "(target <= 1.25: met)"
# or "(target <= 1.25: MISSED)":
#   total time: sum of LIB's times / sum of glibc's
#   peak RSS, each program: the worst program's ratio (every program within)
#   peak RSS, sum over programs: sum of LIB's peak RSS / sum of glibc's
# and, for information, the geometric mean of the RSS ratios; last line
# "malloc bench: all targets met" or "malloc bench: targets MISSED in ...".
# Exits 0 when all targets are met, 1 when one is missed or a program failed
# or its checksums differ, 2 on bad arguments or a missing program or tool.
set -u

target=1.25
usage() {
    echo "usage: scripts/malloc_bench.sh BUILD_DIR   (env: PKM_BENCH_LIB, PKM_BENCH_RUNS, PKM_BENCH_SCALE)"
}
if [ $# -ne 1 ]; then
    usage >&2
    exit 2
fi
case $1 in
    -h | --help) usage; exit 0 ;;
esac
build=${1%/}
[ -d "$build" ] || { echo "malloc_bench.sh: '$build' is not a directory (the build directory)" >&2; usage >&2; exit 2; }
lib=${PKM_BENCH_LIB:-$build/libpoolkit-malloc.so}
[ -f "$lib" ] || { echo "malloc_bench.sh: no library at '$lib' (build target poolkit-malloc, or set PKM_BENCH_LIB)" >&2; exit 2; }
lib=$(realpath "$lib")
runs=${PKM_BENCH_RUNS:-3}
[[ $runs =~ ^[1-9][0-9]?$ ]] || { echo "malloc_bench.sh: PKM_BENCH_RUNS='$runs' is not a count of runs (1..99)" >&2; exit 2; }
scale=${PKM_BENCH_SCALE:-1}
[[ $scale =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "malloc_bench.sh: PKM_BENCH_SCALE='$scale' is not a positive number" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "malloc_bench.sh: /usr/bin/time missing (Debian package time: scripts/deps.sh bench)" >&2; exit 2; }
programs=(larson small_objects realloc_growth large_blocks)
for name in "${programs[@]}"; do
    [ -x "$build/bench/malloc_$name" ] || { echo "malloc_bench.sh: $build/bench/malloc_$name not built" >&2; exit 2; }
done
source_dir=$(cd "$(dirname "$0")/.." && pwd)
real_programs=$source_dir/tests/malloc/real_programs.sh

label=$(basename "$lib")
label=${label#lib}
label=${label%%.so*}
work=$(mktemp -d "${TMPDIR:-/tmp}/malloc_bench.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT

# Per program: the runs' times and RSS per allocator ("glibc" or "lib"), the
# reference checksum line, and why it failed (empty: it did not).
declare -A seconds rss checksum failure

run_once() { # NAME ALLOCATOR: one measured run, its figures appended
    local name=$1 allocator=$2 rc=0 line
    local command=(env -u LD_PRELOAD "$build/bench/malloc_$name" "$scale")
    [ "$allocator" = lib ] && command=(env "LD_PRELOAD=$lib" "$build/bench/malloc_$name" "$scale")
    /usr/bin/time -f '%e %M' -o "$work/time" "${command[@]}" >"$work/out" 2>"$work/err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        failure[$name]="exit status $rc under $allocator: $(tail -n 3 "$work/err" | tr '\n' ' ')"
        return
    fi
    line=$(grep '^checksum ' "$work/out")
    if [ -z "${checksum[$name]-}" ]; then
        checksum[$name]=$line
    elif [ "$line" != "${checksum[$name]}" ]; then
        failure[$name]="checksums differ: '${checksum[$name]}', then '$line' under $allocator"
        return
    fi
    local run_seconds run_kib
    read -r run_seconds run_kib < <(tail -n 1 "$work/time")
    seconds[$name.$allocator]+=" $run_seconds"
    rss[$name.$allocator]+=" $run_kib"
}

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
maximum() { tr ' ' '\n' | awk 'NF' | sort -g | tail -n 1; }

echo "== malloc drop-in: glibc malloc against $label ($lib)"
echo "bench/malloc/ programs at scale $scale, $runs runs each under each allocator, interleaved;"
echo "time: median of the runs (s), peak RSS: maximum of the runs (MiB, /usr/bin/time %M)"
for ((run = 1; run <= runs; run++)); do
    for name in "${programs[@]}"; do
        [ -n "${failure[$name]-}" ] && continue
        if ((run % 2)); then order=(glibc lib); else order=(lib glibc); fi
        for allocator in "${order[@]}"; do
            [ -n "${failure[$name]-}" ] || run_once "$name" "$allocator"
        done
    done
done

rows=$work/rows # NAME GLIBC_S LIB_S GLIBC_KIB LIB_KIB
: >"$rows"
status=0
missed=()
for name in "${programs[@]}"; do
    [ -n "${failure[$name]-}" ] && continue
    echo "$name $(median <<<"${seconds[$name.glibc]}") $(median <<<"${seconds[$name.lib]}")" \
        "$(maximum <<<"${rss[$name.glibc]}") $(maximum <<<"${rss[$name.lib]}")" >>"$rows"
done

if [ -f "$real_programs" ]; then
    real_log=$build/malloc-bench-real.log
    echo "real programs: tests/malloc/real_programs.sh (log: $real_log)"
    rc=0
    bash "$real_programs" "$lib" "$build/malloc-bench-real" --bench "$runs" >"$real_log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        failure[real_programs]="exit status $rc: $(tail -n 3 "$real_log" | tr '\n' ' ')"
        programs+=(real_programs)
    fi
    awk '$1 == "real" && NF == 6 { print "real:" $2, $3, $4, $5, $6 }' "$real_log" >>"$rows"
else
    echo "real programs: none (no tests/malloc/real_programs.sh)"
fi
echo

width=$(( ${#label} + 4 < 10 ? 10 : ${#label} + 4 )) # the library's columns fit its name
printf "%-22s %9s %${width}s %6s %10s %${width}s %6s\n" program 'glibc s' "$label s" ratio 'glibc MiB' "$label MiB" ratio
awk -v w="$width" '{ printf "%-22s %9.2f %" w ".2f %6.2f %10.1f %" w ".1f %6.2f\n", $1, $2, $3, ($2 > 0 ? $3 / $2 : 0),
                     $4 / 1024, $5 / 1024, ($4 > 0 ? $5 / $4 : 0) }' "$rows"
for name in "${programs[@]}"; do
    if [ -n "${failure[$name]-}" ]; then
        printf '%-22s FAILED %s\n' "$name" "${failure[$name]}"
        status=1
        missed+=("$name failed")
    fi
done
echo

if [ -s "$rows" ]; then
    # One line per target: "VERDICT TEXT", VERDICT met or MISSED.
    while read -r verdict text; do
        echo "$text (target <= $target: $verdict)"
        if [ "$verdict" = MISSED ]; then
            status=1
            missed+=("${text%%:*}")
        fi
    done < <(awk -v target="$target" -v label="$label" '
        function verdict(ratio) { return ratio <= target ? "met" : "MISSED" }
        {
            glibc_s += $2; lib_s += $3; glibc_kib += $4; lib_kib += $5
            ratio = $4 > 0 ? $5 / $4 : 1
            if (NR == 1 || ratio > worst) { worst = ratio; worst_name = $1 }
        }
        END {
            time_ratio = glibc_s > 0 ? lib_s / glibc_s : 1
            printf "%s total time: glibc %.2f s, %s %.2f s: ratio %.2f\n", verdict(time_ratio), glibc_s, label, lib_s, time_ratio
            printf "%s peak RSS, each program: worst ratio %.2f (%s)\n", verdict(worst), worst, worst_name
            sum_ratio = glibc_kib > 0 ? lib_kib / glibc_kib : 1
            printf "%s peak RSS, sum over programs: glibc %.1f MiB, %s %.1f MiB: ratio %.2f\n", verdict(sum_ratio), glibc_kib / 1024, label, lib_kib / 1024, sum_ratio
        }' "$rows")
    awk '$4 > 0 && $5 > 0 { log_sum += log($5 / $4) } END { printf "peak RSS, geometric mean of the ratios: %.2f (no target)\n", exp(log_sum / NR) }' "$rows"
fi

if [ "$status" -eq 0 ]; then
    echo "malloc bench: all targets met"
else
    list=$(printf '%s, ' "${missed[@]}")
    echo "malloc bench: targets MISSED in ${list%, }"
fi
exit $status
