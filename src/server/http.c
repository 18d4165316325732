/* http.c: libmicrohttpd wrapper: thread pool, bounded bodies, one handler, JSON responses. */
#include "server/http_internal.h"
#include "server/limits.h"
#include "core/internal.h"

#include <microhttpd.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <string.h>

#define DEFAULT_MAX_BODY (16u << 20)

struct vt__http {
    struct MHD_Daemon *d;
    vt__http_handler fn;
    void *app;
    size_t max_body;
    int port;
    vt__watch *watch;  /* request read deadline */
    vt__budget budget; /* request-body bytes buffered at once */
};

/* Per-request state, kept in libmicrohttpd's con_cls between calls. */
typedef struct {
    uint8_t *body;
    size_t len, cap;   /* cap: charged to the body budget */
    int too_big;
    int answered; /* refused on the first call, before any body was read */
    int busy;          /* the body budget was spent: 503 */
} req_state;

int vt__utf8_valid(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2, cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3, cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4, cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += len;
    }
    return 1;
}

void vt__http_json(vt__http_resp *rs, int status, json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(j);
    if (!rs->body_static) free(rs->body);
    rs->body_static = 0;
    if (!s) {
        /* jansson refuses invalid UTF-8 as well as failing to allocate: not necessarily memory */
        static const char fail[] =
            "{\"error\":{\"status\":500,\"code\":\"internal\",\"message\":\"the response could not be encoded as JSON\"}}";
        VT_LOGE("http: a %d response could not be encoded as JSON", status);
        rs->status = 500;
        rs->body = (uint8_t *)fail;
        rs->len = sizeof fail - 1;
        rs->body_static = 1;
    } else {
        rs->status = status;
        rs->body = (uint8_t *)s;
        rs->len = strlen(s);
    }
    rs->content_type = "application/json";
}

void vt__http_error(vt__http_resp *rs, int status, const char *code, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* vsnprintf may also have cut a multi-byte character in two at the end */
    for (size_t i = 0, n = strlen(msg); i < n;) {
        size_t k = 1;
        while (k <= 4 && i + k <= n && !vt__utf8_valid(msg + i, k)) k++;
        if (k > 4 || i + k > n) msg[i++] = '?';
        else i += k;
    }
    vt__http_json(rs, status, json_pack("{s:{s:i,s:s,s:s}}", "error", "status", status, "code", code, "message", msg));
}

const char *vt__http_query(const vt__http_req *rq, const char *key) {
    return MHD_lookup_connection_value((struct MHD_Connection *)rq->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *vt__http_header(const vt__http_req *rq, const char *name) {
    return MHD_lookup_connection_value((struct MHD_Connection *)rq->conn, MHD_HEADER_KIND, name);
}

typedef struct {
    int (*fn)(void *, const char *, const char *);
    void *ctx;
} each_ctx;

static enum MHD_Result each_cb(void *cls, enum MHD_ValueKind kind, const char *k, const char *v) {
    (void)kind;
    each_ctx *e = cls;
    return e->fn(e->ctx, k, v) ? MHD_NO : MHD_YES;
}

void vt__http_query_each(const vt__http_req *rq, int (*fn)(void *ctx, const char *k, const char *v), void *ctx) {
    each_ctx e = {fn, ctx};
    MHD_get_connection_values((struct MHD_Connection *)rq->conn, MHD_GET_ARGUMENT_KIND, each_cb, &e);
}

static enum MHD_Result send_resp(struct MHD_Connection *c, vt__http_resp *rs) {
    struct MHD_Response *r;
    if (rs->body_static)
        r = MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_PERSISTENT);
    else
        r = MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        if (!rs->body_static) free(rs->body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", rs->content_type ? rs->content_type : "application/octet-stream");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (rs->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", rs->retry_after);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    if (rs->cache_control[0]) MHD_add_response_header(r, "Cache-Control", rs->cache_control);
    if (rs->allow) MHD_add_response_header(r, "Allow", rs->allow);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)rs->status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result utf8_arg(void *cls, enum MHD_ValueKind kind, const char *k, const char *v) {
    (void)kind;
    int *bad = cls;
    if (!vt__utf8_valid(k, strlen(k)) || (v && !vt__utf8_valid(v, strlen(v)))) {
        *bad = 1;
        return MHD_NO;
    }
    return MHD_YES;
}

/* Checks what every request must satisfy before it reaches the handler: HTTP/1.1 requests carry a
 * Host header (RFC 9112 3.2), and the path and query arguments are UTF-8. Fills rs and returns 1
 * when the request is refused. */
static int refuse_early(struct MHD_Connection *c, const char *url, const char *version, vt__http_resp *rs) {
    if (version && !strcmp(version, MHD_HTTP_VERSION_1_1) &&
        !MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST)) {
        vt__http_error(rs, 400, "bad_request", "an HTTP/1.1 request needs a Host header");
        return 1;
    }
    int bad = !vt__utf8_valid(url, strlen(url));
    if (!bad) MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, utf8_arg, &bad);
    if (bad) {
        vt__http_error(rs, 400, "bad_request", "the request path or a query argument is not valid UTF-8");
        return 1;
    }
    return 0;
}

/* The read-deadline entry of a connection (NULL when it is not watched). */
static vt__watch_conn *watch_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Makes room for `need` body bytes within the body budget (exactly `need` when it is the
 * announced length). Sets st->busy when the budget is spent; VT_ENOMEM when malloc fails. */
static int grow_body(vt__http *h, req_state *st, size_t need, int announced) {
    int rc = vt__budget_grow(&h->budget, &st->body, &st->cap, need, announced ? need : 0, h->max_body);
    if (rc == VT_ETOOBIG) st->busy = 1;
    return rc;
}

static void free_body(vt__http *h, req_state *st) {
    free(st->body);
    st->body = NULL;
    vt__budget_give(&h->budget, st->cap);
    st->len = st->cap = 0;
}

/* 503 for a body that does not fit the budget of bodies buffered at once. */
static enum MHD_Result busy_resp(struct MHD_Connection *c, vt__http *h, req_state *st) {
    free_body(h, st);
    vt__http_resp rs = {0};
    vt__http_error(&rs, 503, "busy", "the server is receiving %zu bytes of uploads already, its limit; try again shortly",
                   h->budget.limit);
    rs.retry_after = 1;
    return send_resp(c, &rs);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    vt__http *h = cls;
    req_state *st = *con_cls;
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st) return MHD_NO;
        *con_cls = st;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > h->max_body) {
            /* Refuse before reading the body; libmicrohttpd closes the connection after it. */
            vt__http_resp rs = {0};
            vt__http_error(&rs, 413, "body_too_large", "request body of %s bytes is above the limit of %zu bytes",
                           cl, h->max_body);
            st->too_big = st->answered = 1;
            return send_resp(c, &rs);
        }
        vt__http_resp rs = {0};
        if (refuse_early(c, url, version, &rs)) {
            st->too_big = st->answered = 1; /* any body is not kept */
            return send_resp(c, &rs);
        }
        if (cl && grow_body(h, st, (size_t)strtoull(cl, NULL, 10), 1)) return busy_resp(c, h, st);
        return MHD_YES;
    }
    if (*upload_size) {
        if (!st->too_big) {
            if (st->len + *upload_size > h->max_body) {
                st->too_big = 1;
            } else {
                if (!st->busy && grow_body(h, st, st->len + *upload_size, 0) == VT_ENOMEM) return MHD_NO;
                if (!st->busy) memcpy(st->body + st->len, upload, *upload_size);
                st->len += *upload_size; /* counted when dropped too, for the size limit */
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    vt__watch_read_done(h->watch, watch_of(c));
    if (st->answered) return MHD_YES;
    vt__http_resp rs = {0};
    if (st->too_big) {
        vt__http_error(&rs, 413, "body_too_large", "request body is above the limit of %zu bytes", h->max_body);
    } else if (st->busy) {
        return busy_resp(c, h, st);
    } else {
        vt__http_req rq = {method, url, st->body, st->len, c};
        h->fn(h->app, &rq, &rs);
        if (!rs.body && !rs.status) vt__http_error(&rs, 500, "internal", "no response");
    }
    free_body(h, st); /* not kept while the response goes out */
    return send_resp(c, &rs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)toe;
    vt__http *h = cls;
    req_state *st = *con_cls;
    if (st) {
        free_body(h, st);
        free(st);
        *con_cls = NULL;
    }
    vt__watch_next(h->watch, watch_of(c));
}

/* Connections open and close: the read deadline watches each one from its start. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    vt__http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? vt__watch_open(h->watch, ci->connect_fd) : NULL;
    } else {
        vt__watch_close(h->watch, *socket_context);
        *socket_context = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
    VT_LOGI("http: %s", msg);
}

int vt__http_start(const vt__http_opts *o, vt__http_handler fn, void *app, vt__http **out) {
    *out = NULL;
    if (!fn) return vt__err(VT_EINVAL, "http: no handler");
    int port = o ? o->port : 0;
    if (port < 0 || port > 65535) return vt__err(VT_EINVAL, "http: port %d out of range", port);
    vt__http *h = calloc(1, sizeof *h);
    if (!h) return vt__err(VT_ENOMEM, "out of memory");
    h->fn = fn;
    h->app = app;
    h->max_body = o && o->max_body ? o->max_body : DEFAULT_MAX_BODY;
    vt__budget_init(&h->budget, o ? o->max_upload_memory : 0);
    int rc = vt__watch_start(o ? o->request_timeout : 0, &h->watch);
    if (rc) {
        vt__budget_destroy(&h->budget);
        free(h);
        return rc;
    }
    unsigned per_ip = o && o->max_conns_per_ip > 0 ? (unsigned)o->max_conns_per_ip : VT_DEFAULT_MAX_CONNS_PER_IP;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    const char *host = o && o->host ? o->host : "127.0.0.1";
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        vt__watch_stop(h->watch);
        vt__budget_destroy(&h->budget);
        free(h);
        return vt__err(VT_EINVAL, "http: '%s' is not an IPv4 address", host);
    }
    int threads = o && o->threads > 0 ? o->threads : vt_cpu_count();
    /* ITC: an event channel that wakes the polling threads, which MHD_add_connection needs */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL)) flags |= MHD_USE_EPOLL;
    h->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_CONNECTION_LIMIT,
                            vt__conn_limit(o ? o->max_conns : 0), MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_END);
    if (!h->d) {
        vt__watch_stop(h->watch);
        vt__budget_destroy(&h->budget);
        free(h);
        return vt__err(VT_EIO, "http: cannot listen on %s:%d (in use, or not allowed)", host, port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : port;
    *out = h;
    return VT_OK;
}

int vt__http_port(const vt__http *h) { return h ? h->port : 0; }

int vt__http_add_connection(vt__http *h, int fd) {
    if (!h || fd < 0) return vt__err(VT_EINVAL, "vt__http_add_connection: no server or descriptor");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(1), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (MHD_add_connection(h->d, fd, (const struct sockaddr *)&sa, sizeof sa) != MHD_YES)
        return vt__err(VT_EIO, "the server did not take the connection");
    return 0;
}

void vt__http_stop(vt__http *h) {
    if (!h) return;
    MHD_stop_daemon(h->d);
    vt__watch_stop(h->watch);
    vt__budget_destroy(&h->budget);
    free(h);
}
