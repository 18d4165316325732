/* cmd_model.c: `vitrine model info|run|test|bench`: inspect, run, conformance-test and time ONNX models. */
#include "cli.h"
#include <dirent.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(void) {
    printf("Usage: vitrine model info MODEL.onnx\n"
           "       vitrine model run MODEL.onnx --input IN.f32 --shape N,C,H,W --output OUT.f32 [--tensor NAME]\n"
           "       vitrine model test CASE_DIR...\n"
           "       vitrine model bench MODEL.onnx [--batch B] [--threads T] [--seconds S]\n\n"
           "info   prints the inputs, outputs, operator counts, parameter count and the preprocessing\n"
           "       the model asks for.\n"
           "run    reads raw little-endian float32 input of the given shape, runs the model and writes\n"
           "       the output (or the named tensor) as raw float32; prints the output shape.\n"
           "test   runs ONNX backend test cases (folders with model.onnx and test_data_set_*/input_*.pb,\n"
           "       output_*.pb); prints PASS or FAIL per case and 'N passed, N failed'.\n"
           "bench  times inference on random input and prints images/s.\n\n"
           "Options:\n"
           "  -i, --input FILE     run: input tensor, raw float32\n"
           "  -s, --shape N,C,H,W  run: input shape (any rank, comma separated)\n"
           "  -o, --output FILE    run: where to write the output\n"
           "      --tensor NAME    run: read out this tensor instead of the first output\n"
           "  -b, --batch B        bench: batch size (default 1)\n"
           "  -t, --threads T      threads (default: all CPUs)\n"
           "      --seconds S      bench: run for about S seconds (default 5)\n"
           "      --bf16           compute convolutions in bfloat16\n"
           "      --rtol R         test: relative tolerance (default 1e-3)\n"
           "      --atol A         test: absolute tolerance (default 1e-5)\n"
           "  -h, --help           this text\n");
}

static const char *dtname(int dt) {
    switch (dt) {
    case 1: return "float";
    case 2: return "uint8";
    case 3: return "int8";
    case 6: return "int32";
    case 7: return "int64";
    case 9: return "bool";
    case 11: return "double";
    default: return "other";
    }
}

static void print_io(const char *what, const vt_model_io *io) {
    printf("%s %s: %s [", what, io->name, dtname(io->dtype));
    if (io->rank < 0) printf("?");
    for (int d = 0; d < io->rank; d++) {
        if (io->shape[d] < 0) printf("%s?", d ? "," : "");
        else printf("%s%lld", d ? "," : "", (long long)io->shape[d]);
    }
    printf("]\n");
}

typedef struct {
    const char *op;
    int n;
} opcount;

static int cmp_opcount(const void *a, const void *b) {
    const opcount *x = a, *y = b;
    return x->n != y->n ? y->n - x->n : strcmp(x->op, y->op);
}

static int do_info(vt_model *m) {
    printf("producer: %s\nopset: %d\n", vt_model_producer(m), vt_model_opset(m));
    vt_model_io io;
    for (int i = 0; i < vt_model_num_inputs(m); i++) {
        vt_model_input(m, i, &io);
        print_io("input", &io);
    }
    for (int i = 0; i < vt_model_num_outputs(m); i++) {
        vt_model_output(m, i, &io);
        print_io("output", &io);
    }
    int nn = vt_model_num_nodes(m), nops = 0;
    opcount *oc = calloc((size_t)nn + 1, sizeof *oc);
    if (!oc) return VT_EXIT_FAIL;
    for (int i = 0; i < nn; i++) {
        const char *op = vt_model_node_op(m, i);
        int k = 0;
        while (k < nops && strcmp(oc[k].op, op)) k++;
        if (k == nops) oc[nops++].op = op;
        oc[k].n++;
    }
    qsort(oc, (size_t)nops, sizeof *oc, cmp_opcount);
    printf("nodes: %d\noperators:", nn);
    for (int i = 0; i < nops; i++) printf(" %s=%d", oc[i].op, oc[i].n);
    printf("\n");
    free(oc);
    int64_t np = vt_model_param_count(m);
    printf("parameters: %lld (%.1f MB as float32)\n", (long long)np, np * 4.0 / 1e6);
    printf("embedding tensor: %s\n", vt_model_embedding_tensor(m));
    vt_preproc pp;
    int rc = vt_model_preproc(m, &pp);
    if (rc) return cli_fail(rc, "preprocessing metadata");
    printf("preprocessing: size %d, mean %.4g,%.4g,%.4g, std %.4g,%.4g,%.4g, %s, %s (%s)\n", pp.size, pp.mean[0],
           pp.mean[1], pp.mean[2], pp.std[0], pp.std[1], pp.std[2], pp.bgr ? "bgr" : "rgb",
           pp.fit == VT_FIT_STRETCH ? "stretch" : "letterbox", pp.from_metadata ? "from metadata" : "defaults");
    return VT_EXIT_OK;
}

static int parse_shape(const char *s, int *rank, int64_t *dims) {
    *rank = 0;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || *rank >= 8) return -1;
        dims[(*rank)++] = v;
        s = end;
        if (*s == ',' || *s == 'x') s++;
        else if (*s) return -1;
    }
    return *rank ? 0 : -1;
}

static int do_run(vt_model *m, const char *in, const char *shape, const char *outp, const char *tensor) {
    if (!in || !shape || !outp) return cli_usage_error("model", "run needs --input, --shape and --output");
    vt_tensor t = {VT_DT_FLOAT, 0, {0}, NULL};
    if (parse_shape(shape, &t.rank, t.shape)) return cli_usage_error("model", "bad --shape '%s'", shape);
    size_t n = 1;
    for (int i = 0; i < t.rank; i++) n *= (size_t)t.shape[i];
    FILE *f = fopen(in, "rb");
    if (!f) {
        fprintf(stderr, "vitrine: cannot open %s\n", in);
        return VT_EXIT_FAIL;
    }
    float *buf = malloc(n * 4 + 4);
    size_t got = buf ? fread(buf, 4, n + 1, f) : 0;
    fclose(f);
    if (!buf || got != n) {
        fprintf(stderr, "vitrine: %s holds %zu floats, the shape needs %zu\n", in, got, n);
        free(buf);
        return VT_EXIT_FAIL;
    }
    t.data = buf;
    vt_tensor o;
    const char *names[1] = {tensor};
    double t0 = vt_now();
    int rc = vt_model_run_tensors(m, 1, NULL, &t, 1, tensor ? names : NULL, &o);
    double dt = vt_now() - t0;
    free(buf);
    if (rc) return cli_fail(rc, "inference failed");
    size_t on = 1;
    for (int i = 0; i < o.rank; i++) on *= (size_t)o.shape[i];
    if (o.dtype != VT_DT_FLOAT) {
        float *fl = malloc(on * 4 + 4);
        for (size_t i = 0; fl && i < on; i++) fl[i] = (float)((int64_t *)o.data)[i];
        free(o.data);
        o.data = fl;
    }
    f = fopen(outp, "wb");
    int ok = f && o.data && fwrite(o.data, 4, on, f) == on;
    if (f && fclose(f)) ok = 0;
    vt_tensor_free(&o);
    if (!ok) {
        fprintf(stderr, "vitrine: cannot write %s\n", outp);
        return VT_EXIT_FAIL;
    }
    printf("output %s [", tensor ? tensor : "0");
    for (int i = 0; i < o.rank; i++) printf("%s%lld", i ? "," : "", (long long)o.shape[i]);
    printf("] -> %s (%.1f ms)\n", outp, dt * 1e3);
    return VT_EXIT_OK;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted file names in dir starting with prefix. */
static int list_prefix(const char *dir, const char *prefix, char ***out) {
    DIR *d = opendir(dir);
    *out = NULL;
    if (!d) return -1;
    int n = 0, cap = 16;
    char **l = malloc((size_t)cap * sizeof *l);
    struct dirent *e;
    while (l && (e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix))) continue;
        if (n == cap) {
            char **nl = realloc(l, (size_t)(cap *= 2) * sizeof *l);
            if (!nl) break;
            l = nl;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        l[n] = malloc(len);
        if (!l[n]) break;
        snprintf(l[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (!l) return -1;
    /* input_10 sorts after input_9: order by length, then name */
    qsort(l, (size_t)n, sizeof *l, cmp_str);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strlen(l[j]) < strlen(l[j - 1]); j--) {
            char *t = l[j];
            l[j] = l[j - 1];
            l[j - 1] = t;
        }
    *out = l;
    return n;
}

/* Compares an output against its reference; returns 0 or fills msg. */
static int compare(const vt_tensor *got, const vt_tensor *want, double rtol, double atol, char *msg, size_t msz) {
    if (got->rank != want->rank) {
        snprintf(msg, msz, "rank %d, expected %d", got->rank, want->rank);
        return -1;
    }
    size_t n = 1;
    for (int i = 0; i < got->rank; i++) {
        if (got->shape[i] != want->shape[i]) {
            snprintf(msg, msz, "dimension %d is %lld, expected %lld", i, (long long)got->shape[i], (long long)want->shape[i]);
            return -1;
        }
        n *= (size_t)got->shape[i];
    }
    for (size_t i = 0; i < n; i++) {
        double a = got->dtype == VT_DT_FLOAT ? ((float *)got->data)[i] : (double)((int64_t *)got->data)[i];
        double b = want->dtype == VT_DT_FLOAT ? ((float *)want->data)[i] : (double)((int64_t *)want->data)[i];
        if (isnan(a) && isnan(b)) continue;
        if (isinf(a) && isinf(b) && (a > 0) == (b > 0)) continue;
        if (!(fabs(a - b) <= atol + rtol * fabs(b))) {
            snprintf(msg, msz, "element %zu is %.7g, expected %.7g", i, a, b);
            return -1;
        }
    }
    return 0;
}

static int run_case(const char *dir, int threads, double rtol, double atol, char *msg, size_t msz) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    vt_model_opts mo = {threads, 0};
    vt_model *m;
    int rc = vt_model_load(path, &mo, &m);
    if (rc) {
        snprintf(msg, msz, "%s", vt_errmsg());
        return -1;
    }
    char **sets;
    int nsets = list_prefix(dir, "test_data_set_", &sets), res = 0;
    if (nsets <= 0) {
        snprintf(msg, msz, "no test_data_set_* folders");
        res = -1;
    }
    for (int s = 0; s < nsets && !res; s++) {
        char **ins, **outs;
        int ni = list_prefix(sets[s], "input_", &ins), no = list_prefix(sets[s], "output_", &outs);
        vt_tensor it[8], ot[16], want[16];
        char *inames[8] = {0};
        int li = 0, lw = 0;
        if (ni < 0 || no < 0 || ni > 8 || no > 16) {
            snprintf(msg, msz, "%s: bad test data", sets[s]);
            res = -1;
        }
        for (; !res && li < ni; li++)
            if (vt_tensor_load_pb(ins[li], &inames[li], &it[li])) {
                snprintf(msg, msz, "%s", vt_errmsg());
                res = -1;
                break;
            }
        for (; !res && lw < no; lw++)
            if (vt_tensor_load_pb(outs[lw], NULL, &want[lw])) {
                snprintf(msg, msz, "%s", vt_errmsg());
                res = -1;
                break;
            }
        if (!res) {
            /* inputs are matched by name when the .pb files carry names, else by position */
            int named = 1;
            for (int i = 0; i < ni; i++)
                if (!inames[i] || !*inames[i]) named = 0;
            if (ni != vt_model_num_inputs(m)) named = named && ni > 0;
            rc = vt_model_run_tensors(m, ni, named ? (const char *const *)inames : NULL, it, no, NULL, ot);
            if (rc) {
                snprintf(msg, msz, "%s", vt_errmsg());
                res = -1;
            } else {
                for (int o = 0; o < no && !res; o++) {
                    char sub[400];
                    if (compare(&ot[o], &want[o], rtol, atol, sub, sizeof sub)) {
                        snprintf(msg, msz, "%s output %d: %s", sets[s] + strlen(dir) + 1, o, sub);
                        res = -1;
                    }
                }
                for (int o = 0; o < no; o++) vt_tensor_free(&ot[o]);
            }
        }
        for (int i = 0; i < li; i++) vt_tensor_free(&it[i]);
        for (int i = 0; i < ni; i++) free(inames[i]);
        for (int i = 0; i < lw; i++) vt_tensor_free(&want[i]);
        if (ni > 0) cli_free_list(ins, ni); else free(ins);
        if (no > 0) cli_free_list(outs, no); else free(outs);
    }
    if (nsets > 0) cli_free_list(sets, nsets); else free(sets);
    vt_model_free(m);
    return res;
}

static int do_test(int n, char **dirs, int threads, double rtol, double atol) {
    int pass = 0, fail = 0;
    for (int i = 0; i < n; i++) {
        char msg[1024] = "";
        size_t l = strlen(dirs[i]);
        while (l > 1 && dirs[i][l - 1] == '/') dirs[i][--l] = 0;
        if (run_case(dirs[i], threads, rtol, atol, msg, sizeof msg) == 0) {
            printf("PASS %s\n", base_name(dirs[i]));
            pass++;
        } else {
            printf("FAIL %s: %s\n", base_name(dirs[i]), msg);
            fail++;
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", pass, fail);
    return fail ? VT_EXIT_FAIL : VT_EXIT_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int do_bench(vt_model *m, int batch, double seconds) {
    vt_model_io io;
    if (vt_model_input(m, 0, &io)) return cli_fail(VT_EINVAL, "model has no input");
    if (io.rank != 4) {
        fprintf(stderr, "vitrine: bench needs a 4-D image input\n");
        return VT_EXIT_FAIL;
    }
    vt_preproc pp;
    if (vt_model_preproc(m, &pp)) return cli_fail(VT_ECORRUPT, "metadata");
    int c = io.shape[1] > 0 ? (int)io.shape[1] : 3;
    int h = io.shape[2] > 0 ? (int)io.shape[2] : pp.size, w = io.shape[3] > 0 ? (int)io.shape[3] : pp.size;
    size_t n = (size_t)batch * (size_t)c * (size_t)h * (size_t)w;
    float *x = malloc(n * 4);
    if (!x) return VT_EXIT_FAIL;
    vt_rng rng;
    vt_rng_seed(&rng, 42);
    for (size_t i = 0; i < n; i++) x[i] = (float)(vt_rng_uniform(&rng) * 2 - 1);
    float *out;
    int64_t shp[8];
    int rank;
    double t0 = vt_now();
    int rc = vt_model_run(m, x, batch, c, h, w, NULL, &out, shp, &rank);
    double tplan = vt_now() - t0;
    if (rc) {
        free(x);
        return cli_fail(rc, "inference failed");
    }
    free(out);
    /* one more warm-up, then timed runs */
    rc = vt_model_run(m, x, batch, c, h, w, NULL, &out, shp, &rank);
    if (!rc) free(out);
    int runs = 0, cap = 1 << 16;
    double *times = malloc((size_t)cap * sizeof *times);
    t0 = vt_now();
    while (!rc && times && runs < cap && (vt_now() - t0 < seconds || runs < 3)) {
        double t1 = vt_now();
        rc = vt_model_run(m, x, batch, c, h, w, NULL, &out, shp, &rank);
        times[runs] = vt_now() - t1;
        if (!rc) free(out);
        runs++;
    }
    double total = vt_now() - t0;
    free(x);
    if (rc || !times) {
        free(times);
        return cli_fail(rc, "inference failed");
    }
    qsort(times, (size_t)runs, sizeof *times, cmp_double);
    double med = times[runs / 2], best = times[0];
    free(times);
    size_t act = 0, wb = 0;
    vt_model_plan_bytes(m, &act, &wb);
    /* the headline rate uses the median batch time: robust against preemption on a shared machine */
    printf("batch %d, %dx%dx%d: %.1f images/s (median %.2f ms/batch; mean %.1f images/s; best %.2f ms; %d runs; "
           "first run incl. plan %.1f ms; activations %.1f MB, weights %.1f MB)\n",
           batch, c, h, w, batch / med, med * 1e3, runs * batch / total, best * 1e3, runs, tplan * 1e3, act / 1e6,
           wb / 1e6);
    return VT_EXIT_OK;
}

int vt_cmd_model(int argc, char **argv) {
    static const struct option opts[] = {
        {"input", required_argument, 0, 'i'},  {"shape", required_argument, 0, 's'},
        {"output", required_argument, 0, 'o'}, {"tensor", required_argument, 0, 'T'},
        {"batch", required_argument, 0, 'b'},  {"threads", required_argument, 0, 't'},
        {"seconds", required_argument, 0, 'S'}, {"bf16", no_argument, 0, 'B'},
        {"rtol", required_argument, 0, 'r'},   {"atol", required_argument, 0, 'a'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *in = NULL, *shape = NULL, *outp = NULL, *tensor = NULL;
    long batch = 1, threads = 0;
    double seconds = 5, rtol = 1e-3, atol = 1e-5;
    int bf16 = 0;
    if (argc < 2) {
        help();
        return VT_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        help();
        return VT_EXIT_OK;
    }
    const char *sub = argv[1];
    
    optind = 1;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, "i:s:o:b:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': in = optarg; break;
        case 's': shape = optarg; break;
        case 'o': outp = optarg; break;
        case 'T': tensor = optarg; break;
        case 'b':
            if (cli_parse_int(optarg, 1, 4096, &batch)) return cli_usage_error("model", "--batch must be 1..4096");
            break;
        case 't':
            if (cli_parse_int(optarg, 0, 1024, &threads)) return cli_usage_error("model", "--threads must be 0..1024");
            break;
        case 'S':
            if (cli_parse_float(optarg, &seconds) || seconds < 0) return cli_usage_error("model", "bad --seconds");
            break;
        case 'B': bf16 = 1; break;
        case 'r':
            if (cli_parse_float(optarg, &rtol)) return cli_usage_error("model", "bad --rtol");
            break;
        case 'a':
            if (cli_parse_float(optarg, &atol)) return cli_usage_error("model", "bad --atol");
            break;
        case 'h': help(); return VT_EXIT_OK;
        default: return cli_usage_error("model", "unknown option");
        }
    }
    int nargs = argc - 1 - optind;
    char **args = argv + 1 + optind;
    if (!strcmp(sub, "test")) {
        if (nargs < 1) return cli_usage_error("model", "test needs at least one CASE_DIR");
        return do_test(nargs, args, (int)threads, rtol, atol);
    }
    if (strcmp(sub, "info") && strcmp(sub, "run") && strcmp(sub, "bench"))
        return cli_usage_error("model", "unknown subcommand '%s' (info, run, test, bench)", sub);
    if (nargs != 1) return cli_usage_error("model", "%s needs exactly one MODEL.onnx", sub);
    vt_model_opts mo = {(int)threads, bf16};
    vt_model *m;
    int rc = vt_model_load(args[0], &mo, &m);
    if (rc) return cli_fail(rc, NULL);
    int ex;
    if (!strcmp(sub, "info")) ex = do_info(m);
    else if (!strcmp(sub, "run")) ex = do_run(m, in, shape, outp, tensor);
    else ex = do_bench(m, (int)batch, seconds);
    vt_model_free(m);
    return ex;
}
