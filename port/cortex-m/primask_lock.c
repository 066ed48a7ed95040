/* The PRIMASK lock for Cortex-M (primask_lock.h). */
#include "primask_lock.h"

/* The three primitives: inline assembly for GCC and Clang on Arm, unless the
 * user's PK_CONFIG_HEADER defines them (other compilers, CMSIS, host tests).
 * Each is volatile with a "memory" clobber: the compiler neither drops it nor
 * moves a memory access across it, so the state is written only while
 * interrupts are disabled, and every write is done before they come back. */
#if !defined(PK_PRIMASK_GET) && !defined(PK_PRIMASK_DISABLE) && !defined(PK_PRIMASK_SET)
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__arm__) || defined(__thumb__))
static inline uint32_t pk__primask_get(void)
{
    uint32_t v;
    __asm__ volatile("mrs %0, primask" : "=r"(v) : : "memory");
    return v;
}

static inline void pk__primask_disable(void)
{
    __asm__ volatile("cpsid i" : : : "memory");
}

static inline void pk__primask_set(uint32_t v)
{
    __asm__ volatile("msr primask, %0" : : "r"(v) : "memory");
}

#define PK_PRIMASK_GET() pk__primask_get()
#define PK_PRIMASK_DISABLE() pk__primask_disable()
#define PK_PRIMASK_SET(v) pk__primask_set(v)
#else
#error "primask_lock.c: not GCC or Clang for Arm; define PK_PRIMASK_GET, PK_PRIMASK_DISABLE and PK_PRIMASK_SET (see primask_lock.h)"
#endif
#elif !defined(PK_PRIMASK_GET) || !defined(PK_PRIMASK_DISABLE) || !defined(PK_PRIMASK_SET)
#error "primask_lock.c: define all three of PK_PRIMASK_GET, PK_PRIMASK_DISABLE and PK_PRIMASK_SET, or none"
#endif

void pk_cortex_m_primask_enter(pk_cortex_m_primask_state *st)
{
    /* Read before disabling: a handler taken in between runs its own
     * enter/exit to the end and leaves PRIMASK and the state as they were. */
    uint32_t primask = PK_PRIMASK_GET();
    PK_PRIMASK_DISABLE();
    if (st->depth == 0u) {
        st->saved = primask;
    }
    st->depth++;
}

void pk_cortex_m_primask_exit(pk_cortex_m_primask_state *st)
{
    /* The state is updated before PRIMASK is restored: once interrupts are
     * back, a handler must find the state free (depth 0). */
    st->depth--;
    if (st->depth == 0u) {
        PK_PRIMASK_SET(st->saved);
    }
}

static void primask_lock(void *ctx)
{
    pk_cortex_m_primask_enter((pk_cortex_m_primask_state *)ctx);
}

static void primask_unlock(void *ctx)
{
    pk_cortex_m_primask_exit((pk_cortex_m_primask_state *)ctx);
}

pk_lock pk_cortex_m_primask_lock(pk_cortex_m_primask_state *st)
{
    pk_lock l = {primask_lock, primask_unlock, st};
    return l;
}
