/* The allocators under test (see subjects.h). */
#define _GNU_SOURCE /* malloc_usable_size, mallinfo2 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "poolkit/buddy.h"
#include "poolkit/classes.h"
#include "poolkit/fit.h"
#include "poolkit/heap.h"
#include "poolkit/slab.h"

#include "subjects.h"
#include "workload.h"

/* ---- Objects: constructed and used -------------------------------------- */

/* What the firmware writes into a new object before use (a descriptor's
 * fields, a buffer's header): up to 64 bytes, then a tag the slab cache's
 * accounting reads. Constructing is this and counting it. */
#define TAG_FRESH 0x6672657368u /* constructed, never handed out */
#define TAG_USED 0x75736564u    /* constructed, handed out at least once */

static void construct(void *obj, size_t size)
{
    memset(obj, 0, size < 64 ? size : 64);
    uint64_t tag = TAG_FRESH;
    memcpy(obj, &tag, sizeof tag);
}

static uint64_t get_tag(const void *obj)
{
    uint64_t tag;
    memcpy(&tag, obj, sizeof tag);
    return tag;
}

static void set_tag(void *obj, uint64_t tag) { memcpy(obj, &tag, sizeof tag); }

static void after_alloc_construct(void *self, unsigned type, void *p, size_t size)
{
    (void)self;
    (void)type;
    construct(p, size);
}

/* ---- What every poolkit subject shares ----------------------------------- */

/* The allocator being run, through its generic view for what is not timed
 * (statistics, check), and the bytes it manages (the arena, or the size-class
 * layout). */
static struct {
    pk_allocator *view;
    const char *name;
    size_t span;
    uint64_t constructor_calls, constructed_reuses;
} current;

static void *started(const char *name, pk_status st, pk_allocator *view, size_t span, void *self)
{
    memset(&current, 0, sizeof current);
    current.view = view;
    current.name = name;
    current.span = span;
    return st == PK_OK ? self : NULL;
}

/* An allocator's footprint: the bytes of its span that are not free. */
static void probe_stats(const pk_stats *s, size_t span, demo_probe *out)
{
    out->footprint = span > s->free_bytes ? span - s->free_bytes : 0;
    out->granted = s->in_use;
    out->frag_external = pk_frag_external(s);
}

static void view_probe(void *self, demo_probe *out)
{
    (void)self;
    pk_stats s;
    pk_stats_get(current.view, &s);
    probe_stats(&s, current.span, out);
}

static int check_result(const char *name, pk_status st)
{
    if (st != PK_OK) {
        fprintf(stderr, "poolkit demo: %s: check after the run: %s\n", name, pk_status_str(st));
        return -1;
    }
    return 0;
}

static int view_finish(void *self, uint64_t *reuses, uint64_t *calls)
{
    (void)self;
    *reuses = current.constructed_reuses;
    *calls = current.constructor_calls;
    return check_result(current.name, pk_check(current.view));
}

/* ---- glibc malloc --------------------------------------------------------- */

static struct {
    uint64_t granted;  /* sum of malloc_usable_size over live blocks */
    uint64_t baseline; /* the process's own heap use when the run began */
} libc;

static uint64_t malloc_heap_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* The demo allocates nothing while it replays the workload, so the heap's
 * growth over the baseline is the workload's. */
static void *malloc_init(void *arena, size_t size)
{
    (void)arena;
    (void)size;
    libc.granted = 0;
    libc.baseline = malloc_heap_use();
    return &libc;
}

static void *malloc_alloc(void *self, unsigned type, size_t size)
{
    (void)self;
    return type == DEMO_DMA ? aligned_alloc(DEMO_DMA_ALIGN, size) : malloc(size);
}

static int malloc_release(void *self, unsigned type, void *p)
{
    (void)self;
    (void)type;
    free(p);
    return 0;
}

static void malloc_after_alloc(void *self, unsigned type, void *p, size_t size)
{
    (void)self;
    (void)type;
    libc.granted += malloc_usable_size(p);
    construct(p, size);
}

static void malloc_before_free(void *self, unsigned type, void *p)
{
    (void)self;
    (void)type;
    libc.granted -= malloc_usable_size(p);
}

static void malloc_probe(void *self, demo_probe *out)
{
    (void)self;
    uint64_t use = malloc_heap_use();
    out->footprint = use > libc.baseline ? use - libc.baseline : 0;
    out->granted = libc.granted;
    out->frag_external = -1;
}

static int no_finish(void *self, uint64_t *reuses, uint64_t *calls)
{
    (void)self;
    (void)reuses;
    (void)calls;
    return 0;
}

/* ---- pk_classes: one class per object type --------------------------------- */

/* The layout, from the workload's limits: CQEs (16 B, at most ~20 live),
 * descriptors (64 B, up to the queue depth of 256) and the log records up to
 * 64 B in one class, then four classes for the log records of 65 B..1 KiB
 * (each 1.25 x its share of the 1,024 records that may be pending), DMA
 * buffers aligned to 4 KiB (256), map pages (the cache's 128). With
 * fall-through on, a record whose class is empty goes to the next larger
 * class with a free block. */
static const pk_class_spec class_specs[] = {
    {DEMO_CQE_SIZE, 128, 0},  {DEMO_DESC_SIZE, 512, 0}, {128, 256, 0},       {256, 256, 0},
    {512, 256, 0},            {1024, 256, 0},           {DEMO_DMA_SIZE, 256, DEMO_DMA_ALIGN},
    {DEMO_MAP_SIZE, 128, 0},
};
#define CLASS_COUNT (sizeof class_specs / sizeof class_specs[0])

size_t demo_classes_layout_size(void) { return pk_classes_buffer_size(class_specs, CLASS_COUNT); }

static pk_classes classes;

static void *classes_init(void *arena, size_t size)
{
    size_t layout = demo_classes_layout_size();
    if (layout > size) {
        fprintf(stderr, "poolkit demo: classes: the layout needs %zu bytes, the arena has %zu\n", layout, size);
    }
    return started("classes", pk_classes_init(&classes, arena, size, class_specs, CLASS_COUNT),
                   pk_classes_allocator(&classes), layout, &classes);
}

static void *classes_alloc(void *self, unsigned type, size_t size)
{
    (void)type;
    return pk_classes_alloc(self, size);
}

static int classes_release(void *self, unsigned type, void *p)
{
    (void)type;
    return pk_classes_free(self, p) == PK_OK ? 0 : -1;
}

/* ---- pk_heap (TLSF) and pk_fit: the DMA buffers aligned by the allocator ---- */

static pk_heap heap;

static void *heap_init(void *arena, size_t size)
{
    return started("heap", pk_heap_init(&heap, arena, size), pk_heap_allocator(&heap), size, &heap);
}

static void *heap_alloc(void *self, unsigned type, size_t size)
{
    return type == DEMO_DMA ? pk_heap_alloc_aligned(self, size, DEMO_DMA_ALIGN) : pk_heap_alloc(self, size);
}

static int heap_release(void *self, unsigned type, void *p)
{
    (void)type;
    return pk_heap_free(self, p) == PK_OK ? 0 : -1;
}

static pk_fit fit;

static void *fit_init(void *arena, size_t size, pk_fit_policy policy)
{
    return started("fit", pk_fit_init(&fit, arena, size, policy, 0), pk_fit_allocator(&fit), size, &fit);
}
static void *fit_first_init(void *arena, size_t size) { return fit_init(arena, size, PK_FIT_FIRST); }
static void *fit_best_init(void *arena, size_t size) { return fit_init(arena, size, PK_FIT_BEST); }
static void *fit_next_init(void *arena, size_t size) { return fit_init(arena, size, PK_FIT_NEXT); }

static void *fit_alloc(void *self, unsigned type, size_t size)
{
    return type == DEMO_DMA ? pk_fit_alloc_aligned(self, size, DEMO_DMA_ALIGN) : pk_fit_alloc(self, size);
}

static int fit_release(void *self, unsigned type, void *p)
{
    (void)type;
    return pk_fit_free(self, p) == PK_OK ? 0 : -1;
}

/* ---- pk_buddy: every object, constructed at every allocation ---------------- */

static pk_buddy buddy;

static void *buddy_init(void *arena, size_t size)
{
    return started("buddy", pk_buddy_init(&buddy, arena, size, 16), pk_buddy_allocator(&buddy), size, &buddy);
}

static void *buddy_alloc(void *self, unsigned type, size_t size)
{
    return type == DEMO_DMA ? pk_buddy_alloc_aligned(self, size, DEMO_DMA_ALIGN) : pk_buddy_alloc(self, size);
}

static int buddy_release(void *self, unsigned type, void *p)
{
    (void)type;
    return pk_buddy_free(self, p) == PK_OK ? 0 : -1;
}

/* The typed objects are constructed at every allocation (log records are
 * not typed: filled, not constructed). */
static void buddy_after_alloc(void *self, unsigned type, void *p, size_t size)
{
    (void)self;
    construct(p, size);
    current.constructor_calls += type != DEMO_LOG;
}

/* ---- Slab caches over a buddy ------------------------------------------------ */

/* One cache per typed object, slabs from a pk_buddy over the arena (which is
 * aligned to 1 MiB, so every slab is aligned to its size); log records
 * straight from the buddy. Slab sizes give at least 15 objects a slab. */
typedef struct {
    unsigned type;
    size_t size, align, slab_size;
    const char *name;
} cache_spec;

static const cache_spec cache_specs[] = {
    {DEMO_DESC, DEMO_DESC_SIZE, 0, 4096, "descriptors"},
    {DEMO_DMA, DEMO_DMA_SIZE, DEMO_DMA_ALIGN, 64 * 1024, "DMA buffers"},
    {DEMO_MAP, DEMO_MAP_SIZE, 0, 256 * 1024, "map pages"},
    {DEMO_CQE, DEMO_CQE_SIZE, 0, 4096, "CQEs"},
};
#define CACHE_COUNT (sizeof cache_specs / sizeof cache_specs[0])

static struct {
    pk_buddy b;
    pk_slab_cache caches[CACHE_COUNT];
    pk_slab_cache *of_type[DEMO_TYPES]; /* NULL: the buddy */
} slab;

static void slab_ctor(void *obj, void *ctx)
{
    const cache_spec *spec = ctx;
    construct(obj, spec->size);
    current.constructor_calls++;
}

static void *slab_init(void *arena, size_t size)
{
    if (started("slab's buddy", pk_buddy_init(&slab.b, arena, size, 16), pk_buddy_allocator(&slab.b), size,
                &slab) == NULL) {
        return NULL;
    }
    pk_page_source src = pk_page_source_buddy(&slab.b);
    memset(slab.of_type, 0, sizeof slab.of_type);
    for (size_t i = 0; i < CACHE_COUNT; i++) {
        const cache_spec *spec = &cache_specs[i];
        if (pk_slab_init(&slab.caches[i], spec->name, spec->size, spec->align, slab_ctor, NULL,
                         (void *)spec, &src, spec->slab_size) != PK_OK) {
            fprintf(stderr, "poolkit demo: slab: cache %s refused\n", spec->name);
            return NULL;
        }
        slab.of_type[spec->type] = &slab.caches[i];
    }
    return &slab;
}

static void *slab_alloc(void *self, unsigned type, size_t size)
{
    (void)self;
    pk_slab_cache *c = slab.of_type[type];
    return c != NULL ? pk_slab_alloc(c) : pk_buddy_alloc(&slab.b, size);
}

static int slab_release(void *self, unsigned type, void *p)
{
    (void)self;
    pk_slab_cache *c = slab.of_type[type];
    return (c != NULL ? pk_slab_free(c, p) : pk_buddy_free(&slab.b, p)) == PK_OK ? 0 : -1;
}

/* A cache hands out objects constructed: the first time fresh from the
 * constructor, afterwards as they came back (reused, not constructed again). */
static void slab_after_alloc(void *self, unsigned type, void *p, size_t size)
{
    (void)self;
    if (slab.of_type[type] == NULL) {
        construct(p, size); /* a log record from the buddy: filled */
    } else if (get_tag(p) == TAG_FRESH) {
        set_tag(p, TAG_USED);
    } else {
        current.constructed_reuses++;
    }
}

/* The arena's bytes not free in the buddy (slabs whole, free objects
 * included); granted: the caches' live objects and the buddy's blocks that
 * are not slabs; external fragmentation: the buddy's. */
static void slab_probe(void *self, demo_probe *out)
{
    view_probe(self, out);
    uint64_t granted = out->granted;
    for (size_t i = 0; i < CACHE_COUNT; i++) {
        pk_stats s;
        pk_slab_stats(&slab.caches[i], &s);
        granted += s.in_use;
        granted -= (uint64_t)pk_slab_slabs(&slab.caches[i], NULL, NULL, NULL) * cache_specs[i].slab_size;
    }
    out->granted = granted;
}

/* Every cache checked and shrunk (its slabs back to the buddy), then the
 * buddy checked. */
static int slab_finish(void *self, uint64_t *reuses, uint64_t *calls)
{
    for (size_t i = 0; i < CACHE_COUNT; i++) {
        if (check_result("slab", pk_slab_check(&slab.caches[i])) != 0) {
            return -1;
        }
        pk_slab_shrink(&slab.caches[i]);
    }
    return view_finish(self, reuses, calls);
}

/* ---- The table ------------------------------------------------------------ */

#define CALLS(prefix) .alloc = prefix##_alloc, .release = prefix##_release
/* A poolkit allocator over the arena, its state read through its generic view. */
#define IN_ARENA .in_arena = true, .probe = view_probe, .finish = view_finish

const demo_subject demo_subjects[] = {
    {.name = "malloc",
     .description = "glibc malloc for everything; aligned_alloc(4096) for the DMA buffers",
     .init = malloc_init, CALLS(malloc), .after_alloc = malloc_after_alloc,
     .before_free = malloc_before_free, .probe = malloc_probe, .finish = no_finish},
    {.name = "classes",
     .description = "pk_classes: one pool per object type (16, 64, 4096 aligned, 16384 B), log records "
                    "in four classes of 128..1024 B (and 64 B), fall-through on",
     IN_ARENA, .init = classes_init, CALLS(classes), .after_alloc = after_alloc_construct},
    {.name = "heap",
     .description = "pk_heap (TLSF, good fit) for everything; pk_heap_alloc_aligned for the DMA buffers",
     IN_ARENA, .placement = true, .init = heap_init, CALLS(heap),
     .after_alloc = after_alloc_construct},
    {.name = "fit-first",
     .description = "pk_fit, address-ordered first fit, coalescing; pk_fit_alloc_aligned for DMA buffers",
     IN_ARENA, .placement = true, .init = fit_first_init, CALLS(fit),
     .after_alloc = after_alloc_construct},
    {.name = "fit-best",
     .description = "pk_fit, best fit, coalescing; pk_fit_alloc_aligned for DMA buffers",
     IN_ARENA, .placement = true, .init = fit_best_init, CALLS(fit),
     .after_alloc = after_alloc_construct},
    {.name = "fit-next",
     .description = "pk_fit, next fit (roving), coalescing; pk_fit_alloc_aligned for DMA buffers",
     IN_ARENA, .placement = true, .init = fit_next_init, CALLS(fit),
     .after_alloc = after_alloc_construct},
    {.name = "buddy",
     .description = "pk_buddy (16 B slots) for everything, typed objects constructed at each allocation",
     IN_ARENA, .constructs = true, .init = buddy_init, CALLS(buddy), .after_alloc = buddy_after_alloc},
    {.name = "slab",
     .description = "pk_slab caches for descriptors, DMA buffers, map pages and CQEs (constructed once) "
                    "over a pk_buddy page source; log records from the buddy",
     .in_arena = true, .constructs = true, .init = slab_init, CALLS(slab),
     .after_alloc = slab_after_alloc, .probe = slab_probe, .finish = slab_finish},
};
const size_t demo_subject_count = sizeof demo_subjects / sizeof demo_subjects[0];

/* ---- The null allocator --------------------------------------------------- */

static unsigned char null_block[DEMO_MAP_SIZE];

static void *null_init(void *arena, size_t size)
{
    (void)arena;
    (void)size;
    return null_block;
}
static void *null_alloc(void *self, unsigned type, size_t size)
{
    (void)type;
    (void)size;
    return self;
}
static int null_release(void *self, unsigned type, void *p)
{
    (void)self;
    (void)type;
    (void)p;
    return 0;
}
static void null_probe(void *self, demo_probe *out)
{
    (void)self;
    *out = (demo_probe){0, 0, 0};
}

const demo_subject demo_null_subject = {.name = "null", .description = "the timer's own overhead",
                                        .init = null_init, CALLS(null),
                                        .after_alloc = after_alloc_construct, .probe = null_probe,
                                        .finish = no_finish};
