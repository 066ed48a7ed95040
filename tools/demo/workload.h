/*
 * The demo's workload: the memory traffic of an SSD controller's firmware
 * over a long uptime, as a stream of events (allocate an object of a type,
 * size and alignment into slot k; free slot k), generated from a seed with
 * the tool's own generator (splitmix64 seeding xoshiro256**), before anything
 * is measured, so that every allocator replays exactly the same stream.
 *
 * The model (all constants below):
 * - Phases: idle (no host command; background work: garbage collection
 *   relocates pages with internal commands, which have no CQE, and logs), steady (queue depth target 4..64)
 *   and bursts (target 128..256), of random lengths. Each step of the model
 *   submits a command while the queue is below the target, else completes
 *   one (the oldest with probability 0.7, else any: NVMe completes out of
 *   order), and first of all frees short-lived objects that are due.
 * - A command: a descriptor (64 B) for its life; reads (60%) and writes
 *   (30%) also a DMA buffer (4 KiB aligned to 4 KiB) for its life and a map
 *   lookup; flush/admin commands (10%) neither. At completion a CQE (16 B),
 *   freed 1..16 steps later (the host reads it).
 * - The FTL map cache: up to 128 map pages of 16 KiB (2 MiB); 85% of
 *   lookups go to a hot set of 96 of 4,096 regions that drifts over time,
 *   15% anywhere. A miss loads the page (allocation), evicting the least
 *   recently used page when the cache is full (free).
 * - Log records: 32 B..1 KiB, log-uniform, one at submission with
 *   probability 0.4, at completion 0.25, in background work; each freed
 *   16..4,096 steps later (log-uniform: the log flusher). At most 1,024
 *   pending; more are dropped (the ring is full).
 */
#ifndef POOLKIT_TOOLS_DEMO_WORKLOAD_H
#define POOLKIT_TOOLS_DEMO_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

/* Object types, in demo_run.allocs_by_type order (demo_type_names). */
enum { DEMO_DESC, DEMO_DMA, DEMO_MAP, DEMO_LOG, DEMO_CQE, DEMO_TYPES };

#define DEMO_DESC_SIZE 64u
#define DEMO_DMA_SIZE 4096u
#define DEMO_DMA_ALIGN 4096u
#define DEMO_MAP_SIZE 16384u
#define DEMO_LOG_MIN 32u
#define DEMO_LOG_MAX 1024u
#define DEMO_CQE_SIZE 16u

#define DEMO_MAX_QUEUE_DEPTH 256u  /* commands in flight, at most */
#define DEMO_MAP_CACHE 128u        /* map pages cached, at most */
#define DEMO_LOG_PENDING 1024u     /* log records live, at most */
#define DEMO_SLOTS 4096u           /* slots: more than can be live at once */

/* The alignment a type asks (0: the default, alignof(max_align_t)). */
size_t demo_type_align(unsigned type);

enum { DEMO_ALLOC = 0, DEMO_FREE = 1 };

typedef struct {
    uint16_t slot;        /* 0..DEMO_SLOTS-1 */
    uint16_t size;        /* bytes (allocations; frees: the object's size) */
    uint8_t type;         /* DEMO_DESC.. */
    uint8_t kind;         /* DEMO_ALLOC or DEMO_FREE */
    uint16_t queue_depth; /* commands in flight after the event */
} demo_event;

typedef struct {
    uint64_t seed;
    demo_event *events;
    size_t count;                         /* = the ops asked */
    uint64_t allocs_by_type[DEMO_TYPES];
    uint64_t frees;
    uint64_t commands;                    /* host commands submitted */
    uint64_t internal_commands;           /* garbage collection's relocations */
    uint64_t map_misses;                  /* map pages loaded */
    uint64_t logs_dropped;                /* log records not made: ring full */
    uint64_t peak_queue_depth;
    uint64_t peak_live_bytes;             /* requested bytes live, at most */
    uint64_t peak_live_objects;
} demo_workload;

/* Generates ops events from seed into w. 0, or -1 when out of memory. */
int demo_workload_make(demo_workload *w, uint64_t seed, size_t ops);
void demo_workload_free(demo_workload *w);

#endif
