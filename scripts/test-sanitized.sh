#!/usr/bin/env bash
# The whole test suite on a build instrumented with AddressSanitizer and
# UndefinedBehaviorSanitizer (build-asan/, -DMEXPORT_SANITIZE=ON). The e2e
# suites run the instrumented mexport as a subprocess; the options below reach
# it through ctest and Python. Arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEXPORT_SANITIZE=ON >/dev/null
cmake --build build-asan -j2

# Every report (memory error, leak at exit, undefined behaviour) ends its
# process with exit code 86, never mexport's own 1 or 2, so a test expecting a
# failed export cannot take a report for it. ASan's reports (leaks included)
# go to files rather than to the stderr the tests read, so that one in a
# process whose exit code a test ignores still fails this script, shown whole.
# UBSan ignores log_path next to ASan (GCC's runtimes): its reports stay on
# stderr, and the process stops at the first.
reports=$PWD/build-asan/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS=exitcode=86:log_path=$reports/asan:detect_stack_use_after_return=1:strict_string_checks=1
export UBSAN_OPTIONS=exitcode=86:print_stacktrace=1

status=0
(cd build-asan && ctest --output-on-failure "$@") || status=$?
if [ -n "$(ls -A "$reports")" ]; then
  echo "test-sanitized: sanitizer reports in $reports:" >&2
  cat "$reports"/* >&2
  status=1
fi
exit $status
