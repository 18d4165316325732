/* decode.c: JPEG / PNG / WebP decoding to 8-bit RGB, refusing hostile input before allocating. */
#include "core/internal.h"
#include "image/image_internal.h"

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <limits.h>
#include <setjmp.h>
#include <string.h>
#include <webp/decode.h>

const float vt_imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
const float vt_imagenet_std[3] = {0.229f, 0.224f, 0.225f};

vt_image_format vt_image_sniff(const void *buf, size_t len) {
    const uint8_t *p = buf;
    if (len >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return VT_FMT_JPEG;
    if (len >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) return VT_FMT_PNG;
    if (len >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) return VT_FMT_WEBP;
    return VT_FMT_UNKNOWN;
}

int vt_image_alloc(vt_image *img, int w, int h, int c) {
    memset(img, 0, sizeof *img);
    size_t n;
    if (w <= 0 || h <= 0 || c <= 0 || vt__mul_overflow((size_t)w, (size_t)h, &n) || vt__mul_overflow(n, (size_t)c, &n))
        return vt__err(VT_EINVAL, "invalid image size %dx%dx%d", w, h, c);
    img->data = malloc(n);
    if (!img->data) return vt__err(VT_ENOMEM, "out of memory for a %dx%d image", w, h);
    img->width = w;
    img->height = h;
    img->channels = c;
    return VT_OK;
}

void vt_image_free(vt_image *img) {
    if (!img) return;
    free(img->data);
    memset(img, 0, sizeof *img);
}

/* Refuses dimensions that are zero or declare more pixels than allowed. */
static int check_dims(const char *name, const char *fmt, uint64_t w, uint64_t h, const vt_decode_opts *o) {
    uint64_t limit = o && o->max_pixels ? o->max_pixels : VT_DEFAULT_MAX_PIXELS;
    if (w == 0 || h == 0) return vt__err(VT_ECORRUPT, "%s: %s header declares an empty image (%llux%llu)", name, fmt,
                                         (unsigned long long)w, (unsigned long long)h);
    if (w > INT32_MAX / 4 || h > INT32_MAX / 4 || w * h > limit)
        return vt__err(VT_ETOOBIG, "%s: %s declares %llux%llu = %.1f megapixels, above the limit of %.1f megapixels",
                       name, fmt, (unsigned long long)w, (unsigned long long)h, (double)w * (double)h / 1e6,
                       (double)limit / 1e6);
    return VT_OK;
}

/* ------------------------------------------------------------------ EXIF orientation */

static unsigned rd16(const uint8_t *p, int le) { return le ? (unsigned)(p[0] | p[1] << 8) : (unsigned)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p, int le) {
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Returns the EXIF orientation (1..8) in an APP1 payload, or 1 when absent or malformed. */
int vt__exif_orientation(const uint8_t *d, size_t n) {
    if (n < 14 || memcmp(d, "Exif\0\0", 6) != 0) return 1;
    const uint8_t *t = d + 6;
    size_t tn = n - 6;
    int le;
    if (memcmp(t, "II*\0", 4) == 0)
        le = 1;
    else if (memcmp(t, "MM\0*", 4) == 0)
        le = 0;
    else
        return 1;
    uint32_t ifd = rd32(t + 4, le);
    if (ifd > tn - 2 || ifd < 8) return 1;
    unsigned count = rd16(t + ifd, le);
    for (unsigned i = 0; i < count; i++) {
        size_t e = (size_t)ifd + 2 + (size_t)i * 12;
        if (e + 12 > tn) return 1;
        if (rd16(t + e, le) == 0x0112) {
            unsigned type = rd16(t + e + 2, le);
            unsigned v = type == 3 ? rd16(t + e + 8, le) : type == 4 ? (unsigned)rd32(t + e + 8, le) : 0;
            return v >= 1 && v <= 8 ? (int)v : 1;
        }
    }
    return 1;
}

/* Applies an EXIF orientation to an RGB image (in place: may swap width and height). */
int vt__apply_orientation(vt_image *img, int orientation) {
    if (orientation <= 1 || orientation > 8) return VT_OK;
    int w = img->width, h = img->height, c = img->channels;
    int swap = orientation >= 5;
    int ow = swap ? h : w, oh = swap ? w : h;
    vt_image out;
    int rc = vt_image_alloc(&out, ow, oh, c);
    if (rc) return rc;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            int ox, oy; /* where source (x, y) lands in the displayed image */
            switch (orientation) {
            case 2: ox = w - 1 - x; oy = y; break;             /* mirror horizontal */
            case 3: ox = w - 1 - x; oy = h - 1 - y; break;     /* rotate 180 */
            case 4: ox = x; oy = h - 1 - y; break;             /* mirror vertical */
            case 5: ox = y; oy = x; break;                     /* transpose */
            case 6: ox = h - 1 - y; oy = x; break;             /* rotate 90 clockwise */
            case 7: ox = h - 1 - y; oy = w - 1 - x; break;     /* transverse */
            default: ox = y; oy = w - 1 - x; break;            /* 8: rotate 270 clockwise */
            }
            memcpy(out.data + ((size_t)oy * ow + ox) * c, img->data + ((size_t)y * w + x) * c, (size_t)c);
        }
    }
    vt_image_free(img);
    *img = out;
    return VT_OK;
}

/* ------------------------------------------------------------------ JPEG */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int code;         /* VT_E* to return after longjmp */
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_on_error(j_common_ptr ci) {
    jpeg_err *e = (jpeg_err *)ci->err;
    int c = e->pub.msg_code;
    e->code = (c == JERR_INPUT_EOF || c == JERR_INPUT_EMPTY) ? VT_ETRUNCATED
              : (c == JERR_OUT_OF_MEMORY)                    ? VT_ENOMEM
              : (c == JERR_NO_BACKING_STORE)                 ? VT_ETOOBIG
                                                             : VT_ECORRUPT;
    if (c == JERR_NO_BACKING_STORE) /* libjpeg's words for "above max_memory_to_use" */
        snprintf(e->msg, sizeof e->msg, "decoding needs more than the memory limit of %ld bytes",
                 ci->mem->max_memory_to_use);
    else
        e->pub.format_message(ci, e->msg);
    longjmp(e->jb, 1);
}

/* Warnings about damaged data are errors: truncated files and bad entropy-coded data would
 * otherwise decode to grey blocks silently. Harmless warnings (extraneous bytes, unknown JFIF
 * revision) are logged at debug level. */
static void jpeg_on_message(j_common_ptr ci, int level) {
    jpeg_err *e = (jpeg_err *)ci->err;
    if (level >= 0) return; /* trace messages */
    int c = e->pub.msg_code;
    if (c == JWRN_JPEG_EOF || c == JWRN_HIT_MARKER || c == JWRN_HUFF_BAD_CODE ||
        c == JWRN_MUST_RESYNC || c == JWRN_NOT_SEQUENTIAL || c == JWRN_BOGUS_PROGRESSION) {
        e->code = (c == JWRN_JPEG_EOF || c == JWRN_HIT_MARKER) ? VT_ETRUNCATED : VT_ECORRUPT;
        e->pub.format_message(ci, e->msg);
        longjmp(e->jb, 1);
    }
    if (VT_LOG_DEBUG >= vt_log_get_level()) {
        char m[JMSG_LENGTH_MAX];
        e->pub.format_message(ci, m);
        VT_LOGD("jpeg: %s", m);
    }
}

/* Points ci's error manager at err: errors and data-damage warnings longjmp to err.jb (the
 * caller's setjmp) with a VT_E* code and libjpeg's message. */
static void jpeg_err_init(struct jpeg_decompress_struct *ci, jpeg_err *err) {
    memset(err, 0, sizeof *err);
    ci->err = jpeg_std_error(&err->pub);
    err->pub.error_exit = jpeg_on_error;
    err->pub.emit_message = jpeg_on_message;
}

/* libjpeg's cap on its own working memory (max_memory_to_use): the whole-image coefficient
 * buffers of progressive and multi-scan JPEGs are refused ("backing store not supported") above
 * it. Default: 6 bytes per allowed pixel, what a 3-component progressive image at the pixel
 * limit needs, so a file that declares few pixels cannot make libjpeg allocate for many. */
static long jpeg_memory_limit(const vt_decode_opts *o) {
    if (o && o->max_memory) return (long)VT_MIN(o->max_memory, (size_t)LONG_MAX);
    uint64_t px = o && o->max_pixels ? o->max_pixels : VT_DEFAULT_MAX_PIXELS;
    return (long)VT_MIN(px * 6 + (8u << 20), (uint64_t)LONG_MAX);
}

/* A progressive JPEG may hold any number of scans, each one a full pass over the image's
 * coefficients: a few kilobytes of scans can cost minutes of CPU. More than VT_JPEG_MAX_SCANS
 * (real encoders write at most a few dozen) is refused as corrupt. */
#define VT_JPEG_MAX_SCANS 500
static void jpeg_on_progress(j_common_ptr ci) {
    if (!ci->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)ci;
    if (d->input_scan_number > VT_JPEG_MAX_SCANS) {
        jpeg_err *e = (jpeg_err *)ci->err;
        e->code = VT_ECORRUPT;
        snprintf(e->msg, sizeof e->msg, "more than %d scans", VT_JPEG_MAX_SCANS);
        longjmp(e->jb, 1);
    }
}

/* Converts one row of (possibly Adobe-inverted) CMYK to RGB. */
static void cmyk_row_to_rgb(const uint8_t *in, uint8_t *out, int w, int inverted) {
    for (int x = 0; x < w; x++) {
        unsigned c = in[4 * x], m = in[4 * x + 1], y = in[4 * x + 2], k = in[4 * x + 3];
        if (!inverted) { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k; }
        /* inverted CMYK: value 255 means no ink */
        out[3 * x] = (uint8_t)((c * k + 127) / 255);
        out[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
        out[3 * x + 2] = (uint8_t)((y * k + 127) / 255);
    }
}

static int decode_jpeg(const uint8_t *buf, size_t len, const char *name, const vt_decode_opts *o, vt_image *out) {
    struct jpeg_decompress_struct ci;
    jpeg_err err;
    /* volatile: modified between setjmp and longjmp */
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile rowbuf = NULL;
    jpeg_err_init(&ci, &err);
    if (setjmp(err.jb)) {
        jpeg_destroy_decompress(&ci);
        free(pixels);
        free(rowbuf);
        return vt__err(err.code, "%s: %s JPEG: %s", name,
                       err.code == VT_ETRUNCATED ? "truncated" : err.code == VT_ETOOBIG ? "oversized" : "corrupt",
                       err.msg);
    }
    jpeg_create_decompress(&ci);
    ci.mem->max_memory_to_use = jpeg_memory_limit(o);
    struct jpeg_progress_mgr progress = {.progress_monitor = jpeg_on_progress};
    ci.progress = &progress;
    jpeg_mem_src(&ci, buf, (unsigned long)len);
    jpeg_save_markers(&ci, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&ci, TRUE);
    int rc = check_dims(name, "JPEG", ci.image_width, ci.image_height, o);
    if (rc) {
        jpeg_destroy_decompress(&ci);
        return rc;
    }
    int orientation = 1;
    for (jpeg_saved_marker_ptr m = ci.marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1) {
            orientation = vt__exif_orientation(m->data, m->data_length);
            break;
        }
    int cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
    ci.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    if (o && (o->min_long > 0 || o->min_short > 0)) {
        unsigned lo = VT_MIN(ci.image_width, ci.image_height), hi = VT_MAX(ci.image_width, ci.image_height);
        for (unsigned d = 8; d >= 2; d /= 2) {
            if ((hi + d - 1) / d >= (unsigned)o->min_long && (lo + d - 1) / d >= (unsigned)o->min_short) {
                ci.scale_num = 1;
                ci.scale_denom = d;
                break;
            }
        }
    }
    if (o && o->fast) ci.dct_method = JDCT_IFAST; /* plain upsampling measured no faster */
    jpeg_start_decompress(&ci);
    int w = (int)ci.output_width, h = (int)ci.output_height;
    pixels = malloc((size_t)w * (size_t)h * 3);
    if (cmyk) rowbuf = malloc((size_t)w * 4);
    if (!pixels || (cmyk && !rowbuf)) {
        err.code = VT_ENOMEM;
        snprintf(err.msg, sizeof err.msg, "out of memory for %dx%d pixels", w, h);
        longjmp(err.jb, 1);
    }
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW row = cmyk ? rowbuf : pixels + (size_t)ci.output_scanline * (size_t)w * 3;
        unsigned y = ci.output_scanline;
        if (jpeg_read_scanlines(&ci, &row, 1) != 1) {
            err.code = VT_ETRUNCATED;
            snprintf(err.msg, sizeof err.msg, "no data after row %u of %d", y, h);
            longjmp(err.jb, 1);
        }
        if (cmyk) cmyk_row_to_rgb(rowbuf, pixels + (size_t)y * (size_t)w * 3, w, ci.saw_Adobe_marker);
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    free(rowbuf);
    out->width = w;
    out->height = h;
    out->channels = 3;
    out->data = pixels;
    rc = vt__apply_orientation(out, orientation);
    if (rc) vt_image_free(out);
    return rc;
}

/* ------------------------------------------------------------------ PNG */

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    int truncated;
    char msg[256];
    jmp_buf jb;
} png_src;

static void png_read_mem(png_structp png, png_bytep dst, size_t n) {
    png_src *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) {
        s->truncated = 1;
        png_error(png, "file ends early");
    }
    memcpy(dst, s->buf + s->pos, n);
    s->pos += n;
}

static void png_on_error(png_structp png, png_const_charp msg) {
    png_src *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    longjmp(s->jb, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    VT_LOGD("png: %s", msg);
}

static int decode_png(const uint8_t *buf, size_t len, const char *name, const vt_decode_opts *o, vt_image *out) {
    png_src src = {.buf = buf, .len = len};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    if (!png) return vt__err(VT_ENOMEM, "%s: out of memory", name);
    png_infop info = png_create_info_struct(png);
    uint8_t *volatile rgba = NULL;
    uint8_t **volatile rows = NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return vt__err(VT_ENOMEM, "%s: out of memory", name);
    }
    if (setjmp(src.jb)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rgba);
        free(rows);
        return vt__err(src.truncated ? VT_ETRUNCATED : VT_ECORRUPT, "%s: %s PNG: %s", name,
                       src.truncated ? "truncated" : "corrupt", src.msg);
    }
    png_set_read_fn(png, &src, png_read_mem);
    /* libpng's own cap on dimensions; we check the configured pixel limit right after. */
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_set_chunk_malloc_max(png, 64u << 20);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int rc = check_dims(name, "PNG", w, h, o);
    if (rc) {
        png_destroy_read_struct(&png, &info, NULL);
        return rc;
    }
    /* Normalise every colour type and depth to 8-bit RGBA. */
    png_set_expand(png);           /* palette -> RGB, gray < 8 bit -> 8 bit, tRNS -> alpha */
    png_set_scale_16(png);         /* 16 -> 8 bit, rounded */
    png_set_gray_to_rgb(png);
    png_set_add_alpha(png, 0xFF, PNG_FILLER_AFTER);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * 4) png_error(png, "unexpected row layout after conversion");
    rgba = malloc((size_t)w * h * 4);
    rows = malloc(sizeof(uint8_t *) * h);
    if (!rgba || !rows) {
        snprintf(src.msg, sizeof src.msg, "out of memory for %ux%u pixels", (unsigned)w, (unsigned)h);
        longjmp(src.jb, 1);
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = rgba + (size_t)y * w * 4;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    /* Composite onto white, in place, RGBA -> RGB. */
    size_t np = (size_t)w * h;
    uint8_t *d = rgba;
    for (size_t i = 0; i < np; i++) {
        unsigned a = rgba[4 * i + 3];
        for (int c = 0; c < 3; c++) {
            unsigned v = rgba[4 * i + c];
            d[3 * i + c] = (uint8_t)((v * a + 255 * (255 - a) + 127) / 255);
        }
    }
    uint8_t *shrunk = realloc(rgba, np * 3);
    out->data = shrunk ? shrunk : rgba;
    out->width = (int)w;
    out->height = (int)h;
    out->channels = 3;
    return VT_OK;
}

/* ------------------------------------------------------------------ WebP */

static int decode_webp(const uint8_t *buf, size_t len, const char *name, const vt_decode_opts *o, vt_image *out) {
    WebPBitstreamFeatures f;
    VP8StatusCode st = WebPGetFeatures(buf, len, &f);
    if (st == VP8_STATUS_NOT_ENOUGH_DATA) return vt__err(VT_ETRUNCATED, "%s: truncated WebP header", name);
    if (st != VP8_STATUS_OK) return vt__err(VT_ECORRUPT, "%s: corrupt WebP header (status %d)", name, (int)st);
    if (f.has_animation) return vt__err(VT_EUNSUPPORTED, "%s: animated WebP is not supported", name);
    int rc = check_dims(name, "WebP", (uint64_t)f.width, (uint64_t)f.height, o);
    if (rc) return rc;
    size_t np = (size_t)f.width * (size_t)f.height;
    uint8_t *px = malloc(np * 4);
    if (!px) return vt__err(VT_ENOMEM, "%s: out of memory for %dx%d pixels", name, f.width, f.height);
    if (!WebPDecodeRGBAInto(buf, len, px, np * 4, f.width * 4)) {
        free(px);
        /* The header parsed, so a failure here is damaged or missing image data. */
        WebPDecoderConfig cfg;
        int trunc = 0;
        if (WebPInitDecoderConfig(&cfg)) {
            cfg.options.use_threads = 0;
            trunc = WebPDecode(buf, len, &cfg) == VP8_STATUS_NOT_ENOUGH_DATA;
            WebPFreeDecBuffer(&cfg.output);
        }
        return vt__err(trunc ? VT_ETRUNCATED : VT_ECORRUPT, "%s: %s WebP image data", name,
                       trunc ? "truncated" : "corrupt");
    }
    for (size_t i = 0; i < np; i++) {
        unsigned a = px[4 * i + 3];
        for (int c = 0; c < 3; c++)
            px[3 * i + c] = (uint8_t)((px[4 * i + c] * a + 255 * (255 - a) + 127) / 255);
    }
    uint8_t *shrunk = realloc(px, np * 3);
    out->data = shrunk ? shrunk : px;
    out->width = f.width;
    out->height = f.height;
    out->channels = 3;
    return VT_OK;
}

/* ------------------------------------------------------------------ header-only size check */

/* Width and height from a JPEG's frame header (libjpeg reads the markers up to the first scan,
 * no pixel data); 0 when the header does not parse. */
static int jpeg_header_dims(const uint8_t *buf, size_t len, uint64_t *w, uint64_t *h) {
    struct jpeg_decompress_struct ci;
    jpeg_err err;
    jpeg_err_init(&ci, &err);
    if (setjmp(err.jb)) {
        jpeg_destroy_decompress(&ci);
        return 0;
    }
    jpeg_create_decompress(&ci);
    ci.mem->max_memory_to_use = 16l << 20;
    jpeg_mem_src(&ci, buf, (unsigned long)len);
    jpeg_read_header(&ci, TRUE);
    *w = ci.image_width;
    *h = ci.image_height;
    jpeg_destroy_decompress(&ci);
    return 1;
}

int vt__image_check_pixels(const void *buf, size_t len, const char *name, uint64_t max_pixels) {
    const uint8_t *p = buf;
    uint64_t w = 0, h = 0;
    const char *fmt = NULL;
    if (!name) name = "image";
    if (!buf) return VT_OK;
    switch (vt_image_sniff(buf, len)) {
    case VT_FMT_PNG: /* the IHDR chunk comes first: 8-byte signature, length, "IHDR", width, height */
        if (len < 24 || memcmp(p + 12, "IHDR", 4) != 0) return VT_OK;
        w = (uint64_t)p[16] << 24 | (uint64_t)p[17] << 16 | (uint64_t)p[18] << 8 | p[19];
        h = (uint64_t)p[20] << 24 | (uint64_t)p[21] << 16 | (uint64_t)p[22] << 8 | p[23];
        fmt = "PNG";
        break;
    case VT_FMT_WEBP: {
        int iw, ih;
        if (!WebPGetInfo(buf, len, &iw, &ih)) return VT_OK;
        w = (uint64_t)iw;
        h = (uint64_t)ih;
        fmt = "WebP";
        break;
    }
    case VT_FMT_JPEG:
        if (!jpeg_header_dims(buf, len, &w, &h)) return VT_OK;
        fmt = "JPEG";
        break;
    default: return VT_OK;
    }
    if (w == 0 || h == 0) return VT_OK; /* the decoder explains what is wrong */
    vt_decode_opts o = {.max_pixels = max_pixels};
    return check_dims(name, fmt, w, h, &o);
}

/* ------------------------------------------------------------------ entry points */

int vt_image_decode(const void *buf, size_t len, const char *name, const vt_decode_opts *opts, vt_image *out) {
    if (!out) return vt__err(VT_EINVAL, "vt_image_decode: out is NULL");
    memset(out, 0, sizeof *out);
    if (!name) name = "image";
    if (!buf || len == 0) return vt__err(VT_EEMPTY, "%s: file is empty (0 bytes)", name);
    switch (vt_image_sniff(buf, len)) {
    case VT_FMT_JPEG: return decode_jpeg(buf, len, name, opts, out);
    case VT_FMT_PNG: return decode_png(buf, len, name, opts, out);
    case VT_FMT_WEBP: return decode_webp(buf, len, name, opts, out);
    default: break;
    }
    const uint8_t *p = buf;
    size_t n = VT_MIN(len, (size_t)4), printable = 0;
    for (size_t i = 0; i < VT_MIN(len, (size_t)64); i++) printable += (p[i] >= 32 && p[i] < 127) || p[i] == '\n' || p[i] == '\r' || p[i] == '\t';
    if (printable == VT_MIN(len, (size_t)64))
        return vt__err(VT_ENOTIMAGE, "%s: not an image: looks like text, not JPEG, PNG or WebP", name);
    char hex[16] = "";
    for (size_t i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", p[i]);
    return vt__err(VT_ENOTIMAGE, "%s: not an image: unknown format (first bytes %s), expected JPEG, PNG or WebP", name,
                   hex);
}

int vt_image_load(const char *path, const vt_decode_opts *opts, vt_image *out) {
    if (!out) return vt__err(VT_EINVAL, "vt_image_load: out is NULL");
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t len;
    int rc = vt__read_file(path, 1u << 30, &buf, &len);
    if (rc) return rc;
    rc = vt_image_decode(buf, len, path, opts, out);
    free(buf);
    return rc;
}
