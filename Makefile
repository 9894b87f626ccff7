# Thin wrapper: the real build is CMake (CMakeLists.txt), the tests run through ctest.
BUILD   ?= build
CC      := clang
JOBS    ?= $(shell nproc)
USERS   ?= 50

.PHONY: all deps test-deps configure build run test bench fuzz load clean format

all: build

deps:
	@config/install-deps.sh

test-deps:
	@config/install-deps.sh --test
	@tests/install-npm.sh

configure:
	@cmake -S . -B $(BUILD) -DCMAKE_C_COMPILER=$(CC) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: deps configure
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@mkdir -p var
	./$(BUILD)/o2c serve

test: test-deps configure
	@cmake --build $(BUILD) -j $(JOBS)
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

bench: build
	@tests/bench/run.sh $(BUILD)

fuzz: test-deps configure
	@cmake --build $(BUILD) -j $(JOBS)
	@tests/fuzz/run.sh $(BUILD) $${FUZZ_SECONDS:-300}

load: test-deps configure
	@cmake --build $(BUILD) -j $(JOBS)
	@tests/load/run.sh $(BUILD) $(USERS)

format:
	@clang-format -i $$(git ls-files 'core/*.c' 'core/*.h' 'tests/*.c')

clean:
	rm -rf $(BUILD)
