/*
 * Boot arena: "allocate at boot, then never again". A bump allocator over a
 * buffer the caller owns, with any power-of-two alignment, that can be sealed
 * once initialisation is over: later allocations are refused as misuse
 * (PK_ERR_SEALED), so a stray allocation at run time is seen at once.
 *
 * Layout: the whole buffer is handed out front to back; the arena's state is
 * in pk_arena, none of it in the buffer. Blocks are aligned absolutely (on the
 * address, not on the offset), so the padding before a block depends on the
 * buffer's address; PK_ARENA_SPACE bounds it.
 *
 * Memory comes back only with pk_arena_reset. The generic view's free accepts
 * the arena's own pointers and returns PK_OK without reclaiming anything; a
 * foreign pointer is reported as PK_ERR_FOREIGN_PTR. An arena records no
 * block boundaries, so it cannot tell a double free or an interior pointer
 * from a valid free: both return PK_OK.
 *
 * Thread and ISR safety: set a lock with pk_arena_set_lock before sharing the
 * arena. Each function that touches the state takes it once, for O(1), and
 * releases it before the fault handler runs; every function is then ISR-safe
 * when the lock is (a PRIMASK critical section), or when only one context
 * uses the arena. The longest hold is alloc's bump (one alignment, one
 * comparison, the counters); check and stats are O(1) too. A realloc through
 * the generic view that moves a block other than the most recent copies
 * without the lock every byte from the block up to the end of the used part
 * (the arena does not record block sizes): blocks allocated after it are
 * read too, which is a data race if their owners write them meanwhile.
 *
 * Debug builds (PK_DEBUG 1, README "Debug builds"): every block carries its
 * tag and guards (PK_DEBUG_OVERHEAD_(align) more bytes, counted in in_use and
 * in PK_ARENA_SPACE), so the arena knows its blocks. The generic view's free
 * then releases a block: its guards are verified (PK_ERR_GUARD_CORRUPT), its
 * bytes poisoned and kept out of use until reset (nothing is reused before,
 * so this costs no memory); a second free is PK_ERR_DOUBLE_FREE, a pointer
 * into a block PK_ERR_MISALIGNED_PTR. pk_arena_check verifies every live
 * block's guards and every freed block's poison (PK_ERR_USE_AFTER_FREE);
 * pk_arena_reset does too and reports the first damage it finds, then
 * forgets all blocks. The view's free, realloc and usable_size find a block
 * by walking the blocks (O(blocks since reset), under the lock); check and
 * reset are O(blocks) too. The view's realloc of an earlier block copies
 * exactly its bytes, under the lock. usable_size is the requested size of
 * any live block. pk_leaks lists the blocks not freed through the view.
 */
#ifndef POOLKIT_ARENA_H
#define POOLKIT_ARENA_H

#include "poolkit/allocator.h"
#include "poolkit/common.h"
#include "poolkit/debug.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Arena state: public only so that it can be declared statically; use the
 * functions, never the fields. */
typedef struct pk_arena {
    unsigned char *base;   /* first byte of the buffer */
    size_t size;           /* bytes in the buffer */
    size_t used;           /* bytes consumed since reset, alignment padding included */
    size_t requested;      /* bytes requested since reset */
    size_t live;           /* allocations since reset */
    size_t last;           /* offset of the most recent block, or (size_t)-1 */
    size_t last_size;      /* its requested size */
    size_t peak_used;
    size_t peak_live;
    bool sealed;
    uint64_t allocs, frees, failures, rejected;
    const char *name;
    pk_lock lock;
    pk_allocator view;
#if PK_DEBUG
    pk_debug_state debug;
#endif
} pk_arena;

/* The most bytes one allocation of `size` bytes aligned to `align` (0 =
 * alignof(max_align_t)) consumes, padding included, wherever the arena
 * stands: max(size, 1) + align - 1 (debug builds: size + the tag and guards,
 * PK_DEBUG_OVERHEAD_(align), + align - 1). A buffer of the sum of
 * PK_ARENA_SPACE over a sequence of allocations always serves them all,
 * whatever its address. A constant expression when the arguments are. */
#define PK_ARENA_ALIGN_(align) ((size_t)(align) != 0 ? (size_t)(align) : (size_t)PK_MAX_ALIGN)
#if PK_DEBUG
#define PK_ARENA_BLOCK_(size, align) ((size_t)(size) + PK_DEBUG_OVERHEAD_(align))
#else
#define PK_ARENA_BLOCK_(size, align) ((size_t)(size) != 0 ? (size_t)(size) : (size_t)1)
#endif
#define PK_ARENA_SPACE(size, align) (PK_ARENA_BLOCK_((size), PK_ARENA_ALIGN_(align)) + PK_ARENA_ALIGN_(align) - 1u)

/* Makes an empty, unsealed arena of the size bytes at buf (buf may have any
 * alignment). O(1); the buffer is not touched. Capacity is size bytes.
 * Returns PK_ERR_INVALID_ARG, leaving *a untouched, iff a or buf is NULL,
 * size is 0, or buf + size would wrap the address space. Does not call the
 * fault handler. Not ISR-safe against other
 * users of *a (it is not in use yet). */
pk_status pk_arena_init(pk_arena *a, void *buf, size_t size);

/* size bytes aligned to align (a power of two, any size; 0 =
 * alignof(max_align_t)), or NULL. O(1). The block starts at the first address
 * past the previous one that is a multiple of align; the skipped bytes are
 * padding, counted in in_use. Size 0 returns a unique pointer (one byte is
 * consumed). Returns NULL:
 * - when size bytes (plus padding) do not fit in what is left, including sizes
 *   and alignments so large that their arithmetic would overflow: a failure
 *   (counted in failures), not a fault;
 * - after pk_arena_seal: reports PK_ERR_SEALED (ptr NULL), counted as rejected;
 * - when align is not 0 nor a power of two: reports PK_ERR_INVALID_ARG (ptr
 *   NULL), counted as rejected.
 * A refused call changes nothing but its counter. */
void *pk_arena_alloc(pk_arena *a, size_t size, size_t align);

/* Refuses every later allocation (pk_arena_alloc, and pk_alloc and pk_realloc
 * through the generic view) with PK_ERR_SEALED until pk_arena_reset. Blocks
 * already handed out stay valid. Sealing twice is harmless. O(1). */
void pk_arena_seal(pk_arena *a);

/* Unseals and empties the arena: every pointer it gave is invalid after, and
 * the whole buffer can be handed out again. Keeps the peaks and the counters
 * (allocs, frees, failures, rejected). O(1); the buffer is not touched. */
void pk_arena_reset(pk_arena *a);

/* Whether ptr lies in the part of the buffer handed out since reset (a block,
 * the padding before one, or inside one). O(1); takes the lock. */
bool pk_arena_owns(const pk_arena *a, const void *ptr);

/* Statistics (see pk_stats): capacity = the buffer's bytes; in_use = bytes
 * consumed since reset (padding included); requested = bytes requested since
 * reset (exact); peak_in_use = the most in_use since the peaks were last
 * reset (across pk_arena_reset); live = allocations since reset (frees
 * reclaim nothing, so they do not lower it); peak_live likewise; free_bytes =
 * capacity - in_use; largest_free = the largest size pk_arena_alloc with the
 * default alignment would serve now (0 when sealed); block_size = 0; allocs,
 * frees (frees of own pointers through the generic view), failures and
 * rejected since init. O(1); takes the lock. */
void pk_arena_stats(const pk_arena *a, pk_stats *out);

/* Sets peak_in_use and peak_live to the current in_use and live. O(1); takes
 * the lock. */
void pk_arena_reset_peaks(pk_arena *a);

/* Verifies the arena's invariants: the buffer is set and does not wrap the
 * address space; requested <= used <= size; live <= used, and live is 0
 * exactly when used is; the peaks at least the current values and within the
 * buffer; live <= allocs; the record of the most recent block ends where the
 * used part does; the name, the lock (both functions or neither) and the
 * generic view are intact. Returns PK_OK or PK_ERR_CORRUPT, also reported
 * through the fault handler (ptr NULL). Repairs nothing. O(1); takes the
 * lock. */
pk_status pk_arena_check(const pk_arena *a);

/* Names the arena in faults and reports (the string is kept, not copied;
 * NULL restores "arena"). O(1). */
void pk_arena_set_name(pk_arena *a, const char *name);

/* Sets the lock taken around each operation (copied; NULL, or both functions
 * NULL, removes it). Returns PK_ERR_INVALID_ARG, changing nothing, when exactly
 * one of lock and unlock is NULL. Call it before the arena is shared. O(1). */
pk_status pk_arena_set_lock(pk_arena *a, const pk_lock *lock);

/* The arena's generic view. O(1). Through it:
 * - pk_alloc and pk_alloc_aligned are pk_arena_alloc;
 * - pk_free: PK_OK for NULL and for any pointer pk_arena_owns (counted in
 *   frees, nothing reclaimed); else PK_ERR_FOREIGN_PTR, reported once and
 *   counted as rejected;
 * - pk_realloc (O(1), plus O(size) when it copies): the most recent block,
 *   when it has the default alignment, grows or shrinks in place (in_use and
 *   requested follow; a shrink gives the tail back); any other own block is
 *   copied into a new block with the default alignment (counted as an alloc
 *   and a free). The arena does not know the old block's size, so it copies
 *   min(size, bytes from the block to the end of the used part): all of the
 *   old block, and possibly bytes of later blocks into the new block's tail,
 *   which a realloc leaves indeterminate anyway. A foreign pointer is
 *   reported as pk_free reports it; after pk_arena_seal, PK_ERR_SEALED. On
 *   failure the old block is untouched;
 * - usable_size: the requested size of the most recent block (until it is
 *   freed or the arena is reset), else 0: the arena does not know the size of
 *   earlier blocks, and a larger guess would let a caller write over the
 *   blocks that follow;
 * - pk_stats_get, pk_check and pk_name are pk_arena_stats, pk_arena_check and
 *   the name. */
pk_allocator *pk_arena_allocator(pk_arena *a);

/* Debug builds: the call sites (poolkit/common.h). */
#if PK_DEBUG && !defined(PK_BUILDING_LIBRARY)
#define pk_arena_alloc(a, size, align) PK_DEBUG_AT_(pk_arena_alloc((a), (size), (align)))
#define pk_arena_reset(a) PK_DEBUG_AT_(pk_arena_reset(a))
#endif

#ifdef __cplusplus
}
#endif

#endif
