/*
 * dequant_bnb.c - the CPU reference for bitsandbytes linears, as bitsandbytes' own dequantizers
 * compute them (doc/formats/bitsandbytes.md §3, §5):
 *   - 4-bit (NF4, FP4): element t of the flattened [N, K] is code(t) = the high nibble of byte
 *     t/2 for even t, the low one for odd t; w = table[code] * absmax[t / blocksize] in f32,
 *     then rounded to the quant_state's dtype (dequantize_4bit's output); with double
 *     quantization absmax[b] = f32(nested_quant_map[c[b]] * nested_absmax[b / nested_block]),
 *     then + offset in f32 (dequantize_blockwise, then `absmax += offset`);
 *   - LLM.int8: w = f32(f32(q * SCB[n]) * f32(1/127)) (int8_vectorwise_dequant).
 * The caller rounds the f32 returned here once more, to the output dtype.
 */
#include "verify.h"

#include <assert.h>
#include <stdlib.h>

/* v rounded to dtype t (BF16 or F16) and back; v itself for any other t. */
static float round_dtype(float v, mp_dtype t)
{
    if (t == MP_DTYPE_BF16) return mp_bf16_to_f32(mp_f32_to_bf16(v));
    return t == MP_DTYPE_F16 ? mp_f16_to_f32(mp_f32_to_f16(v)) : v;
}

static float f32_at(const uint8_t *p) { return mp_dtype_load_f32(p, MP_DTYPE_F32); }

/* absmax of blocks [b0, b1) as f32: stored, or decoded from the nested codes. */
static mp_errcode read_absmax(const mp_st_model *m, const mp_qlinear *q, uint64_t b0, uint64_t b1, float *out,
                              mp_err *err)
{
    size_t n = (size_t)(b1 - b0);
    if (!q->nested) {
        uint8_t *raw = malloc(n * 4);
        mp_errcode rc = raw ? mp_st_read(m, q->scales, b0 * 4, raw, n * 4, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
        for (size_t i = 0; rc == MP_OK && i < n; i++) out[i] = f32_at(raw + 4 * i);
        free(raw);
        return rc;
    }
    uint64_t nb = q->nested_block, g0 = b0 / nb, g1 = (b1 - 1) / nb + 1;
    uint8_t map[1024], *codes = malloc(n), *nabs = malloc((size_t)(g1 - g0) * 4);
    mp_errcode rc = codes && nabs ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = mp_st_read(m, q->scales, b0, codes, n, err);
    if (rc == MP_OK) rc = mp_st_read(m, q->aux[1], g0 * 4, nabs, (size_t)(g1 - g0) * 4, err);
    if (rc == MP_OK) rc = mp_st_read(m, q->aux[2], 0, map, sizeof map, err);
    for (size_t i = 0; rc == MP_OK && i < n; i++) {
        float v = f32_at(map + 4 * codes[i]) * f32_at(nabs + 4 * ((b0 + i) / nb - g0));
        out[i] = v + q->nested_offset;
    }
    free(codes);
    free(nabs);
    return rc;
}

mp_errcode mp_dequant_ref_lut4(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1, float *out,
                               mp_err *err)
{
    assert(q->scheme->elem == MP_ELEM_LUT4 && n0 <= n1 && n1 <= q->n_rows);
    if (n0 == n1) return MP_OK;
    const uint64_t K = q->k_cols, bs = q->block_k, t0 = n0 * K, t1 = n1 * K;
    const uint64_t b0 = t0 / bs, b1 = (t1 - 1) / bs + 1, y0 = t0 / 2, y1 = (t1 - 1) / 2 + 1;
    float *absmax = malloc((size_t)(b1 - b0) * sizeof *absmax);
    uint8_t *bytes = malloc((size_t)(y1 - y0));
    mp_errcode rc = absmax && bytes ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = read_absmax(m, q, b0, b1, absmax, err);
    if (rc == MP_OK) rc = mp_st_read(m, q->qweight, y0, bytes, (size_t)(y1 - y0), err);
    for (uint64_t t = t0; rc == MP_OK && t < t1; t++) {
        unsigned byte = bytes[t / 2 - y0], code = t % 2 ? byte & 15u : byte >> 4;
        out[t - t0] = round_dtype(q->code_table[code] * absmax[t / bs - b0], q->round_dtype);
    }
    free(absmax);
    free(bytes);
    return rc;
}

mp_errcode mp_dequant_ref_int8_absmax(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1,
                                      float *out, mp_err *err)
{
    assert(q->scheme->elem == MP_ELEM_INT8_ABSMAX && n0 <= n1 && n1 <= q->n_rows);
    if (n0 == n1) return MP_OK;
    const uint64_t K = q->k_cols, rows = n1 - n0;
    const float inv127 = 0x1.020408p-7f; /* f32(1/127) = 0x3C010204 */
    uint8_t *scb = malloc((size_t)rows * 4);
    int8_t *codes = malloc((size_t)(rows * K));
    mp_errcode rc = scb && codes ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = mp_st_read(m, q->scales, n0 * 4, scb, (size_t)rows * 4, err);
    if (rc == MP_OK) rc = mp_st_read(m, q->qweight, n0 * K, codes, (size_t)(rows * K), err);
    for (uint64_t j = 0; rc == MP_OK && j < rows; j++) {
        float s = f32_at(scb + 4 * j);
        for (uint64_t k = 0; k < K; k++) out[j * K + k] = (float)codes[j * K + k] * s * inv127;
    }
    free(scb);
    free(codes);
    return rc;
}
