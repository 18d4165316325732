/* fuzz_feed.c: libFuzzer target over the catalog feed reader (CSV with a header, JSON Lines). */
#include "vitrine.h"
#include <jansson.h>
#include <string.h>

static void quiet(vt_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

/* The first byte chooses the format and the row size limit; the rest is the feed. Checks the
 * reader's promises: every error has a reason, every good row has a safe id seen only once and
 * attributes that are a JSON object, and the counters add up. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        vt_log_set_handler(quiet, NULL);
        init = 1;
    }
    if (size < 1) return 0;
    uint8_t mode = data[0];
    vt_feed_opts o = {.format = (vt_feed_format)(mode % 3), .max_row_bytes = (mode & 4) ? 64 : 0};
    vt_feed *f;
    if (vt_feed_open_mem(data + 1, size - 1, (mode & 8) ? "fuzz.jsonl" : "fuzz.csv", &o, &f) != 0) return 0;
    json_t *seen = json_object();
    vt_feed_row r;
    long n = 0, bad = 0, last_line = 0;
    int rc;
    while ((rc = vt_feed_next(f, &r)) == 1) {
        n++;
        if (r.line < 1 || r.line < last_line) __builtin_trap();
        last_line = r.line;
        if (r.error) {
            bad++;
            if (!r.reason || !*r.reason) __builtin_trap();
            continue;
        }
        if (!r.id || !vt_catalog_id_ok(r.id) || !r.attrs) __builtin_trap();
        if (json_object_get(seen, r.id)) __builtin_trap();
        json_object_set_new(seen, r.id, json_true());
        json_t *a = json_loads(r.attrs, 0, NULL);
        if (!json_is_object(a)) __builtin_trap();
        json_decref(a);
    }
    long rows, errors;
    vt_feed_counts(f, &rows, &errors);
    if (rc < 0 || rows != n || errors != bad) __builtin_trap();
    json_decref(seen);
    vt_feed_close(f);
    return 0;
}
