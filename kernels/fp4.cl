/*
 * fp4.cl - NVFP4 (compressed-tensors, ModelOpt) and MXFP4 (gpt-oss, compressed-tensors): E2M1
 * codes two a byte along k, element 2i in the low nibble, rows of P_QSTRIDE bytes; one block
 * scale byte per P_GSIZE elements, rows of P_SSTRIDE: E4M3 (P_ELEM 0) or E8M0 (1, 2^(e - 127),
 * 0xFF = 2^128 = inf, or with MP_FL_LDEXP an exact ldexp by 128: 2^127, the product doubled, or
 * with MP_FL_E8NAN NaN, DeepSeek-V4's I8 experts as transformers loads them).
 * eff = s / global (MP_FL_GDIV) or s * global, one f32 rounding; w = e2m1 * eff, one more
 * (doc/formats/fp4.md §3-§5). Code 8 is -0.0, or +0.0 with MP_FL_ZPOS (ModelOpt's table).
 */
#include "mp_kernel.h"

static inline float fp4_e2m1(uint c, uint flags)
{
    uint e = (c >> 1) & 3u, m = c & 1u;
    float v = e ? as_float((e + 126u) << 23 | m << 22) : (m ? 0.5f : 0.0f); /* 2^(e-1) * 1.m */
    if (c == 8u && (flags & MP_FL_ZPOS)) return 0.0f;
    return c & 8u ? -v : v;
}

static inline float fp4_scale(uint b, __global const uint *P)
{
    uint f = P[P_FLAGS];
    float s;
    if (P[P_ELEM] == 0u) s = mp_e4m3(b);
    else if (b == 0xFFu) s = as_float(f & MP_FL_LDEXP ? 0x7F000000u : f & MP_FL_E8NAN ? 0x7FC00000u : 0x7F800000u);
    else s = as_float(b ? b << 23 : 0x00400000u);
    if (f & MP_FL_GLOBAL) {
        float g = as_float(P[P_GLOBAL]);
        s = f & MP_FL_GDIV ? s / g : s * g;
    }
    return s;
}

MP_WEIGHT_FN(fp4)
{
    MP_NO_CONTRACT
    (void)zp, (void)gidx;
    uint byte = qw[(ulong)n * P[P_QSTRIDE] + k / 2u];
    uint b = sc[(ulong)n * P[P_SSTRIDE] + k / P[P_GSIZE]];
    float w = fp4_e2m1(k & 1u ? byte >> 4 : byte & 15u, P[P_FLAGS]) * fp4_scale(b, P);
    if (P[P_ELEM] && b == 0xFFu && (P[P_FLAGS] & MP_FL_LDEXP)) w *= 2.0f;
    return w;
}

MP_KERNEL_WEIGHTS_EACH(fp4)
MP_KERNEL_ENTRIES(fp4)
