/* index_internal.h: private structures and kernels of the similarity index (src/index/). */
#ifndef VT_INDEX_INTERNAL_H
#define VT_INDEX_INTERNAL_H

#include "core/internal.h"
#include <pthread.h>
#include <stdint.h>

/* ---- SIMD kernels (kernels.c, kernels_avx2.c, kernels_avx512.c)
 * All vectors are padded with zeros to the padded dimension `d` (a multiple of 16 for float
 * data, 64 for int8), so kernels need no tail handling. Scans read `n` rows at base + r*stride;
 * the f16 and int8 scans also prefetch the bytes `ahead` bytes past each row they read (0: no
 * prefetching; the prefetches may reach past the last row, which is harmless: they never
 * fault). The portable and AVX-512 sets ignore `ahead`. */
typedef struct vt__kernels {
    const char *name;
    float (*dot_f32)(const float *a, const float *b, size_t d);
    float (*l2_f32)(const float *a, const float *b, size_t d);
    float (*dot_f16)(const float *q, const uint16_t *x, size_t d);
    float (*l2_f16)(const float *q, const uint16_t *x, size_t d);
    int32_t (*dot_i8)(const int8_t *a, const int8_t *b, size_t d);
    void (*scan_f32)(const float *q, const uint8_t *base, size_t stride, size_t n, size_t d, int l2, float *out);
    void (*scan_f16)(const float *q, const uint8_t *base, size_t stride, size_t n, size_t d, int l2, size_t ahead,
                     float *out);
    void (*scan_i8)(const int8_t *q, const uint8_t *base, size_t stride, size_t n, size_t d, size_t ahead, int32_t *out);
    void (*f16_to_f32)(const uint16_t *in, float *out, size_t d); /* d multiple of 16 */
    float (*dot_f32_i8)(const float *q, const int8_t *x, size_t d);  /* d multiple of 64 */
} vt__kernels;

extern const vt__kernels vt__kernels_portable;
extern const vt__kernels vt__kernels_avx2;
extern const vt__kernels vt__kernels_avx512;
/* The kernel set in use (chosen once from the CPU and $VITRINE_ISA, or by vt_index_force_isa). */
const vt__kernels *vt__kernels_get(void);

uint16_t vt__f32_to_f16(float f);
float vt__f16_to_f32(uint16_t h);

/* ---- CRC-32C (Castagnoli) of a buffer, continuing from `crc` (start with 0). */
uint32_t vt__crc32c(uint32_t crc, const void *buf, size_t len);

/* ---- the index */
#define VT__NOID UINT32_MAX
#define VT__MAX_LEVEL 32

typedef struct { float d; uint32_t id; } vt__cand;

/* Whether candidate (d, id) orders after (e, jd): by distance, then by row, so that ties have one
 * answer whatever order the candidates arrive in. */
static inline int vt__cand_after(float d, uint32_t id, float e, uint32_t jd) { return d > e || (d == e && id > jd); }

/* Pushes (d, id) onto the binary max-heap h[0..*n) on (.d, .id) (room for one more is the
 * caller's). */
static inline void vt__heap_push(vt__cand *h, size_t *n, float d, uint32_t id) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!vt__cand_after(d, id, h[p].d, h[p].id)) break;
        h[i] = h[p];
        i = p;
    }
    h[i].d = d;
    h[i].id = id;
}

/* Per-search scratch: visited tags (generation counter) and the two heaps of a layer search. */
typedef struct vt__visited {
    uint16_t *tag;
    uint16_t cur;
    size_t cap;
    vt__cand *cand, *res;
    size_t ccap, rcap;
} vt__visited;

/* A query prepared for one index: padded, normalised for cosine, quantised for int8. */
typedef struct vt__query {
    const void *code;  /* float[dpad] for f32/f16 storage, int8[dpad] for i8 */
    float scale;       /* i8: dequantisation scale of the query */
    float sqnorm;      /* squared norm of the (dequantised) query */
    const float *fq;   /* the float query (dpad floats), for re-ranking; NULL for graph construction */
    float fsqnorm;     /* its squared norm */
} vt__query;

struct vt_index {
    vt_index_opts o;
    size_t dpad;        /* padded dimension */
    size_t code_bytes;  /* bytes of one stored vector */
    size_t link_bytes;  /* level-0 link block: u32 count + 2M u32 ids, unpadded (0 for flat) */
    size_t aux_bytes;   /* per-row floats after the code: i8 only (scale; + squared norm for l2) */
    size_t stride;      /* bytes per node block: links, code, aux; a multiple of 4 */
    size_t n, cap;      /* rows in use (live + deleted) / allocated */
    uint8_t *blocks;    /* n node blocks (heap, or inside `map` after a load) */
    /* Flat f16 / i8 indexes also keep every vector in float32 (as added, normalised for cosine),
     * fpad floats a row (dim rounded up to 16, zero padded), apart from the rows so the scan
     * streams only the compact codes; the scan's best candidates are re-ranked with them.
     * NULL (fpad 0) for f32 storage and for HNSW. */
    size_t fpad;
    float *full;        /* n * fpad floats (heap, or inside `map` after a load) */
    float full_amax;    /* the largest |component| and the largest norm of any vector kept in */
    float full_nmax;    /* `full` (never lowered by removes): they bound the quantisation error */
    int64_t *labels;    /* label of each row */
    uint64_t *deleted;  /* bitmap over rows */
    size_t ndeleted;
    /* label -> row hash (open addressing, linear probing) */
    int64_t *hkey;
    uint32_t *hval;     /* VT__NOID: empty */
    size_t hcap;
    /* HNSW */
    int M, M0;
    double level_mult;
    uint8_t *levels;    /* level of each row */
    uint32_t **upper;   /* per row: levels[r] blocks of (1 + M) u32, or NULL */
    uint32_t *upper_pool; /* after a load: one allocation holding the upper blocks of the */
    size_t upper_pool_n;  /* first upper_pool_n rows */
    uint32_t entry;
    int maxlevel;
    uint8_t *locks;     /* per-row spin locks used while building */
    pthread_mutex_t glock;
    vt_rng rng;
    /* visited lists for concurrent searches */
    pthread_mutex_t vmu;
    vt__visited **vfree;
    int nvfree, vfree_cap;
    /* file mapping backing `blocks` after vt_index_load (copied on first mutation) */
    void *map;
    size_t maplen;
};

static inline uint8_t *vt__node(const vt_index *x, uint32_t id) { return x->blocks + (size_t)id * x->stride; }
static inline uint32_t *vt__links0(const vt_index *x, uint32_t id) { return (uint32_t *)vt__node(x, id); }
static inline const void *vt__code(const vt_index *x, uint32_t id) { return vt__node(x, id) + x->link_bytes; }
/* The row's aux floats, int8 storage only: [0] the dequantisation scale, [1] (l2 metric only) the
 * squared norm of the dequantised vector. f32 and f16 rows have none: their kernels need neither. */
static inline float *vt__aux(const vt_index *x, uint32_t id) {
    return (float *)(vt__node(x, id) + x->link_bytes + x->code_bytes);
}
static inline const float *vt__full(const vt_index *x, uint32_t id) { return x->full + (size_t)id * x->fpad; }
static inline int vt__is_deleted(const vt_index *x, uint32_t id) { return (x->deleted[id >> 6] >> (id & 63)) & 1; }

/* index.c */
size_t vt__elem_size(vt_index_store s);
int vt__index_alloc(const vt_index_opts *o, vt_index **out);
int vt__reserve(vt_index *x, size_t cap);
int vt__hash_put(vt_index *x, int64_t label, uint32_t id);
uint32_t vt__hash_get(const vt_index *x, int64_t label);
/* Encodes float vector v (already normalised for cosine) into row `id`'s code (and aux, i8). */
void vt__encode(const vt_index *x, const float *v, uint32_t id);
/* Prepares a query from a float vector; buf holds dpad floats (also used for int8). */
void vt__prepare(const vt_index *x, const float *v, float *buf, vt__query *q);
/* Prepares row `id` as a query (for graph construction); buf holds dpad floats. */
void vt__prepare_node(const vt_index *x, uint32_t id, float *buf, vt__query *q);
/* Distance (lower is closer) from a prepared query to row id. */
float vt__dist(const vt_index *x, const vt__kernels *k, const vt__query *q, uint32_t id);
int vt__admitted(const vt_index *x, const vt_bitset *f, uint32_t id);
vt__visited *vt__visited_get(vt_index *x);
void vt__visited_put(vt_index *x, vt__visited *v);
int vt__materialize(vt_index *x);
extern size_t vt__huge_min; /* per-row arrays from this size get huge pages advised (16 MB; tests lower it) */
void vt__advise_huge(void *p, size_t bytes);
int vt__thp_usable(void);

void vt__sort_cands(vt__cand *h, size_t n);

/* hnsw.c */
/* Links row id (already encoded, level drawn) into the graph; buf holds 2*dpad floats.
 * May run concurrently for different rows. */
int vt__hnsw_insert(vt_index *x, uint32_t id, int level, float *buf);
int vt__hnsw_search(vt_index *x, const vt__kernels *k, const vt__query *q, int kk, int ef,
                    const vt_bitset *f, vt__cand *out, int *found);
int vt__hnsw_random_level(vt_index *x);
int vt__hnsw_alloc_upper(vt_index *x, uint32_t id, int level);

/* bitset.c */
struct vt_bitset {
    uint64_t *w;
    size_t nbits;
    size_t count;
};

/* persist.c: parse an index image; verify: check the checksum. On success the index owns
 * nothing of buf unless `map` was given and kept: then (*out)->map is set and its rows point into
 * it. An HNSW index with vt__huge_min bytes of rows or more copies them instead, when the kernel
 * gives huge pages (vt__thp_usable). */
int vt__index_parse(const uint8_t *buf, size_t len, int verify, void *map, size_t maplen, vt_index **out);

#endif
