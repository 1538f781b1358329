# shortv — build/shortv, the runtime library and the test suite.
#   make            build/shortv and build/tiny-model
#   make test       the whole suite (SANITIZE=1: ASan + UBSan build in build-san/)
#   make demo       calibration, plots and the freeze study on the bundled model

CC      ?= cc
SANITIZE ?= 0
FUZZ    ?= 0
# make fuzz builds with clang (libFuzzer, flags below), known before CLANG is worked out
ifeq ($(FUZZ),1)
CC      := clang
endif
BUILD   := $(if $(filter 1,$(FUZZ)),build-fuzz,$(if $(filter 1,$(SANITIZE)),build-san,build))

# Every library through pkg-config (no architecture's paths written here). HDF5's
# serial build is hdf5-serial on Debian/Ubuntu, hdf5 elsewhere.
PKG_CONFIG ?= pkg-config
HDF5_PC := $(shell $(PKG_CONFIG) --exists hdf5-serial 2>/dev/null && echo hdf5-serial || echo hdf5)
PKGS    := $(HDF5_PC) openblas libcjson libpng libjpeg
TEST_PKGS := cmocka
# the Debian/Ubuntu package that provides each, for the message when one is missing
DEB_hdf5-serial := libhdf5-dev
DEB_hdf5 := libhdf5-dev
DEB_openblas := libopenblas-dev
DEB_libcjson := libcjson-dev
DEB_libpng := libpng-dev
DEB_libjpeg := libjpeg-dev
DEB_cmocka := libcmocka-dev
CFLAGS  ?= -O2 -g
# Vectorising the hot loops (runtime/simd.h): GCC's -O2 cost model refuses any loop
# that needs a scalar epilogue, and trapping math forbids if-converting the clamps.
# Neither changes a result: no reassociation, and ISO C mode never fuses a*b+c.
CLANG   := $(shell $(CC) --version 2>/dev/null | grep -ci clang)
CFLAGS  += $(if $(filter 0,$(CLANG)),-fvect-cost-model=dynamic) -fno-trapping-math -fno-math-errno
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread \
           $(shell $(PKG_CONFIG) --cflags $(PKGS) $(TEST_PKGS) 2>/dev/null) \
           -Iruntime -Ianalyze -Idatasets
LDLIBS  := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lm -pthread
TEST_LDLIBS := $(shell $(PKG_CONFIG) --libs $(TEST_PKGS) 2>/dev/null)
# MPI (OpenMPI's mpicc wrapper) when installed: `mpirun -np K shortv calibrate|eval|study`
# (analyze/world.c). Without it the same commands run in one process and say so
# when started by mpirun.
MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null)
ifneq ($(MPI_CFLAGS),)
CFLAGS  += -DSV_HAVE_MPI $(MPI_CFLAGS)
LDLIBS  += $(shell mpicc --showme:link)
endif
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
# make fuzz: clang's libFuzzer with ASan + UBSan (FUZZ=1 builds into build-fuzz/)
ifeq ($(FUZZ),1)
CFLAGS  += -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
           -fno-omit-frame-pointer
LDFLAGS += -fsanitize=fuzzer,address,undefined
endif

RUNTIME_SRC := $(wildcard runtime/*.c)
ANALYZE_SRC := $(filter-out analyze/main.c,$(wildcard analyze/*.c datasets/*.c))
LIB_OBJ     := $(patsubst %.c,$(BUILD)/obj/%.o,$(RUNTIME_SRC) $(ANALYZE_SRC))
TEST_SRC    := $(wildcard tests/test_*.c)
TEST_BIN    := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))

all: $(BUILD)/shortv $(BUILD)/tiny-model

# A missing library is one line naming its package, before any compiler error:
# $(call require,PC) fails the recipe that way when pkg-config cannot find PC.
require = $(PKG_CONFIG) --exists $(1) || { echo "make: pkg-config cannot find $(1): install $(DEB_$(1)) (Debian/Ubuntu), or add the folder of its $(1).pc to PKG_CONFIG_PATH" >&2; exit 1; };
pkg-check:
	@command -v $(PKG_CONFIG) >/dev/null || { echo "make: $(PKG_CONFIG) not found: install pkg-config (scripts/install-deps.sh installs every dependency)" >&2; exit 1; }
	@$(foreach p,$(PKGS),$(call require,$(p)))

pkg-check-tests: pkg-check
	@$(foreach p,$(TEST_PKGS),$(call require,$(p)))

$(patsubst %.c,$(BUILD)/obj/%.o,$(TEST_SRC) tests/testutil.c): | pkg-check-tests

$(BUILD)/obj/%.o: %.c $(wildcard runtime/*.h analyze/*.h datasets/*.h tests/*.h) | pkg-check
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libshortv.a: $(LIB_OBJ)
	@echo "  AR    $@"
	@rm -f $@ && ar rcs $@ $^

$(BUILD)/shortv: $(BUILD)/obj/analyze/main.o $(BUILD)/libshortv.a
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tiny-model: $(BUILD)/obj/scripts/tiny_model.o $(BUILD)/libshortv.a
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/fuzz: $(BUILD)/obj/scripts/fuzz.o $(BUILD)/libshortv.a
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/bench: $(BUILD)/obj/scripts/bench.o $(BUILD)/libshortv.a
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(BUILD)/obj/tests/testutil.o $(BUILD)/libshortv.a
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) $^ $(LDLIBS) $(TEST_LDLIBS) -o $@

# tiny-a: the golden README's random-weight LLaVA-1.5 model, generated in C
TINY := $(BUILD)/models/tiny-a
$(TINY)/model.safetensors: $(BUILD)/tiny-model
	@echo "  GEN   $(TINY)"
	@$(BUILD)/tiny-model --out $(TINY) >/dev/null

models: $(TINY)/model.safetensors

# Synthetic VQA data of the bundled model (models/synth-llava), in datasets/synth-vqa/:
# the calibration split (40 samples) is committed; `make data` writes the eval split,
# `make data-train` the training split (about 100 MB). Both stay out of git.
SYNTH_DATA := datasets/synth-vqa
$(BUILD)/synth-vqa: $(BUILD)/obj/scripts/synth_vqa.o
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(SYNTH_DATA)/eval.jsonl $(SYNTH_DATA)/train.jsonl: $(SYNTH_DATA)/%.jsonl: $(BUILD)/synth-vqa
	@echo "  GEN   $@"
	@$(BUILD)/synth-vqa --out $(SYNTH_DATA) --split $*

data: $(SYNTH_DATA)/eval.jsonl $(BUILD)/synth-vqa
data-train: $(SYNTH_DATA)/train.jsonl
.PHONY: data data-train

# test and demo check the Debian packages first (installing them if they can).
test: deps
	@$(MAKE) -s --no-print-directory all models data $(TEST_BIN)
	@BUILD=$(BUILD) bash tests/run.sh $(TEST_BIN)

# The demo (scripts/demo.sh): calibration, plots, freeze configs and the freeze study
# on the bundled model, reported in reports/demo/index.html.
demo: deps
	@$(MAKE) --no-print-directory all data
	@BUILD=$(BUILD) bash scripts/demo.sh

deps:
	@bash scripts/install-deps.sh

# Performance ratios measured in one run (not part of the tests).
bench: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench
	@BUILD=$(BUILD) bash scripts/bench.sh

# Every input parser under libFuzzer for FUZZ_SECONDS each (not part of the tests).
fuzz:
	@bash scripts/install-deps.sh --fuzz
	@$(MAKE) --no-print-directory FUZZ=1 build-fuzz/fuzz
	@bash scripts/fuzz.sh

clean:
	rm -rf build build-san build-fuzz $(SYNTH_DATA)/eval* $(SYNTH_DATA)/train* \
	       $(SYNTH_DATA)/images/eval $(SYNTH_DATA)/images/train

.PHONY: all test clean demo bench fuzz models deps pkg-check pkg-check-tests
.SECONDARY:
