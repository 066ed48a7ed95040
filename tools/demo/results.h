/*
 * What one run of `poolkit demo` measured, per allocator: the contract between
 * the demo (tools/demo/, which fills it) and the report (tools/report/, which
 * prints nothing but turns it into build/report/index.html) and the JSON
 * writer. Every number is measured on this run; a field that does not apply to
 * an allocator holds the documented "not applicable" value.
 */
#ifndef POOLKIT_TOOLS_DEMO_RESULTS_H
#define POOLKIT_TOOLS_DEMO_RESULTS_H

#include <stddef.h>
#include <stdint.h>

/* Latency histogram: bucket i counts calls whose time t (ns) satisfies
 * DEMO_HIST_MIN_NS * 2^(i/DEMO_HIST_PER_OCTAVE) <= t < the next bucket's
 * lower bound; bucket 0 also holds everything below, the last everything
 * above. 8 buckets per octave from 1 ns over 24 octaves (to ~16 ms). */
#define DEMO_HIST_MIN_NS 1.0
#define DEMO_HIST_PER_OCTAVE 8
#define DEMO_HIST_BUCKETS (24 * DEMO_HIST_PER_OCTAVE)

/* Time series: the state sampled every ops/DEMO_SERIES_POINTS operations. */
#define DEMO_SERIES_POINTS 200

typedef struct {
    uint64_t calls;
    double mean_ns, p50_ns, p99_ns, p999_ns, max_ns;
    double determinism;                 /* max / median (p50) */
    uint64_t hist[DEMO_HIST_BUCKETS];
} demo_latency;

typedef struct {
    uint64_t op;              /* operations done when sampled */
    uint64_t live_bytes;      /* bytes requested by live objects */
    uint64_t footprint;       /* bytes the allocator holds to serve them (see demo_result) */
    double frag_external;     /* pk_frag_external now; -1 where not measurable (malloc) */
    double frag_internal;     /* pk_frag_internal now; -1 where not measurable */
    uint64_t queue_depth;     /* commands in flight (the workload's state) */
} demo_sample;

typedef struct {
    const char *name;         /* "malloc", "classes", "heap", "fit-first", "fit-best",
                                 "fit-next", "buddy", "slab" */
    const char *description;  /* one line: what serves which object type */
    uint64_t allocs, frees;   /* successful calls */
    uint64_t failures;        /* NULL returns over the uptime */
    uint64_t first_failure_op;/* operation index of the first NULL; 0 if none */
    demo_latency alloc, free; /* per call, the timer's own overhead subtracted */
    double frag_external_end, frag_external_worst;   /* -1 where not measurable */
    double frag_internal_end, frag_internal_worst;   /* -1 where not measurable */
    double overhead_per_alloc; /* bytes the allocator holds beyond the requests, per
                                  live object, at the peak (headers, rounding, maps) */
    uint64_t peak_footprint;  /* bytes: malloc: peak of mallinfo2().uordblks + headers
                                 as measured; poolkit: the arena's bytes in use incl.
                                 metadata at the worst point */
    uint64_t arena_size;      /* the fixed arena poolkit allocators ran in; 0 for malloc */
    /* Slab caches and buddy only (else 0): objects handed out already
     * constructed (constructor not run at allocation) and constructor calls. */
    uint64_t constructed_reuses, constructor_calls;
    /* Placement policies only (heap, fit-first, fit-best, fit-next; else all
     * 0): the same traffic replayed on a smaller fixed arena of
     * tight_arena_size bytes until its first NULL: that operation's index
     * (1-based; 0 if none failed) and the bytes requested by live objects then. */
    uint64_t tight_arena_size, tight_first_failure_op, tight_live_bytes;
    demo_sample series[DEMO_SERIES_POINTS];
    size_t series_count;
} demo_result;

/* The whole run. */
typedef struct {
    uint64_t seed;
    uint64_t ops;              /* operations (allocs + frees) of the workload */
    const char *timer;         /* e.g. "rdtsc, 2.45 GHz calibrated, overhead 9 ns subtracted" */
    const char *machine;       /* CPU model, cores, kernel */
    const char *compiler;      /* compiler and flags of the library */
    /* The workload's own counts, identical for every allocator (same seed). */
    uint64_t allocs_by_type[5];/* descriptors, DMA buffers, FTL map pages, log records, CQEs */
    uint64_t peak_queue_depth;
    double seconds;            /* wall time of the whole demo */
    demo_result *results;
    size_t result_count;
} demo_run;

/* Names of the workload's object types, in allocs_by_type order. */
extern const char *const demo_type_names[5];

#endif
