/*
 * The replay engine (engine.h). Beyond what engine.h promises, how the trace's
 * corner cases replay, so that the allocator always holds what the traced
 * program held:
 * - a call that failed in the trace (result 0, the program got NULL) is
 *   skipped: the program held nothing after it. realloc(p, 0) that returned
 *   NULL is a free, as the trace's header says;
 * - a result the map already holds means the free of the earlier block was
 *   lost (a thread killed before it flushed: the trace's missing events):
 *   that block is freed first, untimed and uncounted;
 * - a realloc that fails in the replay leaves the old block to the allocator
 *   (pk_realloc's contract), but the traced program let it go: it is freed,
 *   untimed, so later events see the same live set as the program did;
 * - realloc(p, 0) that returned a block replays as a free then an alloc of 0
 *   bytes (one call, both timed);
 * - an alignment that is not a power of two (aligned_alloc's lax callers)
 *   is rounded up to one.
 * Every event is then either one call (counted in calls) or skipped.
 *
 * Statistics (outside the timed part) are read after each sampled event and
 * after each event that takes the live requested bytes to a new high, where
 * the footprint peaks: pk_fit's cost O(free blocks) each, and read after
 * every event they made its replay of a 500,000-event trace 25 times slower.
 * peak_in_use is exact (the allocator's own high-water mark, read at the
 * end); min_free_bytes and peak_frag_external are over those events.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "replay/engine.h"
#include "replay/ptrmap.h"

/* One call's ticks, kept per kind until the percentiles are taken. */
typedef struct {
    uint64_t *ticks;
    size_t count;
} tick_list;

typedef struct {
    const pk_trace *trace;
    pk_allocator *a;
    replay_result *out;
    ptrmap map;
    size_t live_bytes;
    tick_list alloc_ticks, free_ticks;
} replay_state;

static double ticks_per_ns(void)
{
    static bench_clock clock;
    static int calibrated;
    if (!calibrated) {
        bench_clock_init(&clock);
        calibrated = 1;
    }
    return clock.ticks_per_ns;
}

static void failed_call(replay_state *s, size_t event, size_t size)
{
    if (!s->out->failed) {
        s->out->failed = true;
        s->out->first_failure = event;
        s->out->first_failure_size = size;
    }
    s->out->failures++;
}

/* Frees e's block (untimed) and forgets it. 0, or -1 after a message when the
 * allocator refuses its own block. */
static int release(replay_state *s, ptrmap_entry *e)
{
    pk_status st = pk_free(s->a, e->block);
    if (st != PK_OK) {
        fprintf(stderr, "replay: %s refused to free its own block: %s\n", pk_name(s->a), pk_status_str(st));
        return -1;
    }
    s->live_bytes -= e->size;
    ptrmap_remove(&s->map, e);
    return 0;
}

/* The block traced at result, if the map still holds one (its free was lost). */
static int release_stale(replay_state *s, uint64_t result)
{
    ptrmap_entry *e = ptrmap_find(&s->map, result);
    return e != NULL ? release(s, e) : 0;
}

static int keep(replay_state *s, uint64_t traced, void *block, size_t size)
{
    if (ptrmap_put(&s->map, traced, block, size) != 0) {
        fprintf(stderr, "replay: out of memory for the pointer map (%zu blocks live)\n", s->map.count);
        return -1;
    }
    s->live_bytes += size;
    return 0;
}

static size_t power_of_two_at_least(uint64_t align)
{
    size_t p = 1;
    while (p < align && p <= SIZE_MAX / 2) {
        p *= 2;
    }
    return p;
}

/* The allocator's call for an allocating event, timed. */
static void *timed_alloc(replay_state *s, const pk_trace_event *ev, size_t size)
{
    pk_allocator *a = s->a;
    void *p;
    uint64_t t0 = bench_tick_start();
    if (ev->op == PK_TRACE_CALLOC) {
        p = pk_calloc(a, 1, size);
    } else if (ev->op == PK_TRACE_ALIGNED) {
        p = pk_alloc_aligned(a, size, ev->align == 0 ? 0 : power_of_two_at_least(ev->align));
    } else if (ev->op == PK_TRACE_REALLOC) { /* realloc(NULL, size) */
        p = pk_realloc(a, NULL, size);
    } else {
        p = pk_alloc(a, size);
    }
    uint64_t t1 = bench_tick_stop();
    s->alloc_ticks.ticks[s->alloc_ticks.count++] = t1 - t0;
    return p;
}

static int timed_free(replay_state *s, ptrmap_entry *e)
{
    uint64_t t0 = bench_tick_start();
    pk_status st = pk_free(s->a, e->block);
    uint64_t t1 = bench_tick_stop();
    s->free_ticks.ticks[s->free_ticks.count++] = t1 - t0;
    if (st != PK_OK) {
        fprintf(stderr, "replay: %s refused to free its own block: %s\n", pk_name(s->a), pk_status_str(st));
        return -1;
    }
    s->live_bytes -= e->size;
    ptrmap_remove(&s->map, e);
    return 0;
}

static int replay_alloc(replay_state *s, size_t index, const pk_trace_event *ev)
{
    if (ev->result == 0) {
        s->out->skipped++;
        return 0;
    }
    if (release_stale(s, ev->result) != 0) {
        return -1;
    }
    s->out->calls++;
    if (ev->size > SIZE_MAX) {
        failed_call(s, index, SIZE_MAX);
        return 0;
    }
    size_t size = (size_t)ev->size;
    void *p = timed_alloc(s, ev, size);
    if (p == NULL) {
        failed_call(s, index, size);
        return 0;
    }
    return keep(s, ev->result, p, size);
}

static int replay_realloc(replay_state *s, size_t index, const pk_trace_event *ev)
{
    if (ev->old == 0) {
        return replay_alloc(s, index, ev);
    }
    ptrmap_entry *e = ptrmap_find(&s->map, ev->old);
    if (e == NULL || (ev->result == 0 && ev->size != 0)) { /* unknown block, or the traced call failed */
        s->out->skipped++;
        return 0;
    }
    s->out->calls++;
    if (ev->size == 0) { /* a free; with a result, then an alloc of 0 bytes */
        if (timed_free(s, e) != 0) {
            return -1;
        }
        if (ev->result == 0) {
            return 0;
        }
        if (release_stale(s, ev->result) != 0) {
            return -1;
        }
        uint64_t t0 = bench_tick_start();
        void *p = pk_alloc(s->a, 0);
        uint64_t t1 = bench_tick_stop();
        s->alloc_ticks.ticks[s->alloc_ticks.count++] = t1 - t0;
        if (p == NULL) {
            failed_call(s, index, 0);
            return 0;
        }
        return keep(s, ev->result, p, 0);
    }
    if (ev->size > SIZE_MAX) {
        failed_call(s, index, SIZE_MAX);
        return release(s, e);
    }
    size_t size = (size_t)ev->size, old_size = e->size;
    uint64_t t0 = bench_tick_start();
    void *q = pk_realloc(s->a, e->block, size);
    uint64_t t1 = bench_tick_stop();
    s->alloc_ticks.ticks[s->alloc_ticks.count++] = t1 - t0;
    if (q == NULL) {
        failed_call(s, index, size);
        return release(s, e);
    }
    s->live_bytes -= old_size;
    ptrmap_remove(&s->map, e);
    if (release_stale(s, ev->result) != 0) {
        return -1;
    }
    return keep(s, ev->result, q, size);
}

static int replay_free(replay_state *s, const pk_trace_event *ev)
{
    ptrmap_entry *e = ptrmap_find(&s->map, ev->old);
    if (e == NULL) {
        s->out->skipped++;
        return 0;
    }
    s->out->calls++;
    return timed_free(s, e);
}

/* Statistics are read after at least this many evenly spaced events, even
 * when the caller keeps fewer samples. */
#define MIN_OBSERVATIONS 1000u

/* Event i crosses one of max evenly spaced boundaries: floor((i + 1) * max / n)
 * > floor(i * max / n). That gives min(n, max) samples, the last after the
 * last event. */
static bool sample_after(size_t i, size_t n, size_t max)
{
    return (uint64_t)(i + 1) * max / n > (uint64_t)i * max / n;
}

static void observe(replay_state *s, size_t i, const pk_trace_event *ev)
{
    replay_result *out = s->out;
    bool high = s->live_bytes > out->peak_requested;
    bool sample = out->samples != NULL && out->sample_count < out->max_samples &&
                  sample_after(i, s->trace->count, out->max_samples);
    if (!high && !sample_after(i, s->trace->count, MIN_OBSERVATIONS) && !sample) {
        return;
    }
    if (high) {
        out->peak_requested = s->live_bytes;
    }
    pk_stats st;
    pk_stats_get(s->a, &st);
    double frag = pk_frag_external(&st);
    if (st.in_use > out->peak_in_use) {
        out->peak_in_use = st.in_use;
    }
    if (st.free_bytes < out->min_free_bytes) {
        out->min_free_bytes = st.free_bytes;
    }
    if (frag > out->peak_frag_external) {
        out->peak_frag_external = frag;
    }
    if (sample) {
        out->samples[out->sample_count++] =
            (replay_sample){ev->time_ns, i, s->live_bytes, st.in_use, frag};
    }
}

static int by_value(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value at least q of the calls did not exceed. */
static void percentiles(tick_list *l, double per_ns, double *median, double *p99, double *max)
{
    *median = *p99 = *max = 0.0;
    if (l->count == 0) {
        return;
    }
    qsort(l->ticks, l->count, sizeof l->ticks[0], by_value);
    size_t n = l->count;
    size_t at50 = (n + 1) / 2, at99 = (99 * n + 99) / 100; /* ranks ceil(n/2), ceil(0.99 n) */
    *median = (double)l->ticks[at50 - 1] / per_ns;
    *p99 = (double)l->ticks[at99 - 1] / per_ns;
    *max = (double)l->ticks[n - 1] / per_ns;
}

int replay_run(const pk_trace *t, pk_allocator *a, replay_result *out)
{
    replay_sample *samples = out->samples;
    size_t max_samples = out->max_samples;
    *out = (replay_result){.samples = samples, .max_samples = max_samples, .min_free_bytes = SIZE_MAX};
    double per_ns = ticks_per_ns();

    /* Each alloc-like event is timed at most once as an alloc, each free and
     * realloc at most once as a free. */
    size_t allocs = 0, frees = 0;
    for (size_t i = 0; i < t->count; i++) {
        allocs += t->events[i].op != PK_TRACE_FREE;
        frees += t->events[i].op == PK_TRACE_FREE || t->events[i].op == PK_TRACE_REALLOC;
    }
    replay_state s = {.trace = t, .a = a, .out = out};
    ptrmap_init(&s.map);
    s.alloc_ticks.ticks = malloc((allocs ? allocs : 1) * sizeof(uint64_t));
    s.free_ticks.ticks = malloc((frees ? frees : 1) * sizeof(uint64_t));
    int rc = 0;
    if (s.alloc_ticks.ticks == NULL || s.free_ticks.ticks == NULL) {
        fprintf(stderr, "replay: out of memory for the timings of %zu events\n", t->count);
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < t->count; i++) {
        const pk_trace_event *ev = &t->events[i];
        switch (ev->op) {
        case PK_TRACE_MALLOC:
        case PK_TRACE_CALLOC:
        case PK_TRACE_ALIGNED:
            rc = replay_alloc(&s, i, ev);
            break;
        case PK_TRACE_REALLOC:
            rc = replay_realloc(&s, i, ev);
            break;
        case PK_TRACE_FREE:
            rc = replay_free(&s, ev);
            break;
        default: /* the reader lets no other operation through */
            out->skipped++;
            break;
        }
        if (rc == 0) {
            observe(&s, i, ev);
        }
    }
    if (rc == 0) {
        pk_stats st;
        pk_stats_get(a, &st);
        if (st.peak_in_use > out->peak_in_use) { /* a realloc's moment with both blocks */
            out->peak_in_use = st.peak_in_use;
        }
        if (out->min_free_bytes == SIZE_MAX) {
            out->min_free_bytes = st.free_bytes;
        }
        pk_status check = pk_check(a);
        if (check != PK_OK) {
            fprintf(stderr, "replay: %s: check after the replay: %s\n", pk_name(a), pk_status_str(check));
            rc = -1;
        }
    }
    if (rc == 0) {
        percentiles(&s.alloc_ticks, per_ns, &out->alloc_ns_median, &out->alloc_ns_p99, &out->alloc_ns_max);
        percentiles(&s.free_ticks, per_ns, &out->free_ns_median, &out->free_ns_p99, &out->free_ns_max);
    }
    free(s.alloc_ticks.ticks);
    free(s.free_ticks.ticks);
    ptrmap_free(&s.map);
    return rc;
}
