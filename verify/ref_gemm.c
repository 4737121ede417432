/*
 * ref_gemm.c - the double-precision reference of y = x w^T that numerics.c holds the device's
 * f32 product to, and the sums of |x w| its rounding bounds scale with (doc/verify-speed.md).
 *
 * Each output is summed in k order, as the plain loop `yr += (double)x * w; s += fabs(x * w)`
 * does, so the figures are those of that loop, bit for bit: every product of two floats is
 * exact in double, and |x| |w| = |x w|. What changed is the shape: x is transposed once into
 * [K][8] blocks of doubles, so that one weight is read once for 8 rows of x and the 8 sums run
 * side by side in vector lanes; rows of w are spread over threads.
 */
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MB 8 /* rows of x per block */

#pragma GCC optimize("O3")
#ifdef MP_NO_TARGET_CLONES
#define REF_FN static void
#else
#define REF_FN static __attribute__((target_clones("arch=skylake-avx512", "avx2", "default"))) void
#endif

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

/* One row w of length k against one block of 8 rows of x: sums into yr[8], s[8]. */
REF_FN row_block(const float *restrict w, uint64_t k, const double *restrict xt, const double *restrict axt,
                 double *restrict yr, double *restrict s)
{
    double a[MB] = {0}, b[MB] = {0};
    for (uint64_t c = 0; c < k; c++) {
        double wd = (double)w[c], aw = fabs(wd);
        for (int j = 0; j < MB; j++) {
            a[j] += xt[c * MB + (uint64_t)j] * wd;
            b[j] += axt[c * MB + (uint64_t)j] * aw;
        }
    }
    memcpy(yr, a, sizeof a);
    memcpy(s, b, sizeof b);
}

void mp_ref_gemm(const float *w, uint32_t nrows, uint64_t k, const double *xt, const double *axt, uint32_t m,
                 double *yr, double *s)
{
    long long n = nrows;
    uint32_t nb = mp_ref_gemm_blocks(m);
#pragma omp parallel for schedule(static) if ((double)n * (double)k * m >= 1e6)
    for (long long r = 0; r < n; r++) {
        double a[MB], b[MB];
        for (uint32_t blk = 0; blk < nb; blk++) {
            row_block(w + (uint64_t)r * k, k, xt + (uint64_t)blk * k * MB, axt + (uint64_t)blk * k * MB, a, b);
            for (uint32_t j = 0; j < MB && blk * MB + j < m; j++) {
                yr[(uint64_t)(blk * MB + j) * nrows + (uint64_t)r] = a[j];
                s[(uint64_t)(blk * MB + j) * nrows + (uint64_t)r] = b[j];
            }
        }
    }
}
