/*
 * bnb8.cl - bitsandbytes LLM.int8: signed bytes [N, K] row-major (P_QSTRIDE bytes a row), SCB
 * F32 [N]; w = f32(f32(q * SCB[n]) * f32(1/127)), int8_vectorwise_dequant's two roundings
 * (doc/formats/bitsandbytes.md §5).
 */
#include "mp_kernel.h"

MP_WEIGHT_FN(bnb8)
{
    MP_NO_CONTRACT
    (void)zp, (void)gidx;
    uint b = qw[(ulong)n * P[P_QSTRIDE] + k];
    int q = (int)b - (int)((b & 0x80u) << 1);
    float w = (float)q * ((__global const float *)sc)[n];
    return w * as_float(0x3C010204u); /* f32(1/127) */
}

MP_KERNEL_WEIGHTS_EACH(bnb8)
MP_KERNEL_ENTRIES(bnb8)
