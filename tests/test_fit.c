/* Unit tests of the free-list heap with placement policies (poolkit/fit.h). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
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
#include "poolkit/fit.h"
#include "poolkit/pthread_lock.h"

#define W sizeof(size_t)
#define A PK_FIT_ALIGN
#define MINB PK_FIT_MIN_BLOCK
#define BLK(n) PK_FIT_BLOCK_SIZE(n)

static void expect_fault(pk_status kind, const void *ptr)
{
    expect_fault_named(kind, ptr, "fit");
}

static void assert_check_ok(const pk_fit *f)
{
    unsigned before = faults.calls;
    assert_int_equal(pk_fit_check(f), PK_OK);
    assert_int_equal(faults.calls, before);
}

static void assert_check_corrupt(const pk_fit *f)
{
    faults.calls = 0;
    assert_int_equal(pk_fit_check(f), PK_ERR_CORRUPT);
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, PK_ERR_CORRUPT);
    assert_null(faults.last.ptr);
    faults.calls = 0;
}

static _Alignas(4096) unsigned char arena[1 << 20];

static size_t word_at(const void *at)
{
    size_t v;
    memcpy(&v, at, sizeof v);
    return v;
}

static void set_word(void *at, size_t v)
{
    memcpy(at, &v, sizeof v);
}

static void *ptr_at(const void *at)
{
    void *v;
    memcpy(&v, at, sizeof v);
    return v;
}

static void set_ptr(void *at, const void *v)
{
    memcpy(at, &v, sizeof v);
}

/* Debug builds (PK_DEBUG): a client pointer lies PK_DEBUG_PREFIX_ bytes past
 * its block's payload (its tag and front guard come first); RAW gives the
 * payload, where the heap's own layout is found. Release builds: the pointer
 * itself. */
#if PK_DEBUG
#define RAW(p) ((unsigned char *)(p) - PK_DEBUG_PREFIX_(A))
#else
#define RAW(p) ((unsigned char *)(p))
#endif

/* A block's header, and a free block's links and footer. */
static unsigned char *header_of(void *payload)
{
    return RAW(payload) - W;
}

static unsigned char *prev_link(void *payload)
{
    return RAW(payload);
}

static unsigned char *next_link(void *payload)
{
    return RAW(payload) + sizeof(void *);
}

static unsigned char *footer_of(void *payload)
{
    return header_of(payload) + (word_at(header_of(payload)) & ~(A - 1)) - W;
}

static pk_stats stats_of(const pk_fit *f)
{
    pk_stats s;
    pk_fit_stats(f, &s);
    return s;
}

/* A heap over arena whose blocks span exactly `total` bytes (a multiple of
 * A): one free block of total bytes, capacity total - W. */
static void make_heap(pk_fit *f, size_t total, pk_fit_policy policy, unsigned flags)
{
    assert_int_equal(total % A, 0);
    pk_driver_fill_garbage(arena, total + A, total);
    assert_int_equal(pk_fit_init(f, arena, total + A, policy, flags), PK_OK);
    assert_int_equal(f->end - f->start, total);
    assert_int_equal(stats_of(f).capacity, total - W);
    assert_check_ok(f);
}

/* The heap is back to its empty state: one free block over everything. */
static void assert_whole(const pk_fit *f)
{
    assert_check_ok(f);
    pk_stats s = stats_of(f);
    assert_int_equal(s.live, 0);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.free_bytes, s.capacity);
    /* Debug builds: the largest request leaves room for its tag and guards. */
    assert_int_equal(s.largest_free, s.capacity - PK_FIT_DEBUG_BYTES_);
    assert_int_equal(f->free_blocks, 1);
}

#if PK_DEBUG
/* Debug builds: freed blocks wait in the quarantine, live to the heap, and
 * merge when they leave it. A request that no block can serve drains it
 * (and counts one failure). */
static void drain_quarantine(pk_fit *f)
{
    assert_null(pk_fit_alloc(f, (size_t)(f->end - f->start)));
    assert_int_equal(f->debug.held, 0);
}
#define DRAIN(f) drain_quarantine(f)
#else
#define DRAIN(f) ((void)0)
#endif

/* Frees p and lets it merge now, as a release build does at once: debug
 * builds would hold it in the quarantine while anything is live. */
static void free_now(pk_fit *f, void *p)
{
    assert_int_equal(pk_fit_free(f, p), PK_OK);
    DRAIN(f);
}

/* Layouts in both builds: a request of n bytes takes a block of BLK(n) bytes
 * (debug builds: with its tag and guards), and a free block of b bytes serves
 * requests up to FILLING(b) (largest_free when it is the largest), the
 * request that fills it exactly: BLK(FILLING(b)) == b. */
#define FILLING(b) ((size_t)(b) - W - PK_FIT_DEBUG_BYTES_)

/* What usable_size says of the block a request of n bytes got, unless the
 * block was taken whole: its payload; debug builds: the request. */
#define USABLE(n) (PK_DEBUG ? (size_t)(n) : BLK(n) - W)

/* Init: argument checks. */

static size_t pad_for(const unsigned char *buf)
{
    return (A - (((uintptr_t)buf + W) % A)) % A;
}

static void test_init_rejects_bad_arguments(void **state)
{
    (void)state;
    pk_fit f;
    memset(&f, 0x5A, sizeof f);
    unsigned char before[sizeof f];
    memcpy(before, &f, sizeof f);
    assert_int_equal(pk_fit_init(NULL, arena, 4096, PK_FIT_FIRST, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_fit_init(&f, NULL, 4096, PK_FIT_FIRST, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_fit_init(&f, arena, 4096, (pk_fit_policy)3, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_fit_init(&f, arena, 4096, (pk_fit_policy)-1, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_fit_init(&f, arena, 4096, PK_FIT_FIRST, 2), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_fit_init(&f, arena, 4096, PK_FIT_BEST, PK_FIT_NO_COALESCE | 0x100u), PK_ERR_INVALID_ARG);
    /* A size that would wrap the address space. */
    assert_int_equal(pk_fit_init(&f, arena + 1, SIZE_MAX, PK_FIT_FIRST, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_fit_init(&f, arena, SIZE_MAX - (uintptr_t)arena + 1, PK_FIT_FIRST, 0), PK_ERR_INVALID_ARG);
    /* Too small for one block and the sentinel, at every misalignment. */
    for (size_t offset = 0; offset < A; offset++) {
        size_t smallest = pad_for(arena + offset) + W + MINB;
        for (size_t size = 0; size < smallest; size++) {
            assert_int_equal(pk_fit_init(&f, arena + offset, size, PK_FIT_FIRST, 0), PK_ERR_INVALID_ARG);
        }
    }
    assert_memory_equal(&f, before, sizeof f);
    assert_int_equal(faults.calls, 0); /* init failures do not call the handler */
    for (size_t offset = 0; offset < A; offset++) {
        size_t smallest = pad_for(arena + offset) + W + MINB;
        assert_int_equal(pk_fit_init(&f, arena + offset, smallest, PK_FIT_NEXT, 0), PK_OK);
        pk_stats s = stats_of(&f);
        assert_int_equal(s.capacity, MINB - W);
        if (BLK(0) > MINB) {
            /* Debug builds: a tag and guards do not fit the smallest heap;
             * the smallest that holds one has BLK(0) bytes of blocks. */
            assert_int_equal(s.largest_free, 0);
            assert_null(pk_fit_alloc(&f, 0));
            assert_int_equal(pk_fit_init(&f, arena + offset, smallest - MINB + BLK(0), PK_FIT_NEXT, 0), PK_OK);
            s = stats_of(&f);
            assert_int_equal(s.capacity, BLK(0) - W);
        }
        assert_int_equal(s.largest_free, FILLING(BLK(0)));
        void *p = pk_fit_alloc(&f, 0);
        assert_non_null(p);
        assert_ptr_equal(RAW(p), arena + offset + pad_for(arena + offset) + W);
        assert_null(pk_fit_alloc(&f, 0));
        assert_int_equal(pk_fit_free(&f, p), PK_OK);
        assert_non_null(p = pk_fit_alloc(&f, FILLING(BLK(0))));
        assert_int_equal(pk_fit_free(&f, p), PK_OK);
        assert_null(pk_fit_alloc(&f, FILLING(BLK(0)) + 1));
        assert_whole(&f);
    }
}

/* The capacity follows from the size and the padding only, and
 * PK_FIT_BUFFER_SIZE(n, count) bytes serve count requests of n bytes
 * wherever the buffer lies. */
static unsigned char sized_buffer[PK_FIT_BUFFER_SIZE(100, 10)]; /* a constant expression */

static void test_layout_and_buffer_size(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 8, 23, 24, 25, 100, 1000, 4096};
    for (size_t offset = 0; offset < 2 * A; offset++) {
        pk_fit f;
        size_t size = 10000 + offset * 3;
        assert_int_equal(pk_fit_init(&f, arena + offset, size, PK_FIT_FIRST, 0), PK_OK);
        size_t total = (size - pad_for(arena + offset) - W) / A * A;
        assert_int_equal(stats_of(&f).capacity, total - W);
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            size_t n = sizes[si], count = 20;
            size_t bytes = PK_FIT_BUFFER_SIZE(n, count);
            pk_driver_fill_garbage(arena + offset, bytes, n);
            assert_int_equal(pk_fit_init(&f, arena + offset, bytes, PK_FIT_FIRST, 0), PK_OK);
            unsigned char *blocks[20];
            for (size_t i = 0; i < count; i++) {
                blocks[i] = pk_fit_alloc(&f, n);
                assert_non_null(blocks[i]);
                assert_int_equal((uintptr_t)blocks[i] % A, 0);
                assert_true(blocks[i] >= arena + offset && blocks[i] + n <= arena + offset + bytes);
                size_t usable = pk_fit_usable_size(&f, blocks[i]);
#if PK_DEBUG
                assert_int_equal(usable, n); /* debug builds: the request (the rear guard follows) */
#else
                assert_true(usable >= n && usable >= MINB - W);
                if (i + 1 < count) {
                    assert_int_equal(usable, BLK(n) - W);
                }
#endif
                memset(blocks[i], (int)(0xA0 + i), usable);
                for (size_t j = 0; j < i; j++) {
                    assert_true(blocks[j] + BLK(n) - W <= blocks[i] || blocks[i] + usable <= blocks[j]);
                }
            }
            assert_check_ok(&f);
            for (size_t i = 0; i < count; i++) {
                for (size_t k = 0; k < n; k++) {
                    assert_int_equal(blocks[i][k], (unsigned char)(0xA0 + i));
                }
                assert_int_equal(pk_fit_free(&f, blocks[i]), PK_OK);
            }
            assert_whole(&f);
        }
    }
    pk_fit f;
    assert_int_equal(pk_fit_init(&f, sized_buffer, sizeof sized_buffer, PK_FIT_BEST, 0), PK_OK);
    for (size_t i = 0; i < 10; i++) {
        assert_non_null(pk_fit_alloc(&f, 100));
    }
    assert_int_equal(faults.calls, 0);
}

/* Size 0 is the smallest block, a unique pointer; sizes too large are
 * failures, not faults. */
static void test_sizes_zero_and_too_large(void **state)
{
    (void)state;
    pk_fit f;
    make_heap(&f, 4096, PK_FIT_FIRST, 0);
    void *a = pk_fit_alloc(&f, 0);
    void *b = pk_fit_alloc(&f, 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_int_equal((unsigned char *)b - (unsigned char *)a, BLK(0));
    assert_int_equal(pk_fit_usable_size(&f, a), USABLE(0));
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - W + 1, SIZE_MAX - W, SIZE_MAX - A, SIZE_MAX / 2, 4096};
    for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
        assert_null(pk_fit_alloc(&f, huge[i]));
        assert_null(pk_fit_alloc_aligned(&f, huge[i], 64));
        assert_null(pk_fit_realloc(&f, a, huge[i]));
    }
    assert_null(pk_calloc(pk_fit_allocator(&f), SIZE_MAX / 2, 3)); /* overflow: one failure */
    pk_stats s = stats_of(&f);
    assert_int_equal(s.failures, 3 * (sizeof huge / sizeof *huge) + 1);
    assert_int_equal(s.rejected, 0);
    assert_int_equal(s.live, 2);
    assert_int_equal(faults.calls, 0);
    /* The whole rest is one request. */
    void *rest = pk_fit_alloc(&f, s.largest_free);
    assert_non_null(rest);
    assert_int_equal(stats_of(&f).largest_free, 0);
    assert_null(pk_fit_alloc(&f, 0));
    assert_int_equal(pk_fit_free(&f, a), PK_OK);
    assert_int_equal(pk_fit_free(&f, rest), PK_OK);
    assert_int_equal(pk_fit_free(&f, b), PK_OK);
    assert_whole(&f);
    /* An empty heap serves its whole capacity at once (less, in debug builds,
     * a tag and guards: assert_whole pins largest_free), and not a byte more. */
    assert_null(pk_fit_alloc(&f, stats_of(&f).largest_free + 1));
    void *all = pk_fit_alloc(&f, stats_of(&f).largest_free);
    assert_non_null(all);
    assert_int_equal(pk_fit_free(&f, all), PK_OK);
    assert_whole(&f);
}

/* REST: the largest rest of a block that cannot be a block of its own (a
 * multiple of A below MINB): A on 64-bit targets, 0 where the smallest block
 * is one alignment step (i386: A = MINB = 16), where every rest is a block. */
#define REST ((MINB - 1) / A * A)

/* Placement policies on a constructed free list: holes of 2S + R, S + R and
 * 4S + R bytes (S = SMALL_BLOCK, the block of the small requests below; R =
 * REST; in release builds on 64-bit targets, the blocks of requests of 64, 32
 * and 128 bytes), in that address order, each followed by a live separator,
 * and the rest of the heap live. */
#define SMALL 24
#define SMALL_BLOCK BLK(SMALL)
static const size_t hole_block[3] = {2 * SMALL_BLOCK + REST, SMALL_BLOCK + REST, 4 * SMALL_BLOCK + REST};

typedef struct {
    unsigned char *hole[3];
    void *sep[3];
    void *fill;
} holes;

static void make_holes(pk_fit *f, pk_fit_policy policy, unsigned flags, holes *h)
{
    make_heap(f, 1 << 14, policy, flags);
    for (size_t i = 0; i < 3; i++) {
        h->hole[i] = pk_fit_alloc(f, FILLING(hole_block[i]));
        h->sep[i] = pk_fit_alloc(f, 1);
        assert_non_null(h->hole[i]);
        assert_non_null(h->sep[i]);
    }
    h->fill = pk_fit_alloc(f, stats_of(f).largest_free);
    assert_non_null(h->fill);
    for (size_t i = 0; i < 3; i++) {
        free_now(f, h->hole[i]);
    }
    assert_check_ok(f);
    assert_int_equal(f->free_blocks, 3);
    pk_stats s = stats_of(f);
    assert_int_equal(s.largest_free, FILLING(hole_block[2]));
    assert_int_equal(s.free_bytes, hole_block[0] + hole_block[1] + hole_block[2] - 3 * W);
}

static void test_first_fit_picks_lowest_address(void **state)
{
    (void)state;
    pk_fit f;
    holes h;
    make_holes(&f, PK_FIT_FIRST, 0, &h);
    assert_ptr_equal(pk_fit_alloc(&f, SMALL), h.hole[0]);               /* the 2S + R hole comes first */
    assert_ptr_equal(pk_fit_alloc(&f, SMALL), h.hole[0] + SMALL_BLOCK); /* and its rest still does */
    /* Only the 4S + R hole holds 3S + R. */
    assert_ptr_equal(pk_fit_alloc(&f, FILLING(3 * SMALL_BLOCK + REST)), h.hole[2]);
    assert_ptr_equal(pk_fit_alloc(&f, SMALL), h.hole[1]); /* the lowest fitting again */
    assert_check_ok(&f);
}

static void test_best_fit_picks_smallest(void **state)
{
    (void)state;
    pk_fit f;
    holes h;
    make_holes(&f, PK_FIT_BEST, 0, &h);
    assert_ptr_equal(pk_fit_alloc(&f, SMALL), h.hole[1]); /* S + R: the smallest that fits */
    assert_int_equal(f.free_blocks, 2);                   /* taken whole: R bytes are no block */
    assert_ptr_equal(pk_fit_alloc(&f, FILLING(hole_block[0])), h.hole[0]); /* an exact fit */
    assert_ptr_equal(pk_fit_alloc(&f, SMALL), h.hole[2]); /* the last one left */
    assert_check_ok(&f);
    /* Ties go to the lowest address. */
    make_holes(&f, PK_FIT_BEST, 0, &h);
    /* 3S leaves a rest as large as hole[1]. */
    assert_ptr_equal(pk_fit_alloc(&f, FILLING(3 * SMALL_BLOCK)), h.hole[2]);
    assert_int_equal(hole_block[2] - BLK(FILLING(3 * SMALL_BLOCK)), hole_block[1]);
    assert_ptr_equal(pk_fit_alloc(&f, SMALL), h.hole[1]); /* the lower of the two */
    assert_ptr_equal(pk_fit_alloc(&f, SMALL), h.hole[2] + 3 * SMALL_BLOCK);
    assert_ptr_equal(pk_fit_alloc(&f, SMALL), h.hole[0]);
    assert_check_ok(&f);
}

static void test_next_fit_continues_after_last_allocation(void **state)
{
    (void)state;
    pk_fit f;
    holes h;
    make_holes(&f, PK_FIT_NEXT, 0, &h);
    assert_ptr_equal(f.rover, f.anchor); /* the fill took the last free block: start over */
    assert_ptr_equal(pk_fit_alloc(&f, FILLING(3 * SMALL_BLOCK + REST)), h.hole[2]);
    /* First fit would take the 2S + R hole; next fit goes on from the rest
     * of the block it just split. */
    assert_ptr_equal(pk_fit_alloc(&f, SMALL), h.hole[2] + 3 * SMALL_BLOCK + REST);
    /* Nothing after it: it wraps around to the lowest address. */
    assert_ptr_equal(pk_fit_alloc(&f, SMALL), h.hole[0]);
    assert_ptr_equal(pk_fit_alloc(&f, SMALL), h.hole[0] + SMALL_BLOCK);
    assert_ptr_equal(pk_fit_alloc(&f, SMALL), h.hole[1]);
    assert_null(pk_fit_alloc(&f, 0));
    assert_check_ok(&f);

    /* The same holes under first fit, for the contrast. */
    make_holes(&f, PK_FIT_FIRST, 0, &h);
    assert_ptr_equal(pk_fit_alloc(&f, FILLING(3 * SMALL_BLOCK + REST)), h.hole[2]);
    assert_ptr_equal(pk_fit_alloc(&f, SMALL), h.hole[0]);
}

/* The rover follows the block it points at through merges and removals. */
static void test_next_fit_rover_survives_merges(void **state)
{
    (void)state;
    pk_fit f;
    holes h;
    make_holes(&f, PK_FIT_NEXT, 0, &h);
    assert_ptr_equal(pk_fit_alloc(&f, SMALL), h.hole[0]);
    assert_ptr_equal(f.rover, header_of(h.hole[0] + SMALL_BLOCK)); /* the rest of the hole */
    /* The rover's block merges into the block before it: the merged block is
     * the rover. */
    free_now(&f, h.hole[0]);
    assert_ptr_equal(f.rover, header_of(h.hole[0]));
    assert_check_ok(&f);
    /* The blocks after it merge into it: still the rover. */
    free_now(&f, h.sep[0]);
    assert_ptr_equal(f.rover, header_of(h.hole[0]));
    assert_int_equal(f.free_blocks, 2);
    assert_check_ok(&f);
    size_t merged = hole_block[0] + BLK(1) + hole_block[1];
    /* (The merged block is the largest but where REST is 0: then hole[2].) */
    size_t largest = merged > hole_block[2] ? merged : hole_block[2];
    assert_int_equal(stats_of(&f).largest_free, FILLING(largest));
    /* Split again; then a realloc grows into the rover's block and takes it
     * whole: the rover moves on to the next free block. Debug builds resize
     * nothing in place (a resized block moves, its guards with it): there
     * an allocation takes the rover's block whole, as the realloc would. */
    assert_ptr_equal(pk_fit_alloc(&f, 0), h.hole[0]);
    assert_ptr_equal(f.rover, header_of(h.hole[0] + BLK(0)));
#if PK_DEBUG
    assert_ptr_equal(pk_fit_alloc(&f, FILLING(merged - BLK(0))), h.hole[0] + BLK(0));
#else
    assert_ptr_equal(pk_fit_realloc(&f, h.hole[0], merged - W), h.hole[0]);
#endif
    assert_ptr_equal(f.rover, header_of(h.hole[2]));
    assert_check_ok(&f);
    assert_ptr_equal(pk_fit_alloc(&f, SMALL), h.hole[2]);
    assert_check_ok(&f);

    /* The rover's block is the third of a three-way merge: the merged block
     * becomes the rover. */
    make_holes(&f, PK_FIT_NEXT, 0, &h);
    assert_ptr_equal(pk_fit_alloc(&f, FILLING(hole_block[0])), h.hole[0]); /* hole[0] whole */
    assert_ptr_equal(f.rover, header_of(h.hole[1]));
    free_now(&f, h.hole[0]);
    assert_ptr_equal(f.rover, header_of(h.hole[1]));
    free_now(&f, h.sep[0]);
    assert_ptr_equal(f.rover, header_of(h.hole[0]));
    assert_ptr_equal(f.hint, header_of(h.hole[0])); /* free's hint: the block freed into */
    assert_check_ok(&f);
    assert_ptr_equal(pk_fit_alloc(&f, 0), h.hole[0]);
}

/* Coalescing with the block before, after, both, and none with
 * PK_FIT_NO_COALESCE. */
typedef struct {
    void *x, *y, *z, *fill;
} trio;

static void make_trio(pk_fit *f, unsigned flags, trio *t)
{
    make_heap(f, 4096, PK_FIT_FIRST, flags);
    t->x = pk_fit_alloc(f, 100);
    t->y = pk_fit_alloc(f, 200);
    t->z = pk_fit_alloc(f, 300);
    t->fill = pk_fit_alloc(f, stats_of(f).largest_free);
    assert_non_null(t->fill);
    assert_int_equal(f->free_blocks, 0);
}

static void test_coalescing(void **state)
{
    (void)state;
    pk_fit f;
    trio t;

    /* With the block before. */
    make_trio(&f, 0, &t);
    free_now(&f, t.x);
    free_now(&f, t.y);
    assert_int_equal(f.free_blocks, 1);
    assert_int_equal(stats_of(&f).largest_free, FILLING(BLK(100) + BLK(200)));
    assert_check_ok(&f);
    assert_ptr_equal(pk_fit_alloc(&f, FILLING(BLK(100) + BLK(200))), t.x);

    /* With the block after. */
    make_trio(&f, 0, &t);
    free_now(&f, t.z);
    free_now(&f, t.y);
    assert_int_equal(f.free_blocks, 1);
    assert_int_equal(stats_of(&f).largest_free, FILLING(BLK(200) + BLK(300)));
    assert_check_ok(&f);
    assert_ptr_equal(pk_fit_alloc(&f, FILLING(BLK(200) + BLK(300))), t.y);

    /* With both. */
    make_trio(&f, 0, &t);
    free_now(&f, t.x);
    free_now(&f, t.z);
    assert_int_equal(f.free_blocks, 2);
    free_now(&f, t.y);
    assert_int_equal(f.free_blocks, 1);
    pk_stats s = stats_of(&f);
    size_t all_three = BLK(100) + BLK(200) + BLK(300);
    assert_int_equal(s.largest_free, FILLING(all_three));
    assert_int_equal(s.free_bytes, all_three - W); /* one block: one header */
    assert_check_ok(&f);
    /* And with the rest of the heap: everything is one block again. */
    assert_int_equal(pk_fit_free(&f, t.fill), PK_OK);
    assert_whole(&f);

    /* None: three separate blocks, none large enough for two of them. */
    make_trio(&f, PK_FIT_NO_COALESCE, &t);
    free_now(&f, t.x);
    free_now(&f, t.z);
    free_now(&f, t.y);
    assert_int_equal(f.free_blocks, 3);
    s = stats_of(&f);
    assert_int_equal(s.largest_free, FILLING(BLK(300)));
    assert_int_equal(s.free_bytes, all_three - 3 * W);
    assert_null(pk_fit_alloc(&f, FILLING(BLK(200) + BLK(300)))); /* y and z, were they merged */
    assert_check_ok(&f);
    free_now(&f, t.fill);
    assert_int_equal(f.free_blocks, 4);
    assert_check_ok(&f);
    /* Blocks are still split, and each piece serves what fits it. */
    assert_ptr_equal(pk_fit_alloc(&f, 10), t.x);
    assert_ptr_equal(pk_fit_alloc(&f, FILLING(BLK(100) - BLK(10))), (unsigned char *)t.x + BLK(10));
    assert_check_ok(&f);
}

/* The classic external fragmentation example: holes of 4, 8 and 2 units
 * between live blocks; 14 units are free, yet 10 cannot be had. */
static void test_external_fragmentation_example(void **state)
{
    (void)state;
    const size_t unit = BLK(64 - W); /* 64 bytes in release builds */
    static const size_t units[3] = {4, 8, 2};
    for (unsigned flags = 0; flags <= PK_FIT_NO_COALESCE; flags++) {
        pk_fit f;
        make_heap(&f, 1 << 14, PK_FIT_FIRST, flags);
        void *hole[3], *used[3];
        for (size_t i = 0; i < 3; i++) {
            hole[i] = pk_fit_alloc(&f, FILLING(units[i] * unit)); /* a block of exactly units[i] units */
            used[i] = pk_fit_alloc(&f, FILLING(unit));
            assert_non_null(hole[i]);
            assert_non_null(used[i]);
        }
        void *rest = pk_fit_alloc(&f, stats_of(&f).largest_free);
        assert_non_null(rest);
        for (size_t i = 0; i < 3; i++) {
            free_now(&f, hole[i]);
        }
        pk_stats s = stats_of(&f);
        assert_int_equal(s.free_bytes, 14 * unit - 3 * W);
        assert_int_equal(s.largest_free, FILLING(8 * unit));
        uint64_t failures = s.failures;
        assert_null(pk_fit_alloc(&f, FILLING(10 * unit))); /* 10 units: no hole holds them */
        s = stats_of(&f);
        assert_int_equal(s.failures, failures + 1);
        double frag = pk_frag_external(&s);
        assert_true(frag > 0.4);
        assert_true(fabs(frag - (1.0 - (double)s.largest_free / (double)s.free_bytes)) < 1e-12);
        assert_int_equal(faults.calls, 0);
        /* The largest hole still serves its whole size. */
        void *eight = pk_fit_alloc(&f, s.largest_free);
        assert_ptr_equal(eight, hole[1]);
        assert_int_equal(pk_fit_free(&f, eight), PK_OK);
        /* Freeing the live blocks between the holes joins them (unless
         * coalescing is off): then 10 units fit. */
        for (size_t i = 0; i < 3; i++) {
            free_now(&f, used[i]);
        }
        void *ten = pk_fit_alloc(&f, FILLING(10 * unit));
        if (flags == 0) {
            assert_ptr_equal(ten, hole[0]);
            assert_true(pk_frag_external(&(pk_stats){0}) == 0.0);
        } else {
            assert_null(ten);
        }
        assert_check_ok(&f);
    }
}

/* realloc: shrink in place, grow in place into the next free block, move. */
static void fill_bytes(void *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++) {
        ((unsigned char *)p)[i] = (unsigned char)(seed + i * 7);
    }
}

static void assert_bytes(const void *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(((const unsigned char *)p)[i], (unsigned char)(seed + i * 7));
    }
}

#if PK_DEBUG
/* Debug builds resize nothing in place (src/fit.c leaves in-place resizing
 * out): realloc moves p whenever its size changes, so that its rear guard
 * follows the new size, keeping its first `kept` bytes (written with seed)
 * and counting as one alloc and one free. */
static unsigned char *expect_moved(pk_fit *f, unsigned char *p, size_t size, size_t kept, unsigned char seed)
{
    pk_stats before = stats_of(f);
    unsigned char *moved = pk_fit_realloc(f, p, size);
    assert_non_null(moved);
    assert_ptr_not_equal(moved, p);
    assert_int_equal(pk_fit_usable_size(f, moved), size);
    assert_int_equal(pk_fit_usable_size(f, p), 0);
    assert_bytes(moved, kept, seed);
    pk_stats after = stats_of(f);
    assert_int_equal(after.allocs, before.allocs + 1);
    assert_int_equal(after.frees, before.frees + 1);
    assert_int_equal(after.live, before.live);
    assert_check_ok(f);
    return moved;
}
#endif

static void test_realloc_in_place(void **state)
{
    (void)state;
    for (unsigned flags = 0; flags <= PK_FIT_NO_COALESCE; flags++) {
        pk_fit f;
        make_heap(&f, 8192, PK_FIT_FIRST, flags);
        unsigned char *a = pk_fit_alloc(&f, 200);
        unsigned char *b = pk_fit_alloc(&f, 200);
        fill_bytes(a, 200, 1);
#if PK_DEBUG
        /* The resizes below, each a move; the same size keeps the block. */
        a = expect_moved(&f, a, 50, 50, 1);
        assert_ptr_equal(pk_fit_realloc(&f, a, 50), a);
        fill_bytes(a, 50, 2);
        a = expect_moved(&f, a, 150, 50, 2);
        a = expect_moved(&f, a, 200 - A, 50, 2);
        fill_bytes(b, 200, 3);
        b = expect_moved(&f, b, 10, 10, 3);
        b = expect_moved(&f, b, 5000, 10, 3);
#else
        pk_stats before = stats_of(&f);

        /* Shrink: the tail is freed as a block of its own. */
        assert_ptr_equal(pk_fit_realloc(&f, a, 50), a);
        assert_int_equal(pk_fit_usable_size(&f, a), BLK(50) - W);
        assert_int_equal(f.free_blocks, 2);
        assert_bytes(a, 50, 1);
        assert_check_ok(&f);
        /* A shrink whose rest cannot be a block changes nothing. */
        assert_ptr_equal(pk_fit_realloc(&f, a, BLK(50) - W - REST), a);
        assert_int_equal(pk_fit_usable_size(&f, a), BLK(50) - W);
        /* Grow into the free block after it, splitting it. */
        fill_bytes(a, 50, 2);
        assert_ptr_equal(pk_fit_realloc(&f, a, 150), a);
        assert_int_equal(pk_fit_usable_size(&f, a), BLK(150) - W);
        assert_int_equal(f.free_blocks, 2);
        assert_bytes(a, 50, 2);
        assert_check_ok(&f);
        /* Grow into all of it (the rest would be too small for a block). */
        assert_ptr_equal(pk_fit_realloc(&f, a, 200 - REST), a);
        assert_int_equal(pk_fit_usable_size(&f, a), BLK(200) - W);
        assert_int_equal(f.free_blocks, 1);
        assert_bytes(a, 50, 2);
        assert_check_ok(&f);
        pk_stats after = stats_of(&f);
        assert_int_equal(after.in_use, before.in_use);
        assert_int_equal(after.allocs, before.allocs); /* in-place resizes count as neither */
        assert_int_equal(after.frees, before.frees);

        /* Shrink next to the free tail: the rest joins it (or, without
         * coalescing, stays apart). */
        fill_bytes(b, 200, 3);
        assert_ptr_equal(pk_fit_realloc(&f, b, 10), b);
        assert_int_equal(f.free_blocks, flags == 0 ? 1 : 2);
        assert_bytes(b, 10, 3);
        assert_check_ok(&f);
        if (flags == 0) {
            /* Grow into the tail. */
            assert_ptr_equal(pk_fit_realloc(&f, b, 5000), b);
            assert_int_equal(pk_fit_usable_size(&f, b), BLK(5000) - W);
        } else {
            /* Grow into the rest next to it, only: the tail is another block. */
            assert_ptr_equal(pk_fit_realloc(&f, b, 150), b);
            assert_int_equal(pk_fit_usable_size(&f, b), BLK(150) - W);
            unsigned char *moved = pk_fit_realloc(&f, b, 5000);
            assert_non_null(moved);
            assert_ptr_not_equal(moved, b);
            b = moved;
        }
#endif
        assert_bytes(b, 10, 3);
        assert_check_ok(&f);
        assert_int_equal(pk_fit_free(&f, a), PK_OK);
        assert_int_equal(pk_fit_free(&f, b), PK_OK);
        if (flags == 0) {
            assert_whole(&f);
        }
        assert_int_equal(faults.calls, 0);
    }
}

/* Growing into the free neighbour by exactly one alignment step puts the
 * rest's header on the neighbour's list links: the list must be updated
 * first (a bug found by review). Every step from one to eight alignments. */
static void test_realloc_grows_by_one_alignment_step(void **state)
{
    (void)state;
    for (unsigned policy = PK_FIT_FIRST; policy <= PK_FIT_NEXT; policy++) {
        for (size_t steps = 1; steps <= 8; steps++) {
            pk_fit f;
            make_heap(&f, 4096, (pk_fit_policy)policy, 0);
            unsigned char *a = pk_fit_alloc(&f, 24);
            assert_non_null(a);
            fill_bytes(a, 24, 7);
            size_t grown = pk_fit_usable_size(&f, a) + steps * A;
#if PK_DEBUG
            a = expect_moved(&f, a, grown, 24, 7);
#else
            assert_ptr_equal(pk_fit_realloc(&f, a, grown), a);
            assert_true(pk_fit_usable_size(&f, a) >= grown);
            assert_bytes(a, 24, 7);
            assert_check_ok(&f);
#endif
            assert_int_equal(pk_fit_free(&f, a), PK_OK);
            assert_whole(&f);
        }
    }
}

static void test_realloc_moves_and_fails_cleanly(void **state)
{
    (void)state;
    pk_fit f;
    make_heap(&f, 8192, PK_FIT_FIRST, 0);
    unsigned char *a = pk_fit_alloc(&f, 200);
    unsigned char *b = pk_fit_alloc(&f, 200);
    fill_bytes(a, 200, 4);
    pk_stats before = stats_of(&f);
    /* b is live after a: a moves, its bytes with it. */
    unsigned char *moved = pk_fit_realloc(&f, a, 1000);
    assert_non_null(moved);
    assert_ptr_not_equal(moved, a);
    assert_bytes(moved, 200, 4);
    assert_int_equal(pk_fit_usable_size(&f, moved), USABLE(1000));
    assert_int_equal(pk_fit_usable_size(&f, a), 0);
    pk_stats s = stats_of(&f);
    assert_int_equal(s.allocs, before.allocs + 1);
    assert_int_equal(s.frees, before.frees + 1);
    assert_int_equal(s.live, 2);
    assert_check_ok(&f);
    /* The old place is free again (first fit finds it; debug builds: once
     * it leaves the quarantine). */
    DRAIN(&f);
    assert_ptr_equal(pk_fit_alloc(&f, 200), a);
    free_now(&f, a);

    /* Failure: NULL, counted, the block untouched. */
    fill_bytes(b, 200, 5);
    s = stats_of(&f);
    assert_null(pk_fit_realloc(&f, b, 8192));
    assert_null(pk_fit_realloc(&f, b, SIZE_MAX));
    pk_stats t = stats_of(&f);
    assert_int_equal(t.failures, s.failures + 2);
    t.failures = s.failures;
    assert_memory_equal(&s, &t, sizeof s);
    assert_bytes(b, 200, 5);
    assert_int_equal(pk_fit_usable_size(&f, b), USABLE(200));
    assert_check_ok(&f);

    /* realloc(NULL, n) allocates; realloc(p, 0) frees. */
    void *c = pk_fit_realloc(&f, NULL, 30);
    assert_non_null(c);
    assert_int_equal(stats_of(&f).live, 3);
    assert_null(pk_fit_realloc(&f, c, 0));
    assert_int_equal(stats_of(&f).live, 2);
    assert_int_equal(pk_fit_usable_size(&f, c), 0);

    /* A bad pointer is reported as free would, and NULL returned. */
    static unsigned char foreign[64];
    s = stats_of(&f);
    assert_null(pk_fit_realloc(&f, foreign + 16, 10));
    expect_fault(PK_ERR_FOREIGN_PTR, foreign + 16);
    assert_null(pk_fit_realloc(&f, c, 10));
    expect_fault(PK_ERR_DOUBLE_FREE, c);
    assert_null(pk_fit_realloc(&f, b + 1, SIZE_MAX));
    expect_fault(PK_ERR_MISALIGNED_PTR, b + 1);
    assert_null(pk_fit_realloc(&f, c, 0)); /* as pk_fit_free: reported */
    expect_fault(PK_ERR_DOUBLE_FREE, c);
    t = stats_of(&f);
    assert_int_equal(t.rejected, s.rejected + 4);
    assert_int_equal(t.failures, s.failures);

    /* Through the generic view too. */
    pk_allocator *v = pk_fit_allocator(&f);
    void *g = pk_realloc(v, NULL, 100);
    fill_bytes(g, 100, 6);
    g = pk_realloc(v, g, 3000);
    assert_non_null(g);
    assert_bytes(g, 100, 6);
    assert_int_equal(pk_free(v, g), PK_OK);
    assert_int_equal(pk_fit_free(&f, moved), PK_OK);
    assert_int_equal(pk_fit_free(&f, b), PK_OK);
    assert_whole(&f);
}

/* Aligned allocation: the leading gap is given back as a free block. */
static void test_aligned_allocation(void **state)
{
    (void)state;
    for (int policy = PK_FIT_FIRST; policy <= PK_FIT_NEXT; policy++) {
        pk_fit f;
        make_heap(&f, 1 << 16, (pk_fit_policy)policy, 0);
        void *small = pk_fit_alloc(&f, 1);
        void *blocks[16];
        size_t n = 0;
        for (size_t align = 2 * A; align <= 4096; align *= 2) {
            void *p = pk_fit_alloc_aligned(&f, 100, align);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % align, 0);
            assert_true(pk_fit_usable_size(&f, p) >= 100);
            assert_check_ok(&f);
            blocks[n++] = p;
        }
        /* The gaps are free blocks: a small request lands in the first one. */
        assert_true(f.free_blocks > 1);
        pk_stats s = stats_of(&f);
        assert_int_equal(s.live, n + 1);
        /* Alignments up to the default, and 0, are plain allocations. */
        for (size_t align = 0; align <= A; align = align ? align * 2 : 1) {
            void *p = pk_fit_alloc_aligned(&f, 10, align);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % A, 0);
            blocks[n++] = p;
        }
        /* Too large an alignment is a failure, not a fault. */
        assert_null(pk_fit_alloc_aligned(&f, 10, (size_t)1 << (sizeof(size_t) * 8 - 1)));
        /* An alignment no address of the heap has. */
        size_t none = (size_t)1 << 17;
        while (((uintptr_t)f.start & ~(none - 1)) != ((uintptr_t)f.end & ~(none - 1)) ||
               (uintptr_t)f.start % none == 0) {
            none *= 2;
        }
        assert_null(pk_fit_alloc_aligned(&f, 10, none));
        assert_int_equal(faults.calls, 0);
        /* An alignment that is not a power of two: NULL and a fault. */
        s = stats_of(&f);
        assert_null(pk_fit_alloc_aligned(&f, 10, 24));
        expect_fault(PK_ERR_INVALID_ARG, NULL);
        assert_null(pk_alloc_aligned(pk_fit_allocator(&f), 10, 3));
        expect_fault(PK_ERR_INVALID_ARG, NULL);
        pk_stats t = stats_of(&f);
        assert_int_equal(t.rejected, s.rejected + 2);
        t.rejected = s.rejected;
        assert_memory_equal(&s, &t, sizeof s);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(pk_fit_free(&f, blocks[i]), PK_OK);
        }
        assert_int_equal(pk_fit_free(&f, small), PK_OK);
        assert_whole(&f);
    }
}

/* An aligned request's leading gap is empty or a free block of its own: a gap
 * too small for a block moves the request to the next aligned address. The
 * gap rules place heap payloads (RAW); debug builds put an aligned pointer
 * PK_DEBUG_PREFIX_(align) bytes past its payload (aligned too), and give its
 * block PK_DEBUG_OVERHEAD_(align) bytes beyond the request. */
static void test_aligned_gap_rules(void **state)
{
    (void)state;
    const size_t align = 256;
    const size_t prefix = PK_DEBUG ? PK_DEBUG_PREFIX_(align) : 0;
    const size_t aligned_block = BLK(8 + (PK_DEBUG ? PK_DEBUG_OVERHEAD_(align) - PK_FIT_DEBUG_BYTES_ : 0));
    pk_fit f;
    make_heap(&f, 1 << 14, PK_FIT_FIRST, 0);
    unsigned char *first = pk_fit_alloc(&f, 0);
    unsigned char *after_first = RAW(first) + BLK(0); /* the payload after first's block */
    /* The first aligned payload past first. */
    unsigned char *aligned = after_first + (align - (uintptr_t)after_first % align) % align;
    size_t to_align = (size_t)(aligned - after_first);
    assert_true(to_align >= MINB + BLK(0) + A); /* room for a pad block before each gap */
    /* Gap widths A (too small: next aligned address), MINB (a block), 0. */
    static const size_t gaps[3] = {A, MINB, 0};
    for (size_t i = 0; i < 3; i++) {
        void *pad = pk_fit_alloc(&f, FILLING(to_align - gaps[i])); /* ends gaps[i] below `aligned` */
        assert_non_null(pad);
        unsigned char *p = pk_fit_alloc_aligned(&f, 8, align);
        assert_non_null(p);
        unsigned char *want = gaps[i] >= MINB || gaps[i] == 0 ? aligned : aligned + align;
        assert_ptr_equal(p - prefix, want);
        size_t gap = (size_t)(p - prefix - (aligned - gaps[i]));
        assert_int_equal(f.free_blocks, gap != 0 ? 2 : 1);
        if (gap != 0) {
            unsigned char *gap_block = aligned - gaps[i] - W;
            assert_int_equal(word_at(gap_block), gap | 1u);                /* free, after a live block */
            assert_int_equal(word_at(p - prefix - W), aligned_block | 2u); /* live, after a free block */
        }
        assert_check_ok(&f);
        free_now(&f, p);
        free_now(&f, pad);
        assert_int_equal(f.free_blocks, 1);
        assert_check_ok(&f);
    }
    assert_int_equal(pk_fit_free(&f, first), PK_OK);
    assert_whole(&f);
}

/* Misuse: each bad free is reported once, returned, counted, and changes
 * nothing else. */
static void expect_rejected(pk_fit *f, void *p, pk_status kind)
{
    pk_stats before = stats_of(f);
    faults.calls = 0;
    assert_int_equal(pk_fit_free(f, p), kind);
    expect_fault_named(kind, p, pk_name(pk_fit_allocator(f)));
    pk_stats after = stats_of(f);
    assert_int_equal(after.rejected, before.rejected + 1);
    after.rejected = before.rejected;
    assert_memory_equal(&before, &after, sizeof before);
    assert_int_equal(pk_fit_usable_size(f, p), 0);
    assert_int_equal(faults.calls, 0);
    assert_check_ok(f);
}

static void test_misuse_cases(void **state)
{
    (void)state;
    pk_fit f;
    unsigned char *buf = arena + 256; /* room before the heap for pointers below it */
    /* No earlier test's debug tag lies where a pointer below is taken. */
    pk_driver_fill_garbage(buf, 4096, 256);
    assert_int_equal(pk_fit_init(&f, buf, 4096, PK_FIT_FIRST, 0), PK_OK);
    pk_fit_set_name(&f, "records");
    unsigned char *a = pk_fit_alloc(&f, 64);
    unsigned char *b = pk_fit_alloc(&f, 64);
    unsigned char *c = pk_fit_alloc(&f, 64);
    unsigned char *d = pk_fit_alloc(&f, 64);
    memset(a, 0, 64);

    static unsigned char foreign[64];
    expect_rejected(&f, foreign + 16, PK_ERR_FOREIGN_PTR);
    expect_rejected(&f, buf - 16, PK_ERR_FOREIGN_PTR);
    expect_rejected(&f, f.start - 1, PK_ERR_FOREIGN_PTR);
    expect_rejected(&f, f.end + W, PK_ERR_FOREIGN_PTR);
    expect_rejected(&f, f.end + 4096, PK_ERR_FOREIGN_PTR);
    expect_rejected(&f, (void *)(uintptr_t)1, PK_ERR_FOREIGN_PTR);
    expect_rejected(&f, (void *)UINTPTR_MAX, PK_ERR_FOREIGN_PTR);

    expect_rejected(&f, a + 1, PK_ERR_MISALIGNED_PTR);
    expect_rejected(&f, a + 63, PK_ERR_MISALIGNED_PTR);
    expect_rejected(&f, header_of(a), PK_ERR_MISALIGNED_PTR); /* the header */
    expect_rejected(&f, f.start, PK_ERR_MISALIGNED_PTR);      /* the first header */
    expect_rejected(&f, f.end, PK_ERR_MISALIGNED_PTR);        /* the sentinel */
    expect_rejected(&f, f.end - W, PK_ERR_MISALIGNED_PTR);    /* the last payload word */
    /* Interior pointers at payload positions: the word before is client data
     * that cannot be a header (zero, or impossible flag bits). */
    expect_rejected(&f, a + A, PK_ERR_MISALIGNED_PTR);
    memset(a, 0xFF, 64);
    expect_rejected(&f, a + A, PK_ERR_MISALIGNED_PTR);
    /* A forged live header whose block would overrun the heap. */
    set_word(a + A - W, (size_t)8192);
    expect_rejected(&f, a + A, PK_ERR_MISALIGNED_PTR);
    /* A forged plausible header contradicted by the word where its next
     * block's header would be (it says its previous block is free). */
    set_word(a + A - W, MINB);
    set_word(a + A - W + MINB, MINB | 2u);
    expect_rejected(&f, a + A, PK_ERR_MISALIGNED_PTR);
    /* A forged header that says the block before is free, with a footer that
     * disagrees with that block. */
    set_word(a + A - W + MINB, MINB);
    set_word(a + A - W, MINB | 2u);
    set_word(a + A - 2 * W, 2 * A);
    expect_rejected(&f, a + A, PK_ERR_MISALIGNED_PTR);
    /* The first block cannot have a free block before it. Debug builds: a's
     * tag says live, so a header that contradicts it is damaged metadata. */
    const pk_status not_live = PK_DEBUG ? PK_ERR_CORRUPT : PK_ERR_MISALIGNED_PTR;
    size_t saved = word_at(header_of(a));
    set_word(header_of(a), saved | 2u);
    assert_int_equal(pk_fit_free(&f, a), not_live);
    expect_fault_named(not_live, a, "records");
    set_word(header_of(a), saved);
    assert_check_ok(&f);
    /* A forged free header reads as a double free. Debug builds go by the
     * tag: an interior pointer has none, whatever the word before it. */
    set_word(a + A - W, MINB | 1u);
    expect_rejected(&f, a + A, PK_DEBUG ? PK_ERR_MISALIGNED_PTR : PK_ERR_DOUBLE_FREE);

    /* Double frees: plain, and of blocks merged into a neighbour while their
     * old header is intact (debug builds: by their tags, intact while the
     * blocks wait in the quarantine and after they merge into a neighbour). */
    assert_int_equal(pk_fit_free(&f, b), PK_OK);
    expect_rejected(&f, b, PK_ERR_DOUBLE_FREE);
    assert_int_equal(pk_fit_free(&f, c), PK_OK);    /* c merges into b */
    expect_rejected(&f, c, PK_ERR_DOUBLE_FREE);
    expect_rejected(&f, b, PK_ERR_DOUBLE_FREE);
    assert_int_equal(pk_fit_free(&f, a), PK_OK);    /* b+c merge into a */
    expect_rejected(&f, a, PK_ERR_DOUBLE_FREE);
    expect_rejected(&f, b, PK_ERR_DOUBLE_FREE);
    expect_rejected(&f, c, PK_ERR_DOUBLE_FREE);
    assert_int_equal(pk_fit_free(&f, d), PK_OK);    /* everything merges with the rest */
    expect_rejected(&f, d, PK_ERR_DOUBLE_FREE);
    expect_rejected(&f, c, PK_ERR_DOUBLE_FREE);
    assert_int_equal(pk_fit_free(&f, NULL), PK_OK);
    assert_int_equal(faults.calls, 0);

    /* The heap is whole: all of it can still be had. */
    assert_whole(&f);
    pk_stats s = stats_of(&f);
    assert_int_equal(s.rejected, 28);
    void *all = pk_fit_alloc(&f, s.largest_free);
    assert_ptr_equal(all, a);
    assert_int_equal(pk_fit_free(&f, all), PK_OK);
    pk_fit_set_name(&f, NULL);
    assert_string_equal(pk_name(pk_fit_allocator(&f)), "fit");
}

/* Without coalescing, a double free of a block next to free blocks is caught
 * too, and the free list stays in address order whatever the order of frees. */
static void test_misuse_without_coalescing(void **state)
{
    (void)state;
    pk_fit f;
    make_heap(&f, 4096, PK_FIT_BEST, PK_FIT_NO_COALESCE);
    void *p[8];
    for (size_t i = 0; i < 8; i++) {
        p[i] = pk_fit_alloc(&f, 40);
    }
    static const size_t order[8] = {3, 4, 0, 7, 1, 6, 2, 5};
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(pk_fit_free(&f, p[order[i]]), PK_OK);
        expect_rejected(&f, p[order[i]], PK_ERR_DOUBLE_FREE);
    }
    assert_int_equal(f.free_blocks, 9);
    assert_check_ok(&f);
}

static void test_misuse_through_the_driver(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 64, 100, 1000};
    for (int policy = PK_FIT_FIRST; policy <= PK_FIT_NEXT; policy++) {
        for (unsigned flags = 0; flags <= PK_FIT_NO_COALESCE; flags++) {
            for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
                pk_fit f;
                size_t total = 1 << 14;
                make_heap(&f, total, (pk_fit_policy)policy, flags);
                /* Interior pointers are not always caught in release builds:
                 * test_misuse_cases covers those that are (off the payload
                 * grid, or after a word that cannot be a header). */
                pk_misuse_config cfg = {
                    .region = arena,
                    .region_size = total + A,
                    .alloc_size = sizes[i],
                    .catches_interior = false,
                    .capacity_blocks = total / BLK(sizes[i]), /* merged or not: blocks keep their size */
                };
                assert_int_equal(pk_driver_misuse(pk_fit_allocator(&f), &cfg), 0);
                pk_set_fault_handler(count_fault, NULL);
                assert_check_ok(&f);
            }
        }
    }
}

/* Corruption: check finds each kind of damage, with one handler call, and
 * repairs nothing. */
typedef struct {
    pk_fit f;
    unsigned char *p[6]; /* p[1] and p[3] free, and the tail */
} damaged;

static void make_damaged(damaged *d, unsigned flags)
{
    make_heap(&d->f, 4096, PK_FIT_FIRST, flags);
    for (size_t i = 0; i < 6; i++) {
        d->p[i] = pk_fit_alloc(&d->f, 64);
    }
    assert_int_equal(pk_fit_free(&d->f, d->p[1]), PK_OK);
    assert_int_equal(pk_fit_free(&d->f, d->p[3]), PK_OK);
    DRAIN(&d->f);
    assert_int_equal(d->f.free_blocks, 3);
    assert_check_ok(&d->f);
}

/* Sets the word at `at` to v, expects check to fail, and restores it. */
static void damage_word(const pk_fit *f, void *at, size_t v)
{
    size_t saved = word_at(at);
    set_word(at, v);
    assert_check_corrupt(f);
    set_word(at, saved);
    assert_check_ok(f);
}

static void damage_ptr(const pk_fit *f, void *at, const void *v)
{
    void *saved = ptr_at(at);
    set_ptr(at, v);
    assert_check_corrupt(f);
    pk_stats s;
    pk_fit_stats(f, &s); /* the stats walk survives the damage */
    set_ptr(at, saved);
    assert_check_ok(f);
}

static void test_check_finds_header_damage(void **state)
{
    (void)state;
    damaged d;
    make_damaged(&d, 0);
    pk_fit *f = &d.f;
    size_t live = word_at(header_of(d.p[0]));
    damage_word(f, header_of(d.p[0]), live + A);          /* a size that skips a header */
    damage_word(f, header_of(d.p[0]), live - A);
    damage_word(f, header_of(d.p[0]), 0);
    damage_word(f, header_of(d.p[0]), live | 4u);         /* a flag bit that does not exist */
    damage_word(f, header_of(d.p[0]), live | 1u);         /* a live block said free */
    damage_word(f, header_of(d.p[0]), live | 2u);         /* the first block with a free one before */
    damage_word(f, header_of(d.p[0]), SIZE_MAX & ~(A - 1)); /* past the end */
    damage_word(f, header_of(d.p[1]), word_at(header_of(d.p[1])) & ~(size_t)1); /* free said live */
    damage_word(f, header_of(d.p[2]), word_at(header_of(d.p[2])) & ~(size_t)2); /* PREV_FREE lost */
    damage_word(f, header_of(d.p[5]), word_at(header_of(d.p[5])) | 2u); /* PREV_FREE made up */
    damage_word(f, f->end, 0);                               /* the sentinel's PREV_FREE (tail free) */
    damage_word(f, f->anchor, 0);                            /* the anchor's header */
}

static void test_check_finds_footer_damage(void **state)
{
    (void)state;
    damaged d;
    make_damaged(&d, 0);
    damage_word(&d.f, footer_of(d.p[1]), word_at(footer_of(d.p[1])) + A);
    damage_word(&d.f, footer_of(d.p[3]), 0);
}

static void test_check_finds_free_list_damage(void **state)
{
    (void)state;
    damaged d;
    make_damaged(&d, 0);
    pk_fit *f = &d.f;
    unsigned char *b1 = header_of(d.p[1]), *b3 = header_of(d.p[3]);
    damage_ptr(f, next_link(d.p[1]), b1);                  /* a cycle of one */
    damage_ptr(f, next_link(d.p[3]), b1);                  /* a cycle back to an earlier node */
    damage_ptr(f, next_link(d.p[1]), header_of(d.p[0]));   /* a link to a live block */
    damage_ptr(f, next_link(d.p[1]), NULL);
    damage_ptr(f, next_link(d.p[1]), arena + sizeof arena - 64); /* outside the heap */
    damage_ptr(f, next_link(d.p[1]), f->anchor);           /* the list cut short */
    damage_ptr(f, prev_link(d.p[3]), f->anchor);           /* a wrong back link */
    damage_ptr(f, prev_link(d.p[1]), b3);
    damage_ptr(f, f->anchor + W + sizeof(void *), b3);     /* the list's head skips a block */
    damage_ptr(f, f->anchor + W, b3);                      /* its tail */
    /* The rover and the hint must be list nodes. */
    unsigned char *saved = f->rover;
    f->rover = header_of(d.p[0]);
    assert_check_corrupt(f);
    f->rover = saved;
    saved = f->hint;
    f->hint = b1 + A;
    assert_check_corrupt(f);
    f->hint = saved;
    assert_check_ok(f);
}

static void test_check_finds_counter_damage(void **state)
{
    (void)state;
    damaged d;
    make_damaged(&d, 0);
    pk_fit *f = &d.f;
    f->live++;
    assert_check_corrupt(f);
    f->allocs++;
    assert_check_corrupt(f); /* live matches allocs - frees, not the blocks */
    f->live--;
    f->allocs--;
    f->in_use += A;
    assert_check_corrupt(f);
    f->in_use -= A;
    f->free_blocks--;
    assert_check_corrupt(f);
    f->free_blocks++;
    f->capacity++;
    assert_check_corrupt(f);
    f->capacity--;
    f->peak_live = 0;
    assert_check_corrupt(f);
    f->peak_live = 4;
    f->peak_in_use = 0;
    assert_check_corrupt(f);
    f->peak_in_use = f->in_use;
    f->frees = f->allocs + 1;
    assert_check_corrupt(f);
    f->frees = f->allocs - 4;
    assert_check_ok(f);
}

/* Free neighbours are damage with coalescing, and normal without. */
static void test_check_finds_unmerged_neighbours(void **state)
{
    (void)state;
    damaged d;
    make_damaged(&d, PK_FIT_NO_COALESCE);
    assert_int_equal(pk_fit_free(&d.f, d.p[2]), PK_OK);
    DRAIN(&d.f);
    assert_int_equal(d.f.free_blocks, 4);
    assert_check_ok(&d.f);
    d.f.flags = 0;
    assert_check_corrupt(&d.f);
    d.f.flags = PK_FIT_NO_COALESCE;
    assert_check_ok(&d.f);
}

/* Frees in every order keep the list in address order, whichever of free's
 * two walks (the blocks after, the list from the hint) arrives first. */
static void test_free_orders(void **state)
{
    (void)state;
    for (int policy = PK_FIT_FIRST; policy <= PK_FIT_NEXT; policy++) {
        pk_fit f;
        make_heap(&f, 1 << 16, (pk_fit_policy)policy, 0);
        void *p[300];
        size_t n = 0;
        while (n < 300 && (p[n] = pk_fit_alloc(&f, 16 + (n * 37) % 180)) != NULL) {
            n++;
        }
        assert_true(n > 200);
        void *fill = pk_fit_alloc(&f, stats_of(&f).largest_free);
        /* Every other block, ascending: each lands right after the last. */
        for (size_t i = 0; i < n; i += 2) {
            assert_int_equal(pk_fit_free(&f, p[i]), PK_OK);
            DRAIN(&f); /* debug builds: the block leaves the quarantine now */
            assert_ptr_equal(f.hint, header_of(p[i]));
            if (i % 16 == 0) {
                assert_check_ok(&f);
            }
        }
        assert_int_equal(f.free_blocks, (n + 1) / 2);
        assert_check_ok(&f);
        /* A block far above, then one far below (the list walk wins). */
        for (size_t i = 1; i < n; i += 2) {
            size_t k = i % 4 == 1 ? n - i : i;
            if (k % 2 == 1 && p[k] != NULL) {
                assert_int_equal(pk_fit_free(&f, p[k]), PK_OK);
                p[k] = NULL;
                assert_check_ok(&f);
            }
        }
        for (size_t i = n; i-- > 0;) {
            if (i % 2 == 1 && p[i] != NULL) {
                assert_int_equal(pk_fit_free(&f, p[i]), PK_OK);
            }
        }
        assert_int_equal(pk_fit_free(&f, fill), PK_OK);
        assert_whole(&f);

        /* Without coalescing, descending then ascending halves. */
        make_heap(&f, 1 << 16, (pk_fit_policy)policy, PK_FIT_NO_COALESCE);
        for (n = 0; n < 300; n++) {
            p[n] = pk_fit_alloc(&f, 40);
        }
        for (size_t i = 150; i-- > 0;) {
            assert_int_equal(pk_fit_free(&f, p[i]), PK_OK);
        }
        for (size_t i = 299; i >= 150; i -= 3) {
            assert_int_equal(pk_fit_free(&f, p[i]), PK_OK);
        }
        assert_check_ok(&f);
    }
}

/* largest_free is the largest request that succeeds now, exactly, as the
 * heap changes under each policy. */
static void test_largest_free_is_exact(void **state)
{
    (void)state;
    for (int policy = PK_FIT_FIRST; policy <= PK_FIT_NEXT; policy++) {
        for (unsigned flags = 0; flags <= PK_FIT_NO_COALESCE; flags++) {
            pk_fit f;
            make_heap(&f, 1 << 15, (pk_fit_policy)policy, flags);
            void *live[256];
            size_t n = 0;
            uint64_t rng = 7 + (uint64_t)policy * 2 + flags;
            for (unsigned op = 0; op < 3000; op++) {
                uint64_t r = pk_driver_next_random(&rng);
                if (n < 256 && (r % 100 < 55 || n == 0)) {
                    void *p = pk_fit_alloc(&f, (size_t)(r >> 32) % 700);
                    if (p != NULL) {
                        live[n++] = p;
                    }
                } else {
                    size_t i = (size_t)((r >> 16) % n);
                    assert_int_equal(pk_fit_free(&f, live[i]), PK_OK);
                    live[i] = live[--n];
                }
                if (op % 50 == 0) {
                    DRAIN(&f); /* debug builds: else one byte more may drain it and succeed */
                    pk_stats s = stats_of(&f);
                    assert_null(pk_fit_alloc(&f, s.largest_free + 1));
                    if (s.largest_free != 0) {
                        void *p = pk_fit_alloc(&f, s.largest_free);
                        assert_non_null(p);
                        assert_int_equal(pk_fit_free(&f, p), PK_OK);
                    }
                    assert_true(s.largest_free <= s.free_bytes);
                    assert_check_ok(&f);
                }
            }
        }
    }
}

static void test_stats_peaks_and_names(void **state)
{
    (void)state;
    pk_fit f;
    make_heap(&f, 8192, PK_FIT_BEST, 0);
    pk_stats s = stats_of(&f);
    assert_int_equal(s.capacity, 8192 - W);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.requested, 0);
    assert_int_equal(s.free_bytes, s.capacity);
    assert_int_equal(s.largest_free, s.capacity - PK_FIT_DEBUG_BYTES_); /* debug: room for the tag and guards */
    assert_int_equal(s.block_size, 0);
    /* (debug builds: largest_free leaves room for a tag and guards) */
    assert_true(PK_DEBUG ? pk_frag_external(&s) < 0.02 : pk_frag_external(&s) == 0.0);
    void *a = pk_fit_alloc(&f, 1000);
    void *b = pk_fit_alloc(&f, 10);
    void *c = pk_fit_alloc(&f, 500);
    s = stats_of(&f);
    assert_int_equal(s.in_use, BLK(1000) + BLK(10) + BLK(500) - 3 * W);
#if PK_DEBUG
    assert_int_equal(s.requested, 1510); /* debug builds: requests are recorded */
#else
    assert_int_equal(s.requested, s.in_use);
#endif
    assert_int_equal(s.free_bytes, 8192 - BLK(1000) - BLK(10) - BLK(500) - W);
    assert_int_equal(s.live, 3);
    assert_int_equal(pk_fit_free(&f, a), PK_OK);
    s = stats_of(&f);
    assert_int_equal(s.free_bytes, 8192 - BLK(10) - BLK(500) - 2 * W);
    assert_int_equal(s.largest_free, 8192 - BLK(1000) - BLK(10) - BLK(500) - W - PK_FIT_DEBUG_BYTES_);
    assert_int_equal(s.peak_live, 3);
    assert_int_equal(s.peak_in_use, BLK(1000) + BLK(10) + BLK(500) - 3 * W);
    assert_int_equal(s.allocs, 3);
    assert_int_equal(s.frees, 1);
    pk_fit_reset_peaks(&f);
    s = stats_of(&f);
    assert_int_equal(s.peak_live, 2);
    assert_int_equal(s.peak_in_use, s.in_use);
    /* The generic view reports the same. */
    pk_stats v;
    pk_stats_get(pk_fit_allocator(&f), &v);
    assert_memory_equal(&s, &v, sizeof s);
    assert_int_equal(pk_check(pk_fit_allocator(&f)), PK_OK);
    pk_allocator *view = pk_fit_allocator(&f);
    assert_int_equal(view->ops->usable_size(view->self, b), USABLE(10));
    assert_int_equal(view->ops->usable_size(view->self, (unsigned char *)b + 1), 0);
    /* Names. */
    assert_string_equal(pk_name(pk_fit_allocator(&f)), "fit");
    pk_fit_set_name(&f, "log records");
    assert_string_equal(pk_name(pk_fit_allocator(&f)), "log records");
    assert_int_equal(pk_fit_free(&f, a), PK_ERR_DOUBLE_FREE);
    expect_fault_named(PK_ERR_DOUBLE_FREE, a, "log records");
    pk_fit_set_name(&f, NULL);
    assert_string_equal(pk_name(pk_fit_allocator(&f)), "fit");
    assert_int_equal(pk_free(pk_fit_allocator(&f), b), PK_OK);
    assert_int_equal(pk_free(pk_fit_allocator(&f), c), PK_OK);
    assert_whole(&f);
}

/* Locks: taken once around every call, never nested, released before the
 * fault handler runs. */
/* Expects exactly one lock taken since the last call, and no fault (or one
 * fault, raised with the lock released). */
static void expect_one_lock(unsigned fault_calls)
{
    assert_int_equal(lock_calls, 1);
    assert_int_equal(lock_depth, 0);
    assert_int_equal(faults.calls, fault_calls);
    if (fault_calls != 0) {
        assert_int_equal(faults.lock_depth_seen, 0);
    }
    lock_calls = 0;
    faults.calls = 0;
}

static void test_lock_wraps_every_operation(void **state)
{
    (void)state;
    pk_fit f;
    make_heap(&f, 8192, PK_FIT_NEXT, 0);
    pk_lock half = {counting_lock, NULL, &lock_calls};
    assert_int_equal(pk_fit_set_lock(&f, &half), PK_ERR_INVALID_ARG);
    pk_lock other_half = {NULL, counting_unlock, &lock_calls};
    assert_int_equal(pk_fit_set_lock(&f, &other_half), PK_ERR_INVALID_ARG);
    pk_lock l = {counting_lock, counting_unlock, &lock_calls};
    assert_int_equal(pk_fit_set_lock(&f, &l), PK_OK);
    lock_calls = 0;

    unsigned char *a = pk_fit_alloc(&f, 100);
    expect_one_lock(0);
    unsigned char *b = pk_fit_alloc_aligned(&f, 100, 512);
    expect_one_lock(0);
    assert_null(pk_fit_alloc_aligned(&f, 100, 48));
    expect_one_lock(1);
    assert_null(pk_fit_alloc(&f, SIZE_MAX));
    expect_one_lock(0);
    a = pk_fit_realloc(&f, a, 50); /* in place */
    expect_one_lock(0);
    unsigned char *c = pk_fit_alloc(&f, 10);
    expect_one_lock(0);
    a = pk_fit_realloc(&f, a, 2000); /* moved: alloc, copy and free in one hold */
    assert_non_null(a);
    expect_one_lock(0);
    assert_null(pk_fit_realloc(&f, c + 1, 10));
    expect_one_lock(1);
    assert_null(pk_fit_realloc(&f, a, SIZE_MAX));
    expect_one_lock(0);
    void *d = pk_fit_realloc(&f, NULL, 10);
    expect_one_lock(0);
    assert_null(pk_fit_realloc(&f, d, 0));
    expect_one_lock(0);
    assert_int_equal(pk_fit_free(&f, c), PK_OK);
    expect_one_lock(0);
    assert_int_equal(pk_fit_free(&f, c), PK_ERR_DOUBLE_FREE);
    expect_one_lock(1);
    assert_int_equal(pk_fit_free(&f, a + 1), PK_ERR_MISALIGNED_PTR);
    expect_one_lock(1);
    assert_int_equal(pk_fit_usable_size(&f, a), USABLE(2000));
    expect_one_lock(0);
    pk_stats s;
    pk_fit_stats(&f, &s);
    expect_one_lock(0);
    pk_fit_reset_peaks(&f);
    expect_one_lock(0);
    assert_int_equal(pk_fit_check(&f), PK_OK);
    expect_one_lock(0);
    f.live++;
    assert_int_equal(pk_fit_check(&f), PK_ERR_CORRUPT);
    expect_one_lock(1);
    f.live--;
    /* Through the generic view. */
    pk_allocator *v = pk_fit_allocator(&f);
    void *e = pk_alloc(v, 30);
    expect_one_lock(0);
    e = pk_realloc(v, e, 3000);
    expect_one_lock(0);
    assert_int_equal(pk_free(v, e), PK_OK);
    expect_one_lock(0);
    pk_stats_get(v, &s);
    expect_one_lock(0);
    assert_int_equal(pk_check(v), PK_OK);
    expect_one_lock(0);

    /* Back to no lock. */
    assert_int_equal(pk_fit_set_lock(&f, NULL), PK_OK);
    assert_int_equal(pk_fit_free(&f, a), PK_OK);
    assert_int_equal(pk_fit_free(&f, b), PK_OK);
    pk_lock none = {NULL, NULL, NULL};
    assert_int_equal(pk_fit_set_lock(&f, &none), PK_OK);
    assert_int_equal(pk_fit_free(&f, pk_fit_alloc(&f, 10)), PK_OK);
    assert_int_equal(lock_calls, 0);
    assert_whole(&f);
}

/* The randomized driver, through the generic view, for each policy with and
 * without coalescing. */
static pk_driver_slot slots[4096];

static void run_driver(pk_fit_policy policy, unsigned flags, size_t offset, size_t size, size_t max_size,
                       size_t max_align, uint64_t seed, size_t ops, const pk_lock *lock)
{
    pk_driver_fill_garbage(arena + offset, size, seed);
    pk_fit f;
    assert_int_equal(pk_fit_init(&f, arena + offset, size, policy, flags), PK_OK);
    assert_int_equal(pk_fit_set_lock(&f, lock), PK_OK);
    pk_driver_config cfg = {
        .realloc_percent = 10,
        .seed = seed,
        .ops = ops,
        .min_size = 0,
        .max_size = max_size,
        .max_align = max_align,
        .default_align = A,
        .region = arena + offset,
        .region_size = size,
        .block_size = 0,
        .requested_exact = false,
        .slots = slots,
        .slot_count = 4096,
        .report = report_line,
    };
    pk_driver_result result;
    assert_int_equal(pk_driver_run(pk_fit_allocator(&f), &cfg, &result), 0);
    assert_int_equal(result.ops, ops);
    if (ops >= 100000) {
        assert_true(result.failures > 0); /* the growth phases ran the heap dry */
    }
    assert_int_equal(faults.calls, 0);
    if (flags == 0) {
        assert_whole(&f);
    } else {
        assert_check_ok(&f);
    }
}

static void test_random_first(void **state)
{
    (void)state;
    run_driver(PK_FIT_FIRST, 0, 0, 1 << 18, 4096, 0, 21, random_ops(), NULL);
}

static void test_random_best(void **state)
{
    (void)state;
    run_driver(PK_FIT_BEST, 0, 3, 1 << 17, 2048, 0, 22, random_ops() / 2, NULL);
}

static void test_random_next(void **state)
{
    (void)state;
    run_driver(PK_FIT_NEXT, 0, 5, 1 << 18, 4096, 0, 23, random_ops(), NULL);
}

static void test_random_first_no_coalesce(void **state)
{
    (void)state;
    run_driver(PK_FIT_FIRST, PK_FIT_NO_COALESCE, 1, 1 << 17, 1024, 0, 24, random_ops() / 4, NULL);
}

static void test_random_best_no_coalesce(void **state)
{
    (void)state;
    run_driver(PK_FIT_BEST, PK_FIT_NO_COALESCE, 7, 1 << 17, 1024, 0, 25, random_ops() / 4, NULL);
}

static void test_random_next_no_coalesce(void **state)
{
    (void)state;
    run_driver(PK_FIT_NEXT, PK_FIT_NO_COALESCE, 2, 1 << 17, 1024, 0, 26, random_ops() / 4, NULL);
}

static void test_random_aligned(void **state)
{
    (void)state;
    for (int policy = PK_FIT_FIRST; policy <= PK_FIT_NEXT; policy++) {
        run_driver((pk_fit_policy)policy, 0, 1, 1 << 17, 2048, 4096, 27 + (uint64_t)policy, random_ops() / 8,
                   NULL);
    }
}

static void test_random_tiny_locked(void **state)
{
    (void)state;
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pk_lock l = pk_pthread_lock(&m);
    run_driver(PK_FIT_FIRST, 0, 3, 4096, 512, 64, 31, random_ops() / 8, &l);
    run_driver(PK_FIT_NEXT, PK_FIT_NO_COALESCE, 3, 4096, 512, 64, 32, random_ops() / 8, &l);
}

#if PK_DEBUG
static unsigned char second[1024]; /* memory the heap does not own */

/* Debug builds: each misuse is one handler call with its status, the block's
 * allocation site and owner (from its tag) when known, and the call's site. */
static void expect_debug_fault(pk_status kind, const void *ptr, int alloc_line, uint32_t owner, int call_line)
{
    expect_fault_sites(kind, ptr, "fit", __FILE__, alloc_line, owner, call_line);
}

/* The heap is whole after misuse: check passes, and the stats are the
 * clients' view (live blocks and exact requests). */
static void assert_live(const pk_fit *f_, size_t live, size_t requested)
{
    assert_check_ok(f_);
    pk_stats s = stats_of(f_);
    assert_int_equal(s.live, live);
    assert_int_equal(s.requested, requested);
    assert_true(s.in_use >= requested);
    assert_int_equal(s.frees, s.allocs - live);
}

static void test_debug_guards(void **state)
{
    (void)state;
    pk_fit h;
    make_heap(&h, 1 << 16, PK_FIT_FIRST, 0);
    pk_set_owner(42);
    void *keep = pk_fit_alloc(&h, 8); /* something live, so frees stay quarantined */
    unsigned char *p = pk_fit_alloc(&h, 40); int p_line = __LINE__;
    pk_set_owner(0);
    assert_int_equal(pk_fit_usable_size(&h, p), 40);
    /* Overflow by one byte past the request: reported at free, freed anyway. */
    p[40] = 0;
    assert_int_equal(pk_fit_check(&h), PK_ERR_GUARD_CORRUPT);
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, p, p_line, 42, 0);
    assert_int_equal(pk_fit_free(&h, p), PK_ERR_GUARD_CORRUPT); int free_line = __LINE__;
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, p, p_line, 42, free_line);
    assert_live(&h, 1, 8);
    /* Underflow by one byte before it. */
    pk_set_owner(7);
    unsigned char *q = pk_fit_alloc_aligned(&h, 100, 256); int q_line = __LINE__;
    pk_set_owner(0);
    assert_int_equal((uintptr_t)q % 256, 0);
    q[-1] = 0xFF;
    assert_int_equal(pk_fit_free(&h, q), PK_ERR_GUARD_CORRUPT); free_line = __LINE__;
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, q, q_line, 7, free_line);
    assert_live(&h, 1, 8);
    /* Through realloc's inner free too. */
    unsigned char *r = pk_fit_realloc(&h, NULL, 16); int r_line = __LINE__;
    r[16] = 1;
    r = pk_fit_realloc(&h, r, 32); int realloc_line = __LINE__;
    assert_non_null(r);
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, PK_ERR_GUARD_CORRUPT);
    assert_int_equal(faults.last.line, r_line);
    assert_int_equal(faults.last.call_line, realloc_line);
    faults.calls = 0;
    assert_int_equal(pk_fit_free(&h, r), PK_OK);
    assert_int_equal(pk_fit_free(&h, keep), PK_OK);
    assert_int_equal(faults.calls, 0);
    assert_whole(&h);
}

static void test_debug_use_after_free_and_double_free(void **state)
{
    (void)state;
    pk_fit h;
    make_heap(&h, 1 << 16, PK_FIT_FIRST, 0);
    void *keep = pk_fit_alloc(&h, 8);
    pk_set_owner(9);
    unsigned char *p = pk_fit_alloc(&h, 64); int p_line = __LINE__;
    pk_set_owner(0);
    assert_int_equal(pk_fit_free(&h, p), PK_OK);
    /* A double free of the quarantined block. */
    assert_int_equal(pk_fit_free(&h, p), PK_ERR_DOUBLE_FREE); int free_line = __LINE__;
    expect_debug_fault(PK_ERR_DOUBLE_FREE, p, p_line, 9, free_line);
    assert_null(pk_fit_realloc(&h, p, 10)); int realloc_line = __LINE__;
    expect_debug_fault(PK_ERR_DOUBLE_FREE, p, p_line, 9, realloc_line);
    assert_live(&h, 1, 8);
    /* A write after free: check sees it; the block's eviction reports it once. */
    p[10] = 0x11;
    assert_int_equal(pk_fit_check(&h), PK_ERR_USE_AFTER_FREE);
    expect_debug_fault(PK_ERR_USE_AFTER_FREE, p, p_line, 9, 0);
    void *more[PK_QUARANTINE_SIZE + 1];
    for (size_t i = 0; i < PK_QUARANTINE_SIZE; i++) {
        more[i] = pk_fit_alloc(&h, 16);
    }
    for (size_t i = 0; i + 1 < PK_QUARANTINE_SIZE; i++) {
        assert_int_equal(pk_fit_free(&h, more[i]), PK_OK);
    }
    assert_int_equal(faults.calls, 0);
    assert_int_equal(pk_fit_free(&h, more[PK_QUARANTINE_SIZE - 1]), PK_OK); free_line = __LINE__;
    expect_debug_fault(PK_ERR_USE_AFTER_FREE, p, p_line, 9, free_line);
    assert_live(&h, 1, 8);
    /* A stale double free, after the block left the quarantine: caught,
     * nothing changed. */
    pk_status s = pk_fit_free(&h, p);
    assert_true(s == PK_ERR_DOUBLE_FREE || s == PK_ERR_MISALIGNED_PTR);
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, s);
    faults.calls = 0;
    assert_live(&h, 1, 8);
    /* The quarantine never causes a NULL: the whole heap, less keep, can be
     * had while blocks are quarantined. */
    void *x = pk_fit_alloc(&h, 1000);
    assert_int_equal(pk_fit_free(&h, x), PK_OK);
    assert_int_equal(h.debug.held, PK_QUARANTINE_SIZE > 0 ? PK_QUARANTINE_SIZE : 0);
    size_t largest = 0;
    for (size_t step = (size_t)1 << 15; step != 0; step >>= 1) {
        void *y = pk_fit_alloc(&h, largest + step);
        if (y != NULL) {
            largest += step;
            assert_int_equal(pk_fit_free(&h, y), PK_OK);
        }
    }
    assert_true(largest > (1 << 16) - 2 * PK_DEBUG_OVERHEAD_(A) - 512);
    assert_int_equal(faults.calls, 0);
    assert_int_equal(pk_fit_free(&h, keep), PK_OK);
    assert_whole(&h);
}

static void test_debug_foreign_and_interior(void **state)
{
    (void)state;
    pk_fit h;
    make_heap(&h, 1 << 16, PK_FIT_FIRST, 0);
    unsigned char *p = pk_fit_alloc(&h, 200);
    pk_stats before = stats_of(&h);
    assert_int_equal(pk_fit_free(&h, second), PK_ERR_FOREIGN_PTR); int line = __LINE__;
    expect_debug_fault(PK_ERR_FOREIGN_PTR, second, 0, 0, line);
    /* Interior pointers, on the alignment grid or not, even with a plausible
     * heap header before them: no tag, so not a block. */
    size_t forged = MINB;
    memcpy(p + 64 - sizeof forged, &forged, sizeof forged);
    static const size_t offsets[] = {1, 8, 16, 64, 128, 199};
    for (size_t i = 0; i < sizeof offsets / sizeof *offsets; i++) {
        assert_int_equal(pk_fit_free(&h, p + offsets[i]), PK_ERR_MISALIGNED_PTR); line = __LINE__;
        expect_debug_fault(PK_ERR_MISALIGNED_PTR, p + offsets[i], 0, 0, line);
    }
    /* Just past the region's start: no room for a tag. */
    assert_int_equal(pk_fit_free(&h, h.start + W), PK_ERR_MISALIGNED_PTR);
    faults.calls = 0;
    pk_stats after = stats_of(&h);
    assert_int_equal(after.rejected, before.rejected + 2 + sizeof offsets / sizeof *offsets);
    after.rejected = before.rejected;
    assert_memory_equal(&before, &after, sizeof before);
    assert_live(&h, 1, 200);
    assert_int_equal(pk_fit_free(&h, p), PK_OK);
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
    pk_fit h;
    make_heap(&h, 1 << 16, PK_FIT_FIRST, 0);
    pk_allocator *a = pk_fit_allocator(&h);
    void *p = pk_fit_alloc(&h, 10);
    uint64_t mark = pk_leak_mark();
    void *q = pk_alloc(a, 20);
    void *r = pk_fit_alloc_aligned(&h, 30, 64);
    assert_int_equal((uintptr_t)r % 64, 0);
    size_t n[2] = {0, 0};
    pk_leaks(a, count_leak, n);
    assert_int_equal(n[0], 3);
    assert_int_equal(n[1], 60);
    n[0] = n[1] = 0;
    pk_leaks_since(a, mark, count_leak, n);
    assert_int_equal(n[0], 2);
    assert_int_equal(n[1], 50);
    assert_int_equal(pk_fit_usable_size(&h, q), 20);
    assert_int_equal(pk_free(a, q), PK_OK);
    assert_int_equal(pk_free(a, q), PK_ERR_DOUBLE_FREE); int line = __LINE__;
    assert_int_equal(faults.last.call_line, line);
    faults.calls = 0;
    assert_live(&h, 2, 40);
    assert_int_equal(pk_fit_free(&h, p), PK_OK);
    assert_int_equal(pk_fit_free(&h, r), PK_OK);
    assert_whole(&h);
    /* The sizing macros count the tags and guards. */
    assert_true(PK_FIT_BLOCK_SIZE(1) >= PK_DEBUG_OVERHEAD_(A) + 1 + W);
    static unsigned char buf[PK_FIT_BUFFER_SIZE(24, 4)];
    assert_int_equal(pk_fit_init(&h, buf, sizeof buf, PK_FIT_BEST, 0), PK_OK);
    for (size_t i = 0; i < 4; i++) {
        assert_non_null(pk_fit_alloc(&h, 24));
    }
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_rejects_bad_arguments, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_layout_and_buffer_size, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_sizes_zero_and_too_large, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_first_fit_picks_lowest_address, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_best_fit_picks_smallest, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_next_fit_continues_after_last_allocation, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_next_fit_rover_survives_merges, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_coalescing, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_external_fragmentation_example, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_realloc_in_place, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_realloc_grows_by_one_alignment_step, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_realloc_moves_and_fails_cleanly, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_aligned_allocation, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_aligned_gap_rules, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_misuse_cases, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_misuse_without_coalescing, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_misuse_through_the_driver, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_header_damage, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_footer_damage, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_free_list_damage, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_counter_damage, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_unmerged_neighbours, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_free_orders, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_largest_free_is_exact, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_stats_peaks_and_names, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_lock_wraps_every_operation, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_first, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_best, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_next, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_first_no_coalesce, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_best_no_coalesce, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_next_no_coalesce, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_aligned, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_tiny_locked, setup_faults, teardown_faults),
#if PK_DEBUG
        cmocka_unit_test_setup_teardown(test_debug_guards, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_use_after_free_and_double_free, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_foreign_and_interior, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_leaks_and_sizes, setup_faults, teardown_faults),
#endif
    };
    return cmocka_run_group_tests_name("fit", tests, NULL, NULL);
}
