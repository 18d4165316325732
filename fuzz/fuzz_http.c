/* fuzz_http.c: libFuzzer target over the HTTP server: raw request bytes (request line, headers,
 * query strings, bodies) through libmicrohttpd and the real handler, over a socketpair. */
#include "vitrine.h"
#include "server/http_internal.h"
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void quiet(vt_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

static vt_server *g_srv;
static long g_waits; /* inputs that waited for a free connection slot */

static void report_waits(void) {
    if (getenv("VT_FUZZ_DEBUG")) fprintf(stderr, "fuzz_http: %ld inputs waited for a connection slot\n", g_waits);
}

/* A small catalog with attributes, photos that are not photos (a text file, a missing file) and
 * 8-dimensional embeddings, served with an exact index: every route has something to answer. */
static int setup(void) {
    char dir[] = "/tmp/vt-fuzz-http-XXXXXX";
    if (!mkdtemp(dir)) return -1;
    char db[256], txt[256];
    snprintf(db, sizeof db, "%s/shop.db", dir);
    snprintf(txt, sizeof txt, "%s/note.jpg", dir);
    FILE *f = fopen(txt, "w");
    if (!f) return -1;
    fputs("not a photo\n", f);
    fclose(f);
    vt_store *st;
    if (vt_store_open(db, 0, &st) || vt_store_begin(st)) return -1;
    static const char *const genders[] = {"Men", "Women", "Unisex"}, *const colours[] = {"Red", "Black", "Blue"};
    for (int i = 0; i < 30; i++) {
        char id[32], attrs[256];
        snprintf(id, sizeof id, i == 7 ? "a#b%d" : "item%d", i);
        snprintf(attrs, sizeof attrs,
                 "{\"gender\":\"%s\",\"baseColour\":\"%s\",\"articleType\":\"Tshirts\",\"price\":%d}",
                 genders[i % 3], colours[(i / 3) % 3], 10 + i);
        vt_item it = {.id = id, .attrs = attrs, .image = i % 2 ? txt : "/nonexistent/x.jpg"};
        int64_t label;
        float v[8];
        for (int k = 0; k < 8; k++) v[k] = (float)((i * 7 + k * 3) % 11) - 5.0f + (k == i % 8);
        if (vt_store_put(st, &it, &label) || vt_store_put_embedding(st, label, "m", v, 8, 0)) return -1;
    }
    if (vt_store_commit(st)) return -1;
    vt_engine_opts eo;
    vt_engine_opts_init(&eo);
    eo.model_name = "m";
    eo.index_kind = VT_INDEX_FLAT;
    eo.threads = 1;
    vt_engine *e;
    if (vt_engine_open(st, &eo, &e)) return -1;
    vt_server_opts so;
    vt_server_opts_init(&so);
    so.port = 0;
    so.threads = 1;
    so.max_body = 1 << 16;
    so.request_timeout = 1; /* an incomplete request is cut after 1 s, in the background */
    so.max_conns_per_ip = 1000;
    return vt_server_start(st, e, &so, &g_srv);
}

/* Sends the input as one client's bytes, closes the sending side and reads the answer until the
 * server closes. An input that is not a whole request gets no answer (libmicrohttpd waits for the
 * rest until the server's request deadline cuts it): after 5 ms without a first byte the input
 * is left to that deadline (a whole request is answered well within that), and an input without
 * a blank line is not waited for at all. The server must never crash, and must begin every answer with a status
 * line. VT_FUZZ_DEBUG=1 prints what was
 * sent and received. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        vt_log_set_handler(quiet, NULL);
        if (setup()) {
            fprintf(stderr, "fuzz_http: setup failed: %s\n", vt_errmsg());
            abort();
        }
        atexit(report_waits);
        init = 1;
    }
    /* Incomplete requests hold their connection until the 1 s deadline: when the server is full,
     * wait for room rather than skip the input. libmicrohttpd closes a socket it refuses, so each
     * try makes a new pair. */
    int sv[2];
    for (int tries = 0;; tries++) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) return 0;
        if (vt__server_add_connection(g_srv, sv[1]) == 0) break;
        close(sv[0]);
        if (tries == 5000) {
            fprintf(stderr, "fuzz_http: the server took no connection for 5 s: %s\n", vt_errmsg());
            abort();
        }
        if (tries == 0) g_waits++;
        usleep(1000);
    }
    size_t off = 0;
    while (off < size) {
        struct pollfd p = {.fd = sv[0], .events = POLLOUT};
        if (poll(&p, 1, 5000) <= 0) break;
        ssize_t w = send(sv[0], data + off, size - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += (size_t)w;
    }
    shutdown(sv[0], SHUT_WR);
    /* Only an input with a blank line can hold a whole request: for the others no answer is waited
     * for (the server still reads and handles the bytes; a crash there stops the run all the same). */
    int whole = memmem(data, size, "\r\n\r\n", 4) || memmem(data, size, "\n\n", 2);
    char buf[8192];
    size_t got = 0;
    char head[8];
    for (;;) {
        struct pollfd p = {.fd = sv[0], .events = POLLIN};
        if (poll(&p, 1, got ? 3000 : whole ? 5 : 0) <= 0) break;
        ssize_t r = recv(sv[0], buf, sizeof buf, 0);
        if (r <= 0) break;
        if (got < sizeof head) memcpy(head + got, buf, (size_t)r < sizeof head - got ? (size_t)r : sizeof head - got);
        got += (size_t)r;
    }
    close(sv[0]);
    if (getenv("VT_FUZZ_DEBUG")) fprintf(stderr, "fuzz_http: sent %zu of %zu bytes, got %zu: %.8s\n", off, size, got, got >= 8 ? head : "");
    if (got >= sizeof head && memcmp(head, "HTTP/1.", 7) != 0) __builtin_trap();
    return 0;
}
