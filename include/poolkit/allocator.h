/*
 * The generic view: every poolkit allocator (and any allocator a user wraps)
 * behind one interface, so that tools, tests and the debug layer treat them
 * alike. Each allocator X offers `pk_allocator *pk_X_allocator(X *x)`, a view
 * stored inside X (no allocation, valid as long as X is).
 */
#ifndef POOLKIT_ALLOCATOR_H
#define POOLKIT_ALLOCATOR_H

#include "poolkit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One live allocation, as the leak functions report it. */
typedef struct {
    const void *ptr;    /* what the allocation returned */
    size_t size;        /* bytes requested */
    const char *file;   /* allocation site, NULL when unknown */
    int line;
    uint32_t owner;     /* owner at allocation (pk_set_owner), 0 when none */
    uint64_t seq;       /* allocation sequence number, process-wide, from 1 */
} pk_leak;

typedef void (*pk_leak_fn)(const pk_leak *leak, void *ctx);

/* What an allocator provides. `self` is the allocator object. Fill all entries
 * but `realloc`, which may be NULL (pk_realloc then allocates, copies and
 * frees). Functions report misuse with pk_report_fault, as poolkit's own
 * allocators do; alloc_aligned itself rejects an alignment that is not 0 nor a
 * power of two (NULL and PK_ERR_INVALID_ARG). */
typedef struct pk_allocator_ops {
    /* size bytes aligned to align (0 = the allocator's default), or NULL. */
    void *(*alloc_aligned)(void *self, size_t size, size_t align);
    pk_status (*free)(void *self, void *ptr);
    void *(*realloc)(void *self, void *ptr, size_t size);
    void (*stats)(const void *self, pk_stats *out);
    pk_status (*check)(const void *self);
    const char *(*name)(const void *self);
    /* Bytes the client may use at ptr, or 0 when ptr is not a live block of
     * this allocator (no fault is raised: the caller decides). */
    size_t (*usable_size)(const void *self, const void *ptr);
    /* Debug builds: calls cb for each live allocation with a sequence number
     * above since, oldest first (pk_leaks); may be NULL. */
    void (*leaks)(void *self, uint64_t since, pk_leak_fn cb, void *ctx);
} pk_allocator_ops;

typedef struct pk_allocator {
    const pk_allocator_ops *ops;
    void *self;
} pk_allocator;

/* The allocator's alloc_aligned with its default alignment. Same cost. */
void *pk_alloc(pk_allocator *a, size_t size);

/* size bytes aligned to align (a power of two, or 0 for the default). An align
 * that is not a power of two returns NULL and reports PK_ERR_INVALID_ARG.
 * Fixed-size allocators return NULL (a failure) for a size above their block
 * or an alignment above theirs. Cost: the allocator's alloc. */
void *pk_alloc_aligned(pk_allocator *a, size_t size, size_t align);

/* n * size zeroed bytes; NULL (a failure, not a fault) when n * size
 * overflows. Cost: the allocator's alloc plus O(n * size) to zero. */
void *pk_calloc(pk_allocator *a, size_t n, size_t size);

/* realloc(NULL, n) allocates; realloc(p, 0) frees p and returns NULL. On
 * failure returns NULL and p is untouched. Uses the allocator's realloc when it
 * has one; else keeps p when it already holds size bytes, or allocates, copies
 * and frees (O(size) for the copy). A pointer the allocator does not hold live
 * is reported as its free would report it, and NULL is returned. Debug builds
 * without the allocator's realloc: a block of 0 bytes is told from a bad
 * pointer by the leaks op's walk (O(live)). */
void *pk_realloc(pk_allocator *a, void *ptr, size_t size);

/* The allocator's free: PK_OK, or the misuse found (reported once). */
pk_status pk_free(pk_allocator *a, void *ptr);

/* The allocator's statistics (see pk_stats and each allocator's header). */
void pk_stats_get(pk_allocator *a, pk_stats *out);

/* The allocator's full consistency check. */
pk_status pk_check(pk_allocator *a);

/* The allocator's name; never NULL. O(1). */
const char *pk_name(const pk_allocator *a);

/* Debug builds record each call's site (poolkit/common.h). */
#if PK_DEBUG && !defined(PK_BUILDING_LIBRARY)
#define pk_alloc(a, size) PK_DEBUG_AT_(pk_alloc((a), (size)))
#define pk_alloc_aligned(a, size, align) PK_DEBUG_AT_(pk_alloc_aligned((a), (size), (align)))
#define pk_calloc(a, n, size) PK_DEBUG_AT_(pk_calloc((a), (n), (size)))
#define pk_realloc(a, ptr, size) PK_DEBUG_AT_(pk_realloc((a), (ptr), (size)))
#define pk_free(a, ptr) PK_DEBUG_AT_(pk_free((a), (ptr)))
#endif

#ifdef __cplusplus
}
#endif

#endif
