#define _POSIX_C_SOURCE 200809L
/*
 * A server simulation in the style of Larson and Krishnan's benchmark: worker
 * threads replace random objects in slot arrays, free objects that other
 * threads allocated, and come and go.
 *
 * THREADS slot arrays of SLOTS objects each. In each of ROUNDS rounds the
 * main thread starts THREADS new threads; thread i takes over slot array
 * (i + round) % THREADS, filled by another thread of the round before, so
 * most of what it frees was allocated by a thread that has exited. Each step
 * picks a random slot; its object is freed there or, one time in four,
 * handed to the next thread's queue (a mutex-locked ring), which that thread
 * frees while it runs (cross-thread frees between live threads); then a new
 * object fills the slot. Sizes are 16 B..1 KiB nine times in ten, else up to
 * 16 KiB, uniform. Objects carry a tag and their size, fill their bytes with
 * the tag's low byte, and are checked when freed. At the end of a round the
 * threads meet at a barrier and empty their queues.
 *
 *   larson [SCALE [THREADS]]   SCALE multiplies the rounds (default 1: 40);
 *                              THREADS 1..64 (default 4)
 * Prints "checksum larson HEX" (a sum over every object freed: the same
 * whatever the interleaving); exits 1 when malloc fails or an object's bytes
 * changed, 2 on bad arguments.
 */
#include <pthread.h>
#include <stdbool.h>

#include "malloc_bench.h"

#define PROGRAM "larson"
#define SLOTS 8000u
#define BASE_ROUNDS 40u
#define STEPS_PER_ROUND 60000u
#define DEFAULT_THREADS 4u
#define MAX_THREADS 64u
#define QUEUE_CAPACITY 4096u
#define DRAIN_EVERY 64u /* steps between a thread's looks at its queue */
#define HAND_OVER_ONE_IN 4u

static const char usage[] = "usage: larson [SCALE [THREADS]]   SCALE in (0, 1000] (default 1), "
                            "THREADS 1..64 (default 4)\n";

typedef struct {
    uint64_t tag;
    uint32_t size;
} object_header;

typedef struct {
    object_header *object; /* NULL: empty */
    uint64_t tag;
    uint32_t size;
} slot;

typedef struct {
    pthread_mutex_t lock;
    slot entries[QUEUE_CAPACITY];
    unsigned head, count;
} handover_queue;

typedef struct {
    slot *slots;
    handover_queue *own_queue, *next_queue;
    uint64_t seed;
    uint64_t checksum;
} worker;

static pthread_barrier_t round_end;

static object_header *new_object(bench_rng *rng, slot *into)
{
    uint32_t size = (uint32_t)(bench_below(rng, 10) != 0 ? bench_between(rng, 16, 1024)
                                                           : bench_between(rng, 1025, 16384));
    object_header *object = bench_malloc(PROGRAM, size);
    object->tag = bench_next(rng);
    object->size = size;
    memset(object + 1, (unsigned char)object->tag, size - sizeof *object);
    *into = (slot){object, object->tag, size};
    return object;
}

static void free_object(const slot *entry, uint64_t *checksum)
{
    const object_header *object = entry->object;
    const unsigned char *bytes = (const unsigned char *)object;
    unsigned char fill = (unsigned char)entry->tag;
    size_t first = sizeof *object, last = entry->size - 1u; /* the filled bytes, if any */
    bool filled_intact = last < first ||
                         (bytes[first] == fill && bytes[first + (last - first) / 2] == fill && bytes[last] == fill);
    if (object->tag != entry->tag || object->size != entry->size || !filled_intact)
        bench_fail(PROGRAM, "an object's bytes changed");
    bench_add(checksum, entry->tag ^ entry->size);
    free(entry->object);
}

static void drain(handover_queue *queue, uint64_t *checksum)
{
    slot taken[QUEUE_CAPACITY];
    pthread_mutex_lock(&queue->lock);
    unsigned count = queue->count;
    for (unsigned i = 0; i < count; i++)
        taken[i] = queue->entries[(queue->head + i) % QUEUE_CAPACITY];
    queue->head = (queue->head + count) % QUEUE_CAPACITY;
    queue->count = 0;
    pthread_mutex_unlock(&queue->lock);
    for (unsigned i = 0; i < count; i++)
        free_object(&taken[i], checksum);
}

/* False when the queue is full: the caller frees the object itself. */
static bool hand_over(handover_queue *queue, const slot *entry)
{
    pthread_mutex_lock(&queue->lock);
    bool room = queue->count < QUEUE_CAPACITY;
    if (room) {
        queue->entries[(queue->head + queue->count) % QUEUE_CAPACITY] = *entry;
        queue->count++;
    }
    pthread_mutex_unlock(&queue->lock);
    return room;
}

static void *run_worker(void *argument)
{
    worker *self = argument;
    bench_rng rng = bench_rng_seeded(self->seed);
    for (unsigned step = 0; step < STEPS_PER_ROUND; step++) {
        slot *entry = &self->slots[bench_below(&rng, SLOTS)];
        if (entry->object != NULL) {
            bool handed = bench_below(&rng, HAND_OVER_ONE_IN) == 0 && hand_over(self->next_queue, entry);
            if (!handed)
                free_object(entry, &self->checksum);
        }
        new_object(&rng, entry);
        if (step % DRAIN_EVERY == 0)
            drain(self->own_queue, &self->checksum);
    }
    pthread_barrier_wait(&round_end);
    drain(self->own_queue, &self->checksum);
    return NULL;
}

int main(int argc, char **argv)
{
    double scale = bench_scale(argc, argv, usage);
    unsigned threads = DEFAULT_THREADS;
    if (argc > 3) {
        fprintf(stderr, "larson: too many arguments\n%s", usage);
        return 2;
    }
    if (argc == 3) {
        char *end = NULL;
        unsigned long parsed = strtoul(argv[2], &end, 10);
        if (end == argv[2] || *end != '\0' || parsed < 1 || parsed > MAX_THREADS) {
            fprintf(stderr, "larson: bad thread count '%s'\n%s", argv[2], usage);
            return 2;
        }
        threads = (unsigned)parsed;
    }
    size_t rounds = bench_scaled(BASE_ROUNDS, scale);

    slot(*slot_arrays)[SLOTS] = calloc(threads, sizeof *slot_arrays);
    handover_queue *queues = calloc(threads, sizeof *queues);
    worker *workers = calloc(threads, sizeof *workers);
    pthread_t *ids = calloc(threads, sizeof *ids);
    if (slot_arrays == NULL || queues == NULL || workers == NULL || ids == NULL)
        bench_fail(PROGRAM, "malloc failed");
    for (unsigned i = 0; i < threads; i++)
        pthread_mutex_init(&queues[i].lock, NULL);
    if (pthread_barrier_init(&round_end, NULL, threads) != 0)
        bench_fail(PROGRAM, "pthread_barrier_init failed");

    uint64_t checksum = 0;
    for (size_t round = 0; round < rounds; round++) {
        for (unsigned i = 0; i < threads; i++) {
            unsigned array = (unsigned)((i + round) % threads);
            workers[i] = (worker){slot_arrays[array], &queues[i], &queues[(i + 1) % threads],
                                  (uint64_t)round * MAX_THREADS + array, 0};
            if (pthread_create(&ids[i], NULL, run_worker, &workers[i]) != 0)
                bench_fail(PROGRAM, "pthread_create failed");
        }
        for (unsigned i = 0; i < threads; i++) {
            pthread_join(ids[i], NULL);
            checksum += workers[i].checksum;
        }
    }
    for (unsigned array = 0; array < threads; array++)
        for (unsigned i = 0; i < SLOTS; i++)
            if (slot_arrays[array][i].object != NULL)
                free_object(&slot_arrays[array][i], &checksum);

    pthread_barrier_destroy(&round_end);
    for (unsigned i = 0; i < threads; i++)
        pthread_mutex_destroy(&queues[i].lock);
    free(ids);
    free(workers);
    free(queues);
    free(slot_arrays);
    bench_print_checksum(PROGRAM, checksum);
    return 0;
}
