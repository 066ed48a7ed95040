/*
 * Alloc+free throughput with 1 and 2 threads: the lock-free pk_atomic_pool,
 * pk_pool with a pthread mutex as its lock (pk_pthread_lock), and glibc
 * malloc/free.
 *
 * Each thread repeats a batch: allocate 8 blocks of 64 bytes, write a byte
 * into each, check the bytes, free the 8 blocks; until it has done PAIRS
 * alloc+free pairs. With 2 threads both share the one pool (they contend for
 * its free-list head or its mutex); glibc malloc gives each thread its own
 * cache (tcache, then a per-thread arena), so its threads share nothing. The
 * threads start together at a barrier; a run lasts from the first thread's
 * start to the last one's end (clock_gettime(CLOCK_MONOTONIC)). RUNS runs of
 * every allocator and thread count, interleaved so that machine noise hits
 * all alike; the table gives the aggregate throughput (all threads' pairs per
 * second of the run) as median, min and max over the runs, the scaling
 * (2-thread median / 1-thread median), and how much of a run the threads
 * overlapped (on a busy machine a 2-thread run may be two runs in turn).
 *
 *   bench_threads PAIRS RUNS   PAIRS pairs per thread, RUNS runs
 *   bench_threads --smoke      a few pairs and runs, the pools checked after
 *                              (a ctest: runs under the sanitizers and valgrind)
 *   bench_threads --help
 * Exits 0, 1 when an allocator misbehaves (a failed alloc or free, a byte
 * overwritten, a pool check failing), 2 on bad arguments.
 */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "poolkit/atomic_pool.h"
#include "poolkit/pool.h"
#include "poolkit/pthread_lock.h"

#define BLOCK_SIZE 64
#define BLOCKS 256 /* room for every thread's batch, many times over */
#define BATCH 8
#define MAX_THREADS 2
#define MAX_PAIRS (LONG_MAX / MAX_THREADS) /* per thread */
#define MAX_RUNS 100000L

static const char *const program = "bench_threads";

/* The allocators, each behind the same two calls. */
typedef struct {
    const char *name;
    void *(*alloc)(void *ctx);
    int (*release)(void *ctx, void *block); /* 0 if the free was accepted */
    void *ctx;
} allocator;

static pk_atomic_pool atomic_pool;
static unsigned char atomic_storage[PK_ATOMIC_POOL_BUFFER_SIZE(BLOCK_SIZE, BLOCKS, 0)];
PK_POOL_DEFINE_STATIC(locked_pool, BLOCK_SIZE, BLOCKS, 0); /* its lock is set in setup */
static pthread_mutex_t pool_mutex = PTHREAD_MUTEX_INITIALIZER;

static void *atomic_alloc(void *ctx) { return pk_atomic_pool_alloc(ctx); }
static int atomic_release(void *ctx, void *block) { return pk_atomic_pool_free(ctx, block) != PK_OK; }
static void *locked_alloc(void *ctx) { return pk_pool_alloc(ctx); }
static int locked_release(void *ctx, void *block) { return pk_pool_free(ctx, block) != PK_OK; }

/* Through volatile pointers, so that the compiler cannot pair a malloc with
 * its free and drop both. */
static void *(*volatile libc_malloc)(size_t) = malloc;
static void (*volatile libc_free)(void *) = free;
static void *malloc_alloc(void *ctx) { (void)ctx; return libc_malloc(BLOCK_SIZE); }
static int malloc_release(void *ctx, void *block) { (void)ctx; libc_free(block); return 0; }

static allocator allocators[] = {
    {"pk_atomic_pool", atomic_alloc, atomic_release, &atomic_pool},
    {"pk_pool_locked", locked_alloc, locked_release, &locked_pool},
    {"malloc", malloc_alloc, malloc_release, NULL},
};
#define ALLOCATOR_COUNT (sizeof allocators / sizeof allocators[0])

static const int thread_counts[] = {1, MAX_THREADS};
#define THREAD_COUNT_COUNT (sizeof thread_counts / sizeof thread_counts[0])

static int setup(void)
{
    pk_lock lock = pk_pthread_lock(&pool_mutex);
    if (pk_atomic_pool_init(&atomic_pool, atomic_storage, sizeof atomic_storage, BLOCK_SIZE, 0) != PK_OK ||
        pk_pool_set_lock(&locked_pool, &lock) != PK_OK) {
        fprintf(stderr, "%s: setting up the pools failed\n", program);
        return 1;
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    const allocator *a;
    long pairs;
    unsigned char stamp;   /* the byte this thread writes */
    pthread_barrier_t *start;
    double t0, t1;         /* this thread's start and end */
    int failed;            /* 1: a failed alloc or free, 2: a byte overwritten */
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    const allocator *a = w->a;
    unsigned char *blocks[BATCH];
    int failed = 0;
    pthread_barrier_wait(w->start);
    w->t0 = now_s();
    for (long done = 0; done < w->pairs && failed == 0;) {
        int n = w->pairs - done < BATCH ? (int)(w->pairs - done) : BATCH;
        int got = 0;
        for (; got < n; got++) {
            blocks[got] = a->alloc(a->ctx);
            if (blocks[got] == NULL) {
                failed = 1;
                break;
            }
            blocks[got][0] = w->stamp;
        }
        for (int i = 0; i < got; i++) {
            if (blocks[i][0] != w->stamp) {
                failed = 2; /* another thread was given the same block */
            }
            if (a->release(a->ctx, blocks[i]) != 0) {
                failed = 1;
            }
        }
        done += n;
    }
    w->t1 = now_s();
    w->failed = failed;
    return NULL;
}

/* One run: `threads` threads, `pairs` pairs each. Returns million pairs per
 * second over all threads, or a negative value after a message; *overlap is
 * the share of the run from the last thread's start to the first one's end
 * (0 if the threads never ran at once: an upper bound on their concurrency). */
static double run(const allocator *a, int threads, long pairs, double *overlap)
{
    pthread_barrier_t start;
    worker workers[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    if (pthread_barrier_init(&start, NULL, (unsigned)threads) != 0) {
        fprintf(stderr, "%s: pthread_barrier_init failed\n", program);
        return -1;
    }
    int started = 0;
    for (; started < threads; started++) {
        workers[started] = (worker){a, pairs, (unsigned char)(0xA0 + started), &start, 0, 0, 0};
        if (pthread_create(&ids[started], NULL, work, &workers[started]) != 0) {
            break;
        }
    }
    if (started < threads) {
        /* The started threads wait at the barrier for ever: nothing to save. */
        fprintf(stderr, "%s: pthread_create failed\n", program);
        exit(1);
    }
    double first = 0, last = 0, last_start = 0, first_end = 0;
    int failed = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        first = t == 0 || workers[t].t0 < first ? workers[t].t0 : first;
        last = t == 0 || workers[t].t1 > last ? workers[t].t1 : last;
        last_start = t == 0 || workers[t].t0 > last_start ? workers[t].t0 : last_start;
        first_end = t == 0 || workers[t].t1 < first_end ? workers[t].t1 : first_end;
        failed = workers[t].failed > failed ? workers[t].failed : failed;
    }
    pthread_barrier_destroy(&start);
    if (failed != 0) {
        fprintf(stderr, "%s: %s with %d thread%s: %s\n", program, a->name, threads, threads > 1 ? "s" : "",
                failed == 1 ? "an alloc or free failed" : "a block's byte was overwritten (given out twice?)");
        return -1;
    }
    double seconds = last - first;
    *overlap = seconds > 0 && first_end > last_start ? (first_end - last_start) / seconds : 0;
    return (double)threads * (double)pairs / (seconds > 0 ? seconds : 1e-9) / 1e6;
}

/* The pools must be empty and whole after the runs. */
static int check_pools(void)
{
    pk_stats s;
    pk_atomic_pool_stats(&atomic_pool, &s);
    int bad = pk_atomic_pool_check(&atomic_pool) != PK_OK || s.live != 0;
    pk_pool_stats(&locked_pool, &s);
    bad |= pk_pool_check(&locked_pool) != PK_OK || s.live != 0;
    if (bad) {
        fprintf(stderr, "%s: a pool is not empty and consistent after the runs\n", program);
    }
    return bad;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int bench(long pairs, long runs)
{
    if (setup() != 0) {
        return 1;
    }
    size_t series = ALLOCATOR_COUNT * THREAD_COUNT_COUNT;
    double *samples = calloc(series * (size_t)runs, sizeof *samples);
    double *overlaps = calloc(series * (size_t)runs, sizeof *overlaps);
    if (samples == NULL || overlaps == NULL) {
        free(samples);
        free(overlaps);
        fprintf(stderr, "%s: out of memory for %ld runs\n", program, runs);
        return 1;
    }
    /* A warm-up run of each, untimed: pools carved, malloc's arenas made. */
    for (size_t a = 0; a < ALLOCATOR_COUNT; a++) {
        for (size_t t = 0; t < THREAD_COUNT_COUNT; t++) {
            double overlap;
            if (run(&allocators[a], thread_counts[t], pairs < 10000 ? pairs : 10000, &overlap) < 0) {
                free(samples);
                free(overlaps);
                return 1;
            }
        }
    }
    for (long r = 0; r < runs; r++) {
        for (size_t a = 0; a < ALLOCATOR_COUNT; a++) {
            for (size_t t = 0; t < THREAD_COUNT_COUNT; t++) {
                size_t at = (a * THREAD_COUNT_COUNT + t) * (size_t)runs + (size_t)r;
                samples[at] = run(&allocators[a], thread_counts[t], pairs, &overlaps[at]);
                if (samples[at] < 0) {
                    free(samples);
                    free(overlaps);
                    return 1;
                }
            }
        }
    }
    if (check_pools() != 0) {
        free(samples);
        free(overlaps);
        return 1;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("%ld pairs per thread in batches of %d blocks of %d bytes, %ld runs, %ld CPUs online%s\n", pairs, BATCH,
           BLOCK_SIZE, runs, cpus, cpus < MAX_THREADS ? " (fewer than the threads: they take turns)" : "");
    printf("pk_atomic_pool: lock-free; pk_pool_locked: pk_pool with pk_pthread_lock (a pthread mutex);\n"
           "both threads share the one pool. malloc: glibc's, whose per-thread caches (tcache, arenas)\n"
           "mean its threads share nothing.\n");
    printf("%-16s %7s %14s %8s %8s %9s %9s\n", "allocator", "threads", "Mpairs/s med", "min", "max", "scaling",
           "overlap");
    for (size_t a = 0; a < ALLOCATOR_COUNT; a++) {
        double medians[THREAD_COUNT_COUNT];
        for (size_t t = 0; t < THREAD_COUNT_COUNT; t++) {
            double *s = &samples[(a * THREAD_COUNT_COUNT + t) * (size_t)runs];
            double *o = &overlaps[(a * THREAD_COUNT_COUNT + t) * (size_t)runs];
            qsort(s, (size_t)runs, sizeof *s, compare_double);
            qsort(o, (size_t)runs, sizeof *o, compare_double);
            medians[t] = s[(size_t)runs / 2];
            char scaling[16] = "";
            if (t > 0) {
                snprintf(scaling, sizeof scaling, "x%.2f", medians[t] / medians[0]);
            }
            printf("%-16s %7d %14.2f %8.2f %8.2f %9s %8.0f%%\n", allocators[a].name, thread_counts[t], medians[t],
                   s[0], s[(size_t)runs - 1], scaling, 100 * o[(size_t)runs / 2]);
        }
    }
    printf("(scaling: median with %d threads / median with 1; x%d.00 would be perfect. overlap: median\n"
           " share of a run from the last thread's start to the first one's end; a run whose\n"
           " threads hardly overlapped, on a busy machine, measures them one after the other)\n",
           MAX_THREADS, MAX_THREADS);
    free(samples);
    free(overlaps);
    return 0;
}

/* A positive integer up to max, or 0 after a message. */
static long parse_count(const char *text, const char *what, long max)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v <= 0 || v > max) {
        fprintf(stderr, "%s: %s must be an integer from 1 to %ld, not '%s'\n", program, what, max, text);
        return 0;
    }
    return v;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s PAIRS RUNS | %s --smoke | %s --help\n"
            "Alloc+free throughput of pk_atomic_pool, pk_pool with a pthread mutex and glibc\n"
            "malloc, with 1 and %d threads: each thread allocates %d blocks of %d bytes, writes\n"
            "a byte into each and frees them, until it has done PAIRS pairs; RUNS interleaved\n"
            "runs; million pairs per second over all threads (median, min, max) and the\n"
            "scaling from 1 to %d threads. --smoke: a few pairs, the pools checked after.\n",
            program, program, program, MAX_THREADS, BATCH, BLOCK_SIZE, MAX_THREADS);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--smoke") == 0) {
        return bench(2000, 3);
    }
    if (argc == 3) {
        long pairs = parse_count(argv[1], "PAIRS", MAX_PAIRS);
        long runs = pairs != 0 ? parse_count(argv[2], "RUNS", MAX_RUNS) : 0;
        if (runs == 0) {
            return 2;
        }
        return bench(pairs, runs);
    }
    usage(stderr);
    return 2;
}
