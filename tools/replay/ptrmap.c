/* The traced-pointer hash table (ptrmap.h). */
#include <stdlib.h>

#include "ptrmap.h"

void ptrmap_init(ptrmap *m) { *m = (ptrmap){NULL, 0, 0, 64}; }

void ptrmap_free(ptrmap *m)
{
    free(m->slots);
    ptrmap_init(m);
}

/* Traced pointers are aligned, so their low bits say little: Fibonacci
 * hashing (multiply by 2^64 / the golden ratio, keep the top bits) lets every
 * bit of the pointer move the slot. */
static size_t home(const ptrmap *m, uint64_t key)
{
    return (size_t)((key * 0x9e3779b97f4a7c15ull) >> m->shift);
}

ptrmap_entry *ptrmap_find(const ptrmap *m, uint64_t traced)
{
    if (m->capacity == 0) {
        return NULL;
    }
    for (size_t i = home(m, traced);; i = (i + 1) & (m->capacity - 1)) {
        if (m->slots[i].traced == traced) {
            return &m->slots[i];
        }
        if (m->slots[i].traced == 0) {
            return NULL;
        }
    }
}

static void place(ptrmap *m, ptrmap_entry e)
{
    size_t i = home(m, e.traced);
    while (m->slots[i].traced != 0) {
        i = (i + 1) & (m->capacity - 1);
    }
    m->slots[i] = e;
}

static int grow(ptrmap *m)
{
    size_t capacity = m->capacity ? m->capacity * 2 : 1024;
    ptrmap_entry *slots = calloc(capacity, sizeof *slots);
    if (slots == NULL) {
        return -1;
    }
    ptrmap old = *m;
    m->slots = slots;
    m->capacity = capacity;
    m->shift = 64;
    for (size_t c = capacity; c > 1; c /= 2) {
        m->shift--;
    }
    for (size_t i = 0; i < old.capacity; i++) {
        if (old.slots[i].traced != 0) {
            place(m, old.slots[i]);
        }
    }
    free(old.slots);
    return 0;
}

int ptrmap_put(ptrmap *m, uint64_t traced, void *block, size_t size)
{
    ptrmap_entry *e = ptrmap_find(m, traced);
    if (e != NULL) {
        e->block = block;
        e->size = size;
        return 0;
    }
    if ((m->count + 1) * 2 > m->capacity && grow(m) != 0) {
        return -1;
    }
    place(m, (ptrmap_entry){traced, block, size});
    m->count++;
    return 0;
}

/* Backward-shift deletion: the entries after the hole that would be found
 * through it move back into it, so every probe sequence stays unbroken. */
void ptrmap_remove(ptrmap *m, ptrmap_entry *e)
{
    size_t mask = m->capacity - 1;
    size_t hole = (size_t)(e - m->slots);
    for (size_t i = (hole + 1) & mask; m->slots[i].traced != 0; i = (i + 1) & mask) {
        size_t want = home(m, m->slots[i].traced);
        /* The entry may move to the hole when the hole lies on its probe
         * path: between its home and its slot, cyclically. */
        if (((i - want) & mask) >= ((i - hole) & mask)) {
            m->slots[hole] = m->slots[i];
            hole = i;
        }
    }
    m->slots[hole].traced = 0;
    m->count--;
}
