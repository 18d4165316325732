/* progress.c: progress reporting on stderr: a redrawn bar on a terminal, periodic lines otherwise. */
#include "internal.h"
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct vt_progress {
    pthread_mutex_t mu;
    char label[64], unit[16], status[160];
    uint64_t total, done;
    double start, last_draw, interval;
    int tty, quiet, drew;
};

double vt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fmt_duration(char *buf, size_t n, double s) {
    if (s < 0 || s > 1e7) {
        snprintf(buf, n, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else
        snprintf(buf, n, "%02ld:%02ld", t / 60, t % 60);
}

int vt_progress_create(const char *label, uint64_t total, const char *unit, vt_progress **out) {
    vt_progress *p = calloc(1, sizeof *p);
    if (!p) return vt__err(VT_ENOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "items");
    p->total = total;
    p->start = p->last_draw = vt_now();
    p->tty = isatty(STDERR_FILENO);
    const char *q = getenv("VITRINE_PROGRESS");
    p->quiet = q && strcmp(q, "0") == 0;
    const char *iv = getenv("VITRINE_PROGRESS_INTERVAL");
    p->interval = p->tty ? 0.1 : (iv ? atof(iv) : 10.0);
    if (p->interval < 0.05) p->interval = 0.05;
    *out = p;
    return VT_OK;
}

/* Draws one report; caller holds the lock. */
static void draw(vt_progress *p, double now, int final) {
    double el = now - p->start;
    double rate = el > 0 ? (double)p->done / el : 0;
    char eta[32], elapsed[32];
    fmt_duration(elapsed, sizeof elapsed, el);
    fmt_duration(eta, sizeof eta, (p->total && rate > 0) ? (double)(p->total - VT_MIN(p->done, p->total)) / rate : -1);
    const char *sep = p->status[0] ? "  " : "";
    if (p->tty) {
        char bar[31];
        int w = 30, fill = p->total ? (int)((double)VT_MIN(p->done, p->total) * w / (double)p->total) : 0;
        for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
        bar[w] = 0;
        if (p->total)
            fprintf(stderr, "\r\033[K%s [%s] %llu/%llu %.1f %s/s ETA %s%s%s", p->label, bar,
                    (unsigned long long)p->done, (unsigned long long)p->total, rate, p->unit, eta, sep, p->status);
        else
            fprintf(stderr, "\r\033[K%s %llu %s %.1f %s/s %s%s%s", p->label, (unsigned long long)p->done, p->unit,
                    rate, p->unit, elapsed, sep, p->status);
        if (final) fputc('\n', stderr);
    } else if (p->total) {
        fprintf(stderr, "%s: %llu/%llu %s (%.0f%%) %.1f %s/s elapsed %s ETA %s%s%s\n", p->label,
                (unsigned long long)p->done, (unsigned long long)p->total, p->unit,
                100.0 * (double)p->done / (double)p->total, rate, p->unit, elapsed, final ? "00:00" : eta, sep,
                p->status);
    } else {
        fprintf(stderr, "%s: %llu %s %.1f %s/s elapsed %s%s%s\n", p->label, (unsigned long long)p->done, p->unit,
                rate, p->unit, elapsed, sep, p->status);
    }
    fflush(stderr);
    p->drew = 1;
}

void vt_progress_add(vt_progress *p, uint64_t n, const char *status) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->done += n;
    if (status) snprintf(p->status, sizeof p->status, "%s", status);
    double now = vt_now();
    if (!p->quiet && now - p->last_draw >= p->interval) {
        p->last_draw = now;
        draw(p, now, 0);
    }
    pthread_mutex_unlock(&p->mu);
}

void vt_progress_finish(vt_progress *p) {
    if (!p) return;
    if (!p->quiet) draw(p, vt_now(), 1);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
