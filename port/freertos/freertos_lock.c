/* The FreeRTOS locks (freertos_lock.h). */
#include "freertos_lock.h"

#include "FreeRTOS.h"
#include "task.h"
#include "semphr.h"

/* Whether the caller is an interrupt handler. */
#ifndef PK_FREERTOS_IN_ISR
#define PK_FREERTOS_IN_ISR() (xPortIsInsideInterrupt() != pdFALSE)
#endif

static void critical_lock(void *ctx)
{
    pk_freertos_critical_state *st = (pk_freertos_critical_state *)ctx;
    if (!PK_FREERTOS_IN_ISR()) {
        taskENTER_CRITICAL(); /* the kernel counts the nesting */
        return;
    }
    UBaseType_t mask = taskENTER_CRITICAL_FROM_ISR();
    /* Interrupts that use the lock are masked from here on, so the state is
     * this handler's until its unlock. */
    if (st->isr_depth == 0u) {
        st->isr_saved = mask;
    } else {
        /* Nested: mask is the level the outer lock set; putting it back
         * keeps the pairs balanced and changes nothing. */
        taskEXIT_CRITICAL_FROM_ISR(mask);
    }
    st->isr_depth++;
}

static void critical_unlock(void *ctx)
{
    pk_freertos_critical_state *st = (pk_freertos_critical_state *)ctx;
    if (!PK_FREERTOS_IN_ISR()) {
        taskEXIT_CRITICAL();
        return;
    }
    st->isr_depth--;
    if (st->isr_depth == 0u) {
        /* The state is free before interrupts come back. */
        UBaseType_t mask = st->isr_saved;
        taskEXIT_CRITICAL_FROM_ISR(mask);
    }
}

pk_lock pk_freertos_critical_lock(pk_freertos_critical_state *st)
{
    pk_lock l = {critical_lock, critical_unlock, st};
    return l;
}

static void mutex_lock(void *ctx)
{
    BaseType_t taken = xSemaphoreTake((SemaphoreHandle_t)ctx, portMAX_DELAY);
    configASSERT(taken == pdTRUE); /* portMAX_DELAY waits forever (INCLUDE_vTaskSuspend 1) */
    (void)taken;
}

static void mutex_unlock(void *ctx)
{
    BaseType_t given = xSemaphoreGive((SemaphoreHandle_t)ctx);
    configASSERT(given == pdTRUE); /* fails only if this task does not hold it */
    (void)given;
}

pk_lock pk_freertos_mutex_lock(SemaphoreHandle_t mutex)
{
    pk_lock l = {mutex_lock, mutex_unlock, (void *)mutex};
    return l;
}
