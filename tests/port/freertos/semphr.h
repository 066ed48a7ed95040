/* Test-only fake (see FreeRTOS.h here). */
#ifndef FAKE_FREERTOS_SEMPHR_H
#define FAKE_FREERTOS_SEMPHR_H
#include "FreeRTOS.h"
#endif
