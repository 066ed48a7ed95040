/* A slab cache over a buddy page source under the model. The first input
 * byte picks the object size and alignment. The page source may run out, so
 * an alloc within the object size is not predicted to succeed. */
#include <stdlib.h>

#include "model.h"
#include "poolkit/buddy.h"
#include "poolkit/slab.h"

#define SLAB_SIZE 1024u

static const size_t object_sizes[] = {1, 8, 24, 48, 100, 160, 256, 500};
static const size_t aligns[] = {0, 8, 32, 128};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Aligned to the slab size so that every buddy block of a slab is. */
    static PK_ALIGNAS(SLAB_SIZE) unsigned char pages[16384];
    if (size < 1) {
        return 0;
    }
    size_t object_size = object_sizes[data[0] % 8u], align = aligns[(data[0] >> 3) % 4u];
    pk_fuzz_fresh_buffer(pages, sizeof pages);
    pk_buddy b;
    pk_slab_cache c;
    if (pk_buddy_init(&b, pages, sizeof pages, 0) != PK_OK) {
        abort();
    }
    pk_page_source source = pk_page_source_buddy(&b);
    if (pk_slab_init(&c, "fuzzed", object_size, align, NULL, NULL, NULL, &source, SLAB_SIZE) != PK_OK) {
        abort();
    }
    pk_fuzz_target t = {
        .a = pk_slab_allocator(&c),
        .region = pages,
        .region_size = sizeof pages,
        .default_align = align != 0 ? align : PK_MAX_ALIGN,
        .block_size = object_size,
        .block_align = align != 0 ? align : PK_MAX_ALIGN,
        .interior_granule = 1,
        .interior_status = PK_ERR_MISALIGNED_PTR,
        .double_mode = PK_FUZZ_DOUBLE_ANY_FREED,
        .double_status = PK_ERR_DOUBLE_FREE,
    };
    pk_fuzz_run(&t, data + 1, size - 1);
    return 0;
}
