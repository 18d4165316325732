/* model.c: the public vt_model API: loading, description, preprocessing spec, cached plans, runs. */
#include "nn/nn_internal.h"
#include "onnx/onnx.pb-c.h"
#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define NN_MAX_PLANS 6

struct vt_model {
    nn_graph *g;
    dnnl_engine_t eng;
    int threads;
    int bf16;
    nn_plan *plans[NN_MAX_PLANS];
    int nplans;
    nn_plan *last;
    char *embed_name;
    char *path;     /* file the model came from (NULL: memory) */
};

static int resolve_threads(int t) { return t > 0 ? t : vt_cpu_count(); }

static int model_from_graph(nn_graph *g, const vt_model_opts *opts, vt_model **out) {
    *out = NULL;
    vt_model *m = calloc(1, sizeof *m);
    if (!m) {
        vt__nn_graph_free(g);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    m->g = g;
    m->threads = resolve_threads(opts ? opts->threads : 0);
    m->bf16 = opts ? opts->bf16 : 0;
    if (dnnl_engine_create(&m->eng, dnnl_cpu, 0) != dnnl_success) {
        vt_model_free(m);
        return vt__err(VT_EINTERNAL, "oneDNN: cannot create a CPU engine");
    }
    *out = m;
    return 0;
}

int vt_model_load_mem(const void *buf, size_t len, const char *name, const vt_model_opts *opts, vt_model **out) {
    *out = NULL;
    nn_graph *g;
    int rc = vt__nn_graph_parse(buf, len, name, NULL, NULL, &g);
    if (rc) return rc;
    return model_from_graph(g, opts, out);
}

typedef struct {
    void *p;
    size_t len;
    int mapped; /* mmap'd, or read into memory (see vt__map_file) */
} mapping;

static void unmap(void *c) {
    mapping *m = c;
    if (m->p) vt__unmap_file(m->p, m->len, m->mapped);
    m->p = NULL;
}

/* Maps the file rather than reading it, and unmaps it right after protobuf decoding: the weights
 * are then held once (by the graph) before plans add their reordered copy. */
static int load_graph_file(const char *path, nn_graph **g) {
    *g = NULL;
    void *p;
    size_t len;
    int mapped;
    int rc = vt__map_file(path, &p, &len, &mapped);
    if (rc) return rc;
    if (mapped) madvise(p, len, MADV_SEQUENTIAL);
    mapping m = {p, len, mapped};
    rc = vt__nn_graph_parse(m.p, m.len, path, unmap, &m, g);
    unmap(&m);
    return rc;
}

/* Loaded from a file, a model lets its first plan free the original convolution weights once they
 * are reordered (the plan holds them), so that `vitrine model run` keeps the weights in memory
 * once; a later plan for another shape re-reads them from the file (once: after that the graph
 * keeps them). */
int vt_model_load(const char *path, const vt_model_opts *opts, vt_model **out) {
    *out = NULL;
    nn_graph *g;
    int rc = load_graph_file(path, &g);
    if (rc) return rc;
    rc = model_from_graph(g, opts, out);
    if (rc) return rc;
    (*out)->path = strdup(path);
    if ((*out)->path) g->release_weights = 1;
    return 0;
}

/* Puts back initializers an earlier plan released, re-reading the model file. */
static int restore_weights(vt_model *m) {
    nn_graph *g = m->g;
    if (!g->weights_released) return 0;
    nn_graph *g2;
    int rc = m->path ? load_graph_file(m->path, &g2) : vt__err(VT_ESTATE, "model weights were released");
    if (rc) return vt__err_prefix(rc, "re-reading the weights");
    if (g2->nvals != g->nvals) {
        vt__nn_graph_free(g2);
        return vt__err(VT_ESTATE, "%s changed on disk", m->path);
    }
    for (int v = 0; v < g->nvals; v++)
        if (!g->vals[v].data && g2->vals[v].data && g->vals[v].producer < 0) {
            g->vals[v].data = g2->vals[v].data;
            g2->vals[v].data = NULL;
        }
    vt__nn_graph_free(g2);
    g->weights_released = 0;
    g->release_weights = 0;
    return 0;
}

void vt_model_free(vt_model *m) {
    if (!m) return;
    for (int i = 0; i < m->nplans; i++) vt__nn_plan_free(m->plans[i]);
    if (m->eng) dnnl_engine_destroy(m->eng);
    vt__nn_graph_free(m->g);
    free(m->embed_name);
    free(m->path);
    free(m);
}

int vt_model_set_threads(vt_model *m, int threads) {
    if (!m || threads < 0) return vt__err(VT_EINVAL, "bad thread count %d", threads);
    m->threads = resolve_threads(threads);
    return 0;
}

void vt_tensor_free(vt_tensor *t) {
    if (!t) return;
    free(t->data);
    t->data = NULL;
}

int vt_tensor_load_pb(const char *path, char **name, vt_tensor *out) {
    memset(out, 0, sizeof *out);
    if (name) *name = NULL;
    uint8_t *buf;
    size_t len;
    int rc = vt__read_file(path, (size_t)1 << 31, &buf, &len);
    if (rc) return rc;
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (!t) return vt__err(VT_ECORRUPT, "%s: not a serialized ONNX tensor", path);
    int64_t dims[NN_MAXR];
    size_t ne;
    rc = vt__nn_tensor_from_proto(t, t->name ? t->name : path, &out->dtype, &out->rank, dims, &out->data, &ne, 0);
    if (!rc) {
        memcpy(out->shape, dims, (size_t)out->rank * 8);
        if (name && t->name) {
            *name = strdup(t->name);
            if (!*name) rc = vt__err(VT_ENOMEM, "out of memory");
        }
    }
    onnx__tensor_proto__free_unpacked(t, NULL);
    if (rc) vt_tensor_free(out);
    return rc;
}

/* ---------------------------------------------------------------- description */

int vt_model_num_inputs(const vt_model *m) { return m->g->ninputs; }
int vt_model_num_outputs(const vt_model *m) { return m->g->noutputs; }

static int io_of(const nn_value *v, vt_model_io *out) {
    out->name = v->name;
    out->dtype = v->dtype;
    out->rank = v->rank;
    for (int i = 0; i < v->rank && i < 8; i++) out->shape[i] = v->dims[i];
    return 0;
}

int vt_model_input(const vt_model *m, int i, vt_model_io *out) {
    if (i < 0 || i >= m->g->ninputs) return vt__err(VT_EINVAL, "no input %d", i);
    return io_of(&m->g->vals[m->g->inputs[i]], out);
}

int vt_model_output(const vt_model *m, int i, vt_model_io *out) {
    if (i < 0 || i >= m->g->noutputs) return vt__err(VT_EINVAL, "no output %d", i);
    return io_of(&m->g->vals[m->g->outputs[i]], out);
}

int vt_model_num_nodes(const vt_model *m) { return m->g->nnodes; }
const char *vt_model_node_op(const vt_model *m, int i) { return i >= 0 && i < m->g->nnodes ? m->g->nodes[i].op : NULL; }
int64_t vt_model_param_count(const vt_model *m) { return m->g->nparams; }
int vt_model_opset(const vt_model *m) { return m->g->opset; }
const char *vt_model_producer(const vt_model *m) { return m->g->producer ? m->g->producer : ""; }

const char *vt_model_meta(const vt_model *m, const char *key) {
    for (int i = 0; i < m->g->nmeta; i++)
        if (!strcmp(m->g->meta_keys[i], key)) return m->g->meta_vals[i];
    return NULL;
}

/* Contract: the embedding heuristic documented in vitrine.h; result cached in m. */
const char *vt_model_embedding_tensor(const vt_model *m) {
    const char *md = vt_model_meta(m, "vitrine.embedding");
    if (md && vt__nn_find_value(m->g, md) >= 0) return md;
    const nn_graph *g = m->g;
    int v = g->outputs[0];
    for (int hops = 0; hops < 8; hops++) {
        int pi = g->vals[v].producer;
        if (pi < 0) break;
        const nn_node *n = &g->nodes[pi];
        if (!strcmp(n->op, "Softmax") || !strcmp(n->op, "Identity") || !strcmp(n->op, "Dropout")) {
            if (n->nin < 1 || n->in[0] < 0) break;
            v = n->in[0];
            continue;
        }
        if (!strcmp(n->op, "Gemm") || !strcmp(n->op, "MatMul")) {
            if (n->nin < 1 || n->in[0] < 0) break;
            int x = n->in[0];
            /* prefer the pooled tensor before Flatten/Reshape/Dropout */
            for (int k = 0; k < 4; k++) {
                int q = g->vals[x].producer;
                if (q < 0) break;
                const char *op = g->nodes[q].op;
                if ((!strcmp(op, "Flatten") || !strcmp(op, "Reshape") || !strcmp(op, "Dropout") || !strcmp(op, "Identity")) &&
                    g->nodes[q].nin >= 1 && g->nodes[q].in[0] >= 0)
                    x = g->nodes[q].in[0];
                else break;
            }
            return g->vals[x].name;
        }
        break;
    }
    return g->vals[g->outputs[0]].name;
}

static int parse_floats3(const char *s, float out[3]) {
    char *end;
    for (int i = 0; i < 3; i++) {
        out[i] = strtof(s, &end);
        if (end == s) return -1;
        s = end;
        while (*s == ',' || *s == ' ') s++;
    }
    return *s ? -1 : 0;
}

int vt_model_preproc(const vt_model *m, vt_preproc *out) {
    memset(out, 0, sizeof *out);
    out->size = 224;
    memcpy(out->mean, vt_imagenet_mean, sizeof out->mean);
    memcpy(out->std, vt_imagenet_std, sizeof out->std);
    out->fit = VT_FIT_LETTERBOX;
    if (m->g->ninputs > 0) {
        const nn_value *v = &m->g->vals[m->g->inputs[0]];
        if (v->rank == 4 && v->dims[2] > 0) out->size = (int)v->dims[2];
    }
    const char *s;
    if ((s = vt_model_meta(m, "vitrine.input_size"))) {
        long v = strtol(s, NULL, 10);
        if (v < 8 || v > 4096) return vt__err(VT_ECORRUPT, "metadata vitrine.input_size '%s' is not in 8..4096", s);
        out->size = (int)v;
        out->from_metadata = 1;
    }
    if ((s = vt_model_meta(m, "vitrine.mean"))) {
        if (parse_floats3(s, out->mean)) return vt__err(VT_ECORRUPT, "metadata vitrine.mean '%s' is not three numbers", s);
        out->from_metadata = 1;
    }
    if ((s = vt_model_meta(m, "vitrine.std"))) {
        if (parse_floats3(s, out->std) || out->std[0] == 0 || out->std[1] == 0 || out->std[2] == 0)
            return vt__err(VT_ECORRUPT, "metadata vitrine.std '%s' is not three non-zero numbers", s);
        out->from_metadata = 1;
    }
    if ((s = vt_model_meta(m, "vitrine.color"))) {
        if (!strcmp(s, "bgr")) out->bgr = 1;
        else if (strcmp(s, "rgb")) return vt__err(VT_ECORRUPT, "metadata vitrine.color '%s' is not rgb or bgr", s);
        out->from_metadata = 1;
    }
    if ((s = vt_model_meta(m, "vitrine.fit"))) {
        if (!strcmp(s, "stretch")) out->fit = VT_FIT_STRETCH;
        else if (strcmp(s, "letterbox")) return vt__err(VT_ECORRUPT, "metadata vitrine.fit '%s' is not letterbox or stretch", s);
        out->from_metadata = 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- running */

/* Finds or builds the plan for these feeds and requested values. */
static int get_plan(vt_model *m, int nfeed, const nn_feed *feeds, int nkeep, const int *keep, const char *keyname,
                    nn_plan **out) {
    for (int i = 0; i < m->nplans; i++) {
        nn_plan *p = m->plans[i];
        if (p->value_dependent || p->threads != m->threads || p->bf16 != m->bf16 || p->nin != nfeed) continue;
        if ((p->keep == NULL) != (keyname == NULL) || (keyname && strcmp(p->keep, keyname))) continue;
        int same = 1;
        for (int f = 0; f < nfeed && f < 8 && same; f++)
            if (p->in_rank[f] != feeds[f].rank || memcmp(p->in_dims[f], feeds[f].dims, (size_t)feeds[f].rank * 8)) same = 0;
        if (same) {
            *out = p;
            return 0;
        }
    }
    nn_plan *p;
    int rc = restore_weights(m);
    if (rc) return rc;
    rc = vt__nn_plan_build(m->g, m->eng, m->threads, m->bf16, nfeed, feeds, nkeep, keep, &p);
    if (rc) return rc;
    if (keyname) {
        p->keep = strdup(keyname);
        if (!p->keep) {
            vt__nn_plan_free(p);
            return vt__err(VT_ENOMEM, "out of memory");
        }
    }
    if (m->nplans == NN_MAX_PLANS) {
        if (m->last == m->plans[0]) m->last = NULL;
        vt__nn_plan_free(m->plans[0]);
        memmove(m->plans, m->plans + 1, (NN_MAX_PLANS - 1) * sizeof *m->plans);
        m->nplans--;
    }
    m->plans[m->nplans++] = p;
    *out = p;
    return 0;
}

static void drop_plan(vt_model *m, nn_plan *p) {
    for (int i = 0; i < m->nplans; i++)
        if (m->plans[i] == p) {
            vt__nn_plan_free(p);
            memmove(m->plans + i, m->plans + i + 1, (size_t)(m->nplans - i - 1) * sizeof *m->plans);
            m->nplans--;
            break;
        }
    if (m->last == p) m->last = NULL;
}

int vt_model_run_tensors(vt_model *m, int nin, const char *const *in_names, const vt_tensor *in, int nout,
                         const char *const *out_names, vt_tensor *out) {
    if (!m || nin < 0 || nin > 8 || nout < 0 || nout > 16) return vt__err(VT_EINVAL, "bad argument");
    if (nout == 0 && !out_names) nout = m->g->noutputs;
    if (nout > 16) return vt__err(VT_EINVAL, "too many outputs");
    for (int i = 0; i < nout; i++) memset(&out[i], 0, sizeof out[i]);
    nn_feed feeds[8];
    for (int i = 0; i < nin; i++) {
        int v;
        if (in_names && in_names[i]) {
            v = vt__nn_find_value(m->g, in_names[i]);
            if (v < 0 || !m->g->vals[v].is_input) return vt__err(VT_ENOTFOUND, "the model has no input '%s'", in_names[i]);
        } else {
            if (i >= m->g->ninputs) return vt__err(VT_EINVAL, "the model has only %d inputs", m->g->ninputs);
            v = m->g->inputs[i];
        }
        if (in[i].dtype != VT_DT_FLOAT && in[i].dtype != VT_DT_INT64)
            return vt__err(VT_EINVAL, "input '%s': element type %d", m->g->vals[v].name, in[i].dtype);
        if (in[i].rank < 0 || in[i].rank > NN_MAXR) return vt__err(VT_EINVAL, "input '%s': bad rank", m->g->vals[v].name);
        const nn_value *gv = &m->g->vals[v];
        if (gv->rank >= 0) {
            if (gv->rank != in[i].rank)
                return vt__err(VT_EINVAL, "input '%s' has rank %d, the model expects %d", gv->name, in[i].rank, gv->rank);
            for (int d = 0; d < gv->rank; d++)
                if (gv->dims[d] >= 0 && gv->dims[d] != in[i].shape[d])
                    return vt__err(VT_EINVAL, "input '%s': dimension %d is %lld, the model expects %lld", gv->name, d,
                                   (long long)in[i].shape[d], (long long)gv->dims[d]);
        }
        for (int d = 0; d < in[i].rank; d++)
            if (in[i].shape[d] < 0) return vt__err(VT_EINVAL, "input '%s': negative dimension", gv->name);
        if (gv->dtype && ((gv->dtype == NN_FLOAT) != (in[i].dtype == VT_DT_FLOAT)))
            return vt__err(VT_EINVAL, "input '%s': wrong element type", gv->name);
        feeds[i].value = v;
        feeds[i].dtype = in[i].dtype;
        feeds[i].rank = in[i].rank;
        memcpy(feeds[i].dims, in[i].shape, (size_t)in[i].rank * 8);
        feeds[i].data = in[i].data;
    }
    int keep[16], nkeep = 0;
    int outv[16];
    char keyname[512] = "";
    for (int i = 0; i < nout; i++) {
        if (out_names && out_names[i]) {
            int v = vt__nn_find_value(m->g, out_names[i]);
            if (v < 0 || !*out_names[i]) return vt__err(VT_ENOTFOUND, "the model has no tensor '%s'", out_names[i]);
            outv[i] = v;
            if (!m->g->vals[v].is_output) {
                keep[nkeep++] = v;
                size_t l = strlen(keyname);
                snprintf(keyname + l, sizeof keyname - l, "%s\n", out_names[i]);
            }
        } else {
            if (i >= m->g->noutputs) return vt__err(VT_EINVAL, "the model has only %d outputs", m->g->noutputs);
            outv[i] = m->g->outputs[i];
        }
    }
    nn_plan *p = NULL;
    int rc = get_plan(m, nin, feeds, nkeep, keep, nkeep ? keyname : NULL, &p);
    if (rc) return rc;
    m->last = p;
    rc = vt__nn_plan_run(p, nin, feeds);
    for (int i = 0; i < nout && !rc; i++) {
        int64_t dims[NN_MAXR];
        rc = vt__nn_plan_fetch(p, outv[i], &out[i].dtype, &out[i].rank, dims, &out[i].data);
        if (!rc) memcpy(out[i].shape, dims, (size_t)out[i].rank * 8);
    }
    if (p->value_dependent) drop_plan(m, p);
    if (rc)
        for (int i = 0; i < nout; i++) vt_tensor_free(&out[i]);
    return rc;
}

int vt_model_run(vt_model *m, const float *in, int n, int c, int h, int w, const char *tensor, float **out,
                 int64_t out_shape[8], int *out_rank) {
    *out = NULL;
    if (!m || !in || n <= 0 || c <= 0 || h <= 0 || w <= 0) return vt__err(VT_EINVAL, "bad input shape %dx%dx%dx%d", n, c, h, w);
    if (m->g->ninputs < 1) return vt__err(VT_EINVAL, "the model has no inputs");
    vt_tensor t = {VT_DT_FLOAT, 4, {n, c, h, w}, (void *)in}, o;
    const char *names[1] = {tensor};
    int rc = vt_model_run_tensors(m, 1, NULL, &t, 1, tensor ? names : NULL, &o);
    if (rc) return rc;
    if (o.dtype != VT_DT_FLOAT) {
        vt_tensor_free(&o);
        return vt__err(VT_EUNSUPPORTED, "tensor '%s' is not a float tensor", tensor ? tensor : "output");
    }
    *out = o.data;
    *out_rank = o.rank;
    memcpy(out_shape, o.shape, sizeof o.shape);
    return 0;
}

int vt_model_plan_bytes(const vt_model *m, size_t *activations, size_t *weights) {
    if (!m->last) return vt__err(VT_ESTATE, "no run yet");
    *activations = m->last->arena_bytes;
    *weights = (size_t)m->last->wbytes;
    return 0;
}
