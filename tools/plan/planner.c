/*
 * `poolkit plan`'s planner (planner.h tells the rules): the trace model, the
 * size classes, their high-water marks, the heap's share and size, the
 * router that replays a plan, and the C it prints.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "plan/planner.h"

#include "poolkit/classes.h"
#include "poolkit/heap.h"
#include "poolkit/pool.h"
#include "poolkit/version.h"

#define ROUTE_HEAP UINT32_MAX
/* Comments list a class's sizes one by one up to this many. */
#define SIZES_LISTED 8

static size_t round_up(size_t x, size_t to)
{
    size_t rest = x % to;
    if (rest == 0) {
        return x;
    }
    return x > SIZE_MAX - (to - rest) ? SIZE_MAX : x + (to - rest);
}

static size_t max_size(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* An alignment asked, as the plan counts it: never below PLAN_GRANULE
 * (plan_build refuses traces with one that is not a power of two). */
static size_t plan_align(uint64_t align)
{
    if (align > SIZE_MAX) {
        return SIZE_MAX;
    }
    return align > PLAN_GRANULE ? (size_t)align : PLAN_GRANULE;
}

/* Rule 1 (planner.h). SIZE_MAX when it does not fit: such a request goes to
 * the heap, which fails it as the trace's program would have been refused. */
static size_t effective_size(uint64_t size, size_t align)
{
    if (size > SIZE_MAX) {
        return SIZE_MAX;
    }
    return round_up(size != 0 ? (size_t)size : 1, align);
}

/* The class with the smallest block that holds eff among classes[0..n), or
 * ROUTE_HEAP when none does. O(log n). */
static uint32_t route_of(const plan_class *classes, size_t n, size_t eff)
{
    if (n == 0 || eff > classes[n - 1].block_size) {
        return ROUTE_HEAP;
    }
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (classes[mid].block_size >= eff) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return (uint32_t)lo;
}

/* ---- The trace model ---------------------------------------------------- */

/* The blocks live in the model, by traced pointer (never 0): open addressing
 * with linear probing and backward-shift deletion. */
typedef struct {
    uint64_t key;   /* 0: empty */
    size_t size;
    uint32_t route;
} live_slot;

typedef struct {
    live_slot *slots;
    size_t mask;    /* capacity - 1, a power of two */
    size_t used;
} live_map;

static size_t slot_of(const live_map *m, uint64_t key)
{
    key ^= key >> 31;
    key *= 0x9E3779B97F4A7C15ull;
    return (size_t)(key >> 17) & m->mask;
}

static int live_grow(live_map *m)
{
    size_t capacity = m->slots ? (m->mask + 1) * 2 : 1024;
    live_slot *old = m->slots;
    size_t old_capacity = old ? m->mask + 1 : 0;
    m->slots = calloc(capacity, sizeof *m->slots);
    if (!m->slots) {
        m->slots = old;
        return -1;
    }
    m->mask = capacity - 1;
    for (size_t i = 0; i < old_capacity; i++) {
        if (old[i].key != 0) {
            size_t at = slot_of(m, old[i].key);
            while (m->slots[at].key != 0) {
                at = (at + 1) & m->mask;
            }
            m->slots[at] = old[i];
        }
    }
    free(old);
    return 0;
}

/* Adds or replaces key's block (a replaced block stays counted live: it
 * leaked, as in the replay). -1 out of memory. */
static int live_put(live_map *m, uint64_t key, size_t size, uint32_t route)
{
    if ((m->used + 1) * 2 > (m->slots ? m->mask + 1 : 0) && live_grow(m) != 0) {
        return -1;
    }
    size_t at = slot_of(m, key);
    while (m->slots[at].key != 0 && m->slots[at].key != key) {
        at = (at + 1) & m->mask;
    }
    if (m->slots[at].key == 0) {
        m->used++;
    }
    m->slots[at] = (live_slot){key, size, route};
    return 0;
}

/* Removes key's block into *out; false when key is not live. */
static bool live_take(live_map *m, uint64_t key, live_slot *out)
{
    if (!m->slots) {
        return false;
    }
    size_t at = slot_of(m, key);
    while (m->slots[at].key != key) {
        if (m->slots[at].key == 0) {
            return false;
        }
        at = (at + 1) & m->mask;
    }
    *out = m->slots[at];
    m->used--;
    /* Backward shift: move up each later entry of the run that may sit in
     * the hole (its home is not cyclically within (hole, entry]). */
    size_t hole = at, next = at;
    for (;;) {
        next = (next + 1) & m->mask;
        if (m->slots[next].key == 0) {
            break;
        }
        size_t home = slot_of(m, m->slots[next].key);
        if (((next - home) & m->mask) >= ((next - hole) & m->mask)) {
            m->slots[hole] = m->slots[next];
            hole = next;
        }
    }
    m->slots[hole].key = 0;
    return true;
}

/* What a walk over the model calls: on_alloc gives the new block's route
 * (size as asked, align as plan_align counts it), on_free gets it back. */
typedef struct {
    uint32_t (*on_alloc)(void *ctx, size_t size, size_t align);
    void (*on_free)(void *ctx, uint32_t route, size_t size);
    void *ctx;
} walker;

static size_t clamp_size(uint64_t size)
{
    return size > SIZE_MAX ? SIZE_MAX : (size_t)size;
}

static int model_alloc(live_map *live, const walker *w, uint64_t result, uint64_t size, size_t align)
{
    uint32_t route = w->on_alloc(w->ctx, clamp_size(size), align);
    return live_put(live, result, clamp_size(size), route);
}

static void model_free(live_map *live, const walker *w, uint64_t ptr)
{
    live_slot gone;
    if (live_take(live, ptr, &gone)) {
        w->on_free(w->ctx, gone.route, gone.size);
    }
}

/* Walks t's events as the replay engine replays them (planner.h). Returns
 * 0, or -1 out of memory. O(events). */
static int walk(const pk_trace *t, const walker *w)
{
    live_map live = {NULL, 0, 0};
    int status = 0;
    for (size_t i = 0; i < t->count && status == 0; i++) {
        const pk_trace_event *e = &t->events[i];
        switch (e->op) {
        case PK_TRACE_MALLOC:
        case PK_TRACE_CALLOC:
        case PK_TRACE_ALIGNED:
            if (e->result != 0) {
                size_t align = plan_align(e->op == PK_TRACE_ALIGNED ? e->align : 0);
                status = model_alloc(&live, w, e->result, e->size, align);
            }
            break;
        case PK_TRACE_REALLOC:
            if (e->old == 0) {
                if (e->result != 0) {
                    status = model_alloc(&live, w, e->result, e->size, PLAN_GRANULE);
                }
            } else if (e->size == 0 || e->result != 0) {
                live_slot old;
                if (live_take(&live, e->old, &old)) {
                    w->on_free(w->ctx, old.route, old.size);
                    if (e->size != 0) {
                        status = model_alloc(&live, w, e->result, e->size, PLAN_GRANULE);
                    }
                }
            }
            break;
        case PK_TRACE_FREE:
            model_free(&live, w, e->old);
            break;
        default:
            break;
        }
    }
    free(live.slots);
    return status;
}

/* ---- Pass 1: the kinds of request --------------------------------------- */

typedef struct {
    size_t eff, align, size;
} request_kind;

typedef struct {
    request_kind *v;
    size_t count, capacity;
    bool out_of_memory;
} kind_set;

static int compare_kinds(const void *a, const void *b)
{
    const request_kind *x = a, *y = b;
    if (x->eff != y->eff) {
        return x->eff < y->eff ? -1 : 1;
    }
    if (x->size != y->size) {
        return x->size < y->size ? -1 : 1;
    }
    return x->align < y->align ? -1 : x->align > y->align;
}

static void sort_unique_kinds(kind_set *k)
{
    if (k->count == 0) {
        return;
    }
    qsort(k->v, k->count, sizeof *k->v, compare_kinds);
    size_t kept = 1;
    for (size_t i = 1; i < k->count; i++) {
        if (compare_kinds(&k->v[i], &k->v[kept - 1]) != 0) {
            k->v[kept++] = k->v[i];
        }
    }
    k->count = kept;
}

/* Keeps every request's kind: when the array fills, duplicates go first, and
 * it only grows when half of it or more is distinct. */
static uint32_t collect_kind(void *ctx, size_t size, size_t align)
{
    kind_set *k = ctx;
    if (k->count == k->capacity) {
        sort_unique_kinds(k);
        if (k->count >= k->capacity / 2) {
            size_t capacity = k->capacity ? k->capacity * 2 : 256;
            request_kind *v = realloc(k->v, capacity * sizeof *v);
            if (!v) {
                k->out_of_memory = true;
                return 0;
            }
            k->v = v;
            k->capacity = capacity;
        }
    }
    k->v[k->count++] = (request_kind){effective_size(size, align), align, size};
    return 0;
}

static void ignore_free(void *ctx, uint32_t route, size_t size)
{
    (void)ctx;
    (void)route;
    (void)size;
}

/* ---- Pass 2: the classes ------------------------------------------------ */

typedef struct {
    size_t lo, block, align; /* smallest effective size, block, largest alignment */
    size_t first, end;       /* its kinds: [first, end) of the sorted set */
} size_group;

/* Rule 3 (planner.h) over the kinds [0, pooled), sorted by effective size.
 * Returns the number of groups written to groups (room for pooled).
 * Each group's block is below the next group's smallest size, so that "the
 * smallest block that holds it" routes every size to its group (as
 * pk_classes does): the block is the smallest multiple of the group's
 * alignment A at or above its largest size; a kind that starts the next
 * group (at or above that size) with alignment a is a multiple of a; were
 * it at most the block, then with a <= A the block would hold it unchanged,
 * and with a > A (powers of two) it would be a multiple of A at or above the
 * largest size, so the block itself, also a multiple of a: either way it
 * would have joined the group. */
static size_t group_kinds(const request_kind *kinds, size_t pooled, size_group *groups)
{
    size_t n = 0;
    for (size_t i = 0; i < pooled;) {
        size_group g = {kinds[i].eff, kinds[i].eff, kinds[i].align, i, i + 1};
        for (i++; i < pooled; i++) {
            size_t align = max_size(g.align, kinds[i].align);
            size_t block = round_up(max_size(g.block, kinds[i].eff), align);
            if (block > g.lo + g.lo / 4) { /* lo is a multiple of 16: exactly 5/4 */
                break;
            }
            g.block = block;
            g.align = align;
            g.end = i + 1;
        }
        groups[n++] = g;
    }
    return n;
}

/* The distinct requested sizes of kinds[first, end), ascending. */
static int held_sizes(const request_kind *kinds, size_t first, size_t end, plan_sizes *out)
{
    out->count = 0;
    out->sizes = malloc(max_size(end - first, 1) * sizeof *out->sizes);
    if (!out->sizes) {
        return -1;
    }
    for (size_t i = first; i < end; i++) {
        out->sizes[out->count++] = kinds[i].size;
    }
    /* Insertion sort then unique: kinds are sorted by effective size, which
     * orders sizes of one alignment already. */
    for (size_t i = 1; i < out->count; i++) {
        size_t s = out->sizes[i], j = i;
        for (; j > 0 && out->sizes[j - 1] > s; j--) {
            out->sizes[j] = out->sizes[j - 1];
        }
        out->sizes[j] = s;
    }
    size_t kept = 0;
    for (size_t i = 0; i < out->count; i++) {
        if (kept == 0 || out->sizes[kept - 1] != out->sizes[i]) {
            out->sizes[kept++] = out->sizes[i];
        }
    }
    out->count = kept;
    return 0;
}

/* ---- Pass 3: high-water marks ------------------------------------------- */

typedef struct {
    plan_class *classes;
    size_t n;             /* classes in pools; larger sizes on the heap */
    size_t *live;         /* per class */
    size_t heap_live, heap_peak;
    uint64_t heap_allocs;
} usage;

static uint32_t count_alloc(void *ctx, size_t size, size_t align)
{
    usage *u = ctx;
    uint32_t route = route_of(u->classes, u->n, effective_size(size, align));
    if (route == ROUTE_HEAP) {
        u->heap_allocs++;
        u->heap_live += size;
        u->heap_peak = max_size(u->heap_peak, u->heap_live);
    } else {
        plan_class *c = &u->classes[route];
        c->held.allocs++;
        u->live[route]++;
        c->peak = max_size(c->peak, u->live[route]);
    }
    return route;
}

static void count_free(void *ctx, uint32_t route, size_t size)
{
    usage *u = ctx;
    if (route == ROUTE_HEAP) {
        u->heap_live -= size;
    } else {
        u->live[route]--;
    }
}

/* Sets the peak and allocs of classes[0..n) and the heap's figures for the
 * sizes above them. -1 out of memory. O(events). */
static int measure(const pk_trace *t, plan_class *classes, size_t n, usage *u)
{
    *u = (usage){classes, n, calloc(max_size(n, 1), sizeof(size_t)), 0, 0, 0};
    if (!u->live) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        classes[i].peak = 0;
        classes[i].held.allocs = 0;
    }
    walker w = {count_alloc, count_free, u};
    int status = walk(t, &w);
    free(u->live);
    u->live = NULL;
    return status;
}

/* ---- The router: the plan as one pk_allocator ---------------------------- */

typedef struct {
    const plan_class *classes;
    size_t n;
    pk_pool *pools;             /* pools[i] is class i's; none when its count is 0 */
    unsigned char **buffers;
    char (*names)[32];
    pk_heap heap;
    pk_allocator *heap_view;    /* NULL: no heap */
    unsigned char *heap_buffer;
    uint64_t failures;          /* requests for a class of count 0, or a missing heap */
    pk_allocator view;
} router;

static pk_allocator *part_of(router *r, uint32_t route)
{
    if (route == ROUTE_HEAP) {
        return r->heap_view;
    }
    return r->buffers[route] ? pk_pool_allocator(&r->pools[route]) : NULL;
}

/* The part holding ptr: a class, ROUTE_HEAP, or ROUTE_HEAP - 1 for none. */
static uint32_t owner_of(const router *r, const void *ptr)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->buffers[i] && pk_pool_owns(&r->pools[i], ptr)) {
            return (uint32_t)i;
        }
    }
    return r->heap_view ? ROUTE_HEAP : ROUTE_HEAP - 1;
}

static void *router_alloc(void *self, size_t size, size_t align)
{
    router *r = self;
    pk_allocator *part = part_of(r, route_of(r->classes, r->n, effective_size(size, plan_align(align))));
    if (!part) {
        r->failures++;
        return NULL;
    }
    return pk_alloc_aligned(part, size, align);
}

static pk_status router_free(void *self, void *ptr)
{
    router *r = self;
    uint32_t owner = owner_of(r, ptr);
    if (owner == ROUTE_HEAP - 1) {
        return pk_report_fault(PK_ERR_FOREIGN_PTR, "plan", ptr);
    }
    return pk_free(part_of(r, owner), ptr);
}

static size_t router_usable_size(const void *self, const void *ptr)
{
    const router *r = self;
    uint32_t owner = owner_of(r, ptr);
    if (owner == ROUTE_HEAP - 1) {
        return 0;
    }
    pk_allocator *part = part_of((router *)r, owner);
    return part->ops->usable_size(part->self, ptr);
}

/* Debug builds: a block that stays in its class moves all the same, so that
 * its rear guard follows the new size (as pk_realloc does), and without a
 * second block of the class: its bytes wait in a copy while it is freed and
 * the class's next block is taken. */
static void *realloc_in_class(router *r, uint32_t route, void *ptr, size_t size)
{
    pk_allocator *pool = part_of(r, route);
    size_t old_size = pool->ops->usable_size(pool->self, ptr);
    size_t kept = old_size < size ? old_size : size;
    unsigned char *copy = malloc(max_size(kept, 1));
    if (!copy) {
        return NULL;
    }
    memcpy(copy, ptr, kept);
    (void)pk_free(pool, ptr);
    void *fresh = pk_alloc(pool, size);
    if (fresh) {
        memcpy(fresh, copy, kept);
    }
    free(copy);
    return fresh;
}

/* A block that stays in its class stays put (the class's count is the same
 * as after a free and an alloc); one that changes class moves; the heap
 * reallocates its own. */
static void *router_realloc(void *self, void *ptr, size_t size)
{
    router *r = self;
    if (ptr == NULL) {
        return router_alloc(self, size, 0);
    }
    if (size == 0) {
        (void)router_free(self, ptr);
        return NULL;
    }
    uint32_t owner = owner_of(r, ptr);
    if (owner == ROUTE_HEAP - 1) {
        (void)router_free(self, ptr);
        return NULL;
    }
    uint32_t route = route_of(r->classes, r->n, effective_size(size, PLAN_GRANULE));
    if (route == owner && owner == ROUTE_HEAP) {
        return pk_realloc(r->heap_view, ptr, size);
    }
    if (route == owner) {
        return PK_DEBUG ? realloc_in_class(r, route, ptr, size) : ptr;
    }
    void *fresh = router_alloc(self, size, 0);
    if (!fresh) {
        return NULL;
    }
    size_t old_size = router_usable_size(self, ptr);
    memcpy(fresh, ptr, old_size < size ? old_size : size);
    (void)router_free(self, ptr);
    return fresh;
}

/* Sums of the parts; peak_in_use and peak_live are the sums of the parts'
 * peaks (an upper bound: the engine tracks the true peak from in_use). */
static void router_stats(const void *self, pk_stats *out)
{
    const router *r = self;
    memset(out, 0, sizeof *out);
    out->failures = r->failures;
    for (size_t part = 0; part <= r->n; part++) {
        pk_allocator *a = part_of((router *)r, part == r->n ? ROUTE_HEAP : (uint32_t)part);
        if (!a) {
            continue;
        }
        pk_stats s;
        pk_stats_get(a, &s);
        out->capacity += s.capacity;
        out->in_use += s.in_use;
        out->requested += s.requested;
        out->peak_in_use += s.peak_in_use;
        out->free_bytes += s.free_bytes;
        out->largest_free = max_size(out->largest_free, s.largest_free);
        out->live += s.live;
        out->peak_live += s.peak_live;
        out->allocs += s.allocs;
        out->frees += s.frees;
        out->failures += s.failures;
        out->rejected += s.rejected;
    }
}

static pk_status router_check(const void *self)
{
    const router *r = self;
    for (size_t part = 0; part <= r->n; part++) {
        pk_allocator *a = part_of((router *)r, part == r->n ? ROUTE_HEAP : (uint32_t)part);
        pk_status s = a ? pk_check(a) : PK_OK;
        if (s != PK_OK) {
            return s;
        }
    }
    return PK_OK;
}

static const char *router_name(const void *self)
{
    (void)self;
    return "plan";
}

static const pk_allocator_ops router_ops = {
    router_alloc, router_free, router_realloc, router_stats, router_check, router_name,
    router_usable_size, NULL,
};

static void router_destroy(router *r)
{
    for (size_t i = 0; r->buffers && i < r->n; i++) {
        free(r->buffers[i]);
    }
    free(r->buffers);
    free(r->pools);
    free(r->names);
    free(r->heap_buffer);
}

/* Builds the plan's pools and heap. A heap buffer too small for pk_heap_init
 * leaves no heap (its requests fail). -1 out of memory, or a pool that does
 * not hold exactly its count (a planner bug). */
static int router_init(router *r, const plan *p)
{
    memset(r, 0, sizeof *r);
    r->classes = p->classes;
    r->n = p->class_count;
    r->view = (pk_allocator){&router_ops, r};
    size_t slots = max_size(r->n, 1);
    r->pools = calloc(slots, sizeof *r->pools);
    r->buffers = calloc(slots, sizeof *r->buffers);
    r->names = calloc(slots, sizeof *r->names);
    if (!r->pools || !r->buffers || !r->names) {
        fprintf(stderr, "poolkit plan: out of memory for the replay\n");
        return -1;
    }
    for (size_t i = 0; i < r->n; i++) {
        const plan_class *c = &p->classes[i];
        if (c->count == 0) {
            continue;
        }
        size_t bytes = PK_POOL_BUFFER_SIZE(c->block_size, c->count, c->align);
        r->buffers[i] = malloc(bytes);
        if (!r->buffers[i]) {
            fprintf(stderr, "poolkit plan: out of memory for a pool of %zu bytes\n", bytes);
            return -1;
        }
        if (pk_pool_init(&r->pools[i], r->buffers[i], bytes, c->block_size, c->align) != PK_OK ||
            pk_pool_capacity(&r->pools[i]) != c->count) {
            fprintf(stderr, "poolkit plan: the pool of %zu-byte blocks does not hold %zu blocks\n",
                    c->block_size, c->count);
            return -1;
        }
        snprintf(r->names[i], sizeof r->names[i], "plan_pool_%zu", c->block_size);
        pk_pool_set_name(&r->pools[i], r->names[i]);
    }
    if (p->heap_bytes > 0) {
        r->heap_buffer = malloc(p->heap_bytes);
        if (!r->heap_buffer) {
            fprintf(stderr, "poolkit plan: out of memory for a heap of %zu bytes\n", p->heap_bytes);
            return -1;
        }
        if (pk_heap_init(&r->heap, r->heap_buffer, p->heap_bytes) == PK_OK) {
            pk_heap_set_name(&r->heap, "plan_heap");
            r->heap_view = pk_heap_allocator(&r->heap);
        }
    }
    return 0;
}

int plan_replay(const pk_trace *t, const plan *p, replay_result *out)
{
    router r;
    int status = router_init(&r, p);
    if (status == 0) {
        status = replay_run(t, &r.view, out);
    }
    router_destroy(&r);
    return status;
}

/* ---- The heap's size ---------------------------------------------------- */

/* 1 when t replays on trial with a heap of heap_bytes, 0 when a call fails,
 * -1 on error. */
static int replays_cleanly(const pk_trace *t, plan *trial, size_t heap_bytes)
{
    replay_result result;
    memset(&result, 0, sizeof result);
    trial->heap_bytes = heap_bytes;
    if (plan_replay(t, trial, &result) != 0) {
        return -1;
    }
    return !result.failed;
}

/* The smallest heap (a multiple of PLAN_GRANULE) with which t replays on
 * the pools of trial[0..class_count), counts at their peaks, and heap
 * requests of at most peak_requested bytes live at once: bisection between
 * that peak (too small: the heap's headers need room too) and the first of
 * doublings that replays. Assumes a larger heap never fails where a smaller
 * one succeeds. 0 with a message on error. O(events * log2(bytes)). */
static size_t smallest_heap(const pk_trace *t, plan *trial, size_t peak_requested, char *err,
                            size_t err_size)
{
    const size_t largest = (size_t)1 << PK_HEAP_MAX_LOG2;
    if (peak_requested > largest) {
        snprintf(err, err_size, "the heap would hold %zu bytes at once, and pk_heap's regions stop at "
                 "2^%d bytes (PK_HEAP_MAX_LOG2)", peak_requested, PK_HEAP_MAX_LOG2);
        return 0;
    }
    size_t lo = peak_requested / PLAN_GRANULE * PLAN_GRANULE;
    size_t step = round_up(lo / 4 + 1024, PLAN_GRANULE);
    size_t hi = lo + step;
    for (;;) {
        int clean = replays_cleanly(t, trial, hi);
        if (clean < 0) {
            snprintf(err, err_size, "the replay failed (see above)");
            return 0;
        }
        if (clean) {
            break;
        }
        if (hi > largest) {
            snprintf(err, err_size, "a heap of %zu bytes is not enough, and pk_heap's regions stop at "
                     "2^%d bytes (PK_HEAP_MAX_LOG2)", hi, PK_HEAP_MAX_LOG2);
            return 0;
        }
        lo = hi;
        step *= 2;
        hi = lo + step;
    }
    while (hi - lo > PLAN_GRANULE) {
        size_t mid = lo + (hi - lo) / (2 * PLAN_GRANULE) * PLAN_GRANULE;
        int clean = replays_cleanly(t, trial, mid);
        if (clean < 0) {
            snprintf(err, err_size, "the replay failed (see above)");
            return 0;
        }
        if (clean) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    return hi;
}

/* The heap the plan needs with classes[0..n) in pools at their peaks (0 when
 * no request goes to it); *failed set on error (message in err). */
static size_t heap_for(const pk_trace *t, plan_class *classes, size_t n, bool *failed, char *err,
                       size_t err_size)
{
    usage u;
    if (measure(t, classes, n, &u) != 0) {
        snprintf(err, err_size, "out of memory");
        *failed = true;
        return 0;
    }
    if (u.heap_allocs == 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        classes[i].count = classes[i].peak;
    }
    plan trial = {.classes = classes, .class_count = n};
    size_t bytes = smallest_heap(t, &trial, u.heap_peak, err, err_size);
    *failed = bytes == 0;
    return bytes;
}

static size_t pool_bytes(const plan_class *classes, size_t n, bool at_peak)
{
    size_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        size_t count = at_peak ? classes[i].peak : classes[i].count;
        sum += PK_POOL_BUFFER_SIZE(classes[i].block_size, count, classes[i].align);
    }
    return sum;
}

/* ---- plan_build --------------------------------------------------------- */

static size_t with_margin(size_t x, unsigned margin)
{
    return (size_t)(((unsigned long long)x * (100u + margin) + 99u) / 100u);
}

void plan_free(plan *p)
{
    for (size_t i = 0; p->classes && i < p->class_count; i++) {
        free(p->classes[i].held.sizes);
    }
    free(p->classes);
    free(p->heap_held.sizes);
    memset(p, 0, sizeof *p);
}

int plan_build(const pk_trace *t, unsigned margin, size_t heap_above, plan *out, char *err,
               size_t err_size)
{
    memset(out, 0, sizeof *out);
    out->margin = margin;
    out->heap_above = heap_above;
    /* No poolkit allocator serves these (pk_allocator_ops): no plan would
     * replay, whatever its size. */
    for (size_t i = 0; i < t->count; i++) {
        const pk_trace_event *e = &t->events[i];
        if (e->op == PK_TRACE_ALIGNED && e->result != 0 && (e->align & (e->align - 1)) != 0) {
            snprintf(err, err_size, "event %zu (seq %llu) asks for alignment %llu, not a power of two: "
                     "poolkit's allocators refuse it, so no plan can replay this trace", i,
                     (unsigned long long)e->seq, (unsigned long long)e->align);
            return -1;
        }
    }
    kind_set kinds = {NULL, 0, 0, false};
    walker collect = {collect_kind, ignore_free, &kinds};
    if (walk(t, &collect) != 0 || kinds.out_of_memory) {
        free(kinds.v);
        snprintf(err, err_size, "out of memory");
        return 1;
    }
    sort_unique_kinds(&kinds);
    if (kinds.count == 0) {
        free(kinds.v);
        snprintf(err, err_size, "the trace holds no allocation (%zu events): nothing to plan", t->count);
        return -1;
    }
    size_t pooled = 0;
    while (pooled < kinds.count && kinds.v[pooled].eff <= heap_above) {
        pooled++;
    }
    int status = 1;
    size_group *groups = malloc(max_size(pooled, 1) * sizeof *groups);
    size_t n_groups = groups ? group_kinds(kinds.v, pooled, groups) : 0;
    out->classes = calloc(max_size(n_groups, 1), sizeof *out->classes);
    if (!groups || !out->classes) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_groups; i++) {
        plan_class *c = &out->classes[i];
        c->block_size = groups[i].block;
        c->align = groups[i].align > PLAN_GRANULE ? groups[i].align : 0;
        out->class_count = i + 1;
        if (held_sizes(kinds.v, groups[i].first, groups[i].end, &c->held) != 0) {
            snprintf(err, err_size, "out of memory");
            goto done;
        }
    }
    /* Rule 5, then rule 6 (planner.h). */
    size_t n = n_groups < PK_CLASSES_MAX ? n_groups : PK_CLASSES_MAX;
    bool failed = false;
    size_t heap = heap_for(t, out->classes, n, &failed, err, err_size);
    while (!failed && n > 0) {
        size_t fewer_heap = heap_for(t, out->classes, n - 1, &failed, err, err_size);
        if (failed) {
            break;
        }
        size_t total = pool_bytes(out->classes, n, true) + heap;
        size_t fewer_total = pool_bytes(out->classes, n - 1, true) + fewer_heap;
        size_t class_bytes = pool_bytes(out->classes + n - 1, 1, true);
        if (fewer_total >= total || (total - fewer_total) * 8 < class_bytes) {
            break;
        }
        n--;
        heap = fewer_heap;
    }
    if (failed) {
        goto done;
    }
    /* The classes that went to the heap: their sizes are the heap's now. */
    for (size_t i = n; i < out->class_count; i++) {
        free(out->classes[i].held.sizes);
        out->classes[i].held.sizes = NULL;
    }
    out->class_count = n;
    out->pool_limit = n > 0 ? out->classes[n - 1].block_size : 0;
    usage u;
    if (measure(t, out->classes, n, &u) != 0) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    size_t first_heap_kind = 0;
    while (first_heap_kind < kinds.count && kinds.v[first_heap_kind].eff <= out->pool_limit) {
        first_heap_kind++;
    }
    if (held_sizes(kinds.v, first_heap_kind, kinds.count, &out->heap_held) != 0) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    out->heap_held.allocs = u.heap_allocs;
    out->heap_peak_requested = u.heap_peak;
    for (size_t i = 0; i < n; i++) {
        out->classes[i].count = with_margin(out->classes[i].peak, margin);
    }
    out->heap_needed = heap;
    out->heap_bytes = heap > 0 ? round_up(with_margin(heap, margin), PLAN_GRANULE) : 0;
    out->pool_bytes = pool_bytes(out->classes, n, false);
    /* One pk_heap alone: the plan with no pools. */
    plan alone = {.classes = out->classes, .class_count = 0};
    usage all;
    if (measure(t, out->classes, 0, &all) != 0) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    out->heap_alone_bytes = smallest_heap(t, &alone, all.heap_peak, err, err_size);
    status = out->heap_alone_bytes > 0 ? 0 : 1;
done:
    free(groups);
    free(kinds.v);
    if (status != 0) {
        plan_free(out);
    }
    return status;
}

/* ---- The C -------------------------------------------------------------- */

static const char *plural(uint64_t n)
{
    return n == 1 ? "" : "s";
}

static void print_sizes(FILE *out, const plan_sizes *s)
{
    if (s->count == 1) {
        fprintf(out, "size %zu", s->sizes[0]);
    } else if (s->count <= SIZES_LISTED) {
        fprintf(out, "sizes ");
        for (size_t i = 0; i < s->count; i++) {
            fprintf(out, "%s%zu", i ? ", " : "", s->sizes[i]);
        }
    } else {
        fprintf(out, "%zu sizes from %zu to %zu", s->count, s->sizes[0], s->sizes[s->count - 1]);
    }
}

static void print_class_comment(FILE *out, const plan_class *c)
{
    fprintf(out, "/* ");
    print_sizes(out, &c->held);
    fprintf(out, "; %llu allocation%s, peak %zu live", (unsigned long long)c->held.allocs,
            plural(c->held.allocs), c->peak);
    if (c->align != 0) {
        fprintf(out, "; aligned to %zu", c->align);
    }
    fprintf(out, " */\n");
}

void plan_print(FILE *out, const plan *p, const char *trace_name, const pk_trace *t,
                const replay_result *result)
{
    const size_t n = p->class_count;
    fprintf(out, "/*\n * Allocation plan by `poolkit plan` (poolkit %s) for %s:\n", PK_VERSION_STRING,
            trace_name);
    fprintf(out, " * pid %u, %zu events, %u thread%s; margin %u%%.\n", t->pid, t->count, t->threads,
            plural(t->threads), p->margin);
    if (n > 0) {
        fprintf(out, " * Requests of up to %zu bytes (sizes rounded up to their alignment, at least %zu)\n"
                " * go to the pool with the smallest block that holds them, with no fall-through;\n",
                p->pool_limit, PLAN_GRANULE);
        fprintf(out, " * %s.\n", p->heap_bytes > 0 ? "larger ones go to the heap" : "there are no larger ones");
    } else {
        fprintf(out, " * Every request goes to the heap.\n");
    }
    fprintf(out, " * Byte counts are for this build of poolkit (%s, alignof(max_align_t) %zu).\n */\n",
            PK_DEBUG ? "debug" : "release", (size_t)PK_MAX_ALIGN);
    fprintf(out, "#include \"poolkit/poolkit.h\"\n");
    if (n > 0) {
        fprintf(out, "\n/* A: one pool per class (the pools or the set B, not both). */\n");
        for (size_t i = 0; i < n; i++) {
            const plan_class *c = &p->classes[i];
            print_class_comment(out, c);
            fprintf(out, "PK_POOL_DEFINE(plan_pool_%zu, %zu, %zu, %zu);\n", c->block_size, c->block_size,
                    c->count, c->align);
        }
        bool aligned = false;
        for (size_t i = 0; i < n; i++) {
            aligned = aligned || p->classes[i].align != 0;
        }
        fprintf(out, "\n/* B: the same classes as one set:\n"
                " *   pk_classes_init(&set, plan_classes_buffer, sizeof plan_classes_buffer,\n"
                " *                   plan_class_specs, PLAN_CLASS_COUNT);\n"
                " *   pk_classes_set_fallthrough(&set, false);%s",
                aligned ? "\n * An aligned request asks for its size rounded up to its alignment:\n"
                          " *   pk_alloc_aligned(pk_classes_allocator(&set), rounded_size, align). */\n"
                        : " */\n");
        fprintf(out, "#define PLAN_CLASS_COUNT %zu\n", n);
        fprintf(out, "const pk_class_spec plan_class_specs[PLAN_CLASS_COUNT] = {\n");
        for (size_t i = 0; i < n; i++) {
            const plan_class *c = &p->classes[i];
            fprintf(out, "    {%zu, %zu, %zu}, ", c->block_size, c->count, c->align);
            print_class_comment(out, c);
        }
        fprintf(out, "};\n#define PLAN_CLASSES_BUFFER_SIZE ( \\\n");
        for (size_t i = 0; i < n; i++) {
            const plan_class *c = &p->classes[i];
            fprintf(out, "    PK_POOL_BUFFER_SIZE(%zu, %zu, %zu)%s \\\n", c->block_size, c->count, c->align,
                    i + 1 < n ? " +" : "");
        }
        fprintf(out, "    )\nunsigned char plan_classes_buffer[PLAN_CLASSES_BUFFER_SIZE];\n");
    }
    if (p->heap_bytes > 0) {
        fprintf(out, "\n/* The heap: ");
        print_sizes(out, &p->heap_held);
        fprintf(out, ";\n * %llu allocation%s, peak %zu bytes requested live. Its size is the smallest\n"
                " * that replayed the trace on this plan (%zu bytes)", (unsigned long long)p->heap_held.allocs,
                plural(p->heap_held.allocs), p->heap_peak_requested, p->heap_needed);
        if (p->margin > 0) {
            fprintf(out, " plus %u%%", p->margin);
        }
        fprintf(out, ":\n *   pk_heap_init(&heap, plan_heap_buffer, sizeof plan_heap_buffer); */\n");
        fprintf(out, "#define PLAN_HEAP_ABOVE %zu /* requests above this many bytes go to the heap */\n",
                p->pool_limit);
        fprintf(out, "PK_ALIGNAS(PK_HEAP_ALIGN) unsigned char plan_heap_buffer[%zu];\n", p->heap_bytes);
    }
    fprintf(out, "\n/* Totals: pools %zu bytes + heap %zu bytes = %zu bytes", p->pool_bytes, p->heap_bytes,
            p->pool_bytes + p->heap_bytes);
    fprintf(out, " (buffers; state: %zu bytes per pk_pool,\n * %zu per pk_classes, %zu per pk_heap).\n",
            sizeof(pk_pool), sizeof(pk_classes), sizeof(pk_heap));
    fprintf(out, " * One pk_heap alone needs %zu bytes for this trace.\n", p->heap_alone_bytes);
    if (result->failed) {
        fprintf(out, " * Replayed on this plan: FAILED: %llu of %llu calls failed, the first at event %llu "
                "(%zu bytes). */\n", (unsigned long long)result->failures, (unsigned long long)result->calls,
                (unsigned long long)result->first_failure, result->first_failure_size);
    } else {
        fprintf(out, " * Replayed on this plan without failure (%llu calls). */\n",
                (unsigned long long)result->calls);
    }
}
