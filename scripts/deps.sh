#!/usr/bin/env bash
# deps.sh [group...]: make sure the Debian packages poolkit needs are installed.
# Groups: build (default; gnuplot draws the report pages' plots), test (build +
# valgrind, cmocka, the Arm cross compiler, binutils and newlib headers for the
# Cortex-M tests, QEMU's Arm and RISC-V system emulators and the RISC-V cross
# compiler for the bare-metal images of scripts/cortex_m.sh, chromium and
# python3 for the report's end-to-end test, clang's libFuzzer runtime for
# scripts/fuzz.sh, gcovr for the coverage stage), bench
# (build + valgrind, and jemalloc, mimalloc and tcmalloc for `poolkit bench`,
# which test also installs for the bench smoke test; the Arm cross compiler,
# newlib and QEMU's Arm emulator for scripts/cortex_m_bench.sh).
# As root, installs what is missing and says so in one line; otherwise prints
# the sudo command to run and exits 1. Prints nothing when all is there.
set -eu

build="cmake make gcc g++ clang pkg-config libc6-dev gnuplot-nox"
wanted=""
for group in "${@:-build}"; do
  case $group in
    build) wanted+=" $build" ;;
    test)  wanted+=" $build valgrind libcmocka-dev gcc-arm-none-eabi binutils-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm gcc-riscv64-unknown-elf qemu-system-misc chromium python3 libclang-rt-14-dev libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 gcovr" ;;
    bench) wanted+=" $build valgrind libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 gcc-arm-none-eabi binutils-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm" ;;
    *) echo "deps.sh: unknown group '$group' (build, test, bench)" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in $wanted; do
  [[ " ${missing[*]-} " == *" $pkg "* ]] && continue
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

install=(apt-get install -y --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing Debian packages; run:" >&2
  echo "  sudo ${install[*]}" >&2
  exit 1
fi

echo "deps.sh: installing ${missing[*]} (missing)"
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when there are none or the install fails.
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || ! "${install[@]}"; then
  apt-get update
  "${install[@]}"
fi
