/* test_store.c: tests of the item store: documents, filters, labels, embeddings, migrations, crash safety. */
#include "testutil.h"
#include "store/store_internal.h"
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Removes a store file with its WAL and shared-memory files (an old -wal next to a new database
 * would be replayed into it). */
static void rm_db(const char *path) {
    char p[700];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static vt_store *open_new(const char *name) {
    vt_store *s = NULL;
    char path[600];
    snprintf(path, sizeof path, "%s", tu_path(name));
    rm_db(path);
    assert_int_equal(vt_store_open(path, 0, &s), 0);
    return s;
}

static int64_t put(vt_store *s, const char *id, const char *attrs) {
    vt_item it = {.id = (char *)id, .attrs = (char *)attrs, .image = (char *)"img.jpg", .hash = 42};
    int64_t label = -1;
    int rc = vt_store_put(s, &it, &label);
    if (rc) fprintf(stderr, "put %s: %s\n", id, vt_errmsg());
    assert_int_equal(rc, 0);
    assert_true(label > 0);
    return label;
}

static void test_hash_vectors(void **st) {
    (void)st;
    /* XXH64 reference values (xxhash's own test vectors) */
    assert_true(vt_hash64("", 0, 0) == 0xEF46DB3751D8E999ull);
    assert_true(vt_hash64("a", 1, 0) == 0xD24EC4F1A98C6E5Bull);
    assert_true(vt_hash64("abc", 3, 0) == 0x44BC2CF5AD770999ull);
    const char *fox = "The quick brown fox jumps over the lazy dog";
    assert_true(vt_hash64(fox, strlen(fox), 0) == 0x0B242D361FDA71BCull);
    /* streaming file hash == one-shot hash, across buffer boundaries */
    size_t n = 200003;
    uint8_t *buf = malloc(n);
    for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)(i * 2654435761u >> 13);
    assert_int_equal(tu_write(tu_path("h.bin"), buf, n), 0);
    uint64_t h;
    assert_int_equal(vt_hash_file(tu_path("h.bin"), &h), 0);
    assert_true(h == vt_hash64(buf, n, 0));
    buf[n / 2] ^= 1;
    assert_true(h != vt_hash64(buf, n, 0));
    free(buf);
    assert_int_equal(vt_hash_file(tu_path("nope.bin"), &h), VT_ENOENT);
}

static void test_put_get_update(void **st) {
    (void)st;
    vt_store *s = open_new("a.db");
    assert_string_equal(vt_store_backend(s), "sqlite");
    int v = 0;
    assert_int_equal(vt_store_schema_version(s, &v), 0);
    assert_int_equal(v, VT_SQLITE_SCHEMA_VERSION);
    int64_t l1 = put(s, "10000", "{\"gender\":\"Women\",\"articleType\":\"Skirts\",\"baseColour\":\"White\"}");
    int64_t l2 = put(s, "10001", "{\"gender\":\"Men\"}");
    assert_true(l2 > l1);
    vt_item it;
    assert_int_equal(vt_store_get(s, "10000", &it), 0);
    assert_int_equal(it.label, l1);
    assert_string_equal(it.id, "10000");
    assert_string_equal(it.image, "img.jpg");
    assert_true(it.hash == 42);
    assert_non_null(strstr(it.attrs, "\"Skirts\""));
    vt_item_clear(&it);
    /* update in place keeps the label */
    vt_item up = {.id = (char *)"10000", .attrs = (char *)"{\"gender\":\"Women\",\"articleType\":\"Dresses\"}",
                  .hash = 0xFFFFFFFFFFFFFFFFull, .image_size = 1234, .image_mtime = 99};
    int64_t l = 0;
    assert_int_equal(vt_store_put(s, &up, &l), 0);
    assert_int_equal(l, l1);
    assert_int_equal(vt_store_get_by_label(s, l1, &it), 0);
    assert_non_null(strstr(it.attrs, "Dresses"));
    assert_null(it.image);
    assert_true(it.hash == 0xFFFFFFFFFFFFFFFFull); /* full 64 bits survive the int64 column */
    assert_int_equal(it.image_size, 1234);
    assert_int_equal(it.image_mtime, 99);
    vt_item_clear(&it);
    int64_t n;
    assert_int_equal(vt_store_count(s, NULL, &n), 0);
    assert_int_equal(n, 2);
    /* several at once, with an absent label in the middle; also inside a batch */
    for (int in_batch = 0; in_batch < 2; in_batch++) {
        if (in_batch) assert_int_equal(vt_store_begin(s), 0);
        int64_t want[3] = {l2, 12345, l1};
        vt_item many[3];
        size_t found = 99;
        assert_int_equal(vt_store_get_many(s, want, 3, many, &found), 0);
        assert_int_equal(found, 2);
        assert_int_equal(many[0].label, l2);
        assert_string_equal(many[0].id, "10001");
        assert_int_equal(many[1].label, -1);
        assert_null(many[1].id);
        assert_int_equal(many[2].label, l1);
        assert_string_equal(many[2].id, "10000");
        for (int i = 0; i < 3; i++) vt_item_clear(&many[i]);
        if (in_batch) assert_int_equal(vt_store_commit(s), 0);
    }
    /* errors */
    assert_int_equal(vt_store_get(s, "nope", &it), VT_ENOTFOUND);
    assert_non_null(strstr(vt_errmsg(), "nope"));
    assert_int_equal(vt_store_get_by_label(s, 999, &it), VT_ENOTFOUND);
    vt_item bad = {.id = (char *)"x", .attrs = (char *)"{\"a\":"};
    assert_int_equal(vt_store_put(s, &bad, NULL), VT_EINVAL);
    bad.attrs = (char *)"[1,2]";
    assert_int_equal(vt_store_put(s, &bad, NULL), VT_EINVAL);
    bad.attrs = NULL;
    bad.id = (char *)"../etc/passwd";
    assert_int_equal(vt_store_put(s, &bad, NULL), VT_EINVAL);
    bad.id = (char *)"";
    assert_int_equal(vt_store_put(s, &bad, NULL), VT_EINVAL);
    assert_int_equal(vt_store_count(s, NULL, &n), 0);
    assert_int_equal(n, 2);
    vt_store_close(s);
}

static void test_delete_and_labels_not_reused(void **st) {
    (void)st;
    vt_store *s = open_new("del.db");
    int64_t a = put(s, "a", NULL), b = put(s, "b", NULL);
    float v[4] = {1, 2, 3, 4};
    assert_int_equal(vt_store_put_embedding(s, b, "m", v, 4, 7), 0);
    int64_t n;
    assert_int_equal(vt_store_count_embeddings(s, "m", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(vt_store_delete(s, "b"), 0);
    assert_int_equal(vt_store_delete(s, "b"), VT_ENOTFOUND);
    assert_int_equal(vt_store_count_embeddings(s, "m", &n), 0);
    assert_int_equal(n, 0); /* embeddings go with their item */
    int64_t c = put(s, "c", NULL);
    assert_true(c > b); /* b's label is never handed out again */
    int64_t b2 = put(s, "b", NULL);
    assert_true(b2 > c);
    (void)a;
    vt_store_close(s);
}

static void test_filters_paging(void **st) {
    (void)st;
    vt_store *s = open_new("f.db");
    static const char *g[] = {"Men", "Women"};
    static const char *t[] = {"Tshirts", "Shirts", "Dresses"};
    static const char *c[] = {"Blue", "Red", "Black", "White"};
    int expect_men_blue = 0, expect_tshirt_or_dress = 0, expect_year = 0;
    assert_int_equal(vt_store_begin(s), 0);
    for (int i = 0; i < 120; i++) {
        char id[16], attrs[256];
        snprintf(id, sizeof id, "%d", 5000 + i);
        snprintf(attrs, sizeof attrs,
                 "{\"gender\":\"%s\",\"masterCategory\":\"Apparel\",\"subCategory\":\"Topwear\",\"articleType\":\"%s\","
                 "\"baseColour\":\"%s\",\"year\":%d,\"usage\":\"%s\"}",
                 g[i % 2], t[i % 3], c[i % 4], 2010 + i % 5, i % 7 ? "Casual" : "Sports");
        put(s, id, attrs);
        expect_men_blue += (i % 2 == 0 && i % 4 == 0);
        expect_tshirt_or_dress += (i % 3 != 1);
        expect_year += (i % 5 == 2 && i % 7 == 0);
    }
    assert_int_equal(vt_store_commit(s), 0);
    vt_filter *f;
    assert_int_equal(vt_filter_create(&f), 0);
    assert_int_equal(vt_filter_parse(f, "gender=men"), 0); /* case-insensitive */
    assert_int_equal(vt_filter_parse(f, "colour=Blue"), 0);
    int64_t n;
    assert_int_equal(vt_store_count(s, f, &n), 0);
    assert_int_equal(n, expect_men_blue);
    vt_labels L;
    assert_int_equal(vt_store_labels(s, f, &L), 0);
    assert_int_equal(L.n, (size_t)expect_men_blue);
    for (size_t i = 1; i < L.n; i++) assert_true(L.v[i] > L.v[i - 1]);
    /* every allowed label really is a blue men's item, every other label is not */
    for (int64_t l = 1; l <= 120; l++) {
        vt_item it;
        assert_int_equal(vt_store_get_by_label(s, l, &it), 0);
        int want = strstr(it.attrs, "\"Men\"") && strstr(it.attrs, "\"Blue\"");
        assert_int_equal(!!vt_labels_contains(&L, l), want);
        vt_item_clear(&it);
    }
    uint64_t *bits;
    size_t nw;
    assert_int_equal(vt_labels_bitmap(&L, &bits, &nw), 0);
    for (int64_t l = 0; l < (int64_t)nw * 64; l++)
        assert_int_equal(!!(bits[l >> 6] >> (l & 63) & 1), vt_labels_contains(&L, l));
    vt_labels_bitmap_free(bits);
    vt_labels_free(&L);
    vt_filter_free(f);

    /* same field twice: OR */
    assert_int_equal(vt_filter_create(&f), 0);
    assert_int_equal(vt_filter_add(f, "articleType", "Tshirts"), 0);
    assert_int_equal(vt_filter_add(f, "articletype", "DRESSES"), 0);
    assert_int_equal(vt_store_count(s, f, &n), 0);
    assert_int_equal(n, expect_tshirt_or_dress);
    vt_filter_free(f);
    /* a field that is not a column: JSON lookup, numbers compared as text */
    assert_int_equal(vt_filter_create(&f), 0);
    assert_int_equal(vt_filter_parse(f, "year=2012"), 0);
    assert_int_equal(vt_filter_parse(f, "usage=sports"), 0);
    assert_int_equal(vt_store_count(s, f, &n), 0);
    assert_int_equal(n, expect_year);
    assert_true(n > 0);
    vt_filter_free(f);
    /* id filter and no-match */
    assert_int_equal(vt_filter_create(&f), 0);
    assert_int_equal(vt_filter_parse(f, "id=5007"), 0);
    assert_int_equal(vt_store_count(s, f, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(vt_filter_parse(f, "gender=Unisex"), 0);
    assert_int_equal(vt_store_count(s, f, &n), 0);
    assert_int_equal(n, 0);
    /* bad conditions */
    assert_int_equal(vt_filter_parse(f, "novalue"), VT_EINVAL);
    assert_int_equal(vt_filter_parse(f, "=x"), VT_EINVAL);
    assert_int_equal(vt_filter_parse(f, "a'b=x"), VT_EINVAL);
    assert_int_equal(vt_filter_add(f, "x) OR 1=1 --", "y"), VT_EINVAL);
    assert_int_equal(vt_filter_count(f), 2);
    vt_filter_free(f);
    /* a value full of SQL is just a value */
    assert_int_equal(vt_filter_create(&f), 0);
    assert_int_equal(vt_filter_parse(f, "gender=x' OR '1'='1"), 0);
    assert_int_equal(vt_store_count(s, f, &n), 0);
    assert_int_equal(n, 0);
    vt_filter_free(f);

    /* paging: pages cover every item once, in label order, total ignores paging */
    assert_int_equal(vt_filter_create(&f), 0);
    assert_int_equal(vt_filter_parse(f, "gender=Women"), 0);
    int64_t seen = 0, last = 0;
    for (int64_t off = 0;; off += 7) {
        vt_item_list page;
        assert_int_equal(vt_store_list(s, f, off, 7, &page), 0);
        assert_int_equal(page.total, 60);
        for (size_t i = 0; i < page.n; i++) {
            assert_true(page.items[i].label > last);
            last = page.items[i].label;
            assert_non_null(strstr(page.items[i].attrs, "Women"));
            seen++;
        }
        size_t got = page.n;
        vt_item_list_free(&page);
        if (got < 7) break;
    }
    assert_int_equal(seen, 60);
    vt_item_list page;
    assert_int_equal(vt_store_list(s, f, 0, -1, &page), VT_EINVAL);
    assert_int_equal(vt_store_list(s, f, 1000, 10, &page), 0);
    assert_int_equal(page.n, 0);
    assert_int_equal(page.total, 60);
    vt_item_list_free(&page);
    vt_filter_free(f);
    vt_store_close(s);
}

typedef struct {
    int n;
    int64_t last;
    double sum;
} emb_ctx;

static int emb_cb(int64_t label, const float *v, int dim, uint64_t hash, void *user) {
    emb_ctx *c = user;
    assert_true(label > c->last);
    c->last = label;
    assert_int_equal(dim, 3);
    assert_true(hash == (uint64_t)label * 11);
    for (int i = 0; i < dim; i++) c->sum += v[i];
    c->n++;
    return 0;
}

static int stop_cb(int64_t label, const float *v, int dim, uint64_t hash, void *user) {
    (void)label, (void)v, (void)dim, (void)hash;
    return ++*(int *)user == 2 ? 77 : 0;
}

static void test_embeddings(void **st) {
    (void)st;
    vt_store *s = open_new("e.db");
    double want = 0;
    for (int i = 0; i < 10; i++) {
        char id[8];
        snprintf(id, sizeof id, "i%d", i);
        int64_t l = put(s, id, NULL);
        float v[3] = {(float)i, 0.5f, -(float)i * 2};
        assert_int_equal(vt_store_put_embedding(s, l, "resnet", v, 3, (uint64_t)l * 11), 0);
        want += v[0] + v[1] + v[2];
        float w[5] = {1, 1, 1, 1, 1};
        if (i % 2) assert_int_equal(vt_store_put_embedding(s, l, "other", w, 5, 0), 0);
    }
    float out[8];
    int dim;
    uint64_t h;
    assert_int_equal(vt_store_get_embedding(s, 3, "resnet", out, 8, &dim, &h), 0);
    assert_int_equal(dim, 3);
    assert_true(h == 33);
    assert_true(out[0] == 2.0f && out[1] == 0.5f && out[2] == -4.0f);
    assert_int_equal(vt_store_get_embedding(s, 3, "resnet", out, 2, &dim, &h), VT_ETOOBIG);
    assert_int_equal(dim, 3);
    assert_int_equal(vt_store_get_embedding(s, 3, "nomodel", out, 8, &dim, NULL), VT_ENOTFOUND);
    dim = 0, h = 0;
    assert_int_equal(vt_store_embedding_info(s, 3, "resnet", &dim, &h), 0);
    assert_int_equal(dim, 3);
    assert_true(h == 33);
    assert_int_equal(vt_store_embedding_info(s, 3, "nomodel", &dim, &h), VT_ENOTFOUND);
    assert_int_equal(vt_store_embedding_info(s, 2, "other", &dim, NULL), 0);
    assert_int_equal(dim, 5);
    assert_int_equal(vt_store_embedding_info(s, 1, "other", &dim, NULL), VT_ENOTFOUND);
    /* replace */
    float r[3] = {9, 9, 9};
    assert_int_equal(vt_store_put_embedding(s, 3, "resnet", r, 3, 33), 0);
    want += 27 - (2.0 + 0.5 - 4.0);
    emb_ctx c = {0};
    assert_int_equal(vt_store_foreach_embedding(s, "resnet", emb_cb, &c), 0);
    assert_int_equal(c.n, 10);
    assert_float_equal(c.sum, want, 1e-4);
    int64_t n;
    assert_int_equal(vt_store_count_embeddings(s, "other", &n), 0);
    assert_int_equal(n, 5);
    int k = 0;
    assert_int_equal(vt_store_foreach_embedding(s, "resnet", stop_cb, &k), 77);
    assert_int_equal(k, 2);
    /* no item, bad arguments */
    assert_int_equal(vt_store_put_embedding(s, 999, "resnet", r, 3, 0), VT_ENOTFOUND);
    assert_int_equal(vt_store_put_embedding(s, 1, "", r, 3, 0), VT_EINVAL);
    assert_int_equal(vt_store_put_embedding(s, 1, "resnet", r, 0, 0), VT_EINVAL);
    vt_store_close(s);
}

/* Counts the embeddings foreach hands over; a vector whose dim runs past its blob fails the test. */
static int dim_cb(int64_t label, const float *v, int dim, uint64_t hash, void *user) {
    (void)label, (void)v, (void)hash;
    assert_true(dim > 0 && dim <= 4);
    ++*(int *)user;
    return 0;
}

/* A store file whose embeddings table was edited behind the CHECK constraints: dims whose size in
 * bytes overflows an int, negative, or past 32 bits, each with a one-float blob. */
static void test_embedding_dim_corrupt(void **st) {
    (void)st;
    const long long dims[] = {1073741825LL, -1073741823LL, 4294967297LL, 2147483647LL};
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        vt_store *s = open_new("dim.db");
        int64_t l1 = put(s, "a", NULL), l2 = put(s, "b", NULL);
        float v[1] = {1.5f}, w[1] = {2.5f};
        assert_int_equal(vt_store_put_embedding(s, l1, "m", v, 1, 0), 0);
        assert_int_equal(vt_store_put_embedding(s, l2, "m", w, 1, 0), 0);
        vt_store_close(s);
        sqlite3 *db;
        assert_int_equal(sqlite3_open(tu_path("dim.db"), &db), SQLITE_OK);
        char sql[200];
        printf("dim %lld\n", dims[k]);
        snprintf(sql, sizeof sql, "PRAGMA ignore_check_constraints = ON; UPDATE embeddings SET dim = %lld WHERE label = %lld",
                 dims[k], (long long)l1);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_changes(db), 1);
        sqlite3_close(db);
        assert_int_equal(vt_store_open(tu_path("dim.db"), 0, &s), 0);
        float out[4] = {0};
        int dim = 0, n = 0;
        assert_int_equal(vt_store_foreach_embedding(s, "m", dim_cb, &n), VT_ECORRUPT);
        assert_int_equal(n, 0); /* l1 comes first and stops the walk */
        assert_int_equal(vt_store_get_embedding(s, l1, "m", out, 4, &dim, NULL), VT_ECORRUPT);
        assert_int_equal(vt_store_embedding_info(s, l1, "m", &dim, NULL), VT_ECORRUPT);
        /* the intact row still reads */
        assert_int_equal(vt_store_get_embedding(s, l2, "m", out, 4, &dim, NULL), 0);
        assert_int_equal(dim, 1);
        assert_true(out[0] == w[0]);
        vt_store_close(s);
    }
}

static void test_batches_and_meta(void **st) {
    (void)st;
    vt_store *s = open_new("b.db");
    assert_int_equal(vt_store_commit(s), VT_ESTATE);
    assert_int_equal(vt_store_begin(s), 0);
    assert_int_equal(vt_store_begin(s), VT_ESTATE);
    put(s, "x1", NULL);
    put(s, "x2", NULL);
    assert_int_equal(vt_store_rollback(s), 0);
    int64_t n;
    assert_int_equal(vt_store_count(s, NULL, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(vt_store_begin(s), 0);
    put(s, "y1", NULL);
    assert_int_equal(vt_store_meta_set(s, "ingest.cursor", "y1"), 0);
    assert_int_equal(vt_store_commit(s), 0);
    char buf[16];
    assert_int_equal(vt_store_meta_get(s, "ingest.cursor", buf, sizeof buf), 0);
    assert_string_equal(buf, "y1");
    assert_int_equal(vt_store_meta_get(s, "ingest.cursor", buf, 2), VT_ETOOBIG);
    assert_int_equal(vt_store_meta_get(s, "absent", buf, sizeof buf), VT_ENOTFOUND);
    assert_int_equal(vt_store_check(s), 0);
    vt_store_close(s);
    /* a batch left open at close is rolled back */
    assert_int_equal(vt_store_open(tu_path("b.db"), 0, &s), 0);
    assert_int_equal(vt_store_begin(s), 0);
    put(s, "z1", NULL);
    vt_store_close(s);
    assert_int_equal(vt_store_open(tu_path("b.db"), VT_STORE_READONLY, &s), 0);
    assert_int_equal(vt_store_count(s, NULL, &n), 0);
    assert_int_equal(n, 1);
    /* read-only handles refuse writes */
    vt_item it = {.id = (char *)"w"};
    assert_int_equal(vt_store_put(s, &it, NULL), VT_ESTATE);
    vt_store_close(s);
}

static void test_open_errors_and_migration(void **st) {
    (void)st;
    vt_store *s = NULL;
    assert_int_equal(vt_store_open(tu_path("absent.db"), VT_STORE_READONLY, &s), VT_ENOENT);
    assert_null(s);
    assert_int_equal(vt_store_open("mongodb://localhost/x", 0, &s), VT_EUNSUPPORTED);
    assert_int_equal(vt_store_open("", 0, &s), VT_EINVAL);
    /* not a database at all */
    assert_int_equal(tu_write(tu_path("junk.db"), "this is not sqlite, just some text bytes......", 46), 0);
    assert_int_equal(vt_store_open(tu_path("junk.db"), 0, &s), VT_ECORRUPT);
    /* an SQLite database of someone else */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(tu_path("other.db"), &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(vt_store_open(tu_path("other.db"), 0, &s), VT_ECORRUPT);
    /* a newer schema */
    assert_int_equal(vt__sqlite_create_at_version(tu_path("new.db"), VT_SQLITE_SCHEMA_VERSION), 0);
    assert_int_equal(sqlite3_open(tu_path("new.db"), &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(vt_store_open(tu_path("new.db"), 0, &s), VT_EUNSUPPORTED);
    assert_non_null(strstr(vt_errmsg(), "newer"));
    /* migration from version 1 keeps the data and adds the meta table */
    rm_db(tu_path("v1.db"));
    assert_int_equal(vt__sqlite_create_at_version(tu_path("v1.db"), 1), 0);
    assert_int_equal(sqlite3_open(tu_path("v1.db"), &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO items(id, attrs) VALUES('old', '{\"gender\":\"Men\"}')", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "SELECT * FROM meta", NULL, NULL, NULL), SQLITE_ERROR); /* no meta in v1 */
    sqlite3_close(db);
    assert_int_equal(vt_store_open(tu_path("v1.db"), VT_STORE_READONLY, &s), VT_ESTATE);
    assert_int_equal(vt_store_open(tu_path("v1.db"), 0, &s), 0);
    int v;
    assert_int_equal(vt_store_schema_version(s, &v), 0);
    assert_int_equal(v, VT_SQLITE_SCHEMA_VERSION);
    vt_item it;
    assert_int_equal(vt_store_get(s, "old", &it), 0);
    assert_string_equal(it.attrs, "{\"gender\":\"Men\"}");
    vt_item_clear(&it);
    vt_filter *f;
    vt_filter_create(&f);
    vt_filter_parse(f, "gender=men");
    int64_t n;
    assert_int_equal(vt_store_count(s, f, &n), 0);
    assert_int_equal(n, 1);
    vt_filter_free(f);
    assert_int_equal(vt_store_meta_set(s, "k", "v"), 0);
    vt_store_close(s);
}

/* ---- crash safety: a child writes batches of BATCH items and is SIGKILLed inside a batch */

#define BATCH 50

/* The child: commits `full` batches, reports through the pipe, then writes a batch forever
 * (never committing it) until it is killed. */
static void crash_child(const char *path, int full, int wfd, int commit_more) {
    vt_store *s;
    if (vt_store_open(path, 0, &s)) _exit(2);
    int k = 0;
    for (int b = 0;; b++) {
        if (vt_store_begin(s)) _exit(3);
        for (int i = 0; i < BATCH || (b >= full && !commit_more); i++) {
            char id[32], attrs[64];
            snprintf(id, sizeof id, "it%d", k++);
            snprintf(attrs, sizeof attrs, "{\"batch\":%d,\"i\":%d}", b, i);
            vt_item it = {.id = id, .attrs = attrs};
            int64_t l;
            if (vt_store_put(s, &it, &l)) _exit(4);
            float v[16] = {(float)b};
            if (vt_store_put_embedding(s, l, "m", v, 16, 0)) _exit(5);
            if (b == full && i == 10 && !commit_more) {
                char c = 'x';
                if (write(wfd, &c, 1) != 1) _exit(6); /* mid-batch: tell the parent */
            }
        }
        if (vt_store_commit(s)) _exit(7);
        if (b == full - 1 && commit_more) {
            char c = 'x';
            if (write(wfd, &c, 1) != 1) _exit(6);
        }
    }
}

static void check_whole_batches(const char *path, int64_t *items_out) {
    vt_store *s;
    assert_int_equal(vt_store_open(path, 0, &s), 0);
    assert_int_equal(vt_store_check(s), 0);
    int64_t n, e;
    assert_int_equal(vt_store_count(s, NULL, &n), 0);
    assert_int_equal(vt_store_count_embeddings(s, "m", &e), 0);
    assert_int_equal(n % BATCH, 0);
    assert_int_equal(e, n);
    /* the items are exactly it0 .. it(n-1) */
    for (int64_t i = 0; i < n; i += 7) {
        char id[32];
        snprintf(id, sizeof id, "it%lld", (long long)i);
        vt_item it;
        assert_int_equal(vt_store_get(s, id, &it), 0);
        vt_item_clear(&it);
    }
    char id[32];
    snprintf(id, sizeof id, "it%lld", (long long)n);
    vt_item it;
    assert_int_equal(vt_store_get(s, id, &it), VT_ENOTFOUND);
    vt_store_close(s);
    *items_out = n;
}

static void test_crash_mid_batch(void **st) {
    (void)st;
    for (int full = 0; full <= 3; full += 3) {
        char path[600];
        snprintf(path, sizeof path, "%s", tu_path("crash.db"));
        rm_db(path);
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            crash_child(path, full, fds[1], 0);
            _exit(0);
        }
        close(fds[1]);
        char c;
        assert_int_equal(read(fds[0], &c, 1), 1);
        usleep(20000); /* let it write more of the open batch */
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        close(fds[0]);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        int64_t n;
        check_whole_batches(path, &n);
        assert_int_equal(n, (int64_t)full * BATCH); /* exactly the committed batches */
    }
}

/* Killed at arbitrary moments while committing batch after batch: always whole batches, and
 * at least the ones committed before the parent was told. */
static void test_crash_random_moments(void **st) {
    (void)st;
    vt_rng rng;
    vt_rng_seed(&rng, 12345);
    for (int round = 0; round < 6; round++) {
        char path[600];
        snprintf(path, sizeof path, "%s", tu_path("crash2.db"));
        rm_db(path);
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            crash_child(path, 2, fds[1], 1);
            _exit(0);
        }
        close(fds[1]);
        char c;
        assert_int_equal(read(fds[0], &c, 1), 1);
        usleep((useconds_t)vt_rng_below(&rng, 60000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        close(fds[0]);
        assert_true(WIFSIGNALED(status));
        int64_t n;
        check_whole_batches(path, &n);
        assert_true(n >= 2 * BATCH);
    }
}

/* Two handles on one file: a reader sees a writer's batch only once it is committed (WAL). */
static void test_reader_isolation(void **st) {
    (void)st;
    vt_store *w = open_new("iso.db"), *r;
    put(w, "first", NULL);
    assert_int_equal(vt_store_open(tu_path("iso.db"), VT_STORE_READONLY, &r), 0);
    assert_int_equal(vt_store_begin(w), 0);
    put(w, "second", NULL);
    int64_t n;
    assert_int_equal(vt_store_count(r, NULL, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(vt_store_commit(w), 0);
    assert_int_equal(vt_store_count(r, NULL, &n), 0);
    assert_int_equal(n, 2);
    vt_store_close(r);
    vt_store_close(w);
}

/* VT_STORE_FAST_READS: own writes visible at once, other handles' commits within 50 ms, and
 * batches, deletes and filters behave as without it. */
static void test_fast_reads(void **st) {
    (void)st;
    vt_store *w = open_new("fast.db"), *r, *rw;
    put(w, "a", "{\"gender\":\"Men\"}");
    assert_int_equal(vt_store_open(tu_path("fast.db"), VT_STORE_READONLY | VT_STORE_FAST_READS, &r), 0);
    assert_int_equal(vt_store_open(tu_path("fast.db"), VT_STORE_FAST_READS, &rw), 0);
    int64_t n;
    assert_int_equal(vt_store_count(r, NULL, &n), 0);
    assert_int_equal(n, 1);
    put(w, "b", "{\"gender\":\"Men\"}");
    usleep(60000);
    assert_int_equal(vt_store_count(r, NULL, &n), 0);
    assert_int_equal(n, 2); /* the snapshot was renewed */
    /* a fast-read handle that writes sees its own writes immediately */
    vt_item it;
    assert_int_equal(vt_store_get(rw, "a", &it), 0);
    vt_item_clear(&it);
    put(rw, "c", "{\"gender\":\"Women\"}");
    assert_int_equal(vt_store_get(rw, "c", &it), 0);
    vt_item_clear(&it);
    assert_int_equal(vt_store_delete(rw, "a"), 0);
    assert_int_equal(vt_store_get(rw, "a", &it), VT_ENOTFOUND);
    assert_int_equal(vt_store_begin(rw), 0);
    put(rw, "d", NULL);
    assert_int_equal(vt_store_count(rw, NULL, &n), 0);
    assert_int_equal(n, 3); /* b, c, d inside the batch */
    assert_int_equal(vt_store_rollback(rw), 0);
    assert_int_equal(vt_store_count(rw, NULL, &n), 0);
    assert_int_equal(n, 2);
    vt_filter *f;
    vt_filter_create(&f);
    vt_filter_parse(f, "gender=men");
    assert_int_equal(vt_store_count(rw, f, &n), 0);
    assert_int_equal(n, 1);
    vt_filter_free(f);
    /* the plain handle sees rw's committed writes at once */
    assert_int_equal(vt_store_count(w, NULL, &n), 0);
    assert_int_equal(n, 2);
    /* the writer is never blocked by the fast readers' open snapshots */
    assert_int_equal(vt_store_get(r, "b", &it), 0);
    vt_item_clear(&it);
    assert_int_equal(vt_store_begin(w), 0);
    put(w, "e", NULL);
    assert_int_equal(vt_store_commit(w), 0);
    usleep(60000);
    assert_int_equal(vt_store_get(r, "e", &it), 0);
    vt_item_clear(&it);
    assert_int_equal(vt_store_check(r), 0);
    vt_store_close(r);
    vt_store_close(rw);
    vt_store_close(w);
}

/* ---- one handle shared by threads: readers and a writer at the same time */

typedef struct {
    vt_store *s;
    int id, errors, done;
} thr;

static void *reader(void *p) {
    thr *t = p;
    for (int k = 0; k < 300; k++) {
        vt_item it;
        char id[32];
        snprintf(id, sizeof id, "base%d", (k * 7 + t->id) % 100);
        if (vt_store_get(t->s, id, &it) || strcmp(it.id, id)) t->errors++;
        vt_item_clear(&it);
        vt_item_list l;
        if (vt_store_list(t->s, NULL, k % 50, 10, &l) || l.n != 10) t->errors++;
        vt_item_list_free(&l);
        float v[4];
        int dim;
        if (vt_store_get_embedding(t->s, 1 + k % 100, "m", v, 4, &dim, NULL) || dim != 4 || v[0] != (float)(k % 100))
            t->errors++;
    }
    return NULL;
}

static void *writer(void *p) {
    thr *t = p;
    for (int k = 0; k < 300; k++) {
        char id[32];
        snprintf(id, sizeof id, "new%d", k);
        vt_item it = {.id = id, .attrs = (char *)"{\"gender\":\"Men\"}"};
        if (vt_store_put(t->s, &it, NULL)) t->errors++;
    }
    return NULL;
}

static void test_threads_share_a_handle(void **st) {
    (void)st;
    vt_store *s = open_new("thr.db");
    assert_int_equal(vt_store_begin(s), 0);
    for (int i = 0; i < 100; i++) {
        char id[32];
        snprintf(id, sizeof id, "base%d", i);
        int64_t l = put(s, id, NULL);
        float v[4] = {(float)i, 1, 2, 3};
        assert_int_equal(vt_store_put_embedding(s, l, "m", v, 4, 0), 0);
    }
    assert_int_equal(vt_store_commit(s), 0);
    pthread_t th[4];
    thr t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (thr){.s = s, .id = i};
        pthread_create(&th[i], NULL, i == 3 ? writer : reader, &t[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].errors, 0);
    }
    int64_t n;
    assert_int_equal(vt_store_count(s, NULL, &n), 0);
    assert_int_equal(n, 400);
    vt_store_close(s);
}

/* Several processes creating the same new store at once: one creates it, the others find it
 * made (no "table already exists"). */
static void test_concurrent_create(void **st) {
    (void)st;
    for (int round = 0; round < 12; round++) {
        char path[600];
        snprintf(path, sizeof path, "%s", tu_path("race.db"));
        rm_db(path);
        pid_t pids[6];
        for (int i = 0; i < 6; i++) {
            pids[i] = fork();
            assert_true(pids[i] >= 0);
            if (pids[i] == 0) {
                vt_store *s;
                if (vt_store_open(path, 0, &s)) {
                    fprintf(stderr, "child: %s\n", vt_errmsg());
                    _exit(1);
                }
                char id[16];
                snprintf(id, sizeof id, "c%d", i);
                vt_item it = {.id = id};
                int rc = vt_store_put(s, &it, NULL);
                vt_store_close(s);
                _exit(rc ? 2 : 0);
            }
        }
        for (int i = 0; i < 6; i++) {
            int status;
            waitpid(pids[i], &status, 0);
            assert_true(WIFEXITED(status));
            assert_int_equal(WEXITSTATUS(status), 0);
        }
        vt_store *s;
        assert_int_equal(vt_store_open(path, 0, &s), 0);
        int64_t n;
        assert_int_equal(vt_store_count(s, NULL, &n), 0);
        assert_int_equal(n, 6);
        vt_store_close(s);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_vectors),
        cmocka_unit_test(test_put_get_update),
        cmocka_unit_test(test_delete_and_labels_not_reused),
        cmocka_unit_test(test_filters_paging),
        cmocka_unit_test(test_embeddings),
        cmocka_unit_test(test_batches_and_meta),
        cmocka_unit_test(test_open_errors_and_migration),
        cmocka_unit_test(test_crash_mid_batch),
        cmocka_unit_test(test_crash_random_moments),
        cmocka_unit_test(test_reader_isolation),
        cmocka_unit_test(test_fast_reads),
        cmocka_unit_test(test_embedding_dim_corrupt),
        cmocka_unit_test(test_threads_share_a_handle),
        cmocka_unit_test(test_concurrent_create),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
