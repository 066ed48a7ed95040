# Sourced by scripts/cortex_m.sh and scripts/cortex_m_bench.sh, from the
# source root: the flags, sources, toolchains and boards of the bare-metal
# images, so that the test images and the measured ones are built alike.

# As CMakeLists.txt's PK_LIBRARY_WARNINGS (library and port) and PK_WARNINGS (tests).
lib_warnings=(-Wall -Wextra -Werror -pedantic -Wconversion -Wshadow -Wstrict-prototypes
              -Wmissing-prototypes -Wcast-align -Wundef)
test_warnings=(-Wall -Wextra -Werror -pedantic)
common=(-std=c11 -ffreestanding -Os -g -ffunction-sections -fdata-sections -DPK_HOSTED=0 -Iinclude)
lib_sources=$(find src -name '*.c' -not -path 'src/hosted/*' | sort)

# configure IMAGE: the toolchain, flags, port files and board of an image.
configure() {
    defines=() sysinclude=()
    case $1 in
        cortex-m3*) arch=(-mcpu=cortex-m3 -mthumb) board=(qemu-system-arm -M mps2-an385) ;;
        cortex-m4f) arch=(-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16)
                    board=(qemu-system-arm -M mps2-an386) ;;
        rv32imac)   arch=(-march=rv32imac -mabi=ilp32)
                    board=(qemu-system-riscv32 -machine virt -bios none) ;;
    esac
    [ "$1" = cortex-m3-debug ] && defines=(-DPK_DEBUG=1)
    if [ "$1" = rv32imac ]; then
        tool=riscv64-unknown-elf port=port/riscv script=virt.ld
        port_sources=(start.S trap.c semihosting.c libc/string.c)
        sysinclude=(-isystem port/riscv/libc) # the toolchain has no C library
        libs=(-lgcc)
        board+=(-nographic -monitor none -semihosting)
    else
        tool=arm-none-eabi port=port/cortex-m script=mps2-an385.ld
        port_sources=(startup.c semihosting.c primask_lock.c)
        libs=(-lc_nano -lgcc) # memcpy, memset, strcmp; newlib's malloc is not reached
        board+=(-nographic -monitor none -semihosting-config enable=on,target=native)
    fi
}

# compile SOURCE OBJECT FLAGS...: in the background, two at a time (the
# machine is shared); a failure leaves OBJECT.failed.
compile() {
    local src=$1 obj=$2
    shift 2
    while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n; done
    { "$tool-gcc" "$@" -c "$src" -o "$obj" >"$obj.log" 2>&1 || touch "$obj.failed"; } &
}

