/*
 * bnb4.cl - bitsandbytes 4-bit (NF4, FP4): element t = n * K + k of the flattened weight is the
 * high nibble of byte t / 2 for even t, the low one for odd t, decoded through the 16-value
 * table of P_ELEM (0 NF4, 1 FP4) and multiplied by absmax[t / P_GSIZE] in f32, then rounded to
 * the quant_state's dtype (P_POST). absmax is F32, or with MP_FL_NESTED U8 codes c[b] decoded
 * as f32(map[c[b]] * nested_absmax[b / P_BN]) + offset (P_GLOBAL), the map and the nested
 * absmax in zp (doc/formats/bitsandbytes.md §3).
 */
#include "mp_kernel.h"

/* bitsandbytes' code tables, as f32 bits (formats/scheme_bnb4.c has the same values). */
static inline float bnb4_table(uint c, uint fp4)
{
    const uint nf4[16] = {0xBF800000u, 0xBF3239B1u, 0xBF066B30u, 0xBECA32A0u, 0xBE91A24Du, 0xBE3D353Fu,
                          0xBDBA7871u, 0x00000000u, 0x3DA2FAFFu, 0x3E24CAE3u, 0x3E7C04DDu, 0x3EAD033Au,
                          0x3EE1A4B8u, 0x3F1007ABu, 0x3F3913B3u, 0x3F800000u};
    const uint fp4t[16] = {0x00000000u, 0x3BAAAAABu, 0x3F2AAAABu, 0x3F800000u, 0x3EAAAAABu, 0x3F000000u,
                           0x3E2AAAABu, 0x3E800000u, 0x00000000u, 0xBBAAAAABu, 0xBF2AAAABu, 0xBF800000u,
                           0xBEAAAAABu, 0xBF000000u, 0xBE2AAAABu, 0xBE800000u};
    return as_float(fp4 ? fp4t[c] : nf4[c]);
}

static inline float bnb4_absmax(__global const uchar *sc, __global const uchar *zp, __global const uint *P, ulong b)
{
    if (!(P[P_FLAGS] & MP_FL_NESTED)) return ((__global const float *)sc)[b];
    __global const float *z = (__global const float *)zp; /* map[256], then the nested absmax */
    float v = z[sc[b]] * z[256 + b / P[P_BN]];
    return v + as_float(P[P_GLOBAL]); /* two roundings, as `absmax += offset` */
}

MP_WEIGHT_FN(bnb4)
{
    MP_NO_CONTRACT
    (void)gidx;
    ulong t = (ulong)n * P[P_K] + k;
    uint byte = qw[t / 2u];
    float w = bnb4_table(t & 1u ? byte & 15u : byte >> 4, P[P_ELEM]) * bnb4_absmax(sc, zp, P, t / P[P_GSIZE]);
    return mp_round_to(w, P[P_POST]);
}

MP_KERNEL_WEIGHTS_EACH(bnb4)
MP_KERNEL_ENTRIES(bnb4)
