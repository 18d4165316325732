/* fuzz_index.c: libFuzzer target over the index file loader (with and without checksums). */
#include "index/index_internal.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Runs a couple of searches on whatever loaded, so a structurally valid but hostile graph
 * (bad links, levels, entry point) would crash here rather than in production. */
static void exercise(vt_index *x) {
    vt_index_opts o;
    vt_index_get_opts(x, &o);
    if (o.dim > 4096) return;
    float *q = calloc((size_t)o.dim, sizeof *q);
    if (!q) return;
    for (int i = 0; i < o.dim; i++) q[i] = (float)((i * 7) % 5) - 2.0f;
    int64_t labels[8];
    float scores[8];
    int found;
    vt_search_opts so = {.ef = 16};
    vt_index_search(x, q, 8, &so, labels, scores, &found);
    vt_bitset *b;
    if (vt_bitset_create(64, &b) == VT_OK) {
        for (int i = 0; i < 64; i += 3) vt_bitset_set(b, (size_t)i);
        so.filter = b;
        vt_index_search(x, q, 8, &so, labels, scores, &found);
        vt_bitset_free(b);
    }
    free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vt_index *x = NULL;
    /* the public path: checksums make most mutations fail early */
    if (vt_index_load_mem(data, size, &x) == VT_OK) {
        exercise(x);
        vt_index_free(x);
    }
    /* the structural checks behind the checksum */
    x = NULL;
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    if (vt__index_parse(copy, size, 0, NULL, 0, &x) == VT_OK) {
        exercise(x);
        vt_index_free(x);
    }
    free(copy);
    return 0;
}
