/* log.c: levelled logging to stderr or to a handler the application installs. */
#include "internal.h"
#include <pthread.h>
#include <string.h>

static int g_level = -1; /* -1: not yet read from the environment */
static vt_log_fn g_fn;
static void *g_user;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static int level_from_env(void) {
    const char *e = getenv("VITRINE_LOG");
    if (!e) return VT_LOG_WARN;
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (strcmp(e, names[i]) == 0) return i;
    return VT_LOG_WARN;
}

void vt_log_set_level(vt_log_level level) { __atomic_store_n(&g_level, (int)level, __ATOMIC_RELAXED); }

vt_log_level vt_log_get_level(void) {
    int l = __atomic_load_n(&g_level, __ATOMIC_RELAXED);
    if (l < 0) {
        l = level_from_env();
        __atomic_store_n(&g_level, l, __ATOMIC_RELAXED);
    }
    return (vt_log_level)l;
}

void vt_log_set_handler(vt_log_fn fn, void *user) {
    pthread_mutex_lock(&g_mu);
    g_fn = fn;
    g_user = user;
    pthread_mutex_unlock(&g_mu);
}

void vt_log(vt_log_level level, const char *fmt, ...) {
    if (level < vt_log_get_level() || level >= VT_LOG_OFF) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    static const char *tags[] = {"debug", "info", "warning", "error"};
    pthread_mutex_lock(&g_mu);
    if (g_fn)
        g_fn(level, msg, g_user);
    else
        fprintf(stderr, "vitrine: %s: %s\n", tags[level], msg);
    pthread_mutex_unlock(&g_mu);
}
