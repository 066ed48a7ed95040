/*
 * `poolkit demo`: glibc malloc against poolkit's allocators on the traffic of
 * an SSD controller's firmware (workload.h), every call timed, the state
 * sampled over the uptime; the comparison tables on the console, the results
 * as JSON on request, and the report page (tools/report/) written last.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "commands.h"
#include "report/report.h"
#include "measure.h"
#include "results.h"
#include "subjects.h"
#include "workload.h"

/* The arena every poolkit allocator runs in, and the smaller one the
 * placement policies are run on until their first failure. The workload
 * holds at most about 3 MiB requested at once (2 MiB of map pages, up to
 * 1 MiB of DMA buffers, the log records). In 5 MiB none of the allocators
 * fails over 10^7 operations of seeds 1 to 4 (TLSF, the first to fail as
 * the arena shrinks, fails in 4.375 MiB); 3.875 MiB makes the placement
 * policies fail one after another. */
#ifndef DEMO_ARENA_SIZE
#if PK_DEBUG /* every block also holds a tag and guards; 4 KiB-aligned ones take 8 KiB */
#define DEMO_ARENA_SIZE (8u << 20)
#else
#define DEMO_ARENA_SIZE (5u << 20)
#endif
#endif
#ifndef DEMO_TIGHT_ARENA_SIZE
#define DEMO_TIGHT_ARENA_SIZE (3968u << 10) /* 3.875 MiB */
#endif
#define ARENA_ALIGN (1u << 20) /* slabs up to 1 MiB come out of the buddy aligned */

#define DEFAULT_OPS 10000000u
#define DEFAULT_SEED 1u
#define MIN_OPS 1000u
#define MAX_OPS 100000000u
#define DEFAULT_OUT "build/report"

#ifndef PK_TOOLS_FLAGS
#define PK_TOOLS_FLAGS "(flags unknown)"
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "usage: poolkit demo [--ops N] [--seed N] [--allocators LIST] [--json[=FILE]] [--out DIR]\n"
            "\n"
            "Replays the memory traffic of an SSD controller's firmware (NVMe command\n"
            "descriptors, 4 KiB-aligned DMA buffers, FTL map pages, log records, CQEs; the\n"
            "queue depth rising and falling in bursts and idle phases) on glibc malloc and\n"
            "on poolkit's allocators in a fixed %u KiB arena, timing every call, and\n"
            "prints the comparison tables, then writes DIR/index.html and prints its path.\n"
            "\n"
            "  --ops N            operations (allocations + frees), %u..%u (default %u)\n"
            "  --seed N           the workload's seed, decimal or 0x hex (default %u): the same\n"
            "                     seed gives the same workload, every count identical\n"
            "  --allocators LIST  comma-separated, from:",
            DEMO_ARENA_SIZE >> 10, MIN_OPS, MAX_OPS, DEFAULT_OPS, DEFAULT_SEED);
    for (size_t i = 0; i < demo_subject_count; i++) {
        fprintf(f, "%s%s", i ? "," : " ", demo_subjects[i].name);
    }
    fprintf(f,
            "\n"
            "                     (default: all)\n"
            "  --json             also write the results as JSON to DIR/demo.json\n"
            "  --json=FILE        ... to FILE; --json=- to standard output (the tables and\n"
            "                     messages then go to standard error)\n"
            "  --out DIR          the report's folder, created if missing (default %s)\n"
            "  --help             this text\n"
            "\n"
            "Exit status: 0 done, 1 a run or the page failed, 2 a bad option.\n",
            DEFAULT_OUT);
}

/* ---- Options ------------------------------------------------------------- */

typedef struct {
    uint64_t ops, seed;
    bool selected[64];
    bool json;
    const char *json_path; /* NULL: DIR/demo.json; "-": stdout */
    const char *out;
} options;

static int bad(const char *fmt, const char *what)
{
    fprintf(stderr, "poolkit demo: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, " (poolkit demo --help)\n");
    return 2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || *s == ' ') {
        return false;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno != 0 || *end != '\0') {
        return false;
    }
    *out = v;
    return true;
}

static int select_allocators(const char *list, options *o)
{
    memset(o->selected, 0, sizeof o->selected);
    const char *p = list;
    bool any = false;
    while (true) {
        size_t n = strcspn(p, ",");
        if (n == 0) {
            fprintf(stderr, "poolkit demo: an empty name in --allocators '%s'\n", list);
            return 2;
        }
        size_t k = 0;
        while (k < demo_subject_count &&
               !(strlen(demo_subjects[k].name) == n && strncmp(demo_subjects[k].name, p, n) == 0)) {
            k++;
        }
        if (k == demo_subject_count) {
            fprintf(stderr, "poolkit demo: unknown allocator '%.*s' in --allocators; valid:", (int)n, p);
            for (size_t i = 0; i < demo_subject_count; i++) {
                fprintf(stderr, "%s%s", i ? "," : " ", demo_subjects[i].name);
            }
            fprintf(stderr, "\n");
            return 2;
        }
        o->selected[k] = any = true;
        if (p[n] == '\0') {
            break;
        }
        p += n + 1;
    }
    return any ? 0 : 2;
}

/* 0, or the exit status (2 after a message; -1 for --help, done). */
static int parse(int argc, char **argv, options *o)
{
    *o = (options){.ops = DEFAULT_OPS, .seed = DEFAULT_SEED, .out = DEFAULT_OUT};
    for (size_t i = 0; i < demo_subject_count; i++) {
        o->selected[i] = true;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        size_t name_len = eq && strncmp(a, "--", 2) == 0 ? (size_t)(eq - a) : strlen(a);
        const char *value = eq && strncmp(a, "--", 2) == 0 ? eq + 1 : NULL;
#define IS(opt) (name_len == strlen(opt) && strncmp(a, opt, name_len) == 0)
        if (IS("--help") || IS("-h")) {
            usage(stdout);
            return -1;
        }
        if (IS("--json")) {
            o->json = true;
            if (value != NULL) {
                if (*value == '\0') {
                    return bad("--json= needs a file name (or - for standard output)%s", "");
                }
                o->json_path = value;
            }
            continue;
        }
        bool takes = IS("--ops") || IS("--seed") || IS("--allocators") || IS("--out");
        if (!takes) {
            return bad("unknown option '%s'", a);
        }
        if (value == NULL) {
            if (i + 1 >= argc) {
                return bad("%s needs a value", a);
            }
            value = argv[++i];
        }
        if (IS("--ops")) {
            if (!parse_u64(value, &o->ops) || o->ops < MIN_OPS || o->ops > MAX_OPS) {
                fprintf(stderr, "poolkit demo: --ops '%s': need a whole number from %u to %u\n", value,
                        MIN_OPS, MAX_OPS);
                return 2;
            }
        } else if (IS("--seed")) {
            if (!parse_u64(value, &o->seed)) {
                return bad("--seed '%s': need a whole number (decimal or 0x hex) below 2^64", value);
            }
        } else if (IS("--allocators")) {
            if (*value == '\0') {
                return bad("--allocators needs a comma-separated list%s", "");
            }
            int rc = select_allocators(value, o);
            if (rc != 0) {
                return rc;
            }
        } else { /* --out */
            if (*value == '\0') {
                return bad("--out needs a folder%s", "");
            }
            o->out = value;
        }
#undef IS
    }
    return 0;
}

/* Makes dir and its parents (as mkdir -p) and checks that it is a folder
 * the demo can write in, before anything runs. 0, or 2 after a message. */
static int prepare_out(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        fprintf(stderr, "poolkit demo: --out '%s': the path is too long\n", dir);
        return 2;
    }
    for (char *p = path + 1;; p++) {
        char c = *p;
        if (c == '/' || c == '\0') {
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "poolkit demo: --out '%s': cannot make %s: %s\n", dir, path, strerror(errno));
                return 2;
            }
            *p = c;
        }
        if (c == '\0') {
            break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "poolkit demo: --out '%s': not a folder\n", dir);
        return 2;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "poolkit demo: --out '%s': cannot write there: %s\n", dir, strerror(errno));
        return 2;
    }
    return 0;
}

/* ---- The machine -------------------------------------------------------------- */

static void describe_machine(char *buf, size_t n)
{
    char model[128] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f != NULL) {
        char line[256];
        while (fgets(line, sizeof line, f) != NULL) {
            if (strncmp(line, "model name", 10) == 0 && strchr(line, ':') != NULL) {
                const char *v = strchr(line, ':') + 1;
                while (*v == ' ' || *v == '\t') {
                    v++;
                }
                snprintf(model, sizeof model, "%.*s", (int)strcspn(v, "\n"), v);
                break;
            }
        }
        fclose(f);
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    struct utsname u;
    const char *kernel = uname(&u) == 0 ? u.release : "unknown";
    snprintf(buf, n, "%s, %ld CPU%s, Linux %s", model, cpus, cpus == 1 ? "" : "s", kernel);
}

#ifdef __clang__
#define COMPILER "clang " __clang_version__
#else
#define COMPILER "gcc " __VERSION__
#endif

/* ---- Console tables --------------------------------------------------------- */

#define MAX_COLS 12
#define MAX_ROWS 16
#define CELL 40

typedef struct {
    size_t cols, rows;
    char cell[MAX_ROWS + 1][MAX_COLS][CELL]; /* row 0: the header */
} table;

static void table_header(table *t, size_t cols, const char *const *names)
{
    t->cols = cols;
    t->rows = 0;
    for (size_t c = 0; c < cols; c++) {
        snprintf(t->cell[0][c], CELL, "%s", names[c]);
    }
}

/* The cell of a row (0: the first under the header) and column. */
static char *table_cell(table *t, size_t row, size_t col) { return t->cell[row + 1][col]; }

/* A Markdown table, columns padded. */
static void table_print(FILE *f, const table *t)
{
    size_t width[MAX_COLS] = {0};
    for (size_t r = 0; r <= t->rows; r++) {
        for (size_t c = 0; c < t->cols; c++) {
            size_t n = strlen(t->cell[r][c]);
            width[c] = n > width[c] ? n : width[c];
        }
    }
    for (size_t r = 0; r <= t->rows; r++) {
        for (size_t c = 0; c < t->cols; c++) {
            fprintf(f, c == 0 ? "| %-*s |" : " %*s |", (int)width[c], t->cell[r][c]);
        }
        fprintf(f, "\n");
        if (r == 0) {
            for (size_t c = 0; c < t->cols; c++) {
                fprintf(f, c == 0 ? "|" : "");
                for (size_t k = 0; k < width[c] + 2; k++) {
                    fputc(k == width[c] + 1 && c > 0 ? ':' : '-', f);
                }
                fprintf(f, "|");
            }
            fprintf(f, "\n");
        }
    }
    fprintf(f, "\n");
}

static void fmt_ns(char *out, double ns) { snprintf(out, CELL, "%.0f", ns); }
static void fmt_frac(char *out, double a, double b)
{
    if (a < 0 || b < 0) {
        snprintf(out, CELL, "n/a");
    } else {
        snprintf(out, CELL, "%.3f / %.3f", a, b);
    }
}
static void fmt_failures(char *out, const demo_result *r)
{
    if (r->failures == 0) {
        snprintf(out, CELL, "0");
    } else {
        snprintf(out, CELL, "%" PRIu64 " (first: op %" PRIu64 ")", r->failures, r->first_failure_op);
    }
}
static void fmt_mib(char *out, uint64_t bytes) { snprintf(out, CELL, "%.2f", (double)bytes / (1 << 20)); }

/* Cells 1..6 of a row: alloc mean, p99, max, free mean, p99, max. */
static void time_cells(table *t, size_t row, const demo_result *r)
{
    const demo_latency *l[2] = {&r->alloc, &r->free};
    for (int k = 0; k < 2; k++) {
        fmt_ns(table_cell(t, row, 1 + 3 * k), l[k]->mean_ns);
        fmt_ns(table_cell(t, row, 2 + 3 * k), l[k]->p99_ns);
        fmt_ns(table_cell(t, row, 3 + 3 * k), l[k]->max_ns);
    }
}

static void print_tables(FILE *f, const demo_run *run)
{
    static table t;
    static const char *const time_cols[] = {"allocator", "alloc mean", "p99", "p99.9", "max", "max/p50",
                                            "free mean", "p99", "p99.9", "max", "max/p50"};
    table_header(&t, 11, time_cols);
    for (size_t i = 0; i < run->result_count; i++) {
        const demo_result *r = &run->results[i];
        const demo_latency *l[2] = {&r->alloc, &r->free};
        snprintf(table_cell(&t, i, 0), CELL, "%s", r->name);
        for (int k = 0; k < 2; k++) {
            fmt_ns(table_cell(&t, i, 1 + 5 * k), l[k]->mean_ns);
            fmt_ns(table_cell(&t, i, 2 + 5 * k), l[k]->p99_ns);
            fmt_ns(table_cell(&t, i, 3 + 5 * k), l[k]->p999_ns);
            fmt_ns(table_cell(&t, i, 4 + 5 * k), l[k]->max_ns);
            snprintf(table_cell(&t, i, 5 + 5 * k), CELL, "%.0f", l[k]->determinism);
        }
        t.rows++;
    }
    fprintf(f, "malloc versus memory pools: time per call in ns (determinism: max/p50)\n\n");
    table_print(f, &t);

    static const char *const mem_cols[] = {"allocator", "external frag end / worst",
                                           "internal frag end / worst", "overhead B/alloc",
                                           "peak footprint MiB", "failures"};
    table_header(&t, 6, mem_cols);
    for (size_t i = 0; i < run->result_count; i++) {
        const demo_result *r = &run->results[i];
        snprintf(table_cell(&t, i, 0), CELL, "%s", r->name);
        fmt_frac(table_cell(&t, i, 1), r->frag_external_end, r->frag_external_worst);
        fmt_frac(table_cell(&t, i, 2), r->frag_internal_end, r->frag_internal_worst);
        snprintf(table_cell(&t, i, 3), CELL, "%.1f", r->overhead_per_alloc);
        fmt_mib(table_cell(&t, i, 4), r->peak_footprint);
        fmt_failures(table_cell(&t, i, 5), r);
        t.rows++;
    }
    fprintf(f, "malloc versus memory pools: memory (fragmentation as pk_frag_external / pk_frag_internal)\n\n");
    table_print(f, &t);

    static const char *const slab_cols[] = {"allocator", "alloc mean", "p99", "max", "free mean", "p99", "max",
                                            "internal frag end / worst", "external frag end / worst",
                                            "constructed reuses", "constructor calls"};
    table_header(&t, 11, slab_cols);
    for (size_t i = 0; i < run->result_count; i++) {
        const demo_result *r = &run->results[i];
        if (strcmp(r->name, "slab") != 0 && strcmp(r->name, "buddy") != 0) {
            continue;
        }
        size_t row = t.rows++;
        snprintf(table_cell(&t, row, 0), CELL, "%s", r->name);
        time_cells(&t, row, r);
        fmt_frac(table_cell(&t, row, 7), r->frag_internal_end, r->frag_internal_worst);
        fmt_frac(table_cell(&t, row, 8), r->frag_external_end, r->frag_external_worst);
        snprintf(table_cell(&t, row, 9), CELL, "%" PRIu64, r->constructed_reuses);
        snprintf(table_cell(&t, row, 10), CELL, "%" PRIu64, r->constructor_calls);
    }
    if (t.rows > 0) {
        fprintf(f, "slab versus buddy (typed objects: slab caches constructed once; buddy: "
                   "constructed at every allocation)\n\n");
        table_print(f, &t);
    }

    static const char *const fit_cols[] = {"policy", "alloc mean", "p99", "max", "free mean", "p99", "max",
                                           "external frag end / worst", "failures", "tight arena: first failure",
                                           "live then"};
    table_header(&t, 11, fit_cols);
    uint64_t tight = 0, arena = 0;
    for (size_t i = 0; i < run->result_count; i++) {
        const demo_result *r = &run->results[i];
        if (r->tight_arena_size == 0) {
            continue;
        }
        tight = r->tight_arena_size;
        arena = r->arena_size;
        size_t row = t.rows++;
        snprintf(table_cell(&t, row, 0), CELL, "%s", strcmp(r->name, "heap") == 0 ? "heap (TLSF good fit)" : r->name);
        time_cells(&t, row, r);
        fmt_frac(table_cell(&t, row, 7), r->frag_external_end, r->frag_external_worst);
        fmt_failures(table_cell(&t, row, 8), r);
        if (r->tight_first_failure_op == 0) {
            snprintf(table_cell(&t, row, 9), CELL, "none");
            snprintf(table_cell(&t, row, 10), CELL, "-");
        } else {
            snprintf(table_cell(&t, row, 9), CELL, "op %" PRIu64, r->tight_first_failure_op);
            snprintf(table_cell(&t, row, 10), CELL, "%.1f%% of it", 100.0 * (double)r->tight_live_bytes / (double)tight);
        }
    }
    if (t.rows > 0) {
        fprintf(f, "placement policies on the same traffic: failures in the %.2f MiB arena; then the same "
                   "traffic in a %.2f MiB arena until the first failure, and the bytes live then\n\n",
                (double)arena / (1 << 20), (double)tight / (1 << 20));
        table_print(f, &t);
    }
}

/* ---- JSON ---------------------------------------------------------------------- */

/* Where the JSON goes: opened before the run, so that a bad path is found
 * at once. NULL after a message. */
static FILE *open_json(const options *o, char *path, size_t n)
{
    if (o->json_path != NULL && strcmp(o->json_path, "-") == 0) {
        snprintf(path, n, "standard output");
        return stdout;
    }
    if (o->json_path == NULL) {
        snprintf(path, n, "%s/demo.json", o->out);
    } else {
        snprintf(path, n, "%s", o->json_path);
    }
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "poolkit demo: --json: cannot write %s: %s\n", path, strerror(errno));
    }
    return f;
}

static int write_json(const demo_run *run, FILE *f, const char *path, FILE *con)
{
    int rc = report_demo_json(run, f);
    if (f == stdout ? fflush(f) != 0 : fclose(f) != 0) {
        rc = -1;
    }
    if (rc != 0) {
        fprintf(stderr, "poolkit demo: writing the JSON to %s failed\n", path);
        return -1;
    }
    if (f != stdout) {
        fprintf(con, "JSON: %s\n", path);
    }
    return 0;
}

/* ---- The run ------------------------------------------------------------------ */

static double now_s(void) { return bench_now_ns() / 1e9; }

int demo_main(int argc, char **argv)
{
    options o;
    int rc = parse(argc, argv, &o);
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    if (prepare_out(o.out) != 0) {
        return 2;
    }
    static char json_path[4096];
    FILE *json = NULL;
    if (o.json && (json = open_json(&o, json_path, sizeof json_path)) == NULL) {
        return 2;
    }
    FILE *con = json == stdout ? stderr : stdout;
    double start = now_s();

    static char machine[256], compiler[256];
    describe_machine(machine, sizeof machine);
    snprintf(compiler, sizeof compiler, "%s %s", COMPILER, PK_TOOLS_FLAGS);

    demo_workload w;
    static demo_timer timer;
    if (demo_workload_make(&w, o.seed, (size_t)o.ops) != 0 || demo_timer_init(&timer, &w) != 0) {
        fprintf(stderr, "poolkit demo: out of memory for %" PRIu64 " operations\n", o.ops);
        demo_workload_free(&w);
        if (json != NULL && json != stdout) {
            fclose(json);
        }
        return 1;
    }
    size_t arena_size = DEMO_ARENA_SIZE;
    unsigned char *arena = aligned_alloc(ARENA_ALIGN, (arena_size + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN);
    demo_result *results = calloc(demo_subject_count, sizeof *results);
    if (arena == NULL || results == NULL) {
        fprintf(stderr, "poolkit demo: out of memory\n");
        demo_workload_free(&w);
        free(arena);
        free(results);
        if (json != NULL && json != stdout) {
            fclose(json);
        }
        return 1;
    }

    demo_run run = {.seed = o.seed, .ops = o.ops, .timer = timer.description, .machine = machine,
                    .compiler = compiler, .peak_queue_depth = w.peak_queue_depth, .results = results};
    memcpy(run.allocs_by_type, w.allocs_by_type, sizeof run.allocs_by_type);

    fprintf(con, "poolkit demo: an SSD controller's firmware, %" PRIu64 " operations, seed %" PRIu64 "\n",
            o.ops, o.seed);
    fprintf(con, "  workload: %" PRIu64 " descriptors, %" PRIu64 " DMA buffers, %" PRIu64 " map pages, %" PRIu64
                 " log records, %" PRIu64 " CQEs; %" PRIu64 " host commands, queue depth up to %" PRIu64
                 "; up to %.2f MiB live in %" PRIu64 " objects\n",
            w.allocs_by_type[DEMO_DESC], w.allocs_by_type[DEMO_DMA], w.allocs_by_type[DEMO_MAP],
            w.allocs_by_type[DEMO_LOG], w.allocs_by_type[DEMO_CQE], w.commands, w.peak_queue_depth,
            (double)w.peak_live_bytes / (1 << 20), w.peak_live_objects);
    fprintf(con, "  machine: %s; %s\n  timer: %s\n", machine, compiler, timer.description);
    fprintf(con, "  arena: %.2f MiB for every poolkit allocator; malloc in its own heap\n",
            (double)arena_size / (1 << 20));
    fprintf(con, "  running:");
    fflush(con);

    rc = 0;
    for (size_t i = 0; i < demo_subject_count && rc == 0; i++) {
        const demo_subject *s = &demo_subjects[i];
        if (!o.selected[i]) {
            continue;
        }
        double t0 = now_s();
        demo_result *r = &results[run.result_count];
        if (demo_measure(s, &w, arena, arena_size, &timer, r) != 0) {
            rc = 1;
            break;
        }
        if (s->placement) {
            r->tight_arena_size = DEMO_TIGHT_ARENA_SIZE;
            if (demo_first_failure(s, &w, arena, DEMO_TIGHT_ARENA_SIZE, &r->tight_first_failure_op,
                                   &r->tight_live_bytes) != 0) {
                rc = 1;
                break;
            }
        }
        run.result_count++;
        fprintf(con, " %s (%.1f s)", s->name, now_s() - t0);
        fflush(con);
    }
    fprintf(con, "\n\n");
    run.seconds = now_s() - start;

    if (rc == 0) {
        print_tables(con, &run);
        bool page_ok = report_demo(&run, o.out) == 0;
        if (json != NULL && write_json(&run, json, json_path, con) != 0) {
            rc = 1;
        }
        json = NULL;
        if (!page_ok) {
            rc = 1;
        } else {
            fprintf(con, "The report page:\n%s/index.html\n", o.out);
        }
    }
    if (json != NULL && json != stdout) {
        fclose(json);
    }
    free(results);
    free(arena);
    demo_workload_free(&w);
    return rc;
}
