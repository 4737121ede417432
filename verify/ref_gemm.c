/*
 * ref_gemm.c - the double-precision reference of y = x w^T that numerics.c holds the device's
 * f32 product to, and the sums of |x w| its rounding bounds scale with (doc/verify-speed.md).
 *
 * Each output is summed in k order, as the plain loop `yr += (double)x * w; s += fabs(x * w)`
 * does, so the figures are those of that loop, bit for bit: every product of two floats is
 * exact in double, and |x| |w| = |x w|. What changed is the shape: x is transposed once into
 * [K][8] blocks of doubles, so that one weight is read once for 8 rows of x and the 8 sums run
 * side by side in vector lanes, two rows of w at a time; rows are spread over threads.
 */
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MB 8 /* rows of x per block */

#pragma GCC optimize("O3", "fp-contract=fast")

uint32_t mp_ref_gemm_blocks(uint32_t m) { return (m + MB - 1) / MB; }

void mp_ref_gemm_x(const float *x, uint32_t m, uint64_t k, double *xt, double *axt)
{
    uint32_t nb = mp_ref_gemm_blocks(m);
    memset(xt, 0, (size_t)(nb * k * MB) * sizeof *xt);
    memset(axt, 0, (size_t)(nb * k * MB) * sizeof *axt);
    for (uint32_t i = 0; i < m; i++)
        for (uint64_t c = 0; c < k; c++) {
            uint64_t at = ((uint64_t)(i / MB) * k + c) * MB + i % MB;
            xt[at] = (double)x[(uint64_t)i * k + c];
            axt[at] = fabs(xt[at]);
        }
}

/* Two rows w0, w1 of length k against one block of 8 rows of x: sums into yr[2][8], s[2][8],
 * eight vectors of four doubles side by side (GCC vector extensions). Contraction of a + x * w
 * into one fma is on for this file: it is a + x w rounded once, the same value, since the
 * product of two floats is exact in double. Built twice: for AVX2 with FMA, picked when the CPU
 * has both (gcc's arch= clones test the CPU model, not its features), and for the baseline. */
typedef double v4d __attribute__((vector_size(32)));


#define ROWS_BLOCK(NAME, ATTR)                                                                    \
    ATTR static void NAME(const float *restrict w0, const float *restrict w1, uint64_t k,         \
                          const double *restrict xt, const double *restrict axt, double yr[2][MB], \
                          double s[2][MB])                                                        \
    {                                                                                             \
        v4d a0l = {0}, a0h = {0}, b0l = {0}, b0h = {0}, a1l = {0}, a1h = {0}, b1l = {0}, b1h = {0}; \
        for (uint64_t c = 0; c < k; c++) {                                                        \
            double d0 = (double)w0[c], d1 = (double)w1[c], e0 = fabs(d0), e1 = fabs(d1);          \
            v4d v0 = {d0, d0, d0, d0}, v1 = {d1, d1, d1, d1}, f0 = {e0, e0, e0, e0}, f1 = {e1, e1, e1, e1}; \
            v4d xl, xh, al, ah;                                                                   \
            memcpy(&xl, xt + c * MB, 32), memcpy(&xh, xt + c * MB + 4, 32);                       \
            memcpy(&al, axt + c * MB, 32), memcpy(&ah, axt + c * MB + 4, 32);                     \
            a0l += xl * v0, a0h += xh * v0, b0l += al * f0, b0h += ah * f0;                       \
            a1l += xl * v1, a1h += xh * v1, b1l += al * f1, b1h += ah * f1;                       \
        }                                                                                         \
        memcpy(yr[0], &a0l, 32), memcpy(yr[0] + 4, &a0h, 32), memcpy(s[0], &b0l, 32);            \
        memcpy(s[0] + 4, &b0h, 32), memcpy(yr[1], &a1l, 32), memcpy(yr[1] + 4, &a1h, 32);         \
        memcpy(s[1], &b1l, 32), memcpy(s[1] + 4, &b1h, 32);                                       \
    }
ROWS_BLOCK(rows_block_fma, __attribute__((target("avx2,fma"))))
ROWS_BLOCK(rows_block_base, )

static void rows_block(const float *w0, const float *w1, uint64_t k, const double *xt, const double *axt,
                       double yr[2][MB], double s[2][MB], int fast)
{
    if (fast) rows_block_fma(w0, w1, k, xt, axt, yr, s);
    else rows_block_base(w0, w1, k, xt, axt, yr, s);
}

void mp_ref_gemm(const float *w, uint32_t nrows, uint64_t k, const double *xt, const double *axt, uint32_t m,
                 double *yr, double *s)
{
    long long pairs = (nrows + 1) / 2;
    uint32_t nb = mp_ref_gemm_blocks(m);
    int fast = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#pragma omp parallel for schedule(static) if ((double)nrows * (double)k * m >= 1e6)
    for (long long p = 0; p < pairs; p++) {
        uint64_t r0 = (uint64_t)p * 2, r1 = r0 + 1 < nrows ? r0 + 1 : r0; /* an odd last row twice */
        double a[2][MB], b[2][MB];
        for (uint32_t blk = 0; blk < nb; blk++) {
            rows_block(w + r0 * k, w + r1 * k, k, xt + (uint64_t)blk * k * MB, axt + (uint64_t)blk * k * MB, a, b, fast);
            for (uint32_t j = 0; j < MB && blk * MB + j < m; j++) {
                uint64_t row = (uint64_t)(blk * MB + j) * nrows;
                yr[row + r0] = a[0][j], s[row + r0] = b[0][j];
                yr[row + r1] = a[1][j], s[row + r1] = b[1][j];
            }
        }
    }
}
