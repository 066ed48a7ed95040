/*
 * The fixed-size pool's block arithmetic and fast paths as inline functions,
 * and the cores of its slow paths, shared by src/pool.c and by allocators
 * made of pools (pk_classes) that must not pay a call per block and that
 * hold their own lock and report with their own name. The fast paths do what
 * pk_pool_alloc / pk_pool_free do when no lock is set and the block at hand is
 * valid, and decline everything else. The cores do the rest of those calls'
 * work, and pk_pool_check's, without the pool's lock and without reporting:
 * they return the fault to report instead, which the caller reports once it
 * has released whatever lock it holds. pk_pool_alloc and the others are the
 * fast path, then lock, core, unlock, report (see src/pool.c's top comment:
 * division-free indexing, usage map, free-list links).
 */
#ifndef POOLKIT_POOL_FAST_H
#define POOLKIT_POOL_FAST_H

#include "core/internal.h"
#include "poolkit/pool.h"

static inline unsigned char *block_at(const pk_pool *p, size_t index)
{
    return p->base + index * p->stride;
}

/* The block index of ptr, or a value >= count when ptr is not a block start. */
static inline size_t index_of(const pk_pool *p, const void *ptr)
{
    size_t offset = (size_t)((uintptr_t)ptr - (uintptr_t)p->base);
    return pk__rotr(offset * p->inverse, p->shift);
}

/* A block from the pool's free list, or NULL when the fast path does not
 * apply (a lock set, the list empty, its head damaged): then call
 * pk_pool_alloc or, holding the lock that guards the pool, the core. */
static PK__ALWAYS_INLINE void *pk__pool_pop_fast(pk_pool *p)
{
    size_t index = p->free_head;
    /* A block on the free list that is not marked free means a freed block's
     * link was overwritten: the slow path reports it rather than hand a block
     * out twice. */
    if (index < p->fast_limit && p->usage[index] == PK_POOL_FREE) {
        unsigned char *block = block_at(p, index);
        p->free_head = pk__load_word(block);
        p->usage[index] = PK_POOL_LIVE;
        p->allocs++;
        return block;
    }
    return NULL;
}

/* Takes block back and returns true, or returns false when the fast path does
 * not apply (a lock set, block not a live block of the pool: then call
 * pk_pool_free, which frees it or reports the misuse, or, holding the lock,
 * the core). */
static PK__ALWAYS_INLINE bool pk__pool_push_fast(pk_pool *p, void *block)
{
    size_t index = index_of(p, block);
    if (index < p->fast_limit && p->usage[index] == PK_POOL_LIVE) {
        p->usage[index] = PK_POOL_FREE;
        pk__store_word(block, p->free_head);
        p->free_head = index;
        p->frees++;
        return true;
    }
    return false;
}

/* The cores. Each must be called with the pool's lock held when the pool has
 * one (or, for a pool without one, whatever lock guards it), and reports
 * nothing: the caller reports the fault returned, after releasing its lock,
 * with its own name. */

/* pk_pool_alloc without the fast path: a block from the free list, the
 * reserve or the uncarved blocks, or NULL. *fault is PK_OK, or PK_ERR_CORRUPT
 * when the list's head was damaged: the lists were then rebuilt from the
 * usage map and the misuse counted as rejected, and NULL is returned. NULL
 * with PK_OK is a failure (every block live), counted. O(1); O(n) for the
 * rebuild. */
void *pk__pool_alloc_core(pk_pool *p, pk_status *fault);

/* pk_pool_free of a non-NULL block without the fast path: PK_OK (block freed)
 * or the misuse (PK_ERR_FOREIGN_PTR, PK_ERR_MISALIGNED_PTR,
 * PK_ERR_DOUBLE_FREE), counted as rejected, nothing else changed. O(1). */
pk_status pk__pool_free_core(pk_pool *p, void *block);

/* pk_pool_check's walk: whether every invariant holds. O(n). */
bool pk__pool_consistent(const pk_pool *p);

/* pk_pool_reset_peaks without the lock and the report: true when the free
 * list was found damaged (then rebuilt from the usage map and counted as
 * rejected), for the caller to report after unlocking. O(free blocks). */
bool pk__pool_reset_peaks_core(pk_pool *p);

#if PK_DEBUG
#include "debug/notes.h"

/* The debug cores (locking as the cores above; the faults found, the call's
 * own misuse and the quarantined blocks released with their poison written,
 * are noted in *out for the caller to report after unlocking): a block of
 * size bytes (<= the block size) laid out with tag and guards, a use after
 * free of the block reused noted; and a free, whose status is the call's
 * (PK_ERR_GUARD_CORRUPT: freed all the same). */
void *pk__pool_debug_alloc(pk_pool *p, size_t size, pk__site site, pk__debug_notes *out);
pk_status pk__pool_debug_free(pk_pool *p, void *ptr, pk__debug_notes *out);

/* pk_pool_check's debug part, after pk__pool_consistent said true: the
 * counts of the debug lists against the pool's, then every live block's tag
 * and guards and every quarantined block's poison. PK_OK or the problem,
 * with *where the user pointer concerned (or NULL) and *tag its tag. O(n). */
pk_status pk__pool_debug_check(const pk_pool *p, pk_debug_tag *tag, const unsigned char **where);
#endif

#endif
