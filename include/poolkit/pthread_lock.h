/* A ready pk_lock over a POSIX mutex (hosted builds only). */
#ifndef POOLKIT_PTHREAD_LOCK_H
#define POOLKIT_PTHREAD_LOCK_H

#include <pthread.h>

#include "poolkit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A lock that calls pthread_mutex_lock and pthread_mutex_unlock on m. The
 * mutex must be initialised and outlive every allocator using the lock; one
 * mutex may serve several allocators (none calls another with its lock held).
 * O(1). Not for signal handlers. */
pk_lock pk_pthread_lock(pthread_mutex_t *m);

#ifdef __cplusplus
}
#endif

#endif
