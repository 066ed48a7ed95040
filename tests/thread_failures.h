/*
 * The first failure seen on a worker thread, for tests whose assertions
 * (cmocka's) may only run on the main thread: workers record with
 * THREAD_FAIL(format, ...), the main thread asks for the count and the first
 * one's text once the workers are joined.
 */
#ifndef POOLKIT_TESTS_THREAD_FAILURES_H
#define POOLKIT_TESTS_THREAD_FAILURES_H

#include <stddef.h>

/* Records a failure at line (only the first one's text is kept). Thread-safe. */
void thread_fail_at(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define THREAD_FAIL(...) thread_fail_at(__LINE__, __VA_ARGS__)

/* The failures recorded since the last call, the first one's text ("line N:
 * ...") copied into text (size bytes, NUL-terminated; text may be NULL to
 * discard), and the count reset to 0. Thread-safe. */
unsigned thread_failures_take(char *text, size_t size);

#endif
