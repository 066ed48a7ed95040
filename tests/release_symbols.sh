#!/usr/bin/env bash
# Release objects hold no debug code. `nm` lists every symbol (defined or
# referenced) of a library; the debug layer's are those matching DEBUG_SYMBOLS
# below: the hooks of src/debug/ (pk__debug_*), the allocators' debug cores
# (pk__X_debug_*, X_debug_alloc/free), debug.c's own state (call site, owner,
# sequence number, tag hash), the leak report's grouping (src/hosted/), and the
# debug build's ABI guard symbol.
#  1. The library under test (the build's libpoolkit.a): none of them in a
#     release build; in a debug build, every name of MUST_HAVE.
#  2. So that the check can fail: every library source compiled here both
#     ways (-O2) into two archives; the debug one must hold every name of
#     MUST_HAVE (and each must match DEBUG_SYMBOLS), the release one none.
# usage: release_symbols.sh CC SOURCE_DIR LIBRARY LIBRARY_IS_DEBUG(0|1) [EXTRA_FLAGS]
set -eu
cc=$1 src=$2 lib=$3 debug=$4 extra=${5:-}
nm=${NM:-nm}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

DEBUG_SYMBOLS='^(pk__debug_.*|pk__[a-z_]+_debug_.*|[a-z_]+_debug_(alloc|free)|pk_abi_debug_build|site_file|site_line|thread_owner|owner_source|last_seq|tag_hash(\..*)?|check_list(\..*)?|guards_intact(\..*)?|same_site(\..*)?|sort_rows(\..*)?)$'
MUST_HAVE='pk__debug_take_site pk__debug_setup pk__debug_inspect pk__debug_retire pk__debug_evict
pk__debug_check pk__debug_walk pk__debug_report pk__pool_debug_alloc pk__pool_debug_free
site_file site_line thread_owner owner_source last_seq pk_abi_debug_build'

symbols() { # archive -> its symbol names, one per line
    "$nm" "$1" 2>/dev/null | awk 'NF >= 2 {print $NF}' | sort -u
}

# expect_none NAME ARCHIVE
expect_none() {
    local found
    found=$(symbols "$2" | grep -E "$DEBUG_SYMBOLS" || true)
    if [ -n "$found" ]; then
        echo "release_symbols: $1 holds debug symbols:" $found >&2
        exit 1
    fi
}

# expect_all NAME ARCHIVE
expect_all() {
    symbols "$2" >"$tmp/syms"
    for name in $MUST_HAVE; do
        grep -qxE "$DEBUG_SYMBOLS" <<<"$name" || { echo "release_symbols: $name escapes the pattern" >&2; exit 1; }
        grep -qx "$name" "$tmp/syms" || { echo "release_symbols: $1 lacks $name" >&2; exit 1; }
    done
}

# 1. The build's library.
if [ "$debug" = 1 ]; then
    expect_all "the debug library $lib" "$lib"
else
    expect_none "the release library $lib" "$lib"
fi

# 2. Both ways, here.
sources=$(find "$src/src" -name '*.c' | sort)
for mode in 0 1; do
    mkdir -p "$tmp/$mode"
    for file in $sources; do
        object="$tmp/$mode/$(basename "$(dirname "$file")")_$(basename "$file" .c).o"
        # shellcheck disable=SC2086 # extra flags are words
        "$cc" $extra -std=c11 -O2 -DPK_DEBUG=$mode -DPK_BUILDING_LIBRARY -I"$src/include" -I"$src/src" \
            -c "$file" -o "$object"
    done
    ar rcs "$tmp/libpoolkit$mode.a" "$tmp/$mode"/*.o
done
expect_all "a debug build of the sources" "$tmp/libpoolkit1.a"
expect_none "a release build of the sources" "$tmp/libpoolkit0.a"

count=$(symbols "$tmp/libpoolkit1.a" | grep -cE "$DEBUG_SYMBOLS")
echo "release_symbols: no debug symbol in release objects ($count in the debug ones, $(wc -w <<<"$MUST_HAVE") checked by name)"
