/* The heap's bound, proved by counting: built against a heap compiled with
 * PK_HEAP_COUNT_STEPS, every alloc and free counts its inner steps (class
 * mapping, bitmap search, list insert and remove, split, merge), and the
 * largest count per call must stay under a fixed constant whatever the heap's
 * size, state or history. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driver/driver.h"
#include "poolkit/heap.h"

/* The longest paths: an aligned alloc that splits off a leading gap and a
 * tail (7 steps); a free that merges with both neighbours (5 steps). */
#if PK_DEBUG
/* Debug builds: a free retires its block to the quarantine and really frees
 * the oldest one (all of them when nothing is left live: PK_QUARANTINE_SIZE
 * + 1 frees of 5 steps); an alloc that finds no block drains the quarantine
 * and tries again (a failed search, the drain, the release path). Still a
 * constant: the quarantine's size. */
#define MAX_ALLOC_STEPS (3 + 5 * PK_QUARANTINE_SIZE + 7)
#define MAX_FREE_STEPS (5 * (PK_QUARANTINE_SIZE + 1))
#define HIST 128
#else
#define MAX_ALLOC_STEPS 7
#define MAX_FREE_STEPS 5
#define HIST 32
#endif
#define MAX_LIVE 8192

typedef struct {
    unsigned long max_alloc, max_free;
    unsigned long alloc_hist[HIST], free_hist[HIST];
    size_t allocs, frees;
} step_record;

static void *counted_alloc(pk_heap *h, step_record *rec, size_t size, size_t align)
{
    void *p = align != 0 ? pk_heap_alloc_aligned(h, size, align) : pk_heap_alloc(h, size);
    unsigned long steps = h->steps;
    assert_true(steps < HIST);
    rec->alloc_hist[steps]++;
    rec->allocs++;
    if (steps > rec->max_alloc) {
        rec->max_alloc = steps;
    }
    return p;
}

static void counted_free(pk_heap *h, step_record *rec, void *p)
{
    assert_int_equal(pk_heap_free(h, p), PK_OK);
    unsigned long steps = h->steps;
    assert_true(steps < HIST);
    rec->free_hist[steps]++;
    rec->frees++;
    if (steps > rec->max_free) {
        rec->max_free = steps;
    }
}

static unsigned long median(const unsigned long *hist, size_t total)
{
    size_t seen = 0;
    for (unsigned long i = 0; i < HIST; i++) {
        seen += hist[i];
        if (seen * 2 >= total) {
            return i;
        }
    }
    return HIST;
}

static size_t log_uniform(uint64_t *rng, size_t lo, size_t hi)
{
    unsigned lo_bits = 0, hi_bits = 0;
    while (((size_t)2 << lo_bits) <= lo) {
        lo_bits++;
    }
    while (((size_t)2 << hi_bits) <= hi) {
        hi_bits++;
    }
    /* hi < lo would leave no octave (and divide by zero): callers pass lo <= hi. */
    unsigned octaves = hi_bits >= lo_bits ? hi_bits - lo_bits + 1 : 1;
    unsigned octave = lo_bits + (unsigned)(pk_driver_next_random(rng) % octaves);
    size_t size = ((size_t)1 << octave) + (size_t)(pk_driver_next_random(rng) % ((size_t)1 << octave));
    return size < lo ? lo : size > hi ? hi : size;
}

static void *live[MAX_LIVE];

/* Random live set: allocs (a quarter of them aligned) and frees of random
 * live blocks, growing until failures, then shrinking. */
static void random_workload(pk_heap *h, step_record *rec, uint64_t seed, size_t ops, size_t max_size)
{
    uint64_t rng = seed;
    size_t n = 0;
    for (size_t op = 0; op < ops; op++) {
        bool grow = (op / 4096) % 2 == 0;
        bool alloc = n == 0 || (n < MAX_LIVE && pk_driver_next_random(&rng) % 100 < (grow ? 70u : 30u));
        if (alloc) {
            size_t align = pk_driver_next_random(&rng) % 4 == 0 ? (size_t)64 << (op % 6) : 0;
            void *p = counted_alloc(h, rec, log_uniform(&rng, 16, max_size), align);
            if (p != NULL) {
                live[n++] = p;
            }
        } else {
            size_t i = (size_t)(pk_driver_next_random(&rng) % n);
            counted_free(h, rec, live[i]);
            live[i] = live[--n];
        }
    }
    while (n > 0) {
        counted_free(h, rec, live[--n]);
    }
}

/* Adversarial: the heap cut into many small free fragments (every other small
 * block freed), then requests of every size class, which must search past
 * all of them. */
static void fragment_workload(pk_heap *h, step_record *rec)
{
    size_t n = 0;
    for (void *p; n < MAX_LIVE && (p = counted_alloc(h, rec, 24, 0)) != NULL;) {
        live[n++] = p;
    }
    for (size_t i = 0; i < n; i += 2) {
        counted_free(h, rec, live[i]);
    }
    for (size_t size = 1; size < ((size_t)1 << 20); size = size * 2 + 1) {
        void *p = counted_alloc(h, rec, size, 0);
        if (p != NULL) {
            counted_free(h, rec, p);
        }
        p = counted_alloc(h, rec, size, 4096);
        if (p != NULL) {
            counted_free(h, rec, p);
        }
    }
    for (size_t i = 1; i < n; i += 2) {
        counted_free(h, rec, live[i]);
    }
}

static size_t random_ops(void)
{
    const char *text = getenv("POOLKIT_RANDOM_OPS");
    return text != NULL ? (size_t)strtoull(text, NULL, 10) : 1000000;
}

static void test_steps_are_bounded(void **state)
{
    (void)state;
    static const size_t heap_sizes[] = {(size_t)4 << 10, (size_t)64 << 10, (size_t)1 << 20,
                                        (size_t)16 << 20, (size_t)256 << 20};
    step_record all;
    memset(&all, 0, sizeof all);
    for (size_t i = 0; i < sizeof heap_sizes / sizeof *heap_sizes; i++) {
        size_t size = heap_sizes[i];
        unsigned char *buf = malloc(size);
        assert_non_null(buf);
        pk_heap h;
        assert_int_equal(pk_heap_init(&h, buf, size), PK_OK);
        step_record rec;
        memset(&rec, 0, sizeof rec);
        /* The long run on the 16 MiB heap, shorter ones elsewhere. */
        size_t ops = size == ((size_t)16 << 20) ? random_ops() : random_ops() / 10;
        random_workload(&h, &rec, 1000 + i, ops, size < 65536 ? 512 : 4096);
        fragment_workload(&h, &rec);
        random_workload(&h, &rec, 2000 + i, ops / 2, size < 65536 ? 1024 : 65536);
        assert_int_equal(pk_heap_check(&h), PK_OK);
        print_message("heap %9zu B: %zu allocs, max %lu steps (median %lu); %zu frees, max %lu (median %lu)\n",
                      size, rec.allocs, rec.max_alloc, median(rec.alloc_hist, rec.allocs), rec.frees,
                      rec.max_free, median(rec.free_hist, rec.frees));
        assert_true(rec.max_alloc <= MAX_ALLOC_STEPS);
        assert_true(rec.max_free <= MAX_FREE_STEPS);
        for (size_t k = 0; k < HIST; k++) {
            all.alloc_hist[k] += rec.alloc_hist[k];
            all.free_hist[k] += rec.free_hist[k];
        }
        all.allocs += rec.allocs;
        all.frees += rec.frees;
        free(buf);
    }
#if !PK_DEBUG /* debug builds: the drains make the worst case far from the typical one */
    /* The worst call is within 3x of the typical one. */
    assert_true(MAX_ALLOC_STEPS <= 3 * median(all.alloc_hist, all.allocs));
    assert_true(MAX_FREE_STEPS <= 3 * median(all.free_hist, all.frees));
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps_are_bounded),
    };
    return cmocka_run_group_tests_name("heap steps", tests, NULL, NULL);
}
