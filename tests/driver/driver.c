#include "driver/driver.h"

#include <string.h>

/* A bounded line of text, so that reports need no stdio. */
typedef struct {
    char text[256];
    size_t len;
} line;

static void put(line *l, const char *s)
{
    while (*s != '\0' && l->len + 1 < sizeof l->text) {
        l->text[l->len++] = *s++;
    }
    l->text[l->len] = '\0';
}

static void put_number(line *l, uint64_t v, unsigned base)
{
    char digits[24];
    size_t i = sizeof digits - 1;
    digits[i] = '\0';
    do {
        digits[--i] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v != 0);
    if (base == 16) {
        put(l, "0x");
    }
    put(l, &digits[i]);
}

uint64_t pk_driver_next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A value in [0, n). */
static uint64_t below(uint64_t *state, uint64_t n)
{
    return n == 0 ? 0 : pk_driver_next_random(state) % n;
}

void pk_driver_fill_garbage(void *buf, size_t size, uint64_t seed)
{
    unsigned char *bytes = buf;
    uint64_t state = seed;
    for (size_t i = 0; i < size; i++) {
        if (i % 8 == 0) {
            state ^= pk_driver_next_random(&state);
        }
        bytes[i] = (unsigned char)(state >> (8 * (i % 8)));
    }
}

/* The fill byte at address addr of a block stamped with token. */
static unsigned char pattern(uint32_t token, uintptr_t addr)
{
    uint32_t x = (token ^ (uint32_t)addr) * 0x9E3779B1u;
    return (unsigned char)(x >> 24);
}

static void stamp(const pk_driver_slot *s)
{
    unsigned char *bytes = s->ptr;
    for (size_t i = 0; i < s->size; i++) {
        bytes[i] = pattern(s->token, (uintptr_t)&bytes[i]);
    }
}

static bool stamp_intact(const pk_driver_slot *s)
{
    const unsigned char *bytes = s->ptr;
    for (size_t i = 0; i < s->size; i++) {
        if (bytes[i] != pattern(s->token, (uintptr_t)&bytes[i])) {
            return false;
        }
    }
    return true;
}

typedef struct {
    pk_allocator *a;
    const pk_driver_config *cfg;
    uint64_t rng;
    size_t live;
    size_t requested; /* sum of live requests */
    size_t requested_all; /* sum of every request of the run */
    size_t in_use;    /* stats.in_use at the last check (frees_reclaim_nothing) */
    size_t op;
    pk_stats base;    /* stats when the run started */
    pk_driver_result result;
    unsigned problems;
} run;

static void fail(run *r, const char *what)
{
    if (r->problems++ != 0 || r->cfg->report == NULL) {
        return;
    }
    line l = {{0}, 0};
    put(&l, "driver[");
    put(&l, pk_name(r->a));
    put(&l, "] seed=");
    put_number(&l, r->cfg->seed, 10);
    put(&l, " op=");
    put_number(&l, r->op, 10);
    put(&l, ": ");
    put(&l, what);
    r->cfg->report(r->cfg->report_ctx, l.text);
}

static size_t random_size(run *r)
{
    size_t lo = r->cfg->min_size, hi = r->cfg->max_size;
    if (hi <= lo) {
        return lo;
    }
    /* Log-uniform: a random octave of [lo, hi], then a uniform size in it. */
    unsigned lo_bits = 0, hi_bits = 0;
    while (lo_bits < 63 && ((size_t)1 << (lo_bits + 1)) <= (lo == 0 ? 1 : lo)) {
        lo_bits++;
    }
    while (hi_bits < 63 && ((size_t)1 << (hi_bits + 1)) <= hi) {
        hi_bits++;
    }
    unsigned octave = lo_bits + (unsigned)below(&r->rng, hi_bits - lo_bits + 1u);
    size_t start = (size_t)1 << octave;
    size_t size = start + (size_t)below(&r->rng, start);
    if (size < lo) {
        size = lo;
    }
    return size > hi ? hi : size;
}

static size_t random_align(run *r)
{
    if (r->cfg->max_align == 0 || below(&r->rng, 4) != 0) {
        return 0;
    }
    size_t align = 1;
    size_t steps = (size_t)below(&r->rng, 16);
    while (steps-- > 0 && align * 2 <= r->cfg->max_align) {
        align *= 2;
    }
    return align;
}

static void do_alloc(run *r)
{
    const pk_driver_config *cfg = r->cfg;
    size_t size = random_size(r);
    size_t align = random_align(r);
    void *p = align != 0 ? pk_alloc_aligned(r->a, size, align) : pk_alloc(r->a, size);
    if (p == NULL) {
        r->result.failures++;
        if (cfg->block_size != 0 && r->live + r->base.live < r->base.capacity / cfg->block_size) {
            fail(r, "fixed-size allocator failed with free blocks left");
        }
        return;
    }
    uintptr_t addr = (uintptr_t)p;
    uintptr_t region = (uintptr_t)cfg->region;
    size_t need = align > cfg->default_align || (align != 0 && cfg->align_as_asked) ? align
                                                                                  : cfg->default_align;
    if (need != 0 && addr % need != 0) {
        fail(r, "block not aligned");
    }
    if (addr < region || addr - region > cfg->region_size || size > cfg->region_size - (addr - region)) {
        fail(r, "block outside the region");
        return;
    }
    pk_driver_slot *s = &cfg->slots[r->live++];
    s->ptr = p;
    s->size = size;
    s->token = (uint32_t)pk_driver_next_random(&r->rng);
    stamp(s);
    r->requested += size;
    r->requested_all += size;
    r->result.allocs++;
    if (r->live > r->result.max_live) {
        r->result.max_live = r->live;
    }
}

static void do_free(run *r, size_t index)
{
    pk_driver_slot *s = &r->cfg->slots[index];
    if (!stamp_intact(s)) {
        fail(r, "block contents changed while live (overlap or stray write)");
    }
    pk_status st = pk_free(r->a, s->ptr);
    if (st != PK_OK) {
        fail(r, "free of a live block refused");
    }
    r->requested -= s->size;
    *s = r->cfg->slots[--r->live];
    r->result.frees++;
}

static void do_realloc(run *r, size_t index)
{
    const pk_driver_config *cfg = r->cfg;
    pk_driver_slot *s = &cfg->slots[index];
    if (!stamp_intact(s)) {
        fail(r, "block contents changed while live (overlap or stray write)");
    }
    size_t size = random_size(r);
    if (size == 0) {
        size = 1; /* realloc(p, 0) would free */
    }
    uintptr_t old = (uintptr_t)s->ptr;
    unsigned char *p = pk_realloc(r->a, s->ptr, size);
    if (p == NULL) {
        r->result.failures++;
        if (!stamp_intact(s)) {
            fail(r, "a failed realloc changed the block");
        }
        return;
    }
    size_t keep = size < s->size ? size : s->size;
    for (size_t i = 0; i < keep; i++) {
        if (p[i] != pattern(s->token, old + i)) {
            fail(r, "realloc lost the block's contents");
            break;
        }
    }
    uintptr_t region = (uintptr_t)cfg->region;
    if (cfg->default_align != 0 && (uintptr_t)p % cfg->default_align != 0) {
        fail(r, "reallocated block not aligned");
    }
    if ((uintptr_t)p < region || (uintptr_t)p - region > cfg->region_size ||
        size > cfg->region_size - ((uintptr_t)p - region)) {
        fail(r, "reallocated block outside the region");
        return;
    }
    r->requested = r->requested - s->size + size;
    r->requested_all += size;
    s->ptr = p;
    s->size = size;
    stamp(s);
}

/* Sorts the live slots by address (heapsort: no recursion, no allocation). */
static void sift_down(pk_driver_slot *slots, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n) {
            return;
        }
        if (child + 1 < n && (uintptr_t)slots[child + 1].ptr > (uintptr_t)slots[child].ptr) {
            child++;
        }
        if ((uintptr_t)slots[root].ptr >= (uintptr_t)slots[child].ptr) {
            return;
        }
        pk_driver_slot t = slots[root];
        slots[root] = slots[child];
        slots[child] = t;
        root = child;
    }
}

static void sort_by_address(pk_driver_slot *slots, size_t n)
{
    for (size_t i = n / 2; i-- > 0;) {
        sift_down(slots, i, n);
    }
    for (size_t end = n; end-- > 1;) {
        pk_driver_slot t = slots[0];
        slots[0] = slots[end];
        slots[end] = t;
        sift_down(slots, 0, end);
    }
}

static void check_stats(run *r)
{
    const pk_driver_config *cfg = r->cfg;
    pk_stats s;
    pk_stats_get(r->a, &s);
    size_t live = r->base.live + (cfg->frees_reclaim_nothing ? r->result.allocs : r->live);
    if (s.live != live) {
        fail(r, "stats.live differs from the shadow");
    }
    if (cfg->realloc_percent == 0
            ? s.allocs - r->base.allocs != r->result.allocs || s.frees - r->base.frees != r->result.frees
            : (s.allocs - s.frees) - (r->base.allocs - r->base.frees) != r->live) {
        fail(r, "stats.allocs or stats.frees differ from the shadow");
    }
    if (s.failures - r->base.failures != r->result.failures) {
        fail(r, "stats.failures differs from the failures seen");
    }
    if (s.rejected != r->base.rejected) {
        fail(r, "stats.rejected moved without misuse");
    }
    size_t largest_bound = cfg->grows_on_demand && s.free_bytes < cfg->block_size ? cfg->block_size
                                                                                   : s.free_bytes;
    if (s.requested > s.in_use || s.in_use > s.capacity || s.free_bytes > s.capacity - s.in_use ||
        s.largest_free > largest_bound) {
        fail(r, "stats inconsistent (requested <= in_use <= capacity, largest_free <= free_bytes)");
    }
    size_t requested = r->base.requested + (cfg->frees_reclaim_nothing ? r->requested_all : r->requested);
    if (cfg->requested_exact ? s.requested != requested : s.requested < requested) {
        fail(r, "stats.requested differs from the sum of requests");
    }
    if (cfg->frees_reclaim_nothing) {
        if (s.in_use < r->in_use || s.in_use < r->base.in_use) {
            fail(r, "stats.in_use went down although frees reclaim nothing");
        }
        r->in_use = s.in_use;
    }
    if (s.peak_live < live || s.peak_live < r->result.max_live || s.peak_in_use < s.in_use) {
        fail(r, "peaks below current or seen values");
    }
    if (cfg->block_size != 0 &&
        (s.block_size != cfg->block_size || s.in_use != live * cfg->block_size ||
         s.free_bytes != s.capacity - s.in_use ||
         (s.free_bytes != 0 ? s.largest_free != cfg->block_size
                            : s.largest_free != 0 && !(cfg->grows_on_demand && s.largest_free == cfg->block_size)))) {
        fail(r, "fixed-size stats inconsistent");
    }
}

static void full_check(run *r, bool sort)
{
    r->result.checks++;
    if (pk_check(r->a) != PK_OK) {
        fail(r, "check failed");
    }
    check_stats(r);
    if (sort) {
        pk_driver_slot *slots = r->cfg->slots;
        sort_by_address(slots, r->live);
        for (size_t i = 1; i < r->live; i++) {
            if ((uintptr_t)slots[i - 1].ptr + slots[i - 1].size > (uintptr_t)slots[i].ptr) {
                fail(r, "live blocks overlap");
            }
        }
    }
}

enum { PHASE_GROWTH, PHASE_STEADY, PHASE_SHRINK, PHASE_DRAIN, PHASES };

unsigned pk_driver_run(pk_allocator *a, const pk_driver_config *cfg, pk_driver_result *out)
{
    run r;
    memset(&r, 0, sizeof r);
    r.a = a;
    r.cfg = cfg;
    r.rng = cfg->seed;
    pk_stats_get(a, &r.base);

    /* Percent chance of an alloc per phase; the drain only frees. */
    static const unsigned alloc_percent[PHASES] = {80, 50, 20, 0};
    size_t phase_length = cfg->ops / 16 < 64 ? 64 : cfg->ops / 16;
    unsigned phase = PHASE_GROWTH;
    size_t phase_start = 0;
    full_check(&r, true);
    for (r.op = 0; r.op < cfg->ops && r.problems == 0; r.op++) {
        bool phase_over = phase == PHASE_DRAIN ? r.live == 0 : r.op - phase_start >= phase_length;
        if (phase_over) {
            phase = (phase + 1) % PHASES;
            phase_start = r.op;
            full_check(&r, true);
        }
        bool alloc = r.live == 0 ||
                     (r.live < cfg->slot_count && below(&r.rng, 100) < alloc_percent[phase]);
        if (alloc) {
            do_alloc(&r);
        } else if (cfg->realloc_percent != 0 && below(&r.rng, 100) < cfg->realloc_percent) {
            do_realloc(&r, (size_t)below(&r.rng, r.live));
        } else {
            do_free(&r, (size_t)below(&r.rng, r.live));
        }
        if (r.op < PK_DRIVER_CHECK_ALL || r.op % PK_DRIVER_CHECK_EVERY == 0) {
            full_check(&r, r.op >= PK_DRIVER_CHECK_ALL);
        }
    }
    while (r.live > 0 && r.problems == 0) {
        do_free(&r, r.live - 1);
    }
    if (r.problems == 0) {
        full_check(&r, false);
    }
    r.result.ops = r.op;
    if (out != NULL) {
        *out = r.result;
    }
    return r.problems;
}

/* Misuse checks. */

typedef struct {
    unsigned calls;
    pk_fault last;
} fault_log;

static void log_fault(const pk_fault *f, void *ctx)
{
    fault_log *log = ctx;
    log->calls++;
    log->last = *f;
}

typedef struct {
    pk_allocator *a;
    const pk_misuse_config *cfg;
    fault_log log;
    unsigned problems;
} misuse;

static void misuse_fail(misuse *m, const char *case_name, const char *what)
{
    m->problems++;
    if (m->cfg->report == NULL) {
        return;
    }
    line l = {{0}, 0};
    put(&l, "misuse[");
    put(&l, pk_name(m->a));
    put(&l, "] ");
    put(&l, case_name);
    put(&l, ": ");
    put(&l, what);
    m->cfg->report(m->cfg->report_ctx, l.text);
}

/* Field by field: where uint64_t is 8-byte aligned in structs (Arm's AAPCS)
 * pk_stats has padding before allocs, which memcmp would compare. */
static bool same_stats_but_rejected(const pk_stats *before, const pk_stats *after)
{
    return before->capacity == after->capacity && before->in_use == after->in_use &&
           before->requested == after->requested && before->peak_in_use == after->peak_in_use &&
           before->free_bytes == after->free_bytes && before->largest_free == after->largest_free &&
           before->block_size == after->block_size && before->live == after->live &&
           before->peak_live == after->peak_live && before->allocs == after->allocs &&
           before->frees == after->frees && before->failures == after->failures &&
           before->rejected + 1 == after->rejected;
}

/* Frees ptr expecting `kind`: one handler call naming the allocator and ptr,
 * the status returned, only `rejected` changed, and check still clean. */
static void expect_rejected_free(misuse *m, const char *case_name, void *ptr, pk_status kind)
{
    pk_stats before, after;
    pk_stats_get(m->a, &before);
    m->log.calls = 0;
    pk_status st = pk_free(m->a, ptr);
    if (st != kind) {
        misuse_fail(m, case_name, "wrong status returned");
    }
    if (m->log.calls != 1) {
        misuse_fail(m, case_name, "fault handler not called exactly once");
    } else if (m->log.last.kind != kind || m->log.last.ptr != ptr ||
               m->log.last.allocator == NULL ||
               strcmp(m->log.last.allocator, pk_name(m->a)) != 0) {
        misuse_fail(m, case_name, "fault does not name the kind, pointer and allocator");
    }
    pk_stats_get(m->a, &after);
    if (!same_stats_but_rejected(&before, &after)) {
        misuse_fail(m, case_name, "a rejected free changed the stats beyond `rejected`");
    }
    m->log.calls = 0;
    if (pk_check(m->a) != PK_OK || m->log.calls != 0) {
        misuse_fail(m, case_name, "check fails after a rejected free");
    }
}

/* Blocks the capacity check can count at any size (see below). */
#define CAPACITY_TABLE 4096u

unsigned pk_driver_misuse(pk_allocator *a, const pk_misuse_config *cfg)
{
    misuse m;
    memset(&m, 0, sizeof m);
    m.a = a;
    m.cfg = cfg;
    pk_set_fault_handler(log_fault, &m.log);

    static unsigned char foreign[64];
    unsigned char *p = pk_alloc(a, cfg->alloc_size);
    unsigned char *q = pk_alloc(a, cfg->alloc_size);
    if (p == NULL || q == NULL) {
        misuse_fail(&m, "setup", "cannot allocate two blocks");
        pk_set_fault_handler(NULL, NULL);
        return m.problems;
    }
    expect_rejected_free(&m, "foreign pointer", &foreign[16], PK_ERR_FOREIGN_PTR);
    expect_rejected_free(&m, "pointer past the region", (unsigned char *)cfg->region + cfg->region_size + 64,
                         PK_ERR_FOREIGN_PTR);
    if (cfg->catches_interior) {
        expect_rejected_free(&m, "interior pointer", p + 1, PK_ERR_MISALIGNED_PTR);
        expect_rejected_free(&m, "interior pointer (last byte)", p + cfg->alloc_size - 1,
                             PK_ERR_MISALIGNED_PTR);
    }
    m.log.calls = 0;
    if (pk_free(a, q) != PK_OK || m.log.calls != 0) {
        misuse_fail(&m, "double free", "first free failed");
    }
    if (!cfg->skips_double_free) {
        expect_rejected_free(&m, "double free", q, PK_ERR_DOUBLE_FREE);
    }
    m.log.calls = 0;
    if (pk_free(a, NULL) != PK_OK || m.log.calls != 0) {
        misuse_fail(&m, "free(NULL)", "not a silent no-op");
    }
    if (pk_free(a, p) != PK_OK) {
        misuse_fail(&m, "cleanup", "free of a live block refused");
    }
    if (!cfg->skips_double_free) {
        expect_rejected_free(&m, "double free after the pool emptied", p, PK_ERR_DOUBLE_FREE);
    }

    /* Nothing was lost: every block can still be had, and given back. The
     * blocks are kept in a table, or when more than it holds, chained
     * through themselves (blocks of a pointer or more: writing a link into a
     * smaller one would overflow it). */
    if (cfg->capacity_blocks > CAPACITY_TABLE && cfg->alloc_size < sizeof(void *)) {
        misuse_fail(&m, "capacity", "too many blocks to count at this size (see CAPACITY_TABLE)");
    } else if (cfg->capacity_blocks != 0) {
        static void *table[CAPACITY_TABLE];
        bool chained = cfg->capacity_blocks > CAPACITY_TABLE;
        size_t got = 0;
        void *head = NULL;
        for (void *b; (b = pk_alloc(a, cfg->alloc_size)) != NULL; got++) {
            if (chained) {
                memcpy(b, &head, sizeof head);
                head = b;
            } else if (got < CAPACITY_TABLE) {
                table[got] = b;
            } else { /* more than the capacity: counted, given back, and enough */
                (void)pk_free(a, b);
                got++;
                break;
            }
        }
        if (got != cfg->capacity_blocks) {
            misuse_fail(&m, "capacity", "blocks lost after the misuse");
        }
        for (size_t i = 0; !chained && i < got && i < CAPACITY_TABLE; i++) {
            if (pk_free(a, table[i]) != PK_OK) {
                misuse_fail(&m, "capacity", "free refused");
            }
        }
        while (head != NULL) {
            void *next;
            memcpy(&next, head, sizeof next);
            if (pk_free(a, head) != PK_OK) {
                misuse_fail(&m, "capacity", "free refused");
            }
            head = next;
        }
    }
    m.log.calls = 0;
    if (pk_check(a) != PK_OK || m.log.calls != 0) {
        misuse_fail(&m, "end", "check fails");
    }
    pk_set_fault_handler(NULL, NULL);
    return m.problems;
}
