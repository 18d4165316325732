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
    int threads;             /* vt_index_search_batch only (0 or 1: the calling thread) */
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
/* Loads an index written by vt_index_save (mmap'd; copied on the first add or remove).
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

#ifdef __cplusplus
}
#endif
#endif /* VITRINE_H */
