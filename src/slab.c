/*
 * Slab object caches. See include/poolkit/slab.h for the contract.
 *
 * A slab is slab_size bytes aligned to slab_size; its header sits in its last
 * PK_SLAB_HEADER_SIZE bytes and the 16-bit link array just below it, so both
 * are found from any object by masking its address. The link of object i is
 * LINK_LIVE while it is live, else the index of the next free object of the
 * slab (LINK_END ends the list). An object's index comes from its offset in
 * the slab without a division, as in the pool: with stride = odd * 2^shift
 * and inverse = odd^-1 mod 2^n, rotr(offset * inverse, shift) is offset /
 * stride when stride divides offset, and larger than any index otherwise.
 *
 * The fast paths (no lock set) make no call: alloc pops the first partial
 * slab's free list, free validates the pointer (span, magic, back-pointer,
 * index, link) and pushes it; a slab changes lists in O(1) (doubly linked).
 *
 * A slab whose free list an allocation finds damaged goes to a fourth list,
 * damaged, and stays there: nothing is allocated from it again, it is never
 * given back to the page source, frees of its live objects are accepted, and
 * pk_slab_check reports PK_ERR_CORRUPT while the list is not empty.
 *
 * A growing allocation calls the page source (and builds the slab, running
 * the constructors) without the cache's lock: the page is the call's alone
 * until it is linked on the empty list under the lock again.
 *
 * Debug builds: an object's stride also holds its tag and guards
 * ([padding][tag][front guard] object [rear guard][tail], hooks.h), and a
 * slab's `first` is object 0's user pointer (its colour plus the prefix), so
 * indices, constructors and destructors all work on user pointers. Alloc
 * lays out the tag and guards (setup_kept: the constructed bytes stay), free
 * verifies and restores them (release: no poison, no quarantine), check
 * walks the live objects' guards, and shrink opens a slab's bytes to the
 * tools again before its destructors run. No fast paths.
 */
#include <string.h>

#include "core/internal.h"
#include "poolkit/buddy.h"
#if PK_DEBUG
#include "buddy_pages.h"
#include "debug/hooks.h"
#endif
#include "poolkit/pool.h" /* PK_POOL_INV_ODD_, PK_POOL_ODD_: the exact-division inverse */
#include "poolkit/slab.h"

#define SLAB_DEFAULT_NAME "slab"
#define LINK_LIVE 0xFFFFu
#define LINK_END 0xFFFEu
#define MAX_PER_SLAB 0xFFFDu
/* XORed with the slab's address: a header copied elsewhere, or left in a slab
 * given back (its magic is cleared then), does not pass. */
#define SLAB_MAGIC ((uintptr_t)0x5AB1CAC4E5AB1CA5ull)

enum { LIST_PARTIAL = 1, LIST_FULL = 2, LIST_EMPTY = 3, LIST_DAMAGED = 4 };

typedef struct pk_slab_header slab;
struct pk_slab_header {
    uintptr_t magic;        /* SLAB_MAGIC ^ the slab's address */
    pk_slab_cache *cache;   /* the owner */
    slab *prev;             /* on its list; NULL at the head */
    slab *next;
    unsigned char *first;   /* object 0 (the slab's start + its colour) */
    uint16_t inuse;         /* live objects */
    uint16_t free_head;     /* first free object, or LINK_END */
    uint16_t list;          /* LIST_PARTIAL, LIST_FULL, LIST_EMPTY or LIST_DAMAGED */
    uint16_t unused;
};

PK_STATIC_ASSERT(sizeof(slab) == PK_SLAB_HEADER_SIZE, "PK_SLAB_HEADER_SIZE is the header's size");
PK_STATIC_ASSERT(PK_SLAB_HEADER_SIZE % sizeof(void *) == 0, "the header keeps the links aligned");

static const pk_allocator_ops slab_ops;

static const char *cache_name(const pk_slab_cache *c)
{
    return c->name != NULL ? c->name : SLAB_DEFAULT_NAME;
}

#if PK_DEBUG
/* Bytes from an object's raw start (its stride slot) to its user pointer. */
static size_t debug_prefix(const pk_slab_cache *c)
{
    return pk__debug_prefix(c->align);
}
#endif

static PK__ALWAYS_INLINE uintptr_t slab_base(const pk_slab_cache *c, const slab *s)
{
    return (uintptr_t)s - c->header_offset;
}

static PK__ALWAYS_INLINE uint16_t *links_of(const pk_slab_cache *c, const slab *s)
{
    return (uint16_t *)(void *)((unsigned char *)s - c->header_offset + c->links_offset);
}

static PK__ALWAYS_INLINE slab **list_head(pk_slab_cache *c, unsigned list)
{
    return list == LIST_PARTIAL ? &c->partial
           : list == LIST_FULL  ? &c->full
           : list == LIST_EMPTY ? &c->empty
                                : &c->damaged;
}

static PK__ALWAYS_INLINE size_t *list_count(pk_slab_cache *c, unsigned list)
{
    return list == LIST_PARTIAL ? &c->partial_slabs
           : list == LIST_FULL  ? &c->full_slabs
           : list == LIST_EMPTY ? &c->empty_slabs
                                : &c->damaged_slabs;
}

static PK__ALWAYS_INLINE void list_unlink(pk_slab_cache *c, slab *s)
{
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        *list_head(c, s->list) = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    (*list_count(c, s->list))--;
}

static PK__ALWAYS_INLINE void list_push(pk_slab_cache *c, slab *s, unsigned list)
{
    slab **head = list_head(c, list);
    s->list = (uint16_t)list;
    s->prev = NULL;
    s->next = *head;
    if (*head != NULL) {
        (*head)->prev = s;
    }
    *head = s;
    (*list_count(c, list))++;
}

static PK__ALWAYS_INLINE void list_move(pk_slab_cache *c, slab *s, unsigned list)
{
    list_unlink(c, s);
    list_push(c, s, list);
}

/* Layout of a slab for these parameters: objects per slab (0 when none fits)
 * and the slack left for colouring. */
typedef struct {
    size_t stride, per_slab, slack, links_offset, header_offset;
} layout;

static bool compute_layout(size_t obj_size, size_t align, size_t slab_size, layout *out)
{
    if (obj_size == 0 || !pk__is_pow2(align) || !pk__is_pow2(slab_size) ||
        slab_size <= PK_SLAB_HEADER_SIZE) {
        return false;
    }
    size_t stride;
#if PK_DEBUG
    /* The tag and guards travel with each object (stride stays a multiple of align). */
    size_t carried;
    if (pk__add_overflows(obj_size, PK_DEBUG_OVERHEAD_(align), &carried) ||
        pk__round_up_overflows(carried, align, &stride) || stride > slab_size) {
        return false;
    }
#else
    if (pk__round_up_overflows(obj_size, align, &stride) || stride > slab_size) {
        return false;
    }
#endif
    size_t room = slab_size - PK_SLAB_HEADER_SIZE; /* objects and links */
    size_t per_slab = room / (stride + sizeof(uint16_t));
    if (per_slab > MAX_PER_SLAB) {
        per_slab = MAX_PER_SLAB;
    }
    if (per_slab == 0) {
        return false;
    }
    out->stride = stride;
    out->per_slab = per_slab;
    out->header_offset = room;
    out->links_offset = room - per_slab * sizeof(uint16_t);
    out->slack = out->links_offset - per_slab * stride;
    return true;
}

size_t pk_slab_objects_per_slab(size_t obj_size, size_t align, size_t slab_size)
{
    layout l;
    return compute_layout(obj_size, align != 0 ? align : PK_MAX_ALIGN, slab_size, &l) ? l.per_slab : 0;
}

pk_status pk_slab_init(pk_slab_cache *c, const char *name, size_t obj_size, size_t align,
                       void (*ctor)(void *obj, void *ctx), void (*dtor)(void *obj, void *ctx),
                       void *ctx, const pk_page_source *src, size_t slab_size)
{
    if (c == NULL || src == NULL || src->get == NULL || src->put == NULL) {
        return PK_ERR_INVALID_ARG;
    }
    if (align == 0) {
        align = PK_MAX_ALIGN;
    }
    layout l;
    if (!compute_layout(obj_size, align, slab_size, &l)) {
        return PK_ERR_INVALID_ARG;
    }
    pk_slab_cache fresh = {
        .partial = NULL,
        .empty = NULL,
        .full = NULL,
        .damaged = NULL,
        .slab_mask = ~(uintptr_t)(slab_size - 1),
        .header_offset = l.header_offset,
        .links_offset = l.links_offset,
        .stride = l.stride,
        .inverse = PK_POOL_INV_ODD_(PK_POOL_ODD_(l.stride)),
        .shift = pk__ctz(l.stride),
        .per_slab = l.per_slab,
        .slab_size = slab_size,
        .obj_size = obj_size,
        .align = align,
        .colour_max = l.slack & ~(align - 1),
        .ctor = ctor,
        .dtor = dtor,
        .ctx = ctx,
        .source = *src,
        .name = name != NULL ? name : SLAB_DEFAULT_NAME,
    };
    fresh.view.ops = &slab_ops;
    fresh.view.self = c;
    *c = fresh;
    return PK_OK;
}

/* Makes a slab of the given colour: a page from the source, its header,
 * links and colour, every object constructed. Called WITHOUT the lock: it
 * reads only what init set, and the page is this call's alone until attach
 * links it. NULL when the source has no page (*bad_page set when it returned
 * one not aligned to slab_size: the page went back). */
static slab *build(pk_slab_cache *c, size_t colour, void **bad_page)
{
    unsigned char *page = c->source.get(c->source.ctx, c->slab_size, c->slab_size);
    if (page == NULL) {
        return NULL;
    }
    uintptr_t base = (uintptr_t)page;
    if ((base & ~c->slab_mask) != 0) {
        c->source.put(c->source.ctx, page, c->slab_size);
        *bad_page = page;
        return NULL;
    }
    slab *s = (slab *)(void *)(page + c->header_offset);
    s->magic = SLAB_MAGIC ^ base;
    s->cache = c;
#if PK_DEBUG
    s->first = page + colour + debug_prefix(c);
#else
    s->first = page + colour;
#endif
    s->prev = NULL;
    s->next = NULL;
    s->inuse = 0;
    s->free_head = 0;
    s->list = 0;
    s->unused = 0;
    uint16_t *links = links_of(c, s);
    for (size_t i = 0; i < c->per_slab; i++) {
        links[i] = (uint16_t)(i + 1 < c->per_slab ? i + 1 : LINK_END);
#if PK_DEBUG
        /* Guards (and the tag's room) filled, the object new-filled, before
         * its constructor runs: alloc writes the tag, free checks the guards. */
        {
            unsigned char *user = s->first + i * c->stride;
            size_t prefix = debug_prefix(c);
            memset(user - prefix, PK__FILL_GUARD, prefix);
            memset(user, PK__FILL_NEW, c->obj_size);
            memset(user + c->obj_size, PK__FILL_GUARD, c->stride - prefix - c->obj_size);
        }
#endif
        if (c->ctor != NULL) {
            c->ctor(s->first + i * c->stride, c->ctx);
        }
    }
    return s;
}

/* Links a slab build made, of the given colour, on the empty list. Called
 * with the lock. */
static void attach(pk_slab_cache *c, slab *s, size_t colour)
{
    uintptr_t base = slab_base(c, s);
    c->source_exhausted = false;
    c->next_colour = colour + c->align <= c->colour_max ? colour + c->align : 0;
    /* The span of addresses the cache has held slabs in (never shrinks). */
    if (c->span_size == 0) {
        c->span_lo = base;
        c->span_size = c->slab_size;
    } else {
        uintptr_t hi = c->span_lo + c->span_size;
        uintptr_t end = base + c->slab_size;
        if (base < c->span_lo) {
            c->span_lo = base;
        }
        c->span_size = (size_t)((end > hi ? end : hi) - c->span_lo);
    }
    c->slabs++;
    c->slabs_made++;
    list_push(c, s, LIST_EMPTY);
}

/* Pops an object from s (on the partial or empty list), moving s to the list
 * its fill now calls for; NULL when s's free list is damaged. */
static PK__ALWAYS_INLINE void *take(pk_slab_cache *c, slab *s)
{
    uint16_t *links = links_of(c, s);
    size_t index = s->free_head;
    if (index >= c->per_slab || links[index] == LINK_LIVE) {
        return NULL;
    }
    s->free_head = links[index];
    links[index] = LINK_LIVE;
    s->inuse++;
    if (s->inuse == c->per_slab) {
        list_move(c, s, LIST_FULL);
    } else if (s->list != LIST_PARTIAL) {
        list_move(c, s, LIST_PARTIAL);
    }
    size_t live = ++c->live;
    if (live > c->peak_live) {
        c->peak_live = live;
    }
    c->allocs++;
    return s->first + index * c->stride;
}

/* The slow path: takes the lock, then loops. A partial or empty slab gives an
 * object (done), or is found damaged: it goes to the damaged list, the fault
 * is reported with the lock released, and the loop goes on with the next
 * slab. With no slab left, one slab is made without the lock (build), linked
 * on the empty list under the lock again, and the loop picks again: a partial
 * slab another thread made meanwhile comes first, and the new slab then stays
 * on the empty list. Each round moves a slab to the damaged list or is the
 * one growth, so the loop ends. */
PK__SLOW_PATH static void *alloc_slow(pk_slab_cache *c)
{
#if PK_DEBUG
    pk__site site = pk__debug_take_site();
#endif
    bool grown = false;
    pk__lock(&c->lock);
    for (;;) {
        slab *s = c->partial != NULL ? c->partial : c->empty;
        if (s != NULL) {
            void *obj = take(c, s);
            if (obj != NULL) {
#if PK_DEBUG
                obj = pk__debug_setup_kept(&c->debug, (unsigned char *)obj - debug_prefix(c), c->stride,
                                           c->obj_size, c->align, site);
#endif
                pk__unlock(&c->lock);
                return obj;
            }
            list_move(c, s, LIST_DAMAGED);
            c->rejected++;
            const char *name = cache_name(c);
            pk__unlock(&c->lock);
#if PK_DEBUG
            (void)pk__debug_report(PK_ERR_CORRUPT, name, (void *)slab_base(c, s), NULL, site);
#else
            (void)pk_report_fault(PK_ERR_CORRUPT, name, (void *)slab_base(c, s));
#endif
            pk__lock(&c->lock);
            continue;
        }
        if (grown) {
            break;
        }
        grown = true;
        size_t colour = c->next_colour;
        const char *name = cache_name(c);
        pk__unlock(&c->lock);
        void *bad_page = NULL;
        slab *fresh = build(c, colour, &bad_page);
        if (bad_page != NULL) {
#if PK_DEBUG
            (void)pk__debug_report(PK_ERR_MISALIGNED_PTR, name, bad_page, NULL, site);
#else
            (void)pk_report_fault(PK_ERR_MISALIGNED_PTR, name, bad_page);
#endif
        }
        pk__lock(&c->lock);
        if (fresh != NULL) {
            attach(c, fresh, colour);
        } else if (bad_page == NULL) {
            /* get returned NULL: exhaustion, as far as the cache can tell (a
             * page source that failed for another reason, e.g. a buddy that
             * reported a fault, looks the same through pk_page_source). */
            c->source_exhausted = true;
        }
    }
    c->failures++;
    pk__unlock(&c->lock);
    return NULL;
}

void *pk_slab_alloc(pk_slab_cache *c)
{
#if PK_DEBUG
    return alloc_slow(c); /* no fast path: every object gets its tag under the lock */
#else
    if (c->lock.lock == NULL) {
        slab *s = c->partial;
        if (s != NULL) {
            void *obj = take(c, s);
            if (obj != NULL) {
                return obj;
            }
        }
    }
    return alloc_slow(c);
#endif
}

/* The slab that owns ptr, or NULL when ptr is not in one of this cache's
 * slabs. Reads only inside the span of slabs the cache has held. */
static PK__ALWAYS_INLINE slab *owner_of(const pk_slab_cache *c, const void *ptr)
{
    uintptr_t addr = (uintptr_t)ptr;
    if ((size_t)(addr - c->span_lo) >= c->span_size) {
        return NULL;
    }
    uintptr_t base = addr & c->slab_mask;
    slab *s = (slab *)(base + c->header_offset);
    if (s->magic != (SLAB_MAGIC ^ base) || s->cache != c) {
        return NULL;
    }
    return s;
}

/* The index of ptr in s, or a value >= per_slab when ptr is not an object start. */
static PK__ALWAYS_INLINE size_t index_in(const pk_slab_cache *c, const slab *s, const void *ptr)
{
    size_t offset = (size_t)((uintptr_t)ptr - (uintptr_t)s->first);
    return pk__rotr(offset * c->inverse, c->shift);
}

/* Puts object index of s back, moving s to the list its fill now calls for
 * (a damaged slab stays on the damaged list). */
static PK__ALWAYS_INLINE void give_back(pk_slab_cache *c, slab *s, size_t index)
{
    uint16_t *links = links_of(c, s);
    links[index] = s->free_head;
    s->free_head = (uint16_t)index;
    s->inuse--;
    if (s->inuse == 0) {
        if (s->list != LIST_DAMAGED) { /* a damaged slab stays where it is */
            list_move(c, s, LIST_EMPTY);
        }
    } else if (s->list == LIST_FULL) {
        list_move(c, s, LIST_PARTIAL);
    }
    c->live--;
    c->frees++;
}

/* Why ptr cannot be freed (PK_OK if it can). Called with the lock. */
static pk_status classify(const pk_slab_cache *c, const void *ptr, slab **owner, size_t *index)
{
    slab *s = owner_of(c, ptr);
    if (s == NULL) {
        return PK_ERR_FOREIGN_PTR;
    }
    size_t i = index_in(c, s, ptr);
    if (i >= c->per_slab) {
        return PK_ERR_MISALIGNED_PTR;
    }
    if (links_of(c, s)[i] != LINK_LIVE) {
        return PK_ERR_DOUBLE_FREE;
    }
    *owner = s;
    *index = i;
    return PK_OK;
}

#if PK_DEBUG
/* Debug free: the links say live, freed or not an object, as in release; a
 * live object's guards are verified and restored (a damaged guard is
 * reported and the object freed all the same); a double free reads the tag
 * the last free left (an object start: its tag's bytes are metadata). */
static pk_status debug_free(pk_slab_cache *c, void *obj)
{
    pk__site site = pk__debug_take_site();
    if (obj == NULL) {
        return PK_OK;
    }
    pk__lock(&c->lock);
    slab *s = NULL;
    size_t index = 0;
    pk_debug_tag tag;
    unsigned char *raw = NULL;
    bool tagged = false;
    pk_status status = classify(c, obj, &s, &index);
    if (status == PK_OK) {
        if (pk__debug_inspect(obj, &tag, &raw) == PK_OK) {
            tagged = true;
            status = pk__debug_release(&c->debug, obj, c->stride);
        } else {
            /* The tag itself was overwritten (an underflow past the front
             * guard): reported as damaged guards (no site known), and the
             * object freed all the same, off the debug live list. */
            status = pk__debug_release_lost(&c->debug, (unsigned char *)obj - debug_prefix(c), c->stride,
                                            c->obj_size, c->align);
        }
        give_back(c, s, index);
    } else {
        if (status == PK_ERR_DOUBLE_FREE) {
            tagged = pk__debug_inspect(obj, &tag, &raw) == PK_ERR_DOUBLE_FREE;
        }
        c->rejected++;
    }
    const char *name = cache_name(c);
    pk__unlock(&c->lock);
    return status == PK_OK ? PK_OK : pk__debug_report(status, name, obj, tagged ? &tag : NULL, site);
}
#else

PK__SLOW_PATH static pk_status free_slow(pk_slab_cache *c, void *obj)
{
    if (obj == NULL) {
        return PK_OK;
    }
    pk__lock(&c->lock);
    slab *s = NULL;
    size_t index = 0;
    pk_status status = classify(c, obj, &s, &index);
    if (status == PK_OK) {
        give_back(c, s, index);
    } else {
        c->rejected++;
    }
    const char *name = cache_name(c);
    pk__unlock(&c->lock);
    return status == PK_OK ? PK_OK : pk_report_fault(status, name, obj);
}
#endif

pk_status pk_slab_free(pk_slab_cache *c, void *obj)
{
#if PK_DEBUG
    return debug_free(c, obj);
#else
    if (c->lock.lock == NULL) {
        slab *s = owner_of(c, obj);
        if (s != NULL) {
            size_t index = index_in(c, s, obj);
            if (index < c->per_slab && links_of(c, s)[index] == LINK_LIVE) {
                give_back(c, s, index);
                return PK_OK;
            }
        }
    }
    return free_slow(c, obj);
#endif
}

size_t pk_slab_shrink(pk_slab_cache *c)
{
    pk__lock(&c->lock);
    slab *list = c->empty;
    size_t count = c->empty_slabs;
    c->empty = NULL;
    c->empty_slabs = 0;
    c->slabs -= count;
    c->slabs_freed += count;
    if (count != 0) {
        c->source_exhausted = false;
    }
    /* Copied now: the slabs are this call's alone once detached. */
    void (*dtor)(void *, void *) = c->dtor;
    void *ctx = c->ctx;
    pk_page_source source = c->source;
    size_t per_slab = c->per_slab, stride = c->stride, header_offset = c->header_offset;
    size_t slab_size = c->slab_size;
    pk__unlock(&c->lock);

    for (size_t k = 0; k < count && list != NULL; k++) {
        slab *s = list;
        list = s->next;
#if PK_DEBUG
        /* Freed objects' bytes and every guard were closed to the tools. */
        pk__debug_open((unsigned char *)s - header_offset, slab_size);
#endif
        if (dtor != NULL) {
            for (size_t i = 0; i < per_slab; i++) {
                dtor(s->first + i * stride, ctx);
            }
        }
        s->magic = 0;
        s->cache = NULL;
        source.put(source.ctx, (unsigned char *)s - header_offset, slab_size);
    }
    return count;
}

size_t pk_slab_usable_size(const pk_slab_cache *c, const void *obj)
{
    pk__lock(&c->lock);
    slab *s = NULL;
    size_t index = 0;
    bool live = obj != NULL && classify(c, obj, &s, &index) == PK_OK;
    pk__unlock(&c->lock);
    return live ? c->obj_size : 0;
}

void pk_slab_stats(const pk_slab_cache *c, pk_stats *out)
{
    pk__lock(&c->lock);
    size_t objects = c->slabs * c->per_slab;
    size_t live = c->live;
    pk_stats s = {
        .capacity = objects * c->obj_size,
        .in_use = live * c->obj_size,
        .requested = live * c->obj_size,
        .peak_in_use = c->peak_live * c->obj_size,
        .free_bytes = (objects - live) * c->obj_size,
        .largest_free = live < objects || !c->source_exhausted ? c->obj_size : 0,
        .block_size = c->obj_size,
        .live = live,
        .peak_live = c->peak_live,
        .allocs = c->allocs,
        .frees = c->frees,
        .failures = c->failures,
        .rejected = c->rejected,
    };
    pk__unlock(&c->lock);
    *out = s;
}

size_t pk_slab_slabs(const pk_slab_cache *c, size_t *partial, size_t *full, size_t *empty)
{
    pk__lock(&c->lock);
    size_t slabs = c->slabs;
    if (partial != NULL) {
        *partial = c->partial_slabs;
    }
    if (full != NULL) {
        *full = c->full_slabs;
    }
    if (empty != NULL) {
        *empty = c->empty_slabs;
    }
    pk__unlock(&c->lock);
    return slabs;
}

void pk_slab_reset_peaks(pk_slab_cache *c)
{
    pk__lock(&c->lock);
    c->peak_live = c->live;
    pk__unlock(&c->lock);
}

/* One slab's header and free list. */
static bool slab_consistent(const pk_slab_cache *c, const slab *s, unsigned list)
{
    uintptr_t base = slab_base(c, s);
    if ((base & ~c->slab_mask) != 0 || (size_t)(base - c->span_lo) >= c->span_size ||
        c->span_size - (size_t)(base - c->span_lo) < c->slab_size ||
        s->magic != (SLAB_MAGIC ^ base) || s->cache != c || s->list != list) {
        return false;
    }
#if PK_DEBUG
    size_t colour = (size_t)((uintptr_t)s->first - base) - debug_prefix(c);
#else
    size_t colour = (size_t)((uintptr_t)s->first - base);
#endif
    if (colour > c->colour_max || (colour & (c->align - 1)) != 0) {
        return false;
    }
    size_t inuse = s->inuse;
    bool fill_ok = list == LIST_FULL    ? inuse == c->per_slab
                   : list == LIST_EMPTY ? inuse == 0
                                        : inuse > 0 && inuse < c->per_slab;
    if (!fill_ok) {
        return false;
    }
    const uint16_t *links = links_of(c, s);
    size_t marked = 0;
    for (size_t i = 0; i < c->per_slab; i++) {
        marked += links[i] == LINK_LIVE;
    }
    if (marked != inuse) {
        return false;
    }
    /* The free list: indices in range, no live object, ends within the free
     * count (a cycle does not), and as long as the free count (so that every
     * free object is on it: a list that ends is made of distinct objects). */
    size_t length = 0;
    for (size_t i = s->free_head; i != LINK_END; i = links[i]) {
        if (i >= c->per_slab || links[i] == LINK_LIVE || length >= c->per_slab - inuse) {
            return false;
        }
        length++;
    }
    return length == c->per_slab - inuse;
}

static bool cache_consistent(const pk_slab_cache *c)
{
    /* A slab an allocation found damaged stays damaged (nothing repairs it):
     * the cache is corrupt as long as it holds one. */
    if (c->damaged != NULL || c->damaged_slabs != 0) {
        return false;
    }
    static const unsigned lists[] = {LIST_PARTIAL, LIST_FULL, LIST_EMPTY};
    const size_t counts[] = {c->partial_slabs, c->full_slabs, c->empty_slabs};
    const slab *const heads[] = {c->partial, c->full, c->empty};
    size_t live = 0;
    for (size_t k = 0; k < 3; k++) {
        size_t length = 0;
        const slab *prev = NULL;
        for (const slab *s = heads[k]; s != NULL; s = s->next) {
            if (length >= counts[k] || s->prev != prev || !slab_consistent(c, s, lists[k])) {
                return false;
            }
            live += s->inuse;
            length++;
            prev = s;
        }
        if (length != counts[k]) {
            return false;
        }
    }
    return c->partial_slabs + c->full_slabs + c->empty_slabs == c->slabs && live == c->live &&
           c->frees <= c->allocs && c->allocs - c->frees == c->live && c->peak_live >= c->live &&
           c->next_colour <= c->colour_max && c->slabs_made - c->slabs_freed == c->slabs;
}

#if PK_DEBUG
static size_t granted_object(const void *self, const unsigned char *raw)
{
    (void)raw;
    return ((const pk_slab_cache *)self)->stride;
}
#endif

pk_status pk_slab_check(const pk_slab_cache *c)
{
    pk__lock(&c->lock);
    bool ok = cache_consistent(c);
#if PK_DEBUG
    /* Every live object's tag and guards (the lists' own links and counts
     * too); no poison: free objects stay constructed. */
    pk_debug_tag tag;
    const unsigned char *where = NULL;
    pk_status status = !ok || c->debug.live != c->live || c->debug.held != 0
                           ? PK_ERR_CORRUPT
                           : pk__debug_check(&c->debug, granted_object, c, &tag, &where);
    const char *name = cache_name(c);
    pk__unlock(&c->lock);
    pk__site none = {NULL, 0};
    return status == PK_OK ? PK_OK : pk__debug_report(status, name, where, where != NULL ? &tag : NULL, none);
#else
    const char *name = cache_name(c);
    pk__unlock(&c->lock);
    return ok ? PK_OK : pk_report_fault(PK_ERR_CORRUPT, name, NULL);
#endif
}

void pk_slab_set_name(pk_slab_cache *c, const char *name)
{
    c->name = name != NULL ? name : SLAB_DEFAULT_NAME;
}

pk_status pk_slab_set_lock(pk_slab_cache *c, const pk_lock *lock)
{
    if (!pk__choose_lock(&c->lock, lock)) {
        return PK_ERR_INVALID_ARG;
    }
    return PK_OK;
}

pk_allocator *pk_slab_allocator(pk_slab_cache *c)
{
    return &c->view;
}

/* Generic view. */

static void *view_alloc_aligned(void *self, size_t size, size_t align)
{
    pk_slab_cache *c = self;
    if (align != 0 && !pk__is_pow2(align)) {
        pk__lock(&c->lock);
        c->rejected++;
        pk__unlock(&c->lock);
#if PK_DEBUG
        (void)pk__debug_report(PK_ERR_INVALID_ARG, cache_name(c), NULL, NULL, pk__debug_take_site());
#else
        (void)pk_report_fault(PK_ERR_INVALID_ARG, cache_name(c), NULL);
#endif
        return NULL;
    }
    if (size > c->obj_size || align > c->align) {
#if PK_DEBUG
        (void)pk__debug_take_site(); /* the view's site is not left for a later call */
#endif
        pk__lock(&c->lock);
        c->failures++;
        pk__unlock(&c->lock);
        return NULL;
    }
    return pk_slab_alloc(c);
}

static pk_status view_free(void *self, void *ptr)
{
    return pk_slab_free(self, ptr);
}

static void view_stats(const void *self, pk_stats *out)
{
    pk_slab_stats(self, out);
}

static pk_status view_check(const void *self)
{
    return pk_slab_check(self);
}

static const char *view_name(const void *self)
{
    return cache_name(self);
}

static size_t view_usable_size(const void *self, const void *ptr)
{
    return pk_slab_usable_size(self, ptr);
}

#if PK_DEBUG
static void view_leaks(void *self, uint64_t since, pk_leak_fn cb, void *ctx)
{
    pk_slab_cache *c = self;
    pk__lock(&c->lock);
    pk__debug_walk(&c->debug, since, cb, ctx);
    pk__unlock(&c->lock);
}
#else
#define view_leaks NULL
#endif

static const pk_allocator_ops slab_ops = {
    view_alloc_aligned, view_free, NULL, view_stats, view_check, view_name, view_usable_size, view_leaks,
};

/* Page source over a buddy allocator. */

/* Debug builds: pages go round the buddy's tags and guards (a slab is a
 * whole block aligned to its size; the cache guards its objects itself):
 * src/buddy_pages.h. */
static void *buddy_get(void *ctx, size_t size, size_t align)
{
#if PK_DEBUG
    return pk__buddy_page_get(ctx, size, align);
#else
    return pk_buddy_alloc_aligned(ctx, size, align);
#endif
}

static void buddy_put(void *ctx, void *page, size_t size)
{
    (void)size;
#if PK_DEBUG
    (void)pk__buddy_page_put(ctx, page); /* a misuse is the buddy's to report */
#else
    (void)pk_buddy_free(ctx, page); /* a misuse is the buddy's to report */
#endif
}

pk_page_source pk_page_source_buddy(struct pk_buddy *b)
{
    pk_page_source source = {buddy_get, buddy_put, b};
    return source;
}
