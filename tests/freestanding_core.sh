#!/usr/bin/env bash
# The core is freestanding: compiled with -ffreestanding and PK_HOSTED=0 (no
# src/hosted/), with the library's strict warnings, its objects may call
# nothing outside themselves but memcpy and memset; the debug build (PK_DEBUG=1)
# also memcmp (its fill checks).
# usage: freestanding_core.sh CC SOURCE_DIR
set -eu
cc=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sources=$(find "$src/src" -name '*.c' -not -path '*/hosted/*' | sort)
for debug in 0 1; do
    allowed='memcpy|memset'
    [ "$debug" = 1 ] && allowed='memcpy|memset|memcmp'
    rm -f "$tmp"/*.o
    for file in $sources; do
        "$cc" -std=c11 -ffreestanding -DPK_HOSTED=0 -DPK_DEBUG=$debug -DPK_BUILDING_LIBRARY -O2 \
            -Wall -Wextra -Werror -pedantic -Wconversion -Wshadow \
            -I"$src/include" -I"$src/src" -c "$file" -o "$tmp/$(basename "$file" .c).o"
    done
    ld -r -o "$tmp/core.o" "$tmp"/*.o
    undefined=$(nm -u "$tmp/core.o" | awk '{print $2}' | grep -vxE "$allowed" || true)
    if [ -n "$undefined" ]; then
        echo "freestanding_core: the core (PK_DEBUG=$debug) calls outside itself: $undefined" >&2
        exit 1
    fi
    echo "freestanding_core: PK_DEBUG=$debug: $(echo "$sources" | wc -l) sources, no external calls but ${allowed//|/, }"
done
