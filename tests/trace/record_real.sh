#!/usr/bin/env bash
# record_real.sh LIB TRACE_CHECK DIR [PROGRAM...]: records real programs with
# LD_PRELOAD=LIB (libpoolkit-trace.so) into DIR/<name>.trace and checks each
# trace with TRACE_CHECK (tests/trace/trace_check.c): it loads, no seq is
# missing, at least 5,000 events, and it is consistent (no block returned
# while live; every pointer freed or reallocated returned before and live).
#   sqlite3  a table of 20,000 rows made by a recursive CTE, an index, an
#            aggregate, a DELETE, PRAGMA integrity_check
#   python3  PYTHONMALLOC=malloc (every object through malloc): a dict, a
#            list and json round trip
#   PROGRAM  each one given, without arguments (tests/trace/cross_thread:
#            blocks passed between four threads)
# Only the first process's file is checked (no child process here). A
# program that is not installed fails its test (scripts/deps.sh test
# installs both). Ends with "N passed, N failed"; exit status 1 if any failed.
set -u
if [ $# -lt 3 ]; then
  echo "usage: $0 LIB TRACE_CHECK DIR [PROGRAM...]" >&2
  exit 2
fi
lib=$1 check=$2 dir=$3
shift 3
rm -rf "$dir" && mkdir -p "$dir" || exit 2
passed=0 failed=0

# record NAME COMMAND...: runs COMMAND traced (stdin from DIR/NAME.in), then
# checks its trace.
record() {
  local name=$1 trace=$dir/$1.trace
  shift
  if ! env POOLKIT_TRACE="$trace" LD_PRELOAD="$lib" "$@" <"$dir/$name.in" >"$dir/$name.out" 2>"$dir/$name.err"; then
    echo "FAILED  $name: the traced run failed: $(tail -n 3 "$dir/$name.err" | tr '\n' ' ')"
    failed=$((failed + 1))
  elif "$check" "$trace" 5000 >"$dir/$name.check" 2>&1; then
    echo "ok      $(cat "$dir/$name.check")"
    passed=$((passed + 1))
  else
    echo "FAILED  $name: $(tr '\n' ' ' <"$dir/$name.check")"
    failed=$((failed + 1))
  fi
}

cat >"$dir/sqlite3.in" <<'SQL'
CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, price REAL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
  INSERT INTO items SELECT i, 'item ' || i || printf('%.*c', i % 50, 'x'), i * 0.25 FROM n;
CREATE INDEX items_by_name ON items(name);
SELECT count(*), sum(price), max(length(name)) FROM items;
DELETE FROM items WHERE id % 3 = 0;
SELECT count(*) FROM items WHERE name LIKE 'item 1%';
PRAGMA integrity_check;
SQL
record sqlite3 sqlite3 -batch "$dir/items.db"

cat >"$dir/python3.in" <<'PY'
import json
table = {str(i): [i, str(i) * 3, {"k": i}] for i in range(20000)}
text = json.dumps(table)
back = json.loads(text)
print(len(text), len(back), sum(v[0] for v in back.values()))
PY
record python3 env PYTHONMALLOC=malloc /usr/bin/python3 -

for program in "$@"; do
  : >"$dir/$(basename "$program").in"
  record "$(basename "$program")" "$program"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
