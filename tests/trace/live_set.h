/*
 * A set of live block addresses (open addressing, linear probing, tombstone-
 * free deletion by backward shift), for the trace tests. Header-only: each
 * test program includes it once. Expected O(1) per operation.
 */
#ifndef POOLKIT_TESTS_LIVE_SET_H
#define POOLKIT_TESTS_LIVE_SET_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    uint64_t *slots;   /* 0: empty (a live block is never at address 0) */
    size_t capacity;   /* a power of two */
    size_t count;
} live_set;

static size_t live_set_home(const live_set *s, uint64_t key)
{
    return (size_t)((key * 0x9E3779B97F4A7C15u) >> 7) & (s->capacity - 1);
}

static int live_set_init(live_set *s)
{
    s->capacity = 1024;
    s->count = 0;
    s->slots = calloc(s->capacity, sizeof *s->slots);
    return s->slots == NULL ? -1 : 0;
}

static bool live_set_has(const live_set *s, uint64_t key)
{
    for (size_t i = live_set_home(s, key);; i = (i + 1) & (s->capacity - 1)) {
        if (s->slots[i] == key) {
            return true;
        }
        if (s->slots[i] == 0) {
            return false;
        }
    }
}

/* Adds key (not in the set); -1 when out of memory. */
static int live_set_add(live_set *s, uint64_t key)
{
    if ((s->count + 1) * 2 > s->capacity) {
        live_set bigger = {calloc(s->capacity * 2, sizeof(uint64_t)), s->capacity * 2, 0};
        if (bigger.slots == NULL) {
            return -1;
        }
        for (size_t i = 0; i < s->capacity; i++) {
            if (s->slots[i] != 0) {
                (void)live_set_add(&bigger, s->slots[i]);
            }
        }
        free(s->slots);
        *s = bigger;
    }
    size_t i = live_set_home(s, key);
    while (s->slots[i] != 0) {
        i = (i + 1) & (s->capacity - 1);
    }
    s->slots[i] = key;
    s->count++;
    return 0;
}

static void live_set_remove(live_set *s, uint64_t key)
{
    size_t mask = s->capacity - 1, i = live_set_home(s, key);
    while (s->slots[i] != key) {
        if (s->slots[i] == 0) {
            return;
        }
        i = (i + 1) & mask;
    }
    /* Shift back the entries after the hole that belong before it. */
    for (size_t j = (i + 1) & mask; s->slots[j] != 0; j = (j + 1) & mask) {
        size_t home = live_set_home(s, s->slots[j]);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            s->slots[i] = s->slots[j];
            s->slots[j] = 0;
            i = j;
        }
    }
    s->slots[i] = 0;
    s->count--;
}

static void live_set_free(live_set *s)
{
    free(s->slots);
    s->slots = NULL;
}

#endif
