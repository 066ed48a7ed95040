/*
 * Debug builds: the pages a slab cache takes from a buddy through
 * pk_page_source_buddy (src/slab.c). They go round the buddy's debug layer:
 * a slab must be aligned to its own size and is a whole plain block (a tag
 * and guards in front of it would double the block), and the cache tags and
 * guards its objects itself. The buddy counts them in its statistics
 * (requested: the page size) and in check, drains its quarantine before
 * failing a get, and reports a bad put (with no call site) as pk_buddy_free
 * reports a bad free; they are not in its leak walk (the cache's are the
 * objects). Release builds use pk_buddy_alloc_aligned and pk_buddy_free.
 */
#ifndef POOLKIT_BUDDY_PAGES_H
#define POOLKIT_BUDDY_PAGES_H

#include "poolkit/buddy.h"

#if PK_DEBUG
void *pk__buddy_page_get(pk_buddy *b, size_t size, size_t align);
pk_status pk__buddy_page_put(pk_buddy *b, void *page);
#endif

#endif
