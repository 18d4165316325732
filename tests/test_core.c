/* test_core.c: errors, logging, random numbers, the thread pool and the progress reporter. */
#include "testutil.h"
#include "core/internal.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void test_errors(void **state) {
    (void)state;
    for (int e = VT_EPARTIAL; e <= VT_OK; e++) {
        assert_non_null(vt_strerror(e));
        assert_string_not_equal(vt_strerror(e), "unknown error");
    }
    assert_string_equal(vt_strerror(-999), "unknown error");
    assert_int_equal(vt__err(VT_ENOENT, "file %s gone", "a.jpg"), VT_ENOENT);
    assert_string_equal(vt_errmsg(), "file a.jpg gone");
    assert_int_equal(vt__err_prefix(VT_EIO, "reading %s", "feed"), VT_EIO);
    assert_string_equal(vt_errmsg(), "reading feed: file a.jpg gone");
}

static int g_lines;
static char g_last[256];
static void capture(vt_log_level l, const char *msg, void *user) {
    (void)l;
    (void)user;
    g_lines++;
    snprintf(g_last, sizeof g_last, "%s", msg);
}

static void test_logging(void **state) {
    (void)state;
    vt_log_set_handler(capture, NULL);
    vt_log_set_level(VT_LOG_WARN);
    vt_log(VT_LOG_INFO, "dropped %d", 1);
    assert_int_equal(g_lines, 0);
    vt_log(VT_LOG_ERROR, "kept %d", 2);
    assert_int_equal(g_lines, 1);
    assert_string_equal(g_last, "kept 2");
    vt_log_set_level(VT_LOG_DEBUG);
    vt_log(VT_LOG_DEBUG, "debug");
    assert_int_equal(g_lines, 2);
    vt_log_set_handler(NULL, NULL);
    vt_log_set_level(VT_LOG_WARN);
}

static void test_rng(void **state) {
    (void)state;
    vt_rng a, b;
    vt_rng_seed(&a, 123);
    vt_rng_seed(&b, 123);
    for (int i = 0; i < 100; i++) assert_true(vt_rng_next(&a) == vt_rng_next(&b));
    vt_rng_seed(&b, 124);
    assert_true(vt_rng_next(&a) != vt_rng_next(&b));
    /* uniform in [0,1) with mean near 0.5; below(n) within range and roughly balanced */
    double s = 0;
    int counts[7] = {0};
    for (int i = 0; i < 70000; i++) {
        double u = vt_rng_uniform(&a);
        assert_true(u >= 0 && u < 1);
        s += u;
        uint64_t k = vt_rng_below(&a, 7);
        assert_true(k < 7);
        counts[k]++;
    }
    assert_true(s / 70000 > 0.49 && s / 70000 < 0.51);
    for (int k = 0; k < 7; k++) assert_in_range(counts[k], 9500, 10500);
}

typedef struct {
    int *hits;
    int threads;
    int bad_worker;
} pool_ctx;

static void mark(void *p, size_t i, int worker) {
    pool_ctx *c = p;
    __atomic_add_fetch(&c->hits[i], 1, __ATOMIC_RELAXED);
    if (worker < 0 || worker >= c->threads) __atomic_store_n(&c->bad_worker, 1, __ATOMIC_RELAXED);
}

static void test_pool(void **state) {
    (void)state;
    for (int t = 1; t <= 4; t++) {
        vt_pool *p;
        assert_int_equal(vt_pool_create(t, &p), 0);
        assert_int_equal(vt_pool_threads(p), t);
        size_t sizes[] = {0, 1, 7, 1000, 100003};
        for (size_t s = 0; s < 5; s++) {
            size_t n = sizes[s];
            int *hits = calloc(n + 1, sizeof *hits);
            pool_ctx c = {hits, t, 0};
            for (int rep = 0; rep < 3; rep++) vt_pool_parallel_for(p, n, rep == 2 ? 1 : 0, mark, &c);
            for (size_t i = 0; i < n; i++) assert_int_equal(hits[i], 3);
            assert_int_equal(c.bad_worker, 0);
            free(hits);
        }
        vt_pool_free(p);
    }
    /* Start-up race: workers must be fully set up before they run. Many short-lived pools make
     * a worker that starts before its argument is written likely to show (ASan: use after free). */
    for (int rep = 0; rep < 300; rep++) {
        vt_pool *q;
        assert_int_equal(vt_pool_create(4, &q), 0);
        int hits[64] = {0};
        pool_ctx c = {hits, 4, 0};
        vt_pool_parallel_for(q, 64, 1, mark, &c);
        for (int i = 0; i < 64; i++) assert_int_equal(hits[i], 1);
        assert_int_equal(c.bad_worker, 0);
        vt_pool_free(q);
    }
    vt_pool *p;
    assert_int_equal(vt_pool_create(-1, &p), VT_EINVAL);
    assert_null(p);
    assert_int_equal(vt_pool_create(0, &p), 0);
    assert_int_equal(vt_pool_threads(p), vt_cpu_count());
    vt_pool_free(p);
    vt_pool_free(NULL);
}

/* The progress reporter writes plain periodic lines when stderr is not a terminal. */
static void test_progress_plain(void **state) {
    (void)state;
    const char *path = tu_path("progress.txt");
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    dup2(fileno(f), 2);
    setenv("VITRINE_PROGRESS_INTERVAL", "0.05", 1);
    vt_progress *pr;
    assert_int_equal(vt_progress_create("work", 10, "img", &pr), 0);
    for (int i = 0; i < 10; i++) {
        usleep(30000);
        vt_progress_add(pr, 1, "loss 0.5");
    }
    vt_progress_finish(pr);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(f);
    unsetenv("VITRINE_PROGRESS_INTERVAL");
    uint8_t *buf;
    size_t len;
    assert_int_equal(vt__read_file(path, 0, &buf, &len), 0);
    const char *s = (const char *)buf;
    assert_null(strchr(s, '\r')); /* no terminal redraws */
    assert_non_null(strstr(s, "work: 10/10 img (100%)"));
    assert_non_null(strstr(s, "img/s"));
    assert_non_null(strstr(s, "loss 0.5"));
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += s[i] == '\n';
    assert_true(lines >= 3 && lines <= 11);
    free(buf);
}

static void test_files(void **state) {
    (void)state;
    const char *p = tu_path("atomic.bin");
    assert_int_equal(vt__write_file_atomic(p, "hello", 5), 0);
    uint8_t *buf;
    size_t len;
    assert_int_equal(vt__read_file(p, 0, &buf, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "hello", 5);
    free(buf);
    assert_int_equal(vt__read_file(p, 3, &buf, &len), VT_ETOOBIG);
    assert_int_equal(vt__read_file(tu_path("nope"), 0, &buf, &len), VT_ENOENT);
    assert_int_equal(vt__read_file(tu_tmpdir(), 0, &buf, &len), VT_EIO);
    assert_int_equal(vt__write_file_atomic("/nonexistent-dir/x", "a", 1), VT_EIO);
}

static void test_buf(void **state) {
    (void)state;
    vt__buf b = {0};
    vt__buf_str(&b, "ab");
    vt__buf_add(&b, "cdef", 2);
    vt__buf_printf(&b, "-%d-", 42);
    for (int i = 0; i < 1000; i++) vt__buf_str(&b, "x");
    assert_int_equal(vt__buf_ok(&b), 0);
    assert_int_equal(b.len, 8 + 1000);
    assert_memory_equal(b.p, "abcd-42-x", 9);
    assert_int_equal(b.p[b.len], 0);
    char *t = vt__buf_take(&b);
    assert_non_null(t);
    assert_null(b.p);
    free(t);
    vt__buf e = {0};
    t = vt__buf_take(&e); /* nothing added: "" */
    assert_string_equal(t, "");
    free(t);
}

/* Inserts, looks up and removes ids in an order that makes long probe runs, checking against a
 * plain array after every removal (backward-shift deletion must not lose a member). */
static void test_idmap(void **state) {
    (void)state;
    vt__idmap *m;
    assert_int_equal(vt__idmap_create(&m), 0);
    enum { N = 3000 };
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "item-%d", i);
        assert_int_equal(vt__idmap_add(m, id, i * 10), 0);
    }
    assert_int_equal(vt__idmap_add(m, "item-7", 1), VT_EEXIST);
    assert_int_equal(vt__idmap_count(m), N);
    int64_t v;
    assert_true(vt__idmap_get(m, "item-7", &v));
    assert_int_equal(v, 70);
    assert_int_equal(vt__idmap_set(m, "item-7", 5), 0);
    assert_true(vt__idmap_get(m, "item-7", &v));
    assert_int_equal(v, 5);
    assert_false(vt__idmap_get(m, "nope", NULL));
    for (int i = 0; i < N; i += 3) {
        snprintf(id, sizeof id, "item-%d", i);
        assert_int_equal(vt__idmap_remove(m, id), 1);
        assert_int_equal(vt__idmap_remove(m, id), 0);
    }
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "item-%d", i);
        int present = vt__idmap_get(m, id, &v);
        assert_int_equal(present, i % 3 != 0);
        if (present && i != 7) assert_int_equal(v, i * 10);
    }
    assert_int_equal(vt__idmap_count(m), N - (N + 2) / 3);
    vt__idmap_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),   cmocka_unit_test(test_logging),        cmocka_unit_test(test_rng),
        cmocka_unit_test(test_pool),     cmocka_unit_test(test_progress_plain), cmocka_unit_test(test_files),
        cmocka_unit_test(test_buf),      cmocka_unit_test(test_idmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
