/*
 * The shared randomized driver and misuse checks, written once for every
 * allocator, in plain C with no libc beyond memcpy, memset and strcmp and no
 * malloc, so that they run under cmocka on the host and bare on a
 * microcontroller (tests/cortex-m/).
 *
 * The driver works through the generic view (pk_allocator). It keeps a shadow
 * of the live blocks, fills each block with a pattern derived from its address
 * and a token and verifies it at free (overlaps and stray writes show there),
 * checks alignment and that blocks lie inside the region, cross-checks the
 * allocator's stats against the shadow, and calls the allocator's check after
 * every operation for the first PK_DRIVER_CHECK_ALL operations, then every
 * PK_DRIVER_CHECK_EVERY and at each change of phase (growth, steady, shrinkage,
 * drain). Failures go to the reporter with the seed, so they can be replayed.
 */
#ifndef POOLKIT_TEST_DRIVER_H
#define POOLKIT_TEST_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "poolkit/allocator.h"

#define PK_DRIVER_CHECK_ALL 10000u
#define PK_DRIVER_CHECK_EVERY 4096u

/* Receives one line of text (no newline) per failure or note. */
typedef void (*pk_driver_reporter)(void *ctx, const char *line);

typedef struct {
    void *ptr;
    size_t size;
    uint32_t token;
} pk_driver_slot;

typedef struct {
    uint64_t seed;
    size_t ops;                /* operations to run (allocs and frees) */
    size_t min_size, max_size; /* request sizes, log-uniform in [min, max] */
    size_t max_align;          /* 0: default alignment only; else random powers of two up to it */
    size_t default_align;      /* the alignment every block must have */
    const void *region;        /* blocks must lie in [region, region + region_size) */
    size_t region_size;
    size_t block_size;         /* fixed-size allocators: the block size, else 0 */
    bool requested_exact;      /* stats.requested equals the sum of requests */
    pk_driver_slot *slots;     /* shadow storage supplied by the caller (no malloc) */
    size_t slot_count;         /* most live blocks the driver will hold */
    pk_driver_reporter report;
    void *report_ctx;
    /* A free returns PK_OK and is counted but gives nothing back (the arena):
     * stats.live counts every allocation of the run, stats.requested sums
     * every request (exactly, with requested_exact), and stats.in_use never
     * goes down. The driver still frees its blocks (shadow, stamps, overlap). */
    bool frees_reclaim_nothing;
    /* An explicit alignment is honoured as asked, so a block asked with an
     * align below default_align need only have that align (the arena);
     * default_align then applies to blocks asked with the default only. */
    bool align_as_asked;
    /* The allocator takes more memory on demand (a slab cache over a page
     * source): largest_free may be the block size while no held block is
     * free, since a new slab can be had. */
    bool grows_on_demand;
    /* Percent of the frees replaced by a pk_realloc of the block to a random
     * size (0: none): contents up to the smaller size must survive, a failure
     * must leave the block as it was. stats.allocs and stats.frees are then
     * checked through their difference only (a realloc may move or not). */
    unsigned realloc_percent;
} pk_driver_config;

typedef struct {
    size_t ops, allocs, frees, failures, checks, max_live;
} pk_driver_result;

/* Runs the randomized workload on a (fresh or drained) allocator, and drains
 * it at the end. Returns the number of problems found (0: pass). */
unsigned pk_driver_run(pk_allocator *a, const pk_driver_config *cfg, pk_driver_result *out);

/* What the misuse checks expect of an allocator. */
typedef struct {
    const void *region;          /* the allocator's memory */
    size_t region_size;
    size_t alloc_size;           /* size of the blocks to play with */
    bool catches_interior;       /* an interior pointer is reported as MISALIGNED_PTR */
    size_t capacity_blocks;      /* blocks of alloc_size it can hold when empty, 0 = unknown (at most
                                    4096 when alloc_size is below a pointer) */
    pk_driver_reporter report;
    void *report_ctx;
    bool skips_double_free;      /* a double free is not detectable (the arena: PK_OK) */
} pk_misuse_config;

/* Provokes each misuse the allocator must catch (a foreign pointer, a pointer
 * past the region; interior pointers if catches_interior; a double free, and
 * one after the allocator emptied, unless skips_double_free) and checks for
 * each: the status, exactly one fault handler call with that kind, the
 * allocator's name and the pointer, nothing changed (stats, check), and at
 * the end that every block can still be had. The allocator must be empty.
 * Installs its own fault handler and restores the default. Returns the number
 * of problems found. */
unsigned pk_driver_misuse(pk_allocator *a, const pk_misuse_config *cfg);

/* Fills memory with reproducible garbage (allocators must not rely on zeroed
 * buffers). */
void pk_driver_fill_garbage(void *buf, size_t size, uint64_t seed);

/* splitmix64: the driver's generator, exposed for tests that need one. */
uint64_t pk_driver_next_random(uint64_t *state);

#endif
