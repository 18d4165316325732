/* store_internal.h: the store's backend interface (vtable) and the filter's layout (not installed). */
#ifndef VT_STORE_INTERNAL_H
#define VT_STORE_INTERNAL_H

#include "core/internal.h"
#include <pthread.h>

/* One field=value condition. `column` is the indexed column for a well-known field, or NULL
 * when the field is looked up inside the JSON attributes under `path` ("$.field"). */
typedef struct vt__cond {
    const char *column; /* static string or NULL */
    char *field;        /* as given */
    char *path;         /* "$.field" (JSON path) */
    char *value;
} vt__cond;

struct vt_filter {
    vt__cond *c;
    size_t n, cap;
};

/* The backend interface. Every function gets the backend's state `b`; the front end (store.c)
 * checks arguments and holds the store's lock around each call. The contracts are those of the
 * matching vt_store_* functions in vitrine.h. */
/* Filter field names (store.c): the indexed column a field names, its aliases included, any case
 * (NULL: a field of the item's attributes); and whether a name may be used at all. */
const char *vt__filter_column(const char *field);
int vt__filter_name_ok(const char *field);

typedef struct vt__store_ops {
    const char *name;
    void (*close)(void *b);
    int (*schema_version)(void *b, int *version);
    int (*begin)(void *b);
    int (*commit)(void *b);
    int (*rollback)(void *b);
    int (*put)(void *b, const vt_item *it, int64_t *label);
    int (*get)(void *b, const char *id, int64_t label, vt_item *out); /* by id, or by label if id NULL */
    int (*get_many)(void *b, const int64_t *labels, size_t n, vt_item *out, size_t *found);
    int (*del)(void *b, const char *id);
    int (*count)(void *b, const vt_filter *f, int64_t *n);
    int (*foreach)(void *b, const vt_filter *f, int64_t offset, int64_t limit, vt_item_fn fn, void *user);
    int (*put_embedding)(void *b, int64_t label, const char *model, const float *vec, int dim, uint64_t hash);
    int (*get_embedding)(void *b, int64_t label, const char *model, float *vec, int cap, int *dim, uint64_t *hash);
    int (*foreach_embedding)(void *b, const char *model, vt_embedding_fn fn, void *user);
    int (*count_embeddings)(void *b, const char *model, int64_t *n);
    int (*labels)(void *b, const vt_filter *f, vt_labels *out);
    int (*meta_set)(void *b, const char *key, const char *value);
    int (*meta_get)(void *b, const char *key, char *buf, size_t cap);
    int (*check)(void *b);
} vt__store_ops;

struct vt_store {
    const vt__store_ops *ops;
    void *b;
    pthread_mutex_t mu;
};

/* The SQLite backend: opens `path` with VT_STORE_* flags. */
extern const vt__store_ops vt__sqlite_ops;
int vt__sqlite_open(const char *path, unsigned flags, void **out);
/* For tests of migrations: creates or migrates the store at `path` to exactly `version`. */
int vt__sqlite_create_at_version(const char *path, int version);

/* The current schema version of the SQLite backend. */
#define VT_SQLITE_SCHEMA_VERSION 2

#endif
