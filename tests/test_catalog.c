/* test_catalog.c: tests of catalog feeds (CSV, JSON Lines): bad rows, line numbers, images, streaming. */
#include "testutil.h"
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    long line;
    int error;
    char id[64];
    char reason[256];
    char attrs[512];
    char image[512];
    char image_error[512];
} got_row;

/* Reads a whole feed from memory into out[]; returns the row count and checks the counters. */
static int read_all(const char *text, const char *name, const vt_feed_opts *o, got_row *out, int max) {
    vt_feed *f;
    int rc = vt_feed_open_mem(text, strlen(text), name, o, &f);
    if (rc) fprintf(stderr, "open: %s\n", vt_errmsg());
    assert_int_equal(rc, 0);
    int n = 0;
    long nerr = 0;
    vt_feed_row r;
    while ((rc = vt_feed_next(f, &r)) == 1) {
        assert_true(n < max);
        got_row *g = &out[n++];
        memset(g, 0, sizeof *g);
        g->line = r.line;
        g->error = r.error;
        nerr += r.error != 0;
        assert_string_equal(r.file, name);
        if (r.id) snprintf(g->id, sizeof g->id, "%s", r.id);
        if (r.reason) snprintf(g->reason, sizeof g->reason, "%s", r.reason);
        if (r.attrs) snprintf(g->attrs, sizeof g->attrs, "%s", r.attrs);
        if (r.image) snprintf(g->image, sizeof g->image, "%s", r.image);
        if (r.image_error) snprintf(g->image_error, sizeof g->image_error, "%s", r.image_error);
        assert_true(!(r.image && r.image_error));
        assert_true(r.error ? r.reason != NULL : r.attrs != NULL);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(vt_feed_next(f, &r), 0); /* stays at the end */
    long rows, errors;
    vt_feed_counts(f, &rows, &errors);
    assert_int_equal(rows, n);
    assert_int_equal(errors, nerr);
    vt_feed_close(f);
    return n;
}

/* The value of attribute `key` in a JSON object text ("" when absent). */
static const char *attr(const char *attrs, const char *key) {
    static char buf[256];
    buf[0] = 0;
    json_t *o = json_loads(attrs, 0, NULL);
    assert_non_null(o);
    json_t *v = json_object_get(o, key);
    if (json_is_string(v)) snprintf(buf, sizeof buf, "%s", json_string_value(v));
    json_decref(o);
    return buf;
}

static void test_csv_good_and_bad_rows(void **st) {
    (void)st;
    const char *csv =
        "\xEF\xBB\xBFid,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName\n" /* 1 */
        "10000,Women,Apparel,Bottomwear,Skirts,White,Summer,2011,Casual,Palm Tree Girls Skirt\n"                        /* 2 */
        "10001,Men,Apparel,Topwear,Shirts,Blue,Fall,2012,Formal,Shirt, with a comma\n"                                /* 3: 11 fields */
        "\n"                                                                                                           /* 4: blank */
        "10002,Men,Apparel,Topwear,Tshirts,,Fall,2012,Casual,\"Quoted, with comma\nand a newline\"\n"                 /* 5-6 */
        "10000,Women,Apparel,Bottomwear,Skirts,White,Summer,2011,Casual,Again\n"                                       /* 7: dup */
        ",Men,Apparel,Topwear,Tshirts,Red,Fall,2012,Casual,No id\n"                                                    /* 8 */
        "10003,Men,Apparel\r\n"                                                                                        /* 9: short */
        "../etc/passwd,Men,Apparel,Topwear,Tshirts,Red,Fall,2012,Casual,Sneaky\n"                                      /* 10 */
        "10004,Men,Apparel,Topwear,Tshirts,Red,Fall,2012,Casual,Bad \xff\xfe utf8\n"                                   /* 11 */
        "10001,Men,Apparel,Topwear,Shirts,Blue,Fall,2012,Formal,The fixed row\r\n"                                     /* 12 */
        "10005,Unisex,Footwear,Shoes,Casual Shoes,Black,Winter,2016,Casual,\"He said \"\"hi\"\"\"";                    /* 13, no final newline */
    got_row r[32];
    int n = read_all(csv, "styles.csv", NULL, r, 32);
    assert_int_equal(n, 10);
    /* 10000 */
    assert_int_equal(r[0].line, 2);
    assert_int_equal(r[0].error, 0);
    assert_string_equal(r[0].id, "10000");
    assert_string_equal(attr(r[0].attrs, "articleType"), "Skirts");
    assert_string_equal(attr(r[0].attrs, "gender"), "Women");
    assert_string_equal(attr(r[0].attrs, "year"), "2011");
    assert_string_equal(attr(r[0].attrs, "id"), ""); /* the id is not repeated in attrs */
    assert_string_equal(r[0].image, "");            /* no images folder given */
    /* unquoted comma */
    assert_int_equal(r[1].line, 3);
    assert_int_equal(r[1].error, VT_ECORRUPT);
    assert_string_equal(r[1].id, "10001");
    assert_non_null(strstr(r[1].reason, "11 fields but the header has 10"));
    /* quoted comma + newline: one good row starting at line 5; empty colour left out */
    assert_int_equal(r[2].line, 5);
    assert_int_equal(r[2].error, 0);
    assert_string_equal(attr(r[2].attrs, "productDisplayName"), "Quoted, with comma\nand a newline");
    assert_string_equal(attr(r[2].attrs, "baseColour"), "");
    /* duplicate */
    assert_int_equal(r[3].line, 7);
    assert_int_equal(r[3].error, VT_EEXIST);
    assert_non_null(strstr(r[3].reason, "first on line 2"));
    /* missing id */
    assert_int_equal(r[4].line, 8);
    assert_int_equal(r[4].error, VT_EINVAL);
    assert_non_null(strstr(r[4].reason, "missing id"));
    /* too few fields, CRLF */
    assert_int_equal(r[5].line, 9);
    assert_int_equal(r[5].error, VT_ECORRUPT);
    assert_non_null(strstr(r[5].reason, "3 fields"));
    /* unsafe id */
    assert_int_equal(r[6].line, 10);
    assert_int_equal(r[6].error, VT_EINVAL);
    assert_non_null(strstr(r[6].reason, "invalid id"));
    /* bad UTF-8 */
    assert_int_equal(r[7].line, 11);
    assert_int_equal(r[7].error, VT_ECORRUPT);
    assert_non_null(strstr(r[7].reason, "UTF-8"));
    /* the id of a malformed row is free for a later good row */
    assert_int_equal(r[8].line, 12);
    assert_int_equal(r[8].error, 0);
    assert_string_equal(r[8].id, "10001");
    assert_string_equal(attr(r[8].attrs, "productDisplayName"), "The fixed row");
    /* last row without newline, doubled quotes */
    assert_int_equal(r[9].line, 13);
    assert_int_equal(r[9].error, 0);
    assert_string_equal(attr(r[9].attrs, "productDisplayName"), "He said \"hi\"");
    assert_string_equal(attr(r[9].attrs, "articleType"), "Casual Shoes");
}

static void test_csv_header_errors(void **st) {
    (void)st;
    vt_feed *f = NULL;
    const char *noid = "name,colour\nx,red\n";
    assert_int_equal(vt_feed_open_mem(noid, strlen(noid), "a.csv", NULL, &f), VT_ECORRUPT);
    assert_non_null(strstr(vt_errmsg(), "no id column"));
    assert_null(f);
    assert_int_equal(vt_feed_open_mem("", 0, "b.csv", NULL, &f), VT_EEMPTY);
    assert_int_equal(vt_feed_open_mem("\n\n  \n", 5, "c.csv", NULL, &f), VT_EEMPTY);
    const char *dup = "id,a,a\n1,2,3\n";
    assert_int_equal(vt_feed_open_mem(dup, strlen(dup), "d.csv", NULL, &f), VT_ECORRUPT);
    assert_non_null(strstr(vt_errmsg(), "twice"));
    assert_int_equal(vt_feed_open(tu_path("absent.csv"), NULL, &f), VT_ENOENT);
    /* another id column name, header only */
    const char *sku = "SKU,colour\n";
    assert_int_equal(vt_feed_open_mem(sku, strlen(sku), "e.csv", NULL, &f), 0);
    vt_feed_row r;
    assert_int_equal(vt_feed_next(f, &r), 0);
    assert_int_equal(vt_feed_get_format(f), VT_FEED_CSV);
    vt_feed_close(f);
}

static void test_csv_row_too_long(void **st) {
    (void)st;
    char *big = malloc(500000);
    int k = sprintf(big, "id,name\n1,short\n2,");
    memset(big + k, 'x', 200000);
    k += 200000;
    k += sprintf(big + k, "\n3,\"also long ");
    memset(big + k, 'y', 200000 - 20);
    k += 200000 - 20;
    k += sprintf(big + k, "\"\n4,after\n");
    big[k] = 0;
    vt_feed_opts o = {.max_row_bytes = 1000};
    got_row r[8];
    int n = read_all(big, "long.csv", &o, r, 8);
    assert_int_equal(n, 4);
    assert_int_equal(r[0].error, 0);
    assert_int_equal(r[1].error, VT_ETOOBIG);
    assert_int_equal(r[1].line, 3);
    assert_int_equal(r[2].error, VT_ETOOBIG);
    assert_int_equal(r[2].line, 4);
    assert_int_equal(r[3].error, 0);
    assert_int_equal(r[3].line, 5);
    assert_string_equal(r[3].id, "4");
    /* with the default limit (1 MiB) the same rows are fine */
    n = read_all(big, "long.csv", NULL, r, 8);
    assert_int_equal(n, 4);
    for (int i = 0; i < 4; i++) assert_int_equal(r[i].error, 0);
    free(big);
}

static void test_jsonl(void **st) {
    (void)st;
    const char *j =
        "{\"id\": \"a1\", \"gender\": \"Women\", \"articleType\": \"Dresses\", \"sizes\": [\"S\", \"M\"]}\n" /* 1 */
        "\n"                                                                                           /* 2 */
        "{\"id\": 42, \"baseColour\": \"Red\", \"image\": \"pics/42.png\"}\r\n"                        /* 3 */
        "{\"id\": \"a1\", \"gender\": \"Men\"}\n"                                                      /* 4: dup */
        "{\"gender\": \"Men\"}\n"                                                                      /* 5: no id */
        "{\"id\": \"b\", \"gender\": \n"                                                               /* 6: bad */
        "[1, 2]\n"                                                                                     /* 7 */
        "{\"id\": [1]}\n"                                                                              /* 8 */
        "{\"id\": \"c\", \"id\": \"d\"}\n"                                                             /* 9: dup key */
        "{\"id\": \"e\", \"x\": 1.5}";                                                                 /* 10 */
    got_row r[16];
    int n = read_all(j, "feed.jsonl", NULL, r, 16);
    assert_int_equal(n, 9);
    assert_int_equal(r[0].line, 1);
    assert_int_equal(r[0].error, 0);
    assert_string_equal(r[0].id, "a1");
    assert_string_equal(attr(r[0].attrs, "articleType"), "Dresses");
    assert_non_null(strstr(r[0].attrs, "[\"S\",\"M\"]")); /* nested values are kept */
    assert_int_equal(r[1].line, 3);
    assert_int_equal(r[1].error, 0);
    assert_string_equal(r[1].id, "42");
    assert_string_equal(r[1].image, ""); /* no such file in the current folder */
    assert_null(strstr(r[1].attrs, "image"));
    assert_int_equal(r[2].line, 4);
    assert_int_equal(r[2].error, VT_EEXIST);
    assert_int_equal(r[3].line, 5);
    assert_int_equal(r[3].error, VT_EINVAL);
    assert_int_equal(r[4].line, 6);
    assert_int_equal(r[4].error, VT_ECORRUPT);
    assert_non_null(strstr(r[4].reason, "invalid JSON"));
    assert_int_equal(r[5].line, 7);
    assert_int_equal(r[5].error, VT_ECORRUPT);
    assert_int_equal(r[6].line, 8);
    assert_int_equal(r[6].error, VT_EINVAL);
    assert_int_equal(r[7].line, 9);
    assert_int_equal(r[7].error, VT_ECORRUPT);
    assert_int_equal(r[8].line, 10);
    assert_int_equal(r[8].error, 0);
    assert_non_null(strstr(r[8].attrs, "1.5"));
    /* format detection by content when the name says nothing */
    vt_feed *f;
    assert_int_equal(vt_feed_open_mem(j, strlen(j), "feed.txt", NULL, &f), 0);
    assert_int_equal(vt_feed_get_format(f), VT_FEED_JSONL);
    vt_feed_close(f);
    const char *c = "id,x\n1,2\n";
    assert_int_equal(vt_feed_open_mem(c, strlen(c), "feed.txt", NULL, &f), 0);
    assert_int_equal(vt_feed_get_format(f), VT_FEED_CSV);
    vt_feed_close(f);
}

static void touch(const char *path) { assert_int_equal(tu_write(path, "x", 1), 0); }

static void test_image_lookup(void **st) {
    (void)st;
    char dir[PATH_MAX];
    mkdir(tu_path("imgs"), 0755);
    assert_non_null(realpath(tu_path("imgs"), dir)); /* image paths come back without links */
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/1.jpg", dir), touch(p);
    snprintf(p, sizeof p, "%s/2.PNG", dir), touch(p);
    snprintf(p, sizeof p, "%s/3.webp", dir), touch(p);
    snprintf(p, sizeof p, "%s/3.jpeg", dir), touch(p); /* .jpeg wins over .webp */
    snprintf(p, sizeof p, "%s/5.jpg", dir);
    mkdir(p, 0755); /* a folder is not an image */
    char buf[PATH_MAX + 64];
    assert_int_equal(vt_catalog_find_image(dir, "1", buf, sizeof buf), 0);
    snprintf(p, sizeof p, "%s/1.jpg", dir);
    assert_string_equal(buf, p);
    assert_int_equal(vt_catalog_find_image(dir, "4", buf, sizeof buf), VT_ENOTFOUND);
    assert_int_equal(vt_catalog_find_image(dir, "5", buf, sizeof buf), VT_EINVAL);
    assert_non_null(strstr(vt_errmsg(), "not a regular file (a folder)"));
    assert_int_equal(vt_catalog_find_image(dir, "../1", buf, sizeof buf), VT_EINVAL);
    assert_int_equal(vt_catalog_find_image(dir, "1", buf, 10), VT_ETOOBIG);
    assert_true(vt_catalog_id_ok("abc-12_x y"));
    assert_false(vt_catalog_id_ok(".hidden"));
    assert_false(vt_catalog_id_ok("a/b"));
    assert_false(vt_catalog_id_ok("a\\b"));
    assert_false(vt_catalog_id_ok("a\nb"));
    assert_false(vt_catalog_id_ok(""));
    assert_true(vt_catalog_id_ok("caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x91\x97"));
    assert_false(vt_catalog_id_ok("\xff\xfe"));
    assert_false(vt_catalog_id_ok("a\xc3"));        /* cut short */
    assert_false(vt_catalog_id_ok("\xc0\xaf"));      /* overlong "/" */
    assert_false(vt_catalog_id_ok("\xed\xa0\x80")); /* surrogate */

    /* feed rows get the image path; an explicit column is resolved against the feed's folder */
    const char *csv = "id,articleType\n1,Tshirts\n2,Shirts\n3,Tops\n4,Jeans\n";
    vt_feed_opts o = {.images_dir = dir};
    got_row r[8];
    int n = read_all(csv, "x.csv", &o, r, 8);
    assert_int_equal(n, 4);
    snprintf(p, sizeof p, "%s/1.jpg", dir);
    assert_string_equal(r[0].image, p);
    snprintf(p, sizeof p, "%s/2.PNG", dir);
    assert_string_equal(r[1].image, p);
    snprintf(p, sizeof p, "%s/3.jpeg", dir);
    assert_string_equal(r[2].image, p);
    assert_string_equal(r[3].image, "");
    assert_int_equal(r[3].error, 0); /* a missing image is the ingest's business, not a feed error */

    const char *csv2 = "id,image_path,colour\n7,pics/seven.png,red\n8,/abs/eight.jpg,blue\n9,,green\n";
    assert_int_equal(tu_write(tu_path("feed2.csv"), csv2, strlen(csv2)), 0);
    mkdir(tu_path("pics"), 0755);
    touch(tu_path("pics/seven.png"));
    vt_feed *f;
    assert_int_equal(vt_feed_open(tu_path("feed2.csv"), NULL, &f), 0);
    vt_feed_row row;
    assert_int_equal(vt_feed_next(f, &row), 1);
    assert_non_null(realpath(tu_path("pics/seven.png"), p));
    assert_string_equal(row.image, p);
    assert_null(row.image_error);
    assert_null(strstr(row.attrs, "image"));
    assert_int_equal(vt_feed_next(f, &row), 1); /* an absolute path is refused; the row stays good */
    assert_int_equal(row.error, 0);
    assert_null(row.image);
    assert_non_null(strstr(row.image_error, "absolute"));
    assert_int_equal(vt_feed_next(f, &row), 1);
    assert_null(row.image);
    assert_int_equal(vt_feed_next(f, &row), 0);
    vt_feed_close(f);
    /* a "path" column, resolved against images_dir */
    const char *csv3 = "id,path\nx,sub/x.png\n";
    snprintf(p, sizeof p, "%s/sub", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/sub/x.png", dir), touch(p);
    n = read_all(csv3, "y.csv", &o, r, 8);
    assert_int_equal(n, 1);
    snprintf(p, sizeof p, "%s/sub/x.png", dir);
    assert_string_equal(r[0].image, p);
    assert_string_equal(r[0].attrs, "{}");
}

/* A feed much larger than the read buffer streams in bounded memory, with exact line numbers. */
static void test_streaming_large(void **st) {
    (void)st;
    const char *path = tu_path("big.csv");
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fprintf(fp, "id,gender,articleType,productDisplayName\n");
    char name[401];
    memset(name, 'n', 400);
    name[400] = 0;
    const int N = 100000;
    long line = 2;
    for (int i = 0; i < N; i++) {
        if (i % 1000 == 7) fprintf(fp, "%d,Men,Tshirts,\"two\nlines %s\"\n", i, name), line += 2;
        else if (i % 1000 == 9) fprintf(fp, "%d,Men,Tshirts,x,y\n", i), line++;
        else fprintf(fp, "%d,Women,Dresses,%s\n", i, name), line++;
    }
    fclose(fp);
    long rss0 = tu_peak_rss_kib();
    vt_feed *f;
    assert_int_equal(vt_feed_open(path, NULL, &f), 0);
    vt_feed_row r;
    int n = 0, bad = 0, rc;
    long expect_line = 2;
    while ((rc = vt_feed_next(f, &r)) == 1) {
        assert_int_equal(r.line, expect_line);
        int i = atoi(r.id);
        assert_int_equal(i, n);
        expect_line += (i % 1000 == 7) ? 2 : 1;
        if (r.error) {
            assert_int_equal(i % 1000, 9);
            bad++;
        }
        n++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, N);
    assert_int_equal(bad, N / 1000);
    vt_feed_close(f);
    long grow = tu_peak_rss_kib() - rss0;
    struct stat sb;
    stat(path, &sb);
    /* the file is ~40 MB; the reader keeps a buffer and the set of ids, nowhere near the file */
    assert_true(sb.st_size > 40000000);
#if defined(__SANITIZE_ADDRESS__)
    (void)grow; /* AddressSanitizer keeps freed blocks in quarantine: peak RSS says nothing here */
#else
    printf("streaming a %lld-byte feed grew the peak RSS by %ld KiB\n", (long long)sb.st_size, grow);
    assert_true(grow < 20000);
#endif
}

/* The shared Kaggle styles.csv: every row good, every image found, attributes as in the file. */
static void test_shared_styles(void **st) {
    (void)st;
    const char *csv = tu_data("styles.csv");
    const char *imgs = tu_data("images");
    if (!csv || !imgs) {
        TU_SKIP("the shared catalog (styles.csv, images/) is missing");
        return;
    }
    vt_feed_opts o = {.images_dir = imgs};
    vt_feed *f;
    assert_int_equal(vt_feed_open(csv, &o, &f), 0);
    vt_feed_row r;
    int n = 0, rc, with_image = 0, tshirts = 0;
    while ((rc = vt_feed_next(f, &r)) == 1) {
        if (r.error) fprintf(stderr, "%s:%ld: %s\n", r.file, r.line, r.reason);
        assert_int_equal(r.error, 0);
        assert_int_equal(r.line, n + 2);
        with_image += r.image != NULL;
        if (n == 0) {
            assert_string_equal(r.id, "10000");
            assert_string_equal(attr(r.attrs, "articleType"), "Skirts");
            assert_string_equal(attr(r.attrs, "productDisplayName"), "Palm Tree Girls Sp Jace Sko White Skirts");
        }
        tshirts += !strcmp(attr(r.attrs, "articleType"), "Tshirts");
        n++;
    }
    assert_int_equal(rc, 0);
    vt_feed_close(f);
    assert_int_equal(n, 9583);
    assert_int_equal(with_image, 9583);
    assert_int_equal(tshirts, 1647); /* as the data set's README says */
}

/* The shared catalog through the feed into a store: the filter counts match the data set's
 * published statistics, and the labels of a filter are exactly the matching items. */
static void test_shared_into_store(void **st) {
    (void)st;
    const char *csv = tu_data("styles.csv");
    const char *imgs = tu_data("images");
    if (!csv || !imgs) {
        TU_SKIP("the shared catalog (styles.csv, images/) is missing");
        return;
    }
    vt_store *s;
    assert_int_equal(vt_store_open(tu_path("shared.db"), 0, &s), 0);
    vt_feed_opts o = {.images_dir = imgs};
    vt_feed *f;
    assert_int_equal(vt_feed_open(csv, &o, &f), 0);
    vt_feed_row r;
    int n = 0;
    double t0 = vt_now();
    assert_int_equal(vt_store_begin(s), 0);
    while (vt_feed_next(f, &r) == 1) {
        assert_int_equal(r.error, 0);
        vt_item it = {.id = (char *)r.id, .attrs = (char *)r.attrs, .image = (char *)r.image};
        assert_int_equal(vt_store_put(s, &it, NULL), 0);
        if (++n % 1000 == 0) {
            assert_int_equal(vt_store_commit(s), 0);
            assert_int_equal(vt_store_begin(s), 0);
        }
    }
    assert_int_equal(vt_store_commit(s), 0);
    vt_feed_close(f);
    printf("feed + store of %d rows: %.3f s\n", n, vt_now() - t0);
    static const struct { const char *cond; int64_t want; } cases[] = {
        {"articleType=Tshirts", 1647}, {"articleType=Shirts", 1361}, {"articleType=Casual Shoes", 697},
        {"gender=Men", 5964},          {"gender=Women", 3056},       {"gender=Unisex", 472},
        {"masterCategory=Apparel", 5353}, {"category=footwear", 2122}, {"masterCategory=Accessories", 2059},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vt_filter *flt;
        vt_filter_create(&flt);
        assert_int_equal(vt_filter_parse(flt, cases[i].cond), 0);
        int64_t c;
        assert_int_equal(vt_store_count(s, flt, &c), 0);
        if (c != cases[i].want) fprintf(stderr, "%s: %lld\n", cases[i].cond, (long long)c);
        assert_int_equal(c, cases[i].want);
        vt_filter_free(flt);
    }
    /* labels of gender=Women AND articleType=Tshirts: exactly the rows that say so */
    vt_filter *flt;
    vt_filter_create(&flt);
    vt_filter_parse(flt, "gender=Women");
    vt_filter_parse(flt, "articleType=Tshirts");
    vt_labels L;
    assert_int_equal(vt_store_labels(s, flt, &L), 0);
    vt_item_list all;
    assert_int_equal(vt_store_list(s, NULL, 0, 100000, &all), 0);
    assert_int_equal(all.n, 9583);
    size_t want = 0;
    for (size_t i = 0; i < all.n; i++) {
        int match = strstr(all.items[i].attrs, "\"gender\":\"Women\"") && strstr(all.items[i].attrs, "\"articleType\":\"Tshirts\"");
        want += match;
        assert_int_equal(!!vt_labels_contains(&L, all.items[i].label), match);
        assert_non_null(all.items[i].image);
    }
    assert_int_equal(L.n, want);
    assert_true(want > 100);
    vt_item_list_free(&all);
    vt_labels_free(&L);
    vt_filter_free(flt);
    vt_store_close(s);
}

/* Bad rows go to a JSON Lines report with file, line, id and reason. */
static void test_report(void **st) {
    (void)st;
    const char *csv = "id,name\n1,a\n2,b,c\n1,d\n,e\n\xff\xfe,f\n";
    vt_report *rep;
    assert_int_equal(vt_report_open(tu_path("errors.jsonl"), &rep), 0);
    vt_feed *f;
    assert_int_equal(vt_feed_open_mem(csv, strlen(csv), "feed.csv", NULL, &f), 0);
    vt_feed_row r;
    int good = 0;
    while (vt_feed_next(f, &r) == 1) {
        if (r.error) assert_int_equal(vt_report_add_row(rep, &r), 0);
        else good++;
    }
    vt_feed_close(f);
    assert_int_equal(vt_report_add_row(rep, &(vt_feed_row){0}), VT_EINVAL); /* not a bad row */
    assert_int_equal(vt_report_add(rep, "images/9.jpg", 0, "9", "not an image"), 0);
    assert_int_equal(vt_report_count(rep), 5);
    assert_int_equal(vt_report_close(rep), 0);
    assert_int_equal(good, 1);
    FILE *fp = fopen(tu_path("errors.jsonl"), "r");
    assert_non_null(fp);
    char line[1024];
    static const long want_line[] = {3, 4, 5, 6, 0};
    static const char *want_id[] = {"2", "1", NULL, "\xef\xbf\xbd\xef\xbf\xbd", "9"};
    static const char *want_reason[] = {"2 fields but the header has 2", "duplicate id '1'", "missing id", "invalid id", "not an image"};
    (void)want_reason;
    int n = 0;
    while (fgets(line, sizeof line, fp)) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        assert_non_null(o); /* every line is valid JSON, even with a non-UTF-8 id */
        assert_true(n < 5);
        json_t *l = json_object_get(o, "line");
        if (want_line[n]) assert_int_equal(json_integer_value(l), want_line[n]);
        else assert_null(l);
        json_t *id = json_object_get(o, "id");
        if (want_id[n]) assert_string_equal(json_string_value(id), want_id[n]);
        else assert_null(id);
        assert_string_equal(json_string_value(json_object_get(o, "file")), n < 4 ? "feed.csv" : "images/9.jpg");
        assert_non_null(json_string_value(json_object_get(o, "reason")));
        json_decref(o);
        n++;
    }
    fclose(fp);
    assert_int_equal(n, 5);
    assert_int_equal(vt_report_open("/nonexistent-dir/x.jsonl", &rep), VT_EIO);
}

/* Photo paths from a feed stay inside the images folder: no absolute path, no '..', no symbolic
 * link out of it, nothing but regular files; what is accepted comes back absolute and without
 * links, whatever the current folder. */
static void test_image_paths_confined(void **st) {
    (void)st;
    char dir[PATH_MAX], outside[PATH_MAX], p[PATH_MAX + 64], want[PATH_MAX + 64];
    mkdir(tu_path("shop"), 0755);
    mkdir(tu_path("shop/images"), 0755);
    mkdir(tu_path("shop/images/sub"), 0755);
    assert_non_null(realpath(tu_path("shop/images"), dir));
    touch(tu_path("secret.jpg")); /* beside the images folder, not in it */
    assert_non_null(realpath(tu_path("secret.jpg"), outside));
    snprintf(p, sizeof p, "%s/1.jpg", dir), touch(p);
    snprintf(p, sizeof p, "%s/sub/2.jpg", dir), touch(p);
    snprintf(p, sizeof p, "%s/out.jpg", dir);
    unlink(p);
    assert_int_equal(symlink(outside, p), 0); /* a link leaving the folder */
    snprintf(p, sizeof p, "%s/up.jpg", dir);
    unlink(p);
    assert_int_equal(symlink("../../secret.jpg", p), 0); /* the same, relative */
    snprintf(p, sizeof p, "%s/in.jpg", dir);
    unlink(p);
    assert_int_equal(symlink("sub/2.jpg", p), 0); /* a link inside the folder is fine */
    snprintf(p, sizeof p, "%s/7.jpg", dir);       /* found by id, but a link out */
    unlink(p);
    assert_int_equal(symlink(outside, p), 0);
    snprintf(p, sizeof p, "%s/fifo.jpg", dir);
    unlink(p);
    assert_int_equal(mkfifo(p, 0644), 0);

    const char *csv = "id,image\n"
                      "a,/etc/passwd\n"          /* 2 */
                      "b,../../etc/hostname\n"   /* 3 */
                      "c,sub/../1.jpg\n"         /* 4 */
                      "d,out.jpg\n"              /* 5 */
                      "e,up.jpg\n"               /* 6 */
                      "f,fifo.jpg\n"             /* 7 */
                      "g,sub\n"                  /* 8 */
                      "h,in.jpg\n"               /* 9 */
                      "i,sub/2.jpg\n"            /* 10 */
                      "j,missing.jpg\n"          /* 11 */
                      "1,\n"                     /* 12: by id */
                      "7,\n";                    /* 13: by id, a link out */
    static const struct { const char *error; const char *image; } want_row[] = {
        {"absolute", NULL}, {"'..'", NULL}, {"'..'", NULL}, {"out of the images folder", NULL},
        {"out of the images folder", NULL}, {"not a regular file (a FIFO)", NULL}, {"not a regular file (a folder)", NULL},
        {NULL, "sub/2.jpg"}, {NULL, "sub/2.jpg"}, {NULL, NULL}, {NULL, "1.jpg"}, {"out of the images folder", NULL},
    };
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tu_path("shop")), 0); /* a relative images folder */
    vt_feed_opts o = {.images_dir = "images"};
    got_row r[16];
    int n = read_all(csv, "feed.csv", &o, r, 16);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(n, 12);
    for (int i = 0; i < n; i++) {
        assert_int_equal(r[i].error, 0); /* the row is good; only its photo is refused */
        if (want_row[i].error) {
            if (!strstr(r[i].image_error, want_row[i].error)) fprintf(stderr, "row %d: %s\n", i, r[i].image_error);
            assert_non_null(strstr(r[i].image_error, want_row[i].error));
        } else {
            assert_string_equal(r[i].image_error, "");
        }
        if (want_row[i].image) {
            snprintf(want, sizeof want, "%s/%s", dir, want_row[i].image);
            assert_string_equal(r[i].image, want); /* absolute, the link resolved */
        } else {
            assert_string_equal(r[i].image, "");
        }
    }
    /* the same checks directly */
    char buf[PATH_MAX];
    assert_int_equal(vt_catalog_image_path(dir, "1.jpg", buf, sizeof buf), 0);
    snprintf(want, sizeof want, "%s/1.jpg", dir);
    assert_string_equal(buf, want);
    assert_int_equal(vt_catalog_image_path(dir, "/etc/passwd", buf, sizeof buf), VT_EINVAL);
    assert_int_equal(vt_catalog_image_path(dir, "..", buf, sizeof buf), VT_EINVAL);
    assert_int_equal(vt_catalog_image_path(dir, ".", buf, sizeof buf), VT_EINVAL);
    assert_non_null(strstr(vt_errmsg(), "the images folder itself"));
    assert_int_equal(vt_catalog_image_path(dir, "out.jpg", buf, sizeof buf), VT_EINVAL);
    assert_int_equal(vt_catalog_image_path(dir, "fifo.jpg", buf, sizeof buf), VT_EINVAL);
    assert_int_equal(vt_catalog_image_path(dir, "missing.jpg", buf, sizeof buf), VT_ENOTFOUND);
    assert_int_equal(vt_catalog_image_path(tu_path("no-such-folder"), "1.jpg", buf, sizeof buf), VT_ENOENT);
    assert_int_equal(vt_catalog_image_path(dir, "1.jpg", buf, 4), VT_ETOOBIG);
    /* a missing images folder is an error when the feed is opened, not a rejection per row */
    vt_feed *f = NULL;
    vt_feed_opts bad = {.images_dir = tu_path("no-such-folder")};
    assert_int_equal(vt_feed_open_mem(csv, strlen(csv), "feed.csv", &bad, &f), VT_ENOENT);
    assert_non_null(strstr(vt_errmsg(), "no-such-folder"));
    assert_null(f);
    snprintf(p, sizeof p, "%s/1.jpg", dir);
    bad.images_dir = p;
    assert_int_equal(vt_feed_open_mem(csv, strlen(csv), "feed.csv", &bad, &f), VT_EINVAL);
    /* a folder is not a feed */
    assert_int_equal(vt_feed_open(tu_path("shop"), NULL, &f), VT_EINVAL);
    assert_non_null(strstr(vt_errmsg(), "folder"));
}

/* Strict CSV: malformed quoting is a bad row naming the lines it covers, and parsing resumes on
 * the next line; an unclosed quote makes one bad row of the rest of the feed instead of
 * silently swallowing it into a field. Every such row counts as a parse error. */
static void test_csv_strict_quoting(void **st) {
    (void)st;
    const char *csv = "id,name,colour\n"
                      "1,ok,red\n"               /* 2 */
                      "2,12\" wide,blue\n"       /* 3: a quote inside an unquoted field */
                      "3,\"closed\"junk,red\n"   /* 4: text after a closing quote */
                      "4,\"two\nlines\"x,red\n"  /* 5-6: the same, on a row's second line */
                      "5,fine,\"green\"\n"       /* 7 */
                      "6,\"never closed,red\n"   /* 8: swallows the rest */
                      "7,lost,red\n"             /* 9 */
                      "8,lost,red\n";            /* 10 */
    got_row r[16];
    vt_feed *f;
    int n = read_all(csv, "q.csv", NULL, r, 16);
    assert_int_equal(n, 6);
    assert_int_equal(r[0].error, 0);
    assert_int_equal(r[1].line, 3);
    assert_int_equal(r[1].error, VT_ECORRUPT);
    assert_non_null(strstr(r[1].reason, "malformed CSV quoting on line 3"));
    assert_int_equal(r[2].line, 4);
    assert_int_equal(r[2].error, VT_ECORRUPT);
    assert_int_equal(r[3].line, 5);
    assert_non_null(strstr(r[3].reason, "lines 5-6"));
    assert_int_equal(r[4].line, 7);
    assert_int_equal(r[4].error, 0);
    assert_string_equal(r[4].id, "5");
    assert_string_equal(attr(r[4].attrs, "colour"), "green");
    assert_int_equal(r[5].line, 8);
    assert_int_equal(r[5].error, VT_ECORRUPT);
    assert_string_equal(r[5].id, "6");
    assert_non_null(strstr(r[5].reason, "never closed: lines 8-10"));
    assert_int_equal(vt_feed_open_mem(csv, strlen(csv), "q.csv", NULL, &f), 0);
    vt_feed_row row;
    while (vt_feed_next(f, &row) == 1) {}
    assert_int_equal(vt_feed_parse_errors(f), 4);
    vt_feed_close(f);
    /* an over-long row is a parse error too; a duplicate id is not, nor a wrong field count that
     * leaves the id known (an unquoted comma in a later field) */
    const char *more = "id,name\n1,a,b\n2,b\n2,c\n3,\"long long long long long long\n4,d\n";
    vt_feed_opts o = {.max_row_bytes = 16};
    assert_int_equal(vt_feed_open_mem(more, strlen(more), "m.csv", &o, &f), 0);
    long errors = 0;
    while (vt_feed_next(f, &row) == 1) errors += row.error != 0;
    assert_int_equal(errors, 3);
    assert_int_equal(vt_feed_parse_errors(f), 1);
    vt_feed_close(f);
    const char *short_row = "name,id\nx\ny,2\n"; /* the id column never reached: unknown */
    assert_int_equal(vt_feed_open_mem(short_row, strlen(short_row), "s.csv", NULL, &f), 0);
    assert_int_equal(vt_feed_next(f, &row), 1);
    assert_int_equal(row.error, VT_ECORRUPT);
    assert_null(row.id);
    assert_int_equal(vt_feed_parse_errors(f), 1);
    vt_feed_close(f);
    /* the header itself */
    const char *hdr = "id,\"name\n1,a\n";
    assert_int_equal(vt_feed_open_mem(hdr, strlen(hdr), "h.csv", NULL, &f), VT_ECORRUPT);
    /* JSON Lines: a bad line is reported with its line number and counted */
    const char *j = "{\"id\": \"a\"}\n{\"id\": \"b\", \n{\"id\": \"c\"}\n[]\n";
    assert_int_equal(vt_feed_open_mem(j, strlen(j), "j.jsonl", NULL, &f), 0);
    long bad_line = 0;
    while (vt_feed_next(f, &row) == 1)
        if (row.error && !bad_line) bad_line = row.line;
    assert_int_equal(bad_line, 2);
    assert_int_equal(vt_feed_parse_errors(f), 2);
    vt_feed_close(f);
}

/* A set cancel flag stops the reading with VT_ECANCELED. */
static void test_feed_cancel(void **st) {
    (void)st;
    volatile sig_atomic_t stop = 0;
    const char *csv = "id,name\n1,a\n2,b\n3,c\n";
    vt_feed_opts o = {.cancel = &stop};
    vt_feed *f;
    assert_int_equal(vt_feed_open_mem(csv, strlen(csv), "c.csv", &o, &f), 0);
    vt_feed_row row;
    assert_int_equal(vt_feed_next(f, &row), 1);
    stop = 1;
    assert_int_equal(vt_feed_next(f, &row), VT_ECANCELED);
    vt_feed_close(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_good_and_bad_rows),
        cmocka_unit_test(test_csv_header_errors),
        cmocka_unit_test(test_csv_row_too_long),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_image_lookup),
        cmocka_unit_test(test_image_paths_confined),
        cmocka_unit_test(test_csv_strict_quoting),
        cmocka_unit_test(test_feed_cancel),
        cmocka_unit_test(test_streaming_large),
        cmocka_unit_test(test_shared_styles),
        cmocka_unit_test(test_report),
        cmocka_unit_test(test_shared_into_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
