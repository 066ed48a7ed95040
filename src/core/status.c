#include "core/internal.h"

const char *pk_status_str(pk_status s)
{
    switch (s) {
    case PK_OK: return "ok";
    case PK_ERR_NOMEM: return "out of memory";
    case PK_ERR_INVALID_ARG: return "invalid argument";
    case PK_ERR_DOUBLE_FREE: return "double free";
    case PK_ERR_FOREIGN_PTR: return "foreign pointer";
    case PK_ERR_MISALIGNED_PTR: return "pointer is not a block start";
    case PK_ERR_GUARD_CORRUPT: return "guard bytes overwritten";
    case PK_ERR_USE_AFTER_FREE: return "write after free";
    case PK_ERR_CORRUPT: return "metadata corrupt";
    case PK_ERR_SEALED: return "allocator sealed";
    }
    return "unknown status";
}

double pk_frag_internal(const pk_stats *s)
{
    if (s->in_use == 0) {
        return 0.0;
    }
    return 1.0 - (double)s->requested / (double)s->in_use;
}

double pk_frag_external(const pk_stats *s)
{
    if (s->free_bytes == 0 || s->block_size != 0) {
        return 0.0;
    }
    return 1.0 - (double)s->largest_free / (double)s->free_bytes;
}

/* The link-time guard of common.h: each build defines the symbol its users
 * reference. */
#if PK_DEBUG
const char pk_abi_debug_build = 1;
#else
const char pk_abi_release_build = 1;
#endif
