/* train_data.c: the training catalog: feed reading, label vocabularies with an "other" class,
 * and the in-memory cache of decoded, square-fitted photos. */
#include "nn/train_internal.h"
#include <jansson.h>
#include <string.h>

void vt__tdata_free(tdata *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) {
        if (d->ids) free(d->ids[i]);
        if (d->paths) free(d->paths[i]);
    }
    free(d->ids), free(d->paths), free(d->labels), free(d->cache);
    for (int h = 0; h < d->nheads; h++) {
        free(d->head[h]);
        for (int c = 0; d->vocab[h] && c < d->nclasses[h]; c++) free(d->vocab[h][c]);
        free(d->vocab[h]);
    }
    memset(d, 0, sizeof *d);
}

typedef struct {
    const char *s;
    int item;
} sv;

static int cmp_sv(const void *a, const void *b) {
    const sv *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    return c ? c : x->item - y->item;
}

typedef struct {
    const char *s;
    int count;
    int cls;
} run_t;

static int cmp_run(const void *a, const void *b) {
    const run_t *x = *(const run_t *const *)a, *y = *(const run_t *const *)b;
    if (x->count != y->count) return y->count - x->count;
    return strcmp(x->s, y->s);
}

/* Builds head h's vocabulary from vals[i] (NULL: missing) and writes d->labels[i*nheads+h]. */
static int build_vocab(tdata *d, int h, char **vals, int min_count) {
    int n = d->n, m = 0;
    sv *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    run_t *runs = malloc((size_t)(n ? n : 1) * sizeof *runs);
    run_t **kept = malloc((size_t)(n ? n : 1) * sizeof *kept);
    int *run_of = malloc((size_t)(n ? n : 1) * sizeof *run_of);
    if (!v || !runs || !kept || !run_of) {
        free(v), free(runs), free(kept), free(run_of);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++)
        if (vals[i]) v[m].s = vals[i], v[m].item = i, m++;
    qsort(v, (size_t)m, sizeof *v, cmp_sv);
    int nr = 0;
    for (int i = 0; i < m; i++) {
        if (!i || strcmp(v[i].s, v[i - 1].s)) runs[nr].s = v[i].s, runs[nr].count = 0, runs[nr].cls = -1, nr++;
        runs[nr - 1].count++;
        run_of[v[i].item] = nr - 1;
    }
    int nk = 0, folded = 0;
    for (int r = 0; r < nr; r++) {
        if (runs[r].count >= min_count) kept[nk++] = &runs[r];
        else folded = 1;
    }
    qsort(kept, (size_t)nk, sizeof *kept, cmp_run);
    for (int k = 0; k < nk; k++) kept[k]->cls = k;
    int ncls = nk + (folded ? 1 : 0);
    int rc = 0;
    d->vocab[h] = calloc((size_t)(ncls ? ncls : 1), sizeof(char *));
    if (!d->vocab[h]) rc = vt__err(VT_ENOMEM, "out of memory");
    for (int k = 0; !rc && k < nk; k++)
        if (!(d->vocab[h][k] = strdup(kept[k]->s))) rc = vt__err(VT_ENOMEM, "out of memory");
    if (!rc && folded && !(d->vocab[h][nk] = strdup("other"))) rc = vt__err(VT_ENOMEM, "out of memory");
    d->nclasses[h] = rc ? 0 : ncls;
    if (!rc && ncls < 2)
        rc = vt__err(VT_EINVAL, "label column '%s' has %d class%s (need at least 2; check the column name or --min-count)",
                     d->head[h], ncls, ncls == 1 ? "" : "es");
    for (int i = 0; !rc && i < n; i++) {
        int cls = -1;
        if (vals[i]) cls = runs[run_of[i]].cls >= 0 ? runs[run_of[i]].cls : nk;
        d->labels[(size_t)i * d->nheads + h] = cls;
    }
    free(v), free(runs), free(kept), free(run_of);
    return rc;
}

/* Contract: see train_internal.h. Rows with errors or without an image are skipped; a feed with
 * no usable row is VT_EEMPTY. */
int vt__tdata_load(tdata *d, const char *meta, const char *images_dir, const char *labels, int min_count, int limit) {
    memset(d, 0, sizeof *d);
    if (!labels || !*labels) labels = "articleType,baseColour,gender";
    char *lab = strdup(labels);
    if (!lab) return vt__err(VT_ENOMEM, "out of memory");
    int rc = 0;
    for (char *save = NULL, *t = strtok_r(lab, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        if (!*t) continue;
        if (d->nheads == TD_MAX_HEADS) {
            rc = vt__err(VT_EINVAL, "at most %d label columns", TD_MAX_HEADS);
            break;
        }
        if (!(d->head[d->nheads++] = strdup(t))) rc = vt__err(VT_ENOMEM, "out of memory");
    }
    free(lab);
    if (!rc && d->nheads == 0) rc = vt__err(VT_EINVAL, "no label columns given");
    if (rc) {
        vt__tdata_free(d);
        return rc;
    }
    vt_feed_opts fo = {.images_dir = images_dir};
    vt_feed *f;
    rc = vt_feed_open(meta, &fo, &f);
    if (rc) {
        vt__tdata_free(d);
        return rc;
    }
    size_t cap = 1024;
    char **vals = NULL;
    d->ids = malloc(cap * sizeof(char *));
    d->paths = malloc(cap * sizeof(char *));
    vals = malloc(cap * (size_t)d->nheads * sizeof(char *));
    if (!d->ids || !d->paths || !vals) rc = vt__err(VT_ENOMEM, "out of memory");
    vt_feed_row row;
    long bad = 0;
    while (!rc && (limit <= 0 || d->n < limit)) {
        int r = vt_feed_next(f, &row);
        if (r < 0) rc = r;
        if (r <= 0) break;
        if (row.error || !row.id || !row.image) {
            bad++;
            continue;
        }
        if ((size_t)d->n == cap) {
            cap *= 2;
            char **a = realloc(d->ids, cap * sizeof(char *)), **b = a ? realloc(d->paths, cap * sizeof(char *)) : NULL;
            if (a) d->ids = a;
            if (b) d->paths = b;
            char **c = b ? realloc(vals, cap * (size_t)d->nheads * sizeof(char *)) : NULL;
            if (!c) {
                rc = vt__err(VT_ENOMEM, "out of memory");
                break;
            }
            vals = c;
        }
        json_error_t je;
        json_t *o = json_loads(row.attrs ? row.attrs : "{}", 0, &je);
        int i = d->n;
        d->ids[i] = strdup(row.id);
        d->paths[i] = strdup(row.image);
        d->n++;
        if (!d->ids[i] || !d->paths[i]) rc = vt__err(VT_ENOMEM, "out of memory");
        for (int h = 0; h < d->nheads; h++) {
            json_t *jv = o ? json_object_get(o, d->head[h]) : NULL;
            char buf[64], *s = NULL;
            if (json_is_string(jv) && json_string_length(jv) > 0) s = strdup(json_string_value(jv));
            else if (json_is_integer(jv)) snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(jv)), s = strdup(buf);
            else if (json_is_real(jv)) snprintf(buf, sizeof buf, "%g", json_real_value(jv)), s = strdup(buf);
            vals[(size_t)i * d->nheads + h] = s;
        }
        json_decref(o);
    }
    vt_feed_close(f);
    if (bad) VT_LOGI("train: %ld feed rows skipped (errors or no image file)", bad);
    if (!rc && d->n == 0) rc = vt__err(VT_EEMPTY, "%s: no rows with an image file in %s", meta, images_dir ? images_dir : "(none)");
    if (!rc) {
        d->labels = malloc((size_t)d->n * d->nheads * sizeof(int));
        char **col = malloc((size_t)d->n * sizeof(char *));
        if (!d->labels || !col) rc = vt__err(VT_ENOMEM, "out of memory");
        for (int h = 0; !rc && h < d->nheads; h++) {
            for (int i = 0; i < d->n; i++) col[i] = vals[(size_t)i * d->nheads + h];
            rc = build_vocab(d, h, col, min_count);
        }
        free(col);
    }
    if (vals)
        for (size_t i = 0; i < (size_t)d->n * d->nheads; i++) free(vals[i]);
    free(vals);
    if (rc) vt__tdata_free(d);
    return rc;
}

typedef struct {
    tdata *d;
    int cs;
    vt_fit_mode fit;
    double aspect;
    uint8_t *ok;
    vt_progress *prog;
} cache_ctx;

static void cache_one(void *p, size_t i, int worker) {
    (void)worker;
    cache_ctx *c = p;
    vt_decode_opts o = {.fast = 1};
    if (c->fit == VT_FIT_LETTERBOX) o.min_long = c->cs;
    else o.min_short = c->cs;
    vt_image img, sq;
    int rc = vt_image_load(c->d->paths[i], &o, &img);
    if (!rc && c->aspect > 0) {
        vt_image r;
        int w = (int)(img.height * c->aspect + 0.5), h = img.height;
        if (w < 1) w = 1;
        rc = vt_image_resize(&img, w, h, &r);
        vt_image_free(&img);
        img = r;
    }
    if (!rc) {
        rc = vt_image_fit(&img, c->cs, c->fit, &sq);
        vt_image_free(&img);
        if (!rc) {
            memcpy(c->d->cache + i * (size_t)c->cs * c->cs * 3, sq.data, (size_t)c->cs * c->cs * 3);
            vt_image_free(&sq);
            c->ok[i] = 1;
        }
    }
    if (rc) VT_LOGW("train: %s", vt_errmsg());
    if (c->prog) vt_progress_add(c->prog, 1, NULL);
}

/* Contract: see train_internal.h. */
int vt__tdata_cache(tdata *d, int cs, vt_fit_mode fit, double src_aspect, int threads, int progress) {
    size_t per = (size_t)cs * cs * 3;
    free(d->cache);
    d->cache = malloc(per * (size_t)(d->n ? d->n : 1));
    uint8_t *ok = calloc((size_t)(d->n ? d->n : 1), 1);
    if (!d->cache || !ok) {
        free(ok);
        return vt__err(VT_ENOMEM, "train: out of memory for the image cache (%zu MB)", per * (size_t)d->n >> 20);
    }
    d->cs = cs;
    vt_pool *pool = NULL;
    int rc = vt_pool_create(threads, &pool);
    if (rc) {
        free(ok);
        return rc;
    }
    cache_ctx c = {d, cs, fit, src_aspect, ok, NULL};
    if (progress) vt_progress_create("decode", (uint64_t)d->n, "img", &c.prog);
    vt_pool_parallel_for(pool, (size_t)d->n, 8, cache_one, &c);
    if (c.prog) vt_progress_finish(c.prog);
    vt_pool_free(pool);
    int j = 0, dropped = 0;
    for (int i = 0; i < d->n; i++) {
        if (!ok[i]) {
            free(d->ids[i]), free(d->paths[i]);
            dropped++;
            continue;
        }
        if (j != i) {
            d->ids[j] = d->ids[i], d->paths[j] = d->paths[i];
            memcpy(d->labels + (size_t)j * d->nheads, d->labels + (size_t)i * d->nheads, (size_t)d->nheads * sizeof(int));
            memmove(d->cache + (size_t)j * per, d->cache + (size_t)i * per, per);
        }
        j++;
    }
    d->n = j;
    free(ok);
    if (dropped) VT_LOGW("train: %d photos could not be decoded and were left out", dropped);
    if (d->n == 0) return vt__err(VT_EEMPTY, "train: no photo could be decoded");
    return 0;
}
