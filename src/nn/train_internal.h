/* train_internal.h: internal types of CNN training: a layer graph with forward and backward passes
 * on oneDNN, losses, optimisers, schedules and the ONNX export. */
#ifndef VT_TRAIN_INTERNAL_H
#define VT_TRAIN_INTERNAL_H

#include "core/internal.h"
#include <oneapi/dnnl/dnnl.h>

/* Layer kinds. The input is float NCHW (NHWC when net->plain); inner activations are in the layout
 * oneDNN picks for convolution outputs (nChw8c / nChw16c blocked, or NHWC), pooled vectors plain. */
typedef enum {
    TN_INPUT = 0,
    TN_CONV,    /* convolution (groups: grouped / depthwise), optional bias (oneDNN) */
    TN_BN,      /* batch normalisation, running statistics kept here (oneDNN) */
    TN_RELU,    /* ReLU (C) */
    TN_MAXPOOL, /* max pooling (oneDNN) */
    TN_AVGPOOL, /* average pooling, padding excluded from the count (oneDNN) */
    TN_GAP,     /* global average pooling to C x 1 x 1 (C) */
    TN_ADD,     /* residual add of two inputs of the same shape (C) */
    TN_FC,      /* fully connected on a C x 1 x 1 input (oneDNN sgemm) */
    TN_DROPOUT, /* inverted dropout, identity at evaluation (C) */
} tn_kind;

/* A trainable tensor with its gradient and optimiser state (m, v: AdamW moments or SGD momentum). */
typedef struct {
    float *w, *g, *m, *v;
    size_t n;
    int decay; /* weight decay applies (not to biases and BN parameters) */
} tn_param;

typedef struct {
    tn_kind kind;
    int in[2], nin;
    int c, h, w;                    /* output shape of one image */
    int k, stride, pad, groups, bias; /* conv / pool */
    float p;                        /* dropout probability */
    float eps, momentum;            /* BN */
    tn_param prm[2];
    int nprm;
    float *run_mean, *run_var;      /* BN running statistics (variance unbiased, as PyTorch) */
    int zero_gamma;                 /* BN: initialise the scale to 0 (last BN of a residual branch) */
    int fuse_relu;                  /* BN: a ReLU is applied to the output (oneDNN fuse_norm_relu) */
    /* runtime, for the current batch size */
    dnnl_memory_desc_t md;          /* layout of y and dy (blocked, nhwc or plain) */
    size_t el;                      /* floats in y / dy (incl. any channel padding) */
    float *y, *dy;
    float *mean, *var;              /* BN batch statistics */
    float *mask;                    /* dropout: 0 or 1/(1-p) per element */
    int written;                    /* dy already holds a gradient in this backward pass */
    dnnl_primitive_t fwd, fwd_inf, bwd_d, bwd_w;
    dnnl_memory_t m_y, m_dy, m_w, m_b, m_dw, m_db, m_mean, m_var, m_rmean, m_rvar, m_ws;
    /* conv: weights in the layouts the primitives chose (NULL when plain), with reorders */
    dnnl_memory_t m_wf, m_wb, m_dwi;
    dnnl_primitive_t r_wf, r_wb, r_dw;
    /* conv: Winograd kernels (wino.c) for the forward pass and the data gradient, or NULL */
    struct nn_wino *wino_f, *wino_b;
} tn_node;

typedef struct tnet {
    tn_node *nodes;
    int n, cap;
    int batch;                      /* batch size the runtime is built for (0: none) */
    int input_grad;                 /* compute the gradient of the input too (gradient checks) */
    int plain;                      /* nonzero: keep every activation NHWC (default: let oneDNN pick
                                       blocked layouts for convolution outputs with C % 8 == 0) */
    int block8;                     /* nonzero: convolution outputs with C % 8 == 0 in nChw8c, the
                                       layout wino.c reads, whatever oneDNN would prefer on this CPU
                                       (on AVX-512 it picks nChw16c, which keeps wino.c out) */
    int threads;                    /* OpenMP threads for oneDNN (0: leave as is) */
    uint64_t drop_seed;             /* dropout masks are drawn from (drop_seed, node) */
    float *tmp;                     /* scratch for accumulating gradients */
    size_t tmpcap;
    float *wscratch;                /* scratch of the Winograd kernels */
    size_t wscratch_n;
    void *scratch;                  /* oneDNN scratchpad shared by the net's primitives */
    size_t scratch_need, scratch_bytes;
    dnnl_memory_t m_scratch;
    dnnl_engine_t eng;
    dnnl_stream_t stream;
} tnet;

/* ---- graph construction (train_layers.c). Each returns the new node's index or a negative
 * VT_E* code. Node 0 is the input (c x h x w). */
int vt__tnet_create(int c, int h, int w, tnet **out);
void vt__tnet_free(tnet *net);
int vt__tnet_conv(tnet *net, int in, int oc, int k, int stride, int pad, int groups, int bias);
int vt__tnet_bn(tnet *net, int in);
int vt__tnet_relu(tnet *net, int in);
/* Batch normalisation followed by ReLU in one node (one pass forward, one backward). */
int vt__tnet_bn_relu(tnet *net, int in);
int vt__tnet_pool(tnet *net, int in, int max, int k, int stride, int pad);
int vt__tnet_gap(tnet *net, int in);
int vt__tnet_add(tnet *net, int a, int b);
int vt__tnet_fc(tnet *net, int in, int out);
int vt__tnet_dropout(tnet *net, int in, float p);
/* Kaiming-normal initialisation of every conv / FC weight (fan-in, gain sqrt 2), zero biases,
 * BN scale 1 (0 where zero_gamma) and shift 0, running mean 0 and variance 1; deterministic in seed. */
void vt__tnet_init(tnet *net, uint64_t seed);
/* Builds buffers and oneDNN primitives for batch size `batch` (kept while it does not change).
 * May switch the net to plain NHWC (net->plain = 1, input NHWC too) when a convolution has only
 * oneDNN's reference kernel in blocked layouts. */
int vt__tnet_setup(tnet *net, int batch);
/* Forward pass of x (batch x c x h x w floats, NCHW; NHWC when net->plain). training: BN uses batch statistics and
 * updates the running ones, dropout drops; otherwise BN uses the running statistics. */
int vt__tnet_forward(tnet *net, const float *x, int training);
/* Backward pass. The caller first fills dy of every output node and calls
 * vt__tnet_mark_grad(net, node) for each; gradients flow to all parameters (overwriting their g). */
void vt__tnet_zero_marks(tnet *net);
void vt__tnet_mark_grad(tnet *net, int node);
int vt__tnet_backward(tnet *net);
/* Number of trainable values. */
size_t vt__tnet_param_count(const tnet *net);
/* Sets FTZ/DAZ on the calling thread and on every OpenMP thread (denormals cost 100x). */
void vt__train_set_ftz(void);

/* ---- losses and optimisers (train_opt.c) */

/* Softmax cross-entropy with label smoothing over a batch of logits [n x k]. labels[i] < 0 are
 * ignored. Writes dlogits (the gradient of the mean loss over counted rows, times `weight`),
 * returns the mean loss; *correct gets the number of counted rows whose argmax is the label,
 * *counted the number of counted rows. */
double vt__softmax_xent(const float *logits, const int *labels, int n, int k, float smoothing, float weight,
                        float *dlogits, int *correct, int *counted);

typedef enum { TOPT_SGD = 0, TOPT_ADAMW = 1 } topt_kind;
typedef enum { TSCHED_COSINE = 0, TSCHED_ONECYCLE = 1, TSCHED_CONST = 2 } tsched_kind;

typedef struct {
    topt_kind kind;
    float lr, momentum, wd, beta1, beta2, eps;
    tsched_kind sched;
    long warmup_steps, total_steps;
} topt;

/* Learning rate at step `step` (0-based) of the schedule: linear warm-up then cosine to 0
 * (TSCHED_COSINE); one-cycle: cosine ramp from lr/25 to lr over 30% of the steps, then cosine
 * down to lr/25e4; TSCHED_CONST: lr after warm-up. */
float vt__sched_lr(const topt *o, long step);
/* One optimiser step on every parameter of net with learning rate lr (step counts from 1 for
 * Adam's bias correction). Weight decay is decoupled for AdamW, L2-in-gradient for SGD. */
void vt__opt_step(tnet *net, const topt *o, float lr, long step);

/* Standard normal draw (Box-Muller). */
double vt__rng_normal(vt_rng *r);

/* ---- ONNX export (train_export.c) */

typedef struct {
    const char *name;   /* output name of the head's logits */
    int node;           /* FC node */
} tx_head;

/* How "embedding" is formed: w_emb x LpNorm(learned embedding) and w_head[h] x Softmax(head h)
 * concatenated and L2-normalised; parts with weight 0 are left out. mixed == 0: the learned
 * embedding alone. */
typedef struct {
    int mixed;
    float w_emb;
    float w_head[VT_TRAIN_MAX_HEADS];
} tx_mix;

/* Parses "embedding:W,HEAD:W,..." (NULL or "": not mixed) against the head names. */
int vt__train_parse_mix(const char *spec, int nheads, char *const *heads, tx_mix *mix);

/* Writes net as an ONNX model: input "input" [N,3,S,S] (NCHW), output "embedding" =
 * LpNormalization(emb_node) (l2 != 0) or emb_node's output itself (l2 == 0, for engines without
 * LpNormalization), or the mix (mix->mixed; needs l2), one logits output per head, BN kept as
 * BatchNormalization nodes, and the given metadata_props. */
int vt__train_export_onnx(const tnet *net, int emb_node, int l2, const tx_mix *mix, int nheads, const tx_head *heads,
                          int nmeta, const char *const *meta_keys, const char *const *meta_vals, const char *path);


/* ---- training data (train_data.c) */

#define TD_MAX_HEADS 8

/* The catalog as the trainer sees it: items with an image, their label ids per head, and the
 * decoded photos in one cache. */
typedef struct {
    int n;
    char **ids, **paths;
    int nheads;
    char *head[TD_MAX_HEADS];
    int *labels;                 /* n x nheads class ids, -1: no value */
    int nclasses[TD_MAX_HEADS];
    char **vocab[TD_MAX_HEADS];  /* class names; the last is "other" when values were folded */
    uint8_t *cache;              /* n x cs x cs x 3 RGB squares */
    int cs;
} tdata;

/* Reads the feed: items with an image file (first `limit` when > 0), the label columns (comma
 * list), vocabularies (values seen fewer than min_count times fold into "other", classes ordered
 * by count then name). */
int vt__tdata_load(tdata *d, const char *meta, const char *images_dir, const char *labels, int min_count, int limit);
/* Decodes every photo once and fits it into a cs x cs square (fit mode), after resizing it to the
 * width/height ratio src_aspect when > 0; items whose photo cannot be decoded are dropped with a
 * warning. */
int vt__tdata_cache(tdata *d, int cs, vt_fit_mode fit, double src_aspect, int threads, int progress);
void vt__tdata_free(tdata *d);

#endif
