/*
 * The soak run (`make soak`): the shared randomized driver (tests/driver/) on
 * every allocator for SOAK_OPS operations in all (default 10^9), split evenly
 * among them. Each allocator's share runs as a series of driver runs of
 * SOAK_RUN_OPS operations (the arena: the unit tests' shorter runs, since its
 * frees give nothing back), each on a freshly made allocator over garbage,
 * each with its own seed, cycling through the configurations the unit tests
 * give the driver (tests/test_*.c: they encode what each allocator
 * guarantees). The driver checks the allocator (pk_check, its stats against
 * the shadow, overlaps) every PK_DRIVER_CHECK_EVERY operations all through.
 *
 * Environment: SOAK_OPS (total operations), SOAK_RUN_OPS (operations per
 * driver run, default 10^7), SOAK_SEED (base seed, default 1), SOAK_ONLY (one
 * allocator's name). `soak --replay NAME CONFIG SEED OPS` replays one run, as
 * printed with a failure. Exits 1 on any problem.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver/driver.h"
#include "poolkit/poolkit.h"

#define DEFAULT_ALIGN _Alignof(max_align_t)
#define COUNT_OF(a) (sizeof(a) / sizeof *(a))

/* Every allocator is made in this buffer in turn (the largest unit-test
 * region, aligned for the buddy's slabs). */
static _Alignas(8192) unsigned char buffer[1 << 20];
static pk_driver_slot slots[8192];

/* The allocator under test; one at a time. */
static union {
    pk_pool pool;
    pk_atomic_pool atomic_pool;
    pk_classes classes;
    struct {
        pk_buddy pages;
        pk_slab_cache cache;
    } slab;
    pk_buddy buddy;
    pk_heap heap;
    pk_fit fit;
    pk_arena arena;
} under_test;

static size_t smaller(size_t a, size_t b)
{
    return a < b ? a : b;
}

static void init_ok(pk_status st, const char *allocator)
{
    if (st != PK_OK) {
        fprintf(stderr, "soak: %s: init failed (%d)\n", allocator, (int)st);
        exit(1);
    }
}

/* The fields every configuration shares; the makers set the rest. */
static void base_config(pk_driver_config *cfg, uint64_t seed, const void *region, size_t region_size)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = seed;
    cfg->region = region;
    cfg->region_size = region_size;
    cfg->slots = slots;
    cfg->slot_count = 4096;
    cfg->realloc_percent = 10;
}

/* Each maker builds its configuration number `config` on garbage and fills
 * cfg as the unit test of that shape does (tests/test_<allocator>.c). */

/* The driver's settings for a fixed-size pool of count blocks of bs bytes
 * aligned to align (0: the default), in the size bytes at region. */
static void fixed_size_config(pk_driver_config *cfg, uint64_t seed, unsigned char *region, size_t size, size_t bs,
                              size_t count, size_t align)
{
    size_t effective_align = align != 0 ? align : DEFAULT_ALIGN;
    base_config(cfg, seed, region, size);
    cfg->max_size = bs;
    cfg->max_align = effective_align;
    cfg->default_align = effective_align;
    cfg->block_size = bs;
    cfg->slot_count = smaller(count + 8, 4096);
}

static const struct {
    size_t block_size, count, align, offset;
} pool_shapes[] = {{8, 200, 0, 3}, {100, 300, 4, 1}, {64, 512, 64, 0}, {24, 1, 8, 5}};

static pk_allocator *make_pool(size_t config, uint64_t seed, pk_driver_config *cfg)
{
    size_t bs = pool_shapes[config].block_size, count = pool_shapes[config].count;
    size_t align = pool_shapes[config].align;
    unsigned char *region = buffer + pool_shapes[config].offset;
    size_t size = PK_POOL_BUFFER_SIZE(bs, count, align);
    pk_driver_fill_garbage(region, size, seed);
    init_ok(pk_pool_init(&under_test.pool, region, size, bs, align), "pool");
    fixed_size_config(cfg, seed, region, size, bs, count, align);
    return pk_pool_allocator(&under_test.pool);
}

static const struct {
    size_t block_size, count, align, offset;
} atomic_pool_shapes[] = {{1, 200, 1, 3}, {64, 512, 64, 0}, {100, 77, 4, 1}};

static pk_allocator *make_atomic_pool(size_t config, uint64_t seed, pk_driver_config *cfg)
{
    size_t bs = atomic_pool_shapes[config].block_size, count = atomic_pool_shapes[config].count;
    size_t align = atomic_pool_shapes[config].align;
    unsigned char *region = buffer + atomic_pool_shapes[config].offset;
    size_t size = PK_ATOMIC_POOL_BUFFER_SIZE(bs, count, align);
    pk_driver_fill_garbage(region, size, seed);
    init_ok(pk_atomic_pool_init(&under_test.atomic_pool, region, size, bs, align), "atomic pool");
    fixed_size_config(cfg, seed, region, size, bs, count, align);
    return pk_atomic_pool_allocator(&under_test.atomic_pool);
}

/* test_classes.c: powers of two, mixed alignments without fallthrough, tiny
 * classes, one class. */
static const struct {
    pk_class_spec specs[9];
    size_t n, offset;
    bool fallthrough;
} classes_shapes[] = {
    {{{16, 64, 0}, {32, 64, 0}, {64, 32, 0}, {128, 32, 0}, {256, 16, 0}, {512, 16, 0}, {1024, 8, 0}, {2048, 8, 0},
      {4096, 4, 0}},
     9, 3, true},
    {{{8, 40, 0}, {24, 30, 8}, {64, 20, 0}, {100, 10, 4}, {512, 5, 64}}, 5, 0, false},
    {{{1, 10, 1}, {2, 10, 1}, {3, 10, 1}, {4, 10, 2}}, 4, 5, true},
    {{{16, 20, 0}}, 1, 2, true},
};

static pk_allocator *make_classes(size_t config, uint64_t seed, pk_driver_config *cfg)
{
    const pk_class_spec *specs = classes_shapes[config].specs;
    size_t n = classes_shapes[config].n;
    unsigned char *region = buffer + classes_shapes[config].offset;
    size_t size = pk_classes_buffer_size(specs, n);
    pk_driver_fill_garbage(region, size, seed);
    init_ok(pk_classes_init(&under_test.classes, region, size, specs, n), "classes");
    pk_classes_set_fallthrough(&under_test.classes, classes_shapes[config].fallthrough);
    size_t min_align = SIZE_MAX, max_align = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t align = specs[i].align != 0 ? specs[i].align : DEFAULT_ALIGN;
        min_align = align < min_align ? align : min_align;
        max_align = align > max_align ? align : max_align;
        total += specs[i].count;
    }
    base_config(cfg, seed, region, size);
    cfg->max_size = specs[n - 1].block_size + specs[n - 1].block_size / 8; /* some too large */
    cfg->max_align = max_align * 2;
    cfg->default_align = min_align;
    cfg->slot_count = smaller(total + 8, 4096);
    return pk_classes_allocator(&under_test.classes);
}

/* test_slab.c's driver shapes, with slabs from a buddy of 64 KiB
 * (pk_page_source_buddy) at the start of the buffer, aligned to 8 KiB so
 * that every slab is aligned. */
static const struct {
    size_t object_size, align, slab_size;
} slab_shapes[] = {{8, 0, 256}, {100, 4, 4096}, {64, 64, 2048}, {24, 0, 1024}};

static pk_allocator *make_slab(size_t config, uint64_t seed, pk_driver_config *cfg)
{
    size_t size = PK_BUDDY_BUFFER_SIZE(1u << 16, 0);
    size_t object_size = slab_shapes[config].object_size, align = slab_shapes[config].align;
    size_t slab_size = slab_shapes[config].slab_size;
    pk_driver_fill_garbage(buffer, size, seed);
    init_ok(pk_buddy_init(&under_test.slab.pages, buffer, size, 0), "slab's buddy");
    pk_page_source source = pk_page_source_buddy(&under_test.slab.pages);
    init_ok(pk_slab_init(&under_test.slab.cache, "soak", object_size, align, NULL, NULL, NULL, &source, slab_size),
            "slab");
    size_t effective_align = align != 0 ? align : DEFAULT_ALIGN;
    size_t capacity = pk_slab_objects_per_slab(object_size, align, slab_size) * ((1u << 16) / slab_size);
    base_config(cfg, seed, buffer, size);
    cfg->grows_on_demand = true;
    cfg->max_size = object_size;
    cfg->max_align = effective_align;
    cfg->default_align = effective_align;
    cfg->block_size = object_size;
    cfg->slot_count = smaller(capacity + 8, 4096);
    return pk_slab_allocator(&under_test.slab.cache);
}

static const struct {
    size_t offset, size, min_block, min_size, max_size, max_align;
} buddy_shapes[] = {
    {0, 1 << 16, 16, 0, 256, 0},        {5, (1 << 20) - 5, 16, 16, 4096, 0}, {0, 300000 + 17, 32, 1, 8192, 8192},
    {64, 777777, 4096, 0, 40000, 0},    {3, 123457, 256, 1, 3000, 512},      {1, 1000, 0, 0, 200, 64},
};

static pk_allocator *make_buddy(size_t config, uint64_t seed, pk_driver_config *cfg)
{
    unsigned char *region = buffer + buddy_shapes[config].offset;
    size_t size = buddy_shapes[config].size;
    pk_driver_fill_garbage(region, size, seed);
    init_ok(pk_buddy_init(&under_test.buddy, region, size, buddy_shapes[config].min_block), "buddy");
    base_config(cfg, seed, region, size);
    cfg->min_size = buddy_shapes[config].min_size;
    cfg->max_size = buddy_shapes[config].max_size;
    cfg->max_align = buddy_shapes[config].max_align;
    cfg->default_align = under_test.buddy.min_block;
    cfg->requested_exact = true;
    return pk_buddy_allocator(&under_test.buddy);
}

static const struct {
    size_t offset, size, min_size, max_size, max_align;
} heap_shapes[] = {
    {0, 1 << 16, 0, 256, 0}, {5, (1 << 20) - 5, 16, 4096, 0}, {1, 1 << 18, 1, 2048, 4096}, {3, 4096, 0, 512, 64},
};

static pk_allocator *make_heap(size_t config, uint64_t seed, pk_driver_config *cfg)
{
    unsigned char *region = buffer + heap_shapes[config].offset;
    size_t size = heap_shapes[config].size;
    pk_driver_fill_garbage(region, size, seed);
    init_ok(pk_heap_init(&under_test.heap, region, size), "heap");
    base_config(cfg, seed, region, size);
    cfg->min_size = heap_shapes[config].min_size;
    cfg->max_size = heap_shapes[config].max_size;
    cfg->max_align = heap_shapes[config].max_align;
    cfg->default_align = PK_HEAP_ALIGN;
    return pk_heap_allocator(&under_test.heap);
}

/* test_fit.c's shapes, each run with every policy (the policy is the
 * allocator's name here: fit first, best and next are soaked apart). */
static const struct {
    size_t offset, size, max_size, max_align;
    unsigned flags;
} fit_shapes[] = {
    {0, 1 << 18, 4096, 0, 0},
    {3, 1 << 17, 2048, 0, 0},
    {1, 1 << 17, 1024, 0, PK_FIT_NO_COALESCE},
    {1, 1 << 17, 2048, 4096, 0},
    {3, 4096, 512, 64, 0},
    {3, 4096, 512, 64, PK_FIT_NO_COALESCE},
};

static pk_allocator *make_fit(pk_fit_policy policy, size_t config, uint64_t seed, pk_driver_config *cfg)
{
    unsigned char *region = buffer + fit_shapes[config].offset;
    size_t size = fit_shapes[config].size;
    pk_driver_fill_garbage(region, size, seed);
    init_ok(pk_fit_init(&under_test.fit, region, size, policy, fit_shapes[config].flags), "fit");
    base_config(cfg, seed, region, size);
    cfg->max_size = fit_shapes[config].max_size;
    cfg->max_align = fit_shapes[config].max_align;
    cfg->default_align = PK_FIT_ALIGN;
    return pk_fit_allocator(&under_test.fit);
}

static pk_allocator *make_fit_first(size_t config, uint64_t seed, pk_driver_config *cfg)
{
    return make_fit(PK_FIT_FIRST, config, seed, cfg);
}

static pk_allocator *make_fit_best(size_t config, uint64_t seed, pk_driver_config *cfg)
{
    return make_fit(PK_FIT_BEST, config, seed, cfg);
}

static pk_allocator *make_fit_next(size_t config, uint64_t seed, pk_driver_config *cfg)
{
    return make_fit(PK_FIT_NEXT, config, seed, cfg);
}

/* test_arena.c's shapes; run_ops is the length of the unit tests' runs
 * between resets (the arena fills and then only fails). */
static const struct {
    size_t offset, size, max_size, max_align, run_ops;
} arena_shapes[] = {
    {1, 16384, 64, 0, 5000}, {3, 1 << 16, 512, 4096, 5000}, {7, 300, 100, 64, 500},
    {5, 100000, 256, 16, 100000}, {0, 32768, 200, 128, 2500},
};

static pk_allocator *make_arena(size_t config, uint64_t seed, pk_driver_config *cfg)
{
    unsigned char *region = buffer + arena_shapes[config].offset;
    size_t size = arena_shapes[config].size;
    pk_driver_fill_garbage(region, size, seed);
    init_ok(pk_arena_init(&under_test.arena, region, size), "arena");
    base_config(cfg, seed, region, size);
    cfg->realloc_percent = 0;
    cfg->max_size = arena_shapes[config].max_size;
    cfg->max_align = arena_shapes[config].max_align;
    cfg->default_align = DEFAULT_ALIGN;
    cfg->requested_exact = true;
    cfg->slot_count = COUNT_OF(slots);
    cfg->frees_reclaim_nothing = true;
    cfg->align_as_asked = true;
    return pk_arena_allocator(&under_test.arena);
}

typedef struct {
    const char *name;
    pk_allocator *(*make)(size_t config, uint64_t seed, pk_driver_config *cfg);
    size_t configs;
} soaked;

static const soaked allocators[] = {
    {"pool", make_pool, COUNT_OF(pool_shapes)},
    {"atomic_pool", make_atomic_pool, COUNT_OF(atomic_pool_shapes)},
    {"classes", make_classes, COUNT_OF(classes_shapes)},
    {"slab_buddy", make_slab, COUNT_OF(slab_shapes)},
    {"buddy", make_buddy, COUNT_OF(buddy_shapes)},
    {"heap", make_heap, COUNT_OF(heap_shapes)},
    {"fit_first", make_fit_first, COUNT_OF(fit_shapes)},
    {"fit_best", make_fit_best, COUNT_OF(fit_shapes)},
    {"fit_next", make_fit_next, COUNT_OF(fit_shapes)},
    {"arena", make_arena, COUNT_OF(arena_shapes)},
};

static const soaked *find_allocator(const char *name)
{
    for (size_t i = 0; i < COUNT_OF(allocators); i++) {
        if (strcmp(allocators[i].name, name) == 0) {
            return &allocators[i];
        }
    }
    return NULL;
}

/* Operations of one driver run of this configuration. */
static size_t run_length(const soaked *s, size_t config, size_t run_ops)
{
    return s->make == make_arena ? arena_shapes[config].run_ops : run_ops;
}

typedef struct {
    const char *name;
    size_t config;
} report_context;

static void report(void *ctx, const char *line)
{
    const report_context *rc = ctx;
    printf("FAIL %s config %zu: %s\n", rc->name, rc->config, line);
    fflush(stdout);
}

/* One driver run on a fresh allocator; then, the allocator drained, its
 * check and its stats once more (a failed run stops undrained). Returns the number of problems. */
static unsigned run_once(const soaked *s, size_t config, uint64_t seed, size_t ops, pk_driver_result *out)
{
    pk_driver_config cfg;
    pk_allocator *a = s->make(config, seed, &cfg);
    cfg.ops = ops;
    report_context rc = {s->name, config};
    cfg.report = report;
    cfg.report_ctx = &rc;
    unsigned problems = pk_driver_run(a, &cfg, out);
    if (out->ops != ops && problems == 0) {
        report(&rc, "the driver stopped early");
        problems++;
    }
    pk_stats st;
    pk_stats_get(a, &st);
    if (problems == 0 && (pk_check(a) != PK_OK || (!cfg.frees_reclaim_nothing && (st.live != 0 || st.in_use != 0)))) {
        report(&rc, "not empty or not consistent after the drain");
        problems++;
    }
    if (problems != 0) {
        printf("replay: soak --replay %s %zu %" PRIu64 " %zu\n", s->name, config, seed, ops);
    }
    return problems;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static size_t env_size(const char *name, size_t fallback)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        return fallback;
    }
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end != '\0' || n == 0) {
        fprintf(stderr, "soak: %s must be a positive number\n", name);
        exit(2);
    }
    return (size_t)n;
}

/* Runs `ops` operations on one allocator; prints progress about every tenth
 * and the totals. Returns the number of problems. */
static unsigned soak_allocator(const soaked *s, size_t ops, size_t run_ops, uint64_t seed)
{
    pk_driver_result total = {0, 0, 0, 0, 0, 0};
    unsigned problems = 0;
    size_t runs = 0, next_progress = ops / 10;
    double start = now();
    printf("%s: %zu operations, runs of %zu (the arena: its unit tests' lengths)\n", s->name, ops, run_ops);
    fflush(stdout);
    while (total.ops < ops && problems == 0) {
        size_t config = runs % s->configs;
        size_t length = smaller(run_length(s, config, run_ops), ops - total.ops);
        uint64_t run_seed = seed * 1000003u + runs;
        pk_driver_result r;
        problems += run_once(s, config, run_seed, length, &r);
        total.ops += r.ops;
        total.allocs += r.allocs;
        total.frees += r.frees;
        total.failures += r.failures;
        total.checks += r.checks;
        total.max_live = r.max_live > total.max_live ? r.max_live : total.max_live;
        runs++;
        if (total.ops >= next_progress && total.ops < ops) {
            printf("  %s: %zu%% (%zu operations, %.0f s)\n", s->name, (size_t)((double)total.ops * 100 / (double)ops), total.ops,
                   now() - start);
            fflush(stdout);
            next_progress += ops / 10;
        }
    }
    printf("%-12s %s ops %zu allocs %zu frees %zu failures %zu checks %zu max_live %zu runs %zu seconds %.1f\n",
           s->name, problems == 0 ? "ok  " : "FAIL", total.ops, total.allocs, total.frees, total.failures,
           total.checks, total.max_live, runs, now() - start);
    fflush(stdout);
    return problems;
}

static int replay(char **argv)
{
    const soaked *s = find_allocator(argv[0]);
    if (s == NULL) {
        fprintf(stderr, "soak: no allocator %s\n", argv[0]);
        return 2;
    }
    size_t config = (size_t)strtoull(argv[1], NULL, 10);
    if (config >= s->configs) {
        fprintf(stderr, "soak: %s has %zu configurations\n", s->name, s->configs);
        return 2;
    }
    pk_driver_result r;
    unsigned problems = run_once(s, config, strtoull(argv[2], NULL, 10), (size_t)strtoull(argv[3], NULL, 10), &r);
    printf("replay %s config %zu: %u problems\n", s->name, config, problems);
    return problems == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "--replay") == 0) {
        return replay(&argv[2]);
    }
    if (argc != 1) {
        fprintf(stderr, "usage: soak (SOAK_OPS, SOAK_RUN_OPS, SOAK_SEED, SOAK_ONLY)\n"
                        "       soak --replay NAME CONFIG SEED OPS\n");
        return 2;
    }
    size_t total_ops = env_size("SOAK_OPS", 1000000000u);
    size_t run_ops = env_size("SOAK_RUN_OPS", 10000000u);
    uint64_t seed = env_size("SOAK_SEED", 1);
    const char *only = getenv("SOAK_ONLY");
    if (only != NULL && *only != '\0' && find_allocator(only) == NULL) {
        fprintf(stderr, "soak: no allocator %s\n", only);
        return 2;
    }
    size_t count = only != NULL && *only != '\0' ? 1 : COUNT_OF(allocators);
    size_t per_allocator = total_ops / count;
    printf("soak: %zu operations, %zu per allocator, seed %" PRIu64 ", library %s build\n", total_ops, per_allocator,
           seed, PK_DEBUG ? "debug" : "release");
    unsigned passed = 0, failed = 0;
    double start = now();
    for (size_t i = 0; i < COUNT_OF(allocators); i++) {
        if (only != NULL && *only != '\0' && strcmp(only, allocators[i].name) != 0) {
            continue;
        }
        if (soak_allocator(&allocators[i], per_allocator, run_ops, seed + i) == 0) {
            passed++;
        } else {
            failed++;
        }
    }
    printf("soak: %.1f s\n%u passed, %u failed\n", now() - start, passed, failed);
    return failed == 0 ? 0 : 1;
}
