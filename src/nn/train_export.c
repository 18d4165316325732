/* train_export.c: writes a trained layer graph as an ONNX model (protobuf-c), NCHW, opset 13. */
#include "nn/train_internal.h"
#include "onnx/onnx.pb-c.h"
#include <stdarg.h>
#include <string.h>

/* Every allocation of one export, freed together at the end. */
typedef struct {
    void **allocs;
    size_t na, capa;
    Onnx__NodeProto **nodes;
    size_t nn, capn;
    Onnx__TensorProto **inits;
    size_t ni, capi;
    int oom;
} xb;

static void *xalloc(xb *b, size_t n) {
    if (b->oom) return NULL;
    if (b->na == b->capa) {
        size_t cap = b->capa ? b->capa * 2 : 256;
        void **na = realloc(b->allocs, cap * sizeof *na);
        if (!na) return b->oom = 1, NULL;
        b->allocs = na, b->capa = cap;
    }
    void *p = calloc(1, n ? n : 1);
    if (!p) return b->oom = 1, NULL;
    b->allocs[b->na++] = p;
    return p;
}

static char *xstr(xb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *xstr(xb *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = xalloc(b, (size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static int push(xb *b, void ***arr, size_t *n, size_t *cap, void *item) {
    if (!item || b->oom) return b->oom = 1, -1;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        void **na = realloc(*arr, nc * sizeof *na);
        if (!na) return b->oom = 1, -1;
        *arr = na, *cap = nc;
    }
    (*arr)[(*n)++] = item;
    return 0;
}

static Onnx__NodeProto *xnode(xb *b, const char *op, const char *name, int nin, const char *const *ins, const char *out) {
    Onnx__NodeProto *n = xalloc(b, sizeof *n);
    char **in = xalloc(b, (size_t)nin * sizeof(char *));
    char **o = xalloc(b, sizeof(char *));
    Onnx__AttributeProto **at = xalloc(b, 8 * sizeof *at);
    if (!n || !in || !o || !at) return NULL;
    onnx__node_proto__init(n);
    n->op_type = xstr(b, "%s", op);
    n->name = xstr(b, "%s", name);
    for (int i = 0; i < nin; i++) in[i] = xstr(b, "%s", ins[i]);
    n->input = in, n->n_input = (size_t)nin;
    o[0] = xstr(b, "%s", out);
    n->output = o, n->n_output = 1;
    n->attribute = at;
    push(b, (void ***)&b->nodes, &b->nn, &b->capn, n);
    return n;
}

static Onnx__AttributeProto *xattr(xb *b, Onnx__NodeProto *n, const char *name) {
    if (!n || n->n_attribute >= 8) return b->oom = 1, NULL;
    Onnx__AttributeProto *a = xalloc(b, sizeof *a);
    if (!a) return NULL;
    onnx__attribute_proto__init(a);
    a->name = xstr(b, "%s", name);
    a->has_type = 1;
    n->attribute[n->n_attribute++] = a;
    return a;
}

static void xattr_i(xb *b, Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = xattr(b, n, name);
    if (!a) return;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1, a->i = v;
}

static void xattr_f(xb *b, Onnx__NodeProto *n, const char *name, float v) {
    Onnx__AttributeProto *a = xattr(b, n, name);
    if (!a) return;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a->has_f = 1, a->f = v;
}

static void xattr_ints(xb *b, Onnx__NodeProto *n, const char *name, int cnt, int64_t v) {
    Onnx__AttributeProto *a = xattr(b, n, name);
    int64_t *vals = xalloc(b, (size_t)cnt * sizeof *vals);
    if (!a || !vals) return;
    for (int i = 0; i < cnt; i++) vals[i] = v;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->ints = vals, a->n_ints = (size_t)cnt;
}

/* A float initializer pointing at `data` (not copied; the net outlives the export). */
static void xinit(xb *b, const char *name, int ndims, const int64_t *dims, const float *data) {
    Onnx__TensorProto *t = xalloc(b, sizeof *t);
    int64_t *d = xalloc(b, (size_t)ndims * sizeof *d);
    if (!t || !d) return;
    onnx__tensor_proto__init(t);
    size_t n = 1;
    for (int i = 0; i < ndims; i++) d[i] = dims[i], n *= (size_t)dims[i];
    t->dims = d, t->n_dims = (size_t)ndims;
    t->has_data_type = 1, t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->name = xstr(b, "%s", name);
    t->has_raw_data = 1;
    t->raw_data.data = (uint8_t *)data;
    t->raw_data.len = n * sizeof(float);
    push(b, (void ***)&b->inits, &b->ni, &b->capi, t);
}

/* A float tensor value info with a symbolic batch dimension "N" and the given other dims. */
static Onnx__ValueInfoProto *xvinfo(xb *b, const char *name, int rank, const int64_t *dims) {
    Onnx__ValueInfoProto *v = xalloc(b, sizeof *v);
    Onnx__TypeProto *tp = xalloc(b, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = xalloc(b, sizeof *tt);
    Onnx__TensorShapeProto *sh = xalloc(b, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dd = xalloc(b, (size_t)rank * sizeof *dd);
    if (!v || !tp || !tt || !sh || !dd) return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int i = 0; i < rank; i++) {
        dd[i] = xalloc(b, sizeof **dd);
        if (!dd[i]) return NULL;
        onnx__tensor_shape_proto__dimension__init(dd[i]);
        if (i == 0) {
            dd[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dd[i]->dim_param = xstr(b, "N");
        } else {
            dd[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dd[i]->dim_value = dims[i];
        }
    }
    sh->dim = dd, sh->n_dim = (size_t)rank;
    tt->has_elem_type = 1, tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    v->type = tp;
    v->name = xstr(b, "%s", name);
    return v;
}

/* Contract: see train_internal.h. Dropout nodes are left out (identity at inference); a fully
 * connected layer on a 4-D tensor gets a Flatten first. The file is written atomically. */
int vt__train_export_onnx(const tnet *net, int emb_node, int l2, const tx_mix *mix, int nheads, const tx_head *heads,
                          int nmeta, const char *const *meta_keys, const char *const *meta_vals, const char *path) {
    if (emb_node <= 0 || emb_node >= net->n || net->nodes[emb_node].kind != TN_FC)
        return vt__err(VT_EINVAL, "export: the embedding must be a fully connected layer");
    int mixed = mix && mix->mixed;
    if (mixed && !l2) return vt__err(VT_EINVAL, "export: a mixed embedding needs the LpNormalization node");
    if (mixed) {
        int parts = mix->w_emb != 0;
        for (int h = 0; h < nheads; h++) parts += mix->w_head[h] != 0;
        if (!parts) return vt__err(VT_EINVAL, "export: the embedding mix has no part with a weight");
    }
    xb b = {0};
    char **name = xalloc(&b, (size_t)net->n * sizeof(char *));
    int *rank = xalloc(&b, (size_t)net->n * sizeof(int));
    if (!name || !rank) goto oom;
    name[0] = "input";
    rank[0] = 4;
    for (int i = 1; i < net->n; i++) {
        const tn_node *nd = &net->nodes[i];
        const char *x = name[nd->in[0]];
        char nm[32];
        snprintf(nm, sizeof nm, "n%d", i);
        char *out = xstr(&b, "t%d", i);
        for (int h = 0; h < nheads; h++)
            if (heads[h].node == i) out = xstr(&b, "%s", heads[h].name);
        if (i == emb_node) out = xstr(&b, l2 ? "embedding_raw" : "embedding");
        name[i] = out;
        rank[i] = 4;
        Onnx__NodeProto *n = NULL;
        switch (nd->kind) {
        case TN_CONV: {
            const tn_node *src = &net->nodes[nd->in[0]];
            char *wn = xstr(&b, "w%d", i), *bn = xstr(&b, "b%d", i);
            int64_t wd[4] = {nd->c, src->c / nd->groups, nd->k, nd->k}, bd[1] = {nd->c};
            xinit(&b, wn, 4, wd, nd->prm[0].w);
            if (nd->bias) xinit(&b, bn, 1, bd, nd->prm[1].w);
            const char *ins[3] = {x, wn, bn};
            n = xnode(&b, "Conv", nm, nd->bias ? 3 : 2, ins, out);
            xattr_ints(&b, n, "kernel_shape", 2, nd->k);
            xattr_ints(&b, n, "strides", 2, nd->stride);
            xattr_ints(&b, n, "pads", 4, nd->pad);
            xattr_ints(&b, n, "dilations", 2, 1);
            xattr_i(&b, n, "group", nd->groups);
            break;
        }
        case TN_BN: {
            int64_t d[1] = {nd->c};
            char *s = xstr(&b, "bn%d_scale", i), *sh = xstr(&b, "bn%d_bias", i), *m = xstr(&b, "bn%d_mean", i),
                 *v = xstr(&b, "bn%d_var", i);
            xinit(&b, s, 1, d, nd->prm[0].w);
            xinit(&b, sh, 1, d, nd->prm[1].w);
            xinit(&b, m, 1, d, nd->run_mean);
            xinit(&b, v, 1, d, nd->run_var);
            const char *ins[5] = {x, s, sh, m, v};
            char *bo = nd->fuse_relu ? xstr(&b, "t%d_bn", i) : out;
            n = xnode(&b, "BatchNormalization", nm, 5, ins, bo);
            xattr_f(&b, n, "epsilon", nd->eps);
            xattr_f(&b, n, "momentum", 1.0f - nd->momentum);
            if (nd->fuse_relu) n = xnode(&b, "Relu", xstr(&b, "n%d_relu", i), 1, (const char *const *)&bo, out);
            break;
        }
        case TN_RELU: n = xnode(&b, "Relu", nm, 1, &x, out); break;
        case TN_MAXPOOL:
        case TN_AVGPOOL:
            n = xnode(&b, nd->kind == TN_MAXPOOL ? "MaxPool" : "AveragePool", nm, 1, &x, out);
            xattr_ints(&b, n, "kernel_shape", 2, nd->k);
            xattr_ints(&b, n, "strides", 2, nd->stride);
            xattr_ints(&b, n, "pads", 4, nd->pad);
            if (nd->kind == TN_AVGPOOL) xattr_i(&b, n, "count_include_pad", 0);
            break;
        case TN_GAP: {
            char *g4 = xstr(&b, "t%d_pool", i);
            n = xnode(&b, "GlobalAveragePool", nm, 1, &x, g4);
            n = xnode(&b, "Flatten", xstr(&b, "n%d_flatten", i), 1, (const char *const *)&g4, out);
            xattr_i(&b, n, "axis", 1);
            rank[i] = 2;
            break;
        }
        case TN_ADD: {
            const char *ins[2] = {x, name[nd->in[1]]};
            n = xnode(&b, "Add", nm, 2, ins, out);
            rank[i] = rank[nd->in[0]];
            break;
        }
        case TN_FC: {
            const tn_node *src = &net->nodes[nd->in[0]];
            if (rank[nd->in[0]] != 2) {
                char *fl = xstr(&b, "t%d_flat", i);
                n = xnode(&b, "Flatten", xstr(&b, "n%d_flatten", i), 1, &x, fl);
                xattr_i(&b, n, "axis", 1);
                x = fl;
            }
            char *wn = xstr(&b, "w%d", i), *bn = xstr(&b, "b%d", i);
            int64_t wd[2] = {nd->c, src->c}, bd[1] = {nd->c};
            xinit(&b, wn, 2, wd, nd->prm[0].w);
            xinit(&b, bn, 1, bd, nd->prm[1].w);
            const char *ins[3] = {x, wn, bn};
            n = xnode(&b, "Gemm", nm, 3, ins, out);
            xattr_i(&b, n, "transB", 1);
            rank[i] = 2;
            break;
        }
        case TN_DROPOUT:
            name[i] = (char *)x;
            rank[i] = rank[nd->in[0]];
            n = (Onnx__NodeProto *)1; /* no node */
            break;
        case TN_INPUT: break;
        }
        if (!n || b.oom) goto oom;
    }
    if (l2 && !mixed) { /* embedding = LpNormalization(embedding_raw) */
        Onnx__NodeProto *ln = xnode(&b, "LpNormalization", "l2norm", 1, (const char *const *)&name[emb_node], "embedding");
        xattr_i(&b, ln, "axis", 1);
        xattr_i(&b, ln, "p", 2);
    } else if (mixed) { /* embedding = LpNorm(Concat(w * LpNorm(embedding_raw), w_h * Softmax(logits_h)...)) */
        const char **parts = xalloc(&b, (size_t)(nheads + 1) * sizeof(char *));
        int np = 0;
        if (!parts) goto oom;
        for (int p = -1; p < nheads; p++) {
            float w = p < 0 ? mix->w_emb : mix->w_head[p];
            if (w == 0) continue;
            const char *src = p < 0 ? name[emb_node] : heads[p].name;
            char *t = xstr(&b, "mix%d_in", p + 1), *wn = xstr(&b, "mix%d_w", p + 1), *o = xstr(&b, "mix%d", p + 1);
            Onnx__NodeProto *n;
            if (p < 0) {
                n = xnode(&b, "LpNormalization", "mix0_l2", 1, &src, t);
                xattr_i(&b, n, "axis", 1);
                xattr_i(&b, n, "p", 2);
            } else {
                n = xnode(&b, "Softmax", xstr(&b, "mix%d_softmax", p + 1), 1, &src, t);
                xattr_i(&b, n, "axis", 1);
            }
            float *wv = xalloc(&b, sizeof(float));
            if (!wv) goto oom;
            *wv = w;
            int64_t one[1] = {1};
            xinit(&b, wn, 1, one, wv);
            const char *mi[2] = {t, wn};
            xnode(&b, "Mul", xstr(&b, "mix%d_mul", p + 1), 2, mi, o);
            parts[np++] = o;
        }
        Onnx__NodeProto *cn = xnode(&b, "Concat", "mix_concat", np, parts, "embedding_mix");
        xattr_i(&b, cn, "axis", 1);
        const char *em = "embedding_mix";
        Onnx__NodeProto *ln = xnode(&b, "LpNormalization", "l2norm", 1, &em, "embedding");
        xattr_i(&b, ln, "axis", 1);
        xattr_i(&b, ln, "p", 2);
        if (b.oom) goto oom;
    }

    Onnx__GraphProto *g = xalloc(&b, sizeof *g);
    Onnx__ModelProto *m = xalloc(&b, sizeof *m);
    Onnx__OperatorSetIdProto *ops = xalloc(&b, sizeof *ops);
    Onnx__OperatorSetIdProto **opsv = xalloc(&b, sizeof *opsv);
    Onnx__ValueInfoProto **ins = xalloc(&b, sizeof *ins);
    Onnx__ValueInfoProto **outs = xalloc(&b, (size_t)(nheads + 1) * sizeof *outs);
    Onnx__StringStringEntryProto **meta = xalloc(&b, (size_t)(nmeta + 1) * sizeof *meta);
    if (!g || !m || !ops || !opsv || !ins || !outs || !meta || b.oom) goto oom;
    onnx__graph_proto__init(g);
    onnx__model_proto__init(m);
    onnx__operator_set_id_proto__init(ops);
    ops->domain = xstr(&b, "%s", "");
    ops->has_version = 1, ops->version = 13;
    opsv[0] = ops;
    const tn_node *in0 = &net->nodes[0];
    int64_t idims[4] = {0, in0->c, in0->h, in0->w};
    ins[0] = xvinfo(&b, "input", 4, idims);
    int64_t edims[2] = {0, net->nodes[emb_node].c};
    if (mixed) {
        edims[1] = mix->w_emb != 0 ? net->nodes[emb_node].c : 0;
        for (int h = 0; h < nheads; h++)
            if (mix->w_head[h] != 0) edims[1] += net->nodes[heads[h].node].c;
    }
    outs[0] = xvinfo(&b, "embedding", 2, edims);
    for (int h = 0; h < nheads; h++) {
        int64_t hd[2] = {0, net->nodes[heads[h].node].c};
        outs[h + 1] = xvinfo(&b, heads[h].name, 2, hd);
    }
    for (int i = 0; i < nmeta; i++) {
        meta[i] = xalloc(&b, sizeof **meta);
        if (!meta[i]) goto oom;
        onnx__string_string_entry_proto__init(meta[i]);
        meta[i]->key = xstr(&b, "%s", meta_keys[i]);
        meta[i]->value = xstr(&b, "%s", meta_vals[i]);
    }
    if (b.oom) goto oom;
    g->name = xstr(&b, "vitrine_resnet");
    g->node = b.nodes, g->n_node = b.nn;
    g->initializer = b.inits, g->n_initializer = b.ni;
    g->input = ins, g->n_input = 1;
    g->output = outs, g->n_output = (size_t)nheads + 1;
    m->has_ir_version = 1, m->ir_version = 7;
    m->opset_import = opsv, m->n_opset_import = 1;
    m->producer_name = xstr(&b, "vitrine");
    m->producer_version = xstr(&b, "%s", VT_VERSION_STRING);
    m->graph = g;
    m->metadata_props = meta, m->n_metadata_props = (size_t)nmeta;
    if (b.oom) goto oom;
    size_t len = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    int rc;
    if (!buf) {
        rc = vt__err(VT_ENOMEM, "export: out of memory");
    } else {
        onnx__model_proto__pack(m, buf);
        rc = vt__write_file_atomic(path, buf, len);
        free(buf);
    }
    for (size_t i = 0; i < b.na; i++) free(b.allocs[i]);
    free(b.allocs), free(b.nodes), free(b.inits);
    return rc;
oom:
    for (size_t i = 0; i < b.na; i++) free(b.allocs[i]);
    free(b.allocs), free(b.nodes), free(b.inits);
    return vt__err(VT_ENOMEM, "export: out of memory");
}
