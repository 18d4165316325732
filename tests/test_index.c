/* test_index.c: unit tests of the similarity index: kernels vs a naive reference, the flat int8
 * scan bit for bit against a naive reimplementation, HNSW recall, filters, deletes, persistence
 * and corruption, row layout and bytes per item, the engine's cached index, determinism,
 * batching, concurrency. */
#include "testutil.h"
#include "index/index_internal.h"
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define VT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VT_ASAN 1
#endif
#endif
#ifndef VT_ASAN
#define VT_ASAN 0
#endif

/* sizes: smaller under the sanitizers, which run ~20x slower */
#define N_GRAPH (VT_ASAN ? 4000 : 20000)
#define N_QUERY (VT_ASAN ? 60 : 200)

/* ---- data */
static float gauss(vt_rng *r) {
    double u = vt_rng_uniform(r), v = vt_rng_uniform(r);
    return (float)(sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v));
}

static float *random_vecs(size_t n, int d, uint64_t seed) {
    vt_rng r;
    vt_rng_seed(&r, seed);
    float *v = malloc(n * (size_t)d * sizeof *v);
    for (size_t i = 0; i < n * (size_t)d; i++) v[i] = gauss(&r);
    return v;
}

/* n unit vectors around `nclus` random unit centres (noise sigma per vector). */
static float *clustered(size_t n, int d, int nclus, float sigma, uint64_t seed) {
    vt_rng r;
    vt_rng_seed(&r, seed);
    float *c = malloc((size_t)nclus * (size_t)d * sizeof *c), *v = malloc(n * (size_t)d * sizeof *v);
    for (size_t i = 0; i < (size_t)nclus * (size_t)d; i++) c[i] = gauss(&r) / sqrtf((float)d);
    for (size_t i = 0; i < n; i++) {
        const float *ci = c + vt_rng_below(&r, (uint64_t)nclus) * (size_t)d;
        double s = 0;
        for (int j = 0; j < d; j++) {
            float t = ci[j] + sigma * gauss(&r) / sqrtf((float)d);
            v[i * (size_t)d + j] = t;
            s += (double)t * t;
        }
        for (int j = 0; j < d; j++) v[i * (size_t)d + j] /= (float)sqrt(s);
    }
    free(c);
    return v;
}

static vt_index *make(vt_index_kind kind, vt_index_store st, vt_metric m, int d) {
    vt_index_opts o;
    vt_index_opts_init(&o);
    o.kind = kind;
    o.store = st;
    o.metric = m;
    o.dim = d;
    vt_index *x;
    assert_int_equal(vt_index_create(&o, &x), VT_OK);
    return x;
}

/* ---- naive reference of the documented semantics (independent of the library code) */
static float ref_f16(float f) { return (float)(_Float16)f; }

/* Reproduces what the index stores for v: f32 as is, f16 rounded, i8 per-vector max-abs scale. */
static void ref_represent(vt_index_store st, const float *v, int d, float *out) {
    if (st == VT_STORE_F32) memcpy(out, v, (size_t)d * sizeof *v);
    else if (st == VT_STORE_F16)
        for (int i = 0; i < d; i++) out[i] = ref_f16(v[i]);
    else {
        float m = 0;
        for (int i = 0; i < d; i++) m = fmaxf(m, fabsf(v[i]));
        float s = m > 0 ? m / 127 : 1;
        for (int i = 0; i < d; i++) {
            float q = m > 0 ? rintf(v[i] * (127 / m)) : 0;
            out[i] = fmaxf(-127, fminf(127, q)) * s;
        }
    }
}

static void normalise(float *v, int d) {
    double s = 0;
    for (int i = 0; i < d; i++) s += (double)v[i] * v[i];
    if (s > 0)
        for (int i = 0; i < d; i++) v[i] /= (float)sqrt(s);
}

/* Score as the index reports it: similarity for cosine/dot, squared distance for l2. */
static double ref_score(vt_metric m, const float *a, const float *b, int d) {
    double s = 0;
    for (int i = 0; i < d; i++) s += m == VT_METRIC_L2 ? ((double)a[i] - b[i]) * ((double)a[i] - b[i]) : (double)a[i] * b[i];
    return s;
}

static int better(vt_metric m, double a, double b) { return m == VT_METRIC_L2 ? a < b : a > b; }

/* Checks one exact-search answer against brute force over the reference representation:
 * every returned label's reference score matches the returned score, and the i-th returned
 * score matches the i-th best reference score (ties make labels ambiguous, scores are not). */
static void check_exact(vt_index_store st, vt_metric m, const float *data, size_t n, int d, const float *q, int k,
                        const int64_t *labels, const float *scores, const vt_bitset *filter) {
    float *rq = malloc((size_t)d * sizeof *rq), *qq = malloc((size_t)d * sizeof *qq), *rx = malloc((size_t)d * sizeof *rx);
    memcpy(qq, q, (size_t)d * sizeof *qq);
    if (m == VT_METRIC_COSINE) normalise(qq, d);
    memcpy(rq, qq, (size_t)d * sizeof *rq); /* final scores use the float query (int8: re-ranked) */
    double *all = malloc(n * sizeof *all);
    double *best = malloc((size_t)k * sizeof *best);
    int nb = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(rx, data + i * (size_t)d, (size_t)d * sizeof *rx);
        if (m == VT_METRIC_COSINE) normalise(rx, d);
        ref_represent(st, rx, d, rx);
        all[i] = ref_score(m, rq, rx, d);
        if (filter && !vt_bitset_test(filter, i)) continue;
        /* insertion into the sorted best-k list */
        int j;
        if (nb == k) {
            if (!better(m, all[i], best[k - 1])) continue;
            j = k - 1;
        } else {
            j = nb++;
        }
        while (j > 0 && better(m, all[i], best[j - 1])) {
            best[j] = best[j - 1];
            j--;
        }
        best[j] = all[i];
    }
    double tol = st == VT_STORE_F32 ? 1e-4 : 2e-3;
    for (int i = 0; i < k; i++) {
        if (i >= nb) {
            assert_int_equal(labels[i], -1);
            continue;
        }
        assert_true(labels[i] >= 0 && (size_t)labels[i] < n);
        if (filter) assert_true(vt_bitset_test(filter, (size_t)labels[i]));
        double scale = fabs(best[0]) + 1;
        if (fabs(all[labels[i]] - scores[i]) > tol * scale || fabs(best[i] - scores[i]) > tol * scale) {
            print_error("%s store, metric %d, rank %d: label %lld score %g, its reference %g, reference rank score %g\n",
                        st == VT_STORE_F32 ? "f32" : st == VT_STORE_F16 ? "f16" : "i8", (int)m, i,
                        (long long)labels[i], scores[i], all[labels[i]], best[i]);
            fail();
        }
    }
    free(rq);
    free(qq);
    free(rx);
    free(all);
    free(best);
}

/* ---- exact scan vs the naive reference: every kernel set, storage and metric */
static void test_exact_matches_reference(void **state) {
    (void)state;
    const char *isas[] = {"portable", "avx2", "avx512"};
    int dims[] = {37, 128};
    const size_t n = 1500;
    int tested = 0;
    for (int ii = 0; ii < 3; ii++) {
        if (vt_index_force_isa(isas[ii]) != VT_OK) {
            print_message("  (kernel set %s not supported by this CPU: skipped)\n", isas[ii]);
            continue;
        }
        assert_string_equal(vt_index_isa(), isas[ii]);
        tested++;
        for (int di = 0; di < 2; di++) {
            int d = dims[di];
            float *data = random_vecs(n, d, 100 + (uint64_t)d), *qs = random_vecs(8, d, 200 + (uint64_t)d);
            for (int st = 0; st < 3; st++)
                for (int m = 0; m < 3; m++) {
                    vt_index *x = make(VT_INDEX_FLAT, (vt_index_store)st, (vt_metric)m, d);
                    assert_int_equal(vt_index_add(x, data, n, NULL), VT_OK);
                    int64_t labels[10];
                    float scores[10];
                    /* flat f16 / i8 re-rank with float32 vectors: checked against the float32
                     * reference, at float32 tolerance; without the re-rank, against their own
                     * representation */
                    vt_search_opts off = {.rerank = -1};
                    for (int qi = 0; qi < 8; qi++) {
                        int found = -1;
                        assert_int_equal(vt_index_search(x, qs + qi * d, 10, NULL, labels, scores, &found), VT_OK);
                        assert_int_equal(found, 10);
                        check_exact(VT_STORE_F32, (vt_metric)m, data, n, d, qs + qi * d, 10, labels, scores, NULL);
                        assert_int_equal(vt_index_search(x, qs + qi * d, 10, &off, labels, scores, &found), VT_OK);
                        check_exact((vt_index_store)st, (vt_metric)m, data, n, d, qs + qi * d, 10, labels, scores, NULL);
                    }
                    /* the batched path answers the same */
                    int64_t bl[8 * 10];
                    float bs[8 * 10];
                    assert_int_equal(vt_index_search_batch(x, qs, 8, 10, NULL, bl, bs), VT_OK);
                    for (int qi = 0; qi < 8; qi++)
                        check_exact(VT_STORE_F32, (vt_metric)m, data, n, d, qs + qi * d, 10, bl + qi * 10, bs + qi * 10, NULL);
                    vt_index_free(x);
                }
            free(data);
            free(qs);
        }
    }
    assert_true(tested >= 1);
    assert_int_equal(vt_index_force_isa("auto"), VT_OK);
}

/* ---- the flat int8 scan, exactly. A naive reimplementation of the documented int8 semantics
 * (docs/index.md): vectors padded to a multiple of 64, normalised for cosine, quantised with a
 * per-vector max-abs scale; rows ranked by the int8 distance computed in the same float
 * operations as the library; the best 2k + 8 re-scored with the float query. That is the answer
 * with the float32 re-rank off (vt_search_opts.rerank < 0). Ids and scores must match bit for
 * bit: any shortcut in the scan (skipped rows, partial sums, a wrong prefetch or tail) would
 * show. With the re-rank on (the default), flat i8 and f16 indexes must answer what a flat f32
 * index over the same rows answers, ids and scores bit for bit. */
typedef struct {
    int d, dpad;
    size_t n;
    int8_t *codes; /* n * dpad */
    float *scale, *sq;
} ref_i8;

static float ref_sqnorm(const float *v, int d) {
    double s = 0;
    for (int i = 0; i < d; i++) s += (double)v[i] * v[i];
    return (float)s;
}

/* v (d floats) -> out (dpad floats, zero padded), normalised for cosine as the index does. */
static void ref_pad(const float *v, int d, int dpad, vt_metric m, float *out) {
    memcpy(out, v, (size_t)d * sizeof *out);
    memset(out + d, 0, (size_t)(dpad - d) * sizeof *out);
    if (m == VT_METRIC_COSINE) {
        float nn = sqrtf(ref_sqnorm(out, d));
        if (nn > 0) {
            float inv = 1.0f / nn;
            for (int i = 0; i < d; i++) out[i] *= inv;
        }
    }
}

/* Per-vector int8 quantisation; returns the scale, *sq the squared norm of the dequantised vector. */
static float ref_quant(const float *v, int dpad, int8_t *out, float *sq) {
    float mx = 0;
    for (int i = 0; i < dpad; i++) mx = fmaxf(mx, fabsf(v[i]));
    float scale = mx > 0 ? mx / 127.0f : 1.0f, inv = mx > 0 ? 127.0f / mx : 0.0f;
    int64_t s = 0;
    for (int i = 0; i < dpad; i++) {
        long q = lrintf(v[i] * inv);
        q = q > 127 ? 127 : q < -127 ? -127 : q;
        out[i] = (int8_t)q;
        s += q * q;
    }
    *sq = (float)((double)s * scale * scale);
    return scale;
}

static void ref_i8_build(ref_i8 *R, const float *data, size_t n, int d, vt_metric m) {
    R->d = d;
    R->dpad = (d + 63) / 64 * 64;
    R->n = n;
    R->codes = malloc(n * (size_t)R->dpad);
    R->scale = malloc(n * sizeof *R->scale);
    R->sq = malloc(n * sizeof *R->sq);
    float *buf = malloc((size_t)R->dpad * sizeof *buf);
    for (size_t i = 0; i < n; i++) {
        ref_pad(data + i * (size_t)d, d, R->dpad, m, buf);
        R->scale[i] = ref_quant(buf, R->dpad, R->codes + i * (size_t)R->dpad, &R->sq[i]);
    }
    free(buf);
}

static void ref_i8_free(ref_i8 *R) {
    free(R->codes);
    free(R->scale);
    free(R->sq);
}

static int cmp_ref_cand(const void *a, const void *b) {
    const vt__cand *x = a, *y = b;
    return x->d < y->d ? -1 : x->d > y->d ? 1 : (x->id > y->id) - (x->id < y->id);
}

/* The answer of an exact flat int8 search for query v over the rows that are not removed and
 * whose label the filter admits, re-ranked with kernel set K's float x int8 dot product (the
 * one the library re-ranks with). Returns 0 if two rows tie at the edge of the 2k + 8
 * candidates (then the candidate set, hence the answer, depends on visiting order). */
static int ref_i8_search(const ref_i8 *R, const vt__kernels *K, vt_metric m, const float *v, int k,
                         const int64_t *labels, const vt_bitset *f, const uint8_t *removed, int64_t *out_labels,
                         float *out_scores) {
    int dpad = R->dpad, kk = 2 * k + 8;
    float *fq = malloc((size_t)dpad * sizeof *fq);
    int8_t *qc = malloc((size_t)dpad);
    ref_pad(v, R->d, dpad, m, fq);
    float fsq = ref_sqnorm(fq, dpad), qsq;
    float qs = ref_quant(fq, dpad, qc, &qsq);
    vt__cand *c = malloc(R->n * sizeof *c);
    size_t nc = 0;
    for (size_t i = 0; i < R->n; i++) {
        if ((removed && removed[i]) || (f && !vt_bitset_test(f, (size_t)labels[i]))) continue;
        const int8_t *x = R->codes + i * (size_t)dpad;
        int32_t raw = 0;
        for (int j = 0; j < dpad; j++) raw += (int32_t)qc[j] * x[j];
        float dot = qs * R->scale[i] * (float)raw;
        c[nc].d = m == VT_METRIC_L2 ? qsq + R->sq[i] - 2 * dot : -dot;
        c[nc].id = (uint32_t)i;
        nc++;
    }
    qsort(c, nc, sizeof *c, cmp_ref_cand);
    int unambiguous = !(nc > (size_t)kk && c[kk - 1].d == c[kk].d);
    size_t nk = VT_MIN(nc, (size_t)kk);
    for (size_t i = 0; i < nk; i++) {
        float dot = R->scale[c[i].id] * K->dot_f32_i8(fq, R->codes + c[i].id * (size_t)dpad, (size_t)dpad);
        c[i].d = m == VT_METRIC_L2 ? fsq + R->sq[c[i].id] - 2 * dot : -dot;
    }
    qsort(c, nk, sizeof *c, cmp_ref_cand);
    for (int i = 0; i < k; i++) {
        out_labels[i] = (size_t)i < nk ? labels[c[i].id] : -1;
        out_scores[i] = (size_t)i < nk ? (m == VT_METRIC_L2 ? c[i].d : -c[i].d) : NAN;
    }
    free(fq);
    free(qc);
    free(c);
    return unambiguous;
}

/* Rows and queries that defeat any shortcut ranking rows by a partial sum over the first half of
 * the dimensions: each query's 20 true neighbours have a small first half pointing away from
 * the query's and a second half close to it; 180 decoys per query have a first half matching
 * the query's (3x stronger) and a random second half; the other rows are random. */
static void crafted(size_t n, int d, int nq, uint64_t seed, float **data, float **queries) {
    vt_rng r;
    vt_rng_seed(&r, seed);
    float *x = random_vecs(n, d, seed + 1), *q = malloc((size_t)nq * (size_t)d * sizeof *q);
    int h = d / 2;
    assert_true(n >= (size_t)nq * 200);
    for (int t = 0; t < nq; t++) {
        float *qt = q + (size_t)t * (size_t)d;
        for (int j = 0; j < d; j++) qt[j] = j < h ? 0.3f * gauss(&r) : gauss(&r);
        for (int i = 0; i < 200; i++) {
            float *row = x + ((size_t)t * 200 + (size_t)i) * (size_t)d;
            for (int j = 0; j < d; j++)
                row[j] = i < 20 ? (j < h ? -qt[j] + 0.05f * gauss(&r) : qt[j] + 0.8f * gauss(&r))
                                : (j < h ? 3 * qt[j] + 0.05f * gauss(&r) : gauss(&r));
        }
    }
    /* spread the planted rows over the whole index (a row order that hides nothing) */
    float *tmp = malloc((size_t)d * sizeof *tmp);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)vt_rng_below(&r, i + 1);
        memcpy(tmp, x + i * (size_t)d, (size_t)d * sizeof *tmp);
        memcpy(x + i * (size_t)d, x + j * (size_t)d, (size_t)d * sizeof *tmp);
        memcpy(x + j * (size_t)d, tmp, (size_t)d * sizeof *tmp);
    }
    free(tmp);
    *data = x;
    *queries = q;
}

/* Checks one index's single and batched answers for every query against ref_i8_search;
 * counts the queries skipped for a tie at the candidate edge in *ties. */
static void check_i8_exact(const vt_index *x, const ref_i8 *R, vt_metric m, const float *qs, int nq, int k,
                           const int64_t *labels, const vt_bitset *f, const uint8_t *removed, const char *what,
                           int *ties, int *checked) {
    const vt__kernels *K = vt__kernels_get();
    int64_t *bl = malloc((size_t)nq * (size_t)k * sizeof *bl);
    float *bs = malloc((size_t)nq * (size_t)k * sizeof *bs);
    vt_search_opts so = {.filter = f, .threads = 2, .rerank = -1};
    assert_int_equal(vt_index_search_batch(x, qs, (size_t)nq, k, &so, bl, bs), VT_OK);
    int64_t want_l[16], got_l[16];
    float want_s[16], got_s[16];
    for (int qi = 0; qi < nq; qi++) {
        const float *v = qs + (size_t)qi * (size_t)R->d;
        if (!ref_i8_search(R, K, m, v, k, labels, f, removed, want_l, want_s)) {
            (*ties)++;
            continue;
        }
        (*checked)++;
        int found = -1;
        assert_int_equal(vt_index_search(x, v, k, &so, got_l, got_s, &found), VT_OK);
        for (int pass = 0; pass < 2; pass++) {
            const int64_t *gl = pass ? bl + (size_t)qi * (size_t)k : got_l;
            const float *gs = pass ? bs + (size_t)qi * (size_t)k : got_s;
            for (int i = 0; i < k; i++)
                if (gl[i] != want_l[i] || memcmp(&gs[i], &want_s[i], sizeof gs[i])) {
                    print_error("%s, %s kernels, metric %d, %s, query %d rank %d: label %lld score %.9g, "
                                "reference label %lld score %.9g\n",
                                what, K->name, (int)m, pass ? "batch" : "single", qi, i, (long long)gl[i],
                                (double)gs[i], (long long)want_l[i], (double)want_s[i]);
                    fail();
                }
        }
    }
    free(bl);
    free(bs);
}

/* The default (re-ranked) single and batched answers of the flat f16 / i8 index xq are those of
 * the flat f32 index xf over the same rows, ids and scores bit for bit. */
static void check_same_as_f32(const vt_index *xq, const vt_index *xf, const float *qs, int nq, int k, const vt_bitset *f,
                              const char *what) {
    int d = xf->o.dim;
    int64_t *bl = malloc((size_t)nq * (size_t)k * sizeof *bl);
    float *bs = malloc((size_t)nq * (size_t)k * sizeof *bs);
    vt_search_opts so = {.filter = f, .threads = 2};
    assert_int_equal(vt_index_search_batch(xq, qs, (size_t)nq, k, &so, bl, bs), VT_OK);
    int64_t want_l[16], got_l[16];
    float want_s[16], got_s[16];
    for (int qi = 0; qi < nq; qi++) {
        const float *v = qs + (size_t)qi * (size_t)d;
        int fw = -1, fg = -2;
        assert_int_equal(vt_index_search(xf, v, k, &so, want_l, want_s, &fw), VT_OK);
        assert_int_equal(vt_index_search(xq, v, k, &so, got_l, got_s, &fg), VT_OK);
        assert_int_equal(fg, fw);
        for (int pass = 0; pass < 2; pass++) {
            const int64_t *gl = pass ? bl + (size_t)qi * (size_t)k : got_l;
            const float *gs = pass ? bs + (size_t)qi * (size_t)k : got_s;
            for (int i = 0; i < k; i++)
                if (gl[i] != want_l[i] || (i < fw && memcmp(&gs[i], &want_s[i], sizeof gs[i]))) {
                    print_error("%s, flat-%s re-ranked, %s kernels, metric %d, %s, query %d rank %d: label %lld score "
                                "%.9g, f32 scan label %lld score %.9g\n",
                                what, xq->o.store == VT_STORE_I8 ? "i8" : "f16", vt__kernels_get()->name,
                                (int)xq->o.metric, pass ? "batch" : "single", qi, i, (long long)gl[i], (double)gs[i],
                                (long long)want_l[i], (double)want_s[i]);
                    fail();
                }
        }
    }
    free(bl);
    free(bs);
}

static void test_i8_scan_exact(void **state) {
    (void)state;
    const char *isas[] = {"portable", "avx2", "avx512"};
    const char *sets[] = {"random", "clustered", "crafted"};
    const int k = 10, nq = 10;
    const size_t n = VT_ASAN ? 2001 : 2999; /* odd: the scan's one-row tail runs */
    int ties = 0, checked = 0, isa_ok[3];
    for (int ii = 0; ii < 3; ii++) isa_ok[ii] = vt_index_force_isa(isas[ii]) == VT_OK;
    vt_index_force_isa("auto");
    for (int ds = 0; ds < 3; ds++) {
        int d = ds == 1 ? 200 : 512; /* strides 260 or 264 (padded to 256), 516 or 520 (l2) */
        float *data, *qs;
        if (ds == 0) {
            data = random_vecs(n, d, 300);
            qs = random_vecs((size_t)nq, d, 301);
        } else if (ds == 1) {
            float *all = clustered(n + (size_t)nq, d, 40, 0.3f, 302); /* tight: near ties */
            data = all;
            qs = malloc((size_t)nq * (size_t)d * sizeof *qs);
            memcpy(qs, all + n * (size_t)d, (size_t)nq * (size_t)d * sizeof *qs);
        } else {
            crafted(n, d, nq, 303, &data, &qs);
        }
        int64_t *lab = malloc(n * sizeof *lab);
        for (size_t i = 0; i < n; i++) lab[i] = (int64_t)(3 * i + 7);
        vt_bitset *f50, *f5;
        assert_int_equal(vt_bitset_create(3 * n + 8, &f50), VT_OK);
        assert_int_equal(vt_bitset_create(3 * n + 8, &f5), VT_OK);
        vt_rng r;
        vt_rng_seed(&r, 304 + (uint64_t)ds);
        for (size_t i = 0; i < n; i++) {
            double u = vt_rng_uniform(&r);
            if (u < 0.5) vt_bitset_set(f50, (size_t)lab[i]);
            if (u < 0.05) vt_bitset_set(f5, (size_t)lab[i]); /* below 1/8: the sparse path */
        }
        uint8_t *removed = calloc(n, 1);
        for (size_t i = 0; i < n; i++) removed[i] = vt_rng_uniform(&r) < 0.3;
        for (int m = 0; m < 3; m++) {
            ref_i8 R;
            ref_i8_build(&R, data, n, d, (vt_metric)m);
            vt_index *x = make(VT_INDEX_FLAT, VT_STORE_I8, (vt_metric)m, d);
            vt_index *xh = make(VT_INDEX_FLAT, VT_STORE_F16, (vt_metric)m, d);
            vt_index *xf = make(VT_INDEX_FLAT, VT_STORE_F32, (vt_metric)m, d);
            assert_int_equal(vt_index_add(x, data, n, lab), VT_OK);
            assert_int_equal(vt_index_add(xh, data, n, lab), VT_OK);
            assert_int_equal(vt_index_add(xf, data, n, lab), VT_OK);
            for (int phase = 0; phase < 2; phase++) {
                if (phase == 1) /* then the same with 30 % of the rows deleted */
                    for (size_t i = 0; i < n; i++)
                        if (removed[i]) {
                            assert_int_equal(vt_index_remove(x, lab[i]), VT_OK);
                            assert_int_equal(vt_index_remove(xh, lab[i]), VT_OK);
                            assert_int_equal(vt_index_remove(xf, lab[i]), VT_OK);
                        }
                const uint8_t *rm = phase ? removed : NULL;
                for (int ii = 0; ii < 3; ii++) {
                    if (!isa_ok[ii]) continue;
                    assert_int_equal(vt_index_force_isa(isas[ii]), VT_OK);
                    char what[64];
                    snprintf(what, sizeof what, "%s%s", sets[ds], phase ? " with deletes" : "");
                    check_i8_exact(x, &R, (vt_metric)m, qs, nq, k, lab, NULL, rm, what, &ties, &checked);
                    check_i8_exact(x, &R, (vt_metric)m, qs, nq, k, lab, f50, rm, what, &ties, &checked);
                    check_i8_exact(x, &R, (vt_metric)m, qs, nq, k, lab, f5, rm, what, &ties, &checked);
                    const vt_bitset *fs[3] = {NULL, f50, f5};
                    for (int fi = 0; fi < 3; fi++) {
                        check_same_as_f32(x, xf, qs, nq, k, fs[fi], what);
                        check_same_as_f32(xh, xf, qs, nq, k, fs[fi], what);
                    }
                }
            }
            vt_index_force_isa("auto");
            vt_index_free(x);
            vt_index_free(xh);
            vt_index_free(xf);
            ref_i8_free(&R);
        }
        free(removed);
        vt_bitset_free(f50);
        vt_bitset_free(f5);
        free(lab);
        free(data);
        free(qs);
    }
    print_message("  int8 flat scan: %d answers identical to the reference, %d skipped for a tie at the "
                  "candidate edge; kernels:%s%s%s\n", checked, ties, isa_ok[0] ? " portable" : "",
                  isa_ok[1] ? " avx2" : "", isa_ok[2] ? " avx512" : " (avx512 not supported here)");
    assert_true(ties * 50 <= checked);
    assert_int_equal(vt_index_force_isa("auto"), VT_OK);
}

/* The kernels of every supported set agree with the portable ones on raw inputs, including
 * int8 extremes (-127..127) that would saturate a careless maddubs. */
static void test_kernels_agree(void **state) {
    (void)state;
    const vt__kernels *sets[] = {&vt__kernels_avx2, &vt__kernels_avx512};
    const char *names[] = {"avx2", "avx512"};
    vt_rng r;
    vt_rng_seed(&r, 5);
    size_t d = 256;
    float a[256], b[256];
    uint16_t h[256];
    int8_t ia[256], ib[256];
    for (size_t i = 0; i < d; i++) {
        a[i] = gauss(&r);
        b[i] = gauss(&r);
        h[i] = vt__f32_to_f16(b[i]);
        ia[i] = (int8_t)(i % 3 == 0 ? 127 : i % 3 == 1 ? -127 : (int)vt_rng_below(&r, 255) - 127);
        ib[i] = (int8_t)(i % 2 ? -127 : 127);
    }
    const vt__kernels *p = &vt__kernels_portable;
    for (int s = 0; s < 2; s++) {
        if (vt_index_force_isa(names[s]) != VT_OK) continue;
        const vt__kernels *k = sets[s];
        assert_float_equal(k->dot_f32(a, b, d), p->dot_f32(a, b, d), 1e-3);
        assert_float_equal(k->l2_f32(a, b, d), p->l2_f32(a, b, d), 1e-3);
        assert_float_equal(k->dot_f16(a, h, d), p->dot_f16(a, h, d), 1e-3);
        assert_float_equal(k->l2_f16(a, h, d), p->l2_f16(a, h, d), 1e-3);
        assert_int_equal(k->dot_i8(ia, ib, d), p->dot_i8(ia, ib, d));
        int32_t o1[3], o2[3];
        /* three rows at stride 256 bytes: ib, ia, ib */
        int8_t rows[3 * 256];
        memcpy(rows, ib, 256);
        memcpy(rows + 256, ia, 256);
        memcpy(rows + 512, ib, 256);
        k->scan_i8(ia, (const uint8_t *)rows, 256, 3, d, 0, o1);
        p->scan_i8(ia, (const uint8_t *)rows, 256, 3, d, 0, o2);
        for (int i = 0; i < 3; i++) assert_int_equal(o1[i], o2[i]);
        /* the scans at the index's strides, odd and even row counts, with and without prefetching
         * (which may reach past the buffer: harmless, and ASan must not object) */
        size_t dims[] = {64, 256, 512}, counts[] = {1, 2, 3, 7, 8, 37};
        for (size_t di = 0; di < 3; di++)
            for (size_t ci = 0; ci < 6; ci++)
                for (size_t extra = 8; extra <= 8 + 136; extra += 136) { /* flat, and HNSW M=16 links */
                    size_t dd = dims[di], nr = counts[ci], stride = dd + extra;
                    uint8_t *buf = malloc(nr * stride);
                    int8_t *qq = malloc(dd);
                    for (size_t i = 0; i < nr * stride; i++) buf[i] = (uint8_t)((int)vt_rng_below(&r, 255) - 127);
                    for (size_t i = 0; i < dd; i++) qq[i] = (int8_t)((int)vt_rng_below(&r, 255) - 127);
                    int32_t want[37], got[37];
                    p->scan_i8(qq, buf, stride, nr, dd, 0, want);
                    for (size_t ahead = 0; ahead <= 4096; ahead += 4096) {
                        k->scan_i8(qq, buf, stride, nr, dd, ahead, got);
                        assert_memory_equal(got, want, nr * sizeof *got);
                    }
                    free(buf);
                    free(qq);
                }
        /* the f16 scan, with and without prefetching: the same as one row at a time */
        uint16_t hrows[5 * 264];
        float fo[5], fo2[5];
        for (size_t i = 0; i < 5 * 264; i++) hrows[i] = vt__f32_to_f16(gauss(&r));
        for (int l2 = 0; l2 < 2; l2++)
            for (size_t ahead = 0; ahead <= 4096; ahead += 4096) {
                k->scan_f16(a, (const uint8_t *)hrows, 264 * 2, 5, d, l2, ahead, fo);
                for (int i = 0; i < 5; i++) {
                    fo2[i] = l2 ? k->l2_f16(a, hrows + i * 264, d) : k->dot_f16(a, hrows + i * 264, d);
                    assert_true(fo[i] == fo2[i]);
                }
            }
    }
    vt_index_force_isa("auto");
    /* half conversions: exact on representable values, round to nearest even */
    assert_int_equal(vt__f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(vt__f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(vt__f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(vt__f32_to_f16(1e6f), 0x7c00);
    for (int i = 0; i < 2000; i++) {
        float f = gauss(&r) * (i % 7 ? 1.0f : 1e-5f);
        assert_true(vt__f16_to_f32(vt__f32_to_f16(f)) == (float)(_Float16)f);
    }
}

/* ---- HNSW recall */
static double recall_vs(const int64_t *got, const int64_t *truth, size_t nq, int k) {
    size_t hit = 0;
    for (size_t q = 0; q < nq; q++)
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                if (truth[q * k + i] >= 0 && got[q * k + j] == truth[q * k + i]) {
                    hit++;
                    break;
                }
    size_t tot = 0;
    for (size_t i = 0; i < nq * (size_t)k; i++) tot += truth[i] >= 0;
    return tot ? (double)hit / (double)tot : 1.0;
}

/* Ground truth with an exact f32 index over the same data, same filter. */
static void truth(const float *data, size_t n, int d, const float *q, size_t nq, int k, const vt_bitset *f,
                  const int64_t *labels, const uint8_t *removed, int64_t *out) {
    vt_index *x = make(VT_INDEX_FLAT, VT_STORE_F32, VT_METRIC_COSINE, d);
    assert_int_equal(vt_index_add(x, data, n, labels), VT_OK);
    for (size_t i = 0; removed && i < n; i++)
        if (removed[i]) assert_int_equal(vt_index_remove(x, labels ? labels[i] : (int64_t)i), VT_OK);
    vt_search_opts so = {.filter = f};
    assert_int_equal(vt_index_search_batch(x, q, nq, k, &so, out, NULL), VT_OK);
    vt_index_free(x);
}

static void test_hnsw_recall(void **state) {
    (void)state;
    int d = 64, k = 10;
    size_t n = N_GRAPH, nq = N_QUERY;
    float *all = clustered(n + nq, d, (int)(n / 50), 1.0f, 11); /* 50 per cluster: near ties */
    const float *q = all + n * (size_t)d;
    int64_t *gt = malloc(nq * (size_t)k * sizeof *gt), *got = malloc(nq * (size_t)k * sizeof *got);
    truth(all, n, d, q, nq, k, NULL, NULL, NULL, gt);
    vt_index_store stores[] = {VT_STORE_F32, VT_STORE_F16, VT_STORE_I8};
    double need[] = {0.95, 0.95, 0.90};
    for (int s = 0; s < 3; s++) {
        vt_index_opts o;
        vt_index_opts_init(&o);
        o.kind = VT_INDEX_HNSW;
        o.store = stores[s];
        o.dim = d;
        o.threads = s == 0 ? 1 : 2; /* the f16 and i8 graphs are built with two threads */
        vt_index *x;
        assert_int_equal(vt_index_create(&o, &x), VT_OK);
        double t0 = vt_now();
        assert_int_equal(vt_index_add(x, all, n, NULL), VT_OK);
        double tb = vt_now() - t0;
        assert_int_equal(vt_index_size(x), n);
        for (size_t i = 0; i < nq; i++)
            assert_int_equal(vt_index_search(x, q + i * (size_t)d, k, NULL, got + i * (size_t)k, NULL, NULL), VT_OK);
        double rec = recall_vs(got, gt, nq, k);
        print_message("  hnsw %s, %zu x %d, %d threads: build %.2f s, recall@10 %.4f (ef default)\n",
                      s == 0 ? "f32" : s == 1 ? "f16" : "i8", n, d, o.threads, tb, rec);
        assert_true(rec >= need[s]);
        /* a narrow beam finds fewer, a wide one at least as many */
        double rec_ef[3];
        int efs[3] = {10, 64, 256};
        for (int e = 0; e < 3; e++) {
            vt_search_opts so = {.ef = efs[e]};
            for (size_t i = 0; i < nq; i++)
                assert_int_equal(vt_index_search(x, q + i * (size_t)d, k, &so, got + i * (size_t)k, NULL, NULL), VT_OK);
            rec_ef[e] = recall_vs(got, gt, nq, k);
        }
        print_message("    recall@10 at ef 10 / 64 / 256: %.4f / %.4f / %.4f\n", rec_ef[0], rec_ef[1], rec_ef[2]);
        assert_true(rec_ef[0] <= rec_ef[1] + 0.005 && rec_ef[1] <= rec_ef[2] + 0.005);
        assert_true(rec_ef[0] < 1.0); /* the data is hard enough that ef matters */
        assert_true(fabs(rec_ef[1] - rec) < 1e-9); /* the default ef is 64 */
        for (size_t i = 0; i < nq; i++)
            assert_int_equal(vt_index_search(x, q + i * (size_t)d, k, NULL, got + i * (size_t)k, NULL, NULL), VT_OK);
        /* batch search = single searches */
        int64_t *bl = malloc(nq * (size_t)k * sizeof *bl);
        vt_search_opts so = {.threads = 2};
        assert_int_equal(vt_index_search_batch(x, q, nq, k, &so, bl, NULL), VT_OK);
        assert_memory_equal(bl, got, nq * (size_t)k * sizeof *bl);
        free(bl);
        vt_index_free(x);
    }
    free(gt);
    free(got);
    free(all);
}

/* ---- "exact means exact": flat f16 and int8 scans re-rank their candidates with float32 vectors,
 * so on clustered data, where the quantised scores of a query's neighbours lie within the
 * quantisation error of one another, they still find what the float32 scan finds. 20,000 x 128
 * unit vectors around 200 centres (noise 0.5), queries near catalog rows (a row plus noise 0.1),
 * every kernel set the CPU runs (vt_index_force_isa says which), one query at a time and batched:
 * recall@10 against the f32 flat scan at least 0.999. */

/* n unit vectors around nclus unit centres (noise of norm ~sigma), then nq queries near random
 * rows (noise of norm ~qnoise): (n + nq) * d floats. */
static float *clustered_near(size_t n, size_t nq, int d, int nclus, float sigma, float qnoise, uint64_t seed) {
    vt_rng r;
    vt_rng_seed(&r, seed);
    float *c = malloc((size_t)nclus * (size_t)d * sizeof *c), *v = malloc((n + nq) * (size_t)d * sizeof *v);
    for (int i = 0; i < nclus; i++) {
        for (int j = 0; j < d; j++) c[(size_t)i * (size_t)d + j] = gauss(&r);
        normalise(c + (size_t)i * (size_t)d, d);
    }
    for (size_t i = 0; i < n + nq; i++) {
        float *vi = v + i * (size_t)d;
        const float *base = i < n ? c + vt_rng_below(&r, (uint64_t)nclus) * (size_t)d : v + vt_rng_below(&r, n) * (size_t)d;
        float noise = i < n ? sigma : qnoise;
        for (int j = 0; j < d; j++) vi[j] = base[j] + noise * gauss(&r) / sqrtf((float)d);
        normalise(vi, d);
    }
    free(c);
    return v;
}

static void test_rerank_recall(void **state) {
    (void)state;
    const char *isas[] = {"portable", "avx2", "avx512"};
    int d = 128, k = 10;
    size_t n = VT_ASAN ? 5000 : 20000, nq = VT_ASAN ? 60 : 300;
    float *all = clustered_near(n, nq, d, (int)(n / 100), 0.5f, 0.1f, 2024);
    const float *q = all + n * (size_t)d;
    int64_t *gt = malloc(nq * (size_t)k * sizeof *gt), *got = malloc(nq * (size_t)k * sizeof *got);
    float *gs = malloc(nq * (size_t)k * sizeof *gs), *ss = malloc(nq * (size_t)k * sizeof *ss);
    vt_index *xf = make(VT_INDEX_FLAT, VT_STORE_F32, VT_METRIC_COSINE, d);
    assert_int_equal(vt_index_add(xf, all, n, NULL), VT_OK);
    vt_index *xq[2] = {make(VT_INDEX_FLAT, VT_STORE_F16, VT_METRIC_COSINE, d), make(VT_INDEX_FLAT, VT_STORE_I8, VT_METRIC_COSINE, d)};
    for (int s = 0; s < 2; s++) assert_int_equal(vt_index_add(xq[s], all, n, NULL), VT_OK);
    int tested = 0;
    for (int ii = 0; ii < 3; ii++) {
        if (vt_index_force_isa(isas[ii]) != VT_OK) {
            print_message("  (kernel set %s not supported by this CPU: skipped)\n", isas[ii]);
            continue;
        }
        tested++;
        assert_int_equal(vt_index_search_batch(xf, q, nq, k, NULL, gt, gs), VT_OK); /* the f32 scan: the truth */
        for (int s = 0; s < 2; s++) {
            const char *st = s ? "i8" : "f16";
            for (size_t i = 0; i < nq; i++)
                assert_int_equal(vt_index_search(xq[s], q + i * (size_t)d, k, NULL, got + i * (size_t)k, ss + i * (size_t)k, NULL), VT_OK);
            double rec = recall_vs(got, gt, nq, k);
            /* a label found by both has the same score: the float32 re-rank computes what the f32 scan does */
            size_t same = 0, both = 0;
            for (size_t i = 0; i < nq * (size_t)k; i++)
                if (got[i] == gt[i]) {
                    both++;
                    same += fabsf(ss[i] - gs[i]) <= 1e-6f;
                }
            assert_int_equal(vt_index_search_batch(xq[s], q, nq, k, NULL, got, NULL), VT_OK);
            double recb = recall_vs(got, gt, nq, k);
            vt_search_opts off = {.rerank = -1};
            assert_int_equal(vt_index_search_batch(xq[s], q, nq, k, &off, got, NULL), VT_OK);
            double rec_off = recall_vs(got, gt, nq, k);
            print_message("  %s kernels, flat-%s, %zu x %d clustered, %zu queries: recall@10 vs the f32 scan %.4f "
                          "(batch %.4f; without the float32 re-rank %.4f); %zu of %zu common answers with the f32 "
                          "score\n", vt_index_isa(), st, n, d, nq, rec, recb, rec_off, same, both);
            assert_true(rec >= 0.999);
            assert_true(recb >= 0.999);
            assert_int_equal(same, both);
        }
    }
    assert_true(tested >= 1);
    assert_int_equal(vt_index_force_isa("auto"), VT_OK);
    /* with 30 % of the rows deleted and filters admitting 50 % and 5 % (the sparse path) of the
     * items: the same recall, and never a deleted or filtered-out item */
    vt_rng r;
    vt_rng_seed(&r, 2025);
    uint8_t *removed = calloc(n, 1);
    for (size_t i = 0; i < n; i++)
        if ((removed[i] = vt_rng_uniform(&r) < 0.3)) {
            assert_int_equal(vt_index_remove(xf, (int64_t)i), VT_OK);
            for (int s = 0; s < 2; s++) assert_int_equal(vt_index_remove(xq[s], (int64_t)i), VT_OK);
        }
    for (int fi = 0; fi < 2; fi++) {
        vt_bitset *f;
        assert_int_equal(vt_bitset_create(n, &f), VT_OK);
        for (size_t i = 0; i < n; i++)
            if (vt_rng_uniform(&r) < (fi ? 0.05 : 0.5)) vt_bitset_set(f, i);
        vt_search_opts so = {.filter = f, .threads = 2};
        assert_int_equal(vt_index_search_batch(xf, q, nq, k, &so, gt, NULL), VT_OK);
        for (int s = 0; s < 2; s++) {
            for (size_t i = 0; i < nq; i++)
                assert_int_equal(vt_index_search(xq[s], q + i * (size_t)d, k, &so, got + i * (size_t)k, NULL, NULL), VT_OK);
            double rec = recall_vs(got, gt, nq, k);
            assert_int_equal(vt_index_search_batch(xq[s], q, nq, k, &so, got, NULL), VT_OK);
            double recb = recall_vs(got, gt, nq, k);
            for (size_t i = 0; i < nq * (size_t)k; i++)
                if (got[i] >= 0) assert_true(!removed[got[i]] && vt_bitset_test(f, (size_t)got[i]));
            print_message("  flat-%s, 30%% deleted, filter admitting %d%%: recall@10 vs the f32 scan %.4f (batch %.4f)\n",
                          s ? "i8" : "f16", fi ? 5 : 50, rec, recb);
            assert_true(rec >= 0.999 && recb >= 0.999);
        }
        vt_bitset_free(f);
    }
    free(removed);
    vt_index_free(xf);
    vt_index_free(xq[0]);
    vt_index_free(xq[1]);
    free(gt);
    free(got);
    free(gs);
    free(ss);
    free(all);
}

/* ---- filters admitting 50 %, 5 % and 0.1 % of the items (labels are sparse, not row numbers) */
static void test_filters(void **state) {
    (void)state;
    int d = 48, k = 10;
    size_t n = N_GRAPH, nq = N_QUERY;
    float *all = clustered(n + nq, d, (int)(n / 50), 1.0f, 21);
    const float *q = all + n * (size_t)d;
    int64_t *lab = malloc(n * sizeof *lab);
    for (size_t i = 0; i < n; i++) lab[i] = (int64_t)(3 * i + 7);
    vt_index_opts o;
    vt_index_opts_init(&o);
    o.kind = VT_INDEX_HNSW;
    o.dim = d;
    o.threads = 2;
    vt_index *x;
    assert_int_equal(vt_index_create(&o, &x), VT_OK);
    assert_int_equal(vt_index_add(x, all, n, lab), VT_OK);
    vt_index *flat = make(VT_INDEX_FLAT, VT_STORE_I8, VT_METRIC_COSINE, d);
    assert_int_equal(vt_index_add(flat, all, n, lab), VT_OK);
    double fracs[] = {0.5, 0.05, 0.001};
    int64_t *gt = malloc(nq * (size_t)k * sizeof *gt), *got = malloc(nq * (size_t)k * sizeof *got);
    vt_rng r;
    vt_rng_seed(&r, 3);
    for (int fi = 0; fi < 3; fi++) {
        vt_bitset *b;
        assert_int_equal(vt_bitset_create(3 * n + 8, &b), VT_OK);
        size_t want = (size_t)(fracs[fi] * (double)n);
        if (want < 3) want = 3;
        while (vt_bitset_count(b) < want) vt_bitset_set(b, (size_t)lab[vt_rng_below(&r, n)]);
        truth(all, n, d, q, nq, k, b, lab, NULL, gt);
        vt_search_opts so = {.filter = b};
        for (size_t i = 0; i < nq; i++) {
            assert_int_equal(vt_index_search(x, q + i * (size_t)d, k, &so, got + i * (size_t)k, NULL, NULL), VT_OK);
            for (int j = 0; j < k; j++)
                if (got[i * k + j] >= 0) assert_true(vt_bitset_test(b, (size_t)got[i * k + j]));
        }
        double rec = recall_vs(got, gt, nq, k);
        /* the flat int8 index with the same filter */
        int64_t *fg = malloc(nq * (size_t)k * sizeof *fg);
        assert_int_equal(vt_index_search_batch(flat, q, nq, k, &so, fg, NULL), VT_OK);
        double frec = recall_vs(fg, gt, nq, k);
        free(fg);
        print_message("  filter admitting %.1f%% (%zu items): hnsw recall@10 %.4f, flat-i8 recall@10 %.4f\n",
                      100 * fracs[fi], want, rec, frec);
        assert_true(rec >= 0.95);
        assert_true(frec >= 0.95);
        vt_bitset_free(b);
    }
    free(gt);
    free(got);
    free(lab);
    free(all);
    vt_index_free(x);
    vt_index_free(flat);
}

/* ---- delete, then search never returns a deleted item */
static void test_delete(void **state) {
    (void)state;
    int d = 32, k = 10;
    size_t n = N_GRAPH / 2, nq = N_QUERY;
    float *all = clustered(n + nq, d, (int)(n / 50), 0.8f, 31);
    const float *q = all + n * (size_t)d;
    uint8_t *removed = calloc(n, 1);
    vt_rng r;
    vt_rng_seed(&r, 9);
    for (size_t i = 0; i < n; i++) removed[i] = vt_rng_uniform(&r) < 0.3;
    int64_t *gt = malloc(nq * (size_t)k * sizeof *gt), *got = malloc(nq * (size_t)k * sizeof *got);
    truth(all, n, d, q, nq, k, NULL, NULL, removed, gt);
    for (int kind = 0; kind < 2; kind++) {
        vt_index *x = make((vt_index_kind)kind, VT_STORE_F32, VT_METRIC_COSINE, d);
        assert_int_equal(vt_index_add(x, all, n, NULL), VT_OK);
        size_t nrem = 0;
        for (size_t i = 0; i < n; i++)
            if (removed[i]) {
                assert_int_equal(vt_index_remove(x, (int64_t)i), VT_OK);
                nrem++;
            }
        assert_int_equal(vt_index_size(x), n - nrem);
        assert_int_equal(vt_index_remove(x, 0 + (int64_t)n * 10), VT_ENOTFOUND);
        for (size_t i = 0; i < n; i++)
            if (removed[i]) {
                assert_int_equal(vt_index_remove(x, (int64_t)i), VT_ENOTFOUND);
                break;
            }
        for (size_t i = 0; i < nq; i++) {
            assert_int_equal(vt_index_search(x, q + i * (size_t)d, k, NULL, got + i * (size_t)k, NULL, NULL), VT_OK);
            for (int j = 0; j < k; j++) assert_true(got[i * k + j] < 0 || !removed[got[i * k + j]]);
        }
        double rec = recall_vs(got, gt, nq, k);
        print_message("  %s after deleting %zu of %zu: recall@10 %.4f\n", kind ? "hnsw" : "flat", nrem, n, rec);
        assert_true(rec >= (kind ? 0.93 : 0.999));
        /* searching right at a deleted vector never returns it */
        for (size_t i = 0; i < n; i++)
            if (removed[i]) {
                int64_t l[10];
                assert_int_equal(vt_index_search(x, all + i * (size_t)d, 10, NULL, l, NULL, NULL), VT_OK);
                for (int j = 0; j < 10; j++) assert_true(l[j] != (int64_t)i);
                /* a removed label may be added again (new vector, same label) */
                int64_t lab = (int64_t)i;
                assert_int_equal(vt_index_add(x, all + i * (size_t)d, 1, &lab), VT_OK);
                assert_int_equal(vt_index_search(x, all + i * (size_t)d, 1, NULL, l, NULL, NULL), VT_OK);
                assert_int_equal(l[0], lab);
                break;
            }
        vt_index_free(x);
    }
    free(removed);
    free(gt);
    free(got);
    free(all);
}

/* ---- persistence */
static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static size_t pad8(size_t v) { return (v + 7) & ~(size_t)7; }

/* The documented row layout: [links (HNSW): u32 count + 2M ids][code][aux: i8 scale, + squared
 * norm for l2], no padding; flat f16 / i8 indexes keep float32 vectors (dim rounded up to 16)
 * beside; and the file: a 128-byte header, then the sections padded to 8. */
static void check_layout(const vt_index *x, const char *path) {
    size_t links = x->o.kind == VT_INDEX_HNSW ? (size_t)(1 + 2 * x->o.M) * 4 : 0;
    size_t aux = x->o.store != VT_STORE_I8 ? 0 : x->o.metric == VT_METRIC_L2 ? 8 : 4;
    assert_int_equal(x->link_bytes, links);
    assert_int_equal(x->aux_bytes, aux);
    assert_int_equal(x->stride, links + x->code_bytes + aux);
    assert_int_equal(x->stride % 4, 0);
    size_t fpad = x->o.kind == VT_INDEX_FLAT && x->o.store != VT_STORE_F32 ? ((size_t)x->o.dim + 15) / 16 * 16 : 0;
    assert_int_equal(x->fpad, fpad);
    assert_int_equal(x->full == NULL, fpad == 0);
    for (uint32_t i = 0; i < x->n && i < 5; i++) { /* links u32, f32 4-byte, f16 2-byte aligned */
        assert_int_equal((uintptr_t)vt__links0(x, i) % 4, 0);
        assert_int_equal((uintptr_t)vt__code(x, i) % vt__elem_size(x->o.store), 0);
    }
    size_t words = 0;
    for (size_t i = 0; i < x->n; i++) words += (size_t)x->levels[i] * (size_t)(1 + x->o.M);
    size_t want = 128 + pad8(x->n * x->stride) + x->n * fpad * 4 + x->n * 8 + (x->n + 63) / 64 * 8 + pad8(x->n) +
                  pad8(words * 4);
    size_t len;
    free(slurp(path, &len));
    assert_int_equal(len, want);
}

/* Save and load (mapped and from memory) give identical answers, for every kind x storage x
 * metric, with deletions; the loaded index accepts adds and removes. The second pass lowers the
 * size from which a loaded HNSW index leaves the file mapping for huge-page memory, so that copy
 * is checked the same way. */
static void test_save_load(void **state) {
    (void)state;
    int d = 40, k = 10;
    size_t n = VT_ASAN ? 1500 : 3000, nq = 50;
    float *all = clustered(n + nq, d, 30, 0.8f, 41);
    const float *q = all + n * (size_t)d;
    int64_t *a = malloc(nq * (size_t)k * sizeof *a), *b = malloc(nq * (size_t)k * sizeof *b);
    float *sa = malloc(nq * (size_t)k * sizeof *sa), *sb = malloc(nq * (size_t)k * sizeof *sb);
    struct { vt_index_kind kind; vt_index_store st; vt_metric m; } cases[18];
    int ncases = 0;
    for (int kind = 0; kind < 2; kind++)
        for (int st = 0; st < 3; st++)
            for (int m = 0; m < 3; m++) {
                cases[ncases].kind = (vt_index_kind)kind;
                cases[ncases].st = (vt_index_store)st;
                cases[ncases++].m = (vt_metric)m;
            }
    size_t huge_min = vt__huge_min;
    for (int pass = 0; pass < 2; pass++)
    for (int c = 0; c < ncases; c++) {
        vt__huge_min = pass ? 0 : huge_min;
        vt_index *x = make(cases[c].kind, cases[c].st, cases[c].m, d);
        assert_int_equal(vt_index_add(x, all, n, NULL), VT_OK);
        for (int64_t l = 0; l < 100; l += 7) assert_int_equal(vt_index_remove(x, l), VT_OK);
        assert_int_equal(vt_index_search_batch(x, q, nq, k, NULL, a, sa), VT_OK);
        const char *path = tu_path("idx.vti");
        assert_int_equal(vt_index_save(x, path), VT_OK);
        check_layout(x, path);
        vt_index *y;
        assert_int_equal(vt_index_load(path, &y), VT_OK);
        vt_index_opts oy;
        vt_index_get_opts(y, &oy);
        assert_int_equal(oy.kind, cases[c].kind);
        assert_int_equal(oy.store, cases[c].st);
        assert_int_equal(oy.metric, cases[c].m);
        assert_int_equal(oy.dim, d);
        assert_int_equal(vt_index_size(y), vt_index_size(x));
        /* the float32 vectors of a flat f16 / i8 index and their error bounds come back as saved */
        assert_int_equal(y->fpad, x->fpad);
        assert_int_equal(y->full == NULL, x->full == NULL);
        if (x->full) {
            assert_memory_equal(y->full, x->full, x->n * x->fpad * sizeof(float));
            assert_true(y->full_amax == x->full_amax && y->full_nmax == x->full_nmax && x->full_amax > 0 && x->full_nmax > 0);
            for (size_t i = 0; i < n; i++) /* and they are the vectors added (cosine: normalised) */
                for (int j = 0; j < d; j++) {
                    float v = all[i * (size_t)d + j], w = vt__full(y, (uint32_t)i)[j];
                    if (cases[c].m != VT_METRIC_COSINE) assert_true(v == w);
                    else assert_float_equal(w, v, 1e-5); /* the data are unit vectors */
                }
        }
        /* flat indexes keep the mapping; HNSW ones from vt__huge_min bytes are copied when the
         * kernel has huge pages to give */
        int copied = pass && cases[c].kind == VT_INDEX_HNSW && vt__thp_usable();
        assert_int_equal(y->map == NULL, copied);
        assert_int_equal(vt_index_search_batch(y, q, nq, k, NULL, b, sb), VT_OK);
        assert_memory_equal(a, b, nq * (size_t)k * sizeof *a);
        assert_memory_equal(sa, sb, nq * (size_t)k * sizeof *sa);
        /* the loaded (mmap'd) index saves again byte for byte */
        const char *path2 = tu_path("idx2.vti");
        assert_int_equal(vt_index_save(y, path2), VT_OK);
        size_t l1n, l2n;
        uint8_t *i1 = slurp(path, &l1n), *i2 = slurp(path2, &l2n);
        assert_int_equal(l1n, l2n);
        assert_memory_equal(i1, i2, l1n);
        free(i1);
        free(i2);
        /* it accepts adds and removes */
        int64_t lab = 1000000;
        assert_int_equal(vt_index_add(y, q, 1, &lab), VT_OK);
        int64_t l1;
        assert_int_equal(vt_index_search(y, q, 1, NULL, &l1, NULL, NULL), VT_OK);
        assert_int_equal(l1, lab);
        assert_int_equal(vt_index_remove(y, lab), VT_OK);
        assert_int_equal(vt_index_remove(y, 1), VT_OK);
        assert_int_equal(vt_index_remove(x, 1), VT_OK);
        int64_t dup = 2;
        assert_int_equal(vt_index_add(y, q, 1, &dup), VT_EEXIST);
        /* from memory */
        size_t len;
        uint8_t *img = slurp(path, &len);
        vt_index *z;
        assert_int_equal(vt_index_load_mem(img, len, &z), VT_OK);
        assert_int_equal(vt_index_search_batch(z, q, nq, k, NULL, b, NULL), VT_OK);
        assert_memory_equal(a, b, nq * (size_t)k * sizeof *a);
        vt_index_free(z);
        free(img);
        vt_index_free(x);
        vt_index_free(y);
    }
    vt__huge_min = huge_min;
    free(a);
    free(b);
    free(sa);
    free(sb);
    free(all);
}

/* Rewrites the header checksum of a file image (format 3: bytes [0, 88) then [96, 128)) after an
 * edit, so the edit reads as a well-formed header rather than a damaged one. */
static void fix_header_crc(uint8_t *img) {
    uint32_t c = vt__crc32c(vt__crc32c(0, img, 88), img + 96, 32);
    memcpy(img + 92, &c, 4);
}

static void test_corrupt_files(void **state) {
    (void)state;
    int d = 24;
    size_t n = 500;
    float *all = clustered(n, d, 10, 0.8f, 51);
    vt_index_opts o;
    vt_index_opts_init(&o);
    o.kind = VT_INDEX_HNSW;
    o.store = VT_STORE_F16;
    o.dim = d;
    vt_index *x;
    assert_int_equal(vt_index_create(&o, &x), VT_OK);
    assert_int_equal(vt_index_add(x, all, n, NULL), VT_OK);
    const char *path = tu_path("c.vti");
    assert_int_equal(vt_index_save(x, path), VT_OK);
    vt_index_free(x);
    size_t len;
    uint8_t *img = slurp(path, &len);
    vt_index *y = NULL;
    /* truncated anywhere: refused */
    size_t cuts[] = {0, 1, 64, 127, 128, 129, len / 2, len - 8, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        int rc = vt_index_load_mem(img, cuts[i], &y);
        assert_true(rc == VT_ETRUNCATED || rc == VT_EEMPTY);
        assert_null(y);
        assert_int_equal(tu_write(tu_path("t.vti"), img, cuts[i]), 0);
        rc = vt_index_load(tu_path("t.vti"), &y);
        assert_true(rc == VT_ETRUNCATED || rc == VT_EEMPTY);
        assert_non_null(strstr(vt_errmsg(), "t.vti"));
    }
    /* trailing garbage */
    uint8_t *big = malloc(len + 16);
    memcpy(big, img, len);
    memset(big + len, 0, 16);
    assert_int_equal(vt_index_load_mem(big, len + 16, &y), VT_ECORRUPT);
    free(big);
    /* every single bit flip we try is caught (CRC-32C detects all 1-bit errors) */
    vt_rng r;
    vt_rng_seed(&r, 77);
    for (int t = 0; t < 300; t++) {
        size_t pos = t < 128 ? (size_t)t : (size_t)vt_rng_below(&r, len);
        int bit = (int)vt_rng_below(&r, 8);
        img[pos] ^= (uint8_t)(1u << bit);
        int rc = vt_index_load_mem(img, len, &y);
        if (rc == VT_OK) {
            print_error("flip of bit %d at byte %zu was not detected\n", bit, pos);
            fail();
        }
        assert_true(rc == VT_ECHECKSUM || rc == VT_ECORRUPT || rc == VT_EUNSUPPORTED || rc == VT_ETRUNCATED);
        img[pos] ^= (uint8_t)(1u << bit);
    }
    assert_int_equal(vt_index_load_mem(img, len, &y), VT_OK);
    vt_index_free(y);
    /* another format version is "unsupported", not "corrupt", and says what to do: a newer one
     * needs a newer vitrine, an older one (version 1: rows 8 bytes longer; version 2: no float32
     * vectors beside flat f16 / i8 rows) a rebuild */
    assert_int_equal(img[8], 3);
    img[8] = 4;
    assert_int_equal(vt_index_load_mem(img, len, &y), VT_EUNSUPPORTED);
    assert_non_null(strstr(vt_errmsg(), "newer"));
    for (uint8_t old = 1; old <= 2; old++) {
        img[8] = old;
        fix_header_crc(img);
        assert_int_equal(tu_write(tu_path("old.vti"), img, len), 0);
        assert_int_equal(vt_index_load(tu_path("old.vti"), &y), VT_EUNSUPPORTED);
        assert_null(y);
        assert_non_null(strstr(vt_errmsg(), "old.vti"));
        assert_non_null(strstr(vt_errmsg(), old == 1 ? "version 1" : "version 2"));
        assert_non_null(strstr(vt_errmsg(), "rebuild the index"));
    }
    img[8] = 3;
    fix_header_crc(img);
    assert_int_equal(vt_index_load_mem(img, len, &y), VT_OK);
    vt_index_free(y);
    /* the row size in the header must be the one the other fields imply (a checksum-valid header
     * that says otherwise is corrupt) */
    uint32_t rb;
    memcpy(&rb, img + 96, 4);
    rb += 8;
    memcpy(img + 96, &rb, 4);
    assert_int_equal(vt_index_load_mem(img, len, &y), VT_ECHECKSUM); /* the header checksum covers it */
    fix_header_crc(img);
    assert_int_equal(vt_index_load_mem(img, len, &y), VT_ECORRUPT);
    rb -= 8;
    memcpy(img + 96, &rb, 4);
    fix_header_crc(img);
    /* an HNSW f16 index keeps no float32 vectors: a header claiming some, or error bounds, is corrupt */
    for (int field = 0; field < 3; field++) {
        uint8_t keep[4];
        memcpy(keep, img + 100 + 4 * field, 4);
        uint32_t one = 0x3f800000; /* 1.0f, or 1065353216 bytes a row */
        memcpy(img + 100 + 4 * field, &one, 4);
        fix_header_crc(img);
        assert_int_equal(vt_index_load_mem(img, len, &y), VT_ECORRUPT);
        memcpy(img + 100 + 4 * field, keep, 4);
        fix_header_crc(img);
    }
    assert_int_equal(vt_index_load_mem(img, len, &y), VT_OK);
    vt_index_free(y);
    /* without checksums (as the fuzzer runs), structural checks still refuse bad links */
    vt_index *ok;
    assert_int_equal(vt__index_parse(img, len, 0, NULL, 0, &ok), VT_OK);
    size_t stride = ok->stride;
    vt_index_free(ok);
    uint32_t bad = 1000000;
    memcpy(img + 128 + 4, &bad, 4); /* first level-0 link of row 0 */
    assert_int_equal(vt__index_parse(img, len, 0, NULL, 0, &ok), VT_ECORRUPT);
    memcpy(img + 128 + stride, &bad, 4); /* link count of row 1 */
    assert_int_equal(vt__index_parse(img, len, 0, NULL, 0, &ok), VT_ECORRUPT);
    assert_int_equal(vt_index_load(tu_path("missing.vti"), &y), VT_ENOENT);
    free(img);
    /* a flat int8 index: its float32 section's row size and error bounds are checked, and a file
     * cut inside the float32 section is truncated */
    vt_index *fx = make(VT_INDEX_FLAT, VT_STORE_I8, VT_METRIC_COSINE, d);
    assert_int_equal(vt_index_add(fx, all, n, NULL), VT_OK);
    assert_int_equal(vt_index_save(fx, path), VT_OK);
    size_t fstride = fx->stride;
    vt_index_free(fx);
    img = slurp(path, &len);
    assert_int_equal(vt_index_load_mem(img, 128 + pad8(n * fstride) + 100, &y), VT_ETRUNCATED);
    uint32_t fb;
    memcpy(&fb, img + 100, 4);
    assert_int_equal(fb, 32 * 4); /* 24 dimensions padded to 32 floats */
    fb += 64;
    memcpy(img + 100, &fb, 4);
    fix_header_crc(img);
    assert_int_equal(vt_index_load_mem(img, len, &y), VT_ECORRUPT);
    fb -= 64;
    memcpy(img + 100, &fb, 4);
    float bad_bounds[] = {-1.0f, NAN, INFINITY};
    for (int i = 0; i < 3; i++) {
        uint8_t keep[4];
        memcpy(keep, img + 104, 4);
        memcpy(img + 104, &bad_bounds[i], 4);
        fix_header_crc(img);
        assert_int_equal(vt_index_load_mem(img, len, &y), VT_ECORRUPT);
        memcpy(img + 104, keep, 4);
    }
    fix_header_crc(img);
    assert_int_equal(vt_index_load_mem(img, len, &y), VT_OK);
    vt_index_free(y);
    free(img);
    free(all);
}

/* ---- bytes per item: an f32 cosine HNSW row is the vector and the level-0 links, nothing
 * more (no padding, no aux floats), so the file holds fewer bytes per item than hnswlib's. */
static void test_bytes_per_item(void **state) {
    (void)state;
    int d = 512, M = 16;
    size_t n = VT_ASAN ? 1000 : 4000;
    float *all = clustered(n, d, 40, 0.8f, 81);
    vt_index_opts o;
    vt_index_opts_init(&o);
    o.kind = VT_INDEX_HNSW;
    o.dim = d;
    o.M = M;
    o.ef_construction = 16; /* the layout does not depend on it; keeps the test quick */
    vt_index *x;
    assert_int_equal(vt_index_create(&o, &x), VT_OK);
    assert_int_equal(vt_index_add(x, all, n, NULL), VT_OK);
    const char *path = tu_path("bpi.vti");
    assert_int_equal(vt_index_save(x, path), VT_OK);
    check_layout(x, path);
    size_t len;
    free(slurp(path, &len));
    size_t words = 0;
    for (size_t i = 0; i < n; i++) words += (size_t)x->levels[i] * (size_t)(1 + M);
    size_t links0 = 4 * (1 + 2 * (size_t)M), upper = words * 4, bitmap = (n + 63) / 64 * 8;
    assert_int_equal(x->stride, 2048 + links0);
    /* the bound: vector + level-0 links + label + level byte + deleted bit + upper links, plus
     * the header and at most 7 bytes of padding for each of three sections */
    assert_true(len <= 128 + n * (2048 + links0 + 8 + 1) + bitmap + upper + 21);
    /* format version 1 (links padded to 8, 8 aux bytes) stored the same index in 12 more bytes a row */
    size_t v1 = 128 + n * (136 + 2048 + 8) + n * 8 + bitmap + pad8(n) + pad8(upper);
    assert_true(len + 12 * n == v1);
    /* hnswlib's saveIndex for the same graph: a 96-byte header, n rows of links + vector + label,
     * then per row a u32 size and its upper links, (1 + M) u32 per level */
    size_t hnswlib = 96 + n * (links0 + 2048 + 8) + n * 4 + upper;
    assert_true(len < hnswlib);
    size_t mem = vt_index_memory(x);
    size_t hash = x->hcap * 12, uptr = n * sizeof(*x->upper);
    assert_true(mem <= n * (x->stride + 8 + 2) + bitmap + hash + uptr + upper);
    print_message("  f32 cosine HNSW, d %d, M %d, %zu items: file %.1f bytes/item (version 1: %.1f, hnswlib: %.1f); "
                  "in memory %.1f = rows %zu + label 8 + level and lock 2 + deleted %.3f + label map %.1f + upper "
                  "pointer %zu + upper links %.1f\n",
                  d, M, n, (double)len / (double)n, (double)v1 / (double)n, (double)hnswlib / (double)n,
                  (double)mem / (double)n, x->stride, (double)bitmap / (double)n, (double)hash / (double)n,
                  sizeof(*x->upper), (double)upper / (double)n);
    vt_index_free(x);
    free(all);
}

/* ---- the engine's cached index: a file it cannot load (an older format version, a truncated
 * file) is rebuilt and saved again, never an error */
static void test_engine_rebuilds_cache(void **state) {
    (void)state;
    char db[512], cache[600];
    snprintf(db, sizeof db, "%s", tu_path("eng.db"));
    snprintf(cache, sizeof cache, "%s.m.hnsw-f32.vti", db);
    int d = 16;
    size_t n = 300;
    float *v = clustered(n, d, 10, 0.8f, 91);
    int64_t *labels = malloc(n * sizeof *labels);
    vt_store *s;
    assert_int_equal(vt_store_open(db, 0, &s), VT_OK);
    assert_int_equal(vt_store_begin(s), VT_OK);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "item%zu", i);
        vt_item it = {.id = id};
        assert_int_equal(vt_store_put(s, &it, &labels[i]), VT_OK);
        assert_int_equal(vt_store_put_embedding(s, labels[i], "m", v + i * (size_t)d, d, 0), VT_OK);
    }
    assert_int_equal(vt_store_commit(s), VT_OK);
    vt_engine_opts eo;
    vt_engine_opts_init(&eo);
    eo.model_name = "m";
    eo.index_kind = VT_INDEX_HNSW;
    eo.index_store = VT_STORE_F32;
    eo.threads = 1;
    eo.index_cache = db;
    /* 0: built and saved; 1: loaded; 2: an older-version file; 3: a truncated file */
    for (int round = 0; round < 4; round++) {
        if (round >= 2) {
            size_t len;
            uint8_t *img = slurp(cache, &len);
            if (round == 2) {
                img[8] = 2; /* the previous format version */
                fix_header_crc(img);
            }
            assert_int_equal(tu_write(cache, img, round == 2 ? len : len / 2), 0);
            free(img);
            vt_index *bad = NULL;
            assert_true(vt_index_load(cache, &bad) < 0);
        }
        vt_engine *e;
        assert_int_equal(vt_engine_open(s, &eo, &e), VT_OK);
        assert_int_equal(vt_engine_size(e), n);
        vt_hit hits[5];
        int nh;
        assert_int_equal(vt_engine_similar_label(e, labels[0], 5, NULL, hits, &nh), VT_OK);
        assert_int_equal(nh, 5);
        assert_true(hits[0].label != labels[0] && hits[0].score > 0.3f);
        vt_engine_free(e);
        /* the cache is a current, loadable file again */
        vt_index *x = NULL;
        assert_int_equal(vt_index_load(cache, &x), VT_OK);
        assert_int_equal(vt_index_size(x), n);
        vt_index_free(x);
    }
    vt_store_close(s);
    free(labels);
    free(v);
}

/* ---- the engine's cached index follows every change of the embeddings, even one that no
 * end-of-ingest marker announced (an ingest killed while it re-embedded photos) */
static void test_engine_cache_follows_writes(void **state) {
    (void)state;
    char db[512];
    snprintf(db, sizeof db, "%s", tu_path("stale.db"));
    int d = 16;
    size_t n = 200;
    float *v = clustered(n, d, 10, 0.8f, 93);
    int64_t *labels = malloc(n * sizeof *labels);
    vt_store *s;
    assert_int_equal(vt_store_open(db, 0, &s), VT_OK);
    assert_int_equal(vt_store_begin(s), VT_OK);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "item%zu", i);
        vt_item it = {.id = id};
        assert_int_equal(vt_store_put(s, &it, &labels[i]), VT_OK);
        assert_int_equal(vt_store_put_embedding(s, labels[i], "m", v + i * (size_t)d, d, 0), VT_OK);
    }
    assert_int_equal(vt_store_commit(s), VT_OK);
    vt_engine_opts eo;
    vt_engine_opts_init(&eo);
    eo.model_name = "m";
    eo.index_kind = VT_INDEX_FLAT;
    eo.index_store = VT_STORE_F32;
    eo.threads = 1;
    eo.index_cache = db;
    vt_engine *e;
    assert_int_equal(vt_engine_open(s, &eo, &e), VT_OK); /* builds and saves the cache */
    vt_engine_free(e);
    /* item 1 now looks exactly like item 0 (a re-embedded photo); nothing else is touched */
    assert_int_equal(vt_store_put_embedding(s, labels[1], "m", v, d, 0), VT_OK);
    assert_int_equal(vt_engine_open(s, &eo, &e), VT_OK);
    vt_hit hits[3];
    int nh;
    assert_int_equal(vt_engine_similar_label(e, labels[0], 3, NULL, hits, &nh), VT_OK);
    assert_true(nh >= 1);
    assert_int_equal(hits[0].label, labels[1]);
    assert_true(hits[0].score > 0.9999f);
    vt_engine_free(e);
    /* and a deleted item leaves the cached index too */
    assert_int_equal(vt_store_delete(s, "item1"), VT_OK);
    assert_int_equal(vt_engine_open(s, &eo, &e), VT_OK);
    assert_int_equal(vt_engine_size(e), n - 1);
    assert_int_equal(vt_engine_similar_label(e, labels[0], 3, NULL, hits, &nh), VT_OK);
    for (int i = 0; i < nh; i++) assert_true(hits[i].label != labels[1]);
    vt_engine_free(e);
    vt_store_close(s);
    free(labels);
    free(v);
}

/* ---- one thread + one seed = the same graph, byte for byte */
static void test_deterministic(void **state) {
    (void)state;
    int d = 32;
    size_t n = 3000;
    float *all = clustered(n, d, 30, 0.8f, 61);
    size_t len[2];
    uint8_t *img[2];
    for (int t = 0; t < 2; t++) {
        vt_index_opts o;
        vt_index_opts_init(&o);
        o.kind = VT_INDEX_HNSW;
        o.dim = d;
        o.seed = 1234;
        vt_index *x;
        assert_int_equal(vt_index_create(&o, &x), VT_OK);
        /* added in two batches the second time: same result */
        if (t == 0) assert_int_equal(vt_index_add(x, all, n, NULL), VT_OK);
        else {
            assert_int_equal(vt_index_add(x, all, 1000, NULL), VT_OK);
            assert_int_equal(vt_index_add(x, all + 1000 * (size_t)d, n - 1000, NULL), VT_OK);
        }
        const char *p = tu_path(t ? "d1.vti" : "d0.vti");
        assert_int_equal(vt_index_save(x, p), VT_OK);
        vt_index_free(x);
        img[t] = slurp(p, &len[t]);
    }
    assert_int_equal(len[0], len[1]);
    assert_memory_equal(img[0], img[1], len[0]);
    free(img[0]);
    free(img[1]);
    free(all);
}

/* ---- argument checks, all-or-nothing adds */
static void test_api_errors(void **state) {
    (void)state;
    vt_index_opts o;
    vt_index_opts_init(&o);
    vt_index *x = NULL;
    assert_int_equal(vt_index_create(&o, &x), VT_EINVAL); /* dim 0 */
    o.dim = 8;
    o.kind = VT_INDEX_HNSW;
    o.M = 1;
    assert_int_equal(vt_index_create(&o, &x), VT_EINVAL);
    o.M = 16;
    assert_int_equal(vt_index_create(&o, &x), VT_OK);
    float v[3 * 8] = {1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0};
    int64_t l[3] = {5, 6, 5};
    assert_int_equal(vt_index_add(x, v, 3, l), VT_EEXIST);
    assert_int_equal(vt_index_size(x), 0);
    l[2] = -1;
    assert_int_equal(vt_index_add(x, v, 3, l), VT_EINVAL);
    l[2] = 7;
    assert_int_equal(vt_index_add(x, v, 3, l), VT_OK);
    assert_int_equal(vt_index_size(x), 3);
    int64_t out[5];
    float sc[5];
    int found;
    assert_int_equal(vt_index_search(x, v, 0, NULL, out, sc, &found), VT_EINVAL);
    assert_int_equal(vt_index_search(x, v, 5, NULL, out, sc, &found), VT_OK);
    assert_int_equal(found, 3);
    assert_int_equal(out[0], 5);
    assert_float_equal(sc[0], 1.0, 1e-5);
    assert_int_equal(out[3], -1);
    assert_int_equal(out[4], -1);
    vt_index_free(x);
    vt_index_free(NULL);
    assert_int_equal(vt_index_force_isa("sse9"), VT_EINVAL);
    /* an empty index answers nothing */
    o.kind = VT_INDEX_FLAT;
    assert_int_equal(vt_index_create(&o, &x), VT_OK);
    assert_int_equal(vt_index_search(x, v, 2, NULL, out, NULL, &found), VT_OK);
    assert_int_equal(found, 0);
    assert_int_equal(out[0], -1);
    vt_index_free(x);
}

/* ---- concurrent searches on a read-only index give the single-thread answers */
typedef struct { const vt_index *x; const float *q; size_t nq; int d; int64_t *out; } conc_arg;
static void *conc_main(void *p) {
    conc_arg *a = p;
    for (size_t i = 0; i < a->nq; i++) vt_index_search(a->x, a->q + i * (size_t)a->d, 10, NULL, a->out + i * 10, NULL, NULL);
    return NULL;
}

/* Searches x for qi with o on one thread and on `threads` threads, asserts the same count, ids and
 * scores, and returns the count with the ids in l (k <= 10). */
static int search_split_same(const vt_index *x, const float *qi, int k, vt_search_opts o, int threads, int64_t *l) {
    int64_t l1[10];
    float s1[10], s2[10];
    int n1 = -1, n2 = -2;
    o.threads = 1;
    assert_int_equal(vt_index_search(x, qi, k, &o, l1, s1, &n1), VT_OK);
    o.threads = threads;
    assert_int_equal(vt_index_search(x, qi, k, &o, l, s2, &n2), VT_OK);
    assert_int_equal(n2, n1);
    for (int j = 0; j < n1; j++) {
        assert_int_equal(l[j], l1[j]);
        assert_true(s2[j] == s1[j]);
    }
    return n1;
}

/* One query's exact scan split across threads (vt_search_opts.threads) returns what the one-thread
 * scan returns, ties included, for every storage and metric, with a filter and with deleted rows;
 * an index of only two row blocks with 64 threads and a small one (below the split threshold)
 * work too. */
static void test_split_scan(void **state) {
    (void)state;
    int d = 128, k = 10;
    size_t n = 40000, nq = VT_ASAN ? 8 : 30; /* >= 5 MB of rows in every storage: the scans split */
    float *all = random_vecs(n + nq, d, 77);
    /* 16 copies of row 6 spread over the index, and query 0 is that row: its ten nearest are
     * ties, which both scans must resolve the same way (the lowest rows) */
    for (size_t t = 1; t < 16; t++) memcpy(all + (6 + t * 2500) * (size_t)d, all + 6 * (size_t)d, sizeof(float) * (size_t)d);
    memcpy(all + n * (size_t)d, all + 6 * (size_t)d, sizeof(float) * (size_t)d);
    const float *q = all + n * (size_t)d;
    vt_bitset *f;
    assert_int_equal(vt_bitset_create(n, &f), VT_OK);
    for (size_t i = 0; i < n; i += 3) vt_bitset_set(f, i);
    for (int st = 0; st < 3; st++)
        for (int m = 0; m < 3; m++) {
            vt_index *x = make(VT_INDEX_FLAT, (vt_index_store)st, (vt_metric)m, d);
            assert_int_equal(vt_index_add(x, all, n, NULL), VT_OK);
            for (size_t i = 1; i < n; i += 7) assert_int_equal(vt_index_remove(x, (int64_t)i), VT_OK);
            for (int fi = 0; fi < 2; fi++)
                for (int t = 2; t <= 5; t += 3) {
                    vt_search_opts o = {.filter = fi ? f : NULL};
                    for (size_t i = 0; i < nq; i++) {
                        int64_t l2[10];
                        assert_int_equal(search_split_same(x, q + i * (size_t)d, k, o, t, l2), k);
                        for (int j = 0; j < k; j++) {
                            assert_true(l2[j] % 7 != 1);             /* never a deleted row */
                            if (fi) assert_true(l2[j] % 3 == 0);      /* only admitted rows */
                        }
                    }
                }
            vt_index_free(x);
        }
    /* the ties of query 0: the ten lowest live copies of row 6 (rows 1 + 7j are deleted) */
    {
        vt_index *x = make(VT_INDEX_FLAT, VT_STORE_F32, VT_METRIC_COSINE, d);
        assert_int_equal(vt_index_add(x, all, n, NULL), VT_OK);
        for (size_t i = 1; i < n; i += 7) assert_int_equal(vt_index_remove(x, (int64_t)i), VT_OK);
        vt_search_opts many = {.threads = 3};
        int64_t l[10];
        assert_int_equal(vt_index_search(x, q, k, &many, l, NULL, NULL), VT_OK);
        int j = 0;
        for (size_t t = 0; t < 16 && j < k; t++) {
            size_t row = 6 + t * 2500;
            if (row % 7 == 1) continue;
            assert_int_equal(l[j], (int64_t)row);
            j++;
        }
        vt_index_free(x);
    }
    /* two blocks of rows (over 4 MB: 300 rows of 8192 f32) and 64 threads: two parts */
    {
        int dd = 8192;
        float *big = random_vecs(301, dd, 78);
        vt_index *x = make(VT_INDEX_FLAT, VT_STORE_F32, VT_METRIC_L2, dd);
        assert_int_equal(vt_index_add(x, big, 300, NULL), VT_OK);
        int64_t l2[10];
        assert_int_equal(search_split_same(x, big + 300 * (size_t)dd, k, (vt_search_opts){0}, 64, l2), k);
        vt_index_free(x);
        free(big);
    }
    /* a small index stays on one thread and answers */
    vt_index *x = make(VT_INDEX_FLAT, VT_STORE_F32, VT_METRIC_COSINE, d);
    assert_int_equal(vt_index_add(x, all, 300, NULL), VT_OK);
    vt_search_opts many = {.threads = 64};
    int64_t l[10];
    int found = 0;
    assert_int_equal(vt_index_search(x, q, k, &many, l, NULL, &found), VT_OK);
    assert_int_equal(found, k);
    vt_index_free(x);
    vt_bitset_free(f);
    free(all);
}

static void test_concurrent_search(void **state) {
    (void)state;
    int d = 32;
    size_t n = 4000, nq = 100;
    float *all = clustered(n + nq, d, 40, 0.8f, 71);
    vt_index_opts o;
    vt_index_opts_init(&o);
    o.kind = VT_INDEX_HNSW;
    o.dim = d;
    o.threads = 2;
    vt_index *x;
    assert_int_equal(vt_index_create(&o, &x), VT_OK);
    assert_int_equal(vt_index_add(x, all, n, NULL), VT_OK);
    int64_t *ref = malloc(nq * 10 * sizeof *ref), *outs[4];
    conc_arg ref_arg = {x, all + n * (size_t)d, nq, d, ref};
    conc_main(&ref_arg);
    pthread_t th[4];
    conc_arg args[4];
    for (int t = 0; t < 4; t++) {
        outs[t] = malloc(nq * 10 * sizeof *outs[t]);
        args[t] = (conc_arg){x, all + n * (size_t)d, nq, d, outs[t]};
        pthread_create(&th[t], NULL, conc_main, &args[t]);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        assert_memory_equal(outs[t], ref, nq * 10 * sizeof *ref);
        free(outs[t]);
    }
    free(ref);
    vt_index_free(x);
    free(all);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels_agree),
        cmocka_unit_test(test_exact_matches_reference),
        cmocka_unit_test(test_i8_scan_exact),
        cmocka_unit_test(test_api_errors),
        cmocka_unit_test(test_rerank_recall),
        cmocka_unit_test(test_hnsw_recall),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_corrupt_files),
        cmocka_unit_test(test_bytes_per_item),
        cmocka_unit_test(test_engine_rebuilds_cache),
        cmocka_unit_test(test_engine_cache_follows_writes),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_split_scan),
        cmocka_unit_test(test_concurrent_search),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
