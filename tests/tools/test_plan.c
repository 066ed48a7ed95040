#define _POSIX_C_SOURCE 200809L
/*
 * `poolkit plan`'s planner (tools/plan/planner.c) on synthetic traces with
 * known live patterns, written with the tests' trace writer
 * (tests/trace/trace_writer.h) and read back with the trace reader:
 * - the classes, their exact high-water marks and the routing (which sizes
 *   share a class, which go to the heap, by the rules of planner.h);
 * - --margin 25 rounds every count and the heap up;
 * - with margin 0 the plan replays without a failure, and the same plan with
 *   one block fewer in any class fails (and a heap 16 bytes smaller fails);
 * - at most PK_CLASSES_MAX classes go to pools;
 * - a trace with no allocation is refused;
 * - the C printed holds the PK_POOL_DEFINE and pk_class_spec lines.
 * The plan is perturbed here, in a program that links the planner, rather
 * than through a test-only option of the tool: the tool's options stay
 * those a user needs.
 *
 *   test_plan              run the checks
 *   test_plan --traces DIR write the traces (and malformed ones) to DIR for
 *                          tests/tools/plan_cli.sh
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "plan/planner.h"
#include "trace/trace_writer.h"
#include "poolkit/classes.h"
#include "poolkit/pool.h"

static int failures, checks;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        checks++;                                                          \
        if (!(cond)) {                                                     \
            fprintf(stderr, "test_plan:%d: %s: ", __LINE__, #cond);        \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
            failures++;                                                    \
        }                                                                  \
    } while (0)

/* ---- Test traces in memory (tests/trace/trace_writer.h over open_memstream):
 * thread 0, seq 0, 1, 2..., each event 1 ns after the one before. */

typedef struct {
    trace_writer writer;
    char *bytes;            /* the trace, once memory_trace_finish has run */
    size_t size;
} memory_trace;

static void memory_trace_start(memory_trace *m, uint32_t version)
{
    *m = (memory_trace){0};
    FILE *f = open_memstream(&m->bytes, &m->size);
    if (f == NULL || trace_writer_start(&m->writer, f, version, 4242) != 0) {
        fprintf(stderr, "test_plan: cannot write a trace in memory\n");
        exit(1);
    }
}

/* Closes the stream: m->bytes and m->size hold the trace (free(m->bytes)). */
static void memory_trace_finish(memory_trace *m)
{
    if (trace_writer_close(&m->writer) != 0) {
        fprintf(stderr, "test_plan: writing a trace in memory failed\n");
        exit(1);
    }
}

static void event(memory_trace *w, pk_trace_op op, uint64_t size, uint64_t align, uint64_t result, uint64_t old)
{
    trace_writer_event(&w->writer, 0, (uint8_t)op, w->writer.seq + 1, size, align, result, old);
}

static void t_malloc(memory_trace *w, uint64_t size, uint64_t result)
{
    event(w, PK_TRACE_MALLOC, size, 0, result, 0);
}
static void t_realloc(memory_trace *w, uint64_t old, uint64_t size, uint64_t result)
{
    event(w, PK_TRACE_REALLOC, size, 0, result, old);
}
static void t_aligned(memory_trace *w, uint64_t size, uint64_t align, uint64_t result)
{
    event(w, PK_TRACE_ALIGNED, size, align, result, 0);
}
static void t_free(memory_trace *w, uint64_t old)
{
    event(w, PK_TRACE_FREE, 0, 0, 0, old);
}

/* The trace w's program wrote, parsed (w finished). */
static pk_trace parsed(memory_trace *w)
{
    memory_trace_finish(w);
    pk_trace t;
    char err[256];
    if (pk_trace_parse((const unsigned char *)w->bytes, w->size, &t, err, sizeof err) != 0) {
        fprintf(stderr, "test_plan: the reader refused a test trace: %s\n", err);
        exit(1);
    }
    return t;
}

/* Traced pointers: distinct, never 0. */
static uint64_t ptr(unsigned n)
{
    return 0x100000u + (uint64_t)n * 0x1000u;
}

/* ---- The synthetic programs ---------------------------------------------- */

/* 10 blocks of 48 B live at once, 3 of 200 B, one of 100 KiB, all together;
 * then some churn below those peaks, a 40 B block realloc'd to 190 B. */
static void known_program(memory_trace *w)
{
    for (unsigned i = 0; i < 10; i++) {
        t_malloc(w, 48, ptr(i));
    }
    for (unsigned i = 0; i < 3; i++) {
        t_malloc(w, 200, ptr(10 + i));
    }
    t_malloc(w, 100 * 1024, ptr(13));
    for (unsigned i = 0; i < 14; i++) {
        t_free(w, ptr(i));
    }
    for (unsigned round = 0; round < 3; round++) {
        for (unsigned i = 0; i < 5; i++) {
            t_malloc(w, 48, ptr(20 + i));
        }
        for (unsigned i = 0; i < 5; i++) {
            t_free(w, ptr(20 + i));
        }
    }
    t_malloc(w, 40, ptr(30));
    t_realloc(w, ptr(30), 190, ptr(31));
    t_free(w, ptr(31));
    t_malloc(w, 1u << 30, 0);   /* failed in the program: not replayed */
    t_free(w, ptr(99));         /* never returned: skipped */
}

/* Sizes merged into one class, reallocs moving blocks between classes, and
 * aligned requests: 4 x 100 B live, 2 freed, 3 x 120 B (100 and 120 share
 * the 128 B class: peak 5, not 4 + 3); 3 x 30 B realloc'd one by one to
 * 60 B (peak 3 in the 32 B class), then 2 x 40 B aligned to 64 while the
 * 60 B blocks live (the 64 B class, aligned to 64: peak 5). */
static void merge_program(memory_trace *w)
{
    for (unsigned i = 0; i < 4; i++) {
        t_malloc(w, 100, ptr(i));
    }
    t_free(w, ptr(0));
    t_free(w, ptr(1));
    for (unsigned i = 0; i < 3; i++) {
        t_malloc(w, 120, ptr(4 + i));
    }
    for (unsigned i = 0; i < 3; i++) {
        t_malloc(w, 30, ptr(10 + i));
    }
    for (unsigned i = 0; i < 3; i++) {
        t_realloc(w, ptr(10 + i), 60, ptr(20 + i));
    }
    t_aligned(w, 40, 64, ptr(30));
    t_aligned(w, 40, 64, ptr(31));
    for (unsigned i = 2; i < 7; i++) {
        t_free(w, ptr(i));
    }
    for (unsigned i = 0; i < 3; i++) {
        t_free(w, ptr(20 + i));
    }
    t_free(w, ptr(30));
    t_free(w, ptr(31));
    /* A realloc within the 128 B class (the block stays or, in debug
     * builds, moves within the class). */
    t_malloc(w, 100, ptr(40));
    t_realloc(w, ptr(40), 120, ptr(41));
    t_free(w, ptr(41));
}

/* 40 sizes each over 5/4 of the one before (so 40 classes), from 16 B to
 * about 620 KiB, all live at once: with --heap-above 1 GiB, the largest 8
 * go to the heap (at most PK_CLASSES_MAX = 32 pools: rule 5). */
#define SPREAD_SIZES 40
static size_t spread_size(unsigned k)
{
    size_t size = 16;
    for (unsigned i = 0; i < k; i++) {
        size = (size + size / 4 + 15) / 16 * 16 + 16;
    }
    return size;
}

static void spread_program(memory_trace *w)
{
    for (unsigned k = 0; k < SPREAD_SIZES; k++) {
        t_malloc(w, spread_size(k), ptr(k));
    }
    for (unsigned k = 0; k < SPREAD_SIZES; k++) {
        t_free(w, ptr(k));
    }
}

/* 50 x 24 B live throughout; 4 x 2000 B live, freed, then one 100 KiB
 * block: the heap the 100 KiB block needs also holds the 2000 B blocks at
 * another time, so their class goes to the heap (rule 6), while the 32 B
 * class, where the heap would save little, stays in a pool. */
static void heap_move_program(memory_trace *w)
{
    for (unsigned i = 0; i < 50; i++) {
        t_malloc(w, 24, ptr(i));
    }
    for (unsigned i = 0; i < 4; i++) {
        t_malloc(w, 2000, ptr(100 + i));
    }
    for (unsigned i = 0; i < 4; i++) {
        t_free(w, ptr(100 + i));
    }
    t_malloc(w, 100 * 1024, ptr(200));
    t_free(w, ptr(200));
    for (unsigned i = 0; i < 50; i++) {
        t_free(w, ptr(i));
    }
}

/* ---- Checks -------------------------------------------------------------- */

static const plan_class *class_with_block(const plan *p, size_t block)
{
    for (size_t i = 0; i < p->class_count; i++) {
        if (p->classes[i].block_size == block) {
            return &p->classes[i];
        }
    }
    return NULL;
}

static bool replays_cleanly(const pk_trace *t, const plan *p)
{
    replay_result r;
    memset(&r, 0, sizeof r);
    if (plan_replay(t, p, &r) != 0) {
        fprintf(stderr, "test_plan: plan_replay returned an error\n");
        failures++;
        return false;
    }
    return !r.failed;
}

/* Margin 0 replays cleanly; each class with one block fewer fails; a heap
 * PLAN_GRANULE bytes smaller fails. */
static void check_exact(const char *name, const pk_trace *t, const plan *p)
{
    CHECK(replays_cleanly(t, p), "%s: the plan with margin 0 fails", name);
    plan fewer = *p;
    fewer.classes = malloc(p->class_count * sizeof *fewer.classes + 1);
    for (size_t i = 0; i < p->class_count; i++) {
        memcpy(fewer.classes, p->classes, p->class_count * sizeof *fewer.classes);
        fewer.classes[i].count--;
        CHECK(!replays_cleanly(t, &fewer), "%s: class %zu (%zu B) with %zu blocks instead of %zu still replays",
              name, i, p->classes[i].block_size, fewer.classes[i].count, p->classes[i].count);
    }
    free(fewer.classes);
    if (p->heap_bytes > 0) {
        fewer = *p;
        fewer.heap_bytes -= PLAN_GRANULE;
        CHECK(!replays_cleanly(t, &fewer), "%s: a heap of %zu bytes instead of %zu still replays", name,
              fewer.heap_bytes, p->heap_bytes);
    }
}

static void check_known(void)
{
    memory_trace w;
    memory_trace_start(&w, PK_TRACE_VERSION);
    known_program(&w);
    pk_trace t = parsed(&w);
    plan p;
    char err[256];
    CHECK(plan_build(&t, 0, PLAN_HEAP_ABOVE_DEFAULT, &p, err, sizeof err) == 0, "known: %s", err);
    CHECK(p.class_count == 2, "known: %zu classes, not 2", p.class_count);
    const plan_class *small = class_with_block(&p, 48), *medium = class_with_block(&p, 208);
    CHECK(small && small->peak == 10 && small->count == 10, "known: no 48 B class of 10 blocks");
    CHECK(small && small->held.count == 2 && small->held.sizes[0] == 40 && small->held.sizes[1] == 48,
          "known: the 48 B class does not hold sizes 40 and 48");
    CHECK(small && small->held.allocs == 26, "known: the 48 B class counts %llu allocations, not 26",
          small ? (unsigned long long)small->held.allocs : 0ull);
    CHECK(medium && medium->peak == 3 && medium->count == 3 && medium->align == 0,
          "known: no 208 B class of 3 blocks");
    CHECK(medium && medium->held.count == 2 && medium->held.sizes[0] == 190 && medium->held.sizes[1] == 200,
          "known: the 208 B class does not hold sizes 190 and 200");
    CHECK(p.pool_limit == 208, "known: pools up to %zu B, not 208", p.pool_limit);
    CHECK(p.heap_held.count == 1 && p.heap_held.sizes[0] == 100 * 1024 && p.heap_held.allocs == 1,
          "known: the heap does not hold the 100 KiB block alone");
    CHECK(p.heap_peak_requested == 100 * 1024, "known: heap peak %zu", p.heap_peak_requested);
    CHECK(p.heap_bytes > 100 * 1024 && p.heap_bytes % PLAN_GRANULE == 0, "known: heap of %zu bytes",
          p.heap_bytes);
    CHECK(p.pool_bytes == PK_POOL_BUFFER_SIZE(48, 10, 0) + PK_POOL_BUFFER_SIZE(208, 3, 0),
          "known: pool bytes %zu", p.pool_bytes);
    CHECK(p.heap_alone_bytes > 100 * 1024 + 10 * 48 + 3 * 200, "known: heap alone %zu", p.heap_alone_bytes);
    check_exact("known", &t, &p);

    /* The C a firmware engineer pastes. */
    char *text = NULL;
    size_t text_size = 0;
    FILE *out = open_memstream(&text, &text_size);
    replay_result r;
    memset(&r, 0, sizeof r);
    CHECK(plan_replay(&t, &p, &r) == 0 && !r.failed, "known: replay for the print");
    plan_print(out, &p, "known.trace", &t, &r);
    fclose(out);
    CHECK(strstr(text, "PK_POOL_DEFINE(plan_pool_48, 48, 10, 0);\n"), "known: no 48 B pool line:\n%s", text);
    CHECK(strstr(text, "PK_POOL_DEFINE(plan_pool_208, 208, 3, 0);\n"), "known: no 208 B pool line");
    CHECK(strstr(text, "{48, 10, 0}, ") && strstr(text, "{208, 3, 0}, "), "known: no pk_class_spec lines");
    CHECK(strstr(text, "#define PLAN_HEAP_ABOVE 208 "), "known: no heap limit");
    CHECK(strstr(text, "without failure"), "known: no verdict");
    free(text);
    plan_free(&p);

    /* Margin 25: 10 -> 12.5 -> 13, 3 -> 3.75 -> 4; the heap rounded up too. */
    CHECK(plan_build(&t, 0, PLAN_HEAP_ABOVE_DEFAULT, &p, err, sizeof err) == 0, "known: %s", err);
    size_t heap0 = p.heap_bytes;
    plan_free(&p);
    CHECK(plan_build(&t, 25, PLAN_HEAP_ABOVE_DEFAULT, &p, err, sizeof err) == 0, "known 25: %s", err);
    small = class_with_block(&p, 48);
    medium = class_with_block(&p, 208);
    CHECK(small && small->peak == 10 && small->count == 13, "known 25: the 48 B class has not 13 blocks");
    CHECK(medium && medium->peak == 3 && medium->count == 4, "known 25: the 208 B class has not 4 blocks");
    size_t heap25 = (heap0 * 125 + 99) / 100;
    heap25 = (heap25 + PLAN_GRANULE - 1) / PLAN_GRANULE * PLAN_GRANULE;
    CHECK(p.heap_needed == heap0 && p.heap_bytes == heap25, "known 25: heap %zu, not %zu", p.heap_bytes,
          heap25);
    CHECK(replays_cleanly(&t, &p), "known 25: the plan fails");
    plan_free(&p);

    /* --heap-above 64: the 190 and 200 B blocks go to the heap with the
     * 100 KiB one. */
    CHECK(plan_build(&t, 0, 64, &p, err, sizeof err) == 0, "known 64: %s", err);
    CHECK(p.class_count == 1 && p.pool_limit == 48 && p.heap_held.count == 3,
          "known 64: %zu classes up to %zu B, %zu sizes on the heap", p.class_count, p.pool_limit,
          p.heap_held.count);
    check_exact("known 64", &t, &p);
    plan_free(&p);
    pk_trace_free(&t);
    free(w.bytes);
}

static void check_merge(void)
{
    memory_trace w;
    memory_trace_start(&w, PK_TRACE_VERSION);
    merge_program(&w);
    pk_trace t = parsed(&w);
    plan p;
    char err[256];
    CHECK(plan_build(&t, 0, PLAN_HEAP_ABOVE_DEFAULT, &p, err, sizeof err) == 0, "merge: %s", err);
    CHECK(p.class_count == 3 && p.heap_bytes == 0 && p.heap_held.count == 0,
          "merge: %zu classes, heap %zu bytes", p.class_count, p.heap_bytes);
    const plan_class *c32 = class_with_block(&p, 32), *c64 = class_with_block(&p, 64),
                     *c128 = class_with_block(&p, 128);
    CHECK(c32 && c32->peak == 3 && c32->count == 3 && c32->align == 0, "merge: no 32 B class of 3");
    CHECK(c64 && c64->peak == 5 && c64->count == 5 && c64->align == 64,
          "merge: no 64 B class of 5 aligned to 64");
    CHECK(c64 && c64->held.count == 2 && c64->held.sizes[0] == 40 && c64->held.sizes[1] == 60,
          "merge: the 64 B class does not hold 40 and 60");
    CHECK(c128 && c128->peak == 5 && c128->count == 5, "merge: no 128 B class of 5 (peak %zu)",
          c128 ? c128->peak : 0);
    CHECK(c128 && c128->held.count == 2 && c128->held.sizes[0] == 100 && c128->held.sizes[1] == 120,
          "merge: the 128 B class does not hold 100 and 120");
    check_exact("merge", &t, &p);
    plan_free(&p);
    pk_trace_free(&t);
    free(w.bytes);
}

static void check_heap_move(void)
{
    memory_trace w;
    memory_trace_start(&w, PK_TRACE_VERSION);
    heap_move_program(&w);
    pk_trace t = parsed(&w);
    plan p;
    char err[256];
    CHECK(plan_build(&t, 0, PLAN_HEAP_ABOVE_DEFAULT, &p, err, sizeof err) == 0, "heap move: %s", err);
    CHECK(p.class_count == 1 && p.classes[0].block_size == 32 && p.classes[0].count == 50,
          "heap move: not one 32 B class of 50 blocks");
    CHECK(p.pool_limit == 32 && p.heap_held.count == 2 && p.heap_held.sizes[0] == 2000,
          "heap move: the 2000 B blocks are not on the heap");
    CHECK(p.heap_bytes < 100 * 1024 + 4 * 2000, "heap move: heap of %zu bytes: it does not share",
          p.heap_bytes);
    check_exact("heap move", &t, &p);
    plan_free(&p);
    pk_trace_free(&t);
    free(w.bytes);
}

static void check_class_limit(void)
{
    memory_trace w;
    memory_trace_start(&w, PK_TRACE_VERSION);
    spread_program(&w);
    pk_trace t = parsed(&w);
    plan p;
    char err[256];
    CHECK(plan_build(&t, 0, (size_t)1 << 30, &p, err, sizeof err) == 0, "spread: %s", err);
    CHECK(p.class_count == PK_CLASSES_MAX && p.pool_limit == spread_size(PK_CLASSES_MAX - 1) &&
              p.heap_held.count == SPREAD_SIZES - PK_CLASSES_MAX,
          "spread: %zu classes up to %zu B, %zu sizes on the heap", p.class_count, p.pool_limit,
          p.heap_held.count);
    for (size_t i = 0; i < p.class_count; i++) {
        CHECK(p.classes[i].block_size == spread_size((unsigned)i) && p.classes[i].count == 1,
              "spread: class %zu: %zu blocks of %zu B", i, p.classes[i].count, p.classes[i].block_size);
    }
    check_exact("spread", &t, &p);
    plan_free(&p);
    pk_trace_free(&t);
    free(w.bytes);
}

static void check_nothing_to_plan(void)
{
    memory_trace w;
    memory_trace_start(&w, PK_TRACE_VERSION);
    pk_trace t = parsed(&w);
    plan p;
    char err[256] = "";
    CHECK(plan_build(&t, 0, PLAN_HEAP_ABOVE_DEFAULT, &p, err, sizeof err) == -1 && strstr(err, "no allocation"),
          "empty: %s", err);
    pk_trace_free(&t);
    free(w.bytes);
    memory_trace_start(&w, PK_TRACE_VERSION);
    t_malloc(&w, 1u << 30, 0);
    t_free(&w, ptr(1));
    t = parsed(&w);
    CHECK(plan_build(&t, 0, PLAN_HEAP_ABOVE_DEFAULT, &p, err, sizeof err) == -1,
          "only a failed call: plan_build accepted it");
    pk_trace_free(&t);
    free(w.bytes);
}

/* ---- Trace files for the command-line test ------------------------------- */

static int write_file(const char *dir, const char *name, const unsigned char *bytes, size_t size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, size, f) != size || fclose(f) != 0) {
        fprintf(stderr, "test_plan: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

static int write_trace(const char *dir, const char *name, void (*program)(memory_trace *), uint32_t version,
                       size_t cut)
{
    memory_trace w;
    memory_trace_start(&w, version);
    if (program) {
        program(&w);
    }
    memory_trace_finish(&w);
    int status = write_file(dir, name, (const unsigned char *)w.bytes, w.size - cut);
    free(w.bytes);
    return status;
}

/* posix_memalign would refuse it, but memalign(24, 100) succeeds in glibc. */
static void odd_align_program(memory_trace *w)
{
    t_malloc(w, 48, ptr(0));
    t_aligned(w, 100, 24, ptr(1));
}

static int write_traces(const char *dir)
{
    mkdir(dir, 0777);
    static const unsigned char not_a_trace[] = "this is not a poolkit trace, just text\n";
    if (write_trace(dir, "known.trace", known_program, PK_TRACE_VERSION, 0) ||
        write_trace(dir, "merge.trace", merge_program, PK_TRACE_VERSION, 0) ||
        write_trace(dir, "heap_move.trace", heap_move_program, PK_TRACE_VERSION, 0) ||
        write_trace(dir, "empty.trace", NULL, PK_TRACE_VERSION, 0) ||
        write_trace(dir, "odd_align.trace", odd_align_program, PK_TRACE_VERSION, 0) ||
        write_trace(dir, "version2.trace", known_program, 2, 0) ||
        write_trace(dir, "truncated.trace", known_program, PK_TRACE_VERSION, 3) ||
        write_file(dir, "not_a_trace.trace", not_a_trace, sizeof not_a_trace - 1)) {
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--traces") == 0) {
        return write_traces(argv[2]);
    }
    if (argc != 1) {
        fprintf(stderr, "usage: test_plan [--traces DIR]\n");
        return 2;
    }
    check_known();
    check_merge();
    check_heap_move();
    check_class_limit();
    check_nothing_to_plan();
    printf("test_plan: %d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
