/* internal.h: helpers shared by every module of libvitrine (not installed). */
#ifndef VT_CORE_INTERNAL_H
#define VT_CORE_INTERNAL_H

#include "vitrine.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Records a detailed message for vt_errmsg() and returns `code`, so that
 * `return vt__err(VT_EINVAL, "bad k %d", k);` reads naturally. */
int vt__err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like vt__err but keeps the current message and prefixes it: "prefix: old message". */
int vt__err_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define VT_LOGD(...) vt_log(VT_LOG_DEBUG, __VA_ARGS__)
#define VT_LOGI(...) vt_log(VT_LOG_INFO, __VA_ARGS__)
#define VT_LOGW(...) vt_log(VT_LOG_WARN, __VA_ARGS__)
#define VT_LOGE(...) vt_log(VT_LOG_ERROR, __VA_ARGS__)

/* Reads a whole file into a malloc'd buffer (NUL-terminated past len). Refuses files larger
 * than max_bytes (0: no limit) and anything but a regular file; never blocks on opening (a FIFO
 * is refused, not waited on). */
int vt__read_file(const char *path, size_t max_bytes, uint8_t **out, size_t *out_len);
/* The same with flags: VT__READ_NOFOLLOW refuses a path whose last component is a symbolic link. */
enum { VT__READ_NOFOLLOW = 1 };
int vt__read_file_ex(const char *path, size_t max_bytes, int flags, uint8_t **out, size_t *out_len);
/* Maps a regular file read-only (falling back to reading it into memory where mapping is not
 * possible; *mapped says which). An empty file gives *p = NULL, *len = 0. Release with
 * vt__unmap_file(p, len, mapped). */
int vt__map_file(const char *path, void **p, size_t *len, int *mapped);
void vt__unmap_file(void *p, size_t len, int mapped);
/* Writes buf to path atomically: a temporary file in the same folder, fsync, rename. */
int vt__write_file_atomic(const char *path, const void *buf, size_t len);
/* The last path component (points into path). */
const char *vt__basename(const char *path);
/* The file name without folder and extension ("dir/resnet50.onnx" -> "resnet50"), into buf. */
void vt__path_stem(const char *path, char *buf, size_t cap);

/* Multiplication that reports overflow of size_t. Returns 0 on success. */
static inline int vt__mul_overflow(size_t a, size_t b, size_t *out) {
    return __builtin_mul_overflow(a, b, out);
}

#define VT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define VT_MAX(a, b) ((a) > (b) ? (a) : (b))
#define VT_CLAMP(x, lo, hi) ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))


/* The one growable byte buffer. Appends never fail loudly: a failed growth sets `oom` and makes
 * later appends no-ops, so a sequence of appends is checked once with vt__buf_ok. The content is
 * always NUL-terminated once anything was added. A zeroed struct is an empty buffer. */
typedef struct vt__buf {
    char *p;
    size_t len, cap;
    int oom;
} vt__buf;
void vt__buf_add(vt__buf *b, const void *s, size_t n);
void vt__buf_str(vt__buf *b, const char *s);
void vt__buf_printf(vt__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* VT_OK, or VT_ENOMEM (with the message set) when an append failed. */
int vt__buf_ok(const vt__buf *b);
/* Hands the malloc'd text to the caller ("" when nothing was added) and empties b; NULL after a
 * failed append (b is freed then). */
char *vt__buf_take(vt__buf *b);
void vt__buf_free(vt__buf *b);

/* The one set of string ids, each mapped to an int64 (a line number, a label, an index...). */
typedef struct vt__idmap vt__idmap;
int vt__idmap_create(vt__idmap **out);
void vt__idmap_free(vt__idmap *m);
size_t vt__idmap_count(const vt__idmap *m);
/* 1 and *val (may be NULL) when id is present, else 0. */
int vt__idmap_get(const vt__idmap *m, const char *id, int64_t *val);
/* Adds id (copied): VT_EEXIST when present (its value is left alone), VT_ENOMEM. */
int vt__idmap_add(vt__idmap *m, const char *id, int64_t val);
/* Adds or replaces. */
int vt__idmap_set(vt__idmap *m, const char *id, int64_t val);
/* Removes id: 1 when it was present, else 0. */
int vt__idmap_remove(vt__idmap *m, const char *id);
/* Calls fn for every member in no particular order until it returns nonzero (that value is
 * returned); fn must not change the map. */
int vt__idmap_each(const vt__idmap *m, int (*fn)(void *ctx, const char *id, int64_t val), void *ctx);

#endif
