/* Unit tests of the size-class set (poolkit/classes.h). */
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
#include "poolkit/classes.h"
#include "poolkit/pthread_lock.h"

/* As expect_fault_named, and the handler ran with the counting lock not held. */
static void expect_fault(pk_status kind, const void *ptr, const char *allocator)
{
    expect_fault_named(kind, ptr, allocator);
    assert_int_equal(faults.lock_depth_seen, 0);
}

static void assert_check_ok(const pk_classes *c)
{
    unsigned before = faults.calls;
    assert_int_equal(pk_classes_check(c), PK_OK);
    assert_int_equal(faults.calls, before);
}

static void assert_check_corrupt(const pk_classes *c, const char *name)
{
    faults.calls = 0;
    assert_int_equal(pk_classes_check(c), PK_ERR_CORRUPT);
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, PK_ERR_CORRUPT);
    assert_string_equal(faults.last.allocator, name);
    assert_int_equal(faults.lock_depth_seen, 0);
    faults.calls = 0;
}

static _Alignas(4096) unsigned char arena[1 << 21];
static pk_classes set;

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

#if PK_DEBUG
/* Bytes from a debug block's start to the pointer handed out (tag and front
 * guard, rounded up to the pool's alignment). */
static size_t debug_prefix_of(const pk_pool *p)
{
    return PK_DEBUG_PREFIX_(p->align);
}
#endif

/* The class whose pool holds p, or (size_t)-1. */
static size_t class_of(const pk_classes *c, const void *p)
{
    size_t found = (size_t)-1;
    for (size_t i = 0; i < c->n; i++) {
        if (pk_pool_owns(&c->pools[i], p)) {
            assert_int_equal(found, (size_t)-1);
            found = i;
        }
    }
    return found;
}

static size_t sum_buffer_sizes(const pk_class_spec *specs, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += PK_POOL_BUFFER_SIZE(specs[i].block_size, specs[i].count, specs[i].align);
    }
    return total;
}

static void init_set(pk_classes *c, const pk_class_spec *specs, size_t n, size_t offset)
{
    size_t need = pk_classes_buffer_size(specs, n);
    assert_int_equal(need, sum_buffer_sizes(specs, n));
    assert_true(offset + need <= sizeof arena);
    pk_driver_fill_garbage(arena + offset, need, need + offset);
    assert_int_equal(pk_classes_init(c, arena + offset, need, specs, n), PK_OK);
}

static const pk_class_spec small_specs[] = {
    {16, 4, 0}, {32, 3, 8}, {64, 2, 64}, {200, 2, 16}, /* class 3: 8 bytes of padding */
};

/* Init and buffer size: argument checks. */

static void test_init_rejects_bad_arguments(void **state)
{
    (void)state;
    pk_classes c;
    memset(&c, 0x5A, sizeof c);
    static pk_classes untouched;
    memcpy(&untouched, &c, sizeof c);
    const size_t big = sizeof arena;
    pk_class_spec specs[PK_CLASSES_MAX + 1];
    for (size_t i = 0; i < COUNT_OF(specs); i++) {
        specs[i] = (pk_class_spec){8 * (i + 1), 2, 0};
    }
    assert_int_equal(pk_classes_init(NULL, arena, big, specs, 2), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_classes_init(&c, NULL, big, specs, 2), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_classes_init(&c, arena, big, NULL, 2), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_classes_init(&c, arena, big, specs, 0), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_classes_init(&c, arena, big, specs, PK_CLASSES_MAX + 1), PK_ERR_INVALID_ARG);
    assert_int_equal(pk_classes_buffer_size(specs, PK_CLASSES_MAX + 1), 0);
    assert_int_equal(pk_classes_buffer_size(NULL, 1), 0);
    assert_int_equal(pk_classes_buffer_size(specs, 0), 0);

    /* One bad spec among good ones, at each position. */
    static const pk_class_spec bad[] = {
        {0, 2, 0},                    /* block size 0 */
        {24, 0, 0},                   /* count 0 */
        {24, 2, 3},                   /* align not a power of two */
        {24, 2, 24},
        {24, 2, SIZE_MAX},
        {SIZE_MAX, 1, 0},             /* stride overflows */
        {SIZE_MAX / 2 + 1, 1, 0},
        {24, SIZE_MAX / 8, 0},        /* count x stride overflows */
        {24, 2, (SIZE_MAX >> 1) + 1}, /* alignment padding overflows */
    };
    for (size_t b = 0; b < COUNT_OF(bad); b++) {
        for (size_t at = 0; at < 3; at++) {
            pk_class_spec three[3] = {{8, 2, 0}, {16, 2, 0}, {SIZE_MAX / 4, 2, 0}};
            three[2].block_size = 4096;
            three[at] = bad[b];
            /* keep the rest ascending around the bad one where possible */
            assert_int_equal(pk_classes_buffer_size(three, 3), 0);
            assert_int_equal(pk_classes_init(&c, arena, big, three, 3), PK_ERR_INVALID_ARG);
        }
    }
    /* Out of order: descending, and equal block sizes. */
    pk_class_spec order[3] = {{16, 2, 0}, {8, 2, 0}, {32, 2, 0}};
    assert_int_equal(pk_classes_buffer_size(order, 3), 0);
    assert_int_equal(pk_classes_init(&c, arena, big, order, 3), PK_ERR_INVALID_ARG);
    order[1].block_size = 16;
    assert_int_equal(pk_classes_init(&c, arena, big, order, 3), PK_ERR_INVALID_ARG);
    order[1].block_size = 32;
    assert_int_equal(pk_classes_init(&c, arena, big, order, 3), PK_ERR_INVALID_ARG);
    /* The sum of valid pools overflows size_t. */
    pk_class_spec huge[2] = {{SIZE_MAX / 4 - 100, 2, 0}, {SIZE_MAX / 4, 3, 0}};
    assert_true(pk_classes_buffer_size(huge, 1) != 0);
    assert_int_equal(pk_classes_buffer_size(huge, 2), 0);
    assert_int_equal(pk_classes_init(&c, arena, SIZE_MAX, huge, 2), PK_ERR_INVALID_ARG);
    /* Buffers too small. */
    size_t need = pk_classes_buffer_size(small_specs, COUNT_OF(small_specs));
    assert_int_equal(pk_classes_init(&c, arena, need - 1, small_specs, COUNT_OF(small_specs)),
                     PK_ERR_INVALID_ARG);
    assert_int_equal(pk_classes_init(&c, arena, 0, small_specs, COUNT_OF(small_specs)), PK_ERR_INVALID_ARG);
    assert_memory_equal(&c, &untouched, sizeof c);
    assert_int_equal(faults.calls, 0); /* init failures do not call the handler */

    /* PK_CLASSES_MAX classes are fine. */
    assert_int_equal(pk_classes_init(&c, arena, big, specs, PK_CLASSES_MAX), PK_OK);
    assert_check_ok(&c);
}

/* pk_classes_buffer_size bytes give each class exactly its count, whatever
 * the buffer's address; one byte less is refused; more is left unused. */
static void test_buffer_size_is_exact(void **state)
{
    (void)state;
    static const pk_class_spec layouts[][4] = {
        {{1, 3, 1}, {7, 2, 2}, {9, 5, 16}, {100, 1, 256}},
        {{8, 7, 0}, {24, 3, 8}, {40, 2, 32}, {1000, 2, 4}},
        {{16, 1, 4096}, {17, 2, 1}, {33, 3, 0}, {64, 4, 64}},
    };
    for (size_t l = 0; l < COUNT_OF(layouts); l++) {
        size_t need = pk_classes_buffer_size(layouts[l], 4);
        assert_int_equal(need, sum_buffer_sizes(layouts[l], 4));
        for (size_t offset = 0; offset < 40; offset += 3) {
            pk_classes c;
            assert_int_equal(pk_classes_init(&c, arena + offset, need, layouts[l], 4), PK_OK);
            assert_int_equal(pk_classes_init(&c, arena + offset, need + 100, layouts[l], 4), PK_OK);
            pk_classes_set_fallthrough(&c, false);
            for (size_t i = 0; i < 4; i++) {
                size_t bs = layouts[l][i].block_size;
                size_t align = layouts[l][i].align != 0 ? layouts[l][i].align : _Alignof(max_align_t);
                for (size_t k = 0; k < layouts[l][i].count; k++) {
                    unsigned char *p = pk_classes_alloc(&c, bs);
                    assert_non_null(p);
                    assert_int_equal(class_of(&c, p), i);
                    assert_int_equal((uintptr_t)p % align, 0);
                    assert_true(p >= arena + offset && p + bs <= arena + offset + need);
                    memset(p, 0xEE, bs);
                }
                assert_null(pk_classes_alloc(&c, bs));
            }
            assert_check_ok(&c);
            assert_int_equal(pk_classes_init(&c, arena + offset, need - 1, layouts[l], 4), PK_ERR_INVALID_ARG);
        }
    }
    assert_int_equal(faults.calls, 0);
}

/* The specs are copied: the caller's array may go away. */
static void test_specs_are_copied(void **state)
{
    (void)state;
    pk_class_spec temp[2] = {{32, 2, 0}, {64, 2, 0}};
    init_set(&set, temp, 2, 0);
    memset(temp, 0xFF, sizeof temp);
    void *a = pk_classes_alloc(&set, 32);
    void *b = pk_classes_alloc(&set, 33);
    assert_int_equal(class_of(&set, a), 0);
    assert_int_equal(class_of(&set, b), 1);
    assert_check_ok(&set);
}

/* n classes from 16 bytes up in steps of about 1.25x, multiples of `round`,
 * strictly ascending. */
static void steps_of_125(pk_class_spec *specs, size_t n, size_t round, size_t count, size_t align)
{
    double s = 16;
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        size_t bs = ((size_t)s + round - 1) / round * round;
        bs = bs > last ? bs : last + round;
        specs[i] = (pk_class_spec){bs, count, align};
        last = bs;
        s *= 1.25;
    }
}

/* The reference: the smallest class whose block holds size, or n. */
static size_t expected_class(const pk_class_spec *specs, size_t n, size_t size)
{
    for (size_t i = 0; i < n; i++) {
        if (specs[i].block_size >= size) {
            return i;
        }
    }
    return n;
}

static void check_selection(const pk_class_spec *specs, size_t n, size_t size)
{
    size_t want = expected_class(specs, n, size);
    pk_stats before, after;
    pk_classes_stats(&set, &before);
    unsigned char *p = pk_classes_alloc(&set, size);
    pk_classes_stats(&set, &after);
    if (want == n) {
        assert_null(p);
        assert_int_equal(after.failures, before.failures + 1);
        return;
    }
    assert_non_null(p);
    assert_int_equal(class_of(&set, p), want);
    assert_int_equal(pk_free(pk_classes_allocator(&set), p), PK_OK);
}

/* Class selection at every boundary: block_size, block_size + 1, and
 * around every power of two, against a linear reference. */
static void test_selection_at_every_boundary(void **state)
{
    (void)state;
    static pk_class_spec pow2[9], steps[25], odd[] = {
        {1, 2, 1}, {2, 2, 1}, {3, 2, 1}, {5, 2, 1}, {8, 2, 0}, {9, 2, 0}, {31, 2, 0}, {33, 2, 0},
        {63, 2, 0}, {64, 2, 0}, {65, 2, 0}, {1000, 2, 0}, {1024, 2, 0}, {1025, 2, 0}, {65536, 1, 0},
        {65537, 1, 0}, {300000, 1, 8},
    };
    for (size_t i = 0; i < 9; i++) {
        pow2[i] = (pk_class_spec){(size_t)16 << i, 2, 0};
    }
    steps_of_125(steps, 25, 16, 2, 0);
    struct {
        const pk_class_spec *specs;
        size_t n;
    } layouts[] = {{pow2, 9}, {steps, 25}, {odd, COUNT_OF(odd)}, {odd + 16, 1}, {odd + 3, 5}};
    for (size_t l = 0; l < COUNT_OF(layouts); l++) {
        const pk_class_spec *specs = layouts[l].specs;
        size_t n = layouts[l].n;
        for (size_t i = 1; i < n; i++) {
            assert_true(specs[i].block_size > specs[i - 1].block_size);
        }
        init_set(&set, specs, n, 1);
        pk_classes_set_fallthrough(&set, false);
        check_selection(specs, n, 0);
        check_selection(specs, n, SIZE_MAX);
        check_selection(specs, n, SIZE_MAX / 2 + 1);
        for (size_t i = 0; i < n; i++) {
            size_t bs = specs[i].block_size;
            check_selection(specs, n, bs);
            check_selection(specs, n, bs + 1);
            check_selection(specs, n, bs - 1);
        }
        for (unsigned b = 0; b < 20; b++) {
            size_t p2 = (size_t)1 << b;
            check_selection(specs, n, p2 - 1);
            check_selection(specs, n, p2);
            check_selection(specs, n, p2 + 1);
        }
        uint64_t rng = l + 1;
        for (unsigned k = 0; k < 2000; k++) {
            check_selection(specs, n, (size_t)(pk_driver_next_random(&rng) % (specs[n - 1].block_size + 2)));
        }
        assert_check_ok(&set);
    }
    assert_int_equal(faults.calls, 0);
}

/* Fall-through: an empty class passes the request up to the next class with
 * a free block (on), or fails it (off). */
static void test_fallthrough_on_and_off(void **state)
{
    (void)state;
    init_set(&set, small_specs, COUNT_OF(small_specs), 0);
    pk_stats s;
    void *a[4];
    for (size_t i = 0; i < 4; i++) {
        a[i] = pk_classes_alloc(&set, 10);
        assert_int_equal(class_of(&set, a[i]), 0);
    }
    /* Class 0 empty: on, the next classes serve (class 1 then 2 then 3). */
    void *spill[7];
    size_t want[] = {1, 1, 1, 2, 2, 3, 3};
    for (size_t k = 0; k < 7; k++) {
        spill[k] = pk_classes_alloc(&set, 1);
        assert_non_null(spill[k]);
        assert_int_equal(class_of(&set, spill[k]), want[k]);
    }
    assert_null(pk_classes_alloc(&set, 0)); /* every class empty */
    pk_classes_stats(&set, &s);
    assert_int_equal(s.failures, 1);
    assert_int_equal(s.largest_free, 0);
    /* A free block in class 2 only: sizes up to 64 reach it, 65 does not. */
    assert_int_equal(pk_classes_free(&set, spill[4]), PK_OK);
    pk_classes_stats(&set, &s);
    assert_int_equal(s.largest_free, 64);
    assert_null(pk_classes_alloc(&set, 65));
    void *again = pk_classes_alloc(&set, 3);
    assert_ptr_equal(again, spill[4]);
    assert_int_equal(pk_classes_free(&set, again), PK_OK);

    /* Off: class 0 is empty, so a small request fails although class 2 has a
     * block, and a request for class 2 itself succeeds. */
    pk_classes_set_fallthrough(&set, false);
    assert_null(pk_classes_alloc(&set, 16));
    assert_null(pk_classes_alloc(&set, 17)); /* class 1 empty too */
    pk_classes_stats(&set, &s);
    assert_int_equal(s.failures, 4);
    assert_int_equal(s.largest_free, 64); /* the largest request that succeeds */
    again = pk_classes_alloc(&set, 64);
    assert_int_equal(class_of(&set, again), 2);
    assert_int_equal(pk_classes_free(&set, again), PK_OK);
    pk_classes_set_fallthrough(&set, true);
    assert_int_equal(class_of(&set, pk_classes_alloc(&set, 16)), 2);
    assert_check_ok(&set);
    assert_int_equal(faults.calls, 0);
}

/* The non-empty bitmap stays exact through fills and drains in random order,
 * with fall-through on and off. */
static void assert_bitmap_exact(const pk_classes *c)
{
    uint32_t want = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (pk_pool_available(&c->pools[i]) != 0) {
            want |= (uint32_t)1 << i;
        }
    }
    assert_int_equal(c->nonempty, want);
}

static void test_bitmap_exact_through_fill_and_drain(void **state)
{
    (void)state;
    static const pk_class_spec specs[] = {{8, 3, 0}, {16, 1, 0}, {48, 5, 16}, {50, 2, 2}, {256, 4, 0}, {4096, 2, 0}};
    init_set(&set, specs, COUNT_OF(specs), 7);
    void *live[32];
    size_t n = 0;
    uint64_t rng = 99;
    for (unsigned op = 0; op < 20000; op++) {
        uint64_t r = pk_driver_next_random(&rng);
        if (r % 500 == 0) {
            pk_classes_set_fallthrough(&set, (r >> 20) % 2 == 0);
        }
        /* Phases: fill until full, drain until empty. */
        bool filling = (op / 997) % 2 == 0;
        if ((filling && n < 32) || n == 0) {
            size_t size = (size_t)(pk_driver_next_random(&rng) % 4100);
            void *p = pk_classes_alloc(&set, size);
            if (p != NULL) {
                assert_true(class_of(&set, p) >= expected_class(specs, COUNT_OF(specs), size));
                live[n++] = p;
            }
        } else {
            size_t i = (size_t)(pk_driver_next_random(&rng) % n);
            assert_int_equal(pk_classes_free(&set, live[i]), PK_OK);
            live[i] = live[--n];
        }
        assert_bitmap_exact(&set);
        if (op % 101 == 0) {
            assert_check_ok(&set);
        }
    }
    while (n > 0) {
        assert_int_equal(pk_classes_free(&set, live[--n]), PK_OK);
        assert_bitmap_exact(&set);
    }
    assert_int_equal(set.nonempty, (1u << COUNT_OF(specs)) - 1);
    assert_check_ok(&set);
    assert_int_equal(faults.calls, 0);
}

/* Per-class statistics and the totals. */
static void test_class_stats_and_totals(void **state)
{
    (void)state;
    init_set(&set, small_specs, COUNT_OF(small_specs), 0);
    pk_stats s;
    pk_classes_stats(&set, &s);
    size_t capacity = 16 * 4 + 32 * 3 + 64 * 2 + 200 * 2;
    assert_int_equal(s.capacity, capacity);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.free_bytes, capacity);
    assert_int_equal(s.largest_free, 200);
    assert_int_equal(s.block_size, 0);
    assert_int_equal(s.live, 0);

    void *a = pk_classes_alloc(&set, 1);   /* class 0 */
    void *b = pk_classes_alloc(&set, 20);  /* class 1 */
    void *c = pk_classes_alloc(&set, 30);  /* class 1 */
    void *d = pk_classes_alloc(&set, 150); /* class 3 */
    void *e = pk_classes_alloc(&set, 200); /* class 3: now empty */
    assert_null(pk_classes_alloc(&set, 201));
    assert_int_equal(pk_classes_free(&set, c), PK_OK);
    pk_classes_stats(&set, &s);
    assert_int_equal(s.live, 4);
    assert_int_equal(s.peak_live, 5);
    assert_int_equal(s.in_use, 16 + 32 + 200 + 200);
#if PK_DEBUG
    assert_int_equal(s.requested, 1 + 20 + 150 + 200); /* debug builds know each request */
#else
    assert_int_equal(s.requested, s.in_use);
#endif
    assert_int_equal(s.peak_in_use, 16 + 32 + 32 + 200 + 200);
    assert_int_equal(s.free_bytes, capacity - s.in_use);
    assert_int_equal(s.largest_free, 64); /* class 3 is empty */
    assert_int_equal(s.allocs, 5);
    assert_int_equal(s.frees, 1);
    assert_int_equal(s.failures, 1);
    assert_int_equal(s.rejected, 0);
    assert_true(pk_frag_external(&s) > 0.0); /* free memory in classes below 64 bytes */

    pk_stats k;
    pk_classes_class_stats(&set, 1, &k);
    assert_int_equal(k.capacity, 96);
    assert_int_equal(k.block_size, 32);
    assert_int_equal(k.live, 1);
    assert_int_equal(k.peak_live, 2);
    assert_int_equal(k.in_use, 32);
    assert_int_equal(k.allocs, 2);
    assert_int_equal(k.frees, 1);
    assert_int_equal(k.largest_free, 32);
    pk_classes_class_stats(&set, 3, &k);
    assert_int_equal(k.live, 2);
    assert_int_equal(k.largest_free, 0);
    assert_int_equal(k.free_bytes, 0);
    pk_classes_class_stats(&set, 2, &k);
    assert_int_equal(k.live, 0);
    assert_int_equal(k.capacity, 128);
    memset(&k, 0x5A, sizeof k);
    pk_classes_class_stats(&set, 4, &k); /* no such class */
    pk_stats zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&k, &zero, sizeof k);

    /* Peaks: reset to the current values, for the set and each class. */
    pk_classes_reset_peaks(&set);
    pk_classes_stats(&set, &s);
    assert_int_equal(s.peak_live, 4);
    assert_int_equal(s.peak_in_use, s.in_use);
    pk_classes_class_stats(&set, 1, &k);
    assert_int_equal(k.peak_live, 1);
    /* The set's peak is its own, not the sum of the classes' peaks. */
    assert_int_equal(pk_classes_free(&set, d), PK_OK);
    void *f = pk_classes_alloc(&set, 1);
    pk_classes_stats(&set, &s);
    assert_int_equal(s.peak_live, 4);
    assert_int_equal(s.peak_in_use, 16 + 32 + 200 + 200);
    pk_classes_class_stats(&set, 0, &k);
    assert_int_equal(k.peak_live, 2);

    pk_allocator *v = pk_classes_allocator(&set);
#if PK_DEBUG
    assert_int_equal(v->ops->usable_size(v->self, b), 20); /* debug builds: the size requested */
#else
    assert_int_equal(v->ops->usable_size(v->self, b), 32);
#endif
    assert_int_equal(v->ops->usable_size(v->self, e), 200);
    assert_int_equal(v->ops->usable_size(v->self, c), 0);              /* freed */
    assert_int_equal(v->ops->usable_size(v->self, (char *)a + 1), 0);  /* interior */
    assert_int_equal(v->ops->usable_size(v->self, &zero), 0);          /* foreign */
    assert_int_equal(pk_classes_free(&set, a), PK_OK);
    assert_int_equal(pk_classes_free(&set, b), PK_OK);
    assert_int_equal(pk_classes_free(&set, e), PK_OK);
    assert_int_equal(pk_classes_free(&set, f), PK_OK);
    pk_classes_stats(&set, &s);
    assert_int_equal(s.live, 0);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.largest_free, 200);
    assert_check_ok(&set);
    assert_int_equal(faults.calls, 0);
}

/* The generic view: aligned allocs, realloc through pk_realloc's fallback,
 * calloc, names. */
static void test_generic_view(void **state)
{
    (void)state;
    init_set(&set, small_specs, COUNT_OF(small_specs), 0);
    pk_allocator *v = pk_classes_allocator(&set);
    assert_string_equal(pk_name(v), "classes");
    assert_null(v->ops->realloc);
    pk_stats before, after;
    pk_stats_get(v, &before);

    /* Class 1 is aligned to 8, class 2 to 64, class 3 to 16. */
    unsigned char *p = pk_alloc_aligned(v, 20, 8);
    assert_int_equal(class_of(&set, p), 1);
    assert_null(pk_alloc_aligned(v, 20, 16)); /* above class 1's alignment: a failure */
    unsigned char *q = pk_alloc_aligned(v, 40, 64);
    assert_int_equal(class_of(&set, q), 2);
    assert_int_equal((uintptr_t)q % 64, 0);
    assert_null(pk_alloc_aligned(v, 100, 32));
    assert_null(pk_alloc_aligned(v, 300, 1)); /* too large */
    pk_stats_get(v, &after);
    assert_int_equal(after.failures, before.failures + 3);
    assert_int_equal(faults.calls, 0);
    assert_null(pk_alloc_aligned(v, 20, 12));
    expect_fault(PK_ERR_INVALID_ARG, NULL, "classes");
    pk_stats_get(v, &after);
    assert_int_equal(after.rejected, before.rejected + 1);
    assert_int_equal(after.failures, before.failures + 3);

    /* realloc: kept while the size fits the block, moved (and copied) when not. */
    memset(p, 0x42, 20);
#if PK_DEBUG
    /* Debug builds: the generic realloc moves a block whose size changes, so
     * that its rear guard follows the new size. */
    p = pk_realloc(v, p, 32);
    assert_int_equal(class_of(&set, p), 1);
#else
    assert_ptr_equal(pk_realloc(v, p, 32), p);
#endif
    unsigned char *r = pk_realloc(v, p, 33);
    assert_int_equal(class_of(&set, r), 2);
    for (size_t i = 0; i < 20; i++) {
        assert_int_equal(r[i], 0x42);
    }
    assert_int_equal(pk_realloc(v, r, 1000), NULL); /* too large: r untouched */
#if PK_DEBUG
    assert_int_equal(v->ops->usable_size(v->self, r), 33); /* debug builds: the size requested */
#else
    assert_int_equal(v->ops->usable_size(v->self, r), 64);
#endif
    assert_null(pk_realloc(v, r, 0)); /* frees */
    assert_int_equal(v->ops->usable_size(v->self, r), 0);
    unsigned char *z = pk_calloc(v, 5, 10);
    assert_non_null(z);
    for (size_t i = 0; i < 50; i++) {
        assert_int_equal(z[i], 0);
    }
    assert_null(pk_calloc(v, SIZE_MAX / 2, 3));
    assert_int_equal(pk_free(v, z), PK_OK);
    assert_int_equal(pk_free(v, q), PK_OK);
    assert_int_equal(faults.calls, 0);
    assert_int_equal(pk_check(v), PK_OK);
}

/* Misuse through the set: each bad free is reported once with the set's name,
 * returned, counted as rejected and changes nothing. */
static void misuse_cases(pk_classes *c, const char *name)
{
    pk_classes_set_fallthrough(c, false);
    unsigned char *a = pk_classes_alloc(c, 10);  /* class 0: 16-byte stride */
    unsigned char *b = pk_classes_alloc(c, 200); /* class 3 */
    unsigned char *d = pk_classes_alloc(c, 33);  /* class 2: 64 bytes, aligned to 64 */
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(d);
    pk_stats before, after;
    pk_classes_stats(c, &before);
    static unsigned char outside[64];
    /* Strides of classes 0 and 2 (debug builds: tag and guards included, the
     * pointers handed out lying after them). */
    size_t step0 = 16, step2 = 64;
#if PK_DEBUG
    step0 = c->pools[0].stride;
    step2 = c->pools[2].stride;
#endif
    unsigned char *first = (unsigned char *)c->starts[0];
    unsigned char *end = first + c->span;
    struct {
        void *ptr;
        pk_status kind;
    } cases[] = {
        {outside + 8, PK_ERR_FOREIGN_PTR},
        {first - 1, PK_ERR_FOREIGN_PTR},
        {end, PK_ERR_FOREIGN_PTR},
        {end + 4096, PK_ERR_FOREIGN_PTR},
        {(void *)(uintptr_t)1, PK_ERR_FOREIGN_PTR},
        {(void *)UINTPTR_MAX, PK_ERR_FOREIGN_PTR},
        {c->pools[0].usage, PK_ERR_FOREIGN_PTR},       /* class 0's usage map */
        {end - 1, PK_ERR_FOREIGN_PTR},                 /* the last pool's usage map */
        {a + 1, PK_ERR_MISALIGNED_PTR},
        {a + 15, PK_ERR_MISALIGNED_PTR},
        {d + 63, PK_ERR_MISALIGNED_PTR},
        {b + 100, PK_ERR_MISALIGNED_PTR},
        {b + 200, PK_ERR_MISALIGNED_PTR},              /* class 3's padding */
        {a + step0, PK_ERR_DOUBLE_FREE},               /* a block never handed out */
        {d + step2, PK_ERR_DOUBLE_FREE},
    };
    for (size_t k = 0; k < COUNT_OF(cases); k++) {
        assert_int_equal(pk_classes_free(c, cases[k].ptr), cases[k].kind);
        expect_fault(cases[k].kind, cases[k].ptr, name);
    }
    assert_int_equal(pk_classes_free(c, NULL), PK_OK);
    assert_int_equal(faults.calls, 0);
    pk_classes_stats(c, &after);
    assert_int_equal(after.rejected, before.rejected + COUNT_OF(cases));
    after.rejected = before.rejected;
    assert_memory_equal(&before, &after, sizeof before);
    assert_check_ok(c);

    assert_int_equal(pk_classes_free(c, b), PK_OK);
    assert_int_equal(pk_classes_free(c, b), PK_ERR_DOUBLE_FREE);
    expect_fault(PK_ERR_DOUBLE_FREE, b, name);
    assert_int_equal(pk_classes_free(c, a), PK_OK);
    assert_int_equal(pk_classes_free(c, d), PK_OK);
    assert_int_equal(pk_classes_free(c, a), PK_ERR_DOUBLE_FREE); /* after the set emptied */
    expect_fault(PK_ERR_DOUBLE_FREE, a, name);
    /* Nothing lost: every block of every class can still be had. */
    size_t got = 0;
    while (pk_classes_alloc(c, 1) != NULL || pk_classes_alloc(c, 17) != NULL ||
           pk_classes_alloc(c, 33) != NULL || pk_classes_alloc(c, 65) != NULL) {
        got++;
    }
    assert_int_equal(got, 4 + 3 + 2 + 2);
    pk_classes_stats(c, &after);
    assert_int_equal(after.live, 11);
    assert_check_ok(c);
    pk_classes_set_fallthrough(c, true);
}

static void test_misuse_cases(void **state)
{
    (void)state;
    init_set(&set, small_specs, COUNT_OF(small_specs), 5);
    misuse_cases(&set, "classes");
    init_set(&set, small_specs, COUNT_OF(small_specs), 5);
    pk_classes_set_name(&set, "io buffers");
    misuse_cases(&set, "io buffers");
    pk_classes_set_name(&set, NULL);
    assert_string_equal(pk_name(pk_classes_allocator(&set)), "classes");
}

static pk_class_spec driver_layouts[][6] = {
    {{8, 40, 0}, {24, 30, 8}, {64, 20, 0}, {100, 10, 4}, {512, 5, 64}, {0, 0, 0}},
    {{16, 20, 0}, {0, 0, 0}},
    {{1, 10, 1}, {2, 10, 1}, {3, 10, 1}, {4, 10, 2}, {0, 0, 0}},
};

static size_t layout_classes(const pk_class_spec *l)
{
    size_t n = 0;
    while (n < 6 && l[n].block_size != 0) {
        n++;
    }
    return n;
}

/* Blocks of `size` the set can hand out when empty. */
static size_t blocks_for(const pk_class_spec *l, size_t n, size_t size, bool fallthrough)
{
    size_t total = 0;
    size_t first = expected_class(l, n, size);
    for (size_t i = first; i < n && (fallthrough || i == first); i++) {
        total += l[i].count;
    }
    return total;
}

static void test_misuse_through_the_driver(void **state)
{
    (void)state;
    for (size_t l = 0; l < COUNT_OF(driver_layouts); l++) {
        size_t n = layout_classes(driver_layouts[l]);
        for (int ft = 0; ft < 2; ft++) {
            for (size_t offset = 0; offset < 3; offset++) {
                init_set(&set, driver_layouts[l], n, offset);
                pk_classes_set_fallthrough(&set, ft != 0);
                size_t size = driver_layouts[l][0].block_size > 2 ? driver_layouts[l][0].block_size : 2;
                if (size > driver_layouts[l][n - 1].block_size) {
                    size = driver_layouts[l][n - 1].block_size;
                }
                pk_misuse_config cfg = {
                    arena + offset, pk_classes_buffer_size(driver_layouts[l], n), size, true,
                    blocks_for(driver_layouts[l], n, size, ft != 0), NULL, NULL, false,
                };
#if PK_DEBUG
                /* The capacity count chains blocks through a pointer in each:
                 * past a smaller request, debug builds see a guard overflow. */
                if (size < sizeof(void *)) {
                    cfg.capacity_blocks = 0;
                }
#endif
                assert_int_equal(pk_driver_misuse(pk_classes_allocator(&set), &cfg), 0);
                pk_set_fault_handler(count_fault, NULL);
                assert_check_ok(&set);
            }
        }
    }
}

/* Corruption: check finds damage to the set's own state and to a pool, reports
 * it once with the set's name, and repairs nothing. */
static void make_busy_set(void)
{
    init_set(&set, small_specs, COUNT_OF(small_specs), 0);
    pk_classes_set_name(&set, "damaged");
    for (size_t k = 0; k < 4; k++) {
        assert_non_null(pk_classes_alloc(&set, 1)); /* class 0 empty */
    }
    void *x = pk_classes_alloc(&set, 20);
#if PK_DEBUG
    /* Debug builds: x would wait in class 1's quarantine. Freeing both
     * empties the class and so the quarantine (FIFO: 0 then 1 onto the free
     * list); the next alloc takes block 1 back: block 0 free, on the list. */
    void *y = pk_classes_alloc(&set, 20);
    assert_int_equal(pk_classes_free(&set, x), PK_OK);
    assert_int_equal(pk_classes_free(&set, y), PK_OK);
    assert_ptr_equal(pk_classes_alloc(&set, 20), y);
#else
    assert_non_null(pk_classes_alloc(&set, 20));
    assert_int_equal(pk_classes_free(&set, x), PK_OK);
#endif
    assert_non_null(pk_classes_alloc(&set, 100));
    assert_check_ok(&set);
}

/* A lock that must never be taken. */
static void stray_lock(void *ctx)
{
    (void)ctx;
    fail_msg("a lock set on an inner pool was taken");
}

static void test_check_finds_set_damage(void **state)
{
    (void)state;
    make_busy_set();
    /* The non-empty bitmap: a bit set for an empty class, cleared for a
     * non-empty one, set above the classes. */
    uint32_t saved = set.nonempty;
    set.nonempty |= 1u;
    assert_check_corrupt(&set, "damaged");
    set.nonempty = saved & ~2u;
    assert_check_corrupt(&set, "damaged");
    set.nonempty = saved | 1u << 4;
    assert_check_corrupt(&set, "damaged");
    set.nonempty = saved;
    assert_check_ok(&set);
    /* Free counts, counters, peaks. */
    set.avail[2]++;
    assert_check_corrupt(&set, "damaged");
    set.avail[2]--;
    set.live++;
    assert_check_corrupt(&set, "damaged");
    set.live--;
    set.in_use -= 8;
    assert_check_corrupt(&set, "damaged");
    set.in_use += 8;
    set.peak_live = set.live - 1;
    assert_check_corrupt(&set, "damaged");
    set.peak_live = 1000;
    assert_check_corrupt(&set, "damaged");
    set.peak_live = set.live + 1;
    assert_check_ok(&set);
    size_t peak = set.peak_in_use;
    set.peak_in_use = set.in_use - 1;
    assert_check_corrupt(&set, "damaged");
    set.peak_in_use = peak;
    /* The class and octave tables, the pool starts, the flags. */
    set.sizes[1] = 31;
    assert_check_corrupt(&set, "damaged");
    set.sizes[1] = 32;
    set.sizes[4] = 300;
    assert_check_corrupt(&set, "damaged");
    set.sizes[4] = SIZE_MAX;
    unsigned char first7 = set.first[7]; /* sizes 65..128: class 3 */
    assert_int_equal(first7, 3);
    set.first[7] = 2;
    assert_check_corrupt(&set, "damaged");
    set.first[7] = first7;
    set.starts[2] += 16;
    assert_check_corrupt(&set, "damaged");
    set.starts[2] -= 16;
    set.starts[5] = 0;
    assert_check_corrupt(&set, "damaged");
    set.starts[5] = UINTPTR_MAX;
    set.specs[3].block_size = 20;
    assert_check_corrupt(&set, "damaged");
    set.specs[3].block_size = 200;
    set.reach = 3;
    assert_check_corrupt(&set, "damaged");
    set.reach = ~0u;
    set.fast_reach = 1;
    assert_check_corrupt(&set, "damaged");
    set.fast_reach = ~0u;
    set.fast_span--;
    assert_check_corrupt(&set, "damaged");
    set.fast_span++;
    set.slice_shift++;
    assert_check_corrupt(&set, "damaged");
    set.slice_shift--;
    unsigned char slice = set.slice[63];
    set.slice[63] = (unsigned char)(slice - 1);
    assert_check_corrupt(&set, "damaged");
    set.slice[63] = slice;
    set.n = 3;
    assert_check_corrupt(&set, "damaged");
    set.n = 4;
    /* A pool with a lock of its own (the set's lock guards them all): found
     * before the pool is asked anything, so its lock is never taken. */
    pk_lock stray = {stray_lock, stray_lock, NULL};
    assert_int_equal(pk_pool_set_lock(&set.pools[1], &stray), PK_OK);
    assert_check_corrupt(&set, "damaged");
    assert_int_equal(pk_pool_set_lock(&set.pools[1], NULL), PK_OK);
    assert_check_ok(&set);
}

static void test_check_finds_pool_damage(void **state)
{
    (void)state;
    make_busy_set();
    /* An inner pool's usage map: found by the pool's invariants, reported once
     * with the set's name. */
    pk_pool *p = &set.pools[1];
    assert_int_equal(p->usage[0], PK_POOL_FREE);
    p->usage[0] = PK_POOL_LIVE;
    assert_check_corrupt(&set, "damaged");
    p->usage[0] = 0x5A;
    assert_check_corrupt(&set, "damaged");
    p->usage[0] = PK_POOL_FREE;
    assert_check_ok(&set);
    /* The last pool: a live block marked free. */
    pk_pool *last = &set.pools[3];
    assert_int_equal(last->usage[0], PK_POOL_LIVE);
    last->usage[0] = PK_POOL_FREE;
    assert_check_corrupt(&set, "damaged");
    last->usage[0] = PK_POOL_LIVE;
    assert_check_ok(&set);
    /* A free-list link in class 1 pointing at a live block. */
    size_t link, wild = 1;
    memcpy(&link, p->base, sizeof link);
    memcpy(p->base, &wild, sizeof wild);
    assert_check_corrupt(&set, "damaged");
    memcpy(p->base, &link, sizeof link);
    assert_check_ok(&set);
    /* A pool's counter moved behind the set's back. */
    set.pools[2].allocs++;
    assert_check_corrupt(&set, "damaged");
    set.pools[2].allocs--;
    assert_check_ok(&set);
}

/* A client writes into a freed block: the pool finds the damaged link at
 * alloc (or, with by_reset_peaks, when pk_classes_reset_peaks walks the
 * list), reports it once with the set's name after unlocking, and nothing is
 * lost. */
static void overwritten_link(const pk_lock *lock, bool by_reset_peaks)
{
    static const pk_class_spec specs[] = {{32, 4, 0}, {64, 4, 0}};
    init_set(&set, specs, 2, 0);
    assert_int_equal(pk_classes_set_lock(&set, lock), PK_OK);
    void *b[4];
    for (size_t i = 0; i < 4; i++) {
        b[i] = pk_classes_alloc(&set, 32);
    }
    assert_int_equal(pk_classes_free(&set, b[1]), PK_OK);
    assert_int_equal(pk_classes_free(&set, b[2]), PK_OK); /* list: 2 -> 1 */
    size_t wild = 3;                                       /* a live block */
#if PK_DEBUG
    /* Debug builds: freed blocks wait in the quarantine, and a write into
     * one is a use after free (tests below). To damage a free-list link,
     * empty the class (the quarantine drains, FIFO: 1, 2, 0, 3 onto the
     * list), take 3 and 0 back (list: 2 -> 1 as above) and write the link
     * where the pool keeps it: at the block's start, before the tag. */
    assert_int_equal(pk_classes_free(&set, b[0]), PK_OK);
    assert_int_equal(pk_classes_free(&set, b[3]), PK_OK);
    assert_ptr_equal(pk_classes_alloc(&set, 32), b[3]);
    assert_ptr_equal(pk_classes_alloc(&set, 32), b[0]);
    memcpy((unsigned char *)b[2] - debug_prefix_of(&set.pools[0]), &wild, sizeof wild);
#else
    memcpy(b[2], &wild, sizeof wild);
#endif
    if (by_reset_peaks) {
        pk_classes_reset_peaks(&set);
        expect_fault(PK_ERR_CORRUPT, NULL, "classes");
        assert_check_ok(&set);
        void *got[2] = {pk_classes_alloc(&set, 32), pk_classes_alloc(&set, 32)};
        /* rebuilt: both free blocks, in either order */
        assert_true((got[0] == b[1] && got[1] == b[2]) || (got[0] == b[2] && got[1] == b[1]));
        assert_int_equal(class_of(&set, pk_classes_alloc(&set, 32)), 1);
        assert_check_ok(&set);
        assert_int_equal(faults.calls, 0);
        return;
    }
    assert_ptr_equal(pk_classes_alloc(&set, 32), b[2]);
    assert_null(pk_classes_alloc(&set, 32)); /* the damaged link */
    expect_fault(PK_ERR_CORRUPT, NULL, "classes");
    assert_check_ok(&set);
    assert_ptr_equal(pk_classes_alloc(&set, 32), b[1]); /* rebuilt: nothing lost */
    assert_int_equal(class_of(&set, pk_classes_alloc(&set, 32)), 1);
    assert_check_ok(&set);
    assert_int_equal(faults.calls, 0);
}

static void test_alloc_survives_overwritten_link(void **state)
{
    (void)state;
    overwritten_link(NULL, false);
    pk_lock l = {counting_lock, counting_unlock, &lock_calls};
    overwritten_link(&l, false);
    assert_int_equal(lock_depth, 0);
}

static void test_reset_peaks_survives_overwritten_link(void **state)
{
    (void)state;
    overwritten_link(NULL, true);
    pk_lock l = {counting_lock, counting_unlock, &lock_calls};
    overwritten_link(&l, true);
    assert_int_equal(lock_depth, 0);
}

/* The lock: taken once per call (check included), never nested (the inner
 * pools have none), released before the handler runs. */
static void test_lock_taken_once_per_call(void **state)
{
    (void)state;
    init_set(&set, small_specs, COUNT_OF(small_specs), 0);
    void *before = pk_classes_alloc(&set, 16); /* from the unlocked set */
    pk_lock bad = {counting_lock, NULL, &lock_calls};
    assert_int_equal(pk_classes_set_lock(&set, &bad), PK_ERR_INVALID_ARG);
    pk_lock l = {counting_lock, counting_unlock, &lock_calls};
    assert_int_equal(pk_classes_set_lock(&set, &l), PK_OK);
    pk_allocator *v = pk_classes_allocator(&set);
    pk_stats s;
#define ONCE(expr)                                                                                 \
    do {                                                                                           \
        lock_calls = 0;                                                                            \
        expr;                                                                                      \
        assert_int_equal(lock_calls, 1);                                                           \
        assert_int_equal(lock_depth, 0);                                                           \
    } while (0)
    void *a, *b, *c2;
    ONCE(a = pk_classes_alloc(&set, 20));
    assert_int_equal(class_of(&set, a), 1);
    ONCE(assert_int_equal(pk_classes_free(&set, a), PK_OK));
    ONCE(assert_int_equal(pk_classes_free(&set, a), PK_ERR_DOUBLE_FREE));
    expect_fault(PK_ERR_DOUBLE_FREE, a, "classes");
    ONCE(assert_int_equal(pk_classes_free(&set, (char *)before + 1), PK_ERR_MISALIGNED_PTR));
    expect_fault(PK_ERR_MISALIGNED_PTR, (char *)before + 1, "classes");
    ONCE(assert_int_equal(pk_classes_free(&set, &s), PK_ERR_FOREIGN_PTR));
    expect_fault(PK_ERR_FOREIGN_PTR, &s, "classes");
    ONCE(assert_int_equal(pk_classes_free(&set, set.pools[3].usage), PK_ERR_FOREIGN_PTR));
    expect_fault(PK_ERR_FOREIGN_PTR, set.pools[3].usage, "classes");
    ONCE(assert_int_equal(pk_classes_free(&set, before), PK_OK)); /* freed across set_lock */
    ONCE(assert_null(pk_classes_alloc(&set, 201)));
    ONCE(b = pk_alloc_aligned(v, 40, 64));
    assert_int_equal(class_of(&set, b), 2);
    ONCE(assert_null(pk_alloc_aligned(v, 40, 128)));
    ONCE(assert_null(pk_alloc_aligned(v, 40, 3)));
    expect_fault(PK_ERR_INVALID_ARG, NULL, "classes");
#if PK_DEBUG
    ONCE(assert_int_equal(v->ops->usable_size(v->self, b), 40)); /* debug builds: the size requested */
#else
    ONCE(assert_int_equal(v->ops->usable_size(v->self, b), 64));
#endif
    lock_calls = 0;
    c2 = pk_realloc(v, b, 100);
    assert_int_equal(lock_calls, 3); /* usable_size, alloc, free: three calls */
    assert_int_equal(class_of(&set, c2), 3);
    lock_calls = 0;
#if PK_DEBUG
    /* Debug builds: the generic realloc moves a block whose size changes
     * (its rear guard follows the new size): usable_size, alloc, free. */
    c2 = pk_realloc(v, c2, 150);
    assert_int_equal(class_of(&set, c2), 3);
    assert_int_equal(lock_calls, 3);
#else
    assert_ptr_equal(pk_realloc(v, c2, 150), c2);
    assert_int_equal(lock_calls, 1); /* fits its 200-byte block: usable_size only */
#endif
    ONCE(pk_classes_stats(&set, &s));
    assert_int_equal(s.live, 1);
    ONCE(pk_classes_class_stats(&set, 3, &s));
    assert_int_equal(s.live, 1);
    ONCE(pk_classes_reset_peaks(&set));
    ONCE(pk_classes_set_fallthrough(&set, false));
    ONCE(a = pk_classes_alloc(&set, 150)); /* class 3's last block */
    assert_int_equal(class_of(&set, a), 3);
    ONCE(assert_null(pk_classes_alloc(&set, 150)));
    ONCE(assert_int_equal(pk_classes_free(&set, a), PK_OK));
    ONCE(pk_classes_set_fallthrough(&set, true));
    /* Fill everything under the lock: the bitmap follows. */
    void *all[16];
    size_t n = 0;
    for (;;) {
        lock_calls = 0;
        void *p = pk_classes_alloc(&set, 1);
        assert_int_equal(lock_calls, 1);
        if (p == NULL) {
            break;
        }
        all[n++] = p;
    }
    assert_int_equal(n, 4 + 3 + 2 + 2 - 1);
    assert_int_equal(set.nonempty, 0);
    lock_calls = 0;
    assert_int_equal(pk_classes_check(&set), PK_OK);
    assert_int_equal(lock_calls, 1); /* once, across every class */
    assert_int_equal(lock_depth, 0);
    /* check reports with the lock released, for the set and for a pool. */
    set.nonempty = 1;
    assert_check_corrupt(&set, "classes");
    set.nonempty = 0;
    set.pools[2].usage[0] = 0x77;
    lock_calls = 0;
    assert_check_corrupt(&set, "classes");
    assert_int_equal(lock_calls, 1); /* once, class 2's pool damaged */
    set.pools[2].usage[0] = PK_POOL_LIVE;
    while (n > 0) {
        ONCE(assert_int_equal(pk_classes_free(&set, all[--n]), PK_OK));
    }
    ONCE(assert_int_equal(pk_classes_free(&set, c2), PK_OK));
    lock_calls = 0;
    assert_int_equal(pk_classes_free(&set, NULL), PK_OK);
    assert_int_equal(lock_calls, 0); /* free(NULL) touches nothing */
    assert_check_ok(&set);
    assert_int_equal(set.nonempty, 0xF);
    /* Back to no lock: the blocks freed under it are found again. */
    assert_int_equal(pk_classes_set_lock(&set, NULL), PK_OK);
    lock_calls = 0;
    a = pk_classes_alloc(&set, 1);
    assert_int_equal(class_of(&set, a), 0);
    assert_int_equal(pk_classes_free(&set, a), PK_OK);
    assert_int_equal(pk_classes_free(&set, a), PK_ERR_DOUBLE_FREE);
    expect_fault(PK_ERR_DOUBLE_FREE, a, "classes");
    assert_check_ok(&set);
    assert_int_equal(lock_calls, 0);
#undef ONCE
}

/* The randomized driver through the generic view. */
static pk_driver_slot slots[4096];

static void run_driver(const pk_class_spec *specs, size_t n, size_t offset, bool fallthrough,
                       const pk_lock *lock, uint64_t seed, size_t ops)
{
    init_set(&set, specs, n, offset);
    pk_classes_set_fallthrough(&set, fallthrough);
    assert_int_equal(pk_classes_set_lock(&set, lock), PK_OK);
    size_t min_align = SIZE_MAX, max_align = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t align = specs[i].align != 0 ? specs[i].align : _Alignof(max_align_t);
        min_align = align < min_align ? align : min_align;
        max_align = align > max_align ? align : max_align;
        total += specs[i].count;
    }
    pk_driver_config cfg = {
        .realloc_percent = 10,
        .seed = seed,
        .ops = ops,
        .min_size = 0,
        .max_size = specs[n - 1].block_size + specs[n - 1].block_size / 8, /* some too large */
        .max_align = max_align * 2,
        .default_align = min_align,
        .region = arena + offset,
        .region_size = pk_classes_buffer_size(specs, n),
        .block_size = 0,
        .requested_exact = false,
        .slots = slots,
        .slot_count = total + 8 < 4096 ? total + 8 : 4096,
        .report = report_line,
    };
    pk_driver_result result;
    assert_int_equal(pk_driver_run(pk_classes_allocator(&set), &cfg, &result), 0);
    assert_int_equal(result.ops, ops);
    if (ops >= 100000) {
        assert_true(result.failures > 0);
    }
    assert_true(result.checks > 0);
    assert_int_equal(faults.calls, 0);
    assert_int_equal(set.nonempty, n == 32 ? ~0u : (1u << n) - 1);
}

static void test_random_powers_of_two(void **state)
{
    (void)state;
    static pk_class_spec specs[9];
    for (size_t i = 0; i < 9; i++) {
        specs[i] = (pk_class_spec){(size_t)16 << i, 64 >> (i / 2), 0};
    }
    run_driver(specs, 9, 3, true, NULL, 1, random_ops());
}

static void test_random_steps_of_125(void **state)
{
    (void)state;
    static pk_class_spec specs[25];
    steps_of_125(specs, 25, 8, 12, 8);
    run_driver(specs, 25, 1, true, NULL, 2, random_ops());
}

static void test_random_mixed_no_fallthrough(void **state)
{
    (void)state;
    run_driver(driver_layouts[0], 5, 0, false, NULL, 3, random_ops());
}

static void test_random_tiny_and_one_class(void **state)
{
    (void)state;
    run_driver(driver_layouts[2], 4, 5, true, NULL, 4, random_ops() / 4);
    run_driver(driver_layouts[1], 1, 2, true, NULL, 5, random_ops() / 4);
}

static void test_random_max_classes(void **state)
{
    (void)state;
    static pk_class_spec specs[PK_CLASSES_MAX];
    for (size_t i = 0; i < PK_CLASSES_MAX; i++) {
        specs[i] = (pk_class_spec){8 + 24 * i, 3, i % 3 == 0 ? 16 : 0};
    }
    run_driver(specs, PK_CLASSES_MAX, 0, true, NULL, 6, random_ops() / 4);
}

static void test_random_locked(void **state)
{
    (void)state;
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pk_lock l = pk_pthread_lock(&m);
    run_driver(driver_layouts[0], 5, 2, true, &l, 7, random_ops() / 4);
    pk_lock counting = {counting_lock, counting_unlock, &lock_calls};
    run_driver(driver_layouts[0], 5, 2, false, &counting, 8, random_ops() / 10);
    assert_int_equal(lock_depth, 0);
}

/* Four threads share a locked set and free each other's blocks. */
#define THREADS 4
static pthread_mutex_t thread_mutex = PTHREAD_MUTEX_INITIALIZER;
static void *exchange[THREADS][64];

static void *thread_body(void *arg)
{
    size_t id = (size_t)(uintptr_t)arg;
    uint64_t rng = id + 1;
    for (unsigned round = 0; round < 2000; round++) {
        size_t slot = (size_t)(pk_driver_next_random(&rng) % 64);
        size_t other = (size_t)(pk_driver_next_random(&rng) % THREADS);
        pthread_mutex_lock(&thread_mutex);
        void *p = exchange[other][slot];
        exchange[other][slot] = NULL;
        pthread_mutex_unlock(&thread_mutex);
        if (p != NULL && pk_classes_free(&set, p) != PK_OK) {
            return (void *)1;
        }
        void *q = pk_classes_alloc(&set, (size_t)(pk_driver_next_random(&rng) % 600));
        pthread_mutex_lock(&thread_mutex);
        void *old = exchange[id][slot];
        exchange[id][slot] = q;
        pthread_mutex_unlock(&thread_mutex);
        if (old != NULL && pk_classes_free(&set, old) != PK_OK) {
            return (void *)1;
        }
    }
    return NULL;
}

static void test_threads_share_a_locked_set(void **state)
{
    (void)state;
    static const pk_class_spec specs[] = {{32, 64, 0}, {128, 64, 0}, {600, 64, 0}};
    init_set(&set, specs, 3, 0);
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pk_lock l = pk_pthread_lock(&m);
    assert_int_equal(pk_classes_set_lock(&set, &l), PK_OK);
    memset(exchange, 0, sizeof exchange);
    pthread_t threads[THREADS];
    for (size_t i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&threads[i], NULL, thread_body, (void *)(uintptr_t)i), 0);
    }
    for (size_t i = 0; i < THREADS; i++) {
        void *result;
        assert_int_equal(pthread_join(threads[i], &result), 0);
        assert_null(result);
    }
    for (size_t i = 0; i < THREADS; i++) {
        for (size_t k = 0; k < 64; k++) {
            if (exchange[i][k] != NULL) {
                assert_int_equal(pk_classes_free(&set, exchange[i][k]), PK_OK);
            }
        }
    }
    pk_stats s;
    pk_classes_stats(&set, &s);
    assert_int_equal(s.live, 0);
    assert_int_equal(s.allocs, s.frees);
    assert_check_ok(&set);
    assert_int_equal(faults.calls, 0);
}

#if PK_DEBUG
/* Debug builds: the faults the debug layer adds, each provoked once through
 * the set, reported with its name. */

/* Exactly one fault since the last check: kind, ptr, name, the block's
 * allocation site in this file and owner (alloc_line 0: no tag), the call's
 * site in this file (call_line 0: none, as for check), lock released. */
static void expect_debug_fault(pk_status kind, const void *ptr, const char *name, int alloc_line, uint32_t owner,
                               int call_line)
{
    expect_fault_sites(kind, ptr, name, __FILE__, alloc_line, owner, call_line);
}

/* The set's totals: live blocks, bytes requested (exact), rejected. */
static void expect_set_stats(size_t live, size_t requested, uint64_t rejected)
{
    pk_stats s;
    pk_classes_stats(&set, &s);
    assert_int_equal(s.live, live);
    assert_int_equal(s.requested, requested);
    assert_int_equal(s.rejected, rejected);
    assert_int_equal(s.allocs - s.frees, live);
}

static void test_debug_faults(void **state)
{
    (void)state;
    enum { FILL = PK_QUARANTINE_SIZE, N = 4 + PK_QUARANTINE_SIZE };
    const pk_class_spec specs[] = {{16, N, 0}, {64, 4, 0}};
    init_set(&set, specs, 2, 0);
    pk_classes_set_name(&set, "io");
    pk_lock l = {counting_lock, counting_unlock, &lock_calls};
    assert_int_equal(pk_classes_set_lock(&set, &l), PK_OK);
    unsigned char *anchor = pk_classes_alloc(&set, 16); /* live throughout: class 0 keeps its quarantine */
    pk_set_owner(7);
    int al = __LINE__; unsigned char *a = pk_classes_alloc(&set, 10);
    pk_set_owner(0);
    int cl;
    assert_int_equal(class_of(&set, a), 0);
    expect_set_stats(2, 26, 0);
    assert_int_equal(pk_classes_allocator(&set)->ops->usable_size(&set, a), 10);

    /* Overflow by one byte: check finds it, then the free (which frees a
     * all the same, the guard restored). */
    a[10] = 0;
    assert_int_equal(pk_classes_check(&set), PK_ERR_GUARD_CORRUPT);
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, a, "io", al, 7, 0);
    lock_calls = 0;
    cl = __LINE__; assert_int_equal(pk_classes_free(&set, a), PK_ERR_GUARD_CORRUPT);
    assert_int_equal(lock_calls, 1);
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, a, "io", al, 7, cl);
    assert_check_ok(&set);
    expect_set_stats(1, 16, 0);
    /* Freed again while quarantined: its tag still tells where it came from. */
    cl = __LINE__; assert_int_equal(pk_classes_free(&set, a), PK_ERR_DOUBLE_FREE);
    expect_debug_fault(PK_ERR_DOUBLE_FREE, a, "io", al, 7, cl);
    expect_set_stats(1, 16, 1);

    /* Underflow by one byte. */
    pk_set_owner(9);
    int bl = __LINE__; unsigned char *b = pk_classes_alloc(&set, 3);
    pk_set_owner(0);
    b[-1] = 0x00;
    cl = __LINE__; assert_int_equal(pk_classes_free(&set, b), PK_ERR_GUARD_CORRUPT);
    expect_debug_fault(PK_ERR_GUARD_CORRUPT, b, "io", bl, 9, cl);
    assert_check_ok(&set);
    expect_set_stats(1, 16, 1);

    /* Foreign pointers (outside every pool, and in a usage map) and
     * interior ones: no tag, the call's site only. */
    unsigned char local[32];
    cl = __LINE__; assert_int_equal(pk_classes_free(&set, local + 16), PK_ERR_FOREIGN_PTR);
    expect_debug_fault(PK_ERR_FOREIGN_PTR, local + 16, "io", 0, 0, cl);
    cl = __LINE__; assert_int_equal(pk_classes_free(&set, set.pools[0].usage), PK_ERR_FOREIGN_PTR);
    expect_debug_fault(PK_ERR_FOREIGN_PTR, set.pools[0].usage, "io", 0, 0, cl);
    cl = __LINE__; assert_int_equal(pk_classes_free(&set, anchor + 1), PK_ERR_MISALIGNED_PTR);
    expect_debug_fault(PK_ERR_MISALIGNED_PTR, anchor + 1, "io", 0, 0, cl);
    cl = __LINE__; assert_int_equal(pk_classes_free(&set, anchor - 1), PK_ERR_MISALIGNED_PTR);
    expect_debug_fault(PK_ERR_MISALIGNED_PTR, anchor - 1, "io", 0, 0, cl);
    assert_check_ok(&set);
    expect_set_stats(1, 16, 5);

    /* A write after free into a quarantined block: check finds it, and the
     * free that pushes it out of class 0's quarantine reports it, once. */
    int dl = __LINE__; unsigned char *d = pk_classes_alloc(&set, 12);
    assert_int_equal(pk_classes_free(&set, d), PK_OK);
    d[11] = 0x42;
    assert_int_equal(pk_classes_check(&set), PK_ERR_USE_AFTER_FREE);
    expect_debug_fault(PK_ERR_USE_AFTER_FREE, d, "io", dl, 0, 0);
    unsigned char *fill[FILL]; /* a, b and d quarantined: these fill class 0 */
    for (size_t i = 0; i < FILL; i++) {
        fill[i] = pk_classes_alloc(&set, 1);
        assert_int_equal(class_of(&set, fill[i]), 0);
    }
    for (size_t i = 0; i + 1 < FILL; i++) {
        assert_int_equal(pk_classes_free(&set, fill[i]), PK_OK);
    }
    assert_int_equal(faults.calls, 0);
    cl = __LINE__; assert_int_equal(pk_classes_free(&set, fill[FILL - 1]), PK_OK); /* d leaves it */
    expect_debug_fault(PK_ERR_USE_AFTER_FREE, d, "io", dl, 0, cl);
    assert_check_ok(&set);
    expect_set_stats(1, 16, 5);

    /* A double free of a block that left the quarantine (no tag any more). */
    cl = __LINE__; assert_int_equal(pk_classes_free(&set, b), PK_ERR_DOUBLE_FREE);
    expect_debug_fault(PK_ERR_DOUBLE_FREE, b, "io", 0, 0, cl);
    expect_set_stats(1, 16, 6);

    /* A write after free into a block back on the free list: found when it
     * is handed out again (refilled). d heads class 0's list. */
    d[0] = 0x17;
    cl = __LINE__; unsigned char *r = pk_classes_alloc(&set, 16);
    assert_ptr_equal(r, d);
    expect_debug_fault(PK_ERR_USE_AFTER_FREE, d, "io", 0, 0, cl);
    assert_int_not_equal(r[0], 0x17);
    assert_check_ok(&set);
    expect_set_stats(2, 32, 6);

    /* Whole: every block of both classes can be had (quarantine drained). */
    assert_int_equal(pk_classes_free(&set, r), PK_OK);
    assert_int_equal(pk_classes_free(&set, anchor), PK_OK);
    expect_set_stats(0, 0, 6);
    for (size_t i = 0; i < N + 4; i++) {
        assert_non_null(pk_classes_alloc(&set, 16));
    }
    assert_null(pk_classes_alloc(&set, 1));
    assert_check_ok(&set);
    assert_int_equal(faults.calls, 0);
    assert_int_equal(lock_depth, 0);
}

/* The leak walk: every class's live blocks, oldest first across them. */
typedef struct {
    size_t n;
    pk_leak l[8];
} leak_list;

static void collect_leak(const pk_leak *leak, void *ctx)
{
    leak_list *list = ctx;
    assert_true(list->n < 8);
    list->l[list->n++] = *leak;
}

static void test_debug_leaks(void **state)
{
    (void)state;
    init_set(&set, small_specs, COUNT_OF(small_specs), 0);
    pk_allocator *v = pk_classes_allocator(&set);
    void *gone = pk_classes_alloc(&set, 5);
    pk_set_owner(3);
    int xl = __LINE__; void *x = pk_classes_alloc(&set, 150); /* class 3 */
    pk_set_owner(0);
    uint64_t mark = pk_leak_mark();
    int yl = __LINE__; void *y = pk_classes_alloc(&set, 1);  /* class 0 */
    int zl = __LINE__; void *z = pk_classes_alloc(&set, 40); /* class 2 */
    assert_int_equal(pk_classes_free(&set, gone), PK_OK);
    leak_list all = {0};
    pk_leaks(v, collect_leak, &all);
    assert_int_equal(all.n, 3);
    const void *want[] = {x, y, z};
    const size_t sizes[] = {150, 1, 40};
    const int lines[] = {xl, yl, zl};
    for (size_t i = 0; i < 3; i++) {
        assert_ptr_equal(all.l[i].ptr, want[i]);
        assert_int_equal(all.l[i].size, sizes[i]);
        assert_string_equal(all.l[i].file, __FILE__);
        assert_int_equal(all.l[i].line, lines[i]);
        assert_int_equal(all.l[i].owner, i == 0 ? 3 : 0);
        assert_true(i == 0 || all.l[i].seq > all.l[i - 1].seq);
    }
    leak_list since = {0};
    pk_leaks_since(v, mark, collect_leak, &since);
    assert_int_equal(since.n, 2);
    assert_ptr_equal(since.l[0].ptr, y);
    assert_ptr_equal(since.l[1].ptr, z);
    assert_int_equal(pk_classes_free(&set, x), PK_OK);
    assert_int_equal(pk_classes_free(&set, y), PK_OK);
    assert_int_equal(pk_classes_free(&set, z), PK_OK);
    leak_list none = {0};
    pk_leaks(v, collect_leak, &none);
    assert_int_equal(none.n, 0);
    assert_check_ok(&set);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_rejects_bad_arguments, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_buffer_size_is_exact, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_specs_are_copied, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_selection_at_every_boundary, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_fallthrough_on_and_off, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_bitmap_exact_through_fill_and_drain, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_class_stats_and_totals, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_generic_view, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_misuse_cases, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_misuse_through_the_driver, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_set_damage, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_check_finds_pool_damage, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_alloc_survives_overwritten_link, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_reset_peaks_survives_overwritten_link, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_lock_taken_once_per_call, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_powers_of_two, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_steps_of_125, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_mixed_no_fallthrough, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_tiny_and_one_class, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_max_classes, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_random_locked, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_threads_share_a_locked_set, setup_faults, teardown_faults),
#if PK_DEBUG
        cmocka_unit_test_setup_teardown(test_debug_faults, setup_faults, teardown_faults),
        cmocka_unit_test_setup_teardown(test_debug_leaks, setup_faults, teardown_faults),
#endif
    };
    return cmocka_run_group_tests_name("classes", tests, NULL, NULL);
}
