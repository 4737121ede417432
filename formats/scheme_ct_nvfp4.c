/*
 * scheme_ct_nvfp4.c - compressed-tensors NVFP4 (llm-compressor's NVFP4 and NVFP4A16 presets,
 * format "nvfp4-pack-quantized"), reached through the compressed-tensors entry's config reader
 * when a group's weights are 4-bit floats in that format.
 *
 * Bytes (doc/formats/fp4.md §3): `weight_packed` U8 [N, K/2], E2M1 codes, element 2i in the low
 * nibble of byte i; `weight_scale` F8_E4M3 [N, K/16], one per 16 elements of a row;
 * `weight_global_scale` F32 [1] (448 * 6 / amax), which DIVIDES: w = f32(code) *
 * (f32(scale) / global), rounded once to the output dtype, as NVFP4PackedCompressor.decompress
 * computes it; code 8 is -0.0. `input_global_scale` (static activations) is kept as it is.
 */
#include "scheme_internal.h"

static int is_e4m3(const mp_tensor *t) { return t->dtype == MP_DTYPE_F8_E4M3; }

static mp_errcode shape_ct_nvfp4(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    if (q->qzeros) return MP_REFUSE_LINEAR(q, "'weight_zero_point' of float weights is not supported");
    MP_FORWARD(mp_qc_fp4_codes(q, gs, err));
    MP_FORWARD(mp_qc_fp4_weight_shape(m, q, err));
    MP_FORWARD(mp_qc_fp4_scales(q, is_e4m3, "F8_E4M3", err));
    /* A 0-dim global scale would make torch divide in bf16 (§3): only [1] is what CT writes. */
    return mp_qc_fp4_global(q, 0, err);
}

const mp_scheme mp_scheme_ct_nvfp4 = {
    .name = "ct-nvfp4",
    .summary = "compressed-tensors nvfp4-pack-quantized: weight_packed E2M1 [N, K/2], weight_scale "
               "F8_E4M3 per 16, divided by weight_global_scale",
    MP_FP4_LAYOUT,
    .methods = NULL, /* announced as compressed-tensors with format nvfp4-pack-quantized */
    .method = MP_QM_CT,
    .codes_name = "weight_packed",
    .zeros_name = "weight_zero_point",
    .scales_name = "weight_scale",
    .shape_name = "weight_shape", /* not written by 0.20.1; checked when present */
    .check_shapes = shape_ct_nvfp4,
    .input_scale_name = "input_global_scale",
    .scale_text = "multiply, / global",
    .format_name = "nvfp4-pack-quantized",
    .fp4_group = 16,
    .global_scale_name = "weight_global_scale",
    .global_divides = 1,
    .kernel = "fp4",
};
