/*
 * Replays a trace (tools/trace/trace.h) on an allocator through poolkit's
 * generic view (poolkit/allocator.h): `poolkit replay` runs it on each of
 * poolkit's allocators, `poolkit plan` on the configuration it proposes.
 *
 * Events are replayed one at a time in sequence order (threads are not
 * simulated). Each traced pointer maps to the block the allocator gave for
 * it; a free or realloc of a pointer the trace never returned (or that
 * failed in the replay) is skipped and counted. realloc goes through
 * pk_realloc; calloc zeroes. A call the allocator fails is counted, and the
 * first one is kept (its event and size); the replay goes on, the traced
 * block then unmapped, so later frees of it are skipped.
 */
#ifndef POOLKIT_TOOLS_REPLAY_ENGINE_H
#define POOLKIT_TOOLS_REPLAY_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "poolkit/allocator.h"
#include "trace/trace.h"

typedef struct {
    uint64_t time_ns;         /* the event's traced time */
    uint64_t event;           /* its index */
    size_t live_bytes;        /* requested bytes live after it */
    size_t in_use;            /* the allocator's pk_stats in_use after it */
    double frag_external;     /* pk_frag_external of its stats after it */
} replay_sample;

typedef struct {
    /* Over the whole replay. */
    uint64_t calls, failures, skipped;
    bool failed;               /* failures != 0 */
    uint64_t first_failure;    /* the first failed event's index (if failed) */
    size_t first_failure_size;
    size_t peak_requested;     /* peak of live requested bytes */
    size_t peak_in_use;        /* peak of the allocator's in_use (its footprint) */
    size_t min_free_bytes;     /* lowest pk_stats free_bytes after an event: what
                                * the allocator left free at its fullest (so
                                * capacity - this is the arena it used) */
    double peak_frag_external; /* highest external fragmentation seen */
    /* Per-call time of the allocator's own call (ns): median, 99th
     * percentile and maximum, over every alloc-like call and over frees. */
    double alloc_ns_median, alloc_ns_p99, alloc_ns_max;
    double free_ns_median, free_ns_p99, free_ns_max;
    /* Fragmentation over time: up to max_samples samples, evenly spaced in
     * event order (the caller's array). */
    replay_sample *samples;
    size_t sample_count, max_samples;
} replay_result;

/* Replays t on a, filling *out (whose samples/max_samples the caller set).
 * Returns 0, or -1 when out of memory for the pointer map (message on
 * stderr). pk_check(a) must pass at the end, else -1 with a message. */
int replay_run(const pk_trace *t, pk_allocator *a, replay_result *out);

#endif
