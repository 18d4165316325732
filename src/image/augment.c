/* augment.c: seeded training augmentation: random resized crop, rotation, flip, colour jitter. */
#include "core/internal.h"
#include <math.h>
#include <string.h>

void vt_augment_defaults(vt_augment_opts *o) {
    o->crop_scale_min = 0.6f;
    o->crop_scale_max = 1.0f;
    o->crop_ratio_min = 3.0f / 4.0f;
    o->crop_ratio_max = 4.0f / 3.0f;
    o->flip_prob = 0.5f;
    o->max_rotate_deg = 10.0f;
    o->brightness = 0.2f;
    o->contrast = 0.2f;
    o->saturation = 0.2f;
}

static float urange(vt_rng *r, float lo, float hi) { return lo + (hi - lo) * (float)vt_rng_uniform(r); }

static int check_opts(const vt_augment_opts *o) {
    if (!(o->crop_scale_min > 0 && o->crop_scale_min <= o->crop_scale_max && o->crop_scale_max <= 1))
        return vt__err(VT_EINVAL, "augment: crop scale range must satisfy 0 < min <= max <= 1");
    if (!(o->crop_ratio_min > 0 && o->crop_ratio_min <= o->crop_ratio_max))
        return vt__err(VT_EINVAL, "augment: crop ratio range must satisfy 0 < min <= max");
    if (!(o->flip_prob >= 0 && o->flip_prob <= 1)) return vt__err(VT_EINVAL, "augment: flip probability not in [0,1]");
    if (!(o->max_rotate_deg >= 0 && o->max_rotate_deg <= 180))
        return vt__err(VT_EINVAL, "augment: rotation bound must be in [0, 180] degrees");
    if (!(o->brightness >= 0 && o->brightness < 1 && o->contrast >= 0 && o->contrast < 1 && o->saturation >= 0 &&
          o->saturation <= 1))
        return vt__err(VT_EINVAL, "augment: jitter factors must be in [0, 1)");
    return VT_OK;
}

/* Draws every random parameter first (a fixed number of draws, so a seed gives the same view
 * whatever the image size), then fits src to a size x size square and resamples it once through
 * the combined crop / rotation / flip mapping with bilinear interpolation and white fill, then
 * applies brightness, contrast and saturation jitter in that order. */
int vt_image_augment(const vt_image *src, int size, vt_fit_mode mode, const vt_augment_opts *o, vt_rng *rng,
                     vt_image *out) {
    if (!src || !src->data || !o || !rng || !out) return vt__err(VT_EINVAL, "vt_image_augment: NULL argument");
    memset(out, 0, sizeof *out);
    int rc = check_opts(o);
    if (rc) return rc;
    if (src->channels != 3) return vt__err(VT_EINVAL, "vt_image_augment: expects an RGB image");
    float area = urange(rng, o->crop_scale_min, o->crop_scale_max);
    float ratio = expf(urange(rng, logf(o->crop_ratio_min), logf(o->crop_ratio_max)));
    float cw = fminf(sqrtf(area * ratio), 1.0f) * size, ch = fminf(sqrtf(area / ratio), 1.0f) * size;
    float cx = urange(rng, cw / 2, size - cw / 2), cy = urange(rng, ch / 2, size - ch / 2);
    float ang = urange(rng, -o->max_rotate_deg, o->max_rotate_deg) * (float)M_PI / 180.0f;
    int flip = vt_rng_uniform(rng) < o->flip_prob;
    float bf = urange(rng, 1 - o->brightness, 1 + o->brightness);
    float cf = urange(rng, 1 - o->contrast, 1 + o->contrast);
    float sf = urange(rng, 1 - o->saturation, 1 + o->saturation);

    vt_image sq;
    rc = vt_image_fit(src, size, mode, &sq);
    if (rc) return rc;
    rc = vt_image_alloc(out, size, size, 3);
    if (rc) {
        vt_image_free(&sq);
        return rc;
    }
    /* Output pixel (u, v) -> crop coordinates -> rotate about the crop centre -> square. */
    float sx = cw / size, sy = ch / size, ca = cosf(ang), sa = sinf(ang);
    double sum_gray = 0;
    for (int v = 0; v < size; v++) {
        for (int u = 0; u < size; u++) {
            float uu = flip ? (float)(size - 1 - u) : (float)u;
            float dx = (uu + 0.5f - size * 0.5f) * sx, dy = (v + 0.5f - size * 0.5f) * sy;
            float x = cx + ca * dx - sa * dy - 0.5f, y = cy + sa * dx + ca * dy - 0.5f;
            int x0 = (int)floorf(x), y0 = (int)floorf(y);
            float fx = x - x0, fy = y - y0;
            float acc[3] = {0, 0, 0};
            for (int k = 0; k < 4; k++) {
                int xi = x0 + (k & 1), yi = y0 + (k >> 1);
                float w = ((k & 1) ? fx : 1 - fx) * ((k >> 1) ? fy : 1 - fy);
                const uint8_t *p = (xi >= 0 && yi >= 0 && xi < size && yi < size)
                                       ? sq.data + ((size_t)yi * size + xi) * 3
                                       : (const uint8_t *)"\xff\xff\xff";
                acc[0] += w * p[0];
                acc[1] += w * p[1];
                acc[2] += w * p[2];
            }
            uint8_t *q = out->data + ((size_t)v * size + u) * 3;
            for (int c = 0; c < 3; c++) q[c] = (uint8_t)VT_CLAMP(acc[c] * bf + 0.5f, 0.0f, 255.0f);
            sum_gray += 0.299 * q[0] + 0.587 * q[1] + 0.114 * q[2];
        }
    }
    vt_image_free(&sq);
    /* Contrast blends with the mean grey level, saturation with each pixel's grey level. */
    float mean = (float)(sum_gray / ((double)size * size));
    size_t np = (size_t)size * size;
    for (size_t i = 0; i < np; i++) {
        uint8_t *q = out->data + 3 * i;
        float c3[3];
        for (int c = 0; c < 3; c++) c3[c] = (q[c] - mean) * cf + mean;
        float g = 0.299f * c3[0] + 0.587f * c3[1] + 0.114f * c3[2];
        for (int c = 0; c < 3; c++) q[c] = (uint8_t)VT_CLAMP((c3[c] - g) * sf + g + 0.5f, 0.0f, 255.0f);
    }
    return VT_OK;
}
