# The few commands a newcomer needs. See README.md.
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
DEPS_FILE := packaging/build-deps.txt

.PHONY: all deps build test demo bench clean

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
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300

# Starts augurd in the foreground with the built-in defaults and shows the live view.
demo: build
	@bash packaging/demo.sh $(BUILD)

bench: build
	@bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)
