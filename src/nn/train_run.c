/* train_run.c: vt_train(): the residual network family, the training loop with an augmentation
 * thread, validation (accuracy per head, retrieval precision@10), checkpoints / resume, export. */
#include "nn/train_internal.h"
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <string.h>
#include <xmmintrin.h>

void vt_train_opts_init(vt_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->size = 64;
    o->epochs = 10;
    o->batch = 64;
    o->val = 0.1;
    o->seed = 1;
    o->width = 32;
    o->depth = 1;
    o->embed_dim = 128;
    o->optimizer = 1;
    o->lr = 0;  /* 0: the optimiser's default */
    o->wd = -1; /* <0: the optimiser's default */
    o->momentum = 0.9;
    o->warmup_epochs = 1;
    o->label_smoothing = 0.1;
    o->dropout = 0.1;
    o->min_count = 10;
    o->fit = VT_FIT_LETTERBOX;
    o->augment = 1;
    o->progress = 1;
}

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t mix3(uint64_t a, uint64_t b, uint64_t c) { return mix64(mix64(mix64(a) ^ b) ^ c); }

/* ---------------------------------------------------------------- the network family */

typedef struct {
    tnet *net;
    int emb, drop;
    int head[TD_MAX_HEADS];
} tmodel;

/* A basic residual block: conv3x3-BN-ReLU-conv3x3-BN (+ 1x1 conv-BN shortcut when the shape
 * changes), Add, ReLU. The second BN starts at zero scale so each block starts as identity. */
static int basic_block(tnet *net, int x, int oc, int stride) {
    int a = vt__tnet_conv(net, x, oc, 3, stride, 1, 1, 0);
    if (a >= 0) a = vt__tnet_bn_relu(net, a);
    if (a >= 0) a = vt__tnet_conv(net, a, oc, 3, 1, 1, 1, 0);
    if (a >= 0) a = vt__tnet_bn(net, a);
    if (a < 0) return a;
    net->nodes[a].zero_gamma = 1;
    int s = x;
    if (stride != 1 || net->nodes[x].c != oc) {
        s = vt__tnet_conv(net, x, oc, 1, stride, 0, 1, 0);
        if (s >= 0) s = vt__tnet_bn(net, s);
        if (s < 0) return s;
    }
    int y = vt__tnet_add(net, a, s);
    return y < 0 ? y : vt__tnet_relu(net, y);
}

/* The compact residual family: stem conv3x3/2 (+ max-pool 3/2 from 128 px up), four stages of
 * `depth` basic blocks with width, 2x, 4x, 8x channels (stride 2 from the second stage),
 * global average pool, a linear embedding, dropout, one linear head per label column. */
static int build_model(tmodel *m, const vt_train_opts *o, const tdata *d) {
    memset(m, 0, sizeof *m);
    int rc = vt__tnet_create(3, o->size, o->size, &m->net);
    if (rc) return rc;
    tnet *net = m->net;
    int x = vt__tnet_conv(net, 0, o->width, 3, 2, 1, 1, 0);
    if (x >= 0) x = vt__tnet_bn_relu(net, x);
    if (x >= 0 && o->size >= 128) x = vt__tnet_pool(net, x, 1, 3, 2, 1);
    for (int s = 0; s < 4 && x >= 0; s++)
        for (int b = 0; b < o->depth && x >= 0; b++) x = basic_block(net, x, o->width << s, s > 0 && b == 0 ? 2 : 1);
    if (x >= 0) x = vt__tnet_gap(net, x);
    if (x >= 0) x = m->emb = vt__tnet_fc(net, x, o->embed_dim);
    if (x >= 0) x = m->drop = vt__tnet_dropout(net, x, (float)o->dropout);
    for (int h = 0; h < d->nheads && x >= 0; h++) {
        int y = vt__tnet_fc(net, m->drop, d->nclasses[h]);
        if (y < 0) x = y;
        m->head[h] = y;
    }
    if (x < 0) {
        vt__tnet_free(net);
        m->net = NULL;
        return x;
    }
    return 0;
}

/* ---------------------------------------------------------------- batches */

/* One batch: NCHW floats and labels. */
typedef struct {
    float *x;
    int *y;
} tbatch;

typedef struct {
    const tdata *d;
    const int *order; /* items in this epoch's order */
    int batch, steps, size, augment, nhwc;
    uint64_t seed;
    int epoch;
    vt_augment_opts ao;
    tbatch slot[2];
    int ready[2];
    int stop, err;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    vt_pool *pool;
} feeder;

typedef struct {
    feeder *f;
    int step;
    tbatch *b;
    const int *items; /* for evaluation batches */
} fill_ctx;

/* Writes item `item` as sample j of b: augmented (rng from seed, epoch and position) or plainly
 * resized; normalised with the ImageNet mean/std, NCHW. */
static int make_sample(const tdata *d, int item, int size, int augment, const vt_augment_opts *ao, uint64_t rseed,
                       int nhwc, float *x) {
    vt_image src = {d->cs, d->cs, 3, d->cache + (size_t)item * d->cs * d->cs * 3}, out = {0};
    const vt_image *use = &src;
    int rc = 0;
    if (augment) {
        vt_rng r;
        vt_rng_seed(&r, rseed);
        rc = vt_image_augment(&src, size, VT_FIT_STRETCH, ao, &r, &out);
        use = &out;
    } else if (d->cs != size) {
        rc = vt_image_resize(&src, size, size, &out);
        use = &out;
    }
    if (rc) return rc;
    const float *mean = vt_imagenet_mean, *sd = vt_imagenet_std;
    float sc[3], off[3];
    for (int c = 0; c < 3; c++) sc[c] = 1.0f / (255.0f * sd[c]), off[c] = -mean[c] / sd[c];
    size_t np = (size_t)size * size;
    if (nhwc)
        for (size_t p = 0; p < np; p++)
            for (int c = 0; c < 3; c++) x[p * 3 + c] = (float)use->data[p * 3 + c] * sc[c] + off[c];
    else
        for (int c = 0; c < 3; c++)
            for (size_t p = 0; p < np; p++) x[c * np + p] = (float)use->data[p * 3 + c] * sc[c] + off[c];
    vt_image_free(&out);
    return 0;
}

static void fill_one(void *p, size_t j, int worker) {
    (void)worker;
    fill_ctx *c = p;
    feeder *f = c->f;
    size_t pos = (size_t)c->step * f->batch + j;
    int item = f->order[pos];
    size_t per = (size_t)f->size * f->size * 3;
    int rc = make_sample(f->d, item, f->size, f->augment, &f->ao, mix3(f->seed, (uint64_t)f->epoch, pos), f->nhwc,
                         c->b->x + j * per);
    if (rc) __atomic_store_n(&f->err, rc, __ATOMIC_RELAXED);
    for (int h = 0; h < f->d->nheads; h++) c->b->y[j * f->d->nheads + h] = f->d->labels[(size_t)item * f->d->nheads + h];
}

/* The augmentation thread: fills the two slots in turn, one step ahead of the trainer. */
static void *feeder_main(void *p) {
    feeder *f = p;
    for (int s = 0; s < f->steps; s++) {
        int k = s & 1;
        pthread_mutex_lock(&f->mu);
        while (f->ready[k] && !f->stop) pthread_cond_wait(&f->cv, &f->mu);
        int stop = f->stop;
        pthread_mutex_unlock(&f->mu);
        if (stop) break;
        fill_ctx c = {f, s, &f->slot[k], NULL};
        vt_pool_parallel_for(f->pool, (size_t)f->batch, 1, fill_one, &c);
        pthread_mutex_lock(&f->mu);
        f->ready[k] = 1;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
    }
    return NULL;
}

static tbatch *feeder_take(feeder *f, int s) {
    int k = s & 1;
    pthread_mutex_lock(&f->mu);
    while (!f->ready[k]) pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
    return &f->slot[k];
}

static void feeder_release(feeder *f, int s) {
    pthread_mutex_lock(&f->mu);
    f->ready[s & 1] = 0;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* ---------------------------------------------------------------- evaluation */

typedef struct {
    double acc[TD_MAX_HEADS];
    double p10, p10_pair;
} teval;

static int find_head(const tdata *d, const char *name) {
    for (int h = 0; h < d->nheads; h++)
        if (!strcmp(d->head[h], name)) return h;
    return -1;
}

typedef struct {
    const tdata *d;
    const int *items;
    int n0, cnt, size, nhwc;
    float *x;
    int err;
} evfill;

static void ev_one(void *p, size_t j, int worker) {
    (void)worker;
    evfill *e = p;
    int idx = e->n0 + (int)j < e->cnt ? e->n0 + (int)j : e->n0; /* pad the last batch by repeating */
    size_t per = (size_t)e->size * e->size * 3;
    int rc = make_sample(e->d, e->items[idx], e->size, 0, NULL, 0, e->nhwc, e->x + j * per);
    if (rc) __atomic_store_n(&e->err, rc, __ATOMIC_RELAXED);
}

/* Contract: see train_internal.h. Weights are finite and >= 0; a name may appear once. */
int vt__train_parse_mix(const char *spec, int nheads, char *const *heads, tx_mix *mix) {
    memset(mix, 0, sizeof *mix);
    if (!spec || !*spec) return 0;
    mix->mixed = 1;
    int seen_emb = 0, seen[VT_TRAIN_MAX_HEADS] = {0};
    const char *p = spec;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char part[128];
        if (len == 0 || len >= sizeof part) return vt__err(VT_EINVAL, "train: bad --embed-mix part in '%s'", spec);
        memcpy(part, p, len);
        part[len] = 0;
        char *colon = strrchr(part, ':'), *end = NULL;
        if (!colon) return vt__err(VT_EINVAL, "train: --embed-mix part '%s' is not NAME:WEIGHT", part);
        *colon = 0;
        double w = strtod(colon + 1, &end);
        if (end == colon + 1 || *end || !(w >= 0 && w <= 1000))
            return vt__err(VT_EINVAL, "train: --embed-mix weight of '%s' must be a number in [0, 1000]", part);
        if (!strcmp(part, "embedding")) {
            if (seen_emb++) return vt__err(VT_EINVAL, "train: --embed-mix names 'embedding' twice");
            mix->w_emb = (float)w;
        } else {
            int h = 0;
            while (h < nheads && strcmp(heads[h], part)) h++;
            if (h == nheads) return vt__err(VT_EINVAL, "train: --embed-mix names '%s', which is not a label column", part);
            if (seen[h]++) return vt__err(VT_EINVAL, "train: --embed-mix names '%s' twice", part);
            mix->w_head[h] = (float)w;
        }
        p += len + (e ? 1 : 0);
    }
    int any = mix->w_emb != 0;
    for (int h = 0; h < nheads; h++) any |= mix->w_head[h] != 0;
    if (!any) return vt__err(VT_EINVAL, "train: --embed-mix gives every part weight 0");
    return 0;
}

/* Length of the vectors the mix forms (the learned embedding's size when not mixed). */
static int mix_dim(const tmodel *m, const tdata *d, const tx_mix *mix) {
    const tnet *net = m->net;
    if (!mix->mixed) return net->nodes[m->emb].c;
    int D = mix->w_emb != 0 ? net->nodes[m->emb].c : 0;
    for (int h = 0; h < d->nheads; h++)
        if (mix->w_head[h] != 0) D += net->nodes[m->head[h]].c;
    return D;
}

/* Writes row j of the last forward pass as the exported "embedding" would be (same formula as
 * the export: normalised parts, weighted, concatenated, normalised). */
static void mix_row(const tmodel *m, const tdata *d, const tx_mix *mix, int j, float *out) {
    const tnet *net = m->net;
    int E = net->nodes[m->emb].c, k = 0;
    if (!mix->mixed || mix->w_emb != 0) {
        const float *e0 = net->nodes[m->emb].y + (size_t)j * E;
        double s = 0;
        for (int i = 0; i < E; i++) s += (double)e0[i] * e0[i];
        float sc = (s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f) * (mix->mixed ? mix->w_emb : 1.0f);
        for (int i = 0; i < E; i++) out[k++] = e0[i] * sc;
    }
    if (!mix->mixed) return;
    for (int h = 0; h < d->nheads; h++) {
        if (mix->w_head[h] == 0) continue;
        const tn_node *hn = &net->nodes[m->head[h]];
        const float *z = hn->y + (size_t)j * hn->c;
        float mx = z[0];
        for (int c = 1; c < hn->c; c++) mx = z[c] > mx ? z[c] : mx;
        double s = 0;
        for (int c = 0; c < hn->c; c++) s += exp((double)(z[c] - mx));
        for (int c = 0; c < hn->c; c++) out[k++] = (float)(exp((double)(z[c] - mx)) / s) * mix->w_head[h];
    }
    double s = 0;
    for (int i = 0; i < k; i++) s += (double)out[i] * out[i];
    float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
    for (int i = 0; i < k; i++) out[i] *= inv;
}

/* Runs the network in evaluation mode (no augmentation, BN running statistics) over items:
 * counts correct predictions per head into hit/tot (may be NULL) and writes each item's vector
 * (mix_row) into vec (may be NULL). */
static int run_items(tmodel *m, const tdata *d, const tx_mix *mix, const int *items, int cnt, int size, vt_pool *pool,
                     float *vec, long *hit, long *tot) {
    tnet *net = m->net;
    int B = net->batch, H = d->nheads, D = mix_dim(m, d, mix);
    float *x = malloc((size_t)B * size * size * 3 * sizeof(float));
    if (!x) return vt__err(VT_ENOMEM, "out of memory");
    int rc = 0;
    for (int n0 = 0; n0 < cnt && !rc; n0 += B) {
        evfill e = {d, items, n0, cnt, size, net->plain, x, 0};
        vt_pool_parallel_for(pool, (size_t)B, 1, ev_one, &e);
        if ((rc = e.err)) break;
        if ((rc = vt__tnet_forward(net, x, 0))) break;
        int nb = cnt - n0 < B ? cnt - n0 : B;
        for (int h = 0; hit && h < H; h++) {
            const tn_node *hn = &net->nodes[m->head[h]];
            int k = hn->c;
            for (int j = 0; j < nb; j++) {
                int y = d->labels[(size_t)items[n0 + j] * H + h];
                if (y < 0) continue;
                const float *z = hn->y + (size_t)j * k;
                int am = 0;
                for (int c = 1; c < k; c++)
                    if (z[c] > z[am]) am = c;
                tot[h]++;
                hit[h] += am == y;
            }
        }
        for (int j = 0; vec && j < nb; j++) mix_row(m, d, mix, j, vec + (size_t)(n0 + j) * D);
    }
    free(x);
    return rc;
}

/* Accuracy per head of the query items and retrieval precision@10: each query item looks for its
 * 10 nearest (cosine of the mix_row vectors) among the catalog items (cat == NULL: the queries
 * themselves), itself excluded; a hit shares its articleType (the first label when there is no
 * such column), and for p10_pair also its baseColour. */
static int evaluate(tmodel *m, const tdata *d, const tx_mix *mix, const int *items, int cnt, const int *cat, int ncat,
                    int size, vt_pool *pool, int want_p10, teval *out) {
    int H = d->nheads, D = mix_dim(m, d, mix);
    for (int h = 0; h < TD_MAX_HEADS; h++) out->acc[h] = -1;
    out->p10 = out->p10_pair = -1;
    if (cnt <= 0) return 0;
    if (!cat) cat = items, ncat = cnt;
    float *emb = want_p10 ? malloc((size_t)cnt * D * sizeof(float)) : NULL;
    float *cemb = want_p10 && cat != items ? malloc((size_t)ncat * D * sizeof(float)) : emb;
    if (want_p10 && (!emb || !cemb)) {
        if (cemb != emb) free(cemb);
        free(emb);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    long hit[TD_MAX_HEADS] = {0}, tot[TD_MAX_HEADS] = {0};
    int rc = run_items(m, d, mix, items, cnt, size, pool, emb, hit, tot);
    if (!rc && cemb != emb) rc = run_items(m, d, mix, cat, ncat, size, pool, cemb, NULL, NULL);
    for (int h = 0; h < H && !rc; h++) out->acc[h] = tot[h] ? (double)hit[h] / tot[h] : -1;
    if (!rc && emb && ncat > 1) {
        int K = ncat - 1 < 10 ? ncat - 1 : 10;
        int ha = find_head(d, "articleType"), hc = find_head(d, "baseColour");
        if (ha < 0) ha = 0;
        float *sim = malloc((size_t)ncat * sizeof(float));
        int *top = malloc((size_t)K * sizeof(int));
        long h1 = 0, h2 = 0, q = 0;
        for (int i = 0; sim && top && i < cnt; i++) {
            int li = d->labels[(size_t)items[i] * H + ha];
            if (li < 0) continue;
            const float *ei = emb + (size_t)i * D;
            for (int j = 0; j < ncat; j++) {
                const float *ej = cemb + (size_t)j * D;
                float s = 0;
                for (int k = 0; k < D; k++) s += ei[k] * ej[k];
                sim[j] = cat[j] == items[i] ? -INFINITY : s;
            }
            int nt = 0; /* top K by insertion (K is small) */
            for (int j = 0; j < ncat; j++) {
                if (cat[j] == items[i]) continue;
                if (nt < K || sim[j] > sim[top[nt - 1]]) {
                    int p = nt < K ? nt++ : K - 1;
                    while (p > 0 && sim[top[p - 1]] < sim[j]) top[p] = top[p - 1], p--;
                    top[p] = j;
                }
            }
            q++;
            for (int t = 0; t < nt; t++) {
                int j = cat[top[t]];
                int same = d->labels[(size_t)j * H + ha] == li;
                h1 += same;
                if (hc >= 0 && same) {
                    int ci = d->labels[(size_t)items[i] * H + hc];
                    h2 += ci >= 0 && d->labels[(size_t)j * H + hc] == ci;
                }
            }
        }
        if (!sim || !top) rc = vt__err(VT_ENOMEM, "out of memory");
        else if (q) {
            out->p10 = (double)h1 / ((double)q * K);
            if (hc >= 0) out->p10_pair = (double)h2 / ((double)q * K);
        }
        free(sim), free(top);
    }
    if (cemb != emb) free(cemb);
    free(emb);
    return rc;
}

/* ---------------------------------------------------------------- checkpoints */

#define CKPT_MAGIC "VTCKPT01"

typedef struct {
    uint8_t *b;
    size_t n, cap;
    int oom;
} wbuf;

static void wput(wbuf *w, const void *p, size_t n) {
    if (w->oom) return;
    if (w->n + n > w->cap) {
        size_t c = w->cap ? w->cap : 1 << 20;
        while (c < w->n + n) c *= 2;
        uint8_t *nb = realloc(w->b, c);
        if (!nb) {
            w->oom = 1;
            return;
        }
        w->b = nb, w->cap = c;
    }
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

/* Visits every persistent float array of the net (weights, optimiser moments, running stats). */
typedef void (*arr_fn)(float *a, size_t n, void *u);
static void each_array(tnet *net, int with_state, arr_fn fn, void *u) {
    for (int i = 0; i < net->n; i++) {
        tn_node *nd = &net->nodes[i];
        for (int p = 0; p < nd->nprm; p++) {
            fn(nd->prm[p].w, nd->prm[p].n, u);
            if (with_state) fn(nd->prm[p].m, nd->prm[p].n, u), fn(nd->prm[p].v, nd->prm[p].n, u);
        }
        if (nd->kind == TN_BN) fn(nd->run_mean, (size_t)nd->c, u), fn(nd->run_var, (size_t)nd->c, u);
    }
}

static void arr_put(float *a, size_t n, void *u) { wput(u, a, n * sizeof(float)); }

typedef struct {
    uint64_t h;
} hstate;
static void arr_hash(float *a, size_t n, void *u) {
    hstate *s = u;
    s->h = vt_hash64(a, n * sizeof(float), s->h);
}

static uint64_t weights_hash(tnet *net) {
    hstate s = {0};
    each_array(net, 0, arr_hash, &s);
    return s.h;
}

static int save_ckpt(tnet *net, const char *path, uint64_t cfg, int32_t epoch, int64_t step) {
    wbuf w = {0};
    wput(&w, CKPT_MAGIC, 8);
    wput(&w, &cfg, 8);
    wput(&w, &epoch, 4);
    wput(&w, &step, 8);
    each_array(net, 1, arr_put, &w);
    uint64_t h = vt_hash64(w.b, w.n, 0);
    wput(&w, &h, 8);
    int rc = w.oom ? vt__err(VT_ENOMEM, "checkpoint: out of memory") : vt__write_file_atomic(path, w.b, w.n);
    free(w.b);
    return rc;
}

typedef struct {
    const uint8_t *p;
    size_t left;
    int short_;
} rbuf;
static void arr_get(float *a, size_t n, void *u) {
    rbuf *r = u;
    if (r->left < n * sizeof(float)) {
        r->short_ = 1;
        return;
    }
    memcpy(a, r->p, n * sizeof(float));
    r->p += n * sizeof(float), r->left -= n * sizeof(float);
}

static int load_ckpt(tnet *net, const char *path, uint64_t cfg, int32_t *epoch, int64_t *step) {
    uint8_t *buf;
    size_t len;
    int rc = vt__read_file(path, 0, &buf, &len);
    if (rc) return rc;
    if (len < 36 || memcmp(buf, CKPT_MAGIC, 8)) {
        free(buf);
        return vt__err(VT_ECORRUPT, "%s: not a vitrine training checkpoint", path);
    }
    uint64_t h;
    memcpy(&h, buf + len - 8, 8);
    if (h != vt_hash64(buf, len - 8, 0)) {
        free(buf);
        return vt__err(VT_ECHECKSUM, "%s: checkpoint checksum mismatch (truncated or damaged)", path);
    }
    uint64_t c;
    memcpy(&c, buf + 8, 8);
    if (c != cfg) {
        free(buf);
        return vt__err(VT_EINVAL, "%s: the checkpoint was written with other training options or data "
                                  "(resume with the same options as the interrupted run)", path);
    }
    memcpy(epoch, buf + 16, 4);
    memcpy(step, buf + 20, 8);
    rbuf r = {buf + 28, len - 36, 0};
    each_array(net, 1, arr_get, &r);
    free(buf);
    if (r.short_ || r.left) return vt__err(VT_ECORRUPT, "%s: checkpoint does not match the network's size", path);
    return 0;
}

/* ---------------------------------------------------------------- the run */

static uint64_t config_hash(const vt_train_opts *o, const tdata *d, int ntrain) {
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "%d|%d|%d|%.9g|%llu|%d|%d|%d|%d|%.9g|%.9g|%.9g|%.9g|%d|%.9g|%.9g|%d|%d|%d|%d|%d|%d|%.9g",
                     o->size, o->epochs, o->batch, o->val, (unsigned long long)o->seed, o->width, o->depth, o->embed_dim,
                     o->optimizer, o->lr, o->wd, o->momentum, o->warmup_epochs, o->schedule, o->label_smoothing,
                     o->dropout, o->min_count, (int)o->fit, o->augment, o->limit, d->n, ntrain, o->src_aspect);
    uint64_t h = vt_hash64(buf, (size_t)n, 0);
    for (int k = 0; k < d->nheads; k++) {
        h = vt_hash64(d->head[k], strlen(d->head[k]), h);
        for (int c = 0; c < d->nclasses[k]; c++) h = vt_hash64(d->vocab[k][c], strlen(d->vocab[k][c]) + 1, h);
    }
    return h;
}

static int check_opts(const vt_train_opts *o) {
    if (!o->images_dir || !o->meta) return vt__err(VT_EINVAL, "train: images folder and metadata file are required");
    if (o->size < 16 || o->size > 1024) return vt__err(VT_EINVAL, "train: size must be 16..1024");
    if (o->epochs < 1 || o->epochs > 100000) return vt__err(VT_EINVAL, "train: epochs must be positive");
    if (o->batch < 2 || o->batch > 4096) return vt__err(VT_EINVAL, "train: batch must be 2..4096");
    if (!(o->val >= 0 && o->val < 1)) return vt__err(VT_EINVAL, "train: validation fraction must be in [0, 1)");
    if (o->width < 4 || o->width > 512 || o->depth < 1 || o->depth > 16)
        return vt__err(VT_EINVAL, "train: width must be 4..512 and depth 1..16");
    if (o->embed_dim < 2 || o->embed_dim > 4096) return vt__err(VT_EINVAL, "train: embedding size must be 2..4096");
    if (!(o->dropout >= 0 && o->dropout < 1)) return vt__err(VT_EINVAL, "train: dropout must be in [0, 1)");
    if (!(o->label_smoothing >= 0 && o->label_smoothing < 1)) return vt__err(VT_EINVAL, "train: label smoothing must be in [0, 1)");
    if (o->optimizer < 0 || o->optimizer > 1 || o->schedule < 0 || o->schedule > 1)
        return vt__err(VT_EINVAL, "train: unknown optimiser or schedule");
    if (o->min_count < 1) return vt__err(VT_EINVAL, "train: min-count must be at least 1");
    if (o->stop_after < 0 || o->warmup_epochs < 0 || o->threads < 0) return vt__err(VT_EINVAL, "train: negative option");
    if (!(o->src_aspect >= 0 && o->src_aspect <= 10)) return vt__err(VT_EINVAL, "train: source aspect must be in (0, 10]");
    return 0;
}

static int export_model(tmodel *m, const tdata *d, const vt_train_opts *o, const tx_mix *mix, const teval *ev,
                        const teval *eh, int epochs_done) {
    const char *keys[32], *vals[32];
    char *own[32];
    int nm = 0, no = 0, rc = 0;
    char size_s[16], mean_s[64], std_s[64], heads_s[512] = "", arch_s[160], trained_s[512];
    snprintf(size_s, sizeof size_s, "%d", o->size);
    snprintf(mean_s, sizeof mean_s, "%.6g,%.6g,%.6g", vt_imagenet_mean[0], vt_imagenet_mean[1], vt_imagenet_mean[2]);
    snprintf(std_s, sizeof std_s, "%.6g,%.6g,%.6g", vt_imagenet_std[0], vt_imagenet_std[1], vt_imagenet_std[2]);
    for (int h = 0; h < d->nheads; h++) {
        size_t l = strlen(heads_s);
        snprintf(heads_s + l, sizeof heads_s - l, "%s%s", h ? "," : "", d->head[h]);
    }
    snprintf(arch_s, sizeof arch_s, "resnet width=%d depth=%d embed=%d", o->width, o->depth, o->embed_dim);
    snprintf(trained_s, sizeof trained_s,
             "{\"items\":%d,\"epochs\":%d,\"batch\":%d,\"seed\":%llu,\"src_aspect\":%.4g,\"val_p10\":%.4f,"
             "\"val_p10_pair\":%.4f,\"heldout_p10\":%.4f,\"heldout_p10_pair\":%.4f}", d->n, epochs_done, o->batch,
             (unsigned long long)o->seed, o->src_aspect, ev->p10, ev->p10_pair, eh->p10, eh->p10_pair);
    keys[nm] = "vitrine.input_size", vals[nm++] = size_s;
    keys[nm] = "vitrine.mean", vals[nm++] = mean_s;
    keys[nm] = "vitrine.std", vals[nm++] = std_s;
    keys[nm] = "vitrine.color", vals[nm++] = "rgb";
    keys[nm] = "vitrine.fit", vals[nm++] = o->fit == VT_FIT_STRETCH ? "stretch" : "letterbox";
    keys[nm] = "vitrine.embedding", vals[nm++] = "embedding";
    keys[nm] = "vitrine.embedding_normalized", vals[nm++] = o->raw_embedding ? "0" : "1";
    keys[nm] = "vitrine.heads", vals[nm++] = heads_s;
    keys[nm] = "vitrine.arch", vals[nm++] = arch_s;
    keys[nm] = "vitrine.trained", vals[nm++] = trained_s;
    if (mix->mixed) keys[nm] = "vitrine.embedding_mix", vals[nm++] = o->embed_mix;
    tx_head hx[TD_MAX_HEADS];
    char hn[TD_MAX_HEADS][80], hk[TD_MAX_HEADS][96];
    for (int h = 0; h < d->nheads && !rc; h++) {
        json_t *a = json_array();
        for (int c = 0; a && c < d->nclasses[h]; c++) json_array_append_new(a, json_string(d->vocab[h][c]));
        char *js = a ? json_dumps(a, JSON_COMPACT) : NULL;
        json_decref(a);
        if (!js) {
            rc = vt__err(VT_ENOMEM, "out of memory");
            break;
        }
        own[no++] = js;
        snprintf(hk[h], sizeof hk[h], "vitrine.labels.%s", d->head[h]);
        keys[nm] = hk[h], vals[nm++] = js;
        snprintf(hn[h], sizeof hn[h], "logits_%s", d->head[h]);
        hx[h].name = hn[h];
        hx[h].node = m->head[h];
    }
    if (!rc) rc = vt__train_export_onnx(m->net, m->emb, !o->raw_embedding, mix, d->nheads, hx, nm, keys, vals, o->out);
    for (int i = 0; i < no; i++) free(own[i]);
    return rc;
}

/* Contract: see vitrine.h. Determinism: the split, the epoch orders, every augmentation (seeded
 * per sample position) and every dropout mask (seeded per step) derive from o->seed only, so
 * the same seed and thread count give the same weights, and a resumed run continues the exact
 * sequence an uninterrupted one would have followed. */
int vt_train(const vt_train_opts *o, vt_train_result *res) {
    double t0 = vt_now();
    if (res) memset(res, 0, sizeof *res);
    int rc = check_opts(o);
    if (rc) return rc;
    tdata d;
    rc = vt__tdata_load(&d, o->meta, o->images_dir, o->labels, o->min_count, o->limit);
    if (rc) return rc;
    tx_mix mix; /* checked before the slow decoding of every photo */
    rc = vt__train_parse_mix(o->embed_mix, d.nheads, d.head, &mix);
    if (!rc && mix.mixed && o->raw_embedding)
        rc = vt__err(VT_EINVAL, "train: --embed-mix and --raw-embedding cannot be combined");
    if (rc) {
        vt__tdata_free(&d);
        return rc;
    }
    int threads = o->threads > 0 ? o->threads : vt_cpu_count();
    rc = vt__tdata_cache(&d, o->size, o->fit, o->src_aspect, threads, o->progress);
    if (rc) {
        vt__tdata_free(&d);
        return rc;
    }
    /* split by item, from the seed */
    int n = d.n, nval = (int)(o->val * n + 0.5), ntrain;
    if (o->val > 0 && nval < 1 && n > 1) nval = 1;
    int *perm = malloc((size_t)n * sizeof(int)), *order = malloc((size_t)n * sizeof(int));
    tmodel m = {0};
    vt_pool *pool = NULL;
    feeder f;
    memset(&f, 0, sizeof f);
    vt_progress *prog = NULL;
    teval ev;
    for (int h = 0; h < TD_MAX_HEADS; h++) ev.acc[h] = -1;
    ev.p10 = ev.p10_pair = -1;
    double img_s_sum = 0, last_train_acc[TD_MAX_HEADS] = {0};
    int epochs_run = 0, epoch = 0, mu_init = 0, csr_saved = 0;
    unsigned csr = 0;
    if (!perm || !order) {
        rc = vt__err(VT_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) perm[i] = i;
    vt_rng sr;
    vt_rng_seed(&sr, mix3(o->seed, 0x5b117, 0));
    for (int i = n - 1; i > 0; i--) {
        int j = (int)vt_rng_below(&sr, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    int *val_items = perm, *train_items = perm + nval;
    ntrain = n - nval;
    /* keep item order inside each part (sorted) so the split alone decides membership */
    for (int pass = 0; pass < 2; pass++) {
        int *a = pass ? train_items : val_items, cnt = pass ? ntrain : nval;
        for (int i = 1; i < cnt; i++) {
            int v = a[i], j = i;
            while (j > 0 && a[j - 1] > v) a[j] = a[j - 1], j--;
            a[j] = v;
        }
    }
    if (o->split_out) {
        FILE *sf = fopen(o->split_out, "w");
        if (!sf) {
            rc = vt__err(VT_EIO, "%s: cannot write the split", o->split_out);
            goto done;
        }
        char *isval = calloc((size_t)n, 1);
        for (int i = 0; isval && i < nval; i++) isval[val_items[i]] = 1;
        for (int i = 0; isval && i < n; i++) fprintf(sf, "%s\t%s\n", d.ids[i], isval[i] ? "val" : "train");
        int bad = !isval || ferror(sf);
        free(isval);
        if (fclose(sf) || bad) {
            rc = vt__err(VT_EIO, "%s: cannot write the split", o->split_out);
            goto done;
        }
    }
    if (ntrain < 2) {
        rc = vt__err(VT_EEMPTY, "train: only %d training items", ntrain);
        goto done;
    }
    int batch = o->batch < ntrain ? o->batch : ntrain;
    int steps = ntrain / batch;
    if ((rc = build_model(&m, o, &d))) goto done;
    m.net->threads = threads;
    vt__tnet_init(m.net, mix3(o->seed, 0x1417, 0));
    uint64_t cfg = config_hash(o, &d, ntrain);
    topt opt = {.kind = o->optimizer ? TOPT_ADAMW : TOPT_SGD,
                .lr = (float)(o->lr > 0 ? o->lr : o->optimizer ? 2e-3 : 0.1),
                .momentum = (float)o->momentum,
                .wd = (float)(o->wd >= 0 ? o->wd : o->optimizer ? 0.05 : 5e-4),
                .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                .sched = o->schedule == 1 ? TSCHED_ONECYCLE : TSCHED_COSINE,
                .warmup_steps = (long)(o->warmup_epochs * steps + 0.5),
                .total_steps = (long)steps * o->epochs};
    int64_t step = 0;
    int32_t start_epoch = 0;
    if (o->resume) {
        if ((rc = load_ckpt(m.net, o->resume, cfg, &start_epoch, &step))) goto done;
        VT_LOGI("train: resuming after epoch %d (step %lld)", start_epoch, (long long)step);
    }
    char ckpt_auto[4096];
    const char *ckpt = o->checkpoint;
    if (!ckpt && o->out) {
        snprintf(ckpt_auto, sizeof ckpt_auto, "%s.ckpt", o->out);
        ckpt = ckpt_auto;
    }
    omp_set_num_threads(threads);
    csr = _mm_getcsr();
    csr_saved = 1;
    vt__train_set_ftz();
    if ((rc = vt__tnet_setup(m.net, batch))) goto done;
    int aug_threads = threads > 2 ? threads / 2 : 0;
    if (aug_threads && (rc = vt_pool_create(aug_threads, &pool))) goto done;
    size_t per = (size_t)o->size * o->size * 3;
    for (int k = 0; k < 2; k++) {
        f.slot[k].x = malloc((size_t)batch * per * sizeof(float));
        f.slot[k].y = malloc((size_t)batch * d.nheads * sizeof(int));
        if (!f.slot[k].x || !f.slot[k].y) {
            rc = vt__err(VT_ENOMEM, "out of memory");
            goto done;
        }
    }
    pthread_mutex_init(&f.mu, NULL);
    pthread_cond_init(&f.cv, NULL);
    mu_init = 1;
    f.d = &d, f.order = order, f.batch = batch, f.steps = steps, f.size = o->size, f.augment = o->augment;
    f.seed = o->seed, f.pool = pool, f.nhwc = m.net->plain;
    vt_augment_defaults(&f.ao);
    int H = d.nheads;
    for (epoch = start_epoch + 1; epoch <= o->epochs && !rc; epoch++) {
        double te = vt_now();
        memcpy(order, train_items, (size_t)ntrain * sizeof(int));
        vt_rng er;
        vt_rng_seed(&er, mix3(o->seed, 0xe70c, (uint64_t)epoch));
        for (int i = ntrain - 1; i > 0; i--) {
            int j = (int)vt_rng_below(&er, (uint64_t)i + 1), t = order[i];
            order[i] = order[j], order[j] = t;
        }
        f.epoch = epoch, f.stop = 0, f.err = 0, f.ready[0] = f.ready[1] = 0;
        pthread_t th;
        if (pthread_create(&th, NULL, feeder_main, &f)) {
            rc = vt__err(VT_EINTERNAL, "train: cannot start the augmentation thread");
            break;
        }
        char label[48];
        snprintf(label, sizeof label, "epoch %d/%d", epoch, o->epochs);
        if (o->progress) vt_progress_create(label, (uint64_t)steps * batch, "img", &prog);
        double loss_sum = 0;
        long hit[TD_MAX_HEADS] = {0}, tot[TD_MAX_HEADS] = {0};
        double tt = vt_now();
        for (int s = 0; s < steps && !rc; s++) {
            tbatch *b = feeder_take(&f, s);
            if (f.err) {
                rc = f.err;
                feeder_release(&f, s);
                break;
            }
            m.net->drop_seed = mix3(o->seed, 0xd207, (uint64_t)step);
            rc = vt__tnet_forward(m.net, b->x, 1);
            if (!rc) {
                vt__tnet_zero_marks(m.net);
                double loss = 0;
                for (int h = 0; h < H; h++) {
                    tn_node *hn = &m.net->nodes[m.head[h]];
                    int lab[4096];
                    for (int j = 0; j < batch; j++) lab[j] = b->y[j * H + h];
                    int ok = 0, cnt = 0;
                    loss += vt__softmax_xent(hn->y, lab, batch, hn->c, (float)o->label_smoothing, 1.0f, hn->dy, &ok, &cnt);
                    hit[h] += ok, tot[h] += cnt;
                    vt__tnet_mark_grad(m.net, m.head[h]);
                }
                loss_sum += loss;
                feeder_release(&f, s);
                rc = vt__tnet_backward(m.net);
                if (!rc) {
                    if (!isfinite(loss)) rc = vt__err(VT_EINTERNAL, "train: the loss diverged (try a lower --lr)");
                    float lr = vt__sched_lr(&opt, step);
                    vt__opt_step(m.net, &opt, lr, step + 1);
                    step++;
                }
                if (prog) {
                    char st[160];
                    int l = snprintf(st, sizeof st, "loss %.3f acc", loss_sum / (s + 1));
                    for (int h = 0; h < H && l < (int)sizeof st - 8; h++)
                        l += snprintf(st + l, sizeof st - (size_t)l, " %.2f", tot[h] ? (double)hit[h] / tot[h] : 0.0);
                    vt_progress_add(prog, (uint64_t)batch, st);
                }
            } else {
                feeder_release(&f, s);
            }
        }
        double train_time = vt_now() - tt;
        pthread_mutex_lock(&f.mu);
        f.stop = 1;
        pthread_cond_broadcast(&f.cv);
        pthread_mutex_unlock(&f.mu);
        pthread_join(th, NULL);
        if (prog) vt_progress_finish(prog), prog = NULL;
        if (rc) break;
        double ips = (double)steps * batch / (train_time > 0 ? train_time : 1e-9);
        img_s_sum += ips;
        epochs_run++;
        for (int h = 0; h < H; h++) last_train_acc[h] = tot[h] ? (double)hit[h] / tot[h] : -1;
        if ((rc = evaluate(&m, &d, &mix, val_items, nval, NULL, 0, o->size, pool, 1, &ev))) break;
        if (ckpt && (rc = save_ckpt(m.net, ckpt, cfg, epoch, step))) break;
        if (o->on_epoch) {
            vt_train_epoch e = {epoch, o->epochs, H, (const char *const *)d.head, loss_sum / steps, last_train_acc, ev.acc,
                                ev.p10, ev.p10_pair, ips, vt_now() - te};
            o->on_epoch(&e, o->user);
        }
        if (o->stop_after && epoch >= o->stop_after) {
            epoch++;
            break;
        }
    }
    epoch--;
    if (!rc && o->eval_train) {
        teval et;
        if (!(rc = evaluate(&m, &d, &mix, train_items, ntrain, NULL, 0, o->size, pool, 0, &et)))
            for (int h = 0; h < H; h++) last_train_acc[h] = et.acc[h];
    }
    if (!rc && !epochs_run) /* a finished checkpoint re-exported: measure what is exported */
        rc = evaluate(&m, &d, &mix, val_items, nval, NULL, 0, o->size, pool, 1, &ev);
    teval eh; /* held-out items querying the whole catalog */
    eh.p10 = eh.p10_pair = -1;
    if (!rc && nval > 0) {
        int *all = malloc((size_t)n * sizeof(int));
        if (!all) rc = vt__err(VT_ENOMEM, "out of memory");
        for (int i = 0; all && i < n; i++) all[i] = i;
        if (all) rc = evaluate(&m, &d, &mix, val_items, nval, all, n, o->size, pool, 1, &eh);
        free(all);
    }
    if (!rc && o->out) rc = export_model(&m, &d, o, &mix, &ev, &eh, epoch);
    if (!rc && res) {
        res->nheads = H;
        for (int h = 0; h < H; h++) {
            res->classes[h] = d.nclasses[h];
            res->train_acc[h] = last_train_acc[h];
            res->val_acc[h] = ev.acc[h];
        }
        res->items = n, res->train_items = ntrain, res->val_items = nval;
        res->epochs_done = epoch;
        res->val_p10 = ev.p10, res->val_p10_pair = ev.p10_pair;
        res->heldout_p10 = eh.p10, res->heldout_p10_pair = eh.p10_pair;
        res->images_per_s = epochs_run ? img_s_sum / epochs_run : 0;
        res->params = (int64_t)vt__tnet_param_count(m.net);
        res->weights_hash = weights_hash(m.net);
    }
done:
    if (mu_init) {
        pthread_mutex_destroy(&f.mu);
        pthread_cond_destroy(&f.cv);
    }
    for (int k = 0; k < 2; k++) free(f.slot[k].x), free(f.slot[k].y);
    vt_pool_free(pool);
    vt__tnet_free(m.net);
    free(perm), free(order);
    vt__tdata_free(&d);
    if (csr_saved) _mm_setcsr(csr); /* the caller's thread gets its floating-point mode back */
    if (res) res->seconds = vt_now() - t0;
    return rc;
}
