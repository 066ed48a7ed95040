/*
 * Shared by the malloc drop-in benchmarks in bench/malloc/: a seeded
 * generator, the optional scale argument, a commutative checksum and the
 * output line.
 *
 * The programs use only the standard malloc API so that they run the same
 * under any LD_PRELOADed allocator; scripts/malloc_bench.sh compares their
 * time and peak RSS under glibc and under the preloaded library, and their
 * checksum lines, which must match: everything a program computes comes from
 * fixed seeds and the bytes it reads back, never from addresses or timing.
 */
#ifndef MALLOC_BENCH_H
#define MALLOC_BENCH_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MALLOC_BENCH_MAX_SCALE 1000.0

typedef struct {
    uint64_t state;
} bench_rng;

static inline uint64_t bench_mix(uint64_t z) /* splitmix64's finalizer */
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static inline bench_rng bench_rng_seeded(uint64_t seed)
{
    bench_rng rng = {bench_mix(seed + 0x706f6f6c6b6974u)};
    return rng;
}

static inline uint64_t bench_next(bench_rng *rng)
{
    rng->state += 0x9e3779b97f4a7c15u;
    return bench_mix(rng->state);
}

/* In [0, n): the modulo's bias is below 2^-40 for the n used here. */
static inline uint64_t bench_below(bench_rng *rng, uint64_t n)
{
    return bench_next(rng) % n;
}

/* In [lo, hi]. */
static inline size_t bench_between(bench_rng *rng, size_t lo, size_t hi)
{
    return lo + (size_t)bench_below(rng, (uint64_t)(hi - lo) + 1);
}

/* Log-uniform in [lo, hi] (lo > 0): each doubling of lo as likely. */
static inline size_t bench_log_between(bench_rng *rng, size_t lo, size_t hi)
{
    unsigned doublings = 0;
    while ((lo << (doublings + 1)) <= hi)
        doublings++;
    size_t low = lo << bench_below(rng, (uint64_t)doublings + 1);
    size_t high = low * 2 - 1 < hi ? low * 2 - 1 : hi;
    return bench_between(rng, low, high);
}

/* A sum of mixed values: the same whatever order (or thread) adds them. */
static inline void bench_add(uint64_t *checksum, uint64_t value)
{
    *checksum += bench_mix(value);
}

/*
 * The scale: argv[1] if given (a number in (0, 1000]), else 1; it multiplies
 * the program's work, not its object sizes. --help prints the usage and
 * exits 0; a bad argument prints it and exits 2.
 */
static inline double bench_scale(int argc, char **argv, const char *usage)
{
    if (argc < 2)
        return 1.0;
    if (strcmp(argv[1], "--help") == 0) {
        printf("%s", usage);
        exit(0);
    }
    char *end = NULL;
    double scale = strtod(argv[1], &end);
    if (end == argv[1] || *end != '\0' || !(scale > 0.0 && scale <= MALLOC_BENCH_MAX_SCALE)) {
        fprintf(stderr, "%s: bad scale '%s' (a number in (0, %g])\n%s", argv[0], argv[1],
                MALLOC_BENCH_MAX_SCALE, usage);
        exit(2);
    }
    return scale;
}

/* BASE scaled, at least 1. */
static inline size_t bench_scaled(size_t base, double scale)
{
    double scaled = (double)base * scale + 0.5;
    return scaled < 1.0 ? 1 : (size_t)scaled;
}

static inline void bench_fail(const char *program, const char *what)
{
    fprintf(stderr, "%s: %s\n", program, what);
    exit(1);
}

static inline void *bench_malloc(const char *program, size_t size)
{
    void *block = malloc(size);
    if (block == NULL)
        bench_fail(program, "malloc failed");
    return block;
}

/* The one line on stdout: "checksum NAME HEX". */
static inline void bench_print_checksum(const char *program, uint64_t checksum)
{
    printf("checksum %s %016" PRIx64 "\n", program, checksum);
}

#endif
