/* kernels_avx2.c: AVX2 + FMA + F16C distance kernels (chosen at run time by kernels.c). */
#include "index_internal.h"
#include <immintrin.h>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline int32_t hsum8i(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* d is a multiple of 16 */
static inline float dot_f32(const float *a, const float *b, size_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (size_t i = 0; i < d; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    return hsum8(_mm256_add_ps(s0, s1));
}
static inline float l2_f32(const float *a, const float *b, size_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (size_t i = 0; i < d; i += 16) {
        __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
    }
    return hsum8(_mm256_add_ps(s0, s1));
}
static inline float dot_f16(const float *q, const uint16_t *x, size_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (size_t i = 0; i < d; i += 16) {
        __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        __m256 x1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 8)));
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), x0, s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), x1, s1);
    }
    return hsum8(_mm256_add_ps(s0, s1));
}
static inline float l2_f16(const float *q, const uint16_t *x, size_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (size_t i = 0; i < d; i += 16) {
        __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
        __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8),
                                  _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 8))));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
    }
    return hsum8(_mm256_add_ps(s0, s1));
}
/* int8 x int8 with values in [-127, 127]: |a| * (b with a's sign) via maddubs (no saturation
 * since 2*127*127 < 32768), then pairs summed to int32. d is a multiple of 64. */
static inline int32_t dot_i8(const int8_t *a, const int8_t *b, size_t d) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    for (size_t i = 0; i < d; i += 64) {
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(a + i));
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(b + i));
        __m256i a1 = _mm256_loadu_si256((const __m256i *)(a + i + 32));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + i + 32));
        __m256i p0 = _mm256_maddubs_epi16(_mm256_sign_epi8(a0, a0), _mm256_sign_epi8(b0, a0));
        __m256i p1 = _mm256_maddubs_epi16(_mm256_sign_epi8(a1, a1), _mm256_sign_epi8(b1, a1));
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(p0, ones));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(p1, ones));
    }
    return hsum8i(_mm256_add_epi32(s0, s1));
}

static float k_dot_f32(const float *a, const float *b, size_t d) { return dot_f32(a, b, d); }
static float k_l2_f32(const float *a, const float *b, size_t d) { return l2_f32(a, b, d); }
static float k_dot_f16(const float *q, const uint16_t *x, size_t d) { return dot_f16(q, x, d); }
static float k_l2_f16(const float *q, const uint16_t *x, size_t d) { return l2_f16(q, x, d); }
static int32_t k_dot_i8(const int8_t *a, const int8_t *b, size_t d) { return dot_i8(a, b, d); }

/* Prefetches one line per 64 bytes of [p, p + len); calls on adjacent ranges cover every line of
 * their union. */
static inline void prefetch_range(const uint8_t *p, size_t len) {
    for (size_t o = 0; o < len; o += 64) _mm_prefetch((const char *)p + o, _MM_HINT_T0);
}

static void k_scan_f32(const float *q, const uint8_t *base, size_t stride, size_t n, size_t d, int l2, float *out) {
    if (l2)
        for (size_t r = 0; r < n; r++) out[r] = l2_f32(q, (const float *)(base + r * stride), d);
    else
        for (size_t r = 0; r < n; r++) out[r] = dot_f32(q, (const float *)(base + r * stride), d);
}
/* Dot products (or squared L2 distances) of q with n f16 rows, prefetching `ahead` bytes ahead. */
static void k_scan_f16(const float *q, const uint8_t *base, size_t stride, size_t n, size_t d, int l2, size_t ahead,
                       float *out) {
    for (size_t r = 0; r < n; r++) {
        const uint16_t *x = (const uint16_t *)(base + r * stride);
        if (ahead) prefetch_range((const uint8_t *)x + ahead, stride);
        out[r] = l2 ? l2_f16(q, x, d) : dot_f16(q, x, d);
    }
}
/* Raw int8 dot products of q with n rows at base + r*stride (d a multiple of 64), prefetching
 * `ahead` bytes ahead (0: not). Two rows per pass share the query loads and |q|. Four rows per
 * pass, with |q| computed once per query or the four sums reduced together, measured no faster
 * (bench/index/RESULTS.md): with the prefetch, the scan runs at about memory speed. */
static void k_scan_i8(const int8_t *q, const uint8_t *base, size_t stride, size_t n, size_t d, size_t ahead,
                      int32_t *out) {
    const __m256i ones = _mm256_set1_epi16(1);
    size_t r = 0;
    for (; r + 2 <= n; r += 2) {
        const int8_t *x0 = (const int8_t *)(base + r * stride), *x1 = (const int8_t *)(base + (r + 1) * stride);
        if (ahead) prefetch_range((const uint8_t *)x0 + ahead, 2 * stride);
        __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
        for (size_t i = 0; i < d; i += 32) {
            __m256i qa = _mm256_loadu_si256((const __m256i *)(q + i));
            __m256i qabs = _mm256_sign_epi8(qa, qa);
            __m256i p0 = _mm256_maddubs_epi16(qabs, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(x0 + i)), qa));
            __m256i p1 = _mm256_maddubs_epi16(qabs, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(x1 + i)), qa));
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(p0, ones));
            s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(p1, ones));
        }
        out[r] = hsum8i(s0);
        out[r + 1] = hsum8i(s1);
    }
    for (; r < n; r++) out[r] = dot_i8(q, (const int8_t *)(base + r * stride), d);
}

static float k_dot_f32_i8(const float *q, const int8_t *x, size_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (size_t i = 0; i < d; i += 16) {
        __m256 x0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x + i))));
        __m256 x1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x + i + 8))));
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), x0, s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), x1, s1);
    }
    return hsum8(_mm256_add_ps(s0, s1));
}
static void k_f16_to_f32(const uint16_t *in, float *out, size_t d) {
    for (size_t i = 0; i < d; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + i))));
}

const vt__kernels vt__kernels_avx2 = {"avx2", k_dot_f32, k_l2_f32, k_dot_f16, k_l2_f16, k_dot_i8,
                                      k_scan_f32, k_scan_f16, k_scan_i8, k_f16_to_f32,
                                      k_dot_f32_i8};

#if defined(__clang__)
#pragma clang attribute pop
#endif
