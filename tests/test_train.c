/* test_train.c: gradient checks of every training layer and of the loss against central finite
 * differences, and the optimiser / schedule arithmetic. */
#include "testutil.h"
#include "nn/nn_internal.h"
#include "nn/train_internal.h"
#include <math.h>
#include <string.h>

typedef int (*build_fn)(tnet *net);

static int g_plain; /* build nets with every activation NHWC (tnet.plain) */
static int g_wino;  /* convolutions of the last gradcheck net that run as Winograd */
static int g_wino_want; /* convolutions of the last gradcheck net that the rule of wino.c admits */
static int g_block8; /* gradcheck nets keep C % 8 == 0 activations in nChw8c (net->block8) */
static int g_no_input_grad; /* gradcheck only the parameters (the input's gradient is not computed) */

/* Fills x with well-separated values of random sign (no ReLU kinks or max-pool ties within eps). */
static void fill_input(float *x, size_t n, vt_rng *r) {
    for (size_t i = 0; i < n; i++) {
        double v = 0.05 + vt_rng_uniform(r) * 0.95;
        x[i] = (float)((vt_rng_uniform(r) < 0.5 ? -v : v) + 0.013 * (double)(i % 7));
    }
    /* distinct values: a random permutation of a spread grid keeps pooling ties away */
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)vt_rng_below(r, i + 1);
        float t = x[i];
        x[i] = x[j], x[j] = t;
    }
}

/* sum(y * R) over the last node's output, in double. */
static double probe_loss(tnet *net, const float *x, const float *R) {
    assert_int_equal(vt__tnet_forward(net, x, 1), 0);
    const tn_node *o = &net->nodes[net->n - 1];
    size_t el = (size_t)net->batch * o->c * o->h * o->w;
    double s = 0;
    for (size_t i = 0; i < el; i++) s += (double)o->y[i] * (double)R[i];
    return s;
}

static int close_enough(double a, double n, double abs_tol, double rel_tol) {
    double d = fabs(a - n), m = fmax(fabs(a), fabs(n));
    return d <= abs_tol + rel_tol * m;
}

/* Central difference of the probe loss in *v at steps eps and eps/2. When the two disagree the loss
 * is not smooth within eps there (a ReLU or max-pool kink was crossed): *kink is set and the point
 * is not usable; otherwise returns the eps estimate. */
static double numeric(tnet *net, const float *x, const float *R, float *v, double eps, int *kink) {
    float keep = *v;
    double d[2];
    for (int k = 0; k < 2; k++) {
        double e = k ? eps / 2 : eps;
        *v = (float)(keep + e);
        double lp = probe_loss(net, x, R);
        *v = (float)(keep - e);
        double lm = probe_loss(net, x, R);
        d[k] = (lp - lm) / ((double)(float)(keep + e) - (double)(float)(keep - e));
    }
    *v = keep;
    *kink = !close_enough(d[0], d[1], 2e-3, 2e-2);
    return d[0];
}

/* Builds the net, runs forward + backward with dL/dy = R, and compares the gradient of the input
 * and of every parameter with central differences (accumulated in double) of L = sum(y * R).
 * Points where the loss is not smooth within eps are skipped (at most 5%). Returns checked count. */
static int gradcheck(const char *what, int c, int h, int w, int batch, build_fn build, double eps) {
    tnet *net;
    assert_int_equal(vt__tnet_create(c, h, w, &net), 0);
    net->input_grad = !g_no_input_grad;
    net->plain = g_plain;
    net->block8 = g_block8;
    net->threads = 1;
    net->drop_seed = 77;
    assert_true(build(net) > 0);
    vt__tnet_init(net, 5);
    vt_rng r;
    vt_rng_seed(&r, 1234);
    /* random BN parameters so scale/shift gradients are exercised away from the identity */
    for (int i = 0; i < net->n; i++)
        for (int p = 0; p < net->nodes[i].nprm; p++)
            if (net->nodes[i].kind == TN_BN || (net->nodes[i].nprm == 2 && p == 1))
                for (size_t j = 0; j < net->nodes[i].prm[p].n; j++)
                    net->nodes[i].prm[p].w[j] = (float)(0.5 + vt_rng_uniform(&r)) * (p ? 0.3f : 1.0f);
    assert_int_equal(vt__tnet_setup(net, batch), 0);
    if (net->plain && !g_plain) print_message("%s: oneDNN has only reference kernels in blocked layout: NHWC\n", what);
    /* what the net chose for this CPU: convolutions on wino.c, and those whose input layout and
     * shape wino.c admits (3x3 s1 p1, 16-channel multiples in and out, input in nChw8c) */
    g_wino = g_wino_want = 0;
    for (int i = 0; i < net->n; i++) {
        const tn_node *nd = &net->nodes[i];
        g_wino += nd->wino_f != NULL && nd->wino_b != NULL;
        if (nd->kind != TN_CONV || net->plain || nd->k != 3 || nd->stride != 1 || nd->pad != 1 || nd->groups != 1) continue;
        const tn_node *s = &net->nodes[nd->in[0]];
        dnnl_memory_desc_t b8;
        dnnl_dims_t dd = {batch, s->c, s->h, s->w};
        g_wino_want += s->c % 16 == 0 && nd->c % 16 == 0 && vt__wino_enabled() &&
                       dnnl_memory_desc_init_by_tag(&b8, 4, dd, dnnl_f32, dnnl_aBcd8b) == dnnl_success &&
                       dnnl_memory_desc_equal(&b8, &s->md);
    }
    size_t nx = (size_t)batch * c * h * w;
    float *x = malloc(nx * sizeof(float));
    fill_input(x, nx, &r);
    const tn_node *o = &net->nodes[net->n - 1];
    size_t ny = (size_t)batch * o->c * o->h * o->w;
    float *R = malloc(ny * sizeof(float));
    for (size_t i = 0; i < ny; i++) R[i] = (float)(vt_rng_uniform(&r) * 2 - 1);

    assert_int_equal(vt__tnet_forward(net, x, 1), 0);
    vt__tnet_zero_marks(net);
    memcpy(net->nodes[net->n - 1].dy, R, ny * sizeof(float));
    vt__tnet_mark_grad(net, net->n - 1);
    assert_int_equal(vt__tnet_backward(net), 0);
    float *gx = malloc(nx * sizeof(float));
    memcpy(gx, net->nodes[0].dy, nx * sizeof(float));
    assert_true(net->nodes[0].written == net->input_grad);

    int checked = 0, bad = 0, kinks = 0;
    double worst = 0;
    for (size_t i = 0; i < (net->input_grad ? nx : 0); i++) {
        int kink;
        double num = numeric(net, x, R, &x[i], eps, &kink);
        checked++;
        if (kink) {
            kinks++;
            continue;
        }
        if (!close_enough(gx[i], num, 2e-3, 2e-2)) {
            if (bad < 5) print_message("%s: d/dx[%zu] analytic %.6f numeric %.6f\n", what, i, gx[i], num);
            bad++;
        }
        worst = fmax(worst, fabs(gx[i] - num));
    }
    for (int ni = 0; ni < net->n; ni++) {
        tn_node *nd = &net->nodes[ni];
        for (int p = 0; p < nd->nprm; p++) {
            tn_param *pr = &nd->prm[p];
            float *ga = malloc(pr->n * sizeof(float));
            memcpy(ga, pr->g, pr->n * sizeof(float));
            for (size_t j = 0; j < pr->n; j++) {
                int kink;
                double num = numeric(net, x, R, &pr->w[j], eps, &kink);
                checked++;
                if (kink) {
                    kinks++;
                    continue;
                }
                if (!close_enough(ga[j], num, 2e-3, 2e-2)) {
                    if (bad < 5) print_message("%s: node %d param %d [%zu] analytic %.6f numeric %.6f\n", what, ni, p, j, ga[j], num);
                    bad++;
                }
                worst = fmax(worst, fabs(ga[j] - num));
            }
            free(ga);
        }
    }
    print_message("gradcheck %-22s %5d values (%d at kinks skipped), worst |analytic - numeric| %.2e\n", what, checked,
                  kinks, worst);
    assert_int_equal(bad, 0);
    assert_true(kinks * 20 <= checked); /* at most 5% of the points may sit at a kink */
    free(x), free(R), free(gx);
    vt__tnet_free(net);
    return checked;
}

static int b_conv3(tnet *n) { return vt__tnet_conv(n, 0, 4, 3, 1, 1, 1, 1); }
static int b_conv3s2(tnet *n) { return vt__tnet_conv(n, 0, 5, 3, 2, 1, 1, 0); }
static int b_conv1s2(tnet *n) { return vt__tnet_conv(n, 0, 6, 1, 2, 0, 1, 1); }
static int b_dw(tnet *n) { return vt__tnet_conv(n, 0, 4, 3, 1, 1, 4, 0); }
static int b_grouped(tnet *n) { return vt__tnet_conv(n, 0, 6, 3, 2, 1, 2, 1); }
static int b_bn(tnet *n) { return vt__tnet_bn(n, 0); }
static int b_relu(tnet *n) { return vt__tnet_relu(n, 0); }
static int b_bnrelu(tnet *n) { return vt__tnet_bn_relu(n, vt__tnet_conv(n, 0, 8, 3, 1, 1, 1, 0)); }
static int b_max(tnet *n) { return vt__tnet_pool(n, 0, 1, 3, 2, 1); }
static int b_avg(tnet *n) { return vt__tnet_pool(n, 0, 0, 3, 2, 1); }
static int b_avg2(tnet *n) { return vt__tnet_pool(n, 0, 0, 2, 2, 0); }
static int b_gap(tnet *n) { return vt__tnet_gap(n, 0); }
static int b_fc(tnet *n) {
    int g = vt__tnet_gap(n, 0);
    return vt__tnet_fc(n, g, 5);
}
static int b_fc_direct(tnet *n) { return vt__tnet_fc(n, 0, 3); }
static int b_drop(tnet *n) { return vt__tnet_dropout(n, 0, 0.3f); }
/* A residual block: two branches from the same input meet in an Add (gradient accumulation). */
static int b_residual(tnet *n) {
    int a = vt__tnet_conv(n, 0, 4, 3, 1, 1, 1, 0);
    a = vt__tnet_bn(n, a);
    a = vt__tnet_relu(n, a);
    a = vt__tnet_conv(n, a, 4, 3, 1, 1, 1, 0);
    int s = vt__tnet_conv(n, 0, 4, 1, 1, 0, 1, 0);
    return vt__tnet_add(n, a, s);
}
/* The input feeds the Add directly too (identity shortcut). */
static int b_identity(tnet *n) {
    int a = vt__tnet_conv(n, 0, 3, 3, 1, 1, 1, 1);
    return vt__tnet_add(n, a, 0);
}

/* Channel counts that are multiples of 8 (oneDNN may pick blocked layouts for these). */
static int b_blocked_chain(tnet *n) {
    int x = vt__tnet_conv(n, 0, 16, 3, 1, 1, 1, 0);
    x = vt__tnet_bn(n, x);
    x = vt__tnet_relu(n, x);
    x = vt__tnet_pool(n, x, 1, 3, 2, 1);
    x = vt__tnet_pool(n, x, 0, 2, 1, 0);
    x = vt__tnet_gap(n, x);
    return vt__tnet_fc(n, x, 4);
}
/* (no ReLU inside: with 8 channels kinks of intermediate activations fall within eps) */
static int b_blocked_residual(tnet *n) {
    int x = vt__tnet_conv(n, 0, 8, 3, 1, 1, 1, 1);
    int a = vt__tnet_conv(n, x, 8, 3, 1, 1, 1, 0);
    a = vt__tnet_bn(n, a);
    a = vt__tnet_conv(n, a, 8, 3, 1, 1, 8, 0);
    a = vt__tnet_bn(n, a);
    return vt__tnet_add(n, a, x);
}

/* Two 3x3 stride-1 convolutions that run as Winograd F(4x4, 3x3): the first one's data gradient
 * is added to what the residual Add already wrote into its input's gradient. */
static int b_wino(tnet *n) {
    int x = vt__tnet_conv(n, 0, 16, 3, 1, 1, 1, 0);
    int a = vt__tnet_conv(n, x, 16, 3, 1, 1, 1, 1);
    int s = vt__tnet_add(n, a, x);
    return vt__tnet_conv(n, s, 32, 3, 1, 1, 1, 0);
}

static int b_tiny_map(tnet *n) { return vt__tnet_conv(n, vt__tnet_conv(n, 0, 64, 1, 1, 0, 1, 0), 64, 3, 1, 1, 1, 0); }
static int b_first8(tnet *n) { return vt__tnet_conv(n, 0, 8, 3, 2, 1, 1, 0); }
static int b_first16(tnet *n) { return vt__tnet_conv(n, 0, 16, 3, 1, 1, 1, 1); }

static void test_gradcheck_blocked(void **state) {
    (void)state;
    gradcheck("first conv 3->8 s2", 3, 8, 8, 2, b_first8, 5e-3);
    gradcheck("3x3 conv on a 2x2 map", 8, 2, 2, 2, b_tiny_map, 5e-3);
    gradcheck("first conv 3->16", 3, 6, 6, 2, b_first16, 5e-3);
    gradcheck("8-ch conv-bn-pool-fc", 8, 6, 6, 2, b_blocked_chain, 2e-3);
    gradcheck("8-channel residual", 8, 5, 5, 4, b_blocked_residual, 2e-3);
    /* as in a training net, the stem has no data gradient (oneDNN 2.6 has only its reference
     * kernel in blocked layouts for that, which would send the whole net to NHWC) */
    g_no_input_grad = 1;
    /* the layouts oneDNN picks on this CPU decide whether the pair runs on wino.c (nChw8c on AVX2;
     * nChw16c on AVX-512 keeps it on oneDNN): the net must take exactly the path its rule admits */
    gradcheck("Winograd 3x3 pair, layouts of this CPU", 3, 6, 5, 2, b_wino, 5e-2); /* linear: any step is exact */
    print_message("Winograd pair, layouts of this CPU: %d of 2 convolutions on wino.c\n", g_wino);
    assert_int_equal(g_wino, g_wino_want);
    /* nChw8c activations: wino.c's own path, checked on every CPU that runs wino.c */
    g_block8 = 1;
    gradcheck("Winograd 3x3 pair, nChw8c", 3, 6, 5, 2, b_wino, 5e-2);
    g_block8 = 0;
    assert_int_equal(g_wino, g_wino_want);
    assert_int_equal(g_wino, vt__wino_enabled() ? 2 : 0);
    g_no_input_grad = 0;
    g_plain = 1;
    gradcheck("8-ch chain, NHWC", 8, 6, 6, 2, b_blocked_chain, 2e-3);
    gradcheck("8-ch residual, NHWC", 8, 5, 5, 4, b_blocked_residual, 2e-3);
    gradcheck("residual block, NHWC", 3, 5, 5, 2, b_residual, 1e-3);
    g_plain = 0;
}

static void test_gradcheck_conv(void **state) {
    (void)state;
    gradcheck("conv 3x3 s1 bias", 3, 6, 6, 2, b_conv3, 5e-3);
    gradcheck("conv 3x3 s2", 3, 7, 7, 2, b_conv3s2, 5e-3);
    gradcheck("conv 1x1 s2 bias", 4, 6, 6, 2, b_conv1s2, 5e-3);
    gradcheck("conv depthwise 3x3", 4, 6, 6, 2, b_dw, 5e-3);
    gradcheck("conv grouped 3x3 s2", 4, 6, 6, 2, b_grouped, 5e-3);
}

static void test_gradcheck_bn_act_pool(void **state) {
    (void)state;
    gradcheck("batchnorm (training)", 3, 4, 4, 3, b_bn, 2e-3);
    gradcheck("relu", 3, 4, 4, 2, b_relu, 5e-3);
    gradcheck("conv + fused bn-relu", 3, 5, 5, 3, b_bnrelu, 1e-3);
    gradcheck("maxpool 3 s2 p1", 2, 7, 7, 2, b_max, 2e-3);
    gradcheck("avgpool 3 s2 p1", 2, 7, 7, 2, b_avg, 5e-3);
    gradcheck("avgpool 2 s2", 2, 6, 6, 2, b_avg2, 5e-3);
    gradcheck("global avgpool", 3, 5, 5, 2, b_gap, 5e-3);
}

static void test_gradcheck_fc_drop_residual(void **state) {
    (void)state;
    gradcheck("fc after gap", 4, 3, 3, 3, b_fc, 5e-3);
    gradcheck("fc", 6, 1, 1, 4, b_fc_direct, 5e-3);
    gradcheck("dropout 0.3", 3, 4, 4, 2, b_drop, 5e-3);
    gradcheck("residual block", 3, 5, 5, 2, b_residual, 1e-3);
    gradcheck("identity shortcut", 3, 4, 4, 2, b_identity, 5e-3);
}

/* The loss gradient against central differences in double. */
static void test_gradcheck_xent(void **state) {
    (void)state;
    int n = 5, k = 7;
    float z[35], d[35];
    int labels[5] = {0, 3, -1, 6, 2};
    vt_rng r;
    vt_rng_seed(&r, 9);
    for (int i = 0; i < n * k; i++) z[i] = (float)(vt_rng_uniform(&r) * 4 - 2);
    int correct, counted;
    double L = vt__softmax_xent(z, labels, n, k, 0.1f, 1.0f, d, &correct, &counted);
    assert_int_equal(counted, 4);
    assert_true(L > 0);
    for (int j = 0; j < k; j++) assert_true(d[2 * k + j] == 0.0f); /* ignored row */
    for (int i = 0; i < n * k; i++) {
        double eps = 1e-3;
        float keep = z[i];
        z[i] = (float)(keep + eps);
        double lp = vt__softmax_xent(z, labels, n, k, 0.1f, 1.0f, NULL, NULL, NULL);
        z[i] = (float)(keep - eps);
        double lm = vt__softmax_xent(z, labels, n, k, 0.1f, 1.0f, NULL, NULL, NULL);
        z[i] = keep;
        double num = (lp - lm) / ((double)(float)(keep + eps) - (double)(float)(keep - eps));
        assert_true(close_enough(d[i], num, 1e-4, 1e-3));
    }
    /* confident right answers: loss near the smoothing floor, all correct */
    float z2[2 * 3] = {10, 0, 0, 0, 0, 10};
    int l2[2] = {0, 2};
    double L2 = vt__softmax_xent(z2, l2, 2, 3, 0.0f, 1.0f, NULL, &correct, &counted);
    assert_int_equal(correct, 2);
    assert_true(L2 < 1e-3);
}

static void test_schedule(void **state) {
    (void)state;
    topt o = {.kind = TOPT_SGD, .lr = 0.1f, .sched = TSCHED_COSINE, .warmup_steps = 10, .total_steps = 110};
    assert_float_equal(vt__sched_lr(&o, 0), 0.01, 1e-6);
    assert_float_equal(vt__sched_lr(&o, 9), 0.1, 1e-6);
    assert_float_equal(vt__sched_lr(&o, 10), 0.1, 1e-6);
    assert_float_equal(vt__sched_lr(&o, 60), 0.05, 1e-6);
    assert_true(vt__sched_lr(&o, 109) < 0.001);
    o.sched = TSCHED_ONECYCLE;
    assert_float_equal(vt__sched_lr(&o, 0), 0.004, 1e-6);
    assert_float_equal(vt__sched_lr(&o, 33), 0.1, 1e-6);
    assert_true(vt__sched_lr(&o, 20) > 0.004 && vt__sched_lr(&o, 20) < 0.1);
    assert_true(vt__sched_lr(&o, 110) < 1e-5);
}

/* SGD and AdamW against the update rules written out by hand for one weight. */
static void test_optimisers(void **state) {
    (void)state;
    tnet *net;
    assert_int_equal(vt__tnet_create(2, 1, 1, &net), 0);
    assert_true(vt__tnet_fc(net, 0, 1) > 0);
    tn_param *w = &net->nodes[1].prm[0], *b = &net->nodes[1].prm[1];
    w->w[0] = 1.0f, w->w[1] = -2.0f, b->w[0] = 0.5f;
    w->g[0] = 0.1f, w->g[1] = 0.2f, b->g[0] = -0.3f;
    topt o = {.kind = TOPT_SGD, .lr = 0.1f, .momentum = 0.9f, .wd = 0.01f};
    vt__opt_step(net, &o, 0.1f, 1);
    assert_float_equal(w->w[0], 1.0 - 0.1 * (0.1 + 0.01 * 1.0), 1e-6);
    assert_float_equal(b->w[0], 0.5 + 0.1 * 0.3, 1e-6); /* no decay on biases */
    vt__opt_step(net, &o, 0.1f, 2);                      /* momentum: v = 0.9 v + g */
    double v1 = 0.1 + 0.01, w1 = 1.0 - 0.1 * v1, v2 = 0.9 * v1 + 0.1 + 0.01 * w1;
    assert_float_equal(w->w[0], w1 - 0.1 * v2, 1e-6);

    vt__tnet_init(net, 1);
    w->w[0] = 1.0f;
    w->g[0] = 0.5f;
    topt a = {.kind = TOPT_ADAMW, .lr = 0.01f, .wd = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    vt__opt_step(net, &a, 0.01f, 1);
    /* first Adam step: mhat/sqrt(vhat) = sign(g) = 1; decoupled decay 0.01*0.1*1 */
    assert_float_equal(w->w[0], 1.0 - 0.01 * (1.0 + 0.1 * 1.0), 1e-5);
    vt__tnet_free(net);
}

/* Kaiming init: weights have the fan-in variance, biases zero, the same seed the same values. */
static void test_init(void **state) {
    (void)state;
    tnet *a, *b;
    assert_int_equal(vt__tnet_create(16, 8, 8, &a), 0);
    assert_int_equal(vt__tnet_create(16, 8, 8, &b), 0);
    assert_true(vt__tnet_conv(a, 0, 64, 3, 1, 1, 1, 1) > 0);
    assert_true(vt__tnet_conv(b, 0, 64, 3, 1, 1, 1, 1) > 0);
    vt__tnet_init(a, 3);
    vt__tnet_init(b, 3);
    tn_param *w = &a->nodes[1].prm[0];
    assert_memory_equal(w->w, b->nodes[1].prm[0].w, w->n * sizeof(float));
    double s2 = 0, s1 = 0;
    for (size_t i = 0; i < w->n; i++) s1 += w->w[i], s2 += (double)w->w[i] * w->w[i];
    double var = s2 / w->n - (s1 / w->n) * (s1 / w->n);
    assert_float_equal(var, 2.0 / (16 * 9), 0.1 * 2.0 / (16 * 9));
    for (size_t i = 0; i < a->nodes[1].prm[1].n; i++) assert_true(a->nodes[1].prm[1].w[i] == 0.0f);
    vt__tnet_free(a);
    vt__tnet_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcheck_conv),       cmocka_unit_test(test_gradcheck_bn_act_pool),
        cmocka_unit_test(test_gradcheck_fc_drop_residual), cmocka_unit_test(test_gradcheck_xent),
        cmocka_unit_test(test_gradcheck_blocked),
        cmocka_unit_test(test_schedule),             cmocka_unit_test(test_optimisers),
        cmocka_unit_test(test_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
