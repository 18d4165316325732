#!/usr/bin/env bash
# cli_catalog.sh: black-box test of `vitrine sample-catalog`: files, header, determinism, errors.
# Args: path of the vitrine binary, data dir (unused).
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export VITRINE_PROGRESS=0

"$bin" sample-catalog --out "$tmp/a" --n 30 --seed 4 > "$tmp/out.txt" || fail "sample-catalog exited $?"
grep -q "30 items" "$tmp/out.txt" || fail "summary line: $(cat "$tmp/out.txt")"
[ "$(ls "$tmp/a/images" | wc -l)" -eq 30 ] || fail "expected 30 images, got $(ls "$tmp/a/images" | wc -l)"
[ "$(wc -l < "$tmp/a/styles.csv")" -eq 31 ] || fail "expected 31 lines in styles.csv"
head -n1 "$tmp/a/styles.csv" | grep -qx 'id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName' \
  || fail "header: $(head -n1 "$tmp/a/styles.csv")"
# every row names an image that exists and is a JPEG (FF D8 FF)
tail -n +2 "$tmp/a/styles.csv" | while IFS=, read -r id rest; do
  f="$tmp/a/images/$id.jpg"
  [ -s "$f" ] || fail "missing $f"
  [ "$(head -c 3 "$f" | od -An -tx1 | tr -d ' \n')" = "ffd8ff" ] || fail "$f is not a JPEG"
  [ "$(echo "$rest" | tr ',' '\n' | wc -l)" -eq 9 ] || fail "row $id does not have 10 fields"
done || exit 1
# the same seed gives the same bytes, another seed other ones
"$bin" sample-catalog --out "$tmp/b" --n 30 --seed 4 --threads 1 > /dev/null || fail "second run"
diff -r "$tmp/a" "$tmp/b" > /dev/null || fail "same seed, different output"
"$bin" sample-catalog --out "$tmp/c" --n 30 --seed 5 > /dev/null || fail "third run"
cmp -s "$tmp/a/styles.csv" "$tmp/c/styles.csv" && fail "another seed gave the same styles.csv"
# the image size option
"$bin" sample-catalog --out "$tmp/d" --n 2 --size 96 > /dev/null || fail "--size 96"
/usr/bin/python3 -c "import sys; from PIL import Image; sys.exit(0 if Image.open(sys.argv[1]).size == (96, 96) else 1)" \
  "$tmp/d/images/1.jpg" 2>/dev/null; rc=$?
[ $rc -eq 0 ] || [ $rc -eq 1 -a ! -x /usr/bin/python3 ] || fail "--size 96 did not give 96x96 (python rc $rc)"
# usage errors exit 2, runtime failures exit 1
"$bin" sample-catalog --n 3 > /dev/null 2>&1; [ $? -eq 2 ] || fail "missing --out should exit 2"
"$bin" sample-catalog --out "$tmp/e" --n 0 > /dev/null 2>&1; [ $? -eq 2 ] || fail "--n 0 should exit 2"
"$bin" sample-catalog --out "$tmp/e" --n x > /dev/null 2>&1; [ $? -eq 2 ] || fail "--n x should exit 2"
"$bin" sample-catalog --out "$tmp/e" extra > /dev/null 2>&1; [ $? -eq 2 ] || fail "extra argument should exit 2"
touch "$tmp/file"
"$bin" sample-catalog --out "$tmp/file" --n 2 > /dev/null 2>&1; [ $? -eq 1 ] || fail "output onto a file should exit 1"
"$bin" sample-catalog --help | grep -q "styles.csv" || fail "--help"
echo "cli_catalog: ok"
