/* All of poolkit's public headers. The hosted-only ones (hosted.h, pthread_lock.h) are
 * included on hosted builds only (PK_HOSTED, see common.h). */
#ifndef POOLKIT_POOLKIT_H
#define POOLKIT_POOLKIT_H

#include "poolkit/version.h"
#include "poolkit/common.h"
#include "poolkit/allocator.h"
#include "poolkit/debug.h"
#include "poolkit/pool.h"
#include "poolkit/atomic_pool.h"
#include "poolkit/heap.h"
#include "poolkit/arena.h"
#include "poolkit/fit.h"
#include "poolkit/buddy.h"
#include "poolkit/classes.h"
#include "poolkit/slab.h"

#if PK_HOSTED
#include "poolkit/hosted.h"
#include "poolkit/pthread_lock.h"
#endif

#endif
