/*
 * `poolkit replay TRACE [--allocator NAME|all] [--arena SIZE] [--plot FILE.html]`:
 * replays an allocation trace (tools/trace/FORMAT.md) on each of poolkit's
 * allocators that can serve mixed sizes from one fixed arena, and prints
 * their footprint, fragmentation, first failure and per-call latency in one
 * table (the format is in usage() below); --plot writes the curves over time
 * to an HTML page (tools/report/).
 *
 * Each allocator gets a fresh arena of SIZE bytes (one buffer, 4 KiB-aligned,
 * reused: they run one after another). The default SIZE is 4 times the
 * trace's peak of live requested bytes, rounded up to 64 KiB: room for the
 * worst rounding (buddy's powers of two) and fragmentation, so that a failure
 * at the default size says something about the allocator. Exit status: 0 the
 * replay ran (a failure during it is a result, shown in the table), 1 a run
 * could not complete (out of memory, an allocator's check failing, the page
 * not written), 2 bad input (options, a trace that cannot be read, an arena
 * too small to set an allocator up).
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "replay/engine.h"
#include "replay/ptrmap.h"
#include "report/report.h"
#include "trace/trace.h"

#include "poolkit/arena.h"
#include "poolkit/buddy.h"
#include "poolkit/classes.h"
#include "poolkit/fit.h"
#include "poolkit/heap.h"
#include "poolkit/pool.h"

#define ARENA_ALIGN 4096u
#define DEFAULT_ARENA_FACTOR 4u
#define DEFAULT_ARENA_ROUND ((size_t)64 << 10)
#define SMALLEST_CLASS 16u
#define BUDDY_MIN_BLOCK 16u
#define MAX_SAMPLES 1000u
/* Power-of-two size classes a trace's sizes fall into: 16 B, 32 B ... 2^63. */
#define SIZE_CLASSES 60u

/* ---- The trace's profile ------------------------------------------------------ */

/* What the trace itself asks, followed as the program saw it (a failed call
 * holds nothing, a lost free is dropped): it sets the default arena, the
 * classes' split and whether a pool fits. */
typedef struct {
    uint64_t ops[6];           /* events per pk_trace_op */
    size_t peak_live_bytes;    /* peak of live requested bytes */
    size_t peak_live_blocks;   /* live blocks then */
    size_t peak_event;         /* the event after which it peaked */
    size_t largest;            /* largest request */
    size_t sizes;              /* 1 when every request asks the same size; else 2 */
    size_t only_size;          /* that size, when sizes is 1 */
    uint64_t largest_align;    /* largest alignment asked (0: none) */
    size_t class_peak[SIZE_CLASSES]; /* high-water mark of live blocks per power-of-two class */
    uint64_t class_align[SIZE_CLASSES]; /* largest alignment asked of the class's sizes */
    /* Live requested bytes after the sampled events (engine.c's spacing). */
    double *sample_time_ms, *sample_live;
    size_t sample_count;
} profile;

/* The power-of-two class of size: 0 for up to 16 B, 1 for up to 32 B... */
static unsigned class_of(size_t size)
{
    unsigned c = 0;
    for (size_t block = SMALLEST_CLASS; block < size && c + 1 < SIZE_CLASSES; block *= 2) {
        c++;
    }
    return c;
}

typedef struct {
    ptrmap map;
    size_t live_bytes, live_blocks;
    size_t class_live[SIZE_CLASSES];
} profile_state;

static void profile_forget(profile_state *s, ptrmap_entry *e)
{
    s->live_bytes -= e->size;
    s->live_blocks--;
    s->class_live[class_of(e->size)]--;
    ptrmap_remove(&s->map, e);
}

/* An alignment as the engine asks it: rounded up to a power of two. */
static uint64_t power_of_two_at_least(uint64_t align)
{
    uint64_t p = 1;
    while (p < align && p <= UINT64_MAX / 2) {
        p *= 2;
    }
    return p;
}

static int profile_hold(profile *p, profile_state *s, uint64_t traced, uint64_t size64, uint64_t align)
{
    align = align ? power_of_two_at_least(align) : 0;
    size_t size = size64 > SIZE_MAX ? SIZE_MAX : (size_t)size64;
    ptrmap_entry *stale = ptrmap_find(&s->map, traced);
    if (stale != NULL) {
        profile_forget(s, stale);
    }
    if (ptrmap_put(&s->map, traced, NULL, size) != 0) {
        return -1;
    }
    s->live_bytes += size;
    s->live_blocks++;
    unsigned c = class_of(size);
    if (++s->class_live[c] > p->class_peak[c]) {
        p->class_peak[c] = s->class_live[c];
    }
    if (size > p->largest) {
        p->largest = size;
    }
    if (p->sizes == 0) {
        p->sizes = 1;
        p->only_size = size;
    } else if (size != p->only_size) {
        p->sizes = 2;
    }
    if (align > p->largest_align) {
        p->largest_align = align;
    }
    if (align > p->class_align[c]) {
        p->class_align[c] = align;
    }
    return 0;
}

static bool sample_after(size_t i, size_t n, size_t max)
{
    return (uint64_t)(i + 1) * max / n > (uint64_t)i * max / n;
}

/* 0, or -1 out of memory (message printed). O(events). */
static int profile_trace(const pk_trace *t, profile *p)
{
    *p = (profile){0};
    profile_state s = {0};
    ptrmap_init(&s.map);
    p->sample_time_ms = malloc(MAX_SAMPLES * sizeof(double));
    p->sample_live = malloc(MAX_SAMPLES * sizeof(double));
    int rc = p->sample_time_ms && p->sample_live ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < t->count; i++) {
        const pk_trace_event *ev = &t->events[i];
        p->ops[ev->op < 6 ? ev->op : 0]++;
        if (ev->op == PK_TRACE_FREE || (ev->op == PK_TRACE_REALLOC && ev->old != 0 && ev->result != 0) ||
            (ev->op == PK_TRACE_REALLOC && ev->size == 0 && ev->result == 0)) {
            ptrmap_entry *e = ptrmap_find(&s.map, ev->old);
            if (e != NULL) {
                profile_forget(&s, e);
            }
        }
        if (ev->op != PK_TRACE_FREE && ev->result != 0) {
            rc = profile_hold(p, &s, ev->result, ev->size, ev->op == PK_TRACE_ALIGNED ? ev->align : 0);
        }
        if (s.live_bytes > p->peak_live_bytes) {
            p->peak_live_bytes = s.live_bytes;
            p->peak_live_blocks = s.live_blocks;
            p->peak_event = i;
        }
        if (sample_after(i, t->count, MAX_SAMPLES)) {
            p->sample_time_ms[p->sample_count] = (double)ev->time_ns / 1e6;
            p->sample_live[p->sample_count++] = (double)s.live_bytes;
        }
    }
    ptrmap_free(&s.map);
    if (rc != 0) {
        fprintf(stderr, "poolkit replay: out of memory profiling %zu events\n", t->count);
    }
    return rc;
}

static void profile_free(profile *p)
{
    free(p->sample_time_ms);
    free(p->sample_live);
}

/* ---- The allocators ---------------------------------------------------------- */

typedef struct subject subject;
struct subject {
    const char *name;
    const char *what;
    /* Sets the allocator up over size bytes at buf (4 KiB-aligned) for the
     * trace: its view, or NULL when size is too small. */
    pk_allocator *(*setup)(subject *s, void *buf, size_t size, const profile *p);
    /* Its smallest arena for the trace, when setup fails: 0 to search for
     * the least size setup accepts. */
    size_t (*minimum)(const subject *s, size_t size, const profile *p);
    bool fixed_size; /* serves one size: only for a trace of one size */
    char detail[512];  /* its configuration, for the notes */
};

static pk_heap heap;
static pk_allocator *heap_setup(subject *s, void *buf, size_t size, const profile *p)
{
    (void)s;
    (void)p;
    return pk_heap_init(&heap, buf, size) == PK_OK ? pk_heap_allocator(&heap) : NULL;
}

static pk_fit fit;
static pk_allocator *fit_setup(pk_fit_policy policy, void *buf, size_t size)
{
    return pk_fit_init(&fit, buf, size, policy, 0) == PK_OK ? pk_fit_allocator(&fit) : NULL;
}
static pk_allocator *fit_first_setup(subject *s, void *buf, size_t size, const profile *p)
{
    (void)s;
    (void)p;
    return fit_setup(PK_FIT_FIRST, buf, size);
}
static pk_allocator *fit_best_setup(subject *s, void *buf, size_t size, const profile *p)
{
    (void)s;
    (void)p;
    return fit_setup(PK_FIT_BEST, buf, size);
}
static pk_allocator *fit_next_setup(subject *s, void *buf, size_t size, const profile *p)
{
    (void)s;
    (void)p;
    return fit_setup(PK_FIT_NEXT, buf, size);
}

static pk_buddy buddy;
static pk_allocator *buddy_setup(subject *s, void *buf, size_t size, const profile *p)
{
    (void)s;
    (void)p;
    return pk_buddy_init(&buddy, buf, size, BUDDY_MIN_BLOCK) == PK_OK ? pk_buddy_allocator(&buddy) : NULL;
}

static pk_arena arena;
static pk_allocator *arena_setup(subject *s, void *buf, size_t size, const profile *p)
{
    (void)s;
    (void)p;
    return pk_arena_init(&arena, buf, size) == PK_OK ? pk_arena_allocator(&arena) : NULL;
}

/* pk_pool: blocks of the trace's one size, aligned to its largest alignment. */
static size_t pool_align(const profile *p)
{
    return p->largest_align > PK_MAX_ALIGN ? (size_t)p->largest_align : 0;
}
static size_t pool_block(const profile *p) { return p->only_size ? p->only_size : 1; }
static pk_pool pool;
static pk_allocator *pool_setup(subject *s, void *buf, size_t size, const profile *p)
{
    snprintf(s->detail, sizeof s->detail, "blocks of %zu B", pool_block(p));
    return pk_pool_init(&pool, buf, size, pool_block(p), pool_align(p)) == PK_OK ? pk_pool_allocator(&pool)
                                                                                 : NULL;
}
static size_t pool_minimum(const subject *s, size_t size, const profile *p)
{
    (void)s;
    (void)size;
    return PK_POOL_BUFFER_SIZE(pool_block(p), 1, pool_align(p));
}

/* pk_classes: power-of-two classes from 16 B to the trace's largest request
 * (those whose block is above half the arena left out: such requests fail),
 * only the classes the trace uses, each aligned to the largest alignment the
 * trace asked of its sizes (beyond alignof(max_align_t)). The arena is split among them in
 * proportion to each class's peak live bytes in the trace (its own
 * high-water mark of blocks times the block size), at least one block each;
 * fall-through on (a request goes up to the next class with a free block). */
static size_t classes_specs(size_t size, const profile *p, pk_class_spec *specs, bool one_each)
{
    size_t n = 0;
    double weight = 0.0;
    for (unsigned c = 0; c < SIZE_CLASSES && n < PK_CLASSES_MAX; c++) {
        size_t block = (size_t)SMALLEST_CLASS << c;
        if (block > size / 2) {
            break;
        }
        if (p->class_peak[c] != 0) {
            uint64_t align = p->class_align[c];
            specs[n++] = (pk_class_spec){block, p->class_peak[c], align > PK_MAX_ALIGN ? (size_t)align : 0};
            weight += (double)block * (double)p->class_peak[c];
        }
    }
    if (n == 0) { /* no request at all, or none below half the arena */
        specs[n++] = (pk_class_spec){SMALLEST_CLASS, 1, 0};
        weight = SMALLEST_CLASS;
    }
    size_t padding = 0;
    for (size_t i = 0; i < n; i++) {
        padding += (specs[i].align ? specs[i].align : PK_MAX_ALIGN) - 1;
    }
    double room = size > padding ? (double)(size - padding) : 0.0;
    for (size_t i = 0; i < n; i++) {
        size_t per_block = PK_POOL_BUFFER_SIZE(specs[i].block_size, 2, specs[i].align) -
                           PK_POOL_BUFFER_SIZE(specs[i].block_size, 1, specs[i].align);
        double share = room * (double)specs[i].block_size * (double)specs[i].count / weight;
        size_t count = (size_t)(share / (double)per_block);
        specs[i].count = one_each || count == 0 ? 1 : count;
    }
    /* Rounding each class up to one block may overdraw: take it back from
     * the class with the most bytes. */
    while (!one_each && pk_classes_buffer_size(specs, n) > size) {
        size_t most = 0;
        for (size_t i = 1; i < n; i++) {
            if (specs[i].count * specs[i].block_size > specs[most].count * specs[most].block_size) {
                most = i;
            }
        }
        if (specs[most].count <= 1) {
            break;
        }
        specs[most].count--;
    }
    return n;
}
static pk_classes classes;
static pk_allocator *classes_setup(subject *s, void *buf, size_t size, const profile *p)
{
    pk_class_spec specs[PK_CLASSES_MAX];
    size_t n = classes_specs(size, p, specs, false);
    size_t len = (size_t)snprintf(s->detail, sizeof s->detail, "%zu classes:", n);
    for (size_t i = 0; i < n && len < sizeof s->detail; i++) {
        len += (size_t)snprintf(s->detail + len, sizeof s->detail - len, " %zux%zu B", specs[i].count,
                                specs[i].block_size);
    }
    return pk_classes_init(&classes, buf, size, specs, n) == PK_OK ? pk_classes_allocator(&classes) : NULL;
}
static size_t classes_minimum(const subject *s, size_t size, const profile *p)
{
    (void)s;
    pk_class_spec specs[PK_CLASSES_MAX];
    return pk_classes_buffer_size(specs, classes_specs(size, p, specs, true));
}

static subject subjects[] = {
    {"heap", "pk_heap: two-level segregated fit (TLSF), O(1)", heap_setup, NULL, false, ""},
    {"fit-first", "pk_fit: free-list heap, first fit", fit_first_setup, NULL, false, ""},
    {"fit-best", "pk_fit: free-list heap, best fit", fit_best_setup, NULL, false, ""},
    {"fit-next", "pk_fit: free-list heap, next fit", fit_next_setup, NULL, false, ""},
    {"buddy", "pk_buddy: binary buddy, 16 B smallest block", buddy_setup, NULL, false, ""},
    {"classes", "pk_classes: power-of-two pools sized from the trace, fall-through on", classes_setup,
     classes_minimum, false, ""},
    {"arena", "pk_arena: bump allocator, frees reclaim nothing", arena_setup, NULL, false, ""},
    {"pool", "pk_pool: blocks of the trace's one size (single-size traces only)", pool_setup, pool_minimum,
     true, ""},
};
#define SUBJECT_COUNT (sizeof subjects / sizeof subjects[0])

static void *arena_buffer(size_t size)
{
    return aligned_alloc(ARENA_ALIGN, (size + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN);
}

/* The least arena setup accepts, above refused (which it did not): doubling,
 * then a binary search (setup is monotonic in the size), on buffers of its
 * own. O(log size) setups. 0 when none up to SIZE_MAX / 4 (or no memory). */
static size_t least_arena(subject *s, size_t refused, const profile *p)
{
    if (s->minimum != NULL) {
        return s->minimum(s, refused, p);
    }
    size_t lo = refused, hi = refused; /* setup fails at lo; it works at hi once found */
    void *buf = NULL;
    bool works = false;
    while (!works) {
        free(buf);
        if (hi > SIZE_MAX / 4 || (buf = arena_buffer(hi = hi ? hi * 2 : 1)) == NULL) {
            return 0;
        }
        works = s->setup(s, buf, hi, p) != NULL;
        if (!works) {
            lo = hi;
        }
    }
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->setup(s, buf, mid, p) != NULL) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    free(buf);
    return hi;
}

/* ---- Options -------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: poolkit replay TRACE [--allocator NAME|all] [--arena SIZE] [--plot FILE.html]\n"
            "\n"
            "Replays the allocation trace TRACE (recorded with libpoolkit-trace.so and\n"
            "POOLKIT_TRACE=FILE) on poolkit's allocators, each in a fixed arena of SIZE\n"
            "bytes, one event at a time in the order the calls took effect, and prints one\n"
            "line per allocator:\n"
            "\n"
            "  calls          allocator calls made (each event is one call or skipped)\n"
            "  failures       calls the allocator failed (the replay goes on)\n"
            "  skipped        events not replayed: a call that failed in the trace, a free\n"
            "                 or realloc of a block the replay does not hold\n"
            "  peak_in_use    the most bytes granted to live blocks (rounding included)\n"
            "  arena_used     the arena's bytes not free at the fullest moment: blocks,\n"
            "                 headers, metadata and what the allocator could not use\n"
            "  peak_ext_frag  highest 1 - largest free block / free bytes after any event\n"
            "  alloc_p50 alloc_p99 alloc_max, free_p50 free_p99 free_max\n"
            "                 nanoseconds per call of the allocator alone (the timer's own\n"
            "                 cost included): malloc, calloc, aligned and realloc; free\n"
            "  first_failure  'none', or the event, its operation, size and traced time\n"
            "\n"
            "  --allocator L  a name, a comma-separated list, or all (default):");
    for (size_t i = 0; i < SUBJECT_COUNT; i++) {
        fprintf(f, "%s%s", i ? ", " : " ", subjects[i].name);
    }
    fprintf(f,
            "\n"
            "                 (all takes pool only for a trace of one size)\n"
            "  --arena SIZE   bytes per allocator, with an optional K, M or G (x1024...)\n"
            "                 suffix (default: 4 x the trace's peak of live requested\n"
            "                 bytes, rounded up to 64 KiB)\n"
            "  --plot FILE    also write an HTML page with the curves over time (live\n"
            "                 requested bytes and each allocator's in_use; external\n"
            "                 fragmentation), drawn by gnuplot\n"
            "  --help         this text\n"
            "\n"
            "Exit status: 0 replayed (failures during a replay are results), 1 a replay or\n"
            "the page could not be completed, 2 bad input: an option, a trace that cannot\n"
            "be read, an arena too small for an allocator.\n");
}

typedef struct {
    const char *trace;
    const char *plot;
    size_t arena;          /* 0: the default */
    bool selected[SUBJECT_COUNT];
    bool all;
} options;

static int bad(const char *fmt, const char *what)
{
    fprintf(stderr, "poolkit replay: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, " (poolkit replay --help)\n");
    return 2;
}

/* Digits, then an optional K, M or G (either case): binary multiples. */
static bool parse_size(const char *text, size_t *out)
{
    if (!isdigit((unsigned char)text[0])) {
        return false;
    }
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    unsigned shift = 0;
    if (*end != '\0') {
        const char *suffixes = "kmg";
        const char *at = strchr(suffixes, tolower((unsigned char)*end));
        if (at == NULL || end[1] != '\0') {
            return false;
        }
        shift = 10u * (unsigned)(at - suffixes + 1);
    }
    if (errno != 0 || v == 0 || v > (SIZE_MAX >> shift)) {
        return false;
    }
    *out = (size_t)v << shift;
    return true;
}

static int select_allocators(const char *list, options *o)
{
    if (strcmp(list, "all") == 0) {
        o->all = true;
        return 0;
    }
    const char *p = list;
    while (true) {
        size_t n = strcspn(p, ",");
        size_t k = 0;
        while (k < SUBJECT_COUNT && !(strlen(subjects[k].name) == n && strncmp(subjects[k].name, p, n) == 0)) {
            k++;
        }
        if (k == SUBJECT_COUNT) {
            fprintf(stderr, "poolkit replay: unknown allocator '%.*s'; valid: all", (int)n, p);
            for (size_t i = 0; i < SUBJECT_COUNT; i++) {
                fprintf(stderr, ", %s", subjects[i].name);
            }
            fprintf(stderr, "\n");
            return 2;
        }
        o->selected[k] = true;
        if (p[n] == '\0') {
            return 0;
        }
        p += n + 1;
    }
}

/* 0, or the exit status (2 after a message; -1 for --help, done). */
static int parse(int argc, char **argv, options *o)
{
    *o = (options){.all = true};
    bool chosen = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return -1;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (o->trace != NULL) {
                return bad("one trace at a time: '%s' is a second one", a);
            }
            o->trace = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
        const char *value = eq ? eq + 1 : NULL;
#define IS(opt) (name_len == strlen(opt) && strncmp(a, opt, name_len) == 0)
        if (!IS("--allocator") && !IS("--arena") && !IS("--plot")) {
            return bad("unknown option '%s'", a);
        }
        if (value == NULL) {
            if (i + 1 >= argc) {
                return bad("%s needs a value", a);
            }
            value = argv[++i];
        }
        if (IS("--allocator")) {
            if (!chosen) {
                o->all = false;
                chosen = true;
            }
            int rc = select_allocators(value, o);
            if (rc != 0) {
                return rc;
            }
        } else if (IS("--arena")) {
            if (!parse_size(value, &o->arena)) {
                return bad("--arena '%s': need a number of bytes above 0, with an optional K, M or G", value);
            }
        } else {
            if (*value == '\0') {
                return bad("--plot needs a file name%s", "");
            }
            o->plot = value;
        }
#undef IS
    }
    if (o->trace == NULL) {
        return bad("no trace given%s", "");
    }
    return 0;
}

/* ---- The run ----------------------------------------------------------------------- */

static const char *op_name(unsigned op)
{
    static const char *const names[] = {"?", "malloc", "calloc", "realloc", "aligned", "free"};
    return op < 6 ? names[op] : "?";
}

typedef struct {
    subject *s;
    replay_result r;
    replay_sample samples[MAX_SAMPLES];
} run;

static size_t default_arena(const profile *p)
{
    size_t bytes = p->peak_live_bytes > SIZE_MAX / DEFAULT_ARENA_FACTOR - DEFAULT_ARENA_ROUND
                       ? SIZE_MAX / 2
                       : p->peak_live_bytes * DEFAULT_ARENA_FACTOR;
    bytes = (bytes + DEFAULT_ARENA_ROUND - 1) / DEFAULT_ARENA_ROUND * DEFAULT_ARENA_ROUND;
    return bytes ? bytes : DEFAULT_ARENA_ROUND;
}

static void first_failure_text(const pk_trace *t, const replay_result *r, char *buf, size_t n)
{
    if (!r->failed) {
        snprintf(buf, n, "none");
        return;
    }
    const pk_trace_event *ev = &t->events[r->first_failure];
    snprintf(buf, n, "event %llu %s %zu B at %.3f ms", (unsigned long long)r->first_failure, op_name(ev->op),
             r->first_failure_size, (double)ev->time_ns / 1e6);
}

#define COLUMNS 14
static const char *const column_names[COLUMNS] = {
    "allocator", "calls",     "failures",  "skipped",  "peak_in_use", "arena_used", "peak_ext_frag",
    "alloc_p50", "alloc_p99", "alloc_max", "free_p50", "free_p99",    "free_max",   "first_failure"};

/* The cells of one allocator's line. */
static void row_cells(const pk_trace *t, const run *r, size_t arena_size, char cells[COLUMNS][96])
{
    const replay_result *x = &r->r;
    snprintf(cells[0], 96, "%s", r->s->name);
    snprintf(cells[1], 96, "%llu", (unsigned long long)x->calls);
    snprintf(cells[2], 96, "%llu", (unsigned long long)x->failures);
    snprintf(cells[3], 96, "%llu", (unsigned long long)x->skipped);
    snprintf(cells[4], 96, "%zu", x->peak_in_use);
    snprintf(cells[5], 96, "%zu", arena_size - (x->min_free_bytes < arena_size ? x->min_free_bytes : arena_size));
    snprintf(cells[6], 96, "%.3f", x->peak_frag_external);
    const double ns[6] = {x->alloc_ns_median, x->alloc_ns_p99, x->alloc_ns_max,
                          x->free_ns_median,  x->free_ns_p99,  x->free_ns_max};
    for (int i = 0; i < 6; i++) {
        snprintf(cells[7 + i], 96, "%.0f", ns[i]);
    }
    first_failure_text(t, x, cells[13], 96);
}

static void print_table(const pk_trace *t, const run *runs, size_t n, size_t arena_size)
{
    static const int width[COLUMNS] = {-9, 9, 8, 8, 12, 12, 13, 9, 9, 9, 9, 9, 9, 0};
    for (int c = 0; c < COLUMNS; c++) {
        printf(c ? " %*s" : "%*s", c == COLUMNS - 1 ? 0 : width[c], column_names[c]);
    }
    printf("\n");
    for (size_t i = 0; i < n; i++) {
        char cells[COLUMNS][96];
        row_cells(t, &runs[i], arena_size, cells);
        for (int c = 0; c < COLUMNS; c++) {
            printf(c ? " %*s" : "%*s", c == COLUMNS - 1 ? 0 : width[c], cells[c]);
        }
        printf("\n");
    }
}

static void describe_trace(const char *path, const pk_trace *t, const profile *p)
{
    printf("trace: %s: version %u, pid %u, %u thread%s, %zu events (%llu missing): %llu malloc, %llu calloc, "
           "%llu realloc, %llu aligned, %llu free\n",
           path, t->version, t->pid, t->threads, t->threads == 1 ? "" : "s", t->count,
           (unsigned long long)t->missing, (unsigned long long)p->ops[PK_TRACE_MALLOC],
           (unsigned long long)p->ops[PK_TRACE_CALLOC], (unsigned long long)p->ops[PK_TRACE_REALLOC],
           (unsigned long long)p->ops[PK_TRACE_ALIGNED], (unsigned long long)p->ops[PK_TRACE_FREE]);
    printf("peak live: %zu B requested in %zu blocks, after event %zu (%.3f ms); largest request %zu B; %s\n",
           p->peak_live_bytes, p->peak_live_blocks, p->peak_event,
           t->count ? (double)t->events[p->peak_event].time_ns / 1e6 : 0.0, p->largest,
           p->sizes <= 1 ? "one size" : "several sizes");
}

static int write_plot(const char *file, const char *trace_path, const pk_trace *t, const profile *p,
                      const run *runs, size_t n, size_t arena_size)
{
    char dir[4096];
    const char *slash = strrchr(file, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - file) : 1, slash ? file : ".");
    if (slash == file) {
        snprintf(dir, sizeof dir, "/");
    }
    const char *name = slash ? slash + 1 : file;
    if (*name == '\0') {
        fprintf(stderr, "poolkit replay: --plot '%s': a file name, not a folder\n", file);
        return -1;
    }
    char title[4400];
    snprintf(title, sizeof title, "poolkit replay: %s", trace_path);
    report_page *page = report_begin(dir, name, title);
    if (page == NULL) {
        return -1;
    }
    char text[1024];
    snprintf(text, sizeof text,
             "%zu events; peak of live requested bytes %zu B after event %zu; each allocator in an arena of "
             "%zu B. Latencies in nanoseconds per call.",
             t->count, p->peak_live_bytes, p->peak_event, arena_size);
    int rc = report_paragraph(page, text);

    char(*cells)[COLUMNS][96] = malloc((n ? n : 1) * sizeof *cells);
    const char **flat = malloc((n ? n : 1) * COLUMNS * sizeof *flat);
    double *x = malloc((n + 1) * MAX_SAMPLES * sizeof *x);
    double *y = malloc((n + 1) * MAX_SAMPLES * sizeof *y);
    report_series *series = malloc((n + 1) * sizeof *series);
    if (!cells || !flat || !x || !y || !series) {
        fprintf(stderr, "poolkit replay: out of memory for the page\n");
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        row_cells(t, &runs[i], arena_size, cells[i]);
        for (int c = 0; c < COLUMNS; c++) {
            flat[i * COLUMNS + c] = cells[i][c];
        }
    }
    if (rc == 0) {
        rc = report_table(page, COLUMNS, column_names, n, flat);
    }
    /* Footprint: the trace's live requested bytes, then each allocator's in_use. */
    if (rc == 0) {
        series[0] = (report_series){"requested (live, the trace)", p->sample_time_ms, p->sample_live,
                                    p->sample_count};
        for (size_t i = 0; i < n; i++) {
            double *xi = x + i * MAX_SAMPLES, *yi = y + i * MAX_SAMPLES;
            for (size_t k = 0; k < runs[i].r.sample_count; k++) {
                xi[k] = (double)runs[i].samples[k].time_ns / 1e6;
                yi[k] = (double)runs[i].samples[k].in_use;
            }
            series[i + 1] = (report_series){runs[i].s->name, xi, yi, runs[i].r.sample_count};
        }
        rc = report_heading(page, "Footprint over time") != 0 ||
                     report_paragraph(page, "Bytes granted to live blocks (in_use) after each sampled event, "
                                            "against the bytes the program had requested then.") != 0 ||
                     report_plot(page, "Live bytes", "traced time (ms)", "bytes", 0, 0, series, n + 1) != 0
                 ? -1
                 : 0;
    }
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) {
            double *yi = y + i * MAX_SAMPLES;
            for (size_t k = 0; k < runs[i].r.sample_count; k++) {
                yi[k] = runs[i].samples[k].frag_external;
            }
        }
        rc = report_heading(page, "External fragmentation over time") != 0 ||
                     report_paragraph(page, "1 - largest free block / free bytes after each sampled event: "
                                            "how much of the free memory a large request cannot use.") != 0 ||
                     report_plot(page, "External fragmentation", "traced time (ms)", "fragmentation", 0, 0,
                                 series + 1, n) != 0
                 ? -1
                 : 0;
    }
    free(cells);
    free(flat);
    free(x);
    free(y);
    free(series);
    return report_end(page) != 0 || rc != 0 ? -1 : 0;
}

int replay_main(int argc, char **argv)
{
    options o;
    int status = parse(argc, argv, &o);
    if (status != 0) {
        return status < 0 ? 0 : status;
    }
    pk_trace t;
    char err[1024];
    if (pk_trace_load(o.trace, &t, err, sizeof err) != 0) {
        fprintf(stderr, "poolkit replay: %s\n", err);
        return 2;
    }
    profile p;
    if (profile_trace(&t, &p) != 0) {
        profile_free(&p);
        pk_trace_free(&t);
        return 1;
    }
    status = 0;
    subject *pool_subject = &subjects[SUBJECT_COUNT - 1];
    if (o.all) {
        for (size_t i = 0; i < SUBJECT_COUNT; i++) {
            o.selected[i] = !subjects[i].fixed_size || p.sizes <= 1;
        }
    } else if (o.selected[SUBJECT_COUNT - 1] && p.sizes > 1) {
        fprintf(stderr, "poolkit replay: %s serves one size, and this trace asks several (up to %zu B): choose "
                        "another allocator\n", pool_subject->name, p.largest);
        status = 2;
    }
    size_t arena_size = o.arena ? o.arena : default_arena(&p);
    void *buf = status == 0 ? arena_buffer(arena_size) : NULL;
    if (status == 0 && buf == NULL) {
        fprintf(stderr, "poolkit replay: cannot allocate an arena of %zu B\n", arena_size);
        status = 2;
    }
    /* Every allocator chosen must set up in the arena before any replays. */
    for (size_t i = 0; status != 2 && buf != NULL && i < SUBJECT_COUNT; i++) {
        if (o.selected[i] && subjects[i].setup(&subjects[i], buf, arena_size, &p) == NULL) {
            fprintf(stderr, "poolkit replay: an arena of %zu B is too small for %s: it needs at least %zu B\n",
                    arena_size, subjects[i].name, least_arena(&subjects[i], arena_size, &p));
            status = 3;
        }
    }
    if (status == 3) {
        status = 2;
    }
    run *runs = status == 0 ? calloc(SUBJECT_COUNT, sizeof *runs) : NULL;
    size_t n = 0;
    if (status == 0 && runs == NULL) {
        fprintf(stderr, "poolkit replay: out of memory\n");
        status = 1;
    }
    if (status == 0) {
        describe_trace(o.trace, &t, &p);
        printf("arena: %zu B per allocator (%s)\n\n", arena_size,
               o.arena ? "--arena" : "default: 4 x the peak live requested bytes, rounded up to 64 KiB");
        fflush(stdout);
    }
    for (size_t i = 0; status == 0 && i < SUBJECT_COUNT; i++) {
        if (!o.selected[i]) {
            continue;
        }
        run *r = &runs[n++];
        r->s = &subjects[i];
        r->r.samples = r->samples;
        r->r.max_samples = MAX_SAMPLES;
        pk_allocator *a = r->s->setup(r->s, buf, arena_size, &p);
        if (a == NULL || replay_run(&t, a, &r->r) != 0) {
            fprintf(stderr, "poolkit replay: the replay on %s could not complete\n", r->s->name);
            status = 1;
        }
    }
    if (status == 0) {
        print_table(&t, runs, n, arena_size);
        printf("\n");
        for (size_t i = 0; i < n; i++) {
            if (runs[i].s->detail[0] != '\0') {
                printf("%s: %s\n", runs[i].s->name, runs[i].s->detail);
            }
            if (runs[i].s->setup == arena_setup) {
                printf("arena: frees reclaim nothing: its in_use is every byte allocated since the start\n");
            }
        }
        if (o.all && p.sizes > 1) {
            printf("pool: left out: it serves one size, and this trace asks several\n");
        }
        printf("Bytes in bytes; times in ns per call, the timer's own cost included.\n");
        if (o.plot != NULL) {
            if (write_plot(o.plot, o.trace, &t, &p, runs, n, arena_size) != 0) {
                status = 1;
            } else {
                printf("page: %s\n", o.plot);
            }
        }
    }
    free(runs);
    free(buf);
    profile_free(&p);
    pk_trace_free(&t);
    return status;
}
