#!/usr/bin/env bash
# demo.sh: the main job: ingest a catalog (the shared sample when present, otherwise one vitrine
# draws itself) with a model, then serve the shop front and the REST API.
# Usage: scripts/demo.sh VITRINE_BIN DATA_DIR
# Environment: MODEL (an ONNX file; default models/vitrine-fashion.onnx when present), PORT (8080),
# HOST (127.0.0.1), DEMO_DIR (demo-out), DEMO_SERVE=0 to stop after ingesting.
set -euo pipefail
bin=$1
data=$2
root=$(cd "$(dirname "$0")/.." && pwd)
out=${DEMO_DIR:-demo-out}
port=${PORT:-8080}
mkdir -p "$out"
model=${MODEL:-}
if [ -z "$model" ] && [ -f "$root/models/vitrine-fashion.onnx" ]; then model=$root/models/vitrine-fashion.onnx; fi
if [ -z "$model" ]; then
  echo "demo: no trained model in models/ yet and no MODEL=...; using a small untrained network,"
  echo "demo: so similar items will mostly share colours and shapes, not styles."
  model=$out/untrained.onnx
  /usr/bin/python3 "$root/tests/e2e/tiny_model.py" "$model"
fi
if [ -f "$data/styles.csv" ]; then
  meta=$data/styles.csv
  echo "demo: catalog $data"
else
  echo "demo: no catalog at $data; drawing a sample catalog of 2000 products in $out/catalog"
  [ -f "$out/catalog/styles.csv" ] || "$bin" sample-catalog --out "$out/catalog" --n 2000
  meta=$out/catalog/styles.csv
fi
set +e
"$bin" ingest --db "$out/shop.db" --meta "$meta" --model "$model"
rc=$?
set -e
if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then exit $rc; fi   # 3: some rows rejected, see the report
[ "${DEMO_SERVE:-1}" = 0 ] && exit 0
echo "demo: open http://${HOST:-127.0.0.1}:$port/ (Ctrl-C stops)"
exec "$bin" serve --db "$out/shop.db" --model "$model" --port "$port" --host "${HOST:-127.0.0.1}"
