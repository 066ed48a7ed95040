/* A set of size classes under the model. The first input byte turns
 * fall-through off (odd) or leaves it on. Which class serves a request
 * depends on which are full, so only the size limit is predicted: the model
 * checks every other outcome. */
#include <stdlib.h>

#include "model.h"
#include "poolkit/classes.h"

static const pk_class_spec specs[] = {{16, 24, 0}, {64, 12, 0}, {200, 6, 8}, {1024, 3, 64}};
#define CLASS_COUNT (sizeof specs / sizeof *specs)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static PK_ALIGNAS(64) unsigned char buffer[1u << 15];
    if (size < 1) {
        return 0;
    }
    size_t buf_size = pk_classes_buffer_size(specs, CLASS_COUNT);
    pk_fuzz_fresh_buffer(buffer, sizeof buffer);
    pk_classes c;
    if (buf_size > sizeof buffer || pk_classes_init(&c, buffer, buf_size, specs, CLASS_COUNT) != PK_OK) {
        abort();
    }
    pk_classes_set_fallthrough(&c, (data[0] & 1u) == 0);
    pk_fuzz_target t = {
        .a = pk_classes_allocator(&c),
        .region = buffer,
        .region_size = buf_size,
        .default_align = 8, /* the least of the classes' alignments */
        .interior_granule = 1,
        .interior_status = PK_ERR_MISALIGNED_PTR,
        .double_mode = PK_FUZZ_DOUBLE_ANY_FREED,
        .double_status = PK_ERR_DOUBLE_FREE,
    };
    pk_fuzz_run(&t, data + 1, size - 1);
    return 0;
}
