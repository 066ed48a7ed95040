/*
 * Unit tests of the generic view (poolkit/allocator.h): pk_alloc,
 * pk_alloc_aligned, pk_calloc, pk_realloc, pk_free, pk_stats_get, pk_check and
 * pk_name, through a pk_pool and through a user-defined allocator plugged in
 * with pk_allocator_ops (no realloc, so that pk_realloc's fallback runs).
 */
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/internal.h"
#include "poolkit/allocator.h"
#include "poolkit/common.h"
#include "poolkit/pool.h"
#include "support.h"

/* ------------------------------------------------------------------------- */
/* A recording fault handler (support.h's recorder). */

static void counting_handler(const pk_fault *f, void *ctx)
{
    assert_ptr_equal(ctx, &rec);
    record(f, ctx);
}

static int setup(void **state)
{
    (void)state;
    memset(&rec, 0, sizeof rec);
    lock_depth = 0;
    pk_set_fault_handler(counting_handler, &rec);
    return 0;
}

static void expect_one_fault(pk_status kind, const char *allocator, const void *ptr)
{
    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec.e[0].kind, kind);
    assert_string_equal(rec.e[0].allocator, allocator);
    assert_ptr_equal(rec.e[0].ptr, ptr);
    memset(&rec, 0, sizeof rec);
}

static bool aligned_to(const void *p, size_t align)
{
    return align == 0 || ((uintptr_t)p & (align - 1)) == 0;
}

/* ------------------------------------------------------------------------- */
/* Pools on local buffers. */

#define BLOCK 64
#define COUNT 8

typedef struct {
    pk_pool pool;
    pk_allocator *a;
    unsigned char buf[PK_POOL_BUFFER_SIZE(BLOCK, COUNT, 64)];
} test_pool;

static void make_pool(test_pool *t, size_t block_size, size_t count, size_t align)
{
    assert_true(PK_POOL_BUFFER_SIZE(block_size, count, align) <= sizeof t->buf);
    assert_int_equal(pk_pool_init(&t->pool, t->buf, PK_POOL_BUFFER_SIZE(block_size, count, align),
                                  block_size, align),
                     PK_OK);
    assert_int_equal(pk_pool_capacity(&t->pool), count);
    t->a = pk_pool_allocator(&t->pool);
    assert_non_null(t->a);
}

static pk_stats stats_of(pk_allocator *a)
{
    pk_stats s;
    memset(&s, 0xa5, sizeof s);
    pk_stats_get(a, &s);
    return s;
}

/* ------------------------------------------------------------------------- */
/* The view itself */

PK_POOL_DEFINE(defined_pool, 32, 4, 0);

static void test_view_identity(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, COUNT, 0);
    assert_ptr_equal(pk_pool_allocator(&t.pool), t.a);
    assert_ptr_equal(t.a->self, &t.pool);
    assert_ptr_equal(t.a->ops, &pk_pool_allocator_ops);
    /* The view lives inside the pool. */
    assert_true((const unsigned char *)t.a >= (const unsigned char *)&t.pool &&
                (const unsigned char *)(t.a + 1) <= (const unsigned char *)(&t.pool + 1));
    const pk_allocator_ops *ops = t.a->ops;
    assert_non_null(ops->alloc_aligned);
    assert_non_null(ops->free);
    assert_non_null(ops->stats);
    assert_non_null(ops->check);
    assert_non_null(ops->name);
    assert_non_null(ops->usable_size);

    pk_allocator *d = pk_pool_allocator(&defined_pool);
    assert_ptr_equal(d->self, &defined_pool);
    assert_string_equal(pk_name(d), "defined_pool");
    void *p = pk_alloc(d, 32);
    assert_non_null(p);
    assert_int_equal(pk_free(d, p), PK_OK);
    assert_int_equal(pk_check(d), PK_OK);
    assert_int_equal(rec.calls, 0);
}

static void test_name(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, COUNT, 0);
    assert_string_equal(pk_name(t.a), "pool");
    pk_pool_set_name(&t.pool, "dma");
    assert_string_equal(pk_name(t.a), "dma");
    /* Faults carry the new name. */
    void *p = pk_alloc(t.a, 1);
    assert_non_null(p);
    assert_int_equal(pk_free(t.a, p), PK_OK);
    assert_int_equal(pk_free(t.a, p), PK_ERR_DOUBLE_FREE);
    expect_one_fault(PK_ERR_DOUBLE_FREE, "dma", p);
    assert_null(pk_alloc_aligned(t.a, 1, 3));
    expect_one_fault(PK_ERR_INVALID_ARG, "dma", NULL);
    pk_pool_set_name(&t.pool, "second");
    assert_string_equal(pk_name(t.a), "second");
    pk_pool_set_name(&t.pool, NULL);
    assert_string_equal(pk_name(t.a), "pool");
    /* pk_name takes a const view. */
    const pk_allocator *c = t.a;
    assert_string_equal(pk_name(c), "pool");
}

/* ------------------------------------------------------------------------- */
/* pk_alloc / pk_alloc_aligned */

static void test_alloc_default_alignment(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, COUNT, 0);
    void *p[COUNT];
    for (size_t i = 0; i < COUNT; i++) {
        p[i] = pk_alloc(t.a, i * 8 + 1);
        assert_non_null(p[i]);
        assert_true(aligned_to(p[i], PK_MAX_ALIGN));
        assert_true(pk_pool_owns(&t.pool, p[i]));
        for (size_t j = 0; j < i; j++) {
            assert_ptr_not_equal(p[i], p[j]);
        }
#if PK_DEBUG
        memset(p[i], (int)i, i * 8 + 1); /* debug builds: only the request (guards follow it) */
#else
        memset(p[i], (int)i, BLOCK); /* the whole block is the client's */
#endif
    }
    pk_stats s = stats_of(t.a);
    assert_int_equal(s.allocs, COUNT);
    assert_int_equal(s.live, COUNT);
    assert_int_equal(s.in_use, COUNT * BLOCK);
    assert_int_equal(s.block_size, BLOCK);
    assert_int_equal(s.capacity, COUNT * BLOCK);
    assert_int_equal(s.failures, 0);
    for (size_t i = 0; i < COUNT; i++) {
#if PK_DEBUG
        for (size_t k = 0; k < i * 8 + 1; k++) {
#else
        for (size_t k = 0; k < BLOCK; k++) {
#endif
            assert_int_equal(((unsigned char *)p[i])[k], i);
        }
        assert_int_equal(pk_free(t.a, p[i]), PK_OK);
    }
    s = stats_of(t.a);
    assert_int_equal(s.frees, COUNT);
    assert_int_equal(s.live, 0);
    assert_int_equal(pk_check(t.a), PK_OK);
    assert_int_equal(rec.calls, 0);
}

static void test_alloc_aligned_up_to_pool_align(void **state)
{
    (void)state;
    const size_t aligns[] = {8, 16, 64};
    for (size_t k = 0; k < sizeof aligns / sizeof aligns[0]; k++) {
        size_t pool_align = aligns[k];
        test_pool t;
        make_pool(&t, 24, 4, pool_align);
        void *zero = pk_alloc_aligned(t.a, 24, 0);
        assert_non_null(zero);
        assert_true(aligned_to(zero, pool_align));
        assert_int_equal(pk_free(t.a, zero), PK_OK);
        size_t n = 1;
        for (size_t align = 1; align <= pool_align; align *= 2, n++) {
            void *p = pk_alloc_aligned(t.a, 24, align);
            assert_non_null(p);
            assert_true(aligned_to(p, align));
            assert_true(aligned_to(p, pool_align));
            void *q = pk_alloc_aligned(t.a, 1, align);
            assert_non_null(q);
            assert_true(aligned_to(q, align));
            assert_int_equal(pk_free(t.a, q), PK_OK);
            assert_int_equal(pk_free(t.a, p), PK_OK);
        }
        pk_stats s = stats_of(t.a);
        assert_int_equal(s.allocs, 2 * n - 1);
        assert_int_equal(s.failures, 0);
        assert_int_equal(s.rejected, 0);
        assert_int_equal(s.live, 0);
        assert_int_equal(rec.calls, 0);
    }
}

static void test_alloc_aligned_above_pool_align(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 4, 64);
    const size_t too_big[] = {128, 256, 4096, SIZE_MAX / 2 + 1};
    for (size_t k = 0; k < sizeof too_big / sizeof too_big[0]; k++) {
        pk_stats before = stats_of(t.a);
        assert_null(pk_alloc_aligned(t.a, 1, too_big[k]));
        assert_null(pk_alloc_aligned(t.a, 0, too_big[k]));
        pk_stats after = stats_of(t.a);
        assert_int_equal(after.failures, before.failures + 2);
        after.failures = before.failures;
        assert_same_stats(&after, &before);
        assert_int_equal(rec.calls, 0);
    }
    /* A default pool (alignof(max_align_t)) refuses twice that. */
    test_pool d;
    make_pool(&d, BLOCK, 4, 0);
    assert_non_null(pk_alloc_aligned(d.a, 1, PK_MAX_ALIGN));
    assert_null(pk_alloc_aligned(d.a, 1, PK_MAX_ALIGN * 2));
    pk_stats s = stats_of(d.a);
    assert_int_equal(s.failures, 1);
    assert_int_equal(s.live, 1);
    assert_int_equal(rec.calls, 0);
}

static void test_alloc_aligned_not_pow2(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 4, 64);
    const size_t bad[] = {3, 24, 5, 6, 7, 12, 48, 65, 96, SIZE_MAX, SIZE_MAX / 2 + 2};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        pk_stats before = stats_of(t.a);
        assert_null(pk_alloc_aligned(t.a, 8, bad[k]));
        expect_one_fault(PK_ERR_INVALID_ARG, "pool", NULL);
        pk_stats after = stats_of(t.a);
        assert_int_equal(after.rejected, before.rejected + 1);
        after.rejected = before.rejected;
        assert_same_stats(&after, &before);
    }
    /* With a size of 0, and with a live block around. */
    void *p = pk_alloc(t.a, 8);
    assert_non_null(p);
    assert_null(pk_alloc_aligned(t.a, 0, 3));
    expect_one_fault(PK_ERR_INVALID_ARG, "pool", NULL);
    pk_stats s = stats_of(t.a);
    assert_int_equal(s.live, 1);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.rejected, sizeof bad / sizeof bad[0] + 1);
    assert_int_equal(pk_free(t.a, p), PK_OK);
    assert_int_equal(pk_check(t.a), PK_OK);
    assert_int_equal(rec.calls, 0);
}

static void test_alloc_too_large(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 4, 0);
    const size_t big[] = {BLOCK + 1, BLOCK * 2, SIZE_MAX / 2, SIZE_MAX};
    for (size_t k = 0; k < sizeof big / sizeof big[0]; k++) {
        pk_stats before = stats_of(t.a);
        assert_null(pk_alloc(t.a, big[k]));
        assert_null(pk_alloc_aligned(t.a, big[k], 1));
        pk_stats after = stats_of(t.a);
        assert_int_equal(after.failures, before.failures + 2);
        after.failures = before.failures;
        assert_same_stats(&after, &before);
        assert_int_equal(rec.calls, 0);
    }
    void *p = pk_alloc(t.a, BLOCK);
    assert_non_null(p);
    memset(p, 0x11, BLOCK);
    assert_int_equal(pk_free(t.a, p), PK_OK);
    assert_int_equal(rec.calls, 0);
}

static void test_alloc_size_zero(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 4, 0);
    void *p = pk_alloc(t.a, 0);
    void *q = pk_alloc(t.a, 0);
    void *r = pk_alloc_aligned(t.a, 0, 1);
    assert_non_null(p);
    assert_non_null(q);
    assert_non_null(r);
    assert_ptr_not_equal(p, q);
    assert_ptr_not_equal(p, r);
    assert_ptr_not_equal(q, r);
    pk_stats s = stats_of(t.a);
    assert_int_equal(s.live, 3);
    assert_int_equal(s.allocs, 3);
    assert_int_equal(pk_free(t.a, p), PK_OK);
    assert_int_equal(pk_free(t.a, q), PK_OK);
    assert_int_equal(pk_free(t.a, r), PK_OK);
    assert_int_equal(rec.calls, 0);
}

/* A live block of 0 bytes is reallocated like any other (debug builds: its
 * usable size is 0, as a bad pointer's is), and a failure keeps it. */
static void test_realloc_empty_block(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 2, 0);
    void *empty = pk_alloc(t.a, 0);
    assert_non_null(empty);
    unsigned char *grown = pk_realloc(t.a, empty, 10);
    assert_non_null(grown);
    memset(grown, 0x5a, 10);
    assert_int_equal(stats_of(t.a).live, 1);
    assert_int_equal(rec.calls, 0);
    if (grown != empty) { /* moved (debug builds): the old block was freed */
        assert_int_equal(pk_free(t.a, empty), PK_ERR_DOUBLE_FREE);
        expect_one_fault(PK_ERR_DOUBLE_FREE, "pool", empty);
    }
    /* Full: the realloc fails and the empty block stays live. */
    empty = pk_alloc(t.a, 0);
    assert_non_null(empty);
    assert_int_equal(stats_of(t.a).live, 2);
    void *failed = pk_realloc(t.a, empty, BLOCK);
    if (failed == NULL) {
        assert_int_equal(stats_of(t.a).live, 2);
        assert_int_equal(pk_free(t.a, empty), PK_OK);
    } else { /* release builds: the block holds BLOCK bytes in place */
        assert_ptr_equal(failed, empty);
        assert_int_equal(pk_free(t.a, failed), PK_OK);
    }
    assert_int_equal(pk_free(t.a, grown), PK_OK);
    assert_int_equal(rec.calls, 0);
    assert_int_equal(pk_check(t.a), PK_OK);
}

static void test_alloc_exhaustion(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 4, 0);
    void *p[4];
    for (size_t i = 0; i < 4; i++) {
        p[i] = pk_alloc(t.a, BLOCK);
        assert_non_null(p[i]);
    }
    assert_null(pk_alloc(t.a, 1));
    assert_null(pk_alloc_aligned(t.a, 1, 8));
    pk_stats s = stats_of(t.a);
    assert_int_equal(s.failures, 2);
    assert_int_equal(s.rejected, 0);
    assert_int_equal(s.largest_free, 0);
    assert_int_equal(rec.calls, 0);
    assert_int_equal(pk_free(t.a, p[2]), PK_OK);
    void *again = pk_alloc(t.a, 1);
    assert_ptr_equal(again, p[2]);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(pk_free(t.a, p[i]), PK_OK);
    }
    assert_int_equal(pk_check(t.a), PK_OK);
}

/* ------------------------------------------------------------------------- */
/* pk_free, pk_stats_get, pk_check on the pool */

static void test_free_misuse(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 4, 0);
    assert_int_equal(pk_free(t.a, NULL), PK_OK);
    assert_int_equal(rec.calls, 0);
    void *p = pk_alloc(t.a, 8);
    void *q = pk_alloc(t.a, 8);
    assert_non_null(p);
    assert_non_null(q);
    /* q's bytes: its block (debug builds: its request, 8, which the guards follow). */
    size_t q_bytes = PK_DEBUG ? 8 : BLOCK;
    memset(q, 0x77, q_bytes);
    pk_stats before = stats_of(t.a);

    unsigned char local[16];
    assert_int_equal(pk_free(t.a, local), PK_ERR_FOREIGN_PTR);
    expect_one_fault(PK_ERR_FOREIGN_PTR, "pool", local);
    assert_int_equal(pk_free(t.a, (unsigned char *)q + 1), PK_ERR_MISALIGNED_PTR);
    expect_one_fault(PK_ERR_MISALIGNED_PTR, "pool", (unsigned char *)q + 1);
    assert_int_equal(pk_free(t.a, p), PK_OK);
    assert_int_equal(rec.calls, 0);
    assert_int_equal(pk_free(t.a, p), PK_ERR_DOUBLE_FREE);
    expect_one_fault(PK_ERR_DOUBLE_FREE, "pool", p);

    pk_stats after = stats_of(t.a);
    assert_int_equal(after.rejected, before.rejected + 3);
    assert_int_equal(after.frees, before.frees + 1);
    assert_int_equal(after.live, before.live - 1);
    /* q untouched and still live. */
    for (size_t k = 0; k < q_bytes; k++) {
        assert_int_equal(((unsigned char *)q)[k], 0x77);
    }
    assert_int_equal(pk_pool_usable_size(&t.pool, q), q_bytes);
    assert_int_equal(pk_check(t.a), PK_OK);
    assert_int_equal(pk_free(t.a, q), PK_OK);
    assert_int_equal(rec.calls, 0);
}

static void test_stats_and_check(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 4, 0);
    pk_stats s = stats_of(t.a);
    assert_int_equal(s.capacity, 4 * BLOCK);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.requested, 0);
    assert_int_equal(s.free_bytes, 4 * BLOCK);
    assert_int_equal(s.largest_free, BLOCK);
    assert_int_equal(s.block_size, BLOCK);
    assert_int_equal(s.live, 0);
    assert_int_equal(s.allocs, 0);
    assert_int_equal(s.frees, 0);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.rejected, 0);
    /* pk_stats_get matches the pool's own stats. */
    void *p = pk_alloc(t.a, 3);
    void *q = pk_alloc(t.a, 3);
    assert_int_equal(pk_free(t.a, p), PK_OK);
    pk_stats own;
    pk_pool_stats(&t.pool, &own);
    s = stats_of(t.a);
    assert_same_stats(&s, &own);
    assert_int_equal(s.live, 1);
    assert_int_equal(s.peak_live, 2);
    assert_int_equal(s.in_use, BLOCK);
    assert_int_equal(s.peak_in_use, 2 * BLOCK);

    assert_int_equal(pk_check(t.a), PK_OK);
    assert_int_equal(rec.calls, 0);
    /* A damaged pool: check reports it once and returns it. */
    uint64_t frees = t.pool.frees;
    t.pool.frees = t.pool.allocs + 1;
    assert_int_equal(pk_check(t.a), PK_ERR_CORRUPT);
    expect_one_fault(PK_ERR_CORRUPT, "pool", NULL);
    t.pool.frees = frees;
    assert_int_equal(pk_check(t.a), PK_OK);
    assert_int_equal(pk_free(t.a, q), PK_OK);
    assert_int_equal(rec.calls, 0);
}

/* A lock that counts its depth: the view holds it around its bookkeeping and
 * releases it before faults are reported. */
static void depth_lock(void *ctx)
{
    assert_ptr_equal(ctx, &lock_depth);
    lock_depth++;
    lock_calls++;
}
static void depth_unlock(void *ctx)
{
    assert_ptr_equal(ctx, &lock_depth);
    lock_depth--;
}

static void test_view_with_lock(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 2, 0);
    pk_lock l = {depth_lock, depth_unlock, &lock_depth};
    assert_int_equal(pk_pool_set_lock(&t.pool, &l), PK_OK);
    lock_calls = 0;
    void *p = pk_alloc(t.a, 1);
    assert_non_null(p);
    assert_null(pk_alloc(t.a, BLOCK + 1));
    assert_null(pk_alloc_aligned(t.a, 1, PK_MAX_ALIGN * 2));
    assert_null(pk_alloc_aligned(t.a, 1, 24));
    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec.e[0].kind, PK_ERR_INVALID_ARG);
    assert_int_equal(rec.e[0].lock_depth, 0);
    void *q = pk_calloc(t.a, 2, 4);
    assert_non_null(q);
    assert_null(pk_realloc(t.a, q, BLOCK + 1));
#if PK_DEBUG
    /* Debug builds: the generic realloc moves a block whose size changes
     * (its guards follow the size), which needs a third block here; the
     * same size keeps it. */
    assert_ptr_equal(pk_realloc(t.a, q, 8), q);
#else
    assert_ptr_equal(pk_realloc(t.a, q, BLOCK), q);
#endif
    assert_int_equal(pk_free(t.a, q), PK_OK);
    assert_null(pk_realloc(t.a, q, 8));
    assert_int_equal(rec.calls, 2);
    assert_int_equal(rec.e[1].kind, PK_ERR_DOUBLE_FREE);
    assert_int_equal(rec.e[1].lock_depth, 0);
    assert_int_equal(pk_free(t.a, p), PK_OK);
    pk_stats s = stats_of(t.a);
    assert_int_equal(s.failures, 3);
    assert_int_equal(s.rejected, 2);
    assert_int_equal(pk_check(t.a), PK_OK);
    assert_int_equal(lock_depth, 0);
    assert_true(lock_calls > 0);
    assert_int_equal(pk_pool_set_lock(&t.pool, NULL), PK_OK);
}

/* ------------------------------------------------------------------------- */
/* pk_calloc */

static void test_calloc_zeroed(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 4, 0);
    void *p[4];
    for (size_t i = 0; i < 4; i++) {
        p[i] = pk_alloc(t.a, BLOCK);
        assert_non_null(p[i]);
        memset(p[i], 0xab, BLOCK);
    }
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(pk_free(t.a, p[i]), PK_OK);
    }
    /* Each block is dirty now; calloc hands them back zeroed. */
    const size_t shapes[][2] = {{8, 8}, {1, BLOCK}, {BLOCK, 1}, {4, 16}};
    for (size_t i = 0; i < 4; i++) {
        unsigned char *z = pk_calloc(t.a, shapes[i][0], shapes[i][1]);
        assert_non_null(z);
        assert_true(aligned_to(z, PK_MAX_ALIGN));
        for (size_t k = 0; k < BLOCK; k++) {
            assert_int_equal(z[k], 0);
        }
        p[i] = z;
    }
    pk_stats s = stats_of(t.a);
    assert_int_equal(s.live, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(pk_free(t.a, p[i]), PK_OK);
    }
    /* A partial calloc zeroes at least what was asked. */
    unsigned char *d = pk_alloc(t.a, BLOCK);
    assert_non_null(d);
    memset(d, 0xcd, BLOCK);
    assert_int_equal(pk_free(t.a, d), PK_OK);
    unsigned char *z = pk_calloc(t.a, 3, 7);
    assert_ptr_equal(z, d); /* LIFO reuse: the block just dirtied */
    for (size_t k = 0; k < 21; k++) {
        assert_int_equal(z[k], 0);
    }
    assert_int_equal(pk_free(t.a, z), PK_OK);
    assert_int_equal(rec.calls, 0);
}

static void test_calloc_zero_sizes(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 4, 0);
    void *a = pk_calloc(t.a, 0, 10);
    void *b = pk_calloc(t.a, 10, 0);
    void *c = pk_calloc(t.a, 0, 0);
    void *d = pk_calloc(t.a, 0, SIZE_MAX);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(d);
    assert_ptr_not_equal(a, b);
    assert_ptr_not_equal(b, c);
    assert_ptr_not_equal(c, d);
    pk_stats s = stats_of(t.a);
    assert_int_equal(s.live, 4);
    assert_int_equal(s.failures, 0);
    assert_int_equal(pk_free(t.a, a), PK_OK);
    assert_int_equal(pk_free(t.a, b), PK_OK);
    assert_int_equal(pk_free(t.a, c), PK_OK);
    assert_int_equal(pk_free(t.a, d), PK_OK);
    assert_int_equal(rec.calls, 0);
}

static void test_calloc_overflow(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 4, 0);
    const size_t half = (size_t)1 << (sizeof(size_t) * CHAR_BIT / 2);
    const size_t pairs[][2] = {
        {SIZE_MAX, 2}, {2, SIZE_MAX}, {SIZE_MAX, SIZE_MAX}, {SIZE_MAX / 2 + 1, 2},
        {half, half},  {SIZE_MAX / 3 + 1, 3},
    };
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        pk_stats before = stats_of(t.a);
        assert_null(pk_calloc(t.a, pairs[k][0], pairs[k][1]));
        pk_stats after = stats_of(t.a);
        assert_int_equal(rec.calls, 0);
        assert_int_equal(after.rejected, before.rejected);
        assert_int_equal(after.live, before.live);
        assert_int_equal(after.allocs, before.allocs);
    }
    /* A product that just fits is only too large for the pool. */
    assert_null(pk_calloc(t.a, SIZE_MAX / 3, 3));
    assert_int_equal(rec.calls, 0);
}

/* An overflowing n * size is a failure (counted), not a fault. */
static void test_calloc_overflow_counts_failure(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 4, 0);
    pk_stats before = stats_of(t.a);
    assert_null(pk_calloc(t.a, SIZE_MAX, 2));
    pk_stats after = stats_of(t.a);
    assert_int_equal(after.failures, before.failures + 1);
    assert_int_equal(rec.calls, 0);
}

static void test_calloc_too_large(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 4, 0);
    const size_t pairs[][2] = {{BLOCK + 1, 1}, {1, BLOCK + 1}, {13, 5}, {2, BLOCK}, {SIZE_MAX, 1}};
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        pk_stats before = stats_of(t.a);
        assert_null(pk_calloc(t.a, pairs[k][0], pairs[k][1]));
        pk_stats after = stats_of(t.a);
        assert_int_equal(after.failures, before.failures + 1);
        after.failures = before.failures;
        assert_same_stats(&after, &before);
        assert_int_equal(rec.calls, 0);
    }
    void *p = pk_calloc(t.a, 2, BLOCK / 2);
    assert_non_null(p);
    assert_int_equal(pk_free(t.a, p), PK_OK);
}

/* ------------------------------------------------------------------------- */
/* pk_realloc on the pool (no realloc op: the generic fallback) */

static void test_realloc_null_allocates(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 4, 0);
    void *p = pk_realloc(t.a, NULL, 10);
    assert_non_null(p);
    assert_true(aligned_to(p, PK_MAX_ALIGN));
    pk_stats s = stats_of(t.a);
    assert_int_equal(s.allocs, 1);
    assert_int_equal(s.live, 1);
    void *z = pk_realloc(t.a, NULL, 0);
    assert_non_null(z); /* realloc(NULL, 0) allocates the smallest block */
    assert_ptr_not_equal(z, p);
    assert_null(pk_realloc(t.a, NULL, BLOCK + 1));
    s = stats_of(t.a);
    assert_int_equal(s.allocs, 2);
    assert_int_equal(s.failures, 1);
    assert_int_equal(rec.calls, 0);
    assert_int_equal(pk_free(t.a, p), PK_OK);
    assert_int_equal(pk_free(t.a, z), PK_OK);
}

static void test_realloc_zero_frees(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 4, 0);
    void *p = pk_alloc(t.a, 10);
    void *q = pk_alloc(t.a, 10);
    assert_non_null(p);
    assert_non_null(q);
    assert_null(pk_realloc(t.a, p, 0));
    pk_stats s = stats_of(t.a);
    assert_int_equal(s.frees, 1);
    assert_int_equal(s.live, 1);
    assert_int_equal(rec.calls, 0);
    /* p was freed: freeing it again is a double free. */
    assert_int_equal(pk_free(t.a, p), PK_ERR_DOUBLE_FREE);
    expect_one_fault(PK_ERR_DOUBLE_FREE, "pool", p);
    /* realloc(p, 0) on a block no longer live reports once, frees nothing. */
    pk_stats before = stats_of(t.a);
    assert_null(pk_realloc(t.a, p, 0));
    expect_one_fault(PK_ERR_DOUBLE_FREE, "pool", p);
    unsigned char local[8];
    assert_null(pk_realloc(t.a, local, 0));
    expect_one_fault(PK_ERR_FOREIGN_PTR, "pool", local);
    pk_stats after = stats_of(t.a);
    assert_int_equal(after.rejected, before.rejected + 2);
    after.rejected = before.rejected;
    assert_same_stats(&after, &before);
    assert_int_equal(pk_free(t.a, q), PK_OK);
    assert_int_equal(pk_check(t.a), PK_OK);
}

static void test_realloc_within_block(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 4, 0);
    unsigned char *p = pk_alloc(t.a, 10);
    assert_non_null(p);
    for (size_t k = 0; k < 10; k++) {
        p[k] = (unsigned char)(k + 1);
    }
    pk_stats before = stats_of(t.a);
#if PK_DEBUG
    /* Debug builds: the generic realloc moves a block whose size changes,
     * so that its rear guard follows the size; the same size keeps it. */
    assert_ptr_equal(pk_realloc(t.a, p, 10), p);
    p = pk_realloc(t.a, p, 11);
    assert_non_null(p);
    p = pk_realloc(t.a, p, BLOCK);
    assert_non_null(p);
    p = pk_realloc(t.a, p, 10); /* shrinking too */
    assert_non_null(p);
    assert_int_equal(pk_pool_usable_size(&t.pool, p), 10);
    pk_stats after = stats_of(t.a);
    assert_int_equal(after.live, before.live);
    assert_int_equal(after.allocs, before.allocs + 3);
    assert_int_equal(after.frees, before.frees + 3);
    for (size_t k = 0; k < 10; k++) {
        assert_int_equal(p[k], k + 1);
    }
    memset(p, 0x42, 10);
#else
    assert_ptr_equal(pk_realloc(t.a, p, 11), p);
    assert_ptr_equal(pk_realloc(t.a, p, BLOCK), p);
    assert_ptr_equal(pk_realloc(t.a, p, 1), p); /* shrinking too */
    pk_stats after = stats_of(t.a);
    assert_same_stats(&after, &before);
    for (size_t k = 0; k < 10; k++) {
        assert_int_equal(p[k], k + 1);
    }
    memset(p, 0x42, BLOCK);
#endif
    assert_int_equal(pk_free(t.a, p), PK_OK);
    assert_int_equal(rec.calls, 0);
}

static void test_realloc_beyond_block(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 4, 0);
    unsigned char *p = pk_alloc(t.a, BLOCK);
    assert_non_null(p);
    for (size_t k = 0; k < BLOCK; k++) {
        p[k] = (unsigned char)(k ^ 0x5a);
    }
    const size_t big[] = {BLOCK + 1, 4 * BLOCK, SIZE_MAX};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        pk_stats before = stats_of(t.a);
        assert_null(pk_realloc(t.a, p, big[i]));
        pk_stats after = stats_of(t.a);
        assert_int_equal(after.failures, before.failures + 1);
        after.failures = before.failures;
        assert_same_stats(&after, &before);
        assert_int_equal(rec.calls, 0);
        /* The old block is intact and live. */
        assert_int_equal(pk_pool_usable_size(&t.pool, p), BLOCK);
        for (size_t k = 0; k < BLOCK; k++) {
            assert_int_equal(p[k], (unsigned char)(k ^ 0x5a));
        }
    }
    assert_int_equal(pk_check(t.a), PK_OK);
    assert_int_equal(pk_free(t.a, p), PK_OK);
    assert_int_equal(rec.calls, 0);
}

static void test_realloc_bad_pointers(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t, BLOCK, 4, 0);
    unsigned char *live = pk_alloc(t.a, BLOCK);
    unsigned char *dead = pk_alloc(t.a, BLOCK);
    assert_non_null(live);
    assert_non_null(dead);
    memset(live, 0x3c, BLOCK);
    assert_int_equal(pk_free(t.a, dead), PK_OK);
    pk_stats before = stats_of(t.a);

    unsigned char foreign[BLOCK];
    memset(foreign, 0x99, sizeof foreign);
    assert_null(pk_realloc(t.a, foreign, 8));
    expect_one_fault(PK_ERR_FOREIGN_PTR, "pool", foreign);
    for (size_t k = 0; k < sizeof foreign; k++) {
        assert_int_equal(foreign[k], 0x99);
    }
    assert_null(pk_realloc(t.a, dead, 8));
    expect_one_fault(PK_ERR_DOUBLE_FREE, "pool", dead);
    assert_null(pk_realloc(t.a, dead, BLOCK + 1));
    expect_one_fault(PK_ERR_DOUBLE_FREE, "pool", dead);
    assert_null(pk_realloc(t.a, live + 8, 8));
    expect_one_fault(PK_ERR_MISALIGNED_PTR, "pool", live + 8);

    pk_stats after = stats_of(t.a);
    assert_int_equal(after.rejected, before.rejected + 4);
    after.rejected = before.rejected;
    assert_same_stats(&after, &before);
    for (size_t k = 0; k < BLOCK; k++) {
        assert_int_equal(live[k], 0x3c);
    }
    assert_int_equal(pk_check(t.a), PK_OK);
    /* Nothing lost: the pool still hands out all its free blocks. */
    void *more[3];
    for (size_t i = 0; i < 3; i++) {
        more[i] = pk_alloc(t.a, 1);
        assert_non_null(more[i]);
    }
    assert_null(pk_alloc(t.a, 1));
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(pk_free(t.a, more[i]), PK_OK);
    }
    assert_int_equal(pk_free(t.a, live), PK_OK);
    assert_int_equal(rec.calls, 0);
}

/* ------------------------------------------------------------------------- */
/* A user-defined allocator: four slots of 64 bytes, usable size = the request
 * rounded up to 8 (so that the fallback's copy length is observable). New
 * blocks are filled with 0xEE, freed ones with 0xDD. */

#define SLOTS 4
#define SLOT_BYTES 64
#define SLOT_ALIGN 16
#define NEW_FILL 0xee
#define FREED_FILL 0xdd

typedef struct {
    PK_ALIGNAS(SLOT_ALIGN) unsigned char mem[SLOTS][SLOT_BYTES];
    size_t req[SLOTS];
    bool live[SLOTS];
    const char *name;
    pk_status check_result;
    int n_alloc, n_free, n_realloc, n_stats, n_check, n_name, n_usable;
    size_t last_size, last_align;
    const void *last_free, *last_self, *last_realloc_ptr;
    uint64_t allocs, frees, failures, rejected;
    pk_allocator view;
} slots;

static int slot_index(const slots *s, const void *ptr)
{
    uintptr_t base = (uintptr_t)&s->mem[0][0];
    uintptr_t u = (uintptr_t)ptr;
    if (u < base || u >= base + sizeof s->mem) {
        return -1;
    }
    if ((u - base) % SLOT_BYTES != 0) {
        return -2;
    }
    return (int)((u - base) / SLOT_BYTES);
}

static void *slots_alloc_aligned(void *self, size_t size, size_t align)
{
    slots *s = self;
    s->n_alloc++;
    s->last_self = self;
    s->last_size = size;
    s->last_align = align;
    if (align != 0 && !pk__is_pow2(align)) {
        s->rejected++;
        (void)pk_report_fault(PK_ERR_INVALID_ARG, s->name, NULL);
        return NULL;
    }
    if (size > SLOT_BYTES || align > SLOT_ALIGN) {
        s->failures++;
        return NULL;
    }
    for (int i = 0; i < SLOTS; i++) {
        if (!s->live[i]) {
            s->live[i] = true;
            s->req[i] = size;
            memset(s->mem[i], NEW_FILL, SLOT_BYTES);
            s->allocs++;
            return s->mem[i];
        }
    }
    s->failures++;
    return NULL;
}

static pk_status slots_free(void *self, void *ptr)
{
    slots *s = self;
    s->n_free++;
    s->last_self = self;
    s->last_free = ptr;
    if (ptr == NULL) {
        return PK_OK;
    }
    int i = slot_index(s, ptr);
    pk_status st = i == -1 ? PK_ERR_FOREIGN_PTR
                 : i == -2 ? PK_ERR_MISALIGNED_PTR
                 : !s->live[i] ? PK_ERR_DOUBLE_FREE
                               : PK_OK;
    if (st != PK_OK) {
        s->rejected++;
        return pk_report_fault(st, s->name, ptr);
    }
    s->live[i] = false;
    memset(s->mem[i], FREED_FILL, SLOT_BYTES);
    s->frees++;
    return PK_OK;
}

static size_t slots_usable_size(const void *self, const void *ptr)
{
    slots *s = (slots *)(uintptr_t)self;
    s->n_usable++;
    int i = slot_index(s, ptr);
    if (i < 0 || !s->live[i]) {
        return 0;
    }
    size_t u = (s->req[i] + 7u) & ~(size_t)7u;
    return u == 0 ? 8 : u;
}

static void slots_stats(const void *self, pk_stats *out)
{
    slots *s = (slots *)(uintptr_t)self;
    s->n_stats++;
    memset(out, 0, sizeof *out);
    size_t live = 0;
    for (int i = 0; i < SLOTS; i++) {
        if (s->live[i]) {
            live++;
            out->requested += s->req[i];
        }
    }
    out->capacity = SLOTS * SLOT_BYTES;
    out->in_use = live * SLOT_BYTES;
    out->free_bytes = (SLOTS - live) * SLOT_BYTES;
    out->largest_free = live < SLOTS ? SLOT_BYTES : 0;
    out->block_size = SLOT_BYTES;
    out->live = live;
    out->allocs = s->allocs;
    out->frees = s->frees;
    out->failures = s->failures;
    out->rejected = s->rejected;
}

static pk_status slots_check(const void *self)
{
    slots *s = (slots *)(uintptr_t)self;
    s->n_check++;
    s->last_self = self;
    return s->check_result;
}

static const char *slots_name(const void *self)
{
    slots *s = (slots *)(uintptr_t)self;
    s->n_name++;
    s->last_self = self;
    return s->name;
}

/* A realloc op for the variant that has one: records, and serves in place. */
static void *slots_realloc(void *self, void *ptr, size_t size)
{
    slots *s = self;
    s->n_realloc++;
    s->last_realloc_ptr = ptr;
    s->last_size = size;
    int i = slot_index(s, ptr);
    if (i < 0 || !s->live[i] || size > SLOT_BYTES) {
        return NULL;
    }
    s->req[i] = size;
    return ptr;
}

static const pk_allocator_ops slots_ops = {
    slots_alloc_aligned, slots_free, NULL, slots_stats, slots_check, slots_name, slots_usable_size, NULL,
};

static const pk_allocator_ops slots_ops_with_realloc = {
    slots_alloc_aligned, slots_free, slots_realloc, slots_stats,
    slots_check,         slots_name, slots_usable_size, NULL,
};

static pk_allocator *slots_init(slots *s, const pk_allocator_ops *ops)
{
    memset(s, 0, sizeof *s);
    s->name = "slots";
    s->check_result = PK_OK;
    s->view.ops = ops;
    s->view.self = s;
    return &s->view;
}

static void test_user_dispatch(void **state)
{
    (void)state;
    slots s;
    pk_allocator *a = slots_init(&s, &slots_ops);

    assert_string_equal(pk_name(a), "slots");
    assert_int_equal(s.n_name, 1);
    assert_ptr_equal(s.last_self, &s);
    s.name = "renamed";
    assert_string_equal(pk_name(a), "renamed");
    s.name = "slots";

    void *p = pk_alloc(a, 20);
    assert_ptr_equal(p, s.mem[0]);
    assert_int_equal(s.n_alloc, 1);
    assert_int_equal(s.last_size, 20);
    assert_int_equal(s.last_align, 0);
    void *q = pk_alloc_aligned(a, 5, 16);
    assert_ptr_equal(q, s.mem[1]);
    assert_int_equal(s.n_alloc, 2);
    assert_int_equal(s.last_size, 5);
    assert_int_equal(s.last_align, 16);
    assert_null(pk_alloc_aligned(a, 5, 32));
    assert_int_equal(s.last_align, 32);
    assert_int_equal(rec.calls, 0);
    assert_null(pk_alloc_aligned(a, 5, 24));
    expect_one_fault(PK_ERR_INVALID_ARG, "slots", NULL);

    pk_stats st;
    pk_stats_get(a, &st);
    assert_int_equal(s.n_stats, 1);
    assert_int_equal(st.live, 2);
    assert_int_equal(st.requested, 25);
    assert_int_equal(st.allocs, 2);
    assert_int_equal(st.failures, 1);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.capacity, SLOTS * SLOT_BYTES);

    assert_int_equal(pk_check(a), PK_OK);
    assert_int_equal(s.n_check, 1);
    s.check_result = PK_ERR_CORRUPT;
    assert_int_equal(pk_check(a), PK_ERR_CORRUPT);
    assert_int_equal(s.n_check, 2);
    s.check_result = PK_OK;

    assert_int_equal(pk_free(a, p), PK_OK);
    assert_int_equal(s.n_free, 1);
    assert_ptr_equal(s.last_free, p);
    assert_false(s.live[0]);
    assert_int_equal(pk_free(a, p), PK_ERR_DOUBLE_FREE);
    expect_one_fault(PK_ERR_DOUBLE_FREE, "slots", p);
    assert_int_equal(s.n_free, 2);
    assert_int_equal(pk_free(a, NULL), PK_OK);
    assert_int_equal(s.n_free, 3);
    assert_ptr_equal(s.last_free, NULL);
    assert_int_equal(pk_free(a, q), PK_OK);
    assert_int_equal(rec.calls, 0);
    assert_int_equal(s.n_realloc, 0);
}

static void test_user_calloc(void **state)
{
    (void)state;
    slots s;
    pk_allocator *a = slots_init(&s, &slots_ops);
    unsigned char *p = pk_calloc(a, 3, 5);
    assert_ptr_equal(p, s.mem[0]);
    assert_int_equal(s.last_size, 15);
    assert_int_equal(s.last_align, 0);
    for (size_t k = 0; k < 15; k++) {
        assert_int_equal(p[k], 0);
    }
    /* Overflow reaches the allocator as a request too large to serve, so
     * that it counts the failure. */
    int calls = s.n_alloc;
    assert_null(pk_calloc(a, SIZE_MAX, 3));
    assert_int_equal(s.n_alloc, calls + 1);
    assert_int_equal(s.last_size, SIZE_MAX);
    assert_int_equal(s.failures, 1);
    assert_int_equal(rec.calls, 0);
    /* Too large for it: its failure. */
    assert_null(pk_calloc(a, 5, 13));
    assert_int_equal(s.n_alloc, calls + 2);
    assert_int_equal(s.last_size, 65);
    assert_int_equal(s.failures, 2);
    assert_int_equal(pk_free(a, p), PK_OK);
}

static void test_user_realloc_fallback(void **state)
{
    (void)state;
    slots s;
    pk_allocator *a = slots_init(&s, &slots_ops);

    /* realloc(NULL, n) allocates. */
    unsigned char *p = pk_realloc(a, NULL, 10);
    assert_ptr_equal(p, s.mem[0]);
    assert_int_equal(s.n_alloc, 1);
    assert_int_equal(s.last_size, 10);
    assert_int_equal(s.last_align, 0);
    /* Fill the whole slot, beyond the usable size (16). */
    for (size_t k = 0; k < SLOT_BYTES; k++) {
        p[k] = (unsigned char)(k + 1);
    }

    /* Within the usable size: same pointer, no alloc, no free. (Debug builds
     * keep the block only when the size is the same, so that poolkit's own
     * blocks get their rear guard right after the new size.) */
    assert_ptr_equal(pk_realloc(a, p, 16), p);
#if !PK_DEBUG
    assert_ptr_equal(pk_realloc(a, p, 3), p);
#endif
    assert_int_equal(s.n_alloc, 1);
    assert_int_equal(s.n_free, 0);

    /* Beyond it: alloc + copy of exactly usable_size bytes + free. */
    unsigned char *q = pk_realloc(a, p, 40);
    assert_ptr_equal(q, s.mem[1]);
    assert_int_equal(s.n_alloc, 2);
    assert_int_equal(s.last_size, 40);
    assert_int_equal(s.last_align, 0);
    assert_int_equal(s.n_free, 1);
    assert_ptr_equal(s.last_free, p);
    assert_false(s.live[0]);
    assert_true(s.live[1]);
    for (size_t k = 0; k < 16; k++) {
        assert_int_equal(q[k], k + 1);
    }
    for (size_t k = 16; k < SLOT_BYTES; k++) {
        assert_int_equal(q[k], NEW_FILL);
    }
    /* p's slot was freed by the allocator's own free. */
    for (size_t k = 0; k < SLOT_BYTES; k++) {
        assert_int_equal(p[k], FREED_FILL);
    }
    assert_int_equal(rec.calls, 0);

    /* realloc(q, 0) frees. */
    int frees = s.n_free;
    assert_null(pk_realloc(a, q, 0));
    assert_int_equal(s.n_free, frees + 1);
    assert_ptr_equal(s.last_free, q);
    assert_false(s.live[1]);
    assert_int_equal(rec.calls, 0);
    assert_int_equal(s.n_realloc, 0);
}

static void test_user_realloc_fallback_failure(void **state)
{
    (void)state;
    slots s;
    pk_allocator *a = slots_init(&s, &slots_ops);
    unsigned char *b[SLOTS];
    for (int i = 0; i < SLOTS; i++) {
        b[i] = pk_alloc(a, 8);
        assert_non_null(b[i]);
        memset(b[i], 0x10 + i, SLOT_BYTES);
    }
    /* No room for the new block: NULL, the old one untouched and live. */
    int allocs = s.n_alloc, frees = s.n_free;
    assert_null(pk_realloc(a, b[0], 32));
    assert_int_equal(s.n_alloc, allocs + 1);
    assert_int_equal(s.n_free, frees);
    assert_true(s.live[0]);
    for (size_t k = 0; k < SLOT_BYTES; k++) {
        assert_int_equal(b[0][k], 0x10);
    }
    /* Too large for any block. */
    assert_int_equal(pk_free(a, b[3]), PK_OK);
    frees = s.n_free;
    assert_null(pk_realloc(a, b[0], SLOT_BYTES + 1));
    assert_int_equal(s.n_free, frees);
    assert_true(s.live[0]);
    assert_false(s.live[3]);
    assert_int_equal(rec.calls, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pk_free(a, b[i]), PK_OK);
    }
}

static void test_user_realloc_fallback_bad_pointers(void **state)
{
    (void)state;
    slots s;
    pk_allocator *a = slots_init(&s, &slots_ops);
    void *p = pk_alloc(a, 8);
    void *dead = pk_alloc(a, 8);
    assert_int_equal(pk_free(a, dead), PK_OK);
    int allocs = s.n_alloc, frees = s.n_free;

    /* Not live: reported as its free reports it, once; nothing allocated. */
    assert_null(pk_realloc(a, dead, 40));
    expect_one_fault(PK_ERR_DOUBLE_FREE, "slots", dead);
    assert_int_equal(s.n_alloc, allocs);
    assert_int_equal(s.n_free, frees + 1);
    unsigned char foreign[16];
    assert_null(pk_realloc(a, foreign, 4));
    expect_one_fault(PK_ERR_FOREIGN_PTR, "slots", foreign);
    assert_null(pk_realloc(a, (unsigned char *)p + 4, 4));
    expect_one_fault(PK_ERR_MISALIGNED_PTR, "slots", (unsigned char *)p + 4);
    assert_int_equal(s.n_alloc, allocs);
    assert_true(s.live[0]);
    assert_false(s.live[1]);
    assert_int_equal(s.allocs, 2);
    assert_int_equal(s.frees, 1);
    assert_int_equal(s.rejected, 3);
    assert_int_equal(pk_free(a, p), PK_OK);
}

static void test_user_realloc_op_used(void **state)
{
    (void)state;
    slots s;
    pk_allocator *a = slots_init(&s, &slots_ops_with_realloc);
    void *p = pk_alloc(a, 8);
    assert_non_null(p);
    int allocs = s.n_alloc, frees = s.n_free, usable = s.n_usable;
    assert_ptr_equal(pk_realloc(a, p, 48), p);
    assert_int_equal(s.n_realloc, 1);
    assert_ptr_equal(s.last_realloc_ptr, p);
    assert_int_equal(s.last_size, 48);
    assert_int_equal(s.req[0], 48);
    /* Its failure is returned as is. */
    assert_null(pk_realloc(a, p, SLOT_BYTES + 1));
    assert_int_equal(s.n_realloc, 2);
    assert_int_equal(s.n_alloc, allocs);
    assert_int_equal(s.n_free, frees);
    assert_int_equal(s.n_usable, usable);
    assert_true(s.live[0]);
    assert_int_equal(rec.calls, 0);
    /* NULL and 0 keep their meanings. */
    void *q = pk_realloc(a, NULL, 4);
    assert_ptr_equal(q, s.mem[1]);
    assert_null(pk_realloc(a, q, 0));
    assert_false(s.live[1]);
    assert_int_equal(pk_free(a, p), PK_OK);
}

/* ------------------------------------------------------------------------- */

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown_recorder)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_view_identity),
        T(test_name),
        T(test_alloc_default_alignment),
        T(test_alloc_aligned_up_to_pool_align),
        T(test_alloc_aligned_above_pool_align),
        T(test_alloc_aligned_not_pow2),
        T(test_alloc_too_large),
        T(test_alloc_size_zero),
        T(test_alloc_exhaustion),
        T(test_free_misuse),
        T(test_stats_and_check),
        T(test_view_with_lock),
        T(test_calloc_zeroed),
        T(test_calloc_zero_sizes),
        T(test_calloc_overflow),
        T(test_calloc_overflow_counts_failure),
        T(test_calloc_too_large),
        T(test_realloc_null_allocates),
        T(test_realloc_zero_frees),
        T(test_realloc_within_block),
        T(test_realloc_beyond_block),
        T(test_realloc_bad_pointers),
        T(test_realloc_empty_block),
        T(test_user_dispatch),
        T(test_user_calloc),
        T(test_user_realloc_fallback),
        T(test_user_realloc_fallback_failure),
        T(test_user_realloc_fallback_bad_pointers),
        T(test_user_realloc_op_used),
    };
    return cmocka_run_group_tests_name("allocator", tests, NULL, NULL);
}
