/*
 * The replay engine (tools/replay/engine.c) on traces built in memory, on a
 * pk_heap over a small arena: the corner cases its header documents (a call
 * failed in the trace, a free of a pointer never returned, a lost free, a
 * realloc that moves, frees (size 0) or fails, calloc zeroing), the counts,
 * the exact peaks, the first failure, the samples' spacing and the
 * percentiles; and the traced-pointer map (ptrmap) against a plain array
 * through many inserts and removals.
 *
 *   test_replay_engine
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "poolkit/heap.h"
#include "replay/engine.h"
#include "replay/ptrmap.h"

static int passed, failed;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (cond) {                                                           \
            passed++;                                                         \
        } else {                                                              \
            fprintf(stderr, "test_replay_engine:%d: %s: ", __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
            failed++;                                                         \
        }                                                                     \
    } while (0)

enum { MALLOC = 1, CALLOC = 2, REALLOC = 3, ALIGNED = 4, FREE = 5 };

static pk_trace_event ev(uint8_t op, uint64_t size, uint64_t align, uint64_t result, uint64_t old)
{
    return (pk_trace_event){.op = op, .size = size, .align = align, .result = result, .old = old};
}

static void number(pk_trace_event *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        e[i].seq = i;
        e[i].time_ns = (i + 1) * 100;
    }
}

static unsigned char arena[1 << 16] __attribute__((aligned(64)));
static pk_heap heap;

static pk_allocator *fresh_heap(size_t size)
{
    return pk_heap_init(&heap, arena, size) == PK_OK ? pk_heap_allocator(&heap) : NULL;
}

static void corner_cases(void)
{
    pk_trace_event e[] = {
        ev(MALLOC, 100, 0, 0xa000, 0),      /* 0: live 100 */
        ev(CALLOC, 200, 0, 0xb000, 0),      /* 1: live 300 */
        ev(MALLOC, 50, 0, 0, 0),            /* 2: failed in the trace: skipped */
        ev(FREE, 0, 0, 0, 0xdead),          /* 3: never returned: skipped */
        ev(REALLOC, 0, 300, 0xc000, 0xa000),/* 4: moves 100 -> 300: live 500 */
        ev(REALLOC, 0, 400, 0, 0xb000),     /* 5: failed in the trace: skipped, 0xb000 stays */
        ev(REALLOC, 0, 0, 0, 0xb000),       /* 6: realloc(p, 0): a free, live 300 */
        ev(MALLOC, 64, 0, 0xc000, 0),       /* 7: 0xc000 again: its free was lost; live 64 */
        ev(ALIGNED, 128, 48, 0xd000, 0),    /* 8: align 48 rounded to 64: live 192 */
        ev(REALLOC, 0, 10, 0xe000, 0),      /* 9: realloc(NULL, 10): live 202 */
        ev(FREE, 0, 0, 0, 0xc000),          /* 10: live 138 */
        ev(FREE, 0, 0, 0, 0xd000),          /* 11: live 10 */
        ev(FREE, 0, 0, 0, 0xe000),          /* 12: live 0 */
        ev(FREE, 0, 0, 0, 0xe000),          /* 13: freed already: skipped */
    };
    e[4].old = 0xa000;
    e[4].size = 300;
    e[5].old = 0xb000;
    e[5].size = 400;
    e[6].old = 0xb000;
    e[9].size = 10;
    size_t n = sizeof e / sizeof e[0];
    number(e, n);
    pk_trace t = {.events = e, .count = n, .version = 1, .threads = 1};
    replay_sample samples[64];
    replay_result r = {.samples = samples, .max_samples = 64};
    pk_allocator *a = fresh_heap(sizeof arena);
    CHECK(a != NULL, "heap init");
    CHECK(replay_run(&t, a, &r) == 0, "replay_run failed");
    CHECK(r.calls == 10 && r.skipped == 4, "%llu calls, %llu skipped (10, 4)", (unsigned long long)r.calls,
          (unsigned long long)r.skipped);
    CHECK(r.failures == 0 && !r.failed, "%llu failures", (unsigned long long)r.failures);
    CHECK(r.peak_requested == 500, "peak requested %zu (500)", r.peak_requested);
    CHECK(r.sample_count == n, "%zu samples for %zu events", r.sample_count, n);
    static const size_t live[] = {100, 300, 300, 300, 500, 500, 300, 64, 192, 202, 138, 10, 0, 0};
    for (size_t i = 0; i < n && i < r.sample_count; i++) {
        CHECK(samples[i].event == i && samples[i].live_bytes == live[i] && samples[i].time_ns == (i + 1) * 100,
              "sample %zu: event %llu, live %zu (%zu)", i, (unsigned long long)samples[i].event,
              samples[i].live_bytes, live[i]);
    }
    pk_stats st;
    pk_stats_get(a, &st);
    CHECK(st.live == 0 && st.in_use == 0, "heap holds %zu blocks after the replay", st.live);
    CHECK(r.peak_in_use >= 500 && r.min_free_bytes < st.free_bytes, "peak in_use %zu, least free %zu",
          r.peak_in_use, r.min_free_bytes);
    CHECK(r.alloc_ns_median > 0 && r.alloc_ns_median <= r.alloc_ns_p99 && r.alloc_ns_p99 <= r.alloc_ns_max,
          "alloc latency %.0f %.0f %.0f", r.alloc_ns_median, r.alloc_ns_p99, r.alloc_ns_max);
    CHECK(r.free_ns_median <= r.free_ns_p99 && r.free_ns_p99 <= r.free_ns_max, "free latency");
}

/* calloc zeroes: the block given back dirty is handed out again cleared. */
static void calloc_zeroes(void)
{
    pk_allocator *a = fresh_heap(4096);
    unsigned char *p = pk_alloc(a, 256);
    memset(p, 0xab, 256);
    pk_free(a, p);
    pk_trace_event e[] = {ev(CALLOC, 256, 0, 0x1000, 0)};
    number(e, 1);
    pk_trace t = {.events = e, .count = 1};
    replay_result r = {0};
    CHECK(replay_run(&t, a, &r) == 0 && r.calls == 1, "calloc replay");
    size_t nonzero = 0;
    for (size_t i = 0; i < 256; i++) {
        nonzero += p[i] != 0; /* the heap gives the same block back */
    }
    CHECK(nonzero == 0, "%zu bytes of the calloc'd block not zero", nonzero);
}

/* A small arena: the first failure is kept; a realloc that fails lets the
 * old block go (the program did), so the later free is skipped. */
static void failures(void)
{
    pk_trace_event e[] = {
        ev(MALLOC, 1000, 0, 0x1000, 0),     /* 0 */
        ev(MALLOC, 100000, 0, 0x2000, 0),   /* 1: fails (arena 4 KiB) */
        ev(REALLOC, 50000, 0, 0x3000, 0),   /* 2: fails, 0x1000 let go */
        ev(FREE, 0, 0, 0, 0x2000),          /* 3: skipped: never held */
        ev(FREE, 0, 0, 0, 0x3000),          /* 4: skipped */
        ev(MALLOC, 3000, 0, 0x4000, 0),     /* 5: fits again: 0x1000 was freed */
        ev(FREE, 0, 0, 0, 0x4000),          /* 6 */
    };
    e[2].old = 0x1000;
    size_t n = sizeof e / sizeof e[0];
    number(e, n);
    pk_trace t = {.events = e, .count = n};
    replay_result r = {0};
    pk_allocator *a = fresh_heap(4096);
    CHECK(replay_run(&t, a, &r) == 0, "replay_run failed");
    CHECK(r.failed && r.first_failure == 1 && r.first_failure_size == 100000, "first failure %llu size %zu",
          (unsigned long long)r.first_failure, r.first_failure_size);
    CHECK(r.failures == 2 && r.calls == 5 && r.skipped == 2, "%llu failures, %llu calls, %llu skipped",
          (unsigned long long)r.failures, (unsigned long long)r.calls, (unsigned long long)r.skipped);
    CHECK(r.peak_requested == 3000, "peak requested %zu (3000)", r.peak_requested);
}

/* Samples evenly spaced: 1000 events into 10 samples, every 100th. */
static void spacing(void)
{
    size_t n = 1000;
    pk_trace_event *e = calloc(n, sizeof *e);
    for (size_t i = 0; i < n; i++) {
        e[i] = i % 2 == 0 ? ev(MALLOC, 16, 0, 0x1000 + i * 16, 0) : ev(FREE, 0, 0, 0, 0x1000 + (i - 1) * 16);
    }
    number(e, n);
    pk_trace t = {.events = e, .count = n};
    replay_sample samples[10];
    replay_result r = {.samples = samples, .max_samples = 10};
    CHECK(replay_run(&t, fresh_heap(4096), &r) == 0 && r.sample_count == 10, "%zu samples", r.sample_count);
    for (size_t k = 0; k < r.sample_count; k++) {
        CHECK(samples[k].event == k * 100 + 99, "sample %zu after event %llu", k,
              (unsigned long long)samples[k].event);
    }
    CHECK(r.calls == n && r.peak_requested == 16, "calls %llu, peak %zu", (unsigned long long)r.calls,
          r.peak_requested);
    free(e);
}

/* The map against an array: every key found with its value, removed ones
 * gone, through growth and backward-shift deletions. */
static void map(void)
{
    enum { KEYS = 20000 };
    static size_t value[KEYS];
    static unsigned char present[KEYS];
    ptrmap m;
    ptrmap_init(&m);
    uint64_t x = 12345;
    int bad = 0;
    for (int step = 0; step < 200000; step++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t k = (size_t)(x >> 33) % KEYS;
        uint64_t key = 0x7f0000000000ull + (uint64_t)k * 16;
        ptrmap_entry *e = ptrmap_find(&m, key);
        bad += (e != NULL) != (present[k] != 0) || (e != NULL && e->size != value[k]);
        if (e != NULL && (x >> 20) % 2 == 0) {
            ptrmap_remove(&m, e);
            present[k] = 0;
        } else {
            value[k] = (size_t)(x >> 40);
            bad += ptrmap_put(&m, key, NULL, value[k]) != 0;
            present[k] = 1;
        }
    }
    size_t count = 0;
    for (size_t k = 0; k < KEYS; k++) {
        ptrmap_entry *e = ptrmap_find(&m, 0x7f0000000000ull + (uint64_t)k * 16);
        count += present[k];
        bad += (e != NULL) != (present[k] != 0) || (e != NULL && e->size != value[k]);
    }
    CHECK(bad == 0 && m.count == count, "%d mismatches; %zu entries, %zu expected", bad, m.count, count);
    ptrmap_free(&m);
}

int main(void)
{
    corner_cases();
    calloc_zeroes();
    failures();
    spacing();
    map();
    printf("test_replay_engine: %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
