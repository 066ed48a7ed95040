/*
 * Lock-free fixed-size pool. See include/poolkit/atomic_pool.h for the
 * contract and the argument for its correctness.
 *
 * Memory order: a free writes the block's link, then publishes the block with
 * a release compare-and-swap on the head; an alloc reads the head with
 * acquire, so it sees the link and everything the freeing thread wrote to the
 * block before freeing it. Every successful head change is a read-modify-
 * write, so the release sequence of the push that published a block reaches
 * any later acquire of the head. The usage bits and the counters need no
 * ordering of their own (relaxed): each is a single atomic word whose
 * read-modify-writes are totally ordered.
 *
 * Build-time switches (test and port configuration, not per-user options):
 *   PK_ATOMIC_POOL_NARROW      the 32-bit head even where 64-bit atomics are
 *                              lock-free (the host tests of the MCU layout);
 *   PK_ATOMIC_POOL_INDEX_BITS  index bits of the 32-bit head (default 16);
 *   PK_ATOMIC_POOL_TEST_HOOKS  calls pk__atomic_pool_before_swap between an
 *                              alloc's read of the head and its swap;
 *   PK_ATOMIC_POOL_UNTAGGED    never changes the tag: the broken pool the ABA
 *                              test shows (only with the test hooks).
 */

#include <stdatomic.h>

#include "core/internal.h"
#include "debug/hooks.h"
#include "poolkit/atomic_pool.h"

#define ATOMIC_POOL_DEFAULT_NAME "atomic pool"

#if !defined(PK_ATOMIC_POOL_NARROW) && ATOMIC_LLONG_LOCK_FREE == 2
typedef unsigned long long head_word;
typedef unsigned long long counter_word;
#define HEAD_INDEX_BITS 32u
#else
#ifndef PK_ATOMIC_POOL_INDEX_BITS
#define PK_ATOMIC_POOL_INDEX_BITS 16
#endif
#if PK_ATOMIC_POOL_INDEX_BITS < 4 || PK_ATOMIC_POOL_INDEX_BITS > 28
#error "PK_ATOMIC_POOL_INDEX_BITS must be 4..28 (the rest of 32 bits is the ABA tag)"
#endif
typedef unsigned int head_word;
typedef unsigned int counter_word;
#define HEAD_INDEX_BITS ((unsigned)PK_ATOMIC_POOL_INDEX_BITS)
#endif

#if ATOMIC_INT_LOCK_FREE != 2 || UINT_MAX < 0xFFFFFFFFu
#error "the atomic pool needs lock-free atomics on a 32-bit unsigned int"
#endif

#define INDEX_MASK ((head_word)(((head_word)1 << HEAD_INDEX_BITS) - 1u))
#define NO_BLOCK INDEX_MASK /* the index of an empty list */
#if defined(PK_ATOMIC_POOL_TEST_HOOKS) && defined(PK_ATOMIC_POOL_UNTAGGED)
#define TAG_STEP ((head_word)0)
#else
#define TAG_STEP ((head_word)1 << HEAD_INDEX_BITS)
#endif

#ifdef PK_ATOMIC_POOL_TEST_HOOKS
void (*pk__atomic_pool_before_swap)(void);
#endif

struct pk__atomic_pool_control {
    _Atomic head_word head;       /* tag << HEAD_INDEX_BITS | index of the top free block */
    _Atomic unsigned carved;      /* blocks ever handed out: 0..carved-1 */
    _Atomic unsigned live;
    _Atomic unsigned peak_live;
    _Atomic counter_word frees;
    _Atomic counter_word failures;
    _Atomic counter_word rejected;
#if PK_DEBUG
    _Atomic size_t requested; /* bytes requested by live blocks */
#endif
};
PK_STATIC_ASSERT(sizeof(struct pk__atomic_pool_control) <= PK_ATOMIC_POOL_CONTROL_SIZE_ &&
                     _Alignof(struct pk__atomic_pool_control) <= PK_ATOMIC_POOL_CONTROL_ALIGN_,
                 "the control block outgrew the room PK_ATOMIC_POOL_BUFFER_SIZE keeps for it");
PK_STATIC_ASSERT(sizeof(_Atomic unsigned) == 4 && _Alignof(_Atomic unsigned) <= 4,
                 "links and usage words are 4 bytes each in PK_ATOMIC_POOL_BUFFER_SIZE");

typedef struct pk__atomic_pool_control control_block;

static const pk_allocator_ops atomic_pool_ops;

static inline _Atomic unsigned *links_of(const pk_atomic_pool *p)
{
    return (_Atomic unsigned *)p->links;
}

static inline _Atomic unsigned *usage_of(const pk_atomic_pool *p)
{
    return (_Atomic unsigned *)p->usage;
}

static inline unsigned usage_bit(size_t index)
{
    return 1u << (index % 32u);
}

static const char *pool_name(const pk_atomic_pool *p)
{
    return p->name != NULL ? p->name : ATOMIC_POOL_DEFAULT_NAME;
}

static void count_event(_Atomic counter_word *counter)
{
    atomic_fetch_add_explicit(counter, 1u, memory_order_relaxed);
}

size_t pk_atomic_pool_max_blocks(void)
{
    return (size_t)NO_BLOCK < SIZE_MAX ? (size_t)NO_BLOCK : SIZE_MAX;
}

/* The largest n whose metadata and blocks fit in `room` bytes: 4 bytes of link
 * and a stride per block, and a 4-byte usage word per 32 blocks or part. */
static size_t blocks_fitting(size_t room, size_t stride)
{
    size_t per_block = stride + 4u;
    size_t per_word;
    if (stride > SIZE_MAX - 4u || pk__mul_overflows(per_block, 32u, &per_word) ||
        per_word > SIZE_MAX - 4u) {
        return room >= per_block + 4u ? 1u : 0u; /* a stride near SIZE_MAX: one block at most */
    }
    per_word += 4u;
    size_t words = room / per_word;
    size_t rest = room % per_word;
    size_t tail = rest > 4u ? (rest - 4u) / per_block : 0u; /* < 32: rest < per_word */
    return words * 32u + tail;
}

pk_status pk_atomic_pool_init(pk_atomic_pool *p, void *buf, size_t buf_size,
                              size_t block_size, size_t align)
{
    if (p == NULL || buf == NULL || block_size == 0) {
        return PK_ERR_INVALID_ARG;
    }
    if (align == 0) {
        align = PK_MAX_ALIGN;
    }
    size_t stride;
    size_t carried = block_size; /* bytes a block holds: debug builds add a tag and guards */
    if (!pk__is_pow2(align) ||
        (PK_DEBUG && pk__add_overflows(block_size, PK_ATOMIC_POOL_DEBUG_BYTES_(align), &carried)) ||
        pk__round_up_overflows(carried, align, &stride)) {
        return PK_ERR_INVALID_ARG;
    }
    if ((uintptr_t)buf > UINTPTR_MAX - buf_size) {
        return PK_ERR_INVALID_ARG; /* a buffer that wraps the address space */
    }
    size_t fixed = PK_ATOMIC_POOL_CONTROL_ALIGN_ - 1u + PK_ATOMIC_POOL_CONTROL_SIZE_ + (align - 1u);
    size_t count = buf_size > fixed ? blocks_fitting(buf_size - fixed, stride) : 0;
    if (count == 0 || count > pk_atomic_pool_max_blocks()) {
        return PK_ERR_INVALID_ARG;
    }

    uintptr_t at = (uintptr_t)buf;
    at += (PK_ATOMIC_POOL_CONTROL_ALIGN_ - (at & (PK_ATOMIC_POOL_CONTROL_ALIGN_ - 1u))) &
          (PK_ATOMIC_POOL_CONTROL_ALIGN_ - 1u);
    control_block *control = (control_block *)at;
    unsigned char *links = (unsigned char *)at + PK_ATOMIC_POOL_CONTROL_SIZE_;
    unsigned char *usage = links + 4u * count;
    size_t usage_words = (count + 31u) / 32u;
    uintptr_t blocks = (uintptr_t)(usage + 4u * usage_words);
    unsigned char *base = (unsigned char *)blocks + ((align - (blocks & (align - 1u))) & (align - 1u));

    atomic_init(&control->head, NO_BLOCK);
    atomic_init(&control->carved, 0u);
    atomic_init(&control->live, 0u);
    atomic_init(&control->peak_live, 0u);
    atomic_init(&control->frees, 0u);
    atomic_init(&control->failures, 0u);
    atomic_init(&control->rejected, 0u);
#if PK_DEBUG
    atomic_init(&control->requested, 0u);
#endif
    for (size_t w = 0; w < usage_words; w++) {
        atomic_init(&((_Atomic unsigned *)(void *)usage)[w], 0u);
    }

    pk_atomic_pool fresh = {
        .control = control,
        .links = links,
        .usage = usage,
        .base = base,
        .stride = stride,
        .count = count,
        .block_size = block_size,
        .align = align,
        .name = ATOMIC_POOL_DEFAULT_NAME,
    };
    fresh.view.ops = &atomic_pool_ops;
    fresh.view.self = p;
    *p = fresh;
    return PK_OK;
}

/* Pops the top of the free list, or returns NO_BLOCK when it is empty or
 * damaged (*corrupt: the top's link leads outside the carved blocks while the
 * head stood still). */
static head_word pop_free_list(const pk_atomic_pool *p, bool *corrupt)
{
    control_block *c = p->control;
    head_word head = atomic_load_explicit(&c->head, memory_order_acquire);
    for (;;) {
        head_word index = head & INDEX_MASK;
        if (index == NO_BLOCK) {
            return NO_BLOCK;
        }
        head_word next = atomic_load_explicit(&links_of(p)[index], memory_order_relaxed);
#ifdef PK_ATOMIC_POOL_TEST_HOOKS
        if (pk__atomic_pool_before_swap != NULL) {
            pk__atomic_pool_before_swap();
        }
#endif
        if (next != NO_BLOCK &&
            next >= atomic_load_explicit(&c->carved, memory_order_relaxed)) {
            /* A stale link read while others changed the list, or damage. */
            head_word again = atomic_load_explicit(&c->head, memory_order_acquire);
            if (again == head) {
                *corrupt = true;
                return NO_BLOCK;
            }
            head = again;
            continue;
        }
        head_word top = ((head & ~INDEX_MASK) + TAG_STEP) | next;
        if (atomic_compare_exchange_weak_explicit(&c->head, &head, top, memory_order_acquire,
                                                  memory_order_acquire)) {
            return index;
        }
    }
}

/* Carves a block never handed out, or returns NO_BLOCK when all are. */
static head_word carve(const pk_atomic_pool *p)
{
    control_block *c = p->control;
    unsigned carved = atomic_load_explicit(&c->carved, memory_order_relaxed);
    while (carved < p->count) {
        if (atomic_compare_exchange_weak_explicit(&c->carved, &carved, carved + 1u,
                                                  memory_order_relaxed, memory_order_relaxed)) {
            return carved;
        }
    }
    return NO_BLOCK;
}

static void raise_peak(control_block *c, unsigned live)
{
    unsigned peak = atomic_load_explicit(&c->peak_live, memory_order_relaxed);
    while (live > peak &&
           !atomic_compare_exchange_weak_explicit(&c->peak_live, &peak, live, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

/* The release alloc (debug builds: of the raw block); *carved_now says the
 * block was never handed out before. Inlined, so that release builds compile
 * to what they did before the debug layer. */
static PK__ALWAYS_INLINE unsigned char *alloc_raw(pk_atomic_pool *p, bool *carved_now)
{
    control_block *c = p->control;
    bool corrupt = false;
    head_word index = pop_free_list(p, &corrupt);
    *carved_now = false;
    /* The list may refill while the last blocks are carved: look again once
     * carving is over, so NULL means both were empty at that moment. */
    while (index == NO_BLOCK && !corrupt) {
        index = carve(p);
        if (index != NO_BLOCK) {
            *carved_now = true;
            break;
        }
        index = pop_free_list(p, &corrupt);
        if (index == NO_BLOCK && !corrupt) {
            count_event(&c->failures);
            return NULL;
        }
    }
    if (!corrupt) {
        unsigned bit = usage_bit((size_t)index);
        unsigned was = atomic_fetch_or_explicit(&usage_of(p)[(size_t)index / 32u], bit, memory_order_relaxed);
        corrupt = (was & bit) != 0; /* a live block was on the free list */
    }
    if (corrupt) {
        count_event(&c->rejected);
        (void)pk_report_fault(PK_ERR_CORRUPT, pool_name(p), NULL);
        return NULL;
    }
    raise_peak(c, atomic_fetch_add_explicit(&c->live, 1u, memory_order_relaxed) + 1u);
    return p->base + (size_t)index * p->stride;
}

#if PK_DEBUG
static size_t debug_prefix(const pk_atomic_pool *p)
{
    return pk__debug_prefix(p->align);
}

/* A block laid out for size bytes (<= the block size); a block handed out
 * again has its poison verified first (a write after free is reported with
 * the tag of the allocation it was freed from, and the block handed out
 * refilled). The block is this thread's from the pop on, so its bytes are
 * written without a race. */
static void *debug_alloc(pk_atomic_pool *p, size_t size, pk__site site)
{
    bool carved_now;
    unsigned char *raw = alloc_raw(p, &carved_now);
    if (raw == NULL) {
        return NULL;
    }
    size_t prefix = debug_prefix(p);
    unsigned char *user = raw + prefix;
    bool damaged = !carved_now && pk__debug_verify_poison(user, p->stride - prefix) != PK_OK;
    pk_debug_tag old;
    unsigned char *old_raw;
    bool tagged = damaged && pk__debug_inspect(user, &old, &old_raw) == PK_OK;
    (void)pk__debug_setup_unlisted(raw, p->stride, size, p->align, site);
    atomic_fetch_add_explicit(&p->control->requested, size, memory_order_relaxed);
    if (damaged) { /* not a misuse of this call: not counted as rejected (as pk_pool) */
        (void)pk__debug_report(PK_ERR_USE_AFTER_FREE, pool_name(p), user, tagged ? &old : NULL, site);
    }
    return user;
}

void *pk_atomic_pool_alloc(pk_atomic_pool *p)
{
    return debug_alloc(p, p->block_size, pk__debug_take_site());
}
#else
void *pk_atomic_pool_alloc(pk_atomic_pool *p)
{
    bool carved_now;
    return alloc_raw(p, &carved_now);
}
#endif

static bool is_live(const pk_atomic_pool *p, size_t index)
{
    return (atomic_load_explicit(&usage_of(p)[index / 32u], memory_order_relaxed) & usage_bit(index)) != 0;
}

/* Why block is not a block start the pool handed out, or PK_OK if it is one;
 * *index is its index then. */
static pk_status locate(const pk_atomic_pool *p, const void *block, size_t *index)
{
    size_t offset = (size_t)((uintptr_t)block - (uintptr_t)p->base);
    if (offset >= p->count * p->stride) {
        return PK_ERR_FOREIGN_PTR;
    }
#if PK_DEBUG
    if (offset % p->stride != debug_prefix(p)) { /* debug builds hand out user pointers */
#else
    if (offset % p->stride != 0) {
#endif
        return PK_ERR_MISALIGNED_PTR;
    }
    *index = offset / p->stride;
    return PK_OK;
}

pk_status pk_atomic_pool_free(pk_atomic_pool *p, void *block)
{
#if PK_DEBUG
    pk__site site = pk__debug_take_site();
    pk_debug_tag tag;
    bool tagged = false;
#endif
    if (block == NULL) {
        return PK_OK;
    }
    control_block *c = p->control;
    size_t index = 0;
    pk_status status = locate(p, block, &index);
#if PK_DEBUG
    unsigned char *raw;
    if (status == PK_OK && is_live(p, index) && pk__debug_inspect(block, &tag, &raw) != PK_OK) {
        /* A live block whose tag was overwritten: its size is lost, so it is
         * kept live and reported (as pk_pool does); check reports it too. */
        count_event(&c->rejected);
        return pk__debug_report(PK_ERR_CORRUPT, pool_name(p), block, NULL, site);
    }
#endif
    if (status == PK_OK) {
        unsigned bit = usage_bit(index);
        unsigned was = atomic_fetch_and_explicit(&usage_of(p)[index / 32u], ~bit, memory_order_relaxed);
        if ((was & bit) == 0) {
            status = PK_ERR_DOUBLE_FREE;
        }
    }
#if PK_DEBUG
    if (status == PK_ERR_DOUBLE_FREE && index < atomic_load_explicit(&c->carved, memory_order_relaxed)) {
        /* The tag a free left in place: the block's last allocation. */
        tagged = pk__debug_inspect(block, &tag, &raw) == PK_OK;
    }
    if (status != PK_OK) {
        count_event(&c->rejected);
        return pk__debug_report(status, pool_name(p), block, tagged ? &tag : NULL, site);
    }
    /* The block is this thread's until the push below publishes it. */
    if (pk__debug_inspect(block, &tag, &raw) == PK_OK) {
        tagged = true;
        status = pk__debug_retire_unlisted(block, p->stride, &tag);
        atomic_fetch_sub_explicit(&c->requested, tag.size, memory_order_relaxed);
    } else {
        /* The tag changed since the check above (another thread wrote into
         * a block it does not own): freed all the same, laid out anew. */
        status = PK_ERR_GUARD_CORRUPT;
        raw = (unsigned char *)block - debug_prefix(p);
        pk__site none = {NULL, 0};
        (void)pk__debug_setup_unlisted(raw, p->stride, 0, p->align, none);
        pk_debug_tag fresh;
        (void)pk__debug_retire_unlisted(block, p->stride, &fresh);
    }
#else
    if (status != PK_OK) {
        count_event(&c->rejected);
        return pk_report_fault(status, pool_name(p), block);
    }
#endif
    /* Not live any more before it can be live again: the live count never
     * exceeds the blocks off the list, so the peak stays true. */
    atomic_fetch_sub_explicit(&c->live, 1u, memory_order_relaxed);
    head_word head = atomic_load_explicit(&c->head, memory_order_relaxed);
    do {
        atomic_store_explicit(&links_of(p)[index], (unsigned)(head & INDEX_MASK), memory_order_relaxed);
    } while (!atomic_compare_exchange_weak_explicit(&c->head, &head,
                                                    ((head & ~INDEX_MASK) + TAG_STEP) | (head_word)index,
                                                    memory_order_release, memory_order_relaxed));
    count_event(&c->frees);
#if PK_DEBUG
    if (status != PK_OK) {
        return pk__debug_report(status, pool_name(p), block, tagged ? &tag : NULL, site);
    }
#endif
    return PK_OK;
}

size_t pk_atomic_pool_capacity(const pk_atomic_pool *p)
{
    return p->count;
}

size_t pk_atomic_pool_available(const pk_atomic_pool *p)
{
    unsigned live = atomic_load_explicit(&p->control->live, memory_order_relaxed);
    return p->count - (live < p->count ? live : p->count);
}

bool pk_atomic_pool_owns(const pk_atomic_pool *p, const void *ptr)
{
    size_t offset = (size_t)((uintptr_t)ptr - (uintptr_t)p->base);
    return offset < p->count * p->stride;
}


size_t pk_atomic_pool_usable_size(const pk_atomic_pool *p, const void *block)
{
    size_t index = 0;
#if PK_DEBUG
    pk_debug_tag tag;
    unsigned char *raw;
    return locate(p, block, &index) == PK_OK && is_live(p, index) && pk__debug_inspect(block, &tag, &raw) == PK_OK
               ? tag.size
               : 0;
#else
    return locate(p, block, &index) == PK_OK && is_live(p, index) ? p->block_size : 0;
#endif
}

void pk_atomic_pool_stats(const pk_atomic_pool *p, pk_stats *out)
{
    control_block *c = p->control;
    size_t live = atomic_load_explicit(&c->live, memory_order_relaxed);
    size_t peak = atomic_load_explicit(&c->peak_live, memory_order_relaxed);
    counter_word frees = atomic_load_explicit(&c->frees, memory_order_relaxed);
    pk_stats s = {
        .capacity = p->count * p->block_size,
        .in_use = live * p->block_size,
#if PK_DEBUG
        .requested = atomic_load_explicit(&c->requested, memory_order_relaxed),
#else
        .requested = live * p->block_size,
#endif
        .peak_in_use = peak * p->block_size,
        .free_bytes = (p->count - live) * p->block_size,
        .largest_free = live < p->count ? p->block_size : 0,
        .block_size = p->block_size,
        .live = live,
        .peak_live = peak,
        .allocs = (counter_word)(frees + live),
        .frees = frees,
        .failures = atomic_load_explicit(&c->failures, memory_order_relaxed),
        .rejected = atomic_load_explicit(&c->rejected, memory_order_relaxed),
    };
    *out = s;
}

void pk_atomic_pool_reset_peaks(pk_atomic_pool *p)
{
    control_block *c = p->control;
    atomic_store_explicit(&c->peak_live, atomic_load_explicit(&c->live, memory_order_relaxed),
                          memory_order_relaxed);
}

static bool consistent(const pk_atomic_pool *p)
{
    control_block *c = p->control;
    size_t carved = atomic_load_explicit(&c->carved, memory_order_relaxed);
    size_t live = atomic_load_explicit(&c->live, memory_order_relaxed);
    size_t peak = atomic_load_explicit(&c->peak_live, memory_order_relaxed);
    if (carved > p->count || live > carved || peak < live || peak > carved) {
        return false;
    }
    /* The usage bits: none past the carved blocks, one per live block. */
    size_t marked = 0;
    for (size_t w = 0; w < (p->count + 31u) / 32u; w++) {
        unsigned bits = atomic_load_explicit(&usage_of(p)[w], memory_order_relaxed);
        size_t first = w * 32u;
        if (carved < first + 32u) {
            unsigned carved_bits = carved > first ? (1u << (carved - first)) - 1u : 0u;
            if ((bits & ~carved_bits) != 0) {
                return false;
            }
        }
        marked += pk__popcount_portable(bits); /* a libgcc call where the builtin has no instruction */
    }
    if (marked != live) {
        return false;
    }
    /* The free list: exactly the carved blocks that are not live, each once
     * (a repeated block would make the walk longer than that). */
    size_t free_blocks = carved - live;
    size_t length = 0;
    head_word index = atomic_load_explicit(&c->head, memory_order_acquire) & INDEX_MASK;
    while (index != NO_BLOCK) {
        if (index >= carved || is_live(p, (size_t)index) || length == free_blocks) {
            return false;
        }
        length++;
        index = atomic_load_explicit(&links_of(p)[index], memory_order_relaxed);
    }
    return length == free_blocks;
}

#if PK_DEBUG
/* Every carved block: a live one's tag and guards, a free one's poison, and
 * the requested bytes against the tags. The first problem, with the block's
 * user pointer in *where and its tag in *tag (*tagged) when one is known. */
static pk_status check_blocks(const pk_atomic_pool *p, pk_debug_tag *tag, bool *tagged, const unsigned char **where)
{
    size_t prefix = debug_prefix(p);
    size_t carved = atomic_load_explicit(&p->control->carved, memory_order_relaxed);
    size_t requested = 0;
    for (size_t i = 0; i < carved; i++) {
        const unsigned char *user = p->base + i * p->stride + prefix;
        pk_status s;
        *where = user;
        if (is_live(p, i)) {
            s = pk__debug_check_block(user, p->stride, tag);
            *tagged = s != PK_ERR_CORRUPT;
            requested += s == PK_OK ? tag->size : 0;
        } else {
            s = pk__debug_poison_intact(user, p->stride - prefix);
            unsigned char *raw;
            *tagged = s != PK_OK && pk__debug_inspect(user, tag, &raw) == PK_OK;
        }
        if (s != PK_OK) {
            return s;
        }
    }
    *where = NULL;
    *tagged = false;
    return requested == atomic_load_explicit(&p->control->requested, memory_order_relaxed) ? PK_OK
                                                                                          : PK_ERR_CORRUPT;
}
#endif

pk_status pk_atomic_pool_check(const pk_atomic_pool *p)
{
#if PK_DEBUG
    pk_debug_tag tag;
    bool tagged = false;
    const unsigned char *where = NULL;
    pk_status s = consistent(p) ? check_blocks(p, &tag, &tagged, &where) : PK_ERR_CORRUPT;
    pk__site none = {NULL, 0};
    return s == PK_OK ? PK_OK : pk__debug_report(s, pool_name(p), where, tagged ? &tag : NULL, none);
#else
    return consistent(p) ? PK_OK : pk_report_fault(PK_ERR_CORRUPT, pool_name(p), NULL);
#endif
}

void pk_atomic_pool_set_name(pk_atomic_pool *p, const char *name)
{
    p->name = name != NULL ? name : ATOMIC_POOL_DEFAULT_NAME;
}

pk_allocator *pk_atomic_pool_allocator(pk_atomic_pool *p)
{
    return &p->view;
}

/* Generic view. */

static void *view_alloc_aligned(void *self, size_t size, size_t align)
{
    pk_atomic_pool *p = self;
    if (align != 0 && !pk__is_pow2(align)) {
        count_event(&p->control->rejected);
        (void)pk_report_fault(PK_ERR_INVALID_ARG, pool_name(p), NULL);
        return NULL;
    }
    if (size > p->block_size || align > p->align) {
        count_event(&p->control->failures);
        return NULL;
    }
#if PK_DEBUG
    return debug_alloc(p, size, pk__debug_take_site());
#else
    return pk_atomic_pool_alloc(p);
#endif
}

static pk_status view_free(void *self, void *ptr)
{
    return pk_atomic_pool_free(self, ptr);
}

static void view_stats(const void *self, pk_stats *out)
{
    pk_atomic_pool_stats(self, out);
}

static pk_status view_check(const void *self)
{
    return pk_atomic_pool_check(self);
}

static const char *view_name(const void *self)
{
    return pool_name(self);
}

static size_t view_usable_size(const void *self, const void *ptr)
{
    return pk_atomic_pool_usable_size(self, ptr);
}

#if PK_DEBUG
/* The live blocks by the usage bitmap, in block order (no live list: see the
 * header). Exact only while no thread uses the pool. */
static void view_leaks(void *self, uint64_t since, pk_leak_fn cb, void *ctx)
{
    const pk_atomic_pool *p = self;
    size_t prefix = debug_prefix(p);
    size_t carved = atomic_load_explicit(&p->control->carved, memory_order_relaxed);
    for (size_t i = 0; i < carved; i++) {
        const unsigned char *user = p->base + i * p->stride + prefix;
        pk_debug_tag tag;
        unsigned char *raw;
        if (is_live(p, i) && pk__debug_inspect(user, &tag, &raw) == PK_OK && tag.seq > since) {
            pk_leak leak = {user, tag.size, tag.file, tag.line, tag.owner, tag.seq};
            cb(&leak, ctx);
        }
    }
}
#else
#define view_leaks NULL
#endif

static const pk_allocator_ops atomic_pool_ops = {
    view_alloc_aligned, view_free, NULL, view_stats, view_check, view_name, view_usable_size, view_leaks,
};
