/*
 * scheme_cutlass_int4.c - cutlass-int4, the layout of vllm-xpu-kernels' grouped int4 GEMM
 * (Intel GPUs), written by modelprep and read back as a source.
 *
 * Bytes: qweight uint8 [N, K/2], byte j of row n holding k = 2j in the low nibble and 2j+1 in
 * the high one; scales [N, G] in the activation dtype; no zero points (8 implied). Codes are u4
 * by default, or s4 (two's complement, u4 XOR 8) with --int4 s4 for callers that skip the
 * consumer's own conversion. Group sizes 32, 64, 128, 256. Facts: doc/formats/cutlass-int4.md.
 */
#include "scheme_internal.h"

#include <stdio.h>
#include <string.h>

/* cutlass-int4: qweight uint8 [N, K/2], scales [N, G], zero implied 8. */
static mp_errcode shape_cutlass(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    (void)m;
    const mp_tensor *w = q->qweight, *s = q->scales;
    MP_FORWARD(mp_qc_want_codes_scales(q, mp_t_is_byte, "U8", err));
    q->n_rows = w->shape[0];
    q->k_cols = w->shape[1] * 2;
    MP_FORWARD(mp_qc_derive_groups(q, gs, err));
    MP_FORWARD(mp_qc_want_dims(q, s, "scales", q->n_rows, q->n_groups, err));
    if (q->qzeros) return MP_REFUSE_LINEAR(q, "cutlass-int4 has no zero points, but the checkpoint has some");
    q->scales_nk = 1;
    q->zero = MP_QZERO_IMPLIED;
    return MP_OK;
}

static const char *const methods[] = {"modelprep", NULL};
static const uint32_t group_sizes[] = {32, 64, 128, 256, 0};

const mp_scheme mp_scheme_cutlass_int4 = {
    .name = "cutlass-int4",
    .summary = "vllm-xpu-kernels grouped GEMM: qweight uint8 [N, K/2], scales [N, G], zero 8",
    .roles = MP_SCHEME_SOURCE | MP_SCHEME_TARGET,
    .methods = methods,
    .method = MP_QM_MODELPREP,
    .read_config = mp_scheme_read_native,
    .pack = MP_QPACK_K2_BYTES,
    MP_QWEIGHT_NAMES,
    .codes = {.container_bytes = 1, .bits = 4, .along_rows = 1, .string_is_n = 1},
    .zenc = MP_ZENC_IMPLIED,
    .scales_nk = 1,
    MP_4BIT_ONLY,
    .act_order_ok = 0,
    .check_shapes = shape_cutlass,
    .n_multiple = 1,
    .k_multiple = 2,
    .group_sizes = group_sizes,
    .group_hint = "the XPU grouped GEMM takes 32, 64, 128 or 256",
    .scales = MP_SCALES_ACTIVATION,
    .signed_int4 = 1,
    .write_config = mp_scheme_write_native,
    .kernel = "cutlass_int4",
};
