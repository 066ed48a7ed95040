/*
 * Large blocks, 64 KiB..32 MiB: a random working set, the same size
 * allocated and freed again and again, and blocks grown by realloc.
 *
 * 1. Working set: SLOTS slots; each step frees a random slot's block (checked
 *    first) and allocates one of a log-uniform size in 64 KiB..32 MiB in it,
 *    unless that would take the live bytes over WORKING_SET (192 MiB); a new
 *    block has its first half, third or quarter (or all of it) set, and its
 *    last byte.
 * 2. Reuse: for each of six sizes from 64 KiB to 32 MiB, REUSES times: allocate
 *    a block, set its first quarter and last byte, check them, free it.
 * 3. Growth: GROWTHS times, a block grows from 64 KiB by realloc, doubling to
 *    32 MiB, then another by 64 KiB steps to 4 MiB, a small block allocated
 *    between reallocs; each new part is written and every old part's first
 *    and last bytes are checked after each move.
 *
 *   large_blocks [SCALE]   SCALE multiplies the steps of each part (default 1:
 *                          3,000 working-set steps, 100 reuses per size, 8
 *                          growths)
 * Prints "checksum large_blocks HEX" (over the bytes read back); exits 1 when
 * an allocation fails or a byte changed, 2 on bad arguments.
 */
#include <stdbool.h>

#include "malloc_bench.h"

#define PROGRAM "large_blocks"
#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
#define SLOTS 48u
#define WORKING_SET (192 * MIB)
#define MIN_BLOCK (64 * KIB)
#define MAX_BLOCK (32 * MIB)
#define BASE_STEPS 3000u
#define BASE_REUSES 100u
#define BASE_GROWTHS 8u
#define STEP_GROWTH_LIMIT (4 * MIB)

static const char usage[] = "usage: large_blocks [SCALE]   SCALE in (0, 1000] (default 1)\n";

typedef struct {
    unsigned char *data; /* NULL: empty */
    size_t size, touched;
    unsigned char fill;
} block;

static void touch(block *into, size_t size, size_t touched, unsigned char fill)
{
    unsigned char *data = bench_malloc(PROGRAM, size);
    if (touched == size)
        touched--; /* the last byte has its own mark */
    memset(data, fill, touched);
    data[size - 1] = (unsigned char)(fill ^ 0xff);
    *into = (block){data, size, touched, fill};
}

static void release(block *b, uint64_t *checksum)
{
    const unsigned char *data = b->data;
    if (data[0] != b->fill || data[b->touched / 2] != b->fill || data[b->touched - 1] != b->fill ||
        data[b->size - 1] != (unsigned char)(b->fill ^ 0xff))
        bench_fail(PROGRAM, "a block's bytes changed");
    bench_add(checksum, (uint64_t)b->size << 8 ^ data[b->touched - 1]);
    free(b->data);
    b->data = NULL;
}

static void working_set(bench_rng *rng, size_t steps, uint64_t *checksum)
{
    block slots[SLOTS] = {{NULL, 0, 0, 0}};
    size_t live = 0;
    for (size_t step = 0; step < steps; step++) {
        block *b = &slots[bench_below(rng, SLOTS)];
        if (b->data != NULL) {
            live -= b->size;
            release(b, checksum);
        }
        size_t size = bench_log_between(rng, MIN_BLOCK, MAX_BLOCK);
        size_t touched = size / (size_t)bench_between(rng, 1, 4);
        unsigned char fill = (unsigned char)bench_next(rng);
        if (live + size > WORKING_SET)
            continue;
        touch(b, size, touched, fill);
        live += size;
    }
    for (unsigned i = 0; i < SLOTS; i++)
        if (slots[i].data != NULL)
            release(&slots[i], checksum);
}

static void reuse(size_t reuses, uint64_t *checksum)
{
    static const size_t sizes[] = {64 * KIB, 200 * KIB, MIB, 4 * MIB, 12 * MIB, 32 * MIB};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (size_t i = 0; i < reuses; i++) {
            block b;
            touch(&b, sizes[s], sizes[s] / 4, (unsigned char)(i + s));
            release(&b, checksum);
        }
}

/* Writes bytes [from, to) of a growing block: its first and last byte mark the part. */
static void write_part(unsigned char *data, size_t from, size_t to)
{
    memset(data + from, (unsigned char)(from >> 16), to - from);
    data[to - 1] = (unsigned char)(to >> 16 ^ 0x5a);
}

static void check_parts(const unsigned char *data, const size_t *ends, size_t parts, uint64_t *checksum)
{
    size_t from = 0;
    for (size_t i = 0; i < parts; i++) {
        if (data[from] != (unsigned char)(from >> 16) || data[ends[i] - 1] != (unsigned char)(ends[i] >> 16 ^ 0x5a))
            bench_fail(PROGRAM, "realloc lost a block's bytes");
        bench_add(checksum, (uint64_t)data[from] << 8 ^ data[ends[i] - 1]);
        from = ends[i];
    }
}

/* Grows a block from MIN_BLOCK to LIMIT, doubling or by MIN_BLOCK steps. */
static void grow(size_t limit, bool doubling, unsigned char **between, uint64_t *checksum)
{
    static size_t ends[STEP_GROWTH_LIMIT / MIN_BLOCK]; /* the parts' ends: at most this many */
    size_t parts = 0, size = MIN_BLOCK;
    unsigned char *data = bench_malloc(PROGRAM, size);
    write_part(data, 0, size);
    ends[parts++] = size;
    while (size < limit) {
        size_t grown = doubling ? size * 2 : size + MIN_BLOCK;
        unsigned char *moved = realloc(data, grown);
        if (moved == NULL)
            bench_fail(PROGRAM, "realloc failed");
        data = moved;
        check_parts(data, ends, parts, checksum);
        write_part(data, size, grown);
        ends[parts++] = grown;
        size = grown;
        free(*between);
        *between = bench_malloc(PROGRAM, 4 * KIB + parts);
    }
    free(data);
}

int main(int argc, char **argv)
{
    double scale = bench_scale(argc, argv, usage);
    if (argc > 2) {
        fprintf(stderr, "large_blocks: too many arguments\n%s", usage);
        return 2;
    }
    bench_rng rng = bench_rng_seeded(4);
    uint64_t checksum = 0;
    working_set(&rng, bench_scaled(BASE_STEPS, scale), &checksum);
    reuse(bench_scaled(BASE_REUSES, scale), &checksum);
    unsigned char *between = NULL;
    for (size_t i = 0, growths = bench_scaled(BASE_GROWTHS, scale); i < growths; i++) {
        grow(MAX_BLOCK, true, &between, &checksum);
        grow(STEP_GROWTH_LIMIT, false, &between, &checksum);
    }
    free(between);
    bench_print_checksum(PROGRAM, checksum);
    return 0;
}
