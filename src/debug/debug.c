/*
 * The debug layer: call sites, owners, sequence numbers, and the block hooks
 * of src/debug/hooks.h. In release builds only the public functions of
 * poolkit/debug.h exist, and do nothing.
 */

#include "debug/hooks.h"

#include "debug/annotate.h"

#if PK_DEBUG

#ifndef PK_THREAD_LOCAL
#if PK_HOSTED && !defined(__STDC_NO_THREADS__)
#define PK_THREAD_LOCAL _Thread_local
#else
#define PK_THREAD_LOCAL
#endif
#endif

#if !defined(__STDC_NO_ATOMICS__)
#include <stdatomic.h>
#if ATOMIC_LLONG_LOCK_FREE == 2
typedef unsigned long long seq_word;
#else
typedef unsigned seq_word; /* 32-bit targets: the sequence wraps after 2^32 allocations */
#endif
static _Atomic seq_word last_seq;
static seq_word next_seq(void)
{
    return atomic_fetch_add_explicit(&last_seq, 1u, memory_order_relaxed) + 1u;
}
static seq_word current_seq(void)
{
    return atomic_load_explicit(&last_seq, memory_order_relaxed);
}
#else
static volatile unsigned long last_seq;
static unsigned long next_seq(void)
{
    return ++last_seq;
}
static unsigned long current_seq(void)
{
    return last_seq;
}
#endif

static PK_THREAD_LOCAL const char *site_file;
static PK_THREAD_LOCAL int site_line;
static PK_THREAD_LOCAL uint32_t thread_owner;
static uint32_t (*owner_source)(void);

enum { TAG_LIVE = 0x4C495645u, TAG_HELD = 0x48454C44u };

void pk_debug_site(const char *file, int line)
{
    site_file = file;
    site_line = line;
}

pk__site pk__debug_take_site(void)
{
    pk__site s = {site_file, site_line};
    site_file = NULL;
    site_line = 0;
    return s;
}

void pk_set_owner(uint32_t owner)
{
    thread_owner = owner;
}

void pk_set_owner_source(uint32_t (*fn)(void))
{
    owner_source = fn;
}

uint64_t pk_leak_mark(void)
{
    return current_seq();
}

/* The tag's bytes: a fixed distance before user. */
static inline unsigned char *tag_at(const unsigned char *user)
{
    return (unsigned char *)(uintptr_t)(user - PK_GUARD_SIZE - sizeof(pk_debug_tag));
}

static inline const unsigned char *user_of(const unsigned char *tag)
{
    return tag + sizeof(pk_debug_tag) + PK_GUARD_SIZE;
}

static uint32_t tag_hash(const pk_debug_tag *t)
{
    /* FNV-1a over the fields that identify the block. */
    uint32_t h = 2166136261u;
    const uintptr_t words[] = {(uintptr_t)t->file, (uintptr_t)t->seq, (uintptr_t)(t->seq >> 16 >> 16),
                               (uintptr_t)t->size, (uintptr_t)t->pad, (uintptr_t)t->owner,
                               (uintptr_t)(uint32_t)t->line, (uintptr_t)t->state};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        uintptr_t w = words[i];
        for (size_t b = 0; b < sizeof w; b++) {
            h = (h ^ (uint32_t)(w & 0xFFu)) * 16777619u;
            w >>= 8;
        }
    }
    return h;
}

/* Tags are closed to the tools (annotate.h) but while the hooks use them. */
static inline void tag_load(const unsigned char *at, pk_debug_tag *t)
{
    pk__annot_open(at, sizeof *t);
    memcpy(t, at, sizeof *t);
    pk__annot_close(at, sizeof *t);
}

static inline void tag_store(unsigned char *at, pk_debug_tag *t)
{
    t->check = tag_hash(t);
    pk__annot_open(at, sizeof *t);
    memcpy(at, t, sizeof *t);
    pk__annot_close(at, sizeof *t);
}

static bool tag_valid(const pk_debug_tag *t)
{
    return (t->state == TAG_LIVE || t->state == TAG_HELD) && t->check == tag_hash(t);
}

/* Links of the tag at `at`, read and written in place. */
static unsigned char *next_of(const unsigned char *at)
{
    unsigned char *next;
    pk__annot_open(at + offsetof(pk_debug_tag, next), sizeof next);
    memcpy(&next, at + offsetof(pk_debug_tag, next), sizeof next);
    pk__annot_close(at + offsetof(pk_debug_tag, next), sizeof next);
    return next;
}

static unsigned char *prev_of(const unsigned char *at)
{
    unsigned char *prev;
    pk__annot_open(at + offsetof(pk_debug_tag, prev), sizeof prev);
    memcpy(&prev, at + offsetof(pk_debug_tag, prev), sizeof prev);
    pk__annot_close(at + offsetof(pk_debug_tag, prev), sizeof prev);
    return prev;
}

static void set_next(unsigned char *at, unsigned char *next)
{
    pk__annot_open(at + offsetof(pk_debug_tag, next), sizeof next);
    memcpy(at + offsetof(pk_debug_tag, next), &next, sizeof next);
    pk__annot_close(at + offsetof(pk_debug_tag, next), sizeof next);
}

static void set_prev(unsigned char *at, unsigned char *prev)
{
    pk__annot_open(at + offsetof(pk_debug_tag, prev), sizeof prev);
    memcpy(at + offsetof(pk_debug_tag, prev), &prev, sizeof prev);
    pk__annot_close(at + offsetof(pk_debug_tag, prev), sizeof prev);
}

/* A doubly linked list of tags (first, last). */
static void list_append(unsigned char **first, unsigned char **last, unsigned char *at)
{
    set_prev(at, *last);
    set_next(at, NULL);
    if (*last != NULL) {
        set_next(*last, at);
    } else {
        *first = at;
    }
    *last = at;
}

static void list_remove(unsigned char **first, unsigned char **last, unsigned char *at)
{
    unsigned char *prev = prev_of(at);
    unsigned char *next = next_of(at);
    if (prev != NULL) {
        set_next(prev, next);
    } else {
        *first = next;
    }
    if (next != NULL) {
        set_prev(next, prev);
    } else {
        *last = prev;
    }
}

bool pk__debug_raw_size(size_t size, size_t align, size_t *raw_size)
{
    size_t overhead = PK_DEBUG_OVERHEAD_(align);
    return !pk__add_overflows(size, overhead, raw_size);
}

static bool all_bytes(const unsigned char *p, size_t n, unsigned char value)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != value) {
            return false;
        }
    }
    return true;
}

/* all_bytes over bytes closed to the tools: opened for the read, closed again. */
static bool closed_bytes(const unsigned char *p, size_t n, unsigned char value)
{
    pk__annot_open(p, n);
    bool same = all_bytes(p, n, value);
    pk__annot_close(p, n);
    return same;
}

/* Lays out a fresh block (setup without the lists): guards, padding and tail
 * filled and closed to the tools, user new-filled and handed out to them,
 * the tag written (its links NULL). */
static unsigned char *lay_out(unsigned char *raw, size_t granted, size_t size, size_t align, pk__site site)
{
    size_t prefix = pk__debug_prefix(align);
    unsigned char *user = raw + prefix;
    unsigned char *tag = tag_at(user);
    size_t pad = (size_t)(tag - raw);
    pk__annot_open(raw, granted); /* closed if its last owner was a pool without quarantine */
    memset(raw, PK__FILL_GUARD, pad);
    memset(user - PK_GUARD_SIZE, PK__FILL_GUARD, PK_GUARD_SIZE);
    memset(user, PK__FILL_NEW, size);
    memset(user + size, PK__FILL_GUARD, granted - prefix - size);
    pk_debug_tag t = {
        .file = site.file,
        .line = site.line,
        .seq = next_seq(),
        .size = size,
        .pad = pad,
        .owner = owner_source != NULL ? owner_source() : thread_owner,
        .state = TAG_LIVE,
    };
    tag_store(tag, &t);
    pk__annot_close(raw, prefix);
    pk__annot_close(user + size, granted - prefix - size);
    pk__annot_handout(user, size);
    return user;
}

unsigned char *pk__debug_setup(pk_debug_state *d, unsigned char *raw, size_t granted, size_t size,
                               size_t align, pk__site site)
{
    unsigned char *user = lay_out(raw, granted, size, align, site);
    unsigned char *tag = tag_at(user);
    list_append(&d->live_first, &d->live_last, tag);
    d->live++;
    d->requested += size;
    if (d->live > d->peak_live) {
        d->peak_live = d->live;
    }
    return user;
}

pk_status pk__debug_inspect(const unsigned char *user, pk_debug_tag *tag, unsigned char **raw)
{
    const unsigned char *at = tag_at(user);
    tag_load(at, tag);
    if (!tag_valid(tag)) {
        return PK_ERR_MISALIGNED_PTR;
    }
    if (tag->state == TAG_HELD) {
        return PK_ERR_DOUBLE_FREE;
    }
    *raw = (unsigned char *)(uintptr_t)(at - tag->pad);
    return PK_OK;
}

/* Verifies and restores the guard bytes around a live block: padding, front
 * guard, rear guard and tail up to granted. */
static bool guards_intact(const unsigned char *user, const pk_debug_tag *t, size_t granted)
{
    const unsigned char *at = tag_at(user);
    const unsigned char *raw = at - t->pad;
    size_t after = granted != 0 ? granted - (size_t)(user - raw) - t->size : PK_GUARD_SIZE;
    return closed_bytes(raw, t->pad, PK__FILL_GUARD) &&
           closed_bytes(user - PK_GUARD_SIZE, PK_GUARD_SIZE, PK__FILL_GUARD) &&
           closed_bytes(user + t->size, after, PK__FILL_GUARD);
}

/* Verifies a live block's guards, padding and tail, restoring them when
 * damaged (PK_ERR_GUARD_CORRUPT, else PK_OK), then poisons its user bytes. */
static pk_status restore_and_poison(unsigned char *user, const pk_debug_tag *t, size_t granted)
{
    pk_status status = PK_OK;
    if (!guards_intact(user, t, granted)) {
        status = PK_ERR_GUARD_CORRUPT;
        unsigned char *raw = tag_at(user) - t->pad;
        size_t after = granted - (size_t)(user - raw) - t->size;
        pk__annot_open(raw, t->pad);
        memset(raw, PK__FILL_GUARD, t->pad);
        pk__annot_close(raw, t->pad);
        pk__annot_open(user - PK_GUARD_SIZE, PK_GUARD_SIZE);
        memset(user - PK_GUARD_SIZE, PK__FILL_GUARD, PK_GUARD_SIZE);
        pk__annot_close(user - PK_GUARD_SIZE, PK_GUARD_SIZE);
        pk__annot_open(user + t->size, after);
        memset(user + t->size, PK__FILL_GUARD, after);
        pk__annot_close(user + t->size, after);
    }
    memset(user, PK__FILL_POISON, t->size);
    return status;
}

pk_status pk__debug_retire(pk_debug_state *d, unsigned char *user, size_t granted)
{
    unsigned char *at = tag_at(user);
    pk_debug_tag t;
    tag_load(at, &t);
    pk_status status = restore_and_poison(user, &t, granted);
    /* Closed while quarantined, but for the tail past the rear guard, which
     * evict cannot find again (it knows no granted size): opened now, it is
     * the allocator's again once the block leaves the quarantine. */
    pk__annot_takeback(user, t.size);
    pk__annot_open(user + t.size + PK_GUARD_SIZE, granted - (size_t)(user - (at - t.pad)) - t.size - PK_GUARD_SIZE);
    list_remove(&d->live_first, &d->live_last, at);
    d->live--;
    d->requested -= t.size;
    t.state = TAG_HELD;
    tag_store(at, &t);
    list_append(&d->held_first, &d->held_last, at);
    d->held++;
    return status;
}

unsigned char *pk__debug_evict(pk_debug_state *d, bool drain, pk_status *damaged, pk_debug_tag *tag)
{
    *damaged = PK_OK;
    unsigned char *at = d->held_first;
    if (at == NULL || (!drain && d->live != 0 && d->held <= PK_QUARANTINE_SIZE)) {
        return NULL;
    }
    list_remove(&d->held_first, &d->held_last, at);
    d->held--;
    tag_load(at, tag);
    /* The allocator's again from here on: padding, tag, guards and user
     * bytes opened to the tools (the tail was at retire). */
    pk__annot_open(at - tag->pad, tag->pad + sizeof(pk_debug_tag) + PK_GUARD_SIZE + tag->size + PK_GUARD_SIZE);
    if (!all_bytes(user_of(at), tag->size, PK__FILL_POISON)) {
        *damaged = PK_ERR_USE_AFTER_FREE;
    }
    return at - tag->pad;
}

pk_status pk__debug_verify_poison(const unsigned char *user, size_t len)
{
    pk__annot_open(user, len); /* about to be handed out again */
    return all_bytes(user, len, PK__FILL_POISON) ? PK_OK : PK_ERR_USE_AFTER_FREE;
}

/* Walks one list of tags, each valid, in the given state, linked both ways,
 * at most `count` of them. */
static pk_status check_list(const unsigned char *first, const unsigned char *last, size_t count, uint32_t state,
                            size_t (*granted_of)(const void *, const unsigned char *), const void *self,
                            pk_debug_tag *tag, const unsigned char **where)
{
    const unsigned char *prev = NULL;
    size_t seen = 0;
    for (const unsigned char *at = first; at != NULL; prev = at, at = next_of(at)) {
        *where = user_of(at);
        tag_load(at, tag);
        if (seen++ == count || !tag_valid(tag) || tag->state != state || prev_of(at) != prev) {
            return PK_ERR_CORRUPT;
        }
        if (state == TAG_LIVE) {
            size_t granted = granted_of != NULL ? granted_of(self, at - tag->pad) : 0;
            if (!guards_intact(user_of(at), tag, granted)) {
                return PK_ERR_GUARD_CORRUPT;
            }
        } else if (!closed_bytes(user_of(at), tag->size, PK__FILL_POISON)) {
            return PK_ERR_USE_AFTER_FREE;
        }
    }
    *where = NULL;
    return seen == count && prev == last ? PK_OK : PK_ERR_CORRUPT;
}

pk_status pk__debug_check(const pk_debug_state *d, size_t (*granted_of)(const void *self, const unsigned char *raw),
                          const void *self, pk_debug_tag *tag, const unsigned char **where)
{
    pk_status s = check_list(d->live_first, d->live_last, d->live, TAG_LIVE, granted_of, self, tag, where);
    if (s == PK_OK) {
        s = check_list(d->held_first, d->held_last, d->held, TAG_HELD, granted_of, self, tag, where);
    }
    return s;
}

void pk__debug_walk(const pk_debug_state *d, uint64_t since, pk_leak_fn cb, void *ctx)
{
    for (const unsigned char *at = d->live_first; at != NULL; at = next_of(at)) {
        pk_debug_tag t;
        tag_load(at, &t);
        if (t.seq > since) {
            pk_leak leak = {user_of(at), t.size, t.file, t.line, t.owner, t.seq};
            cb(&leak, ctx);
        }
    }
}

void pk__debug_walk_merged(const pk_debug_state *const *states, size_t n, const unsigned char **cursors,
                           uint64_t since, pk_leak_fn cb, void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        cursors[i] = states[i]->live_first;
    }
    for (;;) {
        size_t oldest = n;
        pk_debug_tag t = {0}; /* set whenever oldest < n (gcc cannot tell through the tool annotations) */
        for (size_t i = 0; i < n; i++) {
            pk_debug_tag u;
            if (cursors[i] != NULL) {
                tag_load(cursors[i], &u);
                if (oldest == n || u.seq < t.seq) {
                    oldest = i;
                    t = u;
                }
            }
        }
        if (oldest == n) {
            return;
        }
        const unsigned char *at = cursors[oldest];
        cursors[oldest] = next_of(at);
        if (t.seq > since) {
            pk_leak leak = {user_of(at), t.size, t.file, t.line, t.owner, t.seq};
            cb(&leak, ctx);
        }
    }
}

size_t pk__debug_size(const unsigned char *user)
{
    pk_debug_tag t;
    tag_load(tag_at(user), &t);
    return t.size;
}

pk_status pk__debug_report(pk_status kind, const char *allocator, const void *ptr, const pk_debug_tag *tag,
                           pk__site call)
{
    pk_fault f = {kind, allocator, ptr, NULL, 0, call.file, call.line, 0};
    if (tag != NULL) {
        f.file = tag->file;
        f.line = tag->line;
        f.owner = tag->owner;
    }
    return pk__dispatch_fault(&f);
}

/* The hooks of an allocator without the lists (the lock-free pool). */

unsigned char *pk__debug_setup_unlisted(unsigned char *raw, size_t granted, size_t size, size_t align,
                                        pk__site site)
{
    return lay_out(raw, granted, size, align, site);
}

pk_status pk__debug_retire_unlisted(unsigned char *user, size_t granted, pk_debug_tag *tag)
{
    unsigned char *at = tag_at(user);
    tag_load(at, tag);
    pk_status status = restore_and_poison(user, tag, granted);
    unsigned char *raw = at - tag->pad;
    size_t after = granted - (size_t)(user - raw) - tag->size;
    pk__annot_open(user + tag->size, after);
    memset(user + tag->size, PK__FILL_POISON, after);
    pk__annot_takeback(user, tag->size);
    pk__annot_close(raw, granted);
    return status;
}

pk_status pk__debug_poison_intact(const unsigned char *user, size_t len)
{
    return closed_bytes(user, len, PK__FILL_POISON) ? PK_OK : PK_ERR_USE_AFTER_FREE;
}

pk_status pk__debug_check_block(const unsigned char *user, size_t granted, pk_debug_tag *tag)
{
    tag_load(tag_at(user), tag);
    if (!tag_valid(tag) || tag->state != TAG_LIVE) {
        return PK_ERR_CORRUPT;
    }
    return guards_intact(user, tag, granted) ? PK_OK : PK_ERR_GUARD_CORRUPT;
}

/* The hooks of allocators whose blocks keep their bytes while free (slab
 * objects stay constructed) or are never reclaimed one by one (the arena):
 * no new-fill, no poison, no quarantine. Added for slab, arena and buddy. */

/* Restores padding, front guard and rear guard (and the tail up to granted;
 * granted 0: the rear guard only) of a live block whose tag is t. */
static void restore_guards(unsigned char *user, const pk_debug_tag *t, size_t granted)
{
    unsigned char *raw = tag_at(user) - t->pad;
    size_t after = granted != 0 ? granted - (size_t)(user - raw) - t->size : PK_GUARD_SIZE;
    pk__annot_open(raw, t->pad);
    memset(raw, PK__FILL_GUARD, t->pad);
    pk__annot_close(raw, t->pad);
    pk__annot_open(user - PK_GUARD_SIZE, PK_GUARD_SIZE);
    memset(user - PK_GUARD_SIZE, PK__FILL_GUARD, PK_GUARD_SIZE);
    pk__annot_close(user - PK_GUARD_SIZE, PK_GUARD_SIZE);
    pk__annot_open(user + t->size, after);
    memset(user + t->size, PK__FILL_GUARD, after);
    pk__annot_close(user + t->size, after);
}

unsigned char *pk__debug_setup_kept(pk_debug_state *d, unsigned char *raw, size_t granted, size_t size,
                                    size_t align, pk__site site)
{
    size_t prefix = pk__debug_prefix(align);
    unsigned char *user = raw + prefix;
    unsigned char *tag = tag_at(user);
    size_t pad = (size_t)(tag - raw);
    size_t after = granted - prefix - size;
    pk__annot_open(raw, prefix);
    pk__annot_open(user + size, after);
    memset(raw, PK__FILL_GUARD, pad);
    memset(user - PK_GUARD_SIZE, PK__FILL_GUARD, PK_GUARD_SIZE);
    memset(user + size, PK__FILL_GUARD, after);
    pk_debug_tag t = {
        .file = site.file,
        .line = site.line,
        .seq = next_seq(),
        .size = size,
        .pad = pad,
        .owner = owner_source != NULL ? owner_source() : thread_owner,
        .state = TAG_LIVE,
    };
    tag_store(tag, &t);
    pk__annot_close(raw, prefix);
    pk__annot_close(user + size, after);
    pk__annot_handout(user, size);
    pk__annot_open(user, size); /* kept bytes: defined, not new */
    list_append(&d->live_first, &d->live_last, tag);
    d->live++;
    d->requested += size;
    if (d->live > d->peak_live) {
        d->peak_live = d->live;
    }
    return user;
}

pk_status pk__debug_release(pk_debug_state *d, unsigned char *user, size_t granted)
{
    unsigned char *at = tag_at(user);
    pk_debug_tag t;
    tag_load(at, &t);
    pk_status status = PK_OK;
    if (!guards_intact(user, &t, granted)) {
        status = PK_ERR_GUARD_CORRUPT;
        restore_guards(user, &t, granted);
    }
    list_remove(&d->live_first, &d->live_last, at);
    d->live--;
    d->requested -= t.size;
    t.state = TAG_HELD; /* off every list: inspect says freed already */
    tag_store(at, &t);
    pk__annot_takeback(user, t.size);
    return status;
}

pk_status pk__debug_resize(pk_debug_state *d, unsigned char *user, size_t old_granted, size_t size, size_t granted)
{
    unsigned char *at = tag_at(user);
    pk_debug_tag t;
    tag_load(at, &t);
    pk_status status = guards_intact(user, &t, old_granted) ? PK_OK : PK_ERR_GUARD_CORRUPT;
    unsigned char *raw = at - t.pad;
    size_t prefix = (size_t)(user - raw);
    size_t old_end = old_granted != 0 ? old_granted : prefix + t.size + PK_GUARD_SIZE;
    size_t end = granted != 0 ? granted : prefix + size + PK_GUARD_SIZE;
    pk__annot_takeback(user, t.size);
    pk__annot_open(raw, old_end > end ? old_end : end);
    if (size > t.size) {
        memset(user + t.size, PK__FILL_NEW, size - t.size);
    }
    memset(raw, PK__FILL_GUARD, t.pad);
    memset(user - PK_GUARD_SIZE, PK__FILL_GUARD, PK_GUARD_SIZE);
    memset(user + size, PK__FILL_GUARD, end - prefix - size);
    d->requested = d->requested - t.size + size;
    t.size = size;
    tag_store(at, &t);
    pk__annot_close(raw, prefix);
    pk__annot_close(user + size, end - prefix - size);
    pk__annot_handout(user, size);
    pk__annot_open(user, size); /* the client's bytes, kept */
    return status;
}

unsigned char *pk__debug_pop_live(pk_debug_state *d, size_t (*granted_of)(const void *self, const unsigned char *raw),
                                  const void *self, pk_debug_tag *tag, pk_status *damaged)
{
    unsigned char *at = d->live_first;
    *damaged = PK_OK;
    if (at == NULL) {
        return NULL;
    }
    tag_load(at, tag);
    unsigned char *user = (unsigned char *)(uintptr_t)user_of(at);
    size_t granted = granted_of != NULL ? granted_of(self, at - tag->pad) : 0;
    if (!tag_valid(tag) || !guards_intact(user, tag, granted)) {
        *damaged = PK_ERR_GUARD_CORRUPT;
    }
    list_remove(&d->live_first, &d->live_last, at);
    d->live--;
    d->requested -= tag->size;
    pk__annot_takeback(user, tag->size);
    return user;
}

/* Walks one list for the tag of user, each tag verified before its links
 * are followed, at most count of them. */
static pk_status find_on(const unsigned char *first, size_t count, const unsigned char *user, pk_debug_tag *tag)
{
    size_t seen = 0;
    for (const unsigned char *at = first; at != NULL; at = next_of(at)) {
        tag_load(at, tag);
        if (seen++ == count || !tag_valid(tag)) {
            return PK_ERR_CORRUPT;
        }
        if (user_of(at) == user) {
            return PK_OK;
        }
    }
    return PK_ERR_MISALIGNED_PTR;
}

pk_status pk__debug_find(const pk_debug_state *d, const unsigned char *user, pk_debug_tag *tag)
{
    pk_status status = find_on(d->live_first, d->live, user, tag);
    if (status == PK_ERR_MISALIGNED_PTR) {
        status = find_on(d->held_first, d->held, user, tag);
        return status == PK_OK ? PK_ERR_DOUBLE_FREE : status;
    }
    return status;
}

bool pk__debug_lists_intact(const pk_debug_state *d)
{
    pk_debug_tag tag;
    return find_on(d->live_first, d->live, NULL, &tag) == PK_ERR_MISALIGNED_PTR &&
           find_on(d->held_first, d->held, NULL, &tag) == PK_ERR_MISALIGNED_PTR;
}

void pk__debug_open(const void *p, size_t n)
{
    pk__annot_open(p, n);
}

/* The live-list neighbours of a tag whose own links cannot be trusted, found
 * from the valid tags on either side (each walk stops at the tag). */
pk_status pk__debug_release_lost(pk_debug_state *d, unsigned char *raw, size_t granted, size_t size, size_t align)
{
    unsigned char *user = raw + pk__debug_prefix(align);
    unsigned char *at = tag_at(user);
    unsigned char *prev = NULL, *next = NULL;
    size_t steps = 0;
    bool found = false;
    for (unsigned char *x = d->live_first; x != NULL && steps <= d->live; x = next_of(x), steps++) {
        if (x == at) {
            found = true;
            break;
        }
        prev = x;
    }
    if (!found) {
        return PK_ERR_CORRUPT; /* not on the list: nothing changed */
    }
    steps = 0;
    found = false;
    for (unsigned char *x = d->live_last; x != NULL && steps <= d->live; x = prev_of(x), steps++) {
        if (x == at) {
            found = true;
            break;
        }
        next = x;
    }
    if (!found) {
        return PK_ERR_CORRUPT;
    }
    if (prev != NULL) {
        set_next(prev, next);
    } else {
        d->live_first = next;
    }
    if (next != NULL) {
        set_prev(next, prev);
    } else {
        d->live_last = prev;
    }
    d->live--;
    d->requested -= size;
    /* A tag again (site unknown, "freed"), and the guards. */
    pk_debug_tag t = {.size = size, .pad = (size_t)(at - raw), .state = TAG_HELD};
    tag_store(at, &t);
    restore_guards(user, &t, granted);
    pk__annot_takeback(user, size);
    return PK_ERR_GUARD_CORRUPT;
}

#else /* release builds: the public functions exist and do nothing */

void pk_debug_site(const char *file, int line)
{
    (void)file;
    (void)line;
}

void pk_set_owner(uint32_t owner)
{
    (void)owner;
}

void pk_set_owner_source(uint32_t (*fn)(void))
{
    (void)fn;
}

uint64_t pk_leak_mark(void)
{
    return 0;
}

#endif

void pk_leaks(pk_allocator *a, pk_leak_fn cb, void *ctx)
{
    pk_leaks_since(a, 0, cb, ctx);
}

void pk_leaks_since(pk_allocator *a, uint64_t mark, pk_leak_fn cb, void *ctx)
{
#if PK_DEBUG
    if (a->ops->leaks != NULL) {
        a->ops->leaks(a->self, mark, cb, ctx);
    }
#else
    (void)a;
    (void)mark;
    (void)cb;
    (void)ctx;
#endif
}
