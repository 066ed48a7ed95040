#define _POSIX_C_SOURCE 200809L
/*
 * The report pages (tools/report/report.c) on a made-up demo run: the page
 * holds its tables and one inline SVG per plot, fetches nothing, escapes text,
 * prints "n/a" for what does not apply, leaves no temporary file; the JSON
 * carries every allocator and writes a non-finite number as null; failures
 * (an unwritable folder, gnuplot missing) return -1 with a message.
 *
 *   test_report OUTDIR      (the page is left in OUTDIR/demo for a look)
 */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "report/report.h"

const char *const demo_type_names[5] = {"command descriptors", "DMA buffers", "FTL map pages",
                                        "log records", "completion queue entries"};

static int failures;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "test_report:%d: %s: ", __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
            failures++;                                                    \
        }                                                                  \
    } while (0)

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

static size_t count(const char *text, const char *what)
{
    size_t n = 0, len = strlen(what);
    const char *s = text;
    while ((s = strstr(s, what)) != NULL) {
        n++;
        s += len;
    }
    return n;
}

/* Every "http" in the page is an SVG namespace name, not something to fetch. */
static int only_namespaces(const char *page)
{
    const char *s = page;
    while ((s = strstr(s, "http")) != NULL) {
        if (!((s - page >= 7 && strncmp(s - 7, "xmlns=\"", 7) == 0) ||
              (s - page >= 13 && strncmp(s - 13, "xmlns:xlink=\"", 13) == 0)))
            return 0;
        s += 4;
    }
    return 1;
}

/* No id value appears twice (several SVGs share the page). */
static int ids_unique(const char *page)
{
    char **ids = NULL;
    size_t n = 0, cap = 0, i;
    const char *s = page;
    int ok = 1;
    while ((s = strstr(s, " id=")) != NULL) {
        char quote = s[4];
        const char *start = s + 5, *end = strchr(start, quote);
        if ((quote != '"' && quote != '\'') || !end) {
            s += 4;
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(ids, cap * sizeof *ids);
            if (!grown) {
                ok = 0; /* out of memory: the ids so far are freed below */
                break;
            }
            ids = grown;
        }
        ids[n] = calloc(1, (size_t)(end - start) + 1);
        memcpy(ids[n], start, (size_t)(end - start));
        for (i = 0; i < n && ok; i++)
            if (strcmp(ids[i], ids[n]) == 0) {
                fprintf(stderr, "test_report: id '%s' twice\n", ids[n]);
                ok = 0;
            }
        n++;
        s = end;
    }
    for (i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    return ok && n > 0;
}

static int temporary_files_left(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int left = 0;
    if (!d)
        return 1;
    /* One thread: readdir_r (deprecated) buys nothing here. */
    /* cppcheck-suppress readdirCalled */
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, ".report-", 8) == 0)
            left++;
    closedir(d);
    return left;
}

/* A run shaped like the demo's: the eight allocators, malloc without
 * fragmentation figures, one allocator that failed, hostile text. */
static void fake_run(demo_run *run, demo_result *results)
{
    static const char *const names[8] = {"malloc", "classes", "heap", "fit-first",
                                         "fit-best", "fit-next", "buddy", "slab"};
    size_t i, b, j;
    memset(run, 0, sizeof *run);
    run->seed = 42;
    run->ops = 1000000;
    run->timer = "rdtsc, 2.45 GHz calibrated, overhead 9 ns subtracted";
    run->machine = "Fake CPU @ 2.4 GHz <b>&amp;</b>, 2 CPUs";
    run->compiler = "gcc 12.2 -O2 -g";
    for (i = 0; i < 5; i++)
        run->allocs_by_type[i] = 100000 * (i + 1);
    run->peak_queue_depth = 64;
    run->seconds = 3.25;
    for (i = 0; i < 8; i++) {
        demo_result *r = &results[i];
        memset(r, 0, sizeof *r);
        r->name = names[i];
        r->description = i == 0 ? "glibc malloc <script>alert('x')</script> & \"friends\""
                                : "one pool per object type";
        r->allocs = 500000 - i;
        r->frees = 499000;
        r->failures = i == 3 ? 17 : 0;
        r->first_failure_op = i == 3 ? 250000 : 0;
        r->alloc.calls = r->allocs + r->failures;
        r->alloc.mean_ns = 20.0 + (double)i;
        r->alloc.p50_ns = 18;
        r->alloc.p99_ns = 60 + 10.0 * (double)i;
        r->alloc.p999_ns = 250;
        r->alloc.max_ns = 12000 + 1000.0 * (double)i;
        r->alloc.determinism = r->alloc.max_ns / r->alloc.p50_ns;
        r->free = r->alloc;
        r->free.calls = r->frees;
        for (b = 30 + i; b < 110; b++) {
            r->alloc.hist[b] = (uint64_t)(1000000.0 / (1 + (double)((b - 30) * (b - 30))));
            r->free.hist[b] = r->alloc.hist[b] / 2;
        }
        r->frag_external_end = i == 0 ? -1 : 0.05 * (double)i;
        r->frag_external_worst = i == 0 ? -1 : 0.07 * (double)i;
        r->frag_internal_end = i == 0 ? -1 : 0.1;
        r->frag_internal_worst = i == 0 ? -1 : 0.2;
        r->overhead_per_alloc = i == 2 ? NAN : 16.0 + (double)i;
        r->peak_footprint = 3000000 + 1000 * i;
        r->arena_size = i == 0 ? 0 : 4u << 20;
        r->constructed_reuses = i >= 6 ? 400000 : 0;
        r->constructor_calls = i >= 6 ? 1000 : 0;
        if (i >= 2 && i <= 5) { /* the placement policies */
            r->tight_arena_size = 3328u << 10;
            r->tight_first_failure_op = i == 2 ? 0 : 100000 * i;
            r->tight_live_bytes = i == 2 ? 0 : 1703936;
        }
        r->series_count = DEMO_SERIES_POINTS;
        for (j = 0; j < DEMO_SERIES_POINTS; j++) {
            demo_sample *s = &r->series[j];
            s->op = (j + 1) * 5000;
            s->live_bytes = 1000000 + 10000 * (j % 37);
            s->footprint = s->live_bytes + 50000 * i;
            s->frag_external = i == 0 ? -1 : 0.01 * (double)(i + j % 10);
            s->frag_internal = i == 0 ? -1 : 0.1;
            s->queue_depth = j % 64;
        }
    }
    run->results = results;
    run->result_count = 8;
}

static void check_page(const char *dir)
{
    char path[4096];
    char *page;
    snprintf(path, sizeof path, "%s/index.html", dir);
    page = read_file(path);
    CHECK(page != NULL, "%s not written", path);
    if (!page)
        return;
    CHECK(strncmp(page, "<!DOCTYPE html>", 15) == 0, "no doctype");
    CHECK(strstr(page, "</html>\n") != NULL && strlen(strstr(page, "</html>\n")) == 8,
          "not closed");
    CHECK(count(page, "<svg") == 4 && count(page, "</svg>") == 4,
          "%zu <svg> (4 plots: alloc and free latency, fragmentation, footprint)",
          count(page, "<svg"));
    CHECK(count(page, "<table") == 7, "%zu tables, 7 expected", count(page, "<table"));
    CHECK(count(page, "<figure class=\"plot\">") == 4, "figures");
    CHECK(strstr(page, "<?xml") == NULL, "the SVG's XML prolog is left");
    CHECK(strstr(page, "src=") == NULL && strstr(page, "<link") == NULL &&
              strstr(page, "<script") == NULL && strstr(page, "@import") == NULL &&
              strstr(page, "url(http") == NULL,
          "an external reference or script");
    CHECK(only_namespaces(page), "http in something else than an SVG namespace");
    CHECK(ids_unique(page), "ids not unique across the plots");
    CHECK(strstr(page, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;friends&quot;")
              != NULL, "description not escaped");
    CHECK(strstr(page, "&lt;b&gt;&amp;amp;&lt;/b&gt;") != NULL, "machine not escaped");
    CHECK(strstr(page, ">n/a</td>") != NULL, "no n/a for malloc's fragmentation");
    CHECK(strstr(page, "<td class=\"num\">-") == NULL, "a -1 printed as a number");
    CHECK(strstr(page, "nan") == NULL && strstr(page, "inf<") == NULL, "a non-finite number");
    CHECK(strstr(page, "<td class=\"num\">250,000 (25.0 % of the run)</td>") != NULL,
          "first failure of fit-first");
    CHECK(strstr(page, "<td class=\"num\">12,000</td>") != NULL, "max ns of malloc");
    CHECK(strstr(page, "<th class=\"num\">Failures</th>") != NULL, "numeric header right-aligned");
    CHECK(strstr(page, "rdtsc, 2.45 GHz") != NULL && strstr(page, "42") != NULL &&
              strstr(page, "gcc 12.2") != NULL, "run header (timer, seed, compiler)");
    CHECK(strstr(page, "TLSF good fit (heap)") != NULL, "placement table");
    CHECK(strstr(page, "<td class=\"num\">400,000 (40.0 % of the run)</td>"
                       "<td class=\"num\">50.0 %</td>") != NULL, "tight arena of fit-best");
    CHECK(strstr(page, "in a tight 3.2 MiB arena") != NULL, "tight arena's size");
    CHECK(strstr(page, "Allocs served constructed") != NULL, "slab versus buddy table");
    CHECK(temporary_files_left(dir) == 0, "gnuplot script left in %s", dir);
    free(page);
}

/* Light JSON checks (python3 validates the real one in the end-to-end test). */
static void check_json(const demo_run *run)
{
    FILE *f = tmpfile();
    char *text;
    long n;
    size_t depth = 0, i, max_depth = 0;
    int in_string = 0, balanced = 1;
    CHECK(f != NULL, "tmpfile");
    if (!f)
        return;
    CHECK(report_demo_json(run, f) == 0, "report_demo_json failed");
    n = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)n + 1);
    CHECK(text && fread(text, 1, (size_t)n, f) == (size_t)n, "read back");
    fclose(f);
    if (!text)
        return;
    for (i = 0; text[i]; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
            else if ((unsigned char)c < 0x20)
                balanced = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            depth++;
            if (depth > max_depth)
                max_depth = depth;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                balanced = 0;
            else
                depth--;
        }
    }
    CHECK(balanced && depth == 0 && !in_string && max_depth >= 3, "JSON not balanced");
    CHECK(count(text, "\"name\": ") == 8, "8 results");
    CHECK(strstr(text, "\"name\": \"fit-next\"") != NULL, "fit-next");
    CHECK(count(text, "null") == 1, "%zu null (the one NaN expected)", count(text, "null"));
    CHECK(strstr(text, "\"overhead_per_alloc\": null") != NULL, "NaN not written as null");
    CHECK(strstr(text, "nan") == NULL && strstr(text, "inf") == NULL, "non-finite spelled");
    CHECK(strstr(text, "\"failures\": 17, \"first_failure_op\": 250000") != NULL, "failures");
    CHECK(strstr(text, "\\\"friends\\\"") != NULL, "string not escaped");
    CHECK(strstr(text, "\"command descriptors\": 100000") != NULL, "workload counts");
    CHECK(strstr(text, "\"tight_arena_size\": 3407872, \"tight_first_failure_op\": 300000, "
                       "\"tight_live_bytes\": 1703936") != NULL, "tight arena fields");
    free(text);
}

static void check_failures(const char *out)
{
    char path[4096];
    FILE *f;
    report_page *p;
    const char *old_path = getenv("PATH");
    char *saved = old_path ? strdup(old_path) : NULL;
    static const double x[] = {1, 2, 3}, y[] = {1, 4, 9};
    const report_series series = {"squares", x, y, 3};

    /* A folder that cannot be made: below a regular file. */
    snprintf(path, sizeof path, "%s/a-file", out);
    f = fopen(path, "w");
    CHECK(f != NULL, "cannot create %s", path);
    if (f)
        fclose(f);
    snprintf(path, sizeof path, "%s/a-file/sub", out);
    fprintf(stderr, "test_report: expect a message about %s:\n", path);
    CHECK(report_begin(path, "x.html", "x") == NULL, "a page below a file");

    /* gnuplot not on PATH: the plot fails and names the package. */
    snprintf(path, sizeof path, "%s/nognuplot", out);
    p = report_begin(path, "x.html", "no gnuplot");
    CHECK(p != NULL, "report_begin %s", path);
    if (!p) {
        free(saved);
        return;
    }
    setenv("PATH", "/nonexistent-dir", 1);
    fprintf(stderr, "test_report: expect a message about gnuplot missing:\n");
    CHECK(report_plot(p, "squares", "n", "n^2", 0, 0, &series, 1) == -1, "plot without gnuplot");
    if (saved)
        setenv("PATH", saved, 1);
    else
        unsetenv("PATH");
    free(saved);
    CHECK(report_end(p) == -1, "a page missing a plot ends with -1");
    CHECK(temporary_files_left(path) == 0, "script left after spawn failure");

    /* A plot with nothing plottable (log axis, values <= 0) is a note, not a failure. */
    snprintf(path, sizeof path, "%s/empty", out);
    p = report_begin(path, "x.html", "empty plot");
    CHECK(p != NULL, "report_begin %s", path);
    if (!p)
        return;
    {
        static const double zeros[] = {0, 0, 0};
        const report_series nothing = {"zeros", x, zeros, 3};
        CHECK(report_plot(p, "zeros", "x", "y", 0, 1, &nothing, 1) == 0, "empty plot");
    }
    CHECK(report_plot(p, "squares", "x", "y", 1, 1, &series, 1) == 0, "log-log plot");
    {
        const char *header[] = {"name", "value"};
        const char *cells[] = {"a", "1.5", "b", "n/a"};
        CHECK(report_table(p, 2, header, 2, cells) == 0, "table");
    }
    CHECK(report_end(p) == 0, "report_end");
    snprintf(path, sizeof path, "%s/empty/x.html", out);
    {
        char *page = read_file(path);
        CHECK(page && count(page, "<svg") == 1, "one plot of two");
        CHECK(page && strstr(page, "zeros: no data to plot.") != NULL, "empty plot's note");
        CHECK(page && strstr(page, "<th class=\"num\">value</th>") != NULL, "numeric column");
        free(page);
    }
}

int main(int argc, char **argv)
{
    static demo_result results[8];
    demo_run run;
    char dir[2048];
    if (argc != 2) {
        fprintf(stderr, "usage: test_report OUTDIR\n");
        return 2;
    }
    fake_run(&run, results);
    snprintf(dir, sizeof dir, "%s/demo", argv[1]);
    CHECK(report_demo(&run, dir) == 0, "report_demo failed");
    check_page(dir);
    check_json(&run);
    check_failures(argv[1]);
    if (failures) {
        fprintf(stderr, "test_report: %d checks failed\n", failures);
        return 1;
    }
    printf("test_report: all checks passed; page: %s/index.html\n", dir);
    return 0;
}
