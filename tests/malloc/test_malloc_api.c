/* The contract of libpoolkit-malloc (issue 9) as a test of the malloc
 * family's API with glibc's semantics: every function, alignment, zeroing,
 * contents kept by realloc, EINVAL and ENOMEM, frees across threads, malloc
 * in a child after fork, allocation before main, and pointers from glibc's
 * own allocator handed to free and realloc.
 *
 * The calls go through PKM() (api_names.h), so one source runs three ways:
 * - plainly, against glibc (ctest: malloc_api_glibc), which shows the test
 *   describes glibc's behaviour;
 * - preloaded: LD_PRELOAD=<lib> test_malloc_api, against whatever the
 *   library interposes; with PKM_EXPECT_LIB=<text> in the environment,
 *   functions_come_from_the_preloaded_library checks that every function
 *   resolves to a loaded object whose path contains <text> (skipped when
 *   unset);
 * - built with -DPKM_PREFIX and linked with a prefixed build of the drop-in
 *   (pkm_malloc, ...), e.g. under ThreadSanitizer.
 * Under a sanitizer without PKM_PREFIX the allocator under test is the
 * sanitizer's: it is told to return NULL rather than abort on impossible
 * requests, aligned_alloc gets sizes that are multiples of the alignment (it
 * refuses others: C11's rule, which glibc does not apply). Under any
 * sanitizer the test of glibc's pointers is skipped (see
 * libc_allocated_blocks_freed_and_reallocated). Under valgrind (detected by
 * its LD_PRELOAD) the allocator is valgrind's: pvalloc, which stops it, and
 * the impossible requests, which it reports as errors and fails without
 * errno, are left out.
 *
 * Failures on other threads and in forked children cannot use cmocka's
 * asserts: threads record the first failure (thread_fail_at), children exit
 * with a status that the parent checks.
 *
 * Usage: test_malloc_api [PATTERN] runs the tests whose names match PATTERN
 * (cmocka's filter: * and ? wildcards), or all; exit status 0 when none
 * failed. Output: cmocka's, one "[       OK ] name" (or FAILED, SKIPPED) per
 * test, a failure preceded by a line saying what was expected and what
 * happened.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "api_names.h"
#include "thread_failures.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PKM_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PKM_TEST_SANITIZED 1
#endif
#endif
#if defined(PKM_TEST_SANITIZED) && !defined(PKM_PREFIX)
#define SANITIZER_IS_THE_ALLOCATOR 1
#endif

#ifdef PKM_TEST_SANITIZED
/* Impossible requests must return NULL (with ENOMEM or EINVAL), as glibc's
 * do, instead of stopping the program with a report. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "allocator_may_return_null=1";
}
#endif

/* glibc's own allocator, under the names it exports for this purpose. */
extern void *__libc_malloc(size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

#define KIB ((size_t)1024)
#define MIB (KIB * KIB)
#define MAX_LIVE 1100      /* blocks held at once by one check */

static size_t page_size;

/* cmocka's fail_msg, at the caller's line, as a function that the compiler
 * and the analyzer know does not return (cmocka's _fail jumps back into the
 * runner). */
__attribute__((format(printf, 3, 4))) static _Noreturn void fail_at_line(const char *file, int line,
                                                                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint_error(fmt, ap);
    va_end(ap);
    print_error("\n");
    _fail(file, line);
    abort(); /* not reached */
}
#define fail_test(...) fail_at_line(__FILE__, __LINE__, __VA_ARGS__)

#define CHECK(cond, ...)                                                                                          \
    do {                                                                                                          \
        if (!(cond)) {                                                                                            \
            fail_test(__VA_ARGS__);                                                                               \
        }                                                                                                         \
    } while (0)

/* ---- Failures seen on other threads. */


static void assert_no_thread_failure(void)
{
    char first[256];
    unsigned count = thread_failures_take(first, sizeof first);
    CHECK(count == 0, "%u failure(s) on other threads; the first: %s", count, first);
}

/* ---- Helpers. */

/* Hides a constant from the compiler, which would otherwise reject calls
 * whose size it knows to be impossible (-Walloc-size-larger-than). */
static size_t opaque(size_t n)
{
    volatile size_t hidden = n;
    return hidden;
}

/* The pattern a block is stamped with, a 64-bit word at a time: a mix of the
 * word's index and the seed, so that a block overlapping another at any
 * offset differs from it somewhere, and blocks of different seeds differ.
 * Byte i is byte i % 8 of word i / 8 as memory holds it. */
static uint64_t pattern_word(size_t w, unsigned seed)
{
    uint64_t x = (uint64_t)w * UINT64_C(0x9E3779B97F4A7C15) + seed;
    x ^= x >> 29;
    x *= UINT64_C(0xBF58476D1CE4E5B9);
    return x ^ (x >> 32);
}

static unsigned char pattern_byte(size_t i, unsigned seed)
{
    uint64_t word = pattern_word(i / 8, seed);
    unsigned char bytes[8];
    memcpy(bytes, &word, sizeof bytes);
    return bytes[i % 8];
}

static void fill(void *block, size_t n, unsigned seed)
{
    unsigned char *b = block;
    size_t words = n / 8;
    for (size_t w = 0; w < words; w++) {
        uint64_t word = pattern_word(w, seed);
        memcpy(b + 8 * w, &word, sizeof word);
    }
    for (size_t i = 8 * words; i < n; i++) {
        b[i] = pattern_byte(i, seed);
    }
}

/* The offset of the first byte in [from, to) that is not the pattern's, or
 * to. Whole words are compared a chunk at a time, so that the common case
 * (intact) runs without a branch per word; the bytes are looked at only in a
 * chunk that differs, and at the ends. */
static size_t first_mismatch_in(const void *block, size_t from, size_t to, unsigned seed)
{
    const unsigned char *b = block;
    size_t first_word = (from + 7) / 8, end_word = to / 8;
    size_t check_from = from;
    if (first_word < end_word) {
        for (size_t i = from; i < 8 * first_word; i++) {
            if (b[i] != pattern_byte(i, seed)) {
                return i;
            }
        }
        for (size_t chunk = first_word; chunk < end_word; chunk += 512) {
            size_t chunk_end = end_word - chunk < 512 ? end_word : chunk + 512;
            uint64_t diff = 0;
            for (size_t w = chunk; w < chunk_end; w++) {
                uint64_t word;
                memcpy(&word, b + 8 * w, sizeof word);
                diff |= word ^ pattern_word(w, seed);
            }
            if (diff != 0) {
                for (size_t i = 8 * chunk;; i++) {
                    if (b[i] != pattern_byte(i, seed)) {
                        return i;
                    }
                }
            }
        }
        check_from = 8 * end_word;
    }
    for (size_t i = check_from; i < to; i++) {
        if (b[i] != pattern_byte(i, seed)) {
            return i;
        }
    }
    return to;
}

static size_t first_mismatch(const void *block, size_t n, unsigned seed)
{
    return first_mismatch_in(block, 0, n, seed);
}

static size_t first_nonzero(const void *block, size_t n)
{
    const unsigned char *b = block;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0) {
            return i;
        }
    }
    return n;
}

static size_t round_up(size_t n, size_t multiple)
{
    return (n + multiple - 1) / multiple * multiple;
}

/* The alignment malloc guarantees a block of n bytes: that of max_align_t,
 * or for smaller blocks the largest power of two not above n (no object that
 * small needs more). */
static size_t malloc_alignment(size_t n)
{
    size_t align = _Alignof(max_align_t);
    while (align > 1 && align > n) {
        align /= 2;
    }
    return align;
}

/* Through a volatile: glibc declares memalign and aligned_alloc with
 * alloc_align, so the compiler would take the alignment as given. */
static bool aligned_to(const void *p, size_t align)
{
    volatile uintptr_t address = (uintptr_t)p;
    return address % align == 0;
}

/* The size aligned_alloc is asked for: n, or under a sanitizer n rounded up
 * to a multiple of the alignment (the sanitizers refuse other sizes; a size
 * too large to round up is rounded down, and is still impossible). */
static size_t aligned_alloc_size(size_t align, size_t n)
{
#ifdef SANITIZER_IS_THE_ALLOCATOR
    if (n > SIZE_MAX - (align - 1)) {
        return n / align * align;
    }
    return round_up(n, align);
#else
    (void)align;
    return n;
#endif
}

/* The bytes of a block of n bytes the tests write: all the usable ones,
 * except under a sanitizer, whose usable size is its own bookkeeping
 * (ThreadSanitizer gives a zero-byte block a usable size of 1, and reports
 * a write to that byte). */
static size_t writable_size(size_t n, size_t usable)
{
#ifdef SANITIZER_IS_THE_ALLOCATOR
    (void)usable;
    return n;
#else
    (void)n;
    return usable;
#endif
}

/* ---- Every way of allocating a block, for the tests that take them all. */

#define PAGE_ALIGNED SIZE_MAX /* alignment: the page size */

typedef struct {
    const char *name;
    void *(*allocate)(size_t n);
    size_t alignment; /* promised beyond malloc's (0: none), or PAGE_ALIGNED */
    bool zeroed;
    bool page_rounded; /* usable size covers the request rounded up to a page */
} alloc_kind;

static void *by_malloc(size_t n)
{
    return PKM(malloc)(n);
}

static void *by_calloc(size_t n)
{
    return PKM(calloc)(1, n);
}

static void *by_realloc_of_null(size_t n)
{
    return PKM(realloc)(NULL, n);
}

static void *by_reallocarray_of_null(size_t n)
{
    return PKM(reallocarray)(NULL, n, 1);
}

static void *by_posix_memalign_64(size_t n)
{
    void *p = NULL;
    return PKM(posix_memalign)(&p, 64, n) == 0 ? p : NULL;
}

static void *by_aligned_alloc_128(size_t n)
{
    return PKM(aligned_alloc)(128, aligned_alloc_size(128, n));
}

static void *by_memalign_256(size_t n)
{
    return PKM(memalign)(256, n);
}

static void *by_valloc(size_t n)
{
    return PKM(valloc)(n);
}

static void *by_pvalloc(size_t n)
{
    return PKM(pvalloc)(n);
}

static const alloc_kind kinds[] = {
    {"malloc", by_malloc, 0, false, false},
    {"calloc", by_calloc, 0, true, false},
    {"realloc(NULL, n)", by_realloc_of_null, 0, false, false},
    {"reallocarray(NULL, n, 1)", by_reallocarray_of_null, 0, false, false},
    {"posix_memalign(64)", by_posix_memalign_64, 64, false, false},
    {"aligned_alloc(128)", by_aligned_alloc_128, 128, false, false},
    {"memalign(256)", by_memalign_256, 256, false, false},
    {"valloc", by_valloc, PAGE_ALIGNED, false, false},
    {"pvalloc", by_pvalloc, PAGE_ALIGNED, false, true}, /* last: see kind_count */
};

/* Under valgrind, whose allocator stops the program on pvalloc, the tests
 * leave pvalloc out (and skip the impossible requests, see
 * calloc_and_reallocarray_overflow_is_enomem). */
static bool valgrind_is_the_allocator;
static size_t kind_count;

static bool under_valgrind(void)
{
    const char *preload = getenv("LD_PRELOAD"); /* valgrind preloads its vgpreload_*.so */
    return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

static size_t kind_alignment(const alloc_kind *kind, size_t n)
{
    size_t align = malloc_alignment(n);
    size_t promised = kind->alignment == PAGE_ALIGNED ? page_size : kind->alignment;
    return promised > align ? promised : align;
}

static size_t kind_least_usable(const alloc_kind *kind, size_t n)
{
    return kind->page_rounded ? round_up(n, page_size) : n;
}

/* ---- Sets of live blocks: none overlaps another, each keeps its pattern. */

typedef struct {
    unsigned char *ptr;
    size_t size; /* stamped with the pattern */
    size_t usable;
    unsigned seed;
} live_block;

static live_block live[MAX_LIVE];
static size_t live_count;

/* Allocates n bytes with kind, checks what the block promises (alignment,
 * a usable size covering the request, zeroing), stamps all its usable bytes
 * and keeps it in `live`. */
static void allocate_live(const alloc_kind *kind, size_t n)
{
    assert_true(live_count < MAX_LIVE);
    unsigned char *p = kind->allocate(n);
    CHECK(p != NULL, "%s(%zu) returned NULL", kind->name, n);
    size_t align = kind_alignment(kind, n);
    CHECK(aligned_to(p, align), "%s(%zu) returned %p, not aligned to %zu", kind->name, n, (void *)p, align);
    size_t usable = PKM(malloc_usable_size)(p);
    CHECK(usable >= kind_least_usable(kind, n), "%s(%zu): malloc_usable_size %zu, below %zu", kind->name, n, usable,
          kind_least_usable(kind, n));
    if (kind->zeroed) {
        size_t at = first_nonzero(p, n);
        CHECK(at == n, "%s(%zu): byte %zu not zero", kind->name, n, at);
    }
    unsigned seed = (unsigned)live_count * 13u + 1u;
    size_t written = writable_size(n, usable);
    fill(p, written, seed);
    live[live_count++] = (live_block){p, written, usable, seed};
}

static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const live_block *)a)->ptr;
    uintptr_t y = (uintptr_t)((const live_block *)b)->ptr;
    return (x > y) - (x < y);
}

/* No two live blocks share a byte of their usable sizes, and every block
 * still holds its pattern; then all are freed. */
static void check_and_free_live(const char *what)
{
    qsort(live, live_count, sizeof live[0], by_address);
    for (size_t i = 0; i + 1 < live_count; i++) {
        CHECK(live[i].ptr + live[i].usable <= live[i + 1].ptr,
              "%s: block %p (usable %zu, asked %zu) overlaps block %p (asked %zu)", what, (void *)live[i].ptr,
              live[i].usable, live[i].size, (void *)live[i + 1].ptr, live[i + 1].size);
    }
    for (size_t i = 0; i < live_count; i++) {
        size_t at = first_mismatch(live[i].ptr, live[i].size, live[i].seed);
        CHECK(at == live[i].size, "%s: block %p of %zu bytes changed at byte %zu while live", what,
              (void *)live[i].ptr, live[i].size, at);
    }
    for (size_t i = 0; i < live_count; i++) {
        PKM(free)(live[i].ptr);
    }
    live_count = 0;
}

/* Every kind of allocation for every size in sizes, all of one kind live at
 * once: aligned, usable size covering the request, every usable byte
 * written, none overlapping another, all keeping their bytes until freed. */
static void check_every_kind(const size_t *sizes, size_t count)
{
    for (size_t k = 0; k < kind_count; k++) {
        for (size_t i = 0; i < count; i++) {
            allocate_live(&kinds[k], sizes[i]);
        }
        check_and_free_live(kinds[k].name);
    }
}

/* ---- The size ranges. */

/* 0 to 1 KiB, every size. */
static size_t small_sizes(size_t *out)
{
    size_t count = 0;
    for (size_t n = 0; n <= KIB; n++) {
        out[count++] = n;
    }
    return count;
}

/* 1 KiB to 1 MiB: each power of two and its neighbours, and sizes growing by
 * an eighth in between. */
static size_t medium_sizes(size_t *out)
{
    size_t count = 0;
    for (size_t pow2 = KIB; pow2 <= MIB; pow2 *= 2) {
        out[count++] = pow2 - 1;
        out[count++] = pow2;
        out[count++] = pow2 + 1;
        for (size_t n = pow2 + pow2 / 8 + 3; n < 2 * pow2 - 1 && pow2 < MIB; n += pow2 / 8) {
            out[count++] = n;
        }
    }
    return count;
}

/* 1 MiB to 64 MiB (about 100 MiB in all). */
static size_t large_sizes(size_t *out)
{
    static const size_t sizes[] = {MIB + 1, 2 * MIB - 1, 3 * MIB + 5, 4 * MIB + 4095, 8 * MIB, 16 * MIB + 1,
                                   64 * MIB - 3};
    memcpy(out, sizes, sizeof sizes);
    return sizeof sizes / sizeof sizes[0];
}

static size_t sizes_buffer[MAX_LIVE];

static void every_function_0_to_1k_aligned_disjoint_writable_to_usable_size(void **state)
{
    (void)state;
    check_every_kind(sizes_buffer, small_sizes(sizes_buffer));
}

static void every_function_1k_to_1m_aligned_disjoint_writable_to_usable_size(void **state)
{
    (void)state;
    check_every_kind(sizes_buffer, medium_sizes(sizes_buffer));
}

static void every_function_1m_to_64m_aligned_disjoint_writable_to_usable_size(void **state)
{
    (void)state;
    check_every_kind(sizes_buffer, large_sizes(sizes_buffer));
}

static void usable_size_of_null_is_zero(void **state)
{
    (void)state;
    assert_int_equal(PKM(malloc_usable_size)(NULL), 0);
}

/* ---- Alignment. */

typedef void *(*aligned_fn)(size_t align, size_t n);

static void *posix_memalign_or_null(size_t align, size_t n)
{
    void *p = NULL;
    return PKM(posix_memalign)(&p, align, n) == 0 ? p : NULL;
}

static void *aligned_alloc_any_size(size_t align, size_t n)
{
    return PKM(aligned_alloc)(align, aligned_alloc_size(align, n));
}

static void *memalign_call(size_t align, size_t n)
{
    return PKM(memalign)(align, n);
}

static const struct {
    const char *name;
    aligned_fn allocate;
} aligned_kinds[] = {
    {"posix_memalign", posix_memalign_or_null},
    {"aligned_alloc", aligned_alloc_any_size},
    {"memalign", memalign_call},
};
#define ALIGNED_KIND_COUNT (sizeof aligned_kinds / sizeof aligned_kinds[0])

/* Each power of two from sizeof(void *) to 16 MiB, through the three aligned
 * allocators, for a small, a medium and a large size, all twelve blocks of
 * an alignment live at once. */
static void every_power_of_two_alignment_to_16m(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 200, 40 * KIB, 2 * MIB + 5};
    for (size_t align = sizeof(void *); align <= 16 * MIB; align *= 2) {
        for (size_t k = 0; k < ALIGNED_KIND_COUNT; k++) {
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                size_t n = sizes[s];
                unsigned char *p = aligned_kinds[k].allocate(align, n);
                CHECK(p != NULL, "%s(%zu, %zu) returned NULL", aligned_kinds[k].name, align, n);
                CHECK(aligned_to(p, align), "%s(%zu, %zu) returned %p", aligned_kinds[k].name, align, n, (void *)p);
                size_t usable = PKM(malloc_usable_size)(p);
                CHECK(usable >= n, "%s(%zu, %zu): malloc_usable_size %zu", aligned_kinds[k].name, align, n, usable);
                unsigned seed = (unsigned)live_count + 7u;
                fill(p, n, seed);
                live[live_count++] = (live_block){p, n, usable, seed};
            }
        }
        check_and_free_live("aligned blocks");
    }
}

/* memalign and aligned_alloc take alignments below a pointer's size (glibc
 * gives malloc's alignment); posix_memalign refuses them (below). */
static void small_alignments_accepted_by_memalign_and_aligned_alloc(void **state)
{
    (void)state;
    for (size_t align = 1; align < sizeof(void *); align *= 2) {
        for (size_t n = 1; n <= 64; n += 9) {
            void *p = PKM(memalign)(align, n);
            CHECK(p != NULL && aligned_to(p, align), "memalign(%zu, %zu) returned %p", align, n, p);
            fill(p, n, 1);
            PKM(free)(p);
            p = aligned_alloc_any_size(align, n);
            CHECK(p != NULL && aligned_to(p, align), "aligned_alloc(%zu, %zu) returned %p", align, n, p);
            fill(p, n, 2);
            PKM(free)(p);
        }
    }
}

/* valloc gives page-aligned blocks; pvalloc also rounds the size up to a
 * page multiple, all of it usable. */
static void valloc_page_aligned_and_pvalloc_page_rounded(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, 100, page_size - 1, page_size, page_size + 1, 3 * page_size + 7, 100 * KIB,
                            MIB + 1};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        unsigned char *v = PKM(valloc)(n); // NOLINT(clang-analyzer-optin.portability.UnixAPI): 0 bytes on purpose
        CHECK(v != NULL && aligned_to(v, page_size), "valloc(%zu) returned %p", n, (void *)v);
        size_t usable = PKM(malloc_usable_size)(v);
        CHECK(usable >= n, "valloc(%zu): malloc_usable_size %zu", n, usable);
        fill(v, writable_size(n, usable), 3);
        PKM(free)(v);
        if (valgrind_is_the_allocator) {
            continue;
        }
        unsigned char *pv = PKM(pvalloc)(n);
        CHECK(pv != NULL && aligned_to(pv, page_size), "pvalloc(%zu) returned %p", n, (void *)pv);
        usable = PKM(malloc_usable_size)(pv);
        CHECK(usable >= round_up(n, page_size), "pvalloc(%zu): malloc_usable_size %zu, below %zu", n, usable,
              round_up(n, page_size));
        size_t written = writable_size(round_up(n, page_size), usable);
        fill(pv, written, 4);
        CHECK(first_mismatch(pv, written, 4) == written, "pvalloc(%zu): the rounded-up block did not keep its bytes",
              n);
        PKM(free)(pv);
    }
}

/* ---- calloc. */

/* calloc zeroes memory that was just dirtied and freed, of the same size, so
 * that it is likely to be the same memory, over and over. */
static void calloc_zeroes_reused_memory(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 24, 100, 1000, 4000, 20000, 70 * KIB, 200 * KIB, MIB + MIB / 2, 9 * MIB};
    enum { ROUNDS = 8, MANY = 32 };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        for (int round = 0; round < ROUNDS; round++) {
            unsigned char *dirty = PKM(malloc)(n);
            CHECK(dirty != NULL, "malloc(%zu) returned NULL", n);
            memset(dirty, 0xA5, writable_size(n, PKM(malloc_usable_size)(dirty)));
            PKM(free)(dirty);
            unsigned char *clean = round % 2 == 0 ? PKM(calloc)(n, 1) : PKM(calloc)(1, n);
            CHECK(clean != NULL, "calloc of %zu returned NULL", n);
            size_t at = first_nonzero(clean, n);
            CHECK(at == n, "calloc of %zu bytes, round %d: byte %zu not zero", n, round, at);
            memset(clean, 0x5A, writable_size(n, PKM(malloc_usable_size)(clean)));
            PKM(free)(clean);
        }
    }
    /* Many small blocks dirtied and freed together, then as many calloc'd. */
    for (size_t n = 8; n <= 2 * KIB; n = n * 3 + 1) {
        unsigned char *blocks[MANY];
        for (int i = 0; i < MANY; i++) {
            blocks[i] = PKM(malloc)(n);
            CHECK(blocks[i] != NULL, "malloc(%zu) returned NULL", n);
            memset(blocks[i], 0xFF, n);
        }
        for (int i = 0; i < MANY; i++) {
            PKM(free)(blocks[i]);
        }
        for (int i = 0; i < MANY; i++) {
            blocks[i] = PKM(calloc)(n / 4 + 1, 4);
            CHECK(blocks[i] != NULL, "calloc(%zu, 4) returned NULL", n / 4 + 1);
            size_t at = first_nonzero(blocks[i], n);
            CHECK(at == n, "calloc(%zu, 4) #%d: byte %zu not zero", n / 4 + 1, i, at);
            memset(blocks[i], 0xFF, n);
        }
        for (int i = 0; i < MANY; i++) {
            PKM(free)(blocks[i]);
        }
    }
}

/* Pairs whose product does not fit in a size_t. */
static size_t overflowing_pairs(size_t (*out)[2])
{
    const size_t root = (size_t)1 << (sizeof(size_t) * CHAR_BIT / 2);
    const size_t pairs[][2] = {
        {SIZE_MAX, 2}, {2, SIZE_MAX}, {(SIZE_MAX >> 1) + 1, 2}, {root, root}, /* exactly 2^bits: wraps to 0 */
        {root + 1, root}, {3, SIZE_MAX / 3 + 1}, {SIZE_MAX / 16 + 1, 16}, {65537, SIZE_MAX / 65537 + 1},
    };
    size_t count = sizeof pairs / sizeof pairs[0];
    for (size_t i = 0; i < count; i++) {
        out[i][0] = opaque(pairs[i][0]);
        out[i][1] = opaque(pairs[i][1]);
    }
    return count;
}

static void calloc_and_reallocarray_overflow_is_enomem(void **state)
{
    (void)state;
    if (valgrind_is_the_allocator) {
        skip(); /* valgrind's sets no errno, and reports impossible sizes as errors */
        return;
    }
    size_t pairs[8][2];
    size_t count = overflowing_pairs(pairs);
    unsigned char *kept = PKM(malloc)(300);
    assert_non_null(kept);
    fill(kept, 300, 5);
    for (size_t i = 0; i < count; i++) {
        size_t a = pairs[i][0], b = pairs[i][1];
        errno = 0;
        void *p = PKM(calloc)(a, b);
        CHECK(p == NULL && errno == ENOMEM, "calloc(%zu, %zu): %p, errno %d (want NULL, ENOMEM)", a, b, p, errno);
        errno = 0;
        p = PKM(reallocarray)(NULL, a, b);
        CHECK(p == NULL && errno == ENOMEM, "reallocarray(NULL, %zu, %zu): %p, errno %d (want NULL, ENOMEM)", a, b,
              p, errno);
        errno = 0;
        p = PKM(reallocarray)(kept, a, b);
        CHECK(p == NULL && errno == ENOMEM, "reallocarray(p, %zu, %zu): %p, errno %d (want NULL, ENOMEM)", a, b, p,
              errno);
        CHECK(first_mismatch(kept, 300, 5) == 300, "the block of a failed reallocarray changed");
    }
    PKM(free)(kept);
}

/* ---- Impossible requests. */

static size_t impossible_sizes(size_t *out)
{
    size_t count = 0;
    out[count++] = SIZE_MAX;
    out[count++] = SIZE_MAX - 1;
    out[count++] = SIZE_MAX - 4095;      /* overflows when rounded up to a page */
    out[count++] = SIZE_MAX - 4 * MIB;   /* overflows with a 4 MiB alignment added */
    out[count++] = (SIZE_MAX >> 1) + 1;  /* above PTRDIFF_MAX */
#if SIZE_MAX > 0xffffffffu
    out[count++] = SIZE_MAX >> 1;        /* where no address space is that large */
    out[count++] = (size_t)1 << 62;
#endif
    for (size_t i = 0; i < count; i++) {
        out[i] = opaque(out[i]);
    }
    return count;
}

#define EXPECT_ENOMEM(call, what, n)                                                                              \
    do {                                                                                                          \
        errno = 0;                                                                                                \
        void *result_ = (call);                                                                                   \
        CHECK(result_ == NULL && errno == ENOMEM, "%s of %zu: %p, errno %d (want NULL, ENOMEM)", what, n,        \
              result_, errno);                                                                                    \
    } while (0)

static void impossible_sizes_are_null_and_enomem(void **state)
{
    (void)state;
    if (valgrind_is_the_allocator) {
        skip(); /* as for calloc_and_reallocarray_overflow_is_enomem */
        return;
    }
    size_t sizes[8];
    size_t count = impossible_sizes(sizes);
    unsigned char *kept = PKM(malloc)(5000);
    assert_non_null(kept);
    fill(kept, 5000, 6);
    for (size_t i = 0; i < count; i++) {
        size_t n = sizes[i];
        EXPECT_ENOMEM(PKM(malloc)(n), "malloc", n);
        EXPECT_ENOMEM(PKM(calloc)(1, n), "calloc(1, n)", n);
        EXPECT_ENOMEM(PKM(calloc)(n, 1), "calloc(n, 1)", n);
        EXPECT_ENOMEM(PKM(realloc)(NULL, n), "realloc(NULL, n)", n);
        EXPECT_ENOMEM(PKM(realloc)(kept, n), "realloc(p, n)", n);
        CHECK(first_mismatch(kept, 5000, 6) == 5000, "the block of a failed realloc changed");
        EXPECT_ENOMEM(PKM(reallocarray)(NULL, n, 1), "reallocarray(NULL, n, 1)", n);
        EXPECT_ENOMEM(PKM(aligned_alloc)(64, aligned_alloc_size(64, n)), "aligned_alloc(64, n)", n);
        EXPECT_ENOMEM(PKM(memalign)(64, n), "memalign(64, n)", n);
        EXPECT_ENOMEM(PKM(memalign)(4 * MIB, n), "memalign(4 MiB, n)", n);
        EXPECT_ENOMEM(PKM(valloc)(n), "valloc", n);
        EXPECT_ENOMEM(PKM(pvalloc)(n), "pvalloc", n);
        void *untouched = &untouched;
        int status = PKM(posix_memalign)(&untouched, 64, n);
        CHECK(status == ENOMEM && untouched == &untouched, "posix_memalign(64, %zu): %d, *memptr %p", n, status,
              untouched);
    }
#ifndef SANITIZER_IS_THE_ALLOCATOR /* AddressSanitizer (clang 14) stops on a failed internal check */
    /* An alignment as large as a size_t holds (a power of two). */
    const size_t huge_align = opaque((SIZE_MAX >> 1) + 1);
    EXPECT_ENOMEM(PKM(memalign)(huge_align, 1), "memalign(2^(bits-1), n)", (size_t)1);
    EXPECT_ENOMEM(PKM(aligned_alloc)(huge_align, aligned_alloc_size(huge_align, 1)), "aligned_alloc(2^(bits-1), n)",
                  (size_t)1);
    void *untouched = &untouched;
    int status = PKM(posix_memalign)(&untouched, huge_align, 1);
    CHECK(status == ENOMEM && untouched == &untouched, "posix_memalign(2^(bits-1), 1): %d, *memptr %p", status,
          untouched);
#endif
    PKM(free)(kept);
}

/* An alignment that is not a power of two times sizeof(void *) is EINVAL,
 * and *memptr is left alone. */
static void posix_memalign_bad_alignment_is_einval(void **state)
{
    (void)state;
    const size_t bad[] = {0,  1, 2, 3, sizeof(void *) / 2, 24, 3 * sizeof(void *), 48, 4096 + sizeof(void *),
                          SIZE_MAX, SIZE_MAX >> 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (size_t n = 0; n <= 4096; n += 4096) {
            void *untouched = &untouched;
            int status = PKM(posix_memalign)(&untouched, opaque(bad[i]), n);
            CHECK(status == EINVAL && untouched == &untouched,
                  "posix_memalign(%zu, %zu): returned %d, *memptr %p (want EINVAL, untouched)", bad[i], n, status,
                  untouched);
        }
    }
}

/* ---- realloc. */

/* Every transition between a set of sizes from small to large, both ways:
 * the common prefix survives, the new block is wholly writable. */
static void realloc_keeps_contents_between_all_sizes(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 24, 200, 1000, 5000, 70 * KIB, 300 * KIB, MIB + MIB / 2, 9 * MIB};
    enum { SIZE_COUNT = sizeof sizes / sizeof sizes[0] };
    for (size_t from = 0; from < SIZE_COUNT; from++) {
        for (size_t to = 0; to < SIZE_COUNT; to++) {
            size_t a = sizes[from], b = sizes[to];
            unsigned char *p = PKM(malloc)(a);
            CHECK(p != NULL, "malloc(%zu) returned NULL", a);
            fill(p, a, 8);
            unsigned char *q = PKM(realloc)(p, b);
            CHECK(q != NULL, "realloc from %zu to %zu returned NULL", a, b);
            size_t kept = a < b ? a : b;
            size_t at = first_mismatch(q, kept, 8);
            CHECK(at == kept, "realloc from %zu to %zu: byte %zu lost", a, b, at);
            CHECK(PKM(malloc_usable_size)(q) >= b, "realloc from %zu to %zu: usable %zu", a, b,
                  PKM(malloc_usable_size)(q));
            fill(q, b, 9);
            PKM(free)(q);
        }
    }
}

/* Resizes p of n bytes (stamped with seed) to target one byte at a time,
 * checking the kept bytes each time: all of them when the block moved, its
 * first and last KiB when it stayed; returns the block. */
static unsigned char *resize_bytewise(unsigned char *p, size_t n, size_t target, unsigned seed)
{
    while (n != target) {
        size_t next = n < target ? n + 1 : n - 1;
        uintptr_t old_address = (uintptr_t)p;
        unsigned char *q = PKM(realloc)(p, next);
        CHECK(q != NULL, "realloc from %zu to %zu returned NULL", n, next);
        size_t kept = n < next ? n : next;
        size_t at;
        if ((uintptr_t)q == old_address && kept > 2 * KIB) {
            at = first_mismatch(q, KIB, seed);
            if (at == KIB) {
                at = first_mismatch_in(q, kept - KIB, kept, seed);
            }
        } else {
            at = first_mismatch(q, kept, seed);
        }
        CHECK(at == kept, "realloc from %zu to %zu: byte %zu lost", n, next, at);
        if (next > n) {
            q[n] = pattern_byte(n, seed);
        }
        p = q;
        n = next;
    }
    return p;
}

/* Growth by one byte from 1 to 4 KiB + 64, then by one byte across each
 * power of two from 8 KiB to 8 MiB, then shrinking the same way back. */
static void realloc_one_byte_steps_over_class_boundaries(void **state)
{
    (void)state;
    enum { SEED = 10, MARGIN = 24 };
    unsigned char *p = PKM(malloc)(1);
    assert_non_null(p);
    p[0] = pattern_byte(0, SEED);
    size_t n = 1;
    p = resize_bytewise(p, n, 4 * KIB + 64, SEED);
    n = 4 * KIB + 64;
    for (size_t boundary = 8 * KIB; boundary <= 8 * MIB; boundary *= 2) {
        unsigned char *q = PKM(realloc)(p, boundary - MARGIN);
        CHECK(q != NULL, "realloc to %zu returned NULL", boundary - MARGIN);
        CHECK(first_mismatch(q, n, SEED) == n, "realloc from %zu to %zu lost bytes", n, boundary - MARGIN);
        fill(q, boundary - MARGIN, SEED);
        p = resize_bytewise(q, boundary - MARGIN, boundary + MARGIN, SEED);
        n = boundary + MARGIN;
    }
    for (size_t boundary = 8 * MIB; boundary >= 8 * KIB; boundary /= 2) {
        unsigned char *q = PKM(realloc)(p, boundary + MARGIN);
        CHECK(q != NULL, "realloc to %zu returned NULL", boundary + MARGIN);
        n = boundary + MARGIN;
        CHECK(first_mismatch(q, n, SEED) == n, "shrinking to %zu lost bytes", n);
        p = resize_bytewise(q, n, boundary - MARGIN, SEED);
        n = boundary - MARGIN;
    }
    p = resize_bytewise(p, n, 1, SEED);
    PKM(free)(p);
}

static void realloc_of_null_allocates(void **state)
{
    (void)state;
    for (size_t n = 0; n <= 2 * MIB; n = n * 4 + 1) {
        unsigned char *p = PKM(realloc)(NULL, n); // NOLINT(clang-analyzer-optin.portability.UnixAPI): 0 too
        CHECK(p != NULL, "realloc(NULL, %zu) returned NULL", n);
        CHECK(PKM(malloc_usable_size)(p) >= n, "realloc(NULL, %zu): usable %zu", n, PKM(malloc_usable_size)(p));
        fill(p, n, 11);
        PKM(free)(p);
    }
}

/* glibc: realloc(p, 0) frees p and returns NULL (a leak would show under the
 * sanitizers and valgrind). */
static void realloc_to_zero_frees_and_returns_null(void **state)
{
    (void)state;
    const size_t sizes[] = {1, 100, 5000, 300 * KIB, 3 * MIB};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        unsigned char *p = PKM(malloc)(sizes[s]);
        CHECK(p != NULL, "malloc(%zu) returned NULL", sizes[s]);
        fill(p, sizes[s], 12);
        void *q = PKM(realloc)(p, 0); // NOLINT(clang-analyzer-optin.portability.UnixAPI): the call under test
        CHECK(q == NULL, "realloc(p of %zu, 0) returned %p, not NULL", sizes[s], q);
    }
}

static void free_of_null_does_nothing(void **state)
{
    (void)state;
    errno = 1234;
    PKM(free)(NULL);
    assert_int_equal(errno, 1234);
}

/* ---- Threads. */

/* A block in flight from one thread to another. */
typedef struct {
    unsigned char *ptr;
    size_t size;
    unsigned seed;
} parcel;

static uint32_t next_random(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/* A size of the mix the thread tests allocate: mostly small, some medium,
 * one in 64 large (up to 2 MiB). */
static size_t random_size(uint32_t *rng)
{
    uint32_t r = next_random(rng);
    switch (r % 64) {
    case 0:
        return MIB + (r >> 8) % MIB;
    case 1:
    case 2:
    case 3:
        return KIB + (r >> 8) % (256 * KIB);
    default:
        return (r >> 8) % (KIB + 1);
    }
}

/* Allocates and stamps a block of a random size and kind; records a failure
 * and returns a parcel with a NULL ptr if that fails. */
static parcel make_parcel(uint32_t *rng, unsigned seed)
{
    const alloc_kind *kind = &kinds[next_random(rng) % kind_count];
    size_t n = random_size(rng);
    unsigned char *p = kind->allocate(n);
    if (p == NULL) {
        THREAD_FAIL("%s(%zu) returned NULL", kind->name, n);
    } else if (!aligned_to(p, kind_alignment(kind, n))) {
        THREAD_FAIL("%s(%zu) returned %p", kind->name, n, (void *)p);
    } else {
        fill(p, n, seed);
    }
    return (parcel){p, n, seed};
}

/* Checks and frees a parcel (another thread's, often). */
static void open_parcel(parcel x)
{
    if (x.ptr == NULL) {
        return;
    }
    size_t at = first_mismatch(x.ptr, x.size, x.seed);
    if (at != x.size) {
        THREAD_FAIL("block %p of %zu bytes changed at byte %zu before its free", (void *)x.ptr, x.size, at);
    }
    if (PKM(malloc_usable_size)(x.ptr) < x.size) {
        THREAD_FAIL("block %p of %zu bytes: usable size %zu", (void *)x.ptr, x.size, PKM(malloc_usable_size)(x.ptr));
    }
    PKM(free)(x.ptr);
}

/* Producers hand blocks to consumers through a bounded queue. */
enum { PRODUCERS = 3, CONSUMERS = 3, PER_PRODUCER = 4000, QUEUE_CAPACITY = 64 };

static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    parcel items[QUEUE_CAPACITY];
    size_t head, count;
    unsigned producers_left;
    unsigned long consumed;
} queue = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, {{0}}, 0, 0, 0, 0};

static void *producer(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint32_t rng = 0x9E3779B9u * (id + 1);
    for (unsigned i = 0; i < PER_PRODUCER; i++) {
        parcel x = make_parcel(&rng, id * PER_PRODUCER + i);
        pthread_mutex_lock(&queue.lock);
        while (queue.count == QUEUE_CAPACITY) {
            pthread_cond_wait(&queue.not_full, &queue.lock);
        }
        queue.items[(queue.head + queue.count) % QUEUE_CAPACITY] = x;
        queue.count++;
        pthread_cond_signal(&queue.not_empty);
        pthread_mutex_unlock(&queue.lock);
    }
    pthread_mutex_lock(&queue.lock);
    queue.producers_left--;
    pthread_cond_broadcast(&queue.not_empty);
    pthread_mutex_unlock(&queue.lock);
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&queue.lock);
        while (queue.count == 0 && queue.producers_left > 0) {
            pthread_cond_wait(&queue.not_empty, &queue.lock);
        }
        if (queue.count == 0) {
            pthread_mutex_unlock(&queue.lock);
            return NULL;
        }
        parcel x = queue.items[queue.head];
        queue.head = (queue.head + 1) % QUEUE_CAPACITY;
        queue.count--;
        queue.consumed++;
        pthread_cond_signal(&queue.not_full);
        pthread_mutex_unlock(&queue.lock);
        open_parcel(x);
    }
}

/* Blocks of all sizes and kinds allocated on three threads, checked and
 * freed on three others. */
static void frees_across_threads_producers_to_consumers(void **state)
{
    (void)state;
    pthread_t producers[PRODUCERS], consumers[CONSUMERS];
    queue.producers_left = PRODUCERS;
    queue.consumed = 0;
    for (unsigned i = 0; i < CONSUMERS; i++) {
        assert_int_equal(pthread_create(&consumers[i], NULL, consumer, NULL), 0);
    }
    for (unsigned i = 0; i < PRODUCERS; i++) {
        assert_int_equal(pthread_create(&producers[i], NULL, producer, (void *)(uintptr_t)i), 0);
    }
    for (unsigned i = 0; i < PRODUCERS; i++) {
        pthread_join(producers[i], NULL);
    }
    for (unsigned i = 0; i < CONSUMERS; i++) {
        pthread_join(consumers[i], NULL);
    }
    assert_no_thread_failure();
    assert_int_equal(queue.consumed, PRODUCERS * PER_PRODUCER);
}

/* Waves of threads that all hold blocks at once, then free them and exit;
 * each wave's threads are new, so an allocator with per-thread state must
 * let go of the old threads' and serve the new ones. */
enum { WAVES = 6, WAVE_THREADS = 8, WAVE_BLOCKS = 300 };

static pthread_barrier_t wave_barrier;

static void *wave_worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint32_t rng = 0x85EBCA6Bu ^ (id * 0x27D4EB2Fu + 1);
    parcel held[WAVE_BLOCKS];
    for (unsigned i = 0; i < WAVE_BLOCKS; i++) {
        held[i] = make_parcel(&rng, id * WAVE_BLOCKS + i);
    }
    pthread_barrier_wait(&wave_barrier);
    for (unsigned i = 0; i < WAVE_BLOCKS; i++) {
        open_parcel(held[i]);
    }
    return NULL;
}

static void new_threads_after_old_ones_exit(void **state)
{
    (void)state;
    assert_int_equal(pthread_barrier_init(&wave_barrier, NULL, WAVE_THREADS), 0);
    for (unsigned wave = 0; wave < WAVES; wave++) {
        pthread_t threads[WAVE_THREADS];
        for (unsigned t = 0; t < WAVE_THREADS; t++) {
            unsigned id = wave * WAVE_THREADS + t;
            assert_int_equal(pthread_create(&threads[t], NULL, wave_worker, (void *)(uintptr_t)id), 0);
        }
        for (unsigned t = 0; t < WAVE_THREADS; t++) {
            pthread_join(threads[t], NULL);
        }
        assert_no_thread_failure();
    }
    pthread_barrier_destroy(&wave_barrier);
}

/* Threads that exit leaving their blocks behind: each generation of threads
 * frees the blocks a thread of the previous generation (exited by then) left,
 * and leaves its own; the main thread frees the last generation's. */
enum { GENERATIONS = 5, LEAVERS = 6, LEFT_BLOCKS = 300 };

static parcel left_behind[2][LEAVERS][LEFT_BLOCKS];

typedef struct {
    unsigned generation, id;
} leaver_args;

static void *leaver(void *arg)
{
    const leaver_args *a = arg;
    uint32_t rng = 0xC2B2AE35u ^ (a->generation * 131u + a->id + 1);
    if (a->generation > 0) {
        parcel *previous = left_behind[(a->generation - 1) % 2][(a->id + 1) % LEAVERS];
        for (unsigned i = 0; i < LEFT_BLOCKS; i++) {
            open_parcel(previous[i]);
        }
    }
    parcel *mine = left_behind[a->generation % 2][a->id];
    for (unsigned i = 0; i < LEFT_BLOCKS; i++) {
        mine[i] = make_parcel(&rng, a->generation * 1000003u + a->id * LEFT_BLOCKS + i);
    }
    return NULL;
}

static void blocks_outlive_the_threads_that_allocated_them(void **state)
{
    (void)state;
    for (unsigned generation = 0; generation < GENERATIONS; generation++) {
        pthread_t threads[LEAVERS];
        leaver_args args[LEAVERS];
        for (unsigned t = 0; t < LEAVERS; t++) {
            args[t] = (leaver_args){generation, t};
            assert_int_equal(pthread_create(&threads[t], NULL, leaver, &args[t]), 0);
        }
        for (unsigned t = 0; t < LEAVERS; t++) {
            pthread_join(threads[t], NULL);
        }
        assert_no_thread_failure();
    }
    for (unsigned t = 0; t < LEAVERS; t++) {
        for (unsigned i = 0; i < LEFT_BLOCKS; i++) {
            open_parcel(left_behind[(GENERATIONS - 1) % 2][t][i]);
        }
    }
    assert_no_thread_failure();
}

/* ---- fork. */

enum { BUSY_THREADS = 2, FORKS = 40, BUSY_RING = 32, INHERITED_SIZE = 5000, CHILD_SECONDS = 20 };

static atomic_bool stop_busy;

/* Allocates and frees without pause (holding a ring of blocks), so that a
 * fork likely finds an allocator lock taken. */
static void *busy_allocating(void *arg)
{
    uint32_t rng = 0x165667B1u * ((unsigned)(uintptr_t)arg + 1);
    parcel ring[BUSY_RING] = {{0}};
    unsigned seed = 0;
    while (!atomic_load(&stop_busy)) {
        size_t slot = next_random(&rng) % BUSY_RING;
        open_parcel(ring[slot]);
        ring[slot] = make_parcel(&rng, seed++);
    }
    for (size_t slot = 0; slot < BUSY_RING; slot++) {
        open_parcel(ring[slot]);
    }
    return NULL;
}

/* In a forked child: a crash kills it (for the parent to see) instead of
 * reaching the handlers cmocka installed, which would go on running tests in
 * the child. */
static void crash_signals_default(void)
{
    static const int crashes[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof crashes / sizeof crashes[0]; i++) {
        signal(crashes[i], SIG_DFL);
    }
}

/* The child's work: every kind of allocation, calloc, realloc, and the free
 * of a block inherited from the parent. Returns the exit status: 0 when all
 * went well, 1 otherwise. alarm turns a deadlock into a death by SIGALRM. */
static int child_allocates(unsigned char *inherited)
{
    crash_signals_default();
    alarm(CHILD_SECONDS);
    int status = 0;
    if (first_mismatch(inherited, INHERITED_SIZE, 13) != INHERITED_SIZE) {
        status = 1;
    }
    PKM(free)(inherited);
    static const size_t sizes[] = {0, 1, 24, 500, 4000, 70 * KIB, 300 * KIB};
    for (size_t k = 0; k < kind_count; k++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            unsigned char *p = kinds[k].allocate(sizes[s]);
            if (p == NULL) {
                return 1;
            }
            if (kinds[k].zeroed && first_nonzero(p, sizes[s]) != sizes[s]) {
                status = 1;
            }
            fill(p, sizes[s], 14);
            unsigned char *q = PKM(realloc)(p, sizes[s] * 2 + 1);
            if (q == NULL) {
                PKM(free)(p);
                return 1;
            }
            if (first_mismatch(q, sizes[s], 14) != sizes[s]) {
                status = 1;
            }
            PKM(free)(q);
        }
    }
    return status;
}

static void describe_status(int status, char *text, size_t size)
{
    if (WIFEXITED(status)) {
        snprintf(text, size, "exited with %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        snprintf(text, size, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    } else {
        snprintf(text, size, "ended with status %#x", (unsigned)status);
    }
}

/* Forks while two threads allocate; each child allocates, checks and frees
 * in every way, and frees a block inherited from the parent. */
static void malloc_in_child_after_fork_while_threads_allocate(void **state)
{
    (void)state;
    pthread_t busy[BUSY_THREADS];
    /* valgrind checks each child for leaks as it exits, and would count the
     * blocks of the busy threads (gone in the child) as lost. */
    unsigned busy_count = valgrind_is_the_allocator ? 0 : BUSY_THREADS;
    atomic_store(&stop_busy, false);
    for (unsigned i = 0; i < busy_count; i++) {
        assert_int_equal(pthread_create(&busy[i], NULL, busy_allocating, (void *)(uintptr_t)i), 0);
    }
    unsigned char *inherited = PKM(malloc)(INHERITED_SIZE);
    assert_non_null(inherited);
    fill(inherited, INHERITED_SIZE, 13);
    int failed_fork = -1;
    int failed_status = 0;
    for (int i = 0; i < FORKS && failed_fork < 0; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            _exit(child_allocates(inherited));
        }
        if (pid < 0) {
            failed_fork = i;
            break;
        }
        int status = 0;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            failed_fork = i;
            failed_status = status;
        }
    }
    atomic_store(&stop_busy, true);
    for (unsigned i = 0; i < busy_count; i++) {
        pthread_join(busy[i], NULL);
    }
    PKM(free)(inherited);
    assert_no_thread_failure();
    if (failed_fork >= 0) {
        char text[96];
        describe_status(failed_status, text, sizeof text);
        fail_test("the child of fork %d %s (0: all its allocations worked; 1: one failed or lost bytes)",
                 failed_fork, text);
    }
}

/* ---- Before main: a constructor of the highest priority a program may use
 * allocates before the others (and, preloaded, before main). */

static const char *before_main_failure = "the constructor did not run";

static const char *allocate_check_free(void)
{
    unsigned char *p = PKM(malloc)(100);
    if (p == NULL) {
        return "malloc(100) returned NULL";
    }
    fill(p, 100, 15);
    unsigned char *q = PKM(realloc)(p, 20000);
    if (q == NULL) {
        PKM(free)(p);
        return "realloc to 20000 returned NULL";
    }
    bool kept = first_mismatch(q, 100, 15) == 100;
    PKM(free)(q);
    if (!kept) {
        return "realloc lost bytes";
    }
    unsigned char *z = PKM(calloc)(50, 20);
    if (z == NULL) {
        return "calloc(50, 20) returned NULL";
    }
    bool zeroed = first_nonzero(z, 1000) == 1000;
    PKM(free)(z);
    if (!zeroed) {
        return "calloc(50, 20) not zeroed";
    }
    void *a = NULL;
    if (PKM(posix_memalign)(&a, 4096, 300) != 0) {
        return "posix_memalign(4096, 300) failed";
    }
    bool aligned = aligned_to(a, 4096);
    PKM(free)(a);
    return aligned ? NULL : "posix_memalign(4096, 300) not aligned";
}

__attribute__((constructor(101))) static void allocate_before_main(void)
{
    before_main_failure = allocate_check_free();
}

static void allocation_in_a_constructor_before_main(void **state)
{
    (void)state;
    CHECK(before_main_failure == NULL, "before main: %s", before_main_failure);
}

/* ---- Blocks from glibc's own allocator. */

#ifndef PKM_TEST_SANITIZED
/* Returns the exit status for the parent: 0, or 1 when bytes were lost or a
 * call returned NULL. */
static int free_and_realloc_libc_blocks(void)
{
    int status = 0;
    unsigned char *small = __libc_malloc(100);
    unsigned char *growing = __libc_malloc(3000);
    unsigned char *shrinking = __libc_malloc(200 * KIB);
    unsigned char *aligned = __libc_memalign(4096, 5000);
    if (small == NULL || growing == NULL || shrinking == NULL || aligned == NULL) {
        return 1;
    }
    fill(small, 100, 16);
    PKM(free)(small);
    PKM(free)(aligned);
    fill(growing, 3000, 17);
    unsigned char *grown = PKM(realloc)(growing, 100 * KIB);
    if (grown == NULL || first_mismatch(grown, 3000, 17) != 3000) {
        status = 1;
    }
    PKM(free)(grown);
    fill(shrinking, 200 * KIB, 18);
    unsigned char *shrunk = PKM(realloc)(shrinking, 50);
    if (shrunk == NULL || first_mismatch(shrunk, 50, 18) != 50) {
        status = 1;
    }
    PKM(free)(shrunk);
    return status;
}
#endif

/* free and realloc take blocks that glibc's allocator gave (libc, the
 * dynamic loader and early code may have them); in a child, so that a crash
 * fails this test only. */
static void libc_allocated_blocks_freed_and_reallocated(void **state)
{
    (void)state;
#ifdef PKM_TEST_SANITIZED
    /* The sanitizers' runtimes take over some of glibc's __libc_* entry
     * points and not others (ThreadSanitizer's __libc_malloc gives its own
     * blocks, which glibc's __libc_free cannot take), and their free cannot
     * take glibc's blocks. */
    skip();
#else
    pid_t pid = fork();
    if (pid == 0) {
        crash_signals_default();
        alarm(CHILD_SECONDS);
        _exit(free_and_realloc_libc_blocks());
    }
    assert_true(pid > 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    char text[96];
    describe_status(status, text, sizeof text);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the child freeing and reallocating __libc_malloc blocks %s (1: a realloc lost bytes or failed)", text);
#endif
}

/* ---- Preloaded: the functions are the library's. */

#ifndef PKM_PREFIX
/* A function of this program, for dladdr to name the program. */
static void take_address(void)
{
}
#endif

static void functions_come_from_the_preloaded_library(void **state)
{
    (void)state;
#ifdef PKM_PREFIX
    skip(); /* linked statically: nothing preloaded */
#else
    const char *expected = getenv("PKM_EXPECT_LIB");
    if (expected == NULL || expected[0] == '\0') {
        skip(); /* not told what is preloaded */
        return;
    }
    typedef void (*any_fn)(void);
    static const struct {
        const char *name;
        any_fn called; /* the address this program calls */
    } functions[] = {
        {"malloc", (any_fn)malloc},
        {"free", (any_fn)free},
        {"calloc", (any_fn)calloc},
        {"realloc", (any_fn)realloc},
        {"reallocarray", (any_fn)reallocarray},
        {"posix_memalign", (any_fn)posix_memalign},
        {"aligned_alloc", (any_fn)aligned_alloc},
        {"memalign", (any_fn)memalign},
        {"valloc", (any_fn)valloc},
        {"pvalloc", (any_fn)pvalloc},
        {"malloc_usable_size", (any_fn)malloc_usable_size},
    };
    Dl_info program;
    any_fn own = take_address;
    void *own_address;
    memcpy(&own_address, &own, sizeof own_address);
    assert_true(dladdr(own_address, &program) != 0);
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
        /* The first definition after the program's own: what every object
         * that calls the function binds to. */
        void *bound = dlsym(RTLD_NEXT, functions[i].name);
        CHECK(bound != NULL, "%s: not found (%s)", functions[i].name, dlerror());
        Dl_info where;
        CHECK(dladdr(bound, &where) != 0 && where.dli_fname != NULL, "%s: no object holds %p", functions[i].name,
              bound);
        CHECK(strstr(where.dli_fname, expected) != NULL, "%s comes from %s, not from an object named *%s*",
              functions[i].name, where.dli_fname, expected);
        /* The program calls that definition, or its own stub for it. */
        void *called;
        memcpy(&called, &functions[i].called, sizeof called);
        Dl_info called_where;
        CHECK(dladdr(called, &called_where) != 0, "%s: the address called, %p, is in no object", functions[i].name,
              called);
        CHECK(called_where.dli_fbase == where.dli_fbase || called_where.dli_fbase == program.dli_fbase,
              "%s: this program calls %p in %s", functions[i].name, called, called_where.dli_fname);
    }
#endif
}

int main(int argc, char **argv)
{
    if (argc > 2) {
        fprintf(stderr, "usage: %s [test name pattern]\n", argv[0]);
        return 2;
    }
    if (argc == 2) {
        cmocka_set_test_filter(argv[1]);
    }
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    valgrind_is_the_allocator = under_valgrind();
    kind_count = sizeof kinds / sizeof kinds[0] - (valgrind_is_the_allocator ? 1 : 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(functions_come_from_the_preloaded_library),
        cmocka_unit_test(allocation_in_a_constructor_before_main),
        cmocka_unit_test(every_function_0_to_1k_aligned_disjoint_writable_to_usable_size),
        cmocka_unit_test(every_function_1k_to_1m_aligned_disjoint_writable_to_usable_size),
        cmocka_unit_test(every_function_1m_to_64m_aligned_disjoint_writable_to_usable_size),
        cmocka_unit_test(usable_size_of_null_is_zero),
        cmocka_unit_test(every_power_of_two_alignment_to_16m),
        cmocka_unit_test(small_alignments_accepted_by_memalign_and_aligned_alloc),
        cmocka_unit_test(valloc_page_aligned_and_pvalloc_page_rounded),
        cmocka_unit_test(calloc_zeroes_reused_memory),
        cmocka_unit_test(calloc_and_reallocarray_overflow_is_enomem),
        cmocka_unit_test(impossible_sizes_are_null_and_enomem),
        cmocka_unit_test(posix_memalign_bad_alignment_is_einval),
        cmocka_unit_test(realloc_keeps_contents_between_all_sizes),
        cmocka_unit_test(realloc_one_byte_steps_over_class_boundaries),
        cmocka_unit_test(realloc_of_null_allocates),
        cmocka_unit_test(realloc_to_zero_frees_and_returns_null),
        cmocka_unit_test(free_of_null_does_nothing),
        cmocka_unit_test(frees_across_threads_producers_to_consumers),
        cmocka_unit_test(new_threads_after_old_ones_exit),
        cmocka_unit_test(blocks_outlive_the_threads_that_allocated_them),
        cmocka_unit_test(malloc_in_child_after_fork_while_threads_allocate),
        cmocka_unit_test(libc_allocated_blocks_freed_and_reallocated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
