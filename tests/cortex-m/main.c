/*
 * The bare-metal test image (scripts/cortex_m.sh builds and runs it on QEMU):
 * the shared randomized driver and misuse checks of tests/driver/ on every
 * allocator, with the configurations of the host tests (tests/test_*.c) in
 * smaller buffers (the driver checks the whole allocator after each of its
 * first 10^4 operations, and the emulator is slow), all static: no heap, no
 * stdio. Prints "ok NAME" or "FAIL NAME: ..." per test over semihosting,
 * then "N passed, N failed", and returns 0 only if every test passed (the
 * start-up code makes that QEMU's exit status). The same source runs on
 * Cortex-M and RISC-V.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver/driver.h"
#include "poolkit/arena.h"
#include "poolkit/atomic_pool.h"
#include "poolkit/buddy.h"
#include "poolkit/classes.h"
#include "poolkit/fit.h"
#include "poolkit/heap.h"
#include "poolkit/pool.h"
#include "poolkit/slab.h"
#include "semihosting.h"
#if defined(PK_CM_INJECT)
#include "inject.h"
#endif
#if defined(__arm__)
#include "primask_lock.h"
#endif

#define OPS 10000u
#define MAX_ALIGN ((size_t)PK_MAX_ALIGN)
#define COUNT_OF(a) (sizeof(a) / sizeof *(a))

/* From the linker script. */
extern unsigned char __bss_start[], __bss_end[];
extern unsigned char __dma_ram_start[], __dma_ram_end[];
#define BSS_SIZE ((size_t)((uintptr_t)__bss_end - (uintptr_t)__bss_start))
#define DMA_RAM_SIZE ((size_t)((uintptr_t)__dma_ram_end - (uintptr_t)__dma_ram_start))

/* A pool in .bss, zeroed by the start-up code, and one in the section the
 * linker script keeps apart for DMA, which nothing zeroes (main fills it
 * with garbage first). */
PK_POOL_DEFINE(desc_pool, 64, 128, 64);
PK_POOL_DEFINE_IN(dma_pool, 100, 100, 4, ".dma_ram");

static _Alignas(4096) unsigned char arena[1u << 17];
static pk_driver_slot slots[1024];

/* What the current test found: problems and the first one's text. */
static unsigned problems;
static char first_problem[160];
static unsigned unexpected_faults;

static void note(const char *text)
{
    if (problems++ == 0) {
        size_t i = 0;
        for (; text[i] != '\0' && i + 1 < sizeof first_problem; i++) {
            first_problem[i] = text[i];
        }
        first_problem[i] = '\0';
    }
}

static void report(void *ctx, const char *line)
{
    (void)ctx;
    note(line);
}

static void expect(bool ok, const char *what)
{
    if (!ok) {
        note(what);
    }
}

/* Outside the misuse checks (which install their own handler) no test
 * should raise a fault. */
static void count_fault(const pk_fault *f, void *ctx)
{
    (void)f;
    (void)ctx;
    unexpected_faults++;
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* The driver with the fields every run shares; the drain at its end leaves
 * the allocator empty. */
static void drive(pk_allocator *a, pk_driver_config cfg, size_t slot_count)
{
    cfg.ops = OPS;
    cfg.slots = slots;
    cfg.slot_count = min_size(slot_count, COUNT_OF(slots));
    cfg.report = report;
    pk_driver_result result;
    if (pk_driver_run(a, &cfg, &result) == 0) {
        expect(result.ops == OPS && result.checks > 0, "the driver ran short");
    }
}

static void misuse(pk_allocator *a, pk_misuse_config cfg)
{
    cfg.report = report;
    (void)pk_driver_misuse(a, &cfg);
    pk_set_fault_handler(count_fault, NULL);
}

/* The pools (tests/test_pool.c). */

static void pool_config(pk_driver_config *cfg, size_t bs, size_t align, const void *region, size_t region_size,
                        uint64_t seed)
{
    size_t effective = align != 0 ? align : MAX_ALIGN;
    *cfg = (pk_driver_config){
        .realloc_percent = 10,
        .seed = seed,
        .max_size = bs,
        .max_align = effective,
        .default_align = effective,
        .region = region,
        .region_size = region_size,
        .block_size = bs,
    };
}

static void test_pool_define_random(void)
{
    pk_driver_config cfg;
    pool_config(&cfg, 64, 64, __bss_start, BSS_SIZE, 3);
    drive(pk_pool_allocator(&desc_pool), cfg, 128 + 8);
}

static void test_pool_define_misuse(void)
{
    misuse(pk_pool_allocator(&desc_pool),
           (pk_misuse_config){__bss_start, BSS_SIZE, 64, true, 128, NULL, NULL, false});
}

static bool in_dma_ram(const void *p, size_t size)
{
    uintptr_t a = (uintptr_t)p;
    return a >= (uintptr_t)__dma_ram_start && a + size <= (uintptr_t)__dma_ram_end;
}

/* Every block of the pool lies in the linker script's .dma_ram. */
static void test_pool_define_in_section(void)
{
    expect(pk_pool_capacity(&dma_pool) == 100, "not 100 blocks");
    void *head = NULL;
    size_t got = 0;
    for (void *b; (b = pk_pool_alloc(&dma_pool)) != NULL; got++) {
        expect(in_dma_ram(b, 100), "a block outside .dma_ram");
        *(void **)b = head; /* chain them through themselves */
        head = b;
    }
    expect(got == 100, "not 100 blocks handed out");
    while (head != NULL) {
        void *next = *(void **)head;
        expect(pk_pool_free(&dma_pool, head) == PK_OK, "free refused");
        head = next;
    }
}

static void test_pool_define_in_random(void)
{
    pk_driver_config cfg;
    pool_config(&cfg, 100, 4, __dma_ram_start, DMA_RAM_SIZE, 2);
    drive(pk_pool_allocator(&dma_pool), cfg, 100 + 8);
}

static void test_pool_define_in_misuse(void)
{
    misuse(pk_pool_allocator(&dma_pool), (pk_misuse_config){__dma_ram_start,
                                                            DMA_RAM_SIZE, 100,
                                                            true, 100, NULL, NULL, false});
}

static const size_t misuse_sizes[] = {1, 8, 24, 64, 100};

static void test_pool_misuse_sizes(void)
{
    for (size_t i = 0; i < COUNT_OF(misuse_sizes); i++) {
        size_t bs = misuse_sizes[i], size = PK_POOL_BUFFER_SIZE(bs, 20, 0);
        pk_pool p;
        expect(pk_pool_init(&p, arena + 1, size, bs, 0) == PK_OK, "init failed");
        misuse(pk_pool_allocator(&p), (pk_misuse_config){arena + 1, size, bs, bs > 1, 20, NULL, NULL, false});
    }
}

/* The atomic pool: the 32-bit head on 32-bit targets (tests/test_atomic_pool.c). */

static void test_atomic_pool_random(void)
{
    size_t size = PK_ATOMIC_POOL_BUFFER_SIZE(64, 128, 64);
    pk_driver_fill_garbage(arena, size, 2);
    pk_atomic_pool p;
    expect(pk_atomic_pool_init(&p, arena, size, 64, 64) == PK_OK, "init failed");
    pk_driver_config cfg;
    pool_config(&cfg, 64, 64, arena, size, 2);
    drive(pk_atomic_pool_allocator(&p), cfg, 128 + 8);
}

static void test_atomic_pool_misuse(void)
{
    for (size_t i = 0; i < COUNT_OF(misuse_sizes); i++) {
        size_t bs = misuse_sizes[i], size = PK_ATOMIC_POOL_BUFFER_SIZE(bs, 20, 0);
        pk_atomic_pool p;
        expect(pk_atomic_pool_init(&p, arena + 1, size, bs, 0) == PK_OK, "init failed");
        misuse(pk_atomic_pool_allocator(&p), (pk_misuse_config){arena + 1, size, bs, bs > 1, 20, NULL, NULL, false});
    }
}

/* The size classes (tests/test_classes.c). */

static const pk_class_spec mixed_classes[] = {{8, 40, 0}, {24, 30, 8}, {64, 20, 0}, {100, 10, 4}, {512, 5, 64}};

static void classes_random(const pk_class_spec *specs, size_t n, size_t offset, bool fallthrough, uint64_t seed)
{
    size_t need = pk_classes_buffer_size(specs, n);
    pk_driver_fill_garbage(arena + offset, need, need + offset);
    pk_classes set;
    expect(pk_classes_init(&set, arena + offset, need, specs, n) == PK_OK, "init failed");
    pk_classes_set_fallthrough(&set, fallthrough);
    size_t min_align = SIZE_MAX, max_align = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t align = specs[i].align != 0 ? specs[i].align : MAX_ALIGN;
        min_align = min_size(align, min_align);
        max_align = align > max_align ? align : max_align;
        total += specs[i].count;
    }
    drive(pk_classes_allocator(&set),
          (pk_driver_config){
              .realloc_percent = 10,
              .seed = seed,
              .max_size = specs[n - 1].block_size + specs[n - 1].block_size / 8, /* some too large */
              .max_align = max_align * 2,
              .default_align = min_align,
              .region = arena + offset,
              .region_size = need,
          },
          total + 8);
}

static void test_classes_random_powers_of_two(void)
{
    pk_class_spec specs[9];
    for (size_t i = 0; i < 9; i++) {
        specs[i] = (pk_class_spec){(size_t)16 << i, (size_t)16 >> (i / 2), 0};
    }
    classes_random(specs, 9, 3, true, 1);
}

static void test_classes_random_no_fallthrough(void)
{
    classes_random(mixed_classes, COUNT_OF(mixed_classes), 0, false, 3);
}

static void test_classes_misuse(void)
{
    size_t n = COUNT_OF(mixed_classes), need = pk_classes_buffer_size(mixed_classes, n);
    for (int ft = 0; ft < 2; ft++) {
        for (size_t offset = 0; offset < 3; offset++) {
            pk_driver_fill_garbage(arena + offset, need, need + offset);
            pk_classes set;
            expect(pk_classes_init(&set, arena + offset, need, mixed_classes, n) == PK_OK, "init failed");
            pk_classes_set_fallthrough(&set, ft != 0);
            /* 8-byte requests: class 0, and every class with fall-through. */
            misuse(pk_classes_allocator(&set),
                   (pk_misuse_config){arena + offset, need, 8, true, ft != 0 ? 40 + 30 + 20 + 10 + 5 : 40, NULL, NULL,
                                      false});
        }
    }
}

/* The slab over a buddy page source (tests/test_slab.c), both locked with
 * the PRIMASK lock of port/cortex-m on Arm. */

#define SLAB_BUDDY_SIZE PK_BUDDY_BUFFER_SIZE(1u << 16, 0)
#define SLAB_PAGE 4096u
#define SLAB_PAGES 16u

static size_t ctors, dtors;

static void count_ctor(void *obj, void *ctx)
{
    (void)obj;
    (void)ctx;
    ctors++;
}

static void count_dtor(void *obj, void *ctx)
{
    (void)obj;
    (void)ctx;
    dtors++;
}

static void test_slab_over_buddy_random(void)
{
    pk_buddy b;
    expect(pk_buddy_init(&b, arena, SLAB_BUDDY_SIZE, 0) == PK_OK, "buddy init failed");
#if defined(__arm__)
    pk_cortex_m_primask_state irq_off = PK_CORTEX_M_PRIMASK_STATE_INIT;
    pk_lock lock = pk_cortex_m_primask_lock(&irq_off);
    expect(pk_buddy_set_lock(&b, &lock) == PK_OK, "buddy set_lock failed");
#endif
    pk_page_source src = pk_page_source_buddy(&b);
    pk_slab_cache c;
    ctors = dtors = 0;
    expect(pk_slab_init(&c, "driven over buddy", 40, 8, count_ctor, count_dtor, NULL, &src, SLAB_PAGE) == PK_OK,
           "slab init failed");
#if defined(__arm__)
    expect(pk_slab_set_lock(&c, &lock) == PK_OK, "slab set_lock failed");
#endif
    drive(pk_slab_allocator(&c),
          (pk_driver_config){
              .realloc_percent = 10,
              .grows_on_demand = true,
              .seed = 11,
              .max_size = 40,
              .max_align = 8,
              .default_align = 8,
              .region = arena,
              .region_size = SLAB_BUDDY_SIZE,
              .block_size = 40,
          },
          pk_slab_objects_per_slab(40, 8, SLAB_PAGE) * SLAB_PAGES + 8);
    (void)pk_slab_shrink(&c);
    pk_stats s;
    pk_buddy_stats(&b, &s);
    expect(s.in_use == 0, "pages not given back to the buddy");
    expect(ctors == dtors && ctors > 0, "constructors and destructors do not match");
    expect(pk_buddy_check(&b) == PK_OK, "buddy check failed");
#if defined(__arm__)
    uint32_t primask;
    __asm__ volatile("mrs %0, primask" : "=r"(primask));
    expect(irq_off.depth == 0 && primask == 0, "the PRIMASK lock left interrupts disabled");
#endif
}

/* The misuse driver counts blocks smaller than a pointer in a table of 4096
 * (it cannot chain through them): over fewer pages, so that the 1-byte
 * objects stay below that. */
#define SLAB_SMALL_PAGES 2u

static void test_slab_misuse(void)
{
    static const size_t sizes[] = {1, 8, 24, 64, 100, 1000};
    for (size_t i = 0; i < COUNT_OF(sizes); i++) {
        size_t pages = sizes[i] < sizeof(void *) ? SLAB_SMALL_PAGES : SLAB_PAGES;
        size_t buddy_size = PK_BUDDY_BUFFER_SIZE(pages * SLAB_PAGE, 0);
        pk_buddy b;
        expect(pk_buddy_init(&b, arena, buddy_size, 0) == PK_OK, "buddy init failed");
        pk_page_source src = pk_page_source_buddy(&b);
        pk_slab_cache c;
        expect(pk_slab_init(&c, "driven", sizes[i], 0, NULL, NULL, NULL, &src, SLAB_PAGE) == PK_OK,
               "slab init failed");
        misuse(pk_slab_allocator(&c),
               (pk_misuse_config){arena, buddy_size, sizes[i], sizes[i] > 1,
                                  pages * pk_slab_objects_per_slab(sizes[i], 0, SLAB_PAGE), NULL, NULL, false});
        (void)pk_slab_shrink(&c);
    }
}

/* The buddy (tests/test_buddy.c). */

static void test_buddy_random(void)
{
    pk_driver_fill_garbage(arena, 1u << 14, 21);
    pk_buddy b;
    expect(pk_buddy_init(&b, arena, 1u << 14, 16) == PK_OK, "init failed");
    drive(pk_buddy_allocator(&b),
          (pk_driver_config){
              .realloc_percent = 10,
              .seed = 21,
              .max_size = 256,
              .default_align = b.min_block,
              .region = arena,
              .region_size = 1u << 14,
              .requested_exact = true,
          },
          COUNT_OF(slots));
}

static void test_buddy_random_aligned(void)
{
    size_t size = 30000 + 17;
    pk_driver_fill_garbage(arena, size, 23);
    pk_buddy b;
    expect(pk_buddy_init(&b, arena, size, 32) == PK_OK, "init failed");
    drive(pk_buddy_allocator(&b),
          (pk_driver_config){
              .realloc_percent = 10,
              .seed = 23,
              .min_size = 1,
              .max_size = 4096,
              .max_align = 4096,
              .default_align = b.min_block,
              .region = arena,
              .region_size = size,
              .requested_exact = true,
          },
          COUNT_OF(slots));
}

static void test_buddy_misuse(void)
{
    pk_buddy b;
    expect(pk_buddy_init(&b, arena, 1u << 16, 0) == PK_OK, "init failed");
    pk_stats s;
    pk_buddy_stats(&b, &s);
    misuse(pk_buddy_allocator(&b),
           (pk_misuse_config){arena, 1u << 16, 100, true,
                              s.capacity / (PK_BUDDY_DEBUG_OVERHEAD(0) + 100 <= 128 ? 128 : 256), NULL, NULL, false});
}

/* The O(1) heap (tests/test_heap.c). */

static void heap_random(size_t offset, size_t size, size_t min, size_t max, size_t max_align, uint64_t seed)
{
    pk_driver_fill_garbage(arena + offset, size, seed);
    pk_heap h;
    expect(pk_heap_init(&h, arena + offset, size) == PK_OK, "init failed");
    drive(pk_heap_allocator(&h),
          (pk_driver_config){
              .realloc_percent = 10,
              .seed = seed,
              .min_size = min,
              .max_size = max,
              .max_align = max_align,
              .default_align = PK_HEAP_ALIGN,
              .region = arena + offset,
              .region_size = size,
          },
          COUNT_OF(slots));
}

static void test_heap_random_small(void)
{
    heap_random(0, 1u << 14, 0, 256, 0, 11);
}

static void test_heap_random_aligned(void)
{
    heap_random(1, 1u << 16, 1, 2048, 4096, 13);
}

static void test_heap_misuse(void)
{
    pk_heap h;
    expect(pk_heap_init(&h, arena, 1u << 16) == PK_OK, "init failed");
    misuse(pk_heap_allocator(&h),
           (pk_misuse_config){arena, 1u << 16, 100, PK_HEAP_STRICT_FREE != 0, 0, NULL, NULL, false});
}

/* The free-list heap, each policy (tests/test_fit.c). */

static void fit_random(pk_fit_policy policy, size_t offset, size_t size, size_t max_size, uint64_t seed)
{
    pk_driver_fill_garbage(arena + offset, size, seed);
    pk_fit f;
    expect(pk_fit_init(&f, arena + offset, size, policy, 0) == PK_OK, "init failed");
    drive(pk_fit_allocator(&f),
          (pk_driver_config){
              .realloc_percent = 10,
              .seed = seed,
              .max_size = max_size,
              .default_align = PK_FIT_ALIGN,
              .region = arena + offset,
              .region_size = size,
          },
          COUNT_OF(slots));
    /* Drained and coalesced: one free block over everything, less a debug
     * build's tag and guards. (With hard float the doubles come back in FPU
     * registers: this runs the FPU.) */
    pk_stats s;
    pk_fit_stats(&f, &s);
    expect(pk_frag_internal(&s) == 0.0 && pk_frag_external(&s) < 0.01, "the drained heap is fragmented");
}

static void test_fit_first_random(void)
{
    fit_random(PK_FIT_FIRST, 0, 1u << 16, 4096, 21);
}

static void test_fit_best_random(void)
{
    fit_random(PK_FIT_BEST, 3, 1u << 15, 2048, 22);
}

static void test_fit_next_random(void)
{
    fit_random(PK_FIT_NEXT, 5, 1u << 16, 4096, 23);
}

static void fit_misuse(pk_fit_policy policy)
{
    static const size_t sizes[] = {1, 64, 100, 1000};
    const size_t total = 1u << 14;
    for (unsigned flags = 0; flags <= PK_FIT_NO_COALESCE; flags++) {
        for (size_t i = 0; i < COUNT_OF(sizes); i++) {
            pk_driver_fill_garbage(arena, total + PK_FIT_ALIGN, total);
            pk_fit f;
            expect(pk_fit_init(&f, arena, total + PK_FIT_ALIGN, policy, flags) == PK_OK, "init failed");
            size_t capacity = total / PK_FIT_BLOCK_SIZE(sizes[i]);
            misuse(pk_fit_allocator(&f),
                   (pk_misuse_config){arena, total + PK_FIT_ALIGN, sizes[i], false, capacity, NULL, NULL, false});
        }
    }
}

static void test_fit_first_misuse(void)
{
    fit_misuse(PK_FIT_FIRST);
}

static void test_fit_best_misuse(void)
{
    fit_misuse(PK_FIT_BEST);
}

static void test_fit_next_misuse(void)
{
    fit_misuse(PK_FIT_NEXT);
}

/* The arena: frees reclaim nothing, so the operations are spread over runs
 * with a reset between them (tests/test_arena.c). */

static void arena_random(size_t offset, size_t size, size_t max_size, size_t max_align, size_t runs, uint64_t seed)
{
    unsigned char *region = arena + offset;
    pk_driver_fill_garbage(region, size, seed);
    pk_arena a;
    expect(pk_arena_init(&a, region, size) == PK_OK, "init failed");
    for (size_t run = 0; run < runs && problems == 0; run++) {
        pk_driver_config cfg = {
            .seed = seed * 1000 + run,
            .ops = OPS / runs,
            .max_size = max_size,
            .max_align = max_align,
            .default_align = MAX_ALIGN,
            .region = region,
            .region_size = size,
            .requested_exact = true,
            .slots = slots,
            .slot_count = COUNT_OF(slots),
            .report = report,
            .frees_reclaim_nothing = true,
            .align_as_asked = true,
        };
        pk_driver_result result;
        if (pk_driver_run(pk_arena_allocator(&a), &cfg, &result) == 0) {
            expect(result.ops == OPS / runs, "the driver ran short");
        }
        pk_arena_reset(&a);
        expect(pk_arena_check(&a) == PK_OK, "check failed after reset");
    }
}

static void test_arena_random_small(void)
{
    arena_random(1, 16384, 64, 0, 20, 1);
}

static void test_arena_random_aligned(void)
{
    arena_random(3, 1u << 16, 512, 4096, 20, 2);
}

static void test_arena_misuse(void)
{
    for (size_t i = 0; i < COUNT_OF(misuse_sizes); i++) {
        pk_arena a;
        expect(pk_arena_init(&a, arena + 1, 4096) == PK_OK, "init failed");
        misuse(pk_arena_allocator(&a), (pk_misuse_config){arena + 1, 4096, misuse_sizes[i], false, 0, NULL, NULL, true});
    }
}

#if defined(PK_CM_INJECT)
static void test_injected(void)
{
    const char *failure = pk_cm_inject();
    expect(failure == NULL, failure);
}
#endif

typedef struct {
    const char *name;
    void (*run)(void);
} test;

static const test tests[] = {
#if defined(PK_CM_INJECT)
    {"injected breakage", test_injected},
#endif
    {"pool PK_POOL_DEFINE random", test_pool_define_random},
    {"pool PK_POOL_DEFINE misuse", test_pool_define_misuse},
    {"pool PK_POOL_DEFINE_IN blocks in .dma_ram", test_pool_define_in_section},
    {"pool PK_POOL_DEFINE_IN random", test_pool_define_in_random},
    {"pool PK_POOL_DEFINE_IN misuse", test_pool_define_in_misuse},
    {"pool misuse, 5 block sizes", test_pool_misuse_sizes},
    {"atomic pool random", test_atomic_pool_random},
    {"atomic pool misuse", test_atomic_pool_misuse},
    {"classes random, powers of two", test_classes_random_powers_of_two},
    {"classes random, no fall-through", test_classes_random_no_fallthrough},
    {"classes misuse", test_classes_misuse},
    {"slab over buddy random", test_slab_over_buddy_random},
    {"slab misuse", test_slab_misuse},
    {"buddy random", test_buddy_random},
    {"buddy random, aligned", test_buddy_random_aligned},
    {"buddy misuse", test_buddy_misuse},
    {"heap random", test_heap_random_small},
    {"heap random, aligned", test_heap_random_aligned},
    {"heap misuse", test_heap_misuse},
    {"fit first random", test_fit_first_random},
    {"fit best random", test_fit_best_random},
    {"fit next random", test_fit_next_random},
    {"fit first misuse", test_fit_first_misuse},
    {"fit best misuse", test_fit_best_misuse},
    {"fit next misuse", test_fit_next_misuse},
    {"arena random", test_arena_random_small},
    {"arena random, aligned", test_arena_random_aligned},
    {"arena misuse", test_arena_misuse},
};

static void put_unsigned(unsigned v)
{
    char digits[12];
    size_t i = sizeof digits - 1;
    digits[i] = '\0';
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    pk_semihosting_write(&digits[i]);
}

int main(void)
{
    pk_driver_fill_garbage(__dma_ram_start, DMA_RAM_SIZE, 1);
    unsigned passed = 0, failed = 0;
    for (size_t i = 0; i < COUNT_OF(tests); i++) {
        problems = 0;
        unexpected_faults = 0;
        pk_set_fault_handler(count_fault, NULL);
        tests[i].run();
        expect(unexpected_faults == 0, "a fault was reported");
        if (problems == 0) {
            passed++;
            pk_semihosting_write("ok ");
            pk_semihosting_write(tests[i].name);
        } else {
            failed++;
            pk_semihosting_write("FAIL ");
            pk_semihosting_write(tests[i].name);
            pk_semihosting_write(": ");
            pk_semihosting_write(first_problem);
            if (problems > 1) {
                pk_semihosting_write(" (");
                put_unsigned(problems);
                pk_semihosting_write(" problems)");
            }
        }
        pk_semihosting_write("\n");
    }
    put_unsigned(passed);
    pk_semihosting_write(" passed, ");
    put_unsigned(failed);
    pk_semihosting_write(" failed\n");
    return failed == 0 ? 0 : 1;
}
