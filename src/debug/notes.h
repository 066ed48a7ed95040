/*
 * Faults noted under an allocator's lock by a debug call, reported after it
 * is released (hooks.h: the hooks report nothing themselves). One call can
 * find its own misuse and the poison written in each quarantined block it
 * releases; each is reported once, in order, with the call's site.
 * Used by pool (and classes), buddy, heap and fit; header-only. A note keeps
 * only what the report prints of the block's tag, so that the notes, on the
 * stack of every debug call, stay small (a few hundred bytes).
 */
#ifndef POOLKIT_DEBUG_NOTES_H
#define POOLKIT_DEBUG_NOTES_H

#include "debug/hooks.h"

#if PK_DEBUG

/* The call's own fault or two, and every block the quarantine can hold. */
#define PK__DEBUG_NOTES_MAX (PK_QUARANTINE_SIZE + 3)

typedef struct {
    size_t count;
    struct {
        const void *ptr;
        const char *file; /* the block's allocation site and owner, from its tag */
        int32_t line;
        uint32_t owner;
        pk_status kind;
        bool tagged;
    } f[PK__DEBUG_NOTES_MAX];
} pk__debug_notes;

/* Notes a fault about ptr (tag: the block's, or NULL when unknown). */
static inline void pk__debug_note(pk__debug_notes *n, pk_status kind, const void *ptr, const pk_debug_tag *tag)
{
    if (n->count < PK__DEBUG_NOTES_MAX) {
        n->f[n->count].kind = kind;
        n->f[n->count].ptr = ptr;
        n->f[n->count].tagged = tag != NULL;
        n->f[n->count].file = tag != NULL ? tag->file : NULL;
        n->f[n->count].line = tag != NULL ? tag->line : 0;
        n->f[n->count].owner = tag != NULL ? tag->owner : 0;
        n->count++;
    }
}

/* Reports the faults noted, in order, with no lock held. */
static inline void pk__debug_report_notes(const pk__debug_notes *n, const char *allocator, pk__site call)
{
    for (size_t i = 0; i < n->count; i++) {
        pk_debug_tag site = {.file = n->f[i].file, .line = n->f[i].line, .owner = n->f[i].owner};
        (void)pk__debug_report(n->f[i].kind, allocator, n->f[i].ptr, n->f[i].tagged ? &site : NULL, call);
    }
}

/* The user pointer of a block whose tag is t and raw block raw. */
static inline unsigned char *pk__debug_user_of(unsigned char *raw, const pk_debug_tag *t)
{
    return raw + t->pad + sizeof(pk_debug_tag) + PK_GUARD_SIZE;
}

#endif /* PK_DEBUG */
#endif
