#!/usr/bin/env bash
# cli_serve_limits.sh: starts the real `vitrine serve` over a generated catalog and checks from
# outside (tests/e2e/limits_check.py) what one client can cost it: a 100-megapixel PNG of a few
# hundred kilobytes is refused from its header without the server's memory growing, a slowloris
# client is cut after the request timeout, connections beyond the per-address limit are closed,
# uploads beyond the body budget and searches beyond the decode cap get 503 with Retry-After.
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
"$bin" -q sample-catalog --out "$tmp/cat" --n 60 --size 96 >/dev/null
"$bin" -q ingest --db "$tmp/shop.db" --meta "$tmp/cat/styles.csv" --model "$tmp/tiny.onnx" >/dev/null || exit 1
rc=0
# bad limit values are usage errors
for bad in "--max-upload-pixels 0" "--max-decodes 0" "--max-conns-per-ip 0" "--request-timeout 0" \
           "--max-conns 0" "--max-upload-memory 10" "--decode-wait -1"; do
    "$bin" serve --db "$tmp/shop.db" --model "$tmp/tiny.onnx" $bad >/dev/null 2>&1
    [ $? -eq 2 ] && echo "ok   $bad refused" || { echo "FAIL: $bad not refused with exit 2"; rc=1; }
done
timeout_s=3 per_ip=8 upload_mem=4000000
"$bin" serve --db "$tmp/shop.db" --model "$tmp/tiny.onnx" --port 0 --threads 4 --max-decodes 1 --decode-wait 0 \
    --request-timeout $timeout_s --max-conns-per-ip $per_ip --max-upload-memory $upload_mem --max-body 3000000 \
    >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
for _ in $(seq 100); do grep -q "serving" "$tmp/serve.out" && break; sleep 0.1; done
url=$(sed -n 's/.* on \(http:[^ ]*\)$/\1/p' "$tmp/serve.out")
[ -n "$url" ] || { echo "FAIL: server did not start"; cat "$tmp/serve.err"; exit 1; }
echo "server at $url (pid $pid)"
$py "$here/e2e/limits_check.py" "$url" $pid "$tmp/cat/images/3.jpg" $timeout_s $per_ip $upload_mem || rc=1
kill -TERM $pid
wait $pid
stop=$?
pid=
[ $stop -eq 0 ] && echo "ok   clean stop on SIGTERM" || { echo "FAIL: exit $stop after SIGTERM"; rc=1; }
exit $rc
