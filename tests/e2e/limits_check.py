#!/usr/bin/python3
"""limits_check.py: black-box checks of what one client can cost a running `vitrine serve`.

Usage: limits_check.py BASE_URL SERVER_PID PHOTO.jpg REQUEST_TIMEOUT_S PER_IP_LIMIT UPLOAD_MEMORY

The server must run with --request-timeout REQUEST_TIMEOUT_S, --max-conns-per-ip PER_IP_LIMIT,
--max-upload-memory UPLOAD_MEMORY, --max-decodes 1 --decode-wait 0 and --threads 4 or more; the
upload pixel limit is left at its default (25 megapixels). Everything goes to the loopback
address; every loop is bounded. Prints ok/FAIL lines; exit 1 on any failure.
"""
import http.client
import json
import socket
import sys
import threading
import time
import urllib.parse

import vtproc

base = urllib.parse.urlparse(sys.argv[1])
pid = int(sys.argv[2])
photo = open(sys.argv[3], "rb").read()
timeout_s = float(sys.argv[4])
per_ip = int(sys.argv[5])
upload_memory = int(sys.argv[6])
host, port = base.hostname, base.port
fails = 0


def check(name, cond, detail=""):
    global fails
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"), flush=True)
    fails += 0 if cond else 1


def req(method, path, body=None, headers=None):
    c = http.client.HTTPConnection(host, port, timeout=60)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    hdrs = dict(r.getheaders())
    c.close()
    try:
        j = json.loads(data)
    except ValueError:
        j = None
    return r.status, hdrs, j








def wait_closed(s, limit):
    """Seconds until the server closes socket s (recv gives EOF or an error), or None after `limit`."""
    t0 = time.monotonic()
    s.settimeout(0.2)
    while time.monotonic() - t0 < limit:
        try:
            if s.recv(4096) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0
    return None


# ---------------------------------------------------------------- pixel limit on uploads
bomb = vtproc.png_zeros(10000, 10000)
print(f"info 100-megapixel PNG of zeros: {len(bomb)} bytes", flush=True)
rss0 = vtproc.status_kb(pid, "VmRSS")
peak_ok = vtproc.reset_peak(pid)
t0 = time.monotonic()
st, hdrs, j = req("POST", "/api/search?k=5", bomb, {"Content-Type": "image/png"})
dt = time.monotonic() - t0
msg = (j or {}).get("error", {}).get("message", "")
check("100 MP PNG -> 413 naming the limit", st == 413 and j["error"]["code"] == "image_too_large"
      and "25.0 megapixels" in msg and "100.0 megapixels" in msg, (st, j))
grow = ((vtproc.status_kb(pid, "VmHWM") if peak_ok else vtproc.status_kb(pid, "VmRSS")) - rss0) / 1024
print(f"info answered in {dt:.2f} s; server {'peak' if peak_ok else 'RSS'} grew {grow:.1f} MB "
      f"(RSS before {rss0 / 1024:.1f} MB)", flush=True)
check("100 MP PNG costs the server < 64 MB", grow < 64, f"{grow:.1f} MB")

# two at once, as the attack would send them
res = []
ths = [threading.Thread(target=lambda: res.append(req("POST", "/api/search", bomb)[0])) for _ in range(2)]
rss0 = vtproc.status_kb(pid, "VmRSS")
vtproc.reset_peak(pid)
for t in ths:
    t.start()
for t in ths:
    t.join()
grow = ((vtproc.status_kb(pid, "VmHWM") if peak_ok else vtproc.status_kb(pid, "VmRSS")) - rss0) / 1024
check("two 100 MP PNGs at once -> 413, < 64 MB", res == [413, 413] and grow < 64, (res, f"{grow:.1f} MB"))

st, hdrs, j = req("POST", "/api/search?k=3", photo)
check("a real photo still searches", st == 200 and len(j["results"]) == 3, (st, j))

# ---------------------------------------------------------------- per-IP connection limit
# per_ip + 2 idle connections: two of them (whichever the server accepts last) are closed at once,
# the others stay open and are served. A connection just closed may still count for a moment
# (the server notices the close on its next round), hence the pause and the one of slack.
time.sleep(1.0)
held = [socket.create_connection((host, port), timeout=5) for _ in range(per_ip + 2)]
is_closed = [False] * len(held)
t0 = time.monotonic()
for s in held:
    s.setblocking(False)
while time.monotonic() - t0 < 1.5:  # well inside the request timeout
    for i, s in enumerate(held):
        if is_closed[i]:
            continue
        try:
            is_closed[i] = s.recv(4096) == b""
        except BlockingIOError:
            pass
        except OSError:
            is_closed[i] = True
    time.sleep(0.05)
check(f"{per_ip + 2} connections from one address: the 2 beyond the limit closed at once",
      2 <= sum(is_closed) <= 3, is_closed)
live = [s for i, s in enumerate(held) if not is_closed[i]]
reply = b""
if live:
    live[0].setblocking(True)
    live[0].settimeout(5)
    live[0].sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    try:
        while True:
            d = live[0].recv(4096)
            if not d:
                break
            reply += d
    except OSError:
        pass
check(f"connections within the limit of {per_ip} are served", reply.startswith(b"HTTP/1.1 200"), reply[:80])
for s in held:
    s.close()
time.sleep(0.5)  # the server notices the closes before the next checks

# ---------------------------------------------------------------- slowloris
s = socket.create_connection((host, port), timeout=5)
s.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n".encode())
t0 = time.monotonic()
cut = None
sent = 0
while time.monotonic() - t0 < timeout_s + 12:  # bounded: well past the limit, then give up
    try:
        s.sendall(b"X-Slow: a\r\n"[sent % 11:sent % 11 + 1])
        sent += 1
    except OSError:
        cut = time.monotonic() - t0
        break
    c = wait_closed(s, 1.0)
    if c is not None:
        cut = time.monotonic() - t0
        break
s.close()
print(f"info slowloris: {sent} bytes sent, one a second; cut after "
      f"{'never' if cut is None else f'{cut:.1f} s'} (limit {timeout_s:.0f} s)", flush=True)
check("slowloris client is disconnected within the request timeout (+2 s)",
      cut is not None and timeout_s - 1 <= cut <= timeout_s + 2, cut)

# a client that keeps up is not cut: a request whose headers and body arrive in time
st, hdrs, j = req("GET", "/healthz")
check("healthz after the slowloris", st == 200, st)

# ---------------------------------------------------------------- body budget
# Bodies announced by Content-Length are reserved on arrival; past the budget, 503 + Retry-After
# before the body is read.
part = upload_memory // 2 - 1000
conns = []
for i in range(2):
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(f"POST /api/search HTTP/1.1\r\nHost: {host}\r\nContent-Length: {part}\r\n\r\n".encode() + b"\xff" * 1000)
    conns.append(s)
time.sleep(0.3)
s = socket.create_connection((host, port), timeout=5)
s.sendall(f"POST /api/search HTTP/1.1\r\nHost: {host}\r\nContent-Length: {part}\r\n\r\n".encode())
reply = b""
try:
    while b"\r\n\r\n" not in reply:
        d = s.recv(4096)
        if not d:
            break
        reply += d
except OSError:
    pass
s.close()
check("a body past the upload memory budget -> 503 + Retry-After before it is sent",
      reply.startswith(b"HTTP/1.1 503") and b"\r\nRetry-After: 1\r\n" in reply, reply[:300])
for s in conns:
    s.close()
time.sleep(0.5)
st, hdrs, j = req("POST", "/api/search?k=3", photo)
check("budget returned when those uploads go away", st == 200, (st, j))

# ---------------------------------------------------------------- decodes at once
big = vtproc.png_zeros(6000, 4000)  # 24 MP: under the pixel limit, a fraction of a second to decode
n = 6
barrier = threading.Barrier(n - 1)
out = []


def search(wait):
    if wait:
        barrier.wait()
    try:
        st, hdrs, j = req("POST", "/api/search?k=3", big)
        out.append((st, hdrs.get("Retry-After"), (j or {}).get("error", {}).get("code")))
    except OSError as e:
        out.append((None, None, str(e)))


rss0 = vtproc.status_kb(pid, "VmRSS")
vtproc.reset_peak(pid)
# One search first, to be decoding on one worker thread (a busy thread accepts no connection);
# then the others at once, which other threads take while it decodes.
ths = [threading.Thread(target=search, args=(i > 0,)) for i in range(n)]
ths[0].start()
time.sleep(0.15)
for t in ths[1:]:
    t.start()
for t in ths:
    t.join()
grow = ((vtproc.status_kb(pid, "VmHWM") if peak_ok else vtproc.status_kb(pid, "VmRSS")) - rss0) / 1024
codes = sorted(o[0] or 0 for o in out)
print(f"info {n} concurrent 24 MP searches, 1 decode at once: statuses {codes}; server peak grew {grow:.0f} MB",
      flush=True)
check("concurrent searches: only 200 or 503", all(o[0] in (200, 503) for o in out), out)
check("concurrent searches beyond the cap: 503 + Retry-After", any(o[0] == 503 for o in out)
      and all(o[1] == "1" and o[2] == "busy" for o in out if o[0] == 503), out)
check("concurrent searches: at least one answered", any(o[0] == 200 for o in out), out)

sys.exit(1 if fails else 0)
