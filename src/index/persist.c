/* persist.c: the on-disk index format (docs/index.md): atomic save, mmap load, strict validation. */
#include "index_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the index file format is little-endian; add byte swapping for this host"
#endif

#define HDR_BYTES 128
/* 3: flat f16 / i8 indexes carry their vectors in float32 too (a section after the rows) for the
 * exact re-rank, with the bounds of their quantisation error in the header, and the header
 * checksum also covers bytes [96, 128). Versions 1 and 2 are refused with a message to rebuild
 * (a version 2 flat f16 / i8 file has no float32 vectors: it could only answer approximately);
 * the engine's cached index is rebuilt on its own. */
#define FORMAT_VERSION 3
static const char MAGIC[8] = {'V', 'T', 'I', 'N', 'D', 'E', 'X', 0};

/* The fixed header; every field little-endian; reserved bytes must be zero. */
typedef struct {
    char magic[8];
    uint32_t version, header_bytes;
    uint32_t kind, store, metric, dim;
    uint32_t M, ef_construction;
    uint64_t seed, n, ndeleted;
    uint32_t entry;
    int32_t maxlevel;
    uint64_t upper_words, file_bytes;
    uint32_t payload_crc, header_crc; /* CRC-32C of bytes [128, end) and of bytes [0, 88) */
    uint32_t row_bytes;               /* the stride the other fields imply, checked on load */
    uint32_t full_bytes;              /* bytes of one row's float32 copy (flat f16 / i8), else 0 */
    float full_amax, full_nmax;       /* largest |component| and norm of those copies (else 0) */
    uint8_t reserved[HDR_BYTES - 112];
} file_header;
_Static_assert(sizeof(file_header) == HDR_BYTES, "header layout");
_Static_assert(offsetof(file_header, payload_crc) == 88, "header layout");
_Static_assert(offsetof(file_header, row_bytes) == 96, "header layout");
_Static_assert(offsetof(file_header, full_bytes) == 100, "header layout");

/* CRC-32C of the header's bytes [0, 88) then [96, 128): everything but the two checksums. */
static uint32_t header_crc(const void *h) {
    return vt__crc32c(vt__crc32c(0, h, 88), (const uint8_t *)h + 96, HDR_BYTES - 96);
}

static size_t pad8(size_t v) { return (v + 7) & ~(size_t)7; }

/* Section sizes for n rows (each padded to 8 bytes; `rows` is the unpadded n * stride, `full`
 * n * full_bytes, a multiple of 64); returns -1 on overflow. */
typedef struct { size_t rows, blocks, full, labels, deleted, levels, upper, total; } layout;
static int compute_layout(size_t n, size_t stride, size_t full_bytes, uint64_t upper_words, layout *l) {
    if (n >= VT__NOID || upper_words > ((uint64_t)1 << 40)) return -1;
    if (vt__mul_overflow(n, stride, &l->rows) || l->rows > SIZE_MAX - 8) return -1;
    if (vt__mul_overflow(n, full_bytes, &l->full) || l->full > SIZE_MAX / 2) return -1;
    l->blocks = pad8(l->rows);
    l->labels = n * 8;
    l->deleted = (n + 63) / 64 * 8;
    l->levels = pad8(n);
    l->upper = pad8((size_t)upper_words * 4);
    size_t t = HDR_BYTES;
    if (__builtin_add_overflow(t, l->blocks, &t) || __builtin_add_overflow(t, l->full, &t) ||
        __builtin_add_overflow(t, l->labels + l->deleted + l->levels, &t) ||
        __builtin_add_overflow(t, l->upper, &t))
        return -1;
    l->total = t;
    return 0;
}

/* ---- save: stream the sections through a buffer into a temporary file, CRC on the way,
 * then write the header, fsync, rename, fsync the folder. */
typedef struct {
    int fd;
    uint8_t buf[1 << 16];
    size_t used;
    uint32_t crc;
    int err;
} writer;

static void wflush(writer *w) {
    size_t done = 0;
    while (!w->err && done < w->used) {
        ssize_t r = write(w->fd, w->buf + done, w->used - done);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) w->err = errno ? errno : EIO;
        else done += (size_t)r;
    }
    w->used = 0;
}

static void wput(writer *w, const void *p, size_t len) {
    const uint8_t *s = p;
    w->crc = vt__crc32c(w->crc, p, len);
    while (len) {
        size_t c = VT_MIN(len, sizeof w->buf - w->used);
        memcpy(w->buf + w->used, s, c);
        w->used += c;
        s += c;
        len -= c;
        if (w->used == sizeof w->buf) wflush(w);
    }
}

static void wzero(writer *w, size_t len) {
    static const uint8_t z[8];
    while (len) {
        size_t c = VT_MIN(len, sizeof z);
        wput(w, z, c);
        len -= c;
    }
}

int vt_index_save(const vt_index *x, const char *path) {
    if (!x || !path) return vt__err(VT_EINVAL, "index save: NULL argument");
    uint64_t upper_words = 0;
    if (x->o.kind == VT_INDEX_HNSW)
        for (size_t i = 0; i < x->n; i++) upper_words += (uint64_t)x->levels[i] * (uint64_t)(1 + x->M);
    layout l;
    if (compute_layout(x->n, x->stride, x->fpad * sizeof(float), upper_words, &l)) return vt__err(VT_ETOOBIG, "%s: index too large", path);
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 32);
    writer *w = calloc(1, sizeof *w);
    if (!tmp || !w) {
        free(tmp);
        free(w);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    snprintf(tmp, pl + 32, "%s.tmp.%ld", path, (long)getpid());
    w->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int e = errno;
        free(tmp);
        free(w);
        return vt__err(VT_EIO, "%s: cannot create: %s", path, strerror(e));
    }
    file_header h;
    memset(&h, 0, sizeof h);
    /* placeholder header, rewritten at the end */
    wput(w, &h, sizeof h);
    w->crc = 0;
    wput(w, x->blocks, l.rows);
    wzero(w, l.blocks - l.rows);
    if (l.full) wput(w, x->full, l.full);
    wput(w, x->labels, l.labels);
    wput(w, x->deleted, l.deleted);
    wput(w, x->levels, x->n);
    wzero(w, l.levels - x->n);
    if (x->o.kind == VT_INDEX_HNSW)
        for (size_t i = 0; i < x->n; i++)
            if (x->levels[i]) wput(w, x->upper[i], (size_t)x->levels[i] * (size_t)(1 + x->M) * 4);
    wzero(w, l.upper - (size_t)upper_words * 4);
    wflush(w);
    memcpy(h.magic, MAGIC, 8);
    h.version = FORMAT_VERSION;
    h.header_bytes = HDR_BYTES;
    h.kind = (uint32_t)x->o.kind;
    h.store = (uint32_t)x->o.store;
    h.metric = (uint32_t)x->o.metric;
    h.dim = (uint32_t)x->o.dim;
    h.M = (uint32_t)x->o.M;
    h.ef_construction = (uint32_t)x->o.ef_construction;
    h.seed = x->o.seed;
    h.n = x->n;
    h.ndeleted = x->ndeleted;
    h.entry = x->entry;
    h.maxlevel = x->maxlevel;
    h.upper_words = upper_words;
    h.file_bytes = l.total;
    h.row_bytes = (uint32_t)x->stride;
    h.full_bytes = (uint32_t)(x->fpad * sizeof(float));
    h.full_amax = x->full_amax;
    h.full_nmax = x->full_nmax;
    h.payload_crc = w->crc;
    h.header_crc = header_crc(&h);
    int err = w->err;
    if (!err && pwrite(w->fd, &h, sizeof h, 0) != (ssize_t)sizeof h) err = errno ? errno : EIO;
    if (!err && fsync(w->fd) != 0) err = errno;
    if (close(w->fd) != 0 && !err) err = errno;
    if (!err && rename(tmp, path) != 0) err = errno;
    if (err) {
        unlink(tmp);
        free(tmp);
        free(w);
        return vt__err(VT_EIO, "%s: write failed: %s", path, strerror(err));
    }
    /* make the rename durable */
    char *dir = strdup(path);
    if (dir) {
        int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    free(tmp);
    free(w);
    return VT_OK;
}

/* ---- load */
#define BAD(...) do { rc = vt__err(VT_ECORRUPT, __VA_ARGS__); goto fail; } while (0)

int vt__index_parse(const uint8_t *buf, size_t len, int verify, void *map, size_t maplen, vt_index **out) {
    *out = NULL;
    if (len < HDR_BYTES) return vt__err(len ? VT_ETRUNCATED : VT_EEMPTY, "index file is %zu bytes, shorter than its header", len);
    file_header h;
    memcpy(&h, buf, sizeof h);
    if (memcmp(h.magic, MAGIC, 8)) return vt__err(VT_ECORRUPT, "not a vitrine index file (bad magic)");
    if (h.version < FORMAT_VERSION)
        return vt__err(VT_EUNSUPPORTED,
                       "index format version %u was written by an older vitrine (this build reads version %d): "
                       "rebuild the index",
                       h.version, FORMAT_VERSION);
    if (h.version > FORMAT_VERSION)
        return vt__err(VT_EUNSUPPORTED, "index format version %u is newer than this build reads (%d): upgrade vitrine",
                       h.version, FORMAT_VERSION);
    if (verify && header_crc(buf) != h.header_crc) return vt__err(VT_ECHECKSUM, "index header checksum mismatch");
    if (h.header_bytes != HDR_BYTES) return vt__err(VT_ECORRUPT, "index header size %u", h.header_bytes);
    for (size_t i = 0; i < sizeof h.reserved; i++)
        if (h.reserved[i]) return vt__err(VT_ECORRUPT, "index header: reserved bytes are not zero");
    if (h.kind > 1 || h.store > 2 || h.metric > 2 || h.dim < 1 || h.dim > 65536 || h.M > 256 || h.ef_construction > 100000)
        return vt__err(VT_ECORRUPT, "index header: invalid kind/storage/metric/dimension/M");
    vt_index_opts o;
    vt_index_opts_init(&o);
    o.kind = (vt_index_kind)h.kind;
    o.store = (vt_index_store)h.store;
    o.metric = (vt_metric)h.metric;
    o.dim = (int)h.dim;
    o.M = (int)h.M;
    o.ef_construction = (int)h.ef_construction;
    o.seed = h.seed;
    vt_index *x;
    int rc = vt__index_alloc(&o, &x);
    if (rc) return vt__err(VT_ECORRUPT, "index header: %s", vt_errmsg());
    if (h.row_bytes != x->stride)
        BAD("index header: rows of %u bytes, but kind, storage, metric, dimension and M make them %zu", h.row_bytes,
            x->stride);
    if (h.full_bytes != x->fpad * sizeof(float))
        BAD("index header: float32 copies of %u bytes a row, but kind, storage and dimension make them %zu",
            h.full_bytes, x->fpad * sizeof(float));
    /* the error bounds only size the re-rank window: any finite non-negative value is safe */
    if (!(h.full_amax >= 0 && h.full_amax <= 3e38f && h.full_nmax >= 0 && h.full_nmax <= 3e38f) ||
        (!x->fpad && (h.full_amax != 0 || h.full_nmax != 0)))
        BAD("index header: invalid quantisation error bounds %g, %g", (double)h.full_amax, (double)h.full_nmax);
    x->full_amax = h.full_amax;
    x->full_nmax = h.full_nmax;
    layout l;
    if (h.n >= VT__NOID || compute_layout((size_t)h.n, x->stride, h.full_bytes, h.upper_words, &l)) BAD("index header: %llu rows is too many", (unsigned long long)h.n);
    if (h.file_bytes != l.total) BAD("index header: declared size %llu does not match its contents (%zu)", (unsigned long long)h.file_bytes, l.total);
    if (len < l.total) {
        rc = vt__err(VT_ETRUNCATED, "index file is truncated: %zu of %zu bytes", len, l.total);
        goto fail;
    }
    if (len > l.total) BAD("index file has %zu bytes of trailing data", len - l.total);
    if (verify && vt__crc32c(0, buf + HDR_BYTES, len - HDR_BYTES) != h.payload_crc) {
        rc = vt__err(VT_ECHECKSUM, "index checksum mismatch: the file is corrupt");
        goto fail;
    }
    size_t n = (size_t)h.n;
    const uint8_t *p = buf + HDR_BYTES;
    const uint8_t *pblocks = p, *pfull = p + l.blocks, *plabels = pfull + l.full, *pdel = plabels + l.labels,
                  *plev = pdel + l.deleted, *pupper = plev + l.levels;
    if ((rc = vt__reserve(x, n ? n : 1))) goto fail;
    /* An HNSW walk reads rows at random: from vt__huge_min bytes of rows, a copy on huge pages
     * (advised by vt__reserve) answers faster than the 4 KB pages of a file mapping. */
    if (map && x->o.kind == VT_INDEX_HNSW && l.rows >= vt__huge_min && vt__thp_usable()) map = NULL;
    if (map) {
        free(x->blocks);
        free(x->full);
        x->blocks = (uint8_t *)pblocks;
        x->full = x->fpad ? (float *)(void *)pfull : NULL; /* 8-byte aligned in the mapping */
        x->map = map;
        x->maplen = maplen;
    } else {
        memcpy(x->blocks, pblocks, l.rows);
        if (l.full) memcpy(x->full, pfull, l.full);
    }
    for (size_t i = l.rows; i < l.blocks; i++)
        if (pblocks[i]) BAD("index: padding after the rows is not zero");
    memcpy(x->labels, plabels, l.labels);
    memcpy(x->deleted, pdel, l.deleted);
    memcpy(x->levels, plev, n);
    x->n = n;
    /* deleted rows, labels */
    size_t ndel = 0;
    for (size_t i = 0; i < l.deleted / 8; i++) ndel += (size_t)__builtin_popcountll(x->deleted[i]);
    if (n % 64 && (x->deleted[n / 64] >> (n % 64))) BAD("index: deleted bitmap has bits past the last row");
    if (ndel != h.ndeleted) BAD("index: %zu deleted rows, header says %llu", ndel, (unsigned long long)h.ndeleted);
    x->ndeleted = ndel;
    for (size_t i = 0; i < n; i++) {
        if (x->labels[i] < 0) BAD("index: row %zu has negative label %lld", i, (long long)x->labels[i]);
        if (vt__is_deleted(x, (uint32_t)i)) continue;
        if (vt__hash_put(x, x->labels[i], (uint32_t)i)) BAD("index: label %lld appears twice", (long long)x->labels[i]);
    }
    if (o.kind == VT_INDEX_FLAT) {
        if (h.entry != VT__NOID || h.maxlevel != -1 || h.upper_words) BAD("index: a flat index with graph fields");
        for (size_t i = 0; i < n; i++)
            if (x->levels[i]) BAD("index: a flat index with graph levels");
        *out = x;
        return VT_OK;
    }
    /* graph */
    if (h.M < 2) BAD("index: M %u", h.M);
    uint64_t words = 0;
    int top = -1;
    for (size_t i = 0; i < n; i++) {
        if (x->levels[i] > VT__MAX_LEVEL) BAD("index: row %zu has level %u", i, x->levels[i]);
        words += (uint64_t)x->levels[i] * (uint64_t)(1 + x->M);
        top = VT_MAX(top, (int)x->levels[i]);
    }
    if (words != h.upper_words) BAD("index: upper links hold %llu words, header says %llu", (unsigned long long)words, (unsigned long long)h.upper_words);
    if (n == 0 ? (h.entry != VT__NOID || h.maxlevel != -1)
               : (h.entry >= n || h.maxlevel != top || x->levels[h.entry] != top))
        BAD("index: invalid entry point %u / top level %d", h.entry, h.maxlevel);
    x->entry = h.entry;
    x->maxlevel = h.maxlevel;
    if (words) {
        x->upper_pool = malloc((size_t)words * 4);
        if (!x->upper_pool) {
            rc = vt__err(VT_ENOMEM, "out of memory loading the graph");
            goto fail;
        }
        memcpy(x->upper_pool, pupper, (size_t)words * 4);
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        x->upper[i] = x->levels[i] ? x->upper_pool + off : NULL;
        off += (size_t)x->levels[i] * (size_t)(1 + x->M);
    }
    x->upper_pool_n = n;
    for (size_t i = 0; i < n; i++) {
        for (int L = 0; L <= x->levels[i]; L++) {
            const uint32_t *ln = L == 0 ? vt__links0(x, (uint32_t)i) : x->upper[i] + (size_t)(L - 1) * (size_t)(1 + x->M);
            uint32_t cnt = ln[0];
            if (cnt > (uint32_t)(L == 0 ? x->M0 : x->M)) BAD("index: row %zu has %u links on level %d", i, cnt, L);
            for (uint32_t j = 1; j <= cnt; j++)
                if (ln[j] >= n || x->levels[ln[j]] < L) BAD("index: row %zu links to invalid row %u on level %d", i, ln[j], L);
        }
    }
    *out = x;
    return VT_OK;
fail:
    if (x->map) { /* the caller unmaps */
        x->map = NULL;
        x->blocks = NULL;
        x->full = NULL;
    }
    vt_index_free(x);
    return rc;
}

int vt_index_load_mem(const void *buf, size_t len, vt_index **out) {
    if (!out || (!buf && len)) return vt__err(VT_EINVAL, "index load: NULL argument");
    return vt__index_parse(buf, len, 1, NULL, 0, out);
}

int vt_index_load(const char *path, vt_index **out) {
    if (!path || !out) return vt__err(VT_EINVAL, "index load: NULL argument");
    *out = NULL;
    void *m;
    size_t len;
    int mapped;
    int rc = vt__map_file(path, &m, &len, &mapped);
    if (rc) return rc;
    if (len < HDR_BYTES) {
        vt__unmap_file(m, len, mapped);
        return vt__err(len ? VT_ETRUNCATED : VT_EEMPTY, "%s: %zu bytes is shorter than an index header", path, len);
    }
    if (mapped) { /* the index keeps the mapping, unless it copied its rows (see vt__index_parse) */
        rc = vt__index_parse(m, len, 1, m, len, out);
        if (rc || !(*out)->map) munmap(m, len);
    } else {
        rc = vt__index_parse(m, len, 1, NULL, 0, out);
        free(m);
    }
    if (rc) return vt__err_prefix(rc, "%s", path);
    return VT_OK;
}
