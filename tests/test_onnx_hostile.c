/* test_onnx_hostile.c: the ONNX loader against hostile files: a tensor whose shape promises far more
 * data than it holds is refused before any allocation of that size, and long node chains (in file
 * order or reversed) load and plan in time linear in their length. With VT_WRITE_SEEDS=DIR set, the crafted
 * files are also written to DIR (the fuzz_onnx seeds in fuzz/seeds/fuzz_onnx/ came from there). */
#include "testutil.h"
#include "onnx/onnx.pb-c.h"
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Writes buf to $VT_WRITE_SEEDS/name when that variable is set. */
static void maybe_write_seed(const char *name, const uint8_t *buf, size_t len) {
    const char *dir = getenv("VT_WRITE_SEEDS");
    if (!dir || !*dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(tu_write(path, buf, len), 0);
}

/* A ValueInfoProto of a float tensor of shape [1, 4]. */
static Onnx__ValueInfoProto *vi_1x4(const char *name, Onnx__TypeProto *tp, Onnx__TypeProto__Tensor *tt,
                                    Onnx__TensorShapeProto *sh, Onnx__TensorShapeProto__Dimension *d,
                                    Onnx__TensorShapeProto__Dimension **dp, Onnx__ValueInfoProto *v) {
    onnx__value_info_proto__init(v);
    v->name = (char *)name;
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int i = 0; i < 2; i++) {
        onnx__tensor_shape_proto__dimension__init(&d[i]);
        d[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d[i].dim_value = i ? 4 : 1;
        dp[i] = &d[i];
    }
    sh->n_dim = 2;
    sh->dim = dp;
    tt->has_elem_type = 1;
    tt->elem_type = 1;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    v->type = tp;
    return v;
}

/* Packs a ModelProto (opset 13) around graph g; caller frees. */
static uint8_t *pack_model(Onnx__GraphProto *g, size_t *len) {
    Onnx__ModelProto m;
    onnx__model_proto__init(&m);
    m.has_ir_version = 1;
    m.ir_version = 8;
    Onnx__OperatorSetIdProto os;
    onnx__operator_set_id_proto__init(&os);
    os.domain = "";
    os.has_version = 1;
    os.version = 13;
    Onnx__OperatorSetIdProto *osp = &os;
    m.n_opset_import = 1;
    m.opset_import = &osp;
    m.producer_name = "test_onnx_hostile";
    m.graph = g;
    *len = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    onnx__model_proto__pack(&m, buf);
    return buf;
}

/* A model y = Relu(x) whose one initializer "w" declares dims (rank 2) but holds only a few values,
 * as raw bytes (`raw`) or in the typed field of its element type (float or int64). */
static uint8_t *short_tensor_model(int64_t d0, int64_t d1, int dtype, int raw, size_t *len) {
    int64_t dims[2] = {d0, d1};
    float fv[2] = {1.f, 2.f};
    int64_t iv[2] = {1, 2};
    Onnx__TensorProto t;
    onnx__tensor_proto__init(&t);
    t.name = "w";
    t.n_dims = 2;
    t.dims = dims;
    t.has_data_type = 1;
    t.data_type = dtype;
    if (raw) {
        t.has_raw_data = 1;
        t.raw_data.len = dtype == 7 ? sizeof iv : sizeof fv;
        t.raw_data.data = dtype == 7 ? (uint8_t *)iv : (uint8_t *)fv;
    } else if (dtype == 7) {
        t.n_int64_data = 2;
        t.int64_data = iv;
    } else {
        t.n_float_data = 2;
        t.float_data = fv;
    }
    Onnx__TensorProto *tp = &t;
    Onnx__TypeProto ty[2];
    Onnx__TypeProto__Tensor tt[2];
    Onnx__TensorShapeProto sh[2];
    Onnx__TensorShapeProto__Dimension d[4], *dp[4];
    Onnx__ValueInfoProto vin, vout, *pin, *pout;
    pin = vi_1x4("x", &ty[0], &tt[0], &sh[0], d, dp, &vin);
    pout = vi_1x4("y", &ty[1], &tt[1], &sh[1], d + 2, dp + 2, &vout);
    char *nin[1] = {"x"}, *nout[1] = {"y"};
    Onnx__NodeProto n;
    onnx__node_proto__init(&n);
    n.op_type = "Relu";
    n.name = "relu";
    n.n_input = 1;
    n.input = nin;
    n.n_output = 1;
    n.output = nout;
    Onnx__NodeProto *np = &n;
    Onnx__GraphProto g;
    onnx__graph_proto__init(&g);
    g.name = "g";
    g.n_node = 1;
    g.node = &np;
    g.n_initializer = 1;
    g.initializer = &tp;
    g.n_input = 1;
    g.input = &pin;
    g.n_output = 1;
    g.output = &pout;
    return pack_model(&g, len);
}

/* Loads buf in a child process whose address space may grow by at most 256 MiB over what it has:
 * an allocation of the tensor's declared size there fails (or aborts under ASan). Returns the
 * load's error code as the child's exit status (0 when loaded, 100 + code when the child died). */
static int load_in_small_child(const uint8_t *buf, size_t len) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        long pages = 0, page = sysconf(_SC_PAGESIZE);
        FILE *f = fopen("/proc/self/statm", "r");
        if (!f || fscanf(f, "%ld", &pages) != 1) _exit(99);
        fclose(f);
        struct rlimit rl;
        rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)page + (256ull << 20);
        if (setrlimit(RLIMIT_AS, &rl)) _exit(98);
        vt_model_opts o = {1, 0};
        vt_model *m = NULL;
        int rc = vt_model_load_mem(buf, len, "hostile.onnx", &o, &m);
        vt_model_free(m);
        _exit(-rc);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st)) return 100 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return -WEXITSTATUS(st);
}

static void test_huge_shape_short_data(void **state) {
    (void)state;
    vt_log_set_level(VT_LOG_OFF);
    /* 2^34 elements: the loader's largest accepted tensor, 64 GiB as floats, 128 GiB as int64 */
    const int64_t d0 = 1 << 17, d1 = 1 << 17;
    struct {
        const char *seed;
        int dtype, raw;
    } cases[] = {{"short-raw-float.onnx", 1, 1},
                 {"short-float-data.onnx", 1, 0},
                 {"short-raw-int64.onnx", 7, 1},
                 {"short-int64-data.onnx", 7, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        uint8_t *buf = short_tensor_model(d0, d1, cases[i].dtype, cases[i].raw, &len);
        maybe_write_seed(cases[i].seed, buf, len);
        int rc = load_in_small_child(buf, len);
        printf("%s: load in a 256 MiB child gives %d\n", cases[i].seed, rc);
        assert_int_equal(rc, VT_ECORRUPT);
        /* and in this process too: the same refusal, not an out-of-memory */
        vt_model_opts o = {1, 0};
        vt_model *m = NULL;
        assert_int_equal(vt_model_load_mem(buf, len, "hostile.onnx", &o, &m), VT_ECORRUPT);
        assert_null(m);
        free(buf);
    }
    /* control: the same model with all of its data loads */
    size_t len;
    uint8_t *buf = short_tensor_model(1, 2, 1, 1, &len);
    maybe_write_seed("relu-with-weight.onnx", buf, len);
    assert_int_equal(load_in_small_child(buf, len), 0);
    free(buf);
}

/* A chain of n Relu nodes x -> v1 -> ... -> y, written in file order or reversed. */
static uint8_t *chain_model(int n, int reversed, size_t *len) {
    Onnx__NodeProto *nodes = calloc((size_t)n, sizeof *nodes), **np = calloc((size_t)n, sizeof *np);
    char **names = calloc((size_t)n + 1, sizeof *names);
    assert_true(nodes && np && names);
    for (int i = 0; i <= n; i++) {
        names[i] = malloc(16);
        assert_non_null(names[i]);
        if (i == 0) strcpy(names[i], "x");
        else if (i == n) strcpy(names[i], "y");
        else snprintf(names[i], 16, "v%d", i);
    }
    for (int i = 0; i < n; i++) {
        Onnx__NodeProto *q = &nodes[i];
        onnx__node_proto__init(q);
        q->op_type = "Relu";
        q->n_input = 1;
        q->input = &names[i];
        q->n_output = 1;
        q->output = &names[i + 1];
        np[reversed ? n - 1 - i : i] = q;
    }
    Onnx__TypeProto ty[2];
    Onnx__TypeProto__Tensor tt[2];
    Onnx__TensorShapeProto sh[2];
    Onnx__TensorShapeProto__Dimension d[4], *dp[4];
    Onnx__ValueInfoProto vin, vout, *pin, *pout;
    pin = vi_1x4("x", &ty[0], &tt[0], &sh[0], d, dp, &vin);
    pout = vi_1x4("y", &ty[1], &tt[1], &sh[1], d + 2, dp + 2, &vout);
    Onnx__GraphProto g;
    onnx__graph_proto__init(&g);
    g.name = "chain";
    g.n_node = (size_t)n;
    g.node = np;
    g.n_input = 1;
    g.input = &pin;
    g.n_output = 1;
    g.output = &pout;
    uint8_t *buf = pack_model(&g, len);
    for (int i = 0; i <= n; i++) free(names[i]);
    free(names);
    free(np);
    free(nodes);
    return buf;
}

/* CPU time of this process: what other processes of a shared machine take is not counted. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Fastest of up to five loads of buf (fewer once they have taken 2 s), in CPU seconds. */
static double load_time(const uint8_t *buf, size_t len) {
    double best = 1e30, total = 0;
    for (int r = 0; r < 5 && (r == 0 || total < 2.0); r++) {
        vt_model_opts o = {1, 0};
        vt_model *m = NULL;
        double t0 = now_s();
        int rc = vt_model_load_mem(buf, len, "chain.onnx", &o, &m);
        double t = now_s() - t0;
        assert_int_equal(rc, 0);
        total += t;
        if (t < best) best = t;
        vt_model_free(m);
    }
    return best;
}

/* Loads buf and checks that the chain computes y = relu(x), whatever order its nodes were in. */
static void check_chain_runs(const uint8_t *buf, size_t len) {
    vt_model_opts o = {1, 0};
    vt_model *m = NULL;
    assert_int_equal(vt_model_load_mem(buf, len, "chain.onnx", &o, &m), 0);
    float x[4] = {-1.5f, 0.f, 2.f, -0.25f};
    vt_tensor in = {VT_DT_FLOAT, 2, {1, 4}, x}, out[1];
    assert_int_equal(vt_model_run_tensors(m, 1, NULL, &in, 0, NULL, out), 0);
    const float *y = out[0].data;
    for (int i = 0; i < 4; i++) assert_true(y[i] == (x[i] > 0 ? x[i] : 0.f));
    vt_tensor_free(&out[0]);
    vt_model_free(m);
}

static void test_long_chain_loads_in_linear_time(void **state) {
    (void)state;
    for (int reversed = 0; reversed < 2; reversed++) {
        size_t l1, l2;
        uint8_t *b1 = chain_model(20000, reversed, &l1), *b2 = chain_model(80000, reversed, &l2);
        double t2 = load_time(b2, l2), t1 = load_time(b1, l1);
        printf("chain%s: 20,000 nodes load in %.4f s, 80,000 in %.4f s (ratio %.1f)\n", reversed ? " (reversed)" : "",
               t1, t2, t2 / t1);
        /* 4x the nodes: about 4x the time when linear (5x here with the caches outgrown), 16x for
         * the quadratic sort it replaced */
        assert_true(t2 / t1 < 10.0);
        check_chain_runs(b1, l1);
        free(b1);
        free(b2);
    }
    /* a small chain for the fuzz corpus (fuzz_onnx's inputs are at most 256 KiB) */
    size_t len;
    uint8_t *buf = chain_model(300, 1, &len);
    maybe_write_seed("chain-300-reversed.onnx", buf, len);
    free(buf);
}

/* CPU seconds of the first run of the chain in buf (planning included), the faster of two loads
 * (one when it takes more than 2 s). */
static double first_run_time(const uint8_t *buf, size_t len) {
    double best = 1e30;
    for (int r = 0; r < 2 && (r == 0 || best < 2.0); r++) {
        vt_model_opts o = {1, 0};
        vt_model *m = NULL;
        assert_int_equal(vt_model_load_mem(buf, len, "chain.onnx", &o, &m), 0);
        float x[4] = {-1.5f, 0.f, 2.f, -0.25f};
        vt_tensor in = {VT_DT_FLOAT, 2, {1, 4}, x}, out[1];
        double t0 = now_s();
        assert_int_equal(vt_model_run_tensors(m, 1, NULL, &in, 0, NULL, out), 0);
        double t = now_s() - t0;
        if (t < best) best = t;
        vt_tensor_free(&out[0]);
        vt_model_free(m);
    }
    return best;
}

/* The plan of a long chain (its arena layout above all) is built in linear time too. */
static void test_long_chain_plans_in_linear_time(void **state) {
    (void)state;
    size_t l1, l2;
    uint8_t *b1 = chain_model(20000, 0, &l1), *b2 = chain_model(80000, 0, &l2);
    double t2 = first_run_time(b2, l2), t1 = first_run_time(b1, l1);
    printf("chain: first run of 20,000 nodes in %.3f s, of 80,000 in %.3f s (ratio %.1f)\n", t1, t2, t2 / t1);
    /* 4x the nodes: 4x the time when linear, 10x to 25x here where the plan's tensors outgrow the
     * caches; the arena's former first fit over every tensor placed before took 57x (0.53 s and
     * 30 s of CPU) */
    assert_true(t2 / t1 < 35.0);
    free(b1);
    free(b2);
}

/* A cycle (a -> b -> a) behind a valid start is still refused. */
static void test_cycle_refused(void **state) {
    (void)state;
    char *n0in[1] = {"x"}, *n0out[1] = {"a"}, *n1in[2] = {"a", "c"}, *n1out[1] = {"b"}, *n2in[1] = {"b"},
         *n2out[1] = {"c"};
    Onnx__NodeProto n[3], *np[3];
    const char *ops[3] = {"Relu", "Add", "Relu"};
    char **ins[3] = {n0in, n1in, n2in}, **outs[3] = {n0out, n1out, n2out};
    size_t nin[3] = {1, 2, 1};
    for (int i = 0; i < 3; i++) {
        onnx__node_proto__init(&n[i]);
        n[i].op_type = (char *)ops[i];
        n[i].n_input = nin[i];
        n[i].input = ins[i];
        n[i].n_output = 1;
        n[i].output = outs[i];
        np[i] = &n[i];
    }
    Onnx__TypeProto ty[2];
    Onnx__TypeProto__Tensor tt[2];
    Onnx__TensorShapeProto sh[2];
    Onnx__TensorShapeProto__Dimension d[4], *dp[4];
    Onnx__ValueInfoProto vin, vout, *pin, *pout;
    pin = vi_1x4("x", &ty[0], &tt[0], &sh[0], d, dp, &vin);
    pout = vi_1x4("c", &ty[1], &tt[1], &sh[1], d + 2, dp + 2, &vout);
    Onnx__GraphProto g;
    onnx__graph_proto__init(&g);
    g.name = "cycle";
    g.n_node = 3;
    g.node = np;
    g.n_input = 1;
    g.input = &pin;
    g.n_output = 1;
    g.output = &pout;
    size_t len;
    uint8_t *buf = pack_model(&g, &len);
    maybe_write_seed("cycle.onnx", buf, len);
    vt_model_opts o = {1, 0};
    vt_model *m = NULL;
    assert_int_equal(vt_model_load_mem(buf, len, "cycle.onnx", &o, &m), VT_ECORRUPT);
    assert_non_null(strstr(vt_errmsg(), "cycle"));
    free(buf);
}

int main(void) {
    /* keep freed memory in the heap between loads: otherwise a large model's load also pays for
     * the page faults of regrowing it, a cost of the machine rather than of the loader */
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_huge_shape_short_data),
        cmocka_unit_test(test_long_chain_loads_in_linear_time),
        cmocka_unit_test(test_long_chain_plans_in_linear_time),
        cmocka_unit_test(test_cycle_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
