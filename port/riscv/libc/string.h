/*
 * The part of <string.h> that poolkit and the test driver use, for the
 * RISC-V bare-metal toolchain, which ships no C library (Debian's
 * gcc-riscv64-unknown-elf; picolibc would be a 1 GB package for three
 * functions). Firmware builds use their own C library instead.
 */
#ifndef POOLKIT_PORT_RISCV_STRING_H
#define POOLKIT_PORT_RISCV_STRING_H

#include <stddef.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memset(void *dst, int c, size_t n);
int strcmp(const char *a, const char *b);

#endif
