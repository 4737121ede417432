/*
 * cutlass_int4.cl - CUTLASS-style int4 (Intel XPU grouped GEMM): uint8 qweight [N, K/2], element
 * k in byte k/2 at shift 4*(k%2); scales [N, G]; zero implied 8. For s4 the nibble is two's
 * complement (u4 XOR 8), which P_XOR undoes (doc/formats/cutlass-int4.md §3).
 */
#include "mp_kernel.h"

static inline int cutlass_code(__global const uchar *qw, __global const uint *P, uint n, uint k)
{
    uint byte = qw[(ulong)n * P[P_QSTRIDE] + k / 2];
    return (int)(((byte >> (4 * (k % 2))) & 15u) ^ P[P_XOR]);
}

static inline int cutlass_zero(__global const uchar *zp, __global const uint *P, uint n, uint g)
{
    (void)zp; (void)P; (void)n; (void)g;
    return 8; /* the layout has no zero points */
}

static inline ulong cutlass_scale_index(__global const uint *P, uint n, uint g)
{
    return (ulong)n * P[P_SSTRIDE] + g;
}

static inline int cutlass_word8(__global const uchar *qw, __global const uint *P, uint n, uint k0, uint *v)
{
    /* bytes k0/2 .. k0/2 + 3, little-endian: code k0 + j at bits 4j; 4-byte aligned (K % 8 == 0) */
    if (P[P_QSTRIDE] % 4) return 0;
    *v = ((__global const uint *)qw)[((ulong)n * P[P_QSTRIDE] + k0 / 2) / 4];
    return 1;
}

static inline int cutlass_col8(__global const uchar *qw, __global const uint *P, uint n0, uint k, uint *v,
                                uint *sh)
{
    (void)qw; (void)P; (void)n0; (void)k; (void)v; (void)sh;
    return 0; /* no word holds 8 rows of one k */
}

MP_KERNELS(cutlass)
