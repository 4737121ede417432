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

/* The same sums with the 8 rows of x in one vector of eight doubles (AVX-512F), four rows of w
 * at a time: eight independent sums, enough to keep the fused multiply-adds' pipelines busy
 * (two rows would wait on each sum's latency), each lane's sum still in k order. Columns
 * [c0, c0 + n) only, n <= KC, the sums carried in acc[0] (yr) and acc[1] (s) from the columns
 * before: the caller runs every quad of a tile over one KC-column slice of x (32 KiB, in the L1
 * cache) before the next slice, instead of streaming the whole of x from L2 once per quad. */
typedef double v8d __attribute__((vector_size(64)));
#define KC 256 /* columns of w converted at a time (16 KiB on the stack) */
__attribute__((target("avx512f"))) static void rows_block_512(const float *const w[4], uint64_t c0, uint64_t n,
                                                              const double *restrict xt,
                                                              const double *restrict axt, double acc[2][4][MB])
{
    v8d a0, b0, a1, b1, a2, b2, a3, b3;
    memcpy(&a0, acc[0][0], 64), memcpy(&a1, acc[0][1], 64), memcpy(&a2, acc[0][2], 64), memcpy(&a3, acc[0][3], 64);
    memcpy(&b0, acc[1][0], 64), memcpy(&b1, acc[1][1], 64), memcpy(&b2, acc[1][2], 64), memcpy(&b3, acc[1][3], 64);
    double d[4][KC], e[4][KC]; /* w and |w| in double: each product's factor read by a broadcast load */
    for (int i = 0; i < 4; i++)
        for (uint64_t c = 0; c < n; c++) d[i][c] = (double)w[i][c0 + c], e[i][c] = fabs(d[i][c]);
    const double *xc = xt + c0 * MB, *ac = axt + c0 * MB;
    for (uint64_t c = 0; c < n; c++) {
        v8d x, ax;
        memcpy(&x, xc + c * MB, 64), memcpy(&ax, ac + c * MB, 64);
        a0 += x * d[0][c], b0 += ax * e[0][c], a1 += x * d[1][c], b1 += ax * e[1][c];
        a2 += x * d[2][c], b2 += ax * e[2][c], a3 += x * d[3][c], b3 += ax * e[3][c];
    }
    memcpy(acc[0][0], &a0, 64), memcpy(acc[0][1], &a1, 64), memcpy(acc[0][2], &a2, 64), memcpy(acc[0][3], &a3, 64);
    memcpy(acc[1][0], &b0, 64), memcpy(acc[1][1], &b1, 64), memcpy(acc[1][2], &b2, 64), memcpy(acc[1][3], &b3, 64);
}

#define QG 8 /* quads of rows that share each slice of x (AVX-512 path) */

/* Four rows w[0..3] against one block of 8 rows of x (AVX2 or the baseline). */
static void rows_block(const float *const w[4], uint64_t k, const double *xt, const double *axt, double yr[4][MB],
                       double s[4][MB], int fast)
{
    if (fast) {
        rows_block_fma(w[0], w[1], k, xt, axt, yr, s);
        rows_block_fma(w[2], w[3], k, xt, axt, yr + 2, s + 2);
    } else {
        rows_block_base(w[0], w[1], k, xt, axt, yr, s);
        rows_block_base(w[2], w[3], k, xt, axt, yr + 2, s + 2);
    }
}

/* Rows w[r[i]] of quads p0 .. p1 - 1: their sums into yr and s ([m][nrows]). */
static void quads(const float *w, uint32_t nrows, uint64_t k, const double *xt, const double *axt, uint32_t m,
                  double *yr, double *s, long long p0, long long p1, int fast)
{
    uint32_t nb = mp_ref_gemm_blocks(m);
    uint64_t r[QG][4];
    const float *wr[QG][4];
    for (long long p = p0; p < p1; p++)
        for (uint64_t i = 0; i < 4; i++) { /* a short last quad repeats its last row */
            r[p - p0][i] = (uint64_t)p * 4 + i < nrows ? (uint64_t)p * 4 + i : nrows - 1;
            wr[p - p0][i] = w + r[p - p0][i] * k;
        }
    double acc[QG][2][4][MB];
    for (uint32_t blk = 0; blk < nb; blk++) {
        const double *xb = xt + (uint64_t)blk * k * MB, *ab = axt + (uint64_t)blk * k * MB;
        if (fast == 2) {
            memset(acc, 0, sizeof acc);
            for (uint64_t c0 = 0; c0 < k; c0 += KC) /* each slice of x once for all the quads */
                for (long long p = p0; p < p1; p++)
                    rows_block_512(wr[p - p0], c0, k - c0 < KC ? k - c0 : KC, xb, ab, acc[p - p0]);
        } else {
            for (long long p = p0; p < p1; p++) rows_block(wr[p - p0], k, xb, ab, acc[p - p0][0], acc[p - p0][1], fast);
        }
        for (long long p = p0; p < p1; p++)
            for (uint32_t j = 0; j < MB && blk * MB + j < m; j++)
                for (uint64_t i = 0; i < 4; i++) {
                    uint64_t at = (uint64_t)(blk * MB + j) * nrows + r[p - p0][i];
                    yr[at] = acc[p - p0][0][i][j], s[at] = acc[p - p0][1][i][j];
                }
    }
}

void mp_ref_gemm(const float *w, uint32_t nrows, uint64_t k, const double *xt, const double *axt, uint32_t m,
                 double *yr, double *s)
{
    long long nq = (nrows + 3) / 4, groups = (nq + QG - 1) / QG;
    int fast = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#pragma omp parallel for schedule(static) if ((double)nrows * (double)k * m >= 1e6)
    for (long long g = 0; g < groups; g++)
        quads(w, nrows, k, xt, axt, m, yr, s, g * QG, (g + 1) * QG < nq ? (g + 1) * QG : nq, fast);
}
