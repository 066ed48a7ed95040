/* Helpers shared by the cmocka unit tests (support.h). */
#include "support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "poolkit/common.h"

pk_test_faults faults;
int lock_depth;
unsigned lock_calls;

void count_fault(const pk_fault *f, void *ctx)
{
    (void)ctx;
    faults.calls++;
    faults.last = *f;
    faults.lock_depth_seen = lock_depth;
}

int setup_faults(void **state)
{
    (void)state;
    memset(&faults, 0, sizeof faults);
    lock_depth = 0;
    pk_set_fault_handler(count_fault, NULL);
    return 0;
}

int teardown_faults(void **state)
{
    (void)state;
    pk_set_fault_handler(NULL, NULL);
    return 0;
}

void expect_fault_named(pk_status kind, const void *ptr, const char *allocator)
{
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, kind);
    assert_ptr_equal(faults.last.ptr, ptr);
    assert_string_equal(faults.last.allocator, allocator);
    faults.calls = 0;
}

void expect_fault_sites(pk_status kind, const void *ptr, const char *allocator, const char *file, int alloc_line,
                        uint32_t owner, int call_line)
{
    assert_int_equal(faults.calls, 1);
    assert_int_equal(faults.last.kind, kind);
    assert_ptr_equal(faults.last.ptr, ptr);
    assert_string_equal(faults.last.allocator, allocator);
    if (alloc_line != 0) {
        assert_non_null(faults.last.file);
        assert_string_equal(faults.last.file, file);
    } else {
        assert_null(faults.last.file);
    }
    assert_int_equal(faults.last.line, alloc_line);
    assert_int_equal(faults.last.owner, owner);
    if (call_line != 0) {
        assert_non_null(faults.last.call_file);
        assert_string_equal(faults.last.call_file, file);
    } else {
        assert_null(faults.last.call_file);
    }
    assert_int_equal(faults.last.call_line, call_line);
    assert_int_equal(faults.lock_depth_seen, 0);
    faults.calls = 0;
}

void counting_lock(void *ctx)
{
    assert_ptr_equal(ctx, &lock_calls);
    assert_int_equal(lock_depth, 0);
    lock_depth++;
    lock_calls++;
}

void counting_unlock(void *ctx)
{
    assert_ptr_equal(ctx, &lock_calls);
    assert_int_equal(lock_depth, 1);
    lock_depth--;
}

recorder rec;

void rec_reset(void)
{
    memset(&rec, 0, sizeof rec);
}

void record(const pk_fault *f, void *ctx)
{
    if (rec.calls < REC_MAX) {
        rec_entry *e = &rec.e[rec.calls];
        e->kind = f->kind;
        e->allocator = f->allocator;
        e->ptr = f->ptr;
        e->file = f->file;
        e->call_file = f->call_file;
        e->owner = f->owner;
        e->ctx = ctx;
        e->lock_depth = lock_depth;
    }
    rec.calls++;
}

int teardown_recorder(void **state)
{
    (void)state;
    pk_set_fault_handler(NULL, NULL);
    rec_reset();
    return 0;
}

void assert_same_stats(const pk_stats *x, const pk_stats *y)
{
    assert_int_equal(x->capacity, y->capacity);
    assert_int_equal(x->in_use, y->in_use);
    assert_int_equal(x->requested, y->requested);
    assert_int_equal(x->peak_in_use, y->peak_in_use);
    assert_int_equal(x->free_bytes, y->free_bytes);
    assert_int_equal(x->largest_free, y->largest_free);
    assert_int_equal(x->block_size, y->block_size);
    assert_int_equal(x->live, y->live);
    assert_int_equal(x->peak_live, y->peak_live);
    assert_int_equal(x->allocs, y->allocs);
    assert_int_equal(x->frees, y->frees);
    assert_int_equal(x->failures, y->failures);
    assert_int_equal(x->rejected, y->rejected);
}

size_t random_ops(void)
{
    const char *text = getenv("POOLKIT_RANDOM_OPS");
    return text != NULL ? (size_t)strtoull(text, NULL, 10) : 1000000;
}

void report_line(void *ctx, const char *text)
{
    (void)ctx;
    print_error("%s\n", text);
}
