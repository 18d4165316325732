/* engine.c: similar items and photo search: the store's embeddings in a vector index, a model to
 * embed new photos, filters turned into allowed-label sets. Shared by the CLI and the server. */
#include "core/internal.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

struct vt_engine {
    vt_store *store;            /* not owned */
    vt_model *model;            /* owned, may be NULL (no photo search) */
    pthread_mutex_t model_mu;   /* a vt_model runs one inference at a time */
    vt_preproc pre;
    char model_name[256];
    vt_index *index;            /* NULL when the store holds no embeddings for the model */
    int dim;
    int64_t max_label;
    int ef;                     /* HNSW search breadth (0: the index default) */
    float *vecs;                /* n x dim: the indexed vectors, rows in ascending label order */
    int64_t *labels;            /* n ascending labels */
    size_t n;
};

void vt_engine_opts_init(vt_engine_opts *o) {
    memset(o, 0, sizeof *o);
    o->index_kind = -1;
}

typedef struct {
    float *vecs;
    int64_t *labels;
    size_t n, cap;
    int dim;
    int bad_dim;
    int64_t max_label;
} collect_ctx;

static int collect(int64_t label, const float *vec, int dim, uint64_t hash, void *user) {
    (void)hash;
    collect_ctx *c = user;
    if (c->dim == 0) c->dim = dim;
    if (dim != c->dim) {
        c->bad_dim = dim;
        return 1;
    }
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 1024;
        float *nv = realloc(c->vecs, ncap * (size_t)dim * sizeof(float));
        if (!nv) return VT_ENOMEM;
        c->vecs = nv;
        int64_t *nl = realloc(c->labels, ncap * sizeof(int64_t));
        if (!nl) return VT_ENOMEM;
        c->labels = nl;
        c->cap = ncap;
    }
    memcpy(c->vecs + c->n * (size_t)dim, vec, (size_t)dim * sizeof(float));
    c->labels[c->n++] = label;
    if (label > c->max_label) c->max_label = label;
    return 0;
}

/* Where a built index is kept between runs: "<cache>.<model>.<kind>-<store>.vti", plus a ".stamp"
 * file holding the content version (content_version) of the embeddings it was built from. */
static void cache_paths(const vt_engine *e, const vt_engine_opts *o, const vt_index_opts *io, char *path,
                        char *stamp, size_t cap) {
    static const char *kinds[] = {"flat", "hnsw"}, *stores[] = {"f32", "f16", "i8"};
    snprintf(path, cap - 8, "%s.%s.%s-%s.vti", o->index_cache, e->model_name, kinds[io->kind], stores[io->store]);
    snprintf(stamp, cap, "%.4000s.stamp", path);
}

/* The version of the embeddings an index is built from: a hash of every label and vector, as read
 * from the store. Any write changes it, whoever made it and however it ended (an ingest killed
 * mid-way leaves no end-of-run marker to trust); hashing costs ~10 ms per 100 MB of vectors,
 * a small share of reading them. */
static void content_version(const collect_ctx *c, char *out, size_t cap) {
    uint64_t h = vt_hash64(c->labels, c->n * sizeof *c->labels, (uint64_t)c->dim);
    h = vt_hash64(c->vecs, c->n * (size_t)c->dim * sizeof *c->vecs, h);
    snprintf(out, cap, "v2-%zu-%d-%016llx", c->n, c->dim, (unsigned long long)h);
}

/* Loads the cached index when its stamp matches the embeddings' current content version. */
static int load_cached(vt_engine *e, const char *path, const char *stamp_path, const char *version, size_t n) {
    uint8_t *buf;
    size_t len;
    if (!version[0] || vt__read_file(stamp_path, 4096, &buf, &len)) return -1;
    int same = strcmp((char *)buf, version) == 0;
    free(buf);
    if (!same || vt_index_load(path, &e->index)) return -1;
    if (vt_index_size(e->index) != n) { /* stamp and file out of step: rebuild */
        vt_index_free(e->index);
        e->index = NULL;
        return -1;
    }
    return 0;
}

/* Builds the vector index over every embedding of the engine's model in the store, or loads the
 * copy saved by an earlier run (opts->index_cache) when the embeddings have not changed since. */
static int build_index(vt_engine *e, const vt_engine_opts *o) {
    collect_ctx c = {0};
    int rc = vt_store_foreach_embedding(e->store, e->model_name, collect, &c);
    if (rc == 1 && c.bad_dim) {
        rc = vt__err(VT_ECORRUPT, "store holds embeddings of dimensions %d and %d for model '%s'", c.dim, c.bad_dim,
                     e->model_name);
    } else if (rc > 0) {
        rc = VT_EINTERNAL;
    }
    if (rc == VT_ENOMEM) rc = vt__err(VT_ENOMEM, "out of memory loading embeddings");
    if (rc || c.n == 0) {
        free(c.vecs);
        free(c.labels);
        return rc;
    }
    vt_index_opts io;
    vt_index_opts_init(&io);
    io.dim = c.dim;
    io.metric = VT_METRIC_COSINE;
    /* Exact search answers in well under a millisecond up to a few tens of thousands of items;
     * above that the graph index keeps queries interactive. */
    io.kind = o->index_kind >= 0 ? (vt_index_kind)o->index_kind : (c.n > 20000 ? VT_INDEX_HNSW : VT_INDEX_FLAT);
    io.store = o->index_store;
    io.threads = o->threads;
    char path[4096], stamp[4096], version[256] = "";
    int cached = -1;
    if (o->index_cache) {
        content_version(&c, version, sizeof version);
        cache_paths(e, o, &io, path, stamp, sizeof path);
        cached = load_cached(e, path, stamp, version, c.n);
    }
    if (cached != 0) {
        rc = vt_index_create(&io, &e->index);
        if (rc == 0) rc = vt_index_add(e->index, c.vecs, c.n, c.labels);
        if (rc) {
            vt_index_free(e->index);
            e->index = NULL;
        } else if (o->index_cache && version[0]) {
            /* Best effort: a read-only folder only costs a rebuild next time. */
            if (vt_index_save(e->index, path) == 0 && vt__write_file_atomic(stamp, version, strlen(version) + 1) == 0)
                VT_LOGI("saved the index to %s", path);
            else
                VT_LOGI("could not save the index to %s: %s", path, vt_errmsg());
        }
    } else {
        VT_LOGI("loaded the index from %s", path);
    }
    e->dim = c.dim;
    e->max_label = c.max_label;
    /* Keep the vectors: a similar-items query starts from an item's own vector. */
    e->vecs = c.vecs;
    e->labels = c.labels;
    e->n = c.n;
    return rc;
}

/* The vector of `label`, or NULL (binary search; labels arrive in ascending order from the store). */
static const float *vector_of(const vt_engine *e, int64_t label) {
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e->labels[mid] < label) lo = mid + 1;
        else hi = mid;
    }
    return lo < e->n && e->labels[lo] == label ? e->vecs + lo * (size_t)e->dim : NULL;
}

int vt_engine_open(vt_store *store, const vt_engine_opts *o, vt_engine **out) {
    *out = NULL;
    if (!store) return vt__err(VT_EINVAL, "vt_engine_open: no store");
    vt_engine_opts defaults;
    if (!o) {
        vt_engine_opts_init(&defaults);
        o = &defaults;
    }
    vt_engine *e = calloc(1, sizeof *e);
    if (!e) return vt__err(VT_ENOMEM, "out of memory");
    e->store = store;
    e->ef = o->ef > 0 ? o->ef : 0;
    pthread_mutex_init(&e->model_mu, NULL);
    int rc = VT_OK;
    if (o->model_path) {
        vt_model_opts mo = {.threads = o->threads};
        rc = vt_model_load(o->model_path, &mo, &e->model);
        if (rc == 0) rc = vt_model_preproc(e->model, &e->pre);
    }
    if (rc == 0) {
        if (o->model_name && *o->model_name)
            snprintf(e->model_name, sizeof e->model_name, "%s", o->model_name);
        else if (o->model_path)
            vt__path_stem(o->model_path, e->model_name, sizeof e->model_name);
        else
            rc = vt__err(VT_EINVAL, "vt_engine_open: give a model file or the name its embeddings are stored under");
    }
    if (rc == 0) rc = build_index(e, o);
    if (rc) {
        vt_engine_free(e);
        return rc;
    }
    *out = e;
    return VT_OK;
}

void vt_engine_free(vt_engine *e) {
    if (!e) return;
    vt_model_free(e->model);
    vt_index_free(e->index);
    free(e->vecs);
    free(e->labels);
    pthread_mutex_destroy(&e->model_mu);
    free(e);
}

const char *vt_engine_model_name(const vt_engine *e) { return e->model_name; }
size_t vt_engine_size(const vt_engine *e) { return e->index ? vt_index_size(e->index) : 0; }
int vt_engine_dim(const vt_engine *e) { return e->dim; }

/* Turns a filter into the index's bitset of admitted labels (NULL filter: *out = NULL). */
static int filter_bitset(vt_engine *e, const vt_filter *f, vt_bitset **out) {
    *out = NULL;
    if (!f || vt_filter_count(f) == 0) return VT_OK;
    vt_labels l;
    int rc = vt_store_labels(e->store, f, &l);
    if (rc) return rc == VT_ENOMEM ? rc : vt__err_prefix(VT_EIO, "reading the item store");
    rc = vt_bitset_create((size_t)e->max_label + 1, out);
    if (rc == 0)
        for (size_t i = 0; i < l.n; i++) vt_bitset_set(*out, (size_t)l.v[i]);
    vt_labels_free(&l);
    return rc;
}

/* Searches the index for q, skipping `exclude` (-1: none), and fills hits. */
static int search_vec(vt_engine *e, const float *q, int k, const vt_filter *f, int64_t exclude, vt_hit *hits,
                      int *n) {
    *n = 0;
    if (k <= 0 || k > 10000) return vt__err(VT_EINVAL, "k must be between 1 and 10000 (got %d)", k);
    if (!e->index) return VT_OK; /* nothing embedded yet: no results */
    vt_bitset *bs;
    int rc = filter_bitset(e, f, &bs);
    if (rc) return rc;
    int kk = k + (exclude >= 0);
    int64_t *labels = malloc(sizeof(int64_t) * (size_t)kk);
    float *scores = malloc(sizeof(float) * (size_t)kk);
    if (!labels || !scores) {
        rc = vt__err(VT_ENOMEM, "out of memory");
    } else {
        vt_search_opts so = {0};
        so.filter = bs;
        so.ef = e->ef;
        int found = 0;
        rc = vt_index_search(e->index, q, kk, &so, labels, scores, &found);
        for (int i = 0; rc == 0 && i < found && *n < k; i++) {
            if (labels[i] == exclude) continue;
            hits[*n].label = labels[i];
            hits[*n].score = scores[i];
            (*n)++;
        }
    }
    free(labels);
    free(scores);
    vt_bitset_free(bs);
    return rc;
}

int vt_engine_similar_label(vt_engine *e, int64_t label, int k, const vt_filter *f, vt_hit *hits, int *n) {
    *n = 0;
    if (!e->index) return vt__err(VT_ENOTFOUND, "no item has an embedding for model '%s' yet", e->model_name);
    const float *q = vector_of(e, label);
    if (!q)
        return vt__err(VT_ENOTFOUND, "item %lld has no embedding for model '%s' (its image could not be read?)",
                       (long long)label, e->model_name);
    return search_vec(e, q, k, f, label, hits, n);
}

int vt_engine_similar(vt_engine *e, const char *id, int k, const vt_filter *f, vt_hit *hits, int *n) {
    *n = 0;
    vt_item it;
    int rc = vt_store_get(e->store, id, &it);
    if (rc) return rc;
    int64_t label = it.label;
    vt_item_clear(&it);
    rc = vt_engine_similar_label(e, label, k, f, hits, n);
    if (rc == VT_ENOTFOUND && e->index)
        rc = vt__err(VT_ENOTFOUND, "item '%s' has no embedding for model '%s' (its image could not be read?)", id,
                     e->model_name);
    return rc;
}

int vt_engine_embed_image(vt_engine *e, const vt_image *img, float *vec, int cap) {
    if (!e->model) return vt__err(VT_ESTATE, "no model loaded: photo search needs --model");
    vt_image sq;
    int rc = vt_image_fit(img, e->pre.size, e->pre.fit, &sq);
    if (rc) return rc;
    size_t hw = (size_t)e->pre.size * e->pre.size;
    float *x = malloc(sizeof(float) * 3 * hw);
    if (!x) {
        vt_image_free(&sq);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    vt_image_to_chw(&sq, e->pre.mean, e->pre.std, e->pre.bgr, x);
    vt_image_free(&sq);
    float *y = NULL;
    int64_t shape[8];
    int rank = 0;
    pthread_mutex_lock(&e->model_mu);
    rc = vt_model_run(e->model, x, 1, 3, e->pre.size, e->pre.size, vt_model_embedding_tensor(e->model), &y, shape,
                      &rank);
    pthread_mutex_unlock(&e->model_mu);
    free(x);
    if (rc) return rc;
    int64_t d = 1;
    for (int i = 1; i < rank; i++) d *= shape[i];
    if (d > cap) {
        free(y);
        return vt__err(VT_ETOOBIG, "model embedding has %lld values, room for %d", (long long)d, cap);
    }
    double ss = 0;
    for (int64_t i = 0; i < d; i++) ss += (double)y[i] * y[i];
    float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
    for (int64_t i = 0; i < d; i++) vec[i] = y[i] * inv;
    free(y);
    return (int)d;
}

int vt_engine_search_image(vt_engine *e, const void *buf, size_t len, const char *name, int k, const vt_filter *f,
                           vt_hit *hits, int *n) {
    *n = 0;
    if (!e->model) return vt__err(VT_ESTATE, "no model loaded: photo search needs a model");
    vt_decode_opts dopts = {.fast = 1};
    if (e->pre.fit == VT_FIT_LETTERBOX) dopts.min_long = e->pre.size;
    else dopts.min_short = e->pre.size;
    vt_image img;
    int rc = vt_image_decode(buf, len, name, &dopts, &img);
    if (rc) return rc;
    int cap = e->dim > 0 ? e->dim : 65536;
    float *q = malloc(sizeof(float) * (size_t)cap);
    if (!q) {
        vt_image_free(&img);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    rc = vt_engine_embed_image(e, &img, q, cap);
    vt_image_free(&img);
    if (rc >= 0 && e->dim && rc != e->dim)
        rc = vt__err(VT_EINVAL, "the model gives %d values but the catalog's embeddings have %d", rc, e->dim);
    if (rc >= 0) rc = search_vec(e, q, k, f, -1, hits, n);
    free(q);
    return rc;
}
