/* The allocators of the port-lock tests (targets.h). */
#include "targets.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "poolkit/heap.h"
#include "poolkit/pool.h"

#define POOL_BLOCKS 16
#define POOL_BLOCK 32

static pk_pool pool;
static PK_ALIGNAS(16) unsigned char pool_buffer[PK_POOL_BUFFER_SIZE(POOL_BLOCK, POOL_BLOCKS, 0)];
static pk_heap heap;
static PK_ALIGNAS(16) unsigned char heap_buffer[16384];

pk_allocator *target_make(target_kind kind, const pk_lock *lock)
{
    if (kind == TARGET_POOL) {
        assert_int_equal(pk_pool_init(&pool, pool_buffer, sizeof pool_buffer, POOL_BLOCK, 0), PK_OK);
        assert_int_equal(pk_pool_set_lock(&pool, lock), PK_OK);
        return pk_pool_allocator(&pool);
    }
    assert_int_equal(pk_heap_init(&heap, heap_buffer, sizeof heap_buffer), PK_OK);
    assert_int_equal(pk_heap_set_lock(&heap, lock), PK_OK);
    return pk_heap_allocator(&heap);
}

void target_churn(pk_allocator *a, unsigned n)
{
    void *held[8] = {NULL};
    for (unsigned i = 0; i < n; i++) {
        unsigned slot = (i * 5u) % 8u;
        if (held[slot] != NULL) {
            assert_int_equal(pk_free(a, held[slot]), PK_OK);
            held[slot] = NULL;
        } else {
            held[slot] = pk_alloc(a, 8u + (i % 4u) * 8u);
            assert_non_null(held[slot]);
            memset(held[slot], (int)i, 8);
        }
    }
    for (unsigned slot = 0; slot < 8; slot++) {
        if (held[slot] != NULL) {
            assert_int_equal(pk_free(a, held[slot]), PK_OK);
        }
    }
}

port_fault_log port_faults;
pk_allocator *port_fault_target;
void (*port_fault_probe)(void);

void port_fault_handler(const pk_fault *f, void *ctx)
{
    (void)ctx;
    port_faults.calls++;
    port_faults.last = f->kind;
    if (port_fault_probe != NULL) {
        port_fault_probe();
    }
    if (port_fault_target != NULL) {
        void *p = pk_alloc(port_fault_target, 16);
        if (p != NULL) {
            port_faults.handler_allocs++;
            assert_int_equal(pk_free(port_fault_target, p), PK_OK);
        }
    }
}

void port_faults_install(void)
{
    memset(&port_faults, 0, sizeof port_faults);
    port_fault_target = NULL;
    port_fault_probe = NULL;
    pk_set_fault_handler(port_fault_handler, NULL);
}

void port_faults_remove(void)
{
    pk_set_fault_handler(NULL, NULL);
    port_fault_target = NULL;
    port_fault_probe = NULL;
}
