/*
 * scheme_modelopt.c - NVIDIA ModelOpt FP8 exports (quant_algo FP8, per tensor, and
 * FP8_PER_CHANNEL_PER_TOKEN), announced by hf_quant_config.json's "quantization" or by
 * config.json's quantization_config with quant_method "modelopt".
 *
 * Bytes: `weight` F8_E4M3 [N, K]; `weight_scale` F32 [] or [1] (per tensor: amax / 448) or [N]
 * (per channel); `input_scale` F32 [], recognised and not used. exclude_modules (or ignore)
 * holds module names with '*' wildcards. The scale multiplies, and ModelOpt's own dequantizer
 * rounds it to the model's dtype first: w = f32(code) * f32(round_model(scale)). Facts:
 * doc/formats/fp8.md. quant_algo NVFP4 picks the modelopt-nvfp4 entry
 * (scheme_modelopt_nvfp4.c).
 */
#include "scheme_internal.h"

#include <stdio.h>
#include <string.h>

extern const mp_scheme mp_scheme_modelopt_fp8;

/* An FP4 quant_algo (NVFP4): its own entry, with hf_quant_config.json's group_size checked. */
static mp_errcode read_fp4_algo(qconfig *c, const cJSON *q, const mp_scheme *L, mp_err *err)
{
    int64_t gs = 0;
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(q, "group_size");
    if (g && !cJSON_IsNull(g) && !mp_json_get_i64(g, 1, 1 << 20, &gs))
        return MP_BAD_CONFIG(err, c, "'group_size' is not an integer in [1, 2^20]");
    return mp_qc_fp4_params(c, L, gs, "", &c->base, err);
}

static mp_errcode read_modelopt(qconfig *c, const cJSON *q, mp_err *err)
{
    const char *algo = mp_qc_str(q, "quant_algo");
    if (!algo) return MP_BAD_CONFIG(err, c, "'%s' is missing", "quant_algo");
    snprintf(c->format, sizeof c->format, "%s", algo);
    c->layout = &mp_scheme_modelopt_fp8;
    c->base.bits = 8;
    c->base.group_size = 0;
    const mp_scheme *fp4 = mp_scheme_for_format(MP_QM_MODELOPT, algo);
    if (fp4) {
        c->base.bits = -1;
        MP_FORWARD(read_fp4_algo(c, q, fp4, err));
    } else if (strcmp(algo, "FP8") == 0) c->base.fscale = MP_FSCALE_TENSOR;
    else if (strcmp(algo, "FP8_PER_CHANNEL_PER_TOKEN") == 0 || strcmp(algo, "FP8_PC_PT") == 0)
        c->base.fscale = MP_FSCALE_CHANNEL;
    else
        return MP_UNSUPPORTED_CONFIG(err, c, "ModelOpt quant_algo '%.40s' is not supported (FP8, "
                                             "FP8_PER_CHANNEL_PER_TOKEN and NVFP4 are)", algo);
    MP_FORWARD(mp_qc_glob_list(c, q, "exclude_modules", err));
    return mp_qc_glob_list(c, q, "ignore", err);
}

static mp_errcode shape_modelopt(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    (void)m;
    MP_FORWARD(mp_qc_float_codes(q, gs, err));
    if (q->scales->dtype != MP_DTYPE_F32)
        return MP_REFUSE_LINEAR(q, "'weight_scale' is %s, expected F32", mp_dtype_name(q->scales->dtype));
    return mp_qc_check_scale_grid(q, q->scales, "weight_scale", err);
}

static const char *const methods[] = {"modelopt", NULL};

const mp_scheme mp_scheme_modelopt_fp8 = {
    .name = "modelopt-fp8",
    .summary = "NVIDIA ModelOpt FP8 (hf_quant_config.json): weight F8 [N, K], weight_scale F32 per "
               "tensor or channel",
    .roles = MP_SCHEME_SOURCE,
    .methods = methods,
    MP_FP8_LAYOUT,
    .method = MP_QM_MODELOPT,
    .read_config = read_modelopt,
    .codes_name = "weight",
    .scales_name = "weight_scale",
    .check_shapes = shape_modelopt,
    .kv_scale_names = {"k_scale", "v_scale"},
    .fround = MP_FROUND_MODEL_DTYPE,
    .scale_text = "multiply",
    .kernel = "fp8",
};
