/*
 * scheme_ct_mxfp4.c - compressed-tensors MXFP4 (the MXFP4 and MXFP4A16 presets, format
 * "mxfp4-pack-quantized"), reached through the compressed-tensors entry's config reader.
 *
 * Bytes (doc/formats/fp4.md §5): `weight_packed` U8 [N, K/2], E2M1 codes, element 2i in the low
 * nibble; `weight_scale` U8 [N, K/32], E8M0 exponents (bias 127); no global scale. w =
 * f32(code) * 2^(e - 127), exact (a 0xFF scale is 2^128 = inf, as decompress_mx_scale
 * computes it); code 8 is -0.0.
 */
#include "scheme_internal.h"

static int is_e8m0(const mp_tensor *t) { return t->dtype == MP_DTYPE_U8 || t->dtype == MP_DTYPE_F8_E8M0; }

static mp_errcode shape_ct_mxfp4(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    if (q->qzeros) return MP_REFUSE_LINEAR(q, "'weight_zero_point' of float weights is not supported");
    MP_FORWARD(mp_qc_fp4_codes(q, gs, err));
    MP_FORWARD(mp_qc_fp4_weight_shape(m, q, err));
    return mp_qc_fp4_scales(q, is_e8m0, "U8 (E8M0) or F8_E8M0", err);
}

const mp_scheme mp_scheme_ct_mxfp4 = {
    .name = "ct-mxfp4",
    .summary = "compressed-tensors mxfp4-pack-quantized: weight_packed E2M1 [N, K/2], weight_scale "
               "E8M0 per 32",
    MP_FP4_LAYOUT,
    .methods = NULL, /* announced as compressed-tensors with format mxfp4-pack-quantized */
    .method = MP_QM_CT,
    .codes_name = "weight_packed",
    .zeros_name = "weight_zero_point",
    .scales_name = "weight_scale",
    .shape_name = "weight_shape", /* not written by 0.20.1; checked when present */
    .check_shapes = shape_ct_mxfp4,
    .input_scale_name = "input_scale",
    .scale_text = "2^(e-127) multiply",
    .format_name = "mxfp4-pack-quantized",
    .fp4_group = 32,
    .kernel = "fp4",
};
