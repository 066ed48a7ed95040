/* The free-list heap under the model, with the policy (first, best, next
 * fit) and coalescing picked by the first input byte. Release builds catch
 * interior pointers only off the payload grid (PK_FIT_ALIGN); debug builds
 * catch them all (no valid tag). */
#include <stdlib.h>

#include "model.h"
#include "poolkit/fit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static PK_ALIGNAS(64) unsigned char buffer[1u << 15];
    if (size < 1) {
        return 0;
    }
    static const pk_fit_policy policies[] = {PK_FIT_FIRST, PK_FIT_BEST, PK_FIT_NEXT};
    unsigned flags = (data[0] & 0x80u) != 0 ? PK_FIT_NO_COALESCE : 0u;
    pk_fuzz_fresh_buffer(buffer, sizeof buffer);
    pk_fit f;
    if (pk_fit_init(&f, buffer, sizeof buffer, policies[(data[0] & 0x7Fu) % 3u], flags) != PK_OK) {
        abort();
    }
    pk_fuzz_target t = {
        .a = pk_fit_allocator(&f),
        .region = buffer,
        .region_size = sizeof buffer,
        .default_align = PK_FIT_ALIGN,
        .largest_free_exact = true,
        .interior_granule = PK_DEBUG ? 1u : PK_FIT_ALIGN,
        .interior_status = PK_ERR_MISALIGNED_PTR,
        .double_mode = PK_FUZZ_DOUBLE_JUST_FREED,
        .double_status = PK_ERR_DOUBLE_FREE,
    };
    pk_fuzz_run(&t, data + 1, size - 1);
    return 0;
}
