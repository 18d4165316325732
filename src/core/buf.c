/* buf.c: the one growable byte buffer (NUL-terminated text or bytes) used across the library. */
#include "core/internal.h"

#include <string.h>

/* Makes room for n more bytes plus a terminating NUL; sets b->oom and returns 0 when it cannot. */
static int reserve(vt__buf *b, size_t n) {
    if (b->oom) return 0;
    if (n > SIZE_MAX - b->len - 1) {
        b->oom = 1;
        return 0;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

void vt__buf_add(vt__buf *b, const void *s, size_t n) {
    if (!reserve(b, n)) return;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void vt__buf_str(vt__buf *b, const char *s) { vt__buf_add(b, s, strlen(s)); }

void vt__buf_printf(vt__buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) {
        if (n < 0) b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

int vt__buf_ok(const vt__buf *b) { return b->oom ? vt__err(VT_ENOMEM, "out of memory") : VT_OK; }

char *vt__buf_take(vt__buf *b) {
    if (b->oom || !reserve(b, 0)) {
        vt__buf_free(b);
        return NULL;
    }
    char *p = b->p;
    p[b->len] = 0;
    memset(b, 0, sizeof *b);
    return p;
}

void vt__buf_free(vt__buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}
