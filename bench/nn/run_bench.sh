#!/bin/bash
# run_bench.sh: vitrine vs ONNX Runtime (npm onnxruntime-node) vs PyTorch, images/s on the same ONNX files,
# same machine, same run, threads 1 and 2, batch 1 and 16; prints a markdown table with ratios.
# Usage: bench/nn/run_bench.sh VITRINE_BINARY MODELS_DIR [SECONDS]
# Rates are from the median batch time of each engine (robust to preemption on a shared machine).
# vitrine re-executes itself with a short OpenMP spin (GOMP_SPINCOUNT=20000) when the machine is idle at
# start, OMP_WAIT_POLICY=passive otherwise (docs/nn.md); PyTorch (also libgomp) is given the same choice.
#   MODELS_DIR holds M_op17.onnx from tests/onnx/export_torchvision.py (exported there if missing).
# Needs: node + bench/nn/ort (cd bench/nn/ort && npm install --ignore-scripts onnxruntime-node@1.30),
#        /usr/bin/python3 with torch and torchvision.
set -eu
VT=$1; MD=$2; S=${3:-8}
HERE=$(cd "$(dirname "$0")" && pwd)
MODELS=${BENCH_MODELS:-resnet50 mobilenet_v2 efficientnet_b0}
for m in $MODELS; do
    [ -f "$MD/${m}_op17.onnx" ] || /usr/bin/python3 "$HERE/../../tests/onnx/export_torchvision.py" "$MD" --models $m --opsets 17 --batches 1
done
rate() { sed -nE 's/.*: ([0-9.]+) images\/s.*/\1/p' | head -1; }
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
echo "| model | threads | batch | vitrine img/s | ONNX Runtime img/s | PyTorch img/s | vitrine/ORT | vitrine/PyTorch | OpenMP wait (vitrine, PyTorch) |"
echo "|---|---|---|---|---|---|---|---|---|"
for m in $MODELS; do
    for t in 1 2; do
        for b in 1 16; do
            o=$(node "$HERE/ort_bench.js" "$MD/${m}_op17.onnx" $b $t $S | rate)
            v=$("$VT" -v model bench "$MD/${m}_op17.onnx" --batch $b --threads $t --seconds $S 2>"$LOG" | rate)
            if grep -q "OpenMP: short spin" "$LOG"; then pol=spin; penv="GOMP_SPINCOUNT=20000"; else pol=passive; penv="OMP_WAIT_POLICY=passive"; fi
            p=$(env $penv /usr/bin/python3 "$HERE/torch_bench.py" $m $b $t $S | rate)
            echo "| $m | $t | $b | $v | $o | $p | $(awk "BEGIN{printf \"%.2f\", $v / $o}") | $(awk "BEGIN{printf \"%.2f\", $v / $p}") | $pol |"
        done
    done
done
