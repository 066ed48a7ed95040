#define _POSIX_C_SOURCE 200809L /* fileno, dup, dup2 under -std=c11 */

/*
 * Unit tests of the common core: status strings, fragmentation formulas, fault
 * formatting and dispatch (custom handler, default printer, reentrancy), the
 * private helpers of src/core/internal.h, the version macros and the pthread
 * lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/internal.h"
#include "poolkit/common.h"
#include "poolkit/pool.h"
#include "poolkit/pthread_lock.h"
#include "poolkit/version.h"
#include "support.h"

/* ------------------------------------------------------------------------- */
/* A recording fault handler (support.h's recorder). */

static void counting_handler(const pk_fault *f, void *ctx)
{
    record(f, ctx);
}

static int setup_counting(void **state)
{
    (void)state;
    rec_reset();
    pk_set_fault_handler(counting_handler, &rec);
    return 0;
}

/* A small pool on a local buffer. */
#define BLOCK 32
#define COUNT 4
typedef struct {
    pk_pool pool;
    unsigned char buf[PK_POOL_BUFFER_SIZE(BLOCK, COUNT, 0)];
} test_pool;

static void make_pool(test_pool *t)
{
    assert_int_equal(pk_pool_init(&t->pool, t->buf, sizeof t->buf, BLOCK, 0), PK_OK);
    assert_int_equal(pk_pool_capacity(&t->pool), COUNT);
}

/* ------------------------------------------------------------------------- */
/* Capturing fd 2 (the default handler writes there with write(2)). No cmocka
 * assertion may run between capture_begin and capture_end: a failure would
 * leave stderr redirected. */

typedef struct {
    int saved;
    FILE *file;
} capture;

static int capture_begin(capture *c)
{
    fflush(stderr);
    c->saved = -1;
    c->file = tmpfile();
    if (c->file == NULL) {
        return -1;
    }
    c->saved = dup(STDERR_FILENO);
    if (c->saved < 0 || dup2(fileno(c->file), STDERR_FILENO) < 0) {
        return -1;
    }
    return 0;
}

/* Restores fd 2 and returns what was written (NUL-terminated) in out. */
static size_t capture_end(capture *c, char *out, size_t size)
{
    fflush(stderr);
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    rewind(c->file);
    size_t n = fread(out, 1, size - 1, c->file);
    out[n] = '\0';
    fclose(c->file);
    return n;
}

static void expect_ptr_line(char *out, size_t size, const char *allocator, const char *what,
                            const void *ptr)
{
    snprintf(out, size, "poolkit: %s: %s at 0x%" PRIxPTR "\n", allocator, what, (uintptr_t)ptr);
}

#if PK_DEBUG
/* The same line in debug builds, for a block with no tag (a pool's free
 * block): the call's site, a line of this file, follows. */
static void expect_ptr_call_line(char *out, size_t size, const char *allocator, const char *what,
                                 const void *ptr, int line)
{
    snprintf(out, size, "poolkit: %s: %s at 0x%" PRIxPTR " (call at %s:%d)\n", allocator, what, (uintptr_t)ptr,
             __FILE__, line);
}
#endif

/* ------------------------------------------------------------------------- */
/* pk_status_str */

static const pk_status all_status[] = {
    PK_OK,
    PK_ERR_NOMEM,
    PK_ERR_INVALID_ARG,
    PK_ERR_DOUBLE_FREE,
    PK_ERR_FOREIGN_PTR,
    PK_ERR_MISALIGNED_PTR,
    PK_ERR_GUARD_CORRUPT,
    PK_ERR_USE_AFTER_FREE,
    PK_ERR_CORRUPT,
    PK_ERR_SEALED,
};
#define N_STATUS (sizeof all_status / sizeof all_status[0])

static void test_status_values(void **state)
{
    (void)state;
    /* The enum is contiguous from 0 (tables elsewhere rely on it). */
    for (size_t i = 0; i < N_STATUS; i++) {
        assert_int_equal((int)all_status[i], (int)i);
    }
}

static void test_status_str_distinct(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_STATUS; i++) {
        const char *s = pk_status_str(all_status[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_null(strchr(s, '\n'));
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(s, pk_status_str(all_status[j]));
        }
    }
    assert_string_equal(pk_status_str(PK_ERR_DOUBLE_FREE), "double free");
}

static void test_status_str_out_of_range(void **state)
{
    (void)state;
    const pk_status odd[] = {(pk_status)99, (pk_status)N_STATUS, (pk_status)INT_MAX};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        const char *s = pk_status_str(odd[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        for (size_t j = 0; j < N_STATUS; j++) {
            assert_string_not_equal(s, pk_status_str(all_status[j]));
        }
    }
}

/* ------------------------------------------------------------------------- */
/* Fragmentation */

static void test_frag_internal(void **state)
{
    (void)state;
    pk_stats s;
    memset(&s, 0, sizeof s);
    assert_true(pk_frag_internal(&s) == 0.0);
    s.requested = 100; /* in_use 0 wins, whatever requested says */
    assert_true(pk_frag_internal(&s) == 0.0);
    s.in_use = 100;
    s.requested = 100;
    assert_true(pk_frag_internal(&s) == 0.0);
    s.requested = 75;
    assert_true(pk_frag_internal(&s) == 0.25);
    s.requested = 0;
    assert_true(pk_frag_internal(&s) == 1.0);
    s.in_use = 64;
    s.requested = 48;
    assert_true(pk_frag_internal(&s) == 0.25);
    /* Only in_use and requested matter. */
    s.free_bytes = 1000;
    s.largest_free = 1;
    s.block_size = 16;
    assert_true(pk_frag_internal(&s) == 0.25);
}

static void test_frag_external(void **state)
{
    (void)state;
    pk_stats s;
    memset(&s, 0, sizeof s);
    assert_true(pk_frag_external(&s) == 0.0);
    s.largest_free = 10; /* free_bytes 0 wins */
    assert_true(pk_frag_external(&s) == 0.0);
    s.free_bytes = 100;
    s.largest_free = 25;
    assert_true(pk_frag_external(&s) == 0.75);
    s.largest_free = 100;
    assert_true(pk_frag_external(&s) == 0.0);
    s.largest_free = 0;
    assert_true(pk_frag_external(&s) == 1.0);
    /* A fixed-size allocator never fragments externally. */
    s.largest_free = 25;
    s.block_size = 32;
    assert_true(pk_frag_external(&s) == 0.0);
    /* Only free_bytes, largest_free and block_size matter. */
    s.block_size = 0;
    s.in_use = 7;
    s.requested = 3;
    assert_true(pk_frag_external(&s) == 0.75);
}

static void test_frag_of_pool_stats(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t);
    pk_stats s;
    pk_pool_stats(&t.pool, &s);
    assert_true(pk_frag_internal(&s) == 0.0);
    assert_true(pk_frag_external(&s) == 0.0);
    void *a = pk_pool_alloc(&t.pool);
    assert_non_null(a);
    pk_pool_stats(&t.pool, &s);
    assert_true(pk_frag_internal(&s) == 0.0);
    assert_true(pk_frag_external(&s) == 0.0);
    assert_int_equal(pk_pool_free(&t.pool, a), PK_OK);
}

/* ------------------------------------------------------------------------- */
/* pk_fault_format */

static pk_fault fault_of(pk_status kind, const char *allocator, const void *ptr)
{
    pk_fault f;
    memset(&f, 0, sizeof f);
    f.kind = kind;
    f.allocator = allocator;
    f.ptr = ptr;
    return f;
}

static void check_format(const pk_fault *f, const char *expected)
{
    char buf[600];
    memset(buf, 'Z', sizeof buf);
    size_t n = pk_fault_format(f, buf, sizeof buf);
    assert_string_equal(buf, expected);
    assert_int_equal(n, strlen(expected));
    for (size_t i = n + 1; i < sizeof buf; i++) {
        assert_int_equal(buf[i], 'Z');
    }
}

static void test_format_basic(void **state)
{
    (void)state;
    pk_fault f = fault_of(PK_ERR_DOUBLE_FREE, "pool", (const void *)(uintptr_t)0x1000);
    check_format(&f, "poolkit: pool: double free at 0x1000\n");
    f = fault_of(PK_ERR_FOREIGN_PTR, "dma", (const void *)(uintptr_t)0xdeadbeef);
    check_format(&f, "poolkit: dma: foreign pointer at 0xdeadbeef\n");
    f = fault_of(PK_ERR_MISALIGNED_PTR, "x", (const void *)(uintptr_t)0x1);
    check_format(&f, "poolkit: x: pointer is not a block start at 0x1\n");
}

static void test_format_every_status(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_STATUS; i++) {
        pk_fault f = fault_of(all_status[i], "heap", (const void *)(uintptr_t)0xabc0);
        char expected[200];
        snprintf(expected, sizeof expected, "poolkit: heap: %s at 0xabc0\n",
                 pk_status_str(all_status[i]));
        check_format(&f, expected);
    }
    pk_fault f = fault_of((pk_status)99, "heap", NULL);
    char expected[200];
    snprintf(expected, sizeof expected, "poolkit: heap: %s\n", pk_status_str((pk_status)99));
    check_format(&f, expected);
}

static void test_format_null_ptr(void **state)
{
    (void)state;
    pk_fault f = fault_of(PK_ERR_CORRUPT, "pool", NULL);
    check_format(&f, "poolkit: pool: metadata corrupt\n");
}

static void test_format_max_ptr(void **state)
{
    (void)state;
    const void *ptr = (const void *)(uintptr_t)UINTPTR_MAX;
    pk_fault f = fault_of(PK_ERR_FOREIGN_PTR, "pool", ptr);
    char expected[100];
    expect_ptr_line(expected, sizeof expected, "pool", "foreign pointer", ptr);
    check_format(&f, expected);
    /* A real address. */
    int local;
    f = fault_of(PK_ERR_DOUBLE_FREE, "pool", &local);
    expect_ptr_line(expected, sizeof expected, "pool", "double free", &local);
    check_format(&f, expected);
}

static void test_format_with_sites(void **state)
{
    (void)state;
    pk_fault f = fault_of(PK_ERR_GUARD_CORRUPT, "heap", (const void *)(uintptr_t)0x2a0);
    f.file = "main.c";
    f.line = 42;
    f.owner = 7;
    f.call_file = "io.c";
    f.call_line = 99;
    check_format(&f, "poolkit: heap: guard bytes overwritten at 0x2a0 "
                     "(allocated at main.c:42, owner 7; call at io.c:99)\n");

    /* Each part alone and in pairs. */
    pk_fault g = fault_of(PK_ERR_DOUBLE_FREE, "pool", (const void *)(uintptr_t)0x10);
    g.file = "a.c";
    g.line = 1;
    check_format(&g, "poolkit: pool: double free at 0x10 (allocated at a.c:1)\n");
    g = fault_of(PK_ERR_DOUBLE_FREE, "pool", (const void *)(uintptr_t)0x10);
    g.owner = 3;
    check_format(&g, "poolkit: pool: double free at 0x10 (owner 3)\n");
    g = fault_of(PK_ERR_DOUBLE_FREE, "pool", (const void *)(uintptr_t)0x10);
    g.call_file = "b.c";
    g.call_line = 2;
    check_format(&g, "poolkit: pool: double free at 0x10 (call at b.c:2)\n");
    g.file = "a.c";
    g.line = 1;
    check_format(&g, "poolkit: pool: double free at 0x10 (allocated at a.c:1; call at b.c:2)\n");
    g.file = NULL;
    g.owner = 3;
    check_format(&g, "poolkit: pool: double free at 0x10 (owner 3; call at b.c:2)\n");
    g.call_file = NULL;
    g.file = "a.c";
    check_format(&g, "poolkit: pool: double free at 0x10 (allocated at a.c:1, owner 3)\n");

    /* Sites with a NULL pointer, extreme numbers. */
    pk_fault h = fault_of(PK_ERR_USE_AFTER_FREE, "slab", NULL);
    h.file = "src/x.c";
    h.line = INT_MAX;
    h.owner = UINT32_MAX;
    h.call_file = "y.c";
    h.call_line = 0;
    char expected[200];
    snprintf(expected, sizeof expected,
             "poolkit: slab: write after free (allocated at src/x.c:%d, owner %" PRIu32
             "; call at y.c:0)\n",
             INT_MAX, UINT32_MAX);
    check_format(&h, expected);
}

static void test_format_null_allocator(void **state)
{
    (void)state;
    pk_fault f = fault_of(PK_ERR_CORRUPT, NULL, NULL);
    char buf[100];
    size_t n = pk_fault_format(&f, buf, sizeof buf);
    assert_int_equal(n, strlen(buf));
    assert_true(strncmp(buf, "poolkit: ", 9) == 0);
    assert_non_null(strstr(buf, ": metadata corrupt\n"));
    assert_int_equal(buf[n - 1], '\n');
}

static void test_format_truncation(void **state)
{
    (void)state;
    pk_fault f = fault_of(PK_ERR_GUARD_CORRUPT, "heap", (const void *)(uintptr_t)0x2a0);
    f.file = "main.c";
    f.line = 42;
    f.owner = 7;
    f.call_file = "io.c";
    f.call_line = 99;
    const char *full = "poolkit: heap: guard bytes overwritten at 0x2a0 "
                       "(allocated at main.c:42, owner 7; call at io.c:99)\n";
    size_t len = strlen(full);
    enum { CANARY = 16 };
    char buf[200];
    assert_true(len + 3 + CANARY < sizeof buf);
    for (size_t size = 1; size <= len + 3; size++) {
        memset(buf, 0x5a, sizeof buf);
        size_t n = pk_fault_format(&f, buf, size);
        assert_int_equal(n, len);
        size_t kept = size - 1 < len ? size - 1 : len;
        assert_memory_equal(buf, full, kept);
        assert_int_equal(buf[kept], '\0');
        for (size_t i = kept + 1; i < size + CANARY; i++) {
            assert_int_equal((unsigned char)buf[i], 0x5a);
        }
    }
    /* The small case spelled out. */
    memset(buf, 0x5a, sizeof buf);
    assert_int_equal(pk_fault_format(&f, buf, 8), len);
    assert_string_equal(buf, "poolkit");
    assert_int_equal((unsigned char)buf[8], 0x5a);
}

static void test_format_size_zero(void **state)
{
    (void)state;
    pk_fault f = fault_of(PK_ERR_DOUBLE_FREE, "pool", (const void *)(uintptr_t)0x1000);
    const size_t len = strlen("poolkit: pool: double free at 0x1000\n");
    char buf[32];
    memset(buf, 0x5a, sizeof buf);
    assert_int_equal(pk_fault_format(&f, buf, 0), len);
    for (size_t i = 0; i < sizeof buf; i++) {
        assert_int_equal((unsigned char)buf[i], 0x5a);
    }
    /* As with snprintf, a NULL buffer of size 0 only measures. */
    assert_int_equal(pk_fault_format(&f, NULL, 0), len);
}

/* ------------------------------------------------------------------------- */
/* pk_set_fault_handler */

static void test_default_handler_initially(void **state)
{
    /* Runs first, before any test sets a handler: the default prints. */
    (void)state;
    test_pool t;
    make_pool(&t);
    void *a = pk_pool_alloc(&t.pool);
    assert_non_null(a);
    assert_int_equal(pk_pool_free(&t.pool, a), PK_OK);
    capture c;
    assert_int_equal(capture_begin(&c), 0);
    int call_line = __LINE__ + 1;
    pk_status st = pk_pool_free(&t.pool, a);
    char out[1024];
    capture_end(&c, out, sizeof out);
    assert_int_equal(st, PK_ERR_DOUBLE_FREE);
    char expected[256];
#if PK_DEBUG
    /* Debug builds: the line also gives the call's site. */
    expect_ptr_call_line(expected, sizeof expected, "pool", "double free", a, call_line);
#else
    (void)call_line;
    expect_ptr_line(expected, sizeof expected, "pool", "double free", a);
#endif
    assert_string_equal(out, expected);
}

static void test_custom_handler_gets_fault(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t);
    void *a = pk_pool_alloc(&t.pool);
    assert_non_null(a);
    assert_int_equal(pk_pool_free(&t.pool, a), PK_OK);
    assert_int_equal(rec.calls, 0);

    capture c;
    assert_int_equal(capture_begin(&c), 0);
    pk_status st = pk_pool_free(&t.pool, a);
    char out[256];
    size_t printed = capture_end(&c, out, sizeof out);

    assert_int_equal(st, PK_ERR_DOUBLE_FREE);
    assert_int_equal(printed, 0); /* the default printer is replaced */
    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec.e[0].kind, PK_ERR_DOUBLE_FREE);
    assert_string_equal(rec.e[0].allocator, "pool");
    assert_ptr_equal(rec.e[0].ptr, a);
    assert_ptr_equal(rec.e[0].ctx, &rec);
#if !PK_DEBUG
    assert_null(rec.e[0].file);
    assert_null(rec.e[0].call_file);
    assert_int_equal(rec.e[0].owner, 0);
#endif

    /* A foreign pointer, with another name and ctx. */
    int ctx2;
    pk_set_fault_handler(counting_handler, &ctx2);
    pk_pool_set_name(&t.pool, "descriptors");
    int local;
    assert_int_equal(pk_pool_free(&t.pool, &local), PK_ERR_FOREIGN_PTR);
    assert_int_equal(rec.calls, 2);
    assert_int_equal(rec.e[1].kind, PK_ERR_FOREIGN_PTR);
    assert_string_equal(rec.e[1].allocator, "descriptors");
    assert_ptr_equal(rec.e[1].ptr, &local);
    assert_ptr_equal(rec.e[1].ctx, &ctx2);

    /* No fault, no call. */
    void *b = pk_pool_alloc(&t.pool);
    assert_non_null(b);
    assert_int_equal(pk_pool_free(&t.pool, b), PK_OK);
    assert_int_equal(pk_pool_free(&t.pool, NULL), PK_OK);
    assert_int_equal(pk_pool_check(&t.pool), PK_OK);
    assert_int_equal(rec.calls, 2);
}

static void test_null_restores_default(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t);
    pk_pool_set_name(&t.pool, "restored");
    void *a = pk_pool_alloc(&t.pool);
    assert_non_null(a);
    assert_int_equal(pk_pool_free(&t.pool, a), PK_OK);

    /* The ctx given with NULL does not matter. */
    pk_set_fault_handler(NULL, &rec);
    capture c;
    assert_int_equal(capture_begin(&c), 0);
    int call_line = __LINE__ + 1;
    pk_status st = pk_pool_free(&t.pool, a);
    char out[1024];
    capture_end(&c, out, sizeof out);

    assert_int_equal(st, PK_ERR_DOUBLE_FREE);
    assert_int_equal(rec.calls, 0);
    char expected[256];
#if PK_DEBUG
    /* Debug builds: the line also gives the call's site. */
    expect_ptr_call_line(expected, sizeof expected, "restored", "double free", a, call_line);
#else
    (void)call_line;
    expect_ptr_line(expected, sizeof expected, "restored", "double free", a);
#endif
    assert_string_equal(out, expected);

    /* A NULL-pointer fault (metadata corrupt, from check). */
    t.pool.frees = t.pool.allocs + 1; /* counters inconsistent */
    assert_int_equal(capture_begin(&c), 0);
    st = pk_pool_check(&t.pool);
    capture_end(&c, out, sizeof out);
    t.pool.frees = t.pool.allocs;
    assert_int_equal(st, PK_ERR_CORRUPT);
    assert_string_equal(out, "poolkit: restored: metadata corrupt\n");
    assert_int_equal(rec.calls, 0);
}

static void test_default_handler_long_line(void **state)
{
    (void)state;
    /* A line longer than the printer's buffer still comes out as one line. */
    static char name[700];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    test_pool t;
    make_pool(&t);
    pk_pool_set_name(&t.pool, name);
    int local;
    pk_set_fault_handler(NULL, NULL);
    capture c;
    assert_int_equal(capture_begin(&c), 0);
    pk_status st = pk_pool_free(&t.pool, &local);
    char out[2048];
    size_t n = capture_end(&c, out, sizeof out);
    assert_int_equal(st, PK_ERR_FOREIGN_PTR);
    assert_true(n > 100);
    assert_true(n < sizeof name);
    assert_int_equal(out[n - 1], '\n');
    assert_ptr_equal(strchr(out, '\n'), &out[n - 1]);
    assert_true(strncmp(out, "poolkit: nnnn", 13) == 0);
}

/* Reentrancy: the handler provokes faults itself. */
typedef struct {
    test_pool *t;
    test_pool *other;
    void *ptr;
    pk_status inner[4];
    void *inner_alloc;
    int mutex_free;
} reenter_ctx;

static void reentering_handler(const pk_fault *f, void *ctx)
{
    reenter_ctx *r = ctx;
    record(f, ctx);
    /* Free the same pointer again: a double free raised inside the handler. */
    r->inner[0] = pk_pool_free(&r->t->pool, (void *)(uintptr_t)f->ptr);
    /* A fault from another pool, and a bad alignment through the view. */
    int local;
    r->inner[1] = pk_pool_free(&r->other->pool, &local);
    r->inner_alloc = pk_alloc_aligned(pk_pool_allocator(&r->other->pool), 8, 3);
    /* The handler may call poolkit normally. */
    void *b = pk_pool_alloc(&r->other->pool);
    r->inner[2] = b != NULL ? pk_pool_free(&r->other->pool, b) : PK_ERR_NOMEM;
}

static void test_reentrant_fault_not_dispatched(void **state)
{
    (void)state;
    test_pool t, other;
    make_pool(&t);
    make_pool(&other);
    reenter_ctx r;
    memset(&r, 0, sizeof r);
    r.t = &t;
    r.other = &other;
    r.inner_alloc = &r;
    pk_set_fault_handler(reentering_handler, &r);

    void *a = pk_pool_alloc(&t.pool);
    assert_non_null(a);
    assert_int_equal(pk_pool_free(&t.pool, a), PK_OK);
    assert_int_equal(pk_pool_free(&t.pool, a), PK_ERR_DOUBLE_FREE);

    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec.e[0].kind, PK_ERR_DOUBLE_FREE);
    assert_ptr_equal(rec.e[0].ptr, a);
    assert_ptr_equal(rec.e[0].ctx, &r);
    assert_int_equal(r.inner[0], PK_ERR_DOUBLE_FREE);
    assert_int_equal(r.inner[1], PK_ERR_FOREIGN_PTR);
    assert_null(r.inner_alloc);
    assert_int_equal(r.inner[2], PK_OK);

    /* Inner misuse was still refused and counted. */
    pk_stats s;
    pk_pool_stats(&t.pool, &s);
    assert_int_equal(s.rejected, 2);
    assert_int_equal(s.live, 0);
    pk_pool_stats(&other.pool, &s);
    assert_int_equal(s.rejected, 2);
    assert_int_equal(s.live, 0);
    assert_int_equal(pk_pool_check(&t.pool), PK_OK);
    assert_int_equal(pk_pool_check(&other.pool), PK_OK);

    /* Once the handler has returned, faults are dispatched again. */
    assert_int_equal(pk_pool_free(&t.pool, a), PK_ERR_DOUBLE_FREE);
    assert_int_equal(rec.calls, 2);
    assert_int_equal(r.inner[0], PK_ERR_DOUBLE_FREE);

    pk_set_fault_handler(counting_handler, &rec);
    int local;
    assert_int_equal(pk_pool_free(&other.pool, &local), PK_ERR_FOREIGN_PTR);
    assert_int_equal(rec.calls, 3);
    assert_ptr_equal(rec.e[2].ptr, &local);
}

/* Fails (rather than deadlocking later) when the lock does not release m. */
static void assert_lock_round_trip(const pk_lock *l, pthread_mutex_t *m)
{
    l->lock(l->ctx);
    int held = pthread_mutex_trylock(m);
    l->unlock(l->ctx);
    int released = pthread_mutex_trylock(m);
    if (released == 0) {
        pthread_mutex_unlock(m);
    }
    assert_int_equal(held, EBUSY);
    assert_int_equal(released, 0);
}

/* The handler runs with no poolkit lock held. */
static pthread_mutex_t handler_mutex = PTHREAD_MUTEX_INITIALIZER;

static void trylock_handler(const pk_fault *f, void *ctx)
{
    reenter_ctx *r = ctx;
    record(f, ctx);
    int e = pthread_mutex_trylock(&handler_mutex);
    r->mutex_free = e == 0;
    if (e == 0) {
        pthread_mutex_unlock(&handler_mutex);
    }
}

static void test_handler_runs_unlocked(void **state)
{
    (void)state;
    test_pool t;
    make_pool(&t);
    pk_lock l = pk_pthread_lock(&handler_mutex);
    assert_lock_round_trip(&l, &handler_mutex);
    assert_int_equal(pk_pool_set_lock(&t.pool, &l), PK_OK);
    reenter_ctx r;
    memset(&r, 0, sizeof r);
    pk_set_fault_handler(trylock_handler, &r);

    void *a = pk_pool_alloc(&t.pool);
    assert_non_null(a);
    assert_int_equal(pk_pool_free(&t.pool, a), PK_OK);
    assert_int_equal(pk_pool_free(&t.pool, a), PK_ERR_DOUBLE_FREE);
    assert_int_equal(rec.calls, 1);
    assert_true(r.mutex_free);

    r.mutex_free = 0;
    int local;
    assert_int_equal(pk_pool_free(&t.pool, &local), PK_ERR_FOREIGN_PTR);
    assert_int_equal(rec.calls, 2);
    assert_true(r.mutex_free);

    r.mutex_free = 0;
    assert_null(pk_alloc_aligned(pk_pool_allocator(&t.pool), 1, 24));
    assert_int_equal(rec.calls, 3);
    assert_int_equal(rec.e[2].kind, PK_ERR_INVALID_ARG);
    assert_true(r.mutex_free);

    assert_int_equal(pthread_mutex_trylock(&handler_mutex), 0);
    pthread_mutex_unlock(&handler_mutex);
    assert_int_equal(pk_pool_set_lock(&t.pool, NULL), PK_OK);
}

/* The "inside the handler" flag is per thread: a fault raised by another
 * thread while the handler runs is dispatched. */
typedef struct {
    test_pool *other;
    pk_status thread_status;
    int spawned;
} thread_ctx;

static pthread_mutex_t rec_mutex = PTHREAD_MUTEX_INITIALIZER;

static void locked_record(const pk_fault *f, void *ctx)
{
    pthread_mutex_lock(&rec_mutex);
    record(f, ctx);
    pthread_mutex_unlock(&rec_mutex);
}

static void *fault_thread(void *arg)
{
    thread_ctx *tc = arg;
    int local;
    tc->thread_status = pk_pool_free(&tc->other->pool, &local);
    return NULL;
}

static void spawning_handler(const pk_fault *f, void *ctx)
{
    thread_ctx *tc = ctx;
    locked_record(f, ctx);
    if (tc->spawned) {
        return;
    }
    tc->spawned = 1;
    pthread_t th;
    if (pthread_create(&th, NULL, fault_thread, tc) == 0) {
        pthread_join(th, NULL);
    }
}

static void test_other_thread_fault_dispatched(void **state)
{
    (void)state;
    test_pool t, other;
    make_pool(&t);
    make_pool(&other);
    thread_ctx tc;
    memset(&tc, 0, sizeof tc);
    tc.other = &other;
    tc.thread_status = PK_OK;
    pk_set_fault_handler(spawning_handler, &tc);
    int local;
    assert_int_equal(pk_pool_free(&t.pool, &local), PK_ERR_FOREIGN_PTR);
    assert_int_equal(tc.spawned, 1);
    assert_int_equal(tc.thread_status, PK_ERR_FOREIGN_PTR);
    assert_int_equal(rec.calls, 2);
    assert_ptr_equal(rec.e[0].ptr, &local);
    assert_int_equal(rec.e[1].kind, PK_ERR_FOREIGN_PTR);
}

/* ------------------------------------------------------------------------- */
/* Private helpers (src/core/internal.h) */

static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
    rng_state = seed;
}

/* xorshift64*: deterministic, full 64-bit outputs. */
static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * UINT64_C(2685821657736338717);
}

/* Random sizes with a spread of magnitudes (a random bit count). */
static size_t rng_size(void)
{
    size_t x = (size_t)rng_next();
    unsigned bits = (unsigned)(rng_next() % (PK__WORD_BITS + 1));
    if (bits == 0) {
        return 0;
    }
    return bits == PK__WORD_BITS ? x : x & (((size_t)1 << bits) - 1);
}

#define WORD_BITS ((unsigned)PK__WORD_BITS)
#define RANDOM_ROUNDS 100000

static void test_is_pow2(void **state)
{
    (void)state;
    assert_false(pk__is_pow2(0));
    assert_true(pk__is_pow2(1));
    assert_false(pk__is_pow2(3));
    assert_false(pk__is_pow2(6));
    assert_false(pk__is_pow2(24));
    assert_false(pk__is_pow2(SIZE_MAX));
    assert_true(pk__is_pow2(SIZE_MAX / 2 + 1));
    assert_false(pk__is_pow2(SIZE_MAX / 2));
    for (unsigned i = 0; i < WORD_BITS; i++) {
        size_t x = (size_t)1 << i;
        assert_true(pk__is_pow2(x));
        if (i >= 1) {
            assert_false(pk__is_pow2(x + 1));
        }
        if (i >= 2) {
            assert_false(pk__is_pow2(x - 1));
        }
        if (i + 1 < WORD_BITS) {
            assert_false(pk__is_pow2(x | (x << 1)));
        }
    }
    rng_seed(0x1234);
    for (int r = 0; r < RANDOM_ROUNDS; r++) {
        size_t x = rng_size();
        unsigned bits = 0;
        for (size_t y = x; y != 0; y >>= 1) {
            bits += (unsigned)(y & 1u);
        }
        assert_int_equal(pk__is_pow2(x), bits == 1);
    }
}

static void test_add_overflows(void **state)
{
    (void)state;
    size_t out = 12345;
    assert_false(pk__add_overflows(0, 0, &out));
    assert_int_equal(out, 0);
    assert_false(pk__add_overflows(SIZE_MAX, 0, &out));
    assert_int_equal(out, SIZE_MAX);
    assert_false(pk__add_overflows(0, SIZE_MAX, &out));
    assert_int_equal(out, SIZE_MAX);
    assert_false(pk__add_overflows(SIZE_MAX - 1, 1, &out));
    assert_int_equal(out, SIZE_MAX);
    assert_false(pk__add_overflows(SIZE_MAX / 2, SIZE_MAX / 2 + 1, &out));
    assert_int_equal(out, SIZE_MAX);

    out = 777;
    assert_true(pk__add_overflows(SIZE_MAX, 1, &out));
    assert_int_equal(out, 777); /* untouched */
    assert_true(pk__add_overflows(1, SIZE_MAX, &out));
    assert_true(pk__add_overflows(SIZE_MAX, SIZE_MAX, &out));
    assert_true(pk__add_overflows(SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 1, &out));
    assert_true(pk__add_overflows(SIZE_MAX - 5, 6, &out));
    assert_int_equal(out, 777);

    rng_seed(0xadd);
    for (int r = 0; r < RANDOM_ROUNDS; r++) {
        size_t a = rng_size(), b = rng_size(), want;
        bool over = __builtin_add_overflow(a, b, &want);
        size_t got = 0xfeed;
        assert_int_equal(pk__add_overflows(a, b, &got), over);
        assert_int_equal(got, over ? (size_t)0xfeed : want);
        /* Around the edge: a + (SIZE_MAX - a) fits, one more does not. */
        assert_false(pk__add_overflows(a, SIZE_MAX - a, &got));
        assert_int_equal(got, SIZE_MAX);
        if (a != 0) {
            assert_true(pk__add_overflows(a, SIZE_MAX - a + 1, &got));
        }
    }
}

static void test_mul_overflows(void **state)
{
    (void)state;
    const size_t half = (size_t)1 << (WORD_BITS / 2);
    size_t out = 12345;
    assert_false(pk__mul_overflows(0, SIZE_MAX, &out));
    assert_int_equal(out, 0);
    out = 1;
    assert_false(pk__mul_overflows(SIZE_MAX, 0, &out));
    assert_int_equal(out, 0);
    assert_false(pk__mul_overflows(0, 0, &out));
    assert_int_equal(out, 0);
    assert_false(pk__mul_overflows(SIZE_MAX, 1, &out));
    assert_int_equal(out, SIZE_MAX);
    assert_false(pk__mul_overflows(1, SIZE_MAX, &out));
    assert_int_equal(out, SIZE_MAX);
    assert_false(pk__mul_overflows(SIZE_MAX / 3, 3, &out));
    assert_int_equal(out, SIZE_MAX / 3 * 3);
    assert_false(pk__mul_overflows(half - 1, half + 1, &out));
    assert_int_equal(out, SIZE_MAX); /* half^2 - 1 */
    assert_false(pk__mul_overflows(half, half / 2, &out));
    assert_int_equal(out, SIZE_MAX / 2 + 1);

    out = 777;
    assert_true(pk__mul_overflows(SIZE_MAX, 2, &out));
    assert_true(pk__mul_overflows(2, SIZE_MAX, &out));
    assert_true(pk__mul_overflows(half, half, &out));
    assert_true(pk__mul_overflows(SIZE_MAX / 3 + 1, 3, &out));
    assert_true(pk__mul_overflows(SIZE_MAX / 2 + 1, 2, &out));
    assert_true(pk__mul_overflows(SIZE_MAX, SIZE_MAX, &out));
    assert_int_equal(out, 777);

    rng_seed(0x3a1);
    for (int r = 0; r < RANDOM_ROUNDS; r++) {
        size_t a = rng_size(), b = rng_size(), want;
        bool over = __builtin_mul_overflow(a, b, &want);
        size_t got = 0xfeed;
        assert_int_equal(pk__mul_overflows(a, b, &got), over);
        assert_int_equal(got, over ? (size_t)0xfeed : want);
    }
}

static void test_round_up_overflows(void **state)
{
    (void)state;
    size_t out = 12345;
    assert_false(pk__round_up_overflows(0, 8, &out));
    assert_int_equal(out, 0);
    assert_false(pk__round_up_overflows(1, 8, &out));
    assert_int_equal(out, 8);
    assert_false(pk__round_up_overflows(8, 8, &out));
    assert_int_equal(out, 8);
    assert_false(pk__round_up_overflows(9, 8, &out));
    assert_int_equal(out, 16);
    assert_false(pk__round_up_overflows(5, 1, &out));
    assert_int_equal(out, 5);
    assert_false(pk__round_up_overflows(SIZE_MAX, 1, &out));
    assert_int_equal(out, SIZE_MAX);
    assert_false(pk__round_up_overflows(SIZE_MAX - 7, 8, &out));
    assert_int_equal(out, SIZE_MAX - 7);
    assert_false(pk__round_up_overflows(SIZE_MAX - 15, 8, &out));
    assert_int_equal(out, SIZE_MAX - 15); /* already a multiple of 8 */
    assert_false(pk__round_up_overflows(SIZE_MAX - 14, 8, &out));
    assert_int_equal(out, SIZE_MAX - 7);
    assert_false(pk__round_up_overflows(1, SIZE_MAX / 2 + 1, &out));
    assert_int_equal(out, SIZE_MAX / 2 + 1);
    assert_false(pk__round_up_overflows(SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 1, &out));
    assert_int_equal(out, SIZE_MAX / 2 + 1);

    out = 777;
    assert_true(pk__round_up_overflows(SIZE_MAX - 6, 8, &out));
    assert_true(pk__round_up_overflows(SIZE_MAX, 2, &out));
    assert_true(pk__round_up_overflows(SIZE_MAX / 2 + 2, SIZE_MAX / 2 + 1, &out));
    assert_true(pk__round_up_overflows(SIZE_MAX, SIZE_MAX / 2 + 1, &out));
    assert_int_equal(out, 777);

    rng_seed(0x20c);
    for (int r = 0; r < RANDOM_ROUNDS; r++) {
        size_t x = rng_size();
        size_t align = (size_t)1 << (rng_next() % WORD_BITS);
        size_t rem = x & (align - 1);
        size_t want = x;
        bool over = rem != 0 && __builtin_add_overflow(x, align - rem, &want);
        size_t got = 0xfeed;
        assert_int_equal(pk__round_up_overflows(x, align, &got), over);
        if (over) {
            assert_int_equal(got, 0xfeed);
        } else {
            assert_int_equal(got, want);
            assert_int_equal(got & (align - 1), 0);
            assert_true(got >= x && got - x < align);
        }
    }
}

/* Naive references for the portable fallbacks themselves. */
static unsigned naive_ctz(size_t x)
{
    for (unsigned i = 0; i < WORD_BITS; i++) {
        if ((x >> i) & 1u) {
            return i;
        }
    }
    return WORD_BITS;
}

static unsigned naive_clz(size_t x)
{
    for (unsigned i = 0; i < WORD_BITS; i++) {
        if ((x >> (WORD_BITS - 1 - i)) & 1u) {
            return i;
        }
    }
    return WORD_BITS;
}

static unsigned naive_popcount(size_t x)
{
    unsigned n = 0;
    for (unsigned i = 0; i < WORD_BITS; i++) {
        n += (unsigned)((x >> i) & 1u);
    }
    return n;
}

static void check_bits(size_t x)
{
    assert_int_equal(pk__popcount(x), pk__popcount_portable(x));
    assert_int_equal(pk__popcount_portable(x), naive_popcount(x));
    if (x == 0) {
        return;
    }
    assert_int_equal(pk__ctz(x), pk__ctz_portable(x));
    assert_int_equal(pk__ctz_portable(x), naive_ctz(x));
    assert_int_equal(pk__clz(x), pk__clz_portable(x));
    assert_int_equal(pk__clz_portable(x), naive_clz(x));
    unsigned lg = pk__log2_floor(x);
    assert_int_equal(lg, WORD_BITS - 1 - naive_clz(x));
    assert_true((x >> lg) == 1u);
}

static void test_bit_tricks(void **state)
{
    (void)state;
    check_bits(0);
    assert_int_equal(pk__popcount(0), 0);
    check_bits(SIZE_MAX);
    assert_int_equal(pk__popcount(SIZE_MAX), WORD_BITS);
    assert_int_equal(pk__ctz(SIZE_MAX), 0);
    assert_int_equal(pk__clz(SIZE_MAX), 0);
    assert_int_equal(pk__log2_floor(SIZE_MAX), WORD_BITS - 1);
    assert_int_equal(pk__log2_floor(1), 0);
    assert_int_equal(pk__log2_floor(2), 1);
    assert_int_equal(pk__log2_floor(3), 1);
    assert_int_equal(pk__log2_floor(4), 2);
    assert_int_equal(pk__log2_floor(1000), 9);
    assert_int_equal(pk__log2_floor(1024), 10);
    for (unsigned i = 0; i < WORD_BITS; i++) {
        size_t bit = (size_t)1 << i;
        check_bits(bit);
        assert_int_equal(pk__ctz(bit), i);
        assert_int_equal(pk__ctz_portable(bit), i);
        assert_int_equal(pk__clz(bit), WORD_BITS - 1 - i);
        assert_int_equal(pk__clz_portable(bit), WORD_BITS - 1 - i);
        assert_int_equal(pk__popcount(bit), 1);
        assert_int_equal(pk__popcount_portable(bit), 1);
        assert_int_equal(pk__log2_floor(bit), i);
        check_bits(bit - 1);
        check_bits(~(bit - 1));   /* ones from bit i up */
        check_bits(SIZE_MAX ^ bit);
        if (i > 0) {
            check_bits(bit | 1u);
            assert_int_equal(pk__log2_floor(bit | 1u), i);
            assert_int_equal(pk__ctz(bit | 1u), 0);
        }
    }
    rng_seed(0xb175);
    for (int r = 0; r < RANDOM_ROUNDS; r++) {
        check_bits((size_t)rng_next());
        check_bits(rng_size());
    }
}

static size_t naive_rotr(size_t x, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        x = (x >> 1) | ((x & 1u) << (WORD_BITS - 1));
    }
    return x;
}

static void test_rotr(void **state)
{
    (void)state;
    assert_int_equal(pk__rotr(0, 0), 0);
    assert_int_equal(pk__rotr(1, 0), 1);
    assert_int_equal(pk__rotr(SIZE_MAX, 0), SIZE_MAX);
    assert_int_equal(pk__rotr(0x1234, 0), 0x1234);
    assert_int_equal(pk__rotr(1, 1), SIZE_MAX / 2 + 1);
    assert_int_equal(pk__rotr(2, 1), 1);
    assert_int_equal(pk__rotr(1, WORD_BITS - 1), 2);
    assert_int_equal(pk__rotr(0x10, 4), 1);
    assert_int_equal(pk__rotr(0x3, 1), (SIZE_MAX / 2 + 1) | 1u);
    const size_t fixed[] = {0, 1, 2, 3, 0x80, SIZE_MAX, SIZE_MAX / 2, SIZE_MAX / 2 + 1,
                            (size_t)0x0123456789abcdefull};
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++) {
        for (unsigned n = 0; n < WORD_BITS; n++) {
            size_t got = pk__rotr(fixed[k], n);
            assert_int_equal(got, naive_rotr(fixed[k], n));
            assert_int_equal(pk__popcount(got), pk__popcount(fixed[k]));
        }
    }
    rng_seed(0x707);
    for (int r = 0; r < RANDOM_ROUNDS / 10; r++) {
        size_t x = (size_t)rng_next();
        unsigned n = (unsigned)(rng_next() % WORD_BITS);
        assert_int_equal(pk__rotr(x, n), naive_rotr(x, n));
        /* Rotating right by n then by (bits - n) gives x back. */
        assert_int_equal(pk__rotr(pk__rotr(x, n), (WORD_BITS - n) % WORD_BITS), x);
    }
}

/* pk__lock and pk__unlock skip a lock with no functions. */
static int internal_lock_calls, internal_unlock_calls;
static void *lock_ctx_seen;
static void count_lock(void *ctx)
{
    internal_lock_calls++;
    lock_ctx_seen = ctx;
}
static void count_unlock(void *ctx)
{
    internal_unlock_calls++;
    lock_ctx_seen = ctx;
}

static void test_internal_lock_calls(void **state)
{
    (void)state;
    internal_lock_calls = internal_unlock_calls = 0;
    pk_lock none = {NULL, NULL, NULL};
    pk__lock(&none);
    pk__unlock(&none);
    int token;
    pk_lock l = {count_lock, count_unlock, &token};
    pk__lock(&l);
    assert_int_equal(internal_lock_calls, 1);
    assert_int_equal(internal_unlock_calls, 0);
    assert_ptr_equal(lock_ctx_seen, &token);
    lock_ctx_seen = NULL;
    pk__unlock(&l);
    assert_int_equal(internal_lock_calls, 1);
    assert_int_equal(internal_unlock_calls, 1);
    assert_ptr_equal(lock_ctx_seen, &token);
    lock_ctx_seen = NULL; /* token dies on return */
}

/* pk_report_fault itself: returns kind, passes the fields. */
static void test_internal_fault(void **state)
{
    (void)state;
    int x = 0;
    assert_int_equal(pk_report_fault(PK_ERR_SEALED, "arena", &x), PK_ERR_SEALED);
    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec.e[0].kind, PK_ERR_SEALED);
    assert_string_equal(rec.e[0].allocator, "arena");
    assert_ptr_equal(rec.e[0].ptr, &x);
    assert_null(rec.e[0].file);
    assert_null(rec.e[0].call_file);
    assert_int_equal(rec.e[0].owner, 0);
    assert_ptr_equal(rec.e[0].ctx, &rec);
    assert_int_equal(pk_report_fault(PK_ERR_CORRUPT, "heap", NULL), PK_ERR_CORRUPT);
    assert_int_equal(rec.calls, 2);
    assert_null(rec.e[1].ptr);
}

/* ------------------------------------------------------------------------- */
/* Version */

#define STR_(x) #x
#define STR(x) STR_(x)

static void test_version(void **state)
{
    (void)state;
    const char *built = STR(PK_VERSION_MAJOR) "." STR(PK_VERSION_MINOR) "." STR(PK_VERSION_PATCH);
    assert_string_equal(PK_VERSION_STRING, built);
    char printed[64];
    snprintf(printed, sizeof printed, "%d.%d.%d", PK_VERSION_MAJOR, PK_VERSION_MINOR,
             PK_VERSION_PATCH);
    assert_string_equal(PK_VERSION_STRING, printed);
    assert_true(PK_VERSION_MAJOR >= 0 && PK_VERSION_MINOR >= 0 && PK_VERSION_PATCH >= 0);
#if !(PK_VERSION_MAJOR >= 0 && PK_VERSION_MINOR >= 0 && PK_VERSION_PATCH >= 0)
#error "version macros must be usable in #if"
#endif
}

/* ------------------------------------------------------------------------- */
/* pk_pthread_lock */

static void test_pthread_lock(void **state)
{
    (void)state;
    pthread_mutex_t m;
    assert_int_equal(pthread_mutex_init(&m, NULL), 0);
    pk_lock l = pk_pthread_lock(&m);
    assert_non_null(l.lock);
    assert_non_null(l.unlock);
    assert_ptr_equal(l.ctx, &m);

    assert_int_equal(pthread_mutex_trylock(&m), 0);
    pthread_mutex_unlock(&m);

    l.lock(l.ctx);
    assert_int_equal(pthread_mutex_trylock(&m), EBUSY);
    l.unlock(l.ctx);
    assert_int_equal(pthread_mutex_trylock(&m), 0);
    pthread_mutex_unlock(&m);

    /* Twice in a row, through the internal helpers as allocators call them. */
    pk__lock(&l);
    assert_int_equal(pthread_mutex_trylock(&m), EBUSY);
    pk__unlock(&l);
    assert_int_equal(pthread_mutex_trylock(&m), 0);
    pthread_mutex_unlock(&m);

    /* Two locks on two mutexes are independent. */
    pthread_mutex_t m2;
    assert_int_equal(pthread_mutex_init(&m2, NULL), 0);
    pk_lock l2 = pk_pthread_lock(&m2);
    assert_ptr_equal(l2.ctx, &m2);
    l2.lock(l2.ctx);
    assert_int_equal(pthread_mutex_trylock(&m), 0);
    pthread_mutex_unlock(&m);
    assert_int_equal(pthread_mutex_trylock(&m2), EBUSY);
    l2.unlock(l2.ctx);

    assert_int_equal(pthread_mutex_destroy(&m2), 0);
    assert_int_equal(pthread_mutex_destroy(&m), 0);
}

/* A pool guarded by the pthread lock works and leaves the mutex free between
 * calls. */
typedef struct {
    test_pool *t;
    int rounds;
} worker_arg;

static void *pool_worker(void *arg)
{
    worker_arg *w = arg;
    for (int i = 0; i < w->rounds; i++) {
        void *b = pk_pool_alloc(&w->t->pool);
        if (b != NULL) {
            memset(b, i & 0xff, BLOCK);
            (void)pk_pool_free(&w->t->pool, b);
        }
    }
    return NULL;
}

static void test_pthread_lock_on_pool(void **state)
{
    (void)state;
    pthread_mutex_t m;
    assert_int_equal(pthread_mutex_init(&m, NULL), 0);
    test_pool t;
    make_pool(&t);
    pk_lock l = pk_pthread_lock(&m);
    assert_lock_round_trip(&l, &m);
    assert_int_equal(pk_pool_set_lock(&t.pool, &l), PK_OK);

    void *a = pk_pool_alloc(&t.pool);
    assert_non_null(a);
    assert_int_equal(pthread_mutex_trylock(&m), 0);
    pthread_mutex_unlock(&m);

    enum { THREADS = 4 };
    pthread_t th[THREADS];
    worker_arg w = {&t, 2000};
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, pool_worker, &w), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
    }
    assert_int_equal(pk_pool_free(&t.pool, a), PK_OK);
    assert_int_equal(pk_pool_check(&t.pool), PK_OK);
    pk_stats s;
    pk_pool_stats(&t.pool, &s);
    assert_int_equal(s.live, 0);
    assert_int_equal(s.allocs, s.frees);
    assert_int_equal(s.rejected, 0);
    assert_int_equal(rec.calls, 0);
    assert_int_equal(pthread_mutex_trylock(&m), 0);
    pthread_mutex_unlock(&m);
    assert_int_equal(pk_pool_set_lock(&t.pool, NULL), PK_OK);
    assert_int_equal(pthread_mutex_destroy(&m), 0);
}

/* ------------------------------------------------------------------------- */

#define T(f) cmocka_unit_test_setup_teardown(f, setup_counting, teardown_recorder)

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* First, before any handler is set. */
        cmocka_unit_test_teardown(test_default_handler_initially, teardown_recorder),
        T(test_status_values),
        T(test_status_str_distinct),
        T(test_status_str_out_of_range),
        T(test_frag_internal),
        T(test_frag_external),
        T(test_frag_of_pool_stats),
        T(test_format_basic),
        T(test_format_every_status),
        T(test_format_null_ptr),
        T(test_format_max_ptr),
        T(test_format_with_sites),
        T(test_format_null_allocator),
        T(test_format_truncation),
        T(test_format_size_zero),
        T(test_custom_handler_gets_fault),
        T(test_null_restores_default),
        T(test_default_handler_long_line),
        T(test_reentrant_fault_not_dispatched),
        T(test_handler_runs_unlocked),
        T(test_other_thread_fault_dispatched),
        T(test_is_pow2),
        T(test_add_overflows),
        T(test_mul_overflows),
        T(test_round_up_overflows),
        T(test_bit_tricks),
        T(test_rotr),
        T(test_internal_lock_calls),
        T(test_internal_fault),
        T(test_version),
        T(test_pthread_lock),
        T(test_pthread_lock_on_pool),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
