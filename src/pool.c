/*
 * Fixed-size block pool. See include/poolkit/pool.h for the contract.
 *
 * The fast paths (no lock set, a free block on the list) cost one multiply,
 * two usage-map byte accesses and one counter:
 * - a free block's first bytes hold the index of the next free block (read
 *   and written with memcpy: blocks need not be aligned for size_t);
 * - a block's index is recovered from its address without a division: with
 *   stride = odd * 2^shift and inverse = odd^-1 mod 2^n,
 *   rotr((ptr - base) * inverse, shift) equals (ptr - base) / stride when the
 *   offset is a multiple of stride, and is larger than any block index
 *   otherwise (Granlund and Montgomery's exact-division test), so one
 *   comparison rejects foreign pointers, interior pointers and blocks never
 *   handed out;
 * - the peak needs no counter: a block is carved or drawn from the reserve
 *   only when every block in circulation is live, so the peak is peak_base +
 *   draws (see pk_pool_reset_peaks).
 * While a lock is set, fast_limit is 0 and free_head stays PK_POOL_NONE (the
 * list lives in locked_head), so the single comparison of each fast path sends
 * every call to the locked slow path, and the fast path reads nothing that
 * another thread writes.
 * Each slow path is: lock, core, unlock, report. The cores (declared in
 * src/pool_fast.h) take no lock and report nothing, so that pk_classes can run
 * them under its own lock and report with its own name.
 */

#include "core/internal.h"
#include "pool_fast.h"
#include "poolkit/pool.h"

#define POOL_DEFAULT_NAME "pool"

static inline bool is_live(const pk_pool *p, size_t index)
{
    return p->usage[index] == PK_POOL_LIVE;
}

static inline size_t live_blocks(const pk_pool *p)
{
    return (size_t)(p->allocs - p->frees);
}

/* Live blocks as the clients see them: in debug builds, quarantined blocks
 * are free to them though live to the pool. */
static inline size_t client_live(const pk_pool *p)
{
#if PK_DEBUG
    return p->debug.live;
#else
    return live_blocks(p);
#endif
}

static inline size_t peak_blocks(const pk_pool *p)
{
    size_t since_reset = p->peak_base + p->draws;
    return since_reset > p->peak_floor ? since_reset : p->peak_floor;
}

/* The free list the slow paths use: free_head, or locked_head while a lock is
 * set. */
static inline size_t *active_head(pk_pool *p)
{
    return p->lock.lock != NULL ? &p->locked_head : &p->free_head;
}

static const char *pool_name(const pk_pool *p)
{
    return p->name != NULL ? p->name : POOL_DEFAULT_NAME;
}

pk_status pk_pool_init(pk_pool *p, void *buf, size_t buf_size, size_t block_size, size_t align)
{
    if (p == NULL || buf == NULL || block_size == 0) {
        return PK_ERR_INVALID_ARG;
    }
    if (align == 0) {
        align = PK_MAX_ALIGN;
    }
    if (!pk__is_pow2(align)) {
        return PK_ERR_INVALID_ARG;
    }
    size_t carried = block_size; /* bytes a block holds: debug builds add a tag and guards */
    size_t stride;
    if ((PK_DEBUG && pk__add_overflows(block_size, PK_POOL_DEBUG_BYTES_(align), &carried)) ||
        pk__round_up_overflows(carried < sizeof(size_t) ? sizeof(size_t) : carried, align, &stride) ||
        stride > SIZE_MAX / 2) {
        return PK_ERR_INVALID_ARG;
    }

    /* The largest count with PK_POOL_BUFFER_SIZE(block_size, count, align) <=
     * buf_size: worst-case padding, then a block and its usage byte each. */
    size_t padding = align - 1;
    size_t count = buf_size > padding ? (buf_size - padding) / (stride + 1) : 0;
    if (count == 0) {
        return PK_ERR_INVALID_ARG;
    }
    uintptr_t start = (uintptr_t)buf;
    unsigned char *base = (unsigned char *)buf + ((align - (start & (align - 1))) & (align - 1));

    pk_pool fresh = {
        .free_head = PK_POOL_NONE,
        .fast_limit = 0,
        .base = base,
        .usage = base + count * stride,
        .stride = stride,
        .inverse = PK_POOL_INV_ODD_(PK_POOL_ODD_(stride)),
        .shift = pk__ctz(stride),
        .count = count,
        .locked_head = PK_POOL_NONE,
        .reserve_head = PK_POOL_NONE,
        .block_size = block_size,
        .align = align,
        .name = POOL_DEFAULT_NAME,
    };
    fresh.view.ops = &pk_pool_allocator_ops;
    fresh.view.self = p;
    *p = fresh;
    return PK_OK;
}

/* Rebuilds the free lists from the usage map after a damaged link was found:
 * every carved block not marked live is free (and is marked free again). They
 * all go to the reserve, so that the peak stays exact: the old peak is kept as
 * a floor, and from now on the blocks in circulation are exactly the live
 * ones. O(n). Called with the lock. */
static void rebuild_free_lists(pk_pool *p)
{
    size_t head = PK_POOL_NONE;
    for (size_t i = p->carved; i-- > 0;) {
        if (!is_live(p, i)) {
            p->usage[i] = PK_POOL_FREE;
            pk__store_word(block_at(p, i), head);
            head = i;
        }
    }
    p->peak_floor = peak_blocks(p);
    *active_head(p) = PK_POOL_NONE;
    p->reserve_head = head;
    p->peak_base = live_blocks(p);
    p->draws = 0;
}

/* Takes the first block of the list at *head, or returns PK_POOL_NONE when the
 * list is empty; sets *corrupt when the head is not a free carved block. */
static size_t pop_checked(pk_pool *p, size_t *head, bool *corrupt)
{
    size_t index = *head;
    if (index == PK_POOL_NONE) {
        return PK_POOL_NONE;
    }
    if (index >= p->carved || p->usage[index] != PK_POOL_FREE) {
        *corrupt = true;
        return PK_POOL_NONE;
    }
    *head = pk__load_word(block_at(p, index));
    return index;
}

void *pk__pool_alloc_core(pk_pool *p, pk_status *fault)
{
    bool locked = p->lock.lock != NULL;
    bool corrupt = false;
    size_t index = pop_checked(p, active_head(p), &corrupt);
    if (index == PK_POOL_NONE && !corrupt) {
        index = pop_checked(p, &p->reserve_head, &corrupt);
        if (index == PK_POOL_NONE && !corrupt && p->carved < p->count) {
            index = p->carved++;
            if (!locked && !PK_DEBUG) {
                p->fast_limit = p->carved; /* while locked it stays 0, unwritten */
            }
        }
        if (index != PK_POOL_NONE) {
            p->draws++;
        }
    }
    *fault = PK_OK;
    if (corrupt) {
        rebuild_free_lists(p);
        p->rejected++;
        *fault = PK_ERR_CORRUPT;
        return NULL;
    }
    if (index == PK_POOL_NONE) {
        p->failures++;
        return NULL;
    }
    p->usage[index] = PK_POOL_LIVE;
    p->allocs++;
    return block_at(p, index);
}

#if !PK_DEBUG
PK__SLOW_PATH static void *alloc_slow(pk_pool *p)
{
    pk_status fault;
    pk__lock(&p->lock);
    void *block = pk__pool_alloc_core(p, &fault);
    const char *name = pool_name(p);
    pk__unlock(&p->lock);
    if (fault != PK_OK) {
        (void)pk_report_fault(fault, name, NULL);
    }
    return block;
}
#endif

#if PK_DEBUG
static size_t debug_prefix(const pk_pool *p)
{
    return pk__debug_prefix(p->align);
}

/* Really frees the blocks that leave the quarantine (all of them with
 * drain), noting those whose poison was written. Each is poisoned whole, so
 * that its reuse can verify every byte after the tag. */
static void release_held(pk_pool *p, bool drain, pk__debug_notes *out)
{
    size_t prefix = debug_prefix(p);
    pk_status damaged;
    pk_debug_tag tag;
    unsigned char *raw;
    while ((raw = pk__debug_evict(&p->debug, drain, &damaged, &tag)) != NULL) {
        if (damaged != PK_OK) {
            pk__debug_note(out, damaged, raw + prefix, &tag);
        }
        memset(raw + prefix, PK__FILL_POISON, p->stride - prefix);
        (void)pk__pool_free_core(p, raw); /* a live block of the pool: cannot fail */
    }
}

void *pk__pool_debug_alloc(pk_pool *p, size_t size, pk__site site, pk__debug_notes *out)
{
    if (p->debug.held > 0 && live_blocks(p) == p->count) {
        release_held(p, true, out); /* the quarantine never causes a NULL */
    }
    size_t carved = p->carved;
    pk_status fault;
    unsigned char *raw = pk__pool_alloc_core(p, &fault);
    if (fault != PK_OK) {
        pk__debug_note(out, fault, NULL, NULL);
    }
    if (raw == NULL) {
        return NULL;
    }
    size_t prefix = debug_prefix(p);
    if (p->carved == carved && pk__debug_verify_poison(raw + prefix, p->stride - prefix) != PK_OK) {
        pk__debug_note(out, PK_ERR_USE_AFTER_FREE, raw + prefix, NULL); /* handed out refilled */
    }
    return pk__debug_setup(&p->debug, raw, p->stride, size, p->align, site);
}

pk_status pk__pool_debug_free(pk_pool *p, void *ptr, pk__debug_notes *out)
{
    unsigned char *user = ptr;
    size_t offset = (size_t)((uintptr_t)user - (uintptr_t)p->base);
    pk_debug_tag tag;
    pk_status status;
    if (offset >= p->count * p->stride) {
        status = PK_ERR_FOREIGN_PTR;
    } else if (offset % p->stride != debug_prefix(p)) {
        status = PK_ERR_MISALIGNED_PTR;
    } else if (offset / p->stride >= p->carved || !is_live(p, offset / p->stride)) {
        status = PK_ERR_DOUBLE_FREE;
    } else {
        unsigned char *raw;
        status = pk__debug_inspect(user, &tag, &raw);
        if (status == PK_OK) {
            status = pk__debug_retire(&p->debug, user, p->stride);
            if (status != PK_OK) {
                pk__debug_note(out, status, user, &tag); /* freed all the same, guards restored */
            }
            release_held(p, false, out);
            return status;
        }
        if (status == PK_ERR_DOUBLE_FREE) {
            p->rejected++;
            pk__debug_note(out, status, user, &tag);
            return status;
        }
        status = PK_ERR_CORRUPT; /* a live block whose tag was overwritten: kept live */
    }
    p->rejected++;
    pk__debug_note(out, status, user, NULL);
    return status;
}

static void *debug_alloc(pk_pool *p, size_t size)
{
    pk__site site = pk__debug_take_site();
    pk__debug_notes out;
    out.count = 0;
    pk__lock(&p->lock);
    void *block = pk__pool_debug_alloc(p, size, site, &out);
    const char *name = pool_name(p);
    pk__unlock(&p->lock);
    pk__debug_report_notes(&out, name, site);
    return block;
}

void *pk_pool_alloc(pk_pool *p)
{
    return debug_alloc(p, p->block_size);
}
#else
void *pk_pool_alloc(pk_pool *p)
{
    void *block = pk__pool_pop_fast(p);
    return block != NULL ? block : alloc_slow(p);
}
#endif

/* Why ptr, which index_of rejected, is not a block start of the pool. */
static pk_status classify_bad_pointer(const pk_pool *p, const void *ptr)
{
    size_t offset = (size_t)((uintptr_t)ptr - (uintptr_t)p->base);
    if (offset >= p->count * p->stride) {
        return PK_ERR_FOREIGN_PTR;
    }
    if (offset % p->stride != 0) {
        return PK_ERR_MISALIGNED_PTR;
    }
    return PK_ERR_DOUBLE_FREE; /* a block start never handed out */
}

pk_status pk__pool_free_core(pk_pool *p, void *block)
{
    size_t index = index_of(p, block);
    pk_status status = PK_OK;
    if (index >= p->carved) {
        status = classify_bad_pointer(p, block);
    } else if (!is_live(p, index)) {
        status = PK_ERR_DOUBLE_FREE;
    } else {
        p->usage[index] = PK_POOL_FREE;
        size_t *head = active_head(p);
        pk__store_word(block, *head);
        *head = index;
        p->frees++;
    }
    if (status != PK_OK) {
        p->rejected++;
    }
    return status;
}

#if !PK_DEBUG
PK__SLOW_PATH static pk_status free_slow(pk_pool *p, void *block)
{
    if (block == NULL) {
        return PK_OK;
    }
    pk__lock(&p->lock);
    pk_status status = pk__pool_free_core(p, block);
    const char *name = pool_name(p);
    pk__unlock(&p->lock);
    if (status != PK_OK) {
        return pk_report_fault(status, name, block);
    }
    return PK_OK;
}
#endif

pk_status pk_pool_free(pk_pool *p, void *block)
{
#if PK_DEBUG
    pk__site site = pk__debug_take_site();
    if (block == NULL) {
        return PK_OK;
    }
    pk__debug_notes out;
    out.count = 0;
    pk__lock(&p->lock);
    pk_status status = pk__pool_debug_free(p, block, &out);
    const char *name = pool_name(p);
    pk__unlock(&p->lock);
    pk__debug_report_notes(&out, name, site);
    return status;
#else
    return pk__pool_push_fast(p, block) ? PK_OK : free_slow(p, block);
#endif
}

size_t pk_pool_capacity(const pk_pool *p)
{
    return p->count;
}

size_t pk_pool_available(const pk_pool *p)
{
    pk__lock(&p->lock);
    size_t available = p->count - client_live(p);
    pk__unlock(&p->lock);
    return available;
}

bool pk_pool_owns(const pk_pool *p, const void *ptr)
{
    size_t offset = (size_t)((uintptr_t)ptr - (uintptr_t)p->base);
    return offset < p->count * p->stride;
}

size_t pk_pool_usable_size(const pk_pool *p, const void *block)
{
    pk__lock(&p->lock);
#if PK_DEBUG
    size_t offset = (size_t)((uintptr_t)block - (uintptr_t)p->base);
    size_t size = 0;
    pk_debug_tag tag;
    unsigned char *raw;
    if (offset < p->count * p->stride && offset % p->stride == debug_prefix(p) &&
        offset / p->stride < p->carved && is_live(p, offset / p->stride) &&
        pk__debug_inspect(block, &tag, &raw) == PK_OK) {
        size = tag.size;
    }
    pk__unlock(&p->lock);
    return size;
#else
    size_t index = index_of(p, block);
    bool live = index < p->carved && is_live(p, index);
    pk__unlock(&p->lock);
    return live ? p->block_size : 0;
#endif
}

void pk_pool_stats(const pk_pool *p, pk_stats *out)
{
    pk__lock(&p->lock);
#if PK_DEBUG
    /* The clients' view: quarantined blocks are free, requests exact. */
    size_t live = p->debug.live;
    size_t peak = p->debug.peak_live;
    size_t requested = p->debug.requested;
    uint64_t frees = p->frees + p->debug.held;
#else
    size_t live = live_blocks(p);
    size_t peak = peak_blocks(p);
    size_t requested = live * p->block_size;
    uint64_t frees = p->frees;
#endif
    pk_stats s = {
        .capacity = p->count * p->block_size,
        .in_use = live * p->block_size,
        .requested = requested,
        .peak_in_use = peak * p->block_size,
        .free_bytes = (p->count - live) * p->block_size,
        .largest_free = live < p->count ? p->block_size : 0,
        .block_size = p->block_size,
        .live = live,
        .peak_live = peak,
        .allocs = p->allocs,
        .frees = frees,
        .failures = p->failures,
        .rejected = p->rejected,
    };
    pk__unlock(&p->lock);
    *out = s;
}

bool pk__pool_reset_peaks_core(pk_pool *p)
{
    /* Move the free list onto the reserve: blocks freed from now on go to the
     * (empty) free list, so a draw from the reserve again means that every
     * block in circulation is live. The walk to the list's tail trusts no
     * link: one that leaves the free blocks (a write after free) sends every
     * free block to the reserve by the usage map instead. */
    size_t *head = active_head(p);
    bool corrupt = false;
    if (*head != PK_POOL_NONE) {
        size_t tail = *head;
        size_t steps = 0;
        corrupt = tail >= p->carved || p->usage[tail] != PK_POOL_FREE;
        for (size_t next; !corrupt && (next = pk__load_word(block_at(p, tail))) != PK_POOL_NONE;
             tail = next) {
            corrupt = next >= p->carved || p->usage[next] != PK_POOL_FREE || ++steps >= p->carved;
        }
        if (corrupt) {
            rebuild_free_lists(p);
            p->rejected++;
        } else {
            pk__store_word(block_at(p, tail), p->reserve_head);
            p->reserve_head = *head;
            *head = PK_POOL_NONE;
        }
    }
    p->peak_base = live_blocks(p);
    p->draws = 0;
    p->peak_floor = 0;
#if PK_DEBUG
    p->debug.peak_live = p->debug.live;
#endif
    return corrupt;
}

void pk_pool_reset_peaks(pk_pool *p)
{
    pk__lock(&p->lock);
    bool corrupt = pk__pool_reset_peaks_core(p);
    const char *name = pool_name(p);
    pk__unlock(&p->lock);
    if (corrupt) {
        (void)pk_report_fault(PK_ERR_CORRUPT, name, NULL);
    }
}

/* Walks one free list: every link inside the carved blocks, every block
 * marked free, at most `limit` blocks (more means a cycle). Adds its length
 * to *length. */
static bool walk_free_list(const pk_pool *p, size_t head, size_t limit, size_t *length)
{
    for (size_t index = head; index != PK_POOL_NONE; index = pk__load_word(block_at(p, index))) {
        if (index >= p->carved || p->usage[index] != PK_POOL_FREE || *length >= limit) {
            return false;
        }
        (*length)++;
    }
    return true;
}

bool pk__pool_consistent(const pk_pool *p)
{
    bool locked = p->lock.lock != NULL;
    size_t live = live_blocks(p);
    if (p->carved > p->count || p->fast_limit != (locked || PK_DEBUG ? 0 : p->carved) ||
        p->frees > p->allocs || live > p->carved || p->peak_floor > p->count ||
        (locked ? p->free_head : p->locked_head) != PK_POOL_NONE) {
        return false;
    }
    size_t marked = 0;
    for (size_t i = 0; i < p->carved; i++) {
        if (p->usage[i] > PK_POOL_LIVE) {
            return false;
        }
        marked += p->usage[i];
    }
    if (marked != live) {
        return false;
    }
    /* Every free block is on exactly one list, and the blocks in circulation
     * since the peaks were reset are the live ones and the active list. */
    size_t free_blocks = p->carved - live;
    size_t active = 0;
    size_t reserve = 0;
    return walk_free_list(p, locked ? p->locked_head : p->free_head, free_blocks, &active) &&
           walk_free_list(p, p->reserve_head, free_blocks, &reserve) &&
           active + reserve == free_blocks && p->peak_base + p->draws == live + active;
}

#if PK_DEBUG
static size_t granted_block(const void *self, const unsigned char *raw)
{
    (void)raw;
    return ((const pk_pool *)self)->stride;
}

pk_status pk__pool_debug_check(const pk_pool *p, pk_debug_tag *tag, const unsigned char **where)
{
    /* Every live or quarantined block's tag, guards and poison; the pool's
     * live blocks are the clients' and the quarantined ones. */
    *where = NULL;
    if (p->debug.live + p->debug.held != live_blocks(p)) {
        return PK_ERR_CORRUPT;
    }
    return pk__debug_check(&p->debug, granted_block, p, tag, where);
}
#endif

pk_status pk_pool_check(const pk_pool *p)
{
    pk__lock(&p->lock);
    bool ok = pk__pool_consistent(p);
#if PK_DEBUG
    pk_debug_tag tag;
    const unsigned char *where = NULL;
    pk_status status = ok ? pk__pool_debug_check(p, &tag, &where) : PK_ERR_CORRUPT;
    const char *name = pool_name(p);
    pk__unlock(&p->lock);
    pk__site none = {NULL, 0};
    return status == PK_OK ? PK_OK : pk__debug_report(status, name, where, where != NULL ? &tag : NULL, none);
#else
    const char *name = pool_name(p);
    pk__unlock(&p->lock);
    return ok ? PK_OK : pk_report_fault(PK_ERR_CORRUPT, name, NULL);
#endif
}

void pk_pool_set_name(pk_pool *p, const char *name)
{
    p->name = name != NULL ? name : POOL_DEFAULT_NAME;
}

pk_status pk_pool_set_lock(pk_pool *p, const pk_lock *lock)
{
    pk_lock chosen;
    if (!pk__choose_lock(&chosen, lock)) {
        return PK_ERR_INVALID_ARG;
    }
    size_t list = *active_head(p);
    *active_head(p) = PK_POOL_NONE;
    p->lock = chosen;
    *active_head(p) = list;
    /* (Debug builds have no fast path: fast_limit stays 0.) */
    p->fast_limit = p->lock.lock != NULL || PK_DEBUG ? 0 : p->carved;
    return PK_OK;
}

pk_allocator *pk_pool_allocator(pk_pool *p)
{
    return &p->view;
}

/* Generic view. */

static void *view_alloc_aligned(void *self, size_t size, size_t align)
{
    pk_pool *p = self;
    if (align != 0 && !pk__is_pow2(align)) {
        pk__lock(&p->lock);
        p->rejected++;
        pk__unlock(&p->lock);
#if PK_DEBUG
        (void)pk__debug_report(PK_ERR_INVALID_ARG, pool_name(p), NULL, NULL, pk__debug_take_site());
#else
        (void)pk_report_fault(PK_ERR_INVALID_ARG, pool_name(p), NULL);
#endif
        return NULL;
    }
    if (size > p->block_size || align > p->align) {
        pk__lock(&p->lock);
        p->failures++;
        pk__unlock(&p->lock);
        return NULL;
    }
#if PK_DEBUG
    return debug_alloc(p, size);
#else
    return pk_pool_alloc(p);
#endif
}

static pk_status view_free(void *self, void *ptr)
{
    return pk_pool_free(self, ptr);
}

static void view_stats(const void *self, pk_stats *out)
{
    pk_pool_stats(self, out);
}

static pk_status view_check(const void *self)
{
    return pk_pool_check(self);
}

static const char *view_name(const void *self)
{
    return pool_name(self);
}

static size_t view_usable_size(const void *self, const void *ptr)
{
    return pk_pool_usable_size(self, ptr);
}

#if PK_DEBUG
static void view_leaks(void *self, uint64_t since, pk_leak_fn cb, void *ctx)
{
    pk_pool *p = self;
    pk__lock(&p->lock);
    pk__debug_walk(&p->debug, since, cb, ctx);
    pk__unlock(&p->lock);
}
#else
#define view_leaks NULL
#endif

const pk_allocator_ops pk_pool_allocator_ops = {
    view_alloc_aligned, view_free, NULL, view_stats, view_check, view_name, view_usable_size, view_leaks,
};
