#!/usr/bin/env bash
# The link-time guard: an object built with the other PK_DEBUG setting than the
# library must fail to link, naming the guard symbol; the same object built
# with the library's setting must link.
# usage: abi_guard.sh CC SOURCE_DIR LIBRARY LIBRARY_IS_DEBUG(0|1) [EXTRA_FLAGS]
set -eu
cc=$1 src=$2 lib=$3 debug=$4 extra=${5:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include "poolkit/pool.h"\nint main(void) { pk_pool p; return pk_pool_init(&p, 0, 0, 0, 0) == PK_OK; }\n' >"$tmp/user.c"
other=$((1 - debug))
if "$cc" $extra -DPK_DEBUG="$other" -I"$src/include" "$tmp/user.c" "$lib" -lpthread -o "$tmp/mixed" 2>"$tmp/err"; then
    echo "abi_guard: an object with PK_DEBUG=$other linked against a PK_DEBUG=$debug library" >&2
    exit 1
fi
want=pk_abi_release_build
[ "$other" = 1 ] && want=pk_abi_debug_build
grep -q "$want" "$tmp/err" || { echo "abi_guard: link failed without naming $want:" >&2; cat "$tmp/err" >&2; exit 1; }
"$cc" $extra -DPK_DEBUG="$debug" -I"$src/include" "$tmp/user.c" "$lib" -lpthread -o "$tmp/matched"
echo "abi_guard: mixing PK_DEBUG=$other with a PK_DEBUG=$debug library fails to link, as it must"
