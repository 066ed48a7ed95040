#!/usr/bin/env bash
# make_seeds.sh: writes the seed corpus fuzz/corpus/<target>/ (committed; run
# again after a change to the input format of fuzz/model.h). Each seed is the
# target's configuration bytes, then operations: opcode, then arguments.
set -eu
cd "$(dirname "$0")"

# Operations (opcode mod 8, model.h): 0 alloc (size hi, lo; align: 2^(b % 13)
# from 0xC0 up, 0xFF not a power of two), 3 free
# (index), 4 realloc (index; size hi, lo), 5 bad free (kind, arg, offset),
# 6 verify, 7 drain. Size hi byte: its value mod 14 is the bit length kept.
ALLOC_SMALL='\x00\x05\x11\x00'   # 17 & 31 = 17 bytes, default alignment
ALLOC_MID='\x00\x0a\xc8\x00'     # 0x0ac8 & 1023 = 712 bytes
ALLOC_ALIGNED='\x00\x07\x40\xc9' # 64 bytes aligned to 2^(0xc9 % 13) = 64
ALLOC_HUGE='\x00\xff\x00\x00'    # SIZE_MAX: must fail
ALLOC_BAD_ALIGN='\x00\x04\x08\xff' # 8 bytes, align 3: PK_ERR_INVALID_ARG
FREE_FIRST='\x03\x00'
REALLOC_GROW='\x04\x00\x0b\x00'  # block 0 to 0x0b00 & 2047 = 768 bytes
BAD_FREES='\x05\x00\x00\x00\x05\x01\x00\x00\x05\x02\x00\x05\x05\x03\x00\x00'
VERIFY='\x06'
DRAIN='\x07'

seeds() { # seeds TARGET CONFIG_BYTES
  local dir=corpus/$1 config=$2
  rm -rf "$dir"
  mkdir -p "$dir"
  printf "$config$ALLOC_SMALL$ALLOC_MID$FREE_FIRST$ALLOC_SMALL$VERIFY$DRAIN" >"$dir/alloc_free"
  printf "$config$ALLOC_SMALL$ALLOC_SMALL$ALLOC_SMALL$ALLOC_SMALL$ALLOC_SMALL$ALLOC_SMALL$ALLOC_SMALL$ALLOC_SMALL$FREE_FIRST$FREE_FIRST$ALLOC_MID$VERIFY$DRAIN" >"$dir/fill_drain"
  printf "$config$ALLOC_SMALL$ALLOC_MID$REALLOC_GROW$REALLOC_GROW$VERIFY$DRAIN" >"$dir/realloc"
  printf "$config$ALLOC_SMALL$ALLOC_MID$FREE_FIRST$BAD_FREES$DRAIN$BAD_FREES" >"$dir/bad_frees"
  printf "$config$ALLOC_ALIGNED$ALLOC_HUGE$ALLOC_BAD_ALIGN$ALLOC_ALIGNED$VERIFY$DRAIN" >"$dir/aligned"
}

seeds pool '\x0b\x07'        # 24-byte blocks aligned to 16, 8 of them
seeds atomic_pool '\x0b\x07'
seeds classes '\x00'         # fall-through on
seeds slab '\x03'            # 48-byte objects, default alignment
seeds buddy '\x00'           # the smallest block size
seeds heap ''                # no configuration
seeds fit '\x01'             # best fit, coalescing
seeds arena '\x00'

# The trace reader's hand-made seeds (tools/trace/FORMAT.md); corpus/trace/
# also holds real_recording, the trace of tests/trace/known_allocs (kept).
TRACE_HEADER='PKTRACE\n\x01\x00\x00\x00\x20\x00\x00\x00\x39\x30\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08'
mkdir -p corpus/trace
printf "$TRACE_HEADER" >corpus/trace/header_only
# Thread 0: malloc(24) -> 0x1000, calloc 300 -> 0x2000, realloc(0x1000, 5000)
# -> 0x7f0000001000, free(0x2000); thread 1: memalign(64, 100) -> 0x3000,
# a failed malloc, free(0x3000).
printf "$TRACE_HEADER"'\xb1\x00\x04\x01\x00\x64\x18\x80\x20\x02\x02\x32\xac\x02\x80\x40\x03\x03\x07\x80\x20\x88\x27\x80\xa0\x80\x80\x80\xf0\x1f\x05\x06\xe8\x07\x80\x40\xb1\x01\x03\x04\x01\x78\x64\x40\x80\x60\x01\x04\x01\x08\x00\x05\x05\x02\x80\x60' >corpus/trace/every_operation
printf "$TRACE_HEADER"'\xb1\x00\x01\x01\x07\x00\x08\x10\xb1\x01\x01\x05\x07\x00\x10' >corpus/trace/seq_twice
printf "$TRACE_HEADER"'\xb1\x00\x01\x05\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x00\x10' >corpus/trace/largest_varint
