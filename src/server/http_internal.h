/* http_internal.h: the HTTP layer under the REST API: libmicrohttpd with a thread pool, request
 * bodies bounded in size, routing by a handler, JSON and error responses (jansson). */
#ifndef VT_SERVER_HTTP_INTERNAL_H
#define VT_SERVER_HTTP_INTERNAL_H
#include "vitrine.h"
#include <jansson.h>

typedef struct vt__http vt__http;

typedef struct vt__http_req {
    const char *method;   /* "GET", "POST", ... */
    const char *path;     /* URL path, percent-decoded by libmicrohttpd, without the query */
    const uint8_t *body;  /* request body (NULL when empty) */
    size_t body_len;
    void *conn;           /* the libmicrohttpd connection (for query and header lookups) */
} vt__http_req;

typedef struct vt__http_resp {
    int status;
    const char *content_type;
    uint8_t *body;        /* malloc'd unless body_static */
    size_t len;
    int body_static;
    char cache_control[64]; /* optional Cache-Control value */
    const char *allow;    /* optional Allow value (static), sent with 405 answers */
    int retry_after;        /* > 0: a Retry-After header of that many seconds */
} vt__http_resp;

/* Fills `rs` for request `rq`. Runs on the server's worker threads, concurrently. */
typedef void (*vt__http_handler)(void *app, const vt__http_req *rq, vt__http_resp *rs);

typedef struct vt__http_opts {
    const char *host;     /* bind address (NULL: 127.0.0.1) */
    int port;             /* 0: any free port (see vt__http_port) */
    int threads;          /* worker threads (0: CPUs) */
    size_t max_body;      /* larger request bodies get 413 (0: 16 MiB) */
    /* Limits on what clients can hold (server/limits.h; 0: the defaults there). */
    int max_conns;        /* connections at once (lowered to fit the open-file limit) */
    int max_conns_per_ip; /* connections at once from one address; more are closed at accept */
    int request_timeout;  /* seconds to read a whole request, headers and body */
    size_t max_upload_memory; /* request-body bytes buffered at once, all connections; 503 beyond */
} vt__http_opts;

int vt__http_start(const vt__http_opts *o, vt__http_handler fn, void *app, vt__http **out);
int vt__http_port(const vt__http *h);
/* Hands the daemon a connection already open on `fd` (e.g. one end of a socketpair), as if a
 * client at 127.0.0.1 had connected; the daemon owns and closes fd. For the HTTP fuzz target,
 * which feeds raw requests through the whole stack without a network socket. */
int vt__http_add_connection(vt__http *h, int fd);
/* The same for a running server (server.c). */
struct vt_server;
int vt__server_add_connection(struct vt_server *s, int fd);
void vt__http_stop(vt__http *h);

/* A query-string argument of the request, or NULL. */
const char *vt__http_query(const vt__http_req *rq, const char *key);
/* Calls fn for every query argument (key, value may be NULL); stops when fn returns nonzero. */
void vt__http_query_each(const vt__http_req *rq, int (*fn)(void *ctx, const char *k, const char *v), void *ctx);
/* A request header, or NULL. */
const char *vt__http_header(const vt__http_req *rq, const char *name);

/* Nonzero when the n bytes at s are well-formed UTF-8 (no overlongs, surrogates or code points
 * above U+10FFFF). The HTTP layer answers 400 to any request whose path or query arguments are not:
 * JSON cannot carry them, and no catalog id or field contains them. */
int vt__utf8_valid(const char *s, size_t n);

/* Sets a JSON body (takes ownership of j). A body that cannot be encoded becomes a 500 "internal"
 * error saying so. */
void vt__http_json(vt__http_resp *rs, int status, json_t *j);
/* Sets the JSON error body {"error": {"status": S, "code": CODE, "message": MSG}}. Bytes of MSG that
 * are not UTF-8 (say, from a request argument) are shown as '?', so the status always stands. */
void vt__http_error(vt__http_resp *rs, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#endif
