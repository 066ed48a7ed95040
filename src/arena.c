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
 *
 * Debug builds (src/debug/hooks.h): every block is laid out with its tag and
 * guards (the bump takes the tag, the guards and the user bytes; the raw
 * block is aligned so that the user pointer is). The arena then knows every
 * live block: the generic view's free retires a block (guards verified,
 * user bytes poisoned, tag "freed") into a quarantine that is only emptied by
 * reset, as nothing is reused before; check walks the live blocks' guards and
 * the freed blocks' poison; reset verifies both before forgetting them; the
 * view's realloc copies exactly the old block's bytes, under the lock.
 */
#include <string.h>

#include "core/internal.h"
#include "poolkit/arena.h"
#if PK_DEBUG
#include "debug/hooks.h"
#endif

#define ARENA_DEFAULT_NAME "arena"
#define ARENA_NONE ((size_t)-1) /* no most recent block */

#if PK_DEBUG
typedef pk__site call_site;
#define take_site() pk__debug_take_site()
#else
typedef int call_site; /* release builds record no call sites */
#define take_site() 0
#endif

static const pk_allocator_ops arena_ops;

static const char *arena_name(const pk_arena *a)
{
    return a->name != NULL ? a->name : ARENA_DEFAULT_NAME;
}

static size_t max_size(size_t x, size_t y)
{
    return x > y ? x : y;
}

/* Bytes from a block's user pointer to the end of the used part when it is
 * the most recent block of size requested bytes. */
static size_t tail_bytes(size_t size)
{
#if PK_DEBUG
    return size + PK_GUARD_SIZE; /* the rear guard */
#else
    return max_size(size, 1); /* a 0-byte block takes a byte: its pointer is unique */
#endif
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
static PK__ALWAYS_INLINE unsigned char *bump(pk_arena *a, size_t size, size_t align, call_site site)
{
    size_t left = a->size - a->used;
    size_t pad = padding(a, align);
#if PK_DEBUG
    size_t need;
    if (!pk__debug_raw_size(size, align, &need)) {
        need = SIZE_MAX; /* more than any buffer: a failure below */
    }
#else
    (void)site;
    size_t need = max_size(size, 1);
#endif
    size_t total;
    if (pad > left || pk__add_overflows(pad, need, &total) || total > left) {
        a->failures++;
        return NULL;
    }
    unsigned char *block = a->base + a->used + pad;
    a->used += total;
    a->requested += size;
    a->live++;
    a->allocs++;
#if PK_DEBUG
    block = pk__debug_setup(&a->debug, block, need, size, align, site);
#endif
    a->last = (size_t)(block - a->base);
    a->last_size = size;
    update_peaks(a);
    return block;
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
#if PK_DEBUG
        .debug = PK_DEBUG_STATE_INIT_,
#endif
    };
    fresh.view.ops = &arena_ops;
    fresh.view.self = a;
    *a = fresh;
    return PK_OK;
}

/* Reports a fault (the block's tag, when known, and the call's site); call
 * with no lock held. */
static pk_status report(pk_status kind, const char *name, const void *ptr, const pk_debug_tag *tag, call_site site)
{
#if PK_DEBUG
    return pk__debug_report(kind, name, ptr, tag, site);
#else
    (void)tag;
    (void)site;
    return pk_report_fault(kind, name, ptr);
#endif
}

/* Counts a refused call and reports it, after the lock is released. */
PK__SLOW_PATH static void *refuse(pk_arena *a, pk_status kind, const void *ptr, const pk_debug_tag *tag,
                                  call_site site, bool locked)
{
    if (!locked) {
        pk__lock(&a->lock);
    }
    a->rejected++;
    const char *name = arena_name(a);
    pk__unlock(&a->lock);
    (void)report(kind, name, ptr, tag, site);
    return NULL;
}

PK__SLOW_PATH static void *alloc_locked(pk_arena *a, size_t size, size_t align, call_site site)
{
    pk__lock(&a->lock);
    if (a->sealed) {
        return refuse(a, PK_ERR_SEALED, NULL, NULL, site, true);
    }
    unsigned char *block = bump(a, size, align, site);
    pk__unlock(&a->lock);
    return block;
}

void *pk_arena_alloc(pk_arena *a, size_t size, size_t align)
{
    call_site site = take_site();
    if (align == 0) {
        align = PK_MAX_ALIGN;
    } else if (!pk__is_pow2(align)) {
        return refuse(a, PK_ERR_INVALID_ARG, NULL, NULL, site, false);
    }
    if (a->lock.lock != NULL) {
        return alloc_locked(a, size, align, site);
    }
    if (a->sealed) {
        return refuse(a, PK_ERR_SEALED, NULL, NULL, site, false);
    }
    return bump(a, size, align, site); /* no lock, no call: the common path */
}

void pk_arena_seal(pk_arena *a)
{
    pk__lock(&a->lock);
    a->sealed = true;
    pk__unlock(&a->lock);
}

#if PK_DEBUG
/* Verifies every block's guards and every freed block's poison, then forgets
 * them all (the tools are told the whole used part is the arena's again).
 * Returns the first problem found (*tag, *where: its block), else PK_OK. */
static pk_status debug_forget_blocks(pk_arena *a, pk_debug_tag *tag, const unsigned char **where)
{
    pk_status status = pk__debug_check(&a->debug, NULL, a, tag, where);
    /* Each block is handed back to the tools (memcheck would otherwise see
     * the next block at its address overlap it) when every tag is valid:
     * after damage to a tag a link may lead anywhere. */
    if (pk__debug_lists_intact(&a->debug)) {
        pk_debug_tag ignored;
        pk_status also;
        while (pk__debug_pop_live(&a->debug, NULL, a, &ignored, &also) != NULL) {
        }
        while (pk__debug_evict(&a->debug, true, &also, &ignored) != NULL) {
        }
    }
    pk__debug_open(a->base, a->used);
    pk_debug_state empty = PK_DEBUG_STATE_INIT_;
    a->debug = empty;
    return status;
}
#endif

void pk_arena_reset(pk_arena *a)
{
#if PK_DEBUG
    call_site site = take_site();
    pk_debug_tag tag;
    const unsigned char *where = NULL;
    pk__lock(&a->lock);
    pk_status damage = debug_forget_blocks(a, &tag, &where);
#else
    pk__lock(&a->lock);
#endif
    a->used = 0;
    a->requested = 0;
    a->live = 0;
    a->last = ARENA_NONE;
    a->last_size = 0;
    a->sealed = false;
#if PK_DEBUG
    const char *name = arena_name(a);
    pk__unlock(&a->lock);
    if (damage != PK_OK) {
        (void)report(damage, name, where, where != NULL ? &tag : NULL, site);
    }
#else
    pk__unlock(&a->lock);
#endif
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
#if PK_DEBUG
    size_t overhead = PK_DEBUG_OVERHEAD_(PK_MAX_ALIGN); /* what the next block adds */
#else
    size_t overhead = 0;
#endif
    pk_stats s = {
        .capacity = a->size,
        .in_use = a->used,
        .requested = a->requested,
        .peak_in_use = a->peak_used,
        .free_bytes = left,
        .largest_free = !a->sealed && left > pad + overhead ? left - pad - overhead : 0,
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
        (a->last >= a->used || a->used - a->last != tail_bytes(a->last_size) || a->last_size > a->requested)) {
        return false;
    }
#if PK_DEBUG
    /* Each allocation since reset is live or freed, none twice. */
    if (a->debug.live + a->debug.held > a->live || a->debug.requested > a->requested) {
        return false;
    }
#endif
    if (a->name == NULL || (a->lock.lock == NULL) != (a->lock.unlock == NULL)) {
        return false;
    }
    return a->view.ops == &arena_ops && a->view.self == a;
}

pk_status pk_arena_check(const pk_arena *a)
{
    pk__lock(&a->lock);
    bool ok = arena_consistent(a);
#if PK_DEBUG
    /* Every live block's tag and guards, every freed block's poison. */
    pk_debug_tag tag;
    const unsigned char *where = NULL;
    pk_status status = ok ? pk__debug_check(&a->debug, NULL, a, &tag, &where) : PK_ERR_CORRUPT;
    const char *name = arena_name(a);
    pk__unlock(&a->lock);
    call_site none = {NULL, 0};
    return status == PK_OK ? PK_OK : report(status, name, where, where != NULL ? &tag : NULL, none);
#else
    const char *name = arena_name(a);
    pk__unlock(&a->lock);
    return ok ? PK_OK : pk_report_fault(PK_ERR_CORRUPT, name, NULL);
#endif
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

/* What an own pointer is, under the lock: PK_OK for a live block (*tag its
 * tag), else the fault a free of it is (PK_ERR_FOREIGN_PTR; debug builds
 * also PK_ERR_DOUBLE_FREE with *tag the freed block's, PK_ERR_MISALIGNED_PTR
 * for a pointer into a block or padding, PK_ERR_CORRUPT for damaged tags).
 * Release builds know no blocks: every pointer into the used part is PK_OK.
 * Debug builds: O(blocks since reset), the lists walked. */
static pk_status classify(const pk_arena *a, const void *ptr, pk_debug_tag *tag)
{
    if (!owns_unlocked(a, ptr)) {
        return PK_ERR_FOREIGN_PTR;
    }
#if PK_DEBUG
    return pk__debug_find(&a->debug, ptr, tag);
#else
    (void)tag;
    return PK_OK;
#endif
}

#if PK_DEBUG
/* The bytes of a block from its raw start to the end of its rear guard. */
static size_t debug_extent(const pk_debug_tag *tag)
{
    return tag->pad + sizeof(pk_debug_tag) + PK_GUARD_SIZE + tag->size + PK_GUARD_SIZE;
}
#endif

/* Marks a live block freed (the lock held); returns the fault its guards
 * show (debug builds), else PK_OK. */
/* cppcheck-suppress constParameter ; debug builds write to the block (pk__debug_retire poisons it) */
static pk_status release_block(pk_arena *a, void *ptr, const pk_debug_tag *tag)
{
    a->frees++;
    if (a->last != ARENA_NONE && a->base + a->last == ptr) {
        a->last = ARENA_NONE; /* no longer live: no in-place realloc, usable_size 0 */
        a->last_size = 0;
    }
#if PK_DEBUG
    return pk__debug_retire(&a->debug, ptr, debug_extent(tag));
#else
    (void)tag;
    return PK_OK;
#endif
}

static pk_status free_at(pk_arena *a, void *ptr, call_site site)
{
    pk__lock(&a->lock);
    pk_debug_tag tag;
    pk_status status = classify(a, ptr, &tag);
    if (status != PK_OK) {
        (void)refuse(a, status, ptr, status == PK_ERR_DOUBLE_FREE ? &tag : NULL, site, true);
        return status;
    }
    status = release_block(a, ptr, &tag);
    const char *name = arena_name(a);
    pk__unlock(&a->lock);
    return status == PK_OK ? PK_OK : report(status, name, ptr, &tag, site);
}

static pk_status view_free(void *self, void *ptr)
{
    call_site site = take_site();
    if (ptr == NULL) {
        return PK_OK;
    }
    return free_at(self, ptr, site);
}

static void *view_realloc(void *self, void *ptr, size_t size)
{
    pk_arena *a = self;
    if (ptr == NULL) {
        return pk_arena_alloc(a, size, 0);
    }
    call_site site = take_site();
    if (size == 0) {
        (void)free_at(a, ptr, site);
        return NULL;
    }
    pk__lock(&a->lock);
    pk_debug_tag tag;
    pk_status status = classify(a, ptr, &tag);
    if (status != PK_OK) {
        return refuse(a, status, ptr, status == PK_ERR_DOUBLE_FREE ? &tag : NULL, site, true);
    }
    if (a->sealed) {
        return refuse(a, PK_ERR_SEALED, ptr, NULL, site, true);
    }
    size_t offset = (size_t)((unsigned char *)ptr - a->base);
    void *result = NULL;
    if (offset == a->last && ((uintptr_t)ptr & (PK_MAX_ALIGN - 1u)) == 0) {
        /* The most recent block: grow or shrink in place. */
        if (size <= a->size - offset && tail_bytes(size) <= a->size - offset) {
#if PK_DEBUG
            status = pk__debug_resize(&a->debug, ptr, 0, size, 0);
#endif
            a->used = offset + tail_bytes(size);
            a->requested = a->requested - a->last_size + size;
            a->last_size = size;
            update_peaks(a);
            result = ptr;
        } else {
            a->failures++; /* nothing after it: a new block would not fit either */
        }
    } else {
#if PK_DEBUG
        /* The tag knows the old block's size: exactly its bytes are copied,
         * under the lock, before it is poisoned. */
        size_t copy = tag.size;
#else
        /* An earlier block: copy what may be its bytes (they end at used at
         * the latest) into a new block, outside the lock. */
        size_t copy = a->used - offset;
#endif
        unsigned char *fresh = bump(a, size, PK_MAX_ALIGN, site);
        if (fresh != NULL) {
#if PK_DEBUG
            memcpy(fresh, ptr, copy < size ? copy : size);
            status = release_block(a, ptr, &tag);
#else
            a->frees++;
            pk__unlock(&a->lock);
            memcpy(fresh, ptr, copy < size ? copy : size);
            return fresh;
#endif
        }
        result = fresh;
    }
    const char *name = arena_name(a);
    pk__unlock(&a->lock);
    /* cppcheck-suppress knownConditionTrueFalse ; only debug builds set status after the classify above */
    if (status != PK_OK) {
        (void)report(status, name, ptr, &tag, site);
    }
    return result;
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
#if PK_DEBUG
    pk_debug_tag tag;
    size_t usable = classify(a, ptr, &tag) == PK_OK ? tag.size : 0;
#else
    size_t usable = a->last != ARENA_NONE && a->base + a->last == ptr ? a->last_size : 0;
#endif
    pk__unlock(&a->lock);
    return usable;
}

#if PK_DEBUG
static void view_leaks(void *self, uint64_t since, pk_leak_fn cb, void *ctx)
{
    pk_arena *a = self;
    pk__lock(&a->lock);
    pk__debug_walk(&a->debug, since, cb, ctx);
    pk__unlock(&a->lock);
}
#else
#define view_leaks NULL
#endif

static const pk_allocator_ops arena_ops = {
    view_alloc_aligned, view_free, view_realloc, view_stats, view_check, view_name, view_usable_size, view_leaks,
};
