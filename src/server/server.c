/* server.c: the REST API (docs/API.md) and the embedded web page, over the HTTP layer. */
#include "core/internal.h"
#include "server/assets.h"
#include "server/http_internal.h"
#include "server/image_file.h"
#include "server/limits.h"

#include <string.h>
#include <strings.h>
#include <unistd.h>

#define FACET_FIELDS 4
static const char *const facet_fields[FACET_FIELDS] = {"gender", "masterCategory", "articleType", "baseColour"};

/* An item as the API shows it, rendered once at start: the server answers item and similar-item
 * requests from memory, without a store round trip per result. */
typedef struct {
    int64_t label;
    char *id;
    char *json;    /* {"id":...,"attributes":...,"image":...} */
    size_t json_len;
    char *id_json; /* the id as a JSON string literal */
} cached_item;

struct vt_server {
    vt_store *store;
    vt_engine *engine;
    vt__http *http;
    char *facets; /* JSON text, computed once at start */
    size_t max_image_bytes;
    cached_item *items; /* ascending label order */
    size_t nitems, cap;
    uint32_t *slots;    /* open-addressing hash of ids: index + 1, 0 = empty */
    size_t nslots;
    char *model_json;   /* the model name as a JSON string literal */
    vt_fields *fields;  /* what filters may name */
    int store_fault;    /* set (atomically) once a store read failed: /healthz says 503 */
    size_t relative_images; /* items whose photo path is relative */
    vt__uploads *uploads; /* photo-search admission: pixel limit, decodes at once */
};

void vt_server_opts_init(vt_server_opts *o) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->max_body = 16u << 20;
    o->max_upload_pixels = VT_DEFAULT_MAX_UPLOAD_PIXELS;
    o->max_decodes = 0; /* 2, or 1 with fewer than 4 threads */
    o->decode_wait_ms = VT_DEFAULT_DECODE_WAIT_MS;
    o->max_conns = VT_DEFAULT_MAX_CONNS;
    o->max_conns_per_ip = VT_DEFAULT_MAX_CONNS_PER_IP;
    o->request_timeout = VT_DEFAULT_REQUEST_TIMEOUT;
    o->max_upload_memory = VT_DEFAULT_MAX_UPLOAD_MEMORY;
}

/* ------------------------------------------------------------------ helpers */

/* Answers a failure to read the store: 500 storage_error, with the store's message (which names
 * files) only in the server's log; /healthz reports the store unhealthy from then on. Out of
 * memory is 500 internal, a busy store 503. */
static void store_error(vt_server *s, vt__http_resp *rs, int rc) {
    if (rc == VT_ENOMEM) return vt__http_error(rs, 500, "internal", "out of memory");
    VT_LOGE("store: %s", vt_errmsg());
    if (rc == VT_ESTATE) return vt__http_error(rs, 503, "unavailable", "the item store is busy; retry");
    __atomic_store_n(&s->store_fault, 1, __ATOMIC_RELAXED);
    vt__http_error(rs, 500, "storage_error", "the item store could not be read (the server's log has the details)");
}

/* Answers a failure of the engine (similar items, photo search). Client errors keep the library's
 * message, which only quotes the request; server faults are logged, not shown. */
static void lib_error(vt_server *s, vt__http_resp *rs, int rc) {
    switch (rc) {
    case VT_ENOTFOUND: return vt__http_error(rs, 404, "not_found", "%s", vt_errmsg());
    case VT_EINVAL: return vt__http_error(rs, 400, "bad_request", "%s", vt_errmsg());
    case VT_EEMPTY:
    case VT_ENOTIMAGE:
    case VT_ETRUNCATED:
    case VT_ECORRUPT:
    case VT_ETOOBIG:
    case VT_EUNSUPPORTED: return vt__http_error(rs, 422, "bad_image", "%s", vt_errmsg());
    case VT_ESTATE: return vt__http_error(rs, 503, "unavailable", "%s", vt_errmsg());
    case VT_EIO: return store_error(s, rs, rc); /* the engine's code for a store that could not be read */
    case VT_ENOMEM: return vt__http_error(rs, 500, "internal", "out of memory");
    default:
        VT_LOGE("%s", vt_errmsg());
        return vt__http_error(rs, 500, "internal", "internal error (the server's log has the details)");
    }
}

/* Appends `id` percent-encoded (RFC 3986: all but unreserved characters) to out (room: cap). */
static void url_encode(const char *id, char *out, size_t cap) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = strlen(out);
    for (const unsigned char *p = (const unsigned char *)id; *p && o + 4 <= cap; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '.' || *p == '_' || *p == '~') {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
}

/* {"id":..., "attributes":{...}, "image":"/images/<id, percent-encoded>"} */
static json_t *item_json(const vt_item *it) {
    json_t *attrs = it->attrs ? json_loads(it->attrs, 0, NULL) : NULL;
    if (!json_is_object(attrs)) {
        json_decref(attrs);
        attrs = json_object();
    }
    char img[8 + 3 * 1024 + 1] = "/images/";
    url_encode(it->id, img, sizeof img);
    return json_pack("{s:s,s:o,s:s}", "id", it->id, "attributes", attrs, "image", img);
}

typedef struct {
    const vt_fields *fields;
    const char *const *params; /* the route's own parameters, NULL-terminated */
    vt_filter *f;
    const char *bad;
    int unknown;
    int rc;
} filter_ctx;

/* Every query argument other than the route's own parameters is a FIELD=VALUE filter, on a field
 * the catalog has. */
static int add_filter(void *p, const char *k, const char *v) {
    filter_ctx *c = p;
    for (const char *const *q = c->params; *q; q++)
        if (!strcmp(k, *q)) return 0;
    if (!vt_fields_has(c->fields, k)) {
        c->bad = k;
        c->unknown = 1;
        return 1;
    }
    int rc = vt_filter_add(c->f, k, v ? v : "");
    if (rc) {
        c->bad = k;
        c->rc = rc;
        return 1;
    }
    return 0;
}

/* The filter of the request's query arguments; 400 naming an unknown parameter and the fields. */
static int query_filter(vt_server *s, const vt__http_req *rq, vt__http_resp *rs, const char *const *params,
                        vt_filter **out) {
    *out = NULL;
    vt_filter *f;
    if (vt_filter_create(&f)) {
        vt__http_error(rs, 500, "internal", "out of memory");
        return -1;
    }
    filter_ctx c = {s->fields, params, f, NULL, 0, 0};
    vt__http_query_each(rq, add_filter, &c);
    if (c.unknown || c.rc) {
        char own[128] = "";
        for (const char *const *q = params; *q; q++)
            snprintf(own + strlen(own), sizeof own - strlen(own), "%s%s", q == params ? "" : ", ", *q);
        if (c.unknown)
            vt__http_error(rs, 400, "bad_request",
                           "unknown parameter '%.100s': the parameters are %s, or a filter on one of the fields: %s",
                           c.bad, own, vt_fields_list(s->fields));
        else
            vt__http_error(rs, 400, "bad_request", "bad filter '%.100s': %s", c.bad, vt_errmsg());
        vt_filter_free(f);
        return -1;
    }
    *out = f;
    return 0;
}

static const char *const items_params[] = {"offset", "limit", NULL};
static const char *const search_params[] = {"k", NULL};

/* Reads integer query argument `key` into *v (default kept when absent); 400 when malformed. */
static int query_int(const vt__http_req *rq, vt__http_resp *rs, const char *key, long lo, long hi, long *v) {
    const char *s = vt__http_query(rq, key);
    if (!s) return 0;
    char *end;
    long x = strtol(s, &end, 10);
    if (!*s || *end || x < lo || x > hi) {
        vt__http_error(rs, 400, "bad_request", "'%s' must be an integer from %ld to %ld (got '%s')", key, lo, hi, s);
        return -1;
    }
    *v = x;
    return 0;
}

/* ------------------------------------------------------------------ item cache */

static uint64_t hash_id(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static const cached_item *cache_by_id(const vt_server *s, const char *id) {
    if (!s->nslots) return NULL;
    for (size_t i = hash_id(id) & (s->nslots - 1);; i = (i + 1) & (s->nslots - 1)) {
        uint32_t v = s->slots[i];
        if (!v) return NULL;
        if (!strcmp(s->items[v - 1].id, id)) return &s->items[v - 1];
    }
}

static const cached_item *cache_by_label(const vt_server *s, int64_t label) {
    size_t lo = 0, hi = s->nitems;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->items[mid].label < label) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->nitems && s->items[lo].label == label ? &s->items[lo] : NULL;
}

static int cache_item(const vt_item *it, void *user) {
    vt_server *s = user;
    if (!vt__utf8_valid(it->id, strlen(it->id))) { /* JSON cannot carry it; ingest refuses such ids */
        VT_LOGW("item with label %lld left out: its id is not UTF-8", (long long)it->label);
        return 0;
    }
    if (it->image && *it->image && it->image[0] != '/') s->relative_images++;
    if (s->nitems == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        cached_item *n = realloc(s->items, cap * sizeof *n);
        if (!n) return VT_ENOMEM;
        s->items = n;
        s->cap = cap;
    }
    cached_item *c = &s->items[s->nitems];
    json_t *j = item_json(it), *idj = json_string(it->id);
    c->label = it->label;
    c->id = strdup(it->id);
    c->json = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    c->id_json = json_dumps(idj, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    json_decref(j);
    json_decref(idj);
    c->json_len = c->json ? strlen(c->json) : 0;
    if (!c->id || !c->json || !c->id_json) {
        free(c->id);
        free(c->json);
        free(c->id_json);
        return VT_ENOMEM;
    }
    s->nitems++;
    return 0;
}

static int build_cache(vt_server *s) {
    int rc = vt_store_foreach(s->store, NULL, cache_item, s);
    if (rc) return rc < 0 ? rc : vt__err(VT_ENOMEM, "out of memory caching items");
    s->nslots = 16;
    while (s->nslots < s->nitems * 2) s->nslots *= 2;
    s->slots = calloc(s->nslots, sizeof *s->slots);
    if (!s->slots) return vt__err(VT_ENOMEM, "out of memory");
    for (size_t k = 0; k < s->nitems; k++) {
        size_t i = hash_id(s->items[k].id) & (s->nslots - 1);
        while (s->slots[i]) i = (i + 1) & (s->nslots - 1);
        s->slots[i] = (uint32_t)(k + 1);
    }
    return VT_OK;
}

static void free_cache(vt_server *s) {
    for (size_t i = 0; i < s->nitems; i++) {
        free(s->items[i].id);
        free(s->items[i].json);
        free(s->items[i].id_json);
    }
    free(s->items);
    free(s->slots);
    free(s->model_json);
    vt_fields_free(s->fields);
}

/* ------------------------------------------------------------------ routes */

static void route_items(vt_server *s, const vt__http_req *rq, vt__http_resp *rs) {
    long offset = 0, limit = 24;
    if (query_int(rq, rs, "offset", 0, INT32_MAX, &offset) || query_int(rq, rs, "limit", 1, 200, &limit)) return;
    vt_filter *f;
    if (query_filter(s, rq, rs, items_params, &f)) return;
    vt_item_list l;
    int rc = vt_store_list(s->store, f, offset, limit, &l);
    vt_filter_free(f);
    if (rc) return store_error(s, rs, rc);
    json_t *arr = json_array();
    for (size_t i = 0; i < l.n; i++) json_array_append_new(arr, item_json(&l.items[i]));
    vt__http_json(rs, 200, json_pack("{s:o,s:I,s:i,s:i}", "items", arr, "total", (json_int_t)l.total, "offset",
                                     (int)offset, "limit", (int)limit));
    vt_item_list_free(&l);
}

static void route_item(vt_server *s, const char *id, vt__http_resp *rs) {
    const cached_item *c = cache_by_id(s, id);
    if (!c) return vt__http_error(rs, 404, "not_found", "no item with id '%s'", id);
    rs->status = 200;
    rs->content_type = "application/json";
    rs->body = (uint8_t *)c->json;
    rs->len = c->json_len;
    rs->body_static = 1;
}

/* Answers {<head>"results":[{"item":{...},"score":s},...]} from the item cache; `head` holds the
 * leading members with their trailing commas. */
static void hits_json(vt_server *s, const vt_hit *hits, int n, const char *head, vt__http_resp *rs) {
    vt__buf b = {0};
    vt__buf_str(&b, "{");
    vt__buf_str(&b, head);
    vt__buf_str(&b, "\"results\":[");
    int first = 1;
    for (int i = 0; i < n; i++) {
        const cached_item *c = cache_by_label(s, hits[i].label);
        if (!c) continue;
        char score[64];
        snprintf(score, sizeof score, ",\"score\":%.6f}", (double)hits[i].score);
        vt__buf_str(&b, first ? "{\"item\":" : ",{\"item\":");
        vt__buf_add(&b, c->json, c->json_len);
        vt__buf_str(&b, score);
        first = 0;
    }
    vt__buf_str(&b, "]}");
    if (b.oom) {
        free(b.p);
        return vt__http_error(rs, 500, "internal", "out of memory");
    }
    rs->status = 200;
    rs->content_type = "application/json";
    rs->body = (uint8_t *)b.p;
    rs->len = b.len;
}

static void route_similar(vt_server *s, const char *id, const vt__http_req *rq, vt__http_resp *rs) {
    long k = 10;
    if (query_int(rq, rs, "k", 1, 1000, &k)) return;
    if (!s->engine) return vt__http_error(rs, 503, "unavailable", "no embeddings: run vitrine ingest with a model");
    vt_filter *f;
    if (query_filter(s, rq, rs, search_params, &f)) return;
    const cached_item *c = cache_by_id(s, id);
    if (!c) {
        vt_filter_free(f);
        return vt__http_error(rs, 404, "not_found", "no item with id '%s'", id);
    }
    vt_hit *hits = malloc(sizeof *hits * (size_t)k);
    int n = 0;
    int rc = hits ? vt_engine_similar_label(s->engine, c->label, (int)k, f, hits, &n) : VT_ENOMEM;
    vt_filter_free(f);
    if (rc) {
        free(hits);
        return lib_error(s, rs, rc);
    }
    char head[1024];
    snprintf(head, sizeof head, "\"id\":%s,\"model\":%s,", c->id_json, s->model_json);
    hits_json(s, hits, n, head, rs);
    free(hits);
}

static void route_search(vt_server *s, const vt__http_req *rq, vt__http_resp *rs) {
    long k = 10;
    if (query_int(rq, rs, "k", 1, 1000, &k)) return;
    if (!rq->body_len) return vt__http_error(rs, 400, "bad_request", "send the photo's bytes as the request body");
    if (!s->engine) return vt__http_error(rs, 503, "unavailable", "no embeddings: run vitrine ingest with a model");
    /* 413 above the upload pixel limit (from the header), 503 when the decodes at once stay busy */
    if (vt__uploads_admit(s->uploads, rq->body, rq->body_len, rs)) return;
    vt_filter *f;
    if (query_filter(s, rq, rs, search_params, &f)) return vt__uploads_done(s->uploads);
    vt_hit *hits = malloc(sizeof *hits * (size_t)k);
    int n = 0;
    int rc = hits ? vt_engine_search_image(s->engine, rq->body, rq->body_len, "uploaded photo", (int)k, f, hits, &n)
                  : VT_ENOMEM;
    vt__uploads_done(s->uploads);
    vt_filter_free(f);
    if (rc) {
        free(hits);
        return lib_error(s, rs, rc);
    }
    char head[512];
    snprintf(head, sizeof head, "\"model\":%s,", s->model_json);
    hits_json(s, hits, n, head, rs);
    free(hits);
}

static void route_image(vt_server *s, const char *id, vt__http_resp *rs) {
    /* Only a catalog item's own file is ever served: the path comes from the store, never from
     * the request; and only when it is a regular file that is a photo (the store may come from a
     * feed that named /etc/passwd). */
    vt_item it;
    int rc = vt_store_get(s->store, id, &it);
    if (rc == VT_ENOTFOUND) return vt__http_error(rs, 404, "not_found", "no item with id '%s'", id);
    if (rc) return store_error(s, rs, rc);
    if (!it.image || !*it.image) {
        vt_item_clear(&it);
        return vt__http_error(rs, 404, "not_found", "item '%s' has no image", id);
    }
    uint8_t *buf;
    size_t len;
    const char *mime;
    rc = vt__image_file_read(it.image, s->max_image_bytes, &buf, &len, &mime);
    vt_item_clear(&it);
    if (rc == VT_ENOMEM) return vt__http_error(rs, 500, "internal", "out of memory");
    if (rc) { /* a missing photo is common; a file that is not one is worth a warning */
        if (rc == VT_ENOENT) VT_LOGI("image of item '%s' not served: %s", id, vt_errmsg());
        else VT_LOGW("image of item '%s' not served: %s", id, vt_errmsg());
        return vt__http_error(rs, 404, "not_found", "image of item '%s' is not available", id);
    }
    rs->status = 200;
    rs->content_type = mime;
    rs->body = buf;
    rs->len = len;
    snprintf(rs->cache_control, sizeof rs->cache_control, "public, max-age=3600");
}

/* GET /healthz: 200 while the store answers, 503 once a read of it failed (a corrupt or vanished
 * store does not heal; the server's log says what failed). */
static void route_healthz(vt_server *s, vt__http_resp *rs) {
    int version;
    int bad = __atomic_load_n(&s->store_fault, __ATOMIC_RELAXED);
    if (!bad && vt_store_schema_version(s->store, &version)) {
        VT_LOGE("store: %s", vt_errmsg());
        __atomic_store_n(&s->store_fault, 1, __ATOMIC_RELAXED);
        bad = 1;
    }
    json_int_t n = (json_int_t)(s->engine ? vt_engine_size(s->engine) : 0);
    const char *model = s->engine ? vt_engine_model_name(s->engine) : NULL;
    if (bad)
        return vt__http_json(rs, 503, json_pack("{s:s,s:s,s:I,s:s?}", "status", "unhealthy", "store",
                                                "a read of the item store failed (the server's log has the details)",
                                                "indexed", n, "model", model));
    vt__http_json(rs, 200, json_pack("{s:s,s:I,s:s?}", "status", "ok", "indexed", n, "model", model));
}

static void handler(void *app, const vt__http_req *rq, vt__http_resp *rs) {
    vt_server *s = app;
    const char *p = rq->path;
    int get = !strcmp(rq->method, "GET") || !strcmp(rq->method, "HEAD");
    int post = !strcmp(rq->method, "POST");
    const char *allow = "GET, HEAD";
    if (!strcmp(p, "/healthz")) {
        if (!get) goto method;
        return route_healthz(s, rs);
    }
    if (!strcmp(p, "/api/search")) {
        allow = "POST";
        if (!post) goto method;
        return route_search(s, rq, rs);
    }
    if (!strcmp(p, "/api/facets")) {
        if (!get) goto method;
        vt__http_json(rs, 200, json_loads(s->facets, 0, NULL));
        return;
    }
    if (!strcmp(p, "/api/items") || !strcmp(p, "/api/items/")) {
        if (!get) goto method;
        return route_items(s, rq, rs);
    }
    if (!strncmp(p, "/api/items/", 11)) {
        if (!get) goto method;
        char id[512];
        const char *rest = p + 11, *slash = strchr(rest, '/');
        size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
        if (n == 0 || n >= sizeof id) return vt__http_error(rs, 404, "not_found", "no such item");
        memcpy(id, rest, n);
        id[n] = 0;
        if (!slash) return route_item(s, id, rs);
        if (!strcmp(slash, "/similar")) return route_similar(s, id, rq, rs);
        return vt__http_error(rs, 404, "not_found", "no route for %s", p);
    }
    if (!strncmp(p, "/images/", 8)) {
        if (!get) goto method;
        const char *id = p + 8;
        if (!*id || strchr(id, '/')) return vt__http_error(rs, 404, "not_found", "no such image");
        return route_image(s, id, rs);
    }
    const vt_asset *a = vt__asset_find(p);
    if (a) {
        if (!get) goto method;
        rs->status = 200;
        rs->content_type = a->mime;
        rs->body = (uint8_t *)a->data;
        rs->len = a->len;
        rs->body_static = 1;
        snprintf(rs->cache_control, sizeof rs->cache_control, "no-cache");
        return;
    }
    vt__http_error(rs, 404, "not_found", "no route for %s %s", rq->method, p);
    return;
method:
    vt__http_error(rs, 405, "method_not_allowed", "%s is not allowed on %s (allowed: %s)", rq->method, p, allow);
    rs->allow = allow;
}

/* ------------------------------------------------------------------ facets */

typedef struct {
    json_t *counts[FACET_FIELDS]; /* value -> count */
} facet_ctx;

static int facet_item(const vt_item *it, void *user) {
    facet_ctx *c = user;
    json_t *a = it->attrs ? json_loads(it->attrs, 0, NULL) : NULL;
    for (int i = 0; a && i < FACET_FIELDS; i++) {
        const char *v = json_string_value(json_object_get(a, facet_fields[i]));
        if (!v || !*v) continue;
        json_t *n = json_object_get(c->counts[i], v);
        json_object_set_new(c->counts[i], v, json_integer(n ? json_integer_value(n) + 1 : 1));
    }
    json_decref(a);
    return 0;
}

/* {"gender":[{"value":"Men","count":5964},...],...}, each list by decreasing count. */
static int compute_facets(vt_server *s) {
    facet_ctx c;
    for (int i = 0; i < FACET_FIELDS; i++) c.counts[i] = json_object();
    int rc = vt_store_foreach(s->store, NULL, facet_item, &c);
    json_t *out = json_object();
    for (int i = 0; i < FACET_FIELDS; i++) {
        size_t n = json_object_size(c.counts[i]), k = 0;
        struct kv { const char *v; json_int_t n; } *arr = malloc(sizeof *arr * (n ? n : 1));
        const char *key;
        json_t *val;
        json_object_foreach(c.counts[i], key, val) {
            arr[k].v = key;
            arr[k++].n = json_integer_value(val);
        }
        for (size_t a = 1; a < k; a++) /* insertion sort: few distinct values */
            for (size_t b = a; b > 0 && (arr[b].n > arr[b - 1].n ||
                                         (arr[b].n == arr[b - 1].n && strcmp(arr[b].v, arr[b - 1].v) < 0)); b--) {
                struct kv t = arr[b];
                arr[b] = arr[b - 1];
                arr[b - 1] = t;
            }
        json_t *list = json_array();
        for (size_t a = 0; a < k; a++)
            json_array_append_new(list, json_pack("{s:s,s:I}", "value", arr[a].v, "count", arr[a].n));
        json_object_set_new(out, facet_fields[i], list);
        free(arr);
        json_decref(c.counts[i]);
    }
    s->facets = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    if (rc) return rc;
    return s->facets ? VT_OK : vt__err(VT_ENOMEM, "out of memory");
}

/* ------------------------------------------------------------------ lifecycle */

int vt_server_start(vt_store *store, vt_engine *engine, const vt_server_opts *o, vt_server **out) {
    *out = NULL;
    if (!store) return vt__err(VT_EINVAL, "vt_server_start: no store");
    vt_server_opts defaults;
    if (!o) {
        vt_server_opts_init(&defaults);
        o = &defaults;
    }
    vt_server *s = calloc(1, sizeof *s);
    if (!s) return vt__err(VT_ENOMEM, "out of memory");
    s->store = store;
    s->engine = engine;
    s->max_image_bytes = 64u << 20;
    int rc = vt__uploads_create(o->max_upload_pixels, o->max_decodes, o->threads, o->decode_wait_ms, &s->uploads);
    if (rc == 0) rc = compute_facets(s);
    if (rc == 0) rc = build_cache(s);
    if (rc == 0) rc = vt_fields_load(store, &s->fields);
    if (rc == 0 && s->relative_images) {
        /* the store does not record where ingest ran: relative paths can only be taken from here */
        char cwd[4096];
        VT_LOGW("%zu items have photo paths relative to the folder vitrine ingest ran in; they are read from "
                "this server's working folder %s", s->relative_images, getcwd(cwd, sizeof cwd) ? cwd : "(unknown)");
    }
    if (rc == 0 && engine) {
        json_t *m = json_string(vt_engine_model_name(engine));
        s->model_json = json_dumps(m, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
        json_decref(m);
        if (!s->model_json) rc = vt__err(VT_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        vt__http_opts ho = {.host = o->host, .port = o->port, .threads = o->threads, .max_body = o->max_body,
                            .max_conns = o->max_conns, .max_conns_per_ip = o->max_conns_per_ip,
                            .request_timeout = o->request_timeout, .max_upload_memory = o->max_upload_memory};
        rc = vt__http_start(&ho, handler, s, &s->http);
    }
    if (rc) {
        free_cache(s);
        free(s->facets);
        vt__uploads_free(s->uploads);
        free(s);
        return rc;
    }
    *out = s;
    return VT_OK;
}

int vt_server_port(const vt_server *s) { return s ? vt__http_port(s->http) : 0; }

int vt__server_add_connection(vt_server *s, int fd) { return vt__http_add_connection(s ? s->http : NULL, fd); }

void vt_server_stop(vt_server *s) {
    if (!s) return;
    vt__http_stop(s->http);
    free_cache(s);
    free(s->facets);
    vt__uploads_free(s->uploads);
    free(s);
}
