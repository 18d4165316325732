#!/usr/bin/env bash
# cli_serve_hostile.sh: `vitrine serve` over stores a hostile or broken feed can produce: photo paths
# naming /etc/passwd, a symlink, a FIFO, a device, a directory or a text file; ids that need
# percent-encoding; a store whose index pages are corrupt. Checked from outside by
# tests/e2e/hostile_check.py. The rows are rewritten with python3's sqlite3 after ingest, so the
# server is tested on its own, whatever ingest accepts.
set -u
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
py=/usr/bin/python3
$py -c 'import sqlite3' 2>/dev/null || { echo "python3 sqlite3 missing: skipped"; exit 77; }
cd "$tmp" || exit 1
"$bin" -q sample-catalog --out cat --n 4 --size 48 >/dev/null || exit 1
mkdir files
cp cat/images/1.jpg files/photo.jpg
$py - files/photo.png files/photo.webp <<'PY'
import struct, sys, zlib
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
# a WebP container header: the server only looks at the magic bytes of what it serves
open(sys.argv[2], "wb").write(b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00")
PY
printf 'root:x:0:0:not a photo\n' > files/fake.jpg
ln -s photo.jpg files/link.jpg
mkfifo files/fifo.jpg
{
    echo "id,gender,articleType,productDisplayName"
    for id in abs1 good1 png1 webp1 fake1 link1 fifo1 dir1 dev1 rel1 'a#b' 'x?y' 'a b' noimg; do
        echo "$id,Men,Shirts,Item $id"
    done
} > feed.csv
"$bin" -q ingest --db shop.db --meta feed.csv --images files --no-embed >/dev/null
[ -s shop.db ] || { echo "FAIL: ingest made no store"; exit 1; }
$py - shop.db "$tmp" <<'PY'
import sqlite3, sys
tmp = sys.argv[2]
paths = {"abs1": "/etc/passwd", "good1": tmp + "/files/photo.jpg", "png1": tmp + "/files/photo.png",
         "webp1": tmp + "/files/photo.webp", "fake1": tmp + "/files/fake.jpg", "link1": tmp + "/files/link.jpg",
         "fifo1": tmp + "/files/fifo.jpg", "dir1": tmp + "/files", "dev1": "/dev/zero", "rel1": "files/photo.jpg",
         "a#b": tmp + "/files/photo.jpg", "x?y": tmp + "/files/photo.jpg", "a b": tmp + "/files/photo.jpg",
         "noimg": None}
db = sqlite3.connect(sys.argv[1])
for k, v in paths.items():
    db.execute("UPDATE items SET image = ? WHERE id = ?", (v, k))
# an id that is not UTF-8 (vitrine ingest refuses one; an old or foreign store may hold it)
db.execute("INSERT INTO items(id, attrs, image) VALUES(CAST(X'626164ff' AS TEXT), '{\"gender\":\"Men\"}', NULL)")
db.commit()
db.close()
PY

# start_server DB: starts `vitrine serve` in the background (cwd $tmp); sets pid and url
start_server() {
    "$bin" serve --db "$1" --model-name none --port 0 >"$tmp/serve.out" 2>"$tmp/serve.err" &
    pid=$!
    url=
    for _ in $(seq 50); do grep -q "serving" "$tmp/serve.out" && break; sleep 0.1; done
    url=$(sed -n 's/.* on \(http:[^ ]*\)$/\1/p' "$tmp/serve.out")
    [ -n "$url" ] || { echo "FAIL: server did not start"; cat "$tmp/serve.err"; exit 1; }
}
stop_server() {
    kill -TERM $pid
    for _ in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
    if kill -0 $pid 2>/dev/null; then
        echo "FAIL: the server does not stop on SIGTERM (a worker is stuck)"
        kill -KILL $pid
        rc=1
    fi
    wait $pid 2>/dev/null
    local ex=$?
    pid=
    # a clean stop, and nothing from the sanitizers in a SANITIZE=1 build
    if [ $ex -ne 0 ] || grep -qE "AddressSanitizer|LeakSanitizer|runtime error" "$tmp/serve.err"; then
        echo "FAIL: the server stopped with exit $ex"; cat "$tmp/serve.err"; rc=1
    fi
}

rc=0
start_server shop.db
$py "$here/e2e/hostile_check.py" "$url" images || rc=1
stop_server
# rel1's path is relative: the store does not say where ingest ran, so the server says where it reads
if grep -q "1 items have photo paths relative to the folder vitrine ingest ran in.* $tmp\$" "$tmp/serve.err"; then
    echo "ok   relative photo paths are announced with the folder they are read from"
else
    echo "FAIL: no warning about relative photo paths"; cat "$tmp/serve.err"; rc=1
fi

# The same store with the pages of one index overwritten: the server starts (it reads the table),
# and requests that use the index fail.
cp shop.db broken.db
$py - broken.db <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
page = db.execute("PRAGMA page_size").fetchone()[0]
root = db.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'items_gender'").fetchone()[0]
db.close()
with open(sys.argv[1], "r+b") as f:
    f.seek((root - 1) * page)
    f.write(b"\xff" * page)
PY
start_server "$tmp/broken.db"
$py "$here/e2e/hostile_check.py" "$url" broken "$tmp" || rc=1
stop_server
if grep -q "malformed" "$tmp/serve.err"; then
    echo "ok   the storage fault is logged in full on the server's stderr"
else
    echo "FAIL: the storage fault is not in the server's log"; cat "$tmp/serve.err"; rc=1
fi
exit $rc
