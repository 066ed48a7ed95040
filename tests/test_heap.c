/* Unit tests of the O(1) TLSF heap (poolkit/heap.h). Built three ways: plain,
 * with PK_HEAP_STRICT_FREE=1 (interior pointers caught) and with
 * PK_HEAP_COUNT_STEPS (the bound on inner steps per call). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driver/driver.h"
#include "support.h"
#include "poolkit/heap.h"

static void expect_fault(pk_status kind, const void *ptr)
{
    expect_fault_named(kind, ptr, "heap");
}

static void assert_check_ok(const pk_heap *h)
{
    unsigned before = faults.calls;
    assert_int_equal(pk_heap_check(h), PK_OK);
    assert_int_equal(faults.calls, before);
}

static void assert_check_corrupt(const pk_heap *h)
{
    faults.calls = 0;
    assert_int_equal(pk_heap_check(h), PK_ERR_CORRUPT);
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, PK_ERR_CORRUPT);
    faults.calls = 0;
}

/* Debug builds (PK_DEBUG): a client pointer lies PK_DEBUG_PREFIX_ bytes past
 * its heap block's payload (its tag and front guard come first); RAW gives
 * the payload, where the heap's own layout (header before it, links in it)
 * is found. Release builds: the pointer itself. */
#if PK_DEBUG
#define RAW(p) ((unsigned char *)(p) - PK_DEBUG_PREFIX_(PK_HEAP_ALIGN))
#else
#define RAW(p) ((unsigned char *)(p))
#endif

static _Alignas(4096) unsigned char arena[1 << 20];
static _Alignas(64) unsigned char second[1 << 16];

static pk_stats stats_of(const pk_heap *h)
{
    pk_stats s;
    pk_heap_stats(h, &s);
    return s;
}

/* The heap is back to its empty state: one free block per region. */
static void assert_whole(const pk_heap *h)
{
    assert_check_ok(h);
    pk_stats s = stats_of(h);
    assert_int_equal(s.live, 0);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.free_bytes, s.capacity);
    assert_int_equal(h->blocks - s.live, h->region_count);
}

#if PK_DEBUG
/* Debug builds: freed blocks wait in the quarantine (live to the heap) and
 * merge when they leave it. Frees of PK_QUARANTINE_SIZE fresh blocks push
 * every earlier one out; the fresh ones stay quarantined. */
static void push_out_quarantine(pk_heap *h)
{
    void *fresh[PK_QUARANTINE_SIZE + 1];
    for (size_t i = 0; i < PK_QUARANTINE_SIZE; i++) {
        fresh[i] = pk_heap_alloc(h, 1);
        assert_non_null(fresh[i]);
    }
    for (size_t i = 0; i < PK_QUARANTINE_SIZE; i++) {
        assert_int_equal(pk_heap_free(h, fresh[i]), PK_OK);
    }
}
#endif

static void test_init_rejects_bad_arguments(void **state)
{
    (void)state;
    pk_heap h;
    memset(&h, 0x5A, sizeof h);
    unsigned char before[sizeof h];
    memcpy(before, &h, sizeof h);
    assert_int_equal(pk_heap_init(NULL, arena, sizeof arena), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_heap_init(&h, NULL, sizeof arena), PK_ERR_INVALID_ARG);
    /* Below one smallest block and the sentinel word, whatever the alignment. */
    for (size_t size = 0; size < 2 * sizeof(size_t) + PK_HEAP_MIN_PAYLOAD; size++) {
        assert_int_equal(pk_heap_init(&h, arena + 1, size), PK_ERR_INVALID_ARG);
    }
    assert_memory_equal(&h, before, sizeof h);
    assert_int_equal(faults.calls, 0);
    /* The smallest buffer that works holds one smallest block. */
    size_t size = 40;
    while (pk_heap_init(&h, arena + 1, size) != PK_OK) {
        size++;
    }
    assert_true(size <= 2 * PK_HEAP_ALIGN + 4 * sizeof(size_t) + PK_HEAP_MIN_PAYLOAD + 1024);
    pk_stats s = stats_of(&h);
    assert_true(s.capacity >= PK_HEAP_MIN_PAYLOAD);
#if PK_DEBUG
    /* Debug builds: a block carries a tag and guards, more than the smallest
     * heap holds; pk_heap_buffer_size counts them. */
    assert_null(pk_heap_alloc(&h, 1));
    assert_int_equal(pk_heap_init(&h, arena + 1, pk_heap_buffer_size(1, 1)), PK_OK);
    assert_non_null(pk_heap_alloc(&h, 1));
#else
    assert_non_null(pk_heap_alloc(&h, 1));
    assert_null(pk_heap_alloc(&h, 1));
#endif
}

static void test_alloc_sizes_and_alignment(void **state)
{
    (void)state;
    pk_heap h;
    pk_driver_fill_garbage(arena, sizeof arena, 7);
    assert_int_equal(pk_heap_init(&h, arena + 3, sizeof arena - 3), PK_OK);
    pk_stats empty = stats_of(&h);
    assert_true(empty.capacity > sizeof arena - sizeof arena / 100 - 256); /* strict: 1/128 for starts */
    assert_int_equal(empty.free_bytes, empty.capacity);
    assert_int_equal(empty.block_size, 0);
    void *blocks[64];
    size_t n = 0;
    size_t requested = 0;
    for (size_t size = 0; size < 5000; size = size * 2 + 1) {
        unsigned char *p = pk_heap_alloc(&h, size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % PK_HEAP_ALIGN, 0);
        size_t usable = pk_heap_usable_size(&h, p);
#if PK_DEBUG
        /* Debug builds: usable_size is the size requested (the rear guard
         * follows it), and in_use counts the heap blocks, tags and guards
         * included. */
        assert_int_equal(usable, size);
#else
        assert_true(usable >= size && usable >= PK_HEAP_MIN_PAYLOAD);
        assert_true(usable < size + PK_HEAP_ALIGN + PK_HEAP_MIN_PAYLOAD);
#endif
        memset(p, 0xA5, usable);
        blocks[n++] = p;
        requested += usable;
        assert_check_ok(&h);
    }
    pk_stats s = stats_of(&h);
    assert_int_equal(s.live, n);
#if PK_DEBUG
    assert_int_equal(s.requested, requested);
    assert_true(s.in_use >= requested + n * PK_DEBUG_OVERHEAD_(PK_HEAP_ALIGN));
    assert_true(s.in_use < requested + n * (PK_DEBUG_OVERHEAD_(PK_HEAP_ALIGN) + PK_HEAP_ALIGN + PK_HEAP_MIN_PAYLOAD));
#else
    assert_int_equal(s.in_use, requested);
    assert_int_equal(s.requested, s.in_use);
#endif
    /* One header word per block. */
    assert_int_equal(s.free_bytes + s.in_use + n * sizeof(size_t), s.capacity);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(pk_heap_free(&h, blocks[i]), PK_OK);
        assert_check_ok(&h);
    }
    assert_whole(&h);
    assert_int_equal(stats_of(&h).peak_live, n);
    assert_int_equal(faults.calls, 0);
}

/* Freed blocks merge with both neighbours at once. */
static void test_coalescing(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena, 1 << 16), PK_OK);
    void *a = pk_heap_alloc(&h, 100);
    void *b = pk_heap_alloc(&h, 200);
    void *c = pk_heap_alloc(&h, 300);
    void *d = pk_heap_alloc(&h, 400);
#if PK_DEBUG
    /* Debug builds: freed blocks wait in the quarantine, live to the heap,
     * and merge when they leave it (past PK_QUARANTINE_SIZE, or when nothing
     * is live): here all at once, when d's free leaves nothing live. The
     * counts below are the release layout's. */
    assert_int_equal(pk_heap_free(&h, a), PK_OK);
    assert_int_equal(pk_heap_free(&h, c), PK_OK);
    assert_int_equal(pk_heap_free(&h, b), PK_OK);
    assert_int_equal(h.blocks - h.live, 1);
    assert_int_equal(h.debug.held, 3);
    assert_int_equal(pk_heap_free(&h, d), PK_OK);
    assert_int_equal(h.debug.held, 0);
    assert_whole(&h);
    return;
#endif
    assert_int_equal((h.blocks - stats_of(&h).live), 1);
    assert_int_equal(pk_heap_free(&h, a), PK_OK);
    assert_int_equal((h.blocks - stats_of(&h).live), 2);
    assert_int_equal(pk_heap_free(&h, c), PK_OK);
    assert_int_equal((h.blocks - stats_of(&h).live), 3);
    assert_int_equal(pk_heap_free(&h, b), PK_OK); /* merges with a and c */
    assert_int_equal((h.blocks - stats_of(&h).live), 2);
    assert_check_ok(&h);
    /* The merged hole serves a request as large as a + b + c. */
    void *big = pk_heap_alloc(&h, 600);
    assert_ptr_equal(big, a);
    assert_int_equal(pk_heap_free(&h, big), PK_OK);
    assert_int_equal(pk_heap_free(&h, d), PK_OK); /* merges with the hole and the tail */
    assert_whole(&h);
}

/* largest_free is exact: that request succeeds, one byte more fails. */
static void check_largest_free(pk_heap *h)
{
    pk_stats s = stats_of(h);
    if (s.largest_free == 0) {
        assert_null(pk_heap_alloc(h, 1));
        return;
    }
    void *p = pk_heap_alloc(h, s.largest_free);
    assert_non_null(p);
    assert_int_equal(pk_heap_free(h, p), PK_OK);
#if PK_DEBUG
    /* Debug builds: a request that fails drains the quarantine and tries
     * again, so one byte more may succeed while blocks are quarantined
     * (largest_free does not count them); exact when none is. */
    if (h->debug.held != 0) {
        assert_true(s.largest_free <= s.free_bytes);
        return;
    }
#endif
    assert_null(pk_heap_alloc(h, s.largest_free + 1));
    assert_true(s.largest_free <= s.free_bytes);
}

static void test_largest_free_is_exact(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena, 1 << 18), PK_OK);
    check_largest_free(&h);
    void *live[256];
    size_t n = 0;
    uint64_t rng = 99;
    for (unsigned op = 0; op < 3000; op++) {
        if (n < 256 && pk_driver_next_random(&rng) % 3 != 0) {
            size_t size = (size_t)(1 + pk_driver_next_random(&rng) % 3000);
            void *p = pk_heap_alloc(&h, size);
            if (p != NULL) {
                live[n++] = p;
            }
        } else if (n > 0) {
            size_t i = (size_t)(pk_driver_next_random(&rng) % n);
            assert_int_equal(pk_heap_free(&h, live[i]), PK_OK);
            live[i] = live[--n];
        }
        if (op % 7 == 0) {
            check_largest_free(&h);
        }
    }
    while (n > 0) {
        assert_int_equal(pk_heap_free(&h, live[--n]), PK_OK);
    }
    assert_whole(&h);
    pk_stats s = stats_of(&h);
    assert_true(pk_frag_external(&s) < 0.05); /* one free block: only good-fit rounding */
}

static void test_aligned_and_bounded(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena + 8, 1 << 19), PK_OK);
    void *blocks[64];
    size_t n = 0;
    for (size_t align = 1; align <= 8192; align *= 2) {
        for (size_t size = 1; size < 3000; size = size * 3 + 7) {
            unsigned char *p = pk_heap_alloc_aligned(&h, size, align);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % (align > PK_HEAP_ALIGN ? align : PK_HEAP_ALIGN), 0);
            memset(p, 0x3C, size);
            assert_check_ok(&h);
            if (n < 64) {
                blocks[n++] = p;
            } else {
                assert_int_equal(pk_heap_free(&h, p), PK_OK);
            }
        }
    }
    /* DMA-style: never across a 4 KiB page, whatever the size up to a page. */
    for (size_t size = 1; size <= 4096; size = size * 2 + 3) {
        uintptr_t p = (uintptr_t)pk_heap_alloc_bounded(&h, size, 0, 4096);
        assert_true(p != 0);
        assert_int_equal(p / 4096, (p + size - 1) / 4096);
        assert_int_equal(pk_heap_free(&h, (void *)p), PK_OK);
    }
    uintptr_t page = (uintptr_t)pk_heap_alloc_bounded(&h, 4096, 64, 4096);
    assert_int_equal(page % 4096, 0);
    assert_int_equal(pk_heap_free(&h, (void *)page), PK_OK);
    assert_int_equal(faults.calls, 0);
    /* Bad arguments: NULL and one PK_ERR_INVALID_ARG each, counted rejected. */
    uint64_t rejected = stats_of(&h).rejected;
    assert_null(pk_heap_alloc_bounded(&h, 4097, 0, 4096));
    expect_fault(PK_ERR_INVALID_ARG, NULL);
    assert_null(pk_heap_alloc_bounded(&h, 10, 0, 3000));
    expect_fault(PK_ERR_INVALID_ARG, NULL);
    assert_null(pk_heap_alloc_bounded(&h, 10, 24, 4096));
    expect_fault(PK_ERR_INVALID_ARG, NULL);
    assert_null(pk_heap_alloc_aligned(&h, 10, 3));
    expect_fault(PK_ERR_INVALID_ARG, NULL);
    assert_null(pk_alloc_aligned(pk_heap_allocator(&h), 10, 48));
    expect_fault(PK_ERR_INVALID_ARG, NULL);
    assert_int_equal(stats_of(&h).rejected, rejected + 5);
    while (n > 0) {
        assert_int_equal(pk_heap_free(&h, blocks[--n]), PK_OK);
    }
    assert_whole(&h);
}

static void test_too_large_is_a_failure(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena, 1 << 16), PK_OK);
    static const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 8, SIZE_MAX / 2, (size_t)1 << PK_HEAP_MAX_LOG2,
                                   1 << 16, (1 << 16) - 64};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        assert_null(pk_heap_alloc(&h, sizes[i]));
        assert_null(pk_heap_alloc_aligned(&h, sizes[i], 4096));
        assert_null(pk_heap_alloc_bounded(&h, sizes[i], 0, 0));
    }
    assert_null(pk_heap_alloc_aligned(&h, 100, (size_t)1 << (PK_HEAP_MAX_LOG2 - 1)));
    assert_null(pk_calloc(pk_heap_allocator(&h), SIZE_MAX / 2, 3));
    assert_int_equal(faults.calls, 0);
    pk_stats s = stats_of(&h);
    assert_int_equal(s.failures, 3 * (sizeof sizes / sizeof *sizes) + 2);
    assert_int_equal(s.rejected, 0);
    assert_whole(&h);
}

static void test_realloc_in_place_and_moved(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena, 1 << 16), PK_OK);
    unsigned char *p = pk_heap_realloc(&h, NULL, 100);
    assert_non_null(p);
    for (size_t i = 0; i < 100; i++) {
        p[i] = (unsigned char)i;
    }
#if PK_DEBUG
    /* Debug builds: realloc moves the block whenever the size changes (its
     * guards follow the new size), keeping the contents; the old block goes
     * to the quarantine. */
    unsigned char *grown = pk_heap_realloc(&h, p, 1000);
    assert_non_null(grown);
    assert_ptr_not_equal(grown, p);
    assert_int_equal(pk_heap_usable_size(&h, grown), 1000);
    assert_int_equal(pk_heap_usable_size(&h, p), 0);
    for (size_t i = 0; i < 100; i++) {
        assert_int_equal(grown[i], (unsigned char)i);
    }
    assert_ptr_equal(pk_heap_realloc(&h, grown, 1000), grown); /* the same size: kept */
    p = pk_heap_realloc(&h, grown, 50);
    assert_int_equal(pk_heap_usable_size(&h, p), 50);
    assert_check_ok(&h);
    void *wall = pk_heap_alloc(&h, 10);
#else
    /* Grows in place into the free space behind it. */
    assert_ptr_equal(pk_heap_realloc(&h, p, 1000), p);
    assert_true(pk_heap_usable_size(&h, p) >= 1000);
    /* Shrinks in place. */
    assert_ptr_equal(pk_heap_realloc(&h, p, 50), p);
    assert_true(pk_heap_usable_size(&h, p) < 100);
    assert_check_ok(&h);
    /* Blocked by a neighbour: moves, keeping the contents. */
    void *wall = pk_heap_alloc(&h, 10);
    assert_ptr_equal(wall, p + pk_heap_usable_size(&h, p) + sizeof(size_t));
#endif
    unsigned char *q = pk_heap_realloc(&h, p, 3000);
    assert_non_null(q);
    assert_ptr_not_equal(q, p);
    for (size_t i = 0; i < 50; i++) {
        assert_int_equal(q[i], (unsigned char)i);
    }
    assert_int_equal(pk_heap_usable_size(&h, p), 0); /* the old block is free */
    /* Failure: NULL, and the block is untouched. */
    uint64_t failures = stats_of(&h).failures;
    assert_null(pk_heap_realloc(&h, q, 1 << 20));
    assert_null(pk_heap_realloc(&h, q, SIZE_MAX));
    assert_int_equal(stats_of(&h).failures, failures + 2);
    assert_true(pk_heap_usable_size(&h, q) >= 3000);
    assert_int_equal(q[49], 49);
#if PK_DEBUG
    assert_int_equal(pk_heap_usable_size(&h, q), 3000);
#endif
    /* Bad pointers are reported as free reports them. */
    assert_null(pk_heap_realloc(&h, p, 10));
    expect_fault(PK_ERR_DOUBLE_FREE, p);
    assert_null(pk_heap_realloc(&h, second, 10));
    expect_fault(PK_ERR_FOREIGN_PTR, second);
    /* realloc(p, 0) frees. */
    assert_null(pk_heap_realloc(&h, q, 0));
    assert_null(pk_heap_realloc(&h, wall, 0));
    assert_whole(&h);
}

static void test_misuse(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena, 1 << 16), PK_OK);
    unsigned char *a = pk_heap_alloc(&h, 200);
    unsigned char *b = pk_heap_alloc(&h, 200);
    unsigned char *c = pk_heap_alloc(&h, 200);
    memset(a, 0, 200);
    pk_stats before = stats_of(&h);

    assert_int_equal(pk_heap_free(&h, second), PK_ERR_FOREIGN_PTR);
    expect_fault(PK_ERR_FOREIGN_PTR, second);
    assert_int_equal(pk_heap_free(&h, a + 1), PK_ERR_MISALIGNED_PTR);
    expect_fault(PK_ERR_MISALIGNED_PTR, a + 1);
    /* An aligned interior pointer whose "header" is impossible (zeros). */
    assert_int_equal(pk_heap_free(&h, a + 64), PK_ERR_MISALIGNED_PTR);
    expect_fault(PK_ERR_MISALIGNED_PTR, a + 64);
    assert_int_equal(pk_heap_free(&h, NULL), PK_OK);
    assert_int_equal(faults.calls, 0);
    pk_stats after = stats_of(&h);
    assert_int_equal(after.rejected, before.rejected + 3);
    after.rejected = before.rejected;
    assert_memory_equal(&before, &after, sizeof before);
    assert_check_ok(&h);

    /* Double frees: plain, after merging into the previous block and after
     * the next block merged into it (headers intact). */
    assert_int_equal(pk_heap_free(&h, a), PK_OK);
    assert_int_equal(pk_heap_free(&h, a), PK_ERR_DOUBLE_FREE);
    expect_fault(PK_ERR_DOUBLE_FREE, a);
    assert_int_equal(pk_heap_free(&h, b), PK_OK); /* merges into a */
    assert_int_equal(pk_heap_free(&h, b), PK_ERR_DOUBLE_FREE);
    expect_fault(PK_ERR_DOUBLE_FREE, b);
    assert_int_equal(pk_heap_free(&h, c), PK_OK); /* merges with a+b and the tail */
    assert_int_equal(pk_heap_free(&h, c), PK_ERR_DOUBLE_FREE);
    expect_fault(PK_ERR_DOUBLE_FREE, c);
    assert_whole(&h);
}

/* Pointers whose "header" looks like a block's but is not one. */
static void test_forged_headers_rejected(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena, 1 << 16), PK_OK);
    unsigned char *a = pk_heap_alloc(&h, 512);
    unsigned char *wall = pk_heap_alloc(&h, 64);
    memset(a, 0, 512);
    /* Misaligned, with a plausible used header just before it. */
    size_t forged = PK_HEAP_MIN_PAYLOAD;
    memcpy(a, &forged, sizeof forged);
    assert_int_equal(pk_heap_free(&h, a + sizeof(size_t)), PK_ERR_MISALIGNED_PTR);
    expect_fault(PK_ERR_MISALIGNED_PTR, a + sizeof(size_t));
    /* Inside a free block, a stale "used" header whose next block says its
     * neighbour is free. */
    assert_int_equal(pk_heap_free(&h, a), PK_OK);
    unsigned char *inside = a + 256;
    forged = (size_t)(wall - 2 * sizeof(size_t) + sizeof(size_t) - inside);
    memcpy(inside - sizeof(size_t), &forged, sizeof forged);
    assert_int_equal(pk_heap_free(&h, inside), PK_ERR_MISALIGNED_PTR);
    expect_fault(PK_ERR_MISALIGNED_PTR, inside);
    assert_int_equal(pk_heap_free(&h, wall), PK_OK);
    assert_whole(&h);
}

#if PK_HEAP_STRICT_FREE
/* With the bitmap of block starts every interior pointer is caught, whatever
 * the block holds. */
static void test_strict_interior_pointers(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena, 1 << 16), PK_OK);
    unsigned char *a = pk_heap_alloc(&h, 512);
    unsigned char *b = pk_heap_alloc(&h, 64);
    /* Plant a perfect fake header inside a: a copy of b's. */
    for (size_t offset = PK_HEAP_ALIGN; offset < 512; offset += PK_HEAP_ALIGN) {
        memcpy(a + offset - sizeof(size_t), b - sizeof(size_t), sizeof(size_t));
        assert_int_equal(pk_heap_free(&h, a + offset), PK_ERR_MISALIGNED_PTR);
        expect_fault(PK_ERR_MISALIGNED_PTR, a + offset);
    }
    assert_int_equal(pk_heap_free(&h, b), PK_OK);
    assert_int_equal(pk_heap_free(&h, a), PK_OK);
    assert_whole(&h);
}
#endif

static void test_regions(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena, 1 << 14), PK_OK);
    size_t one = stats_of(&h).capacity;
    assert_int_equal(pk_heap_add_region(&h, NULL, 4096), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_heap_add_region(&h, arena + 100, 4096), PK_ERR_INVALID_ARG); /* overlaps */
    assert_int_equal(pk_heap_add_region(&h, second, 8), PK_ERR_INVALID_ARG);         /* too small */
    assert_int_equal(pk_heap_add_region(&h, second, sizeof second), PK_OK);
    pk_stats s = stats_of(&h);
    assert_true(s.capacity > one + sizeof second - sizeof second / 100 - 256);
    /* Fill both regions; every block lies in one of them. */
    void *live[4096];
    size_t n = 0;
    for (void *p; (p = pk_heap_alloc(&h, 300)) != NULL; n++) {
        assert_true(n < 4096);
        unsigned char *b = p;
        bool in_first = b >= arena && b + 300 <= arena + (1 << 14);
        bool in_second = b >= second && b + 300 <= second + sizeof second;
        assert_true(in_first || in_second);
        live[n] = p;
    }
#if PK_DEBUG
    /* Debug builds: each block carries a tag and guards too. */
    assert_true(n > (one + sizeof second) / (320 + PK_DEBUG_OVERHEAD_(PK_HEAP_ALIGN)) - 4);
#else
    assert_true(n > (one + sizeof second) / 320 - 4);
#endif
    assert_check_ok(&h);
    /* A pointer between the regions is foreign. */
    assert_int_equal(pk_heap_free(&h, arena + (1 << 15)), PK_ERR_FOREIGN_PTR);
    expect_fault(PK_ERR_FOREIGN_PTR, arena + (1 << 15));
    while (n > 0) {
        assert_int_equal(pk_heap_free(&h, live[--n]), PK_OK);
    }
    assert_whole(&h);
    /* No more than PK_HEAP_MAX_REGIONS. */
    for (size_t i = 2; i < PK_HEAP_MAX_REGIONS; i++) {
        assert_int_equal(pk_heap_add_region(&h, arena + (1 << 15) + i * 4096, 4096), PK_OK);
    }
    assert_int_equal(pk_heap_add_region(&h, arena + (1 << 17), 4096), PK_ERR_INVALID_ARG);
    assert_whole(&h);
    assert_int_equal(faults.calls, 0);
}

/* pk_heap_buffer_size: that many bytes, at any address, serve that many
 * requests of that size, one after another. */
static void test_buffer_size_serves_count(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 8, 24, 25, 100, 500, 1000, 4096, 10000};
    static const size_t counts[] = {1, 2, 3, 10, 100};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++) {
            size_t need = pk_heap_buffer_size(sizes[si], counts[ci]);
            assert_true(need > 0 && need + 16 <= sizeof arena);
            for (size_t offset = 0; offset < 16; offset += 3) {
                pk_heap h;
                assert_int_equal(pk_heap_init(&h, arena + offset, need), PK_OK);
                for (size_t k = 0; k < counts[ci]; k++) {
                    assert_non_null(pk_heap_alloc(&h, sizes[si]));
                }
                assert_check_ok(&h);
            }
        }
    }
    assert_int_equal(pk_heap_buffer_size(100, 0), 0);
    assert_int_equal(pk_heap_buffer_size(SIZE_MAX, 1), 0);
    assert_int_equal(pk_heap_buffer_size(100, SIZE_MAX / 2), 0);
}

/* A region claimed to run to the top of the address space must not wrap the
 * overlap test (a buffer that lies about its size is the caller's fault, but
 * the heap's own regions must still be told apart). */
static void test_add_region_bounds(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena, 1 << 14), PK_OK);
    assert_int_equal(pk_heap_add_region(NULL, second, sizeof second), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_heap_add_region(&h, arena + 64, SIZE_MAX), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_heap_add_region(&h, arena + (1 << 14) - 64, 4096), PK_ERR_INVALID_ARG);
    assert_int_equal(h.region_count, 1);
    assert_whole(&h);
    assert_int_equal(faults.calls, 0);
}

/* Corruption: check finds each kind of damage. */
static void test_check_finds_damage(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena, 1 << 16), PK_OK);
    unsigned char *a = pk_heap_alloc(&h, 100);
    unsigned char *b = pk_heap_alloc(&h, 100);
    unsigned char *c = pk_heap_alloc(&h, 100);
    unsigned char *d = pk_heap_alloc(&h, 100);
    assert_int_equal(pk_heap_free(&h, b), PK_OK);
    assert_int_equal(pk_heap_free(&h, d), PK_OK); /* merges with the tail */
#if PK_DEBUG
    /* Debug builds: b and d wait in the quarantine; frees of fresh blocks
     * push them out (d merges with the free space after it, not the tail),
     * and the damage below goes to the heap's own layout (RAW). */
    push_out_quarantine(&h);
#endif
    assert_check_ok(&h);
    size_t *header_c = (size_t *)(void *)(RAW(c) - sizeof(size_t));
    size_t saved = *header_c;

    *header_c = saved + PK_HEAP_ALIGN; /* a size that overlaps the next block */
    assert_check_corrupt(&h);
    *header_c = saved | 1u; /* a live block marked free */
    assert_check_corrupt(&h);
    *header_c = saved & ~(size_t)2; /* the previous block's free flag lost */
    assert_check_corrupt(&h);
    *header_c = saved;
    assert_check_ok(&h);

    void **prev_phys_c = (void **)(void *)(RAW(c) - 2 * sizeof(size_t)); /* b's boundary tag */
    void *saved_tag = *prev_phys_c;
    *prev_phys_c = RAW(a) - 2 * sizeof(size_t);
    assert_check_corrupt(&h);
    *prev_phys_c = saved_tag;
    assert_check_ok(&h);

    void **link_b = (void **)(void *)RAW(b); /* b's next_free link */
    void *saved_link = *link_b;
    *link_b = RAW(b) - 2 * sizeof(size_t); /* a cycle */
    assert_check_corrupt(&h);
    *link_b = second; /* outside every region */
    assert_check_corrupt(&h);
    *link_b = saved_link;
    assert_check_ok(&h);

    /* A free block on the list of another class (bitmaps kept consistent). */
    pk_heap_block *head_b = NULL;
    unsigned fl_b = 0, sl_b = 0;
    for (unsigned fl = 0; fl < PK_HEAP_FL_COUNT && head_b == NULL; fl++) {
        for (unsigned sl = 0; sl < PK_HEAP_SL_COUNT; sl++) {
            pk_heap_block *target = (pk_heap_block *)(void *)(RAW(b) - 2 * sizeof(size_t));
#if PK_DEBUG
            /* Debug builds: d, of b's class, left the quarantine after b and
             * heads the list: take the list that holds b (next_free is the
             * word at the payload). */
            for (pk_heap_block *x = h.lists[fl * PK_HEAP_SL_COUNT + sl]; x != NULL && x != target;) {
                /* x is the pointer read, so sizeof x is its size. */
                memcpy(&x, (unsigned char *)x + 2 * sizeof(size_t), sizeof x); // NOLINT(bugprone-sizeof-expression)
                if (x == target) {
                    target = h.lists[fl * PK_HEAP_SL_COUNT + sl];
                }
            }
#endif
            if (h.lists[fl * PK_HEAP_SL_COUNT + sl] == target) {
                head_b = h.lists[fl * PK_HEAP_SL_COUNT + sl];
                fl_b = fl;
                sl_b = sl;
                break;
            }
        }
    }
    assert_non_null(head_b);
    unsigned sl_other = sl_b == 0 ? 1 : sl_b - 1;
    assert_null(h.lists[fl_b * PK_HEAP_SL_COUNT + sl_other]);
    h.lists[fl_b * PK_HEAP_SL_COUNT + sl_other] = head_b;
    h.lists[fl_b * PK_HEAP_SL_COUNT + sl_b] = NULL;
    uint32_t saved_sl = h.sl_bitmap[fl_b + PK_HEAP_FL_SHIFT]; /* indexed by level */
    h.sl_bitmap[fl_b + PK_HEAP_FL_SHIFT] = (saved_sl & ~(1u << sl_b)) | (1u << sl_other);
    assert_check_corrupt(&h);
    h.lists[fl_b * PK_HEAP_SL_COUNT + sl_b] = head_b;
    h.lists[fl_b * PK_HEAP_SL_COUNT + sl_other] = NULL;
    h.sl_bitmap[fl_b + PK_HEAP_FL_SHIFT] = saved_sl;
    assert_check_ok(&h);

    size_t saved_map = h.fl_bitmap; /* bit t: level t, PK_HEAP_FL_SHIFT <= t < PK_HEAP_MAX_LOG2 */
    h.fl_bitmap = 0;
    assert_check_corrupt(&h);
    h.fl_bitmap = saved_map | ((size_t)1 << (PK_HEAP_MAX_LOG2 - 1)); /* the top level: empty */
    assert_check_corrupt(&h);
    h.fl_bitmap = saved_map;
    h.in_use++;
    assert_check_corrupt(&h);
    h.in_use--;
    h.blocks++;
    assert_check_corrupt(&h);
    h.blocks--;
    assert_check_ok(&h);
    assert_int_equal(pk_heap_free(&h, a), PK_OK);
    assert_int_equal(pk_heap_free(&h, c), PK_OK);
    assert_whole(&h);
}

static void test_lock_wraps_every_operation(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena, 1 << 16), PK_OK);
    pk_lock half = {counting_lock, NULL, &lock_calls};
    assert_int_equal(pk_heap_set_lock(&h, &half), PK_ERR_INVALID_ARG);
    pk_lock l = {counting_lock, counting_unlock, &lock_calls};
    assert_int_equal(pk_heap_set_lock(&h, &l), PK_OK);
    lock_calls = 0;
    void *p = pk_heap_alloc(&h, 100);
    void *q = pk_heap_alloc_aligned(&h, 100, 256);
    assert_int_equal(lock_calls, 2);
    assert_int_equal(pk_heap_free(&h, p), PK_OK);
    assert_int_equal(pk_heap_free(&h, p), PK_ERR_DOUBLE_FREE);
    assert_int_equal(faults.lock_depth_seen, 0);
    faults.calls = 0;
    q = pk_heap_realloc(&h, q, 500);
    assert_non_null(q);
    assert_int_equal(pk_heap_usable_size(&h, q) >= 500, 1);
    pk_stats s;
    pk_heap_stats(&h, &s);
    pk_heap_reset_peaks(&h);
    assert_check_ok(&h);
    assert_int_equal(pk_heap_free(&h, q), PK_OK);
    assert_int_equal(lock_depth, 0);
    assert_true(lock_calls >= 9);
    assert_int_equal(pk_heap_set_lock(&h, NULL), PK_OK);
    lock_calls = 0;
    assert_int_equal(pk_heap_free(&h, pk_heap_alloc(&h, 10)), PK_OK);
    assert_int_equal(lock_calls, 0);
    assert_whole(&h);
}

static void test_peaks_and_names(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena, 1 << 16), PK_OK);
    void *a = pk_heap_alloc(&h, 1000);
    void *b = pk_heap_alloc(&h, 1000);
    assert_int_equal(pk_heap_free(&h, a), PK_OK);
    pk_stats s = stats_of(&h);
    assert_int_equal(s.peak_live, 2);
    assert_true(s.peak_in_use >= 2000);
    pk_heap_reset_peaks(&h);
    s = stats_of(&h);
    assert_int_equal(s.peak_live, 1);
    assert_int_equal(s.peak_in_use, s.in_use);
    assert_string_equal(pk_name(pk_heap_allocator(&h)), "heap");
    pk_heap_set_name(&h, "log records");
    assert_int_equal(pk_heap_free(&h, a), PK_ERR_DOUBLE_FREE);
    assert_string_equal(faults.last.allocator, "log records");
    faults.calls = 0;
    pk_heap_set_name(&h, NULL);
    assert_string_equal(pk_name(pk_heap_allocator(&h)), "heap");
    assert_int_equal(pk_heap_free(&h, b), PK_OK);
}

/* The randomized driver, through the generic view. */
static pk_driver_slot slots[4096];

static void run_driver(size_t offset, size_t size, size_t min_size, size_t max_size, size_t max_align,
                       uint64_t seed, size_t ops)
{
    pk_driver_fill_garbage(arena + offset, size, seed);
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena + offset, size), PK_OK);
    pk_driver_config cfg = {
        .realloc_percent = 10,
        .seed = seed,
        .ops = ops,
        .min_size = min_size,
        .max_size = max_size,
        .max_align = max_align,
        .default_align = PK_HEAP_ALIGN,
        .region = arena + offset,
        .region_size = size,
        .slots = slots,
        .slot_count = 4096,
        .report = report_line,
    };
    pk_driver_result result;
    assert_int_equal(pk_driver_run(pk_heap_allocator(&h), &cfg, &result), 0);
    assert_int_equal(result.ops, ops);
    assert_int_equal(faults.calls, 0);
    assert_whole(&h);
}

static void test_random_small(void **state)
{
    (void)state;
    run_driver(0, 1 << 16, 0, 256, 0, 11, random_ops());
}

static void test_random_log_uniform(void **state)
{
    (void)state;
    run_driver(5, sizeof arena - 5, 16, 4096, 0, 12, random_ops());
}

static void test_random_aligned(void **state)
{
    (void)state;
    run_driver(1, 1 << 18, 1, 2048, 4096, 13, random_ops() / 2);
}

static void test_random_tiny_heap(void **state)
{
    (void)state;
    run_driver(3, 4096, 0, 512, 64, 14, random_ops() / 4);
}

static void test_misuse_through_the_driver(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena, 1 << 16), PK_OK);
    pk_misuse_config cfg = {
        .region = arena,
        .region_size = 1 << 16,
        .alloc_size = 100,
        .catches_interior = PK_HEAP_STRICT_FREE != 0,
        .report = report_line,
    };
    assert_int_equal(pk_driver_misuse(pk_heap_allocator(&h), &cfg), 0);
    pk_set_fault_handler(count_fault, NULL);
    assert_whole(&h);
}

#if PK_DEBUG
/* Debug builds: each misuse is one handler call with its status, the block's
 * allocation site and owner (from its tag) when known, and the call's site. */
static void expect_debug_fault(pk_status kind, const void *ptr, int alloc_line, uint32_t owner, int call_line)
{
    expect_fault_sites(kind, ptr, "heap", __FILE__, alloc_line, owner, call_line);
}

/* The heap is whole after misuse: check passes, and the stats are the
 * clients' view (live blocks and exact requests). */
static void assert_live(const pk_heap *h, size_t live, size_t requested)
{
    assert_check_ok(h);
    pk_stats s = stats_of(h);
    assert_int_equal(s.live, live);
    assert_int_equal(s.requested, requested);
    assert_true(s.in_use >= requested);
    assert_int_equal(s.frees, s.allocs - live);
}

static void test_debug_guards(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena, 1 << 16), PK_OK);
    pk_set_owner(42);
    void *keep = pk_heap_alloc(&h, 8); /* something live, so frees stay quarantined */
    unsigned char *p = pk_heap_alloc(&h, 40); int p_line = __LINE__;
    pk_set_owner(0);
    assert_int_equal(pk_heap_usable_size(&h, p), 40);
    /* Overflow by one byte past the request: reported at free, freed anyway. */
    p[40] = 0;
    assert_int_equal(pk_heap_check(&h), PK_ERR_GUARD_CORRUPT);
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, p, p_line, 42, 0);
    assert_int_equal(pk_heap_free(&h, p), PK_ERR_GUARD_CORRUPT); int free_line = __LINE__;
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, p, p_line, 42, free_line);
    assert_live(&h, 1, 8);
    /* Underflow by one byte before it. */
    pk_set_owner(7);
    unsigned char *q = pk_heap_alloc_aligned(&h, 100, 256); int q_line = __LINE__;
    pk_set_owner(0);
    assert_int_equal((uintptr_t)q % 256, 0);
    q[-1] = 0xFF;
    assert_int_equal(pk_heap_free(&h, q), PK_ERR_GUARD_CORRUPT); free_line = __LINE__;
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, q, q_line, 7, free_line);
    assert_live(&h, 1, 8);
    /* Through realloc's inner free too. */
    unsigned char *r = pk_heap_realloc(&h, NULL, 16); int r_line = __LINE__;
    r[16] = 1;
    r = pk_heap_realloc(&h, r, 32); int realloc_line = __LINE__;
    assert_non_null(r);
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, PK_ERR_GUARD_CORRUPT);
    assert_int_equal(faults.last.line, r_line);
    assert_int_equal(faults.last.call_line, realloc_line);
    faults.calls = 0;
    assert_int_equal(pk_heap_free(&h, r), PK_OK);
    assert_int_equal(pk_heap_free(&h, keep), PK_OK);
    assert_int_equal(faults.calls, 0);
    assert_whole(&h);
}

static void test_debug_use_after_free_and_double_free(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena, 1 << 16), PK_OK);
    void *keep = pk_heap_alloc(&h, 8);
    pk_set_owner(9);
    unsigned char *p = pk_heap_alloc(&h, 64); int p_line = __LINE__;
    pk_set_owner(0);
    assert_int_equal(pk_heap_free(&h, p), PK_OK);
    /* A double free of the quarantined block. */
    assert_int_equal(pk_heap_free(&h, p), PK_ERR_DOUBLE_FREE); int free_line = __LINE__;
    expect_debug_fault(PK_ERR_DOUBLE_FREE, p, p_line, 9, free_line);
    assert_null(pk_heap_realloc(&h, p, 10)); int realloc_line = __LINE__;
    expect_debug_fault(PK_ERR_DOUBLE_FREE, p, p_line, 9, realloc_line);
    assert_live(&h, 1, 8);
    /* A write after free: check sees it; the block's eviction reports it once. */
    p[10] = 0x11;
    assert_int_equal(pk_heap_check(&h), PK_ERR_USE_AFTER_FREE);
    expect_debug_fault(PK_ERR_USE_AFTER_FREE, p, p_line, 9, 0);
    void *more[PK_QUARANTINE_SIZE + 1];
    for (size_t i = 0; i < PK_QUARANTINE_SIZE; i++) {
        more[i] = pk_heap_alloc(&h, 16);
    }
    for (size_t i = 0; i + 1 < PK_QUARANTINE_SIZE; i++) {
        assert_int_equal(pk_heap_free(&h, more[i]), PK_OK);
    }
    assert_int_equal(faults.calls, 0);
    assert_int_equal(pk_heap_free(&h, more[PK_QUARANTINE_SIZE - 1]), PK_OK); free_line = __LINE__;
    expect_debug_fault(PK_ERR_USE_AFTER_FREE, p, p_line, 9, free_line);
    assert_live(&h, 1, 8);
    /* A stale double free, after the block left the quarantine: caught,
     * nothing changed. */
    pk_status s = pk_heap_free(&h, p);
    assert_true(s == PK_ERR_DOUBLE_FREE || s == PK_ERR_MISALIGNED_PTR);
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, s);
    faults.calls = 0;
    assert_live(&h, 1, 8);
    /* The quarantine never causes a NULL: the whole heap, less keep, can be
     * had while blocks are quarantined. */
    void *x = pk_heap_alloc(&h, 1000);
    assert_int_equal(pk_heap_free(&h, x), PK_OK);
    assert_int_equal(h.debug.held, PK_QUARANTINE_SIZE > 0 ? PK_QUARANTINE_SIZE : 0);
    size_t largest = 0;
    for (size_t step = (size_t)1 << 15; step != 0; step >>= 1) {
        void *y = pk_heap_alloc(&h, largest + step);
        if (y != NULL) {
            largest += step;
            assert_int_equal(pk_heap_free(&h, y), PK_OK);
        }
    }
    /* (less keep, two blocks' debug bytes, and the search's rounding: a
     * second-level step of 1 KiB at this size) */
    assert_true(largest + 2 * PK_DEBUG_OVERHEAD_(PK_HEAP_ALIGN) + 2048 > stats_of(&h).capacity);
    assert_int_equal(faults.calls, 0);
    assert_int_equal(pk_heap_free(&h, keep), PK_OK);
    assert_whole(&h);
}

static void test_debug_foreign_and_interior(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena, 1 << 16), PK_OK);
    unsigned char *p = pk_heap_alloc(&h, 200);
    pk_stats before = stats_of(&h);
    assert_int_equal(pk_heap_free(&h, second), PK_ERR_FOREIGN_PTR); int line = __LINE__;
    expect_debug_fault(PK_ERR_FOREIGN_PTR, second, 0, 0, line);
    /* Interior pointers, on the alignment grid or not, even with a plausible
     * heap header before them: no tag, so not a block. */
    size_t forged = PK_HEAP_MIN_PAYLOAD;
    memcpy(p + 64 - sizeof forged, &forged, sizeof forged);
    static const size_t offsets[] = {1, 8, 16, 64, 128, 199};
    for (size_t i = 0; i < sizeof offsets / sizeof *offsets; i++) {
        assert_int_equal(pk_heap_free(&h, p + offsets[i]), PK_ERR_MISALIGNED_PTR); line = __LINE__;
        expect_debug_fault(PK_ERR_MISALIGNED_PTR, p + offsets[i], 0, 0, line);
    }
    /* Just past the region's start: no room for a tag. */
    assert_int_equal(pk_heap_free(&h, h.regions[0].start), PK_ERR_MISALIGNED_PTR);
    faults.calls = 0;
    pk_stats after = stats_of(&h);
    assert_int_equal(after.rejected, before.rejected + 2 + sizeof offsets / sizeof *offsets);
    after.rejected = before.rejected;
    assert_memory_equal(&before, &after, sizeof before);
    assert_live(&h, 1, 200);
    assert_int_equal(pk_heap_free(&h, p), PK_OK);
    assert_whole(&h);
}

static void count_leak(const pk_leak *l, void *ctx)
{
    size_t *n = ctx;
    assert_string_equal(l->file, __FILE__);
    n[0]++;
    n[1] += l->size;
}

static void test_debug_leaks_and_sizes(void **state)
{
    (void)state;
    pk_heap h;
    assert_int_equal(pk_heap_init(&h, arena, 1 << 16), PK_OK);
    pk_allocator *a = pk_heap_allocator(&h);
    void *p = pk_heap_alloc(&h, 10);
    uint64_t mark = pk_leak_mark();
    void *q = pk_alloc(a, 20);
    void *r = pk_heap_alloc_bounded(&h, 30, 0, 64);
    assert_int_equal((uintptr_t)r / 64, ((uintptr_t)r + 29) / 64);
    size_t n[2] = {0, 0};
    pk_leaks(a, count_leak, n);
    assert_int_equal(n[0], 3);
    assert_int_equal(n[1], 60);
    n[0] = n[1] = 0;
    pk_leaks_since(a, mark, count_leak, n);
    assert_int_equal(n[0], 2);
    assert_int_equal(n[1], 50);
    assert_int_equal(pk_heap_usable_size(&h, q), 20);
    assert_int_equal(pk_free(a, q), PK_OK);
    assert_int_equal(pk_free(a, q), PK_ERR_DOUBLE_FREE); int line = __LINE__;
    assert_int_equal(faults.last.call_line, line);
    faults.calls = 0;
    assert_live(&h, 2, 40);
    assert_int_equal(pk_heap_free(&h, p), PK_OK);
    assert_int_equal(pk_heap_free(&h, r), PK_OK);
    assert_whole(&h);
    /* pk_heap_buffer_size counts the tags and guards. */
    assert_true(pk_heap_buffer_size(1, 1) >= PK_DEBUG_OVERHEAD_(PK_HEAP_ALIGN));
    assert_int_equal(pk_heap_buffer_size(SIZE_MAX - 8, 1), 0);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_rejects_bad_arguments, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_alloc_sizes_and_alignment, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_coalescing, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_largest_free_is_exact, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_aligned_and_bounded, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_too_large_is_a_failure, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_realloc_in_place_and_moved, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_misuse, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_forged_headers_rejected, setup_faults, teardown_faults),
#if PK_HEAP_STRICT_FREE
        cmocka_unit_test_setup_teardown(test_strict_interior_pointers, setup_faults, teardown_faults),
#endif
        cmocka_unit_test_setup_teardown(test_regions, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_buffer_size_serves_count, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_add_region_bounds, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_damage, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_lock_wraps_every_operation, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_peaks_and_names, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_misuse_through_the_driver, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_small, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_log_uniform, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_aligned, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_tiny_heap, setup_faults, teardown_faults),
#if PK_DEBUG
        cmocka_unit_test_setup_teardown(test_debug_guards, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_use_after_free_and_double_free, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_foreign_and_interior, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_leaks_and_sizes, setup_faults, teardown_faults),
#endif
    };
    return cmocka_run_group_tests_name(PK_HEAP_STRICT_FREE ? "heap (strict free)" : "heap", tests, NULL,
                                       NULL);
}
