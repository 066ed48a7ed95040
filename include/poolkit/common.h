/*
 * poolkit common definitions: status codes, statistics, the fault handler and
 * the lock hooks shared by every allocator.
 *
 * Configuration (define before including, on the command line, or in a header
 * named by PK_CONFIG_HEADER):
 *   PK_DEBUG   1 for the debug build (guards, poisoning, tags). Defaults to 0.
 *              The CMake option POOLKIT_DEBUG=ON defines it for the library and
 *              for its users; objects built with one value cannot be linked
 *              with a library built with the other (see PK_ABI_GUARD below).
 *   PK_HOSTED  1 when an OS is present (default: __STDC_HOSTED__). Hosted
 *              builds get the pthread lock and a default fault printer.
 */
#ifndef POOLKIT_COMMON_H
#define POOLKIT_COMMON_H

#ifdef PK_CONFIG_HEADER
#include PK_CONFIG_HEADER
#endif

#include <stddef.h>
#include <stdint.h>
#ifndef __cplusplus
#include <stdbool.h>
#endif

#include "poolkit/version.h"

#ifndef PK_DEBUG
#define PK_DEBUG 0
#endif

#ifndef PK_HOSTED
#if defined(__STDC_HOSTED__) && __STDC_HOSTED__
#define PK_HOSTED 1
#else
#define PK_HOSTED 0
#endif
#endif

/* Portable spellings of C11 keywords, so the headers also compile as C++. */
#ifdef __cplusplus
#define PK_ALIGNOF(type) alignof(type)
#define PK_ALIGNAS(n) alignas(n)
#define PK_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#define PK_MAX_ALIGN alignof(::max_align_t)
#else
#define PK_ALIGNOF(type) _Alignof(type)
#define PK_ALIGNAS(n) _Alignas(n)
#define PK_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#define PK_MAX_ALIGN _Alignof(max_align_t)
#endif

/* Places an object in a named linker section. GCC and clang spelling by
 * default; define it for other toolchains (IAR, Keil) in PK_CONFIG_HEADER. */
#ifndef PK_SECTION
#if defined(__GNUC__) || defined(__clang__)
#define PK_SECTION(name) __attribute__((section(name)))
#else
#define PK_SECTION(name) PK_SECTION_needs_a_definition_for_this_compiler
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Link-time guard against mixing debug and release builds: every translation
 * unit that includes poolkit references a symbol that only the library built
 * the same way defines, so a mismatch fails to link with an undefined
 * reference to pk_abi_debug_build or pk_abi_release_build (4 or 8 bytes of
 * data per such unit). Define PK_NO_ABI_GUARD to leave it out. */
#if PK_DEBUG
extern const char pk_abi_debug_build;
#define PK_ABI_SYMBOL pk_abi_debug_build
#else
extern const char pk_abi_release_build;
#define PK_ABI_SYMBOL pk_abi_release_build
#endif
#if !defined(PK_NO_ABI_GUARD) && !defined(PK_BUILDING_LIBRARY) && (defined(__GNUC__) || defined(__clang__))
__attribute__((used, unused)) static const char *const pk_abi_guard = &PK_ABI_SYMBOL;
#endif

typedef enum {
    PK_OK = 0,
    PK_ERR_NOMEM,          /* exhausted, or a size too large to serve (not a fault) */
    PK_ERR_INVALID_ARG,    /* bad init parameters, bad alignment */
    PK_ERR_DOUBLE_FREE,    /* the block is not allocated (freed twice, or never handed out) */
    PK_ERR_FOREIGN_PTR,    /* pointer not owned by this allocator */
    PK_ERR_MISALIGNED_PTR, /* inside the allocator, but not a block start */
    PK_ERR_GUARD_CORRUPT,  /* guard bytes overwritten (overflow/underflow) */
    PK_ERR_USE_AFTER_FREE, /* freed memory was written */
    PK_ERR_CORRUPT,        /* metadata inconsistent (found by check) */
    PK_ERR_SEALED          /* allocation after the allocator was sealed */
} pk_status;

/* A short English description of s ("double free"); never NULL, also for values
 * outside the enum. O(1), ISR-safe. */
const char *pk_status_str(pk_status s);

typedef struct {
    size_t   capacity;      /* bytes clients could hold when empty */
    size_t   in_use;        /* bytes granted to live allocations, incl. rounding */
    size_t   requested;     /* bytes requested by live allocations */
    size_t   peak_in_use;   /* high-water mark of in_use */
    size_t   free_bytes;    /* bytes in free blocks, net of headers */
    size_t   largest_free;  /* largest request that would succeed now */
    size_t   block_size;    /* fixed-size allocators: the block size; else 0 */
    size_t   live;          /* live allocations */
    size_t   peak_live;
    uint64_t allocs;        /* successful allocations */
    uint64_t frees;         /* successful frees */
    uint64_t failures;      /* NULL returns for want of memory (incl. too large) */
    uint64_t rejected;      /* calls refused as misuse (faults, bad alignment, sealed) */
} pk_stats;

/* 1 - requested/in_use, or 0 when in_use is 0. O(1). */
double pk_frag_internal(const pk_stats *s);
/* 1 - largest_free/free_bytes for variable-size allocators; 0 when free_bytes
 * is 0 or block_size is not 0 (a fixed-size allocator cannot fragment
 * externally). O(1). */
double pk_frag_external(const pk_stats *s);

typedef struct {
    pk_status   kind;
    const char *allocator;  /* the allocator's name */
    const void *ptr;        /* the pointer concerned, or NULL */
    const char *file;       /* the block's allocation site (debug builds), else NULL */
    int         line;
    const char *call_file;  /* the faulting call's site (debug builds), else NULL */
    int         call_line;
    uint32_t    owner;      /* owner tagged at allocation (debug builds), else 0 */
} pk_fault;

typedef void (*pk_fault_handler)(const pk_fault *f, void *ctx);

/* Sets the process-wide fault handler; NULL restores the default (one line on
 * stderr on hosted builds, nothing on freestanding ones). The handler runs
 * with no poolkit lock held and may call poolkit; a fault raised while a
 * handler runs (on the same thread, on hosted builds) is returned to its
 * caller but not dispatched again. Not synchronised: set it at start-up. O(1). */
void pk_set_fault_handler(pk_fault_handler h, void *ctx);

/* Reports a fault of kind about ptr in the named allocator through the fault
 * handler, unless a handler is already running (on this thread, on hosted
 * builds), and returns kind, so that an allocator can `return
 * pk_report_fault(...)`. poolkit's allocators call it; user allocators plugged
 * into the generic view call it too. Call it with no allocator lock held.
 * O(1) plus the handler. */
pk_status pk_report_fault(pk_status kind, const char *allocator, const void *ptr);

/* Writes f as one line of text ending in '\n' into buf (NUL-terminated,
 * truncated to size - 1 characters; nothing is written when size is 0):
 * "poolkit: <allocator>: <what> at 0x<ptr> (allocated at <file:line>, owner
 * <n>; call at <file:line>)", the parts in brackets when known. Returns the
 * length of the whole line, as snprintf does. Freestanding (no libc), O(line). */
size_t pk_fault_format(const pk_fault *f, char *buf, size_t size);

/* Records the call site of the next poolkit call on this thread (hosted) or
 * context. The allocators' headers wrap their functions in macros that call
 * it in debug builds, so `pk_pool_alloc(&p)` records its file and line while
 * the function keeps its name and address. */
void pk_debug_site(const char *file, int line);

#if PK_DEBUG && !defined(PK_BUILDING_LIBRARY)
#define PK_DEBUG_AT_(call) (pk_debug_site(__FILE__, __LINE__), call)
#else
#define PK_DEBUG_AT_(call) call
#endif

/* A lock for an allocator shared between threads, tasks or interrupt levels.
 * Both functions are called with ctx. No poolkit allocator calls another (or
 * a page source, constructor or fault handler) with its own lock held, so a
 * lock need not allow nesting (a PRIMASK save/restore does anyway). */
typedef struct {
    void (*lock)(void *ctx);
    void (*unlock)(void *ctx);
    void *ctx;
} pk_lock;

#ifdef __cplusplus
}
#endif

#endif
