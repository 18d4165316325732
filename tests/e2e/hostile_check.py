#!/usr/bin/python3
"""hostile_check.py: black-box checks of `vitrine serve` over a store written from a hostile feed
(tests/cli_serve_hostile.sh makes it): only real photos are served, links are percent-encoded,
storage faults are 500 storage_error without server paths, and /healthz then says 503.

Usage: hostile_check.py BASE_URL images
       hostile_check.py BASE_URL broken TMPDIR     (prints ok/FAIL lines; exit 1 on any failure)
"""
import http.client
import json
import sys
import urllib.parse

base = urllib.parse.urlparse(sys.argv[1])
mode = sys.argv[2]
fails = 0


def req(method, path):
    """(status, headers, body); status 0 when there is no answer within 10 s (a FIFO opened for
    reading blocks until a writer comes)."""
    c = http.client.HTTPConnection(base.hostname, base.port, timeout=10)
    try:
        c.request(method, path)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    except OSError as e:
        return 0, {}, str(e).encode()
    finally:
        c.close()


def check(name, cond, detail=""):
    global fails
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"))
    fails += 0 if cond else 1


def jerr(data):
    try:
        return json.loads(data)["error"]
    except (ValueError, KeyError, TypeError):
        return None


if mode == "images":
    jpeg = b"\xff\xd8\xff"
    for id_, ctype, magic in (("good1", "image/jpeg", jpeg), ("png1", "image/png", b"\x89PNG\r\n\x1a\n"),
                              ("webp1", "image/webp", b"RIFF"), ("rel1", "image/jpeg", jpeg)):
        st, h, data = req("GET", "/images/" + id_)
        check(f"/images/{id_} -> 200 {ctype}", st == 200 and h.get("content-type") == ctype and data.startswith(magic)
              and h.get("x-content-type-options") == "nosniff", (st, h.get("content-type"), data[:16]))
    # files that are not photos, or not regular files, or reached through a symlink: 404, no bytes
    for id_ in ("abs1", "fake1", "link1", "fifo1", "dir1", "dev1", "noimg"):
        st, h, data = req("GET", "/images/" + id_)
        e = jerr(data)
        check(f"/images/{id_} -> 404 JSON", st == 404 and e and e["code"] == "not_found" and b"root:" not in data
              and b"/etc" not in data and b"/tmp" not in data, (st, data[:120]))
    # ids that need percent-encoding: the links the API gives work
    for id_ in ("a#b", "x?y", "a b"):
        q = urllib.parse.quote(id_, safe="")
        st, h, data = req("GET", "/api/items/" + q)
        item = json.loads(data) if st == 200 else {}
        check(f"item {id_!r} links to /images/{q}", st == 200 and item.get("image") == "/images/" + q, (st, data[:200]))
        st, h, data = req("GET", item.get("image", "/images/" + q))
        check(f"the image link of {id_!r} -> 200 image/jpeg", st == 200 and h.get("content-type") == "image/jpeg",
              (st, data[:80]))
    st, h, data = req("GET", "/api/items?limit=200")
    items = {x["id"]: x for x in json.loads(data)["items"]} if st == 200 else {}
    check("the item list leaves out an id that is not UTF-8 and shows the others",
          st == 200 and len(items) == 14 and json.loads(data)["total"] == 15, (st, data[:200]))
    check("the item list percent-encodes image links",
          items.get("x?y", {}).get("image") == "/images/x%3Fy" and items.get("a#b", {}).get("image") == "/images/a%23b",
          [(k, v["image"]) for k, v in items.items()])
elif mode == "broken":
    tmp = sys.argv[3].encode()
    st, h, data = req("GET", "/healthz")
    check("healthz before any failed read -> 200", st == 200, (st, data))
    st, h, data = req("GET", "/api/items?gender=Men")
    e = jerr(data)
    check("a read of a corrupt index -> 500 storage_error", st == 500 and e and e["code"] == "storage_error", (st, data))
    check("the error names no server path", tmp not in data and b".db" not in data and b"/" not in data, data)
    st, h, data = req("GET", "/healthz")
    j = json.loads(data) if data.startswith(b"{") else {}
    check("healthz after a failed read -> 503", st == 503 and j.get("status") != "ok" and tmp not in data, (st, data))
    st, h, data = req("GET", "/api/items/good1")
    check("items read from memory are still served", st == 200, (st, data[:80]))
print(f"hostile_check: {fails} failed")
sys.exit(1 if fails else 0)
