/*
 * The debug layer's hooks, called by the allocators when PK_DEBUG is 1 (they
 * do not exist otherwise). A debug block, inside whatever the allocator
 * grants (`raw`, `granted` bytes):
 *
 *   raw: [padding][tag][front guard] user: [requested bytes][rear guard][tail]
 *
 * The padding makes user aligned; padding and tail are filled like the guards
 * and checked with them. The tag (poolkit/debug.h) records the site, owner,
 * size, sequence number and state, with a check hash; it sits at a fixed
 * distance before user, so a free finds it from the pointer alone.
 *
 * Lifecycle: setup (fresh block: tag, guards, new-fill, on the live list) ->
 * retire (at free: guards verified and restored, user bytes poisoned, moved
 * to the quarantine) -> evict (leaves the quarantine: poison verified, then
 * the allocator really frees it). All hooks run under the allocator's lock
 * and report nothing: they return what the caller reports after unlocking.
 */
#ifndef POOLKIT_DEBUG_HOOKS_H
#define POOLKIT_DEBUG_HOOKS_H

#include "core/internal.h"
#include "poolkit/debug.h"

#if PK_DEBUG

#define PK__FILL_NEW 0xCDu    /* handed out, not yet written */
#define PK__FILL_POISON 0xDDu /* freed */
#define PK__FILL_GUARD 0xFBu  /* guards, padding, tail: 0xFBFB... is no pointer nor small integer */

/* A call site, taken from the thread's record (pk_debug_site) and cleared. */
typedef struct {
    const char *file;
    int line;
} pk__site;
pk__site pk__debug_take_site(void);

/* Bytes from raw block start to user for alignment align, and the bytes a
 * request of size needs in all; false on overflow. */
static inline size_t pk__debug_prefix(size_t align)
{
    return PK_DEBUG_PREFIX_(align);
}
bool pk__debug_raw_size(size_t size, size_t align, size_t *raw_size);

/* Lays out a fresh block and puts it on the live list; returns user. The
 * owner and sequence number are taken now. granted >= raw size. */
unsigned char *pk__debug_setup(pk_debug_state *d, unsigned char *raw, size_t granted, size_t size,
                               size_t align, pk__site site);

/* What a pointer's tag says: PK_OK (a live block: *tag filled, *raw its
 * block), PK_ERR_DOUBLE_FREE (in the quarantine: freed already),
 * PK_ERR_MISALIGNED_PTR (no valid tag: not a block start). The caller must
 * have checked that the tag's bytes, sizeof(pk_debug_tag) + PK_GUARD_SIZE
 * before user, lie in its memory. */
pk_status pk__debug_inspect(const unsigned char *user, pk_debug_tag *tag, unsigned char **raw);

/* Retires a live block (inspect said PK_OK): verifies and restores guards,
 * padding and tail (granted: the block's bytes), poisons the user bytes and
 * moves it to the quarantine. Returns PK_ERR_GUARD_CORRUPT if a guard byte
 * was damaged, else PK_OK. */
pk_status pk__debug_retire(pk_debug_state *d, unsigned char *user, size_t granted);

/* Takes the oldest quarantined block out if the quarantine holds more than
 * PK_QUARANTINE_SIZE, or any while no block is live, or any at all with
 * drain: returns its raw block (NULL when none should leave) and, in *damaged,
 * PK_ERR_USE_AFTER_FREE if its poison was written (with its tag in *tag),
 * else PK_OK. The caller really frees the raw block. */
unsigned char *pk__debug_evict(pk_debug_state *d, bool drain, pk_status *damaged, pk_debug_tag *tag);

/* Verifies a block the allocator is handing out again whose user bytes
 * (len, from the old layout) were poisoned and are untouched by the
 * allocator's own metadata (fixed-size pools): PK_OK or
 * PK_ERR_USE_AFTER_FREE. */
pk_status pk__debug_verify_poison(const unsigned char *user, size_t len);

/* check: every live block's guards, padding and tail (granted_of gives a
 * block's bytes, or 0 for "not known": then padding and guards only), every
 * quarantined block's poison, the lists' links and counts. Returns PK_OK or
 * the first problem; *tag is the block's when one is concerned. */
pk_status pk__debug_check(const pk_debug_state *d, size_t (*granted_of)(const void *self, const unsigned char *raw),
                          const void *self, pk_debug_tag *tag, const unsigned char **where);

/* The user pointer and tag of a live block, for the leak walks (oldest first). */
void pk__debug_walk(const pk_debug_state *d, uint64_t since, pk_leak_fn cb, void *ctx);

/* The requested size of a live block (usable_size in debug builds). */
size_t pk__debug_size(const unsigned char *user);

/* Reports a fault about ptr with the block's tag (may be NULL) and the call
 * site; returns kind. Call with no lock held. */
pk_status pk__debug_report(pk_status kind, const char *allocator, const void *ptr, const pk_debug_tag *tag,
                           pk__site call);

#endif /* PK_DEBUG */
#endif
