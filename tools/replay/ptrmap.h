/*
 * A hash table from the pointers a trace recorded to what a replay made of
 * them: the block an allocator gave for it and the bytes requested. The
 * replay engine (engine.c) and the profile of a trace (`poolkit replay`'s
 * defaults, `poolkit plan`'s high-water marks) both follow a trace's live
 * blocks with it. Open addressing with linear probing and backward-shift
 * deletion (no tombstones), kept at most half full. Hosted tool code.
 */
#ifndef POOLKIT_TOOLS_REPLAY_PTRMAP_H
#define POOLKIT_TOOLS_REPLAY_PTRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t traced;   /* the pointer in the trace; 0 marks an empty slot */
    void *block;       /* the replay's block for it (NULL when only followed) */
    size_t size;       /* bytes requested */
} ptrmap_entry;

typedef struct {
    ptrmap_entry *slots;
    size_t capacity;   /* a power of two, or 0 before the first insert */
    size_t count;
    unsigned shift;    /* 64 - log2(capacity): the hash keeps the top bits */
} ptrmap;

/* An empty map (no allocation yet). O(1). */
void ptrmap_init(ptrmap *m);
void ptrmap_free(ptrmap *m);

/* The entry of traced (not 0), or NULL. O(1) expected. */
ptrmap_entry *ptrmap_find(const ptrmap *m, uint64_t traced);

/* Maps traced (not 0) to block and size, replacing an entry it had. Returns
 * 0, or -1 when the table cannot grow (out of memory; the map is
 * unchanged). O(1) amortised: it doubles when half full (O(count) then). */
int ptrmap_put(ptrmap *m, uint64_t traced, void *block, size_t size);

/* Removes the entry e (from ptrmap_find; the pointer is invalid after, as
 * are other entry pointers). O(1) expected. */
void ptrmap_remove(ptrmap *m, ptrmap_entry *e);

#endif
