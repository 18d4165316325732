#!/usr/bin/env bash
# cli_default_model.sh: commands given no --model use the default model: $VITRINE_MODEL, else
# vitrine-fashion.onnx in ../models or ../share/vitrine beside the binary; --no-embed; the errors.
. "$(dirname "$0")/skip.sh"
set -u
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
T=$(cd "$(mktemp -d)" && pwd -P) # canonical, as /proc/self/exe is
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$T"' EXIT
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
expect_exit() { # NAME WANT CMD...: runs CMD (stdout in $T/out, stderr in $T/err), checks its exit status
  local name=$1 want=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local got=$?
  if [ "$got" -eq "$want" ]; then ok "$name"; else bad "$name: exit $got, expected $want"; cat "$T/out" "$T/err"; fi
}
has() { if grep -qF -- "$3" "$2"; then ok "$1"; else bad "$1: '$3' not in $2:"; cat "$2"; fi; }
hasnt() { if grep -qF -- "$3" "$2"; then bad "$1: '$3' in $2:"; cat "$2"; else ok "$1"; fi; }
py=/usr/bin/python3
if ! $py -c 'import onnx, numpy' 2>/dev/null; then vt_skip "python3-onnx missing"; fi
$py "$here/e2e/tiny_model.py" "$T/tiny.onnx" || { bad "tiny model"; exit 1; }
"$bin" -q sample-catalog --out "$T/cat" --n 30 >/dev/null || { bad "sample catalog"; exit 1; }
photo=$T/cat/images/7.jpg

# serve_search NAME WANT_HTTP_STATUS BIN ARGS...: starts `BIN serve ARGS --port 0` (stderr in
# $T/serve.err), POSTs $photo to /api/search, checks the status (200: results from model 'tiny'
# or 'vitrine-fashion'), stops the server with SIGTERM.
serve_search() {
  local name=$1 want=$2 b=$3; shift 3
  "$b" serve "$@" --port 0 >"$T/serve.out" 2>"$T/serve.err" &
  pid=$!
  for _ in $(seq 100); do grep -q "serving" "$T/serve.out" && break; sleep 0.1; done
  local url
  url=$(sed -n 's/.* on \(http:[^ ]*\)$/\1/p' "$T/serve.out")
  if [ -z "$url" ]; then
    bad "$name: server did not start"; cat "$T/serve.err"
  else
    $py - "$url" "$photo" "$want" <<'PY' && ok "$name: POST /api/search answers $want" || bad "$name: /api/search"
import json, sys, urllib.error, urllib.request
url, photo, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
req = urllib.request.Request(url + "api/search?k=3", data=open(photo, "rb").read(), method="POST")
try:
    r = urllib.request.urlopen(req, timeout=30)
    status, body = r.status, json.load(r)
except urllib.error.HTTPError as e:
    status, body = e.code, None
assert status == want, status
if want == 200:
    assert body["model"] in ("tiny", "vitrine-fashion") and len(body["results"]) == 3, body
    assert body["results"][0]["item"]["id"] == "7", body["results"][0]
PY
  fi
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=
}

# ---- VITRINE_MODEL names the model every command uses without --model
export VITRINE_MODEL=$T/tiny.onnx
expect_exit embed 0 "$bin" embed --out "$T/x.f32" "$T/cat/images"
[ -f "$T/x.f32" ] && [ "$(stat -c %s "$T/x.f32")" -eq $((30 * 16 * 4)) ] \
  && ok "embed: 30 x 16 float32 written" || bad "embed: x.f32 is not 30 x 16 float32"
has embed-note "$T/err" "embed: model $T/tiny.onnx (default)"
"$bin" -q embed --model "$T/tiny.onnx" --out "$T/ref.f32" "$T/cat/images" >/dev/null 2>&1
cmp -s "$T/x.f32" "$T/ref.f32" && ok "embed: same vectors as with --model" || bad "embed: vectors differ from --model"
expect_exit embed-quiet 0 "$bin" -q embed --out "$T/q.f32" "$T/cat/images"
hasnt embed-quiet-no-note "$T/err" "(default)"

expect_exit ingest 0 "$bin" ingest --db "$T/shop.db" --meta "$T/cat/styles.csv"
has ingest-note "$T/err" "ingest: model $T/tiny.onnx (default)"
has ingest-embedded "$T/out" "30 photos embedded"
has ingest-stored-as-tiny "$T/out" "store: 30 items, 30 embeddings for model 'tiny'"
expect_exit similar-model-name 0 "$bin" similar --db "$T/shop.db" --model-name tiny 5 -k 4 --json
$py - "$T/out" <<'PY' && ok "similar --model-name tiny: 4 results" || bad "similar --model-name tiny results"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["model"] == "tiny" and len(r["results"]) == 4 and "5" not in [x["id"] for x in r["results"]], r
PY

expect_exit search 0 "$bin" search --db "$T/shop.db" --image "$photo" -k 3 --json
has search-note "$T/err" "search: model $T/tiny.onnx (default)"
$py - "$T/out" <<'PY' && ok "search: the photo's own item comes first" || bad "search results"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["model"] == "tiny" and len(r["results"]) == 3, r
assert r["results"][0]["id"] == "7" and r["results"][0]["score"] > 0.999, r["results"][0]
PY

expect_exit similar 0 "$bin" similar --db "$T/shop.db" 5 -k 4 --json
has similar-note "$T/err" "similar: model tiny (default)"
$py - "$T/out" <<'PY' && ok "similar: model 'tiny', 4 results" || bad "similar default name"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["model"] == "tiny" and len(r["results"]) == 4, r
PY

serve_search serve 200 "$bin" --db "$T/shop.db"
has serve-note "$T/serve.err" "serve: model $T/tiny.onnx (default)"
has serve-indexed "$T/serve.err" "indexed 30 embeddings of model 'tiny'"

# ---- a VITRINE_MODEL that is not a readable file is an error, not a silent fallback
for cmd in embed ingest search serve; do
  case $cmd in
    embed) args=(embed --out "$T/bad.f32" "$photo") ;;
    ingest) args=(ingest --db "$T/bad.db" --meta "$T/cat/styles.csv") ;;
    search) args=(search --db "$T/shop.db" --image "$photo") ;;
    serve) args=(serve --db "$T/shop.db" --port 0) ;;
  esac
  # (timeout: a serve that started anyway would run until killed, exit 124)
  expect_exit "bad-env-$cmd" 1 timeout 60 env VITRINE_MODEL=/nonexistent.onnx "$bin" "${args[@]}"
  has "bad-env-$cmd-names-variable" "$T/err" "VITRINE_MODEL=/nonexistent.onnx"
done
[ ! -e "$T/bad.f32" ] && [ ! -e "$T/bad.db" ] && ok "bad VITRINE_MODEL: nothing written" || bad "bad VITRINE_MODEL wrote output"
expect_exit bad-env-directory 1 env VITRINE_MODEL="$T" "$bin" embed --out "$T/bad.f32" "$photo"
has bad-env-directory-msg "$T/err" "not a regular file"

# ---- --no-embed: the items only, no model needed (even a bad VITRINE_MODEL is not looked at)
expect_exit no-embed 0 env -u VITRINE_MODEL "$bin" ingest --db "$T/meta.db" --meta "$T/cat/styles.csv" --no-embed
has no-embed-stored "$T/out" "store: 30 items, 0 embeddings"
has no-embed-nothing-embedded "$T/out" "0 photos embedded"
expect_exit no-embed-bad-env 0 env VITRINE_MODEL=/nonexistent.onnx "$bin" ingest --db "$T/meta.db" --meta "$T/cat/styles.csv" --no-embed
has no-embed-bad-env-unchanged "$T/out" "0 added, 0 updated, 30 unchanged"
expect_exit no-embed-with-model 2 "$bin" ingest --db "$T/meta.db" --meta "$T/cat/styles.csv" --no-embed --model "$T/tiny.onnx"
unset VITRINE_MODEL

# ---- no VITRINE_MODEL: the binary's own tree. A copy of the binary in a build-tree layout
# (T/bt/build/vitrine, T/bt/models/) and in an installed layout (T/it/bin/vitrine, T/it/share/vitrine/).
mkdir -p "$T/bt/build" "$T/bt/models" "$T/it/bin" "$T/it/share/vitrine" "$T/none/bin"
cp "$bin" "$T/bt/build/vitrine" && cp "$bin" "$T/it/bin/vitrine" && cp "$bin" "$T/none/bin/vitrine"
cp "$T/tiny.onnx" "$T/bt/models/vitrine-fashion.onnx"
$py "$here/e2e/tiny_model.py" "$T/it/share/vitrine/vitrine-fashion.onnx" --seed 2
expect_exit build-tree-embed 0 "$T/bt/build/vitrine" embed --out "$T/bt.f32" "$T/cat/images"
has build-tree-note "$T/err" "embed: model $T/bt/models/vitrine-fashion.onnx (default)"
cmp -s "$T/bt.f32" "$T/ref.f32" && ok "build tree: the vectors of models/vitrine-fashion.onnx" || bad "build tree: vectors differ"
expect_exit build-tree-ingest 0 "$T/bt/build/vitrine" ingest --db "$T/bt.db" --meta "$T/cat/styles.csv"
has build-tree-ingest-name "$T/out" "30 embeddings for model 'vitrine-fashion'"
expect_exit build-tree-similar 0 "$T/bt/build/vitrine" similar --db "$T/bt.db" 5 -k 2 --json
has build-tree-similar-name "$T/out" '"model": "vitrine-fashion"'
expect_exit installed-tree-embed 0 env VITRINE_MODEL= "$T/it/bin/vitrine" embed --out "$T/it.f32" "$T/cat/images"
has installed-tree-note "$T/err" "embed: model $T/it/share/vitrine/vitrine-fashion.onnx (default)"
cmp -s "$T/it.f32" "$T/ref.f32" && bad "installed tree: the vectors of the wrong model" || ok "installed tree: its own model's vectors"
# models/ comes before share/vitrine/, and VITRINE_MODEL before both
mkdir -p "$T/bt/share/vitrine" && cp "$T/it/share/vitrine/vitrine-fashion.onnx" "$T/bt/share/vitrine/"
expect_exit order-models-first 0 "$T/bt/build/vitrine" embed --out "$T/o.f32" "$photo"
has order-models-first-note "$T/err" "$T/bt/models/vitrine-fashion.onnx (default)"
expect_exit order-env-first 0 env VITRINE_MODEL="$T/it/share/vitrine/vitrine-fashion.onnx" "$T/bt/build/vitrine" embed --out "$T/o.f32" "$photo"
has order-env-first-note "$T/err" "$T/it/share/vitrine/vitrine-fashion.onnx (default)"

# ---- no default model anywhere: usage errors that say where vitrine looked and what to do
"$T/none/bin/vitrine" embed --out "$T/none.f32" "$photo" >"$T/out" 2>"$T/err"
got=$?
if [ "$got" -eq 0 ] && grep -q "(default)" "$T/err"; then
  echo "skip no-default checks: a default model is installed on this machine: $(cat "$T/err")"
else
  [ "$got" -eq 2 ] && ok "no-default-embed: exit 2" || { bad "no-default-embed: exit $got, expected 2"; cat "$T/err"; }
  has no-default-msg "$T/err" "no default model found"
  has no-default-where "$T/err" "$T/none/models/vitrine-fashion.onnx"
  has no-default-where-installed "$T/err" "$T/none/share/vitrine/vitrine-fashion.onnx"
  has no-default-how-model "$T/err" "--model FILE"
  has no-default-how-env "$T/err" "VITRINE_MODEL=FILE"
  has no-default-how-train "$T/err" "vitrine train"
  expect_exit no-default-ingest 2 "$T/none/bin/vitrine" ingest --db "$T/none.db" --meta "$T/cat/styles.csv"
  has no-default-ingest-msg "$T/err" "no default model found"
  has no-default-ingest-no-embed "$T/err" "--no-embed"
  [ ! -e "$T/none.db" ] && ok "no-default-ingest: no store created" || bad "no-default-ingest created the store"
  expect_exit no-default-search 2 "$T/none/bin/vitrine" search --db "$T/shop.db" --image "$photo"
  has no-default-search-msg "$T/err" "no default model found"
  # similar needs only the name: vitrine-fashion, whose embeddings this store does not have
  expect_exit no-default-similar 1 "$T/none/bin/vitrine" similar --db "$T/shop.db" 5
  has no-default-similar-name "$T/err" "model 'vitrine-fashion'"
  expect_exit no-default-similar-bt 0 "$T/none/bin/vitrine" similar --db "$T/bt.db" 5 -k 2
  # serve: browsing only, as without a model before
  serve_search no-default-serve 503 "$T/none/bin/vitrine" --db "$T/shop.db"
  has no-default-serve-msg "$T/serve.err" "browsing only"
fi

echo "cli_default_model: $fails failed"
[ "$fails" -eq 0 ]
