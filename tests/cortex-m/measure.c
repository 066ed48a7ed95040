/*
 * The instruction-count image of scripts/cortex_m_bench.sh (release build,
 * Cortex-M3 on QEMU): every allocator's own alloc and free, each called
 * through a wrapper of its own (measure_*, never inlined), over a randomized
 * run and over a sequence built to take the allocator's longest path. QEMU
 * traces every instruction executed; scripts/cortex_m_count.awk counts, for
 * each call of a wrapper, the instructions from the wrapper's entry until
 * the code is back in this file's other functions, leaving out the
 * wrapper's own: what remains is the allocator's function and all it calls.
 * The phase_* functions mark where the random run and the constructed
 * sequences begin (the counter sees their entry); setup calls go straight to
 * the allocator and are not counted. measure_known, a loop of known length,
 * checks the counter. Nothing here may be called back from an allocator (no
 * constructors, no fault handler): the counter would take it for the
 * return.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "poolkit/arena.h"
#include "poolkit/atomic_pool.h"
#include "poolkit/buddy.h"
#include "poolkit/classes.h"
#include "poolkit/fit.h"
#include "poolkit/heap.h"
#include "poolkit/pool.h"
#include "poolkit/slab.h"
#include "semihosting.h"

#define OPS 10000u  /* per allocator, in the random run */
#define SLOTS 64u   /* live blocks at most, in the random run */
#define FIT_RUN 32u /* free blocks the constructed first-fit scan passes */
#define COUNT_OF(a) (sizeof(a) / sizeof *(a))

/* Not inlined, nor analysed across the call, so the call stays where it is
 * and the counter sees the wrapper's entry; the wrapper ends in a tail call
 * or a call and a return, which the counter does not count. */
#define MEASURED __attribute__((noinline, noipa))

static _Alignas(4096) unsigned char buffer[1u << 16];
static void *slots[SLOTS];
static size_t sizes[SLOTS];
static unsigned failures;

/* The phase markers: empty, but called, so that the counter sees them. */
#define PHASE(name)                                                                                                   \
    MEASURED void phase_##name(void);                                                                                 \
    MEASURED void phase_##name(void)                                                                                  \
    {                                                                                                                 \
        __asm__ volatile("");                                                                                         \
    }
PHASE(random)
PHASE(worst)

/* known_loop(n), n >= 1: 2n + 1 instructions (subs and bne n times, bx
 * once), in assembly so that the compiler cannot change the count. */
void known_loop(uint32_t n);
__asm__(".text\n"
        ".thumb\n"
        ".syntax unified\n"
        ".global known_loop\n"
        ".type known_loop, %function\n"
        ".thumb_func\n"
        "known_loop:\n"
        "1: subs r0, r0, #1\n"
        "   bne 1b\n"
        "   bx lr\n"
        ".size known_loop, . - known_loop\n");

MEASURED void measure_known(uint32_t n);
MEASURED void measure_known(uint32_t n)
{
    known_loop(n);
}

/* The wrappers: one per measured function, the same arguments. */
#define WRAP(ret, name, params, args)                                                                                 \
    MEASURED ret measure_##name params;                                                                               \
    MEASURED ret measure_##name params                                                                                \
    {                                                                                                                 \
        return pk_##name args;                                                                                        \
    }
WRAP(void *, pool_alloc, (pk_pool * p), (p))
WRAP(pk_status, pool_free, (pk_pool * p, void *b), (p, b))
WRAP(void *, atomic_pool_alloc, (pk_atomic_pool * p), (p))
WRAP(pk_status, atomic_pool_free, (pk_atomic_pool * p, void *b), (p, b))
WRAP(void *, classes_alloc, (pk_classes * c, size_t size), (c, size))
WRAP(pk_status, classes_free, (pk_classes * c, void *b), (c, b))
WRAP(void *, slab_alloc, (pk_slab_cache * c), (c))
WRAP(pk_status, slab_free, (pk_slab_cache * c, void *b), (c, b))
WRAP(size_t, slab_shrink, (pk_slab_cache * c), (c))
WRAP(void *, buddy_alloc, (pk_buddy * b, size_t size), (b, size))
WRAP(pk_status, buddy_free, (pk_buddy * b, void *p), (b, p))
WRAP(void *, heap_alloc, (pk_heap * h, size_t size), (h, size))
WRAP(pk_status, heap_free, (pk_heap * h, void *p), (h, p))
WRAP(void *, fit_alloc, (pk_fit * f, size_t size), (f, size))
WRAP(pk_status, fit_free, (pk_fit * f, void *p), (f, p))
WRAP(void *, arena_alloc, (pk_arena * a, size_t size, size_t align), (a, size, align))

MEASURED void measure_arena_reset(pk_arena *a);
MEASURED void measure_arena_reset(pk_arena *a)
{
    pk_arena_reset(a);
}

static void expect(bool ok)
{
    failures += ok ? 0u : 1u;
}

/* xorshift32: the same run on every build. */
static uint32_t rng_state;

static uint32_t next_random(void)
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

/* A size in [1, max], log-uniform (as many small as large requests). */
static size_t random_size(size_t max)
{
    size_t top = 1;
    for (uint32_t r = next_random() % 32u; r > 0 && top < max; r--) {
        top = top * 3 / 2 + 1;
    }
    top = top < max ? top : max;
    return 1 + next_random() % top;
}

/* The random run: OPS times, a random slot's block is freed if it has one,
 * else one is allocated there (a failed allocation is measured too); the
 * rest is freed at the end, unmeasured. */
typedef struct {
    void *(*alloc)(void *self, size_t size);
    pk_status (*free)(void *self, void *p);
    void *self;
    size_t max_size;
} random_target;

static void random_run(const random_target *t, uint32_t seed)
{
    rng_state = seed;
    for (size_t i = 0; i < SLOTS; i++) {
        slots[i] = NULL;
    }
    phase_random();
    for (unsigned op = 0; op < OPS; op++) {
        size_t i = next_random() % SLOTS;
        if (slots[i] != NULL) {
            expect(t->free(t->self, slots[i]) == PK_OK);
            slots[i] = NULL;
        } else {
            sizes[i] = random_size(t->max_size);
            slots[i] = t->alloc(t->self, sizes[i]);
        }
    }
    for (size_t i = 0; i < SLOTS; i++) {
        if (slots[i] != NULL) {
            expect(t->free(t->self, slots[i]) == PK_OK);
        }
    }
}

/* The random run's adapters: home code, calling the wrappers. */
static void *pool_alloc(void *self, size_t size)
{
    (void)size;
    return measure_pool_alloc(self);
}
static pk_status pool_free(void *self, void *p)
{
    return measure_pool_free(self, p);
}
static void *atomic_pool_alloc(void *self, size_t size)
{
    (void)size;
    return measure_atomic_pool_alloc(self);
}
static pk_status atomic_pool_free(void *self, void *p)
{
    return measure_atomic_pool_free(self, p);
}
static void *classes_alloc(void *self, size_t size)
{
    return measure_classes_alloc(self, size);
}
static pk_status classes_free(void *self, void *p)
{
    return measure_classes_free(self, p);
}
static void *slab_alloc(void *self, size_t size)
{
    (void)size;
    return measure_slab_alloc(self);
}
static pk_status slab_free(void *self, void *p)
{
    return measure_slab_free(self, p);
}
static void *buddy_alloc(void *self, size_t size)
{
    return measure_buddy_alloc(self, size);
}
static pk_status buddy_free(void *self, void *p)
{
    return measure_buddy_free(self, p);
}
static void *heap_alloc(void *self, size_t size)
{
    return measure_heap_alloc(self, size);
}
static pk_status heap_free(void *self, void *p)
{
    return measure_heap_free(self, p);
}
static void *fit_alloc(void *self, size_t size)
{
    return measure_fit_alloc(self, size);
}
static pk_status fit_free(void *self, void *p)
{
    return measure_fit_free(self, p);
}

/* Each allocator: its random run, then its constructed worst case. */

static void pool(void)
{
    pk_pool p;
    expect(pk_pool_init(&p, buffer, PK_POOL_BUFFER_SIZE(64, 48, 0), 64, 0) == PK_OK);
    random_run(&(random_target){pool_alloc, pool_free, &p, 64}, 1);

    /* Carving a block never used, a free-list pop, a push, the exhausted pool. */
    expect(pk_pool_init(&p, buffer, PK_POOL_BUFFER_SIZE(64, 4, 0), 64, 0) == PK_OK);
    phase_worst();
    void *a = measure_pool_alloc(&p);
    expect(measure_pool_free(&p, a) == PK_OK);
    a = measure_pool_alloc(&p);
    while (pk_pool_alloc(&p) != NULL) {
    }
    expect(measure_pool_alloc(&p) == NULL);
    expect(measure_pool_free(&p, a) == PK_OK);
}

static void atomic_pool(void)
{
    pk_atomic_pool p;
    expect(pk_atomic_pool_init(&p, buffer, PK_ATOMIC_POOL_BUFFER_SIZE(64, 48, 0), 64, 0) == PK_OK);
    random_run(&(random_target){atomic_pool_alloc, atomic_pool_free, &p, 64}, 2);

    /* Uncontended: carving, a pop, a push, the exhausted pool. */
    expect(pk_atomic_pool_init(&p, buffer, PK_ATOMIC_POOL_BUFFER_SIZE(64, 4, 0), 64, 0) == PK_OK);
    phase_worst();
    void *a = measure_atomic_pool_alloc(&p);
    expect(measure_atomic_pool_free(&p, a) == PK_OK);
    a = measure_atomic_pool_alloc(&p);
    while (pk_atomic_pool_alloc(&p) != NULL) {
    }
    expect(measure_atomic_pool_alloc(&p) == NULL);
    expect(measure_atomic_pool_free(&p, a) == PK_OK);
}

static const pk_class_spec class_specs[] = {{8, 10, 0}, {24, 10, 8}, {64, 10, 0}, {100, 8, 4}, {512, 4, 0}};

static void classes(void)
{
    pk_classes c;
    size_t need = pk_classes_buffer_size(class_specs, COUNT_OF(class_specs));
    expect(pk_classes_init(&c, buffer, need, class_specs, COUNT_OF(class_specs)) == PK_OK);
    pk_classes_set_fallthrough(&c, true);
    random_run(&(random_target){classes_alloc, classes_free, &c, 600}, 3);

    /* Fall-through to the last class: every other class is empty; then
     * through every class to none. */
    expect(pk_classes_init(&c, buffer, need, class_specs, COUNT_OF(class_specs)) == PK_OK);
    pk_classes_set_fallthrough(&c, true);
    void *first = pk_classes_alloc(&c, 1);
    for (unsigned i = 1; i < 10 + 10 + 10 + 8; i++) {
        expect(pk_classes_alloc(&c, 1) != NULL);
    }
    phase_worst();
    void *last = measure_classes_alloc(&c, 1);
    expect(last != NULL);
    for (unsigned i = 1; i < 4; i++) {
        expect(pk_classes_alloc(&c, 1) != NULL);
    }
    expect(measure_classes_alloc(&c, 1) == NULL);
    expect(measure_classes_free(&c, last) == PK_OK);
    expect(measure_classes_free(&c, first) == PK_OK);
}

#define SLAB_PAGE 4096u
#define SLAB_BUDDY_SIZE PK_BUDDY_BUFFER_SIZE(1u << 15, 0)

static void slab(void)
{
    pk_buddy b;
    pk_slab_cache c;
    expect(pk_buddy_init(&b, buffer, SLAB_BUDDY_SIZE, 0) == PK_OK);
    pk_page_source src = pk_page_source_buddy(&b);
    expect(pk_slab_init(&c, "measured", 40, 0, NULL, NULL, NULL, &src, SLAB_PAGE) == PK_OK);
    random_run(&(random_target){slab_alloc, slab_free, &c, 40}, 4);
    (void)pk_slab_shrink(&c);

    /* A new slab from the buddy (split from the whole buffer down to a
     * page), a free that empties it, and the shrink that gives it back (the
     * buddy merges it up again). No constructor: each object's would add
     * its own cost. */
    expect(pk_buddy_init(&b, buffer, SLAB_BUDDY_SIZE, 0) == PK_OK);
    src = pk_page_source_buddy(&b);
    expect(pk_slab_init(&c, "measured", 40, 0, NULL, NULL, NULL, &src, SLAB_PAGE) == PK_OK);
    phase_worst();
    void *a = measure_slab_alloc(&c);
    expect(a != NULL);
    expect(measure_slab_free(&c, a) == PK_OK);
    expect(measure_slab_shrink(&c) == 1);
}

static void buddy(void)
{
    pk_buddy b;
    expect(pk_buddy_init(&b, buffer, PK_BUDDY_BUFFER_SIZE(1u << 14, 16), 16) == PK_OK);
    random_run(&(random_target){buddy_alloc, buddy_free, &b, 1024}, 5);

    /* The smallest block from a fresh buddy: split from the whole buffer
     * down; its free merges all the way back. */
    expect(pk_buddy_init(&b, buffer, PK_BUDDY_BUFFER_SIZE(1u << 14, 16), 16) == PK_OK);
    phase_worst();
    void *a = measure_buddy_alloc(&b, 1);
    expect(a != NULL);
    expect(measure_buddy_free(&b, a) == PK_OK);
}

static void heap(void)
{
    pk_heap h;
    expect(pk_heap_init(&h, buffer, 1u << 15) == PK_OK);
    random_run(&(random_target){heap_alloc, heap_free, &h, 2048}, 6);

    /* A split of the whole free block; a free that merges with free blocks
     * on both sides, each the only one of its size class (each removal
     * empties a list and clears its bits). */
    expect(pk_heap_init(&h, buffer, 1u << 15) == PK_OK);
    phase_worst();
    void *a = measure_heap_alloc(&h, 100);
    void *b = pk_heap_alloc(&h, 100);
    void *c = pk_heap_alloc(&h, 1000);
    void *d = pk_heap_alloc(&h, 100);
    expect(a != NULL && b != NULL && c != NULL && d != NULL);
    expect(pk_heap_free(&h, a) == PK_OK);
    expect(pk_heap_free(&h, c) == PK_OK);
    expect(measure_heap_free(&h, b) == PK_OK);
    expect(pk_heap_free(&h, d) == PK_OK);
}

static void fit(void)
{
    pk_fit f;
    expect(pk_fit_init(&f, buffer, 1u << 15, PK_FIT_FIRST, 0) == PK_OK);
    random_run(&(random_target){fit_alloc, fit_free, &f, 1024}, 7);

    /* First fit: FIT_RUN free blocks too small for the request lie before
     * the one that serves it (live spacers keep them apart). Then a free
     * with no free neighbour, whose place in the list both of its walks
     * take long to find: FIT_RUN live blocks after it, and the block freed
     * last FIT_RUN free blocks away. Finally a free that merges on both
     * sides. */
    expect(pk_fit_init(&f, buffer, 1u << 15, PK_FIT_FIRST, 0) == PK_OK);
    void *lone = pk_fit_alloc(&f, 16);
    void *live[FIT_RUN];
    for (size_t i = 0; i < FIT_RUN; i++) {
        live[i] = pk_fit_alloc(&f, 16);
    }
    void *small[FIT_RUN], *spacer[FIT_RUN];
    for (size_t i = 0; i < FIT_RUN; i++) {
        small[i] = pk_fit_alloc(&f, 16);
        spacer[i] = pk_fit_alloc(&f, 16);
        expect(small[i] != NULL && spacer[i] != NULL);
    }
    for (size_t i = 0; i < FIT_RUN; i++) {
        expect(pk_fit_free(&f, small[i]) == PK_OK);
    }
    phase_worst();
    void *big = measure_fit_alloc(&f, 64);
    expect(big != NULL);
    expect(measure_fit_free(&f, lone) == PK_OK);
    expect(measure_fit_free(&f, spacer[0]) == PK_OK);
    expect(pk_fit_free(&f, big) == PK_OK);
    for (size_t i = 0; i < FIT_RUN; i++) {
        expect(pk_fit_free(&f, live[i]) == PK_OK);
    }
    for (size_t i = 1; i < FIT_RUN; i++) {
        expect(pk_fit_free(&f, spacer[i]) == PK_OK);
    }
}

static void arena(void)
{
    pk_arena a;
    expect(pk_arena_init(&a, buffer, 1u << 14) == PK_OK);
    /* The arena's own free is a reset: allocations until one fails, then
     * the reset. */
    rng_state = 8;
    phase_random();
    for (unsigned op = 0; op < OPS; op++) {
        size_t align = (size_t)1 << (next_random() % 7u);
        if (measure_arena_alloc(&a, random_size(256), align) == NULL) {
            measure_arena_reset(&a);
        }
    }

    /* The bump with the most padding: an alignment that skips nearly a
     * whole 4 KiB. */
    pk_arena_reset(&a);
    expect(pk_arena_alloc(&a, 1, 0) != NULL);
    phase_worst();
    expect(measure_arena_alloc(&a, 40, 4096) != NULL);
    measure_arena_reset(&a);
}

int main(void);

int main(void)
{
    /* The counter's check: 2n + 1 instructions for n = 1 and 1000. */
    measure_known(1);
    measure_known(1000);
    static void (*const allocators[])(void) = {pool, atomic_pool, classes, slab, buddy, heap, fit, arena};
    for (size_t i = 0; i < COUNT_OF(allocators); i++) {
        allocators[i]();
    }
    pk_semihosting_write(failures == 0 ? "measure: done\n" : "measure: FAILED: an allocator call went wrong\n");
    return failures == 0 ? 0 : 1;
}
