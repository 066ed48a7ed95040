/*
 * The fixed-size pool's block arithmetic and fast paths as inline functions,
 * shared by src/pool.c and by allocators made of pools (pk_classes) that must
 * not pay a call per block. The fast paths do what pk_pool_alloc /
 * pk_pool_free do when no lock is set and the block at hand is valid, and
 * decline everything else, which the caller then passes to pk_pool_alloc /
 * pk_pool_free: the slow paths, checks and reports stay in src/pool.c (see
 * its top comment: division-free indexing, usage map, free-list links).
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
 * pk_pool_alloc. */
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
 * pk_pool_free, which frees it or reports the misuse). */
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

#endif
