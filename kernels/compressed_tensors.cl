/*
 * compressed_tensors.cl - compressed-tensors pack-quantized: int32 weight_packed [N, K*b/32],
 * row n a bit string over k (or, in older files, P_PER codes per word, high bits unused);
 * weight_scale [N, G]; weight_zero_point int32 [N*b/32, G], column g a bit string over n;
 * codes are q_signed + 2^(b-1) (doc/formats/compressed-tensors.md §2).
 */
#include "mp_kernel.h"

static inline int ct_code(__global const uchar *qw, __global const uint *P, uint n, uint k)
{
    __global const uint *row = (__global const uint *)qw + (ulong)n * P[P_QSTRIDE];
    uint b = P[P_BITS], per = P[P_PER];
    if (per) {
        uint word = k / per; /* the remainder by hand: llvm-spirv-14 cannot translate the
                                `freeze` that clang emits for a paired / and % */
        return (int)((row[word] >> (b * (k - word * per))) & ((1u << b) - 1u));
    }
    return (int)mp_bits(row, 1, (ulong)k * b, b);
}

static inline int ct_zero(__global const uchar *zp, __global const uint *P, uint n, uint g)
{
    __global const uint *col = (__global const uint *)zp + g;
    uint b = P[P_BITS], per = P[P_PER];
    if (per) {
        uint word = n / per;
        return (int)((col[(ulong)word * P[P_ZSTRIDE]] >> (b * (n - word * per))) & ((1u << b) - 1u));
    }
    return (int)mp_bits(col, P[P_ZSTRIDE], (ulong)n * b, b);
}

static inline ulong ct_scale_index(__global const uint *P, uint n, uint g)
{
    return (ulong)n * P[P_SSTRIDE] + g;
}

static inline int ct_word8(__global const uchar *qw, __global const uint *P, uint n, uint k0, uint *v)
{
    /* 4 bits: dense, or padded with 8 codes a word: the same word either way */
    if (P[P_PER] && P[P_PER] != 8) return 0;
    *v = ((__global const uint *)qw)[(ulong)n * P[P_QSTRIDE] + k0 / 8];
    return 1;
}

static inline int ct_col8(__global const uchar *qw, __global const uint *P, uint n0, uint k, uint *v,
                                uint *sh)
{
    (void)qw; (void)P; (void)n0; (void)k; (void)v; (void)sh;
    return 0; /* no word holds 8 rows of one k */
}

MP_KERNELS(ct)
