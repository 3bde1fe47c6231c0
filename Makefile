# millrace: the two commands are `make demo` and `make test`; both install what is missing first.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: setup build test test-asan demo bench asan tidy format format-check clean

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) -- --no-print-directory

test: build
	@bash scripts/test.sh $(BUILD)

demo: build
	@bash scripts/demo.sh $(BUILD)

bench: build
	@bash scripts/bench.sh $(BUILD)

# The whole test suite under AddressSanitizer and UndefinedBehaviorSanitizer
# (crash tests included, on a smaller topic; the AVX-512 scorer too on CPUs
# that have it). A finding fails the test that hit it, with a stack trace.
ASAN_BUILD ?= build-asan
test-asan: setup
	@cmake -S . -B $(ASAN_BUILD) -DMILLRACE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS) --target millrace_tests -- --no-print-directory
	@UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 bash scripts/test.sh $(ASAN_BUILD)

asan: test-asan

# clang-tidy over src/ with the checks in .clang-tidy (bugprone, performance, a
# few modernize), from the build's compile_commands.json.
tidy: build
	@run-clang-tidy -quiet -p $(BUILD) -j$(JOBS) '$(CURDIR)/src/millrace/.*\.cpp$$'

format:
	@git ls-files '*.cpp' '*.h' | xargs clang-format -i

format-check:
	@git ls-files '*.cpp' '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf build build-asan
