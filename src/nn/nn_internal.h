/* nn_internal.h: internal types of the CNN engine: the ONNX graph, execution plans and kernels. */
#ifndef VT_NN_INTERNAL_H
#define VT_NN_INTERNAL_H

#include "core/internal.h"
#include <oneapi/dnnl/dnnl.h>

#define NN_MAXR 8 /* highest tensor rank handled */

/* ONNX element types we handle (TensorProto.DataType codes). Integers of every width are held
 * as int64 internally; only float and int64 tensors exist inside a plan. */
enum { NN_FLOAT = 1, NN_UINT8 = 2, NN_INT8 = 3, NN_INT32 = 6, NN_INT64 = 7, NN_BOOL = 9, NN_DOUBLE = 11 };

typedef enum { NA_NONE = 0, NA_FLOAT, NA_INT, NA_STRING, NA_TENSOR, NA_FLOATS, NA_INTS, NA_OTHER } nn_attr_kind;

/* One node attribute, copied out of the protobuf message. */
typedef struct {
    char *name;
    nn_attr_kind kind;
    float f;
    int64_t i;
    char *s;          /* NA_STRING */
    int n;            /* count for NA_FLOATS / NA_INTS */
    float *floats;
    int64_t *ints;
    int tensor;       /* NA_TENSOR: index of a constant value in the graph */
} nn_attr;

/* A named tensor of the graph: a graph input, an initializer, or a node output. */
typedef struct {
    char *name;
    int dtype;                /* NN_FLOAT or NN_INT64 for data we hold; declared type otherwise */
    int rank;                 /* -1: unknown */
    int64_t dims[NN_MAXR];    /* -1 for a symbolic dimension */
    void *data;               /* initializer / constant data (float or int64), else NULL */
    size_t nelem;
    int is_input, is_output;  /* graph input (not an initializer) / graph output */
    int producer;             /* node index or -1 */
} nn_value;

typedef struct {
    char *op;
    char *name;
    int nin, nout;
    int *in;  /* value indices, -1 for an omitted optional input */
    int *out;
    int nattr;
    nn_attr *attrs;
} nn_node;

/* A loaded ONNX graph, nodes in topological order. */
typedef struct {
    nn_value *vals;
    int nvals, capvals;
    nn_node *nodes;
    int nnodes;
    int *inputs, ninputs;   /* graph inputs that are not initializers */
    int *outputs, noutputs;
    int opset;
    int nmeta;
    char **meta_keys, **meta_vals;
    char *producer;
    int64_t nparams;        /* elements over all initializers */
    int release_weights;    /* plans may free initializers they have copied (convolution weights) */
    int weights_released;   /* some were freed: a new plan needs the graph re-read */
    int *vindex, vindexcap; /* hash of value names: value index + 1 per slot, 0 empty (onnx.c) */
} nn_graph;

/* Parses an ONNX ModelProto from memory. `name` is used in messages. */
int vt__nn_graph_parse(const void *buf, size_t len, const char *name, void (*release)(void *), void *rctx,
                       nn_graph **out);
void vt__nn_graph_free(nn_graph *g);
int vt__nn_find_value(const nn_graph *g, const char *name);
const nn_attr *vt__nn_attr(const nn_node *n, const char *name);
int64_t vt__nn_attr_i(const nn_node *n, const char *name, int64_t dflt);
float vt__nn_attr_f(const nn_node *n, const char *name, float dflt);
/* Converts a TensorProto into a float or int64 array; *dtype receives NN_FLOAT or NN_INT64. With
 * steal, float/int64 raw_data is taken out of the (then modified) message instead of copied. */
struct Onnx__TensorProto;
int vt__nn_tensor_from_proto(const struct Onnx__TensorProto *t, const char *what, int *dtype, int *rank,
                             int64_t dims[NN_MAXR], void **data, size_t *nelem, int steal);
/* Checks at load time that every operator and attribute value is one the engine runs. */
int vt__nn_check_supported(const nn_graph *g);

/* ---- execution plans */

/* A tensor inside a plan. Constants hold plain row-major data; runtime float tensors live in the
 * plan's arena (or alias another tensor's buffer) in the oneDNN layout `md`. */
typedef struct {
    int is_const;
    int dtype;
    int rank;
    int64_t dims[NN_MAXR];
    size_t nelem;
    void *cdata;             /* constant data (owned when own_cdata) */
    int own_cdata;
    dnnl_memory_desc_t md;   /* float tensors: layout */
    int alias;               /* runtime: index of the tensor whose buffer this one uses, or -1 */
    size_t off;              /* arena offset (roots only) */
    size_t bytes;
    int first, last;         /* step range where the buffer is live */
    dnnl_memory_t mem;
    int plain;               /* index of a plain-layout copy made by a reorder, or -1 */
    int pinned;              /* requested output: never reused */
} nn_tensor;

typedef struct nn_plan nn_plan;
typedef void (*nn_cfn)(nn_plan *p, void *ctx);

typedef struct {
    int arg;    /* DNNL_ARG_* */
    int t;      /* plan tensor */
} nn_arg;

typedef struct {
    dnnl_primitive_t prim;  /* oneDNN step, or NULL */
    nn_arg args[72];
    int nargs;
    dnnl_exec_arg_t *exec;
    nn_cfn fn;              /* C step */
    void *ctx;
    int copy_src, copy_dst; /* before running: copy tensor copy_src into copy_dst (-1: none) */
    dnnl_primitive_t copy_prim;
    int ts[8];              /* tensors a C step touches (for liveness) */
    int nthr;               /* OpenMP threads the step was created for and runs with */
    int nts;
} nn_step;

struct nn_plan {
    nn_graph *g;
    nn_tensor *t;
    int nt, capt;
    int *val2t;             /* graph value -> plan tensor (-1: not reached) */
    nn_step *steps;
    int nsteps, capsteps;
    uint8_t *arena;
    size_t arena_bytes;
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    int value_dependent;    /* folded the values of graph inputs: do not reuse for other data */
    int threads;
    int cur_nthr;           /* threads for the primitive being created */
    int passive;            /* OpenMP threads sleep between parallel regions (see vt__nn_omp_passive) */
    int bf16;
    /* the key the plan was made for */
    int nin;
    int64_t in_dims[8][NN_MAXR];
    int in_rank[8];
    char *keep;             /* name of the requested tensor (may be NULL) */
    int64_t wbytes;         /* bytes of weights the plan holds */
};

/* Inputs for building/running a plan. */
typedef struct {
    int value;              /* graph value index */
    int dtype;
    int rank;
    int64_t dims[NN_MAXR];
    const void *data;
} nn_feed;

/* 1 if libgomp's threads sleep between parallel regions (OMP_WAIT_POLICY=passive, any case, or
 * GOMP_SPINCOUNT=0), else 0. A plan puts convolutions under 4 M multiply-adds on one thread
 * only then. */
int vt__nn_omp_passive(void);
int vt__nn_plan_build(nn_graph *g, dnnl_engine_t eng, int threads, int bf16, int nfeed, const nn_feed *feeds,
                      int nkeep, const int *keep, nn_plan **out);
int vt__nn_plan_run(nn_plan *p, int nfeed, const nn_feed *feeds);
void vt__nn_plan_free(nn_plan *p);
/* Copies plan tensor t (value index `value`) to a plain malloc'd array. */
int vt__nn_plan_fetch(nn_plan *p, int value, int *dtype, int *rank, int64_t dims[NN_MAXR], void **data);

/* ---- small kernels (ops_ref.c) on plain row-major data */
size_t vt__nn_numel(int rank, const int64_t *dims);
/* Numpy broadcasting of two shapes; returns 0 or VT_EINVAL. */
int vt__nn_broadcast(int ra, const int64_t *a, int rb, const int64_t *b, int *rr, int64_t *r);
/* out = a OP b with broadcasting; op is '+', '-', '*', '/'. Float or int64 by dtype. */
void vt__nn_binary_ref(int dtype, char op, const void *a, int ra, const int64_t *da, const void *b, int rb,
                       const int64_t *db, void *out, int ro, const int64_t *dout);
void vt__nn_transpose_ref(size_t esize, const void *in, int rank, const int64_t *dims, const int64_t *perm,
                          void *out);
void vt__nn_gather_ref(size_t esize, const void *data, int rank, const int64_t *dims, int axis,
                       const int64_t *idx, size_t nidx, void *out);
void vt__nn_softmax_ref(const float *in, float *out, size_t outer, size_t n, size_t inner);
void vt__nn_lpnorm_ref(const float *in, float *out, size_t outer, size_t n, size_t inner, int p);
void vt__nn_reduce_mean_ref(const float *in, int rank, const int64_t *dims, const int *reduce, float *out);
/* Generic strided slice over plain data. */
void vt__nn_slice_ref(size_t esize, const void *in, int rank, const int64_t *dims, const int64_t *start,
                      const int64_t *step, const int64_t *odims, void *out);

/* ---- Winograd F(4x4, 3x3) convolutions (wino.c, AVX2 + FMA only: callers check the CPU) */
/* 1 when the CPU has AVX2 and FMA (wino.c and eltwise.c need both). */
int vt__nn_avx2_fma(void);
typedef struct nn_wino nn_wino;
/* 1 when this CPU runs wino.c (AVX2 + FMA) and the environment's VITRINE_WINOGRAD is not "0"
 * (read on every call: plans and training set-ups check it when they are built). */
int vt__wino_enabled(void);
enum { NN_WPO_SUM = 1, NN_WPO_RELU, NN_WPO_CLIP, NN_WPO_LINEAR };
/* One post-op: SUM adds the destination's old value; RELU x > 0 ? x : a x; CLIP to [a, b];
 * LINEAR a x + b. */
typedef struct {
    int kind;
    float a, b;
} nn_wpo;
nn_wino *vt__wino_new(int ic, int oc, int ih, int iw, int oh, int ow, int pt, int pl);
void vt__wino_set_weights(nn_wino *k, const float *w, const float *bias, int transposed, int keep);
void vt__wino_free(nn_wino *k);
size_t vt__wino_weight_bytes(const nn_wino *k);
size_t vt__wino_scratch(const nn_wino *k, int n);
void vt__wino_run(const nn_wino *k, int n, const float *src, float *dst, float *scratch, int npo, const nn_wpo *po);
/* x * sigmoid(x) in place over n floats (eltwise.c; AVX2 + FMA: see vt__nn_avx2_fma). */
void vt__silu_inplace(float *x, size_t n);
int vt__wino_bwd_weights(nn_wino *k, int n, const float *src, const float *dy, float *dw, float *db, float *scratch);

#endif
