/*
 * O(1) heap: two-level segregated fit (TLSF) over one or more regions the
 * caller owns.
 *
 * Free blocks are kept in PK_HEAP_FL_COUNT x PK_HEAP_SL_COUNT size classes: the
 * first level by powers of two, the second splitting each power of two into
 * PK_HEAP_SL_COUNT equal ranges. Two bitmaps say which lists are non-empty, so
 * alloc finds a block with two find-first-set instructions, and a block freed
 * merges at once with free neighbours through boundary tags. No loop in alloc
 * or free depends on the heap's size or state: both run in bounded time.
 *
 * Blocks: one machine word of header before each block (its size and two
 * flags); a free block also keeps two list links in its payload and its
 * address in the last word of its payload (for the merge). Payloads are
 * aligned to PK_HEAP_ALIGN = alignof(max_align_t); the smallest payload is
 * PK_HEAP_MIN_PAYLOAD bytes (24 on 64-bit targets, 12 on 32-bit ones).
 *
 * Requests are rounded up so that any block of the class searched fits
 * ("good fit"): a request can fail while a block larger than it is free in
 * the class just below. Stats' largest_free is the largest request that
 * succeeds now.
 *
 * Checks that stay on in release builds: foreign pointers (outside every
 * region), misaligned pointers, double frees while the block's header is
 * intact, headers whose size or flags are impossible. Interior pointers and
 * stale double frees are caught in release builds too when PK_HEAP_STRICT_FREE
 * is defined to 1 (a bitmap of block starts, 1 bit per PK_HEAP_ALIGN bytes,
 * carved from each region).
 *
 * Debug builds (PK_DEBUG, README "Debug builds"): each request of n bytes
 * aligned to a takes a heap block of n + PK_DEBUG_OVERHEAD_(a) bytes holding
 * a tag (site, owner, size, sequence), guards around the n bytes and fill
 * patterns. free then also catches interior and stale pointers (no valid tag:
 * PK_ERR_MISALIGNED_PTR), double frees of recently freed blocks (their tag
 * says so: PK_ERR_DOUBLE_FREE with the block's site), overflows and
 * underflows (PK_ERR_GUARD_CORRUPT, freed all the same), and writes after
 * free (PK_ERR_USE_AFTER_FREE, reported once when the block leaves the
 * quarantine of PK_QUARANTINE_SIZE blocks, where freed blocks wait before
 * they merge; check finds it earlier). realloc moves the block whenever the
 * size changes; usable_size is the size requested; stats are the clients'
 * view (quarantined blocks free, requested exact, in_use the heap blocks of
 * live allocations, largest_free net of the debug bytes); a free or an alloc
 * that drains the quarantine does up to PK_QUARANTINE_SIZE + 1 frees' work.
 *
 * Configuration (before including, or in PK_CONFIG_HEADER; the library and its
 * users must agree): PK_HEAP_SL_LOG2 (default 5: 32 second-level classes),
 * PK_HEAP_MAX_LOG2 (default 32 on 64-bit targets, 31 on 32-bit ones: blocks
 * and regions up to 2^MAX_LOG2 bytes), PK_HEAP_MAX_REGIONS (default 8). The
 * control structure holds PK_HEAP_FL_COUNT * PK_HEAP_SL_COUNT list heads
 * (23 * 32 pointers, 5.9 KiB, with the defaults on x86-64); a small MCU may
 * choose SL_LOG2 4 and MAX_LOG2 20 (13 * 16 heads, under 1 KiB).
 *
 * Thread and ISR safety: set a lock with pk_heap_set_lock before sharing;
 * alloc and free hold it for a bounded time and are ISR-safe when it is.
 * alloc and free take it once and report faults after releasing it. alloc
 * (aligned and bounded too) holds it for O(1): two find-first-sets, at most
 * one split and one list insert; free for O(1): at most two merges and one
 * insert, plus a scan of at most PK_HEAP_MAX_REGIONS regions for a pointer
 * outside the first (tests/test_heap_steps.c counts at most 7 and 5 inner
 * steps). add_region holds it for O(PK_HEAP_MAX_REGIONS); realloc for O(1)
 * in place, and when it moves, the alloc and the free take it separately and
 * the copy runs without it. stats and reset_peaks are O(1), check O(blocks).
 */
#ifndef POOLKIT_HEAP_H
#define POOLKIT_HEAP_H

#include <limits.h>

#include "poolkit/allocator.h"
#include "poolkit/common.h"
#include "poolkit/debug.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef PK_HEAP_SL_LOG2
#define PK_HEAP_SL_LOG2 5
#endif
#ifndef PK_HEAP_MAX_LOG2
#if SIZE_MAX > 0xFFFFFFFFu
#define PK_HEAP_MAX_LOG2 32
#else
#define PK_HEAP_MAX_LOG2 31
#endif
#endif
#ifndef PK_HEAP_MAX_REGIONS
#define PK_HEAP_MAX_REGIONS 8
#endif
#ifndef PK_HEAP_STRICT_FREE
#define PK_HEAP_STRICT_FREE 0
#endif

#define PK_HEAP_ALIGN ((size_t)PK_MAX_ALIGN)
#define PK_HEAP_SL_COUNT (1u << PK_HEAP_SL_LOG2)
/* log2(PK_HEAP_ALIGN), for the class arithmetic. */
#define PK_HEAP_ALIGN_LOG2                                                          \
    (PK_MAX_ALIGN >= 64 ? 6 : PK_MAX_ALIGN >= 32 ? 5 : PK_MAX_ALIGN >= 16 ? 4 :      \
     PK_MAX_ALIGN >= 8 ? 3 : 2)
/* Sizes below 2^PK_HEAP_FL_SHIFT share the first list level, split linearly
 * in steps of PK_HEAP_ALIGN. */
#define PK_HEAP_FL_SHIFT (PK_HEAP_SL_LOG2 + PK_HEAP_ALIGN_LOG2)
#define PK_HEAP_FL_COUNT (PK_HEAP_MAX_LOG2 - PK_HEAP_FL_SHIFT)

PK_STATIC_ASSERT(PK_HEAP_SL_LOG2 >= 1 && PK_HEAP_SL_LOG2 <= 5, "PK_HEAP_SL_LOG2 must be 1..5");
PK_STATIC_ASSERT(PK_HEAP_MAX_LOG2 > PK_HEAP_FL_SHIFT && PK_HEAP_MAX_LOG2 < sizeof(size_t) * CHAR_BIT,
                 "PK_HEAP_MAX_LOG2 out of range");
PK_STATIC_ASSERT(PK_HEAP_FL_COUNT <= 32, "too many first-level classes");

typedef struct pk_heap_block pk_heap_block;

typedef struct {
    unsigned char *start;   /* the first block's payload */
    unsigned char *end;     /* one past the sentinel header ending the region */
    unsigned char *buffer;  /* the buffer the caller gave, and its end */
    unsigned char *buffer_end;
#if PK_HEAP_STRICT_FREE
    uint32_t *starts;       /* bit set: a block starts at start + bit * PK_HEAP_ALIGN */
#endif
} pk_heap_region;

/* Heap state: public only so that it can be declared statically; use the
 * functions, never the fields. */
typedef struct pk_heap {
    /* What free and alloc's fast paths read first (see src/heap.c). */
    unsigned char *first_start;                 /* regions[0].start */
    size_t first_units;                         /* payload slots of regions[0] that may start a block; 0 while locked */
    size_t first_limit;                         /* the last offset at which a block may start there */
    size_t alloc_limit;                         /* requests below this take the fast path; 0 while locked */
    size_t fl_bitmap;                           /* bit t: some list of level t (2^t <= size + offset) is non-empty */
    uint32_t sl_bitmap[PK_HEAP_MAX_LOG2];       /* [t] bit s: list (t, s) is non-empty (t >= FL_SHIFT) */
    pk_heap_block *lists[PK_HEAP_FL_COUNT * PK_HEAP_SL_COUNT]; /* by level, then second-level class */
    size_t in_use;                              /* payload bytes of live blocks */
    size_t peak_in_use;
    size_t live, peak_live;                     /* live blocks (frees = allocs - live) */
    size_t blocks;                              /* blocks in all regions, live and free */
    uint64_t allocs, failures, rejected;
    pk_heap_region regions[PK_HEAP_MAX_REGIONS];
    size_t region_count;
    size_t capacity;                            /* payload bytes of the regions when empty */
    unsigned long steps;                        /* test builds: inner steps of the last call */
    const char *name;
    pk_lock lock;
    pk_allocator view;
#if PK_DEBUG
    pk_debug_state debug;                       /* tags, the live list and the quarantine */
    size_t debug_in_use;                        /* payload bytes of the blocks live to the clients */
    size_t debug_peak_in_use;
#endif
} pk_heap;

#define PK_HEAP_MIN_PAYLOAD (3 * sizeof(void *))

/* Makes a heap over the size bytes at buf (its first region). O(1).
 * Returns PK_ERR_INVALID_ARG, leaving *h untouched, iff h or buf is NULL or
 * the buffer cannot hold one block of PK_HEAP_MIN_PAYLOAD bytes after
 * alignment (and, with PK_HEAP_STRICT_FREE, its bitmap). A buffer larger than
 * the largest block (a little under 2^PK_HEAP_MAX_LOG2: 2^MAX_LOG2 -
 * 2^(MAX_LOG2 - 1 - SL_LOG2) - 2^FL_SHIFT - a few words) is cut to that
 * size: choose PK_HEAP_MAX_LOG2 above log2 of your largest region. Calls no
 * handler. Not ISR-safe (nothing is shared yet). */
pk_status pk_heap_init(pk_heap *h, void *buf, size_t size);

/* Bytes a buffer needs so that a fresh heap over it (at any address) serves
 * count requests of size bytes made one after another (debug builds: with
 * their tags and guards): headers, rounding,
 * alignment, the sentinel, the search's rounding for the last one (and, with
 * PK_HEAP_STRICT_FREE, the bitmap). 0 when count is 0 or the sum overflows or
 * exceeds the largest block. Frees and other sizes in between can fragment
 * the heap: size real workloads with headroom. O(1). */
size_t pk_heap_buffer_size(size_t size, size_t count);

/* Adds the size bytes at buf as another region (it may lie anywhere, but must
 * not overlap a region already added). O(1) (O(size / 1024) with
 * PK_HEAP_STRICT_FREE: the bitmap is cleared), under the lock. Returns
 * PK_ERR_INVALID_ARG, writing nothing, iff h or buf is NULL, the buffer is too
 * small (as for init), overlaps a region, or PK_HEAP_MAX_REGIONS are in use.
 * Calls no handler. */
pk_status pk_heap_add_region(pk_heap *h, void *buf, size_t size);

/* size bytes aligned to PK_HEAP_ALIGN, or NULL (a failure: no free block of
 * the rounded size, or a size above 2^PK_HEAP_MAX_LOG2). Size 0 gets the
 * smallest block. O(1); ISR-safe when the lock is (or without one, when only
 * one context uses the heap). */
void *pk_heap_alloc(pk_heap *h, size_t size);

/* size bytes aligned to align (a power of two; 0 = PK_HEAP_ALIGN). O(1): it
 * searches for size + align and gives the leading gap back as a free block.
 * NULL and PK_ERR_INVALID_ARG for an align that is not a power of two.
 * ISR-safe as pk_heap_alloc. */
void *pk_heap_alloc_aligned(pk_heap *h, size_t size, size_t align);

/* size bytes aligned to align that do not cross a multiple of boundary (a
 * power of two, e.g. a 4 KiB page for a DMA descriptor ring; 0 = no
 * boundary). O(1): the block is aligned to max(align, the next power of two
 * of size), which cannot cross a boundary when size <= boundary. NULL and
 * PK_ERR_INVALID_ARG when size > boundary or align or boundary is not a power
 * of two. ISR-safe as pk_heap_alloc. */
void *pk_heap_alloc_bounded(pk_heap *h, size_t size, size_t align, size_t boundary);

/* realloc(NULL, n) allocates; realloc(p, 0) frees and returns NULL. Shrinks
 * in place; grows in place into a free next block when it can; else
 * allocates, copies and frees. On failure returns NULL and p is untouched.
 * O(1) plus the copy. A bad p is reported as pk_heap_free would. Not for
 * ISRs when it may copy a large block (the copy runs outside the lock). */
void *pk_heap_realloc(pk_heap *h, void *p, size_t size);

/* Gives p back, merging it with free neighbours. O(1). NULL is a no-op.
 * Misuse is reported once, returned, counted as rejected, and changes nothing:
 * PK_ERR_FOREIGN_PTR, PK_ERR_MISALIGNED_PTR (not aligned, or a header that
 * cannot be a block's: with PK_HEAP_STRICT_FREE every interior pointer),
 * PK_ERR_DOUBLE_FREE (the block is free). ISR-safe as pk_heap_alloc. */
pk_status pk_heap_free(pk_heap *h, void *p);

/* Payload bytes of the live block p (at least what was asked; debug builds:
 * exactly what was asked), or 0 when p is not a live block (no fault). O(1); takes the lock; ISR-safe when it is. */
size_t pk_heap_usable_size(const pk_heap *h, const void *p);

/* Statistics: capacity, in_use (payload bytes of live blocks, rounding
 * included), requested (= in_use in release builds), free_bytes (payload bytes
 * of free blocks), largest_free (the largest request that succeeds now),
 * live, peaks, counters. O(1); takes the lock; ISR-safe when it is. */
void pk_heap_stats(const pk_heap *h, pk_stats *out);

/* Sets the peaks to the current values. O(1); takes the lock. */
void pk_heap_reset_peaks(pk_heap *h);

/* Walks every block of every region and every free list: sizes and flags,
 * boundary tags, no two free neighbours, each free block on the list of its
 * class, list links, bitmaps against lists, counters against the walk.
 * PK_OK or the first problem (PK_ERR_CORRUPT), reported through the handler.
 * Repairs nothing. O(blocks); holds the lock that long: not for ISRs. */
pk_status pk_heap_check(const pk_heap *h);

/* Names the heap in faults and reports (kept, not copied; NULL = "heap").
 * O(1). */
void pk_heap_set_name(pk_heap *h, const char *name);

/* Sets the lock (copied; NULL removes it). PK_ERR_INVALID_ARG when exactly one
 * of lock and unlock is NULL. O(1). Call it before the heap is shared. */
pk_status pk_heap_set_lock(pk_heap *h, const pk_lock *lock);

/* The heap's generic view (its realloc is pk_heap_realloc). O(1). */
pk_allocator *pk_heap_allocator(pk_heap *h);

/* Debug builds record each call's site (poolkit/debug.h). */
#if PK_DEBUG && !defined(PK_BUILDING_LIBRARY)
#define pk_heap_alloc(h, size) PK_DEBUG_AT_(pk_heap_alloc((h), (size)))
#define pk_heap_alloc_aligned(h, size, align) PK_DEBUG_AT_(pk_heap_alloc_aligned((h), (size), (align)))
#define pk_heap_alloc_bounded(h, size, align, boundary)                               \
    PK_DEBUG_AT_(pk_heap_alloc_bounded((h), (size), (align), (boundary)))
#define pk_heap_realloc(h, p, size) PK_DEBUG_AT_(pk_heap_realloc((h), (p), (size)))
#define pk_heap_free(h, p) PK_DEBUG_AT_(pk_heap_free((h), (p)))
#endif

#ifdef __cplusplus
}
#endif

#endif
