/* The fake FreeRTOS of tests/port/freertos/FreeRTOS.h. */
#include "FreeRTOS.h"

#include <stddef.h>
#include <string.h>

fake_rtos_state fake_rtos;

void fake_rtos_reset(void)
{
    memset(&fake_rtos, 0, sizeof fake_rtos);
    fake_rtos.task = 1;
}

static void misuse(const char *what)
{
    fake_rtos.errors++;
    fake_rtos.last_error = what;
}

void fake_rtos_assert_failed(const char *file, int line)
{
    (void)file;
    (void)line;
    fake_rtos.asserts++;
}

/* A point where an interrupt could be taken: runs the injected ISR when its
 * countdown reaches 0, one interrupt level above the code that was running
 * (a task, or an ISR the test simulates by setting in_isr). */
static int injecting;
static void interruptible(void)
{
    if (fake_rtos.isr == NULL || fake_rtos.mask != 0 || injecting) {
        return;
    }
    if (fake_rtos.countdown-- > 0) {
        return;
    }
    void (*isr)(void) = fake_rtos.isr;
    fake_rtos.isr = NULL;
    injecting = 1;
    fake_rtos.in_isr++;
    isr();
    fake_rtos.in_isr--;
    injecting = 0;
    fake_rtos.isr_runs++;
}

BaseType_t xPortIsInsideInterrupt(void)
{
    fake_rtos.in_isr_queries++;
    return fake_rtos.in_isr ? pdTRUE : pdFALSE;
}

void fake_task_enter_critical(void)
{
    interruptible();
    fake_rtos.enter++;
    if (fake_rtos.in_isr) {
        misuse("taskENTER_CRITICAL in an ISR");
    }
    fake_rtos.mask = 1;
    fake_rtos.critical_nesting++;
}

void fake_task_exit_critical(void)
{
    fake_rtos.exit++;
    if (fake_rtos.in_isr) {
        misuse("taskEXIT_CRITICAL in an ISR");
    }
    if (fake_rtos.critical_nesting == 0) {
        misuse("taskEXIT_CRITICAL without taskENTER_CRITICAL");
        return;
    }
    if (--fake_rtos.critical_nesting == 0) {
        fake_rtos.mask = 0;
        interruptible();
    }
}

UBaseType_t fake_task_enter_critical_from_isr(void)
{
    interruptible();
    fake_rtos.enter_isr++;
    if (!fake_rtos.in_isr) {
        misuse("taskENTER_CRITICAL_FROM_ISR in a task");
    }
    UBaseType_t old = fake_rtos.mask;
    fake_rtos.mask = 1;
    return old;
}

void fake_task_exit_critical_from_isr(UBaseType_t mask)
{
    fake_rtos.exit_isr++;
    if (!fake_rtos.in_isr) {
        misuse("taskEXIT_CRITICAL_FROM_ISR in a task");
    }
    if (mask > 1) {
        misuse("taskEXIT_CRITICAL_FROM_ISR with a mask it did not return");
    }
    fake_rtos.mask = mask;
    interruptible();
}

SemaphoreHandle_t xSemaphoreCreateMutexStatic(StaticSemaphore_t *buffer)
{
    memset(buffer, 0, sizeof *buffer);
    buffer->created = 1;
    return buffer;
}

BaseType_t xSemaphoreTake(SemaphoreHandle_t sem, TickType_t ticks)
{
    interruptible();
    fake_rtos.takes++;
    if (sem == NULL || !sem->created) {
        misuse("xSemaphoreTake on no mutex");
        return pdFALSE;
    }
    if (fake_rtos.in_isr) {
        misuse("xSemaphoreTake (blocking) in an ISR");
    }
    if (fake_rtos.critical_nesting != 0) {
        misuse("xSemaphoreTake in a critical section");
    }
    if (sem->holder == fake_rtos.task) {
        misuse("xSemaphoreTake of a mutex the task holds (deadlock)");
        return pdFALSE;
    }
    if (sem->holder != 0) {
        /* One thread of execution: nobody could give it back. */
        misuse("xSemaphoreTake would block forever");
        return pdFALSE;
    }
    if (ticks != portMAX_DELAY) {
        misuse("xSemaphoreTake with a timeout");
    }
    sem->holder = fake_rtos.task;
    sem->takes++;
    return pdTRUE;
}

BaseType_t xSemaphoreGive(SemaphoreHandle_t sem)
{
    fake_rtos.gives++;
    if (sem == NULL || !sem->created) {
        misuse("xSemaphoreGive on no mutex");
        return pdFALSE;
    }
    if (fake_rtos.in_isr) {
        misuse("xSemaphoreGive of a mutex in an ISR");
    }
    if (sem->holder != fake_rtos.task) {
        misuse("xSemaphoreGive by a task that does not hold the mutex");
        return pdFALSE;
    }
    sem->holder = 0;
    sem->gives++;
    interruptible();
    return pdTRUE;
}
