/* train_opt.c: softmax cross-entropy with label smoothing, SGD with momentum, AdamW, and the
 * warm-up + cosine / one-cycle learning-rate schedules. */
#include "nn/train_internal.h"
#include <math.h>
#include <string.h>

/* Contract: see train_internal.h. With smoothing s the target is (1-s) on the label plus s/k on
 * every class; the gradient of one row is (softmax - target) / counted * weight. */
double vt__softmax_xent(const float *logits, const int *labels, int n, int k, float smoothing, float weight,
                        float *dlogits, int *correct, int *counted) {
    int cnt = 0, ok = 0;
    for (int i = 0; i < n; i++)
        if (labels[i] >= 0 && labels[i] < k) cnt++;
    double total = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * k;
        float *d = dlogits ? dlogits + (size_t)i * k : NULL;
        int y = labels[i];
        if (y < 0 || y >= k) {
            if (d) memset(d, 0, (size_t)k * sizeof(float));
            continue;
        }
        float mx = z[0];
        int am = 0;
        for (int j = 1; j < k; j++)
            if (z[j] > mx) mx = z[j], am = j;
        if (am == y) ok++;
        double se = 0;
        for (int j = 0; j < k; j++) se += exp((double)z[j] - mx);
        double lse = log(se) + mx;
        double on = 1.0 - smoothing + smoothing / k, off = smoothing / k;
        double loss = 0;
        for (int j = 0; j < k; j++) {
            double t = j == y ? on : off;
            double lp = (double)z[j] - lse;
            loss -= t * lp;
            if (d) d[j] = (float)((exp(lp) - t) / cnt * weight);
        }
        total += loss;
    }
    if (correct) *correct = ok;
    if (counted) *counted = cnt;
    return cnt ? total / cnt : 0.0;
}

float vt__sched_lr(const topt *o, long step) {
    long T = o->total_steps > 0 ? o->total_steps : 1;
    if (o->sched == TSCHED_ONECYCLE) {
        long up = (long)(0.3 * T);
        if (up < 1) up = 1;
        double lo = o->lr / 25.0, end = lo / 1e4;
        if (step < up) return (float)(lo + (o->lr - lo) * 0.5 * (1 - cos(M_PI * (double)step / up)));
        double t = (double)(step - up) / (double)(T - up > 0 ? T - up : 1);
        if (t > 1) t = 1;
        return (float)(end + (o->lr - end) * 0.5 * (1 + cos(M_PI * t)));
    }
    if (step < o->warmup_steps) return o->lr * (float)(step + 1) / (float)o->warmup_steps;
    if (o->sched == TSCHED_CONST) return o->lr;
    long span = T - o->warmup_steps;
    if (span < 1) span = 1;
    double t = (double)(step - o->warmup_steps) / (double)span;
    if (t > 1) t = 1;
    return (float)(o->lr * 0.5 * (1 + cos(M_PI * t)));
}

/* Contract: see train_internal.h. SGD: v = mu*v + (g + wd*w); w -= lr*v. AdamW: Adam moments on
 * g, w -= lr*(mhat/(sqrt(vhat)+eps) + wd*w) (decoupled decay). */
void vt__opt_step(tnet *net, const topt *o, float lr, long step) {
    double bc1 = 1.0 - pow(o->beta1, (double)step), bc2 = 1.0 - pow(o->beta2, (double)step);
    for (int i = 0; i < net->n; i++) {
        tn_node *nd = &net->nodes[i];
        for (int p = 0; p < nd->nprm; p++) {
            tn_param *pr = &nd->prm[p];
            float wd = pr->decay ? o->wd : 0.0f;
            size_t n = pr->n;
            float *w = pr->w, *g = pr->g, *m = pr->m, *v = pr->v;
            if (o->kind == TOPT_SGD) {
                float mu = o->momentum;
                for (size_t j = 0; j < n; j++) {
                    float gj = g[j] + wd * w[j];
                    m[j] = mu * m[j] + gj;
                    w[j] -= lr * m[j];
                }
            } else {
                float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
                float s1 = (float)(1.0 / bc1), s2 = (float)(1.0 / bc2);
                for (size_t j = 0; j < n; j++) {
                    m[j] = b1 * m[j] + (1 - b1) * g[j];
                    v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j];
                    float mh = m[j] * s1, vh = v[j] * s2;
                    w[j] -= lr * (mh / (sqrtf(vh) + eps) + wd * w[j]);
                }
            }
        }
    }
}
