/*
 * A writer of allocation traces (tools/trace/FORMAT.md, version 1) for tests:
 * synthetic programs whose every call is known, written without running
 * libpoolkit-trace.so. Each event is written as a block of its own (marker,
 * thread, count 1, the event), so its time is the time since the trace
 * started; sequence numbers follow the order of the calls to
 * trace_writer_event. The header's version is the caller's, so that a test
 * can write a trace of another version. Hosted test code (stdio).
 */
#ifndef POOLKIT_TESTS_TRACE_WRITER_H
#define POOLKIT_TESTS_TRACE_WRITER_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *f;
    uint64_t seq;      /* the next event's sequence number */
    int failed;        /* a write failed */
} trace_writer;

/* Creates path and writes the header (magic, version, size 32, pid, flags 0,
 * start time 0). 0, or -1 with errno set. O(1). */
int trace_writer_open(trace_writer *w, const char *path, uint32_t version, uint32_t pid);

/* The same over a stream the caller opened (open_memstream: a trace in
 * memory); trace_writer_close closes it. 0, or -1 when the header could not
 * be written. O(1). */
int trace_writer_start(trace_writer *w, FILE *f, uint32_t version, uint32_t pid);

/* One event of operation op (pk_trace_op's numbers) on thread, at time_ns
 * since the start: the operands FORMAT.md lists for op are taken from size,
 * align, result and old, the others ignored. O(1). */
void trace_writer_event(trace_writer *w, uint32_t thread, uint8_t op, uint64_t time_ns, uint64_t size,
                        uint64_t align, uint64_t result, uint64_t old);

/* Closes the file: 0 when every write succeeded, else -1. */
int trace_writer_close(trace_writer *w);

#endif
