#!/usr/bin/env python3
"""check_demo_json.py OPS RUN1.json RUN2.json RUN3.json

Checks the JSON of `poolkit demo --json` (schema "poolkit-demo/1", README):
run 1 and run 2 were made with the same seed, run 3 with another one, all
with --ops OPS.

- valid JSON, every number finite (no NaN/Infinity token, no null where a
  number or a string belongs: the writer prints a non-finite number as null);
- every allocator present, each with its fields and types; failures counted
  (an integer, and consistent with the calls timed);
- sane figures: percentiles ordered, fractions in [0, 1] or -1 (not
  measurable), histograms summing to the calls, series in operation order;
- the same seed gives identical workload counts (and identical counts of
  allocations, frees and failures per allocator); another seed different ones.

Prints one line per problem and exits 1 if there is any.
"""
import json
import math
import os
import sys

ALLOCATORS = ["malloc", "classes", "heap", "fit-first", "fit-best", "fit-next", "buddy", "slab"]
TYPES = 5
problems = []
SANITIZED = bool(os.environ.get("POOLKIT_SANITIZE"))  # the tool's build (CMake sets it)


def problem(run, text):
    problems.append(f"{run}: {text}")


def reject_constant(name):
    raise ValueError(f"non-finite number {name} in the JSON")


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f, parse_constant=reject_constant)


def walk_numbers(run, where, value):
    """No null, NaN or infinity anywhere."""
    if value is None:
        problem(run, f"{where} is null (a non-finite number, or a missing string)")
    elif isinstance(value, float) and not math.isfinite(value):
        problem(run, f"{where} is not finite")
    elif isinstance(value, dict):
        for k, v in value.items():
            walk_numbers(run, f"{where}.{k}", v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            walk_numbers(run, f"{where}[{i}]", v)


def is_count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_fraction(run, where, v, allow_na):
    if not is_number(v):
        problem(run, f"{where} is not a number: {v!r}")
    elif v == -1 and allow_na:
        pass
    elif not 0 <= v <= 1:
        problem(run, f"{where} = {v} is neither a fraction nor -1")


def check_latency(run, name, key, lat):
    where = f"{name}.{key}"
    if not isinstance(lat, dict):
        problem(run, f"{where} missing")
        return
    for field in ("calls",):
        if not is_count(lat.get(field)):
            problem(run, f"{where}.{field} is not a count: {lat.get(field)!r}")
    for field in ("mean_ns", "p50_ns", "p99_ns", "p999_ns", "max_ns", "determinism"):
        v = lat.get(field)
        if not is_number(v) or v < 0:
            problem(run, f"{where}.{field} is not a non-negative number: {v!r}")
            return
    if not lat["p50_ns"] <= lat["p99_ns"] <= lat["p999_ns"] <= lat["max_ns"]:
        problem(run, f"{where}: percentiles out of order: {lat}")
    if lat["calls"] and lat["mean_ns"] > lat["max_ns"] * 1.000001:
        problem(run, f"{where}: mean above max")
    hist = lat.get("hist")
    if not isinstance(hist, list) or not all(is_count(h) for h in hist):
        problem(run, f"{where}.hist is not a list of counts")
    elif sum(hist) != lat["calls"]:
        problem(run, f"{where}: the histogram holds {sum(hist)} calls, calls = {lat['calls']}")


def check_run(run, doc, ops):
    walk_numbers(run, "$", doc)
    if doc.get("schema") != "poolkit-demo/1":
        problem(run, f"schema {doc.get('schema')!r}")
    for field in ("seed", "ops"):
        if not is_count(doc.get(field)):
            problem(run, f"{field} is not a count")
    if doc.get("ops") != ops:
        problem(run, f"ops = {doc.get('ops')}, asked {ops}")
    for field in ("timer", "machine", "compiler"):
        if not isinstance(doc.get(field), str) or not doc[field]:
            problem(run, f"{field} is not a non-empty string")
    if not is_number(doc.get("seconds")) or doc["seconds"] < 0:
        problem(run, "seconds")
    workload = doc.get("workload", {})
    by_type = workload.get("allocs_by_type")
    if not isinstance(by_type, dict) or len(by_type) != TYPES or not all(
            is_count(v) for v in by_type.values()):
        problem(run, f"workload.allocs_by_type: {by_type!r}")
        by_type = {}
    elif sum(by_type.values()) == 0:
        problem(run, "the workload allocated nothing")
    if not is_count(workload.get("peak_queue_depth")) or workload["peak_queue_depth"] == 0:
        problem(run, "workload.peak_queue_depth")

    results = doc.get("results")
    if not isinstance(results, list):
        problem(run, "no results")
        return
    names = [r.get("name") for r in results]
    for name in ALLOCATORS:
        if names.count(name) != 1:
            problem(run, f"allocator {name} appears {names.count(name)} times")
    for r in results:
        name = r.get("name")
        if not isinstance(r.get("description"), str):
            problem(run, f"{name}.description")
        for field in ("allocs", "frees", "failures", "first_failure_op", "peak_footprint",
                      "arena_size", "constructed_reuses", "constructor_calls",
                      "tight_arena_size", "tight_first_failure_op", "tight_live_bytes"):
            if not is_count(r.get(field)):
                problem(run, f"{name}.{field} is not a count: {r.get(field)!r}")
        if not all(is_count(r.get(f)) for f in ("allocs", "frees", "failures", "first_failure_op")):
            continue
        if r["allocs"] == 0:
            problem(run, f"{name}: no allocation succeeded")
        if r["frees"] > r["allocs"]:
            problem(run, f"{name}: more frees ({r['frees']}) than allocations ({r['allocs']})")
        # Failures counted: every allocation request either succeeded or failed.
        if by_type and r["allocs"] + r["failures"] != sum(by_type.values()):
            problem(run, f"{name}: allocs {r['allocs']} + failures {r['failures']} != the "
                         f"workload's {sum(by_type.values())} allocations")
        if r["failures"] == 0 and r["first_failure_op"] != 0:
            problem(run, f"{name}: first_failure_op {r['first_failure_op']} without failures")
        if r["first_failure_op"] > ops:
            problem(run, f"{name}: first_failure_op beyond the run")
        policy = name in ("heap", "fit-first", "fit-best", "fit-next")
        tight = (r.get("tight_arena_size"), r.get("tight_first_failure_op"),
                 r.get("tight_live_bytes"))
        if all(is_count(v) for v in tight):
            if policy and (tight[0] == 0 or tight[1] > ops or tight[2] > tight[0]):
                problem(run, f"{name}: tight arena (size, first failure, live) = {tight}")
            if not policy and tight != (0, 0, 0):
                problem(run, f"{name}: tight arena figures for a non-policy: {tight}")
        check_latency(run, name, "alloc", r.get("alloc"))
        check_latency(run, name, "free", r.get("free"))
        measurable = name != "malloc"
        for field in ("frag_external_end", "frag_external_worst", "frag_internal_end",
                      "frag_internal_worst"):
            check_fraction(run, f"{name}.{field}", r.get(field), allow_na=True)
            if measurable and r.get(field) == -1:
                problem(run, f"{name}.{field} not measured")
        if not is_number(r.get("overhead_per_alloc")) or (
                r["overhead_per_alloc"] < 0 and r["overhead_per_alloc"] != -1):
            problem(run, f"{name}.overhead_per_alloc: {r.get('overhead_per_alloc')!r}")
        # Under a sanitizer, malloc is the sanitizer's, which mallinfo2 does
        # not see: its footprint may read 0 there, nowhere else.
        if r.get("peak_footprint") == 0 and not (name == "malloc" and SANITIZED):
            problem(run, f"{name}.peak_footprint is 0")
        series = r.get("series")
        keys = ("op", "live_bytes", "footprint", "frag_external", "frag_internal", "queue_depth")
        if not isinstance(series, dict) or any(not isinstance(series.get(k), list) for k in keys):
            problem(run, f"{name}.series")
            continue
        lengths = {len(series[k]) for k in keys}
        if len(lengths) != 1 or not 1 <= lengths.pop() <= 200:
            problem(run, f"{name}.series: lengths {[len(series[k]) for k in keys]}")
        if series["op"] != sorted(series["op"]) or (series["op"] and series["op"][-1] > ops):
            problem(run, f"{name}.series.op not in order within the run")
        for k in ("frag_external", "frag_internal"):
            for i, v in enumerate(series[k]):
                check_fraction(run, f"{name}.series.{k}[{i}]", v, allow_na=True)


def counts(doc):
    """What the seed decides: the workload, and per allocator its outcomes."""
    w = doc.get("workload", {})
    per = {r.get("name"): (r.get("allocs"), r.get("frees"), r.get("failures"),
                           r.get("first_failure_op")) for r in doc.get("results", [])}
    return w.get("allocs_by_type"), w.get("peak_queue_depth"), per


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    ops = int(sys.argv[1])
    docs = []
    for i, path in enumerate(sys.argv[2:], 1):
        try:
            docs.append(load(path))
        except (OSError, ValueError) as e:
            problem(f"run {i}", f"{path}: {e}")
            docs.append(None)
    for i, doc in enumerate(docs, 1):
        if doc is not None:
            check_run(f"run {i}", doc, ops)
    if all(d is not None for d in docs):
        one, two, three = docs
        if one.get("seed") != two.get("seed") or one.get("seed") == three.get("seed"):
            problem("seeds", f"runs 1 and 2 share a seed, run 3 has another: "
                             f"{one.get('seed')}, {two.get('seed')}, {three.get('seed')}")
        if counts(one) != counts(two):
            problem("same seed", f"counts differ:\n  {counts(one)}\n  {counts(two)}")
        if counts(one)[0] == counts(three)[0]:
            problem("another seed", f"identical workload counts {counts(one)[0]}")
    for p in problems:
        print(f"check_demo_json: {p}")
    if not problems:
        names = ", ".join(r["name"] for r in docs[0]["results"])
        print(f"check_demo_json: 3 runs fine ({names}); workload {counts(docs[0])[0]}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
