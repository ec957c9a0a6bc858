# Makefile for cm: library (build/libcm.a), CLI (build/cm), tests (build/cm_tests).
#   make            build the library and the CLI
#   make test       build and run every test (unit, CLI, end-to-end); see scripts/test
#   make sanitize   the unit tests under AddressSanitizer + UndefinedBehaviorSanitizer
# Dependencies are Debian packages; scripts/deps installs the missing ones.

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
PKGS    := openblas libcjson plplot libpng zlib
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -Wall -Wextra -Wshadow -Wno-unused-parameter -D_POSIX_C_SOURCE=200809L \
           -Iinclude $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lm -lpthread

LIB_SRC   := $(wildcard src/*.c)
TOOL_SRC  := $(wildcard tools/cm/*.c)
TEST_SRC  := $(wildcard tests/test_*.c) tests/main.c tests/harness.c
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOL_OBJ  := $(TOOL_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ  := $(TEST_SRC:%.c=$(BUILD)/%.o)
SUITES    := $(patsubst tests/test_%.c,%,$(wildcard tests/test_*.c))

.PHONY: all test unit sanitize sanitize-build clean demo
all: $(BUILD)/cm

$(BUILD)/%.o: %.c $(wildcard include/cm/*.h src/*.h tests/*.h tools/cm/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -c $< -o $@

$(BUILD)/libcm.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/cm: $(TOOL_OBJ) $(BUILD)/libcm.a
	$(CC) $(CFLAGS) -o $@ $(TOOL_OBJ) $(BUILD)/libcm.a $(LDLIBS)

$(BUILD)/suites.h: $(wildcard tests/test_*.c)
	@mkdir -p $(BUILD)
	@printf '$(foreach s,$(SUITES),CM_SUITE($(s))\n)' | sed 's/^ //' > $@

$(BUILD)/tests/main.o: tests/main.c $(BUILD)/suites.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(BUILD) -c $< -o $@

$(BUILD)/cm_tests: $(TEST_OBJ) $(BUILD)/libcm.a
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/libcm.a $(LDLIBS)

unit: $(BUILD)/cm_tests
	$(BUILD)/cm_tests

test:
	scripts/test

SAN_FLAGS := BUILD=build-san CC=clang OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
sanitize-build:
	$(MAKE) $(SAN_FLAGS) build-san/cm_tests

sanitize: sanitize-build
	CM_FAST=1 LSAN_OPTIONS=suppressions=tests/lsan.supp build-san/cm_tests

clean:
	rm -rf build build-san
