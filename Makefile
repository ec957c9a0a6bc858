# Makefile for cm: library (build/libcm.a), CLI (build/cm), tests (build/cm_tests).
#   make              build the library and the CLI
#   make test         build and run every test (unit, CLI, resume, fuzz replay, sanitizers);
#                     see scripts/test
#   make sanitize     the unit tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz-replay  plain drivers that replay each fuzz target's corpus (BUILD/fuzz/replay_*)
#   make fuzz         libFuzzer targets with ASan + UBSan (clang): build-fuzz/fuzz/fuzz_*;
#                     run one with e.g. build-fuzz/fuzz/fuzz_npy -max_total_time=300
#                     -dict=tests/fuzz/cm.dict /tmp/npy-work tests/fuzz/corpus/npy
#                     (docs/checkpoints.md)
#   make MPI=1        the library and CLI with the MPI communicator (include/cm/comm_mpi.h), in
#                     build-mpi/; `make MPI=1 mpi` adds the MPI test and benchmark programs
#                     (docs/distributed.md)
# Dependencies are Debian packages; scripts/deps installs the missing ones.

CC      ?= cc
# MPI=1: src/dist/comm_mpi.c joins the library, CM_HAVE_MPI is defined and the MPI flags come
# from pkg-config's MPI_PKG (Open MPI's ompi-c; mpich for MPICH; empty with CC=mpicc, whose
# wrapper adds them). The objects go to build-mpi/, never mixed with the default build's. Nothing
# is detected: without MPI=1 the build neither looks for nor uses MPI.
MPI     ?=
ifeq ($(MPI),1)
BUILD   ?= build-mpi
endif
BUILD   ?= build
OPT     ?= -O2
PREFIX  ?= /usr/local
VERSION := $(shell sed -n 's/^#define CM_VERSION "\(.*\)"/\1/p' include/cm/version.h)
SOVERSION := 0
# The library's dependencies (oneDNN has no .pc file: -ldnnl; -lgomp, its OpenMP runtime, because
# src/nn/onednn.c sets the calling thread's OpenMP thread count); PLplot is the CLI's only
# (tools/cm/plot.c).
LIB_PKGS  := openblas libcjson libpng zlib lapacke
TOOL_PKGS := plplot
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -Wall -Wextra -Wshadow -Wno-unused-parameter -D_POSIX_C_SOURCE=200809L \
           -fPIC -Iinclude $(shell pkg-config --cflags $(LIB_PKGS) $(TOOL_PKGS))
LIB_LIBS  := $(shell pkg-config --libs $(LIB_PKGS)) -ldnnl -lgomp -lm -lpthread
MPI_SRC   := src/dist/comm_mpi.c
ifeq ($(MPI),1)
MPI_PKG   ?= ompi-c
CFLAGS    += -DCM_HAVE_MPI=1 $(if $(MPI_PKG),$(shell pkg-config --cflags $(MPI_PKG)))
LIB_LIBS  += $(if $(MPI_PKG),$(shell pkg-config --libs $(MPI_PKG)))
endif
LDLIBS    += $(shell pkg-config --libs $(TOOL_PKGS)) $(LIB_LIBS)

# src/<subsystem>/*.c is the library (docs/architecture.md); tests mirror it in tests/<subsystem>/.
LIB_SRC   := $(filter-out $(MPI_SRC),$(wildcard src/*/*.c)) $(if $(filter 1,$(MPI)),$(MPI_SRC))
TOOL_SRC  := $(wildcard tools/cm/*.c)
TEST_SRC  := $(wildcard tests/*/test_*.c) tests/main.c tests/harness.c
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOL_OBJ  := $(TOOL_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ  := $(TEST_SRC:%.c=$(BUILD)/%.o)
SUITES    := $(sort $(patsubst test_%.c,%,$(notdir $(wildcard tests/*/test_*.c))))
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all test unit sanitize sanitize-build clean demo fuzz fuzz-targets fuzz-replay install \
        shared check-includes
all: $(BUILD)/cm

# Header dependencies come from the compiler (-MMD -MP): the .d files beside the objects.
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -Isrc -c $< -o $@

-include $(LIB_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(TEST_OBJ:.o=.d)

# Tests include tests/test.h and, for the plot tests, the CLI's tools/cm/plot.h.
$(TEST_OBJ): CFLAGS += -Itests -Itools/cm

# optim.c: sqrtf without errno, so that GCC vectorises Adam's update (optim.c never reads errno;
# sqrt is correctly rounded either way: the same bits; docs/performance.md).
$(BUILD)/src/train/optim.o: CFLAGS += -fno-math-errno

$(BUILD)/libcm.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libcm.so.$(VERSION): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libcm.so.$(SOVERSION) -o $@ $^ $(LIB_LIBS)

shared: $(BUILD)/libcm.so.$(VERSION)

$(BUILD)/cm: $(TOOL_OBJ) $(BUILD)/libcm.a
	$(CC) $(CFLAGS) -o $@ $(TOOL_OBJ) $(BUILD)/libcm.a $(LDLIBS)

$(BUILD)/suites.h: $(wildcard tests/*/test_*.c)
	@mkdir -p $(BUILD)
	@printf '$(foreach s,$(SUITES),CM_SUITE($(s))\n)' | sed 's/^ //' > $@

$(BUILD)/tests/main.o: tests/main.c $(BUILD)/suites.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -Isrc -Itests -I$(BUILD) -c $< -o $@

$(BUILD)/cm_tests: $(TEST_OBJ) $(BUILD)/libcm.a $(BUILD)/tools/cm/plot.o
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/tools/cm/plot.o $(BUILD)/libcm.a $(LDLIBS)

# comm_mpi.h (and the MPI package in cm.pc) only with MPI=1: without it the library has no MPI.
PUBLIC_HEADERS := $(filter-out $(if $(filter 1,$(MPI)),,include/cm/comm_mpi.h),$(wildcard include/cm/*.h))
PC_MPI := $(if $(filter 1,$(MPI)),$(MPI_PKG))

# make install PREFIX=DIR: libcm.a, libcm.so.VERSION (soname libcm.so.SOVERSION), the public
# headers and DIR/lib/pkgconfig/cm.pc (pkg-config --cflags --libs cm; --static for libcm.a).
install: $(BUILD)/libcm.a $(BUILD)/libcm.so.$(VERSION) $(BUILD)/cm
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/cm $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(BUILD)/libcm.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libcm.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libcm.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libcm.so.$(SOVERSION)
	ln -sf libcm.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libcm.so
	install -m 644 $(PUBLIC_HEADERS) $(DESTDIR)$(PREFIX)/include/cm/
	install -m 755 $(BUILD)/cm $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@REQUIRES@|$(LIB_PKGS) $(PC_MPI)|' \
	    cm.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/cm.pc

# Which subsystem may include which (docs/architecture.md): scripts/check-includes.
check-includes:
	scripts/check-includes

unit: $(BUILD)/cm_tests
	$(BUILD)/cm_tests

# Plain replay drivers: each fuzz target linked with tests/fuzz/replay.c, built with BUILD's flags.
$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c tests/fuzz/fuzz.h $(BUILD)/libcm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ tests/fuzz/fuzz_$*.c tests/fuzz/replay.c $(BUILD)/libcm.a $(LDLIBS)

fuzz-replay: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/replay_%)

# libFuzzer targets: the library with fuzzer coverage + ASan + UBSan, linked with libFuzzer.
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(BUILD)/libcm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/libcm.a $(LDLIBS)

fuzz-targets: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)

FUZZ_BUILD ?= build-fuzz
fuzz:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" fuzz-targets

test:
	scripts/test

# The sanitizer tier: unit tests, CLI and fuzz replay drivers with ASan + UBSan (+ LSan).
SAN_BUILD ?= build-san
SAN_FLAGS := BUILD=$(SAN_BUILD) CC=clang OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
sanitize-build:
	$(MAKE) $(SAN_FLAGS) $(SAN_BUILD)/cm_tests $(SAN_BUILD)/cm fuzz-replay

sanitize: sanitize-build
	CM_FAST=1 LSAN_OPTIONS=suppressions=tests/lsan.supp $(SAN_BUILD)/cm_tests

clean:
	rm -rf build build-san build-fuzz build-mpi

# MPI programs (MPI=1 only; docs/distributed.md): mpi_train trains a run over the MPI
# communicator and writes its weights and hash, mpi_check checks the communicator against the
# single-process tree (both run by tests/cli_mpi.sh), bench_mpi measures training steps and the
# reduction (run by hand: bench/mpi.c).
.PHONY: mpi
ifeq ($(MPI),1)
mpi: $(BUILD)/cm $(BUILD)/mpi_train $(BUILD)/mpi_check $(BUILD)/bench_mpi

$(BUILD)/mpi_train: tests/dist/mpi_train.c $(BUILD)/libcm.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libcm.a $(LIB_LIBS)

$(BUILD)/mpi_check: tests/dist/mpi_check.c $(BUILD)/libcm.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libcm.a $(LIB_LIBS)

$(BUILD)/bench_mpi: bench/mpi.c bench/bench.h $(BUILD)/libcm.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libcm.a $(LIB_LIBS)
else
mpi:
	@echo "make mpi: the MPI programs need an MPI build: make MPI=1 mpi" >&2; exit 2
endif

# Benchmarks (bench/; not tests; docs/performance.md). `make bench` builds and runs all of them:
# bench_nn (training steps and one-step sampling against the oneDNN and the OpenBLAS sgemm rates
# at their own products, measured in the same run, 1 and 2 threads), bench_ot (exact W1 on one
# core; n = 5000 again with 2 BLAS threads), bench_gemm (OpenBLAS against oneDNN's sgemm and
# matmul primitive; oneDNN's convolutions of a small U-Net against the sgemm rate) and
# bench_unet (the U-Net's forward and backward).
# BENCH_RUNS repetitions per figure (default 5).
.PHONY: bench bench-ot bench-nn bench-gemm bench-unet bench-export
BENCH_RUNS ?= 5
BENCH_WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc
$(BUILD)/bench_ot: bench/ot.c bench/bench.h $(BUILD)/libcm.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libcm.a $(LDLIBS)

# bench_nn: the MLP's private header (src/nn/mlp.h: -Isrc) for its layout and validation.
$(BUILD)/bench_nn: bench/nn.c bench/bench.h bench/sgemm.h bench/allocations.h bench/reference.h \
                   $(BUILD)/libcm.a
	$(CC) $(CFLAGS) -Isrc -o $@ $< $(BUILD)/libcm.a $(LDLIBS) $(BENCH_WRAP)

# bench_gemm: OpenBLAS against oneDNN (dnnl_sgemm, and cm_matmul: a private header of src/nn,
# -Isrc) at the network's shapes, the fused matmul primitive, and oneDNN's convolutions
# (bench/gemm.c).
$(BUILD)/bench_gemm: bench/gemm.c bench/bench.h bench/sgemm.h bench/allocations.h \
                     src/nn/matmul.h $(BUILD)/libcm.a
	$(CC) $(CFLAGS) -Isrc -o $@ $< $(BUILD)/libcm.a $(LDLIBS)

bench-gemm: $(BUILD)/bench_gemm
	$(BUILD)/bench_gemm $(BENCH_RUNS)

# bench_unet: forward and backward of the U-Net on 128 rows of 28x28 (src/nn/unet.h, a private
# header: -Isrc), 1 thread and 2 row blocks on 2 threads, against PyTorch's time (bench/unet.c).
$(BUILD)/bench_unet: bench/unet.c bench/bench.h src/nn/unet.h $(BUILD)/libcm.a
	$(CC) $(CFLAGS) -Isrc -o $@ $< $(BUILD)/libcm.a $(LDLIBS) $(BENCH_WRAP)

bench-unet: $(BUILD)/bench_unet
	$(BUILD)/bench_unet $(BENCH_RUNS)

# bench_export_cm: cm_sample on one thread, beside a model's compiled C export (bench/export.sh:
# make bench-export EXPORT_MODEL=runs/moons/model.safetensors; docs/export.md).
$(BUILD)/bench_export_cm: bench/export_cm.c bench/bench.h $(BUILD)/libcm.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libcm.a $(LDLIBS)

EXPORT_MODEL ?= runs/moons/model.safetensors
bench-export: $(BUILD)/bench_export_cm $(BUILD)/cm
	bench/export.sh $(EXPORT_MODEL)

bench-ot: $(BUILD)/bench_ot
	OPENBLAS_NUM_THREADS=1 $(BUILD)/bench_ot $(BENCH_RUNS)

bench-nn: $(BUILD)/bench_nn
	$(BUILD)/bench_nn $(BENCH_RUNS)

bench: $(BUILD)/bench_nn $(BUILD)/bench_ot $(BUILD)/bench_gemm $(BUILD)/bench_unet
	$(BUILD)/bench_nn $(BENCH_RUNS)
	OPENBLAS_NUM_THREADS=1 $(BUILD)/bench_ot $(BENCH_RUNS)
	OPENBLAS_NUM_THREADS=2 $(BUILD)/bench_ot $(BENCH_RUNS) 5000
	$(BUILD)/bench_gemm $(BENCH_RUNS)
	$(BUILD)/bench_unet $(BENCH_RUNS)
