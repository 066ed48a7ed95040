/*
 * A test-only fake of the few FreeRTOS names port/freertos uses (no FreeRTOS
 * code): it models one core with an interrupt mask, a current task, ISR
 * context and mutexes, counts every call and records each misuse a real
 * kernel would assert on or hang at (tests/port/fake_freertos.c). task.h and
 * semphr.h here only include this file.
 */
#ifndef FAKE_FREERTOS_H
#define FAKE_FREERTOS_H

#include <stdint.h>

typedef long BaseType_t;
typedef unsigned long UBaseType_t;
typedef uint32_t TickType_t;

#define pdFALSE ((BaseType_t)0)
#define pdTRUE ((BaseType_t)1)
#define portMAX_DELAY ((TickType_t)0xffffffffu)

/* A fake mutex: who holds it (0: nobody), how often it was taken. */
typedef struct fake_semaphore {
    int created;
    int holder;
    unsigned takes, gives;
} StaticSemaphore_t;
typedef struct fake_semaphore *SemaphoreHandle_t;

typedef struct {
    int in_isr;                     /* interrupt levels running: set by the test, raised by the injector */
    int task;                       /* the running task's id (not 0) */
    UBaseType_t mask;               /* 0: interrupts open, 1: masked to the syscall level */
    UBaseType_t critical_nesting;   /* the task-level critical section's count */
    unsigned enter, exit;           /* taskENTER/EXIT_CRITICAL calls */
    unsigned enter_isr, exit_isr;   /* the _FROM_ISR pair's calls */
    unsigned in_isr_queries;        /* xPortIsInsideInterrupt calls */
    unsigned takes, gives;          /* mutex calls, all mutexes */
    unsigned asserts;               /* configASSERT failures */
    unsigned errors;                /* misuses a real kernel would assert on or hang at */
    const char *last_error;
    /* The ISR injector: when isr is set, it runs isr (in ISR context) at the
     * countdown-th point where an interrupt could be taken (a fake call made
     * while interrupts are open, before it masks them or after it opens
     * them), then clears isr; in a task, or nested in an ISR the test
     * simulates (a higher-priority interrupt). */
    void (*isr)(void);
    long countdown;
    unsigned isr_runs;
} fake_rtos_state;
extern fake_rtos_state fake_rtos;

/* Everything back to a task (id 1) with interrupts open and no calls counted. */
void fake_rtos_reset(void);

void fake_rtos_assert_failed(const char *file, int line);
#define configASSERT(x) do { if (!(x)) fake_rtos_assert_failed(__FILE__, __LINE__); } while (0)

BaseType_t xPortIsInsideInterrupt(void);

void fake_task_enter_critical(void);
void fake_task_exit_critical(void);
UBaseType_t fake_task_enter_critical_from_isr(void);
void fake_task_exit_critical_from_isr(UBaseType_t mask);

SemaphoreHandle_t xSemaphoreCreateMutexStatic(StaticSemaphore_t *buffer);
BaseType_t xSemaphoreTake(SemaphoreHandle_t sem, TickType_t ticks);
BaseType_t xSemaphoreGive(SemaphoreHandle_t sem);

#endif
