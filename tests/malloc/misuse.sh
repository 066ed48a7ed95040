#!/usr/bin/env bash
# misuse.sh BUILD_DIR: runs tests/malloc/misuse.c's program (BUILD_DIR/tests/
# malloc_misuse) preloaded with BUILD_DIR/libpoolkit-malloc.so and its debug
# twin, one misuse at a time, and checks that each misuse the build detects
# is reported on stderr as poolkit's fault line says it, that the program
# went on ("continued"), and that POOLKIT_MALLOC_CHECK=1 then finds the heaps
# whole. The release build detects double and interior frees (the pools'
# usage map, the heap's block headers); the debug build also overflows and
# writes after free. Ends with "N passed, N failed".
set -u
build=${1:?usage: misuse.sh BUILD_DIR}
program=$build/tests/malloc_misuse
passed=0 failed=0

# expect LIB MISUSE PATTERN: the run's stderr must match PATTERN (grep -E).
expect() {
  local lib=$1 misuse=$2 pattern=$3 out err
  out=$(LD_PRELOAD=$build/$lib POOLKIT_MALLOC_CHECK=1 "$program" "$misuse" 2>/tmp/pk_misuse.$$)
  err=$(cat /tmp/pk_misuse.$$)
  rm -f /tmp/pk_misuse.$$
  if [ "$out" = continued ] && grep -qE "$pattern" <<<"$err" &&
     grep -q "poolkit-malloc check.*: ok" <<<"$err"; then
    passed=$((passed + 1))
    echo "ok      $lib $misuse"
  else
    failed=$((failed + 1))
    echo "FAILED  $lib $misuse: wanted /$pattern/, the heaps checked ok and \"continued\"; got:"
    echo "$out"
    echo "$err"
  fi
}

for lib in libpoolkit-malloc.so libpoolkit-malloc-debug.so; do
  expect $lib double_free_small 'poolkit: malloc small: double free at 0x'
  expect $lib double_free_medium 'poolkit: malloc medium: double free at 0x'
  expect $lib interior_free_small 'poolkit: malloc small: pointer is not a block start at 0x'
  expect $lib interior_free_medium 'poolkit: malloc medium: (pointer is not a block start|pointer misaligned)'
  # The chunk's last block: the chunk is empty, the map still knows it.
  expect $lib double_free_last_block 'poolkit: malloc: double free at 0x'
done
expect libpoolkit-malloc-debug.so overflow_small 'poolkit: malloc small: guard bytes overwritten at 0x'
expect libpoolkit-malloc-debug.so overflow_medium 'poolkit: malloc medium: guard bytes overwritten at 0x'
expect libpoolkit-malloc-debug.so write_after_free_medium 'poolkit: malloc medium: write after free at 0x'
expect libpoolkit-malloc-debug.so write_after_free_small 'poolkit: malloc small: write after free at 0x'
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
