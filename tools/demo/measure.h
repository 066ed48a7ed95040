/*
 * The demo's measurement: replays a workload on one allocator, timing every
 * allocation and free, and samples the allocator's state (see results.h for
 * what is filled).
 */
#ifndef POOLKIT_TOOLS_DEMO_MEASURE_H
#define POOLKIT_TOOLS_DEMO_MEASURE_H

#include <stddef.h>
#include <stdint.h>

#include "bench/bench.h"
#include "results.h"
#include "subjects.h"
#include "workload.h"

typedef struct {
    bench_clock clock;       /* the per-call timer (tools/bench/clock.c) */
    uint64_t overhead_ticks; /* subtracted from every timed call */
    char description[256];   /* for demo_run.timer */
} demo_timer;

/* Each call's time is the fastest of this many identical replays of the
 * workload (each on a fresh allocator: the same call in the same state), so
 * that the host's interrupts and preemptions, which firmware would not see,
 * drop out and the maximum is the allocator's own slowest call. */
#define DEMO_PASSES 3

/* Calibrates the timer and measures its own overhead: the median time of
 * the same timed calls of an allocator that does nothing, over the start of
 * w. 0, or -1 out of memory. */
int demo_timer_init(demo_timer *t, const demo_workload *w);

/* Replays w on s over the arena (size bytes; malloc ignores it) DEMO_PASSES
 * times and fills r's measured fields (counts, samples and footprints from
 * the first replay; times from all). 0, or -1 after a message (init refused, a free
 * refused, out of memory, the check after the run failed). */
int demo_measure(const demo_subject *s, const demo_workload *w, void *arena, size_t size,
                 const demo_timer *t, demo_result *r);

/* Replays w on s over the arena until the first allocation that fails:
 * *op is that operation's index (1-based; 0 if none failed) and
 * *live_bytes the bytes requested by the live objects then. 0, or -1 after
 * a message. */
int demo_first_failure(const demo_subject *s, const demo_workload *w, void *arena, size_t size,
                       uint64_t *op, uint64_t *live_bytes);

#endif
