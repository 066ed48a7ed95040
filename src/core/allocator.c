#include <string.h>

#include "core/internal.h"
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

void *pk_realloc(pk_allocator *a, void *ptr, size_t size)
{
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
    if (old_size == 0) {
        /* Not a live block: let free report it as it would any bad free. */
        (void)a->ops->free(a->self, ptr);
        return NULL;
    }
    if (size <= old_size) {
        return ptr;
    }
    void *fresh = a->ops->alloc_aligned(a->self, size, 0);
    if (fresh == NULL) {
        return NULL;
    }
    memcpy(fresh, ptr, old_size);
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
