# The two commands of the README:
#   make demo   set up, build, run the daemon and ten agents on sample data,
#               and leave the daemon and the dashboard running (make
#               demo-stop stops them)
#   make test   set up, build, run every test
# Everything else is CMake (CMakeLists.txt); this file only strings steps.

BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)

.PHONY: all setup build demo demo-stop test test-asan test-valgrind clean

all: build

setup:
	@./tools/setup.sh

build: setup
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	./tools/demo.sh $(BUILD)

demo-stop:
	./tools/demo.sh stop

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The whole suite again under AddressSanitizer and UBSan (CI runs both).
test-asan: setup
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS)

# The integration suites again with the daemon under valgrind memcheck: any
# error makes it exit 99 and the suite fail.
VALGRIND_SUITES ?= check_ingest|check_feed|check_control|check_auth|check_replay|check_web
test-valgrind: build
	cd $(BUILD) && INDICATOR_VALGRIND=1 ctest --output-on-failure \
		-j $(JOBS) -R '$(VALGRIND_SUITES)'

clean:
	-./tools/demo.sh stop
	rm -rf $(BUILD) $(ASAN_BUILD) demo-run

# The libFuzzer targets (tests/fuzz), built with clang in build-fuzz, each
# run for FUZZ_SECONDS: make fuzz FUZZ_SECONDS=300 for a longer session.
FUZZ_SECONDS ?= 20
.PHONY: fuzz
fuzz: setup
	./tools/fuzz.sh $(FUZZ_SECONDS)
