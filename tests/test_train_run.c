/* test_train_run.c: end-to-end training: memorising 64 photos, bit-identical reruns, resume after
 * an interruption, checkpoint checks, label folding, and the ONNX export against an independent
 * PyTorch interpreter. */
#include "testutil.h"
#include "nn/train_internal.h"
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char *images_dir(void) { return tu_data("images"); }
static const char *styles(void) { return tu_data("styles.csv"); }

static int read_all(const char *path, uint8_t **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)n + 1);
    *len = fread(*buf, 1, (size_t)n, f);
    fclose(f);
    return *len == (size_t)n ? 0 : -1;
}

static int files_equal(const char *a, const char *b) {
    uint8_t *x, *y;
    size_t nx, ny;
    if (read_all(a, &x, &nx) || read_all(b, &y, &ny)) return 0;
    int eq = nx == ny && !memcmp(x, y, nx);
    free(x), free(y);
    return eq;
}

static void small_opts(vt_train_opts *o, int limit, int epochs) {
    vt_train_opts_init(o);
    o->images_dir = images_dir();
    o->meta = styles();
    o->limit = limit;
    o->size = 32;
    o->width = 8;
    o->embed_dim = 32;
    o->epochs = epochs;
    o->batch = 32;
    o->threads = 2;
    o->progress = 0;
    o->min_count = 3;
}

/* A tiny network memorises 64 photos: 100% accuracy on every head, measured afterwards in
 * evaluation mode (running BN statistics, no augmentation). */
static void test_memorise_64(void **state) {
    (void)state;
    if (!images_dir() || !styles()) TU_SKIP("the shared catalog is missing");
    vt_train_opts o;
    small_opts(&o, 64, 60);
    o.val = 0;
    o.augment = 0;
    o.dropout = 0;
    o.label_smoothing = 0;
    o.wd = 0;
    o.lr = 5e-3;
    o.min_count = 1;
    o.eval_train = 1;
    o.out = tu_path("mem.onnx");
    vt_train_result r;
    int rc = vt_train(&o, &r);
    if (rc) print_message("%s\n", vt_errmsg());
    assert_int_equal(rc, 0);
    assert_int_equal(r.items, 64);
    assert_int_equal(r.nheads, 3);
    assert_true(r.classes[0] > 5); /* many article types among 64 items: not a trivial task */
    for (int h = 0; h < r.nheads; h++) {
        print_message("head %d: %d classes, training accuracy %.4f\n", h, r.classes[h], r.train_acc[h]);
        assert_true(r.train_acc[h] == 1.0);
    }
}

/* Same seed and threads: bit-identical weights and model file; another seed: other weights. */
static void test_deterministic(void **state) {
    (void)state;
    if (!images_dir() || !styles()) TU_SKIP("the shared catalog is missing");
    vt_train_opts o;
    small_opts(&o, 160, 2);
    o.val = 0.2;
    vt_train_result a, b, c;
    o.out = tu_path("det_a.onnx");
    assert_int_equal(vt_train(&o, &a), 0);
    o.out = tu_path("det_b.onnx");
    assert_int_equal(vt_train(&o, &b), 0);
    assert_int_equal(a.val_items, 32);
    assert_true(a.weights_hash == b.weights_hash);
    assert_true(files_equal(tu_path("det_a.onnx"), tu_path("det_b.onnx")));
    assert_true(a.val_p10 >= 0 && a.val_p10 <= 1);
    o.seed = 2;
    o.out = tu_path("det_c.onnx");
    assert_int_equal(vt_train(&o, &c), 0);
    assert_true(a.weights_hash != c.weights_hash);
}

/* Stop after epoch 2, resume from the checkpoint: the same weights as an uninterrupted run. */
static void test_resume(void **state) {
    (void)state;
    if (!images_dir() || !styles()) TU_SKIP("the shared catalog is missing");
    vt_train_opts o;
    small_opts(&o, 128, 4);
    o.val = 0.25;
    vt_train_result full, part, rest;
    o.out = tu_path("full.onnx");
    o.checkpoint = tu_path("full.ckpt");
    assert_int_equal(vt_train(&o, &full), 0);
    assert_int_equal(full.epochs_done, 4);

    o.out = tu_path("part.onnx");
    o.checkpoint = tu_path("part.ckpt");
    o.stop_after = 2;
    assert_int_equal(vt_train(&o, &part), 0);
    assert_int_equal(part.epochs_done, 2);
    assert_true(part.weights_hash != full.weights_hash);

    o.stop_after = 0;
    o.resume = tu_path("part.ckpt");
    o.out = tu_path("resumed.onnx");
    o.checkpoint = tu_path("resumed.ckpt");
    assert_int_equal(vt_train(&o, &rest), 0);
    assert_int_equal(rest.epochs_done, 4);
    assert_true(rest.weights_hash == full.weights_hash);
    assert_true(files_equal(tu_path("full.onnx"), tu_path("resumed.onnx")));
    assert_true(files_equal(tu_path("full.ckpt"), tu_path("resumed.ckpt")));

    /* other options: refused, not silently mixed */
    o.lr = 1e-3;
    o.out = tu_path("bad.onnx");
    assert_int_equal(vt_train(&o, NULL), VT_EINVAL);
    assert_non_null(strstr(vt_errmsg(), "other training options"));
    /* a damaged checkpoint: checksum error */
    o.lr = 0;
    uint8_t *buf;
    size_t len;
    assert_int_equal(read_all(tu_path("part.ckpt"), &buf, &len), 0);
    buf[len / 2] ^= 0x40;
    assert_int_equal(tu_write(tu_path("damaged.ckpt"), buf, len), 0);
    free(buf);
    o.resume = tu_path("damaged.ckpt");
    assert_int_equal(vt_train(&o, NULL), VT_ECHECKSUM);
}

/* Writes a catalog of n small PNGs with one label column drawn from `vals`. */
static void write_catalog(const char *dir, int n, const char *const *vals) {
    char p[512];
    snprintf(p, sizeof p, "%s/images", dir);
    mkdir(dir, 0755);
    mkdir(p, 0755);
    vt_image img;
    assert_int_equal(vt_image_alloc(&img, 20, 24, 3), 0);
    snprintf(p, sizeof p, "%s/styles.csv", dir);
    FILE *f = fopen(p, "w");
    fprintf(f, "id,articleType,baseColour\n");
    for (int i = 0; i < n; i++) {
        memset(img.data, (i * 37) & 255, 20 * 24 * 3);
        snprintf(p, sizeof p, "%s/images/%d.png", dir, 100 + i);
        assert_int_equal(vt_image_save_png(&img, p), 0);
        fprintf(f, "%d,%s,%s\n", 100 + i, vals[i], i % 2 ? "Red" : "Blue");
    }
    fclose(f);
    vt_image_free(&img);
}

/* Rare values fold into "other", classes are ordered by count then name, empty values are -1. */
static void test_vocab_fold(void **state) {
    (void)state;
    const char *vals[12] = {"Shirts", "Bags", "Shirts", "Bags", "Shirts", "Watches", "Bags", "Shirts", "Caps", "", "Belts", "Bags"};
    const char *dir = tu_path("cat");
    char imgs[512], csv[512];
    write_catalog(dir, 12, vals);
    snprintf(imgs, sizeof imgs, "%s/images", dir);
    snprintf(csv, sizeof csv, "%s/styles.csv", dir);
    tdata d;
    assert_int_equal(vt__tdata_load(&d, csv, imgs, "articleType,baseColour", 2, 0), 0);
    assert_int_equal(d.n, 12);
    assert_int_equal(d.nheads, 2);
    assert_int_equal(d.nclasses[0], 3);
    assert_string_equal(d.vocab[0][0], "Bags"); /* 4 */
    assert_string_equal(d.vocab[0][1], "Shirts"); /* 4, then by name */
    assert_string_equal(d.vocab[0][2], "other");
    assert_int_equal(d.labels[0 * 2], 1);
    assert_int_equal(d.labels[1 * 2], 0);
    assert_int_equal(d.labels[5 * 2], 2); /* Watches -> other */
    assert_int_equal(d.labels[9 * 2], -1); /* empty */
    assert_int_equal(d.nclasses[1], 2);
    assert_int_equal(vt__tdata_cache(&d, 16, VT_FIT_LETTERBOX, 0.5, 1, 0), 0);
    assert_int_equal(d.cs, 16);
    /* item 0 is black, 20x24; at aspect 0.5 it becomes 12x24, letterboxed to 8x16 in the middle */
    assert_int_equal(d.cache[(8 * 16 + 1) * 3], 255);
    assert_int_equal(d.cache[(8 * 16 + 8) * 3], 0);
    vt__tdata_free(&d);
    /* a missing column is an error naming it */
    assert_int_equal(vt__tdata_load(&d, csv, imgs, "season", 2, 0), VT_EINVAL);
    assert_non_null(strstr(vt_errmsg(), "season"));
}

static void test_bad_options(void **state) {
    (void)state;
    vt_train_opts o;
    vt_train_opts_init(&o);
    assert_int_equal(vt_train(&o, NULL), VT_EINVAL); /* no data */
    o.images_dir = "/nonexistent";
    o.meta = "/nonexistent/styles.csv";
    o.size = 8;
    assert_int_equal(vt_train(&o, NULL), VT_EINVAL);
    o.size = 64;
    o.batch = 1;
    assert_int_equal(vt_train(&o, NULL), VT_EINVAL);
    o.batch = 16;
    assert_true(vt_train(&o, NULL) < 0); /* missing feed */
}

/* The exported graph computes what the trainer's own forward pass computes: checked with an
 * independent interpreter (PyTorch functional ops, bench/train/onnx_torch_eval.py). */
static void test_export_matches_torch(void **state) {
    (void)state;
    if (system("/usr/bin/python3 -c 'import torch, onnx' >/dev/null 2>&1") != 0) {
        TU_SKIP("python3 with torch and onnx is not available");
    }
    int S = 20, N = 3;
    tnet *net;
    assert_int_equal(vt__tnet_create(3, S, S, &net), 0);
    net->threads = 1;
    int x = vt__tnet_conv(net, 0, 8, 3, 2, 1, 1, 0);
    x = vt__tnet_bn(net, x);
    x = vt__tnet_relu(net, x);
    x = vt__tnet_pool(net, x, 1, 3, 2, 1);
    int a = vt__tnet_conv(net, x, 8, 3, 1, 1, 8, 1); /* depthwise with bias */
    a = vt__tnet_bn_relu(net, a); /* fused: exported as BatchNormalization + Relu */
    a = vt__tnet_conv(net, a, 16, 1, 1, 0, 1, 0);
    int s = vt__tnet_conv(net, x, 16, 1, 1, 0, 1, 0);
    x = vt__tnet_add(net, a, s);
    x = vt__tnet_pool(net, x, 0, 3, 2, 1);
    x = vt__tnet_gap(net, x);
    int emb = vt__tnet_fc(net, x, 12);
    int dr = vt__tnet_dropout(net, emb, 0.5f);
    int h0 = vt__tnet_fc(net, dr, 5), h1 = vt__tnet_fc(net, dr, 3);
    assert_true(h1 > 0);
    vt__tnet_init(net, 11);
    vt_rng r;
    vt_rng_seed(&r, 4);
    for (int i = 0; i < net->n; i++) {
        tn_node *nd = &net->nodes[i];
        if (nd->kind != TN_BN) continue;
        for (int c = 0; c < nd->c; c++) {
            nd->run_mean[c] = (float)(vt_rng_uniform(&r) - 0.5);
            nd->run_var[c] = (float)(0.5 + vt_rng_uniform(&r));
            nd->prm[0].w[c] = (float)(0.5 + vt_rng_uniform(&r));
            nd->prm[1].w[c] = (float)(vt_rng_uniform(&r) - 0.5);
        }
    }
    assert_int_equal(vt__tnet_setup(net, N), 0);
    size_t nx = (size_t)N * 3 * S * S;
    float *nchw = malloc(nx * sizeof(float)), *nhwc = malloc(nx * sizeof(float));
    for (size_t i = 0; i < nx; i++) nchw[i] = (float)(vt_rng_uniform(&r) * 2 - 1);
    for (int b = 0; b < N; b++)
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < S * S; p++) nhwc[((size_t)b * S * S + p) * 3 + c] = nchw[((size_t)b * 3 + c) * S * S + p];
    assert_int_equal(vt__tnet_forward(net, net->plain ? nhwc : nchw, 0), 0);
    /* expected embedding: the FC output, L2-normalised */
    float e[3 * 12];
    for (int b = 0; b < N; b++) {
        double ss = 0;
        for (int k = 0; k < 12; k++) ss += (double)net->nodes[emb].y[b * 12 + k] * net->nodes[emb].y[b * 12 + k];
        for (int k = 0; k < 12; k++) e[b * 12 + k] = (float)(net->nodes[emb].y[b * 12 + k] / sqrt(ss));
    }
    assert_int_equal(tu_write(tu_path("in.f32"), nchw, nx * sizeof(float)), 0);
    assert_int_equal(tu_write(tu_path("emb.f32"), e, sizeof e), 0);
    assert_int_equal(tu_write(tu_path("h0.f32"), net->nodes[h0].y, (size_t)N * 5 * sizeof(float)), 0);
    assert_int_equal(tu_write(tu_path("h1.f32"), net->nodes[h1].y, (size_t)N * 3 * sizeof(float)), 0);
    tx_head heads[2] = {{"logits_a", h0}, {"logits_b", h1}};
    const char *keys[1] = {"vitrine.input_size"}, *vals[1] = {"20"};
    assert_int_equal(vt__train_export_onnx(net, emb, 1, NULL, 2, heads, 1, keys, vals, tu_path("x.onnx")), 0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import onnx; onnx.checker.check_model(onnx.load(\"%s\"), full_check=True)' && "
             "/usr/bin/python3 %s/bench/train/onnx_torch_eval.py %s %s %d,3,%d,%d embedding %s logits_a %s logits_b %s",
             tu_path("x.onnx"), VT_SOURCE_DIR, tu_path("x.onnx"), tu_path("in.f32"), N, S, S, tu_path("emb.f32"),
             tu_path("h0.f32"), tu_path("h1.f32"));
    assert_int_equal(system(cmd), 0);
    /* and ONNX Runtime, when node and onnxruntime-node are installed (exit 2: not installed) */
    snprintf(cmd, sizeof cmd, "node %s/bench/train/ort_check.js %s %s %d,3,%d,%d embedding %s logits_a %s logits_b %s",
             VT_SOURCE_DIR, tu_path("x.onnx"), tu_path("in.f32"), N, S, S, tu_path("emb.f32"), tu_path("h0.f32"),
             tu_path("h1.f32"));
    if (system("node --version >/dev/null 2>&1") == 0) {
        int st = system(cmd);
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (code == 2) print_message("onnxruntime-node not installed: ONNX Runtime comparison skipped\n");
        else assert_int_equal(code, 0);
    }
    /* our own engine: the export without the LpNormalization node (which it does not run yet) */
    assert_int_equal(vt__train_export_onnx(net, emb, 0, NULL, 2, heads, 1, keys, vals, tu_path("raw.onnx")), 0);
    vt_model *vm;
    vt_model_opts mo = {.threads = 1};
    int lrc = vt_model_load(tu_path("raw.onnx"), &mo, &vm);
    if (lrc) print_message("engine: %s\n", vt_errmsg());
    assert_int_equal(lrc, 0);
    const char *names[3] = {"embedding", "logits_a", "logits_b"};
    const float *want[3] = {net->nodes[emb].y, net->nodes[h0].y, net->nodes[h1].y};
    int dims[3] = {12, 5, 3};
    for (int t = 0; t < 3; t++) {
        float *out;
        int64_t shape[8];
        int rank;
        assert_int_equal(vt_model_run(vm, nchw, N, 3, S, S, names[t], &out, shape, &rank), 0);
        assert_int_equal(rank, 2);
        assert_int_equal(shape[0], N);
        assert_int_equal(shape[1], dims[t]);
        double md = 0, mx = 1e-12;
        for (int i = 0; i < N * dims[t]; i++) md = fmax(md, fabs(out[i] - want[t][i])), mx = fmax(mx, fabs(want[t][i]));
        print_message("vitrine engine %s: max relative error %.3e\n", names[t], md / mx);
        assert_true(md / mx <= 1e-4);
        free(out);
    }
    vt_model_free(vm);

    /* a mixed embedding: 1 x the normalised embedding, 0.5 x softmax(logits_a), logits_b left out
     * (weight 0); expected values computed here from the trainer's own outputs */
    char *hnames[2] = {"a", "b"};
    tx_mix mix;
    assert_int_equal(vt__train_parse_mix("embedding:1,a:0.5,b:0", 2, hnames, &mix), 0);
    assert_true(mix.mixed && mix.w_emb == 1.0f && mix.w_head[0] == 0.5f && mix.w_head[1] == 0.0f);
    float em[3 * 17];
    for (int b = 0; b < N; b++) {
        float *row = em + b * 17;
        for (int k = 0; k < 12; k++) row[k] = e[b * 12 + k];
        const float *z = net->nodes[h0].y + b * 5;
        double se = 0;
        for (int k = 0; k < 5; k++) se += exp(z[k]);
        for (int k = 0; k < 5; k++) row[12 + k] = (float)(0.5 * exp(z[k]) / se);
        double ss = 0;
        for (int k = 0; k < 17; k++) ss += (double)row[k] * row[k];
        for (int k = 0; k < 17; k++) row[k] = (float)(row[k] / sqrt(ss));
    }
    assert_int_equal(tu_write(tu_path("mix.f32"), em, sizeof em), 0);
    assert_int_equal(vt__train_export_onnx(net, emb, 1, &mix, 2, heads, 1, keys, vals, tu_path("mix.onnx")), 0);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import onnx; onnx.checker.check_model(onnx.load(\"%s\"), full_check=True)' && "
             "/usr/bin/python3 %s/bench/train/onnx_torch_eval.py %s %s %d,3,%d,%d embedding %s logits_a %s",
             tu_path("mix.onnx"), VT_SOURCE_DIR, tu_path("mix.onnx"), tu_path("in.f32"), N, S, S, tu_path("mix.f32"),
             tu_path("h0.f32"));
    assert_int_equal(system(cmd), 0);
    assert_int_equal(vt_model_load(tu_path("mix.onnx"), &mo, &vm), 0);
    float *mo_out;
    int64_t mshape[8];
    int mrank;
    assert_int_equal(vt_model_run(vm, nchw, N, 3, S, S, "embedding", &mo_out, mshape, &mrank), 0);
    assert_int_equal(mrank, 2);
    assert_int_equal(mshape[1], 17);
    double md = 0;
    for (int i = 0; i < N * 17; i++) md = fmax(md, fabs(mo_out[i] - em[i]));
    print_message("vitrine engine mixed embedding: max error %.3e\n", md);
    assert_true(md <= 1e-5);
    free(mo_out);
    vt_model_free(vm);
    /* bad mixes are refused by name */
    assert_int_equal(vt__train_parse_mix("colour:1", 2, hnames, &mix), VT_EINVAL);
    assert_int_equal(vt__train_parse_mix("a:x", 2, hnames, &mix), VT_EINVAL);
    assert_int_equal(vt__train_parse_mix("a:1,a:2", 2, hnames, &mix), VT_EINVAL);
    assert_int_equal(vt__train_parse_mix("a:0,embedding:0", 2, hnames, &mix), VT_EINVAL);
    assert_int_equal(vt__train_parse_mix("a:-1", 2, hnames, &mix), VT_EINVAL);
    assert_int_equal(vt__train_parse_mix("", 2, hnames, &mix), 0);
    assert_false(mix.mixed);
    free(nchw), free(nhwc);
    vt__tnet_free(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocab_fold),     cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_export_matches_torch), cmocka_unit_test(test_memorise_64),
        cmocka_unit_test(test_deterministic),  cmocka_unit_test(test_resume),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
