/* Every locked allocator shared by four threads, through its generic view
 * (pk_alloc, pk_free, pk_stats_get, pk_check), with cross-thread frees: each
 * block is stamped over its whole requested size by the thread that allocates
 * it and verified by the thread that frees it. Run under ThreadSanitizer by
 * `make test`.
 *
 * One table entry per allocator (`cases` below). For each:
 * - threads_<name>: POOLKIT_RANDOM_OPS operations (10^6 by default) over a
 *   ring of four threads, each freeing what the previous one sent and
 *   otherwise allocating and sending to the next; meanwhile a fifth thread,
 *   the observer, takes stats snapshots (which must be self-consistent: they
 *   are taken under the lock), runs check, and does the entry's maintenance
 *   (the slab cache's shrink). At the end the blocks in flight are freed and every
 *   counter must equal what the threads saw: allocs, frees, failures (NULL
 *   returns), no rejection, nothing live, check passes. The arena, which only
 *   allocates, runs rounds instead: all threads allocate until it is
 *   exhausted, each verifies another's blocks, and thread 0 checks that every
 *   block is distinct and in the buffer, the stats, and resets it.
 * - stats_<name>: the stats are exact at barriers: with every thread holding
 *   k blocks of known sizes, live is 4k, requested is their sum (where
 *   SPEC.md says requested is exact; else in_use), in_use the sum of what each
 *   block was granted; and again after half, then all, are freed by another
 *   thread.
 * The locks are pthread mutexes behind a wrapper (tlock) that counts every
 * acquisition and records, per thread, what it holds: a lock taken by a thread
 * already holding it (nesting), an unlock by a thread not holding it, two of
 * the test's locks held together (the slab cache and its buddy page source
 * must never be), and how often each call took each lock (once per alloc or
 * free; the slab cache's growing alloc twice, and its buddy's at most once).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "poolkit/allocator.h"
#include "poolkit/arena.h"
#include "poolkit/buddy.h"
#include "poolkit/classes.h"
#include "poolkit/fit.h"
#include "poolkit/heap.h"
#include "poolkit/atomic_pool.h"
#include "poolkit/pool.h"
#include "poolkit/slab.h"
#include "support.h"
#include "thread_failures.h"

#define THREADS 4
#define RING 64           /* blocks in flight from one thread to the next */
#define MAX_LOCKS 2       /* the allocator's own, and its page source's (slab) */

/* ---- Failures seen on worker threads (cmocka asserts on the main thread only). */

#define FAIL THREAD_FAIL
#define EXPECT(cond, ...)                                                            \
    do {                                                                             \
        if (!(cond)) {                                                               \
            FAIL(__VA_ARGS__);                                                       \
        }                                                                            \
    } while (0)

static void assert_no_failure(void)
{
    char first[256];
    unsigned count = thread_failures_take(first, sizeof first);
    if (count != 0) {
        print_error("%u failure(s); the first: %s\n", count, first);
    }
    assert_int_equal(count, 0);
}

static atomic_uint faults_seen;

static void count_any_fault(const pk_fault *f, void *ctx)
{
    (void)ctx;
    if (atomic_fetch_add(&faults_seen, 1) == 0) {
        FAIL("fault %s from %s at %p", pk_status_str(f->kind), f->allocator, f->ptr);
    }
}

/* ---- The instrumented lock. */

typedef struct {
    pthread_mutex_t mutex;
    unsigned id;
    unsigned long taken, released; /* written with the mutex held */
    atomic_uint nested;            /* taken by a thread already holding it */
    atomic_uint stray_unlocks;     /* released by a thread not holding it */
    atomic_uint held_together;     /* taken while holding another of the test's locks */
} tlock;

static tlock tlocks[MAX_LOCKS];
static _Thread_local unsigned held_depth[MAX_LOCKS];
static _Thread_local unsigned takes[MAX_LOCKS]; /* per call, see reset_takes */

static void tlock_lock(void *ctx)
{
    tlock *t = ctx;
    if (held_depth[t->id] != 0) {
        atomic_fetch_add(&t->nested, 1); /* recorded, not deadlocked on */
        held_depth[t->id]++;
        return;
    }
    for (unsigned i = 0; i < MAX_LOCKS; i++) {
        if (held_depth[i] != 0) {
            atomic_fetch_add(&t->held_together, 1);
        }
    }
    pthread_mutex_lock(&t->mutex);
    held_depth[t->id] = 1;
    t->taken++;
    takes[t->id]++;
}

static void tlock_unlock(void *ctx)
{
    tlock *t = ctx;
    if (held_depth[t->id] == 0) {
        atomic_fetch_add(&t->stray_unlocks, 1);
        return;
    }
    if (--held_depth[t->id] != 0) {
        return; /* the inner release of a nested take */
    }
    t->released++;
    pthread_mutex_unlock(&t->mutex);
}

static void tlocks_init(void)
{
    for (unsigned i = 0; i < MAX_LOCKS; i++) {
        tlock *t = &tlocks[i];
        pthread_mutex_init(&t->mutex, NULL);
        t->id = i;
        t->taken = t->released = 0;
        atomic_store(&t->nested, 0);
        atomic_store(&t->stray_unlocks, 0);
        atomic_store(&t->held_together, 0);
    }
}

static pk_lock lock_of(unsigned i)
{
    pk_lock l = {tlock_lock, tlock_unlock, &tlocks[i]};
    return l;
}

static void reset_takes(void)
{
    memset(takes, 0, sizeof takes);
}

/* ---- The allocators. */

typedef struct {
    pk_allocator *view;
    size_t max_live;   /* live blocks the buffer can hold at most */
    size_t max_bytes;  /* bytes it manages at most (peak_in_use stays below) */
    size_t block_size; /* fixed-size allocators: in_use per live block; else 0 */
} subject;

typedef struct allocator_case {
    const char *name;
    /* Makes the allocator in static storage and sets its locks (tlocks[0],
     * and tlocks[1] for a page source). */
    void (*setup)(subject *s);
    /* Bytes of in_use a live block p accounts for; NULL: the view's
     * usable_size. */
    size_t (*granted)(const void *p);
    /* Thread 0's periodic maintenance while the others run, or NULL. */
    void (*tick)(void);
    /* After the run, on the main thread: whatever else must hold, or NULL. */
    void (*finish)(void);
    void (*reset)(void); /* alloc-only allocators: gives everything back */
    size_t min_size, max_size; /* requests: uniformly in [min_size, max_size] */
    unsigned locks;      /* 0 (lock-free), 1, or 2 (its own and its page source's) */
    unsigned alloc_takes; /* most acquisitions of its own lock by one alloc */
    bool requested_exact; /* SPEC.md: stats.requested is exact in release builds */
    bool requested_exact_debug; /* ... and in debug builds */
    bool alloc_only;      /* the arena: free is a no-op, reset gives it back */
} allocator_case;

/* Buffers run dry now and then with about 3 x RING blocks of 16..512 bytes in
 * flight (264 on average; the buddy rounds them up to powers of two), and
 * hold the stats test's 4 x 16 blocks of at most 512 bytes. */
#define VARIABLE_BUFFER (48u * 1024u)
#define BUDDY_BUFFER (64u * 1024u)
#define SLAB_BUFFER (40u * 1024u)
/* One alloc in OVERSIZED_EVERY (at random) asks for more than any buffer
 * holds: a failure on every allocator, counted under its lock. */
#define OVERSIZED_EVERY 64u
#define OVERSIZED (1024u * 1024u)
#define ARENA_BUFFER (256u * 1024u)

/* pk_pool: 256 blocks of 64 bytes. */
#define POOL_BLOCK 64u
#define POOL_BLOCKS 128u
static pk_pool the_pool;
static unsigned char pool_buffer[PK_POOL_BUFFER_SIZE(POOL_BLOCK, POOL_BLOCKS, 0)];

static void setup_pool(subject *s)
{
    assert_int_equal(pk_pool_init(&the_pool, pool_buffer, sizeof pool_buffer, POOL_BLOCK, 0), PK_OK);
    pk_lock l = lock_of(0);
    assert_int_equal(pk_pool_set_lock(&the_pool, &l), PK_OK);
    assert_int_equal(pk_pool_capacity(&the_pool), POOL_BLOCKS);
    s->view = pk_pool_allocator(&the_pool);
    s->max_live = POOL_BLOCKS;
    s->max_bytes = sizeof pool_buffer;
    s->block_size = POOL_BLOCK;
}

/* pk_classes: five classes of 32 to 512 bytes, with fall-through. */
static const pk_class_spec class_specs[] = {
    {32, 16, 0}, {64, 16, 0}, {128, 32, 0}, {256, 48, 0}, {512, 96, 0}, /* ~ requests of 16..512 */
};
#define CLASS_COUNT (sizeof class_specs / sizeof class_specs[0])
static pk_classes the_classes;
#if PK_DEBUG
/* Debug builds: each block also holds its tag and guards (in PK_POOL_BUFFER_SIZE). */
static unsigned char classes_buffer[PK_POOL_BUFFER_SIZE(32, 16, 0) + PK_POOL_BUFFER_SIZE(64, 16, 0) +
                                    PK_POOL_BUFFER_SIZE(128, 32, 0) + PK_POOL_BUFFER_SIZE(256, 48, 0) +
                                    PK_POOL_BUFFER_SIZE(512, 96, 0)];
#else
static unsigned char classes_buffer[16u * 33u + 16u * 65u + 32u * 129u + 48u * 257u + 96u * 513u +
                                    CLASS_COUNT * 16u];
#endif

static void setup_classes(subject *s)
{
    assert_true(pk_classes_buffer_size(class_specs, CLASS_COUNT) <= sizeof classes_buffer);
    assert_int_equal(pk_classes_init(&the_classes, classes_buffer, sizeof classes_buffer, class_specs,
                                     CLASS_COUNT),
                     PK_OK);
    pk_lock l = lock_of(0);
    assert_int_equal(pk_classes_set_lock(&the_classes, &l), PK_OK);
    s->view = pk_classes_allocator(&the_classes);
    s->max_live = 0;
    for (size_t i = 0; i < CLASS_COUNT; i++) {
        s->max_live += class_specs[i].count;
    }
    s->max_bytes = sizeof classes_buffer;
    s->block_size = 0;
}

/* The block size of the class holding p (usable_size is the request in
 * debug builds; in_use counts the class's block). */
static size_t granted_classes(const void *p)
{
    for (size_t i = 0; i < CLASS_COUNT; i++) {
        if (pk_pool_owns(&the_classes.pools[i], p)) {
            return class_specs[i].block_size;
        }
    }
    return 0;
}

/* pk_slab: a cache of 128-byte objects on 4 KiB slabs from a buddy; both
 * locked, each with its own lock. The constructor and destructor count their
 * calls: every object constructed is destroyed once its slab goes back. */
#define SLAB_OBJECT 128u
#define SLAB_SIZE 4096u
static pk_slab_cache the_slab;
static pk_buddy slab_pages;
static _Alignas(4096) unsigned char slab_buffer[SLAB_BUFFER];
static atomic_ulong constructed, destroyed;

static void slab_ctor(void *obj, void *ctx)
{
    (void)ctx;
    memset(obj, 0xC7, SLAB_OBJECT);
    atomic_fetch_add(&constructed, 1);
}

static void slab_dtor(void *obj, void *ctx)
{
    (void)obj;
    (void)ctx;
    atomic_fetch_add(&destroyed, 1);
}

static void setup_slab(subject *s)
{
    atomic_store(&constructed, 0);
    atomic_store(&destroyed, 0);
    assert_int_equal(pk_buddy_init(&slab_pages, slab_buffer, sizeof slab_buffer, 0), PK_OK);
    pk_page_source source = pk_page_source_buddy(&slab_pages);
    assert_int_equal(pk_slab_init(&the_slab, "slab", SLAB_OBJECT, 0, slab_ctor, slab_dtor, NULL, &source,
                                  SLAB_SIZE),
                     PK_OK);
    pk_lock own = lock_of(0), pages = lock_of(1);
    assert_int_equal(pk_slab_set_lock(&the_slab, &own), PK_OK);
    assert_int_equal(pk_buddy_set_lock(&slab_pages, &pages), PK_OK);
    s->view = pk_slab_allocator(&the_slab);
    s->max_live = sizeof slab_buffer / SLAB_SIZE * pk_slab_objects_per_slab(SLAB_OBJECT, 0, SLAB_SIZE);
    s->max_bytes = sizeof slab_buffer;
    s->block_size = SLAB_OBJECT;
}

static void tick_slab(void)
{
    (void)pk_slab_shrink(&the_slab);
}

static void finish_slab(void)
{
    (void)pk_slab_shrink(&the_slab);
    assert_int_equal(pk_slab_slabs(&the_slab, NULL, NULL, NULL), 0);
    assert_int_equal(atomic_load(&constructed), atomic_load(&destroyed));
    assert_true(atomic_load(&constructed) > 0);
    pk_stats b;
    pk_buddy_stats(&slab_pages, &b); /* every page back */
    assert_int_equal(b.live, 0);
    assert_int_equal(b.allocs, b.frees);
    assert_int_equal(b.in_use, 0);
    assert_int_equal(b.rejected, 0);
    assert_true(b.allocs > 0);
    assert_int_equal(pk_buddy_check(&slab_pages), PK_OK);
}

/* pk_atomic_pool: the pool's shape, shared without a lock. */
static pk_atomic_pool the_atomic_pool;
static unsigned char atomic_pool_buffer[PK_ATOMIC_POOL_BUFFER_SIZE(POOL_BLOCK, POOL_BLOCKS, 0)];

static void setup_atomic_pool(subject *s)
{
    assert_int_equal(pk_atomic_pool_init(&the_atomic_pool, atomic_pool_buffer, sizeof atomic_pool_buffer,
                                         POOL_BLOCK, 0), PK_OK);
    assert_int_equal(pk_atomic_pool_capacity(&the_atomic_pool), POOL_BLOCKS);
    s->view = pk_atomic_pool_allocator(&the_atomic_pool);
    s->max_live = POOL_BLOCKS;
    s->max_bytes = sizeof atomic_pool_buffer;
    s->block_size = POOL_BLOCK;
}

/* pk_buddy: 64 KiB, default min_block. */
static pk_buddy the_buddy;
static unsigned char buddy_buffer[BUDDY_BUFFER];

static void setup_buddy(subject *s)
{
    assert_int_equal(pk_buddy_init(&the_buddy, buddy_buffer, sizeof buddy_buffer, 0), PK_OK);
    pk_lock l = lock_of(0);
    assert_int_equal(pk_buddy_set_lock(&the_buddy, &l), PK_OK);
    s->view = pk_buddy_allocator(&the_buddy);
    s->max_live = sizeof buddy_buffer / 16u;
    s->max_bytes = sizeof buddy_buffer;
    s->block_size = 0;
}

static size_t granted_buddy(const void *p)
{
    return pk_buddy_block_size(&the_buddy, p);
}

/* pk_heap: 64 KiB. */
static pk_heap the_heap;
static unsigned char heap_buffer[VARIABLE_BUFFER];

static void setup_heap(subject *s)
{
    assert_int_equal(pk_heap_init(&the_heap, heap_buffer, sizeof heap_buffer), PK_OK);
    pk_lock l = lock_of(0);
    assert_int_equal(pk_heap_set_lock(&the_heap, &l), PK_OK);
    s->view = pk_heap_allocator(&the_heap);
    s->max_live = sizeof heap_buffer / 16u;
    s->max_bytes = sizeof heap_buffer;
    s->block_size = 0;
}

/* pk_fit: 64 KiB, one per policy. */
static pk_fit the_fit;
static unsigned char fit_buffer[VARIABLE_BUFFER];

static void setup_fit(subject *s, pk_fit_policy policy)
{
    assert_int_equal(pk_fit_init(&the_fit, fit_buffer, sizeof fit_buffer, policy, 0), PK_OK);
    pk_lock l = lock_of(0);
    assert_int_equal(pk_fit_set_lock(&the_fit, &l), PK_OK);
    s->view = pk_fit_allocator(&the_fit);
    s->max_live = sizeof fit_buffer / 16u;
    s->max_bytes = sizeof fit_buffer;
    s->block_size = 0;
}

static void setup_fit_first(subject *s)
{
    setup_fit(s, PK_FIT_FIRST);
}

static void setup_fit_best(subject *s)
{
    setup_fit(s, PK_FIT_BEST);
}

static void setup_fit_next(subject *s)
{
    setup_fit(s, PK_FIT_NEXT);
}

#if PK_DEBUG
/* Debug builds: usable_size is the request, and in_use counts the heap block
 * that holds it (its tag and guards too): the payload size in the header word
 * before the block's payload, PK_DEBUG_PREFIX_ bytes before the pointer. */
static size_t header_before(const void *p)
{
    size_t header;
    memcpy(&header, (const unsigned char *)p - PK_DEBUG_PREFIX_(PK_MAX_ALIGN) - sizeof header, sizeof header);
    return header;
}

static size_t granted_heap(const void *p)
{
    return header_before(p) & ~(size_t)3; /* payload size | two flags */
}

static size_t granted_fit(const void *p)
{
    return (header_before(p) & ~(PK_FIT_ALIGN - 1)) - sizeof(size_t); /* block size, header included */
}
#define GRANTED_HEAP granted_heap
#define GRANTED_FIT granted_fit
#else
#define GRANTED_HEAP NULL
#define GRANTED_FIT NULL
#endif

/* pk_arena: 256 KiB, allocated until exhausted, then reset. */
static pk_arena the_arena;
static unsigned char arena_buffer[ARENA_BUFFER];

static void setup_arena(subject *s)
{
    assert_int_equal(pk_arena_init(&the_arena, arena_buffer, sizeof arena_buffer), PK_OK);
    pk_lock l = lock_of(0);
    assert_int_equal(pk_arena_set_lock(&the_arena, &l), PK_OK);
    s->view = pk_arena_allocator(&the_arena);
    s->max_live = sizeof arena_buffer / 16u;
    s->max_bytes = sizeof arena_buffer;
    s->block_size = 0;
}

static void reset_arena(void)
{
    pk_arena_reset(&the_arena);
}

static const allocator_case cases[] = {
    {.name = "pool", .setup = setup_pool, .min_size = POOL_BLOCK, .max_size = POOL_BLOCK,
     .locks = 1, .alloc_takes = 1, .requested_exact_debug = true},
    {.name = "classes", .setup = setup_classes, .granted = granted_classes, .min_size = 16, .max_size = 512,
     .locks = 1, .alloc_takes = 1, .requested_exact_debug = true},
    /* A growing allocation takes the cache's lock again after making the
     * slab without it (slab.h). */
    {.name = "slab", .setup = setup_slab, .tick = tick_slab, .finish = finish_slab,
     .min_size = SLAB_OBJECT, .max_size = SLAB_OBJECT, .locks = 2, .alloc_takes = 2},
    {.name = "buddy", .setup = setup_buddy, .granted = granted_buddy, .min_size = 16, .max_size = 512,
     .locks = 1, .alloc_takes = 1, .requested_exact = true, .requested_exact_debug = true},
    {.name = "heap", .setup = setup_heap, .granted = GRANTED_HEAP, .min_size = 16, .max_size = 512,
     .locks = 1, .alloc_takes = 1, .requested_exact_debug = true},
    {.name = "fit_first", .setup = setup_fit_first, .granted = GRANTED_FIT, .min_size = 16, .max_size = 512,
     .locks = 1, .alloc_takes = 1, .requested_exact_debug = true},
    {.name = "fit_best", .setup = setup_fit_best, .granted = GRANTED_FIT, .min_size = 16, .max_size = 512,
     .locks = 1, .alloc_takes = 1, .requested_exact_debug = true},
    {.name = "fit_next", .setup = setup_fit_next, .granted = GRANTED_FIT, .min_size = 16, .max_size = 512,
     .locks = 1, .alloc_takes = 1, .requested_exact_debug = true},
    {.name = "arena", .setup = setup_arena, .reset = reset_arena, .min_size = 16, .max_size = 512,
     .locks = 1, .alloc_takes = 1, .requested_exact = true, .requested_exact_debug = true,
     .alloc_only = true},
    /* No lock (.locks = 0): no lock accounting, and no stats snapshots under
     * load, since its stats are exact only while it is quiescent. */
    {.name = "atomic_pool", .setup = setup_atomic_pool, .min_size = POOL_BLOCK, .max_size = POOL_BLOCK,
     .locks = 0, .requested_exact_debug = true},
};
#define CASE_COUNT (sizeof cases / sizeof cases[0])

/* ---- Stamps: the whole requested size, derived from (thread, seq, size). */

typedef struct {
    unsigned char *p;
    uint32_t size, thread, seq;
} item;

static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t stamp_word(const item *it, size_t k)
{
    return mix(((uint64_t)it->thread << 48) ^ ((uint64_t)it->seq << 16) ^ it->size) + k * 0x2545F4914F6CDD1Dull;
}

static void stamp(const item *it)
{
    size_t off = 0;
    for (size_t k = 0; off + 8 <= it->size; k++, off += 8) {
        uint64_t w = stamp_word(it, k);
        memcpy(it->p + off, &w, 8);
    }
    uint64_t w = stamp_word(it, off / 8);
    memcpy(it->p + off, &w, it->size - off);
}

static bool stamp_intact(const item *it)
{
    size_t off = 0;
    for (size_t k = 0; off + 8 <= it->size; k++, off += 8) {
        uint64_t w = stamp_word(it, k);
        if (memcmp(it->p + off, &w, 8) != 0) {
            return false;
        }
    }
    uint64_t w = stamp_word(it, off / 8);
    return memcmp(it->p + off, &w, it->size - off) == 0;
}

/* ---- Shared run state. */

static const allocator_case *current;
static subject subj;
static size_t ops_per_thread;
static pthread_barrier_t barrier;

typedef struct {
    uint64_t rng;
    uint32_t id;
    uint32_t seq;
    unsigned long allocs, nulls, frees; /* what this thread saw succeed or fail */
    unsigned long passed;               /* frees of blocks another thread allocated */
    bool oversize;                      /* asks for OVERSIZED now and then */
} worker;

static uint32_t next_random(worker *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return (uint32_t)(w->rng >> 32);
}

static uint32_t random_size(worker *w)
{
    size_t span = current->max_size - current->min_size + 1;
    return (uint32_t)(current->min_size + next_random(w) % span);
}

/* Lock acquisitions of the call just made (takes[] was reset before it). */
static void check_alloc_takes(void)
{
    if (current->locks == 0) {
        return;
    }
    EXPECT(takes[0] >= 1 && takes[0] <= current->alloc_takes, "%s: an alloc took its lock %u times",
           current->name, takes[0]);
    if (current->locks > 1) {
        EXPECT(takes[1] <= 1, "%s: an alloc took its page source's lock %u times", current->name, takes[1]);
    }
}

static void check_free_takes(void)
{
    if (current->locks == 0) {
        return;
    }
    EXPECT(takes[0] == 1, "%s: a free took its lock %u times", current->name, takes[0]);
    if (current->locks > 1) {
        EXPECT(takes[1] == 0, "%s: a free took its page source's lock", current->name);
    }
}

/* An alloc through the view, checked: NULL, or aligned and recorded in *it. */
static bool alloc_item(worker *w, item *it)
{
    uint32_t size = random_size(w);
    bool oversized = w->oversize && next_random(w) % OVERSIZED_EVERY == 0;
    reset_takes();
    void *p = pk_alloc(subj.view, oversized ? OVERSIZED : size);
    check_alloc_takes();
    EXPECT(!oversized || p == NULL, "%s: %u bytes served", current->name, OVERSIZED);
    if (p == NULL) {
        w->nulls++;
        return false;
    }
    EXPECT((uintptr_t)p % PK_MAX_ALIGN == 0, "%s: %p misaligned", current->name, p);
    w->allocs++;
    *it = (item){p, size, w->id, ++w->seq};
    stamp(it);
    return true;
}

static void free_item(worker *w, const item *it)
{
    if (it->p == NULL) {
        return; /* an alloc that failed (already reported) */
    }
    EXPECT(stamp_intact(it), "%s: block %p (%u bytes) of thread %u, #%u, overwritten", current->name,
           (void *)it->p, it->size, it->thread, it->seq);
    reset_takes();
    pk_status status = pk_free(subj.view, it->p);
    check_free_takes();
    EXPECT(status == PK_OK, "%s: free of %p: %s", current->name, (void *)it->p, pk_status_str(status));
    w->frees++;
}

/* A stats snapshot is taken under the lock: whatever the others do, it must
 * be consistent in itself and with the previous one. */
static void check_snapshot(const pk_stats *s, const pk_stats *before)
{
    const char *n = current->name;
    /* (The arena's frees are no-ops that count: its live falls at reset.) */
    EXPECT(current->alloc_only || (s->frees <= s->allocs && s->live == s->allocs - s->frees),
           "%s: live %zu, allocs %llu, frees %llu", n, s->live, (unsigned long long)s->allocs,
           (unsigned long long)s->frees);
    EXPECT(s->live <= s->peak_live && s->peak_live <= subj.max_live, "%s: live %zu, peak %zu, most %zu", n,
           s->live, s->peak_live, subj.max_live);
    /* (A slab cache's capacity falls when it shrinks; its peak stays.) */
    EXPECT(s->in_use <= s->capacity && s->in_use <= s->peak_in_use && s->peak_in_use <= subj.max_bytes &&
               s->capacity <= subj.max_bytes,
           "%s: in_use %zu, peak %zu, capacity %zu", n, s->in_use, s->peak_in_use, s->capacity);
    EXPECT(s->requested <= s->in_use && s->free_bytes <= s->capacity, "%s: requested %zu, in_use %zu", n,
           s->requested, s->in_use);
    EXPECT(s->rejected == 0, "%s: %llu rejected", n, (unsigned long long)s->rejected);
    if (subj.block_size != 0) {
        EXPECT(s->in_use == s->live * subj.block_size && s->block_size == subj.block_size,
               "%s: in_use %zu for %zu live blocks", n, s->in_use, s->live);
    }
    if (!current->requested_exact && !PK_DEBUG) {
        EXPECT(s->requested == s->in_use, "%s: requested %zu, in_use %zu", n, s->requested, s->in_use);
    }
    if (before != NULL) {
        EXPECT(s->allocs >= before->allocs && s->frees >= before->frees && s->failures >= before->failures &&
                   s->peak_live >= before->peak_live,
               "%s: a counter went back", n);
    }
}

/* ---- The ring: thread i sends to thread i + 1. */

typedef struct {
    pthread_mutex_t lock;
    item slots[RING];
    size_t head, count;
} ring;

static ring rings[THREADS];

static bool ring_put(ring *r, const item *it)
{
    pthread_mutex_lock(&r->lock);
    bool ok = r->count < RING;
    if (ok) {
        r->slots[(r->head + r->count++) % RING] = *it;
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}

static bool ring_full(ring *r)
{
    pthread_mutex_lock(&r->lock);
    bool full = r->count == RING;
    pthread_mutex_unlock(&r->lock);
    return full;
}

static bool ring_take(ring *r, item *it)
{
    pthread_mutex_lock(&r->lock);
    bool ok = r->count > 0;
    if (ok) {
        *it = r->slots[r->head];
        r->head = (r->head + 1) % RING;
        r->count--;
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}

static void *ring_work(void *arg)
{
    worker *w = arg;
    ring *in = &rings[w->id];
    ring *out = &rings[(w->id + 1) % THREADS];
    for (size_t op = 0; op < ops_per_thread; op++) {
        item it;
        if (ring_take(in, &it)) {
            free_item(w, &it);
            w->passed++;
        } else if (ring_full(out)) { // NOLINT(bugprone-branch-clone): yields for another reason than the last branch
            sched_yield(); /* the next thread is behind (2 CPUs, 4 threads): let it run */
        } else if (alloc_item(w, &it)) {
            if (!ring_put(out, &it)) {
                free_item(w, &it); /* (it filled up meanwhile: free it here) */
            }
        } else {
            sched_yield(); /* dry (or oversized): let the others free */
        }
    }
    return NULL;
}

/* The observer, a fifth thread that never allocates: stats snapshots, check
 * and the entry's maintenance while the four run. (Its calls are the only
 * ones it makes, so a read of the allocator's state outside the lock has no
 * happens-before with the workers' writes: ThreadSanitizer sees it.) */
static atomic_bool workers_done;
static unsigned long snapshots;

static void *observe(void *arg)
{
    (void)arg;
    pk_stats before, now;
    for (unsigned long n = 0; !atomic_load(&workers_done); n++) {
        if (current->locks != 0) {
            pk_stats_get(subj.view, &now);
            check_snapshot(&now, n > 0 ? &before : NULL);
            before = now;
            if (n % 16 == 0) {
                EXPECT(pk_check(subj.view) == PK_OK, "%s: check failed under load", current->name);
            }
        } else {
            /* Lock-free: each counter is exact, a snapshot of several may
             * mix moments; still, no bound may be broken. */
            pk_stats_get(subj.view, &now);
            EXPECT(now.live <= subj.max_live && now.peak_live <= subj.max_live,
                   "%s: %zu live, peak %zu, in a pool of %zu", current->name, now.live, now.peak_live,
                   subj.max_live);
        }
        if (current->tick != NULL && n % 16 == 0) {
            current->tick();
        }
        snapshots = n + 1;
        sched_yield();
    }
    return NULL;
}

/* ---- The arena's rounds: allocate until exhausted, verify, reset. */

#define ARENA_MOST (ARENA_BUFFER / 16u)
static item arena_items[THREADS][ARENA_MOST];
static size_t arena_count[THREADS];
static bool arena_stop;
static unsigned long arena_rounds;

static int by_address(const void *x, const void *y)
{
    const item *a = x, *b = y;
    return a->p < b->p ? -1 : a->p > b->p;
}

static item arena_sorted[ARENA_MOST];

/* Thread 0, between barriers: the round's blocks and stats, then the reset. */
static void arena_round_end(const worker *workers, size_t *ops_done)
{
    const char *n = current->name;
    size_t total = 0, requested = 0;
    unsigned long allocs = 0, nulls = 0, frees = 0;
    for (size_t t = 0; t < THREADS; t++) {
        memcpy(arena_sorted + total, arena_items[t], arena_count[t] * sizeof(item));
        total += arena_count[t];
        for (size_t i = 0; i < arena_count[t]; i++) {
            requested += arena_items[t][i].size;
        }
        allocs += workers[t].allocs;
        nulls += workers[t].nulls;
        frees += workers[t].frees;
    }
    /* Every block distinct, inside the buffer, none overlapping the next. */
    qsort(arena_sorted, total, sizeof(item), by_address);
    for (size_t i = 0; i < total; i++) {
        const item *it = &arena_sorted[i];
        EXPECT(it->p >= arena_buffer && it->p + it->size <= arena_buffer + sizeof arena_buffer,
               "%s: block %p outside the buffer", n, (void *)it->p);
        EXPECT(i + 1 == total || it->p + it->size <= arena_sorted[i + 1].p, "%s: blocks %p and %p overlap", n,
               (void *)it->p, (void *)arena_sorted[i + 1].p);
    }
    pk_stats s;
    pk_stats_get(subj.view, &s);
    arena_rounds++;
    EXPECT(s.live == total && s.peak_live >= total && s.allocs == allocs && s.frees == frees &&
               s.failures == nulls && nulls == THREADS * arena_rounds && s.rejected == 0,
           "%s: round %lu: live %zu of %zu, allocs %llu of %lu, failures %llu of %lu", n, arena_rounds, s.live,
           total, (unsigned long long)s.allocs, allocs, (unsigned long long)s.failures, nulls);
    EXPECT(s.requested == requested && s.in_use >= requested && s.in_use <= s.capacity &&
               s.peak_in_use <= s.capacity && s.capacity <= sizeof arena_buffer,
           "%s: requested %zu of %zu, in_use %zu", n, s.requested, requested, s.in_use);
    EXPECT(pk_check(subj.view) == PK_OK, "%s: check failed", n);
    current->reset();
    pk_stats_get(subj.view, &s);
    EXPECT(s.live == 0 && s.in_use == 0 && s.requested == 0 && s.allocs == allocs, "%s: after reset: live %zu",
           n, s.live);
    *ops_done = allocs + nulls + frees;
    arena_stop = *ops_done >= ops_per_thread * THREADS;
}

static worker *all_workers;

static void *arena_work(void *arg)
{
    worker *w = arg;
    size_t ops_done = 0;
    for (;;) {
        pthread_barrier_wait(&barrier);
        if (arena_stop) {
            return NULL;
        }
        item it;
        arena_count[w->id] = 0;
        while (arena_count[w->id] < ARENA_MOST && alloc_item(w, &it)) {
            arena_items[w->id][arena_count[w->id]++] = it;
        }
        pthread_barrier_wait(&barrier);
        /* Verify and "free" (a no-op for the arena: counted) another's blocks. */
        uint32_t other = (w->id + 1) % THREADS;
        for (size_t i = 0; i < arena_count[other]; i++) {
            free_item(w, &arena_items[other][i]);
        }
        pthread_barrier_wait(&barrier);
        if (w->id == 0) {
            arena_round_end(all_workers, &ops_done);
        }
    }
}

/* ---- The runs. */

static void start_case(const allocator_case *c)
{
    current = c;
    memset(&subj, 0, sizeof subj);
    (void)thread_failures_take(NULL, 0);
    atomic_store(&faults_seen, 0);
    pk_set_fault_handler(count_any_fault, NULL);
    tlocks_init();
    c->setup(&subj);
    assert_non_null(subj.view);
    size_t ops = random_ops();
    ops_per_thread = ops / THREADS;
    assert_true(ops_per_thread > 0);
}

/* The locks after a run: balanced, never nested nor held together, and taken
 * at least once for every alloc and free. */
static void check_locks(unsigned long calls)
{
    for (unsigned i = 0; i < current->locks; i++) {
        const tlock *t = &tlocks[i];
        assert_int_equal(t->taken, t->released);
        assert_int_equal(atomic_load(&t->nested), 0);
        assert_int_equal(atomic_load(&t->stray_unlocks), 0);
        assert_int_equal(atomic_load(&t->held_together), 0);
        assert_true(t->taken > 0);
    }
    if (current->locks != 0) {
        assert_true(tlocks[0].taken >= calls);
    }
}

static void run_workers(void *(*fn)(void *), worker *workers, bool oversize)
{
    pthread_t threads[THREADS];
    all_workers = workers;
    for (uint32_t i = 0; i < THREADS; i++) {
        workers[i] = (worker){.id = i, .rng = mix((uint64_t)i << 8 | (uint64_t)(current - cases)) | 1,
                              .oversize = oversize};
        assert_int_equal(pthread_create(&threads[i], NULL, fn, &workers[i]), 0);
    }
    for (size_t i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    }
}

static void test_ring(const allocator_case *c)
{
    start_case(c);
    for (size_t i = 0; i < THREADS; i++) {
        pthread_mutex_init(&rings[i].lock, NULL);
        rings[i].head = rings[i].count = 0;
    }
    worker workers[THREADS];
    pthread_t observer;
    atomic_store(&workers_done, false);
    assert_int_equal(pthread_create(&observer, NULL, observe, NULL), 0);
    run_workers(ring_work, workers, true);
    atomic_store(&workers_done, true);
    assert_int_equal(pthread_join(observer, NULL), 0);

    /* Every block is accounted for: those still in flight go back now. */
    worker drain = {.id = THREADS};
    for (size_t i = 0; i < THREADS; i++) {
        for (item it; ring_take(&rings[i], &it);) {
            free_item(&drain, &it);
        }
    }
    assert_no_failure();
    /* The drain freed only blocks the workers allocated: each was passed. */
    // cppcheck-suppress duplicateAssignExpression
    unsigned long allocs = 0, nulls = 0, frees = drain.frees, passed = drain.frees;
    for (size_t i = 0; i < THREADS; i++) {
        allocs += workers[i].allocs;
        nulls += workers[i].nulls;
        frees += workers[i].frees;
        passed += workers[i].passed;
    }
    pk_stats s;
    pk_stats_get(subj.view, &s);
    check_snapshot(&s, NULL);
    assert_no_failure();
    assert_int_equal(s.live, 0);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.requested, 0);
    assert_int_equal(s.allocs, allocs);
    assert_int_equal(s.frees, frees);
    assert_int_equal(frees, allocs);
    assert_int_equal(s.failures, nulls);
    assert_int_equal(s.rejected, 0);
    /* Real work was done: a thirty-second of the operations at least
     * allocated (a thread whose successor is descheduled spends its
     * operations yielding at a full ring: under valgrind, which runs one
     * thread at a time, an eighth was not always reached). */
    assert_true(allocs >= ops_per_thread / 8);
    assert_true(passed * 4 >= allocs * 3);      /* mostly freed on another thread */
    assert_true(nulls > allocs / (2 * OVERSIZED_EVERY)); /* some failures, counted */
    assert_true(s.peak_live > 0 && s.peak_live <= subj.max_live);
    assert_int_equal(pk_check(subj.view), PK_OK);
    check_locks(allocs + nulls + frees);
    if (c->finish != NULL) {
        c->finish();
    }
    assert_int_equal(atomic_load(&faults_seen), 0);
    print_message("%-9s %lu allocs (%lu freed on another thread), %lu failures, peak %zu live, %lu snapshots\n",
                  c->name, allocs, passed, nulls, s.peak_live, snapshots);
    pk_set_fault_handler(NULL, NULL);
}

static void test_arena_rounds(const allocator_case *c)
{
    start_case(c);
    arena_stop = false;
    arena_rounds = 0;
    if (pthread_barrier_init(&barrier, NULL, THREADS) != 0) {
        fail();
    }
    worker workers[THREADS];
    run_workers(arena_work, workers, false);
    pthread_barrier_destroy(&barrier);
    assert_no_failure();
    unsigned long allocs = 0, nulls = 0, frees = 0;
    for (size_t i = 0; i < THREADS; i++) {
        allocs += workers[i].allocs;
        nulls += workers[i].nulls;
        frees += workers[i].frees;
    }
    assert_int_equal(frees, allocs);
    assert_int_equal(nulls, THREADS * arena_rounds);
    assert_true(arena_rounds >= 2);
    pk_stats s;
    pk_stats_get(subj.view, &s);
    assert_int_equal(s.allocs, allocs);
    assert_int_equal(s.failures, nulls);
    assert_int_equal(s.rejected, 0);
    assert_true(s.peak_live <= subj.max_live);
    assert_int_equal(pk_check(subj.view), PK_OK);
    check_locks(allocs + nulls + frees);
    assert_int_equal(atomic_load(&faults_seen), 0);
    print_message("%-9s %lu allocs in %lu rounds\n", c->name, allocs, arena_rounds);
    pk_set_fault_handler(NULL, NULL);
}

static void test_threads(void **state)
{
    const allocator_case *c = *state;
    if (c->alloc_only) {
        test_arena_rounds(c);
    } else {
        test_ring(c);
    }
}

/* ---- Exact stats at barriers. */

#define STATS_ROUNDS 8
#define STATS_MOST 16 /* blocks per thread */
static item held[THREADS][STATS_MOST];
static size_t held_count; /* k, this round */

static uint32_t known_size(uint32_t thread, unsigned round, size_t i)
{
    size_t span = current->max_size - current->min_size + 1;
    return (uint32_t)(current->min_size + (thread * 131u + round * 37u + i * 71u) % span);
}

/* Thread 0, at a barrier: the stats against the blocks held[][from..k). */
static void expect_stats(unsigned round, size_t from, unsigned long allocs, unsigned long frees)
{
    const char *n = current->name;
    size_t live = 0, requested = 0, in_use = 0;
    for (size_t t = 0; t < THREADS; t++) {
        for (size_t i = from; i < held_count; i++) {
            const item *it = &held[t][i];
            if (it->p == NULL) {
                continue;
            }
            live++;
            requested += it->size;
            in_use += current->granted != NULL ? current->granted(it->p) : subj.view->ops->usable_size(subj.view->self, it->p);
        }
    }
    pk_stats s;
    pk_stats_get(subj.view, &s);
    check_snapshot(&s, NULL);
    EXPECT(s.live == live, "%s: round %u: live %zu, expected %zu", n, round, s.live, live);
    EXPECT(s.allocs == allocs && s.frees == frees && s.failures == 0,
           "%s: round %u: allocs %llu (expected %lu), frees %llu (%lu), failures %llu", n, round,
           (unsigned long long)s.allocs, allocs, (unsigned long long)s.frees, frees,
           (unsigned long long)s.failures);
    if (!current->alloc_only) {
        EXPECT(s.in_use == in_use, "%s: round %u: in_use %zu, expected %zu", n, round, s.in_use, in_use);
    }
    /* Debug builds (SPEC.md) make requested exact for more allocators; until
     * the debug layer (issue 5) records it, those may still say in_use. */
    bool exact = current->requested_exact;
    bool either = !exact && PK_DEBUG && current->requested_exact_debug;
    EXPECT(s.requested == (exact ? requested : s.in_use) || (either && s.requested == requested),
           "%s: round %u: requested %zu (sum %zu, in_use %zu)", n, round, s.requested, requested, s.in_use);
    EXPECT(pk_check(subj.view) == PK_OK, "%s: check failed", n);
}

static void *stats_work(void *arg)
{
    worker *w = arg;
    unsigned long allocs = 0, frees = 0;
    uint32_t other = (w->id + 1) % THREADS;
    for (unsigned round = 0; round < STATS_ROUNDS; round++) {
        size_t k = 1 + (round * 5u) % STATS_MOST;
        if (w->id == 0) {
            held_count = k;
        }
        pthread_barrier_wait(&barrier);
        for (size_t i = 0; i < k; i++) {
            uint32_t size = known_size(w->id, round, i);
            reset_takes();
            void *p = pk_alloc(subj.view, size);
            check_alloc_takes();
            EXPECT(p != NULL, "%s: alloc of %u bytes failed", current->name, size);
            /* (A NULL is kept, with size 0, so that the barriers still meet.) */
            held[w->id][i] = (item){p, p != NULL ? size : 0, w->id, round << 8 | (uint32_t)i};
            if (p != NULL) {
                stamp(&held[w->id][i]);
            }
        }
        allocs += THREADS * k;
        pthread_barrier_wait(&barrier);
        if (w->id == 0) {
            expect_stats(round, 0, allocs, frees);
        }
        pthread_barrier_wait(&barrier);
        if (current->alloc_only) {
            /* The arena: frees are counted no-ops; reset gives it all back. */
            for (size_t i = 0; i < k; i++) {
                free_item(w, &held[other][i]);
            }
            frees += THREADS * k;
            pthread_barrier_wait(&barrier);
            if (w->id == 0) {
                expect_stats(round, 0, allocs, frees);
                current->reset();
                held_count = 0;
                expect_stats(round, 0, allocs, frees);
            }
            pthread_barrier_wait(&barrier);
            continue;
        }
        /* Another thread frees the first half of each thread's blocks, then the rest. */
        size_t half = k / 2;
        for (size_t i = 0; i < half; i++) {
            free_item(w, &held[other][i]);
        }
        frees += THREADS * half;
        pthread_barrier_wait(&barrier);
        if (w->id == 0) {
            expect_stats(round, half, allocs, frees);
        }
        pthread_barrier_wait(&barrier);
        for (size_t i = half; i < k; i++) {
            free_item(w, &held[other][i]);
        }
        frees += THREADS * (k - half);
        pthread_barrier_wait(&barrier);
        if (w->id == 0) {
            expect_stats(round, k, allocs, frees);
        }
    }
    return NULL;
}

static void test_stats(void **state)
{
    const allocator_case *c = *state;
    start_case(c);
    /* Every request succeeds: 4 x 16 blocks of at most 512 bytes fit each buffer. */
    if (pthread_barrier_init(&barrier, NULL, THREADS) != 0) {
        fail();
    }
    worker workers[THREADS];
    run_workers(stats_work, workers, false);
    pthread_barrier_destroy(&barrier);
    assert_no_failure();
    pk_stats s;
    pk_stats_get(subj.view, &s);
    if (!c->alloc_only) {
        assert_int_equal(s.live, 0);
        assert_int_equal(s.in_use, 0);
        assert_int_equal(s.allocs, s.frees);
    }
    assert_int_equal(s.requested, 0);
    assert_int_equal(pk_check(subj.view), PK_OK);
    check_locks(0);
    if (c->finish != NULL) {
        c->finish();
    }
    assert_int_equal(atomic_load(&faults_seen), 0);
    pk_set_fault_handler(NULL, NULL);
}

int main(void)
{
    static struct CMUnitTest tests[2 * CASE_COUNT];
    static char names[2 * CASE_COUNT][32];
    for (size_t i = 0; i < CASE_COUNT; i++) {
        snprintf(names[2 * i], sizeof names[0], "threads_%s", cases[i].name);
        snprintf(names[2 * i + 1], sizeof names[0], "stats_%s", cases[i].name);
        tests[2 * i] = (struct CMUnitTest){names[2 * i], test_threads, NULL, NULL, (void *)&cases[i]};
        tests[2 * i + 1] = (struct CMUnitTest){names[2 * i + 1], test_stats, NULL, NULL, (void *)&cases[i]};
    }
    return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
