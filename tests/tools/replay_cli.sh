#!/usr/bin/env bash
# replay_cli.sh POOLKIT REPLAY_TRACES WORKDIR: `poolkit replay` on the
# synthetic traces of tests/tools/replay_traces.c (their events are listed
# there), everything left in WORKDIR:
# - the known trace at the default arena: the trace's counts and peak exact,
#   every allocator with 218 calls, 2 skipped, no failure; pool left out;
# - in a 1 MiB arena: every allocator's first failure is event 104, malloc of
#   2097152 B (1 failure, 3 skipped);
# - the one-size trace: pool is in `all`, with the same counts as the others;
# - --plot: a page with one inline SVG per plot (2), nothing fetched;
# - bad input, each a message saying what is wrong and exit status 2: an
#   unknown allocator (the valid names listed), an arena too small for an
#   allocator (its name and the minimum), sizes that do not parse, pool on a
#   trace of several sizes, a missing file, a file that is not a trace, a
#   truncated one (the byte offset), one of version 2, no trace, an unknown
#   option.
set -u
if [ $# -ne 3 ]; then
  echo "usage: replay_cli.sh POOLKIT REPLAY_TRACES WORKDIR" >&2
  exit 2
fi
poolkit=$1
make_traces=$2
work=$3
passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "replay_cli: FAIL: $*" >&2; failed=$((failed + 1)); }
check() { # check DESCRIPTION COMMAND...: passes when the command succeeds
  local what=$1
  shift
  if "$@"; then ok; else fail "$what"; fi
}

rm -rf "$work"
mkdir -p "$work"
"$make_traces" "$work" || { echo "replay_cli: FAIL: cannot write the traces" >&2; exit 1; }
known=$work/known.pktrace

replay() { # replay NAME ARGS...: runs poolkit replay, output in NAME.out/.err, status in NAME.rc
  local name=$1
  shift
  timeout -k 5 120 "$poolkit" replay "$@" >"$work/$name.out" 2>"$work/$name.err"
  echo $? >"$work/$name.rc"
}
status() { cat "$work/$1.rc"; }
# field NAME ALLOCATOR COLUMN: a column of an allocator's line in the table
# (columns: allocator calls failures skipped peak_in_use arena_used
# peak_ext_frag alloc_p50 alloc_p99 alloc_max free_p50 free_p99 free_max
# first_failure...).
field() { awk -v a="$2" -v c="$3" '$1 == a && NF >= 14 { print $c; exit }' "$work/$1.out"; }
first_failure() { awk -v a="$2" '$1 == a && NF >= 14 { $1 = $2 = $3 = $4 = $5 = $6 = $7 = $8 = $9 = $10 = $11 = $12 = $13 = ""; sub(/^ +/, ""); print; exit }' "$work/$1.out"; }

all_names="heap fit-first fit-best fit-next buddy classes arena"

# ---- The known trace, default arena ----
replay default "$known"
check "default: exit $(status default), stderr: $(head -c 300 "$work/default.err")" [ "$(status default)" -eq 0 ]
check "default: trace counts" grep -q "220 events (0 missing): 66 malloc, 32 calloc, 8 realloc, 8 aligned, 106 free" "$work/default.out"
check "default: pid and threads" grep -q "version 1, pid 4242, 1 thread," "$work/default.out"
check "default: peak" grep -q "peak live: 2178304 B requested in 105 blocks, after event 104 (0.105 ms); largest request 2097152 B; several sizes" "$work/default.out"
check "default: arena size" grep -q "arena: 8716288 B per allocator (default: 4 x the peak" "$work/default.out"
for a in $all_names; do
  check "default: $a calls $(field default "$a" 2)" [ "$(field default "$a" 2)" = 218 ]
  check "default: $a failures $(field default "$a" 3)" [ "$(field default "$a" 3)" = 0 ]
  check "default: $a skipped $(field default "$a" 4)" [ "$(field default "$a" 4)" = 2 ]
  check "default: $a first failure '$(first_failure default "$a")'" [ "$(first_failure default "$a")" = none ]
  peak=$(field default "$a" 5)
  check "default: $a peak_in_use $peak below the peak requested" [ "${peak:-0}" -ge 2178304 ]
done
check "default: pool listed for a trace of several sizes" [ -z "$(field default pool 2)" ]
check "default: pool's note" grep -q "^pool: left out" "$work/default.out"
check "default: arena's note" grep -q "^arena: frees reclaim nothing" "$work/default.out"
check "default: classes' configuration" grep -q "^classes: 5 classes: " "$work/default.out"
# The arena reclaims nothing: its in_use at the end is at least every byte allocated.
arena_peak=$(field default arena 5)
check "default: arena's peak_in_use $arena_peak below every byte allocated (2182400)" [ "${arena_peak:-0}" -ge 2182400 ]

# ---- A 1 MiB arena: the 2 MiB malloc fails everywhere, at event 104 ----
replay small "$known" --arena 1M
check "1M: exit $(status small), stderr: $(head -c 300 "$work/small.err")" [ "$(status small)" -eq 0 ]
check "1M: arena size" grep -q "arena: 1048576 B per allocator (--arena)" "$work/small.out"
for a in $all_names; do
  check "1M: $a first failure '$(first_failure small "$a")'" \
    [ "$(first_failure small "$a")" = "event 104 malloc 2097152 B at 0.105 ms" ]
  check "1M: $a failures $(field small "$a" 3)" [ "$(field small "$a" 3)" = 1 ]
  check "1M: $a calls $(field small "$a" 2)" [ "$(field small "$a" 2)" = 217 ]
  check "1M: $a skipped $(field small "$a" 4)" [ "$(field small "$a" 4)" = 3 ]
done
# The same with the size in other spellings, and one allocator at a time.
replay small_k "$known" --arena=1024k --allocator buddy
check "1024k: buddy alone" [ "$(status small_k)" -eq 0 ] && [ "$(first_failure small_k buddy)" = "event 104 malloc 2097152 B at 0.105 ms" ]
check "1024k: nothing else" [ -z "$(field small_k heap 2)" ]

# ---- One size: pool takes part ----
replay fixed "$work/fixed.pktrace"
check "fixed: exit $(status fixed), stderr: $(head -c 300 "$work/fixed.err")" [ "$(status fixed)" -eq 0 ]
check "fixed: counts" grep -q "200 events (0 missing): 100 malloc, 0 calloc, 0 realloc, 0 aligned, 100 free" "$work/fixed.out"
check "fixed: threads" grep -q "pid 4243, 2 threads," "$work/fixed.out"
check "fixed: peak" grep -q "peak live: 2448 B requested in 51 blocks, after event 148 " "$work/fixed.out"
for a in $all_names pool; do
  check "fixed: $a calls $(field fixed "$a" 2)" [ "$(field fixed "$a" 2)" = 200 ]
  check "fixed: $a failures $(field fixed "$a" 3)" [ "$(field fixed "$a" 3)" = 0 ]
done
check "fixed: pool's blocks" grep -q "^pool: blocks of 48 B" "$work/fixed.out"
check "fixed: pool's peak_in_use" [ "$(field fixed pool 5)" = 2448 ]

# ---- --plot ----
if command -v gnuplot >/dev/null 2>&1; then
  replay plot "$known" --allocator heap,buddy,arena --plot "$work/page/replay.html"
  page=$work/page/replay.html
  check "plot: exit $(status plot), stderr: $(head -c 300 "$work/plot.err")" [ "$(status plot)" -eq 0 ]
  check "plot: page written" [ -s "$page" ]
  check "plot: the page's path printed" grep -q "^page: $page$" "$work/plot.out"
  svgs=$(grep -o '<svg' "$page" 2>/dev/null | wc -l)
  check "plot: $svgs SVG plots, 2 expected" [ "$svgs" -eq 2 ]
  check "plot: the table" grep -q '<table' "$page"
  check "plot: every allocator in the page" grep -q 'fit-first\|buddy' "$page"
  check "plot: nothing fetched" bash -c "! grep -Eq '<script|<link|<img|<iframe|src=|@import' '$page'"
else
  fail "gnuplot not found: install the Debian package gnuplot-nox (scripts/deps.sh test does)"
fi

# ---- Bad input: a message that says what is wrong, exit status 2 ----
bad() { # bad NAME PATTERN ARGS...: exit 2 and stderr matching PATTERN (grep -E)
  local name=$1 pattern=$2
  shift 2
  replay "$name" "$@"
  check "$name: exit $(status "$name") (2 expected), stderr: $(head -c 300 "$work/$name.err")" \
    [ "$(status "$name")" -eq 2 ]
  check "$name: message '$(head -c 300 "$work/$name.err")' lacks /$pattern/" grep -Eq -e "$pattern" "$work/$name.err"
  check "$name: nothing on stdout" [ ! -s "$work/$name.out" ]
}
bad unknown_allocator "unknown allocator 'tlsf'; valid: all, heap, fit-first, fit-best, fit-next, buddy, classes, arena, pool" \
  "$known" --allocator tlsf
bad unknown_in_list "unknown allocator 'nope'" "$known" --allocator heap,nope
bad tiny_arena "an arena of 16 B is too small for heap: it needs at least [0-9]+ B" "$known" --arena 16 --allocator heap
bad tiny_arena_all "too small for buddy: it needs at least [0-9]+ B" "$known" --arena 16
bad tiny_classes "too small for classes: it needs at least [0-9]+ B" "$known" --arena 16 --allocator classes
bad tiny_pool "too small for pool: it needs at least [0-9]+ B" "$work/fixed.pktrace" --arena 16 --allocator pool
# The minimum printed is the minimum: heap sets up there (and replays).
min=$(grep -Eo 'at least [0-9]+' "$work/tiny_arena.err" | grep -Eo '[0-9]+')
replay at_minimum "$known" --arena "${min:-0}" --allocator heap
check "heap at its minimum ${min:-?} B: exit $(status at_minimum), $(head -c 200 "$work/at_minimum.err")" [ "$(status at_minimum)" -eq 0 ]
replay below_minimum "$known" --arena "$(( ${min:-1} - 1 ))" --allocator heap
check "heap one byte below its minimum: exit $(status below_minimum)" [ "$(status below_minimum)" -eq 2 ]
for size in abc 12Q 0 -5 1.5M "" 99999999999999999999 16777216T 1KiB; do
  bad "arena_${size:-empty}" "--arena '$size': need a number of bytes" "$known" --arena "$size"
done
bad arena_overflow "--arena '17179869184G'" "$known" --arena 17179869184G
bad pool_mixed "pool serves one size, and this trace asks several" "$known" --allocator pool
bad missing_file "$work/none.pktrace" "$work/none.pktrace"
printf 'not a trace at all, just text\n' >"$work/text.pktrace"
bad not_a_trace "text.pktrace: .*byte 0" "$work/text.pktrace"
bad truncated "truncated.pktrace: .*byte [0-9]+" "$work/truncated.pktrace"
bad version2 "version2.pktrace: .*version 2" "$work/version2.pktrace"
bad no_trace "no trace given"
bad unknown_option "unknown option '--arenas'" "$known" --arenas 1M
bad no_value "--arena needs a value" "$known" --arena
bad two_traces "one trace at a time" "$known" "$known"

replay help --help
check "--help: exit $(status help)" [ "$(status help)" -eq 0 ]
check "--help lists --arena" grep -q -- "--arena SIZE" "$work/help.out"

echo "replay_cli: $passed passed, $failed failed (files in $work)"
[ "$failed" -eq 0 ]
