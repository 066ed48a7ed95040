/*
 * Alloc+free pairs of 64-byte blocks through function pointers, for pk_pool,
 * pk_pool with a pthread mutex as its lock (pk_pthread_lock: the cost of the
 * lock, uncontended), the lock-free pk_atomic_pool, a bare intrusive free
 * list (the floor), glibc malloc, and empty functions (the call overhead to
 * subtract). All on one thread: bench_threads.c shares them between threads.
 *
 * The command line is bench/pairs.h's (MODE PAIRS, --modes, --time).
 */
#include <stdio.h>
#include <stdlib.h>

#include "pairs.h"
#include "poolkit/arena.h"
#include "poolkit/atomic_pool.h"
#include "poolkit/pool.h"
#include "poolkit/pthread_lock.h"

#define BLOCK_SIZE 64
#define BLOCKS 1024

PK_POOL_DEFINE(bench_pool, BLOCK_SIZE, BLOCKS, 0);
PK_POOL_DEFINE(bench_locked_pool, BLOCK_SIZE, BLOCKS, 0); /* its lock is set in setup */
static pthread_mutex_t bench_mutex = PTHREAD_MUTEX_INITIALIZER;

static pk_atomic_pool bench_atomic_pool;
static unsigned char atomic_storage[PK_ATOMIC_POOL_BUFFER_SIZE(BLOCK_SIZE, BLOCKS, 0)];

/* The textbook pool: free blocks linked through their first word. */
typedef struct free_block { struct free_block *next; } free_block;
typedef struct { free_block *head; } free_list;
static _Alignas(16) unsigned char list_storage[BLOCK_SIZE * BLOCKS];
static free_list bench_list;

static void *list_alloc(free_list *l)
{
    free_block *b = l->head;
    if (b != NULL) {
        l->head = b->next;
    }
    return b;
}

static void list_release(free_list *l, void *block)
{
    free_block *b = block;
    b->next = l->head;
    l->head = b;
}

static unsigned char empty_block[BLOCK_SIZE];
static void *empty_alloc(free_list *l) { (void)l; return empty_block; }
static void empty_release(free_list *l, void *block) { (void)l; (void)block; }

/* Each loop calls its allocator through volatile function pointers of the
 * allocator's own types, so that nothing is inlined and no wrapper is added. */
#define DEFINE_LOOP(loop, ctx_type, alloc_type, alloc_fn, free_type, free_fn) \
    __attribute__((noinline)) static void loop(ctx_type ctx, long pairs)     \
    {                                                                       \
        alloc_type volatile alloc = alloc_fn;                                \
        free_type volatile release = free_fn;                                \
        for (long i = 0; i < pairs; i++) {                                  \
            void *block = alloc(ctx);                                        \
            if (block == NULL) {                                            \
                abort();                                                    \
            }                                                               \
            (void)release(ctx, block);                                      \
        }                                                                   \
    }

typedef void *(*pool_alloc_fn)(pk_pool *);
typedef pk_status (*pool_free_fn)(pk_pool *, void *);
typedef void *(*atomic_alloc_fn)(pk_atomic_pool *);
typedef pk_status (*atomic_free_fn)(pk_atomic_pool *, void *);
typedef void *(*list_alloc_fn)(free_list *);
typedef void (*list_free_fn)(free_list *, void *);
typedef void *(*libc_alloc_fn)(size_t);
typedef void (*libc_free_fn)(void *);

DEFINE_LOOP(run_pairs_empty, free_list *, list_alloc_fn, empty_alloc, list_free_fn, empty_release)
DEFINE_LOOP(run_pairs_pk_pool, pk_pool *, pool_alloc_fn, pk_pool_alloc, pool_free_fn, pk_pool_free)
DEFINE_LOOP(run_pairs_pk_pool_locked, pk_pool *, pool_alloc_fn, pk_pool_alloc, pool_free_fn, pk_pool_free)
DEFINE_LOOP(run_pairs_pk_atomic_pool, pk_atomic_pool *, atomic_alloc_fn, pk_atomic_pool_alloc, atomic_free_fn,
            pk_atomic_pool_free)
DEFINE_LOOP(run_pairs_freelist, free_list *, list_alloc_fn, list_alloc, list_free_fn, list_release)

__attribute__((noinline)) static void run_pairs_malloc(size_t size, long pairs)
{
    libc_alloc_fn volatile alloc = malloc;
    libc_free_fn volatile release = free;
    for (long i = 0; i < pairs; i++) {
        void *block = alloc(size);
        if (block == NULL) {
            abort();
        }
        release(block);
    }
}

/* The arena has no free: each iteration allocates 64 bytes and calls the same
 * empty release as the empty loop, so that the difference is the alloc; the
 * arena is reset when full (once per BLOCKS allocations, off the common path). */
static pk_arena bench_arena;
static _Alignas(16) unsigned char arena_storage[BLOCK_SIZE * BLOCKS];
typedef void *(*arena_alloc_fn)(pk_arena *, size_t, size_t);
typedef void (*arena_release_fn)(pk_arena *, void *);
static void arena_release(pk_arena *a, void *block) { (void)a; (void)block; }

__attribute__((noinline)) static void run_pairs_pk_arena(pk_arena *ctx, long pairs)
{
    arena_alloc_fn volatile alloc = pk_arena_alloc;
    arena_release_fn volatile release = arena_release;
    for (long i = 0; i < pairs; i++) {
        void *block = alloc(ctx, BLOCK_SIZE, 0);
        if (block == NULL) {
            pk_arena_reset(ctx);
            block = alloc(ctx, BLOCK_SIZE, 0);
        }
        release(ctx, block);
    }
}

static void run_arena(long pairs) { run_pairs_pk_arena(&bench_arena, pairs); }

static void run_empty(long pairs) { run_pairs_empty(&bench_list, pairs); }
static void run_pool(long pairs) { run_pairs_pk_pool(&bench_pool, pairs); }
static void run_locked_pool(long pairs) { run_pairs_pk_pool_locked(&bench_locked_pool, pairs); }
static void run_atomic_pool(long pairs) { run_pairs_pk_atomic_pool(&bench_atomic_pool, pairs); }
static void run_list(long pairs) { run_pairs_freelist(&bench_list, pairs); }
static void run_malloc(long pairs) { run_pairs_malloc(BLOCK_SIZE, pairs); }

static const bench_mode modes[] = {
    {"empty", run_empty},
    {"pk_pool", run_pool},
    {"pk_pool_locked", run_locked_pool},
    {"pk_atomic_pool", run_atomic_pool},
    {"freelist", run_list},
    {"pk_arena", run_arena},
    {"malloc", run_malloc},
};
#define MODE_COUNT (sizeof modes / sizeof modes[0])

static void setup(void)
{
    for (size_t i = BLOCKS; i-- > 0;) {
        list_release(&bench_list, &list_storage[i * BLOCK_SIZE]);
    }
    pk_lock lock = pk_pthread_lock(&bench_mutex);
    if (pk_arena_init(&bench_arena, arena_storage, sizeof arena_storage) != PK_OK ||
        pk_pool_set_lock(&bench_locked_pool, &lock) != PK_OK ||
        pk_atomic_pool_init(&bench_atomic_pool, atomic_storage, sizeof atomic_storage, BLOCK_SIZE, 0) != PK_OK) {
        abort();
    }
    /* Warm the pools and malloc's caches so that the first pair is no outlier. */
    void *block = pk_pool_alloc(&bench_pool);
    (void)pk_pool_free(&bench_pool, block);
    block = pk_pool_alloc(&bench_locked_pool);
    (void)pk_pool_free(&bench_locked_pool, block);
    block = pk_atomic_pool_alloc(&bench_atomic_pool);
    (void)pk_atomic_pool_free(&bench_atomic_pool, block);
    free(malloc(BLOCK_SIZE));
}

int main(int argc, char **argv)
{
    return bench_pairs_main("bench_pool", argc, argv, modes, MODE_COUNT, setup);
}
