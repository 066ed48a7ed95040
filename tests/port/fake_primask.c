/* The fake PRIMASK of tests/port/fake_primask.h. */
#include "fake_primask.h"

#include <stddef.h>
#include <string.h>

fake_primask_state fake_cpu;

void fake_primask_reset(void)
{
    memset(&fake_cpu, 0, sizeof fake_cpu);
}

/* Runs the injected handler one exception level above the running code
 * (thread mode, or a handler the test simulates by setting in_isr). */
static int injecting;
static void interruptible(void)
{
    if (fake_cpu.isr == NULL || fake_cpu.primask != 0 || injecting) {
        return;
    }
    if (fake_cpu.countdown-- > 0) {
        return;
    }
    void (*isr)(void) = fake_cpu.isr;
    fake_cpu.isr = NULL;
    injecting = 1;
    fake_cpu.in_isr++;
    isr();
    fake_cpu.in_isr--;
    injecting = 0;
    fake_cpu.isr_runs++;
}

uint32_t fake_primask_get(void)
{
    interruptible();
    fake_cpu.mrs++;
    return fake_cpu.primask;
}

void fake_primask_disable(void)
{
    interruptible();
    fake_cpu.cpsid++;
    fake_cpu.primask = 1;
}

void fake_primask_set(uint32_t v)
{
    fake_cpu.msr++;
    fake_cpu.primask = v & 1u;
    interruptible();
}
