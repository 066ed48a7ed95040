/*
 * The trace reader (trace.h): parses a whole file in memory with a cursor
 * that checks every byte it takes against the end, so that a truncated or
 * corrupt file is an error message with its offset and never a read out of
 * bounds. Events are gathered in file order with the offset they start at
 * (for the message about a repeated sequence number), then sorted by seq.
 */
#include "trace/trace.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_SIZE 32u
#define BLOCK_MARKER 0xB1u
#define VARINT_MAX_BYTES 10u

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t at;        /* the next byte to read */
    char *err;
    size_t err_size;
} cursor;

/* Formats "byte OFFSET: ..." into the caller's buffer; returns -1. */
static int fail_at(cursor *c, size_t offset, const char *format, ...)
{
    if (c->err == NULL || c->err_size == 0) {
        return -1;
    }
    int n = snprintf(c->err, c->err_size, "byte %zu: ", offset);
    if (n >= 0 && (size_t)n < c->err_size) {
        va_list args;
        va_start(args, format);
        (void)vsnprintf(c->err + n, c->err_size - (size_t)n, format, args);
        va_end(args);
    }
    return -1;
}

/* A little-endian 32-bit field of the header at offset. */
static uint32_t read_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One varint of the record field `what` into *value; -1 with the message if
 * it is cut by the end of the data, longer than 10 bytes or above 2^64 - 1. */
static int read_varint(cursor *c, const char *what, uint64_t *value)
{
    size_t start = c->at;
    uint64_t v = 0;
    for (unsigned i = 0;; i++) {
        if (i == VARINT_MAX_BYTES) {
            return fail_at(c, start, "varint longer than %u bytes (%s)", VARINT_MAX_BYTES, what);
        }
        if (c->at >= c->size) {
            return fail_at(c, start, "record truncated (%s)", what);
        }
        unsigned char byte = c->data[c->at++];
        /* The 10th byte holds bit 63 alone: anything above 1 overflows. */
        if (i == VARINT_MAX_BYTES - 1 && (byte & 0x7Fu) > 1u) {
            return fail_at(c, start, "varint above 2^64 - 1 (%s)", what);
        }
        v |= (uint64_t)(byte & 0x7Fu) << (7u * i);
        if ((byte & 0x80u) == 0) {
            break;
        }
    }
    *value = v;
    return 0;
}

typedef struct {
    pk_trace_event event;
    size_t offset;    /* where the event starts in the file */
} located_event;

typedef struct {
    located_event *items;
    size_t count, capacity;
} event_list;

static int push_event(cursor *c, event_list *list, const located_event *e)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity == 0 ? 1024 : list->capacity * 2;
        if (capacity > SIZE_MAX / sizeof *list->items) {
            return fail_at(c, e->offset, "too many events for this machine");
        }
        located_event *grown = realloc(list->items, capacity * sizeof *grown);
        if (grown == NULL) {
            return fail_at(c, e->offset, "out of memory after %zu events", list->count);
        }
        list->items = grown;
        list->capacity = capacity;
    }
    list->items[list->count++] = *e;
    return 0;
}

/* The operands each operation has after its op, seq and time fields. */
static int read_operands(cursor *c, pk_trace_event *e)
{
    switch (e->op) {
    case PK_TRACE_MALLOC:
    case PK_TRACE_CALLOC:
        return read_varint(c, "size", &e->size) || read_varint(c, "result", &e->result) ? -1 : 0;
    case PK_TRACE_REALLOC:
        return read_varint(c, "old pointer", &e->old) || read_varint(c, "size", &e->size) ||
                       read_varint(c, "result", &e->result)
                   ? -1
                   : 0;
    case PK_TRACE_ALIGNED:
        return read_varint(c, "size", &e->size) || read_varint(c, "alignment", &e->align) ||
                       read_varint(c, "result", &e->result)
                   ? -1
                   : 0;
    default: /* PK_TRACE_FREE: the caller checked the operation */
        return read_varint(c, "old pointer", &e->old);
    }
}

/* One block at c->at: its events appended to list, its thread to threads. */
static int read_block(cursor *c, event_list *list, uint32_t *thread)
{
    size_t marker_at = c->at;
    unsigned char marker = c->data[c->at++];
    if (marker != BLOCK_MARKER) {
        return fail_at(c, marker_at, "block marker 0x%02X, expected 0x%02X", marker, BLOCK_MARKER);
    }
    size_t thread_at = c->at;
    uint64_t thread_number, count;
    if (read_varint(c, "thread", &thread_number) != 0) {
        return -1;
    }
    if (thread_number > UINT32_MAX) {
        return fail_at(c, thread_at, "thread number %" PRIu64 " above 2^32 - 1", thread_number);
    }
    *thread = (uint32_t)thread_number;
    size_t count_at = c->at;
    if (read_varint(c, "event count", &count) != 0) {
        return -1;
    }
    if (count == 0) {
        return fail_at(c, count_at, "event count 0");
    }
    uint64_t time_ns = 0;
    for (uint64_t i = 0; i < count; i++) {
        located_event e = {.offset = c->at};
        if (c->at >= c->size) {
            return fail_at(c, c->at, "record truncated (operation; %" PRIu64 " of the block's %" PRIu64
                                     " events read)", i, count);
        }
        e.event.op = c->data[c->at++];
        if (e.event.op < PK_TRACE_MALLOC || e.event.op > PK_TRACE_FREE) {
            return fail_at(c, e.offset, "unknown operation %u", e.event.op);
        }
        uint64_t delta;
        size_t time_at;
        if (read_varint(c, "seq", &e.event.seq) != 0) {
            return -1;
        }
        time_at = c->at;
        if (read_varint(c, "time", &delta) != 0) {
            return -1;
        }
        if (delta > UINT64_MAX - time_ns) {
            return fail_at(c, time_at, "time above 2^64 - 1 ns since the trace started");
        }
        time_ns += delta;
        e.event.time_ns = time_ns;
        e.event.thread = *thread;
        if (read_operands(c, &e.event) != 0 || push_event(c, list, &e) != 0) {
            return -1;
        }
    }
    return 0;
}

static int by_seq(const void *a, const void *b)
{
    const located_event *x = a, *y = b;
    if (x->event.seq != y->event.seq) {
        return x->event.seq < y->event.seq ? -1 : 1;
    }
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int by_value(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The distinct values among count thread numbers (sorted in place). */
static uint32_t count_distinct(uint32_t *threads, size_t count)
{
    if (count == 0) {
        return 0;
    }
    qsort(threads, count, sizeof *threads, by_value);
    uint32_t distinct = 0;
    for (size_t i = 0; i < count; i++) {
        distinct += i == 0 || threads[i] != threads[i - 1];
    }
    return distinct;
}

static int read_header(cursor *c, pk_trace *t)
{
    static const struct {
        size_t offset;
        const char *name;
    } fields[] = {{0, "magic"}, {8, "version"}, {12, "header size"}, {16, "pid"}, {20, "flags"},
                  {24, "start time"}};
    size_t magic_seen = c->size < 8 ? c->size : 8;
    if (memcmp(c->data, PK_TRACE_MAGIC, magic_seen) != 0) {
        return fail_at(c, 0, "not a poolkit trace (bad magic)");
    }
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        size_t end = i + 1 < sizeof fields / sizeof fields[0] ? fields[i + 1].offset : HEADER_SIZE;
        if (c->size < end) {
            return fail_at(c, fields[i].offset, "header truncated (%s)", fields[i].name);
        }
    }
    t->version = read_u32(c->data + 8);
    if (t->version != PK_TRACE_VERSION) {
        return fail_at(c, 8, "version %" PRIu32 ", this reader reads version %u", t->version,
                       PK_TRACE_VERSION);
    }
    uint32_t header_size = read_u32(c->data + 12);
    if (header_size < HEADER_SIZE) {
        return fail_at(c, 12, "header size %" PRIu32 ", below %u", header_size, HEADER_SIZE);
    }
    if (header_size > c->size) {
        return fail_at(c, HEADER_SIZE, "header truncated (header size %" PRIu32 ", the file ends at byte %zu)",
                       header_size, c->size);
    }
    t->pid = read_u32(c->data + 16);
    c->at = header_size;
    return 0;
}

int pk_trace_parse(const unsigned char *data, size_t size, pk_trace *out, char *err, size_t err_size)
{
    cursor c = {data, size, 0, err, err_size};
    pk_trace t = {0};
    if (data == NULL && size != 0) {
        return fail_at(&c, 0, "no data");
    }
    if (size == 0) {
        return fail_at(&c, 0, "empty file, not a poolkit trace");
    }
    if (read_header(&c, &t) != 0) {
        return -1;
    }
    event_list list = {0};
    uint32_t *threads = NULL;
    size_t blocks = 0, threads_capacity = 0;
    int status = 0;
    while (status == 0 && c.at < c.size) {
        if (blocks == threads_capacity) {
            size_t capacity = threads_capacity == 0 ? 64 : threads_capacity * 2;
            uint32_t *grown = capacity > SIZE_MAX / sizeof *grown ? NULL : realloc(threads, capacity * sizeof *grown);
            if (grown == NULL) {
                status = fail_at(&c, c.at, "out of memory after %zu blocks", blocks);
                break;
            }
            threads = grown;
            threads_capacity = capacity;
        }
        status = read_block(&c, &list, &threads[blocks]);
        blocks += status == 0;
    }
    if (status == 0 && list.count > 0) {
        qsort(list.items, list.count, sizeof *list.items, by_seq);
        for (size_t i = 1; i < list.count && status == 0; i++) {
            if (list.items[i].event.seq == list.items[i - 1].event.seq) {
                status = fail_at(&c, list.items[i].offset, "sequence number %" PRIu64 " seen twice (first at byte %zu)",
                                 list.items[i].event.seq, list.items[i - 1].offset);
            }
        }
    }
    pk_trace_event *events = NULL;
    if (status == 0 && list.count > 0) {
        events = malloc(list.count * sizeof *events); /* no overflow: smaller than list.items */
        if (events == NULL) {
            status = fail_at(&c, 0, "out of memory for %zu events", list.count);
        }
    }
    if (status == 0) {
        for (size_t i = 0; i < list.count; i++) {
            events[i] = list.items[i].event;
        }
        t.events = events;
        t.count = list.count;
        /* Unique seqs sorted: the largest minus those present below it. */
        t.missing = list.count == 0 ? 0 : events[list.count - 1].seq - (list.count - 1);
        t.threads = count_distinct(threads, blocks);
        *out = t;
    }
    free(list.items);
    free(threads);
    return status;
}

int pk_trace_load(const char *path, pk_trace *out, char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *data = NULL;
    size_t size = 0, capacity = 0;
    const char *problem = NULL;
    int saved_errno = 0;
    if (f == NULL) {
        problem = "cannot open";
        saved_errno = errno;
    }
    while (problem == NULL) {
        if (size == capacity) {
            size_t grown_capacity = capacity == 0 ? 1u << 16 : capacity * 2;
            unsigned char *grown = grown_capacity < capacity ? NULL : realloc(data, grown_capacity);
            if (grown == NULL) {
                problem = "out of memory reading";
                saved_errno = ENOMEM;
                break;
            }
            data = grown;
            capacity = grown_capacity;
        }
        size_t n = fread(data + size, 1, capacity - size, f);
        size += n;
        if (n == 0) {
            if (ferror(f)) {
                problem = "cannot read";
                saved_errno = errno;
            }
            break;
        }
    }
    if (f != NULL) {
        (void)fclose(f);
    }
    int status = -1;
    if (problem != NULL) {
        if (err != NULL && err_size > 0) {
            (void)snprintf(err, err_size, "%s: %s: %s", path, problem, strerror(saved_errno));
        }
    } else {
        char message[256] = "";
        status = pk_trace_parse(data, size, out, message, sizeof message);
        if (status != 0 && err != NULL && err_size > 0) {
            (void)snprintf(err, err_size, "%s: %s", path, message);
        }
    }
    free(data);
    return status;
}

void pk_trace_free(pk_trace *t)
{
    if (t != NULL) {
        free(t->events);
        t->events = NULL;
        t->count = 0;
    }
}
