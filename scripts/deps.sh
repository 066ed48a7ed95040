#!/usr/bin/env bash
# deps.sh [group...]: make sure the Debian packages poolkit needs are installed.
# Groups: build (default; gnuplot draws the report pages' plots), test (build +
# valgrind, cmocka, the Arm cross compiler, binutils and newlib headers for the
# Cortex-M tests, QEMU's Arm and RISC-V system emulators and the RISC-V cross
# compiler for the bare-metal images of scripts/cortex_m.sh, chromium and
# python3 for the report's end-to-end test, clang's libFuzzer runtime for
# scripts/fuzz.sh, gcovr for the coverage stage, gcc-multilib, g++-multilib
# and cmocka for i386 for the gcc-m32 stages' 32-bit tests), bench
# (build + valgrind, and jemalloc, mimalloc and tcmalloc for `poolkit bench`,
# which test also installs for the bench smoke test; the Arm cross compiler,
# newlib and QEMU's Arm emulator for scripts/cortex_m_bench.sh). test and
# bench also install the real programs tests/malloc/real_programs.sh runs on
# the malloc drop-in (python3, sqlite3, git, xz-utils, pigz, coreutils' sort)
# and time (/usr/bin/time, for their elapsed time and peak RSS, and those of
# scripts/malloc_bench.sh).
# A package named PKG:ARCH is another architecture's (multiarch): when ARCH is
# neither dpkg's native nor a foreign architecture yet, it is added first
# (dpkg --add-architecture ARCH, then apt-get update for its package lists).
# As root, installs what is missing and says so in one line; otherwise prints
# the sudo commands to run and exits 1. Prints nothing when all is there.
set -eu

build="cmake make gcc g++ clang pkg-config libc6-dev gnuplot-nox"
real_programs="python3 sqlite3 git xz-utils pigz coreutils time"
wanted=""
for group in "${@:-build}"; do
  case $group in
    build) wanted+=" $build" ;;
    test)  wanted+=" $build valgrind libcmocka-dev gcc-arm-none-eabi binutils-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm gcc-riscv64-unknown-elf qemu-system-misc chromium python3 libclang-rt-14-dev gcovr gcc-multilib g++-multilib libcmocka-dev:i386 libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 $real_programs" ;;
    bench) wanted+=" $build valgrind libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 gcc-arm-none-eabi binutils-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm $real_programs" ;;
    *) echo "deps.sh: unknown group '$group' (build, test, bench)" >&2; exit 2 ;;
  esac
done

native=$(dpkg --print-architecture)
missing=()
for pkg in $wanted; do
  [[ " ${missing[*]-} " == *" $pkg "* ]] && continue
  # One line per installed architecture of the package: a plain name wants
  # the native one (or an architecture-independent package), PKG:ARCH that one.
  arch=$native
  [[ $pkg == *:* ]] && arch=${pkg##*:}
  dpkg-query -W -f='${Architecture} ${Status}\n' "${pkg%%:*}" 2>/dev/null |
    grep -qxE "($arch|all) install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

# Architectures the missing PKG:ARCH packages need that dpkg does not know yet.
known_archs=" $native $(dpkg --print-foreign-architectures | tr '\n' ' ') "
new_archs=()
for pkg in "${missing[@]}"; do
  [[ $pkg == *:* ]] || continue
  arch=${pkg##*:}
  [[ $known_archs == *" $arch "* || " ${new_archs[*]-} " == *" $arch "* ]] || new_archs+=("$arch")
done

install=(apt-get install -y --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing Debian packages; run:" >&2
  for arch in "${new_archs[@]}"; do echo "  sudo dpkg --add-architecture $arch" >&2; done
  [ ${#new_archs[@]} -gt 0 ] && echo "  sudo apt-get update" >&2
  echo "  sudo ${install[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
for arch in "${new_archs[@]}"; do
  echo "deps.sh: adding the $arch architecture (dpkg --add-architecture $arch) for ${missing[*]}"
  dpkg --add-architecture "$arch"
done
echo "deps.sh: installing ${missing[*]} (missing)"
# Refresh the package lists when there are none, when a new architecture has
# none yet, or when the install fails.
if [ ${#new_archs[@]} -gt 0 ] || ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null ||
   ! "${install[@]}"; then
  apt-get update
  "${install[@]}"
fi
