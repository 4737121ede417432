/*
 * fp8.cl - FP8 weights (DeepSeek fp8 block, compressed-tensors float-quantized, ModelOpt FP8):
 * one E4M3 or E5M2 code a byte, [N, K]; scales on a grid [ceil(N / P_BN), P_SSTRIDE], each
 * covering P_BN rows x P_GSIZE columns (tensor, channel, group, block), F32, BF16 or F16, or
 * E8M0 bytes (P_SDT 3, DeepSeek-V4: 2^(e - 127), 0 is 2^-127, 0xFF NaN).
 * w = code * scale, rounded where the producer's own dequantizer rounds (doc/formats/fp8.md
 * "rounding"): the scale to the model's dtype first (P_PRE, ModelOpt), the product to the
 * scale's dtype (P_POST, compressed-tensors), or neither (DeepSeek, one f32 product).
 */
#include "mp_kernel.h"

MP_WEIGHT_FN(fp8)
{
    MP_NO_CONTRACT
    (void)zp, (void)gidx;
    ulong si = (ulong)(n / P[P_BN]) * P[P_SSTRIDE] + k / P[P_GSIZE];
    uint e = P[P_SDT] == 3u ? sc[si] : 0u;
    float e8 = e == 0xFFu ? as_float(0x7FC00000u) : as_float(e ? e << 23 : 0x00400000u);
    float s = mp_round_to(P[P_SDT] == 3u ? e8 : mp_scale(sc, si, P[P_SDT]), P[P_PRE]);
    uint b = qw[(ulong)n * P[P_QSTRIDE] + k];
    float c = P[P_ELEM] ? mp_e5m2(b) : mp_e4m3(b);
    return mp_round_to(c != c ? c : c * s, P[P_POST]); /* a NaN code stays itself (doc/formats/fp8.md) */
}

MP_KERNEL_WEIGHTS_EACH(fp8)
MP_KERNEL_ENTRIES(fp8)
