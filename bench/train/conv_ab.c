/* conv_ab.c: one training step (forward + backward) of the side-by-side network with its 3x3
 * stride-1 convolutions on Winograd F(4x4, 3x3) (wino.c) against the same step with oneDNN's
 * direct kernels, alternating in one process; prints median step times and their ratio.
 * Usage: bench_train_conv [SIZE=64] [WIDTH=32] [BATCH=64] [THREADS=2] [ROUNDS=15] */
#include "nn/nn_internal.h"
#include "nn/train_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The trainer's residual family at depth 1 (see build_model in src/nn/train_run.c). */
static tnet *build(int size, int width, int batch, int threads, int wino) {
    tnet *net;
    if (vt__tnet_create(3, size, size, &net)) return NULL;
    net->threads = threads;
    int x = vt__tnet_conv(net, 0, width, 3, 2, 1, 1, 0);
    x = vt__tnet_bn_relu(net, x);
    for (int s = 0; s < 4; s++) {
        int oc = width << s, st = s ? 2 : 1;
        int a = vt__tnet_bn_relu(net, vt__tnet_conv(net, x, oc, 3, st, 1, 1, 0));
        a = vt__tnet_bn(net, vt__tnet_conv(net, a, oc, 3, 1, 1, 1, 0));
        int sc = x;
        if (st != 1 || net->nodes[x].c != oc) sc = vt__tnet_bn(net, vt__tnet_conv(net, x, oc, 1, st, 0, 1, 0));
        x = vt__tnet_relu(net, vt__tnet_add(net, a, sc));
    }
    x = vt__tnet_fc(net, vt__tnet_gap(net, x), 128);
    if (x < 0) return NULL;
    vt__tnet_init(net, 1);
    setenv("VITRINE_WINOGRAD", wino ? "1" : "0", 1);
    if (vt__tnet_setup(net, batch)) return NULL;
    return net;
}

static double step(tnet *net, const float *in, const float *dy) {
    double t0 = now();
    vt__tnet_forward(net, in, 1);
    vt__tnet_zero_marks(net);
    tn_node *o = &net->nodes[net->n - 1];
    memcpy(o->dy, dy, o->el * sizeof(float));
    vt__tnet_mark_grad(net, net->n - 1);
    vt__tnet_backward(net);
    return now() - t0;
}

int main(int argc, char **argv) {
    int size = argc > 1 ? atoi(argv[1]) : 64, width = argc > 2 ? atoi(argv[2]) : 32;
    int batch = argc > 3 ? atoi(argv[3]) : 64, threads = argc > 4 ? atoi(argv[4]) : 2;
    int rounds = argc > 5 ? atoi(argv[5]) : 15;
    if (!vt__wino_enabled()) {
        fprintf(stderr, "this CPU has no AVX2 + FMA: no Winograd kernels to compare\n");
        return 1;
    }
    vt__train_set_ftz();
    tnet *w = build(size, width, batch, threads, 1), *d = build(size, width, batch, threads, 0);
    if (!w || !d) {
        fprintf(stderr, "cannot build the networks\n");
        return 1;
    }
    int nw = 0;
    for (int i = 0; i < w->n; i++) nw += w->nodes[i].wino_f != NULL;
    size_t nin = (size_t)batch * 3 * size * size, nout = w->nodes[w->n - 1].el;
    float *in = malloc(nin * 4), *dy = malloc(nout * 4);
    vt_rng r;
    vt_rng_seed(&r, 9);
    for (size_t i = 0; i < nin; i++) in[i] = (float)vt_rng_uniform(&r) - 0.5f;
    for (size_t i = 0; i < nout; i++) dy[i] = ((float)vt_rng_uniform(&r) - 0.5f) * 1e-2f;
    step(w, in, dy), step(d, in, dy); /* warm-up */
    double *tw = malloc(rounds * sizeof(double)), *td = malloc(rounds * sizeof(double));
    for (int i = 0; i < rounds; i++) {
        tw[i] = step(w, in, dy);
        td[i] = step(d, in, dy);
    }
    qsort(tw, rounds, sizeof *tw, cmp);
    qsort(td, rounds, sizeof *td, cmp);
    double mw = tw[rounds / 2], md = td[rounds / 2];
    printf("size %d, width %d, batch %d, %d threads, %d convolutions on Winograd, %d alternating rounds\n", size, width,
           batch, threads, nw, rounds);
    printf("step (forward + backward): Winograd %.1f ms (%.1f img/s), oneDNN direct %.1f ms (%.1f img/s): %.2fx\n",
           mw * 1e3, batch / mw, md * 1e3, batch / md, md / mw);
    vt__tnet_free(w);
    vt__tnet_free(d);
    free(in), free(dy), free(tw), free(td);
    return 0;
}
