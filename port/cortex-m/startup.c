/*
 * Start-up for the bare-metal test image (mps2-an385.ld): the vector table,
 * a reset handler that prepares RAM and runs main, and one handler for every
 * other exception, which reports it and fails the run (an exception the
 * image did not expect is a failure, and a hang is worse than an exit).
 * Firmware normally has its vendor's start-up instead; this one is the
 * minimum that C needs, with nothing from libc.
 */
#include <stdint.h>

#include "semihosting.h"

int main(void);

/* From the linker script. */
extern uint32_t __stack_top[];
extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];

static void reset(void);
static void exception(void);

typedef union {
    void (*handler)(void);
    const void *stack;
} vector;

/* QEMU and the hardware both take the initial SP and the reset address from
 * address 0 (QEMU ignores the ELF entry point on M-profile): the linker
 * script keeps this section first. */
__attribute__((section(".vectors"), used)) static const vector vectors[16] = {
    {.stack = __stack_top}, {.handler = reset},     {.handler = exception}, {.handler = exception},
    {.handler = exception}, {.handler = exception}, {.handler = exception}, {.handler = 0},
    {.handler = 0},         {.handler = 0},         {.handler = 0},         {.handler = exception},
    {.handler = exception}, {.handler = 0},         {.handler = exception}, {.handler = exception},
};

static void reset(void)
{
#if defined(__ARM_FP)
    /* Before any floating-point instruction, which would fault with the FPU
     * off: full access for CP10 and CP11. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    /* .data is linked in RAM and loaded in flash, as on a real part. */
    for (uint32_t *from = __data_load, *to = __data_start; to < __data_end;) {
        *to++ = *from++;
    }
    for (uint32_t *p = __bss_start; p < __bss_end;) {
        *p++ = 0;
    }
    pk_semihosting_exit(main());
}

static void write_hex(uint32_t v)
{
    char digits[9];
    for (int i = 7; i >= 0; i--, v >>= 4) {
        digits[i] = "0123456789abcdef"[v & 0xFu];
    }
    digits[8] = '\0';
    pk_semihosting_write(digits);
}

/* frame: the registers the core stacked (r0-r3, r12, lr, pc, xpsr). */
__attribute__((used)) static void exception_report(const uint32_t *frame)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    static const char *const names[16] = {
        "exception 0", "reset", "NMI", "HardFault", "MemManage", "BusFault", "UsageFault", "exception 7",
        "exception 8", "exception 9", "exception 10", "SVCall", "DebugMon", "exception 13", "PendSV", "SysTick",
    };
    pk_semihosting_write("\nFAIL ");
    pk_semihosting_write(ipsr < 16 ? names[ipsr] : "interrupt");
    pk_semihosting_write(" at pc 0x");
    write_hex(frame[6]);
    /* CFSR and HFSR say which fault it was (bad address, bad instruction). */
    pk_semihosting_write(", cfsr 0x");
    write_hex(*(volatile uint32_t *)0xE000ED28u);
    pk_semihosting_write(", hfsr 0x");
    write_hex(*(volatile uint32_t *)0xE000ED2Cu);
    pk_semihosting_write("\n");
    pk_semihosting_exit(2);
}

/* The stacked frame is on the process stack when the exception came from
 * thread code running on it (EXC_RETURN bit 2), else on the main stack.
 * ARMv6-M instructions only, so that it builds for every Cortex-M. */
__attribute__((naked)) static void exception(void)
{
    __asm__ volatile("movs r0, #4\n\t"
                     "mov r1, lr\n\t"
                     "tst r0, r1\n\t"
                     "beq 1f\n\t"
                     "mrs r0, psp\n\t"
                     "b exception_report\n"
                     "1:\n\t"
                     "mrs r0, msp\n\t"
                     "b exception_report");
}
