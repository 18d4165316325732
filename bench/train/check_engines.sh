#!/bin/bash
# check_engines.sh: runs a vitrine-trained model on real catalog photos in vitrine's engine, in ONNX
# Runtime (npm onnxruntime-node) and in an independent PyTorch interpreter of the exported graph,
# and compares every output (max relative error, limit 1e-4).
# Usage: bench/train/check_engines.sh VITRINE_BINARY MODEL.onnx IMAGES_DIR [N]
#   e.g. bench/train/check_engines.sh build/vitrine models/vitrine-fashion.onnx ../shared/data/fashion-products/images 16
# The input tensor is built once (the first N photos, resized to the model's input size with
# Pillow and normalised with the mean/std from the model's metadata) and fed to all three engines.
set -eu
VT=$1; MODEL=$2; IMG=$3; N=${4:-16}
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
read -r S OUTS < <(/usr/bin/python3 - "$MODEL" "$IMG" "$N" "$W/in.f32" <<'PY'
import os, sys
import numpy as np, onnx
from PIL import Image
model, img, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
m = onnx.load(model)
meta = {p.key: p.value for p in m.metadata_props}
s = int(meta['vitrine.input_size'])
mean = np.array([float(v) for v in meta['vitrine.mean'].split(',')], np.float32)
std = np.array([float(v) for v in meta['vitrine.std'].split(',')], np.float32)
files = sorted(f for f in os.listdir(img) if f.lower().endswith(('.jpg', '.jpeg', '.png')))[:n]
x = np.stack([((np.asarray(Image.open(os.path.join(img, f)).convert('RGB').resize((s, s), Image.BILINEAR),
                           np.float32) / 255 - mean) / std).transpose(2, 0, 1) for f in files])
x.astype('<f4').tofile(out)
print(s, ' '.join(o.name for o in m.graph.output))
PY
)
ARGS=()
for o in $OUTS; do
    "$VT" -q model run "$MODEL" --input "$W/in.f32" --shape "$N,3,$S,$S" --tensor "$o" --output "$W/$o.f32"
    ARGS+=("$o" "$W/$o.f32")
done
echo "vitrine vs PyTorch interpreter of the graph ($N photos, ${S}px):"
/usr/bin/python3 "$HERE/onnx_torch_eval.py" "$MODEL" "$W/in.f32" "$N,3,$S,$S" "${ARGS[@]}"
echo "vitrine vs ONNX Runtime:"
node "$HERE/ort_check.js" "$MODEL" "$W/in.f32" "$N,3,$S,$S" "${ARGS[@]}"
