/*
 * gptq.cl - GPTQ (AutoGPTQ, GPTQModel, AutoRound's GPTQ exports): int32 qweight [K*b/32, N],
 * column n an LSB-first bit string over k, so 3-bit codes straddle words; qzeros int32
 * [G, N*b/32], row g a bit string over n, storing z-1 (v1, P_ZOFF = 1) or z (v2); scales
 * [G, N]; g_idx for act-order (doc/formats/gptq.md).
 */
#include "mp_kernel.h"

static inline int gptq_code(__global const uchar *qw, __global const uint *P, uint n, uint k)
{
    __global const uint *col = (__global const uint *)qw + n;
    return (int)mp_bits(col, P[P_QSTRIDE], (ulong)k * P[P_BITS], P[P_BITS]);
}

static inline int gptq_zero(__global const uchar *zp, __global const uint *P, uint n, uint g)
{
    __global const uint *row = (__global const uint *)zp + (ulong)g * P[P_ZSTRIDE];
    return (int)mp_bits(row, 1, (ulong)n * P[P_BITS], P[P_BITS]);
}

static inline ulong gptq_scale_index(__global const uint *P, uint n, uint g)
{
    return (ulong)g * P[P_SSTRIDE] + n;
}

static inline int gptq_word8(__global const uchar *qw, __global const uint *P, uint n, uint k0, uint *v)
{
    __global const uint *col = (__global const uint *)qw + n;
    *v = col[(ulong)(k0 / 8) * P[P_QSTRIDE]]; /* 4 bits: no straddling */
    MP_PREFETCH(&col[(ulong)(k0 / 8 + 16 < P[P_K] / 8 ? k0 / 8 + 16 : k0 / 8) * P[P_QSTRIDE]]); /* a row apart */
    return 1;
}

static inline int gptq_col8(__global const uchar *qw, __global const uint *P, uint n0, uint k, uint *v,
                                uint *sh)
{
    (void)qw; (void)P; (void)n0; (void)k; (void)v; (void)sh;
    return 0; /* no word holds 8 rows of one k */
}

MP_KERNELS(gptq)
