#!/usr/bin/env bash
# cli_preprocess.sh: black-box checks of `vitrine preprocess`, --help, --version and exit codes.
set -u
bin=$1
data=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # check NAME EXPECTED_EXIT CMD...
  local name=$1 want=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL $name: exit $got, expected $want"; cat "$tmp/out" "$tmp/err"; fails=$((fails + 1))
  else
    echo "ok   $name"
  fi
}
has() { # has NAME FILE TEXT
  if grep -q -- "$3" "$2"; then echo "ok   $1"; else echo "FAIL $1: '$3' not in output:"; cat "$2"; fails=$((fails + 1)); fi
}

check version 0 "$bin" --version
has version-text "$tmp/out" "vitrine 0."
check help 0 "$bin" --help
has help-lists-preprocess "$tmp/out" "preprocess"
check preprocess-help 0 "$bin" preprocess --help
has preprocess-help-text "$tmp/out" "--augment"
check no-command 2 "$bin"
check unknown-command 2 "$bin" frobnicate
check missing-output 2 "$bin" preprocess x.jpg
check bad-size 2 "$bin" preprocess x.jpg -o y.png --size 0

# A generated (non-square) input made by vitrine itself: write a 224 PNG, then letterbox it to 96.
img=$(ls "$data/images" 2>/dev/null | head -n 1)
if [ -n "$img" ]; then
  check real-photo 0 "$bin" preprocess "$data/images/$img" -o "$tmp/a.png" --size 96
  has real-photo-text "$tmp/out" "letterboxed to 96x96"
  check real-photo-160 0 "$bin" preprocess "$data/images/$img" -o "$tmp/a160.png" --size 160 --fit stretch
  has real-photo-160-text "$tmp/out" "decoded 224x224, stretched to 160x160"
  check reread 0 "$bin" preprocess "$tmp/a.png" -o "$tmp/b.png" --size 96
  has reread-size "$tmp/out" "decoded 96x96"
  check augment 0 "$bin" preprocess "$data/images/$img" -o "$tmp/c.png" --augment --seed 3
  check augment-again 0 "$bin" preprocess "$data/images/$img" -o "$tmp/d.png" --augment --seed 3
  if cmp -s "$tmp/c.png" "$tmp/d.png"; then echo "ok   augment-deterministic"; else echo "FAIL augment-deterministic"; fails=$((fails+1)); fi
  mkdir "$tmp/dir"
  for f in $(ls "$data/images" | head -n 20); do cp "$data/images/$f" "$tmp/dir/"; done
  printf 'not an image' > "$tmp/dir/broken.jpg"
  check bench-partial 3 "$bin" -q preprocess --bench "$tmp/dir" --threads 2
  has bench-count "$tmp/out" "21 images (1 failed)"
  rm "$tmp/dir/broken.jpg"
  check bench 0 "$bin" -q preprocess --bench "$tmp/dir" --threads 2
  has bench-rate "$tmp/out" "images/s"
fi
check missing-file 1 "$bin" preprocess "$tmp/nope.jpg" -o "$tmp/x.png"
has missing-file-msg "$tmp/err" "nope.jpg"
printf 'hello' > "$tmp/text.jpg"
check text-file 1 "$bin" preprocess "$tmp/text.jpg" -o "$tmp/x.png"
has text-file-msg "$tmp/err" "not an image"
[ ! -e "$tmp/x.png" ] && echo "ok   no-partial-output" || { echo "FAIL no-partial-output"; fails=$((fails+1)); }

echo "cli_preprocess: $fails failed"
[ "$fails" -eq 0 ]
