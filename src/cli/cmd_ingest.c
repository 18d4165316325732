/* cmd_ingest.c: `vitrine ingest`: read a catalog feed and its photos into the store, embedding
 * new and changed photos with a model, incrementally and crash-safely. */
#include "cli.h"
#include "core/internal.h"
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static void help(void) {
    printf("Usage: vitrine ingest --db DB --meta FILE [--images DIR] [--model MODEL.onnx | --no-embed] [options]\n"
           "       vitrine ingest --db DB --embeddings X.f32 --ids X.ids --model-name NAME [--meta FILE]\n\n"
           "Reads a catalog feed (a CSV with a header such as Kaggle's styles.csv, or JSON Lines with an\n"
           "\"id\" field) into the item store DB (SQLite; created when absent), finds each item's photo in\n"
           "DIR (<id>.jpg, .jpeg, .png or .webp, or an image/path column), and stores one embedding per\n"
           "photo computed by MODEL (default: the default model, see --model). Re-running is\n"
           "incremental: unchanged items are skipped, changed photos are re-embedded; an interrupted\n"
           "run (even killed) resumes where it stopped, because items are written in transactional\n"
           "batches.\n\n"
           "Bad input never stops the run: a malformed row, a duplicate or missing id, a missing or\n"
           "unreadable photo each go to DB.errors.jsonl (one JSON object per line: file, line, id,\n"
           "reason), rewritten on every run; rows that could not be parsed are also listed on stderr.\n"
           "Items whose photo is bad are still stored, without an embedding. Photos must be regular\n"
           "files inside the images folder: an absolute path, a '..' component or a symbolic link\n"
           "leading out of it is refused (reported, the item stored without a photo). Photo paths are\n"
           "stored absolute, with symbolic links resolved.\n\n"
           "Options:\n"
           "      --db DB            item store (SQLite file)\n"
           "      --meta FILE        catalog feed: .csv or .jsonl\n"
           "      --images DIR       folder of the photos (default: the feed's folder/images)\n"
           "      --model FILE       ONNX model for the embeddings (stored under the file's base name;\n"
           "                         default: $VITRINE_MODEL, else the shipped default model\n"
           "                         vitrine-fashion.onnx; see `vitrine --help`)\n"
           "      --no-embed         store the items only: no model, no embeddings, photos not checked\n"
           "      --model-name NAME  name to store embeddings under (default: from --model)\n"
           "      --embeddings X.f32 import precomputed vectors: raw little-endian float32 rows...\n"
           "      --ids X.ids        ...with one item id per line, in the same order\n"
           "      --prune            delete items that are no longer in the feed; refused (nothing is\n"
           "                         written, exit 1) when rows of the feed could not be parsed, or...\n"
           "      --prune-max PCT    ...when it would delete more than PCT %% of the store (default 20)\n"
           "  -t, --threads T        threads for decoding and the model (default: all CPUs)\n"
           "  -b, --batch N          photos per model batch and per transaction (default 32)\n"
           "      --force            re-embed every photo even if unchanged\n"
           "  -h, --help             this text\n\n"
           "Exit status: 0 all rows ingested; 3 done, but some rows or photos were rejected (see\n"
           "DB.errors.jsonl); 1 failure (nothing after the last committed batch was written);\n"
           "2 usage error (also a missing feed or images folder: no store is created); 130 / 143\n"
           "interrupted by SIGINT / SIGTERM (what was finished is committed; run again to resume).\n");
}

typedef struct {
    char *id, *attrs, *image;
    long line;
    int image_refused; /* the feed named a photo that was refused (already reported) */
} row;

/* ------------------------------------------------------------------ embedding a batch */

typedef struct {
    row **rows;          /* this batch */
    int n;
    vt_preproc pre;
    float *x;            /* n x 3 x S x S */
    int *ok;             /* per row: 1 decoded, 0 failed */
    char **err;          /* per row: message when failed */
    uint64_t *hash;
    int64_t *size, *mtime;
} batch_ctx;

static volatile sig_atomic_t g_stop; /* the signal that asked us to stop, or 0 */

static void decode_one(void *p, size_t i, int worker) {
    (void)worker;
    batch_ctx *b = p;
    row *r = b->rows[i];
    b->ok[i] = 0;
    if (g_stop) return; /* the batch is abandoned: not reported, done again on the next run */
    vt_decode_opts dopts = {.fast = 1};
    if (b->pre.fit == VT_FIT_LETTERBOX) dopts.min_long = b->pre.size;
    else dopts.min_short = b->pre.size;
    vt_image img, sq;
    uint8_t *bytes; /* read once: hashed and decoded from the same buffer */
    size_t len;
    int rc = vt__read_file_ex(r->image, 1u << 30, VT__READ_NOFOLLOW, &bytes, &len);
    if (rc == 0) {
        b->hash[i] = vt_hash64(bytes, len, 0); /* the store's content hash (= vt_hash_file) */
        rc = vt_image_decode(bytes, len, r->image, &dopts, &img);
        free(bytes);
    }
    if (rc == 0) {
        rc = vt_image_fit(&img, b->pre.size, b->pre.fit, &sq);
        vt_image_free(&img);
    }
    if (rc == 0) {
        vt_image_to_chw(&sq, b->pre.mean, b->pre.std, b->pre.bgr, b->x + i * 3 * (size_t)b->pre.size * b->pre.size);
        vt_image_free(&sq);
    }
    if (rc == 0) {
        b->ok[i] = 1;
    } else {
        b->err[i] = strdup(vt_errmsg());
    }
}

/* ------------------------------------------------------------------ the command */

/* SIGINT/SIGTERM: ask every stage to stop. Installed without SA_RESTART so that a blocking
 * open or read (a feed from a pipe) returns, and reset to the default so that a second signal
 * ends the process at once. */
static void on_signal(int sig) { g_stop = sig; }

static void catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int file_stat(const char *path, int64_t *size, int64_t *mtime) {
    struct stat st;
    if (!path || stat(path, &st) != 0) return -1;
    *size = (int64_t)st.st_size;
    *mtime = (int64_t)st.st_mtime;
    return 0;
}

typedef struct {
    char **ids;
    size_t n;
} idset;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct {
    idset *keep;
    char **gone;
    size_t n, cap;
} prune_ctx;

static int collect_gone(const vt_item *it, void *user) {
    prune_ctx *c = user;
    const char *key = it->id;
    if (bsearch(&key, c->keep->ids, c->keep->n, sizeof(char *), cmp_str)) return 0;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        char **ng = realloc(c->gone, c->cap * sizeof *ng);
        if (!ng) return VT_ENOMEM;
        c->gone = ng;
    }
    c->gone[c->n++] = strdup(it->id);
    return 0;
}

/* Reads an .ids file: one id per line. */
static int read_ids(const char *path, char ***out, size_t *n) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "vitrine ingest: %s: cannot open\n", path);
        return -1;
    }
    size_t cap = 1024, k = 0;
    char **v = malloc(cap * sizeof *v);
    char line[4096];
    while (v && fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r')) line[--l] = 0;
        if (!l) continue;
        if (k == cap) {
            char **nv = realloc(v, (cap *= 2) * sizeof *nv);
            if (!nv) break;
            v = nv;
        }
        v[k++] = strdup(line);
    }
    fclose(f);
    *out = v;
    *n = k;
    return v ? 0 : -1;
}

/* Imports precomputed vectors (--embeddings/--ids) for items already in the store or in the feed. */
static int import_vectors(vt_store *st, const char *vec_path, const char *ids_path, const char *model_name,
                          vt_report *rep, long *imported) {
    char **ids;
    size_t n;
    if (read_ids(ids_path, &ids, &n)) return VT_EXIT_FAIL;
    struct stat sb;
    int rcode = VT_EXIT_OK;
    if (stat(vec_path, &sb) != 0 || n == 0 || sb.st_size % (off_t)(4 * n) != 0) {
        fprintf(stderr, "vitrine ingest: %s: size %lld is not a multiple of 4 x %zu ids\n", vec_path,
                (long long)sb.st_size, n);
        rcode = VT_EXIT_FAIL;
    }
    int dim = rcode ? 0 : (int)(sb.st_size / (off_t)(4 * n));
    FILE *f = rcode ? NULL : fopen(vec_path, "rb");
    float *v = dim ? malloc(sizeof(float) * (size_t)dim) : NULL;
    if (!rcode && (!f || !v)) rcode = VT_EXIT_FAIL;
    vt_progress *pr = NULL;
    if (!rcode) vt_progress_create("import", n, "vec", &pr);
    int in_batch = 0;
    for (size_t i = 0; !rcode && i < n && !g_stop; i++) {
        if (fread(v, sizeof(float), (size_t)dim, f) != (size_t)dim) {
            rcode = VT_EXIT_FAIL;
            break;
        }
        if (!vt_catalog_id_ok(ids[i])) {
            vt_report_add(rep, ids_path, (long)i + 1, ids[i],
                          "invalid id (not valid UTF-8, over 255 bytes, starts with '.', or has '/', '\\' or "
                          "control characters)");
            vt_progress_add(pr, 1, NULL);
            continue;
        }
        if (!in_batch && vt_store_begin(st) == 0) in_batch = 1;
        vt_item it;
        int rc = vt_store_get(st, ids[i], &it);
        if (rc == VT_ENOTFOUND) {
            vt_item nit = {.id = ids[i]};
            rc = vt_store_put(st, &nit, &it.label);
            it.id = NULL;
            it.attrs = it.image = NULL;
        }
        if (rc == 0) {
            double ss = 0;
            for (int d = 0; d < dim; d++) ss += (double)v[d] * v[d];
            float inv = ss > 0 ? (float)(1 / sqrt(ss)) : 0;
            for (int d = 0; d < dim; d++) v[d] *= inv;
            rc = vt_store_put_embedding(st, it.label, model_name, v, dim, 0);
            vt_item_clear(&it);
        }
        if (rc)
            vt_report_add(rep, ids_path, (long)i + 1, ids[i], vt_errmsg());
        else
            (*imported)++;
        if ((i + 1) % 1000 == 0 && in_batch) {
            if (vt_store_commit(st)) rcode = cli_fail(-1, "commit");
            in_batch = 0;
        }
        vt_progress_add(pr, 1, NULL);
    }
    if (in_batch && vt_store_commit(st)) rcode = cli_fail(-1, "commit");
    vt_progress_finish(pr);
    if (f) fclose(f);
    free(v);
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
    return rcode;
}

int vt_cmd_ingest(int argc, char **argv) {
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},          {"meta", required_argument, 0, 'm'},
        {"images", required_argument, 0, 'i'},      {"model", required_argument, 0, 'M'},
        {"model-name", required_argument, 0, 'N'},  {"embeddings", required_argument, 0, 'E'},
        {"ids", required_argument, 0, 'I'},         {"prune", no_argument, 0, 'p'},
        {"prune-max", required_argument, 0, 'P'},
        {"threads", required_argument, 0, 't'},     {"batch", required_argument, 0, 'b'},
        {"force", no_argument, 0, 'F'},             {"no-embed", no_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
    const char *db = NULL, *meta = NULL, *images = NULL, *model_path = NULL, *model_name = NULL, *vecs = NULL,
               *idsf = NULL;
    int prune = 0, force = 0, no_embed = 0;
    long threads = 0, bsize = 32, prune_max = 20;
    optind = 1;
    int c, rc;
    while ((c = getopt_long(argc, argv, "t:b:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'm': meta = optarg; break;
        case 'i': images = optarg; break;
        case 'M': model_path = optarg; break;
        case 'N': model_name = optarg; break;
        case 'E': vecs = optarg; break;
        case 'I': idsf = optarg; break;
        case 'p': prune = 1; break;
        case 'P':
            if (cli_parse_int(optarg, 0, 100, &prune_max)) return cli_usage_error("ingest", "--prune-max must be 0..100");
            break;
        case 'F': force = 1; break;
        case 'n': no_embed = 1; break;
        case 't':
            if (cli_parse_int(optarg, 0, 1024, &threads)) return cli_usage_error("ingest", "--threads must be 0..1024");
            break;
        case 'b':
            if (cli_parse_int(optarg, 1, 4096, &bsize)) return cli_usage_error("ingest", "--batch must be 1..4096");
            break;
        case 'h': help(); return VT_EXIT_OK;
        default: return cli_usage_error("ingest", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("ingest", "unexpected argument '%s'", argv[optind]);
    if (!db) return cli_usage_error("ingest", "missing --db DB");
    if (!meta && !vecs) return cli_usage_error("ingest", "missing --meta FILE (or --embeddings with --ids)");
    if ((vecs != NULL) != (idsf != NULL)) return cli_usage_error("ingest", "--embeddings and --ids go together");
    if (vecs && !model_name) return cli_usage_error("ingest", "--embeddings needs --model-name NAME");
    if (vecs && model_path) return cli_usage_error("ingest", "give either --model or --embeddings, not both");
    if (no_embed && model_path) return cli_usage_error("ingest", "give either --model or --no-embed, not both");

    char model_buf[4096];
    if (!vecs && !model_path && !no_embed) { /* photo mode without --model: the default model */
        rc = cli_default_model(model_buf, sizeof model_buf);
        if (rc == VT_ENOTFOUND)
            return cli_usage_error("ingest", "%s; or --no-embed to store the items without embeddings", vt_errmsg());
        if (rc) return cli_fail(rc, "ingest");
        model_path = model_buf;
        if (!cli_quiet()) fprintf(stderr, "ingest: model %s (default)\n", model_path);
    }
    char name_buf[256];
    if (!model_name && model_path) {
        vt__path_stem(model_path, name_buf, sizeof name_buf);
        model_name = name_buf;
    }
    char images_buf[4096];
    struct stat sb;
    if (images && (stat(images, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        return cli_usage_error("ingest", "--images %s: %s", images, stat(images, &sb) ? strerror(errno) : "not a folder");
    if (meta && !images) { /* the default: the feed's folder/images, required only to embed */
        const char *sl = strrchr(meta, '/');
        if (sl)
            snprintf(images_buf, sizeof images_buf, "%.*s/images", (int)(sl - meta), meta);
        else
            snprintf(images_buf, sizeof images_buf, "images");
        images = images_buf;
        if (stat(images, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            if (model_path)
                return cli_usage_error("ingest", "no images folder %s (the feed's folder/images); give --images DIR, "
                                       "or --no-embed", images);
            images = NULL;
        }
    }

    /* The feed is opened before the store, so that a missing or unreadable feed leaves no store behind. */
    catch_signals();
    vt_feed *feed = NULL;
    if (meta) {
        vt_feed_opts fo = {.images_dir = images, .cancel = &g_stop};
        rc = vt_feed_open(meta, &fo, &feed);
        if (rc == VT_ENOENT || rc == VT_EINVAL) return cli_usage_error("ingest", "--meta: %s", vt_errmsg());
        if (rc == VT_ECANCELED) {
            fprintf(stderr, "vitrine ingest: interrupted before reading the feed\n");
            return 128 + g_stop;
        }
        if (rc) return cli_fail(rc, "cannot read the feed");
    }

    vt_store *st;
    rc = vt_store_open(db, 0, &st);
    if (rc) {
        vt_feed_close(feed);
        return cli_fail(rc, "cannot open the store");
    }
    char rep_path[4096];
    snprintf(rep_path, sizeof rep_path, "%s.errors.jsonl", db);
    vt_report *rep;
    rc = vt_report_open(rep_path, &rep);
    if (rc) {
        vt_feed_close(feed);
        vt_store_close(st);
        return cli_fail(rc, "cannot write the error report");
    }
    double t0 = vt_now();
    int code = VT_EXIT_OK;
    long nrows = 0, added = 0, updated = 0, unchanged = 0, embedded = 0, bad_images = 0, pruned = 0, imported = 0;

    /* 1. Read the whole feed (ids, attributes, photo paths); bad rows go to the report. */
    row *rows = NULL;
    size_t nr = 0, cap = 0;
    idset keep = {0};
    char **bad_ids = NULL; /* ids of rejected rows: still in the feed, so never pruned */
    size_t nbad = 0;
    long parse_errors = 0;
    prune_ctx pc = {&keep, NULL, 0, 0};
    if (meta) {
        vt_feed_row fr;
        while ((rc = vt_feed_next(feed, &fr)) == 1) {
            nrows++;
            if (fr.error) {
                vt_report_add_row(rep, &fr);
                if (vt_feed_parse_errors(feed) > parse_errors) { /* this row could not be parsed */
                    parse_errors = vt_feed_parse_errors(feed);
                    if (parse_errors <= 10)
                        fprintf(stderr, "vitrine ingest: %s:%ld: %s\n", fr.file, fr.line, fr.reason);
                    else if (parse_errors == 11)
                        fprintf(stderr, "vitrine ingest: more rows could not be parsed: see %s\n", rep_path);
                }
                char **nb = fr.id ? realloc(bad_ids, (nbad + 1) * sizeof *bad_ids) : NULL;
                if (nb) {
                    bad_ids = nb;
                    if ((bad_ids[nbad] = strdup(fr.id))) nbad++;
                }
                continue;
            }
            if (fr.image_error) {
                bad_images++;
                vt_report_add(rep, fr.file, fr.line, fr.id, fr.image_error);
            }
            if (nr == cap) {
                cap = cap ? cap * 2 : 1024;
                row *nrw = realloc(rows, cap * sizeof *rows);
                if (!nrw) {
                    rc = VT_ENOMEM;
                    break;
                }
                rows = nrw;
            }
            rows[nr].id = strdup(fr.id);
            rows[nr].attrs = strdup(fr.attrs ? fr.attrs : "{}");
            rows[nr].image = fr.image ? strdup(fr.image) : NULL;
            rows[nr].line = fr.line;
            rows[nr].image_refused = fr.image_error != NULL;
            nr++;
        }
        vt_feed_close(feed);
        feed = NULL;
        if (rc < 0) {
            code = g_stop ? VT_EXIT_FAIL : cli_fail(rc, "reading the feed failed");
            goto done;
        }
    }

    /* --prune is decided before anything is written: refused when rows could not be parsed (their
     * ids are unknown) or when it would delete more than --prune-max % of the store. */
    if (prune && meta) {
        keep.n = nr + nbad;
        keep.ids = malloc(sizeof(char *) * (keep.n ? keep.n : 1));
        if (!keep.ids) {
            code = cli_fail(VT_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < nr; i++) keep.ids[i] = rows[i].id;
        for (size_t i = 0; i < nbad; i++) keep.ids[nr + i] = bad_ids[i];
        qsort(keep.ids, keep.n, sizeof(char *), cmp_str);
        int64_t before = 0;
        rc = vt_store_foreach(st, NULL, collect_gone, &pc);
        if (rc == 0) rc = vt_store_count(st, NULL, &before);
        if (rc) {
            code = cli_fail(rc, "pruning failed");
            goto done;
        }
        if (parse_errors) {
            fprintf(stderr,
                    "vitrine ingest: --prune refused: %ld row%s of the feed could not be parsed (see %s), so the "
                    "items missing from it are not known to have left the catalog; nothing was written\n",
                    parse_errors, parse_errors == 1 ? "" : "s", rep_path);
            code = VT_EXIT_FAIL;
            goto done;
        }
        if ((double)pc.n * 100 > (double)prune_max * (double)before) {
            fprintf(stderr,
                    "vitrine ingest: --prune refused: it would delete %zu of the %lld items in the store (%.1f %%), "
                    "more than --prune-max %ld %%; nothing was written\n",
                    pc.n, (long long)before, before ? 100.0 * (double)pc.n / (double)before : 0.0, prune_max);
            code = VT_EXIT_FAIL;
            goto done;
        }
    }

    /* 2. Metadata: insert or update items; decide which photos need (re-)embedding. */
    vt_model *model = NULL;
    vt_preproc pre = {0};
    if (model_path) {
        vt_model_opts mo = {.threads = (int)threads};
        rc = vt_model_load(model_path, &mo, &model);
        if (rc == 0) rc = vt_model_preproc(model, &pre);
        if (rc) {
            code = cli_fail(rc, "cannot load the model");
            goto done;
        }
    }
    row **todo = malloc(sizeof *todo * (nr ? nr : 1));
    size_t ntodo = 0;
    int64_t *labels = malloc(sizeof *labels * (nr ? nr : 1));
    if (!todo || !labels) {
        code = cli_fail(VT_ENOMEM, "out of memory");
        goto done;
    }
    rc = vt_store_begin(st);
    for (size_t i = 0; rc == 0 && i < nr && !g_stop; i++) {
        vt_item old;
        int64_t size = 0, mtime = 0;
        int have = vt_store_get(st, rows[i].id, &old) == 0;
        int img_ok = rows[i].image && file_stat(rows[i].image, &size, &mtime) == 0;
        if (!img_ok && model && !rows[i].image_refused) { /* a photo is only required to embed it */
            bad_images++;
            char reason[8192];
            snprintf(reason, sizeof reason, "no image file for id '%.255s' in %.4096s", rows[i].id,
                     images ? images : ".");
            vt_report_add(rep, meta, rows[i].line, rows[i].id, reason);
        }
        int same_meta = have && old.attrs && !strcmp(old.attrs, rows[i].attrs) &&
                        ((!old.image && !rows[i].image) ||
                         (old.image && rows[i].image && !strcmp(old.image, rows[i].image)));
        int same_file = have && (img_ok ? old.image_size == size && old.image_mtime == mtime
                                        : old.image_size == 0 && old.image_mtime == 0);
        uint64_t ehash = 0;
        int has_emb = model_name && have && vt_store_embedding_info(st, old.label, model_name, NULL, &ehash) == 0;
        int need_embed = model && img_ok && (force || !has_emb || !same_file || ehash != old.hash);
        if (!same_meta || !same_file) {
            vt_item it = {.id = rows[i].id, .attrs = rows[i].attrs, .image = rows[i].image,
                          .hash = same_file ? old.hash : 0, .image_size = size, .image_mtime = mtime};
            rc = vt_store_put(st, &it, &labels[i]);
            if (rc == 0) *(have ? &updated : &added) += 1;
        } else {
            labels[i] = old.label;
            if (!need_embed) unchanged++;
        }
        if (have) vt_item_clear(&old);
        if (need_embed) todo[ntodo++] = &rows[i];
        if (i % 2000 == 1999 && rc == 0) {
            rc = vt_store_commit(st);
            if (rc == 0) rc = vt_store_begin(st);
        }
    }
    if (rc == 0) rc = vt_store_commit(st);
    else vt_store_rollback(st);
    if (rc) {
        code = cli_fail(rc, "writing items failed");
        goto done_model;
    }

    /* 3. Embed the photos that need it, a batch at a time: decode in parallel, one batched model
     * run, then one transaction per batch. */
    if (ntodo) {
        vt_pool *pool;
        rc = vt_pool_create((int)threads, &pool);
        if (rc) {
            code = cli_fail(rc, "thread pool");
            goto done_model;
        }
        size_t S = (size_t)pre.size;
        batch_ctx b = {.pre = pre};
        b.x = malloc(sizeof(float) * 3 * S * S * (size_t)bsize);
        b.ok = calloc((size_t)bsize, sizeof(int));
        b.err = calloc((size_t)bsize, sizeof(char *));
        b.hash = calloc((size_t)bsize, sizeof(uint64_t));
        if (!b.x || !b.ok || !b.err || !b.hash) code = cli_fail(VT_ENOMEM, "out of memory for a batch");
        vt_progress *pr;
        vt_progress_create("embed", ntodo, "img", &pr);
        const char *tensor = vt_model_embedding_tensor(model);
        for (size_t at = 0; at < ntodo && !g_stop && code == VT_EXIT_OK; at += (size_t)bsize) {
            b.rows = todo + at;
            b.n = (int)(ntodo - at < (size_t)bsize ? ntodo - at : (size_t)bsize);
            vt_pool_parallel_for(pool, (size_t)b.n, 1, decode_one, &b);
            if (g_stop) break; /* this batch is abandoned: the next run embeds it */
            int nok = 0; /* pack the decoded photos to the front of the batch (in place: nok <= i) */
            for (int i = 0; i < b.n; i++)
                if (b.ok[i]) {
                    if (nok != i)
                        memmove(b.x + (size_t)nok * 3 * S * S, b.x + (size_t)i * 3 * S * S, sizeof(float) * 3 * S * S);
                    nok++;
                }
            float *y = NULL;
            int64_t shape[8];
            int rank = 0;
            if (nok) {
                rc = vt_model_run(model, b.x, nok, 3, (int)S, (int)S, tensor, &y, shape, &rank);
                if (rc) {
                    code = cli_fail(rc, "the model failed");
                    break;
                }
            }
            int64_t dim = 1;
            for (int r = 1; r < rank; r++) dim *= shape[r];
            rc = vt_store_begin(st);
            for (int i = 0, j = 0; rc == 0 && i < b.n; i++) {
                row *r = b.rows[i];
                size_t ri = (size_t)(r - rows);
                if (!b.ok[i] && g_stop) continue; /* abandoned, not bad */
                if (!b.ok[i]) {
                    bad_images++;
                    vt_report_add(rep, meta, r->line, r->id, b.err[i] ? b.err[i] : "image could not be read");
                    free(b.err[i]);
                    b.err[i] = NULL;
                    continue;
                }
                float *v = y + (size_t)j++ * (size_t)dim;
                double ss = 0;
                for (int64_t d = 0; d < dim; d++) ss += (double)v[d] * v[d];
                float inv = ss > 0 ? (float)(1 / sqrt(ss)) : 0;
                for (int64_t d = 0; d < dim; d++) v[d] *= inv;
                rc = vt_store_put_embedding(st, labels[ri], model_name, v, (int)dim, b.hash[i]);
                if (rc == 0) {
                    /* keep the item's hash in step with the embedded photo */
                    vt_item it;
                    if (vt_store_get_by_label(st, labels[ri], &it) == 0) {
                        it.hash = b.hash[i];
                        rc = vt_store_put(st, &it, NULL);
                        vt_item_clear(&it);
                    }
                }
                if (rc == 0) embedded++;
            }
            free(y);
            if (rc == 0) rc = vt_store_commit(st);
            else vt_store_rollback(st);
            if (rc) code = cli_fail(rc, "writing embeddings failed");
            vt_progress_add(pr, (uint64_t)b.n, NULL);
        }
        vt_progress_finish(pr);
        for (int i = 0; b.err && i < bsize; i++) free(b.err[i]);
        free(b.x);
        free(b.ok);
        free(b.err);
        free(b.hash);
        vt_pool_free(pool);
    }

    /* 4. Imported vectors. */
    if (vecs && code == VT_EXIT_OK) code = import_vectors(st, vecs, idsf, model_name, rep, &imported);

    /* 5. --prune: items no longer in the feed. */
    if (prune && meta && code == VT_EXIT_OK && !g_stop) {
        rc = vt_store_begin(st);
        for (size_t i = 0; rc == 0 && i < pc.n; i++)
            if (vt_store_delete(st, pc.gone[i]) == 0) pruned++;
        if (rc == 0) rc = vt_store_commit(st);
        if (rc) code = cli_fail(rc, "pruning failed");
    }

done_model:
    vt_model_free(model);
    free(todo);
    free(labels);
done:
    vt_feed_close(feed);
    for (size_t i = 0; i < pc.n; i++) free(pc.gone[i]);
    free(pc.gone);
    free(keep.ids);
    for (size_t i = 0; i < nbad; i++) free(bad_ids[i]);
    free(bad_ids);
    for (size_t i = 0; i < nr; i++) {
        free(rows[i].id);
        free(rows[i].attrs);
        free(rows[i].image);
    }
    free(rows);
    int64_t total = 0, nemb = 0;
    vt_store_count(st, NULL, &total);
    if (model_name) vt_store_count_embeddings(st, model_name, &nemb);
    vt_store_close(st);
    long nrep = vt_report_count(rep);
    if (vt_report_close(rep)) fprintf(stderr, "vitrine ingest: warning: %s\n", vt_errmsg());
    printf("ingest: %ld rows read, %ld added, %ld updated, %ld unchanged, %ld photos embedded", nrows, added, updated,
           unchanged, embedded);
    if (vecs) printf(", %ld vectors imported", imported);
    if (prune) printf(", %ld pruned", pruned);
    printf(", %ld rejected (%ld with a missing or unreadable photo; %s)\n", nrep, bad_images,
           nrep ? rep_path : "no report");
    printf("store: %lld items, %lld embeddings%s%s%s in %.1f s\n", (long long)total, (long long)nemb,
           model_name ? " for model '" : "", model_name ? model_name : "", model_name ? "'" : "", vt_now() - t0);
    if (g_stop) {
        fprintf(stderr, "vitrine ingest: interrupted by %s; what was finished is committed; run the same command "
                        "again to resume\n", g_stop == SIGINT ? "SIGINT" : "SIGTERM");
        return 128 + g_stop;
    }
    if (code == VT_EXIT_OK && nrep) code = VT_EXIT_PARTIAL;
    return code;
}
