/* cmd_index.c: `vitrine index build|query|info`: similarity indexes over raw float32 vector files. */
#include "cli.h"
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void help(void) {
    printf("Usage: vitrine index build --vectors X.f32 --dim D [--kind flat|flat-f16|flat-i8|hnsw]\n"
           "                           [--store f32|f16|i8] [--metric cosine|dot|l2] [--m M]\n"
           "                           [--ef-construction E] [--threads T] [--seed S] -o FILE\n"
           "       vitrine index query FILE --queries Q.f32 -k K [--ef E] [--batch] [--threads T]\n"
           "                           [--split P] [--rerank N] [--out IDS.i32] [--scores S.f32] [--isa NAME]\n"
           "       vitrine index info FILE\n\n"
           "Vector files are raw little-endian float32, one row of D values per vector; row i of\n"
           "X.f32 gets label i. `query` writes K int32 row numbers per query (-1 pads) to --out and\n"
           "prints queries/s with latency p50/p99 (one query at a time, as a server asks; with\n"
           "--threads T, T threads each take queries; with --split P, each query's exact scan is\n"
           "split across P threads) or, with --batch, the batched throughput.\n\n"
           "Exact and approximate: a flat index is exact whatever its storage. flat-f16 and flat-i8\n"
           "scan the compact f16 / int8 codes for candidates, then re-rank them with float32 copies\n"
           "of the vectors kept beside (4 more bytes per dimension and item, in memory and in the\n"
           "file), so they answer what the f32 scan answers. hnsw is approximate (recall below 1,\n"
           "set by --ef); with --store f16 or i8 it keeps no float32 copy and is approximate in\n"
           "its scores too.\n\n"
           "Options:\n"
           "  --kind K              flat (exact scan; flat-f16 / flat-i8 pick the storage) or hnsw\n"
           "                        (approximate)\n"
           "  --store S             vector storage: f32 (default), f16, i8 (per-vector scale); a\n"
           "                        flat index also keeps float32 vectors for the exact re-rank\n"
           "  --metric M            cosine (default), dot or l2\n"
           "  --m M                 HNSW links per node (default 16)\n"
           "  --ef-construction E   HNSW build breadth (default 200)\n"
           "  --ef E                HNSW search breadth (default 64)\n"
           "  -t, --threads T       build / query threads (default 1; 0: all CPUs)\n"
           "  --split P             one query at a time: split each exact scan of 4 MB or more\n"
           "                        across P threads (default 1; lower latency on an idle machine)\n"
           "  --rerank N            flat-f16 / flat-i8 queries: re-rank the best N candidates of the\n"
           "                        quantised scan with the float32 vectors (default: those within\n"
           "                        the quantisation error of the k-th best, at most 8k + 64:\n"
           "                        exact); 0: no float32 re-rank (approximate: the quantised\n"
           "                        scan's answer, as before the re-rank; to measure its cost)\n"
           "  --seed S              HNSW level seed (default 42)\n"
           "  --isa NAME            force the kernels: portable, avx2, avx512 (default: best)\n"
           "  -h, --help            this text\n");
}

/* Reads a raw float32 file of rows of dim values. */
static int read_f32(const char *path, int dim, float **out, size_t *rows) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "vitrine: %s: cannot open\n", path);
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return -1;
    }
    size_t len = (size_t)st.st_size, row = (size_t)dim * 4;
    if (len == 0 || len % row) {
        fprintf(stderr, "vitrine: %s: %zu bytes is not a whole number of %d-float rows\n", path, len, dim);
        fclose(f);
        return -1;
    }
    float *v = malloc(len);
    if (!v || fread(v, 1, len, f) != len) {
        fprintf(stderr, "vitrine: %s: read failed\n", path);
        free(v);
        fclose(f);
        return -1;
    }
    fclose(f);
    *out = v;
    *rows = len / row;
    return 0;
}

static const char *kind_name(const vt_index_opts *o) { return o->kind == VT_INDEX_HNSW ? "hnsw" : "flat"; }
static const char *store_name(vt_index_store s) { return s == VT_STORE_F32 ? "f32" : s == VT_STORE_F16 ? "f16" : "i8"; }
static const char *metric_name(vt_metric m) { return m == VT_METRIC_COSINE ? "cosine" : m == VT_METRIC_DOT ? "dot" : "l2"; }

/* How exact a search of an index with these options is; rerank: --rerank (-1: default). */
static const char *exactness(const vt_index_opts *o, int rerank) {
    if (o->kind == VT_INDEX_HNSW)
        return o->store == VT_STORE_F32 ? "approximate (HNSW)" : "approximate (HNSW, quantised vectors, no float32 re-rank)";
    if (o->store == VT_STORE_F32) return "exact (float32 scan)";
    if (rerank == 0) return "approximate (quantised scan, float32 re-rank off)";
    return rerank < 0 ? "exact (quantised scan, float32 re-rank)" : "quantised scan, float32 re-rank of a fixed candidate count";
}

static int file_size(const char *path, long long *sz) {
    struct stat st;
    if (stat(path, &st)) return -1;
    *sz = (long long)st.st_size;
    return 0;
}

static int cmd_build(int argc, char **argv) {
    static const struct option opts[] = {
        {"vectors", required_argument, 0, 'x'}, {"dim", required_argument, 0, 'd'},
        {"kind", required_argument, 0, 'K'},    {"store", required_argument, 0, 's'},
        {"metric", required_argument, 0, 'm'},  {"m", required_argument, 0, 'M'},
        {"ef-construction", required_argument, 0, 'e'}, {"threads", required_argument, 0, 't'},
        {"seed", required_argument, 0, 'S'},    {"out", required_argument, 0, 'o'},
        {"isa", required_argument, 0, 'I'},     {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *vec = NULL, *out = NULL, *isa = NULL;
    long dim = 0, v;
    int store_set = 0;
    vt_index_opts o;
    vt_index_opts_init(&o);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'x': vec = optarg; break;
        case 'd':
            if (cli_parse_int(optarg, 1, 65536, &dim)) return cli_usage_error("index build", "--dim must be 1..65536");
            break;
        case 'K':
            if (!strcmp(optarg, "flat")) o.kind = VT_INDEX_FLAT;
            else if (!strcmp(optarg, "flat-f16")) { o.kind = VT_INDEX_FLAT; if (!store_set) o.store = VT_STORE_F16; }
            else if (!strcmp(optarg, "flat-i8")) { o.kind = VT_INDEX_FLAT; if (!store_set) o.store = VT_STORE_I8; }
            else if (!strcmp(optarg, "hnsw")) o.kind = VT_INDEX_HNSW;
            else return cli_usage_error("index build", "--kind must be flat, flat-f16, flat-i8 or hnsw");
            break;
        case 's':
            store_set = 1;
            if (cli_parse_store(optarg, &o.store)) return cli_usage_error("index build", "--store must be f32, f16 or i8");
            break;
        case 'm':
            if (!strcmp(optarg, "cosine")) o.metric = VT_METRIC_COSINE;
            else if (!strcmp(optarg, "dot")) o.metric = VT_METRIC_DOT;
            else if (!strcmp(optarg, "l2")) o.metric = VT_METRIC_L2;
            else return cli_usage_error("index build", "--metric must be cosine, dot or l2");
            break;
        case 'M':
            if (cli_parse_int(optarg, 2, 256, &v)) return cli_usage_error("index build", "--m must be 2..256");
            o.M = (int)v;
            break;
        case 'e':
            if (cli_parse_int(optarg, 1, 100000, &v)) return cli_usage_error("index build", "--ef-construction must be 1..100000");
            o.ef_construction = (int)v;
            break;
        case 't':
            if (cli_parse_int(optarg, 0, 1024, &v)) return cli_usage_error("index build", "--threads must be 0..1024");
            o.threads = (int)v;
            break;
        case 'S':
            if (cli_parse_int(optarg, 0, 0x7fffffffL, &v)) return cli_usage_error("index build", "bad --seed");
            o.seed = (uint64_t)v;
            break;
        case 'o': out = optarg; break;
        case 'I': isa = optarg; break;
        case 'h': help(); return VT_EXIT_OK;
        default: return cli_usage_error("index build", "unknown option");
        }
    }
    if (optind != argc) return cli_usage_error("index build", "unexpected argument '%s'", argv[optind]);
    if (!vec || !dim || !out) return cli_usage_error("index build", "--vectors, --dim and -o are required");
    if (isa && vt_index_force_isa(isa)) return cli_fail(VT_EINVAL, "--isa");
    o.dim = (int)dim;
    float *x;
    size_t n;
    if (read_f32(vec, (int)dim, &x, &n)) return VT_EXIT_FAIL;
    vt_index *idx;
    int rc = vt_index_create(&o, &idx);
    if (rc) {
        free(x);
        return cli_fail(rc, "index build");
    }
    double t0 = vt_now();
    rc = vt_index_add(idx, x, n, NULL);
    double dt = vt_now() - t0;
    free(x);
    if (rc) {
        vt_index_free(idx);
        return cli_fail(rc, "index build");
    }
    size_t mem = vt_index_memory(idx);
    rc = vt_index_save(idx, out);
    vt_index_free(idx);
    if (rc) return cli_fail(rc, "index save");
    long long fsz = 0;
    file_size(out, &fsz);
    printf("built %s/%s/%s index of %zu x %ld in %.3f s with %d threads (%s kernels): %.0f items/s\n",
           kind_name(&o), store_name(o.store), metric_name(o.metric), n, dim, dt,
           o.threads ? o.threads : vt_cpu_count(), vt_index_isa(), n / (dt > 0 ? dt : 1e-9));
    printf("memory %zu bytes (%.1f per item); file %s %lld bytes\n", mem, (double)mem / (double)n, out, fsz);
    return VT_EXIT_OK;
}

typedef struct {
    const vt_index *idx;
    const float *q;
    int dim, k;
    const vt_search_opts *so;
    int64_t *labels;
    double *lat;
    int failed;
} query_ctx;

static void query_one(void *p, size_t i, int worker) {
    (void)worker;
    query_ctx *c = p;
    double t0 = vt_now();
    int rc = vt_index_search(c->idx, c->q + i * (size_t)c->dim, c->k, c->so, c->labels + i * (size_t)c->k, NULL, NULL);
    c->lat[i] = vt_now() - t0;
    if (rc) __atomic_store_n(&c->failed, 1, __ATOMIC_RELAXED);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmd_query(int argc, char **argv) {
    static const struct option opts[] = {
        {"queries", required_argument, 0, 'q'}, {"ef", required_argument, 0, 'e'},
        {"batch", no_argument, 0, 'b'},         {"threads", required_argument, 0, 't'},
        {"out", required_argument, 0, 'o'},     {"scores", required_argument, 0, 's'},
        {"isa", required_argument, 0, 'I'},     {"help", no_argument, 0, 'h'},
        {"split", required_argument, 0, 'P'},   {"rerank", required_argument, 0, 'R'},
        {0, 0, 0, 0}};
    const char *qpath = NULL, *out = NULL, *spath = NULL, *isa = NULL;
    long k = 10, ef = 0, threads = 1, split = 1, rerank = -1; /* -1: the default (automatic) */
    int batch = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "k:o:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'q': qpath = optarg; break;
        case 'k':
            if (cli_parse_int(optarg, 1, 100000, &k)) return cli_usage_error("index query", "-k must be 1..100000");
            break;
        case 'e':
            if (cli_parse_int(optarg, 1, 1000000, &ef)) return cli_usage_error("index query", "--ef must be 1..1000000");
            break;
        case 'b': batch = 1; break;
        case 't':
            if (cli_parse_int(optarg, 0, 1024, &threads)) return cli_usage_error("index query", "--threads must be 0..1024");
            break;
        case 'P':
            if (cli_parse_int(optarg, 1, 1024, &split)) return cli_usage_error("index query", "--split must be 1..1024");
            break;
        case 'R':
            if (cli_parse_int(optarg, 0, 1 << 20, &rerank)) return cli_usage_error("index query", "--rerank must be 0..1048576");
            break;
        case 'o': out = optarg; break;
        case 's': spath = optarg; break;
        case 'I': isa = optarg; break;
        case 'h': help(); return VT_EXIT_OK;
        default: return cli_usage_error("index query", "unknown option");
        }
    }
    if (optind != argc - 1) return cli_usage_error("index query", "expected exactly one index FILE");
    if (!qpath) return cli_usage_error("index query", "--queries is required");
    if (batch && split > 1) return cli_usage_error("index query", "--split is for one query at a time, not --batch");
    if (isa && vt_index_force_isa(isa)) return cli_fail(VT_EINVAL, "--isa");
    if (threads == 0) threads = vt_cpu_count();
    vt_index *idx;
    double t0 = vt_now();
    int rc = vt_index_load(argv[optind], &idx);
    if (rc) return cli_fail(rc, "cannot load index");
    double tload = vt_now() - t0;
    vt_index_opts o;
    vt_index_get_opts(idx, &o);
    float *q;
    size_t nq;
    if (read_f32(qpath, o.dim, &q, &nq)) {
        vt_index_free(idx);
        return VT_EXIT_FAIL;
    }
    int64_t *labels = malloc(nq * (size_t)k * sizeof *labels);
    float *scores = spath ? malloc(nq * (size_t)k * sizeof *scores) : NULL;
    double *lat = malloc(nq * sizeof *lat);
    int ret = VT_EXIT_OK;
    if (!labels || !lat || (spath && !scores)) {
        fprintf(stderr, "vitrine: out of memory\n");
        ret = VT_EXIT_FAIL;
        goto done;
    }
    vt_search_opts so = {.ef = (int)ef, .threads = batch ? (int)threads : (int)split,
                         .rerank = rerank < 0 ? 0 : rerank == 0 ? -1 : (int)rerank};
    double dt;
    if (batch) {
        t0 = vt_now();
        rc = vt_index_search_batch(idx, q, nq, (int)k, &so, labels, scores);
        dt = vt_now() - t0;
        if (rc) {
            ret = cli_fail(rc, "search");
            goto done;
        }
        printf("%zu queries, batch mode, %ld threads (%s kernels): %.3f s, %.1f queries/s\n", nq, threads,
               vt_index_isa(), dt, nq / dt);
    } else {
        vt_pool *pool = NULL;
        if (threads > 1 && (rc = vt_pool_create((int)threads, &pool))) {
            ret = cli_fail(rc, "threads");
            goto done;
        }
        query_ctx qc = {idx, q, o.dim, (int)k, &so, labels, lat, 0};
        t0 = vt_now();
        vt_pool_parallel_for(pool, nq, 1, query_one, &qc);
        dt = vt_now() - t0;
        vt_pool_free(pool);
        if (qc.failed) {
            ret = cli_fail(VT_EINTERNAL, "search");
            goto done;
        }
        if (scores) /* scores are only gathered on request, outside the timed loop */
            for (size_t i = 0; i < nq; i++)
                vt_index_search(idx, q + i * (size_t)o.dim, (int)k, &so, labels + i * (size_t)k, scores + i * (size_t)k, NULL);
        qsort(lat, nq, sizeof *lat, cmp_d);
        printf("%zu queries, one at a time, %ld threads (%s kernels): %.3f s, %.1f queries/s, latency p50 %.1f us p99 %.1f us",
               nq, threads, vt_index_isa(), dt, nq / dt, lat[nq / 2] * 1e6, lat[nq * 99 / 100 < nq - 1 ? nq * 99 / 100 : nq - 1] * 1e6);
        if (split > 1) printf("; exact scans split across up to %ld threads", split);
        printf("\n");
    }
    printf("index %s/%s/%s, %zu items, loaded in %.3f s; %s\n", kind_name(&o), store_name(o.store), metric_name(o.metric),
           vt_index_size(idx), tload, exactness(&o, (int)rerank));
    if (out) {
        FILE *f = fopen(out, "wb");
        int ok = f != NULL;
        for (size_t i = 0; ok && i < nq * (size_t)k; i++) {
            int32_t r = labels[i] < 0 || labels[i] > INT32_MAX ? -1 : (int32_t)labels[i];
            ok = fwrite(&r, 4, 1, f) == 1;
        }
        if (f && fclose(f)) ok = 0;
        if (!ok) {
            fprintf(stderr, "vitrine: %s: write failed\n", out);
            ret = VT_EXIT_FAIL;
        }
    }
    if (spath && ret == VT_EXIT_OK) {
        FILE *f = fopen(spath, "wb");
        if (!f || fwrite(scores, sizeof *scores, nq * (size_t)k, f) != nq * (size_t)k) ret = VT_EXIT_FAIL;
        if (f && fclose(f)) ret = VT_EXIT_FAIL;
        if (ret) fprintf(stderr, "vitrine: %s: write failed\n", spath);
    }
done:
    free(labels);
    free(scores);
    free(lat);
    free(q);
    vt_index_free(idx);
    return ret;
}

static int cmd_info(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') {
        if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
            help();
            return VT_EXIT_OK;
        }
        return cli_usage_error("index info", "expected exactly one index FILE");
    }
    vt_index *idx;
    int rc = vt_index_load(argv[1], &idx);
    if (rc) return cli_fail(rc, "cannot load index");
    vt_index_opts o;
    vt_index_get_opts(idx, &o);
    printf("%s: %s index, storage %s, metric %s, dim %d, %zu live items, %zu bytes in memory",
           argv[1], kind_name(&o), store_name(o.store), metric_name(o.metric), o.dim, vt_index_size(idx),
           vt_index_memory(idx));
    if (o.kind == VT_INDEX_HNSW) printf(", M %d, ef_construction %d, seed %llu", o.M, o.ef_construction, (unsigned long long)o.seed);
    printf("; %s\n", exactness(&o, -1));
    vt_index_free(idx);
    return VT_EXIT_OK;
}

int vt_cmd_index(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        help();
        return argc < 2 ? VT_EXIT_USAGE : VT_EXIT_OK;
    }
    if (!strcmp(argv[1], "build")) return cmd_build(argc - 1, argv + 1);
    if (!strcmp(argv[1], "query")) return cmd_query(argc - 1, argv + 1);
    if (!strcmp(argv[1], "info")) return cmd_info(argc - 1, argv + 1);
    return cli_usage_error("index", "unknown action '%s' (build, query, info)", argv[1]);
}
