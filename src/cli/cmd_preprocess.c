/* cmd_preprocess.c: `vitrine preprocess`: write what the network sees; benchmark the decode path. */
#include "cli.h"
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("Usage: vitrine preprocess IMAGE -o OUT.png [--size N] [--fit letterbox|stretch]\n"
           "                          [--augment [--seed S]]\n"
           "       vitrine preprocess --bench DIR [--threads T] [--size N] [--fit MODE] [--exact]\n\n"
           "The first form decodes IMAGE (JPEG, PNG or WebP), fits it to an N x N square and writes\n"
           "the result as a PNG, so you can look at exactly what the network is given.\n"
           "The second form decodes and fits every image in DIR and prints images/s.\n\n"
           "Options:\n"
           "  -o, --out FILE     output PNG (first form)\n"
           "  -s, --size N       side of the square network input (default 224)\n"
           "      --fit MODE     letterbox: keep aspect, pad with white (default);\n"
           "                     stretch: squash to a square\n"
           "  -a, --augment      apply random training augmentation (crop, rotation, flip, colour)\n"
           "      --seed S       seed for --augment (default 1); the same seed gives the same view\n"
           "      --max-mp M     refuse images above M megapixels (default 100)\n"
           "      --bench DIR    benchmark mode over every .jpg/.jpeg/.png/.webp in DIR\n"
           "  -t, --threads T    worker threads for --bench (default: all CPUs)\n"
           "      --exact        --bench: exact JPEG decode (slow IDCT, fancy upsampling, no DCT\n"
           "                     scaling) instead of the fast path vitrine uses for network inputs\n"
           "  -h, --help         this text\n");
}

typedef struct {
    char **files;
    int size;
    vt_fit_mode fit;
    vt_decode_opts dopts;
    int *failed;
    vt_progress *prog;
} bench_ctx;

static void bench_one(void *p, size_t i, int worker) {
    (void)worker;
    bench_ctx *c = p;
    vt_image img, sq;
    int rc = vt_image_load(c->files[i], &c->dopts, &img);
    if (rc == 0) {
        rc = vt_image_fit(&img, c->size, c->fit, &sq);
        vt_image_free(&img);
        vt_image_free(&sq);
    }
    if (rc) {
        __atomic_add_fetch(c->failed, 1, __ATOMIC_RELAXED);
        vt_log(VT_LOG_WARN, "%s", vt_errmsg());
    }
    vt_progress_add(c->prog, 1, NULL);
}

static int run_bench(const char *dir, int threads, int size, vt_fit_mode fit, const vt_decode_opts *dopts) {
    char **files;
    int n = cli_list_images(dir, &files);
    if (n < 0) return VT_EXIT_FAIL;
    if (n == 0) {
        fprintf(stderr, "vitrine: %s: no .jpg, .jpeg, .png or .webp files\n", dir);
        cli_free_list(files, 0);
        return VT_EXIT_FAIL;
    }
    vt_pool *pool;
    int rc = vt_pool_create(threads, &pool);
    if (rc) {
        cli_free_list(files, n);
        return cli_fail(rc, "thread pool");
    }
    int failed = 0;
    bench_ctx c = {files, size, fit, *dopts, &failed, NULL};
    vt_progress_create("preprocess", (uint64_t)n, "img", &c.prog);
    double t0 = vt_now();
    vt_pool_parallel_for(pool, (size_t)n, 4, bench_one, &c);
    double dt = vt_now() - t0;
    vt_progress_finish(c.prog);
    printf("%d images (%d failed) in %.3f s with %d threads: %.1f images/s\n", n, failed, dt,
           vt_pool_threads(pool), n / dt);
    vt_pool_free(pool);
    cli_free_list(files, n);
    return failed ? VT_EXIT_PARTIAL : VT_EXIT_OK;
}

int vt_cmd_preprocess(int argc, char **argv) {
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'},   {"size", required_argument, 0, 's'},
        {"fit", required_argument, 0, 'f'},   {"augment", no_argument, 0, 'a'},
        {"seed", required_argument, 0, 'S'},  {"bench", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'}, {"max-mp", required_argument, 0, 'm'},
        {"exact", no_argument, 0, 'e'},       {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *out = NULL, *bench = NULL;
    long size = 224, seed = 1, threads = 0;
    double max_mp = 100;
    int augment = 0, exact = 0;
    vt_fit_mode fit = VT_FIT_LETTERBOX;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:s:at:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 's':
            if (cli_parse_int(optarg, 8, 4096, &size)) return cli_usage_error("preprocess", "--size must be 8..4096");
            break;
        case 'f':
            if (cli_parse_fit(optarg, &fit)) return cli_usage_error("preprocess", "--fit must be letterbox or stretch");
            break;
        case 'a': augment = 1; break;
        case 'S':
            if (cli_parse_int(optarg, 0, 0x7fffffffL, &seed)) return cli_usage_error("preprocess", "bad --seed");
            break;
        case 'b': bench = optarg; break;
        case 't':
            if (cli_parse_int(optarg, 0, 1024, &threads)) return cli_usage_error("preprocess", "--threads must be 0..1024");
            break;
        case 'm':
            if (cli_parse_float(optarg, &max_mp) || max_mp <= 0)
                return cli_usage_error("preprocess", "--max-mp must be a positive number");
            break;
        case 'e': exact = 1; break;
        case 'h': help(); return VT_EXIT_OK;
        default: return cli_usage_error("preprocess", "unknown option");
        }
    }
    vt_decode_opts dopts = {.max_pixels = (uint64_t)(max_mp * 1e6)};
    if (!exact) {
        dopts.fast = 1;
        if (fit == VT_FIT_LETTERBOX) dopts.min_long = (int)size;
        else dopts.min_short = (int)size;
    }
    if (bench) {
        if (optind < argc) return cli_usage_error("preprocess", "--bench takes a folder, not IMAGE arguments");
        return run_bench(bench, (int)threads, (int)size, fit, &dopts);
    }
    if (optind != argc - 1) return cli_usage_error("preprocess", "expected exactly one IMAGE");
    if (!out) return cli_usage_error("preprocess", "missing -o OUT.png");
    const char *path = argv[optind];
    vt_image img, sq;
    int rc = vt_image_load(path, &dopts, &img);
    if (rc) return cli_fail(rc, "cannot read image");
    int w = img.width, h = img.height;
    if (augment) {
        vt_augment_opts ao;
        vt_augment_defaults(&ao);
        vt_rng rng;
        vt_rng_seed(&rng, (uint64_t)seed);
        rc = vt_image_augment(&img, (int)size, fit, &ao, &rng, &sq);
    } else {
        rc = vt_image_fit(&img, (int)size, fit, &sq);
    }
    vt_image_free(&img);
    if (rc) return cli_fail(rc, "preprocess");
    rc = vt_image_save_png(&sq, out);
    vt_image_free(&sq);
    if (rc) return cli_fail(rc, "cannot write output");
    printf("%s: decoded %dx%d, %s to %ldx%ld%s -> %s\n", path, w, h, fit == VT_FIT_LETTERBOX ? "letterboxed" : "stretched",
           size, size, augment ? " with augmentation" : "", out);
    return VT_EXIT_OK;
}
