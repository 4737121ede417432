/*
 * scheme_ct_float.c - compressed-tensors float-quantized (llm-compressor's FP8, FP8_DYNAMIC and
 * FP8_BLOCK presets), reached through the compressed-tensors entry's config reader when a
 * group's weights have type "float".
 *
 * Bytes: `weight` F8_E4M3 [N, K]; `weight_scale` in the model's dtype (BF16, F16 or F32, read
 * from the header) of shape [1] or [] (strategy tensor), [N, 1] (channel), [N, K/g] (group,
 * g must divide K) or [ceil(N/bn), ceil(K/bk)] (block, block_structure [bn, bk]); `input_scale`
 * for static activations, recognised and not used. The scale multiplies, and the product is
 * computed in the scale's dtype: w = round_sdt(f32(code) * f32(scale)). Facts:
 * doc/formats/fp8.md.
 */
#include "scheme_internal.h"

#include <stdio.h>
#include <string.h>

extern const mp_scheme mp_scheme_ct_float;

static mp_errcode block_structure(qconfig *c, const cJSON *g, const cJSON *w, qparams *p, mp_err *err)
{
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(w, "block_structure");
    int64_t b[2];
    if (!cJSON_IsArray(bs) || cJSON_GetArraySize(bs) != 2 ||
        !mp_json_get_i64(cJSON_GetArrayItem(bs, 0), 1, 1 << 20, &b[0]) ||
        !mp_json_get_i64(cJSON_GetArrayItem(bs, 1), 1, 1 << 20, &b[1]))
        return MP_BAD_CONFIG(err, c, "config group '%.100s': 'block_structure' is not two integers "
                                     "in [1, 2^20]", g->string);
    p->block_n = b[0];
    p->block_k = b[1];
    return MP_OK;
}

mp_errcode mp_ct_float_group(qconfig *c, const cJSON *g, const cJSON *w, const char *fmt, qparams *p,
                             mp_err *err)
{
    const mp_scheme *fp4 = mp_scheme_for_format(MP_QM_CT, fmt);
    if (fp4) return mp_ct_fp4_group(c, g, w, fp4, p, err); /* nvfp4-, mxfp4-pack-quantized */
    if (c->layout->elem == MP_ELEM_FP4)
        return MP_UNSUPPORTED_CONFIG(err, c, "config group '%.100s': ct-float beside %s; one float format "
                                             "per checkpoint is supported", g->string, c->layout->name);
    if (strcmp(fmt, "float-quantized") != 0 && strcmp(fmt, "naive-quantized") != 0)
        return MP_UNSUPPORTED_CONFIG(err, c,
                          "config group '%.100s': float format '%.40s' is not supported "
                          "(float-quantized, nvfp4-pack-quantized and mxfp4-pack-quantized are)",
                          g->string, fmt);
    if (p->bits != 8)
        return MP_UNSUPPORTED_CONFIG(err, c, "config group '%.100s': %d-bit float weights are not "
                                             "supported (8 is)", g->string, p->bits);
    if (p->sym == 0)
        return MP_UNSUPPORTED_CONFIG(err, c, "config group '%.100s': asymmetric float weights are "
                                             "not supported", g->string);
    p->sym = 1;
    const char *strategy = mp_qc_str(w, "strategy");
    if (!strategy) strategy = "tensor";
    if (strcmp(strategy, "tensor") == 0) p->fscale = MP_FSCALE_TENSOR;
    else if (strcmp(strategy, "channel") == 0) p->fscale = MP_FSCALE_CHANNEL;
    else if (strcmp(strategy, "group") == 0 && p->group_size > 0) p->fscale = MP_FSCALE_GROUP;
    else if (strcmp(strategy, "block") == 0) {
        p->fscale = MP_FSCALE_BLOCK;
        MP_FORWARD(block_structure(c, g, w, p, err));
    } else
        return MP_UNSUPPORTED_CONFIG(err, c,
                          "config group '%.100s': strategy '%.20s' is not supported for float "
                          "weights (tensor, channel, group with a group_size, block)",
                          g->string, strategy);
    c->layout = &mp_scheme_ct_float;
    snprintf(c->format, sizeof c->format, "%s", fmt);
    return MP_OK;
}

static mp_errcode shape_ct_float(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    (void)m;
    MP_FORWARD(mp_qc_float_codes(q, gs, err));
    if (q->qzeros) return MP_REFUSE_LINEAR(q, "'weight_zero_point' of float weights is not supported");
    return mp_qc_check_scale_grid(q, q->scales, "weight_scale", err);
}

const mp_scheme mp_scheme_ct_float = {
    .name = "ct-float",
    .summary = "compressed-tensors float-quantized: weight F8 [N, K], weight_scale per tensor, "
               "channel, group or block",
    .roles = MP_SCHEME_SOURCE,
    .methods = NULL, /* announced as compressed-tensors with float weights */
    MP_FP8_LAYOUT,
    .method = MP_QM_CT,
    .codes_name = "weight",
    .zeros_name = "weight_zero_point",
    .scales_name = "weight_scale",
    .check_shapes = shape_ct_float,
    .fround = MP_FROUND_SCALE_DTYPE,
    .scale_text = "multiply",
    .kernel = "fp8",
};
