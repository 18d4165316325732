/* report.c: the JSON Lines report of rejected inputs (DB.errors.jsonl): file, line, id, reason. */
#include "core/internal.h"
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

struct vt_report {
    FILE *fp;
    char *path;
    long count;
    int err;
    pthread_mutex_t mu;
};

int vt_report_open(const char *path, vt_report **out) {
    if (!path || !out) return vt__err(VT_EINVAL, "vt_report_open: NULL argument");
    *out = NULL;
    vt_report *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    r->fp = fopen(path, "w");
    if (!r->fp) {
        int e = errno;
        free(r->path);
        free(r);
        return vt__err(VT_EIO, "%s: cannot create: %s", path, strerror(e));
    }
    pthread_mutex_init(&r->mu, NULL);
    *out = r;
    return VT_OK;
}

/* Writes one line. Strings that are not valid UTF-8 (a file name, a raw id) are kept readable:
 * invalid bytes become U+FFFD so that the line stays valid JSON. */
static json_t *str_utf8(const char *s) {
    json_t *j = json_string(s);
    if (j) return j;
    size_t n = strlen(s);
    char *t = malloc(n * 3 + 1), *o = t;
    if (!t) return NULL;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        json_t *probe = len && i + len <= n ? json_stringn(s + i, len) : NULL;
        if (probe) {
            memcpy(o, s + i, len);
            o += len;
            i += len;
            json_decref(probe);
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    *o = 0;
    j = json_string(t);
    free(t);
    return j;
}

int vt_report_add(vt_report *r, const char *file, long line, const char *id, const char *reason) {
    if (!r || !reason) return vt__err(VT_EINVAL, "vt_report_add: NULL argument");
    json_t *o = json_object();
    if (!o) return vt__err(VT_ENOMEM, "out of memory");
    if (file) json_object_set_new(o, "file", str_utf8(file));
    if (line > 0) json_object_set_new(o, "line", json_integer(line));
    if (id) json_object_set_new(o, "id", str_utf8(id));
    json_object_set_new(o, "reason", str_utf8(reason));
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text) return vt__err(VT_ENOMEM, "out of memory");
    pthread_mutex_lock(&r->mu);
    int ok = fputs(text, r->fp) >= 0 && fputc('\n', r->fp) != EOF && fflush(r->fp) == 0;
    if (ok) r->count++;
    else if (!r->err) r->err = errno ? errno : EIO;
    int e = r->err;
    pthread_mutex_unlock(&r->mu);
    free(text);
    return ok ? VT_OK : vt__err(VT_EIO, "%s: write failed: %s", r->path, strerror(e));
}

int vt_report_add_row(vt_report *r, const vt_feed_row *row) {
    if (!row || !row->error) return vt__err(VT_EINVAL, "vt_report_add_row: not a bad row");
    return vt_report_add(r, row->file, row->line, row->id, row->reason ? row->reason : vt_strerror(row->error));
}

long vt_report_count(const vt_report *r) { return r ? r->count : 0; }

int vt_report_close(vt_report *r) {
    if (!r) return VT_OK;
    int e = r->err;
    if (fflush(r->fp) != 0 && !e) e = errno;
    if (fsync(fileno(r->fp)) != 0 && !e) e = errno;
    if (fclose(r->fp) != 0 && !e) e = errno;
    int rc = e ? vt__err(VT_EIO, "%s: %s", r->path, strerror(e)) : VT_OK;
    pthread_mutex_destroy(&r->mu);
    free(r->path);
    free(r);
    return rc;
}
