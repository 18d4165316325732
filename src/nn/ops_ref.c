/* ops_ref.c: plain C kernels for the small operators (broadcast arithmetic, transpose, gather,
 * softmax, reduce-mean, slice) used for constant folding and for shapes oneDNN does not cover. */
#include "nn/nn_internal.h"
#include <math.h>
#include <string.h>

int vt__nn_broadcast(int ra, const int64_t *a, int rb, const int64_t *b, int *rr, int64_t *r) {
    int ro = ra > rb ? ra : rb;
    if (ro > NN_MAXR) return VT_EINVAL;
    for (int i = 0; i < ro; i++) {
        int ia = i - (ro - ra), ib = i - (ro - rb);
        int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
        if (da != db && da != 1 && db != 1) return VT_EINVAL;
        r[i] = da == 1 ? db : da;
    }
    *rr = ro;
    return 0;
}

/* Strides (in elements) of a plain tensor of rank ra seen at output rank ro with broadcasting:
 * 0 along broadcast dimensions. */
static void bstrides(int ra, const int64_t *da, int ro, const int64_t *dout, size_t *st) {
    size_t s = 1;
    for (int i = ro - 1; i >= 0; i--) {
        int ia = i - (ro - ra);
        int64_t d = ia >= 0 ? da[ia] : 1;
        st[i] = d == 1 && dout[i] != 1 ? 0 : s;
        s *= (size_t)d;
    }
}

void vt__nn_binary_ref(int dtype, char op, const void *a, int ra, const int64_t *da, const void *b, int rb,
                       const int64_t *db, void *out, int ro, const int64_t *dout) {
    size_t sa[NN_MAXR], sb[NN_MAXR], idx[NN_MAXR] = {0};
    bstrides(ra, da, ro, dout, sa);
    bstrides(rb, db, ro, dout, sb);
    size_t n = vt__nn_numel(ro, dout), oa = 0, ob = 0;
    for (size_t i = 0; i < n; i++) {
        if (dtype == NN_FLOAT) {
            float x = ((const float *)a)[oa], y = ((const float *)b)[ob], r;
            switch (op) {
            case '+': r = x + y; break;
            case '-': r = x - y; break;
            case '*': r = x * y; break;
            default: r = x / y; break;
            }
            ((float *)out)[i] = r;
        } else {
            int64_t x = ((const int64_t *)a)[oa], y = ((const int64_t *)b)[ob], r;
            switch (op) {
            case '+': r = (int64_t)((uint64_t)x + (uint64_t)y); break;
            case '-': r = (int64_t)((uint64_t)x - (uint64_t)y); break;
            case '*': r = (int64_t)((uint64_t)x * (uint64_t)y); break;
            default: r = y == 0 || (x == INT64_MIN && y == -1) ? 0 : x / y; break;
            }
            ((int64_t *)out)[i] = r;
        }
        /* advance the multi-index */
        for (int d = ro - 1; d >= 0; d--) {
            idx[d]++;
            oa += sa[d];
            ob += sb[d];
            if (idx[d] < (size_t)dout[d]) break;
            oa -= sa[d] * idx[d];
            ob -= sb[d] * idx[d];
            idx[d] = 0;
        }
    }
}

void vt__nn_transpose_ref(size_t esize, const void *in, int rank, const int64_t *dims, const int64_t *perm,
                          void *out) {
    size_t ist[NN_MAXR], s = 1;
    for (int i = rank - 1; i >= 0; i--) ist[i] = s, s *= (size_t)dims[i];
    size_t n = vt__nn_numel(rank, dims);
    size_t idx[NN_MAXR] = {0}, st[NN_MAXR], od[NN_MAXR];
    for (int i = 0; i < rank; i++) od[i] = (size_t)dims[perm[i]], st[i] = ist[perm[i]];
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy((uint8_t *)out + i * esize, (const uint8_t *)in + off * esize, esize);
        for (int d = rank - 1; d >= 0; d--) {
            idx[d]++;
            off += st[d];
            if (idx[d] < od[d]) break;
            off -= st[d] * idx[d];
            idx[d] = 0;
        }
    }
}

void vt__nn_gather_ref(size_t esize, const void *data, int rank, const int64_t *dims, int axis,
                       const int64_t *idx, size_t nidx, void *out) {
    size_t outer = vt__nn_numel(axis, dims), inner = vt__nn_numel(rank - axis - 1, dims + axis + 1);
    size_t ax = (size_t)dims[axis], chunk = inner * esize;
    uint8_t *o = out;
    for (size_t i = 0; i < outer; i++)
        for (size_t j = 0; j < nidx; j++) {
            memcpy(o, (const uint8_t *)data + (i * ax + (size_t)idx[j]) * chunk, chunk);
            o += chunk;
        }
}

void vt__nn_softmax_ref(const float *in, float *out, size_t outer, size_t n, size_t inner) {
    for (size_t o = 0; o < outer; o++)
        for (size_t k = 0; k < inner; k++) {
            const float *x = in + o * n * inner + k;
            float *y = out + o * n * inner + k;
            float mx = -INFINITY;
            for (size_t i = 0; i < n; i++) mx = fmaxf(mx, x[i * inner]);
            double sum = 0;
            for (size_t i = 0; i < n; i++) {
                float e = expf(x[i * inner] - mx);
                y[i * inner] = e;
                sum += e;
            }
            float inv = (float)(1.0 / sum);
            for (size_t i = 0; i < n; i++) y[i * inner] *= inv;
        }
}

void vt__nn_reduce_mean_ref(const float *in, int rank, const int64_t *dims, const int *reduce, float *out) {
    size_t on = 1, cnt = 1;
    size_t ost[NN_MAXR], s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        ost[i] = reduce[i] ? 0 : s;
        if (!reduce[i]) s *= (size_t)dims[i];
        else cnt *= (size_t)dims[i];
    }
    on = s;
    double *acc = calloc(on ? on : 1, sizeof *acc);
    if (!acc) return; /* plan memory is sized; this tiny buffer failing leaves zeros */
    size_t n = vt__nn_numel(rank, dims), idx[NN_MAXR] = {0}, off = 0;
    for (size_t i = 0; i < n; i++) {
        acc[off] += in[i];
        for (int d = rank - 1; d >= 0; d--) {
            idx[d]++;
            off += ost[d];
            if (idx[d] < (size_t)dims[d]) break;
            off -= ost[d] * idx[d];
            idx[d] = 0;
        }
    }
    for (size_t i = 0; i < on; i++) out[i] = cnt ? (float)(acc[i] / (double)cnt) : NAN;
    free(acc);
}

void vt__nn_slice_ref(size_t esize, const void *in, int rank, const int64_t *dims, const int64_t *start,
                      const int64_t *step, const int64_t *odims, void *out) {
    size_t ist[NN_MAXR], s = 1;
    for (int i = rank - 1; i >= 0; i--) ist[i] = s, s *= (size_t)dims[i];
    size_t n = vt__nn_numel(rank, odims), idx[NN_MAXR] = {0};
    for (size_t i = 0; i < n; i++) {
        int64_t off = 0;
        for (int d = 0; d < rank; d++) off += (start[d] + (int64_t)idx[d] * step[d]) * (int64_t)ist[d];
        memcpy((uint8_t *)out + i * esize, (const uint8_t *)in + (size_t)off * esize, esize);
        for (int d = rank - 1; d >= 0; d--) {
            if (++idx[d] < (size_t)odims[d]) break;
            idx[d] = 0;
        }
    }
}

/* LpNormalization along the middle axis of an [outer, n, inner] view: x / ||x||_p with p 1 or 2;
 * a vector whose norm is 0 stays 0. */
void vt__nn_lpnorm_ref(const float *in, float *out, size_t outer, size_t n, size_t inner, int p) {
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            const float *x = in + o * n * inner + i;
            float *y = out + o * n * inner + i;
            double acc = 0;
            for (size_t j = 0; j < n; j++) acc += p == 1 ? fabs(x[j * inner]) : (double)x[j * inner] * x[j * inner];
            double norm = p == 1 ? acc : sqrt(acc);
            float inv = norm > 0 ? (float)(1.0 / norm) : 0.0f;
            for (size_t j = 0; j < n; j++) y[j * inner] = x[j * inner] * inv;
        }
}
