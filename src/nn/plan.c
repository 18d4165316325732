/* plan.c: turns a graph plus concrete input shapes into an execution plan: shape inference, constant
 * folding, Conv+BN+activation+residual fusion, oneDNN primitives (created once), memory planning. */
#include "nn/nn_internal.h"
#include <float.h>
#include <malloc.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DN(call)                                                                                         \
    do {                                                                                                 \
        dnnl_status_t st_ = (call);                                                                      \
        if (st_ != dnnl_success) return vt__err(VT_EINTERNAL, "oneDNN: %s failed (status %d)", #call, (int)st_); \
    } while (0)

/* An activation as a chain of at most two oneDNN eltwise operations. */
typedef struct {
    int n;
    dnnl_alg_kind_t alg[2];
    float a[2], b[2];
} nn_act;

#define NN_MAX_TENSOR_BYTES ((size_t)1 << 30) /* one tensor above 1 GiB is refused (hostile shapes) */

static void *xmalloc(size_t n) { return n > NN_MAX_TENSOR_BYTES ? NULL : malloc(n ? n : 1); }

/* Nonzero when a shape's byte size overflows or exceeds NN_MAX_TENSOR_BYTES. */
static int shape_too_big(int rank, const int64_t *dims) {
    size_t n = 4;
    for (int i = 0; i < rank; i++)
        if (dims[i] < 0 || vt__mul_overflow(n, (size_t)dims[i], &n) || n > NN_MAX_TENSOR_BYTES) return 1;
    return 0;
}

/* ---------------------------------------------------------------- tensors */

static int new_tensor(nn_plan *p) {
    if (p->nt == p->capt) {
        int nc = p->capt ? p->capt * 2 : 256;
        nn_tensor *nt = realloc(p->t, (size_t)nc * sizeof *nt);
        if (!nt) return -1;
        p->t = nt;
        p->capt = nc;
    }
    nn_tensor *t = &p->t[p->nt];
    memset(t, 0, sizeof *t);
    t->alias = -1;
    t->plain = -1;
    t->first = t->last = -1;
    return p->nt++;
}

static int root_of(const nn_plan *p, int t) {
    while (p->t[t].alias >= 0) t = p->t[t].alias;
    return t;
}

static int md_plain(dnnl_memory_desc_t *md, int rank, const int64_t *dims) {
    dnnl_dims_t d, s;
    int nd = rank ? rank : 1;
    for (int i = 0; i < nd; i++) d[i] = rank ? dims[i] : 1;
    int64_t st = 1;
    for (int i = nd - 1; i >= 0; i--) {
        s[i] = st;
        st *= d[i] > 0 ? d[i] : 1;
    }
    DN(dnnl_memory_desc_init_by_strides(md, nd, d, dnnl_f32, s));
    return 0;
}

static int is_plain(const nn_tensor *t) {
    dnnl_memory_desc_t md;
    if (md_plain(&md, t->rank, t->dims)) return 0;
    return dnnl_memory_desc_equal(&md, &t->md);
}

/* A runtime float tensor with layout md (NULL: plain row-major). */
static int rt_new(nn_plan *p, int rank, const int64_t *dims_in, const dnnl_memory_desc_t *md_in) {
    /* dims_in / md_in may point into p->t, which new_tensor may move: copy them first */
    int64_t dims[NN_MAXR];
    if (rank) memcpy(dims, dims_in, (size_t)rank * sizeof *dims);
    if (shape_too_big(rank, dims)) return vt__err(VT_ETOOBIG, "a tensor of this plan would exceed 1 GiB");
    dnnl_memory_desc_t mdc, *md = NULL;
    if (md_in) mdc = *md_in, md = &mdc;
    int i = new_tensor(p);
    if (i < 0) return vt__err(VT_ENOMEM, "out of memory");
    nn_tensor *t = &p->t[i];
    t->dtype = NN_FLOAT;
    t->rank = rank;
    memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->nelem = vt__nn_numel(rank, dims);
    if (md) t->md = *md;
    else if (md_plain(&t->md, rank, dims)) return VT_EINTERNAL;
    t->bytes = dnnl_memory_desc_get_size(&t->md);
    return i;
}

/* A constant tensor. data is taken over when own. */
static int const_new(nn_plan *p, int dtype, int rank, const int64_t *dims_in, void *data, int own) {
    int64_t dims[NN_MAXR];
    if (rank) memcpy(dims, dims_in, (size_t)rank * sizeof *dims);
    int i = new_tensor(p);
    if (i < 0) {
        if (own) free(data);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    nn_tensor *t = &p->t[i];
    t->is_const = 1;
    t->dtype = dtype;
    t->rank = rank;
    memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->nelem = vt__nn_numel(rank, dims);
    t->cdata = data;
    t->own_cdata = own;
    if (dtype == NN_FLOAT && md_plain(&t->md, rank, dims)) return VT_EINTERNAL;
    return i;
}



/* ---------------------------------------------------------------- steps */

/* 1 if libgomp's threads sleep between parallel regions (OMP_WAIT_POLICY=passive, or
 * GOMP_SPINCOUNT=0), 0 if they spin a while first (libgomp's default, and the CLI's choice for
 * `model` and `embed` on an idle machine). */
int vt__nn_omp_passive(void) {
    const char *w = getenv("OMP_WAIT_POLICY"), *s = getenv("GOMP_SPINCOUNT");
    return (w && !strcasecmp(w, "passive")) || (s && !strcmp(s, "0"));
}

/* Threads for the primitive about to be created: small layers run on one thread, since a
 * parallel region costs a barrier that is worth more than the split work (oneDNN fixes a
 * primitive's thread count when it is created; the run sets it again per step). `work` is
 * multiply-adds for convolutions, elements otherwise. Convolutions below 4 M multiply-adds stay
 * on one thread only when the threads sleep between regions (each region then wakes them):
 * with spinning threads splitting every convolution was faster (EfficientNet-B0, 2 threads,
 * batch 1, alternating runs: 85 / 59 / 88 img/s against 62 / 63 / 78; MobileNetV2 163 / 178 /
 * 171 against 149 / 160 / 159), with sleeping ones it was not (MobileNetV2 96 / 86 / 67 against
 * 96 / 107 / 96). */
static void want_threads(nn_plan *p, double work, int is_conv) {
    int n = p->threads > 0 ? p->threads : 1;
    if (work < (is_conv ? (p->passive ? 4e6 : 0.0) : 65536.0)) n = 1;
    p->cur_nthr = n;
    omp_set_num_threads(n);
}

static nn_step *new_step(nn_plan *p) {
    if (p->nsteps == p->capsteps) {
        int nc = p->capsteps ? p->capsteps * 2 : 128;
        nn_step *ns = realloc(p->steps, (size_t)nc * sizeof *ns);
        if (!ns) return NULL;
        p->steps = ns;
        p->capsteps = nc;
    }
    nn_step *s = &p->steps[p->nsteps++];
    memset(s, 0, sizeof *s);
    s->copy_src = s->copy_dst = -1;
    s->nthr = p->cur_nthr > 0 ? p->cur_nthr : 1;
    return s;
}

static void step_arg(nn_step *s, int arg, int t) {
    s->args[s->nargs].arg = arg;
    s->args[s->nargs].t = t;
    s->nargs++;
}

/* Creates the primitive of pd (and destroys pd). */
static int prim_from_pd(dnnl_primitive_desc_t pd, dnnl_primitive_t *out) {
    dnnl_status_t st = dnnl_primitive_create(out, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) return vt__err(VT_EINTERNAL, "oneDNN: primitive creation failed (status %d)", (int)st);
    return 0;
}

/* Appends a step that runs the primitive of pd; pd is consumed (destroyed) in every case. */
static int add_prim_step(nn_plan *p, dnnl_primitive_desc_t pd, nn_step **out) {
    *out = new_step(p);
    if (!*out) {
        dnnl_primitive_desc_destroy(pd);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    return prim_from_pd(pd, &(*out)->prim);
}

/* Makes the output tensor of a primitive step (rank, dims, layout as for rt_new) and appends the
 * step running pd; pd is consumed in every case. Returns the tensor's index or a negative error. */
static int add_prim_out(nn_plan *p, dnnl_primitive_desc_t pd, int rank, const int64_t *dims,
                        const dnnl_memory_desc_t *md, nn_step **s) {
    int y = rt_new(p, rank, dims, md);
    if (y < 0) {
        dnnl_primitive_desc_destroy(pd);
        return y;
    }
    int rc = add_prim_step(p, pd, s);
    return rc ? rc : y;
}

static int add_c_step(nn_plan *p, nn_cfn fn, void *ctx, int nts, const int *ts) {
    nn_step *s = new_step(p);
    if (!s) {
        free(ctx);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    s->fn = fn;
    s->ctx = ctx;
    s->nts = nts;
    memcpy(s->ts, ts, (size_t)nts * sizeof(int));
    return 0;
}

/* Adds a reorder of tensor src into a new tensor of layout md; returns the new tensor index. */
static int reorder_to(nn_plan *p, int src, const dnnl_memory_desc_t *md) {
    dnnl_primitive_desc_t pd;
    want_threads(p, (double)p->t[src].nelem, 0);
    DN(dnnl_reorder_primitive_desc_create(&pd, &p->t[src].md, p->eng, md, p->eng, NULL));
    nn_step *s;
    int d = add_prim_out(p, pd, p->t[src].rank, p->t[src].dims, md, &s);
    if (d < 0) return d;
    step_arg(s, DNNL_ARG_FROM, src);
    step_arg(s, DNNL_ARG_TO, d);
    return d;
}

/* Returns a plain row-major version of float tensor t (t itself when it already is). */
static int to_plain(nn_plan *p, int t) {
    if (p->t[t].is_const || is_plain(&p->t[t])) return t;
    if (p->t[t].plain >= 0) return p->t[t].plain;
    dnnl_memory_desc_t md;
    if (md_plain(&md, p->t[t].rank, p->t[t].dims)) return VT_EINTERNAL;
    int d = reorder_to(p, t, &md);
    if (d >= 0) p->t[t].plain = d;
    return d;
}

/* A runtime tensor that shares t's buffer but has another shape (t must be plain). */
static int alias_new(nn_plan *p, int t, int rank, const int64_t *dims, const dnnl_memory_desc_t *md) {
    int d = rt_new(p, rank, dims, md);
    if (d < 0) return d;
    p->t[d].alias = root_of(p, t);
    return d;
}

/* ---------------------------------------------------------------- plan-building context */

typedef struct {
    nn_plan *p;
    nn_graph *g;
    int *ncons;        /* consumers per value (graph outputs count as one) */
    int *cons;         /* first consumer node per value */
    char *absorbed;    /* node handled by a fusion */
    char *pinned;      /* values that must be materialised */
    const nn_feed *feeds;
    int nfeed;
    int *remaining;    /* node inputs still to plan per value, for releasing copied weights */
} bctx;

/* One use of initializer v by a convolution (which copied it) is done; when it was the last use
 * and the graph allows it, the original is freed (vitrine model run then holds the weights once)
 * and 1 is returned. */
static int used_up(bctx *b, int v) {
    if (v < 0 || !b->remaining) return 0;
    nn_value *gv = &b->g->vals[v];
    if (--b->remaining[v] > 0 || !gv->data || gv->producer >= 0 || b->pinned[v] || !b->g->release_weights) return 0;
    int t = b->p->val2t[v];
    if (t >= 0 && b->p->t[t].cdata == gv->data) b->p->t[t].cdata = NULL;
    free(gv->data);
    gv->data = NULL;
    b->g->weights_released = 1;
    return 1;
}

static int fusible(const bctx *b, int v) {
    return v >= 0 && b->ncons[v] == 1 && !b->pinned[v] && !b->g->vals[v].is_output;
}

/* Float data of a constant, or of a fed graph input (marking the plan value-dependent). */
static const void *value_data(bctx *b, int t) {
    nn_tensor *x = &b->p->t[t];
    if (x->is_const) return x->cdata;
    for (int i = 0; i < b->nfeed; i++)
        if (b->p->val2t[b->feeds[i].value] == t) {
            b->p->value_dependent = 1;
            return b->feeds[i].data;
        }
    return NULL;
}

static int in_t(bctx *b, const nn_node *n, int i) {
    if (i >= n->nin || n->in[i] < 0) return -1;
    return b->p->val2t[n->in[i]];
}

static int set_out(bctx *b, const nn_node *n, int i, int t) {
    if (t < 0) return t;
    if (i < n->nout && n->out[i] >= 0) b->p->val2t[n->out[i]] = t;
    return 0;
}

/* Reads an integer list from a constant int64 tensor input. */
static int const_ints(bctx *b, const nn_node *n, int i, const int64_t **out, size_t *cnt) {
    int t = in_t(b, n, i);
    if (t < 0) return vt__err(VT_EINVAL, "node '%s' (%s): input %d is missing", n->name, n->op, i);
    nn_tensor *x = &b->p->t[t];
    if (!x->is_const || x->dtype != NN_INT64)
        return vt__err(VT_EUNSUPPORTED, "node '%s' (%s): input %d must be a constant integer tensor", n->name, n->op, i);
    *out = x->cdata;
    *cnt = x->nelem;
    return 0;
}

static float const_scalar_f(bctx *b, const nn_node *n, int i, float dflt, int *rc) {
    int t = in_t(b, n, i);
    if (t < 0) return dflt;
    const void *d = value_data(b, t);
    if (!d || b->p->t[t].nelem != 1) {
        *rc = vt__err(VT_EUNSUPPORTED, "node '%s' (%s): input %d must be a constant scalar", n->name, n->op, i);
        return dflt;
    }
    return b->p->t[t].dtype == NN_FLOAT ? *(const float *)d : (float)*(const int64_t *)d;
}

/* ---------------------------------------------------------------- activations */

/* Contract: fills act for a unary activation node; returns 1 when n is one, 0 when not,
 * negative on error (e.g. a Clip bound that is not constant). */
static int act_of(bctx *b, const nn_node *n, nn_act *a) {
    memset(a, 0, sizeof *a);
    a->n = 1;
    const char *op = n->op;
    if (!strcmp(op, "Relu")) a->alg[0] = dnnl_eltwise_relu;
    else if (!strcmp(op, "LeakyRelu")) a->alg[0] = dnnl_eltwise_relu, a->a[0] = vt__nn_attr_f(n, "alpha", 0.01f);
    else if (!strcmp(op, "Sigmoid")) a->alg[0] = dnnl_eltwise_logistic;
    else if (!strcmp(op, "Tanh")) a->alg[0] = dnnl_eltwise_tanh;
    else if (!strcmp(op, "HardSwish")) a->alg[0] = dnnl_eltwise_hardswish;
    else if (!strcmp(op, "HardSigmoid")) {
        a->n = 2;
        a->alg[0] = dnnl_eltwise_linear;
        a->a[0] = vt__nn_attr_f(n, "alpha", 0.2f);
        a->b[0] = vt__nn_attr_f(n, "beta", 0.5f);
        a->alg[1] = dnnl_eltwise_clip;
        a->a[1] = 0.f;
        a->b[1] = 1.f;
    } else if (!strcmp(op, "Clip")) {
        a->alg[0] = dnnl_eltwise_clip;
        int rc = 0;
        if (b->g->opset < 11) {
            a->a[0] = vt__nn_attr_f(n, "min", -FLT_MAX);
            a->b[0] = vt__nn_attr_f(n, "max", FLT_MAX);
        } else {
            a->a[0] = const_scalar_f(b, n, 1, -FLT_MAX, &rc);
            a->b[0] = const_scalar_f(b, n, 2, FLT_MAX, &rc);
        }
        if (rc) return rc;
    } else return 0;
    return 1;
}

static float act_ref1(dnnl_alg_kind_t alg, float al, float be, float x) {
    switch (alg) {
    case dnnl_eltwise_relu: return x > 0 ? x : al * x;
    case dnnl_eltwise_logistic: return 1.f / (1.f + expf(-x));
    case dnnl_eltwise_tanh: return tanhf(x);
    case dnnl_eltwise_hardswish: return x * fminf(fmaxf(x + 3.f, 0.f), 6.f) / 6.f;
    case dnnl_eltwise_linear: return al * x + be;
    case dnnl_eltwise_clip: return fminf(fmaxf(x, al), be);
    case dnnl_eltwise_swish: return x / (1.f + expf(-al * x));
    default: return x;
    }
}

static int add_act_postops(dnnl_post_ops_t po, const nn_act *a) {
    for (int k = 0; k < a->n; k++) DN(dnnl_post_ops_append_eltwise(po, 1.f, a->alg[k], a->a[k], a->b[k]));
    return 0;
}

static int plan_act(bctx *b, const nn_node *n, const nn_act *a) {
    nn_plan *p = b->p;
    int x = in_t(b, n, 0);
    if (x < 0) return vt__err(VT_EINVAL, "node '%s': missing input", n->name);
    nn_tensor *X = &p->t[x];
    if (X->dtype != NN_FLOAT) return vt__err(VT_EUNSUPPORTED, "node '%s' (%s): input must be float", n->name, n->op);
    if (X->is_const) {
        float *o = xmalloc(X->nelem * 4);
        if (!o) return vt__err(VT_ENOMEM, "out of memory");
        const float *s = X->cdata;
        for (size_t i = 0; i < X->nelem; i++) {
            float v = s[i];
            for (int k = 0; k < a->n; k++) v = act_ref1(a->alg[k], a->a[k], a->b[k], v);
            o[i] = v;
        }
        return set_out(b, n, 0, const_new(p, NN_FLOAT, X->rank, X->dims, o, 1));
    }
    int y = rt_new(p, X->rank, X->dims, &p->t[x].md);
    if (y < 0) return y;
    for (int k = 0; k < a->n; k++) {
        dnnl_eltwise_desc_t ed;
        DN(dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, a->alg[k], &p->t[y].md, a->a[k], a->b[k]));
        dnnl_primitive_desc_t pd;
        want_threads(p, (double)p->t[y].nelem, 0);
        DN(dnnl_primitive_desc_create(&pd, &ed, NULL, p->eng, NULL));
        nn_step *s = new_step(p);
        if (!s) return vt__err(VT_ENOMEM, "out of memory");
        int rc = prim_from_pd(pd, &s->prim);
        if (rc) return rc;
        step_arg(s, DNNL_ARG_SRC, k == 0 ? x : y);
        step_arg(s, DNNL_ARG_DST, y);
    }
    return set_out(b, n, 0, y);
}

/* ---------------------------------------------------------------- conv with fusion */

static int conv_pads(const nn_node *n, int sd, const int64_t *in, const int64_t *k, const int64_t *st,
                     const int64_t *dil, int64_t *pl, int64_t *pr, int64_t *out, int ceil_mode) {
    const nn_attr *ap = vt__nn_attr(n, "auto_pad");
    const char *mode = ap && ap->kind == NA_STRING ? ap->s : "NOTSET";
    const nn_attr *pads = vt__nn_attr(n, "pads");
    if (pads && pads->kind == NA_INTS && pads->n != 2 * sd)
        return vt__err(VT_EINVAL, "node '%s' (%s): pads has %d values, expected %d", n->name, n->op, pads->n, 2 * sd);
    for (int i = 0; i < sd; i++) {
        int64_t ek = (k[i] - 1) * dil[i] + 1;
        if (!strcmp(mode, "SAME_UPPER") || !strcmp(mode, "SAME_LOWER")) {
            out[i] = (in[i] + st[i] - 1) / st[i];
            int64_t tot = (out[i] - 1) * st[i] + ek - in[i];
            if (tot < 0) tot = 0;
            if (!strcmp(mode, "SAME_UPPER")) pl[i] = tot / 2, pr[i] = tot - tot / 2;
            else pr[i] = tot / 2, pl[i] = tot - tot / 2;
            continue;
        } else if (!strcmp(mode, "VALID")) {
            pl[i] = pr[i] = 0;
        } else if (!strcmp(mode, "NOTSET")) {
            pl[i] = pads && pads->kind == NA_INTS ? pads->ints[i] : 0;
            pr[i] = pads && pads->kind == NA_INTS ? pads->ints[sd + i] : 0;
            if (pl[i] < 0 || pr[i] < 0) return vt__err(VT_EUNSUPPORTED, "node '%s' (%s): negative pads", n->name, n->op);
        } else {
            return vt__err(VT_EUNSUPPORTED, "node '%s' (%s): auto_pad '%s' is not supported", n->name, n->op, mode);
        }
        int64_t span = in[i] + pl[i] + pr[i] - ek;
        if (span < 0) return vt__err(VT_EINVAL, "node '%s' (%s): kernel larger than the padded input", n->name, n->op);
        if (ceil_mode) {
            out[i] = (span + st[i] - 1) / st[i] + 1;
            if ((out[i] - 1) * st[i] >= in[i] + pl[i]) out[i]--;
            int64_t need = (out[i] - 1) * st[i] + ek - in[i] - pl[i];
            if (need > pr[i]) pr[i] = need;
        } else {
            out[i] = span / st[i] + 1;
        }
    }
    return 0;
}

/* Spatial attribute list (kernel_shape, strides, dilations) with default dflt. */
static int spatial_attr(const nn_node *n, const char *name, int sd, int64_t dflt, int64_t *out) {
    const nn_attr *a = vt__nn_attr(n, name);
    for (int i = 0; i < sd; i++) out[i] = dflt;
    if (!a) return 0;
    if (a->kind != NA_INTS || a->n != sd)
        return vt__err(VT_EINVAL, "node '%s' (%s): attribute %s must list %d values", n->name, n->op, name, sd);
    for (int i = 0; i < sd; i++) {
        if (a->ints[i] <= 0) return vt__err(VT_EINVAL, "node '%s' (%s): %s must be positive", n->name, n->op, name);
        out[i] = a->ints[i];
    }
    return 0;
}

/* Releases a convolution's original weights, bias and folded BN parameters once nothing else
 * needs them (the plan holds its own copy). */
static void release_weights(bctx *b, const nn_node *n, int bn_node) {
    int freed = used_up(b, n->in[1]);
    if (n->nin > 2) freed |= used_up(b, n->in[2]);
    if (bn_node >= 0)
        for (int i = 1; i < 5; i++) freed |= used_up(b, b->g->nodes[bn_node].in[i]);
    /* hand the freed pages back now, not at the end of the plan: the plan's copies of the weights
     * grow while the originals shrink, and the process's peak stays near one copy (ResNet-50:
     * 134 MB against 184 MB when trimmed once at the end) */
    if (freed) malloc_trim(0);
}

/* Step sidx (the convolution of node ni writing tensor y) adds the residual tensor sum_t; the Add
 * node last_fused was absorbed into it. Makes y share sum_t's buffer when that is safe, else
 * gives the step a copy of sum_t into y before it runs. */
static int fuse_residual(bctx *b, int ni, int sidx, int sum_t, int y, int last_fused) {
    nn_plan *p = b->p;
    nn_graph *g = b->g;
    nn_step *s = &p->steps[sidx];
    const dnnl_memory_desc_t dmd = p->t[y].md;
    int rc;
    /* The residual may be overwritten in place when nothing reads its buffer later: every
     * tensor sharing the buffer is unpinned and every graph value mapped to one of them has
     * no consumer left (consumers earlier in topological order have run, and so have nodes
     * absorbed into earlier fused steps; the Add being fused here is the one exception). */
    int r = root_of(p, sum_t);
    int inplace = !p->t[r].is_const && dnnl_memory_desc_equal(&p->t[sum_t].md, &dmd) &&
                  p->t[sum_t].bytes == p->t[y].bytes;
    for (int t2 = 0; inplace && t2 < p->nt; t2++) {
        if (t2 == y || root_of(p, t2) != r) continue;
        if (p->t[t2].pinned) inplace = 0;
        for (int v = 0; inplace && v < g->nvals; v++) {
            if (p->val2t[v] != t2) continue;
            if (b->pinned[v] || g->vals[v].is_output || g->vals[v].is_input) inplace = 0;
            for (int ci = 0; inplace && ci < g->nnodes; ci++) {
                const nn_node *c = &g->nodes[ci];
                int reads = 0;
                for (int j = 0; j < c->nin; j++) reads |= c->in[j] == v;
                if (!reads || ci == last_fused) continue;
                if (!(ci < ni || b->absorbed[ci])) inplace = 0;
            }
        }
    }
    if (inplace) {
        p->t[y].alias = root_of(p, sum_t);
    } else {
        s->copy_src = sum_t;
        s->copy_dst = y;
        dnnl_primitive_desc_t rpd;
        DN(dnnl_reorder_primitive_desc_create(&rpd, &p->t[sum_t].md, p->eng, &dmd, p->eng, NULL));
        rc = prim_from_pd(rpd, &s->copy_prim);
        if (rc) return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------- Winograd convolutions */

/* Appends activation alg(a, b) to a Winograd post-op list; 0 when wino.c has no such activation. */
static int wpo_add(nn_wpo *w, int *n, dnnl_alg_kind_t alg, float a, float b) {
    int kind = alg == dnnl_eltwise_relu ? NN_WPO_RELU : alg == dnnl_eltwise_clip ? NN_WPO_CLIP
             : alg == dnnl_eltwise_linear ? NN_WPO_LINEAR : 0;
    if (!kind || *n >= 8) return 0;
    w[(*n)++] = (nn_wpo){kind, a, b};
    return 1;
}

/* Contract: see nn_internal.h. */
int vt__nn_avx2_fma(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

/* Contract: see nn_internal.h. */
int vt__wino_enabled(void) {
    const char *e = getenv("VITRINE_WINOGRAD");
    return vt__nn_avx2_fma() && !(e && !strcmp(e, "0"));
}

/* Whether a convolution goes to wino.c: 2-D, 3x3, stride 1, no dilation, channels in blocks of 8
 * (in) and 16 (out), at least 16 of each; transformed weights (4x the plain ones) at most 16 MB,
 * so that a network's largest layers (ResNet-50's last stage: 7x7 images, where a tile's rows run
 * past the image and the weights are read for few tiles) keep oneDNN's direct kernel and the
 * plan's memory stays near the weights' size; and tiles that cover at most 1.5x the output. */
static int wino_fits(const nn_tensor *X, int sd, const int64_t *k, const int64_t *st, const int64_t *dil,
                     const int64_t *pl, const int64_t *pr, const int64_t *odims) {
    if (sd != 2 || X->dtype != NN_FLOAT || !vt__wino_enabled()) return 0;
    if (k[0] != 3 || k[1] != 3 || st[0] != 1 || st[1] != 1 || dil[0] != 1 || dil[1] != 1) return 0;
    if (pl[0] < 0 || pl[1] < 0 || pr[0] < 0 || pr[1] < 0 || pl[0] > 2 || pl[1] > 2) return 0;
    int64_t ic = X->dims[1], oc = odims[1], oh = odims[2], ow = odims[3];
    if (ic % 8 || oc % 16 || ic < 16 || oc < 16 || oh < 1 || ow < 1) return 0;
    if (X->dims[0] > INT32_MAX || X->dims[2] > 65536 || X->dims[3] > 65536 || ic > 65536 || oc > 65536) return 0;
    if (36.0 * (double)ic * (double)oc * 4 > 16.0 * (1 << 20)) return 0;
    double tiles = (double)((oh + 3) / 4) * (double)((ow + 3) / 4) * 16;
    return tiles <= 1.5 * (double)oh * (double)ow;
}

static void *tptr(nn_plan *p, int t);

typedef struct {
    int t;
} silu_ctx;

/* SiLU in place over the whole buffer of tensor t (a blocked layout's channel padding holds zeros,
 * which SiLU keeps at zero). */
static void run_silu(nn_plan *p, void *c) {
    silu_ctx *k = c;
    vt__silu_inplace(tptr(p, k->t), p->t[k->t].bytes / 4);
}

typedef struct {
    nn_wino *k;
    int n, x, y, scratch, npo;
    nn_wpo po[8];
} wino_ctx;

static void run_wino(nn_plan *p, void *c) {
    wino_ctx *w = c;
    vt__wino_run(w->k, w->n, tptr(p, w->x), tptr(p, w->y), tptr(p, w->scratch), w->npo, w->po);
}

/* Plans convolution node ni as a Winograd step: input x (reordered to nChw8c if needed), output
 * odims in nChw8c, left/top pads pl, folded weights wf and bias bf (both consumed), post-ops wpo
 * (a sum adds tensor sum_t, fused from Add node last_fused); the chain's last value is cur. */
static int conv_wino(bctx *b, int ni, int x, const int64_t *odims, const int64_t *pl, float *wf, float *bf,
                     const nn_wpo *wpo, int nwpo, int sum_t, int last_fused, int cur, int bn_node) {
    nn_plan *p = b->p;
    const nn_node *n = &b->g->nodes[ni];
    const nn_tensor *X = &p->t[x];
    int N = (int)X->dims[0];
    nn_wino *k = vt__wino_new((int)X->dims[1], (int)odims[1], (int)X->dims[2], (int)X->dims[3], (int)odims[2],
                              (int)odims[3], (int)pl[0], (int)pl[1]);
    if (k) vt__wino_set_weights(k, wf, bf, 0, 0);
    free(wf);
    free(bf);
    if (!k) return vt__err(VT_ENOMEM, "out of memory");
    release_weights(b, n, bn_node);
    p->wbytes += (int64_t)vt__wino_weight_bytes(k);
    wino_ctx *c = calloc(1, sizeof *c);
    dnnl_memory_desc_t smd, dmd;
    dnnl_dims_t sdims = {X->dims[0], X->dims[1], X->dims[2], X->dims[3]};
    dnnl_dims_t ddims = {odims[0], odims[1], odims[2], odims[3]};
    if (!c || dnnl_memory_desc_init_by_tag(&smd, 4, sdims, dnnl_f32, dnnl_aBcd8b) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&dmd, 4, ddims, dnnl_f32, dnnl_aBcd8b) != dnnl_success) {
        free(c);
        vt__wino_free(k);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    c->k = k;
    c->n = N;
    c->npo = nwpo;
    memcpy(c->po, wpo, (size_t)nwpo * sizeof *wpo);
    c->x = x;
    int rc = 0;
    if (!dnnl_memory_desc_equal(&smd, &X->md)) rc = c->x = reorder_to(p, x, &smd);
    int64_t sn = (int64_t)vt__wino_scratch(k, N);
    if (rc >= 0) rc = c->y = rt_new(p, 4, odims, &dmd);
    if (rc >= 0) rc = c->scratch = rt_new(p, 1, &sn, NULL);
    if (rc < 0) {
        vt__wino_free(k);
        free(c);
        return rc;
    }
    int y = c->y;
    want_threads(p, (double)vt__nn_numel(4, odims) * (double)X->dims[1] * 9, 1);
    int ts[4] = {c->x, y, c->scratch, sum_t};
    if ((rc = add_c_step(p, run_wino, c, sum_t >= 0 ? 4 : 3, ts)) != 0) {
        vt__wino_free(k); /* add_c_step freed c */
        return rc;
    }
    if (sum_t >= 0 && (rc = fuse_residual(b, ni, p->nsteps - 1, sum_t, y, last_fused)) != 0) return rc;
    p->val2t[cur] = y;
    return 0;
}

/* Contract: plans a Conv node, absorbing a following BatchNormalization, activations
 * (including x*sigmoid(x) and x*hardsigmoid(x) patterns) and one residual Add, as far as the
 * intermediate values have no other consumers. Creates the primitive, reorders the (folded)
 * weights once into the layout oneDNN chose; or hands the convolution to wino.c (wino_fits);
 * on AVX2 a SiLU ends the chain as a step of its own (eltwise.c). */
static int plan_conv(bctx *b, int ni) {
    nn_plan *p = b->p;
    nn_graph *g = b->g;
    const nn_node *n = &g->nodes[ni];
    int x = in_t(b, n, 0), w = in_t(b, n, 1), bi = in_t(b, n, 2);
    if (x < 0 || w < 0) return vt__err(VT_EINVAL, "node '%s' (Conv): missing input", n->name);
    nn_tensor *X = &p->t[x], *W = &p->t[w];
    if (X->is_const) return vt__err(VT_EUNSUPPORTED, "node '%s' (Conv): a constant input is not supported", n->name);
    const float *wd = value_data(b, w);
    if (!wd || W->dtype != NN_FLOAT)
        return vt__err(VT_EUNSUPPORTED, "node '%s' (Conv): weights must be a constant float tensor", n->name);
    int sd = X->rank - 2;
    if (sd < 1 || sd > 3 || W->rank != X->rank)
        return vt__err(VT_EUNSUPPORTED, "node '%s' (Conv): only 1-D, 2-D and 3-D convolutions are supported", n->name);
    int64_t grp = vt__nn_attr_i(n, "group", 1);
    int64_t OC = W->dims[0], IC = X->dims[1], ICg = W->dims[1];
    if (grp < 1 || ICg * grp != IC || OC % grp)
        return vt__err(VT_EINVAL, "node '%s' (Conv): %lld input channels do not match weights and group %lld", n->name,
                       (long long)IC, (long long)grp);
    int64_t k[3], st[3], dil[3], pl[3], pr[3], osp[3];
    int rc = spatial_attr(n, "kernel_shape", sd, 1, k);
    if (!rc) rc = spatial_attr(n, "strides", sd, 1, st);
    if (!rc) rc = spatial_attr(n, "dilations", sd, 1, dil);
    if (rc) return rc;
    for (int i = 0; i < sd; i++) {
        if (vt__nn_attr(n, "kernel_shape") && k[i] != W->dims[2 + i])
            return vt__err(VT_EINVAL, "node '%s' (Conv): kernel_shape does not match the weights", n->name);
        k[i] = W->dims[2 + i];
    }
    rc = conv_pads(n, sd, X->dims + 2, k, st, dil, pl, pr, osp, 0);
    if (rc) return rc;
    int64_t odims[NN_MAXR] = {X->dims[0], OC};
    for (int i = 0; i < sd; i++) odims[2 + i] = osp[i];

    /* weights and bias, BN folded in */
    size_t wn = W->nelem, per_oc = wn / (size_t)OC;
    float *wf = xmalloc(wn * 4), *bf = xmalloc((size_t)OC * 4);
    if (!wf || !bf) {
        free(wf); free(bf);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    memcpy(wf, wd, wn * 4);
    const float *bd = bi >= 0 ? value_data(b, bi) : NULL;
    for (int64_t o = 0; o < OC; o++) bf[o] = bd ? bd[o] : 0.f;
    int cur = n->out[0], last_fused = -1, bn_node = -1;
    if (fusible(b, cur)) {
        const nn_node *c = &g->nodes[b->cons[cur]];
        if (!strcmp(c->op, "BatchNormalization") && c->in[0] == cur && vt__nn_attr_i(c, "training_mode", 0) == 0 &&
            c->nin >= 5 && (c->nout == 1 || c->out[1] < 0)) {
            const float *sc = NULL, *sh = NULL, *mu = NULL, *va = NULL;
            int ts[4];
            int ok = 1;
            for (int i = 0; i < 4; i++) {
                ts[i] = in_t(b, c, 1 + i);
                if (ts[i] < 0 || !p->t[ts[i]].is_const || p->t[ts[i]].nelem != (size_t)OC || p->t[ts[i]].dtype != NN_FLOAT) ok = 0;
            }
            if (ok) {
                sc = p->t[ts[0]].cdata, sh = p->t[ts[1]].cdata, mu = p->t[ts[2]].cdata, va = p->t[ts[3]].cdata;
                float eps = vt__nn_attr_f(c, "epsilon", 1e-5f);
                for (int64_t o = 0; o < OC; o++) {
                    float a = sc[o] / sqrtf(va[o] + eps);
                    for (size_t j = 0; j < per_oc; j++) wf[(size_t)o * per_oc + j] *= a;
                    bf[o] = (bf[o] - mu[o]) * a + sh[o];
                }
                b->absorbed[b->cons[cur]] = 1;
                bn_node = b->cons[cur];
                cur = c->out[0];
            }
        }
    }
    dnnl_post_ops_t po;
    DN(dnnl_post_ops_create(&po));
    int sum_t = -1, nposts = 0;
    nn_wpo wpo[8];
    int nwpo = 0, wpo_ok = 1; /* the same post-ops for a Winograd step, if it can apply them all */
    int split_swish = 0;
    for (;;) {
        if (b->pinned[cur] || g->vals[cur].is_output) break;
        if (b->ncons[cur] == 1) {
            int ci = b->cons[cur];
            const nn_node *c = &g->nodes[ci];
            nn_act a;
            int isact = act_of(b, c, &a);
            if (isact < 0) {
                dnnl_post_ops_destroy(po);
                free(wf); free(bf);
                return isact;
            }
            if (isact && c->in[0] == cur && nposts < 4) {
                rc = add_act_postops(po, &a);
                if (rc) break;
                for (int j = 0; j < a.n; j++) wpo_ok &= wpo_add(wpo, &nwpo, a.alg[j], a.a[j], a.b[j]);
                nposts++;
                b->absorbed[ci] = 1;
                cur = c->out[0];
                continue;
            }
            if (!strcmp(c->op, "Add") && sum_t < 0 && c->nin == 2) {
                int other = c->in[0] == cur ? c->in[1] : c->in[0];
                int ot = other >= 0 ? p->val2t[other] : -1;
                if (c->in[0] != c->in[1] && ot >= 0 && !p->t[ot].is_const && p->t[ot].dtype == NN_FLOAT &&
                    p->t[ot].rank == X->rank && !memcmp(p->t[ot].dims, odims, (size_t)X->rank * sizeof(int64_t))) {
                    DN(dnnl_post_ops_append_sum(po, 1.f));
                    if (nwpo < 8) wpo[nwpo++] = (nn_wpo){NN_WPO_SUM, 0.f, 0.f};
                    else wpo_ok = 0;
                    sum_t = ot;
                    last_fused = ci;
                    nposts++;
                    b->absorbed[ci] = 1;
                    cur = c->out[0];
                    continue;
                }
            }
            break;
        }
        if (b->ncons[cur] == 2) {
            /* x * sigmoid(x) (SiLU) and x * hardsigmoid(x) (HardSwish) */
            int found = 0;
            for (int ci = 0; ci < g->nnodes && !found; ci++) {
                const nn_node *s = &g->nodes[ci];
                if (b->absorbed[ci] || s->nin < 1 || s->in[0] != cur) continue;
                int sig = !strcmp(s->op, "Sigmoid");
                int hsig = !strcmp(s->op, "HardSigmoid") && fabsf(vt__nn_attr_f(s, "alpha", 0.2f) - 1.f / 6) < 1e-6f &&
                           fabsf(vt__nn_attr_f(s, "beta", 0.5f) - 0.5f) < 1e-6f;
                if (!(sig || hsig) || !fusible(b, s->out[0])) continue;
                int mi = b->cons[s->out[0]];
                const nn_node *m = &g->nodes[mi];
                if (strcmp(m->op, "Mul") || m->nin != 2 ||
                    !((m->in[0] == cur && m->in[1] == s->out[0]) || (m->in[1] == cur && m->in[0] == s->out[0])))
                    continue;
                if (sig && vt__nn_avx2_fma()) {
                    /* SiLU as a step of its own after the convolution (eltwise.c): oneDNN's swish
                     * post-op cost about as much as its separate swish pass, 6 of EfficientNet-B0's
                     * 18 ms per image, where eltwise.c takes 3.6 (1 thread, batch 1). Alternating
                     * model bench runs, 1 thread batch 1: 16.7 / 15.1 / 14.8 ms against 19.7 / 19.7 /
                     * 15.9; 2 threads: 9.3 / 9.0 / 9.6 against 11.2 / 13.6 / 11.7. It ends the chain. */
                    split_swish = 1;
                } else {
                    DN(dnnl_post_ops_append_eltwise(po, 1.f, sig ? dnnl_eltwise_swish : dnnl_eltwise_hardswish, 1.f, 0.f));
                    nposts++;
                }
                wpo_ok = 0;
                b->absorbed[ci] = b->absorbed[mi] = 1;
                cur = m->out[0];
                found = 1;
            }
            if (found && split_swish) break;
            if (found) continue;
        }
        break;
    }
    if (rc) {
        dnnl_post_ops_destroy(po);
        free(wf); free(bf);
        return rc;
    }
    if (wpo_ok && grp == 1 && !p->bf16 && wino_fits(X, sd, k, st, dil, pl, pr, odims)) {
        dnnl_post_ops_destroy(po);
        return conv_wino(b, ni, x, odims, pl, wf, bf, wpo, nwpo, sum_t, last_fused, cur, bn_node);
    }
    /* descriptors */
    dnnl_memory_desc_t src_md, w_md, b_md, dst_md;
    int nd = X->rank;
    dnnl_dims_t sdims, ddims, wdims, bdims = {OC};
    for (int i = 0; i < nd; i++) sdims[i] = X->dims[i], ddims[i] = odims[i];
    int wnd = nd;
    if (grp > 1) {
        wnd = nd + 1;
        wdims[0] = grp;
        wdims[1] = OC / grp;
        wdims[2] = ICg;
        for (int i = 0; i < sd; i++) wdims[3 + i] = k[i];
    } else {
        for (int i = 0; i < nd; i++) wdims[i] = W->dims[i];
    }
    DN(dnnl_memory_desc_init_by_tag(&src_md, nd, sdims, dnnl_f32, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag(&w_md, wnd, wdims, dnnl_f32, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag(&b_md, 1, bdims, dnnl_f32, dnnl_a));
    if (sum_t >= 0) dst_md = p->t[sum_t].md;
    else DN(dnnl_memory_desc_init_by_tag(&dst_md, nd, ddims, dnnl_f32, dnnl_format_tag_any));
    if (p->bf16) {
        src_md.data_type = dnnl_bf16;
        w_md.data_type = dnnl_bf16;
    }
    dnnl_dims_t dst_, dl, pdl, pdr;
    for (int i = 0; i < sd; i++) dst_[i] = st[i], dl[i] = dil[i] - 1, pdl[i] = pl[i], pdr[i] = pr[i];
    dnnl_convolution_desc_t cd;
    DN(dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src_md, &w_md,
                                                  &b_md, &dst_md, dst_, dl, pdl, pdr));
    dnnl_primitive_attr_t attr;
    DN(dnnl_primitive_attr_create(&attr));
    dnnl_primitive_attr_set_post_ops(attr, po);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_desc_t pd;
    want_threads(p, (double)vt__nn_numel(nd, odims) * (double)ICg * (double)vt__nn_numel(sd, k), 1);
    dnnl_status_t st2 = dnnl_primitive_desc_create(&pd, &cd, attr, p->eng, NULL);
    if (st2 != dnnl_success && sum_t >= 0) {
        /* the residual's layout was refused: let oneDNN choose and reorder the residual */
        DN(dnnl_memory_desc_init_by_tag(&dst_md, nd, ddims, dnnl_f32, dnnl_format_tag_any));
        DN(dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src_md,
                                                      &w_md, &b_md, &dst_md, dst_, dl, pdl, pdr));
        st2 = dnnl_primitive_desc_create(&pd, &cd, attr, p->eng, NULL);
    }
    if (st2 != dnnl_success && p->bf16) {
        /* no bfloat16 kernel on this CPU: stay in fp32 */
        VT_LOGD("node '%s': no bf16 convolution here, using fp32", n->name);
        src_md.data_type = dnnl_f32;
        w_md.data_type = dnnl_f32;
        DN(dnnl_memory_desc_init_by_tag(&dst_md, nd, ddims, dnnl_f32, dnnl_format_tag_any));
        DN(dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src_md,
                                                      &w_md, &b_md, &dst_md, dst_, dl, pdl, pdr));
        st2 = dnnl_primitive_desc_create(&pd, &cd, attr, p->eng, NULL);
    }
    dnnl_primitive_attr_destroy(attr);
    if (st2 != dnnl_success) {
        free(wf); free(bf);
        return vt__err(VT_EUNSUPPORTED, "node '%s' (Conv): oneDNN has no implementation for this configuration", n->name);
    }
    const dnnl_memory_desc_t *psrc = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *pw = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *pdst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    /* weights: plain folded copy -> chosen layout, once */
    dnnl_memory_desc_t wplain;
    DN(dnnl_memory_desc_init_by_tag(&wplain, wnd, wdims, dnnl_f32,
                                    wnd == 3 ? dnnl_abc : wnd == 4 ? dnnl_abcd : wnd == 5 ? dnnl_abcde : dnnl_abcdef));
    size_t wbytes = dnnl_memory_desc_get_size(pw);
    void *wbuf = NULL;
    if (posix_memalign(&wbuf, 64, wbytes ? wbytes : 64)) wbuf = NULL;
    if (!wbuf) {
        free(wf); free(bf);
        dnnl_primitive_desc_destroy(pd);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    {
        dnnl_memory_t m0, m1;
        dnnl_primitive_desc_t rpd;
        dnnl_primitive_t rp;
        DN(dnnl_memory_create(&m0, &wplain, p->eng, wf));
        DN(dnnl_memory_create(&m1, pw, p->eng, wbuf));
        DN(dnnl_reorder_primitive_desc_create(&rpd, &wplain, p->eng, pw, p->eng, NULL));
        DN(dnnl_primitive_create(&rp, rpd));
        dnnl_primitive_desc_destroy(rpd);
        dnnl_exec_arg_t ea[2] = {{DNNL_ARG_FROM, m0}, {DNNL_ARG_TO, m1}};
        DN(dnnl_primitive_execute(rp, p->stream, 2, ea));
        dnnl_stream_wait(p->stream);
        dnnl_primitive_destroy(rp);
        dnnl_memory_destroy(m0);
        dnnl_memory_destroy(m1);
    }
    free(wf);
    release_weights(b, n, bn_node);
    int wt = const_new(p, NN_FLOAT, wnd, (const int64_t *)wdims, wbuf, 1);
    if (wt < 0) {
        free(bf);
        dnnl_primitive_desc_destroy(pd);
        return wt;
    }
    p->t[wt].md = *pw;
    p->wbytes += (int64_t)wbytes;
    int bt = const_new(p, NN_FLOAT, 1, (const int64_t *)bdims, bf, 1);
    if (bt < 0) {
        dnnl_primitive_desc_destroy(pd);
        return bt;
    }
    /* source layout */
    int xs = x;
    if (!dnnl_memory_desc_equal(psrc, &p->t[x].md)) {
        xs = reorder_to(p, x, psrc);
        if (xs < 0) {
            dnnl_primitive_desc_destroy(pd);
            return xs;
        }
    }
    dnnl_memory_desc_t dmd = *pdst;
    int y = rt_new(p, nd, odims, &dmd);
    if (y < 0) {
        dnnl_primitive_desc_destroy(pd);
        return y;
    }
    nn_step *s = new_step(p);
    if (!s) {
        dnnl_primitive_desc_destroy(pd);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    int sidx = p->nsteps - 1;
    rc = prim_from_pd(pd, &s->prim);
    if (rc) return rc;
    s = &p->steps[sidx];
    step_arg(s, DNNL_ARG_SRC, xs);
    step_arg(s, DNNL_ARG_WEIGHTS, wt);
    step_arg(s, DNNL_ARG_BIAS, bt);
    step_arg(s, DNNL_ARG_DST, y);
    if (sum_t >= 0 && (rc = fuse_residual(b, ni, sidx, sum_t, y, last_fused)) != 0) return rc;
    if (split_swish) {
        silu_ctx *sc = malloc(sizeof *sc);
        if (!sc) return vt__err(VT_ENOMEM, "out of memory");
        sc->t = y;
        want_threads(p, (double)p->t[y].nelem, 0);
        if ((rc = add_c_step(p, run_silu, sc, 1, &y)) != 0) return rc;
    }
    p->val2t[cur] = y;
    return 0;
}

/* ---------------------------------------------------------------- batch norm, pooling */

static int plan_bn(bctx *b, int ni) {
    nn_plan *p = b->p;
    const nn_node *n = &b->g->nodes[ni];
    if (vt__nn_attr_i(n, "training_mode", 0))
        return vt__err(VT_EUNSUPPORTED, "node '%s' (BatchNormalization): training_mode=1 is not supported", n->name);
    for (int i = 1; i < n->nout; i++)
        if (n->out[i] >= 0)
            return vt__err(VT_EUNSUPPORTED, "node '%s' (BatchNormalization): the running-statistics outputs are not supported", n->name);
    int x = in_t(b, n, 0);
    if (x < 0 || n->nin < 5) return vt__err(VT_EINVAL, "node '%s' (BatchNormalization): missing inputs", n->name);
    nn_tensor *X = &p->t[x];
    if (X->is_const || X->rank < 2 || X->rank > 5)
        return vt__err(VT_EUNSUPPORTED, "node '%s' (BatchNormalization): input must be a runtime tensor of rank 2 to 5", n->name);
    int64_t C = X->dims[1];
    int pt[4];
    for (int i = 0; i < 4; i++) {
        int t = in_t(b, n, 1 + i);
        const float *d = t >= 0 ? value_data(b, t) : NULL;
        if (!d || p->t[t].nelem != (size_t)C || p->t[t].dtype != NN_FLOAT)
            return vt__err(VT_EUNSUPPORTED, "node '%s' (BatchNormalization): parameters must be constant float vectors of %lld",
                           n->name, (long long)C);
        float *cp = xmalloc((size_t)C * 4);
        if (!cp) return vt__err(VT_ENOMEM, "out of memory");
        memcpy(cp, d, (size_t)C * 4);
        pt[i] = const_new(p, NN_FLOAT, 1, &C, cp, 1);
        if (pt[i] < 0) return pt[i];
    }
    unsigned flags = dnnl_use_global_stats | dnnl_use_scale | dnnl_use_shift;
    int outv = n->out[0];
    if (fusible(b, outv)) {
        const nn_node *c = &b->g->nodes[b->cons[outv]];
        if (!strcmp(c->op, "Relu") && c->in[0] == outv) {
            flags |= dnnl_fuse_norm_relu;
            b->absorbed[b->cons[outv]] = 1;
            outv = c->out[0];
        }
    }
    dnnl_batch_normalization_desc_t bd;
    DN(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_inference, &p->t[x].md,
                                                  vt__nn_attr_f(n, "epsilon", 1e-5f), flags));
    dnnl_primitive_desc_t pd;
    want_threads(p, (double)p->t[x].nelem, 0);
    DN(dnnl_primitive_desc_create(&pd, &bd, NULL, p->eng, NULL));
    nn_step *s;
    int y = add_prim_out(p, pd, p->t[x].rank, p->t[x].dims, &p->t[x].md, &s);
    if (y < 0) return y;
    step_arg(s, DNNL_ARG_SRC, x);
    step_arg(s, DNNL_ARG_SCALE, pt[0]);
    step_arg(s, DNNL_ARG_SHIFT, pt[1]);
    step_arg(s, DNNL_ARG_MEAN, pt[2]);
    step_arg(s, DNNL_ARG_VARIANCE, pt[3]);
    step_arg(s, DNNL_ARG_DST, y);
    p->val2t[outv] = y;
    return 0;
}

static int plan_pool(bctx *b, int ni) {
    nn_plan *p = b->p;
    const nn_node *n = &b->g->nodes[ni];
    int x = in_t(b, n, 0);
    if (x < 0) return vt__err(VT_EINVAL, "node '%s': missing input", n->name);
    nn_tensor *X = &p->t[x];
    int sd = X->rank - 2;
    if (X->is_const || sd < 1 || sd > 3 || X->dtype != NN_FLOAT)
        return vt__err(VT_EUNSUPPORTED, "node '%s' (%s): input must be a runtime float tensor of rank 3 to 5", n->name, n->op);
    int global = !strncmp(n->op, "Global", 6);
    int is_max = strstr(n->op, "Max") != NULL;
    int64_t k[3], st[3], dil[3], pl[3], pr[3], osp[3];
    if (global) {
        for (int i = 0; i < sd; i++) k[i] = X->dims[2 + i], st[i] = 1, dil[i] = 1, pl[i] = pr[i] = 0, osp[i] = 1;
    } else {
        if (n->nout > 1 && n->out[1] >= 0)
            return vt__err(VT_EUNSUPPORTED, "node '%s' (MaxPool): the Indices output is not supported", n->name);
        if (vt__nn_attr_i(n, "storage_order", 0))
            return vt__err(VT_EUNSUPPORTED, "node '%s' (MaxPool): storage_order=1 is not supported", n->name);
        const nn_attr *ks = vt__nn_attr(n, "kernel_shape");
        if (!ks) return vt__err(VT_EINVAL, "node '%s' (%s): kernel_shape is required", n->name, n->op);
        int rc = spatial_attr(n, "kernel_shape", sd, 1, k);
        if (!rc) rc = spatial_attr(n, "strides", sd, 1, st);
        if (!rc) rc = spatial_attr(n, "dilations", sd, 1, dil);
        if (!rc) rc = conv_pads(n, sd, X->dims + 2, k, st, dil, pl, pr, osp, (int)vt__nn_attr_i(n, "ceil_mode", 0));
        if (rc) return rc;
    }
    dnnl_alg_kind_t alg = is_max ? dnnl_pooling_max
                                 : vt__nn_attr_i(n, "count_include_pad", 0) ? dnnl_pooling_avg_include_padding
                                                                             : dnnl_pooling_avg_exclude_padding;
    int64_t odims[NN_MAXR] = {X->dims[0], X->dims[1]};
    for (int i = 0; i < sd; i++) odims[2 + i] = osp[i];
    dnnl_dims_t dd, ds, dk, ddl, dpl, dpr;
    for (int i = 0; i < X->rank; i++) dd[i] = odims[i];
    for (int i = 0; i < sd; i++) ds[i] = st[i], dk[i] = k[i], ddl[i] = dil[i] - 1, dpl[i] = pl[i], dpr[i] = pr[i];
    dnnl_memory_desc_t dmd;
    DN(dnnl_memory_desc_init_by_tag(&dmd, X->rank, dd, dnnl_f32, dnnl_format_tag_any));
    dnnl_pooling_v2_desc_t pdsc;
    DN(dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference, alg, &p->t[x].md, &dmd, ds, dk, ddl, dpl, dpr));
    dnnl_primitive_desc_t pd;
    want_threads(p, (double)p->t[x].nelem, 0);
    if (dnnl_primitive_desc_create(&pd, &pdsc, NULL, p->eng, NULL) != dnnl_success)
        return vt__err(VT_EUNSUPPORTED, "node '%s' (%s): oneDNN has no implementation for this configuration", n->name, n->op);
    dnnl_memory_desc_t omd = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    nn_step *s;
    int y = add_prim_out(p, pd, X->rank, odims, &omd, &s);
    if (y < 0) return y;
    step_arg(s, DNNL_ARG_SRC, x);
    step_arg(s, DNNL_ARG_DST, y);
    return set_out(b, n, 0, y);
}

/* ---------------------------------------------------------------- binary */

typedef struct {
    char op;
    int a, b, y;
} bin_ctx;

static void run_bin(nn_plan *p, void *c) {
    bin_ctx *k = c;
    nn_tensor *A = &p->t[k->a], *B = &p->t[k->b], *Y = &p->t[k->y];
    const void *ad = A->is_const ? A->cdata : (const void *)(p->arena + p->t[root_of(p, k->a)].off);
    const void *bd = B->is_const ? B->cdata : (const void *)(p->arena + p->t[root_of(p, k->b)].off);
    vt__nn_binary_ref(NN_FLOAT, k->op, ad, A->rank, A->dims, bd, B->rank, B->dims, p->arena + p->t[root_of(p, k->y)].off,
                      Y->rank, Y->dims);
}

static int plan_binary(bctx *b, int ni) {
    nn_plan *p = b->p;
    const nn_node *n = &b->g->nodes[ni];
    char op = !strcmp(n->op, "Add") ? '+' : !strcmp(n->op, "Sub") ? '-' : !strcmp(n->op, "Mul") ? '*' : '/';
    int a = in_t(b, n, 0), c = in_t(b, n, 1);
    if (a < 0 || c < 0) return vt__err(VT_EINVAL, "node '%s' (%s): missing input", n->name, n->op);
    nn_tensor *A = &p->t[a], *B = &p->t[c];
    if (A->dtype != B->dtype) return vt__err(VT_EINVAL, "node '%s' (%s): input types differ", n->name, n->op);
    int ro;
    int64_t od[NN_MAXR];
    if (vt__nn_broadcast(A->rank, A->dims, B->rank, B->dims, &ro, od))
        return vt__err(VT_EINVAL, "node '%s' (%s): shapes do not broadcast", n->name, n->op);
    if (shape_too_big(ro, od)) return vt__err(VT_ETOOBIG, "node '%s' (%s): output too large", n->name, n->op);
    size_t on = vt__nn_numel(ro, od);
    if (A->is_const && B->is_const) {
        size_t es = A->dtype == NN_FLOAT ? 4 : 8;
        void *o = xmalloc(on * es);
        if (!o) return vt__err(VT_ENOMEM, "out of memory");
        vt__nn_binary_ref(A->dtype, op, A->cdata, A->rank, A->dims, B->cdata, B->rank, B->dims, o, ro, od);
        return set_out(b, n, 0, const_new(p, A->dtype, ro, od, o, 1));
    }
    if (A->dtype != NN_FLOAT) return vt__err(VT_EUNSUPPORTED, "node '%s' (%s): integer runtime tensors", n->name, n->op);
    /* pad ranks */
    int64_t da[NN_MAXR], db[NN_MAXR];
    for (int i = 0; i < ro; i++) {
        int ia = i - (ro - A->rank), ib = i - (ro - B->rank);
        da[i] = ia >= 0 ? A->dims[ia] : 1;
        db[i] = ib >= 0 ? B->dims[ib] : 1;
    }
    int full_a = !memcmp(da, od, (size_t)ro * 8), full_b = !memcmp(db, od, (size_t)ro * 8);
    int s0 = a, s1 = c;
    int64_t *d1 = db;
    if (!full_a && full_b && (op == '+' || op == '*')) {
        s0 = c, s1 = a, d1 = da;
        full_a = 1;
        full_b = !memcmp(da, od, (size_t)ro * 8);
    }
    int use_dnnl = full_a && ro >= 1 && ro <= 6 && on > 0 && !p->t[s0].is_const;
    if (!use_dnnl) {
        int pa = to_plain(p, a), pb = to_plain(p, c);
        if (pa < 0) return pa;
        if (pb < 0) return pb;
        int y = rt_new(p, ro, od, NULL);
        if (y < 0) return y;
        bin_ctx *k = malloc(sizeof *k);
        if (!k) return vt__err(VT_ENOMEM, "out of memory");
        *k = (bin_ctx){op, pa, pb, y};
        int ts[3] = {pa, pb, y};
        int rc = add_c_step(p, run_bin, k, 3, ts);
        if (rc) return rc;
        return set_out(b, n, 0, y);
    }
    dnnl_memory_desc_t m0, m1;
    if (p->t[s0].rank == ro) m0 = p->t[s0].md;
    else {
        s0 = to_plain(p, s0);
        if (s0 < 0) return s0;
        if (md_plain(&m0, ro, od)) return VT_EINTERNAL;
    }
    if (full_b && !full_a) full_b = 0;
    if (full_b && p->t[s1].rank == ro) {
        if (!dnnl_memory_desc_equal(&p->t[s1].md, &m0)) {
            s1 = reorder_to(p, s1, &m0);
            if (s1 < 0) return s1;
        }
        m1 = m0;
    } else if (!p->t[s1].is_const && p->t[s1].rank == ro && !is_plain(&p->t[s1])) {
        /* a broadcast operand in a blocked layout (e.g. N,C,1,1 from a squeeze-excite branch):
         * oneDNN's optimised binary wants it in the layout family of src0, so keep it */
        m1 = p->t[s1].md;
    } else {
        s1 = to_plain(p, s1);
        if (s1 < 0) return s1;
        if (md_plain(&m1, ro, d1)) return VT_EINTERNAL;
    }
    dnnl_alg_kind_t alg = op == '+' ? dnnl_binary_add : op == '-' ? dnnl_binary_sub : op == '*' ? dnnl_binary_mul : dnnl_binary_div;
    /* a following activation becomes a post-op */
    dnnl_primitive_attr_t attr;
    DN(dnnl_primitive_attr_create(&attr));
    int outv = n->out[0];
    if (fusible(b, outv)) {
        const nn_node *cn = &b->g->nodes[b->cons[outv]];
        nn_act ac;
        int isact = act_of(b, cn, &ac);
        if (isact < 0) {
            dnnl_primitive_attr_destroy(attr);
            return isact;
        }
        if (isact && cn->in[0] == outv) {
            dnnl_post_ops_t po;
            DN(dnnl_post_ops_create(&po));
            add_act_postops(po, &ac);
            dnnl_primitive_attr_set_post_ops(attr, po);
            dnnl_post_ops_destroy(po);
            b->absorbed[b->cons[outv]] = 1;
            outv = cn->out[0];
        }
    }
    dnnl_binary_desc_t bd;
    DN(dnnl_binary_desc_init(&bd, alg, &m0, &m1, &m0));
    dnnl_primitive_desc_t pd;
    want_threads(p, (double)on, 0);
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, &bd, attr, p->eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return vt__err(VT_EUNSUPPORTED, "node '%s' (%s): no oneDNN implementation", n->name, n->op);
    /* the constant operand needs a memory with the padded-rank layout */
    if (p->t[s1].is_const && p->t[s1].rank != ro) {
        int c2 = const_new(p, NN_FLOAT, ro, d1, p->t[s1].cdata, 0);
        if (c2 < 0) {
            dnnl_primitive_desc_destroy(pd);
            return c2;
        }
        s1 = c2;
    } else if (!p->t[s1].is_const && p->t[s1].rank != ro) {
        int c2 = alias_new(p, s1, ro, d1, &m1);
        if (c2 < 0) {
            dnnl_primitive_desc_destroy(pd);
            return c2;
        }
        s1 = c2;
    }
    if (p->t[s0].rank != ro) {
        int c2 = alias_new(p, s0, ro, od, &m0);
        if (c2 < 0) {
            dnnl_primitive_desc_destroy(pd);
            return c2;
        }
        s0 = c2;
    }
    nn_step *s;
    int y = add_prim_out(p, pd, ro, od, &m0, &s);
    if (y < 0) return y;
    step_arg(s, DNNL_ARG_SRC_0, s0);
    step_arg(s, DNNL_ARG_SRC_1, s1);
    step_arg(s, DNNL_ARG_DST, y);
    p->val2t[outv] = y;
    return 0;
}

/* ---------------------------------------------------------------- concat */

/* Channel concatenation of dense tensors that share one layout (plain or channel-blocked with
 * every input's channel count a multiple of the block): per image, the inputs are contiguous
 * chunks of the output, so it is one memcpy per image and input. */
typedef struct {
    int n;
    int src[64];
    size_t chunk[64]; /* bytes per image of each input */
    size_t outer;     /* images */
    int y;
} cat_ctx;

static void run_cat(nn_plan *p, void *c) {
    cat_ctx *k = c;
    size_t tot = 0;
    for (int i = 0; i < k->n; i++) tot += k->chunk[i];
    uint8_t *out = p->arena + p->t[root_of(p, k->y)].off;
    for (size_t o = 0; o < k->outer; o++) {
        uint8_t *w = out + o * tot;
        for (int i = 0; i < k->n; i++) {
            const uint8_t *src = p->t[k->src[i]].is_const ? (const uint8_t *)p->t[k->src[i]].cdata
                                                           : p->arena + p->t[root_of(p, k->src[i])].off;
            memcpy(w, src + o * k->chunk[i], k->chunk[i]);
            w += k->chunk[i];
        }
    }
}

/* The channel block size of md when it is dense plain (1) or dense aBcd..Xb (X), else 0. */
static int channel_block(const dnnl_memory_desc_t *md) {
    dnnl_memory_desc_t ref;
    dnnl_dims_t d;
    for (int i = 0; i < md->ndims; i++) d[i] = md->dims[i];
    static const dnnl_format_tag_t t8[6] = {0, 0, 0, dnnl_aBc8b, dnnl_aBcd8b, dnnl_aBcde8b};
    static const dnnl_format_tag_t t16[6] = {0, 0, 0, dnnl_aBc16b, dnnl_aBcd16b, dnnl_aBcde16b};
    static const dnnl_format_tag_t tp[6] = {0, dnnl_a, dnnl_ab, dnnl_abc, dnnl_abcd, dnnl_abcde};
    if (md->ndims < 1 || md->ndims > 5) return 0;
    if (dnnl_memory_desc_init_by_tag(&ref, md->ndims, d, dnnl_f32, tp[md->ndims]) == dnnl_success &&
        dnnl_memory_desc_equal(&ref, md))
        return 1;
    if (md->ndims < 3) return 0;
    if (dnnl_memory_desc_init_by_tag(&ref, md->ndims, d, dnnl_f32, t8[md->ndims]) == dnnl_success &&
        dnnl_memory_desc_equal(&ref, md))
        return 8;
    if (dnnl_memory_desc_init_by_tag(&ref, md->ndims, d, dnnl_f32, t16[md->ndims]) == dnnl_success &&
        dnnl_memory_desc_equal(&ref, md))
        return 16;
    return 0;
}

static int plan_concat(bctx *b, int ni) {
    nn_plan *p = b->p;
    const nn_node *n = &b->g->nodes[ni];
    if (n->nin < 1) return vt__err(VT_EINVAL, "node '%s' (Concat): no inputs", n->name);
    int t0 = in_t(b, n, 0);
    if (t0 < 0) return vt__err(VT_EINVAL, "node '%s' (Concat): missing input", n->name);
    int r = p->t[t0].rank, allc = 1, dt = p->t[t0].dtype;
    int64_t ax = vt__nn_attr_i(n, "axis", 1);
    if (ax < 0) ax += r;
    if (ax < 0 || ax >= r) return vt__err(VT_EINVAL, "node '%s' (Concat): axis out of range", n->name);
    int64_t od[NN_MAXR];
    memcpy(od, p->t[t0].dims, (size_t)r * 8);
    od[ax] = 0;
    int ts[64];
    if (n->nin > 64) return vt__err(VT_EUNSUPPORTED, "node '%s' (Concat): more than 64 inputs", n->name);
    for (int i = 0; i < n->nin; i++) {
        int t = in_t(b, n, i);
        if (t < 0 || p->t[t].rank != r || p->t[t].dtype != dt)
            return vt__err(VT_EINVAL, "node '%s' (Concat): inputs differ in rank or type", n->name);
        for (int d = 0; d < r; d++)
            if (d != ax && p->t[t].dims[d] != od[d])
                return vt__err(VT_EINVAL, "node '%s' (Concat): input shapes differ outside the axis", n->name);
        od[ax] += p->t[t].dims[ax];
        if (!p->t[t].is_const) allc = 0;
        ts[i] = t;
    }
    if (shape_too_big(r, od)) return vt__err(VT_ETOOBIG, "node '%s' (Concat): output too large", n->name);
    if (allc) {
        size_t es = dt == NN_FLOAT ? 4 : 8, outer = vt__nn_numel((int)ax, od);
        uint8_t *o = xmalloc(vt__nn_numel(r, od) * es), *w = o;
        if (!o) return vt__err(VT_ENOMEM, "out of memory");
        for (size_t j = 0; j < outer; j++)
            for (int i = 0; i < n->nin; i++) {
                size_t chunk = vt__nn_numel(r - (int)ax, p->t[ts[i]].dims + ax) * es;
                memcpy(w, (uint8_t *)p->t[ts[i]].cdata + j * chunk, chunk);
                w += chunk;
            }
        return set_out(b, n, 0, const_new(p, dt, r, od, o, 1));
    }
    if (dt != NN_FLOAT) return vt__err(VT_EUNSUPPORTED, "node '%s' (Concat): integer runtime tensors", n->name);
    if (ax == 1 && r >= 2 && r <= 5) {
        int blk = -1, ok = 1;
        for (int i = 0; i < n->nin && ok; i++) {
            int cb = p->t[ts[i]].is_const ? 1 : channel_block(&p->t[ts[i]].md);
            if (cb == 0 || (blk >= 0 && cb != blk) || p->t[ts[i]].dims[1] % cb) ok = 0;
            blk = cb;
        }
        if (ok && blk >= 1) {
            dnnl_memory_desc_t omd;
            if (blk == 1) {
                if (md_plain(&omd, r, od)) return VT_EINTERNAL;
            } else {
                dnnl_dims_t dd;
                for (int d = 0; d < r; d++) dd[d] = od[d];
                dnnl_format_tag_t tag = blk == 8 ? (r == 3 ? dnnl_aBc8b : r == 4 ? dnnl_aBcd8b : dnnl_aBcde8b)
                                                 : (r == 3 ? dnnl_aBc16b : r == 4 ? dnnl_aBcd16b : dnnl_aBcde16b);
                DN(dnnl_memory_desc_init_by_tag(&omd, r, dd, dnnl_f32, tag));
            }
            cat_ctx *k = calloc(1, sizeof *k);
            if (!k) return vt__err(VT_ENOMEM, "out of memory");
            k->n = n->nin;
            k->outer = (size_t)od[0];
            for (int i = 0; i < n->nin; i++) {
                k->src[i] = ts[i];
                k->chunk[i] = od[0] ? p->t[ts[i]].nelem / (size_t)od[0] * 4 : 0;
            }
            k->y = rt_new(p, r, od, &omd);
            if (k->y < 0) {
                int rc = k->y;
                free(k);
                return rc;
            }
            int y = k->y;
            nn_step *s = new_step(p);
            if (!s) {
                free(k);
                return vt__err(VT_ENOMEM, "out of memory");
            }
            s->fn = run_cat;
            s->ctx = k;
            /* liveness: every source and the output */
            for (int i = 0; i < n->nin && s->nargs < 70; i++) step_arg(s, -1, ts[i]);
            step_arg(s, -1, y);
            return set_out(b, n, 0, y);
        }
    }
    dnnl_memory_desc_t mds[64], dmd;
    int nsrc = 0, srcs[64];
    for (int i = 0; i < n->nin; i++) {
        if (p->t[ts[i]].nelem == 0) continue;
        mds[nsrc] = p->t[ts[i]].md;
        srcs[nsrc++] = ts[i];
    }
    dnnl_dims_t dd;
    for (int d = 0; d < r; d++) dd[d] = od[d];
    DN(dnnl_memory_desc_init_by_tag(&dmd, r, dd, dnnl_f32, dnnl_format_tag_any));
    dnnl_primitive_desc_t pd;
    want_threads(p, (double)vt__nn_numel(r, od), 0);
    if (dnnl_concat_primitive_desc_create(&pd, &dmd, nsrc, (int)ax, mds, NULL, p->eng) != dnnl_success)
        return vt__err(VT_EUNSUPPORTED, "node '%s' (Concat): no oneDNN implementation", n->name);
    dnnl_memory_desc_t omd = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    nn_step *s;
    int y = add_prim_out(p, pd, r, od, &omd, &s);
    if (y < 0) return y;
    for (int i = 0; i < nsrc; i++) step_arg(s, DNNL_ARG_MULTIPLE_SRC + i, srcs[i]);
    step_arg(s, DNNL_ARG_DST, y);
    return set_out(b, n, 0, y);
}

/* ---------------------------------------------------------------- shape-only and small ops */

/* Output of a reshaping op: constant when the input is, else an alias of the plain input. */
static int reshaped(bctx *b, int x, int rank, const int64_t *dims) {
    nn_plan *p = b->p;
    if (vt__nn_numel(rank, dims) != p->t[x].nelem) return vt__err(VT_EINVAL, "reshape changes the number of elements");
    if (p->t[x].is_const) return const_new(p, p->t[x].dtype, rank, dims, p->t[x].cdata, 0);
    int pl = to_plain(p, x);
    if (pl < 0) return pl;
    dnnl_memory_desc_t md;
    if (md_plain(&md, rank, dims)) return VT_EINTERNAL;
    return alias_new(p, pl, rank, dims, &md);
}

typedef struct {
    int x, y;
    int rank;
    int64_t dims[NN_MAXR], perm[NN_MAXR];
    int axis;
    int64_t *idx;
    size_t nidx;
    size_t outer, n, inner;
    int reduce[NN_MAXR];
    int64_t start[NN_MAXR], step[NN_MAXR], odims[NN_MAXR];
    int lp; /* LpNormalization: p (1 or 2) */
    int kind;
} small_ctx;

static void *tptr(nn_plan *p, int t) {
    return p->t[t].is_const ? p->t[t].cdata : (void *)(p->arena + p->t[root_of(p, t)].off);
}

static void run_small(nn_plan *p, void *c) {
    small_ctx *k = c;
    void *in = tptr(p, k->x), *out = tptr(p, k->y);
    switch (k->kind) {
    case 0: vt__nn_transpose_ref(4, in, k->rank, k->dims, k->perm, out); break;
    case 1: vt__nn_gather_ref(4, in, k->rank, k->dims, k->axis, k->idx, k->nidx, out); break;
    case 2: vt__nn_softmax_ref(in, out, k->outer, k->n, k->inner); break;
    case 3: vt__nn_reduce_mean_ref(in, k->rank, k->dims, k->reduce, out); break;
    case 4: vt__nn_slice_ref(4, in, k->rank, k->dims, k->start, k->step, k->odims, out); break;
    case 5: vt__nn_lpnorm_ref(in, out, k->outer, k->n, k->inner, k->lp); break;
    }
}

static void free_small(void *c) {
    small_ctx *k = c;
    free(k->idx);
}

/* Either evaluates a small op now (constant input) or emits a C step over plain data. */
static int small_op(bctx *b, const nn_node *n, small_ctx *k, int rank, const int64_t *od) {
    nn_plan *p = b->p;
    nn_tensor *X = &p->t[k->x];
    size_t es = X->dtype == NN_FLOAT ? 4 : 8;
    if (shape_too_big(rank, od)) {
        free_small(k);
        free(k);
        return vt__err(VT_ETOOBIG, "node '%s' (%s): output too large", n->name, n->op);
    }
    if (X->is_const) {
        void *o = xmalloc(vt__nn_numel(rank, od) * es);
        if (!o) {
            free_small(k);
            free(k);
            return vt__err(VT_ENOMEM, "out of memory");
        }
        switch (k->kind) {
        case 0: vt__nn_transpose_ref(es, X->cdata, k->rank, k->dims, k->perm, o); break;
        case 1: vt__nn_gather_ref(es, X->cdata, k->rank, k->dims, k->axis, k->idx, k->nidx, o); break;
        case 4: vt__nn_slice_ref(es, X->cdata, k->rank, k->dims, k->start, k->step, k->odims, o); break;
        default:
            if (X->dtype != NN_FLOAT) {
                free(o);
                free_small(k);
                free(k);
                return vt__err(VT_EUNSUPPORTED, "node '%s' (%s): integer input", n->name, n->op);
            }
            if (k->kind == 2) vt__nn_softmax_ref(X->cdata, o, k->outer, k->n, k->inner);
            else if (k->kind == 5) vt__nn_lpnorm_ref(X->cdata, o, k->outer, k->n, k->inner, k->lp);
            else vt__nn_reduce_mean_ref(X->cdata, k->rank, k->dims, k->reduce, o);
        }
        free_small(k);
        free(k);
        return set_out(b, n, 0, const_new(p, X->dtype, rank, od, o, 1));
    }
    k->x = to_plain(p, k->x);
    if (k->x < 0) {
        int rc = k->x;
        free_small(k);
        free(k);
        return rc;
    }
    k->y = rt_new(p, rank, od, NULL);
    if (k->y < 0) {
        int rc = k->y;
        free_small(k);
        free(k);
        return rc;
    }
    int ts[2] = {k->x, k->y};
    int y = k->y;
    int rc = add_c_step(p, run_small, k, 2, ts);
    if (rc) return rc;
    return set_out(b, n, 0, y);
}

static int norm_axis(int64_t *a, int rank) {
    if (*a < 0) *a += rank;
    return *a >= 0 && *a < rank ? 0 : -1;
}

/* Integer list from attribute `name` (older opsets) or from input `idx` (newer ones). */
static int axes_of(bctx *b, const nn_node *n, const char *name, int idx, int64_t *axes, int *cnt) {
    const nn_attr *a = vt__nn_attr(n, name);
    *cnt = -1;
    if (a && a->kind == NA_INTS) {
        if (a->n > NN_MAXR) return vt__err(VT_EINVAL, "node '%s': too many %s", n->name, name);
        memcpy(axes, a->ints, (size_t)a->n * 8);
        *cnt = a->n;
        return 0;
    }
    if (in_t(b, n, idx) >= 0) {
        const int64_t *v;
        size_t c;
        int rc = const_ints(b, n, idx, &v, &c);
        if (rc) return rc;
        if (c > NN_MAXR) return vt__err(VT_EINVAL, "node '%s': too many %s", n->name, name);
        memcpy(axes, v, c * 8);
        *cnt = (int)c;
    }
    return 0;
}

static int plan_misc(bctx *b, int ni) {
    nn_plan *p = b->p;
    nn_graph *g = b->g;
    const nn_node *n = &g->nodes[ni];
    const char *op = n->op;
    if (!strcmp(op, "Constant")) {
        const nn_attr *a = n->nattr ? &n->attrs[0] : NULL;
        if (!a) return vt__err(VT_EINVAL, "node '%s' (Constant): no value", n->name);
        if (a->kind == NA_TENSOR) {
            nn_value *v = &g->vals[a->tensor];
            return set_out(b, n, 0, const_new(p, v->dtype, v->rank, v->dims, v->data, 0));
        }
        if (!strcmp(a->name, "value_float") || !strcmp(a->name, "value_int")) {
            void *d = xmalloc(8);
            if (!d) return vt__err(VT_ENOMEM, "out of memory");
            if (a->kind == NA_FLOAT) *(float *)d = a->f;
            else *(int64_t *)d = a->i;
            return set_out(b, n, 0, const_new(p, a->kind == NA_FLOAT ? NN_FLOAT : NN_INT64, 0, NULL, d, 1));
        }
        if (a->kind == NA_FLOATS || a->kind == NA_INTS) {
            int64_t d0 = a->n;
            void *d = xmalloc((size_t)a->n * 8);
            if (!d) return vt__err(VT_ENOMEM, "out of memory");
            if (a->kind == NA_FLOATS) memcpy(d, a->floats, (size_t)a->n * 4);
            else memcpy(d, a->ints, (size_t)a->n * 8);
            return set_out(b, n, 0, const_new(p, a->kind == NA_FLOATS ? NN_FLOAT : NN_INT64, 1, &d0, d, 1));
        }
        return vt__err(VT_EUNSUPPORTED, "node '%s' (Constant): attribute %s is not supported", n->name, a->name);
    }
    int x = in_t(b, n, 0);
    if (x < 0) return vt__err(VT_EINVAL, "node '%s' (%s): missing input", n->name, op);
    nn_tensor *X = &p->t[x];
    int r = X->rank;
    int64_t od[NN_MAXR];
    if (!strcmp(op, "Identity") || !strcmp(op, "Dropout")) {
        if (!strcmp(op, "Dropout")) {
            if (n->nout > 1 && n->out[1] >= 0)
                return vt__err(VT_EUNSUPPORTED, "node '%s' (Dropout): the mask output is not supported", n->name);
            int tm = in_t(b, n, 2);
            if (tm >= 0 && (!p->t[tm].is_const || *(int64_t *)p->t[tm].cdata))
                return vt__err(VT_EUNSUPPORTED, "node '%s' (Dropout): training mode is not supported", n->name);
        }
        if (X->is_const) return set_out(b, n, 0, const_new(p, X->dtype, r, X->dims, X->cdata, 0));
        return set_out(b, n, 0, alias_new(p, x, r, X->dims, &X->md));
    }
    if (!strcmp(op, "Cast")) {
        int64_t to = vt__nn_attr_i(n, "to", 1);
        int tdt = to == NN_FLOAT ? NN_FLOAT : (to == NN_INT64 || to == NN_INT32 || to == NN_INT8 || to == NN_UINT8 || to == 4 || to == 5 || to == NN_BOOL) ? NN_INT64 : 0;
        if (!tdt) return vt__err(VT_EUNSUPPORTED, "node '%s' (Cast): target type %lld is not supported", n->name, (long long)to);
        if (tdt == X->dtype) {
            if (X->is_const) return set_out(b, n, 0, const_new(p, X->dtype, r, X->dims, X->cdata, 0));
            return set_out(b, n, 0, alias_new(p, x, r, X->dims, &X->md));
        }
        if (!X->is_const) return vt__err(VT_EUNSUPPORTED, "node '%s' (Cast): runtime float to integer", n->name);
        void *o = xmalloc(X->nelem * (tdt == NN_FLOAT ? 4 : 8));
        if (!o) return vt__err(VT_ENOMEM, "out of memory");
        for (size_t i = 0; i < X->nelem; i++) {
            if (tdt == NN_FLOAT) ((float *)o)[i] = (float)((int64_t *)X->cdata)[i];
            else ((int64_t *)o)[i] = (int64_t)((float *)X->cdata)[i];
        }
        return set_out(b, n, 0, const_new(p, tdt, r, X->dims, o, 1));
    }
    if (!strcmp(op, "Shape")) {
        int64_t s = vt__nn_attr_i(n, "start", 0), e = vt__nn_attr_i(n, "end", r);
        if (s < 0) s += r;
        if (e < 0) e += r;
        s = VT_CLAMP(s, 0, r);
        e = VT_CLAMP(e, 0, r);
        int64_t cnt = e > s ? e - s : 0;
        int64_t *o = xmalloc((size_t)cnt * 8);
        if (!o) return vt__err(VT_ENOMEM, "out of memory");
        for (int64_t i = 0; i < cnt; i++) o[i] = X->dims[s + i];
        return set_out(b, n, 0, const_new(p, NN_INT64, 1, &cnt, o, 1));
    }
    if (!strcmp(op, "Flatten")) {
        int64_t ax = vt__nn_attr_i(n, "axis", 1);
        if (ax < 0) ax += r;
        if (ax < 0 || ax > r) return vt__err(VT_EINVAL, "node '%s' (Flatten): axis out of range", n->name);
        od[0] = (int64_t)vt__nn_numel((int)ax, X->dims);
        od[1] = (int64_t)vt__nn_numel(r - (int)ax, X->dims + ax);
        return set_out(b, n, 0, reshaped(b, x, 2, od));
    }
    if (!strcmp(op, "Reshape")) {
        const int64_t *sh;
        size_t cnt;
        int rc = const_ints(b, n, 1, &sh, &cnt);
        if (rc) return rc;
        if (cnt > NN_MAXR) return vt__err(VT_EUNSUPPORTED, "node '%s' (Reshape): rank above %d", n->name, NN_MAXR);
        int allowzero = (int)vt__nn_attr_i(n, "allowzero", 0), neg = -1;
        size_t known = 1;
        for (size_t i = 0; i < cnt; i++) {
            od[i] = sh[i];
            if (sh[i] == 0 && !allowzero) {
                if ((int)i >= r) return vt__err(VT_EINVAL, "node '%s' (Reshape): 0 beyond the input rank", n->name);
                od[i] = X->dims[i];
            }
            if (od[i] == -1) {
                if (neg >= 0) return vt__err(VT_EINVAL, "node '%s' (Reshape): two -1 entries", n->name);
                neg = (int)i;
            } else if (od[i] < 0) return vt__err(VT_EINVAL, "node '%s' (Reshape): bad shape entry", n->name);
            else known *= (size_t)od[i];
        }
        if (neg >= 0) {
            if (!known) return vt__err(VT_EINVAL, "node '%s' (Reshape): cannot infer -1", n->name);
            od[neg] = (int64_t)(X->nelem / known);
        }
        return set_out(b, n, 0, reshaped(b, x, (int)cnt, od));
    }
    if (!strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze")) {
        int64_t axes[NN_MAXR];
        int na;
        int rc = axes_of(b, n, "axes", 1, axes, &na);
        if (rc) return rc;
        int ro = 0;
        if (op[0] == 'S') {
            char rm[NN_MAXR] = {0};
            if (na < 0) {
                for (int i = 0; i < r; i++) rm[i] = X->dims[i] == 1;
            } else {
                for (int i = 0; i < na; i++) {
                    if (norm_axis(&axes[i], r) || X->dims[axes[i]] != 1)
                        return vt__err(VT_EINVAL, "node '%s' (Squeeze): axis %lld cannot be squeezed", n->name, (long long)axes[i]);
                    rm[axes[i]] = 1;
                }
            }
            for (int i = 0; i < r; i++)
                if (!rm[i]) od[ro++] = X->dims[i];
        } else {
            if (na < 0) return vt__err(VT_EINVAL, "node '%s' (Unsqueeze): axes missing", n->name);
            ro = r + na;
            if (ro > NN_MAXR) return vt__err(VT_EUNSUPPORTED, "node '%s' (Unsqueeze): rank above %d", n->name, NN_MAXR);
            char ins[NN_MAXR] = {0};
            for (int i = 0; i < na; i++) {
                if (norm_axis(&axes[i], ro) || ins[axes[i]])
                    return vt__err(VT_EINVAL, "node '%s' (Unsqueeze): bad axis", n->name);
                ins[axes[i]] = 1;
            }
            for (int i = 0, j = 0; i < ro; i++) od[i] = ins[i] ? 1 : X->dims[j++];
        }
        return set_out(b, n, 0, reshaped(b, x, ro, od));
    }
    small_ctx *k = calloc(1, sizeof *k);
    if (!k) return vt__err(VT_ENOMEM, "out of memory");
    k->x = x;
    k->rank = r;
    memcpy(k->dims, X->dims, (size_t)r * 8);
    if (!strcmp(op, "Transpose")) {
        const nn_attr *pa = vt__nn_attr(n, "perm");
        char seen[NN_MAXR] = {0};
        for (int i = 0; i < r; i++) {
            k->perm[i] = pa && pa->kind == NA_INTS && pa->n == r ? pa->ints[i] : r - 1 - i;
            if (k->perm[i] < 0 || k->perm[i] >= r || seen[k->perm[i]]) {
                free(k);
                return vt__err(VT_EINVAL, "node '%s' (Transpose): bad perm", n->name);
            }
            seen[k->perm[i]] = 1;
            od[i] = X->dims[k->perm[i]];
        }
        k->kind = 0;
        return small_op(b, n, k, r, od);
    }
    if (!strcmp(op, "Gather")) {
        const int64_t *iv;
        size_t cnt;
        int rc = const_ints(b, n, 1, &iv, &cnt);
        int it = in_t(b, n, 1);
        int64_t ax = vt__nn_attr_i(n, "axis", 0);
        if (!rc && norm_axis(&ax, r)) rc = vt__err(VT_EINVAL, "node '%s' (Gather): axis out of range", n->name);
        if (!rc && r - 1 + p->t[it].rank > NN_MAXR) rc = vt__err(VT_EUNSUPPORTED, "node '%s' (Gather): rank too high", n->name);
        if (rc) {
            free(k);
            return rc;
        }
        k->idx = xmalloc(cnt * 8);
        if (!k->idx) {
            free(k);
            return vt__err(VT_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < cnt; i++) {
            int64_t v = iv[i] < 0 ? iv[i] + X->dims[ax] : iv[i];
            if (v < 0 || v >= X->dims[ax]) {
                free(k->idx);
                free(k);
                return vt__err(VT_EINVAL, "node '%s' (Gather): index %lld out of range", n->name, (long long)iv[i]);
            }
            k->idx[i] = v;
        }
        k->nidx = cnt;
        k->axis = (int)ax;
        k->kind = 1;
        int ro = 0;
        for (int i = 0; i < ax; i++) od[ro++] = X->dims[i];
        for (int i = 0; i < p->t[it].rank; i++) od[ro++] = p->t[it].dims[i];
        for (int i = (int)ax + 1; i < r; i++) od[ro++] = X->dims[i];
        return small_op(b, n, k, ro, od);
    }
    if (!strcmp(op, "Softmax")) {
        int64_t ax = vt__nn_attr_i(n, "axis", g->opset >= 13 ? -1 : 1);
        if (r < 1 || norm_axis(&ax, r)) {
            free(k);
            return vt__err(VT_EINVAL, "node '%s' (Softmax): axis out of range", n->name);
        }
        k->outer = vt__nn_numel((int)ax, X->dims);
        if (g->opset >= 13) {
            k->n = (size_t)X->dims[ax];
            k->inner = vt__nn_numel(r - (int)ax - 1, X->dims + ax + 1);
        } else {
            k->n = vt__nn_numel(r - (int)ax, X->dims + ax);
            k->inner = 1;
        }
        k->kind = 2;
        return small_op(b, n, k, r, X->dims);
    }
    if (!strcmp(op, "LpNormalization")) {
        int64_t ax = vt__nn_attr_i(n, "axis", -1);
        if (r < 1 || norm_axis(&ax, r)) {
            free(k);
            return vt__err(VT_EINVAL, "node '%s' (LpNormalization): axis out of range", n->name);
        }
        k->outer = vt__nn_numel((int)ax, X->dims);
        k->n = (size_t)X->dims[ax];
        k->inner = vt__nn_numel(r - (int)ax - 1, X->dims + ax + 1);
        k->lp = (int)vt__nn_attr_i(n, "p", 2); /* 1 or 2, checked at load */
        k->kind = 5;
        return small_op(b, n, k, r, X->dims);
    }
    if (!strcmp(op, "ReduceMean")) {
        int64_t axes[NN_MAXR];
        int na;
        int rc = axes_of(b, n, "axes", 1, axes, &na);
        if (rc) {
            free(k);
            return rc;
        }
        int keep = (int)vt__nn_attr_i(n, "keepdims", 1);
        if (na <= 0 && vt__nn_attr_i(n, "noop_with_empty_axes", 0)) {
            free(k);
            if (X->is_const) return set_out(b, n, 0, const_new(p, X->dtype, r, X->dims, X->cdata, 0));
            return set_out(b, n, 0, alias_new(p, x, r, X->dims, &X->md));
        }
        for (int i = 0; i < r; i++) k->reduce[i] = na <= 0;
        for (int i = 0; i < na; i++) {
            if (norm_axis(&axes[i], r)) {
                free(k);
                return vt__err(VT_EINVAL, "node '%s' (ReduceMean): axis out of range", n->name);
            }
            k->reduce[axes[i]] = 1;
        }
        int ro = 0;
        for (int i = 0; i < r; i++) {
            if (!k->reduce[i]) od[ro++] = X->dims[i];
            else if (keep) od[ro++] = 1;
        }
        k->kind = 3;
        return small_op(b, n, k, ro, od);
    }
    if (!strcmp(op, "Slice")) {
        const int64_t *sv, *ev, *av = NULL, *stv = NULL;
        size_t ns, ne, naa = 0, nst = 0;
        int rc = const_ints(b, n, 1, &sv, &ns);
        if (!rc) rc = const_ints(b, n, 2, &ev, &ne);
        if (!rc && in_t(b, n, 3) >= 0) rc = const_ints(b, n, 3, &av, &naa);
        if (!rc && in_t(b, n, 4) >= 0) rc = const_ints(b, n, 4, &stv, &nst);
        if (!rc && (ne != ns || (av && naa != ns) || (stv && nst != ns) || ns > (size_t)r))
            rc = vt__err(VT_EINVAL, "node '%s' (Slice): inconsistent starts/ends/axes/steps", n->name);
        if (rc) {
            free(k);
            return rc;
        }
        for (int i = 0; i < r; i++) k->start[i] = 0, k->step[i] = 1, k->odims[i] = X->dims[i];
        for (size_t i = 0; i < ns; i++) {
            int64_t a = av ? av[i] : (int64_t)i;
            int64_t stp = stv ? stv[i] : 1;
            if (norm_axis(&a, r) || stp == 0) {
                free(k);
                return vt__err(VT_EINVAL, "node '%s' (Slice): bad axis or step", n->name);
            }
            int64_t dim = X->dims[a], s = sv[i], e = ev[i];
            if (s < 0) s += dim;
            if (e < 0) e += dim;
            if (stp > 0) {
                s = VT_CLAMP(s, 0, dim);
                e = VT_CLAMP(e, 0, dim);
                k->odims[a] = e > s ? (e - s + stp - 1) / stp : 0;
            } else {
                s = VT_CLAMP(s, 0, dim - 1);
                e = VT_CLAMP(e, -1, dim - 1);
                k->odims[a] = s > e ? (s - e + (-stp) - 1) / (-stp) : 0;
            }
            k->start[a] = s;
            k->step[a] = stp;
        }
        k->kind = 4;
        memcpy(od, k->odims, (size_t)r * 8);
        return small_op(b, n, k, r, od);
    }
    free(k);
    return vt__err(VT_EUNSUPPORTED, "node '%s': operator %s is not supported", n->name, op);
}

/* ---------------------------------------------------------------- Gemm / MatMul */

typedef struct {
    int a, b, c, y;
    int ta, tb;
    float alpha, beta;
    int64_t M, N, K;
    /* MatMul batching */
    int is_matmul;
    int rank;
    int64_t od[NN_MAXR], da[NN_MAXR], db[NN_MAXR];
    int crank;
    int64_t cd[2];
} mm_ctx;

static void mm_compute(const mm_ctx *k, const float *A, const float *B, const float *C, float *Y) {
    if (!k->is_matmul) {
        int64_t M = k->M, N = k->N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                float cv = 0.f;
                if (C) {
                    int64_t ci = k->crank == 2 ? (k->cd[0] == 1 ? 0 : i) : 0;
                    int64_t cj = k->crank >= 1 ? (k->cd[k->crank - 1] == 1 ? 0 : j) : 0;
                    cv = C[ci * (k->crank == 2 ? k->cd[1] : 1) + cj];
                }
                Y[i * N + j] = k->beta * cv;
            }
        if (M && N)
            dnnl_sgemm(k->ta ? 'T' : 'N', k->tb ? 'T' : 'N', M, N, k->K, k->alpha, A, k->ta ? M : k->K, B,
                       k->tb ? k->K : N, C ? 1.f : 0.f, Y, N);
        return;
    }
    /* batched: od = batch dims + M,N; da/db broadcast to batch */
    int nb = k->rank - 2;
    size_t batches = vt__nn_numel(nb, k->od);
    for (size_t bi = 0; bi < batches; bi++) {
        size_t rem = bi, oa = 0, ob = 0, sa = 1, sb = 1;
        for (int d = nb - 1; d >= 0; d--) {
            size_t idx = rem % (size_t)k->od[d];
            rem /= (size_t)k->od[d];
            oa += (k->da[d] == 1 ? 0 : idx) * sa;
            ob += (k->db[d] == 1 ? 0 : idx) * sb;
            sa *= (size_t)k->da[d];
            sb *= (size_t)k->db[d];
        }
        const float *Ab = A + oa * (size_t)(k->M * k->K), *Bb = B + ob * (size_t)(k->K * k->N);
        float *Yb = Y + bi * (size_t)(k->M * k->N);
        if (k->M && k->N) {
            if (!k->K) memset(Yb, 0, (size_t)(k->M * k->N) * 4);
            else dnnl_sgemm('N', 'N', k->M, k->N, k->K, 1.f, Ab, k->K, Bb, k->N, 0.f, Yb, k->N);
        }
    }
}

static void run_mm(nn_plan *p, void *c) {
    mm_ctx *k = c;
    mm_compute(k, tptr(p, k->a), tptr(p, k->b), k->c >= 0 ? tptr(p, k->c) : NULL, tptr(p, k->y));
}

static int plan_mm(bctx *b, int ni) {
    nn_plan *p = b->p;
    const nn_node *n = &b->g->nodes[ni];
    int ismm = !strcmp(n->op, "MatMul");
    int a = in_t(b, n, 0), bb = in_t(b, n, 1), c = ismm ? -1 : in_t(b, n, 2);
    if (a < 0 || bb < 0) return vt__err(VT_EINVAL, "node '%s' (%s): missing input", n->name, n->op);
    if (p->t[a].dtype != NN_FLOAT || p->t[bb].dtype != NN_FLOAT || (c >= 0 && p->t[c].dtype != NN_FLOAT))
        return vt__err(VT_EUNSUPPORTED, "node '%s' (%s): only float inputs are supported", n->name, n->op);
    mm_ctx *k = calloc(1, sizeof *k);
    if (!k) return vt__err(VT_ENOMEM, "out of memory");
    k->c = -1;
    int64_t od[NN_MAXR];
    int ro;
    nn_tensor *A = &p->t[a], *B = &p->t[bb];
    if (!ismm) {
        if (A->rank != 2 || B->rank != 2) {
            free(k);
            return vt__err(VT_EUNSUPPORTED, "node '%s' (Gemm): inputs must be 2-D", n->name);
        }
        k->ta = (int)vt__nn_attr_i(n, "transA", 0);
        k->tb = (int)vt__nn_attr_i(n, "transB", 0);
        k->alpha = vt__nn_attr_f(n, "alpha", 1.f);
        k->beta = vt__nn_attr_f(n, "beta", 1.f);
        k->M = k->ta ? A->dims[1] : A->dims[0];
        k->K = k->ta ? A->dims[0] : A->dims[1];
        k->N = k->tb ? B->dims[0] : B->dims[1];
        if ((k->tb ? B->dims[1] : B->dims[0]) != k->K) {
            free(k);
            return vt__err(VT_EINVAL, "node '%s' (Gemm): inner dimensions differ", n->name);
        }
        ro = 2;
        od[0] = k->M, od[1] = k->N;
        if (c >= 0) {
            nn_tensor *C = &p->t[c];
            if (C->rank > 2 || (C->rank == 2 && ((C->dims[0] != 1 && C->dims[0] != k->M) || (C->dims[1] != 1 && C->dims[1] != k->N))) ||
                (C->rank == 1 && C->dims[0] != 1 && C->dims[0] != k->N)) {
                free(k);
                return vt__err(VT_EINVAL, "node '%s' (Gemm): C does not broadcast to %lldx%lld", n->name, (long long)od[0], (long long)od[1]);
            }
            k->crank = C->rank;
            for (int i = 0; i < C->rank; i++) k->cd[i] = C->dims[i];
        }
    } else {
        k->is_matmul = 1;
        int64_t ad[NN_MAXR], bd[NN_MAXR];
        int ra = A->rank, rb = B->rank;
        if (ra < 1 || rb < 1) {
            free(k);
            return vt__err(VT_EINVAL, "node '%s' (MatMul): scalar inputs", n->name);
        }
        memcpy(ad, A->dims, (size_t)ra * 8);
        memcpy(bd, B->dims, (size_t)rb * 8);
        int a1 = ra == 1, b1 = rb == 1;
        if (a1) ad[1] = ad[0], ad[0] = 1, ra = 2;
        if (b1) bd[1] = 1, rb = 2;
        k->M = ad[ra - 2], k->K = ad[ra - 1], k->N = bd[rb - 1];
        if (bd[rb - 2] != k->K) {
            free(k);
            return vt__err(VT_EINVAL, "node '%s' (MatMul): inner dimensions differ", n->name);
        }
        int rbatch;
        int64_t bdims[NN_MAXR];
        if (vt__nn_broadcast(ra - 2, ad, rb - 2, bd, &rbatch, bdims)) {
            free(k);
            return vt__err(VT_EINVAL, "node '%s' (MatMul): batch dimensions do not broadcast", n->name);
        }
        k->rank = rbatch + 2;
        for (int i = 0; i < rbatch; i++) {
            int ia = i - (rbatch - (ra - 2)), ib = i - (rbatch - (rb - 2));
            k->da[i] = ia >= 0 ? ad[ia] : 1;
            k->db[i] = ib >= 0 ? bd[ib] : 1;
            k->od[i] = bdims[i];
        }
        k->od[rbatch] = k->M;
        k->od[rbatch + 1] = k->N;
        ro = 0;
        for (int i = 0; i < rbatch; i++) od[ro++] = bdims[i];
        if (!a1) od[ro++] = k->M;
        if (!b1) od[ro++] = k->N;
    }
    if (shape_too_big(ro, od)) {
        free(k);
        return vt__err(VT_ETOOBIG, "node '%s' (%s): output too large", n->name, n->op);
    }
    if (A->is_const && B->is_const && (c < 0 || p->t[c].is_const)) {
        float *o = xmalloc(vt__nn_numel(ro, od) * 4);
        if (!o) {
            free(k);
            return vt__err(VT_ENOMEM, "out of memory");
        }
        mm_compute(k, A->cdata, B->cdata, c >= 0 ? p->t[c].cdata : NULL, o);
        free(k);
        return set_out(b, n, 0, const_new(p, NN_FLOAT, ro, od, o, 1));
    }
    k->a = to_plain(p, a);
    k->b = to_plain(p, bb);
    k->c = c >= 0 ? to_plain(p, c) : -1;
    if (k->a < 0 || k->b < 0 || (c >= 0 && k->c < 0)) {
        free(k);
        return VT_EINTERNAL;
    }
    k->y = rt_new(p, ro, od, NULL);
    if (k->y < 0) {
        int rc = k->y;
        free(k);
        return rc;
    }
    int ts[4] = {k->a, k->b, k->y, k->c >= 0 ? k->c : k->a};
    int y = k->y;
    int rc = add_c_step(p, run_mm, k, 4, ts);
    if (rc) return rc;
    return set_out(b, n, 0, y);
}

/* ---------------------------------------------------------------- Pad (constant mode) */

typedef struct {
    int x, y, rank;
    int64_t dims[NN_MAXR], odims[NN_MAXR], pre[NN_MAXR];
    float value;
} pad_ctx;

static void run_pad(nn_plan *p, void *c) {
    pad_ctx *k = c;
    const float *in = tptr(p, k->x);
    float *out = tptr(p, k->y);
    size_t on = vt__nn_numel(k->rank, k->odims);
    for (size_t i = 0; i < on; i++) out[i] = k->value;
    size_t n = vt__nn_numel(k->rank, k->dims);
    for (size_t i = 0; i < n; i++) {
        size_t rem = i, o = 0, st = 1;
        for (int d = k->rank - 1; d >= 0; d--) {
            size_t idx = rem % (size_t)k->dims[d];
            rem /= (size_t)k->dims[d];
            o += (idx + (size_t)k->pre[d]) * st;
            st *= (size_t)k->odims[d];
        }
        out[o] = in[i];
    }
}

static int plan_pad(bctx *b, int ni) {
    nn_plan *p = b->p;
    const nn_node *n = &b->g->nodes[ni];
    const nn_attr *mode = vt__nn_attr(n, "mode");
    if (mode && mode->kind == NA_STRING && strcmp(mode->s, "constant"))
        return vt__err(VT_EUNSUPPORTED, "node '%s' (Pad): mode '%s' is not supported", n->name, mode->s);
    int x = in_t(b, n, 0);
    if (x < 0 || p->t[x].is_const || p->t[x].dtype != NN_FLOAT)
        return vt__err(VT_EUNSUPPORTED, "node '%s' (Pad): input must be a runtime float tensor", n->name);
    int r = p->t[x].rank;
    int64_t pads[2 * NN_MAXR];
    const nn_attr *pa = vt__nn_attr(n, "pads");
    float value = vt__nn_attr_f(n, "value", 0.f);
    if (pa && pa->kind == NA_INTS) {
        if (pa->n != 2 * r) return vt__err(VT_EINVAL, "node '%s' (Pad): pads length", n->name);
        memcpy(pads, pa->ints, (size_t)pa->n * 8);
    } else {
        const int64_t *pv;
        size_t cnt;
        int rc = const_ints(b, n, 1, &pv, &cnt);
        if (rc) return rc;
        if (cnt != (size_t)(2 * r)) return vt__err(VT_EINVAL, "node '%s' (Pad): pads length", n->name);
        memcpy(pads, pv, cnt * 8);
        if (n->nin > 3 && n->in[3] >= 0) return vt__err(VT_EUNSUPPORTED, "node '%s' (Pad): axes input is not supported", n->name);
        int rc2 = 0;
        value = const_scalar_f(b, n, 2, 0.f, &rc2);
        if (rc2) return rc2;
    }
    int zero = 1;
    for (int i = 0; i < 2 * r; i++) {
        if (pads[i] < 0) return vt__err(VT_EUNSUPPORTED, "node '%s' (Pad): negative pads", n->name);
        if (pads[i]) zero = 0;
    }
    if (zero) return set_out(b, n, 0, alias_new(p, x, r, p->t[x].dims, &p->t[x].md));
    pad_ctx *k = calloc(1, sizeof *k);
    if (!k) return vt__err(VT_ENOMEM, "out of memory");
    k->rank = r;
    k->value = value;
    for (int i = 0; i < r; i++) {
        k->dims[i] = p->t[x].dims[i];
        k->pre[i] = pads[i];
        k->odims[i] = k->dims[i] + pads[i] + pads[r + i];
    }
    k->x = to_plain(p, x);
    k->y = k->x < 0 ? k->x : rt_new(p, r, k->odims, NULL);
    if (k->y < 0) {
        int rc = k->y;
        free(k);
        return rc;
    }
    int ts[2] = {k->x, k->y}, y = k->y;
    int rc = add_c_step(p, run_pad, k, 2, ts);
    if (rc) return rc;
    return set_out(b, n, 0, y);
}

/* ---------------------------------------------------------------- driver */

static int plan_node(bctx *b, int ni) {
    const nn_node *n = &b->g->nodes[ni];
    const char *op = n->op;
    nn_act a;
    if (!strcmp(op, "Conv")) return plan_conv(b, ni);
    if (!strcmp(op, "BatchNormalization")) return plan_bn(b, ni);
    if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool") || !strcmp(op, "GlobalAveragePool") ||
        !strcmp(op, "GlobalMaxPool"))
        return plan_pool(b, ni);
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div")) return plan_binary(b, ni);
    if (!strcmp(op, "Concat")) return plan_concat(b, ni);
    if (!strcmp(op, "Gemm") || !strcmp(op, "MatMul")) return plan_mm(b, ni);
    if (!strcmp(op, "Pad")) return plan_pad(b, ni);
    int rc = act_of(b, n, &a);
    if (rc < 0) return rc;
    if (rc) return plan_act(b, n, &a);
    return plan_misc(b, ni);
}

/* A tensor to place in the arena: its first use and its index. */
typedef struct {
    int first, t;
} tuse;

static int tuse_cmp(const void *a, const void *b) {
    const tuse *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    return (x->t > y->t) - (x->t < y->t);
}

/* Contract: assigns every runtime tensor an offset in one arena so that tensors whose live step
 * ranges overlap never share bytes (first fit over the live blocks); pinned tensors live to the end. */
static int plan_memory(nn_plan *p) {
    for (int s = 0; s < p->nsteps; s++) {
        nn_step *st = &p->steps[s];
        int ts[96], nts = 0;
        for (int i = 0; i < st->nargs; i++) ts[nts++] = st->args[i].t;
        for (int i = 0; i < st->nts; i++) ts[nts++] = st->ts[i];
        if (st->copy_src >= 0) ts[nts++] = st->copy_src, ts[nts++] = st->copy_dst;
        for (int i = 0; i < nts; i++) {
            int r = root_of(p, ts[i]);
            if (p->t[r].is_const) continue;
            if (p->t[r].first < 0 || s < p->t[r].first) p->t[r].first = s;
            if (s > p->t[r].last) p->t[r].last = s;
        }
    }
    for (int i = 0; i < p->nt; i++) {
        if (p->t[i].is_const) continue;
        int r = root_of(p, i);
        size_t need = p->t[i].bytes;
        if (need > p->t[r].bytes) p->t[r].bytes = need;
        if (p->t[i].pinned) {
            p->t[r].pinned = 1;
        }
    }
    tuse *order = malloc((size_t)(p->nt + 1) * sizeof *order);
    int *active = malloc((size_t)(p->nt + 1) * sizeof *active), no = 0, na = 0;
    if (!order || !active) {
        free(order);
        free(active);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    for (int i = 0; i < p->nt; i++) {
        nn_tensor *t = &p->t[i];
        if (t->is_const || t->alias >= 0) continue;
        if (t->pinned) {
            if (t->first < 0) t->first = 0;
            t->last = p->nsteps;
        }
        if (t->first < 0) t->first = t->last = 0; /* unused but reachable: give it a slot */
        order[no++] = (tuse){t->first, i};
    }
    /* by first use, then tensor index */
    qsort(order, (size_t)no, sizeof *order, tuse_cmp);
    /* First fit among the tensors still live when this one starts: in order of first use, one
     * whose last use is before this one's first is dead for every later tensor too, so `active`
     * keeps only those that may clash (the same offsets as trying all placed tensors, in linear
     * time for a chain of any length). */
    size_t top = 0;
    for (int i = 0; i < no; i++) {
        nn_tensor *t = &p->t[order[i].t];
        size_t sz = (t->bytes + 63) & ~(size_t)63;
        if (!sz) sz = 64;
        int keep = 0;
        for (int j = 0; j < na; j++)
            if (p->t[active[j]].last >= t->first) active[keep++] = active[j];
        na = keep;
        size_t off = 0;
        for (;;) {
            int clash = 0;
            for (int j = 0; j < na; j++) {
                nn_tensor *u = &p->t[active[j]];
                size_t usz = (u->bytes + 63) & ~(size_t)63;
                if (!usz) usz = 64;
                if (u->first > t->last) continue;
                if (off < u->off + usz && u->off < off + sz) {
                    off = u->off + usz;
                    clash = 1;
                }
            }
            if (!clash) break;
        }
        t->off = off;
        if (off + sz > top) top = off + sz;
        active[na++] = order[i].t;
    }
    free(active);
    free(order);
    p->arena_bytes = top;
    if (posix_memalign((void **)&p->arena, 64, top ? top : 64)) return vt__err(VT_ENOMEM, "out of memory (arena of %zu bytes)", top);
    /* memory objects */
    for (int i = 0; i < p->nt; i++) {
        nn_tensor *t = &p->t[i];
        if (t->dtype != NN_FLOAT) continue;
        void *h = t->is_const ? t->cdata : p->arena + p->t[root_of(p, i)].off;
        DN(dnnl_memory_create(&t->mem, &t->md, p->eng, h));
    }
    for (int s = 0; s < p->nsteps; s++) {
        nn_step *st = &p->steps[s];
        if (!st->prim) continue;
        st->exec = malloc((size_t)(st->nargs + 1) * sizeof *st->exec);
        if (!st->exec) return vt__err(VT_ENOMEM, "out of memory");
        for (int i = 0; i < st->nargs; i++) {
            st->exec[i].arg = st->args[i].arg;
            st->exec[i].memory = p->t[st->args[i].t].mem;
        }
    }
    return 0;
}

void vt__nn_plan_free(nn_plan *p) {
    if (!p) return;
    for (int s = 0; s < p->nsteps; s++) {
        nn_step *st = &p->steps[s];
        if (st->prim) dnnl_primitive_destroy(st->prim);
        if (st->copy_prim) dnnl_primitive_destroy(st->copy_prim);
        free(st->exec);
        if (st->ctx) {
            if (st->fn == run_small) free_small(st->ctx);
            if (st->fn == run_wino) vt__wino_free(((wino_ctx *)st->ctx)->k);
            free(st->ctx);
        }
    }
    free(p->steps);
    for (int i = 0; i < p->nt; i++) {
        if (p->t[i].mem) dnnl_memory_destroy(p->t[i].mem);
        if (p->t[i].own_cdata) free(p->t[i].cdata);
    }
    free(p->t);
    free(p->val2t);
    free(p->arena);
    free(p->keep);
    if (p->stream) dnnl_stream_destroy(p->stream);
    free(p);
}

/* Contract: builds a plan for the given feeds (their shapes, and values of integer feeds) that
 * materialises every graph output and the values listed in keep. */
int vt__nn_plan_build(nn_graph *g, dnnl_engine_t eng, int threads, int bf16, int nfeed, const nn_feed *feeds,
                      int nkeep, const int *keep, nn_plan **out) {
    *out = NULL;
    nn_plan *p = calloc(1, sizeof *p);
    if (!p) return vt__err(VT_ENOMEM, "out of memory");
    p->g = g;
    p->eng = eng;
    p->threads = threads;
    p->cur_nthr = threads > 0 ? threads : 1;
    p->passive = vt__nn_omp_passive();
    p->bf16 = bf16;
    if (threads > 0) omp_set_num_threads(threads);
    bctx b = {p, g, NULL, NULL, NULL, NULL, feeds, nfeed, NULL};
    int rc = 0;
    p->val2t = malloc((size_t)(g->nvals + 1) * sizeof(int));
    b.ncons = calloc((size_t)g->nvals + 1, sizeof(int));
    b.cons = malloc(((size_t)g->nvals + 1) * sizeof(int));
    b.absorbed = calloc((size_t)g->nnodes + 1, 1);
    b.pinned = calloc((size_t)g->nvals + 1, 1);
    b.remaining = calloc((size_t)g->nvals + 1, sizeof(int));
    if (!p->val2t || !b.ncons || !b.cons || !b.absorbed || !b.pinned || !b.remaining) {
        rc = vt__err(VT_ENOMEM, "out of memory");
        goto done;
    }
    if (dnnl_stream_create(&p->stream, eng, dnnl_stream_default_flags) != dnnl_success) {
        rc = vt__err(VT_EINTERNAL, "oneDNN: cannot create a stream");
        goto done;
    }
    for (int v = 0; v < g->nvals; v++) p->val2t[v] = -1, b.cons[v] = -1;
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < g->nodes[i].nin; j++) {
            int v = g->nodes[i].in[j];
            if (v < 0) continue;
            /* a node reading the same value twice still counts once per input */
            b.ncons[v]++;
            b.remaining[v]++;
            if (b.cons[v] < 0) b.cons[v] = i;
        }
    for (int i = 0; i < g->noutputs; i++) b.pinned[g->outputs[i]] = 1;
    for (int i = 0; i < nkeep; i++) b.pinned[keep[i]] = 1;
    /* graph inputs */
    for (int i = 0; i < nfeed; i++) {
        const nn_feed *f = &feeds[i];
        int t;
        if (f->dtype == NN_FLOAT) {
            t = rt_new(p, f->rank, f->dims, NULL);
            if (t < 0) {
                rc = t;
                goto done;
            }
            p->t[t].pinned = 1;
            p->t[t].cdata = NULL;
        } else {
            size_t ne = vt__nn_numel(f->rank, f->dims);
            int64_t *d = xmalloc(ne * 8);
            if (!d) {
                rc = vt__err(VT_ENOMEM, "out of memory");
                goto done;
            }
            memcpy(d, f->data, ne * 8);
            t = const_new(p, NN_INT64, f->rank, f->dims, d, 1);
            if (t < 0) {
                rc = t;
                goto done;
            }
            p->value_dependent = 1;
        }
        p->val2t[f->value] = t;
        if (i < 8) {
            p->in_rank[i] = f->rank;
            memcpy(p->in_dims[i], f->dims, (size_t)f->rank * 8);
        }
    }
    p->nin = nfeed;
    for (int v = 0; v < g->nvals; v++) {
        nn_value *gv = &g->vals[v];
        if (!gv->data || gv->producer >= 0) continue;
        if (p->val2t[v] >= 0) continue;
        int t = const_new(p, gv->dtype, gv->rank, gv->dims, gv->data, 0);
        if (t < 0) {
            rc = t;
            goto done;
        }
        p->val2t[v] = t;
    }
    for (int i = 0; i < g->ninputs; i++)
        if (p->val2t[g->inputs[i]] < 0) {
            rc = vt__err(VT_EINVAL, "graph input '%s' was not given", g->vals[g->inputs[i]].name);
            goto done;
        }
    /* Constant nodes first: fusion looks ahead at Clip bounds and the like, which exporters often
     * place after the convolution whose activation they parameterise. */
    for (int ni = 0; ni < g->nnodes && !rc; ni++)
        if (!strcmp(g->nodes[ni].op, "Constant")) {
            rc = plan_misc(&b, ni);
            b.absorbed[ni] = 1;
        }
    for (int ni = 0; ni < g->nnodes && !rc; ni++) {
        if (b.absorbed[ni]) continue;
        const nn_node *n = &g->nodes[ni];
        int ready = 1;
        for (int j = 0; j < n->nin; j++)
            if (n->in[j] >= 0 && p->val2t[n->in[j]] < 0) ready = 0;
        if (!ready) {
            rc = vt__err(VT_EINTERNAL, "node '%s' (%s): an input was not computed", n->name, n->op);
            break;
        }
        rc = plan_node(&b, ni);
        if (rc) break;
        if (n->nout >= 1 && n->out[0] >= 0 && p->val2t[n->out[0]] < 0 && !b.absorbed[ni]) {
            /* fused chains set the last value; intermediate values are not materialised */
        }
    }
    if (rc) goto done;
    for (int v = 0; v < g->nvals; v++) {
        if (!b.pinned[v]) continue;
        if (p->val2t[v] < 0) {
            rc = vt__err(VT_ENOTFOUND, "tensor '%s' was not computed", g->vals[v].name);
            goto done;
        }
        p->t[p->val2t[v]].pinned = 1;
    }
    if (threads > 0) omp_set_num_threads(threads);
    rc = plan_memory(p);
    /* hand the released original weights and the build's temporaries back to the system */
    if (!rc && g->weights_released) malloc_trim(0);
done:
    free(b.ncons);
    free(b.cons);
    free(b.absorbed);
    free(b.pinned);
    free(b.remaining);
    if (rc) {
        vt__nn_plan_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* Contract: copies the float feeds into their input tensors and runs every step in order. */
int vt__nn_plan_run(nn_plan *p, int nfeed, const nn_feed *feeds) {
    if (p->threads > 0) omp_set_num_threads(p->threads);
    for (int i = 0; i < nfeed; i++) {
        if (feeds[i].dtype != NN_FLOAT) continue;
        int t = p->val2t[feeds[i].value];
        if (t < 0 || p->t[t].is_const) continue;
        memcpy(p->arena + p->t[root_of(p, t)].off, feeds[i].data, p->t[t].nelem * 4);
    }
    int cur = p->threads > 0 ? p->threads : 1;
    for (int s = 0; s < p->nsteps; s++) {
        nn_step *st = &p->steps[s];
        if (st->nthr != cur) omp_set_num_threads(cur = st->nthr);
        if (st->copy_prim) {
            dnnl_exec_arg_t ea[2] = {{DNNL_ARG_FROM, p->t[st->copy_src].mem}, {DNNL_ARG_TO, p->t[st->copy_dst].mem}};
            DN(dnnl_primitive_execute(st->copy_prim, p->stream, 2, ea));
        }
        if (st->prim) {
            DN(dnnl_primitive_execute(st->prim, p->stream, st->nargs, st->exec));
        } else {
            dnnl_stream_wait(p->stream);
            st->fn(p, st->ctx);
        }
    }
    DN(dnnl_stream_wait(p->stream));
    if (p->threads > 0 && cur != p->threads) omp_set_num_threads(p->threads);
    return 0;
}

int vt__nn_plan_fetch(nn_plan *p, int value, int *dtype, int *rank, int64_t dims[NN_MAXR], void **data) {
    *data = NULL;
    int t = value >= 0 && value < p->g->nvals ? p->val2t[value] : -1;
    if (t < 0) return vt__err(VT_ENOTFOUND, "tensor '%s' is not available", value >= 0 ? p->g->vals[value].name : "?");
    nn_tensor *x = &p->t[t];
    size_t es = x->dtype == NN_FLOAT ? 4 : 8;
    void *o = xmalloc(x->nelem * es);
    if (!o) return vt__err(VT_ENOMEM, "out of memory");
    if (x->is_const) memcpy(o, x->cdata, x->nelem * es);
    else if (is_plain(x)) memcpy(o, p->arena + p->t[root_of(p, t)].off, x->nelem * 4);
    else {
        dnnl_memory_desc_t md;
        dnnl_primitive_desc_t pd;
        dnnl_primitive_t pr;
        dnnl_memory_t m;
        int rc = md_plain(&md, x->rank, x->dims);
        if (!rc && dnnl_reorder_primitive_desc_create(&pd, &x->md, p->eng, &md, p->eng, NULL) == dnnl_success) {
            if (dnnl_primitive_create(&pr, pd) == dnnl_success) {
                if (dnnl_memory_create(&m, &md, p->eng, o) == dnnl_success) {
                    dnnl_exec_arg_t ea[2] = {{DNNL_ARG_FROM, x->mem}, {DNNL_ARG_TO, m}};
                    dnnl_primitive_execute(pr, p->stream, 2, ea);
                    dnnl_stream_wait(p->stream);
                    dnnl_memory_destroy(m);
                }
                dnnl_primitive_destroy(pr);
            }
            dnnl_primitive_desc_destroy(pd);
        }
    }
    *dtype = x->dtype;
    *rank = x->rank;
    memcpy(dims, x->dims, (size_t)x->rank * 8);
    *data = o;
    return 0;
}
