/* image_path.c: catalog ids that are safe as file names, finding an id's image file, and
 * confining a feed's photo paths to the images folder. */
#include "core/internal.h"
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

/* Length of the well-formed UTF-8 sequence at p (no overlong forms, surrogates or code points
 * above U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *p) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

int vt_catalog_id_ok(const char *id) {
    if (!id || !*id || id[0] == '.') return 0;
    const unsigned char *p = (const unsigned char *)id;
    size_t n = 0;
    while (p[n]) {
        if (n >= 255) return 0;
        if (p[n] < 0x20 || p[n] == 0x7f || p[n] == '/' || p[n] == '\\') return 0;
        size_t l = utf8_seq(p + n);
        if (!l) return 0;
        n += l;
    }
    return n <= 255;
}

/* Checks the name, joins it to dir, resolves every symbolic link (realpath) and checks that the
 * result is a regular file under realpath(dir). */
int vt_catalog_image_path(const char *dir, const char *name, char *buf, size_t cap) {
    if (!dir || !name || !buf || !cap) return vt__err(VT_EINVAL, "vt_catalog_image_path: NULL argument");
    buf[0] = 0;
    if (!*name) return vt__err(VT_ENOTFOUND, "empty image path");
    if (name[0] == '/')
        return vt__err(VT_EINVAL, "image path '%.200s' is absolute; photos must be named relative to the images folder", name);
    for (const char *c = name; *c;) { /* every component, split on '/' */
        size_t n = strcspn(c, "/");
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return vt__err(VT_EINVAL, "image path '%.200s' has a '..' component; photos must stay inside the images folder", name);
        c += n + (c[n] == '/');
    }
    char root[PATH_MAX], joined[2 * PATH_MAX], real[PATH_MAX];
    if (!realpath(dir, root)) {
        int e = errno;
        return vt__err(e == ENOENT ? VT_ENOENT : VT_EIO, "images folder %.200s: %s", dir, strerror(e));
    }
    snprintf(joined, sizeof joined, "%s/%s", root, name);
    if (!realpath(joined, real)) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR) return vt__err(VT_ENOTFOUND, "no file '%.200s' in %.200s", name, dir);
        return vt__err(VT_EINVAL, "image path '%.200s': %s", name, strerror(e));
    }
    size_t rl = strlen(root);
    if (!strcmp(real, root)) return vt__err(VT_EINVAL, "image path '%.200s' is the images folder itself", name);
    int inside = rl == 1 ? real[0] == '/' && real[1] : !strncmp(real, root, rl) && real[rl] == '/';
    if (!inside)
        return vt__err(VT_EINVAL, "image path '%.200s' leads out of the images folder %.200s (a symbolic link?)", name, dir);
    struct stat st;
    if (stat(real, &st) != 0) return vt__err(VT_ENOTFOUND, "image path '%.200s': %s", name, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return vt__err(VT_EINVAL, "image path '%.200s' is not a regular file (%s)", name,
                       S_ISDIR(st.st_mode) ? "a folder" : S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISSOCK(st.st_mode) ? "a socket" : "a device");
    if (strlen(real) >= cap) return vt__err(VT_ETOOBIG, "image path '%.200s' is too long", name);
    memcpy(buf, real, strlen(real) + 1);
    return VT_OK;
}

/* Tries <id> with each known extension (lower, then upper case): the first name that exists
 * decides (vt_catalog_image_path accepts it or says why not). */
int vt_catalog_find_image(const char *dir, const char *id, char *buf, size_t cap) {
    if (!dir || !id || !buf || !cap) return vt__err(VT_EINVAL, "vt_catalog_find_image: NULL argument");
    if (!vt_catalog_id_ok(id)) return vt__err(VT_EINVAL, "'%.80s' is not a safe catalog id", id);
    static const char *const ext[] = {".jpg", ".jpeg", ".png", ".webp", ".JPG", ".JPEG", ".PNG", ".WEBP"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        char name[300];
        snprintf(name, sizeof name, "%s%s", id, ext[i]);
        int rc = vt_catalog_image_path(dir, name, buf, cap);
        if (rc != VT_ENOTFOUND) return rc;
    }
    buf[0] = 0;
    return vt__err(VT_ENOTFOUND, "no image for id '%.80s' in %s (tried .jpg .jpeg .png .webp)", id, dir);
}
