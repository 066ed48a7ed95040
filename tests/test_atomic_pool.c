/* Unit tests of the lock-free pool (poolkit/atomic_pool.h): layout, misuse,
 * check against damaged metadata, the randomized driver, and concurrency:
 * four threads with cross-thread frees, racing double frees, and a signal
 * handler (standing in for an interrupt) allocating while the main thread
 * does. Built twice: as is, and with PK_ATOMIC_POOL_NARROW (the 32-bit head of
 * Cortex-M targets). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cmocka.h>

#include "driver/driver.h"
#include "support.h"
#include "poolkit/atomic_pool.h"
#include "poolkit/debug.h"
#if PK_DEBUG
#include "debug/hooks.h" /* the fill patterns */
#endif

static _Alignas(4096) unsigned char arena[1 << 19];

static void assert_check_ok(const pk_atomic_pool *p)
{
    unsigned before = faults.calls;
    assert_int_equal(pk_atomic_pool_check(p), PK_OK);
    assert_int_equal(faults.calls, before);
}

static void assert_check_corrupt(const pk_atomic_pool *p)
{
    faults.calls = 0;
    assert_int_equal(pk_atomic_pool_check(p), PK_ERR_CORRUPT);
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, PK_ERR_CORRUPT);
    faults.calls = 0;
}

/* The metadata, for the damage tests: 32-bit links and usage words. */
static unsigned *links_of(pk_atomic_pool *p)
{
    return p->links;
}

static unsigned *usage_of(pk_atomic_pool *p)
{
    return p->usage;
}

static void test_init_rejects_bad_arguments(void **state)
{
    (void)state;
    pk_atomic_pool p;
    memset(&p, 0x5A, sizeof p);
    pk_atomic_pool untouched = p;
    assert_int_equal(pk_atomic_pool_init(NULL, arena, 4096, 64, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_atomic_pool_init(&p, NULL, 4096, 64, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_atomic_pool_init(&p, arena, 4096, 0, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_atomic_pool_init(&p, arena, 4096, 64, 3), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_atomic_pool_init(&p, arena, 4096, 64, 48), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_atomic_pool_init(&p, arena, 4096, SIZE_MAX, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_atomic_pool_init(&p, arena, 4096, SIZE_MAX - 3, 8), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_atomic_pool_init(&p, arena, 4096, 64, (SIZE_MAX >> 1) + 1), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_atomic_pool_init(&p, arena, SIZE_MAX, SIZE_MAX / 2, 1), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_atomic_pool_init(&p, arena, 0, 64, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_atomic_pool_init(&p, arena, PK_ATOMIC_POOL_BUFFER_SIZE(64, 1, 0) - 1, 64, 0),
                     PK_ERR_INVALID_ARG);
    assert_int_equal(pk_atomic_pool_init(&p, arena, 80, 64, 0), PK_ERR_INVALID_ARG);
    assert_memory_equal(&p, &untouched, sizeof p);
    assert_int_equal(faults.calls, 0);
}

/* The block limit of the target's head word: at the limit init works, one
 * block above it fails. */
static void test_block_limit(void **state)
{
    (void)state;
    size_t max = pk_atomic_pool_max_blocks();
#ifdef PK_ATOMIC_POOL_NARROW
    assert_int_equal(max, 65535);
    size_t size = PK_ATOMIC_POOL_BUFFER_SIZE(1, 65535, 1);
    pk_atomic_pool p;
#if PK_DEBUG
    /* Debug blocks carry a tag and guards: 65,535 of them do not fit in the
     * arena. Init writes only the metadata in front of the blocks (which
     * does), so the limit is checked without allocating. */
    assert_true(PK_ATOMIC_POOL_BUFFER_SIZE(1, 65536, 1) - 65536 * PK_ATOMIC_POOL_STRIDE_(1, 1) <= sizeof arena);
    assert_int_equal(pk_atomic_pool_init(&p, arena, size, 1, 1), PK_OK);
    assert_int_equal(pk_atomic_pool_capacity(&p), 65535);
    assert_int_equal(pk_atomic_pool_init(&p, arena, PK_ATOMIC_POOL_BUFFER_SIZE(1, 65536, 1), 1, 1),
                     PK_ERR_INVALID_ARG);
    return;
#endif
    assert_true(size + PK_ATOMIC_POOL_BUFFER_SIZE(1, 1, 1) <= sizeof arena);
    assert_int_equal(pk_atomic_pool_init(&p, arena, size, 1, 1), PK_OK);
    assert_int_equal(pk_atomic_pool_capacity(&p), 65535);
    assert_int_equal(pk_atomic_pool_init(&p, arena, PK_ATOMIC_POOL_BUFFER_SIZE(1, 65536, 1), 1, 1),
                     PK_ERR_INVALID_ARG);
    /* Every block of the largest pool can be had, the last index included. */
    for (size_t i = 0; i < 65535; i++) {
        assert_non_null(pk_atomic_pool_alloc(&p));
    }
    assert_null(pk_atomic_pool_alloc(&p));
    assert_check_ok(&p);
#else
    assert_true(max == 0xFFFFFFFFu || max == SIZE_MAX);
#endif
}

/* PK_ATOMIC_POOL_BUFFER_SIZE(bs, n, a) bytes hold exactly n blocks at any
 * buffer address, one byte fewer n - 1. */
static void test_buffer_size_gives_exact_capacity(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 3, 8, 12, 24, 64, 100, 1000};
    static const size_t aligns[] = {0, 1, 2, 4, 8, 64, 256};
    static const size_t counts[] = {1, 2, 31, 32, 33, 63, 64, 65, 100};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        for (size_t ai = 0; ai < sizeof aligns / sizeof *aligns; ai++) {
            for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++) {
                size_t bs = sizes[si], align = aligns[ai], n = counts[ci];
                size_t need = PK_ATOMIC_POOL_BUFFER_SIZE(bs, n, align);
                for (size_t shift = 0; shift < 17; shift += 3) {
                    pk_atomic_pool p;
                    assert_int_equal(pk_atomic_pool_init(&p, arena + shift, need, bs, align), PK_OK);
                    assert_int_equal(pk_atomic_pool_capacity(&p), n);
                    if (n > 1) {
                        assert_int_equal(pk_atomic_pool_init(&p, arena + shift, need - 1, bs, align), PK_OK);
                        assert_int_equal(pk_atomic_pool_capacity(&p), n - 1);
                    }
                }
            }
        }
    }
}

/* Every block of a full pool: distinct, aligned, inside the buffer, writable in
 * full without harming the metadata (the pool stays consistent), then NULL as
 * a failure. */
static void test_alloc_every_block(void **state)
{
    (void)state;
    static const size_t shapes[][3] = {{1, 1, 40}, {10, 16, 33}, {64, 64, 100}, {24, 0, 7}, {3, 4, 64}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        size_t bs = shapes[k][0], align = shapes[k][1], n = shapes[k][2];
        size_t size = PK_ATOMIC_POOL_BUFFER_SIZE(bs, n, align);
        unsigned char *buf = arena + 5;
        pk_driver_fill_garbage(buf, size, k);
        pk_atomic_pool p;
        assert_int_equal(pk_atomic_pool_init(&p, buf, size, bs, align), PK_OK);
        size_t want_align = align != 0 ? align : _Alignof(max_align_t);
        unsigned char *blocks[128];
        for (size_t i = 0; i < n; i++) {
            blocks[i] = pk_atomic_pool_alloc(&p);
            assert_non_null(blocks[i]);
            assert_int_equal((uintptr_t)blocks[i] % want_align, 0);
            assert_true(blocks[i] >= buf && blocks[i] + bs <= buf + size);
            assert_true(pk_atomic_pool_owns(&p, blocks[i]));
            assert_int_equal(pk_atomic_pool_usable_size(&p, blocks[i]), bs);
            memset(blocks[i], 0xEE, bs);
            for (size_t j = 0; j < i; j++) {
                assert_true(blocks[j] + bs <= blocks[i] || blocks[i] + bs <= blocks[j]);
            }
        }
        assert_null(pk_atomic_pool_alloc(&p));
        assert_int_equal(pk_atomic_pool_available(&p), 0);
        assert_check_ok(&p);
        pk_stats s;
        pk_atomic_pool_stats(&p, &s);
        assert_int_equal(s.failures, 1);
        assert_int_equal(s.live, n);
        assert_int_equal(s.peak_live, n);
        assert_int_equal(s.allocs, n);
        assert_int_equal(s.in_use, n * bs);
        assert_int_equal(s.capacity, n * bs);
        assert_int_equal(s.largest_free, 0);
        assert_int_equal(s.block_size, bs);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(pk_atomic_pool_free(&p, blocks[i]), PK_OK);
        }
        assert_int_equal(pk_atomic_pool_available(&p), n);
        assert_check_ok(&p);
        pk_atomic_pool_stats(&p, &s);
        assert_int_equal(s.live, 0);
        assert_int_equal(s.frees, n);
        assert_int_equal(s.largest_free, bs);
        assert_int_equal(s.free_bytes, n * bs);
        /* Freed blocks come back last in, first out. */
        assert_ptr_equal(pk_atomic_pool_alloc(&p), blocks[n - 1]);
    }
    assert_int_equal(faults.calls, 0);
}

static void test_peaks(void **state)
{
    (void)state;
    pk_atomic_pool p;
    assert_int_equal(pk_atomic_pool_init(&p, arena, PK_ATOMIC_POOL_BUFFER_SIZE(32, 10, 0), 32, 0), PK_OK);
    void *b[10];
    for (size_t i = 0; i < 6; i++) {
        b[i] = pk_atomic_pool_alloc(&p);
    }
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(pk_atomic_pool_free(&p, b[i]), PK_OK);
    }
    pk_stats s;
    pk_atomic_pool_stats(&p, &s);
    assert_int_equal(s.peak_live, 6);
    assert_int_equal(s.peak_in_use, 6 * 32);
    assert_int_equal(s.live, 2);
    pk_atomic_pool_reset_peaks(&p);
    pk_atomic_pool_stats(&p, &s);
    assert_int_equal(s.peak_live, 2);
    b[0] = pk_atomic_pool_alloc(&p);
    pk_atomic_pool_stats(&p, &s);
    assert_int_equal(s.peak_live, 3);
    assert_int_equal(s.allocs, 7);
    assert_int_equal(s.frees, 4);
    assert_check_ok(&p);
}

static void test_misuse_cases(void **state)
{
    (void)state;
    pk_atomic_pool p;
    /* 10-byte blocks aligned to 16: 6 bytes of padding after each block. */
    assert_int_equal(pk_atomic_pool_init(&p, arena, PK_ATOMIC_POOL_BUFFER_SIZE(10, 8, 16), 10, 16), PK_OK);
    pk_atomic_pool_set_name(&p, "isr buffers");
    unsigned char *a = pk_atomic_pool_alloc(&p);
    unsigned char *b = pk_atomic_pool_alloc(&p);
    pk_stats before;
    pk_atomic_pool_stats(&p, &before);
    /* Release builds: 16-byte strides, a at the start of block 0. Debug
     * builds: each block also holds a tag and guards, and a is block 0's
     * start plus that prefix; the same cases hold around base and stride. */
    const size_t stride = PK_ATOMIC_POOL_STRIDE_(10, 16);
#if PK_DEBUG
    unsigned char *base = a - PK_DEBUG_PREFIX_(16);
#else
    unsigned char *base = a;
#endif

    assert_int_equal(pk_atomic_pool_free(&p, a + 12), PK_ERR_MISALIGNED_PTR);
    expect_fault_named(PK_ERR_MISALIGNED_PTR, a + 12, "isr buffers");
    assert_int_equal(pk_atomic_pool_free(&p, a + 1), PK_ERR_MISALIGNED_PTR);
    expect_fault_named(PK_ERR_MISALIGNED_PTR, a + 1, "isr buffers");
    assert_int_equal(pk_atomic_pool_free(&p, a + stride * 5), PK_ERR_DOUBLE_FREE); /* never handed out */
    expect_fault_named(PK_ERR_DOUBLE_FREE, a + stride * 5, "isr buffers");
    assert_int_equal(pk_atomic_pool_free(&p, base - 16), PK_ERR_FOREIGN_PTR);
    expect_fault_named(PK_ERR_FOREIGN_PTR, base - 16, "isr buffers");
    assert_int_equal(pk_atomic_pool_free(&p, base + stride * 8), PK_ERR_FOREIGN_PTR);
    expect_fault_named(PK_ERR_FOREIGN_PTR, base + stride * 8, "isr buffers");
    assert_int_equal(pk_atomic_pool_free(&p, (void *)UINTPTR_MAX), PK_ERR_FOREIGN_PTR);
    expect_fault_named(PK_ERR_FOREIGN_PTR, (void *)UINTPTR_MAX, "isr buffers");
    assert_int_equal(pk_atomic_pool_free(&p, NULL), PK_OK);
    assert_int_equal(faults.calls, 0);

    pk_stats after;
    pk_atomic_pool_stats(&p, &after);
    assert_int_equal(after.rejected, before.rejected + 6);
    after.rejected = before.rejected;
    assert_same_stats(&before, &after);
    assert_check_ok(&p);
    assert_int_equal(pk_atomic_pool_usable_size(&p, a + 1), 0);
    assert_int_equal(pk_atomic_pool_usable_size(&p, base - 16), 0);
    assert_false(pk_atomic_pool_owns(&p, base - 1));
    assert_true(pk_atomic_pool_owns(&p, a + 12));

    assert_int_equal(pk_atomic_pool_free(&p, b), PK_OK);
    assert_int_equal(pk_atomic_pool_usable_size(&p, b), 0);
    assert_int_equal(pk_atomic_pool_free(&p, b), PK_ERR_DOUBLE_FREE);
    expect_fault_named(PK_ERR_DOUBLE_FREE, b, "isr buffers");
    assert_int_equal(pk_atomic_pool_free(&p, a), PK_OK);
    for (size_t i = 0; i < 8; i++) {
        assert_non_null(pk_atomic_pool_alloc(&p));
    }
    assert_null(pk_atomic_pool_alloc(&p));
    assert_check_ok(&p);
    pk_atomic_pool_set_name(&p, NULL);
    assert_string_equal(pk_name(pk_atomic_pool_allocator(&p)), "atomic pool");
}

static void test_misuse_through_the_driver(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 8, 24, 64, 100};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
#if PK_DEBUG
        if (sizes[i] < sizeof(void *)) {
            continue; /* the driver chains blocks through their first pointer's bytes: an overflow in debug builds */
        }
#endif
        pk_atomic_pool p;
        size_t size = PK_ATOMIC_POOL_BUFFER_SIZE(sizes[i], 20, 0);
        assert_int_equal(pk_atomic_pool_init(&p, arena + 1, size, sizes[i], 0), PK_OK);
        pk_misuse_config cfg = {arena + 1, size, sizes[i], sizes[i] > 1, 20, report_line, NULL, false};
        assert_int_equal(pk_driver_misuse(pk_atomic_pool_allocator(&p), &cfg), 0);
        pk_set_fault_handler(count_fault, NULL);
        assert_check_ok(&p);
    }
}

/* The generic view: sizes above the block and alignments above the pool's
 * fail; a bad alignment is a fault. */
static void test_generic_view(void **state)
{
    (void)state;
    pk_atomic_pool p;
    assert_int_equal(pk_atomic_pool_init(&p, arena, PK_ATOMIC_POOL_BUFFER_SIZE(48, 4, 16), 48, 16), PK_OK);
    pk_allocator *a = pk_atomic_pool_allocator(&p);
    assert_null(pk_alloc(a, 49));
    assert_null(pk_alloc_aligned(a, 8, 32));
    assert_int_equal(faults.calls, 0);
    assert_null(pk_alloc_aligned(a, 8, 24));
    expect_fault_named(PK_ERR_INVALID_ARG, NULL, "atomic pool");
    void *x = pk_alloc_aligned(a, 0, 16);
    assert_non_null(x);
#if PK_DEBUG
    /* Debug builds: the generic realloc moves a block to a new size (its
     * rear guard follows), and a 0-byte block's usable size is 0, which
     * realloc takes for "not live"; grow a 1-byte block instead. */
    assert_int_equal(pk_free(a, x), PK_OK);
    x = pk_alloc_aligned(a, 1, 16);
    void *y = pk_realloc(a, x, 40);
    assert_non_null(y);
    assert_ptr_not_equal(x, y);
    assert_int_equal(pk_atomic_pool_usable_size(&p, y), 40);
#else
    void *y = pk_realloc(a, x, 40);
    assert_ptr_equal(x, y);
#endif
    pk_stats s;
    pk_stats_get(a, &s);
    assert_int_equal(s.failures, 2);
    assert_int_equal(s.rejected, 1);
    assert_int_equal(s.live, 1);
    assert_int_equal(pk_free(a, y), PK_OK);
    assert_int_equal(pk_check(a), PK_OK);
}

/* A pool with blocks 0..5 carved, 0..2 live and 3, 4, 5 on the free list. */
static void make_half_used(pk_atomic_pool *p, void *live[3])
{
    assert_int_equal(pk_atomic_pool_init(p, arena, PK_ATOMIC_POOL_BUFFER_SIZE(16, 40, 0), 16, 0), PK_OK);
    void *b[6];
    for (size_t i = 0; i < 6; i++) {
        b[i] = pk_atomic_pool_alloc(p);
    }
    for (size_t i = 3; i < 6; i++) {
        assert_int_equal(pk_atomic_pool_free(p, b[i]), PK_OK);
    }
    for (size_t i = 0; i < 3; i++) {
        live[i] = b[i];
    }
    assert_check_ok(p);
}

static void test_check_finds_usage_damage(void **state)
{
    (void)state;
    pk_atomic_pool p;
    void *live[3];
    make_half_used(&p, live);
    usage_of(&p)[0] ^= 1u << 1; /* a live block marked free */
    assert_check_corrupt(&p);
    usage_of(&p)[0] ^= 1u << 1;
    usage_of(&p)[0] |= 1u << 20; /* a block never carved marked live */
    assert_check_corrupt(&p);
    usage_of(&p)[0] &= ~(1u << 20);
    usage_of(&p)[1] |= 1u << 7; /* past the pool's 40 blocks */
    assert_check_corrupt(&p);
    usage_of(&p)[1] = 0;
    /* A live block marked free and one never carved marked live: the counts
     * agree and the free list is sound, but the bitmap is not. */
    usage_of(&p)[0] ^= (1u << 1) | (1u << 20);
    assert_check_corrupt(&p);
    usage_of(&p)[0] ^= (1u << 1) | (1u << 20);
    /* A free block marked live and a live one marked free: the counts agree,
     * but a live block is on the free list. */
    usage_of(&p)[0] ^= (1u << 4) | (1u << 2);
    assert_check_corrupt(&p);
    usage_of(&p)[0] ^= (1u << 4) | (1u << 2);
    assert_check_ok(&p);
}

static void test_check_finds_free_list_damage(void **state)
{
    (void)state;
    pk_atomic_pool p;
    void *live[3];
    make_half_used(&p, live);
    /* The list is 5 -> 4 -> 3. */
    /* links_of returns a pointer into p, not into a temporary: cppcheck's
     * danglingTemporaryLifetime and danglingTempReference below are wrong. */
    unsigned *links = links_of(&p);
    unsigned saved = links[4];
    links[4] = 5; /* a cycle */
    assert_check_corrupt(&p);
    links[4] = 30; /* a block never carved */
    assert_check_corrupt(&p);
    links[4] = 1; /* a live block */
    assert_check_corrupt(&p);
    links[4] = links[3]; /* the list cut short: block 3 lost */
    assert_check_corrupt(&p);
    links[4] = saved;
    assert_check_ok(&p);
}

/* A damaged link met by alloc: reported once, NULL, and nothing handed out
 * twice. */
static void test_alloc_meets_damaged_metadata(void **state)
{
    (void)state;
    pk_atomic_pool p;
    void *live[3];
    make_half_used(&p, live);
    unsigned *links = links_of(&p); /* (a pointer into p: see above) */
    links[5] = 33; /* the top's link leads to a block never carved */
    assert_null(pk_atomic_pool_alloc(&p));
    expect_fault_named(PK_ERR_CORRUPT, NULL, "atomic pool");
    links_of(&p)[5] = 4;
    /* The top marked live (a stray write on the bitmap): not handed out. */
    usage_of(&p)[0] |= 1u << 5;
    assert_null(pk_atomic_pool_alloc(&p));
    expect_fault_named(PK_ERR_CORRUPT, NULL, "atomic pool");
    pk_stats s;
    pk_atomic_pool_stats(&p, &s);
    assert_int_equal(s.rejected, 2);
    assert_int_equal(s.live, 3);
}

/* The randomized driver over several shapes. */
static pk_driver_slot slots[4096];

static void run_driver(size_t bs, size_t count, size_t align, size_t offset, uint64_t seed, size_t ops)
{
    size_t size = PK_ATOMIC_POOL_BUFFER_SIZE(bs, count, align);
    assert_true(offset + size <= sizeof arena);
    pk_driver_fill_garbage(arena + offset, size, seed);
    pk_atomic_pool p;
    assert_int_equal(pk_atomic_pool_init(&p, arena + offset, size, bs, align), PK_OK);
    size_t effective_align = align != 0 ? align : _Alignof(max_align_t);
    pk_driver_config cfg = {
        .realloc_percent = 10,
        .seed = seed,
        .ops = ops,
        .max_size = bs,
        .max_align = effective_align,
        .default_align = effective_align,
        .region = arena + offset,
        .region_size = size,
        .block_size = bs,
        .slots = slots,
        .slot_count = count + 8 < 4096 ? count + 8 : 4096,
        .report = report_line,
    };
    pk_driver_result result;
    assert_int_equal(pk_driver_run(pk_atomic_pool_allocator(&p), &cfg, &result), 0);
    assert_int_equal(result.ops, ops);
    if (ops >= 100000) {
        assert_true(result.failures > 0);
    }
    assert_int_equal(faults.calls, 0);
}

static void test_random_small_blocks(void **state)
{
    (void)state;
    run_driver(1, 200, 1, 3, 1, random_ops());
}

static void test_random_descriptors(void **state)
{
    (void)state;
    run_driver(64, 512, 64, 0, 2, random_ops());
}

static void test_random_odd_blocks(void **state)
{
    (void)state;
    run_driver(100, 77, 4, 1, 3, random_ops() / 2);
}

/* Four threads; each frees what the previous one allocated (cross-thread
 * frees), every block stamped by its allocator and verified by its freer. */
#define THREADS 4
#define RING 64
#define STAMPED_BLOCKS 256

typedef struct {
    uint32_t thread, seq;
    uint64_t check;
    unsigned char payload[48];
} stamped;

typedef struct {
    _Atomic(stamped *) slots[RING]; /* single producer, single consumer */
    _Atomic size_t head, tail;
} ring;

static pk_atomic_pool shared;
static ring rings[THREADS];
static size_t ops_per_thread;

static uint64_t stamp_check(uint32_t thread, uint32_t seq)
{
    return ((uint64_t)thread << 32 | seq) * 0x9E3779B97F4A7C15ull;
}

static bool ring_put(ring *r, stamped *b)
{
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (tail - atomic_load_explicit(&r->head, memory_order_acquire) == RING) {
        return false;
    }
    atomic_store_explicit(&r->slots[tail % RING], b, memory_order_relaxed);
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    return true;
}

static stamped *ring_take(ring *r)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head == atomic_load_explicit(&r->tail, memory_order_acquire)) {
        return NULL;
    }
    stamped *b = atomic_load_explicit(&r->slots[head % RING], memory_order_relaxed);
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    return b;
}

static bool stamp_intact(const stamped *b)
{
    if (b->check != stamp_check(b->thread, b->seq)) {
        return false;
    }
    for (size_t i = 0; i < sizeof b->payload; i++) {
        if (b->payload[i] != (unsigned char)(b->seq + i)) {
            return false;
        }
    }
    return true;
}

typedef struct {
    uint32_t id;
    unsigned bad_stamps, bad_frees, bad_blocks;
    size_t allocs;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    ring *out = &rings[(w->id + 1) % THREADS];
    ring *in = &rings[w->id];
    uint32_t seq = 0;
    for (size_t op = 0; op < ops_per_thread; op++) {
        stamped *b = ring_take(in);
        if (b != NULL) {
            w->bad_stamps += !stamp_intact(b);
            memset(b, 0xDD, sizeof *b); /* the next owner must not see this one's data */
            w->bad_frees += pk_atomic_pool_free(&shared, b) != PK_OK;
            continue;
        }
        b = pk_atomic_pool_alloc(&shared);
        if (b == NULL) {
            continue;
        }
        w->allocs++;
        /* A block just handed out is nobody else's: a freer's 0xDD fill or a
         * fresh block, never a live stamp. */
        w->bad_blocks += b->check == stamp_check(b->thread, b->seq);
        b->thread = w->id;
        b->seq = ++seq;
        b->check = stamp_check(w->id, seq);
        for (size_t i = 0; i < sizeof b->payload; i++) {
            b->payload[i] = (unsigned char)(seq + i);
        }
        if (!ring_put(out, b)) {
            w->bad_stamps += !stamp_intact(b);
            memset(b, 0xDD, sizeof *b);
            w->bad_frees += pk_atomic_pool_free(&shared, b) != PK_OK;
        }
    }
    return NULL;
}

static void test_threads_cross_frees(void **state)
{
    (void)state;
    ops_per_thread = random_ops() / THREADS;
    size_t size = PK_ATOMIC_POOL_BUFFER_SIZE(sizeof(stamped), STAMPED_BLOCKS, 0);
    memset(arena, 0xDD, size);
    assert_int_equal(pk_atomic_pool_init(&shared, arena, size, sizeof(stamped), 0), PK_OK);
    worker workers[THREADS];
    pthread_t threads[THREADS];
    for (uint32_t i = 0; i < THREADS; i++) {
        atomic_init(&rings[i].head, 0);
        atomic_init(&rings[i].tail, 0);
        workers[i] = (worker){.id = i};
    }
    for (uint32_t i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&threads[i], NULL, work, &workers[i]), 0);
    }
    size_t allocs = 0;
    for (size_t i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(workers[i].bad_stamps, 0);
        assert_int_equal(workers[i].bad_frees, 0);
        assert_int_equal(workers[i].bad_blocks, 0);
        allocs += workers[i].allocs;
    }
    pk_stats s;
    pk_atomic_pool_stats(&shared, &s);
    size_t in_flight = 0;
    for (size_t i = 0; i < THREADS; i++) {
        in_flight += atomic_load(&rings[i].tail) - atomic_load(&rings[i].head);
    }
    assert_int_equal(s.live, in_flight);
    assert_check_ok(&shared);
    for (size_t i = 0; i < THREADS; i++) {
        for (stamped *b; (b = ring_take(&rings[i])) != NULL;) {
            assert_true(stamp_intact(b));
            assert_int_equal(pk_atomic_pool_free(&shared, b), PK_OK);
        }
    }
    pk_atomic_pool_stats(&shared, &s);
    assert_int_equal(s.live, 0);
    assert_int_equal(s.allocs, allocs);
    assert_int_equal(s.frees, allocs);
    assert_true(s.allocs > ops_per_thread);
    assert_true(s.peak_live <= STAMPED_BLOCKS);
    assert_int_equal(s.rejected, 0);
    assert_int_equal(pk_atomic_pool_available(&shared), STAMPED_BLOCKS);
    assert_check_ok(&shared);
    assert_int_equal(faults.calls, 0);
}

/* Two threads free the same block at the same moment, many times: exactly one
 * free succeeds each time, the other is a double free, and the pool stays
 * whole. */
static pthread_barrier_t start_line;
static void *_Atomic contested;
static atomic_int racer_status[2];
static atomic_bool racers_stop;

static void *racer(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (;;) {
        pthread_barrier_wait(&start_line);
        if (atomic_load(&racers_stop)) {
            return NULL;
        }
        atomic_store(&racer_status[id], pk_atomic_pool_free(&shared, atomic_load(&contested)));
        pthread_barrier_wait(&start_line);
    }
}

static atomic_uint race_faults;

static void count_race_fault(const pk_fault *f, void *ctx)
{
    (void)ctx;
    if (f->kind == PK_ERR_DOUBLE_FREE) {
        atomic_fetch_add(&race_faults, 1);
    }
}

static void test_racing_double_frees(void **state)
{
    (void)state;
    assert_int_equal(pk_atomic_pool_init(&shared, arena, PK_ATOMIC_POOL_BUFFER_SIZE(32, 8, 0), 32, 0), PK_OK);
    pk_set_fault_handler(count_race_fault, NULL);
    assert_int_equal(pthread_barrier_init(&start_line, NULL, 3), 0);
    pthread_t threads[2];
    for (intptr_t i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&threads[i], NULL, racer, (void *)i), 0);
    }
    size_t rounds = random_ops() / 200;
    for (size_t r = 0; r < rounds; r++) {
        void *b = pk_atomic_pool_alloc(&shared);
        assert_non_null(b);
        atomic_store(&contested, b);
        pthread_barrier_wait(&start_line); /* go */
        pthread_barrier_wait(&start_line); /* both done */
        int s0 = atomic_load(&racer_status[0]), s1 = atomic_load(&racer_status[1]);
        assert_true((s0 == PK_OK && s1 == PK_ERR_DOUBLE_FREE) || (s1 == PK_OK && s0 == PK_ERR_DOUBLE_FREE));
    }
    atomic_store(&racers_stop, true);
    pthread_barrier_wait(&start_line);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    }
    pthread_barrier_destroy(&start_line);
    pk_set_fault_handler(count_fault, NULL);
    assert_int_equal(atomic_load(&race_faults), rounds);
    pk_stats s;
    pk_atomic_pool_stats(&shared, &s);
    assert_int_equal(s.live, 0);
    assert_int_equal(s.frees, rounds);
    assert_int_equal(s.rejected, rounds);
    assert_int_equal(pk_atomic_pool_available(&shared), 8);
    assert_check_ok(&shared);
}

/* A signal handler (an interrupt's stand-in) allocates, stamps and frees while
 * the main thread is inside alloc and free. */
static atomic_uint handler_runs, handler_misses, handler_bad;

static void on_timer(int signo)
{
    (void)signo;
    unsigned char *b[2] = {pk_atomic_pool_alloc(&shared), pk_atomic_pool_alloc(&shared)};
    for (size_t i = 0; i < 2; i++) {
        if (b[i] == NULL) {
            atomic_fetch_add_explicit(&handler_misses, 1, memory_order_relaxed);
            continue;
        }
        memset(b[i], 0x5A, 32);
    }
    for (size_t i = 0; i < 2; i++) {
        if (b[i] != NULL) {
            for (size_t k = 0; k < 32; k++) {
                if (b[i][k] != 0x5A) {
                    atomic_fetch_add_explicit(&handler_bad, 1, memory_order_relaxed);
                    break;
                }
            }
            if (pk_atomic_pool_free(&shared, b[i]) != PK_OK) {
                atomic_fetch_add_explicit(&handler_bad, 1, memory_order_relaxed);
            }
        }
    }
    atomic_fetch_add_explicit(&handler_runs, 1, memory_order_relaxed);
}

static void test_interrupt_handler_allocates(void **state)
{
    (void)state;
    assert_int_equal(pk_atomic_pool_init(&shared, arena, PK_ATOMIC_POOL_BUFFER_SIZE(32, 16, 0), 32, 0), PK_OK);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_timer;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
    struct itimerval every = {{0, 50}, {0, 50}};
    assert_int_equal(setitimer(ITIMER_REAL, &every, NULL), 0);
    unsigned char *mine[12];
    size_t bad = 0;
    for (size_t round = 0; round < random_ops() / 10 || atomic_load(&handler_runs) < 20; round++) {
        for (size_t i = 0; i < 12; i++) {
            mine[i] = pk_atomic_pool_alloc(&shared);
            bad += mine[i] == NULL; /* 16 blocks: 12 here, 2 per handler run */
            if (mine[i] != NULL) {
                memset(mine[i], (int)i, 32);
            }
        }
        for (size_t i = 0; i < 12; i++) {
            if (mine[i] != NULL) {
                for (size_t k = 0; k < 32; k++) {
                    bad += mine[i][k] != (unsigned char)i;
                }
                bad += pk_atomic_pool_free(&shared, mine[i]) != PK_OK;
            }
        }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
    signal(SIGALRM, SIG_IGN); /* a signal still pending (valgrind delivers late) is dropped */
    assert_int_equal(bad, 0);
    assert_int_equal(atomic_load(&handler_bad), 0);
    assert_int_equal(atomic_load(&handler_misses), 0);
    assert_true(atomic_load(&handler_runs) >= 20);
    assert_int_equal(pk_atomic_pool_available(&shared), 16);
    assert_check_ok(&shared);
    assert_int_equal(faults.calls, 0);
}

#if PK_DEBUG
/* Debug builds: the fault's sites and owner. */
static void expect_debug_fault(pk_status kind, const void *ptr, int alloc_line, int call_line, uint32_t owner)
{
    expect_fault_sites(kind, ptr, "irq pool", __FILE__, alloc_line, owner, call_line);
}

static void expect_whole(const pk_atomic_pool *p, size_t live, size_t requested, uint64_t rejected)
{
    assert_check_ok(p);
    pk_stats s;
    pk_atomic_pool_stats(p, &s);
    assert_int_equal(s.live, live);
    assert_int_equal(s.requested, requested);
    assert_int_equal(s.rejected, rejected);
    assert_int_equal(pk_atomic_pool_available(p), pk_atomic_pool_capacity(p) - live);
}

/* 40-byte blocks aligned to 16, 6 of them, named and owned. */
static void make_debug_pool(pk_atomic_pool *p)
{
    assert_int_equal(pk_atomic_pool_init(p, arena, PK_ATOMIC_POOL_BUFFER_SIZE(40, 6, 16), 40, 16), PK_OK);
    assert_int_equal(pk_atomic_pool_capacity(p), 6);
    pk_atomic_pool_set_name(p, "irq pool");
    pk_set_owner(7);
}

static void leak_seen(const pk_leak *leak, void *ctx)
{
    struct {
        size_t n;
        pk_leak last;
    } *seen = ctx;
    seen->n++;
    seen->last = *leak;
}

static void test_debug_overflow_and_underflow(void **state)
{
    (void)state;
    pk_atomic_pool p;
    make_debug_pool(&p);
    unsigned char *a = pk_atomic_pool_alloc(&p); int a_line = __LINE__;
    unsigned char *b = pk_atomic_pool_alloc(&p); int b_line = __LINE__;
    assert_int_equal(pk_atomic_pool_usable_size(&p, a), 40);
    assert_int_equal(a[0], PK__FILL_NEW); /* new blocks are filled */
    assert_int_equal(a[39], PK__FILL_NEW);
    assert_int_equal(a[-1], PK__FILL_GUARD); /* p[-1] and p[requested] are guard bytes */
    assert_int_equal(a[40], PK__FILL_GUARD);
    memset(a, 0, 40);
    a[40] = 0; /* overflow by one */
    assert_int_equal(pk_atomic_pool_check(&p), PK_ERR_GUARD_CORRUPT);
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, a, a_line, 0, 7);
    pk_set_owner(9);
    assert_int_equal(pk_atomic_pool_free(&p, a), PK_ERR_GUARD_CORRUPT); int free_a_line = __LINE__;
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, a, a_line, free_a_line, 7); /* the allocation's owner */
    expect_whole(&p, 1, 40, 0); /* freed all the same, guards restored */
    b[-1] = 0x11; /* underflow by one */
    assert_int_equal(pk_atomic_pool_free(&p, b), PK_ERR_GUARD_CORRUPT); int free_b_line = __LINE__;
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, b, b_line, free_b_line, 7);
    expect_whole(&p, 0, 0, 0);
    /* Every block can still be had. */
    void *all[6];
    for (size_t i = 0; i < 6; i++) {
        all[i] = pk_atomic_pool_alloc(&p);
        assert_non_null(all[i]);
    }
    assert_null(pk_atomic_pool_alloc(&p));
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(pk_atomic_pool_free(&p, all[i]), PK_OK);
    }
    assert_int_equal(faults.calls, 0);
    expect_whole(&p, 0, 0, 0);
    /* An underflow that reaches the tag: the block's size is lost, so it is
     * kept live (as pk_pool does) and reported, by free and by check. */
    unsigned char *c = pk_atomic_pool_alloc(&p);
    memset(c - 24, 0, 24);
    assert_int_equal(pk_atomic_pool_free(&p, c), PK_ERR_CORRUPT); int free_c_line = __LINE__;
    expect_debug_fault(PK_ERR_CORRUPT, c, 0, free_c_line, 0);
    assert_int_equal(pk_atomic_pool_check(&p), PK_ERR_CORRUPT);
    expect_debug_fault(PK_ERR_CORRUPT, c, 0, 0, 0);
    assert_int_equal(pk_atomic_pool_available(&p), 5);
    pk_set_owner(0);
}

static void test_debug_write_after_free(void **state)
{
    (void)state;
    pk_atomic_pool p;
    make_debug_pool(&p);
    unsigned char *keep = pk_atomic_pool_alloc(&p);
    unsigned char *a = pk_atomic_pool_alloc(&p); int a_line = __LINE__;
    assert_int_equal(pk_atomic_pool_free(&p, a), PK_OK);
    assert_int_equal(a[0], PK__FILL_POISON); /* freed blocks are poisoned */
    a[5] = 1; /* a write after free */
    /* check finds it, with the tag of the allocation it was freed from */
    assert_int_equal(pk_atomic_pool_check(&p), PK_ERR_USE_AFTER_FREE);
    expect_debug_fault(PK_ERR_USE_AFTER_FREE, a, a_line, 0, 7);
    /* and so does the alloc that hands it out again (LIFO: the same block),
     * once, and hands it out refilled */
    unsigned char *again = pk_atomic_pool_alloc(&p); int again_line = __LINE__;
    assert_ptr_equal(again, a);
    expect_debug_fault(PK_ERR_USE_AFTER_FREE, a, a_line, again_line, 7);
    for (size_t i = 0; i < 40; i++) {
        assert_int_equal(again[i], PK__FILL_NEW);
    }
    expect_whole(&p, 2, 80, 0);
    assert_int_equal(pk_atomic_pool_free(&p, again), PK_OK);
    assert_int_equal(pk_atomic_pool_free(&p, keep), PK_OK);
    assert_int_equal(faults.calls, 0);
    expect_whole(&p, 0, 0, 0);
    pk_set_owner(0);
}

static void test_debug_bad_frees(void **state)
{
    (void)state;
    pk_atomic_pool p;
    make_debug_pool(&p);
    unsigned char *a = pk_atomic_pool_alloc(&p); int a_line = __LINE__;
    unsigned char *b = pk_atomic_pool_alloc(&p);
    assert_int_equal(pk_atomic_pool_free(&p, a), PK_OK);
    assert_int_equal(pk_atomic_pool_free(&p, a), PK_ERR_DOUBLE_FREE); int df_line = __LINE__;
    expect_debug_fault(PK_ERR_DOUBLE_FREE, a, a_line, df_line, 7);
    expect_whole(&p, 1, 40, 1);
    assert_int_equal(pk_atomic_pool_free(&p, b + 1), PK_ERR_MISALIGNED_PTR); int in_line = __LINE__;
    expect_debug_fault(PK_ERR_MISALIGNED_PTR, b + 1, 0, in_line, 0);
    assert_int_equal(pk_atomic_pool_free(&p, b - PK_DEBUG_PREFIX_(16)), PK_ERR_MISALIGNED_PTR); /* the raw block */
    faults.calls = 0;
    static unsigned char elsewhere[64];
    assert_int_equal(pk_atomic_pool_free(&p, elsewhere + 16), PK_ERR_FOREIGN_PTR); int fp_line = __LINE__;
    expect_debug_fault(PK_ERR_FOREIGN_PTR, elsewhere + 16, 0, fp_line, 0);
    expect_whole(&p, 1, 40, 4);
    /* The generic view: requested sizes, usable size, leaks (block order). */
    pk_allocator *v = pk_atomic_pool_allocator(&p);
    uint64_t mark = pk_leak_mark();
    void *small = pk_alloc(v, 3); int small_line = __LINE__;
    assert_int_equal(pk_atomic_pool_usable_size(&p, small), 3);
    ((unsigned char *)small)[3] = 0; /* past the request: caught */
    assert_int_equal(pk_free(v, small), PK_ERR_GUARD_CORRUPT);
    faults.calls = 0;
    small = pk_alloc(v, 3); small_line = __LINE__;
    expect_whole(&p, 2, 43, 4);
    struct {
        size_t n;
        pk_leak last;
    } seen = {0, {0}};
    pk_leaks_since(v, mark, leak_seen, &seen);
    assert_int_equal(seen.n, 1);
    assert_ptr_equal(seen.last.ptr, small);
    assert_int_equal(seen.last.size, 3);
    assert_int_equal(seen.last.line, small_line);
    assert_int_equal(seen.last.owner, 7);
    seen.n = 0;
    pk_leaks(v, leak_seen, &seen);
    assert_int_equal(seen.n, 2);
    assert_int_equal(pk_free(v, small), PK_OK);
    assert_int_equal(pk_atomic_pool_free(&p, b), PK_OK);
    assert_int_equal(faults.calls, 0);
    expect_whole(&p, 0, 0, 4);
    pk_set_owner(0);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_rejects_bad_arguments, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_block_limit, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_buffer_size_gives_exact_capacity, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_alloc_every_block, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_peaks, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_misuse_cases, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_misuse_through_the_driver, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_generic_view, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_usage_damage, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_free_list_damage, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_alloc_meets_damaged_metadata, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_small_blocks, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_descriptors, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_odd_blocks, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_threads_cross_frees, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_racing_double_frees, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_interrupt_handler_allocates, setup_faults, teardown_faults),
#if PK_DEBUG
        cmocka_unit_test_setup_teardown(test_debug_overflow_and_underflow, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_write_after_free, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_bad_frees, setup_faults, teardown_faults),
#endif
    };
    return cmocka_run_group_tests_name("atomic pool", tests, NULL, NULL);
}
