/* train_layers.c: the training layer graph: construction, forward and backward passes (oneDNN
 * convolution, batch norm and pooling primitives; ReLU, residual add, global pooling, dropout in C;
 * fully connected on oneDNN's sgemm). */
#include "nn/nn_internal.h"
#include "nn/train_internal.h"
#include <math.h>
#include <omp.h>
#include <string.h>
#include <xmmintrin.h>
#include <pmmintrin.h>

#define DN(call)                                                                                   \
    do {                                                                                           \
        dnnl_status_t st_ = (call);                                                                \
        if (st_ != dnnl_success) return vt__err(VT_EINTERNAL, "oneDNN: %s failed (status %d)", #call, (int)st_); \
    } while (0)

void vt__train_set_ftz(void) {
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
#pragma omp parallel
    {
        _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
        _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
    }
}


int vt__tnet_create(int c, int h, int w, tnet **out) {
    *out = NULL;
    if (c <= 0 || h <= 0 || w <= 0) return vt__err(VT_EINVAL, "tnet: bad input shape %dx%dx%d", c, h, w);
    tnet *net = calloc(1, sizeof *net);
    if (!net) return vt__err(VT_ENOMEM, "out of memory");
    if (dnnl_engine_create(&net->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&net->stream, net->eng, dnnl_stream_default_flags) != dnnl_success) {
        vt__tnet_free(net);
        return vt__err(VT_EINTERNAL, "oneDNN: cannot create the CPU engine");
    }
    net->cap = 64;
    net->nodes = calloc((size_t)net->cap, sizeof *net->nodes);
    if (!net->nodes) {
        vt__tnet_free(net);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    tn_node *in = &net->nodes[net->n++];
    in->kind = TN_INPUT;
    in->c = c, in->h = h, in->w = w;
    *out = net;
    return 0;
}

static void free_runtime(tn_node *nd) {
    dnnl_primitive_t *ps[] = {&nd->fwd, &nd->fwd_inf, &nd->bwd_d, &nd->bwd_w, &nd->r_wf, &nd->r_wb, &nd->r_dw};
    for (size_t i = 0; i < sizeof ps / sizeof *ps; i++)
        if (*ps[i]) dnnl_primitive_destroy(*ps[i]), *ps[i] = NULL;
    dnnl_memory_t *ms[] = {&nd->m_y, &nd->m_dy, &nd->m_w, &nd->m_b, &nd->m_dw, &nd->m_db,
                           &nd->m_mean, &nd->m_var, &nd->m_rmean, &nd->m_rvar, &nd->m_ws,
                           &nd->m_wf, &nd->m_wb, &nd->m_dwi};
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++)
        if (*ms[i]) dnnl_memory_destroy(*ms[i]), *ms[i] = NULL;
    free(nd->y), nd->y = NULL;
    free(nd->dy), nd->dy = NULL;
    free(nd->mean), nd->mean = NULL;
    free(nd->var), nd->var = NULL;
    free(nd->mask), nd->mask = NULL;
    vt__wino_free(nd->wino_f), nd->wino_f = NULL;
    vt__wino_free(nd->wino_b), nd->wino_b = NULL;
}

void vt__tnet_free(tnet *net) {
    if (!net) return;
    for (int i = 0; i < net->n; i++) {
        tn_node *nd = &net->nodes[i];
        free_runtime(nd);
        for (int p = 0; p < nd->nprm; p++) {
            free(nd->prm[p].w), free(nd->prm[p].g), free(nd->prm[p].m), free(nd->prm[p].v);
        }
        free(nd->run_mean), free(nd->run_var);
    }
    free(net->nodes);
    free(net->tmp);
    free(net->wscratch);
    if (net->m_scratch) dnnl_memory_destroy(net->m_scratch);
    free(net->scratch);
    if (net->stream) dnnl_stream_destroy(net->stream);
    if (net->eng) dnnl_engine_destroy(net->eng);
    free(net);
}

/* Appends a node fed by `in` (checked); returns its index or a negative code. */
static int add_node(tnet *net, tn_kind kind, int in) {
    if (net->batch) return vt__err(VT_ESTATE, "tnet: cannot add layers after setup");
    if (in < 0 || in >= net->n) return vt__err(VT_EINVAL, "tnet: input node %d does not exist", in);
    if (net->n == net->cap) {
        tn_node *nn = realloc(net->nodes, (size_t)net->cap * 2 * sizeof *nn);
        if (!nn) return vt__err(VT_ENOMEM, "out of memory");
        memset(nn + net->cap, 0, (size_t)net->cap * sizeof *nn);
        net->nodes = nn;
        net->cap *= 2;
    }
    tn_node *nd = &net->nodes[net->n];
    memset(nd, 0, sizeof *nd);
    nd->kind = kind;
    nd->in[0] = in;
    nd->in[1] = -1;
    nd->nin = 1;
    nd->c = net->nodes[in].c, nd->h = net->nodes[in].h, nd->w = net->nodes[in].w;
    return net->n++;
}

static int alloc_param(tn_param *p, size_t n, int decay) {
    p->n = n;
    p->decay = decay;
    p->w = calloc(n, sizeof(float));
    p->g = calloc(n, sizeof(float));
    p->m = calloc(n, sizeof(float));
    p->v = calloc(n, sizeof(float));
    if (!p->w || !p->g || !p->m || !p->v) return vt__err(VT_ENOMEM, "out of memory");
    return 0;
}

int vt__tnet_conv(tnet *net, int in, int oc, int k, int stride, int pad, int groups, int bias) {
    if (in < 0 || in >= net->n) return vt__err(VT_EINVAL, "tnet: input node %d does not exist", in);
    const tn_node *src = &net->nodes[in];
    if (oc <= 0 || k <= 0 || stride <= 0 || pad < 0 || groups <= 0 || src->c % groups || oc % groups)
        return vt__err(VT_EINVAL, "tnet: bad convolution (%d->%d channels, k %d, stride %d, groups %d)", src->c, oc, k,
                       stride, groups);
    int oh = (src->h + 2 * pad - k) / stride + 1, ow = (src->w + 2 * pad - k) / stride + 1;
    if (oh <= 0 || ow <= 0) return vt__err(VT_EINVAL, "tnet: convolution output would be empty");
    int ic = src->c;
    int id = add_node(net, TN_CONV, in);
    if (id < 0) return id;
    tn_node *nd = &net->nodes[id];
    nd->c = oc, nd->h = oh, nd->w = ow;
    nd->k = k, nd->stride = stride, nd->pad = pad, nd->groups = groups, nd->bias = bias;
    nd->nprm = bias ? 2 : 1;
    int rc = alloc_param(&nd->prm[0], (size_t)oc * (ic / groups) * k * k, 1);
    if (!rc && bias) rc = alloc_param(&nd->prm[1], (size_t)oc, 0);
    return rc ? rc : id;
}

int vt__tnet_bn(tnet *net, int in) {
    int id = add_node(net, TN_BN, in);
    if (id < 0) return id;
    tn_node *nd = &net->nodes[id];
    nd->eps = 1e-5f;
    nd->momentum = 0.1f;
    nd->nprm = 2;
    int rc = alloc_param(&nd->prm[0], (size_t)nd->c, 0);
    if (!rc) rc = alloc_param(&nd->prm[1], (size_t)nd->c, 0);
    nd->run_mean = calloc((size_t)nd->c, sizeof(float));
    nd->run_var = calloc((size_t)nd->c, sizeof(float));
    if (!rc && (!nd->run_mean || !nd->run_var)) rc = vt__err(VT_ENOMEM, "out of memory");
    for (int c = 0; !rc && c < nd->c; c++) nd->prm[0].w[c] = 1, nd->run_var[c] = 1;
    return rc ? rc : id;
}

int vt__tnet_relu(tnet *net, int in) { return add_node(net, TN_RELU, in); }

int vt__tnet_bn_relu(tnet *net, int in) {
    int id = vt__tnet_bn(net, in);
    if (id >= 0) net->nodes[id].fuse_relu = 1;
    return id;
}

int vt__tnet_pool(tnet *net, int in, int max, int k, int stride, int pad) {
    if (in < 0 || in >= net->n) return vt__err(VT_EINVAL, "tnet: input node %d does not exist", in);
    const tn_node *src = &net->nodes[in];
    if (k <= 0 || stride <= 0 || pad < 0 || pad >= k) return vt__err(VT_EINVAL, "tnet: bad pooling k %d stride %d pad %d", k, stride, pad);
    int oh = (src->h + 2 * pad - k) / stride + 1, ow = (src->w + 2 * pad - k) / stride + 1;
    if (oh <= 0 || ow <= 0) return vt__err(VT_EINVAL, "tnet: pooling output would be empty");
    int id = add_node(net, max ? TN_MAXPOOL : TN_AVGPOOL, in);
    if (id < 0) return id;
    tn_node *nd = &net->nodes[id];
    nd->h = oh, nd->w = ow, nd->k = k, nd->stride = stride, nd->pad = pad;
    return id;
}

int vt__tnet_gap(tnet *net, int in) {
    int id = add_node(net, TN_GAP, in);
    if (id >= 0) net->nodes[id].h = net->nodes[id].w = 1;
    return id;
}

int vt__tnet_add(tnet *net, int a, int b) {
    if (a < 0 || a >= net->n || b < 0 || b >= net->n) return vt__err(VT_EINVAL, "tnet: add of missing nodes");
    const tn_node *na = &net->nodes[a], *nb = &net->nodes[b];
    if (na->c != nb->c || na->h != nb->h || na->w != nb->w)
        return vt__err(VT_EINVAL, "tnet: add of different shapes %dx%dx%d and %dx%dx%d", na->c, na->h, na->w, nb->c, nb->h,
                       nb->w);
    int id = add_node(net, TN_ADD, a);
    if (id < 0) return id;
    net->nodes[id].in[1] = b;
    net->nodes[id].nin = 2;
    return id;
}

int vt__tnet_fc(tnet *net, int in, int out) {
    if (in < 0 || in >= net->n) return vt__err(VT_EINVAL, "tnet: input node %d does not exist", in);
    if (net->nodes[in].h != 1 || net->nodes[in].w != 1 || out <= 0)
        return vt__err(VT_EINVAL, "tnet: fully connected layers take a C x 1 x 1 input");
    int ic = net->nodes[in].c;
    int id = add_node(net, TN_FC, in);
    if (id < 0) return id;
    tn_node *nd = &net->nodes[id];
    nd->c = out;
    nd->nprm = 2;
    nd->bias = 1;
    int rc = alloc_param(&nd->prm[0], (size_t)out * ic, 1);
    if (!rc) rc = alloc_param(&nd->prm[1], (size_t)out, 0);
    return rc ? rc : id;
}

int vt__tnet_dropout(tnet *net, int in, float p) {
    if (!(p >= 0 && p < 1)) return vt__err(VT_EINVAL, "tnet: dropout probability must be in [0, 1)");
    int id = add_node(net, TN_DROPOUT, in);
    if (id >= 0) net->nodes[id].p = p;
    return id;
}

double vt__rng_normal(vt_rng *r) {
    double u1 = vt_rng_uniform(r), u2 = vt_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void vt__tnet_init(tnet *net, uint64_t seed) {
    vt_rng r;
    vt_rng_seed(&r, seed);
    for (int i = 0; i < net->n; i++) {
        tn_node *nd = &net->nodes[i];
        if (nd->kind == TN_CONV || nd->kind == TN_FC) {
            size_t fan_in = nd->prm[0].n / (size_t)nd->c;
            double sd = sqrt(2.0 / (double)fan_in);
            for (size_t j = 0; j < nd->prm[0].n; j++) nd->prm[0].w[j] = (float)(sd * vt__rng_normal(&r));
            if (nd->nprm > 1) memset(nd->prm[1].w, 0, nd->prm[1].n * sizeof(float));
        } else if (nd->kind == TN_BN) {
            for (int c = 0; c < nd->c; c++) {
                nd->prm[0].w[c] = nd->zero_gamma ? 0.0f : 1.0f;
                nd->prm[1].w[c] = 0;
                nd->run_mean[c] = 0;
                nd->run_var[c] = 1;
            }
        }
        for (int p = 0; p < nd->nprm; p++) {
            memset(nd->prm[p].m, 0, nd->prm[p].n * sizeof(float));
            memset(nd->prm[p].v, 0, nd->prm[p].n * sizeof(float));
        }
    }
}

size_t vt__tnet_param_count(const tnet *net) {
    size_t n = 0;
    for (int i = 0; i < net->n; i++)
        for (int p = 0; p < net->nodes[i].nprm; p++) n += net->nodes[i].prm[p].n;
    return n;
}

/* ---------------------------------------------------------------- runtime setup */

static void md_act(dnnl_memory_desc_t *md, int n, const tn_node *nd) {
    dnnl_dims_t d = {n, nd->c, nd->h, nd->w};
    dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, dnnl_nhwc);
}

static int md_is_nhwc(const dnnl_memory_desc_t *md) {
    dnnl_memory_desc_t t;
    dnnl_memory_desc_init_by_tag(&t, 4, md->dims, dnnl_f32, dnnl_nhwc);
    return dnnl_memory_desc_equal(&t, md);
}

/* Offset of element (n, c, h, w) in a 4-D activation of layout md (plain or one inner channel block). */
static inline size_t act_off(const dnnl_memory_desc_t *md, int n, int c, int h, int w) {
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    int B = b->inner_nblks ? (int)b->inner_blks[0] : 1;
    return (size_t)(n * b->strides[0] + (c / B) * b->strides[1] + h * b->strides[2] + w * b->strides[3] + c % B);
}

static void md_vec(dnnl_memory_desc_t *md, int n) {
    dnnl_dims_t d = {n};
    dnnl_memory_desc_init_by_tag(md, 1, d, dnnl_f32, dnnl_a);
}

static int mem(tnet *net, const dnnl_memory_desc_t *md, void *ptr, dnnl_memory_t *out) {
    DN(dnnl_memory_create(out, md, net->eng, ptr ? ptr : DNNL_MEMORY_NONE));
    return 0;
}

/* Creates a primitive for op descriptor `desc` (hint: the forward pd for backward passes).
 * *pd_out (may be NULL) keeps the primitive descriptor, else it is destroyed. */
static int make_prim(tnet *net, const void *desc, const_dnnl_primitive_desc_t hint, dnnl_primitive_t *prim,
                     dnnl_primitive_desc_t *pd_out) {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_attr_t attr;
    DN(dnnl_primitive_attr_create(&attr));
    dnnl_status_t cs = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (cs == dnnl_success) cs = dnnl_primitive_desc_create(&pd, desc, attr, net->eng, hint);
    dnnl_primitive_attr_destroy(attr);
    if (cs != dnnl_success) return vt__err(VT_EINTERNAL, "oneDNN: cannot create a primitive descriptor (status %d)", (int)cs);
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sb = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (sb > net->scratch_need) net->scratch_need = sb;
    dnnl_status_t st = dnnl_primitive_create(prim, pd);
    if (st != dnnl_success) {
        dnnl_primitive_desc_destroy(pd);
        return vt__err(VT_EINTERNAL, "oneDNN: cannot create a primitive (status %d)", (int)st);
    }
    if (pd_out) *pd_out = pd;
    else dnnl_primitive_desc_destroy(pd);
    return 0;
}

/* When the primitive `pd` wants weights (query `what`) in a layout other than the plain `plain`,
 * allocates memory in that layout and a reorder between it and `user` (to_user: from it). */
static int weights_layout(tnet *net, const_dnnl_primitive_desc_t pd, dnnl_query_t what, const dnnl_memory_desc_t *plain,
                          dnnl_memory_t user, int to_user, dnnl_memory_t *mem_out, dnnl_primitive_t *reorder) {
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, what, 0);
    if (!want) return vt__err(VT_EINTERNAL, "oneDNN: no weights layout");
    if (dnnl_memory_desc_equal(want, plain)) return 0;
    DN(dnnl_memory_create(mem_out, want, net->eng, DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_desc_t rpd;
    if (to_user) DN(dnnl_reorder_primitive_desc_create(&rpd, want, net->eng, plain, net->eng, NULL));
    else DN(dnnl_reorder_primitive_desc_create(&rpd, plain, net->eng, want, net->eng, NULL));
    dnnl_status_t st = dnnl_primitive_create(reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    (void)user;
    if (st != dnnl_success) return vt__err(VT_EINTERNAL, "oneDNN: cannot create a weights reorder (status %d)", (int)st);
    return 0;
}

/* Whether convolution nd (input src) runs its forward pass, data gradient and weights gradient
 * with Winograd's F(4x4, 3x3) (wino.c): 3x3, stride 1, padding 1, no groups, input and output
 * channels in blocks of 16, the input in nChw8c, blocked layouts. */
static int wino_conv(const tnet *net, const tn_node *nd, const tn_node *src, int n) {
    if (net->plain || nd->k != 3 || nd->stride != 1 || nd->pad != 1 || nd->groups != 1) return 0;
    if (src->c % 16 || nd->c % 16 || src->c < 16 || nd->c < 16 || !vt__wino_enabled()) return 0;
    dnnl_memory_desc_t b8;
    dnnl_dims_t d = {n, src->c, src->h, src->w};
    return dnnl_memory_desc_init_by_tag(&b8, 4, d, dnnl_f32, dnnl_aBcd8b) == dnnl_success &&
           dnnl_memory_desc_equal(&b8, &src->md);
}

static int setup_conv(tnet *net, tn_node *nd, const tn_node *src, int n) {
    dnnl_memory_desc_t msrc = src->md, mdst, mw, mb, many;
    md_act(&mdst, n, nd);
    int wino = wino_conv(net, nd, src, n);
    if (!net->plain && nd->c % 8 == 0) {
        dnnl_dims_t d = {n, nd->c, nd->h, nd->w};
        dnnl_memory_desc_init_by_tag(&mdst, 4, d, dnnl_f32, wino || net->block8 ? dnnl_aBcd8b : dnnl_format_tag_any);
    }
    if (wino) {
        /* the data gradient maps dy (c channels) back to the input's ic: the same kernel shape
         * with channels swapped and the weights turned round */
        nd->wino_f = vt__wino_new(src->c, nd->c, src->h, src->w, nd->h, nd->w, 1, 1);
        nd->wino_b = vt__wino_new(nd->c, src->c, nd->h, nd->w, src->h, src->w, 1, 1);
        if (!nd->wino_f || !nd->wino_b) return vt__err(VT_ENOMEM, "out of memory");
        size_t need = vt__wino_scratch(nd->wino_f, n), nb = vt__wino_scratch(nd->wino_b, n);
        if (nb > need) need = nb;
        if (need > net->wscratch_n) {
            free(net->wscratch);
            net->wscratch = malloc(need * sizeof(float));
            net->wscratch_n = net->wscratch ? need : 0;
            if (!net->wscratch) return vt__err(VT_ENOMEM, "out of memory");
        }
        /* wino.c runs all three passes on the plain OIHW weights: no oneDNN primitive needed */
        nd->md = mdst;
        return 0;
    }
    int g = nd->groups, ic = src->c;
    if (g > 1) {
        dnnl_dims_t d = {g, nd->c / g, ic / g, nd->k, nd->k};
        dnnl_memory_desc_init_by_tag(&mw, 5, d, dnnl_f32, dnnl_goihw);
    } else {
        dnnl_dims_t d = {nd->c, ic, nd->k, nd->k};
        dnnl_memory_desc_init_by_tag(&mw, 4, d, dnnl_f32, dnnl_oihw);
    }
    md_vec(&mb, nd->c);
    dnnl_memory_desc_init_by_tag(&many, mw.ndims, mw.dims, dnnl_f32, dnnl_format_tag_any);
    dnnl_dims_t strides = {nd->stride, nd->stride}, pl = {nd->pad, nd->pad};
    /* right padding so that the output size is exactly (H + 2p - k) / s + 1 */
    dnnl_dims_t pr = {(nd->h - 1) * nd->stride + nd->k - src->h - nd->pad, (nd->w - 1) * nd->stride + nd->k - src->w - nd->pad};
    dnnl_convolution_desc_t cd;
    DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &msrc, &many,
                                          nd->bias ? &mb : NULL, &mdst, strides, pl, pr));
    dnnl_primitive_desc_t fpd;
    int rc = make_prim(net, &cd, NULL, &nd->fwd, &fpd);
    if (rc) return rc;
    mdst = nd->md = *dnnl_primitive_desc_query_md(fpd, dnnl_query_dst_md, 0);
    dnnl_convolution_desc_t bd, wd;
    dnnl_status_t st = dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &msrc, &many, &mdst, strides, pl, pr);
    if (st == dnnl_success) st = dnnl_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct, &msrc, &many,
                                                                           nd->bias ? &mb : NULL, &mdst, strides, pl, pr);
    if (st != dnnl_success) rc = vt__err(VT_EINTERNAL, "oneDNN: convolution backward descriptors (status %d)", (int)st);
    dnnl_primitive_desc_t bpd = NULL, wpd = NULL;
    if (!rc) rc = make_prim(net, &bd, fpd, &nd->bwd_d, &bpd);
    if (!rc) rc = make_prim(net, &wd, fpd, &nd->bwd_w, &wpd);
    if (!rc && (rc = mem(net, &mw, nd->prm[0].w, &nd->m_w)) == 0) rc = mem(net, &mw, nd->prm[0].g, &nd->m_dw);
    if (!rc) rc = weights_layout(net, fpd, dnnl_query_weights_md, &mw, nd->m_w, 0, &nd->m_wf, &nd->r_wf);
    if (!rc) rc = weights_layout(net, bpd, dnnl_query_weights_md, &mw, nd->m_w, 0, &nd->m_wb, &nd->r_wb);
    if (!rc) rc = weights_layout(net, wpd, dnnl_query_diff_weights_md, &mw, nd->m_dw, 1, &nd->m_dwi, &nd->r_dw);
    dnnl_primitive_desc_destroy(fpd);
    if (bpd) dnnl_primitive_desc_destroy(bpd);
    if (wpd) dnnl_primitive_desc_destroy(wpd);
    if (rc) return rc;
    if (nd->bias && ((rc = mem(net, &mb, nd->prm[1].w, &nd->m_b)) || (rc = mem(net, &mb, nd->prm[1].g, &nd->m_db)))) return rc;
    return 0;
}

static int setup_bn(tnet *net, tn_node *nd, int n) {
    (void)n;
    dnnl_memory_desc_t md = nd->md, mc;
    md_vec(&mc, nd->c);
    unsigned flags = dnnl_use_scale | dnnl_use_shift | (nd->fuse_relu ? dnnl_fuse_norm_relu : 0);
    dnnl_batch_normalization_desc_t fd, id, bd;
    DN(dnnl_batch_normalization_forward_desc_init(&fd, dnnl_forward_training, &md, nd->eps, flags));
    DN(dnnl_batch_normalization_forward_desc_init(&id, dnnl_forward_inference, &md, nd->eps, flags | dnnl_use_global_stats));
    DN(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &md, &md, nd->eps, flags));
    dnnl_primitive_desc_t fpd;
    int rc = make_prim(net, &fd, NULL, &nd->fwd, &fpd);
    if (rc) return rc;
    const dnnl_memory_desc_t *wsmd = dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0);
    if (wsmd && wsmd->ndims > 0 && dnnl_memory_create(&nd->m_ws, wsmd, net->eng, DNNL_MEMORY_ALLOCATE) != dnnl_success)
        rc = vt__err(VT_EINTERNAL, "oneDNN: batch norm workspace");
    if (!rc) rc = make_prim(net, &id, NULL, &nd->fwd_inf, NULL);
    if (!rc) rc = make_prim(net, &bd, fpd, &nd->bwd_d, NULL);
    dnnl_primitive_desc_destroy(fpd);
    if (rc) return rc;
    nd->mean = calloc((size_t)nd->c, sizeof(float));
    nd->var = calloc((size_t)nd->c, sizeof(float));
    if (!nd->mean || !nd->var) return vt__err(VT_ENOMEM, "out of memory");
    if ((rc = mem(net, &mc, nd->prm[0].w, &nd->m_w)) || (rc = mem(net, &mc, nd->prm[1].w, &nd->m_b)) ||
        (rc = mem(net, &mc, nd->prm[0].g, &nd->m_dw)) || (rc = mem(net, &mc, nd->prm[1].g, &nd->m_db)) ||
        (rc = mem(net, &mc, nd->mean, &nd->m_mean)) || (rc = mem(net, &mc, nd->var, &nd->m_var)) ||
        (rc = mem(net, &mc, nd->run_mean, &nd->m_rmean)) || (rc = mem(net, &mc, nd->run_var, &nd->m_rvar)))
        return rc;
    return 0;
}

static int setup_pool(tnet *net, tn_node *nd, const tn_node *src, int n) {
    dnnl_memory_desc_t msrc = src->md, mdst;
    md_act(&mdst, n, nd);
    if (!md_is_nhwc(&msrc)) {
        dnnl_dims_t d = {n, nd->c, nd->h, nd->w};
        dnnl_memory_desc_init_by_tag(&mdst, 4, d, dnnl_f32, dnnl_format_tag_any);
    }
    dnnl_dims_t strides = {nd->stride, nd->stride}, kern = {nd->k, nd->k}, pl = {nd->pad, nd->pad};
    dnnl_dims_t pr = {(nd->h - 1) * nd->stride + nd->k - src->h - nd->pad, (nd->w - 1) * nd->stride + nd->k - src->w - nd->pad};
    dnnl_alg_kind_t alg = nd->kind == TN_MAXPOOL ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
    dnnl_pooling_desc_t fd, bd;
    DN(dnnl_pooling_forward_desc_init(&fd, dnnl_forward_training, alg, &msrc, &mdst, strides, kern, pl, pr));
    dnnl_primitive_desc_t fpd;
    int rc = make_prim(net, &fd, NULL, &nd->fwd, &fpd);
    if (rc) return rc;
    nd->md = mdst = *dnnl_primitive_desc_query_md(fpd, dnnl_query_dst_md, 0);
    dnnl_status_t bst = dnnl_pooling_backward_desc_init(&bd, alg, &msrc, &mdst, strides, kern, pl, pr);
    if (bst != dnnl_success) {
        dnnl_primitive_desc_destroy(fpd);
        return vt__err(VT_EINTERNAL, "oneDNN: pooling backward descriptor (status %d)", (int)bst);
    }
    const dnnl_memory_desc_t *wsmd = dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0);
    if (wsmd && wsmd->ndims > 0) {
        dnnl_status_t st = dnnl_memory_create(&nd->m_ws, wsmd, net->eng, DNNL_MEMORY_ALLOCATE);
        if (st != dnnl_success) rc = vt__err(VT_EINTERNAL, "oneDNN: pooling workspace (status %d)", (int)st);
    }
    if (!rc) rc = make_prim(net, &bd, fpd, &nd->bwd_d, NULL);
    dnnl_primitive_desc_destroy(fpd);
    return rc;
}

/* Whether oneDNN picked its (slow) reference implementation for primitive p. */
static int is_ref(const_dnnl_primitive_t p) {
    const_dnnl_primitive_desc_t pd;
    const char *impl = NULL;
    if (!p || dnnl_primitive_get_primitive_desc(p, &pd) != dnnl_success) return 0;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl) return 0;
    return !strncmp(impl, "ref", 3);
}

static int setup_impl(tnet *net, int batch);

/* The scratchpad every primitive of the net shares (they run one at a time), sized for the
 * largest plus 64 KB: oneDNN 2.6.3's NHWC 1x1 stride-2 kernels with a channel count that is not a
 * multiple of 8 write a few bytes past the scratchpad they ask for (seen under valgrind as writes
 * 16 bytes after a 432-byte block, and as glibc heap corruption), which the slack absorbs. */
static int scratch_alloc(tnet *net) {
    size_t want = net->scratch_need + (64u << 10);
    if (net->m_scratch && net->scratch_bytes >= want) return 0;
    if (net->m_scratch) dnnl_memory_destroy(net->m_scratch), net->m_scratch = NULL;
    free(net->scratch);
    net->scratch = NULL;
    void *b = NULL;
    if (posix_memalign(&b, 64, want)) return vt__err(VT_ENOMEM, "out of memory");
    net->scratch = b;
    net->scratch_bytes = want;
    dnnl_memory_desc_t md;
    dnnl_dims_t d = {(dnnl_dim_t)want};
    DN(dnnl_memory_desc_init_by_tag(&md, 1, d, dnnl_u8, dnnl_a));
    DN(dnnl_memory_create(&net->m_scratch, &md, net->eng, net->scratch));
    return 0;
}

/* Contract: frees the previous runtime, allocates y/dy for every node and creates every
 * primitive for batch size n. On failure the net has no runtime (batch 0).
 * oneDNN's primitive cache is off while doing so: with it, creating the NHWC primitives after
 * destroying blocked ones for the same shapes (the fallback below) handed back primitives that
 * corrupted the heap (libdnnl 2.6.3; seen under valgrind and as glibc aborts). The cache only
 * saves time when identical primitives are created again, which the trainer never does. */
int vt__tnet_setup(tnet *net, int batch) {
    int cap = 0;
    int have = dnnl_get_primitive_cache_capacity(&cap) == dnnl_success;
    if (have) dnnl_set_primitive_cache_capacity(0);
    int rc = setup_impl(net, batch);
    if (have) dnnl_set_primitive_cache_capacity(cap);
    return rc;
}

static int setup_impl(tnet *net, int batch) {
    if (batch <= 0) return vt__err(VT_EINVAL, "tnet: batch must be positive");
    if (net->batch == batch) return 0;
    /* primitives size their per-thread buffers for the thread count at creation: make it the one
     * they will run with */
    if (net->threads > 0) omp_set_num_threads(net->threads);
    size_t maxel = 0;
    for (int i = 0; i < net->n; i++) free_runtime(&net->nodes[i]);
    net->batch = 0;
    int rc = 0;
    for (int i = 0; i < net->n && !rc; i++) {
        tn_node *nd = &net->nodes[i];
        const tn_node *src = nd->nin ? &net->nodes[nd->in[0]] : NULL;
        /* layout first: primitives choose it for convolution and pooling outputs */
        md_act(&nd->md, batch, nd);
        if (nd->kind == TN_INPUT && !net->plain) {
            dnnl_dims_t d = {batch, nd->c, nd->h, nd->w};
            dnnl_memory_desc_init_by_tag(&nd->md, 4, d, dnnl_f32, dnnl_nchw);
        }
        switch (nd->kind) {
        case TN_CONV: rc = setup_conv(net, nd, src, batch); break;
        case TN_BN:
            nd->md = src->md;
            rc = setup_bn(net, nd, batch);
            break;
        case TN_MAXPOOL:
        case TN_AVGPOOL: rc = setup_pool(net, nd, src, batch); break;
        case TN_RELU:
        case TN_DROPOUT: nd->md = src->md; break;
        case TN_ADD: nd->md = src->md; break; /* a second input in another layout is converted on the fly */
        default: break;
        }
        if (rc) break;
        size_t el = dnnl_memory_desc_get_size(&nd->md) / sizeof(float);
        nd->el = el;
        if (el > maxel) maxel = el;
        nd->y = calloc(el, sizeof(float));
        nd->dy = calloc(el, sizeof(float));
        if (!nd->y || !nd->dy) {
            rc = vt__err(VT_ENOMEM, "tnet: out of memory for activations");
            break;
        }
        if ((rc = mem(net, &nd->md, nd->y, &nd->m_y)) || (rc = mem(net, &nd->md, nd->dy, &nd->m_dy))) break;
        if (nd->kind == TN_DROPOUT && !(nd->mask = malloc(el * sizeof(float)))) rc = vt__err(VT_ENOMEM, "out of memory");
    }
    if (!rc) rc = scratch_alloc(net);
    if (!rc && maxel > net->tmpcap) {
        free(net->tmp);
        net->tmp = malloc(maxel * sizeof(float));
        net->tmpcap = net->tmp ? maxel : 0;
        if (!net->tmp) rc = vt__err(VT_ENOMEM, "out of memory");
    }
    if (rc) {
        for (int i = 0; i < net->n; i++) free_runtime(&net->nodes[i]);
        return rc;
    }
    /* oneDNN 2.6 has no jit kernel for some shapes in blocked layouts (e.g. the weights gradient of a
     * 3x3 convolution on a 2x2 map) and falls back to its reference code, thousands of times slower:
     * then run the whole net in NHWC, where its gemm-based kernels take every shape. */
    if (!net->plain)
        for (int i = 0; i < net->n; i++) {
            const tn_node *nd = &net->nodes[i];
            if (nd->kind != TN_CONV) continue;
            int bwd_d_used = nd->in[0] > 0 || net->input_grad; /* the stem's data gradient is not computed */
            if (is_ref(nd->fwd) || (bwd_d_used && is_ref(nd->bwd_d)) || is_ref(nd->bwd_w)) {
                VT_LOGI("tnet: node %d has only a reference convolution in blocked layout; using NHWC", i);
                for (int j = 0; j < net->n; j++) free_runtime(&net->nodes[j]);
                net->plain = 1;
                return setup_impl(net, batch);
            }
        }
    net->batch = batch;
    return 0;
}

/* ---------------------------------------------------------------- forward */

/* Runs primitive p with args plus the net's shared scratchpad (primitives made by make_prim take
 * it from us; others ignore it). */
static int run(tnet *net, dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args) {
    dnnl_exec_arg_t a[16];
    if (nargs > 15) return vt__err(VT_EINTERNAL, "tnet: too many primitive arguments");
    memcpy(a, args, (size_t)nargs * sizeof *a);
    a[nargs].arg = DNNL_ARG_SCRATCHPAD;
    a[nargs].memory = net->m_scratch;
    DN(dnnl_primitive_execute(p, net->stream, nargs + (net->m_scratch != NULL), a));
    DN(dnnl_stream_wait(net->stream));
    return 0;
}

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Contract: see train_internal.h. BN running statistics are updated (momentum, unbiased
 * variance) after every training-mode BN forward. */
int vt__tnet_forward(tnet *net, const float *x, int training) {
    int n = net->batch;
    if (!n) return vt__err(VT_ESTATE, "tnet: forward before setup");
    if (net->threads > 0) omp_set_num_threads(net->threads);
    tn_node *in0 = &net->nodes[0];
    memcpy(in0->y, x, in0->el * sizeof(float));
    for (int i = 1; i < net->n; i++) {
        tn_node *nd = &net->nodes[i];
        tn_node *src = &net->nodes[nd->in[0]];
        size_t el = nd->el;
        int rc = 0;
        switch (nd->kind) {
        case TN_CONV: {
            if (nd->wino_f) {
                vt__wino_set_weights(nd->wino_f, nd->prm[0].w, nd->bias ? nd->prm[1].w : NULL, 0, 1);
                vt__wino_run(nd->wino_f, n, src->y, nd->y, net->wscratch, 0, NULL);
                break;
            }
            if (nd->r_wf) {
                dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, nd->m_w}, {DNNL_ARG_TO, nd->m_wf}};
                if ((rc = run(net, nd->r_wf, 2, r))) break;
            }
            dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, src->m_y}, {DNNL_ARG_WEIGHTS, nd->m_wf ? nd->m_wf : nd->m_w},
                                    {DNNL_ARG_DST, nd->m_y}, {DNNL_ARG_BIAS, nd->m_b}};
            rc = run(net, nd->fwd, nd->bias ? 4 : 3, a);
            break;
        }
        case TN_BN:
            if (training) {
                dnnl_exec_arg_t a[7] = {{DNNL_ARG_SRC, src->m_y}, {DNNL_ARG_DST, nd->m_y}, {DNNL_ARG_SCALE, nd->m_w},
                                        {DNNL_ARG_SHIFT, nd->m_b}, {DNNL_ARG_MEAN, nd->m_mean}, {DNNL_ARG_VARIANCE, nd->m_var},
                                        {DNNL_ARG_WORKSPACE, nd->m_ws}};
                rc = run(net, nd->fwd, nd->m_ws ? 7 : 6, a);
                double cnt = (double)n * nd->h * nd->w;
                float unb = cnt > 1 ? (float)(cnt / (cnt - 1)) : 1.0f, mo = nd->momentum;
                for (int c = 0; c < nd->c; c++) {
                    nd->run_mean[c] = (1 - mo) * nd->run_mean[c] + mo * nd->mean[c];
                    nd->run_var[c] = (1 - mo) * nd->run_var[c] + mo * nd->var[c] * unb;
                }
            } else {
                dnnl_exec_arg_t a[6] = {{DNNL_ARG_SRC, src->m_y}, {DNNL_ARG_DST, nd->m_y}, {DNNL_ARG_SCALE, nd->m_w},
                                        {DNNL_ARG_SHIFT, nd->m_b}, {DNNL_ARG_MEAN, nd->m_rmean}, {DNNL_ARG_VARIANCE, nd->m_rvar}};
                rc = run(net, nd->fwd_inf, 6, a);
            }
            break;
        case TN_MAXPOOL:
        case TN_AVGPOOL: {
            dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC, src->m_y}, {DNNL_ARG_DST, nd->m_y}, {DNNL_ARG_WORKSPACE, nd->m_ws}};
            rc = run(net, nd->fwd, nd->m_ws ? 3 : 2, a);
            break;
        }
        case TN_RELU: {
            const float *xs = src->y;
            float *y = nd->y;
#pragma omp parallel for schedule(static)
            for (size_t j = 0; j < el; j++) y[j] = xs[j] > 0 ? xs[j] : 0;
            break;
        }
        case TN_ADD: {
            const tn_node *nb = &net->nodes[nd->in[1]];
            const float *a = src->y, *b = nb->y;
            float *y = nd->y;
            if (dnnl_memory_desc_equal(&src->md, &nb->md)) {
#pragma omp parallel for schedule(static)
                for (size_t j = 0; j < el; j++) y[j] = a[j] + b[j];
            } else {
                for (int bi = 0; bi < n; bi++)
                    for (int c = 0; c < nd->c; c++)
                        for (int yy = 0; yy < nd->h; yy++)
                            for (int xx = 0; xx < nd->w; xx++) {
                                size_t o = act_off(&nd->md, bi, c, yy, xx);
                                y[o] = a[o] + b[act_off(&nb->md, bi, c, yy, xx)];
                            }
            }
            break;
        }
        case TN_GAP: {
            int c = nd->c;
            float inv = 1.0f / (float)(src->h * src->w);
            const dnnl_memory_desc_t *md = &src->md;
            for (int b = 0; b < n; b++)
                for (int k = 0; k < c; k++) {
                    float acc = 0;
                    for (int yy = 0; yy < src->h; yy++)
                        for (int xx = 0; xx < src->w; xx++) acc += src->y[act_off(md, b, k, yy, xx)];
                    nd->y[(size_t)b * c + k] = acc * inv;
                }
            break;
        }
        case TN_FC: {
            int ic = src->c, oc = nd->c;
            for (int b = 0; b < n; b++) memcpy(nd->y + (size_t)b * oc, nd->prm[1].w, (size_t)oc * sizeof(float));
            DN(dnnl_sgemm('N', 'T', n, oc, ic, 1.0f, src->y, ic, nd->prm[0].w, ic, 1.0f, nd->y, oc));
            break;
        }
        case TN_DROPOUT:
            if (training && nd->p > 0) {
                vt_rng r;
                vt_rng_seed(&r, mix64(net->drop_seed ^ mix64((uint64_t)i)));
                float keep = 1.0f / (1.0f - nd->p);
                for (size_t j = 0; j < el; j++) {
                    nd->mask[j] = vt_rng_uniform(&r) < nd->p ? 0.0f : keep;
                    nd->y[j] = src->y[j] * nd->mask[j];
                }
            } else {
                for (size_t j = 0; j < el; j++) nd->mask[j] = 1.0f;
                memcpy(nd->y, src->y, el * sizeof(float));
            }
            break;
        case TN_INPUT: break;
        }
        if (rc) return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------- backward */

void vt__tnet_zero_marks(tnet *net) {
    for (int i = 0; i < net->n; i++) net->nodes[i].written = 0;
}

void vt__tnet_mark_grad(tnet *net, int node) {
    if (node >= 0 && node < net->n) net->nodes[node].written = 1;
}

/* Whether gradients need to flow into node `i`. */
static int wants_grad(const tnet *net, int i) { return i > 0 || net->input_grad; }

/* Adds g (el floats) into node i's dy, or copies it there when dy holds nothing yet. */
static void accum(tnet *net, int i, const float *g, size_t el) {
    tn_node *nd = &net->nodes[i];
    if (!nd->written) {
        memcpy(nd->dy, g, el * sizeof(float));
        nd->written = 1;
        return;
    }
    float *d = nd->dy;
#pragma omp parallel for schedule(static)
    for (size_t j = 0; j < el; j++) d[j] += g[j];
}

/* Where a gradient for node i can be written: its dy itself when nothing was written there yet
 * (then marked written, and *direct set), else net->tmp, to be added with accum(). */
static float *grad_out(tnet *net, int i, int *direct) {
    tn_node *nd = &net->nodes[i];
    *direct = !nd->written;
    if (*direct) nd->written = 1;
    return *direct ? nd->dy : net->tmp;
}

/* Runs a oneDNN backward-data primitive whose DIFF_SRC is node src's dy: straight into dy when it
 * is still empty, else into scratch memory that is then added. args[diff_slot] is the DIFF_SRC. */
static int run_bwd_into(tnet *net, dnnl_primitive_t p, int nargs, dnnl_exec_arg_t *args, int srci) {
    tn_node *src = &net->nodes[srci];
    int direct;
    float *t = grad_out(net, srci, &direct);
    if (direct) return run(net, p, nargs, args);
    DN(dnnl_memory_set_data_handle(src->m_dy, t));
    int rc = run(net, p, nargs, args);
    DN(dnnl_memory_set_data_handle(src->m_dy, src->dy));
    if (!rc) accum(net, srci, t, src->el);
    return rc;
}

/* Contract: see train_internal.h. Nodes whose dy was never written (no path to a marked
 * output) are skipped, and their parameters get a zero gradient. */
int vt__tnet_backward(tnet *net) {
    int n = net->batch;
    if (!n) return vt__err(VT_ESTATE, "tnet: backward before setup");
    if (net->threads > 0) omp_set_num_threads(net->threads);
    for (int i = net->n - 1; i >= 1; i--) {
        tn_node *nd = &net->nodes[i];
        if (!nd->written) {
            for (int p = 0; p < nd->nprm; p++) memset(nd->prm[p].g, 0, nd->prm[p].n * sizeof(float));
            continue;
        }
        int si = nd->in[0];
        tn_node *src = &net->nodes[si];
        size_t el = nd->el, sel = src->el;
        int rc = 0;
        switch (nd->kind) {
        case TN_CONV: {
            if (nd->wino_f) {
                rc = vt__wino_bwd_weights(nd->wino_f, n, src->y, nd->dy, nd->prm[0].g, nd->bias ? nd->prm[1].g : NULL,
                                          net->wscratch);
                if (rc) rc = vt__err(rc, rc == VT_ENOMEM ? "out of memory" : "tnet: Winograd weights gradient");
            } else {
                dnnl_exec_arg_t w[4] = {{DNNL_ARG_SRC, src->m_y}, {DNNL_ARG_DIFF_DST, nd->m_dy},
                                        {DNNL_ARG_DIFF_WEIGHTS, nd->m_dwi ? nd->m_dwi : nd->m_dw}, {DNNL_ARG_DIFF_BIAS, nd->m_db}};
                rc = run(net, nd->bwd_w, nd->bias ? 4 : 3, w);
            }
            if (!rc && nd->r_dw) {
                dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, nd->m_dwi}, {DNNL_ARG_TO, nd->m_dw}};
                rc = run(net, nd->r_dw, 2, r);
            }
            if (!rc && nd->wino_b && wants_grad(net, si)) {
                /* straight into the input's dy, adding to what is there (one pass, no copy) */
                static const nn_wpo sum = {NN_WPO_SUM, 0.f, 0.f};
                int add = src->written;
                src->written = 1;
                vt__wino_set_weights(nd->wino_b, nd->prm[0].w, NULL, 1, 1);
                vt__wino_run(nd->wino_b, n, nd->dy, src->dy, net->wscratch, add, &sum);
                break;
            }
            if (!rc && nd->r_wb && wants_grad(net, si)) {
                dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, nd->m_w}, {DNNL_ARG_TO, nd->m_wb}};
                rc = run(net, nd->r_wb, 2, r);
            }
            if (!rc && wants_grad(net, si)) {
                dnnl_exec_arg_t a[3] = {{DNNL_ARG_DIFF_DST, nd->m_dy}, {DNNL_ARG_WEIGHTS, nd->m_wb ? nd->m_wb : nd->m_w},
                                        {DNNL_ARG_DIFF_SRC, src->m_dy}};
                rc = run_bwd_into(net, nd->bwd_d, 3, a, si);
            }
            break;
        }
        case TN_BN: {
            /* oneDNN computes the scale/shift gradients together with the data gradient */
            dnnl_exec_arg_t a[10] = {{DNNL_ARG_SRC, src->m_y},       {DNNL_ARG_MEAN, nd->m_mean},
                                    {DNNL_ARG_VARIANCE, nd->m_var}, {DNNL_ARG_DIFF_DST, nd->m_dy},
                                    {DNNL_ARG_SCALE, nd->m_w},      {DNNL_ARG_DIFF_SRC, src->m_dy},
                                    {DNNL_ARG_DIFF_SCALE, nd->m_dw}, {DNNL_ARG_DIFF_SHIFT, nd->m_db},
                                    {DNNL_ARG_SHIFT, nd->m_b}, {DNNL_ARG_WORKSPACE, nd->m_ws}};
            rc = run_bwd_into(net, nd->bwd_d, nd->m_ws ? 10 : 9, a, si);
            break;
        }
        case TN_MAXPOOL:
        case TN_AVGPOOL:
            if (wants_grad(net, si)) {
                dnnl_exec_arg_t a[3] = {{DNNL_ARG_DIFF_DST, nd->m_dy}, {DNNL_ARG_DIFF_SRC, src->m_dy}, {DNNL_ARG_WORKSPACE, nd->m_ws}};
                rc = run_bwd_into(net, nd->bwd_d, nd->m_ws ? 3 : 2, a, si);
            }
            break;
        case TN_RELU: {
            if (!wants_grad(net, si)) break;
            int direct;
            float *t = grad_out(net, si, &direct);
            const float *y = nd->y, *dy = nd->dy;
#pragma omp parallel for schedule(static)
            for (size_t j = 0; j < el; j++) t[j] = y[j] > 0 ? dy[j] : 0;
            if (!direct) accum(net, si, t, el);
            break;
        }
        case TN_ADD: {
            const tn_node *nb = &net->nodes[nd->in[1]];
            if (wants_grad(net, si)) accum(net, si, nd->dy, el);
            if (!wants_grad(net, nd->in[1])) break;
            if (dnnl_memory_desc_equal(&nd->md, &nb->md)) {
                accum(net, nd->in[1], nd->dy, el);
                break;
            }
            float *t = net->tmp;
            memset(t, 0, nb->el * sizeof(float));
            for (int bi = 0; bi < n; bi++)
                for (int c = 0; c < nd->c; c++)
                    for (int yy = 0; yy < nd->h; yy++)
                        for (int xx = 0; xx < nd->w; xx++)
                            t[act_off(&nb->md, bi, c, yy, xx)] = nd->dy[act_off(&nd->md, bi, c, yy, xx)];
            accum(net, nd->in[1], t, nb->el);
            break;
        }
        case TN_GAP: {
            if (!wants_grad(net, si)) break;
            int c = nd->c, direct;
            float inv = 1.0f / (float)(src->h * src->w), *t = grad_out(net, si, &direct);
            const dnnl_memory_desc_t *md = &src->md;
            memset(t, 0, sel * sizeof(float));
            for (int b = 0; b < n; b++)
                for (int k = 0; k < c; k++) {
                    float g = nd->dy[(size_t)b * c + k] * inv;
                    for (int yy = 0; yy < src->h; yy++)
                        for (int xx = 0; xx < src->w; xx++) t[act_off(md, b, k, yy, xx)] = g;
                }
            if (!direct) accum(net, si, t, sel);
            break;
        }
        case TN_FC: {
            int ic = src->c, oc = nd->c;
            DN(dnnl_sgemm('T', 'N', oc, ic, n, 1.0f, nd->dy, oc, src->y, ic, 0.0f, nd->prm[0].g, ic));
            float *db = nd->prm[1].g;
            for (int k = 0; k < oc; k++) db[k] = 0;
            for (int b = 0; b < n; b++)
                for (int k = 0; k < oc; k++) db[k] += nd->dy[(size_t)b * oc + k];
            if (wants_grad(net, si)) {
                int direct;
                float *t = grad_out(net, si, &direct);
                DN(dnnl_sgemm('N', 'N', n, ic, oc, 1.0f, nd->dy, oc, nd->prm[0].w, ic, 0.0f, t, ic));
                if (!direct) accum(net, si, t, sel);
            }
            break;
        }
        case TN_DROPOUT: {
            if (!wants_grad(net, si)) break;
            int direct;
            float *t = grad_out(net, si, &direct);
            for (size_t j = 0; j < el; j++) t[j] = nd->dy[j] * nd->mask[j];
            if (!direct) accum(net, si, t, el);
            break;
        }
        case TN_INPUT: break;
        }
        if (rc) return rc;
    }
    return 0;
}
