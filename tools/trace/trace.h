/*
 * Allocation traces (issue 11): the file format libpoolkit-trace.so writes
 * (tools/trace/FORMAT.md describes it byte by byte) and the reader that
 * `poolkit replay` and `poolkit plan` use. Hosted tool code (malloc, stdio).
 *
 * A trace holds one event per call of the malloc family a program made, in
 * the order the calls took effect across its threads (by sequence number):
 * what was asked (operation, size, alignment), what came back (the result
 * pointer, and for free and realloc the pointer passed), on which thread and
 * when.
 */
#ifndef POOLKIT_TOOLS_TRACE_H
#define POOLKIT_TOOLS_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define PK_TRACE_MAGIC "PKTRACE\n" /* the file's first 8 bytes */
#define PK_TRACE_VERSION 1u        /* the only version this reader reads */

typedef enum {
    PK_TRACE_MALLOC = 1,   /* size -> result */
    PK_TRACE_CALLOC = 2,   /* size (count * size, already multiplied) -> result */
    PK_TRACE_REALLOC = 3,  /* old, size -> result (old 0: like malloc; size 0 with result 0: a free) */
    PK_TRACE_ALIGNED = 4,  /* posix_memalign, aligned_alloc, memalign, valloc, pvalloc: size, align -> result */
    PK_TRACE_FREE = 5      /* old (never 0: free(NULL) is not recorded) */
} pk_trace_op;

typedef struct {
    uint64_t seq;          /* 0, 1, 2...: the order the calls took effect */
    uint64_t time_ns;      /* since the trace started (CLOCK_MONOTONIC) */
    uint64_t size;         /* requested bytes (0 for free) */
    uint64_t align;        /* requested alignment (0: the default) */
    uint64_t result;       /* the pointer returned (0: the call failed, or free) */
    uint64_t old;          /* the pointer passed to free or realloc (else 0) */
    uint32_t thread;       /* 0 for the first thread seen, then 1, 2... */
    uint8_t op;            /* pk_trace_op */
} pk_trace_event;

typedef struct {
    pk_trace_event *events; /* count events, sorted by seq */
    size_t count;
    uint64_t missing;       /* sequence numbers below the largest never seen */
    uint32_t version;
    uint32_t pid;           /* the traced process */
    uint32_t threads;       /* distinct thread numbers seen */
} pk_trace;

/* Parses size bytes of a trace file into *out (allocated; pk_trace_free
 * releases it). Returns 0, or -1 with a message in err (err_size bytes,
 * NUL-terminated) that names the byte offset of the problem: "byte 4096:
 * record truncated", "byte 8: version 2, this reader reads version 1", "byte
 * 0: not a poolkit trace (bad magic)", a sequence number repeated, an
 * unknown operation... (tools/trace/FORMAT.md lists them). Never reads
 * outside data; *out is untouched on failure. O(size + count log count). */
int pk_trace_parse(const unsigned char *data, size_t size, pk_trace *out, char *err, size_t err_size);

/* Reads the file at path and parses it; the messages are pk_trace_parse's,
 * prefixed with the path, or say why the file could not be read. */
int pk_trace_load(const char *path, pk_trace *out, char *err, size_t err_size);

void pk_trace_free(pk_trace *t);

#endif
