/*
 * Buddy allocator: power-of-two blocks split and merged in O(log n), in a
 * buffer the caller owns. The classic page allocator: slab caches take their
 * slabs from it (pk_page_source_buddy in poolkit/slab.h).
 *
 * Blocks. The managed region is N slots of min_block bytes; its base is
 * aligned absolutely to min_block. A block of order k is min_block << k bytes
 * and starts at a multiple of its own size relative to the base (so it is
 * aligned absolutely to min(its size, the base's alignment)). A request of
 * size bytes gets the smallest block that holds it: exactly a power of two
 * >= min_block gets a block of that size. The region need not be a power of
 * two: at init it is cut into the largest aligned blocks that fit (the
 * binary digits of N, largest first), and buddies that would lie past the
 * end never merge.
 *
 * Metadata carved from the buffer: a map of 2 bits per slot after the blocks,
 * in whole words (ceil(N / (4 * sizeof(size_t))) of them), 1/(4 * min_block)
 * of the region (1.6% with 16-byte slots, 0.8% with 32). Each slot says: no block starts here, a free block
 * starts here, a live block starts here (its request fills it), or a live
 * block starts here and the end of its slack holds a record of the slack.
 * The map alone gives every block's order (the first slot s + 2^j that is
 * a block start or the end), and whether a free buddy is whole (its middle
 * slot is no block start). Free blocks are on doubly-linked per-order lists
 * whose two links live in the free block itself; pk_buddy holds the list
 * heads, their lengths and a bitmap of non-empty orders, so alloc finds its
 * order with one find-first-set, and push and pop are O(1). The lengths let
 * every unlink check in O(1) that a node's links agree with its list: a node
 * whose links are both NULL must be its list's only one, and a list's head
 * has a next exactly when the list has more than one node (so a client that
 * zeroes a freed block cannot cut the blocks after it off their list).
 *
 * Requested bytes are exact without a header or a per-block table: a block
 * whose request r is below its size B ends with the slack B - r written in
 * base 128, last byte first (1 byte up to 127 bytes of slack, 2 up to 16383,
 * ...), inside the slack. So pk_buddy_usable_size returns the request, not the
 * block size: bytes past the request are not the client's. Writing past it
 * damages the record; free and realloc then report PK_ERR_GUARD_CORRUPT when
 * the record is impossible or records a request larger than the requested
 * total of all live blocks (requested is then recounted from the map, so it
 * never wraps), and check always (the records must add up to the requested
 * total).
 *
 * Sizing: PK_BUDDY_BUFFER_SIZE(capacity, min_block) bytes always manage at
 * least capacity bytes; pk_buddy_metadata_size(size, min_block) says how much
 * of a buffer is not blocks.
 *
 * Checks that stay on in release builds: foreign pointers, pointers that are
 * not a block start (inside a live block: PK_ERR_MISALIGNED_PTR), frees of
 * blocks that are not live (freed already, merged since into a larger free
 * block, or never handed out: PK_ERR_DOUBLE_FREE), free-list links damaged
 * by a write after free (found when a list is used: reported as
 * PK_ERR_CORRUPT and the lists rebuilt from the map).
 *
 * Thread and ISR safety: set a lock with pk_buddy_set_lock before sharing;
 * alloc and free hold it for O(log n) steps and are ISR-safe when it is (a
 * PRIMASK critical section): alloc splits at most max_order times (max_order
 * = log2(capacity / min_block)), free finds the block's order in at most
 * max_order probes of the map and merges at most max_order times. Each call
 * takes it once, but realloc: once to resize in place, and when the block
 * moves, again for the alloc and the free, separately, copying without it.
 * stats and reset_peaks hold it for O(1), usable_size for O(log n), check
 * for O(N) (N slots). A slab cache over a buddy calls it with the
 * cache's own lock released, so one lock may even serve both.
 * "ISR-safe with a lock" below means: safe from an ISR when the lock is an
 * interrupt-masking critical section (bounded by the complexity stated);
 * without a lock no function may run concurrently with another on the same
 * buddy. The rare O(N) repairs (a rebuild of the lists, a recount of
 * requested) also run inside the lock: an ISR that cannot afford O(N) in the
 * worst case must not share a buddy whose clients may write after free.
 */
#ifndef POOLKIT_BUDDY_H
#define POOLKIT_BUDDY_H

#include <limits.h>

#include "poolkit/allocator.h"
#include "poolkit/common.h"
#include "poolkit/debug.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The smallest slot: max(alignof(max_align_t), 2 * sizeof(void *)), room
 * for a free block's two links (16 bytes on x86-64, 8 on Cortex-M). */
#define PK_BUDDY_MIN_BLOCK                                                          \
    ((size_t)PK_MAX_ALIGN > 2 * sizeof(void *) ? (size_t)PK_MAX_ALIGN : 2 * sizeof(void *))

/* Orders a buddy can have (one list head per order). */
#define PK_BUDDY_MAX_ORDERS (sizeof(size_t) * CHAR_BIT)

/* A free block's links (internal). */
typedef struct pk_buddy_node {
    struct pk_buddy_node *next;
    struct pk_buddy_node *prev;
} pk_buddy_node;

/* Buddy state: public only so that it can be declared statically; use the
 * functions, never the fields. */
typedef struct pk_buddy {
    unsigned char *base;        /* slot 0, aligned absolutely to min_block */
    size_t *map;                /* 2 bits per slot (slot s: word s / (4 * sizeof(size_t)),
                                   bits 2 * (s % (4 * sizeof(size_t)))), after the blocks */
    size_t slots;               /* N */
    size_t capacity;            /* N * min_block */
    size_t min_block;
    size_t base_align;          /* base's absolute alignment (its lowest set bit) */
    unsigned shift;             /* log2(min_block) */
    unsigned max_order;         /* floor(log2(N)) */
    size_t nonempty;            /* bit k: free list k is non-empty */
    pk_buddy_node *free_lists[PK_BUDDY_MAX_ORDERS];
    size_t free_count[PK_BUDDY_MAX_ORDERS]; /* blocks on free list k */
    size_t in_use;              /* bytes of live blocks */
    size_t requested;           /* bytes requested by live blocks */
    size_t peak_in_use;
    size_t live, peak_live;
    uint64_t allocs, frees, failures, rejected;
    const char *name;
    pk_lock lock;
    pk_allocator view;
#if PK_DEBUG
    pk_debug_state debug;       /* tags of client blocks, live and quarantined */
    size_t held_bytes;          /* block bytes of the quarantined blocks */
    size_t pages, page_bytes;   /* untagged pages taken by slab caches (pk_page_source_buddy) */
    size_t client_peak_in_use, client_peak_live; /* the peaks as the clients see them */
#endif
} pk_buddy;

/* Bytes a debug build adds to each request (tag and guards, poolkit/debug.h)
 * of a buddy of slots of min_block bytes (the tag and front guard are
 * rounded up to min_block, so that blocks keep their alignment): a request of
 * r bytes takes the smallest block of r + PK_BUDDY_DEBUG_OVERHEAD(min_block)
 * bytes or more (with an alignment above min_block, the tag and front guard
 * are rounded up to it instead). 0 in release builds. */
#if PK_DEBUG
#define PK_BUDDY_DEBUG_OVERHEAD(min_block) PK_DEBUG_OVERHEAD_(PK_BUDDY_BLOCK_(min_block))
#else
#define PK_BUDDY_DEBUG_OVERHEAD(min_block) 0u
#endif

/* The slot size a min_block argument gives (internal): below the minimum
 * (0 included) the minimum. */
#define PK_BUDDY_BLOCK_(min_block)                                                   \
    ((size_t)(min_block) < PK_BUDDY_MIN_BLOCK ? PK_BUDDY_MIN_BLOCK : (size_t)(min_block))
#define PK_BUDDY_SLOTS_(capacity, min_block)                                         \
    (((size_t)(capacity) + PK_BUDDY_BLOCK_(min_block) - 1u) / PK_BUDDY_BLOCK_(min_block))

#define PK_BUDDY_MAP_BYTES_(slots)                                                   \
    (((size_t)(slots) + 4u * sizeof(size_t) - 1u) / (4u * sizeof(size_t)) * sizeof(size_t))

/* Bytes a buffer needs so that at least capacity bytes (rounded up to the
 * slot size) are managed, whatever the buffer's address: worst-case padding
 * to min_block, the slots, the 2-bit map. A constant expression when the
 * arguments are; min_block must be valid (see pk_buddy_init). */
#define PK_BUDDY_BUFFER_SIZE(capacity, min_block)                                    \
    (PK_BUDDY_BLOCK_(min_block) - 1u +                                               \
     PK_BUDDY_SLOTS_(capacity, min_block) * PK_BUDDY_BLOCK_(min_block) +             \
     PK_BUDDY_MAP_BYTES_(PK_BUDDY_SLOTS_(capacity, min_block)))

/* Bytes of a buffer of size bytes, aligned to min_block, that do not become
 * blocks: the map (2 bits per slot in whole words) and a remainder too small
 * for a slot and its map bits. A buffer not so aligned loses up to
 * min_block - 1 bytes more to padding. SIZE_MAX when min_block is invalid
 * (see pk_buddy_init); size itself when not one block fits. O(1). Pure: no
 * lock, no state, ISR-safe. */
size_t pk_buddy_metadata_size(size_t size, size_t min_block);

/* Makes a buddy allocator over the size bytes at buf. min_block is the
 * smallest block: 0 or a power of two. 0 and every power of two below
 * PK_BUDDY_MIN_BLOCK are rounded up to PK_BUDDY_MIN_BLOCK; any other value
 * is rejected, including a non-power of two below the minimum (3, 12, 24:
 * PK_ERR_INVALID_ARG, not rounded up). O(N / 4): it clears the map, and
 * puts the region on the free lists as the largest aligned blocks that fit.
 * Returns PK_ERR_INVALID_ARG, leaving *b untouched, iff b or buf is NULL,
 * min_block is neither 0 nor a power of two, or the buffer cannot hold one
 * slot and its map after aligning to min_block (so also for any min_block
 * larger than the buffer). Calls no handler. Not ISR-safe with respect to
 * other calls on b (it takes no lock: init before sharing). */
pk_status pk_buddy_init(pk_buddy *b, void *buf, size_t size, size_t min_block);

/* A block of the smallest order that holds size bytes (size 0: the smallest
 * block), aligned to min_block absolutely and to its own size relative to
 * the base; or NULL (a failure, not a fault) when no free block is large
 * enough or size exceeds the largest order. O(log n) in the number of
 * orders: one find-first-set, then one O(1) split per order below the block
 * found. ISR-safe with a lock (see above). A damaged free list found here
 * (links that are not free blocks of the list, or that disagree with the
 * list's length) is reported as PK_ERR_CORRUPT (once, counted as rejected),
 * the lists are rebuilt from the map (O(N), once) and NULL is returned. */
void *pk_buddy_alloc(pk_buddy *b, size_t size);

/* size bytes aligned absolutely to align (a power of two; 0 = min_block).
 * An align up to min_block costs nothing; a larger one is served by asking
 * for max(size, align), a block that size is aligned to it, when the base
 * itself is aligned to align (give the buddy a buffer aligned that much);
 * otherwise NULL (a failure). NULL and PK_ERR_INVALID_ARG (rejected) for an
 * align that is not a power of two. requested counts size. O(log n).
 * ISR-safe with a lock (see above). */
void *pk_buddy_alloc_aligned(pk_buddy *b, size_t size, size_t align);

/* Gives p back, merging it with its free buddy, then with that block's
 * buddy, and so on. O(log n). NULL is a no-op. Misuse is reported once,
 * returned, counted as rejected, and changes nothing: PK_ERR_FOREIGN_PTR (not
 * in the managed region); PK_ERR_MISALIGNED_PTR for a pointer that is not on
 * a slot boundary (min_block) anywhere in the region, free blocks included,
 * and for a slot boundary inside a live block; PK_ERR_DOUBLE_FREE for a slot
 * boundary at the start of or inside a free block (freed twice, merged
 * since, or never handed out). The block is freed but
 * the call returns a fault when the record past the request was overwritten
 * (PK_ERR_GUARD_CORRUPT: an impossible record, or one recording more than
 * the requested total; requested is then recounted from the map, O(N)) or
 * a free list was found damaged (PK_ERR_CORRUPT; the lists are rebuilt from
 * the map, O(N)). A map that cannot be right for p (its block would run past
 * the region) is PK_ERR_CORRUPT with nothing changed (counted as rejected).
 * ISR-safe with a lock (see above). */
pk_status pk_buddy_free(pk_buddy *b, void *p);

/* realloc(NULL, n) allocates; realloc(p, 0) frees and returns NULL. A size
 * that still fits p's block is served in place (the record and the requested
 * bytes follow the new size); else allocates, copies and frees. On failure
 * returns NULL and p is untouched. A p that is not a live block is reported
 * as pk_buddy_free would and NULL returned; a damaged record (as for
 * pk_buddy_free) is reported as PK_ERR_GUARD_CORRUPT (the requested bytes
 * recounted, O(N)) and the realloc still done. O(log n) plus the copy;
 * takes the lock (released around the copy, which is the caller's block).
 * ISR-safe with a lock, but the copy makes it O(size): avoid in ISRs. */
void *pk_buddy_realloc(pk_buddy *b, void *p, size_t size);

/* The size requested for the live block p (see above: not the block size),
 * or 0 when p is not a live block or its record was overwritten (no fault).
 * O(log n); takes the lock. ISR-safe with a lock (see above). */
size_t pk_buddy_usable_size(const pk_buddy *b, const void *p);

/* The block size of the live block p (its power of two), or 0 when p is not
 * a live block (no fault). O(log n); takes the lock. ISR-safe with a lock
 * (see above). */
size_t pk_buddy_block_size(const pk_buddy *b, const void *p);

/* Statistics: capacity (the managed region: N * min_block), in_use (block
 * sizes of live blocks), requested (exact), free_bytes (capacity - in_use),
 * largest_free (the largest free block), live, peaks, counters; block_size 0.
 * Internal fragmentation, pk_frag_internal, is the cost of rounding to powers
 * of two. O(1); takes the lock. ISR-safe with a lock (see above). */
void pk_buddy_stats(const pk_buddy *b, pk_stats *out);

/* Sets the peaks to the current values. O(1); takes the lock. ISR-safe with
 * a lock (see above). */
void pk_buddy_reset_peaks(pk_buddy *b);

/* Walks the map block by block (every slot where a block must start is one,
 * each block fits, no two free buddies left unmerged, each record past a
 * request possible) and every free list (links inside the region, back links,
 * no cycle, each node a free block of the list's order, lengths equal to the
 * map's counts and to the recorded list lengths, the bitmap of non-empty
 * lists), and the counters (live, in_use, requested, peaks) against the
 * walk. PK_OK or the first problem (PK_ERR_CORRUPT), reported through the
 * handler (after the lock is released). Repairs nothing. O(N); holds the
 * lock throughout: not for an ISR's critical path (O(N) with interrupts
 * masked when the lock masks them). */
pk_status pk_buddy_check(const pk_buddy *b);

/* Names the allocator in faults and reports (kept, not copied; NULL =
 * "buddy"). O(1). Takes no lock: call it before the allocator is shared
 * (not ISR-safe against concurrent calls on b). */
void pk_buddy_set_name(pk_buddy *b, const char *name);

/* Sets the lock (copied; NULL removes it). PK_ERR_INVALID_ARG, changing
 * nothing, when exactly one of lock and unlock is NULL. Call it before the
 * allocator is shared. O(1). Takes no lock: not ISR-safe against concurrent
 * calls on b. */
pk_status pk_buddy_set_lock(pk_buddy *b, const pk_lock *lock);

/* The generic view: alloc_aligned is pk_buddy_alloc_aligned, realloc is
 * pk_buddy_realloc, usable_size is pk_buddy_usable_size. O(1); reads
 * nothing that changes after init: ISR-safe. */
pk_allocator *pk_buddy_allocator(pk_buddy *b);

/* Debug builds record each call's site (poolkit/debug.h). */
#if PK_DEBUG && !defined(PK_BUILDING_LIBRARY)
#define pk_buddy_alloc(b, size) PK_DEBUG_AT_(pk_buddy_alloc((b), (size)))
#define pk_buddy_alloc_aligned(b, size, align) PK_DEBUG_AT_(pk_buddy_alloc_aligned((b), (size), (align)))
#define pk_buddy_free(b, p) PK_DEBUG_AT_(pk_buddy_free((b), (p)))
#define pk_buddy_realloc(b, p, size) PK_DEBUG_AT_(pk_buddy_realloc((b), (p), (size)))
#endif

#ifdef __cplusplus
}
#endif

#endif
