#!/usr/bin/env bash
# The tool tests of the debug build (tests/tools_debug/CMakeLists.txt): runs
# each misuse of misuse.c under a tool and checks the tool's report names the
# kind of access and the line marked "MARK: <case>" in misuse.c; then runs
# the same cases built without the annotations and checks the tool reports
# nothing (so the reports come from poolkit's annotations, not from luck).
# usage: run.sh valgrind|asan SOURCE_DIR ANNOTATED_BIN PLAIN_BIN
set -u
tool=$1 src=$2 annotated=$3 plain=$4
cases="overflow use-after-free atomic-use-after-free"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failed=0

line_of() { grep -n "MARK: $1 \*/" "$src/tests/tools_debug/misuse.c" | cut -d: -f1; }

run_tool() { # bin case log -> exit code
    case $tool in
    valgrind) valgrind --error-exitcode=99 --leak-check=no "$1" "$2" >"$3" 2>&1 ;;
    asan) ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 "$1" "$2" >"$3" 2>&1 ;;
    esac
}

want_access() { # case -> the access the report must name
    case $tool:$1 in
    valgrind:overflow) echo "Invalid write of size 1" ;;
    valgrind:*) echo "Invalid read of size 1" ;;
    asan:overflow) echo "WRITE of size 1" ;;
    asan:*) echo "READ of size 1" ;;
    esac
}

for c in $cases; do
    line=$(line_of "$c")
    log=$out/$c.annotated
    run_tool "$annotated" "$c" "$log"
    rc=$?
    access=$(want_access "$c")
    kind_ok=1
    if [ "$tool" = asan ]; then
        grep -q "ERROR: AddressSanitizer: use-after-poison" "$log" || kind_ok=0
    fi
    if [ "$rc" -eq 0 ] || [ "$kind_ok" -eq 0 ] || ! grep -q "$access" "$log" ||
        ! grep -A4 "$access" "$log" | grep -q "misuse.c:$line"; then
        echo "FAIL $tool $c: no report of '$access' at misuse.c:$line (exit $rc):"
        cat "$log"
        failed=$((failed + 1))
    else
        echo "ok   $tool $c: '$access' at misuse.c:$line"
    fi
    log=$out/$c.plain
    run_tool "$plain" "$c" "$log"
    rc=$?
    if [ "$rc" -ne 0 ] || grep -q "$access" "$log"; then
        echo "FAIL $tool $c without annotations: the tool reported something (exit $rc):"
        cat "$log"
        failed=$((failed + 1))
    else
        echo "ok   $tool $c without annotations: nothing reported (the report above is the annotations')"
    fi
done
[ "$failed" -eq 0 ]
