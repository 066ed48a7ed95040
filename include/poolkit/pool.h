/*
 * Fixed-size block pool: O(1) alloc and free of equal blocks from a buffer the
 * caller owns.
 *
 * Layout of the buffer: the blocks (each `stride` bytes: the block size rounded
 * up to the alignment, at least sizeof(size_t)), then a usage map of one byte
 * per block. The map lives outside the blocks, so a double free is caught in
 * O(1) and a live block's bytes are entirely the client's. A free block holds
 * the index of the next free block in its first bytes. (A byte rather than a
 * bit per block: it keeps alloc+free at 29 instructions instead of 41, see the
 * README, for 1/stride of the memory: 1.6% with 64-byte blocks.)
 *
 * Blocks are carved lazily: init and PK_POOL_DEFINE touch no block, and a block
 * is first used when the free list is empty. The capacity depends only on the
 * buffer's size, the block size and the alignment, never on the buffer's
 * address: PK_POOL_BUFFER_SIZE(bs, n, a) bytes always give exactly n blocks.
 *
 * Checks that stay on in release builds: foreign pointers, pointers inside a
 * block or its padding, double frees (and frees of blocks never handed out),
 * free-list links damaged by a write after free (found at alloc, reported as
 * PK_ERR_CORRUPT, the free list is then rebuilt from the usage map).
 *
 * Debug builds (PK_DEBUG, poolkit/debug.h): each block also holds a tag and
 * guards (the stride and PK_POOL_BUFFER_SIZE include them; the pointer handed
 * out lies after the tag and front guard), new blocks are filled, freed
 * blocks poisoned and held in a quarantine of PK_QUARANTINE_SIZE blocks that
 * count as free (an alloc drains it rather than fail; it empties when no
 * block is live). Also reported, with the block's allocation site and owner
 * and the call's site: PK_ERR_GUARD_CORRUPT (guard bytes written, found by
 * free, which frees the block all the same, or by check),
 * PK_ERR_USE_AFTER_FREE (poison written: found when the block leaves the
 * quarantine, is handed out again, or by check), PK_ERR_DOUBLE_FREE of a
 * quarantined block. There is no fast path: each call takes the lock.
 *
 * Thread and ISR safety: a pool is safe to share once a lock is set with
 * pk_pool_set_lock (before sharing it); alloc and free are ISR-safe when the
 * lock is (a PRIMASK critical section), or when only one context uses the pool.
 * The fault handler is called after the lock is released.
 * Each call takes the lock once (free(NULL) not at all). alloc and free hold
 * it for O(1): a free-list pop or push (or one block carved or drawn from the
 * reserve), a usage-map byte and the counters; only an alloc that finds a
 * free-list link damaged by a write after free holds it for O(n), to rebuild
 * the list once. available, usable_size and stats hold it for O(1),
 * reset_peaks for O(free blocks), check for O(n).
 */
#ifndef POOLKIT_POOL_H
#define POOLKIT_POOL_H

#include "poolkit/allocator.h"
#include "poolkit/common.h"
#include "poolkit/debug.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Pool state. Public only so that PK_POOL_DEFINE can build one statically;
 * use the functions below, never the fields. */
typedef struct pk_pool {
    /* Read by the fast paths. */
    size_t free_head;       /* first free block's index, or PK_POOL_NONE (always while locked) */
    size_t fast_limit;      /* carved, or 0 while a lock is set (forces the locked path) */
    unsigned char *base;    /* block 0 */
    unsigned char *usage;   /* usage[i]: PK_POOL_LIVE or PK_POOL_FREE (valid below carved) */
    size_t stride;          /* bytes from one block to the next */
    size_t inverse;         /* inverse of stride's odd part, modulo 2^bits(size_t) */
    unsigned shift;         /* trailing zero bits of stride */
    uint64_t allocs;        /* live = allocs - frees */
    uint64_t frees;
    /* Read by the slow paths. */
    size_t carved;          /* blocks ever handed out: 0..carved-1 */
    size_t count;           /* blocks the buffer holds */
    size_t locked_head;     /* the free list while a lock is set, else PK_POOL_NONE */
    size_t reserve_head;    /* free blocks set aside by reset_peaks, or PK_POOL_NONE */
    size_t peak_base;       /* live when the peaks were last reset */
    size_t draws;           /* blocks taken from the reserve or carved since then */
    size_t peak_floor;      /* a peak kept across a free-list rebuild */
    size_t block_size;
    size_t align;
    uint64_t failures;
    uint64_t rejected;
    const char *name;
    pk_lock lock;
    pk_allocator view;
#if PK_DEBUG
    pk_debug_state debug;
#endif
} pk_pool;

#define PK_POOL_NONE ((size_t)-1)
#define PK_POOL_FREE 0u
#define PK_POOL_LIVE 1u

/* Layout arithmetic shared by the macros and pk_pool_init (internal). */
#define PK_POOL_ALIGN_(align) ((size_t)((align) != 0 ? (size_t)(align) : (size_t)PK_MAX_ALIGN))
#define PK_POOL_MAX_(a, b) ((size_t)(a) > (size_t)(b) ? (size_t)(a) : (size_t)(b))
/* Debug builds: each block also holds its tag and guards (poolkit/debug.h). */
#if PK_DEBUG
#define PK_POOL_DEBUG_BYTES_(align) PK_DEBUG_OVERHEAD_(PK_POOL_ALIGN_(align))
#define PK_POOL_DEBUG_INIT_ , PK_DEBUG_STATE_INIT_
#else
#define PK_POOL_DEBUG_BYTES_(align) 0u
#define PK_POOL_DEBUG_INIT_
#endif
#define PK_POOL_STRIDE_(bs, align)                                                   \
    ((PK_POOL_MAX_((size_t)(bs) + PK_POOL_DEBUG_BYTES_(align), sizeof(size_t)) +     \
      PK_POOL_ALIGN_(align) - 1u) & ~(PK_POOL_ALIGN_(align) - 1u))
#define PK_POOL_LOWBIT_(x) ((size_t)(x) & (~(size_t)(x) + 1u))
#define PK_POOL_LOG2_POW2_(x)                                                        \
    ((unsigned)(((size_t)(x) & (size_t)0xAAAAAAAAAAAAAAAAull) != 0) |                \
     ((unsigned)(((size_t)(x) & (size_t)0xCCCCCCCCCCCCCCCCull) != 0) << 1) |         \
     ((unsigned)(((size_t)(x) & (size_t)0xF0F0F0F0F0F0F0F0ull) != 0) << 2) |         \
     ((unsigned)(((size_t)(x) & (size_t)0xFF00FF00FF00FF00ull) != 0) << 3) |         \
     ((unsigned)(((size_t)(x) & (size_t)0xFFFF0000FFFF0000ull) != 0) << 4) |         \
     ((unsigned)(((size_t)(x) & (size_t)0xFFFFFFFF00000000ull) != 0) << 5))
/* Newton's iteration for the inverse of an odd d modulo 2^n: d is its own
 * inverse modulo 8, and each step doubles the correct low bits (5 steps: 96). */
#define PK_POOL_INV_STEP_(d, x) ((size_t)(x) * ((size_t)2u - (size_t)(d) * (size_t)(x)))
#define PK_POOL_INV_ODD_(d)                                                          \
    PK_POOL_INV_STEP_(d, PK_POOL_INV_STEP_(d, PK_POOL_INV_STEP_(d,                   \
        PK_POOL_INV_STEP_(d, PK_POOL_INV_STEP_(d, (size_t)(d))))))
#define PK_POOL_ODD_(x) ((size_t)(x) >> PK_POOL_LOG2_POW2_(PK_POOL_LOWBIT_(x)))

/* Bytes a buffer needs for `count` blocks of `block_size` bytes aligned to
 * `align` (0 = alignof(max_align_t)), whatever the buffer's own alignment:
 * worst-case padding, the blocks and the usage map. A constant expression when
 * the arguments are. */
#define PK_POOL_BUFFER_SIZE(block_size, count, align)                                \
    (PK_POOL_ALIGN_(align) - 1u +                                                    \
     (size_t)(count) * (PK_POOL_STRIDE_((block_size), (align)) + 1u))

/* Defines, at file scope, static storage for `count` blocks and a ready pool
 * `name` (external linkage: `extern pk_pool name;` reaches it from other
 * files), named #name in faults and reports. No heap, no init call, no
 * start-up cost: the pool is usable from the first instruction of main (and
 * before, once .bss is zeroed). Arguments are checked at compile time. */
#define PK_POOL_DEFINE(name, block_size, count, align)                               \
    PK_POOL_DEFINE_WITH_(name, block_size, count, align, , )

/* Same, with the pool private to the file (`static pk_pool name`). */
#define PK_POOL_DEFINE_STATIC(name, block_size, count, align)                        \
    PK_POOL_DEFINE_WITH_(name, block_size, count, align, , static)

/* Same, with the storage (blocks and usage map) placed in the linker section
 * `section` (a string), e.g. DMA-safe or tightly coupled RAM. */
#define PK_POOL_DEFINE_IN(name, block_size, count, align, section)                   \
    PK_POOL_DEFINE_WITH_(name, block_size, count, align, PK_SECTION(section), )

#define PK_POOL_DEFINE_WITH_(name, block_size, count, align, attributes, linkage)    \
    PK_STATIC_ASSERT((block_size) > 0, "pool block size must not be 0");             \
    PK_STATIC_ASSERT((count) > 0, "pool needs at least one block");                  \
    PK_STATIC_ASSERT((PK_POOL_ALIGN_(align) & (PK_POOL_ALIGN_(align) - 1u)) == 0,    \
                     "pool alignment must be a power of two");                      \
    PK_STATIC_ASSERT((size_t)(block_size) <= ((size_t)-1) / 2 &&                     \
                         (size_t)(count) <= ((size_t)-1) / 2 /                       \
                                                (PK_POOL_STRIDE_((block_size), (align)) + 1u), \
                     "pool too large for size_t");                                  \
    static struct {                                                                  \
        PK_ALIGNAS(PK_POOL_ALIGN_(align))                                           \
        unsigned char blocks[(size_t)(count) * PK_POOL_STRIDE_((block_size), (align))]; \
        unsigned char usage[(size_t)(count)];                                        \
    } name##_pk_storage attributes;                                                  \
    linkage pk_pool name = {PK_POOL_NONE,                                            \
                    0,                                                               \
                    name##_pk_storage.blocks,                                        \
                    name##_pk_storage.usage,                                         \
                    PK_POOL_STRIDE_((block_size), (align)),                          \
                    PK_POOL_INV_ODD_(PK_POOL_ODD_(PK_POOL_STRIDE_((block_size), (align)))), \
                    PK_POOL_LOG2_POW2_(PK_POOL_LOWBIT_(PK_POOL_STRIDE_((block_size), (align)))), \
                    0,                                                               \
                    0,                                                               \
                    0,                                                               \
                    (size_t)(count),                                                 \
                    PK_POOL_NONE,                                                    \
                    PK_POOL_NONE,                                                    \
                    0,                                                               \
                    0,                                                               \
                    0,                                                               \
                    (size_t)(block_size),                                            \
                    PK_POOL_ALIGN_(align),                                           \
                    0,                                                               \
                    0,                                                               \
                    #name,                                                           \
                    {0, 0, 0},                                                       \
                    {&pk_pool_allocator_ops, &name} PK_POOL_DEBUG_INIT_} /* NOLINT(bugprone-macro-parentheses): name is the pool's identifier, not an expression */

/* The generic-view operations of every pool (used by PK_POOL_DEFINE). */
extern const pk_allocator_ops pk_pool_allocator_ops;

/* Makes a pool of equal blocks in buf. O(1): no block is touched.
 * align 0 means alignof(max_align_t). The pool holds the largest count n with
 * PK_POOL_BUFFER_SIZE(block_size, n, align) <= buf_size.
 * Returns PK_ERR_INVALID_ARG, leaving *p untouched, iff p or buf is NULL,
 * block_size is 0, align is not 0 nor a power of two, the stride would
 * overflow size_t, or buf_size holds no block. Does not call the fault handler.
 * Not ISR-safe against other users of *p (it is not in use yet). */
pk_status pk_pool_init(pk_pool *p, void *buf, size_t buf_size, size_t block_size, size_t align);

/* A block of the pool's block size, aligned as asked at init, or NULL when all
 * blocks are live (counted as a failure, not a fault). O(1). ISR-safe as
 * described above. If the free list is found damaged (a client wrote to a
 * freed block), reports PK_ERR_CORRUPT, rebuilds the free list from the usage
 * map (O(n), once) and returns NULL. */
void *pk_pool_alloc(pk_pool *p);

/* Returns block to the pool. O(1). free(NULL) is a no-op returning PK_OK.
 * Misuse is reported once through the fault handler, returned, counted as
 * rejected, and changes nothing: PK_ERR_FOREIGN_PTR (not in the pool),
 * PK_ERR_MISALIGNED_PTR (inside a block or its padding), PK_ERR_DOUBLE_FREE
 * (the block is not allocated: freed already, or never handed out). */
pk_status pk_pool_free(pk_pool *p, void *block);

/* Blocks the pool holds. O(1). */
size_t pk_pool_capacity(const pk_pool *p);

/* Blocks free now. O(1); takes the lock. */
size_t pk_pool_available(const pk_pool *p);

/* Whether ptr points into the pool's blocks (any byte of any block, live or
 * free). O(1), ISR-safe, takes no lock. */
bool pk_pool_owns(const pk_pool *p, const void *ptr);

/* Bytes usable at block: the block size if block is a live block of the pool
 * (debug builds: the size requested: the block size for pk_pool_alloc),
 * else 0 (no fault). O(1); takes the lock. */
size_t pk_pool_usable_size(const pk_pool *p, const void *block);

/* Statistics (see pk_stats): capacity = blocks x block size, in_use = live
 * blocks x block size, requested = in_use (debug builds: exact, for blocks
 * from the generic view), largest_free = the block size when
 * a block is free. O(1); takes the lock. */
void pk_pool_stats(const pk_pool *p, pk_stats *out);

/* Sets peak_live and peak_in_use to the current values. O(free blocks): it
 * sets the free blocks aside so that the fast paths need not count the peak;
 * holds the lock that long (not for ISRs). A damaged free-list link is
 * reported as PK_ERR_CORRUPT (counted as rejected) and the free blocks are
 * set aside by the usage map instead, O(n); the peaks are reset all the
 * same. */
void pk_pool_reset_peaks(pk_pool *p);

/* Verifies every invariant: counters, free lists (no cycle, no link outside
 * the pool, no live block on them), usage map against lists and counters.
 * Returns PK_OK or the first problem (PK_ERR_CORRUPT), also reported through
 * the fault handler. Repairs nothing. O(n) in the blocks; holds the lock. */
pk_status pk_pool_check(const pk_pool *p);

/* Names the pool in faults and reports (the string is kept, not copied;
 * NULL restores "pool"). O(1). */
void pk_pool_set_name(pk_pool *p, const char *name);

/* Sets the lock taken around each operation (copied; NULL removes it).
 * Returns PK_ERR_INVALID_ARG, changing nothing, when exactly one of lock and
 * unlock is NULL. Call it before the pool is shared. O(1). */
pk_status pk_pool_set_lock(pk_pool *p, const pk_lock *lock);

/* The pool's generic view. O(1). */
pk_allocator *pk_pool_allocator(pk_pool *p);

/* Debug builds record each call's site (poolkit/debug.h). */
#if PK_DEBUG && !defined(PK_BUILDING_LIBRARY)
#define pk_pool_alloc(p) PK_DEBUG_AT_(pk_pool_alloc(p))
#define pk_pool_free(p, block) PK_DEBUG_AT_(pk_pool_free((p), (block)))
#endif

#ifdef __cplusplus
}
#endif

#endif
