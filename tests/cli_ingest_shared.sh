#!/usr/bin/env bash
# cli_ingest_shared.sh: ingest of the whole shared catalog (../shared/data/fashion-products) end to
# end, then a re-run that must find everything unchanged, and a filtered similar-items query.
. "$(dirname "$0")/skip.sh"
set -u
bin=$1
data=$2
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -f "$data/styles.csv" ] || vt_skip "shared catalog not found at $data"
/usr/bin/python3 -c 'import onnx, numpy' 2>/dev/null || vt_skip "python3-onnx missing"
/usr/bin/python3 "$here/e2e/tiny_model.py" "$tmp/tiny.onnx"
n=$(($(wc -l < "$data/styles.csv") - 1))
fails=0
"$bin" -q ingest --db "$tmp/shop.db" --meta "$data/styles.csv" --model "$tmp/tiny.onnx" > "$tmp/out"
rc=$?
cat "$tmp/out"
[ $rc -eq 0 ] || { echo "FAIL: exit $rc"; fails=$((fails+1)); }
grep -q "store: $n items, $n embeddings" "$tmp/out" || { echo "FAIL: expected $n items and embeddings"; fails=$((fails+1)); }
"$bin" -q ingest --db "$tmp/shop.db" --meta "$data/styles.csv" --model "$tmp/tiny.onnx" > "$tmp/out2"
grep -q "0 added, 0 updated, $n unchanged, 0 photos embedded" "$tmp/out2" || { echo "FAIL: re-run not a no-op"; cat "$tmp/out2"; fails=$((fails+1)); }
first=$(sed -n '2s/,.*//p' "$data/styles.csv")
"$bin" similar --db "$tmp/shop.db" --model "$tmp/tiny.onnx" "$first" -k 10 --where masterCategory=Footwear --json > "$tmp/sim.json"
/usr/bin/python3 - "$tmp/sim.json" <<'PY' || fails=$((fails+1))
import json, sys
r = json.load(open(sys.argv[1]))["results"]
assert len(r) == 10 and all(x["attributes"]["masterCategory"] == "Footwear" for x in r), r
PY
echo "cli_ingest_shared: $fails failed"
[ $fails -eq 0 ]
