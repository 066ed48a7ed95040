#!/usr/bin/env bash
# demo_e2e.sh POOLKIT WORKDIR: `poolkit demo` end to end (issue 7, "How it is
# checked"), everything left in WORKDIR for a look:
# - three small runs (--ops, --out, --json): seeds 7, 7 and 8; their JSON is
#   checked by check_demo_json.py (every allocator present, numbers finite,
#   failures counted, the same seed gives the same counts, another different);
# - the page path is the last line printed; the page fetches nothing;
# - bad options and arguments: a message naming them, exit status 2;
# - the page of run 1 in headless Chromium: a screenshot (screenshot.png) and
#   the DOM it built, which must hold the tables and the SVG plots.
# A missing gnuplot, chromium or python3 fails the test, naming the package.
# The operation count is small (20,000; POOLKIT_RANDOM_OPS lowers it), so the
# test takes seconds even with a sanitizer-built poolkit.
set -u
if [ $# -ne 2 ]; then
  echo "usage: demo_e2e.sh POOLKIT WORKDIR" >&2
  exit 2
fi
poolkit=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
failed=0
fail() { echo "demo_e2e: FAIL: $*" >&2; failed=1; }

need() { # need COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 ||
    { echo "demo_e2e: FAIL: $1 not found: install the Debian package $2 (scripts/deps.sh test does)" >&2; exit 1; }
}
need python3 python3
need gnuplot gnuplot-nox
need chromium chromium
[ -x "$poolkit" ] || { echo "demo_e2e: FAIL: $poolkit is not an executable" >&2; exit 1; }

ops=20000
if [ -n "${POOLKIT_RANDOM_OPS:-}" ] && [ "$POOLKIT_RANDOM_OPS" -lt "$ops" ] 2>/dev/null; then
  ops=$POOLKIT_RANDOM_OPS
fi

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)

# run NAME SEED: poolkit demo into $work/NAME (stdout NAME.out, stderr NAME.err).
run() {
  local name=$1 seed=$2 rc
  timeout -k 5 120 "$poolkit" demo --ops "$ops" --seed "$seed" --out "$work/$name" --json \
    >"$work/$name.out" 2>"$work/$name.err"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    fail "poolkit demo --seed $seed exited $rc:"
    cat "$work/$name.err" >&2
    return 1
  fi
  # The page's path comes last.
  local last
  last=$(tail -n 1 "$work/$name.out")
  case $last in
    *"$work/$name/index.html"*) ;;
    *) fail "the last line of poolkit demo --out $work/$name is not the page's path: '$last'" ;;
  esac
  [ -s "$work/$name/index.html" ] || fail "$work/$name/index.html not written"
  # The JSON: a file of the out folder, or on standard output (from the line
  # "{" to the line "}").
  local json
  json=$(find "$work/$name" -maxdepth 1 -name '*.json' | head -n 1)
  if [ -n "$json" ]; then
    cp "$json" "$work/$name.json"
  else
    sed -n '/^{/,/^}/p' "$work/$name.out" >"$work/$name.json"
  fi
  [ -s "$work/$name.json" ] || fail "no JSON from poolkit demo --json (run $name)"
}

start=$SECONDS
run run1 7 && run run2 7 && run run3 8
echo "demo_e2e: 3 runs of $ops operations in $((SECONDS - start)) s"
if [ -s "$work/run1.json" ] && [ -s "$work/run2.json" ] && [ -s "$work/run3.json" ]; then
  python3 "$here/check_demo_json.py" "$ops" "$work/run1.json" "$work/run2.json" "$work/run3.json" ||
    fail "the JSON (see above)"
fi

# Bad options and arguments: exit 2, a message naming the culprit.
bad() { # bad CULPRIT ARGS...
  local culprit=$1 rc
  shift
  timeout -k 5 60 "$poolkit" "$@" >"$work/bad.out" 2>"$work/bad.err"
  rc=$?
  [ "$rc" -eq 2 ] || fail "poolkit $* exited $rc, not 2"
  grep -qF -- "$culprit" "$work/bad.err" ||
    fail "poolkit $*: the message does not name '$culprit': $(head -c 300 "$work/bad.err")"
}
bad --bogus demo --bogus
bad --ops demo --ops
bad abc demo --ops abc
bad 12x demo --ops 12x
bad -5 demo --ops -5
bad xyz demo --seed xyz
bad nosuch demo --allocators malloc,nosuch
bad frobnicate frobnicate
# A page that cannot be written (its folder would be below a file): a
# message, a failure status, no crash.
: >"$work/a-file"
timeout -k 5 60 "$poolkit" demo --ops 1000 --out "$work/a-file/sub" >"$work/bad.out" 2>"$work/bad.err"
rc=$?
{ [ "$rc" -eq 1 ] || [ "$rc" -eq 2 ]; } && [ -s "$work/bad.err" ] ||
  fail "poolkit demo --out below a file exited $rc (message: $(head -c 300 "$work/bad.err"))"
timeout -k 5 60 "$poolkit" demo --help >"$work/help.out" 2>&1 || fail "poolkit demo --help failed"
grep -q -- --ops "$work/help.out" || fail "poolkit demo --help does not list --ops"

page=$work/run1/index.html
if [ -s "$page" ]; then
  # Self-contained: nothing fetched (http only in the SVG namespace names).
  if grep -Eq '<script|<link|<img|<iframe|src=|@import|url\(http' "$page" ||
     grep -o 'http[s]*://[^"]*' "$page" | grep -vqE '^http://www\.w3\.org/(2000/svg|1999/xlink)$'; then
    fail "the page refers to something outside it"
  fi
  svgs=$(grep -o '<svg' "$page" | wc -l)
  [ "$svgs" -ge 3 ] || fail "the page has $svgs SVG plots, at least 3 expected"

  # Headless Chromium: a root container needs --no-sandbox; its own profile
  # folder, so runs never share one. Killed if it hangs.
  chrome=(timeout -k 5 60 chromium --headless=new --no-sandbox --disable-gpu
          --disable-dev-shm-usage --no-first-run --no-default-browser-check
          --disable-extensions --mute-audio --hide-scrollbars
          --user-data-dir="$work/chromium-profile")
  rm -f "$work/screenshot.png"
  "${chrome[@]}" --window-size=1280,5200 --screenshot="$work/screenshot.png" "file://$page" \
    >"$work/chromium-screenshot.log" 2>&1 ||
    fail "chromium --screenshot exited $? (log: $work/chromium-screenshot.log)"
  if [ -s "$work/screenshot.png" ]; then
    python3 - "$work/screenshot.png" <<'EOF' || fail "the screenshot is not a 1280-pixel-wide PNG of a page"
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
width, height = struct.unpack(">II", data[16:24])
assert width == 1280 and height >= 1000, (width, height)
assert len(data) > 50000, f"{len(data)} bytes: a blank page?"
EOF
  else
    fail "no screenshot"
  fi
  "${chrome[@]}" --dump-dom "file://$page" >"$work/dom.html" 2>"$work/chromium-dom.log" ||
    fail "chromium --dump-dom exited $? (log: $work/chromium-dom.log)"
  dom_svgs=$(grep -o '<svg' "$work/dom.html" | wc -l)
  dom_tables=$(grep -o '<table' "$work/dom.html" | wc -l)
  dom_paths=$(grep -o '<path' "$work/dom.html" | wc -l)
  [ "$dom_svgs" -eq "$svgs" ] || fail "the DOM holds $dom_svgs SVG elements, the page $svgs"
  [ "$dom_tables" -ge 5 ] || fail "the DOM holds $dom_tables tables"
  [ "$dom_paths" -ge $((svgs * 5)) ] || fail "the DOM's SVGs hold $dom_paths paths: plots not drawn?"
  grep -q 'malloc versus memory pools' "$work/dom.html" || fail "the DOM lacks the comparison"
  echo "demo_e2e: chromium: $dom_svgs plots, $dom_tables tables; screenshot $work/screenshot.png"
fi
rm -rf "$work/chromium-profile"

if [ "$failed" -ne 0 ]; then
  echo "demo_e2e: failed (files in $work)"
  exit 1
fi
echo "demo_e2e: passed (files in $work)"
