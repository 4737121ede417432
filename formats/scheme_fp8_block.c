/*
 * scheme_fp8_block.c - FP8 block-scaled checkpoints (DeepSeek-V3/R1/V3.1/V3.2, transformers'
 * fine-grained FP8; quant_method "fp8").
 *
 * Bytes: per quantized linear, `weight` F8_E4M3 (or F8_E5M2) [N, K] row-major, and
 * `weight_scale_inv` F32 [ceil(N/bn), ceil(K/bk)] row-major with (bn, bk) = weight_block_size;
 * the last block row and column cover fewer elements when bn or bk does not divide N or K
 * (nothing is padded on disk). weight_block_size null means one scale for the tensor. The
 * "_inv" scale multiplies: w = f32(code) * scale, rounded once to the output dtype. A linear is
 * FP8 when its weight is one-byte float and its scale exists; every other tensor is dense. The
 * element type comes from the safetensors dtype, never from `fmt`. Facts: doc/formats/fp8.md.
 */
#include "scheme_internal.h"

#include <stdio.h>
#include <string.h>

extern const mp_scheme mp_scheme_fp8_block;

static mp_errcode read_fp8(qconfig *c, const cJSON *q, mp_err *err)
{
    const char *fmt = mp_qc_str(q, "fmt");
    snprintf(c->format, sizeof c->format, "%s", fmt ? fmt : "e4m3");
    c->layout = &mp_scheme_fp8_block;
    const char *act = mp_qc_str(q, "activation_scheme");
    if (act && strcmp(act, "dynamic") != 0 && strcmp(act, "static") != 0)
        return MP_BAD_CONFIG(err, c, "'activation_scheme' is '%.20s', expected dynamic or static", act);
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(q, "weight_block_size");
    c->base.bits = 8;
    if (!bs || cJSON_IsNull(bs)) {
        c->base.fscale = MP_FSCALE_TENSOR;
    } else {
        int64_t b[2];
        if (!cJSON_IsArray(bs) || cJSON_GetArraySize(bs) != 2 ||
            !mp_json_get_i64(cJSON_GetArrayItem(bs, 0), 1, 1 << 20, &b[0]) ||
            !mp_json_get_i64(cJSON_GetArrayItem(bs, 1), 1, 1 << 20, &b[1]))
            return MP_BAD_CONFIG(err, c, "'weight_block_size' is not two integers in [1, 2^20]");
        c->base.fscale = MP_FSCALE_BLOCK;
        c->base.block_n = b[0];
        c->base.block_k = b[1];
    }
    MP_FORWARD(mp_qc_skip_list(c, q, "modules_to_not_convert", err));
    MP_FORWARD(mp_qc_skip_list(c, q, "ignored_layers", err)); /* MiniMax's spelling */
    /* DeepSeek-V4 states expert_dtype at the top level, V4.1 inside quantization_config; either
     * makes it a V4 checkpoint (scheme_dsv4.c, doc/formats/deepseek-v4.md). */
    const char *experts = mp_qc_str(q, "expert_dtype");
    if (!experts && c->expert_dtype[0]) experts = c->expert_dtype;
    return experts ? mp_dsv4_read_config(c, q, experts, err) : MP_OK;
}

static mp_errcode shape_fp8(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    (void)m;
    MP_FORWARD(mp_qc_float_codes(q, gs, err));
    const mp_tensor *s = q->scales;
    if (s->dtype == MP_DTYPE_F8_E8M0)
        return MP_REFUSE_LINEAR(q, "'weight_scale_inv' is F8_E8M0 (DeepSeek-V4 ue8m0 scales), "
                                   "which is not supported (F32 is)");
    if (s->dtype != MP_DTYPE_F32)
        return MP_REFUSE_LINEAR(q, "'weight_scale_inv' is %s, expected F32", mp_dtype_name(s->dtype));
    return mp_qc_check_scale_grid(q, s, "weight_scale_inv", err);
}

static const char *const methods[] = {"fp8", NULL};

const mp_scheme mp_scheme_fp8_block = {
    .name = "fp8-block",
    .summary = "FP8 block-scaled (DeepSeek, quant_method fp8): weight F8 [N, K], weight_scale_inv "
               "F32 on a ceil grid",
    .roles = MP_SCHEME_SOURCE,
    .methods = methods,
    MP_FP8_LAYOUT,
    .method = MP_QM_FP8,
    .read_config = read_fp8,
    .codes_name = "weight",
    .scales_name = "weight_scale_inv",
    .check_shapes = shape_fp8,
    .fround = MP_FROUND_F32,
    .scale_text = "multiply",
    .kernel = "fp8",
};
