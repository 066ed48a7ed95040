/*
 * Free-list heap with placement policies. See include/poolkit/fit.h for the
 * contract.
 *
 * Blocks. A block starts with its header word (size | flags); its payload
 * follows, aligned to PK_FIT_ALIGN (A). Block sizes (header included) are
 * multiples of A, so every header lies at an address congruent to -W modulo A
 * (W the word) and the low bits of a size are free for the flags:
 *   FREE       the block is free;
 *   PREV_FREE  the block before it is free (so its footer is valid).
 * A free block keeps its list links in the first two words of its payload and
 * its size in its last word (the footer, read by the merge with the block
 * after it). Footers lie at addresses congruent to 0 modulo A when A > W, so
 * they never overwrite a header word of an earlier layout. The buffer ends
 * with a sentinel header (size 0, not free), so that the last block needs no
 * special case.
 *
 * The free list is doubly linked in address order, and circular through an
 * anchor in pk_fit. Free finds its place in O(1) when a neighbour is free
 * (the merged block keeps the neighbour's place); when neither is, two walks
 * run in step and the first to arrive wins: over the live blocks after it to
 * the first free one (a few on average), and along the list from the hint,
 * the block freed last, towards it (one step when blocks are freed in address
 * order, either way). Alloc scans the list (first, next: until a block fits;
 * best: to the end, or an exact fit).
 *
 * Every block freed has its FREE flag set before any merge, so the header of
 * a block merged into its neighbour still says FREE, and a second free of it
 * is caught for as long as those bytes are not reused.
 *
 * Words of the buffer are read and written with memcpy (compiled to plain
 * loads and stores), so the code holds whatever the buffer's declared type.
 */
#include <string.h>

#include "core/internal.h"
#include "debug/notes.h"
#include "poolkit/fit.h"

#define FIT_DEFAULT_NAME "fit"

#define W sizeof(size_t)
#define P sizeof(unsigned char *)
#define A PK_FIT_ALIGN
#define FLAG_FREE ((size_t)1)
#define FLAG_PREV_FREE ((size_t)2)
#define FLAGS (FLAG_FREE | FLAG_PREV_FREE)
#define LOW_BITS (A - 1)
#define MIN_BLOCK PK_FIT_MIN_BLOCK

PK_STATIC_ASSERT((A & (A - 1)) == 0 && A >= 4 && A >= W, "PK_FIT_ALIGN must be a power of two >= 4 and >= sizeof(size_t)");
PK_STATIC_ASSERT(MIN_BLOCK >= 2 * W + 2 * P && MIN_BLOCK % A == 0, "PK_FIT_MIN_BLOCK too small");

static const pk_allocator_ops fit_ops;

/* Word access. */

static inline unsigned char *load_ptr(const unsigned char *at)
{
    unsigned char *v;
    memcpy(&v, at, sizeof v);
    return v;
}

static inline void store_ptr(unsigned char *at, unsigned char *v)
{
    memcpy(at, &v, sizeof v);
}

static inline size_t size_of(size_t header)
{
    return header & ~LOW_BITS;
}

static inline unsigned char *prev_of(const unsigned char *b)
{
    return load_ptr(b + W);
}

static inline unsigned char *next_of(const unsigned char *b)
{
    return load_ptr(b + W + P);
}

static inline void set_prev(unsigned char *b, unsigned char *prev)
{
    store_ptr(b + W, prev);
}

static inline void set_next(unsigned char *b, unsigned char *next)
{
    store_ptr(b + W + P, next);
}

/* Marks b free with size bytes (flags: FREE plus prev_flag) and writes its
 * footer. */
static inline void make_free(unsigned char *b, size_t size, size_t prev_flag)
{
    pk__store_word(b, size | FLAG_FREE | prev_flag);
    pk__store_word(b + size - W, size);
}

static const char *fit_name(const pk_fit *f)
{
    return f->name != NULL ? f->name : FIT_DEFAULT_NAME;
}

static inline bool coalescing(const pk_fit *f)
{
    return (f->flags & PK_FIT_NO_COALESCE) == 0;
}

/* The block size serving a request of size bytes; false when it would
 * overflow. */
static inline bool block_for(size_t size, size_t *need)
{
    if (size <= MIN_BLOCK - W) {
        *need = MIN_BLOCK;
        return true;
    }
    size_t with_header;
    return !pk__add_overflows(size, W, &with_header) && !pk__round_up_overflows(with_header, A, need);
}

/* Free list: circular, closed by the anchor, a pseudo-block inside pk_fit
 * whose header (SIZE_MAX) every request fits, so the first-fit scan needs no
 * end test. */

static inline unsigned char *anchor_of(const pk_fit *f)
{
    return (unsigned char *)(uintptr_t)f->anchor;
}

/* The rover and the hint point at list nodes (or the anchor): a node that
 * leaves the list hands them on. */
static inline void hand_on(pk_fit *f, const unsigned char *old, unsigned char *fresh)
{
    if (f->rover == old) {
        f->rover = fresh;
    }
    if (f->hint == old) {
        f->hint = fresh;
    }
}

static void list_remove(pk_fit *f, unsigned char *b)
{
    unsigned char *prev = prev_of(b);
    unsigned char *next = next_of(b);
    set_next(prev, next);
    set_prev(next, prev);
    hand_on(f, b, next);
}

/* fresh takes old's place in the list. */
static void list_replace(pk_fit *f, unsigned char *old, unsigned char *fresh)
{
    unsigned char *prev = prev_of(old);
    unsigned char *next = next_of(old);
    set_prev(fresh, prev);
    set_next(fresh, next);
    set_next(prev, fresh);
    set_prev(next, fresh);
    hand_on(f, old, fresh);
}

/* Links b in before succ (the anchor: at the end). */
static void list_insert_before(unsigned char *b, unsigned char *succ)
{
    unsigned char *prev = prev_of(succ);
    set_prev(b, prev);
    set_next(b, succ);
    set_next(prev, b);
    set_prev(succ, b);
}

/* The free block after b in address order (the anchor when there is none),
 * for b, not free yet, whose next block n is live. Two walks run in step and
 * the first to arrive wins: over the blocks after b (live blocks up to the
 * next free one), and along the list from the hint (the block freed last)
 * towards b. The first alone ends: at the sentinel, or at a size that cannot
 * be a block's (damaged metadata, found by check), rather than loop or leave
 * the buffer. */
static unsigned char *successor(const pk_fit *f, const unsigned char *b, unsigned char *n)
{
    unsigned char *anchor = anchor_of(f);
    unsigned char *node = f->hint;
    bool forward = node != anchor && node < b;
    if (node == anchor) {
        node = prev_of(anchor); /* from the highest address down */
    }
    for (;;) {
        size_t h = pk__load_word(n);
        if ((h & FLAG_FREE) != 0) {
            return n;
        }
        size_t size = size_of(h);
        if (size == 0 || size >= (size_t)(f->end - n)) {
            return anchor; /* the sentinel (or damage): nothing free after b */
        }
        n += size;
        if (forward) {
            node = next_of(node);
            if (node == anchor || node > b) {
                return node;
            }
        } else {
            if (node == anchor || node < b) {
                return next_of(node);
            }
            node = prev_of(node);
        }
    }
}

/* Placement. A block b fits a request of need bytes aligned to align (0: the
 * default) when the aligned block, after a leading gap that is 0 or a block
 * of its own (MIN_BLOCK at least), ends inside b. */

/* The leading gap of an aligned block inside b, or SIZE_MAX when it does not
 * fit. */
static size_t aligned_gap(const unsigned char *b, size_t size, size_t need, size_t align)
{
    uintptr_t payload = (uintptr_t)(b + W);
    size_t gap = (size_t)((align - (payload & (align - 1))) & (align - 1));
    if (gap != 0 && gap < MIN_BLOCK) {
        size_t more;
        if (pk__round_up_overflows(MIN_BLOCK - gap, align, &more) || pk__add_overflows(gap, more, &gap)) {
            return SIZE_MAX;
        }
    }
    if (gap > size || size - gap < need) {
        return SIZE_MAX;
    }
    return gap;
}

static inline bool fits(const unsigned char *b, size_t header, size_t need, size_t align)
{
    if (align == 0) {
        return header >= need; /* need is a multiple of A: the flags do not matter */
    }
    return aligned_gap(b, size_of(header), need, align) != SIZE_MAX;
}

static unsigned char *find_first(const pk_fit *f, size_t need, size_t align)
{
    unsigned char *anchor = anchor_of(f);
    unsigned char *b = next_of(anchor);
    if (align == 0) {
        while (pk__load_word(b) < need) { /* the anchor fits */
            b = next_of(b);
        }
        return b != anchor ? b : NULL;
    }
    for (; b != anchor; b = next_of(b)) {
        if (fits(b, pk__load_word(b), need, align)) {
            return b;
        }
    }
    return NULL;
}

static unsigned char *find_best(const pk_fit *f, size_t need, size_t align)
{
    unsigned char *anchor = anchor_of(f);
    unsigned char *best = NULL;
    size_t best_size = SIZE_MAX;
    for (unsigned char *b = next_of(anchor); b != anchor; b = next_of(b)) {
        size_t h = pk__load_word(b);
        size_t size = size_of(h);
        if (size < best_size && fits(b, h, need, align)) {
            best = b;
            best_size = size;
            if (size == need) {
                break;
            }
        }
    }
    return best;
}

/* From the rover round the list back to it (the anchor is skipped). */
static unsigned char *find_next(const pk_fit *f, size_t need, size_t align)
{
    unsigned char *anchor = anchor_of(f);
    unsigned char *b = f->rover;
    do {
        if (b != anchor && fits(b, pk__load_word(b), need, align)) {
            return b;
        }
        b = next_of(b);
    } while (b != f->rover);
    return NULL;
}

static unsigned char *find(const pk_fit *f, size_t need, size_t align)
{
    switch (f->policy) {
    case PK_FIT_BEST:
        return find_best(f, need, align);
    case PK_FIT_NEXT:
        return find_next(f, need, align);
    case PK_FIT_FIRST:
    default:
        return find_first(f, need, align);
    }
}

/* Allocates need bytes from the free block b (which fits), splitting off the
 * rest when it makes a block. The rover moves to what follows the allocation:
 * the rest, or b's successor. Returns the payload. */
static void *take(pk_fit *f, unsigned char *b, size_t need)
{
    size_t h = pk__load_word(b);
    size_t size = size_of(h);
    size_t rest = size - need;
    if (rest >= MIN_BLOCK) {
        unsigned char *r = b + need;
        make_free(r, rest, 0);
        list_replace(f, b, r); /* r keeps the list's address order */
        f->rover = r;
        /* The block after r still has PREV_FREE set: r is free. */
    } else {
        need = size;
        f->rover = next_of(b);
        list_remove(f, b);
        f->free_blocks--;
        unsigned char *n = b + size;
        pk__store_word(n, pk__load_word(n) & ~FLAG_PREV_FREE);
    }
    pk__store_word(b, need | (h & FLAG_PREV_FREE));
    f->in_use += need - W;
    f->live++;
    f->allocs++;
    if (f->in_use > f->peak_in_use) {
        f->peak_in_use = f->in_use;
    }
    if (f->live > f->peak_live) {
        f->peak_live = f->live;
    }
    return b + W;
}

/* Splits the leading gap off the free block b as a free block of its own and
 * returns the block after it (free, on the list right after b). */
static unsigned char *split_gap(pk_fit *f, unsigned char *b, size_t gap)
{
    size_t h = pk__load_word(b);
    size_t size = size_of(h);
    unsigned char *a = b + gap;
    make_free(b, gap, h & FLAG_PREV_FREE);
    make_free(a, size - gap, FLAG_PREV_FREE);
    list_insert_before(a, next_of(b));
    f->free_blocks++;
    return a;
}

/* Gives the block b (size bytes, h its live header) back: marks it free,
 * merges it with free neighbours unless PK_FIT_NO_COALESCE, and links it in;
 * the block it ends up in becomes the hint. Updates free_blocks (not live or
 * in_use). */
static void release(pk_fit *f, unsigned char *b, size_t size, size_t h)
{
    unsigned char *n = b + size;
    size_t nh = pk__load_word(n);
    /* Mark b free first: once merged, its old header still says so. */
    pk__store_word(b, h | FLAG_FREE);
    if (coalescing(f)) {
        if ((h & FLAG_PREV_FREE) != 0) {
            size_t prev_size = pk__load_word(b - W);
            unsigned char *p = b - prev_size;
            size += prev_size;
            if ((nh & FLAG_FREE) != 0) {
                size += size_of(nh);
                hand_on(f, n, p);
                list_remove(f, n);
                f->free_blocks--;
            } else {
                pk__store_word(n, nh | FLAG_PREV_FREE);
            }
            make_free(p, size, 0);
            f->hint = p;
            return;
        }
        if ((nh & FLAG_FREE) != 0) {
            list_replace(f, n, b);
            make_free(b, size + size_of(nh), 0);
            f->hint = b;
            return;
        }
    }
    make_free(b, size, h & FLAG_PREV_FREE);
    pk__store_word(n, nh | FLAG_PREV_FREE);
    list_insert_before(b, (nh & FLAG_FREE) != 0 ? n : successor(f, b, n));
    f->hint = b;
    f->free_blocks++;
}

/* Finds the live block whose payload is p: PK_OK with *block and *header, or
 * the misuse. Never reads outside the managed blocks. */
static pk_status lookup(const pk_fit *f, const void *p, unsigned char **block, size_t *header)
{
    uintptr_t addr = (uintptr_t)p;
    uintptr_t start = (uintptr_t)f->start;
    if (addr < start || addr - start >= (uintptr_t)(f->end - f->start) + W) {
        return PK_ERR_FOREIGN_PTR;
    }
    if (addr - start < W || (addr - start - W) % A != 0 || addr >= (uintptr_t)f->end) {
        return PK_ERR_MISALIGNED_PTR;
    }
    unsigned char *b = f->start + (addr - start - W);
    size_t h = pk__load_word(b);
    size_t size = size_of(h);
    if ((h & LOW_BITS & ~FLAGS) != 0 || size < MIN_BLOCK || size > (size_t)(f->end - b)) {
        return PK_ERR_MISALIGNED_PTR; /* no block's header */
    }
    if ((h & FLAG_FREE) != 0) {
        return PK_ERR_DOUBLE_FREE;
    }
    /* A live block: the next block does not say it is free, and when it says
     * the block before is free, that block's footer and header agree. */
    if ((pk__load_word(b + size) & FLAG_PREV_FREE) != 0) {
        return PK_ERR_MISALIGNED_PTR;
    }
    if ((h & FLAG_PREV_FREE) != 0) {
        if (b == f->start) {
            return PK_ERR_MISALIGNED_PTR;
        }
        size_t prev = pk__load_word(b - W);
        if (prev < MIN_BLOCK || prev > (size_t)(b - f->start) ||
            (pk__load_word(b - prev) & ~FLAG_PREV_FREE) != (prev | FLAG_FREE)) {
            return PK_ERR_MISALIGNED_PTR;
        }
    }
    *block = b;
    *header = h;
    return PK_OK;
}

/* Frees the live block b (header h): release and counters. */
static void free_block(pk_fit *f, unsigned char *b, size_t h)
{
    size_t size = size_of(h);
    f->in_use -= size - W;
    f->live--;
    f->frees++;
    release(f, b, size, h);
}

/* Public API. */

pk_status pk_fit_init(pk_fit *f, void *buf, size_t size, pk_fit_policy policy, unsigned flags)
{
    if (f == NULL || buf == NULL || (unsigned)policy > (unsigned)PK_FIT_NEXT ||
        (flags & ~(unsigned)PK_FIT_NO_COALESCE) != 0) {
        return PK_ERR_INVALID_ARG;
    }
    uintptr_t addr = (uintptr_t)buf;
    if (size > UINTPTR_MAX - addr) {
        return PK_ERR_INVALID_ARG; /* the buffer would wrap the address space */
    }
    /* The first payload is the first address >= buf + W aligned to A. */
    size_t pad = (size_t)((A - ((addr + W) & (A - 1))) & (A - 1));
    if (size < pad + W + MIN_BLOCK) {
        return PK_ERR_INVALID_ARG;
    }
    size_t total = (size - pad - W) & ~LOW_BITS;
    unsigned char *start = (unsigned char *)buf + pad;

    pk_fit fresh = {
        .start = start,
        .end = start + total,
        .capacity = total - W,
        .free_blocks = 1,
        .policy = policy,
        .flags = flags,
        .name = FIT_DEFAULT_NAME,
    };
    fresh.view.ops = &fit_ops;
    fresh.view.self = f;
    *f = fresh;
    unsigned char *anchor = anchor_of(f);
    pk__store_word(anchor, SIZE_MAX);
    set_prev(anchor, start);
    set_next(anchor, start);
    f->rover = anchor;
    f->hint = anchor;
    make_free(start, total, 0);
    set_prev(start, anchor);
    set_next(start, anchor);
    pk__store_word(start + total, FLAG_PREV_FREE); /* the sentinel */
    return PK_OK;
}

/* Allocation with the lock held: NULL (counted as a failure) when nothing
 * fits. */
static void *alloc_locked(pk_fit *f, size_t need, size_t align)
{
    unsigned char *b = find(f, need, align);
    if (b == NULL) {
        f->failures++;
        return NULL;
    }
    if (align != 0) {
        size_t gap = aligned_gap(b, size_of(pk__load_word(b)), need, align);
        if (gap != 0) {
            b = split_gap(f, b, gap);
        }
    }
    return take(f, b, need);
}

#if !PK_DEBUG
void *pk_fit_alloc(pk_fit *f, size_t size)
{
    size_t need = 0;
    bool ok = block_for(size, &need);
    pk__lock(&f->lock);
    void *p;
    if (ok) {
        p = alloc_locked(f, need, 0);
    } else {
        f->failures++;
        p = NULL;
    }
    pk__unlock(&f->lock);
    return p;
}

void *pk_fit_alloc_aligned(pk_fit *f, size_t size, size_t align)
{
    if (align != 0 && !pk__is_pow2(align)) {
        pk__lock(&f->lock);
        f->rejected++;
        const char *name = fit_name(f);
        pk__unlock(&f->lock);
        (void)pk_report_fault(PK_ERR_INVALID_ARG, name, NULL);
        return NULL;
    }
    if (align <= A) {
        align = 0; /* every block has it */
    }
    size_t need = 0;
    bool ok = block_for(size, &need);
    pk__lock(&f->lock);
    void *p;
    if (ok) {
        p = alloc_locked(f, need, align);
    } else {
        f->failures++;
        p = NULL;
    }
    pk__unlock(&f->lock);
    return p;
}

pk_status pk_fit_free(pk_fit *f, void *p)
{
    if (p == NULL) {
        return PK_OK;
    }
    pk__lock(&f->lock);
    unsigned char *b;
    size_t h;
    pk_status status = lookup(f, p, &b, &h);
    if (status == PK_OK) {
        free_block(f, b, h);
    } else {
        f->rejected++;
    }
    const char *name = fit_name(f);
    pk__unlock(&f->lock);
    if (status != PK_OK) {
        return pk_report_fault(status, name, p);
    }
    return PK_OK;
}

/* Resizes the live block b (header h) to need bytes without moving it, when
 * it can: shrinking gives the tail back, growing takes from a free block
 * right after it. */
static bool resize_in_place(pk_fit *f, unsigned char *b, size_t h, size_t need)
{
    size_t size = size_of(h);
    if (need <= size) {
        size_t rest = size - need;
        if (rest >= MIN_BLOCK) {
            pk__store_word(b, need | (h & FLAG_PREV_FREE));
            f->in_use -= rest;
            release(f, b + need, rest, rest);
        }
        return true;
    }
    unsigned char *n = b + size;
    size_t nh = pk__load_word(n);
    size_t combined = size + size_of(nh);
    if ((nh & FLAG_FREE) == 0 || combined < need) {
        return false;
    }
    size_t rest = combined - need;
    if (rest >= MIN_BLOCK) {
        unsigned char *r = b + need;
        /* r may lie on n's links (growth by one alignment step): move the
         * list entry before r's header overwrites them. */
        list_replace(f, n, r);
        make_free(r, rest, 0);
    } else {
        need = combined;
        list_remove(f, n);
        f->free_blocks--;
        unsigned char *after = b + combined;
        pk__store_word(after, pk__load_word(after) & ~FLAG_PREV_FREE);
    }
    pk__store_word(b, need | (h & FLAG_PREV_FREE));
    f->in_use += need - size;
    if (f->in_use > f->peak_in_use) {
        f->peak_in_use = f->in_use;
    }
    return true;
}

void *pk_fit_realloc(pk_fit *f, void *p, size_t size)
{
    if (p == NULL) {
        return pk_fit_alloc(f, size);
    }
    if (size == 0) {
        (void)pk_fit_free(f, p);
        return NULL;
    }
    size_t need = 0;
    bool ok = block_for(size, &need);
    pk__lock(&f->lock);
    unsigned char *b;
    size_t h;
    pk_status status = lookup(f, p, &b, &h);
    void *result = NULL;
    if (status != PK_OK) {
        f->rejected++;
    } else if (!ok) {
        f->failures++;
    } else if (resize_in_place(f, b, h, need)) {
        result = p;
    } else {
        result = alloc_locked(f, need, 0);
        if (result != NULL) {
            size_t old = size_of(h) - W;
            memcpy(result, p, old < size ? old : size);
            free_block(f, b, pk__load_word(b)); /* the header may have gained PREV_FREE */
        }
    }
    const char *name = fit_name(f);
    pk__unlock(&f->lock);
    if (status != PK_OK) {
        (void)pk_report_fault(status, name, p);
    }
    return result;
}

size_t pk_fit_usable_size(const pk_fit *f, const void *p)
{
    pk__lock(&f->lock);
    unsigned char *b;
    size_t h;
    size_t usable = lookup(f, p, &b, &h) == PK_OK ? size_of(h) - W : 0;
    pk__unlock(&f->lock);
    return usable;
}
#else /* PK_DEBUG */

/* Debug builds (README "Debug builds"): every block the clients get is a
 * debug block (src/debug/hooks.h) inside a heap block of size +
 * PK_DEBUG_OVERHEAD_(align) bytes, its payload aligned to align; its granted
 * bytes are the heap block's whole payload. Freed blocks go to the
 * quarantine, live to the heap, and are really freed (merging) when they
 * leave it, so their poison is verified then: a merge rewrites freed bytes,
 * so it cannot be verified when they are handed out again. Every public call
 * takes the lock once, notes what it finds, and reports after unlocking. */

/* The bytes before a client pointer that its tag and front guard take: a
 * pointer closer than that to the first payload cannot be a block's. */
#define DEBUG_TAG_ROOM (sizeof(pk_debug_tag) + PK_GUARD_SIZE)

/* The payload bytes of the live block whose payload is raw. */
static inline size_t granted_of(const unsigned char *raw)
{
    return size_of(pk__load_word(raw - W)) - W;
}

/* Really frees the quarantined blocks due to leave (all of them with drain),
 * noting those whose poison was written. A block whose header was damaged
 * meanwhile is noted as corrupt and left alone. */
static void release_held(pk_fit *f, bool drain, pk__debug_notes *notes)
{
    pk_status damaged;
    pk_debug_tag tag;
    unsigned char *raw;
    while ((raw = pk__debug_evict(&f->debug, drain, &damaged, &tag)) != NULL) {
        if (damaged != PK_OK) {
            pk__debug_note(notes, damaged, pk__debug_user_of(raw, &tag), &tag);
        }
        unsigned char *b;
        size_t h;
        if (lookup(f, raw, &b, &h) == PK_OK) {
            free_block(f, b, h);
        } else {
            pk__debug_note(notes, PK_ERR_CORRUPT, pk__debug_user_of(raw, &tag), &tag);
        }
    }
}

/* An allocation of size bytes aligned to align (A or a power of two above
 * it), with the lock held. The quarantine never causes a NULL: when no free
 * block fits, it is drained and the request tried again. */
static void *debug_alloc_core(pk_fit *f, size_t size, size_t align, pk__site site, pk__debug_notes *notes)
{
    size_t raw_size;
    size_t need;
    if (!pk__debug_raw_size(size, align, &raw_size) || !block_for(raw_size, &need)) {
        f->failures++;
        return NULL;
    }
    size_t inner_align = align > A ? align : 0;
    unsigned char *raw = alloc_locked(f, need, inner_align);
    if (raw == NULL && f->debug.held > 0) {
        f->failures--; /* counted by the first try: only the retry's outcome counts */
        release_held(f, true, notes);
        raw = alloc_locked(f, need, inner_align);
    }
    if (raw == NULL) {
        return NULL;
    }
    size_t granted = granted_of(raw);
    f->debug_in_use += granted;
    if (f->debug_in_use > f->debug_peak_in_use) {
        f->debug_peak_in_use = f->debug_in_use;
    }
    return pk__debug_setup(&f->debug, raw, granted, size, align, site);
}

/* What p is: PK_OK (a live block: *tag and *raw filled), or the misuse:
 * PK_ERR_FOREIGN_PTR (outside the managed blocks), PK_ERR_MISALIGNED_PTR (no
 * valid tag before it: an interior or stale pointer), PK_ERR_DOUBLE_FREE (a
 * quarantined block, or one freed since, whose tag is intact), PK_ERR_CORRUPT
 * (a live tag whose heap block is not live: damaged metadata). *tagged says
 * whether *tag is the block's. */
static pk_status debug_lookup(const pk_fit *f, const void *p, pk_debug_tag *tag, unsigned char **raw,
                              bool *tagged)
{
    uintptr_t addr = (uintptr_t)p;
    uintptr_t start = (uintptr_t)f->start;
    *tagged = false;
    if (addr < start || addr - start >= (uintptr_t)(f->end - f->start) + W) {
        return PK_ERR_FOREIGN_PTR;
    }
    if (addr - start < W + DEBUG_TAG_ROOM) {
        return PK_ERR_MISALIGNED_PTR;
    }
    pk_status status = pk__debug_inspect(p, tag, raw);
    *tagged = status != PK_ERR_MISALIGNED_PTR;
    unsigned char *b;
    size_t h;
    if (status == PK_OK && lookup(f, *raw, &b, &h) != PK_OK) {
        status = PK_ERR_CORRUPT;
    }
    return status;
}

/* A free with the lock held: a live block is retired to the quarantine (its
 * guards verified and restored: PK_ERR_GUARD_CORRUPT is returned, and the
 * block freed all the same), and the blocks due to leave it are freed. */
static pk_status debug_free_core(pk_fit *f, void *p, pk__debug_notes *notes)
{
    pk_debug_tag tag;
    unsigned char *raw;
    bool tagged;
    pk_status status = debug_lookup(f, p, &tag, &raw, &tagged);
    if (status != PK_OK) {
        f->rejected++;
        pk__debug_note(notes, status, p, tagged ? &tag : NULL);
        return status;
    }
    size_t granted = granted_of(raw);
    status = pk__debug_retire(&f->debug, p, granted);
    f->debug_in_use -= granted;
    if (status != PK_OK) {
        pk__debug_note(notes, status, p, &tag);
    }
    release_held(f, false, notes);
    return status;
}

static void *debug_alloc(pk_fit *f, size_t size, size_t align, pk__site site)
{
    pk__debug_notes notes;
    notes.count = 0;
    pk__lock(&f->lock);
    void *p = debug_alloc_core(f, size, align, site, &notes);
    const char *name = fit_name(f);
    pk__unlock(&f->lock);
    pk__debug_report_notes(&notes, name, site);
    return p;
}

static pk_status debug_free(pk_fit *f, void *p, pk__site site)
{
    if (p == NULL) {
        return PK_OK;
    }
    pk__debug_notes notes;
    notes.count = 0;
    pk__lock(&f->lock);
    pk_status status = debug_free_core(f, p, &notes);
    const char *name = fit_name(f);
    pk__unlock(&f->lock);
    pk__debug_report_notes(&notes, name, site);
    return status;
}

void *pk_fit_alloc(pk_fit *f, size_t size)
{
    return debug_alloc(f, size, A, pk__debug_take_site());
}

void *pk_fit_alloc_aligned(pk_fit *f, size_t size, size_t align)
{
    pk__site site = pk__debug_take_site();
    if (align != 0 && !pk__is_pow2(align)) {
        pk__lock(&f->lock);
        f->rejected++;
        const char *name = fit_name(f);
        pk__unlock(&f->lock);
        (void)pk__debug_report(PK_ERR_INVALID_ARG, name, NULL, NULL, site);
        return NULL;
    }
    return debug_alloc(f, size, align > A ? align : A, site);
}

pk_status pk_fit_free(pk_fit *f, void *p)
{
    return debug_free(f, p, pk__debug_take_site());
}

/* Debug builds: alloc, copy and free under one hold of the lock (the block
 * moves, so that its guards follow the new size), or p itself when the size
 * is the same. */
void *pk_fit_realloc(pk_fit *f, void *p, size_t size)
{
    pk__site site = pk__debug_take_site();
    if (p == NULL) {
        return debug_alloc(f, size, A, site);
    }
    if (size == 0) {
        (void)debug_free(f, p, site);
        return NULL;
    }
    pk__debug_notes notes;
    notes.count = 0;
    pk_debug_tag tag;
    unsigned char *raw;
    bool tagged;
    void *result = NULL;
    pk__lock(&f->lock);
    pk_status status = debug_lookup(f, p, &tag, &raw, &tagged);
    if (status != PK_OK) {
        f->rejected++;
        pk__debug_note(&notes, status, p, tagged ? &tag : NULL);
    } else if (tag.size == size) {
        result = p;
    } else {
        result = debug_alloc_core(f, size, A, site, &notes);
        if (result != NULL) {
            memcpy(result, p, tag.size < size ? tag.size : size);
            (void)debug_free_core(f, p, &notes);
        }
    }
    const char *name = fit_name(f);
    pk__unlock(&f->lock);
    pk__debug_report_notes(&notes, name, site);
    return result;
}

/* Debug builds: the size requested. */
size_t pk_fit_usable_size(const pk_fit *f, const void *p)
{
    pk_debug_tag tag;
    unsigned char *raw;
    bool tagged;
    pk__lock(&f->lock);
    size_t usable = debug_lookup(f, p, &tag, &raw, &tagged) == PK_OK ? tag.size : 0;
    pk__unlock(&f->lock);
    return usable;
}

static size_t granted_block(const void *self, const unsigned char *raw)
{
    (void)self;
    return granted_of(raw);
}

static void view_leaks(void *self, uint64_t since, pk_leak_fn cb, void *ctx)
{
    pk_fit *f = self;
    pk__lock(&f->lock);
    pk__debug_walk(&f->debug, since, cb, ctx);
    pk__unlock(&f->lock);
}
#endif /* PK_DEBUG */

/* The size of the largest free block (0: none). The walk is bounded by the
 * free block count and stops at a link outside the buffer (damage, found by
 * check). */
static size_t largest_free_block(const pk_fit *f)
{
    const unsigned char *anchor = anchor_of(f);
    size_t largest = 0;
    size_t steps = 0;
    for (const unsigned char *b = next_of(anchor); b != anchor && steps < f->free_blocks;
         b = next_of(b), steps++) {
        if (b < f->start || b >= f->end) {
            break;
        }
        size_t size = size_of(pk__load_word(b));
        if (size > largest) {
            largest = size;
        }
    }
    return largest;
}

void pk_fit_stats(const pk_fit *f, pk_stats *out)
{
    pk__lock(&f->lock);
    size_t largest = largest_free_block(f);
    size_t total = (size_t)(f->end - f->start);
    size_t live_bytes = f->in_use + f->live * W;
    size_t free_total = total - live_bytes;
#if PK_DEBUG
    /* The clients' view: quarantined blocks are free (their payloads),
     * requests exact; in_use counts the heap blocks of live allocations,
     * their debug bytes included; largest_free is the largest request that
     * succeeds now without draining the quarantine. */
    size_t held_bytes = f->in_use - f->debug_in_use;
    size_t largest_payload = largest != 0 ? largest - W : 0;
    pk_stats s = {
        .capacity = f->capacity,
        .in_use = f->debug_in_use,
        .requested = f->debug.requested,
        .peak_in_use = f->debug_peak_in_use,
        .free_bytes = free_total - f->free_blocks * W + held_bytes,
        .largest_free = largest_payload > PK_FIT_DEBUG_BYTES_ ? largest_payload - PK_FIT_DEBUG_BYTES_ : 0,
        .block_size = 0,
        .live = f->debug.live,
        .peak_live = f->debug.peak_live,
        .allocs = f->allocs,
        .frees = f->frees + f->debug.held,
        .failures = f->failures,
        .rejected = f->rejected,
    };
#else
    pk_stats s = {
        .capacity = f->capacity,
        .in_use = f->in_use,
        .requested = f->in_use,
        .peak_in_use = f->peak_in_use,
        .free_bytes = free_total - f->free_blocks * W,
        .largest_free = largest != 0 ? largest - W : 0,
        .block_size = 0,
        .live = f->live,
        .peak_live = f->peak_live,
        .allocs = f->allocs,
        .frees = f->frees,
        .failures = f->failures,
        .rejected = f->rejected,
    };
#endif
    pk__unlock(&f->lock);
    *out = s;
}

void pk_fit_reset_peaks(pk_fit *f)
{
    pk__lock(&f->lock);
    f->peak_in_use = f->in_use;
    f->peak_live = f->live;
#if PK_DEBUG
    f->debug_peak_in_use = f->debug_in_use;
    f->debug.peak_live = f->debug.live;
#endif
    pk__unlock(&f->lock);
}

/* The full walk: every block in address order against the free list in
 * lockstep (the list must hold exactly the free blocks, in address order, so
 * it cannot cycle), flags, footers, merges and counters. */
static bool fit_consistent(const pk_fit *f)
{
    size_t total = (size_t)(f->end - f->start);
    if (f->start == NULL || f->end < f->start || total < MIN_BLOCK || total % A != 0 || f->capacity != total - W ||
        f->frees > f->allocs || f->allocs - f->frees != f->live || f->peak_live < f->live ||
        f->peak_in_use < f->in_use || (unsigned)f->policy > (unsigned)PK_FIT_NEXT) {
        return false;
    }
    const unsigned char *anchor = anchor_of(f);
    const unsigned char *expected = next_of(anchor); /* the next list node to meet */
    const unsigned char *last_free = anchor;
    bool prev_free = false;
    bool rover_seen = f->rover == anchor;
    bool hint_seen = f->hint == anchor;
    size_t live = 0, in_use = 0, free_blocks = 0;
    const unsigned char *b = f->start;
    while (b != f->end) {
        size_t h = pk__load_word(b);
        size_t size = size_of(h);
        if ((h & LOW_BITS & ~FLAGS) != 0 || size < MIN_BLOCK || size > (size_t)(f->end - b) ||
            ((h & FLAG_PREV_FREE) != 0) != prev_free) {
            return false;
        }
        bool is_free = (h & FLAG_FREE) != 0;
        if (is_free) {
            if ((prev_free && coalescing(f)) || pk__load_word(b + size - W) != size || b != expected ||
                prev_of(b) != last_free) {
                return false;
            }
            rover_seen = rover_seen || f->rover == b;
            hint_seen = hint_seen || f->hint == b;
            expected = next_of(b);
            last_free = b;
            free_blocks++;
        } else {
            live++;
            in_use += size - W;
        }
        prev_free = is_free;
        b += size;
    }
    return pk__load_word(f->end) == (prev_free ? FLAG_PREV_FREE : 0) && pk__load_word(anchor) == SIZE_MAX &&
           expected == anchor && prev_of(anchor) == last_free && rover_seen && hint_seen &&
           live == f->live && in_use == f->in_use && free_blocks == f->free_blocks;
}

pk_status pk_fit_check(const pk_fit *f)
{
    pk__lock(&f->lock);
    bool ok = fit_consistent(f);
#if PK_DEBUG
    /* Every live block's tag and guards, every quarantined block's poison. */
    pk_debug_tag tag;
    const unsigned char *where = NULL;
    pk_status status = ok && f->debug.live + f->debug.held == f->live && f->debug_in_use <= f->in_use &&
                               f->debug_peak_in_use >= f->debug_in_use
                           ? pk__debug_check(&f->debug, granted_block, f, &tag, &where)
                           : PK_ERR_CORRUPT;
    const char *name = fit_name(f);
    pk__unlock(&f->lock);
    pk__site none = {NULL, 0};
    return status == PK_OK ? PK_OK : pk__debug_report(status, name, where, where != NULL ? &tag : NULL, none);
#else
    const char *name = fit_name(f);
    pk__unlock(&f->lock);
    return ok ? PK_OK : pk_report_fault(PK_ERR_CORRUPT, name, NULL);
#endif
}

void pk_fit_set_name(pk_fit *f, const char *name)
{
    f->name = name != NULL ? name : FIT_DEFAULT_NAME;
}

pk_status pk_fit_set_lock(pk_fit *f, const pk_lock *lock)
{
    if (!pk__choose_lock(&f->lock, lock)) {
        return PK_ERR_INVALID_ARG;
    }
    return PK_OK;
}

pk_allocator *pk_fit_allocator(pk_fit *f)
{
    return &f->view;
}

/* Generic view. */

static void *view_alloc_aligned(void *self, size_t size, size_t align)
{
    return pk_fit_alloc_aligned(self, size, align);
}

static pk_status view_free(void *self, void *ptr)
{
    return pk_fit_free(self, ptr);
}

static void *view_realloc(void *self, void *ptr, size_t size)
{
    return pk_fit_realloc(self, ptr, size);
}

static void view_stats(const void *self, pk_stats *out)
{
    pk_fit_stats(self, out);
}

static pk_status view_check(const void *self)
{
    return pk_fit_check(self);
}

static const char *view_name(const void *self)
{
    return fit_name(self);
}

static size_t view_usable_size(const void *self, const void *ptr)
{
    return pk_fit_usable_size(self, ptr);
}

#if !PK_DEBUG
#define view_leaks NULL
#endif

static const pk_allocator_ops fit_ops = {
    view_alloc_aligned, view_free, view_realloc, view_stats, view_check, view_name, view_usable_size, view_leaks,
};
