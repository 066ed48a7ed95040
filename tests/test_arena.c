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

/* A block's bytes in this build, around its user pointer: front_bytes
 * before it (debug builds: the tag and the front guard, rounded up so that
 * the pointer keeps the alignment), then back_bytes (the user bytes, and in
 * debug builds the rear guard). A release block of 0 bytes takes one, so that
 * its pointer is unique; a debug one takes just the tag and guards. */
static size_t front_bytes(size_t align)
{
    return PK_DEBUG ? PK_DEBUG_OVERHEAD_(align) - PK_GUARD_SIZE : 0;
}

static size_t back_bytes(size_t size)
{
    return PK_DEBUG ? size + PK_GUARD_SIZE : size != 0 ? size : 1;
}

static size_t block_bytes(size_t size, size_t align)
{
    return front_bytes(align) + back_bytes(size);
}

/* What a block takes beyond its request (the largest request that fits in n
 * free bytes is n - overhead_bytes). */
static size_t overhead_bytes(size_t align)
{
    return PK_DEBUG ? PK_DEBUG_OVERHEAD_(align) : 0;
}

/* The bump, as the header describes it: where a block of size bytes aligned
 * to align (0: the default) lands when the used part ends at *end; moves
 * *end past it. */
static unsigned char *model_alloc(uintptr_t *end, size_t size, size_t align)
{
    size_t want = align != 0 ? align : DEFAULT_ALIGN;
    uintptr_t raw = *end + pad_to(*end, want);
    *end = raw + block_bytes(size, want);
    return (unsigned char *)(raw + front_bytes(want));
}

static void assert_near(double x, double y)
{
    assert_true(x > y - 1e-9 && x < y + 1e-9);
}

#if PK_DEBUG
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <valgrind/memcheck.h>
#pragma GCC diagnostic pop
#define QUIET_VALGRIND 1
#endif
#endif

/* The test's own overflow: a byte written into a guard or a freed block, past
 * ASan and memcheck (the debug layer closes those bytes to them), so that the
 * debug layer's own detection is what the test sees. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((no_sanitize_address))
#endif
static void poke(unsigned char *p, unsigned char value)
{
#ifdef QUIET_VALGRIND
    VALGRIND_DISABLE_ERROR_REPORTING;
#endif
    *(volatile unsigned char *)p = value;
#ifdef QUIET_VALGRIND
    VALGRIND_ENABLE_ERROR_REPORTING;
#endif
}

/* A byte of a live block the client has not written: memcheck holds it
 * undefined, the test reads the fill the debug layer put there. */
static unsigned char peek(const unsigned char *p)
{
    unsigned char value = *(const volatile unsigned char *)p;
#ifdef QUIET_VALGRIND
    (void)VALGRIND_MAKE_MEM_DEFINED(&value, sizeof value);
#endif
    return value;
}
#endif

static _Alignas(4096) unsigned char buffer[1 << 20];

/* Each test starts with no owner, whatever a failed test left. */
static int setup(void **state)
{
    pk_set_owner(0);
    return setup_faults(state);
}

/* Empties an arena a test is done with, as a program does before it reuses
 * the buffer: debug builds then give its blocks back to ASan and Valgrind,
 * so that the next arena over the buffer, and the garbage the next test
 * writes there, start clean. The arena must be whole: no fault. */
static void finish(pk_arena *a)
{
    unsigned before = faults.calls;
    pk_arena_reset(a);
    assert_int_equal(faults.calls, before);
}

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
    assert_int_equal(s.largest_free,
                     997 - pad_to((uintptr_t)(buffer + 3), DEFAULT_ALIGN) - overhead_bytes(DEFAULT_ALIGN));
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

    /* An arena of one 0-byte block's bytes serves that block, with an
     * alignment it happens to have. */
    assert_int_equal(pk_arena_init(&a, buffer + 1, block_bytes(0, 1)), PK_OK);
    assert_null(pk_arena_alloc(&a, 1, 2));
    assert_ptr_equal(pk_arena_alloc(&a, 0, 1), buffer + 1 + front_bytes(1));
    assert_null(pk_arena_alloc(&a, 0, 1));
    assert_int_equal(stats_of(&a).failures, 2);
    assert_int_equal(faults.calls, 0);
    finish(&a);
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
 * the least padding, and every block the client's in full (debug builds: its
 * guards intact after the client wrote every byte of it). */
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
            size_t size, align;
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
                assert_ptr_equal(p, model_alloc(&end, sizes[k], align)); /* the least padding */
                requested += sizes[k];
                memset(p, (int)(n & 0xFF), sizes[k]);
                assert_true(pk_arena_owns(&a, p));
                assert_true(pk_arena_owns(&a, (unsigned char *)end - 1));
                assert_false(pk_arena_owns(&a, (unsigned char *)end));
                assert_true(n < sizeof blocks / sizeof *blocks);
                blocks[n].p = p;
                blocks[n].size = sizes[k];
                blocks[n].align = want;
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
                assert_true(blocks[i - 1].p + back_bytes(blocks[i - 1].size) <=
                            blocks[i].p - front_bytes(blocks[i].align));
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
        finish(&a);
    }
    assert_int_equal(faults.calls, 0);
}

/* Size 0: a unique pointer each time, one byte consumed (debug builds: the
 * tag and guards). */
static void test_size_zero_is_unique(void **state)
{
    (void)state;
    pk_arena a;
    const size_t each = block_bytes(0, 1);
    assert_int_equal(pk_arena_init(&a, buffer + 1, 10 * each), PK_OK);
    for (size_t i = 0; i < 10; i++) {
        assert_ptr_equal(pk_arena_alloc(&a, 0, 1), buffer + 1 + i * each + front_bytes(1));
    }
    assert_null(pk_arena_alloc(&a, 0, 1));
    pk_stats s = stats_of(&a);
    assert_int_equal(s.in_use, 10 * each);
    assert_int_equal(s.requested, 0);
    assert_int_equal(s.live, 10);
    assert_int_equal(s.failures, 1);
    assert_int_equal(s.largest_free, 0);
    assert_true(pk_frag_internal(&s) == 1.0);
    assert_check_ok(&a);
    finish(&a);
}

/* A known sequence, with the arena at buffer + 1 (buffer is 4096-aligned):
 * padding is counted in in_use, requested is exact, largest_free is exact.
 * The positions follow the bump (release builds: the blocks at A+1, A+16,
 * A+32, A+36, A+64, A+128 and A+144, with 12, 6, 3, 21 and 15 bytes of
 * padding); the buffer ends where the last block does. */
static void test_exact_stats_after_known_sequence(void **state)
{
    (void)state;
    static const size_t sizes[] = {3, 10, 0, 7, 64, 1, 57};
    static const size_t aligns[] = {1, 16, 0, 4, 64, 1, 0};
    unsigned char *A = buffer;
    unsigned char *at[7];
    size_t used[7]; /* in_use after each block */
    uintptr_t end = (uintptr_t)(A + 1);
    for (size_t i = 0; i < 7; i++) {
        at[i] = model_alloc(&end, sizes[i], aligns[i]);
        used[i] = (size_t)(end - (uintptr_t)(A + 1));
    }
    const size_t capacity = used[6]; /* release builds: 200 */
    pk_arena a;
    assert_int_equal(pk_arena_init(&a, A + 1, capacity), PK_OK);
    pk_set_fault_handler(count_fault, NULL);
    for (size_t i = 0; i < 5; i++) {
        assert_ptr_equal(pk_arena_alloc(&a, sizes[i], aligns[i]), at[i]);
    }
    pk_stats s = stats_of(&a);
    const size_t largest = capacity - used[4] - pad_to((uintptr_t)(A + 1 + used[4]), DEFAULT_ALIGN) -
                           overhead_bytes(DEFAULT_ALIGN); /* release builds: 73, no padding at A+128 */
    assert_int_equal(s.capacity, capacity);
    assert_int_equal(s.in_use, used[4]); /* release builds: 127 */
    assert_int_equal(s.requested, 84);
    assert_int_equal(s.peak_in_use, used[4]);
    assert_int_equal(s.free_bytes, capacity - used[4]);
    assert_int_equal(s.largest_free, largest);
    assert_int_equal(s.block_size, 0);
    assert_int_equal(s.live, 5);
    assert_int_equal(s.peak_live, 5);
    assert_int_equal(s.allocs, 5);
    assert_int_equal(s.frees, 0);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.rejected, 0);
    assert_near(pk_frag_internal(&s), 1.0 - 84.0 / (double)used[4]);
    assert_near(pk_frag_external(&s), 1.0 - (double)largest / (double)(capacity - used[4]));

    assert_ptr_equal(pk_arena_alloc(&a, sizes[5], aligns[5]), at[5]);
    s = stats_of(&a);
    assert_int_equal(s.free_bytes, capacity - used[5]);
    assert_int_equal(s.largest_free, sizes[6]); /* the last block fills the buffer */
    /* largest_free is exact: one more byte fails, that many succeeds. */
    assert_null(pk_arena_alloc(&a, sizes[6] + 1, aligns[6]));
    assert_int_equal(stats_of(&a).failures, 1);
    assert_ptr_equal(pk_arena_alloc(&a, sizes[6], aligns[6]), at[6]);
    s = stats_of(&a);
    assert_int_equal(s.in_use, capacity);
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
    finish(&a);
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
    finish(&a);
}

/* Reset: unseals and empties; counters and peaks are kept. */
static void test_reset(void **state)
{
    (void)state;
    pk_arena a;
    unsigned char *base = buffer + 3;
    /* 300 bytes and the two blocks' tags and guards: 1000 bytes never fit. */
    const size_t capacity = 300 + overhead_bytes(DEFAULT_ALIGN) + overhead_bytes(32);
    assert_int_equal(pk_arena_init(&a, base, capacity), PK_OK);
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
    assert_int_equal(s.capacity, capacity);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.requested, 0);
    assert_int_equal(s.live, 0);
    assert_int_equal(s.free_bytes, capacity);
    assert_int_equal(s.largest_free, capacity - pad_to((uintptr_t)base, DEFAULT_ALIGN) - overhead_bytes(DEFAULT_ALIGN));
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
    uintptr_t end = (uintptr_t)buffer;
    for (size_t i = 0; i < 5; i++) {
        assert_ptr_equal(pk_arena_alloc(&a, 32, 16), model_alloc(&end, 32, 16));
    }
    const size_t peak = (size_t)(end - (uintptr_t)buffer); /* release builds: 160 */
    pk_arena_reset(&a);
    assert_non_null(pk_arena_alloc(&a, 16, 16));
    pk_stats s = stats_of(&a);
    assert_int_equal(s.peak_in_use, peak); /* kept across the reset */
    assert_int_equal(s.peak_live, 5);
    pk_arena_reset_peaks(&a);
    s = stats_of(&a);
    assert_int_equal(s.peak_in_use, block_bytes(16, 16));
    assert_int_equal(s.peak_live, 1);
    assert_non_null(pk_arena_alloc(&a, 1, 1)); /* no padding */
    s = stats_of(&a);
    assert_int_equal(s.peak_in_use, block_bytes(16, 16) + block_bytes(1, 1));
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
                                   SIZE_MAX / 2, SIZE_MAX / 2 + 1, SIZE_MAX / 4 + 1, 1001};
    static const size_t aligns[] = {0, 1, 2, 16, 4096, SIZE_MAX / 4 + 1, SIZE_MAX / 2 + 1};
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
    assert_non_null(pk_arena_alloc(&a, left - overhead_bytes(1), 1));
    assert_int_equal(stats_of(&a).in_use, 1000);
    assert_check_ok(&a);
    finish(&a);
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
    finish(&a);
}

/* The generic view's free: NULL a silent no-op, own pointers PK_OK (counted,
 * nothing reclaimed), a pointer outside the used part PK_ERR_FOREIGN_PTR.
 * Release builds know no blocks, so an interior pointer or a double free is
 * PK_OK too; debug builds report them. */
static void test_view_free(void **state)
{
    (void)state;
    static unsigned char elsewhere[64];
    pk_arena a;
    unsigned char *base = buffer + 7;
    assert_int_equal(pk_arena_init(&a, base, 512), PK_OK);
    pk_arena_set_name(&a, "boot");
    pk_allocator *view = pk_arena_allocator(&a);
    unsigned char *p = pk_alloc(view, 40); const int line_p = __LINE__;
    unsigned char *q = pk_alloc(view, 40);
    assert_non_null(p);
    assert_non_null(q);
    pk_stats s0 = stats_of(&a);

    assert_int_equal(pk_free(view, p), PK_OK);
#if PK_DEBUG
    assert_int_equal(pk_free(view, p + 3), PK_ERR_MISALIGNED_PTR); const int line_interior = __LINE__;
    expect_fault_sites(PK_ERR_MISALIGNED_PTR, p + 3, "boot", __FILE__, 0, 0, line_interior);
    assert_int_equal(pk_free(view, p), PK_ERR_DOUBLE_FREE); const int line_double = __LINE__;
    expect_fault_sites(PK_ERR_DOUBLE_FREE, p, "boot", __FILE__, line_p, 0, line_double);
    assert_int_equal(pk_free(view, base), PK_ERR_MISALIGNED_PTR); const int line_padding = __LINE__;
    expect_fault_sites(PK_ERR_MISALIGNED_PTR, base, "boot", __FILE__, 0, 0, line_padding);
    const uint64_t frees = 1, rejected = 3;
#else
    (void)line_p; /* release builds record no sites */
    assert_int_equal(pk_free(view, p + 3), PK_OK); /* an interior pointer cannot be told */
    assert_int_equal(pk_free(view, p), PK_OK);     /* nor can a double free */
    assert_int_equal(pk_free(view, base), PK_OK);  /* the padding before p */
    const uint64_t frees = 4, rejected = 0;
#endif
    assert_int_equal(pk_free(view, NULL), PK_OK); /* not counted */
    assert_int_equal(faults.calls, 0);
    pk_stats s1 = stats_of(&a);
    assert_int_equal(s1.frees, s0.frees + frees);
    assert_int_equal(s1.rejected, s0.rejected + rejected);
    s1.frees = s0.frees;
    s1.rejected = s0.rejected;
    assert_same_stats(&s1, &s0); /* live, in_use, requested: unchanged */

    unsigned char *past = q + back_bytes(40); /* the first byte past the used part */
    unsigned char *foreign[] = {elsewhere + 16, base - 1, past, base + 512, base + 511,
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
    assert_true(pk_arena_owns(&a, past - 1));
    /* Nothing was reclaimed: the next block follows q. */
    unsigned char *r = pk_alloc_aligned(view, 1, 1);
    assert_ptr_equal(r, past + front_bytes(1));
    assert_check_ok(&a);
    finish(&a);
}

/* The shared misuse checks, with what an arena can and cannot catch in this
 * build. */
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
            /* Only debug builds know the blocks; the driver's interior
             * pointers are p + 1 and p + size - 1, so not for 1 byte. */
            .catches_interior = PK_DEBUG && sizes[i] > 1,
            .capacity_blocks = 0,
            .report = report_line,
            .skips_double_free = !PK_DEBUG,
        };
        assert_int_equal(pk_driver_misuse(pk_arena_allocator(&a), &cfg), 0);
        pk_set_fault_handler(count_fault, NULL);
        assert_check_ok(&a);
        finish(&a);
    }
}

/* pk_calloc and pk_realloc through the generic view. */
static void test_calloc_and_realloc(void **state)
{
    (void)state;
    pk_arena a;
    unsigned char *base = buffer + 16; /* 16-aligned: the first block needs no padding */
    /* 1024 bytes, and the tags and guards of the blocks below in debug builds */
    const size_t capacity = 1024 + 8 * overhead_bytes(DEFAULT_ALIGN);
    pk_driver_fill_garbage(base, capacity, 3);
    assert_int_equal(pk_arena_init(&a, base, capacity), PK_OK);
    pk_allocator *view = pk_arena_allocator(&a);
    uintptr_t end = (uintptr_t)base; /* where the bump stands */

    unsigned char *z = pk_calloc(view, 10, 3);
    assert_ptr_equal(z, model_alloc(&end, 30, 0));
    for (size_t i = 0; i < 30; i++) {
        assert_int_equal(z[i], 0);
    }
    assert_int_equal(view->ops->usable_size(&a, z), 30);

    /* The most recent block grows and shrinks in place. */
    const size_t at_z = (size_t)(z - base);
    memset(z, 0x33, 30);
    assert_ptr_equal(pk_realloc(view, z, 100), z);
    pk_stats s = stats_of(&a);
    assert_int_equal(s.in_use, at_z + back_bytes(100));
    assert_int_equal(s.requested, 100);
    assert_int_equal(s.live, 1);
    assert_int_equal(s.allocs, 1);
    assert_int_equal(view->ops->usable_size(&a, z), 100);
    assert_ptr_equal(pk_realloc(view, z, 20), z);
    s = stats_of(&a);
    assert_int_equal(s.in_use, at_z + back_bytes(20));
    assert_int_equal(s.requested, 20);
    assert_int_equal(s.peak_in_use, at_z + back_bytes(100));
    for (size_t i = 0; i < 20; i++) {
        assert_int_equal(z[i], 0x33);
    }
    /* In place up to the end of the buffer, not a byte more. */
    const size_t most = capacity - at_z - (back_bytes(1) - 1);
    assert_null(pk_realloc(view, z, most + 1));
    assert_int_equal(stats_of(&a).failures, 1);
    assert_int_equal(stats_of(&a).in_use, at_z + back_bytes(20)); /* untouched on failure */
    assert_ptr_equal(pk_realloc(view, z, most), z);
    assert_int_equal(stats_of(&a).in_use, capacity);
    assert_ptr_equal(pk_realloc(view, z, 20), z);
    end = (uintptr_t)z + back_bytes(20);

    /* An earlier block moves, with its contents. */
    unsigned char *y = pk_alloc(view, 8);
    assert_ptr_equal(y, model_alloc(&end, 8, 0));
    memset(y, 0x44, 8);
#if PK_DEBUG
    assert_int_equal(view->ops->usable_size(&a, z), 20); /* every live block is known */
#else
    assert_int_equal(view->ops->usable_size(&a, z), 0); /* no longer the most recent */
#endif
    assert_int_equal(view->ops->usable_size(&a, y), 8);
    pk_stats before = stats_of(&a);
    unsigned char *moved = pk_realloc(view, z, 40);
    assert_ptr_equal(moved, model_alloc(&end, 40, 0));
#if PK_DEBUG
    /* Exactly z's 20 bytes; the rest is a new block's fill. */
    for (size_t i = 0; i < 20; i++) {
        assert_int_equal(moved[i], 0x33);
    }
    for (size_t i = 20; i < 40; i++) {
        assert_int_equal(peek(moved + i), 0xCD);
    }
#else
    for (size_t i = 0; i < 30; i++) {
        assert_int_equal(moved[i], 0x33); /* z's 20 bytes, and the 10 it had before shrinking */
    }
    for (size_t i = (size_t)(y - z); i < 40; i++) {
        assert_int_equal(moved[i], 0x44); /* y's bytes: the arena cannot know where z ended */
    }
#endif
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(y[i], 0x44);
    }
    s = stats_of(&a);
    assert_int_equal(s.allocs, before.allocs + 1);
    assert_int_equal(s.frees, before.frees + 1);
    assert_int_equal(s.live, before.live + 1);
    assert_int_equal(s.requested, before.requested + 40);
    assert_int_equal(s.in_use, (size_t)(end - (uintptr_t)base));
    /* A shrink of an earlier block also moves (copying only size bytes). */
    unsigned char *small = pk_realloc(view, y, 4);
    assert_ptr_equal(small, model_alloc(&end, 4, 0));
    assert_memory_equal(small, "\x44\x44\x44\x44", 4);
    assert_int_equal(stats_of(&a).in_use, (size_t)(end - (uintptr_t)base));

    /* The most recent block with less than the default alignment moves, so the
     * result has the default alignment. (Where the bump would give it the
     * default alignment by chance, as debug builds on i386 do, a 1-byte block
     * first moves it off.) */
    uintptr_t probe = end;
    if ((uintptr_t)model_alloc(&probe, 3, 1) % DEFAULT_ALIGN == 0) {
        assert_ptr_equal(pk_alloc_aligned(view, 1, 1), model_alloc(&end, 1, 1));
    }
    unsigned char *odd = pk_alloc_aligned(view, 3, 1);
    assert_ptr_equal(odd, model_alloc(&end, 3, 1));
    assert_true((uintptr_t)odd % DEFAULT_ALIGN != 0);
    memcpy(odd, "abc", 3);
    unsigned char *aligned = pk_realloc(view, odd, 10);
    assert_ptr_equal(aligned, model_alloc(&end, 10, 0));
    assert_memory_equal(aligned, "abc", 3);

    /* realloc(NULL, n) allocates; realloc(p, 0) frees and returns NULL. */
    unsigned char *fresh = pk_realloc(view, NULL, 5); const int line_fresh = __LINE__;
    assert_ptr_equal(fresh, model_alloc(&end, 5, 0));
    before = stats_of(&a);
    assert_null(pk_realloc(view, fresh, 0));
    s = stats_of(&a);
    assert_int_equal(s.frees, before.frees + 1);
    assert_int_equal(s.in_use, before.in_use); /* nothing reclaimed */
    assert_int_equal(view->ops->usable_size(&a, fresh), 0); /* freed: unknown */
    /* A freed most-recent block is no longer grown in place: release builds
     * move it (they cannot tell it was freed), debug builds report it. */
#if PK_DEBUG
    assert_null(pk_realloc(view, fresh, 6)); const int line_again = __LINE__;
    expect_fault_sites(PK_ERR_DOUBLE_FREE, fresh, "arena", __FILE__, line_fresh, 0, line_again);
    unsigned char *again = pk_alloc(view, 6);
#else
    (void)line_fresh; /* release builds record no sites */
    unsigned char *again = pk_realloc(view, fresh, 6);
#endif
    assert_ptr_equal(again, model_alloc(&end, 6, 0));

    /* A copy that does not fit fails and leaves the block alone. */
    before = stats_of(&a);
    assert_null(pk_realloc(view, small, capacity));
    s = stats_of(&a);
    assert_int_equal(s.failures, before.failures + 1);
    s.failures = before.failures;
    assert_same_stats(&s, &before);
    assert_memory_equal(small, "\x44\x44\x44\x44", 4);

    /* Foreign pointers are reported as pk_free reports them. */
    static unsigned char elsewhere[16];
    unsigned char *unused = base + capacity - 1; /* in the buffer, never handed out */
    before = stats_of(&a);
    assert_null(pk_realloc(view, elsewhere, 8));
    expect_fault_named(PK_ERR_FOREIGN_PTR, elsewhere, "arena");
    assert_null(pk_realloc(view, unused, 8));
    expect_fault_named(PK_ERR_FOREIGN_PTR, unused, "arena");
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
    void *q = NULL;
    ONCE(q = pk_alloc(view, 10));
    assert_non_null(q);
    ONCE(assert_null(pk_arena_alloc(&a, 5000, 0))); /* a failure */
    ONCE_FAULT(assert_null(pk_arena_alloc(&a, 10, 3)), PK_ERR_INVALID_ARG);
    ONCE(assert_int_equal(pk_free(view, q), PK_OK));
#if PK_DEBUG
    ONCE_FAULT(assert_int_equal(pk_free(view, q), PK_ERR_DOUBLE_FREE), PK_ERR_DOUBLE_FREE);
    ONCE_FAULT(assert_int_equal(pk_free(view, (unsigned char *)p + 1), PK_ERR_MISALIGNED_PTR),
               PK_ERR_MISALIGNED_PTR);
#endif
    lock_calls = 0;
    assert_int_equal(pk_free(view, NULL), PK_OK); /* touches nothing */
    assert_int_equal(lock_calls, 0);
    ONCE_FAULT(assert_int_equal(pk_free(view, elsewhere), PK_ERR_FOREIGN_PTR), PK_ERR_FOREIGN_PTR);
    ONCE(p = pk_realloc(view, p, 30)); /* a copy: q came after p */
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
#if PK_DEBUG
    poke((unsigned char *)p + 40, 0x5A); /* an overflow: check and reset report it */
    ONCE_FAULT(assert_int_equal(pk_arena_check(&a), PK_ERR_GUARD_CORRUPT), PK_ERR_GUARD_CORRUPT);
#endif
    ONCE(pk_arena_seal(&a));
    ONCE_FAULT(assert_null(pk_arena_alloc(&a, 1, 0)), PK_ERR_SEALED);
    ONCE_FAULT(assert_null(pk_realloc(view, p, 50)), PK_ERR_SEALED);
#if PK_DEBUG
    ONCE_FAULT(pk_arena_reset(&a), PK_ERR_GUARD_CORRUPT);
#else
    ONCE(pk_arena_reset(&a));
#endif
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
    finish(&a);
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
    finish(&a);
}

/* Four threads allocate from one locked arena: every block distinct. The
 * arena fills before the end, and then a small request may still fit after a
 * larger one failed: each block keeps the step that asked for it. */
typedef struct {
    pk_arena *a;
    unsigned char *blocks[500];
    size_t steps[500];
    size_t n;
} thread_work;

static void *thread_main(void *arg)
{
    thread_work *w = arg;
    for (size_t i = 0; i < 500; i++) {
        unsigned char *p = pk_arena_alloc(w->a, 1 + i % 40, (size_t)1 << (i % 6));
        if (p != NULL) {
            memset(p, (int)(i & 0xFF), 1 + i % 40);
            w->blocks[w->n] = p;
            w->steps[w->n++] = i;
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
        for (size_t k = 0; k < work[t].n; k++) {
            size_t i = work[t].steps[k], size = 1 + i % 40;
            assert_int_equal((uintptr_t)work[t].blocks[k] % ((size_t)1 << (i % 6)), 0);
            for (size_t b = 0; b < size; b++) {
                assert_int_equal(work[t].blocks[k][b], (unsigned char)(i & 0xFF));
            }
        }
    }
    pk_stats s = stats_of(&a);
    assert_int_equal(s.live, total);
    assert_int_equal(s.allocs + s.failures, 2000);
    assert_check_ok(&a);
    finish(&a);
}

/* PK_ARENA_SPACE: the sum over a sequence always suffices, at any address. */
static void test_space_macro_suffices(void **state)
{
    (void)state;
    static const unsigned char fits[PK_ARENA_SPACE(10, 64) + PK_ARENA_SPACE(0, 0)];
    assert_int_equal(sizeof fits, block_bytes(10, 64) + 63 + block_bytes(0, DEFAULT_ALIGN) + DEFAULT_ALIGN - 1);
    for (size_t align = 1; align <= 4096; align *= 2) {
        assert_int_equal(PK_ARENA_SPACE(0, align), block_bytes(0, align) + align - 1);
        assert_int_equal(PK_ARENA_SPACE(100, align), block_bytes(100, align) + align - 1);
    }
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
        finish(&a);
    }
    /* And it is tight: with the worst address, one byte less fails. */
    pk_arena a;
    assert_int_equal(pk_arena_init(&a, buffer + 1, PK_ARENA_SPACE(5, 64) - 1), PK_OK);
    assert_null(pk_arena_alloc(&a, 5, 64));
    assert_int_equal(pk_arena_init(&a, buffer + 1, PK_ARENA_SPACE(5, 64)), PK_OK);
    assert_ptr_equal(pk_arena_alloc(&a, 5, 64), buffer + 64 + front_bytes(64));
    assert_int_equal(faults.calls, 0);
    finish(&a);
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
    damage_size(&a, &a.last_size, 0);              /* a 0-byte block would end elsewhere */
    a.requested = 4;                               /* the last block's size alone is 5 */
    a.last_size = 5;
    assert_check_corrupt(&a);
    a.requested = 35;
    assert_check_ok(&a);
    /* A zero-size block at the end (one byte, or just its tag and guards). */
    assert_non_null(pk_arena_alloc(&a, 0, 1));
    assert_check_ok(&a);
    damage_size(&a, &a.last, a.used);
    finish(&a);
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
    finish(&a);
}

#if PK_DEBUG
/* Debug builds: what the header's "Debug builds" paragraph promises. Each
 * misuse is reported once, with the block's allocation site and owner (the
 * call-site macros of pk_arena_alloc and pk_alloc record them) and the
 * faulting call's site, and check is clean again where the arena is whole. */

/* An arena named "boot" at an odd address. */
static pk_allocator *debug_arena(pk_arena *a, size_t size)
{
    assert_int_equal(pk_arena_init(a, buffer + 3, size), PK_OK);
    pk_arena_set_name(a, "boot");
    return pk_arena_allocator(a);
}

/* The byte just past a block of size bytes at p, or just before it. */
static unsigned char *guard_byte(unsigned char *p, size_t size, bool past_end)
{
    return past_end ? p + size : p - 1;
}

/* One byte written into a guard is found by check, which repairs nothing,
 * then by the view's free, which frees the block all the same and restores
 * the guards; the neighbours are neither blamed nor touched. */
static void guard_damage_found_by_check_and_free(bool past_end)
{
    pk_arena a;
    pk_allocator *view = debug_arena(&a, 4096);
    unsigned char *before = pk_alloc(view, 5);
    pk_set_owner(41);
    unsigned char *p = pk_arena_alloc(&a, 13, 8); const int line_p = __LINE__;
    pk_set_owner(0);
    unsigned char *after = pk_alloc(view, 7);
    assert_non_null(before);
    assert_non_null(p);
    assert_non_null(after);
    memset(before, 0x01, 5);
    memset(p, 0x02, 13);
    memset(after, 0x03, 7);
    assert_check_ok(&a);
    poke(guard_byte(p, 13, past_end), 0x5A);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(pk_arena_check(&a), PK_ERR_GUARD_CORRUPT);
        expect_fault_sites(PK_ERR_GUARD_CORRUPT, p, "boot", __FILE__, line_p, 41, 0); /* check has no call site */
    }
    pk_stats s0 = stats_of(&a);
    assert_int_equal(pk_free(view, p), PK_ERR_GUARD_CORRUPT); const int line_free = __LINE__;
    expect_fault_sites(PK_ERR_GUARD_CORRUPT, p, "boot", __FILE__, line_p, 41, line_free);
    pk_stats s1 = stats_of(&a);
    assert_int_equal(s1.frees, s0.frees + 1);
    s1.frees = s0.frees;
    assert_same_stats(&s1, &s0);
    assert_check_ok(&a);
    assert_int_equal(view->ops->usable_size(&a, p), 0);
    assert_int_equal(pk_free(view, p), PK_ERR_DOUBLE_FREE); const int line_again = __LINE__;
    expect_fault_sites(PK_ERR_DOUBLE_FREE, p, "boot", __FILE__, line_p, 41, line_again);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(before[i], 0x01);
    }
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(after[i], 0x03);
    }
    assert_int_equal(pk_free(view, before), PK_OK);
    assert_int_equal(pk_free(view, after), PK_OK);
    assert_int_equal(faults.calls, 0);
    assert_check_ok(&a);
    finish(&a);
}

/* Reset finds the damage of the oldest damaged block and reports it once,
 * then forgets every block: the arena is whole and hands out the same bytes. */
static void guard_damage_found_by_reset(bool past_end)
{
    pk_arena a;
    pk_allocator *view = debug_arena(&a, 4096);
    pk_set_owner(42);
    unsigned char *p = pk_alloc(view, 24); const int line_p = __LINE__;
    pk_set_owner(0);
    unsigned char *q = pk_arena_alloc(&a, 9, 1);
    assert_non_null(p);
    assert_non_null(q);
    poke(guard_byte(p, 24, past_end), 0x5A);
    poke(guard_byte(q, 9, past_end), 0x5A);
    pk_arena_reset(&a); const int line_reset = __LINE__;
    expect_fault_sites(PK_ERR_GUARD_CORRUPT, p, "boot", __FILE__, line_p, 42, line_reset);
    pk_stats s = stats_of(&a);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.live, 0);
    assert_check_ok(&a);
    assert_ptr_equal(pk_alloc(view, 24), p);
    assert_ptr_equal(pk_arena_alloc(&a, 9, 1), q);
    assert_check_ok(&a);
    pk_arena_reset(&a);
    assert_int_equal(faults.calls, 0);
    assert_check_ok(&a);
}

static void test_debug_overflow_found_by_check_and_free(void **state)
{
    (void)state;
    guard_damage_found_by_check_and_free(true);
}

static void test_debug_underflow_found_by_check_and_free(void **state)
{
    (void)state;
    guard_damage_found_by_check_and_free(false);
}

static void test_debug_overflow_found_by_reset(void **state)
{
    (void)state;
    guard_damage_found_by_reset(true);
}

static void test_debug_underflow_found_by_reset(void **state)
{
    (void)state;
    guard_damage_found_by_reset(false);
}

/* A write into a block after the view freed it (its first or last byte) is
 * found by check, which repairs nothing, and by reset, which reports it once
 * and leaves the arena whole. */
static void test_debug_write_after_free(void **state)
{
    (void)state;
    pk_arena a;
    pk_allocator *view = debug_arena(&a, 4096);
    pk_set_owner(51);
    unsigned char *p = pk_alloc(view, 24); const int line_p = __LINE__;
    pk_set_owner(0);
    unsigned char *q = pk_alloc(view, 16);
    assert_non_null(p);
    assert_non_null(q);
    memset(p, 0x11, 24);
    memset(q, 0x22, 16);
    assert_int_equal(pk_free(view, p), PK_OK);
    assert_check_ok(&a); /* freed and poisoned: whole */
    poke(p + 23, 0x11);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(pk_arena_check(&a), PK_ERR_USE_AFTER_FREE);
        expect_fault_sites(PK_ERR_USE_AFTER_FREE, p, "boot", __FILE__, line_p, 51, 0);
    }
    pk_arena_reset(&a); const int line_reset = __LINE__;
    expect_fault_sites(PK_ERR_USE_AFTER_FREE, p, "boot", __FILE__, line_p, 51, line_reset);
    assert_check_ok(&a);
    assert_int_equal(stats_of(&a).in_use, 0);

    /* The first byte, found by reset alone. */
    pk_set_owner(52);
    unsigned char *r = pk_arena_alloc(&a, 8, 1); const int line_r = __LINE__;
    pk_set_owner(0);
    assert_non_null(r);
    assert_int_equal(pk_free(view, r), PK_OK);
    poke(r, 0x5A);
    pk_arena_reset(&a); const int line_reset_r = __LINE__;
    expect_fault_sites(PK_ERR_USE_AFTER_FREE, r, "boot", __FILE__, line_r, 52, line_reset_r);
    assert_check_ok(&a);
    assert_ptr_equal(pk_alloc(view, 24), p); /* usable: handed out from the start again */
    assert_check_ok(&a);
    assert_int_equal(faults.calls, 0);
    finish(&a);
}

/* A double free carries the block's site and owner; a pointer into a block,
 * its guards, its tag or the padding before it is PK_ERR_MISALIGNED_PTR
 * (no block: no allocation site). Either is counted as rejected and changes
 * nothing else. */
static void test_debug_double_free_and_interior_pointers(void **state)
{
    (void)state;
    pk_arena a;
    pk_allocator *view = debug_arena(&a, 4096);
    pk_set_owner(61);
    unsigned char *p = pk_arena_alloc(&a, 40, 0); const int line_p = __LINE__;
    pk_set_owner(0);
    unsigned char *q = pk_alloc(view, 8); const int line_q = __LINE__;
    assert_non_null(p);
    assert_non_null(q);
    unsigned char *const interior[] = {
        p + 1, p + 39, p + 40, p - 1, p - front_bytes(DEFAULT_ALIGN), buffer + 3, q + 4,
    };
    assert_true(pad_to((uintptr_t)(buffer + 3), DEFAULT_ALIGN) > 0); /* buffer + 3 is padding */
    for (size_t i = 0; i < sizeof interior / sizeof *interior; i++) {
        pk_stats s0 = stats_of(&a);
        assert_int_equal(pk_free(view, interior[i]), PK_ERR_MISALIGNED_PTR); const int line = __LINE__;
        expect_fault_sites(PK_ERR_MISALIGNED_PTR, interior[i], "boot", __FILE__, 0, 0, line);
        pk_stats s1 = stats_of(&a);
        assert_int_equal(s1.rejected, s0.rejected + 1);
        s1.rejected = s0.rejected;
        assert_same_stats(&s1, &s0);
        assert_check_ok(&a);
    }

    assert_int_equal(pk_free(view, p), PK_OK);
    pk_stats s0 = stats_of(&a);
    assert_int_equal(pk_free(view, p), PK_ERR_DOUBLE_FREE); const int line_double = __LINE__;
    expect_fault_sites(PK_ERR_DOUBLE_FREE, p, "boot", __FILE__, line_p, 61, line_double);
    pk_stats s1 = stats_of(&a);
    assert_int_equal(s1.rejected, s0.rejected + 1);
    s1.rejected = s0.rejected;
    assert_same_stats(&s1, &s0);
    assert_check_ok(&a);
    /* Through realloc too; a pointer into the freed block is still interior. */
    assert_null(pk_realloc(view, p, 64)); const int line_realloc = __LINE__;
    expect_fault_sites(PK_ERR_DOUBLE_FREE, p, "boot", __FILE__, line_p, 61, line_realloc);
    assert_int_equal(pk_free(view, p + 1), PK_ERR_MISALIGNED_PTR); const int line_inside = __LINE__;
    expect_fault_sites(PK_ERR_MISALIGNED_PTR, p + 1, "boot", __FILE__, 0, 0, line_inside);
    /* The most recent block, freed by realloc to 0. */
    assert_null(pk_realloc(view, q, 0));
    assert_int_equal(pk_free(view, q), PK_ERR_DOUBLE_FREE); const int line_q_again = __LINE__;
    expect_fault_sites(PK_ERR_DOUBLE_FREE, q, "boot", __FILE__, line_q, 0, line_q_again);
    assert_check_ok(&a);
    assert_int_equal(faults.calls, 0);
    finish(&a);
}

/* The view's realloc of an earlier block copies exactly its bytes, then
 * frees it; the most recent block grows and shrinks in place, its rear guard
 * moved to the new end. */
static void test_debug_realloc(void **state)
{
    (void)state;
    pk_arena a;
    pk_allocator *view = debug_arena(&a, 4096);
    pk_set_owner(71);
    unsigned char *p = pk_alloc(view, 24); const int line_p = __LINE__;
    pk_set_owner(0);
    unsigned char *q = pk_alloc(view, 16);
    assert_non_null(p);
    assert_non_null(q);
    memset(p, 0x11, 24);
    memset(q, 0x22, 16);
    pk_stats s0 = stats_of(&a);
    unsigned char *r = pk_realloc(view, p, 40);
    assert_non_null(r);
    assert_true(r > q);
    for (size_t i = 0; i < 24; i++) {
        assert_int_equal(r[i], 0x11);
    }
    for (size_t i = 24; i < 40; i++) {
        assert_int_equal(peek(r + i), 0xCD); /* a new block's fill: not p's guard, nor q */
    }
    for (size_t i = 0; i < 16; i++) {
        assert_int_equal(q[i], 0x22);
    }
    pk_stats s = stats_of(&a);
    assert_int_equal(s.allocs, s0.allocs + 1);
    assert_int_equal(s.frees, s0.frees + 1);
    assert_int_equal(s.live, s0.live + 1);
    assert_int_equal(s.requested, s0.requested + 40);
    assert_int_equal(view->ops->usable_size(&a, r), 40);
    assert_int_equal(view->ops->usable_size(&a, p), 0);
    assert_check_ok(&a); /* p freed, its poison intact */
    assert_int_equal(pk_free(view, p), PK_ERR_DOUBLE_FREE); const int line_again = __LINE__;
    expect_fault_sites(PK_ERR_DOUBLE_FREE, p, "boot", __FILE__, line_p, 71, line_again);
    /* A shrink of an earlier block copies the new size. */
    unsigned char *small = pk_realloc(view, q, 4);
    assert_non_null(small);
    assert_memory_equal(small, "\x22\x22\x22\x22", 4);
    assert_check_ok(&a);

    /* Grown in place: the old guard's bytes are the client's, the byte past
     * the new end is the guard. */
    pk_set_owner(72);
    unsigned char *g = pk_alloc(view, 32); const int line_g = __LINE__;
    pk_set_owner(0);
    assert_non_null(g);
    memset(g, 0x33, 32);
    s0 = stats_of(&a);
    assert_ptr_equal(pk_realloc(view, g, 64), g);
    s = stats_of(&a);
    assert_int_equal(s.in_use, s0.in_use + 32);
    assert_int_equal(s.requested, s0.requested + 32);
    assert_int_equal(s.allocs, s0.allocs);
    assert_int_equal(s.frees, s0.frees);
    assert_int_equal(view->ops->usable_size(&a, g), 64);
    for (size_t i = 0; i < 32; i++) {
        assert_int_equal(g[i], 0x33);
    }
    memset(g, 0x44, 64);
    assert_check_ok(&a);
    poke(g + 64, 0x5A);
    assert_int_equal(pk_arena_check(&a), PK_ERR_GUARD_CORRUPT);
    expect_fault_sites(PK_ERR_GUARD_CORRUPT, g, "boot", __FILE__, line_g, 72, 0);
    assert_int_equal(pk_free(view, g), PK_ERR_GUARD_CORRUPT); const int line_free_g = __LINE__;
    expect_fault_sites(PK_ERR_GUARD_CORRUPT, g, "boot", __FILE__, line_g, 72, line_free_g);
    assert_check_ok(&a);

    /* Shrunk in place: what was the block's byte past the new end is the
     * guard now. */
    pk_set_owner(73);
    unsigned char *h = pk_arena_alloc(&a, 64, 0); const int line_h = __LINE__;
    pk_set_owner(0);
    assert_non_null(h);
    memset(h, 0x55, 64);
    s0 = stats_of(&a);
    assert_ptr_equal(pk_realloc(view, h, 16), h);
    s = stats_of(&a);
    assert_int_equal(s.in_use, s0.in_use - 48);
    assert_int_equal(s.requested, s0.requested - 48);
    assert_int_equal(view->ops->usable_size(&a, h), 16);
    for (size_t i = 0; i < 16; i++) {
        assert_int_equal(h[i], 0x55);
    }
    assert_check_ok(&a);
    poke(h + 16, 0x55);
    assert_int_equal(pk_arena_check(&a), PK_ERR_GUARD_CORRUPT);
    expect_fault_sites(PK_ERR_GUARD_CORRUPT, h, "boot", __FILE__, line_h, 73, 0);
    assert_int_equal(pk_free(view, h), PK_ERR_GUARD_CORRUPT); const int line_free_h = __LINE__;
    expect_fault_sites(PK_ERR_GUARD_CORRUPT, h, "boot", __FILE__, line_h, 73, line_free_h);
    assert_check_ok(&a);
    assert_int_equal(faults.calls, 0);
    finish(&a);
}

/* usable_size: the requested size of any live block, 0 for anything else. */
static void test_debug_usable_size(void **state)
{
    (void)state;
    static unsigned char elsewhere[16];
    pk_arena a;
    pk_allocator *view = debug_arena(&a, 4096);
    unsigned char *p = pk_arena_alloc(&a, 13, 4);
    unsigned char *z = pk_alloc(view, 0);
    unsigned char *q = pk_alloc(view, 100);
    assert_non_null(p);
    assert_non_null(z);
    assert_non_null(q);
    assert_int_equal(view->ops->usable_size(&a, p), 13); /* not the most recent */
    assert_int_equal(view->ops->usable_size(&a, z), 0);
    assert_int_equal(view->ops->usable_size(&a, q), 100);
    const unsigned char *const none[] = {p + 1, q + 99, q + 100, p - 1, buffer + 3, elsewhere};
    for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
        assert_int_equal(view->ops->usable_size(&a, none[i]), 0);
    }
    assert_int_equal(pk_free(view, p), PK_OK);
    assert_int_equal(view->ops->usable_size(&a, p), 0);
    assert_ptr_equal(pk_realloc(view, q, 50), q);
    assert_int_equal(view->ops->usable_size(&a, q), 50);
    pk_arena_reset(&a);
    assert_int_equal(view->ops->usable_size(&a, q), 0);
    assert_int_equal(faults.calls, 0);
}

#define LEAKS_MAX 8

typedef struct {
    size_t n;
    pk_leak e[LEAKS_MAX];
} leak_list;

static void collect_leak(const pk_leak *leak, void *ctx)
{
    leak_list *l = ctx;
    if (l->n < LEAKS_MAX) {
        l->e[l->n] = *leak;
    }
    l->n++;
}

static leak_list leaks_of(pk_allocator *view, const uint64_t *since)
{
    leak_list l;
    memset(&l, 0, sizeof l);
    if (since != NULL) {
        pk_leaks_since(view, *since, collect_leak, &l);
    } else {
        pk_leaks(view, collect_leak, &l);
    }
    return l;
}

static void expect_leak(const pk_leak *leak, const void *ptr, size_t size, int line, uint32_t owner)
{
    assert_ptr_equal(leak->ptr, ptr);
    assert_int_equal(leak->size, size);
    assert_non_null(leak->file);
    assert_string_equal(leak->file, __FILE__);
    assert_int_equal(leak->line, line);
    assert_int_equal(leak->owner, owner);
}

/* pk_leaks lists the blocks not freed through the view, oldest first, with
 * their sites; a block moved by realloc is the realloc's. */
static void test_debug_leaks(void **state)
{
    (void)state;
    pk_arena a;
    pk_allocator *view = debug_arena(&a, 4096);
    pk_set_owner(81);
    unsigned char *p = pk_arena_alloc(&a, 10, 0); const int line_p = __LINE__;
    pk_set_owner(82);
    unsigned char *q = pk_alloc(view, 20);
    pk_set_owner(0);
    unsigned char *r = pk_alloc_aligned(view, 30, 64); const int line_r = __LINE__;
    assert_int_equal(pk_free(view, q), PK_OK);
    leak_list l = leaks_of(view, NULL);
    assert_int_equal(l.n, 2);
    expect_leak(&l.e[0], p, 10, line_p, 81);
    expect_leak(&l.e[1], r, 30, line_r, 0);
    assert_true(l.e[0].seq < l.e[1].seq);

    /* A phase: what it allocated and did not free. */
    const uint64_t mark = pk_leak_mark();
    unsigned char *s = pk_alloc(view, 5); const int line_s = __LINE__;
    unsigned char *t = pk_realloc(view, p, 12); const int line_t = __LINE__;
    assert_true(t != p);
    l = leaks_of(view, &mark);
    assert_int_equal(l.n, 2);
    expect_leak(&l.e[0], s, 5, line_s, 0);
    expect_leak(&l.e[1], t, 12, line_t, 0);
    l = leaks_of(view, NULL);
    assert_int_equal(l.n, 3); /* p went with the realloc */
    expect_leak(&l.e[0], r, 30, line_r, 0);

    pk_arena_reset(&a);
    assert_int_equal(leaks_of(view, NULL).n, 0);
    assert_int_equal(faults.calls, 0);
}

/* Every alignment from 1 to 4096: the user pointer aligned, every byte of it
 * the client's (check clean after they are all written), and a guard right
 * past its end and right before its start (a byte written there is found at
 * free, which frees the block all the same). */
static void test_debug_alignment_and_guards(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 13, 64};
    pk_arena a;
    pk_allocator *view = debug_arena(&a, 200000);
    uint32_t owner = 0;
    for (size_t align = 1; align <= 4096; align *= 2) {
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
            for (int past_end = 0; past_end < 2; past_end++) {
                pk_set_owner(++owner);
                unsigned char *p = pk_arena_alloc(&a, sizes[k], align); const int line_p = __LINE__;
                pk_set_owner(0);
                assert_non_null(p);
                assert_int_equal((uintptr_t)p % align, 0);
                memset(p, 0xEE, sizes[k]);
                assert_check_ok(&a);
                poke(guard_byte(p, sizes[k], past_end), 0xEE);
                assert_int_equal(pk_free(view, p), PK_ERR_GUARD_CORRUPT); const int line_free = __LINE__;
                expect_fault_sites(PK_ERR_GUARD_CORRUPT, p, "boot", __FILE__, line_p, owner, line_free);
                assert_check_ok(&a);
            }
        }
    }
    assert_int_equal(faults.calls, 0);
    finish(&a);
}
#endif

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
        cmocka_unit_test_setup_teardown(test_init_rejects_bad_arguments, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_init_gives_an_empty_arena, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_name, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_alignment_honoured, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_size_zero_is_unique, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_exact_stats_after_known_sequence, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_seal, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_reset_peaks, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_overflowing_requests_fail, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_bad_alignment_is_a_fault, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_view_free, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_misuse_through_the_driver, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_calloc_and_realloc, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_lock_wraps_every_operation, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_handler_may_call_the_arena, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_threads_share_a_locked_arena, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_space_macro_suffices, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_counter_damage, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_last_block_damage, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_structure_damage, setup, teardown_faults),
#if PK_DEBUG
        cmocka_unit_test_setup_teardown(test_debug_overflow_found_by_check_and_free, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_underflow_found_by_check_and_free, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_overflow_found_by_reset, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_underflow_found_by_reset, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_write_after_free, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_double_free_and_interior_pointers, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_realloc, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_usable_size, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_leaks, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_alignment_and_guards, setup, teardown_faults),
#endif
        cmocka_unit_test_setup_teardown(test_random_small_requests, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_aligned_requests, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_tiny_arena, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_one_long_run, setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_locked, setup, teardown_faults),
    };
    return cmocka_run_group_tests_name("arena", tests, NULL, NULL);
}
