/* png_write.c: writing 8-bit RGB or grey images as PNG files (libpng), for people to look at. */
#include "core/internal.h"
#include <png.h>
#include <string.h>

int vt_image_save_png(const vt_image *img, const char *path) {
    if (!img || !img->data || !path) return vt__err(VT_EINVAL, "vt_image_save_png: NULL argument");
    if (img->channels != 1 && img->channels != 3 && img->channels != 4)
        return vt__err(VT_EINVAL, "%s: cannot write a %d-channel image as PNG", path, img->channels);
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = (png_uint_32)img->width;
    pi.height = (png_uint_32)img->height;
    pi.format = img->channels == 1 ? PNG_FORMAT_GRAY : img->channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
    png_alloc_size_t size = 0;
    if (!png_image_write_get_memory_size(pi, size, 0, img->data, 0, NULL))
        return vt__err(VT_EINTERNAL, "%s: PNG encoding failed: %s", path, pi.message);
    void *buf = malloc(size);
    if (!buf) return vt__err(VT_ENOMEM, "%s: out of memory encoding PNG", path);
    if (!png_image_write_to_memory(&pi, buf, &size, 0, img->data, 0, NULL)) {
        free(buf);
        return vt__err(VT_EINTERNAL, "%s: PNG encoding failed: %s", path, pi.message);
    }
    int rc = vt__write_file_atomic(path, buf, size);
    free(buf);
    return rc;
}
