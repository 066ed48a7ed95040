/* Unit tests of the buddy allocator (poolkit/buddy.h). */
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
#include "support.h"
#include "poolkit/buddy.h"

static void expect_fault(pk_status kind, const void *ptr)
{
    expect_fault_named(kind, ptr, "buddy");
}

static void assert_check_ok(const pk_buddy *b)
{
    unsigned before = faults.calls;
    assert_int_equal(pk_buddy_check(b), PK_OK);
    assert_int_equal(faults.calls, before);
}

static void assert_check_corrupt(const pk_buddy *b)
{
    faults.calls = 0;
    assert_int_equal(pk_buddy_check(b), PK_ERR_CORRUPT);
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, PK_ERR_CORRUPT);
    faults.calls = 0;
}

static _Alignas(4096) unsigned char arena[1 << 20];
static unsigned char other[256];

static pk_stats stats_of(const pk_buddy *b)
{
    pk_stats s;
    pk_buddy_stats(b, &s);
    return s;
}

/* Empty again: every byte free, the largest blocks merged back. */
static void assert_whole(const pk_buddy *b)
{
    assert_check_ok(b);
    pk_stats s = stats_of(b);
    assert_int_equal(s.live, 0);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.requested, 0);
    assert_int_equal(s.free_bytes, s.capacity);
    /* One free block per binary digit of the slot count. */
    size_t blocks = 0;
    for (unsigned k = 0; k < PK_BUDDY_MAX_ORDERS; k++) {
        for (pk_buddy_node *n = b->free_lists[k]; n != NULL; n = n->next) {
            blocks++;
        }
    }
    size_t digits = 0;
    for (size_t n = b->slots; n != 0; n &= n - 1) {
        digits++;
    }
    assert_int_equal(blocks, digits);
}

static void test_init_rejects_bad_arguments(void **state)
{
    (void)state;
    pk_buddy b;
    memset(&b, 0x5A, sizeof b);
    unsigned char before[sizeof b];
    memcpy(before, &b, sizeof b);
    assert_int_equal(pk_buddy_init(NULL, arena, 4096, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_buddy_init(&b, NULL, 4096, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_buddy_init(&b, arena, 4096, 48), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_buddy_init(&b, arena, 4096, 3), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_buddy_init(&b, arena, 4096, SIZE_MAX), PK_ERR_INVALID_ARG);
    /* Too small for one slot and its map byte, after alignment. */
    for (size_t size = 0; size <= PK_BUDDY_MIN_BLOCK; size++) {
        assert_int_equal(pk_buddy_init(&b, arena, size, 0), PK_ERR_INVALID_ARG);
    }
    assert_int_equal(pk_buddy_init(&b, arena + 1, PK_BUDDY_MIN_BLOCK + 1, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_buddy_init(&b, arena, 4096, (size_t)1 << 20), PK_ERR_INVALID_ARG);
    assert_memory_equal(&b, before, sizeof b);
    assert_int_equal(faults.calls, 0);
    /* The smallest buffer that works: one slot and its map word. */
    assert_int_equal(pk_buddy_init(&b, arena, PK_BUDDY_MIN_BLOCK + sizeof(size_t) - 1, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_buddy_init(&b, arena, PK_BUDDY_MIN_BLOCK + sizeof(size_t), 0), PK_OK);
    assert_int_equal(stats_of(&b).capacity, PK_BUDDY_MIN_BLOCK);
#if PK_DEBUG
    /* Debug builds: one slot cannot hold a tag and guards. */
    assert_null(pk_buddy_alloc(&b, 1));
#else
    void *p = pk_buddy_alloc(&b, 1);
    assert_ptr_equal(p, arena);
    assert_null(pk_buddy_alloc(&b, 0));
    assert_int_equal(pk_buddy_free(&b, p), PK_OK);
#endif
    assert_whole(&b);
    /* Small powers of two and 0 are rounded up to the minimum. */
    for (size_t m = 0; m <= PK_BUDDY_MIN_BLOCK; m = m == 0 ? 1 : m * 2) {
        assert_int_equal(pk_buddy_init(&b, arena, 4096, m), PK_OK);
        assert_int_equal(b.min_block, PK_BUDDY_MIN_BLOCK);
    }
}

static void test_sizing(void **state)
{
    (void)state;
    assert_int_equal(pk_buddy_metadata_size(4096, 24), SIZE_MAX);
    static const size_t mins[] = {0, 16, 32, 64, 256, 4096};
    static const size_t capacities[] = {1, 16, 100, 4096, 5000, 65536, 100000, 777777};
    for (size_t i = 0; i < sizeof mins / sizeof *mins; i++) {
        for (size_t j = 0; j < sizeof capacities / sizeof *capacities; j++) {
            size_t need = PK_BUDDY_BUFFER_SIZE(capacities[j], mins[i]);
            for (size_t offset = 0; offset < 4; offset++) {
                pk_buddy b;
                assert_true(need + offset * 7 <= sizeof arena);
                assert_int_equal(pk_buddy_init(&b, arena + offset * 7, need, mins[i]), PK_OK);
                pk_stats s = stats_of(&b);
                assert_true(s.capacity >= capacities[j]);
                assert_true(s.capacity < capacities[j] + 4 * b.min_block);
                assert_int_equal((uintptr_t)b.base % b.min_block, 0);
                /* The map lies after the blocks, inside the buffer. */
                assert_true((unsigned char *)b.map + PK_BUDDY_MAP_BYTES_(b.slots) <= arena + offset * 7 + need);
                assert_ptr_equal(b.map, b.base + s.capacity);
            }
            /* An aligned buffer: exactly the metadata size is lost. */
            pk_buddy b;
            assert_int_equal(pk_buddy_init(&b, arena, need, mins[i]), PK_OK);
            assert_int_equal(need - stats_of(&b).capacity, pk_buddy_metadata_size(need, mins[i]));
            assert_true(pk_buddy_metadata_size(need, mins[i]) <= need / (4 * b.min_block) + 4 * b.min_block);
        }
    }
    /* 1 MiB with 16-byte slots: 1.6% of metadata. */
    assert_true(pk_buddy_metadata_size(1 << 20, 16) <= (1 << 20) / 64 + 64);
}

/* Release builds only: this test is about the release layout (block
 * addresses from the base, the slack record past the request, free-list links
 * in freed blocks). Debug builds lay a tag and guards in every block and hold
 * freed blocks in the quarantine; test_debug_* below cover what they catch. */
#if !PK_DEBUG
static void test_blocks_are_powers_of_two_aligned_to_their_size(void **state)
{
    (void)state;
    pk_buddy b;
    pk_driver_fill_garbage(arena, sizeof arena, 3);
    assert_int_equal(pk_buddy_init(&b, arena, 1 << 18, 16), PK_OK);
    void *blocks[64];
    size_t n = 0, in_use = 0, requested = 0;
    for (size_t size = 0; size <= 8192; size = size < 16 ? size + 5 : size * 2 - 3) {
        unsigned char *p = pk_buddy_alloc(&b, size);
        assert_non_null(p);
        size_t block = pk_buddy_block_size(&b, p);
        assert_true(block >= 16 && (block & (block - 1)) == 0);
        assert_true(block >= size && (block == 16 || block / 2 < size));
        assert_int_equal((size_t)(p - b.base) % block, 0);
        assert_int_equal(pk_buddy_usable_size(&b, p), size);
        memset(p, 0xA5, size);
        blocks[n++] = p;
        in_use += block;
        requested += size;
        assert_check_ok(&b);
    }
    /* Exactly a power of two: a block of that size, aligned to it. */
    for (size_t size = 16; size <= 16384; size *= 2) {
        unsigned char *p = pk_buddy_alloc(&b, size);
        assert_non_null(p);
        assert_int_equal(pk_buddy_block_size(&b, p), size);
        assert_int_equal((uintptr_t)p % (size < 4096 ? size : 4096), 0); /* the base is 4096-aligned */
        assert_int_equal(pk_buddy_usable_size(&b, p), size);
        memset(p, 0x5A, size);
        blocks[n++] = p;
        in_use += size;
        requested += size;
    }
    pk_stats s = stats_of(&b);
    assert_int_equal(s.live, n);
    assert_int_equal(s.in_use, in_use);
    assert_int_equal(s.requested, requested);
    assert_int_equal(s.free_bytes, s.capacity - in_use);
    assert_int_equal(s.block_size, 0);
    assert_true(pk_frag_internal(&s) > 0.0 && pk_frag_internal(&s) < 0.5);
    assert_check_ok(&b);
    while (n > 0) {
        assert_int_equal(pk_buddy_free(&b, blocks[--n]), PK_OK);
        assert_check_ok(&b);
    }
    assert_whole(&b);
    assert_int_equal(faults.calls, 0);
}
#endif

/* Release builds only: this test is about the release layout (block
 * addresses from the base, the slack record past the request, free-list links
 * in freed blocks). Debug builds lay a tag and guards in every block and hold
 * freed blocks in the quarantine; test_debug_* below cover what they catch. */
#if !PK_DEBUG
/* A region that is not a power of two: the tail is smaller blocks, all
 * usable, and nothing merges past the end. */
static void test_any_region_size(void **state)
{
    (void)state;
    static const size_t sizes[] = {40, 100, 1000, 4097, 12345, 65535, 99999};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        for (size_t offset = 0; offset < 3; offset++) {
            pk_buddy b;
            assert_int_equal(pk_buddy_init(&b, arena + offset * 5, sizes[i], 0), PK_OK);
            pk_stats s = stats_of(&b);
            size_t slots = s.capacity / PK_BUDDY_MIN_BLOCK;
            assert_int_equal(slots, b.slots);
            assert_whole(&b);
            /* Every slot can be had as a smallest block, in address order. */
            size_t got = 0;
            unsigned char *last = NULL;
            for (unsigned char *p; (p = pk_buddy_alloc(&b, 1)) != NULL; got++) {
                assert_true(p >= b.base && p + PK_BUDDY_MIN_BLOCK <= b.base + s.capacity);
                assert_true(last == NULL || p != last);
                last = p;
            }
            assert_int_equal(got, slots);
            assert_int_equal(stats_of(&b).largest_free, 0);
            assert_check_ok(&b);
            for (size_t k = 0; k < slots; k++) {
                assert_int_equal(pk_buddy_free(&b, b.base + k * PK_BUDDY_MIN_BLOCK), PK_OK);
            }
            assert_whole(&b);
            /* The largest block is the largest power of two of slots. */
            size_t top = (size_t)PK_BUDDY_MIN_BLOCK << b.max_order;
            assert_int_equal(stats_of(&b).largest_free, top);
            void *p = pk_buddy_alloc(&b, top);
            assert_ptr_equal(p, b.base);
            assert_null(pk_buddy_alloc(&b, top + 1));
            assert_int_equal(pk_buddy_free(&b, p), PK_OK);
            assert_whole(&b);
        }
    }
    assert_int_equal(faults.calls, 0);
}
#endif

/* Release builds only: this test is about the release layout (block
 * addresses from the base, the slack record past the request, free-list links
 * in freed blocks). Debug builds lay a tag and guards in every block and hold
 * freed blocks in the quarantine; test_debug_* below cover what they catch. */
#if !PK_DEBUG
static void test_split_and_merge(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, PK_BUDDY_BUFFER_SIZE(1024, 64), 64), PK_OK);
    assert_int_equal(b.slots, 16);
    unsigned char *a = pk_buddy_alloc(&b, 64);  /* splits 1024 down to 64 */
    unsigned char *c = pk_buddy_alloc(&b, 64);  /* a's buddy */
    unsigned char *d = pk_buddy_alloc(&b, 128);
    unsigned char *e = pk_buddy_alloc(&b, 256);
    assert_ptr_equal(a, b.base);
    assert_ptr_equal(c, b.base + 64);
    assert_ptr_equal(d, b.base + 128);
    assert_ptr_equal(e, b.base + 256);
    assert_int_equal(stats_of(&b).largest_free, 512);
    assert_int_equal(pk_buddy_free(&b, a), PK_OK);
    assert_int_equal(stats_of(&b).largest_free, 512);
    assert_int_equal(pk_buddy_free(&b, c), PK_OK); /* merges with a, then no more (d live) */
    assert_non_null(b.free_lists[1]);
    assert_int_equal(pk_buddy_free(&b, d), PK_OK); /* 128 + 128 -> 256, stops at e */
    assert_ptr_equal(b.free_lists[2], (void *)b.base);
    assert_null(b.free_lists[1]);
    assert_null(b.free_lists[0]);
    assert_check_ok(&b);
    assert_int_equal(pk_buddy_free(&b, e), PK_OK); /* everything back to one block */
    assert_int_equal(stats_of(&b).largest_free, 1024);
    assert_whole(&b);
    pk_stats s = stats_of(&b);
    assert_int_equal(s.peak_live, 4);
    assert_int_equal(s.peak_in_use, 64 + 64 + 128 + 256);
}
#endif

/* Release builds only: this test is about the release layout (block
 * addresses from the base, the slack record past the request, free-list links
 * in freed blocks). Debug builds lay a tag and guards in every block and hold
 * freed blocks in the quarantine; test_debug_* below cover what they catch. */
#if !PK_DEBUG
static void test_largest_free_is_exact(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, 100000, 32), PK_OK);
    void *live[512];
    size_t n = 0;
    uint64_t rng = 77;
    for (unsigned op = 0; op < 4000; op++) {
        if (n < 512 && pk_driver_next_random(&rng) % 3 != 0) {
            void *p = pk_buddy_alloc(&b, (size_t)(pk_driver_next_random(&rng) % 3000));
            if (p != NULL) {
                live[n++] = p;
            }
        } else if (n > 0) {
            size_t i = (size_t)(pk_driver_next_random(&rng) % n);
            assert_int_equal(pk_buddy_free(&b, live[i]), PK_OK);
            live[i] = live[--n];
        }
        if (op % 5 == 0) {
            pk_stats s = stats_of(&b);
            if (s.largest_free == 0) {
                assert_null(pk_buddy_alloc(&b, 0));
            } else {
                void *p = pk_buddy_alloc(&b, s.largest_free);
                assert_non_null(p);
                assert_null(pk_buddy_alloc(&b, s.largest_free + 1) == NULL ? NULL : p);
                assert_int_equal(pk_buddy_free(&b, p), PK_OK);
            }
            assert_check_ok(&b);
        }
    }
    while (n > 0) {
        assert_int_equal(pk_buddy_free(&b, live[--n]), PK_OK);
    }
    assert_whole(&b);
}
#endif

static void test_aligned(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, 1 << 18, 0), PK_OK); /* base 4096-aligned */
    for (size_t align = 1; align <= 4096; align *= 2) {
        for (size_t size = 0; size < 5000; size = size * 3 + 1) {
            unsigned char *p = pk_buddy_alloc_aligned(&b, size, align);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % (align > 16 ? align : 16), 0);
            assert_int_equal(pk_buddy_usable_size(&b, p), size);
            memset(p, 1, size);
            assert_check_ok(&b);
            assert_int_equal(pk_buddy_free(&b, p), PK_OK);
        }
    }
    /* A base aligned to 16 only: larger alignments fail (no fault). */
    assert_int_equal(pk_buddy_init(&b, arena + 16, 1 << 18, 0), PK_OK);
    assert_int_equal(b.base_align, 16);
    void *kept = pk_alloc_aligned(pk_buddy_allocator(&b), 100, 16);
    assert_non_null(kept);
    assert_null(pk_buddy_alloc_aligned(&b, 100, 32));
    assert_null(pk_alloc_aligned(pk_buddy_allocator(&b), 100, 4096));
    assert_int_equal(faults.calls, 0);
    assert_int_equal(stats_of(&b).failures, 2);
    /* Not a power of two: NULL, one INVALID_ARG, counted rejected. */
    assert_null(pk_buddy_alloc_aligned(&b, 100, 24));
    expect_fault(PK_ERR_INVALID_ARG, NULL);
    assert_null(pk_alloc_aligned(pk_buddy_allocator(&b), 100, 3));
    expect_fault(PK_ERR_INVALID_ARG, NULL);
    assert_int_equal(stats_of(&b).rejected, 2);
    assert_check_ok(&b);
    /* Freed: a debug block left live keeps its guards closed to ASan, and the
     * next test writes garbage over the buffer before its init. */
    assert_int_equal(pk_buddy_free(&b, kept), PK_OK);
}

static void test_too_large_is_a_failure(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, 1 << 16, 0), PK_OK);
    static const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 8, SIZE_MAX / 2 + 2, 1 << 16, (1 << 15) + 1};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        assert_null(pk_buddy_alloc(&b, sizes[i]));
        assert_null(pk_buddy_alloc_aligned(&b, sizes[i], 4096));
    }
    assert_null(pk_buddy_alloc_aligned(&b, 1, (size_t)1 << 30));
    assert_null(pk_calloc(pk_buddy_allocator(&b), SIZE_MAX / 2, 3));
    assert_int_equal(faults.calls, 0);
    pk_stats s = stats_of(&b);
    assert_int_equal(s.failures, 2 * (sizeof sizes / sizeof *sizes) + 2);
    assert_int_equal(s.rejected, 0);
    assert_whole(&b);
}

/* Release builds only: this test is about the release layout (block
 * addresses from the base, the slack record past the request, free-list links
 * in freed blocks). Debug builds lay a tag and guards in every block and hold
 * freed blocks in the quarantine; test_debug_* below cover what they catch. */
#if !PK_DEBUG
static void test_misuse(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, 1 << 16, 0), PK_OK);
    unsigned char *a = pk_buddy_alloc(&b, 256);
    unsigned char *c = pk_buddy_alloc(&b, 256);
    unsigned char *d = pk_buddy_alloc(&b, 256);
    pk_stats before = stats_of(&b);

    assert_int_equal(pk_buddy_free(&b, other), PK_ERR_FOREIGN_PTR);
    expect_fault(PK_ERR_FOREIGN_PTR, other);
    assert_int_equal(pk_buddy_free(&b, b.map), PK_ERR_FOREIGN_PTR); /* the metadata */
    expect_fault(PK_ERR_FOREIGN_PTR, b.map);
    assert_int_equal(pk_buddy_free(&b, a + 1), PK_ERR_MISALIGNED_PTR);
    expect_fault(PK_ERR_MISALIGNED_PTR, a + 1);
    /* Slot-aligned pointers inside a live block. */
    for (size_t offset = 16; offset < 256; offset += 16) {
        assert_int_equal(pk_buddy_free(&b, a + offset), PK_ERR_MISALIGNED_PTR);
        expect_fault(PK_ERR_MISALIGNED_PTR, a + offset);
    }
    /* A block start never handed out (inside the free rest of the region). */
    assert_int_equal(pk_buddy_free(&b, b.base + 8192), PK_ERR_DOUBLE_FREE);
    expect_fault(PK_ERR_DOUBLE_FREE, b.base + 8192);
    assert_int_equal(pk_buddy_free(&b, NULL), PK_OK);
    assert_int_equal(faults.calls, 0);
    pk_stats after = stats_of(&b);
    assert_int_equal(after.rejected, before.rejected + 19);
    after.rejected = before.rejected;
    assert_memory_equal(&before, &after, sizeof before);
    assert_check_ok(&b);

    /* Double frees: plain, then after merging into the buddy (the stale
     * pointer now lies inside a free block), and of the merged block's
     * start. */
    assert_int_equal(pk_buddy_free(&b, c), PK_OK);
    assert_int_equal(pk_buddy_free(&b, c), PK_ERR_DOUBLE_FREE);
    expect_fault(PK_ERR_DOUBLE_FREE, c);
    assert_int_equal(pk_buddy_free(&b, d), PK_OK); /* d's buddy is live (the next 256) or free */
    assert_int_equal(pk_buddy_free(&b, a), PK_OK); /* a and c merge */
    assert_int_equal(pk_buddy_free(&b, c), PK_ERR_DOUBLE_FREE);
    expect_fault(PK_ERR_DOUBLE_FREE, c);
    assert_int_equal(pk_buddy_free(&b, a), PK_ERR_DOUBLE_FREE);
    expect_fault(PK_ERR_DOUBLE_FREE, a);
    assert_int_equal(pk_buddy_free(&b, d), PK_ERR_DOUBLE_FREE);
    expect_fault(PK_ERR_DOUBLE_FREE, d);
    /* Inside a free block: off a slot boundary is misaligned, on one a
     * double free (as the header says). */
    assert_int_equal(pk_buddy_free(&b, c + 8), PK_ERR_MISALIGNED_PTR);
    expect_fault(PK_ERR_MISALIGNED_PTR, c + 8);
    assert_int_equal(pk_buddy_free(&b, c + 16), PK_ERR_DOUBLE_FREE);
    expect_fault(PK_ERR_DOUBLE_FREE, c + 16);
    assert_int_equal(pk_buddy_usable_size(&b, a), 0);
    assert_int_equal(pk_buddy_usable_size(&b, other), 0);
    assert_int_equal(pk_buddy_block_size(&b, a + 16), 0);
    assert_int_equal(faults.calls, 0);
    assert_whole(&b);
}
#endif

/* Release builds only: this test is about the release layout (block
 * addresses from the base, the slack record past the request, free-list links
 * in freed blocks). Debug builds lay a tag and guards in every block and hold
 * freed blocks in the quarantine; test_debug_* below cover what they catch. */
#if !PK_DEBUG
/* Writing past the request damages the slack record: free reports it once,
 * still frees, and requested stays exact. */
static void test_record_overwritten(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, 1 << 16, 0), PK_OK);
    unsigned char *keep = pk_buddy_alloc(&b, 300);
    unsigned char *p = pk_buddy_alloc(&b, 100); /* a 128-byte block, 28 bytes of slack */
    assert_check_ok(&b);
    p[127] = 0; /* a slack of 0 cannot be */
    assert_check_corrupt(&b);
    assert_int_equal(pk_buddy_usable_size(&b, p), 0);
    assert_int_equal(pk_buddy_free(&b, p), PK_ERR_GUARD_CORRUPT);
    expect_fault(PK_ERR_GUARD_CORRUPT, p);
    pk_stats s = stats_of(&b);
    assert_int_equal(s.live, 1);
    assert_int_equal(s.requested, 300);
    assert_int_equal(s.rejected, 0);
    assert_int_equal(s.frees, 1);
    assert_check_ok(&b);
    /* A plausible but wrong record is caught by check (the sum). */
    p = pk_buddy_alloc(&b, 100);
    p[127] = 27;
    assert_check_corrupt(&b);
    p[127] = 28;
    assert_check_ok(&b);
    /* A slack larger than the block. */
    unsigned char *small = pk_buddy_alloc(&b, 5);
    assert_int_equal(pk_buddy_block_size(&b, small), 16);
    assert_int_equal(small[15], 11);
    small[15] = 100;
    assert_int_equal(pk_buddy_usable_size(&b, small), 0);
    assert_check_corrupt(&b);
    small[15] = 11;
    assert_int_equal(pk_buddy_free(&b, small), PK_OK);
    /* A long slack takes two bytes: 4096 - 100. */
    unsigned char *q = pk_buddy_alloc_aligned(&b, 100, 4096);
    assert_int_equal(pk_buddy_usable_size(&b, q), 100);
    assert_int_equal(q[4095], (3996 & 0x7F) | 0x80);
    assert_int_equal(q[4094], 3996 >> 7);
    q[4094] |= 0x80; /* the record now runs on into the request */
    assert_check_corrupt(&b);
    q[4094] &= 0x7F;
    assert_int_equal(pk_buddy_free(&b, q), PK_OK);
    assert_int_equal(pk_buddy_free(&b, p), PK_OK);
    assert_int_equal(pk_buddy_free(&b, keep), PK_OK);
    assert_whole(&b);
}
#endif

/* Release builds only: this test is about the release layout (block
 * addresses from the base, the slack record past the request, free-list links
 * in freed blocks). Debug builds lay a tag and guards in every block and hold
 * freed blocks in the quarantine; test_debug_* below cover what they catch. */
#if !PK_DEBUG
/* A write after free damages the links of a free block: the list is rebuilt
 * from the map and nothing is handed out twice or lost. */
static void test_write_after_free(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, PK_BUDDY_BUFFER_SIZE(4096, 16), 16), PK_OK);
    unsigned char *a = pk_buddy_alloc(&b, 16);
    unsigned char *c = pk_buddy_alloc(&b, 16);
    assert_ptr_equal(c, a + 16);
    assert_int_equal(pk_buddy_free(&b, c), PK_OK); /* c is on list 0 */
    memset(c, 0x41, 16);                           /* the write after free */
    assert_check_corrupt(&b);
    /* Alloc pops c: its links are impossible. */
    assert_null(pk_buddy_alloc(&b, 16));
    expect_fault(PK_ERR_CORRUPT, NULL);
    assert_int_equal(stats_of(&b).rejected, 1);
    assert_check_ok(&b);
    assert_ptr_equal(pk_buddy_alloc(&b, 16), c);
    assert_int_equal(pk_buddy_free(&b, c), PK_OK);
    /* Free of a merges with c, whose links now point at a live block. */
    unsigned char *e = pk_buddy_alloc(&b, 32);
    memcpy(c, &e, sizeof e);
    memcpy(e + sizeof(void *), &c, sizeof c); /* e's "prev" points back at c */
    assert_int_equal(pk_buddy_free(&b, a), PK_ERR_CORRUPT);
    expect_fault(PK_ERR_CORRUPT, a);
    void *e_prev;
    memcpy(&e_prev, e + sizeof(void *), sizeof e_prev);
    assert_ptr_equal(e_prev, c); /* the live block was not written */
    pk_stats s = stats_of(&b);
    assert_int_equal(s.live, 1);
    assert_int_equal(s.frees, 3);
    assert_check_ok(&b);
    assert_int_equal(pk_buddy_free(&b, e), PK_OK);
    assert_whole(&b);
    /* A list head that is not a free block (a live one of the right order,
     * links that look right): alloc refuses it. */
    unsigned char *x = pk_buddy_alloc(&b, 16);
    unsigned char *y = pk_buddy_alloc(&b, 16);
    assert_int_equal(pk_buddy_free(&b, x), PK_OK);
    assert_ptr_equal(b.free_lists[0], (void *)x);
    pk_buddy_node forged = {NULL, NULL};
    memcpy(y, &forged, sizeof forged);
    b.free_lists[0] = (pk_buddy_node *)(void *)y;
    assert_null(pk_buddy_alloc(&b, 16));
    expect_fault(PK_ERR_CORRUPT, NULL);
    assert_check_ok(&b);
    assert_int_equal(pk_buddy_usable_size(&b, y), 16);
    assert_int_equal(pk_buddy_free(&b, y), PK_OK);
    assert_whole(&b);
}
#endif

/* Release builds only: this test is about the release layout (block
 * addresses from the base, the slack record past the request, free-list links
 * in freed blocks). Debug builds lay a tag and guards in every block and hold
 * freed blocks in the quarantine; test_debug_* below cover what they catch. */
#if !PK_DEBUG
/* A client that zeroes a freed block (memset after free) that heads a list
 * of several blocks: its NULL next must not be taken for the end of the
 * list, which would cut every later block of that order off it (allocs
 * then fail, silently, while the map says blocks are free). The list
 * lengths catch it in O(1) when the node is popped or unlinked. */
static void test_zeroed_list_head(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, PK_BUDDY_BUFFER_SIZE(64, 16), 16), PK_OK);
    assert_int_equal(b.slots, 4);
    unsigned char *q[4];
    for (size_t i = 0; i < 4; i++) {
        q[i] = pk_buddy_alloc(&b, 16);
        assert_ptr_equal(q[i], b.base + 16 * i);
    }
    assert_int_equal(pk_buddy_free(&b, q[0]), PK_OK);
    assert_int_equal(pk_buddy_free(&b, q[2]), PK_OK); /* list 0: q2 -> q0 */
    assert_check_ok(&b);
    memset(q[2], 0, 16);
    assert_check_corrupt(&b);
    /* The pop refuses the head, reports once, rebuilds the lists. */
    assert_null(pk_buddy_alloc(&b, 16));
    expect_fault(PK_ERR_CORRUPT, NULL);
    assert_int_equal(stats_of(&b).rejected, 1);
    assert_check_ok(&b);
    unsigned char *x = pk_buddy_alloc(&b, 16);
    unsigned char *y = pk_buddy_alloc(&b, 16);
    assert_true((x == q[0] && y == q[2]) || (x == q[2] && y == q[0]));
    assert_int_equal(stats_of(&b).failures, 0);
    assert_int_equal(faults.calls, 0);
    assert_check_ok(&b);

    /* The same through a merge: the zeroed head is the freed block's buddy. */
    assert_int_equal(pk_buddy_free(&b, q[0]), PK_OK);
    assert_int_equal(pk_buddy_free(&b, q[2]), PK_OK); /* list 0: q2 -> q0 */
    memset(q[2], 0, 16);
    assert_int_equal(pk_buddy_free(&b, q[3]), PK_ERR_CORRUPT); /* freed, lists rebuilt */
    expect_fault(PK_ERR_CORRUPT, q[3]);
    assert_check_ok(&b);
    assert_int_equal(stats_of(&b).largest_free, 32);
    assert_int_equal(pk_buddy_free(&b, q[1]), PK_OK);
    assert_whole(&b);

    /* A zeroed next further down the list (a block of three): the pops go on
     * until the list runs out with a block still counted on it. */
    assert_int_equal(pk_buddy_init(&b, arena, PK_BUDDY_BUFFER_SIZE(128, 16), 16), PK_OK);
    unsigned char *r[8];
    for (size_t i = 0; i < 8; i++) {
        r[i] = pk_buddy_alloc(&b, 16);
    }
    assert_int_equal(pk_buddy_free(&b, r[0]), PK_OK);
    assert_int_equal(pk_buddy_free(&b, r[2]), PK_OK);
    assert_int_equal(pk_buddy_free(&b, r[4]), PK_OK); /* list 0: r4 -> r2 -> r0 */
    memset(r[2], 0, sizeof(void *));                  /* r2's next */
    assert_ptr_equal(pk_buddy_alloc(&b, 16), r[4]);
    assert_null(pk_buddy_alloc(&b, 16)); /* r2 is the head, r0 still counted */
    expect_fault(PK_ERR_CORRUPT, NULL);
    assert_check_ok(&b);
    unsigned char *u = pk_buddy_alloc(&b, 16);
    unsigned char *v = pk_buddy_alloc(&b, 16);
    assert_true((u == r[0] && v == r[2]) || (u == r[2] && v == r[0]));
    assert_null(pk_buddy_alloc(&b, 16));
    assert_int_equal(faults.calls, 0);
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(pk_buddy_free(&b, r[i]), PK_OK);
    }
    assert_whole(&b);
}
#endif

/* Release builds only: this test is about the release layout (block
 * addresses from the base, the slack record past the request, free-list links
 * in freed blocks). Debug builds lay a tag and guards in every block and hold
 * freed blocks in the quarantine; test_debug_* below cover what they catch. */
#if !PK_DEBUG
/* A write past the request that leaves a possible record with a smaller
 * slack than was written records a request larger than the one counted:
 * free and realloc must not subtract it from requested (it wrapped below
 * zero) but report it and recount. */
static void test_record_larger_than_requested(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, 1024, 16), PK_OK);
    unsigned char *p = pk_buddy_alloc(&b, 100); /* a 128-byte block, 28 bytes of slack */
    p[127] = 1;                                 /* now says: a request of 127 */
    assert_int_equal(pk_buddy_usable_size(&b, p), 127);
    assert_check_corrupt(&b);
    assert_int_equal(pk_buddy_free(&b, p), PK_ERR_GUARD_CORRUPT);
    expect_fault(PK_ERR_GUARD_CORRUPT, p);
    pk_stats s = stats_of(&b);
    assert_int_equal(s.requested, 0);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.rejected, 0);
    assert_check_ok(&b);
    assert_whole(&b);

    /* realloc in place. */
    p = pk_buddy_alloc(&b, 100);
    p[127] = 1;
    assert_ptr_equal(pk_buddy_realloc(&b, p, 50), p);
    expect_fault(PK_ERR_GUARD_CORRUPT, p);
    assert_int_equal(stats_of(&b).requested, 50);
    assert_int_equal(pk_buddy_usable_size(&b, p), 50);
    assert_check_ok(&b);
    /* realloc that moves: the free of the old block reports it. */
    p[127] = 1; /* slack 78 written for 50: now 127 */
    unsigned char *q = pk_buddy_realloc(&b, p, 200);
    assert_non_null(q);
    expect_fault(PK_ERR_GUARD_CORRUPT, p);
    assert_int_equal(stats_of(&b).requested, 200);
    assert_check_ok(&b);
    assert_int_equal(pk_buddy_free(&b, q), PK_OK);
    assert_whole(&b);
}
#endif

/* min_block so large that MAP_WORD_SLOTS * min_block does not fit in size_t
 * (2^59 here, 2^28 with a 32-bit size_t): the slot count must not come from
 * the wrapped product. */
static void test_huge_min_block(void **state)
{
    (void)state;
    size_t word_slots = 4 * sizeof(size_t);
    size_t wraps = SIZE_MAX / word_slots + 1; /* the smallest power of two whose group wraps */
    assert_true(wraps != 0 && (wraps & (wraps - 1)) == 0);
    size_t mins[] = {wraps / 2, wraps, wraps * 2, (size_t)1 << (sizeof(size_t) * 8 - 1)};
    for (size_t i = 0; i < sizeof mins / sizeof *mins; i++) {
        /* Not one block of that size fits: everything is metadata. */
        assert_int_equal(pk_buddy_metadata_size(65536, mins[i]), 65536);
        /* Exactly one slot and its map word. */
        assert_int_equal(pk_buddy_metadata_size(mins[i] + sizeof(size_t), mins[i]), sizeof(size_t));
        /* A buffer at an address aligned to min_block (never dereferenced:
         * init must refuse before it touches the buffer). */
        pk_buddy b;
        memset(&b, 0x5A, sizeof b);
        unsigned char before[sizeof b];
        memcpy(before, &b, sizeof b);
        void *aligned = (void *)(uintptr_t)mins[i];
        assert_int_equal(pk_buddy_init(&b, aligned, 65536, mins[i]), PK_ERR_INVALID_ARG);
        assert_int_equal(pk_buddy_init(&b, arena, sizeof arena, mins[i]), PK_ERR_INVALID_ARG);
        assert_memory_equal(&b, before, sizeof b);
    }
    assert_int_equal(faults.calls, 0);
}

/* Corruption: check finds each kind of damage. */
#define WORD_SLOTS (4 * sizeof(size_t))

#if !PK_DEBUG
static void map_set_state(pk_buddy *b, size_t slot, unsigned v)
{
    unsigned shift = (unsigned)(slot % WORD_SLOTS) * 2;
    b->map[slot / WORD_SLOTS] = (b->map[slot / WORD_SLOTS] & ~((size_t)3 << shift)) | ((size_t)v << shift);
}

static unsigned map_state(const pk_buddy *b, size_t slot)
{
    return (unsigned)(b->map[slot / WORD_SLOTS] >> ((slot % WORD_SLOTS) * 2)) & 3u;
}
#endif

/* Release builds only: this test is about the release layout (block
 * addresses from the base, the slack record past the request, free-list links
 * in freed blocks). Debug builds lay a tag and guards in every block and hold
 * freed blocks in the quarantine; test_debug_* below cover what they catch. */
#if !PK_DEBUG
static void test_check_finds_damage(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, PK_BUDDY_BUFFER_SIZE(16384, 16), 16), PK_OK);
    unsigned char *p[8];
    for (size_t i = 0; i < 8; i++) {
        p[i] = pk_buddy_alloc(&b, 64);
    }
    assert_int_equal(pk_buddy_free(&b, p[1]), PK_OK); /* 64 free at slot 4 */
    assert_int_equal(pk_buddy_free(&b, p[4]), PK_OK); /* 64 free at slot 16 */
    assert_int_equal(pk_buddy_free(&b, p[6]), PK_OK); /* 64 free at slot 24 */
    assert_check_ok(&b);
    unsigned char saved_map[1024];
    size_t map_bytes = PK_BUDDY_MAP_BYTES_(b.slots);
    memcpy(saved_map, b.map, map_bytes);

    /* The map: each state changed in turn. */
    for (size_t slot = 0; slot < 48; slot++) {
        for (unsigned v = 0; v < 4; v++) {
            if (v == map_state(&b, slot)) {
                continue;
            }
            map_set_state(&b, slot, v);
            if (pk_buddy_check(&b) != PK_ERR_CORRUPT) {
                fail_msg("map damage at slot %zu (state %u) not found", slot, v);
            }
            assert_int_equal(faults.last.kind, PK_ERR_CORRUPT);
            memcpy(b.map, saved_map, map_bytes);
        }
    }
    faults.calls = 0;
    assert_check_ok(&b);
    /* With the next block's start lost, a block's order stays within its
     * alignment (slot 12: at most 4 slots). */
    map_set_state(&b, 16, 0);
    assert_int_equal(pk_buddy_block_size(&b, p[3]), 64);
    assert_check_corrupt(&b);
    memcpy(b.map, saved_map, map_bytes);
    /* A block start inside a block of several map words (not at a slot the
     * order is probed at). */
    unsigned char *large = pk_buddy_alloc(&b, 4096); /* 256 slots */
    size_t large_slot = (size_t)(large - b.base) / 16;
    for (size_t t = large_slot + 37; t < large_slot + 256; t += 50) {
        unsigned v = map_state(&b, t);
        map_set_state(&b, t, 1);
        assert_check_corrupt(&b);
        map_set_state(&b, t, v);
    }
    assert_check_ok(&b);
    assert_int_equal(pk_buddy_free(&b, large), PK_OK);
    memcpy(saved_map, b.map, map_bytes);

    /* Two free buddies left unmerged (the lists kept consistent). */
    assert_int_equal(pk_buddy_free(&b, p[5]), PK_OK); /* merges with slot 16 */
    assert_check_ok(&b);
    pk_buddy copy = b;
    memcpy(saved_map, b.map, map_bytes);

    /* A cycle in a free list: list 2 holds slots 4 and 24. */
    pk_buddy_node *first = b.free_lists[2];
    assert_non_null(first);
    assert_non_null(first->next);
    pk_buddy_node *second_node = first->next;
    pk_buddy_node *saved_next = second_node->next;
    second_node->next = first;
    assert_check_corrupt(&b);
    second_node->next = second_node;
    assert_check_corrupt(&b);
    second_node->next = (pk_buddy_node *)(void *)other; /* outside */
    assert_check_corrupt(&b);
    second_node->next = saved_next;
    pk_buddy_node *saved_prev = second_node->prev;
    second_node->prev = NULL; /* a broken back link */
    assert_check_corrupt(&b);
    second_node->prev = saved_prev;
    assert_check_ok(&b);

    /* A block on the wrong order's list (bitmap kept consistent). */
    pk_buddy_node *big = b.free_lists[3]; /* slot 16, 128 bytes after the merge */
    assert_non_null(big);
    assert_null(b.free_lists[4]);
    b.free_lists[4] = big;
    b.free_lists[3] = NULL;
    b.nonempty = (b.nonempty & ~((size_t)1 << 3)) | ((size_t)1 << 4);
    assert_check_corrupt(&b);
    b = copy;
    assert_check_ok(&b);
    /* The bitmap of non-empty lists. */
    b.nonempty &= ~((size_t)1 << 2);
    assert_check_corrupt(&b);
    b.nonempty = copy.nonempty | ((size_t)1 << 1);
    assert_check_corrupt(&b);
    b.nonempty = copy.nonempty | ((size_t)1 << (b.max_order + 1));
    assert_check_corrupt(&b);
    b = copy;
    /* The recorded list lengths. */
    b.free_count[2]++;
    assert_check_corrupt(&b);
    b = copy;
    b.free_count[3] = 0;
    assert_check_corrupt(&b);
    b = copy;
    b.free_count[0] = 1; /* an empty list */
    assert_check_corrupt(&b);
    b = copy;
    /* Counters. */
    b.in_use += 16;
    assert_check_corrupt(&b);
    b = copy;
    b.requested--;
    assert_check_corrupt(&b);
    b = copy;
    b.live++;
    assert_check_corrupt(&b);
    b = copy;
    b.peak_live = 0;
    assert_check_corrupt(&b);
    b = copy;
    b.frees++;
    assert_check_corrupt(&b);
    b = copy;
    /* Two free buddies not merged: split the merged 128 back by hand. */
    pk_buddy_node *low = b.free_lists[3];
    pk_buddy_node *high = (pk_buddy_node *)(void *)(b.base + 20 * 16);
    pk_buddy_node *list2 = b.free_lists[2];
    pk_buddy_node saved_low = *low, saved_list2 = *list2;
    map_set_state(&b, 20, 1);
    b.free_lists[3] = NULL;
    b.nonempty &= ~((size_t)1 << 3);
    low->next = high;
    low->prev = NULL;
    high->prev = low;
    high->next = list2;
    list2->prev = high;
    b.free_lists[2] = low;
    assert_check_corrupt(&b);
    b = copy;
    memcpy(b.map, saved_map, map_bytes);
    *low = saved_low;
    *list2 = saved_list2;
    assert_check_ok(&b);
    for (size_t i = 0; i < 8; i++) {
        if (i != 1 && i != 4 && i != 5 && i != 6) {
            assert_int_equal(pk_buddy_free(&b, p[i]), PK_OK);
        }
    }
    assert_int_equal(faults.calls, 0);
    assert_whole(&b);
}
#endif

static void test_lock_wraps_every_operation(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, 1 << 16, 0), PK_OK);
    pk_lock half = {counting_lock, NULL, &lock_calls};
    assert_int_equal(pk_buddy_set_lock(&b, &half), PK_ERR_INVALID_ARG);
    pk_lock l = {counting_lock, counting_unlock, &lock_calls};
    assert_int_equal(pk_buddy_set_lock(&b, &l), PK_OK);
    lock_calls = 0;
    void *p = pk_buddy_alloc(&b, 100);
    void *q = pk_buddy_alloc_aligned(&b, 100, 256);
    assert_int_equal(lock_calls, 2);
    assert_int_equal(pk_buddy_free(&b, p), PK_OK);
    assert_int_equal(lock_calls, 3);
    assert_int_equal(pk_buddy_free(&b, p), PK_ERR_DOUBLE_FREE);
    assert_int_equal(faults.lock_depth_seen, 0);
    expect_fault(PK_ERR_DOUBLE_FREE, p);
    assert_null(pk_buddy_alloc_aligned(&b, 1, 7));
    assert_int_equal(faults.lock_depth_seen, 0);
    expect_fault(PK_ERR_INVALID_ARG, NULL);
    lock_calls = 0;
    assert_int_equal(pk_buddy_usable_size(&b, q), 100);
#if PK_DEBUG
    /* Debug builds: the tag and front guard rounded up to 256 come first. */
    assert_int_equal(pk_buddy_block_size(&b, q), 512);
#else
    assert_int_equal(pk_buddy_block_size(&b, q), 256);
#endif
    pk_stats s;
    pk_buddy_stats(&b, &s);
    pk_buddy_reset_peaks(&b);
    assert_check_ok(&b);
    assert_int_equal(lock_calls, 5);
    assert_int_equal(pk_buddy_free(&b, q), PK_OK);
    assert_int_equal(lock_depth, 0);
    assert_int_equal(pk_buddy_set_lock(&b, NULL), PK_OK);
    lock_calls = 0;
    assert_int_equal(pk_buddy_free(&b, pk_buddy_alloc(&b, 10)), PK_OK);
    assert_int_equal(lock_calls, 0);
    assert_whole(&b);
}

static void test_peaks_and_names(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, 1 << 16, 0), PK_OK);
    void *a = pk_buddy_alloc(&b, 1000);
    void *c = pk_buddy_alloc(&b, 1000);
    assert_int_equal(pk_buddy_free(&b, a), PK_OK);
    pk_stats s = stats_of(&b);
    /* Debug builds: 1000 bytes and the tag and guards take 2048-byte blocks. */
    size_t block = PK_DEBUG ? 2048 : 1024;
    assert_int_equal(s.peak_live, 2);
    assert_int_equal(s.peak_in_use, 2 * block);
    pk_buddy_reset_peaks(&b);
    s = stats_of(&b);
    assert_int_equal(s.peak_live, 1);
    assert_int_equal(s.peak_in_use, block);
    assert_string_equal(pk_name(pk_buddy_allocator(&b)), "buddy");
    pk_buddy_set_name(&b, "pages");
    assert_int_equal(pk_buddy_free(&b, a), PK_ERR_DOUBLE_FREE);
    assert_string_equal(faults.last.allocator, "pages");
    faults.calls = 0;
    pk_buddy_set_name(&b, NULL);
    assert_string_equal(pk_name(pk_buddy_allocator(&b)), "buddy");
    /* Through the generic view: realloc moves and keeps the contents. */
    pk_allocator *view = pk_buddy_allocator(&b);
    unsigned char *r = pk_realloc(view, NULL, 40);
    memset(r, 7, 40);
    unsigned char *r2 = pk_realloc(view, r, 400);
    assert_non_null(r2);
    assert_int_equal(r2[39], 7);
    assert_int_equal(pk_buddy_usable_size(&b, r2), 400);
    assert_null(pk_realloc(view, r2, 0));
    /* And called directly: realloc(NULL, n) allocates, realloc(p, 0) frees
     * and returns NULL, and a p no longer live is reported as its free would
     * be, with NULL returned. */
    unsigned char *d = pk_buddy_realloc(&b, NULL, 100);
    assert_non_null(d);
    assert_true(pk_buddy_usable_size(&b, d) >= 100);
    assert_int_equal(stats_of(&b).live, 2);
    assert_null(pk_buddy_realloc(&b, d, 0));
    assert_int_equal(stats_of(&b).live, 1);
    assert_int_equal(faults.calls, 0);
    assert_null(pk_buddy_realloc(&b, d, 10));
    expect_fault(PK_ERR_DOUBLE_FREE, d);
    assert_int_equal(stats_of(&b).live, 1);
    assert_int_equal(pk_buddy_free(&b, c), PK_OK);
    assert_whole(&b);
}

/* The randomized driver, through the generic view. */
static pk_driver_slot slots[4096];

static void run_driver(size_t offset, size_t size, size_t min_block, size_t min_size, size_t max_size,
                       size_t max_align, uint64_t seed, size_t ops)
{
    pk_driver_fill_garbage(arena + offset, size, seed);
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena + offset, size, min_block), PK_OK);
    pk_driver_config cfg = {
        .realloc_percent = 10,
        .seed = seed,
        .ops = ops,
        .min_size = min_size,
        .max_size = max_size,
        .max_align = max_align,
        .default_align = b.min_block,
        .region = arena + offset,
        .region_size = size,
        .requested_exact = true,
        .slots = slots,
        .slot_count = 4096,
        .report = report_line,
    };
    pk_driver_result result;
    assert_int_equal(pk_driver_run(pk_buddy_allocator(&b), &cfg, &result), 0);
    assert_int_equal(result.ops, ops);
    assert_int_equal(faults.calls, 0);
    assert_whole(&b);
}

static void test_random_small_blocks(void **state)
{
    (void)state;
    run_driver(0, 1 << 16, 16, 0, 256, 0, 21, random_ops());
}

static void test_random_log_uniform(void **state)
{
    (void)state;
    run_driver(5, sizeof arena - 5, 16, 16, 4096, 0, 22, random_ops());
}

static void test_random_odd_region_aligned(void **state)
{
    (void)state;
    run_driver(0, 300000 + 17, 32, 1, 8192, 8192, 23, random_ops() / 2);
}

static void test_random_large_min_block(void **state)
{
    (void)state;
    run_driver(64, 777777, 4096, 0, 40000, 0, 24, random_ops() / 4);
    run_driver(3, 123457, 256, 1, 3000, 512, 25, random_ops() / 4);
}

static void test_random_tiny(void **state)
{
    (void)state;
    run_driver(1, 1000, 0, 0, 200, 64, 26, random_ops() / 4);
    run_driver(0, 64 + sizeof(size_t), 64, 0, 64, 0, 27, random_ops() / 8);
}

static void test_misuse_through_the_driver(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, 1 << 16, 0), PK_OK);
    pk_misuse_config cfg = {
        .region = arena,
        .region_size = 1 << 16,
        .alloc_size = 100,
        .catches_interior = true,
        .capacity_blocks = stats_of(&b).capacity / (PK_BUDDY_DEBUG_OVERHEAD(0) + 100 <= 128 ? 128 : 256),
        .report = report_line,
    };
    assert_int_equal(pk_driver_misuse(pk_buddy_allocator(&b), &cfg), 0);
    pk_set_fault_handler(count_fault, NULL);
    assert_whole(&b);
}

#if PK_DEBUG
#include "poolkit/debug.h"

/* The tests' own misuse: a byte written where the client must not write,
 * past ASan (the debug layer closes guards and freed bytes to it), so that
 * the debug layer's own detection is what the test sees. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((no_sanitize_address))
#endif
static void poke(unsigned char *p, unsigned char value)
{
    *(volatile unsigned char *)p = value;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((no_sanitize_address))
#endif
static unsigned char peek(const unsigned char *p)
{
    return *(const volatile unsigned char *)p;
}

/* Exactly one fault since the last check: kind at ptr in "buddy", with the
 * block's allocation line (0: no tag known) and the call's line (0: none, as
 * for check), both in this file, and the owner tagged. */
static void expect_debug_fault(pk_status kind, const void *ptr, int alloc_line, int call_line, uint32_t owner)
{
    expect_fault_sites(kind, ptr, "buddy", __FILE__, alloc_line, owner, call_line);
}

/* Frees enough other blocks to push every quarantined block out. */
static void churn(pk_buddy *b)
{
    for (int i = 0; i < PK_QUARANTINE_SIZE + 1; i++) {
        void *x = pk_buddy_alloc(b, 40);
        assert_non_null(x);
        assert_int_equal(pk_buddy_free(b, x), PK_OK);
    }
}

static void test_debug_overflow_and_underflow(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, 1 << 16, 0), PK_OK);
    pk_set_owner(7);
    unsigned char *p = pk_buddy_alloc(&b, 24); int at = __LINE__;
    pk_set_owner(0);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % PK_MAX_ALIGN, 0);
    assert_int_equal(pk_buddy_usable_size(&b, p), 24);
    p[23] = 1; /* the last byte is the client's */
    assert_check_ok(&b);
    poke(p + 24, 1); /* overflow by one */
    assert_int_equal(pk_buddy_check(&b), PK_ERR_GUARD_CORRUPT);
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, p, at, 0, 7);
    assert_int_equal(pk_buddy_free(&b, p), PK_ERR_GUARD_CORRUPT); int freed = __LINE__;
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, p, at, freed, 7);
    assert_whole(&b); /* freed all the same, guards restored */
    assert_int_equal(stats_of(&b).frees, 1);

    unsigned char *q = pk_buddy_alloc(&b, 40); at = __LINE__;
    poke(q - 1, 0); /* underflow by one */
    assert_int_equal(pk_buddy_free(&b, q), PK_ERR_GUARD_CORRUPT); freed = __LINE__;
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, q, at, freed, 0);
    assert_whole(&b);

    /* The tail past the rear guard, up to the block's end, is watched too. */
    q = pk_buddy_alloc(&b, 30); at = __LINE__;
    size_t block = pk_buddy_block_size(&b, q);
    assert_int_equal(block, 128); /* 30 + the overhead */
    poke(q + 30 + PK_GUARD_SIZE + 3, 0);
    assert_int_equal(pk_buddy_free(&b, q), PK_ERR_GUARD_CORRUPT); freed = __LINE__;
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, q, at, freed, 0);
    assert_whole(&b);
}

static void test_debug_write_after_free(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, 1 << 16, 0), PK_OK);
    void *keep = pk_buddy_alloc(&b, 8); /* a live block: the quarantine does not empty */
    pk_set_owner(3);
    unsigned char *p = pk_buddy_alloc(&b, 32); int at = __LINE__;
    pk_set_owner(0);
    assert_int_equal(pk_buddy_free(&b, p), PK_OK);
    poke(p + 5, 1); /* write after free */
    assert_int_equal(pk_buddy_check(&b), PK_ERR_USE_AFTER_FREE);
    expect_debug_fault(PK_ERR_USE_AFTER_FREE, p, at, 0, 3);
    /* Reported once, when it leaves the quarantine, by the call that pushes it out. */
    int evicting = 0;
    for (int i = 0; i < PK_QUARANTINE_SIZE + 1 && faults.calls == 0; i++) {
        void *x = pk_buddy_alloc(&b, 40);
        assert_int_equal(pk_buddy_free(&b, x), PK_OK); evicting = __LINE__;
    }
    expect_debug_fault(PK_ERR_USE_AFTER_FREE, p, at, evicting, 3);
    churn(&b);
    assert_int_equal(faults.calls, 0);
    assert_check_ok(&b);
    pk_stats s = stats_of(&b);
    assert_int_equal(s.live, 1);
    assert_int_equal(s.requested, 8);
    assert_int_equal(s.in_use, pk_buddy_block_size(&b, keep));
    assert_int_equal(pk_buddy_free(&b, keep), PK_OK);
    assert_whole(&b);
}

static void test_debug_double_free(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, 1 << 16, 0), PK_OK);
    void *keep = pk_buddy_alloc(&b, 8);
    pk_set_owner(9);
    unsigned char *p = pk_buddy_alloc(&b, 100); int at = __LINE__;
    pk_set_owner(0);
    assert_int_equal(pk_buddy_free(&b, p), PK_OK);
    pk_stats before = stats_of(&b);
    /* Quarantined. */
    assert_int_equal(pk_buddy_free(&b, p), PK_ERR_DOUBLE_FREE); int again = __LINE__;
    expect_debug_fault(PK_ERR_DOUBLE_FREE, p, at, again, 9);
    pk_stats after = stats_of(&b);
    assert_int_equal(after.rejected, before.rejected + 1);
    after.rejected = before.rejected;
    assert_memory_equal(&before, &after, sizeof before);
    assert_check_ok(&b);
    /* Out of the quarantine and merged: still caught. */
    churn(&b);
    assert_int_equal(pk_buddy_free(&b, p), PK_ERR_DOUBLE_FREE); again = __LINE__;
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, PK_ERR_DOUBLE_FREE);
    assert_int_equal(faults.last.call_line, again);
    faults.calls = 0;
    /* Through the generic view, with the view's call site. */
    pk_allocator *view = pk_buddy_allocator(&b);
    void *r = pk_alloc(view, 10); at = __LINE__;
    assert_int_equal(pk_free(view, r), PK_OK);
    assert_int_equal(pk_free(view, r), PK_ERR_DOUBLE_FREE); again = __LINE__;
    expect_debug_fault(PK_ERR_DOUBLE_FREE, r, at, again, 0);
    assert_check_ok(&b);
    assert_int_equal(pk_buddy_free(&b, keep), PK_OK);
    assert_whole(&b);
}

static void test_debug_foreign_and_interior(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, 1 << 16, 0), PK_OK);
    unsigned char *p = pk_buddy_alloc(&b, 100); int at = __LINE__;
    pk_stats before = stats_of(&b);
    assert_int_equal(pk_buddy_free(&b, other), PK_ERR_FOREIGN_PTR); int call = __LINE__;
    expect_debug_fault(PK_ERR_FOREIGN_PTR, other, 0, call, 0);
    assert_int_equal(pk_buddy_free(&b, p + 1), PK_ERR_MISALIGNED_PTR); call = __LINE__;
    expect_debug_fault(PK_ERR_MISALIGNED_PTR, p + 1, 0, call, 0);
    assert_int_equal(pk_buddy_free(&b, p + 16), PK_ERR_MISALIGNED_PTR); call = __LINE__;
    expect_debug_fault(PK_ERR_MISALIGNED_PTR, p + 16, 0, call, 0);
    unsigned char *start = p - (PK_BUDDY_DEBUG_OVERHEAD(0) - PK_GUARD_SIZE); /* the block's start: not the client's */
    assert_int_equal(pk_buddy_free(&b, start), PK_ERR_MISALIGNED_PTR); call = __LINE__;
    expect_debug_fault(PK_ERR_MISALIGNED_PTR, start, 0, call, 0);
    assert_int_equal(pk_buddy_free(&b, arena + 4096), PK_ERR_DOUBLE_FREE); /* inside a free block */
    faults.calls = 0;
    assert_int_equal(pk_buddy_usable_size(&b, p + 16), 0);
    assert_null(pk_realloc(pk_buddy_allocator(&b), p + 16, 10)); call = __LINE__;
    expect_debug_fault(PK_ERR_MISALIGNED_PTR, p + 16, 0, call, 0);
    pk_stats after = stats_of(&b);
    assert_int_equal(after.rejected, before.rejected + 6);
    after.rejected = before.rejected;
    assert_memory_equal(&before, &after, sizeof before);
    assert_check_ok(&b);
    /* A live block whose tag was overwritten stays live: corrupt. */
    unsigned char saved = peek(p - PK_GUARD_SIZE - 20);
    poke(p - PK_GUARD_SIZE - 20, saved ^ 0x40);
    assert_int_equal(pk_buddy_free(&b, p), PK_ERR_CORRUPT);
    faults.calls = 0;
    poke(p - PK_GUARD_SIZE - 20, saved);
    assert_int_equal(pk_buddy_free(&b, p), PK_OK);
    assert_int_equal(faults.calls, 0);
    (void)at;
    assert_whole(&b);
    (void)assert_check_corrupt;
}

static void count_leak(const pk_leak *leak, void *ctx)
{
    size_t *bytes = ctx;
    *bytes += leak->size;
    assert_string_equal(leak->file, __FILE__);
}

static void test_debug_stats_leaks_and_quarantine(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, 4096, 0), PK_OK);
    pk_allocator *view = pk_buddy_allocator(&b);
    void *small = pk_buddy_alloc(&b, 10);
    uint64_t mark = pk_leak_mark();
    size_t big_size = 2048 - PK_BUDDY_DEBUG_OVERHEAD(0);
    unsigned char *big = pk_buddy_alloc(&b, big_size);
    assert_non_null(big);
    pk_stats s = stats_of(&b);
    assert_int_equal(s.live, 2);
    assert_int_equal(s.requested, 10 + big_size);
    assert_int_equal(s.in_use, 128 + 2048);
    size_t bytes = 0;
    pk_leaks(view, count_leak, &bytes);
    assert_int_equal(bytes, 10 + big_size);
    bytes = 0;
    pk_leaks_since(view, mark, count_leak, &bytes);
    assert_int_equal(bytes, big_size);
    /* Freed: quarantined, but free to the clients. */
    assert_int_equal(pk_buddy_free(&b, big), PK_OK);
    s = stats_of(&b);
    assert_int_equal(s.live, 1);
    assert_int_equal(s.frees, 1);
    assert_int_equal(s.requested, 10);
    assert_int_equal(s.in_use, 128);
    assert_int_equal(s.peak_in_use, 128 + 2048);
    bytes = 0;
    pk_leaks(view, count_leak, &bytes);
    assert_int_equal(bytes, 10);
    /* The quarantine never causes a NULL: the block comes back. */
    unsigned char *again = pk_buddy_alloc(&b, big_size);
    assert_non_null(again);
    assert_int_equal(faults.calls, 0);
    /* Realloc moves, copies exactly the request, keeps the call's site. */
    memset(again, 0x11, big_size);
    assert_int_equal(pk_buddy_free(&b, small), PK_OK);
    unsigned char *r = pk_realloc(view, NULL, 30);
    memset(r, 0x22, 30);
    unsigned char *r2 = pk_buddy_realloc(&b, r, 60); int at = __LINE__;
    assert_non_null(r2);
    assert_int_equal(r2[29], 0x22);
    assert_int_equal(r2[30], 0xCD); /* new bytes: the new-fill */
    assert_int_equal(pk_buddy_usable_size(&b, r2), 60);
    poke(r2 + 60, 0);
    assert_int_equal(pk_buddy_free(&b, r2), PK_ERR_GUARD_CORRUPT);
    assert_int_equal(faults.last.line, at);
    faults.calls = 0;
    assert_int_equal(pk_buddy_free(&b, again), PK_OK);
    assert_whole(&b);
}

/* Pages for slab caches go round the tags: whole blocks, counted. */
#include "../src/buddy_pages.h"
static void test_debug_pages(void **state)
{
    (void)state;
    pk_buddy b;
    assert_int_equal(pk_buddy_init(&b, arena, 1 << 16, 0), PK_OK);
    void *page = pk__buddy_page_get(&b, 4096, 4096);
    assert_non_null(page);
    assert_int_equal((uintptr_t)page % 4096, 0);
    pk_stats s = stats_of(&b);
    assert_int_equal(s.live, 1);
    assert_int_equal(s.requested, 4096);
    assert_int_equal(s.in_use, 4096);
    assert_check_ok(&b);
    assert_int_equal(pk_buddy_free(&b, page), PK_ERR_MISALIGNED_PTR); /* not a client block */
    faults.calls = 0;
    assert_int_equal(pk__buddy_page_put(&b, page), PK_OK);
    assert_int_equal(pk__buddy_page_put(&b, page), PK_ERR_DOUBLE_FREE);
    faults.calls = 0;
    assert_whole(&b);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_rejects_bad_arguments, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_sizing, setup_faults, teardown_faults),
#if !PK_DEBUG
        cmocka_unit_test_setup_teardown(test_blocks_are_powers_of_two_aligned_to_their_size, setup_faults, teardown_faults),
#endif
#if !PK_DEBUG
        cmocka_unit_test_setup_teardown(test_any_region_size, setup_faults, teardown_faults),
#endif
#if !PK_DEBUG
        cmocka_unit_test_setup_teardown(test_split_and_merge, setup_faults, teardown_faults),
#endif
#if !PK_DEBUG
        cmocka_unit_test_setup_teardown(test_largest_free_is_exact, setup_faults, teardown_faults),
#endif
        cmocka_unit_test_setup_teardown(test_aligned, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_too_large_is_a_failure, setup_faults, teardown_faults),
#if !PK_DEBUG
        cmocka_unit_test_setup_teardown(test_misuse, setup_faults, teardown_faults),
#endif
#if !PK_DEBUG
        cmocka_unit_test_setup_teardown(test_record_overwritten, setup_faults, teardown_faults),
#endif
#if !PK_DEBUG
        cmocka_unit_test_setup_teardown(test_write_after_free, setup_faults, teardown_faults),
#endif
#if !PK_DEBUG
        cmocka_unit_test_setup_teardown(test_zeroed_list_head, setup_faults, teardown_faults),
#endif
#if !PK_DEBUG
        cmocka_unit_test_setup_teardown(test_record_larger_than_requested, setup_faults, teardown_faults),
#endif
        cmocka_unit_test_setup_teardown(test_huge_min_block, setup_faults, teardown_faults),
#if !PK_DEBUG
        cmocka_unit_test_setup_teardown(test_check_finds_damage, setup_faults, teardown_faults),
#endif
        cmocka_unit_test_setup_teardown(test_lock_wraps_every_operation, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_peaks_and_names, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_misuse_through_the_driver, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_small_blocks, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_log_uniform, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_odd_region_aligned, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_large_min_block, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_tiny, setup_faults, teardown_faults),
#if PK_DEBUG
        cmocka_unit_test_setup_teardown(test_debug_overflow_and_underflow, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_write_after_free, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_double_free, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_foreign_and_interior, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_stats_leaks_and_quarantine, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_pages, setup_faults, teardown_faults),
#endif
    };
    return cmocka_run_group_tests_name("buddy", tests, NULL, NULL);
}
