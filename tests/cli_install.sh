#!/usr/bin/env bash
# cli_install.sh: `cmake --install` into a temporary PREFIX, then a small C program finds vitrine
# through pkg-config, compiles, links against the shared library and runs; when the source tree
# has the default model, it is installed and the installed vitrine uses it without --model.
set -eu
. "$(dirname "$0")/skip.sh"
bin=$1
build=$(dirname "$bin")
src=$(cd "$(dirname "$0")/.." && pwd)
if grep -q '^VT_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  vt_skip "sanitizer build: its libraries need the sanitizer runtime to link; checked in the plain build"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
for f in bin/vitrine include/vitrine.h; do
  [ -e "$tmp/prefix/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
if [ -f "$src/models/vitrine-fashion.onnx" ]; then
  share=$(cd "$tmp/prefix/share/vitrine" 2>/dev/null && pwd -P) || share=$tmp/prefix/share/vitrine
  [ -f "$share/vitrine-fashion.onnx" ] && [ -f "$share/MODEL.md" ] \
    || { echo "FAIL: default model not installed to share/vitrine/ (build configured before it was added? re-run cmake)"; exit 1; }
  cmp -s "$src/models/vitrine-fashion.onnx" "$share/vitrine-fashion.onnx" || { echo "FAIL: installed model differs"; exit 1; }
  "$tmp/prefix/bin/vitrine" -q sample-catalog --out "$tmp/cat" --n 2 >/dev/null
  env -u VITRINE_MODEL "$tmp/prefix/bin/vitrine" embed --out "$tmp/x.f32" "$tmp/cat/images" >/dev/null 2>"$tmp/err" \
    || { echo "FAIL: installed vitrine embed without --model"; cat "$tmp/err"; exit 1; }
  grep -qF "embed: model $share/vitrine-fashion.onnx (default)" "$tmp/err" \
    || { echo "FAIL: installed vitrine did not use its installed default model"; cat "$tmp/err"; exit 1; }
  echo "cli_install: default model installed and used"
else
  echo "cli_install: no models/vitrine-fashion.onnx in the source tree: default model not installed"
fi
libdir=$(dirname "$(find "$tmp/prefix" -name vitrine.pc | head -n 1)")/..
[ -e "$libdir/libvitrine.so" ] && [ -e "$libdir/libvitrine.a" ] || { echo "FAIL: libraries not installed"; exit 1; }
cat > "$tmp/shop.c" <<'C'
#include <vitrine.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    vt_image img;
    int rc = vt_image_decode("hello", 5, "hello.txt", NULL, &img);
    if (rc != VT_ENOTIMAGE) return 1;
    printf("%s | %s | %s\n", VT_VERSION_STRING, vt_strerror(rc), vt_errmsg());
    return strstr(vt_errmsg(), "hello.txt") ? 0 : 1;
}
C
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c17 -Wall -Werror "$tmp/shop.c" -o "$tmp/shop" $(pkg-config --cflags --libs vitrine)
out=$(LD_LIBRARY_PATH="$libdir" "$tmp/shop")
echo "$out"
case "$out" in *"not an image"*) echo "cli_install: ok" ;; *) echo "FAIL: unexpected output"; exit 1 ;; esac
