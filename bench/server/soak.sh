#!/usr/bin/env bash
# soak.sh: a long run of `vitrine serve` (default limits) under wrk on similar items and photo
# search at once, a slowloris client and a decompression-bomb client, all on 127.0.0.1
# (bench/server/soak.py): 5xx other than the documented 503s, RSS every 10 s (the last minute
# within 5 % of the second), open descriptors (flat).
# Usage: bench/server/soak.sh [BUILD_DIR]
#   DURATION=600  seconds of load (default 600)
#   N=300         items of the generated catalog (vitrine sample-catalog), ingested with MODEL
#   MODEL=...     ONNX model (default: models/vitrine-fashion.onnx)
#   WORK=DIR      keep the catalog there and reuse it (default: a temporary directory)
#   SERVE_ARGS="" extra `vitrine serve` arguments
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$(cd "${1:-$root/build}" && pwd)/vitrine
duration=${DURATION:-600}
n=${N:-300}
model=${MODEL:-$root/models/vitrine-fashion.onnx}
command -v wrk >/dev/null || { echo "soak: wrk is missing (scripts/deps.sh peer)"; exit 1; }
[ -x "$bin" ] || { echo "soak: no $bin (make build)"; exit 1; }
if [ -n "${WORK:-}" ]; then work=$WORK; mkdir -p "$work"; keep=1; else work=$(mktemp -d); keep=0; fi
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; [ $keep = 0 ] && rm -rf "$work"' EXIT
if [ ! -f "$work/shop.db" ]; then
    echo "soak: catalog of $n items, ingested with $model"
    "$bin" -q sample-catalog --out "$work/cat" --n "$n" --size 256 >/dev/null || exit 1
    "$bin" -q ingest --db "$work/shop.db" --meta "$work/cat/styles.csv" --model "$model" >/dev/null || exit 1
fi
# shellcheck disable=SC2086
"$bin" serve --db "$work/shop.db" --model "$model" --port 0 ${SERVE_ARGS:-} >"$work/serve.out" 2>"$work/serve.err" &
pid=$!
for _ in $(seq 300); do grep -q "serving" "$work/serve.out" && break; sleep 0.1; done
url=$(sed -n 's/.* on \(http:[^ ]*\)$/\1/p' "$work/serve.out")
[ -n "$url" ] || { echo "soak: server did not start"; cat "$work/serve.err"; exit 1; }
echo "soak: server $url (pid $pid), $duration s, $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "soak: CPU flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^avx512(f|bw|vl|_vnni|_bf16)$|^avx2$' | tr '\n' ' ')"
/usr/bin/python3 "$here/soak.py" "$url" $pid "$duration" "$work/cat/images/3.jpg" "$work"
rc=$?
kill -TERM $pid
wait $pid
stop=$?
pid=
[ $stop -eq 0 ] || { echo "soak: server exit $stop after SIGTERM"; rc=1; }
exit $rc
