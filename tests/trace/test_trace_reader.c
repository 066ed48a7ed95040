/*
 * The trace reader (tools/trace/trace.c) on files built here byte by byte:
 * a valid file parsed into the right events, sorted by seq, with threads
 * and missing seqs counted; every error FORMAT.md lists, with its message
 * and offset; the file cut at every byte; pk_trace_load's messages. Each
 * parse gets a heap copy of exactly its bytes, so that the sanitizer builds
 * catch any read past the end.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fdopen */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "trace/trace.h"

typedef struct {
    unsigned char bytes[4096];
    size_t size;
} file;

static void put_byte(file *f, unsigned v)
{
    assert_true(f->size < sizeof f->bytes);
    f->bytes[f->size++] = (unsigned char)v;
}

static void put_u32(file *f, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        put_byte(f, (v >> (8 * i)) & 0xFFu);
    }
}

static void put_varint(file *f, uint64_t v)
{
    while (v >= 0x80u) {
        put_byte(f, (unsigned)(v & 0x7Fu) | 0x80u);
        v >>= 7;
    }
    put_byte(f, (unsigned)v);
}

static void put_header(file *f, uint32_t version, uint32_t header_size)
{
    memcpy(f->bytes, PK_TRACE_MAGIC, 8);
    f->size = 8;
    put_u32(f, version);
    put_u32(f, header_size);
    put_u32(f, 4242);  /* pid */
    put_u32(f, 0);     /* flags */
    put_u32(f, 1);     /* start time, low and high */
    put_u32(f, 0);
}

static void put_block_start(file *f, uint64_t thread, uint64_t count)
{
    put_byte(f, 0xB1);
    put_varint(f, thread);
    put_varint(f, count);
}

/* One event: op, seq, time delta, then the operands given. */
static void put_event(file *f, unsigned op, uint64_t seq, uint64_t time_delta, int operands, ...)
{
    va_list args;
    put_byte(f, op);
    put_varint(f, seq);
    put_varint(f, time_delta);
    va_start(args, operands);
    for (int i = 0; i < operands; i++) {
        put_varint(f, va_arg(args, uint64_t));
    }
    va_end(args);
}

/* The valid file: thread 0 and thread 1, every operation, seqs 0..6 out of
 * file order; block_end[] the offsets where each block ends. */
static size_t block_end[2];

static void valid_file(file *f)
{
    put_header(f, 1, 32);
    put_block_start(f, 0, 4);
    put_event(f, PK_TRACE_MALLOC, 0, 100, 2, (uint64_t)24, (uint64_t)0x1000);
    put_event(f, PK_TRACE_CALLOC, 2, 50, 2, (uint64_t)300, (uint64_t)0x2000);
    put_event(f, PK_TRACE_REALLOC, 3, 7, 3, (uint64_t)0x1000, (uint64_t)5000, (uint64_t)0x7f0000001000);
    put_event(f, PK_TRACE_FREE, 6, 1000, 1, (uint64_t)0x2000);
    block_end[0] = f->size;
    put_block_start(f, 1, 3);
    put_event(f, PK_TRACE_ALIGNED, 1, 120, 3, (uint64_t)100, (uint64_t)64, (uint64_t)0x3000);
    put_event(f, PK_TRACE_MALLOC, 4, 1, 2, (uint64_t)UINT64_MAX, (uint64_t)0);
    put_event(f, PK_TRACE_FREE, 5, 2, 1, (uint64_t)0x3000);
    block_end[1] = f->size;
}

/* pk_trace_parse on a heap copy of the first size bytes. */
static int parse(const file *f, size_t size, pk_trace *t, char *err, size_t err_size)
{
    unsigned char *copy = malloc(size == 0 ? 1 : size);
    assert_non_null(copy);
    memcpy(copy, f->bytes, size);
    int status = pk_trace_parse(copy, size, t, err, err_size);
    free(copy);
    return status;
}

static void expect_error(const file *f, const char *message)
{
    pk_trace t;
    memset(&t, 0xA5, sizeof t);
    pk_trace untouched = t;
    char err[256] = "";
    assert_int_equal(parse(f, f->size, &t, err, sizeof err), -1);
    assert_string_equal(err, message);
    assert_memory_equal(&t, &untouched, sizeof t);
}

static void test_valid_file(void **state)
{
    (void)state;
    file f;
    valid_file(&f);
    pk_trace t;
    char err[256] = "";
    assert_int_equal(parse(&f, f.size, &t, err, sizeof err), 0);
    assert_int_equal(t.count, 7);
    assert_int_equal(t.version, 1);
    assert_int_equal(t.pid, 4242);
    assert_int_equal(t.threads, 2);
    assert_int_equal(t.missing, 0);
    static const struct {
        uint8_t op;
        uint32_t thread;
        uint64_t time, size, align, result, old;
    } want[] = {
        {PK_TRACE_MALLOC, 0, 100, 24, 0, 0x1000, 0},
        {PK_TRACE_ALIGNED, 1, 120, 100, 64, 0x3000, 0},
        {PK_TRACE_CALLOC, 0, 150, 300, 0, 0x2000, 0},
        {PK_TRACE_REALLOC, 0, 157, 5000, 0, 0x7f0000001000, 0x1000},
        {PK_TRACE_MALLOC, 1, 121, UINT64_MAX, 0, 0, 0},
        {PK_TRACE_FREE, 1, 123, 0, 0, 0, 0x3000},
        {PK_TRACE_FREE, 0, 1157, 0, 0, 0, 0x2000},
    };
    for (size_t i = 0; i < t.count; i++) {
        assert_int_equal(t.events[i].seq, i);
        assert_int_equal(t.events[i].op, want[i].op);
        assert_int_equal(t.events[i].thread, want[i].thread);
        assert_int_equal(t.events[i].time_ns, want[i].time);
        assert_int_equal(t.events[i].size, want[i].size);
        assert_int_equal(t.events[i].align, want[i].align);
        assert_int_equal(t.events[i].result, want[i].result);
        assert_int_equal(t.events[i].old, want[i].old);
    }
    pk_trace_free(&t);
}

static void test_header_only_and_longer_header(void **state)
{
    (void)state;
    file f;
    put_header(&f, 1, 32);
    pk_trace t;
    char err[256];
    assert_int_equal(parse(&f, f.size, &t, err, sizeof err), 0);
    assert_int_equal(t.count, 0);
    assert_int_equal(t.threads, 0);
    assert_int_equal(t.missing, 0);
    pk_trace_free(&t);
    /* A header of 40 bytes: the reader skips the 8 it does not know. */
    put_header(&f, 1, 40);
    for (int i = 0; i < 8; i++) {
        put_byte(&f, 0xEE);
    }
    put_block_start(&f, 3, 1);
    put_event(&f, PK_TRACE_FREE, 9, 5, 1, (uint64_t)0x10);
    assert_int_equal(parse(&f, f.size, &t, err, sizeof err), 0);
    assert_int_equal(t.count, 1);
    assert_int_equal(t.events[0].thread, 3);
    assert_int_equal(t.missing, 9); /* seqs 0..8 */
    pk_trace_free(&t);
}

static void test_missing_seqs_counted(void **state)
{
    (void)state;
    file f;
    put_header(&f, 1, 32);
    put_block_start(&f, 0, 3);
    put_event(&f, PK_TRACE_MALLOC, 0, 1, 2, (uint64_t)8, (uint64_t)0x10);
    put_event(&f, PK_TRACE_MALLOC, 4, 1, 2, (uint64_t)8, (uint64_t)0x20);
    put_event(&f, PK_TRACE_MALLOC, 2, 1, 2, (uint64_t)8, (uint64_t)0x30);
    pk_trace t;
    char err[256];
    assert_int_equal(parse(&f, f.size, &t, err, sizeof err), 0);
    assert_int_equal(t.missing, 2);
    assert_int_equal(t.events[1].seq, 2);
    pk_trace_free(&t);
}

static void test_header_errors(void **state)
{
    (void)state;
    file f = {{0}, 0};
    expect_error(&f, "byte 0: empty file, not a poolkit trace");
    put_header(&f, 1, 32);
    f.bytes[3] = 'X';
    expect_error(&f, "byte 0: not a poolkit trace (bad magic)");
    put_header(&f, 1, 32);
    f.size = 5;
    expect_error(&f, "byte 0: header truncated (magic)");
    f.size = 10;
    expect_error(&f, "byte 8: header truncated (version)");
    f.size = 31;
    expect_error(&f, "byte 24: header truncated (start time)");
    put_header(&f, 2, 32);
    expect_error(&f, "byte 8: version 2, this reader reads version 1");
    put_header(&f, 1, 31);
    expect_error(&f, "byte 12: header size 31, below 32");
    put_header(&f, 1, 40);
    expect_error(&f, "byte 32: header truncated (header size 40, the file ends at byte 32)");
}

static void test_record_errors(void **state)
{
    (void)state;
    file f;
    put_header(&f, 1, 32);
    put_byte(&f, 0xB2);
    expect_error(&f, "byte 32: block marker 0xB2, expected 0xB1");

    put_header(&f, 1, 32);
    put_block_start(&f, 0, 0);
    expect_error(&f, "byte 34: event count 0");

    put_header(&f, 1, 32);
    put_block_start(&f, 0, 1);
    put_event(&f, 6, 0, 0, 0);
    expect_error(&f, "byte 35: unknown operation 6");

    put_header(&f, 1, 32);
    put_block_start(&f, 0, 1);
    put_byte(&f, 0);
    expect_error(&f, "byte 35: unknown operation 0");

    put_header(&f, 1, 32);
    put_block_start(&f, 0, 1);
    put_byte(&f, PK_TRACE_FREE);
    for (int i = 0; i < 10; i++) {
        put_byte(&f, 0x80);
    }
    put_byte(&f, 0);
    expect_error(&f, "byte 36: varint longer than 10 bytes (seq)");

    put_header(&f, 1, 32);
    put_block_start(&f, 0, 1);
    put_byte(&f, PK_TRACE_FREE);
    for (int i = 0; i < 9; i++) {
        put_byte(&f, 0xFF);
    }
    put_byte(&f, 0x02);
    expect_error(&f, "byte 36: varint above 2^64 - 1 (seq)");

    /* 2^64 - 1 itself is fine. */
    put_header(&f, 1, 32);
    put_block_start(&f, 0, 1);
    put_event(&f, PK_TRACE_FREE, UINT64_MAX, 0, 1, (uint64_t)UINT64_MAX);
    pk_trace t;
    char err[256];
    assert_int_equal(parse(&f, f.size, &t, err, sizeof err), 0);
    assert_int_equal(t.events[0].seq, UINT64_MAX);
    assert_int_equal(t.events[0].old, UINT64_MAX);
    assert_int_equal(t.missing, UINT64_MAX);
    pk_trace_free(&t);

    put_header(&f, 1, 32);
    put_block_start(&f, 0, 2);
    put_event(&f, PK_TRACE_MALLOC, 0, 0, 2, (uint64_t)8, (uint64_t)0x10);
    put_event(&f, PK_TRACE_MALLOC, 1, 0, 1, (uint64_t)8);
    expect_error(&f, "byte 44: record truncated (result)");

    put_header(&f, 1, 32);
    put_block_start(&f, 0, 2);
    put_event(&f, PK_TRACE_MALLOC, 0, 0, 2, (uint64_t)8, (uint64_t)0x10);
    expect_error(&f, "byte 40: record truncated (operation; 1 of the block's 2 events read)");

    put_header(&f, 1, 32);
    put_block_start(&f, 0, 1);
    put_event(&f, PK_TRACE_MALLOC, 7, 0, 2, (uint64_t)8, (uint64_t)0x10);
    put_block_start(&f, 1, 1);
    put_event(&f, PK_TRACE_FREE, 7, 0, 1, (uint64_t)0x10);
    expect_error(&f, "byte 43: sequence number 7 seen twice (first at byte 35)");

    put_header(&f, 1, 32);
    put_block_start(&f, (uint64_t)UINT32_MAX + 1, 1);
    put_event(&f, PK_TRACE_FREE, 0, 0, 1, (uint64_t)0x10);
    expect_error(&f, "byte 33: thread number 4294967296 above 2^32 - 1");

    put_header(&f, 1, 32);
    put_block_start(&f, 0, 2);
    put_event(&f, PK_TRACE_FREE, 0, UINT64_MAX, 1, (uint64_t)0x10);
    put_event(&f, PK_TRACE_FREE, 1, 1, 1, (uint64_t)0x20);
    expect_error(&f, "byte 50: time above 2^64 - 1 ns since the trace started");
}

/* Cut anywhere, the file is an error naming an offset within what is left,
 * except at a block's end, where it is the valid file of the blocks before
 * (cut at 0, it is empty: test_header_errors). */
static void test_truncated_at_every_byte(void **state)
{
    (void)state;
    file f;
    valid_file(&f);
    for (size_t size = 1; size < f.size; size++) {
        pk_trace t;
        char err[256] = "";
        int status = parse(&f, size, &t, err, sizeof err);
        if (size == 32 || size == block_end[0]) {
            assert_int_equal(status, 0);
            assert_int_equal(t.count, size == 32 ? 0 : 4);
            assert_int_equal(t.missing, size == 32 ? 0 : 3);
            pk_trace_free(&t);
            continue;
        }
        assert_int_equal(status, -1);
        char *rest = NULL;
        assert_true(strncmp(err, "byte ", 5) == 0);
        unsigned long offset = strtoul(err + 5, &rest, 10);
        assert_true(rest != err + 5 && strncmp(rest, ": ", 2) == 0);
        assert_true(offset <= size);
        if (strstr(rest, "truncated") == NULL) {
            fail_msg("cut at %zu: %s", size, err);
        }
    }
}

static void test_small_error_buffer(void **state)
{
    (void)state;
    file f;
    put_header(&f, 2, 32);
    pk_trace t;
    char err[8];
    assert_int_equal(parse(&f, f.size, &t, err, sizeof err), -1);
    assert_string_equal(err, "byte 8:");
    assert_int_equal(parse(&f, f.size, &t, NULL, 0), -1);
}

static void test_load(void **state)
{
    (void)state;
    char path[] = "/tmp/pk_trace_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    file f;
    valid_file(&f);
    FILE *out = fdopen(fd, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(f.bytes, 1, f.size, out), f.size);
    assert_int_equal(fclose(out), 0);
    pk_trace t;
    char err[512];
    assert_int_equal(pk_trace_load(path, &t, err, sizeof err), 0);
    assert_int_equal(t.count, 7);
    pk_trace_free(&t);

    out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite("PKTRACE\n\2\0\0\0", 1, 12, out), 12);
    assert_int_equal(fclose(out), 0);
    char want[600];
    assert_int_equal(pk_trace_load(path, &t, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s: byte 12: header truncated (header size)", path);
    assert_string_equal(err, want);
    assert_int_equal(remove(path), 0);

    assert_int_equal(pk_trace_load(path, &t, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
    assert_string_equal(err, want);
    assert_int_equal(pk_trace_load("/", &t, err, sizeof err), -1);
    assert_string_equal(err, "/: cannot read: Is a directory");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_file),
        cmocka_unit_test(test_header_only_and_longer_header),
        cmocka_unit_test(test_missing_seqs_counted),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_record_errors),
        cmocka_unit_test(test_truncated_at_every_byte),
        cmocka_unit_test(test_small_error_buffer),
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
