/*
 * The FreeRTOS locks (port/freertos/freertos_lock.c) against a fake of the
 * FreeRTOS API (tests/port/freertos/), each shared by a pk_pool and a
 * pk_heap: calls balance (enter/exit, take/give), the interrupt mask and the
 * kernel's critical nesting return to where they were, in tasks and in ISRs,
 * when the caller already holds the critical section (nesting), when a fault
 * handler calls poolkit, and (critical-section lock) when an ISR using the
 * same allocator is taken at each point where interrupts are open, in a task
 * or in a lower-priority ISR. The fake
 * records every misuse a kernel would assert on or hang at; none may occur.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "FreeRTOS.h"
#include "freertos_lock.h"
#include "semphr.h"
#include "targets.h"
#include "task.h"

static pk_freertos_critical_state st;
static StaticSemaphore_t mutex_storage;
static SemaphoreHandle_t mutex;
static pk_allocator *target;
static unsigned isr_allocs;

static int setup(void **state)
{
    (void)state;
    fake_rtos_reset();
    memset(&st, 0, sizeof st);
    mutex = xSemaphoreCreateMutexStatic(&mutex_storage);
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

static pk_allocator *make_critical(void **state)
{
    pk_lock l = pk_freertos_critical_lock(&st);
    target = target_make(*(target_kind *)*state, &l);
    return target;
}

static pk_allocator *make_mutex(void **state)
{
    pk_lock l = pk_freertos_mutex_lock(mutex);
    target = target_make(*(target_kind *)*state, &l);
    return target;
}

/* No misuse, the kernel's state as at the start, every pair balanced. */
static void assert_clean(void)
{
    assert_string_equal(fake_rtos.last_error == NULL ? "none" : fake_rtos.last_error, "none");
    assert_int_equal(fake_rtos.errors, 0);
    assert_int_equal(fake_rtos.asserts, 0);
    assert_int_equal(fake_rtos.mask, 0);
    assert_int_equal(fake_rtos.critical_nesting, 0);
    assert_int_equal(fake_rtos.enter, fake_rtos.exit);
    assert_int_equal(fake_rtos.enter_isr, fake_rtos.exit_isr);
    assert_int_equal(fake_rtos.takes, fake_rtos.gives);
    assert_int_equal(mutex->holder, 0);
    assert_int_equal(st.isr_depth, 0);
}

/* --- the critical-section lock --- */

static void critical_constructor(void **state)
{
    (void)state;
    pk_lock l = pk_freertos_critical_lock(&st);
    assert_non_null(l.lock);
    assert_non_null(l.unlock);
    assert_ptr_equal(l.ctx, &st);
}

static void critical_in_task(void **state)
{
    pk_allocator *a = make_critical(state);
    target_churn(a, 200);
    assert_true(fake_rtos.enter >= 200);
    assert_int_equal(fake_rtos.enter_isr, 0);
    assert_int_equal(pk_check(a), PK_OK);
    assert_clean();
}

static void critical_in_isr(void **state)
{
    pk_allocator *a = make_critical(state);
    fake_rtos.in_isr = 1;
    target_churn(a, 200);
    assert_int_equal(pk_check(a), PK_OK);
    fake_rtos.in_isr = 0;
    assert_true(fake_rtos.enter_isr >= 200);
    assert_int_equal(fake_rtos.enter, 0);
    assert_clean();
}

/* The caller holds the critical section around allocator calls: the inner
 * exits must not open interrupts; the outer one does. In a task the kernel
 * counts; in an ISR the lock's state does. */
static void critical_nested_in_task(void **state)
{
    pk_allocator *a = make_critical(state);
    taskENTER_CRITICAL();
    void *p = pk_alloc(a, 16);
    assert_non_null(p);
    assert_int_equal(pk_free(a, p), PK_OK);
    assert_int_equal(fake_rtos.mask, 1);
    assert_int_equal(fake_rtos.critical_nesting, 1);
    taskEXIT_CRITICAL();
    assert_int_equal(fake_rtos.enter, 3);
    assert_clean();
}

static void critical_nested_in_isr(void **state)
{
    pk_allocator *a = make_critical(state);
    pk_lock l = pk_freertos_critical_lock(&st);
    fake_rtos.in_isr = 1;
    l.lock(l.ctx);
    void *p = pk_alloc(a, 16);
    assert_non_null(p);
    assert_int_equal(fake_rtos.mask, 1);
    assert_int_equal(st.isr_depth, 1);
    assert_int_equal(pk_free(a, p), PK_OK);
    assert_int_equal(fake_rtos.mask, 1);
    l.unlock(l.ctx);
    fake_rtos.in_isr = 0;
    assert_int_equal(fake_rtos.enter_isr, 3);
    assert_clean();
}

/* A fault (double free) whose handler calls poolkit, in a task and in an ISR:
 * the handler runs outside the critical section, and all is restored. */
static UBaseType_t probe_mask, probe_nesting, probe_isr_depth;
static void critical_probe(void)
{
    probe_mask = fake_rtos.mask;
    probe_nesting = fake_rtos.critical_nesting;
    probe_isr_depth = st.isr_depth;
}

static void double_free_with_handler(pk_allocator *a, void (*probe)(void))
{
    port_fault_target = a;
    port_fault_probe = probe;
    unsigned calls = port_faults.calls;
    void *p = pk_alloc(a, 16);
    assert_non_null(p);
    assert_int_equal(pk_free(a, p), PK_OK);
    assert_int_equal(pk_free(a, p), PK_ERR_DOUBLE_FREE);
    assert_int_equal(port_faults.calls, calls + 1);
    assert_int_equal(port_faults.last, PK_ERR_DOUBLE_FREE);
    assert_int_equal(port_faults.handler_allocs, calls + 1);
    port_fault_target = NULL;
    port_fault_probe = NULL;
}

static void critical_fault(void **state)
{
    pk_allocator *a = make_critical(state);
    double_free_with_handler(a, critical_probe);
    assert_int_equal(probe_mask, 0);
    assert_int_equal(probe_nesting, 0);
    fake_rtos.in_isr = 1;
    probe_mask = probe_isr_depth = 99;
    double_free_with_handler(a, critical_probe);
    assert_int_equal(probe_mask, 0);
    assert_int_equal(probe_isr_depth, 0);
    fake_rtos.in_isr = 0;
    assert_int_equal(pk_check(a), PK_OK);
    assert_clean();
}

/* An ISR using the same allocator, taken at the k-th point where the task has
 * interrupts open, for every k: it must never find the task inside the
 * critical section or the ISR side held, and must leave both as it found
 * them. One ISR also faults, and its handler calls poolkit. */
static void isr_uses_allocator(void)
{
    assert_int_equal(fake_rtos.mask, 0);
    assert_int_equal(fake_rtos.critical_nesting, 0);
    assert_int_equal(st.isr_depth, 0);
    void *p = pk_alloc(target, 24);
    assert_non_null(p);
    assert_int_equal(pk_free(target, p), PK_OK);
    if (isr_allocs == 3) {
        double_free_with_handler(target, NULL);
    }
    assert_int_equal(fake_rtos.mask, 0);
    assert_int_equal(st.isr_depth, 0);
    isr_allocs++;
}

/* base_in_isr 0: the ISR preempts a task; 1: it preempts a lower-priority
 * ISR (nested interrupts, as on Cortex-M). */
static void interrupt_everywhere(void **state, int base_in_isr)
{
    pk_allocator *a = make_critical(state);
    long points = 0;
    for (long k = 0;; k++) {
        fake_rtos.isr = isr_uses_allocator;
        fake_rtos.countdown = k;
        fake_rtos.in_isr = base_in_isr;
        target_churn(a, 12);
        fake_rtos.in_isr = 0;
        if (fake_rtos.isr != NULL) { /* k is past the last point */
            fake_rtos.isr = NULL;
            break;
        }
        points++;
        assert_int_equal(pk_check(a), PK_OK);
        assert_clean();
    }
    assert_true(points >= 24); /* before and after each of 12 calls at least */
    assert_int_equal(isr_allocs, (unsigned)points);
    assert_true(fake_rtos.enter_isr >= 2 * (unsigned)points);
    assert_clean();
}

static void critical_interrupt_everywhere(void **state)
{
    interrupt_everywhere(state, 0);
}

static void critical_nested_interrupt_everywhere(void **state)
{
    interrupt_everywhere(state, 1);
}

/* --- the mutex lock --- */

static void mutex_constructor(void **state)
{
    (void)state;
    pk_lock l = pk_freertos_mutex_lock(mutex);
    assert_non_null(l.lock);
    assert_non_null(l.unlock);
    assert_ptr_equal(l.ctx, mutex);
}

static void mutex_in_task(void **state)
{
    pk_allocator *a = make_mutex(state);
    target_churn(a, 200);
    assert_true(mutex->takes >= 200);
    assert_int_equal(mutex->takes, mutex->gives);
    assert_int_equal(pk_check(a), PK_OK);
    assert_int_equal(fake_rtos.enter + fake_rtos.enter_isr, 0);
    assert_clean();
}

static int probe_holder;
static void mutex_probe(void)
{
    probe_holder = mutex->holder;
}

static void mutex_fault(void **state)
{
    pk_allocator *a = make_mutex(state);
    probe_holder = -1;
    double_free_with_handler(a, mutex_probe);
    assert_int_equal(probe_holder, 0); /* the handler's own calls took it */
    assert_int_equal(pk_check(a), PK_OK);
    assert_clean();
}

/* The fake itself catches what the mutex lock must not be used for: from an
 * ISR, or by a task that holds the mutex (it is not recursive: the lock's
 * configASSERT fires too). */
static void fake_catches_misuse(void **state)
{
    pk_allocator *a = make_mutex(state);
    fake_rtos.in_isr = 1;
    void *p = pk_alloc(a, 16);
    fake_rtos.in_isr = 0;
    assert_non_null(p);
    assert_string_equal(fake_rtos.last_error, "xSemaphoreGive of a mutex in an ISR");
    assert_int_equal(fake_rtos.errors, 2); /* the take, then the give */
    assert_int_equal(pk_free(a, p), PK_OK);
    assert_int_equal(fake_rtos.errors, 2);

    fake_rtos_reset();
    pk_lock l = pk_freertos_mutex_lock(mutex);
    l.lock(l.ctx);
    l.lock(l.ctx);
    assert_string_equal(fake_rtos.last_error, "xSemaphoreTake of a mutex the task holds (deadlock)");
    assert_int_equal(fake_rtos.asserts, 1);
    l.unlock(l.ctx);
    assert_int_equal(fake_rtos.asserts, 1);
}

#define BOTH(fn)                                                                    \
    cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, (void *)&pool_kind), \
    cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, (void *)&heap_kind)

int main(void)
{
    static target_kind pool_kind = TARGET_POOL, heap_kind = TARGET_HEAP;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(critical_constructor, setup, teardown),
        BOTH(critical_in_task),
        BOTH(critical_in_isr),
        BOTH(critical_nested_in_task),
        BOTH(critical_nested_in_isr),
        BOTH(critical_fault),
        BOTH(critical_interrupt_everywhere),
        BOTH(critical_nested_interrupt_everywhere),
        cmocka_unit_test_setup_teardown(mutex_constructor, setup, teardown),
        BOTH(mutex_in_task),
        BOTH(mutex_fault),
        cmocka_unit_test_prestate_setup_teardown(fake_catches_misuse, setup, teardown, (void *)&pool_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
