# sgxdevplugin - the two commands of the README's quick start, and their parts.
#   make demo   installs what is missing, builds, runs the daemon against a simulated SGX node
#   make check  installs what is missing, builds, runs every test (plain, then ASan+UBSan)
PY      := /usr/bin/python3
BUILD   := build
ASAN    := build-asan
PYTEST  := $(PY) -m pytest -q -p no:cacheprovider

.PHONY: all deps build build-asan demo check unit integration check-asan clean

all: build

deps:
	@sh tools/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD)

$(ASAN)/build.ninja:
	meson setup $(ASAN) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-asan: deps $(ASAN)/build.ninja
	ninja -C $(ASAN)

demo: build
	$(PY) tests/demo.py $(BUILD)/sgxdevplugin

unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs

integration: build
	SGXDEVPLUGIN=$(BUILD)/sgxdevplugin $(PYTEST) tests/integration

check-asan: build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(ASAN) --suite unit --print-errorlogs
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		SGXDEVPLUGIN=$(ASAN)/sgxdevplugin SGXDEVPLUGIN_SANITIZED=1 $(PYTEST) tests/integration

check: unit integration check-asan

clean:
	rm -rf $(BUILD) $(ASAN)
