#!/usr/bin/env bash
# fuzz.sh: builds the libFuzzer targets with clang (ASan+UBSan) and runs one of them.
# Usage: scripts/fuzz.sh [TARGET] [SECONDS]    e.g. scripts/fuzz.sh fuzz_decode 600
# TARGET defaults to fuzz_decode, SECONDS to 60. Corpus: fuzz/corpus-TARGET (seeded on first run by
# fuzz/seed-TARGET.sh; the crafted inputs of fuzz/seeds/TARGET/ are copied in on every run),
# crashes: fuzz/artifacts/. Exit status is libFuzzer's (non-zero on a crash).
# VT_FUZZ_BUILT=1 skips the build (scripts/ci-fuzz.sh builds every target once, then runs them).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-fuzz_decode}
secs=${2:-60}
data=${VT_DATA:-../shared/data/fashion-products}
if [ "${VT_FUZZ_BUILT:-0}" != 1 ]; then
  CC=clang cmake -S . -B build-fuzz -DVT_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-fuzz -j "$(nproc)" --target "$target" >/dev/null
fi
corpus=fuzz/corpus-$target
mkdir -p "$corpus" fuzz/artifacts
if [ -z "$(ls -A "$corpus")" ] && [ -x fuzz/seed-$target.sh ]; then
  fuzz/seed-$target.sh "$corpus" "$data"
fi
for f in fuzz/seeds/"$target"/*; do
  if [ -f "$f" ] && [ ! -e "$corpus/${f##*/}" ]; then cp "$f" "$corpus/"; fi
done
echo "fuzz: running $target for $secs s (corpus $corpus)"
exec build-fuzz/$target "$corpus" -max_total_time="$secs" -max_len=262144 -rss_limit_mb=2048 \
  -timeout=10 -artifact_prefix=fuzz/artifacts/ -print_final_stats=1
