#!/usr/bin/env bash
# cli_browser.sh: runs the web page test (tests/browser/shop.test.mjs) in headless Chromium against
# a real `vitrine serve`. Screenshots go to the build folder: browser-artifacts/.
. "$(dirname "$0")/skip.sh"
set -u
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$(dirname "$bin")" && pwd)/browser-artifacts
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
py=/usr/bin/python3
[ -x /usr/bin/chromium ] || vt_skip "chromium missing (apt-get install chromium)"
[ -d "$here/browser/node_modules/playwright-core" ] || vt_skip "playwright-core missing (npm install in tests/browser)"
$py -c 'import onnx, numpy' 2>/dev/null || vt_skip "python3-onnx missing"
$py "$here/e2e/tiny_model.py" "$tmp/tiny.onnx"
"$bin" -q sample-catalog --out "$tmp/cat" --n 150 --size 160 >/dev/null
"$bin" -q ingest --db "$tmp/shop.db" --meta "$tmp/cat/styles.csv" --model "$tmp/tiny.onnx" >/dev/null || exit 1
"$bin" serve --db "$tmp/shop.db" --model "$tmp/tiny.onnx" --port 0 >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
for _ in $(seq 50); do grep -q "serving" "$tmp/serve.out" && break; sleep 0.1; done
url=$(sed -n 's/.* on \(http:[^ ]*\)\/$/\1/p' "$tmp/serve.out")
[ -n "$url" ] || { echo "FAIL: server did not start"; cat "$tmp/serve.err"; exit 1; }
node "$here/browser/shop.test.mjs" "$url" "$tmp/cat/images/5.jpg" "$out"
