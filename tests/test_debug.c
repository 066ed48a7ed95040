/*
 * The debug layer's cross-cutting functions, over the generic view, for every
 * allocator: pk_leaks, pk_leak_mark and pk_leaks_since; owners per thread
 * (pk_set_owner) and from a hook (pk_set_owner_source); pk_leak_report
 * (poolkit/hosted.h, its output parsed); the call-site macros (a fault
 * carries the faulting call's __LINE__, and a double free of a quarantined
 * block the block's allocation site and owner); fault lines
 * (pk_fault_format). Built in every stage: release builds check that these
 * functions exist and do nothing (no leak is listed, no site or owner is
 * carried, the report says leak tracking needs a debug build); the cases that
 * only debug builds can pass are under #if PK_DEBUG.
 *
 * Table-driven: each allocator is one entry (`entries` below) that makes a
 * fresh allocator in static storage; every case runs on every entry, as one
 * cmocka test named "<case> <allocator>".
 */
#define _POSIX_C_SOURCE 200809L /* pthread barriers */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "poolkit/poolkit.h"
#include "support.h"

/* Every allocator the tests make holds at least this many blocks of MAX_SIZE
 * bytes (the report's overflow case needs more than PK_LEAK_REPORT_SITES). */
#define MAX_SIZE 32
#define MIN_BLOCKS 96

typedef struct {
    const char *kind;     /* the default name, in faults and reports */
    bool double_free_tagged;  /* debug builds: a double free names the block's site and owner */
    bool release_double_free; /* a release build catches a double free (SPEC "Rules") */
    bool frees_lower_live;    /* stats.live falls at a free (not the arena's: it counts
                                 allocations since reset) */
    size_t object_size;       /* every block has this size whatever the request (the
                                 slab's objects), or 0: blocks have the size requested */
    pk_allocator *(*make)(void); /* a fresh, empty allocator */
} entry;

/* ------------------------------------------------------------------------- */
/* The allocators. */

static pk_pool pool;
static unsigned char pool_buf[PK_POOL_BUFFER_SIZE(MAX_SIZE, MIN_BLOCKS, 0)];

static pk_allocator *make_pool(void)
{
    assert_int_equal(pk_pool_init(&pool, pool_buf, sizeof pool_buf, MAX_SIZE, 0), PK_OK);
    return pk_pool_allocator(&pool);
}

static pk_atomic_pool atomic_pool;
static unsigned char atomic_buf[PK_ATOMIC_POOL_BUFFER_SIZE(MAX_SIZE, MIN_BLOCKS, 0)];

static pk_allocator *make_atomic_pool(void)
{
    assert_int_equal(pk_atomic_pool_init(&atomic_pool, atomic_buf, sizeof atomic_buf, MAX_SIZE, 0), PK_OK);
    return pk_atomic_pool_allocator(&atomic_pool);
}

static pk_classes classes;
static unsigned char classes_buf[PK_POOL_BUFFER_SIZE(16, MIN_BLOCKS, 0) + PK_POOL_BUFFER_SIZE(MAX_SIZE, MIN_BLOCKS, 0)];

static pk_allocator *make_classes(void)
{
    const pk_class_spec specs[] = {{16, MIN_BLOCKS, 0}, {MAX_SIZE, MIN_BLOCKS, 0}};
    assert_int_equal(pk_classes_buffer_size(specs, 2), sizeof classes_buf);
    assert_int_equal(pk_classes_init(&classes, classes_buf, sizeof classes_buf, specs, 2), PK_OK);
    return pk_classes_allocator(&classes);
}

/* The variable-size allocators get 64 KiB: room for MIN_BLOCKS requests of
 * MAX_SIZE with any overhead. */
#define REGION (64u * 1024u)
static PK_ALIGNAS(64) unsigned char region[REGION];

static pk_heap heap;

static pk_allocator *make_heap(void)
{
    assert_int_equal(pk_heap_init(&heap, region, REGION), PK_OK);
    return pk_heap_allocator(&heap);
}

static pk_fit fit;

static pk_allocator *make_fit(pk_fit_policy policy)
{
    assert_int_equal(pk_fit_init(&fit, region, REGION, policy, 0), PK_OK);
    return pk_fit_allocator(&fit);
}

static pk_allocator *make_fit_first(void)
{
    return make_fit(PK_FIT_FIRST);
}

static pk_allocator *make_fit_best(void)
{
    return make_fit(PK_FIT_BEST);
}

static pk_allocator *make_fit_next(void)
{
    return make_fit(PK_FIT_NEXT);
}

static pk_buddy buddy;

static pk_allocator *make_buddy(void)
{
    assert_int_equal(pk_buddy_init(&buddy, region, REGION, 0), PK_OK);
    return pk_buddy_allocator(&buddy);
}

/* A slab cache of MAX_SIZE-byte objects on 4 KiB slabs from a buddy (a slab
 * is aligned to its size: the buddy's buffer is, so its blocks are). */
static pk_slab_cache slab;
static pk_buddy slab_pages;
static PK_ALIGNAS(4096) unsigned char slab_region[REGION];

static pk_allocator *make_slab(void)
{
    assert_int_equal(pk_buddy_init(&slab_pages, slab_region, REGION, 0), PK_OK);
    pk_page_source source = pk_page_source_buddy(&slab_pages);
    assert_int_equal(pk_slab_init(&slab, NULL, MAX_SIZE, 0, NULL, NULL, NULL, &source, 4096), PK_OK);
    return pk_slab_allocator(&slab);
}

static pk_arena arena;

static pk_allocator *make_arena(void)
{
    assert_int_equal(pk_arena_init(&arena, region, REGION), PK_OK);
    return pk_arena_allocator(&arena);
}

static const entry entries[] = {
    {"pool", true, true, true, 0, make_pool},
    {"atomic_pool", true, true, true, 0, make_atomic_pool},
    {"classes", true, true, true, 0, make_classes},
    {"heap", true, true, true, 0, make_heap},
    {"fit_first", true, true, true, 0, make_fit_first},
    {"fit_best", true, true, true, 0, make_fit_best},
    {"fit_next", true, true, true, 0, make_fit_next},
    {"buddy", true, true, true, 0, make_buddy},
    {"slab", true, true, true, MAX_SIZE, make_slab},
    {"arena", true, false, false, 0, make_arena},
};
#define ENTRIES (sizeof entries / sizeof entries[0])

/* ------------------------------------------------------------------------- */
/* Helpers. */

/* The leaks a walk reported, in order. */
#define LEAKS_MAX 128
typedef struct {
    size_t n;
    pk_leak l[LEAKS_MAX];
} leak_list;

static void collect(const pk_leak *leak, void *ctx)
{
    leak_list *list = ctx;
    assert_true(list->n < LEAKS_MAX);
    list->l[list->n++] = *leak;
}

static leak_list leaks_of(pk_allocator *a, uint64_t since)
{
    leak_list list;
    list.n = 0;
    if (since == 0) {
        pk_leaks(a, collect, &list);
    } else {
        pk_leaks_since(a, since, collect, &list);
    }
    return list;
}

#if PK_DEBUG
/* The bytes a block requested as size has in e's allocators. */
static size_t block_bytes(const entry *e, size_t size)
{
    return e->object_size != 0 ? e->object_size : size;
}

static void expect_leak(const entry *e, const pk_leak *l, const void *ptr, size_t size, int line, uint32_t owner)
{
    assert_ptr_equal(l->ptr, ptr);
    assert_int_equal(l->size, block_bytes(e, size));
    assert_non_null(l->file);
    assert_string_equal(l->file, __FILE__);
    assert_int_equal(l->line, line);
    assert_int_equal(l->owner, owner);
    assert_true(l->seq > 0);
}
#endif

static pk_stats stats_of(pk_allocator *a)
{
    pk_stats s;
    pk_stats_get(a, &s);
    return s;
}

/* The allocator is whole: check passes without a fault, and the clients'
 * view of it counts `live` allocations. */
static void expect_whole(pk_allocator *a, size_t live)
{
    unsigned before = faults.calls;
    assert_int_equal(pk_check(a), PK_OK);
    assert_int_equal(faults.calls, before);
    assert_int_equal(stats_of(a).live, live);
}

/* expect_whole after `allocated` allocations of which `freed` were freed. */
static void expect_whole_after(const entry *e, pk_allocator *a, size_t allocated, size_t freed)
{
    expect_whole(a, e->frees_lower_live ? allocated - freed : allocated);
}

static void free_all(pk_allocator *a, void **ptrs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(pk_free(a, ptrs[i]), PK_OK);
    }
}

static const entry *entry_of(void **state)
{
    return *state;
}

static int setup(void **state)
{
    pk_set_owner(0);
    pk_set_owner_source(NULL);
    return setup_faults(state);
}

static int teardown(void **state)
{
    pk_set_owner(0);
    pk_set_owner_source(NULL);
    return teardown_faults(state);
}

/* ------------------------------------------------------------------------- */
/* pk_leaks, pk_leak_mark, pk_leaks_since */

static void case_leaks(void **state)
{
    const entry *e = entry_of(state);
    pk_allocator *a = e->make();
    pk_set_owner(3);
    void *p1 = pk_alloc(a, 8); const int line1 = __LINE__;
    void *p2 = pk_alloc(a, 16); const int line2 = __LINE__;
    void *p3 = pk_alloc(a, 24); const int line3 = __LINE__;
    assert_non_null(p1);
    assert_non_null(p2);
    assert_non_null(p3);
    assert_int_equal(pk_free(a, p2), PK_OK);
    leak_list list = leaks_of(a, 0);
#if PK_DEBUG
    /* Oldest first, with size, site, owner and rising sequence numbers. */
    (void)line2;
    assert_int_equal(list.n, 2);
    expect_leak(e, &list.l[0], p1, 8, line1, 3);
    expect_leak(e, &list.l[1], p3, 24, line3, 3);
    assert_true(list.l[1].seq > list.l[0].seq);
#else
    (void)line1;
    (void)line2;
    (void)line3;
    assert_int_equal(list.n, 0); /* release: nothing is tracked */
#endif
    void *rest[] = {p1, p3};
    free_all(a, rest, 2);
    assert_int_equal(leaks_of(a, 0).n, 0);
    expect_whole_after(e, a, 3, 3);
    assert_int_equal(faults.calls, 0);
}

static void case_leaks_since(void **state)
{
    const entry *e = entry_of(state);
    pk_allocator *a = e->make();
    void *before = pk_alloc(a, 4);
    uint64_t mark = pk_leak_mark();
    void *kept = pk_alloc(a, 12); const int line_kept = __LINE__;
    void *freed = pk_alloc(a, 20);
    assert_non_null(before);
    assert_non_null(kept);
    assert_non_null(freed);
    assert_int_equal(pk_free(a, freed), PK_OK);
    leak_list phase = leaks_of(a, mark);
    leak_list all = leaks_of(a, 0);
#if PK_DEBUG
    /* What the phase leaked: allocated after the mark and still live. */
    assert_true(mark > 0); /* allocations were made before (in this test) */
    assert_int_equal(phase.n, 1);
    expect_leak(e, &phase.l[0], kept, 12, line_kept, 0);
    assert_true(phase.l[0].seq > mark);
    assert_int_equal(all.n, 2);
    assert_ptr_equal(all.l[0].ptr, before);
    assert_true(all.l[0].seq <= mark);
    /* A mark after everything: nothing since. */
    assert_int_equal(leaks_of(a, pk_leak_mark()).n, 0);
#else
    (void)line_kept;
    assert_int_equal(mark, 0);
    assert_int_equal(phase.n, 0);
    assert_int_equal(all.n, 0);
#endif
    void *rest[] = {before, kept};
    free_all(a, rest, 2);
    expect_whole_after(e, a, 3, 3);
    assert_int_equal(faults.calls, 0);
}

/* ------------------------------------------------------------------------- */
/* Owners: per thread, and from a hook */

typedef struct {
    pk_allocator *a;
    pthread_mutex_t *mutex; /* the generic view has no lock: the threads take this one */
    pthread_barrier_t *barrier;
    uint32_t owner;
    void *blocks[2];
} owner_thread;

static void *owner_thread_main(void *arg)
{
    owner_thread *t = arg;
    pk_set_owner(t->owner);
    /* Both threads have set their owners before either allocates. */
    pthread_barrier_wait(t->barrier);
    for (int i = 0; i < 2; i++) {
        pthread_mutex_lock(t->mutex);
        t->blocks[i] = pk_alloc(t->a, 8);
        pthread_mutex_unlock(t->mutex);
    }
    return NULL;
}

static uint32_t owner_in(const leak_list *list, const void *ptr)
{
    for (size_t i = 0; i < list->n; i++) {
        if (list->l[i].ptr == ptr) {
            return list->l[i].owner;
        }
    }
    fail_msg("%p not in the leak list", ptr);
    return 0;
}

static void case_owner_per_thread(void **state)
{
    const entry *e = entry_of(state);
    pk_allocator *a = e->make();
    pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, 2), 0);
    pk_set_owner(7);
    owner_thread t[2] = {{a, &mutex, &barrier, 101, {NULL, NULL}}, {a, &mutex, &barrier, 202, {NULL, NULL}}};
    pthread_t id[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&id[i], NULL, owner_thread_main, &t[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(id[i], NULL), 0);
    }
    pthread_barrier_destroy(&barrier);
    void *mine = pk_alloc(a, 8); /* the threads' owners did not touch this thread's */
    void *all[] = {t[0].blocks[0], t[0].blocks[1], t[1].blocks[0], t[1].blocks[1], mine};
    for (size_t i = 0; i < 5; i++) {
        assert_non_null(all[i]);
    }
    leak_list list = leaks_of(a, 0);
#if PK_DEBUG
    assert_int_equal(list.n, 5);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(owner_in(&list, t[i].blocks[0]), t[i].owner);
        assert_int_equal(owner_in(&list, t[i].blocks[1]), t[i].owner);
    }
    assert_int_equal(owner_in(&list, mine), 7);
    if (e->double_free_tagged) {
        /* A fault about a block carries its owner, not the caller's. */
        assert_int_equal(pk_free(a, t[1].blocks[0]), PK_OK);
        assert_int_equal(pk_free(a, t[1].blocks[0]), PK_ERR_DOUBLE_FREE);
        assert_int_equal(faults.calls, 1);
        assert_int_equal(faults.last.owner, 202);
        faults.calls = 0;
        all[2] = NULL;
    }
#else
    (void)owner_in;
    assert_int_equal(list.n, 0);
#endif
    for (size_t i = 0; i < 5; i++) {
        if (all[i] != NULL) {
            assert_int_equal(pk_free(a, all[i]), PK_OK);
        }
    }
    expect_whole_after(e, a, 5, 5);
    assert_int_equal(faults.calls, 0);
}

/* An RTOS's "current task" as a hook would read it. */
static uint32_t current_task;
static unsigned task_source_calls;

static uint32_t task_id(void)
{
    task_source_calls++;
    return current_task;
}

static void case_owner_source(void **state)
{
    const entry *e = entry_of(state);
    pk_allocator *a = e->make();
    pk_set_owner(5);
    task_source_calls = 0;
    pk_set_owner_source(task_id);
    current_task = 0x2001;
    void *p1 = pk_alloc(a, 8);
    current_task = 0x2002;
    void *p2 = pk_alloc(a, 8);
    pk_set_owner_source(NULL); /* back to pk_set_owner's value */
    void *p3 = pk_alloc(a, 8);
    assert_non_null(p1);
    assert_non_null(p2);
    assert_non_null(p3);
    leak_list list = leaks_of(a, 0);
#if PK_DEBUG
    assert_int_equal(task_source_calls, 2); /* once per allocation */
    assert_int_equal(list.n, 3);
    assert_int_equal(owner_in(&list, p1), 0x2001);
    assert_int_equal(owner_in(&list, p2), 0x2002);
    assert_int_equal(owner_in(&list, p3), 5);
#else
    assert_int_equal(task_source_calls, 0); /* release: the hook is never called */
    assert_int_equal(list.n, 0);
#endif
    void *all[] = {p1, p2, p3};
    free_all(a, all, 3);
    expect_whole_after(e, a, 3, 3);
    assert_int_equal(faults.calls, 0);
}

/* ------------------------------------------------------------------------- */
/* pk_leak_report, its output parsed */

#define REPORT_LINES 80
typedef struct {
    size_t n;
    char line[REPORT_LINES][256];
} report_text;

/* Runs the report (since mark, or all when 0) into a temporary file and reads
 * it back line by line (without the '\n's, each checked there). */
static report_text report_of(pk_allocator *a, uint64_t mark, size_t *listed)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    *listed = mark == 0 ? pk_leak_report(a, f) : pk_leak_report_since(a, mark, f);
    rewind(f);
    report_text r;
    r.n = 0;
    char buf[sizeof r.line[0]];
    while (fgets(buf, sizeof buf, f) != NULL) {
        size_t len = strlen(buf);
        assert_true(len > 0 && buf[len - 1] == '\n');
        buf[len - 1] = '\0';
        assert_true(r.n < REPORT_LINES);
        memcpy(r.line[r.n++], buf, len);
    }
    fclose(f);
    return r;
}

#if PK_DEBUG
typedef struct {
    size_t bytes, count;
    char file[200];
    int line;
    char rest[40];
} site_line;

/* "  <bytes> bytes in <count> allocation(s) at <file>:<line>[ (...)]" */
static site_line parse_site(const char *text)
{
    site_line s;
    memset(&s, 0, sizeof s);
    char word[16];
    int used = 0;
    /* The conversions' count is checked, and the text is the report's own. */
    assert_int_equal(sscanf(text, // NOLINT(cert-err34-c)
                             "  %zu bytes in %zu %15s at %199[^:]:%d%n", &s.bytes, &s.count, word, s.file,
                            &s.line, &used),
                     5);
    assert_string_equal(word, s.count == 1 ? "allocation" : "allocations");
    snprintf(s.rest, sizeof s.rest, "%s", text + used);
    return s;
}

static void expect_header(const char *text, const char *name, const char *rest)
{
    char want[128];
    snprintf(want, sizeof want, "poolkit: leaks in %s%s", name, rest);
    assert_string_equal(text, want);
}
#endif

static void case_leak_report(void **state)
{
    const entry *e = entry_of(state);
    if (PK_DEBUG && e->object_size != 0) {
        skip(); /* the figures are the requests' (the slab's objects are covered by case_leaks) */
    }
    pk_allocator *a = e->make();
    const char *name = pk_name(a);
    void *all[7];
    size_t n = 0;
    pk_set_owner(9);
    int line_small = 0;
    for (int i = 0; i < 3; i++) {
        all[n++] = pk_alloc(a, 8); line_small = __LINE__; /* 24 bytes in 3, owner 9 */
    }
    uint64_t mark = pk_leak_mark();
    int line_big = 0;
    for (uint32_t i = 0; i < 2; i++) {
        pk_set_owner(4 + i);
        all[n++] = pk_alloc(a, 30); line_big = __LINE__; /* 60 bytes in 2, owners 4 and 5 */
    }
    pk_set_owner(0);
    all[n++] = (pk_alloc)(a, 20); /* through the function itself: no site recorded */
    all[n++] = pk_alloc(a, 28); const int line_one = __LINE__;
    for (size_t i = 0; i < n; i++) {
        assert_non_null(all[i]);
    }
    size_t listed;
    report_text r = report_of(a, 0, &listed);
#if PK_DEBUG
    /* One line per site, most bytes first, then the total. */
    assert_int_equal(listed, 7);
    assert_int_equal(r.n, 6);
    expect_header(r.line[0], name, ": 4 sites");
    const struct {
        size_t bytes, count;
        int line; /* 0: unknown site */
        const char *rest;
    } want[] = {
        {60, 2, line_big, " (owners differ)"},
        {28, 1, line_one, ""},
        {24, 3, line_small, " (owner 9)"},
        {20, 1, 0, ""},
    };
    for (size_t i = 0; i < 4; i++) {
        if (want[i].line == 0) {
            assert_string_equal(r.line[1 + i], "  20 bytes in 1 allocation at unknown site");
            continue;
        }
        site_line s = parse_site(r.line[1 + i]);
        assert_int_equal(s.bytes, want[i].bytes);
        assert_int_equal(s.count, want[i].count);
        assert_string_equal(s.file, __FILE__);
        assert_int_equal(s.line, want[i].line);
        assert_string_equal(s.rest, want[i].rest);
    }
    assert_string_equal(r.line[5], "  total: 132 bytes in 7 allocations");

    /* What the phase after the mark leaked. */
    r = report_of(a, mark, &listed);
    assert_int_equal(listed, 4);
    assert_int_equal(r.n, 5);
    char header[64];
    snprintf(header, sizeof header, " since mark %" PRIu64 ": 3 sites", mark);
    expect_header(r.line[0], name, header);
    assert_int_equal(parse_site(r.line[1]).line, line_big);
    assert_int_equal(parse_site(r.line[2]).line, line_one);
    assert_string_equal(r.line[3], "  20 bytes in 1 allocation at unknown site");
    assert_string_equal(r.line[4], "  total: 108 bytes in 4 allocations");
#else
    (void)line_small;
    (void)line_big;
    (void)line_one;
    (void)mark;
    assert_int_equal(listed, 0);
    assert_int_equal(r.n, 1);
    char want[160];
    snprintf(want, sizeof want,
             "poolkit: leaks in %s: leak tracking needs a debug build (PK_DEBUG=1, POOLKIT_DEBUG=ON)", name);
    assert_string_equal(r.line[0], want);
#endif
    free_all(a, all, n);
    r = report_of(a, 0, &listed);
    assert_int_equal(listed, 0);
    assert_int_equal(r.n, 1);
#if PK_DEBUG
    expect_header(r.line[0], name, ": none");
#endif
    expect_whole_after(e, a, n, n);
    assert_int_equal(faults.calls, 0);
}

/* More sites than the report's table: the rest summed in one line. */
static void case_leak_report_many_sites(void **state)
{
    const entry *e = entry_of(state);
    if (PK_DEBUG && e->object_size != 0) {
        skip(); /* the figures are the requests' */
    }
    pk_allocator *a = e->make();
    enum { SITES = PK_LEAK_REPORT_SITES + 6 };
    void *all[SITES];
    for (int i = 0; i < SITES; i++) {
        pk_debug_site("site.c", 1 + i); /* what the call-site macros do */
        all[i] = (pk_alloc)(a, 2);
        assert_non_null(all[i]);
    }
    size_t listed;
    report_text r = report_of(a, 0, &listed);
#if PK_DEBUG
    assert_int_equal(listed, SITES);
    assert_int_equal(r.n, 1 + PK_LEAK_REPORT_SITES + 2);
    expect_header(r.line[0], pk_name(a), ": 64 sites and more");
    for (int i = 0; i < PK_LEAK_REPORT_SITES; i++) { /* equal bytes: in the order met */
        char want[64];
        snprintf(want, sizeof want, "  2 bytes in 1 allocation at site.c:%d", 1 + i);
        assert_string_equal(r.line[1 + i], want);
    }
    assert_string_equal(r.line[1 + PK_LEAK_REPORT_SITES], "  and 12 bytes in 6 more allocations at other sites");
    assert_string_equal(r.line[2 + PK_LEAK_REPORT_SITES], "  total: 140 bytes in 70 allocations");
#else
    assert_int_equal(listed, 0);
    assert_int_equal(r.n, 1);
#endif
    free_all(a, all, SITES);
    expect_whole_after(e, a, SITES, SITES);
    assert_int_equal(faults.calls, 0);
}

/* A user's allocator whose ops have no leaks: the report says so. */
static void test_leak_report_without_leaks_op(void **state)
{
    (void)state;
    pk_allocator *pool_view = make_pool();
    pk_allocator_ops ops = *pool_view->ops;
    ops.leaks = NULL;
    pk_allocator view = {&ops, pool_view->self};
    void *p = pk_alloc(&view, 8);
    assert_non_null(p);
    size_t listed;
    report_text r = report_of(&view, 0, &listed);
    assert_int_equal(listed, 0);
    assert_int_equal(r.n, 1);
#if PK_DEBUG
    assert_string_equal(r.line[0], "poolkit: leaks in pool: this allocator does not list its allocations (no leaks op)");
#else
    assert_string_equal(r.line[0],
                        "poolkit: leaks in pool: leak tracking needs a debug build (PK_DEBUG=1, POOLKIT_DEBUG=ON)");
#endif
    assert_int_equal(pk_free(&view, p), PK_OK);
    expect_whole(&view, 0);
    assert_int_equal(faults.calls, 0);
}

/* ------------------------------------------------------------------------- */
/* Call sites, and the fault line */

/* The fault line of the last fault. */
static const char *fault_line(void)
{
    static char line[512];
    size_t len = pk_fault_format(&faults.last, line, sizeof line);
    assert_int_equal(strlen(line), len);
    /* One line: a single '\n', at the end. */
    assert_true(len > 0 && line[len - 1] == '\n');
    assert_null(memchr(line, '\n', len - 1));
    return line;
}

static void case_call_site(void **state)
{
    const entry *e = entry_of(state);
    pk_allocator *a = e->make();
    static char outside[64]; /* not the allocator's */
    void *foreign = outside + 16;
    assert_int_equal(pk_free(a, foreign), PK_ERR_FOREIGN_PTR); const int line_free = __LINE__;
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, PK_ERR_FOREIGN_PTR);
    assert_string_equal(faults.last.allocator, pk_name(a));
    assert_ptr_equal(faults.last.ptr, foreign);
    assert_null(faults.last.file); /* no block, so no allocation site */
    assert_int_equal(faults.last.owner, 0);
    char want[512];
#if PK_DEBUG
    assert_non_null(faults.last.call_file);
    assert_string_equal(faults.last.call_file, __FILE__);
    assert_int_equal(faults.last.call_line, line_free);
    snprintf(want, sizeof want, "poolkit: %s: %s at %p (call at %s:%d)\n", pk_name(a),
             pk_status_str(PK_ERR_FOREIGN_PTR), foreign, __FILE__, line_free);
#else
    (void)line_free;
    assert_null(faults.last.call_file); /* release: no sites */
    snprintf(want, sizeof want, "poolkit: %s: %s at %p\n", pk_name(a), pk_status_str(PK_ERR_FOREIGN_PTR), foreign);
#endif
    assert_string_equal(fault_line(), want);
    faults.calls = 0;
    /* The site is used once: a later call through the function has none. */
    assert_int_equal((pk_free)(a, foreign), PK_ERR_FOREIGN_PTR);
    assert_int_equal(faults.calls, 1);
    assert_null(faults.last.call_file);
    faults.calls = 0;
    expect_whole(a, 0);
    assert_int_equal(stats_of(a).rejected, 2);
}

/* A double free: of a quarantined block in debug builds, which carries the
 * block's allocation site and owner besides the call's site. */
static void case_double_free_sites(void **state)
{
    const entry *e = entry_of(state);
    if (PK_DEBUG ? !e->double_free_tagged : !e->release_double_free) {
        skip();
    }
    pk_allocator *a = e->make();
    void *keep = pk_alloc(a, 8); /* keeps the live count above 0, so the quarantine holds */
    pk_set_owner(42);
    unsigned char *p = pk_alloc(a, 10); const int line_alloc = __LINE__;
    pk_set_owner(1);
    assert_non_null(keep);
    assert_non_null(p);
    assert_int_equal(pk_free(a, p), PK_OK);
    assert_int_equal(faults.calls, 0);
    assert_int_equal(pk_free(a, p), PK_ERR_DOUBLE_FREE); const int line_again = __LINE__;
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, PK_ERR_DOUBLE_FREE);
    assert_ptr_equal(faults.last.ptr, p);
    assert_string_equal(faults.last.allocator, pk_name(a));
    char want[512];
#if PK_DEBUG
    assert_string_equal(faults.last.file, __FILE__);
    assert_int_equal(faults.last.line, line_alloc);
    assert_int_equal(faults.last.owner, 42);
    assert_string_equal(faults.last.call_file, __FILE__);
    assert_int_equal(faults.last.call_line, line_again);
    snprintf(want, sizeof want, "poolkit: %s: %s at %p (allocated at %s:%d, owner 42; call at %s:%d)\n",
             pk_name(a), pk_status_str(PK_ERR_DOUBLE_FREE), (void *)p, __FILE__, line_alloc, __FILE__,
             line_again);
#else
    (void)line_alloc;
    (void)line_again;
    assert_null(faults.last.file);
    assert_null(faults.last.call_file);
    assert_int_equal(faults.last.owner, 0);
    snprintf(want, sizeof want, "poolkit: %s: %s at %p\n", pk_name(a), pk_status_str(PK_ERR_DOUBLE_FREE),
             (void *)p);
#endif
    assert_string_equal(fault_line(), want);
    faults.calls = 0;
    expect_whole_after(e, a, 2, 1);
    assert_int_equal(pk_free(a, keep), PK_OK);
    expect_whole_after(e, a, 2, 2);
    assert_int_equal(stats_of(a).rejected, 1);
    assert_int_equal(faults.calls, 0);
}

#if PK_DEBUG
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <valgrind/memcheck.h>
#pragma GCC diagnostic pop
#define POKE_QUIET_VALGRIND 1
#endif
#endif

/* The test's own overflow: a byte written into a guard, past ASan and
 * memcheck (the debug layer closes guards to them), so that the debug layer's
 * own detection is what the test sees. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((no_sanitize_address))
#endif
static void poke(unsigned char *p, unsigned char value)
{
#ifdef POKE_QUIET_VALGRIND
    VALGRIND_DISABLE_ERROR_REPORTING;
#endif
    *(volatile unsigned char *)p = value;
#ifdef POKE_QUIET_VALGRIND
    VALGRIND_ENABLE_ERROR_REPORTING;
#endif
}

/* An overflow by one byte: the block's site and the call's, and the owner;
 * the block is freed all the same. */
static void case_overflow_sites(void **state)
{
    const entry *e = entry_of(state);
    pk_allocator *a = e->make();
    pk_set_owner(77);
    unsigned char *p = pk_alloc(a, 13); const int line_alloc = __LINE__;
    pk_set_owner(0);
    assert_non_null(p);
    poke(p + block_bytes(e, 13), 0x5A);
    assert_int_equal(pk_free(a, p), PK_ERR_GUARD_CORRUPT); const int line_free = __LINE__;
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, PK_ERR_GUARD_CORRUPT);
    assert_ptr_equal(faults.last.ptr, p);
    assert_string_equal(faults.last.file, __FILE__);
    assert_int_equal(faults.last.line, line_alloc);
    assert_int_equal(faults.last.owner, 77);
    assert_string_equal(faults.last.call_file, __FILE__);
    assert_int_equal(faults.last.call_line, line_free);
    char want[512];
    snprintf(want, sizeof want, "poolkit: %s: %s at %p (allocated at %s:%d, owner 77; call at %s:%d)\n",
             pk_name(a), pk_status_str(PK_ERR_GUARD_CORRUPT), (void *)p, __FILE__, line_alloc, __FILE__,
             line_free);
    assert_string_equal(fault_line(), want);
    faults.calls = 0;
    expect_whole_after(e, a, 1, 1); /* freed, guards restored */
    assert_int_equal(leaks_of(a, 0).n, 0);
}
#endif

/* ------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    CMUnitTestFunction fn;
} test_case;

static const test_case cases[] = {
    {"leaks", case_leaks},
    {"leaks_since", case_leaks_since},
    {"owner_per_thread", case_owner_per_thread},
    {"owner_source", case_owner_source},
    {"leak_report", case_leak_report},
    {"leak_report_many_sites", case_leak_report_many_sites},
    {"call_site", case_call_site},
    {"double_free_sites", case_double_free_sites},
#if PK_DEBUG
    {"overflow_sites", case_overflow_sites},
#endif
};
#define CASES (sizeof cases / sizeof cases[0])

int main(void)
{
    static struct CMUnitTest tests[CASES * ENTRIES + 1];
    static char names[CASES * ENTRIES][64];
    size_t n = 0;
    for (size_t c = 0; c < CASES; c++) {
        for (size_t i = 0; i < ENTRIES; i++, n++) {
            snprintf(names[n], sizeof names[n], "%s %s", cases[c].name, entries[i].kind);
            tests[n].name = names[n];
            tests[n].test_func = cases[c].fn;
            tests[n].setup_func = setup;
            tests[n].teardown_func = teardown;
            tests[n].initial_state = (void *)(uintptr_t)&entries[i];
        }
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup_teardown(test_leak_report_without_leaks_op, setup,
                                                                     teardown);
    return _cmocka_run_group_tests(PK_DEBUG ? "debug (debug build)" : "debug (release build)", tests, n, NULL,
                                   NULL);
}
