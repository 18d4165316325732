/* cmd_serve.c: `vitrine serve`: the REST API and the web page over HTTP until interrupted. */
#include "cli.h"
#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

static void help(void) {
    printf("Usage: vitrine serve --db DB [--model MODEL.onnx | --model-name NAME] [--port P] [--host ADDR]\n"
           "                     [--threads T] [--max-body BYTES] [--ef E] [--index-store f32|f16|i8]\n"
           "                     [--max-upload-pixels N] [--max-decodes N] [--decode-wait MS]\n"
           "                     [--max-conns N] [--max-conns-per-ip N] [--request-timeout S]\n"
           "                     [--max-upload-memory BYTES]\n\n"
           "Serves the catalog in DB over HTTP: the REST API (docs/API.md) for any e-commerce platform\n"
           "and a web page for browsing, similar items and photo search, at http://ADDR:P/.\n"
           "Similar items use the embeddings stored for the model; photo search needs the model file.\n"
           "With neither --model nor --model-name, the default model is used when there is one (see\n"
           "`vitrine --help`); otherwise the catalog can only be browsed.\n\n"
           "Options:\n"
           "      --db DB            item store written by vitrine ingest (relative photo paths in it\n"
           "                         are read from the current folder: start where ingest ran)\n"
           "      --model FILE       ONNX model the catalog was ingested with (enables photo search;\n"
           "                         default: $VITRINE_MODEL, else the shipped default model)\n"
           "      --model-name NAME  name the embeddings are stored under (default: from --model)\n"
           "  -p, --port P          port (default 8080; 0: any free port, printed at start)\n"
           "      --host ADDR        IPv4 address to listen on (default 127.0.0.1; 0.0.0.0: all)\n"
           "  -t, --threads T        HTTP worker threads (default: all CPUs)\n"
           "      --max-body BYTES   largest accepted request body, e.g. an uploaded photo (default 16 MiB)\n"
           "      --ef E             HNSW search breadth per query (default 32: recall@10 0.99 of exact\n"
           "                         on 50,000-item benchmarks, 1.7x the search rate of 64; higher is\n"
           "                         slower and closer to exact; catalogs up to 20,000 items are\n"
           "                         always searched exactly)\n"
           "      --index-store S    vectors in the HNSW index (approximate; catalogs above 20,000\n"
           "                         items) as f16 (default: half the memory of f32 and faster,\n"
           "                         recall@10 0.990 vs 0.993 for f32 on the 50,000-item benchmark),\n"
           "                         f32, or i8 (a quarter of the memory; recall@10 0.935); f16 and\n"
           "                         i8 HNSW keep no float32 copy, so their scores are approximate\n"
           "                         too. Catalogs up to 20,000 items are scanned exactly whatever\n"
           "                         S: an f16 / i8 scan re-ranks with float32 copies kept beside.\n"
           "\nLimits on what clients can cost (docs/API.md, \"Limits\"):\n"
           "      --max-upload-pixels N  photo searches whose image declares more pixels get 413,\n"
           "                         checked from the header before decoding (default 25000000)\n"
           "      --max-decodes N    photo searches decoded at once (default 2, or 1 with fewer\n"
           "                         than 4 threads: a search holds a worker thread while decoding)\n"
           "      --decode-wait MS   how long a photo search waits for its turn before 503 with\n"
           "                         Retry-After (default 250; 0: no wait)\n"
           "      --max-conns N      connections at once (default 1024, lowered to fit ulimit -n)\n"
           "      --max-conns-per-ip N  connections at once from one address; more are closed\n"
           "                         on accept (default 32)\n"
           "      --request-timeout S  seconds a client has to send a whole request (headers and\n"
           "                         body) from connecting or from its previous request's end; then\n"
           "                         the connection is closed (default 10)\n"
           "      --max-upload-memory BYTES  request bodies buffered at once, all connections;\n"
           "                         bodies beyond get 503 with Retry-After (default 64 MiB)\n"
           "  -h, --help             this text\n\n"
           "Stops cleanly on SIGINT or SIGTERM.\n");
}

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

int vt_cmd_serve(int argc, char **argv) {
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},      {"model", required_argument, 0, 'M'},
        {"model-name", required_argument, 0, 'N'}, {"port", required_argument, 0, 'p'},
        {"host", required_argument, 0, 'H'},    {"threads", required_argument, 0, 't'},
        {"max-body", required_argument, 0, 'B'}, {"help", no_argument, 0, 'h'},
        {"ef", required_argument, 0, 'E'},      {"index-store", required_argument, 0, 'S'},
        {"max-upload-pixels", required_argument, 0, 'P'}, {"max-decodes", required_argument, 0, 'D'},
        {"decode-wait", required_argument, 0, 'W'}, {"max-conns", required_argument, 0, 'C'},
        {"max-conns-per-ip", required_argument, 0, 'I'}, {"request-timeout", required_argument, 0, 'T'},
        {"max-upload-memory", required_argument, 0, 'U'},
        {0, 0, 0, 0}};
    const char *db = NULL, *model = NULL, *model_name = NULL;
    int ef = 32; /* serving: recall@10 0.993 with 1.7x the search rate of ef 64 (docs/BENCHMARKS.md) */
    vt_index_store istore = VT_STORE_F16; /* docs/BENCHMARKS.md: faster than f32, recall 0.990 vs 0.993 */
    vt_server_opts so;
    vt_server_opts_init(&so);
    long v;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "p:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'M': model = optarg; break;
        case 'N': model_name = optarg; break;
        case 'p':
            if (cli_parse_int(optarg, 0, 65535, &v)) return cli_usage_error("serve", "--port must be 0..65535");
            so.port = (int)v;
            break;
        case 'H': so.host = optarg; break;
        case 't':
            if (cli_parse_int(optarg, 0, 1024, &v)) return cli_usage_error("serve", "--threads must be 0..1024");
            so.threads = (int)v;
            break;
        case 'B':
            if (cli_parse_int(optarg, 1024, 1L << 30, &v)) return cli_usage_error("serve", "--max-body must be 1024..1073741824");
            so.max_body = (size_t)v;
            break;
        case 'E':
            if (cli_parse_int(optarg, 1, 100000, &v)) return cli_usage_error("serve", "--ef must be 1..100000");
            ef = (int)v;
            break;
        case 'S':
            if (cli_parse_store(optarg, &istore)) return cli_usage_error("serve", "--index-store must be f32, f16 or i8");
            break;
        case 'P':
            if (cli_parse_int(optarg, 1, 1000000000L, &v))
                return cli_usage_error("serve", "--max-upload-pixels must be 1..1000000000");
            so.max_upload_pixels = (uint64_t)v;
            break;
        case 'D':
            if (cli_parse_int(optarg, 1, 1024, &v)) return cli_usage_error("serve", "--max-decodes must be 1..1024");
            so.max_decodes = (int)v;
            break;
        case 'W':
            if (cli_parse_int(optarg, 0, 60000, &v)) return cli_usage_error("serve", "--decode-wait must be 0..60000");
            so.decode_wait_ms = v ? (int)v : -1;
            break;
        case 'C':
            if (cli_parse_int(optarg, 1, 1000000, &v)) return cli_usage_error("serve", "--max-conns must be 1..1000000");
            so.max_conns = (int)v;
            break;
        case 'I':
            if (cli_parse_int(optarg, 1, 1000000, &v))
                return cli_usage_error("serve", "--max-conns-per-ip must be 1..1000000");
            so.max_conns_per_ip = (int)v;
            break;
        case 'T':
            if (cli_parse_int(optarg, 1, 3600, &v)) return cli_usage_error("serve", "--request-timeout must be 1..3600");
            so.request_timeout = (int)v;
            break;
        case 'U':
            if (cli_parse_int(optarg, 1024, 1L << 34, &v))
                return cli_usage_error("serve", "--max-upload-memory must be 1024..17179869184");
            so.max_upload_memory = (size_t)v;
            break;
        case 'h': help(); return VT_EXIT_OK;
        default: return cli_usage_error("serve", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    if (!db) return cli_usage_error("serve", "missing --db DB");
    struct in_addr addr; /* checked before anything is loaded, which can take a while */
    if (inet_pton(AF_INET, so.host, &addr) != 1)
        return cli_usage_error("serve", "--host must be an IPv4 address such as 127.0.0.1 or 0.0.0.0 (got '%s')", so.host);
    char defmodel[4096];
    int rc;
    if (!model && !model_name) {
        rc = cli_default_model(defmodel, sizeof defmodel);
        if (rc == 0) {
            model = defmodel;
            if (!cli_quiet()) fprintf(stderr, "serve: model %s (default)\n", model);
        } else if (rc != VT_ENOTFOUND) { /* a bad $VITRINE_MODEL: the user's choice, not ignored */
            return cli_fail(rc, "serve");
        }
    }
    vt_store *st;
    rc = vt_store_open(db, VT_STORE_READONLY, &st);
    if (rc) return cli_fail(rc, "cannot open the store");
    vt_engine *e = NULL;
    if (model || model_name) {
        vt_engine_opts eo;
        vt_engine_opts_init(&eo);
        eo.model_path = model;
        eo.model_name = model_name;
        eo.index_cache = db;
        eo.ef = ef;
        eo.index_store = istore;
        double t0 = vt_now();
        rc = vt_engine_open(st, &eo, &e);
        if (rc) {
            vt_store_close(st);
            return cli_fail(rc, "cannot prepare similar-item search");
        }
        fprintf(stderr, "serve: indexed %zu embeddings of model '%s' (dim %d) in %.1f s\n", vt_engine_size(e),
                vt_engine_model_name(e), vt_engine_dim(e), vt_now() - t0);
    } else {
        fprintf(stderr, "serve: no --model or --model-name and no default model: browsing only, no similar items or "
                        "photo search\n");
    }
    vt_server *srv;
    rc = vt_server_start(st, e, &so, &srv);
    if (rc) {
        vt_engine_free(e);
        vt_store_close(st);
        return cli_fail(rc, "cannot start the server");
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("serving %s on http://%s:%d/\n", db, so.host, vt_server_port(srv));
    fflush(stdout);
    while (!g_stop) pause();
    fprintf(stderr, "serve: stopping\n");
    vt_server_stop(srv);
    vt_engine_free(e);
    vt_store_close(st);
    return VT_EXIT_OK;
}
