#!/usr/bin/env bash
# seed-fuzz_decode.sh: a small seed corpus for fuzz_decode: a few catalog JPEGs plus PNG and WebP
# variants (palette, grey, alpha) made with Pillow when it is installed.
set -eu
out=$1
data=$2
ls "$data/images" 2>/dev/null | head -n 8 | while read -r f; do cp "$data/images/$f" "$out/"; done
/usr/bin/python3 - "$out" <<'PY' || true
import sys, io
from PIL import Image
out = sys.argv[1]
im = Image.new("RGB", (24, 16), (200, 30, 30))
for x in range(0, 24, 3):
    for y in range(16):
        im.putpixel((x, y), (10, 10, 250))
im.save(f"{out}/rgb.png")
im.convert("P").save(f"{out}/pal.png")
im.convert("L").save(f"{out}/gray.png")
im.convert("RGBA").save(f"{out}/rgba.png")
im.save(f"{out}/lossy.webp", quality=80)
im.convert("RGBA").save(f"{out}/lossless.webp", lossless=True)
im.convert("L").save(f"{out}/gray.jpg")
im.convert("CMYK").save(f"{out}/cmyk.jpg")
im.save(f"{out}/progressive.jpg", progressive=True)
PY
