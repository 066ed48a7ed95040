# poolkit developer entry points (GNU make). `make` alone lists them.
# Each target first installs missing Debian packages (scripts/deps.sh), then
# configures its own CMake build directory under build/.

NPROC := $(shell nproc 2>/dev/null || echo 2)
# Builds use gcc, set with CC and CXX (read when a build dir is first configured;
# -DCMAKE_C_COMPILER on an existing dir would make CMake drop the other -D's),
# -O2 -g and the library's release mode, pinned so a stale cache can't differ.
RELEASE := -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOOLKIT_DEBUG=OFF -DPOOLKIT_SANITIZE=

.PHONY: help check test test-cortex-m fuzz soak demo malloc bench bench-cortex-m clean

help:
	@echo "poolkit make targets:"
	@echo "  make demo    build build/release and run poolkit demo: malloc vs the pools, page in build/report/"
	@echo "  make check   fast loop: one gcc build (build/check) and its unit tests"
	@echo "  make test    everything CI checks (scripts/test.sh; PK_TEST_STAGES=... for a subset)"
	@echo "  make fuzz    the libFuzzer targets, FUZZ_SECONDS each (default 600; scripts/fuzz.sh, build/fuzz)"
	@echo "  make soak    the randomized driver on every allocator, SOAK_OPS in all (default 10^9; release, then debug: SOAK_DEBUG_OPS)"
	@echo "  make malloc  build/libpoolkit-malloc.so and libpoolkit-malloc-debug.so (the LD_PRELOAD drop-in), build/libpoolkit-trace.so and build/poolkit (links into build/release)"
	@echo "  make test-cortex-m  the bare-metal images on QEMU (Cortex-M3/M4F, RISC-V; scripts/cortex_m.sh)"
	@echo "  make bench   build build/bench (-O2; its debug twin in build/bench-debug) and run scripts/bench.sh"
	@echo "  make bench-cortex-m  code size and instructions per call on Cortex-M3 (scripts/cortex_m_bench.sh; make bench runs it)"
	@echo "  make clean   remove build/"

check:
	scripts/deps.sh test
	CC=gcc CXX=g++ cmake -S . -B build/check $(RELEASE) -DPOOLKIT_TESTS=ON
	cmake --build build/check -j $(NPROC)
	ctest --test-dir build/check --output-on-failure -j2

test:
	scripts/deps.sh test
	scripts/test.sh

# Seconds per fuzz target in `make fuzz` (release and debug builds each).
FUZZ_SECONDS ?= 600

fuzz:
	scripts/deps.sh test
	scripts/fuzz.sh build/fuzz $(FUZZ_SECONDS) $(FUZZ_SECONDS)

# Operations of `make soak` in all, split among the allocators: the release
# build (build/soak) runs SOAK_OPS, then the debug build (build/soak-debug)
# SOAK_DEBUG_OPS (0: skipped), fewer since its checks cost more per call, in
# shorter driver runs so that each allocator still goes through every
# configuration.
SOAK_OPS ?= 1000000000
SOAK_DEBUG_OPS ?= 100000000

soak:
	scripts/deps.sh test
	CC=gcc CXX=g++ cmake -S . -B build/soak $(RELEASE) -DPOOLKIT_TESTS=ON
	cmake --build build/soak -j2 --target soak
	SOAK_OPS=$(SOAK_OPS) build/soak/tests/soak
	if [ "$(SOAK_DEBUG_OPS)" != 0 ]; then \
	  CC=gcc CXX=g++ cmake -S . -B build/soak-debug $(subst -DPOOLKIT_DEBUG=OFF,-DPOOLKIT_DEBUG=ON,$(RELEASE)) -DPOOLKIT_TESTS=ON && \
	  cmake --build build/soak-debug -j2 --target soak && \
	  SOAK_OPS=$(SOAK_DEBUG_OPS) SOAK_RUN_OPS=1000000 build/soak-debug/tests/soak; \
	fi

test-cortex-m:
	scripts/deps.sh test
	scripts/cortex_m.sh

demo: malloc
	build/release/poolkit demo --out build/report

# build/release holds the tools, the drop-in and the tracer; SPEC.md names
# them build/poolkit, build/libpoolkit-malloc.so and build/libpoolkit-trace.so,
# links to them.
malloc:
	scripts/deps.sh build
	CC=gcc CXX=g++ cmake -S . -B build/release $(RELEASE) -DPOOLKIT_TESTS=OFF -DPOOLKIT_TOOLS=ON
	cmake --build build/release -j $(NPROC)
	ln -sf release/poolkit build/poolkit
	ln -sf release/libpoolkit-malloc.so build/libpoolkit-malloc.so
	ln -sf release/libpoolkit-malloc-debug.so build/libpoolkit-malloc-debug.so
	ln -sf release/libpoolkit-trace.so build/libpoolkit-trace.so

bench:
	scripts/deps.sh bench
	CC=gcc CXX=g++ cmake -S . -B build/bench $(RELEASE) -DPOOLKIT_TESTS=OFF -DPOOLKIT_TOOLS=ON
	cmake --build build/bench -j $(NPROC)
	scripts/bench.sh build/bench

bench-cortex-m:
	scripts/deps.sh bench
	scripts/cortex_m_bench.sh

clean:
	rm -rf build
