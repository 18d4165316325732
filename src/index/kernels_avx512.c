/* kernels_avx512.c: AVX-512 (F, BW, VL, VNNI) distance kernels (chosen at run time by kernels.c). */
#include "index_internal.h"
#include <immintrin.h>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
#endif

/* d is a multiple of 16 */
static inline float dot_f32(const float *a, const float *b, size_t d) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    if (i < d) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
static inline float l2_f32(const float *a, const float *b, size_t d) {
    __m512 s0 = _mm512_setzero_ps();
    for (size_t i = 0; i < d; i += 16) {
        __m512 t = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(t, t, s0);
    }
    return _mm512_reduce_add_ps(s0);
}
static inline float dot_f16(const float *q, const uint16_t *x, size_t d) {
    __m512 s0 = _mm512_setzero_ps();
    for (size_t i = 0; i < d; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))), s0);
    return _mm512_reduce_add_ps(s0);
}
static inline float l2_f16(const float *q, const uint16_t *x, size_t d) {
    __m512 s0 = _mm512_setzero_ps();
    for (size_t i = 0; i < d; i += 16) {
        __m512 t = _mm512_sub_ps(_mm512_loadu_ps(q + i), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
        s0 = _mm512_fmadd_ps(t, t, s0);
    }
    return _mm512_reduce_add_ps(s0);
}
/* VNNI multiplies unsigned by signed bytes: feed |a| and b with a's sign (a in [-127, 127]).
 * d is a multiple of 64. */
static inline int32_t dot_i8(const int8_t *a, const int8_t *b, size_t d) {
    __m512i s = _mm512_setzero_si512();
    const __m512i zero = _mm512_setzero_si512();
    for (size_t i = 0; i < d; i += 64) {
        __m512i va = _mm512_loadu_si512(a + i), vb = _mm512_loadu_si512(b + i);
        __mmask64 neg = _mm512_movepi8_mask(va);
        __m512i sb = _mm512_mask_sub_epi8(vb, neg, zero, vb);
        s = _mm512_dpbusd_epi32(s, _mm512_abs_epi8(va), sb);
    }
    return _mm512_reduce_add_epi32(s);
}

static float k_dot_f32(const float *a, const float *b, size_t d) { return dot_f32(a, b, d); }
static float k_l2_f32(const float *a, const float *b, size_t d) { return l2_f32(a, b, d); }
static float k_dot_f16(const float *q, const uint16_t *x, size_t d) { return dot_f16(q, x, d); }
static float k_l2_f16(const float *q, const uint16_t *x, size_t d) { return l2_f16(q, x, d); }
static int32_t k_dot_i8(const int8_t *a, const int8_t *b, size_t d) { return dot_i8(a, b, d); }

static void k_scan_f32(const float *q, const uint8_t *base, size_t stride, size_t n, size_t d, int l2, float *out) {
    if (l2)
        for (size_t r = 0; r < n; r++) out[r] = l2_f32(q, (const float *)(base + r * stride), d);
    else
        for (size_t r = 0; r < n; r++) out[r] = dot_f32(q, (const float *)(base + r * stride), d);
}
static void k_scan_f16(const float *q, const uint8_t *base, size_t stride, size_t n, size_t d, int l2, size_t ahead,
                       float *out) {
    (void)ahead; /* not prefetched: this set could not be measured on the development machine */
    if (l2)
        for (size_t r = 0; r < n; r++) out[r] = l2_f16(q, (const uint16_t *)(base + r * stride), d);
    else
        for (size_t r = 0; r < n; r++) out[r] = dot_f16(q, (const uint16_t *)(base + r * stride), d);
}
/* The query's |q| and sign mask are computed once per 64-byte chunk and reused for the data
 * row: VNNI(|q|, x * sign(q)). */
static void k_scan_i8(const int8_t *q, const uint8_t *base, size_t stride, size_t n, size_t d, size_t ahead,
                      int32_t *out) {
    (void)ahead; /* as above */
    const __m512i zero = _mm512_setzero_si512();
    for (size_t r = 0; r < n; r++) {
        const int8_t *x = (const int8_t *)(base + r * stride);
        __m512i s = _mm512_setzero_si512();
        for (size_t i = 0; i < d; i += 64) {
            __m512i vq = _mm512_loadu_si512(q + i), vx = _mm512_loadu_si512(x + i);
            __mmask64 neg = _mm512_movepi8_mask(vq);
            s = _mm512_dpbusd_epi32(s, _mm512_abs_epi8(vq), _mm512_mask_sub_epi8(vx, neg, zero, vx));
        }
        out[r] = _mm512_reduce_add_epi32(s);
    }
}

static float k_dot_f32_i8(const float *q, const int8_t *x, size_t d) {
    __m512 s0 = _mm512_setzero_ps();
    for (size_t i = 0; i < d; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i),
                             _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(x + i)))), s0);
    return _mm512_reduce_add_ps(s0);
}
static void k_f16_to_f32(const uint16_t *in, float *out, size_t d) {
    for (size_t i = 0; i < d; i += 16) _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(in + i))));
}

const vt__kernels vt__kernels_avx512 = {"avx512", k_dot_f32, k_l2_f32, k_dot_f16, k_l2_f16, k_dot_i8,
                                        k_scan_f32, k_scan_f16, k_scan_i8, k_f16_to_f32,
                                        k_dot_f32_i8};

#if defined(__clang__)
#pragma clang attribute pop
#endif
