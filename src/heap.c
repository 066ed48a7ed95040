/*
 * O(1) heap: two-level segregated fit. See include/poolkit/heap.h.
 *
 * A block is addressed by its prev_phys word, which lies in the last word of
 * the previous block's payload and is valid only while that block is free.
 * Its header word follows, then the payload. Payload sizes satisfy
 * (size + W) % A == 0 (W the word, A the alignment), so that the next block's
 * payload is aligned too; the low two bits of the header hold the flags.
 * Each region ends with a sentinel header of size 0, marked used, so the last
 * block needs no special case.
 *
 * Test builds define PK_HEAP_COUNT_STEPS to count the inner steps of each
 * call (class mapping, bitmap search, list insert and remove, split, merge);
 * tests assert the count per call has a fixed bound. Release builds compile
 * the counter out.
 */
#include <string.h>

#include "core/internal.h"
#include "poolkit/heap.h"

#define HEAP_DEFAULT_NAME "heap"

static const pk_allocator_ops heap_ops;

struct pk_heap_block {
    pk_heap_block *prev_phys; /* in the previous block's payload; valid iff PREV_FREE */
    size_t header;            /* payload size | FREE | PREV_FREE */
    pk_heap_block *next_free; /* the payload starts here */
    pk_heap_block *prev_free;
};

#define W sizeof(size_t)
#define A PK_HEAP_ALIGN
#define FLAG_FREE ((size_t)1)
#define FLAG_PREV_FREE ((size_t)2)
#define FLAGS (FLAG_FREE | FLAG_PREV_FREE)
/* The smallest payload: two list links, and the next block's prev_phys. */
#define MIN_PAYLOAD (((3 * W + W + A - 1) & ~(A - 1)) - W)
/* Classes are taken of x = size + W + SMALL_LIMIT: valid sizes give multiples
 * of A, and small sizes fall in the first level, split linearly in steps of A
 * (one valid size per class), by the same arithmetic as the others (no
 * branch). */
#define SMALL_LIMIT ((size_t)1 << PK_HEAP_FL_SHIFT)
#define X_OFFSET (SMALL_LIMIT + W)
/* The largest payload whose class, rounded up for the search, still fits in
 * the lists (of the valid form). */
#define MAX_PAYLOAD                                                                 \
    (((size_t)1 << PK_HEAP_MAX_LOG2) - ((size_t)1 << (PK_HEAP_MAX_LOG2 - 1 - PK_HEAP_SL_LOG2)) - \
     X_OFFSET - A)

PK_STATIC_ASSERT(sizeof(void *) == sizeof(size_t), "the heap's block layout assumes pointer-sized words");
PK_STATIC_ASSERT(MIN_PAYLOAD == PK_HEAP_MIN_PAYLOAD, "heap.h's PK_HEAP_MIN_PAYLOAD disagrees");

#ifdef PK_HEAP_COUNT_STEPS
#define STEP(h) ((h)->steps++)
#else
#define STEP(h) ((void)0)
#endif

static inline size_t block_size(const pk_heap_block *b)
{
    return b->header & ~FLAGS;
}

static inline bool is_free(const pk_heap_block *b)
{
    return (b->header & FLAG_FREE) != 0;
}

static inline unsigned char *payload_of(const pk_heap_block *b)
{
    return (unsigned char *)&b->next_free;
}

static inline pk_heap_block *block_of(const void *payload)
{
    return (pk_heap_block *)(void *)((unsigned char *)(uintptr_t)payload - 2 * W);
}

static inline pk_heap_block *next_phys(const pk_heap_block *b)
{
    return (pk_heap_block *)(void *)(payload_of(b) + block_size(b) - W);
}

/* Request -> payload size: at least MIN_PAYLOAD, of the valid form; 0 when
 * the request is too large. */
static inline size_t adjust_size(size_t request)
{
    if (request > MAX_PAYLOAD) {
        return 0;
    }
    if (request < MIN_PAYLOAD) {
        return MIN_PAYLOAD;
    }
    return ((request + W + A - 1) & ~(A - 1)) - W;
}

/* The class of a block of `size` payload bytes: the first level is the power
 * of two of x = size + X_OFFSET, the second its next SL_LOG2 bits. */
static PK__ALWAYS_INLINE void class_of_x(size_t x, unsigned *fl, unsigned *sl)
{
    unsigned top = pk__log2_floor(x);
    *fl = top - PK_HEAP_FL_SHIFT;
    *sl = (unsigned)(x >> (top - PK_HEAP_SL_LOG2)) ^ PK_HEAP_SL_COUNT;
}

static PK__ALWAYS_INLINE void mapping_insert(size_t size, unsigned *fl, unsigned *sl)
{
    class_of_x(size + X_OFFSET, fl, sl);
}

/* The class to search so that any block found holds size: x rounded up to
 * the next class boundary ("good fit"). */
static PK__ALWAYS_INLINE void mapping_search(size_t size, unsigned *fl, unsigned *sl)
{
    size_t x = size + X_OFFSET;
    x += ((size_t)1 << (pk__log2_floor(x) - PK_HEAP_SL_LOG2)) - 1;
    class_of_x(x, fl, sl);
}

static PK__ALWAYS_INLINE void remove_free(pk_heap *h, pk_heap_block *b, unsigned fl, unsigned sl)
{
    STEP(h);
    pk_heap_block *prev = b->prev_free;
    pk_heap_block *next = b->next_free;
    if (next != NULL) {
        next->prev_free = prev;
    }
    if (prev != NULL) {
        prev->next_free = next;
    } else {
        h->lists[fl][sl] = next;
        if (next == NULL) {
            h->sl_bitmap[fl] &= ~(1u << sl);
            if (h->sl_bitmap[fl] == 0) {
                h->fl_bitmap &= ~(1u << fl);
            }
        }
    }
}

static PK__ALWAYS_INLINE void remove_free_block(pk_heap *h, pk_heap_block *b)
{
    unsigned fl, sl;
    mapping_insert(block_size(b), &fl, &sl);
    remove_free(h, b, fl, sl);
}

static PK__ALWAYS_INLINE void insert_free(pk_heap *h, pk_heap_block *b)
{
    STEP(h);
    unsigned fl, sl;
    mapping_insert(block_size(b), &fl, &sl);
    pk_heap_block *head = h->lists[fl][sl];
    b->next_free = head;
    b->prev_free = NULL;
    if (head != NULL) {
        head->prev_free = b;
    }
    h->lists[fl][sl] = b;
    h->fl_bitmap |= 1u << fl;
    h->sl_bitmap[fl] |= 1u << sl;
}

/* A free block of a class at or above (fl, sl), or NULL. Two find-first-set
 * operations, no loop. */
static PK__ALWAYS_INLINE pk_heap_block *find_suitable(pk_heap *h, unsigned *fl, unsigned *sl)
{
    STEP(h);
    uint32_t sl_map = h->sl_bitmap[*fl] & (~(uint32_t)0 << *sl);
    if (sl_map == 0) {
        uint32_t fl_map = (uint32_t)(h->fl_bitmap & (~(uint64_t)0 << (*fl + 1)));
        if (fl_map == 0) {
            return NULL;
        }
        *fl = pk__ctz(fl_map);
        sl_map = h->sl_bitmap[*fl];
    }
    *sl = pk__ctz(sl_map);
    return h->lists[*fl][*sl];
}

/* Takes b, the head of list (fl, sl), off it. */
static PK__ALWAYS_INLINE void pop_head(pk_heap *h, pk_heap_block *b, unsigned fl, unsigned sl)
{
    STEP(h);
    pk_heap_block *next = b->next_free;
    h->lists[fl][sl] = next;
    if (next != NULL) {
        next->prev_free = NULL;
    } else {
        h->sl_bitmap[fl] &= ~(1u << sl);
        if (h->sl_bitmap[fl] == 0) {
            h->fl_bitmap &= ~(1u << fl);
        }
    }
}

#if PK_HEAP_STRICT_FREE
static PK__ALWAYS_INLINE const pk_heap_region *region_of(const pk_heap *h, const void *payload);

static inline size_t start_bit(const pk_heap_region *r, const pk_heap_block *b)
{
    return (size_t)(payload_of(b) - r->start) / A;
}

static void mark_start(const pk_heap *h, const pk_heap_block *b, bool on)
{
    const pk_heap_region *r = region_of(h, payload_of(b));
    size_t bit = start_bit(r, b);
    if (on) {
        r->starts[bit / 32] |= (uint32_t)1 << (bit % 32);
    } else {
        r->starts[bit / 32] &= ~((uint32_t)1 << (bit % 32));
    }
}

static bool is_start(const pk_heap_region *r, const pk_heap_block *b)
{
    size_t bit = start_bit(r, b);
    return (r->starts[bit / 32] >> (bit % 32) & 1u) != 0;
}
#define MARK_START(h, b, on) mark_start((h), (b), (on))
#else
#define MARK_START(h, b, on) ((void)0)
#endif

/* Splits `size` payload bytes off the front of the used block b when the rest
 * can make a block; the rest becomes a free block. b's next neighbour must be
 * used (a free one would have been merged). */
static PK__ALWAYS_INLINE void split_tail(pk_heap *h, pk_heap_block *b, size_t size)
{
    size_t total = block_size(b);
    if (total < size + W + MIN_PAYLOAD) {
        return;
    }
    STEP(h);
    pk_heap_block *rest = (pk_heap_block *)(void *)(payload_of(b) + size - W);
    rest->header = (total - size - W) | FLAG_FREE;
    b->header = size | (b->header & FLAGS);
    pk_heap_block *after = next_phys(rest);
    after->prev_phys = rest;
    after->header |= FLAG_PREV_FREE;
    h->blocks++;
    MARK_START(h, rest, true);
    insert_free(h, rest);
}

static PK__ALWAYS_INLINE void count_alloc(pk_heap *h, size_t size)
{
    h->in_use += size;
    h->live++;
    h->allocs++;
    if (h->in_use > h->peak_in_use) {
        h->peak_in_use = h->in_use;
    }
    if (h->live > h->peak_live) {
        h->peak_live = h->live;
    }
}

/* Hands out b, a free block off its list (its next neighbour says PREV_FREE),
 * trimmed to size: the rest, if it can make a block, stays free. */
static PK__ALWAYS_INLINE void *use_block(pk_heap *h, pk_heap_block *b, size_t size)
{
    size_t total = block_size(b);
    if (total >= size + W + MIN_PAYLOAD) {
        STEP(h);
        pk_heap_block *rest = (pk_heap_block *)(void *)(payload_of(b) + size - W);
        rest->header = (total - size - W) | FLAG_FREE;
        b->header = size | (b->header & FLAG_PREV_FREE);
        next_phys(rest)->prev_phys = rest;
        h->blocks++;
        MARK_START(h, rest, true);
        insert_free(h, rest);
    } else {
        b->header &= ~FLAG_FREE;
        next_phys(b)->header &= ~FLAG_PREV_FREE;
    }
    count_alloc(h, block_size(b));
    return payload_of(b);
}

static const char *heap_name(const pk_heap *h)
{
    return h->name != NULL ? h->name : HEAP_DEFAULT_NAME;
}

/* Lays the size bytes at buf out as one free block and a sentinel. */
static bool make_region(pk_heap_region *r, void *buf, size_t size)
{
    uintptr_t start = (uintptr_t)buf;
    uintptr_t first_payload = (start + 2 * W + A - 1) & ~(uintptr_t)(A - 1);
    if (first_payload < start || first_payload - start >= size) {
        return false;
    }
    size_t room = size - (size_t)(first_payload - start);
#if PK_HEAP_STRICT_FREE
    /* The start bitmap goes at the region's end: one bit per A bytes. */
    size_t bitmap_bytes = (room / A / 32 + 1) * sizeof(uint32_t) + sizeof(uint32_t);
    if (room <= bitmap_bytes) {
        return false;
    }
    room -= bitmap_bytes;
#endif
    /* The first block's payload, then the sentinel's header: payload + W is
     * a multiple of A (the valid form) and fits in the room. */
    size_t payload = (room & ~(A - 1)) - W;
    if ((room & ~(A - 1)) < W + MIN_PAYLOAD) {
        return false;
    }
    if (payload > MAX_PAYLOAD) {
        payload = MAX_PAYLOAD;
    }
    pk_heap_block *first = block_of((void *)first_payload);
    first->header = payload | FLAG_FREE;
    pk_heap_block *sentinel = next_phys(first);
    sentinel->prev_phys = first;
    sentinel->header = 0 | FLAG_PREV_FREE;
    r->start = payload_of(first);
    r->end = (unsigned char *)&sentinel->header + W;
    r->buffer = buf;
    r->buffer_end = (unsigned char *)buf + size;
#if PK_HEAP_STRICT_FREE
    uintptr_t map = ((uintptr_t)r->end + sizeof(uint32_t) - 1) & ~(uintptr_t)(sizeof(uint32_t) - 1);
    r->starts = (uint32_t *)map;
    memset(r->starts, 0, (size_t)(r->end - r->start) / A / 32 * sizeof(uint32_t) + sizeof(uint32_t));
#endif
    return true;
}

static bool overlaps(const pk_heap *h, const void *buf, size_t size)
{
    uintptr_t lo = (uintptr_t)buf;
    uintptr_t hi = lo + size;
    for (size_t i = 0; i < h->region_count; i++) {
        if (lo < (uintptr_t)h->regions[i].buffer_end && (uintptr_t)h->regions[i].buffer < hi) {
            return true;
        }
    }
    return false;
}

static void attach_region(pk_heap *h, const pk_heap_region *r)
{
    pk_heap_block *first = block_of(r->start);
    h->regions[h->region_count++] = *r;
    h->capacity += block_size(first);
    h->blocks++;
    MARK_START(h, first, true);
    insert_free(h, first);
}

pk_status pk_heap_init(pk_heap *h, void *buf, size_t size)
{
    pk_heap_region r;
    if (h == NULL || buf == NULL || !make_region(&r, buf, size)) {
        return PK_ERR_INVALID_ARG;
    }
    memset(h, 0, sizeof *h);
    h->name = HEAP_DEFAULT_NAME;
    h->view.ops = &heap_ops;
    h->view.self = h;
    attach_region(h, &r);
    h->steps = 0;
    return PK_OK;
}

pk_status pk_heap_add_region(pk_heap *h, void *buf, size_t size)
{
    pk_heap_region r;
    if (buf == NULL || overlaps(h, buf, size) || !make_region(&r, buf, size)) {
        return PK_ERR_INVALID_ARG;
    }
    pk__lock(&h->lock);
    bool room = h->region_count < PK_HEAP_MAX_REGIONS;
    if (room) {
        attach_region(h, &r);
    }
    pk__unlock(&h->lock);
    return room ? PK_OK : PK_ERR_INVALID_ARG;
}

/* The region whose blocks hold payload address p, or NULL. O(regions), at most
 * PK_HEAP_MAX_REGIONS; the first region is tried first. */
static PK__ALWAYS_INLINE const pk_heap_region *region_of(const pk_heap *h, const void *p)
{
    const unsigned char *at = p;
    if ((size_t)(at - h->regions[0].start) < (size_t)(h->regions[0].end - h->regions[0].start)) {
        return &h->regions[0];
    }
    for (size_t i = 1; i < h->region_count; i++) {
        const pk_heap_region *r = &h->regions[i];
        if (at >= r->start && at < r->end) {
            return r;
        }
    }
    return NULL;
}

/* Why p cannot be freed, or PK_OK when it is a live block's payload: it lies
 * in a region, is aligned, its header is possible (size of the valid form,
 * inside the region, the next block's PREV_FREE clear) and says used. */
static PK__ALWAYS_INLINE pk_status validate(const pk_heap *h, const void *p)
{
    const pk_heap_region *r = region_of(h, p);
    if (r == NULL) {
        return PK_ERR_FOREIGN_PTR;
    }
    if ((uintptr_t)p % A != 0) {
        return PK_ERR_MISALIGNED_PTR;
    }
    const pk_heap_block *b = block_of(p);
    size_t size = block_size(b);
#if PK_HEAP_STRICT_FREE
    if (!is_start(r, b)) {
        /* A block merged into a neighbour keeps its old header, marked free. */
        return is_free(b) && size >= MIN_PAYLOAD && (size + W) % A == 0 ? PK_ERR_DOUBLE_FREE
                                                                          : PK_ERR_MISALIGNED_PTR;
    }
#endif
    /* size - MIN wraps for a size below MIN: one comparison bounds both ends. */
    if ((size + W) % A != 0 || size - MIN_PAYLOAD > (size_t)(r->end - payload_of(b)) - W - MIN_PAYLOAD) {
        return PK_ERR_MISALIGNED_PTR;
    }
    if (is_free(b)) {
        return PK_ERR_DOUBLE_FREE;
    }
    if ((next_phys(b)->header & FLAG_PREV_FREE) != 0) {
        return PK_ERR_MISALIGNED_PTR;
    }
    return PK_OK;
}

/* Searches a free block of at least size bytes (a valid payload size, or 0 for
 * "too large") and takes it off its list. */
static PK__ALWAYS_INLINE pk_heap_block *take_block(pk_heap *h, size_t size)
{
    if (size == 0) {
        return NULL;
    }
    unsigned fl, sl;
    STEP(h);
    mapping_search(size, &fl, &sl);
    pk_heap_block *b = find_suitable(h, &fl, &sl);
    if (b != NULL) {
        pop_head(h, b, fl, sl);
    }
    return b;
}

/* The allocation itself, with the lock held if there is one. Calls nothing. */
static PK__ALWAYS_INLINE void *alloc_core(pk_heap *h, size_t size)
{
    size_t adjusted = adjust_size(size);
    pk_heap_block *b = take_block(h, adjusted);
    if (b == NULL) {
        h->failures++;
        return NULL;
    }
    return use_block(h, b, adjusted);
}

static inline void reset_steps(pk_heap *h)
{
#ifdef PK_HEAP_COUNT_STEPS
    h->steps = 0;
#else
    (void)h;
#endif
}

PK__SLOW_PATH static void *alloc_with_lock(pk_heap *h, size_t size)
{
    pk__lock(&h->lock);
    reset_steps(h);
    void *p = alloc_core(h, size);
    pk__unlock(&h->lock);
    return p;
}

void *pk_heap_alloc(pk_heap *h, size_t size)
{
    if (h->lock.lock != NULL) {
        return alloc_with_lock(h, size);
    }
    reset_steps(h);
    return alloc_core(h, size);
}

/* size bytes whose payload is aligned to align (a power of two above A). */
static void *alloc_aligned_core(pk_heap *h, size_t size, size_t align)
{
    size_t adjusted = adjust_size(size);
    size_t search = 0;
    if (adjusted == 0 || pk__add_overflows(adjusted, align + W + MIN_PAYLOAD, &search) ||
        search > MAX_PAYLOAD) {
        h->failures++;
        return NULL;
    }
    pk_heap_block *b = take_block(h, adjust_size(search));
    if (b == NULL) {
        h->failures++;
        return NULL;
    }
    /* Give the leading gap back as a free block: it must be able to hold one. */
    uintptr_t payload = (uintptr_t)payload_of(b);
    uintptr_t aligned = (payload + align - 1) & ~(uintptr_t)(align - 1);
    if (aligned != payload && aligned - payload < W + MIN_PAYLOAD) {
        aligned = (payload + W + MIN_PAYLOAD + align - 1) & ~(uintptr_t)(align - 1);
    }
    size_t gap = (size_t)(aligned - payload);
    if (gap != 0) {
        STEP(h);
        pk_heap_block *front = b;
        b = block_of((void *)aligned);
        b->header = (block_size(front) - gap) | FLAG_FREE | FLAG_PREV_FREE;
        b->prev_phys = front;
        front->header = (gap - W) | FLAG_FREE | (front->header & FLAG_PREV_FREE);
        next_phys(b)->prev_phys = b;
        h->blocks++;
        MARK_START(h, b, true);
        insert_free(h, front);
    }
    return use_block(h, b, adjusted);
}

PK__SLOW_PATH static void *reject_alloc(pk_heap *h)
{
    pk__lock(&h->lock);
    h->rejected++;
    pk__unlock(&h->lock);
    (void)pk_report_fault(PK_ERR_INVALID_ARG, heap_name(h), NULL);
    return NULL;
}

void *pk_heap_alloc_aligned(pk_heap *h, size_t size, size_t align)
{
    if (align != 0 && !pk__is_pow2(align)) {
        return reject_alloc(h);
    }
    if (align <= A) {
        return pk_heap_alloc(h, size);
    }
    pk__lock(&h->lock);
    reset_steps(h);
    void *p = alloc_aligned_core(h, size, align);
    pk__unlock(&h->lock);
    return p;
}

void *pk_heap_alloc_bounded(pk_heap *h, size_t size, size_t align, size_t boundary)
{
    bool bad_align = align != 0 && !pk__is_pow2(align);
    bool bad_boundary = boundary != 0 && (!pk__is_pow2(boundary) || size > boundary);
    if (bad_align || bad_boundary) {
        return reject_alloc(h);
    }
    /* Aligned to the next power of two of size (at most boundary), the block
     * cannot cross a multiple of boundary. */
    size_t span = 1;
    while (boundary != 0 && span < size) {
        span <<= 1; /* at most log2(boundary) steps: O(1) in the heap's state */
    }
    return pk_heap_alloc_aligned(h, size, span > align ? span : align);
}

/* Frees the used block b (validated), merging it with free neighbours. */
static PK__ALWAYS_INLINE void release_block(pk_heap *h, pk_heap_block *b)
{
    h->in_use -= block_size(b);
    h->live--;
    h->frees++;
    b->header |= FLAG_FREE; /* stays in the old header if b merges away: a stale free is seen */
    if ((b->header & FLAG_PREV_FREE) != 0) {
        STEP(h);
        pk_heap_block *prev = b->prev_phys;
        remove_free_block(h, prev);
        MARK_START(h, b, false);
        prev->header += W + block_size(b);
        h->blocks--;
        b = prev;
    }
    pk_heap_block *next = next_phys(b);
    if (is_free(next)) {
        STEP(h);
        remove_free_block(h, next);
        MARK_START(h, next, false);
        b->header += W + block_size(next);
        h->blocks--;
        next = next_phys(b);
    }
    next->prev_phys = b;
    next->header |= FLAG_PREV_FREE;
    insert_free(h, b);
}

/* The free itself, with the lock held if there is one. Calls nothing. */
static PK__ALWAYS_INLINE pk_status free_core(pk_heap *h, void *p)
{
    pk_status status = validate(h, p);
    if (status == PK_OK) {
        release_block(h, block_of(p));
    } else {
        h->rejected++;
    }
    return status;
}

PK__SLOW_PATH static pk_status free_slow(pk_heap *h, void *p, pk_status status)
{
    if (p == NULL) {
        return PK_OK;
    }
    if (status == PK_OK) { /* not tried yet: a lock is set */
        pk__lock(&h->lock);
        reset_steps(h);
        status = free_core(h, p);
        pk__unlock(&h->lock);
    }
    return status == PK_OK ? PK_OK : pk_report_fault(status, heap_name(h), p);
}

pk_status pk_heap_free(pk_heap *h, void *p)
{
    if (h->lock.lock != NULL || p == NULL) {
        return free_slow(h, p, PK_OK);
    }
    reset_steps(h);
    pk_status status = free_core(h, p);
    return status == PK_OK ? PK_OK : free_slow(h, p, status);
}

/* Resizes the live block b in place when it can: shrinking, or growing into
 * a free next block. */
static bool resize_in_place(pk_heap *h, pk_heap_block *b, size_t adjusted)
{
    size_t size = block_size(b);
    pk_heap_block *next = next_phys(b);
    bool fits_with_next = is_free(next) && size + W + block_size(next) >= adjusted;
    if (adjusted > size && !fits_with_next) {
        return false;
    }
    if (is_free(next)) {
        /* Growing into the free neighbour, or shrinking beside it: merge it,
         * then split what is not needed back off. */
        remove_free_block(h, next);
        MARK_START(h, next, false);
        b->header += W + block_size(next);
        h->blocks--;
        next_phys(b)->header &= ~FLAG_PREV_FREE;
    }
    h->in_use -= size;
    split_tail(h, b, adjusted);
    h->in_use += block_size(b);
    if (h->in_use > h->peak_in_use) {
        h->peak_in_use = h->in_use;
    }
    return true;
}

void *pk_heap_realloc(pk_heap *h, void *p, size_t size)
{
    if (p == NULL) {
        return pk_heap_alloc(h, size);
    }
    if (size == 0) {
        (void)pk_heap_free(h, p);
        return NULL;
    }
    pk__lock(&h->lock);
    pk_status status = validate(h, p);
    size_t adjusted = adjust_size(size);
    bool done = false;
    size_t old_size = 0;
    if (status == PK_OK) {
        old_size = block_size(block_of(p));
        done = adjusted != 0 && resize_in_place(h, block_of(p), adjusted);
        if (adjusted == 0) {
            h->failures++;
        }
    } else {
        h->rejected++;
    }
    pk__unlock(&h->lock);
    if (status != PK_OK) {
        return (void)pk_report_fault(status, heap_name(h), p), NULL;
    }
    if (done || adjusted == 0) {
        return done ? p : NULL;
    }
    void *fresh = pk_heap_alloc(h, size);
    if (fresh != NULL) {
        memcpy(fresh, p, old_size < size ? old_size : size);
        (void)pk_heap_free(h, p);
    }
    return fresh;
}

size_t pk_heap_usable_size(const pk_heap *h, const void *p)
{
    pk__lock(&h->lock);
    size_t size = validate(h, p) == PK_OK ? block_size(block_of(p)) : 0;
    pk__unlock(&h->lock);
    return size;
}

/* Payload bytes of the free blocks: what the regions hold less the live
 * payloads and the headers of the blocks past each region's first. */
static size_t free_payload(const pk_heap *h)
{
    return h->capacity - h->in_use - W * (h->blocks - h->region_count);
}

/* The largest request that succeeds now: the lower bound of the highest
 * non-empty class, as a valid payload size (see mapping_search). */
static size_t largest_request(const pk_heap *h)
{
    if (h->fl_bitmap == 0) {
        return 0;
    }
    unsigned fl = pk__log2_floor(h->fl_bitmap);
    unsigned sl = pk__log2_floor(h->sl_bitmap[fl]);
    size_t low_x = (size_t)(PK_HEAP_SL_COUNT + sl) << (fl + PK_HEAP_FL_SHIFT - PK_HEAP_SL_LOG2);
    return low_x - X_OFFSET; /* of the valid form: low_x is a multiple of A */
}

void pk_heap_stats(const pk_heap *h, pk_stats *out)
{
    pk__lock(&h->lock);
    pk_stats s = {
        .capacity = h->capacity,
        .in_use = h->in_use,
        .requested = h->in_use,
        .peak_in_use = h->peak_in_use,
        .free_bytes = free_payload(h),
        .largest_free = largest_request(h),
        .block_size = 0,
        .live = h->live,
        .peak_live = h->peak_live,
        .allocs = h->allocs,
        .frees = h->frees,
        .failures = h->failures,
        .rejected = h->rejected,
    };
    pk__unlock(&h->lock);
    *out = s;
}

void pk_heap_reset_peaks(pk_heap *h)
{
    pk__lock(&h->lock);
    h->peak_in_use = h->in_use;
    h->peak_live = h->live;
    pk__unlock(&h->lock);
}

/* Whether b may be dereferenced as a block header of region r: its payload
 * aligned and inside r. */
static bool plausible_block(const pk_heap *h, const pk_heap_block *b)
{
    const unsigned char *payload = payload_of(b);
    return region_of(h, payload) != NULL && (uintptr_t)payload % A == 0;
}

static bool walk_regions(const pk_heap *h, size_t *used_bytes, size_t *free_bytes, size_t *used,
                         size_t *free_count)
{
    for (size_t i = 0; i < h->region_count; i++) {
        const pk_heap_region *r = &h->regions[i];
        const pk_heap_block *b = block_of(r->start);
        bool prev_free = false;
        const pk_heap_block *prev = NULL;
        for (;;) {
            size_t size = block_size(b);
            if (((b->header & FLAG_PREV_FREE) != 0) != prev_free ||
                (prev_free && b->prev_phys != prev)) {
                return false;
            }
            if ((const unsigned char *)&b->header + W == r->end) {
                break; /* the sentinel */
            }
            if (size < MIN_PAYLOAD || (size + W) % A != 0 ||
                size > (size_t)(r->end - payload_of(b)) - W) {
                return false;
            }
#if PK_HEAP_STRICT_FREE
            if (!is_start(r, b)) {
                return false;
            }
#endif
            if (is_free(b)) {
                if (prev_free) {
                    return false; /* two free neighbours: a merge was missed */
                }
                *free_bytes += size;
                (*free_count)++;
            } else {
                *used_bytes += size;
                (*used)++;
            }
            prev_free = is_free(b);
            prev = b;
            b = next_phys(b);
        }
        if (block_size(b) != 0 || is_free(b)) {
            return false;
        }
    }
    return true;
}

static bool walk_lists(const pk_heap *h, size_t free_count, size_t *listed)
{
    for (unsigned fl = 0; fl < PK_HEAP_FL_COUNT; fl++) {
        bool fl_set = (h->fl_bitmap >> fl & 1u) != 0;
        if (fl_set != (h->sl_bitmap[fl] != 0)) {
            return false;
        }
        for (unsigned sl = 0; sl < PK_HEAP_SL_COUNT; sl++) {
            const pk_heap_block *b = h->lists[fl][sl];
            if ((b != NULL) != ((h->sl_bitmap[fl] >> sl & 1u) != 0)) {
                return false;
            }
            const pk_heap_block *prev = NULL;
            for (; b != NULL; prev = b, b = b->next_free) {
                unsigned bfl, bsl;
                if (*listed >= free_count || !plausible_block(h, b) || !is_free(b) ||
                    b->prev_free != prev) {
                    return false;
                }
                mapping_insert(block_size(b), &bfl, &bsl);
                if (bfl != fl || bsl != sl) {
                    return false;
                }
                (*listed)++;
            }
        }
    }
    return true;
}

static bool heap_consistent(const pk_heap *h)
{
    size_t used_bytes = 0, free_bytes = 0, used = 0, free_count = 0, listed = 0;
    if (h->region_count == 0 || h->region_count > PK_HEAP_MAX_REGIONS ||
        ((uint64_t)h->fl_bitmap >> PK_HEAP_FL_COUNT) != 0) {
        return false;
    }
    return walk_regions(h, &used_bytes, &free_bytes, &used, &free_count) &&
           walk_lists(h, free_count, &listed) && listed == free_count &&
           free_count + used == h->blocks && free_bytes == free_payload(h) &&
           used_bytes == h->in_use && used == h->live && h->frees <= h->allocs &&
           h->allocs - h->frees == h->live && h->peak_in_use >= h->in_use &&
           h->peak_live >= h->live;
}

pk_status pk_heap_check(const pk_heap *h)
{
    pk__lock(&h->lock);
    bool ok = heap_consistent(h);
    pk__unlock(&h->lock);
    return ok ? PK_OK : pk_report_fault(PK_ERR_CORRUPT, heap_name(h), NULL);
}

void pk_heap_set_name(pk_heap *h, const char *name)
{
    h->name = name != NULL ? name : HEAP_DEFAULT_NAME;
}

pk_status pk_heap_set_lock(pk_heap *h, const pk_lock *lock)
{
    if (lock != NULL && (lock->lock == NULL) != (lock->unlock == NULL)) {
        return PK_ERR_INVALID_ARG;
    }
    static const pk_lock no_lock = {NULL, NULL, NULL};
    h->lock = lock != NULL ? *lock : no_lock;
    return PK_OK;
}

pk_allocator *pk_heap_allocator(pk_heap *h)
{
    return &h->view;
}

/* Generic view. */

static void *view_alloc_aligned(void *self, size_t size, size_t align)
{
    return pk_heap_alloc_aligned(self, size, align);
}

static pk_status view_free(void *self, void *ptr)
{
    return pk_heap_free(self, ptr);
}

static void *view_realloc(void *self, void *ptr, size_t size)
{
    return pk_heap_realloc(self, ptr, size);
}

static void view_stats(const void *self, pk_stats *out)
{
    pk_heap_stats(self, out);
}

static pk_status view_check(const void *self)
{
    return pk_heap_check(self);
}

static const char *view_name(const void *self)
{
    return heap_name(self);
}

static size_t view_usable_size(const void *self, const void *ptr)
{
    return pk_heap_usable_size(self, ptr);
}

static const pk_allocator_ops heap_ops = {
    view_alloc_aligned, view_free, view_realloc, view_stats, view_check, view_name, view_usable_size,
};
