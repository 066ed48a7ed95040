/* Unit tests of the boot arena (poolkit/arena.h). */
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
#include "poolkit/arena.h"
#include "poolkit/poolkit.h"
#include "poolkit/pthread_lock.h"

#define DEFAULT_ALIGN _Alignof(max_align_t)

static void assert_check_ok(const pk_arena *a)
{
    unsigned before = faults.calls;
    assert_int_equal(pk_arena_check(a), PK_OK);
    assert_int_equal(faults.calls, before);
}

static void assert_check_corrupt(const pk_arena *a)
{
    faults.calls = 0;
    assert_int_equal(pk_arena_check(a), PK_ERR_CORRUPT);
    expect_fault_named(PK_ERR_CORRUPT, NULL, "arena");
}

static pk_stats stats_of(const pk_arena *a)
{
    pk_stats s;
    memset(&s, 0xA5, sizeof s);
    pk_arena_stats(a, &s);
    return s;
}

/* Bytes from p up to the next multiple of align (a power of two). */
static size_t pad_to(uintptr_t p, size_t align)
{
    return (size_t)((0u - p) & (align - 1u));
}

static _Alignas(4096) unsigned char buffer[1 << 20];

/* Init. */

static void test_init_rejects_bad_arguments(void **state)
{
    (void)state;
    pk_arena a;
    memset(&a, 0x5A, sizeof a);
    pk_arena untouched = a;
    assert_int_equal(pk_arena_init(NULL, buffer, sizeof buffer), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_arena_init(&a, NULL, sizeof buffer), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_arena_init(&a, buffer, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_arena_init(&a, buffer, SIZE_MAX), PK_ERR_INVALID_ARG); /* would wrap */
    assert_int_equal(pk_arena_init(&a, NULL, 0), PK_ERR_INVALID_ARG);
    assert_memory_equal(&a, &untouched, sizeof a);
    assert_int_equal(faults.calls, 0); /* init failures do not call the handler */
}

static void test_init_gives_an_empty_arena(void **state)
{
    (void)state;
    pk_arena a;
    memset(&a, 0x5A, sizeof a); /* init must not rely on a zeroed struct */
    pk_driver_fill_garbage(buffer, 1000, 7);
    unsigned char before[1000];
    memcpy(before, buffer, sizeof before);
    assert_int_equal(pk_arena_init(&a, buffer + 3, 997), PK_OK);
    assert_memory_equal(buffer, before, sizeof before); /* the buffer is not touched */
    pk_stats s = stats_of(&a);
    assert_int_equal(s.capacity, 997);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.requested, 0);
    assert_int_equal(s.peak_in_use, 0);
    assert_int_equal(s.free_bytes, 997);
    assert_int_equal(s.largest_free, 997 - pad_to((uintptr_t)(buffer + 3), DEFAULT_ALIGN));
    assert_int_equal(s.block_size, 0);
    assert_int_equal(s.live, 0);
    assert_int_equal(s.peak_live, 0);
    assert_int_equal(s.allocs, 0);
    assert_int_equal(s.frees, 0);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.rejected, 0);
    assert_true(pk_frag_internal(&s) == 0.0);
    assert_check_ok(&a);

    pk_allocator *view = pk_arena_allocator(&a);
    assert_ptr_equal(view->self, &a);
    assert_true((unsigned char *)view >= (unsigned char *)&a &&
                (unsigned char *)(view + 1) <= (unsigned char *)(&a + 1));
    const pk_allocator_ops *ops = view->ops;
    assert_non_null(ops->alloc_aligned);
    assert_non_null(ops->free);
    assert_non_null(ops->realloc);
    assert_non_null(ops->stats);
    assert_non_null(ops->check);
    assert_non_null(ops->name);
    assert_non_null(ops->usable_size);
    assert_string_equal(pk_name(view), "arena");
    assert_false(pk_arena_owns(&a, buffer + 3)); /* nothing handed out yet */

    /* A one-byte arena serves one byte, with an alignment it happens to have. */
    assert_int_equal(pk_arena_init(&a, buffer + 1, 1), PK_OK);
    assert_null(pk_arena_alloc(&a, 1, 2));
    assert_ptr_equal(pk_arena_alloc(&a, 0, 1), buffer + 1);
    assert_null(pk_arena_alloc(&a, 0, 1));
    assert_int_equal(stats_of(&a).failures, 2);
    assert_int_equal(faults.calls, 0);
}

static void test_name(void **state)
{
    (void)state;
    pk_arena a;
    assert_int_equal(pk_arena_init(&a, buffer, 64), PK_OK);
    assert_string_equal(pk_name(pk_arena_allocator(&a)), "arena");
    pk_arena_set_name(&a, "boot");
    assert_string_equal(pk_name(pk_arena_allocator(&a)), "boot");
    assert_null(pk_arena_alloc(&a, 1, 3));
    expect_fault_named(PK_ERR_INVALID_ARG, NULL, "boot");
    pk_arena_set_name(&a, NULL);
    assert_string_equal(pk_name(pk_arena_allocator(&a)), "arena");
    assert_null(pk_arena_alloc(&a, 1, 3));
    expect_fault_named(PK_ERR_INVALID_ARG, NULL, "arena");
    assert_check_ok(&a);
}

/* Alignment: every power of two from 1 to 4096, at odd buffer offsets, with
 * the least padding, and every block the client's in full. */
static void test_alignment_honoured(void **state)
{
    (void)state;
    static const size_t offsets[] = {1, 3, 5, 7, 4095};
    static const size_t sizes[] = {0, 1, 3, 8, 13, 100};
    for (size_t o = 0; o < sizeof offsets / sizeof *offsets; o++) {
        unsigned char *base = buffer + offsets[o];
        size_t size = 200000;
        pk_driver_fill_garbage(base, size, offsets[o]);
        pk_arena a;
        assert_int_equal(pk_arena_init(&a, base, size), PK_OK);
        struct {
            unsigned char *p;
            size_t size;
        } blocks[200];
        size_t n = 0;
        uintptr_t end = (uintptr_t)base;
        size_t requested = 0;
        for (size_t align = 0; align <= 4096; align = align == 0 ? 1 : align * 2) {
            for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
                size_t want = align != 0 ? align : DEFAULT_ALIGN;
                unsigned char *p = pk_arena_alloc(&a, sizes[k], align);
                assert_non_null(p);
                assert_int_equal((uintptr_t)p % want, 0);
                assert_int_equal((uintptr_t)p, end + pad_to(end, want)); /* the least padding */
                size_t consumed = sizes[k] != 0 ? sizes[k] : 1;
                end = (uintptr_t)p + consumed;
                requested += sizes[k];
                memset(p, (int)(n & 0xFF), sizes[k]);
                assert_true(pk_arena_owns(&a, p));
                assert_true(pk_arena_owns(&a, p + consumed - 1));
                assert_false(pk_arena_owns(&a, p + consumed));
                assert_true(n < sizeof blocks / sizeof *blocks);
                blocks[n].p = p;
                blocks[n].size = sizes[k];
                n++;
            }
        }
        pk_stats s = stats_of(&a);
        assert_int_equal(s.in_use, (size_t)(end - (uintptr_t)base));
        assert_int_equal(s.requested, requested);
        assert_int_equal(s.live, n);
        for (size_t i = 0; i < n; i++) {
            for (size_t b = 0; b < blocks[i].size; b++) {
                assert_int_equal(blocks[i].p[b], (unsigned char)(i & 0xFF));
            }
            if (i > 0) {
                assert_true(blocks[i - 1].p + (blocks[i - 1].size ? blocks[i - 1].size : 1) <= blocks[i].p);
            }
        }
        assert_check_ok(&a);
        /* Through the generic view too. */
        for (size_t align = 1; align <= 4096; align *= 2) {
            unsigned char *p = pk_alloc_aligned(pk_arena_allocator(&a), 5, align);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % align, 0);
        }
        unsigned char *p = pk_alloc(pk_arena_allocator(&a), 5);
        assert_int_equal((uintptr_t)p % DEFAULT_ALIGN, 0);
    }
    assert_int_equal(faults.calls, 0);
}

/* Size 0: a unique pointer each time, one byte consumed. */
static void test_size_zero_is_unique(void **state)
{
    (void)state;
    pk_arena a;
    assert_int_equal(pk_arena_init(&a, buffer + 1, 10), PK_OK);
    for (size_t i = 0; i < 10; i++) {
        assert_ptr_equal(pk_arena_alloc(&a, 0, 1), buffer + 1 + i);
    }
    assert_null(pk_arena_alloc(&a, 0, 1));
    pk_stats s = stats_of(&a);
    assert_int_equal(s.in_use, 10);
    assert_int_equal(s.requested, 0);
    assert_int_equal(s.live, 10);
    assert_int_equal(s.failures, 1);
    assert_int_equal(s.largest_free, 0);
    assert_true(pk_frag_internal(&s) == 1.0);
    assert_check_ok(&a);
}

/* A known sequence, with the arena at buffer + 1 (buffer is 4096-aligned):
 * padding is counted in in_use, requested is exact, largest_free is exact. */
static void test_exact_stats_after_known_sequence(void **state)
{
    (void)state;
    unsigned char *A = buffer;
    pk_arena a;
    assert_int_equal(pk_arena_init(&a, A + 1, 200), PK_OK);
    pk_set_fault_handler(count_fault, NULL);
    assert_ptr_equal(pk_arena_alloc(&a, 3, 1), A + 1);    /* used 3, ends at A+4 */
    assert_ptr_equal(pk_arena_alloc(&a, 10, 16), A + 16); /* 12 padding: used 25, ends at A+26 */
    assert_ptr_equal(pk_arena_alloc(&a, 0, 0), A + 32);   /* 6 padding, 1 byte: used 32 */
    assert_ptr_equal(pk_arena_alloc(&a, 7, 4), A + 36);   /* 3 padding: used 42, ends at A+43 */
    assert_ptr_equal(pk_arena_alloc(&a, 64, 64), A + 64); /* 21 padding: used 127 */
    pk_stats s = stats_of(&a);
    assert_int_equal(s.capacity, 200);
    assert_int_equal(s.in_use, 127);
    assert_int_equal(s.requested, 84);
    assert_int_equal(s.peak_in_use, 127);
    assert_int_equal(s.free_bytes, 73);
    assert_int_equal(s.largest_free, 73); /* A+128 is 16-aligned: no padding */
    assert_int_equal(s.block_size, 0);
    assert_int_equal(s.live, 5);
    assert_int_equal(s.peak_live, 5);
    assert_int_equal(s.allocs, 5);
    assert_int_equal(s.frees, 0);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.rejected, 0);
    assert_true(pk_frag_internal(&s) > 0.338 && pk_frag_internal(&s) < 0.339); /* 1 - 84/127 */
    assert_true(pk_frag_external(&s) == 0.0);

    assert_ptr_equal(pk_arena_alloc(&a, 1, 1), A + 128); /* used 128 */
    s = stats_of(&a);
    assert_int_equal(s.free_bytes, 72);
    assert_int_equal(s.largest_free, 57); /* 15 padding to A+144 */
    /* largest_free is exact: one more byte fails, that many succeeds. */
    assert_null(pk_arena_alloc(&a, 58, 0));
    assert_int_equal(stats_of(&a).failures, 1);
    assert_ptr_equal(pk_arena_alloc(&a, 57, 0), A + 144);
    s = stats_of(&a);
    assert_int_equal(s.in_use, 200);
    assert_int_equal(s.free_bytes, 0);
    assert_int_equal(s.largest_free, 0);
    assert_int_equal(s.requested, 142);
    assert_int_equal(s.live, 7);
    assert_int_equal(s.allocs, 7);
    assert_null(pk_arena_alloc(&a, 0, 1)); /* not even one byte left */
    s = stats_of(&a);
    assert_int_equal(s.failures, 2);
    assert_int_equal(s.rejected, 0);
    assert_int_equal(faults.calls, 0);
    assert_check_ok(&a);
}

/* Seal: later allocations are refused with exactly one PK_ERR_SEALED each. */
static void test_seal(void **state)
{
    (void)state;
    pk_arena a;
    assert_int_equal(pk_arena_init(&a, buffer + 5, 1000), PK_OK);
    pk_arena_set_name(&a, "boot");
    unsigned char *p = pk_arena_alloc(&a, 100, 8);
    assert_non_null(p);
    memset(p, 0x11, 100);
    pk_stats open_stats = stats_of(&a);
    assert_true(open_stats.largest_free > 0);
    pk_arena_seal(&a);
    pk_stats before = stats_of(&a);
    assert_int_equal(before.largest_free, 0); /* nothing would succeed */
    before.largest_free = open_stats.largest_free;
    assert_same_stats(&before, &open_stats); /* sealing changes nothing else */
    before.largest_free = 0;

    pk_allocator *view = pk_arena_allocator(&a);
    assert_null(pk_arena_alloc(&a, 1, 0));
    expect_fault_named(PK_ERR_SEALED, NULL, "boot");
    assert_null(pk_arena_alloc(&a, 0, 1));
    expect_fault_named(PK_ERR_SEALED, NULL, "boot");
    assert_null(pk_arena_alloc(&a, SIZE_MAX, 0)); /* sealed wins over too large */
    expect_fault_named(PK_ERR_SEALED, NULL, "boot");
    assert_null(pk_alloc(view, 8));
    expect_fault_named(PK_ERR_SEALED, NULL, "boot");
    assert_null(pk_alloc_aligned(view, 8, 64));
    expect_fault_named(PK_ERR_SEALED, NULL, "boot");
    assert_null(pk_calloc(view, 2, 8));
    expect_fault_named(PK_ERR_SEALED, NULL, "boot");
    assert_null(pk_realloc(view, NULL, 8));
    expect_fault_named(PK_ERR_SEALED, NULL, "boot");
    assert_null(pk_realloc(view, p, 200)); /* p is the most recent block: still refused */
    expect_fault_named(PK_ERR_SEALED, p, "boot");
    pk_stats after = stats_of(&a);
    assert_int_equal(after.rejected, before.rejected + 8);
    after.rejected = before.rejected;
    assert_same_stats(&after, &before);

    /* A bad alignment while sealed: one fault, not two. */
    assert_null(pk_arena_alloc(&a, 1, 3));
    assert_int_equal(faults.calls, 1);
    faults.calls = 0;

    /* Sealing twice is harmless; blocks handed out stay valid and freeable. */
    pk_arena_seal(&a);
    for (size_t i = 0; i < 100; i++) {
        assert_int_equal(p[i], 0x11);
    }
    assert_int_equal(pk_free(view, p), PK_OK);
    assert_int_equal(faults.calls, 0);
    assert_int_equal(stats_of(&a).frees, 1);
    assert_check_ok(&a);
}

/* Reset: unseals and empties; counters and peaks are kept. */
static void test_reset(void **state)
{
    (void)state;
    pk_arena a;
    unsigned char *base = buffer + 3;
    assert_int_equal(pk_arena_init(&a, base, 300), PK_OK);
    unsigned char *first = pk_arena_alloc(&a, 10, 0);
    assert_non_null(first);
    unsigned char *second = pk_arena_alloc(&a, 100, 32);
    assert_non_null(second);
    assert_null(pk_arena_alloc(&a, 1000, 0));                    /* a failure */
    assert_int_equal(pk_free(pk_arena_allocator(&a), second), PK_OK); /* a free */
    pk_arena_seal(&a);
    assert_null(pk_arena_alloc(&a, 1, 0)); /* rejected */
    expect_fault_named(PK_ERR_SEALED, NULL, "arena");
    pk_stats before = stats_of(&a);

    pk_arena_reset(&a);
    pk_stats s = stats_of(&a);
    assert_int_equal(s.capacity, 300);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.requested, 0);
    assert_int_equal(s.live, 0);
    assert_int_equal(s.free_bytes, 300);
    assert_int_equal(s.largest_free, 300 - pad_to((uintptr_t)base, DEFAULT_ALIGN));
    assert_int_equal(s.peak_in_use, before.peak_in_use);
    assert_int_equal(s.peak_live, 2);
    assert_int_equal(s.allocs, 2);
    assert_int_equal(s.frees, 1);
    assert_int_equal(s.failures, 1);
    assert_int_equal(s.rejected, 1);
    assert_false(pk_arena_owns(&a, first));
    assert_false(pk_arena_owns(&a, second));
    assert_int_equal(pk_free(pk_arena_allocator(&a), second), PK_ERR_FOREIGN_PTR); /* stale */
    expect_fault_named(PK_ERR_FOREIGN_PTR, second, "arena");
    assert_check_ok(&a);

    /* Unsealed: the buffer is handed out again from the start. */
    assert_ptr_equal(pk_arena_alloc(&a, 10, 0), first);
    assert_ptr_equal(pk_arena_alloc(&a, 100, 32), second);
    s = stats_of(&a);
    assert_int_equal(s.live, 2);
    assert_int_equal(s.allocs, 4);
    assert_int_equal(s.peak_live, 2);
    assert_int_equal(s.in_use, before.in_use);
    assert_int_equal(s.requested, 110);
    assert_int_equal(faults.calls, 0);
    assert_check_ok(&a);
    /* Resetting an empty arena, or twice, is harmless. */
    pk_arena_reset(&a);
    pk_arena_reset(&a);
    assert_int_equal(stats_of(&a).in_use, 0);
    assert_check_ok(&a);
}

static void test_reset_peaks(void **state)
{
    (void)state;
    pk_arena a;
    assert_int_equal(pk_arena_init(&a, buffer, 1000), PK_OK);
    for (size_t i = 0; i < 5; i++) {
        assert_non_null(pk_arena_alloc(&a, 32, 16));
    }
    pk_arena_reset(&a);
    assert_non_null(pk_arena_alloc(&a, 16, 16));
    pk_stats s = stats_of(&a);
    assert_int_equal(s.peak_in_use, 160); /* kept across the reset */
    assert_int_equal(s.peak_live, 5);
    pk_arena_reset_peaks(&a);
    s = stats_of(&a);
    assert_int_equal(s.peak_in_use, 16);
    assert_int_equal(s.peak_live, 1);
    assert_non_null(pk_arena_alloc(&a, 1, 1));
    s = stats_of(&a);
    assert_int_equal(s.peak_in_use, 17);
    assert_int_equal(s.peak_live, 2);
    pk_arena_reset(&a);
    pk_arena_reset_peaks(&a);
    s = stats_of(&a);
    assert_int_equal(s.peak_in_use, 0);
    assert_int_equal(s.peak_live, 0);
    assert_check_ok(&a);
}

/* Sizes and alignments whose arithmetic would overflow: NULL, a failure, no
 * fault, nothing else changed. */
static void test_overflowing_requests_fail(void **state)
{
    (void)state;
    static const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 7, SIZE_MAX - 15,
                                   SIZE_MAX / 2, SIZE_MAX / 2 + 1, (size_t)1 << 40, 1001};
    static const size_t aligns[] = {0, 1, 2, 16, 4096, (size_t)1 << 40, SIZE_MAX / 2 + 1};
    pk_arena a;
    assert_int_equal(pk_arena_init(&a, buffer + 1, 1000), PK_OK);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            for (size_t k = 0; k < sizeof aligns / sizeof *aligns; k++) {
                pk_stats before = stats_of(&a);
                assert_null(pk_arena_alloc(&a, sizes[i], aligns[k]));
                pk_stats after = stats_of(&a);
                assert_int_equal(after.failures, before.failures + 1);
                after.failures = before.failures;
                assert_same_stats(&after, &before);
            }
        }
        /* Huge alignments with small sizes. */
        for (size_t k = 5; k < sizeof aligns / sizeof *aligns; k++) {
            assert_null(pk_arena_alloc(&a, 0, aligns[k]));
            assert_null(pk_arena_alloc(&a, 1, aligns[k]));
        }
        /* Round 2: an odd end, so that padding + size would wrap. */
        assert_non_null(pk_arena_alloc(&a, 1, 1));
    }
    pk_allocator *view = pk_arena_allocator(&a);
    assert_null(pk_calloc(view, SIZE_MAX / 2, 3)); /* n * size overflows */
    assert_null(pk_calloc(view, 1001, 1));
    assert_null(pk_realloc(view, NULL, SIZE_MAX));
    assert_int_equal(faults.calls, 0);
    pk_stats s = stats_of(&a);
    assert_int_equal(s.rejected, 0);
    assert_int_equal(s.allocs, 2);
    assert_int_equal(s.failures, 2 * (8 * 7 + 4) + 3);
    /* What is left can still be had, to the byte. */
    size_t left = s.free_bytes;
    assert_non_null(pk_arena_alloc(&a, left, 1));
    assert_int_equal(stats_of(&a).in_use, 1000);
    assert_check_ok(&a);
}

/* An alignment that is not a power of two: NULL and PK_ERR_INVALID_ARG,
 * counted as rejected, nothing else changed. */
static void test_bad_alignment_is_a_fault(void **state)
{
    (void)state;
    static const size_t bad[] = {3, 5, 6, 24, 48, 100, 4095, 4097, SIZE_MAX, SIZE_MAX / 2 + 2};
    pk_arena a;
    assert_int_equal(pk_arena_init(&a, buffer, 1000), PK_OK);
    assert_non_null(pk_arena_alloc(&a, 3, 1));
    pk_allocator *view = pk_arena_allocator(&a);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pk_stats before = stats_of(&a);
        assert_null(pk_arena_alloc(&a, 8, bad[i]));
        expect_fault_named(PK_ERR_INVALID_ARG, NULL, "arena");
        assert_null(pk_alloc_aligned(view, 0, bad[i]));
        expect_fault_named(PK_ERR_INVALID_ARG, NULL, "arena");
        pk_stats after = stats_of(&a);
        assert_int_equal(after.rejected, before.rejected + 2);
        after.rejected = before.rejected;
        assert_same_stats(&after, &before);
    }
    assert_check_ok(&a);
}

/* The generic view's free: own pointers PK_OK (counted, nothing reclaimed),
 * NULL a silent no-op, anything else PK_ERR_FOREIGN_PTR. */
static void test_view_free(void **state)
{
    (void)state;
    static unsigned char elsewhere[64];
    pk_arena a;
    unsigned char *base = buffer + 7;
    assert_int_equal(pk_arena_init(&a, base, 512), PK_OK);
    pk_arena_set_name(&a, "boot");
    pk_allocator *view = pk_arena_allocator(&a);
    unsigned char *p = pk_alloc(view, 40);
    unsigned char *q = pk_alloc(view, 40);
    assert_non_null(p);
    assert_non_null(q);
    pk_stats s0 = stats_of(&a);

    assert_int_equal(pk_free(view, p), PK_OK);
    assert_int_equal(pk_free(view, p + 3), PK_OK);   /* an interior pointer cannot be told */
    assert_int_equal(pk_free(view, p), PK_OK);       /* nor can a double free */
    assert_int_equal(pk_free(view, base), PK_OK);    /* the padding before p */
    assert_int_equal(pk_free(view, NULL), PK_OK);    /* not counted */
    assert_int_equal(faults.calls, 0);
    pk_stats s1 = stats_of(&a);
    assert_int_equal(s1.frees, s0.frees + 4);
    s1.frees = s0.frees;
    assert_same_stats(&s1, &s0); /* live, in_use, requested: unchanged */

    unsigned char *foreign[] = {elsewhere + 16, base - 1, q + 40, base + 512, base + 100,
                                (unsigned char *)(uintptr_t)1, (unsigned char *)UINTPTR_MAX};
    for (size_t i = 0; i < sizeof foreign / sizeof *foreign; i++) {
        pk_stats before = stats_of(&a);
        assert_int_equal(pk_free(view, foreign[i]), PK_ERR_FOREIGN_PTR);
        expect_fault_named(PK_ERR_FOREIGN_PTR, foreign[i], "boot");
        pk_stats after = stats_of(&a);
        assert_int_equal(after.rejected, before.rejected + 1);
        after.rejected = before.rejected;
        assert_same_stats(&after, &before);
        assert_false(pk_arena_owns(&a, foreign[i]));
    }
    assert_true(pk_arena_owns(&a, q + 39));
    /* Nothing was reclaimed: the next block follows q. */
    unsigned char *r = pk_alloc_aligned(view, 1, 1);
    assert_ptr_equal(r, q + 40);
    assert_check_ok(&a);
}

/* The shared misuse checks, with what an arena can and cannot catch. */
static void test_misuse_through_the_driver(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 8, 24, 64, 100};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        pk_arena a;
        assert_int_equal(pk_arena_init(&a, buffer + 1, 4096), PK_OK);
        pk_misuse_config cfg = {
            .region = buffer + 1,
            .region_size = 4096,
            .alloc_size = sizes[i],
            .catches_interior = false,
            .capacity_blocks = 0,
            .skips_double_free = true,
        };
        assert_int_equal(pk_driver_misuse(pk_arena_allocator(&a), &cfg), 0);
        pk_set_fault_handler(count_fault, NULL);
        assert_check_ok(&a);
    }
}

/* pk_calloc and pk_realloc through the generic view. */
static void test_calloc_and_realloc(void **state)
{
    (void)state;
    pk_arena a;
    unsigned char *base = buffer + 16; /* 16-aligned: the first block needs no padding */
    pk_driver_fill_garbage(base, 1024, 3);
    assert_int_equal(pk_arena_init(&a, base, 1024), PK_OK);
    pk_allocator *view = pk_arena_allocator(&a);

    unsigned char *z = pk_calloc(view, 10, 3);
    assert_ptr_equal(z, base);
    for (size_t i = 0; i < 30; i++) {
        assert_int_equal(z[i], 0);
    }
    assert_int_equal(view->ops->usable_size(&a, z), 30);

    /* The most recent block grows and shrinks in place. */
    memset(z, 0x33, 30);
    assert_ptr_equal(pk_realloc(view, z, 100), z);
    pk_stats s = stats_of(&a);
    assert_int_equal(s.in_use, 100);
    assert_int_equal(s.requested, 100);
    assert_int_equal(s.live, 1);
    assert_int_equal(s.allocs, 1);
    assert_int_equal(view->ops->usable_size(&a, z), 100);
    assert_ptr_equal(pk_realloc(view, z, 20), z);
    s = stats_of(&a);
    assert_int_equal(s.in_use, 20);
    assert_int_equal(s.requested, 20);
    assert_int_equal(s.peak_in_use, 100);
    for (size_t i = 0; i < 20; i++) {
        assert_int_equal(z[i], 0x33);
    }
    /* In place up to the end of the buffer, not a byte more. */
    assert_null(pk_realloc(view, z, 1025));
    assert_int_equal(stats_of(&a).failures, 1);
    assert_int_equal(stats_of(&a).in_use, 20); /* untouched on failure */
    assert_ptr_equal(pk_realloc(view, z, 1024), z);
    assert_ptr_equal(pk_realloc(view, z, 20), z);

    /* An earlier block moves, with its contents. */
    unsigned char *y = pk_alloc(view, 8);
    assert_ptr_equal(y, base + 32);
    memset(y, 0x44, 8);
    assert_int_equal(view->ops->usable_size(&a, z), 0); /* no longer the most recent */
    assert_int_equal(view->ops->usable_size(&a, y), 8);
    pk_stats before = stats_of(&a);
    unsigned char *moved = pk_realloc(view, z, 40);
    assert_ptr_equal(moved, base + 48);
    for (size_t i = 0; i < 30; i++) {
        assert_int_equal(moved[i], 0x33); /* z's 20 bytes, and the 10 it had before shrinking */
    }
    for (size_t i = 32; i < 40; i++) {
        assert_int_equal(moved[i], 0x44); /* y's bytes: the arena cannot know where z ended */
    }
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(y[i], 0x44);
    }
    s = stats_of(&a);
    assert_int_equal(s.allocs, before.allocs + 1);
    assert_int_equal(s.frees, before.frees + 1);
    assert_int_equal(s.live, before.live + 1);
    assert_int_equal(s.requested, before.requested + 40);
    assert_int_equal(s.in_use, 88);
    /* A shrink of an earlier block also moves (copying only size bytes). */
    unsigned char *small = pk_realloc(view, y, 4);
    assert_ptr_equal(small, base + 96);
    assert_memory_equal(small, "\x44\x44\x44\x44", 4);
    assert_int_equal(stats_of(&a).in_use, 100);

    /* The most recent block with less than the default alignment moves, so the
     * result has the default alignment. */
    unsigned char *odd = pk_alloc_aligned(view, 3, 1);
    assert_ptr_equal(odd, base + 100);
    memcpy(odd, "abc", 3);
    unsigned char *aligned = pk_realloc(view, odd, 10);
    assert_ptr_equal(aligned, base + 112);
    assert_memory_equal(aligned, "abc", 3);

    /* realloc(NULL, n) allocates; realloc(p, 0) frees and returns NULL. */
    unsigned char *fresh = pk_realloc(view, NULL, 5);
    assert_ptr_equal(fresh, base + 128);
    before = stats_of(&a);
    assert_null(pk_realloc(view, fresh, 0));
    s = stats_of(&a);
    assert_int_equal(s.frees, before.frees + 1);
    assert_int_equal(s.in_use, before.in_use); /* nothing reclaimed */
    assert_int_equal(view->ops->usable_size(&a, fresh), 0); /* freed: unknown */
    /* A freed most-recent block is no longer grown in place. */
    unsigned char *again = pk_realloc(view, fresh, 6);
    assert_ptr_equal(again, base + 144);

    /* A copy that does not fit fails and leaves the block alone. */
    before = stats_of(&a);
    assert_null(pk_realloc(view, y, 2000));
    s = stats_of(&a);
    assert_int_equal(s.failures, before.failures + 1);
    s.failures = before.failures;
    assert_same_stats(&s, &before);
    assert_int_equal(y[0], 0x44);

    /* Foreign pointers are reported as pk_free reports them. */
    static unsigned char elsewhere[16];
    before = stats_of(&a);
    assert_null(pk_realloc(view, elsewhere, 8));
    expect_fault_named(PK_ERR_FOREIGN_PTR, elsewhere, "arena");
    assert_null(pk_realloc(view, base + 1000, 8)); /* in the buffer, never handed out */
    expect_fault_named(PK_ERR_FOREIGN_PTR, base + 1000, "arena");
    s = stats_of(&a);
    assert_int_equal(s.rejected, before.rejected + 2);
    s.rejected = before.rejected;
    assert_same_stats(&s, &before);
    assert_int_equal(view->ops->usable_size(&a, elsewhere), 0);

    /* After a reset nothing is the most recent block. */
    pk_arena_reset(&a);
    assert_int_equal(view->ops->usable_size(&a, again), 0);
    assert_int_equal(faults.calls, 0);
    assert_check_ok(&a);
}

/* Locks: taken once around every call that touches state, never nested,
 * released before the fault handler runs. */
/* Runs one call and expects exactly one lock/unlock pair. */
#define ONCE(call)                                                                   \
    do {                                                                             \
        lock_calls = 0;                                                              \
        call;                                                                        \
        assert_int_equal(lock_calls, 1);                                             \
        assert_int_equal(lock_depth, 0);                                             \
    } while (0)

/* Same, and expects the one fault it raises to have run unlocked. */
#define ONCE_FAULT(call, want)                                                       \
    do {                                                                             \
        faults.calls = 0;                                                            \
        faults.lock_depth_seen = -1;                                                 \
        ONCE(call);                                                                  \
        assert_int_equal(faults.calls, 1);                                           \
        assert_int_equal(faults.last.kind, want);                                    \
        assert_int_equal(faults.lock_depth_seen, 0);                                 \
        faults.calls = 0;                                                            \
    } while (0)

static void test_lock_wraps_every_operation(void **state)
{
    (void)state;
    pk_arena a;
    assert_int_equal(pk_arena_init(&a, buffer, 1024), PK_OK);
    pk_lock bad = {counting_lock, NULL, &lock_calls};
    assert_int_equal(pk_arena_set_lock(&a, &bad), PK_ERR_INVALID_ARG);
    pk_lock bad2 = {NULL, counting_unlock, &lock_calls};
    assert_int_equal(pk_arena_set_lock(&a, &bad2), PK_ERR_INVALID_ARG);
    lock_calls = 0;
    assert_non_null(pk_arena_alloc(&a, 1, 0)); /* still no lock */
    assert_int_equal(lock_calls, 0);
    pk_lock l = {counting_lock, counting_unlock, &lock_calls};
    assert_int_equal(pk_arena_set_lock(&a, &l), PK_OK);
    l.lock = NULL; /* copied: the arena keeps its own */
    pk_allocator *view = pk_arena_allocator(&a);
    static unsigned char elsewhere[8];
    pk_stats s;
    void *p = NULL;

    ONCE(p = pk_arena_alloc(&a, 10, 0));
    assert_non_null(p);
    ONCE(assert_non_null(pk_alloc(view, 10)));
    ONCE(assert_null(pk_arena_alloc(&a, 5000, 0))); /* a failure */
    ONCE_FAULT(assert_null(pk_arena_alloc(&a, 10, 3)), PK_ERR_INVALID_ARG);
    ONCE(assert_int_equal(pk_free(view, p), PK_OK));
    lock_calls = 0;
    assert_int_equal(pk_free(view, NULL), PK_OK); /* touches nothing */
    assert_int_equal(lock_calls, 0);
    ONCE_FAULT(assert_int_equal(pk_free(view, elsewhere), PK_ERR_FOREIGN_PTR), PK_ERR_FOREIGN_PTR);
    ONCE(p = pk_realloc(view, p, 30)); /* a copy */
    assert_non_null(p);
    ONCE(assert_ptr_equal(pk_realloc(view, p, 40), p)); /* in place */
    ONCE(assert_null(pk_realloc(view, p, 5000)));
    ONCE_FAULT(assert_null(pk_realloc(view, elsewhere, 8)), PK_ERR_FOREIGN_PTR);
    ONCE(assert_int_equal(view->ops->usable_size(&a, p), 40));
    ONCE(assert_true(pk_arena_owns(&a, p)));
    ONCE(pk_arena_stats(&a, &s));
    ONCE(pk_stats_get(view, &s));
    ONCE(pk_arena_reset_peaks(&a));
    ONCE(assert_int_equal(pk_arena_check(&a), PK_OK));
    ONCE(pk_arena_seal(&a));
    ONCE_FAULT(assert_null(pk_arena_alloc(&a, 1, 0)), PK_ERR_SEALED);
    ONCE_FAULT(assert_null(pk_realloc(view, p, 50)), PK_ERR_SEALED);
    ONCE(pk_arena_reset(&a));
    a.used = a.size + 1; /* damage: check reports with the lock released */
    ONCE_FAULT(assert_int_equal(pk_arena_check(&a), PK_ERR_CORRUPT), PK_ERR_CORRUPT);
    a.used = 0;
    assert_check_ok(&a);

    /* The handler may call the arena (the lock is not held). */
    assert_int_equal(lock_depth, 0);

    /* Back to no lock. */
    assert_int_equal(pk_arena_set_lock(&a, NULL), PK_OK);
    lock_calls = 0;
    assert_non_null(pk_arena_alloc(&a, 1, 0));
    pk_arena_stats(&a, &s);
    assert_int_equal(lock_calls, 0);
    pk_lock none = {NULL, NULL, NULL};
    assert_int_equal(pk_arena_set_lock(&a, &none), PK_OK);
    assert_check_ok(&a);
}

/* A fault handler that allocates from the arena it was called for. */
static pk_arena *reentrant_arena;
static void *reentrant_block;

static void allocating_handler(const pk_fault *f, void *ctx)
{
    (void)ctx;
    faults.calls++;
    faults.last = *f;
    faults.lock_depth_seen = lock_depth;
    reentrant_block = pk_arena_alloc(reentrant_arena, 8, 0);
}

static void test_handler_may_call_the_arena(void **state)
{
    (void)state;
    pk_arena a;
    assert_int_equal(pk_arena_init(&a, buffer, 1024), PK_OK);
    pk_lock l = {counting_lock, counting_unlock, &lock_calls};
    assert_int_equal(pk_arena_set_lock(&a, &l), PK_OK);
    reentrant_arena = &a;
    pk_set_fault_handler(allocating_handler, NULL);
    assert_null(pk_arena_alloc(&a, 8, 6));
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.lock_depth_seen, 0);
    assert_non_null(reentrant_block);
    assert_int_equal(stats_of(&a).live, 1);
    assert_check_ok(&a);
}

/* Four threads allocate from one locked arena: every block distinct. */
typedef struct {
    pk_arena *a;
    unsigned char *blocks[500];
    size_t n;
} thread_work;

static void *thread_main(void *arg)
{
    thread_work *w = arg;
    for (size_t i = 0; i < 500; i++) {
        unsigned char *p = pk_arena_alloc(w->a, 1 + i % 40, (size_t)1 << (i % 6));
        if (p != NULL) {
            memset(p, (int)(i & 0xFF), 1 + i % 40);
            w->blocks[w->n++] = p;
        }
    }
    return NULL;
}

static void test_threads_share_a_locked_arena(void **state)
{
    (void)state;
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pk_lock l = pk_pthread_lock(&m);
    pk_arena a;
    assert_int_equal(pk_arena_init(&a, buffer + 1, 60000), PK_OK);
    assert_int_equal(pk_arena_set_lock(&a, &l), PK_OK);
    static thread_work work[4];
    pthread_t threads[4];
    for (size_t t = 0; t < 4; t++) {
        work[t].a = &a;
        work[t].n = 0;
        assert_int_equal(pthread_create(&threads[t], NULL, thread_main, &work[t]), 0);
    }
    size_t total = 0;
    for (size_t t = 0; t < 4; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        total += work[t].n;
        for (size_t i = 0; i < work[t].n; i++) {
            size_t size = 1 + i % 40;
            assert_int_equal((uintptr_t)work[t].blocks[i] % ((size_t)1 << (i % 6)), 0);
            for (size_t b = 0; b < size; b++) {
                assert_int_equal(work[t].blocks[i][b], (unsigned char)(i & 0xFF));
            }
        }
    }
    pk_stats s = stats_of(&a);
    assert_int_equal(s.live, total);
    assert_int_equal(s.allocs + s.failures, 2000);
    assert_check_ok(&a);
}

/* PK_ARENA_SPACE: the sum over a sequence always suffices, at any address. */
static void test_space_macro_suffices(void **state)
{
    (void)state;
    static const unsigned char fits[PK_ARENA_SPACE(10, 64) + PK_ARENA_SPACE(0, 0)];
    assert_int_equal(sizeof fits, 10 + 63 + 1 + DEFAULT_ALIGN - 1);
    uint64_t rng = 99;
    for (unsigned trial = 0; trial < 2000; trial++) {
        size_t count = 1 + (size_t)(pk_driver_next_random(&rng) % 20);
        size_t sizes[20], aligns[20], need = 0;
        for (size_t i = 0; i < count; i++) {
            sizes[i] = (size_t)(pk_driver_next_random(&rng) % 70);
            unsigned shift = (unsigned)(pk_driver_next_random(&rng) % 9);
            aligns[i] = shift == 8 ? 0 : (size_t)1 << shift;
            need += PK_ARENA_SPACE(sizes[i], aligns[i]);
        }
        size_t offset = (size_t)(pk_driver_next_random(&rng) % 256);
        pk_arena a;
        assert_int_equal(pk_arena_init(&a, buffer + offset, need), PK_OK);
        for (size_t i = 0; i < count; i++) {
            assert_non_null(pk_arena_alloc(&a, sizes[i], aligns[i]));
        }
    }
    /* And it is tight: with the worst address, one byte less fails. */
    pk_arena a;
    assert_int_equal(pk_arena_init(&a, buffer + 1, PK_ARENA_SPACE(5, 64) - 1), PK_OK);
    assert_null(pk_arena_alloc(&a, 5, 64));
    assert_int_equal(pk_arena_init(&a, buffer + 1, PK_ARENA_SPACE(5, 64)), PK_OK);
    assert_ptr_equal(pk_arena_alloc(&a, 5, 64), buffer + 64);
    assert_int_equal(faults.calls, 0);
}

/* Corruption: check must find each kind of damage, and repair nothing. */

static void noop_lock(void *ctx)
{
    (void)ctx;
}

static void make_damaged(pk_arena *a)
{
    assert_int_equal(pk_arena_init(a, buffer + 1, 1000), PK_OK);
    assert_non_null(pk_arena_alloc(a, 10, 1));
    assert_non_null(pk_arena_alloc(a, 20, 16));
    assert_non_null(pk_arena_alloc(a, 5, 8));
    assert_check_ok(a);
}

/* Damages one field through a (size_t) pointer, expects CORRUPT, restores it
 * and expects OK again. */
static void damage_size(pk_arena *a, size_t *field, size_t value)
{
    size_t saved = *field;
    *field = value;
    assert_check_corrupt(a);
    *field = saved;
    assert_check_ok(a);
}

static void test_check_finds_counter_damage(void **state)
{
    (void)state;
    pk_arena a;
    make_damaged(&a);
    damage_size(&a, &a.used, a.size + 1);          /* used past the buffer */
    damage_size(&a, &a.used, SIZE_MAX);
    damage_size(&a, &a.used, a.requested - 1);     /* requested > used */
    damage_size(&a, &a.used, 0);                   /* live blocks but nothing used */
    damage_size(&a, &a.requested, a.used + 1);
    damage_size(&a, &a.live, 0);                   /* used bytes but no block */
    damage_size(&a, &a.live, a.used + 1);          /* more blocks than bytes */
    damage_size(&a, &a.live, 4);                   /* more live than allocated */
    damage_size(&a, &a.peak_used, a.used - 1);     /* peak below current */
    damage_size(&a, &a.peak_used, a.size + 1);     /* peak past the buffer */
    damage_size(&a, &a.peak_live, a.live - 1);
    damage_size(&a, &a.peak_live, a.peak_used + 1);
    damage_size(&a, &a.size, 0);
    damage_size(&a, &a.size, a.used - 1);          /* buffer smaller than used */
    damage_size(&a, &a.size, SIZE_MAX);            /* would wrap the address space */
    a.allocs = 2;                                  /* fewer allocations than live blocks */
    assert_check_corrupt(&a);
    a.allocs = 3;
    assert_check_ok(&a);
    /* An empty arena with a block count. */
    pk_arena_reset(&a);
    damage_size(&a, &a.live, 1);
    damage_size(&a, &a.requested, 1);
}

static void test_check_finds_last_block_damage(void **state)
{
    (void)state;
    pk_arena a;
    make_damaged(&a);
    damage_size(&a, &a.last, a.last + 1);          /* does not end where used does */
    damage_size(&a, &a.last, a.used);              /* past the used part */
    damage_size(&a, &a.last, SIZE_MAX - 1);
    damage_size(&a, &a.last_size, a.last_size + 1);
    damage_size(&a, &a.last_size, 0);              /* 0 consumes 1 byte, not 5 */
    a.requested = 4;                               /* the last block's size alone is 5 */
    a.last_size = 5;
    assert_check_corrupt(&a);
    a.requested = 35;
    assert_check_ok(&a);
    /* A zero-size block at the end consumes one byte. */
    assert_non_null(pk_arena_alloc(&a, 0, 1));
    assert_check_ok(&a);
    damage_size(&a, &a.last, a.used);
}

static void test_check_finds_structure_damage(void **state)
{
    (void)state;
    pk_arena a;
    make_damaged(&a);
    unsigned char *base = a.base;
    a.base = NULL;
    assert_check_corrupt(&a);
    a.base = base;
    a.name = NULL;
    faults.calls = 0;
    assert_int_equal(pk_arena_check(&a), PK_ERR_CORRUPT);
    expect_fault_named(PK_ERR_CORRUPT, NULL, "arena"); /* still named */
    a.name = "arena";
    a.lock.lock = noop_lock; /* half a lock */
    assert_check_corrupt(&a);
    a.lock.lock = NULL;
    a.lock.unlock = noop_lock;
    assert_check_corrupt(&a);
    a.lock.unlock = NULL;
    a.view.self = &faults;
    assert_check_corrupt(&a);
    a.view.self = &a;
    const pk_allocator_ops *ops = a.view.ops;
    a.view.ops = NULL;
    assert_check_corrupt(&a);
    a.view.ops = ops;
    assert_check_ok(&a);
    /* A copied arena's view still points at the original: caught. */
    pk_arena copy = a;
    assert_check_corrupt(&copy);
    assert_check_ok(&a);
}

/* The randomized driver. */
static pk_driver_slot slots[8192];

typedef struct {
    size_t offset, size;   /* the region: buffer + offset */
    size_t max_size;       /* request sizes in [0, max_size] */
    size_t max_align;      /* 0: default only */
    size_t runs;           /* driver runs, with a reset between them */
    uint64_t seed;
} random_shape;

static void run_driver(const random_shape *shape, const pk_lock *lock, size_t ops)
{
    unsigned char *region = buffer + shape->offset;
    assert_true(shape->offset + shape->size <= sizeof buffer);
    pk_driver_fill_garbage(region, shape->size, shape->seed);
    pk_arena a;
    assert_int_equal(pk_arena_init(&a, region, shape->size), PK_OK);
    assert_int_equal(pk_arena_set_lock(&a, lock), PK_OK);
    size_t per_run = ops / shape->runs;
    size_t failures = 0, allocs = 0, frees = 0;
    for (size_t run = 0; run < shape->runs; run++) {
        pk_driver_config cfg = {
            .seed = shape->seed * 1000 + run,
            .ops = per_run,
            .min_size = 0,
            .max_size = shape->max_size,
            .max_align = shape->max_align,
            .default_align = DEFAULT_ALIGN,
            .region = region,
            .region_size = shape->size,
            .block_size = 0,
            .requested_exact = true,
            .slots = slots,
            .slot_count = sizeof slots / sizeof *slots,
            .report = report_line,
            .frees_reclaim_nothing = true,
            .align_as_asked = true,
        };
        pk_driver_result result;
        assert_int_equal(pk_driver_run(pk_arena_allocator(&a), &cfg, &result), 0);
        assert_int_equal(result.ops, per_run);
        assert_true(result.checks > 0);
        failures += result.failures;
        allocs += result.allocs;
        frees += result.frees;
        pk_stats s = stats_of(&a);
        assert_int_equal(s.live, result.allocs);
        assert_int_equal(s.allocs, allocs);
        assert_int_equal(s.frees, frees);
        assert_int_equal(s.failures, failures);
        assert_int_equal(s.rejected, 0);
        if (result.failures > 0 && shape->max_align <= DEFAULT_ALIGN) {
            /* The arena ran out: what is left is less than the largest request
             * (with larger alignments a failure says less). */
            assert_true(s.largest_free < shape->max_size);
        }
        pk_arena_reset(&a);
        assert_check_ok(&a);
        s = stats_of(&a);
        assert_int_equal(s.in_use, 0);
        assert_int_equal(s.live, 0);
        assert_int_equal(s.allocs, allocs);
    }
    if (ops >= 100000) {
        assert_true(failures > 0); /* the runs filled the arena */
    }
    assert_int_equal(faults.calls, 0);
}

static void test_random_small_requests(void **state)
{
    (void)state;
    random_shape shape = {1, 16384, 64, 0, 20, 1};
    run_driver(&shape, NULL, random_ops() / 10);
}

static void test_random_aligned_requests(void **state)
{
    (void)state;
    random_shape shape = {3, 1 << 16, 512, 4096, 20, 2};
    run_driver(&shape, NULL, random_ops() / 10);
}

static void test_random_tiny_arena(void **state)
{
    (void)state;
    random_shape shape = {7, 300, 100, 64, 200, 3};
    run_driver(&shape, NULL, random_ops() / 10);
}

static void test_random_one_long_run(void **state)
{
    (void)state;
    /* A single run: the arena fills early, then every alloc fails. */
    random_shape shape = {5, 100000, 256, 16, 1, 4};
    run_driver(&shape, NULL, random_ops() / 10);
}

static void test_random_locked(void **state)
{
    (void)state;
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pk_lock l = pk_pthread_lock(&m);
    random_shape shape = {0, 32768, 200, 128, 20, 5};
    run_driver(&shape, &l, random_ops() / 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_rejects_bad_arguments, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_init_gives_an_empty_arena, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_name, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_alignment_honoured, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_size_zero_is_unique, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_exact_stats_after_known_sequence, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_seal, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_reset, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_reset_peaks, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_overflowing_requests_fail, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_bad_alignment_is_a_fault, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_view_free, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_misuse_through_the_driver, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_calloc_and_realloc, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_lock_wraps_every_operation, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_handler_may_call_the_arena, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_threads_share_a_locked_arena, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_space_macro_suffices, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_counter_damage, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_last_block_damage, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_structure_damage, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_small_requests, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_aligned_requests, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_tiny_arena, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_one_long_run, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_locked, setup_faults, teardown_faults),
    };
    return cmocka_run_group_tests_name("arena", tests, NULL, NULL);
}
