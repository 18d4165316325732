/* main.c: the vitrine command-line tool: global options and subcommand dispatch. */
#include "cli.h"
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    vt_cmd_fn fn;
    const char *summary;
} command;

static const command commands[] = {
    {"preprocess", vt_cmd_preprocess, "show what the network sees for a photo; benchmark decoding"},
    {"model", vt_cmd_model, "inspect, run, conformance-test and benchmark ONNX models"},
    {"embed", vt_cmd_embed, "compute L2-normalised CNN embeddings of photos"},
    {"index", vt_cmd_index, "build and query similarity indexes (exact scan, HNSW) over vector files"},
    {"sample-catalog", vt_cmd_sample_catalog, "draw a procedural sample catalog (photos + styles.csv) for demos and tests"},
    {"ingest", vt_cmd_ingest, "read a catalog feed and its photos into the item store, with embeddings"},
    {"similar", vt_cmd_similar, "items that look like a catalog item"},
    {"search", vt_cmd_search, "catalog items that look like a photo"},
    {"serve", vt_cmd_serve, "REST API and web page over HTTP"},
    {"train", vt_cmd_train, "train the CNN on a catalog (photos + metadata) and export it as ONNX"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f,
            "vitrine %s: a visual fashion recommendation engine\n\n"
            "Usage: vitrine [-v|-q] COMMAND [ARGS...]\n"
            "       vitrine COMMAND --help\n\n"
            "Commands:\n",
            VT_VERSION_STRING);
    for (size_t i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\nGlobal options:\n"
            "  -v, --verbose  log more (repeat for debug); also VITRINE_LOG=debug|info|warn|error|off\n"
            "  -q, --quiet    log errors only, no progress bars (VITRINE_PROGRESS=0)\n"
            "  --version      print the version\n"
            "  -h, --help     this text\n\n"
            "Default model: embed, ingest, search, similar and serve given no --model use the file\n"
            "named by VITRINE_MODEL, else " CLI_DEFAULT_MODEL_FILE " from models/ beside the build\n"
            "directory, from PREFIX/share/vitrine/ beside an installed vitrine, or\n"
            VT_DEFAULT_MODEL_INSTALLED ".\n\n"
            "Exit status: 0 success, 1 failure, 2 usage error, 3 done but some inputs were rejected.\n");
}

int main(int argc, char **argv) {
    /* Photos are decoded into buffers of a few hundred KB each; keep those on the heap rather
     * than in fresh mmap'd pages, whose page faults cost more than the decode itself. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    int i = 1, verbose = 0;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return VT_EXIT_OK;
        } else if (!strcmp(a, "--version")) {
            printf("vitrine %s\n", VT_VERSION_STRING);
            return VT_EXIT_OK;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose++;
        } else if (!strcmp(a, "-vv")) {
            verbose += 2;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            verbose = -1;
        } else {
            fprintf(stderr, "vitrine: unknown option '%s'\nTry 'vitrine --help'.\n", a);
            return VT_EXIT_USAGE;
        }
    }
    if (verbose > 0) vt_log_set_level(verbose >= 2 ? VT_LOG_DEBUG : VT_LOG_INFO);
    if (verbose < 0) {
        vt_log_set_level(VT_LOG_ERROR);
        setenv("VITRINE_PROGRESS", "0", 1);
    }
    if (i >= argc) {
        usage(stderr);
        return VT_EXIT_USAGE;
    }
    for (size_t c = 0; c < NCOMMANDS; c++)
        if (!strcmp(argv[i], commands[c].name)) {
            /* every command may run the CNN (oneDNN over OpenMP); model and embed only run it */
            cli_omp_policy_reexec(!strcmp(argv[i], "model") || !strcmp(argv[i], "embed"));
            return commands[c].fn(argc - i, argv + i);
        }
    fprintf(stderr, "vitrine: unknown command '%s'\nTry 'vitrine --help'.\n", argv[i]);
    return VT_EXIT_USAGE;
}
