/*
 * dequant_float.c - the CPU reference for float-quantized linears (FP8 codes with a grid of
 * scales): w[n][k] = code(n, k) * scale[n / block_n][k / block_k], rounded where each producer's
 * own dequantizer rounds (doc/formats/fp8.md "rounding"):
 *   - DeepSeek weight_dequant: f32(code) * f32(scale), one rounding, to the output dtype;
 *   - compressed-tensors _dequantize: the product in the scale's dtype (BF16 scales: exact in
 *     f32, then rounded to BF16; F16: to F16);
 *   - ModelOpt from_quantized_weight: code and scale in the model's dtype, so the scale is
 *     rounded to it first and the (exact) product rounds once, to the output.
 * The caller rounds the f32 returned here to the output dtype. Codes are decoded bit by bit
 * (common/half.c), NaN codes stay NaN, subnormals are exact, nothing is clamped.
 */
#include "verify.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* v rounded to dtype t (BF16 or F16) and back; v itself for any other t. */
static float round_to(float v, mp_dtype t)
{
    if (t == MP_DTYPE_BF16) return mp_bf16_to_f32(mp_f32_to_bf16(v));
    if (t == MP_DTYPE_F16) return mp_f16_to_f32(mp_f32_to_f16(v));
    return v;
}

/* The scales of grid rows [r0, r1), as f32, with the ModelOpt pre-rounding applied. */
static mp_errcode read_scales(const mp_st_model *m, const mp_qlinear *q, uint64_t r0, uint64_t r1,
                              float *out, mp_err *err)
{
    const mp_tensor *s = q->scales;
    size_t es = mp_dtype_bits(s->dtype) / 8, cols = (size_t)q->scale_cols;
    size_t n = (size_t)((r1 - r0) * cols);
    uint8_t *raw = malloc(n * es + 1);
    if (!raw) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = mp_st_read(m, s, r0 * cols * es, raw, n * es, err);
    mp_dtype pre = q->scheme->fround == MP_FROUND_MODEL_DTYPE ? q->round_dtype : MP_DTYPE_COUNT;
    for (size_t i = 0; rc == MP_OK && i < n; i++) out[i] = round_to(mp_dtype_load_f32(raw + i * es, s->dtype), pre);
    free(raw);
    return rc;
}

mp_errcode mp_dequant_ref_float(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1,
                                float *out, mp_err *err)
{
    assert(q->scheme->elem == MP_ELEM_FLOAT8 && n0 <= n1 && n1 <= q->n_rows);
    if (n0 == n1) return MP_OK;
    const uint64_t K = q->k_cols, bn = q->block_n, bk = q->block_k;
    uint64_t r0 = n0 / bn, r1 = (n1 - 1) / bn + 1;
    float *sc = malloc((size_t)((r1 - r0) * q->scale_cols) * sizeof *sc);
    uint8_t *codes = malloc((size_t)((n1 - n0) * K));
    mp_errcode rc = sc && codes ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = read_scales(m, q, r0, r1, sc, err);
    if (rc == MP_OK) rc = mp_st_read(m, q->qweight, n0 * K, codes, (size_t)((n1 - n0) * K), err);
    if (rc != MP_OK) goto cleanup;
    float (*decode)(uint8_t) = q->elem_dtype == MP_DTYPE_F8_E5M2 ? mp_e5m2_to_f32 : mp_e4m3_to_f32;
    mp_dtype post = q->scheme->fround == MP_FROUND_SCALE_DTYPE ? q->scales->dtype : MP_DTYPE_COUNT;
    long long rows = (long long)(n1 - n0);
#pragma omp parallel for schedule(static) if ((uint64_t)rows * K >= (1u << 20))
    for (long long j = 0; j < rows; j++) {
        uint64_t n = n0 + (uint64_t)j;
        const float *srow = sc + (n / bn - r0) * q->scale_cols;
        const uint8_t *crow = codes + (uint64_t)j * K;
        float *orow = out + (uint64_t)j * K;
        for (uint64_t k = 0; k < K; k++) orow[k] = round_to(mp_mul_nan_first(decode(crow[k]), srow[k / bk]), post);
    }
cleanup:
    free(sc);
    free(codes);
    return rc;
}
