/*
 * Buddy allocator. See include/poolkit/buddy.h for the contract.
 *
 * Slots are numbered from the base; a block of order k at slot s covers
 * slots s .. s + 2^k - 1, with s a multiple of 2^k. The map holds 2 bits per
 * slot (4 slots per byte, slot s in bits 2 * (s % 4)):
 *   MAP_NONE  no block starts here (inside a block);
 *   MAP_FREE  a free block starts here (it is on the list of its order);
 *   MAP_LIVE  a live block starts here, its request fills it;
 *   MAP_SLACK a live block starts here, the end of its slack holds a record.
 * What the map gives without any other table:
 * - the order of the block at s: the smallest j with s + 2^j a block start
 *   or the end of the region (at most ctz(s): a block is aligned to its size);
 * - whether the free buddy at t of a block of order k is whole: its middle
 *   slot t + 2^(k-1) is no block start (a split buddy's second half starts
 *   with a block);
 * - the block around an interior slot s: the first of s with its low 1, 2,
 *   3 ... bits cleared that is a block start.
 * Free-list links inside free blocks are the client's to damage (a write
 * after free); every use of a list checks the links it follows against the
 * map first, and a damaged list is rebuilt from the map.
 */
#include <string.h>

#include "core/internal.h"
#include "poolkit/buddy.h"
#if PK_DEBUG
#include "buddy_pages.h"
#include "debug/notes.h"
#endif

#define BUDDY_DEFAULT_NAME "buddy"

/* The map follows the blocks: a slot keeps it aligned for size_t. */
PK_STATIC_ASSERT(PK_BUDDY_MIN_BLOCK % PK_ALIGNOF(size_t) == 0, "slots must keep the map aligned");

enum { MAP_NONE = 0, MAP_FREE = 1, MAP_LIVE = 2, MAP_SLACK = 3 };

static const pk_allocator_ops buddy_ops;

static const char *buddy_name(const pk_buddy *b)
{
    return b->name != NULL ? b->name : BUDDY_DEFAULT_NAME;
}

/* Slots per map word: the map is read a word at a time to find the next
 * block start. Fields past the last slot are 0. */
#define MAP_WORD_SLOTS (4u * sizeof(size_t))

static PK__ALWAYS_INLINE unsigned map_get(const pk_buddy *b, size_t s)
{
    return (unsigned)(b->map[s / MAP_WORD_SLOTS] >> (s % MAP_WORD_SLOTS * 2u)) & 3u;
}

static PK__ALWAYS_INLINE void map_set(pk_buddy *b, size_t s, unsigned v)
{
    unsigned shift = (unsigned)(s % MAP_WORD_SLOTS) * 2u;
    size_t *word = &b->map[s / MAP_WORD_SLOTS];
    *word = (*word & ~((size_t)3u << shift)) | ((size_t)v << shift);
}

static PK__ALWAYS_INLINE size_t bit(unsigned k)
{
    return (size_t)1 << k;
}

static PK__ALWAYS_INLINE pk_buddy_node *node_at(const pk_buddy *b, size_t s)
{
    return (pk_buddy_node *)(void *)(b->base + (s << b->shift));
}

static PK__ALWAYS_INLINE size_t slot_of(const pk_buddy *b, const void *p)
{
    return (size_t)((uintptr_t)p - (uintptr_t)b->base) >> b->shift;
}

/* Whether slot t is a block start or the end of the region. */
static PK__ALWAYS_INLINE bool starts_or_ends(const pk_buddy *b, size_t t)
{
    return t >= b->slots || map_get(b, t) != MAP_NONE;
}

/* The order of the block starting at slot s, as the map says: log2 of the
 * distance to the next block start (or the end), at most ctz(s) (max_order
 * for slot 0). The rest of s's map word gives it at once for blocks of fewer
 * than MAP_WORD_SLOTS slots; beyond, slots s + 2^j are probed. The caller
 * checks that the block fits. */
static PK__ALWAYS_INLINE unsigned order_at(const pk_buddy *b, size_t s)
{
    unsigned limit = s == 0 ? b->max_order : pk__ctz(s);
    unsigned index = (unsigned)(s % MAP_WORD_SLOTS);
    size_t after = (b->map[s / MAP_WORD_SLOTS] >> (index * 2u)) >> 2; /* the slots after s */
    size_t rest = MAP_WORD_SLOTS - index; /* slots from s to the word's end */
    unsigned k;
    if (after != 0) {
        k = pk__log2_floor(pk__ctz(after) / 2u + 1u);
    } else if (b->slots - s <= rest) {
        k = pk__log2_floor(b->slots - s); /* the block ends the region */
    } else {
        /* No block start in the rest of the word: at least that long. */
        k = rest > 1 ? pk__log2_floor(rest - 1u) + 1u : 0;
        while (k < limit && !starts_or_ends(b, s + bit(k))) {
            k++;
        }
    }
    return k < limit ? k : limit;
}

/* Whether n is a free block of the region (in it, slot-aligned, marked free). */
static PK__ALWAYS_INLINE bool free_node_ok(const pk_buddy *b, const pk_buddy_node *n)
{
    size_t offset = (size_t)((uintptr_t)n - (uintptr_t)b->base);
    return offset < b->capacity && (offset & (b->min_block - 1u)) == 0 &&
           map_get(b, offset >> b->shift) == MAP_FREE;
}

/* Takes n off list k after checking the links it follows. false (nothing
 * changed) when they are damaged. A NULL link cannot be checked against the
 * map, so against the list's length: n has two NULL links exactly when it is
 * the list's only node. Without that, a head whose next a client zeroed
 * (memset after free) would be popped as the last node, silently cutting
 * every later node off the list; a zeroed next further down is caught when
 * the list runs out with nodes still counted. */
static PK__ALWAYS_INLINE bool unlink_node(pk_buddy *b, pk_buddy_node *n, unsigned k)
{
    pk_buddy_node *next = n->next;
    pk_buddy_node *prev = n->prev;
    size_t count = b->free_count[k];
    if ((count == 1) != (next == NULL && prev == NULL)) {
        return false;
    }
    if (next != NULL && (!free_node_ok(b, next) || next->prev != n)) {
        return false;
    }
    if (prev == NULL ? b->free_lists[k] != n : !free_node_ok(b, prev) || prev->next != n) {
        return false;
    }
    if (next != NULL) {
        next->prev = prev;
    }
    if (prev != NULL) {
        prev->next = next;
    } else {
        b->free_lists[k] = next;
        if (next == NULL) {
            b->nonempty &= ~bit(k);
        }
    }
    b->free_count[k] = count - 1u;
    return true;
}

static PK__ALWAYS_INLINE void push_node(pk_buddy *b, size_t s, unsigned k)
{
    pk_buddy_node *n = node_at(b, s);
    pk_buddy_node *head = b->free_lists[k];
    n->next = head;
    n->prev = NULL;
    if (head != NULL) {
        head->prev = n;
    }
    b->free_lists[k] = n;
    b->free_count[k]++;
    b->nonempty |= bit(k);
}


/* The slack record: the slack (1 .. block size) in base 128 backwards from
 * the block's end, least significant 7 bits in the last byte; every byte but
 * the most significant one (the lowest address) has its top bit set. Never
 * longer than the slack: n bytes are needed only from 2^(7(n-1)) on. */
static PK__ALWAYS_INLINE void write_record(unsigned char *end, size_t slack)
{
    do {
        unsigned char byte = (unsigned char)(slack & 0x7Fu);
        slack >>= 7;
        if (slack != 0) {
            byte |= 0x80u;
        }
        *--end = byte;
    } while (slack != 0);
}

/* The slack recorded before end in a block of block bytes, or 0 when the
 * record is impossible (0, larger than the block, or not in its shortest
 * form, or running past the block). */
static PK__ALWAYS_INLINE size_t read_record(const unsigned char *end, size_t block)
{
    size_t slack = 0;
    size_t length = 0;
    unsigned shift = 0;
    for (;;) {
        if (length == block || shift >= PK__WORD_BITS) {
            return 0;
        }
        unsigned byte = end[-1 - (ptrdiff_t)length];
        length++;
        slack |= (size_t)(byte & 0x7Fu) << shift;
        shift += 7;
        if ((byte & 0x80u) == 0) {
            if (length > 1 && byte == 0) {
                return 0; /* not the shortest form: not a record written here */
            }
            break;
        }
    }
    return slack == 0 || slack > block ? 0 : slack; /* the shortest form is never longer than its value */
}

/* The request of the live block at slot s of order k with map state state,
 * or SIZE_MAX when its record is impossible. */
static PK__ALWAYS_INLINE size_t request_of(const pk_buddy *b, size_t s, unsigned k, unsigned state)
{
    size_t block = b->min_block << k;
    if (state != MAP_SLACK) {
        return block;
    }
    size_t slack = read_record(b->base + (s << b->shift) + block, block);
    return slack == 0 ? SIZE_MAX : block - slack;
}

/* The slot count for avail bytes of slots of min_block bytes: the largest N
 * with N * min_block + map_bytes(N) <= avail. A map word and its
 * MAP_WORD_SLOTS slots take a group of bytes; a remainder holds up to
 * MAP_WORD_SLOTS - 1 more slots and one more map word.
 * The group's size is checked: min_block may be any power of two, and
 * MAP_WORD_SLOTS * min_block wraps once min_block >= 2^W / MAP_WORD_SLOTS
 * (W-bit size_t: 2^28 on 32 bits, 16 slots a word; 2^59 on 64 bits, 32). Wrapped, the group came out tiny (32 bits, 2^28: 0 + 4 bytes),
 * so 64 KiB at an address aligned to 2^28 made 2^16 / 4 * 16 slots of 2^28
 * bytes: init returned PK_OK with blocks and a map far outside the buffer.
 * A group that does not fit in size_t is larger than any avail: no whole
 * group, and the remainder, avail itself, gives the count (0 unless avail
 * holds a map word and at least one slot, which is then correct). */
static size_t slots_for(size_t avail, size_t min_block)
{
    size_t group = 0;
    if (pk__mul_overflows(MAP_WORD_SLOTS, min_block, &group) ||
        pk__add_overflows(group, sizeof(size_t), &group)) {
        group = 0; /* larger than avail */
    }
    size_t rest = group == 0 ? avail : avail % group;
    size_t extra = rest > sizeof(size_t) ? (rest - sizeof(size_t)) / min_block : 0;
    size_t whole = group == 0 ? 0 : avail / group * MAP_WORD_SLOTS;
    return whole + (extra > MAP_WORD_SLOTS - 1u ? MAP_WORD_SLOTS - 1u : extra);
}

static size_t map_bytes(size_t slots)
{
    return (slots + MAP_WORD_SLOTS - 1u) / MAP_WORD_SLOTS * sizeof(size_t);
}

/* The slot size for min_block, or 0 when min_block is invalid. */
static size_t slot_size(size_t min_block)
{
    if (min_block != 0 && !pk__is_pow2(min_block)) {
        return 0;
    }
    return min_block < PK_BUDDY_MIN_BLOCK ? PK_BUDDY_MIN_BLOCK : min_block;
}

size_t pk_buddy_metadata_size(size_t size, size_t min_block)
{
    size_t m = slot_size(min_block);
    if (m == 0) {
        return SIZE_MAX;
    }
    return size - slots_for(size, m) * m;
}

pk_status pk_buddy_init(pk_buddy *b, void *buf, size_t size, size_t min_block)
{
    size_t m = slot_size(min_block);
    if (b == NULL || buf == NULL || m == 0) {
        return PK_ERR_INVALID_ARG;
    }
    uintptr_t start = (uintptr_t)buf;
    size_t padding = (size_t)((m - (start & (m - 1u))) & (m - 1u));
    size_t slots = size > padding ? slots_for(size - padding, m) : 0;
    if (slots == 0) {
        return PK_ERR_INVALID_ARG;
    }
    unsigned char *base = (unsigned char *)buf + padding;
    uintptr_t address = (uintptr_t)base;
#if PK_DEBUG
    pk__debug_open(buf, size); /* ours now, whatever an allocator before left closed to the tools */
#endif
    /* Filled in place: a copy on the stack would cost firmware the size of
     * pk_buddy (its per-order lists), some hundreds of bytes. */
    memset(b, 0, sizeof *b);
    b->base = base;
    b->map = (size_t *)(void *)(base + slots * m);
    b->slots = slots;
    b->capacity = slots * m;
    b->min_block = m;
    b->base_align = (size_t)(address & (~address + 1u));
    b->shift = pk__ctz(m);
    b->max_order = pk__log2_floor(slots);
    b->name = BUDDY_DEFAULT_NAME;
    b->view.ops = &buddy_ops;
    b->view.self = b;
    memset(b->map, 0, map_bytes(slots));
    /* The largest aligned blocks that fit: the binary digits of N. */
    size_t s = 0;
    for (unsigned k = b->max_order + 1u; k-- > 0;) {
        if ((slots & bit(k)) != 0) {
            map_set(b, s, MAP_FREE);
            push_node(b, s, k);
            s += bit(k);
        }
    }
    return PK_OK;
}

/* Rebuilds the free lists from the map, after a damaged link was found. The
 * map is trusted; its free blocks all go back on their lists. O(N). */
static void rebuild_lists(pk_buddy *b)
{
    for (unsigned k = 0; k < PK_BUDDY_MAX_ORDERS; k++) {
        b->free_lists[k] = NULL;
        b->free_count[k] = 0;
    }
    b->nonempty = 0;
    for (size_t s = 0; s < b->slots;) {
        unsigned k = order_at(b, s);
        if (s + bit(k) > b->slots) {
            break; /* a damaged map: check reports it */
        }
        if (map_get(b, s) == MAP_FREE) {
            push_node(b, s, k);
        }
        s += bit(k);
    }
}

/* Recounts the requested bytes from the map and the records, after a free
 * found a damaged record (an impossible record counts its block). O(N). */
static void recount_requested(pk_buddy *b)
{
    size_t requested = 0;
    for (size_t s = 0; s < b->slots;) {
        unsigned k = order_at(b, s);
        unsigned state = map_get(b, s);
        if (state >= MAP_LIVE) {
            size_t r = request_of(b, s, k, state);
            requested += r == SIZE_MAX ? b->min_block << k : r;
        }
        s += bit(k);
    }
    b->requested = requested;
}

/* The order for a request of need bytes (may exceed max_order). */
static PK__ALWAYS_INLINE unsigned order_for(const pk_buddy *b, size_t need)
{
    if (need <= b->min_block) {
        return 0;
    }
    return (unsigned)PK__WORD_BITS - pk__clz(need - 1u) - b->shift;
}

/* Whether n, the head of list j, is a whole free block of order j (its slot
 * in *slot): in the region, aligned to its size, marked free, its middle no
 * block start, and the slot after it a block start or the end. */
static PK__ALWAYS_INLINE bool head_ok(const pk_buddy *b, const pk_buddy_node *n, unsigned j, size_t *slot)
{
    size_t offset = (size_t)((uintptr_t)n - (uintptr_t)b->base);
    size_t s = offset >> b->shift;
    if (offset >= b->capacity || (offset & ((b->min_block << j) - 1u)) != 0 ||
        map_get(b, s) != MAP_FREE || s + bit(j) > b->slots || !starts_or_ends(b, s + bit(j)) ||
        (j > 0 && map_get(b, s + bit(j - 1u)) != MAP_NONE)) {
        return false;
    }
    *slot = s;
    return true;
}

/* The allocation itself, with the lock held if there is one: a block of
 * order_for(need) whose request is request bytes. Sets *corrupt (and returns
 * NULL, changing nothing) when the list it would pop from is damaged. */
static PK__ALWAYS_INLINE void *alloc_core(pk_buddy *b, size_t request, size_t need, bool *corrupt)
{
    unsigned k = order_for(b, need);
    size_t mask = k <= b->max_order ? b->nonempty >> k : 0;
    if (mask == 0) {
        b->failures++;
        return NULL;
    }
    unsigned j = k + pk__ctz(mask);
    pk_buddy_node *n = b->free_lists[j];
    size_t s = 0;
    if (!head_ok(b, n, j, &s) || n->prev != NULL || !unlink_node(b, n, j)) {
        *corrupt = true;
        return NULL;
    }
    /* Lists k .. j-1 are empty: each upper half becomes its list's only block. */
    while (j > k) {
        j--;
        size_t upper = s + bit(j);
        pk_buddy_node *half = node_at(b, upper);
        half->next = NULL;
        half->prev = NULL;
        b->free_lists[j] = half;
        b->free_count[j] = 1;
        b->nonempty |= bit(j);
        map_set(b, upper, MAP_FREE);
    }
    size_t block = b->min_block << k;
    unsigned char *p = (unsigned char *)n;
    if (request < block) {
        write_record(p + block, block - request);
        map_set(b, s, MAP_SLACK);
    } else {
        map_set(b, s, MAP_LIVE);
    }
    b->allocs++;
    if (++b->live > b->peak_live) {
        b->peak_live = b->live;
    }
    b->in_use += block;
    if (b->in_use > b->peak_in_use) {
        b->peak_in_use = b->in_use;
    }
    b->requested += request;
    return p;
}

#if !PK_DEBUG
PK__SLOW_PATH static void *alloc_slow(pk_buddy *b, size_t request, size_t need)
{
    bool corrupt = false;
    pk__lock(&b->lock);
    void *p = alloc_core(b, request, need, &corrupt);
    if (corrupt) {
        rebuild_lists(b);
        b->rejected++;
    }
    const char *name = buddy_name(b);
    pk__unlock(&b->lock);
    if (corrupt) {
        (void)pk_report_fault(PK_ERR_CORRUPT, name, NULL);
    }
    return p;
}

void *pk_buddy_alloc(pk_buddy *b, size_t size)
{
    if (b->lock.lock == NULL) {
        bool corrupt = false;
        void *p = alloc_core(b, size, size, &corrupt);
        if (!corrupt) {
            return p;
        }
    }
    /* Locked, or a damaged list (nothing changed yet): the slow path
     * (re)does it, rebuilds and reports. */
    return alloc_slow(b, size, size);
}

PK__SLOW_PATH static void *reject_alloc(pk_buddy *b)
{
    pk__lock(&b->lock);
    b->rejected++;
    const char *name = buddy_name(b);
    pk__unlock(&b->lock);
    (void)pk_report_fault(PK_ERR_INVALID_ARG, name, NULL);
    return NULL;
}

void *pk_buddy_alloc_aligned(pk_buddy *b, size_t size, size_t align)
{
    if (align != 0 && !pk__is_pow2(align)) {
        return reject_alloc(b);
    }
    if (align <= b->min_block) {
        return pk_buddy_alloc(b, size);
    }
    if (align > b->base_align) {
        pk__lock(&b->lock);
        b->failures++; /* no block of the region is aligned so */
        pk__unlock(&b->lock);
        return NULL;
    }
    return alloc_slow(b, size, size > align ? size : align);
}
#endif

/* Why slot s, which is not a live block start, cannot be freed: a free
 * block's start or a slot inside a free block is not allocated; a slot
 * inside a live block is an interior pointer. */
static pk_status classify_not_live(const pk_buddy *b, size_t s)
{
    unsigned state = map_get(b, s);
    for (unsigned j = 1; state == MAP_NONE && j < PK__WORD_BITS; j++) {
        state = map_get(b, s & ~(bit(j) - 1u));
    }
    return state == MAP_FREE ? PK_ERR_DOUBLE_FREE : PK_ERR_MISALIGNED_PTR;
}

/* The free itself, with the lock held if there is one. Returns PK_OK; a
 * misuse, or PK_ERR_CORRUPT for a map that cannot be right, with nothing
 * changed but `rejected`; or, with the block freed, PK_ERR_GUARD_CORRUPT (its
 * record was impossible: requested recounted) or PK_ERR_CORRUPT (a damaged
 * list: the lists rebuilt). */
static PK__ALWAYS_INLINE pk_status free_core(pk_buddy *b, void *p)
{
    size_t offset = (size_t)((uintptr_t)p - (uintptr_t)b->base);
    pk_status refused = PK_OK;
    size_t s = offset >> b->shift;
    unsigned state = MAP_NONE;
    unsigned k = 0;
    if (offset >= b->capacity) {
        refused = PK_ERR_FOREIGN_PTR;
    } else if ((offset & (b->min_block - 1u)) != 0) {
        refused = PK_ERR_MISALIGNED_PTR;
    } else if ((state = map_get(b, s)) < MAP_LIVE) {
        refused = classify_not_live(b, s);
    } else if (s + bit(k = order_at(b, s)) > b->slots) {
        refused = PK_ERR_CORRUPT;
    }
    if (refused != PK_OK) {
        b->rejected++;
        return refused;
    }
    size_t block = b->min_block << k;
    size_t request = request_of(b, s, k, state);
    pk_status status = PK_OK;
    if (request > b->requested) {
        /* An impossible record (SIZE_MAX), or an overwritten one that
         * records a smaller slack than was written, more than all live
         * blocks requested: subtracting it would wrap requested. */
        status = PK_ERR_GUARD_CORRUPT;
        request = 0;
    }
    b->live--;
    b->frees++;
    b->in_use -= block;
    b->requested -= request;
    /* Merge while the buddy is a whole free block inside the region. */
    bool rebuilt = false;
    while (k < b->max_order) {
        size_t buddy = s ^ bit(k);
        if (buddy + bit(k) > b->slots || map_get(b, buddy) != MAP_FREE ||
            (k > 0 && map_get(b, buddy + bit(k - 1u)) != MAP_NONE)) {
            break;
        }
        if (!unlink_node(b, node_at(b, buddy), k)) {
            if (rebuilt) {
                break;
            }
            /* A damaged list: rebuild them all from the map, with the block
             * in hand marked live so that it stays off them, and go on. */
            map_set(b, s, MAP_LIVE);
            rebuild_lists(b);
            rebuilt = true;
            status = PK_ERR_CORRUPT;
            continue;
        }
        map_set(b, s > buddy ? s : buddy, MAP_NONE);
        s &= ~bit(k);
        k++;
    }
    map_set(b, s, MAP_FREE);
    push_node(b, s, k);
    if (status == PK_ERR_GUARD_CORRUPT) {
        recount_requested(b);
    }
    return status;
}

#if !PK_DEBUG
PK__SLOW_PATH static pk_status free_slow(pk_buddy *b, void *p, pk_status status)
{
    if (p == NULL) {
        return PK_OK;
    }
    if (status == PK_OK) { /* not tried yet: a lock is set */
        pk__lock(&b->lock);
        status = free_core(b, p);
        pk__unlock(&b->lock);
    }
    return status == PK_OK ? PK_OK : pk_report_fault(status, buddy_name(b), p);
}

pk_status pk_buddy_free(pk_buddy *b, void *p)
{
    if (b->lock.lock != NULL || p == NULL) {
        return free_slow(b, p, PK_OK);
    }
    pk_status status = free_core(b, p);
    return status == PK_OK ? PK_OK : free_slow(b, p, status);
}
#endif

/* Whether p is a live block start: its slot, order and map state. */
static bool find_live(const pk_buddy *b, const void *p, size_t *slot, unsigned *order, unsigned *state)
{
    size_t offset = (size_t)((uintptr_t)p - (uintptr_t)b->base);
    if (offset >= b->capacity || (offset & (b->min_block - 1u)) != 0) {
        return false;
    }
    size_t s = offset >> b->shift;
    *state = map_get(b, s);
    *order = order_at(b, s);
    *slot = s;
    return *state >= MAP_LIVE && s + bit(*order) <= b->slots;
}

#if !PK_DEBUG
void *pk_buddy_realloc(pk_buddy *b, void *p, size_t size)
{
    if (p == NULL) {
        return pk_buddy_alloc(b, size);
    }
    if (size == 0) {
        (void)pk_buddy_free(b, p);
        return NULL;
    }
    size_t s = 0;
    unsigned k = 0, state = 0;
    pk__lock(&b->lock);
    bool live = find_live(b, p, &s, &k, &state);
    size_t block = b->min_block << k;
    size_t old = live ? request_of(b, s, k, state) : 0;
    bool damaged = live && old > b->requested; /* impossible, or more than requested: as free */
    bool in_place = live && size <= block;
    if (in_place) {
        if (size < block) {
            write_record((unsigned char *)p + block, block - size);
            map_set(b, s, MAP_SLACK);
        } else {
            map_set(b, s, MAP_LIVE);
        }
        if (damaged) {
            recount_requested(b);
        } else {
            b->requested = b->requested - old + size;
        }
    }
    const char *name = buddy_name(b);
    pk__unlock(&b->lock);
    if (!live) {
        (void)pk_buddy_free(b, p); /* reports what is wrong with p */
        return NULL;
    }
    if (in_place) {
        if (damaged) {
            (void)pk_report_fault(PK_ERR_GUARD_CORRUPT, name, p);
        }
        return p;
    }
    void *fresh = pk_buddy_alloc(b, size);
    if (fresh != NULL) {
        memcpy(fresh, p, damaged ? block : old); /* size > block >= old here */
        if (damaged) {
            /* Make the record impossible, so that the free reports it and
             * recounts however large requested has grown since (the record
             * may be a possible one, recording more than p's request). The
             * bytes past the request are ours, and p's were copied. */
            pk__lock(&b->lock);
            map_set(b, s, MAP_SLACK);
            ((unsigned char *)p)[block - 1u] = 0;
            pk__unlock(&b->lock);
        }
        (void)pk_buddy_free(b, p); /* a damaged record is reported here */
    }
    return fresh;
}
#endif

#if PK_DEBUG
/* Debug builds (poolkit/debug.h). A client block is a debug block laid out
 * in a whole buddy block (granted: the block's size, a power of two):
 *   [padding][tag][front guard][request][rear guard][tail up to the block's end]
 * The core sees it as a live block whose request fills it (MAP_LIVE: no
 * slack record, whose bytes would lie in the guards), so the core's in_use and
 * requested count block sizes, and the exact requests are the debug state's.
 * A freed block is poisoned and quarantined (still live to the core); it is
 * really freed (and merged) when it leaves the quarantine, its poison
 * verified then. Pages taken by slab caches through pk_page_source_buddy go
 * round the tags (pk__buddy_page_get / put): a slab must be aligned to its
 * own size and tags its objects itself, so its page is a whole plain block.
 * Every fault is noted under the lock and reported after it. */

static size_t debug_granted(const void *self, const unsigned char *raw)
{
    const pk_buddy *b = self;
    return b->min_block << order_at(b, slot_of(b, raw));
}

static void note_client_peaks(pk_buddy *b)
{
    size_t in_use = b->in_use - b->held_bytes;
    size_t live = b->debug.live + b->pages;
    if (in_use > b->client_peak_in_use) {
        b->client_peak_in_use = in_use;
    }
    if (live > b->client_peak_live) {
        b->client_peak_live = live;
    }
}

/* Really frees the blocks that leave the quarantine (all with drain), noting
 * those whose poison was written and any damaged free list found. */
static void release_held(pk_buddy *b, bool drain, pk__debug_notes *n)
{
    pk_status damaged;
    pk_debug_tag tag;
    unsigned char *raw;
    while ((raw = pk__debug_evict(&b->debug, drain, &damaged, &tag)) != NULL) {
        if (damaged != PK_OK) {
            pk__debug_note(n, damaged, pk__debug_user_of(raw, &tag), &tag);
        }
        b->held_bytes -= debug_granted(b, raw);
        pk_status status = free_core(b, raw); /* a live block: PK_OK, or PK_ERR_CORRUPT (lists rebuilt) */
        if (status != PK_OK) {
            pk__debug_note(n, status, raw, NULL);
        }
    }
}

/* The debug block for a request of size bytes aligned to align, with the
 * lock held; the quarantine is drained and the allocation retried before
 * NULL is returned. */
static void *debug_alloc_locked(pk_buddy *b, size_t size, size_t align, pk__site site, pk__debug_notes *n)
{
    size_t layout = align > b->min_block ? align : b->min_block; /* min_block alignment, as in release */
    size_t need;
    if (!pk__debug_raw_size(size, layout, &need)) {
        b->failures++;
        return NULL;
    }
    if (align > b->min_block && align > need) {
        need = align; /* a block that large is aligned to align (the base is) */
    }
    unsigned k = order_for(b, need);
    size_t block = k <= b->max_order ? b->min_block << k : need;
    for (;;) {
        bool corrupt = false;
        unsigned char *raw = alloc_core(b, block, need, &corrupt);
        if (corrupt) {
            rebuild_lists(b);
            b->rejected++;
            pk__debug_note(n, PK_ERR_CORRUPT, NULL, NULL);
            return NULL;
        }
        if (raw != NULL) {
            unsigned char *user = pk__debug_setup(&b->debug, raw, block, size, layout, site);
            note_client_peaks(b);
            return user;
        }
        if (b->debug.held == 0) {
            return NULL;
        }
        b->failures--; /* not yet: the quarantine never causes a NULL */
        release_held(b, true, n);
    }
}

static void *debug_alloc(pk_buddy *b, size_t size, size_t align, pk__site site)
{
    pk__debug_notes n;
    n.count = 0;
    pk__lock(&b->lock);
    void *p = debug_alloc_locked(b, size, align, site, &n);
    const char *name = buddy_name(b);
    pk__unlock(&b->lock);
    pk__debug_report_notes(&n, name, site);
    return p;
}

/* Whether d is where a debug block's user bytes start from its raw block:
 * the tag and front guard rounded up to a layout alignment, min_block or a
 * larger power of two (pk_buddy_alloc_aligned). Tags are read nowhere else,
 * since the hooks close the bytes they read as a tag to ASan and Valgrind. */
static bool user_offset_ok(const pk_buddy *b, size_t d)
{
    for (size_t align = b->min_block; align <= d; align <<= 1) {
        size_t prefix = PK_DEBUG_PREFIX_(align);
        if (prefix >= d) {
            return prefix == d;
        }
    }
    return false;
}

/* What user is: PK_OK (a live client block: *tag, *raw), PK_ERR_DOUBLE_FREE
 * (quarantined, or freed since: *tagged when its tag says so), or the
 * misuse: PK_ERR_FOREIGN_PTR, PK_ERR_MISALIGNED_PTR (inside a live block),
 * PK_ERR_CORRUPT (where a live block's user bytes start, its tag damaged).
 * Reads only inside the region. */
static pk_status find_user(const pk_buddy *b, const unsigned char *user, pk_debug_tag *tag, unsigned char **raw,
                           bool *tagged)
{
    *tagged = false;
    size_t offset = (size_t)((uintptr_t)user - (uintptr_t)b->base);
    if (offset >= b->capacity) {
        return PK_ERR_FOREIGN_PTR;
    }
    /* The block around user, by the map. */
    size_t s = offset >> b->shift;
    size_t t = s;
    for (unsigned j = 1; map_get(b, t) == MAP_NONE && j < PK__WORD_BITS; j++) {
        t = s & ~(bit(j) - 1u);
    }
    unsigned state = map_get(b, t);
    size_t start = t << b->shift;
    size_t d = offset - start;
    const size_t before = sizeof(pk_debug_tag) + PK_GUARD_SIZE;
    if (state == MAP_FREE) {
        /* Freed and merged since: its tag, if still there, says where it
         * was allocated. Free bytes stay open to the tools. */
        if (d >= before && (offset & (b->min_block - 1u)) == (PK_DEBUG_PREFIX_(b->min_block) & (b->min_block - 1u))) {
            *tagged = pk__debug_inspect(user, tag, raw) == PK_ERR_DOUBLE_FREE;
            pk__debug_open(user - before, before);
        }
        return PK_ERR_DOUBLE_FREE;
    }
    if (state < MAP_LIVE || !user_offset_ok(b, d)) {
        return PK_ERR_MISALIGNED_PTR;
    }
    unsigned k = order_at(b, t);
    pk_status status = pk__debug_inspect(user, tag, raw);
    if (status == PK_ERR_MISALIGNED_PTR || state != MAP_LIVE || tag->pad + before != d ||
        d + tag->size + PK_GUARD_SIZE > (b->min_block << k)) {
        /* Not this block's tag (a block laid out for another alignment, or
         * its tag damaged): the bytes read may be the client's, and inspect
         * closed them to the tools: open again. */
        pk__debug_open(user - before, before);
        return d == PK_DEBUG_PREFIX_(b->min_block) ? PK_ERR_CORRUPT : PK_ERR_MISALIGNED_PTR;
    }
    *raw = b->base + start; /* (inspect sets it for a live block only) */
    *tagged = true;
    return status; /* PK_OK, or PK_ERR_DOUBLE_FREE: quarantined */
}

static pk_status debug_free(pk_buddy *b, void *p, pk__site site)
{
    if (p == NULL) {
        return PK_OK;
    }
    pk__debug_notes n;
    n.count = 0;
    pk_debug_tag tag;
    unsigned char *raw = NULL;
    bool tagged = false;
    pk__lock(&b->lock);
    pk_status status = find_user(b, p, &tag, &raw, &tagged);
    if (status == PK_OK) {
        size_t block = debug_granted(b, raw);
        status = pk__debug_retire(&b->debug, p, block);
        if (status != PK_OK) {
            pk__debug_note(&n, status, p, &tag); /* freed all the same, guards restored */
        }
        b->held_bytes += block;
        release_held(b, false, &n);
    } else {
        b->rejected++;
        pk__debug_note(&n, status, p, tagged ? &tag : NULL);
    }
    const char *name = buddy_name(b);
    pk__unlock(&b->lock);
    pk__debug_report_notes(&n, name, site);
    return status;
}

void *pk_buddy_alloc(pk_buddy *b, size_t size)
{
    return debug_alloc(b, size, 0, pk__debug_take_site());
}

void *pk_buddy_alloc_aligned(pk_buddy *b, size_t size, size_t align)
{
    pk__site site = pk__debug_take_site();
    if (align != 0 && !pk__is_pow2(align)) {
        pk__lock(&b->lock);
        b->rejected++;
        const char *name = buddy_name(b);
        pk__unlock(&b->lock);
        (void)pk__debug_report(PK_ERR_INVALID_ARG, name, NULL, NULL, site);
        return NULL;
    }
    if (align > b->min_block && align > b->base_align) {
        pk__lock(&b->lock);
        b->failures++; /* no block of the region is aligned so */
        pk__unlock(&b->lock);
        return NULL;
    }
    return debug_alloc(b, size, align, site);
}

pk_status pk_buddy_free(pk_buddy *b, void *p)
{
    return debug_free(b, p, pk__debug_take_site());
}

/* Moves the block unless the size is the same, so that the rear guard sits
 * right after the new size; copies exactly the old request. */
void *pk_buddy_realloc(pk_buddy *b, void *p, size_t size)
{
    pk__site site = pk__debug_take_site();
    if (p == NULL) {
        return debug_alloc(b, size, 0, site);
    }
    if (size == 0) {
        (void)debug_free(b, p, site);
        return NULL;
    }
    pk_debug_tag tag;
    unsigned char *raw = NULL;
    bool tagged = false;
    pk__lock(&b->lock);
    pk_status status = find_user(b, p, &tag, &raw, &tagged);
    pk__unlock(&b->lock);
    if (status != PK_OK) {
        (void)debug_free(b, p, site); /* reports what is wrong with p */
        return NULL;
    }
    if (size == tag.size) {
        return p;
    }
    void *fresh = debug_alloc(b, size, 0, site);
    if (fresh != NULL) {
        memcpy(fresh, p, tag.size < size ? tag.size : size);
        (void)debug_free(b, p, site); /* damaged guards are reported here */
    }
    return fresh;
}

size_t pk_buddy_usable_size(const pk_buddy *b, const void *p)
{
    pk_debug_tag tag;
    unsigned char *raw = NULL;
    bool tagged = false;
    pk__lock(&b->lock);
    size_t size = find_user(b, p, &tag, &raw, &tagged) == PK_OK ? tag.size : 0;
    pk__unlock(&b->lock);
    return size;
}

/* Debug builds: the block holding the client block p, overhead included. */
size_t pk_buddy_block_size(const pk_buddy *b, const void *p)
{
    pk_debug_tag tag;
    unsigned char *raw = NULL;
    bool tagged = false;
    pk__lock(&b->lock);
    size_t size = find_user(b, p, &tag, &raw, &tagged) == PK_OK ? debug_granted(b, raw) : 0;
    pk__unlock(&b->lock);
    return size;
}

/* The clients' view: quarantined blocks are free, requests exact (pages at
 * their size), largest_free the largest request a free block serves now
 * (net of the overhead; blocks still quarantined not counted). */
static void debug_stats(const pk_buddy *b, pk_stats *s)
{
    size_t in_use = b->in_use - b->held_bytes;
    size_t largest = b->nonempty != 0 ? b->min_block << pk__log2_floor(b->nonempty) : 0;
    size_t overhead = PK_DEBUG_OVERHEAD_(b->min_block);
    pk_stats fresh = {
        .capacity = b->capacity,
        .in_use = in_use,
        .requested = b->debug.requested + b->page_bytes,
        .peak_in_use = b->client_peak_in_use,
        .free_bytes = b->capacity - in_use,
        .largest_free = largest > overhead ? largest - overhead : 0,
        .block_size = 0,
        .live = b->debug.live + b->pages,
        .peak_live = b->client_peak_live,
        .allocs = b->allocs,
        .frees = b->frees + b->debug.held,
        .failures = b->failures,
        .rejected = b->rejected,
    };
    *s = fresh;
}

void *pk__buddy_page_get(pk_buddy *b, size_t size, size_t align)
{
    pk__site none = {NULL, 0};
    if (!pk__is_pow2(align)) {
        return pk_buddy_alloc_aligned(b, size, align); /* rejects it */
    }
    size_t need = align > b->min_block && align > size ? align : size;
    pk__debug_notes n;
    n.count = 0;
    pk__lock(&b->lock);
    void *page = NULL;
    if (align > b->min_block && align > b->base_align) {
        b->failures++;
    } else {
        for (;;) {
            bool corrupt = false;
            page = alloc_core(b, size, need, &corrupt);
            if (corrupt) {
                rebuild_lists(b);
                b->rejected++;
                pk__debug_note(&n, PK_ERR_CORRUPT, NULL, NULL);
                break;
            }
            if (page != NULL) {
                b->pages++;
                b->page_bytes += size;
                note_client_peaks(b);
                break;
            }
            if (b->debug.held == 0) {
                break;
            }
            b->failures--; /* the quarantine never causes a NULL */
            release_held(b, true, &n);
        }
    }
    const char *name = buddy_name(b);
    pk__unlock(&b->lock);
    pk__debug_report_notes(&n, name, none);
    return page;
}

pk_status pk__buddy_page_put(pk_buddy *b, void *page)
{
    pk__site none = {NULL, 0};
    size_t s = 0;
    unsigned k = 0, state = 0;
    pk__lock(&b->lock);
    size_t request = find_live(b, page, &s, &k, &state) ? request_of(b, s, k, state) : 0;
    pk_status status = free_core(b, page);
    if (status == PK_OK || status == PK_ERR_GUARD_CORRUPT || (status == PK_ERR_CORRUPT && request != 0)) {
        b->pages--;
        b->page_bytes -= request != SIZE_MAX && request <= b->page_bytes ? request : b->page_bytes;
    }
    const char *name = buddy_name(b);
    pk__unlock(&b->lock);
    return status == PK_OK ? PK_OK : pk__debug_report(status, name, page, NULL, none);
}
#endif

#if !PK_DEBUG
size_t pk_buddy_usable_size(const pk_buddy *b, const void *p)
{
    size_t s = 0;
    unsigned k = 0, state = 0;
    pk__lock(&b->lock);
    size_t size = find_live(b, p, &s, &k, &state) ? request_of(b, s, k, state) : 0;
    pk__unlock(&b->lock);
    return size == SIZE_MAX ? 0 : size;
}

size_t pk_buddy_block_size(const pk_buddy *b, const void *p)
{
    size_t s = 0;
    unsigned k = 0, state = 0;
    pk__lock(&b->lock);
    size_t size = find_live(b, p, &s, &k, &state) ? b->min_block << k : 0;
    pk__unlock(&b->lock);
    return size;
}
#endif

void pk_buddy_stats(const pk_buddy *b, pk_stats *out)
{
    pk__lock(&b->lock);
#if PK_DEBUG
    pk_stats s;
    debug_stats(b, &s);
#else
    pk_stats s = {
        .capacity = b->capacity,
        .in_use = b->in_use,
        .requested = b->requested,
        .peak_in_use = b->peak_in_use,
        .free_bytes = b->capacity - b->in_use,
        .largest_free = b->nonempty != 0 ? b->min_block << pk__log2_floor(b->nonempty) : 0,
        .block_size = 0,
        .live = b->live,
        .peak_live = b->peak_live,
        .allocs = b->allocs,
        .frees = b->frees,
        .failures = b->failures,
        .rejected = b->rejected,
    };
#endif
    pk__unlock(&b->lock);
    *out = s;
}

void pk_buddy_reset_peaks(pk_buddy *b)
{
    pk__lock(&b->lock);
    b->peak_in_use = b->in_use;
    b->peak_live = b->live;
#if PK_DEBUG
    b->client_peak_in_use = b->in_use - b->held_bytes;
    b->client_peak_live = b->debug.live + b->pages;
#endif
    pk__unlock(&b->lock);
}

/* Every free list against the map's count of free blocks per order. */
static bool lists_consistent(const pk_buddy *b, const size_t *counts)
{
    for (unsigned k = 0; k < PK_BUDDY_MAX_ORDERS; k++) {
        const pk_buddy_node *head = b->free_lists[k];
        if ((head != NULL) != (((b->nonempty >> k) & 1u) != 0)) {
            return false;
        }
        size_t length = 0;
        const pk_buddy_node *prev = NULL;
        for (const pk_buddy_node *n = head; n != NULL; n = n->next) {
            if (length >= counts[k] || !free_node_ok(b, n) || n->prev != prev) {
                return false; /* too long (a cycle), outside, not free, bad back link */
            }
            size_t s = slot_of(b, n);
            if ((s & (bit(k) - 1u)) != 0 || order_at(b, s) != k) {
                return false; /* a free block of another order */
            }
            length++;
            prev = n;
        }
        if (length != counts[k] || b->free_count[k] != counts[k]) {
            return false;
        }
    }
    return true;
}

static bool buddy_consistent(const pk_buddy *b)
{
    if (b->slots == 0 || b->min_block != bit(b->shift) || b->capacity != b->slots << b->shift ||
        b->max_order != pk__log2_floor(b->slots) || b->max_order >= PK_BUDDY_MAX_ORDERS ||
        (b->nonempty >> b->max_order >> 1) != 0) {
        return false;
    }
    size_t counts[PK_BUDDY_MAX_ORDERS] = {0}; /* free blocks per order, by the map */
    size_t live = 0, in_use = 0, requested = 0;
    for (size_t s = 0; s < b->slots;) {
        unsigned state = map_get(b, s);
        if (state == MAP_NONE) {
            return false; /* a block must start here */
        }
        unsigned k = order_at(b, s);
        if (s + bit(k) > b->slots) {
            return false;
        }
        for (size_t t = s + 1; t < s + bit(k); t++) {
            if (map_get(b, t) != MAP_NONE) {
                return false; /* a block start inside a block */
            }
        }
        if (state == MAP_FREE) {
            counts[k]++;
            size_t buddy = s ^ bit(k);
            if (k < b->max_order && buddy + bit(k) <= b->slots && map_get(b, buddy) == MAP_FREE &&
                (k == 0 || map_get(b, buddy + bit(k - 1u)) == MAP_NONE)) {
                return false; /* two free buddies not merged */
            }
        } else {
            size_t request = request_of(b, s, k, state);
            if (request == SIZE_MAX) {
                return false; /* an impossible record */
            }
            live++;
            in_use += b->min_block << k;
            requested += request;
        }
        s += bit(k);
    }
    if (live != b->live || in_use != b->in_use || requested != b->requested ||
        b->frees > b->allocs || b->allocs - b->frees != live || b->peak_live < live ||
        b->peak_in_use < in_use) {
        return false;
    }
    return lists_consistent(b, counts);
}

pk_status pk_buddy_check(const pk_buddy *b)
{
    pk__lock(&b->lock);
    bool ok = buddy_consistent(b);
#if PK_DEBUG
    /* Every live block's tag and guards, every quarantined block's poison. */
    pk_debug_tag tag;
    const unsigned char *where = NULL;
    pk_status status = ok && b->debug.live + b->debug.held + b->pages == b->live && b->held_bytes <= b->in_use
                           ? pk__debug_check(&b->debug, debug_granted, b, &tag, &where)
                           : PK_ERR_CORRUPT;
    const char *name = buddy_name(b);
    pk__unlock(&b->lock);
    pk__site none = {NULL, 0};
    return status == PK_OK ? PK_OK : pk__debug_report(status, name, where, where != NULL ? &tag : NULL, none);
#else
    const char *name = buddy_name(b);
    pk__unlock(&b->lock);
    return ok ? PK_OK : pk_report_fault(PK_ERR_CORRUPT, name, NULL);
#endif
}

void pk_buddy_set_name(pk_buddy *b, const char *name)
{
    b->name = name != NULL ? name : BUDDY_DEFAULT_NAME;
}

pk_status pk_buddy_set_lock(pk_buddy *b, const pk_lock *lock)
{
    if (!pk__choose_lock(&b->lock, lock)) {
        return PK_ERR_INVALID_ARG;
    }
    return PK_OK;
}

pk_allocator *pk_buddy_allocator(pk_buddy *b)
{
    return &b->view;
}

/* Generic view. */

static void *view_alloc_aligned(void *self, size_t size, size_t align)
{
    return pk_buddy_alloc_aligned(self, size, align);
}

static pk_status view_free(void *self, void *ptr)
{
    return pk_buddy_free(self, ptr);
}

static void view_stats(const void *self, pk_stats *out)
{
    pk_buddy_stats(self, out);
}

static pk_status view_check(const void *self)
{
    return pk_buddy_check(self);
}

static const char *view_name(const void *self)
{
    return buddy_name(self);
}

static void *view_realloc(void *self, void *ptr, size_t size)
{
    return pk_buddy_realloc(self, ptr, size);
}

static size_t view_usable_size(const void *self, const void *ptr)
{
    return pk_buddy_usable_size(self, ptr);
}

#if PK_DEBUG
static void view_leaks(void *self, uint64_t since, pk_leak_fn cb, void *ctx)
{
    pk_buddy *b = self;
    pk__lock(&b->lock);
    pk__debug_walk(&b->debug, since, cb, ctx);
    pk__unlock(&b->lock);
}
#else
#define view_leaks NULL
#endif

static const pk_allocator_ops buddy_ops = {
    view_alloc_aligned, view_free, view_realloc, view_stats, view_check, view_name, view_usable_size, view_leaks,
};
