/*
 * The allocators the demo runs the workload on, each behind the same calls:
 * glibc malloc, and poolkit's allocators over one fixed arena (a buffer the
 * demo hands them, the same size for all; see demo.c). Each object type is
 * served as a firmware engineer would with that allocator (see the table in
 * subjects.c and the descriptions).
 */
#ifndef POOLKIT_TOOLS_DEMO_SUBJECTS_H
#define POOLKIT_TOOLS_DEMO_SUBJECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The allocator's state at a moment, measured outside the timed calls. */
typedef struct {
    uint64_t footprint;   /* bytes taken to serve the live objects: the arena's bytes not free
                             (blocks, headers, rounding, metadata; slabs whole); malloc:
                             mallinfo2() uordblks + hblkhd */
    uint64_t granted;     /* bytes granted to live objects (requests and rounding) */
    double frag_external; /* pk_frag_external of the allocator's pk_stats; -1: not measurable */
} demo_probe;

typedef struct {
    const char *name;        /* for --allocators and the tables */
    const char *description; /* one line: what serves which object type */
    bool in_arena;           /* runs in the demo's arena (all but malloc) */
    bool placement;          /* a placement policy: also run on the tight arena */
    bool constructs;         /* reports constructor calls and constructed reuses */
    /* The allocator over the arena, made fresh: its state, or NULL after a
     * message (arena too small). */
    void *(*init)(void *arena, size_t size);
    /* The timed calls. release returns 0, or -1 when the allocator refused
     * the pointer (a bug in the demo). */
    void *(*alloc)(void *self, unsigned type, size_t size);
    int (*release)(void *self, unsigned type, void *p);
    /* Untimed: what the firmware does with a new object (construct it, or
     * for slab caches, find it constructed). */
    void (*after_alloc)(void *self, unsigned type, void *p, size_t size);
    /* Untimed, may be NULL: bookkeeping before a free. */
    void (*before_free)(void *self, unsigned type, void *p);
    void (*probe)(void *self, demo_probe *out);
    /* After the run, every object freed: the allocator's check (0, or -1
     * after a message), constructor counts. */
    int (*finish)(void *self, uint64_t *constructed_reuses, uint64_t *constructor_calls);
} demo_subject;

extern const demo_subject demo_subjects[];
extern const size_t demo_subject_count;

/* An allocator that does nothing (alloc hands out a fixed pointer): its timed
 * call is the timer's own overhead, subtracted from every other. */
extern const demo_subject demo_null_subject;

/* Bytes of arena the size-class layout takes (it must fit the arena). */
size_t demo_classes_layout_size(void);

#endif
