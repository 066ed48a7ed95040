/* Unit tests of the fixed-size block pool (poolkit/pool.h). */
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
#include "poolkit/pool.h"
#include "poolkit/pthread_lock.h"

static void assert_check_ok(const pk_pool *p)
{
    unsigned before = faults.calls;
    assert_int_equal(pk_pool_check(p), PK_OK);
    assert_int_equal(faults.calls, before);
}

static void assert_check_corrupt(const pk_pool *p)
{
    faults.calls = 0;
    assert_int_equal(pk_pool_check(p), PK_ERR_CORRUPT);
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, PK_ERR_CORRUPT);
    faults.calls = 0;
}

/* Debug builds: blocks also hold a tag and guards; the 512 descriptors of
 * test_random_descriptors need 128 KiB then. */
static _Alignas(4096) unsigned char arena[PK_DEBUG ? 1 << 18 : 1 << 16];

#if PK_DEBUG
/* The start of the block holding ptr, where the pool keeps a free block's
 * link (in release builds, the pointer handed out; in debug builds that lies
 * after the block's tag and front guard). */
static unsigned char *block_start(const pk_pool *p, const void *ptr)
{
    size_t offset = (size_t)((uintptr_t)ptr - (uintptr_t)p->base);
    return p->base + offset / p->stride * p->stride;
}
#endif

/* Init: argument checks. */

static void test_init_rejects_bad_arguments(void **state)
{
    (void)state;
    pk_pool p;
    memset(&p, 0x5A, sizeof p);
    pk_pool untouched = p;
    assert_int_equal(pk_pool_init(NULL, arena, sizeof arena, 64, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_pool_init(&p, NULL, sizeof arena, 64, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_pool_init(&p, arena, sizeof arena, 0, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_pool_init(&p, arena, sizeof arena, 64, 3), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_pool_init(&p, arena, sizeof arena, 64, 24), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_pool_init(&p, arena, sizeof arena, 64, SIZE_MAX), PK_ERR_INVALID_ARG);
    /* Strides whose arithmetic overflows. */
    assert_int_equal(pk_pool_init(&p, arena, sizeof arena, SIZE_MAX, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_pool_init(&p, arena, sizeof arena, SIZE_MAX - 3, 8), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_pool_init(&p, arena, sizeof arena, SIZE_MAX / 2 + 1, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_pool_init(&p, arena, sizeof arena, 64, (SIZE_MAX >> 1) + 1), PK_ERR_INVALID_ARG);
    /* Buffers too small for one block and its usage byte. */
    assert_int_equal(pk_pool_init(&p, arena, 0, 64, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_pool_init(&p, arena, PK_POOL_BUFFER_SIZE(64, 1, 0) - 1, 64, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_pool_init(&p, arena, 64, 64, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_pool_init(&p, arena, 15, 64, 16), PK_ERR_INVALID_ARG);
    /* A buffer size near SIZE_MAX must not wrap the layout arithmetic. */
    assert_int_equal(pk_pool_init(&p, arena, 10, SIZE_MAX / 4, 0), PK_ERR_INVALID_ARG);
    assert_memory_equal(&p, &untouched, sizeof p);
    assert_int_equal(faults.calls, 0); /* init failures do not call the handler */
}

/* The capacity depends on the buffer size only, never on its address, and
 * PK_POOL_BUFFER_SIZE(bs, n, a) bytes hold exactly n blocks. */
static void test_buffer_size_gives_exact_capacity(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 3, 7, 8, 12, 16, 24, 33, 64, 100, 256, 1000};
    static const size_t aligns[] = {0, 1, 2, 4, 8, 16, 64, 256};
    static const size_t counts[] = {1, 2, 7, 63, 64, 65, 100};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        for (size_t ai = 0; ai < sizeof aligns / sizeof *aligns; ai++) {
            for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++) {
                size_t bs = sizes[si], align = aligns[ai], n = counts[ci];
                size_t need = PK_POOL_BUFFER_SIZE(bs, n, align);
                if (need > sizeof arena - 300) {
                    continue;
                }
                for (size_t shift = 0; shift < 17; shift += 5) {
                    pk_pool p;
                    assert_int_equal(pk_pool_init(&p, arena + shift, need, bs, align), PK_OK);
                    assert_int_equal(pk_pool_capacity(&p), n);
                    if (n > 1) {
                        assert_int_equal(pk_pool_init(&p, arena + shift, need - 1, bs, align), PK_OK);
                        assert_int_equal(pk_pool_capacity(&p), n - 1);
                    }
                }
            }
        }
    }
}

/* Every block of a full pool: distinct, aligned, inside the buffer, writable
 * in full without harming the metadata, then NULL as a failure. */
static void fill_pool(size_t bs, size_t align, size_t n, size_t offset)
{
    size_t size = PK_POOL_BUFFER_SIZE(bs, n, align);
    unsigned char *buf = arena + offset;
    assert_true(offset + size <= sizeof arena);
    pk_driver_fill_garbage(buf, size, bs * 31 + n);
    pk_pool p;
    assert_int_equal(pk_pool_init(&p, buf, size, bs, align), PK_OK);
    size_t want_align = align != 0 ? align : _Alignof(max_align_t);
    unsigned char *blocks[128];
    assert_true(n <= 128);
    for (size_t i = 0; i < n; i++) {
        blocks[i] = pk_pool_alloc(&p);
        assert_non_null(blocks[i]);
        assert_int_equal((uintptr_t)blocks[i] % want_align, 0);
        assert_true(blocks[i] >= buf && blocks[i] + bs <= buf + size);
        assert_true(pk_pool_owns(&p, blocks[i]));
        assert_true(pk_pool_owns(&p, blocks[i] + bs - 1));
        assert_int_equal(pk_pool_usable_size(&p, blocks[i]), bs);
        memset(blocks[i], (int)(0xA0 + i), bs);
        for (size_t j = 0; j < i; j++) {
            assert_true(blocks[j] + bs <= blocks[i] || blocks[i] + bs <= blocks[j]);
        }
    }
    assert_null(pk_pool_alloc(&p));
    assert_int_equal(pk_pool_available(&p), 0);
    assert_check_ok(&p);
    pk_stats s;
    pk_pool_stats(&p, &s);
    assert_int_equal(s.failures, 1);
    assert_int_equal(s.live, n);
    assert_int_equal(s.peak_live, n);
    assert_int_equal(s.in_use, n * bs);
    assert_int_equal(s.largest_free, 0);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < bs; k++) {
            assert_int_equal(blocks[i][k], (unsigned char)(0xA0 + i));
        }
        assert_int_equal(pk_pool_free(&p, blocks[i]), PK_OK);
    }
    assert_int_equal(pk_pool_available(&p), n);
    assert_check_ok(&p);
    assert_int_equal(faults.calls, 0);
}

static void test_alloc_every_block(void **state)
{
    (void)state;
    fill_pool(1, 1, 5, 3);
    fill_pool(3, 0, 64, 1);
    fill_pool(8, 8, 65, 0);
    fill_pool(24, 8, 100, 5);
    fill_pool(64, 64, 128, 7);
    fill_pool(100, 4, 33, 2);
    fill_pool(200, 4096, 3, 1);
}

static void test_stats_and_reuse(void **state)
{
    (void)state;
    pk_pool p;
    assert_int_equal(pk_pool_init(&p, arena, PK_POOL_BUFFER_SIZE(48, 10, 16), 48, 16), PK_OK);
    pk_stats s;
    pk_pool_stats(&p, &s);
    assert_int_equal(s.capacity, 480);
    assert_int_equal(s.block_size, 48);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.free_bytes, 480);
    assert_int_equal(s.largest_free, 48);
    assert_int_equal(s.live, 0);
    assert_true(pk_frag_external(&s) == 0.0);

    void *a = pk_pool_alloc(&p);
    void *b = pk_pool_alloc(&p);
    void *c = pk_pool_alloc(&p);
    assert_int_equal(pk_pool_available(&p), 7);
    assert_int_equal(pk_pool_free(&p, b), PK_OK);
#if PK_DEBUG
    /* Debug builds: b waits in the quarantine; a fresh block is handed out. */
    b = pk_pool_alloc(&p);
    assert_non_null(b);
#else
    assert_ptr_equal(pk_pool_alloc(&p), b); /* LIFO: the warmest block first */
#endif
    assert_int_equal(pk_pool_free(&p, a), PK_OK);
    assert_int_equal(pk_pool_free(&p, c), PK_OK);
    pk_pool_stats(&p, &s);
    assert_int_equal(s.allocs, 4);
    assert_int_equal(s.frees, 3);
    assert_int_equal(s.live, 1);
    assert_int_equal(s.peak_live, 3);
    assert_int_equal(s.in_use, 48);
    assert_int_equal(s.requested, 48);
    assert_int_equal(s.peak_in_use, 144);
    assert_int_equal(s.free_bytes, 432);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.rejected, 0);
    assert_true(pk_frag_internal(&s) == 0.0);
    assert_int_equal(pk_pool_free(&p, b), PK_OK);
    assert_check_ok(&p);
}

/* Misuse: each bad free is reported once, returned, and changes nothing. */
static void test_misuse_through_the_driver(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 8, 24, 64, 100};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        pk_pool p;
        size_t size = PK_POOL_BUFFER_SIZE(sizes[i], 20, 0);
        assert_int_equal(pk_pool_init(&p, arena + 1, size, sizes[i], 0), PK_OK);
        pk_misuse_config cfg = {arena + 1, size, sizes[i],
                                sizes[i] > 1, sizes[i] >= sizeof(void *) ? 20 : 0, NULL, NULL, false};
        assert_int_equal(pk_driver_misuse(pk_pool_allocator(&p), &cfg), 0);
        pk_set_fault_handler(count_fault, NULL);
        assert_check_ok(&p);
    }
}

static void test_misuse_cases(void **state)
{
    (void)state;
    pk_pool p;
    /* 10-byte blocks aligned to 16: 6 bytes of padding after each block. */
    assert_int_equal(pk_pool_init(&p, arena, PK_POOL_BUFFER_SIZE(10, 8, 16), 10, 16), PK_OK);
    pk_pool_set_name(&p, "descriptors");
    unsigned char *a = pk_pool_alloc(&p);
    unsigned char *b = pk_pool_alloc(&p);
    pk_stats before;
    pk_pool_stats(&p, &before);
    /* The stride and block 0's start (debug builds: a larger stride, tag and
     * guards included, and a after them). */
#if PK_DEBUG
    size_t step = p.stride;
    unsigned char *start = block_start(&p, a);
#else
    size_t step = 16;
    unsigned char *start = a;
#endif

    assert_int_equal(pk_pool_free(&p, a + 12), PK_ERR_MISALIGNED_PTR); /* in the padding */
    expect_fault_named(PK_ERR_MISALIGNED_PTR, a + 12, "descriptors");
    assert_int_equal(pk_pool_free(&p, a + step * 5), PK_ERR_DOUBLE_FREE); /* never handed out */
    expect_fault_named(PK_ERR_DOUBLE_FREE, a + step * 5, "descriptors");
    assert_int_equal(pk_pool_free(&p, start - 16), PK_ERR_FOREIGN_PTR);
    expect_fault_named(PK_ERR_FOREIGN_PTR, start - 16, "descriptors");
    assert_int_equal(pk_pool_free(&p, start + step * 8), PK_ERR_FOREIGN_PTR); /* just past the blocks */
    expect_fault_named(PK_ERR_FOREIGN_PTR, start + step * 8, "descriptors");
    assert_int_equal(pk_pool_free(&p, (void *)(uintptr_t)1), PK_ERR_FOREIGN_PTR);
    expect_fault_named(PK_ERR_FOREIGN_PTR, (void *)(uintptr_t)1, "descriptors");
    assert_int_equal(pk_pool_free(&p, (void *)UINTPTR_MAX), PK_ERR_FOREIGN_PTR);
    expect_fault_named(PK_ERR_FOREIGN_PTR, (void *)UINTPTR_MAX, "descriptors");
    assert_int_equal(pk_pool_free(&p, NULL), PK_OK);
    assert_int_equal(faults.calls, 0);

    pk_stats after;
    pk_pool_stats(&p, &after);
    assert_int_equal(after.rejected, before.rejected + 6);
    after.rejected = before.rejected;
    assert_memory_equal(&before, &after, sizeof before);
    assert_check_ok(&p);
    assert_int_equal(pk_pool_usable_size(&p, a + 1), 0);
    assert_int_equal(pk_pool_usable_size(&p, start - 16), 0);
    assert_false(pk_pool_owns(&p, start - 1));
    assert_true(pk_pool_owns(&p, a + 12));
    assert_false(pk_pool_owns(&p, start + step * 8));

    assert_int_equal(pk_pool_free(&p, b), PK_OK);
    assert_int_equal(pk_pool_usable_size(&p, b), 0);
    assert_int_equal(pk_pool_free(&p, b), PK_ERR_DOUBLE_FREE);
    expect_fault_named(PK_ERR_DOUBLE_FREE, b, "descriptors");
    assert_int_equal(pk_pool_free(&p, a), PK_OK);
    /* The pool is whole: every block can still be had. */
    for (size_t i = 0; i < 8; i++) {
        assert_non_null(pk_pool_alloc(&p));
    }
    assert_null(pk_pool_alloc(&p));
    assert_check_ok(&p);
    pk_pool_set_name(&p, NULL);
    assert_string_equal(pk_name(pk_pool_allocator(&p)), "pool");
}

/* Interior pointers at every offset of several strides are rejected, and the
 * exact-division test agrees with a plain division. */
static void test_every_interior_offset_rejected(void **state)
{
    (void)state;
    static const size_t sizes[] = {8, 12, 24, 40, 48, 56, 72, 96, 100, 120, 192, 1000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t bs = sizes[i];
        pk_pool p;
        assert_int_equal(pk_pool_init(&p, arena, PK_POOL_BUFFER_SIZE(bs, 6, 4), bs, 4), PK_OK);
        unsigned char *first = pk_pool_alloc(&p);
        for (size_t k = 1; k < 6; k++) {
            assert_non_null(pk_pool_alloc(&p));
        }
#if PK_DEBUG
        /* Debug builds: every byte of the blocks but the pointers handed
         * out, from block 0's start (its tag and guards included). */
        size_t user_at = (size_t)(first - p.base);
        first = p.base;
        for (size_t offset = 0; offset < 6 * p.stride; offset++) {
            if (offset % p.stride == user_at) {
                continue;
            }
#else
        for (size_t offset = 1; offset < 6 * p.stride; offset++) {
            if (offset % p.stride == 0) {
                continue;
            }
#endif
            assert_int_equal(pk_pool_free(&p, first + offset), PK_ERR_MISALIGNED_PTR);
            expect_fault_named(PK_ERR_MISALIGNED_PTR, first + offset, "pool");
        }
        assert_check_ok(&p);
    }
}

/* Corruption: check must find each kind of damage, and repair nothing. */

typedef struct {
    pk_pool p;
    unsigned char *blocks[8];
} damaged_pool;

/* A pool of 8 blocks: 0..5 carved, 1, 3 and 4 free (on the list 4 -> 3 -> 1). */
static void make_damaged_pool(damaged_pool *d)
{
    assert_int_equal(pk_pool_init(&d->p, arena, PK_POOL_BUFFER_SIZE(32, 8, 0), 32, 0), PK_OK);
    for (size_t i = 0; i < 6; i++) {
        d->blocks[i] = pk_pool_alloc(&d->p);
    }
    assert_int_equal(pk_pool_free(&d->p, d->blocks[1]), PK_OK);
    assert_int_equal(pk_pool_free(&d->p, d->blocks[3]), PK_OK);
    assert_int_equal(pk_pool_free(&d->p, d->blocks[4]), PK_OK);
#if PK_DEBUG
    /* Debug builds: 1, 3 and 4 wait in the quarantine. Freeing 0, 2 and 5
     * too empties the pool, and so the quarantine, onto the free list in
     * FIFO order (1, 3, 4, 0, 2, 5); taking 5, 2 and 0 back leaves the same
     * state as above: the list 4 -> 3 -> 1. */
    assert_int_equal(pk_pool_free(&d->p, d->blocks[0]), PK_OK);
    assert_int_equal(pk_pool_free(&d->p, d->blocks[2]), PK_OK);
    assert_int_equal(pk_pool_free(&d->p, d->blocks[5]), PK_OK);
    assert_ptr_equal(pk_pool_alloc(&d->p), d->blocks[5]);
    assert_ptr_equal(pk_pool_alloc(&d->p), d->blocks[2]);
    assert_ptr_equal(pk_pool_alloc(&d->p), d->blocks[0]);
    for (size_t i = 0; i < 6; i++) {
        d->blocks[i] = block_start(&d->p, d->blocks[i]); /* where the links are */
    }
#endif
    assert_check_ok(&d->p);
}

static void store_index(void *block, size_t index)
{
    memcpy(block, &index, sizeof index);
}

static void test_check_finds_usage_map_damage(void **state)
{
    (void)state;
    damaged_pool d;
    make_damaged_pool(&d);
    d.p.usage[3] = PK_POOL_LIVE; /* a free block marked live */
    assert_check_corrupt(&d.p);
    d.p.usage[3] = PK_POOL_FREE;
    assert_check_ok(&d.p);
    d.p.usage[0] = PK_POOL_FREE; /* a live block marked free */
    assert_check_corrupt(&d.p);
    d.p.usage[0] = 0x5A; /* not a usage value at all */
    assert_check_corrupt(&d.p);
    d.p.usage[0] = PK_POOL_LIVE;
    assert_check_ok(&d.p);
}

static void test_check_finds_free_list_damage(void **state)
{
    (void)state;
    damaged_pool d;
    make_damaged_pool(&d);
    store_index(d.blocks[3], 3); /* a cycle: 4 -> 3 -> 3 -> ... */
    assert_check_corrupt(&d.p);
    store_index(d.blocks[3], 4); /* a longer cycle: 4 -> 3 -> 4 */
    assert_check_corrupt(&d.p);
    store_index(d.blocks[3], 100); /* a link outside the buffer */
    assert_check_corrupt(&d.p);
    store_index(d.blocks[3], 0); /* a link to a live block */
    assert_check_corrupt(&d.p);
    store_index(d.blocks[3], PK_POOL_NONE); /* a truncated list: block 1 lost */
    assert_check_corrupt(&d.p);
    store_index(d.blocks[3], 1);
    assert_check_ok(&d.p);
    d.p.free_head = 7; /* the head beyond the carved blocks */
    assert_check_corrupt(&d.p);
    d.p.free_head = 4;
    assert_check_ok(&d.p);
}

static void test_check_finds_counter_damage(void **state)
{
    (void)state;
    damaged_pool d;
    make_damaged_pool(&d);
    d.p.allocs++; /* live no longer matches the usage map */
    assert_check_corrupt(&d.p);
    d.p.allocs--;
    d.p.carved = 9; /* more carved than the pool holds */
    assert_check_corrupt(&d.p);
    d.p.carved = 6;
    d.p.fast_limit = 5;
    assert_check_corrupt(&d.p);
#if PK_DEBUG
    d.p.fast_limit = 0; /* debug builds have no fast path */
#else
    d.p.fast_limit = 6;
#endif
    d.p.draws++;
    assert_check_corrupt(&d.p);
    d.p.draws--;
    assert_check_ok(&d.p);
}

/* A client writes into a freed block: the damaged link is found at alloc,
 * reported once, the free list rebuilt, and nothing is lost. */
static void test_alloc_survives_overwritten_link(void **state)
{
    (void)state;
    static const size_t wild_links[] = {0, 2, 5, 1000, PK_POOL_NONE - 1};
    for (size_t w = 0; w < sizeof wild_links / sizeof *wild_links; w++) {
        damaged_pool d;
        make_damaged_pool(&d);
        /* Block 4 heads the list; overwrite the link of the block behind it. */
        store_index(d.blocks[3], wild_links[w]);
        unsigned char *got[8];
        size_t n = 0;
        size_t nulls = 0;
        for (size_t tries = 0; tries < 12 && n < 5; tries++) {
            unsigned char *b = pk_pool_alloc(&d.p);
            if (b == NULL) {
                nulls++;
                continue;
            }
            for (size_t k = 0; k < n; k++) {
                assert_ptr_not_equal(got[k], b); /* never handed out twice */
            }
            got[n++] = b;
        }
        /* 3 free + 2 never carved = 5 blocks, all still to be had. */
        assert_int_equal(n, 5);
        assert_int_equal(nulls, faults.calls);
        if (faults.calls != 0) {
            assert_int_equal(faults.last.kind, PK_ERR_CORRUPT);
        }
        assert_null(pk_pool_alloc(&d.p));
        faults.calls = 0;
        assert_check_ok(&d.p);
    }
}

/* reset_peaks walks the free list to its tail: a link damaged by a write
 * after free (a small integer: a live block's index) must not make it write
 * into that live block (found by review). */
static void test_reset_peaks_survives_overwritten_link(void **state)
{
    (void)state;
    pk_pool p;
#if PK_DEBUG
    /* Debug builds: c would wait in the quarantine. PK_QUARANTINE_SIZE more
     * blocks freed after it push it out onto the free list; they stay
     * quarantined (live to the pool, free to the clients). */
    assert_int_equal(pk_pool_init(&p, arena, PK_POOL_BUFFER_SIZE(32, 4 + PK_QUARANTINE_SIZE, 0), 32, 0), PK_OK);
    unsigned char *a = pk_pool_alloc(&p);
    unsigned char *b = pk_pool_alloc(&p);
    unsigned char *c = pk_pool_alloc(&p);
    unsigned char *held[PK_QUARANTINE_SIZE + 1];
    for (size_t i = 0; i < PK_QUARANTINE_SIZE; i++) {
        held[i] = pk_pool_alloc(&p);
    }
    memset(a, 0x41, 32);
    assert_int_equal(pk_pool_free(&p, c), PK_OK);
    for (size_t i = 0; i < PK_QUARANTINE_SIZE; i++) {
        assert_int_equal(pk_pool_free(&p, held[i]), PK_OK);
    }
    c = block_start(&p, c); /* its link */
#else
    assert_int_equal(pk_pool_init(&p, arena, PK_POOL_BUFFER_SIZE(32, 4, 0), 32, 0), PK_OK);
    unsigned char *a = pk_pool_alloc(&p);
    unsigned char *b = pk_pool_alloc(&p);
    unsigned char *c = pk_pool_alloc(&p);
    memset(a, 0x41, 32);
    assert_int_equal(pk_pool_free(&p, c), PK_OK);
#endif
    store_index(c, 0); /* c's link now names a, which is live */
    pk_pool_reset_peaks(&p);
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, PK_ERR_CORRUPT);
    faults.calls = 0;
    for (size_t i = 0; i < 32; i++) {
        assert_int_equal(a[i], 0x41);
    }
    assert_check_ok(&p);
    pk_stats s;
    pk_pool_stats(&p, &s);
    assert_int_equal(s.peak_live, 2);
    /* Nothing lost: c and the uncarved block are still to be had. */
    void *x = pk_pool_alloc(&p);
    void *y = pk_pool_alloc(&p);
    assert_non_null(x);
    assert_non_null(y);
#if PK_DEBUG
    /* ... and then the quarantined ones (the quarantine never causes a NULL). */
    for (size_t i = 0; i < PK_QUARANTINE_SIZE; i++) {
        assert_non_null(pk_pool_alloc(&p));
    }
#endif
    assert_null(pk_pool_alloc(&p));
    assert_int_equal(faults.calls, 0);
    (void)b;
}

/* Peaks: exact against a model, across resets and a rebuild. */
static void test_peaks_follow_a_model(void **state)
{
    (void)state;
    pk_pool p;
    assert_int_equal(pk_pool_init(&p, arena, PK_POOL_BUFFER_SIZE(16, 64, 0), 16, 0), PK_OK);
    void *live[64];
    size_t n = 0, peak = 0;
    uint64_t rng = 42;
    for (unsigned op = 0; op < 20000; op++) {
        uint64_t r = pk_driver_next_random(&rng) % 100;
        if (r < 2) {
            pk_pool_reset_peaks(&p);
            peak = n;
        } else if (r < 52 && n < 64) {
            live[n] = pk_pool_alloc(&p);
            assert_non_null(live[n]);
            n++;
            peak = n > peak ? n : peak;
        } else if (n > 0) {
            size_t i = (size_t)(pk_driver_next_random(&rng) % n);
            assert_int_equal(pk_pool_free(&p, live[i]), PK_OK);
            live[i] = live[--n];
        }
        pk_stats s;
        pk_pool_stats(&p, &s);
        assert_int_equal(s.live, n);
        assert_int_equal(s.peak_live, peak);
        assert_int_equal(s.peak_in_use, peak * 16);
        if (op % 97 == 0) {
            assert_check_ok(&p);
        }
    }
}

/* Locks: taken around every call that touches state, never nested, released
 * before the fault handler runs. */
static void test_lock_wraps_every_operation(void **state)
{
    (void)state;
    pk_pool p;
    assert_int_equal(pk_pool_init(&p, arena, PK_POOL_BUFFER_SIZE(64, 4, 0), 64, 0), PK_OK);
    void *before = pk_pool_alloc(&p); /* a block from the unlocked pool */
    pk_lock bad = {counting_lock, NULL, &lock_calls};
    assert_int_equal(pk_pool_set_lock(&p, &bad), PK_ERR_INVALID_ARG);
    pk_lock l = {counting_lock, counting_unlock, &lock_calls};
    assert_int_equal(pk_pool_set_lock(&p, &l), PK_OK);
    lock_calls = 0;

    void *a = pk_pool_alloc(&p);
    assert_int_equal(lock_calls, 1);
    assert_int_equal(pk_pool_free(&p, a), PK_OK);
    assert_int_equal(lock_calls, 2);
    assert_int_equal(pk_pool_free(&p, a), PK_ERR_DOUBLE_FREE);
    assert_int_equal(lock_calls, 3);
    assert_int_equal(faults.lock_depth_seen, 0); /* handler ran unlocked */
    faults.calls = 0;
    assert_int_equal(pk_pool_free(&p, before), PK_OK); /* freed across set_lock */
    void *blocks[4];
    for (size_t i = 0; i < 4; i++) {
        blocks[i] = pk_pool_alloc(&p);
        assert_non_null(blocks[i]);
    }
    assert_null(pk_pool_alloc(&p));
    lock_calls = 0;
    pk_stats s;
    pk_pool_stats(&p, &s);
    assert_int_equal(pk_pool_available(&p), 0);
    assert_check_ok(&p);
    pk_pool_reset_peaks(&p);
    assert_int_equal(pk_pool_usable_size(&p, blocks[0]), 64);
    assert_int_equal(lock_calls, 5);
    assert_int_equal(lock_depth, 0);

    /* Back to no lock: the blocks freed under the lock are found again. */
    assert_int_equal(pk_pool_free(&p, blocks[0]), PK_OK);
    assert_int_equal(pk_pool_set_lock(&p, NULL), PK_OK);
    lock_calls = 0;
    /* (Debug builds: blocks[0] waited in the quarantine, which the alloc
     * that would otherwise fail drains.) */
    assert_ptr_equal(pk_pool_alloc(&p), blocks[0]);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(pk_pool_free(&p, blocks[i]), PK_OK);
    }
    assert_int_equal(lock_calls, 0);
    assert_check_ok(&p);
}

/* With a lock set, a damaged link is found on the locked path: reported once,
 * after the lock is released, and nothing is handed out twice. */
static void test_locked_alloc_survives_overwritten_link(void **state)
{
    (void)state;
    damaged_pool d;
    make_damaged_pool(&d);
    pk_lock l = {counting_lock, counting_unlock, &lock_calls};
    assert_int_equal(pk_pool_set_lock(&d.p, &l), PK_OK);
    store_index(d.blocks[4], 0); /* the head's link names block 0, which is live */
    unsigned char *got[8];
    size_t n = 0;
    for (size_t tries = 0; tries < 8 && n < 5; tries++) {
        unsigned char *b = pk_pool_alloc(&d.p);
        if (b != NULL) {
            for (size_t k = 0; k < n; k++) {
                assert_ptr_not_equal(got[k], b);
            }
            assert_ptr_not_equal(b, d.blocks[0]);
            got[n++] = b;
        }
    }
    assert_int_equal(n, 5);
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, PK_ERR_CORRUPT);
    assert_int_equal(faults.lock_depth_seen, 0);
    faults.calls = 0;
    assert_int_equal(lock_depth, 0);
    assert_check_ok(&d.p);
}

/* PK_POOL_DEFINE: a ready pool with no init call, named after itself. */
PK_POOL_DEFINE(static_commands, 64, 32, 0);
PK_POOL_DEFINE_STATIC(static_odd, 10, 7, 2);
PK_POOL_DEFINE_IN(static_dma, 256, 4, 64, "pk_test_dma");
extern unsigned char __start_pk_test_dma[];
extern unsigned char __stop_pk_test_dma[];

static void test_static_definition(void **state)
{
    (void)state;
    assert_int_equal(pk_pool_capacity(&static_commands), 32);
    assert_string_equal(pk_name(pk_pool_allocator(&static_commands)), "static_commands");
    void *blocks[32];
    for (size_t i = 0; i < 32; i++) {
        blocks[i] = pk_pool_alloc(&static_commands);
        assert_non_null(blocks[i]);
        assert_int_equal((uintptr_t)blocks[i] % _Alignof(max_align_t), 0);
    }
    assert_null(pk_pool_alloc(&static_commands));
    for (size_t i = 0; i < 32; i++) {
        assert_int_equal(pk_pool_free(&static_commands, blocks[i]), PK_OK);
    }
    assert_check_ok(&static_commands);

    /* The same layout as pk_pool_init computes. */
    static unsigned char buf[PK_POOL_BUFFER_SIZE(10, 7, 2)];
    pk_pool runtime;
    assert_int_equal(pk_pool_init(&runtime, buf, sizeof buf, 10, 2), PK_OK);
    assert_int_equal(runtime.stride, static_odd.stride);
    assert_int_equal(runtime.inverse, static_odd.inverse);
    assert_int_equal(runtime.shift, static_odd.shift);
    assert_int_equal(runtime.count, static_odd.count);
    void *odd = pk_pool_alloc(&static_odd);
    assert_int_equal(pk_pool_free(&static_odd, (unsigned char *)odd + 1), PK_ERR_MISALIGNED_PTR);
    expect_fault_named(PK_ERR_MISALIGNED_PTR, (unsigned char *)odd + 1, "static_odd");
    assert_int_equal(pk_pool_free(&static_odd, odd), PK_OK);

    /* PK_POOL_DEFINE_IN: the blocks lie in the named section. */
    for (size_t i = 0; i < 4; i++) {
        unsigned char *b = pk_pool_alloc(&static_dma);
        assert_non_null(b);
        assert_true(b >= __start_pk_test_dma && b + 256 <= __stop_pk_test_dma);
        assert_int_equal((uintptr_t)b % 64, 0);
    }
    assert_check_ok(&static_dma);
}

/* The inverse used for division-free indexing, for every odd stride up to
 * 4097 and powers of two times them. */
static void test_inverse_macro(void **state)
{
    (void)state;
    for (size_t odd = 1; odd < 4097; odd += 2) {
        assert_int_equal((size_t)(odd * PK_POOL_INV_ODD_(odd)), 1);
        for (unsigned k = 0; k < 8; k++) {
            size_t stride = odd << k;
            assert_int_equal(PK_POOL_ODD_(stride), odd);
            assert_int_equal(PK_POOL_LOG2_POW2_(PK_POOL_LOWBIT_(stride)), k);
        }
    }
}

/* The randomized driver over several shapes of pool. */
static pk_driver_slot slots[4096];

static void run_driver(size_t bs, size_t count, size_t align, size_t offset, const pk_lock *lock,
                       uint64_t seed, size_t ops)
{
    size_t size = PK_POOL_BUFFER_SIZE(bs, count, align);
    assert_true(offset + size <= sizeof arena);
    pk_driver_fill_garbage(arena + offset, size, seed);
    pk_pool p;
    assert_int_equal(pk_pool_init(&p, arena + offset, size, bs, align), PK_OK);
    assert_int_equal(pk_pool_set_lock(&p, lock), PK_OK);
    size_t effective_align = align != 0 ? align : _Alignof(max_align_t);
    pk_driver_config cfg = {
        .realloc_percent = 10,
        .seed = seed,
        .ops = ops,
        .min_size = 0,
        .max_size = bs,
        .max_align = effective_align,
        .default_align = effective_align,
        .region = arena + offset,
        .region_size = size,
        .block_size = bs,
        .requested_exact = false,
        .slots = slots,
        .slot_count = count + 8 < 4096 ? count + 8 : 4096,
        .report = report_line,
    };
    pk_driver_result result;
    assert_int_equal(pk_driver_run(pk_pool_allocator(&p), &cfg, &result), 0);
    assert_int_equal(result.ops, ops);
    if (ops >= 100000) {
        assert_true(result.failures > 0); /* the growth phases ran the pool dry */
    }
    assert_true(result.checks > 0);
    assert_int_equal(faults.calls, 0);
}

static void test_random_small_blocks(void **state)
{
    (void)state;
    run_driver(8, 200, 0, 3, NULL, 1, random_ops());
}

static void test_random_odd_blocks(void **state)
{
    (void)state;
    run_driver(100, 300, 4, 1, NULL, 2, random_ops());
}

static void test_random_descriptors(void **state)
{
    (void)state;
    run_driver(64, 512, 64, 0, NULL, 3, random_ops());
}

static void test_random_one_block(void **state)
{
    (void)state;
    run_driver(24, 1, 8, 5, NULL, 4, random_ops() / 10);
}

static void test_random_locked(void **state)
{
    (void)state;
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pk_lock l = pk_pthread_lock(&m);
    run_driver(48, 100, 16, 2, &l, 5, random_ops() / 4);
}

#if PK_DEBUG
/* Debug builds: the faults the debug layer adds, each provoked once. */

/* Exactly one fault since the last check: kind, ptr, the pool's name, the
 * block's allocation site in this file and owner (alloc_line 0: no tag, so
 * neither), the call's site in this file (call_line 0: none, as for check),
 * and the handler ran with the lock released. */
static void expect_debug_fault(pk_status kind, const void *ptr, const char *name, int alloc_line, uint32_t owner,
                               int call_line)
{
    expect_fault_sites(kind, ptr, name, __FILE__, alloc_line, owner, call_line);
}

static void expect_pool_stats(const pk_pool *p, size_t live, uint64_t rejected)
{
    pk_stats s;
    pk_pool_stats(p, &s);
    assert_int_equal(s.live, live);
    assert_int_equal(s.rejected, rejected);
    assert_int_equal(s.allocs - s.frees, live);
    assert_int_equal(s.requested, live * 24); /* pk_pool_alloc requests the block size */
    assert_int_equal(pk_pool_available(p), pk_pool_capacity(p) - live);
}

static void test_debug_faults(void **state)
{
    (void)state;
    enum { FILL = PK_QUARANTINE_SIZE, N = 4 + PK_QUARANTINE_SIZE };
    pk_pool p;
    assert_int_equal(pk_pool_init(&p, arena, PK_POOL_BUFFER_SIZE(24, N, 8), 24, 8), PK_OK);
    pk_pool_set_name(&p, "sensors");
    pk_lock l = {counting_lock, counting_unlock, &lock_calls};
    assert_int_equal(pk_pool_set_lock(&p, &l), PK_OK);
    unsigned char *anchor = pk_pool_alloc(&p); /* live throughout: the quarantine keeps its blocks */
    pk_set_owner(7);
    int al = __LINE__; unsigned char *a = pk_pool_alloc(&p);
    pk_set_owner(0);
    int cl;

    /* Overflow by one byte: check finds it (a stays live), then the free,
     * which frees a all the same and restores the guard. */
    a[24] = 0;
    assert_int_equal(pk_pool_check(&p), PK_ERR_GUARD_CORRUPT);
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, a, "sensors", al, 7, 0);
    cl = __LINE__; assert_int_equal(pk_pool_free(&p, a), PK_ERR_GUARD_CORRUPT);
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, a, "sensors", al, 7, cl);
    assert_check_ok(&p);
    expect_pool_stats(&p, 1, 0);
    /* Freed again while quarantined: its tag still tells where it came from. */
    cl = __LINE__; assert_int_equal(pk_pool_free(&p, a), PK_ERR_DOUBLE_FREE);
    expect_debug_fault(PK_ERR_DOUBLE_FREE, a, "sensors", al, 7, cl);
    expect_pool_stats(&p, 1, 1);

    /* Underflow by one byte. */
    pk_set_owner(9);
    int bl = __LINE__; unsigned char *b = pk_pool_alloc(&p);
    pk_set_owner(0);
    b[-1] = 0x00;
    cl = __LINE__; assert_int_equal(pk_pool_free(&p, b), PK_ERR_GUARD_CORRUPT);
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, b, "sensors", bl, 9, cl);
    assert_check_ok(&p);
    expect_pool_stats(&p, 1, 1);

    /* Foreign and interior pointers (no tag: the call's site only). */
    unsigned char local[32];
    cl = __LINE__; assert_int_equal(pk_pool_free(&p, local + 16), PK_ERR_FOREIGN_PTR);
    expect_debug_fault(PK_ERR_FOREIGN_PTR, local + 16, "sensors", 0, 0, cl);
    cl = __LINE__; assert_int_equal(pk_pool_free(&p, anchor + 1), PK_ERR_MISALIGNED_PTR);
    expect_debug_fault(PK_ERR_MISALIGNED_PTR, anchor + 1, "sensors", 0, 0, cl);
    cl = __LINE__; assert_int_equal(pk_pool_free(&p, anchor - 1), PK_ERR_MISALIGNED_PTR); /* its front guard */
    expect_debug_fault(PK_ERR_MISALIGNED_PTR, anchor - 1, "sensors", 0, 0, cl);
    assert_check_ok(&p);
    expect_pool_stats(&p, 1, 4);

    /* A write after free into a quarantined block: check finds it, and the
     * free that pushes the block out of the quarantine reports it, once. */
    int dl = __LINE__; unsigned char *d = pk_pool_alloc(&p);
    assert_int_equal(pk_pool_free(&p, d), PK_OK);
    d[5] = 0x42;
    assert_int_equal(pk_pool_check(&p), PK_ERR_USE_AFTER_FREE);
    expect_debug_fault(PK_ERR_USE_AFTER_FREE, d, "sensors", dl, 0, 0);
    unsigned char *fill[FILL]; /* a, b and d quarantined: these fill the pool */
    for (size_t i = 0; i < FILL; i++) {
        fill[i] = pk_pool_alloc(&p);
        assert_non_null(fill[i]);
    }
    for (size_t i = 0; i + 1 < FILL; i++) {
        assert_int_equal(pk_pool_free(&p, fill[i]), PK_OK); /* a, then b, leave the quarantine */
    }
    assert_int_equal(faults.calls, 0);
    cl = __LINE__; assert_int_equal(pk_pool_free(&p, fill[FILL - 1]), PK_OK); /* d leaves it */
    expect_debug_fault(PK_ERR_USE_AFTER_FREE, d, "sensors", dl, 0, cl);
    assert_check_ok(&p);
    expect_pool_stats(&p, 1, 4);

    /* A double free of a block that left the quarantine: the usage map
     * catches it (no tag any more). */
    cl = __LINE__; assert_int_equal(pk_pool_free(&p, b), PK_ERR_DOUBLE_FREE);
    expect_debug_fault(PK_ERR_DOUBLE_FREE, b, "sensors", 0, 0, cl);
    expect_pool_stats(&p, 1, 5);

    /* A write after free into a block back on the free list: found when it
     * is handed out again (refilled), at that call. d heads the list. */
    d[0] = 0x17;
    cl = __LINE__; unsigned char *r = pk_pool_alloc(&p);
    assert_ptr_equal(r, d);
    expect_debug_fault(PK_ERR_USE_AFTER_FREE, d, "sensors", 0, 0, cl);
    assert_int_not_equal(r[0], 0x17);
    assert_check_ok(&p);
    expect_pool_stats(&p, 2, 5);
    assert_int_equal(pk_pool_usable_size(&p, r), 24);

    /* Whole: every block can be had (the quarantine drained, never a NULL). */
    assert_int_equal(pk_pool_free(&p, r), PK_OK);
    assert_int_equal(pk_pool_free(&p, anchor), PK_OK);
    expect_pool_stats(&p, 0, 5);
    for (size_t i = 0; i < N; i++) {
        assert_non_null(pk_pool_alloc(&p));
    }
    assert_null(pk_pool_alloc(&p));
    assert_check_ok(&p);
    assert_int_equal(faults.calls, 0);
    assert_int_equal(lock_depth, 0);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_rejects_bad_arguments, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_buffer_size_gives_exact_capacity, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_alloc_every_block, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_stats_and_reuse, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_misuse_through_the_driver, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_misuse_cases, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_every_interior_offset_rejected, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_usage_map_damage, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_free_list_damage, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_counter_damage, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_alloc_survives_overwritten_link, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_reset_peaks_survives_overwritten_link, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_peaks_follow_a_model, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_lock_wraps_every_operation, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_locked_alloc_survives_overwritten_link, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_static_definition, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_inverse_macro, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_small_blocks, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_odd_blocks, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_descriptors, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_one_block, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_locked, setup_faults, teardown_faults),
#if PK_DEBUG
        cmocka_unit_test_setup_teardown(test_debug_faults, setup_faults, teardown_faults),
#endif
    };
    return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
