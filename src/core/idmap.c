/* idmap.c: the one set of string ids (each with an int64 value) used across the library: open
 * addressing with linear probing and backward-shift deletion, so removals leave no tombstones. */
#include "core/internal.h"

#include <string.h>

struct vt__idmap {
    char **key;
    int64_t *val;
    size_t cap, n; /* cap: 0 or a power of two */
};

static size_t home(const char *id, size_t cap) { return vt_hash64(id, strlen(id), 0x5eed) & (cap - 1); }

int vt__idmap_create(vt__idmap **out) {
    *out = calloc(1, sizeof **out);
    return *out ? VT_OK : vt__err(VT_ENOMEM, "out of memory");
}

void vt__idmap_free(vt__idmap *m) {
    if (!m) return;
    for (size_t i = 0; i < m->cap; i++) free(m->key[i]);
    free(m->key);
    free(m->val);
    free(m);
}

size_t vt__idmap_count(const vt__idmap *m) { return m ? m->n : 0; }

/* The slot holding id (returns 1), or the empty slot where it would go (returns 0). */
static int find(const vt__idmap *m, const char *id, size_t *slot) {
    size_t mask = m->cap - 1, i = home(id, m->cap);
    while (m->key[i]) {
        if (!strcmp(m->key[i], id)) {
            *slot = i;
            return 1;
        }
        i = (i + 1) & mask;
    }
    *slot = i;
    return 0;
}

static int grow(vt__idmap *m) {
    size_t nc = m->cap ? m->cap * 2 : 64;
    char **nk = calloc(nc, sizeof *nk);
    int64_t *nv = calloc(nc, sizeof *nv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->key[i]) continue;
        size_t j = home(m->key[i], nc);
        while (nk[j]) j = (j + 1) & (nc - 1);
        nk[j] = m->key[i];
        nv[j] = m->val[i];
    }
    free(m->key);
    free(m->val);
    m->key = nk;
    m->val = nv;
    m->cap = nc;
    return VT_OK;
}

int vt__idmap_get(const vt__idmap *m, const char *id, int64_t *val) {
    size_t slot;
    if (!m || !m->cap || !find(m, id, &slot)) return 0;
    if (val) *val = m->val[slot];
    return 1;
}

int vt__idmap_add(vt__idmap *m, const char *id, int64_t val) {
    if ((m->n + 1) * 2 > m->cap) {
        int rc = grow(m);
        if (rc) return rc;
    }
    size_t slot;
    if (find(m, id, &slot)) return VT_EEXIST;
    if (!(m->key[slot] = strdup(id))) return vt__err(VT_ENOMEM, "out of memory");
    m->val[slot] = val;
    m->n++;
    return VT_OK;
}

int vt__idmap_set(vt__idmap *m, const char *id, int64_t val) {
    if (m->cap) {
        size_t slot;
        if (find(m, id, &slot)) {
            m->val[slot] = val;
            return VT_OK;
        }
    }
    return vt__idmap_add(m, id, val);
}

int vt__idmap_remove(vt__idmap *m, const char *id) {
    size_t slot;
    if (!m || !m->cap || !find(m, id, &slot)) return 0;
    free(m->key[slot]);
    m->key[slot] = NULL;
    m->n--;
    /* backward-shift: move later members of the probe run into the hole when their home allows */
    size_t mask = m->cap - 1, hole = slot, i = (slot + 1) & mask;
    while (m->key[i]) {
        size_t h = home(m->key[i], m->cap);
        /* i's home lies cyclically in (hole, i]: it must stay; otherwise it may fill the hole */
        int stays = hole <= i ? (h > hole && h <= i) : (h > hole || h <= i);
        if (!stays) {
            m->key[hole] = m->key[i];
            m->val[hole] = m->val[i];
            m->key[i] = NULL;
            hole = i;
        }
        i = (i + 1) & mask;
    }
    return 1;
}

int vt__idmap_each(const vt__idmap *m, int (*fn)(void *ctx, const char *id, int64_t val), void *ctx) {
    for (size_t i = 0; m && i < m->cap; i++) {
        if (!m->key[i]) continue;
        int rc = fn(ctx, m->key[i], m->val[i]);
        if (rc) return rc;
    }
    return 0;
}
