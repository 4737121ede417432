/*
 * scheme_onednn_int4.c - onednn-int4, the layout of the oneDNN int4 GEMM in vllm-xpu-kernels
 * (Intel GPUs), written by modelprep and read back as a source.
 *
 * Bytes: qweight int32 [N, K/8], row n holding k sequentially, 8 nibbles a word (the GEMM takes
 * the [K/8, N] view, qweight.t()); scales [G, N] in the activation dtype; qzeros int32 [G, N/8]
 * storing z when asymmetric, else no qzeros and a scalar zero point 8. Facts:
 * doc/formats/onednn-int4.md.
 */
#include "scheme_internal.h"

#include <stdio.h>
#include <string.h>

/* onednn-int4: qweight int32 [N, K/8], scales [G, N], qzeros int32 [G, N/8] (raw z) if asym. */
static mp_errcode shape_onednn(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    (void)m;
    const mp_tensor *w = q->qweight, *s = q->scales;
    MP_FORWARD(mp_qc_want_codes_scales(q, mp_t_is_int32, "I32", err));
    q->n_rows = w->shape[0];
    q->k_cols = w->shape[1] * 8;
    MP_FORWARD(mp_qc_derive_groups(q, gs, err));
    MP_FORWARD(mp_qc_want_dims(q, s, "scales", q->n_groups, q->n_rows, err));
    int implied;
    MP_FORWARD(mp_qc_optional_zeros(q, &implied, err));
    if (implied) return MP_OK;
    if (q->qzeros->shape[0] != q->n_groups || q->qzeros->shape[1] * 8 != q->n_rows)
        return MP_REFUSE_LINEAR(q, "qzeros is [%llu, %llu], expected [%llu, %llu]",
                                (unsigned long long)q->qzeros->shape[0], (unsigned long long)q->qzeros->shape[1],
                                (unsigned long long)q->n_groups, (unsigned long long)(q->n_rows / 8));
    q->zero = MP_QZERO_GPTQ;
    return MP_OK;
}

static const char *const methods[] = {"modelprep", NULL};

const mp_scheme mp_scheme_onednn_int4 = {
    .name = "onednn-int4",
    .summary = "oneDNN int4 GEMM: qweight int32 [N, K/8], scales [G, N], qzeros [G, N/8] or 8",
    .roles = MP_SCHEME_SOURCE | MP_SCHEME_TARGET,
    .methods = methods,
    .method = MP_QM_MODELPREP,
    .read_config = mp_scheme_read_native,
    .pack = MP_QPACK_K8_WORDS,
    MP_QWEIGHT_NAMES,
    /* codes: row n, field k; zeros: row g, field n */
    .codes = {.container_bytes = 4, .bits = 4, .along_rows = 1, .string_is_n = 1},
    .zeros = {.container_bytes = 4, .bits = 4, .along_rows = 1, .string_is_n = 0},
    .zenc = MP_ZENC_RAW,
    .scales_nk = 0,
    MP_4BIT_ONLY,
    .act_order_ok = 0,
    .check_shapes = shape_onednn,
    .zeros_when_sym = 0,
    .n_multiple = 8,
    .k_multiple = 8,
    .scales = MP_SCALES_ACTIVATION,
    .write_config = mp_scheme_write_native,
    .kernel = "onednn_int4",
};
