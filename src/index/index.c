/* index.c: the vt_index object: storage layout, labels, adds and removes, exact and batched search. */
#include "index_internal.h"
#include <math.h>
#include <string.h>
#include <sys/mman.h>

void vt_index_opts_init(vt_index_opts *o) {
    memset(o, 0, sizeof *o);
    o->kind = VT_INDEX_FLAT;
    o->store = VT_STORE_F32;
    o->metric = VT_METRIC_COSINE;
    o->M = 16;
    o->ef_construction = 200;
    o->seed = 42;
    o->threads = 1;
}

size_t vt__elem_size(vt_index_store s) { return s == VT_STORE_F32 ? 4 : s == VT_STORE_F16 ? 2 : 1; }

/* Validates o and allocates an empty index with the derived layout (no rows). A row is
 * [level-0 links (HNSW)][code][aux (i8)], with no padding: every part is a multiple of 4 bytes,
 * so u32 links, f32 (4-byte) and f16 (2-byte) codes and the aux floats stay naturally aligned
 * (the SIMD kernels use unaligned loads and need nothing more). */
int vt__index_alloc(const vt_index_opts *o, vt_index **out) {
    *out = NULL;
    if ((unsigned)o->kind > VT_INDEX_HNSW) return vt__err(VT_EINVAL, "index: unknown kind %d", (int)o->kind);
    if ((unsigned)o->store > VT_STORE_I8) return vt__err(VT_EINVAL, "index: unknown storage %d", (int)o->store);
    if ((unsigned)o->metric > VT_METRIC_L2) return vt__err(VT_EINVAL, "index: unknown metric %d", (int)o->metric);
    if (o->dim < 1 || o->dim > 65536) return vt__err(VT_EINVAL, "index: dimension %d is not in 1..65536", o->dim);
    if (o->kind == VT_INDEX_HNSW) {
        if (o->M < 2 || o->M > 256) return vt__err(VT_EINVAL, "index: M %d is not in 2..256", o->M);
        if (o->ef_construction < 1 || o->ef_construction > 100000)
            return vt__err(VT_EINVAL, "index: ef_construction %d is not in 1..100000", o->ef_construction);
    }
    if (o->threads < 0 || o->threads > 1024) return vt__err(VT_EINVAL, "index: thread count %d", o->threads);
    vt_index *x = calloc(1, sizeof *x);
    if (!x) return vt__err(VT_ENOMEM, "out of memory");
    x->o = *o;
    size_t pad = o->store == VT_STORE_I8 ? 64 : 16;
    x->dpad = ((size_t)o->dim + pad - 1) / pad * pad;
    x->code_bytes = x->dpad * vt__elem_size(o->store);
    if (o->kind == VT_INDEX_HNSW) {
        x->M = o->M;
        x->M0 = 2 * o->M;
        x->link_bytes = (size_t)(1 + x->M0) * 4;
        x->level_mult = 1.0 / log((double)o->M);
    }
    /* only int8 rows need a scale, and only l2 reads the squared norm (cosine and dot rank by
     * the dot product alone; f32/f16 l2 kernels compute the distance directly) */
    x->aux_bytes = o->store != VT_STORE_I8 ? 0 : o->metric == VT_METRIC_L2 ? 8 : 4;
    x->stride = x->link_bytes + x->code_bytes + x->aux_bytes;
    /* a flat f16 / i8 index keeps float32 vectors for re-ranking (an exact scan stays exact) */
    if (o->kind == VT_INDEX_FLAT && o->store != VT_STORE_F32) x->fpad = ((size_t)o->dim + 15) / 16 * 16;
    x->entry = VT__NOID;
    x->maxlevel = -1;
    vt_rng_seed(&x->rng, o->seed);
    pthread_mutex_init(&x->glock, NULL);
    pthread_mutex_init(&x->vmu, NULL);
    *out = x;
    return VT_OK;
}

int vt_index_create(const vt_index_opts *o, vt_index **out) {
    if (!o || !out) return vt__err(VT_EINVAL, "index: NULL argument");
    return vt__index_alloc(o, out);
}

void vt_index_free(vt_index *x) {
    if (!x) return;
    if (x->map) munmap(x->map, x->maplen);
    else {
        free(x->blocks);
        free(x->full);
    }
    free(x->labels);
    free(x->deleted);
    free(x->hkey);
    free(x->hval);
    free(x->levels);
    if (x->upper) {
        for (size_t i = x->upper_pool_n; i < x->n; i++) free(x->upper[i]);
    }
    free(x->upper);
    free(x->upper_pool);
    free(x->locks);
    for (int i = 0; i < x->nvfree; i++) {
        free(x->vfree[i]->tag);
        free(x->vfree[i]->cand);
        free(x->vfree[i]->res);
        free(x->vfree[i]);
    }
    free(x->vfree);
    pthread_mutex_destroy(&x->glock);
    pthread_mutex_destroy(&x->vmu);
    free(x);
}

/* Grows a heap array to hold `cap` elements of `size` bytes, zeroing the new part, with huge
 * pages advised (vt__advise_huge) before that part is first touched. A first allocation takes
 * fresh zero pages from calloc and touches none (a mapped load frees its row array unused). */
static int grow(void *pp, size_t old, size_t cap, size_t size) {
    void **p = pp;
    size_t bytes;
    if (vt__mul_overflow(cap, size, &bytes)) return -1;
    if (!*p) {
        if (!(*p = calloc(bytes ? bytes : 1, 1))) return -1;
        vt__advise_huge(*p, bytes);
        return 0;
    }
    void *q = realloc(*p, bytes ? bytes : 1);
    if (!q) return -1;
    vt__advise_huge(q, bytes);
    memset((char *)q + old * size, 0, (cap - old) * size);
    *p = q;
    return 0;
}

size_t vt__huge_min = (size_t)16 << 20;

/* Advises the kernel to back the 2 MB-aligned part of [p, p + bytes) with transparent huge
 * pages, before it is first touched. Advice only: nothing happens below vt__huge_min bytes, where
 * MADV_HUGEPAGE is unknown, or when the kernel declines. An HNSW walk reads rows at random, and
 * with 4 KB pages nearly every row it reads costs a TLB miss and a page-table walk. */
void vt__advise_huge(void *p, size_t bytes) {
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (!p || bytes < vt__huge_min) return;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

/* 1 if the kernel hands out transparent huge pages on request (its mode is "always" or
 * "madvise"), else 0 (mode "never", or no such setting). */
int vt__thp_usable(void) {
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return 0;
    char line[128] = {0};
    int ok = fgets(line, sizeof line, f) && (strstr(line, "[always]") || strstr(line, "[madvise]"));
    fclose(f);
    return ok;
}

/* If the rows (and float32 vectors) live in a file mapping, copies them to the heap (huge pages
 * advised) so they can be modified. On failure the mapping is kept. */
int vt__materialize(vt_index *x) {
    if (!x->map) return VT_OK;
    size_t bytes = x->cap * x->stride, fbytes = x->cap * x->fpad * sizeof(float);
    uint8_t *b = malloc(bytes ? bytes : 1);
    float *f = x->fpad ? malloc(fbytes ? fbytes : 1) : NULL;
    if (!b || (x->fpad && !f)) {
        free(b);
        free(f);
        return vt__err(VT_ENOMEM, "index: out of memory copying %zu bytes", bytes + fbytes);
    }
    vt__advise_huge(b, bytes);
    memcpy(b, x->blocks, x->n * x->stride);
    if (f) {
        vt__advise_huge(f, fbytes);
        memcpy(f, x->full, x->n * x->fpad * sizeof(float));
    }
    munmap(x->map, x->maplen);
    x->map = NULL;
    x->maplen = 0;
    x->blocks = b;
    x->full = f;
    return VT_OK;
}

static int hash_rehash(vt_index *x, size_t hcap);

/* Makes room for `cap` rows in every per-row array (rows beyond n stay unused). */
int vt__reserve(vt_index *x, size_t cap) {
    if (cap >= VT__NOID) return vt__err(VT_ETOOBIG, "index: %zu items is above the limit of %u", cap, VT__NOID - 1);
    if (cap <= x->cap) return VT_OK;
    size_t ncap = x->cap + x->cap / 2; /* amortised growth, but a big batch gets exactly its size */
    if (ncap < cap) ncap = cap;
    if (ncap < 64) ncap = 64;
    if (ncap >= VT__NOID) ncap = VT__NOID - 1;
    int rc = vt__materialize(x);
    if (rc) return rc;
    size_t oldw = (x->cap + 63) / 64, neww = (ncap + 63) / 64;
    if (grow(&x->blocks, x->cap, ncap, x->stride) || grow(&x->labels, x->cap, ncap, sizeof *x->labels) ||
        grow(&x->deleted, oldw, neww, sizeof *x->deleted) || grow(&x->levels, x->cap, ncap, 1) ||
        grow(&x->locks, x->cap, ncap, 1) || (x->fpad && grow(&x->full, x->cap, ncap, x->fpad * sizeof(float))) ||
        (x->o.kind == VT_INDEX_HNSW && grow(&x->upper, x->cap, ncap, sizeof *x->upper)))
        return vt__err(VT_ENOMEM, "index: out of memory growing to %zu items", ncap);
    x->cap = ncap;
    if (x->hcap * 3 < ncap * 4) { /* load factor at most 3/4 */
        size_t h = 64;
        while (h * 3 < ncap * 4) h *= 2;
        if (hash_rehash(x, h)) return vt__err(VT_ENOMEM, "index: out of memory for the label map");
    }
    return VT_OK;
}

/* ---- label -> row map: open addressing, linear probing, backward-shift deletion */
static inline size_t hslot(int64_t k, size_t mask) {
    uint64_t h = (uint64_t)k * 0x9e3779b97f4a7c15ull;
    return (size_t)(h ^ (h >> 29)) & mask;
}

static int hash_rehash(vt_index *x, size_t hcap) {
    int64_t *k = malloc(hcap * sizeof *k);
    uint32_t *v = malloc(hcap * sizeof *v);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    memset(v, 0xff, hcap * sizeof *v);
    for (size_t i = 0; i < x->hcap; i++) {
        if (x->hval[i] == VT__NOID) continue;
        size_t s = hslot(x->hkey[i], hcap - 1);
        while (v[s] != VT__NOID) s = (s + 1) & (hcap - 1);
        k[s] = x->hkey[i];
        v[s] = x->hval[i];
    }
    free(x->hkey);
    free(x->hval);
    x->hkey = k;
    x->hval = v;
    x->hcap = hcap;
    return 0;
}

/* Maps label to id; VT_EEXIST if the label is already present. The table must have room. */
int vt__hash_put(vt_index *x, int64_t label, uint32_t id) {
    size_t mask = x->hcap - 1, s = hslot(label, mask);
    while (x->hval[s] != VT__NOID) {
        if (x->hkey[s] == label) return VT_EEXIST;
        s = (s + 1) & mask;
    }
    x->hkey[s] = label;
    x->hval[s] = id;
    return VT_OK;
}

uint32_t vt__hash_get(const vt_index *x, int64_t label) {
    if (!x->hcap) return VT__NOID;
    size_t mask = x->hcap - 1, s = hslot(label, mask);
    while (x->hval[s] != VT__NOID) {
        if (x->hkey[s] == label) return x->hval[s];
        s = (s + 1) & mask;
    }
    return VT__NOID;
}

static void hash_del(vt_index *x, int64_t label) {
    size_t mask = x->hcap - 1, s = hslot(label, mask);
    while (x->hval[s] != VT__NOID && x->hkey[s] != label) s = (s + 1) & mask;
    if (x->hval[s] == VT__NOID) return;
    size_t hole = s;
    for (size_t j = (hole + 1) & mask; x->hval[j] != VT__NOID; j = (j + 1) & mask) {
        size_t home = hslot(x->hkey[j], mask);
        /* move j into the hole unless its home lies cyclically in (hole, j] */
        int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (stays) continue;
        x->hkey[hole] = x->hkey[j];
        x->hval[hole] = x->hval[j];
        hole = j;
    }
    x->hval[hole] = VT__NOID;
}

/* ---- vector encoding and distances */
static float sqnorm(const float *v, size_t d) {
    double s = 0;
    for (size_t i = 0; i < d; i++) s += (double)v[i] * v[i];
    return (float)s;
}

/* Quantises v (dpad floats) to int8 in [-127, 127] with a per-vector scale; returns the scale
 * and the squared norm of the dequantised vector in *sq. */
static float quantize_i8(const float *v, size_t d, int8_t *out, float *sq) {
    float m = 0;
    for (size_t i = 0; i < d; i++) m = fmaxf(m, fabsf(v[i]));
    float scale = m > 0 ? m / 127.0f : 1.0f, inv = m > 0 ? 127.0f / m : 0.0f;
    int64_t s = 0;
    for (size_t i = 0; i < d; i++) {
        long q = lrintf(v[i] * inv);
        q = q > 127 ? 127 : q < -127 ? -127 : q;
        out[i] = (int8_t)q;
        s += q * q;
    }
    *sq = (float)((double)s * scale * scale);
    return scale;
}

/* Copies v (dim floats) into buf (dpad floats, zero padded), normalised for cosine. */
static void pad_copy(const vt_index *x, const float *v, float *buf) {
    size_t d = (size_t)x->o.dim;
    memcpy(buf, v, d * sizeof *buf);
    memset(buf + d, 0, (x->dpad - d) * sizeof *buf);
    if (x->o.metric == VT_METRIC_COSINE) {
        float n = sqrtf(sqnorm(buf, d));
        if (n > 0) {
            float inv = 1.0f / n;
            for (size_t i = 0; i < d; i++) buf[i] *= inv;
        }
    }
}

/* Stores buf (dpad floats, already padded and normalised) as row id: the code, and for int8 the
 * scale (and, for l2, the squared norm) in the row's aux floats. */
void vt__encode(const vt_index *x, const float *buf, uint32_t id) {
    void *code = (void *)vt__code(x, id);
    size_t d = x->dpad;
    if (x->o.store == VT_STORE_F32) {
        memcpy(code, buf, d * 4);
    } else if (x->o.store == VT_STORE_F16) {
        uint16_t *h = code;
        for (size_t i = 0; i < d; i++) h[i] = vt__f32_to_f16(buf[i]);
    } else {
        float *aux = vt__aux(x, id), sq;
        aux[0] = quantize_i8(buf, d, code, &sq);
        if (x->o.metric == VT_METRIC_L2) aux[1] = sq;
    }
}

/* buf holds 2*dpad floats: the padded query, then (int8 storage) its int8 code. */
void vt__prepare(const vt_index *x, const float *v, float *buf, vt__query *q) {
    pad_copy(x, v, buf);
    q->code = buf;
    q->scale = 1.0f;
    q->sqnorm = sqnorm(buf, x->dpad);
    q->fq = buf;
    q->fsqnorm = q->sqnorm;
    if (x->o.store == VT_STORE_I8) {
        int8_t *c = (int8_t *)(buf + x->dpad);
        q->scale = quantize_i8(buf, x->dpad, c, &q->sqnorm);
        q->code = c;
    }
}

/* Row id as a query: its own code (f16 widened to floats in buf); scale and squared norm are
 * read from the aux floats for int8 and unused (1, 0) for float storage. */
void vt__prepare_node(const vt_index *x, uint32_t id, float *buf, vt__query *q) {
    q->scale = 1.0f;
    q->sqnorm = 0.0f;
    q->fq = NULL;
    q->fsqnorm = 0.0f;
    if (x->o.store == VT_STORE_I8) {
        const float *aux = vt__aux(x, id);
        q->scale = aux[0];
        if (x->o.metric == VT_METRIC_L2) q->sqnorm = aux[1];
    }
    if (x->o.store == VT_STORE_F16) {
        vt__kernels_get()->f16_to_f32(vt__code(x, id), buf, x->dpad);
        q->code = buf;
    } else {
        q->code = vt__code(x, id);
    }
}

float vt__dist(const vt_index *x, const vt__kernels *k, const vt__query *q, uint32_t id) {
    const void *c = vt__code(x, id);
    int l2 = x->o.metric == VT_METRIC_L2;
    switch (x->o.store) {
    case VT_STORE_F32: return l2 ? k->l2_f32(q->code, c, x->dpad) : -k->dot_f32(q->code, c, x->dpad);
    case VT_STORE_F16: return l2 ? k->l2_f16(q->code, c, x->dpad) : -k->dot_f16(q->code, c, x->dpad);
    default: {
        const float *aux = vt__aux(x, id);
        float dot = q->scale * aux[0] * (float)k->dot_i8(q->code, c, x->dpad);
        return l2 ? q->sqnorm + aux[1] - 2 * dot : -dot;
    }
    }
}

int vt__admitted(const vt_index *x, const vt_bitset *f, uint32_t id) {
    if (vt__is_deleted(x, id)) return 0;
    if (!f) return 1;
    int64_t l = x->labels[id];
    return l >= 0 && vt_bitset_test(f, (size_t)l);
}

/* ---- visited lists, pooled so concurrent searches do not allocate */
vt__visited *vt__visited_get(vt_index *x) {
    vt__visited *v = NULL;
    pthread_mutex_lock(&x->vmu);
    if (x->nvfree) v = x->vfree[--x->nvfree];
    pthread_mutex_unlock(&x->vmu);
    if (!v) {
        v = calloc(1, sizeof *v);
        if (!v) return NULL;
    }
    if (v->cap < x->n) {
        free(v->tag);
        v->cap = x->n + x->n / 4 + 64;
        v->tag = calloc(v->cap, sizeof *v->tag);
        v->cur = 0;
        if (!v->tag) {
            free(v->cand);
            free(v->res);
            free(v);
            return NULL;
        }
    }
    if (++v->cur == 0) {
        memset(v->tag, 0, v->cap * sizeof *v->tag);
        v->cur = 1;
    }
    return v;
}

void vt__visited_put(vt_index *x, vt__visited *v) {
    pthread_mutex_lock(&x->vmu);
    if (x->nvfree == x->vfree_cap) {
        int nc = x->vfree_cap ? 2 * x->vfree_cap : 8;
        vt__visited **nv = realloc(x->vfree, (size_t)nc * sizeof *nv);
        if (!nv) {
            pthread_mutex_unlock(&x->vmu);
            free(v->tag);
            free(v->cand);
            free(v->res);
            free(v);
            return;
        }
        x->vfree = nv;
        x->vfree_cap = nc;
    }
    x->vfree[x->nvfree++] = v;
    pthread_mutex_unlock(&x->vmu);
}

/* ---- add / remove */
typedef struct {
    vt_index *x;
    const float *vecs;
    size_t first;
    float **bufs;
    int *levels;
    int rc;
} add_ctx;

static void add_one(void *p, size_t i, int worker) {
    add_ctx *c = p;
    uint32_t id = (uint32_t)(c->first + i);
    int rc = vt__hnsw_insert(c->x, id, c->levels[i], c->bufs[worker]);
    if (rc) __atomic_store_n(&c->rc, rc, __ATOMIC_RELAXED);
}

int vt_index_add(vt_index *x, const float *vecs, size_t n, const int64_t *labels) {
    if (!x || (!vecs && n)) return vt__err(VT_EINVAL, "index add: NULL argument");
    if (n == 0) return VT_OK;
    size_t first = x->n;
    if (n >= VT__NOID || first + n >= VT__NOID) return vt__err(VT_ETOOBIG, "index: too many items");
    int rc = vt__reserve(x, first + n);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        int64_t l = labels ? labels[i] : (int64_t)(first + i);
        if (l < 0 || vt__hash_put(x, l, (uint32_t)(first + i)) != VT_OK) {
            for (size_t j = 0; j < i; j++) hash_del(x, labels ? labels[j] : (int64_t)(first + j));
            return l < 0 ? vt__err(VT_EINVAL, "index add: label %lld is negative", (long long)l)
                         : vt__err(VT_EEXIST, "index add: label %lld is already in the index", (long long)l);
        }
        x->labels[first + i] = l;
    }
    float *buf = malloc(x->dpad * sizeof *buf);
    if (!buf) return vt__err(VT_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        pad_copy(x, vecs + i * (size_t)x->o.dim, buf);
        vt__encode(x, buf, (uint32_t)(first + i));
        if (x->fpad) { /* the float32 copy for re-ranking, and the bounds of its quantisation error */
            memcpy((float *)vt__full(x, (uint32_t)(first + i)), buf, x->fpad * sizeof *buf);
            for (size_t j = 0; j < x->fpad; j++) x->full_amax = fmaxf(x->full_amax, fabsf(buf[j]));
            x->full_nmax = fmaxf(x->full_nmax, sqrtf(sqnorm(buf, x->fpad)));
        }
    }
    free(buf);
    if (x->o.kind == VT_INDEX_FLAT) {
        x->n = first + n;
        return VT_OK;
    }
    /* HNSW: levels drawn in order from the seeded generator, then parallel inserts */
    int *levels = malloc(n * sizeof *levels);
    if (!levels) return vt__err(VT_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        levels[i] = vt__hnsw_random_level(x);
        x->levels[first + i] = (uint8_t)levels[i];
        memset(vt__links0(x, (uint32_t)(first + i)), 0, x->link_bytes);
        if (vt__hnsw_alloc_upper(x, (uint32_t)(first + i), levels[i])) {
            free(levels);
            return vt__err(VT_ENOMEM, "out of memory for graph links");
        }
    }
    x->n = first + n;
    vt_pool *pool = NULL;
    int threads = x->o.threads ? x->o.threads : vt_cpu_count();
    if (threads > 1 && n > 1 && vt_pool_create(threads, &pool)) pool = NULL;
    int nt = vt_pool_threads(pool);
    add_ctx c = {x, vecs, first, calloc((size_t)nt, sizeof(float *)), levels, 0};
    int ok = c.bufs != NULL;
    for (int t = 0; ok && t < nt; t++) ok = (c.bufs[t] = malloc(4 * x->dpad * sizeof(float))) != NULL;
    if (ok) vt_pool_parallel_for(pool, n, 16, add_one, &c);
    for (int t = 0; c.bufs && t < nt; t++) free(c.bufs[t]);
    free(c.bufs);
    free(levels);
    vt_pool_free(pool);
    if (!ok) return vt__err(VT_ENOMEM, "out of memory");
    return c.rc;
}

int vt_index_remove(vt_index *x, int64_t label) {
    if (!x) return vt__err(VT_EINVAL, "index remove: NULL index");
    uint32_t id = vt__hash_get(x, label);
    if (id == VT__NOID) return vt__err(VT_ENOTFOUND, "index remove: label %lld is not in the index", (long long)label);
    int rc = vt__materialize(x);
    if (rc) return rc;
    x->deleted[id >> 6] |= 1ull << (id & 63);
    x->ndeleted++;
    hash_del(x, label);
    return VT_OK;
}

size_t vt_index_size(const vt_index *x) { return x ? x->n - x->ndeleted : 0; }

void vt_index_get_opts(const vt_index *x, vt_index_opts *o) { *o = x->o; }

size_t vt_index_memory(const vt_index *x) {
    size_t b = x->n * x->stride + x->n * x->fpad * sizeof(float) + x->n * (sizeof(int64_t) + 2) + (x->n + 63) / 64 * 8 +
               x->hcap * 12;
    if (x->upper) {
        b += x->n * sizeof(*x->upper);
        for (size_t i = 0; i < x->n; i++) b += (size_t)x->levels[i] * (size_t)(1 + x->M) * 4;
    }
    return b;
}

/* ---- top-k: a max-heap on (distance, row) (worst on top): it keeps the k smallest by distance,
 * ties going to the lower row, whatever order the rows are offered in */
static inline void heap_push(vt__cand *h, int *n, int k, float d, uint32_t id) {
    int i;
    if (*n < k) {
        size_t m = (size_t)*n;
        vt__heap_push(h, &m, d, id);
        *n = (int)m;
        return;
    }
    if (!vt__cand_after(h[0].d, h[0].id, d, id)) return;
    i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        float md = d;
        uint32_t mid = id;
        if (l < *n && vt__cand_after(h[l].d, h[l].id, md, mid)) { m = l; md = h[l].d; mid = h[l].id; }
        if (r < *n && vt__cand_after(h[r].d, h[r].id, md, mid)) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    h[i].d = d;
    h[i].id = id;
}

static int cmp_cand(const void *a, const void *b) {
    const vt__cand *x = a, *y = b;
    return x->d < y->d ? -1 : x->d > y->d ? 1 : (x->id > y->id) - (x->id < y->id);
}

/* The most candidates a search with re-rank setting `rr` (vt_search_opts.rerank) may re-rank. */
#define RERANK_MAX (1 << 20)

/* The candidates a search gathers before choosing its k results: a max-heap h of at most `cap`
 * (distance, row) pairs, worst on top. In window mode (tk = k > 0: a flat f16 / i8 index
 * re-ranking by default) a second max-heap t holds the k best so far, and once it is full a row
 * enters h only if its distance is at most t's top (the k-th best so far) + w, the re-rank window
 * (rerank_window): h then holds every row that can still be within w of the final k-th best
 * (and some that turn out not to be), unless more than `cap` do, and the scan pushes into h only
 * those, not every row that beats the cap-th best (a heap of 8k + 64 rows fed that way made a
 * 20,000 x 128 int8 query ~70 % slower). Both heaps order by (distance, row), so the split and
 * batched scans, which gather per part or per query and merge, keep the same rows. */
typedef struct {
    vt__cand *h, *t;
    int hn, cap, tn, tk;
    float w;
} cands;

/* Sets the candidate heaps up for k results of query q with re-rank setting rr in buf, which
 * holds cands_slots() entries:
 * - a flat f16 / i8 index (float32 vectors kept): by default window mode with at most 8k + 64
 *   candidates; with rr > 0, the best max(rr, k) (at most RERANK_MAX);
 * - otherwise int8 storage gathers 2k + 8, re-scored with the float query against the int8 rows
 *   (which removes the query's quantisation error, not the rows'); f16 and f32 gather k. */
static float rerank_window(const vt_index *x, const vt__query *q);
static int cands_cap(const vt_index *x, int k, int rr) {
    if (x->full && rr >= 0) return rr > 0 ? VT_MAX(VT_MIN(rr, RERANK_MAX), k) : 8 * k + 64;
    return x->o.store == VT_STORE_I8 ? 2 * k + 8 : k;
}
static int cands_tk(const vt_index *x, int k, int rr) { return x->full && rr == 0 ? k : 0; }
static size_t cands_slots(const vt_index *x, int k, int rr) { return (size_t)cands_cap(x, k, rr) + (size_t)cands_tk(x, k, rr); }
static void cands_init(cands *c, const vt_index *x, const vt__query *q, int k, int rr, vt__cand *buf) {
    c->cap = cands_cap(x, k, rr);
    c->tk = cands_tk(x, k, rr);
    c->h = buf;
    c->t = buf + c->cap;
    c->hn = c->tn = 0;
    c->w = c->tk && q->fq ? rerank_window(x, q) : 0.0f;
}

/* Rows at distance >= *worst or > *wlim are not candidates (+inf while the heaps fill). */
static inline void cands_limits(const cands *c, float *worst, float *wlim) {
    *worst = c->hn == c->cap ? c->h[0].d : INFINITY;
    *wlim = c->tk && c->tn == c->tk ? c->t[0].d + c->w : INFINITY;
}

static inline void cands_push(cands *c, float d, uint32_t id) {
    if (c->tk) {
        heap_push(c->t, &c->tn, c->tk, d, id);
        if (c->tn == c->tk && d > c->t[0].d + c->w) return;
    }
    heap_push(c->h, &c->hn, c->cap, d, id);
}

static int rerank_mode(const vt_search_opts *so) { return so ? so->rerank : 0; }

/* z of the quantisation-error bound below: a row's error beyond 6 standard deviations (Gaussian:
 * 2e-9 a row) would be needed to keep one of the true k best out of the re-ranked window. */
#define RERANK_Z 6.0f

/* Width of the window of quantised distances above the k-th best that is re-ranked, 2 * eps,
 * eps a bound on the quantisation error of one row's quantised distance.
 *
 * Model: rounding a component to a grid of step s errs by e, uniform in [-s/2, s/2] (variance
 * s^2 / 12), independently across components, so q.x - q'.x' = q.(x - x') + (q - q').x' is
 * close to Gaussian with variance (|q|^2 s_x^2 + |x|^2 s_q^2) / 12, where s_x is the row's step
 * (int8: max|x_i| / 127; f16: one unit in the last place, at most max|x_i| * 2^-10, at least
 * 2^-24 for subnormals) and s_q the query's (int8: its scale; f16 scans use the float query:
 * 0). The index keeps the largest |component| and norm of its vectors, which bound s_x and |x|.
 * l2 distances also carry the error of |x'|^2 (2 |x| s_x / sqrt(12)) and twice that of the dot
 * product. If every row errs by at most eps, each of the true k best has a quantised distance
 * at most D_k + eps (D_k: the true k-th best distance) and the quantised k-th best is at least
 * D_k - eps, so all of them lie within 2 eps of the quantised k-th best. (A worst-case bound,
 * Cauchy-Schwarz |q| |x - x'|, is ~sqrt(d) times wider and would re-rank most of a cluster.) */
static float rerank_window(const vt_index *x, const vt__query *q) {
    int i8 = x->o.store == VT_STORE_I8;
    float sx = i8 ? x->full_amax / 127.0f : fmaxf(x->full_amax * (1.0f / 1024.0f), 0x1p-24f);
    float sq = i8 ? q->scale : 0.0f, qn2 = q->fsqnorm, X = x->full_nmax;
    float dot = sqrtf(qn2 * sx * sx + X * X * sq * sq);
    float sigma = (x->o.metric == VT_METRIC_L2 ? 2 * dot + 2 * X * sx : dot) * (1.0f / 3.4641016f);
    float w = 2 * RERANK_Z * sigma;
    return w >= 0 ? w : INFINITY; /* NaN (inf * 0 from absurd bounds in a file): re-rank all candidates */
}

/* Re-scores the gathered candidates c->h (distances of the quantised scan) and returns how many
 * of them, moved to the front of c->h, the answer is chosen from.
 * - Flat f16 / i8 with re-rank on: with the float32 vectors, in the float32 scan's arithmetic
 *   (what vt__dist computes for an f32 index), so the answer and its scores are the f32 scan's.
 *   In window mode only the candidates within the window of the k-th best quantised distance
 *   (the top of c->t) are kept and re-ranked; with a fixed count, all.
 * - Otherwise int8 re-scores all of them with the float query against the int8 rows. */
static int rerank(const vt_index *x, const vt__kernels *K, const vt__query *q, int rr, cands *c) {
    vt__cand *h = c->h;
    int n = c->hn;
    if (!q->fq) return n;
    int l2 = x->o.metric == VT_METRIC_L2;
    if (x->full && rr >= 0) {
        int m = n;
        if (c->tk && c->tn == c->tk) {
            float lim = c->t[0].d + c->w;
            m = 0;
            for (int i = 0; i < n; i++)
                if (h[i].d <= lim) h[m++] = h[i];
        }
        for (int i = 0; i < m; i++)
            h[i].d = l2 ? K->l2_f32(q->fq, vt__full(x, h[i].id), x->fpad) : -K->dot_f32(q->fq, vt__full(x, h[i].id), x->fpad);
        return m;
    }
    if (x->o.store != VT_STORE_I8) return n;
    for (int i = 0; i < n; i++) {
        const float *aux = vt__aux(x, h[i].id);
        float dot = aux[0] * K->dot_f32_i8(q->fq, vt__code(x, h[i].id), x->dpad);
        h[i].d = l2 ? q->fsqnorm + aux[1] - 2 * dot : -dot; /* aux[1]: l2 only */
    }
    return n;
}

/* Sorts candidates by distance, then row (insertion sort below 64, qsort above). */
void vt__sort_cands(vt__cand *h, size_t n) {
    if (n > 64) {
        qsort(h, n, sizeof *h, cmp_cand);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        vt__cand c = h[i];
        size_t j = i;
        while (j > 0 && cmp_cand(&h[j - 1], &c) > 0) {
            h[j] = h[j - 1];
            j--;
        }
        h[j] = c;
    }
}

/* Writes the sorted candidates as labels and scores, padding with -1 up to k. */
static void emit(const vt_index *x, vt__cand *h, int n, int k, int64_t *labels, float *scores) {
    vt__sort_cands(h, (size_t)n);
    for (int i = 0; i < k; i++) {
        labels[i] = i < n ? x->labels[h[i].id] : -1;
        if (scores) scores[i] = i < n ? (x->o.metric == VT_METRIC_L2 ? h[i].d : -h[i].d) : NAN;
    }
}

#define SCAN_BLOCK 256
/* How far ahead of the rows being scored a one-query scan prefetches (int8 and f16 rows, AVX2),
 * in bytes. On the development machine (AMD EPYC, AVX2) the hardware prefetcher alone leaves a
 * scan of 516-byte int8 rows stalling on memory; prefetching ~8 rows ahead more than halves the
 * time of a 26 MB int8 scan and takes ~9 % off a 52 MB f16 scan; the f32 scan (2 KB rows) was no
 * faster with it. The batched scan, whose rows sit in L2 for 32 queries, was slower with it and
 * does not prefetch (bench/index/RESULTS.md). */
#define SCAN_PREFETCH 4096

/* Offers row id at distance di to the candidates c if it is within their limits (*worst, *wlim,
 * cached from cands_limits) and admitted. Rows come in ascending order, so a row at the worst's
 * distance orders after it and is dropped. */
static inline void offer(const vt_index *x, const vt_bitset *f, int check, uint32_t id, float di, cands *c,
                         float *worst, float *wlim) {
    if (di >= *worst || di > *wlim) return;
    if (check && !vt__admitted(x, f, id)) return;
    cands_push(c, di, id);
    cands_limits(c, worst, wlim);
}

/* Scores rows [r0, r0 + nr) and offers them to the candidates c. The distances are computed with
 * the same float operations as vt__dist, so scan and single-row distances agree bit for bit. */
static void scan_block(const vt_index *x, const vt__kernels *k, const vt__query *q, size_t r0, size_t nr,
                       const vt_bitset *f, cands *c, size_t ahead) {
    const uint8_t *base = vt__node(x, (uint32_t)r0) + x->link_bytes;
    int l2 = x->o.metric == VT_METRIC_L2;
    int check = f || x->ndeleted;
    float worst, wlim;
    cands_limits(c, &worst, &wlim);
    if (x->o.store == VT_STORE_I8) {
        int32_t raw[SCAN_BLOCK];
        k->scan_i8(q->code, base, x->stride, nr, x->dpad, ahead, raw);
        const uint8_t *ap = base + x->code_bytes; /* aux of row r0: scale, squared norm (l2 only) */
        float qs = q->scale, qn = q->sqnorm;
        if (l2)
            for (size_t i = 0; i < nr; i++, ap += x->stride) {
                const float *aux = (const float *)ap;
                float dot = qs * aux[0] * (float)raw[i];
                offer(x, f, check, (uint32_t)(r0 + i), qn + aux[1] - 2 * dot, c, &worst, &wlim);
            }
        else
            for (size_t i = 0; i < nr; i++, ap += x->stride) {
                const float *aux = (const float *)ap;
                offer(x, f, check, (uint32_t)(r0 + i), -(qs * aux[0] * (float)raw[i]), c, &worst, &wlim);
            }
        return;
    }
    float d[SCAN_BLOCK];
    if (x->o.store == VT_STORE_F32) k->scan_f32(q->code, base, x->stride, nr, x->dpad, l2, d);
    else k->scan_f16(q->code, base, x->stride, nr, x->dpad, l2, ahead, d);
    if (!l2)
        for (size_t i = 0; i < nr; i++) d[i] = -d[i];
    for (size_t i = 0; i < nr; i++) offer(x, f, check, (uint32_t)(r0 + i), d[i], c, &worst, &wlim);
}

/* Exact search over rows [r0, r1) into the candidates c. */
static void flat_range(const vt_index *x, const vt__kernels *k, const vt__query *q, const vt_bitset *f, size_t r0,
                       size_t r1, cands *c) {
    for (size_t r = r0; r < r1; r += SCAN_BLOCK) scan_block(x, k, q, r, VT_MIN((size_t)SCAN_BLOCK, r1 - r), f, c, SCAN_PREFETCH);
}

/* Bytes of rows below which one query's exact scan stays on the calling thread even when more
 * threads are allowed: starting a thread costs tens of microseconds, a 4 MB scan about 0.4 ms. */
#define SPLIT_MIN_BYTES ((size_t)4 << 20)

typedef struct {
    const vt_index *x;
    const vt__kernels *k;
    const vt__query *q;
    int parts;
    size_t blocks; /* SCAN_BLOCK row blocks in the index */
    const vt_bitset *f;
    cands *c;      /* parts candidate sets, set up like the caller's */
} split_ctx;

/* Scans part i of c->parts (whole blocks of SCAN_BLOCK rows, the last part ending at n) into
 * the part's own candidates. */
static void split_part(void *p, size_t i, int worker) {
    (void)worker;
    split_ctx *c = p;
    size_t r0 = c->blocks * i / (size_t)c->parts * SCAN_BLOCK, r1 = c->blocks * (i + 1) / (size_t)c->parts * SCAN_BLOCK;
    flat_range(c->x, c->k, c->q, c->f, r0, VT_MIN(r1, c->x->n), &c->c[i]);
}

/* Exact search over every row into the (empty) candidates c; with threads > 1 and enough rows,
 * the rows are split into contiguous parts scanned on their own threads into their own
 * candidates, which are then merged: the heaps order by (distance, row), and a part's window is
 * never narrower than the whole scan's, so the merge keeps what the one-thread scan keeps, ties
 * included. Falls back to one thread when the threads or memory cannot be had. */
static void flat_search(const vt_index *x, const vt__kernels *k, const vt__query *q, const vt_bitset *f, int threads,
                        cands *c) {
    size_t blocks = (x->n + SCAN_BLOCK - 1) / SCAN_BLOCK;
    int parts = threads > 1 && x->n * x->stride >= SPLIT_MIN_BYTES ? (int)VT_MIN((size_t)threads, blocks) : 1;
    vt_pool *pool = NULL;
    size_t slots = (size_t)c->cap + (size_t)c->tk;
    vt__cand *buf = NULL;
    split_ctx sc = {x, k, q, parts, blocks, f, NULL};
    if (parts > 1) {
        buf = malloc((size_t)parts * slots * sizeof *buf);
        sc.c = malloc((size_t)parts * sizeof *sc.c);
        if (!buf || !sc.c || vt_pool_create(parts, &pool)) parts = 1;
    }
    if (parts == 1) {
        free(buf);
        free(sc.c);
        flat_range(x, k, q, f, 0, x->n, c);
        return;
    }
    sc.parts = parts;
    for (int i = 0; i < parts; i++) {
        sc.c[i] = *c;
        sc.c[i].h = buf + (size_t)i * slots;
        sc.c[i].t = sc.c[i].h + c->cap;
    }
    vt_pool_parallel_for(pool, (size_t)parts, 1, split_part, &sc);
    vt_pool_free(pool);
    for (int i = 0; i < parts; i++)
        for (int j = 0; j < sc.c[i].hn; j++) cands_push(c, sc.c[i].h[j].d, sc.c[i].h[j].id);
    free(buf);
    free(sc.c);
}

/* Exact search over the admitted labels only (for selective filters). */
static void sparse_search(const vt_index *x, const vt__kernels *k, const vt__query *q, const vt_bitset *f, cands *c) {
    size_t words = (f->nbits + 63) / 64;
    for (size_t w = 0; w < words; w++) {
        uint64_t bits = f->w[w];
        while (bits) {
            size_t label = w * 64 + (size_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            uint32_t id = vt__hash_get(x, (int64_t)label);
            if (id == VT__NOID || vt__is_deleted(x, id)) continue;
            float d = vt__dist(x, k, q, id), worst, wlim;
            cands_limits(c, &worst, &wlim);
            if (d > wlim) continue;
            cands_push(c, d, id);
        }
    }
}

/* One query, any kind, into the (empty) candidates c; returns the number of candidates at the
 * front of c->h the answer is chosen from. */
static int search_one(const vt_index *x, const vt__kernels *k, const vt__query *q, int user_k, const vt_search_opts *so,
                      cands *c, int *nout) {
    int rr = rerank_mode(so);
    const vt_bitset *f = so ? so->filter : NULL;
    size_t live = x->n - x->ndeleted;
    *nout = 0;
    if (live == 0) return VT_OK;
    if (f) {
        double below = so->exact_below == 0 ? 0.02 : so->exact_below;
        double frac = (double)f->count / (double)live;
        int sparse_cheaper = f->count < x->n / 8 && (f->nbits + 63) / 64 < x->n;
        if ((x->o.kind == VT_INDEX_HNSW && frac < below) || (x->o.kind == VT_INDEX_FLAT && sparse_cheaper)) {
            sparse_search(x, k, q, f, c);
            *nout = rerank(x, k, q, rr, c);
            return VT_OK;
        }
    }
    if (x->o.kind == VT_INDEX_FLAT) {
        flat_search(x, k, q, f, so ? so->threads : 1, c);
        *nout = rerank(x, k, q, rr, c);
        return VT_OK;
    }
    int ef = so && so->ef > 0 ? so->ef : 64;
    if (ef < user_k) ef = user_k; /* the beam is ef (at least k); int8 re-ranks what it holds */
    if (f && live) { /* widen the beam as the filter gets more selective */
        double frac = (double)f->count / (double)live;
        if (frac < 1 && frac > 0) ef = (int)VT_MIN(ef * 8.0, ef / sqrt(frac));
    }
    int rc = vt__hnsw_search((vt_index *)x, k, q, c->cap, ef, f, c->h, &c->hn); /* HNSW: never window mode */
    *nout = rerank(x, k, q, rr, c);
    return rc;
}

static int check_search(const vt_index *x, const float *q, int k, int64_t *labels) {
    if (!x || !q || !labels) return vt__err(VT_EINVAL, "index search: NULL argument");
    if (k < 1 || k > 100000) return vt__err(VT_EINVAL, "index search: k %d is not in 1..100000", k);
    return VT_OK;
}


int vt_index_search(const vt_index *x, const float *q, int k, const vt_search_opts *so, int64_t *labels,
                    float *scores, int *found) {
    int rc = check_search(x, q, k, labels);
    if (rc) return rc;
    const vt__kernels *kern = vt__kernels_get();
    /* small queries use the stack: no allocation on the common path */
    float sbuf[2 * 1024];
    vt__cand sh[160];
    size_t hc = cands_slots(x, k, rerank_mode(so));
    float *buf = x->dpad <= 1024 ? sbuf : malloc(2 * x->dpad * sizeof *buf);
    vt__cand *h = hc <= sizeof sh / sizeof *sh ? sh : malloc(hc * sizeof *h);
    if (!buf || !h) {
        if (buf != sbuf) free(buf);
        if (h != sh) free(h);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    vt__query pq;
    vt__prepare(x, q, buf, &pq);
    cands c;
    cands_init(&c, x, &pq, k, rerank_mode(so), h);
    int hn = 0;
    rc = search_one(x, kern, &pq, k, so, &c, &hn);
    if (rc == VT_OK) {
        emit(x, c.h, hn, k, labels, scores);
        if (found) *found = VT_MIN(hn, k);
    }
    if (buf != sbuf) free(buf);
    if (h != sh) free(h);
    return rc;
}

/* ---- batched search */
#define BATCH_Q 32

typedef struct {
    const vt_index *x;
    const vt__kernels *k;
    const float *q;
    size_t nq;
    int kk;
    const vt_search_opts *so;
    int64_t *labels;
    float *scores;
    int rc;
} batch_ctx;

/* Exact scan of one chunk of up to BATCH_Q queries: every block of rows (sized to stay in the
 * L2 cache) is scored against all queries of the chunk before moving on. */
static void batch_flat_chunk(void *p, size_t chunk, int worker) {
    (void)worker;
    batch_ctx *c = p;
    const vt_index *x = c->x;
    size_t q0 = chunk * BATCH_Q, nq = VT_MIN((size_t)BATCH_Q, c->nq - q0);
    float *buf = malloc(nq * 2 * x->dpad * sizeof *buf);
    int rr = rerank_mode(c->so);
    size_t slots = cands_slots(x, c->kk, rr);
    vt__cand *h = malloc(nq * slots * sizeof *h);
    vt__query pq[BATCH_Q];
    cands cs[BATCH_Q];
    if (!buf || !h) {
        free(buf);
        free(h);
        c->rc = VT_ENOMEM;
        return;
    }
    for (size_t i = 0; i < nq; i++) {
        vt__prepare(x, c->q + (q0 + i) * (size_t)x->o.dim, buf + i * 2 * x->dpad, &pq[i]);
        cands_init(&cs[i], x, &pq[i], c->kk, rr, h + i * slots);
    }
    const vt_bitset *f = c->so ? c->so->filter : NULL;
    size_t block = VT_MAX((size_t)SCAN_BLOCK, (256u << 10) / x->stride / SCAN_BLOCK * SCAN_BLOCK);
    for (size_t r0 = 0; r0 < x->n; r0 += block) {
        size_t r1 = VT_MIN(r0 + block, x->n);
        for (size_t i = 0; i < nq; i++)
            for (size_t r = r0; r < r1; r += SCAN_BLOCK)
                scan_block(x, c->k, &pq[i], r, VT_MIN((size_t)SCAN_BLOCK, r1 - r), f, &cs[i], 0);
    }
    for (size_t i = 0; i < nq; i++) {
        int m = rerank(x, c->k, &pq[i], rr, &cs[i]);
        emit(x, cs[i].h, m, c->kk, c->labels + (q0 + i) * (size_t)c->kk,
             c->scores ? c->scores + (q0 + i) * (size_t)c->kk : NULL);
    }
    free(buf);
    free(h);
}

static void batch_one(void *p, size_t i, int worker) {
    (void)worker;
    batch_ctx *c = p;
    size_t kk = (size_t)c->kk;
    vt_search_opts one = c->so ? *c->so : (vt_search_opts){0}; /* the batch's threads run queries side by side, each on one */
    one.threads = 1;
    int rc = vt_index_search(c->x, c->q + i * (size_t)c->x->o.dim, c->kk, &one, c->labels + i * kk,
                             c->scores ? c->scores + i * kk : NULL, NULL);
    if (rc) c->rc = rc;
}

int vt_index_search_batch(const vt_index *x, const float *q, size_t nq, int k, const vt_search_opts *so,
                          int64_t *labels, float *scores) {
    int rc = check_search(x, q, k, labels);
    if (rc) return rc;
    int threads = so && so->threads > 1 ? so->threads : 1;
    vt_pool *pool = NULL;
    if (threads > 1 && (rc = vt_pool_create(threads, &pool))) return rc;
    batch_ctx c = {x, vt__kernels_get(), q, nq, k, so, labels, scores, 0};
    int dense = x->o.kind == VT_INDEX_FLAT && !(so && so->filter && so->filter->count < x->n / 8);
    if (dense)
        vt_pool_parallel_for(pool, (nq + BATCH_Q - 1) / BATCH_Q, 1, batch_flat_chunk, &c);
    else
        vt_pool_parallel_for(pool, nq, 4, batch_one, &c);
    vt_pool_free(pool);
    if (c.rc == VT_ENOMEM) return vt__err(VT_ENOMEM, "out of memory in batch search");
    return c.rc;
}
