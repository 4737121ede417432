/*
 * scheme_modelopt.c - NVIDIA ModelOpt FP8 exports (quant_algo FP8, per tensor, and
 * FP8_PER_CHANNEL_PER_TOKEN), announced by hf_quant_config.json's "quantization" or by
 * config.json's quantization_config with quant_method "modelopt".
 *
 * Bytes: `weight` F8_E4M3 [N, K]; `weight_scale` F32 [] or [1] (per tensor: amax / 448) or [N]
 * (per channel); `input_scale` F32 [], recognised and not used. exclude_modules (or ignore)
 * holds module names with '*' wildcards. The scale multiplies, and ModelOpt's own dequantizer
 * rounds it to the model's dtype first: w = f32(code) * f32(round_model(scale)). Facts:
 * doc/formats/fp8.md.
 */
#include "scheme_internal.h"

#include <stdio.h>
#include <string.h>

extern const mp_scheme mp_scheme_modelopt_fp8;

static mp_errcode read_globs(qconfig *c, const cJSON *q, const char *key, mp_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(q, key);
    if (!v || cJSON_IsNull(v)) return MP_OK;
    if (!cJSON_IsArray(v)) return MP_BAD_CONFIG(err, c, "'%s' is not a list", key);
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!cJSON_IsString(e)) return MP_BAD_CONFIG(err, c, "'%s' holds a non-string", key);
        MP_FORWARD(mp_qc_glob_rule(c, e->valuestring, err));
    }
    return MP_OK;
}

static mp_errcode read_modelopt(qconfig *c, const cJSON *q, mp_err *err)
{
    const char *algo = mp_qc_str(q, "quant_algo");
    if (!algo) return MP_BAD_CONFIG(err, c, "'%s' is missing", "quant_algo");
    snprintf(c->format, sizeof c->format, "%s", algo);
    c->layout = &mp_scheme_modelopt_fp8;
    c->base.bits = 8;
    c->base.group_size = 0;
    if (strcmp(algo, "FP8") == 0) c->base.fscale = MP_FSCALE_TENSOR;
    else if (strcmp(algo, "FP8_PER_CHANNEL_PER_TOKEN") == 0 || strcmp(algo, "FP8_PC_PT") == 0)
        c->base.fscale = MP_FSCALE_CHANNEL;
    else
        return MP_UNSUPPORTED_CONFIG(err, c, "ModelOpt quant_algo '%.40s' is not supported (FP8 and "
                                             "FP8_PER_CHANNEL_PER_TOKEN are)", algo);
    MP_FORWARD(read_globs(c, q, "exclude_modules", err));
    return read_globs(c, q, "ignore", err);
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
    .method = MP_QM_MODELOPT,
    .read_config = read_modelopt,
    .pack = MP_QPACK_FLOAT8,
    .codes_name = "weight",
    .scales_name = "weight_scale",
    .codes = {.container_bytes = 1, .along_rows = 1, .string_is_n = 1},
    .zenc = MP_ZENC_IMPLIED,
    .scales_nk = 1,
    .bits_mask = 1u << 8,
    .bits_text = "8-bit floats",
    .check_shapes = shape_modelopt,
    .elem = MP_ELEM_FLOAT8,
    .is_codes = mp_t_is_float8,
    .input_scale_name = "input_scale",
    .fround = MP_FROUND_MODEL_DTYPE,
    .scale_text = "multiply",
};
