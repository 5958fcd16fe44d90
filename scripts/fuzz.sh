#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ with clang into build-fuzz, gathers
# their seeds from the test fixtures (fuzz/make_seeds.py, using the main
# build's mexport and models) and runs each fuzzer, then prints one row per
# fuzzer: executions, crashes, seconds, corpus size.
#
#   scripts/fuzz.sh [--runs N | --seconds N] [--main-build DIR] [FUZZER...]
#
# --runs N      executions per fuzzer (default 20000: the CI run)
# --seconds N   run each fuzzer for N seconds instead
# --main-build  the main build with mexport and tests/models (default build)
# FUZZER        config, graphml, onnx (default all)
#
# Each fuzzer starts from its corpus in build-fuzz/corpus/NAME (kept between
# runs), the seeds and fuzz/regressions/NAME (inputs that once crashed, run
# first). It stops at its first crash, leak, timeout or out-of-memory, whose
# input stays in build-fuzz/crashes/NAME/; the script then goes on with the
# next fuzzer and exits 1 at the end. Logs: build-fuzz/logs/NAME.log.
# Reproduce a crash: build-fuzz/NAME_fuzzer build-fuzz/crashes/NAME/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

limit=(-runs=20000)
# Largest input, seeds included: each run parses its input whole, and a
# GraphML of the control-flow fixture (23 KB) is the largest seed worth having.
max_len=32768
main_build=build
fuzzers=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) limit=(-runs="$2"); shift 2 ;;
    --seconds) limit=(-max_total_time="$2"); shift 2 ;;
    --main-build) main_build="$2"; shift 2 ;;
    config|graphml|onnx) fuzzers+=("$1"); shift ;;
    *) echo "fuzz.sh: unknown argument '$1'; see the comment at the top of $0" >&2; exit 2 ;;
  esac
done
[ ${#fuzzers[@]} -gt 0 ] || fuzzers=(config graphml onnx)

out=$repo/build-fuzz
cmake -S fuzz -B "$out" -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build "$out" -j2
/usr/bin/python3 fuzz/make_seeds.py --build "$main_build" --out "$out/seeds" --max-bytes "$max_len"

rows=()
failed=0
for name in "${fuzzers[@]}"; do
  corpus=$out/corpus/$name crashes=$out/crashes/$name log=$out/logs/$name.log
  mkdir -p "$corpus" "$crashes" "$out/logs"
  regressions=()
  [ -d "fuzz/regressions/$name" ] && regressions=("fuzz/regressions/$name")
  echo "fuzz.sh: running ${name}_fuzzer ${limit[*]} (log: $log)"
  marker=$(mktemp)
  start_ns=$(date +%s%N)
  # The GraphML fuzzer reads its input as if it sat beside the seeds' sidecars.
  MEXPORT_FUZZ_SIDECAR_DIR=$out/seeds/sidecar "$out/${name}_fuzzer" "${limit[@]}" \
    -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$crashes/" -dict="fuzz/$name.dict" \
    "$corpus" "$out/seeds/$name" "${regressions[@]}" >"$log" 2>&1 || true
  elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  found=$(find "$crashes" -newer "$marker" -type f \
    \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  rm -f "$marker"
  if [ "$found" -gt 0 ] || [ -z "$executions" ]; then
    failed=1
    echo "fuzz.sh: ${name}_fuzzer failed; the end of $log:" >&2
    tail -n 30 "$log" >&2
  fi
  rows+=("$(printf '%-16s %12s %8s %8d.%d %12s' "${name}_fuzzer" "${executions:-?}" "$found" \
    $((elapsed_ms / 1000)) $((elapsed_ms % 1000 / 100)) "$(find "$corpus" -type f | wc -l)")")
done

printf '%-16s %12s %8s %10s %12s\n' fuzzer executions crashes seconds "corpus files"
printf '%s\n' "${rows[@]}"
if [ "$failed" -ne 0 ]; then
  echo "fuzz.sh: crashes kept in $out/crashes/" >&2
  exit 1
fi
