/* kernels.c: portable distance kernels, float16 conversion and run-time ISA dispatch. */
#include "index_internal.h"
#include <cpuid.h>
#include <math.h>
#include <string.h>

/* IEEE half <-> float, round to nearest even; NaN and infinities preserved. */
uint16_t vt__f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ab = x & 0x7fffffffu;
    if (ab >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (ab > 0x7f800000u ? 0x200u : 0));
    if (ab >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* overflow to infinity */
    if (ab < 0x38800000u) {                                   /* subnormal or zero in half */
        if (ab < 0x33000000u) return (uint16_t)sign;
        uint32_t e = ab >> 23, m = (ab & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((ab >> 13) - (112u << 10));
    uint32_t rem = ab & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float vt__f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu, x;
    if (e == 0) {
        if (m == 0) x = sign;
        else { /* subnormal: normalise */
            e = 113;
            while (!(m & 0x400u)) { m <<= 1; e--; }
            x = sign | (e << 23) | ((m & 0x3ffu) << 13);
        }
    } else if (e == 31) x = sign | 0x7f800000u | (m << 13);
    else x = sign | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static float p_dot_f32(const float *a, const float *b, size_t d) {
    float s[8] = {0};
    for (size_t i = 0; i < d; i += 8)
        for (int j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}
static float p_l2_f32(const float *a, const float *b, size_t d) {
    float s[8] = {0};
    for (size_t i = 0; i < d; i += 8)
        for (int j = 0; j < 8; j++) {
            float t = a[i + j] - b[i + j];
            s[j] += t * t;
        }
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}
static float p_dot_f16(const float *q, const uint16_t *x, size_t d) {
    float s = 0;
    for (size_t i = 0; i < d; i++) s += q[i] * vt__f16_to_f32(x[i]);
    return s;
}
static float p_l2_f16(const float *q, const uint16_t *x, size_t d) {
    float s = 0;
    for (size_t i = 0; i < d; i++) {
        float t = q[i] - vt__f16_to_f32(x[i]);
        s += t * t;
    }
    return s;
}
static int32_t p_dot_i8(const int8_t *a, const int8_t *b, size_t d) {
    int32_t s = 0;
    for (size_t i = 0; i < d; i++) s += (int32_t)a[i] * b[i];
    return s;
}
static void p_scan_f32(const float *q, const uint8_t *base, size_t stride, size_t n, size_t d, int l2, float *out) {
    for (size_t r = 0; r < n; r++) {
        const float *x = (const float *)(base + r * stride);
        out[r] = l2 ? p_l2_f32(q, x, d) : p_dot_f32(q, x, d);
    }
}
static void p_scan_f16(const float *q, const uint8_t *base, size_t stride, size_t n, size_t d, int l2, size_t ahead,
                       float *out) {
    (void)ahead;
    for (size_t r = 0; r < n; r++) {
        const uint16_t *x = (const uint16_t *)(base + r * stride);
        out[r] = l2 ? p_l2_f16(q, x, d) : p_dot_f16(q, x, d);
    }
}
static void p_scan_i8(const int8_t *q, const uint8_t *base, size_t stride, size_t n, size_t d, size_t ahead,
                      int32_t *out) {
    (void)ahead;
    for (size_t r = 0; r < n; r++) out[r] = p_dot_i8(q, (const int8_t *)(base + r * stride), d);
}

static float p_dot_f32_i8(const float *q, const int8_t *x, size_t d) {
    float s = 0;
    for (size_t i = 0; i < d; i++) s += q[i] * (float)x[i];
    return s;
}
static void p_f16_to_f32(const uint16_t *in, float *out, size_t d) {
    for (size_t i = 0; i < d; i++) out[i] = vt__f16_to_f32(in[i]);
}

const vt__kernels vt__kernels_portable = {"portable", p_dot_f32, p_l2_f32, p_dot_f16, p_l2_f16, p_dot_i8,
                                          p_scan_f32, p_scan_f16, p_scan_i8, p_f16_to_f32,
                                          p_dot_f32_i8};

static const vt__kernels *g_kernels; /* atomic */

/* F16C: CPUID leaf 1, ECX bit 29 (not every compiler's __builtin_cpu_supports knows it). */
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}

static int cpu_has(const char *isa) {
    __builtin_cpu_init();
    if (!strcmp(isa, "portable")) return 1;
    if (!strcmp(isa, "avx2"))
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    if (!strcmp(isa, "avx512"))
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
    return 0;
}

static const vt__kernels *best(void) {
    if (cpu_has("avx512")) return &vt__kernels_avx512;
    if (cpu_has("avx2")) return &vt__kernels_avx2;
    return &vt__kernels_portable;
}

static const vt__kernels *by_name(const char *name) {
    if (!strcmp(name, "portable")) return &vt__kernels_portable;
    if (!strcmp(name, "avx2")) return &vt__kernels_avx2;
    if (!strcmp(name, "avx512")) return &vt__kernels_avx512;
    return NULL;
}

const vt__kernels *vt__kernels_get(void) {
    const vt__kernels *k = __atomic_load_n(&g_kernels, __ATOMIC_ACQUIRE);
    if (k) return k;
    k = best();
    const char *env = getenv("VITRINE_ISA");
    if (env && *env && strcmp(env, "auto")) {
        const vt__kernels *e = by_name(env);
        if (!e) VT_LOGW("VITRINE_ISA=%s is not portable, avx2, avx512 or auto; using %s", env, k->name);
        else if (!cpu_has(env)) VT_LOGW("VITRINE_ISA=%s: this CPU lacks it; using %s", env, k->name);
        else k = e;
    }
    __atomic_store_n(&g_kernels, k, __ATOMIC_RELEASE);
    return k;
}

int vt_index_force_isa(const char *name) {
    if (!name || !strcmp(name, "auto")) {
        __atomic_store_n(&g_kernels, best(), __ATOMIC_RELEASE);
        return VT_OK;
    }
    const vt__kernels *k = by_name(name);
    if (!k) return vt__err(VT_EINVAL, "unknown kernel set '%s' (portable, avx2, avx512, auto)", name);
    if (!cpu_has(name)) return vt__err(VT_EUNSUPPORTED, "this CPU does not support the %s kernels", name);
    __atomic_store_n(&g_kernels, k, __ATOMIC_RELEASE);
    return VT_OK;
}

const char *vt_index_isa(void) { return vt__kernels_get()->name; }

/* ---- CRC-32C: SSE4.2 instruction when present, else a byte table. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_hw;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int j = 0; j < 8; j++) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
        crc_table[i] = c;
    }
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const uint8_t *p, size_t len) {
    uint64_t c64 = c;
    while (len && ((uintptr_t)p & 7)) { c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++); len--; }
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c64;
    while (len--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}

uint32_t vt__crc32c(uint32_t crc, const void *buf, size_t len) {
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = buf;
    uint32_t c = ~crc;
    if (crc_hw) c = crc_sse42(c, p, len);
    else
        for (size_t i = 0; i < len; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return ~c;
}
