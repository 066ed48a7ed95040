#!/usr/bin/env bash
# static_check.sh [DIR]: clang-tidy and cppcheck over src/ (and include/) and
# tests/, for a release and a debug (PK_DEBUG=1) configuration; the static
# stage of scripts/test.sh. PK_STATIC_PARTS="src" checks src/ alone (default
# "src tests"). Configuration in the repo: .clang-tidy (strict, src/ and
# include/), src/hosted/.clang-tidy, tests/.clang-tidy (looser), and
# .cppcheck-suppressions (each with its reason); cppcheck's options are below.
# Each configuration is configured (not built) with clang in DIR/<config> for
# its compile_commands.json, cut to one entry per source file of src/ and
# tests/ (the test variants compile the same files again). Ends with
# "N passed, N failed" (one check per tool, part and configuration) and exits
# 1 if anything failed.
set -u
cd "$(dirname "$0")/.." || exit
dir=${1:-build/static}
jobs=2
parts=${PK_STATIC_PARTS:-src tests}
passed=0 failed=0

# check NAME COMMAND...: runs one check; its output only when it fails.
check() {
  local name=$1 out start=$SECONDS
  shift
  if out=$("$@" 2>&1); then
    passed=$((passed + 1))
    echo "ok: $name ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1))
    echo "FAIL: $name ($((SECONDS - start)) s)"
    printf '%s\n' "$out" | grep -v -E '^[0-9]+ warnings? (generated|treated as errors)\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^Error while processing'
  fi
}

# The analyzer's default (deep) mode takes over 4 CPU minutes on src/ alone;
# shallow mode (less inlining across calls) takes seconds. One file per
# clang-tidy: a few test files take most of the time (test_pool.c about 20 s),
# so batches would leave a CPU idle.
tidy() {
  local db=$1
  shift
  printf '%s\n' "$@" | xargs -P "$jobs" -n 1 clang-tidy -p "$db" --quiet \
    --extra-arg=-Xclang --extra-arg=-analyzer-config --extra-arg=-Xclang --extra-arg=mode=shallow
}

# cppcheck_run PK_DEBUG PART [FILE...]: src/ with every group of checks but
# the unused-function one (the view's ops are used through a table); for
# tests/, the FILEs (the configuration's own, not tests/cortex-m/, built by a
# cross toolchain with its own defines) with the warning and portability
# groups. ATOMIC_INT_LOCK_FREE and UINT_MAX: cppcheck reads no system header,
# and atomic_pool.c refuses to build without lock-free atomics on a 32-bit
# unsigned int.
cppcheck_run() {
  local debug=$1 part=$2
  shift 2
  local groups=warning,style,performance,portability
  [ "$part" = tests ] && groups=warning,portability
  cppcheck -j "$jobs" --std=c11 --enable="$groups" --inline-suppr --error-exitcode=1 -q \
    --suppressions-list=.cppcheck-suppressions -I include -I src -I tests \
    -DPK_BUILDING_LIBRARY -DPK_DEBUG="$debug" -DATOMIC_INT_LOCK_FREE=2 -DUINT_MAX=4294967295u --library=posix "${@:-$part}"
}

for config in release debug; do
  debug=OFF
  [ "$config" = debug ] && debug=ON
  build=$dir/$config
  mkdir -p "$build"
  if ! CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
       -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DPOOLKIT_TESTS=ON -DPOOLKIT_TOOLS=OFF \
       -DPOOLKIT_DEBUG=$debug -DPOOLKIT_SANITIZE= >"$build/configure.log" 2>&1; then
    cat "$build/configure.log"
    failed=$((failed + 1))
    continue
  fi
  mkdir -p "$build/db"
  python3 - "$build/compile_commands.json" "$build/db/compile_commands.json" "$PWD" <<'PY'
import json, os, sys
entries, seen = [], set()
for e in json.load(open(sys.argv[1])):
    f = os.path.relpath(e["file"], sys.argv[3])
    if f.split(os.sep)[0] in ("src", "tests") and f not in seen:
        seen.add(f)
        entries.append(e)
json.dump(entries, open(sys.argv[2], "w"), indent=1)
PY
  mapfile -t src_files < <(cd "$build/db" && python3 -c 'import json; [print(e["file"]) for e in json.load(open("compile_commands.json"))]' | grep '/src/')
  mapfile -t test_files < <(cd "$build/db" && python3 -c 'import json; [print(e["file"]) for e in json.load(open("compile_commands.json"))]' | grep -v '/src/')
  pk_debug=0
  [ "$config" = debug ] && pk_debug=1
  check "clang-tidy src/ ($config, ${#src_files[@]} files)" tidy "$build/db" "${src_files[@]}"
  check "cppcheck src/ ($config)" cppcheck_run "$pk_debug" src
  if [[ " $parts " == *" tests "* ]]; then
    check "clang-tidy tests/ ($config, ${#test_files[@]} files)" tidy "$build/db" "${test_files[@]}"
    check "cppcheck tests/ ($config, ${#test_files[@]} files)" cppcheck_run "$pk_debug" tests "${test_files[@]}"
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
