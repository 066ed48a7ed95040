"""Deterministic inputs for tests/malloc/real_programs.sh (fixed seeds).

Usage: gen_inputs.py KIND OUT
  text OUT      50 MiB of text lines (words from a Zipf-like vocabulary, a
                tab, a number): compressible but not trivially so, for xz,
                pigz and sort
  sql OUT       an sqlite3 script: 200,000 single-row INSERTs in one
                transaction, two indexes, aggregates, PRAGMA integrity_check
  gitfiles OUT  OUT/v1: 2,000 text files in 40 subdirectories, many of them
                variations of one another (so git gc finds deltas); OUT/v2:
                the same tree with 400 files edited, 50 removed, 50 added
  csource OUT   a generated C11 file of a few hundred functions, a longer
                compile for gcc -O2 than the project's own sources
Writes only OUT; prints nothing.
"""
import os
import random
import sys

TEXT_BYTES = 50 * 1024 * 1024
SQL_ROWS = 200_000
GIT_FILES = 2_000
GIT_DIRS = 40
GIT_EDITED = 400
GIT_REMOVED = 50
C_FUNCTIONS = 300


def vocabulary(rng, size):
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    letter_weights = [26 - i for i in range(len(letters))]
    words = set()
    while len(words) < size:
        length = rng.randint(2, 11)
        words.add("".join(rng.choices(letters, letter_weights, k=length)))
    words = sorted(words)
    rng.shuffle(words)
    cumulative, total = [], 0.0
    for rank in range(size):
        total += 1.0 / (rank + 1)
        cumulative.append(total)
    return words, cumulative


def write_text(path):
    rng = random.Random(20260901)
    words, cumulative = vocabulary(rng, 30_000)
    written = 0
    with open(path, "w", encoding="ascii", newline="\n") as out:
        while written < TEXT_BYTES:
            counts = rng.choices(range(3, 13), k=20_000)
            picks = rng.choices(words, cum_weights=cumulative, k=sum(counts))
            numbers = [rng.randrange(10 ** rng.randint(1, 9)) for _ in counts]
            lines, at = [], 0
            for count, number in zip(counts, numbers):
                lines.append(" ".join(picks[at:at + count]) + "\t" + str(number) + "\n")
                at += count
            chunk = "".join(lines)
            if written + len(chunk) > TEXT_BYTES:
                cut = chunk.rfind("\n", 0, TEXT_BYTES - written) + 1
                chunk = chunk[:cut] if cut > 0 else ""
                out.write(chunk)
                break
            out.write(chunk)
            written += len(chunk)


def write_sql(path):
    rng = random.Random(20260902)
    words, cumulative = vocabulary(rng, 5_000)
    with open(path, "w", encoding="ascii", newline="\n") as out:
        out.write("CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                  " category INTEGER NOT NULL, cents INTEGER NOT NULL, note TEXT);\n")
        out.write("BEGIN;\n")
        for row in range(1, SQL_ROWS + 1):
            name = rng.choices(words, cum_weights=cumulative)[0]
            note = " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(0, 12)))
            out.write("INSERT INTO item VALUES(%d,'%s',%d,%d,%s);\n" % (
                row, name, rng.randrange(100), rng.randrange(1_000_000),
                "'" + note + "'" if note else "NULL"))
        out.write("COMMIT;\n")
        out.write("CREATE INDEX item_category ON item(category, cents);\n")
        out.write("CREATE INDEX item_name ON item(name);\n")
        out.write(".headers on\n")
        out.write("SELECT category, count(*), sum(cents), min(cents), max(cents),"
                  " sum(length(note)) FROM item GROUP BY category ORDER BY category;\n")
        out.write("SELECT name, count(*) AS n, sum(cents) FROM item GROUP BY name"
                  " ORDER BY n DESC, name LIMIT 25;\n")
        out.write("SELECT a.category, count(*) FROM item AS a JOIN item AS b"
                  " ON b.name = a.name AND b.id = a.id + 1 GROUP BY a.category"
                  " ORDER BY a.category;\n")
        out.write("SELECT id, name, rank FROM (SELECT id, name, rank() OVER"
                  " (PARTITION BY category ORDER BY cents DESC, id) AS rank FROM item)"
                  " WHERE rank <= 2 ORDER BY id;\n")
        out.write("SELECT count(DISTINCT note), group_concat(DISTINCT substr(name, 1, 1))"
                  " FROM item WHERE cents % 7 = 3;\n")
        out.write("DELETE FROM item WHERE cents % 3 = 0;\n")
        out.write("SELECT count(*), total(cents) FROM item;\n")
        out.write("PRAGMA integrity_check;\n")


def write_tree(root, files):
    for relative, lines in files.items():
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="ascii", newline="\n") as out:
            out.write("\n".join(lines) + "\n")


def write_gitfiles(root):
    rng = random.Random(20260903)
    words, cumulative = vocabulary(rng, 8_000)
    bases = []
    for _ in range(100):
        count = rng.randint(150, 1_200)
        bases.append(rng.choices(words, cum_weights=cumulative, k=count))
    first = {}
    for number in range(GIT_FILES):
        body = list(rng.choice(bases))
        for _ in range(rng.randint(0, 20)):
            body[rng.randrange(len(body))] = rng.choice(words)
        first["d%02d/f%04d.txt" % (number % GIT_DIRS, number)] = [
            " ".join(body[at:at + 12]) for at in range(0, len(body), 12)]
    second = {name: list(lines) for name, lines in first.items()}
    names = sorted(second)
    for name in rng.sample(names, GIT_EDITED):
        lines = second[name]
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(lines))
            lines[at:at + rng.randint(0, 3)] = [
                " ".join(rng.choices(words, k=rng.randint(1, 12))) for _ in range(rng.randint(0, 5))]
        lines.append(" ".join(rng.choices(words, k=8)))
    for name in rng.sample(names, GIT_REMOVED):
        del second[name]
    for number in range(GIT_FILES, GIT_FILES + GIT_REMOVED):
        second["new/f%04d.txt" % number] = list(first[rng.choice(names)])
    write_tree(os.path.join(root, "v1"), first)
    write_tree(os.path.join(root, "v2"), second)


def write_csource(path):
    rng = random.Random(20260904)
    parts = ["/* Generated by gen_inputs.py csource: a longer -O2 compile. */\n",
             "#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n\n",
             "struct record { uint32_t key; int32_t value; double weight; char tag[16]; };\n\n"]
    for number in range(C_FUNCTIONS):
        constants = [rng.randrange(1, 1 << 20) for _ in range(8)]
        cases = "".join(
            "    case %d: acc = acc * %du + (uint32_t)items[i].value + %du; items[i].weight += %d.5; break;\n"
            % (case, rng.randrange(3, 999), rng.randrange(1 << 16), rng.randrange(100))
            for case in range(rng.randint(6, 16)))
        parts.append(
            "static const uint32_t table_%d[8] = { %s };\n\n"
            "uint32_t work_%d(struct record *items, size_t count, uint32_t seed)\n"
            "{\n"
            "  uint32_t acc = seed ^ %du;\n"
            "  for (size_t i = 0; i < count; ++i) {\n"
            "    uint32_t key = items[i].key ^ table_%d[i & 7u];\n"
            "    switch (key %% %du) {\n%s"
            "    default: acc ^= key << (i & 15u); break;\n"
            "    }\n"
            "    for (size_t j = 0; j < sizeof items[i].tag; ++j)\n"
            "      acc = acc * 31u + (uint32_t)(unsigned char)items[i].tag[j];\n"
            "    if (items[i].weight > %d.0)\n"
            "      memmove(items[i].tag, items[i].tag + 1, sizeof items[i].tag - 1);\n"
            "  }\n"
            "  return acc + %du;\n"
            "}\n\n"
            % (number, ", ".join("%du" % c for c in constants), number,
               constants[0], number, rng.randint(7, 23), cases,
               rng.randrange(1000), constants[1]))
    parts.append("uint32_t work_all(struct record *items, size_t count)\n{\n  uint32_t acc = 0;\n")
    for number in range(C_FUNCTIONS):
        parts.append("  acc = work_%d(items, count, acc);\n" % number)
    parts.append("  return acc;\n}\n")
    with open(path, "w", encoding="ascii", newline="\n") as out:
        out.write("".join(parts))


WRITERS = {"text": write_text, "sql": write_sql, "gitfiles": write_gitfiles, "csource": write_csource}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in WRITERS:
        sys.stderr.write("usage: gen_inputs.py {%s} OUT\n" % ",".join(WRITERS))
        sys.exit(2)
    WRITERS[sys.argv[1]](sys.argv[2])
