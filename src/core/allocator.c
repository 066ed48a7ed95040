#include <string.h>

#include "core/internal.h"
#include "debug/hooks.h"
#include "poolkit/allocator.h"

void *pk_alloc(pk_allocator *a, size_t size)
{
    return a->ops->alloc_aligned(a->self, size, 0);
}

void *pk_alloc_aligned(pk_allocator *a, size_t size, size_t align)
{
    return a->ops->alloc_aligned(a->self, size, align);
}

void *pk_calloc(pk_allocator *a, size_t n, size_t size)
{
    size_t total;
    if (pk__mul_overflows(n, size, &total)) {
        /* Too large to serve: let the allocator count the failure, as it
         * would for any size it cannot hold. */
        return a->ops->alloc_aligned(a->self, SIZE_MAX, 0);
    }
    void *p = a->ops->alloc_aligned(a->self, total, 0);
    if (p != NULL) {
        memset(p, 0, total);
    }
    return p;
}

#if PK_DEBUG
/* A realloc makes up to three calls to the allocator; each reports faults
 * with the caller's site, which the first would otherwise consume. */
#define PK__SITE_TAKE() pk__site site = pk__debug_take_site()
#define PK__SITE_AGAIN() pk_debug_site(site.file, site.line)
#else
#define PK__SITE_TAKE() ((void)0)
#define PK__SITE_AGAIN() ((void)0)
#endif

#if PK_DEBUG
typedef struct {
    const void *ptr;
    bool found;
} live_search;

static void find_live(const pk_leak *leak, void *ctx)
{
    live_search *search = ctx;
    search->found |= leak->ptr == search->ptr;
}

/* Debug builds' usable_size is the size requested, so its 0 means a live
 * block of 0 bytes as well as a bad pointer: the live blocks tell them apart
 * (O(live), on that path only). */
static bool live_empty_block(pk_allocator *a, const void *ptr)
{
    live_search search = {ptr, false};
    if (a->ops->leaks != NULL) {
        a->ops->leaks(a->self, 0, find_live, &search);
    }
    return search.found;
}
#else
#define live_empty_block(a, ptr) ((void)(a), (void)(ptr), false)
#endif

void *pk_realloc(pk_allocator *a, void *ptr, size_t size)
{
    PK__SITE_TAKE();
    PK__SITE_AGAIN();
    if (ptr == NULL) {
        return a->ops->alloc_aligned(a->self, size, 0);
    }
    if (size == 0) {
        (void)a->ops->free(a->self, ptr);
        return NULL;
    }
    if (a->ops->realloc != NULL) {
        return a->ops->realloc(a->self, ptr, size);
    }
    size_t old_size = a->ops->usable_size(a->self, ptr);
    if (old_size == 0 && !live_empty_block(a, ptr)) {
        /* Not a live block: let free report it as it would any bad free. */
        (void)a->ops->free(a->self, ptr);
        return NULL;
    }
    /* Debug builds move the block unless the size is the same, so that its
     * rear guard sits right after the new size. */
    if (PK_DEBUG ? size == old_size : size <= old_size) {
        return ptr;
    }
    PK__SITE_AGAIN();
    void *fresh = a->ops->alloc_aligned(a->self, size, 0);
    if (fresh == NULL) {
        return NULL;
    }
    memcpy(fresh, ptr, old_size < size ? old_size : size);
    PK__SITE_AGAIN();
    (void)a->ops->free(a->self, ptr);
    return fresh;
}

pk_status pk_free(pk_allocator *a, void *ptr)
{
    return a->ops->free(a->self, ptr);
}

void pk_stats_get(pk_allocator *a, pk_stats *out)
{
    a->ops->stats(a->self, out);
}

pk_status pk_check(pk_allocator *a)
{
    return a->ops->check(a->self);
}

const char *pk_name(const pk_allocator *a)
{
    return a->ops->name(a->self);
}
