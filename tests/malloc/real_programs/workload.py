"""The python3 workload of tests/malloc/real_programs.sh: dict, list and json
heavy, deterministic (fixed seed; run it with PYTHONHASHSEED=0 and
PYTHONMALLOC=malloc so every object goes through the malloc under test).

Usage: python3 workload.py
Prints one line per stage, `STAGE key=value ...`, with sha256 digests of
the stage's results, so any difference in the data shows in the output.
"""
import collections
import hashlib
import json
import random

RECORDS = 80_000


def digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def make_records(rng, words):
    records = []
    for number in range(RECORDS):
        records.append({
            "id": number,
            "name": rng.choice(words) + "-" + rng.choice(words),
            "tags": rng.sample(words, rng.randint(0, 6)),
            "score": rng.randrange(1_000_000) / 1000,
            "nested": {"depth": rng.randint(1, 9),
                       "path": [rng.randrange(100) for _ in range(rng.randint(0, 8))],
                       "flag": rng.random() < 0.3},
        })
    return records


def main():
    rng = random.Random(20260905)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = sorted({"".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(4_000)})

    records = make_records(rng, words)
    print("records", "count=%d" % len(records), "digest=" + digest(records[:2000]))

    text = json.dumps(records)
    parsed = json.loads(text)
    print("json", "bytes=%d" % len(text), "equal=%s" % (parsed == records),
          "digest=" + hashlib.sha256(text.encode()).hexdigest()[:16])

    by_tag = collections.defaultdict(list)
    for record in parsed:
        for tag in record["tags"]:
            by_tag[tag].append(record["id"])
    busiest = sorted(by_tag.items(), key=lambda item: (-len(item[1]), item[0]))[:10]
    print("tags", "distinct=%d" % len(by_tag),
          "busiest=" + ",".join("%s:%d" % (tag, len(ids)) for tag, ids in busiest))

    counts = collections.Counter(word for record in parsed for word in record["name"].split("-"))
    print("names", "distinct=%d" % len(counts), "top=" + digest(counts.most_common(50)))

    ranked = sorted(parsed, key=lambda record: (-record["score"], record["name"], record["id"]))
    print("sorted", "first=%d" % ranked[0]["id"], "digest=" + digest([r["id"] for r in ranked]))

    # Churn: drop and rebuild entries so the allocator reuses freed memory.
    table = {record["id"]: record for record in parsed}
    for round_number in range(4):
        for key in [key for key in table if key % 4 == round_number]:
            del table[key]
        for key in range(round_number, RECORDS, 4):
            table[key] = {"id": key, "copy": list(parsed[key]["tags"]), "round": round_number,
                          "text": json.dumps(parsed[key]["nested"])}
    print("churn", "size=%d" % len(table),
          "digest=" + digest([table[key]["text"] for key in range(0, RECORDS, 97)]))

    pairs = {}
    for record in parsed:
        for tag in record["tags"]:
            pairs.setdefault(tag, set()).update(record["tags"])
    overlap = sum(len(partners) for partners in pairs.values())
    print("pairs", "tags=%d" % len(pairs), "overlap=%d" % overlap)

    lines = [" ".join(map(str, record["nested"]["path"])) for record in parsed]
    joined = "\n".join(lines)
    pieces = joined.replace(" ", ",").split("\n")
    print("strings", "chars=%d" % len(joined), "digest=" + digest(pieces[::31]))


if __name__ == "__main__":
    main()
