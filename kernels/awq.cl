/*
 * awq.cl - AWQ GEMM: int32 qweight [K, N/8], nibble i of word (k, c) holding column
 * 8c + [0,2,4,6,1,3,5,7][i], so column n sits in nibble [0,4,1,5,2,6,3,7][n%8]; qzeros int32
 * [G, N/8] interleaved the same way, storing z; scales [G, N] (doc/formats/awq.md §1).
 */
#include "mp_kernel.h"

static inline uint awq_shift(uint n)
{
    /* the nibble of column n%8: 0,4,1,5,2,6,3,7 */
    return 4u * (((n % 8) >> 1) + 4u * (n % 2));
}

static inline int awq_code(__global const uchar *qw, __global const uint *P, uint n, uint k)
{
    uint word = ((__global const uint *)qw)[(ulong)k * P[P_QSTRIDE] + n / 8];
    return (int)((word >> awq_shift(n)) & 15u);
}

static inline int awq_zero(__global const uchar *zp, __global const uint *P, uint n, uint g)
{
    uint word = ((__global const uint *)zp)[(ulong)g * P[P_ZSTRIDE] + n / 8];
    return (int)((word >> awq_shift(n)) & 15u);
}

static inline ulong awq_scale_index(__global const uint *P, uint n, uint g)
{
    return (ulong)g * P[P_SSTRIDE] + n;
}

static inline int awq_word8(__global const uchar *qw, __global const uint *P, uint n, uint k0, uint *v)
{
    (void)qw; (void)P; (void)n; (void)k0; (void)v;
    return 0; /* a word holds 8 columns n of one k */
}

/* Rows n0 .. n0 + 7 (n0 % 8 == 0) of column k: one word, row n0 + j at bits sh[j] = awq_shift(j). */
static inline int awq_col8(__global const uchar *qw, __global const uint *P, uint n0, uint k, uint *v, uint *sh)
{
    __global const uint *w = (__global const uint *)qw + n0 / 8;
    for (uint j = 0; j < 8; j++) sh[j] = awq_shift(j);
    *v = w[(ulong)k * P[P_QSTRIDE]];
    MP_PREFETCH(&w[(ulong)(k + 16 < P[P_K] ? k + 16 : k) * P[P_QSTRIDE]]); /* a row of words apart per k */
    return 1;
}

MP_KERNELS(awq)
