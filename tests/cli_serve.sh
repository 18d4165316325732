#!/usr/bin/env bash
# cli_serve.sh: starts the real `vitrine serve` on a free port over a generated catalog and checks
# the REST API from outside (tests/e2e/http_check.py): status codes, JSON shapes, error cases.
set -u
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
py=/usr/bin/python3
if ! $py -c 'import onnx, numpy' 2>/dev/null; then echo "python3-onnx missing: skipped"; exit 77; fi
$py "$here/e2e/tiny_model.py" "$tmp/tiny.onnx"
"$bin" -q sample-catalog --out "$tmp/cat" --n 120 --size 96 >/dev/null
"$bin" -q ingest --db "$tmp/shop.db" --meta "$tmp/cat/styles.csv" --model "$tmp/tiny.onnx" >/dev/null || exit 1
"$bin" serve --db "$tmp/shop.db" --model "$tmp/tiny.onnx" --port 0 --max-body 1000000 >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
for _ in $(seq 50); do grep -q "serving" "$tmp/serve.out" && break; sleep 0.1; done
url=$(sed -n 's/.* on \(http:[^ ]*\)$/\1/p' "$tmp/serve.out")
[ -n "$url" ] || { echo "FAIL: server did not start"; cat "$tmp/serve.err"; exit 1; }
echo "server at $url"
$py "$here/e2e/http_check.py" "$url" "$tmp/cat/images/3.jpg"
rc=$?
kill -TERM $pid
wait $pid
stop=$?
pid=
[ $stop -eq 0 ] && echo "ok   clean stop on SIGTERM" || { echo "FAIL: exit $stop after SIGTERM"; rc=1; }
# a --where field the catalog does not have is a usage error naming the fields, not an empty answer
first=$(sed -n '2s/,.*//p' "$tmp/cat/styles.csv")
"$bin" similar --db "$tmp/shop.db" --model "$tmp/tiny.onnx" "$first" --where foo=bar >"$tmp/sim.out" 2>"$tmp/sim.err"
ex=$?
if [ $ex -eq 2 ] && grep -q "unknown --where field 'foo'" "$tmp/sim.err" && grep -q "articleType" "$tmp/sim.err" \
   && ! [ -s "$tmp/sim.out" ]; then
    echo "ok   similar --where foo=bar refused (exit 2, names the fields)"
else
    echo "FAIL: similar --where foo=bar: exit $ex"; cat "$tmp/sim.err" "$tmp/sim.out"; rc=1
fi
"$bin" similar --db "$tmp/shop.db" --model "$tmp/tiny.onnx" "$first" -k 3 --where season=Summer --where Gender=Men >"$tmp/sim.out" 2>&1
ex=$?
[ $ex -eq 0 ] && [ -s "$tmp/sim.out" ] && echo "ok   similar --where on known fields" || { echo "FAIL: similar --where season=Summer: exit $ex"; cat "$tmp/sim.out"; rc=1; }
# a bad --host is refused before the store, the model or the index are loaded
"$bin" serve --db "$tmp/shop.db" --model "$tmp/tiny.onnx" --port 0 --host 0.0.0.O >"$tmp/host.out" 2>"$tmp/host.err"
ex=$?
if [ $ex -eq 2 ] && grep -q "0.0.0.O" "$tmp/host.err" && ! grep -q "indexed" "$tmp/host.err"; then
    echo "ok   --host 0.0.0.O refused before loading"
else
    echo "FAIL: --host 0.0.0.O: exit $ex"; cat "$tmp/host.err"; rc=1
fi
# search settings: bad values are usage errors; good ones serve the same API
"$bin" serve --db "$tmp/shop.db" --model "$tmp/tiny.onnx" --ef 0 >/dev/null 2>&1
[ $? -eq 2 ] && echo "ok   --ef 0 refused" || { echo "FAIL: --ef 0 not refused with exit 2"; rc=1; }
"$bin" serve --db "$tmp/shop.db" --model "$tmp/tiny.onnx" --index-store f64 >/dev/null 2>&1
[ $? -eq 2 ] && echo "ok   --index-store f64 refused" || { echo "FAIL: --index-store f64 not refused with exit 2"; rc=1; }
"$bin" serve --db "$tmp/shop.db" --model "$tmp/tiny.onnx" --port 0 --ef 16 --index-store i8 >"$tmp/serve2.out" 2>"$tmp/serve2.err" &
pid=$!
for _ in $(seq 50); do grep -q "serving" "$tmp/serve2.out" && break; sleep 0.1; done
url=$(sed -n 's/.* on \(http:[^ ]*\)$/\1/p' "$tmp/serve2.out")
if [ -n "$url" ] && $py -c "
import json, sys, urllib.request
sys.argv[1] = sys.argv[1].rstrip('/')
first = json.load(urllib.request.urlopen(sys.argv[1] + '/api/items'))['items'][0]['id']
r = json.load(urllib.request.urlopen(sys.argv[1] + '/api/items/%s/similar?k=5' % first))
sys.exit(0 if len(r['results']) == 5 and all(x['item']['id'] != first for x in r['results']) else 1)" "$url"; then
    echo "ok   --ef 16 --index-store i8 answers similar items"
else
    echo "FAIL: server with --ef 16 --index-store i8"; cat "$tmp/serve2.err"; rc=1
fi
kill -TERM $pid; wait $pid; pid=
exit $rc
