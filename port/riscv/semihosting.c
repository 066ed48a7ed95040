#include "semihosting.h"

#include <stdint.h>

#define SYS_WRITE0 0x04u
#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static uintptr_t semihosting_call(uintptr_t op, const void *arg)
{
    register uintptr_t a0 __asm__("a0") = op;
    register const void *a1 __asm__("a1") = arg;
    /* The host recognises the ebreak by the two instructions around it, so
     * they must be uncompressed and on one page (the 16-byte alignment). */
    __asm__ volatile(".option push\n\t"
                     ".option norvc\n\t"
                     ".balign 16\n\t"
                     "slli x0, x0, 0x1f\n\t"
                     "ebreak\n\t"
                     "srai x0, x0, 7\n\t"
                     ".option pop"
                     : "+r"(a0)
                     : "r"(a1)
                     : "memory");
    return a0;
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
