/*
 * The HTML report pages of the poolkit tool (build/report/index.html for the
 * demo, bench.html for the benchmarks): self-contained (styles and SVG plots
 * inline, nothing fetched), plots drawn by gnuplot (`gnuplot` on PATH; the
 * deps script installs gnuplot-nox). Hosted tool code: stdio allowed.
 *
 * A page is built in order: begin, then headings, paragraphs, tables and
 * plots, then end. Every function returns 0, or -1 after printing to stderr
 * what failed (a file not writable, gnuplot missing or failing); the page is
 * then incomplete and the caller exits non-zero.
 */
#ifndef POOLKIT_TOOLS_REPORT_H
#define POOLKIT_TOOLS_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "demo/results.h"

typedef struct report_page report_page;

/* Opens DIR/FILE (DIR created if missing) for a page titled title. NULL on
 * failure (message printed). */
report_page *report_begin(const char *dir, const char *file, const char *title);
int report_heading(report_page *p, const char *text);            /* <h2> */
int report_paragraph(report_page *p, const char *text);          /* <p>, text escaped */

/* A table: header cells, then rows of cells (already formatted text). */
int report_table(report_page *p, size_t columns, const char *const *header,
                 size_t rows, const char *const *cells /* rows x columns */);

/* A line plot: one series per name, points (x[i], y[i]); log_x / log_y pick
 * logarithmic axes. Drawn by gnuplot to SVG and inlined. */
typedef struct {
    const char *name;
    const double *x, *y;
    size_t count;
} report_series;
int report_plot(report_page *p, const char *title, const char *x_label, const char *y_label,
                int log_x, int log_y, const report_series *series, size_t series_count);

/* Closes the page; 0 if everything was written. Frees p either way. */
int report_end(report_page *p);

/* The demo's page: all of run's tables and its three plots (latency
 * distribution per allocator on a log axis, fragmentation over time,
 * footprint over time) in DIR/index.html. */
int report_demo(const demo_run *run, const char *dir);

/* The demo's results as JSON (schema documented in tools/demo/README or the
 * main README): one object with the run's fields and "results": [...]. */
int report_demo_json(const demo_run *run, FILE *out);

#endif
