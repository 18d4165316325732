#!/usr/bin/python3
"""bench_http.py: similar-items requests under wrk: `vitrine serve` vs a Flask + scikit-learn app,
same 50,000-item catalog (clustered unit vectors imported with `vitrine ingest --embeddings`, plus
attributes), same request mix (random item ids, k=10), same client settings, one after the other.

Usage: bench_http.py VITRINE_BIN [--n 50000] [--dim 128] [--seconds 15] [--connections 32]
       [--threads 2] [--work DIR] [--serve-args "--ef 32"] [--no-flask]

Also reports vitrine's recall@10 over 300 random items against exact cosine neighbours computed
with numpy (the query item excluded), so a faster setting shows what it costs in quality.
"""
import json
import argparse
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np

LUA = """
math.randomseed(%(seed)d)
request = function()
  return wrk.format("GET", "/api/items/" .. math.random(0, %(n)d - 1) .. "/similar?k=10")
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%%d seconds=%%.3f errors=%%d p50_ms=%%.3f p99_ms=%%.3f\\n",
    summary.requests, summary.duration / 1e6,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def make_data(work, n, dim, seed=7):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(8, n // 500), dim)).astype(np.float32)
    X = centers[rng.integers(0, len(centers), n)] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    X.astype("<f4").tofile(f"{work}/vecs.f32")
    with open(f"{work}/vecs.ids", "w") as f:
        f.writelines(f"{i}\n" for i in range(n))
    genders, types, colours = ["Men", "Women", "Unisex"], ["Tshirts", "Shirts", "Tops", "Jeans", "Dresses", "Watches"], \
        ["Black", "White", "Blue", "Red", "Green", "Grey"]
    with open(f"{work}/styles.csv", "w") as f:
        f.write("id,gender,masterCategory,articleType,baseColour,productDisplayName\n")
        for i in range(n):
            f.write(f"{i},{genders[i % 3]},Apparel,{types[i % 6]},{colours[i % 5]},Product {i}\n")


def wait_up(url, proc, timeout=300):
    t = time.time()
    while time.time() - t < timeout:
        if proc.poll() is not None:
            sys.exit(f"server exited early ({proc.returncode})")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.5)
    sys.exit("server did not come up")


def run_wrk(port, work, a, label):
    with open(f"{work}/req.lua", "w") as f:
        f.write(LUA % {"seed": 1, "n": a.n})
    # warm-up, then the measured run
    subprocess.run(["wrk", "-t2", f"-c{a.connections}", "-d3s", "--timeout", "10s", "-s", f"{work}/req.lua",
                    f"http://127.0.0.1:{port}/"], capture_output=True)
    out = subprocess.run(["wrk", "-t2", f"-c{a.connections}", f"-d{a.seconds}s", "--timeout", "10s", "--latency", "-s",
                          f"{work}/req.lua", f"http://127.0.0.1:{port}/"], capture_output=True, text=True).stdout
    m = re.search(r"RESULT requests=(\d+) seconds=([\d.]+) errors=(\d+) p50_ms=([\d.]+) p99_ms=([\d.]+)", out)
    if not m:
        sys.exit("wrk output not understood:\n" + out)
    req, sec, err, p50, p99 = int(m[1]), float(m[2]), int(m[3]), float(m[4]), float(m[5])
    print(f"{label:>8}: {req / sec:10.0f} req/s  p50 {p50:7.2f} ms  p99 {p99:8.2f} ms  errors {err}", flush=True)
    return req / sec, p50, p99, err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vitrine")
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="/tmp/vitrine-bench-http")
    ap.add_argument("--serve-args", default="", help="extra arguments for vitrine serve, e.g. '--ef 32'")
    ap.add_argument("--no-flask", action="store_true", help="measure vitrine only")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    here = os.path.dirname(os.path.abspath(__file__))
    make_data(a.work, a.n, a.dim)
    db = f"{a.work}/shop.db"
    for f in (db, db + "-wal", db + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    t = time.time()
    subprocess.run([a.vitrine, "-q", "ingest", "--db", db, "--meta", f"{a.work}/styles.csv", "--embeddings",
                    f"{a.work}/vecs.f32", "--ids", f"{a.work}/vecs.ids", "--model-name", "imported"], check=True,
                   capture_output=True)
    print(f"{a.n} items x {a.dim} dims imported in {time.time() - t:.1f} s; wrk -t2 -c{a.connections} "
          f"-d{a.seconds}s, random ids, k=10, server threads {a.threads}", flush=True)

    srv = subprocess.Popen([a.vitrine, "serve", "--db", db, "--model-name", "imported", "--port", "18431",
                            "--threads", str(a.threads)] + a.serve_args.split(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    try:
        wait_up("http://127.0.0.1:18431/healthz", srv)
        v = run_wrk(18431, a.work, a, "vitrine")
        X = np.fromfile(f"{a.work}/vecs.f32", dtype="<f4").reshape(a.n, a.dim)
        rng, hit = np.random.default_rng(3), 0
        ids = rng.choice(a.n, 300, replace=False)
        for i in ids:
            res = json.load(urllib.request.urlopen(f"http://127.0.0.1:18431/api/items/{i}/similar?k=10"))
            got = {int(r["item"]["id"]) for r in res["results"]}
            s = X @ X[i]
            s[i] = -np.inf
            hit += len(got & set(np.argsort(-s)[:10].tolist()))
        print(f"  vitrine recall@10 vs exact (300 items): {hit / 3000:.4f}  serve args: '{a.serve_args}'", flush=True)
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait()
    if a.no_flask:
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OPENBLAS_NUM_THREADS=str(a.threads))
    fl = subprocess.Popen(["/usr/bin/python3", f"{here}/flask_app.py", f"{a.work}/vecs.f32", f"{a.work}/vecs.ids",
                           f"{a.work}/styles.csv", "18432"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          env=env)
    try:
        wait_up("http://127.0.0.1:18432/api/items/0/similar?k=10", fl)
        f = run_wrk(18432, a.work, a, "flask")
    finally:
        fl.send_signal(signal.SIGTERM)
        fl.wait()
    if f[0] > 0 and not f[3]:
        print(f"ratio: vitrine / flask = {v[0] / f[0]:.0f}x requests/s; p99 {v[2]:.2f} ms vs {f[2]:.2f} ms")
    else:
        print("ratio: not computed: the Flask run had errors or no completed requests")


if __name__ == "__main__":
    main()
