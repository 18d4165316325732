/* cmd_train.c: `vitrine train`: train the CNN on a catalog and export it as ONNX. */
#include "cli.h"
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("Usage: vitrine train --images DIR --meta FILE -o MODEL.onnx [options]\n\n"
           "Trains a compact residual CNN on the catalog's photos, with one classification head per label\n"
           "column and a low-dimensional embedding, and writes it as ONNX (output \"embedding\",\n"
           "L2-normalised, plus \"logits_<column>\"; preprocessing and vocabularies in its metadata).\n"
           "A checkpoint MODEL.onnx.ckpt is written after every epoch.\n\n"
           "Data:\n"
           "      --images DIR         the photos (DIR/<id>.jpg|.png|.webp)\n"
           "      --meta FILE          catalog feed: CSV with a header (styles.csv) or JSON Lines\n"
           "      --labels A,B,...     label columns (default articleType,baseColour,gender)\n"
           "      --min-count N        values with fewer items fold into \"other\" (default 10)\n"
           "      --val F              fraction held out for validation, by item (default 0.1)\n"
           "      --limit N            use only the first N items\n"
           "      --size S             network input side (default 64)\n"
           "      --fit MODE           letterbox (default) or stretch; stored in the model\n"
           "      --no-augment         no random crop / rotation / flip / colour jitter\n"
           "      --src-aspect R       resize photos to width/height R before fitting (0.75 undoes\n"
           "                           3:4 portraits squashed to squares, as in fashion-products)\n"
           "Network:\n"
           "      --width W            base channels of the residual net (default 32)\n"
           "      --depth D            basic blocks per stage (default 1)\n"
           "      --embed N            embedding size (default 128)\n"
           "      --dropout P          dropout before the heads (default 0.1)\n"
           "      --embed-mix SPEC     form the exported \"embedding\" from parts: e.g.\n"
           "                           embedding:1,articleType:1,baseColour:0.5 concatenates the\n"
           "                           normalised learned embedding and the named heads' softmax,\n"
           "                           each times its weight, then L2-normalises (default: the\n"
           "                           learned embedding alone). Validation P@10 uses the same\n"
           "                           vectors; --resume of a finished checkpoint re-exports with\n"
           "                           another mix without training\n"
           "Optimisation:\n"
           "  -e, --epochs E           (default 10)\n"
           "  -b, --batch B            (default 64)\n"
           "      --optimizer NAME     adamw (default) or sgd (momentum 0.9)\n"
           "      --lr X               peak learning rate (default adamw 2e-3, sgd 0.1)\n"
           "      --wd X               weight decay (default adamw 0.05 decoupled, sgd 5e-4)\n"
           "      --momentum X         SGD momentum (default 0.9)\n"
           "      --schedule NAME      cosine (default, after --warmup) or onecycle\n"
           "      --warmup E           warm-up epochs (default 1)\n"
           "      --label-smoothing X  (default 0.1)\n"
           "Run:\n"
           "      --seed N             (default 1); same seed and threads give bit-identical weights\n"
           "  -t, --threads T          (default: all CPUs)\n"
           "      --checkpoint FILE    where to write checkpoints (default MODEL.onnx.ckpt)\n"
           "      --resume CKPT        continue an interrupted run (same options; --embed-mix may differ)\n"
           "      --stop-after E       stop after epoch E as if interrupted\n"
           "      --eval-train         also report accuracy on the training items at the end\n"
           "      --split-out FILE     write the train/validation split (id<TAB>train|val per line)\n"
           "      --raw-embedding      export \"embedding\" without the final LpNormalization node\n"
           "                           (for engines that lack it; normalise after reading)\n"
           "  -o, --out MODEL.onnx     the model to write\n"
           "  -h, --help               this text\n");
}

static void on_epoch(const vt_train_epoch *e, void *user) {
    (void)user;
    printf("epoch %d/%d  loss %.4f  train", e->epoch, e->epochs, e->train_loss);
    for (int h = 0; h < e->nheads; h++) printf(" %s %.3f", e->heads[h], e->train_acc[h]);
    if (e->val_acc[0] >= 0) {
        printf("  val");
        for (int h = 0; h < e->nheads; h++) printf(" %s %.3f", e->heads[h], e->val_acc[h]);
    }
    if (e->val_p10 >= 0) printf("  P@10 %.3f", e->val_p10);
    if (e->val_p10_pair >= 0) printf(" / %.3f", e->val_p10_pair);
    printf("  %.1f img/s  %.1f s\n", e->images_per_s, e->seconds);
    fflush(stdout);
}

int vt_cmd_train(int argc, char **argv) {
    enum { O_IMAGES = 256, O_META, O_LABELS, O_MINC, O_VAL, O_LIMIT, O_SIZE, O_FIT, O_NOAUG, O_WIDTH, O_DEPTH, O_EMBED,
           O_DROP, O_OPT, O_LR, O_WD, O_MOM, O_SCHED, O_WARM, O_LS, O_SEED, O_CKPT, O_RESUME, O_STOP, O_EVTR, O_SPLIT, O_ASPECT, O_RAW, O_MIX };
    static const struct option opts[] = {
        {"images", required_argument, 0, O_IMAGES}, {"meta", required_argument, 0, O_META},
        {"labels", required_argument, 0, O_LABELS}, {"min-count", required_argument, 0, O_MINC},
        {"val", required_argument, 0, O_VAL},       {"limit", required_argument, 0, O_LIMIT},
        {"size", required_argument, 0, O_SIZE},     {"fit", required_argument, 0, O_FIT},
        {"no-augment", no_argument, 0, O_NOAUG},    {"width", required_argument, 0, O_WIDTH},
        {"depth", required_argument, 0, O_DEPTH},   {"embed", required_argument, 0, O_EMBED},
        {"dropout", required_argument, 0, O_DROP},  {"optimizer", required_argument, 0, O_OPT},
        {"lr", required_argument, 0, O_LR},         {"wd", required_argument, 0, O_WD},
        {"momentum", required_argument, 0, O_MOM},  {"schedule", required_argument, 0, O_SCHED},
        {"warmup", required_argument, 0, O_WARM},   {"label-smoothing", required_argument, 0, O_LS},
        {"seed", required_argument, 0, O_SEED},     {"checkpoint", required_argument, 0, O_CKPT},
        {"resume", required_argument, 0, O_RESUME}, {"stop-after", required_argument, 0, O_STOP},
        {"eval-train", no_argument, 0, O_EVTR},     {"epochs", required_argument, 0, 'e'},
        {"split-out", required_argument, 0, O_SPLIT}, {"src-aspect", required_argument, 0, O_ASPECT},
        {"raw-embedding", no_argument, 0, O_RAW},   {"embed-mix", required_argument, 0, O_MIX},
        {"batch", required_argument, 0, 'b'},       {"threads", required_argument, 0, 't'},
        {"out", required_argument, 0, 'o'},         {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    vt_train_opts o;
    vt_train_opts_init(&o);
    const char *env = getenv("VITRINE_PROGRESS");
    if (env && !strcmp(env, "0")) o.progress = 0;
    optind = 1;
    int c;
    long v;
    double d;
#define INT_OPT(field, lo, hi, msg)                                                                \
    do {                                                                                           \
        if (cli_parse_int(optarg, lo, hi, &v)) return cli_usage_error("train", msg);              \
        o.field = (int)v;                                                                          \
    } while (0)
#define FLT_OPT(field, cond, msg)                                                                  \
    do {                                                                                           \
        if (cli_parse_float(optarg, &d) || !(cond)) return cli_usage_error("train", msg);         \
        o.field = d;                                                                               \
    } while (0)
    while ((c = getopt_long(argc, argv, "e:b:t:o:h", opts, NULL)) != -1) {
        switch (c) {
        case O_IMAGES: o.images_dir = optarg; break;
        case O_META: o.meta = optarg; break;
        case O_LABELS: o.labels = optarg; break;
        case O_MINC: INT_OPT(min_count, 1, 1000000, "--min-count must be a positive integer"); break;
        case O_VAL: FLT_OPT(val, d >= 0 && d < 1, "--val must be in [0, 1)"); break;
        case O_LIMIT: INT_OPT(limit, 0, 100000000, "--limit must be a non-negative integer"); break;
        case O_SIZE: INT_OPT(size, 16, 1024, "--size must be 16..1024"); break;
        case O_FIT:
            if (cli_parse_fit(optarg, &o.fit)) return cli_usage_error("train", "--fit must be letterbox or stretch");
            break;
        case O_NOAUG: o.augment = 0; break;
        case O_WIDTH: INT_OPT(width, 4, 512, "--width must be 4..512"); break;
        case O_DEPTH: INT_OPT(depth, 1, 16, "--depth must be 1..16"); break;
        case O_EMBED: INT_OPT(embed_dim, 2, 4096, "--embed must be 2..4096"); break;
        case O_DROP: FLT_OPT(dropout, d >= 0 && d < 1, "--dropout must be in [0, 1)"); break;
        case O_OPT:
            if (!strcmp(optarg, "sgd")) o.optimizer = 0;
            else if (!strcmp(optarg, "adamw")) o.optimizer = 1;
            else return cli_usage_error("train", "--optimizer must be sgd or adamw");
            break;
        case O_LR: FLT_OPT(lr, d > 0 && d < 10, "--lr must be a positive number"); break;
        case O_WD: FLT_OPT(wd, d >= 0 && d < 1, "--wd must be in [0, 1)"); break;
        case O_MOM: FLT_OPT(momentum, d >= 0 && d < 1, "--momentum must be in [0, 1)"); break;
        case O_SCHED:
            if (!strcmp(optarg, "cosine")) o.schedule = 0;
            else if (!strcmp(optarg, "onecycle")) o.schedule = 1;
            else return cli_usage_error("train", "--schedule must be cosine or onecycle");
            break;
        case O_WARM: FLT_OPT(warmup_epochs, d >= 0 && d <= 1000, "--warmup must be a non-negative number of epochs"); break;
        case O_LS: FLT_OPT(label_smoothing, d >= 0 && d < 1, "--label-smoothing must be in [0, 1)"); break;
        case O_SEED:
            if (cli_parse_int(optarg, 0, 0x7fffffffffffffffL, &v)) return cli_usage_error("train", "bad --seed");
            o.seed = (uint64_t)v;
            break;
        case O_CKPT: o.checkpoint = optarg; break;
        case O_RESUME: o.resume = optarg; break;
        case O_STOP: INT_OPT(stop_after, 0, 100000, "--stop-after must be a non-negative integer"); break;
        case O_EVTR: o.eval_train = 1; break;
        case O_SPLIT: o.split_out = optarg; break;
        case O_RAW: o.raw_embedding = 1; break;
        case O_MIX: o.embed_mix = optarg; break;
        case O_ASPECT: FLT_OPT(src_aspect, d > 0 && d <= 10, "--src-aspect must be a width/height ratio in (0, 10]"); break;
        case 'e': INT_OPT(epochs, 1, 100000, "--epochs must be a positive integer"); break;
        case 'b': INT_OPT(batch, 2, 4096, "--batch must be 2..4096"); break;
        case 't': INT_OPT(threads, 0, 1024, "--threads must be 0..1024"); break;
        case 'o': o.out = optarg; break;
        case 'h': help(); return VT_EXIT_OK;
        default: return cli_usage_error("train", "unknown option");
        }
    }
#undef INT_OPT
#undef FLT_OPT
    if (optind < argc) return cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (!o.images_dir || !o.meta) return cli_usage_error("train", "--images DIR and --meta FILE are required");
    if (!o.out) return cli_usage_error("train", "missing -o MODEL.onnx");
    o.on_epoch = on_epoch;
    vt_train_result r;
    int rc = vt_train(&o, &r);
    if (rc) return cli_fail(rc, "train");
    if (r.images_per_s > 0)
        printf("trained on %d items (%d training, %d validation), %lld parameters, %d epochs, %.1f img/s, %.1f s\n",
               r.items, r.train_items, r.val_items, (long long)r.params, r.epochs_done, r.images_per_s, r.seconds);
    else /* --resume of a finished checkpoint: nothing trained, only evaluated and exported */
        printf("no epoch left to train: %d items (%d training, %d validation), %lld parameters, %d epochs done, %.1f s\n",
               r.items, r.train_items, r.val_items, (long long)r.params, r.epochs_done, r.seconds);
    if (r.heldout_p10 >= 0) {
        printf("held-out P@10 (validation items querying all %d items): %.4f", r.items, r.heldout_p10);
        if (r.heldout_p10_pair >= 0) printf(" / %.4f", r.heldout_p10_pair);
        printf("\n");
    }
    if (o.eval_train) {
        printf("training-set accuracy:");
        for (int h = 0; h < r.nheads; h++) printf(" %.4f", r.train_acc[h]);
        printf("\n");
    }
    printf("weights hash %016llx\nwrote %s\n", (unsigned long long)r.weights_hash, o.out);
    return VT_EXIT_OK;
}
