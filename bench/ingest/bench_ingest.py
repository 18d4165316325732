#!/usr/bin/python3
"""bench_ingest.py: ingest of a catalog (feed + photos -> embeddings in SQLite), vitrine vs the
Python pipeline shops write (Pillow + PyTorch + sqlite3), same network, same weights, same
threads, same photos.

The network is a torchvision model with seeded random weights (no download is possible here),
exported to ONNX for vitrine; the Python side runs the very same torch module. Both letterbox
each photo to 224 on white, normalise with ImageNet mean/std, run batches of 32, L2-normalise the
pooled features and write items + vectors to SQLite in one transaction per batch.

Usage: bench_ingest.py VITRINE_BIN DATA_DIR [--model mobilenet_v2] [--threads 2] [--limit N]
"""
import argparse
import csv
import json
import os
import sqlite3
import subprocess
import sys
import time

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pil_letterbox import letterbox  # noqa: E402


MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def python_pipeline(rows, images, net, db, batch=32):
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE items(id TEXT PRIMARY KEY, attrs TEXT, image TEXT)")
    con.execute("CREATE TABLE embeddings(id TEXT PRIMARY KEY, vec BLOB)")
    feats = torch.nn.Sequential(net.features, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            chunk = rows[i:i + batch]
            x = np.stack([(np.asarray(letterbox(os.path.join(images, r["id"] + ".jpg")), np.float32) / 255 - MEAN) / STD
                          for r in chunk]).transpose(0, 3, 1, 2)
            y = feats(torch.from_numpy(np.ascontiguousarray(x))).numpy()
            y /= np.linalg.norm(y, axis=1, keepdims=True)
            with con:
                for r, v in zip(chunk, y):
                    con.execute("INSERT INTO items VALUES(?,?,?)", (r["id"], json.dumps(r), r["id"] + ".jpg"))
                    con.execute("INSERT INTO embeddings VALUES(?,?)", (r["id"], v.astype("<f4").tobytes()))
    dt = time.perf_counter() - t
    con.close()
    return len(rows) / dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vitrine")
    ap.add_argument("data")
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--work", default="/tmp/vitrine-bench-ingest")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = getattr(torchvision.models, a.model)(weights=None).eval()
    # the ONNX file vitrine runs: the same module, features + pool (+ classifier, unused here)
    onnx_path = f"{a.work}/{a.model}.onnx"
    torch.onnx.export(net, torch.randn(1, 3, 224, 224), onnx_path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=13)
    with open(f"{a.data}/styles.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if os.path.exists(f"{a.data}/images/{r['id']}.jpg")]
    if a.limit:
        rows = rows[:a.limit]
    meta = f"{a.work}/styles.csv"
    with open(meta, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    for f in os.listdir(a.work):
        if f.endswith((".db", ".db-wal", ".db-shm", ".jsonl")):
            os.remove(os.path.join(a.work, f))
    # warm the page cache for both
    for r in rows:
        open(f"{a.data}/images/{r['id']}.jpg", "rb").read()
    t = time.perf_counter()
    out = subprocess.run([a.vitrine, "-q", "ingest", "--db", f"{a.work}/v.db", "--meta", meta, "--images",
                          f"{a.data}/images", "--model", onnx_path, "--threads", str(a.threads)],
                         capture_output=True, text=True)
    v = len(rows) / (time.perf_counter() - t)
    if out.returncode not in (0, 3):
        raise SystemExit(out.stderr)
    p = python_pipeline(rows, f"{a.data}/images", net, f"{a.work}/p.db")
    print(f"{len(rows)} photos, {a.model} (seeded random weights), {a.threads} threads, batch 32")
    print(f"vitrine ingest: {v:8.1f} images/s   ({out.stdout.strip().splitlines()[-1]})")
    print(f"Python (Pillow + PyTorch + sqlite3): {p:8.1f} images/s")
    print(f"ratio: {v / p:.2f}x")


if __name__ == "__main__":
    main()
