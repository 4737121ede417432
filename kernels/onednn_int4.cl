/*
 * onednn_int4.cl - oneDNN int4 (K-contiguous): int32 qweight [N, K/8], element k at shift
 * 4*(k%8) of word k/8; scales [G, N]; asymmetric zeros int32 [G, N/8], element n at shift
 * 4*(n%8) of word n/8, storing z (doc/formats/onednn-int4.md §1).
 */
#include "mp_kernel.h"

static inline int onednn_code(__global const uchar *qw, __global const uint *P, uint n, uint k)
{
    uint word = ((__global const uint *)qw)[(ulong)n * P[P_QSTRIDE] + k / 8];
    return (int)((word >> (4 * (k % 8))) & 15u);
}

static inline int onednn_zero(__global const uchar *zp, __global const uint *P, uint n, uint g)
{
    uint word = ((__global const uint *)zp)[(ulong)g * P[P_ZSTRIDE] + n / 8];
    return (int)((word >> (4 * (n % 8))) & 15u);
}

static inline ulong onednn_scale_index(__global const uint *P, uint n, uint g)
{
    return (ulong)g * P[P_SSTRIDE] + n;
}

static inline int onednn_word8(__global const uchar *qw, __global const uint *P, uint n, uint k0, uint *v)
{
    *v = ((__global const uint *)qw)[(ulong)n * P[P_QSTRIDE] + k0 / 8];
    return 1;
}

static inline int onednn_col8(__global const uchar *qw, __global const uint *P, uint n0, uint k, uint *v,
                                uint *sh)
{
    (void)qw; (void)P; (void)n0; (void)k; (void)v; (void)sh;
    return 0; /* no word holds 8 rows of one k */
}

MP_KERNELS(onednn)
