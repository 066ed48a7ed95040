/*
 * Slab object caches (Bonwick, "The Slab Allocator", USENIX 1994): a cache of
 * objects of one type, kept constructed while free, on slabs taken from a page
 * source (pk_page_source_buddy, or any caller-supplied pk_page_source).
 *
 * Object lifetime. The constructor runs once for every object when its slab
 * is made; objects then go out and come back still constructed (the client
 * must give them back in their constructed state, as Bonwick asks). The
 * destructor runs for every object of a slab when the empty slab goes back to
 * the page source, in pk_slab_shrink, and never otherwise: an object handed
 * out again is not reconstructed, so the work of the constructor is saved on
 * every allocation but the first.
 *
 * Lists. Each slab is on exactly one of three lists: partial (some objects
 * live), full (all live) and empty (none live). Allocation takes from the
 * first partial slab (the most recently touched: locality), then from an
 * empty slab, and only then makes a new slab; a slab moves between lists in
 * O(1) when it fills or empties. pk_slab_shrink gives every empty slab back.
 * A slab whose free list an allocation finds damaged (a client overflow into
 * its link array, say) is reported once (PK_ERR_CORRUPT) and moved to a
 * fourth list, damaged, for good: nothing is allocated from it again, so the
 * other slabs keep serving; frees of its live objects are still accepted; it
 * is never given back to the page source (its memory is suspect); and
 * pk_slab_check reports PK_ERR_CORRUPT as long as the cache holds it. It
 * still counts in pk_slab_slabs' total (not in any of the three lists) and
 * in the statistics like any slab held.
 *
 * Layout of a slab (slab_size bytes, a power of two, aligned to slab_size):
 *
 *   [colour][obj 0][obj 1]...[obj n-1][slack][link array: n x 16 bits][header]
 *
 * Metadata is always in the slab, at its end (Bonwick's small-object layout),
 * for every object size: a header of a few words and one 16-bit link per
 * object. The owning slab of an object is found in O(1) by masking its
 * address with ~(slab_size - 1): the cache asks the page source for slabs
 * aligned to slab_size. Large objects simply give few objects per slab; choose
 * slab_size for at least 8 of them to keep the slack small. The link of a free
 * object holds the index of the next free object of its slab; the link of a
 * live object holds a LIVE mark. Links live outside the objects, so a free
 * object's constructed state is never overwritten, and a double free is found
 * in O(1). At most 65533 objects per slab are used (a larger slab's surplus
 * is slack).
 *
 * Colouring. The slack (slab_size less the objects and the metadata) offsets
 * the first object by a colour: 0, align, 2 x align, ... up to the slack,
 * rotating by one step per slab made, so that the same object index of
 * different slabs falls on different cache lines (Bonwick, section 4.1).
 * With no slack every colour is 0. Colouring never changes the object count.
 *
 * Misuse caught in release builds, each reported once through the fault
 * handler, returned, counted as rejected, and changing nothing:
 * - PK_ERR_FOREIGN_PTR: not an object of one of this cache's slabs. A pointer
 *   outside the address span of the slabs the cache has held is rejected
 *   without being read through; inside it, the header at the masked address
 *   must carry the slab magic (which encodes the slab's own address) and a
 *   back-pointer to this cache. Slabs given back have their magic cleared, so
 *   a stale pointer into a returned slab is foreign too.
 * - PK_ERR_MISALIGNED_PTR: inside one of the cache's slabs but not an object
 *   start (inside an object or its padding, in the colour, slack or metadata).
 * - PK_ERR_DOUBLE_FREE: an object start that is not live (freed already, or
 *   never handed out).
 * The span check reads the header of a masked address only where the cache
 * has held slabs; a page source whose pages lie in one region (a buddy, a
 * static buffer) makes every such read a read of the page source's memory.
 * A page source that scatters pages over an address space with holes should
 * not be used with pointers the program cannot vouch for.
 *
 * Page source and locks. The cache never holds its lock while it calls out:
 * the page source's get and put, the constructors and the destructors all run
 * without it, and so does the fault handler (which may therefore call
 * poolkit, this cache included, and may see a fault the page source raises,
 * e.g. pk_page_source_buddy's buddy finding its metadata damaged). A growing
 * allocation releases the lock, gets the page, builds the slab and runs its
 * constructors while the page is still its own, then takes the lock again and
 * links the slab on the empty list; if another thread made a partial slab
 * meanwhile, the object comes from that one and the new slab stays empty
 * (given back by the next pk_slab_shrink). So locks never nest: the cache's
 * lock and the page source's are never held together, and the constructor
 * and destructor may call the cache. pk_slab_shrink detaches the empty slabs
 * under the lock and runs the destructors and put after releasing it.
 *
 * Debug builds (PK_DEBUG, poolkit/debug.h): each object also has a tag and
 * guards around it (the stride and pk_slab_objects_per_slab include
 * PK_DEBUG_OVERHEAD_(align); the constructor and destructor get the object
 * pointer, after the tag and front guard, so the guards never overlap the
 * object). At build the guards are filled and each object new-filled before
 * its constructor runs. Objects stay constructed while free, so there is no
 * poison and no quarantine: a freed object is reused at once. Also reported,
 * with the object's allocation site and owner and the call's site:
 * PK_ERR_GUARD_CORRUPT (guard bytes written, found by free, which frees the
 * object all the same and restores the guards, or by check), and a double
 * free then carries the object's last allocation site. There is no fast
 * path: each call takes the lock.
 *
 * Thread and ISR safety: set a lock with pk_slab_set_lock before sharing the
 * cache. Allocation from a slab already made, and free, hold it for O(1); an
 * allocation that makes a slab holds it twice for O(1) (before and after the
 * page source's get and the n constructor calls, which run without it), and
 * one that finds a damaged slab once more for each (the report runs
 * between). Every other call holds it once: shrink for O(1) (it detaches the
 * empty slabs; destructors and put run after), stats, reset_peaks and
 * usable_size for O(1), check for O(slabs x objects per slab).
 * Each function says below whether it is ISR-safe; "ISR-safe" means: when
 * the lock is (a PRIMASK critical section, or no lock and no other user of
 * the cache), and, where the function calls out, when the page source, the
 * constructor, the destructor and the fault handler are.
 */
#ifndef POOLKIT_SLAB_H
#define POOLKIT_SLAB_H

#include "poolkit/allocator.h"
#include "poolkit/common.h"
#include "poolkit/debug.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where a cache takes its slabs. get returns size bytes aligned absolutely to
 * align (the cache asks size = align = slab_size), or NULL; put takes back a
 * page get returned, with the same size. ctx is passed to both. Both are
 * called without the cache's lock (they may be called by several threads at
 * once when the cache is shared: the page source needs its own lock then). A
 * get returning NULL is taken for exhaustion (largest_free, see
 * pk_slab_stats): the interface cannot tell another cause, such as a fault
 * the page source reported, apart. */
typedef struct {
    void *(*get)(void *ctx, size_t size, size_t align);
    void (*put)(void *ctx, void *page, size_t size);
    void *ctx;
} pk_page_source;

struct pk_slab_header; /* a slab's metadata, at its end (src/slab.c) */

/* Cache state: public only so that it can be declared statically; use the
 * functions, never the fields. */
typedef struct pk_slab_cache {
    /* Read by the fast paths. */
    struct pk_slab_header *partial; /* slabs with live and free objects */
    struct pk_slab_header *empty;   /* slabs with no live object */
    struct pk_slab_header *full;    /* slabs with no free object */
    struct pk_slab_header *damaged; /* slabs found damaged at alloc: never used again */
    uintptr_t span_lo;      /* lowest address of a slab ever held */
    size_t span_size;       /* bytes from span_lo to the end of the highest slab */
    uintptr_t slab_mask;    /* ~(slab_size - 1) */
    size_t header_offset;   /* of the header from the slab's start */
    size_t links_offset;    /* of the link array from the slab's start */
    size_t stride;          /* bytes from one object to the next */
    size_t inverse;         /* inverse of stride's odd part, modulo 2^bits(size_t) */
    unsigned shift;         /* trailing zero bits of stride */
    size_t per_slab;        /* objects per slab */
    size_t live;            /* live objects */
    size_t peak_live;
    uint64_t allocs;
    uint64_t frees;
    /* Read by the slow paths. */
    size_t slab_size;
    size_t obj_size;
    size_t align;
    size_t colour_max;      /* largest colour (a multiple of align) */
    size_t next_colour;     /* colour of the next slab made */
    size_t slabs;           /* slabs held */
    size_t partial_slabs;
    size_t empty_slabs;
    size_t full_slabs;
    size_t damaged_slabs;
    uint64_t failures;
    uint64_t rejected;
    uint64_t slabs_made;    /* slabs taken from the page source, ever */
    uint64_t slabs_freed;   /* slabs given back, ever */
    bool source_exhausted;  /* the page source's last get failed (and nothing went back since) */
    void (*ctor)(void *obj, void *ctx);
    void (*dtor)(void *obj, void *ctx);
    void *ctx;
    pk_page_source source;
    const char *name;
    pk_lock lock;
    pk_allocator view;
#if PK_DEBUG
    pk_debug_state debug;
#endif
} pk_slab_cache;

/* Makes an empty cache of objects of obj_size bytes aligned to align (0 =
 * alignof(max_align_t)), on slabs of slab_size bytes from *src (copied). No
 * slab is taken yet: the first allocation makes the first one. name (kept,
 * not copied; NULL = "slab") appears in faults and reports. ctor and dtor may
 * be NULL; both are called with ctx. O(1).
 * Returns PK_ERR_INVALID_ARG, leaving *c untouched and calling no handler nor
 * page source, iff c or src is NULL, src->get or src->put is NULL, obj_size is
 * 0, align is not 0 nor a power of two, slab_size is not a power of two, or a
 * slab of slab_size bytes cannot hold one object (obj_size rounded up to
 * align) and the metadata (PK_SLAB_HEADER_SIZE + 2 bytes per object, see
 * pk_slab_objects_per_slab). Not ISR-safe against other users of *c. */
pk_status pk_slab_init(pk_slab_cache *c, const char *name, size_t obj_size, size_t align,
                       void (*ctor)(void *obj, void *ctx), void (*dtor)(void *obj, void *ctx),
                       void *ctx, const pk_page_source *src, size_t slab_size);

/* Bytes of metadata at the end of every slab, besides 2 bytes per object:
 * 48 on 64-bit targets, 28 on 32-bit ones. */
#define PK_SLAB_HEADER_SIZE (5u * sizeof(void *) + 4u * sizeof(uint16_t))

/* Objects a slab of slab_size bytes holds for obj_size and align as given to
 * pk_slab_init, or 0 when pk_slab_init would refuse them (debug builds: each
 * object's stride includes PK_DEBUG_OVERHEAD_(align)). O(1). ISR-safe (no
 * state, no lock). */
size_t pk_slab_objects_per_slab(size_t obj_size, size_t align, size_t slab_size);

/* A constructed object, aligned as asked at init, or NULL. O(1) when a
 * partial or empty slab has a free object; otherwise makes a slab: one call
 * of the page source's get and obj-per-slab constructor calls, without the
 * lock (see above). NULL when the page source has no page (counted as a
 * failure, not a fault).
 * A slab whose free list is found damaged is reported (PK_ERR_CORRUPT with
 * the slab's start address; counted as rejected, one per damaged slab found;
 * pk_slab_check says more) and moved to the damaged list; the call then goes
 * on with the next slab, or makes one, so it may still return an object, and
 * later calls are not affected.
 * A page source returning a page not aligned to slab_size is reported
 * (PK_ERR_MISALIGNED_PTR with the page's address; the page is given back);
 * the call returns NULL, counted as a failure and not as rejected: the
 * fault is the page source's, not the caller's, whose request was valid and
 * simply could not be served (as when the source has no page).
 * At most one slab is made per call; every call that returns NULL counts one
 * failure. ISR-safe when the lock, page source, constructor and fault
 * handler are. */
void *pk_slab_alloc(pk_slab_cache *c);

/* Returns obj (constructed) to the cache. O(1). free(NULL) is a no-op
 * returning PK_OK. Misuse (PK_ERR_FOREIGN_PTR, PK_ERR_MISALIGNED_PTR,
 * PK_ERR_DOUBLE_FREE, see above) is reported once, returned, counted as
 * rejected, and changes nothing. The slab is not given back when it empties:
 * pk_slab_shrink does that. An object of a damaged slab is accepted; the slab
 * stays on the damaged list. ISR-safe when the lock and the fault handler
 * are. */
pk_status pk_slab_free(pk_slab_cache *c, void *obj);

/* Gives every empty slab back to the page source, running the destructor on
 * each of its objects first, and returns the number of slabs given back
 * (damaged slabs are kept). O(1) under the lock to detach them, then
 * O(empty slabs x objects per slab) destructor calls and one put per slab
 * without the lock. ISR-safe when the lock, the destructor and the page
 * source's put are, and the time is affordable. */
size_t pk_slab_shrink(pk_slab_cache *c);

/* Bytes usable at obj: the object size if obj is a live object of the cache,
 * else 0 (no fault). O(1); takes the lock. ISR-safe when the lock is. */
size_t pk_slab_usable_size(const pk_slab_cache *c, const void *obj);

/* Statistics (see pk_stats): capacity = objects the slabs held now can hold x
 * object size; in_use = requested = live objects x object size; free_bytes =
 * capacity - in_use; largest_free = the object size if an object is free or a
 * slab can be had (the page source is not known to be exhausted: its last
 * get did not fail, or a slab went back since), else 0; block_size = the
 * object size. A damaged slab counts like any slab held (its free objects in
 * free_bytes and largest_free, though none will be handed out). O(1); takes
 * the lock. ISR-safe when the lock is. */
void pk_slab_stats(const pk_slab_cache *c, pk_stats *out);

/* Slabs held now, and on each list (the total also counts damaged slabs,
 * which are on none of the three). O(1); takes the lock. ISR-safe when the
 * lock is. */
size_t pk_slab_slabs(const pk_slab_cache *c, size_t *partial, size_t *full, size_t *empty);

/* Sets peak_live and peak_in_use to the current values. O(1); takes the lock.
 * ISR-safe when the lock is. */
void pk_slab_reset_peaks(pk_slab_cache *c);

/* Verifies every invariant: each list (no cycle, every slab aligned, inside
 * the span, with this cache's magic and back-pointer, its list links and
 * list tag right, its fill matching the list), each slab's free list (no
 * cycle, indices in range, no live object on it, exactly the free objects),
 * its colour, and the counters (slabs per list, live, peak); a cache holding
 * a damaged slab (see Lists) is corrupt. Returns PK_OK or the first problem
 * (PK_ERR_CORRUPT), also reported through the fault handler after the lock
 * is released. Repairs nothing. O(slabs x objects per slab); holds the lock
 * that long: ISR-safe when the lock and the fault handler are, but not meant
 * for interrupt context. */
pk_status pk_slab_check(const pk_slab_cache *c);

/* Names the cache in faults and reports (kept, not copied; NULL restores
 * "slab"). O(1); no lock. Not ISR-safe against other users of *c (call it
 * before sharing the cache). */
void pk_slab_set_name(pk_slab_cache *c, const char *name);

/* Sets the lock taken around each operation (copied; NULL removes it).
 * Returns PK_ERR_INVALID_ARG, changing nothing, when exactly one of lock and
 * unlock is NULL. Call it before the cache is shared. O(1). Not ISR-safe
 * against other users of *c. */
pk_status pk_slab_set_lock(pk_slab_cache *c, const pk_lock *lock);

/* The cache's generic view: pk_alloc(a, size) with size <= the object size
 * and an alignment up to the cache's gives a constructed object; larger
 * sizes or alignments return NULL (a failure). O(1). ISR-safe (returns a
 * pointer into *c; the view's calls are as ISR-safe as the functions above). */
pk_allocator *pk_slab_allocator(pk_slab_cache *c);

struct pk_buddy;

/* A page source over a buddy allocator (poolkit/buddy.h). get(size, align)
 * is pk_buddy_alloc_aligned(b, size, align): a block of the next power of two
 * >= max(size, align, min_block), which is aligned absolutely to align when
 * align <= the buddy's min_block, or when the buddy's managed base is itself
 * aligned to align. So for slabs larger than min_block, give the buddy a
 * buffer aligned to the slab size: then every block of slab_size or more is
 * aligned. Otherwise the buddy returns NULL (a failure: the cache's alloc
 * returns NULL) and nothing is lost. put is pk_buddy_free. The buddy's lock,
 * if set, is never taken while the cache's is held, and a fault the buddy
 * reports from get or put (e.g. PK_ERR_CORRUPT) reaches the handler with no
 * lock held. Slabs smaller than min_block waste the rest of their block.
 * O(1) to make; get and put are O(log n). Making the source is ISR-safe; get
 * and put are as ISR-safe as the buddy is. */
pk_page_source pk_page_source_buddy(struct pk_buddy *b);

/* Debug builds: the call sites of allocations and frees are recorded in the
 * tags and in fault reports (the functions keep their names). */
#if PK_DEBUG && !defined(PK_BUILDING_LIBRARY)
#define pk_slab_alloc(c) PK_DEBUG_AT_(pk_slab_alloc(c))
#define pk_slab_free(c, obj) PK_DEBUG_AT_(pk_slab_free((c), (obj)))
#endif

#ifdef __cplusplus
}
#endif

#endif
