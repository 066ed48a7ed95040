/*
 * Writes the traces tests/tools/replay_cli.sh replays (tests/trace/
 * trace_writer.h), in DIR:
 *
 *   known.pktrace      220 events, every one known (times: event i at
 *                      (i + 1) us; block k traced at 0x100000 + k * 0x10000):
 *     0..63     malloc 256 B            (live 16384 B)
 *     64..95    calloc 1000 B           (live 48384 B)
 *     96..103   aligned 4096 B, align 64 (live 81152 B)
 *     104       malloc 2 MiB            (live 2178304 B: the peak, 105 blocks)
 *     105       free of it
 *     106..113  realloc blocks 0..7 to 512 B, each moving (live 83200 B)
 *     114       free of a pointer never returned (skipped)
 *     115       malloc 100 B that failed in the trace (result 0: skipped)
 *     116..219  free of the 104 blocks still live
 *   So: 66 malloc, 32 calloc, 8 realloc, 8 aligned, 106 free; 218 calls and
 *   2 skipped; in a 1 MiB arena every allocator fails first at event 104
 *   (malloc 2097152 B), and its free (105) is skipped too.
 *   fixed.pktrace      200 events of one size on 2 threads: 100 malloc 48 B
 *                      (pointers 0x200000 + k * 64), after every second one
 *                      the free of the oldest, then the 50 others freed: peak
 *                      51 blocks (2448 B) after event 148.
 *   version2.pktrace   known.pktrace's first 10 events, header version 2.
 *   truncated.pktrace  known.pktrace cut 3 bytes before its end (inside the
 *                      last record).
 *
 *   replay_traces DIR
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/trace_writer.h"

enum { MALLOC = 1, CALLOC = 2, REALLOC = 3, ALIGNED = 4, FREE = 5 };

static uint64_t block(unsigned k) { return 0x100000u + (uint64_t)k * 0x10000u; }

/* The known trace, whole or its first `limit` events. */
static int write_known(const char *path, uint32_t version, unsigned limit)
{
    trace_writer w;
    if (trace_writer_open(&w, path, version, 4242) != 0) {
        return -1;
    }
    unsigned i = 0;
#define EVENT(op, size, align, result, old)                                                     \
    do {                                                                                       \
        if (i < limit) {                                                                       \
            trace_writer_event(&w, 0, op, (uint64_t)(i + 1) * 1000u, size, align, result, old); \
        }                                                                                      \
        i++;                                                                                   \
    } while (0)
    for (unsigned k = 0; k < 64; k++) {
        EVENT(MALLOC, 256, 0, block(k), 0);
    }
    for (unsigned k = 64; k < 96; k++) {
        EVENT(CALLOC, 1000, 0, block(k), 0);
    }
    for (unsigned k = 96; k < 104; k++) {
        EVENT(ALIGNED, 4096, 64, block(k), 0);
    }
    EVENT(MALLOC, 2u << 20, 0, block(104), 0);
    EVENT(FREE, 0, 0, 0, block(104));
    for (unsigned k = 0; k < 8; k++) {
        EVENT(REALLOC, 512, 0, block(200 + k), block(k));
    }
    EVENT(FREE, 0, 0, 0, 0xdead0000u);
    EVENT(MALLOC, 100, 0, 0, 0);
    for (unsigned k = 8; k < 64; k++) {
        EVENT(FREE, 0, 0, 0, block(k));
    }
    for (unsigned k = 200; k < 208; k++) {
        EVENT(FREE, 0, 0, 0, block(k));
    }
    for (unsigned k = 64; k < 104; k++) {
        EVENT(FREE, 0, 0, 0, block(k));
    }
#undef EVENT
    return trace_writer_close(&w);
}

static int write_fixed(const char *path)
{
    trace_writer w;
    if (trace_writer_open(&w, path, 1, 4243) != 0) {
        return -1;
    }
    uint64_t t = 0;
    for (unsigned k = 0; k < 100; k++) {
        trace_writer_event(&w, k % 2, MALLOC, t += 500, 48, 0, 0x200000u + k * 64u, 0);
        if (k % 2 == 1) { /* frees block k / 2: the first 50 go while the others come */
            trace_writer_event(&w, 0, FREE, t += 500, 0, 0, 0, 0x200000u + (k / 2) * 64u);
        }
    }
    for (unsigned k = 50; k < 100; k++) {
        trace_writer_event(&w, 1, FREE, t += 500, 0, 0, 0, 0x200000u + k * 64u);
    }
    return trace_writer_close(&w);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: replay_traces DIR\n");
        return 2;
    }
    char path[4096];
    int rc = 0;
#define PATH(name) (snprintf(path, sizeof path, "%s/%s", argv[1], name), path)
    rc |= write_known(PATH("known.pktrace"), 1, ~0u);
    rc |= write_fixed(PATH("fixed.pktrace"));
    rc |= write_known(PATH("version2.pktrace"), 2, 10);
    rc |= write_known(PATH("truncated.pktrace"), 1, ~0u);
    FILE *f = fopen(path, "rb");
    long size = -1;
    if (f != NULL && fseek(f, 0, SEEK_END) == 0) {
        size = ftell(f);
    }
    if (f != NULL) {
        fclose(f);
    }
    rc |= size > 3 ? truncate(path, size - 3) : -1;
#undef PATH
    if (rc != 0) {
        fprintf(stderr, "replay_traces: cannot write the traces in %s\n", argv[1]);
        return 1;
    }
    return 0;
}
