/* The TLSF heap under the model. Release builds catch interior pointers only
 * off the payload grid (PK_HEAP_ALIGN) unless PK_HEAP_STRICT_FREE; debug
 * builds catch them all (no valid tag). */
#include <stdlib.h>

#include "model.h"
#include "poolkit/heap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static PK_ALIGNAS(64) unsigned char buffer[1u << 16];
    pk_fuzz_fresh_buffer(buffer, sizeof buffer);
    pk_heap h;
    if (pk_heap_init(&h, buffer, sizeof buffer) != PK_OK) {
        abort();
    }
    pk_fuzz_target t = {
        .a = pk_heap_allocator(&h),
        .region = buffer,
        .region_size = sizeof buffer,
        .default_align = PK_HEAP_ALIGN,
        .largest_free_exact = true,
        .interior_granule = PK_DEBUG || PK_HEAP_STRICT_FREE ? 1u : PK_HEAP_ALIGN,
        .interior_status = PK_ERR_MISALIGNED_PTR,
        .double_mode = PK_FUZZ_DOUBLE_JUST_FREED,
        .double_status = PK_ERR_DOUBLE_FREE,
    };
    pk_fuzz_run(&t, data, size);
    return 0;
}
