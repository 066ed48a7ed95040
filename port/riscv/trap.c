#include <stdint.h>

#include "semihosting.h"

/* Called by start.S's trap entry; never returns. */
_Noreturn void pk_riscv_trap(uint32_t mcause, uint32_t mepc, uint32_t mtval);

static void write_hex(uint32_t v)
{
    char digits[9];
    for (int i = 7; i >= 0; i--, v >>= 4) {
        digits[i] = "0123456789abcdef"[v & 0xFu];
    }
    digits[8] = '\0';
    pk_semihosting_write(digits);
}

/* mcause says which trap (5: load access fault, 2: illegal instruction),
 * mtval the address or instruction at fault. */
_Noreturn void pk_riscv_trap(uint32_t mcause, uint32_t mepc, uint32_t mtval)
{
    pk_semihosting_write("\nFAIL trap: mcause 0x");
    write_hex(mcause);
    pk_semihosting_write(", mepc 0x");
    write_hex(mepc);
    pk_semihosting_write(", mtval 0x");
    write_hex(mtval);
    pk_semihosting_write("\n");
    pk_semihosting_exit(2);
}
