/* store.c: the store's front end: opening by URI, argument checks, locking, filters, label sets. */
#include "store/store_internal.h"
#include <string.h>
#include <strings.h>

/* Opens the backend named by the URI: "sqlite:PATH", "mongodb://..." (not built), or a plain
 * path (SQLite). */
int vt_store_open(const char *uri, unsigned flags, vt_store **out) {
    if (!out) return vt__err(VT_EINVAL, "vt_store_open: out is NULL");
    *out = NULL;
    if (!uri || !*uri) return vt__err(VT_EINVAL, "vt_store_open: empty store path");
    if (flags & ~(VT_STORE_READONLY | VT_STORE_SYNC_FULL | VT_STORE_FAST_READS)) return vt__err(VT_EINVAL, "vt_store_open: unknown flags %#x", flags);
    const vt__store_ops *ops;
    const char *path = uri;
    if (!strncmp(uri, "mongodb://", 10) || !strncmp(uri, "mongodb+srv://", 14))
        return vt__err(VT_EUNSUPPORTED, "%s: this vitrine was built without the MongoDB backend", uri);
    if (!strncmp(uri, "sqlite:", 7)) path = uri + 7;
    if (!*path) return vt__err(VT_EINVAL, "vt_store_open: empty store path");
    ops = &vt__sqlite_ops;
    vt_store *s = calloc(1, sizeof *s);
    if (!s) return vt__err(VT_ENOMEM, "out of memory");
    int rc = vt__sqlite_open(path, flags, &s->b);
    if (rc) {
        free(s);
        return rc;
    }
    s->ops = ops;
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return VT_OK;
}

void vt_store_close(vt_store *s) {
    if (!s) return;
    s->ops->close(s->b);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

const char *vt_store_backend(const vt_store *s) { return s ? s->ops->name : "none"; }

#define CHECK_STORE(s)                                                                                   \
    do {                                                                                                 \
        if (!(s)) return vt__err(VT_EINVAL, "%s: store is NULL", __func__);                               \
    } while (0)
#define LOCKED(s, call)                                                                                  \
    do {                                                                                                 \
        pthread_mutex_lock(&(s)->mu);                                                                    \
        int rc_ = (call);                                                                                \
        pthread_mutex_unlock(&(s)->mu);                                                                  \
        return rc_;                                                                                      \
    } while (0)

int vt_store_schema_version(vt_store *s, int *version) {
    CHECK_STORE(s);
    if (!version) return vt__err(VT_EINVAL, "vt_store_schema_version: version is NULL");
    LOCKED(s, s->ops->schema_version(s->b, version));
}

int vt_store_begin(vt_store *s) {
    CHECK_STORE(s);
    LOCKED(s, s->ops->begin(s->b));
}

int vt_store_commit(vt_store *s) {
    CHECK_STORE(s);
    LOCKED(s, s->ops->commit(s->b));
}

int vt_store_rollback(vt_store *s) {
    CHECK_STORE(s);
    LOCKED(s, s->ops->rollback(s->b));
}

/* Nonzero when `s` is a JSON object text (checked cheaply: the backend validates fully). */
static int looks_like_object(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    return *s == '{';
}

int vt_store_put(vt_store *s, const vt_item *it, int64_t *label) {
    CHECK_STORE(s);
    if (!it || !it->id) return vt__err(VT_EINVAL, "vt_store_put: item or id is NULL");
    if (!vt_catalog_id_ok(it->id)) return vt__err(VT_EINVAL, "vt_store_put: invalid item id '%.80s'", it->id);
    if (it->attrs && !looks_like_object(it->attrs))
        return vt__err(VT_EINVAL, "vt_store_put: %s: attributes are not a JSON object", it->id);
    LOCKED(s, s->ops->put(s->b, it, label));
}

int vt_store_get(vt_store *s, const char *id, vt_item *out) {
    CHECK_STORE(s);
    if (!id || !out) return vt__err(VT_EINVAL, "vt_store_get: id or out is NULL");
    memset(out, 0, sizeof *out);
    LOCKED(s, s->ops->get(s->b, id, 0, out));
}

int vt_store_get_by_label(vt_store *s, int64_t label, vt_item *out) {
    CHECK_STORE(s);
    if (!out) return vt__err(VT_EINVAL, "vt_store_get_by_label: out is NULL");
    memset(out, 0, sizeof *out);
    LOCKED(s, s->ops->get(s->b, NULL, label, out));
}

int vt_store_get_many(vt_store *s, const int64_t *labels, size_t n, vt_item *out, size_t *found) {
    CHECK_STORE(s);
    if (found) *found = 0;
    if (n && (!labels || !out)) return vt__err(VT_EINVAL, "vt_store_get_many: NULL argument");
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].label = -1;
    }
    size_t k = 0;
    pthread_mutex_lock(&s->mu);
    int rc = n ? s->ops->get_many(s->b, labels, n, out, &k) : VT_OK;
    pthread_mutex_unlock(&s->mu);
    if (rc)
        for (size_t i = 0; i < n; i++) vt_item_clear(&out[i]), out[i].label = -1;
    else if (found)
        *found = k;
    return rc;
}

int vt_store_delete(vt_store *s, const char *id) {
    CHECK_STORE(s);
    if (!id) return vt__err(VT_EINVAL, "vt_store_delete: id is NULL");
    LOCKED(s, s->ops->del(s->b, id));
}

int vt_store_count(vt_store *s, const vt_filter *f, int64_t *n) {
    CHECK_STORE(s);
    if (!n) return vt__err(VT_EINVAL, "vt_store_count: n is NULL");
    LOCKED(s, s->ops->count(s->b, f, n));
}

int vt_store_foreach(vt_store *s, const vt_filter *f, vt_item_fn fn, void *user) {
    CHECK_STORE(s);
    if (!fn) return vt__err(VT_EINVAL, "vt_store_foreach: fn is NULL");
    LOCKED(s, s->ops->foreach(s->b, f, 0, -1, fn, user));
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

typedef struct {
    vt_item_list *l;
    size_t cap;
} list_ctx;

/* Copies one item into the growing list; 1 (stop) on out of memory. */
static int list_add(const vt_item *it, void *user) {
    list_ctx *c = user;
    vt_item_list *l = c->l;
    if (l->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 64;
        vt_item *ni = realloc(l->items, nc * sizeof *ni);
        if (!ni) return VT_ENOMEM;
        l->items = ni;
        c->cap = nc;
    }
    vt_item *d = &l->items[l->n];
    *d = *it;
    d->id = dup_or_null(it->id);
    d->attrs = dup_or_null(it->attrs);
    d->image = dup_or_null(it->image);
    if (!d->id || (it->attrs && !d->attrs) || (it->image && !d->image)) {
        vt_item_clear(d);
        return VT_ENOMEM;
    }
    l->n++;
    return 0;
}

int vt_store_list(vt_store *s, const vt_filter *f, int64_t offset, int64_t limit, vt_item_list *out) {
    CHECK_STORE(s);
    if (!out) return vt__err(VT_EINVAL, "vt_store_list: out is NULL");
    memset(out, 0, sizeof *out);
    if (offset < 0 || limit < 0) return vt__err(VT_EINVAL, "vt_store_list: negative offset or limit");
    list_ctx c = {out, 0};
    pthread_mutex_lock(&s->mu);
    int rc = s->ops->count(s->b, f, &out->total);
    if (rc == 0 && limit > 0) rc = s->ops->foreach(s->b, f, offset, limit, list_add, &c);
    pthread_mutex_unlock(&s->mu);
    if (rc == VT_ENOMEM) vt__err(rc, "vt_store_list: out of memory");
    if (rc) vt_item_list_free(out);
    return rc;
}

void vt_item_clear(vt_item *it) {
    if (!it) return;
    free(it->id);
    free(it->attrs);
    free(it->image);
    memset(it, 0, sizeof *it);
}

void vt_item_list_free(vt_item_list *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) vt_item_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* A model name is 1..128 printable bytes. */
static int model_ok(const char *m) {
    if (!m || !*m || strlen(m) > 128) return 0;
    for (const unsigned char *p = (const unsigned char *)m; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return 0;
    return 1;
}

int vt_store_put_embedding(vt_store *s, int64_t label, const char *model, const float *vec, int dim,
                           uint64_t hash) {
    CHECK_STORE(s);
    if (!model_ok(model)) return vt__err(VT_EINVAL, "vt_store_put_embedding: bad model name");
    if (!vec || dim <= 0 || dim > (1 << 20)) return vt__err(VT_EINVAL, "vt_store_put_embedding: bad vector (dim %d)", dim);
    LOCKED(s, s->ops->put_embedding(s->b, label, model, vec, dim, hash));
}

int vt_store_get_embedding(vt_store *s, int64_t label, const char *model, float *vec, int cap, int *dim,
                           uint64_t *hash) {
    CHECK_STORE(s);
    if (!model_ok(model)) return vt__err(VT_EINVAL, "vt_store_get_embedding: bad model name");
    if (!dim || cap < 0 || (cap > 0 && !vec)) return vt__err(VT_EINVAL, "vt_store_get_embedding: bad arguments");
    LOCKED(s, s->ops->get_embedding(s->b, label, model, vec, cap, dim, hash));
}

int vt_store_embedding_info(vt_store *s, int64_t label, const char *model, int *dim, uint64_t *hash) {
    CHECK_STORE(s);
    if (!model_ok(model)) return vt__err(VT_EINVAL, "vt_store_embedding_info: bad model name");
    int d;
    pthread_mutex_lock(&s->mu);
    int rc = s->ops->get_embedding(s->b, label, model, NULL, 0, &d, hash);
    pthread_mutex_unlock(&s->mu);
    if (rc == VT_ETOOBIG) rc = VT_OK; /* cap 0: only the dimension and hash were wanted */
    if (!rc && dim) *dim = d;
    return rc;
}

int vt_store_foreach_embedding(vt_store *s, const char *model, vt_embedding_fn fn, void *user) {
    CHECK_STORE(s);
    if (!model_ok(model) || !fn) return vt__err(VT_EINVAL, "vt_store_foreach_embedding: bad model name or fn");
    LOCKED(s, s->ops->foreach_embedding(s->b, model, fn, user));
}

int vt_store_count_embeddings(vt_store *s, const char *model, int64_t *n) {
    CHECK_STORE(s);
    if (!model_ok(model) || !n) return vt__err(VT_EINVAL, "vt_store_count_embeddings: bad model name or n");
    LOCKED(s, s->ops->count_embeddings(s->b, model, n));
}

int vt_store_labels(vt_store *s, const vt_filter *f, vt_labels *out) {
    CHECK_STORE(s);
    if (!out) return vt__err(VT_EINVAL, "vt_store_labels: out is NULL");
    memset(out, 0, sizeof *out);
    LOCKED(s, s->ops->labels(s->b, f, out));
}

static int key_ok(const char *k) { return k && *k && strlen(k) <= 256; }

int vt_store_meta_set(vt_store *s, const char *key, const char *value) {
    CHECK_STORE(s);
    if (!key_ok(key) || !value) return vt__err(VT_EINVAL, "vt_store_meta_set: bad key or value");
    LOCKED(s, s->ops->meta_set(s->b, key, value));
}

int vt_store_meta_get(vt_store *s, const char *key, char *buf, size_t cap) {
    CHECK_STORE(s);
    if (!key_ok(key) || !buf || !cap) return vt__err(VT_EINVAL, "vt_store_meta_get: bad key or buffer");
    LOCKED(s, s->ops->meta_get(s->b, key, buf, cap));
}

int vt_store_check(vt_store *s) {
    CHECK_STORE(s);
    LOCKED(s, s->ops->check(s->b));
}

/* ---- label sets */

void vt_labels_free(vt_labels *l) {
    if (!l) return;
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int vt_labels_contains(const vt_labels *l, int64_t label) {
    if (!l || !l->n) return 0;
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->v[mid] < label) lo = mid + 1;
        else hi = mid;
    }
    return lo < l->n && l->v[lo] == label;
}

int vt_labels_bitmap(const vt_labels *l, uint64_t **words, size_t *nwords) {
    if (!l || !words || !nwords) return vt__err(VT_EINVAL, "vt_labels_bitmap: NULL argument");
    *words = NULL;
    *nwords = 0;
    if (l->n && l->v[0] < 0) return vt__err(VT_EINVAL, "vt_labels_bitmap: negative label %lld", (long long)l->v[0]);
    size_t nw = l->n ? (size_t)(l->v[l->n - 1] / 64) + 1 : 1;
    if (l->n && (uint64_t)l->v[l->n - 1] > (1ull << 36))
        return vt__err(VT_ETOOBIG, "vt_labels_bitmap: label %lld is too large for a bitmap", (long long)l->v[l->n - 1]);
    uint64_t *w = calloc(nw, sizeof *w);
    if (!w) return vt__err(VT_ENOMEM, "vt_labels_bitmap: out of memory (%zu words)", nw);
    for (size_t i = 0; i < l->n; i++) w[l->v[i] >> 6] |= 1ull << (l->v[i] & 63);
    *words = w;
    *nwords = nw;
    return VT_OK;
}

void vt_labels_bitmap_free(uint64_t *words) { free(words); }

/* ---- filters */

int vt_filter_create(vt_filter **out) {
    if (!out) return vt__err(VT_EINVAL, "vt_filter_create: out is NULL");
    *out = calloc(1, sizeof **out);
    return *out ? VT_OK : vt__err(VT_ENOMEM, "out of memory");
}

void vt_filter_free(vt_filter *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->c[i].field);
        free(f->c[i].path);
        free(f->c[i].value);
    }
    free(f->c);
    free(f);
}

size_t vt_filter_count(const vt_filter *f) { return f ? f->n : 0; }

/* The indexed column of a well-known field name (case-insensitive), or NULL. */
/* The indexed column a filter field names (its aliases included, any case), or NULL. */
const char *vt__filter_column(const char *field) {
    static const struct { const char *name, *col; } map[] = {
        {"id", "id"},
        {"gender", "gender"},
        {"masterCategory", "master_category"}, {"category", "master_category"},
        {"subCategory", "sub_category"},
        {"articleType", "article_type"},
        {"baseColour", "colour"}, {"colour", "colour"}, {"color", "colour"}, {"baseColor", "colour"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcasecmp(field, map[i].name)) return map[i].col;
    return NULL;
}

/* 1 when `field` is a name a filter may use: 1..64 letters, digits, _ . - */
int vt__filter_name_ok(const char *field) {
    size_t fl = strlen(field);
    if (!fl || fl > 64) return 0;
    for (size_t i = 0; i < fl; i++) {
        char ch = field[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
              ch == '-' || ch == '.'))
            return 0;
    }
    return 1;
}

int vt_filter_add(vt_filter *f, const char *field, const char *value) {
    if (!f || !field || !value) return vt__err(VT_EINVAL, "vt_filter_add: NULL argument");
    size_t fl = strlen(field);
    if (!vt__filter_name_ok(field))
        return vt__err(VT_EINVAL, "filter field '%.80s': 1..64 letters, digits, _ . - are allowed", field);
    if (strlen(value) > 1024) return vt__err(VT_EINVAL, "filter value for '%s' is too long", field);
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 4;
        if (nc > 64) return vt__err(VT_ETOOBIG, "too many filter conditions (at most 64)");
        vt__cond *c = realloc(f->c, nc * sizeof *c);
        if (!c) return vt__err(VT_ENOMEM, "out of memory");
        f->c = c;
        f->cap = nc;
    }
    vt__cond *c = &f->c[f->n];
    c->column = vt__filter_column(field);
    c->field = strdup(field);
    c->value = strdup(value);
    c->path = malloc(fl + 3);
    if (!c->field || !c->value || !c->path) {
        free(c->field);
        free(c->value);
        free(c->path);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    /* A field with dots or dashes is quoted so that it names one key, not a nested path. */
    if (strpbrk(field, ".-")) {
        free(c->path);
        c->path = malloc(fl + 5);
        if (!c->path) {
            free(c->field);
            free(c->value);
            return vt__err(VT_ENOMEM, "out of memory");
        }
        snprintf(c->path, fl + 5, "$.\"%s\"", field);
    } else {
        snprintf(c->path, fl + 3, "$.%s", field);
    }
    f->n++;
    return VT_OK;
}

int vt_filter_parse(vt_filter *f, const char *cond) {
    if (!f || !cond) return vt__err(VT_EINVAL, "vt_filter_parse: NULL argument");
    const char *eq = strchr(cond, '=');
    if (!eq || eq == cond) return vt__err(VT_EINVAL, "filter '%.80s' is not of the form field=value", cond);
    size_t fl = (size_t)(eq - cond);
    if (fl > 64) return vt__err(VT_EINVAL, "filter field in '%.80s' is too long", cond);
    char field[65];
    memcpy(field, cond, fl);
    field[fl] = 0;
    return vt_filter_add(f, field, eq + 1);
}
