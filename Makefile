# Thin wrapper: the real build is CMake (CMakeLists.txt), the tests run through ctest.
BUILD   ?= build
CC      := clang
JOBS    ?= $(shell nproc)
USERS   ?= 50
PREFIX  ?= /usr/local

.PHONY: all deps test-deps configure build run test bench fuzz load clean format install deb

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

# FHS install (cmake/install.cmake): PREFIX/bin/o2c, PREFIX/share/o2c,
# PREFIX/etc/o2c (/etc/o2c for PREFIX=/usr); DESTDIR=... stages it elsewhere.
install: deps configure
	@cmake --build $(BUILD) -j $(JOBS) --target o2c
	@DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

# A Debian package of this build: $(BUILD)/o2c_VERSION_ARCH.deb (CPack).
deb: deps configure
	@cmake --build $(BUILD) -j $(JOBS) --target o2c
	@cd $(BUILD) && cpack -G DEB

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
