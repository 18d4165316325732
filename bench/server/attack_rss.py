#!/usr/bin/python3
"""attack_rss.py: the most memory one attacker can make a running `vitrine serve` (default limits)
use, on 127.0.0.1: for SECONDS (default 8, under the 10 s request timeout) at once
  - connections from loopback addresses 127.0.0.2, .3, ... (up to the per-address limit from
    each) with a partial request header, until the server's connection limit is reached;
  - UPLOADS (default 3) uploads of the largest allowed body (16 MiB) from more addresses, all but
    the last byte sent: 48 of the 64 MiB budget of bodies buffered at once, leaving room for the
    decoders' bodies (a full budget would turn every photo search away with 503 instead);
  - DECODERS (default 4) clients posting, in a loop, images at the upload pixel limit that cost the most to decode:
    a 25-megapixel progressive CMYK JPEG (libjpeg keeps 8 bytes of coefficients a pixel) and a
    25-megapixel PNG (decoded to 4 bytes a pixel).
Prints the server's RSS before, its peak (VmHWM, reset first) and the status counts.

Usage: attack_rss.py BASE_URL SERVER_PID [SECONDS] [--max-body BYTES] [--per-ip N] [--max-conns N]
       [--uploads N] [--decoders N]
"""
import argparse
import collections
import http.client
import io
import os
import socket
import sys
import threading
import time
import urllib.parse
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "e2e"))
import vtproc  # noqa: E402

from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("url")
ap.add_argument("pid", type=int)
ap.add_argument("seconds", type=float, nargs="?", default=8.0)
ap.add_argument("--max-body", type=int, default=16 << 20)
ap.add_argument("--per-ip", type=int, default=32)
ap.add_argument("--max-conns", type=int, default=1024)
ap.add_argument("--uploads", type=int, default=3)
ap.add_argument("--decoders", type=int, default=4)
a = ap.parse_args()
base = urllib.parse.urlparse(a.url)
port = base.port
stop = threading.Event()
counts = collections.Counter()
lock = threading.Lock()






def connect(src):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


# images at the limit, made before the attack starts
buf = io.BytesIO()
Image.new("CMYK", (5000, 5000), (10, 20, 30, 40)).save(buf, "JPEG", progressive=True, quality=90)
cmyk = buf.getvalue()
png = vtproc.png_zeros(5000, 5000)
print(f"25 MP progressive CMYK JPEG: {len(cmyk)} bytes; 25 MP PNG: {len(png)} bytes", flush=True)

rss0 = vtproc.status_kb(a.pid, "VmRSS")
vtproc.reset_peak(a.pid)

def big_upload(ip):
    try:
        s = connect(f"127.0.0.{ip}")
        s.sendall(f"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Length: {a.max_body}\r\n\r\n".encode())
        chunk = b"\xff" * (1 << 20)
        left = a.max_body - 1
        while left > 0 and not stop.is_set():
            n = min(left, len(chunk))
            s.sendall(chunk[:n])
            left -= n
        with lock:
            counts["upload held"] += 1
        stop.wait()
        s.close()
    except OSError as e:
        with lock:
            counts[f"upload refused ({type(e).__name__})"] += 1


def decoder(body, ip):
    while not stop.is_set():
        try:
            s = connect(f"127.0.0.{ip}")
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            c.sock = s
            c.request("POST", "/api/search?k=3", body=body)
            r = c.getresponse()
            r.read()
            c.close()
            with lock:
                counts[f"decode {len(body)} B -> {r.status}"] += 1
        except OSError as e:
            with lock:
                counts[f"decode error {type(e).__name__}"] += 1
            time.sleep(0.1)


ths = [threading.Thread(target=big_upload, args=(100 + i,)) for i in range(a.uploads)]
ths += [threading.Thread(target=decoder, args=(cmyk if i % 2 == 0 else png, 120 + i)) for i in range(a.decoders)]
t0 = time.monotonic()
for t in ths:
    t.start()
time.sleep(0.5)
held = []
refused = 0
flood = a.max_conns - a.uploads - a.decoders - 12  # the server's limit, less the uploads, decoders and some slack
for i in range(flood):
    try:
        s = connect(f"127.0.0.{2 + i // a.per_ip}")
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        held.append(s)
    except OSError:
        refused += 1
print(f"opened {len(held)} connections from {(flood + a.per_ip - 1) // a.per_ip} addresses in "
      f"{time.monotonic() - t0:.1f} s ({refused} refused at connect)", flush=True)
peak_seen = 0
while time.monotonic() - t0 < a.seconds:
    peak_seen = max(peak_seen, vtproc.status_kb(a.pid, "VmRSS"))
    time.sleep(0.1)
stop.set()
for t in ths:  # the decodes in flight finish: part of the attack
    t.join()
hwm = vtproc.status_kb(a.pid, "VmHWM")
for s in held:
    s.close()
time.sleep(1)
print(f"server RSS before {rss0 / 1024:.1f} MB; peak during the attack (VmHWM) {hwm / 1024:.1f} MB "
      f"(highest sampled VmRSS {peak_seen / 1024:.1f} MB); after {vtproc.status_kb(a.pid, 'VmRSS') / 1024:.1f} MB")
for k, v in sorted(counts.items()):
    print(f"  {k}: {v}")
