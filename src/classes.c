/*
 * Size-class set. See include/poolkit/classes.h for the contract.
 *
 * The fast paths (no lock set) are the pool's plus a little arithmetic:
 * - alloc: the octave table and a short scan give the smallest class that
 *   fits (sizes[] ends with SIZE_MAX, so the scan stops at n for a size no
 *   class holds); the bitmap of non-empty classes, masked from that class up
 *   (reach << class: all ones with fall-through, one bit without), gives the
 *   class to serve in one find-first-set; the pool's alloc, then the class's
 *   free count, the bitmap and the set's counters and peaks;
 * - free: one comparison against the span of all pools, the slice table and
 *   a short scan over the pools' starts (pools lie one after another), the
 *   pool's free, then the counters.
 * The pools' own fast paths are inlined (src/pool_fast.h). Whatever they
 * decline goes to the set's slow path.
 * While a lock is set, fast_reach and fast_span are 0, so that the fast paths'
 * single tests send every call to the slow paths.
 *
 * The lock. The inner pools never have a lock of their own: the set's lock
 * guards them. Each slow path takes the set's lock, chooses the pool, runs
 * the pool's fast path or, when that declines, the pool's core (src/pool.c,
 * declared in src/pool_fast.h: the work of pk_pool_alloc / pk_pool_free /
 * pk_pool_check without a lock and without reporting), does the set's
 * bookkeeping (free counts, bitmap, counters, peaks), releases the lock and
 * only then reports the fault the core returned, with the set's name. Without
 * a lock set, taking and releasing it do nothing.
 *
 * Debug builds (PK_DEBUG) have no fast path: alloc and free take the set's
 * lock and run the pool's debug cores (pk__pool_debug_alloc / _free: tag,
 * guards, poison, the pool's quarantine), which note the faults they find;
 * the set reports them after unlocking, with its name and the call's site.
 * The set's counts are the clients' view: a quarantined block is free (the
 * pool hands it out again rather than fail), so avail, the bitmap, live and
 * in_use move with the clients' calls exactly as in release builds.
 */
#include <string.h>

#include "core/internal.h"
#include "poolkit/classes.h"
#include "pool_fast.h"

#define CLASSES_DEFAULT_NAME "classes"
#define CLASSES_NONE ((size_t)-1)
#define REACH_ON (~(uint32_t)0) /* fall-through: every class from the first that fits */
#define REACH_OFF ((uint32_t)1) /* that class only */

static const pk_allocator_ops classes_ops;

static const char *set_name(const pk_classes *c)
{
    return c->name != NULL ? c->name : CLASSES_DEFAULT_NAME;
}

static size_t class_align(const pk_class_spec *s)
{
    return s->align != 0 ? s->align : PK_MAX_ALIGN;
}

/* PK_POOL_BUFFER_SIZE for a class, with checked arithmetic and the pool's own
 * conditions on the stride; 0 when the spec is invalid or too large. */
static size_t pool_bytes(const pk_class_spec *s)
{
    size_t align = class_align(s);
    if (s->block_size == 0 || s->count == 0 || !pk__is_pow2(align)) {
        return 0;
    }
    size_t carried = s->block_size; /* debug builds: plus the tag and guards, as in pk_pool_init */
    size_t stride, blocks, total;
    if ((PK_DEBUG && pk__add_overflows(s->block_size, PK_POOL_DEBUG_BYTES_(align), &carried)) ||
        pk__round_up_overflows(carried < sizeof(size_t) ? sizeof(size_t) : carried, align, &stride) ||
        stride > SIZE_MAX / 2 || pk__mul_overflows(s->count, stride + 1, &blocks) ||
        pk__add_overflows(blocks, align - 1, &total)) {
        return 0;
    }
    return total;
}

/* The first class whose block can hold any size s with b bits in
 * max(s - 1, 1): the lowest such size is 0 for b = 1, 2^(b-1) + 1 above. */
static unsigned char first_class_of_octave(const pk_classes *c, unsigned b)
{
    size_t lowest = b <= 1 ? 0 : ((size_t)1 << (b - 1)) + 1;
    size_t i = 0;
    while (c->sizes[i] < lowest) {
        i++;
    }
    return (unsigned char)i;
}

/* The smallest shift that puts offsets below span in PK_CLASSES_SLICES slices. */
static unsigned slice_shift_for(size_t span)
{
    unsigned shift = 0;
    while (((span - 1) >> shift) >= PK_CLASSES_SLICES) {
        shift++;
    }
    return shift;
}

/* The last pool starting at or below the start of slice k. */
static unsigned char pool_of_slice(const pk_classes *c, size_t k)
{
    size_t offset = k << c->slice_shift;
    size_t i = 0;
    while (i + 1 < c->n && c->starts[i + 1] - c->first_start <= offset) {
        i++;
    }
    return (unsigned char)i;
}

size_t pk_classes_buffer_size(const pk_class_spec *specs, size_t n)
{
    if (specs == NULL || n == 0 || n > PK_CLASSES_MAX) {
        return 0;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t bytes = pool_bytes(&specs[i]);
        if (bytes == 0 || (i > 0 && specs[i].block_size <= specs[i - 1].block_size) ||
            pk__add_overflows(total, bytes, &total)) {
            return 0;
        }
    }
    return total;
}

pk_status pk_classes_init(pk_classes *c, void *buf, size_t buf_size, const pk_class_spec *specs,
                          size_t n)
{
    if (c == NULL || buf == NULL) {
        return PK_ERR_INVALID_ARG;
    }
    size_t need = pk_classes_buffer_size(specs, n);
    if (need == 0 || buf_size < need) {
        return PK_ERR_INVALID_ARG;
    }
    /* Every condition under which a pool's init fails was checked above:
     * nothing fails from here on. */
    memset(c, 0, sizeof *c);
    c->n = n;
    c->reach = REACH_ON;
    c->fast_reach = REACH_ON;
    c->first_start = (uintptr_t)buf;
    c->span = need;
    c->fast_span = need;
    c->slice_shift = slice_shift_for(need);
    c->name = CLASSES_DEFAULT_NAME;
    for (size_t k = 0; k <= PK_CLASSES_MAX; k++) {
        c->sizes[k] = SIZE_MAX;
    }
    for (size_t k = 0; k <= PK_CLASSES_MAX; k++) {
        c->starts[k] = UINTPTR_MAX;
    }
    unsigned char *at = buf;
    for (size_t i = 0; i < n; i++) {
        size_t bytes = pool_bytes(&specs[i]);
        c->specs[i] = specs[i];
        c->sizes[i] = specs[i].block_size;
        c->starts[i] = (uintptr_t)at;
        c->avail[i] = specs[i].count;
        c->nonempty |= (uint32_t)1 << i;
        (void)pk_pool_init(&c->pools[i], at, bytes, specs[i].block_size, specs[i].align);
        at += bytes;
    }
    for (unsigned b = 0; b < sizeof c->first; b++) {
        c->first[b] = first_class_of_octave(c, b);
    }
    for (size_t k = 0; k < PK_CLASSES_SLICES; k++) {
        c->slice[k] = pool_of_slice(c, k);
    }
    c->view.ops = &classes_ops;
    c->view.self = c;
    return PK_OK;
}

/* The set's lock, when it has one. */
static void lock_set(const pk_classes *c)
{
    pk__lock(&c->lock);
}

static void unlock_set(const pk_classes *c)
{
    pk__unlock(&c->lock);
}

/* The smallest class whose block holds size, or n when none does. */
static PK__ALWAYS_INLINE size_t class_for(const pk_classes *c, size_t size)
{
    size_t below = size - (size != 0);
    size_t i = c->first[PK__WORD_BITS - pk__clz(below | 1u)];
    while (c->sizes[i] < size) {
        i++;
    }
    return i;
}

/* The class owning addr, offset bytes into the span (offset < span): the
 * last pool starting at or below it (starts[n] is UINTPTR_MAX). */
static PK__ALWAYS_INLINE size_t owner_of(const pk_classes *c, uintptr_t addr, size_t offset)
{
    size_t i = c->slice[offset >> c->slice_shift];
    while (c->starts[i + 1] <= addr) {
        i++;
    }
    return i;
}

/* Bookkeeping after class i's pool handed out or took back a block. */
static PK__ALWAYS_INLINE void note_alloc(pk_classes *c, size_t i)
{
    if (--c->avail[i] == 0) {
        c->nonempty &= ~((uint32_t)1 << i);
    }
    c->live++;
    c->in_use += c->sizes[i];
    if (c->live > c->peak_live) {
        c->peak_live = c->live;
    }
    if (c->in_use > c->peak_in_use) {
        c->peak_in_use = c->in_use;
    }
}

static PK__ALWAYS_INLINE void note_free(pk_classes *c, size_t i)
{
    c->avail[i]++;
    c->nonempty |= (uint32_t)1 << i;
    c->live--;
    c->in_use -= c->sizes[i];
}

#if PK_DEBUG
/* Every alloc in debug builds: the class as in release builds, then the
 * pool's debug core (a quarantined block counts as free: the pool drains its
 * quarantine rather than fail). Faults noted are reported after unlocking.
 * align 0: the class's own. */
static void *debug_alloc(pk_classes *c, size_t size, size_t align)
{
    pk__site site = pk__debug_take_site();
    pk__debug_notes out;
    out.count = 0;
    void *block = NULL;
    lock_set(c);
    size_t i = class_for(c, size);
    uint32_t candidates = c->nonempty & (uint32_t)((uint64_t)c->reach << i);
    size_t j = candidates != 0 ? pk__ctz(candidates) : CLASSES_NONE;
    if (j == CLASSES_NONE || align > class_align(&c->specs[j])) {
        c->failures++;
    } else {
        block = pk__pool_debug_alloc(&c->pools[j], size, site, &out);
        if (block != NULL) {
            note_alloc(c, j);
        }
    }
    const char *name = set_name(c);
    unlock_set(c);
    pk__debug_report_notes(&out, name, site);
    return block;
}

void *pk_classes_alloc(pk_classes *c, size_t size)
{
    return debug_alloc(c, size, 0);
}

/* Every free in debug builds: the owning pool's debug core; a block whose
 * guards were damaged is freed all the same (and reported). */
pk_status pk_classes_free(pk_classes *c, void *p)
{
    pk__site site = pk__debug_take_site();
    if (p == NULL) {
        return PK_OK;
    }
    uintptr_t addr = (uintptr_t)p;
    size_t offset = (size_t)(addr - c->first_start);
    pk__debug_notes out;
    out.count = 0;
    pk_status status = PK_ERR_FOREIGN_PTR;
    lock_set(c);
    if (offset < c->span) {
        size_t i = owner_of(c, addr, offset);
        status = pk__pool_debug_free(&c->pools[i], p, &out); /* notes its own misuse */
        if (status == PK_OK || status == PK_ERR_GUARD_CORRUPT) {
            note_free(c, i);
        }
    } else {
        c->rejected++; /* (the pool counts its own rejections) */
    }
    const char *name = set_name(c);
    unlock_set(c);
    if (offset >= c->span) {
        return pk__debug_report(status, name, p, NULL, site);
    }
    pk__debug_report_notes(&out, name, site);
    return status;
}
#else
/* Every alloc the fast path does not finish: a lock set, no class to serve,
 * the pool's fast path declined (a block to carve, its list damaged), an
 * alignment asked (the view). align 0: the class's own. */
PK__SLOW_PATH static void *alloc_slow(pk_classes *c, size_t size, size_t align)
{
    lock_set(c);
    size_t i = class_for(c, size);
    uint32_t candidates = c->nonempty & (uint32_t)((uint64_t)c->reach << i);
    size_t j = candidates != 0 ? pk__ctz(candidates) : CLASSES_NONE;
    if (j == CLASSES_NONE || align > class_align(&c->specs[j])) {
        c->failures++;
        unlock_set(c);
        return NULL;
    }
    pk_status fault = PK_OK;
    void *block = pk__pool_pop_fast(&c->pools[j]);
    if (block == NULL) {
        block = pk__pool_alloc_core(&c->pools[j], &fault);
    }
    if (block != NULL) {
        note_alloc(c, j);
    }
    const char *name = set_name(c);
    unlock_set(c);
    if (fault != PK_OK) {
        (void)pk_report_fault(fault, name, NULL); /* the list was damaged, and rebuilt */
    }
    return block;
}

void *pk_classes_alloc(pk_classes *c, size_t size)
{
    size_t i = class_for(c, size);
    /* i <= n <= 32: shifted in 64 bits, i == 32 leaves no candidate. While
     * a lock is set, fast_reach is 0 and the bitmap, which other threads
     * write under the lock, is not read here. */
    uint32_t reach = (uint32_t)((uint64_t)c->fast_reach << i);
    uint32_t candidates = reach != 0 ? c->nonempty & reach : 0;
    if (candidates == 0) {
        return alloc_slow(c, size, 0);
    }
    size_t j = pk__ctz(candidates);
    void *block = pk__pool_pop_fast(&c->pools[j]);
    if (block == NULL) {
        return alloc_slow(c, size, 0);
    }
    note_alloc(c, j);
    return block;
}

/* Every free the fast path does not finish: a lock set, NULL, a misuse. */
PK__SLOW_PATH static pk_status free_slow(pk_classes *c, void *p)
{
    if (p == NULL) {
        return PK_OK;
    }
    uintptr_t addr = (uintptr_t)p;
    size_t offset = (size_t)(addr - c->first_start);
    pk_status status = PK_ERR_FOREIGN_PTR;
    lock_set(c);
    if (offset < c->span) {
        size_t i = owner_of(c, addr, offset);
        pk_pool *pool = &c->pools[i];
        status = pk__pool_push_fast(pool, p) ? PK_OK : pk__pool_free_core(pool, p);
        if (status == PK_OK) {
            note_free(c, i);
        }
    } else {
        c->rejected++; /* (the pool counts its own rejections) */
    }
    const char *name = set_name(c);
    unlock_set(c);
    return status == PK_OK ? PK_OK : pk_report_fault(status, name, p);
}

pk_status pk_classes_free(pk_classes *c, void *p)
{
    uintptr_t addr = (uintptr_t)p;
    size_t offset = (size_t)(addr - c->first_start);
    if (offset >= c->fast_span) {
        return free_slow(c, p);
    }
    size_t i = owner_of(c, addr, offset);
    if (!pk__pool_push_fast(&c->pools[i], p)) {
        return free_slow(c, p);
    }
    note_free(c, i);
    return PK_OK;
}
#endif

void pk_classes_set_fallthrough(pk_classes *c, bool on)
{
    lock_set(c);
    c->reach = on ? REACH_ON : REACH_OFF;
    if (c->lock.lock == NULL) {
        c->fast_reach = c->reach; /* (while locked it stays 0, unwritten) */
    }
    unlock_set(c);
}

void pk_classes_class_stats(const pk_classes *c, size_t i, pk_stats *out)
{
    if (i >= c->n) {
        memset(out, 0, sizeof *out);
        return;
    }
    lock_set(c);
    pk_pool_stats(&c->pools[i], out);
    unlock_set(c);
}

void pk_classes_stats(const pk_classes *c, pk_stats *out)
{
    pk_stats s;
    memset(&s, 0, sizeof s);
    lock_set(c);
    for (size_t i = 0; i < c->n; i++) {
        pk_stats p;
        pk_pool_stats(&c->pools[i], &p);
        s.capacity += p.capacity;
        s.free_bytes += p.free_bytes;
        s.allocs += p.allocs;
        s.frees += p.frees;
        s.failures += p.failures;
        s.rejected += p.rejected;
#if PK_DEBUG
        s.requested += p.requested; /* exact: the pools' tags know it */
#endif
    }
    s.in_use = c->in_use;
#if !PK_DEBUG
    s.requested = c->in_use;
#endif
    s.peak_in_use = c->peak_in_use;
    s.largest_free = c->nonempty != 0 ? c->sizes[pk__log2_floor(c->nonempty)] : 0;
    s.live = c->live;
    s.peak_live = c->peak_live;
    s.failures += c->failures;
    s.rejected += c->rejected;
    unlock_set(c);
    *out = s;
}

void pk_classes_reset_peaks(pk_classes *c)
{
    lock_set(c);
    bool corrupt = false;
    for (size_t i = 0; i < c->n; i++) {
        corrupt |= pk__pool_reset_peaks_core(&c->pools[i]);
    }
    c->peak_live = c->live;
    c->peak_in_use = c->in_use;
    const char *name = set_name(c);
    unlock_set(c);
    if (corrupt) {
        (void)pk_report_fault(PK_ERR_CORRUPT, name, NULL); /* a list was damaged, and rebuilt */
    }
}

/* The set's own invariants, the pools seen through their functions (the
 * pools' own invariants are pk__pool_consistent's). O(n). */
static bool set_consistent(const pk_classes *c)
{
    size_t n = c->n;
    bool locked = c->lock.lock != NULL;
    if (n == 0 || n > PK_CLASSES_MAX || (c->reach != REACH_ON && c->reach != REACH_OFF) ||
        c->fast_reach != (locked ? 0 : c->reach) || c->fast_span != (locked ? 0 : c->span) ||
        c->slice_shift != slice_shift_for(c->span) || (n < 32 && (c->nonempty >> n) != 0)) {
        return false;
    }
    uintptr_t at = c->first_start;
    size_t live = 0, in_use = 0, blocks = 0, capacity = 0;
    for (size_t i = 0; i < n; i++) {
        const pk_class_spec *s = &c->specs[i];
        const pk_pool *pool = &c->pools[i];
        size_t bytes = pool_bytes(s);
        /* No lock of its own (the set's guards it): also before asking it. */
        if (pool->lock.lock != NULL || pool->lock.unlock != NULL || bytes == 0 ||
            (i > 0 && s->block_size <= c->specs[i - 1].block_size) ||
            c->sizes[i] != s->block_size || c->starts[i] != at ||
            pk_pool_capacity(pool) != s->count) {
            return false;
        }
        /* The pool's blocks lie in its part of the buffer: they start within
         * the alignment padding and end before the usage map. */
        if (pk_pool_owns(pool, (const void *)(at - 1)) ||
            !pk_pool_owns(pool, (const void *)(at + class_align(s) - 1)) ||
            pk_pool_owns(pool, (const void *)(at + bytes - s->count))) {
            return false;
        }
        size_t avail = pk_pool_available(pool);
        if (avail != c->avail[i] || avail > s->count || ((c->nonempty >> i) & 1u) != (avail != 0)) {
            return false;
        }
        live += s->count - avail;
        in_use += (s->count - avail) * s->block_size;
        blocks += s->count;
        capacity += s->count * s->block_size;
        at += bytes;
    }
    if (at - c->first_start != c->span || c->sizes[n] != SIZE_MAX) {
        return false;
    }
    for (size_t k = n; k <= PK_CLASSES_MAX; k++) {
        if (c->starts[k] != UINTPTR_MAX) {
            return false;
        }
    }
    for (size_t k = 0; k < PK_CLASSES_SLICES; k++) {
        if (c->slice[k] != pool_of_slice(c, k)) {
            return false;
        }
    }
    for (unsigned b = 0; b < sizeof c->first; b++) {
        if (c->first[b] != first_class_of_octave(c, b)) {
            return false;
        }
    }
    return c->live == live && c->in_use == in_use && c->peak_live >= live &&
           c->peak_in_use >= in_use && c->peak_live <= blocks && c->peak_in_use <= capacity;
}

pk_status pk_classes_check(const pk_classes *c)
{
    lock_set(c);
    bool ok = set_consistent(c); /* first: it bounds n */
    for (size_t i = 0; ok && i < c->n; i++) {
        ok = pk__pool_consistent(&c->pools[i]);
    }
#if PK_DEBUG
    /* Then every live block's tag and guards and every quarantined block's
     * poison, pool by pool. */
    pk_debug_tag tag;
    const unsigned char *where = NULL;
    pk_status status = ok ? PK_OK : PK_ERR_CORRUPT;
    for (size_t i = 0; status == PK_OK && i < c->n; i++) {
        status = pk__pool_debug_check(&c->pools[i], &tag, &where);
    }
    const char *name = set_name(c);
    unlock_set(c);
    pk__site none = {NULL, 0};
    return status == PK_OK ? PK_OK : pk__debug_report(status, name, where, where != NULL ? &tag : NULL, none);
#else
    const char *name = set_name(c);
    unlock_set(c);
    return ok ? PK_OK : pk_report_fault(PK_ERR_CORRUPT, name, NULL);
#endif
}

void pk_classes_set_name(pk_classes *c, const char *name)
{
    c->name = name != NULL ? name : CLASSES_DEFAULT_NAME;
}

pk_status pk_classes_set_lock(pk_classes *c, const pk_lock *lock)
{
    if (!pk__choose_lock(&c->lock, lock)) {
        return PK_ERR_INVALID_ARG;
    }
    bool locked = c->lock.lock != NULL;
    c->fast_reach = locked ? 0 : c->reach;
    c->fast_span = locked ? 0 : c->span;
    return PK_OK;
}

pk_allocator *pk_classes_allocator(pk_classes *c)
{
    return &c->view;
}

/* Generic view. */

static void *view_alloc_aligned(void *self, size_t size, size_t align)
{
    pk_classes *c = self;
    if (align == 0) {
        return pk_classes_alloc(c, size);
    }
    if (!pk__is_pow2(align)) {
        lock_set(c);
        c->rejected++;
        const char *name = set_name(c);
        unlock_set(c);
#if PK_DEBUG
        (void)pk__debug_report(PK_ERR_INVALID_ARG, name, NULL, NULL, pk__debug_take_site());
#else
        (void)pk_report_fault(PK_ERR_INVALID_ARG, name, NULL);
#endif
        return NULL;
    }
#if PK_DEBUG
    return debug_alloc(c, size, align);
#else
    return alloc_slow(c, size, align);
#endif
}

static pk_status view_free(void *self, void *ptr)
{
    return pk_classes_free(self, ptr);
}

static void view_stats(const void *self, pk_stats *out)
{
    pk_classes_stats(self, out);
}

static pk_status view_check(const void *self)
{
    return pk_classes_check(self);
}

static const char *view_name(const void *self)
{
    return set_name(self);
}

static size_t view_usable_size(const void *self, const void *ptr)
{
    const pk_classes *c = self;
    uintptr_t addr = (uintptr_t)ptr;
    size_t offset = (size_t)(addr - c->first_start);
    size_t usable = 0;
    lock_set(c);
    if (offset < c->span) {
        usable = pk_pool_usable_size(&c->pools[owner_of(c, addr, offset)], ptr);
    }
    unlock_set(c);
    return usable;
}

#if PK_DEBUG
/* Every class's live blocks, oldest first across the classes. */
static void view_leaks(void *self, uint64_t since, pk_leak_fn cb, void *ctx)
{
    pk_classes *c = self;
    const pk_debug_state *states[PK_CLASSES_MAX];
    const unsigned char *cursors[PK_CLASSES_MAX];
    lock_set(c);
    for (size_t i = 0; i < c->n; i++) {
        states[i] = &c->pools[i].debug;
    }
    pk__debug_walk_merged(states, c->n, cursors, since, cb, ctx);
    unlock_set(c);
}
#else
#define view_leaks NULL
#endif

static const pk_allocator_ops classes_ops = {
    view_alloc_aligned, view_free, NULL, view_stats, view_check, view_name, view_usable_size, view_leaks,
};
