/* error.c: error codes, their descriptions and the per-thread detailed error message. */
#include "internal.h"
#include <string.h>

static _Thread_local char errbuf[1024];

const char *vt_strerror(int err) {
    switch (err) {
    case VT_OK: return "success";
    case VT_ENOMEM: return "out of memory";
    case VT_EINVAL: return "invalid argument";
    case VT_EIO: return "input/output error";
    case VT_ENOENT: return "no such file";
    case VT_EEMPTY: return "empty input";
    case VT_ENOTIMAGE: return "not an image";
    case VT_ETRUNCATED: return "truncated data";
    case VT_ECORRUPT: return "corrupt data";
    case VT_ETOOBIG: return "too large";
    case VT_EUNSUPPORTED: return "unsupported";
    case VT_ECHECKSUM: return "checksum mismatch";
    case VT_ENOTFOUND: return "not found";
    case VT_EEXIST: return "already exists";
    case VT_ESTATE: return "invalid state";
    case VT_EINTERNAL: return "internal error";
    case VT_EPARTIAL: return "partially done";
    case VT_ECANCELED: return "interrupted";
    default: return "unknown error";
    }
}

const char *vt_errmsg(void) {
    return errbuf[0] ? errbuf : "no error message";
}

int vt__err(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return code;
}

int vt__err_prefix(int code, const char *fmt, ...) {
    char old[sizeof errbuf];
    memcpy(old, errbuf, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof errbuf)
        snprintf(errbuf + n, sizeof errbuf - (size_t)n, ": %s", old[0] ? old : vt_strerror(code));
    return code;
}
