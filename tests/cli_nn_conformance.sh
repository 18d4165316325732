#!/bin/bash
# cli_nn_conformance.sh: ONNX operator conformance: runs every case listed in tests/onnx/node_cases.txt
# through `vitrine model test`; 'run' cases must all pass, 'unsupported' ones must be refused by name.
# Args: path of the vitrine binary, data dir (unused).
set -u
VT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
LIST=$HERE/onnx/node_cases.txt
NODE=${VT_ONNX_NODE_DIR:-/usr/share/libonnx-testdata/data/node}
if [ ! -d "$NODE" ]; then
    echo "FAIL: $NODE is missing (install Debian's libonnx-testdata, see scripts/debian-packages.txt)"
    exit 1
fi
fail=0
mapfile -t RUN < <(awk '$1 == "run" {print $2}' "$LIST")
n=${#RUN[@]}
[ "$n" -gt 100 ] || { echo "FAIL: only $n runnable cases listed"; exit 1; }
dirs=()
for c in "${RUN[@]}"; do dirs+=("$NODE/$c"); done
out=$("$VT" -q model test "${dirs[@]}")
rc=$?
echo "$out" | grep FAIL
last=$(echo "$out" | tail -1)
echo "$last"
if [ "$last" != "$n passed, 0 failed" ] || [ $rc -ne 0 ]; then
    echo "FAIL: expected '$n passed, 0 failed' (exit 0), got '$last' (exit $rc)"
    fail=1
fi
# unsupported variants: refused at load time with a message that says what is not supported
nu=0
while IFS= read -r line; do
    c=$(echo "$line" | sed -E 's/^unsupported ([^:]+):.*/\1/')
    o=$("$VT" -q model test "$NODE/$c")
    if [ $? -eq 0 ] || ! echo "$o" | grep -q "^FAIL $c: .*not supported"; then
        echo "FAIL: unsupported case $c was not refused with a clear message: $o"
        fail=1
    fi
    nu=$((nu + 1))
done < <(grep '^unsupported ' "$LIST")
[ $fail -eq 0 ] && echo "$n conformance cases passed; $nu unsupported variants refused by name"
# every case directory for our operators in the test data is listed (nothing silently skipped)
for d in "$NODE"/test_*; do
    c=$(basename "$d")
    if echo "$c" | grep -qE "^test_(basic_conv|conv_|batchnorm|relu|leakyrelu|clip|sigmoid|hardsigmoid|hardswish|tanh|mul|add|sub|div|maxpool|averagepool|globalaveragepool|globalmaxpool|concat|flatten|reshape|transpose|squeeze|unsqueeze|gemm|matmul|softmax|identity|dropout|constant$|shape|gather_|reduce_mean)" &&
       ! echo "$c" | grep -qE "convinteger|convtranspose|matmulinteger|gather_elements|gathernd"; then
        grep -qE "^(run|unsupported) $c(:|$)" "$LIST" || { echo "FAIL: $c is not listed in $LIST"; fail=1; }
    fi
done
exit $fail
