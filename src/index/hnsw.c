/* hnsw.c: the HNSW graph: level draws, concurrent inserts with neighbour pruning, layer search. */
#include "index_internal.h"
#include <math.h>
#include <sched.h>
#include <string.h>

int vt__hnsw_random_level(vt_index *x) {
    double u = vt_rng_uniform(&x->rng);
    double l = -log(1.0 - u) * x->level_mult;
    return l >= VT__MAX_LEVEL ? VT__MAX_LEVEL : (int)l;
}

int vt__hnsw_alloc_upper(vt_index *x, uint32_t id, int level) {
    x->upper[id] = NULL;
    if (level == 0) return 0;
    x->upper[id] = calloc((size_t)level * (size_t)(1 + x->M), sizeof(uint32_t));
    return x->upper[id] ? 0 : -1;
}

/* The link list of row id on level L: [count, ids...]. */
static inline uint32_t *links(const vt_index *x, uint32_t id, int L) {
    return L == 0 ? vt__links0(x, id) : x->upper[id] + (size_t)(L - 1) * (size_t)(1 + x->M);
}

/* Spins briefly, then yields the CPU: on an oversubscribed machine a preempted holder would
 * otherwise cost the waiter a whole time slice. */
static inline void lock(vt_index *x, uint32_t id) {
    for (int spins = 0; __atomic_test_and_set(&x->locks[id], __ATOMIC_ACQUIRE);)
        while (__atomic_load_n(&x->locks[id], __ATOMIC_RELAXED)) {
            if (++spins < 64) __builtin_ia32_pause();
            else sched_yield();
        }
}
static inline void unlock(vt_index *x, uint32_t id) { __atomic_clear(&x->locks[id], __ATOMIC_RELEASE); }

/* ---- binary max-heaps (candidates store -distance so the closest is on top): push with
 * vt__heap_push, which orders by (.d, .id); pop sifts on .d, which keeps that a heap on .d */
static inline void hpop(vt__cand *h, size_t *n) {
    vt__cand last = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, b = i;
        float bd = last.d;
        if (l < m && h[l].d > bd) { b = l; bd = h[l].d; }
        if (r < m && h[r].d > bd) b = r;
        if (b == i) break;
        h[i] = h[b];
        i = b;
    }
    if (m) h[i] = last;
}

static int ensure(vt__cand **a, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 256;
    while (nc < need) nc *= 2;
    vt__cand *p = realloc(*a, nc * sizeof *p);
    if (!p) return -1;
    *a = p;
    *cap = nc;
    return 0;
}

/* Prefetches the stored vector of row id (up to 1 KB of it). */
static inline void prefetch_vec(const vt_index *x, uint32_t id) {
    const char *p = vt__code(x, id);
    size_t n = VT_MIN(x->code_bytes, (size_t)1024);
    for (size_t o = 0; o < n; o += 64) __builtin_prefetch(p + o);
}

/* Best-first search of level L from entry ep, keeping the ef closest admitted rows in v->res
 * (a max-heap of *nres entries). While building (`building`), link lists are read under their
 * lock and nothing is filtered; at query time rows failing the filter or deleted are traversed
 * but not returned. */
static int search_layer(vt_index *x, const vt__kernels *k, const vt__query *q, uint32_t ep, float epd, int ef, int L,
                        const vt_bitset *f, int building, vt__visited *v, size_t *nres) {
    size_t nc = 0, nr = 0;
    int filtering = !building && (f || x->ndeleted);
    if (ensure(&v->res, &v->rcap, (size_t)ef + 1) || ensure(&v->cand, &v->ccap, 64)) return VT_ENOMEM;
    uint32_t tmp[1 + 2 * 256 + 1];
    v->tag[ep] = v->cur;
    vt__heap_push(v->cand, &nc, -epd, ep);
    if (!filtering || vt__admitted(x, f, ep)) vt__heap_push(v->res, &nr, epd, ep);
    float lower = nr ? v->res[0].d : INFINITY;
    while (nc) {
        vt__cand c = v->cand[0];
        if (-c.d > lower && (nr >= (size_t)ef || !filtering)) break;
        hpop(v->cand, &nc);
        const uint32_t *ln = links(x, c.id, L);
        if (building) {
            lock(x, c.id);
            memcpy(tmp, ln, (1 + (size_t)ln[0]) * sizeof *tmp);
            unlock(x, c.id);
            ln = tmp;
        }
        /* first the unvisited neighbours, then their distances with the next vector prefetched */
        uint32_t cnt = ln[0], todo[2 * 256], nt = 0;
        for (uint32_t j = 1; j <= cnt; j++) {
            uint32_t nb = ln[j];
            if (v->tag[nb] == v->cur) continue;
            v->tag[nb] = v->cur;
            todo[nt++] = nb;
        }
        if (nt) prefetch_vec(x, todo[0]);
        for (uint32_t j = 0; j < nt; j++) {
            uint32_t nb = todo[j];
            if (j + 1 < nt) prefetch_vec(x, todo[j + 1]);
            float d = vt__dist(x, k, q, nb);
            if (nr < (size_t)ef || d < lower) {
                if (ensure(&v->cand, &v->ccap, nc + 1)) return VT_ENOMEM;
                vt__heap_push(v->cand, &nc, -d, nb);
                if (!filtering || vt__admitted(x, f, nb)) {
                    vt__heap_push(v->res, &nr, d, nb);
                    if (nr > (size_t)ef) hpop(v->res, &nr);
                    lower = v->res[0].d;
                }
            }
        }
    }
    *nres = nr;
    return VT_OK;
}

/* Greedy descent on level L: moves to the closest neighbour until none is closer. */
static void greedy(vt_index *x, const vt__kernels *k, const vt__query *q, uint32_t *cur, float *curd, int L, int building) {
    uint32_t tmp[1 + 256];
    for (int changed = 1; changed;) {
        changed = 0;
        const uint32_t *ln = links(x, *cur, L);
        if (building) {
            lock(x, *cur);
            memcpy(tmp, ln, (1 + (size_t)ln[0]) * sizeof *tmp);
            unlock(x, *cur);
            ln = tmp;
        }
        for (uint32_t j = 1; j <= ln[0]; j++) {
            float d = vt__dist(x, k, q, ln[j]);
            if (d < *curd) {
                *curd = d;
                *cur = ln[j];
                changed = 1;
            }
        }
    }
}

static int cmp_cand(const void *a, const void *b) {
    const vt__cand *x = a, *y = b;
    return x->d < y->d ? -1 : x->d > y->d ? 1 : (x->id > y->id) - (x->id < y->id);
}

/* The HNSW neighbour heuristic: walks c[0..n) (sorted, closest first) and keeps a candidate
 * only if it is closer to the base than to every candidate already kept, up to m. Returns the
 * number kept (moved to the front of c). buf holds dpad floats. */
static int select_neighbours(vt_index *x, const vt__kernels *k, vt__cand *c, int n, int m, float *buf) {
    if (n <= m) return n;
    int kept = 0;
    for (int i = 0; i < n && kept < m; i++) {
        vt__query qc;
        vt__prepare_node(x, c[i].id, buf, &qc);
        int good = 1;
        for (int j = 0; j < kept && good; j++)
            if (vt__dist(x, k, &qc, c[j].id) < c[i].d) good = 0;
        if (good) c[kept++] = c[i];
    }
    return kept;
}

/* Adds `id` to the link list of e on level L, pruning with the heuristic when it is full. */
static void link_back(vt_index *x, const vt__kernels *k, uint32_t e, uint32_t id, int L, float *buf) {
    int maxm = L == 0 ? x->M0 : x->M;
    vt__cand c[2 * 256 + 1];
    lock(x, e);
    uint32_t *ln = links(x, e, L);
    uint32_t cnt = ln[0];
    for (uint32_t j = 1; j <= cnt; j++)
        if (ln[j] == id) {
            unlock(x, e);
            return;
        }
    if ((int)cnt < maxm) {
        ln[1 + cnt] = id;
        __atomic_store_n(&ln[0], cnt + 1, __ATOMIC_RELEASE);
        unlock(x, e);
        return;
    }
    vt__query qe;
    vt__prepare_node(x, e, buf, &qe);
    for (uint32_t j = 0; j < cnt; j++) c[j] = (vt__cand){vt__dist(x, k, &qe, ln[1 + j]), ln[1 + j]};
    c[cnt] = (vt__cand){vt__dist(x, k, &qe, id), id};
    qsort(c, cnt + 1, sizeof *c, cmp_cand);
    int kept = select_neighbours(x, k, c, (int)cnt + 1, maxm, buf);
    for (int j = 0; j < kept; j++) ln[1 + j] = c[j].id;
    ln[0] = (uint32_t)kept;
    unlock(x, e);
}

/* Writes the chosen neighbours sel[0..n) as row id's list on level L. Another thread may
 * already have linked itself into that list (it reached id through an upper level before id got
 * here): those entries are kept, and the union is pruned with the heuristic if it overflows,
 * since dropping them could leave that thread's node without any way in. */
static void set_own_links(vt_index *x, const vt__kernels *k, const vt__query *q, uint32_t id, int L,
                          const vt__cand *sel, int n, float *buf) {
    int maxm = L == 0 ? x->M0 : x->M;
    vt__cand c[3 * 256 + 1];
    lock(x, id);
    uint32_t *ln = links(x, id, L);
    int m = 0;
    for (uint32_t j = 1; j <= ln[0]; j++) c[m++] = (vt__cand){vt__dist(x, k, q, ln[j]), ln[j]};
    int had = m;
    for (int j = 0; j < n; j++) {
        int dup = 0;
        for (int i = 0; i < had && !dup; i++) dup = c[i].id == sel[j].id;
        if (!dup && sel[j].id != id) c[m++] = sel[j];
    }
    if (m > maxm) {
        vt__sort_cands(c, (size_t)m);
        m = select_neighbours(x, k, c, m, maxm, buf);
    }
    for (int j = 0; j < m; j++) ln[1 + j] = c[j].id;
    ln[0] = (uint32_t)m;
    unlock(x, id);
}

int vt__hnsw_insert(vt_index *x, uint32_t id, int level, float *buf) {
    const vt__kernels *k = vt__kernels_get();
    pthread_mutex_lock(&x->glock);
    int maxlevel = x->maxlevel;
    uint32_t cur = x->entry;
    int hold = level > maxlevel; /* a new top node keeps the global lock until it is linked */
    if (cur == VT__NOID) {
        x->entry = id;
        x->maxlevel = level;
        pthread_mutex_unlock(&x->glock);
        return VT_OK;
    }
    if (!hold) pthread_mutex_unlock(&x->glock);
    vt__query q;
    vt__prepare_node(x, id, buf, &q);
    float *buf2 = buf + x->dpad;
    float curd = vt__dist(x, k, &q, cur);
    for (int L = maxlevel; L > level; L--) greedy(x, k, &q, &cur, &curd, L, 1);
    vt__visited *v = vt__visited_get(x);
    int rc = v ? VT_OK : VT_ENOMEM;
    for (int L = VT_MIN(level, maxlevel); L >= 0 && rc == VT_OK; L--) {
        size_t nr;
        if ((rc = search_layer(x, k, &q, cur, curd, x->o.ef_construction, L, NULL, 1, v, &nr))) break;
        if (++v->cur == 0) {
            memset(v->tag, 0, v->cap * sizeof *v->tag);
            v->cur = 1;
        }
        vt__sort_cands(v->res, nr);
        int kept = select_neighbours(x, k, v->res, (int)nr, x->M, buf2);
        set_own_links(x, k, &q, id, L, v->res, kept, buf2);
        for (int j = 0; j < kept; j++) link_back(x, k, v->res[j].id, id, L, buf2);
        cur = v->res[0].id;
        curd = v->res[0].d;
    }
    if (v) vt__visited_put(x, v);
    if (hold) {
        if (rc == VT_OK) {
            x->entry = id;
            x->maxlevel = level;
        }
        pthread_mutex_unlock(&x->glock);
    }
    return rc ? vt__err(rc, "out of memory while building the graph") : VT_OK;
}

int vt__hnsw_search(vt_index *x, const vt__kernels *k, const vt__query *q, int kk, int ef, const vt_bitset *f,
                    vt__cand *out, int *found) {
    *found = 0;
    uint32_t cur = x->entry;
    if (cur == VT__NOID) return VT_OK;
    float curd = vt__dist(x, k, q, cur);
    for (int L = x->maxlevel; L > 0; L--) greedy(x, k, q, &cur, &curd, L, 0);
    vt__visited *v = vt__visited_get(x);
    if (!v) return vt__err(VT_ENOMEM, "out of memory in search");
    size_t nr = 0;
    int rc = search_layer(x, k, q, cur, curd, ef, 0, f, 0, v, &nr);
    if (rc == VT_OK) {
        vt__sort_cands(v->res, nr);
        int n = (int)VT_MIN(nr, (size_t)kk);
        memcpy(out, v->res, (size_t)n * sizeof *out);
        *found = n;
    }
    vt__visited_put(x, v);
    return rc ? vt__err(rc, "out of memory in search") : VT_OK;
}
