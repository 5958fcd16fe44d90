#!/usr/bin/env bash
# README command 2: install what is missing, build, run the whole test suite:
# the normal build's tests, the same tests on a build instrumented with
# AddressSanitizer and UndefinedBehaviorSanitizer, and a bounded run of each
# fuzzer (bench/fuzz runs them to a million executions).
# Arguments go to ctest (both builds).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
(cd build && ctest --output-on-failure "$@")
scripts/test-sanitized.sh "$@"
scripts/fuzz.sh --runs 20000 --main-build build
