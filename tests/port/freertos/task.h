/* Test-only fake (see FreeRTOS.h here). */
#ifndef FAKE_FREERTOS_TASK_H
#define FAKE_FREERTOS_TASK_H
#include "FreeRTOS.h"
#define taskENTER_CRITICAL() fake_task_enter_critical()
#define taskEXIT_CRITICAL() fake_task_exit_critical()
#define taskENTER_CRITICAL_FROM_ISR() fake_task_enter_critical_from_isr()
#define taskEXIT_CRITICAL_FROM_ISR(x) fake_task_exit_critical_from_isr(x)
#endif
