/* onnx.c: ONNX import: protobuf-c unpack of a ModelProto into the engine's graph (nn_graph). */
#include "nn/nn_internal.h"
#include "onnx/onnx.pb-c.h"
#include <string.h>
#include <sys/mman.h>

#define NN_MAX_ELEMS (1ull << 34) /* refuse tensors above 16 G elements */

static char *dupstr(const char *s) {
    if (!s) s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

size_t vt__nn_numel(int rank, const int64_t *dims) {
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= (size_t)(dims[i] < 0 ? 0 : dims[i]);
    return n;
}

static int elem_size_of(int dt) {
    switch (dt) {
    case NN_FLOAT: case NN_INT32: return 4;
    case NN_INT64: case NN_DOUBLE: return 8;
    case NN_UINT8: case NN_INT8: case NN_BOOL: return 1;
    case 4: case 5: return 2; /* uint16, int16 */
    default: return 0;
    }
}

static const char *dtype_name(int dt) {
    static const char *names[] = {"undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64",
                                  "string", "bool", "float16", "double", "uint32", "uint64", "complex64",
                                  "complex128", "bfloat16"};
    return dt >= 0 && dt <= 16 ? names[dt] : "unknown";
}

/* Contract: converts TensorProto `t` to a malloc'd float (NN_FLOAT) or int64 (NN_INT64, from any
 * integer or bool type) array. Checks every length against the declared dims before allocating
 * anything of their size; refuses external
 * data, strings, doubles and half floats with VT_EUNSUPPORTED naming `what`. */
int vt__nn_tensor_from_proto(const Onnx__TensorProto *t, const char *what, int *dtype, int *rank,
                             int64_t dims[NN_MAXR], void **data, size_t *nelem, int steal) {
    *data = NULL;
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return vt__err(VT_EUNSUPPORTED, "tensor '%s' keeps its data in an external file, which is not supported "
                                        "(re-export with the weights inside the .onnx file)", what);
    if (t->segment) return vt__err(VT_EUNSUPPORTED, "tensor '%s' is segmented", what);
    if (t->n_dims > NN_MAXR) return vt__err(VT_EUNSUPPORTED, "tensor '%s' has rank %zu (max %d)", what, t->n_dims, NN_MAXR);
    size_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0) return vt__err(VT_ECORRUPT, "tensor '%s' has a negative dimension", what);
        if (vt__mul_overflow(n, (size_t)t->dims[i], &n) || n > NN_MAX_ELEMS)
            return vt__err(VT_ETOOBIG, "tensor '%s' is too large", what);
        dims[i] = t->dims[i];
    }
    *rank = (int)t->n_dims;
    int dt = t->has_data_type ? t->data_type : 0;
    int es = elem_size_of(dt);
    if (!es || dt == NN_DOUBLE)
        return vt__err(VT_EUNSUPPORTED, "tensor '%s' has element type %s, which is not supported", what, dtype_name(dt));
    int is_float = dt == NN_FLOAT;
    size_t outsz = is_float ? 4 : 8;
    if (steal && (is_float || dt == NN_INT64) && t->has_raw_data && n && t->raw_data.len == n * (size_t)es &&
        ((uintptr_t)t->raw_data.data % 8) == 0) {
        /* take protobuf-c's malloc'd copy of the bytes instead of copying them again */
        Onnx__TensorProto *mt = (Onnx__TensorProto *)t;
        *data = mt->raw_data.data;
        mt->raw_data.data = NULL;
        mt->raw_data.len = 0;
        mt->has_raw_data = 0;
        *dtype = is_float ? NN_FLOAT : NN_INT64;
        *nelem = n;
        return 0;
    }
    /* the stored data must match the shape before anything of the shape's size is allocated: a
     * corrupt file may declare 2^34 elements and hold a few bytes */
    int use_raw = t->has_raw_data && (t->raw_data.len || n == 0);
    size_t stored = use_raw ? t->raw_data.len
                    : is_float ? t->n_float_data
                    : dt == NN_INT64 ? t->n_int64_data
                    : t->n_int32_data;
    if (use_raw && stored != n * (size_t)es)
        return vt__err(VT_ECORRUPT, "tensor '%s' holds %zu bytes of data, its shape needs %zu", what, stored,
                       n * (size_t)es);
    if (!use_raw && stored != n) goto badlen;
    void *buf = malloc(n ? n * outsz : outsz);
    if (!buf) return vt__err(VT_ENOMEM, "tensor '%s': out of memory", what);
    if (use_raw) {
        const uint8_t *r = t->raw_data.data;
        if ((is_float || dt == NN_INT64) && n) memcpy(buf, r, n * outsz);
        else {
            int64_t *o = buf;
            for (size_t i = 0; i < n; i++) {
                const uint8_t *p = r + i * (size_t)es;
                switch (dt) {
                case NN_INT32: { int32_t v; memcpy(&v, p, 4); o[i] = v; break; }
                case 4: { uint16_t v; memcpy(&v, p, 2); o[i] = v; break; }
                case 5: { int16_t v; memcpy(&v, p, 2); o[i] = v; break; }
                case NN_INT8: o[i] = (int8_t)p[0]; break;
                default: o[i] = p[0]; break;
                }
            }
        }
    } else if (is_float) {
        if (n) memcpy(buf, t->float_data, n * 4);
    } else if (dt == NN_INT64) {
        if (n) memcpy(buf, t->int64_data, n * 8);
    } else {
        int64_t *o = buf;
        for (size_t i = 0; i < n; i++) o[i] = t->int32_data[i];
    }
    *dtype = is_float ? NN_FLOAT : NN_INT64;
    *data = buf;
    *nelem = n;
    return 0;
badlen:
    return vt__err(VT_ECORRUPT, "tensor '%s': number of stored values does not match its shape", what);
}

static uint32_t name_hash(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* Contract: the index of the first value named `name`, or -1; constant time on average through
 * g->vindex (a linear search when the graph has no index). */
int vt__nn_find_value(const nn_graph *g, const char *name) {
    if (!g->vindex) {
        for (int i = 0; i < g->nvals; i++)
            if (g->vals[i].name && !strcmp(g->vals[i].name, name)) return i;
        return -1;
    }
    unsigned mask = (unsigned)g->vindexcap - 1;
    for (unsigned h = name_hash(name) & mask;; h = (h + 1) & mask) {
        int v = g->vindex[h] - 1;
        if (v < 0) return -1;
        if (!strcmp(g->vals[v].name, name)) return v;
    }
}

/* Enters value vi in the name index unless a value of that name is there already (the first
 * one keeps the name), growing the table to keep it at most half full. 0 or -1 (out of memory). */
static int index_value(nn_graph *g, int vi) {
    if (2 * (g->nvals + 1) > g->vindexcap) {
        int nc = g->vindexcap ? g->vindexcap * 2 : 128;
        int *t = calloc((size_t)nc, sizeof *t);
        if (!t) return -1;
        free(g->vindex);
        g->vindex = t;
        g->vindexcap = nc;
        for (int i = 0; i < g->nvals; i++)
            if (i != vi && index_value(g, i)) return -1; /* cannot fail: no growth */
    }
    unsigned mask = (unsigned)g->vindexcap - 1;
    for (unsigned h = name_hash(g->vals[vi].name) & mask;; h = (h + 1) & mask) {
        int v = g->vindex[h] - 1;
        if (v < 0) {
            g->vindex[h] = vi + 1;
            return 0;
        }
        if (v == vi || !strcmp(g->vals[v].name, g->vals[vi].name)) return 0;
    }
}

static int add_value(nn_graph *g, const char *name) {
    if (g->nvals == g->capvals) {
        int nc = g->capvals ? g->capvals * 2 : 64;
        nn_value *nv = realloc(g->vals, (size_t)nc * sizeof *nv);
        if (!nv) return -1;
        g->vals = nv;
        g->capvals = nc;
    }
    nn_value *v = &g->vals[g->nvals];
    memset(v, 0, sizeof *v);
    v->name = dupstr(name);
    if (!v->name) return -1;
    v->rank = -1;
    v->producer = -1;
    if (index_value(g, g->nvals)) {
        free(v->name);
        return -1;
    }
    return g->nvals++;
}

/* Value index for `name`, creating it when `create`. */
static int value_of(nn_graph *g, const char *name, int create) {
    int i = vt__nn_find_value(g, name);
    if (i >= 0 || !create) return i;
    return add_value(g, name);
}

const nn_attr *vt__nn_attr(const nn_node *n, const char *name) {
    for (int i = 0; i < n->nattr; i++)
        if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}

int64_t vt__nn_attr_i(const nn_node *n, const char *name, int64_t dflt) {
    const nn_attr *a = vt__nn_attr(n, name);
    return a && a->kind == NA_INT ? a->i : dflt;
}

float vt__nn_attr_f(const nn_node *n, const char *name, float dflt) {
    const nn_attr *a = vt__nn_attr(n, name);
    return a && a->kind == NA_FLOAT ? a->f : dflt;
}

void vt__nn_graph_free(nn_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->nvals; i++) {
        free(g->vals[i].name);
        free(g->vals[i].data);
    }
    free(g->vals);
    for (int i = 0; i < g->nnodes; i++) {
        nn_node *n = &g->nodes[i];
        free(n->op);
        free(n->name);
        free(n->in);
        free(n->out);
        for (int a = 0; a < n->nattr; a++) {
            free(n->attrs[a].name);
            free(n->attrs[a].s);
            free(n->attrs[a].floats);
            free(n->attrs[a].ints);
        }
        free(n->attrs);
    }
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    for (int i = 0; i < g->nmeta; i++) {
        free(g->meta_keys[i]);
        free(g->meta_vals[i]);
    }
    free(g->meta_keys);
    free(g->meta_vals);
    free(g->producer);
    free(g->vindex);
    free(g);
}

/* Fills v's declared type and shape from a ValueInfoProto (missing parts stay unknown). */
static int read_value_info(nn_value *v, const Onnx__ValueInfoProto *vi) {
    if (!vi->type) return 0;
    if (vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !vi->type->tensor_type)
        return vt__err(VT_EUNSUPPORTED, "value '%s' is not a tensor (sequence, map and optional types are not supported)",
                       v->name);
    const Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
    if (tt->has_elem_type) v->dtype = tt->elem_type;
    if (tt->shape) {
        if (tt->shape->n_dim > NN_MAXR)
            return vt__err(VT_EUNSUPPORTED, "value '%s' has rank %zu (max %d)", v->name, tt->shape->n_dim, NN_MAXR);
        v->rank = (int)tt->shape->n_dim;
        for (size_t d = 0; d < tt->shape->n_dim; d++) {
            const Onnx__TensorShapeProto__Dimension *dm = tt->shape->dim[d];
            v->dims[d] = dm && dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dm->dim_value >= 0
                             ? dm->dim_value : -1;
        }
    }
    return 0;
}

static int copy_attr(nn_graph *g, const char *nodename, const Onnx__AttributeProto *ap, nn_attr *a) {
    memset(a, 0, sizeof *a);
    a->tensor = -1;
    a->name = dupstr(ap->name);
    if (!a->name) return vt__err(VT_ENOMEM, "out of memory");
    int type = ap->has_type ? (int)ap->type : 0;
    switch (type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: a->kind = NA_FLOAT; a->f = ap->f; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: a->kind = NA_INT; a->i = ap->i; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
        a->kind = NA_STRING;
        a->s = malloc(ap->s.len + 1);
        if (!a->s) return vt__err(VT_ENOMEM, "out of memory");
        if (ap->s.len) memcpy(a->s, ap->s.data, ap->s.len);
        a->s[ap->s.len] = 0;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        a->kind = NA_FLOATS;
        a->n = (int)ap->n_floats;
        a->floats = malloc((ap->n_floats + 1) * sizeof(float));
        if (!a->floats) return vt__err(VT_ENOMEM, "out of memory");
        if (ap->n_floats) memcpy(a->floats, ap->floats, ap->n_floats * sizeof(float));
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        a->kind = NA_INTS;
        a->n = (int)ap->n_ints;
        a->ints = malloc((ap->n_ints + 1) * sizeof(int64_t));
        if (!a->ints) return vt__err(VT_ENOMEM, "out of memory");
        if (ap->n_ints) memcpy(a->ints, ap->ints, ap->n_ints * sizeof(int64_t));
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: {
        if (!ap->t) return vt__err(VT_ECORRUPT, "node '%s': attribute '%s' has no tensor", nodename, ap->name);
        int vi = add_value(g, "");
        if (vi < 0) return vt__err(VT_ENOMEM, "out of memory");
        nn_value *v = &g->vals[vi];
        int rc = vt__nn_tensor_from_proto(ap->t, ap->name, &v->dtype, &v->rank, v->dims, &v->data, &v->nelem, 1);
        if (rc) return vt__err_prefix(rc, "node '%s'", nodename);
        a->kind = NA_TENSOR;
        a->tensor = vi;
        break;
    }
    default: a->kind = NA_OTHER; break;
    }
    return 0;
}

/* Contract: builds g->nodes from the proto's nodes in a topological order (Kahn); every input must
 * be a graph input, an initializer or the output of some node, and there must be no cycle. */
static int build_nodes(nn_graph *g, const Onnx__GraphProto *gp) {
    size_t nn = gp->n_node;
    g->nodes = calloc(nn ? nn : 1, sizeof *g->nodes);
    if (!g->nodes) return vt__err(VT_ENOMEM, "out of memory");
    /* First pass: outputs get values; remember which node produces what. */
    for (size_t k = 0; k < nn; k++) {
        const Onnx__NodeProto *np = gp->node[k];
        const char *nm = np->name && *np->name ? np->name : (np->op_type ? np->op_type : "?");
        if (!np->op_type) return vt__err(VT_ECORRUPT, "node %zu has no operator type", k);
        if (np->domain && *np->domain && strcmp(np->domain, "ai.onnx"))
            return vt__err(VT_EUNSUPPORTED, "node '%s': operator %s of domain '%s' is not supported", nm,
                           np->op_type, np->domain);
        for (size_t o = 0; o < np->n_output; o++) {
            if (!np->output[o] || !*np->output[o]) continue;
            int vi = value_of(g, np->output[o], 1);
            if (vi < 0) return vt__err(VT_ENOMEM, "out of memory");
            if (g->vals[vi].producer >= 0 || g->vals[vi].data || g->vals[vi].is_input)
                return vt__err(VT_ECORRUPT, "node '%s': output '%s' is defined twice", nm, np->output[o]);
            g->vals[vi].producer = (int)k; /* proto index for now */
        }
    }
    /* Kahn's algorithm over proto node indices, with input value indices resolved once: indeg[k]
     * counts node k's inputs that some node produces; cons lists, per producing node, the nodes
     * that read one of its outputs (once per such input, CSR layout from cstart). */
    size_t nedges = 0;
    for (size_t k = 0; k < nn; k++) nedges += gp->node[k]->n_input;
    int *indeg = calloc(nn + 1, sizeof *indeg), *order = malloc((nn + 1) * sizeof *order);
    int *cstart = calloc(nn + 2, sizeof *cstart), *cons = malloc((nedges + 1) * sizeof *cons);
    int *ready = malloc((nn + 1) * sizeof *ready);
    int **inidx = calloc(nn + 1, sizeof *inidx);
    int rc = 0;
    if (!indeg || !order || !cstart || !cons || !ready || !inidx) rc = vt__err(VT_ENOMEM, "out of memory");
    for (size_t k = 0; k < nn && !rc; k++) {
        const Onnx__NodeProto *np = gp->node[k];
        inidx[k] = malloc((np->n_input + 1) * sizeof(int));
        if (!inidx[k]) {
            rc = vt__err(VT_ENOMEM, "out of memory");
            break;
        }
        for (size_t i = 0; i < np->n_input; i++) {
            inidx[k][i] = -1;
            if (!np->input[i] || !*np->input[i]) continue;
            int vi = vt__nn_find_value(g, np->input[i]);
            if (vi < 0) {
                rc = vt__err(VT_ECORRUPT, "node '%s' (%s): input '%s' is neither a graph input, an initializer nor "
                             "the output of a node", np->name ? np->name : "", np->op_type, np->input[i]);
                break;
            }
            inidx[k][i] = vi;
            if (g->vals[vi].producer >= 0) {
                indeg[k]++;
                cstart[g->vals[vi].producer + 1]++;
            }
        }
    }
    if (!rc) {
        for (size_t k = 0; k < nn; k++) cstart[k + 1] += cstart[k];
        int *fill = ready; /* borrowed as the fill position per producer until the sort starts */
        for (size_t k = 0; k < nn; k++) fill[k] = cstart[k];
        for (size_t k = 0; k < nn; k++)
            for (size_t i = 0; i < gp->node[k]->n_input; i++) {
                int vi = inidx[k][i];
                if (vi >= 0 && g->vals[vi].producer >= 0) cons[fill[g->vals[vi].producer]++] = (int)k;
            }
        /* Nodes are taken in file order while they are ready, so a sorted file keeps its order;
         * a node that becomes ready behind that cursor is queued and taken next. */
        int norder = 0, head = 0, tail = 0;
        for (size_t cur = 0; cur < nn; cur++) {
            if (indeg[cur]) continue; /* not ready yet: taken from the queue later */
            indeg[cur] = -1;
            ready[tail++] = (int)cur;
            while (head < tail) {
                int k = ready[head++];
                order[norder++] = k;
                for (int e = cstart[k]; e < cstart[k + 1]; e++) {
                    int j = cons[e];
                    if (--indeg[j] == 0 && (size_t)j < cur) {
                        indeg[j] = -1;
                        ready[tail++] = j;
                    }
                }
            }
        }
        if (norder < (int)nn) rc = vt__err(VT_ECORRUPT, "the graph has a cycle");
    }
    if (inidx)
        for (size_t k = 0; k < nn; k++) free(inidx[k]);
    free(inidx);
    free(indeg);
    free(cstart);
    free(cons);
    free(ready);
    if (rc) {
        free(order);
        return rc;
    }
    for (int r = 0; r < (int)nn && !rc; r++) {
        const Onnx__NodeProto *np = gp->node[order[r]];
        nn_node *n = &g->nodes[g->nnodes++];
        n->op = dupstr(np->op_type);
        n->name = dupstr(np->name && *np->name ? np->name : np->op_type);
        n->nin = (int)np->n_input;
        n->nout = (int)np->n_output;
        n->in = malloc((np->n_input + 1) * sizeof(int));
        n->out = malloc((np->n_output + 1) * sizeof(int));
        n->attrs = calloc(np->n_attribute + 1, sizeof(nn_attr));
        if (!n->op || !n->name || !n->in || !n->out || !n->attrs) {
            rc = vt__err(VT_ENOMEM, "out of memory");
            break;
        }
        for (size_t i = 0; i < np->n_input; i++)
            n->in[i] = np->input[i] && *np->input[i] ? vt__nn_find_value(g, np->input[i]) : -1;
        for (size_t o = 0; o < np->n_output; o++) {
            n->out[o] = np->output[o] && *np->output[o] ? vt__nn_find_value(g, np->output[o]) : -1;
            if (n->out[o] >= 0) g->vals[n->out[o]].producer = r;
        }
        for (size_t a = 0; a < np->n_attribute && !rc; a++) {
            if (!np->attribute[a] || !np->attribute[a]->name) {
                rc = vt__err(VT_ECORRUPT, "node '%s': attribute without a name", n->name);
                break;
            }
            rc = copy_attr(g, n->name, np->attribute[a], &n->attrs[a]);
            n->nattr++;
        }
    }
    free(order);
    return rc;
}

/* ---------------------------------------------------------------- wire-format split
 * The initializers are most of a model file. Rather than let protobuf-c copy the whole ModelProto
 * (file + copy = twice the weights in memory), the file is split: the GraphProto is re-emitted
 * without its initializer fields (small, unpacked normally), and each initializer is unpacked on
 * its own, its bytes taken over, and the file pages it came from dropped when the buffer is a
 * private file mapping. Memory then peaks near one copy of the weights. */

typedef struct {
    const uint8_t *p;
    size_t len;
} span;

static int rd_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    uint64_t r = 0;
    for (int sh = 0; sh < 64; sh += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Reads one field at *p: its number, wire type and (for length-delimited fields) payload span;
 * *p moves past the field. Returns -1 on malformed input. */
static int rd_field(const uint8_t **p, const uint8_t *end, uint64_t *field, int *wt, span *payload) {
    uint64_t tag, n;
    if (rd_varint(p, end, &tag)) return -1;
    *field = tag >> 3;
    *wt = (int)(tag & 7);
    switch (*wt) {
    case 0: return rd_varint(p, end, &n);
    case 1: if ((size_t)(end - *p) < 8) return -1; *p += 8; return 0;
    case 5: if ((size_t)(end - *p) < 4) return -1; *p += 4; return 0;
    case 2:
        if (rd_varint(p, end, &n) || n > (uint64_t)(end - *p)) return -1;
        payload->p = *p;
        payload->len = (size_t)n;
        *p += n;
        return 0;
    default: return -1;
    }
}

static size_t put_varint(uint8_t *o, uint64_t v) {
    size_t k = 0;
    do {
        o[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return k;
}

/* Contract: writes into *out (malloc'd) the ModelProto buf with every graph's initializer fields
 * removed, and lists those fields' payloads in *inits (malloc'd). Returns 0, or -1 when buf is not
 * well-formed protobuf wire data (the caller then reports corruption). */
static int split_model(const uint8_t *buf, size_t len, uint8_t **out, size_t *olen, span **inits, size_t *ninit) {
    *out = NULL;
    *inits = NULL;
    *ninit = 0;
    uint8_t *o = malloc(len + 16);
    size_t cap = 64, ni = 0, ol = 0;
    span *in = malloc(cap * sizeof *in);
    if (!o || !in) goto fail;
    const uint8_t *p = buf, *end = buf + len;
    while (p < end) {
        const uint8_t *start = p;
        uint64_t field;
        int wt;
        span pl = {NULL, 0};
        if (rd_field(&p, end, &field, &wt, &pl)) goto fail;
        if (field != 7 || wt != 2) { /* not the graph: copy verbatim */
            memcpy(o + ol, start, (size_t)(p - start));
            ol += (size_t)(p - start);
            continue;
        }
        /* the graph: copy its fields except initializers (field 5) into a scratch area at the
         * end of o, then emit tag, new length, fields */
        uint8_t *g = malloc(pl.len + 1);
        size_t gl = 0;
        if (!g) goto fail;
        const uint8_t *q = pl.p, *qend = pl.p + pl.len;
        while (q < qend) {
            const uint8_t *fs = q;
            uint64_t f2;
            int w2;
            span p2 = {NULL, 0};
            if (rd_field(&q, qend, &f2, &w2, &p2)) {
                free(g);
                goto fail;
            }
            if (f2 == 5 && w2 == 2) {
                if (ni == cap) {
                    span *nn = realloc(in, (cap *= 2) * sizeof *in);
                    if (!nn) {
                        free(g);
                        goto fail;
                    }
                    in = nn;
                }
                in[ni++] = p2;
            } else {
                memcpy(g + gl, fs, (size_t)(q - fs));
                gl += (size_t)(q - fs);
            }
        }
        ol += put_varint(o + ol, (7 << 3) | 2);
        ol += put_varint(o + ol, gl);
        memcpy(o + ol, g, gl);
        ol += gl;
        free(g);
    }
    *out = o;
    *olen = ol;
    *inits = in;
    *ninit = ni;
    return 0;
fail:
    free(o);
    free(in);
    return -1;
}

/* Contract: converts an unpacked ModelProto into a graph. Takes ownership of nothing; the caller
 * frees `mp`. */
static int from_proto(const Onnx__ModelProto *mp, const span *inits, size_t ninit, int drop_pages, nn_graph *g) {
    g->opset = -1;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *os = mp->opset_import[i];
        if (!os) continue;
        if (!os->domain || !*os->domain || !strcmp(os->domain, "ai.onnx")) g->opset = (int)os->version;
    }
    if (g->opset < 0) g->opset = 1;
    if (g->opset < 1 || g->opset > 18)
        return vt__err(VT_EUNSUPPORTED, "the model uses ONNX opset %d; supported are opsets up to 18 "
                                        "(11 to 17 are the tested ones)", g->opset);
    g->producer = dupstr(mp->producer_name);
    if (!mp->graph) return vt__err(VT_ECORRUPT, "the model has no graph");
    const Onnx__GraphProto *gp = mp->graph;
    if (gp->n_sparse_initializer) return vt__err(VT_EUNSUPPORTED, "sparse initializers are not supported");
    g->nmeta = 0;
    g->meta_keys = calloc(mp->n_metadata_props + 1, sizeof(char *));
    g->meta_vals = calloc(mp->n_metadata_props + 1, sizeof(char *));
    if (!g->meta_keys || !g->meta_vals) return vt__err(VT_ENOMEM, "out of memory");
    for (size_t i = 0; i < mp->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *e = mp->metadata_props[i];
        if (!e || !e->key) continue;
        g->meta_keys[g->nmeta] = dupstr(e->key);
        g->meta_vals[g->nmeta] = dupstr(e->value);
        g->nmeta++;
    }
    for (size_t i = 0; i < ninit; i++) {
        Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, inits[i].len, inits[i].p);
        if (!t) return vt__err(VT_ECORRUPT, "initializer %zu is not a valid tensor", i);
        int rc = 0;
        if (!t->name || !*t->name) rc = vt__err(VT_ECORRUPT, "initializer %zu has no name", i);
        else if (vt__nn_find_value(g, t->name) >= 0) rc = vt__err(VT_ECORRUPT, "initializer '%s' is defined twice", t->name);
        int vi = rc ? -1 : add_value(g, t->name);
        if (!rc && vi < 0) rc = vt__err(VT_ENOMEM, "out of memory");
        if (!rc) {
            nn_value *v = &g->vals[vi];
            rc = vt__nn_tensor_from_proto(t, t->name, &v->dtype, &v->rank, v->dims, &v->data, &v->nelem, 1);
            if (!rc) g->nparams += (int64_t)v->nelem;
        }
        onnx__tensor_proto__free_unpacked(t, NULL);
        if (rc) return rc;
        if (drop_pages) {
            /* the file pages wholly inside this tensor's bytes are not needed any more */
            uintptr_t a = ((uintptr_t)inits[i].p + 4095) & ~(uintptr_t)4095;
            uintptr_t e = ((uintptr_t)inits[i].p + inits[i].len) & ~(uintptr_t)4095;
            if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
        }
    }
    g->inputs = malloc((gp->n_input + 1) * sizeof(int));
    g->outputs = malloc((gp->n_output + 1) * sizeof(int));
    if (!g->inputs || !g->outputs) return vt__err(VT_ENOMEM, "out of memory");
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi || !vi->name || !*vi->name) return vt__err(VT_ECORRUPT, "graph input %zu has no name", i);
        int x = vt__nn_find_value(g, vi->name);
        if (x >= 0 && g->vals[x].data) continue; /* an initializer listed as input (IR < 4) */
        if (x >= 0) return vt__err(VT_ECORRUPT, "graph input '%s' is listed twice", vi->name);
        x = add_value(g, vi->name);
        if (x < 0) return vt__err(VT_ENOMEM, "out of memory");
        g->vals[x].is_input = 1;
        int rc = read_value_info(&g->vals[x], vi);
        if (rc) return rc;
        g->inputs[g->ninputs++] = x;
    }
    int rc = build_nodes(g, gp);
    if (rc) return rc;
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        if (!vi || !vi->name) return vt__err(VT_ECORRUPT, "graph output %zu has no name", i);
        int x = vt__nn_find_value(g, vi->name);
        if (x < 0) return vt__err(VT_ECORRUPT, "graph output '%s' is never produced", vi->name);
        g->vals[x].is_output = 1;
        if (g->vals[x].rank < 0) {
            int r2 = read_value_info(&g->vals[x], vi);
            if (r2) return r2;
        }
        g->outputs[g->noutputs++] = x;
    }
    if (!g->noutputs) return vt__err(VT_ECORRUPT, "the graph has no outputs");
    return 0;
}

/* Contract: parses an ONNX model from buf, calling release(rctx) (may be NULL) when buf is no longer
 * needed. A non-NULL release also means buf is a private read-only file mapping whose pages may
 * be dropped as initializers are consumed. Any malformed or truncated input gives VT_ECORRUPT (or
 * VT_EEMPTY / VT_EUNSUPPORTED) with a message prefixed by `name`; never crashes. */
int vt__nn_graph_parse(const void *buf, size_t len, const char *name, void (*release)(void *), void *rctx,
                       nn_graph **out) {
    *out = NULL;
    if (!name) name = "model";
    if (len == 0) {
        if (release) release(rctx);
        return vt__err(VT_EEMPTY, "%s: empty file", name);
    }
    uint8_t *stripped;
    size_t slen, ninit;
    span *inits;
    if (split_model(buf, len, &stripped, &slen, &inits, &ninit)) {
        if (release) release(rctx);
        return vt__err(VT_ECORRUPT, "%s: not a valid ONNX model (protobuf decoding failed: truncated or corrupt)", name);
    }
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, slen, stripped);
    free(stripped);
    nn_graph *g = NULL;
    int rc;
    if (!mp) rc = vt__err(VT_ECORRUPT, "not a valid ONNX model (protobuf decoding failed: truncated or corrupt)");
    else if (!(g = calloc(1, sizeof *g))) rc = vt__err(VT_ENOMEM, "out of memory");
    else rc = from_proto(mp, inits, ninit, release != NULL, g);
    free(inits);
    /* the serialized bytes are no longer needed */
    if (release) release(rctx);
    if (mp) onnx__model_proto__free_unpacked(mp, NULL);
    if (rc && !g) return vt__err_prefix(rc, "%s", name);
    if (!rc) rc = vt__nn_check_supported(g);
    if (rc) {
        vt__nn_graph_free(g);
        return vt__err_prefix(rc, "%s", name);
    }
    *out = g;
    return 0;
}
