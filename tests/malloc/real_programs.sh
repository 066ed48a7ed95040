#!/usr/bin/env bash
# real_programs.sh: runs real programs on glibc's malloc and on a preloaded
# malloc (LD_PRELOAD=LIB), same command and same inputs, checks that both
# produce exactly the same output, and prints both times and peak RSS.
#
# Usage: tests/malloc/real_programs.sh LIB WORKDIR [--bench REPEATS] [--only NAME[,NAME...]]
#          [--lib-env NAME=VALUE]...
#   LIB       the malloc library to preload, e.g. build/libpoolkit-malloc.so
#             or /usr/lib/x86_64-linux-gnu/libjemalloc.so.2
#   WORKDIR   created for the inputs and every run's outputs; a WORKDIR this
#             script made before is emptied first, any other non-empty
#             directory is refused (so a typo can't delete someone's files)
#   --bench REPEATS  run each program REPEATS times per allocator,
#             interleaved (glibc, LIB, glibc, LIB, ...), and report the
#             median time and the largest peak RSS; without it, once each
#   --only    just these programs, comma-separated
#   --lib-env NAME=VALUE  one more variable in the environment of the runs
#             on LIB (not glibc's), e.g. POOLKIT_TRACE=FILE to record with
#             libpoolkit-trace.so; repeatable. Each step's first process
#             writes FILE anew (its children FILE.<pid>), so FILE ends with
#             the last step's trace
# Programs (NAME), inputs generated in WORKDIR/inputs with fixed seeds:
#   python3  PYTHONMALLOC=malloc (every object through malloc), a dict, list
#            and json heavy script (real_programs/workload.py)
#   sqlite3  200,000 single-row INSERTs, two indexes, aggregates, a window
#            query, a DELETE, PRAGMA integrity_check
#   git      2,000 files: init, add, commit, 400 edited / 50 removed / 50 added,
#            commit, log -p --stat, gc, fsck --full --strict
#   gcc      gcc -O2 -c of the project's src/*.c src/*/*.c and a generated
#            larger C file
#   xz       xz -T2 -1 round trip of 50 MiB of text
#   pigz     pigz -p 2 round trip of the same 50 MiB
#   sort     sort --parallel=2 of the same 50 MiB by a numeric and a text key
# What must be equal: stdout of every step byte for byte, and the files made:
# sqlite's database file, git's object ids (HEAD, the trees, every object),
# gcc's .o files, xz's and pigz's compressed bytes, sort's output; the
# decompressed files must equal the input. Before its runs, each program is
# started once under LD_PRELOAD=LIB, blocked on an empty pipe, and LIB must be
# in its /proc/PID/maps (ld.so only warns when it can't preload).
# Time: elapsed seconds of the program's steps, summed (/usr/bin/time %e).
# Peak RSS: /usr/bin/time's %M, the largest single process of a step's
# process tree (git gc's pack-objects, gcc's cc1), the largest over the
# steps; not a sum over processes.
# Output: a first line `real_programs.sh: glibc vs LD_PRELOAD=LIB ...`, one
# line per program,
#   NAME  ok  glibc S s R MiB   LABEL S s R MiB   (T.TTx time, R.RRx RSS)
# or NAME  FAILED: <why>, LABEL being LIB's name without lib and .so*, then
# the last line `N passed, N failed`. With --bench, before that last line,
# one line per program that passed:
#   real NAME GLIBC_SECONDS LIB_SECONDS GLIBC_RSS_KIB LIB_RSS_KIB
# WORKDIR/NAME/glibc-1 (the reference) and NAME/{glibc,lib}-REPEATS keep the
# outputs, stderr and per-step figures (steps) of those runs.
# Exit status 0 iff all passed; 2 for bad arguments.
set -u

usage() {
  echo "usage: $0 LIB WORKDIR [--bench REPEATS] [--only NAME[,NAME...]] [--lib-env NAME=VALUE]..." >&2
  echo "  NAME: ${ALL_PROGRAMS[*]}" >&2
  exit 2
}

ALL_PROGRAMS=(python3 sqlite3 git gcc xz pigz sort)
MARKER=.real_programs_workdir
# Generous: the slowest step takes about 10 s on glibc; a hung allocator
# must still end the run.
STEP_TIMEOUT_SECONDS=600

here=$(cd "$(dirname "$0")" && pwd) || exit 2
project=$(cd "$here/../.." && pwd) || exit 2

[ $# -ge 2 ] || usage
lib_arg=$1 work_arg=$2
shift 2
repeats=1 bench=0 selected=("${ALL_PROGRAMS[@]}") lib_env=()
while [ $# -gt 0 ]; do
  case $1 in
    --bench)
      if [ $# -lt 2 ] || ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then echo "$0: --bench needs a positive count" >&2; usage; fi
      repeats=$2 bench=1
      shift 2 ;;
    --only)
      if [ $# -lt 2 ] || [ -z "$2" ]; then echo "$0: --only needs program names" >&2; usage; fi
      IFS=, read -r -a selected <<<"$2"
      for name in "${selected[@]}"; do
        [[ " ${ALL_PROGRAMS[*]} " == *" $name "* ]] || { echo "$0: unknown program '$name'" >&2; usage; }
      done
      shift 2 ;;
    --lib-env)
      if [ $# -lt 2 ] || ! [[ $2 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then echo "$0: --lib-env needs NAME=VALUE" >&2; usage; fi
      lib_env+=("$2")
      shift 2 ;;
    *) echo "$0: unknown argument '$1'" >&2; usage ;;
  esac
done

[ -f "$lib_arg" ] || { echo "$0: LIB '$lib_arg' is not a file" >&2; usage; }
lib=$(realpath "$lib_arg") || usage
# ld.so splits LD_PRELOAD at spaces and colons.
[[ $lib == *[\ :]* ]] && { echo "$0: LIB path '$lib' contains a space or colon, which LD_PRELOAD can't take" >&2; usage; }
label=$(basename "$lib")
label=${label#lib}
label=${label%%.so*}

if [ -e "$work_arg" ] && [ ! -d "$work_arg" ]; then
  echo "$0: WORKDIR '$work_arg' exists and is not a directory" >&2; usage
fi
if [ -d "$work_arg" ] && [ -n "$(ls -A "$work_arg")" ] && [ ! -e "$work_arg/$MARKER" ]; then
  echo "$0: WORKDIR '$work_arg' is not empty and was not made by this script; remove it or choose another" >&2; usage
fi
if ! rm -rf "$work_arg" || ! mkdir -p "$work_arg"; then echo "$0: can't create WORKDIR '$work_arg'" >&2; exit 2; fi
work=$(realpath "$work_arg")
touch "$work/$MARKER"
inputs=$work/inputs
mkdir -p "$inputs" "$work/home" "$work/tmp"

# Debian's python3 rather than a shim (pyenv's is a shell script) in PATH.
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3 || echo python3)

# Every run gets this environment and nothing else (the runs on LIB also
# --lib-env's), so both allocators see the same one and git's ids come out
# the same everywhere.
printf '[init]\n\tdefaultBranch = main\n[gc]\n\tauto = 0\n[core]\n\tautocrlf = false\n' >"$inputs/gitconfig"
base_env=(PATH="$PATH" HOME="$work/home" TMPDIR="$work/tmp" LC_ALL=C TZ=UTC
  PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
  GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="$inputs/gitconfig"
  GIT_AUTHOR_NAME=poolkit GIT_AUTHOR_EMAIL=poolkit@example.org GIT_AUTHOR_DATE=2026-01-01T00:00:00Z
  GIT_COMMITTER_NAME=poolkit GIT_COMMITTER_EMAIL=poolkit@example.org GIT_COMMITTER_DATE=2026-01-01T00:00:00Z)

# Each program's executable, its Debian package, and the arguments that make
# it wait reading stdin (for the preload check).
declare -A binary=([python3]=$python [sqlite3]=sqlite3 [git]=git [gcc]=gcc [xz]=xz [pigz]=pigz [sort]=sort)
declare -A package=([python3]=python3 [sqlite3]=sqlite3 [git]=git [gcc]=gcc [xz]=xz-utils [pigz]=pigz [sort]=coreutils)
declare -A waits_on_stdin=([python3]="-" [sqlite3]="-batch :memory:" [git]="hash-object --stdin"
  [gcc]="-E -x c -" [xz]="-c" [pigz]="-c" [sort]="")

# --- Inputs, each made once, on glibc ---------------------------------------

declare -A made=()
prepare_error=""
# make_input KIND: WORKDIR/inputs/KIND from gen_inputs.py, once; on failure
# sets prepare_error.
make_input() {
  local kind=$1
  [ -n "${made[$kind]-}" ] && return "${made[$kind]}"
  made[$kind]=1
  if "$python" "$here/real_programs/gen_inputs.py" "$kind" "$inputs/$kind" 2>"$work/tmp/gen.err"; then
    made[$kind]=0
  else
    prepare_error="generating the $kind input failed: $(tail -n 2 "$work/tmp/gen.err" | tr '\n' ' ')"
  fi
  return "${made[$kind]}"
}

prepare_python3() { cp "$here/real_programs/workload.py" "$inputs/workload.py"; }
prepare_sqlite3() { make_input sql; }
prepare_git() { make_input gitfiles; }
prepare_gcc() {
  make_input csource || return 1
  rm -rf "$inputs/gcc" && mkdir -p "$inputs/gcc" &&
    cp -r "$project/src" "$project/include" "$inputs/gcc/" &&
    cp "$inputs/csource" "$inputs/gcc/generated.c"
}
prepare_xz() { make_input text; }
prepare_pigz() { make_input text; }
prepare_sort() { make_input text; }

# --- Running a step ---------------------------------------------------------

# step IN OUT COMMAND...: runs COMMAND in the clean environment, preloading
# LIB (with --lib-env's variables) when run_alloc is lib, stdin from IN, stdout to OUT, stderr appended to
# run_dir/stderr. Adds its elapsed time to run_seconds and keeps the largest
# peak RSS in run_rss_kib (each step's figures also go to run_dir/steps, to
# see which step differs); on failure sets run_error and returns 1.
step() {
  local in=$1 out=$2 preload=() status seconds kib
  shift 2
  [ "$run_alloc" = lib ] && preload=(LD_PRELOAD="$lib" "${lib_env[@]}")
  /usr/bin/time -o "$run_dir/time" -f '%e %M' \
    timeout -k 10 "$STEP_TIMEOUT_SECONDS" env -i "${base_env[@]}" "${preload[@]}" "$@" \
    <"$in" >"$out" 2>>"$run_dir/stderr"
  status=$?
  if [ "$status" -ne 0 ]; then
    local what="exit status $status"
    [ "$status" -eq 124 ] && what="timed out after $STEP_TIMEOUT_SECONDS s"
    grep -q 'terminated by signal' "$run_dir/time" && what=$(grep -m1 'terminated by signal' "$run_dir/time")
    run_error="'$(basename "$1") ${*:2}' failed ($what): $(tail -n 3 "$run_dir/stderr" | tr '\n' ' ' | cut -c1-300)"
    return 1
  fi
  read -r seconds kib < <(tail -n 1 "$run_dir/time")
  printf '%s s %s KiB: %s\n' "$seconds" "$kib" "$(basename "$1") ${*:2}" >>"$run_dir/steps"
  run_seconds=$(awk -v a="$run_seconds" -v b="$seconds" 'BEGIN { printf "%.2f", a + b }')
  [ "$kib" -gt "$run_rss_kib" ] && run_rss_kib=$kib
  return 0
}

# same FILE REF_FILE: says how FILE differs from the glibc run's.
same() {
  local difference
  difference=$(cmp -- "$1" "$2" 2>&1) && return 0
  echo "$(basename "$1") differs from glibc's: ${difference##*: }"
  return 1
}

# --- The programs: run_NAME runs the steps in run_dir, check_NAME DIR REF
# --- compares a run's outputs with the reference glibc run's ----------------

run_python3() { step /dev/null "$run_dir/stdout" "$python" "$inputs/workload.py"; }
check_python3() { same "$1/stdout" "$2/stdout"; }

run_sqlite3() { step "$inputs/sql" "$run_dir/stdout" sqlite3 -batch "$run_dir/items.db"; }
check_sqlite3() {
  [ "$(tail -n 1 "$1/stdout")" = ok ] || { echo "PRAGMA integrity_check did not say ok"; return 1; }
  same "$1/stdout" "$2/stdout" && same "$1/items.db" "$2/items.db"
}

run_git() {
  local repo=$run_dir/repo
  cp -r "$inputs/gitfiles/v1" "$repo" &&
    step /dev/null "$run_dir/init.out" git init -q "$repo" &&
    step /dev/null "$run_dir/add1.out" git -C "$repo" add -A &&
    step /dev/null "$run_dir/commit1.out" git -C "$repo" commit -q -m "version 1" &&
    find "$repo" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} + &&
    cp -r "$inputs/gitfiles/v2/." "$repo/" &&
    step /dev/null "$run_dir/add2.out" git -C "$repo" add -A &&
    step /dev/null "$run_dir/commit2.out" git -C "$repo" commit -q -m "version 2" &&
    step /dev/null "$run_dir/log.out" git -C "$repo" log -p --stat &&
    step /dev/null "$run_dir/gc.out" git -C "$repo" gc -q &&
    step /dev/null "$run_dir/fsck.out" git -C "$repo" fsck --full --strict &&
    step /dev/null "$run_dir/ids.out" git -C "$repo" rev-parse HEAD 'HEAD^{tree}' HEAD~1 'HEAD~1^{tree}' &&
    step /dev/null "$run_dir/objects.out" git -C "$repo" cat-file --batch-all-objects --batch-check
}
check_git() {
  [ "$(wc -l <"$1/objects.out")" -gt 2000 ] || { echo "fewer than 2,000 objects in the repository"; return 1; }
  local out
  for out in init add1 commit1 add2 commit2 log gc fsck ids objects; do
    same "$1/$out.out" "$2/$out.out" || return 1
  done
}

run_gcc() {
  local sources=("$inputs"/gcc/src/*.c "$inputs"/gcc/src/*/*.c "$inputs/gcc/generated.c")
  mkdir -p "$run_dir/objects" && cd "$run_dir/objects" &&
    step /dev/null "$run_dir/stdout" gcc -O2 -std=c11 -frandom-seed=poolkit -DPK_BUILDING_LIBRARY \
      -I"$inputs/gcc/include" -I"$inputs/gcc/src" -c "${sources[@]}"
  local status=$?
  cd "$work" || return 1
  return $status
}
check_gcc() {
  local sources=("$inputs"/gcc/src/*.c "$inputs"/gcc/src/*/*.c "$inputs/gcc/generated.c") object objects
  objects=("$1"/objects/*.o)
  [ "${#objects[@]}" -eq "${#sources[@]}" ] || { echo "${#objects[@]} .o files for ${#sources[@]} sources"; return 1; }
  for object in "${objects[@]}"; do
    same "$object" "$2/objects/$(basename "$object")" || return 1
  done
  same "$1/stdout" "$2/stdout"
}

# round_trip_check DIR REF SUFFIX: the compressed file equals the glibc
# run's, and its decompression the input (then removed: 50 MiB a run).
round_trip_check() {
  same "$1/text.$3" "$2/text.$3" || return 1
  if ! cmp -s "$1/text.out" "$inputs/text"; then
    echo "the decompressed text.$3 differs from the input"
    return 1
  fi
  rm -f "$1/text.out"
}

run_xz() {
  step "$inputs/text" "$run_dir/text.xz" xz -T2 -1 -c &&
    step "$run_dir/text.xz" "$run_dir/text.out" xz -T2 -d -c
}
check_xz() { round_trip_check "$1" "$2" xz; }

run_pigz() {
  step "$inputs/text" "$run_dir/text.gz" pigz -p 2 -6 -n -c &&
    step "$run_dir/text.gz" "$run_dir/text.out" pigz -p 2 -d -c
}
check_pigz() { round_trip_check "$1" "$2" gz; }

run_sort() { step /dev/null "$run_dir/sorted" sort --parallel=2 -t "$(printf '\t')" -k2,2n -k1,1 "$inputs/text"; }
check_sort() {
  [ "$(wc -c <"$1/sorted")" -eq "$(wc -c <"$inputs/text")" ] || { echo "sorted output is not the input's size"; return 1; }
  same "$1/sorted" "$2/sorted"
}

# --- The preload check and one program's runs -------------------------------

# lib_is_mapped NAME: starts NAME's program under LD_PRELOAD=LIB, blocked
# reading an empty pipe, and succeeds if LIB is in its /proc/PID/maps. Stops
# looking once the program's libc is mapped: ld.so maps preloads first.
lib_is_mapped() {
  local name=$1 fifo=$work/tmp/check.fifo pid fd tries mapped=1 program program_path args exe maps
  program=$(command -v "${binary[$name]}") && program_path=$(realpath "$program") || return 1
  read -r -a args <<<"${waits_on_stdin[$name]}"
  rm -f "$fifo" && mkfifo "$fifo" || return 1
  env -i "${base_env[@]}" LD_PRELOAD="$lib" "$program" "${args[@]}" \
    <"$fifo" >/dev/null 2>"$work/tmp/check.stderr" &
  pid=$!
  exec {fd}>"$fifo"
  for ((tries = 0; tries < 100; ++tries)); do
    [ -d "/proc/$pid" ] || break
    # The exe link first: if it is already the program, the maps read after
    # it are the program's, not those of the shell or env before its exec.
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null)
    maps=$(cat "/proc/$pid/maps" 2>/dev/null)
    if awk -v lib="$lib" '$6 == lib { found = 1 } END { exit !found }' <<<"$maps"; then
      mapped=0
      break
    fi
    [ "$exe" = "$program_path" ] && [[ $maps == */libc.so* ]] && break
    sleep 0.05
  done
  exec {fd}>&-
  wait "$pid"
  rm -f "$fifo"
  return $mapped
}

# median NUMBER...: the middle one (the mean of the middle two for an even count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ratio A B: B / A with two decimals, n/a when A is zero.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.2fx", b / a; else printf "n/a" }'; }

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

passed=0 failed=0 real_lines=()

fail() {
  printf '%-8s FAILED: %s\n' "$1" "$2"
  failed=$((failed + 1))
}

# run_program NAME: its runs, comparison and result line.
run_program() {
  local name=$1 why i alloc ref_dir glibc_times=() lib_times=() glibc_rss=0 lib_rss=0
  local -A tool_package=([/usr/bin/time]=time [timeout]=coreutils [${binary[$name]}]=${package[$name]})
  for tool in /usr/bin/time timeout "${binary[$name]}"; do
    command -v "$tool" >/dev/null ||
      { fail "$name" "$tool not found: install the Debian package ${tool_package[$tool]} (scripts/deps.sh test)"; return; }
  done
  prepare_error=""
  prepare_"$name" || { fail "$name" "${prepare_error:-copying its inputs failed}"; return; }
  lib_is_mapped "$name" ||
    { fail "$name" "LD_PRELOAD=$lib is not mapped into ${binary[$name]} ($(head -n 2 "$work/tmp/check.stderr" | tr '\n' ' '))"; return; }
  ref_dir=$work/$name/glibc-1
  for ((i = 1; i <= repeats; ++i)); do
    for alloc in glibc lib; do
      run_alloc=$alloc run_dir=$work/$name/$alloc-$i run_seconds=0 run_rss_kib=0 run_error=""
      mkdir -p "$run_dir"
      [ "$alloc" = lib ] && alloc=$label
      run_"$name" || { fail "$name" "$alloc run $i: ${run_error:-preparing the run failed}"; return; }
      why=$(check_"$name" "$run_dir" "$ref_dir") || { fail "$name" "$alloc run $i: $why"; return; }
      if [ "$run_alloc" = glibc ]; then
        glibc_times+=("$run_seconds")
        [ "$run_rss_kib" -gt "$glibc_rss" ] && glibc_rss=$run_rss_kib
      else
        lib_times+=("$run_seconds")
        [ "$run_rss_kib" -gt "$lib_rss" ] && lib_rss=$run_rss_kib
      fi
      # Keep the reference run and the last one of each allocator.
      if [ "$run_dir" != "$ref_dir" ] && [ "$i" -lt "$repeats" ]; then rm -rf "$run_dir"; fi
    done
  done
  local glibc_s lib_s
  glibc_s=$(median "${glibc_times[@]}")
  lib_s=$(median "${lib_times[@]}")
  printf '%-8s ok  glibc %6s s %7s MiB   %s %6s s %7s MiB   (%s time, %s RSS)\n' "$name" \
    "$glibc_s" "$(mib "$glibc_rss")" "$label" "$lib_s" "$(mib "$lib_rss")" \
    "$(ratio "$glibc_s" "$lib_s")" "$(ratio "$glibc_rss" "$lib_rss")"
  real_lines+=("real $name $glibc_s $lib_s $glibc_rss $lib_rss")
  passed=$((passed + 1))
}

cd "$work" || exit 1
echo "real_programs.sh: glibc vs LD_PRELOAD=$lib ($label), $repeats run(s) each; peak RSS: largest process of each step's tree"
for name in "${selected[@]}"; do
  run_program "$name"
done
[ "$bench" -eq 1 ] && [ ${#real_lines[@]} -gt 0 ] && printf '%s\n' "${real_lines[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
