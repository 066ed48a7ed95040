/* The allocators the port-lock tests share a lock with: a pk_pool and a
 * pk_heap in static buffers, made afresh by each call. */
#ifndef PK_TESTS_PORT_TARGETS_H
#define PK_TESTS_PORT_TARGETS_H

#include "poolkit/allocator.h"
#include "poolkit/common.h"

typedef enum { TARGET_POOL, TARGET_HEAP } target_kind;

/* A new allocator of this kind with lock set (NULL: none); fails the test if
 * it cannot be made. */
pk_allocator *target_make(target_kind kind, const pk_lock *lock);

/* Allocates and frees n blocks in a pattern (fails the test on a NULL or an
 * error); the allocator ends as it began. */
void target_churn(pk_allocator *a, unsigned n);

/* The fault handler the tests install: counts the faults in `port_faults`,
 * calls `port_fault_probe` (if set) to look at the lock state, and then uses
 * the allocator in `port_fault_target` (alloc, then free) as a handler may. */
typedef struct {
    unsigned calls;
    pk_status last;
    unsigned handler_allocs; /* the handler's own allocations that succeeded */
} port_fault_log;
extern port_fault_log port_faults;
extern pk_allocator *port_fault_target;
extern void (*port_fault_probe)(void);
void port_fault_handler(const pk_fault *f, void *ctx);
/* Installs port_fault_handler with a clean log; the default handler back. */
void port_faults_install(void);
void port_faults_remove(void);

#endif
