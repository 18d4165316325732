/* image_path.c: catalog ids that are safe as file names, and finding an id's image file. */
#include "core/internal.h"
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

/* Tries dir/<id> with each known extension (lower, then upper case); first regular file wins. */
int vt_catalog_find_image(const char *dir, const char *id, char *buf, size_t cap) {
    if (!dir || !id || !buf || !cap) return vt__err(VT_EINVAL, "vt_catalog_find_image: NULL argument");
    if (!vt_catalog_id_ok(id)) return vt__err(VT_EINVAL, "'%.80s' is not a safe catalog id", id);
    static const char *const ext[] = {".jpg", ".jpeg", ".png", ".webp", ".JPG", ".JPEG", ".PNG", ".WEBP"};
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dl--;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        int n = snprintf(buf, cap, "%.*s/%s%s", (int)dl, dir, id, ext[i]);
        if (n < 0 || (size_t)n >= cap) return vt__err(VT_ETOOBIG, "image path for '%.80s' is too long", id);
        struct stat st;
        if (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) return VT_OK;
    }
    buf[0] = 0;
    return vt__err(VT_ENOTFOUND, "no image for id '%.80s' in %s (tried .jpg .jpeg .png .webp)", id, dir);
}
