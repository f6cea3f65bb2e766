#!/bin/sh
# Builds the libFuzzer targets of tests/fuzz with clang, ASan and UBSan in
# their own build directory, and runs each for a bounded time through ctest
# (label "fuzz"). Inputs found go to the build tree's corpus, crashes to its
# artifacts/; the seeds in tests/fuzz/corpus are only read.
#
# usage: tools/fuzz.sh [SECONDS]    seconds per target, default 30
# environment: FUZZ_BUILD (default build-fuzz), JOBS
set -eu
cd "$(dirname "$0")/.."

secs=${1:-30}
build=${FUZZ_BUILD:-build-fuzz}
jobs=${JOBS:-$(nproc)}
targets="fuzz_ingest fuzz_csv fuzz_config fuzz_log"

case $secs in
'' | *[!0-9]*)
	echo "fuzz: seconds must be a whole number, not '$secs'" >&2
	exit 2
	;;
esac
if ! command -v clang >/dev/null; then
	echo "fuzz: clang not found (tools/setup.sh installs it)" >&2
	exit 1
fi

cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	-DFUZZ=ON -DFUZZ_SECONDS="$secs" >/dev/null
# shellcheck disable=SC2086 # targets is a word list
cmake --build "$build" -j "$jobs" --target $targets
echo "fuzz: $targets, ${secs}s each" >&2
cd "$build" && ctest --output-on-failure -L fuzz -j "$jobs"
