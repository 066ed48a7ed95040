/*
 * Shared internals of the allocators: fault dispatch, lock calls, checked size
 * arithmetic and bit tricks. Freestanding: no libc call beyond what a
 * freestanding compiler may emit (memcpy, memset).
 */
#ifndef POOLKIT_CORE_INTERNAL_H
#define POOLKIT_CORE_INTERNAL_H

#include <limits.h>
#include <string.h>

#include "poolkit/common.h"

/* The default handler: prints one line on hosted builds (src/hosted/). */
#if PK_HOSTED
void pk__fault_print(const pk_fault *f, void *ctx);
/* Writes the length bytes at text to fd with write(2), never stdio (so it is
 * safe inside a malloc replacement), until done or an error. */
void pk__write_all(int fd, const char *text, size_t length);
#endif

/* Sends f to the fault handler unless one is running (pk_report_fault with
 * every field given); returns f->kind. */
pk_status pk__dispatch_fault(const pk_fault *f);

/* Keeps a slow path out of line, so the fast path it leaves needs no stack
 * frame. */
#if defined(__GNUC__) || defined(__clang__)
#define PK__SLOW_PATH __attribute__((noinline, cold))
#else
#define PK__SLOW_PATH
#endif

/* Inlines a small helper of a fast path even where it is called from several
 * places, so that alloc and free make no inner calls. */
#if defined(__GNUC__) || defined(__clang__)
#define PK__ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define PK__ALWAYS_INLINE inline
#endif

/* What pk_X_set_lock stores: *lock, or no lock for NULL (or for a lock whose
 * two functions are NULL). Returns false, storing nothing, when exactly one of
 * lock and unlock is NULL. */
static inline bool pk__choose_lock(pk_lock *out, const pk_lock *lock)
{
    if (lock != NULL && (lock->lock == NULL) != (lock->unlock == NULL)) {
        return false;
    }
    static const pk_lock no_lock = {NULL, NULL, NULL};
    *out = lock != NULL && lock->lock != NULL ? *lock : no_lock;
    return true;
}

static inline void pk__lock(const pk_lock *l)
{
    if (l->lock != NULL) {
        l->lock(l->ctx);
    }
}

static inline void pk__unlock(const pk_lock *l)
{
    if (l->unlock != NULL) {
        l->unlock(l->ctx);
    }
}

/* A size_t at any address (blocks need not be aligned for size_t); compilers
 * emit one load or store. */
static inline size_t pk__load_word(const void *at)
{
    size_t v;
    memcpy(&v, at, sizeof v);
    return v;
}

static inline void pk__store_word(void *at, size_t v)
{
    memcpy(at, &v, sizeof v);
}

static inline bool pk__is_pow2(size_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* *out = a + b; false (and *out untouched) on overflow. */
static inline bool pk__add_overflows(size_t a, size_t b, size_t *out)
{
    if (a > SIZE_MAX - b) {
        return true;
    }
    *out = a + b;
    return false;
}

static inline bool pk__mul_overflows(size_t a, size_t b, size_t *out)
{
    if (b != 0 && a > SIZE_MAX / b) {
        return true;
    }
    *out = a * b;
    return false;
}

/* x rounded up to a multiple of align (a power of two); false on overflow. */
static inline bool pk__round_up_overflows(size_t x, size_t align, size_t *out)
{
    size_t sum;
    if (pk__add_overflows(x, align - 1, &sum)) {
        return true;
    }
    *out = sum & ~(align - 1);
    return false;
}

/* Bit tricks with compiler builtins where available and portable fallbacks
 * (override PK_CTZ, PK_CLZ and PK_POPCOUNT together for other toolchains).
 * x must not be 0 for ctz and clz. */
#define PK__WORD_BITS (sizeof(size_t) * CHAR_BIT)

#if !defined(PK_CTZ) && (defined(__GNUC__) || defined(__clang__))
#if SIZE_MAX == ULONG_MAX
#define PK_CTZ(x) ((unsigned)__builtin_ctzl(x))
#define PK_CLZ(x) ((unsigned)__builtin_clzl(x))
#define PK_POPCOUNT(x) ((unsigned)__builtin_popcountl(x))
#else
#define PK_CTZ(x) ((unsigned)__builtin_ctzll(x))
#define PK_CLZ(x) ((unsigned)__builtin_clzll(x))
#define PK_POPCOUNT(x) ((unsigned)__builtin_popcountll(x))
#endif
#endif

static inline unsigned pk__ctz_portable(size_t x)
{
    unsigned n = 0;
    while ((x & 1u) == 0) {
        x >>= 1;
        n++;
    }
    return n;
}

static inline unsigned pk__clz_portable(size_t x)
{
    unsigned n = 0;
    size_t top = (size_t)1 << (PK__WORD_BITS - 1);
    while ((x & top) == 0) {
        x <<= 1;
        n++;
    }
    return n;
}

static inline unsigned pk__popcount_portable(size_t x)
{
    unsigned n = 0;
    while (x != 0) {
        x &= x - 1;
        n++;
    }
    return n;
}

#ifndef PK_CTZ
#define PK_CTZ(x) pk__ctz_portable(x)
#define PK_CLZ(x) pk__clz_portable(x)
#define PK_POPCOUNT(x) pk__popcount_portable(x)
#endif

static inline unsigned pk__ctz(size_t x) { return PK_CTZ(x); }
static inline unsigned pk__clz(size_t x) { return PK_CLZ(x); }
static inline unsigned pk__popcount(size_t x) { return PK_POPCOUNT(x); }

/* Index of the highest set bit (floor(log2(x))); x must not be 0. */
static inline unsigned pk__log2_floor(size_t x) { return (unsigned)PK__WORD_BITS - 1u - pk__clz(x); }

/* x rotated right by n bits, 0 <= n < word bits. */
static inline size_t pk__rotr(size_t x, unsigned n)
{
    return (x >> n) | (x << ((PK__WORD_BITS - n) & (PK__WORD_BITS - 1)));
}

#endif
