#!/bin/bash
# side_by_side.sh: vitrine train vs PyTorch (Debian python3-torch) on the same network, augmentation,
# optimiser (AdamW), schedule, batch size, epochs, threads and split; prints a markdown table with
# training images/s and retrieval precision@10 (held-out queries, catalog = all items) and ratios.
# Usage: bench/train/side_by_side.sh VITRINE_BINARY DATA_DIR [EPOCHS] [SIZE] [LIMIT] [THREADS] [extra vitrine/torch args...]
#   e.g. bench/train/side_by_side.sh build/vitrine ../shared/data/fashion-products 10 64 0 2
# Run it on a quiet machine: both sides are timed in the same run, but a second busy process halves
# what either sees.
set -eu
VT=$1; DATA=$2; E=${3:-10}; S=${4:-64}; L=${5:-0}; TH=${6:-2}
shift $(( $# < 6 ? $# : 6 ))
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
COMMON=(--size "$S" --epochs "$E" --batch 64 --width 32 --depth 1 --embed 128 "$@")
LIM=(); [ "$L" -gt 0 ] && LIM=(--limit "$L")
VITRINE_PROGRESS=0 "$VT" train --images "$DATA/images" --meta "$DATA/styles.csv" -o "$W/vt.onnx" --threads "$TH" \
    --split-out "$W/split.tsv" "${LIM[@]}" "${COMMON[@]}" | tee "$W/vt.txt" >&2
/usr/bin/python3 "$HERE/torch_train.py" --images "$DATA/images" --meta "$DATA/styles.csv" --split "$W/split.tsv" \
    --threads "$TH" --vitrine-model "$W/vt.onnx" "${COMMON[@]}" | tee "$W/pt.txt" >&2
vr=$(sed -nE 's/^trained on .*, ([0-9.]+) img\/s.*/\1/p' "$W/vt.txt")
pr=$(sed -nE 's/^pytorch: train ([0-9.]+) img\/s.*/\1/p' "$W/pt.txt")
read -r v1 v2 < <(sed -nE 's/^vitrine: P@10 ([0-9.]+) \/ ([0-9.na]+).*/\1 \2/p' "$W/pt.txt")
read -r p1 p2 < <(sed -nE 's/^pytorch: .*P@10 ([0-9.]+) \/ ([0-9.na]+).*/\1 \2/p' "$W/pt.txt")
echo "| size | epochs | threads | vitrine img/s | PyTorch img/s | ratio | vitrine P@10 type / type+colour | PyTorch P@10 type / type+colour |"
echo "|---|---|---|---|---|---|---|---|"
echo "| $S | $E | $TH | $vr | $pr | $(awk "BEGIN{printf \"%.2f\", $vr / $pr}") | $v1 / $v2 | $p1 / $p2 |"
