/*
 * scheme_modelopt_nvfp4.c - NVIDIA ModelOpt NVFP4 exports (quant_algo "NVFP4" in
 * hf_quant_config.json, or quant_method "modelopt" in config.json), reached through the
 * ModelOpt entry's config reader.
 *
 * Bytes (doc/formats/fp4.md §4): `weight` U8 [N, K/2], E2M1 codes, element 2i in the low nibble
 * (the same packing as compressed-tensors); `weight_scale` F8_E4M3 [N, K/16]; `weight_scale_2`
 * F32 [] (amax / (6 * 448)), which MULTIPLIES: w = f32(code) * (f32(scale) * scale_2), as
 * NVFP4QTensor.dequantize computes it; its table makes code 8 +0.0. `input_scale` F32 [] and the
 * KV-cache `k_scale`/`v_scale` beside k_proj/v_proj belong to the linear and are not weights. BMM-style experts stored transposed ([E, K/2, N]) are refused by the 2-D rule.
 */
#include "scheme_internal.h"

static int is_e4m3(const mp_tensor *t) { return t->dtype == MP_DTYPE_F8_E4M3; }

static mp_errcode shape_modelopt_nvfp4(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    (void)m;
    MP_FORWARD(mp_qc_fp4_codes(q, gs, err));
    MP_FORWARD(mp_qc_fp4_scales(q, is_e4m3, "F8_E4M3", err));
    return mp_qc_fp4_global(q, 1, err);
}

const mp_scheme mp_scheme_modelopt_nvfp4 = {
    .name = "modelopt-nvfp4",
    .summary = "NVIDIA ModelOpt NVFP4 (hf_quant_config.json): weight E2M1 [N, K/2], weight_scale "
               "F8_E4M3 per 16, times weight_scale_2",
    MP_FP4_LAYOUT,
    .methods = NULL, /* announced as modelopt with quant_algo NVFP4 */
    .method = MP_QM_MODELOPT,
    .codes_name = "weight",
    .scales_name = "weight_scale",
    .check_shapes = shape_modelopt_nvfp4,
    .input_scale_name = "input_scale",
    .kv_scale_names = {"k_scale", "v_scale"},
    .scale_text = "multiply, * scale_2",
    .format_name = "NVFP4",
    .fp4_group = 16,
    .global_scale_name = "weight_scale_2",
    .fp4_zero_positive = 1,
    .kernel = "fp4",
};
