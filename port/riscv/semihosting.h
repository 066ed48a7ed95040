/*
 * Semihosting for RISC-V (the ebreak sequence of the RISC-V semihosting
 * spec): text and an exit status handed to the debugger or emulator (QEMU:
 * -semihosting). Without one attached the ebreak traps: for test images,
 * not for shipped firmware. The same two calls as port/cortex-m's.
 */
#ifndef POOLKIT_PORT_SEMIHOSTING_H
#define POOLKIT_PORT_SEMIHOSTING_H

/* Writes a NUL-terminated string (SYS_WRITE0). */
void pk_semihosting_write(const char *text);

/* Ends the program with status (0..255) as the emulator's exit status
 * (SYS_EXIT_EXTENDED). */
_Noreturn void pk_semihosting_exit(int status);

#endif
