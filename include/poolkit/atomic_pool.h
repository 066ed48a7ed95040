/*
 * Lock-free fixed-size pool: alloc and free of equal blocks from any number of
 * threads and interrupt handlers at once, without a lock, in a buffer the
 * caller owns.
 *
 * Layout of the buffer: a control block (the free-list head and the counters),
 * one 32-bit free-list link per block, a usage bitmap (one bit per block),
 * then the blocks. All metadata lies before the blocks and outside them, so no
 * thread ever reads a block another thread owns, and an overflow past the
 * last block leaves the metadata alone.
 *
 * How it stays correct without a lock:
 * - The free list is a stack whose head word packs the top block's index with
 *   a generation tag that every change of the head increments. A thread that
 *   read the head, was preempted while others popped and pushed, and resumes
 *   with a stale view of the top's link fails its compare-and-swap because
 *   the tag moved (the ABA problem), and retries.
 * - The usage bit of a block is cleared by an atomic fetch-and before the
 *   block goes back on the list: of two frees of one block, racing or not,
 *   exactly one finds the bit set; the other is reported as a double free.
 * - Blocks never used yet are carved by an atomic counter: init writes no
 *   block and no link.
 *
 * Word sizes (chosen at compile time by the library):
 * - where 64-bit atomics are lock-free (x86-64, AArch64, i686, ARMv7-A): a
 *   32-bit index and a 32-bit tag; up to 2^32 - 1 blocks; 64-bit counters;
 * - where only 32-bit atomics are (ARMv7-M, ARMv8-M mainline, RV32 with A):
 *   PK_ATOMIC_POOL_INDEX_BITS bits of index (default 16) and the rest tag, so
 *   at most 2^16 - 1 blocks by default (init fails above it, see
 *   pk_atomic_pool_max_blocks); 32-bit counters (allocs and frees wrap at
 *   2^32).
 * The ABA window: a thread preempted inside alloc between reading the head
 * and its compare-and-swap is safe as long as fewer than 2^tag_bits changes of
 * the free list (allocs and frees) happen before it resumes: 65,535 with the
 * 16-bit tag, about 4.29 x 10^9 with the 32-bit one. Only a thread that sleeps
 * through exactly a multiple of 2^tag_bits changes, and finds the same block
 * on top, could pop with a stale link. Interrupts that preempt an alloc run to
 * completion, so an ISR cannot exceed the window; an RTOS task preempted for
 * 65,536 pool operations by others can, in principle; raise the tag bits
 * (fewer blocks) where that matters.
 *
 * Checks that stay on in release builds: foreign pointers, pointers inside a
 * block or its padding, double frees (and frees of blocks never handed out),
 * all atomically. There is no lock, no set_lock and no quarantine.
 *
 * Statistics and check are exact only while no thread uses the pool (each
 * counter is exact, but a snapshot of several may mix moments); the high-water
 * mark is the highest live count any alloc saw.
 *
 * Debug builds (PK_DEBUG 1, poolkit/debug.h): each block carries its tag,
 * guards, padding and tail (the stride, and PK_ATOMIC_POOL_BUFFER_SIZE,
 * include them); a block belongs to one thread between alloc and free, so its
 * tag is written without a lock, and there is no live list: the leak walks go
 * over the usage bitmap (in block order, not oldest first). A free verifies
 * and restores the guards (PK_ERR_GUARD_CORRUPT: freed all the same) and
 * poisons the whole block; there is no quarantine, so the poison is verified
 * when the block is handed out again (PK_ERR_USE_AFTER_FREE, reported with
 * the tag of the allocation it was freed from; the block is handed out
 * refilled) and by check. A double free is reported with the block's
 * allocation site while no other thread has taken the block again.
 * usable_size is the requested size; stats' requested is exact. Under
 * Valgrind and ASan a free block is closed to the tools until handed out
 * again. The call sites are taken from the calling thread's record
 * (pk_debug_site): an interrupt handler that allocates between a macro's
 * record and its call takes the interrupted call's site.
 */
#ifndef POOLKIT_ATOMIC_POOL_H
#define POOLKIT_ATOMIC_POOL_H

#include "poolkit/allocator.h"
#include "poolkit/common.h"
#include "poolkit/debug.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pk__atomic_pool_control; /* in the buffer, see src/atomic_pool.c */

/* Pool state. The fields never change after init (but the name), so any
 * thread may read them; the shared state is in the buffer. Use the functions
 * below, never the fields. */
typedef struct pk_atomic_pool {
    struct pk__atomic_pool_control *control;
    void *links;            /* atomic 32-bit link per block */
    void *usage;            /* atomic 32-bit words of usage bits */
    unsigned char *base;    /* block 0 */
    size_t stride;
    size_t count;
    size_t block_size;
    size_t align;
    const char *name;
    pk_allocator view;
} pk_atomic_pool;

/* Internal: the control block's reserved size and alignment, and the padding
 * in front of it. Checked against the real control block in the source. */
#define PK_ATOMIC_POOL_CONTROL_SIZE_ 64u
#define PK_ATOMIC_POOL_CONTROL_ALIGN_ 8u
#define PK_ATOMIC_POOL_ALIGN_(align) ((size_t)((align) != 0 ? (size_t)(align) : (size_t)PK_MAX_ALIGN))
/* Debug builds: each block also holds its tag and guards (poolkit/debug.h). */
#if PK_DEBUG
#define PK_ATOMIC_POOL_DEBUG_BYTES_(align) PK_DEBUG_OVERHEAD_(PK_ATOMIC_POOL_ALIGN_(align))
#else
#define PK_ATOMIC_POOL_DEBUG_BYTES_(align) 0u
#endif
#define PK_ATOMIC_POOL_STRIDE_(bs, align)                                              \
    (((size_t)(bs) + PK_ATOMIC_POOL_DEBUG_BYTES_(align) + PK_ATOMIC_POOL_ALIGN_(align) - 1u) & \
     ~(PK_ATOMIC_POOL_ALIGN_(align) - 1u))

/* Bytes a buffer needs for `count` blocks of `block_size` bytes aligned to
 * `align` (0 = alignof(max_align_t)), whatever the buffer's own alignment: the
 * control block, 4 bytes of link and one bit of usage per block, worst-case
 * padding, the blocks (with the debug overhead in debug builds). A constant expression when the arguments are;
 * PK_ATOMIC_POOL_BUFFER_SIZE(bs, n, a) bytes give exactly n blocks. */
#define PK_ATOMIC_POOL_BUFFER_SIZE(block_size, count, align)                           \
    (PK_ATOMIC_POOL_CONTROL_ALIGN_ - 1u + PK_ATOMIC_POOL_CONTROL_SIZE_ +                \
     4u * (size_t)(count) + 4u * (((size_t)(count) + 31u) / 32u) +                     \
     PK_ATOMIC_POOL_ALIGN_(align) - 1u +                                               \
     (size_t)(count) * PK_ATOMIC_POOL_STRIDE_((block_size), (align)))

/* The most blocks a pool can hold on this target (see the word sizes above).
 * O(1). */
size_t pk_atomic_pool_max_blocks(void);

/* Makes a pool of equal blocks in buf. O(count / 32): it writes the control
 * block and clears the usage bitmap; no block is touched. align 0 means alignof(max_align_t). The pool holds the
 * largest count n with PK_ATOMIC_POOL_BUFFER_SIZE(block_size, n, align) <=
 * buf_size. Returns PK_ERR_INVALID_ARG, leaving *p untouched, iff p or buf is
 * NULL, block_size is 0, align is not 0 nor a power of two, the stride would
 * overflow size_t, buf + buf_size wraps the address space, buf_size holds no
 * block, or it holds more than
 * pk_atomic_pool_max_blocks() blocks (use a smaller buffer). Does not call
 * the fault handler. Not thread-safe: share the pool after init returns. */
pk_status pk_atomic_pool_init(pk_atomic_pool *p, void *buf, size_t buf_size,
                              size_t block_size, size_t align);

/* A block of the pool's block size, aligned as asked at init, or NULL when
 * every block is live (counted as a failure, not a fault). Lock-free and
 * ISR-safe: a few atomic operations, and a compare-and-swap retried only when
 * another thread or interrupt changed the free list meanwhile (with k
 * contenders, at most k retries per change they make). If the usage bitmap
 * says the block at the head of the free list is live (the metadata was
 * overwritten), reports PK_ERR_CORRUPT and returns NULL. */
void *pk_atomic_pool_alloc(pk_atomic_pool *p);

/* Returns block to the pool. Lock-free and ISR-safe, like alloc.
 * free(NULL) is a no-op returning PK_OK. Misuse is reported once through the
 * fault handler, returned, counted as rejected, and changes nothing:
 * PK_ERR_FOREIGN_PTR (not in the pool), PK_ERR_MISALIGNED_PTR (inside a block
 * or its padding), PK_ERR_DOUBLE_FREE (the block is not allocated: freed
 * already, by this thread or by another at the same time, or never handed
 * out). */
pk_status pk_atomic_pool_free(pk_atomic_pool *p, void *block);

/* Blocks the pool holds. O(1). */
size_t pk_atomic_pool_capacity(const pk_atomic_pool *p);

/* Blocks free now (a snapshot under concurrency). O(1), lock-free. */
size_t pk_atomic_pool_available(const pk_atomic_pool *p);

/* Whether ptr points into the pool's blocks (any byte of any block, live or
 * free). O(1), ISR-safe. */
bool pk_atomic_pool_owns(const pk_atomic_pool *p, const void *ptr);

/* Bytes usable at block: the block size if block is a live block of the pool,
 * else 0 (no fault); in debug builds the size requested (the block size, or
 * less through the generic view). O(1), lock-free. */
size_t pk_atomic_pool_usable_size(const pk_atomic_pool *p, const void *block);

/* Statistics (see pk_stats): as for pk_pool. O(1), lock-free; exact while no
 * thread uses the pool. */
void pk_atomic_pool_stats(const pk_atomic_pool *p, pk_stats *out);

/* Sets peak_live and peak_in_use to the current values. O(1), lock-free. */
void pk_atomic_pool_reset_peaks(pk_atomic_pool *p);

/* Verifies every invariant: counters, the free list (no cycle, no link outside
 * the carved blocks, no live block on it), the usage bitmap against the list and the counters. Returns PK_OK or
 * the first problem (PK_ERR_CORRUPT), also reported through the fault
 * handler; debug builds also verify every live block's tag and guards
 * (PK_ERR_GUARD_CORRUPT) and every free block's poison
 * (PK_ERR_USE_AFTER_FREE), reported with the block's tag. Repairs nothing. O(n) in the blocks. Only while no thread uses the
 * pool: under concurrency it may report a problem that is only a moment's. */
pk_status pk_atomic_pool_check(const pk_atomic_pool *p);

/* Names the pool in faults and reports (the string is kept, not copied;
 * NULL restores "atomic pool"). O(1). Before sharing the pool. */
void pk_atomic_pool_set_name(pk_atomic_pool *p, const char *name);

/* The pool's generic view. O(1). */
pk_allocator *pk_atomic_pool_allocator(pk_atomic_pool *p);

/* Debug builds record each call's site (poolkit/debug.h). */
#if PK_DEBUG && !defined(PK_BUILDING_LIBRARY)
#define pk_atomic_pool_alloc(p) PK_DEBUG_AT_(pk_atomic_pool_alloc(p))
#define pk_atomic_pool_free(p, block) PK_DEBUG_AT_(pk_atomic_pool_free((p), (block)))
#endif

#ifdef __cplusplus
}
#endif

#endif
