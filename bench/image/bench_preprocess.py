#!/usr/bin/python3
"""bench_preprocess.py: decode + letterbox + resize of every catalog photo, vitrine vs Pillow.

Both do the same job per image: read the file, decode the JPEG to RGB, fit it into a square of
SIZE on white keeping its aspect (antialiased downscale, Pillow's BILINEAR = vitrine's tent
filter), with the decoder's DCT scaling allowed where the photo is much larger than SIZE (Pillow:
Image.draft). Pillow runs in THREADS worker processes (its best case: no GIL sharing); vitrine
runs `vitrine preprocess --bench` with THREADS threads. Each configuration runs REPS times,
alternating the two, and the medians are compared.

Usage: bench/image/bench_preprocess.py VITRINE_BIN IMAGE_DIR [--size 224] [--reps 5]
"""
import argparse
import multiprocessing as mp
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pil_letterbox import letterbox  # noqa: E402


def pil_job(path, size=224):
    return letterbox(path, size).size


def run_pillow(files, threads, size):
    t = time.perf_counter()
    if threads == 1:
        for f in files:
            pil_job(f, size)
    else:
        with mp.Pool(threads) as pool:
            pool.starmap(pil_job, [(f, size) for f in files], chunksize=64)
    return len(files) / (time.perf_counter() - t)


def run_vitrine(binary, folder, threads, size):
    out = subprocess.run([binary, "-q", "preprocess", "--bench", folder, "--threads", str(threads),
                          "--size", str(size)], check=True, capture_output=True, text=True).stdout
    m = re.search(r"\(0 failed\).*: ([0-9.]+) images/s", out)
    if not m:
        raise SystemExit("unexpected vitrine output: " + out)
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vitrine")
    ap.add_argument("images")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    files = sorted(os.path.join(a.images, f) for f in os.listdir(a.images)
                   if f.lower().endswith((".jpg", ".jpeg", ".png", ".webp")))
    print(f"{len(files)} images from {a.images}, size {a.size}, {a.reps} runs each, medians")
    # warm the page cache so both read from memory
    for f in files:
        with open(f, "rb") as fh:
            fh.read()
    results = {}
    for threads in (1, 2):
        v, p = [], []
        for _ in range(a.reps):
            v.append(run_vitrine(a.vitrine, a.images, threads, a.size))
            p.append(run_pillow(files, threads, a.size))
        results[threads] = (statistics.median(v), statistics.median(p))
    print(f"{'threads':>7} {'vitrine img/s':>14} {'Pillow img/s':>13} {'ratio':>6}")
    for threads, (v, p) in results.items():
        print(f"{threads:>7} {v:>14.0f} {p:>13.0f} {v / p:>5.2f}x")
    v1, v2 = results[1][0], results[2][0]
    print(f"vitrine scaling 1 -> 2 threads: {v2 / v1:.2f}x")


if __name__ == "__main__":
    main()
