/*
 * The debug layer's public side: leak lists, owners and call sites. Every
 * allocator adds guards, poisoning, a quarantine and tags when PK_DEBUG is 1
 * (see README "Debug builds"); these functions exist in both builds and do
 * nothing in release builds, so user code compiles both ways.
 *
 * Configuration (define before including, or in PK_CONFIG_HEADER; the
 * library and its users must agree, like PK_DEBUG):
 *   PK_GUARD_SIZE       guard bytes on each side of a block (default 8)
 *   PK_QUARANTINE_SIZE  freed blocks each allocator holds back from reuse
 *                       (default 8; 0 turns the quarantine off)
 */
#ifndef POOLKIT_DEBUG_H
#define POOLKIT_DEBUG_H

#include "poolkit/allocator.h"
#include "poolkit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef PK_GUARD_SIZE
#define PK_GUARD_SIZE 8
#endif
#ifndef PK_QUARANTINE_SIZE
#define PK_QUARANTINE_SIZE 8
#endif

/* pk_leak and pk_leak_fn are in poolkit/allocator.h (the generic view walks leaks). */

/* Calls cb for every live allocation of a, oldest first (the lock-free
 * pool, which keeps no list, in block order). O(live); holds the
 * allocator's lock throughout, so cb must not call a. Release builds: calls
 * nothing. */
void pk_leaks(pk_allocator *a, pk_leak_fn cb, void *ctx);

/* A mark in the allocation sequence: allocations made after it have larger
 * sequence numbers. O(1). Release builds: 0. */
uint64_t pk_leak_mark(void);

/* Like pk_leaks, for the allocations made after mark that are still live:
 * what a phase of the program leaked. */
void pk_leaks_since(pk_allocator *a, uint64_t mark, pk_leak_fn cb, void *ctx);

/* The owner id tagged on allocations from now on: per thread on hosted
 * builds, process-wide on bare metal. 0 means none. O(1). */
void pk_set_owner(uint32_t owner);

/* Takes owners from fn (an RTOS task id, say) instead, called at every
 * allocation; NULL goes back to pk_set_owner's value. O(1). */
void pk_set_owner_source(uint32_t (*fn)(void));

/* pk_debug_site and PK_DEBUG_AT_ are in poolkit/common.h. */

/* Internal: the tag in front of every debug block (after alignment padding,
 * before the front guard), public only so that sizing macros can count it. */
typedef struct pk_debug_tag {
    unsigned char *prev, *next; /* tags of the live list, or of the quarantine FIFO */
    const char *file;
    uint64_t seq;
    size_t size;          /* bytes requested */
    size_t pad;           /* bytes from the raw block to this tag */
    uint32_t owner;
    int32_t line;
    uint32_t state;       /* live, quarantined, or garbage (no tag here) */
    uint32_t check;       /* a hash of the fields above: a damaged tag shows */
} pk_debug_tag;

/* Internal: each allocator's debug state. Tags are addressed as bytes (a
 * block aligned to less than a pointer has its tag unaligned; it is read and
 * written with memcpy). */
typedef struct {
    unsigned char *live_first, *live_last; /* allocation order */
    unsigned char *held_first, *held_last; /* the quarantine, oldest first */
    size_t live, peak_live;                /* the clients' view: quarantined blocks are free */
    size_t requested;                      /* bytes requested by live blocks */
    size_t held;
} pk_debug_state;

#define PK_DEBUG_STATE_INIT_ {NULL, NULL, NULL, NULL, 0, 0, 0, 0}

/* Bytes a debug block adds to a request of alignment align (a power of two):
 * the tag and the front guard rounded up to align, and the rear guard. */
#define PK_DEBUG_ROUND_(x, a) (((size_t)(x) + (size_t)(a) - 1u) & ~((size_t)(a) - 1u))
#define PK_DEBUG_PREFIX_(align) PK_DEBUG_ROUND_(sizeof(pk_debug_tag) + PK_GUARD_SIZE, (align))
#define PK_DEBUG_OVERHEAD_(align) (PK_DEBUG_PREFIX_(align) + PK_GUARD_SIZE)

#ifdef __cplusplus
}
#endif

#endif
