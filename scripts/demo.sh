#!/usr/bin/env bash
# demo.sh: the main job for now: preprocess the sample catalog and show what the network sees.
set -euo pipefail
bin=$1
data=$2
out=${DEMO_OUT:-demo-out}
mkdir -p "$out"
if [ ! -d "$data/images" ]; then
  echo "demo: no catalog at $data/images" >&2
  exit 1
fi
echo "== decoding and letterboxing every photo in $data/images to 224x224"
"$bin" preprocess --bench "$data/images" --size 224
first=$(ls "$data/images" | head -n 1)
echo "== what the network sees for $first (plain and one augmented view)"
"$bin" preprocess "$data/images/$first" -o "$out/input.png" --size 224
"$bin" preprocess "$data/images/$first" -o "$out/augmented.png" --size 224 --augment --seed 7
echo "demo: wrote $out/input.png and $out/augmented.png"
