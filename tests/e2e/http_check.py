#!/usr/bin/python3
"""http_check.py: black-box checks of a running `vitrine serve`: status codes, JSON shapes, errors.

Usage: http_check.py BASE_URL PHOTO.jpg     (prints ok/FAIL lines; exit 1 on any failure)
"""
import http.client
import json
import sys
import urllib.parse

base = urllib.parse.urlparse(sys.argv[1])
photo = open(sys.argv[2], "rb").read()
fails = 0


last_headers = {}


def req(method, path, body=None, headers=None):
    global last_headers
    c = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    last_headers = {k.lower(): v for k, v in r.getheaders()}
    return r.status, r.getheader("Content-Type") or "", data


def raw(request):
    """Sends request bytes as they are (http.client always adds Host) and returns the answer."""
    import socket
    s = socket.create_connection((base.hostname, base.port), timeout=30)
    s.sendall(request)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def check(name, cond, detail=""):
    global fails
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"))
    fails += 0 if cond else 1


def jreq(method, path, body=None):
    st, ct, data = req(method, path, body)
    try:
        return st, ct, json.loads(data)
    except ValueError:
        return st, ct, None


def is_error(st, j, want):
    return st == want and isinstance(j, dict) and j["error"]["status"] == want and j["error"]["message"]


st, ct, j = jreq("GET", "/healthz")
check("healthz", st == 200 and ct.startswith("application/json") and j["status"] == "ok" and j["indexed"] > 0, j)

st, ct, j = jreq("GET", "/api/items?limit=5&offset=2")
check("items page", st == 200 and len(j["items"]) == 5 and j["offset"] == 2 and j["limit"] == 5 and j["total"] >= 5, j)
item = j["items"][0]
check("item shape", set(item) >= {"id", "attributes", "image"}
      and item["image"] == "/images/" + urllib.parse.quote(item["id"], safe=""), item)

st, ct, j = jreq("GET", "/api/items?gender=Women&limit=200")
check("items filter", st == 200 and j["items"] and all(x["attributes"]["gender"] == "Women" for x in j["items"])
      and j["total"] == len(j["items"]), j and j.get("total"))
st, ct, j = jreq("GET", "/api/items?bad%20field=1")
check("items bad filter -> 400", is_error(st, j, 400), (st, j))
# a parameter that is neither the route's own nor a field of the catalog: 400 naming it and the fields
for path, name in (("/api/items?q=shirt", "q"), ("/api/items?sort=price", "sort"), ("/api/items?k=3", "k"),
                   (f"/api/items/{item['id']}/similar?exclude={item['id']}", "exclude"),
                   (f"/api/items/{item['id']}/similar?limit=3", "limit")):
    st, ct, j = jreq("GET", path)
    check(f"{path} -> 400 unknown parameter", is_error(st, j, 400) and f"'{name}'" in j["error"]["message"]
          and "articleType" in j["error"]["message"] and "season" in j["error"]["message"], (st, j))
st, ct, j = jreq("POST", "/api/search?colour=Blue&sortBy=x", photo)
check("search with an unknown parameter -> 400", is_error(st, j, 400) and "'sortBy'" in j["error"]["message"], (st, j))
st, ct, j = jreq("GET", "/api/items?season=Summer&Gender=women&limit=200")
check("filters on an attribute and on an indexed field in another case", st == 200 and j["items"]
      and all(x["attributes"]["season"] == "Summer" and x["attributes"]["gender"] == "Women" for x in j["items"]),
      (st, j and j.get("total")))
st, ct, j = jreq("GET", "/api/items?limit=0")
check("items bad limit -> 400", is_error(st, j, 400), (st, j))

st, ct, j = jreq("GET", "/api/items/" + item["id"])
check("item by id", st == 200 and j["id"] == item["id"], j)
st, ct, j = jreq("GET", "/api/items/no-such-item")
check("unknown id -> 404", is_error(st, j, 404), (st, j))

st, ct, j = jreq("GET", f"/api/items/{item['id']}/similar?k=4")
ok = st == 200 and len(j["results"]) == 4 and all(set(r) == {"item", "score"} for r in j["results"])
check("similar", ok and item["id"] not in [r["item"]["id"] for r in j["results"]], j)
st, ct, j = jreq("GET", f"/api/items/{item['id']}/similar?k=3&gender=Men")
check("similar filtered", st == 200 and all(r["item"]["attributes"]["gender"] == "Men" for r in j["results"]), j)
for bad in ("0", "-1", "abc", "100000"):
    st, ct, j = jreq("GET", f"/api/items/{item['id']}/similar?k={bad}")
    check(f"similar k={bad} -> 400", is_error(st, j, 400), (st, j))
st, ct, j = jreq("GET", "/api/items/no-such-item/similar")
check("similar unknown id -> 404", is_error(st, j, 404), (st, j))

st, ct, j = jreq("POST", "/api/search?k=3", photo)
check("photo search", st == 200 and len(j["results"]) == 3, (st, j))
st, ct, j = jreq("POST", "/api/search", b"definitely not a photo")
check("search with text -> 422", is_error(st, j, 422), (st, j))
st, ct, j = jreq("POST", "/api/search", b"")
check("search without body -> 400", is_error(st, j, 400), (st, j))


def oversize(nbytes):
    """Posts nbytes; the server may answer 413 and close before the body is sent, so the client
    tolerates a broken pipe and reads the answer."""
    import socket
    s = socket.create_connection((base.hostname, base.port), timeout=30)
    s.sendall(f"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Length: {nbytes}\r\nConnection: close\r\n\r\n".encode())
    try:
        s.sendall(b"\xff" * nbytes)
    except (BrokenPipeError, ConnectionResetError):
        pass
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


head, body = oversize(3 << 20)
check("oversize body -> 413", head.startswith(b"HTTP/1.1 413") and b"body_too_large" in body, head[:60])
st, ct, j = jreq("GET", "/api/search")
check("wrong method -> 405 with Allow: POST", is_error(st, j, 405) and last_headers.get("allow") == "POST",
      (st, j, last_headers.get("allow")))
for method, path in (("POST", "/api/items"), ("DELETE", f"/api/items/{item['id']}"), ("PUT", "/healthz"),
                     ("POST", "/"), ("DELETE", "/images/" + item["id"])):
    st, ct, j = jreq(method, path)
    check(f"{method} {path} -> 405 with Allow: GET, HEAD", is_error(st, j, 405) and last_headers.get("allow") == "GET, HEAD",
          (st, j, last_headers.get("allow")))

# HTTP/1.1 needs a Host header (RFC 9112 3.2)
data = raw(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
check("HTTP/1.1 without Host -> 400", data.startswith(b"HTTP/1.1 400") and b"bad_request" in data, data[:200])
data = raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
check("HTTP/1.1 with Host -> 200", data.startswith(b"HTTP/1.1 200"), data[:200])

# bytes that are not UTF-8 in the path or a parameter: 400 JSON, not a 500 "out of memory"
for path in ("/api/items/%E9%ff", "/api/items?limit=%ff", "/api/items?gender=%ff", "/api/items?%ff=1",
             f"/api/items/{item['id']}/similar?k=%c0%af", "/images/%ff"):
    st, ct, j = jreq("GET", path)
    check(f"{path} -> 400", is_error(st, j, 400) and "UTF-8" in j["error"]["message"], (st, j))

st, ct, data = req("GET", "/images/" + item["id"])
check("image", st == 200 and ct.startswith("image/") and len(data) > 100, (st, ct))
for path in ("/images/..%2F..%2Fetc%2Fpasswd", "/images/../../etc/passwd", "/images/%2e%2e/styles.csv",
             "/images/" + urllib.parse.quote("/etc/passwd", safe=""), "/images/"):
    st, ct, data = req("GET", path)
    check(f"traversal {path} -> 404", st == 404 and b"root:" not in data, (st, data[:80]))

st, ct, j = jreq("GET", "/api/facets")
check("facets", st == 200 and j["gender"] and {"value", "count"} == set(j["gender"][0]), j)
st, ct, data = req("GET", "/")
check("web page", st == 200 and ct.startswith("text/html") and b"<title>vitrine</title>" in data, (st, ct))
st, ct, j = jreq("GET", "/nowhere")
check("unknown path -> 404 JSON", is_error(st, j, 404), (st, j))

print(f"http_check: {fails} failed")
sys.exit(1 if fails else 0)
