/* test_http.c: the HTTP layer over a real socket: routing, JSON errors, body limits, assets. */
#include "testutil.h"
#include "server/assets.h"
#include "server/http_internal.h"
#include "server/image_file.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void handler(void *app, const vt__http_req *rq, vt__http_resp *rs) {
    (void)app;
    if (!strcmp(rq->path, "/healthz")) {
        vt__http_json(rs, 200, json_pack("{s:s}", "status", "ok"));
    } else if (!strcmp(rq->path, "/missing")) {
        /* an error message quoting bytes that are not UTF-8, as a request id might hold */
        vt__http_error(rs, 404, "not_found", "no item with id '%s'", "\xe9\xff");
    } else if (!strcmp(rq->path, "/echo") && !strcmp(rq->method, "POST")) {
        const char *tag = vt__http_query(rq, "tag");
        vt__http_json(rs, 200, json_pack("{s:I,s:s}", "bytes", (json_int_t)rq->body_len, "tag", tag ? tag : ""));
    } else {
        const vt_asset *a = vt__asset_find(rq->path);
        if (a) {
            rs->status = 200;
            rs->content_type = a->mime;
            rs->body = (uint8_t *)a->data;
            rs->len = a->len;
            rs->body_static = 1;
        } else {
            vt__http_error(rs, 404, "not_found", "no route for %s %s", rq->method, rq->path);
        }
    }
}

/* Sends a raw request and reads the whole response (the server closes: Connection: close). */
static char *http_raw(int port, const char *req, size_t reqlen, size_t bodypad) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof sa), 0);
    size_t off = 0;
    while (off < reqlen) {
        ssize_t w = send(s, req + off, reqlen - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += (size_t)w;
    }
    char pad[4096];
    memset(pad, 'x', sizeof pad);
    while (bodypad > 0) { /* a large body; the server may stop reading and answer early */
        ssize_t w = send(s, pad, bodypad < sizeof pad ? bodypad : sizeof pad, MSG_NOSIGNAL);
        if (w <= 0) break;
        bodypad -= (size_t)w;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    ssize_t r;
    while ((r = recv(s, buf + len, cap - len, 0)) > 0) {
        len += (size_t)r;
        if (len == cap) buf = realloc(buf, (cap *= 2) + 1);
    }
    buf[len] = 0;
    close(s);
    return buf;
}

static char *get(int port, const char *path) {
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    return http_raw(port, req, (size_t)n, 0);
}

static void test_routes_and_errors(void **state) {
    (void)state;
    vt__http *h;
    vt__http_opts o = {.port = 0, .threads = 2, .max_body = 1000};
    assert_int_equal(vt__http_start(&o, handler, NULL, &h), 0);
    int port = vt__http_port(h);
    assert_true(port > 0);

    char *r = get(port, "/healthz");
    assert_non_null(strstr(r, "HTTP/1.1 200"));
    assert_non_null(strstr(r, "application/json"));
    assert_non_null(strstr(r, "{\"status\":\"ok\"}"));
    free(r);

    r = get(port, "/nope");
    assert_non_null(strstr(r, "HTTP/1.1 404"));
    assert_non_null(strstr(r, "\"code\":\"not_found\""));
    free(r);

    /* the embedded page */
    r = get(port, "/");
    assert_non_null(strstr(r, "HTTP/1.1 200"));
    assert_non_null(strstr(r, "text/html"));
    assert_non_null(strstr(r, "<title>vitrine</title>"));
    free(r);
    r = get(port, "/app.js");
    assert_non_null(strstr(r, "text/javascript"));
    free(r);

    /* a body within the limit, with a query argument */
    const char *post = "POST /echo?tag=a%20b HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello";
    r = http_raw(port, post, strlen(post), 0);
    assert_non_null(strstr(r, "\"bytes\":5"));
    assert_non_null(strstr(r, "\"tag\":\"a b\""));
    free(r);

    /* declared too large: refused with 413 before the body is read */
    const char *big = "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 50000\r\n\r\n";
    r = http_raw(port, big, strlen(big), 50000);
    assert_non_null(strstr(r, "HTTP/1.1 413"));
    assert_non_null(strstr(r, "body_too_large"));
    free(r);

    /* chunked body that grows past the limit */
    char chunked[4096];
    int n = snprintf(chunked, sizeof chunked,
                     "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        n += snprintf(chunked + n, sizeof chunked - (size_t)n, "258\r\n");
        memset(chunked + n, 'y', 600);
        n += 600;
        n += snprintf(chunked + n, sizeof chunked - (size_t)n, "\r\n");
    }
    n += snprintf(chunked + n, sizeof chunked - (size_t)n, "0\r\n\r\n");
    r = http_raw(port, chunked, (size_t)n, 0);
    assert_non_null(strstr(r, "HTTP/1.1 413"));
    free(r);

    vt__http_stop(h);

    /* a bad bind address is a clear error */
    vt__http_opts bad = {.host = "not-an-ip"};
    assert_int_equal(vt__http_start(&bad, handler, NULL, &h), VT_EINVAL);
    assert_non_null(strstr(vt_errmsg(), "not-an-ip"));
}

/* Requests refused before the handler sees them, and errors whose message is not UTF-8. */
static void test_refused_requests(void **state) {
    (void)state;
    vt__http *h;
    vt__http_opts o = {.port = 0, .threads = 2, .max_body = 1000};
    assert_int_equal(vt__http_start(&o, handler, NULL, &h), 0);
    int port = vt__http_port(h);

    /* HTTP/1.1 without Host: 400 (RFC 9112 3.2); HTTP/1.0 does not need one */
    const char *nohost = "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n";
    char *r = http_raw(port, nohost, strlen(nohost), 0);
    assert_non_null(strstr(r, "HTTP/1.1 400"));
    assert_non_null(strstr(r, "\"code\":\"bad_request\""));
    assert_non_null(strstr(r, "Host"));
    free(r);
    const char *http10 = "GET /healthz HTTP/1.0\r\n\r\n";
    r = http_raw(port, http10, strlen(http10), 0);
    assert_non_null(strstr(r, " 200 "));
    free(r);

    /* bytes that are not UTF-8 in the path, a query value or a query key: 400, not a 500 */
    const char *bad[] = {"/missing%E9%ff", "/healthz?limit=%ff", "/healthz?%c3%28=1", "/healthz?x=%ed%a0%80",
                         "/healthz?x=%c0%af"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r = get(port, bad[i]);
        assert_non_null(strstr(r, "HTTP/1.1 400"));
        assert_non_null(strstr(r, "application/json"));
        assert_non_null(strstr(r, "not valid UTF-8"));
        assert_null(strstr(r, "out of memory"));
        free(r);
    }
    /* ... and UTF-8 is fine */
    r = get(port, "/healthz?colour=%C3%A9cru");
    assert_non_null(strstr(r, "HTTP/1.1 200"));
    free(r);

    /* a handler's error message quoting such bytes keeps its status */
    r = get(port, "/missing");
    assert_non_null(strstr(r, "HTTP/1.1 404"));
    assert_non_null(strstr(r, "no item with id '?" "?'"));
    assert_null(strstr(r, "out of memory"));
    free(r);
    vt__http_stop(h);
}

static void test_utf8_valid(void **state) {
    (void)state;
    const char *good[] = {"", "abc", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x91\x97", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf"};
    const char *bad[] = {"\xff", "\xe9", "\xc3", "\xc3\x28", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
                         "\xf4\x90\x80\x80", "\xf0\x9f\x91", "\x80", "a\xfe"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) assert_true(vt__utf8_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) assert_false(vt__utf8_valid(bad[i], strlen(bad[i])));
}

/* An Allow value set by the handler is sent as a header. */
static void allow_handler(void *app, const vt__http_req *rq, vt__http_resp *rs) {
    (void)app;
    rs->allow = "GET, HEAD";
    vt__http_error(rs, 405, "method_not_allowed", "%s is not allowed on %s", rq->method, rq->path);
}

static void test_allow_header(void **state) {
    (void)state;
    vt__http *h;
    vt__http_opts o = {.port = 0, .threads = 1};
    assert_int_equal(vt__http_start(&o, allow_handler, NULL, &h), 0);
    const char *del = "DELETE /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char *r = http_raw(vt__http_port(h), del, strlen(del), 0);
    assert_non_null(strstr(r, "HTTP/1.1 405"));
    assert_non_null(strstr(r, "\r\nAllow: GET, HEAD\r\n"));
    free(r);
    vt__http_stop(h);
}

/* Only regular files that start like a photo are read; links, FIFOs, devices, folders and other
 * files are refused without blocking. */
static void test_image_file(void **state) {
    (void)state;
    static const uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0xff, 0xd9};
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    static const char webp[] = "RIFF\x10\0\0\0WEBPVP8L....";
    assert_int_equal(tu_write(tu_path("a.jpg"), jpeg, sizeof jpeg), 0);
    assert_int_equal(tu_write(tu_path("a.png"), png, sizeof png), 0);
    assert_int_equal(tu_write(tu_path("a.webp"), webp, sizeof webp - 1), 0);
    assert_int_equal(tu_write(tu_path("passwd.jpg"), "root:x:0:0:root:/root:/bin/sh\n", 30), 0);
    assert_int_equal(tu_write(tu_path("short.jpg"), "\xff\xd8", 2), 0);
    char target[4096];
    snprintf(target, sizeof target, "%s", tu_path("a.jpg"));
    assert_int_equal(symlink(target, tu_path("link.jpg")), 0);
    assert_int_equal(mkfifo(tu_path("fifo.jpg"), 0600), 0);

    const struct { const char *path, *mime; const void *bytes; size_t len; int rc; } cases[] = {
        {tu_path("a.jpg"), "image/jpeg", jpeg, sizeof jpeg, 0},
        {tu_path("a.png"), "image/png", png, sizeof png, 0},
        {tu_path("a.webp"), "image/webp", webp, sizeof webp - 1, 0},
        {tu_path("passwd.jpg"), NULL, NULL, 0, VT_ENOTIMAGE},
        {tu_path("short.jpg"), NULL, NULL, 0, VT_ENOTIMAGE},
        {tu_path("link.jpg"), NULL, NULL, 0, VT_ENOENT},
        {tu_path("fifo.jpg"), NULL, NULL, 0, VT_ENOTIMAGE},
        {tu_tmpdir(), NULL, NULL, 0, VT_ENOTIMAGE},
        {"/dev/zero", NULL, NULL, 0, VT_ENOTIMAGE},
        {"/etc/passwd", NULL, NULL, 0, VT_ENOTIMAGE},
        {tu_path("none.jpg"), NULL, NULL, 0, VT_ENOENT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint8_t *buf = (uint8_t *)"x";
        size_t len = 99;
        const char *mime = "x";
        int rc = vt__image_file_read(cases[i].path, 1 << 20, &buf, &len, &mime);
        if (rc != cases[i].rc) fail_msg("%s: %d, expected %d (%s)", cases[i].path, rc, cases[i].rc, vt_errmsg());
        if (rc == 0) {
            assert_string_equal(mime, cases[i].mime);
            assert_int_equal(len, cases[i].len);
            assert_memory_equal(buf, cases[i].bytes, len);
            free(buf);
        } else {
            assert_null(buf);
            assert_null(mime);
            assert_int_equal(len, 0);
        }
    }
    /* a photo above the limit */
    uint8_t *buf;
    size_t len;
    const char *mime;
    assert_int_equal(vt__image_file_read(tu_path("a.jpg"), 8, &buf, &len, &mime), VT_ETOOBIG);
}

/* The filterable fields come from the store: indexed ones in any case, attributes as spelt. */
static void test_fields(void **state) {
    (void)state;
    vt_store *st;
    assert_int_equal(vt_store_open(tu_path("fields.db"), 0, &st), 0);
    vt_item a = {.id = "1", .attrs = "{\"gender\":\"Men\",\"season\":\"Summer\"}"};
    vt_item b = {.id = "2", .attrs = "{\"Usage\":\"Casual\",\"product name\":\"x\",\"season\":\"Fall\"}"};
    assert_int_equal(vt_store_put(st, &a, NULL), 0);
    assert_int_equal(vt_store_put(st, &b, NULL), 0);
    vt_fields *f;
    assert_int_equal(vt_fields_load(st, &f), 0);
    const char *yes[] = {"season", "Usage", "gender", "GENDER", "colour", "color", "category", "id", "articleType"};
    const char *no[] = {"Season", "usage", "product name", "foo", "q", "sort", ""};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) assert_true(vt_fields_has(f, yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) assert_false(vt_fields_has(f, no[i]));
    assert_string_equal(vt_fields_list(f), "articleType, baseColour, gender, id, masterCategory, season, subCategory, Usage");
    vt_fields_free(f);
    vt_store_close(st);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_routes_and_errors), cmocka_unit_test(test_refused_requests),
                                       cmocka_unit_test(test_utf8_valid), cmocka_unit_test(test_allow_header),
                                       cmocka_unit_test(test_image_file), cmocka_unit_test(test_fields)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
