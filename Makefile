# Foundation for C: top-level commands.
#   make run    install what is missing, build, start `fdn serve` on embedded defaults
#   make test   install what is missing; ASan+UBSan build running all of ctest; then a
#               ThreadSanitizer build running the unit and stress labels; then a Release build
#               compiling the benchmarks and examples; then a clang build with -Wthread-safety
#               -Werror (test-tsa: compiled, not run)
#   make bench  Release build, run fdn-bench (pass ARGS="--json --filter counter"), then the HTTP
#               cases with wrk (bench/http_bench.sh; pass HTTP_ARGS="--filter event --duration 8")
#   make soak   Release `fdn serve` under a mixed wrk load for MINUTES=30 (scripts/soak.sh);
#               test-release runs a 2-minute one
#   make check-format  clang-format check of the lines changed since the merge base with main
#   make docs   API reference (Doxygen HTML from include/fdn/*.h, warnings as errors) in
#               $(BUILD)/docs/html; part of `make test`
#   make package  Debian packages (CPack): libfdn, libfdn-dev, fdn in $(BUILD)/package
#   make fuzz-campaign HOURS=H  every libFuzzer target in turn for H hours in all; corpora
#               minimised into fuzz/corpus/, report in docs/fuzz-campaign.md;
#               RUNS=N (N execs per target), TARGETS="a b", UNTIL=TIME, KEEP=1
JOBS ?= $(shell nproc)
BUILD ?= build
CMAKE_COMMON = -DFDN_WERROR=ON
CTEST_FLAGS = --output-on-failure -j$(JOBS)
export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS ?= halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp

.PHONY: all deps build run docs package test test-asan test-tsan test-release test-tsa bench install format check-format fuzz fuzz-campaign clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD)/debug -DCMAKE_BUILD_TYPE=Debug $(CMAKE_COMMON)
	cmake --build $(BUILD)/debug -j$(JOBS)

run: deps
	cmake -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=Release -DFDN_BUILD_TESTS=OFF
	cmake --build $(BUILD)/release -j$(JOBS) --target fdn_cli
	./$(BUILD)/release/bin/fdn serve $(ARGS)

test: deps docs test-asan test-tsan test-release test-tsa

# Doxygen over the public headers; any warning (an undocumented declaration, a bad @param)
# fails, and the log is printed. Takes about a second.
FDN_VERSION = $(shell grep -m1 -o 'VERSION [0-9][0-9.]*' CMakeLists.txt | cut -d' ' -f2)
docs:
	@mkdir -p $(BUILD)/docs
	@FDN_SOURCE_DIR=$(CURDIR) FDN_DOCS_OUT=$(CURDIR)/$(BUILD)/docs FDN_VERSION=$(FDN_VERSION) \
	  doxygen docs/Doxyfile || { cat $(BUILD)/docs/warnings.log; exit 1; }
	@echo "docs: $(BUILD)/docs/html/index.html"

test-asan:
	cmake -S . -B $(BUILD)/asan -DCMAKE_BUILD_TYPE=Debug -DFDN_SANITIZE="address;undefined" $(CMAKE_COMMON)
	cmake --build $(BUILD)/asan -j$(JOBS)
	cd $(BUILD)/asan && ctest $(CTEST_FLAGS)

test-tsan:
	cmake -S . -B $(BUILD)/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFDN_SANITIZE=thread -DFDN_BUILD_EXAMPLES=OFF $(CMAKE_COMMON)
	cmake --build $(BUILD)/tsan -j$(JOBS)
	cd $(BUILD)/tsan && ctest $(CTEST_FLAGS) -L "unit|stress"

test-release:
	cmake -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=Release -DFDN_BUILD_BENCH=ON -DFDN_BUILD_TESTS=OFF $(CMAKE_COMMON)
	cmake --build $(BUILD)/release -j$(JOBS)
	./$(BUILD)/release/bin/fdn-bench --quick > $(BUILD)/release/bench-smoke.txt
	@tail -n 1 $(BUILD)/release/bench-smoke.txt
	bash bench/http_bench.sh --quick $(BUILD)/release/bin > $(BUILD)/release/http-bench-smoke.txt
	@tail -n 1 $(BUILD)/release/http-bench-smoke.txt
	FDN_BIN=$(CURDIR)/$(BUILD)/release/bin/fdn bash scripts/soak.sh 2 $(BUILD)/release/soak-2

# scripts/soak.sh: `fdn serve` (Release) under a mixed wrk load for MINUTES (default 30); CSV
# and summary in $(BUILD)/release/soak-MINUTES
.PHONY: soak
MINUTES ?= 30
soak: deps
	cmake -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=Release -DFDN_BUILD_BENCH=ON -DFDN_BUILD_TESTS=OFF $(CMAKE_COMMON)
	cmake --build $(BUILD)/release -j$(JOBS) --target fdn_cli
	FDN_BIN=$(CURDIR)/$(BUILD)/release/bin/fdn bash scripts/soak.sh $(MINUTES) $(BUILD)/release/soak-$(MINUTES)

# Clang's thread-safety analysis over the library, the program and the tests (src/core/lock.h):
# a warning fails the build. Compile only: the other stages run the code.
test-tsa:
	cmake -S . -B $(BUILD)/tsa -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DFDN_THREAD_SAFETY=ON -DFDN_BUILD_EXAMPLES=OFF $(CMAKE_COMMON)
	cmake --build $(BUILD)/tsa -j$(JOBS)

bench: deps
	cmake -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=Release -DFDN_BUILD_BENCH=ON
	cmake --build $(BUILD)/release -j$(JOBS) --target fdn-bench fdn_cli fdn-http-baseline
	./$(BUILD)/release/bin/fdn-bench $(ARGS)
	bash bench/http_bench.sh $(HTTP_ARGS) $(BUILD)/release/bin

install: deps
	cmake -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=Release -DFDN_BUILD_BENCH=ON -DFDN_BUILD_TESTS=OFF
	cmake --build $(BUILD)/release -j$(JOBS)
	cmake --install $(BUILD)/release $(if $(PREFIX),--prefix $(PREFIX),)

# Debian packages libfdn, libfdn-dev, fdn (cmake/package.cmake) in $(BUILD)/package/package
package: deps
	cmake -S . -B $(BUILD)/package -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr -DFDN_BUILD_TESTS=OFF -DFDN_BUILD_EXAMPLES=OFF $(CMAKE_COMMON)
	cmake --build $(BUILD)/package -j$(JOBS)
	cd $(BUILD)/package && cpack -G DEB
	@ls $(BUILD)/package/package/*.deb

# libFuzzer runs (clang): make fuzz FUZZ_SECONDS=60
FUZZ_SECONDS ?= 30
fuzz: deps
	CC=clang cmake -S . -B $(BUILD)/fuzz -DCMAKE_BUILD_TYPE=Debug -DFDN_FUZZ=ON -DFDN_BUILD_TESTS=OFF -DFDN_SANITIZE="address;undefined"
	cmake --build $(BUILD)/fuzz -j$(JOBS)
	@for f in $(BUILD)/fuzz/fuzz_*; do \
	  [ -x "$$f" ] || continue; n=$$(basename $$f | sed 's/^fuzz_//'); \
	  echo "== $$n"; mkdir -p $(BUILD)/fuzz/corpus/$$n; \
	  $$f -max_total_time=$(FUZZ_SECONDS) $(BUILD)/fuzz/corpus/$$n fuzz/corpus/$$n || exit 1; \
	done

# A campaign over every fuzz target: HOURS split among them, corpora minimised back into
# fuzz/corpus/, report in docs/fuzz-campaign.md (scripts/fuzz-campaign.sh). RUNS=N: N
# executions per target instead (with HOURS given too, whichever comes first); TARGETS="a b":
# only these; UNTIL=TIME: stop by then; KEEP=1: keep the report's rows of other targets.
HOURS ?= 1
RUNS ?=
TARGETS ?=
UNTIL ?=
KEEP ?=
fuzz-campaign: deps
	bash scripts/fuzz-campaign.sh --build $(BUILD)/fuzz \
	  $(if $(RUNS),--runs $(RUNS) $(if $(filter command line environment,$(origin HOURS)),--hours $(HOURS)),--hours $(HOURS)) \
	  $(if $(TARGETS),--targets "$(TARGETS)") $(if $(UNTIL),--until "$(UNTIL)") $(if $(KEEP),--keep-rows)

format:
	find include src tests tools bench fuzz examples -name '*.[ch]' -print0 | xargs -0 clang-format -i

check-format:
	@bash scripts/check-format.sh

clean:
	rm -rf $(BUILD)
