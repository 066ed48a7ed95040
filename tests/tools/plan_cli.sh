#!/usr/bin/env bash
# plan_cli.sh POOLKIT TEST_PLAN CC INCLUDE_DIR WORKDIR: `poolkit plan` as a
# user runs it, on the synthetic traces test_plan writes (test_plan --traces):
# - the plan of the known trace (10 x 48 B, 3 x 200 B, one 100 KiB live at
#   once): exit 0, the exact PK_POOL_DEFINE and pk_class_spec lines, the heap
#   limit, the verdict; the C it prints compiles (CC -std=c11 -Wall -Wextra
#   -Werror -pedantic against INCLUDE_DIR), to stdout and with --out;
# - --margin 25 rounds the counts up (13 and 4);
# - bad input, each with a message saying what is wrong and exit status 2:
#   --margin not a number or out of 0..1000, an unknown option, no trace, two
#   traces, a missing file, a file that is not a trace, a trace of version 2,
#   a truncated trace, a trace with no allocation, one aligned to 24 (no
#   poolkit allocator serves it), an unwritable --out (and no file left
#   behind by a refused run).
# Everything stays in WORKDIR for a look. Ends with "N passed, N failed".
set -u
if [ $# -ne 5 ]; then
  echo "usage: plan_cli.sh POOLKIT TEST_PLAN CC INCLUDE_DIR WORKDIR" >&2
  exit 2
fi
poolkit=$1
test_plan=$2
cc=$3
include=$4
work=$5
passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "plan_cli: FAIL: $*" >&2; failed=$((failed + 1)); }

rm -rf "$work"
mkdir -p "$work"
"$test_plan" --traces "$work/traces" || { echo "plan_cli: FAIL: test_plan --traces" >&2; exit 1; }
traces=$work/traces

# plan NAME ARGS...: poolkit plan ARGS, stdout in NAME.out, stderr in NAME.err, status in $rc.
plan() {
  local name=$1
  shift
  timeout -k 5 120 "$poolkit" plan "$@" >"$work/$name.out" 2>"$work/$name.err"
  rc=$?
}

# has NAME.STREAM TEXT: the file holds TEXT (fixed string).
has() {
  if grep -qF -- "$2" "$work/$1"; then ok; else fail "$1 lacks '$2'"; fi
}

compiles() { # compiles FILE.c
  if "$cc" -std=c11 -Wall -Wextra -Werror -pedantic -I "$include" -c "$1" -o "${1%.c}.o" \
    2>"${1%.c}.cc.err"; then
    ok
  else
    fail "the plan $1 does not compile:"
    cat "${1%.c}.cc.err" >&2
  fi
}

# The known trace, C on stdout.
plan known "$traces/known.trace"
if [ "$rc" -eq 0 ]; then ok; else fail "plan known.trace exited $rc: $(cat "$work/known.err")"; fi
has known.out "PK_POOL_DEFINE(plan_pool_48, 48, 10, 0);"
has known.out "PK_POOL_DEFINE(plan_pool_208, 208, 3, 0);"
has known.out "{48, 10, 0}, "
has known.out "{208, 3, 0}, "
has known.out "#define PLAN_HEAP_ABOVE 208 "
has known.out "unsigned char plan_heap_buffer["
has known.out "One pk_heap alone needs "
has known.out "Replayed on this plan without failure"
cp "$work/known.out" "$work/known.c"
compiles "$work/known.c"

# --out: the C in the file, a summary on stdout.
plan known_out "$traces/known.trace" --out "$work/known_out.c"
if [ "$rc" -eq 0 ]; then ok; else fail "plan --out exited $rc: $(cat "$work/known_out.err")"; fi
has known_out.c "PK_POOL_DEFINE(plan_pool_48, 48, 10, 0);"
has known_out.out "Replayed on the plan without failure"
compiles "$work/known_out.c"

# The other traces plan, replay and compile.
for name in merge heap_move; do
  plan "$name" "$traces/$name.trace" --out "$work/$name.c"
  if [ "$rc" -eq 0 ]; then ok; else fail "plan $name.trace exited $rc: $(cat "$work/$name.err")"; fi
  compiles "$work/$name.c"
done
has merge.c "PK_POOL_DEFINE(plan_pool_64, 64, 5, 64);"

# --margin 25: 10 -> 13, 3 -> 4.
plan margin25 "$traces/known.trace" --margin 25
if [ "$rc" -eq 0 ]; then ok; else fail "plan --margin 25 exited $rc: $(cat "$work/margin25.err")"; fi
has margin25.out "PK_POOL_DEFINE(plan_pool_48, 48, 13, 0);"
has margin25.out "PK_POOL_DEFINE(plan_pool_208, 208, 4, 0);"
has margin25.out "margin 25%"

# bad NAME MESSAGE ARGS...: exit status 2 and MESSAGE on stderr, nothing on stdout.
bad() {
  local name=$1 message=$2
  shift 2
  plan "$name" "$@"
  if [ "$rc" -eq 2 ]; then ok; else fail "plan $* exited $rc, not 2"; fi
  has "$name.err" "$message"
  if [ ! -s "$work/$name.out" ]; then ok; else fail "plan $* printed on stdout"; fi
}
bad margin_word "--margin 'ten'" "$traces/known.trace" --margin ten
bad margin_high "--margin '1001'" "$traces/known.trace" --margin 1001
bad margin_negative "--margin '-1'" "$traces/known.trace" --margin -1
bad margin_fraction "--margin '2.5'" "$traces/known.trace" --margin 2.5
bad margin_missing "--margin needs a value" "$traces/known.trace" --margin
bad heap_above_word "--heap-above 'big'" "$traces/known.trace" --heap-above big
bad unknown_option "unknown option '--fast'" "$traces/known.trace" --fast
bad no_trace "no trace given"
bad two_traces "one trace at a time" "$traces/known.trace" "$traces/merge.trace"
bad missing_file "$traces/missing.trace" "$traces/missing.trace"
bad not_a_trace "bad magic" "$traces/not_a_trace.trace"
bad version2 "version 2" "$traces/version2.trace"
bad truncated "byte " "$traces/truncated.trace"
bad empty "no allocation" "$traces/empty.trace"
bad odd_align "alignment 24, not a power of two" "$traces/odd_align.trace"
bad empty_out "no allocation" "$traces/empty.trace" --out "$work/empty_out.c"
if [ ! -e "$work/empty_out.c" ]; then ok; else fail "a refused run left $work/empty_out.c"; fi
bad unwritable_out "--out '$work/no/such/dir/plan.c'" "$traces/known.trace" --out "$work/no/such/dir/plan.c"

plan help --help
if [ "$rc" -eq 0 ]; then ok; else fail "plan --help exited $rc"; fi
has help.out "usage: poolkit plan TRACE"

echo "plan_cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
