/*
 * A program written as a user of the installed poolkit would write it: only
 * the installed headers, the library found through find_package(poolkit) or
 * pkg-config. Exits 0 only if everything behaved. Also compiled as C++ by
 * tests/install/run.sh to prove the headers are C++-clean.
 */
#include <stdio.h>
#include <string.h>

#include "poolkit/allocator.h"
#include "poolkit/pool.h"

#define BLOCK_SIZE 48
#define BLOCK_COUNT 16

PK_POOL_DEFINE(consumer_pool, BLOCK_SIZE, BLOCK_COUNT, 0);

/* A second pool made at run time in a buffer sized by the public macro. */
static unsigned char runtime_buf[PK_POOL_BUFFER_SIZE(24, 10, 8)];

static int faults;
static pk_status last_fault = PK_OK;
static const char *last_fault_allocator = "";

static void count_fault(const pk_fault *f, void *ctx)
{
    (void)ctx;
    faults++;
    last_fault = f->kind;
    last_fault_allocator = f->allocator != NULL ? f->allocator : "(null)";
}

static int failed;

static void expect(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "consumer: FAILED: %s\n", what);
        failed = 1;
    }
}

int main(void)
{
    printf("consumer: poolkit %s (%d.%d.%d)\n", PK_VERSION_STRING, PK_VERSION_MAJOR,
           PK_VERSION_MINOR, PK_VERSION_PATCH);
#ifdef PK_EXPECTED_VERSION
    expect(strcmp(PK_VERSION_STRING, PK_EXPECTED_VERSION) == 0,
           "PK_VERSION_STRING matches the package version");
#endif
    pk_set_fault_handler(count_fault, NULL);

    /* Fill the pool, one more alloc fails (a failure, not a fault). */
    void *blocks[BLOCK_COUNT];
    size_t count = 0;
    while (count < BLOCK_COUNT && (blocks[count] = pk_pool_alloc(&consumer_pool)) != NULL) {
        memset(blocks[count], (int)count, BLOCK_SIZE);
        count++;
    }
    expect(count == pk_pool_capacity(&consumer_pool), "capacity == blocks allocated");
    expect(pk_pool_alloc(&consumer_pool) == NULL, "alloc from a full pool returns NULL");
    expect(pk_pool_available(&consumer_pool) == 0, "no block available when full");
    expect(pk_pool_owns(&consumer_pool, blocks[0]), "pool owns its blocks");

    pk_stats st;
    pk_pool_stats(&consumer_pool, &st);
    expect(st.live == BLOCK_COUNT && st.peak_live == BLOCK_COUNT, "stats: live and peak_live");
    expect(st.capacity == (size_t)BLOCK_COUNT * BLOCK_SIZE, "stats: capacity in bytes");
    expect(st.block_size == BLOCK_SIZE && st.failures == 1, "stats: block size and failures");

    for (size_t i = 0; i < count; i++) {
        expect(pk_pool_free(&consumer_pool, blocks[i]) == PK_OK, "free of a live block");
    }
    expect(faults == 0, "no fault during normal use");

    /* Misuse: caught, reported once through the handler, returned. */
    expect(pk_pool_free(&consumer_pool, blocks[3]) == PK_ERR_DOUBLE_FREE,
           "double free returns PK_ERR_DOUBLE_FREE");
    expect(faults == 1 && last_fault == PK_ERR_DOUBLE_FREE, "double free reported once");
    expect(strcmp(last_fault_allocator, "consumer_pool") == 0, "fault names the pool");
    expect(pk_pool_free(&consumer_pool, (unsigned char *)blocks[3] + 1) == PK_ERR_MISALIGNED_PTR,
           "interior free returns PK_ERR_MISALIGNED_PTR");
    expect(pk_pool_free(&consumer_pool, &st) == PK_ERR_FOREIGN_PTR,
           "foreign free returns PK_ERR_FOREIGN_PTR");
    expect(faults == 3, "each misuse reported once");

    pk_pool_stats(&consumer_pool, &st);
    expect(st.live == 0 && st.allocs == BLOCK_COUNT && st.frees == BLOCK_COUNT, "stats after frees");
    expect(st.rejected == 3, "stats: rejected == 3");
    expect(pk_pool_check(&consumer_pool) == PK_OK, "pk_pool_check is OK");
    printf("consumer: %s: %zu blocks of %zu bytes, %zu allocs, %zu frees, %zu rejected, check %s\n",
           pk_name(pk_pool_allocator(&consumer_pool)), pk_pool_capacity(&consumer_pool),
           st.block_size, (size_t)st.allocs, (size_t)st.frees, (size_t)st.rejected,
           pk_status_str(pk_pool_check(&consumer_pool)));

    /* A pool made at run time, used through the generic view. */
    pk_pool rt;
    expect(pk_pool_init(&rt, runtime_buf, sizeof runtime_buf, 24, 8) == PK_OK, "pk_pool_init");
    expect(pk_pool_capacity(&rt) == 10, "PK_POOL_BUFFER_SIZE gives exactly the count");
    pk_allocator *a = pk_pool_allocator(&rt);
    void *p = pk_alloc(a, 20);
    expect(p != NULL && ((size_t)p & 7u) == 0, "generic alloc, aligned");
    expect(pk_alloc(a, 25) == NULL, "generic alloc larger than a block fails");
    expect(pk_free(a, p) == PK_OK && pk_check(a) == PK_OK, "generic free and check");
    expect(strcmp(pk_name(a), "pool") == 0, "default name");

    pk_set_fault_handler(NULL, NULL);
    printf("consumer: %s\n", failed ? "FAILED" : "OK");
    return failed ? 1 : 0;
}
