/*
 * `poolkit bench`: the pieces shared by the files of tools/bench/.
 *
 *   clock.c       the per-call timer (rdtsc calibrated against CLOCK_MONOTONIC,
 *                 or clock_gettime) and the wall clock
 *   latency.c     exact per-call latency counts in ticks, their percentiles
 *                 and the tail curve plotted on the page
 *   allocators.c  every allocator behind one pair of calls: poolkit's over a
 *                 caller buffer, glibc's malloc, and jemalloc, mimalloc and
 *                 tcmalloc loaded with dlopen
 *   workloads.c   the four workloads, their precomputed sequences and the
 *                 loops (counted by callgrind, timed as a whole, timed per call)
 *   bench.c       bench_main (commands.h): options, the runs, the tables, the page
 *
 * Hosted tool code: stdio allowed.
 */
#ifndef POOLKIT_TOOLS_BENCH_H
#define POOLKIT_TOOLS_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- clock.c ------------------------------------------------------------ */

typedef struct {
    const char *name;      /* "rdtsc" or "clock_gettime(CLOCK_MONOTONIC)" */
    double ticks_per_ns;   /* calibrated (1 for clock_gettime) */
    double step_ns;        /* resolution: the smallest step the counter moves by here */
} bench_clock;

/* Calibrates the per-call timer (about 20 ms). */
void bench_clock_init(bench_clock *c);
/* CLOCK_MONOTONIC in ns, for whole loops. */
double bench_now_ns(void);

/* The per-call timer, read right before and right after the call timed:
 * fenced so the call neither starts before the first read nor ends after
 * the second. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BENCH_RDTSC 1
static inline uint64_t bench_tick_start(void)
{
    uint32_t lo, hi;
    __asm__ __volatile__("lfence\n\trdtsc\n\tlfence" : "=a"(lo), "=d"(hi) : : "memory");
    return (uint64_t)hi << 32 | lo;
}
static inline uint64_t bench_tick_stop(void)
{
    uint32_t lo, hi;
    __asm__ __volatile__("rdtscp\n\tlfence" : "=a"(lo), "=d"(hi) : : "rcx", "memory");
    return (uint64_t)hi << 32 | lo;
}
#else
#define BENCH_RDTSC 0
uint64_t bench_tick_start(void);
uint64_t bench_tick_stop(void);
#endif

/* ---- latency.c ---------------------------------------------------------- */

/* Every timed call of one allocator on one workload, over all runs: exact
 * counts per tick below BENCH_EXACT_TICKS, the rare longer calls kept one by
 * one. Percentiles are exact. */
#define BENCH_EXACT_TICKS 65536u
typedef struct {
    uint32_t *counts;      /* BENCH_EXACT_TICKS entries */
    uint64_t *long_calls;  /* calls of BENCH_EXACT_TICKS ticks or more */
    size_t long_count, long_capacity;
    uint64_t calls;
} bench_latency;

int bench_latency_init(bench_latency *l);        /* 0, or -1 out of memory */
void bench_latency_free(bench_latency *l);
int bench_latency_add(bench_latency *l, uint64_t ticks); /* 0, or -1 out of memory */
/* The smallest t such that at least q of the calls took t ticks or less
 * (q in (0, 1]; 1 gives the maximum). 0 when there are no calls. */
uint64_t bench_latency_quantile(bench_latency *l, double q);
/* above[i] = the fraction of the calls that took more than t[i] ticks, for
 * n thresholds t in ascending order. One sweep. */
void bench_latency_tail(bench_latency *l, const uint64_t *t, size_t n, double *above);

/* ---- allocators.c --------------------------------------------------------- */

/* What a workload asks of an allocator. */
typedef struct {
    size_t min_size, max_size;  /* sizes requested */
    size_t max_live;            /* objects live at once, at most */
    size_t fixed_size;          /* every request this size (0: sizes vary) */
} bench_need;

typedef struct bench_allocator bench_allocator;
struct bench_allocator {
    const char *name;          /* "pk_pool", ..., "glibc", "jemalloc", ... */
    const char *what;          /* one line for the page */
    bool poolkit;              /* one of poolkit's (else a malloc) */
    bool fixed_only;           /* serves one size only (pool, atomic pool, slab) */
    bool hidden;               /* the harness (null): not listed, not reported */
    /* Makes a fresh allocator over buf (poolkit) for the need; 0, or -1 with
     * a message. Called before every pass. */
    int (*setup)(bench_allocator *a, void *buf, size_t size, const bench_need *need);
    /* After a pass with every object freed: 0 when the allocator is
     * consistent and empty (pk_X_check, stats), else -1 with a message. */
    int (*verify)(bench_allocator *a);
    void *(*alloc)(void *self, size_t size);
    void (*release)(void *self, void *p);
    void *self;
    /* Mallocs only: the library's entry points. */
    void *(*malloc_fn)(size_t);
    void (*free_fn)(void *);
    const char *version;       /* of the malloc library, or NULL */
};

/* Every allocator built in, in the tables' order (the harness, "null",
 * first); the dlopened mallocs are filled in by bench_load_mallocs. */
extern bench_allocator bench_allocators[];
extern const size_t bench_allocator_count;

/* Loads jemalloc, mimalloc and tcmalloc (dlopen RTLD_NOW | RTLD_LOCAL, by
 * soname) for the entries wanted; one that cannot be loaded is marked
 * missing and a one-line note is printed (to notes, size n). Returns how
 * many were loaded. */
size_t bench_load_mallocs(const bool *wanted, bool *missing, char *notes, size_t n);
/* Set when a library could not be loaded for want of static TLS space
 * (jemalloc's initial-exec TLS; see bench.c). */
extern bool bench_static_tls_short;
/* Running under valgrind (its preload is in LD_PRELOAD). */
bool bench_under_valgrind(void);

/* Bytes of caller buffer an allocator needs for a need (0 for the mallocs). */
size_t bench_buffer_size(const bench_allocator *a, const bench_need *need);

/* ---- workloads.c --------------------------------------------------------- */

typedef enum { BENCH_FIXED, BENCH_BATCH, BENCH_LIVE_4K, BENCH_LIVE_64K, BENCH_WORKLOADS } bench_workload_kind;

typedef struct {
    uint32_t slot;
    uint32_t size;
} bench_step;

typedef struct {
    bench_workload_kind kind;
    const char *name;          /* "fixed64", "batch64", "live4k", "live64k" */
    const char *title;         /* for tables and the page */
    const char *description;
    bench_need need;
    /* The sequence, precomputed from a fixed seed (identical for every
     * allocator and run): */
    size_t slots;              /* live set (live*), batch size (batch64) */
    uint32_t *fill;            /* live*: first size in each slot */
    bench_step *steps;         /* live*: free slot's object, allocate size */
    uint32_t *order;           /* batch64: the order of the frees */
    uint64_t calls;            /* timed calls per pass: allocs + frees */
    uint64_t pairs_or_steps;   /* fixed64: pairs; batch64: rounds; live*: steps */
} bench_workload;

/* Makes the workload's sequence for about calls calls (smoke: a tiny one).
 * 0, or -1 out of memory. */
int bench_workload_make(bench_workload *w, bench_workload_kind kind, uint64_t calls, bool smoke);
void bench_workload_free(bench_workload *w);
bench_workload_kind bench_workload_find(const char *name); /* BENCH_WORKLOADS if unknown */
const char *bench_workload_name(bench_workload_kind kind);

/* One pass of allocator a (already set up) on w: returns 0, or -1 (with a
 * message) when an allocation failed. slots: w->slots entries.
 *   counted: no timing; the loop is bench_counted_loop_* (callgrind's
 *            --toggle-collect counts only inside it)
 *   whole:   *ns = wall time of the loop (fill and drain excluded)
 *   timed:   every call timed: ticks[k] = the k-th call's ticks (w->calls
 *            entries; UINT32_MAX for longer) */
int bench_pass_counted(const bench_workload *w, bench_allocator *a, void **slots);
int bench_pass_whole(const bench_workload *w, bench_allocator *a, void **slots, double *ns);
int bench_pass_timed(const bench_workload *w, bench_allocator *a, void **slots, uint32_t *ticks);

#endif
