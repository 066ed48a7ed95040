/*
 * The code-size probes of scripts/cortex_m_bench.sh: one minimal image per
 * allocator (PK_PROBE names it) that initialises it on a small static buffer
 * and makes one allocation and one free (the arena: a reset) through the
 * allocator's own functions, and the baseline (PK_PROBE_BASELINE), the same
 * start-up and buffer with no allocator. The script subtracts the baseline's
 * sizes from each probe's, so what is left is the allocator's own code,
 * constants and state (the buffer it manages is outside .data and .bss).
 * main returns 0 when the calls did what they should: the script runs each
 * probe to show it is not measuring a broken image.
 */
#include <stddef.h>
#include <stdint.h>

#include "poolkit/arena.h"
#include "poolkit/atomic_pool.h"
#include "poolkit/buddy.h"
#include "poolkit/classes.h"
#include "poolkit/fit.h"
#include "poolkit/heap.h"
#include "poolkit/pool.h"
#include "poolkit/slab.h"

#define PK_PROBE_BASELINE 0
#define PK_PROBE_POOL 1
#define PK_PROBE_ATOMIC_POOL 2
#define PK_PROBE_CLASSES 3
#define PK_PROBE_SLAB 4
#define PK_PROBE_BUDDY 5
#define PK_PROBE_HEAP 6
#define PK_PROBE_FIT 7
#define PK_PROBE_ARENA 8

#if !defined(PK_PROBE)
#error "PK_PROBE names the allocator (PK_PROBE_POOL, ...) or PK_PROBE_BASELINE"
#endif

/* Aligned for the slab's pages, which the buddy carves from it; in the
 * linker script's .dma_ram, apart from .data and .bss, so that neither the
 * buffer nor its alignment counts in their sizes. */
static _Alignas(1024) unsigned char buffer[8192] __attribute__((section(".dma_ram")));

int main(void);

int main(void)
{
#if PK_PROBE == PK_PROBE_BASELINE
    /* Keeps the buffer in the image and in RAM, as the probes do (a buffer
     * only read would be moved to flash). */
    volatile unsigned char *b = buffer;
    b[0] = 1;
    return b[0] - 1;
#elif PK_PROBE == PK_PROBE_POOL
    static pk_pool p;
    if (pk_pool_init(&p, buffer, sizeof buffer, 64, 0) != PK_OK) {
        return 1;
    }
    void *b = pk_pool_alloc(&p);
    return b != NULL && pk_pool_free(&p, b) == PK_OK ? 0 : 1;
#elif PK_PROBE == PK_PROBE_ATOMIC_POOL
    static pk_atomic_pool p;
    if (pk_atomic_pool_init(&p, buffer, sizeof buffer, 64, 0) != PK_OK) {
        return 1;
    }
    void *b = pk_atomic_pool_alloc(&p);
    return b != NULL && pk_atomic_pool_free(&p, b) == PK_OK ? 0 : 1;
#elif PK_PROBE == PK_PROBE_CLASSES
    static const pk_class_spec specs[] = {{16, 32, 0}, {64, 16, 0}, {256, 8, 0}};
    static pk_classes c;
    if (pk_classes_init(&c, buffer, sizeof buffer, specs, sizeof specs / sizeof *specs) != PK_OK) {
        return 1;
    }
    void *b = pk_classes_alloc(&c, 40);
    return b != NULL && pk_classes_free(&c, b) == PK_OK ? 0 : 1;
#elif PK_PROBE == PK_PROBE_SLAB
    static pk_buddy pages;
    static pk_slab_cache c;
    if (pk_buddy_init(&pages, buffer, sizeof buffer, 0) != PK_OK) {
        return 1;
    }
    pk_page_source src = pk_page_source_buddy(&pages);
    if (pk_slab_init(&c, "probe", 40, 0, NULL, NULL, NULL, &src, 1024) != PK_OK) {
        return 1;
    }
    void *b = pk_slab_alloc(&c);
    return b != NULL && pk_slab_free(&c, b) == PK_OK ? 0 : 1;
#elif PK_PROBE == PK_PROBE_BUDDY
    static pk_buddy b;
    if (pk_buddy_init(&b, buffer, sizeof buffer, 0) != PK_OK) {
        return 1;
    }
    void *p = pk_buddy_alloc(&b, 40);
    return p != NULL && pk_buddy_free(&b, p) == PK_OK ? 0 : 1;
#elif PK_PROBE == PK_PROBE_HEAP
    static pk_heap h;
    if (pk_heap_init(&h, buffer, sizeof buffer) != PK_OK) {
        return 1;
    }
    void *p = pk_heap_alloc(&h, 40);
    return p != NULL && pk_heap_free(&h, p) == PK_OK ? 0 : 1;
#elif PK_PROBE == PK_PROBE_FIT
    static pk_fit f;
    if (pk_fit_init(&f, buffer, sizeof buffer, PK_FIT_FIRST, 0) != PK_OK) {
        return 1;
    }
    void *p = pk_fit_alloc(&f, 40);
    return p != NULL && pk_fit_free(&f, p) == PK_OK ? 0 : 1;
#elif PK_PROBE == PK_PROBE_ARENA
    static pk_arena a;
    if (pk_arena_init(&a, buffer, sizeof buffer) != PK_OK) {
        return 1;
    }
    void *p = pk_arena_alloc(&a, 40, 0);
    pk_arena_reset(&a);
    return p != NULL ? 0 : 1;
#else
#error "unknown PK_PROBE"
#endif
}
