/* A locked pool shared by four threads, with cross-thread frees: every block
 * is stamped by the thread that allocates it and checked by the thread that
 * frees it. Run under ThreadSanitizer by `make test`. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "poolkit/pool.h"
#include "poolkit/pthread_lock.h"

#define THREADS 4
#define BLOCKS 256
#define RING 64 /* blocks in flight from one thread to the next */

typedef struct {
    uint32_t thread;
    uint32_t seq;
    uint64_t check;
    unsigned char payload[48];
} stamped;

static uint64_t stamp_check(uint32_t thread, uint32_t seq)
{
    return ((uint64_t)thread << 32 | seq) * 0x9E3779B97F4A7C15ull;
}

/* A bounded queue of blocks handed from one thread to the next. */
typedef struct {
    pthread_mutex_t lock;
    stamped *slots[RING];
    size_t head, count;
} ring;

static pk_pool shared_pool;
static unsigned char pool_buffer[PK_POOL_BUFFER_SIZE(sizeof(stamped), BLOCKS, 0)];
static ring rings[THREADS];
static size_t ops_per_thread;

static bool ring_put(ring *r, stamped *b)
{
    pthread_mutex_lock(&r->lock);
    bool ok = r->count < RING;
    if (ok) {
        r->slots[(r->head + r->count++) % RING] = b;
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}

static stamped *ring_take(ring *r)
{
    pthread_mutex_lock(&r->lock);
    stamped *b = NULL;
    if (r->count > 0) {
        b = r->slots[r->head];
        r->head = (r->head + 1) % RING;
        r->count--;
    }
    pthread_mutex_unlock(&r->lock);
    return b;
}

typedef struct {
    uint32_t id;
    unsigned bad_stamps;
    unsigned bad_frees;
} worker;

static bool stamp_intact(const stamped *b)
{
    if (b->check != stamp_check(b->thread, b->seq)) {
        return false;
    }
    for (size_t i = 0; i < sizeof b->payload; i++) {
        if (b->payload[i] != (unsigned char)(b->seq + i)) {
            return false;
        }
    }
    return true;
}

static void *work(void *arg)
{
    worker *w = arg;
    ring *out = &rings[(w->id + 1) % THREADS];
    ring *in = &rings[w->id];
    uint32_t seq = 0;
    for (size_t op = 0; op < ops_per_thread; op++) {
        /* Free what the previous thread sent, else allocate and send. */
        stamped *b = ring_take(in);
        if (b != NULL) {
            if (!stamp_intact(b)) {
                w->bad_stamps++;
            }
            if (pk_pool_free(&shared_pool, b) != PK_OK) {
                w->bad_frees++;
            }
            continue;
        }
        b = pk_pool_alloc(&shared_pool);
        if (b == NULL) {
            continue; /* the pool is dry: the others will free */
        }
        b->thread = w->id;
        b->seq = ++seq;
        b->check = stamp_check(w->id, seq);
        for (size_t i = 0; i < sizeof b->payload; i++) {
            b->payload[i] = (unsigned char)(seq + i);
        }
        if (!ring_put(out, b) && pk_pool_free(&shared_pool, b) != PK_OK) {
            w->bad_frees++;
        }
    }
    return NULL;
}

static void test_cross_thread_frees(void **state)
{
    (void)state;
    const char *text = getenv("POOLKIT_RANDOM_OPS");
    ops_per_thread = (text != NULL ? (size_t)strtoull(text, NULL, 10) : 1000000) / THREADS;
    assert_int_equal(pk_pool_init(&shared_pool, pool_buffer, sizeof pool_buffer, sizeof(stamped), 0), PK_OK);
    pthread_mutex_t pool_mutex = PTHREAD_MUTEX_INITIALIZER;
    pk_lock lock = pk_pthread_lock(&pool_mutex);
    assert_int_equal(pk_pool_set_lock(&shared_pool, &lock), PK_OK);

    worker workers[THREADS];
    pthread_t threads[THREADS];
    for (uint32_t i = 0; i < THREADS; i++) {
        pthread_mutex_init(&rings[i].lock, NULL);
    }
    for (uint32_t i = 0; i < THREADS; i++) {
        workers[i] = (worker){i, 0, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, work, &workers[i]), 0);
    }
    for (size_t i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(workers[i].bad_stamps, 0);
        assert_int_equal(workers[i].bad_frees, 0);
    }
    /* Every block is accounted for: those still in flight go back now. */
    for (size_t i = 0; i < THREADS; i++) {
        for (stamped *b; (b = ring_take(&rings[i])) != NULL;) {
            assert_true(stamp_intact(b));
            assert_int_equal(pk_pool_free(&shared_pool, b), PK_OK);
        }
    }
    pk_stats s;
    pk_pool_stats(&shared_pool, &s);
    assert_int_equal(s.live, 0);
    assert_int_equal(s.allocs, s.frees);
    assert_true(s.allocs > ops_per_thread);
    assert_true(s.peak_live <= BLOCKS);
    assert_int_equal(s.rejected, 0);
    assert_int_equal(pk_pool_available(&shared_pool), BLOCKS);
    assert_int_equal(pk_pool_check(&shared_pool), PK_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_thread_frees),
    };
    return cmocka_run_group_tests_name("pool threads", tests, NULL, NULL);
}
