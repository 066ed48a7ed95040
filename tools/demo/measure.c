/* The demo's measurement (see measure.h). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "measure.h"
#include "poolkit/common.h"

#define NOT_TIMED UINT32_MAX
#define OVERHEAD_OPS 100000u /* events of the workload the empty allocator replays */

/* ---- The replay ------------------------------------------------------------ */

/* One replay's state besides the result. */
typedef struct {
    void *slots[DEMO_SLOTS];
    uint8_t slot_type[DEMO_SLOTS];
    uint64_t live_bytes, live_objects;
    uint64_t peak_live_seen;     /* live bytes at the last new high */
    uint64_t failure_live_bytes; /* live bytes requested at the first failure */
    bool first_pass;             /* counts, probes and samples are taken in the first pass */
    bool stop_at_failure;
    uint32_t *best;              /* per event: the fastest of the passes, in ticks (NULL: untimed) */
} replay_state;

static double internal_frag(uint64_t granted, uint64_t requested)
{
    pk_stats s = {0};
    s.in_use = granted;
    s.requested = requested;
    return pk_frag_internal(&s);
}

static void take_sample(const demo_subject *s, void *self, const replay_state *st, uint64_t op,
                        unsigned queue_depth, demo_sample *out)
{
    demo_probe p;
    s->probe(self, &p);
    *out = (demo_sample){.op = op,
                         .live_bytes = st->live_bytes,
                         .footprint = p.footprint,
                         .frag_external = p.frag_external,
                         .frag_internal = internal_frag(p.granted, st->live_bytes),
                         .queue_depth = queue_depth};
}

static void note_footprint(demo_result *r, uint64_t footprint, const replay_state *st)
{
    if (footprint > r->peak_footprint) {
        r->peak_footprint = footprint;
        r->overhead_per_alloc = st->live_objects == 0 || footprint < st->live_bytes
                                    ? 0
                                    : (double)(footprint - st->live_bytes) / (double)st->live_objects;
    }
}

static void note_sample(demo_result *r, const demo_sample *x, const replay_state *st)
{
    note_footprint(r, x->footprint, st);
    if (x->frag_external > r->frag_external_worst) {
        r->frag_external_worst = x->frag_external;
    }
    if (x->frag_internal > r->frag_internal_worst) {
        r->frag_internal_worst = x->frag_internal;
    }
}

static void record(replay_state *st, size_t i, uint64_t ticks)
{
    if (st->best != NULL && ticks < st->best[i]) {
        st->best[i] = ticks < NOT_TIMED ? (uint32_t)ticks : NOT_TIMED - 1;
    }
}

/* Replays the events (up to the first failure when asked) once. -1 after a
 * message. */
static int replay(const demo_subject *s, void *self, const demo_workload *w, replay_state *st,
                  demo_result *r)
{
    size_t every = w->count / DEMO_SERIES_POINTS ? w->count / DEMO_SERIES_POINTS : 1;
    bool first = st->first_pass;
    for (size_t i = 0; i < w->count; i++) {
        const demo_event *e = &w->events[i];
        if (e->kind == DEMO_ALLOC) {
            uint64_t t0 = bench_tick_start();
            void *p = s->alloc(self, e->type, e->size);
            uint64_t t1 = bench_tick_stop();
            record(st, i, t1 - t0);
            if (p == NULL) {
                if (first) {
                    r->failures++;
                    if (r->first_failure_op == 0) {
                        r->first_failure_op = i + 1;
                        st->failure_live_bytes = st->live_bytes;
                    }
                }
                if (st->stop_at_failure) {
                    return 0;
                }
                continue;
            }
            r->allocs += first;
            st->slots[e->slot] = p;
            st->slot_type[e->slot] = e->type;
            s->after_alloc(self, e->type, p, e->size);
            st->live_bytes += e->size;
            st->live_objects++;
            if (first && st->live_bytes > st->peak_live_seen) { /* a new high: the footprint too */
                demo_probe probe;
                st->peak_live_seen = st->live_bytes;
                s->probe(self, &probe);
                note_footprint(r, probe.footprint, st);
            }
        } else {
            void *p = st->slots[e->slot];
            if (p == NULL) { /* its allocation failed */
                continue;
            }
            if (s->before_free != NULL) {
                s->before_free(self, e->type, p);
            }
            uint64_t t0 = bench_tick_start();
            int rc = s->release(self, e->type, p);
            uint64_t t1 = bench_tick_stop();
            record(st, i, t1 - t0);
            if (rc != 0) {
                fprintf(stderr, "poolkit demo: %s refused a free of its own block (op %zu)\n", s->name, i + 1);
                return -1;
            }
            r->frees += first;
            st->slots[e->slot] = NULL;
            st->live_bytes -= e->size;
            st->live_objects--;
        }
        if (first && (i + 1) % every == 0 && r->series_count < DEMO_SERIES_POINTS) {
            demo_sample *x = &r->series[r->series_count++];
            take_sample(s, self, st, i + 1, e->queue_depth, x);
            note_sample(r, x, st);
        }
    }
    return 0;
}

/* Frees what is still live (untimed), then the subject's check and counts. */
static int teardown(const demo_subject *s, void *self, replay_state *st, demo_result *r)
{
    for (size_t k = 0; k < DEMO_SLOTS; k++) {
        void *p = st->slots[k];
        if (p != NULL) {
            if (s->before_free != NULL) {
                s->before_free(self, st->slot_type[k], p);
            }
            if (s->release(self, st->slot_type[k], p) != 0) {
                fprintf(stderr, "poolkit demo: %s refused a free of its own block\n", s->name);
                return -1;
            }
            st->slots[k] = NULL;
        }
    }
    st->live_bytes = st->live_objects = 0;
    uint64_t reuses = 0, calls = 0;
    int rc = s->finish(self, &reuses, &calls);
    if (st->first_pass) {
        r->constructed_reuses = reuses;
        r->constructor_calls = calls;
    }
    return rc;
}

static void *init_subject(const demo_subject *s, void *arena, size_t size)
{
    if (s->in_arena) {
        memset(arena, 0, size); /* every page touched before anything is timed */
    }
    void *self = s->init(arena, size);
    if (self == NULL) {
        fprintf(stderr, "poolkit demo: %s: init over an arena of %zu bytes failed\n", s->name, size);
    }
    return self;
}

/* passes replays of w on a fresh s each; best (w->count entries, or NULL)
 * gets each call's fastest time. The first pass fills r. */
static int replays(const demo_subject *s, const demo_workload *w, void *arena, size_t size, unsigned passes,
                   bool stop_at_failure, uint32_t *best, demo_result *r, uint64_t *failure_live_bytes)
{
    replay_state *st = calloc(1, sizeof *st);
    if (st == NULL) {
        fprintf(stderr, "poolkit demo: out of memory\n");
        return -1;
    }
    if (best != NULL) {
        for (size_t i = 0; i < w->count; i++) {
            best[i] = NOT_TIMED;
        }
    }
    r->frag_external_worst = r->frag_internal_worst = -1;
    st->best = best;
    st->stop_at_failure = stop_at_failure;
    int rc = 0;
    for (unsigned pass = 0; pass < passes && rc == 0; pass++) {
        st->first_pass = pass == 0;
        void *self = init_subject(s, arena, size);
        if (self == NULL || replay(s, self, w, st, r) != 0) {
            rc = -1;
            break;
        }
        if (st->first_pass && !stop_at_failure) {
            demo_sample end;
            take_sample(s, self, st, w->count, w->count ? w->events[w->count - 1].queue_depth : 0, &end);
            note_sample(r, &end, st);
            r->frag_external_end = end.frag_external;
            r->frag_internal_end = end.frag_internal;
        }
        rc = teardown(s, self, st, r);
    }
    *failure_live_bytes = st->failure_live_bytes;
    free(st);
    return rc;
}

/* ---- Latency: ticks to ns ---------------------------------------------------- */

static void to_latency(bench_latency *l, double ticks_per_ns, double floor_ns, demo_latency *out)
{
    memset(out, 0, sizeof *out);
    out->calls = l->calls;
    if (l->calls == 0) {
        return;
    }
    double sum = 0;
    for (uint64_t t = 0; t < BENCH_EXACT_TICKS + l->long_count; t++) {
        uint64_t ticks = t < BENCH_EXACT_TICKS ? t : l->long_calls[t - BENCH_EXACT_TICKS];
        uint64_t n = t < BENCH_EXACT_TICKS ? l->counts[t] : 1;
        if (n == 0) {
            continue;
        }
        sum += (double)ticks * (double)n;
        double ns = (double)ticks / ticks_per_ns;
        int b = ns < DEMO_HIST_MIN_NS ? 0 : (int)floor(log2(ns / DEMO_HIST_MIN_NS) * DEMO_HIST_PER_OCTAVE);
        out->hist[b < DEMO_HIST_BUCKETS ? b : DEMO_HIST_BUCKETS - 1] += n;
    }
    out->mean_ns = sum / (double)l->calls / ticks_per_ns;
    out->p50_ns = (double)bench_latency_quantile(l, 0.5) / ticks_per_ns;
    out->p99_ns = (double)bench_latency_quantile(l, 0.99) / ticks_per_ns;
    out->p999_ns = (double)bench_latency_quantile(l, 0.999) / ticks_per_ns;
    out->max_ns = (double)bench_latency_quantile(l, 1.0) / ticks_per_ns;
    /* A median below the clock's resolution counts as one step of it. */
    out->determinism = out->max_ns / (out->p50_ns > floor_ns ? out->p50_ns : floor_ns);
}

/* Each timed call's fastest time, less the overhead, into alloc and free. */
static int collect(const demo_workload *w, const uint32_t *best, uint64_t overhead, bench_latency *alloc,
                   bench_latency *release)
{
    for (size_t i = 0; i < w->count; i++) {
        if (best[i] == NOT_TIMED) {
            continue;
        }
        uint64_t ticks = best[i] > overhead ? best[i] - overhead : 0;
        if (bench_latency_add(w->events[i].kind == DEMO_ALLOC ? alloc : release, ticks) != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- The entry points ---------------------------------------------------------- */

int demo_measure(const demo_subject *s, const demo_workload *w, void *arena, size_t size,
                 const demo_timer *t, demo_result *r)
{
    uint32_t *best = malloc((w->count ? w->count : 1) * sizeof *best);
    bench_latency la, lf;
    int la_ok = bench_latency_init(&la), lf_ok = bench_latency_init(&lf);
    int rc = -1;
    uint64_t unused;
    memset(r, 0, sizeof *r);
    r->name = s->name;
    r->description = s->description;
    r->arena_size = s->in_arena ? size : 0;
    if (best == NULL || la_ok != 0 || lf_ok != 0) {
        fprintf(stderr, "poolkit demo: out of memory\n");
    } else if (replays(s, w, arena, size, DEMO_PASSES, false, best, r, &unused) == 0) {
        if (collect(w, best, t->overhead_ticks, &la, &lf) != 0) {
            fprintf(stderr, "poolkit demo: out of memory\n");
        } else {
            to_latency(&la, t->clock.ticks_per_ns, t->clock.step_ns, &r->alloc);
            to_latency(&lf, t->clock.ticks_per_ns, t->clock.step_ns, &r->free);
            rc = 0;
        }
    }
    if (la_ok == 0) {
        bench_latency_free(&la);
    }
    if (lf_ok == 0) {
        bench_latency_free(&lf);
    }
    free(best);
    return rc;
}

int demo_first_failure(const demo_subject *s, const demo_workload *w, void *arena, size_t size,
                       uint64_t *op, uint64_t *live_bytes)
{
    demo_result *r = calloc(1, sizeof *r);
    if (r == NULL) {
        fprintf(stderr, "poolkit demo: out of memory\n");
        return -1;
    }
    int rc = replays(s, w, arena, size, 1, true, NULL, r, live_bytes);
    *op = r->first_failure_op;
    if (*op == 0) {
        *live_bytes = 0;
    }
    free(r);
    return rc;
}

/* ---- The timer ---------------------------------------------------------------- */

int demo_timer_init(demo_timer *t, const demo_workload *w)
{
    bench_clock_init(&t->clock);
    /* The empty allocator on the start of the workload, timed as the others
     * are: its per-call fastest times' median is the overhead. */
    demo_workload head = *w;
    head.count = w->count < OVERHEAD_OPS ? w->count : OVERHEAD_OPS;
    uint32_t *best = malloc((head.count ? head.count : 1) * sizeof *best);
    bench_latency l;
    if (best == NULL || bench_latency_init(&l) != 0) {
        free(best);
        return -1;
    }
    demo_result *r = calloc(1, sizeof *r);
    uint64_t unused;
    int rc = r != NULL ? replays(&demo_null_subject, &head, NULL, 0, DEMO_PASSES, false, best, r, &unused) : -1;
    if (rc == 0) {
        rc = collect(&head, best, 0, &l, &l);
    }
    t->overhead_ticks = rc == 0 ? bench_latency_quantile(&l, 0.5) : 0;
    bench_latency_free(&l);
    free(best);
    free(r);
    double rate = t->clock.ticks_per_ns;
    snprintf(t->description, sizeof t->description,
             "%s%s (%.2f ticks/ns, resolution %.1f ns); every call timed, its time the fastest of %d "
             "identical replays, minus %.1f ns: the median such time of an empty allocator (the timer "
             "and the indirect call)",
             t->clock.name, rate != 1.0 ? " calibrated against CLOCK_MONOTONIC" : "", rate, t->clock.step_ns,
             DEMO_PASSES, (double)t->overhead_ticks / rate);
    return rc;
}
