/*
 * scheme_mxfp4.c - gpt-oss MXFP4 experts (quant_method "mxfp4", transformers' Mxfp4Config).
 *
 * Bytes (doc/formats/fp4.md §5): per MoE block, `<p>.experts.gate_up_proj_blocks` U8
 * [E, 2I, H/32, 16] and `down_proj_blocks` U8 [E, H, I/32, 16]: W [N, K] per expert, 32 E2M1
 * codes in 16 bytes, element 2i in the low nibble; `*_scales` U8 [E, N, K/32], E8M0 (bias 127).
 * w = ldexp(f32(code), e - 127), exact; code 8 is -0.0, and a 0xFF scale an exact ldexp by 128
 * (0.5 -> 2^127, 0 -> 0, larger -> inf), as transformers' _convert_moe_packed_tensors computes
 * them with torch.ldexp (measured, doc/formats/fp4.md §5).
 * Only the `*_blocks` and `*_scales` pairs are quantized: attention, router, embeddings, lm_head and
 * the BF16 `*_bias` stay as they are (modules_to_not_convert lists them, as '*' globs).
 * Dequantized, an expert tensor becomes what GptOssExperts loads: `<p>.experts.gate_up_proj`
 * [E, K, N], each expert's W transposed (§5).
 */
#include "scheme_internal.h"

#include <stdio.h>

extern const mp_scheme mp_scheme_mxfp4;

static mp_errcode read_mxfp4(qconfig *c, const cJSON *q, mp_err *err)
{
    snprintf(c->format, sizeof c->format, "%s", "mxfp4");
    MP_FORWARD(mp_qc_fp4_params(c, &mp_scheme_mxfp4, 0, "", &c->base, err));
    return mp_qc_glob_list(c, q, "modules_to_not_convert", err);
}

static int is_e8m0(const mp_tensor *t) { return t->dtype == MP_DTYPE_U8; }

static mp_errcode shape_mxfp4(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    (void)m;
    MP_FORWARD(mp_qc_fp4_codes(q, gs, err));
    return mp_qc_fp4_scales(q, is_e8m0, "U8 (E8M0)", err);
}

static const char *const methods[] = {"mxfp4", NULL};

const mp_scheme mp_scheme_mxfp4 = {
    .name = "mxfp4",
    .summary = "gpt-oss MXFP4 experts (quant_method mxfp4): *_blocks E2M1 [E, N, K/32, 16], "
               "*_scales E8M0 [E, N, K/32]",
    MP_FP4_LAYOUT,
    .methods = methods,
    .method = MP_QM_MXFP4,
    .read_config = read_mxfp4,
    .codes_name = "blocks",
    .scales_name = "scales",
    .check_shapes = shape_mxfp4,
    .scale_text = "2^(e-127) multiply",
    .format_name = "mxfp4",
    .fp4_group = 32,
    .fp4_ldexp = 1,
    .name_sep = '_',
    .dense_experts_kn = 1,
    .kernel = "fp4",
};
