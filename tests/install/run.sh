#!/usr/bin/env bash
# Install/consumer test: installs a poolkit build into a scratch prefix and
# proves that a user can build against what was installed:
#   1. cmake --install BUILD_DIR --prefix <scratch>
#   2. the installed layout: every public header, the CMake package, poolkit.pc,
#      libpoolkit.a and libpoolkit.so with its SONAME (libpoolkit.so.<major>, or .so.0.<minor> before 1.0);
#      each installed header compiles on its own as C11 and as C++
#   3. tests/install/consumer/ with find_package(poolkit): one executable on
#      poolkit::poolkit (shared), one on poolkit::poolkit_static; both run
#   4. the same source with plain `cc $(pkg-config --cflags --libs poolkit)`
#   5. the same source compiled and linked as C++ (g++ -x c++), if there is one
# Ends with "install test: OK", or lists the problems and exits 1.
#
# Usage: tests/install/run.sh SOURCE_DIR BUILD_DIR
# Uses the compiler and C flags of BUILD_DIR's cache (CMAKE_C_COMPILER,
# CMAKE_C_FLAGS, POOLKIT_SANITIZE, POOLKIT_DEBUG); CXX overrides the C++ compiler.
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 SOURCE_DIR BUILD_DIR" >&2
    exit 2
fi
die() {
    echo "install test: FAILED: $*" >&2
    exit 1
}
[ -f "$1/include/poolkit/version.h" ] || die "$1 is not the poolkit source tree (no include/poolkit/version.h)"
[ -f "$2/CMakeCache.txt" ] || die "$2 is not a configured build directory (no CMakeCache.txt)"
SOURCE_DIR=$(cd "$1" && pwd)
BUILD_DIR=$(cd "$2" && pwd)
CONSUMER_DIR="$SOURCE_DIR/tests/install/consumer"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/poolkit-install.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$WORK"' EXIT
PREFIX="$WORK/prefix"

PROBLEMS=()
problem() {
    echo "  PROBLEM: $*" >&2
    PROBLEMS+=("$*")
}
step() { printf '\n== %s\n' "$*"; }
# Prints a command, runs it, and prints its output cut to 40 lines (a broken
# header can make a compiler print thousands). Returns the command's status.
run() {
    local status lines
    printf '$ %s\n' "$*"
    "$@" >"$WORK/output" 2>&1
    status=$?
    head -n 40 "$WORK/output"
    lines=$(wc -l <"$WORK/output")
    [ "$lines" -le 40 ] || echo "... ($((lines - 40)) more lines)"
    return $status
}
cache_get() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD_DIR/CMakeCache.txt" | head -n 1; }
is_on() { case "$1" in ON | on | On | TRUE | true | YES | yes | 1 | Y | y) return 0 ;; *) return 1 ;; esac; }

# What the build says about itself.
VERSION=$(sed -n 's/^#define PK_VERSION_STRING "\(.*\)"/\1/p' "$SOURCE_DIR/include/poolkit/version.h")
MAJOR=$(sed -n 's/^#define PK_VERSION_MAJOR \([0-9]*\).*/\1/p' "$SOURCE_DIR/include/poolkit/version.h")
MINOR=$(sed -n 's/^#define PK_VERSION_MINOR \([0-9]*\).*/\1/p' "$SOURCE_DIR/include/poolkit/version.h")
# The SONAME's version: the major, or major.minor while the major is 0 (the
# layout of pk_pool is compiled into users by PK_POOL_DEFINE).
ABI=$MAJOR
[ "$MAJOR" = 0 ] && ABI=$MAJOR.$MINOR
if [ -z "$VERSION" ] || [ -z "$MAJOR" ]; then
    die "cannot read the version from include/poolkit/version.h"
fi
CC_BUILD=$(cache_get CMAKE_C_COMPILER)
CC=${CC_BUILD:-${CC:-cc}}
read -r -a EXTRA_FLAGS <<<"$(cache_get CMAKE_C_FLAGS)"
SANITIZE=$(cache_get POOLKIT_SANITIZE)
if [ -n "$SANITIZE" ]; then
    # A sanitized library needs the sanitizer runtime in its consumers too.
    EXTRA_FLAGS+=("-fsanitize=$SANITIZE")
fi
SHARED=yes
is_on "$(cache_get POOLKIT_SHARED)" || SHARED=no
DEBUG_FLAGS=()
is_on "$(cache_get POOLKIT_DEBUG)" && DEBUG_FLAGS=(-DPK_DEBUG=1)
WARN=(-Wall -Wextra -Werror -pedantic)
CXX_BIN=${CXX:-}
if [ -z "$CXX_BIN" ]; then
    for c in g++ clang++ c++; do
        if command -v "$c" >/dev/null 2>&1; then
            CXX_BIN=$c
            break
        fi
    done
fi
echo "poolkit $VERSION: source $SOURCE_DIR, build $BUILD_DIR"
echo "C compiler $CC, extra flags '${EXTRA_FLAGS[*]:-}', shared library: $SHARED, scratch $WORK"

step "1. install into a scratch prefix"
run cmake --install "$BUILD_DIR" --prefix "$PREFIX" || die "cmake --install failed"

step "2. installed layout"
STATIC_LIB=$(find "$PREFIX" -name libpoolkit.a | head -n 1)
[ -n "$STATIC_LIB" ] || die "no libpoolkit.a installed under $PREFIX"
LIBDIR=$(dirname "$STATIC_LIB")
INCDIR="$PREFIX/include"
echo "libdir: ${LIBDIR#"$PREFIX"/}, includedir: include"
for h in "$SOURCE_DIR"/include/poolkit/*.h; do
    name=$(basename "$h")
    if [ ! -f "$INCDIR/poolkit/$name" ]; then
        problem "header poolkit/$name is not installed in $INCDIR/poolkit"
    elif ! cmp -s "$h" "$INCDIR/poolkit/$name"; then
        problem "installed poolkit/$name differs from the source"
    fi
done
for f in poolkitConfig.cmake poolkitConfigVersion.cmake poolkitTargets.cmake; do
    [ -f "$LIBDIR/cmake/poolkit/$f" ] || problem "$LIBDIR/cmake/poolkit/$f is not installed"
done
PC_FILE="$LIBDIR/pkgconfig/poolkit.pc"
[ -f "$PC_FILE" ] || problem "poolkit.pc is not installed in $LIBDIR/pkgconfig"
if [ "$SHARED" = yes ]; then
    SO="$LIBDIR/libpoolkit.so"
    if [ ! -e "$SO" ]; then
        problem "libpoolkit.so is not installed in $LIBDIR"
    else
        soname=$(readelf -d "$SO" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
        echo "SONAME of libpoolkit.so: ${soname:-none}"
        [ "$soname" = "libpoolkit.so.$ABI" ] || problem "libpoolkit.so has SONAME '${soname:-none}', expected libpoolkit.so.$ABI"
        [ -e "$LIBDIR/libpoolkit.so.$ABI" ] || problem "no libpoolkit.so.$ABI link in $LIBDIR (the SONAME must resolve)"
        [ -e "$LIBDIR/libpoolkit.so.$VERSION" ] || problem "no libpoolkit.so.$VERSION in $LIBDIR"
    fi
fi

step "2b. each installed header compiles on its own (C11, and C++ if there is a C++ compiler)"
for h in "$INCDIR"/poolkit/*.h; do
    name=poolkit/$(basename "$h")
    # (The declaration keeps a header of macros only from being an empty unit.)
    printf '#include <%s>\nint pk_install_test_unit;\n' "$name" >"$WORK/one_header.c"
    ok=yes
    if ! "$CC" -std=c11 "${WARN[@]}" "${DEBUG_FLAGS[@]}" -I"$INCDIR" -fsyntax-only "$WORK/one_header.c" \
        >"$WORK/output" 2>&1; then
        head -n 20 "$WORK/output"
        problem "<$name> does not compile alone as C11 with ${WARN[*]}"
        ok=no
    fi
    if [ -n "$CXX_BIN" ] && ! "$CXX_BIN" -x c++ -std=c++11 "${WARN[@]}" "${DEBUG_FLAGS[@]}" -I"$INCDIR" \
        -fsyntax-only "$WORK/one_header.c" >"$WORK/output" 2>&1; then
        head -n 20 "$WORK/output"
        problem "<$name> does not compile alone as C++11 with ${WARN[*]}"
        ok=no
    fi
    [ $ok = yes ] && echo "ok: <$name>"
done
if [ ! -f "$INCDIR/poolkit/poolkit.h" ]; then
    echo "note: no umbrella header poolkit/poolkit.h yet (SPEC asks for one)"
fi

# Where a binary loads libpoolkit.so from (with LD_LIBRARY_PATH=$2); it must
# be the installed one.
check_loads_installed() {
    local exe=$1 libpath=${2:-} line
    line=$(env LD_LIBRARY_PATH="$libpath" ldd "$exe" | grep 'libpoolkit\.so')
    echo "$(basename "$exe"): ${line:-does not load libpoolkit.so}"
    case "$line" in
    *"libpoolkit.so.$ABI => $LIBDIR/"*) ;;
    *) problem "$(basename "$exe") does not load libpoolkit.so.$ABI from $LIBDIR: '${line}'" ;;
    esac
}

step "3. CMake consumer: find_package(poolkit) with CMAKE_PREFIX_PATH=<prefix>"
CBUILD="$WORK/consumer-build"
if run cmake -S "$CONSUMER_DIR" -B "$CBUILD" \
    -DCMAKE_PREFIX_PATH="$PREFIX" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF \
    -DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="${EXTRA_FLAGS[*]:-}" \
    -DPK_EXPECTED_VERSION="$VERSION" &&
    run cmake --build "$CBUILD"; then
    found=$(sed -n 's/^poolkit_DIR:[A-Z]*=//p' "$CBUILD/CMakeCache.txt")
    case "$found" in
    "$PREFIX"/*) ;;
    *) problem "find_package(poolkit) found '$found', not the scratch install" ;;
    esac
    for exe in consumer_shared consumer_static; do
        run env -u LD_LIBRARY_PATH "$CBUILD/$exe" || problem "$exe (CMake, poolkit::${exe#consumer_}) failed"
    done
    if [ "$SHARED" = yes ]; then
        check_loads_installed "$CBUILD/consumer_shared"
    fi
    if readelf -d "$CBUILD/consumer_static" | grep -q 'NEEDED.*libpoolkit'; then
        problem "consumer_static, linked with poolkit::poolkit_static, needs libpoolkit.so"
    fi
else
    problem "the CMake consumer did not configure or build against the installed package"
fi

step "4. pkg-config consumer: cc \$(pkg-config --cflags --libs poolkit)"
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig"
echo "PKG_CONFIG_PATH=$PKG_CONFIG_PATH"
PC_OK=no
if ! command -v pkg-config >/dev/null 2>&1; then
    problem "pkg-config is not installed"
elif ! pkg-config --exists poolkit; then
    problem "pkg-config finds no package poolkit with PKG_CONFIG_PATH=$PKG_CONFIG_PATH"
else
    modversion=$(pkg-config --modversion poolkit)
    PC_CFLAGS=$(pkg-config --cflags poolkit)
    PC_LIBS=$(pkg-config --libs poolkit)
    echo "version: $modversion; cflags: $PC_CFLAGS; libs: $PC_LIBS"
    [ "$modversion" = "$VERSION" ] || problem "poolkit.pc says version '$modversion', expected $VERSION"
    # The flags must lead into the prefix the package was installed in, not
    # into the one the build was configured with (cmake --install --prefix).
    pc_inc=$(pkg-config --variable=includedir poolkit)
    pc_lib=$(pkg-config --variable=libdir poolkit)
    if [ "$(realpath -m "$pc_inc")" != "$(realpath -m "$INCDIR")" ] ||
        [ "$(realpath -m "$pc_lib")" != "$(realpath -m "$LIBDIR")" ]; then
        problem "poolkit.pc points at includedir '$pc_inc' and libdir '$pc_lib', not at the install prefix $PREFIX" \
            "(prefix=$(pkg-config --variable=prefix poolkit) is fixed at configure time, so 'cmake --install --prefix' and relocated installs get a wrong .pc)"
    else
        PC_OK=yes
    fi
fi
if [ "$PC_OK" = yes ]; then
    # shellcheck disable=SC2086 # the pkg-config output is a list of flags
    if run "$CC" -std=c11 "${WARN[@]}" "${EXTRA_FLAGS[@]}" -DPK_EXPECTED_VERSION="\"$VERSION\"" \
        "$CONSUMER_DIR/consumer.c" -o "$WORK/consumer_pc" $PC_CFLAGS $PC_LIBS; then
        run env LD_LIBRARY_PATH="$LIBDIR" "$WORK/consumer_pc" || problem "consumer_pc (pkg-config) failed"
        if [ "$SHARED" = yes ]; then
            check_loads_installed "$WORK/consumer_pc" "$LIBDIR"
        fi
    else
        problem "the consumer does not build with pkg-config's flags"
    fi
    # The static library through pkg-config --static (Libs.private added).
    static_libs=()
    for flag in $(pkg-config --static --libs poolkit); do
        if [ "$flag" = -lpoolkit ]; then
            static_libs+=("-Wl,-Bstatic" -lpoolkit "-Wl,-Bdynamic")
        else
            static_libs+=("$flag")
        fi
    done
    # shellcheck disable=SC2086
    if run "$CC" -std=c11 "${WARN[@]}" "${EXTRA_FLAGS[@]}" -DPK_EXPECTED_VERSION="\"$VERSION\"" \
        "$CONSUMER_DIR/consumer.c" -o "$WORK/consumer_pc_static" $PC_CFLAGS "${static_libs[@]}"; then
        run env -u LD_LIBRARY_PATH "$WORK/consumer_pc_static" || problem "consumer_pc_static (pkg-config --static) failed"
    else
        problem "the consumer does not link statically with pkg-config --static's flags"
    fi
else
    echo "skipped: the pkg-config builds need a correct poolkit.pc"
fi

step "5. the consumer as C++ (headers are C++-clean, extern \"C\" links)"
if [ -z "$CXX_BIN" ]; then
    echo "skipped: no C++ compiler (g++, clang++, c++) found"
else
    # Explicit paths rather than pkg-config's, so this step does not depend on
    # step 4; pkg-config's non-path flags (e.g. -DPK_DEBUG=1) are kept.
    other=""
    [ "$PC_OK" = yes ] && other=$(pkg-config --cflags-only-other poolkit)
    # shellcheck disable=SC2086
    if run "$CXX_BIN" -x c++ -std=c++11 "${WARN[@]}" "${EXTRA_FLAGS[@]}" "${DEBUG_FLAGS[@]}" $other \
        -DPK_EXPECTED_VERSION="\"$VERSION\"" -I"$INCDIR" "$CONSUMER_DIR/consumer.c" \
        -x none -o "$WORK/consumer_cxx" -L"$LIBDIR" -Wl,-rpath,"$LIBDIR" -lpoolkit -pthread; then
        run env -u LD_LIBRARY_PATH "$WORK/consumer_cxx" || problem "consumer_cxx (C++) failed"
    else
        problem "the consumer does not compile or link as C++ ($CXX_BIN)"
    fi
fi

echo
if [ ${#PROBLEMS[@]} -ne 0 ]; then
    echo "install test: FAILED (${#PROBLEMS[@]} problem(s)):" >&2
    for p in "${PROBLEMS[@]}"; do
        echo "  - $p" >&2
    done
    exit 1
fi
echo "install test: OK"
