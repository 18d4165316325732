/* test_nn.c: unit tests of the CNN engine: ONNX loading errors, fused Conv/BN/activation/residual
 * against a naive reference, Winograd convolutions, named tensor readout, batching, plan reuse,
 * preprocessing metadata. */
#include "testutil.h"
#include "onnx/onnx.pb-c.h"
#include "nn/nn_internal.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* ---------------------------------------------------------------- a tiny ONNX builder */

static void *pool_[4096];
static int npool_;
static void *tmalloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    assert_non_null(p);
    assert_true(npool_ < 4096);
    pool_[npool_++] = p;
    return p;
}
static void tfree_all(void) {
    while (npool_) free(pool_[--npool_]);
}

typedef struct {
    Onnx__GraphProto g;
    Onnx__NodeProto *nodes[64];
    Onnx__TensorProto *inits[64];
    Onnx__ValueInfoProto *ins[4], *outs[4];
    Onnx__StringStringEntryProto *meta[8];
    int nmeta;
} builder;

static void b_init(builder *b) {
    memset(b, 0, sizeof *b);
    onnx__graph_proto__init(&b->g);
    b->g.name = "g";
    b->g.node = b->nodes;
    b->g.initializer = b->inits;
    b->g.input = b->ins;
    b->g.output = b->outs;
}

static void b_init_f(builder *b, const char *name, int rank, const int64_t *dims, const float *data) {
    Onnx__TensorProto *t = tmalloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = (char *)name;
    t->n_dims = (size_t)rank;
    t->dims = tmalloc((size_t)rank * 8);
    memcpy(t->dims, dims, (size_t)rank * 8);
    t->has_data_type = 1;
    t->data_type = 1;
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= (size_t)dims[i];
    t->has_raw_data = 1;
    t->raw_data.len = n * 4;
    t->raw_data.data = tmalloc(n * 4);
    memcpy(t->raw_data.data, data, n * 4);
    b->inits[b->g.n_initializer++] = t;
}

static Onnx__NodeProto *b_node(builder *b, const char *op, const char *in0, const char *in1, const char *in2,
                               const char *out) {
    Onnx__NodeProto *n = tmalloc(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = (char *)op;
    n->name = (char *)out;
    n->input = tmalloc(3 * sizeof(char *));
    const char *ins[3] = {in0, in1, in2};
    for (int i = 0; i < 3 && ins[i]; i++) n->input[n->n_input++] = (char *)ins[i];
    n->n_output = 1;
    n->output = tmalloc(sizeof(char *));
    n->output[0] = (char *)out;
    n->attribute = tmalloc(8 * sizeof(Onnx__AttributeProto *));
    b->nodes[b->g.n_node++] = n;
    return n;
}

/* BatchNormalization of x with the initializers sc, sh, mu, va. */
static Onnx__NodeProto *b_bn(builder *b, const char *x, const char *out) {
    Onnx__NodeProto *n = b_node(b, "BatchNormalization", x, "sc", "sh", out);
    n->n_input = 5;
    n->input = tmalloc(5 * sizeof(char *));
    const char *in[5] = {x, "sc", "sh", "mu", "va"};
    for (int i = 0; i < 5; i++) n->input[i] = (char *)in[i];
    return n;
}

static void a_ints(Onnx__NodeProto *n, const char *name, int cnt, const int64_t *v) {
    Onnx__AttributeProto *a = tmalloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->n_ints = (size_t)cnt;
    a->ints = tmalloc((size_t)cnt * 8);
    memcpy(a->ints, v, (size_t)cnt * 8);
    n->attribute[n->n_attribute++] = a;
}

static void a_int(Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = tmalloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
    n->attribute[n->n_attribute++] = a;
}

static void a_float(Onnx__NodeProto *n, const char *name, float v) {
    Onnx__AttributeProto *a = tmalloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a->has_f = 1;
    a->f = v;
    n->attribute[n->n_attribute++] = a;
}

/* dims < 0 become a symbolic "N". */
static Onnx__ValueInfoProto *b_vi(const char *name, int rank, const int64_t *dims) {
    Onnx__ValueInfoProto *v = tmalloc(sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = (char *)name;
    Onnx__TypeProto *tp = tmalloc(sizeof *tp);
    onnx__type_proto__init(tp);
    Onnx__TypeProto__Tensor *tt = tmalloc(sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = 1;
    Onnx__TensorShapeProto *sh = tmalloc(sizeof *sh);
    onnx__tensor_shape_proto__init(sh);
    sh->n_dim = (size_t)rank;
    sh->dim = tmalloc((size_t)rank * sizeof(void *));
    for (int i = 0; i < rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = tmalloc(sizeof *d);
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[i] >= 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = "N";
        }
        sh->dim[i] = d;
    }
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    v->type = tp;
    return v;
}

static void b_meta(builder *b, const char *k, const char *v) {
    Onnx__StringStringEntryProto *e = tmalloc(sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = (char *)k;
    e->value = (char *)v;
    b->meta[b->nmeta++] = e;
}

/* Serialises the model; caller frees. */
static uint8_t *b_pack(builder *b, int opset, size_t *len) {
    Onnx__ModelProto m;
    onnx__model_proto__init(&m);
    m.has_ir_version = 1;
    m.ir_version = 8;
    Onnx__OperatorSetIdProto os;
    onnx__operator_set_id_proto__init(&os);
    os.domain = "";
    os.has_version = 1;
    os.version = opset;
    Onnx__OperatorSetIdProto *osp = &os;
    m.n_opset_import = 1;
    m.opset_import = &osp;
    m.producer_name = "test_nn";
    m.graph = &b->g;
    m.n_metadata_props = (size_t)b->nmeta;
    m.metadata_props = b->meta;
    *len = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    onnx__model_proto__pack(&m, buf);
    return buf;
}

/* ---------------------------------------------------------------- reference kernels */

static void ref_conv(const float *x, int N, int C, int H, int W, const float *w, const float *bias, int OC, int K,
                     int stride, int pad, int groups, float *y, int *OH, int *OW) {
    int oh = (H + 2 * pad - K) / stride + 1, ow = (W + 2 * pad - K) / stride + 1;
    int icg = C / groups, ocg = OC / groups;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    double s = bias ? bias[o] : 0;
                    int gidx = o / ocg;
                    for (int c = 0; c < icg; c++)
                        for (int ki = 0; ki < K; ki++)
                            for (int kj = 0; kj < K; kj++) {
                                int yy = i * stride - pad + ki, xx = j * stride - pad + kj;
                                if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                                s += (double)x[((n * C + gidx * icg + c) * H + yy) * W + xx] *
                                     w[((o * icg + c) * K + ki) * K + kj];
                            }
                    y[((n * OC + o) * oh + i) * ow + j] = (float)s;
                }
    *OH = oh;
    *OW = ow;
}

static float frand(vt_rng *r) { return (float)(vt_rng_uniform(r) * 2 - 1); }

static double rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* ---------------------------------------------------------------- the test network
 * x[N,4,6,6] -> c1 = Conv3x3(pad 1, 8 ch) -> bn -> relu -> r1
 * x -> c2 = Conv1x1(8 ch)                      (the residual)
 * add = r1 + c2 -> out = Relu(add) -> dw = depthwise Conv3x3 -> hs = dw * HardSigmoid(dw)
 * gap = GlobalAveragePool(hs) -> flat = Flatten -> logits = Gemm(flat, Wfc[8x5] transB=0) */

typedef struct {
    float w1[8 * 4 * 9], b1[8], w2[8 * 4], b2[8], sc[8], sh[8], mu[8], va[8], wd[8 * 9], bd[8], wfc[8 * 5], bfc[5];
} params;

static void make_params(params *p) {
    vt_rng r;
    vt_rng_seed(&r, 7);
    for (size_t i = 0; i < sizeof *p / sizeof(float); i++) ((float *)p)[i] = frand(&r) * 0.5f;
    for (int i = 0; i < 8; i++) p->va[i] = 0.5f + (float)vt_rng_uniform(&r), p->sc[i] = 0.5f + (float)vt_rng_uniform(&r);
}

static uint8_t *build_net(const params *p, size_t *len, int with_meta, const char *extra_op) {
    builder b;
    b_init(&b);
    int64_t d1[4] = {8, 4, 3, 3}, d8[1] = {8}, d2[4] = {8, 4, 1, 1}, dd[4] = {8, 1, 3, 3}, dfc[2] = {8, 5}, d5[1] = {5};
    b_init_f(&b, "w1", 4, d1, p->w1);
    b_init_f(&b, "b1", 1, d8, p->b1);
    b_init_f(&b, "w2", 4, d2, p->w2);
    b_init_f(&b, "b2", 1, d8, p->b2);
    b_init_f(&b, "sc", 1, d8, p->sc);
    b_init_f(&b, "sh", 1, d8, p->sh);
    b_init_f(&b, "mu", 1, d8, p->mu);
    b_init_f(&b, "va", 1, d8, p->va);
    b_init_f(&b, "wd", 4, dd, p->wd);
    b_init_f(&b, "bd", 1, d8, p->bd);
    b_init_f(&b, "wfc", 2, dfc, p->wfc);
    b_init_f(&b, "bfc", 1, d5, p->bfc);
    int64_t pads1[4] = {1, 1, 1, 1};
    Onnx__NodeProto *n = b_node(&b, "Conv", "x", "w1", "b1", "c1");
    a_ints(n, "pads", 4, pads1);
    n = b_bn(&b, "c1", "bn");
    a_float(n, "epsilon", 1e-3f);
    b_node(&b, "Relu", "bn", NULL, NULL, "r1");
    b_node(&b, "Conv", "x", "w2", "b2", "c2");
    b_node(&b, "Add", "r1", "c2", NULL, "add");
    b_node(&b, "Relu", "add", NULL, NULL, "out");
    n = b_node(&b, "Conv", "out", "wd", "bd", "dw");
    a_ints(n, "pads", 4, pads1);
    a_int(n, "group", 8);
    n = b_node(&b, "HardSigmoid", "dw", NULL, NULL, "hsig");
    a_float(n, "alpha", 1.f / 6);
    a_float(n, "beta", 0.5f);
    b_node(&b, "Mul", "dw", "hsig", NULL, "hs");
    b_node(&b, "GlobalAveragePool", "hs", NULL, NULL, "gap");
    b_node(&b, "Flatten", "gap", NULL, NULL, "flat");
    b_node(&b, extra_op ? extra_op : "Gemm", "flat", "wfc", "bfc", "logits");
    int64_t xin[4] = {-1, 4, 6, 6}, yout[2] = {-1, 5};
    b.ins[b.g.n_input++] = b_vi("x", 4, xin);
    b.outs[b.g.n_output++] = b_vi("logits", 2, yout);
    if (with_meta) {
        b_meta(&b, "vitrine.input_size", "32");
        b_meta(&b, "vitrine.mean", "0.5,0.25,0.125");
        b_meta(&b, "vitrine.std", "2,4,8");
        b_meta(&b, "vitrine.color", "bgr");
        b_meta(&b, "vitrine.fit", "stretch");
    }
    return b_pack(&b, 13, len);
}

/* Reference forward; fills the named intermediates too. */
static void ref_net(const params *p, const float *x, int N, float *c1_out, float *out_out, float *gap_out, float *logits) {
    int oh, ow;
    float *c1 = calloc((size_t)N * 8 * 36, 4), *c2 = calloc((size_t)N * 8 * 36, 4), *o = calloc((size_t)N * 8 * 36, 4),
          *dw = calloc((size_t)N * 8 * 36, 4);
    assert_true(c1 && c2 && o && dw);
    ref_conv(x, N, 4, 6, 6, p->w1, p->b1, 8, 3, 1, 1, 1, c1, &oh, &ow);
    ref_conv(x, N, 4, 6, 6, p->w2, p->b2, 8, 1, 1, 0, 1, c2, &oh, &ow);
    if (c1_out) memcpy(c1_out, c1, (size_t)N * 8 * 36 * 4);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < 8; c++)
            for (int i = 0; i < 36; i++) {
                size_t k = ((size_t)n * 8 + c) * 36 + i;
                float v = (c1[k] - p->mu[c]) / sqrtf(p->va[c] + 1e-3f) * p->sc[c] + p->sh[c];
                v = v > 0 ? v : 0;
                v += c2[k];
                o[k] = v > 0 ? v : 0;
            }
    if (out_out) memcpy(out_out, o, (size_t)N * 8 * 36 * 4);
    ref_conv(o, N, 8, 6, 6, p->wd, p->bd, 8, 3, 1, 1, 8, dw, &oh, &ow);
    for (int n = 0; n < N; n++) {
        float g[8];
        for (int c = 0; c < 8; c++) {
            double s = 0;
            for (int i = 0; i < 36; i++) {
                float v = dw[((size_t)n * 8 + c) * 36 + i];
                float hs = fminf(fmaxf(v / 6 + 0.5f, 0.f), 1.f);
                s += v * hs;
            }
            g[c] = (float)(s / 36);
            if (gap_out) gap_out[n * 8 + c] = g[c];
        }
        for (int j = 0; j < 5; j++) {
            double s = p->bfc[j];
            for (int c = 0; c < 8; c++) s += g[c] * p->wfc[c * 5 + j];
            logits[n * 5 + j] = (float)s;
        }
    }
    free(c1);
    free(c2);
    free(o);
    free(dw);
}

static void test_fused_network_matches_reference(void **state) {
    (void)state;
    params p;
    make_params(&p);
    size_t len;
    uint8_t *buf = build_net(&p, &len, 0, NULL);
    vt_model *m;
    assert_int_equal(vt_model_load_mem(buf, len, "net", NULL, &m), 0);
    vt_rng r;
    vt_rng_seed(&r, 3);
    for (int N = 1; N <= 3; N += 2) {
        float *x = malloc((size_t)N * 4 * 36 * 4), ref[15], *c1 = malloc((size_t)N * 8 * 36 * 4),
              *o = malloc((size_t)N * 8 * 36 * 4), gap[24];
        for (int i = 0; i < N * 4 * 36; i++) x[i] = frand(&r);
        ref_net(&p, x, N, c1, o, gap, ref);
        for (int rep = 0; rep < 2; rep++) { /* the second run reuses the cached plan */
            float *y;
            int64_t shp[8];
            int rank;
            assert_int_equal(vt_model_run(m, x, N, 4, 6, 6, NULL, &y, shp, &rank), 0);
            assert_int_equal(rank, 2);
            assert_int_equal(shp[0], N);
            assert_int_equal(shp[1], 5);
            double e = rel_err(y, ref, (size_t)N * 5);
            assert_true(e < 1e-5);
            free(y);
        }
        /* intermediate tensors that fusion would otherwise swallow can still be read out */
        const struct {
            const char *name;
            float *want;
            size_t n;
        } rd[3] = {{"c1", c1, (size_t)N * 8 * 36}, {"out", o, (size_t)N * 8 * 36}, {"gap", gap, (size_t)N * 8}};
        for (int k = 0; k < 3; k++) {
            float *y;
            int64_t shp[8];
            int rank;
            assert_int_equal(vt_model_run(m, x, N, 4, 6, 6, rd[k].name, &y, shp, &rank), 0);
            assert_int_equal(rank, 4);
            assert_true(rel_err(y, rd[k].want, rd[k].n) < 1e-5);
            free(y);
        }
        free(x);
        free(c1);
        free(o);
    }
    /* batch rows are independent: row 0 of a batch of 3 equals the batch-1 result */
    assert_string_equal(vt_model_embedding_tensor(m), "gap");
    float *y;
    int64_t shp[8];
    int rank;
    assert_int_equal(vt_model_run(m, (float[144]){0}, 1, 4, 6, 6, "nope", &y, shp, &rank), VT_ENOTFOUND);
    assert_int_not_equal(vt_model_run(m, (float[144]){0}, 1, 3, 6, 6, NULL, &y, shp, &rank), 0);
    vt_model_free(m);
    free(buf);
    tfree_all();
}

static void test_threads_and_repeat(void **state) {
    (void)state;
    params p;
    make_params(&p);
    size_t len;
    uint8_t *buf = build_net(&p, &len, 0, NULL);
    vt_model_opts o = {1, 0};
    vt_model *m;
    assert_int_equal(vt_model_load_mem(buf, len, "net", &o, &m), 0);
    float x[4 * 4 * 36];
    vt_rng r;
    vt_rng_seed(&r, 11);
    for (int i = 0; i < 4 * 4 * 36; i++) x[i] = frand(&r);
    float *y1, *y2;
    int64_t shp[8];
    int rank;
    assert_int_equal(vt_model_run(m, x, 4, 4, 6, 6, NULL, &y1, shp, &rank), 0);
    assert_int_equal(vt_model_set_threads(m, 2), 0);
    assert_int_equal(vt_model_run(m, x, 4, 4, 6, 6, NULL, &y2, shp, &rank), 0);
    assert_true(rel_err(y1, y2, 20) < 1e-6);
    float ref[20];
    ref_net(&p, x, 4, NULL, NULL, NULL, ref);
    assert_true(rel_err(y2, ref, 20) < 1e-5);
    size_t act, wb;
    assert_int_equal(vt_model_plan_bytes(m, &act, &wb), 0);
    assert_true(act > 0 && wb > 0);
    free(y1);
    free(y2);
    vt_model_free(m);
    free(buf);
    tfree_all();
}

/* The wait policy read from the environment, and a 2-thread plan built under each policy (small
 * convolutions on one thread or split) gives the reference answer. */
static void test_omp_wait_policy(void **state) {
    (void)state;
    char *w0 = getenv("OMP_WAIT_POLICY") ? strdup(getenv("OMP_WAIT_POLICY")) : NULL;
    char *s0 = getenv("GOMP_SPINCOUNT") ? strdup(getenv("GOMP_SPINCOUNT")) : NULL;
    struct { const char *wait, *spin; int passive; } cases[] = {
        {NULL, NULL, 0}, {"passive", NULL, 1}, {"PASSIVE", NULL, 1}, {"active", NULL, 0},
        {NULL, "0", 1},  {NULL, "20000", 0},   {"passive", "20000", 1},
    };
    params p;
    make_params(&p);
    size_t len;
    uint8_t *buf = build_net(&p, &len, 0, NULL);
    float x[4 * 4 * 36], ref[20];
    vt_rng r;
    vt_rng_seed(&r, 12);
    for (int i = 0; i < 4 * 4 * 36; i++) x[i] = frand(&r);
    ref_net(&p, x, 4, NULL, NULL, NULL, ref);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].wait) setenv("OMP_WAIT_POLICY", cases[i].wait, 1);
        else unsetenv("OMP_WAIT_POLICY");
        if (cases[i].spin) setenv("GOMP_SPINCOUNT", cases[i].spin, 1);
        else unsetenv("GOMP_SPINCOUNT");
        assert_int_equal(vt__nn_omp_passive(), cases[i].passive);
        vt_model_opts o = {2, 0};
        vt_model *m;
        assert_int_equal(vt_model_load_mem(buf, len, "net", &o, &m), 0);
        float *y;
        int64_t shp[8];
        int rank;
        assert_int_equal(vt_model_run(m, x, 4, 4, 6, 6, NULL, &y, shp, &rank), 0);
        assert_true(rel_err(y, ref, 20) < 1e-5);
        free(y);
        vt_model_free(m);
    }
    if (w0) setenv("OMP_WAIT_POLICY", w0, 1);
    else unsetenv("OMP_WAIT_POLICY");
    if (s0) setenv("GOMP_SPINCOUNT", s0, 1);
    else unsetenv("GOMP_SPINCOUNT");
    free(w0);
    free(s0);
    free(buf);
    tfree_all();
}

/* ---------------------------------------------------------------- Winograd convolutions */

/* Direct 3x3 convolution in double on NCHW data with top/left pads pt/pl and output oh x ow. */
static void ref_conv3(const float *x, int N, int C, int H, int W, const float *w, const float *bias, int OC, int pt,
                      int pl, int oh, int ow, float *y) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    double s = bias[o];
                    for (int c = 0; c < C; c++)
                        for (int ki = 0; ki < 3; ki++)
                            for (int kj = 0; kj < 3; kj++) {
                                int yy = i - pt + ki, xx = j - pl + kj;
                                if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                                s += (double)x[(((size_t)n * C + c) * H + yy) * W + xx] * w[((o * C + c) * 3 + ki) * 3 + kj];
                            }
                    y[(((size_t)n * OC + o) * oh + i) * ow + j] = (float)s;
                }
}

/* NCHW <-> nChw8c (C a multiple of 8). */
static void to_blocked(const float *a, float *b, int N, int C, int HW, int back) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++) {
                size_t pl = ((size_t)n * C + c) * HW + i, bl = (((size_t)n * (C / 8) + c / 8) * HW + i) * 8 + c % 8;
                if (back) b[pl] = a[bl];
                else b[bl] = a[pl];
            }
}

/* wino.c against a direct convolution and its gradients: partial tiles at the right and bottom
 * edges, padding on any side, several chunks of tiles, every post-op kind, 1 and 2 threads. */
static void test_winograd_kernel(void **state) {
    (void)state;
    if (!vt__nn_avx2_fma()) {
        print_message("this CPU has no AVX2 + FMA: wino.c is never chosen here, nothing to check\n");
        return;
    }
    const struct {
        int ic, oc, h, w, pt, pl, pb, pr, n, npo;
        nn_wpo po[2];
    } cs[] = {
        {16, 32, 9, 11, 1, 1, 1, 1, 3, 2, {{NN_WPO_SUM, 0, 0}, {NN_WPO_RELU, 0, 0}}},
        {24, 16, 5, 4, 0, 0, 0, 0, 2, 1, {{NN_WPO_RELU, 0.1f, 0}}},
        {16, 16, 3, 3, 2, 2, 2, 2, 1, 1, {{NN_WPO_CLIP, -0.5f, 0.5f}}},
        {16, 48, 7, 6, 1, 0, 2, 1, 2, 2, {{NN_WPO_LINEAR, 2.f, 0.25f}, {NN_WPO_SUM, 0, 0}}},
        {16, 16, 64, 64, 1, 1, 1, 1, 3, 0, {{0, 0, 0}}}, /* 768 tiles: two chunks */
    };
    vt_rng r;
    vt_rng_seed(&r, 21);
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
        int ic = cs[ci].ic, oc = cs[ci].oc, h = cs[ci].h, w = cs[ci].w, n = cs[ci].n;
        int oh = h + cs[ci].pt + cs[ci].pb - 2, ow = w + cs[ci].pl + cs[ci].pr - 2;
        size_t nx = (size_t)n * ic * h * w, ny = (size_t)n * oc * oh * ow;
        float *x = malloc(nx * 4), *xb = malloc(nx * 4), *wt = malloc((size_t)oc * ic * 9 * 4), *bias = malloc((size_t)oc * 4),
              *old = malloc(ny * 4), *want = malloc(ny * 4), *yb = malloc(ny * 4), *y = malloc(ny * 4);
        assert_true(x && xb && wt && bias && old && want && yb && y);
        for (size_t i = 0; i < nx; i++) x[i] = frand(&r);
        for (int i = 0; i < oc * ic * 9; i++) wt[i] = frand(&r) * 0.3f;
        for (int i = 0; i < oc; i++) bias[i] = frand(&r);
        for (size_t i = 0; i < ny; i++) old[i] = frand(&r);
        ref_conv3(x, n, ic, h, w, wt, bias, oc, cs[ci].pt, cs[ci].pl, oh, ow, want);
        for (size_t i = 0; i < ny; i++)
            for (int k = 0; k < cs[ci].npo; k++) {
                const nn_wpo *q = &cs[ci].po[k];
                float v = want[i];
                if (q->kind == NN_WPO_SUM) v += old[i];
                else if (q->kind == NN_WPO_RELU) v = v > 0 ? v : q->a * v;
                else if (q->kind == NN_WPO_CLIP) v = fminf(fmaxf(v, q->a), q->b);
                else v = q->a * v + q->b;
                want[i] = v;
            }
        to_blocked(x, xb, n, ic, h * w, 0);
        nn_wino *k = vt__wino_new(ic, oc, h, w, oh, ow, cs[ci].pt, cs[ci].pl);
        assert_non_null(k);
        vt__wino_set_weights(k, wt, bias, 0, 0);
        float *scratch = malloc(vt__wino_scratch(k, n) * 4);
        assert_non_null(scratch);
        for (int thr = 1; thr <= 2; thr++) {
            omp_set_num_threads(thr);
            to_blocked(old, yb, n, oc, oh * ow, 0); /* what a sum post-op adds */
            vt__wino_run(k, n, xb, yb, scratch, cs[ci].npo, cs[ci].po);
            to_blocked(yb, y, n, oc, oh * ow, 1);
            double e = rel_err(y, want, ny);
            if (e >= 2e-6) fail_msg("case %zu, %d threads: relative error %g", ci, thr, e);
        }
        if (ic % 16) {
            assert_int_equal(vt__wino_bwd_weights(k, n, xb, yb, y, NULL, scratch), VT_EINVAL);
        } else {
            /* the weights gradient against sums in double */
            float *g = malloc(ny * 4), *gb = malloc(ny * 4), *dw = malloc((size_t)oc * ic * 9 * 4), *db = malloc((size_t)oc * 4);
            double *want_w = calloc((size_t)oc * ic * 9, sizeof(double)), *want_b = calloc((size_t)oc, sizeof(double));
            assert_true(g && gb && dw && db && want_w && want_b);
            for (size_t i = 0; i < ny; i++) g[i] = frand(&r);
            for (int b = 0; b < n; b++)
                for (int o = 0; o < oc; o++)
                    for (int y = 0; y < oh; y++)
                        for (int xo = 0; xo < ow; xo++) {
                            double gv = g[(((size_t)b * oc + o) * oh + y) * ow + xo];
                            want_b[o] += gv;
                            for (int c = 0; c < ic; c++)
                                for (int e = 0; e < 9; e++) {
                                    int yy = y - cs[ci].pt + e / 3, xx = xo - cs[ci].pl + e % 3;
                                    if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                                    want_w[((size_t)o * ic + c) * 9 + e] += gv * x[(((size_t)b * ic + c) * h + yy) * w + xx];
                                }
                        }
            to_blocked(g, gb, n, oc, oh * ow, 0);
            for (int thr = 1; thr <= 2; thr++) {
                omp_set_num_threads(thr);
                assert_int_equal(vt__wino_bwd_weights(k, n, xb, gb, dw, db, scratch), 0);
                double num = 0, den = 0;
                for (int i = 0; i < oc * ic * 9; i++) num += (dw[i] - want_w[i]) * (dw[i] - want_w[i]), den += want_w[i] * want_w[i];
                /* sums over every pixel of the batch: fp32 rounding grows with their length */
                if (sqrt(num / den) >= 2e-5) fail_msg("case %zu, %d threads: weights gradient error %g", ci, thr, sqrt(num / den));
                for (int o = 0; o < oc; o++) assert_true(fabs(db[o] - want_b[o]) <= 1e-4 * (1 + fabs(want_b[o])));
            }
            free(g), free(gb), free(dw), free(db), free(want_w), free(want_b);
        }
        if (oc == 32 && ic == 16) {
            /* the data gradient of this convolution: weights transposed and rotated, 32 -> 16 */
            float *wr = malloc((size_t)oc * ic * 9 * 4), *g = malloc(ny * 4), *gb = malloc(ny * 4);
            size_t nd = (size_t)n * ic * (oh + 2) * (ow + 2);
            float *dx = malloc(nd * 4), *dxb = malloc(nd * 4), *dwant = malloc(nd * 4);
            assert_true(wr && g && gb && dx && dxb && dwant);
            for (int o = 0; o < ic; o++)
                for (int i = 0; i < oc; i++)
                    for (int j = 0; j < 9; j++) wr[((size_t)o * oc + i) * 9 + j] = wt[((size_t)i * ic + o) * 9 + 8 - j];
            for (size_t i = 0; i < ny; i++) g[i] = frand(&r);
            float zero[16] = {0};
            ref_conv3(g, n, oc, oh, ow, wr, zero, ic, 2, 2, oh + 2, ow + 2, dwant);
            nn_wino *kb = vt__wino_new(oc, ic, oh, ow, oh + 2, ow + 2, 2, 2);
            assert_non_null(kb);
            vt__wino_set_weights(kb, wt, NULL, 1, 0);
            float *sb = malloc(vt__wino_scratch(kb, n) * 4);
            assert_non_null(sb);
            to_blocked(g, gb, n, oc, oh * ow, 0);
            vt__wino_run(kb, n, gb, dxb, sb, 0, NULL);
            to_blocked(dxb, dx, n, ic, (oh + 2) * (ow + 2), 1);
            double e = rel_err(dx, dwant, nd);
            if (e >= 2e-6) fail_msg("transposed weights: relative error %g", e);
            vt__wino_free(kb);
            free(wr), free(g), free(gb), free(dx), free(dxb), free(dwant), free(sb);
        }
        vt__wino_free(k);
        free(scratch), free(x), free(xb), free(wt), free(bias), free(old), free(want), free(yb), free(y);
    }
}

/* eltwise.c's SiLU against double precision: both tails, zero, lengths that are not a multiple of
 * 8 or of the 4096-element blocks, 1 and 2 threads. */
static void test_silu(void **state) {
    (void)state;
    if (!vt__nn_avx2_fma()) {
        print_message("this CPU has no AVX2 + FMA: eltwise.c's SiLU is never chosen here, nothing to check\n");
        return;
    }
    size_t n = 3 * 4096 + 13;
    float *x = malloc(n * 4);
    assert_non_null(x);
    for (int thr = 1; thr <= 2; thr++) {
        omp_set_num_threads(thr);
        for (size_t i = 0; i < n; i++) x[i] = (float)(((double)i / (double)n - 0.5) * 240.0); /* -120 .. 120 */
        x[0] = 0.f, x[1] = -0.f, x[2] = 1e-30f, x[3] = -1e-30f;
        vt__silu_inplace(x, n);
        for (size_t i = 0; i < n; i++) {
            double v = i < 4 ? (i == 2 ? 1e-30 : i == 3 ? -1e-30 : 0.0) : ((double)(float)(((double)i / (double)n - 0.5) * 240.0));
            double want = v / (1.0 + exp(-v));
            double err = fabs(x[i] - want);
            /* below x = -87 the answer (under 1e-36) may come out as 0 */
            if (err > 1e-6 * fabs(want) + 1e-30) fail_msg("silu(%g) = %g, want %g", v, x[i], want);
        }
    }
    free(x);
}

/* A plan sends a 3x3 convolution with BN, residual Add and Relu to wino.c (its weights take 36
 * instead of 9 floats per kernel) unless VITRINE_WINOGRAD=0, and both give the reference. */
static void test_winograd_in_plan(void **state) {
    (void)state;
    enum { IC = 16, OC = 32, H = 7, W = 10, N = 2 };
    static float w1[OC * IC * 9], b1[OC], w2[OC * IC], b2[OC], sc[OC], sh[OC], mu[OC], va[OC];
    vt_rng r;
    vt_rng_seed(&r, 5);
    for (int i = 0; i < OC * IC * 9; i++) w1[i] = frand(&r) * 0.3f;
    for (int i = 0; i < OC * IC; i++) w2[i] = frand(&r) * 0.3f;
    for (int i = 0; i < OC; i++)
        b1[i] = frand(&r), b2[i] = frand(&r), sc[i] = 0.5f + (float)vt_rng_uniform(&r), sh[i] = frand(&r),
        mu[i] = frand(&r), va[i] = 0.5f + (float)vt_rng_uniform(&r);
    builder b;
    b_init(&b);
    int64_t d1[4] = {OC, IC, 3, 3}, d2[4] = {OC, IC, 1, 1}, dc[1] = {OC}, pads[4] = {1, 1, 1, 1};
    b_init_f(&b, "w1", 4, d1, w1);
    b_init_f(&b, "b1", 1, dc, b1);
    b_init_f(&b, "w2", 4, d2, w2);
    b_init_f(&b, "b2", 1, dc, b2);
    b_init_f(&b, "sc", 1, dc, sc);
    b_init_f(&b, "sh", 1, dc, sh);
    b_init_f(&b, "mu", 1, dc, mu);
    b_init_f(&b, "va", 1, dc, va);
    Onnx__NodeProto *n = b_node(&b, "Conv", "x", "w1", "b1", "c1");
    a_ints(n, "pads", 4, pads);
    n = b_bn(&b, "c1", "bn");
    b_node(&b, "Conv", "x", "w2", "b2", "c2");
    b_node(&b, "Add", "bn", "c2", NULL, "add");
    b_node(&b, "Relu", "add", NULL, NULL, "y");
    int64_t xin[4] = {-1, IC, H, W}, yout[4] = {-1, OC, H, W};
    b.ins[b.g.n_input++] = b_vi("x", 4, xin);
    b.outs[b.g.n_output++] = b_vi("y", 4, yout);
    size_t len;
    uint8_t *buf = b_pack(&b, 13, &len);
    static float x[N * IC * H * W], c1[N * OC * H * W], c2[N * OC * H * W], want[N * OC * H * W];
    for (int i = 0; i < N * IC * H * W; i++) x[i] = frand(&r);
    int oh, ow;
    ref_conv(x, N, IC, H, W, w1, b1, OC, 3, 1, 1, 1, c1, &oh, &ow);
    ref_conv(x, N, IC, H, W, w2, b2, OC, 1, 1, 0, 1, c2, &oh, &ow);
    for (int i = 0; i < N * OC * H * W; i++) {
        int c = i / (H * W) % OC;
        float v = (c1[i] - mu[c]) / sqrtf(va[c] + 1e-5f) * sc[c] + sh[c] + c2[i];
        want[i] = v > 0 ? v : 0;
    }
    char *e0 = getenv("VITRINE_WINOGRAD") ? strdup(getenv("VITRINE_WINOGRAD")) : NULL;
    size_t wbytes[2];
    for (int off = 0; off < 2; off++) {
        if (off) setenv("VITRINE_WINOGRAD", "0", 1);
        else unsetenv("VITRINE_WINOGRAD");
        vt_model *m;
        assert_int_equal(vt_model_load_mem(buf, len, "wino", NULL, &m), 0);
        float *y;
        int64_t shp[8];
        int rank;
        assert_int_equal(vt_model_run(m, x, N, IC, H, W, NULL, &y, shp, &rank), 0);
        assert_true(rel_err(y, want, (size_t)N * OC * H * W) < 1e-5);
        size_t act;
        assert_int_equal(vt_model_plan_bytes(m, &act, &wbytes[off]), 0);
        free(y);
        vt_model_free(m);
    }
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    assert_int_equal(wbytes[0] - wbytes[1], avx2 ? (size_t)(36 - 9) * OC * IC * 4 : 0);
    if (e0) setenv("VITRINE_WINOGRAD", e0, 1);
    else unsetenv("VITRINE_WINOGRAD");
    free(e0);
    free(buf);
    tfree_all();
}

static void test_preproc_from_metadata_and_defaults(void **state) {
    (void)state;
    params p;
    make_params(&p);
    size_t len;
    uint8_t *buf = build_net(&p, &len, 1, NULL);
    vt_model *m;
    assert_int_equal(vt_model_load_mem(buf, len, "net", NULL, &m), 0);
    vt_preproc pp;
    assert_int_equal(vt_model_preproc(m, &pp), 0);
    assert_int_equal(pp.size, 32);
    assert_true(pp.from_metadata);
    assert_true(fabsf(pp.mean[1] - 0.25f) < 1e-7f && fabsf(pp.std[2] - 8.f) < 1e-7f);
    assert_int_equal(pp.bgr, 1);
    assert_int_equal(pp.fit, VT_FIT_STRETCH);
    assert_string_equal(vt_model_meta(m, "vitrine.color"), "bgr");
    vt_model_free(m);
    free(buf);
    buf = build_net(&p, &len, 0, NULL);
    assert_int_equal(vt_model_load_mem(buf, len, "net", NULL, &m), 0);
    assert_int_equal(vt_model_preproc(m, &pp), 0);
    assert_int_equal(pp.size, 6); /* from the input's static shape */
    assert_false(pp.from_metadata);
    assert_true(fabsf(pp.mean[0] - vt_imagenet_mean[0]) < 1e-7f);
    assert_int_equal(pp.bgr, 0);
    assert_int_equal(vt_model_num_inputs(m), 1);
    vt_model_io io;
    assert_int_equal(vt_model_input(m, 0, &io), 0);
    assert_string_equal(io.name, "x");
    assert_int_equal(io.rank, 4);
    assert_int_equal(io.shape[0], -1);
    assert_int_equal(vt_model_param_count(m), 8 * 36 + 8 + 32 + 8 + 32 + 72 + 8 + 40 + 5);
    vt_model_free(m);
    free(buf);
    tfree_all();
}

static void test_unsupported_and_malformed(void **state) {
    (void)state;
    params p;
    make_params(&p);
    size_t len;
    uint8_t *buf = build_net(&p, &len, 0, "FancyDense");
    vt_model *m = NULL;
    assert_int_equal(vt_model_load_mem(buf, len, "net.onnx", NULL, &m), VT_EUNSUPPORTED);
    assert_null(m);
    assert_non_null(strstr(vt_errmsg(), "FancyDense"));
    assert_non_null(strstr(vt_errmsg(), "net.onnx"));
    free(buf);
    buf = build_net(&p, &len, 0, NULL);
    assert_int_equal(vt_model_load_mem(buf, 0, "e", NULL, &m), VT_EEMPTY);
    /* every truncation is either refused or (cut at a field boundary) a still-valid model; never a crash */
    int refused = 0;
    for (size_t cut = 1; cut < len; cut += 1 + cut / 64) {
        int rc = vt_model_load_mem(buf, cut, "cut", NULL, &m);
        if (rc) {
            assert_true(rc < 0);
            assert_true(strlen(vt_errmsg()) > 0);
            refused++;
        } else {
            vt_model_free(m);
        }
    }
    assert_true(refused > 10);
    /* flipped bytes */
    vt_rng r;
    vt_rng_seed(&r, 5);
    for (int k = 0; k < 200; k++) {
        uint8_t *c = malloc(len);
        memcpy(c, buf, len);
        for (int j = 0; j < 4; j++) c[vt_rng_below(&r, len)] ^= (uint8_t)(1 + vt_rng_below(&r, 255));
        if (vt_model_load_mem(c, len, "flip", NULL, &m) == 0) {
            float *y;
            int64_t shp[8];
            int rank;
            if (vt_model_run(m, (float[144]){0}, 1, 4, 6, 6, NULL, &y, shp, &rank) == 0) free(y);
            vt_model_free(m);
        }
        free(c);
    }
    assert_int_equal(vt_model_load("/nonexistent/model.onnx", NULL, &m), VT_ENOENT);
    free(buf);
    tfree_all();
}

/* `vitrine embed` on real photos: one unit-norm row per image in list order, equal to the library's
 * own preprocessing + run of the embedding tensor; unreadable inputs are skipped with exit 3. */
static void test_cli_embed(void **state) {
    (void)state;
    const char *imgs[3] = {tu_data("images/10000.jpg"), tu_data("images/10001.jpg"), tu_data("images/10002.jpg")};
    if (!imgs[0] || !imgs[1] || !imgs[2]) TU_SKIP("photos of the shared catalog are missing");
    char im[3][1024];
    for (int i = 0; i < 3; i++) snprintf(im[i], sizeof im[i], "%s", imgs[i]);
    builder b;
    b_init(&b);
    float w[8 * 3 * 9], bias[8], wfc[8 * 4], bfc[4];
    vt_rng r;
    vt_rng_seed(&r, 9);
    for (int i = 0; i < 8 * 27; i++) w[i] = frand(&r);
    for (int i = 0; i < 8; i++) bias[i] = frand(&r) * 0.1f;
    for (int i = 0; i < 32; i++) wfc[i] = frand(&r);
    for (int i = 0; i < 4; i++) bfc[i] = 0;
    int64_t dw[4] = {8, 3, 3, 3}, d8[1] = {8}, dfc[2] = {8, 4}, d4[1] = {4}, st[2] = {2, 2}, pads[4] = {1, 1, 1, 1};
    b_init_f(&b, "w", 4, dw, w);
    b_init_f(&b, "b", 1, d8, bias);
    b_init_f(&b, "wfc", 2, dfc, wfc);
    b_init_f(&b, "bfc", 1, d4, bfc);
    Onnx__NodeProto *n = b_node(&b, "Conv", "x", "w", "b", "c");
    a_ints(n, "strides", 2, st);
    a_ints(n, "pads", 4, pads);
    b_node(&b, "Relu", "c", NULL, NULL, "r");
    b_node(&b, "GlobalAveragePool", "r", NULL, NULL, "gap");
    b_node(&b, "Flatten", "gap", NULL, NULL, "flat");
    b_node(&b, "Gemm", "flat", "wfc", "bfc", "logits");
    int64_t xin[4] = {-1, 3, -1, -1}, yout[2] = {-1, 4};
    b.ins[b.g.n_input++] = b_vi("x", 4, xin);
    b.outs[b.g.n_output++] = b_vi("logits", 2, yout);
    b_meta(&b, "vitrine.input_size", "32");
    b_meta(&b, "vitrine.fit", "stretch");
    size_t len;
    uint8_t *buf = b_pack(&b, 13, &len);
    char mpath[1024], xpath[1024], ipath[1024], cmd[8192];
    snprintf(mpath, sizeof mpath, "%s", tu_path("embed.onnx"));
    snprintf(xpath, sizeof xpath, "%s", tu_path("emb.f32"));
    snprintf(ipath, sizeof ipath, "%s", tu_path("emb.ids"));
    assert_int_equal(tu_write(mpath, buf, len), 0);
    snprintf(cmd, sizeof cmd, "%s -q embed --model %s --out %s --batch 2 %s %s %s", VT_CLI, mpath, xpath, im[0], im[1], im[2]);
    assert_int_equal(system(cmd), 0);
    float rows[3 * 8];
    FILE *f = fopen(xpath, "rb");
    assert_non_null(f);
    assert_int_equal(fread(rows, 4, 25, f), 24);
    fclose(f);
    char ids[256] = {0};
    f = fopen(ipath, "r");
    assert_non_null(f);
    assert_true(fread(ids, 1, sizeof ids - 1, f) > 0);
    fclose(f);
    assert_string_equal(ids, "10000\n10001\n10002\n");
    vt_model *m;
    assert_int_equal(vt_model_load(mpath, NULL, &m), 0);
    assert_string_equal(vt_model_embedding_tensor(m), "gap");
    vt_preproc pp;
    assert_int_equal(vt_model_preproc(m, &pp), 0);
    assert_int_equal(pp.size, 32);
    assert_int_equal(pp.fit, VT_FIT_STRETCH);
    for (int i = 0; i < 3; i++) {
        double s = 0;
        for (int j = 0; j < 8; j++) s += rows[i * 8 + j] * rows[i * 8 + j];
        assert_true(fabs(s - 1) < 1e-5);
        vt_decode_opts d = {.fast = 1, .min_short = 32};
        vt_image img, sq;
        assert_int_equal(vt_image_load(im[i], &d, &img), 0);
        assert_int_equal(vt_image_fit(&img, 32, VT_FIT_STRETCH, &sq), 0);
        float x[3 * 32 * 32], *y;
        vt_image_to_chw(&sq, pp.mean, pp.std, 0, x);
        vt_image_free(&img);
        vt_image_free(&sq);
        int64_t shp[8];
        int rank;
        assert_int_equal(vt_model_run(m, x, 1, 3, 32, 32, "gap", &y, shp, &rank), 0);
        double nn = 0;
        for (int j = 0; j < 8; j++) nn += (double)y[j] * y[j];
        for (int j = 0; j < 8; j++) assert_true(fabs(y[j] / sqrt(nn) - rows[i * 8 + j]) < 1e-5);
        free(y);
    }
    vt_model_free(m);
    /* a missing file: reported, skipped, exit status 3, the other rows still written */
    snprintf(cmd, sizeof cmd, "%s -q embed --model %s --out %s %s /nonexistent/x.jpg %s 2>/dev/null", VT_CLI, mpath, xpath,
             im[0], im[2]);
    int st2 = system(cmd);
    assert_true(WIFEXITED(st2) && WEXITSTATUS(st2) == 3);
    f = fopen(xpath, "rb");
    assert_non_null(f);
    assert_int_equal(fread(rows, 4, 25, f), 16);
    fclose(f);
    free(buf);
    tfree_all();
}

/* Loaded from a file, the first plan frees the original convolution weights; a plan for another
 * shape must re-read them and still be right, as must the first plan when reused. */
static void test_file_model_weight_release(void **state) {
    (void)state;
    params p;
    make_params(&p);
    size_t len;
    uint8_t *buf = build_net(&p, &len, 0, NULL);
    char path[1024];
    snprintf(path, sizeof path, "%s", tu_path("net.onnx"));
    assert_int_equal(tu_write(path, buf, len), 0);
    vt_model *m;
    assert_int_equal(vt_model_load(path, NULL, &m), 0);
    vt_rng r;
    vt_rng_seed(&r, 21);
    float x[3 * 4 * 36], ref[15];
    for (int i = 0; i < 3 * 4 * 36; i++) x[i] = frand(&r);
    ref_net(&p, x, 3, NULL, NULL, NULL, ref);
    const int order[4] = {1, 3, 1, 2};
    for (int k = 0; k < 4; k++) {
        float *y;
        int64_t shp[8];
        int rank;
        assert_int_equal(vt_model_run(m, x, order[k], 4, 6, 6, NULL, &y, shp, &rank), 0);
        assert_true(rel_err(y, ref, (size_t)order[k] * 5) < 1e-5);
        free(y);
    }
    vt_model_free(m);
    free(buf);
    tfree_all();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_network_matches_reference),
        cmocka_unit_test(test_threads_and_repeat),
        cmocka_unit_test(test_omp_wait_policy),
        cmocka_unit_test(test_winograd_kernel),
        cmocka_unit_test(test_winograd_in_plan),
        cmocka_unit_test(test_silu),
        cmocka_unit_test(test_preproc_from_metadata_and_defaults),
        cmocka_unit_test(test_unsupported_and_malformed),
        cmocka_unit_test(test_cli_embed),
        cmocka_unit_test(test_file_model_weight_release),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
