/* cmd_embed.c: `vitrine embed`: run a CNN over photos and write one L2-normalised embedding per image. */
#include "cli.h"
#include "core/internal.h"
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

static void help(void) {
    printf("Usage: vitrine embed [--model MODEL.onnx] --out X.f32 [--tensor NAME] [options] IMAGE_OR_DIR...\n\n"
           "Decodes and fits every image (folders: every .jpg/.jpeg/.png/.webp directly inside, sorted),\n"
           "runs the network in batches and writes one L2-normalised float32 row per image to X.f32,\n"
           "in the order of the ids (file names without extension) written one per line to X.ids.\n"
           "Images that cannot be read are reported and skipped (exit status 3).\n\n"
           "Options:\n"
           "  -m, --model FILE     the ONNX model (default: $VITRINE_MODEL, else the shipped default\n"
           "                       model vitrine-fashion.onnx; see `vitrine --help`)\n"
           "  -o, --out FILE       embeddings output (the id list goes next to it, extension .ids)\n"
           "      --tensor NAME    tensor to read (default: the layer before the classifier, see\n"
           "                       `vitrine model info`)\n"
           "  -b, --batch B        images per inference batch (default 16)\n"
           "  -t, --threads T      threads (default: all CPUs)\n"
           "      --size N         override the input size from the model\n"
           "      --mean R,G,B     override the normalisation mean\n"
           "      --std R,G,B      override the normalisation std\n"
           "      --bgr | --rgb    override the channel order\n"
           "      --fit MODE       override letterbox|stretch\n"
           "      --bf16           compute convolutions in bfloat16\n"
           "  -h, --help           this text\n");
}

typedef struct {
    char **files;
    int base;
    int count;
    float *x;
    int *ok;
    vt_preproc pp;
    vt_decode_opts dopts;
} prep_ctx;

static void prep_one(void *p, size_t i, int worker) {
    (void)worker;
    prep_ctx *c = p;
    size_t plane = (size_t)3 * (size_t)c->pp.size * (size_t)c->pp.size;
    vt_image img, sq;
    int rc = vt_image_load(c->files[c->base + (int)i], &c->dopts, &img);
    if (rc == 0) {
        rc = vt_image_fit(&img, c->pp.size, c->pp.fit, &sq);
        vt_image_free(&img);
        if (rc == 0) {
            vt_image_to_chw(&sq, c->pp.mean, c->pp.std, c->pp.bgr, c->x + i * plane);
            vt_image_free(&sq);
        }
    }
    c->ok[i] = rc == 0;
    if (rc) {
        vt_log(VT_LOG_WARN, "%s", vt_errmsg());
        memset(c->x + i * plane, 0, plane * sizeof(float));
    }
}

static int parse3(const char *s, float out[3]) {
    char *end;
    for (int i = 0; i < 3; i++) {
        out[i] = strtof(s, &end);
        if (end == s) return -1;
        s = end;
        if (*s == ',') s++;
    }
    return *s ? -1 : 0;
}

int vt_cmd_embed(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"out", required_argument, 0, 'o'},
        {"tensor", required_argument, 0, 'T'}, {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'}, {"size", required_argument, 0, 's'},
        {"mean", required_argument, 0, 'M'},  {"std", required_argument, 0, 'D'},
        {"bgr", no_argument, 0, 'g'},         {"rgb", no_argument, 0, 'r'},
        {"fit", required_argument, 0, 'f'},   {"bf16", no_argument, 0, 'B'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *model = NULL, *outp = NULL, *tensor = NULL, *mean = NULL, *stdv = NULL, *fit = NULL;
    long batch = 16, threads = 0, size = 0;
    int bgr = -1, bf16 = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:o:b:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'o': outp = optarg; break;
        case 'T': tensor = optarg; break;
        case 'b':
            if (cli_parse_int(optarg, 1, 1024, &batch)) return cli_usage_error("embed", "--batch must be 1..1024");
            break;
        case 't':
            if (cli_parse_int(optarg, 0, 1024, &threads)) return cli_usage_error("embed", "--threads must be 0..1024");
            break;
        case 's':
            if (cli_parse_int(optarg, 8, 4096, &size)) return cli_usage_error("embed", "--size must be 8..4096");
            break;
        case 'M': mean = optarg; break;
        case 'D': stdv = optarg; break;
        case 'g': bgr = 1; break;
        case 'r': bgr = 0; break;
        case 'f': fit = optarg; break;
        case 'B': bf16 = 1; break;
        case 'h': help(); return VT_EXIT_OK;
        default: return cli_usage_error("embed", "unknown option");
        }
    }
    if (!outp) return cli_usage_error("embed", "--out is required");
    if (optind >= argc) return cli_usage_error("embed", "no IMAGE_OR_DIR given");
    char defmodel[4096];
    if (!model) {
        int ex = cli_default_model_for("embed", defmodel, sizeof defmodel);
        if (ex) return ex;
        model = defmodel;
    }
    vt_model_opts mo = {(int)threads, bf16};
    vt_model *m;
    int rc = vt_model_load(model, &mo, &m);
    if (rc) return cli_fail(rc, NULL);
    vt_preproc pp;
    rc = vt_model_preproc(m, &pp);
    if (rc) {
        vt_model_free(m);
        return cli_fail(rc, "preprocessing metadata");
    }
    if (size) pp.size = (int)size;
    if (mean && parse3(mean, pp.mean)) return cli_usage_error("embed", "--mean must be R,G,B");
    if (stdv && (parse3(stdv, pp.std) || !pp.std[0] || !pp.std[1] || !pp.std[2]))
        return cli_usage_error("embed", "--std must be three non-zero numbers");
    if (bgr >= 0) pp.bgr = bgr;
    if (fit && cli_parse_fit(fit, &pp.fit)) return cli_usage_error("embed", "--fit must be letterbox or stretch");
    if (!tensor) tensor = vt_model_embedding_tensor(m);

    /* gather the file list */
    int nfiles = 0, cap = 64;
    char **files = malloc((size_t)cap * sizeof *files);
    for (int a = optind; files && a < argc; a++) {
        struct stat st;
        if (stat(argv[a], &st) == 0 && S_ISDIR(st.st_mode)) {
            char **l;
            int n = cli_list_images(argv[a], &l);
            if (n < 0) continue;
            for (int i = 0; i < n; i++) {
                if (nfiles == cap) files = realloc(files, (size_t)(cap *= 2) * sizeof *files);
                if (!files) break;
                files[nfiles++] = l[i];
            }
            free(l);
        } else {
            if (nfiles == cap) files = realloc(files, (size_t)(cap *= 2) * sizeof *files);
            if (!files) break;
            files[nfiles++] = strdup(argv[a]);
        }
    }
    if (!files || nfiles == 0) {
        fprintf(stderr, "vitrine embed: no images\n");
        free(files);
        vt_model_free(m);
        return VT_EXIT_FAIL;
    }
    char idpath[4096];
    snprintf(idpath, sizeof idpath, "%s", outp);
    size_t ol = strlen(idpath);
    if (ol > 4 && !strcmp(idpath + ol - 4, ".f32")) idpath[ol - 4] = 0;
    strncat(idpath, ".ids", sizeof idpath - strlen(idpath) - 1);
    FILE *fo = fopen(outp, "wb"), *fi = fopen(idpath, "w");
    if (!fo || !fi) {
        fprintf(stderr, "vitrine embed: cannot write %s / %s\n", outp, idpath);
        if (fo) fclose(fo);
        if (fi) fclose(fi);
        cli_free_list(files, nfiles);
        vt_model_free(m);
        return VT_EXIT_FAIL;
    }
    vt_pool *pool = NULL;
    vt_pool_create((int)threads, &pool);
    size_t plane = (size_t)3 * (size_t)pp.size * (size_t)pp.size;
    float *x = malloc((size_t)batch * plane * sizeof(float));
    int *ok = calloc((size_t)batch, sizeof(int));
    prep_ctx pc = {files, 0, 0, x, ok, pp, {0}};
    pc.dopts.fast = 1;
    if (pp.fit == VT_FIT_LETTERBOX) pc.dopts.min_long = pp.size;
    else pc.dopts.min_short = pp.size;
    vt_progress *prog = NULL;
    vt_progress_create("embed", (uint64_t)nfiles, "img", &prog);
    int failed = 0, written = 0, dim = -1;
    int ex = VT_EXIT_OK;
    double t0 = vt_now();
    for (int base = 0; x && ok && base < nfiles; base += (int)batch) {
        int cnt = nfiles - base < batch ? nfiles - base : (int)batch;
        pc.base = base;
        pc.count = cnt;
        vt_pool_parallel_for(pool, (size_t)cnt, 1, prep_one, &pc);
        float *y;
        int64_t shp[8];
        int rank;
        rc = vt_model_run(m, x, cnt, 3, pp.size, pp.size, tensor, &y, shp, &rank);
        if (rc) {
            ex = cli_fail(rc, "inference failed");
            break;
        }
        size_t tot = 1;
        for (int i = 0; i < rank; i++) tot *= (size_t)shp[i];
        size_t d = rank >= 1 && shp[0] == cnt ? tot / (size_t)cnt : 0;
        if (!d || (dim >= 0 && (int)d != dim)) {
            fprintf(stderr, "vitrine embed: tensor '%s' does not have one row per image\n", tensor);
            free(y);
            ex = VT_EXIT_FAIL;
            break;
        }
        dim = (int)d;
        for (int i = 0; i < cnt; i++) {
            if (!ok[i]) {
                failed++;
                continue;
            }
            float *r = y + (size_t)i * d;
            double s = 0;
            for (size_t j = 0; j < d; j++) s += (double)r[j] * r[j];
            float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.f;
            for (size_t j = 0; j < d; j++) r[j] *= inv;
            char stem[1024];
            vt__path_stem(files[base + i], stem, sizeof stem);
            if (fwrite(r, sizeof(float), d, fo) != d || fprintf(fi, "%s\n", stem) < 0) {
                ex = VT_EXIT_FAIL;
                break;
            }
            written++;
        }
        free(y);
        vt_progress_add(prog, (uint64_t)cnt, NULL);
        if (ex) break;
    }
    double dt = vt_now() - t0;
    vt_progress_finish(prog);
    if (fclose(fo)) ex = VT_EXIT_FAIL;
    if (fclose(fi)) ex = VT_EXIT_FAIL;
    if (!x || !ok) ex = VT_EXIT_FAIL;
    if (ex == VT_EXIT_OK) {
        printf("%d images -> %s (%d x %d float32, tensor %s), ids -> %s; %d failed; %.1f images/s\n", written, outp,
               written, dim, tensor, idpath, failed, nfiles / dt);
        if (failed) ex = VT_EXIT_PARTIAL;
    }
    free(x);
    free(ok);
    vt_pool_free(pool);
    cli_free_list(files, nfiles);
    vt_model_free(m);
    return ex;
}
