# The few commands a newcomer needs. See README.md and docs/TESTING.md.
# SANITIZE=address,undefined builds and tests in build-sanitize/ with those sanitizers (GCC).
SANITIZE ?=
ifneq ($(SANITIZE),)
BUILD ?= build-sanitize
else
BUILD ?= build
endif
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
DEPS_FILE := packaging/build-deps.txt

.PHONY: all deps build test demo bench clean fuzz fuzz-build
# The libFuzzer build (tests/fuzz, docs/TESTING.md): its own dir, configured with clang-16.
FUZZ_BUILD ?= build-fuzz
FUZZ_CXX ?= clang++-16
FUZZ_CC ?= clang-16
FUZZ_SECONDS ?= 60

all: build

# Installs the Debian packages listed in packaging/build-deps.txt that are missing.
# Idempotent: a second run installs nothing and does not touch apt's lists.
deps:
	@missing=$$(grep -v '^\s*#' $(DEPS_FILE) | sed 's/#.*//' | xargs -n1 | while read p; do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed' || echo "$$p"; done); \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing $$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: need root to apt-get install: $$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "make deps: all packages present"; fi

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DAUGUR_SANITIZE=$(SANITIZE)

# Sanitizer runs: what the processes under test (and the augurd / plugin hosts they start)
# do on a report. Suppressions, each with its reason, are in tests/sanitizers/.
SANITIZER_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=0 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitizers/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$(CURDIR)/tests/sanitizers/ubsan.supp

build: deps $(BUILD)/CMakeCache.txt
	@# Re-configure when SANITIZE changed since the build dir was made (cheap when it did not).
	@if [ -n "$(SANITIZE)" ]; then cmake -S . -B $(BUILD) -DAUGUR_SANITIZE=$(SANITIZE) >/dev/null; fi
	cmake --build $(BUILD) -j $(JOBS)

# After the main suite: the fuzz targets for a few seconds each (ctest -L fuzz in
# $(FUZZ_BUILD)) when $(FUZZ_CXX) is there; `make deps` installs it. Not under SANITIZE: the
# fuzz build has its own sanitizers.
test: build
	cd $(BUILD) && $(if $(SANITIZE),$(SANITIZER_ENV)) ctest --output-on-failure -j $(JOBS) --timeout 300
	@if [ -z "$(SANITIZE)" ]; then \
	  if command -v $(FUZZ_CXX) >/dev/null; then $(MAKE) --no-print-directory fuzz-build && \
	    cd $(FUZZ_BUILD) && ctest --output-on-failure -L fuzz --timeout 120; \
	  else echo "make test: $(FUZZ_CXX) not found, fuzz targets not run (make deps installs it)"; fi; \
	fi

$(FUZZ_BUILD)/CMakeCache.txt:
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAUGUR_FUZZ=ON \
	  -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) -DCMAKE_C_COMPILER=$(FUZZ_CC)

# Builds only the fuzz targets (target augur_fuzz), not the rest of the tree.
fuzz-build: deps $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target augur_fuzz

# Each fuzz target for FUZZ_SECONDS (default 60) from its committed corpus; new inputs go to
# $(FUZZ_BUILD)/corpus/<target>/, crashes to $(FUZZ_BUILD)/crashes/ (docs/TESTING.md).
fuzz: fuzz-build
	@bash tests/fuzz/run_fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Starts augurd in the foreground with the built-in defaults and shows the live view.
demo: build
	@bash packaging/demo.sh $(BUILD)

bench: build
	@bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)

# --- Debian packages (packaging/debian, docs/PACKAGING.md) --------------------------------
# `make package`: augur, augur-plugin-libvirt and augur-plugin-dev .debs in $(PKG_OUT)/,
# checked with lintian. `make package-test`: builds them, installs them into a Debian 12 root
# made with debootstrap, runs the agent from it, upgrades, removes and purges
# (packaging/test-install.sh; needs root; not part of `make test`).
PKG_OUT ?= build-deb
.PHONY: package package-test
package: deps
	@bash packaging/build-packages.sh $(PKG_OUT)

package-test: deps
	@bash packaging/test-install.sh $(PKG_OUT)
