/*
 * Alloc+free pairs of a constructed object through function pointers: a slab
 * cache (the constructor runs when a slab is made, never in the loop), against
 * pk_pool and glibc malloc, which construct the object at every allocation,
 * and empty functions (the call overhead to subtract).
 *
 * The object is an I/O request descriptor whose constructor does the work a
 * driver does once per descriptor: a list head linked to itself, a 16-entry
 * scatter-gather table set to its defaults, a zeroed command block, and a
 * 16-entry CRC-32 nibble table computed for the descriptor's checksum unit.
 *
 * The command line is bench/pairs.h's (MODE PAIRS, --modes, --time).
 *
 * Modes: pk_slab (another object of the slab stays live, so the slab stays
 * partial: a cache in use), pk_slab_empties (the only object: every pair
 * moves the slab from empty to partial and back), pk_pool+ctor, malloc+ctor.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pairs.h"
#include "poolkit/buddy.h"
#include "poolkit/pool.h"
#include "poolkit/slab.h"

typedef struct list_node {
    struct list_node *next, *prev;
} list_node;

typedef struct {
    uint32_t magic;
    uint32_t state;
    list_node queue;
    uint64_t sg_addr[16];
    uint32_t sg_len[16];
    uint8_t cdb[32];
    uint32_t crc_table[16];
} request;

#define REQUEST_MAGIC 0x52455155u
#define OBJECTS 64

__attribute__((noinline)) static void request_ctor(void *obj, void *ctx)
{
    (void)ctx;
    request *r = obj;
    r->magic = REQUEST_MAGIC;
    r->state = 0;
    r->queue.next = r->queue.prev = &r->queue;
    for (unsigned i = 0; i < 16; i++) {
        r->sg_addr[i] = 0;
        r->sg_len[i] = 4096;
    }
    memset(r->cdb, 0, sizeof r->cdb);
    for (uint32_t n = 0; n < 16; n++) {
        uint32_t c = n;
        for (unsigned k = 0; k < 4; k++) {
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
        }
        r->crc_table[n] = c;
    }
}

/* The slab cache over a buddy, and a second cache whose slab empties. */
static _Alignas(4096) unsigned char buddy_storage[PK_BUDDY_BUFFER_SIZE(1u << 16, 0)];
static pk_buddy buddy;
static pk_slab_cache cache, lonely_cache;

PK_POOL_DEFINE(request_pool, sizeof(request), OBJECTS, 0);

typedef void *(*slab_alloc_fn)(pk_slab_cache *);
typedef pk_status (*slab_free_fn)(pk_slab_cache *, void *);
typedef void *(*pool_alloc_fn)(pk_pool *);
typedef pk_status (*pool_free_fn)(pk_pool *, void *);
typedef void (*ctor_fn)(void *, void *);
typedef void *(*libc_alloc_fn)(size_t);
typedef void (*libc_free_fn)(void *);

static request empty_object;
static void *empty_alloc(pk_slab_cache *c) { (void)c; return &empty_object; }
static pk_status empty_free(pk_slab_cache *c, void *p) { (void)c; (void)p; return PK_OK; }

/* Each loop calls through volatile function pointers, so nothing is inlined. */
__attribute__((noinline)) static void run_pairs_empty(pk_slab_cache *c, long pairs)
{
    slab_alloc_fn volatile alloc = empty_alloc;
    slab_free_fn volatile release = empty_free;
    for (long i = 0; i < pairs; i++) {
        void *obj = alloc(c);
        if (obj == NULL) {
            abort();
        }
        (void)release(c, obj);
    }
}

__attribute__((noinline)) static void run_pairs_slab(pk_slab_cache *c, long pairs)
{
    slab_alloc_fn volatile alloc = pk_slab_alloc;
    slab_free_fn volatile release = pk_slab_free;
    for (long i = 0; i < pairs; i++) {
        request *obj = alloc(c);
        if (obj == NULL || obj->magic != REQUEST_MAGIC) {
            abort();
        }
        (void)release(c, obj);
    }
}

__attribute__((noinline)) static void run_pairs_pool_ctor(pk_pool *p, long pairs)
{
    pool_alloc_fn volatile alloc = pk_pool_alloc;
    pool_free_fn volatile release = pk_pool_free;
    ctor_fn volatile construct = request_ctor;
    for (long i = 0; i < pairs; i++) {
        request *obj = alloc(p);
        if (obj == NULL) {
            abort();
        }
        construct(obj, NULL);
        if (obj->magic != REQUEST_MAGIC) {
            abort();
        }
        (void)release(p, obj);
    }
}

__attribute__((noinline)) static void run_pairs_malloc_ctor(long pairs)
{
    libc_alloc_fn volatile alloc = malloc;
    libc_free_fn volatile release = free;
    ctor_fn volatile construct = request_ctor;
    for (long i = 0; i < pairs; i++) {
        request *obj = alloc(sizeof(request));
        if (obj == NULL) {
            abort();
        }
        construct(obj, NULL);
        if (obj->magic != REQUEST_MAGIC) {
            abort();
        }
        release(obj);
    }
}

static void run_empty(long pairs) { run_pairs_empty(&cache, pairs); }
static void run_slab(long pairs) { run_pairs_slab(&cache, pairs); }
static void run_slab_empties(long pairs) { run_pairs_slab(&lonely_cache, pairs); }
static void run_pool(long pairs) { run_pairs_pool_ctor(&request_pool, pairs); }
static void run_malloc(long pairs) { run_pairs_malloc_ctor(pairs); }

static const bench_mode modes[] = {
    {"empty", run_empty},
    {"pk_slab", run_slab},
    {"pk_slab_empties", run_slab_empties},
    {"pk_pool+ctor", run_pool},
    {"malloc+ctor", run_malloc},
};
#define MODE_COUNT (sizeof modes / sizeof modes[0])

static void setup(void)
{
    if (pk_buddy_init(&buddy, buddy_storage, sizeof buddy_storage, 0) != PK_OK) {
        abort();
    }
    pk_page_source src = pk_page_source_buddy(&buddy);
    if (pk_slab_init(&cache, "requests", sizeof(request), 0, request_ctor, NULL, NULL, &src, 4096) != PK_OK ||
        pk_slab_init(&lonely_cache, "lonely", sizeof(request), 0, request_ctor, NULL, NULL, &src, 4096) !=
            PK_OK) {
        abort();
    }
    /* One object of `cache` stays live, so its slab stays partial; warm the
     * others so that the first pair is no outlier. */
    if (pk_slab_alloc(&cache) == NULL) {
        abort();
    }
    (void)pk_slab_free(&lonely_cache, pk_slab_alloc(&lonely_cache));
    (void)pk_pool_free(&request_pool, pk_pool_alloc(&request_pool));
    free(malloc(sizeof(request)));
}

int main(int argc, char **argv)
{
    return bench_pairs_main("bench_slab", argc, argv, modes, MODE_COUNT, setup);
}
