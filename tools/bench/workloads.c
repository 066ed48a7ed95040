/*
 * The workloads of `poolkit bench` and the loops that run them (see bench.h).
 *
 *   fixed64  alloc+free pairs of 64-byte blocks: one block live at a time
 *   batch64  rounds of: allocate 4,096 blocks of 64 bytes, then free them in
 *            a random order (the same permutation every round)
 *   live4k   a live set of 4,096 objects of 16 B..4 KiB (log-uniform): after
 *            filling the slots, each step frees a random slot's object and
 *            allocates a new one there
 *   live64k  the same with 1,024 objects of 16 B..64 KiB
 *
 * Every sequence (sizes, slots, the permutation) comes from a fixed seed and
 * is computed before anything is measured: every allocator and every run
 * sees the same one and the generator costs nothing in the loops. Blocks are
 * not written: what is measured is the allocator's own work.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define SEED 0x62656e6368u /* "bench" */

static const struct {
    const char *name, *title, *description;
    size_t min_size, max_size, fixed_size, slots, smoke_slots;
} kinds[BENCH_WORKLOADS] = {
    [BENCH_FIXED] = {"fixed64", "Fixed 64 B alloc+free pairs",
                     "alloc(64) then free, over and over: one block live at a time (the best case "
                     "of every allocator: its fast path)",
                     64, 64, 64, 1, 1},
    [BENCH_BATCH] = {"batch64", "Batch of 4,096 x 64 B, freed in random order",
                     "allocate 4,096 blocks of 64 B, then free them in a random order (the same "
                     "permutation every round); free lists end up shuffled",
                     64, 64, 64, 4096, 64},
    [BENCH_LIVE_4K] = {"live4k", "Random live set, 16 B..4 KiB",
                       "4,096 live objects of 16 B..4 KiB, log-uniform sizes; each step frees a "
                       "random slot's object and allocates a new one there (as bench/bench_heaps.c)",
                       16, 4096, 0, 4096, 64},
    [BENCH_LIVE_64K] = {"live64k", "Random live set, 16 B..64 KiB",
                        "1,024 live objects of 16 B..64 KiB, log-uniform sizes; each step frees a "
                        "random slot's object and allocates a new one there",
                        16, 65536, 0, 1024, 32},
};

const char *bench_workload_name(bench_workload_kind kind) { return kinds[kind].name; }

bench_workload_kind bench_workload_find(const char *name)
{
    for (int k = 0; k < BENCH_WORKLOADS; k++) {
        if (strcmp(kinds[k].name, name) == 0) {
            return (bench_workload_kind)k;
        }
    }
    return BENCH_WORKLOADS;
}

/* xorshift64*: small, fast, good enough to pick sizes and slots. */
static uint64_t next_random(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545f4914f6cdd1du;
}

static uint32_t random_below(uint64_t *x, uint32_t n) /* [0, n) */
{
    return (uint32_t)(((next_random(x) >> 32) * n) >> 32);
}

/* round(2^u), u uniform over [log2 lo, log2 hi]. */
static uint32_t random_size(uint64_t *x, size_t lo, size_t hi)
{
    double u = (double)(next_random(x) >> 11) * 0x1p-53;
    double l = log2((double)lo), h = log2((double)hi);
    double size = floor(exp2(l + (h - l) * u) + 0.5);
    return (uint32_t)(size > (double)hi ? (double)hi : size);
}

int bench_workload_make(bench_workload *w, bench_workload_kind kind, uint64_t calls, bool smoke)
{
    *w = (bench_workload){0};
    w->kind = kind;
    w->name = kinds[kind].name;
    w->title = kinds[kind].title;
    w->description = kinds[kind].description;
    w->slots = smoke ? kinds[kind].smoke_slots : kinds[kind].slots;
    w->need = (bench_need){kinds[kind].min_size, kinds[kind].max_size, w->slots, kinds[kind].fixed_size};
    uint64_t x = SEED + (uint64_t)kind;
    switch (kind) {
    case BENCH_FIXED:
        w->pairs_or_steps = calls / 2 ? calls / 2 : 1;
        w->calls = 2 * w->pairs_or_steps;
        return 0;
    case BENCH_BATCH:
        w->pairs_or_steps = calls / (2 * w->slots) ? calls / (2 * w->slots) : 1;
        w->calls = 2 * w->slots * w->pairs_or_steps;
        w->order = malloc(w->slots * sizeof *w->order);
        if (w->order == NULL) {
            return -1;
        }
        for (uint32_t i = 0; i < w->slots; i++) {
            w->order[i] = i;
        }
        for (uint32_t i = (uint32_t)w->slots - 1; i > 0; i--) { /* Fisher-Yates */
            uint32_t j = random_below(&x, i + 1), t = w->order[i];
            w->order[i] = w->order[j];
            w->order[j] = t;
        }
        return 0;
    default:
        w->pairs_or_steps = calls / 2 ? calls / 2 : 1;
        w->calls = 2 * w->pairs_or_steps;
        w->fill = malloc(w->slots * sizeof *w->fill);
        w->steps = malloc(w->pairs_or_steps * sizeof *w->steps);
        if (w->fill == NULL || w->steps == NULL) {
            bench_workload_free(w);
            return -1;
        }
        for (size_t i = 0; i < w->slots; i++) {
            w->fill[i] = random_size(&x, w->need.min_size, w->need.max_size);
        }
        for (uint64_t i = 0; i < w->pairs_or_steps; i++) {
            w->steps[i].slot = random_below(&x, (uint32_t)w->slots);
            w->steps[i].size = random_size(&x, w->need.min_size, w->need.max_size);
        }
        return 0;
    }
}

void bench_workload_free(bench_workload *w)
{
    free(w->fill);
    free(w->steps);
    free(w->order);
    w->fill = NULL;
    w->steps = NULL;
    w->order = NULL;
}

static int failed(const bench_workload *w, const bench_allocator *a, uint64_t call)
{
    fprintf(stderr, "poolkit bench: %s: %s: allocation %llu failed\n", a->name, w->name,
            (unsigned long long)call);
    return -1;
}

/* Live sets: fill the slots before the loop, empty them after. */
static int fill(const bench_workload *w, bench_allocator *a, void **slots)
{
    for (size_t i = 0; i < w->slots; i++) {
        slots[i] = a->alloc(a->self, w->fill[i]);
        if (slots[i] == NULL) {
            while (i > 0) {
                a->release(a->self, slots[--i]);
            }
            fprintf(stderr, "poolkit bench: %s: %s: filling the live set failed\n", a->name, w->name);
            return -1;
        }
    }
    return 0;
}

static void drain(const bench_workload *w, bench_allocator *a, void **slots)
{
    for (size_t i = 0; i < w->slots; i++) {
        a->release(a->self, slots[i]);
    }
}

/* The loop callgrind counts (--toggle-collect='bench_counted_loop'), also
 * timed as a whole. Returns the call number of a failed allocation + 1, or
 * 0. Not static, not inlined: callgrind finds it by name. */
uint64_t bench_counted_loop(const bench_workload *w, bench_allocator *a, void **slots);
__attribute__((noinline)) uint64_t bench_counted_loop(const bench_workload *w, bench_allocator *a,
                                                      void **slots)
{
    void *(*alloc)(void *, size_t) = a->alloc;
    void (*release)(void *, void *) = a->release;
    void *self = a->self;
    switch (w->kind) {
    case BENCH_FIXED:
        for (uint64_t i = 0; i < w->pairs_or_steps; i++) {
            void *p = alloc(self, 64);
            if (p == NULL) {
                return 2 * i + 1;
            }
            release(self, p);
        }
        break;
    case BENCH_BATCH:
        for (uint64_t r = 0; r < w->pairs_or_steps; r++) {
            for (size_t i = 0; i < w->slots; i++) {
                slots[i] = alloc(self, 64);
                if (slots[i] == NULL) {
                    uint64_t call = r * 2 * w->slots + i;
                    while (i > 0) {
                        release(self, slots[--i]);
                    }
                    return call + 1;
                }
            }
            for (size_t i = 0; i < w->slots; i++) {
                release(self, slots[w->order[i]]);
            }
        }
        break;
    default:
        for (uint64_t i = 0; i < w->pairs_or_steps; i++) {
            uint32_t s = w->steps[i].slot;
            release(self, slots[s]);
            slots[s] = alloc(self, w->steps[i].size);
            if (slots[s] == NULL) {
                return 2 * i + 2;
            }
        }
        break;
    }
    return 0;
}

/* A live set whose step failed has a NULL slot: free the others. */
static void drain_after_failure(const bench_workload *w, bench_allocator *a, void **slots)
{
    for (size_t i = 0; i < w->slots; i++) {
        if (slots[i] != NULL) {
            a->release(a->self, slots[i]);
        }
    }
}

static int run_loop(const bench_workload *w, bench_allocator *a, void **slots, double *ns)
{
    bool live = w->kind == BENCH_LIVE_4K || w->kind == BENCH_LIVE_64K;
    if (live && fill(w, a, slots) != 0) {
        return -1;
    }
    double t0 = bench_now_ns();
    uint64_t failure = bench_counted_loop(w, a, slots);
    double t1 = bench_now_ns();
    if (failure != 0) {
        if (live) {
            drain_after_failure(w, a, slots);
        }
        return failed(w, a, failure - 1);
    }
    if (live) {
        drain(w, a, slots);
    }
    if (ns != NULL) {
        *ns = t1 - t0;
    }
    return 0;
}

int bench_pass_counted(const bench_workload *w, bench_allocator *a, void **slots)
{
    return run_loop(w, a, slots, NULL);
}

int bench_pass_whole(const bench_workload *w, bench_allocator *a, void **slots, double *ns)
{
    return run_loop(w, a, slots, ns);
}

/* Every call timed on its own: ticks[k] = the k-th call's time. */
#define TIMED(call)                                                                                \
    do {                                                                                           \
        uint64_t t0_ = bench_tick_start();                                                         \
        call;                                                                                      \
        uint64_t t1_ = bench_tick_stop();                                                          \
        *tick++ = t1_ - t0_ < UINT32_MAX ? (uint32_t)(t1_ - t0_) : UINT32_MAX;                     \
    } while (0)

int bench_pass_timed(const bench_workload *w, bench_allocator *a, void **slots, uint32_t *ticks)
{
    void *(*alloc)(void *, size_t) = a->alloc;
    void (*release)(void *, void *) = a->release;
    void *self = a->self;
    uint32_t *tick = ticks;
    switch (w->kind) {
    case BENCH_FIXED:
        for (uint64_t i = 0; i < w->pairs_or_steps; i++) {
            void *p;
            TIMED(p = alloc(self, 64));
            if (p == NULL) {
                return failed(w, a, 2 * i);
            }
            TIMED(release(self, p));
        }
        break;
    case BENCH_BATCH:
        for (uint64_t r = 0; r < w->pairs_or_steps; r++) {
            for (size_t i = 0; i < w->slots; i++) {
                TIMED(slots[i] = alloc(self, 64));
                if (slots[i] == NULL) {
                    uint64_t call = r * 2 * w->slots + i;
                    while (i > 0) {
                        release(self, slots[--i]);
                    }
                    return failed(w, a, call);
                }
            }
            for (size_t i = 0; i < w->slots; i++) {
                TIMED(release(self, slots[w->order[i]]));
            }
        }
        break;
    default:
        if (fill(w, a, slots) != 0) {
            return -1;
        }
        for (uint64_t i = 0; i < w->pairs_or_steps; i++) {
            uint32_t s = w->steps[i].slot;
            uint32_t size = w->steps[i].size;
            TIMED(release(self, slots[s]));
            TIMED(slots[s] = alloc(self, size));
            if (slots[s] == NULL) {
                drain_after_failure(w, a, slots);
                return failed(w, a, 2 * i + 1);
            }
        }
        drain(w, a, slots);
        break;
    }
    return 0;
}
