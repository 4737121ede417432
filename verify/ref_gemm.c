/*
 * ref_gemm.c - the double-precision reference of y = x w^T that numerics.c holds the device's
 * f32 product to, and the sums of |x w| its rounding bounds scale with (doc/verify-speed.md).
 *
 * yr is summed in k order, as the plain loop `yr += (double)x * w` does, so it is that loop's
 * value bit for bit: every product of two floats is exact in double, so a fused a + x w rounds
 * once, as the plain add does. x is transposed once into [K][8] blocks of doubles, so that one
 * weight is read once for 8 rows of x and the 8 sums run side by side in vector lanes; rows are
 * spread over threads.
 *
 * The rows of x share their magnitudes (|x[i][c]| = a[c] for every i: numerics.c draws a
 * magnitude per column and a sign per value), so sum_c |x[i][c] w[c]| = sum_c a[c] |w[c]| is one
 * sum per row of w, not one per row of x: it is taken in 8 interleaved partial sums (lane l takes
 * the columns c = l mod 8 in c order; then ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))),
 * each product exact, so every path gives the same double.
 */
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MB 8 /* rows of x per block */
#define RW 8 /* rows of w per call (eight independent sums keep the fused multiply-adds busy) */

#pragma GCC optimize("O3", "fp-contract=fast")

typedef double v4d __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));
typedef long long v8l __attribute__((vector_size(64)));

uint32_t mp_ref_gemm_blocks(uint32_t m) { return (m + MB - 1) / MB; }

int mp_ref_gemm_x(const float *x, uint32_t m, uint64_t k, double *xt, double *a)
{
    uint32_t nb = mp_ref_gemm_blocks(m);
    memset(xt, 0, (size_t)(nb * k * MB) * sizeof *xt);
    for (uint64_t c = 0; c < k; c++) a[c] = m ? fabs((double)x[c]) : 0;
    for (uint32_t i = 0; i < m; i++)
        for (uint64_t c = 0; c < k; c++) {
            double v = (double)x[(uint64_t)i * k + c];
            if (fabs(v) != a[c]) return 0;
            xt[((uint64_t)(i / MB) * k + c) * MB + i % MB] = v;
        }
    return 1;
}

/* Columns [c0, c0 + n) of w (c0 a multiple of 8): w in double into d (when not NULL), and the
 * lanes of sum a |w| (the header) when lanes is not NULL. Inlined into each build below, so
 * built for its target. */
__attribute__((always_inline)) static inline void convert_abs(const float *restrict w, uint64_t c0, uint64_t n,
                                                               const double *restrict a, double *restrict d,
                                                               double *restrict lanes)
{
    if (!lanes) {
        for (uint64_t c = 0; c < n; c++) d[c] = (double)w[c0 + c];
        return;
    }
    v8d acc; /* the lanes carried in from the columns before: each lane's sum in c order */
    memcpy(&acc, lanes, 64);
    uint64_t c = 0;
    for (; c + 8 <= n; c += 8) {
        v8f f;
        v8d v, av;
        memcpy(&f, w + c0 + c, 32);
        v = __builtin_convertvector(f, v8d);
        if (d) memcpy(d + c, &v, 64);
        memcpy(&av, a + c0 + c, 64);
        acc += av * (v8d)((v8l)v & 0x7fffffffffffffffLL);
    }
    double l[8];
    memcpy(l, &acc, 64);
    for (; c < n; c++) {
        double v = (double)w[c0 + c];
        if (d) d[c] = v;
        l[c % 8] += a[c0 + c] * fabs(v);
    }
    memcpy(lanes, l, 64);
}

/* Rows w[0..3] against one block of 8 rows of x, all k columns: sums into yr[4][8], eight
 * vectors of four doubles side by side (GCC vector extensions), and the lanes of their sums of
 * a |w|. Built twice: for AVX2 with FMA, picked when the CPU has both, and for the baseline. */
#define ROWS4(NAME, ATTR)                                                                        \
    ATTR static void NAME(const float *const w[4], uint64_t k, const double *restrict xt,         \
                          const double *restrict a, double yr[4][MB], double lanes[4][8])        \
    {                                                                                            \
        v4d y0l = {0}, y0h = {0}, y1l = {0}, y1h = {0}, y2l = {0}, y2h = {0}, y3l = {0}, y3h = {0}; \
        for (uint64_t c = 0; c < k; c++) {                                                       \
            double d0 = (double)w[0][c], d1 = (double)w[1][c], d2 = (double)w[2][c], d3 = (double)w[3][c]; \
            v4d xl, xh;                                                                          \
            memcpy(&xl, xt + c * MB, 32), memcpy(&xh, xt + c * MB + 4, 32);                      \
            y0l += xl * d0, y0h += xh * d0, y1l += xl * d1, y1h += xh * d1;                      \
            y2l += xl * d2, y2h += xh * d2, y3l += xl * d3, y3h += xh * d3;                      \
        }                                                                                        \
        memcpy(yr[0], &y0l, 32), memcpy(yr[0] + 4, &y0h, 32), memcpy(yr[1], &y1l, 32);          \
        memcpy(yr[1] + 4, &y1h, 32), memcpy(yr[2], &y2l, 32), memcpy(yr[2] + 4, &y2h, 32);       \
        memcpy(yr[3], &y3l, 32), memcpy(yr[3] + 4, &y3h, 32);                                    \
        if (lanes)                                                                               \
            for (int i = 0; i < 4; i++) convert_abs(w[i], 0, k, a, NULL, lanes[i]);             \
    }
ROWS4(rows4_fma, __attribute__((target("avx2,fma"))))
ROWS4(rows4_base, )

/* The same sums with the 8 rows of x in one vector of eight doubles (AVX-512F), eight rows of w
 * at a time: eight independent sums, each lane's still in k order. Columns [c0, c0 + n) only,
 * n <= KC, the sums carried in acc from the columns before: the caller runs every row of a
 * tile over one KC-column slice of x (16 KiB, in the L1 cache) before the next slice. w is
 * converted to double first, so that every fused multiply-add reads its factor with an
 * embedded broadcast; the lanes of a |w| come with that conversion. */
#define KC 256 /* columns of w converted at a time (16 KiB on the stack) */
__attribute__((target("avx512f"))) static void rows8_512(const float *const w[RW], uint64_t c0, uint64_t n,
                                                         const double *restrict xt, const double *restrict a,
                                                         double acc[RW][MB], double lanes[RW][8])
{
    v8d y0, y1, y2, y3, y4, y5, y6, y7;
    memcpy(&y0, acc[0], 64), memcpy(&y1, acc[1], 64), memcpy(&y2, acc[2], 64), memcpy(&y3, acc[3], 64);
    memcpy(&y4, acc[4], 64), memcpy(&y5, acc[5], 64), memcpy(&y6, acc[6], 64), memcpy(&y7, acc[7], 64);
    double d[RW][KC];
    for (int i = 0; i < RW; i++) convert_abs(w[i], c0, n, a, d[i], lanes ? lanes[i] : NULL);
    const double *xc = xt + c0 * MB;
    for (uint64_t c = 0; c < n; c++) {
        v8d x;
        memcpy(&x, xc + c * MB, 64);
        y0 += x * d[0][c], y1 += x * d[1][c], y2 += x * d[2][c], y3 += x * d[3][c];
        y4 += x * d[4][c], y5 += x * d[5][c], y6 += x * d[6][c], y7 += x * d[7][c];
    }
    memcpy(acc[0], &y0, 64), memcpy(acc[1], &y1, 64), memcpy(acc[2], &y2, 64), memcpy(acc[3], &y3, 64);
    memcpy(acc[4], &y4, 64), memcpy(acc[5], &y5, 64), memcpy(acc[6], &y6, 64), memcpy(acc[7], &y7, 64);
}

#define OG 4 /* groups of RW rows that share each slice of x (AVX-512 path) */

static double lanes_sum(const double l[8]) { return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])); }

/* Rows of groups p0 .. p1 - 1 (RW rows each): their sums into yr and s ([m][nrows]). */
static void groups(const float *w, uint32_t nrows, uint64_t k, const double *xt, const double *a, uint32_t m,
                   double *yr, double *s, long long p0, long long p1, int fast)
{
    uint32_t nb = mp_ref_gemm_blocks(m);
    uint64_t r[OG][RW];
    const float *wr[OG][RW];
    for (long long p = p0; p < p1; p++)
        for (uint64_t i = 0; i < RW; i++) { /* a short last group repeats its last row */
            r[p - p0][i] = (uint64_t)p * RW + i < nrows ? (uint64_t)p * RW + i : nrows - 1;
            wr[p - p0][i] = w + r[p - p0][i] * k;
        }
    double acc[OG][RW][MB], lanes[OG][RW][8];
    memset(lanes, 0, sizeof lanes);
    for (uint32_t blk = 0; blk < nb; blk++) {
        const double *xb = xt + (uint64_t)blk * k * MB;
        int first = blk == 0; /* the lanes of a |w| once, with the first block */
        if (fast == 2) {
            memset(acc, 0, sizeof acc);
            for (uint64_t c0 = 0; c0 < k; c0 += KC) /* each slice of x once for all the groups */
                for (long long p = p0; p < p1; p++)
                    rows8_512(wr[p - p0], c0, k - c0 < KC ? k - c0 : KC, xb, a, acc[p - p0],
                              first ? lanes[p - p0] : NULL);
        } else {
            for (long long p = p0; p < p1; p++)
                for (int h = 0; h < RW; h += 4) {
                    double (*l)[8] = first ? lanes[p - p0] + h : NULL;
                    if (fast) rows4_fma(wr[p - p0] + h, k, xb, a, acc[p - p0] + h, l);
                    else rows4_base(wr[p - p0] + h, k, xb, a, acc[p - p0] + h, l);
                }
        }
        for (long long p = p0; p < p1; p++)
            for (uint32_t j = 0; j < MB && blk * MB + j < m; j++)
                for (uint64_t i = 0; i < RW; i++)
                    yr[(uint64_t)(blk * MB + j) * nrows + r[p - p0][i]] = acc[p - p0][i][j];
    }
    for (long long p = p0; p < p1; p++)
        for (uint64_t i = 0; i < RW; i++) {
            double v = lanes_sum(lanes[p - p0][i]);
            for (uint32_t j = 0; j < m; j++) s[(uint64_t)j * nrows + r[p - p0][i]] = v;
        }
}

static int forced = -1; /* mp_ref_gemm_path */

/* The best path this CPU runs: 2 AVX-512F, 1 AVX2 with FMA, 0 the baseline. */
static int best_path(void)
{
    return __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

int mp_ref_gemm_path(int path)
{
    if (path > best_path()) return 0;
    forced = path;
    return 1;
}

void mp_ref_gemm(const float *w, uint32_t nrows, uint64_t k, const double *xt, const double *a, uint32_t m,
                 double *yr, double *s)
{
    long long ng = (nrows + RW - 1) / RW, parts = (ng + OG - 1) / OG;
    int fast = forced >= 0 ? forced : best_path();
#pragma omp parallel for schedule(static) if ((double)nrows * (double)k * m >= 1e6)
    for (long long g = 0; g < parts; g++)
        groups(w, nrows, k, xt, a, m, yr, s, g * OG, (g + 1) * OG < ng ? (g + 1) * OG : ng, fast);
}
