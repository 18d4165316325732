/* fuzz_decode.c: libFuzzer target over the image decode entry point (JPEG, PNG, WebP) and fit. */
#include "vitrine.h"

static void quiet(vt_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        vt_log_set_handler(quiet, NULL);
        init = 1;
    }
    /* A small pixel limit keeps each run fast; the limit logic itself is part of what is fuzzed. */
    vt_decode_opts o = {.max_pixels = 4u << 20, .min_long = (size & 1) ? 64 : 0, .fast = (int)(size & 2)};
    vt_image img;
    if (vt_image_decode(data, size, "fuzz", &o, &img) == 0) {
        vt_image sq;
        if (vt_image_fit(&img, 32, (size & 4) ? VT_FIT_STRETCH : VT_FIT_LETTERBOX, &sq) == 0) vt_image_free(&sq);
        vt_image_free(&img);
    } else if (img.data || img.width) {
        __builtin_trap(); /* a refusal must leave no partial output */
    }
    return 0;
}
