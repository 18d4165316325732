/* cmd_query.c: `vitrine similar` and `vitrine search`: nearest catalog items to an item or a photo. */
#include "cli.h"
#include "core/internal.h"
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void help_similar(void) {
    printf("Usage: vitrine similar --db DB ID [-k K] [--where FIELD=VALUE]... [--model M | --model-name N] [--json]\n\n"
           "Prints the K catalog items that look most like item ID (never ID itself), best first, with\n"
           "their cosine similarity. --where restricts the search to items whose FIELD equals VALUE\n"
           "(case-insensitive; repeat it: the same field OR'ed, different fields AND'ed; a FIELD the\n"
           "catalog does not have is refused, exit 2, with the list of fields); the filter is\n"
           "applied inside the index search, so K results come back whenever K items qualify.\n\n"
           "Options:\n"
           "      --db DB          item store written by vitrine ingest\n"
           "  -k K                number of results (default 10)\n"
           "  -w, --where F=V      filter, e.g. --where gender=Women --where articleType=Tops\n"
           "      --model FILE     the model the embeddings were made with (its base name selects them;\n"
           "                       the file need not exist)\n"
           "      --model-name N   or the name the embeddings are stored under (default: the base name of\n"
           "                       the default model, $VITRINE_MODEL or vitrine-fashion; see `vitrine --help`)\n"
           "      --exact          exact search even on a large catalog (default: exact up to 20,000 items)\n"
           "      --json           JSON output\n"
           "  -h, --help           this text\n");
}

static void help_search(void) {
    printf("Usage: vitrine search --db DB --image PHOTO [--model MODEL.onnx] [-k K] [--where FIELD=VALUE]... [--json]\n\n"
           "Embeds PHOTO (JPEG, PNG or WebP) with MODEL, the model the catalog was ingested with, and\n"
           "prints the K closest catalog items. Options as for `vitrine similar`, except:\n\n"
           "      --image PHOTO    the photo to search with\n"
           "      --model FILE     ONNX model (default: $VITRINE_MODEL, else the shipped default model\n"
           "                       vitrine-fashion.onnx; see `vitrine --help`)\n"
           "      --model-name N   name the embeddings are stored under (default: from the model)\n");
}

/* Shared option parsing and output of the two commands. */
static int run(int argc, char **argv, int photo) {
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},   {"where", required_argument, 0, 'w'},
        {"model", required_argument, 0, 'M'}, {"model-name", required_argument, 0, 'N'},
        {"image", required_argument, 0, 'i'}, {"json", no_argument, 0, 'j'},
        {"exact", no_argument, 0, 'x'},       {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *cmd = photo ? "search" : "similar";
    const char *db = NULL, *model = NULL, *model_name = NULL, *image = NULL;
    long k = 10;
    int json = 0, exact = 0;
    vt_filter *f;
    if (vt_filter_create(&f)) return cli_fail(VT_ENOMEM, "filter");
    const char *where[64]; /* the --where fields are checked against the catalog once it is open */
    int nwhere = 0;
    optind = 1;
    int c, code;
    while ((c = getopt_long(argc, argv, "k:w:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'k':
            if (cli_parse_int(optarg, 1, 10000, &k)) {
                vt_filter_free(f);
                return cli_usage_error(cmd, "-k must be 1..10000");
            }
            break;
        case 'w':
            if (vt_filter_parse(f, optarg)) {
                vt_filter_free(f);
                return cli_usage_error(cmd, "bad --where '%s': %s", optarg, vt_errmsg());
            }
            where[nwhere++] = optarg; /* vt_filter_parse refuses a 65th condition */
            break;
        case 'M': model = optarg; break;
        case 'N': model_name = optarg; break;
        case 'i': image = optarg; break;
        case 'j': json = 1; break;
        case 'x': exact = 1; break;
        case 'h':
            vt_filter_free(f);
            photo ? help_search() : help_similar();
            return VT_EXIT_OK;
        default: vt_filter_free(f); return cli_usage_error(cmd, "unknown option");
        }
    }
    const char *id = NULL;
    if (!photo) {
        if (optind != argc - 1) {
            vt_filter_free(f);
            return cli_usage_error(cmd, "expected exactly one item ID");
        }
        id = argv[optind];
    } else if (optind != argc) {
        vt_filter_free(f);
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    }
    if (!db || (photo && !image)) {
        vt_filter_free(f);
        return cli_usage_error(cmd, photo ? "needs --db and --image" : "needs --db");
    }
    char defmodel[4096];
    if (photo && !model) { /* the default model file, to embed the photo */
        int ex = cli_default_model_for(cmd, defmodel, sizeof defmodel);
        if (ex) {
            vt_filter_free(f);
            return ex;
        }
        model = defmodel;
    } else if (!photo && !model && !model_name) { /* only its name: the file need not be here */
        if (cli_default_model(defmodel, sizeof defmodel)) {
            const char *env = getenv("VITRINE_MODEL");
            snprintf(defmodel, sizeof defmodel, "%s", env && *env ? env : CLI_DEFAULT_MODEL_FILE);
        }
        model = defmodel;
    }
    vt_store *st;
    int rc = vt_store_open(db, VT_STORE_READONLY, &st);
    if (rc) {
        vt_filter_free(f);
        return cli_fail(rc, "cannot open the store");
    }
    if (nwhere) { /* a field no item has would silently match nothing */
        vt_fields *fl;
        rc = vt_fields_load(st, &fl);
        if (rc) {
            vt_store_close(st);
            vt_filter_free(f);
            return cli_fail(rc, "cannot read the catalog's fields");
        }
        for (int i = 0; i < nwhere; i++) {
            char field[65];
            snprintf(field, sizeof field, "%.*s", (int)(strchr(where[i], '=') - where[i]), where[i]);
            if (!vt_fields_has(fl, field)) {
                code = cli_usage_error(cmd, "unknown --where field '%s': filter on one of the fields: %s", field,
                                       vt_fields_list(fl));
                vt_fields_free(fl);
                vt_store_close(st);
                vt_filter_free(f);
                return code;
            }
        }
        vt_fields_free(fl);
    }
    vt_engine_opts eo;
    vt_engine_opts_init(&eo);
    eo.model_path = photo ? model : NULL;
    eo.model_name = model_name;
    char nb[256];
    if (!photo && !model_name) { /* the name from the model file, without loading it */
        vt__path_stem(model, nb, sizeof nb);
        eo.model_name = nb;
        if (model == defmodel && !cli_quiet()) fprintf(stderr, "%s: model %s (default)\n", cmd, nb);
    }
    if (exact) eo.index_kind = VT_INDEX_FLAT;
    eo.index_cache = db;
    vt_engine *e;
    rc = vt_engine_open(st, &eo, &e);
    if (rc) {
        vt_store_close(st);
        vt_filter_free(f);
        return cli_fail(rc, "cannot prepare the search");
    }
    vt_hit *hits = malloc(sizeof *hits * (size_t)k);
    int n = 0;
    if (photo) {
        uint8_t *buf;
        size_t len;
        rc = vt__read_file(image, 0, &buf, &len);
        if (rc == 0) rc = vt_engine_search_image(e, buf, len, image, (int)k, f, hits, &n);
        free(buf);
    } else {
        rc = vt_engine_similar(e, id, (int)k, f, hits, &n);
    }
    if (rc) {
        code = cli_fail(rc, photo ? "search failed" : "similar failed");
    } else {
        json_t *arr = json ? json_array() : NULL;
        for (int i = 0; i < n; i++) {
            vt_item it;
            if (vt_store_get_by_label(st, hits[i].label, &it)) continue;
            if (json) {
                json_t *a = json_loads(it.attrs ? it.attrs : "{}", 0, NULL);
                json_array_append_new(arr, json_pack("{s:s,s:f,s:o}", "id", it.id, "score", (double)hits[i].score,
                                                     "attributes", a ? a : json_object()));
            } else {
                json_t *a = json_loads(it.attrs ? it.attrs : "{}", 0, NULL);
                const char *name = json_string_value(json_object_get(a, "productDisplayName"));
                const char *type = json_string_value(json_object_get(a, "articleType"));
                const char *col = json_string_value(json_object_get(a, "baseColour"));
                printf("%2d  %-12s %.4f  %s%s%s%s%s\n", i + 1, it.id, hits[i].score, type ? type : "",
                       col ? " / " : "", col ? col : "", name ? "  " : "", name ? name : "");
                json_decref(a);
            }
            vt_item_clear(&it);
        }
        if (json) {
            json_t *root = json_pack("{s:s?,s:s,s:o}", "query", id, "model", vt_engine_model_name(e), "results", arr);
            char *s = json_dumps(root, JSON_INDENT(2));
            printf("%s\n", s);
            free(s);
            json_decref(root);
        }
        code = VT_EXIT_OK;
    }
    free(hits);
    vt_engine_free(e);
    vt_store_close(st);
    vt_filter_free(f);
    return code;
}

int vt_cmd_similar(int argc, char **argv) { return run(argc, argv, 0); }
int vt_cmd_search(int argc, char **argv) { return run(argc, argv, 1); }
