/*
 * verify.h - the public header of verify/: the CPU dequantization reference.
 *
 * The reference reads the *source* scheme's bits directly (research/quant-formats.md §7), with
 * no code shared with repack/, so that it can judge the layout transformer: a repack bug cannot
 * hide by being repeated here.
 */
#ifndef MP_VERIFY_H
#define MP_VERIFY_H

#include "../formats/formats.h"

/* Dequantizes rows [n0, n1) of linear q to f32, row-major [n1 - n0][K]:
 *   w[n][k] = s[n][g] * (q[n][k] - z[n][g]),  g = g_idx[k] (or k / group_size),
 * with z the stored zero plus the scheme's offset (GPTQ v1 stores z - 1), or 2^(b-1) when
 * implied. Exactly one f32 rounding: (float)(q - z) * (float)s, as numpy computes it. For AWQ
 * GEMM, n0 must be a multiple of 8. Reads only the bytes those rows need; the work is split
 * over rows with OpenMP. Scratch is at most mp_dequant_ref_scratch(q, n1 - n0) bytes. */
mp_errcode mp_dequant_ref(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1,
                          float *out, mp_err *err);
uint64_t mp_dequant_ref_scratch(const mp_qlinear *q, uint64_t rows);

#endif /* MP_VERIFY_H */
