# shortv — build/shortv, the runtime library and the test suite.
#   make            build/shortv and build/tiny-model
#   make test       the whole suite (SANITIZE=1: ASan + UBSan build in build-san/)
#   make demo       calibration, plots and the freeze study on the bundled model

CC      ?= cc
SANITIZE ?= 0
FUZZ    ?= 0
BUILD   := $(if $(filter 1,$(FUZZ)),build-fuzz,$(if $(filter 1,$(SANITIZE)),build-san,build))

PKGS    := hdf5 libcjson libpng libjpeg
CFLAGS  ?= -O2 -g
# Vectorising the hot loops (runtime/simd.h): GCC's -O2 cost model refuses any loop
# that needs a scalar epilogue, and trapping math forbids if-converting the clamps.
# Neither changes a result: no reassociation, and ISO C mode never fuses a*b+c.
CLANG   := $(shell $(CC) --version 2>/dev/null | grep -ci clang)
CFLAGS  += $(if $(filter 0,$(CLANG)),-fvect-cost-model=dynamic) -fno-trapping-math -fno-math-errno
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread \
           -I/usr/include/hdf5/serial -I/usr/include/x86_64-linux-gnu/openblas-pthread \
           -Iruntime -Ianalyze -Idatasets
LDLIBS  := -lopenblas -lcjson -lpng -ljpeg -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5 -lm -pthread
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
# make fuzz: clang's libFuzzer with ASan + UBSan (FUZZ=1 builds into build-fuzz/)
ifeq ($(FUZZ),1)
CC      := clang
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

$(BUILD)/obj/%.o: %.c $(wildcard runtime/*.h analyze/*.h datasets/*.h tests/*.h)
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
	@$(CC) $(LDFLAGS) $^ $(LDLIBS) -lcmocka -o $@

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

.PHONY: all test clean demo bench fuzz models deps
.SECONDARY:
