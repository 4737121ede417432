/*
 * scheme_dsv4.c - DeepSeek-V4 FP4/FP8 hybrid checkpoints (quant_method "fp8" with expert_dtype;
 * doc/formats/deepseek-v4.md). Two layouts in one checkpoint, under DeepSeek's bare names
 * (`embed.weight`, `layers.N.attn.wq_a`, `layers.N.ffn.experts.E.w1`, `hc_*`):
 *
 *   FP8 linears (attention, shared experts, compressor; routed experts on -Base):
 *     `<m>.weight` F8_E4M3 [N, K] row-major, `<m>.scale` [ceil(N/128), ceil(K/128)] row-major,
 *     F8_E8M0 (Flash/Pro: 2^(e-127), 0xFF NaN) or F32 (-Base); (128, 128) = weight_block_size,
 *     the last block row and column ragged. w = f32(code) * f32(scale), rounded once.
 *   FP4 routed experts (Flash/Pro), `layers.N.ffn.experts.E.w{1,2,3}`:
 *     `<m>.weight` I8 [N, K/2], two E2M1 codes a byte, element 2i in the low nibble;
 *     `<m>.scale` F8_E8M0 [N, K/32], one scale per 32 elements of a row.
 *     w = e2m1(code) * 2^(e-127) in f32, rounded once; code 8 is -0.0 and a 0xFF scale NaN, as
 *     transformers' Fp8Dequantize computes them (doc/formats/deepseek-v4.md "the judge").
 *
 * A linear is FP8 when its weight is a one-byte float (F8_E4M3; E5M2 decodes too) and FP4 when it
 * is one byte of codes (the companion entry, which refuses U8: V4 stores I8); a weight of any
 * other dtype without a scale is dense (layers that stay BF16, the router, embeddings, hc_*
 * mixing tensors). expert_dtype (top level in V4, inside quantization_config in V4.1) must be fp4
 * or fp8; a dense convert removes it with quantization_config.
 */
#include "scheme_internal.h"

#include <string.h>

extern const mp_scheme mp_scheme_dsv4, mp_scheme_dsv4_fp4;

static int is_e8m0(const mp_tensor *t) { return t->dtype == MP_DTYPE_F8_E8M0; }

mp_errcode mp_dsv4_read_config(qconfig *c, const cJSON *q, const char *experts, mp_err *err)
{
    if (strcmp(experts, "fp4") != 0 && strcmp(experts, "fp8") != 0)
        return MP_UNSUPPORTED_CONFIG(err, c, "expert_dtype '%.20s' is not known (DeepSeek-V4 has fp4 or fp8)",
                                     experts);
    if (c->base.fscale != MP_FSCALE_BLOCK)
        return MP_UNSUPPORTED_CONFIG(err, c, "DeepSeek-V4 (expert_dtype '%s') without 'weight_block_size'",
                                     experts);
    (void)q;
    c->layout = &mp_scheme_dsv4;
    return MP_OK;
}

/* A refusal names the safetensors file of the linear's scale: the tensors broke the rule, not
 * config.json. */
static mp_errcode in_file(const mp_st_model *m, const mp_qlinear *q, mp_errcode rc, mp_err *err)
{
    if (rc != MP_OK) mp_err_set_file(err, mp_st_file_name(m, q->scales->file));
    return rc;
}

static mp_errcode fp8_parts(mp_qlinear *q, int64_t gs, mp_err *err)
{
    MP_FORWARD(mp_qc_float_codes(q, gs, err));
    const mp_tensor *s = q->scales;
    if (s->dtype != MP_DTYPE_F8_E8M0 && s->dtype != MP_DTYPE_F32)
        return MP_REFUSE_LINEAR(q, "'scale' is %s, expected F8_E8M0 or F32", mp_dtype_name(s->dtype));
    if (s->n_dims != 2)
        return MP_REFUSE_LINEAR(q, "'scale' has %u dimensions, expected 2 (a block grid)", s->n_dims);
    return mp_qc_check_scale_shape(q, s, "scale", err);
}

static mp_errcode shape_fp8(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    return in_file(m, q, fp8_parts(q, gs, err), err);
}

static mp_errcode fp4_parts(mp_qlinear *q, int64_t gs, mp_err *err)
{
    MP_FORWARD(mp_qc_fp4_codes(q, gs, err));
    return mp_qc_fp4_scales(q, is_e8m0, "F8_E8M0", err);
}

static mp_errcode shape_fp4(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    return in_file(m, q, fp4_parts(q, gs, err), err);
}

const mp_scheme mp_scheme_dsv4 = {
    .name = "deepseek-v4",
    .summary = "DeepSeek-V4 FP8 linears (quant_method fp8 with expert_dtype): weight F8_E4M3 [N, K], "
               "scale E8M0 or F32 on a 128 x 128 ceil grid",
    .roles = MP_SCHEME_SOURCE,
    MP_FP8_LAYOUT,
    .method = MP_QM_FP8,
    .codes_name = "weight",
    .scales_name = "scale",
    .check_shapes = shape_fp8,
    .fround = MP_FROUND_F32,
    .scale_text = "multiply",
    .kernel = "fp8",
    .companion = &mp_scheme_dsv4_fp4,
    .config_drop = "expert_dtype",
};

const mp_scheme mp_scheme_dsv4_fp4 = {
    .name = "deepseek-v4-fp4",
    .summary = "DeepSeek-V4 FP4 routed experts: weight I8 [N, K/2] (E2M1, low nibble first), scale "
               "E8M0 [N, K/32]",
    MP_FP4_LAYOUT,
    .method = MP_QM_FP8,
    .codes_name = "weight",
    .scales_name = "scale",
    .check_shapes = shape_fp4,
    .scale_text = "2^(e-127) multiply",
    .fp4_group = 32,
    .e8m0_nan = 1,
    .fp4_codes_i8 = 1,
    .kernel = "fp4",
};
