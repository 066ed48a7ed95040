/*
 * The Cortex-M PRIMASK lock (port/cortex-m/primask_lock.c) on the host, its
 * three instructions replaced by a fake PRIMASK (fake_primask.h, named by
 * PK_CONFIG_HEADER), shared by a pk_pool and a pk_heap: every operation
 * leaves PRIMASK and the state as they were, also when PRIMASK was already
 * set, when user code holds the lock around the call (nesting), when a fault
 * handler calls poolkit, and when a simulated interrupt that uses the same
 * allocator is taken at each point where PRIMASK is 0. The instructions
 * themselves are checked by cortex_m_primask.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fake_primask.h"
#include "primask_lock.h"
#include "targets.h"

static pk_cortex_m_primask_state st;
static pk_allocator *target;
static unsigned isr_allocs;

static int setup(void **state)
{
    (void)state;
    fake_primask_reset();
    memset(&st, 0, sizeof st);
    isr_allocs = 0;
    port_faults_install();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    port_faults_remove();
    return 0;
}

static target_kind kind_of(void **state)
{
    return *(const target_kind *)*state;
}

static pk_allocator *make(void **state)
{
    pk_lock l = pk_cortex_m_primask_lock(&st);
    target = target_make(kind_of(state), &l);
    return target;
}

/* The lock is free and PRIMASK is as before; every disable was undone. */
static void assert_restored(uint32_t primask)
{
    assert_int_equal(fake_cpu.primask, primask);
    assert_int_equal(st.depth, 0);
    assert_int_equal(fake_cpu.mrs, fake_cpu.cpsid);
}

static void constructor(void **state)
{
    (void)state;
    pk_lock l = pk_cortex_m_primask_lock(&st);
    assert_non_null(l.lock);
    assert_non_null(l.unlock);
    assert_ptr_equal(l.ctx, &st);
    l.lock(l.ctx);
    assert_int_equal(fake_cpu.primask, 1);
    assert_int_equal(st.depth, 1);
    l.unlock(l.ctx);
    assert_restored(0);
    assert_int_equal(fake_cpu.msr, 1);
}

/* Ordinary use from thread mode, with interrupts enabled and (at boot) with
 * them already disabled: each call takes the lock and leaves PRIMASK as it
 * was. */
static void balanced(void **state)
{
    for (uint32_t initial = 0; initial <= 1; initial++) {
        fake_primask_reset();
        pk_allocator *a = make(state);
        fake_cpu.primask = initial;
        target_churn(a, 200);
        assert_true(fake_cpu.cpsid >= 200); /* every call locked */
        assert_int_equal(fake_cpu.msr, fake_cpu.cpsid); /* no nesting: each lock restored */
        assert_int_equal(pk_check(a), PK_OK);
        assert_restored(initial);
    }
}

/* User code holding the lock around allocator calls: the inner unlocks must
 * not re-enable interrupts; the outer exit does. */
static void nested(void **state)
{
    pk_allocator *a = make(state);
    pk_cortex_m_primask_enter(&st);
    void *p = pk_alloc(a, 16);
    assert_non_null(p);
    assert_int_equal(fake_cpu.primask, 1);
    assert_int_equal(st.depth, 1);
    assert_int_equal(pk_free(a, p), PK_OK);
    assert_int_equal(fake_cpu.primask, 1);
    pk_cortex_m_primask_exit(&st);
    assert_restored(0);
    assert_int_equal(fake_cpu.cpsid, 3); /* the allocator locked inside */
}

/* A fault (double free) whose handler calls poolkit: the handler runs with the
 * lock free and PRIMASK as the caller had it, and all is restored after. */
static uint32_t probe_primask;
static uint32_t probe_depth;
static void probe(void)
{
    probe_primask = fake_cpu.primask;
    probe_depth = st.depth;
}

static void double_free_with_handler(pk_allocator *a, uint32_t initial)
{
    port_fault_target = a;
    port_fault_probe = probe;
    void *p = pk_alloc(a, 16);
    assert_non_null(p);
    assert_int_equal(pk_free(a, p), PK_OK);
    assert_int_equal(pk_free(a, p), PK_ERR_DOUBLE_FREE);
    assert_int_equal(port_faults.calls, 1);
    assert_int_equal(port_faults.last, PK_ERR_DOUBLE_FREE);
    assert_int_equal(port_faults.handler_allocs, 1);
    assert_int_equal(probe_primask, initial);
    assert_int_equal(probe_depth, 0);
    port_fault_target = NULL;
    port_fault_probe = NULL;
}

static void fault(void **state)
{
    for (uint32_t initial = 0; initial <= 1; initial++) {
        fake_primask_reset();
        port_faults_install();
        pk_allocator *a = make(state);
        fake_cpu.primask = initial;
        double_free_with_handler(a, initial);
        assert_int_equal(pk_check(a), PK_OK);
        assert_restored(initial);
    }
}

static void isr_with_fault(void)
{
    double_free_with_handler(target, 0);
    isr_allocs++;
}

static void fault_in_isr(void **state)
{
    pk_allocator *a = make(state);
    fake_cpu.isr = isr_with_fault;
    fake_cpu.countdown = 0;
    target_churn(a, 4);
    assert_int_equal(fake_cpu.isr_runs, 1);
    assert_int_equal(isr_allocs, 1);
    assert_int_equal(pk_check(a), PK_OK);
    assert_restored(0);
}

/* An interrupt handler that uses the same allocator, taken at the k-th point
 * where thread code has interrupts enabled, for every k: it must never find
 * the lock held (thread code inside its critical section with interrupts on),
 * and must leave PRIMASK at 0 and the lock free for the thread. */
static void isr_uses_allocator(void)
{
    assert_int_equal(fake_cpu.primask, 0);
    assert_int_equal(st.depth, 0);
    void *p = pk_alloc(target, 24);
    assert_non_null(p);
    assert_int_equal(pk_free(target, p), PK_OK);
    assert_int_equal(fake_cpu.primask, 0);
    assert_int_equal(st.depth, 0);
    isr_allocs++;
}

static void interrupt_everywhere(void **state)
{
    pk_allocator *a = make(state);
    long points = 0;
    for (long k = 0;; k++) {
        fake_cpu.isr = isr_uses_allocator;
        fake_cpu.countdown = k;
        target_churn(a, 12);
        if (fake_cpu.isr != NULL) { /* k is past the last point */
            fake_cpu.isr = NULL;
            break;
        }
        points++;
        assert_int_equal(pk_check(a), PK_OK);
        assert_restored(0);
    }
    assert_true(points >= 24); /* before and after each of 12 calls at least */
    assert_int_equal(isr_allocs, (unsigned)points);
    assert_restored(0);
}

#define BOTH(fn)                                                                    \
    cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, (void *)&pool_kind), \
    cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, (void *)&heap_kind)

int main(void)
{
    static target_kind pool_kind = TARGET_POOL, heap_kind = TARGET_HEAP;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(constructor, setup, teardown),
        BOTH(balanced),
        BOTH(nested),
        BOTH(fault),
        BOTH(fault_in_isr),
        BOTH(interrupt_everywhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
