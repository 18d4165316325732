/* vitrine.h: the one public header of libvitrine, a visual fashion recommendation engine.
 *
 * Conventions (see docs/ARCHITECTURE.md):
 *  - every symbol starts with vt_ (types, functions) or VT_ (macros, constants);
 *  - functions return 0 on success or a negative VT_E* code; results go to out-parameters;
 *  - on failure, vt_errmsg() gives a human-readable message for the calling thread
 *    (naming the file and the reason where there is one);
 *  - objects come in _create/_free or _open/_close pairs; _free(NULL) is a no-op;
 *  - the library never exits the process and never prints except through the logger.
 */
#ifndef VITRINE_H
#define VITRINE_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VT_VERSION_MAJOR 0
#define VT_VERSION_MINOR 1
#define VT_VERSION_PATCH 0
#define VT_VERSION_STRING "0.1.0"

/* ======================================================================== core: errors */

enum {
    VT_OK = 0,
    VT_ENOMEM = -1,       /* out of memory */
    VT_EINVAL = -2,       /* invalid argument */
    VT_EIO = -3,          /* read or write failed */
    VT_ENOENT = -4,       /* no such file */
    VT_EEMPTY = -5,       /* empty input (zero bytes) */
    VT_ENOTIMAGE = -6,    /* not an image format we know */
    VT_ETRUNCATED = -7,   /* data ends early */
    VT_ECORRUPT = -8,     /* data is malformed */
    VT_ETOOBIG = -9,      /* declared size above the configured limit */
    VT_EUNSUPPORTED = -10,/* a valid input using a feature we do not support */
    VT_ECHECKSUM = -11,   /* checksum mismatch */
    VT_ENOTFOUND = -12,   /* no such item / tensor / key */
    VT_EEXIST = -13,      /* already exists */
    VT_ESTATE = -14,      /* call not valid in the object's current state */
    VT_EINTERNAL = -15,   /* a bug or a failure of an underlying library */
    VT_EPARTIAL = -16,    /* finished, but some inputs were rejected */
    VT_ECANCELED = -17,   /* stopped early: the caller's cancel flag was set */
};

/* Short static description of an error code ("not an image", ...). Never NULL. */
const char *vt_strerror(int err);

/* The detailed message of the last error raised on this thread, e.g.
 * "shirt.jpg: declared size 60000x60000 is above the limit of 100 megapixels".
 * Valid until the next failing vitrine call on this thread. Never NULL. */
const char *vt_errmsg(void);

/* ======================================================================== core: logging */

typedef enum { VT_LOG_DEBUG = 0, VT_LOG_INFO = 1, VT_LOG_WARN = 2, VT_LOG_ERROR = 3, VT_LOG_OFF = 4 } vt_log_level;

typedef void (*vt_log_fn)(vt_log_level level, const char *msg, void *user);

/* Messages below `level` are dropped. Default: VT_LOG_WARN, or $VITRINE_LOG (debug|info|warn|error|off). */
void vt_log_set_level(vt_log_level level);
vt_log_level vt_log_get_level(void);
/* Route log lines to `fn` (NULL restores the default: stderr). */
void vt_log_set_handler(vt_log_fn fn, void *user);
void vt_log(vt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ======================================================================== core: random numbers */

/* xoshiro256** generator; a plain struct so it can live on the stack. */
typedef struct vt_rng { uint64_t s[4]; } vt_rng;

void vt_rng_seed(vt_rng *rng, uint64_t seed);
uint64_t vt_rng_next(vt_rng *rng);
/* Uniform in [0, 1). */
double vt_rng_uniform(vt_rng *rng);
/* Uniform integer in [0, n); n > 0. */
uint64_t vt_rng_below(vt_rng *rng, uint64_t n);

/* ======================================================================== core: thread pool */

typedef struct vt_pool vt_pool;

/* A pool of `threads` workers (0: one per online CPU). */
int vt_pool_create(int threads, vt_pool **out);
void vt_pool_free(vt_pool *pool);
int vt_pool_threads(const vt_pool *pool);

/* Calls fn(ctx, i, worker) for every i in [0, n), spread over the pool's workers (and the
 * calling thread), and returns when all calls are done. `worker` is in [0, vt_pool_threads()).
 * Items are handed out dynamically in chunks of `grain` (0: automatic). pool may be NULL:
 * then everything runs on the calling thread. Not reentrant for one pool. */
typedef void (*vt_pool_fn)(void *ctx, size_t i, int worker);
void vt_pool_parallel_for(vt_pool *pool, size_t n, size_t grain, vt_pool_fn fn, void *ctx);

/* Number of online CPUs (at least 1). */
int vt_cpu_count(void);

/* ======================================================================== core: progress */

typedef struct vt_progress vt_progress;

/* A progress reporter for `total` units (0: unknown) written to stderr. On a terminal it redraws
 * one line with a bar, rate and ETA; otherwise it prints a plain line every `interval` seconds
 * (VITRINE_PROGRESS_INTERVAL, default 10). VITRINE_PROGRESS=0 silences it. Thread-safe. */
int vt_progress_create(const char *label, uint64_t total, const char *unit, vt_progress **out);
/* Adds `n` done units; `status` (may be NULL) is shown after the rate (e.g. "loss 1.23"). */
void vt_progress_add(vt_progress *p, uint64_t n, const char *status);
/* Prints the closing line (count, elapsed time, mean rate) and frees. */
void vt_progress_finish(vt_progress *p);
double vt_now(void); /* monotonic seconds */

/* ======================================================================== image */

/* An 8-bit interleaved image (RGB when channels == 3). Owned by whoever filled it;
 * release with vt_image_free. */
typedef struct vt_image {
    int width, height, channels;
    uint8_t *data; /* height rows of width*channels bytes, no padding */
} vt_image;

typedef enum { VT_FMT_UNKNOWN = 0, VT_FMT_JPEG, VT_FMT_PNG, VT_FMT_WEBP } vt_image_format;

typedef struct vt_decode_opts {
    uint64_t max_pixels; /* refuse images declaring more pixels (0: VT_DEFAULT_MAX_PIXELS) */
    int min_long;        /* a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (libjpeg-turbo DCT */
    int min_short;       /* scaling) as long as its longer side stays >= min_long and its shorter
                            side >= min_short; both 0: always full size. For a letterboxed network
                            input of size S pass min_long = S; for a stretched one min_short = S. */
    int fast;            /* nonzero: JPEG decode with libjpeg-turbo's fast integer IDCT (slightly
                            less exact, a few % faster); fine for network inputs */
    size_t max_memory;   /* cap on libjpeg's working memory (the whole-image buffers of progressive
                            JPEGs); 0: 6 bytes per allowed pixel + 8 MiB */
} vt_decode_opts;

#define VT_DEFAULT_MAX_PIXELS 100000000ull

/* Guess the format from magic bytes. */
vt_image_format vt_image_sniff(const void *buf, size_t len);

/* Decodes JPEG, PNG or WebP to 8-bit RGB. Grayscale, CMYK, palette, 16-bit are converted; alpha
 * is composited onto white; a JPEG's EXIF orientation is applied. Dimensions are checked against
 * opts->max_pixels before any pixel buffer is allocated. `name` (may be NULL) is used in error
 * messages. On error *out is left empty ({0}). opts may be NULL for defaults. */
int vt_image_decode(const void *buf, size_t len, const char *name, const vt_decode_opts *opts, vt_image *out);
/* Reads and decodes a file. */
int vt_image_load(const char *path, const vt_decode_opts *opts, vt_image *out);
/* Allocates a w x h x c image; pixels uninitialised. */
int vt_image_alloc(vt_image *img, int w, int h, int c);
void vt_image_free(vt_image *img);
/* Writes an 8-bit RGB or gray image as PNG. */
int vt_image_save_png(const vt_image *img, const char *path);

/* How a photo becomes a square network input. */
typedef enum {
    VT_FIT_LETTERBOX = 0, /* keep aspect, pad to square with white */
    VT_FIT_STRETCH = 1,   /* squash to square, ignoring aspect */
} vt_fit_mode;

/* Antialiased resize of src to dst_w x dst_h. Downscaling averages all the source pixels under
 * each destination pixel with an area-scaled triangle filter (no aliasing on stripes);
 * upscaling is bilinear. */
int vt_image_resize(const vt_image *src, int dst_w, int dst_h, vt_image *out);
/* Fits src into a size x size square: letterbox on white (centred) or stretch, then resize.
 * The result is what the network sees. */
int vt_image_fit(const vt_image *src, int size, vt_fit_mode mode, vt_image *out);

/* Converts to float planar CHW: out[c*H*W + y*W + x] = (px/255 - mean[c]) / std[c].
 * `out` holds 3*H*W floats. bgr != 0 writes channels in B,G,R order; mean and std are given
 * per output channel (so in B,G,R order too when bgr != 0). Gray images are replicated. */
void vt_image_to_chw(const vt_image *img, const float mean[3], const float std[3], int bgr, float *out);

/* Training augmentation parameters. vt_augment_defaults() fills the usual values. */
typedef struct vt_augment_opts {
    float crop_scale_min, crop_scale_max; /* random resized crop: area fraction (0.6, 1.0) */
    float crop_ratio_min, crop_ratio_max; /* aspect ratio range (3/4, 4/3) */
    float flip_prob;                      /* horizontal flip probability (0.5) */
    float max_rotate_deg;                 /* rotation uniform in +-this, white fill (10) */
    float brightness, contrast, saturation; /* jitter factors uniform in 1 +- this (0.2 each) */
} vt_augment_opts;

void vt_augment_defaults(vt_augment_opts *o);
/* Produces one random training view of src as a size x size image: random resized crop of the
 * (letterboxed or stretched) square, rotation, flip, colour jitter; deterministic for a given
 * rng state. */
int vt_image_augment(const vt_image *src, int size, vt_fit_mode mode, const vt_augment_opts *o,
                     vt_rng *rng, vt_image *out);

/* ImageNet mean / std, the default normalisation. */
extern const float vt_imagenet_mean[3];
extern const float vt_imagenet_std[3];

/* ======================================================================== index */
/* Similarity search over fixed-size float vectors: an exact scan (float32, float16 or int8
 * storage) or an HNSW graph, with filters, deletes and a checksummed on-disk format.
 * See docs/index.md. A built index may be searched from many threads at once; add, remove and
 * save must not run concurrently with anything else on the same index. */

/* A flat index is exact whatever its storage: f16 and i8 scan the compact codes for candidates,
 * then re-rank them with float32 copies of the vectors kept beside (vt_search_opts.rerank). An
 * HNSW index is approximate; with f16 or i8 storage it keeps no float32 copy. */
typedef enum { VT_INDEX_FLAT = 0, VT_INDEX_HNSW = 1 } vt_index_kind;
typedef enum { VT_STORE_F32 = 0, VT_STORE_F16 = 1, VT_STORE_I8 = 2 } vt_index_store;
/* cosine: vectors are normalised on add and on query, scores are cosine similarities;
 * dot: scores are inner products; l2: scores are squared Euclidean distances (lower is closer). */
typedef enum { VT_METRIC_COSINE = 0, VT_METRIC_DOT = 1, VT_METRIC_L2 = 2 } vt_metric;

typedef struct vt_index_opts {
    vt_index_kind kind;
    vt_index_store store;  /* how vectors are kept: f32, f16, or int8 with a per-vector scale */
    vt_metric metric;
    int dim;               /* 1..65536 */
    int M;                 /* HNSW: links per node on upper levels, 2*M on level 0 (default 16) */
    int ef_construction;   /* HNSW: candidate list size while building (default 200) */
    uint64_t seed;         /* HNSW: level draws; one thread + same seed = same graph (default 42) */
    int threads;           /* HNSW: threads used by vt_index_add (0: all CPUs; default 1) */
} vt_index_opts;

/* Fills the defaults: flat, f32, cosine, dim 0 (must be set), M 16, ef_construction 200. */
void vt_index_opts_init(vt_index_opts *o);

typedef struct vt_index vt_index;

/* A set of admitted labels for filtered search: bit `label` set = the item may be returned.
 * Labels outside [0, nbits) are never admitted. */
typedef struct vt_bitset vt_bitset;
int vt_bitset_create(size_t nbits, vt_bitset **out);
void vt_bitset_free(vt_bitset *b);
void vt_bitset_set(vt_bitset *b, size_t i);   /* i >= nbits: ignored */
void vt_bitset_clear(vt_bitset *b, size_t i); /* i >= nbits: ignored */
int vt_bitset_test(const vt_bitset *b, size_t i);
size_t vt_bitset_count(const vt_bitset *b);   /* number of set bits */

typedef struct vt_search_opts {
    int ef;                  /* HNSW breadth (0: default 64; always at least k) */
    const vt_bitset *filter; /* NULL: every live item */
    double exact_below;      /* filtered HNSW search scans the admitted items exactly when they are
                                fewer than this fraction of the live items (0: default 0.02;
                                negative: never) */
    int threads;             /* 0 or 1: the calling thread. vt_index_search_batch: threads running
                                queries side by side. vt_index_search: an exact scan of at least
                                4 MB of rows is split across this many threads (lower latency for
                                one query on an otherwise idle machine; above 1024, or when the
                                threads cannot be started, one thread); HNSW ignores it */
    int rerank;              /* flat f16 / i8 indexes, which keep float32 vectors beside the
                                quantised ones: 0 (default) re-ranks with them every candidate of
                                the quantised scan whose score lies within the quantisation error
                                of the k-th best (at most 8k + 64), so the answer is the
                                float32 scan's; N > 0 re-ranks the best max(N, k) candidates;
                                negative: no float32 re-rank (the quantised scan's answer,
                                approximate; for measurements). f32 and HNSW indexes ignore it */
} vt_search_opts;

int vt_index_create(const vt_index_opts *o, vt_index **out);
void vt_index_free(vt_index *idx);
/* Adds n vectors of dim floats. labels: n distinct labels not already live in the index, or
 * NULL for row numbers (the i-th vector ever added gets label i). All or nothing. */
int vt_index_add(vt_index *idx, const float *vecs, size_t n, const int64_t *labels);
/* Removes a live label (VT_ENOTFOUND if absent); it is never returned again. */
int vt_index_remove(vt_index *idx, int64_t label);
/* The k nearest live items to q (dim floats), best first. labels[k] and scores[k] (scores may
 * be NULL) are filled up to *found (<= k); the rest get label -1. so may be NULL. Thread-safe. */
int vt_index_search(const vt_index *idx, const float *q, int k, const vt_search_opts *so,
                    int64_t *labels, float *scores, int *found);
/* nq queries at once (q is nq*dim floats); labels and scores hold nq*k entries, -1 padded.
 * The exact scan scores several queries per pass over the data. */
int vt_index_search_batch(const vt_index *idx, const float *q, size_t nq, int k,
                          const vt_search_opts *so, int64_t *labels, float *scores);
/* Writes the index to path atomically (temporary file, fsync, rename). */
int vt_index_save(const vt_index *idx, const char *path);
/* Loads an index written by vt_index_save (mmap'd; copied on the first add or remove, or at
 * load for an HNSW index of 16 MB of rows or more, onto huge pages where the kernel has them).
 * Refuses truncated, corrupt or checksum-failing files with VT_ETRUNCATED / VT_ECORRUPT /
 * VT_ECHECKSUM / VT_EUNSUPPORTED. */
int vt_index_load(const char *path, vt_index **out);
/* The same from a memory buffer (copied). */
int vt_index_load_mem(const void *buf, size_t len, vt_index **out);
size_t vt_index_size(const vt_index *idx); /* live items */
void vt_index_get_opts(const vt_index *idx, vt_index_opts *o);
size_t vt_index_memory(const vt_index *idx); /* bytes held by the index (vectors, graph, maps) */
/* Forces the kernel set: "auto", "portable", "avx2" or "avx512" (VT_EUNSUPPORTED when the CPU
 * lacks it). Default: auto, or $VITRINE_ISA. Process-wide; not to be called during searches. */
int vt_index_force_isa(const char *name);
const char *vt_index_isa(void); /* name of the kernel set in use */

/* ======================================================================== store */
/* The item store: catalog items as documents, one embedding per model, behind an interface with
 * pluggable backends (SQLite today: "PATH" or "sqlite:PATH"; "mongodb://..." is reserved for a
 * MongoDB backend). See docs/store.md. A vt_store handle may be shared by threads (calls are
 * serialised by a lock), but a batch (vt_store_begin..commit) belongs to the handle: give each
 * writing thread its own handle. */

typedef struct vt_store vt_store;

/* Flags of vt_store_open. */
#define VT_STORE_READONLY 1u  /* open an existing store for reading only */
#define VT_STORE_SYNC_FULL 2u /* fsync every commit (survives power loss, not only a crash) */
#define VT_STORE_FAST_READS 4u /* reads reuse one snapshot for up to 50 ms: several times faster
                                  lookups (for servers); other handles' commits show up to 50 ms
                                  late, this handle's own writes at once */

/* Opens (creating when absent and not read-only) the store at `uri`, migrating an older schema
 * to the current one. A store written by a newer vitrine is refused (VT_EUNSUPPORTED). */
int vt_store_open(const char *uri, unsigned flags, vt_store **out);
void vt_store_close(vt_store *s);
/* The backend's name ("sqlite") and its schema version. */
const char *vt_store_backend(const vt_store *s);
int vt_store_schema_version(vt_store *s, int *version);

/* An item as written to or read from the store. On write, label is ignored (the store assigns
 * it); attrs is a JSON object text (NULL: "{}"); image, hash, image_size, image_mtime may be
 * NULL/0. On read, every string is owned by the item: release it with vt_item_clear(). */
typedef struct vt_item {
    int64_t label;        /* stable int64 key for the vector index; never reused after delete */
    char *id;             /* the catalog's id (unique, non-empty) */
    char *attrs;          /* JSON object of the catalog's attributes */
    char *image;          /* image file path */
    uint64_t hash;        /* vt_hash64 of the image file's bytes (0: unknown) */
    int64_t image_size;   /* image file size and mtime (seconds), for cheap change checks */
    int64_t image_mtime;
} vt_item;

void vt_item_clear(vt_item *it);

/* A list of items (vt_store_list); release with vt_item_list_free. */
typedef struct vt_item_list {
    vt_item *items;
    size_t n;
    int64_t total; /* number of items matching the filter, ignoring offset and limit */
} vt_item_list;

void vt_item_list_free(vt_item_list *l);

/* Field filters: conditions field=value. Conditions on the same field are OR'ed, different
 * fields AND'ed; comparison is exact but case-insensitive. The fields gender, masterCategory,
 * subCategory, articleType, baseColour (aliases: category, colour, color) are indexed columns;
 * any other attribute name (letters, digits, _ . -) is looked up inside the JSON attributes;
 * "id" matches the item's id. */
typedef struct vt_filter vt_filter;

int vt_filter_create(vt_filter **out);
void vt_filter_free(vt_filter *f);
int vt_filter_add(vt_filter *f, const char *field, const char *value);
/* Adds a "field=value" condition (as given to --where or in a query string). */
int vt_filter_parse(vt_filter *f, const char *cond);
size_t vt_filter_count(const vt_filter *f);

/* Transactional batches: every write between begin and commit is applied entirely or not at
 * all, even if the process is killed mid-batch. Writes outside a batch commit one by one. */
int vt_store_begin(vt_store *s);
int vt_store_commit(vt_store *s);
int vt_store_rollback(vt_store *s);

/* Inserts the item, or updates the item with the same id in place (keeping its label).
 * *label (may be NULL) receives the item's label. */
int vt_store_put(vt_store *s, const vt_item *it, int64_t *label);
/* Looks an item up by id or by label; VT_ENOTFOUND when absent. */
int vt_store_get(vt_store *s, const char *id, vt_item *out);
int vt_store_get_by_label(vt_store *s, int64_t label, vt_item *out);
/* Looks up n items by label in one read transaction (much cheaper than n vt_store_get_by_label
 * calls: e.g. the hits of a similarity search). out[i] is filled for every label found; for a
 * label that is absent out[i] is left empty (id NULL, label -1). *found (may be NULL) receives the
 * number found. Release each with vt_item_clear. */
int vt_store_get_many(vt_store *s, const int64_t *labels, size_t n, vt_item *out, size_t *found);
/* Deletes the item and its embeddings; VT_ENOTFOUND when absent. */
int vt_store_delete(vt_store *s, const char *id);
/* Number of items matching f (NULL: all). */
int vt_store_count(vt_store *s, const vt_filter *f, int64_t *n);
/* Items matching f (NULL: all) in label order, skipping `offset`, at most `limit` of them. */
int vt_store_list(vt_store *s, const vt_filter *f, int64_t offset, int64_t limit, vt_item_list *out);
/* Calls fn for every item matching f in label order, until fn returns nonzero (that value is
 * returned). The item is only valid during the call; fn must not call into the same store. */
typedef int (*vt_item_fn)(const vt_item *it, void *user);
int vt_store_foreach(vt_store *s, const vt_filter *f, vt_item_fn fn, void *user);

/* Stores the embedding of item `label` for `model` (replacing an earlier one), computed from
 * the image whose hash was `hash`. */
int vt_store_put_embedding(vt_store *s, int64_t label, const char *model, const float *vec, int dim,
                           uint64_t hash);
/* Reads it into vec (room for `cap` floats). *dim receives the dimension; VT_ETOOBIG when
 * cap < dim, VT_ENOTFOUND when the item has no embedding for that model. hash may be NULL. */
int vt_store_get_embedding(vt_store *s, int64_t label, const char *model, float *vec, int cap, int *dim,
                           uint64_t *hash);
/* The dimension and image hash of item `label`'s embedding for `model`, without the vector (to
 * decide whether an image changed since it was embedded); VT_ENOTFOUND when there is none.
 * dim or hash may be NULL. */
int vt_store_embedding_info(vt_store *s, int64_t label, const char *model, int *dim, uint64_t *hash);
/* Calls fn for every embedding of `model` in label order (e.g. to build the vector index),
 * until fn returns nonzero. vec is only valid during the call. */
typedef int (*vt_embedding_fn)(int64_t label, const float *vec, int dim, uint64_t hash, void *user);
int vt_store_foreach_embedding(vt_store *s, const char *model, vt_embedding_fn fn, void *user);
/* Number of embeddings stored for `model`. */
int vt_store_count_embeddings(vt_store *s, const char *model, int64_t *n);

/* A sorted set of labels, e.g. the items allowed by a filter, for a filtered vector search. */
typedef struct vt_labels {
    int64_t *v; /* ascending, no duplicates */
    size_t n;
} vt_labels;

/* The labels of the items matching f (NULL: all items). */
int vt_store_labels(vt_store *s, const vt_filter *f, vt_labels *out);
void vt_labels_free(vt_labels *l);
/* Nonzero when `label` is in the set (binary search). */
int vt_labels_contains(const vt_labels *l, int64_t label);
/* The set as a bitmap: bit i of words[i / 64] is set when label i is in the set; *nwords covers
 * the largest label. Free *words with vt_labels_bitmap_free. */
int vt_labels_bitmap(const vt_labels *l, uint64_t **words, size_t *nwords);
void vt_labels_bitmap_free(uint64_t *words);

/* Small string settings kept with the store (ingest progress, index state...). vt_store_meta_get
 * copies the value into buf (NUL-terminated; VT_ETOOBIG if it does not fit); VT_ENOTFOUND when
 * the key is absent. */
int vt_store_meta_set(vt_store *s, const char *key, const char *value);
int vt_store_meta_get(vt_store *s, const char *key, char *buf, size_t cap);

/* Checks the store's integrity (SQLite: PRAGMA integrity_check); VT_ECORRUPT with the reason. */
int vt_store_check(vt_store *s);

/* XXH64 of a buffer (the content hash the store keeps for images; seed 0 in the store). */
uint64_t vt_hash64(const void *buf, size_t len, uint64_t seed);
/* XXH64 (seed 0) of a file's bytes, read in a streaming way. */
int vt_hash_file(const char *path, uint64_t *out);

/* ======================================================================== catalog */
/* Catalog feeds: a CSV with a header (Kaggle styles.csv shape) or JSON Lines, read as a stream
 * of rows. Bad rows never stop the reading: they come back with an error code and a reason. */

typedef struct vt_feed vt_feed;

typedef enum { VT_FEED_AUTO = 0, VT_FEED_CSV = 1, VT_FEED_JSONL = 2 } vt_feed_format;

typedef struct vt_feed_opts {
    vt_feed_format format;  /* AUTO: by extension (.csv, .jsonl, .ndjson, .json), else by content */
    const char *images_dir; /* where DIR/<id>.jpg|.jpeg|.png|.webp live (NULL: no lookup, except
                               an explicit image column, resolved against the feed's folder) */
    size_t max_row_bytes;   /* longer rows are reported and skipped (0: 1 MiB) */
    const volatile sig_atomic_t *cancel; /* when non-NULL and set (e.g. by a signal handler),
                               vt_feed_next returns VT_ECANCELED */
} vt_feed_opts;

/* One row of a feed. Every pointer is valid until the next vt_feed_next or vt_feed_close. */
typedef struct vt_feed_row {
    const char *file;   /* the feed's name */
    long line;          /* 1-based line where the row starts */
    int error;          /* 0, or VT_ECORRUPT (malformed row), VT_EEXIST (duplicate id),
                           VT_EINVAL (missing or invalid id), VT_ETOOBIG (row too long) */
    const char *reason; /* when error: e.g. "11 fields but the header has 10 (unquoted comma?)" */
    const char *id;     /* NULL when missing */
    const char *attrs;  /* JSON object text of the other fields (empty fields left out) */
    const char *image;  /* the image file as an absolute path without symbolic links, inside the
                           images folder (NULL when there is none, or it was refused) */
    const char *image_error; /* why the row's photo was refused, e.g. an absolute path, a '..'
                           component, a link out of the images folder, not a regular file
                           (image is then NULL; the row itself is good) */
} vt_feed_row;

/* Opens a feed file; reads its header (CSV). Fails (VT_ECORRUPT) when the CSV has no id
 * column (id, item_id, product_id or sku), VT_ENOENT when the feed or images_dir does not exist,
 * VT_EINVAL when either is the wrong kind of file (a folder as the feed). An image column (image,
 * image_path, image_file, imagepath, path, filename, file; JSON Lines: image, image_path,
 * image_file, path) gives a row's image explicitly, relative to images_dir or else to the feed's
 * folder, and confined to it (see vt_catalog_image_path). CSV is parsed strictly (RFC 4180
 * quoting): a malformed or unclosed quoted field is a bad row whose reason names the lines it
 * covers. vt_feed_open_mem reads a buffer instead (not copied: keep it alive), named `name`. */
int vt_feed_open(const char *path, const vt_feed_opts *opts, vt_feed **out);
int vt_feed_open_mem(const void *buf, size_t len, const char *name, const vt_feed_opts *opts, vt_feed **out);
/* Reads the next row: returns 1 with *row filled (check row->error), 0 at the end, or a
 * negative code on a failure that ends the feed (read error). */
int vt_feed_next(vt_feed *f, vt_feed_row *row);
/* Rows read so far, and how many of them had an error. */
void vt_feed_counts(const vt_feed *f, long *rows, long *errors);
/* How many of the rows read so far could not be parsed (malformed or unclosed CSV quoting, a row
 * over the length limit, invalid JSON, a wrong field count that leaves the id unread): their ids
 * are unknown, so a caller must not conclude that an id missing from such a feed has left the
 * catalog. (A bad row whose id was read, e.g. Kaggle's unquoted commas, carries it in row.id.) */
long vt_feed_parse_errors(const vt_feed *f);
vt_feed_format vt_feed_get_format(const vt_feed *f);
void vt_feed_close(vt_feed *f);

/* A report of rejected inputs as JSON Lines (e.g. DB.errors.jsonl), one object per problem:
 * {"file": ..., "line": N, "id": ..., "reason": ...} (line and id left out when unknown).
 * vt_report_open truncates the file; vt_report_add is thread-safe; vt_report_close flushes,
 * fsyncs and returns the first write error (0 if none). */
typedef struct vt_report vt_report;
int vt_report_open(const char *path, vt_report **out);
int vt_report_add(vt_report *r, const char *file, long line, const char *id, const char *reason);
/* Adds a bad feed row (row->error != 0) with its file, line, id and reason. */
int vt_report_add_row(vt_report *r, const vt_feed_row *row);
long vt_report_count(const vt_report *r);
int vt_report_close(vt_report *r);

/* The image file of `id` in dir: dir/<id> + .jpg, .jpeg, .png, .webp (also upper case).
 * Copies the path (as vt_catalog_image_path gives it) into buf; VT_ENOTFOUND when none exists,
 * VT_EINVAL for an id that is not a safe file name (contains '/', starts with '.', control
 * characters) or for a file that vt_catalog_image_path refuses (the first one that exists). */
int vt_catalog_find_image(const char *dir, const char *id, char *buf, size_t cap);
/* Resolves `name`, a photo named relative to the folder dir, to the absolute path of a regular
 * file inside dir, without symbolic links (realpath), into buf. Refuses (VT_EINVAL, with the
 * reason in vt_errmsg()) an absolute name, a '..' component, a name that resolves (through a
 * symbolic link) outside dir, and anything but a regular file (a FIFO, a device, a folder);
 * VT_ENOTFOUND when no such file exists, VT_ENOENT when dir itself does not. */
int vt_catalog_image_path(const char *dir, const char *name, char *buf, size_t cap);
/* Nonzero when `id` is acceptable as a catalog id (non-empty, at most 255 bytes of valid UTF-8,
 * no '/', '\\', control characters, not starting with '.'). */
int vt_catalog_id_ok(const char *id);

/* A procedurally drawn sample catalog: `n` product photos (size x size JPEGs: tops, shirts,
 * trousers, shorts, dresses, skirts, shoes, handbags, backpacks, caps, in many colours and
 * patterns) in dir/images/<id>.jpg and dir/styles.csv with their attributes (Kaggle header).
 * The same seed gives the same files. */
typedef struct vt_sample_opts {
    int n;          /* number of items (default 500) */
    uint64_t seed;  /* default 1 */
    int size;       /* image side in pixels (default 224) */
    int threads;    /* 0: all CPUs */
    int quality;    /* JPEG quality (default 90) */
} vt_sample_opts;

int vt_sample_catalog(const char *dir, const vt_sample_opts *opts);

/* The colours and article types the sample catalog draws, for tests and tools. */
int vt_sample_colour_count(void);
const char *vt_sample_colour_name(int i);
void vt_sample_colour_rgb(int i, uint8_t rgb[3]);
int vt_sample_type_count(void);
const char *vt_sample_type_name(int i);

/* ======================================================================== nn: CNN inference */

/* A CNN loaded from an ONNX file, run with oneDNN. One vt_model may be used by one thread at a
 * time; load one per thread for concurrent inference (the weights are small next to activations).
 * See docs/nn.md for the supported operators. */
typedef struct vt_model vt_model;

typedef struct vt_model_opts {
    int threads; /* threads for one inference (0: one per online CPU) */
    int bf16;    /* nonzero: convolutions compute in bfloat16 (fast path on AVX512_BF16 CPUs;
                    relative error around 1e-2 against fp32); off by default */
} vt_model_opts;

/* Loads and validates an ONNX model: any operator or attribute value outside the supported set
 * is refused here with a message naming it; a malformed or truncated file gives VT_ECORRUPT. */
int vt_model_load(const char *path, const vt_model_opts *opts, vt_model **out);
int vt_model_load_mem(const void *buf, size_t len, const char *name, const vt_model_opts *opts, vt_model **out);
void vt_model_free(vt_model *m);
/* Threads for later runs (0: one per CPU). */
int vt_model_set_threads(vt_model *m, int threads);

/* Element types of vt_tensor (the ONNX codes). */
enum { VT_DT_FLOAT = 1, VT_DT_INT64 = 7 };

/* A dense row-major tensor. */
typedef struct vt_tensor {
    int dtype;        /* VT_DT_FLOAT or VT_DT_INT64 */
    int rank;
    int64_t shape[8];
    void *data;       /* owned by whoever filled it; vt_tensor_free releases it */
} vt_tensor;

void vt_tensor_free(vt_tensor *t);
/* Reads a serialized ONNX TensorProto (.pb, as in ONNX test cases); integer types become int64.
 * *name (may be NULL) receives a malloc'd copy of the tensor's name. */
int vt_tensor_load_pb(const char *path, char **name, vt_tensor *out);

/* A graph input or output as declared in the file; symbolic dimensions are -1. */
typedef struct vt_model_io {
    const char *name; /* valid while the model lives */
    int dtype;        /* ONNX element type code */
    int rank;         /* -1: unknown */
    int64_t shape[8];
} vt_model_io;

int vt_model_num_inputs(const vt_model *m);
int vt_model_num_outputs(const vt_model *m);
int vt_model_input(const vt_model *m, int i, vt_model_io *out);
int vt_model_output(const vt_model *m, int i, vt_model_io *out);
int vt_model_num_nodes(const vt_model *m);
const char *vt_model_node_op(const vt_model *m, int i); /* operator of node i, NULL out of range */
int64_t vt_model_param_count(const vt_model *m);      /* elements over all initializers */
int vt_model_opset(const vt_model *m);
const char *vt_model_producer(const vt_model *m);
/* A metadata_props value, or NULL. */
const char *vt_model_meta(const vt_model *m, const char *key);
/* The tensor embeddings are read from: metadata "vitrine.embedding" when present, else the input
 * of the final classifier (Gemm / MatMul, looking through Flatten, Reshape and Dropout back to a
 * pooled tensor), else the first output. Never NULL. */
const char *vt_model_embedding_tensor(const vt_model *m);

/* How images become the network's input. Read from the model's metadata_props
 * ("vitrine.input_size", "vitrine.mean" and "vitrine.std" as "r,g,b", "vitrine.color" rgb|bgr,
 * "vitrine.fit" letterbox|stretch) when present, otherwise from the input's static shape and
 * the ImageNet mean/std, RGB, letterbox. */
typedef struct vt_preproc {
    int size;          /* square input side */
    float mean[3], std[3]; /* in the network's channel order */
    int bgr;           /* nonzero: channels in B,G,R order */
    vt_fit_mode fit;
    int from_metadata; /* nonzero when any field came from the file's metadata */
} vt_preproc;

int vt_model_preproc(const vt_model *m, vt_preproc *out);

/* Runs the model on a float NCHW batch (the first graph input) and returns tensor `tensor`
 * (NULL: the first graph output) in a malloc'd row-major array *out with its shape. Execution
 * plans (oneDNN primitives, reordered weights, activation memory) are made on the first run for
 * a given shape and tensor and reused afterwards. */
int vt_model_run(vt_model *m, const float *in, int n, int c, int h, int w, const char *tensor, float **out,
                 int64_t out_shape[8], int *out_rank);
/* General form: inputs by name (in_names NULL: graph input order), outputs by name (out_names
 * NULL: the graph outputs in order). Fills out[0..nout-1]; free each with vt_tensor_free. */
int vt_model_run_tensors(vt_model *m, int nin, const char *const *in_names, const vt_tensor *in, int nout,
                         const char *const *out_names, vt_tensor *out);
/* Bytes of activation memory and of (reordered) weights held by the plan of the last run. */
int vt_model_plan_bytes(const vt_model *m, size_t *activations, size_t *weights);

/* ======================================================================== engine: similar items, photo search */
/* The catalog's embeddings for one model, indexed for search, with the model itself for new
 * photos. Built from a store by vt_engine_open; searches may run from many threads at once
 * (photo searches share the one model under a lock). */

typedef struct vt_engine vt_engine;

typedef struct vt_engine_opts {
    const char *model_path; /* ONNX model used to embed photos (NULL: no photo search) */
    const char *model_name; /* name the embeddings are stored under (NULL: the model file's name
                               without folder and extension) */
    int index_kind;         /* VT_INDEX_FLAT / VT_INDEX_HNSW, or -1: exact up to 20,000 items,
                               HNSW above */
    vt_index_store index_store; /* vector storage in the index (default f32) */
    int ef;                 /* HNSW search breadth for every query (0: the index default, 64) */
    int threads;            /* for the model and the index build (0: all CPUs) */
    const char *index_cache; /* path prefix (e.g. the store's file) under which the built index
                               is saved and reloaded while the store's embeddings for the model
                               are unchanged, judged by a hash of every label and vector read
                               (NULL: build every time). */
} vt_engine_opts;

void vt_engine_opts_init(vt_engine_opts *o);

/* A search result: the item's store label and its cosine similarity to the query. */
typedef struct vt_hit {
    int64_t label;
    float score;
} vt_hit;

/* Loads the model (if any) and indexes every embedding the store holds for it. The store must
 * outlive the engine. */
int vt_engine_open(vt_store *store, const vt_engine_opts *o, vt_engine **out);
void vt_engine_free(vt_engine *e);
const char *vt_engine_model_name(const vt_engine *e);
size_t vt_engine_size(const vt_engine *e); /* items in the index */
int vt_engine_dim(const vt_engine *e);     /* embedding dimension (0: no embeddings) */

/* The k items most similar to item `id` (never the item itself), best first, restricted to the
 * items matching f (NULL: all) inside the search. hits has room for k; *n receives the count.
 * VT_ENOTFOUND for an unknown id or an item without an embedding. */
int vt_engine_similar(vt_engine *e, const char *id, int k, const vt_filter *f, vt_hit *hits, int *n);
/* The same for the item with store label `label`. */
int vt_engine_similar_label(vt_engine *e, int64_t label, int k, const vt_filter *f, vt_hit *hits, int *n);
/* The same for a photo given as encoded bytes (JPEG, PNG or WebP); name is used in errors.
 * For all three, a failure to read the store (filters are resolved there) is VT_EIO, whatever
 * the store said (its message is kept): VT_ECORRUPT and the like describe the photo only. */
int vt_engine_search_image(vt_engine *e, const void *buf, size_t len, const char *name, int k,
                           const vt_filter *f, vt_hit *hits, int *n);
/* Embeds a decoded photo with the engine's model and preprocessing: writes the L2-normalised
 * vector into vec (room for cap floats) and returns its length (> 0) or a negative error. */
int vt_engine_embed_image(vt_engine *e, const vt_image *img, float *vec, int cap);

/* The fields a catalog can be filtered on: the indexed fields of vt_filter_add (and their aliases)
 * and every attribute name (letters, digits, _ . -) that some item has. A filter on any other name
 * can only match nothing, so the server and the CLI refuse it. Read once with one pass over the
 * items; read-only afterwards, so it may be shared by threads. */
typedef struct vt_fields vt_fields;

int vt_fields_load(vt_store *s, vt_fields **out);
void vt_fields_free(vt_fields *f);
/* 1 when `field` names an indexed field (any case) or an attribute of some item (exact case, as
 * filters look attributes up); 0 otherwise. */
int vt_fields_has(const vt_fields *f, const char *field);
/* The filterable fields, sorted and comma-separated ("articleType, baseColour, gender, ..."),
 * aliases left out; for messages. Owned by f. */
const char *vt_fields_list(const vt_fields *f);

/* ======================================================================== server: REST API and web page */
/* The HTTP server: the REST API of docs/API.md and the embedded web page, on a thread pool. */

typedef struct vt_server vt_server;

typedef struct vt_server_opts {
    const char *host;  /* IPv4 address to listen on (default 127.0.0.1; 0.0.0.0 for all) */
    int port;          /* default 8080; 0: any free port (see vt_server_port) */
    int threads;       /* worker threads (0: one per CPU) */
    size_t max_body;   /* request bodies above this get 413 (default 16 MiB) */
    /* What clients can cost (0 in any field: its default, as vt_server_opts_init sets it). */
    uint64_t max_upload_pixels; /* photo searches declaring more pixels get 413, checked from the
                                   header before decoding (default 25 megapixels) */
    int max_decodes;       /* photo searches decoded at once (default 2, or 1 with fewer than 4
                              threads: a search holds a worker thread while it decodes) */
    int decode_wait_ms;    /* how long a photo search waits for its turn before 503 with
                              Retry-After (default 250; < 0: no wait) */
    int max_conns;         /* connections at once (default 1024, lowered to fit ulimit -n) */
    int max_conns_per_ip;  /* connections at once from one address (default 32) */
    int request_timeout;   /* seconds a client has to send a whole request, headers and body,
                              from connecting or from its previous request's end; then the
                              connection is closed (default 10) */
    size_t max_upload_memory; /* request-body bytes buffered at once over all connections;
                                 bodies beyond get 503 with Retry-After (default 64 MiB) */
} vt_server_opts;

void vt_server_opts_init(vt_server_opts *o);
/* Starts serving `store` (and, when engine is not NULL, similar items and photo search) in
 * background threads. Both must outlive the server. */
int vt_server_start(vt_store *store, vt_engine *engine, const vt_server_opts *o, vt_server **out);
int vt_server_port(const vt_server *s);
/* Stops accepting, finishes the requests in flight and frees the server. */
void vt_server_stop(vt_server *s);

/* ======================================================================== nn: training */
/* Trains a compact residual CNN on a catalog (photos + metadata) with oneDNN forward and
 * backward primitives and exports it as ONNX (output "embedding", L2-normalised, plus one logits
 * output per label column, with the preprocessing and label vocabularies in metadata_props).
 * See docs/train.md. */

#define VT_TRAIN_MAX_HEADS 8

/* What is known at the end of an epoch (passed to vt_train_opts.on_epoch). */
typedef struct vt_train_epoch {
    int epoch, epochs;          /* 1-based epoch just finished, of `epochs` */
    int nheads;
    const char *const *heads;   /* label column names */
    double train_loss;          /* mean training loss over the epoch (sum over heads) */
    const double *train_acc;    /* per head, on the augmented training batches */
    const double *val_acc;      /* per head on the validation items (-1: none) */
    double val_p10;             /* retrieval precision@10 among validation items: same first label */
    double val_p10_pair;        /* same articleType and baseColour when both are heads, else -1 */
    double images_per_s;        /* training images per second in this epoch */
    double seconds;             /* wall time of the epoch (training + validation) */
} vt_train_epoch;

typedef void (*vt_train_epoch_fn)(const vt_train_epoch *e, void *user);

typedef struct vt_train_opts {
    const char *images_dir;  /* DIR/<id>.jpg ... */
    const char *meta;        /* catalog feed (CSV with header or JSON Lines) */
    const char *out;         /* ONNX file to write (may be NULL: train only) */
    const char *labels;      /* comma-separated label columns (default "articleType,baseColour,gender") */
    int size;                /* network input side (default 64) */
    int epochs;              /* default 10 */
    int batch;               /* default 64 */
    double val;              /* fraction of items held out for validation, by item (default 0.1) */
    uint64_t seed;           /* default 1: same seed + same threads = bit-identical weights */
    int threads;             /* oneDNN threads (0: all CPUs) */
    const char *checkpoint;  /* checkpoint written after every epoch (NULL: OUT.ckpt, or none) */
    const char *resume;      /* checkpoint to continue from (NULL: start fresh) */
    int stop_after;          /* stop after this epoch as if interrupted (0: run every epoch) */
    int width, depth;        /* residual net: base channels (default 32), blocks per stage (default 1) */
    int embed_dim;           /* embedding size (default 128) */
    int optimizer;           /* 0: SGD with momentum, 1: AdamW (default) */
    double lr, wd, momentum; /* defaults: AdamW 2e-3, 0.05 (decoupled); SGD 0.1, 5e-4, 0.9 */
    double warmup_epochs;    /* linear warm-up (default 1) */
    int schedule;            /* 0: cosine (default), 1: one-cycle */
    double label_smoothing;  /* default 0.1 */
    double dropout;          /* before the heads (default 0.1) */
    int min_count;           /* label values with fewer items fold into "other" (default 10) */
    vt_fit_mode fit;         /* how photos become squares, in training and (metadata) inference */
    int augment;             /* nonzero (default): random resized crop, rotation, flip, colour jitter */
    int limit;               /* use only the first N items of the feed (0: all) */
    int eval_train;          /* nonzero: at the end, measure accuracy on the training items (no augmentation) */
    int progress;            /* nonzero (default): progress bars on stderr */
    const char *split_out;   /* write the split as "id<TAB>train|val" lines (NULL: do not) */
    double src_aspect;       /* > 0: first resize each photo to this width/height ratio (e.g. 0.75 to
                                undo photos squashed from 3:4 portraits to squares); 0: keep */
    int raw_embedding;       /* nonzero: export "embedding" without the final LpNormalization node
                                (for engines that lack it; normalise after reading) */
    const char *embed_mix;   /* how the exported "embedding" is formed (NULL or "": the learned
                                embedding alone). "embedding:W,HEAD:W,...": the L2-normalised
                                concatenation of W x the normalised learned embedding and W x the
                                softmax of each named head; validation P@10 uses the same vectors.
                                Not part of the checkpoint's options: a finished checkpoint can be
                                re-exported with another mix (--resume). */
    vt_train_epoch_fn on_epoch;
    void *user;
} vt_train_opts;

void vt_train_opts_init(vt_train_opts *o);

typedef struct vt_train_result {
    int nheads;
    int classes[VT_TRAIN_MAX_HEADS];      /* classes per head (incl. "other") */
    int items, train_items, val_items;
    int epochs_done;                      /* last epoch finished (counting resumed ones) */
    double train_acc[VT_TRAIN_MAX_HEADS]; /* with eval_train: on training items; else last epoch's */
    double val_acc[VT_TRAIN_MAX_HEADS];   /* -1 when there are no validation items */
    double val_p10, val_p10_pair;         /* validation items querying each other */
    double heldout_p10, heldout_p10_pair; /* validation items querying all items (train + val), as a
                                             shop's catalog holds both; -1 without validation items */
    double images_per_s;                  /* mean over the epochs run */
    double seconds;                       /* whole run, incl. decoding */
    int64_t params;                       /* trainable values */
    uint64_t weights_hash;                /* XXH64 of every weight and running statistic */
} vt_train_result;

/* Trains as configured. Returns 0, or a negative code (VT_EINVAL for bad options or a checkpoint
 * that does not match them, VT_EEMPTY when the catalog has no usable items, I/O and decode
 * errors). res may be NULL. */
int vt_train(const vt_train_opts *o, vt_train_result *res);

#ifdef __cplusplus
}
#endif
#endif /* VITRINE_H */
