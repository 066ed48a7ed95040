/*
 * `poolkit plan`'s planner: from an allocation trace (tools/trace/trace.h),
 * a configuration of fixed-size pools, one per size class, plus a heap for
 * the sizes pools serve badly; the C a firmware engineer pastes; and the
 * replay of the trace on that configuration (tools/replay/engine.h).
 *
 * The trace is modelled exactly as the replay engine replays it: events in
 * sequence order; calls that failed in the trace are not replayed; a realloc
 * is a free of the old block plus an allocation of the new size (a realloc
 * or free of a pointer that is not live is skipped); a pointer returned again
 * while still live leaves the older block live for good (as the engine's
 * pointer map does).
 *
 * Size classes (the rules README "Plan" documents):
 * 1. A request's effective size is its size rounded up to its alignment, at
 *    least alignof(max_align_t) (PLAN_GRANULE: a pool's default stride unit,
 *    so finer sizes would cost the same). Sizes 0 count as 1.
 * 2. Effective sizes above heap_above (default PLAN_HEAP_ABOVE_DEFAULT) go to
 *    the heap: large blocks are few, and a pool would keep each one's memory
 *    for itself.
 * 3. The others are grouped, smallest first: a class starts at the smallest
 *    effective size not yet placed and takes the next ones while its block
 *    (the largest effective size, rounded up to the largest alignment asked
 *    in the class) stays within 5/4 of its smallest: no request wastes more
 *    than a fifth of its block beyond the granule. Each block is below the
 *    next class's smallest size, so "the smallest block that holds the
 *    request" routes every size to its class, as pk_classes does.
 * 4. Each class's pool holds its high-water mark of blocks live at once
 *    (exact over the trace: classes merged share one count), plus --margin
 *    percent rounded up.
 * 5. Beyond PK_CLASSES_MAX classes, the largest go to the heap.
 * 6. Then, largest class first, a class goes to the heap while that makes
 *    the total (pools plus the heap, its size measured by replay) smaller by
 *    at least an eighth of the class's pool: pools are O(1) and cannot
 *    fragment, so a heap must win clearly. The first class that stays ends
 *    the search, so the heap always takes the sizes above one limit.
 * The heap's size is the smallest that replays the whole trace on the plan
 * (pools at their high-water marks) without failure, found by bisection to
 * PLAN_GRANULE bytes, plus the margin rounded up to PLAN_GRANULE.
 *
 * Hosted tool code: malloc, stdio.
 */
#ifndef POOLKIT_TOOLS_PLANNER_H
#define POOLKIT_TOOLS_PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "poolkit/common.h"
#include "replay/engine.h"
#include "trace/trace.h"

#define PLAN_GRANULE ((size_t)PK_MAX_ALIGN)
#define PLAN_HEAP_ABOVE_DEFAULT ((size_t)4096)
#define PLAN_MARGIN_MAX 1000u

/* Sizes a class or the heap holds, for the plan's comments. */
typedef struct {
    size_t *sizes;        /* distinct requested sizes, ascending */
    size_t count;
    uint64_t allocs;      /* allocations (realloc's new blocks included) */
} plan_sizes;

typedef struct {
    size_t block_size;    /* a multiple of the class's alignment */
    size_t align;         /* the largest alignment asked, 0 when none above PLAN_GRANULE */
    size_t peak;          /* most blocks of the class live at once in the trace */
    size_t count;         /* blocks planned: peak plus the margin, rounded up */
    plan_sizes held;
} plan_class;

typedef struct {
    plan_class *classes;  /* the pools, by ascending block size */
    size_t class_count;
    /* Requests whose effective size is above this go to the heap, the
     * others to the class with the smallest block that holds them: the
     * largest pool block (0: no pools). */
    size_t pool_limit;
    size_t heap_bytes;    /* the heap's buffer, margin included (0: no heap) */
    size_t heap_needed;   /* the smallest heap that replayed (margin 0) */
    size_t heap_peak_requested; /* most bytes requested live at once on it */
    plan_sizes heap_held;
    size_t pool_bytes;    /* sum of PK_POOL_BUFFER_SIZE over the pools */
    size_t heap_alone_bytes; /* the smallest single pk_heap that replays the whole trace */
    unsigned margin;      /* percent */
    size_t heap_above;    /* rule 2's limit */
} plan;

/* Plans for t with margin percent (0..PLAN_MARGIN_MAX) and the heap_above
 * limit (at least PLAN_GRANULE). Returns 0, or -1 with a message in err when
 * the trace holds no allocation that succeeded or one aligned to a
 * non-power of two, which no poolkit allocator serves (status 2 for the
 * tool), or 1
 * with a message when the plan cannot be made (out of memory, a heap larger
 * than pk_heap's largest region, a replay whose final check failed).
 * Cost: O(events) per replay; rule 6 and the two heap sizes take about
 * log2(heap bytes / PLAN_GRANULE) replays each, once per class tried. */
int plan_build(const pk_trace *t, unsigned margin, size_t heap_above, plan *out, char *err,
               size_t err_size);

/* Replays t on p: a pk_pool over a malloc'd buffer of
 * PK_POOL_BUFFER_SIZE(block_size, count, align) bytes per class (a class of
 * count 0 fails every request), a pk_heap over heap_bytes (none when 0),
 * each request routed as planned, no fall-through, through one pk_allocator.
 * out's samples/max_samples as for replay_run. Returns replay_run's result,
 * or -1 out of memory (message on stderr). O(events). */
int plan_replay(const pk_trace *t, const plan *p, replay_result *out);

/* Prints p as C: the PK_POOL_DEFINE lines, the same classes as a
 * pk_class_spec array, the heap's buffer, the totals beside the lone heap's
 * need, and the replay's verdict (result) as comments. trace_name and t
 * describe the trace in the header comment. O(classes + sizes). */
void plan_print(FILE *out, const plan *p, const char *trace_name, const pk_trace *t,
                const replay_result *result);

/* Releases what plan_build allocated. */
void plan_free(plan *p);

#endif
