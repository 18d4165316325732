#!/bin/bash
# cli_nn_torchvision.sh: whole networks: torchvision CNNs with seeded random weights, exported by
# torch.onnx.export at opsets 13 and 17, must give PyTorch's outputs within 1e-4 relative L2 error
# through `vitrine model run`, at batch 1 and 8. Skips (exit 77, reported by ctest; a failure under CI=true) only when python3-torch
# is absent. Args: path of the vitrine binary, data dir (unused).
set -u
. "$(dirname "$0")/skip.sh"
VT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
OUT=${VT_NN_MODELS:-$(dirname "$VT")/nn-models}
if ! $PY -c "import torch, torchvision" 2>/dev/null; then
    vt_skip "python3-torch / python3-torchvision are not installed"
fi
MODELS=${VT_NN_TV_MODELS:-resnet50,mobilenet_v2,mobilenet_v3_small,mobilenet_v3_large,efficientnet_b0,squeezenet1_1,densenet121}
$PY "$HERE/onnx/export_torchvision.py" "$OUT" --models "$MODELS" --opsets 13,17 --batches 1,8 || { echo "FAIL: export"; exit 1; }
fail=0; n=0
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
for m in ${MODELS//,/ }; do
    for op in 13 17; do
        for b in 1 8; do
            if ! "$VT" -q model run "$OUT/${m}_op$op.onnx" --input "$OUT/${m}_b$b.in.f32" --shape $b,3,224,224 \
                    --output "$TMP/out.f32" > /dev/null; then
                echo "FAIL $m opset $op batch $b: vitrine model run failed"; fail=1; continue
            fi
            r=$($PY -c "
import sys, numpy as np
a = np.fromfile('$TMP/out.f32', dtype='<f4'); b = np.fromfile('$OUT/${m}_b$b.out.f32', dtype='<f4')
if a.size != b.size: print('size', a.size, b.size); sys.exit(1)
e = float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b.astype(np.float64)))
print('%.3e' % e); sys.exit(0 if e <= 1e-4 else 1)")
            st=$?
            n=$((n + 1))
            if [ $st -ne 0 ]; then echo "FAIL $m opset $op batch $b: relative L2 error $r"; fail=1
            else echo "ok   $m opset $op batch $b: relative L2 error $r"; fi
        done
    done
done
echo "$n network runs compared"
# peak memory of `vitrine model run` on resnet50: under 2x the weight bytes plus the plan's activations
if [[ ",$MODELS," == *",resnet50,"* ]]; then
    if ldd "$VT" 2>/dev/null | grep -q libasan; then
        echo "note: sanitizer build, peak memory not checked (AddressSanitizer inflates it)"
    elif [ -x /usr/bin/time ]; then
        W=$(stat -c %s "$OUT/resnet50_op17.onnx")
        for b in 1 8; do
            A=$("$VT" -q model bench "$OUT/resnet50_op17.onnx" --batch $b --seconds 0 | sed -nE 's/.*activations ([0-9.]+) MB.*/\1/p')
            R=$(/usr/bin/time -v "$VT" -q model run "$OUT/resnet50_op17.onnx" --input "$OUT/resnet50_b$b.in.f32" \
                 --shape $b,3,224,224 --output "$TMP/out.f32" 2>&1 >/dev/null | sed -nE 's/.*Maximum resident set size \(kbytes\): ([0-9]+)/\1/p')
            L=$(awk "BEGIN{printf \"%d\", (2 * $W + $A * 1e6) / 1024}")
            if [ -z "$R" ] || [ "$R" -gt "$L" ]; then
                echo "FAIL peak memory resnet50 batch $b: ${R:-?} KiB > limit $L KiB (2 x $W B weights + $A MB activations)"; fail=1
            else
                echo "ok   peak memory resnet50 batch $b: $R KiB <= $L KiB (2 x weights + activations)"
            fi
        done
    else
        echo "note: /usr/bin/time is missing, peak memory not checked"
    fi
fi
exit $fail
