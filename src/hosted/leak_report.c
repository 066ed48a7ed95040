/* pk_leak_report (poolkit/hosted.h): the live allocations of an allocator,
 * grouped by site, from pk_leaks_since. A fixed table on the stack: nothing
 * is allocated, so it works inside a malloc replacement too (stdio aside). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "poolkit/debug.h"
#include "poolkit/hosted.h"

#if PK_DEBUG

typedef struct {
    const char *file; /* NULL: allocated without a recorded site */
    int line;
    uint32_t owner;   /* of the first allocation met */
    bool owners_differ;
    size_t count;
    size_t bytes;
} site_row;

typedef struct {
    site_row rows[PK_LEAK_REPORT_SITES];
    size_t sites;
    size_t other_count, other_bytes; /* at sites beyond the table */
    size_t count, bytes;
} site_table;

static bool same_site(const site_row *r, const pk_leak *leak)
{
    if (r->file == NULL || leak->file == NULL) {
        return r->file == leak->file;
    }
    return r->line == leak->line && (r->file == leak->file || strcmp(r->file, leak->file) == 0);
}

/* Sizes add up without wrapping (they cannot exceed memory, but a damaged
 * tag is not the report's business to trust). */
static size_t add_sat(size_t a, size_t b)
{
    return a + b < a ? SIZE_MAX : a + b;
}

/* Runs under the allocator's lock: records, calls nothing. */
static void collect(const pk_leak *leak, void *ctx)
{
    site_table *t = ctx;
    t->count++;
    t->bytes = add_sat(t->bytes, leak->size);
    for (size_t i = 0; i < t->sites; i++) {
        site_row *r = &t->rows[i];
        if (same_site(r, leak)) {
            r->count++;
            r->bytes = add_sat(r->bytes, leak->size);
            r->owners_differ = r->owners_differ || r->owner != leak->owner;
            return;
        }
    }
    if (t->sites == PK_LEAK_REPORT_SITES) {
        t->other_count++;
        t->other_bytes = add_sat(t->other_bytes, leak->size);
        return;
    }
    site_row *r = &t->rows[t->sites++];
    r->file = leak->file;
    r->line = leak->line;
    r->owner = leak->owner;
    r->owners_differ = false;
    r->count = 1;
    r->bytes = leak->size;
}

/* Most bytes first; then most allocations; then the order met (stable). */
static bool before(const site_row *a, const site_row *b)
{
    return a->bytes != b->bytes ? a->bytes > b->bytes : a->count > b->count;
}

static void sort_rows(site_table *t)
{
    for (size_t i = 1; i < t->sites; i++) {
        site_row r = t->rows[i];
        size_t j = i;
        for (; j > 0 && before(&r, &t->rows[j - 1]); j--) {
            t->rows[j] = t->rows[j - 1];
        }
        t->rows[j] = r;
    }
}

static const char *plural(size_t n)
{
    return n == 1 ? "" : "s";
}

static void print_header(pk_allocator *a, uint64_t mark, FILE *out)
{
    fprintf(out, "poolkit: leaks in %s", pk_name(a));
    if (mark != 0) {
        fprintf(out, " since mark %" PRIu64, mark);
    }
}

size_t pk_leak_report_since(pk_allocator *a, uint64_t mark, FILE *out)
{
    if (a->ops->leaks == NULL) { /* a user's allocator may track nothing */
        print_header(a, mark, out);
        fputs(": this allocator does not list its allocations (no leaks op)\n", out);
        return 0;
    }
    site_table t;
    t.sites = 0;
    t.other_count = t.other_bytes = t.count = t.bytes = 0;
    pk_leaks_since(a, mark, collect, &t);
    sort_rows(&t);

    print_header(a, mark, out);
    if (t.count == 0) {
        fputs(": none\n", out);
        return 0;
    }
    fprintf(out, ": %zu site%s%s\n", t.sites, plural(t.sites), t.other_count != 0 ? " and more" : "");
    for (size_t i = 0; i < t.sites; i++) {
        const site_row *r = &t.rows[i];
        fprintf(out, "  %zu byte%s in %zu allocation%s at ", r->bytes, plural(r->bytes), r->count,
                plural(r->count));
        if (r->file != NULL) {
            fprintf(out, "%s:%d", r->file, r->line);
        } else {
            fputs("unknown site", out);
        }
        if (r->owners_differ) {
            fputs(" (owners differ)", out);
        } else if (r->owner != 0) {
            fprintf(out, " (owner %" PRIu32 ")", r->owner);
        }
        fputc('\n', out);
    }
    if (t.other_count != 0) {
        fprintf(out, "  and %zu byte%s in %zu more allocation%s at other sites\n", t.other_bytes,
                plural(t.other_bytes), t.other_count, plural(t.other_count));
    }
    fprintf(out, "  total: %zu byte%s in %zu allocation%s\n", t.bytes, plural(t.bytes), t.count, plural(t.count));
    return t.count;
}

#else /* release builds: nothing is tracked */

size_t pk_leak_report_since(pk_allocator *a, uint64_t mark, FILE *out)
{
    (void)mark;
    fprintf(out, "poolkit: leaks in %s: leak tracking needs a debug build (PK_DEBUG=1, POOLKIT_DEBUG=ON)\n",
            pk_name(a));
    return 0;
}

#endif

size_t pk_leak_report(pk_allocator *a, FILE *out)
{
    return pk_leak_report_since(a, 0, out);
}
