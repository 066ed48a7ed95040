/* Helpers shared by the cmocka unit tests: the fault recorder, the counting
 * lock, the randomized driver's operation count and its report line. One copy,
 * linked into every test (tests/CMakeLists.txt). */
#ifndef PK_TESTS_SUPPORT_H
#define PK_TESTS_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "poolkit/common.h"

/* Every fault raised, for the assertions. */
typedef struct {
    unsigned calls;
    pk_fault last;
    int lock_depth_seen; /* the lock depth when the handler ran */
} pk_test_faults;
extern pk_test_faults faults;

/* The counting lock: its depth (0 or 1: it asserts no nesting) and the number
 * of times it was taken. Its context must be &lock_calls. */
extern int lock_depth;
extern unsigned lock_calls;
void counting_lock(void *ctx);
void counting_unlock(void *ctx);

/* The fault handler recording into `faults` (context unused). */
void count_fault(const pk_fault *f, void *ctx);

/* cmocka fixtures: clear `faults` and the lock depth and install count_fault;
 * put the default handler back. */
int setup_faults(void **state);
int teardown_faults(void **state);

/* Exactly one fault since the last check, of this kind, at this pointer,
 * from this allocator; clears the count. */
void expect_fault_named(pk_status kind, const void *ptr, const char *allocator);

/* Like expect_fault_named, and the fault's sites (debug builds): allocated at
 * file:alloc_line by owner (alloc_line 0: no allocation site known, owner 0),
 * called at file:call_line (0: no call site, as for check); the handler ran
 * with the counting lock released. Clears the count. */
void expect_fault_sites(pk_status kind, const void *ptr, const char *allocator, const char *file, int alloc_line,
                        uint32_t owner, int call_line);

/* A fault recorder keeping the first REC_MAX faults one by one (the
 * generic-view and common-core tests). */
#define REC_MAX 16

typedef struct {
    pk_status kind;
    const char *allocator;
    const void *ptr;
    const char *file;
    const char *call_file;
    uint32_t owner;
    void *ctx;      /* the handler's context */
    int lock_depth; /* of the counting lock, when the handler ran */
} rec_entry;

typedef struct {
    int calls;
    rec_entry e[REC_MAX];
} recorder;
extern recorder rec;

void rec_reset(void);
/* Counts the fault f and keeps it (with ctx and lock_depth) if there is room. */
void record(const pk_fault *f, void *ctx);
/* cmocka teardown: the default handler back, rec cleared. */
int teardown_recorder(void **state);

/* Every field of two pk_stats is equal. */
void assert_same_stats(const pk_stats *x, const pk_stats *y);

/* POOLKIT_RANDOM_OPS, or 10^6 when unset. */
size_t random_ops(void);

/* A pk_driver report callback: prints the line with cmocka's print_error. */
void report_line(void *ctx, const char *text);

#endif
