#!/usr/bin/python3
"""soak.py: drives a running `vitrine serve` for DURATION seconds with wrk on similar items and on
photo search at once, plus a slowloris client and a decompression-bomb client, all on 127.0.0.1;
samples the server's RSS and open descriptors every 10 s; prints a summary and exits 1 when a 5xx
other than the documented 503 (with Retry-After) was seen, the RSS of the last minute is more than
5 % off the second minute's, or the descriptor count grew.

Usage: soak.py BASE_URL SERVER_PID DURATION PHOTO.jpg WORK_DIR
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "e2e"))
import vtproc  # noqa: E402

url, pid, duration, photo, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
base = urllib.parse.urlparse(url)
host, port = base.hostname, base.port
stop = threading.Event()
lock = threading.Lock()
stats = {"slowloris_conns": 0, "slowloris_max_s": 0.0, "bomb": {}, "bomb24": {}, "bad": []}

LUA_COMMON = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) n2xx = 0; n503 = 0; n503ra = 0; n5xx = 0; nother = 0 end
function response(status, headers, body)
  if status >= 200 and status < 300 then n2xx = n2xx + 1
  elseif status == 503 then
    n503 = n503 + 1
    if headers["Retry-After"] then n503ra = n503ra + 1 end
  elseif status >= 500 then n5xx = n5xx + 1
  else nother = nother + 1 end
end
function done(summary, latency, requests)
  local t = {n2xx = 0, n503 = 0, n503ra = 0, n5xx = 0, nother = 0}
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (th:get(k) or 0) end
  end
  io.write(string.format("RESULT requests=%d errors_connect=%d errors_read=%d errors_timeout=%d " ..
    "n2xx=%d n503=%d n503ra=%d n5xx=%d nother=%d p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.timeout,
    t.n2xx, t.n503, t.n503ra, t.n5xx, t.nother, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""








def post(path, body):
    c = http.client.HTTPConnection(host, port, timeout=60)
    try:
        c.request("POST", path, body=body)
        r = c.getresponse()
        r.read()
        return r.status, r.getheader("Retry-After")
    finally:
        c.close()


def slowloris(i):
    """One header byte a second, reconnecting when cut; records how long each connection lasted."""
    while not stop.is_set():
        try:
            s = socket.create_connection((host, port), timeout=5)
        except OSError:
            time.sleep(1)
            continue
        t0 = time.monotonic()
        try:
            s.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n".encode())
            s.settimeout(1.0)
            while not stop.is_set() and time.monotonic() - t0 < 120:
                s.sendall(b"X")
                try:
                    if s.recv(4096) == b"":
                        break
                except socket.timeout:
                    pass
        except OSError:
            pass
        held = time.monotonic() - t0
        s.close()
        if not stop.is_set():
            with lock:
                stats["slowloris_conns"] += 1
                stats["slowloris_max_s"] = max(stats["slowloris_max_s"], held)


def bombs():
    """Every 2 s a 100-megapixel PNG of zeros (97 KB; refused from its header) and every 14 s a
    24-megapixel one (under the limit: decoded, or 503 when the decode slots are busy); every 2 s
    in the first minute, so that every worker thread has decoded one before the RSS of the second
    minute is taken as the reference (the C library keeps some of a thread's peak for reuse)."""
    big, ok = vtproc.png_zeros(10000, 10000), vtproc.png_zeros(6000, 4000)
    n = 0
    t_start = time.monotonic()
    while not stop.wait(2.0):
        warm = time.monotonic() - t_start < 60
        for name, body in (("bomb", big),) + ((("bomb24", ok),) if warm or n % 7 == 0 else ()):
            try:
                st, ra = post("/api/search?k=3", body)
            except OSError as e:
                st, ra = f"error {type(e).__name__}", None
            with lock:
                stats[name][st] = stats[name].get(st, 0) + 1
                if isinstance(st, int) and st >= 500 and not (st == 503 and ra):
                    stats["bad"].append((name, st))
        n += 1


def wrk(script, conns, out):
    p = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "10s", "-s", script, url],
                       capture_output=True, text=True)
    out.append(p.stdout + p.stderr)


items = json.load(urllib.request.urlopen(url.rstrip("/") + "/api/items?limit=200"))["items"]
ids = [it["id"] for it in items]
with open(f"{work}/similar.lua", "w") as f:
    f.write("local ids = {" + ",".join(json.dumps(i) for i in ids) + "}\n")
    f.write('request = function() return wrk.format("GET", "/api/items/" .. ids[math.random(#ids)] .. '
            '"/similar?k=10") end\n' + LUA_COMMON)
with open(f"{work}/search.lua", "w") as f:
    f.write(f'wrk.method = "POST"\nlocal fh = io.open("{photo}", "rb")\nwrk.body = fh:read("*all")\nfh:close()\n'
            'wrk.headers["Content-Type"] = "image/jpeg"\nwrk.path = "/api/search?k=10"\n' + LUA_COMMON)

out_sim, out_search = [], []
threads = [threading.Thread(target=wrk, args=(f"{work}/similar.lua", 8, out_sim)),
           threading.Thread(target=wrk, args=(f"{work}/search.lua", 2, out_search)),
           threading.Thread(target=bombs)] + [threading.Thread(target=slowloris, args=(i,)) for i in range(4)]
t0 = time.monotonic()
for t in threads:
    t.start()
samples = []
print(f"{'t_s':>5} {'rss_mb':>8} {'fds':>5}", flush=True)
while True:
    el = time.monotonic() - t0
    samples.append((el, vtproc.status_kb(pid, "VmRSS") / 1024, vtproc.nfds(pid)))
    print(f"{el:5.0f} {samples[-1][1]:8.1f} {samples[-1][2]:5d}", flush=True)
    if el >= duration:
        break
    time.sleep(min(10.0, max(0.0, duration - el)))
stop.set()
for t in threads:
    t.join()
time.sleep(1)
end_rss, end_fds = vtproc.status_kb(pid, "VmRSS") / 1024, vtproc.nfds(pid)


def parse(out):
    line = next((ln for ln in out[0].splitlines() if ln.startswith("RESULT")), "")
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}, out[0]


fails = 0
for name, out in (("similar items (wrk -c8)", out_sim), ("photo search (wrk -c2)", out_search)):
    r, raw = parse(out)
    if not r:
        print(f"FAIL {name}: no wrk result\n{raw}")
        fails += 1
        continue
    print(f"{name}: {r['requests']:.0f} requests ({r['requests'] / duration:.0f}/s), 2xx {r['n2xx']:.0f}, "
          f"503 {r['n503']:.0f} (with Retry-After {r['n503ra']:.0f}), other 5xx {r['n5xx']:.0f}, 4xx {r['nother']:.0f}, "
          f"socket errors connect/read/timeout {r['errors_connect']:.0f}/{r['errors_read']:.0f}/"
          f"{r['errors_timeout']:.0f}, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms")
    if r["n5xx"] or r["n503"] != r["n503ra"]:
        print(f"FAIL {name}: 5xx beyond the documented 503s")
        fails += 1
print(f"bomb client: 100 MP PNG {stats['bomb']}; 24 MP PNG {stats['bomb24']}")
print(f"slowloris: {stats['slowloris_conns']} connections cut, longest held {stats['slowloris_max_s']:.1f} s")
if stats["bad"]:
    print(f"FAIL 5xx beyond the documented 503s from the bomb client: {stats['bad'][:10]}")
    fails += 1
if stats["bomb"].get(413, 0) != sum(stats["bomb"].values()):
    print("FAIL some 100 MP PNGs were not refused with 413")
    fails += 1
# medians: a sample may land inside a 24 MP decode (+100 MB for a moment)
second = sorted(r for t, r, _ in samples if 60 <= t < 120)
last = sorted(r for t, r, _ in samples if t >= samples[-1][0] - 60)
if second and last and duration >= 180:
    a, b = second[len(second) // 2], last[len(last) // 2]
    drift = (b - a) / a * 100
    print(f"RSS: second minute median {a:.1f} MB, last minute median {b:.1f} MB ({drift:+.1f} %); "
          f"min {min(r for _, r, _ in samples):.1f}, max {max(r for _, r, _ in samples):.1f} MB; "
          f"peak (VmHWM) {vtproc.status_kb(pid, 'VmHWM') / 1024:.1f} MB")
    if abs(drift) > 5:
        print("FAIL RSS of the last minute is more than 5 % off the second minute's")
        fails += 1
else:
    print(f"RSS: {', '.join(f'{r:.0f}' for _, r, _ in samples)} MB (too short a run to compare minutes)")
fd_first = samples[1][2] if len(samples) > 1 else samples[0][2]
print(f"fds: first sample under load {fd_first}, max {max(f for _, _, f in samples)}, after the load {end_fds}")
if end_fds > samples[0][2] + 2:
    print("FAIL descriptors left open after the load")
    fails += 1
print("soak: " + ("FAIL" if fails else "ok"))
sys.exit(1 if fails else 0)
