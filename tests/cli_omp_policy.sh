#!/usr/bin/env bash
# cli_omp_policy.sh: the OpenMP wait policy the CLI re-executes itself with: passive for commands that
# share the CPUs with their own threads, passive for model/embed when other tasks are runnable, none
# when the user chose one; exactly one re-execution.
. "$(dirname "$0")/skip.sh"
set -u
unset OMP_WAIT_POLICY GOMP_SPINCOUNT VITRINE_NO_REEXEC # the test sets them itself
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
model=$here/../models/vitrine-fashion.onnx
T=$(mktemp -d)
busy=()
trap 'for p in "${busy[@]}"; do kill $p 2>/dev/null; done; rm -rf "$T"' EXIT
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
[ -f "$model" ] || vt_skip "no default model"

# model info on any machine: exactly one policy line (one re-execution), one of the two policies
"$bin" -v model info "$model" >"$T/out" 2>"$T/err" || bad "model info failed: $(cat "$T/err")"
n=$(grep -c "OpenMP:" "$T/err")
if [ "$n" -eq 1 ] && grep -Eq "OpenMP: (short spin|passive wait)" "$T/err"; then ok "model info: one policy line"; else
    bad "model info: $n policy lines"; cat "$T/err"; fi

# the user's choice wins: no re-execution, no policy line
OMP_WAIT_POLICY=active "$bin" -v model info "$model" >"$T/out" 2>"$T/err"; st=$?
if [ $st -ne 0 ] || grep -q "OpenMP:" "$T/err"; then bad "OMP_WAIT_POLICY set: exit $st or policy line printed"; cat "$T/err"; else ok "OMP_WAIT_POLICY set: kept"; fi
GOMP_SPINCOUNT=1000 "$bin" -v model info "$model" >"$T/out" 2>"$T/err"; st=$?
if [ $st -ne 0 ] || grep -q "OpenMP:" "$T/err"; then bad "GOMP_SPINCOUNT set: exit $st or policy line printed"; cat "$T/err"; else ok "GOMP_SPINCOUNT set: kept"; fi

# other tasks runnable (one busy loop per CPU, plus one): model info must choose the passive wait
ncpu=$(nproc)
for _ in $(seq 0 "$ncpu"); do (while :; do :; done) & busy+=($!); done
sleep 0.2
"$bin" -v model info "$model" >"$T/out" 2>"$T/err" || bad "busy machine: model info failed"
if grep -q "OpenMP: passive wait" "$T/err"; then ok "busy machine: passive"; else bad "busy machine: not passive"; cat "$T/err"; fi
for p in "${busy[@]}"; do kill $p 2>/dev/null; done
busy=()

# a server gets the passive policy in its environment, whatever the load
"$bin" -q sample-catalog --out "$T/cat" --n 5 >/dev/null || bad "sample catalog"
"$bin" -q ingest --db "$T/shop.db" --images "$T/cat/images" --meta "$T/cat/styles.csv" --no-embed >/dev/null 2>&1
"$bin" serve --db "$T/shop.db" --port 0 >"$T/serve.out" 2>"$T/serve.err" &
pid=$!
for _ in $(seq 100); do grep -q "listening\|http://" "$T/serve.out" "$T/serve.err" 2>/dev/null && break; sleep 0.1; done
if tr '\0' '\n' </proc/$pid/environ | grep -qx "OMP_WAIT_POLICY=passive"; then ok "serve: OMP_WAIT_POLICY=passive"; else
    bad "serve: no passive policy in its environment"; cat "$T/serve.err"; fi
kill $pid 2>/dev/null
wait $pid 2>/dev/null

[ $fails -eq 0 ] && echo "all ok" || echo "$fails failed"
[ $fails -eq 0 ]
