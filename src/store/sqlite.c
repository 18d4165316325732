/* sqlite.c: the SQLite backend of the item store (WAL, prepared statements, schema migrations). */
#include "store/store_internal.h"
#include <limits.h>
#include <sqlite3.h>
#include <string.h>

#define VT_APP_ID 0x56545231 /* "VTR1" in PRAGMA application_id */

/* The schema, one migration per version: migrations[v-1] takes a store from version v-1 to v.
 * Only static SQL text: every value in the store goes through bound parameters. */
static const char *const migrations[VT_SQLITE_SCHEMA_VERSION] = {
    /* 1: items as documents, embeddings per model */
    "CREATE TABLE items("
    " label INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE,"
    " attrs TEXT NOT NULL DEFAULT '{}' CHECK(json_valid(attrs) AND json_type(attrs) = 'object'),"
    " image TEXT,"
    " hash INTEGER NOT NULL DEFAULT 0,"
    " image_size INTEGER NOT NULL DEFAULT 0,"
    " image_mtime INTEGER NOT NULL DEFAULT 0,"
    " updated INTEGER NOT NULL DEFAULT 0,"
    " gender TEXT COLLATE NOCASE GENERATED ALWAYS AS (json_extract(attrs, '$.gender')) STORED,"
    " master_category TEXT COLLATE NOCASE GENERATED ALWAYS AS (json_extract(attrs, '$.masterCategory')) STORED,"
    " sub_category TEXT COLLATE NOCASE GENERATED ALWAYS AS (json_extract(attrs, '$.subCategory')) STORED,"
    " article_type TEXT COLLATE NOCASE GENERATED ALWAYS AS (json_extract(attrs, '$.articleType')) STORED,"
    " colour TEXT COLLATE NOCASE GENERATED ALWAYS AS (json_extract(attrs, '$.baseColour')) STORED);"
    "CREATE INDEX items_gender ON items(gender);"
    "CREATE INDEX items_master_category ON items(master_category);"
    "CREATE INDEX items_sub_category ON items(sub_category);"
    "CREATE INDEX items_article_type ON items(article_type);"
    "CREATE INDEX items_colour ON items(colour);"
    "CREATE TABLE embeddings("
    " rowid INTEGER PRIMARY KEY,"
    " model TEXT NOT NULL,"
    " label INTEGER NOT NULL REFERENCES items(label) ON DELETE CASCADE,"
    " dim INTEGER NOT NULL CHECK(dim > 0),"
    " hash INTEGER NOT NULL DEFAULT 0,"
    " vec BLOB NOT NULL CHECK(length(vec) = 4 * dim));"
    "CREATE UNIQUE INDEX embeddings_model_label ON embeddings(model, label);"
    "CREATE INDEX embeddings_label ON embeddings(label);",
    /* 2: small settings (ingest progress, index state) */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
};

enum {
    ST_BEGIN_READ, ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_PUT, ST_GET_ID, ST_GET_LABEL, ST_DEL_EMB, ST_DEL, ST_PUT_EMB,
    ST_GET_EMB, ST_EACH_EMB, ST_COUNT_EMB, ST_META_SET, ST_META_GET, ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN_READ] = "BEGIN",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_PUT] = "INSERT INTO items(id, attrs, image, hash, image_size, image_mtime, updated)"
               " VALUES(?1, json(?2), ?3, ?4, ?5, ?6, CAST(strftime('%s', 'now') AS INTEGER))"
               " ON CONFLICT(id) DO UPDATE SET attrs = excluded.attrs, image = excluded.image,"
               " hash = excluded.hash, image_size = excluded.image_size, image_mtime = excluded.image_mtime,"
               " updated = excluded.updated RETURNING label",
    [ST_GET_ID] = "SELECT label, id, attrs, image, hash, image_size, image_mtime FROM items WHERE id = ?1",
    [ST_GET_LABEL] = "SELECT label, id, attrs, image, hash, image_size, image_mtime FROM items WHERE label = ?1",
    [ST_DEL_EMB] = "DELETE FROM embeddings WHERE label = (SELECT label FROM items WHERE id = ?1)",
    [ST_DEL] = "DELETE FROM items WHERE id = ?1",
    [ST_PUT_EMB] = "INSERT OR REPLACE INTO embeddings(model, label, dim, hash, vec) VALUES(?1, ?2, ?3, ?4, ?5)",
    [ST_GET_EMB] = "SELECT dim, hash, vec FROM embeddings WHERE model = ?1 AND label = ?2",
    [ST_EACH_EMB] = "SELECT label, dim, hash, vec FROM embeddings WHERE model = ?1 ORDER BY label",
    [ST_COUNT_EMB] = "SELECT count(*) FROM embeddings WHERE model = ?1",
    [ST_META_SET] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
};

typedef struct {
    sqlite3 *db;
    char *path;
    unsigned flags;
    int in_batch;
    int read_open;  /* VT_STORE_FAST_READS: a read transaction is being reused */
    double read_t0; /* when it began */
    sqlite3_stmt *st[ST_COUNT];
} sq;

/* Maps an SQLite result code to a VT_E* code and records the message. */
static int sq_err(sq *b, int rc, const char *what) {
    int code;
    switch (rc & 0xff) {
    case SQLITE_NOMEM: code = VT_ENOMEM; break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: code = VT_ECORRUPT; break;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE: code = VT_EINVAL; break;
    case SQLITE_READONLY:
    case SQLITE_BUSY:
    case SQLITE_LOCKED: code = VT_ESTATE; break;
    case SQLITE_CANTOPEN: code = VT_ENOENT; break;
    case SQLITE_FULL:
    case SQLITE_IOERR: code = VT_EIO; break;
    case SQLITE_ERROR: code = VT_EINVAL; break;
    default: code = VT_EINTERNAL; break;
    }
    const char *msg = b && b->db ? sqlite3_errmsg(b->db) : sqlite3_errstr(rc);
    return vt__err(code, "%s: %s: %s", b ? b->path : "store", what, msg);
}

/* Returns the cached statement `k`, reset and with its bindings cleared. */
static sqlite3_stmt *stmt(sq *b, int k) {
    sqlite3_stmt *s = b->st[k];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static int exec(sq *b, const char *sql, const char *what) {
    char *msg = NULL;
    int rc = sqlite3_exec(b->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        int code = sq_err(b, rc, what);
        if (msg) vt__err(code, "%s: %s: %s", b->path, what, msg);
        sqlite3_free(msg);
        return code;
    }
    return VT_OK;
}

/* Reads one integer from a static query (PRAGMAs, counts). */
static int query_int(sq *b, const char *sql, int64_t *out) {
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(b->db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK) return sq_err(b, rc, "prepare");
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(s, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *out = 0;
        rc = SQLITE_OK;
    }
    int code = rc == SQLITE_OK ? VT_OK : sq_err(b, rc, sql);
    sqlite3_finalize(s);
    return code;
}

/* Brings the schema from its current version to `target`, one transaction per version, so a
 * crash mid-migration leaves the store at a whole version. */
static int migrate(sq *b, int target) {
    int64_t v = 0, app = 0, nobj = 0;
    /* one statement, so the three values come from one snapshot (another process may be
     * committing a migration meanwhile) */
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(b->db,
                                "SELECT (SELECT user_version FROM pragma_user_version),"
                                " (SELECT application_id FROM pragma_application_id),"
                                " (SELECT count(*) FROM sqlite_schema)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            v = sqlite3_column_int64(st, 0);
            app = sqlite3_column_int64(st, 1);
            nobj = sqlite3_column_int64(st, 2);
            rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_OK) return vt__err_prefix(sq_err(b, rc, "schema"), "%s: not a vitrine store", b->path);
    if (v == 0 && nobj > 0) return vt__err(VT_ECORRUPT, "%s: an SQLite database, but not a vitrine store", b->path);
    if (v > 0 && app != VT_APP_ID) return vt__err(VT_ECORRUPT, "%s: an SQLite database of another application", b->path);
    if (v > VT_SQLITE_SCHEMA_VERSION)
        return vt__err(VT_EUNSUPPORTED, "%s: schema version %lld was written by a newer vitrine (this one knows %d)",
                       b->path, (long long)v, VT_SQLITE_SCHEMA_VERSION);
    if (v >= target) return VT_OK;
    if (b->flags & VT_STORE_READONLY)
        return vt__err(VT_ESTATE, "%s: schema version %lld is older than %d; open it once read-write to migrate",
                       b->path, (long long)v, target);
    for (int64_t to = v + 1; to <= target; to++) {
        rc = exec(b, "BEGIN IMMEDIATE", "begin migration");
        if (rc) return rc;
        /* another process may have migrated while this one waited for the write lock */
        int64_t now;
        rc = query_int(b, "PRAGMA user_version", &now);
        if (rc || now >= to) {
            sqlite3_exec(b->db, rc ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
            if (rc) return rc;
            continue;
        }
        char pragma[96];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %lld; PRAGMA application_id = %d", (long long)to,
                 VT_APP_ID);
        rc = exec(b, migrations[to - 1], "migration");
        if (!rc) rc = exec(b, pragma, "migration");
        if (rc) {
            sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
            return vt__err_prefix(rc, "migrating to schema version %lld", (long long)to);
        }
        rc = exec(b, "COMMIT", "commit migration");
        if (rc) return rc;
        if (to > 1) VT_LOGI("%s: migrated the store to schema version %lld", b->path, (long long)to);
    }
    return VT_OK;
}

/* Switches the file to WAL. Changing the journal mode needs a moment when no other connection
 * is using the file, and SQLite does not wait for it: while several processes open a new store
 * at once this is retried for up to 10 s. */
static int set_wal(sq *b) {
    for (int tries = 0;; tries++) {
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(b->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (rc != SQLITE_OK) return sq_err(b, rc, "journal mode");
        rc = sqlite3_step(st);
        const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        int wal = mode && (!strcmp(mode, "wal") || !strcmp(mode, "memory")); /* ":memory:" has no WAL */
        sqlite3_finalize(st);
        if (wal) return VT_OK;
        /* busy, or a transient I/O error while another connection is closing the file and
         * removing its -wal / -shm: wait and try again */
        if (rc != SQLITE_ROW && (rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED && (rc & 0xff) != SQLITE_IOERR)
            return sq_err(b, rc, "journal mode");
        if (rc != SQLITE_ROW && tries >= 1000) return sq_err(b, rc, "journal mode");
        if (tries >= 1000) return vt__err(VT_ESTATE, "%s: could not switch to WAL mode (the file stays busy)", b->path);
        sqlite3_sleep(10);
    }
}

static void sq_close(void *p) {
    sq *b = p;
    if (!b) return;
    if ((b->in_batch || b->read_open) && b->db) sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(b->st[i]);
    if (b->db) sqlite3_close_v2(b->db);
    free(b->path);
    free(b);
}

/* Opens the database up to schema version `target` (the current one for normal opens). */
static int sq_open_at(const char *path, unsigned flags, int target, void **out) {
    *out = NULL;
    sq *b = calloc(1, sizeof *b);
    if (!b || !(b->path = strdup(path))) {
        free(b);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    b->flags = flags;
    int oflags = (flags & VT_STORE_READONLY) ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path, &b->db, oflags | SQLITE_OPEN_NOMUTEX, NULL);
    int code = VT_OK;
    if (rc != SQLITE_OK) {
        code = sq_err(b, rc, "cannot open");
        goto fail;
    }
    sqlite3_extended_result_codes(b->db, 1);
    sqlite3_busy_timeout(b->db, 10000);
    if (!(flags & VT_STORE_READONLY)) {
        code = set_wal(b);
        if (code) goto fail;
    }
    code = exec(b, (flags & VT_STORE_SYNC_FULL) ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                "synchronous");
    if (!code) code = exec(b, "PRAGMA foreign_keys = ON", "foreign keys");
    /* a 64 MiB page cache and memory-mapped reads: filters touch item rows spread over the file */
    if (!code) code = exec(b, "PRAGMA cache_size = -65536; PRAGMA mmap_size = 1073741824", "cache");
    if (!code) code = migrate(b, target);
    if (code) goto fail;
    if (target == VT_SQLITE_SCHEMA_VERSION) {
        for (int i = 0; i < ST_COUNT; i++) {
            rc = sqlite3_prepare_v3(b->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &b->st[i], NULL);
            if (rc != SQLITE_OK) {
                code = sq_err(b, rc, "prepare");
                goto fail;
            }
        }
    }
    *out = b;
    return VT_OK;
fail:
    sq_close(b);
    return code;
}

int vt__sqlite_open(const char *path, unsigned flags, void **out) {
    return sq_open_at(path, flags, VT_SQLITE_SCHEMA_VERSION, out);
}

/* For tests: creates (or migrates) the store at `path` to exactly `version` and closes it. */
int vt__sqlite_create_at_version(const char *path, int version) {
    if (version < 1 || version > VT_SQLITE_SCHEMA_VERSION) return vt__err(VT_EINVAL, "bad schema version %d", version);
    void *b;
    int rc = sq_open_at(path, 0, version, &b);
    if (!rc) sq_close(b);
    return rc;
}

static int rd_enter(sq *b);

static int sq_schema_version(void *p, int *version) {
    int64_t v;
    int rc = rd_enter(p);
    if (!rc) rc = query_int(p, "PRAGMA user_version", &v);
    if (!rc) *version = (int)v;
    return rc;
}

/* Runs a statement that returns no rows. */
static int step_done(sq *b, sqlite3_stmt *s, const char *what) {
    int rc = sqlite3_step(s);
    int code = rc == SQLITE_DONE ? VT_OK : sq_err(b, rc, what);
    sqlite3_reset(s);
    return code;
}

/* VT_STORE_FAST_READS: reads reuse one read transaction for up to FAST_READ_SECONDS, so SQLite
 * takes its WAL read lock (a few system calls) once per interval instead of once per call. The
 * handle then sees other handles' commits up to that much later; its own writes end the read
 * transaction first, so it always sees them. */
#define FAST_READ_SECONDS 0.05

static int rd_enter(sq *b) {
    if (!(b->flags & VT_STORE_FAST_READS) || b->in_batch) return VT_OK;
    double now = vt_now();
    if (b->read_open) {
        if (now - b->read_t0 < FAST_READ_SECONDS) return VT_OK;
        b->read_open = 0;
        int rc = step_done(b, stmt(b, ST_COMMIT), "end read");
        if (rc) return rc;
    }
    int rc = step_done(b, stmt(b, ST_BEGIN_READ), "begin read");
    if (rc) return rc;
    b->read_open = 1;
    b->read_t0 = now;
    return VT_OK;
}

/* Ends a reused read transaction before a write. */
static int wr_enter(sq *b) {
    if (!b->read_open) return VT_OK;
    b->read_open = 0;
    return step_done(b, stmt(b, ST_COMMIT), "end read");
}

static int sq_begin(void *p) {
    sq *b = p;
    if (b->in_batch) return vt__err(VT_ESTATE, "%s: a batch is already open", b->path);
    int wrc = wr_enter(b);
    if (wrc) return wrc;
    int rc = step_done(b, stmt(b, ST_BEGIN), "begin");
    if (!rc) b->in_batch = 1;
    return rc;
}

static int sq_commit(void *p) {
    sq *b = p;
    if (!b->in_batch) return vt__err(VT_ESTATE, "%s: commit without a batch", b->path);
    int rc = step_done(b, stmt(b, ST_COMMIT), "commit");
    if (!rc || sqlite3_get_autocommit(b->db)) b->in_batch = 0;
    return rc;
}

static int sq_rollback(void *p) {
    sq *b = p;
    if (!b->in_batch) return vt__err(VT_ESTATE, "%s: rollback without a batch", b->path);
    int rc = step_done(b, stmt(b, ST_ROLLBACK), "rollback");
    b->in_batch = 0;
    return rc;
}

/* The backend functions below keep the contracts of the vt_store_* calls (store_internal.h);
 * each runs under the handle's lock taken by store.c. */

/* Upsert by id (ON CONFLICT DO UPDATE keeps the label), returning the label. */
static int sq_put(void *p, const vt_item *it, int64_t *label) {
    sq *b = p;
    int wrc = wr_enter(b);
    if (wrc) return wrc;
    sqlite3_stmt *s = stmt(b, ST_PUT);
    sqlite3_bind_text(s, 1, it->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, it->attrs ? it->attrs : "{}", -1, SQLITE_STATIC);
    if (it->image) sqlite3_bind_text(s, 3, it->image, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (int64_t)it->hash);
    sqlite3_bind_int64(s, 5, it->image_size);
    sqlite3_bind_int64(s, 6, it->image_mtime);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        int code = sq_err(b, rc, it->id);
        sqlite3_reset(s);
        return code;
    }
    int64_t l = sqlite3_column_int64(s, 0);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return sq_err(b, rc, it->id);
    if (label) *label = l;
    return VT_OK;
}

static char *col_dup(sqlite3_stmt *s, int i) {
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? strdup((const char *)t) : NULL;
}

/* Points `it` at the current row's columns (valid until the next step). */
static void row_view(sqlite3_stmt *s, vt_item *it) {
    it->label = sqlite3_column_int64(s, 0);
    it->id = (char *)sqlite3_column_text(s, 1);
    it->attrs = (char *)sqlite3_column_text(s, 2);
    it->image = (char *)sqlite3_column_text(s, 3);
    it->hash = (uint64_t)sqlite3_column_int64(s, 4);
    it->image_size = sqlite3_column_int64(s, 5);
    it->image_mtime = sqlite3_column_int64(s, 6);
}

/* Copies one item (by id, or by label when id is NULL) into out. */
static int sq_get(void *p, const char *id, int64_t label, vt_item *out) {
    sq *b = p;
    int rrc = rd_enter(b);
    if (rrc) return rrc;
    sqlite3_stmt *s;
    if (id) {
        s = stmt(b, ST_GET_ID);
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    } else {
        s = stmt(b, ST_GET_LABEL);
        sqlite3_bind_int64(s, 1, label);
    }
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s);
        if (id) return vt__err(VT_ENOTFOUND, "no item with id '%.200s'", id);
        return vt__err(VT_ENOTFOUND, "no item with label %lld", (long long)label);
    }
    if (rc != SQLITE_ROW) {
        int code = sq_err(b, rc, "get");
        sqlite3_reset(s);
        return code;
    }
    out->label = sqlite3_column_int64(s, 0);
    out->id = col_dup(s, 1);
    out->attrs = col_dup(s, 2);
    out->image = col_dup(s, 3);
    out->hash = (uint64_t)sqlite3_column_int64(s, 4);
    out->image_size = sqlite3_column_int64(s, 5);
    out->image_mtime = sqlite3_column_int64(s, 6);
    sqlite3_reset(s);
    if (!out->id || !out->attrs || (sqlite3_column_type(s, 3) != SQLITE_NULL && !out->image)) {
        vt_item_clear(out);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    return VT_OK;
}

/* All lookups in one read transaction (unless a batch is open), so SQLite takes its WAL read
 * lock once instead of once per item. */
static int sq_get_many(void *p, const int64_t *labels, size_t n, vt_item *out, size_t *found) {
    sq *b = p;
    int rc = rd_enter(b);
    if (rc) return rc;
    int own = !b->in_batch && !b->read_open;
    if (own && (rc = step_done(b, stmt(b, ST_BEGIN_READ), "begin read"))) return rc;
    size_t k = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = sq_get(b, NULL, labels[i], &out[i]);
        if (rc == VT_ENOTFOUND) {
            out[i].label = -1;
            rc = VT_OK;
        } else if (!rc) {
            k++;
        }
    }
    if (own) {
        int rc2 = step_done(b, stmt(b, ST_COMMIT), "end read");
        if (!rc) rc = rc2;
    }
    *found = k;
    return rc;
}

/* Deletes the item's embeddings, then the item. */
static int sq_del(void *p, const char *id) {
    sq *b = p;
    int wrc = wr_enter(b);
    if (wrc) return wrc;
    sqlite3_stmt *s = stmt(b, ST_DEL_EMB);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    int rc = step_done(b, s, "delete embeddings");
    if (rc) return rc;
    s = stmt(b, ST_DEL);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    rc = step_done(b, s, "delete");
    if (rc) return rc;
    if (sqlite3_changes(b->db) == 0) return vt__err(VT_ENOTFOUND, "no item with id '%.200s'", id);
    return VT_OK;
}

/* ---- filtered queries: SQL assembled from fixed fragments; every value is a bound parameter */

/* Two conditions constrain the same field (and so are OR'ed). */
static int same_field(const vt__cond *a, const vt__cond *b) {
    if (a->column || b->column) return a->column == b->column;
    return strcmp(a->field, b->field) == 0;
}

/* Appends " WHERE ..." for f (nothing when f is empty). Conditions are grouped by field. */
static void where_sql(vt__buf *sb, const vt_filter *f) {
    if (!f || !f->n) return;
    int first_group = 1;
    for (size_t i = 0; i < f->n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            if (same_field(&f->c[i], &f->c[j])) seen = 1;
        if (seen) continue;
        vt__buf_str(sb, first_group ? " WHERE (" : " AND (");
        first_group = 0;
        int first = 1;
        for (size_t j = i; j < f->n; j++) {
            if (!same_field(&f->c[i], &f->c[j])) continue;
            if (!first) vt__buf_str(sb, " OR ");
            first = 0;
            const vt__cond *c = &f->c[j];
            if (c->column && !strcmp(c->column, "id")) vt__buf_str(sb, "id = ?");
            else if (c->column) {
                vt__buf_str(sb, c->column);
                vt__buf_str(sb, " = ?");
            } else vt__buf_str(sb, "CAST(json_extract(attrs, ?) AS TEXT) = ? COLLATE NOCASE");
        }
        vt__buf_str(sb, ")");
    }
}

/* Binds f's values in the order where_sql emitted them; returns the next parameter index. */
static int bind_where(sqlite3_stmt *s, const vt_filter *f) {
    int k = 1;
    if (!f) return k;
    for (size_t i = 0; i < f->n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            if (same_field(&f->c[i], &f->c[j])) seen = 1;
        if (seen) continue;
        for (size_t j = i; j < f->n; j++) {
            if (!same_field(&f->c[i], &f->c[j])) continue;
            const vt__cond *c = &f->c[j];
            if (!c->column) sqlite3_bind_text(s, k++, c->path, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, k++, c->value, -1, SQLITE_STATIC);
        }
    }
    return k;
}

/* Prepares `head` + WHERE(f) + `tail` and binds the filter's values. */
static int prepare_filtered(sq *b, const char *head, const vt_filter *f, const char *tail, sqlite3_stmt **out,
                            int *next_param) {
    int rrc = rd_enter(b);
    if (rrc) return rrc;
    vt__buf sb = {0};
    vt__buf_str(&sb, head);
    where_sql(&sb, f);
    vt__buf_str(&sb, tail);
    if (sb.oom) {
        vt__buf_free(&sb);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    int rc = sqlite3_prepare_v2(b->db, sb.p, -1, out, NULL);
    vt__buf_free(&sb);
    if (rc != SQLITE_OK) return sq_err(b, rc, "prepare query");
    *next_param = bind_where(*out, f);
    return VT_OK;
}

static int sq_count(void *p, const vt_filter *f, int64_t *n) {
    sq *b = p;
    sqlite3_stmt *s;
    int k;
    int rc = prepare_filtered(b, "SELECT count(*) FROM items", f, "", &s, &k);
    if (rc) return rc;
    rc = sqlite3_step(s);
    int code = VT_OK;
    if (rc == SQLITE_ROW) *n = sqlite3_column_int64(s, 0);
    else code = sq_err(b, rc, "count");
    sqlite3_finalize(s);
    return code;
}

static int sq_foreach(void *p, const vt_filter *f, int64_t offset, int64_t limit, vt_item_fn fn, void *user) {
    sq *b = p;
    sqlite3_stmt *s;
    int k;
    int rc = prepare_filtered(b, "SELECT label, id, attrs, image, hash, image_size, image_mtime FROM items", f,
                              " ORDER BY label LIMIT ? OFFSET ?", &s, &k);
    if (rc) return rc;
    sqlite3_bind_int64(s, k, limit);
    sqlite3_bind_int64(s, k + 1, offset);
    int ret = VT_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        vt_item it;
        row_view(s, &it);
        if ((ret = fn(&it, user)) != 0) break;
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = sq_err(b, rc, "list");
    sqlite3_finalize(s);
    return ret;
}

static int sq_labels(void *p, const vt_filter *f, vt_labels *out) {
    sq *b = p;
    sqlite3_stmt *s;
    int k;
    int rc = prepare_filtered(b, "SELECT label FROM items", f, " ORDER BY label", &s, &k);
    if (rc) return rc;
    size_t cap = 0;
    int ret = VT_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            int64_t *nv = realloc(out->v, nc * sizeof *nv);
            if (!nv) {
                ret = vt__err(VT_ENOMEM, "out of memory (%zu labels)", nc);
                break;
            }
            out->v = nv;
            cap = nc;
        }
        out->v[out->n++] = sqlite3_column_int64(s, 0);
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = sq_err(b, rc, "labels");
    sqlite3_finalize(s);
    if (ret) vt_labels_free(out);
    return ret;
}

/* ---- embeddings */

/* Contract: *d = the dim in column dcol of the current row of s, after checking it against the
 * vector blob in column vcol: 0, or -1 when the dim is not in 1..INT_MAX/4 or the blob is not
 * 4 * dim bytes (a file edited behind the table's CHECK constraints). Computed in 64 bits: a
 * corrupt dim must not overflow the size it is checked with. */
static int emb_dim(sqlite3_stmt *s, int dcol, int vcol, int *d) {
    sqlite3_int64 dim = sqlite3_column_int64(s, dcol);
    *d = 0;
    if (dim <= 0 || dim > INT_MAX / (int)sizeof(float)) return -1;
    if ((sqlite3_int64)sqlite3_column_bytes(s, vcol) != dim * (sqlite3_int64)sizeof(float)) return -1;
    *d = (int)dim;
    return 0;
}

static int sq_put_embedding(void *p, int64_t label, const char *model, const float *vec, int dim, uint64_t hash) {
    sq *b = p;
    int wrc = wr_enter(b);
    if (wrc) return wrc;
    sqlite3_stmt *s = stmt(b, ST_PUT_EMB);
    sqlite3_bind_text(s, 1, model, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, label);
    sqlite3_bind_int(s, 3, dim);
    sqlite3_bind_int64(s, 4, (int64_t)hash);
    sqlite3_bind_blob(s, 5, vec, dim * (int)sizeof(float), SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return vt__err(VT_ENOTFOUND, "%s: no item with label %lld for an embedding", b->path, (long long)label);
    return rc == SQLITE_DONE ? VT_OK : sq_err(b, rc, "put embedding");
}

static int sq_get_embedding(void *p, int64_t label, const char *model, float *vec, int cap, int *dim, uint64_t *hash) {
    sq *b = p;
    int rrc = rd_enter(b);
    if (rrc) return rrc;
    sqlite3_stmt *s = stmt(b, ST_GET_EMB);
    sqlite3_bind_text(s, 1, model, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, label);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s);
        return vt__err(VT_ENOTFOUND, "item %lld has no embedding for model '%s'", (long long)label, model);
    }
    if (rc != SQLITE_ROW) {
        int code = sq_err(b, rc, "get embedding");
        sqlite3_reset(s);
        return code;
    }
    int d, code = VT_OK;
    if (emb_dim(s, 0, 2, &d))
        code = vt__err(VT_ECORRUPT, "%s: embedding of item %lld has a wrong size", b->path, (long long)label);
    else if (d > cap) code = vt__err(VT_ETOOBIG, "embedding has %d dimensions, buffer holds %d", d, cap);
    else memcpy(vec, sqlite3_column_blob(s, 2), (size_t)d * sizeof(float));
    *dim = d;
    if (hash) *hash = (uint64_t)sqlite3_column_int64(s, 1);
    sqlite3_reset(s);
    return code;
}

static int sq_foreach_embedding(void *p, const char *model, vt_embedding_fn fn, void *user) {
    sq *b = p;
    int rrc = rd_enter(b);
    if (rrc) return rrc;
    sqlite3_stmt *s = stmt(b, ST_EACH_EMB);
    sqlite3_bind_text(s, 1, model, -1, SQLITE_STATIC);
    int rc, ret = VT_OK;
    float *tmp = NULL;
    int tmpcap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int d;
        const void *blob = sqlite3_column_blob(s, 3);
        if (emb_dim(s, 1, 3, &d)) {
            ret = vt__err(VT_ECORRUPT, "%s: embedding of item %lld has a wrong size", b->path,
                          (long long)sqlite3_column_int64(s, 0));
            break;
        }
        /* the blob's alignment is not guaranteed: copy when it is not float-aligned */
        const float *v = blob;
        if ((uintptr_t)blob % _Alignof(float)) {
            if (d > tmpcap) {
                float *n = realloc(tmp, (size_t)d * sizeof *n);
                if (!n) {
                    ret = vt__err(VT_ENOMEM, "out of memory");
                    break;
                }
                tmp = n;
                tmpcap = d;
            }
            memcpy(tmp, blob, (size_t)d * sizeof(float));
            v = tmp;
        }
        if ((ret = fn(sqlite3_column_int64(s, 0), v, d, (uint64_t)sqlite3_column_int64(s, 2), user)) != 0) break;
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = sq_err(b, rc, "embeddings");
    sqlite3_reset(s);
    free(tmp);
    return ret;
}

static int sq_count_embeddings(void *p, const char *model, int64_t *n) {
    sq *b = p;
    int rrc = rd_enter(b);
    if (rrc) return rrc;
    sqlite3_stmt *s = stmt(b, ST_COUNT_EMB);
    sqlite3_bind_text(s, 1, model, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    int code = VT_OK;
    if (rc == SQLITE_ROW) *n = sqlite3_column_int64(s, 0);
    else code = sq_err(b, rc, "count embeddings");
    sqlite3_reset(s);
    return code;
}

/* ---- meta */

static int sq_meta_set(void *p, const char *key, const char *value) {
    sq *b = p;
    int wrc = wr_enter(b);
    if (wrc) return wrc;
    sqlite3_stmt *s = stmt(b, ST_META_SET);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
    return step_done(b, s, "meta set");
}

static int sq_meta_get(void *p, const char *key, char *buf, size_t cap) {
    sq *b = p;
    int rrc = rd_enter(b);
    if (rrc) return rrc;
    sqlite3_stmt *s = stmt(b, ST_META_GET);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    int code = VT_OK;
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(s, 0);
        size_t l = v ? strlen(v) : 0;
        if (l + 1 > cap) code = vt__err(VT_ETOOBIG, "meta '%s' has %zu bytes, buffer holds %zu", key, l, cap);
        else {
            memcpy(buf, v ? v : "", l);
            buf[l] = 0;
        }
    } else if (rc == SQLITE_DONE) {
        code = vt__err(VT_ENOTFOUND, "no meta key '%s'", key);
    } else {
        code = sq_err(b, rc, "meta get");
    }
    sqlite3_reset(s);
    return code;
}

static int sq_check(void *p) {
    sq *b = p;
    int wrc = wr_enter(b); /* a fresh look at the file */
    if (wrc) return wrc;
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(b->db, "PRAGMA integrity_check", -1, &s, NULL);
    if (rc != SQLITE_OK) return sq_err(b, rc, "integrity check");
    int code = VT_OK;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(s, 0);
        if (!r || strcmp(r, "ok")) code = vt__err(VT_ECORRUPT, "%s: integrity check: %s", b->path, r ? r : "?");
    } else {
        code = sq_err(b, rc, "integrity check");
    }
    sqlite3_finalize(s);
    return code;
}

const vt__store_ops vt__sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .schema_version = sq_schema_version,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .put = sq_put,
    .get = sq_get,
    .get_many = sq_get_many,
    .del = sq_del,
    .count = sq_count,
    .foreach = sq_foreach,
    .put_embedding = sq_put_embedding,
    .get_embedding = sq_get_embedding,
    .foreach_embedding = sq_foreach_embedding,
    .count_embeddings = sq_count_embeddings,
    .labels = sq_labels,
    .meta_set = sq_meta_set,
    .meta_get = sq_meta_get,
    .check = sq_check,
};
