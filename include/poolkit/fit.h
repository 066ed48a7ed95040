/*
 * Free-list heap with placement policies: the classic textbook heap (one free
 * list, boundary tags, coalescing), with a choice of where a request is
 * placed, over a buffer the caller owns. Most firmware heaps are this
 * allocator (FreeRTOS heap_4 is its address-ordered first-fit form), and it
 * shows what placement and coalescing do to fragmentation; for bounded time
 * use pk_heap (poolkit/heap.h).
 *
 * Blocks: one machine word of header before each payload (the block's size
 * and two flags). A free block also keeps two list links at the start of its
 * payload and its size in its last word (the footer), so that the block after
 * it can merge with it. Payloads are aligned to PK_FIT_ALIGN =
 * alignof(max_align_t); a request of n bytes takes PK_FIT_BLOCK_SIZE(n) bytes
 * of the buffer (n plus the header, rounded up to PK_FIT_ALIGN, at least
 * PK_FIT_MIN_BLOCK: 32 bytes on 64-bit targets, 16 on 32-bit ones with 8-byte
 * alignment). The buffer ends with a one-word sentinel.
 *
 * The free list holds every free block in address order (doubly linked).
 * Placement policies (chosen at init), for a request needing B bytes:
 *   PK_FIT_FIRST  the free block of lowest address that holds B bytes
 *                 ("first" in address order: address-ordered first fit,
 *                 which keeps fragmentation close to best fit);
 *   PK_FIT_BEST   the smallest free block that holds B bytes, the one of
 *                 lowest address among equals (the scan stops at an exact
 *                 fit);
 *   PK_FIT_NEXT   first fit starting at the rover and wrapping around to the
 *                 lowest address: the rover is the free block that follows
 *                 the last allocation (what was split off it, else the next
 *                 free block in address order), so successive searches go
 *                 round the heap instead of always starting at its bottom.
 *                 When the rover's block merges with a neighbour, the
 *                 merged block becomes the rover; when a realloc takes it
 *                 whole, the next free block does.
 * The block found is split when what is left can be a block (at least
 * PK_FIT_MIN_BLOCK bytes); the allocation takes its low end. On free, a block
 * merges with free neighbours on both sides at once (boundary tags), unless
 * the heap was made with PK_FIT_NO_COALESCE: freed blocks then stay apart
 * (still split on allocation, never merged), which shows how external
 * fragmentation builds up.
 *
 * Time: alloc is O(free blocks) (the list scan: first and next fit stop at
 * the first fit, best fit scans the whole list unless it meets an exact fit).
 * Free is O(1) when a neighbour is free; else it finds its place in the list
 * by two walks in step, the first to arrive winning: over the live blocks
 * after it up to the next free one, and along the free list from the block
 * freed last. Neither is bounded by a constant: use pk_heap where bounded
 * time matters. On a random workload of 4,096 live objects of 16 B to 4 KiB
 * (x86-64, gcc -O2), a free and an alloc cost about 1,760 instructions
 * together with first fit, 2,700 with best fit and 270 with next fit
 * (FreeRTOS heap_4, also address-ordered first fit: about 3,700).
 *
 * Checks that stay on in release builds: foreign pointers (outside the
 * managed blocks), misaligned pointers, headers that cannot be a block's
 * (impossible size or flags, or contradicted by the neighbouring blocks'
 * flags and footer), double frees while the block's header is intact: each
 * block's header is marked free before it merges with a neighbour, so a
 * second free is caught until those bytes are handed out again and
 * overwritten. An interior pointer is always caught when it is not at a
 * payload position (a multiple of PK_FIT_ALIGN past the heap's first
 * payload); at one, only when the word before it cannot be a live block's
 * header (its size or flags, or the neighbours' flags and footer, contradict
 * it), which is most cases but not all. A pointer to a block freed and handed
 * out again frees the new block (as with malloc).
 *
 * Thread and ISR safety: set a lock with pk_fit_set_lock before sharing the
 * heap. Every function that touches the state takes it once and releases it
 * before the fault handler runs. alloc and free hold it for their whole
 * O(n) walk, so they are not suited to interrupt handlers except on small
 * heaps; they are ISR-safe when the lock is (a PRIMASK critical section) or
 * only one context uses the heap. alloc holds it for the list scan, O(free
 * blocks); free for O(1) when a neighbour is free, else for the walk that
 * places the block in the list, O(blocks); realloc for the whole call, which
 * when it moves the block includes the scan, the copy of the old payload
 * (O(size)) and the free. stats holds it for O(free blocks) (largest_free
 * walks the free list), reset_peaks for O(1), check for O(blocks).
 *
 * Debug builds (PK_DEBUG, README "Debug builds"): each request of n bytes
 * aligned to a takes a block for n + PK_DEBUG_OVERHEAD_(a) bytes (counted by
 * PK_FIT_BLOCK_SIZE and PK_FIT_BUFFER_SIZE) holding a tag (site, owner,
 * size, sequence), guards around the n bytes and fill patterns. free then
 * also catches every interior and stale pointer (no valid tag:
 * PK_ERR_MISALIGNED_PTR), double frees of recently freed blocks (their tag
 * says so: PK_ERR_DOUBLE_FREE with the block's site), overflows and
 * underflows (PK_ERR_GUARD_CORRUPT, freed all the same), and writes after
 * free (PK_ERR_USE_AFTER_FREE, reported once when the block leaves the
 * quarantine of PK_QUARANTINE_SIZE blocks, where freed blocks wait before
 * they merge; check finds it earlier). realloc moves the block whenever the
 * size changes; usable_size is the size requested; stats are the clients'
 * view (quarantined blocks free, requested exact, in_use the blocks of live
 * allocations, largest_free net of the debug bytes).
 */
#ifndef POOLKIT_FIT_H
#define POOLKIT_FIT_H

#include "poolkit/allocator.h"
#include "poolkit/common.h"
#include "poolkit/debug.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { PK_FIT_FIRST, PK_FIT_BEST, PK_FIT_NEXT } pk_fit_policy;

/* Init flag: freed blocks are not merged with their neighbours. */
#define PK_FIT_NO_COALESCE 1u

/* The alignment of every payload. */
#define PK_FIT_ALIGN ((size_t)PK_MAX_ALIGN)
/* Bytes of a block beyond its payload: the header word. */
#define PK_FIT_OVERHEAD sizeof(size_t)
/* The smallest block: header, two links and a footer, rounded up to
 * PK_FIT_ALIGN. Its payload is PK_FIT_MIN_BLOCK - PK_FIT_OVERHEAD bytes. */
#define PK_FIT_MIN_BLOCK                                                             \
    ((2 * sizeof(size_t) + 2 * sizeof(void *) + PK_FIT_ALIGN - 1) & ~(PK_FIT_ALIGN - 1))
/* Bytes of the buffer one request of size bytes takes (in debug builds,
 * with its tag and guards: PK_DEBUG_OVERHEAD_). A constant expression when
 * size is (size must be small enough not to overflow). */
#if PK_DEBUG
#define PK_FIT_DEBUG_BYTES_ PK_DEBUG_OVERHEAD_(PK_FIT_ALIGN)
#else
#define PK_FIT_DEBUG_BYTES_ 0u
#endif
#define PK_FIT_ROUND_(size)                                                          \
    (((size_t)(size) + PK_FIT_DEBUG_BYTES_ + PK_FIT_OVERHEAD + PK_FIT_ALIGN - 1) & ~(PK_FIT_ALIGN - 1))
#define PK_FIT_BLOCK_SIZE(size)                                                      \
    (PK_FIT_ROUND_(size) < PK_FIT_MIN_BLOCK ? PK_FIT_MIN_BLOCK : PK_FIT_ROUND_(size))
/* Bytes a buffer needs so that count requests of size bytes made in sequence
 * into the empty heap all succeed, whatever the buffer's address: worst-case
 * alignment padding, the blocks and the sentinel. (Frees in between can
 * fragment the heap: leave room for it.) A constant expression. */
#define PK_FIT_BUFFER_SIZE(size, count)                                              \
    (PK_FIT_ALIGN - 1 + (size_t)(count) * (PK_FIT_BLOCK_SIZE(size)) + PK_FIT_OVERHEAD)

/* Heap state: public only so that it can be declared statically; use the
 * functions, never the fields. */
typedef struct pk_fit {
    /* The free list is circular through this pseudo-block: a header word that
     * every request fits (it ends the first-fit scan), then the links to the
     * free blocks of highest and lowest address. */
    unsigned char anchor[sizeof(size_t) + 2 * sizeof(void *)];
    unsigned char *start;   /* the first block's header */
    unsigned char *end;     /* the sentinel header, after the last block */
    unsigned char *rover;   /* where PK_FIT_NEXT's next search starts (anchor: lowest) */
    unsigned char *hint;    /* the free block last freed into, where free's list walk starts */
    size_t capacity;        /* payload bytes when empty */
    size_t in_use;          /* payload bytes of live blocks */
    size_t peak_in_use;
    size_t free_blocks;
    size_t live, peak_live;
    uint64_t allocs, frees, failures, rejected;
    pk_fit_policy policy;
    unsigned flags;
    const char *name;
    pk_lock lock;
    pk_allocator view;
#if PK_DEBUG
    pk_debug_state debug;   /* tags, the live list and the quarantine */
    size_t debug_in_use;    /* payload bytes of the blocks live to the clients */
    size_t debug_peak_in_use;
#endif
} pk_fit;

/* Makes a heap over the size bytes at buf (any alignment), with one free
 * block spanning it. O(1). flags is 0 or PK_FIT_NO_COALESCE. The capacity
 * (stats) is what is left after alignment padding, the first header and the
 * sentinel, rounded down to PK_FIT_ALIGN.
 * Returns PK_ERR_INVALID_ARG, leaving *f untouched, iff f or buf is NULL,
 * policy is not one of the three, flags has another bit set, buf + size wraps
 * the address space, or the buffer cannot hold one block of PK_FIT_MIN_BLOCK
 * bytes after alignment (with the sentinel). Calls no handler. Not ISR-safe
 * against other users of *f (it is not in use yet). */
pk_status pk_fit_init(pk_fit *f, void *buf, size_t size, pk_fit_policy policy, unsigned flags);

/* size bytes aligned to PK_FIT_ALIGN, placed by the heap's policy, or NULL (a
 * failure, counted: no free block holds PK_FIT_BLOCK_SIZE(size) bytes, or
 * that arithmetic would overflow). Size 0 gets the smallest block (a unique
 * pointer). O(free blocks), under the lock; ISR-safe as described above. */
void *pk_fit_alloc(pk_fit *f, size_t size);

/* size bytes aligned to align (a power of two; 0 or up to PK_FIT_ALIGN: as
 * pk_fit_alloc). The policy picks among the free blocks that can hold the
 * aligned block after a leading gap that is either empty or at least
 * PK_FIT_MIN_BLOCK bytes: the gap stays a free block of its own. NULL (a
 * failure, counted) when none can, also for alignments too large for any
 * address in the heap; NULL and PK_ERR_INVALID_ARG (reported, counted as
 * rejected) for an align that is not a power of two. O(free blocks), under
 * the lock. */
void *pk_fit_alloc_aligned(pk_fit *f, size_t size, size_t align);

/* realloc(NULL, n) allocates; realloc(p, 0) frees p and returns NULL. Shrinks
 * in place (the tail, when it can be a block, is freed and merges as a free
 * would); grows in place when the block after p is free and large enough;
 * else allocates by the policy, copies and frees p, all under one hold of the
 * lock (counted as one alloc and one free; in-place resizes count as
 * neither). On failure returns NULL (counted) and p is untouched. The result
 * has the default alignment. A bad p is reported as pk_fit_free would, and
 * NULL returned. O(free blocks) plus the copy. */
void *pk_fit_realloc(pk_fit *f, void *p, size_t size);

/* Gives p back, merging it with free neighbours (unless PK_FIT_NO_COALESCE).
 * O(1) when a neighbour is free, else O(min(live blocks between p and the
 * next free block, free blocks between p and the block freed last)), under
 * the lock; ISR-safe as described above. NULL is a no-op returning PK_OK.
 * Misuse is reported once, returned, counted as rejected, and changes
 * nothing: PK_ERR_FOREIGN_PTR (outside the managed blocks),
 * PK_ERR_MISALIGNED_PTR (not at a payload position, or the header before p
 * cannot be a live block's), PK_ERR_DOUBLE_FREE (the header before p says
 * free: freed already, also after merging, while its bytes are intact). */
pk_status pk_fit_free(pk_fit *f, void *p);

/* Payload bytes of the live block p (at least what was asked: the block
 * size less the header; debug builds: exactly what was asked), or 0 when p is not a live block by the checks of
 * pk_fit_free (no fault). O(1); takes the lock. */
size_t pk_fit_usable_size(const pk_fit *f, const void *p);

/* Statistics: capacity (payload bytes when empty), in_use (payload bytes of
 * live blocks, rounding included), requested (= in_use: requests are not
 * recorded), free_bytes (payload bytes of free blocks: their sizes less one
 * header each), largest_free (the largest request that succeeds now: the
 * largest free block less its header), live, peaks, counters. O(free blocks):
 * a walk of the free list for largest_free, under the lock. */
void pk_fit_stats(const pk_fit *f, pk_stats *out);

/* Sets peak_in_use and peak_live to the current values. O(1); takes the
 * lock. */
void pk_fit_reset_peaks(pk_fit *f);

/* Walks every block in address order and the free list in step with it:
 * sizes and flags of every header, PREV_FREE flags against the blocks before,
 * footers of free blocks, no two free neighbours (unless
 * PK_FIT_NO_COALESCE), the list holding exactly the free blocks in address
 * order with consistent back links (so it cannot cycle), the anchor (header,
 * head and tail links), the rover and the hint (list nodes), the sentinel,
 * and the counters against the walk. PK_OK or the first problem
 * (PK_ERR_CORRUPT), reported through the handler. Repairs nothing.
 * O(blocks); holds the lock. */
pk_status pk_fit_check(const pk_fit *f);

/* Names the heap in faults and reports (the string is kept, not copied;
 * NULL restores "fit"). O(1). */
void pk_fit_set_name(pk_fit *f, const char *name);

/* Sets the lock taken around each operation (copied; NULL removes it).
 * Returns PK_ERR_INVALID_ARG, changing nothing, when exactly one of lock and
 * unlock is NULL. Call it before the heap is shared. O(1). */
pk_status pk_fit_set_lock(pk_fit *f, const pk_lock *lock);

/* The heap's generic view: alloc_aligned is pk_fit_alloc_aligned, realloc is
 * pk_fit_realloc. O(1). */
pk_allocator *pk_fit_allocator(pk_fit *f);

/* Debug builds record each call's site (poolkit/debug.h). */
#if PK_DEBUG && !defined(PK_BUILDING_LIBRARY)
#define pk_fit_alloc(f, size) PK_DEBUG_AT_(pk_fit_alloc((f), (size)))
#define pk_fit_alloc_aligned(f, size, align) PK_DEBUG_AT_(pk_fit_alloc_aligned((f), (size), (align)))
#define pk_fit_realloc(f, p, size) PK_DEBUG_AT_(pk_fit_realloc((f), (p), (size)))
#define pk_fit_free(f, p) PK_DEBUG_AT_(pk_fit_free((f), (p)))
#endif

#ifdef __cplusplus
}
#endif

#endif
