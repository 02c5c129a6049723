# sgxdevplugin - the two commands of the README's quick start, and their parts.
#   make demo   installs what is missing, builds, runs the daemon against a simulated SGX node
#   make check  installs what is missing, builds, runs every test:
#               unit + integration (dynamic build), the Helm chart under helm 3 and 4,
#               again under ASan+UBSan, the static binary's
#               integration run, the container image under podman, soak and fault tests, the
#               integration suite once under valgrind memcheck, each fuzz target for 30 s
PY      := /usr/bin/python3
BUILD   := build
ASAN    := build-asan
STATIC  := build-static
BENCH   := build-bench
FUZZ_SECONDS ?= 30
PYTEST  := $(PY) -m pytest -q -p no:cacheprovider
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

.PHONY: all deps image-deps bench-deps build build-asan build-static bench-tools demo check unit \
	integration check-asan integration-static image-test smoke smoke-asan soak valgrind fuzz bench \
	chart-test clean

all: build

deps:
	@sh tools/install-deps.sh

image-deps:
	@sh tools/install-deps.sh podman runc

bench-deps:
	@sh tools/install-deps.sh golang-go golang-google-grpc-dev golang-goprotobuf-dev protobuf-compiler

$(BUILD)/build.ninja:
	meson setup $(BUILD)

$(ASAN)/build.ninja:
	meson setup $(ASAN) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

$(STATIC)/build.ninja:
	meson setup $(STATIC) -Dstatic=true

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-asan: deps $(ASAN)/build.ninja
	ninja -C $(ASAN)

build-static: deps $(STATIC)/build.ninja
	ninja -C $(STATIC)

demo: build
	$(PY) tests/demo.py $(BUILD)/sgxdevplugin

unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs

integration: build
	SGXDEVPLUGIN=$(BUILD)/sgxdevplugin $(PYTEST) tests/integration

check-asan: build-asan
	$(SAN_ENV) meson test -C $(ASAN) --suite unit --print-errorlogs
	$(SAN_ENV) SGXDEVPLUGIN=$(ASAN)/sgxdevplugin SGXDEVPLUGIN_SANITIZED=1 \
		$(PYTEST) tests/integration tests/image/test_health.py tests/chart/test_binary.py

integration-static: build-static
	SGXDEVPLUGIN=$(STATIC)/sgxdevplugin $(PYTEST) tests/integration

image-test: build build-static image-deps
	SGXDEVPLUGIN=$(BUILD)/sgxdevplugin SGXDEVPLUGIN_STATIC=$(STATIC)/sgxdevplugin $(PYTEST) tests/image

# the Helm chart under helm 3.18 and 4.1 (npm pack), the admission policy's CEL, plain manifests
chart-test: build
	SGXDEVPLUGIN=$(BUILD)/sgxdevplugin $(PYTEST) tests/chart

# 100,000 Allocates, 200 kubelet restarts, 200 hotplugs; fds and RSS back to baseline; faults
soak: build
	SGXDEVPLUGIN=$(BUILD)/sgxdevplugin $(PYTEST) tests/soak

valgrind: build
	@sh tools/install-deps.sh valgrind
	SGXDEVPLUGIN=$(BUILD)/sgxdevplugin sh tools/valgrind-integration.sh

# every libFuzzer target (ASan+UBSan) for FUZZ_SECONDS each, on a scratch copy of fuzz/corpus
fuzz: deps
	@sh tools/install-deps.sh clang libclang-rt-14-dev
	sh fuzz/run.sh $(FUZZ_SECONDS)

bench-tools: deps bench-deps
	sh bench/build.sh $(BENCH)

# the kubelet's own gRPC stack (grpc-go, blocking dial, :authority localhost) against the plugin
smoke: build bench-tools
	$(BENCH)/loadgen smoke --plugin $(BUILD)/sgxdevplugin

smoke-asan: build-asan bench-tools
	$(SAN_ENV) $(BENCH)/loadgen smoke --plugin $(ASAN)/sgxdevplugin

# benchmarks: not part of check (numbers, not pass/fail); results in BENCHMARKS.md
bench: deps bench-deps
	BUILD=$(BUILD) STATIC_BUILD=$(STATIC) BENCH_OUT=$(BENCH) sh bench/run.sh

check: unit integration chart-test soak smoke check-asan smoke-asan integration-static image-test \
	valgrind fuzz

clean:
	rm -rf $(BUILD) $(ASAN) $(STATIC) $(BENCH) build-fuzz
