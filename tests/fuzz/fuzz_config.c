/*
 * fuzz_config.c - config.json (the input) beside a fixed GPTQ-shaped checkpoint: the config
 * summary, the quantization config dialects (dynamic, extra_config, config_groups, regexes)
 * and the grouping of tensors into quantized linears with their shape checks. When the scheme
 * opens, the CPU reference dequantizes every linear.
 */
#include "fuzz_common.h"
#include "../../verify/verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A 4-bit GPTQ linear "l" with N = 8, K = 8, one group; plus a dense "lm_head.weight". */
static void checkpoint(void)
{
    const mp_tensor_spec specs[] = {
        {"l.qweight", MP_DTYPE_I32, 2, {1, 8}}, {"l.qzeros", MP_DTYPE_I32, 2, {1, 1}},
        {"l.scales", MP_DTYPE_F16, 2, {1, 8}},  {"l.g_idx", MP_DTYPE_I32, 1, {8}},
        {"lm_head.weight", MP_DTYPE_F16, 2, {2, 2}},
    };
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", fuzz_dir());
    mp_err err = MP_ERR_INIT;
    mp_st_writer *w = NULL;
    if (mp_st_writer_open(&w, path, specs, 5, NULL, 0, &err) != MP_OK) abort();
    uint8_t bytes[64];
    for (int i = 0; i < 64; i++) bytes[i] = (uint8_t)(i * 37 + 11);
    while (mp_st_writer_next(w) != SIZE_MAX) {
        uint64_t left = mp_st_writer_remaining(w);
        if (mp_st_writer_next(w) == 3) memset(bytes, 0, sizeof bytes); /* g_idx: group 0 */
        if (mp_st_writer_write(w, bytes, (size_t)left, &err) != MP_OK) abort();
    }
    if (mp_st_writer_finish(w, &err) != MP_OK) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        checkpoint();
        ready = 1;
    }
    fuzz_put("config.json", data, size);
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    mp_qmodel *qm = NULL;
    mp_hf_config cfg;
    if (mp_st_open(&m, fuzz_dir(), &err) != MP_OK) abort();
    (void)mp_hf_config_load(&cfg, fuzz_dir(), &err);
    if (mp_qmodel_open(&qm, m, &err) == MP_OK) {
        for (size_t i = 0; i < mp_qmodel_n_linears(qm); i++) {
            const mp_qlinear *q = mp_qmodel_linear(qm, i);
            float *out = malloc((size_t)(q->n_rows * q->k_cols) * sizeof *out + 1);
            (void)mp_dequant_ref(m, q, 0, q->n_rows, out, &err);
            free(out);
        }
        mp_qmodel_free(qm);
    }
    mp_st_close(m);
    return 0;
}
