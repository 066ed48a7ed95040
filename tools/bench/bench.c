/*
 * `poolkit bench`: every poolkit allocator against glibc's malloc, jemalloc,
 * mimalloc and tcmalloc on four workloads (workloads.c): ns per call as the
 * median, min and max of several runs; per-call latency percentiles and the
 * maximum; instructions per call from callgrind when scripts/bench.sh passes
 * them in; tables on stdout and build/report/bench.html.
 *
 * Each run does, for every workload and every allocator in turn (so that
 * noise on the machine hits all alike): one pass timed as a whole (the
 * loop's wall time over its calls: ns per call), then one pass with every
 * call timed on its own. Every run makes the same calls in the same order,
 * so each call's time is taken as the least over the runs: an interrupt or
 * a preemption hits a call in one run, not in all of them. The latency
 * percentiles are over those per-call times; "max, any run" is the longest
 * call of any run, machine noise included.
 * Before each pass poolkit's allocators are made afresh over one buffer; the
 * mallocs keep their heaps. After each pass a poolkit allocator must pass its
 * check and hold nothing (else exit 1). The harness alone ("null": calls
 * that do nothing) is measured the same way and subtracted: its ns per call
 * from every run's figure, its median per-call time (the timer and the call)
 * from every percentile.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"
#include "commands.h"
#include "report/report.h"

#include "poolkit/common.h"
#include "poolkit/version.h"

#define DEFAULT_RUNS 5
#define DEFAULT_OPS 200000u      /* calls per pass */
#define SMOKE_OPS 2000u
#define SMOKE_RUNS 2
#define MAX_RUNS 1000
#define MAX_OPS 100000000u
#define DEFAULT_OUT "build/report"
#define NOTES_SIZE 2048
#define PLOT_POINTS_PER_OCTAVE 8
#define PLOT_OCTAVES 24          /* 1 ns to 16 ms */

static const char *const program = "poolkit bench";

typedef struct {
    unsigned runs;
    uint64_t ops;
    const char *out;
    bool wanted[64];             /* by index in bench_allocators */
    bool workloads[BENCH_WORKLOADS];
    bool smoke;
    const char *count;           /* --count WORKLOAD:ALLOCATOR or "list" */
    const char *instructions;    /* --instructions FILE */
} options;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: poolkit bench [options]\n"
            "Every poolkit allocator against glibc malloc, jemalloc, mimalloc and tcmalloc\n"
            "(dlopened; a missing one is skipped with a note) on four workloads:\n"
            "  fixed64  alloc+free pairs of 64 B\n"
            "  batch64  allocate 4,096 x 64 B, free them in random order\n"
            "  live4k   random live set of 4,096 objects, 16 B..4 KiB\n"
            "  live64k  random live set of 1,024 objects, 16 B..64 KiB\n"
            "ns per call (median, min, max of the runs), per-call latency p50, p99,\n"
            "p99.9 and max; tables on stdout, and DIR/bench.html.\n\n"
            "options:\n"
            "  --runs N            runs of every allocator and workload (default %d)\n"
            "  --ops N             calls (allocs + frees) per pass (default %u)\n"
            "  --out DIR           where bench.html goes (default %s)\n"
            "  --allocators LIST   comma-separated names, or 'poolkit', 'malloc', 'all':\n"
            "                      ",
            DEFAULT_RUNS, DEFAULT_OPS, DEFAULT_OUT);
    size_t column = 22;
    const char *separator = "";
    for (size_t i = 0; i < bench_allocator_count; i++) {
        const char *name = bench_allocators[i].name;
        if (bench_allocators[i].hidden) {
            continue;
        }
        if (column + strlen(separator) + strlen(name) + 1 > 79) {
            fprintf(out, ",\n                      ");
            column = 22;
            separator = "";
        }
        column += (size_t)fprintf(out, "%s%s", separator, name);
        separator = ", ";
    }
    fprintf(out, "\n");
    fprintf(out,
            "  --workloads LIST    comma-separated: fixed64,batch64,live4k,live64k (default all)\n"
            "  --smoke             tiny sizes, %u calls and %d runs unless given (a test)\n"
            "  --count W:A         one untimed pass of allocator A on workload W inside\n"
            "                      bench_counted_loop, for callgrind (scripts/bench.sh);\n"
            "                      --count list prints the pairs it counts\n"
            "  --instructions FILE callgrind's counts, lines 'WORKLOAD ALLOCATOR CALLS\n"
            "                      INSTRUCTIONS' (null's included), shown per call\n"
            "  --help              this text\n",
            SMOKE_OPS, SMOKE_RUNS);
}

static int bad(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", program);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (poolkit bench --help lists the options)\n");
    return 2;
}

/* A positive integer up to max, or 0 (after a message). */
static uint64_t parse_count(const char *option, const char *text, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || v == 0 || v > max) {
        fprintf(stderr, "%s: %s wants a whole number from 1 to %llu, not '%s'\n", program, option,
                (unsigned long long)max, text);
        return 0;
    }
    return v;
}

static ptrdiff_t find_allocator(const char *name)
{
    for (size_t i = 0; i < bench_allocator_count; i++) {
        if (strcmp(bench_allocators[i].name, name) == 0) {
            return (ptrdiff_t)i;
        }
    }
    return -1;
}

/* One name of --allocators: 0, or 2 after a message. */
static int add_allocator(options *o, const char *name)
{
    bool all = strcmp(name, "all") == 0, pk = strcmp(name, "poolkit") == 0,
         mallocs = strcmp(name, "malloc") == 0 || strcmp(name, "mallocs") == 0;
    ptrdiff_t i = find_allocator(name);
    if (all || pk || mallocs) {
        for (size_t k = 0; k < bench_allocator_count; k++) {
            const bench_allocator *a = &bench_allocators[k];
            o->wanted[k] |= !a->hidden && (all || a->poolkit == pk);
        }
        return 0;
    }
    if (i >= 0 && !bench_allocators[i].hidden) {
        o->wanted[i] = true;
        return 0;
    }
    fprintf(stderr, "%s: --allocators: unknown allocator '%s'; known: poolkit, malloc, all", program, name);
    for (size_t k = 0; k < bench_allocator_count; k++) {
        if (!bench_allocators[k].hidden) {
            fprintf(stderr, ", %s", bench_allocators[k].name);
        }
    }
    fprintf(stderr, "\n");
    return 2;
}

/* One name of --workloads. */
static int add_workload(options *o, const char *name)
{
    bench_workload_kind k = bench_workload_find(name);
    if (k == BENCH_WORKLOADS) {
        return bad("--workloads: unknown workload '%s' (fixed64, batch64, live4k, live64k)", name);
    }
    o->workloads[k] = true;
    return 0;
}

/* add(o, name) for each name of a comma-separated list: 0, or 2. */
static int each_name(options *o, const char *option, const char *list, int (*add)(options *, const char *))
{
    char copy[512];
    if (snprintf(copy, sizeof copy, "%s", list) >= (int)sizeof copy) {
        fprintf(stderr, "%s: %s: the list is too long\n", program, option);
        return 2;
    }
    for (char *save = NULL, *name = strtok_r(copy, ",", &save); name != NULL;
         name = strtok_r(NULL, ",", &save)) {
        if (add(o, name) != 0) {
            return 2;
        }
    }
    return 0;
}

/* 0 to go on, 1 done (--help), 2 bad options. */
static int parse(options *o, int argc, char **argv)
{
    _Static_assert(sizeof o->wanted / sizeof o->wanted[0] >= 14, "options.wanted too small");
    *o = (options){.out = DEFAULT_OUT};
    bool runs_given = false, ops_given = false, allocators_given = false, workloads_given = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = NULL;
        char name[32];
        const char *eq = strchr(arg, '=');
        size_t len = eq && arg[0] == '-' ? (size_t)(eq - arg) : strlen(arg);
        if (len >= sizeof name) {
            return bad("unknown option '%s'", arg);
        }
        memcpy(name, arg, len);
        name[len] = '\0';
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(name, "--smoke") == 0) {
            o->smoke = true;
            continue;
        }
        static const char *const with_value[] = {"--runs", "--ops", "--out", "--allocators",
                                                 "--workloads", "--count", "--instructions"};
        size_t k = 0;
        while (k < sizeof with_value / sizeof with_value[0] && strcmp(name, with_value[k]) != 0) {
            k++;
        }
        if (k == sizeof with_value / sizeof with_value[0]) {
            return bad("unknown option '%s'", arg);
        }
        if (eq != NULL && arg[0] == '-') {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return bad("%s needs a value", name);
        }
        if (strcmp(name, "--runs") == 0) {
            o->runs = (unsigned)parse_count(name, value, MAX_RUNS);
            if (o->runs == 0) {
                return 2;
            }
            runs_given = true;
        } else if (strcmp(name, "--ops") == 0) {
            o->ops = parse_count(name, value, MAX_OPS);
            if (o->ops == 0) {
                return 2;
            }
            ops_given = true;
        } else if (strcmp(name, "--out") == 0) {
            if (value[0] == '\0') {
                return bad("--out needs a folder%s", "");
            }
            o->out = value;
        } else if (strcmp(name, "--allocators") == 0) {
            if (each_name(o, name, value, add_allocator) != 0) {
                return 2;
            }
            allocators_given = true;
        } else if (strcmp(name, "--workloads") == 0) {
            if (each_name(o, name, value, add_workload) != 0) {
                return 2;
            }
            workloads_given = true;
        } else if (strcmp(name, "--count") == 0) {
            o->count = value;
        } else {
            o->instructions = value;
        }
    }
    if (!runs_given) {
        o->runs = o->smoke ? SMOKE_RUNS : DEFAULT_RUNS;
    }
    if (!ops_given) {
        o->ops = o->smoke ? SMOKE_OPS : DEFAULT_OPS;
    }
    if (!allocators_given) {
        for (size_t i = 0; i < bench_allocator_count; i++) {
            o->wanted[i] = !bench_allocators[i].hidden;
        }
    }
    bool named = false;
    for (size_t i = 0; i < bench_allocator_count; i++) {
        named |= o->wanted[i];
    }
    if (!named) {
        return bad("--allocators names no allocator%s", "");
    }
    bool any = false;
    for (int k = 0; k < BENCH_WORKLOADS; k++) {
        any |= o->workloads[k];
    }
    if (!any && workloads_given) {
        return bad("--workloads names no workload%s", "");
    }
    if (!any) {
        for (int k = 0; k < BENCH_WORKLOADS; k++) {
            o->workloads[k] = true;
        }
    }
    return 0;
}

static bool applies(const bench_allocator *a, const bench_workload *w)
{
    return !a->fixed_only || w->need.fixed_size != 0;
}

/* ---- The buffer poolkit's allocators work in ------------------------------- */

typedef struct {
    void *buf;
    size_t size;
} arena;

/* touch: fault the pages in (not needed when only instructions count). */
static int arena_make(arena *b, size_t size, bool touch)
{
    size = (size + 65535) / 65536 * 65536;
    b->buf = aligned_alloc(65536, size);
    b->size = size;
    if (b->buf == NULL) {
        fprintf(stderr, "%s: out of memory (%zu bytes of buffer)\n", program, size);
        return -1;
    }
    if (touch) {
        memset(b->buf, 0, size); /* fault the pages in before anything is measured */
    }
    return 0;
}

static int setup(bench_allocator *a, const arena *b, const bench_workload *w)
{
    size_t need = a->poolkit || a->hidden ? bench_buffer_size(a, &w->need) : 0;
    if (need > b->size) {
        fprintf(stderr, "%s: %s: %s needs %zu bytes, the buffer has %zu\n", program, a->name, w->name,
                need, b->size);
        return -1;
    }
    return a->setup(a, b->buf, a->poolkit ? need : b->size, &w->need);
}

static int verify(bench_allocator *a) { return a->verify != NULL ? a->verify(a) : 0; }

/* ---- --count: one pass for callgrind ---------------------------------------- */

static bool counted(const bench_allocator *a)
{
    return a->hidden || a->poolkit || strcmp(a->name, "glibc") == 0;
}

static int count_mode(const options *o)
{
    if (strcmp(o->count, "list") == 0) {
        for (int k = 0; k < BENCH_WORKLOADS; k++) {
            bench_workload w;
            if (!o->workloads[k]) {
                continue;
            }
            if (bench_workload_make(&w, (bench_workload_kind)k, 2, o->smoke) != 0) {
                fprintf(stderr, "%s: out of memory\n", program);
                return 1;
            }
            for (size_t i = 0; i < bench_allocator_count; i++) {
                const bench_allocator *a = &bench_allocators[i];
                if (counted(a) && applies(a, &w) && (a->hidden || o->wanted[i])) {
                    printf("%s %s\n", w.name, a->name);
                }
            }
            bench_workload_free(&w);
        }
        return 0;
    }
    char copy[64];
    const char *colon = strchr(o->count, ':');
    if (colon == NULL || (size_t)(colon - o->count) >= sizeof copy) {
        return bad("--count wants WORKLOAD:ALLOCATOR or list, not '%s'", o->count);
    }
    memcpy(copy, o->count, (size_t)(colon - o->count));
    copy[colon - o->count] = '\0';
    bench_workload_kind kind = bench_workload_find(copy);
    ptrdiff_t i = find_allocator(colon + 1);
    if (kind == BENCH_WORKLOADS) {
        return bad("--count: unknown workload '%s'", copy);
    }
    if (i < 0) {
        return bad("--count: unknown allocator '%s'", colon + 1);
    }
    bench_allocator *a = &bench_allocators[i];
    bench_workload w;
    arena b = {0};
    void **slots = NULL;
    int rc = 1;
    if (bench_workload_make(&w, kind, o->ops, o->smoke) != 0 ||
        (slots = calloc(w.slots, sizeof *slots)) == NULL) {
        fprintf(stderr, "%s: out of memory\n", program);
        goto done;
    }
    if (!applies(a, &w)) {
        rc = bad("--count: the allocator does not serve this workload's sizes (%s)", o->count);
        goto done;
    }
    if (!a->poolkit && !a->hidden) {
        bool wanted[64] = {false}, missing[64] = {false};
        char notes[NOTES_SIZE] = "";
        wanted[i] = true;
        bench_load_mallocs(wanted, missing, notes, sizeof notes);
        if (missing[i]) {
            fputs(notes, stderr);
            goto done;
        }
    }
    if (arena_make(&b, bench_buffer_size(a, &w.need) + 65536, false) != 0 || setup(a, &b, &w) != 0 ||
        bench_pass_counted(&w, a, slots) != 0 || verify(a) != 0) {
        goto done;
    }
    printf("%s %s %llu calls\n", w.name, a->name, (unsigned long long)w.calls);
    rc = 0;
done:
    free(slots);
    free(b.buf);
    bench_workload_free(&w);
    return rc;
}

/* ---- --instructions FILE ------------------------------------------------------ */

/* per_call[workload][allocator]: instructions per call net of null's; NaN
 * where not given. 0, or 2 after a message. */
static int read_instructions(const char *path, double per_call[BENCH_WORKLOADS][64])
{
    double gross[BENCH_WORKLOADS][64];
    for (int k = 0; k < BENCH_WORKLOADS; k++) {
        for (int i = 0; i < 64; i++) {
            gross[k][i] = per_call[k][i] = NAN;
        }
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "%s: --instructions: cannot read '%s': %s\n", program, path, strerror(errno));
        return 2;
    }
    char line[256];
    int number = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char workload[32], name[32];
        unsigned long long calls, count;
        number++;
        if (line[0] == '\n' || line[0] == '#') {
            continue;
        }
        bench_workload_kind kind;
        ptrdiff_t i;
        if (sscanf(line, "%31s %31s %llu %llu", workload, name, &calls, &count) != 4 || calls == 0 ||
            (kind = bench_workload_find(workload)) == BENCH_WORKLOADS || (i = find_allocator(name)) < 0) {
            fprintf(stderr, "%s: --instructions: %s line %d: expected 'WORKLOAD ALLOCATOR CALLS "
                            "INSTRUCTIONS' with known names, not '%.*s'\n",
                    program, path, number, (int)strcspn(line, "\n"), line);
            fclose(f);
            return 2;
        }
        gross[kind][i] = (double)count / (double)calls;
    }
    fclose(f);
    for (int k = 0; k < BENCH_WORKLOADS; k++) {
        if (isnan(gross[k][0])) {
            continue; /* no harness count: nothing can be net */
        }
        for (size_t i = 1; i < bench_allocator_count; i++) {
            per_call[k][i] = gross[k][i] - gross[k][0];
        }
    }
    return 0;
}

/* ---- The machine, for the tables and the page -------------------------------- */

static void describe_machine(char *out, size_t n)
{
    char model[128] = "unknown CPU", line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f != NULL) {
        while (fgets(line, sizeof line, f) != NULL) {
            if (strncmp(line, "model name", 10) == 0) {
                const char *colon = strchr(line, ':');
                if (colon != NULL) {
                    snprintf(model, sizeof model, "%.*s", (int)strcspn(colon + 2, "\n"), colon + 2);
                }
                break;
            }
        }
        fclose(f);
    }
    struct utsname u;
    if (uname(&u) != 0) {
        snprintf(u.sysname, sizeof u.sysname, "?");
        u.release[0] = u.machine[0] = '\0';
    }
    snprintf(out, n, "%s, %ld CPUs, %s %s %s", model, sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release,
             u.machine);
}

static const char *compiler(void)
{
#define PK_BENCH_STR_(x) #x
#define PK_BENCH_STR(x) PK_BENCH_STR_(x)
#ifdef __clang__
#define PK_BENCH_CC                                                                                \
    "clang " PK_BENCH_STR(__clang_major__) "." PK_BENCH_STR(__clang_minor__) "." PK_BENCH_STR(     \
        __clang_patchlevel__)
#else
#define PK_BENCH_CC "gcc " __VERSION__
#endif
#ifdef PK_TOOLS_FLAGS /* tools/CMakeLists.txt: the build's flags */
#define PK_BENCH_OPT PK_TOOLS_FLAGS
#elif defined(__OPTIMIZE__)
#define PK_BENCH_OPT "optimized"
#else
#define PK_BENCH_OPT "not optimized"
#endif
#if PK_DEBUG
#define PK_BENCH_DEBUG ", poolkit debug build (guards, poison: slower)"
#else
#define PK_BENCH_DEBUG ""
#endif
    return PK_BENCH_CC ", " PK_BENCH_OPT PK_BENCH_DEBUG;
}

/* ---- Results ------------------------------------------------------------------ */

typedef struct {
    bool ran;
    double *whole_ns;        /* per run: the loop's wall time */
    double ns_median, ns_min, ns_max; /* per call, net of the harness */
    uint32_t *best;          /* per call: the least ticks over the runs */
    uint32_t raw_max_ticks;  /* the longest call of any run */
    bench_latency lat;       /* of best[], once the runs are done */
    double p50, p99, p999, max, raw_max; /* ns, net of the timer's overhead */
} result;

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void format_ns(char *out, size_t n, double ns)
{
    if (ns < 100) {
        snprintf(out, n, "%.1f", ns);
    } else {
        snprintf(out, n, "%.0f", ns);
    }
}

/* One workload's table: on stdout, and as cells for the page. */
#define COLUMNS 9
static const char *const header[COLUMNS] = {"allocator", "ns/call median", "min-max", "p50 ns", "p99 ns",
                                            "p99.9 ns", "max ns", "max, any run", "instr/call"};

static size_t table_cells(const bench_workload *w, result *res, const double *instructions, char (*cells)[32])
{
    size_t rows = 0;
    (void)w;
    for (size_t i = 0; i < bench_allocator_count; i++) {
        if (!res[i].ran || bench_allocators[i].hidden) {
            continue;
        }
        char (*row)[32] = cells + rows * COLUMNS;
        snprintf(row[0], 32, "%s", bench_allocators[i].name);
        format_ns(row[1], 32, res[i].ns_median);
        char lo[16], hi[16];
        format_ns(lo, sizeof lo, res[i].ns_min);
        format_ns(hi, sizeof hi, res[i].ns_max);
        snprintf(row[2], 32, "%s-%s", lo, hi);
        format_ns(row[3], 32, res[i].p50);
        format_ns(row[4], 32, res[i].p99);
        format_ns(row[5], 32, res[i].p999);
        format_ns(row[6], 32, res[i].max);
        format_ns(row[7], 32, res[i].raw_max);
        if (instructions != NULL && !isnan(instructions[i])) {
            snprintf(row[8], 32, "%.0f", instructions[i]);
        } else {
            snprintf(row[8], 32, "-");
        }
        rows++;
    }
    return rows;
}

static void print_table(size_t rows, char (*cells)[32], int columns)
{
    static const int width[COLUMNS] = {-15, 14, 13, 7, 7, 8, 8, 12, 10};
    for (int c = 0; c < columns; c++) {
        printf("%*s%s", width[c], header[c], c + 1 < columns ? " " : "\n");
    }
    for (size_t r = 0; r < rows; r++) {
        for (int c = 0; c < columns; c++) {
            printf("%*s%s", width[c], cells[r * COLUMNS + c], c + 1 < columns ? " " : "\n");
        }
    }
}

/* The tail plot: for each allocator, the fraction of calls slower than x ns
 * (net), x from 1 ns on a log axis, 8 points per octave, up to its slowest. */
static int tail_plot(report_page *page, const bench_workload *w, result *res, const bench_clock *clk,
                     double overhead_ticks)
{
    enum { POINTS = PLOT_POINTS_PER_OCTAVE * PLOT_OCTAVES + 1 };
    report_series series[64];
    size_t n = 0;
    double *store = malloc(bench_allocator_count * 2 * POINTS * sizeof *store);
    uint64_t thresholds[POINTS];
    int rc = -1;
    if (store == NULL) {
        fprintf(stderr, "%s: out of memory\n", program);
        return -1;
    }
    for (size_t i = 0; i < bench_allocator_count; i++) {
        if (!res[i].ran || bench_allocators[i].hidden) {
            continue;
        }
        double *x = store + n * 2 * POINTS, *y = x + POINTS;
        for (int k = 0; k < POINTS; k++) {
            x[k] = exp2((double)k / PLOT_POINTS_PER_OCTAVE);
            thresholds[k] = (uint64_t)floor(x[k] * clk->ticks_per_ns + overhead_ticks);
        }
        bench_latency_tail(&res[i].lat, thresholds, POINTS, y);
        /* From the last point where every call is slower (1 on the y axis)
         * to the last where some call is. */
        size_t first = 0, count = 0;
        while (first + 1 < POINTS && y[first + 1] >= 1.0) {
            first++;
        }
        while (first + count < POINTS && y[first + count] > 0) {
            count++;
        }
        series[n++] = (report_series){bench_allocators[i].name, x + first, y + first, count};
    }
    char title[160];
    snprintf(title, sizeof title, "%s: fraction of calls slower than x", w->title);
    rc = report_plot(page, title, "ns per call (net of the timer)", "fraction of calls slower", 1, 1,
                     series, n);
    free(store);
    return rc;
}

/* ---- jemalloc's static TLS ------------------------------------------------------ */

/* jemalloc's TLS is initial-exec (2.6 KiB): a dlopen finds room for it only
 * in the static TLS glibc reserves at start-up, 512 bytes by default, and
 * fails. The reserve is set by a tunable read at start-up, so the process
 * runs itself again with it (once: the marker stops a loop). Not under
 * valgrind, whose client cannot re-execute itself through /proc/self/exe. */
#define REEXEC_MARKER "POOLKIT_BENCH_STATIC_TLS"
#define STATIC_TLS_TUNABLE "glibc.rtld.optional_static_tls=16384"

static void rerun_with_static_tls(void)
{
    if (getenv(REEXEC_MARKER) != NULL || bench_under_valgrind()) {
        return;
    }
    static char cmdline[65536];
    char *args[1024];
    size_t len = 0, n = 0;
    FILE *f = fopen("/proc/self/cmdline", "rb");
    if (f == NULL) {
        return;
    }
    len = fread(cmdline, 1, sizeof cmdline - 1, f);
    fclose(f);
    if (len == 0 || len == sizeof cmdline - 1) {
        return;
    }
    cmdline[len] = '\0';
    for (size_t i = 0; i < len && n + 1 < sizeof args / sizeof args[0]; i += strlen(cmdline + i) + 1) {
        args[n++] = cmdline + i;
    }
    args[n] = NULL;
    static char tunables[1024];
    const char *old = getenv("GLIBC_TUNABLES");
    snprintf(tunables, sizeof tunables, "%s%s" STATIC_TLS_TUNABLE, old ? old : "", old && old[0] ? ":" : "");
    if (setenv("GLIBC_TUNABLES", tunables, 1) != 0 || setenv(REEXEC_MARKER, "1", 1) != 0) {
        return;
    }
    fflush(NULL);
    execv("/proc/self/exe", args);
    unsetenv(REEXEC_MARKER); /* execv failed: go on without jemalloc */
}

/* ---- The runs ---------------------------------------------------------------- */

typedef struct {
    bench_workload w;
    result res[64];
    double overhead_ticks;   /* null's median per-call time */
    double null_ns_per_call;
} workload_results;

static int run_workload(const options *o, workload_results *wr, const arena *b, const bool *active)
{
    bench_workload *w = &wr->w;
    void **slots = calloc(w->slots, sizeof *slots);
    uint32_t *ticks = malloc(w->calls * sizeof *ticks);
    int rc = -1;
    if (slots == NULL || ticks == NULL) {
        goto out_of_memory;
    }
    for (size_t i = 0; i < bench_allocator_count; i++) {
        result *r = &wr->res[i];
        if (!active[i] || !applies(&bench_allocators[i], w)) {
            continue;
        }
        r->ran = true;
        r->whole_ns = calloc(o->runs, sizeof *r->whole_ns);
        r->best = malloc(w->calls * sizeof *r->best);
        if (r->whole_ns == NULL || r->best == NULL || bench_latency_init(&r->lat) != 0) {
            goto out_of_memory;
        }
        memset(r->best, 0xff, w->calls * sizeof *r->best);
    }
    for (unsigned run = 0; run < o->runs; run++) {
        for (size_t i = 0; i < bench_allocator_count; i++) {
            bench_allocator *a = &bench_allocators[i];
            result *r = &wr->res[i];
            if (!r->ran) {
                continue;
            }
            if (setup(a, b, w) != 0 || bench_pass_whole(w, a, slots, &r->whole_ns[run]) != 0 ||
                verify(a) != 0 || setup(a, b, w) != 0 || bench_pass_timed(w, a, slots, ticks) != 0 ||
                verify(a) != 0) {
                goto done;
            }
            for (uint64_t k = 0; k < w->calls; k++) {
                r->raw_max_ticks = ticks[k] > r->raw_max_ticks ? ticks[k] : r->raw_max_ticks;
                r->best[k] = ticks[k] < r->best[k] ? ticks[k] : r->best[k];
            }
        }
    }
    for (size_t i = 0; i < bench_allocator_count; i++) {
        result *r = &wr->res[i];
        for (uint64_t k = 0; r->ran && k < w->calls; k++) {
            if (bench_latency_add(&r->lat, r->best[k]) != 0) {
                goto out_of_memory;
            }
        }
        free(r->best);
        r->best = NULL;
    }
    rc = 0;
    goto done;
out_of_memory:
    fprintf(stderr, "%s: out of memory\n", program);
done:
    free(ticks);
    free(slots);
    return rc;
}

static void summarize(const options *o, workload_results *wr, const bench_clock *clk)
{
    result *null = &wr->res[0];
    double *tmp = malloc(o->runs * sizeof *tmp);
    if (tmp == NULL) {
        return;
    }
    memcpy(tmp, null->whole_ns, o->runs * sizeof *tmp);
    wr->null_ns_per_call = median(tmp, o->runs) / (double)wr->w.calls;
    wr->overhead_ticks = (double)bench_latency_quantile(&null->lat, 0.5);
    for (size_t i = 0; i < bench_allocator_count; i++) {
        result *r = &wr->res[i];
        if (!r->ran) {
            continue;
        }
        for (unsigned k = 0; k < o->runs; k++) {
            double net = r->whole_ns[k] / (double)wr->w.calls - (i ? wr->null_ns_per_call : 0);
            tmp[k] = net > 0 ? net : 0;
        }
        r->ns_median = median(tmp, o->runs);
        r->ns_min = tmp[0];
        r->ns_max = tmp[o->runs - 1];
        double q[4] = {0.5, 0.99, 0.999, 1.0}, *out[5] = {&r->p50, &r->p99, &r->p999, &r->max, &r->raw_max};
        for (int k = 0; k < 5; k++) {
            double t = k < 4 ? (double)bench_latency_quantile(&r->lat, q[k]) : (double)r->raw_max_ticks;
            t -= i ? wr->overhead_ticks : 0;
            *out[k] = (t > 0 ? t : 0) / clk->ticks_per_ns;
        }
    }
    free(tmp);
}

/* The page, begun before the runs (so that a folder it cannot be written to
 * stops the command at once); ends it. */
static int write_page(report_page *page, const options *o, workload_results *wrs, const bench_clock *clk,
                      const char *machine, const char *notes, double (*instructions)[64],
                      bool have_instructions)
{
    char text[1024];
    int rc = 0;
    snprintf(text, sizeof text,
             "Machine: %s. Compiler: %s. Timer: %s, %.3f ticks per ns, resolution %.1f ns. %u runs of "
             "every allocator on every workload, interleaved; %llu calls (allocs + frees) per pass%s.",
             machine, compiler(), clk->name, clk->ticks_per_ns, clk->step_ns, o->runs,
             (unsigned long long)o->ops, o->smoke ? " (smoke test: tiny sizes, figures meaningless)" : "");
    rc |= report_paragraph(page, text);
    rc |= report_paragraph(page,
                           "ns/call: each run times one pass as a whole (the loop's wall time over its "
                           "calls), net of the harness (the same loop calling functions that do nothing); "
                           "median, min and max over the runs. p50..max: a second pass per run times "
                           "every call on its own; every run makes the same calls, and each call's time "
                           "is its least over the runs (an interrupt or preemption hits one run's call, "
                           "not all); percentiles over those, net of the timer and call overhead (the "
                           "harness's median call). 'max, any run': the longest call of any run, "
                           "machine noise included. Blocks are not written. "
                           "poolkit's allocators are made afresh over one buffer before each pass and "
                           "checked after it; the mallocs keep their heaps. jemalloc, mimalloc and "
                           "tcmalloc are loaded with dlopen (RTLD_LOCAL), the process's malloc stays "
                           "glibc's.");
    if (have_instructions) {
        rc |= report_paragraph(page, "instr/call: instructions per call counted by callgrind inside the "
                                     "loop only, net of the harness (poolkit and glibc; scripts/bench.sh).");
    }
    if (notes[0] != '\0') {
        rc |= report_paragraph(page, notes);
    }
    /* The allocators. */
    {
        static const char *const h[3] = {"allocator", "what", "version"};
        const char *cells[64 * 3];
        size_t rows = 0;
        for (size_t i = 0; i < bench_allocator_count; i++) {
            const bench_allocator *a = &bench_allocators[i];
            bool ran = false;
            for (int k = 0; k < BENCH_WORKLOADS; k++) {
                ran |= wrs[k].res[i].ran;
            }
            if (a->hidden || !ran) {
                continue;
            }
            cells[rows * 3] = a->name;
            cells[rows * 3 + 1] = a->what;
            cells[rows * 3 + 2] = a->version ? a->version : (a->poolkit ? "poolkit " PK_VERSION_STRING : "");
            rows++;
        }
        rc |= report_heading(page, "Allocators");
        rc |= report_table(page, 3, h, rows, cells);
    }
    for (int k = 0; k < BENCH_WORKLOADS && rc == 0; k++) {
        workload_results *wr = &wrs[k];
        if (!o->workloads[k]) {
            continue;
        }
        char (*cells)[32] = calloc(bench_allocator_count * COLUMNS, sizeof *cells);
        const char **ptrs = calloc(bench_allocator_count * COLUMNS, sizeof *ptrs);
        if (cells == NULL || ptrs == NULL) {
            free(cells);
            free(ptrs);
            report_end(page);
            return -1;
        }
        size_t rows = table_cells(&wr->w, wr->res, have_instructions ? instructions[k] : NULL, cells);
        size_t columns = have_instructions ? COLUMNS : COLUMNS - 1;
        for (size_t r = 0; r < rows; r++) {
            for (size_t c = 0; c < columns; c++) {
                ptrs[r * columns + c] = cells[r * COLUMNS + c];
            }
        }
        rc |= report_heading(page, wr->w.title);
        snprintf(text, sizeof text, "%s. %llu calls per pass; harness: %.1f ns per call, timer and call "
                 "%.1f ns (subtracted).", wr->w.description, (unsigned long long)wr->w.calls,
                 wr->null_ns_per_call, wr->overhead_ticks / clk->ticks_per_ns);
        rc |= report_paragraph(page, text);
        rc |= report_table(page, columns, header, rows, ptrs);
        rc |= tail_plot(page, &wr->w, wr->res, clk, wr->overhead_ticks);
        free(cells);
        free(ptrs);
    }
    if (report_end(page) != 0) {
        rc = -1;
    }
    return rc;
}

int bench_main(int argc, char **argv)
{
    options o;
    int status = parse(&o, argc, argv);
    if (status != 0) {
        return status == 1 ? 0 : status;
    }
    if (o.count != NULL) {
        return count_mode(&o);
    }
    static double instructions[BENCH_WORKLOADS][64];
    if (o.instructions != NULL && read_instructions(o.instructions, instructions) != 0) {
        return 2;
    }

    bench_clock clk;
    char machine[256], notes[NOTES_SIZE] = "";
    bool missing[64] = {false};
    describe_machine(machine, sizeof machine);
    bench_clock_init(&clk);
    bench_load_mallocs(o.wanted, missing, notes, sizeof notes);
    if (bench_static_tls_short) {
        rerun_with_static_tls(); /* returns only if it could not */
    } else if (getenv(REEXEC_MARKER) != NULL) {
        size_t len = strlen(notes);
        snprintf(notes + len, sizeof notes - len,
                 "note: jemalloc's 2.6 KiB of initial-exec TLS exceed what glibc keeps for dlopen: "
                 "poolkit bench ran itself again with GLIBC_TUNABLES=" STATIC_TLS_TUNABLE "\n");
    }
    printf("poolkit bench%s\nMachine: %s\nCompiler: %s\n", o.smoke ? " --smoke (figures meaningless)" : "",
           machine, compiler());
    printf("Timer: %s, %.3f ticks per ns, resolution %.1f ns; %u runs, %llu calls per pass\n", clk.name,
           clk.ticks_per_ns, clk.step_ns, o.runs, (unsigned long long)o.ops);
    fputs(notes, stdout);
    fflush(stdout);
    report_page *page = report_begin(o.out, "bench.html", "poolkit bench: poolkit's allocators against the mallocs");
    if (page == NULL) {
        fprintf(stderr, "%s: --out %s: cannot write bench.html there\n", program, o.out);
        return 2;
    }

    bool active[64] = {false};
    active[0] = true; /* the harness */
    for (size_t i = 1; i < bench_allocator_count; i++) {
        active[i] = o.wanted[i] && !missing[i];
    }
    static workload_results wrs[BENCH_WORKLOADS];
    arena b = {0};
    size_t buffer = 0;
    int rc = 1;
    for (int k = 0; k < BENCH_WORKLOADS; k++) {
        if (o.workloads[k] && bench_workload_make(&wrs[k].w, (bench_workload_kind)k, o.ops, o.smoke) != 0) {
            fprintf(stderr, "%s: out of memory making the workloads\n", program);
            goto done;
        }
        for (size_t i = 0; o.workloads[k] && i < bench_allocator_count; i++) {
            size_t need = active[i] ? bench_buffer_size(&bench_allocators[i], &wrs[k].w.need) : 0;
            buffer = need > buffer ? need : buffer;
        }
    }
    if (arena_make(&b, buffer, true) != 0) {
        goto done;
    }
    for (int k = 0; k < BENCH_WORKLOADS; k++) {
        workload_results *wr = &wrs[k];
        if (!o.workloads[k]) {
            continue;
        }
        double t0 = bench_now_ns();
        if (run_workload(&o, wr, &b, active) != 0) {
            goto done;
        }
        summarize(&o, wr, &clk);
        char (*cells)[32] = calloc(bench_allocator_count * COLUMNS, sizeof *cells);
        if (cells == NULL) {
            goto done;
        }
        size_t rows = table_cells(&wr->w, wr->res, o.instructions ? instructions[k] : NULL, cells);
        printf("\n== %s (%s)\n%s\n", wr->w.title, wr->w.name, wr->w.description);
        print_table(rows, cells, o.instructions ? COLUMNS : COLUMNS - 1);
        printf("%llu calls per pass; harness %.1f ns per call, timer and call %.1f ns (subtracted); %.1f s\n",
               (unsigned long long)wr->w.calls, wr->null_ns_per_call, wr->overhead_ticks / clk.ticks_per_ns,
               (bench_now_ns() - t0) / 1e9);
        free(cells);
    }
    printf("\nns/call: wall time of a pass over its calls, net of the harness; median (min-max) of %u runs.\n"
           "p50..max: every call timed on its own, its least over the runs, net of the timer and call;\n"
           "'max, any run': the longest call in any run (interrupts, preemption included). Blocks not written.\n",
           o.runs);
    int written = write_page(page, &o, wrs, &clk, machine, notes, instructions, o.instructions != NULL);
    page = NULL;
    if (written != 0) {
        fprintf(stderr, "%s: the page %s/bench.html is incomplete\n", program, o.out);
        goto done;
    }
    printf("%s/bench.html\n", o.out);
    rc = 0;
done:
    for (int k = 0; k < BENCH_WORKLOADS; k++) {
        for (size_t i = 0; i < bench_allocator_count; i++) {
            free(wrs[k].res[i].whole_ns);
            free(wrs[k].res[i].best);
            bench_latency_free(&wrs[k].res[i].lat);
        }
        bench_workload_free(&wrs[k].w);
    }
    free(b.buf);
    if (page != NULL) {
        (void)report_end(page);
    }
    return rc;
}
