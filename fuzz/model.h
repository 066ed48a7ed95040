/*
 * The fuzz targets' shared half: decodes a libFuzzer input into a stream of
 * operations on one allocator (through its generic view) and checks each
 * against a reference model of the live blocks. Any mismatch prints one line
 * and calls abort(), so libFuzzer keeps the input as a crash.
 *
 * Input: a sequence of operations, each an opcode byte and its arguments
 * (missing argument bytes read as 0; the run stops at the end of the input
 * or after PK_FUZZ_MAX_OPS operations):
 *   alloc    size (2 bytes, see decode_size), align (1 byte)
 *   free     index of a live block (1 byte)
 *   realloc  index (1 byte), size (2 bytes)
 *   bad free kind (1 byte: foreign, past the region, interior, double) and
 *            an argument byte (the block, the offset)
 *   verify   every live block's contents and the stats
 *   drain    frees every live block, then the target's reset (if any)
 *
 * What is checked: every block is aligned, inside the region and overlaps no
 * live block; its contents (a pattern from its address and a token) survive
 * until its free or realloc (a realloc keeps the smaller size's bytes, a
 * failed one changes nothing); alloc succeeds or fails as the allocator's
 * contract predicts where it can be predicted (see pk_fuzz_target); a free of
 * a live block is PK_OK with no fault; a bad free returns its expected status
 * with exactly one fault of that kind naming the pointer (or PK_OK and none
 * where the allocator cannot tell); stats.live and stats.rejected follow the
 * model; and pk_check is PK_OK with no fault after every operation.
 */
#ifndef POOLKIT_FUZZ_MODEL_H
#define POOLKIT_FUZZ_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "poolkit/allocator.h"

/* Operations per input: bounds the time of one execution. */
#define PK_FUZZ_MAX_OPS 4096u

/* Which freed pointers a double free may use, and still expect a status. */
typedef enum {
    /* Any recently freed pointer that no live block now covers: the
     * allocator keeps a usage map of fixed blocks (pool, classes, slab). */
    PK_FUZZ_DOUBLE_ANY_FREED,
    /* Only the block freed by the last operation: a later alloc, free or
     * realloc may split or merge over its header (heap, fit, buddy). */
    PK_FUZZ_DOUBLE_JUST_FREED,
} pk_fuzz_double_mode;

typedef struct {
    pk_allocator *a;
    const void *region;   /* every block lies in [region, region + region_size) */
    size_t region_size;
    size_t default_align; /* every block has at least this alignment */
    bool align_as_asked;  /* an explicit align below default_align is all a block gets (arena) */
    /* Fixed-size allocators: the block size and alignment; an alloc then
     * fails iff the size or align exceeds them or all blocks are live
     * (capacity_blocks: 0 when that cannot be predicted, as for a slab over
     * a page source or a set of classes). 0 for variable-size allocators. */
    size_t block_size, block_align, capacity_blocks;
    /* An alloc with the default alignment succeeds iff its size is at most
     * stats.largest_free taken just before. */
    bool largest_free_exact;
    /* Interior frees: 0 = not tested; else the offsets tried are not
     * multiples of interior_granule (1: any offset) and the free must return
     * interior_status (PK_OK: with no fault, for the release arena). */
    size_t interior_granule;
    pk_status interior_status;
    pk_fuzz_double_mode double_mode;
    pk_status double_status; /* PK_ERR_DOUBLE_FREE, or PK_OK with no fault (release arena) */
    /* Frees give nothing back (the arena): stats.live counts allocations
     * since the last reset, and the drain calls reset. */
    bool frees_reclaim_nothing;
    void (*reset)(void *ctx);
    void *reset_ctx;
} pk_fuzz_target;

/* Runs the operations decoded from data on t->a, which must be empty.
 * Returns normally only when every check passed; drains the allocator. */
void pk_fuzz_run(const pk_fuzz_target *t, const uint8_t *data, size_t size);

/* Makes buf plain memory again before an allocator is made over it: the
 * previous input's allocator, gone without a teardown, may have left bytes
 * poisoned for AddressSanitizer (debug builds). */
void pk_fuzz_fresh_buffer(void *buf, size_t size);

/* libFuzzer's entry point, which each target defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
