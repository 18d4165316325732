/* cmd_sample_catalog.c: `vitrine sample-catalog`: draw a procedural catalog with its styles.csv. */
#include "cli.h"
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("Usage: vitrine sample-catalog --out DIR [--n N] [--seed S] [--size PX] [--threads T]\n\n"
           "Draws N product photos (t-shirts, shirts, trousers, shorts, dresses, skirts, casual shoes,\n"
           "handbags, backpacks, caps; %d colours; solid, striped, checked or polka-dot) as\n"
           "DIR/images/<id>.jpg, and writes DIR/styles.csv with their attributes in the shape of\n"
           "Kaggle's fashion catalog (id,gender,masterCategory,subCategory,articleType,baseColour,\n"
           "season,year,usage,productDisplayName). The attributes say exactly what is drawn, so the\n"
           "right answers of a similarity search are known. The same seed gives the same files.\n\n"
           "Options:\n"
           "  -o, --out DIR      output folder (created; existing files of the same names are replaced)\n"
           "  -n, --n N          number of items (default 500)\n"
           "      --seed S       random seed (default 1)\n"
           "      --size PX      image side in pixels (default 224)\n"
           "  -t, --threads T    worker threads (default: all CPUs)\n"
           "  -h, --help         this text\n",
           vt_sample_colour_count());
}

int vt_cmd_sample_catalog(int argc, char **argv) {
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'},  {"n", required_argument, 0, 'n'},
        {"seed", required_argument, 0, 'S'}, {"size", required_argument, 0, 's'},
        {"threads", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *out = NULL;
    long n = 500, seed = 1, size = 224, threads = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:n:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'n':
            if (cli_parse_int(optarg, 1, 10000000, &n)) return cli_usage_error("sample-catalog", "--n must be 1..10000000");
            break;
        case 'S':
            if (cli_parse_int(optarg, 0, 0x7fffffffL, &seed)) return cli_usage_error("sample-catalog", "bad --seed");
            break;
        case 's':
            if (cli_parse_int(optarg, 32, 4096, &size)) return cli_usage_error("sample-catalog", "--size must be 32..4096");
            break;
        case 't':
            if (cli_parse_int(optarg, 0, 1024, &threads)) return cli_usage_error("sample-catalog", "--threads must be 0..1024");
            break;
        case 'h': help(); return VT_EXIT_OK;
        default: return cli_usage_error("sample-catalog", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("sample-catalog", "unexpected argument '%s'", argv[optind]);
    if (!out) return cli_usage_error("sample-catalog", "missing --out DIR");
    vt_sample_opts o = {.n = (int)n, .seed = (uint64_t)seed, .size = (int)size, .threads = (int)threads, .quality = 90};
    double t0 = vt_now();
    int rc = vt_sample_catalog(out, &o);
    if (rc) return cli_fail(rc, "sample-catalog");
    printf("%ld items in %s/images, attributes in %s/styles.csv (%.2f s)\n", n, out, out, vt_now() - t0);
    return VT_EXIT_OK;
}
