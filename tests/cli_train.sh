#!/bin/bash
# cli_train.sh: black-box tests of `vitrine train`: usage errors, a tiny run on the shared photos,
# the exported ONNX (checker, outputs, metadata), and --stop-after / --resume giving the same file.
# Args: path of the vitrine binary, data dir (fashion-products).
set -u
VT=$1
DATA=$2
fail() { echo "FAIL: $*"; exit 1; }
[ -f "$DATA/styles.csv" ] || { echo "SKIP: no data at $DATA"; exit 0; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export VITRINE_PROGRESS=0

"$VT" train --help | grep -q -- "--resume CKPT" || fail "--help does not list --resume"
"$VT" train --images "$DATA/images" -o "$T/x.onnx" >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing --meta should exit 2"
"$VT" train --images "$DATA/images" --meta "$DATA/styles.csv" >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing -o should exit 2"
"$VT" train --images "$DATA/images" --meta "$DATA/styles.csv" -o "$T/x.onnx" --size 3 >/dev/null 2>&1
[ $? -eq 2 ] || fail "--size 3 should exit 2"
"$VT" train --images "$DATA/images" --meta "$DATA/styles.csv" -o "$T/x.onnx" --optimizer adam >/dev/null 2>&1
[ $? -eq 2 ] || fail "--optimizer adam should exit 2"
"$VT" train --images "$T/none" --meta "$T/none.csv" -o "$T/x.onnx" >/dev/null 2>&1
[ $? -eq 1 ] || fail "a missing feed should exit 1"

ARGS=(--images "$DATA/images" --meta "$DATA/styles.csv" --limit 120 --size 32 --width 8 --embed 16 --batch 16
      --min-count 3 --val 0.2 --threads 2 --seed 7)
"$VT" train "${ARGS[@]}" --epochs 2 -o "$T/full.onnx" >"$T/full.txt" 2>&1 || { cat "$T/full.txt"; fail "train failed"; }
grep -q "^epoch 2/2 .*val articleType [0-9.]* .*P@10 [0-9.]* / [0-9.]*" "$T/full.txt" || { cat "$T/full.txt"; fail "no epoch line"; }
grep -q "trained on 120 items (96 training, 24 validation)" "$T/full.txt" || { cat "$T/full.txt"; fail "no summary"; }
[ -s "$T/full.onnx.ckpt" ] || fail "no checkpoint written"

if /usr/bin/python3 -c 'import onnx' 2>/dev/null; then
    /usr/bin/python3 - "$T/full.onnx" <<'PY' || fail "exported model does not pass the ONNX checker or lacks outputs/metadata"
import json, sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
outs = [o.name for o in m.graph.output]
assert outs == ['embedding', 'logits_articleType', 'logits_baseColour', 'logits_gender'], outs
meta = {p.key: p.value for p in m.metadata_props}
assert meta['vitrine.input_size'] == '32' and meta['vitrine.fit'] == 'letterbox' and meta['vitrine.embedding'] == 'embedding'
assert meta['vitrine.heads'] == 'articleType,baseColour,gender'
voc = json.loads(meta['vitrine.labels.articleType'])
dims = [d.dim_value for d in m.graph.output[1].type.tensor_type.shape.dim]
assert len(voc) == dims[1] and len(voc) >= 2, (voc, dims)
assert m.graph.output[0].type.tensor_type.shape.dim[1].dim_value == 16
print('onnx checker: ok,', len(m.graph.node), 'nodes,', len(voc), 'article types')
PY
fi

"$VT" train "${ARGS[@]}" --epochs 2 --stop-after 1 -o "$T/part.onnx" >"$T/part.txt" 2>&1 || { cat "$T/part.txt"; fail "interrupted run failed"; }
grep -q "^epoch 2/2" "$T/part.txt" && fail "--stop-after 1 ran epoch 2"
"$VT" train "${ARGS[@]}" --epochs 2 --resume "$T/part.onnx.ckpt" -o "$T/resumed.onnx" >"$T/res.txt" 2>&1 || { cat "$T/res.txt"; fail "resume failed"; }
grep -q "^epoch 1/2" "$T/res.txt" && fail "resume repeated epoch 1"
cmp -s "$T/full.onnx" "$T/resumed.onnx" || fail "resumed model differs from the uninterrupted one"
"$VT" train "${ARGS[@]}" --epochs 3 --resume "$T/part.onnx.ckpt" -o "$T/other.onnx" >"$T/bad.txt" 2>&1
[ $? -eq 1 ] && grep -q "other training options" "$T/bad.txt" || { cat "$T/bad.txt"; fail "a mismatched resume was not refused"; }
# SGD with momentum and the one-cycle schedule
"$VT" train "${ARGS[@]}" --epochs 1 --optimizer sgd --schedule onecycle -o "$T/sgd.onnx" >"$T/sgd.txt" 2>&1 || { cat "$T/sgd.txt"; fail "sgd train failed"; }
grep -q "^epoch 1/1  loss [0-9]" "$T/sgd.txt" || { cat "$T/sgd.txt"; fail "sgd: no finite loss"; }
# our inference engine runs the export without the final LpNormalization node (--raw-embedding)
"$VT" train "${ARGS[@]}" --epochs 1 --raw-embedding -o "$T/raw.onnx" >"$T/raw.txt" 2>&1 || { cat "$T/raw.txt"; fail "raw train failed"; }
"$VT" model info "$T/raw.onnx" >"$T/info.txt" 2>&1 || { cat "$T/info.txt"; fail "the engine cannot load the raw-embedding export"; }
grep -q "embedding tensor: embedding" "$T/info.txt" || { cat "$T/info.txt"; fail "embedding tensor not found"; }
grep -q "preprocessing: size 32, .* letterbox (from metadata)" "$T/info.txt" || { cat "$T/info.txt"; fail "preprocessing not from metadata"; }
# the standard export (final LpNormalization) runs in our engine: every embedding row has norm 1
/usr/bin/python3 -c "import numpy as np; np.random.default_rng(3).standard_normal((4, 3, 32, 32)).astype('<f4').tofile('$T/x.f32')" &&
"$VT" -q model run "$T/full.onnx" --input "$T/x.f32" --shape 4,3,32,32 --tensor embedding --output "$T/emb.f32" >"$T/run.txt" 2>&1 || { cat "$T/run.txt"; fail "the engine cannot run the standard export"; }
/usr/bin/python3 -c "
import numpy as np, sys
e = np.fromfile('$T/emb.f32', '<f4').reshape(4, -1)
sys.exit(0 if e.shape[1] == 16 and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5) else 1)" || fail "standard export: embedding rows are not unit vectors"
mkdir -p "$T/few"
for f in $(ls "$DATA/images" | head -3); do ln -s "$DATA/images/$f" "$T/few/$f"; done
"$VT" embed --model "$T/raw.onnx" --out "$T/few.f32" "$T/few" >"$T/embed.txt" 2>&1 || { cat "$T/embed.txt"; fail "vitrine embed failed on the trained model"; }
[ "$(stat -c %s "$T/few.f32")" -eq $((3 * 16 * 4)) ] || fail "embed wrote $(stat -c %s "$T/few.f32") bytes, expected 3 x 16 floats"
# --embed-mix: a bad part is refused before any photo is decoded; a finished checkpoint is re-exported
# with a mix (no training), same weights, embedding = 16 + articleType classes + baseColour classes
"$VT" train "${ARGS[@]}" --epochs 2 --embed-mix embedding:1,colour:1 -o "$T/bad.onnx" >"$T/bad.txt" 2>&1
[ $? -eq 1 ] && grep -q "'colour', which is not a label column" "$T/bad.txt" || { cat "$T/bad.txt"; fail "a mix naming no head should fail with its name"; }
[ ! -e "$T/bad.onnx" ] || fail "a refused mix still wrote a model"
"$VT" train "${ARGS[@]}" --epochs 2 --resume "$T/full.onnx.ckpt" --checkpoint "$T/mix.ckpt" \
    --embed-mix embedding:1,articleType:1,baseColour:0.5 -o "$T/mix.onnx" >"$T/mix.txt" 2>&1 || { cat "$T/mix.txt"; fail "mix re-export failed"; }
grep -q "^no epoch left to train" "$T/mix.txt" || { cat "$T/mix.txt"; fail "the re-export trained"; }
grep -q "^held-out P@10 (validation items querying all 120 items): [0-9.]* / [0-9.]*" "$T/mix.txt" || { cat "$T/mix.txt"; fail "no held-out P@10"; }
[ "$(grep '^weights hash' "$T/mix.txt")" = "$(grep '^weights hash' "$T/full.txt")" ] || fail "the re-export changed the weights"
if /usr/bin/python3 -c 'import onnx' 2>/dev/null; then
    /usr/bin/python3 - "$T/mix.onnx" <<'PY' || fail "mixed export: wrong embedding size or metadata"
import sys, json, onnx
m = onnx.load(sys.argv[1])
meta = {p.key: p.value for p in m.metadata_props}
n = lambda c: len(json.loads(meta['vitrine.labels.' + c]))
dim = m.graph.output[0].type.tensor_type.shape.dim[1].dim_value
assert m.graph.output[0].name == 'embedding' and dim == 16 + n('articleType') + n('baseColour'), dim
assert meta['vitrine.embedding_mix'] == 'embedding:1,articleType:1,baseColour:0.5'
PY
    /usr/bin/python3 -c "import numpy as np; np.random.default_rng(4).standard_normal((3, 3, 32, 32)).astype('<f4').tofile('$T/x3.f32')"
    "$VT" -q model run "$T/mix.onnx" --input "$T/x3.f32" --shape 3,3,32,32 --tensor embedding --output "$T/mix.f32" >/dev/null 2>&1 || fail "the engine cannot run the mixed export"
    /usr/bin/python3 -c "
import numpy as np, sys
e = np.fromfile('$T/mix.f32', dtype='<f4').reshape(3, -1)
sys.exit(0 if np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5) else 1)" || fail "mixed export: rows are not unit vectors"
fi
echo "cli_train: all passed"
