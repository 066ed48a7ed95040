/*
 * Tells AddressSanitizer and Valgrind's memcheck which bytes of a debug block
 * the client may touch (debug builds only; src/debug/debug.c is the only
 * user, so every allocator gets it through the hooks setup / retire / evict).
 *
 * Under ASan (__SANITIZE_ADDRESS__, or __has_feature(address_sanitizer)):
 * padding, tag, guards and tail of a live block, and a quarantined block, are
 * poisoned with ASan's manual interface (its reports say "use-after-poison").
 * Under Valgrind, when <valgrind/memcheck.h> is there (hosted builds; Debian's
 * package valgrind ships it), user bytes are described as malloc'd blocks
 * (MALLOCLIKE at setup, FREELIKE at retire) and the metadata around them is
 * NOACCESS; the client requests cost a few instructions when not under
 * Valgrind. The hooks themselves read and write tags, guards and poison: they
 * open those bytes around each access (pk__annot_open) and close them again.
 *
 * The four states of a byte range:
 *   closed    no access (ASan poisoned, memcheck NOACCESS): metadata, quarantine
 *   open      accessible, contents defined: the hooks' own accesses, and
 *             memory handed back to the allocator (evict)
 *   user      a live block's requested bytes (MALLOCLIKE: accessible, undefined)
 *   freed     the user bytes of a block retired (FREELIKE), then closed
 * ASan works in 8-byte granules: a range whose ends are not 8-aligned is
 * poisoned a little less than asked (never more), so the guards of blocks
 * aligned to less than 8 are only partly watched by it; the hooks' own guard
 * check still sees every byte.
 *
 * PK_NO_TOOL_ANNOTATIONS turns all of it off (the tool tests build with it to
 * show that the tools then see nothing: tests/tools_debug/).
 */
#ifndef POOLKIT_DEBUG_ANNOTATE_H
#define POOLKIT_DEBUG_ANNOTATE_H

#include <stddef.h>

#if !defined(PK_NO_TOOL_ANNOTATIONS)
#if defined(__SANITIZE_ADDRESS__)
#define PK__ANNOT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PK__ANNOT_ASAN 1
#endif
#endif
#if PK_HOSTED && defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#define PK__ANNOT_VALGRIND 1
#endif
#endif
#endif

#ifdef PK__ANNOT_ASAN
#include <sanitizer/asan_interface.h>
#endif
#ifdef PK__ANNOT_VALGRIND
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wconversion"
#endif
#include <valgrind/memcheck.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

/* Whether any tool is told anything (for the tests and for skipping work). */
#if defined(PK__ANNOT_ASAN) || defined(PK__ANNOT_VALGRIND)
#define PK__ANNOT_ANY 1
#else
#define PK__ANNOT_ANY 0
#endif

/* Bytes the client must not touch (metadata, guards, quarantine). */
static inline void pk__annot_close(const void *p, size_t n)
{
    (void)p;
    (void)n;
    if (n == 0) {
        return;
    }
#ifdef PK__ANNOT_ASAN
    ASAN_POISON_MEMORY_REGION(p, n);
#endif
#ifdef PK__ANNOT_VALGRIND
    (void)VALGRIND_MAKE_MEM_NOACCESS(p, n);
#endif
}

/* Bytes the hooks (or, after evict, the allocator) read and write. */
static inline void pk__annot_open(const void *p, size_t n)
{
    (void)p;
    (void)n;
    if (n == 0) {
        return;
    }
#ifdef PK__ANNOT_ASAN
    ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
#ifdef PK__ANNOT_VALGRIND
    (void)VALGRIND_MAKE_MEM_DEFINED(p, n);
#endif
}

/* Copies n bytes at p to out with no report and no change of what the tools
 * think of them: a tag read at a pointer that may not be a block's (the
 * bytes before an interior pointer may be the client's, which opening and
 * closing them would take away from the client). ASan: not instrumented;
 * memcheck: errors off for the read, the copy marked defined. */
#ifdef PK__ANNOT_ASAN
__attribute__((no_sanitize_address))
#endif
static inline void pk__annot_peek(void *out, const void *p, size_t n)
{
#ifdef PK__ANNOT_VALGRIND
    VALGRIND_DISABLE_ERROR_REPORTING;
#endif
    const volatile unsigned char *from = p;
    unsigned char *to = out;
    for (size_t i = 0; i < n; i++) {
        to[i] = from[i];
    }
#ifdef PK__ANNOT_VALGRIND
    VALGRIND_ENABLE_ERROR_REPORTING;
    (void)VALGRIND_MAKE_MEM_DEFINED(out, n);
#endif
}

/* A live block's user bytes, handed out (after the new-fill is written):
 * accessible; for memcheck a malloc'd block whose contents are undefined. */
static inline void pk__annot_handout(const void *user, size_t size)
{
    (void)user;
    (void)size;
#ifdef PK__ANNOT_ASAN
    ASAN_UNPOISON_MEMORY_REGION(user, size);
#endif
#ifdef PK__ANNOT_VALGRIND
    VALGRIND_MALLOCLIKE_BLOCK(user, size, 0, 0);
#endif
}

/* A live block's user bytes, taken back (after they are poisoned): no access,
 * and for memcheck the block is free'd. */
static inline void pk__annot_takeback(const void *user, size_t size)
{
    (void)user;
    (void)size;
#ifdef PK__ANNOT_VALGRIND
    VALGRIND_FREELIKE_BLOCK(user, 0);
#endif
#ifdef PK__ANNOT_ASAN
    if (size != 0) {
        ASAN_POISON_MEMORY_REGION(user, size);
    }
#endif
}

#endif
