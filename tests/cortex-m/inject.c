/*
 * Deliberate breakage, one kind per value of PK_CM_INJECT, built into extra
 * images only by scripts/cortex_m.sh's self-test, which must see each one
 * rejected:
 *   1  a heap: malloc with the _sbrk a firmware would write (the nm check)
 *   2  a test failing inside the image: the driver finds a block outside the
 *      region it was told of (the image's counts)
 *   3  a read through a bad pointer: a HardFault or a RISC-V trap
 *   4  an endless loop (the timeout)
 */
#include <stddef.h>
#include <stdint.h>

#include "driver/driver.h"
#include "inject.h"
#include "poolkit/pool.h"

#if PK_CM_INJECT == 1
void *malloc(size_t size);
void *_sbrk(ptrdiff_t increment);

static unsigned char heap[1024];
static size_t heap_used;

void *_sbrk(ptrdiff_t increment)
{
    unsigned char *old = heap + heap_used;
    heap_used += (size_t)increment;
    return old;
}

const char *pk_cm_inject(void)
{
    return malloc(16) != NULL ? NULL : "malloc failed";
}
#elif PK_CM_INJECT == 2
static const char *first;

static void keep_first(void *ctx, const char *line)
{
    (void)ctx;
    if (first == NULL) {
        first = line; /* the driver's lines are static text */
    }
}

const char *pk_cm_inject(void)
{
    static _Alignas(8) unsigned char buf[PK_POOL_BUFFER_SIZE(16, 8, 8)], elsewhere[64];
    static pk_driver_slot slots[16];
    pk_pool p;
    (void)pk_pool_init(&p, buf, sizeof buf, 16, 8);
    pk_driver_config cfg = {
        .seed = 1,
        .ops = 100,
        .max_size = 16,
        .max_align = 8,
        .default_align = 8,
        .region = elsewhere,
        .region_size = sizeof elsewhere,
        .block_size = 16,
        .slots = slots,
        .slot_count = 16,
        .report = keep_first,
    };
    return pk_driver_run(pk_pool_allocator(&p), &cfg, NULL) == 0 ? NULL : first != NULL ? first : "failed";
}
#elif PK_CM_INJECT == 3
/* Unmapped: no device there on the MPS2 boards, nor below the ROM on virt.
 * Volatile, so that the compiler cannot see the address. */
#if defined(__arm__)
static volatile uintptr_t bad_address = 0x50000000u;
#else
static volatile uintptr_t bad_address = 0x00000100u;
#endif

const char *pk_cm_inject(void)
{
    return *(volatile const uint32_t *)bad_address == 0 ? NULL : "read a bad pointer";
}
#elif PK_CM_INJECT == 4
const char *pk_cm_inject(void)
{
    for (volatile int spin = 1; spin != 0;) {
    }
    return NULL;
}
#endif
