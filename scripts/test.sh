#!/bin/bash
# The whole test suite, as CI runs it (.ci/run): installs the build and test dependencies
# (including the real Postfix and Dovecot the integration tests start privately on loopback, and
# the other POP/IMAP servers of scripts/install-test-servers.sh in private prefixes),
# builds the daemon in `build` (RelWithDebInfo, g++, as shipped) and the test binaries in
# `build-asan` (ASan+UBSan, clang), then runs
#   ctest --test-dir build-asan -L 'unit|fuzz'   unit tests and fuzz corpus replays, sanitized
#   ctest --test-dir build -L unsanitized        the two tests that cannot run sanitized (running
#                                                out of descriptors), from the release tree
#   ctest --test-dir build -L integration        the integration tests against the release daemon
#                                                (their engine conformance runs use build-asan's
#                                                rp_unit_tests, RP_UNIT_TESTS)
# Unit tests and replays are compiled and run once (sanitized), not twice: CI stays well inside
# its time limit on a 2-core machine.
# and exits non-zero if anything failed. Needs root (apt, and the integration tests start
# Dovecot and Postfix). JOBS=N overrides the build/test parallelism (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
JOBS=${JOBS:-2}
START=$(date +%s)

step() { printf '\n=== %s (%ds)\n' "$*" $(( $(date +%s) - START )); }

step "install dependencies"
bash scripts/install-deps.sh --test
bash scripts/install-test-servers.sh
bash scripts/install-test-mtas.sh

step "build: build (RelWithDebInfo, the daemon)"
# (-DRELAYPERMIT_TESTS=ON: quickstart.sh configures the same tree without them)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRELAYPERMIT_BENCH=OFF -DRELAYPERMIT_TESTS=ON
cmake --build build -j"$JOBS" --target relaypermit rp_unsanitized_tests

step "build: build-asan (ASan+UBSan, clang)"
# -O1 -g1 (line tables: stack traces keep file:line) compiles in half the time of -O2 -g.
# clang: a third faster than g++ here, and the release build above is g++'s, so CI compiles the
# code with both. Only the binaries the tests run (rp_test_binaries), not the sanitized daemon.
cmake -S . -B build-asan -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRELAYPERMIT_SANITIZE=ON -DRELAYPERMIT_BENCH=OFF -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG"
cmake --build build-asan -j"$JOBS" --target rp_test_binaries

# The integration tests are registered only when python3 has pytest: never let CI pass
# without them.
if ! ctest --test-dir build -N -L integration | grep -q 'Total Tests: [1-9]'; then
  echo "test.sh: the integration tests are not registered in build/ (python3-pytest missing?)" >&2
  exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

LOGDIR=$(mktemp -d -t relaypermit-test.XXXXXX)
trap 'rm -rf "$LOGDIR"' EXIT
FAILED=0

step "ctest build-asan: unit + fuzz (sanitized)"
ctest --test-dir build-asan -L 'unit|fuzz' --output-on-failure -j"$JOBS" </dev/null \
  2>&1 | tee "$LOGDIR/asan.log" || FAILED=1

step "ctest build: unsanitized (descriptor exhaustion)"
ctest --test-dir build -L unsanitized --no-tests=error --output-on-failure </dev/null \
  2>&1 | tee "$LOGDIR/unsanitized.log" || FAILED=1

step "ctest build: integration (real servers)"
export RP_UNIT_TESTS=$PWD/build-asan/tests/rp_unit_tests
ctest --test-dir build -L integration --output-on-failure -j"$JOBS" </dev/null \
  2>&1 | tee "$LOGDIR/build.log" || FAILED=1

summary() {  # summary NAME LOG: ctest's result lines
  echo "$1:"
  grep -E 'tests passed|tests failed|Total Test time|^\s+[0-9]+ - .*\((Failed|Timeout|SEGFAULT|Subprocess aborted|Exception|Not Run)' "$2" \
    | sed 's/^/  /' || echo "  (no ctest summary: see the output above)"
}
step "summary"
summary "build-asan (unit|fuzz, ASan+UBSan)" "$LOGDIR/asan.log"
summary "build (unsanitized)" "$LOGDIR/unsanitized.log"
summary "build (integration)" "$LOGDIR/build.log"
if [ $FAILED != 0 ]; then
  echo "test.sh: FAILED" >&2
  exit 1
fi
echo "test.sh: all tests passed"
