#!/usr/bin/env bash
# cli_ingest.sh: end-to-end checks of `vitrine ingest`, `similar` and `search` on a generated
# catalog: counts, every bad-input case in the error report, incremental re-runs, --prune,
# filters, and a run killed with SIGKILL then restarted.
. "$(dirname "$0")/skip.sh"
set -u
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
expect_exit() { # NAME WANT CMD...
  local name=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?
  if [ "$got" -eq "$want" ]; then ok "$name"; else bad "$name: exit $got, expected $want"; cat "$tmp/out" "$tmp/err"; fi
}
has() { if grep -q -- "$3" "$2"; then ok "$1"; else bad "$1: '$3' not in $2:"; cat "$2"; fi; }
py=/usr/bin/python3
if ! $py -c 'import onnx, numpy' 2>/dev/null; then vt_skip "python3-onnx missing"; fi
$py "$here/e2e/tiny_model.py" "$tmp/tiny.onnx" || { bad "tiny model"; exit 1; }
M="--model $tmp/tiny.onnx"

"$bin" -q sample-catalog --out "$tmp/cat" --n 80 --size 96 >/dev/null || { bad "sample catalog"; exit 1; }
cp -r "$tmp/cat" "$tmp/good"

# ---- bad input: a malformed row, a duplicate id, a missing id, a missing photo, a corrupt photo
feed=$tmp/cat/styles.csv
echo '9001,Men,Apparel,Topwear,Tshirts,Red,Summer,2012,Casual,Shirt, with, commas' >> "$feed"
sed -n '2p' "$feed" >> "$feed"                                  # duplicate of the first id
echo ',Men,Apparel,Topwear,Tshirts,Red,Summer,2012,Casual,No id' >> "$feed"
echo '9002,Women,Apparel,Topwear,Tops,Blue,Summer,2012,Casual,No photo' >> "$feed"
echo '9003,Women,Apparel,Topwear,Tops,Blue,Summer,2012,Casual,Broken photo' >> "$feed"
printf 'this is not a jpeg' > "$tmp/cat/images/9003.jpg"
db=$tmp/shop.db
expect_exit ingest-partial 3 "$bin" -q ingest --db "$db" --meta "$feed" $M
has summary-counts "$tmp/out" "82 added"
has summary-rejected "$tmp/out" "5 rejected"
rep=$db.errors.jsonl
[ "$(wc -l < "$rep")" -eq 5 ] && ok "report has 5 lines" || { bad "report lines"; cat "$rep"; }
has report-malformed "$rep" 'fields but the header has'
has report-duplicate "$rep" 'duplicate'
has report-missing-id "$rep" '"reason"'
has report-no-photo "$rep" '"id":"9002"'
has report-broken-photo "$rep" 'not an image'
$py - "$rep" <<'PY' && ok "report lines are JSON with file, line, reason" || bad "report JSON"
import json, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    assert o["file"].endswith("styles.csv") and o["line"] > 1 and o["reason"], o
PY
has store-count "$tmp/out" "store: 82 items, 80 embeddings"

# ---- incremental: nothing changes on a second run; a changed photo is re-embedded
expect_exit rerun 3 "$bin" -q ingest --db "$db" --meta "$feed" $M
has rerun-unchanged "$tmp/out" "0 added, 0 updated"
has rerun-no-embed "$tmp/out" "0 photos embedded"
cp "$tmp/cat/images/2.jpg" "$tmp/cat/images/1.jpg"
touch -d '2001-01-01' "$tmp/cat/images/1.jpg"
expect_exit changed-photo 3 "$bin" -q ingest --db "$db" --meta "$feed" $M
has changed-photo-embedded "$tmp/out" "1 photos embedded"

# ---- queries: the item itself is excluded; filters apply inside the search
expect_exit similar 0 "$bin" similar --db "$db" $M 5 -k 5 --json
$py - "$tmp/out" <<'PY' && ok "similar: 5 results, not the query" || bad "similar results"
import json, sys
r = json.load(open(sys.argv[1]))
ids = [x["id"] for x in r["results"]]
assert len(ids) == 5 and "5" not in ids and len(set(ids)) == 5, ids
s = [x["score"] for x in r["results"]]
assert s == sorted(s, reverse=True), s
PY
expect_exit similar-filter 0 "$bin" similar --db "$db" $M 5 -k 50 --where gender=Women --where articleType=Handbags --json
$py - "$tmp/out" "$feed" <<'PY' && ok "filter: every result matches, and all matching items come back" || bad "filter results"
import csv, json, sys
r = json.load(open(sys.argv[1]))
rows = [x for x in csv.reader(open(sys.argv[2]))][1:]
want = {x[0] for x in rows if len(x) == 10 and x[1] == "Women" and x[4] == "Handbags" and x[0] not in ("5", "9003")}
got = [x["id"] for x in r["results"]]
assert all(x["attributes"]["gender"] == "Women" and x["attributes"]["articleType"] == "Handbags" for x in r["results"])
assert set(got) == want, (sorted(got), sorted(want))
PY
expect_exit similar-unknown 1 "$bin" similar --db "$db" $M nope
has similar-unknown-msg "$tmp/err" "nope"
expect_exit search 0 "$bin" search --db "$db" $M --image "$tmp/good/images/7.jpg" -k 3 --json
$py - "$tmp/out" <<'PY' && ok "search: the photo's own item comes first" || bad "search first"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["results"][0]["id"] == "7" and r["results"][0]["score"] > 0.999, r["results"][0]
PY
expect_exit search-not-image 1 "$bin" search --db "$db" $M --image "$tmp/cat/images/9003.jpg"

# ---- the built index is cached beside the store and rebuilt only when the embeddings change
rm -f "$db".tiny.*.vti*
"$bin" -v similar --db "$db" $M 5 -k 3 > "$tmp/a.txt" 2> "$tmp/log1"
has index-saved "$tmp/log1" "saved the index"
"$bin" -v similar --db "$db" $M 5 -k 3 > "$tmp/b.txt" 2> "$tmp/log2"
has index-loaded "$tmp/log2" "loaded the index"
cmp -s "$tmp/a.txt" "$tmp/b.txt" && ok "cached index gives the same answer" || bad "cached index answer differs"
cp "$tmp/cat/images/3.jpg" "$tmp/cat/images/5.jpg"
"$bin" -q ingest --db "$db" --meta "$feed" $M > /dev/null
"$bin" -v similar --db "$db" $M 5 -k 3 > "$tmp/c.txt" 2> "$tmp/log3"
has index-rebuilt-after-ingest "$tmp/log3" "saved the index"
grep -q "^ 1  3 " "$tmp/c.txt" && ok "rebuilt index sees the new photo (item 3 is now the closest)" || { bad "rebuilt index"; cat "$tmp/c.txt"; }

# ---- --prune removes items that left the feed
head -n 71 "$tmp/good/styles.csv" > "$tmp/short.csv"     # header + 70 items
expect_exit prune 0 "$bin" -q ingest --db "$db" --meta "$tmp/short.csv" --images "$tmp/cat/images" $M --prune
has prune-count "$tmp/out" "12 pruned"
has prune-store "$tmp/out" "store: 70 items"

# ---- killed mid-ingest with SIGKILL, restarted: same items and embeddings as an uninterrupted run
"$bin" -q sample-catalog --out "$tmp/big" --n 600 --size 96 >/dev/null
"$bin" -q ingest --db "$tmp/ref.db" --meta "$tmp/big/styles.csv" $M --batch 8 >/dev/null
# Start the ingest, wait until its first batches are committed, then SIGKILL it mid-run.
$py - "$bin" "$tmp/k.db" "$tmp/big/styles.csv" "$tmp/tiny.onnx" <<'PY' && ok "ingest killed mid-run" || bad "could not kill the ingest mid-run"
import os, signal, sqlite3, subprocess, sys, time
binary, db, meta, model = sys.argv[1:]
p = subprocess.Popen([binary, "-q", "ingest", "--db", db, "--meta", meta, "--model", model, "--batch", "4"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
n = 0
deadline = time.time() + 120
while p.poll() is None and time.time() < deadline:
    try:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
        n = c.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        c.close()
    except sqlite3.Error:
        n = 0
    if n > 0:
        break
    time.sleep(0.005)
alive = p.poll() is None
p.send_signal(signal.SIGKILL)
p.wait()
print(f"killed with {n} of 600 embeddings committed" if alive else "ingest ended before the kill")
sys.exit(0 if alive and 0 < n < 600 else 1)
PY
expect_exit resume 0 "$bin" -q ingest --db "$tmp/k.db" --meta "$tmp/big/styles.csv" $M --batch 8
$py - "$tmp/ref.db" "$tmp/k.db" <<'PY' && ok "killed + resumed store equals the uninterrupted one" || bad "store after kill differs"
import sqlite3, struct, sys
def dump(p):
    c = sqlite3.connect(p)
    items = {r[0]: r[1:] for r in c.execute("SELECT id, attrs, image, hash FROM items")}
    emb = {r[0]: struct.unpack("%df" % r[1], r[2]) for r in c.execute(
        "SELECT i.id, e.dim, e.vec FROM embeddings e JOIN items i ON i.label = e.label")}
    return items, emb
(ia, ea), (ib, eb) = dump(sys.argv[1]), dump(sys.argv[2])
assert ia == ib, "items differ"
assert ea.keys() == eb.keys() and len(ea) == 600, (len(ea), len(eb))
for k in ea:
    assert max(abs(x - y) for x, y in zip(ea[k], eb[k])) < 1e-5, k
PY

echo "cli_ingest: $fails failed"
[ "$fails" -eq 0 ]
