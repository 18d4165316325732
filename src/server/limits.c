/* limits.c: the request read deadline, the request-body budget and photo-search admission that
 * bound what one client can cost the server (memory, connections, decode time). */
#include "server/limits.h"
#include "core/internal.h"
#include "image/image_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

/* ------------------------------------------------------------------ read deadline */

struct vt__watch_conn {
    int fd;
    double deadline; /* vt_now() seconds; 0: none (request being answered) */
    int cut;         /* socket already shut down */
    vt__watch_conn *prev, *next;
};

struct vt__watch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    double timeout;
    int stop;
    unsigned long cuts;
    vt__watch_conn *head;
};

/* Every quarter second, shuts down the sockets of connections past their deadline (unless the
 * server has yet to read what the client sent). The socket is
 * only touched under the mutex that vt__watch_close takes, and libmicrohttpd reports a connection
 * closed before it closes the socket, so a descriptor is never shut down after being reused. */
static void *watch_main(void *arg) {
    vt__watch *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        double now = vt_now();
        for (vt__watch_conn *c = w->head; c; c = c->next) {
            if (c->cut || c->deadline == 0 || now < c->deadline) continue;
            /* Bytes the server has not read yet: its thread is busy (answering a request on
             * another connection), the client is not the slow one. Checked again next round. */
            int pending = 0;
            if (ioctl(c->fd, FIONREAD, &pending) == 0 && pending > 0) continue;
            shutdown(c->fd, SHUT_RDWR);
            c->cut = 1;
            w->cuts++;
            VT_LOGD("http: closed a connection that did not send a whole request within %.0f s", w->timeout);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int vt__watch_start(double timeout_s, vt__watch **out) {
    *out = NULL;
    vt__watch *w = calloc(1, sizeof *w);
    if (!w) return vt__err(VT_ENOMEM, "out of memory");
    w->timeout = timeout_s > 0 ? timeout_s : VT_DEFAULT_REQUEST_TIMEOUT;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, watch_main, w)) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return vt__err(VT_EINTERNAL, "http: cannot start the request-deadline thread");
    }
    *out = w;
    return VT_OK;
}

void vt__watch_stop(vt__watch *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    while (w->head) { /* none left once the daemon has stopped; freed in case */
        vt__watch_conn *c = w->head;
        w->head = c->next;
        free(c);
    }
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

vt__watch_conn *vt__watch_open(vt__watch *w, int fd) {
    vt__watch_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = fd;
    pthread_mutex_lock(&w->mu);
    c->deadline = vt_now() + w->timeout;
    c->next = w->head;
    if (w->head) w->head->prev = c;
    w->head = c;
    pthread_mutex_unlock(&w->mu);
    return c;
}

void vt__watch_close(vt__watch *w, vt__watch_conn *c) {
    if (!c) return;
    pthread_mutex_lock(&w->mu);
    if (c->prev) c->prev->next = c->next;
    else w->head = c->next;
    if (c->next) c->next->prev = c->prev;
    pthread_mutex_unlock(&w->mu);
    free(c);
}

void vt__watch_read_done(vt__watch *w, vt__watch_conn *c) {
    if (!c) return;
    pthread_mutex_lock(&w->mu);
    c->deadline = 0;
    pthread_mutex_unlock(&w->mu);
}

void vt__watch_next(vt__watch *w, vt__watch_conn *c) {
    if (!c) return;
    pthread_mutex_lock(&w->mu);
    c->deadline = vt_now() + w->timeout;
    pthread_mutex_unlock(&w->mu);
}

unsigned long vt__watch_cut_count(vt__watch *w) {
    pthread_mutex_lock(&w->mu);
    unsigned long n = w->cuts;
    pthread_mutex_unlock(&w->mu);
    return n;
}

/* ------------------------------------------------------------------ body budget */

void vt__budget_init(vt__budget *b, size_t limit) {
    pthread_mutex_init(&b->mu, NULL);
    b->used = 0;
    b->limit = limit ? limit : VT_DEFAULT_MAX_UPLOAD_MEMORY;
}

void vt__budget_destroy(vt__budget *b) { pthread_mutex_destroy(&b->mu); }

int vt__budget_grow(vt__budget *b, uint8_t **buf, size_t *cap, size_t need, size_t hint, size_t most) {
    if (need <= *cap) return VT_OK;
    size_t want = hint >= need ? hint : VT_MAX(*cap * 2, need);
    if (want > most) want = VT_MAX(most, need);
    size_t more = want - *cap;
    pthread_mutex_lock(&b->mu);
    int ok = b->used <= b->limit && more <= b->limit - b->used;
    if (ok) b->used += more;
    pthread_mutex_unlock(&b->mu);
    if (!ok) return VT_ETOOBIG;
    uint8_t *nb = realloc(*buf, want);
    if (!nb) {
        vt__budget_give(b, more);
        return VT_ENOMEM;
    }
    *buf = nb;
    *cap = want;
    return VT_OK;
}

void vt__budget_give(vt__budget *b, size_t n) {
    if (!n) return;
    pthread_mutex_lock(&b->mu);
    b->used = n > b->used ? 0 : b->used - n;
    pthread_mutex_unlock(&b->mu);
}

/* ------------------------------------------------------------------ photo-search admission */

struct vt__uploads {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t max_pixels;
    int slots, busy, wait_ms;
};

int vt__uploads_create(uint64_t max_pixels, int max_decodes, int threads, int wait_ms, vt__uploads **out) {
    *out = NULL;
    vt__uploads *u = calloc(1, sizeof *u);
    if (!u) return vt__err(VT_ENOMEM, "out of memory");
    u->max_pixels = max_pixels ? max_pixels : VT_DEFAULT_MAX_UPLOAD_PIXELS;
    if (threads <= 0) threads = vt_cpu_count();
    u->slots = max_decodes > 0 ? max_decodes : threads >= 4 ? 2 : 1;
    u->wait_ms = wait_ms == 0 ? VT_DEFAULT_DECODE_WAIT_MS : wait_ms < 0 ? 0 : wait_ms;
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    *out = u;
    return VT_OK;
}

void vt__uploads_free(vt__uploads *u) {
    if (!u) return;
    pthread_cond_destroy(&u->cv);
    pthread_mutex_destroy(&u->mu);
    free(u);
}

int vt__uploads_admit(vt__uploads *u, const uint8_t *body, size_t len, vt__http_resp *rs) {
    if (vt__image_check_pixels(body, len, "uploaded photo", u->max_pixels) == VT_ETOOBIG) {
        vt__http_error(rs, 413, "image_too_large", "%s", vt_errmsg());
        return -1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = ts.tv_nsec + (long long)u->wait_ms * 1000000LL;
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    pthread_mutex_lock(&u->mu);
    int rc = 0;
    while (u->busy >= u->slots && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&u->cv, &u->mu, &ts);
    int admitted = u->busy < u->slots;
    if (admitted) u->busy++;
    pthread_mutex_unlock(&u->mu);
    if (admitted) return 0;
    vt__http_error(rs, 503, "busy", "%d photo searches are being decoded, the most at once; try again shortly",
                   u->slots);
    rs->retry_after = 1;
    return -1;
}

void vt__uploads_done(vt__uploads *u) {
    pthread_mutex_lock(&u->mu);
    u->busy--;
    pthread_cond_signal(&u->cv);
    pthread_mutex_unlock(&u->mu);
}

unsigned vt__conn_limit(int want) {
    unsigned n = want > 0 ? (unsigned)want : VT_DEFAULT_MAX_CONNS;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        rlim_t room = rl.rlim_cur > 128 ? rl.rlim_cur - 64 : 64;
        if (n > room) {
            VT_LOGW("http: %u connections requested, only %llu fit the open-file limit (ulimit -n %llu)", n,
                    (unsigned long long)room, (unsigned long long)rl.rlim_cur);
            n = (unsigned)room;
        }
    }
    return n;
}
