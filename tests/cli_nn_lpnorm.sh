#!/usr/bin/env bash
# cli_nn_lpnorm.sh: LpNormalization (the embedding output of models vitrine trains) against numpy:
# p 1 and 2, last and middle axis, a zero vector; p=3 refused at load time with the node named.
. "$(dirname "$0")/skip.sh"
set -u
bin=$1
py=/usr/bin/python3
$py -c 'import onnx, numpy' 2>/dev/null || vt_skip "python3-onnx missing"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
for cfg in "2 -1" "1 -1" "2 1"; do
  set -- $cfg
  p=$1 axis=$2
  $py - "$tmp" "$p" "$axis" <<'PY'
import sys, numpy as np, onnx
from onnx import helper, TensorProto
d, p, axis = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
node = helper.make_node("LpNormalization", ["x"], ["y"], name="norm", axis=axis, p=p)
g = helper.make_graph([node], "lp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4, 5])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4, 5])])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
onnx.checker.check_model(m)
onnx.save(m, f"{d}/m.onnx")
x = np.random.default_rng(p + axis).standard_normal((3, 4, 5)).astype("<f4")
x[1, :, 2] = 0 if axis == 1 else x[1, :, 2]
x[2, 1, :] = 0 if axis == -1 else x[2, 1, :]
x.tofile(f"{d}/x.f32")
n = np.linalg.norm(x, ord=p, axis=axis, keepdims=True)
np.divide(x, n, out=np.zeros_like(x), where=n > 0).astype("<f4").tofile(f"{d}/want.f32")
PY
  if "$bin" -q model run "$tmp/m.onnx" --input "$tmp/x.f32" --shape 3,4,5 --output "$tmp/got.f32" >/dev/null &&
     $py -c "
import numpy as np, sys
a = np.fromfile('$tmp/got.f32', '<f4'); b = np.fromfile('$tmp/want.f32', '<f4')
sys.exit(0 if a.size == b.size and np.abs(a - b).max() < 1e-6 else 1)"; then
    echo "ok   LpNormalization p=$p axis=$axis"
  else
    echo "FAIL LpNormalization p=$p axis=$axis"; fails=$((fails + 1))
  fi
done
$py - "$tmp" <<'PY'
import sys, onnx
from onnx import helper, TensorProto
node = helper.make_node("LpNormalization", ["x"], ["y"], name="bad_norm", axis=1, p=3)
g = helper.make_graph([node], "lp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), f"{sys.argv[1]}/p3.onnx")
PY
if "$bin" model info "$tmp/p3.onnx" > /dev/null 2> "$tmp/err"; then
  echo "FAIL p=3 was accepted"; fails=$((fails + 1))
elif grep -q "bad_norm" "$tmp/err" && grep -q "p=3" "$tmp/err"; then
  echo "ok   p=3 refused: $(cat "$tmp/err")"
else
  echo "FAIL p=3 message: $(cat "$tmp/err")"; fails=$((fails + 1))
fi
echo "cli_nn_lpnorm: $fails failed"
[ $fails -eq 0 ]
