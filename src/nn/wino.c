/* wino.c: 3x3 stride-1 convolutions by Winograd's F(4x4, 3x3) on AVX2 + FMA (a quarter of the
 * multiply-adds of a direct convolution), with their data and weights gradients; used by inference
 * plans (plan.c, docs/nn.md) and by training (train_layers.c, docs/train.md). */
#include "nn/nn_internal.h"
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif

#define NA 36                /* transformed tile: 6 x 6 */
#define CHUNK_BYTES (2u << 20) /* transformed input + products of one chunk of tiles */

struct nn_wino {
    int ic, oc, ih, iw, oh, ow, pt, pl;
    int th, tw;          /* tiles down and across one image */
    int tc;              /* tiles per chunk */
    float *u;            /* transformed weights [36][oc/16][ic][16] */
    float *bias;         /* [oc] */
    float *wlast;        /* the weights last transformed, when kept (NULL: none) */
    int wlast_t;
    float *macc;         /* weights gradient in the transformed domain [36][oc][ic] (allocated on use) */
};

/* Contract: a convolution of ic -> oc channels on ih x iw images with top/left pads pt/pl and
 * output oh x ow (ic % 8 == 0, oc % 16 == 0), weights to be set by vt__wino_set_weights.
 * NULL when out of memory or the channels do not fit. */
nn_wino *vt__wino_new(int ic, int oc, int ih, int iw, int oh, int ow, int pt, int pl) {
    if (ic < 8 || oc < 16 || ic % 8 || oc % 16) return NULL;
    nn_wino *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    *k = (nn_wino){.ic = ic, .oc = oc, .ih = ih, .iw = iw, .oh = oh, .ow = ow, .pt = pt, .pl = pl};
    k->th = (oh + 3) / 4;
    k->tw = (ow + 3) / 4;
    int tc = (int)(CHUNK_BYTES / (NA * 4u * (unsigned)(ic + oc)));
    k->tc = tc < 6 ? 6 : tc / 6 * 6;
    void *u = NULL;
    if (posix_memalign(&u, 64, (size_t)NA * ic * oc * 4)) u = NULL;
    k->u = u;
    k->bias = calloc((size_t)oc, 4);
    if (!k->u || !k->bias) {
        vt__wino_free(k);
        return NULL;
    }
    return k;
}

/* G g G^T for 8 kernels at once (one per lane): g[9] row-major 3x3 in, u[36] out. */
static inline void wtrans8(const __m256 g[9], __m256 u[36]) {
    const __m256 q = _mm256_set1_ps(1.f / 4), s6 = _mm256_set1_ps(1.f / 6), s12 = _mm256_set1_ps(1.f / 12),
                 s24 = _mm256_set1_ps(1.f / 24);
    __m256 t[6][3]; /* G g: rows of G applied down each column */
    for (int c = 0; c < 3; c++) {
        __m256 a = g[c], b = g[3 + c], d = g[6 + c];
        __m256 ad = _mm256_add_ps(a, d);
        t[0][c] = _mm256_mul_ps(q, a);
        t[1][c] = _mm256_mul_ps(s6, _mm256_sub_ps(_mm256_setzero_ps(), _mm256_add_ps(ad, b)));
        t[2][c] = _mm256_mul_ps(s6, _mm256_sub_ps(b, ad));
        __m256 e = _mm256_fmadd_ps(s24, a, _mm256_mul_ps(s6, d));
        t[3][c] = _mm256_fmadd_ps(s12, b, e);
        t[4][c] = _mm256_fnmadd_ps(s12, b, e);
        t[5][c] = d;
    }
    for (int r = 0; r < 6; r++) { /* (G g) G^T: the same along each row */
        __m256 a = t[r][0], b = t[r][1], d = t[r][2];
        __m256 ad = _mm256_add_ps(a, d);
        __m256 *o = u + r * 6;
        o[0] = _mm256_mul_ps(q, a);
        o[1] = _mm256_mul_ps(s6, _mm256_sub_ps(_mm256_setzero_ps(), _mm256_add_ps(ad, b)));
        o[2] = _mm256_mul_ps(s6, _mm256_sub_ps(b, ad));
        __m256 e = _mm256_fmadd_ps(s24, a, _mm256_mul_ps(s6, d));
        o[3] = _mm256_fmadd_ps(s12, b, e);
        o[4] = _mm256_fnmadd_ps(s12, b, e);
        o[5] = d;
    }
}

/* Transforms the weights of the 8 output channels of block ob into k->u (see
 * vt__wino_set_weights). The OpenMP loops of this file call helpers like this one that take no
 * vector argument: clang outlines a parallel loop into a function without the file's target
 * attribute, where AVX code would not build. */
static void wtrans_block(nn_wino *k, const float *w, int transposed, int ob) {
    int np = k->oc / 16, ic = k->ic, oc = k->oc;
    /* lanes are 8 consecutive output channels: gathered from w, stored contiguously in u */
    __m256i step = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                      _mm256_set1_epi32(transposed ? 9 : ic * 9));
    for (int i = 0; i < ic; i++) {
        __m256 g[9], u[36];
        if (transposed) {
            const float *b = w + ((size_t)i * oc + (size_t)ob * 8) * 9;
            for (int j = 0; j < 9; j++) g[j] = _mm256_i32gather_ps(b + 8 - j, step, 4);
        } else {
            const float *b = w + ((size_t)ob * 8 * ic + i) * 9;
            for (int j = 0; j < 9; j++) g[j] = _mm256_i32gather_ps(b + j, step, 4);
        }
        wtrans8(g, u);
        float *dst = k->u + ((size_t)(ob / 2) * ic + i) * 16 + (ob % 2) * 8;
        for (int a = 0; a < NA; a++) _mm256_storeu_ps(dst + (size_t)a * np * ic * 16, u[a]);
    }
}

/* Contract: transforms 3x3 weights w and copies bias (NULL: zeros). w is OIHW, oc x ic x 3 x 3;
 * with `transposed`, w is the forward weights of the convolution this one is the data gradient
 * of (ic x oc x 3 x 3, input and output swapped), used rotated by 180 degrees. With `keep`, a
 * copy of w is kept and weights equal to the last ones kept are not transformed again (training
 * sets them before every pass; a plan sets them once and keeps no copy). */
void vt__wino_set_weights(nn_wino *k, const float *w, const float *bias, int transposed, int keep) {
    int ic = k->ic, oc = k->oc;
    size_t wn = (size_t)ic * oc * 9;
    if (bias) memcpy(k->bias, bias, (size_t)oc * 4);
    else memset(k->bias, 0, (size_t)oc * 4);
    if (keep && k->wlast && k->wlast_t == transposed && !memcmp(k->wlast, w, wn * 4)) return;
    if (keep && !k->wlast) k->wlast = malloc(wn * 4);
    if (keep && k->wlast) {
        memcpy(k->wlast, w, wn * 4);
        k->wlast_t = transposed;
    }
#pragma omp parallel for schedule(static)
    for (int ob = 0; ob < oc / 8; ob++) wtrans_block(k, w, transposed, ob);
}

void vt__wino_free(nn_wino *k) {
    if (!k) return;
    free(k->u);
    free(k->bias);
    free(k->wlast);
    free(k->macc);
    free(k);
}

/* Bytes of transformed weights (the bias is not counted, as for oneDNN steps). */
size_t vt__wino_weight_bytes(const nn_wino *k) { return (size_t)NA * k->ic * k->oc * 4; }

/* Floats of scratch one run needs for a batch of n images. */
size_t vt__wino_scratch(const nn_wino *k, int n) {
    size_t t = (size_t)n * k->th * k->tw;
    if (t > (size_t)k->tc) t = (size_t)k->tc;
    return (size_t)NA * t * (size_t)(k->ic + k->oc);
}

/* B^T d for six vectors (one column or row of a tile). */
static inline void bt6(const __m256 d[6], __m256 r[6]) {
    const __m256 c4 = _mm256_set1_ps(4.f), c5 = _mm256_set1_ps(5.f), c2 = _mm256_set1_ps(2.f);
    __m256 a = _mm256_fnmadd_ps(c4, d[2], d[4]); /* d4 - 4 d2 */
    __m256 b = _mm256_fnmadd_ps(c4, d[1], d[3]); /* d3 - 4 d1 */
    __m256 e = _mm256_sub_ps(d[4], d[2]);
    __m256 f = _mm256_mul_ps(c2, _mm256_sub_ps(d[3], d[1]));
    r[0] = _mm256_fmadd_ps(c4, d[0], _mm256_fnmadd_ps(c5, d[2], d[4]));
    r[1] = _mm256_add_ps(a, b);
    r[2] = _mm256_sub_ps(a, b);
    r[3] = _mm256_add_ps(e, f);
    r[4] = _mm256_sub_ps(e, f);
    r[5] = _mm256_fmadd_ps(c4, d[1], _mm256_fnmadd_ps(c5, d[3], d[5]));
}

/* A^T m for six vectors: four outputs. */
static inline void at6(const __m256 m[6], __m256 o[4]) {
    const __m256 c2 = _mm256_set1_ps(2.f), c4 = _mm256_set1_ps(4.f), c8 = _mm256_set1_ps(8.f);
    __m256 s12 = _mm256_add_ps(m[1], m[2]), d12 = _mm256_sub_ps(m[1], m[2]);
    __m256 s34 = _mm256_add_ps(m[3], m[4]), d34 = _mm256_sub_ps(m[3], m[4]);
    o[0] = _mm256_add_ps(_mm256_add_ps(m[0], s12), s34);
    o[1] = _mm256_fmadd_ps(c2, d34, d12);
    o[2] = _mm256_fmadd_ps(c4, s34, s12);
    o[3] = _mm256_add_ps(_mm256_fmadd_ps(c8, d34, d12), m[5]);
}

/* Image of tile g (counted over the batch), and its first output row and column. */
static inline size_t tile_at(const nn_wino *k, size_t g, int *y0, int *x0) {
    size_t per = (size_t)k->th * k->tw;
    int r = (int)(g % per);
    *y0 = r / k->tw * 4;
    *x0 = r % k->tw * 4;
    return g / per;
}

/* Input transform of tile g (global index) for channel block cb into v[36][tc][ic] row t. */
static void in_tile(const nn_wino *k, const float *src, size_t g, int cb, float *v, int t, int tc) {
    int y0, x0;
    size_t n = tile_at(k, g, &y0, &x0);
    y0 -= k->pt, x0 -= k->pl;
    const float *base = src + ((n * (size_t)(k->ic / 8) + (size_t)cb) * k->ih * k->iw) * 8;
    __m256 d[6][6];
    if (y0 >= 0 && x0 >= 0 && y0 + 6 <= k->ih && x0 + 6 <= k->iw) {
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 6; x++) d[y][x] = _mm256_loadu_ps(base + ((size_t)(y0 + y) * k->iw + x0 + x) * 8);
    } else {
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 6; x++) {
                int yy = y0 + y, xx = x0 + x;
                d[y][x] = yy >= 0 && yy < k->ih && xx >= 0 && xx < k->iw
                              ? _mm256_loadu_ps(base + ((size_t)yy * k->iw + xx) * 8)
                              : _mm256_setzero_ps();
            }
    }
    __m256 tmp[6][6], col[6], res[6];
    for (int x = 0; x < 6; x++) { /* columns: B^T d */
        for (int y = 0; y < 6; y++) col[y] = d[y][x];
        bt6(col, res);
        for (int a = 0; a < 6; a++) tmp[a][x] = res[a];
    }
    for (int a = 0; a < 6; a++) { /* rows: (B^T d) B */
        bt6(tmp[a], res);
        for (int b = 0; b < 6; b++)
            _mm256_storeu_ps(v + ((size_t)(a * 6 + b) * tc + t) * k->ic + (size_t)cb * 8, res[b]);
    }
}

/* The FMA micro-kernel: C (rows x 16, row stride ldc) = (acc ? C : 0) + the sum over kk < K of
 * A(r, kk) x B(kk, 0..16), where A(r, kk) = A[r * ars + kk * aks] and row kk of B starts at
 * B + kk * bs. 12 accumulators, one broadcast per row and two loads of B per step. */
static inline __attribute__((always_inline)) void mk(const int rows, const int acc, int K, const float *A, size_t ars,
                                                      size_t aks, const float *B, size_t bs, float *C, size_t ldc) {
    __m256 c0[6], c1[6];
#pragma GCC unroll 6
    for (int r = 0; r < rows; r++) {
        c0[r] = acc ? _mm256_loadu_ps(C + r * ldc) : _mm256_setzero_ps();
        c1[r] = acc ? _mm256_loadu_ps(C + r * ldc + 8) : _mm256_setzero_ps();
    }
    for (int kk = 0; kk < K; kk++) {
        __m256 b0 = _mm256_loadu_ps(B + kk * bs), b1 = _mm256_loadu_ps(B + kk * bs + 8);
#pragma GCC unroll 6
        for (int r = 0; r < rows; r++) {
            __m256 a = _mm256_broadcast_ss(A + r * ars + kk * aks);
            c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
            c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < rows; r++) {
        _mm256_storeu_ps(C + r * ldc, c0[r]);
        _mm256_storeu_ps(C + r * ldc + 8, c1[r]);
    }
}

/* mk for a row count known only at run time (1 to 6). */
static void mk_rows(int rows, int acc, int K, const float *A, size_t ars, size_t aks, const float *B, size_t bs,
                    float *C, size_t ldc) {
#define MK_CASE(R)                                                                    \
    case R:                                                                           \
        if (acc) mk(R, 1, K, A, ars, aks, B, bs, C, ldc);                             \
        else mk(R, 0, K, A, ars, aks, B, bs, C, ldc);                                 \
        break;
    switch (rows) {
        MK_CASE(1) MK_CASE(2) MK_CASE(3) MK_CASE(4) MK_CASE(5) MK_CASE(6)
    default: break;
    }
#undef MK_CASE
}

/* m[xi] (tcur x oc) = v[xi] (tcur x ic) * u[xi] for OC panel p. */
static void gemm_panel(const nn_wino *k, const float *v, float *m, int xi, int p, int tcur, int tc) {
    int np = k->oc / 16, K = k->ic;
    const float *B = k->u + ((size_t)xi * np + p) * K * 16;
    const float *A = v + (size_t)xi * tc * K;
    float *C = m + (size_t)xi * tc * k->oc + (size_t)p * 16;
    int t = 0;
    size_t ldc = (size_t)k->oc;
    for (; t + 6 <= tcur; t += 6) mk(6, 0, K, A + (size_t)t * K, (size_t)K, 1, B, 16, C + (size_t)t * ldc, ldc);
    if (t < tcur) mk_rows(tcur - t, 0, K, A + (size_t)t * K, (size_t)K, 1, B, 16, C + (size_t)t * ldc, ldc);
}

static inline __m256 post(int npo, const nn_wpo *po, __m256 x, const float *old) {
    for (int i = 0; i < npo; i++) {
        const nn_wpo *q = &po[i];
        switch (q->kind) {
        case NN_WPO_SUM: x = _mm256_add_ps(x, _mm256_loadu_ps(old)); break;
        case NN_WPO_RELU: {
            __m256 z = _mm256_setzero_ps();
            x = q->a == 0.f ? _mm256_max_ps(x, z)
                            : _mm256_blendv_ps(_mm256_mul_ps(x, _mm256_set1_ps(q->a)), x, _mm256_cmp_ps(x, z, _CMP_GT_OQ));
            break;
        }
        case NN_WPO_CLIP: x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(q->a)), _mm256_set1_ps(q->b)); break;
        case NN_WPO_LINEAR: x = _mm256_fmadd_ps(x, _mm256_set1_ps(q->a), _mm256_set1_ps(q->b)); break;
        }
    }
    return x;
}

/* Output transform of tile g for output channel block ob from m[36][tc][oc] row t into dst. */
static void out_tile(const nn_wino *k, const float *m, size_t g, int ob, int t, int tc, float *dst, int npo,
                     const nn_wpo *po) {
    int y0, x0;
    size_t n = tile_at(k, g, &y0, &x0);
    __m256 tmp[4][6], row[6], o[4];
    for (int b = 0; b < 6; b++) { /* columns: A^T m */
        for (int a = 0; a < 6; a++) row[a] = _mm256_loadu_ps(m + ((size_t)(a * 6 + b) * tc + t) * k->oc + (size_t)ob * 8);
        at6(row, o);
        for (int i = 0; i < 4; i++) tmp[i][b] = o[i];
    }
    __m256 bias = _mm256_loadu_ps(k->bias + (size_t)ob * 8);
    float *base = dst + ((n * (size_t)(k->oc / 8) + (size_t)ob) * k->oh * k->ow) * 8;
    for (int i = 0; i < 4; i++) { /* rows: (A^T m) A */
        if (y0 + i >= k->oh) break;
        at6(tmp[i], o);
        for (int j = 0; j < 4 && x0 + j < k->ow; j++) {
            float *p = base + ((size_t)(y0 + i) * k->ow + x0 + j) * 8;
            _mm256_storeu_ps(p, post(npo, po, _mm256_add_ps(o[j], bias), p));
        }
    }
}

/* Contract: dst (n x oc x oh x ow, nChw8c) = conv(src (n x ic x ih x iw, nChw8c)) followed by the
 * npo (<= 8) post-ops in order; a sum post-op adds what dst holds on entry. scratch holds
 * vt__wino_scratch(k, n) floats. Runs on the current OpenMP thread count. */
void vt__wino_run(const nn_wino *k, int n, const float *src, float *dst, float *scratch, int npo, const nn_wpo *po) {
    size_t T = (size_t)n * k->th * k->tw;
    int tc = T < (size_t)k->tc ? (int)T : k->tc;
    float *v = scratch, *m = scratch + (size_t)NA * tc * k->ic;
    int icb = k->ic / 8, ocb = k->oc / 8, np = k->oc / 16;
#pragma omp parallel
    for (size_t g0 = 0; g0 < T; g0 += (size_t)tc) {
        int tcur = T - g0 < (size_t)tc ? (int)(T - g0) : tc;
#pragma omp for schedule(static)
        for (int j = 0; j < tcur * icb; j++) in_tile(k, src, g0 + (size_t)(j / icb), j % icb, v, j / icb, tc);
#pragma omp for schedule(static)
        for (int j = 0; j < NA * np; j++) gemm_panel(k, v, m, j / np, j % np, tcur, tc);
#pragma omp for schedule(static)
        for (int j = 0; j < tcur * ocb; j++) out_tile(k, m, g0 + (size_t)(j / ocb), j % ocb, j / ocb, tc, dst, npo, po);
    }
}


/* ---------------------------------------------------------------- weights gradient
 * dW = G^T [sum over tiles of (A dY_t A^T) . (B^T x_t B)] G: Winograd's F(3x3, 4x4), the same
 * input tiles as the forward pass, each output tile's 4x4 gradient as the "filter". */

/* A y for four vectors: six outputs. */
static inline void a4(const __m256 y[4], __m256 d[6]) {
    const __m256 c2 = _mm256_set1_ps(2.f), c4 = _mm256_set1_ps(4.f), c8 = _mm256_set1_ps(8.f);
    __m256 e = _mm256_add_ps(y[0], y[2]), o = _mm256_add_ps(y[1], y[3]);
    __m256 e4 = _mm256_fmadd_ps(c4, y[2], y[0]), o8 = _mm256_fmadd_ps(c8, y[3], _mm256_mul_ps(c2, y[1]));
    d[0] = y[0];
    d[1] = _mm256_add_ps(e, o);
    d[2] = _mm256_sub_ps(e, o);
    d[3] = _mm256_add_ps(e4, o8);
    d[4] = _mm256_sub_ps(e4, o8);
    d[5] = y[3];
}

/* Transform of output-gradient tile g for channel block ob into d[36][tc][oc] row t. */
static void dy_tile(const nn_wino *k, const float *dy, size_t g, int ob, float *d, int t, int tc) {
    int y0, x0;
    size_t n = tile_at(k, g, &y0, &x0);
    const float *base = dy + ((n * (size_t)(k->oc / 8) + (size_t)ob) * k->oh * k->ow) * 8;
    __m256 y[4][4], tmp[6][4], col[4], res[6];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            y[i][j] = y0 + i < k->oh && x0 + j < k->ow ? _mm256_loadu_ps(base + ((size_t)(y0 + i) * k->ow + x0 + j) * 8)
                                                       : _mm256_setzero_ps();
    for (int j = 0; j < 4; j++) { /* columns: A y */
        for (int i = 0; i < 4; i++) col[i] = y[i][j];
        a4(col, res);
        for (int a = 0; a < 6; a++) tmp[a][j] = res[a];
    }
    for (int a = 0; a < 6; a++) { /* rows: (A y) A^T */
        a4(tmp[a], res);
        for (int b = 0; b < 6; b++)
            _mm256_storeu_ps(d + ((size_t)(a * 6 + b) * tc + t) * k->oc + (size_t)ob * 8, res[b]);
    }
}

/* macc[xi][o0..o0+rows)[16 p..] += d[xi]^T v[xi] over the chunk's tcur tiles. */
static void gemm_w(const nn_wino *k, const float *v, const float *d, int xi, int o0, int rows, int p, int tcur, int tc) {
    const float *A = d + (size_t)xi * tc * k->oc + o0, *B = v + (size_t)xi * tc * k->ic + (size_t)p * 16;
    float *C = k->macc + ((size_t)xi * k->oc + o0) * k->ic + (size_t)p * 16;
    if (rows == 6) mk(6, 1, tcur, A, 1, (size_t)k->oc, B, (size_t)k->ic, C, (size_t)k->ic);
    else mk_rows(rows, 1, tcur, A, 1, (size_t)k->oc, B, (size_t)k->ic, C, (size_t)k->ic);
}

/* dw[o][i0..i0+8) (OIHW) = G^T m G from the transformed-domain gradient k->macc. */
static void dw_block(const nn_wino *k, int o, int i0, float *dw) {
    const __m256 q = _mm256_set1_ps(1.f / 4), s6 = _mm256_set1_ps(1.f / 6), s12 = _mm256_set1_ps(1.f / 12),
                 s24 = _mm256_set1_ps(1.f / 24);
    __m256 m[6][6], r[3][6];
    for (int a = 0; a < NA; a++) m[a / 6][a % 6] = _mm256_loadu_ps(k->macc + ((size_t)a * k->oc + o) * k->ic + i0);
    /* G^T: r[p] = sum over a of G[a][p] m[a] */
    for (int b = 0; b < 6; b++) {
        __m256 s14 = _mm256_add_ps(m[1][b], m[2][b]), d12 = _mm256_sub_ps(m[2][b], m[1][b]);
        __m256 s34 = _mm256_add_ps(m[3][b], m[4][b]), d34 = _mm256_sub_ps(m[3][b], m[4][b]);
        r[0][b] = _mm256_fmadd_ps(q, m[0][b], _mm256_fmsub_ps(s24, s34, _mm256_mul_ps(s6, s14)));
        r[1][b] = _mm256_fmadd_ps(s6, d12, _mm256_mul_ps(s12, d34));
        r[2][b] = _mm256_add_ps(_mm256_fmsub_ps(s6, s34, _mm256_mul_ps(s6, s14)), m[5][b]);
    }
    float out[9][8];
    for (int p2 = 0; p2 < 3; p2++) { /* (G^T m) G: the same along each row */
        const __m256 *x = r[p2];
        __m256 s14 = _mm256_add_ps(x[1], x[2]), d12 = _mm256_sub_ps(x[2], x[1]);
        __m256 s34 = _mm256_add_ps(x[3], x[4]), d34 = _mm256_sub_ps(x[3], x[4]);
        _mm256_storeu_ps(out[p2 * 3 + 0], _mm256_fmadd_ps(q, x[0], _mm256_fmsub_ps(s24, s34, _mm256_mul_ps(s6, s14))));
        _mm256_storeu_ps(out[p2 * 3 + 1], _mm256_fmadd_ps(s6, d12, _mm256_mul_ps(s12, d34)));
        _mm256_storeu_ps(out[p2 * 3 + 2], _mm256_add_ps(_mm256_fmsub_ps(s6, s34, _mm256_mul_ps(s6, s14)), x[5]));
    }
    for (int l = 0; l < 8; l++)
        for (int e = 0; e < 9; e++) dw[((size_t)o * k->ic + i0 + l) * 9 + e] = out[e][l];
}

/* db[ob*8..ob*8+8) = the sum of dy (nChw8c, batch n, ocb channel blocks of hw pixels) per channel. */
static void db_block(const float *dy, int n, int ocb, size_t hw, int ob, float *db) {
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n; b++) {
        const float *p = dy + (((size_t)b * ocb + (size_t)ob) * hw) * 8;
        for (size_t x = 0; x < hw; x++) acc = _mm256_add_ps(acc, _mm256_loadu_ps(p + x * 8));
    }
    _mm256_storeu_ps(db + (size_t)ob * 8, acc);
}

/* Contract: the weights gradient of this convolution for input src and output gradient dy (both
 * nChw8c, batch n): dw (oc x ic x 3 x 3, OIHW) is overwritten, and db (oc, may be NULL) with the
 * sum of dy per channel. scratch holds vt__wino_scratch(k, n) floats. The sums run in one fixed
 * order, whatever the thread count. Needs ic % 16 == 0. 0, VT_EINVAL or VT_ENOMEM. */
int vt__wino_bwd_weights(nn_wino *k, int n, const float *src, const float *dy, float *dw, float *db, float *scratch) {
    if (k->ic % 16) return VT_EINVAL;
    size_t mn = (size_t)NA * k->oc * k->ic;
    if (!k->macc && !(k->macc = malloc(mn * 4))) return VT_ENOMEM;
    memset(k->macc, 0, mn * 4);
    size_t T = (size_t)n * k->th * k->tw;
    int tc = T < (size_t)k->tc ? (int)T : k->tc;
    float *v = scratch, *d = scratch + (size_t)NA * tc * k->ic;
    int icb = k->ic / 8, ocb = k->oc / 8, np = k->ic / 16, nob = (k->oc + 5) / 6;
#pragma omp parallel
    for (size_t g0 = 0; g0 < T; g0 += (size_t)tc) {
        int tcur = T - g0 < (size_t)tc ? (int)(T - g0) : tc;
#pragma omp for schedule(static)
        for (int j = 0; j < tcur * (icb + ocb); j++) {
            int t = j / (icb + ocb), c = j % (icb + ocb);
            if (c < icb) in_tile(k, src, g0 + (size_t)t, c, v, t, tc);
            else dy_tile(k, dy, g0 + (size_t)t, c - icb, d, t, tc);
        }
#pragma omp for schedule(static)
        for (int j = 0; j < NA * nob * np; j++) {
            int xi = j / (nob * np), ob = j / np % nob, p = j % np;
            int o0 = ob * 6, rows = k->oc - o0 < 6 ? k->oc - o0 : 6;
            gemm_w(k, v, d, xi, o0, rows, p, tcur, tc);
        }
    }
    /* dW[o][i] = G^T m G, 8 input channels per vector */
#pragma omp parallel for schedule(static)
    for (int j = 0; j < k->oc * icb; j++) dw_block(k, j / icb, j % icb * 8, dw);
    if (db) {
#pragma omp parallel for schedule(static)
        for (int ob = 0; ob < ocb; ob++) db_block(dy, n, ocb, (size_t)k->oh * k->ow, ob, db);
    }
    return 0;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
