/* The boot arena under the model, with pk_arena_reset at each drain. A
 * release arena records no blocks: interior and double frees of its own
 * pointers are PK_OK; a debug arena reports them. */
#include <stdlib.h>

#include "model.h"
#include "poolkit/arena.h"

static void reset(void *arena)
{
    pk_arena_reset(arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char buffer[1u << 14];
    if (size < 1) {
        return 0;
    }
    pk_fuzz_fresh_buffer(buffer, sizeof buffer);
    pk_arena a;
    if (pk_arena_init(&a, buffer + data[0] % 16u, sizeof buffer - 16u) != PK_OK) {
        abort();
    }
    pk_fuzz_target t = {
        .a = pk_arena_allocator(&a),
        .region = buffer + data[0] % 16u,
        .region_size = sizeof buffer - 16u,
        .default_align = PK_MAX_ALIGN,
        .align_as_asked = true,
        .largest_free_exact = true,
        .interior_granule = 1,
        .interior_status = PK_DEBUG ? PK_ERR_MISALIGNED_PTR : PK_OK,
        .double_mode = PK_FUZZ_DOUBLE_ANY_FREED,
        .double_status = PK_DEBUG ? PK_ERR_DOUBLE_FREE : PK_OK,
        .frees_reclaim_nothing = true,
        .reset = reset,
        .reset_ctx = &a,
    };
    pk_fuzz_run(&t, data + 1, size - 1);
    return 0;
}
