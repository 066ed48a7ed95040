/*
 * Test-only: the PRIMASK primitives of port/cortex-m/primask_lock.c on the
 * host, named through PK_CONFIG_HEADER. A fake PRIMASK bit, call counts, and
 * an injector that takes a simulated interrupt at a chosen point where
 * PRIMASK is 0 (tests/port/fake_primask.c).
 */
#ifndef FAKE_PRIMASK_H
#define FAKE_PRIMASK_H

#include <stdint.h>

typedef struct {
    uint32_t primask;         /* 1: interrupts disabled */
    unsigned mrs, cpsid, msr; /* calls */
    /* When isr is set, it runs at the countdown-th point where an interrupt
     * could be taken (before a read or a disable made with PRIMASK 0, after a
     * restore that leaves it 0), then is cleared. PRIMASK is left as it is on
     * exception entry and return (unchanged), as on the hardware. */
    void (*isr)(void);
    long countdown;
    unsigned isr_runs;
    int in_isr; /* exception levels running: set by the test, raised by the injector */
} fake_primask_state;
extern fake_primask_state fake_cpu;

void fake_primask_reset(void);
uint32_t fake_primask_get(void);
void fake_primask_disable(void);
void fake_primask_set(uint32_t v);

#define PK_PRIMASK_GET() fake_primask_get()
#define PK_PRIMASK_DISABLE() fake_primask_disable()
#define PK_PRIMASK_SET(v) fake_primask_set(v)

#endif
