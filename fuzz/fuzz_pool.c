/* The pool under the model. The first input byte picks the block size, the
 * alignment and the buffer's offset, the second the block count. */
#include <stdlib.h>

#include "model.h"
#include "poolkit/pool.h"

static const size_t block_sizes[] = {1, 3, 8, 16, 24, 40, 100, 256};
static const size_t aligns[] = {0, 8, 16, 64};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static PK_ALIGNAS(64) unsigned char buffer[PK_POOL_BUFFER_SIZE(256, 64, 64) + 64];
    if (size < 2) {
        return 0;
    }
    size_t block_size = block_sizes[data[0] % 8u], align = aligns[(data[0] >> 3) % 4u];
    size_t shift = data[0] >> 5, count = 1u + data[1] % 64u;
    size_t buf_size = PK_POOL_BUFFER_SIZE(block_size, count, align);
    pk_fuzz_fresh_buffer(buffer, sizeof buffer);
    pk_pool p;
    if (pk_pool_init(&p, buffer + shift, buf_size, block_size, align) != PK_OK ||
        pk_pool_capacity(&p) != count) {
        abort();
    }
    pk_fuzz_target t = {
        .a = pk_pool_allocator(&p),
        .region = buffer + shift,
        .region_size = buf_size,
        .default_align = align != 0 ? align : PK_MAX_ALIGN,
        .block_size = block_size,
        .block_align = align != 0 ? align : PK_MAX_ALIGN,
        .capacity_blocks = count,
        .interior_granule = 1,
        .interior_status = PK_ERR_MISALIGNED_PTR,
        .double_mode = PK_FUZZ_DOUBLE_ANY_FREED,
        .double_status = PK_ERR_DOUBLE_FREE,
    };
    pk_fuzz_run(&t, data + 2, size - 2);
    return 0;
}
