/*
 * Size-class set: several fixed-size pools (pk_pool) behind one call. A request
 * goes to the smallest class whose block holds it; with fall-through on (the
 * default), when that class is empty it goes on up to the next class with a
 * free block.
 *
 * Layout of the buffer: the classes' pools one after another, in the order of
 * the specs, each in exactly PK_POOL_BUFFER_SIZE(block_size, count, align)
 * bytes (which include the pool's own worst-case alignment padding and its
 * usage map), so no padding lies between pools and each pool holds exactly
 * its count whatever the buffer's address. pk_classes_buffer_size is their
 * sum. The set's own state (class table, bitmap, counters and the pk_pool
 * structures) is in pk_classes, none of it in the buffer: sizeof(pk_classes)
 * is about 265 bytes per class of PK_CLASSES_MAX on 64-bit targets (8.3 KiB
 * with the default 32; a pk_pool is 208 of them), about 150 on 32-bit ones;
 * lower PK_CLASSES_MAX to shrink it.
 *
 * Time: alloc finds the class in O(1): a table indexed by the size's octave
 * (its bit length) gives the first class that can hold a size of that octave,
 * then at most as many steps as classes share the octave (one step with
 * power-of-two classes, at most three with 1.25x steps); the next class with a
 * free block is one find-first-set on a bitmap of non-empty classes, masked
 * above the class. Free finds the owning pool from a table of the pools
 * starting in each of 64 equal slices of the buffer, then steps over the
 * pools that start inside the pointer's slice (usually none, at most the
 * number of classes): O(1) for a layout whose smallest pool is at least a
 * 64th of the whole, O(n) in the classes at worst, and no block is scanned.
 * The pool's alloc and free are O(1), inlined (src/pool_fast.h).
 *
 * Checks that stay on in release builds: foreign pointers (outside every
 * pool), pointers inside a block or its padding, double frees (and frees of
 * blocks never handed out), each reported once through the fault handler
 * with the set's name and changing nothing.
 *
 * Debug builds (PK_DEBUG, poolkit/debug.h): each class's pool adds its tag
 * and guards to every block (PK_POOL_BUFFER_SIZE and
 * pk_classes_buffer_size include them), poisons freed blocks and keeps the
 * last PK_QUARANTINE_SIZE of each class in its quarantine (they count as
 * free: an alloc drains the quarantine rather than fail). Also reported,
 * with the set's name, the block's allocation site and owner and the call's
 * site: PK_ERR_GUARD_CORRUPT (a free or check finds guard bytes written: the
 * block is freed all the same), PK_ERR_USE_AFTER_FREE (the poison of a
 * freed block written, found when it leaves the quarantine, when it is
 * handed out again, or by check), PK_ERR_DOUBLE_FREE of a quarantined block.
 * There is no fast path: alloc and free take the lock once each, as the
 * locked paths do.
 *
 * Thread and ISR safety: set a lock with pk_classes_set_lock before sharing
 * the set. It is the set's only lock (the inner pools have none of their own:
 * the set's lock guards them). Alloc, free (but free(NULL)), fall-through,
 * the statistics, reset_peaks, check and the view's functions each take it
 * exactly once, never nested, and release it before the fault handler runs.
 * Every function is then ISR-safe when the lock is (a PRIMASK critical
 * section), or when only one context uses the set.
 * Longest holds: alloc O(1) (the octave table, at most as many steps as
 * classes share an octave, one find-first-set, the pool's pop; O(class
 * blocks) once if that pool's free list was damaged, as in pk_pool); free at
 * most PK_CLASSES_MAX steps to find the pool (none with the usual layouts,
 * see above), then O(1). stats is O(classes), reset_peaks O(free blocks),
 * check O(total blocks).
 */
#ifndef POOLKIT_CLASSES_H
#define POOLKIT_CLASSES_H

#include <limits.h>

#include "poolkit/allocator.h"
#include "poolkit/common.h"
#include "poolkit/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most classes a set may have (1..32: the non-empty bitmap is 32 bits).
 * Define it before including (or in PK_CONFIG_HEADER) to shrink pk_classes;
 * the library and its users must agree. */
#ifndef PK_CLASSES_MAX
#define PK_CLASSES_MAX 32
#endif
PK_STATIC_ASSERT(PK_CLASSES_MAX >= 1 && PK_CLASSES_MAX <= 32, "PK_CLASSES_MAX must be 1..32");

/* Slices of the buffer in the table free uses to find the owning pool. */
#define PK_CLASSES_SLICES 64

/* One class: blocks of block_size bytes, count of them, aligned to align (0 =
 * alignof(max_align_t)). Specs are given in strictly ascending block_size. */
typedef struct {
    size_t block_size, count, align;
} pk_class_spec;

/* Set state: public only so that it can be declared statically; use the
 * functions, never the fields. */
typedef struct pk_classes {
    /* Read by the fast paths. */
    uint32_t nonempty;      /* bit i: class i has a free block (exact) */
    uint32_t fast_reach;    /* reach, or 0 while a lock is set (forces the locked path) */
    uintptr_t first_start;  /* the first pool's start */
    size_t fast_span;       /* bytes of all pools, or 0 while a lock is set */
    unsigned slice_shift;   /* log2 of a slice's size: the span fits in PK_CLASSES_SLICES slices */
    size_t live, peak_live;   /* (kept apart from in_use: compilers pair adjacent counters */
    size_t in_use, peak_in_use; /* into vector code that costs more than it saves) */
    size_t avail[PK_CLASSES_MAX];          /* free blocks per class */
    size_t sizes[PK_CLASSES_MAX + 1];      /* block sizes, then SIZE_MAX */
    uintptr_t starts[PK_CLASSES_MAX + 1];  /* pool starts, then UINTPTR_MAX */
    /* first[b]: the first class that can hold a size s with b bits in
     * max(s - 1, 1): the octave table (b = 1..bits of size_t). */
    unsigned char first[sizeof(size_t) * CHAR_BIT + 1];
    /* slice[k]: the last pool starting at or below the start of slice k. */
    unsigned char slice[PK_CLASSES_SLICES];
    /* Read by the slow paths. */
    uint32_t reach;         /* ~0: fall-through on; 1: off */
    size_t n;               /* classes */
    size_t span;            /* bytes of all pools */
    pk_class_spec specs[PK_CLASSES_MAX];
    pk_pool pools[PK_CLASSES_MAX];
    uint64_t failures;      /* NULL returns for want of memory (the pools never fail) */
    uint64_t rejected;      /* misuse refused by the set itself (foreign, bad alignment) */
    const char *name;
    pk_lock lock;
    pk_allocator view;
} pk_classes;

/* Bytes a buffer needs for the classes in specs[0..n), whatever its address:
 * the sum of PK_POOL_BUFFER_SIZE(block_size, count, align) over the classes
 * (each pool's worst-case alignment padding and usage map included; nothing
 * between pools). Returns 0 when the specs are invalid (see pk_classes_init)
 * or the sum would overflow size_t. O(n). */
size_t pk_classes_buffer_size(const pk_class_spec *specs, size_t n);

/* Makes a set of n classes in buf: class i is a pool of specs[i].count blocks
 * of specs[i].block_size bytes aligned to specs[i].align. The specs are
 * copied (specs may be a temporary). O(n); no block is touched. Returns
 * PK_ERR_INVALID_ARG, leaving *c untouched and calling no handler, iff c, buf
 * or specs is NULL, n is 0 or above PK_CLASSES_MAX, a block_size or count is
 * 0, an align is not 0 nor a power of two, block sizes are not strictly
 * ascending, or buf_size < pk_classes_buffer_size(specs, n) (0 included).
 * Bytes beyond that size are left unused. Fall-through is on, no lock, named
 * "classes". */
pk_status pk_classes_init(pk_classes *c, void *buf, size_t buf_size, const pk_class_spec *specs,
                          size_t n);

/* A block of the smallest class whose block_size >= size (size 0: the
 * smallest class), aligned to that class's alignment; with fall-through on,
 * when that class is empty, of the next larger class with a free block. NULL
 * (a failure, counted; not a fault) when no class is that large, or when no
 * class can serve it (fall-through off: that class is empty). O(1), see the
 * top of this file. If the class's free list is found damaged (a write after
 * free), PK_ERR_CORRUPT is reported once with the set's name and counted as
 * rejected, the list is rebuilt and NULL is returned. */
void *pk_classes_alloc(pk_classes *c, size_t size);

/* Returns p to its class: O(1) to find the pool when no pool is smaller than
 * a 64th of the buffer, O(n) in the classes at worst (see the top of this
 * file), then O(1) in the pool. free(NULL) is a no-op returning PK_OK (it
 * takes no lock). Misuse is reported once through the fault handler with the
 * set's name, returned, counted as rejected, and changes nothing:
 * PK_ERR_FOREIGN_PTR (outside every pool's blocks), PK_ERR_MISALIGNED_PTR
 * (inside a block or its padding), PK_ERR_DOUBLE_FREE (not allocated). */
pk_status pk_classes_free(pk_classes *c, void *p);

/* Fall-through on (the default) or off. O(1); takes the lock. */
void pk_classes_set_fallthrough(pk_classes *c, bool on);

/* Statistics of class i (its pool's: see pk_pool_stats). The set's failures
 * and its own rejections (foreign pointers outside every pool, bad
 * alignments) are counted in the totals only. i at or above the number of
 * classes: *out is zeroed (no lock taken). O(1); takes the lock. */
void pk_classes_class_stats(const pk_classes *c, size_t i, pk_stats *out);

/* Totals: capacity, in_use, free_bytes, allocs, frees, failures and rejected
 * summed over the classes (plus the set's own failures and rejections);
 * requested = in_use (debug builds: the bytes requested, exact); live and in_use with their exact high-water marks for
 * the set as a whole (not the sum of the classes' peaks); largest_free the
 * block size of the largest class with a free block, which is also the
 * largest request that would succeed (with or without fall-through);
 * block_size 0 (the set has several), so pk_frag_external tells how much of
 * the free memory lies in classes smaller than the largest free one.
 * O(n); takes the lock. */
void pk_classes_stats(const pk_classes *c, pk_stats *out);

/* Sets the set's and every class's peaks to the current values. O(free
 * blocks) (see pk_pool_reset_peaks); takes the lock. */
void pk_classes_reset_peaks(pk_classes *c);

/* Verifies the set's invariants (the class table, the octave table, the pool
 * starts, the non-empty bitmap and free counts against each pool's free
 * blocks, live and in_use against the pools, the peaks, no lock on a pool)
 * and then each pool's (those of pk_pool_check). Returns PK_OK or the first
 * problem (PK_ERR_CORRUPT; debug builds also PK_ERR_GUARD_CORRUPT and
 * PK_ERR_USE_AFTER_FREE, from the guards of live blocks and the poison of
 * quarantined ones), reported once through the fault handler with the
 * set's name. Repairs nothing. O(total blocks). With a lock set, it is taken once, held across
 * the whole walk (the set and every pool: O(total blocks) with it held, which
 * matters for a PRIMASK lock), and released before any report. */
pk_status pk_classes_check(const pk_classes *c);

/* Names the set in faults and reports (the string is kept, not copied; NULL
 * restores "classes"). O(1). */
void pk_classes_set_name(pk_classes *c, const char *name);

/* Sets the lock taken around each operation (copied; NULL removes it).
 * Returns PK_ERR_INVALID_ARG, changing nothing, when exactly one of lock and
 * unlock is NULL. Call it before the set is shared. O(1). */
pk_status pk_classes_set_lock(pk_classes *c, const pk_lock *lock);

/* The set's generic view: alloc_aligned serves an alignment up to that of the
 * class that would serve the size, else NULL (a failure); realloc is
 * pk_realloc's (keeps the block while the new size fits its class, else
 * allocates, copies and frees); usable_size is the class's block size for a
 * live block (debug builds: the size requested), else 0; leaks (debug
 * builds) walks every class, oldest first across them. O(1). */
pk_allocator *pk_classes_allocator(pk_classes *c);

/* Debug builds record each call's site (poolkit/debug.h). */
#if PK_DEBUG && !defined(PK_BUILDING_LIBRARY)
#define pk_classes_alloc(c, size) PK_DEBUG_AT_(pk_classes_alloc((c), (size)))
#define pk_classes_free(c, p) PK_DEBUG_AT_(pk_classes_free((c), (p)))
#endif

#ifdef __cplusplus
}
#endif

#endif
