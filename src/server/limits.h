/* limits.h: what one client can cost the server: the request read deadline (against slowloris),
 * the budget of request-body bytes buffered at once, and the photo-search admission (pixel limit
 * read from the upload's header, a bounded number of decodes at once). */
#ifndef VT_SERVER_LIMITS_H
#define VT_SERVER_LIMITS_H
#include "server/http_internal.h"

#include <pthread.h>

#define VT_DEFAULT_MAX_UPLOAD_PIXELS 25000000ull
#define VT_DEFAULT_DECODE_WAIT_MS 250
#define VT_DEFAULT_MAX_CONNS 1024
#define VT_DEFAULT_MAX_CONNS_PER_IP 32
#define VT_DEFAULT_REQUEST_TIMEOUT 10
#define VT_DEFAULT_MAX_UPLOAD_MEMORY (64u << 20)

/* ------------------------------------------------------------------ read deadline */

/* Watches connections: each request must be read whole (headers and body) within `timeout_s`
 * of the connection opening or of the previous request's end; a thread shuts down the socket of
 * one that is not, and libmicrohttpd then closes it as a broken connection. */
typedef struct vt__watch vt__watch;
typedef struct vt__watch_conn vt__watch_conn;

int vt__watch_start(double timeout_s, vt__watch **out);
/* Stops the thread; call after the HTTP daemon has stopped (no more connections). */
void vt__watch_stop(vt__watch *w);
/* A new connection on socket fd: its first request's deadline starts now. NULL when out of
 * memory (the connection is then not watched). */
vt__watch_conn *vt__watch_open(vt__watch *w, int fd);
/* The connection is closing (before its socket is closed): forget it. */
void vt__watch_close(vt__watch *w, vt__watch_conn *c);
/* The current request has been read whole: no deadline while it is answered. */
void vt__watch_read_done(vt__watch *w, vt__watch_conn *c);
/* The request has ended: the next one's deadline starts now. */
void vt__watch_next(vt__watch *w, vt__watch_conn *c);
/* Connections shut down so far for missing their deadline. */
unsigned long vt__watch_cut_count(vt__watch *w);

/* ------------------------------------------------------------------ body budget */

/* Bytes of request bodies buffered at once, over all connections. */
typedef struct {
    pthread_mutex_t mu;
    size_t used, limit;
} vt__budget;

void vt__budget_init(vt__budget *b, size_t limit);
void vt__budget_destroy(vt__budget *b);
/* Grows *buf (capacity *cap, charged to b) to hold at least `need` bytes: to `hint` when that is
 * larger (the announced Content-Length), else doubling, never above `most`. VT_ETOOBIG when the
 * budget cannot take it, VT_ENOMEM when malloc fails; *buf and *cap are then unchanged. */
int vt__budget_grow(vt__budget *b, uint8_t **buf, size_t *cap, size_t need, size_t hint, size_t most);
/* Returns `n` bytes to the budget. */
void vt__budget_give(vt__budget *b, size_t n);

/* ------------------------------------------------------------------ photo-search admission */

typedef struct vt__uploads vt__uploads;

/* max_pixels: larger uploads get 413; max_decodes: photo searches at once (0: 2, or 1 when the
 * server has fewer than 4 worker threads, so that one is always left for other requests: a search
 * holds its thread while it decodes); wait_ms: how long a search waits for its turn before 503
 * (0: the default above; < 0: no wait). */
int vt__uploads_create(uint64_t max_pixels, int max_decodes, int threads, int wait_ms, vt__uploads **out);
void vt__uploads_free(vt__uploads *u);
/* Admits a photo search of the encoded image `body`: 0 when admitted (call vt__uploads_done
 * after decoding); otherwise -1 with rs filled: 413 when the header declares more pixels than
 * allowed, 503 with Retry-After when every decode slot stays busy for the wait. */
int vt__uploads_admit(vt__uploads *u, const uint8_t *body, size_t len, vt__http_resp *rs);
void vt__uploads_done(vt__uploads *u);

/* The connection limit to use: `want` (0: the default), lowered to leave 64 descriptors under
 * the process's open-file limit for the store, images and logs. */
unsigned vt__conn_limit(int want);
#endif
