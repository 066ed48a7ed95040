/*
 * cross_thread: four threads allocate, reallocate and free blocks that pass
 * between them through shared slots, so that a block freed by one thread is
 * soon handed out again to another. Recorded by tests/trace/record_real.sh,
 * whose trace_check then shows the recorded order consistent (no block
 * returned while still live), which is what the seq placement of
 * tools/trace/preload.c is for.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define SLOTS 256u
#define THREADS 4
#define OPS_PER_THREAD 50000

static _Atomic(void *) slots[SLOTS];

static void *run(void *arg)
{
    unsigned random = (unsigned)(size_t)arg * 7919u + 1u;
    for (int i = 0; i < OPS_PER_THREAD; i++) {
        random = random * 1103515245u + 12345u;
        unsigned slot = (random >> 8) % SLOTS, op = (random >> 20) % 3u;
        void *p = atomic_exchange(&slots[slot], NULL);
        if (op == 0) {
            free(p);
            p = malloc(16u + (random >> 24) % 200u);
        } else if (op == 1) {
            p = realloc(p, 16u + (random >> 16) % 300u);
        } else {
            free(p);
            p = calloc(1, 32);
        }
        free(atomic_exchange(&slots[slot], p));
    }
    return NULL;
}

int main(void)
{
    pthread_t threads[THREADS];
    for (size_t i = 0; i < THREADS; i++) {
        if (pthread_create(&threads[i], NULL, run, (void *)i) != 0) {
            fprintf(stderr, "cross_thread: pthread_create failed\n");
            return 1;
        }
    }
    for (size_t i = 0; i < THREADS; i++) {
        (void)pthread_join(threads[i], NULL);
    }
    for (size_t i = 0; i < SLOTS; i++) {
        free(atomic_exchange(&slots[i], NULL));
    }
    return 0;
}
