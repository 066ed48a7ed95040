#!/usr/bin/env python3
"""stack_check.py [--out DIR]: no recursion and a bounded stack in src/.

Compiles every source of the library (src/, the hosted files too) with gcc
-O2 -fstack-usage -fcallgraph-info=su, once as a release build and once with
PK_DEBUG=1, and fails when, in either build:
  - a function's frame is above the limit (FRAME_LIMIT below, README
    "Bounded stack, no recursion");
  - a function's frame is 'dynamic' and not bounded (alloca, a VLA);
  - the call graph has a cycle (recursion, direct or mutual).
It prints the ten largest frames of each build with the deepest chain of
frames below each (the callee's frames summed along the worst path: what the
call needs on top of its caller's).

The graph holds the calls gcc sees: calls through a pointer (the lock, the
fault handler, a slab's page source and constructors, the generic view's
operations table) are callbacks the caller supplies and are not followed, and
neither are library calls (memcpy, memset, memcmp, the pthread and stdio
calls of src/hosted/).

Before that it checks itself: a fixture with a large frame, a VLA and a
mutual recursion (tests/stack_check/broken.c) must fail each check.
Ends with "N passed, N failed" (one check per build and kind, and the
fixture) and exits 1 if anything failed.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Bytes per function frame on x86-64 at -O2 (gcc 12), per build, for the
# core (what firmware links) and for src/hosted/ (the OS side: the stderr
# fault printer's line buffer, the leak report's). The measured maxima are
# in README; the limits leave a sixth or more above them.
FRAME_LIMIT = {"release": 640, "debug": 1280}
HOSTED_FRAME_LIMIT = 3072
HOSTED_DIR = os.path.join(ROOT, "src", "hosted") + os.sep

FLAGS = ["-std=c11", "-O2", "-DPK_BUILDING_LIBRARY", "-I", os.path.join(ROOT, "include"),
         "-I", os.path.join(ROOT, "src"), "-fstack-usage", "-fcallgraph-info=su"]
BUILDS = {"release": [], "debug": ["-DPK_DEBUG=1"]}


def library_sources():
    """The library's sources: CMakeLists.txt's PK_CORE_SOURCES, PK_HOSTED_SOURCES
    and the malloc drop-in's own (PK_MALLOC_SOURCES without the variables)."""
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        text = f.read()
    sources = []
    for name in ("PK_CORE_SOURCES", "PK_HOSTED_SOURCES", "PK_MALLOC_SOURCES"):
        m = re.search(r"set\(" + name + r"\s+([^)]*)\)", text)
        if not m:
            sys.exit(f"stack_check: no {name} in CMakeLists.txt")
        sources += [s for s in m.group(1).split() if not s.startswith("${") and s not in sources]
    return [os.path.join(ROOT, s) for s in sources]


NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
FRAME = re.compile(r"\\n(\d+) bytes \(([a-z,]+)\)")


def compile_graph(sources, flags, out):
    """Compiles sources into out; returns (frames, calls): frames maps a
    function (gcc's node title: the name, file:name for a static one) to
    (bytes, qualifier, label); calls maps it to the functions it calls."""
    os.makedirs(out, exist_ok=True)
    frames, calls = {}, {}
    for i, src in enumerate(sources):
        obj = os.path.join(out, f"{i}_{os.path.basename(src)}.o")
        cmd = ["gcc", *FLAGS, *flags, "-c", src, "-o", obj]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stderr)
            sys.exit(f"stack_check: failed: {' '.join(cmd)}")
        with open(obj[:-2] + ".ci") as f:
            for line in f:
                m = NODE.match(line)
                if m:
                    frame = FRAME.search(m.group(2))
                    if frame:  # defined here (a node without one is only called)
                        name = m.group(2).split("\\n")[0]
                        where = m.group(2).split("\\n")[1]
                        frames[m.group(1)] = (int(frame.group(1)), frame.group(2), f"{name} ({where})")
                    continue
                m = EDGE.match(line)
                if m:
                    calls.setdefault(m.group(1), set()).add(m.group(2))
    return frames, calls


def find_cycle(frames, calls):
    """A call cycle among the functions defined (as a list of names), or None."""
    state = {}  # 1: on the current path, 2: done

    def visit(f, path):
        state[f] = 1
        path.append(f)
        for g in sorted(calls.get(f, ())):
            if g not in frames:
                continue  # a callback placeholder or a library call
            if state.get(g) == 1:
                return path[path.index(g):] + [g]
            if g not in state:
                cycle = visit(g, path)
                if cycle:
                    return cycle
        path.pop()
        state[f] = 2
        return None

    for f in sorted(frames):
        if f not in state:
            cycle = visit(f, [])
            if cycle:
                return cycle
    return None


def deepest(frames, calls):
    """Each function's frame plus the deepest chain of frames below it (the
    graph must be acyclic)."""
    memo = {}

    def depth(f):
        if f not in memo:
            below = [depth(g) for g in calls.get(f, ()) if g in frames]
            memo[f] = frames[f][0] + max(below, default=0)
        return memo[f]

    return {f: depth(f) for f in frames}


def check_build(name, frames, calls, limit, report):
    """The checks of one build: (passed, failed) counts; prints what fails.
    limit is the core's frame limit (src/hosted/'s is HOSTED_FRAME_LIMIT)."""

    def limit_of(f):
        return HOSTED_FRAME_LIMIT if HOSTED_DIR in frames[f][2] else limit

    big = sorted((f for f in frames if frames[f][0] > limit_of(f)), key=lambda f: -frames[f][0])
    for f in big:
        print(f"FAIL {name}: {frames[f][2]}: {frames[f][0]} bytes, above the limit of {limit_of(f)}")
    dynamic = sorted(f for f in frames if frames[f][1] == "dynamic")
    for f in dynamic:
        print(f"FAIL {name}: {frames[f][2]}: dynamic stack use (alloca or a VLA), unbounded")
    cycle = find_cycle(frames, calls)
    if cycle:
        print(f"FAIL {name}: recursion: {' -> '.join(frames[f][2].split(' ')[0] for f in cycle)}")
    failures = int(bool(big)) + int(bool(dynamic)) + int(bool(cycle))
    if report:
        chains = deepest(frames, calls) if not cycle else {}
        print(f"--- {name}: {len(frames)} functions, largest frames (limits: {limit} bytes, "
              f"{HOSTED_FRAME_LIMIT} in src/hosted/)")
        print(f"{'frame':>6} {'chain':>6}  function")
        for f in sorted(frames, key=lambda f: (-frames[f][0], f))[:10]:
            chain = chains.get(f, "?")
            print(f"{frames[f][0]:>6} {chain:>6}  {frames[f][2]}")
        for part, names in (("core", [f for f in chains if HOSTED_DIR not in frames[f][2]]),
                            ("src/hosted/", [f for f in chains if HOSTED_DIR in frames[f][2]])):
            if names:
                top = max(names, key=lambda f: (chains[f], f))
                print(f"deepest chain ({part}): {chains[top]} bytes from {frames[top][2]}")
    return 3 - failures, failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "stack_check"),
                        help="where the objects, .su and .ci files go")
    args = parser.parse_args()
    passed = failed = 0

    # The fixture: each of the three checks must fire.
    fixture = os.path.join(ROOT, "tests", "stack_check", "broken.c")
    with tempfile.TemporaryDirectory() as tmp:
        frames, calls = compile_graph([fixture], [], tmp)
    with open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet
        _, fixture_failures = check_build("fixture", frames, calls, FRAME_LIMIT["release"], report=False)
        sys.stdout = stdout
    if fixture_failures == 3:
        passed += 1
        print("ok: the fixture's large frame, VLA and recursion are all caught")
    else:
        failed += 1
        print(f"FAIL: the checks caught {fixture_failures} of the fixture's 3 faults")

    sources = library_sources()
    for name, flags in BUILDS.items():
        frames, calls = compile_graph(sources, flags, os.path.join(args.out, name))
        p, f = check_build(name, frames, calls, FRAME_LIMIT[name], report=True)
        passed, failed = passed + p, failed + f
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
