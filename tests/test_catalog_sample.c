/* test_catalog_sample.c: the sample catalog: files, determinism, and that the pictures match the attributes. */
#include "testutil.h"
#include "core/internal.h"
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#define N 150

typedef struct {
    char id[16], type[32], colour[32];
    char image[600];
} item;

static const char *attr(const char *attrs, const char *key, char *buf, size_t cap) {
    json_t *o = json_loads(attrs, 0, NULL);
    assert_non_null(o);
    json_t *v = json_object_get(o, key);
    snprintf(buf, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
    json_decref(o);
    return buf;
}

/* Generates a catalog into tmp/<name> and reads it back through the feed reader. */
static int gen_and_read(const char *name, uint64_t seed, int n, item *items) {
    char dir[600], csv[700], imgs[700];
    snprintf(dir, sizeof dir, "%s", tu_path(name));
    vt_sample_opts o = {.n = n, .seed = seed};
    int rc = vt_sample_catalog(dir, &o);
    if (rc) fprintf(stderr, "%s\n", vt_errmsg());
    assert_int_equal(rc, 0);
    snprintf(csv, sizeof csv, "%s/styles.csv", dir);
    snprintf(imgs, sizeof imgs, "%s/images", dir);
    vt_feed_opts fo = {.images_dir = imgs};
    vt_feed *f;
    assert_int_equal(vt_feed_open(csv, &fo, &f), 0);
    vt_feed_row r;
    int k = 0;
    while ((rc = vt_feed_next(f, &r)) == 1) {
        assert_int_equal(r.error, 0);
        assert_non_null(r.image);
        assert_true(k < n);
        snprintf(items[k].id, sizeof items[k].id, "%s", r.id);
        attr(r.attrs, "articleType", items[k].type, sizeof items[k].type);
        attr(r.attrs, "baseColour", items[k].colour, sizeof items[k].colour);
        snprintf(items[k].image, sizeof items[k].image, "%s", r.image);
        k++;
    }
    assert_int_equal(rc, 0);
    vt_feed_close(f);
    return k;
}

static void test_files_and_header(void **st) {
    (void)st;
    item *items = calloc(N, sizeof *items);
    assert_int_equal(gen_and_read("s1", 7, N, items), N);
    uint8_t *buf;
    size_t len;
    char path[700];
    snprintf(path, sizeof path, "%s/styles.csv", tu_path("s1"));
    assert_int_equal(vt__read_file(path, 0, &buf, &len), 0);
    const char *hdr = "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName\n";
    assert_memory_equal(buf, hdr, strlen(hdr));
    free(buf);
    int types_seen[16] = {0}, ntypes = 0;
    for (int i = 0; i < N; i++) {
        vt_image img;
        assert_int_equal(vt_image_load(items[i].image, NULL, &img), 0);
        assert_int_equal(img.width, 224);
        assert_int_equal(img.height, 224);
        vt_image_free(&img);
        int t = -1;
        for (int k = 0; k < vt_sample_type_count(); k++)
            if (!strcmp(items[i].type, vt_sample_type_name(k))) t = k;
        assert_true(t >= 0);
        if (!types_seen[t]++) ntypes++;
    }
    assert_int_equal(ntypes, vt_sample_type_count()); /* every type appears in 150 items */
    free(items);
    /* bad options */
    vt_sample_opts o = {.n = -1};
    assert_int_equal(vt_sample_catalog(tu_path("bad"), &o), VT_EINVAL);
    o = (vt_sample_opts){.n = 2, .size = 8};
    assert_int_equal(vt_sample_catalog(tu_path("bad"), &o), VT_EINVAL);
    assert_int_equal(tu_write(tu_path("afile"), "x", 1), 0);
    o = (vt_sample_opts){.n = 2};
    assert_int_equal(vt_sample_catalog(tu_path("afile"), &o), VT_EIO);
}

static uint64_t hash_path(const char *p) {
    uint64_t h;
    assert_int_equal(vt_hash_file(p, &h), 0);
    return h;
}

static void test_deterministic(void **st) {
    (void)st;
    item *a = calloc(40, sizeof *a), *b = calloc(40, sizeof *b), *c = calloc(40, sizeof *c);
    assert_int_equal(gen_and_read("d1", 11, 40, a), 40);
    assert_int_equal(gen_and_read("d2", 11, 40, b), 40);
    assert_int_equal(gen_and_read("d3", 12, 40, c), 40);
    int same_c = 0;
    for (int i = 0; i < 40; i++) {
        assert_string_equal(a[i].type, b[i].type);
        assert_string_equal(a[i].colour, b[i].colour);
        assert_true(hash_path(a[i].image) == hash_path(b[i].image));
        same_c += hash_path(a[i].image) == hash_path(c[i].image);
    }
    assert_true(same_c < 4); /* another seed, other pictures */
    free(a), free(b), free(c);
}

/* Nearest palette colour of an RGB pixel, or -1 for the neutral colours the drawing uses besides
 * the base colour (a pattern's white or near-black, a shoe's sole), which are not baseColours. */
static int nearest_colour(const uint8_t *px) {
    static const uint8_t neutral[2][3] = {{240, 240, 240}, {45, 45, 45}};
    int best = -1;
    long bd = 1L << 40;
    for (int k = 0; k < vt_sample_colour_count() + 2; k++) {
        uint8_t c[3];
        if (k < vt_sample_colour_count()) vt_sample_colour_rgb(k, c);
        else memcpy(c, neutral[k - vt_sample_colour_count()], 3);
        long d = 0;
        for (int ch = 0; ch < 3; ch++) d += (long)(px[ch] - c[ch]) * (px[ch] - c[ch]);
        if (d < bd) bd = d, best = k;
    }
    return best < vt_sample_colour_count() ? best : -1;
}

#define G 24 /* silhouette grid */

/* The pixels that are not background decide: the most frequent palette colour among them, and
 * the silhouette as a G x G occupancy grid. */
static void analyse(const char *path, int *colour, float *sil) {
    vt_image img;
    assert_int_equal(vt_image_load(path, NULL, &img), 0);
    int votes[64] = {0};
    memset(sil, 0, G * G * sizeof *sil);
    for (int y = 0; y < img.height; y++)
        for (int x = 0; x < img.width; x++) {
            const uint8_t *p = img.data + ((size_t)y * img.width + x) * 3;
            if (p[0] > 238 && p[1] > 238 && p[2] > 238) continue;
            int c = nearest_colour(p);
            if (c >= 0) votes[c]++;
            sil[(y * G / img.height) * G + x * G / img.width] += 1.0f;
        }
    int best = 0;
    for (int k = 1; k < vt_sample_colour_count(); k++)
        if (votes[k] > votes[best]) best = k;
    *colour = best;
    float cell = (float)(img.width * img.height) / (G * G);
    for (int i = 0; i < G * G; i++) sil[i] /= cell;
    vt_image_free(&img);
}

static void test_drawn_matches_attributes(void **st) {
    (void)st;
    item *items = calloc(N, sizeof *items);
    assert_int_equal(gen_and_read("m1", getenv("VT_SAMPLE_SEED") ? strtoull(getenv("VT_SAMPLE_SEED"), NULL, 10) : 5, N, items), N);
    float *sil = malloc((size_t)N * G * G * sizeof *sil);
    int colour_ok = 0;
    for (int i = 0; i < N; i++) {
        int c;
        analyse(items[i].image, &c, sil + (size_t)i * G * G);
        if (!strcmp(vt_sample_colour_name(c), items[i].colour)) colour_ok++;
        else fprintf(stderr, "item %s: drawn %s, says %s (%s)\n", items[i].id, vt_sample_colour_name(c),
                     items[i].colour, items[i].type);
    }
    /* 1-nearest neighbour on silhouettes (leave one out): same article type */
    int type_ok = 0;
    for (int i = 0; i < N; i++) {
        int best = -1;
        float bd = 1e30f;
        for (int j = 0; j < N; j++) {
            if (j == i) continue;
            float d = 0;
            for (int k = 0; k < G * G; k++) {
                float e = sil[(size_t)i * G * G + k] - sil[(size_t)j * G * G + k];
                d += e * e;
            }
            if (d < bd) bd = d, best = j;
        }
        type_ok += !strcmp(items[i].type, items[best].type);
    }
    printf("sample catalog: colour of the pixels = baseColour for %d/%d, silhouette 1-NN shares the "
           "articleType for %d/%d\n", colour_ok, N, type_ok, N);
    assert_true(colour_ok >= N * 97 / 100);
    assert_true(type_ok >= N * 97 / 100);
    free(sil);
    free(items);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_and_header),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_drawn_matches_attributes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
