/* The demo's workload generator (see workload.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "results.h"
#include "workload.h"

const char *const demo_type_names[5] = {"descriptor", "DMA buffer", "FTL map page", "log record", "CQE"};

size_t demo_type_align(unsigned type) { return type == DEMO_DMA ? DEMO_DMA_ALIGN : 0; }

/* ---- The generator: xoshiro256** seeded by splitmix64 ------------------- */

typedef struct {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static uint32_t below(rng *r, uint32_t n) /* [0, n) */
{
    return (uint32_t)(((rng_next(r) >> 32) * n) >> 32);
}

static uint32_t between(rng *r, uint32_t lo, uint32_t hi) /* [lo, hi] */
{
    return lo + below(r, hi - lo + 1);
}

static bool chance(rng *r, uint32_t per_mille) { return below(r, 1000) < per_mille; }

/* Roughly log-uniform over [lo, hi], lo and hi powers of two: an octave
 * [lo 2^k, lo 2^(k+1)) chosen uniformly, then a value uniform in it (the
 * last octave includes hi). Integer arithmetic only: the same stream on
 * every machine. */
static uint32_t log_uniform(rng *r, uint32_t lo, uint32_t hi)
{
    unsigned octaves = 0;
    while ((lo << octaves) < hi) {
        octaves++;
    }
    uint32_t base = lo << below(r, octaves);
    uint32_t v = base + below(r, base + (base * 2 == hi ? 1 : 0));
    return v > hi ? hi : v;
}

/* ---- The model ----------------------------------------------------------- */

#define REGIONS 4096u     /* map pages the whole drive has */
#define HOT_REGIONS 96u   /* the hot set (fits the cache) */
#define CQE_DELAY_MAX 16u
#define LOG_DELAY_MIN 16u
#define LOG_DELAY_MAX 4096u

enum { IDLE, STEADY, BURST };

typedef struct {
    uint16_t desc, dma; /* slots; dma == NO_SLOT for commands without data */
    bool internal;      /* garbage collection's: no CQE */
} command;
#define NO_SLOT 0xffffu

typedef struct {
    uint64_t due;
    uint16_t slot;
} pending;

typedef struct {
    rng r;
    demo_workload *w;
    size_t ops;
    uint64_t tick;
    /* slots */
    uint16_t free_slots[DEMO_SLOTS];
    size_t free_count;
    uint16_t slot_size[DEMO_SLOTS];
    uint8_t slot_type[DEMO_SLOTS];
    uint64_t live_bytes, live_objects;
    /* the host queue */
    int phase;
    uint64_t phase_left;
    uint32_t target;
    command inflight[DEMO_MAX_QUEUE_DEPTH];
    size_t inflight_count;
    /* the map cache */
    uint16_t cached_region[DEMO_MAP_CACHE], cached_slot[DEMO_MAP_CACHE];
    uint64_t last_use[DEMO_MAP_CACHE];
    size_t cached_count;
    int16_t where[REGIONS]; /* cache index of a region, or -1 */
    uint32_t hot_base;
    /* short-lived objects waiting to be freed: a min-heap on due */
    pending heap[DEMO_SLOTS];
    size_t heap_count;
    size_t logs_pending;
} model;

static bool full(const model *m) { return m->w->count >= m->ops; }

static void emit(model *m, uint16_t slot, unsigned type, unsigned kind)
{
    if (full(m)) {
        return;
    }
    m->w->events[m->w->count++] = (demo_event){.slot = slot,
                                                .size = m->slot_size[slot],
                                                .type = (uint8_t)type,
                                                .kind = (uint8_t)kind,
                                                .queue_depth = (uint16_t)m->inflight_count};
}

/* Allocates an object into a free slot: the slot, or NO_SLOT when the
 * stream is complete or no slot is free (never with the limits above). */
static uint16_t alloc_object(model *m, unsigned type, uint32_t size)
{
    if (full(m) || m->free_count == 0) {
        return NO_SLOT;
    }
    uint16_t slot = m->free_slots[--m->free_count];
    m->slot_size[slot] = (uint16_t)size;
    m->slot_type[slot] = (uint8_t)type;
    emit(m, slot, type, DEMO_ALLOC);
    m->w->allocs_by_type[type]++;
    m->live_bytes += size;
    m->live_objects++;
    if (m->live_bytes > m->w->peak_live_bytes) {
        m->w->peak_live_bytes = m->live_bytes;
    }
    if (m->live_objects > m->w->peak_live_objects) {
        m->w->peak_live_objects = m->live_objects;
    }
    return slot;
}

static void free_object(model *m, uint16_t slot)
{
    if (full(m)) {
        return;
    }
    emit(m, slot, m->slot_type[slot], DEMO_FREE);
    m->w->frees++;
    m->live_bytes -= m->slot_size[slot];
    m->live_objects--;
    m->free_slots[m->free_count++] = slot;
}

static void defer_free(model *m, uint16_t slot, uint64_t delay)
{
    size_t i = m->heap_count++;
    pending p = {m->tick + delay, slot};
    while (i > 0 && m->heap[(i - 1) / 2].due > p.due) {
        m->heap[i] = m->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    m->heap[i] = p;
}

static pending pop_due(model *m)
{
    pending top = m->heap[0], last = m->heap[--m->heap_count];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m->heap_count) {
            break;
        }
        if (c + 1 < m->heap_count && m->heap[c + 1].due < m->heap[c].due) {
            c++;
        }
        if (m->heap[c].due >= last.due) {
            break;
        }
        m->heap[i] = m->heap[c];
        i = c;
    }
    m->heap[i] = last;
    return top;
}

static void log_record(model *m)
{
    if (m->logs_pending >= DEMO_LOG_PENDING) {
        m->w->logs_dropped++;
        return;
    }
    uint16_t slot = alloc_object(m, DEMO_LOG, log_uniform(&m->r, DEMO_LOG_MIN, DEMO_LOG_MAX));
    if (slot != NO_SLOT) {
        m->logs_pending++;
        defer_free(m, slot, log_uniform(&m->r, LOG_DELAY_MIN, LOG_DELAY_MAX));
    }
}

/* A lookup in the map cache: a hit refreshes the page, a miss loads it,
 * evicting the least recently used page when the cache is full. */
static void map_lookup(model *m, uint32_t region)
{
    int16_t at = m->where[region];
    if (at >= 0) {
        m->last_use[at] = m->tick;
        return;
    }
    size_t i = m->cached_count;
    if (i == DEMO_MAP_CACHE) {
        i = 0;
        for (size_t k = 1; k < DEMO_MAP_CACHE; k++) {
            if (m->last_use[k] < m->last_use[i]) {
                i = k;
            }
        }
        free_object(m, m->cached_slot[i]);
        m->where[m->cached_region[i]] = -1;
    } else {
        m->cached_count++;
    }
    uint16_t slot = alloc_object(m, DEMO_MAP, DEMO_MAP_SIZE);
    if (slot == NO_SLOT) { /* the stream is complete */
        m->cached_count--;
        if (i != m->cached_count) {
            m->cached_region[i] = m->cached_region[m->cached_count];
            m->cached_slot[i] = m->cached_slot[m->cached_count];
            m->last_use[i] = m->last_use[m->cached_count];
            m->where[m->cached_region[i]] = (int16_t)i;
        }
        return;
    }
    m->w->map_misses++;
    m->cached_region[i] = (uint16_t)region;
    m->cached_slot[i] = slot;
    m->last_use[i] = m->tick;
    m->where[region] = (int16_t)i;
}

static uint32_t pick_region(model *m)
{
    if (chance(&m->r, 850)) {
        return (m->hot_base + below(&m->r, HOT_REGIONS)) % REGIONS;
    }
    return below(&m->r, REGIONS);
}

/* A host command, or (internal) a garbage collection's relocation: a
 * descriptor, a DMA buffer and a map lookup anywhere on the drive. */
static void submit(model *m, bool internal)
{
    uint16_t desc = alloc_object(m, DEMO_DESC, DEMO_DESC_SIZE);
    if (desc == NO_SLOT) {
        return;
    }
    command c = {desc, NO_SLOT, internal};
    if (internal || chance(&m->r, 900)) { /* read or write: data */
        c.dma = alloc_object(m, DEMO_DMA, DEMO_DMA_SIZE);
        map_lookup(m, internal ? below(&m->r, REGIONS) : pick_region(m));
    }
    m->inflight[m->inflight_count++] = c;
    m->w->commands += !internal;
    m->w->internal_commands += internal;
    if (m->inflight_count > m->w->peak_queue_depth) {
        m->w->peak_queue_depth = m->inflight_count;
    }
    if (chance(&m->r, 400)) {
        log_record(m);
    }
}

static void complete(model *m)
{
    size_t i = chance(&m->r, 700) ? 0 : below(&m->r, (uint32_t)m->inflight_count);
    command c = m->inflight[i];
    memmove(&m->inflight[i], &m->inflight[i + 1], (m->inflight_count - i - 1) * sizeof c);
    m->inflight_count--;
    if (c.dma != NO_SLOT) {
        free_object(m, c.dma);
    }
    free_object(m, c.desc);
    if (!c.internal) {
        uint16_t cqe = alloc_object(m, DEMO_CQE, DEMO_CQE_SIZE);
        if (cqe != NO_SLOT) {
            defer_free(m, cqe, between(&m->r, 1, CQE_DELAY_MAX));
        }
    }
    if (chance(&m->r, 250)) {
        log_record(m);
    }
}

static void next_phase(model *m)
{
    int next;
    switch (m->phase) {
    case IDLE: next = chance(&m->r, 700) ? STEADY : BURST; break;
    case STEADY: next = chance(&m->r, 400) ? STEADY : chance(&m->r, 500) ? BURST : IDLE; break;
    default: next = chance(&m->r, 600) ? STEADY : IDLE; break;
    }
    m->phase = next;
    switch (next) {
    case IDLE:
        m->target = 0;
        m->phase_left = between(&m->r, 500, 5000);
        break;
    case STEADY:
        m->target = between(&m->r, 4, 64);
        m->phase_left = between(&m->r, 2000, 20000);
        break;
    default:
        m->target = between(&m->r, 128, DEMO_MAX_QUEUE_DEPTH);
        m->phase_left = between(&m->r, 500, 5000);
        break;
    }
}

static void step(model *m)
{
    m->tick++;
    if (m->heap_count > 0 && m->heap[0].due <= m->tick) {
        uint16_t slot = pop_due(m).slot;
        if (m->slot_type[slot] == DEMO_LOG) {
            m->logs_pending--;
        }
        free_object(m, slot);
        return;
    }
    if (m->phase_left-- == 0) {
        next_phase(m);
    }
    if (m->tick % 2048 == 0) {
        m->hot_base = (m->hot_base + below(&m->r, 64)) % REGIONS;
    }
    if (m->inflight_count < m->target && (m->inflight_count == 0 || chance(&m->r, 550))) {
        submit(m, false);
    } else if (m->inflight_count > 0) {
        complete(m);
    } else if (chance(&m->r, 60)) { /* idle: garbage collection relocates a page */
        submit(m, true);
        log_record(m);
    } else if (chance(&m->r, 15)) { /* idle: housekeeping */
        log_record(m);
    }
}

int demo_workload_make(demo_workload *w, uint64_t seed, size_t ops)
{
    *w = (demo_workload){.seed = seed};
    w->events = malloc((ops ? ops : 1) * sizeof *w->events);
    model *m = calloc(1, sizeof *m);
    if (w->events == NULL || m == NULL) {
        free(w->events);
        free(m);
        w->events = NULL;
        return -1;
    }
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        m->r.s[i] = splitmix64(&x);
    }
    m->w = w;
    m->ops = ops;
    for (size_t i = 0; i < DEMO_SLOTS; i++) {
        m->free_slots[i] = (uint16_t)(DEMO_SLOTS - 1 - i);
    }
    m->free_count = DEMO_SLOTS;
    for (size_t i = 0; i < REGIONS; i++) {
        m->where[i] = -1;
    }
    m->phase = IDLE;
    m->phase_left = between(&m->r, 100, 1000);
    while (!full(m)) {
        step(m);
    }
    free(m);
    return 0;
}

void demo_workload_free(demo_workload *w)
{
    free(w->events);
    w->events = NULL;
}
