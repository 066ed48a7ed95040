#include "semihosting.h"

#include <stdint.h>

#define SYS_WRITE0 0x04u
#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static uintptr_t semihosting_call(uintptr_t op, const void *arg)
{
    register uintptr_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    /* "memory": the host reads the argument block and the string. */
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void pk_semihosting_write(const char *text)
{
    (void)semihosting_call(SYS_WRITE0, text);
}

_Noreturn void pk_semihosting_exit(int status)
{
    const uintptr_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uintptr_t)(unsigned)status};
    (void)semihosting_call(SYS_EXIT_EXTENDED, block);
    for (;;) {
        /* Only reached without a host that honours the exit: stay stopped. */
    }
}
