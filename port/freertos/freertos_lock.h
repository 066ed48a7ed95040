/*
 * pk_locks for FreeRTOS (example port; add port/freertos to the include path
 * and freertos_lock.c to the build, which includes the application's
 * FreeRTOS.h, task.h and semphr.h). Two locks, for two kinds of sharing:
 *
 * pk_freertos_critical_lock: the kernel's critical section. Use it when
 * interrupt handlers allocate or free too, or where the locked paths are
 * short (a pool's, the O(1) heap's alloc and free). In a task it calls
 * taskENTER_CRITICAL / taskEXIT_CRITICAL, which the kernel nests per task; in
 * an ISR it calls taskENTER_CRITICAL_FROM_ISR / taskEXIT_CRITICAL_FROM_ISR.
 * An allocator has one pk_lock for all its callers, and neither pair works
 * for both contexts (taskENTER_CRITICAL from an ISR trips configASSERT on the
 * Cortex-M ports and corrupts the current task's nesting count on others;
 * on ports whose interrupts do not nest, the _FROM_ISR pair masks nothing
 * and would not protect a task), so the lock asks the kernel at each lock
 * which context it runs in, with PK_FREERTOS_IN_ISR() (default:
 * xPortIsInsideInterrupt(), which the Cortex-M ports provide; on other ports
 * define it in PK_CONFIG_HEADER, or define it to 0 when no ISR uses the
 * allocator). The mask an ISR's outermost lock returns is kept in the state
 * until its unlock; an inner lock in the same ISR (code that holds the lock
 * calling poolkit) nests. Interrupts that the kernel's critical section does
 * not mask (on Cortex-M, those above configMAX_SYSCALL_INTERRUPT_PRIORITY)
 * must not use the allocator, as they must not call the FreeRTOS API.
 * Interrupt latency grows by the allocator's longest locked path (each
 * allocator's header says it); check, stats walks and leak walks are O(n).
 *
 * pk_freertos_mutex_lock: a FreeRTOS mutex (xSemaphoreTake with
 * portMAX_DELAY, which waits forever when INCLUDE_vTaskSuspend is 1;
 * xSemaphoreGive), for allocators shared by tasks only. A
 * task waiting for it blocks instead of keeping interrupts masked, and the
 * holder inherits the priority of the highest waiting task (FreeRTOS mutexes
 * have priority inheritance), so a long locked path (a heap check, a fit
 * allocator's list walk) delays only tasks that use that allocator. Never
 * from an ISR, nor from a critical section or with the scheduler suspended.
 * The mutex is not recursive: code that holds it must not call the allocator.
 *
 * Both locks let the fault handler call poolkit: it runs with no poolkit lock
 * held.
 */
#ifndef POOLKIT_PORT_FREERTOS_LOCK_H
#define POOLKIT_PORT_FREERTOS_LOCK_H

#include "FreeRTOS.h"
#include "semphr.h"

#include "poolkit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The critical-section lock's state (the ISR side's mask and nesting): zero it
 * (or use PK_FREERTOS_CRITICAL_STATE_INIT) before first use; it must outlive
 * every allocator using the lock. One state may serve several allocators. */
typedef struct {
    UBaseType_t isr_depth;  /* locks held now from interrupt handlers */
    UBaseType_t isr_saved;  /* what the outermost taskENTER_CRITICAL_FROM_ISR returned */
} pk_freertos_critical_state;

#define PK_FREERTOS_CRITICAL_STATE_INIT {0u, 0u}

/* A lock over the kernel's critical section, usable from tasks and from ISRs
 * that may call the FreeRTOS API (see above). O(1). */
pk_lock pk_freertos_critical_lock(pk_freertos_critical_state *st);

/* A lock that takes mutex with xSemaphoreTake(mutex, portMAX_DELAY) and gives
 * it back with xSemaphoreGive. Create the mutex with xSemaphoreCreateMutex or,
 * without a FreeRTOS heap, xSemaphoreCreateMutexStatic, before the allocator
 * is shared; it must outlive every allocator using the lock, and may serve
 * several. Tasks only (see above). O(1) plus the wait for the mutex. */
pk_lock pk_freertos_mutex_lock(SemaphoreHandle_t mutex);

#ifdef __cplusplus
}
#endif

#endif
