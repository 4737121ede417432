/*
 * dequant_fp4.c - the CPU reference for FP4 linears (NVFP4, MXFP4; doc/formats/fp4.md):
 *
 *   w[n][k] = e2m1(code(n, k)) * eff[n][k / g],   eff = s (MXFP4), s / global (compressed-
 *             tensors NVFP4), s * global (ModelOpt NVFP4)
 *
 * with s the block scale decoded exactly (E4M3, or 2^(e - 127)), one f32 division or product
 * for eff and one f32 product for w, in that association, as every producer's reference does
 * (§3, §4, §5); the caller's one rounding to the output dtype then gives their bits. Code 8 is
 * -0.0 except where the entry says its producer's table has +0.0 (ModelOpt); a 0xFF E8M0 scale is
 * 2^128 = inf (compressed-tensors), an exact ldexp by 128 (transformers' gpt-oss, fp4_ldexp) or
 * NaN (transformers' DeepSeek-V4 load, e8m0_nan; doc/formats/deepseek-v4.md). NaN block scales
 * stay NaN, nothing is clamped. Codes: element 2i in the low nibble of byte i of the row.
 */
#include "verify.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* The effective scales of rows [n0, n1): scale_cols per row; twice[i] marks a 0xFF E8M0 scale
 * of an fp4_ldexp entry, applied as 2^127 and then 2 (an exact ldexp by 128). */
static mp_errcode read_eff_scales(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1,
                                  float *eff, uint8_t *twice, mp_err *err)
{
    size_t cols = (size_t)q->scale_cols, n = (size_t)(n1 - n0) * cols;
    uint8_t *raw = malloc(n + 1);
    if (!raw) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = mp_st_read(m, q->scales, n0 * cols, raw, n, err);
    float g = 1.0f;
    uint8_t gb[4];
    if (rc == MP_OK && q->global_scale) rc = mp_st_read(m, q->global_scale, 0, gb, 4, err);
    if (rc == MP_OK && q->global_scale) g = mp_dtype_load_f32(gb, MP_DTYPE_F32);
    for (size_t i = 0; rc == MP_OK && i < n; i++) {
        float s = q->scheme->e8m0_nan ? mp_e8m0_to_f32(raw[i]) : mp_fp4_scale_to_f32(raw[i], q->scales->dtype);
        twice[i] = q->scheme->fp4_ldexp && raw[i] == 0xFF && q->scales->dtype != MP_DTYPE_F8_E4M3;
        if (twice[i]) s = mp_e8m0_to_f32(0xFE);
        if (q->global_scale) s = q->scheme->global_divides ? s / g : s * g;
        eff[i] = s;
    }
    free(raw);
    return rc;
}

mp_errcode mp_dequant_ref_fp4(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1,
                              float *out, mp_err *err)
{
    assert(q->scheme->elem == MP_ELEM_FP4 && n0 <= n1 && n1 <= q->n_rows && q->k_cols % 2 == 0);
    if (n0 == n1) return MP_OK;
    const uint64_t K = q->k_cols, g = q->block_k, cols = q->scale_cols, rb = K / 2;
    float *eff = malloc((size_t)((n1 - n0) * cols) * sizeof *eff);
    uint8_t *codes = malloc((size_t)((n1 - n0) * rb)), *twice = malloc((size_t)((n1 - n0) * cols));
    mp_errcode rc = eff && codes && twice ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = read_eff_scales(m, q, n0, n1, eff, twice, err);
    if (rc == MP_OK) rc = mp_st_read(m, q->qweight, n0 * rb, codes, (size_t)((n1 - n0) * rb), err);
    if (rc != MP_OK) goto cleanup;
    float lut[16];
    for (uint8_t c = 0; c < 16; c++) lut[c] = mp_e2m1_to_f32(c);
    if (q->scheme->fp4_zero_positive) lut[8] = 0.0f;
    long long rows = (long long)(n1 - n0);
#pragma omp parallel for schedule(static) if ((uint64_t)rows * K >= (1u << 20))
    for (long long j = 0; j < rows; j++) {
        const uint8_t *crow = codes + (uint64_t)j * rb;
        const float *erow = eff + (uint64_t)j * cols;
        const uint8_t *trow = twice + (uint64_t)j * cols;
        float *orow = out + (uint64_t)j * K;
        for (uint64_t k = 0; k < K; k++) {
            uint8_t b = crow[k / 2];
            orow[k] = lut[k % 2 ? b >> 4 : b & 0xFu] * erow[k / g];
            if (trow[k / g]) orow[k] *= 2.0f;
        }
    }
cleanup:
    free(eff);
    free(codes);
    free(twice);
    return rc;
}
