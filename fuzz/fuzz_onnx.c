/* fuzz_onnx.c: libFuzzer target over the ONNX loader (and, for small accepted models, planning and one run). */
#include "vitrine.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        vt_log_set_level(VT_LOG_OFF);
        init = 1;
    }
    vt_model_opts o = {1, 0};
    vt_model *m;
    if (vt_model_load_mem(data, size, "fuzz.onnx", &o, &m)) return 0;
    /* run models whose first input has a small static float shape */
    vt_model_io io;
    if (vt_model_param_count(m) < (1 << 20) && vt_model_num_inputs(m) == 1 && vt_model_input(m, 0, &io) == 0 &&
        io.dtype == 1 && io.rank >= 0 && io.rank <= 8) {
        vt_tensor t = {VT_DT_FLOAT, io.rank, {0}, NULL};
        size_t n = 1;
        int ok = 1;
        for (int i = 0; i < io.rank; i++) {
            int64_t d = io.shape[i] < 0 ? 1 : io.shape[i];
            if (d > 4096) ok = 0;
            t.shape[i] = d;
            n *= (size_t)(d ? d : 1);
            if (n > 4096) ok = 0;
        }
        if (ok) {
            t.data = calloc(n, sizeof(float));
            vt_tensor out[16];
            if (t.data && vt_model_run_tensors(m, 1, NULL, &t, 0, NULL, out) == 0)
                for (int i = 0; i < vt_model_num_outputs(m) && i < 16; i++) vt_tensor_free(&out[i]);
            free(t.data);
        }
    }
    vt_model_free(m);
    return 0;
}
