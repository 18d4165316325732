#!/usr/bin/env bash
# cli_serve.sh: starts the real `vitrine serve` on a free port over a generated catalog and checks
# the REST API from outside (tests/e2e/http_check.py): status codes, JSON shapes, error cases.
. "$(dirname "$0")/skip.sh"
set -u
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
py=/usr/bin/python3
if ! $py -c 'import onnx, numpy' 2>/dev/null; then vt_skip "python3-onnx missing"; fi
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
# a store whose gender index is corrupt: similar items and photo search filtered on gender read it,
# and say storage_error (500) without the store's path, not bad_image (422)
cp "$tmp/shop.db" "$tmp/broken.db"
$py - "$tmp/broken.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
page = db.execute("PRAGMA page_size").fetchone()[0]
root = db.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'items_gender'").fetchone()[0]
db.close()
with open(sys.argv[1], "r+b") as f:
    f.seek((root - 1) * page)
    f.write(b"\xff" * page)
PY
"$bin" serve --db "$tmp/broken.db" --model "$tmp/tiny.onnx" --port 0 >"$tmp/serve3.out" 2>"$tmp/serve3.err" &
pid=$!
for _ in $(seq 50); do grep -q "serving" "$tmp/serve3.out" && break; sleep 0.1; done
url=$(sed -n 's/.* on \(http:[^ ]*\)$/\1/p' "$tmp/serve3.out")
if [ -n "$url" ] && $py -c "
import json, sys, urllib.request, urllib.error
base = sys.argv[1].rstrip('/')
def call(path, body=None):
    try:
        r = urllib.request.urlopen(urllib.request.Request(base + path, data=body))
        return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
ok = True
for path, body in (('/api/items/$first/similar?k=3&gender=Men', None), ('/api/search?k=3&gender=Men', open(sys.argv[2], 'rb').read())):
    st, data = call(path, body)
    good = st == 500 and json.loads(data)['error']['code'] == 'storage_error' and sys.argv[3].encode() not in data
    print(('ok   ' if good else 'FAIL ') + path.split('?')[0] + ' on a corrupt index -> 500 storage_error' + ('' if good else ': %d %s' % (st, data)))
    ok = ok and good
st, data = call('/healthz')
print(('ok   ' if st == 503 else 'FAIL ') + 'healthz then says 503' + ('' if st == 503 else ': %d' % st))
sys.exit(0 if ok and st == 503 else 1)" "$url" "$tmp/cat/images/3.jpg" "$tmp"; then
    :
else
    echo "FAIL: server over a corrupt store"; cat "$tmp/serve3.err"; rc=1
fi
kill -TERM $pid; wait $pid; pid=
exit $rc
