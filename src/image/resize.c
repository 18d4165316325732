/* resize.c: antialiased resizing (area-scaled triangle filter down, bilinear up), letterbox / stretch fit,
 * and conversion to normalised float CHW tensors. */
#include "core/internal.h"
#include <math.h>
#include <string.h>

/* For each destination index: the first source index, how many source samples, their weights. */
typedef struct {
    int *start, *count;
    float *w; /* dst * maxn weights */
    int maxn;
} wtab;

static void wtab_free(wtab *t) {
    free(t->start);
    free(t->count);
    free(t->w);
}

/* Builds a 1-D resampling table from `src` samples to `dst` samples (s = src/dst). Downscaling
 * uses the area-scaled triangle filter (the antialiased bilinear of Pillow and torchvision): each
 * destination pixel averages the source pixels within +-s of its centre, weighted by a tent, which
 * unlike a plain box leaves no beat pattern on fine stripes at non-integer ratios. Upscaling uses
 * the ordinary bilinear filter with pixel centres aligned. */
static int wtab_build(int src, int dst, wtab *t) {
    memset(t, 0, sizeof *t);
    double s = (double)src / dst;
    t->maxn = s >= 1.0 ? (int)ceil(2 * s) + 2 : 2;
    t->start = malloc(sizeof(int) * (size_t)dst);
    t->count = malloc(sizeof(int) * (size_t)dst);
    t->w = calloc((size_t)dst * (size_t)t->maxn, sizeof(float));
    if (!t->start || !t->count || !t->w) {
        wtab_free(t);
        return vt__err(VT_ENOMEM, "out of memory for resize tables");
    }
    for (int i = 0; i < dst; i++) {
        float *w = t->w + (size_t)i * t->maxn;
        if (s >= 1.0) {
            /* Tent of half-width s centred on the destination pixel, sampled at source pixel
             * centres, normalised to sum 1. */
            double c = (i + 0.5) * s;
            int j0 = (int)floor(c - s), j1 = (int)ceil(c + s);
            if (j0 < 0) j0 = 0;
            if (j1 > src) j1 = src;
            int n = 0, first = -1;
            double sum = 0;
            for (int j = j0; j < j1; j++) {
                double wt = 1.0 - fabs(j + 0.5 - c) / s;
                if (wt <= 0) continue;
                if (first < 0) first = j;
                if (n >= t->maxn) break;
                w[j - first] = (float)wt;
                n = j - first + 1;
                sum += wt;
            }
            for (int k = 0; k < n; k++) w[k] = (float)(w[k] / sum);
            t->start[i] = first < 0 ? 0 : first;
            t->count[i] = n;
        } else {
            double x = (i + 0.5) * s - 0.5;
            int j0 = (int)floor(x);
            double f = x - j0;
            if (j0 < 0) { j0 = 0; f = 0; }
            if (j0 >= src - 1) { j0 = src - 1; f = 0; }
            t->start[i] = j0;
            t->count[i] = f > 0 ? 2 : 1;
            w[0] = (float)(1 - f);
            w[1] = (float)f;
        }
    }
    return VT_OK;
}

/* Resizes src into a dw x dh rectangle of a destination buffer with row stride `dstride` bytes. */
static int resize_into(const vt_image *src, uint8_t *dst, size_t dstride, int dw, int dh) {
    int C = src->channels, sw = src->width, sh = src->height;
    if (sw == dw && sh == dh) {
        for (int y = 0; y < dh; y++) memcpy(dst + (size_t)y * dstride, src->data + (size_t)y * sw * C, (size_t)sw * C);
        return VT_OK;
    }
    wtab tx, ty;
    int rc = wtab_build(sw, dw, &tx);
    if (rc) return rc;
    rc = wtab_build(sh, dh, &ty);
    if (rc) {
        wtab_free(&tx);
        return rc;
    }
    size_t rowf = (size_t)dw * C;
    float *tmp = malloc(sizeof(float) * rowf * (size_t)sh);
    float *acc = malloc(sizeof(float) * rowf);
    if (!tmp || !acc) {
        free(tmp);
        free(acc);
        wtab_free(&tx);
        wtab_free(&ty);
        return vt__err(VT_ENOMEM, "out of memory resizing %dx%d to %dx%d", sw, sh, dw, dh);
    }
    /* Horizontal pass over only the source rows that the vertical pass reads. */
    int ylo = ty.start[0], yhi = ty.start[dh - 1] + ty.count[dh - 1];
    for (int y = ylo; y < yhi; y++) {
        const uint8_t *s = src->data + (size_t)y * sw * C;
        float *o = tmp + (size_t)y * rowf;
        for (int x = 0; x < dw; x++) {
            const float *w = tx.w + (size_t)x * tx.maxn;
            const uint8_t *p = s + (size_t)tx.start[x] * C;
            int n = tx.count[x];
            if (C == 3) {
                float r = 0, g = 0, b = 0;
                for (int k = 0; k < n; k++) {
                    r += w[k] * p[3 * k];
                    g += w[k] * p[3 * k + 1];
                    b += w[k] * p[3 * k + 2];
                }
                o[3 * x] = r;
                o[3 * x + 1] = g;
                o[3 * x + 2] = b;
            } else {
                for (int c = 0; c < C; c++) {
                    float v = 0;
                    for (int k = 0; k < n; k++) v += w[k] * p[k * C + c];
                    o[x * C + c] = v;
                }
            }
        }
    }
    /* Vertical pass. */
    for (int y = 0; y < dh; y++) {
        const float *w = ty.w + (size_t)y * ty.maxn;
        int n = ty.count[y];
        const float *r0 = tmp + (size_t)ty.start[y] * rowf;
        for (size_t i = 0; i < rowf; i++) acc[i] = w[0] * r0[i];
        for (int k = 1; k < n; k++) {
            const float *r = r0 + (size_t)k * rowf;
            float wk = w[k];
            for (size_t i = 0; i < rowf; i++) acc[i] += wk * r[i];
        }
        uint8_t *o = dst + (size_t)y * dstride;
        for (size_t i = 0; i < rowf; i++) {
            float v = acc[i] + 0.5f;
            o[i] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : v);
        }
    }
    free(tmp);
    free(acc);
    wtab_free(&tx);
    wtab_free(&ty);
    return VT_OK;
}

int vt_image_resize(const vt_image *src, int dw, int dh, vt_image *out) {
    if (!src || !src->data || !out) return vt__err(VT_EINVAL, "vt_image_resize: NULL image");
    if (dw <= 0 || dh <= 0 || dw > 65535 || dh > 65535) return vt__err(VT_EINVAL, "invalid target size %dx%d", dw, dh);
    int rc = vt_image_alloc(out, dw, dh, src->channels);
    if (rc) return rc;
    rc = resize_into(src, out->data, (size_t)dw * src->channels, dw, dh);
    if (rc) vt_image_free(out);
    return rc;
}

int vt_image_fit(const vt_image *src, int size, vt_fit_mode mode, vt_image *out) {
    if (!src || !src->data || !out) return vt__err(VT_EINVAL, "vt_image_fit: NULL image");
    if (size <= 0 || size > 16384) return vt__err(VT_EINVAL, "invalid target size %d", size);
    if (mode == VT_FIT_STRETCH) return vt_image_resize(src, size, size, out);
    if (mode != VT_FIT_LETTERBOX) return vt__err(VT_EINVAL, "unknown fit mode %d", (int)mode);
    int C = src->channels, w = src->width, h = src->height;
    int nw, nh;
    if (w >= h) {
        nw = size;
        nh = (int)lround((double)h * size / w);
    } else {
        nh = size;
        nw = (int)lround((double)w * size / h);
    }
    nw = VT_CLAMP(nw, 1, size);
    nh = VT_CLAMP(nh, 1, size);
    int rc = vt_image_alloc(out, size, size, C);
    if (rc) return rc;
    memset(out->data, 255, (size_t)size * size * C);
    int ox = (size - nw) / 2, oy = (size - nh) / 2;
    size_t stride = (size_t)size * C;
    rc = resize_into(src, out->data + (size_t)oy * stride + (size_t)ox * C, stride, nw, nh);
    if (rc) vt_image_free(out);
    return rc;
}

void vt_image_to_chw(const vt_image *img, const float mean[3], const float std[3], int bgr, float *out) {
    size_t hw = (size_t)img->width * img->height;
    int C = img->channels;
    for (int c = 0; c < 3; c++) {
        int sc = C == 1 ? 0 : (bgr ? 2 - c : c);
        float scale = 1.0f / (255.0f * std[c]), off = mean[c] / std[c];
        float *o = out + (size_t)c * hw;
        const uint8_t *p = img->data + (C == 1 ? 0 : sc);
        for (size_t i = 0; i < hw; i++) o[i] = (float)p[i * C] * scale - off;
    }
}
