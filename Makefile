# Makefile: thin wrapper over CMake. `make demo` runs the main job, `make test` the tests;
# both first install missing Debian packages (scripts/deps.sh).
BUILD ?= build
JOBS ?= $(shell nproc)
DATA ?= $(abspath ../shared/data/fashion-products)
ifeq ($(SANITIZE),1)
BUILD := build-asan
CMAKE_FLAGS += -DVT_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
endif

.PHONY: all deps build test demo clean fuzz install

all: build

deps:
	@scripts/deps.sh build test

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	@scripts/demo.sh $(BUILD)/vitrine "$(DATA)"

# make install [PREFIX=/usr/local] [DESTDIR=...]: the tool, libvitrine (.a and .so), vitrine.h,
# and vitrine.pc for pkg-config.
PREFIX ?= /usr/local
install: build
	@cmake --install $(BUILD) --prefix "$(PREFIX)"

fuzz:
	@scripts/fuzz.sh

clean:
	rm -rf build build-asan build-fuzz
