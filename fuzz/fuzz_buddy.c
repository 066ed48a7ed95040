/* The buddy allocator under the model. The first input byte picks the
 * smallest block. */
#include <stdlib.h>

#include "model.h"
#include "poolkit/buddy.h"

static const size_t min_blocks[] = {0, 32, 64, 256};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static PK_ALIGNAS(4096) unsigned char buffer[1u << 16];
    if (size < 1) {
        return 0;
    }
    pk_fuzz_fresh_buffer(buffer, sizeof buffer);
    pk_buddy b;
    if (pk_buddy_init(&b, buffer, sizeof buffer, min_blocks[data[0] % 4u]) != PK_OK) {
        abort();
    }
    pk_fuzz_target t = {
        .a = pk_buddy_allocator(&b),
        .region = buffer,
        .region_size = sizeof buffer,
        .default_align = PK_MAX_ALIGN,
        .largest_free_exact = true,
        .interior_granule = 1,
        .interior_status = PK_ERR_MISALIGNED_PTR,
        .double_mode = PK_FUZZ_DOUBLE_JUST_FREED,
        .double_status = PK_ERR_DOUBLE_FREE,
    };
    pk_fuzz_run(&t, data + 1, size - 1);
    return 0;
}
