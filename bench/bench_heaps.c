#define _POSIX_C_SOURCE 200809L
/*
 * The variable-size allocators (pk_heap, pk_fit in each policy, glibc malloc)
 * on one random live-set workload, and their fragmentation.
 *
 * Workload: 4,096 slots, filled first; then each step frees the object of a
 * random slot and allocates a new one in it. Sizes are log-uniform over
 * 16..4,096 bytes. The whole sequence (sizes and slots) comes from a fixed
 * seed and is computed into an array before anything is measured, so every
 * allocator sees the same one and the generator costs nothing in the loop.
 * Allocators work in a 32 MiB buffer (malloc in its own heap).
 *
 *   bench_heaps --list              the allocators built in, one per line:
 *                                   NAME STEPS (callgrind steps; first: null)
 *   bench_heaps --run NAME STEPS    fill the slots, then STEPS steps inside
 *                                   measured_loop_* (for valgrind's callgrind
 *                                   --toggle-collect='measured_loop_*')
 *   bench_heaps --instructions NAME=STEPS:COUNT...
 *                                   the instruction table from callgrind's
 *                                   counts, each net of null's per step
 *   bench_heaps --latency [OPS]     ns per call (alloc or free), each the
 *                                   minimum of 3 identical passes; OPS calls
 *                                   (default: each allocator's latency_ops)
 *   bench_heaps --frag [SEEDS]      fraction of a 1 MiB buffer live at the
 *                                   first failure, median over SEEDS seeds
 *   bench_heaps --about             compiler, flags, clock
 *   bench_heaps --smoke             all of it on a few steps, targets ignored
 *
 * The table modes exit 1 when a target is missed. "null" is the harness: its
 * alloc returns the next pointer of a precomputed table and its free does
 * nothing; its instructions (and its per-call time) are subtracted.
 *
 * Adding an allocator (pk_buddy, say): an adapter block with an init,
 * X_alloc_any, X_free_any and a BENCH_LOOPS line for its typed calls (see
 * pk_heap's), then one line in the table `allocators` with its targets. The
 * tables, bench.sh and the smoke test pick it up from there.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "poolkit/common.h"

#include "poolkit/buddy.h"
#include "poolkit/classes.h"
#include "poolkit/fit.h"
#include "poolkit/heap.h"

#ifndef PK_BENCH_FLAGS
#define PK_BENCH_FLAGS "(flags unknown)"
#endif

#define SLOTS 4096u                     /* live objects in the live-set workload */
#define MIN_SIZE 16u
#define MAX_SIZE 4096u
#define HEAP_BUFFER (32u << 20)         /* the live-set workload's buffer */
#define FRAG_BUFFER (1u << 20)          /* the fragmentation test's buffer */
#define FRAG_MAX_LIVE (FRAG_BUFFER / MIN_SIZE)
#define WORKLOAD_SEED 0x706f6f6c6b6974u /* "poolkit" */
#define PASSES 3                        /* latency: minimum of this many passes per call */
#define DEFAULT_OPS 10000000L           /* latency: timed calls (allocs and frees) */
#define CALLGRIND_STEPS 200000L         /* steps counted under callgrind (bench.sh asks --list) */
#define DEFAULT_SEEDS 101

/* ---- The workload ------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *state) /* [0, 1) */
{
    return (double)(splitmix64(state) >> 11) * 0x1p-53;
}

static uint32_t below(uint64_t *state, uint32_t n) /* [0, n) */
{
    return (uint32_t)(((splitmix64(state) >> 32) * n) >> 32);
}

/* Log-uniform over [MIN_SIZE, MAX_SIZE]. */
static uint16_t log_uniform_size(uint64_t *state)
{
    double lo = log2(MIN_SIZE), hi = log2(MAX_SIZE);
    double size = exp2(lo + (hi - lo) * uniform01(state)) + 0.5;
    return (uint16_t)(size > MAX_SIZE ? MAX_SIZE : size);
}

typedef struct {
    uint16_t slot;
    uint16_t size;
} step;

typedef struct {
    uint16_t fill[SLOTS]; /* the size first allocated in each slot */
    step *steps;
    long count;
} workload;

static void *xmalloc(size_t size)
{
    void *p = malloc(size);
    if (p == NULL) {
        fprintf(stderr, "bench_heaps: out of memory (%zu bytes)\n", size);
        exit(2);
    }
    return p;
}

static void make_workload(workload *w, long steps)
{
    uint64_t state = WORKLOAD_SEED;
    for (unsigned i = 0; i < SLOTS; i++) {
        w->fill[i] = log_uniform_size(&state);
    }
    w->steps = xmalloc((size_t)steps * sizeof *w->steps);
    w->count = steps;
    for (long i = 0; i < steps; i++) {
        w->steps[i].slot = (uint16_t)below(&state, SLOTS);
        w->steps[i].size = log_uniform_size(&state);
    }
}

/* ---- Clock ------------------------------------------------------------- */

static double monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* The time-stamp counter, fenced so that the call timed neither starts before
 * the first read nor finishes after the second. Converted to ns with a
 * calibration against CLOCK_MONOTONIC. */
#define CLOCK_NAME "rdtsc (lfence-fenced)"
static inline uint64_t tick_start(void)
{
    uint32_t lo, hi;
    __asm__ __volatile__("lfence\n\trdtsc\n\tlfence" : "=a"(lo), "=d"(hi) : : "memory");
    return (uint64_t)hi << 32 | lo;
}
static inline uint64_t tick_stop(void)
{
    uint32_t lo, hi;
    __asm__ __volatile__("rdtscp\n\tlfence" : "=a"(lo), "=d"(hi) : : "rcx", "memory");
    return (uint64_t)hi << 32 | lo;
}
static double ticks_per_ns(void) /* over 50 ms */
{
    double t0 = monotonic_ns();
    uint64_t c0 = tick_start();
    while (monotonic_ns() - t0 < 50e6) {
    }
    uint64_t c1 = tick_stop();
    double t1 = monotonic_ns();
    return (double)(c1 - c0) / (t1 - t0);
}
#else
#define CLOCK_NAME "clock_gettime(CLOCK_MONOTONIC)"
static inline uint64_t tick_start(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static inline uint64_t tick_stop(void) { return tick_start(); }
static double ticks_per_ns(void) { return 1.0; }
#endif

/* The clock's resolution in ns: the greatest common divisor of the
 * differences between successive reads (a virtual machine's TSC may advance
 * in steps of several ticks). */
static double clock_step(double rate)
{
    uint64_t g = 0, last = tick_start();
    for (int i = 0; i < 10000; i++) {
        uint64_t now = tick_start(), d = now - last;
        while (d != 0) {
            uint64_t r = g % d;
            g = d;
            d = r;
        }
        last = now;
    }
    return (double)g / rate;
}

/* ---- The measured loops ------------------------------------------------- */

/* BENCH_LOOPS(tag, ctx_type, alloc_type, alloc_fn, free_type, free_fn, CALL_ALLOC, CALL_FREE)
 * defines, for one allocator API, the loop callgrind counts (measured_loop_tag)
 * and the loop that times each call (timed_loop_tag). Both call the allocator
 * through volatile function pointers of its own types: nothing is inlined,
 * no wrapper or generic dispatch is added. */
#define BENCH_LOOPS(tag, ctx_type, alloc_type, alloc_fn, free_type, free_fn, CALL_ALLOC, CALL_FREE) \
    __attribute__((noinline)) static void measured_loop_##tag(void *self, const step *steps,      \
                                                              long n, void **slots)                \
    {                                                                                              \
        ctx_type *ctx = self;                                                                      \
        alloc_type volatile alloc = alloc_fn;                                                      \
        free_type volatile release = free_fn;                                                      \
        for (long i = 0; i < n; i++) {                                                             \
            unsigned s = steps[i].slot;                                                            \
            CALL_FREE(release, ctx, slots[s]);                                                     \
            void *p = CALL_ALLOC(alloc, ctx, steps[i].size);                                       \
            if (p == NULL) {                                                                       \
                abort();                                                                           \
            }                                                                                      \
            slots[s] = p;                                                                          \
        }                                                                                          \
    }                                                                                              \
    __attribute__((noinline)) static void timed_loop_##tag(void *self, const step *steps, long n, \
                                                           void **slots, uint32_t *best)           \
    {                                                                                              \
        ctx_type *ctx = self;                                                                      \
        alloc_type volatile alloc = alloc_fn;                                                      \
        free_type volatile release = free_fn;                                                      \
        for (long i = 0; i < n; i++) {                                                             \
            unsigned s = steps[i].slot;                                                            \
            size_t size = steps[i].size;                                                           \
            void *old = slots[s];                                                                  \
            uint64_t t0 = tick_start();                                                            \
            CALL_FREE(release, ctx, old);                                                          \
            uint64_t t1 = tick_stop();                                                             \
            uint64_t t2 = tick_start();                                                            \
            void *p = CALL_ALLOC(alloc, ctx, size);                                                \
            uint64_t t3 = tick_stop();                                                             \
            if (p == NULL) {                                                                       \
                abort();                                                                           \
            }                                                                                      \
            slots[s] = p;                                                                          \
            uint64_t d = t1 - t0, e = t3 - t2;                                                     \
            if (d < best[2 * i]) {                                                                 \
                best[2 * i] = (uint32_t)d;                                                         \
            }                                                                                      \
            if (e < best[2 * i + 1]) {                                                             \
                best[2 * i + 1] = (uint32_t)e;                                                     \
            }                                                                                      \
        }                                                                                          \
    }

#define CALL_CTX_ALLOC(f, ctx, size) f(ctx, size)
#define CALL_CTX_FREE(f, ctx, p) (void)f(ctx, p)
#define CALL_LIBC_ALLOC(f, ctx, size) ((void)(ctx), f(size))
#define CALL_LIBC_FREE(f, ctx, p) ((void)(ctx), f(p))

/* ---- The allocators ------------------------------------------------------ */

/* The harness alone: alloc hands out the next pointer of a precomputed table
 * (distinct addresses in the buffer), free does nothing. */
#define NULL_TABLE 8192u
typedef struct {
    void *table[NULL_TABLE];
    size_t next;
} null_alloc_state;
static null_alloc_state null_state;

static void *null_alloc(null_alloc_state *n, size_t size)
{
    (void)size;
    return n->table[n->next++ & (NULL_TABLE - 1)];
}
static pk_status null_free(null_alloc_state *n, void *p)
{
    (void)n;
    (void)p;
    return PK_OK;
}
typedef void *(*null_alloc_fn)(null_alloc_state *, size_t);
typedef pk_status (*null_free_fn)(null_alloc_state *, void *);
BENCH_LOOPS(null, null_alloc_state, null_alloc_fn, null_alloc, null_free_fn, null_free, CALL_CTX_ALLOC,
            CALL_CTX_FREE)
static void *null_init(void *buf, size_t size)
{
    for (size_t i = 0; i < NULL_TABLE; i++) {
        null_state.table[i] = (unsigned char *)buf + (i * MAX_SIZE) % size;
    }
    null_state.next = 0;
    return &null_state;
}
static void *null_alloc_any(void *self, size_t size) { return null_alloc(self, size); }
static void null_free_any(void *self, void *p) { (void)null_free(self, p); }

/* glibc malloc, in its own heap (the buffer is not used). */
typedef void *(*libc_alloc_fn)(size_t);
typedef void (*libc_free_fn)(void *);
BENCH_LOOPS(malloc, void, libc_alloc_fn, malloc, libc_free_fn, free, CALL_LIBC_ALLOC, CALL_LIBC_FREE)
static void *malloc_init(void *buf, size_t size)
{
    (void)size;
    return buf; /* any non-NULL self */
}
static void *malloc_alloc_any(void *self, size_t size)
{
    (void)self;
    return malloc(size);
}
static void malloc_free_any(void *self, void *p)
{
    (void)self;
    free(p);
}

static pk_heap bench_heap;
typedef void *(*heap_alloc_fn)(pk_heap *, size_t);
typedef pk_status (*heap_free_fn)(pk_heap *, void *);
BENCH_LOOPS(pk_heap, pk_heap, heap_alloc_fn, pk_heap_alloc, heap_free_fn, pk_heap_free, CALL_CTX_ALLOC,
            CALL_CTX_FREE)
static void *heap_init(void *buf, size_t size)
{
    return pk_heap_init(&bench_heap, buf, size) == PK_OK ? &bench_heap : NULL;
}
static void *heap_alloc_any(void *self, size_t size) { return pk_heap_alloc(self, size); }
static void heap_free_any(void *self, void *p) { (void)pk_heap_free(self, p); }

static pk_fit bench_fit;
typedef void *(*fit_alloc_fn)(pk_fit *, size_t);
typedef pk_status (*fit_free_fn)(pk_fit *, void *);
BENCH_LOOPS(pk_fit, pk_fit, fit_alloc_fn, pk_fit_alloc, fit_free_fn, pk_fit_free, CALL_CTX_ALLOC,
            CALL_CTX_FREE)
static void *fit_init(void *buf, size_t size, pk_fit_policy policy)
{
    return pk_fit_init(&bench_fit, buf, size, policy, 0) == PK_OK ? &bench_fit : NULL;
}
static void *fit_first_init(void *buf, size_t size) { return fit_init(buf, size, PK_FIT_FIRST); }
static void *fit_best_init(void *buf, size_t size) { return fit_init(buf, size, PK_FIT_BEST); }
static void *fit_next_init(void *buf, size_t size) { return fit_init(buf, size, PK_FIT_NEXT); }
static void *fit_alloc_any(void *self, size_t size) { return pk_fit_alloc(self, size); }
static void fit_free_any(void *self, void *p) { (void)pk_fit_free(self, p); }

/* Slots of 16 bytes, the workload's smallest size. */
static pk_buddy bench_buddy;
typedef void *(*buddy_alloc_fn)(pk_buddy *, size_t);
typedef pk_status (*buddy_free_fn)(pk_buddy *, void *);
BENCH_LOOPS(pk_buddy, pk_buddy, buddy_alloc_fn, pk_buddy_alloc, buddy_free_fn, pk_buddy_free,
            CALL_CTX_ALLOC, CALL_CTX_FREE)
static void *buddy_init(void *buf, size_t size)
{
    return pk_buddy_init(&bench_buddy, buf, size, 16) == PK_OK ? &bench_buddy : NULL;
}
static void *buddy_alloc_any(void *self, size_t size) { return pk_buddy_alloc(self, size); }
static void buddy_free_any(void *self, void *p) { (void)pk_buddy_free(self, p); }

/* pk_classes: a fixed layout of power-of-two classes, 16 B to 4 KiB (9
 * classes; block size = the request rounded up to a power of two). Each class
 * holds 1.25 times its expected share of the 4,096 live objects, plus 64: a
 * size is round(2^u), u uniform in [4, 12], so the share of (lo, hi] is
 * (log2(hi + 0.5) - log2(lo + 0.5)) / 8. Fall-through (on) covers the rest;
 * the workloads here (up to 5 million steps) never need it. 5,691 blocks,
 * a 5.5 MiB buffer (pk_classes_buffer_size), for a live set of about 4 MiB
 * of blocks holding 2.9 MiB of requests. No fragmentation entry: a fixed
 * layout fails when one of its classes runs dry, which measures how the
 * layout was sized for the distribution, not the allocator. */
static pk_classes bench_classes;
typedef void *(*classes_alloc_fn)(pk_classes *, size_t);
typedef pk_status (*classes_free_fn)(pk_classes *, void *);
BENCH_LOOPS(pk_classes, pk_classes, classes_alloc_fn, pk_classes_alloc, classes_free_fn, pk_classes_free,
            CALL_CTX_ALLOC, CALL_CTX_FREE)
static void *classes_init(void *buf, size_t size)
{
    pk_class_spec specs[9];
    double below = log2(MIN_SIZE);
    for (size_t i = 0; i < 9; i++) {
        size_t block = (size_t)MIN_SIZE << i;
        double above = log2((double)block + 0.5);
        double share = (above - below) / (log2(MAX_SIZE) - log2(MIN_SIZE));
        specs[i] = (pk_class_spec){block, (size_t)(1.25 * share * SLOTS) + 64, 0};
        below = above;
    }
    if (pk_classes_buffer_size(specs, 9) > size) {
        return NULL;
    }
    return pk_classes_init(&bench_classes, buf, size, specs, 9) == PK_OK ? &bench_classes : NULL;
}
static void *classes_alloc_any(void *self, size_t size) { return pk_classes_alloc(self, size); }
static void classes_free_any(void *self, void *p) { (void)pk_classes_free(self, p); }

/* One allocator. Fields left out are 0: no target, the default counts. */
typedef struct {
    const char *name;
    void *(*init)(void *buf, size_t size);         /* the allocator over buf: its self, or NULL */
    void *(*alloc)(void *self, size_t size);       /* untimed uses: fill, drain, fragmentation */
    void (*release)(void *self, void *p);
    void (*measured)(void *self, const step *steps, long n, void **slots); /* from BENCH_LOOPS */
    void (*timed)(void *self, const step *steps, long n, void **slots, uint32_t *best);
    bool in_buffer;           /* works in the caller's buffer (else: no fragmentation test) */
    long latency_ops;         /* timed calls (0: DEFAULT_OPS); --latency OPS overrides */
    double max_instructions;  /* target per step (0: none) */
    const char *reference;    /* its figure measured elsewhere, printed beside (NULL: none) */
    double max_ns;            /* latency target for the slowest call (0: none) */
    double min_live[2];       /* fragmentation targets at F = 0 and F = 0.45 (0: none) */
} bench_allocator;

/* ENTRY(tag, label, init, prefix): the functions of BENCH_LOOPS(tag, ...),
 * prefix_alloc_any and prefix_free_any. */
#define ENTRY(tag, label, init_fn, prefix)                                                         \
    .name = label, .init = init_fn, .alloc = prefix##_alloc_any, .release = prefix##_free_any,    \
    .measured = measured_loop_##tag, .timed = timed_loop_##tag

/* The table. The first entry must be null (the harness). */
static const bench_allocator allocators[] = {
    {ENTRY(null, "null", null_init, null), .in_buffer = true},
    {ENTRY(pk_heap, "pk_heap", heap_init, heap), .in_buffer = true, .max_instructions = 110, .max_ns = 1000,
     .min_live = {0.95, 0.90}},
    {ENTRY(pk_fit, "pk_fit first", fit_first_init, fit), .in_buffer = true,
     .max_instructions = 3700, .reference = "FreeRTOS heap_4 ~3700", .min_live = {0.968, 0.891}},
    {ENTRY(pk_fit, "pk_fit best", fit_best_init, fit), .in_buffer = true},
    {ENTRY(pk_fit, "pk_fit next", fit_next_init, fit), .in_buffer = true},
    {ENTRY(pk_buddy, "pk_buddy", buddy_init, buddy), .in_buffer = true, .max_instructions = 400,
     .reference = "buddy_alloc ~4700", .min_live = {0.70, 0.70}},
    {ENTRY(pk_classes, "pk_classes", classes_init, classes)},
    {ENTRY(malloc, "glibc malloc", malloc_init, malloc), .reference = "~240"},
};
#define ALLOCATOR_COUNT (sizeof allocators / sizeof allocators[0])


/* Figures measured elsewhere, printed under the instruction table. */
static const char *const instruction_references[] = {
    "TLSF (classic) ~217", "o1heap ~118", "tcmalloc 66",
};
static const char *const frag_references[] = {
    "TLSF ~0.978 / ~0.928", "o1heap ~0.69",
};

/* Names in the command line use '_' for the table's spaces ("pk_fit_first"). */
static const bench_allocator *find_allocator(const char *name)
{
    for (size_t i = 0; i < ALLOCATOR_COUNT; i++) {
        const char *a = allocators[i].name, *b = name;
        while (*a != '\0' && (*a == *b || (*a == ' ' && *b == '_'))) {
            a++;
            b++;
        }
        if (*a == '\0' && *b == '\0') {
            return &allocators[i];
        }
    }
    return NULL;
}

static void print_cli_name(const char *name)
{
    for (; *name != '\0'; name++) {
        putchar(*name == ' ' ? '_' : *name);
    }
}

static void *heap_buffer(void)
{
    static void *buf;
    if (buf == NULL) {
        buf = xmalloc(HEAP_BUFFER);
        memset(buf, 0, HEAP_BUFFER); /* fault the pages in before anything is measured */
    }
    return buf;
}

static void *init_or_die(const bench_allocator *a, void *buf, size_t size)
{
    void *self = a->init(buf, size);
    if (self == NULL) {
        fprintf(stderr, "bench_heaps: %s: init over %zu bytes failed\n", a->name, size);
        exit(2);
    }
    return self;
}

static void fill_slots(const bench_allocator *a, void *self, const workload *w, void **slots)
{
    for (unsigned i = 0; i < SLOTS; i++) {
        slots[i] = a->alloc(self, w->fill[i]);
        if (slots[i] == NULL) {
            fprintf(stderr, "bench_heaps: %s: warm-up allocation failed\n", a->name);
            exit(2);
        }
    }
}

static void drain_slots(const bench_allocator *a, void *self, void **slots)
{
    for (unsigned i = 0; i < SLOTS; i++) {
        a->release(self, slots[i]);
    }
}

static const char *verdict(bool met) { return met ? "met" : "MISSED"; }

/* ---- --run: one allocator for callgrind --------------------------------- */

static void run_measured(const bench_allocator *a, long steps)
{
    static workload w;
    static void *slots[SLOTS];
    make_workload(&w, steps);
    void *self = init_or_die(a, heap_buffer(), HEAP_BUFFER);
    fill_slots(a, self, &w, slots);
    a->measured(self, w.steps, w.count, slots);
    drain_slots(a, self, slots);
    free(w.steps);
}

static int run_for_callgrind(const char *name, long steps)
{
    const bench_allocator *a = find_allocator(name);
    if (a == NULL) {
        fprintf(stderr, "bench_heaps: no allocator '%s' in this build (see --list)\n", name);
        return 2;
    }
    run_measured(a, steps);
    return 0;
}

/* ---- --instructions: the table from callgrind's counts ------------------- */

static int instruction_table(int argc, char **argv)
{
    double per_step[ALLOCATOR_COUNT];
    bool have[ALLOCATOR_COUNT] = {false};
    long null_steps = 0;
    for (int i = 0; i < argc; i++) {
        char name[64];
        long steps;
        double count;
        const char *eq = strchr(argv[i], '=');
        if (eq == NULL || (size_t)(eq - argv[i]) >= sizeof name ||
            sscanf(eq + 1, "%ld:%lf", &steps, &count) != 2 || steps <= 0) {
            fprintf(stderr, "bench_heaps: expected NAME=STEPS:COUNT, not '%s'\n", argv[i]);
            return 2;
        }
        memcpy(name, argv[i], (size_t)(eq - argv[i]));
        name[eq - argv[i]] = '\0';
        const bench_allocator *a = find_allocator(name);
        if (a == NULL) {
            fprintf(stderr, "bench_heaps: no allocator '%s' in this build\n", name);
            return 2;
        }
        per_step[a - allocators] = count / (double)steps;
        have[a - allocators] = true;
        if (a == allocators) {
            null_steps = steps;
        }
    }
    if (!have[0]) {
        fprintf(stderr, "bench_heaps: --instructions needs null's count\n");
        return 2;
    }
    int status = 0;
    printf("Instructions per free+alloc step (callgrind, counted inside the measured loop only),\n"
           "net of the harness\n");
    printf("%-14s %12s  %-16s %s\n", "allocator", "instructions", "target", "reference");
    for (size_t i = 1; i < ALLOCATOR_COUNT; i++) {
        const bench_allocator *a = &allocators[i];
        if (!have[i]) {
            continue;
        }
        long net = lround(per_step[i] - per_step[0]);
        char target[32] = "";
        if (a->max_instructions > 0) {
            bool met = (double)net <= a->max_instructions;
            snprintf(target, sizeof target, "<= %.0f %s", a->max_instructions, verdict(met));
            status |= !met;
        }
        printf("%-14s %12ld  %-16s %s\n", a->name, net, target, a->reference ? a->reference : "");
    }
    printf("%-14s %12s  %-16s %s", "(elsewhere)", "", "",
           instruction_references[0]);
    for (size_t i = 1; i < sizeof instruction_references / sizeof instruction_references[0]; i++) {
        printf(", %s", instruction_references[i]);
    }
    printf("\n");
    printf("net of the harness, %.1f instructions per step (the loop, the calls through\n"
           "volatile function pointers, null's table read and returns); %ld steps after\n"
           "filling the slots; each allocator called through its own typed functions\n"
           "(malloc's, which take no context, save the loop 2 instructions)\n",
           per_step[0], null_steps);
    return status;
}

/* ---- --latency: ns per call ---------------------------------------------- */

/* Sorts n values in place (LSD radix, 16 bits at a time), using tmp. */
static void radix_sort(uint32_t *v, uint32_t *tmp, size_t n)
{
    static size_t count[1u << 16];
    for (unsigned shift = 0; shift < 32; shift += 16) {
        memset(count, 0, sizeof count);
        for (size_t i = 0; i < n; i++) {
            count[(v[i] >> shift) & 0xffffu]++;
        }
        size_t sum = 0;
        for (size_t b = 0; b < (1u << 16); b++) {
            size_t c = count[b];
            count[b] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) {
            tmp[count[(v[i] >> shift) & 0xffffu]++] = v[i];
        }
        memcpy(v, tmp, n * sizeof *v);
    }
}

static uint32_t percentile(const uint32_t *sorted, size_t n, double q)
{
    size_t i = (size_t)ceil(q * (double)n);
    return sorted[i == 0 ? 0 : i - 1];
}

/* best[0..2*steps): per call, the minimum over PASSES identical passes. */
static void time_allocator(const bench_allocator *a, const workload *w, long steps, uint32_t *best)
{
    static void *slots[SLOTS];
    for (long i = 0; i < 2 * steps; i++) {
        best[i] = UINT32_MAX;
    }
    for (int pass = 0; pass < PASSES; pass++) {
        void *self = init_or_die(a, heap_buffer(), HEAP_BUFFER);
        fill_slots(a, self, w, slots);
        a->timed(self, w->steps, steps, slots, best);
        drain_slots(a, self, slots);
    }
}

/* Timed calls for allocator a: ops if given (> 0), else its own count. */
static long latency_ops(const bench_allocator *a, long ops)
{
    return ops > 0 ? ops : a->latency_ops > 0 ? a->latency_ops : DEFAULT_OPS;
}

static int latency_table(long ops)
{
    long steps_max = 0;
    for (size_t i = 0; i < ALLOCATOR_COUNT; i++) {
        long o = latency_ops(&allocators[i], ops);
        if (o / 2 > steps_max) {
            steps_max = o / 2;
        }
    }
    static workload w;
    make_workload(&w, steps_max);
    uint32_t *best = xmalloc((size_t)steps_max * 2 * sizeof *best);
    uint32_t *tmp = xmalloc((size_t)steps_max * 2 * sizeof *tmp);
    double rate = ticks_per_ns();
    double overhead = 0.0; /* ticks: null's median call */
    int status = 0;

    printf("Latency per call in ns (allocs and frees alike), natively\n");
    printf("%-14s %9s %7s %7s %7s %8s %8s %10s  %s\n", "allocator", "calls", "median", "p99", "p99.9",
           "max", "slowest", "max/median", "target");
    char times[512] = "";
    for (size_t i = 0; i < ALLOCATOR_COUNT; i++) {
        const bench_allocator *a = &allocators[i];
        long steps = latency_ops(a, ops) / 2;
        size_t n = (size_t)steps * 2;
        double t0 = monotonic_ns();
        time_allocator(a, &w, steps, best);
        size_t len = strlen(times);
        snprintf(times + len, sizeof times - len, "%s%s %.1f s", i ? ", " : "", a->name,
                 (monotonic_ns() - t0) / 1e9);
        size_t slowest = 0; /* even: a free, odd: an alloc */
        for (size_t k = 1; k < n; k++) {
            if (best[k] > best[slowest]) {
                slowest = k;
            }
        }
        radix_sort(best, tmp, n);
        double q[4] = {0.5, 0.99, 0.999, 1.0}, ns[4];
        if (i == 0) {
            overhead = percentile(best, n, 0.5);
        }
        for (int k = 0; k < 4; k++) {
            double t = (double)percentile(best, n, q[k]) - (i == 0 ? 0 : overhead);
            ns[k] = (t > 0 ? t : 0) / rate;
        }
        if (i == 0) {
            printf("%-14s %9zu %7.1f %7.1f %7.1f %8.1f %8s %10s  (the timer and the call: subtracted below)\n",
                   a->name, n, ns[0], ns[1], ns[2], ns[3], "", "");
            continue;
        }
        char ratio[16] = "-";
        if (ns[0] > 0) {
            snprintf(ratio, sizeof ratio, "%.0f", ns[3] / ns[0]);
        }
        char target[40] = "";
        if (a->max_ns > 0) {
            bool met = ns[3] < a->max_ns;
            snprintf(target, sizeof target, "max < %.0f ns %s", a->max_ns, verdict(met));
            status |= !met;
        }
        printf("%-14s %9zu %7.1f %7.1f %7.1f %8.1f %8s %10s  %s\n", a->name, n, ns[0], ns[1], ns[2],
               ns[3], slowest % 2 ? "alloc" : "free", ratio, target);
    }
    printf("each call the minimum of %d identical passes, net of null's median; clock:\n"
           CLOCK_NAME ", %.3f ticks per ns, resolution %.1f ns here\n"
           "time for the %d passes: %s\n", PASSES, rate, clock_step(rate), PASSES, times);
    free(best);
    free(tmp);
    free(w.steps);
    return status;
}

/* ---- --frag: fraction live at the first failure -------------------------- */

static const double frag_free_probability[2] = {0.0, 0.45};

/* Grows the live set in buf until an allocation fails; each step frees a
 * random live object with probability f, else allocates. Returns the bytes
 * requested by the live objects over the buffer's size. */
static double live_at_failure(const bench_allocator *a, void *buf, double f, uint64_t seed,
                              void **live, uint16_t *sizes)
{
    void *self = init_or_die(a, buf, FRAG_BUFFER);
    uint64_t state = seed;
    size_t n = 0, requested = 0;
    for (;;) {
        double u = uniform01(&state);
        if (n > 0 && u < f) {
            uint32_t r = below(&state, (uint32_t)n);
            a->release(self, live[r]);
            requested -= sizes[r];
            n--;
            live[r] = live[n];
            sizes[r] = sizes[n];
        } else {
            uint16_t size = log_uniform_size(&state);
            void *p = a->alloc(self, size);
            if (p == NULL) {
                break;
            }
            if (n == FRAG_MAX_LIVE) {
                fprintf(stderr, "bench_heaps: %s: more than %u live objects\n", a->name, FRAG_MAX_LIVE);
                exit(2);
            }
            live[n] = p;
            sizes[n] = size;
            n++;
            requested += size;
        }
    }
    return (double)requested / FRAG_BUFFER;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int frag_table(int seeds)
{
    void *buf = xmalloc(FRAG_BUFFER);
    void **live = xmalloc(FRAG_MAX_LIVE * sizeof *live);
    uint16_t *sizes = xmalloc(FRAG_MAX_LIVE * sizeof *sizes);
    double *fractions = xmalloc((size_t)seeds * sizeof *fractions);
    int status = 0;

    printf("Fragmentation: fraction of a 1 MiB buffer live at the first failed allocation\n");
    printf("%-14s %-21s %-21s %s\n", "allocator", "F = 0", "F = 0.45", "targets");
    for (size_t i = 1; i < ALLOCATOR_COUNT; i++) {
        const bench_allocator *a = &allocators[i];
        if (!a->in_buffer) {
            continue;
        }
        printf("%-14s", a->name);
        char targets[64] = "";
        for (int k = 0; k < 2; k++) {
            for (int s = 0; s < seeds; s++) {
                fractions[s] = live_at_failure(a, buf, frag_free_probability[k], (uint64_t)s + 1, live, sizes);
            }
            qsort(fractions, (size_t)seeds, sizeof *fractions, compare_double);
            char cell[32];
            snprintf(cell, sizeof cell, "%.4f (%.3f-%.3f)", fractions[seeds / 2], fractions[0],
                     fractions[seeds - 1]);
            printf(" %-21s", cell);
            if (a->min_live[k] > 0) {
                bool met = fractions[seeds / 2] >= a->min_live[k];
                size_t len = strlen(targets);
                snprintf(targets + len, sizeof targets - len, "%s>= %.3f %s", len ? ", " : "",
                         a->min_live[k], verdict(met));
                status |= !met;
            }
        }
        printf(" %s\n", targets);
    }
    printf("%-14s", "(elsewhere)");
    for (size_t i = 0; i < sizeof frag_references / sizeof frag_references[0]; i++) {
        printf("%s %s", i ? "," : "", frag_references[i]);
    }
    printf("\n");
    printf("bytes requested by the live objects / %u, median (min-max) of %d seeds; each\n"
           "step frees a random live object with probability F, else allocates\n",
           FRAG_BUFFER, seeds);
    free(fractions);
    free(sizes);
    free(live);
    free(buf);
    return status;
}

/* ---- --smoke: every path, briefly (a ctest, under the sanitizers too) ---- */

static int smoke(void)
{
    for (size_t i = 0; i < ALLOCATOR_COUNT; i++) {
        run_measured(&allocators[i], 2000);
    }
    /* Targets mean nothing in debug or sanitizer builds: only crashes fail. */
    (void)latency_table(4000);
    (void)frag_table(3);
    return 0;
}

/* ---- main ---------------------------------------------------------------- */

static long parse_positive(const char *text, const char *what)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v <= 0) {
        fprintf(stderr, "bench_heaps: %s must be a positive integer, not '%s'\n", what, text);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < ALLOCATOR_COUNT; i++) {
            print_cli_name(allocators[i].name);
            printf(" %ld\n", CALLGRIND_STEPS);
        }
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--about") == 0) {
        printf("%s %s, %s; latency clock: %s\n",
#ifdef __clang__
               "clang",
#else
               "gcc",
#endif
               __VERSION__, PK_BENCH_FLAGS, CLOCK_NAME);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "--run") == 0) {
        return run_for_callgrind(argv[2], parse_positive(argv[3], "STEPS"));
    }
    if (argc >= 2 && strcmp(argv[1], "--instructions") == 0) {
        return instruction_table(argc - 2, argv + 2);
    }
    if ((argc == 2 || argc == 3) && strcmp(argv[1], "--latency") == 0) {
        return latency_table(argc == 3 ? parse_positive(argv[2], "OPS") : 0);
    }
    if ((argc == 2 || argc == 3) && strcmp(argv[1], "--frag") == 0) {
        return frag_table(argc == 3 ? (int)parse_positive(argv[2], "SEEDS") : DEFAULT_SEEDS);
    }
    if (argc == 2 && strcmp(argv[1], "--smoke") == 0) {
        return smoke();
    }
    fprintf(stderr, "usage: bench_heaps --list | --about | --run NAME STEPS | "
                    "--instructions NAME=STEPS:COUNT... | --latency [OPS] | --frag [SEEDS]\n");
    return 2;
}
