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

/* One step of tag_hash: the field xored in, multiplied by an odd constant,
 * rotated. Each step is a bijection of the state, so a change to any one
 * field changes all 64 bits folded at the end; the rotation brings the high
 * bits, which a multiplication leaves alone, down into the next step. */
static inline uint64_t hash_step(uint64_t h, uint64_t field)
{
    h = (h ^ field) * 0x9E3779B97F4A7C15u;
    return h << 27 | h >> 37;
}

static uint32_t tag_hash(const pk_debug_tag *t)
{
    uint64_t h = hash_step(0x243F6A8885A308D3u, (uint64_t)(uintptr_t)t->file);
    h = hash_step(h, t->seq);
    h = hash_step(h, (uint64_t)t->size);
    h = hash_step(h, (uint64_t)t->pad);
    h = hash_step(h, (uint64_t)t->owner << 32 | (uint32_t)t->line);
    h = hash_step(h, t->state);
    return (uint32_t)(h ^ h >> 32);
}

/* Tags are closed to the tools (annotate.h) but while the hooks use them. A
 * hook that does more with a block than read its tag opens the block's
 * metadata once (open_block) and uses tag_write and the links in place; the
 * rest open a tag, or one link of it, around each access. */
static inline void tag_load(const unsigned char *at, pk_debug_tag *t)
{
    pk__annot_open(at, sizeof *t);
    memcpy(t, at, sizeof *t);
    pk__annot_close(at, sizeof *t);
}

/* Seals t with its hash and writes it at `at`, which the caller has open. */
static inline void tag_write(unsigned char *at, pk_debug_tag *t)
{
    t->check = tag_hash(t);
    memcpy(at, t, sizeof *t);
}

static inline void tag_store(unsigned char *at, pk_debug_tag *t)
{
    pk__annot_open(at, sizeof *t);
    tag_write(at, t);
    pk__annot_close(at, sizeof *t);
}

static bool tag_valid(const pk_debug_tag *t)
{
    return (t->state == TAG_LIVE || t->state == TAG_HELD) && t->check == tag_hash(t);
}

enum { LINK_PREV = offsetof(pk_debug_tag, prev), LINK_NEXT = offsetof(pk_debug_tag, next) };

/* A link (LINK_PREV or LINK_NEXT) of the tag at `at`, read and written in
 * place in a tag the caller has open. */
static unsigned char *link_of(const unsigned char *at, size_t link)
{
    unsigned char *to;
    memcpy(&to, at + link, sizeof to);
    return to;
}

static void set_link(unsigned char *at, size_t link, unsigned char *to)
{
    memcpy(at + link, &to, sizeof to);
}

/* The links of a closed tag: the link opened around the access. */
static unsigned char *next_of(const unsigned char *at)
{
    pk__annot_open(at + LINK_NEXT, sizeof(unsigned char *));
    unsigned char *next = link_of(at, LINK_NEXT);
    pk__annot_close(at + LINK_NEXT, sizeof(unsigned char *));
    return next;
}

static unsigned char *prev_of(const unsigned char *at)
{
    pk__annot_open(at + LINK_PREV, sizeof(unsigned char *));
    unsigned char *prev = link_of(at, LINK_PREV);
    pk__annot_close(at + LINK_PREV, sizeof(unsigned char *));
    return prev;
}

static void set_next(unsigned char *at, unsigned char *next)
{
    pk__annot_open(at + LINK_NEXT, sizeof next);
    set_link(at, LINK_NEXT, next);
    pk__annot_close(at + LINK_NEXT, sizeof next);
}

static void set_prev(unsigned char *at, unsigned char *prev)
{
    pk__annot_open(at + LINK_PREV, sizeof prev);
    set_link(at, LINK_PREV, prev);
    pk__annot_close(at + LINK_PREV, sizeof prev);
}

/* A doubly linked list of tags (first, last). The tag at `at` is open (its
 * hook opened it); its neighbours' are not. */
static void list_append(unsigned char **first, unsigned char **last, unsigned char *at)
{
    set_link(at, LINK_PREV, *last);
    set_link(at, LINK_NEXT, NULL);
    if (*last != NULL) {
        set_next(*last, at);
    } else {
        *first = at;
    }
    *last = at;
}

static void list_remove(unsigned char **first, unsigned char **last, unsigned char *at)
{
    unsigned char *prev = link_of(at, LINK_PREV);
    unsigned char *next = link_of(at, LINK_NEXT);
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

/* The first machine word is compared with the pattern (memcpy: the memory's
 * type is the client's), then each byte with the byte a word before it: one
 * memcmp of the range against itself shifted, which libc does many bytes at a
 * time. */
static bool all_bytes(const unsigned char *p, size_t n, unsigned char value)
{
    const uintptr_t pattern = UINTPTR_MAX / 0xFFu * value;
    if (n < sizeof pattern) {
        for (size_t i = 0; i < n; i++) {
            if (p[i] != value) {
                return false;
            }
        }
        return true;
    }
    uintptr_t first;
    memcpy(&first, p, sizeof first);
    return first == pattern && (n == sizeof pattern || memcmp(p, p + sizeof pattern, n - sizeof pattern) == 0);
}

/* all_bytes over bytes closed to the tools: opened for the read, closed again. */
static bool closed_bytes(const unsigned char *p, size_t n, unsigned char value)
{
    pk__annot_open(p, n);
    bool same = all_bytes(p, n, value);
    pk__annot_close(p, n);
    return same;
}

/* The bytes past a live block's user bytes that hold the guard fill: the
 * rear guard and the tail up to granted (granted 0: the rear guard only). */
static size_t rear_bytes(const unsigned char *user, const pk_debug_tag *t, size_t granted)
{
    return granted != 0 ? granted - (size_t)(user - (tag_at(user) - t->pad)) - t->size : PK_GUARD_SIZE;
}

/* Whether a live block's padding, front guard and rear bytes hold the guard
 * fill (the caller has them open); fill_guards writes it again. */
static bool guards_hold(const unsigned char *user, const pk_debug_tag *t, size_t rear)
{
    return all_bytes(tag_at(user) - t->pad, t->pad, PK__FILL_GUARD) &&
           all_bytes(user - PK_GUARD_SIZE, PK_GUARD_SIZE, PK__FILL_GUARD) &&
           all_bytes(user + t->size, rear, PK__FILL_GUARD);
}

static void fill_guards(unsigned char *user, const pk_debug_tag *t, size_t rear)
{
    memset(tag_at(user) - t->pad, PK__FILL_GUARD, t->pad);
    memset(user - PK_GUARD_SIZE, PK__FILL_GUARD, PK_GUARD_SIZE);
    memset(user + t->size, PK__FILL_GUARD, rear);
}

/* Verifies a live block's guards (open), restoring them when damaged:
 * PK_ERR_GUARD_CORRUPT, else PK_OK. */
static pk_status mend_guards(unsigned char *user, const pk_debug_tag *t, size_t rear)
{
    if (guards_hold(user, t, rear)) {
        return PK_OK;
    }
    fill_guards(user, t, rear);
    return PK_ERR_GUARD_CORRUPT;
}

/* A live block's padding, front guard and rear bytes, opened to the hooks
 * and closed again, its tag left closed. */
static void open_guards(const unsigned char *user, const pk_debug_tag *t, size_t rear)
{
    pk__annot_open(tag_at(user) - t->pad, t->pad);
    pk__annot_open(user - PK_GUARD_SIZE, PK_GUARD_SIZE);
    pk__annot_open(user + t->size, rear);
}

static void close_guards(const unsigned char *user, const pk_debug_tag *t, size_t rear)
{
    pk__annot_close(tag_at(user) - t->pad, t->pad);
    pk__annot_close(user - PK_GUARD_SIZE, PK_GUARD_SIZE);
    pk__annot_close(user + t->size, rear);
}

/* guards_hold for a block whose guards are closed (granted: as rear_bytes). */
static bool guards_intact(const unsigned char *user, const pk_debug_tag *t, size_t granted)
{
    size_t rear = rear_bytes(user, t, granted);
    open_guards(user, t, rear);
    bool intact = guards_hold(user, t, rear);
    close_guards(user, t, rear);
    return intact;
}

/* A live block's metadata, for a hook that reads its tag, checks its guards
 * and moves it between lists: padding, tag, front guard and the rear bytes
 * opened in two ranges (not one per access), *t its tag; returns the rear
 * bytes. close_block closes what open_block opened, but for the rear bytes
 * past `rear`. */
static size_t open_block(const unsigned char *user, pk_debug_tag *t, size_t granted)
{
    const unsigned char *at = tag_at(user);
    pk__annot_open(at, sizeof *t + PK_GUARD_SIZE);
    memcpy(t, at, sizeof *t);
    size_t rear = rear_bytes(user, t, granted);
    pk__annot_open(at - t->pad, t->pad);
    pk__annot_open(user + t->size, rear);
    return rear;
}

static void close_block(const unsigned char *user, const pk_debug_tag *t, size_t rear)
{
    pk__annot_close(tag_at(user) - t->pad, t->pad + sizeof *t + PK_GUARD_SIZE);
    pk__annot_close(user + t->size, rear);
}

/* The tag of a block handed out now: its site, the owner and the next
 * sequence number. */
static pk_debug_tag live_tag(size_t size, size_t pad, pk__site site)
{
    pk_debug_tag t = {
        .file = site.file,
        .line = site.line,
        .seq = next_seq(),
        .size = size,
        .pad = pad,
        .owner = owner_source != NULL ? owner_source() : thread_owner,
        .state = TAG_LIVE,
    };
    return t;
}

/* Lays out a fresh block: guards, padding and tail filled and closed to the
 * tools, user new-filled and handed out to them, the tag written and put on
 * d's live list (d NULL: on none, its links NULL). */
static unsigned char *lay_out(pk_debug_state *d, unsigned char *raw, size_t granted, size_t size, size_t align,
                              pk__site site)
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
    pk_debug_tag t = live_tag(size, pad, site);
    tag_write(tag, &t);
    if (d != NULL) {
        list_append(&d->live_first, &d->live_last, tag);
    }
    pk__annot_close(raw, prefix);
    pk__annot_close(user + size, granted - prefix - size);
    pk__annot_handout(user, size);
    return user;
}

unsigned char *pk__debug_setup(pk_debug_state *d, unsigned char *raw, size_t granted, size_t size,
                               size_t align, pk__site site)
{
    unsigned char *user = lay_out(d, raw, granted, size, align, site);
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
    pk__annot_peek(tag, at, sizeof *tag); /* user may be any pointer into the allocator */
    if (!tag_valid(tag)) {
        return PK_ERR_MISALIGNED_PTR;
    }
    if (tag->state == TAG_HELD) {
        return PK_ERR_DOUBLE_FREE;
    }
    *raw = (unsigned char *)(uintptr_t)(at - tag->pad);
    return PK_OK;
}

pk_status pk__debug_retire(pk_debug_state *d, unsigned char *user, size_t granted)
{
    unsigned char *at = tag_at(user);
    pk_debug_tag t;
    size_t rear = open_block(user, &t, granted);
    pk_status status = mend_guards(user, &t, rear);
    memset(user, PK__FILL_POISON, t.size);
    list_remove(&d->live_first, &d->live_last, at);
    d->live--;
    d->requested -= t.size;
    t.state = TAG_HELD;
    tag_write(at, &t);
    list_append(&d->held_first, &d->held_last, at);
    d->held++;
    /* Closed while quarantined, but for the tail past the rear guard, which
     * evict cannot find again (it knows no granted size): left open, it is
     * the allocator's again once the block leaves the quarantine. */
    close_block(user, &t, PK_GUARD_SIZE);
    pk__annot_takeback(user, t.size);
    return status;
}

unsigned char *pk__debug_evict(pk_debug_state *d, bool drain, pk_status *damaged, pk_debug_tag *tag)
{
    *damaged = PK_OK;
    unsigned char *at = d->held_first;
    if (at == NULL || (!drain && d->live != 0 && d->held <= PK_QUARANTINE_SIZE)) {
        return NULL;
    }
    pk__annot_open(at, sizeof *tag);
    memcpy(tag, at, sizeof *tag);
    /* The allocator's again from here on: padding, tag, guards and user
     * bytes opened to the tools (the tail was at retire). */
    pk__annot_open(at - tag->pad, tag->pad + sizeof *tag + PK_GUARD_SIZE + tag->size + PK_GUARD_SIZE);
    list_remove(&d->held_first, &d->held_last, at);
    d->held--;
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
    return lay_out(NULL, raw, granted, size, align, site);
}

pk_status pk__debug_retire_unlisted(unsigned char *user, size_t granted, pk_debug_tag *tag)
{
    size_t rear = open_block(user, tag, granted);
    pk_status status = mend_guards(user, tag, rear);
    memset(user, PK__FILL_POISON, tag->size + rear);
    pk__annot_takeback(user, tag->size);
    pk__annot_close(tag_at(user) - tag->pad, granted);
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
    size_t rear = rear_bytes(user, t, granted);
    open_guards(user, t, rear);
    fill_guards(user, t, rear);
    close_guards(user, t, rear);
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
    pk_debug_tag t = live_tag(size, pad, site);
    tag_write(tag, &t);
    list_append(&d->live_first, &d->live_last, tag);
    pk__annot_close(raw, prefix);
    pk__annot_close(user + size, after);
    pk__annot_handout(user, size);
    pk__annot_open(user, size); /* kept bytes: defined, not new */
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
    size_t rear = open_block(user, &t, granted);
    pk_status status = mend_guards(user, &t, rear);
    list_remove(&d->live_first, &d->live_last, at);
    d->live--;
    d->requested -= t.size;
    t.state = TAG_HELD; /* off every list: inspect says freed already */
    tag_write(at, &t);
    close_block(user, &t, rear);
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
    tag_write(at, &t);
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
    pk__annot_open(at, sizeof *tag);
    list_remove(&d->live_first, &d->live_last, at);
    pk__annot_close(at, sizeof *tag);
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
