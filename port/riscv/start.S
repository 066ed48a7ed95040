/* Start-up for the bare-metal test image on QEMU's virt board (virt.ld):
 * a stack, .bss zeroed (.data is loaded in place: all is RAM here), main,
 * and its status handed to the emulator; any trap is reported and fails the
 * run (an exception the image did not expect is a failure, and a hang is
 * worse than an exit). */
    .section .init, "ax"
    /* The CSR instructions: part of rv32imac, a separate extension
     * (Zicsr) to binutils 2.38 and later. */
    .option arch, +zicsr
    .global _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    la sp, __stack_top
    la t0, trap
    csrw mtvec, t0
    la t0, __bss_start
    la t1, __bss_end
1:  bgeu t0, t1, 2f
    sw zero, 0(t0)
    addi t0, t0, 4
    j 1b
2:  call main
    tail pk_semihosting_exit

    /* Direct mode: mtvec holds the handler's address, 4-byte aligned. */
    .balign 4
trap:
    csrr a0, mcause
    csrr a1, mepc
    csrr a2, mtval
    la sp, __stack_top
    tail pk_riscv_trap
