/* sample.c: a procedurally drawn sample catalog (photos + Kaggle-shaped styles.csv) whose answers are known. */
#include "core/internal.h"
#include <errno.h>
#include <jpeglib.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

/* ---- palette and article types */

typedef struct {
    const char *name;
    uint8_t rgb[3];
} colour;

static const colour colours[] = {
    {"Black", {28, 28, 30}},      {"Grey", {128, 128, 132}},   {"Navy Blue", {25, 35, 95}},
    {"Blue", {40, 100, 210}},     {"Red", {205, 30, 35}},      {"Maroon", {115, 20, 40}},
    {"Green", {30, 150, 60}},     {"Olive", {110, 115, 40}},   {"Yellow", {240, 205, 30}},
    {"Orange", {245, 125, 25}},   {"Pink", {240, 130, 175}},   {"Purple", {115, 50, 150}},
    {"Brown", {110, 65, 35}},     {"Beige", {215, 190, 150}},
};
#define NCOLOURS ((int)(sizeof colours / sizeof colours[0]))

enum { T_TSHIRT, T_SHIRT, T_TROUSERS, T_SHORTS, T_DRESS, T_SKIRT, T_SHOES, T_HANDBAG, T_BACKPACK, T_CAP, NTYPES };

typedef struct {
    const char *article, *master, *sub;
    int gender;        /* 0: Men or Women at random, 1: Women, 2: Unisex */
    float plain_share; /* probability of a plain colour */
} type_info;

static const type_info types[NTYPES] = {
    [T_TSHIRT] = {"Tshirts", "Apparel", "Topwear", 0, 0.4f},
    [T_SHIRT] = {"Shirts", "Apparel", "Topwear", 0, 0.4f},
    [T_TROUSERS] = {"Trousers", "Apparel", "Bottomwear", 0, 0.6f},
    [T_SHORTS] = {"Shorts", "Apparel", "Bottomwear", 0, 0.5f},
    [T_DRESS] = {"Dresses", "Apparel", "Dress", 1, 0.4f},
    [T_SKIRT] = {"Skirts", "Apparel", "Bottomwear", 1, 0.4f},
    [T_SHOES] = {"Casual Shoes", "Footwear", "Shoes", 0, 0.75f},
    [T_HANDBAG] = {"Handbags", "Accessories", "Bags", 1, 0.7f},
    [T_BACKPACK] = {"Backpacks", "Accessories", "Bags", 2, 0.7f},
    [T_CAP] = {"Caps", "Accessories", "Headwear", 2, 0.7f},
};

enum { P_PLAIN, P_STRIPES, P_CHECKS, P_DOTS, NPATTERNS };
static const char *const pattern_words[NPATTERNS] = {"Solid", "Striped", "Checked", "Polka Dot"};

int vt_sample_colour_count(void) { return NCOLOURS; }
const char *vt_sample_colour_name(int i) { return i >= 0 && i < NCOLOURS ? colours[i].name : NULL; }
void vt_sample_colour_rgb(int i, uint8_t rgb[3]) {
    if (i >= 0 && i < NCOLOURS) memcpy(rgb, colours[i].rgb, 3);
}
int vt_sample_type_count(void) { return NTYPES; }
const char *vt_sample_type_name(int i) { return i >= 0 && i < NTYPES ? types[i].article : NULL; }

/* ---- shapes: primitives in a unit square (y down), added or cut, each painted in a role */

enum { R_NONE = 0, R_BODY, R_DARK, R_ACCENT };
enum { K_POLY, K_ELLIPSE, K_RRECT, K_ARC };

typedef struct {
    int kind, role; /* role R_NONE cuts */
    int n;
    float p[16][2];          /* polygon */
    float cx, cy, rx, ry, t; /* ellipse; arc: ring of thickness t, upper half */
    float x0, y0, x1, y1, r; /* rounded rectangle */
    float bb[4];             /* bounding box */
} prim;

typedef struct {
    prim p[16];
    int n;
} shape;

static prim *add(shape *s, int kind, int role) {
    prim *p = &s->p[s->n++];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->role = role;
    return p;
}

static void poly(shape *s, int role, int n, const float *xy) {
    prim *p = add(s, K_POLY, role);
    p->n = n;
    memcpy(p->p, xy, (size_t)n * 2 * sizeof(float));
}

static void ellipse(shape *s, int role, float cx, float cy, float rx, float ry) {
    prim *p = add(s, K_ELLIPSE, role);
    p->cx = cx, p->cy = cy, p->rx = rx, p->ry = ry;
}

static void arc(shape *s, int role, float cx, float cy, float rx, float ry, float t) {
    prim *p = add(s, K_ARC, role);
    p->cx = cx, p->cy = cy, p->rx = rx, p->ry = ry, p->t = t;
}

static void rrect(shape *s, int role, float x0, float y0, float x1, float y1, float r) {
    prim *p = add(s, K_RRECT, role);
    p->x0 = x0, p->y0 = y0, p->x1 = x1, p->y1 = y1, p->r = r;
}

/* The outline of article type `t`, with small variations drawn from `rng`. */
static void build_shape(int t, vt_rng *rng, shape *s) {
    s->n = 0;
    float v = (float)vt_rng_uniform(rng) - 0.5f; /* one shape parameter in [-0.5, 0.5) */
    switch (t) {
    case T_TSHIRT: {
        float sl = 0.36f + 0.06f * v; /* sleeve end height */
        float xy[] = {0.42f, 0.15f, 0.30f, 0.19f, 0.13f, sl, 0.21f, sl + 0.08f, 0.31f, 0.33f, 0.31f, 0.87f,
                      0.69f, 0.87f, 0.69f, 0.33f, 0.79f, sl + 0.08f, 0.87f, sl, 0.70f, 0.19f, 0.58f, 0.15f};
        poly(s, R_BODY, 12, xy);
        ellipse(s, R_NONE, 0.5f, 0.15f, 0.085f, 0.055f);
        break;
    }
    case T_SHIRT: {
        float cuff = 0.80f + 0.05f * v;
        float xy[] = {0.42f, 0.15f, 0.30f, 0.18f, 0.12f, cuff, 0.21f, cuff + 0.03f, 0.31f, 0.36f, 0.31f, 0.88f,
                      0.69f, 0.88f, 0.69f, 0.36f, 0.79f, cuff + 0.03f, 0.88f, cuff, 0.70f, 0.18f, 0.58f, 0.15f};
        poly(s, R_BODY, 12, xy);
        ellipse(s, R_NONE, 0.5f, 0.15f, 0.075f, 0.04f);
        float cl[] = {0.42f, 0.14f, 0.50f, 0.24f, 0.45f, 0.26f, 0.40f, 0.17f};
        float cr[] = {0.58f, 0.14f, 0.50f, 0.24f, 0.55f, 0.26f, 0.60f, 0.17f};
        poly(s, R_DARK, 4, cl);
        poly(s, R_DARK, 4, cr);
        rrect(s, R_DARK, 0.493f, 0.24f, 0.507f, 0.88f, 0.0f);
        break;
    }
    case T_TROUSERS: {
        float w = 0.02f * v;
        float xy[] = {0.32f, 0.15f, 0.68f, 0.15f, 0.70f + w, 0.93f, 0.535f, 0.93f,
                      0.50f, 0.40f, 0.465f, 0.93f, 0.30f - w, 0.93f};
        poly(s, R_BODY, 7, xy);
        rrect(s, R_DARK, 0.32f, 0.09f, 0.68f, 0.15f, 0.0f);
        break;
    }
    case T_SHORTS: {
        float h = 0.67f + 0.04f * v;
        float xy[] = {0.27f, 0.31f, 0.73f, 0.31f, 0.77f, h, 0.535f, h + 0.02f, 0.50f, 0.50f, 0.465f, h + 0.02f, 0.23f, h};
        poly(s, R_BODY, 7, xy);
        rrect(s, R_DARK, 0.27f, 0.25f, 0.73f, 0.31f, 0.0f);
        break;
    }
    case T_DRESS: {
        float flare = 0.30f + 0.06f * v;
        float xy[] = {0.39f, 0.10f, 0.61f, 0.10f, 0.63f, 0.40f, 0.5f + flare, 0.91f, 0.5f - flare, 0.91f, 0.37f, 0.40f};
        poly(s, R_BODY, 6, xy);
        ellipse(s, R_NONE, 0.5f, 0.10f, 0.075f, 0.07f);
        rrect(s, R_DARK, 0.37f, 0.38f, 0.63f, 0.42f, 0.0f);
        break;
    }
    case T_SKIRT: {
        float flare = 0.28f + 0.05f * v;
        float xy[] = {0.34f, 0.32f, 0.66f, 0.32f, 0.5f + flare, 0.75f, 0.5f - flare, 0.75f};
        poly(s, R_BODY, 4, xy);
        rrect(s, R_DARK, 0.34f, 0.27f, 0.66f, 0.32f, 0.0f);
        break;
    }
    case T_SHOES: {
        float hgt = 0.05f * v;
        float xy[] = {0.14f, 0.63f, 0.14f, 0.44f - hgt, 0.30f, 0.40f - hgt, 0.42f, 0.45f, 0.56f, 0.50f,
                      0.76f, 0.53f, 0.87f, 0.58f, 0.89f, 0.64f};
        poly(s, R_BODY, 8, xy);
        ellipse(s, R_DARK, 0.27f, 0.425f - hgt, 0.09f, 0.025f);
        for (int i = 0; i < 3; i++) rrect(s, R_DARK, 0.40f + 0.05f * (float)i, 0.46f + 0.017f * (float)i, 0.43f + 0.05f * (float)i, 0.49f + 0.017f * (float)i, 0.0f);
        rrect(s, R_ACCENT, 0.12f, 0.625f, 0.91f, 0.685f, 0.028f);
        break;
    }
    case T_HANDBAG: {
        float w = 0.03f * v;
        float xy[] = {0.22f - w, 0.44f, 0.78f + w, 0.44f, 0.85f + w, 0.83f, 0.15f - w, 0.83f};
        poly(s, R_BODY, 4, xy);
        arc(s, R_DARK, 0.5f, 0.445f, 0.19f, 0.21f, 0.035f);
        float flap[] = {0.22f - w, 0.44f, 0.78f + w, 0.44f, 0.5f, 0.58f};
        poly(s, R_DARK, 3, flap);
        rrect(s, R_ACCENT, 0.475f, 0.555f, 0.525f, 0.60f, 0.01f);
        break;
    }
    case T_BACKPACK: {
        float w = 0.03f * v;
        rrect(s, R_BODY, 0.27f - w, 0.22f, 0.73f + w, 0.87f, 0.12f);
        arc(s, R_DARK, 0.5f, 0.225f, 0.07f, 0.07f, 0.02f);
        rrect(s, R_DARK, 0.34f, 0.57f, 0.66f, 0.81f, 0.05f);
        rrect(s, R_ACCENT, 0.36f, 0.58f, 0.64f, 0.595f, 0.0f);
        break;
    }
    case T_CAP: {
        float b = 0.03f * v;
        ellipse(s, R_BODY, 0.45f, 0.56f, 0.25f, 0.24f);
        rrect(s, R_NONE, 0.0f, 0.56f, 1.0f, 1.0f, 0.0f);
        ellipse(s, R_BODY, 0.70f + b, 0.565f, 0.23f + b, 0.05f);
        ellipse(s, R_DARK, 0.45f, 0.325f, 0.02f, 0.015f);
        rrect(s, R_DARK, 0.20f, 0.545f, 0.70f, 0.565f, 0.0f);
        break;
    }
    }
}

/* Applies scale `k` about the centre, then a shift, then an optional horizontal mirror; computes
 * bounding boxes. */
static void transform(shape *s, float k, float dx, float dy, int mirror) {
#define TX(x) (mirror ? 1.0f - ((0.5f + ((x) - 0.5f) * k) + dx) : (0.5f + ((x) - 0.5f) * k) + dx)
#define TY(y) ((0.5f + ((y) - 0.5f) * k) + dy)
    for (int i = 0; i < s->n; i++) {
        prim *p = &s->p[i];
        switch (p->kind) {
        case K_POLY:
            p->bb[0] = p->bb[1] = 1e9f, p->bb[2] = p->bb[3] = -1e9f;
            for (int j = 0; j < p->n; j++) {
                p->p[j][0] = TX(p->p[j][0]);
                p->p[j][1] = TY(p->p[j][1]);
                p->bb[0] = fminf(p->bb[0], p->p[j][0]), p->bb[2] = fmaxf(p->bb[2], p->p[j][0]);
                p->bb[1] = fminf(p->bb[1], p->p[j][1]), p->bb[3] = fmaxf(p->bb[3], p->p[j][1]);
            }
            break;
        case K_ELLIPSE:
        case K_ARC:
            p->cx = TX(p->cx), p->cy = TY(p->cy), p->rx *= k, p->ry *= k, p->t *= k;
            p->bb[0] = p->cx - p->rx - p->t, p->bb[2] = p->cx + p->rx + p->t;
            p->bb[1] = p->cy - p->ry - p->t, p->bb[3] = p->cy + p->ry + p->t;
            break;
        case K_RRECT: {
            float a = TX(p->x0), b = TX(p->x1);
            p->x0 = fminf(a, b), p->x1 = fmaxf(a, b);
            p->y0 = TY(p->y0), p->y1 = TY(p->y1), p->r *= k;
            p->bb[0] = p->x0, p->bb[1] = p->y0, p->bb[2] = p->x1, p->bb[3] = p->y1;
            break;
        }
        }
    }
#undef TX
#undef TY
}

static int inside(const prim *p, float x, float y) {
    if (x < p->bb[0] || x > p->bb[2] || y < p->bb[1] || y > p->bb[3]) return 0;
    switch (p->kind) {
    case K_POLY: {
        int c = 0;
        for (int i = 0, j = p->n - 1; i < p->n; j = i++) {
            float xi = p->p[i][0], yi = p->p[i][1], xj = p->p[j][0], yj = p->p[j][1];
            if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) c = !c;
        }
        return c;
    }
    case K_ELLIPSE: {
        float u = (x - p->cx) / p->rx, v = (y - p->cy) / p->ry;
        return u * u + v * v <= 1.0f;
    }
    case K_ARC: {
        if (y > p->cy) return 0;
        float u = (x - p->cx) / p->rx, v = (y - p->cy) / p->ry;
        float d = sqrtf(u * u + v * v);
        float tt = p->t / fminf(p->rx, p->ry);
        return d <= 1.0f + tt * 0.5f && d >= 1.0f - tt * 0.5f;
    }
    case K_RRECT: {
        float r = p->r;
        float cx = fminf(fmaxf(x, p->x0 + r), p->x1 - r), cy = fminf(fmaxf(y, p->y0 + r), p->y1 - r);
        float dx = x - cx, dy = y - cy;
        return dx * dx + dy * dy <= r * r + 1e-12f;
    }
    }
    return 0;
}

/* The role painted at (x, y): the last primitive containing the point decides. */
static int role_at(const shape *s, float x, float y) {
    int role = R_NONE;
    for (int i = 0; i < s->n; i++)
        if (inside(&s->p[i], x, y)) role = s->p[i].role;
    return role;
}

/* ---- one item */

typedef struct {
    int type, colour, pattern, gender; /* gender: 0 Men, 1 Women, 2 Unisex */
    int season, year, usage;
} item_spec;

static const char *const gender_names[] = {"Men", "Women", "Unisex"};
static const char *const season_names[] = {"Summer", "Fall", "Winter", "Spring"};
static const char *const usage_names[] = {"Casual", "Formal", "Sports"};

/* Draws the attributes of item i from the catalog's seed. */
static void draw_spec(uint64_t seed, int i, item_spec *sp) {
    vt_rng rng;
    vt_rng_seed(&rng, seed * 0x9E3779B97F4A7C15ull + (uint64_t)i * 2 + 1);
    sp->type = (int)vt_rng_below(&rng, NTYPES);
    sp->colour = (int)vt_rng_below(&rng, NCOLOURS);
    const type_info *t = &types[sp->type];
    sp->pattern = vt_rng_uniform(&rng) < t->plain_share ? P_PLAIN : 1 + (int)vt_rng_below(&rng, NPATTERNS - 1);
    sp->gender = t->gender == 0 ? (vt_rng_uniform(&rng) < 0.6 ? 0 : 1) : t->gender;
    sp->season = (int)vt_rng_below(&rng, 4);
    sp->year = 2010 + (int)vt_rng_below(&rng, 9);
    double u = vt_rng_uniform(&rng);
    sp->usage = 0;
    if ((sp->type == T_SHIRT || sp->type == T_TROUSERS) && u < 0.5) sp->usage = 1;
    if ((sp->type == T_TSHIRT || sp->type == T_SHORTS || sp->type == T_SHOES) && u < 0.25) sp->usage = 2;
}

/* Renders item i into img (size x size RGB): the shape, its pattern, shading and a little noise,
 * 2x2 supersampled, on white. */
static void render(uint64_t seed, int i, const item_spec *sp, vt_image *img) {
    vt_rng rng;
    vt_rng_seed(&rng, seed * 0xD1B54A32D192ED03ull + (uint64_t)i * 2 + 2);
    shape s;
    build_shape(sp->type, &rng, &s);
    float k = 0.86f + 0.12f * (float)vt_rng_uniform(&rng);
    float dx = 0.06f * ((float)vt_rng_uniform(&rng) - 0.5f), dy = 0.06f * ((float)vt_rng_uniform(&rng) - 0.5f);
    int mirror = sp->type == T_SHOES && vt_rng_uniform(&rng) < 0.5;
    transform(&s, k, dx, dy, mirror);
    const int S = img->width;
    const uint8_t *base = colours[sp->colour].rgb;
    float lum = 0.299f * base[0] + 0.587f * base[1] + 0.114f * base[2];
    float sec[3];
    for (int c = 0; c < 3; c++) sec[c] = lum < 150 ? 240.0f : 45.0f;
    float period = (float)S * (0.055f + 0.035f * (float)vt_rng_uniform(&rng));
    float phase = period * (float)vt_rng_uniform(&rng);
    int vertical = vt_rng_uniform(&rng) < 0.5;
    float accent[3] = {228, 226, 222};
    if (sp->type == T_HANDBAG || sp->type == T_BACKPACK) accent[0] = 200, accent[1] = 170, accent[2] = 60; /* brass */
    for (int y = 0; y < S; y++) {
        uint8_t *row = img->data + (size_t)y * (size_t)S * 3;
        for (int x = 0; x < S; x++) {
            float acc[3] = {0, 0, 0};
            for (int sy = 0; sy < 2; sy++)
                for (int sx = 0; sx < 2; sx++) {
                    float px = ((float)x + 0.25f + 0.5f * (float)sx), py = ((float)y + 0.25f + 0.5f * (float)sy);
                    int role = role_at(&s, px / (float)S, py / (float)S);
                    float c[3] = {255, 255, 255};
                    if (role == R_BODY || role == R_DARK) {
                        int second = 0;
                        float u = (vertical ? px : py) + phase, w = (vertical ? py : px) + phase;
                        float fu = fmodf(u, period) / period, fw = fmodf(w, period) / period;
                        switch (sp->pattern) {
                        case P_STRIPES: second = fu < 0.3f; break;
                        case P_CHECKS: second = fu < 0.22f || fw < 0.22f; break;
                        case P_DOTS: {
                            float a = fu - 0.5f, b = fw - 0.5f;
                            second = a * a + b * b < 0.22f * 0.22f;
                            break;
                        }
                        default: break;
                        }
                        /* soft cylindrical shading across the item */
                        float shade = 1.0f - 0.10f * ((px / (float)S - 0.5f) * (px / (float)S - 0.5f)) * 4.0f;
                        if (role == R_DARK) shade *= 0.70f;
                        for (int ch = 0; ch < 3; ch++) c[ch] = (second && role == R_BODY ? sec[ch] : base[ch]) * shade;
                    } else if (role == R_ACCENT) {
                        memcpy(c, accent, sizeof c);
                    }
                    for (int ch = 0; ch < 3; ch++) acc[ch] += c[ch];
                }
            int noise = acc[0] + acc[1] + acc[2] < 3 * 4 * 250.0f ? (int)vt_rng_below(&rng, 7) - 3 : 0;
            for (int ch = 0; ch < 3; ch++) {
                int v = (int)lrintf(acc[ch] * 0.25f) + noise;
                row[x * 3 + ch] = (uint8_t)VT_CLAMP(v, 0, 255);
            }
        }
    }
}

typedef struct {
    struct jpeg_error_mgr pub;
    char msg[JMSG_LENGTH_MAX];
    int failed;
} jerr;

static void on_jpeg_error(j_common_ptr ci) {
    jerr *e = (jerr *)ci->err;
    (*ci->err->format_message)(ci, e->msg);
    e->failed = 1;
}

/* Writes img as a baseline JPEG. libjpeg errors are recorded instead of exiting (the compressor
 * is simply abandoned at the end). */
static int write_jpeg(const vt_image *img, const char *path, int quality) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return vt__err(VT_EIO, "%s: %s", path, strerror(errno));
    struct jpeg_compress_struct ci;
    jerr e = {0};
    ci.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = on_jpeg_error;
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, fp);
    ci.image_width = (JDIMENSION)img->width;
    ci.image_height = (JDIMENSION)img->height;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    jpeg_start_compress(&ci, TRUE);
    for (int y = 0; y < img->height && !e.failed; y++) {
        JSAMPROW r = img->data + (size_t)y * (size_t)img->width * 3;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    if (!e.failed) jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    int bad = ferror(fp) | (fclose(fp) != 0);
    if (e.failed) return vt__err(VT_EIO, "%s: JPEG encoder: %s", path, e.msg);
    if (bad) return vt__err(VT_EIO, "%s: write failed", path);
    return VT_OK;
}

typedef struct {
    const char *dir;
    const vt_sample_opts *o;
    const item_spec *specs;
    int err;
    char errmsg[512];
    vt_progress *prog;
} gen_ctx;

/* Pool task: renders and writes item i; the first failure is kept and the rest skipped. */
static void gen_one(void *p, size_t i, int worker) {
    (void)worker;
    gen_ctx *c = p;
    if (__atomic_load_n(&c->err, __ATOMIC_RELAXED)) return;
    vt_image img;
    int rc = vt_image_alloc(&img, c->o->size, c->o->size, 3);
    if (!rc) {
        render(c->o->seed, (int)i, &c->specs[i], &img);
        char path[4200];
        snprintf(path, sizeof path, "%s/images/%d.jpg", c->dir, (int)i + 1);
        rc = write_jpeg(&img, path, c->o->quality);
        vt_image_free(&img);
    }
    if (rc) {
        int zero = 0;
        if (__atomic_compare_exchange_n(&c->err, &zero, rc, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            snprintf(c->errmsg, sizeof c->errmsg, "%s", vt_errmsg());
    }
    vt_progress_add(c->prog, 1, NULL);
}

static int make_dir(const char *path) {
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return VT_OK;
        return vt__err(VT_EIO, "%s: exists and is not a folder", path);
    }
    return vt__err(VT_EIO, "%s: cannot create: %s", path, strerror(errno));
}

/* Writes dir/styles.csv (Kaggle header, one row per item) and dir/images/<id>.jpg. */
int vt_sample_catalog(const char *dir, const vt_sample_opts *opts) {
    if (!dir || !*dir) return vt__err(VT_EINVAL, "vt_sample_catalog: no output folder");
    vt_sample_opts o = {.n = 500, .seed = 1, .size = 224, .threads = 0, .quality = 90};
    if (opts) {
        o = *opts;
        if (!o.n) o.n = 500;
        if (!o.size) o.size = 224;
        if (!o.quality) o.quality = 90;
    }
    if (o.n < 1 || o.n > 10000000) return vt__err(VT_EINVAL, "vt_sample_catalog: n must be 1..10000000, not %d", o.n);
    if (o.size < 32 || o.size > 4096) return vt__err(VT_EINVAL, "vt_sample_catalog: size must be 32..4096");
    if (o.quality < 1 || o.quality > 100) return vt__err(VT_EINVAL, "vt_sample_catalog: quality must be 1..100");
    if (strlen(dir) > 4000) return vt__err(VT_EINVAL, "vt_sample_catalog: folder name too long");
    char sub[4100];
    snprintf(sub, sizeof sub, "%s/images", dir);
    int rc = make_dir(dir);
    if (!rc) rc = make_dir(sub);
    if (rc) return rc;
    item_spec *specs = malloc((size_t)o.n * sizeof *specs);
    size_t cap = (size_t)o.n * 160 + 256;
    char *csv = malloc(cap);
    if (!specs || !csv) {
        free(specs);
        free(csv);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    size_t len = (size_t)snprintf(csv, cap, "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName\n");
    for (int i = 0; i < o.n; i++) {
        item_spec *sp = &specs[i];
        draw_spec(o.seed, i, sp);
        const type_info *t = &types[sp->type];
        len += (size_t)snprintf(csv + len, cap - len, "%d,%s,%s,%s,%s,%s,%s,%d,%s,Vitrine %s %s %s %s\n", i + 1,
                                gender_names[sp->gender], t->master, t->sub, t->article, colours[sp->colour].name,
                                season_names[sp->season], sp->year, usage_names[sp->usage], gender_names[sp->gender],
                                pattern_words[sp->pattern], colours[sp->colour].name, t->article);
        if (len >= cap) { /* cannot happen with the names above; guards later edits */
            free(specs);
            free(csv);
            return vt__err(VT_EINTERNAL, "vt_sample_catalog: styles.csv row %d is too long", i + 1);
        }
    }
    vt_pool *pool = NULL;
    rc = vt_pool_create(o.threads, &pool);
    if (!rc) {
        gen_ctx c = {.dir = dir, .o = &o, .specs = specs};
        vt_progress_create("sample-catalog", (uint64_t)o.n, "img", &c.prog);
        vt_pool_parallel_for(pool, (size_t)o.n, 4, gen_one, &c);
        vt_progress_finish(c.prog);
        vt_pool_free(pool);
        if (c.err) rc = vt__err(c.err, "%s", c.errmsg);
    }
    if (!rc) {
        char path[4100];
        snprintf(path, sizeof path, "%s/styles.csv", dir);
        rc = vt__write_file_atomic(path, csv, len);
    }
    free(specs);
    free(csv);
    return rc;
}
