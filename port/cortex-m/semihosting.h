/*
 * Semihosting for Cortex-M (bkpt 0xab): text and an exit status handed to the
 * debugger or emulator (QEMU: -semihosting-config enable=on,target=native).
 * Without a debugger attached the bkpt locks the core up: for test images,
 * not for shipped firmware.
 */
#ifndef POOLKIT_PORT_SEMIHOSTING_H
#define POOLKIT_PORT_SEMIHOSTING_H

/* Writes a NUL-terminated string (SYS_WRITE0). */
void pk_semihosting_write(const char *text);

/* Ends the program with status (0..255) as the emulator's exit status
 * (SYS_EXIT_EXTENDED: the plain SYS_EXIT can only say success or failure). */
_Noreturn void pk_semihosting_exit(int status);

#endif
