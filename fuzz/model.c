#include "model.h"

#include <sanitizer/asan_interface.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most blocks the model holds at once; an alloc past it is skipped. */
#define MAX_LIVE 256u
/* Recently freed pointers kept for double frees (PK_FUZZ_DOUBLE_ANY_FREED). */
#define FREED_RING 16u

typedef struct {
    unsigned char *ptr;
    size_t size;
    uint32_t token;
} block;

typedef struct {
    const uint8_t *next;
    size_t left;
} input;

typedef struct {
    const pk_fuzz_target *t;
    input in;
    size_t op;
    block live[MAX_LIVE];
    size_t live_count;
    uintptr_t freed[FREED_RING];
    size_t freed_count, freed_next;
    unsigned char *just_freed; /* the block the last operation freed, else NULL */
    uint64_t rejected;         /* misuse the allocator must have counted */
    uint32_t tokens;
} model;

typedef struct {
    unsigned calls;
    pk_fault last;
} fault_log;

static fault_log faults;

/* PK_FUZZ_TRACE set in the environment: each operation on stderr, to read
 * what a crashing input does (README "Fuzzing"). */
static bool tracing;

#define TRACE(...) (tracing ? (void)fprintf(stderr, __VA_ARGS__) : (void)0)

static void log_fault(const pk_fault *f, void *ctx)
{
    (void)ctx;
    faults.calls++;
    faults.last = *f;
}

/* Stands for pointers that belong to no allocator. */
static unsigned char foreign[64];

static void fail(const model *m, const char *what)
{
    fprintf(stderr, "fuzz[%s] operation %zu: %s\n", pk_name(m->t->a), m->op, what);
    abort();
}

static uint8_t next_byte(model *m)
{
    if (m->in.left == 0) {
        return 0;
    }
    m->in.left--;
    return *m->in.next++;
}

/* Sizes below 2^13 with every bit length about equally likely, and with a
 * first byte of 0xFF sizes near SIZE_MAX (whose arithmetic must not wrap). */
static size_t decode_size(model *m)
{
    uint8_t hi = next_byte(m), lo = next_byte(m);
    if (hi == 0xFF) {
        return SIZE_MAX - lo;
    }
    size_t mask = ((size_t)1 << (hi % 14u)) - 1u;
    return (((size_t)hi << 8) | lo) & mask;
}

/* 0 (the default) three times in four, else a power of two up to 4096, or
 * 3 (not a power of two: a misuse) for 0xFF. */
static size_t decode_align(model *m)
{
    uint8_t b = next_byte(m);
    if (b < 0xC0) {
        return 0;
    }
    return b == 0xFF ? 3u : (size_t)1 << (b % 13u);
}

/* The fill byte at address addr of a block stamped with token. */
static unsigned char pattern(uint32_t token, uintptr_t addr)
{
    uint32_t x = (token ^ (uint32_t)addr) * 0x9E3779B1u;
    return (unsigned char)(x >> 24);
}

static void stamp(block *b)
{
    for (size_t i = 0; i < b->size; i++) {
        b->ptr[i] = pattern(b->token, (uintptr_t)&b->ptr[i]);
    }
}

static void verify_contents(const model *m, const block *b)
{
    for (size_t i = 0; i < b->size; i++) {
        if (b->ptr[i] != pattern(b->token, (uintptr_t)&b->ptr[i])) {
            fail(m, "a live block's contents changed (overlap or stray write)");
        }
    }
}

/* Bytes of a block that no other block may share: a block of 0 bytes is
 * still a unique pointer; a fixed-size block owns its whole block. */
static size_t extent(const model *m, const block *b)
{
    size_t bytes = b->size > m->t->block_size ? b->size : m->t->block_size;
    return bytes != 0 ? bytes : 1u;
}

static bool covers(const model *m, const block *b, uintptr_t addr)
{
    return addr >= (uintptr_t)b->ptr && addr - (uintptr_t)b->ptr < extent(m, b);
}

/* A new or moved block b (at index `self` of live, or MAX_LIVE): aligned to
 * align, inside the region, overlapping no other live block. */
static void check_placement(const model *m, const block *b, size_t align, size_t self)
{
    const pk_fuzz_target *t = m->t;
    uintptr_t addr = (uintptr_t)b->ptr, region = (uintptr_t)t->region;
    if (align != 0 && addr % align != 0) {
        fail(m, "block not aligned");
    }
    if (addr < region || addr - region > t->region_size || b->size > t->region_size - (addr - region)) {
        fail(m, "block outside the region");
    }
    for (size_t i = 0; i < m->live_count; i++) {
        const block *o = &m->live[i];
        if (i != self && (uintptr_t)o->ptr < addr + extent(m, b) && addr < (uintptr_t)o->ptr + extent(m, o)) {
            fail(m, "block overlaps a live block");
        }
    }
}

static void expect_no_fault(const model *m, const char *what)
{
    if (faults.calls != 0) {
        fail(m, what);
    }
}

/* The alignment a block asked with align must have. */
static size_t required_align(const pk_fuzz_target *t, size_t align)
{
    if (align != 0 && (t->align_as_asked || align > t->default_align)) {
        return align;
    }
    return t->default_align;
}

static void do_alloc(model *m)
{
    const pk_fuzz_target *t = m->t;
    size_t size = decode_size(m), align = decode_align(m);
    if (m->live_count == MAX_LIVE) {
        return;
    }
    pk_stats before;
    pk_stats_get(t->a, &before);
    faults.calls = 0;
    unsigned char *p = align != 0 ? pk_alloc_aligned(t->a, size, align) : pk_alloc(t->a, size);
    if ((align & (align - 1u)) != 0) {
        if (p != NULL || faults.calls != 1 || faults.last.kind != PK_ERR_INVALID_ARG) {
            fail(m, "an alignment that is not a power of two was not refused with one PK_ERR_INVALID_ARG");
        }
        m->rejected++;
        return;
    }
    expect_no_fault(m, "an alloc raised a fault");
    /* -1: cannot be predicted; else whether the alloc must succeed. */
    int must_succeed = -1;
    if (t->block_size != 0) {
        if (size > t->block_size || align > t->block_align) {
            must_succeed = 0;
        } else if (t->capacity_blocks != 0) {
            must_succeed = m->live_count < t->capacity_blocks;
        }
    } else if (t->largest_free_exact && align == 0 && (size != 0 || before.largest_free != 0)) {
        /* (largest_free 0 may mean that a request of 0 bytes fails too.)
         * Debug builds: a request above largest_free may still succeed, as
         * an alloc that would fail first empties the quarantine, whose
         * blocks largest_free leaves out. */
        must_succeed = size <= before.largest_free ? 1 : PK_DEBUG ? -1 : 0;
    }
    if (p == NULL) {
        TRACE("  alloc %zu bytes align %zu: NULL\n", size, align);
        if (must_succeed == 1) {
            fprintf(stderr, "alloc of %zu bytes (align %zu) failed; largest_free was %zu\n", size, align,
                    before.largest_free);
            fail(m, "alloc failed where the model predicts success");
        }
        return;
    }
    if (must_succeed == 0) {
        fail(m, "alloc succeeded where the model predicts failure");
    }
    block *b = &m->live[m->live_count];
    *b = (block){p, size, 0x9E3779B9u * ++m->tokens};
    check_placement(m, b, required_align(t, align), MAX_LIVE);
    stamp(b);
    m->live_count++;
    TRACE("  alloc %zu bytes align %zu: %p (block %zu)\n", size, align, (void *)p, m->live_count - 1u);
}

static void remember_freed(model *m, unsigned char *p)
{
    m->freed[m->freed_next] = (uintptr_t)p;
    m->freed_next = (m->freed_next + 1u) % FREED_RING;
    if (m->freed_count < FREED_RING) {
        m->freed_count++;
    }
    m->just_freed = p;
}

static void free_block(model *m, size_t index)
{
    block *b = &m->live[index];
    verify_contents(m, b);
    faults.calls = 0;
    if (pk_free(m->t->a, b->ptr) != PK_OK) {
        fail(m, "free of a live block refused");
    }
    expect_no_fault(m, "free of a live block raised a fault");
    unsigned char *p = b->ptr;
    TRACE("  free block %zu: %p\n", index, (void *)p);
    *b = m->live[--m->live_count];
    remember_freed(m, p);
}

static void do_free(model *m)
{
    uint8_t index = next_byte(m);
    if (m->live_count != 0) {
        free_block(m, index % m->live_count);
    }
}

static void do_realloc(model *m)
{
    const pk_fuzz_target *t = m->t;
    uint8_t index = next_byte(m);
    size_t size = decode_size(m);
    if (m->live_count == 0) {
        return;
    }
    if (size == 0) {
        size = 1; /* realloc(p, 0) is a free */
    }
    block *b = &m->live[index % m->live_count];
    verify_contents(m, b);
    faults.calls = 0;
    unsigned char *p = pk_realloc(t->a, b->ptr, size);
    expect_no_fault(m, "realloc of a live block raised a fault");
    if (p == NULL) {
        /* (a debug block holds only its request: a larger one moves, and
         * fails when the allocator is full) */
        if (!PK_DEBUG && t->block_size != 0 && size <= t->block_size) {
            fail(m, "realloc within the block size failed");
        }
        verify_contents(m, b); /* a failed realloc leaves the block as it was */
        return;
    }
    uintptr_t old = (uintptr_t)b->ptr;
    size_t keep = size < b->size ? size : b->size;
    for (size_t i = 0; i < keep; i++) {
        if (p[i] != pattern(b->token, old + i)) {
            fail(m, "realloc lost the block's contents");
        }
    }
    TRACE("  realloc block %zu (%p, %zu bytes) to %zu bytes: %p\n", (size_t)(b - m->live), (void *)b->ptr,
          b->size, size, (void *)p);
    block moved = {p, size, 0x9E3779B9u * ++m->tokens};
    check_placement(m, &moved, t->default_align, (size_t)(b - m->live));
    *b = moved;
    stamp(b);
    if ((uintptr_t)p != old) {
        remember_freed(m, (unsigned char *)old);
    }
}

/* Frees ptr, which the model knows to be misuse, expecting `expected`. */
static void expect_bad_free(model *m, const void *ptr, pk_status expected)
{
    TRACE("  bad free %p, expecting %s\n", ptr, pk_status_str(expected));
    faults.calls = 0;
    pk_status st = pk_free(m->t->a, (void *)(uintptr_t)ptr);
    if (st != expected) {
        fprintf(stderr, "bad free of %p: status %s, expected %s\n", ptr, pk_status_str(st),
                pk_status_str(expected));
        fail(m, "a bad free returned an unexpected status");
    }
    if (expected == PK_OK) {
        expect_no_fault(m, "a free the allocator cannot tell from a good one raised a fault");
        return;
    }
    if (faults.calls != 1 || faults.last.kind != expected || faults.last.ptr != ptr) {
        fail(m, "a bad free did not raise exactly one fault of its kind about its pointer");
    }
    m->rejected++;
}

static void do_bad_free(model *m)
{
    const pk_fuzz_target *t = m->t;
    uint8_t kind = next_byte(m), arg = next_byte(m), offset_byte = next_byte(m);
    switch (kind % 4u) {
    case 0:
        expect_bad_free(m, &foreign[arg % sizeof foreign], PK_ERR_FOREIGN_PTR);
        break;
    case 1: /* past the region: an address only, never dereferenced */
        expect_bad_free(m, (const void *)((uintptr_t)t->region + t->region_size + 64u + arg),
                        PK_ERR_FOREIGN_PTR);
        break;
    case 2: {
        if (t->interior_granule == 0 || m->live_count == 0) {
            return;
        }
        const block *b = &m->live[arg % m->live_count];
        size_t bytes = extent(m, b);
        if (bytes < 2) {
            return;
        }
        size_t offset = 1u + offset_byte % (bytes - 1u);
        if (t->interior_granule > 1 && offset % t->interior_granule == 0) {
            offset--; /* stays >= 1 */
        }
        expect_bad_free(m, b->ptr + offset, t->interior_status);
        break;
    }
    default: {
        uintptr_t ptr;
        if (t->double_mode == PK_FUZZ_DOUBLE_JUST_FREED) {
            if (m->just_freed == NULL) {
                return;
            }
            ptr = (uintptr_t)m->just_freed;
        } else {
            if (m->freed_count == 0) {
                return;
            }
            ptr = m->freed[arg % m->freed_count];
        }
        for (size_t i = 0; i < m->live_count; i++) {
            if (covers(m, &m->live[i], ptr)) {
                return; /* reused: a free of a live block or an interior one */
            }
        }
        expect_bad_free(m, (const void *)ptr, t->double_status);
        break;
    }
    }
}

static void do_drain(model *m)
{
    while (m->live_count != 0) {
        free_block(m, m->live_count - 1u);
    }
    if (m->t->reset != NULL) {
        m->t->reset(m->t->reset_ctx);
        m->freed_count = m->freed_next = 0;
        m->just_freed = NULL;
    }
}

/* After every operation: check clean and silent, stats as the model says. */
static void check_state(const model *m)
{
    const pk_fuzz_target *t = m->t;
    faults.calls = 0;
    if (pk_check(t->a) != PK_OK) {
        fail(m, "check failed");
    }
    expect_no_fault(m, "check raised a fault");
    pk_stats s;
    pk_stats_get(t->a, &s);
    if (!t->frees_reclaim_nothing && s.live != m->live_count) {
        fail(m, "stats.live differs from the model");
    }
    if (s.rejected != m->rejected) {
        fail(m, "stats.rejected differs from the misuse made");
    }
    if (s.in_use > s.capacity || s.free_bytes > s.capacity - s.in_use) {
        fail(m, "stats inconsistent (in_use + free_bytes above capacity)");
    }
}

void pk_fuzz_fresh_buffer(void *buf, size_t size)
{
    ASAN_UNPOISON_MEMORY_REGION(buf, size);
}

void pk_fuzz_run(const pk_fuzz_target *t, const uint8_t *data, size_t size)
{
    static model m; /* about 6 KiB: kept off libFuzzer's stack */
    memset(&m, 0, sizeof m);
    m.t = t;
    m.in = (input){data, size};
    pk_set_fault_handler(log_fault, NULL);
    tracing = getenv("PK_FUZZ_TRACE") != NULL;
    check_state(&m);
    for (; m.in.left != 0 && m.op < PK_FUZZ_MAX_OPS; m.op++) {
        unsigned char *just_freed = m.just_freed;
        m.just_freed = NULL;
        uint8_t opcode = next_byte(&m);
        TRACE("operation %zu: opcode %u, %zu live\n", m.op, opcode % 8u, m.live_count);
        switch (opcode % 8u) {
        case 0: case 1: case 2: do_alloc(&m); break;
        case 3: do_free(&m); break;
        case 4: do_realloc(&m); break;
        case 5:
            m.just_freed = just_freed; /* a bad free changes nothing */
            do_bad_free(&m);
            break;
        case 6:
            m.just_freed = just_freed;
            for (size_t i = 0; i < m.live_count; i++) {
                verify_contents(&m, &m.live[i]);
            }
            break;
        default: do_drain(&m); break;
        }
        check_state(&m);
    }
    do_drain(&m);
    check_state(&m);
    pk_set_fault_handler(NULL, NULL);
}
