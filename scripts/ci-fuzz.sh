#!/usr/bin/env bash
# ci-fuzz.sh: builds every libFuzzer target (fuzz/fuzz_*.c, clang with ASan+UBSan) and runs each one
# for a short time from its seed corpus, two at once; fails when a build fails or a target finds a
# crash, leak, timeout or out-of-memory. Installs nothing: clang and libclang-rt-14-dev come from
# scripts/debian-packages.txt (scripts/deps.sh build).
# Usage: scripts/ci-fuzz.sh [SECONDS]   (seconds per target, default 60; logs in build-fuzz/logs/)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
start=$(date +%s)
targets=()
for src in fuzz/fuzz_*.c; do targets+=("$(basename "$src" .c)"); done
echo "== ci-fuzz: building ${targets[*]}"
CC=clang cmake -S . -B build-fuzz -DVT_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j 2 --target "${targets[@]}" >build-fuzz/ci-build.log 2>&1 || {
  tail -n 40 build-fuzz/ci-build.log
  echo "ci-fuzz: the fuzz targets do not build" >&2
  exit 1
}
echo "== ci-fuzz: built in $(($(date +%s) - start)) s; running each target for $secs s, two at once"
mkdir -p build-fuzz/logs
declare -A pid
failed=()
# Waits for target $1 and records its result from its log.
finish() {
  local t=$1 rc=0
  wait "${pid[$t]}" || rc=$?
  local log=build-fuzz/logs/$t.log
  local runs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  echo "ci-fuzz: $t: exit $rc, ${runs:-?} runs, $(grep -o 'cov: [0-9]*' "$log" | tail -n1)"
  if [ "$rc" -ne 0 ]; then
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|artifact_prefix|Test unit written)' "$log" | head -n 20 || true
    failed+=("$t")
  fi
}
running=()
for t in "${targets[@]}"; do
  VT_FUZZ_BUILT=1 scripts/fuzz.sh "$t" "$secs" >"build-fuzz/logs/$t.log" 2>&1 &
  pid[$t]=$!
  running+=("$t")
  if [ ${#running[@]} -ge 2 ]; then
    finish "${running[0]}"
    running=("${running[@]:1}")
  fi
done
for t in "${running[@]}"; do finish "$t"; done
echo "== ci-fuzz: ${#targets[@]} targets, $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed" \
  "in $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "ci-fuzz: crashing inputs are in fuzz/artifacts/; failed: ${failed[*]}" >&2
  exit 1
fi
