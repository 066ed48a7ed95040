/*
 * A pk_lock for Cortex-M: a critical section that masks interrupts with
 * PRIMASK (example port; add port/cortex-m to the include path and
 * primask_lock.c to the build).
 *
 * lock reads PRIMASK and disables interrupts (mrs primask; cpsid i); unlock
 * puts back the PRIMASK value seen by the outermost lock (msr primask). The
 * state keeps a depth count and that saved value, so the lock nests: an inner
 * lock/unlock pair (the same state taken again by code that holds it) leaves
 * interrupts disabled, and only the outermost unlock restores them. Entered
 * with interrupts already disabled, it leaves them disabled.
 *
 * - ISR-safe: usable from thread mode and from any exception handler that
 *   PRIMASK masks (every one but NMI and HardFault), sharing one state. The
 *   state is only touched with interrupts disabled, and a handler that
 *   preempts thread code before it disables them runs its own lock/unlock
 *   pair to the end before returning. Not for NMI or HardFault handlers:
 *   PRIMASK does not mask them, so they could break into a held lock.
 * - Bounded interrupt latency: interrupts stay disabled for the allocator's
 *   longest locked path (each allocator's header says what is locked and for
 *   how long; check, stats walks and leak walks are O(n): do not run them
 *   where latency matters). It masks every interrupt; to leave urgent
 *   interrupts running, write a BASEPRI lock in the same shape (ARMv7-M and
 *   later).
 * - Single core only: PRIMASK masks interrupts of the core that sets it.
 *   Another core (a dual-core MCU) is not excluded; use a hardware spinlock or
 *   semaphore there.
 *
 * Works on ARMv6-M (Cortex-M0/M0+) as well as ARMv7-M and ARMv8-M. GCC and
 * Clang get inline assembly; for other compilers (IAR, Keil/armcc) define the
 * three primitives, e.g. with the CMSIS intrinsics, in PK_CONFIG_HEADER:
 *     #define PK_PRIMASK_GET()     __get_PRIMASK()
 *     #define PK_PRIMASK_DISABLE() __disable_irq()
 *     #define PK_PRIMASK_SET(v)    __set_PRIMASK(v)
 * They must also be compiler barriers (memory accesses are not moved across
 * them), as the CMSIS ones and the inline assembly here are.
 */
#ifndef POOLKIT_PORT_PRIMASK_LOCK_H
#define POOLKIT_PORT_PRIMASK_LOCK_H

#include <stdint.h>

#include "poolkit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The lock's state: zero it (or use PK_CORTEX_M_PRIMASK_STATE_INIT) before
 * first use; it must outlive every allocator using the lock. One state may
 * serve several allocators and user code at once (all share one
 * interrupts-off section). */
typedef struct {
    uint32_t depth;  /* locks held now (nesting) */
    uint32_t saved;  /* PRIMASK before the outermost lock */
} pk_cortex_m_primask_state;

#define PK_CORTEX_M_PRIMASK_STATE_INIT {0u, 0u}

/* A lock whose lock and unlock are pk_cortex_m_primask_enter and
 * pk_cortex_m_primask_exit on st. O(1). */
pk_lock pk_cortex_m_primask_lock(pk_cortex_m_primask_state *st);

/* The lock's two halves, for user code that wants the same critical section
 * (for instance around several allocator calls: they nest inside it).
 * enter: saves PRIMASK (outermost only) and disables interrupts. exit: undoes
 * one enter; the outermost restores the saved PRIMASK. Each exit must match
 * an enter on the same state in the same context. O(1), ISR-safe (see above). */
void pk_cortex_m_primask_enter(pk_cortex_m_primask_state *st);
void pk_cortex_m_primask_exit(pk_cortex_m_primask_state *st);

#ifdef __cplusplus
}
#endif

#endif
