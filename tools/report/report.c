#define _POSIX_C_SOURCE 200809L
/*
 * The HTML report pages (report.h): one self-contained HTML5 file per page,
 * styles inline, every plot drawn by gnuplot's SVG terminal and inlined (the
 * XML prolog stripped, the SVG's ids prefixed per plot so several plots can
 * share a page), nothing fetched when the page is opened from disk.
 *
 * gnuplot runs as a child process (posix_spawnp, no shell): its script, with
 * the data inline as `$dN << EOD` blocks, is a temporary file in the page's
 * folder, removed afterwards (kept, and named, if gnuplot fails); the SVG is
 * read from its standard output.
 *
 * Also the demo's page (report_demo) and its JSON (report_demo_json).
 */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define PLOT_WIDTH 960
#define PLOT_HEIGHT 440

struct report_page {
    FILE *f;
    char *dir;
    char *path;
    unsigned plots;   /* plots drawn so far: the prefix of each one's SVG ids */
    int failed;       /* a function failed: the page is incomplete */
};

/* ---- Small helpers ------------------------------------------------------ */

static char *dup_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* The length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t utf8_length(const unsigned char *s)
{
    size_t n, i;
    uint32_t c;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2;
        c = s[0] & 0x1fu;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3;
        c = s[0] & 0x0fu;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4;
        c = s[0] & 0x07u;
    } else {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3fu);
    }
    /* overlong forms, surrogates, beyond U+10FFFF */
    if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
        (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
        return 0;
    return n;
}

/* Text as HTML (element content and quoted attribute values). Invalid UTF-8
 * becomes U+FFFD, control characters other than tab and newline a space. */
static void put_html(FILE *f, const char *text)
{
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    while (*s) {
        size_t n = utf8_length(s);
        if (n == 0) {
            fputs("\xef\xbf\xbd", f);
            s++;
            continue;
        }
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            if (*s < 0x20 && *s != '\t' && *s != '\n')
                fputc(' ', f);
            else
                fwrite(s, 1, n, f);
        }
        s += n;
    }
}

/* Text as a JSON string, quotes included; NULL as null. */
static void put_json_string(FILE *f, const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    if (!text) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    while (*s) {
        size_t n = utf8_length(s);
        if (n == 0) {
            fputs("\\ufffd", f);
            s++;
            continue;
        }
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", f);
        else if (*s == '\t')
            fputs("\\t", f);
        else if (*s < 0x20 || *s == 0x7f)
            fprintf(f, "\\u%04x", *s);
        else
            fwrite(s, 1, n, f);
        s += n;
    }
    fputc('"', f);
}

/* Text as a gnuplot double-quoted string, quotes included. */
static void put_gnuplot_string(FILE *f, const char *text)
{
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if (*s < 0x20)
            fputc(' ', f);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

/* mkdir -p */
static int make_dirs(const char *dir)
{
    char *path = dup_string(dir);
    char *p;
    struct stat st;
    if (!path) {
        fprintf(stderr, "report: out of memory\n");
        return -1;
    }
    for (p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "report: cannot create directory %s: %s\n", path, strerror(errno));
                free(path);
                return -1;
            }
            *p = c;
            if (c == '\0')
                break;
        }
    }
    free(path);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "report: %s is not a directory\n", dir);
        return -1;
    }
    return 0;
}

/* Checks the page's stream after writing: -1 (and a message, once) if a
 * write failed or an earlier call did. */
static int page_status(report_page *p)
{
    if (!p->failed && ferror(p->f)) {
        fprintf(stderr, "report: cannot write %s\n", p->path);
        p->failed = 1;
    }
    return p->failed ? -1 : 0;
}

/* ---- The page ----------------------------------------------------------- */

static const char page_style[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
    "color:#1b1f23;background:#fff;margin:0 auto;padding:1.5rem 2rem 3rem;max-width:1280px;"
    "line-height:1.45}\n"
    "h1{font-size:1.6rem;margin:.2rem 0 1rem}\n"
    "h2{font-size:1.25rem;margin:2.2rem 0 .6rem;padding-bottom:.25rem;"
    "border-bottom:1px solid #d0d7de}\n"
    "p{max-width:60rem}\n"
    ".table-wrap{overflow-x:auto;margin:.6rem 0 1rem}\n"
    "table{border-collapse:collapse;font-size:.9rem}\n"
    "th,td{padding:.3rem .65rem;border:1px solid #d0d7de;vertical-align:top}\n"
    "th{background:#f3f5f7;text-align:left;font-weight:600}\n"
    "tbody tr:nth-child(even){background:#fafbfc}\n"
    "th{vertical-align:bottom;max-width:9rem}\n"
    "td:first-child{white-space:nowrap}\n"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    "td.num{white-space:nowrap}\n"
    "figure.plot{margin:1rem 0 1.5rem}\n"
    "figure.plot svg{display:block;width:100%;max-width:960px;height:auto;"
    "border:1px solid #e1e4e8}\n"
    "p.note{color:#57606a;font-size:.9rem}\n"
    "footer{margin-top:3rem;color:#57606a;font-size:.85rem}\n";

report_page *report_begin(const char *dir, const char *file, const char *title)
{
    report_page *p;
    size_t n;
    if (!dir || !*dir || !file || !*file) {
        fprintf(stderr, "report: no output directory or file name\n");
        return NULL;
    }
    if (make_dirs(dir) != 0)
        return NULL;
    p = calloc(1, sizeof *p);
    n = strlen(dir) + strlen(file) + 2;
    if (!p || !(p->dir = dup_string(dir)) || !(p->path = malloc(n))) {
        fprintf(stderr, "report: out of memory\n");
        if (p)
            free(p->dir);
        free(p);
        return NULL;
    }
    snprintf(p->path, n, "%s/%s", dir, file);
    p->f = fopen(p->path, "w");
    if (!p->f) {
        fprintf(stderr, "report: cannot write %s: %s\n", p->path, strerror(errno));
        free(p->path);
        free(p->dir);
        free(p);
        return NULL;
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          p->f);
    put_html(p->f, title);
    fprintf(p->f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>", page_style);
    put_html(p->f, title);
    fputs("</h1>\n", p->f);
    if (page_status(p) != 0) {
        fclose(p->f);
        free(p->path);
        free(p->dir);
        free(p);
        return NULL;
    }
    return p;
}

int report_heading(report_page *p, const char *text)
{
    fputs("<h2>", p->f);
    put_html(p->f, text);
    fputs("</h2>\n", p->f);
    return page_status(p);
}

int report_paragraph(report_page *p, const char *text)
{
    fputs("<p>", p->f);
    put_html(p->f, text);
    fputs("</p>\n", p->f);
    return page_status(p);
}

/* A note (smaller, grey), escaped. */
static int report_note(report_page *p, const char *text)
{
    fputs("<p class=\"note\">", p->f);
    put_html(p->f, text);
    fputs("</p>\n", p->f);
    return page_status(p);
}

/* A cell reads as a number: an optional sign, then a digit ("12.5", "-3",
 * "4,096 B", "1.2 %"), or a "not applicable" mark. */
static int looks_numeric(const char *s)
{
    if (!s)
        return 0;
    if (*s == '-' || *s == '+')
        s++;
    return (*s >= '0' && *s <= '9') || strcmp(s, "n/a") == 0 || strcmp(s, "none") == 0;
}

int report_table(report_page *p, size_t columns, const char *const *header,
                 size_t rows, const char *const *cells)
{
    size_t r, c;
    fputs("<div class=\"table-wrap\"><table>\n<thead><tr>", p->f);
    for (c = 0; c < columns; c++) {
        /* A column of numbers is right-aligned, header included (the first
         * column holds row names). */
        int numeric = c > 0 && rows > 0;
        for (r = 0; r < rows && numeric; r++)
            numeric = looks_numeric(cells[r * columns + c]);
        fputs(numeric ? "<th class=\"num\">" : "<th>", p->f);
        put_html(p->f, header ? header[c] : "");
        fputs("</th>", p->f);
    }
    fputs("</tr></thead>\n<tbody>\n", p->f);
    for (r = 0; r < rows; r++) {
        fputs("<tr>", p->f);
        for (c = 0; c < columns; c++) {
            const char *cell = cells[r * columns + c];
            fputs(c > 0 && looks_numeric(cell) ? "<td class=\"num\">" : "<td>", p->f);
            put_html(p->f, cell);
            fputs("</td>", p->f);
        }
        fputs("</tr>\n", p->f);
    }
    fputs("</tbody>\n</table></div>\n", p->f);
    return page_status(p);
}

/* ---- Plots -------------------------------------------------------------- */

static int plottable(double x, double y, int log_x, int log_y)
{
    return isfinite(x) && isfinite(y) && (!log_x || x > 0) && (!log_y || y > 0);
}

/* Every x is a whole number. */
static int integral_x(const report_series *series, size_t series_count)
{
    size_t s, i;
    for (s = 0; s < series_count; s++) {
        for (i = 0; i < series[s].count; i++) {
            double x = series[s].x[i];
            if (isfinite(x) && (x > 9e18 || x < -9e18 || x != (double)(long long)x))
                return 0;
        }
    }
    return 1;
}

/* Series colours (the points differ too, for grey-scale prints). */
static const char *const plot_colours[] = {
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
    "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22",
};
#define PLOT_COLOURS (sizeof plot_colours / sizeof plot_colours[0])

/* Writes the gnuplot script. Returns the number of series with points. */
static size_t write_plot_script(FILE *gp, const char *title, const char *x_label,
                                const char *y_label, int log_x, int log_y,
                                const report_series *series, size_t series_count)
{
    size_t s, i, drawn = 0;
    fprintf(gp, "set terminal svg size %d,%d dynamic enhanced font 'sans,12' "
                "background '#ffffff'\n", PLOT_WIDTH, PLOT_HEIGHT);
    fputs("set encoding utf8\nset title ", gp);
    put_gnuplot_string(gp, title);
    fputs(" noenhanced font 'sans,14'\nset xlabel ", gp);
    put_gnuplot_string(gp, x_label);
    fputs(" noenhanced\nset ylabel ", gp);
    put_gnuplot_string(gp, y_label);
    fputs(" noenhanced\n", gp);
    fputs("set grid xtics ytics mxtics mytics lc rgb '#e0e0e0' lw 1, lc rgb '#f2f2f2' lw 1\n"
          "set key outside right top vertical Left reverse noenhanced\n"
          /* the same plot area in every plot, whatever the key's width */
          "set lmargin at screen 0.09\nset rmargin at screen 0.76\n"
          "set border 3\nset tics nomirror\nset format y '%g'\n", gp);
    if (log_x)
        fputs("set logscale x 10\n", gp);
    /* Counts (operations) in full, not as 1x10^6. */
    fputs(integral_x(series, series_count) ? "set format x '%.0f'\n" : "set format x '%g'\n", gp);
    if (log_y)
        fputs("set logscale y 10\n", gp);
    for (s = 0; s < PLOT_COLOURS; s++)
        fprintf(gp, "set linetype %zu lc rgb '%s' lw 2 pt %zu ps 0.5\n", s + 1, plot_colours[s],
                (s % 7) * 2 + 5);
    fprintf(gp, "set linetype cycle %zu\n", PLOT_COLOURS);
    for (s = 0; s < series_count; s++) {
        size_t points = 0;
        for (i = 0; i < series[s].count; i++)
            points += (size_t)plottable(series[s].x[i], series[s].y[i], log_x, log_y);
        if (points == 0)
            continue;
        fprintf(gp, "$d%zu << EOD\n", s);
        for (i = 0; i < series[s].count; i++)
            if (plottable(series[s].x[i], series[s].y[i], log_x, log_y))
                fprintf(gp, "%.9g %.9g\n", series[s].x[i], series[s].y[i]);
        fputs("EOD\n", gp);
        drawn++;
    }
    if (drawn == 0)
        return 0;
    fputs("plot", gp);
    drawn = 0;
    for (s = 0; s < series_count; s++) {
        size_t points = 0;
        for (i = 0; i < series[s].count; i++)
            points += (size_t)plottable(series[s].x[i], series[s].y[i], log_x, log_y);
        if (points == 0)
            continue;
        /* The same colour for a series' index in every plot; markers on
         * about a dozen of its points. */
        fprintf(gp, "%s $d%zu using 1:2 with linespoints lt %zu pi %zu title ",
                drawn ? ", \\\n    " : "", s, s % PLOT_COLOURS + 1, points / 12 + 1);
        put_gnuplot_string(gp, series[s].name);
        drawn++;
    }
    fputs("\n", gp);
    return drawn;
}

/* Runs `gnuplot SCRIPT`, its standard output read into *out (NUL-terminated).
 * 0; -1 after a message; -2 (after a message) if gnuplot could not be run. */
static int run_gnuplot(const char *script, char **out, size_t *out_len)
{
    int pipefd[2], status, err;
    pid_t pid;
    posix_spawn_file_actions_t actions;
    char *argv[3];
    char *buf = NULL;
    size_t len = 0, cap = 0;
    ssize_t got;

    *out = NULL;
    *out_len = 0;
    if (pipe(pipefd) != 0) {
        fprintf(stderr, "report: pipe: %s\n", strerror(errno));
        return -1;
    }
    fcntl(pipefd[0], F_SETFD, FD_CLOEXEC);
    fcntl(pipefd[1], F_SETFD, FD_CLOEXEC);
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, pipefd[1], 1);
    argv[0] = (char *)"gnuplot";
    argv[1] = (char *)script;
    argv[2] = NULL;
    err = posix_spawnp(&pid, "gnuplot", &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(pipefd[1]);
    if (err != 0) {
        close(pipefd[0]);
        if (err == ENOENT)
            fprintf(stderr, "report: gnuplot not found on PATH: install the Debian package "
                            "gnuplot-nox (scripts/deps.sh build does)\n");
        else
            fprintf(stderr, "report: cannot run gnuplot: %s\n", strerror(err));
        return -2;
    }
    for (;;) {
        if (cap - len < 65536) {
            char *bigger = realloc(buf, cap + 262144);
            if (!bigger)
                break;
            buf = bigger;
            cap += 262144;
        }
        got = read(pipefd[0], buf + len, cap - len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(pipefd[0]);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "report: waiting for gnuplot: %s\n", strerror(errno));
            free(buf);
            return -1;
        }
    }
    if (!buf) {
        fprintf(stderr, "report: out of memory reading gnuplot's output\n");
        return -1;
    }
    buf[len] = '\0';
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        *out = buf;
        *out_len = len;
        return 0;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        /* The spawned child could not exec gnuplot (where posix_spawnp cannot
         * report it, e.g. under valgrind). */
        fprintf(stderr, "report: gnuplot could not be run (exit status 127): install the Debian "
                        "package gnuplot-nox (scripts/deps.sh build does)\n");
        free(buf);
        return -2;
    }
    if (WIFEXITED(status))
        fprintf(stderr, "report: gnuplot failed (exit status %d) on %s\n", WEXITSTATUS(status),
                script);
    else
        fprintf(stderr, "report: gnuplot killed by signal %d on %s\n",
                WIFSIGNALED(status) ? WTERMSIG(status) : 0, script);
    free(buf);
    return -1;
}

/* Writes gnuplot's SVG into the page: from "<svg" to the end of "</svg>",
 * its ids and references to them prefixed with "pN-", its <title> the plot's,
 * and role/aria-label on the element. */
static void put_svg(report_page *p, const char *svg, const char *end, const char *title)
{
    static const char *const id_marks[] = {" id='", " id=\"", "href='#", "href=\"#", "url(#"};
    char prefix[32];
    const char *s = svg;
    size_t k;
    snprintf(prefix, sizeof prefix, "p%u-", p->plots);
    fputs("<figure class=\"plot\">\n<svg role=\"img\" aria-label=\"", p->f);
    put_html(p->f, title);
    fputs("\"", p->f);
    s += 4; /* "<svg" */
    while (s < end) {
        int matched = 0;
        if (strncmp(s, "<title>", 7) == 0) {
            const char *close = strstr(s, "</title>");
            if (close && close < end) {
                fputs("<title>", p->f);
                put_html(p->f, title);
                fputs("</title>", p->f);
                s = close + 8;
                continue;
            }
        }
        for (k = 0; k < sizeof id_marks / sizeof id_marks[0]; k++) {
            size_t n = strlen(id_marks[k]);
            if (strncmp(s, id_marks[k], n) == 0) {
                fwrite(s, 1, n, p->f);
                fputs(prefix, p->f);
                s += n;
                matched = 1;
                break;
            }
        }
        if (!matched)
            fputc(*s++, p->f);
    }
    fputs("\n</figure>\n", p->f);
}

int report_plot(report_page *p, const char *title, const char *x_label, const char *y_label,
                int log_x, int log_y, const report_series *series, size_t series_count)
{
    char *script, *svg = NULL;
    const char *start, *end;
    size_t n, drawn, svg_len;
    int fd, rc;
    FILE *gp;

    n = strlen(p->dir) + 32;
    script = malloc(n);
    if (!script) {
        fprintf(stderr, "report: out of memory\n");
        p->failed = 1;
        return -1;
    }
    snprintf(script, n, "%s/.report-plot-XXXXXX", p->dir);
    fd = mkstemp(script);
    if (fd < 0 || !(gp = fdopen(fd, "w"))) {
        fprintf(stderr, "report: cannot create a temporary file in %s: %s\n", p->dir,
                strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(script);
        }
        free(script);
        p->failed = 1;
        return -1;
    }
    drawn = write_plot_script(gp, title, x_label, y_label, log_x, log_y, series, series_count);
    rc = ferror(gp) ? -1 : 0;
    if (fclose(gp) != 0 || rc != 0) {
        fprintf(stderr, "report: cannot write %s\n", script);
        unlink(script);
        free(script);
        p->failed = 1;
        return -1;
    }
    if (drawn == 0) { /* nothing measured: say so instead of an empty frame */
        unlink(script);
        free(script);
        fputs("<p class=\"note\">", p->f);
        put_html(p->f, title);
        fputs(": no data to plot.</p>\n", p->f);
        return page_status(p);
    }
    rc = run_gnuplot(script, &svg, &svg_len);
    if (rc == 0) {
        start = strstr(svg, "<svg");
        end = start ? strstr(start, "</svg>") : NULL;
        if (!end) {
            fprintf(stderr, "report: gnuplot wrote no SVG for '%s' (script %s)\n",
                    title ? title : "", script);
            rc = -1;
        } else {
            p->plots++;
            put_svg(p, start, end + 6, title);
        }
    }
    if (rc == -1) /* gnuplot ran and failed: its script helps to see why */
        fprintf(stderr, "report: the plot's gnuplot script is kept: %s\n", script);
    else
        unlink(script);
    free(svg);
    free(script);
    if (rc != 0) {
        p->failed = 1;
        return -1;
    }
    return page_status(p);
}

int report_end(report_page *p)
{
    int rc;
    if (!p)
        return -1;
    fputs("<footer>Made by <code>poolkit</code>; plots drawn by gnuplot. "
          "This page is self-contained: it opens from disk and fetches nothing.</footer>\n"
          "</body>\n</html>\n", p->f);
    rc = page_status(p);
    if (fclose(p->f) != 0 && rc == 0) {
        fprintf(stderr, "report: cannot write %s: %s\n", p->path, strerror(errno));
        rc = -1;
    }
    free(p->path);
    free(p->dir);
    free(p);
    return rc;
}

/* ---- The demo's page ---------------------------------------------------- */

#define CELL 256

/* A table being filled: rows x columns cells of CELL bytes. */
typedef struct {
    size_t columns, rows, capacity;
    char (*text)[CELL];
    const char **cells;
} table;

static int table_init(table *t, size_t columns, size_t max_rows)
{
    t->columns = columns;
    t->rows = 0;
    t->capacity = max_rows;
    t->text = calloc(columns * (max_rows ? max_rows : 1), CELL);
    t->cells = calloc(columns * (max_rows ? max_rows : 1), sizeof *t->cells);
    if (!t->text || !t->cells) {
        free(t->text);
        free(t->cells);
        fprintf(stderr, "report: out of memory\n");
        return -1;
    }
    return 0;
}

/* The next cell of the current row (a new row starts every `columns`). */
static char *table_cell(table *t, size_t row, size_t column)
{
    size_t i = row * t->columns + column;
    t->cells[i] = t->text[i];
    if (row + 1 > t->rows)
        t->rows = row + 1;
    return t->text[i];
}

static int table_put(report_page *p, table *t, const char *const *header)
{
    int rc = report_table(p, t->columns, header, t->rows, t->cells);
    free(t->text);
    free(t->cells);
    return rc;
}

static void cell_text(char *out, const char *text)
{
    snprintf(out, CELL, "%s", text ? text : "");
}

/* 1234567 -> "1,234,567" */
static void cell_count(char *out, uint64_t v)
{
    char digits[32], *o = out;
    int n = snprintf(digits, sizeof digits, "%" PRIu64, v), i;
    for (i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            *o++ = ',';
        *o++ = digits[i];
    }
    *o = '\0';
}

/* A negative or non-finite value is "not applicable": "n/a", and 1. */
static int cell_na(char *out, double v)
{
    if (isfinite(v) && v >= 0)
        return 0;
    snprintf(out, CELL, "n/a");
    return 1;
}

/* Nanoseconds. */
static void cell_ns(char *out, double v)
{
    if (cell_na(out, v))
        return;
    if (v < 10)
        snprintf(out, CELL, "%.2f", v);
    else if (v < 1000)
        snprintf(out, CELL, "%.1f", v);
    else
        cell_count(out, (uint64_t)(v + 0.5));
}

/* A latency field of a histogram that saw no calls is not applicable. */
static void cell_latency(char *out, const demo_latency *l, double v)
{
    cell_ns(out, l->calls ? v : -1);
}

/* A fraction as a percentage. */
static void cell_fraction(char *out, double v)
{
    if (!cell_na(out, v))
        snprintf(out, CELL, "%.1f %%", v * 100);
}

static void cell_ratio(char *out, double v)
{
    if (!cell_na(out, v))
        snprintf(out, CELL, "%.1f\xc3\x97", v); /* U+00D7 multiplication sign */
}

static void cell_bytes(char *out, double v)
{
    if (cell_na(out, v))
        return;
    if (v < 100)
        snprintf(out, CELL, "%.1f B", v);
    else if (v < 1024.0)
        snprintf(out, CELL, "%.0f B", v);
    else if (v < 1048576.0)
        snprintf(out, CELL, "%.1f KiB", v / 1024);
    else
        snprintf(out, CELL, "%.1f MiB", v / 1048576);
}

/* An operation index (1-based; 0: never) and where it falls in the run. */
static void cell_failure_op(char *out, const demo_run *run, uint64_t op)
{
    char count[32];
    if (op == 0) {
        snprintf(out, CELL, "none");
        return;
    }
    cell_count(count, op);
    if (run->ops)
        snprintf(out, CELL, "%s (%.1f %% of the run)", count,
                 100.0 * (double)op / (double)run->ops);
    else
        snprintf(out, CELL, "%s", count);
}

static const demo_result *find_result(const demo_run *run, const char *name)
{
    size_t i;
    for (i = 0; i < run->result_count; i++)
        if (run->results[i].name && strcmp(run->results[i].name, name) == 0)
            return &run->results[i];
    return NULL;
}

static const char *result_name(const demo_result *r)
{
    return r->name ? r->name : "?";
}

/* The run: seed, size, machine, compiler, timer. */
static int demo_header(report_page *p, const demo_run *run)
{
    static const char *const header[] = {"Run", ""};
    char buf[CELL];
    table t;
    size_t row = 0;
    if (table_init(&t, 2, 8) != 0)
        return -1;
    cell_text(table_cell(&t, row, 0), "seed");
    snprintf(table_cell(&t, row++, 1), CELL, "%" PRIu64, run->seed);
    cell_text(table_cell(&t, row, 0), "operations (allocs + frees)");
    cell_count(table_cell(&t, row++, 1), run->ops);
    cell_text(table_cell(&t, row, 0), "allocators");
    snprintf(table_cell(&t, row++, 1), CELL, "%zu", run->result_count);
    cell_text(table_cell(&t, row, 0), "wall time of the demo");
    snprintf(buf, sizeof buf, "%.1f s", run->seconds);
    cell_text(table_cell(&t, row++, 1), isfinite(run->seconds) && run->seconds >= 0 ? buf : "n/a");
    if (table_put(p, &t, header) != 0)
        return -1;
    /* Free text of any length: escaped, one line each. */
    fputs("<p class=\"note\"><b>Machine:</b> ", p->f);
    put_html(p->f, run->machine ? run->machine : "unknown");
    fputs("<br>\n<b>Compiler:</b> ", p->f);
    put_html(p->f, run->compiler ? run->compiler : "unknown");
    fputs("<br>\n<b>Timer:</b> ", p->f);
    put_html(p->f, run->timer ? run->timer : "unknown");
    fputs("</p>\n", p->f);
    return page_status(p);
}

static int demo_workload(report_page *p, const demo_run *run)
{
    static const char *const header[] = {"Object type", "Allocations", "Share"};
    uint64_t total = 0;
    table t;
    size_t i;
    char buf[96];
    for (i = 0; i < 5; i++)
        total += run->allocs_by_type[i];
    if (report_heading(p, "The workload") != 0 ||
        report_paragraph(p, "The memory traffic of an SSD controller's firmware over a long "
                            "uptime, the same for every allocator (same seed): command "
                            "descriptors, DMA buffers, flash-translation-layer map pages, log "
                            "records and completion queue entries, with a queue depth that "
                            "rises and falls in bursts and idle phases.") != 0 ||
        table_init(&t, 3, 6) != 0)
        return -1;
    for (i = 0; i < 5; i++) {
        cell_text(table_cell(&t, i, 0), demo_type_names[i]);
        cell_count(table_cell(&t, i, 1), run->allocs_by_type[i]);
        cell_fraction(table_cell(&t, i, 2),
                      total ? (double)run->allocs_by_type[i] / (double)total : -1);
    }
    cell_text(table_cell(&t, 5, 0), "all");
    cell_count(table_cell(&t, 5, 1), total);
    cell_fraction(table_cell(&t, 5, 2), total ? 1.0 : -1);
    if (table_put(p, &t, header) != 0)
        return -1;
    cell_count(buf, run->peak_queue_depth);
    fputs("<p>Peak queue depth: ", p->f);
    put_html(p->f, buf);
    fputs(" commands in flight.</p>\n", p->f);
    return page_status(p);
}

static int demo_allocators(report_page *p, const demo_run *run)
{
    static const char *const header[] = {"Allocator", "What serves which object",
                                         "Arena", "Allocations", "Frees"};
    table t;
    size_t i;
    if (report_heading(p, "The allocators") != 0 || table_init(&t, 5, run->result_count) != 0)
        return -1;
    for (i = 0; i < run->result_count; i++) {
        const demo_result *r = &run->results[i];
        cell_text(table_cell(&t, i, 0), result_name(r));
        cell_text(table_cell(&t, i, 1), r->description);
        if (r->arena_size)
            cell_bytes(table_cell(&t, i, 2), (double)r->arena_size);
        else
            cell_text(table_cell(&t, i, 2), "n/a");
        cell_count(table_cell(&t, i, 3), r->allocs);
        cell_count(table_cell(&t, i, 4), r->frees);
    }
    return table_put(p, &t, header);
}

/* malloc versus the memory pools: every allocator. */
static int demo_malloc_vs_pools(report_page *p, const demo_run *run)
{
    static const char *const header[] = {
        "Allocator", "Alloc mean ns", "p99 ns", "p99.9 ns", "max ns", "Determinism (max/median)",
        "Ext. frag. end", "Ext. frag. worst", "Int. frag. end", "Int. frag. worst",
        "Overhead per alloc", "Peak footprint", "Failures"};
    static const char *const free_header[] = {"Allocator", "Free calls", "Free mean ns",
                                              "p99 ns", "p99.9 ns", "max ns",
                                              "Determinism (max/median)"};
    table t;
    size_t i;
    if (report_heading(p, "malloc versus memory pools") != 0 ||
        report_paragraph(p, "Allocation time per call (the timer's own overhead subtracted); "
                            "determinism is the slowest call over the median one (lower is "
                            "more predictable). External fragmentation is 1 - largest free "
                            "block / free bytes, internal 1 - bytes requested / bytes granted, "
                            "at the end of the run and at the worst sampled point (n/a: glibc "
                            "malloc does not expose them). Overhead: bytes held beyond the "
                            "requests per live object at the peak (headers, rounding, maps). "
                            "Failures: NULL returns over the uptime.") != 0 ||
        table_init(&t, 13, run->result_count) != 0)
        return -1;
    for (i = 0; i < run->result_count; i++) {
        const demo_result *r = &run->results[i];
        cell_text(table_cell(&t, i, 0), result_name(r));
        cell_latency(table_cell(&t, i, 1), &r->alloc, r->alloc.mean_ns);
        cell_latency(table_cell(&t, i, 2), &r->alloc, r->alloc.p99_ns);
        cell_latency(table_cell(&t, i, 3), &r->alloc, r->alloc.p999_ns);
        cell_latency(table_cell(&t, i, 4), &r->alloc, r->alloc.max_ns);
        cell_ratio(table_cell(&t, i, 5), r->alloc.calls ? r->alloc.determinism : -1);
        cell_fraction(table_cell(&t, i, 6), r->frag_external_end);
        cell_fraction(table_cell(&t, i, 7), r->frag_external_worst);
        cell_fraction(table_cell(&t, i, 8), r->frag_internal_end);
        cell_fraction(table_cell(&t, i, 9), r->frag_internal_worst);
        cell_bytes(table_cell(&t, i, 10), r->overhead_per_alloc);
        cell_bytes(table_cell(&t, i, 11), (double)r->peak_footprint);
        cell_count(table_cell(&t, i, 12), r->failures);
    }
    if (table_put(p, &t, header) != 0 || table_init(&t, 7, run->result_count) != 0)
        return -1;
    for (i = 0; i < run->result_count; i++) {
        const demo_result *r = &run->results[i];
        cell_text(table_cell(&t, i, 0), result_name(r));
        cell_count(table_cell(&t, i, 1), r->free.calls);
        cell_latency(table_cell(&t, i, 2), &r->free, r->free.mean_ns);
        cell_latency(table_cell(&t, i, 3), &r->free, r->free.p99_ns);
        cell_latency(table_cell(&t, i, 4), &r->free, r->free.p999_ns);
        cell_latency(table_cell(&t, i, 5), &r->free, r->free.max_ns);
        cell_ratio(table_cell(&t, i, 6), r->free.calls ? r->free.determinism : -1);
    }
    if (report_paragraph(p, "Free time per call:") != 0)
        return -1;
    return table_put(p, &t, free_header);
}

/* Slab caches versus the buddy allocator. */
static int demo_slab_vs_buddy(report_page *p, const demo_run *run)
{
    static const char *const header[] = {
        "Allocator", "Alloc mean ns", "Alloc p99 ns", "Free mean ns", "Int. frag. end",
        "Int. frag. worst", "Constructed objects reused", "Constructor calls",
        "Allocs served constructed", "Ext. frag. end", "Ext. frag. worst"};
    static const char *const names[] = {"slab", "buddy"};
    table t;
    size_t i, row = 0;
    if (report_heading(p, "Slab caches versus buddy") != 0)
        return -1;
    if (report_paragraph(p, "Slab caches hand out typed objects already constructed (the "
                            "constructor ran when the slab was made, not at each allocation); "
                            "the buddy allocator rounds every request up to a power of two "
                            "and splits and merges blocks.") != 0 ||
        table_init(&t, 11, 2) != 0)
        return -1;
    for (i = 0; i < 2; i++) {
        const demo_result *r = find_result(run, names[i]);
        if (!r)
            continue;
        cell_text(table_cell(&t, row, 0), result_name(r));
        cell_latency(table_cell(&t, row, 1), &r->alloc, r->alloc.mean_ns);
        cell_latency(table_cell(&t, row, 2), &r->alloc, r->alloc.p99_ns);
        cell_latency(table_cell(&t, row, 3), &r->free, r->free.mean_ns);
        cell_fraction(table_cell(&t, row, 4), r->frag_internal_end);
        cell_fraction(table_cell(&t, row, 5), r->frag_internal_worst);
        cell_count(table_cell(&t, row, 6), r->constructed_reuses);
        cell_count(table_cell(&t, row, 7), r->constructor_calls);
        cell_fraction(table_cell(&t, row, 8),
                      r->allocs ? (double)r->constructed_reuses / (double)r->allocs : -1);
        cell_fraction(table_cell(&t, row, 9), r->frag_external_end);
        cell_fraction(table_cell(&t, row, 10), r->frag_external_worst);
        row++;
    }
    if (row == 0) {
        free(t.text);
        free(t.cells);
        return report_note(p, "Neither slab nor buddy ran (see --allocators).");
    }
    return table_put(p, &t, header);
}

/* The placement policies on one fixed arena, then on a tight one until the
 * first failure. */
static int demo_policies(report_page *p, const demo_run *run)
{
    static const char *const header[] = {
        "Policy", "Alloc mean ns", "p99 ns", "max ns", "Free mean ns", "Ext. frag. end",
        "Ext. frag. worst", "Failures", "First failure at op", "Tight arena: first failure at op",
        "Live then (share of the tight arena)"};
    static const char *const names[] = {"fit-first", "fit-best", "fit-next", "heap"};
    static const char *const labels[] = {"first fit (fit-first)", "best fit (fit-best)",
                                         "next fit (fit-next)", "TLSF good fit (heap)"};
    char text[1280], arena[CELL] = "n/a", tight[CELL] = "n/a";
    table t;
    size_t i, row = 0;
    for (i = 0; i < 4; i++) {
        const demo_result *r = find_result(run, names[i]);
        if (r && r->arena_size)
            cell_bytes(arena, (double)r->arena_size);
        if (r && r->tight_arena_size)
            cell_bytes(tight, (double)r->tight_arena_size);
    }
    snprintf(text, sizeof text,
             "The free-list heap in each policy and the O(1) TLSF heap on the same traffic: "
             "failures (NULL returns) in the %s arena every allocator ran in, and the "
             "operation of the first one (none: it never failed); then the same traffic "
             "replayed in a tight %s arena until its first failure, and the bytes that live "
             "objects had requested at that point: the larger that share, the better the "
             "policy packs.", arena, tight);
    if (report_heading(p, "Placement policies") != 0 || report_paragraph(p, text) != 0 ||
        table_init(&t, 11, 4) != 0)
        return -1;
    for (i = 0; i < 4; i++) {
        const demo_result *r = find_result(run, names[i]);
        if (!r)
            continue;
        cell_text(table_cell(&t, row, 0), labels[i]);
        cell_latency(table_cell(&t, row, 1), &r->alloc, r->alloc.mean_ns);
        cell_latency(table_cell(&t, row, 2), &r->alloc, r->alloc.p99_ns);
        cell_latency(table_cell(&t, row, 3), &r->alloc, r->alloc.max_ns);
        cell_latency(table_cell(&t, row, 4), &r->free, r->free.mean_ns);
        cell_fraction(table_cell(&t, row, 5), r->frag_external_end);
        cell_fraction(table_cell(&t, row, 6), r->frag_external_worst);
        cell_count(table_cell(&t, row, 7), r->failures);
        cell_failure_op(table_cell(&t, row, 8), run, r->first_failure_op);
        if (r->tight_arena_size == 0) {
            cell_text(table_cell(&t, row, 9), "n/a");
            cell_text(table_cell(&t, row, 10), "n/a");
        } else {
            cell_failure_op(table_cell(&t, row, 9), run, r->tight_first_failure_op);
            if (r->tight_first_failure_op == 0)
                cell_text(table_cell(&t, row, 10), "n/a");
            else
                cell_fraction(table_cell(&t, row, 10),
                              (double)r->tight_live_bytes / (double)r->tight_arena_size);
        }
        row++;
    }
    if (row == 0) {
        free(t.text);
        free(t.cells);
        return report_note(p, "No placement policy ran (see --allocators).");
    }
    return table_put(p, &t, header);
}

/* 2^(k/8), k = 0..7: the histogram's bucket bounds without libm. */
static const double eighth_octave[DEMO_HIST_PER_OCTAVE] = {
    1.0, 1.0905077326652577, 1.1892071150027210, 1.2968395546510096,
    1.4142135623730951, 1.5422108254079407, 1.6817928305074290, 1.8340080864093424};

/* The arrays behind a plot of up to `lines` series of `points` points each:
 * series i's points are x[i * points ...], y[i * points ...]. */
typedef struct {
    report_series *series;
    double *x, *y;
} plot_data;

static void plot_data_free(plot_data *d)
{
    free(d->series);
    free(d->x);
    free(d->y);
}

static int plot_data_init(report_page *p, plot_data *d, size_t lines, size_t points)
{
    size_t n = lines ? lines : 1;
    d->series = calloc(n, sizeof *d->series);
    d->x = calloc(n * points, sizeof *d->x);
    d->y = calloc(n * points, sizeof *d->y);
    if (d->series && d->x && d->y)
        return 0;
    plot_data_free(d);
    fprintf(stderr, "report: out of memory\n");
    p->failed = 1;
    return -1;
}

/* The lower bound of bucket i, in ns. */
static double bucket_floor(size_t i)
{
    double v = DEMO_HIST_MIN_NS;
    size_t octave = i / DEMO_HIST_PER_OCTAVE;
    while (octave--)
        v *= 2;
    return v * eighth_octave[i % DEMO_HIST_PER_OCTAVE];
}

/* Per allocator, the share of its calls (%) that took at least t ns, at each
 * t that starts a non-empty histogram bucket: a latency distribution whose
 * tail reads directly (p99 where it crosses 1 %, p99.9 at 0.1 %). */
static int demo_latency_plot(report_page *p, const demo_run *run, int frees)
{
    size_t n = run->result_count, i, b, k;
    plot_data d;
    int rc;
    if (plot_data_init(p, &d, n, DEMO_HIST_BUCKETS) != 0)
        return -1;
    for (i = 0; i < n; i++) {
        const demo_latency *l = frees ? &run->results[i].free : &run->results[i].alloc;
        uint64_t total = 0, at_least;
        double *xs = d.x + i * DEMO_HIST_BUCKETS, *ys = d.y + i * DEMO_HIST_BUCKETS;
        for (b = 0; b < DEMO_HIST_BUCKETS; b++)
            total += l->hist[b];
        at_least = total;
        k = 0;
        for (b = 0; b < DEMO_HIST_BUCKETS && total; b++) {
            if (!l->hist[b])
                continue;
            xs[k] = bucket_floor(b);
            ys[k] = 100.0 * (double)at_least / (double)total;
            at_least -= l->hist[b];
            k++;
        }
        d.series[i].name = result_name(&run->results[i]);
        d.series[i].x = xs;
        d.series[i].y = ys;
        d.series[i].count = k;
    }
    rc = report_plot(p,
                     frees ? "Latency distribution of free calls"
                           : "Latency distribution of allocation calls",
                     "time per call, t (ns, log scale; the first point holds every call under 1 ns)",
                     "calls taking t or longer (%, log scale)", 1, 1, d.series, n);
    plot_data_free(&d);
    return rc;
}

enum series_field { FIELD_FRAG_EXTERNAL, FIELD_FOOTPRINT };

/* A field of every allocator's samples over the run. */
static int demo_series_plot(report_page *p, const demo_run *run, enum series_field field)
{
    size_t n = run->result_count, i, j, k, extra = field == FIELD_FOOTPRINT ? 1 : 0;
    const demo_result *fewest_failures = NULL;
    plot_data d;
    int rc;
    if (plot_data_init(p, &d, n + extra, DEMO_SERIES_POINTS) != 0)
        return -1;
    for (i = 0; i < n; i++) {
        const demo_result *r = &run->results[i];
        double *xs = d.x + i * DEMO_SERIES_POINTS, *ys = d.y + i * DEMO_SERIES_POINTS;
        size_t count = r->series_count < DEMO_SERIES_POINTS ? r->series_count : DEMO_SERIES_POINTS;
        if (!fewest_failures || r->failures < fewest_failures->failures)
            fewest_failures = r;
        for (j = k = 0; j < count; j++) {
            const demo_sample *s = &r->series[j];
            double v = field == FIELD_FOOTPRINT ? (double)s->footprint / 1024.0
                                                : s->frag_external * 100.0;
            if (field == FIELD_FRAG_EXTERNAL && !(s->frag_external >= 0))
                continue; /* not measurable (malloc) */
            xs[k] = (double)s->op;
            ys[k] = v;
            k++;
        }
        d.series[i].name = result_name(r);
        d.series[i].x = xs;
        d.series[i].y = ys;
        d.series[i].count = k;
    }
    if (extra && fewest_failures) { /* what the workload holds, for reference */
        double *xs = d.x + n * DEMO_SERIES_POINTS, *ys = d.y + n * DEMO_SERIES_POINTS;
        size_t count = fewest_failures->series_count < DEMO_SERIES_POINTS
                           ? fewest_failures->series_count : DEMO_SERIES_POINTS;
        for (j = 0; j < count; j++) {
            xs[j] = (double)fewest_failures->series[j].op;
            ys[j] = (double)fewest_failures->series[j].live_bytes / 1024.0;
        }
        d.series[n].name = "requested (live)";
        d.series[n].x = xs;
        d.series[n].y = ys;
        d.series[n].count = count;
    }
    if (field == FIELD_FOOTPRINT)
        rc = report_plot(p, "Footprint over time", "operations",
                         "bytes held by the allocator (KiB)", 0, 0, d.series, n + extra);
    else
        rc = report_plot(p, "External fragmentation over time", "operations",
                         "external fragmentation (%)", 0, 0, d.series, n);
    plot_data_free(&d);
    return rc;
}

int report_demo(const demo_run *run, const char *dir)
{
    report_page *p = report_begin(dir, "index.html", "poolkit demo: malloc against memory "
                                                     "pools on an SSD controller's workload");
    int rc = 0;
    if (!p)
        return -1;
    if (demo_header(p, run) != 0 || demo_workload(p, run) != 0 ||
        demo_allocators(p, run) != 0 || demo_malloc_vs_pools(p, run) != 0 ||
        demo_slab_vs_buddy(p, run) != 0 || demo_policies(p, run) != 0 ||
        report_heading(p, "Latency distributions") != 0 ||
        report_paragraph(p, "For each allocator, the share of its calls that took at "
                            "least a given time, on log axes (from the histogram of every "
                            "call, 8 buckets per octave). A curve that falls steeply far left "
                            "is fast and predictable; where it crosses 1 % is its p99, 0.1 % "
                            "its p99.9, and where it ends its slowest call: what a deadline "
                            "has to allow for.") != 0 ||
        demo_latency_plot(p, run, 0) != 0 || demo_latency_plot(p, run, 1) != 0 ||
        report_heading(p, "Fragmentation and footprint over the uptime") != 0 ||
        report_paragraph(p, "Sampled every ops/200 operations. External fragmentation is "
                            "not measurable for glibc malloc, which has no series here.") != 0 ||
        demo_series_plot(p, run, FIELD_FRAG_EXTERNAL) != 0 ||
        demo_series_plot(p, run, FIELD_FOOTPRINT) != 0)
        rc = -1;
    if (report_end(p) != 0)
        rc = -1;
    return rc;
}

/* ---- The demo's JSON ---------------------------------------------------- */

/* A finite number, or null (which the schema never allows: a consumer that
 * finds one has found a bug). */
static void put_json_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.10g", v);
    else
        fputs("null", f);
}

/* before, then "key": number. */
static void put_json_field(FILE *f, const char *before, const char *key, double v)
{
    fprintf(f, "%s\"%s\": ", before, key);
    put_json_number(f, v);
}

static void put_json_latency(FILE *f, const char *key, const demo_latency *l)
{
    size_t b, last = 0;
    fprintf(f, "\"%s\": {\"calls\": %" PRIu64, key, l->calls);
    put_json_field(f, ", ", "mean_ns", l->mean_ns);
    put_json_field(f, ", ", "p50_ns", l->p50_ns);
    put_json_field(f, ", ", "p99_ns", l->p99_ns);
    put_json_field(f, ", ", "p999_ns", l->p999_ns);
    put_json_field(f, ", ", "max_ns", l->max_ns);
    put_json_field(f, ", ", "determinism", l->determinism);
    /* The histogram up to its last non-empty bucket. */
    for (b = 0; b < DEMO_HIST_BUCKETS; b++)
        if (l->hist[b])
            last = b + 1;
    fputs(", \"hist\": [", f);
    for (b = 0; b < last; b++)
        fprintf(f, "%s%" PRIu64, b ? ", " : "", l->hist[b]);
    fputs("]}", f);
}

static void put_json_series(FILE *f, const demo_result *r)
{
    size_t count = r->series_count < DEMO_SERIES_POINTS ? r->series_count : DEMO_SERIES_POINTS;
    size_t j, k;
    static const char *const keys[] = {"op", "live_bytes", "footprint", "frag_external",
                                       "frag_internal", "queue_depth"};
    fputs("\"series\": {", f);
    for (k = 0; k < 6; k++) {
        fprintf(f, "%s\n        \"%s\": [", k ? "," : "", keys[k]);
        for (j = 0; j < count; j++) {
            const demo_sample *s = &r->series[j];
            if (j)
                fputs(", ", f);
            switch (k) {
            case 0: fprintf(f, "%" PRIu64, s->op); break;
            case 1: fprintf(f, "%" PRIu64, s->live_bytes); break;
            case 2: fprintf(f, "%" PRIu64, s->footprint); break;
            case 3: put_json_number(f, s->frag_external); break;
            case 4: put_json_number(f, s->frag_internal); break;
            default: fprintf(f, "%" PRIu64, s->queue_depth); break;
            }
        }
        fputc(']', f);
    }
    fputs("}", f);
}

int report_demo_json(const demo_run *run, FILE *out)
{
    size_t i;
    fputs("{\n  \"schema\": \"poolkit-demo/1\",\n", out);
    fprintf(out, "  \"seed\": %" PRIu64 ",\n  \"ops\": %" PRIu64 ",\n", run->seed, run->ops);
    fputs("  \"timer\": ", out);
    put_json_string(out, run->timer);
    fputs(",\n  \"machine\": ", out);
    put_json_string(out, run->machine);
    fputs(",\n  \"compiler\": ", out);
    put_json_string(out, run->compiler);
    put_json_field(out, ",\n  ", "seconds", run->seconds);
    fputs(",\n  \"workload\": {\n    \"allocs_by_type\": {", out);
    for (i = 0; i < 5; i++) {
        fputs(i ? ", " : "", out);
        put_json_string(out, demo_type_names[i]);
        fprintf(out, ": %" PRIu64, run->allocs_by_type[i]);
    }
    fprintf(out, "},\n    \"peak_queue_depth\": %" PRIu64 "\n  },\n  \"results\": [",
            run->peak_queue_depth);
    for (i = 0; i < run->result_count; i++) {
        const demo_result *r = &run->results[i];
        fputs(i ? ",\n    {\n" : "\n    {\n", out);
        fputs("      \"name\": ", out);
        put_json_string(out, r->name);
        fputs(",\n      \"description\": ", out);
        put_json_string(out, r->description);
        fprintf(out, ",\n      \"allocs\": %" PRIu64 ", \"frees\": %" PRIu64
                     ", \"failures\": %" PRIu64 ", \"first_failure_op\": %" PRIu64 ",\n      ",
                r->allocs, r->frees, r->failures, r->first_failure_op);
        put_json_latency(out, "alloc", &r->alloc);
        fputs(",\n      ", out);
        put_json_latency(out, "free", &r->free);
        put_json_field(out, ",\n      ", "frag_external_end", r->frag_external_end);
        put_json_field(out, ", ", "frag_external_worst", r->frag_external_worst);
        put_json_field(out, ",\n      ", "frag_internal_end", r->frag_internal_end);
        put_json_field(out, ", ", "frag_internal_worst", r->frag_internal_worst);
        put_json_field(out, ",\n      ", "overhead_per_alloc", r->overhead_per_alloc);
        fprintf(out, ", \"peak_footprint\": %" PRIu64 ", \"arena_size\": %" PRIu64
                     ",\n      \"constructed_reuses\": %" PRIu64
                     ", \"constructor_calls\": %" PRIu64 ",\n      \"tight_arena_size\": %" PRIu64
                     ", \"tight_first_failure_op\": %" PRIu64 ", \"tight_live_bytes\": %" PRIu64
                     ",\n      ",
                r->peak_footprint, r->arena_size, r->constructed_reuses, r->constructor_calls,
                r->tight_arena_size, r->tight_first_failure_op, r->tight_live_bytes);
        put_json_series(out, r);
        fputs("\n    }", out);
    }
    fputs(run->result_count ? "\n  ]\n}\n" : "]\n}\n", out);
    if (fflush(out) != 0 || ferror(out)) {
        fprintf(stderr, "report: cannot write the JSON results: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}
