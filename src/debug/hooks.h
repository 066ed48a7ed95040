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

/* pk__debug_walk over the n states of an allocator made of several (the
 * pools of a pk_classes set): their live blocks merged, oldest first across
 * all of them. cursors is scratch room for n pointers. O(live x n). */
void pk__debug_walk_merged(const pk_debug_state *const *states, size_t n, const unsigned char **cursors,
                           uint64_t since, pk_leak_fn cb, void *ctx);

/* The requested size of a live block (usable_size in debug builds). */
size_t pk__debug_size(const unsigned char *user);

/* Reports a fault about ptr with the block's tag (may be NULL) and the call
 * site; returns kind. Call with no lock held. */
pk_status pk__debug_report(pk_status kind, const char *allocator, const void *ptr, const pk_debug_tag *tag,
                           pk__site call);

/* For an allocator that keeps no lists (the lock-free pool: a block belongs
 * to one thread between alloc and free, and a shared list would need a
 * lock). Its own usage map says which blocks are live; the tag is read with
 * pk__debug_inspect (which says PK_OK for a block retired this way: the tag
 * is left as it was, so that a racing double free reads it without a write
 * to race with).
 * setup_unlisted: pk__debug_setup without the live list and the counters.
 * retire_unlisted: verifies and restores guards, padding and tail
 * (PK_ERR_GUARD_CORRUPT if damaged, else PK_OK), poisons every byte from user
 * to the block's end, and closes the whole block to Valgrind and ASan until
 * it is set up again; *tag is the block's tag (inspect said PK_OK).
 * poison_intact: the poison of len bytes at user, of a block retired so
 * (verify_poison opens them to the tools, for a block handed out next; this
 * leaves them closed): PK_OK or PK_ERR_USE_AFTER_FREE.
 * check_block: a live block's tag (valid and live, else PK_ERR_CORRUPT) and
 * guards, padding and tail up to granted (PK_ERR_GUARD_CORRUPT); *tag its tag. */
unsigned char *pk__debug_setup_unlisted(unsigned char *raw, size_t granted, size_t size, size_t align,
                                        pk__site site);
pk_status pk__debug_retire_unlisted(unsigned char *user, size_t granted, pk_debug_tag *tag);
pk_status pk__debug_poison_intact(const unsigned char *user, size_t len);
pk_status pk__debug_check_block(const unsigned char *user, size_t granted, pk_debug_tag *tag);

/* For allocators whose blocks keep their bytes while free (slab objects stay
 * constructed) or that reclaim everything at once (the arena): no new-fill,
 * no poison, no quarantine. Added for slab, arena and buddy.
 * setup_kept: pk__debug_setup without touching the user bytes (they stay
 * as they are: a constructed object).
 * release: a live block (inspect said PK_OK) leaves the live list, its
 * guards verified and restored (PK_ERR_GUARD_CORRUPT if damaged, else
 * PK_OK), its user bytes kept but closed to the tools; its tag then says
 * "freed" (inspect: PK_ERR_DOUBLE_FREE) though it is on no list.
 * resize: a live block grows or shrinks in place to size bytes (granted:
 * its new extent, old_granted its old one; 0 for "prefix, size and the rear
 * guard exactly"): guards verified first (PK_ERR_GUARD_CORRUPT if damaged,
 * else PK_OK), then rewritten; new bytes new-filled; requested follows.
 * pop_live: takes the oldest live block off the list (an allocator freeing
 * everything at once), its guards verified (*damaged: PK_ERR_GUARD_CORRUPT,
 * else PK_OK; *tag its tag), its user bytes taken back from the tools;
 * returns its user pointer, NULL when none.
 * find: what user is, for an allocator that knows no block boundaries (the
 * arena): PK_OK a live block, PK_ERR_DOUBLE_FREE a block retired to the
 * quarantine (*tag its tag, both), PK_ERR_MISALIGNED_PTR on neither list,
 * PK_ERR_CORRUPT when a tag met on the way is damaged. O(blocks): it walks
 * the lists, as reading a tag at a pointer that may be inside a block would
 * close the client's bytes to the tools.
 * open: bytes go back to the allocator (opened to ASan and Valgrind), e.g.
 * a slab given back to its page source or an arena reset. */
unsigned char *pk__debug_setup_kept(pk_debug_state *d, unsigned char *raw, size_t granted, size_t size,
                                    size_t align, pk__site site);
pk_status pk__debug_release(pk_debug_state *d, unsigned char *user, size_t granted);
pk_status pk__debug_resize(pk_debug_state *d, unsigned char *user, size_t old_granted, size_t size, size_t granted);
unsigned char *pk__debug_pop_live(pk_debug_state *d, size_t (*granted_of)(const void *self, const unsigned char *raw),
                                  const void *self, pk_debug_tag *tag, pk_status *damaged);
pk_status pk__debug_find(const pk_debug_state *d, const unsigned char *user, pk_debug_tag *tag);
/* Whether every tag on both lists is valid and the counts hold: then the
 * lists can be taken apart (pop_live, evict) whatever the guards say. O(blocks). */
bool pk__debug_lists_intact(const pk_debug_state *d);
void pk__debug_open(const void *p, size_t n);

/* release for a live block whose tag was overwritten (an underflow past the
 * front guard), when the allocator knows from its own metadata that the
 * block at raw (granted bytes; size requested, align as at setup) is live:
 * takes it off the live list by walking the list from both ends to its
 * neighbours (O(live)), writes a "freed" tag with no site and restores the
 * guards. Returns PK_ERR_GUARD_CORRUPT, or PK_ERR_CORRUPT (nothing changed)
 * when the block is not on the live list. Added for slab. */
pk_status pk__debug_release_lost(pk_debug_state *d, unsigned char *raw, size_t granted, size_t size, size_t align);

#endif /* PK_DEBUG */
#endif
