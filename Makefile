# Thin wrappers: install dependencies, configure, build, then run/test/bench.
# `make test` and `make run` work on a fresh Debian 12 machine with nothing else done first.
SHELL := /bin/bash
BUILD ?= build
BENCH_BUILD ?= build-bench
JOBS ?= $(shell nproc)
CMAKE_ARGS ?=
# ccache: share hits across checkouts in different directories (CI clones afresh).
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all deps configure build run test bench bench-http test-asan test-tsan sanitize install clean format

all: build

deps:
	@scripts/install-deps

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Debug $(CMAKE_ARGS)

configure: deps $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# The whole system on the embedded SQLite default: demo data into an empty store, an admin token,
# then `autoctl serve` in the foreground (scripts/run-main; RUN_FOR=30s stops it by itself).
run: build
	@scripts/run-main $(BUILD)/cli/autoctl

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

bench: deps
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DAUTOMATION_BUILD_BENCH=ON -DAUTOMATION_BUILD_TESTS=OFF -DAUTOMATION_BUILD_EXAMPLES=OFF -DAUTOMATION_HEADER_CHECK=OFF
	cmake --build $(BENCH_BUILD) -j $(JOBS) --target automation_bench autoctl
	$(BENCH_BUILD)/bench/automation_bench --benchmark_counters_tabular=true $(BENCH_ARGS)
	scripts/bench-http $(BENCH_BUILD)/cli/autoctl

# The HTTP API alone under wrk (DURATION=60s CONNECTIONS=32 THREADS=2).
bench-http: deps
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DAUTOMATION_BUILD_BENCH=ON -DAUTOMATION_BUILD_TESTS=OFF -DAUTOMATION_BUILD_EXAMPLES=OFF -DAUTOMATION_HEADER_CHECK=OFF
	cmake --build $(BENCH_BUILD) -j $(JOBS) --target autoctl
	scripts/bench-http $(BENCH_BUILD)/cli/autoctl

# Sanitizer builds of the whole suite (address+undefined, and thread).
test-asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DAUTOMATION_SANITIZE=address,undefined -DAUTOMATION_HEADER_CHECK=OFF
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS) --timeout 900 -E consumer

test-tsan: deps
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DAUTOMATION_SANITIZE=thread -DAUTOMATION_HEADER_CHECK=OFF
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -j $(JOBS) --timeout 900 -E consumer

sanitize: test-asan test-tsan

install: build
	cmake --install $(BUILD) --prefix $(or $(PREFIX),/usr/local)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD) $(BENCH_BUILD) build-asan build-tsan
