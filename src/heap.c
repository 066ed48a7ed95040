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
#include "debug/notes.h"
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

#if defined(__GNUC__) || defined(__clang__)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define UNLIKELY(x) (x)
#endif

/* Classes. A block of payload `size` has x = size + X_OFFSET; its level is
 * t = log2(x) (FL_SHIFT <= t < MAX_LOG2) and its second-level class sl the
 * next SL_LOG2 bits of x. A class is named by one number, c = t * SL_COUNT +
 * sl: its list is lists[c - LIST_BASE]; its bitmap word is sl_bitmap[t]
 * (indexed by the level itself: the first FL_SHIFT words stay 0) and
 * fl_bitmap's bit is t. */
#define SL_LOG2 PK_HEAP_SL_LOG2
#define SL_COUNT ((size_t)PK_HEAP_SL_COUNT)
#define LIST_BASE ((size_t)PK_HEAP_FL_SHIFT << SL_LOG2)

/* floor(log2(x)), x != 0: word bits - 1 - clz(x), written so that compilers
 * emit a single bit-scan. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(PK_HEAP_NO_ASM)
/* x86-64: the bit scans written out, so that their results serve as indexes
 * as they are (the builtins return an int, which compilers then extend). */
static PK__ALWAYS_INLINE size_t log2_of(size_t x)
{
    size_t t;
    __asm__("bsrq %1, %0" : "=r"(t) : "rm"(x) : "cc");
    return t;
}

static PK__ALWAYS_INLINE size_t ctz32(uint32_t x)
{
    size_t n;
    __asm__("bsfl %1, %k0" : "=r"(n) : "rm"(x) : "cc");
    return n;
}

/* *word |= 1 << n (n below the word's bits). */
static PK__ALWAYS_INLINE void set_bit32(uint32_t *word, size_t n)
{
    uint32_t w = *word;
    __asm__("btsl %k1, %0" : "+r"(w) : "r"(n) : "cc");
    *word = w;
}

static PK__ALWAYS_INLINE void set_bit(size_t *word, size_t n)
{
    size_t w = *word;
    __asm__("btsq %1, %0" : "+r"(w) : "r"(n) : "cc");
    *word = w;
}
#else
static PK__ALWAYS_INLINE void set_bit32(uint32_t *word, size_t n)
{
    *word |= (uint32_t)1 << (n & 31u);
}

static PK__ALWAYS_INLINE void set_bit(size_t *word, size_t n)
{
    *word |= (size_t)1 << n;
}

static PK__ALWAYS_INLINE size_t log2_of(size_t x)
{
    return (PK__WORD_BITS - 1u) ^ (size_t)pk__clz(x);
}

static PK__ALWAYS_INLINE size_t ctz32(uint32_t x)
{
    return pk__ctz(x);
}
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

/* The class of a block of `size` payload bytes (see above). */
static PK__ALWAYS_INLINE size_t class_of(size_t size)
{
    size_t x = size + X_OFFSET;
    size_t t = log2_of(x);
    return (t << SL_LOG2) + (x >> (t - SL_LOG2)) - SL_COUNT;
}

/* List c became empty: clears its bits. */
static PK__ALWAYS_INLINE void clear_bits(pk_heap *h, size_t c)
{
    size_t t = c >> SL_LOG2;
    h->sl_bitmap[t] &= ~((uint32_t)1 << (c & (SL_COUNT - 1)));
    if (h->sl_bitmap[t] == 0) {
        h->fl_bitmap &= ~((size_t)1 << t);
    }
}

static PK__ALWAYS_INLINE void remove_free(pk_heap *h, pk_heap_block *b, size_t c)
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
        h->lists[c - LIST_BASE] = next;
        if (next == NULL) {
            clear_bits(h, c);
        }
    }
}

static PK__ALWAYS_INLINE void remove_free_block(pk_heap *h, pk_heap_block *b)
{
    remove_free(h, b, class_of(block_size(b)));
}

/* Puts b, a free block of `size` payload bytes, at the head of its list. */
static PK__ALWAYS_INLINE void insert_free(pk_heap *h, pk_heap_block *b, size_t size)
{
    STEP(h);
    size_t x = size + X_OFFSET;
    size_t t = log2_of(x);
    size_t q = x >> (t - SL_LOG2); /* SL_COUNT + sl */
    pk_heap_block **list = &h->lists[(t << SL_LOG2) + q - SL_COUNT - LIST_BASE];
    pk_heap_block *head = *list;
    b->next_free = head;
    b->prev_free = NULL;
    if (head != NULL) {
        head->prev_free = b;
    }
    *list = b;
    set_bit32(&h->sl_bitmap[t], SL_COUNT == 32 ? q : q & (SL_COUNT - 1)); /* x86's bts takes n mod 32 */
    set_bit(&h->fl_bitmap, t);
}

/* Takes a free block of at least `size` payload bytes (a valid size) off its
 * list, or returns NULL: the head of the first non-empty list whose class
 * lies wholly at or above size ("good fit"), found with two find-first-set
 * operations, no loop. Classes of level t whose lower bound is below x are
 * those up to x's own, sl; the search starts just above it. */
static PK__ALWAYS_INLINE pk_heap_block *take_block(pk_heap *h, size_t size)
{
    STEP(h);
    size_t y = size + X_OFFSET - 1; /* x - 1: x itself is a class's lower bound */
    size_t t = log2_of(y);
    size_t q = y >> (t - SL_LOG2);
    /* ~1 << sl: the classes above sl (none when sl is the last: the shift
     * leaves no bit of the level's SL_COUNT). */
    uint32_t sl_map = h->sl_bitmap[t] & ((~(uint32_t)1) << (q & (SL_COUNT - 1)));
    STEP(h);
    if (UNLIKELY(sl_map == 0)) {
        size_t fl_map = h->fl_bitmap & (~(size_t)0 << (t + 1));
        if (fl_map == 0) {
            return NULL;
        }
        t = pk__ctz(fl_map);
        sl_map = h->sl_bitmap[t];
    }
    size_t c = (t << SL_LOG2) + ctz32(sl_map);
    pk_heap_block **list = &h->lists[c - LIST_BASE];
    pk_heap_block *b = *list;
    STEP(h);
    pk_heap_block *next = b->next_free;
    *list = next;
    if (next != NULL) {
        next->prev_free = NULL;
    } else {
        clear_bits(h, c);
    }
    return b;
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

/* Statistics: frees is allocs - live. */
static PK__ALWAYS_INLINE void count_alloc(pk_heap *h, size_t size)
{
    size_t in_use = h->in_use + size;
    size_t live = h->live + 1;
    h->in_use = in_use;
    h->live = live;
    h->allocs++;
    if (UNLIKELY(in_use > h->peak_in_use)) {
        h->peak_in_use = in_use;
    }
    if (UNLIKELY(live > h->peak_live)) {
        h->peak_live = live;
    }
}

static PK__ALWAYS_INLINE void count_free(pk_heap *h, size_t size)
{
    h->in_use -= size;
    h->live--;
}

#if !PK_DEBUG
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
    size_t rest_size = total - size - W;
    rest->header = rest_size | FLAG_FREE;
    b->header = size | (b->header & FLAGS);
    pk_heap_block *after = next_phys(rest);
    after->prev_phys = rest;
    after->header |= FLAG_PREV_FREE;
    h->blocks++;
    MARK_START(h, rest, true);
    insert_free(h, rest, rest_size);
}
#endif

/* Hands out b, a free block off its list (its next neighbour says PREV_FREE),
 * trimmed to size: the rest, if it can make a block, stays free. */
static PK__ALWAYS_INLINE void *use_block(pk_heap *h, pk_heap_block *b, size_t size)
{
    size_t header = b->header;
    size_t total = header & ~FLAGS;
    if (total - size >= W + MIN_PAYLOAD) {
        STEP(h);
        pk_heap_block *rest = (pk_heap_block *)(void *)(payload_of(b) + size - W);
        size_t rest_size = total - size - W;
        rest->header = rest_size | FLAG_FREE;
        b->header = size | (header & FLAG_PREV_FREE);
        ((pk_heap_block *)(void *)(payload_of(rest) + rest_size - W))->prev_phys = rest;
        h->blocks++;
        MARK_START(h, rest, true);
        insert_free(h, rest, rest_size);
    } else {
        size = total;
        b->header = header & ~FLAG_FREE;
        ((pk_heap_block *)(void *)(payload_of(b) + total - W))->header &= ~FLAG_PREV_FREE;
    }
    count_alloc(h, size);
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
    sentinel->header = FLAG_PREV_FREE; /* size 0 */
    r->start = payload_of(first);
    r->end = (unsigned char *)&sentinel->header + W;
    r->buffer = buf;
    r->buffer_end = r->end; /* the bytes the region uses, not the caller's claim */
#if PK_HEAP_STRICT_FREE
    uintptr_t map = ((uintptr_t)r->end + sizeof(uint32_t) - 1) & ~(uintptr_t)(sizeof(uint32_t) - 1);
    size_t map_bytes = (size_t)(r->end - r->start) / A / 32 * sizeof(uint32_t) + sizeof(uint32_t);
    r->starts = (uint32_t *)map;
    memset(r->starts, 0, map_bytes);
    r->buffer_end = (unsigned char *)map + map_bytes;
#endif
    return true;
}

static bool overlaps(const pk_heap *h, const void *buf, size_t size)
{
    uintptr_t lo = (uintptr_t)buf;
    uintptr_t hi = size > UINTPTR_MAX - lo ? UINTPTR_MAX : lo + size;
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
    insert_free(h, first, block_size(first));
}

/* The fast paths' fields: free's fast path takes pointers of the first region
 * only, and neither takes any call while a lock is set. */
static void set_fast_paths(pk_heap *h)
{
    const pk_heap_region *r = &h->regions[0];
    bool locked = h->lock.lock != NULL;
    h->first_start = r->start;
    h->first_limit = (size_t)(r->end - r->start) - W - MIN_PAYLOAD;
    h->first_units = locked ? 0 : h->first_limit / A + 1;
    h->alloc_limit = locked ? 0 : MAX_PAYLOAD + 1;
}

size_t pk_heap_buffer_size(size_t size, size_t count)
{
#if PK_DEBUG
    if (pk__add_overflows(size, PK_DEBUG_OVERHEAD_(A), &size)) {
        return 0; /* debug builds: each request carries a tag and guards */
    }
#endif
    size_t payload = adjust_size(size);
    if (count == 0 || payload == 0) {
        return 0;
    }
    /* count blocks cut from the front of one free block, the last of which
     * must still be found by the rounded-up search: its class may start up
     * to one second-level step above the request. */
    size_t x = payload + X_OFFSET;
    size_t step = (size_t)1 << (log2_of(x) - SL_LOG2);
    size_t blocks, first;
    if (pk__mul_overflows(count, payload + W, &blocks) || pk__add_overflows(blocks, step, &first) ||
        first - W > MAX_PAYLOAD) {
        return 0;
    }
    /* Alignment of the first payload, the first header, the sentinel. */
    size_t total;
    if (pk__add_overflows(first, 2 * W + 2 * A, &total)) {
        return 0;
    }
#if PK_HEAP_STRICT_FREE
    /* The bitmap is sized from the whole buffer, bitmap included: bound it
     * from above (it is under 1/100 of the buffer, and rounding adds a few
     * words). */
    size_t starts = ((total + total / 64) / A / 32 + 4) * sizeof(uint32_t);
    if (pk__add_overflows(total, starts, &total)) {
        return 0;
    }
#endif
    return total;
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
    set_fast_paths(h);
    return PK_OK;
}

pk_status pk_heap_add_region(pk_heap *h, void *buf, size_t size)
{
    if (h == NULL || buf == NULL) {
        return PK_ERR_INVALID_ARG;
    }
    /* Under the lock as a whole, so that two regions added at once cannot
     * both pass the overlap test; nothing is written when a test fails. */
    pk_heap_region r;
    pk__lock(&h->lock);
    bool ok = h->region_count < PK_HEAP_MAX_REGIONS && !overlaps(h, buf, size) &&
              make_region(&r, buf, size);
    if (ok) {
        attach_region(h, &r);
    }
    pk__unlock(&h->lock);
    return ok ? PK_OK : PK_ERR_INVALID_ARG;
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
static pk_status validate(const pk_heap *h, const void *p)
{
    const pk_heap_region *r = region_of(h, p);
    if (r == NULL) {
        return PK_ERR_FOREIGN_PTR;
    }
    if ((uintptr_t)p % A != 0) {
        return PK_ERR_MISALIGNED_PTR;
    }
    /* The room from p to the region's end, less the smallest block's. */
    size_t room = (size_t)(r->end - (const unsigned char *)p);
    if (room < W + MIN_PAYLOAD) {
        return PK_ERR_MISALIGNED_PTR;
    }
    room -= W + MIN_PAYLOAD;
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
    if ((size + W) % A != 0 || size - MIN_PAYLOAD > room) {
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

/* The allocation itself, with the lock held if there is one. Calls nothing. */
static void *alloc_core(pk_heap *h, size_t size)
{
    size_t adjusted = adjust_size(size);
    if (adjusted == 0) {
        h->failures++;
        return NULL;
    }
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

#if !PK_DEBUG
/* A lock is set, or the request is too large to serve. */
PK__SLOW_PATH static void *alloc_slow(pk_heap *h, size_t size)
{
    pk__lock(&h->lock);
    reset_steps(h);
    void *p = alloc_core(h, size);
    pk__unlock(&h->lock);
    return p;
}

void *pk_heap_alloc(pk_heap *h, size_t size)
{
    if (UNLIKELY(size >= h->alloc_limit)) {
        return alloc_slow(h, size);
    }
    reset_steps(h);
    size_t adjusted = size < MIN_PAYLOAD ? MIN_PAYLOAD : ((size + W + A - 1) & ~(A - 1)) - W;
    pk_heap_block *b = take_block(h, adjusted);
    if (UNLIKELY(b == NULL)) {
        h->failures++;
        return NULL;
    }
    /* A free block's neighbours are used: its header is its size | FREE. */
    size_t header = b->header;
    if (header - adjusted > FLAG_FREE + W + MIN_PAYLOAD - 1) {
        STEP(h);
        pk_heap_block *rest = (pk_heap_block *)(void *)(payload_of(b) + adjusted - W);
        size_t rest_size = header - FLAG_FREE - adjusted - W;
        rest->header = rest_size | FLAG_FREE;
        b->header = adjusted;
        ((pk_heap_block *)(void *)(payload_of(rest) + rest_size - W))->prev_phys = rest;
        h->blocks++;
        MARK_START(h, rest, true);
        insert_free(h, rest, rest_size);
    } else {
        adjusted = header - FLAG_FREE;
        b->header = adjusted;
        ((pk_heap_block *)(void *)(payload_of(b) + adjusted - W))->header &= ~FLAG_PREV_FREE;
    }
    count_alloc(h, adjusted);
    return payload_of(b);
}
#endif

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
        insert_free(h, front, gap - W);
    }
    return use_block(h, b, adjusted);
}

#if !PK_DEBUG
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
#endif

/* Frees the used block b (validated), merging it with free neighbours. */
static void release_block(pk_heap *h, pk_heap_block *b)
{
    count_free(h, block_size(b));
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
    insert_free(h, b, block_size(b));
}

#if !PK_DEBUG
/* The free itself, with the lock held if there is one. Calls nothing. */
static pk_status free_core(pk_heap *h, void *p)
{
    pk_status status = validate(h, p);
    if (status == PK_OK) {
        release_block(h, block_of(p));
    } else {
        h->rejected++;
    }
    return status;
}

/* Everything but the first region's plain frees: NULL, a lock, merges, other
 * regions, misuse. */
PK__SLOW_PATH static pk_status free_slow(pk_heap *h, void *p)
{
    if (p == NULL) {
        return PK_OK;
    }
    pk__lock(&h->lock);
    reset_steps(h);
    pk_status status = free_core(h, p);
    pk__unlock(&h->lock);
    return status == PK_OK ? PK_OK : pk_report_fault(status, heap_name(h), p);
}

/* A free of the fast path whose block has a free neighbour (or whose next
 * header is impossible): b is a live block of `size` bytes, next its next
 * neighbour, whose header is next_header. */
PK__SLOW_PATH static pk_status free_merging(pk_heap *h, pk_heap_block *b, size_t size,
                                            pk_heap_block *next, size_t next_header)
{
    if ((next_header & FLAG_PREV_FREE) != 0) {
        return free_slow(h, payload_of(b));
    }
    reset_steps(h);
    count_free(h, size);
    size_t header = b->header;
    b->header = header | FLAG_FREE; /* stays in the old header if b merges away: a stale free is seen */
    /* A free block's neighbours are used: its header is its size | FREE. */
    if ((header & FLAG_PREV_FREE) != 0) {
        STEP(h);
        pk_heap_block *prev = b->prev_phys;
        size_t prev_size = prev->header - FLAG_FREE;
        remove_free(h, prev, class_of(prev_size));
        MARK_START(h, b, false);
        size += prev_size + W;
        h->blocks--;
        b = prev;
    }
    if ((next_header & FLAG_FREE) != 0) {
        STEP(h);
        size_t next_size = next_header - FLAG_FREE;
        remove_free(h, next, class_of(next_size));
        MARK_START(h, next, false);
        size += next_size + W;
        h->blocks--;
        next = (pk_heap_block *)(void *)(payload_of(b) + size - W);
        next_header = next->header;
    }
    b->header = size | FLAG_FREE;
    next->prev_phys = b;
    next->header = next_header | FLAG_PREV_FREE;
    insert_free(h, b, size);
    return PK_OK;
}

/* The checks of free's fast path past the first (p is an aligned pointer
 * into the first region, at offset from its start), for a block of size
 * `size` whose header is `header`: the valid form, a size below MIN_PAYLOAD
 * (size - MIN wraps) or reaching past the region. */
static PK__ALWAYS_INLINE bool fast_size_ok(const pk_heap *h, size_t size, size_t offset)
{
    return ((size - W) & (A - 1)) == 0 && size - MIN_PAYLOAD <= h->first_limit - offset;
}

/* free's fast path for a block whose header says PREV_FREE (or is not a live
 * block's). */
PK__SLOW_PATH static pk_status free_after_free(pk_heap *h, void *p, size_t offset)
{
    pk_heap_block *b = block_of(p);
    size_t size = b->header & ~FLAG_PREV_FREE;
    if (!fast_size_ok(h, size, offset)) {
        return free_slow(h, p);
    }
#if PK_HEAP_STRICT_FREE
    if (!is_start(&h->regions[0], b)) {
        return free_slow(h, p);
    }
#endif
    pk_heap_block *next = (pk_heap_block *)(void *)((unsigned char *)p + size - W);
    return free_merging(h, b, size, next, next->header);
}

/* The fast path: a live block of the first region, used neighbours, no lock.
 * first_units is 0 while a lock is set, so the first test sends every call to
 * free_slow then; rotating the offset by log2(A) makes a misaligned pointer's
 * offset huge, so the same test catches it. */
pk_status pk_heap_free(pk_heap *h, void *p)
{
    size_t offset = (size_t)((uintptr_t)p - (uintptr_t)h->first_start);
    if (UNLIKELY(pk__rotr(offset, PK_HEAP_ALIGN_LOG2) >= h->first_units)) {
        return free_slow(h, p);
    }
    pk_heap_block *b = block_of(p);
    size_t size = b->header; /* no flag set: used, and the previous block too */
    if (UNLIKELY(!fast_size_ok(h, size, offset))) {
        return free_after_free(h, p, offset);
    }
#if PK_HEAP_STRICT_FREE
    if (UNLIKELY(!is_start(&h->regions[0], b))) {
        return free_slow(h, p);
    }
#endif
    pk_heap_block *next = (pk_heap_block *)(void *)((unsigned char *)p + size - W);
    size_t next_header = next->header;
    if (UNLIKELY((next_header & FLAGS) != 0)) {
        return free_merging(h, b, size, next, next_header);
    }
    reset_steps(h);
    count_free(h, size);
    b->header |= FLAG_FREE;
    next->prev_phys = b;
    next->header |= FLAG_PREV_FREE;
    insert_free(h, b, size);
    return PK_OK;
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
#else /* PK_DEBUG */

/* Debug builds (README "Debug builds"): every block the clients get is a
 * debug block (src/debug/hooks.h) inside a heap block of size +
 * PK_DEBUG_OVERHEAD_(align) bytes, its payload aligned to align; its granted
 * bytes are the heap block's whole payload. Freed blocks go to the
 * quarantine, live to the heap, and are really freed (merging) when they
 * leave it, so their poison is verified then: a merge rewrites freed bytes,
 * so it cannot be verified when they are handed out again. Every public call
 * takes the lock once, notes what it finds, and reports after unlocking. */

/* The bytes from the start of a region that a tag and front guard need:
 * below that, a pointer cannot be a block's. */
#define DEBUG_TAG_ROOM (sizeof(pk_debug_tag) + PK_GUARD_SIZE)

/* Really frees the quarantined blocks due to leave (all of them with drain),
 * noting those whose poison was written. A block whose heap header was
 * damaged meanwhile is noted as corrupt and left alone. */
static void release_held(pk_heap *h, bool drain, pk__debug_notes *notes)
{
    pk_status damaged;
    pk_debug_tag tag;
    unsigned char *raw;
    while ((raw = pk__debug_evict(&h->debug, drain, &damaged, &tag)) != NULL) {
        if (damaged != PK_OK) {
            pk__debug_note(notes, damaged, pk__debug_user_of(raw, &tag), &tag);
        }
        if (validate(h, raw) == PK_OK) {
            release_block(h, block_of(raw));
        } else {
            pk__debug_note(notes, PK_ERR_CORRUPT, pk__debug_user_of(raw, &tag), &tag);
        }
    }
}

/* The heap block for size bytes of a client aligned to align (A or a power
 * of two above it), NULL when none is free. */
static unsigned char *inner_alloc(pk_heap *h, size_t raw_size, size_t align)
{
    return align > A ? alloc_aligned_core(h, raw_size, align) : alloc_core(h, raw_size);
}

/* An allocation of size bytes aligned to align (A or a power of two above
 * it), with the lock held. The quarantine never causes a NULL: when the heap
 * has no block, it is drained and the request tried again. */
static void *debug_alloc_core(pk_heap *h, size_t size, size_t align, pk__site site, pk__debug_notes *notes)
{
    size_t raw_size;
    if (!pk__debug_raw_size(size, align, &raw_size)) {
        h->failures++;
        return NULL;
    }
    unsigned char *raw = inner_alloc(h, raw_size, align);
    if (raw == NULL && h->debug.held > 0) {
        h->failures--; /* counted by the first try: only the retry's outcome counts */
        release_held(h, true, notes);
        raw = inner_alloc(h, raw_size, align);
    }
    if (raw == NULL) {
        return NULL;
    }
    size_t granted = block_size(block_of(raw));
    h->debug_in_use += granted;
    if (h->debug_in_use > h->debug_peak_in_use) {
        h->debug_peak_in_use = h->debug_in_use;
    }
    return pk__debug_setup(&h->debug, raw, granted, size, align, site);
}

/* What p is: PK_OK (a live block: *tag and *raw filled), or the misuse:
 * PK_ERR_FOREIGN_PTR (outside every region), PK_ERR_MISALIGNED_PTR (no
 * valid tag before it: an interior or stale pointer), PK_ERR_DOUBLE_FREE (a
 * quarantined block, or one freed since, whose tag is intact), PK_ERR_CORRUPT
 * (a live tag whose heap block is not live: damaged metadata). *tagged says
 * whether *tag is the block's. */
static pk_status debug_lookup(const pk_heap *h, const void *p, pk_debug_tag *tag, unsigned char **raw,
                              bool *tagged)
{
    const pk_heap_region *r = region_of(h, p);
    *tagged = false;
    if (r == NULL) {
        return PK_ERR_FOREIGN_PTR;
    }
    const unsigned char *user = p;
    if ((size_t)(user - r->start) < DEBUG_TAG_ROOM) {
        return PK_ERR_MISALIGNED_PTR;
    }
    pk_status status = pk__debug_inspect(user, tag, raw);
    *tagged = status != PK_ERR_MISALIGNED_PTR;
    if (status == PK_OK && validate(h, *raw) != PK_OK) {
        status = PK_ERR_CORRUPT;
    }
    return status;
}

/* A free with the lock held: a live block is retired to the quarantine (its
 * guards verified and restored: PK_ERR_GUARD_CORRUPT is returned, and the
 * block freed all the same), and the blocks due to leave it are freed. */
static pk_status debug_free_core(pk_heap *h, void *p, pk__debug_notes *notes)
{
    pk_debug_tag tag;
    unsigned char *raw;
    bool tagged;
    pk_status status = debug_lookup(h, p, &tag, &raw, &tagged);
    if (status != PK_OK) {
        h->rejected++;
        pk__debug_note(notes, status, p, tagged ? &tag : NULL);
        return status;
    }
    size_t granted = block_size(block_of(raw));
    status = pk__debug_retire(&h->debug, p, granted);
    h->debug_in_use -= granted;
    if (status != PK_OK) {
        pk__debug_note(notes, status, p, &tag);
    }
    release_held(h, false, notes);
    return status;
}

static void *debug_alloc(pk_heap *h, size_t size, size_t align, pk__site site)
{
    pk__debug_notes notes;
    notes.count = 0;
    pk__lock(&h->lock);
    reset_steps(h);
    void *p = debug_alloc_core(h, size, align, site, &notes);
    const char *name = heap_name(h);
    pk__unlock(&h->lock);
    pk__debug_report_notes(&notes, name, site);
    return p;
}

static pk_status debug_free(pk_heap *h, void *p, pk__site site)
{
    if (p == NULL) {
        return PK_OK;
    }
    pk__debug_notes notes;
    notes.count = 0;
    pk__lock(&h->lock);
    reset_steps(h);
    pk_status status = debug_free_core(h, p, &notes);
    const char *name = heap_name(h);
    pk__unlock(&h->lock);
    pk__debug_report_notes(&notes, name, site);
    return status;
}

static void *debug_reject_alloc(pk_heap *h, pk__site site)
{
    pk__lock(&h->lock);
    h->rejected++;
    const char *name = heap_name(h);
    pk__unlock(&h->lock);
    (void)pk__debug_report(PK_ERR_INVALID_ARG, name, NULL, NULL, site);
    return NULL;
}

static void *debug_alloc_aligned(pk_heap *h, size_t size, size_t align, pk__site site)
{
    if (align != 0 && !pk__is_pow2(align)) {
        return debug_reject_alloc(h, site);
    }
    return debug_alloc(h, size, align > A ? align : A, site);
}

void *pk_heap_alloc(pk_heap *h, size_t size)
{
    return debug_alloc(h, size, A, pk__debug_take_site());
}

void *pk_heap_alloc_aligned(pk_heap *h, size_t size, size_t align)
{
    return debug_alloc_aligned(h, size, align, pk__debug_take_site());
}

void *pk_heap_alloc_bounded(pk_heap *h, size_t size, size_t align, size_t boundary)
{
    pk__site site = pk__debug_take_site();
    bool bad_align = align != 0 && !pk__is_pow2(align);
    bool bad_boundary = boundary != 0 && (!pk__is_pow2(boundary) || size > boundary);
    if (bad_align || bad_boundary) {
        return debug_reject_alloc(h, site);
    }
    /* The client's bytes aligned to the next power of two of size (at most
     * boundary) cannot cross a multiple of boundary; the guards may. */
    size_t span = 1;
    while (boundary != 0 && span < size) {
        span <<= 1;
    }
    return debug_alloc_aligned(h, size, span > align ? span : align, site);
}

pk_status pk_heap_free(pk_heap *h, void *p)
{
    return debug_free(h, p, pk__debug_take_site());
}

/* Debug builds: alloc, copy and free (the block moves, so that its guards
 * follow the new size), or p itself when the size is the same. */
void *pk_heap_realloc(pk_heap *h, void *p, size_t size)
{
    pk__site site = pk__debug_take_site();
    if (p == NULL) {
        return debug_alloc(h, size, A, site);
    }
    if (size == 0) {
        (void)debug_free(h, p, site);
        return NULL;
    }
    pk_debug_tag tag;
    unsigned char *raw;
    bool tagged;
    pk__lock(&h->lock);
    pk_status status = debug_lookup(h, p, &tag, &raw, &tagged);
    if (status != PK_OK) {
        h->rejected++;
    }
    const char *name = heap_name(h);
    pk__unlock(&h->lock);
    if (status != PK_OK) {
        return (void)pk__debug_report(status, name, p, tagged ? &tag : NULL, site), NULL;
    }
    if (tag.size == size) {
        return p;
    }
    void *fresh = debug_alloc(h, size, A, site);
    if (fresh != NULL) {
        memcpy(fresh, p, tag.size < size ? tag.size : size);
        (void)debug_free(h, p, site);
    }
    return fresh;
}

/* Debug builds: the size requested. */
size_t pk_heap_usable_size(const pk_heap *h, const void *p)
{
    pk_debug_tag tag;
    unsigned char *raw;
    bool tagged;
    pk__lock(&h->lock);
    size_t size = debug_lookup(h, p, &tag, &raw, &tagged) == PK_OK ? tag.size : 0;
    pk__unlock(&h->lock);
    return size;
}

static size_t granted_block(const void *self, const unsigned char *raw)
{
    (void)self;
    return block_size(block_of(raw));
}

static void view_leaks(void *self, uint64_t since, pk_leak_fn cb, void *ctx)
{
    pk_heap *h = self;
    pk__lock(&h->lock);
    pk__debug_walk(&h->debug, since, cb, ctx);
    pk__unlock(&h->lock);
}
#endif /* PK_DEBUG */

/* Payload bytes of the free blocks: what the regions hold less the live
 * payloads and the headers of the blocks past each region's first. */
static size_t free_payload(const pk_heap *h)
{
    return h->capacity - h->in_use - W * (h->blocks - h->region_count);
}

/* The largest request that succeeds now: the lower bound of the highest
 * non-empty class, as a valid payload size (see class_to_search). */
static size_t largest_request(const pk_heap *h)
{
    if (h->fl_bitmap == 0) {
        return 0;
    }
    unsigned t = pk__log2_floor(h->fl_bitmap);
    unsigned sl = pk__log2_floor(h->sl_bitmap[t]);
    size_t low_x = (size_t)(PK_HEAP_SL_COUNT + sl) << (t - PK_HEAP_SL_LOG2);
    return low_x - X_OFFSET; /* of the valid form: low_x is a multiple of A */
}

void pk_heap_stats(const pk_heap *h, pk_stats *out)
{
    pk__lock(&h->lock);
#if PK_DEBUG
    /* The clients' view: quarantined blocks are free, requests exact;
     * in_use counts the heap blocks of live allocations, their debug bytes
     * included; largest_free is the largest request that succeeds now
     * without draining the quarantine. */
    size_t held_bytes = h->in_use - h->debug_in_use;
    size_t largest = largest_request(h);
    pk_stats s = {
        .capacity = h->capacity,
        .in_use = h->debug_in_use,
        .requested = h->debug.requested,
        .peak_in_use = h->debug_peak_in_use,
        .free_bytes = free_payload(h) + held_bytes,
        .largest_free = largest > PK_DEBUG_OVERHEAD_(A) ? largest - PK_DEBUG_OVERHEAD_(A) : 0,
        .block_size = 0,
        .live = h->debug.live,
        .peak_live = h->debug.peak_live,
        .allocs = h->allocs,
        .frees = h->allocs - h->debug.live,
        .failures = h->failures,
        .rejected = h->rejected,
    };
#else
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
        .frees = h->allocs - h->live,
        .failures = h->failures,
        .rejected = h->rejected,
    };
#endif
    pk__unlock(&h->lock);
    *out = s;
}

void pk_heap_reset_peaks(pk_heap *h)
{
    pk__lock(&h->lock);
    h->peak_in_use = h->in_use;
    h->peak_live = h->live;
#if PK_DEBUG
    h->debug_peak_in_use = h->debug_in_use;
    h->debug.peak_live = h->debug.live;
#endif
    pk__unlock(&h->lock);
}

/* Whether b may be dereferenced as a block header: its payload aligned and
 * inside a region. */
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
    for (unsigned t = 0; t < PK_HEAP_FL_SHIFT; t++) {
        if (h->sl_bitmap[t] != 0) {
            return false;
        }
    }
    for (unsigned fl = 0; fl < PK_HEAP_FL_COUNT; fl++) {
        bool fl_set = (h->fl_bitmap >> (fl + PK_HEAP_FL_SHIFT) & 1u) != 0;
        uint32_t sl_word = h->sl_bitmap[fl + PK_HEAP_FL_SHIFT];
        if (fl_set != (sl_word != 0) || (sl_word >> 1 >> (PK_HEAP_SL_COUNT - 1)) != 0) {
            return false;
        }
        for (unsigned sl = 0; sl < PK_HEAP_SL_COUNT; sl++) {
            const pk_heap_block *b = h->lists[fl * PK_HEAP_SL_COUNT + sl];
            if ((b != NULL) != ((sl_word >> sl & 1u) != 0)) {
                return false;
            }
            const pk_heap_block *prev = NULL;
            for (; b != NULL; prev = b, b = b->next_free) {
                if (*listed >= free_count || !plausible_block(h, b) || !is_free(b) ||
                    b->prev_free != prev) {
                    return false;
                }
                if (class_of(block_size(b)) != LIST_BASE + fl * SL_COUNT + sl) {
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
        (h->fl_bitmap & ~((((size_t)1 << PK_HEAP_FL_COUNT) - 1) << PK_HEAP_FL_SHIFT)) != 0) {
        return false;
    }
    return walk_regions(h, &used_bytes, &free_bytes, &used, &free_count) &&
           walk_lists(h, free_count, &listed) && listed == free_count &&
           free_count + used == h->blocks && free_bytes == free_payload(h) &&
           used_bytes == h->in_use && used == h->live && h->live <= h->allocs &&
           h->peak_in_use >= h->in_use && h->peak_live >= h->live;
}

pk_status pk_heap_check(const pk_heap *h)
{
    pk__lock(&h->lock);
    bool ok = heap_consistent(h);
#if PK_DEBUG
    /* Every live block's tag and guards, every quarantined block's poison. */
    pk_debug_tag tag;
    const unsigned char *where = NULL;
    pk_status status = ok && h->debug.live + h->debug.held == h->live && h->debug_in_use <= h->in_use &&
                               h->debug_peak_in_use >= h->debug_in_use
                           ? pk__debug_check(&h->debug, granted_block, h, &tag, &where)
                           : PK_ERR_CORRUPT;
    const char *name = heap_name(h);
    pk__unlock(&h->lock);
    pk__site none = {NULL, 0};
    return status == PK_OK ? PK_OK : pk__debug_report(status, name, where, where != NULL ? &tag : NULL, none);
#else
    pk__unlock(&h->lock);
    return ok ? PK_OK : pk_report_fault(PK_ERR_CORRUPT, heap_name(h), NULL);
#endif
}

void pk_heap_set_name(pk_heap *h, const char *name)
{
    h->name = name != NULL ? name : HEAP_DEFAULT_NAME;
}

pk_status pk_heap_set_lock(pk_heap *h, const pk_lock *lock)
{
    if (!pk__choose_lock(&h->lock, lock)) {
        return PK_ERR_INVALID_ARG;
    }
    set_fast_paths(h);
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

#if !PK_DEBUG
#define view_leaks NULL
#endif

static const pk_allocator_ops heap_ops = {
    view_alloc_aligned, view_free, view_realloc, view_stats, view_check, view_name, view_usable_size, view_leaks,
};
