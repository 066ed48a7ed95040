/* The names tests/malloc/ calls the malloc family by. Normally the real ones
 * (glibc's, or whatever LD_PRELOAD interposes, e.g. libpoolkit-malloc.so);
 * with PKM_PREFIX defined the pkm_* ones of a prefixed build of the drop-in,
 * so the same test links statically against it (for ThreadSanitizer, which
 * would otherwise see its own malloc). Includers define _GNU_SOURCE first:
 * glibc declares memalign, valloc, pvalloc, reallocarray and
 * malloc_usable_size only then. */
#ifndef PKM_TEST_API_NAMES_H
#define PKM_TEST_API_NAMES_H

#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>

#ifdef PKM_PREFIX
#define PKM(fn) pkm_##fn
void *pkm_malloc(size_t size);
void pkm_free(void *ptr);
void *pkm_calloc(size_t count, size_t size);
void *pkm_realloc(void *ptr, size_t size);
void *pkm_reallocarray(void *ptr, size_t count, size_t size);
int pkm_posix_memalign(void **memptr, size_t alignment, size_t size);
void *pkm_aligned_alloc(size_t alignment, size_t size);
void *pkm_memalign(size_t alignment, size_t size);
void *pkm_valloc(size_t size);
void *pkm_pvalloc(size_t size);
size_t pkm_malloc_usable_size(void *ptr);
#else
#define PKM(fn) fn
#endif

#endif
