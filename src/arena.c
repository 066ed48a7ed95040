/*
 * Boot arena. See include/poolkit/arena.h for the contract.
 *
 * The state is a bump offset (`used`) into the buffer and a few counters. An
 * allocation computes the padding that brings base + used to the alignment
 * (modulo the alignment, on the address) and compares padding and size with
 * what is left one at a time, so no sum can overflow however large the size
 * or the alignment: an impossible request is an ordinary failure.
 *
 * The arena remembers its most recent block (offset and requested size), which
 * is what lets the generic view's realloc grow or shrink that block in place
 * and usable_size answer exactly for it; of earlier blocks it knows nothing.
 */
#include <string.h>

#include "core/internal.h"
#include "poolkit/arena.h"

#define ARENA_DEFAULT_NAME "arena"
#define ARENA_NONE ((size_t)-1) /* no most recent block */

static const pk_allocator_ops arena_ops;

static const char *arena_name(const pk_arena *a)
{
    return a->name != NULL ? a->name : ARENA_DEFAULT_NAME;
}

static size_t max_size(size_t x, size_t y)
{
    return x > y ? x : y;
}

static void update_peaks(pk_arena *a)
{
    a->peak_used = max_size(a->peak_used, a->used);
    a->peak_live = max_size(a->peak_live, a->live);
}

/* Bytes of padding that align base + used to align (a power of two). */
static size_t padding(const pk_arena *a, size_t align)
{
    uintptr_t here = (uintptr_t)a->base + a->used;
    return (size_t)((0u - here) & ((uintptr_t)align - 1u));
}

/* The bump: a block of size bytes aligned to align, or NULL when it does not
 * fit (counted as a failure). Called with the lock, on an unsealed arena. */
static PK__ALWAYS_INLINE unsigned char *bump(pk_arena *a, size_t size, size_t align)
{
    size_t left = a->size - a->used;
    size_t pad = padding(a, align);
    size_t need = size != 0 ? size : 1;
    size_t total;
    if (pad > left || pk__add_overflows(pad, need, &total) || total > left) {
        a->failures++;
        return NULL;
    }
    size_t offset = a->used + pad;
    a->used += total;
    a->requested += size;
    a->live++;
    a->allocs++;
    a->last = offset;
    a->last_size = size;
    update_peaks(a);
    return a->base + offset;
}

pk_status pk_arena_init(pk_arena *a, void *buf, size_t size)
{
    /* A buffer that would wrap the address space is refused here rather than
     * found corrupt by check later. */
    if (a == NULL || buf == NULL || size == 0 || size - 1 > UINTPTR_MAX - (uintptr_t)buf) {
        return PK_ERR_INVALID_ARG;
    }
    pk_arena fresh = {
        .base = buf,
        .size = size,
        .last = ARENA_NONE,
        .name = ARENA_DEFAULT_NAME,
    };
    fresh.view.ops = &arena_ops;
    fresh.view.self = a;
    *a = fresh;
    return PK_OK;
}

/* Counts a refused call and reports it, after the lock is released. */
PK__SLOW_PATH static void *refuse(pk_arena *a, pk_status kind, const void *ptr, bool locked)
{
    if (!locked) {
        pk__lock(&a->lock);
    }
    a->rejected++;
    const char *name = arena_name(a);
    pk__unlock(&a->lock);
    (void)pk_report_fault(kind, name, ptr);
    return NULL;
}

PK__SLOW_PATH static void *alloc_locked(pk_arena *a, size_t size, size_t align)
{
    pk__lock(&a->lock);
    if (a->sealed) {
        return refuse(a, PK_ERR_SEALED, NULL, true);
    }
    unsigned char *block = bump(a, size, align);
    pk__unlock(&a->lock);
    return block;
}

void *pk_arena_alloc(pk_arena *a, size_t size, size_t align)
{
    if (align == 0) {
        align = PK_MAX_ALIGN;
    } else if (!pk__is_pow2(align)) {
        return refuse(a, PK_ERR_INVALID_ARG, NULL, false);
    }
    if (a->lock.lock != NULL) {
        return alloc_locked(a, size, align);
    }
    if (a->sealed) {
        return refuse(a, PK_ERR_SEALED, NULL, false);
    }
    return bump(a, size, align); /* no lock, no call: the common path */
}

void pk_arena_seal(pk_arena *a)
{
    pk__lock(&a->lock);
    a->sealed = true;
    pk__unlock(&a->lock);
}

void pk_arena_reset(pk_arena *a)
{
    pk__lock(&a->lock);
    a->used = 0;
    a->requested = 0;
    a->live = 0;
    a->last = ARENA_NONE;
    a->last_size = 0;
    a->sealed = false;
    pk__unlock(&a->lock);
}

/* Whether ptr is in the used part: [base, base + used). */
static bool owns_unlocked(const pk_arena *a, const void *ptr)
{
    size_t offset = (size_t)((uintptr_t)ptr - (uintptr_t)a->base);
    return offset < a->used;
}

bool pk_arena_owns(const pk_arena *a, const void *ptr)
{
    pk__lock(&a->lock);
    bool owned = owns_unlocked(a, ptr);
    pk__unlock(&a->lock);
    return owned;
}

void pk_arena_stats(const pk_arena *a, pk_stats *out)
{
    pk__lock(&a->lock);
    size_t left = a->size - a->used;
    size_t pad = padding(a, PK_MAX_ALIGN);
    pk_stats s = {
        .capacity = a->size,
        .in_use = a->used,
        .requested = a->requested,
        .peak_in_use = a->peak_used,
        .free_bytes = left,
        .largest_free = !a->sealed && left > pad ? left - pad : 0,
        .block_size = 0,
        .live = a->live,
        .peak_live = a->peak_live,
        .allocs = a->allocs,
        .frees = a->frees,
        .failures = a->failures,
        .rejected = a->rejected,
    };
    pk__unlock(&a->lock);
    *out = s;
}

void pk_arena_reset_peaks(pk_arena *a)
{
    pk__lock(&a->lock);
    a->peak_used = a->used;
    a->peak_live = a->live;
    pk__unlock(&a->lock);
}

static bool arena_consistent(const pk_arena *a)
{
    if (a->base == NULL || a->size == 0 || a->size > UINTPTR_MAX - (uintptr_t)a->base) {
        return false;
    }
    if (a->used > a->size || a->requested > a->used || a->live > a->used ||
        (a->live == 0) != (a->used == 0) || a->live > a->allocs) {
        return false;
    }
    if (a->peak_used < a->used || a->peak_used > a->size || a->peak_live < a->live ||
        a->peak_live > a->peak_used) {
        return false;
    }
    /* The most recent block ends where the used part does. */
    if (a->last != ARENA_NONE &&
        (a->last >= a->used || a->used - a->last != max_size(a->last_size, 1) ||
         a->last_size > a->requested)) {
        return false;
    }
    if (a->name == NULL || (a->lock.lock == NULL) != (a->lock.unlock == NULL)) {
        return false;
    }
    return a->view.ops == &arena_ops && a->view.self == a;
}

pk_status pk_arena_check(const pk_arena *a)
{
    pk__lock(&a->lock);
    bool ok = arena_consistent(a);
    const char *name = arena_name(a);
    pk__unlock(&a->lock);
    return ok ? PK_OK : pk_report_fault(PK_ERR_CORRUPT, name, NULL);
}

void pk_arena_set_name(pk_arena *a, const char *name)
{
    a->name = name != NULL ? name : ARENA_DEFAULT_NAME;
}

pk_status pk_arena_set_lock(pk_arena *a, const pk_lock *lock)
{
    if (!pk__choose_lock(&a->lock, lock)) {
        return PK_ERR_INVALID_ARG;
    }
    return PK_OK;
}

pk_allocator *pk_arena_allocator(pk_arena *a)
{
    return &a->view;
}

/* Generic view. */

static void *view_alloc_aligned(void *self, size_t size, size_t align)
{
    return pk_arena_alloc(self, size, align);
}

static pk_status view_free(void *self, void *ptr)
{
    pk_arena *a = self;
    if (ptr == NULL) {
        return PK_OK;
    }
    pk__lock(&a->lock);
    if (!owns_unlocked(a, ptr)) {
        (void)refuse(a, PK_ERR_FOREIGN_PTR, ptr, true);
        return PK_ERR_FOREIGN_PTR;
    }
    a->frees++;
    if (a->last != ARENA_NONE && a->base + a->last == ptr) {
        a->last = ARENA_NONE; /* no longer live: no in-place realloc, usable_size 0 */
        a->last_size = 0;
    }
    pk__unlock(&a->lock);
    return PK_OK;
}

static void *view_realloc(void *self, void *ptr, size_t size)
{
    pk_arena *a = self;
    if (ptr == NULL) {
        return pk_arena_alloc(a, size, 0);
    }
    if (size == 0) {
        (void)view_free(a, ptr);
        return NULL;
    }
    pk__lock(&a->lock);
    if (!owns_unlocked(a, ptr)) {
        return refuse(a, PK_ERR_FOREIGN_PTR, ptr, true);
    }
    if (a->sealed) {
        return refuse(a, PK_ERR_SEALED, ptr, true);
    }
    size_t offset = (size_t)((unsigned char *)ptr - a->base);
    if (offset == a->last && ((uintptr_t)ptr & (PK_MAX_ALIGN - 1u)) == 0) {
        /* The most recent block: grow or shrink in place. */
        void *result = NULL;
        if (size <= a->size - offset) {
            a->used = offset + size;
            a->requested = a->requested - a->last_size + size;
            a->last_size = size;
            update_peaks(a);
            result = ptr;
        } else {
            a->failures++; /* nothing after it: a new block would not fit either */
        }
        pk__unlock(&a->lock);
        return result;
    }
    /* An earlier block: copy what may be its bytes (they end at used at the
     * latest) into a new block, outside the lock. */
    size_t copy = a->used - offset;
    unsigned char *fresh = bump(a, size, PK_MAX_ALIGN);
    if (fresh != NULL) {
        a->frees++;
    }
    pk__unlock(&a->lock);
    if (fresh != NULL) {
        memcpy(fresh, ptr, copy < size ? copy : size);
    }
    return fresh;
}

static void view_stats(const void *self, pk_stats *out)
{
    pk_arena_stats(self, out);
}

static pk_status view_check(const void *self)
{
    return pk_arena_check(self);
}

static const char *view_name(const void *self)
{
    return arena_name(self);
}

static size_t view_usable_size(const void *self, const void *ptr)
{
    const pk_arena *a = self;
    pk__lock(&a->lock);
    size_t usable = a->last != ARENA_NONE && a->base + a->last == ptr ? a->last_size : 0;
    pk__unlock(&a->lock);
    return usable;
}

static const pk_allocator_ops arena_ops = {
    view_alloc_aligned, view_free, view_realloc, view_stats, view_check, view_name, view_usable_size, NULL,
};
