/*
 * gguf.cl - ggml block formats of a 2-D GGUF tensor stored row after row (ne0 = K innermost,
 * P_QSTRIDE bytes a row), P_BITS holding the ggml type id (doc/formats/gguf.md §6):
 *   Q4_0 (2): 18-byte blocks of 32: f16 d, 16 bytes; element j in the low nibble of byte j,
 *             j + 16 in the high nibble; w = (q - 8) * d;
 *   Q4_1 (3): 20-byte blocks: f16 d, f16 m, 16 bytes as Q4_0; w = q * d + m;
 *   Q8_0 (8): 34-byte blocks: f16 d, 32 int8; w = q * d.
 * q * d is exact in f32 (at most 8 + 11 significant bits), so w has one rounding at most, fused
 * or not, as in ggml's dequantize_row_*.
 */
#include "mp_kernel.h"

static inline float gguf_weight(__global const uchar *qw, __global const uchar *sc, __global const uchar *zp,
                                __global const int *gidx, __global const uint *P, uint n, uint k)
{
    (void)sc; (void)zp; (void)gidx;
    uint type = P[P_BITS], b = k / 32, j = k % 32;
    __global const uchar *row = qw + (ulong)n * P[P_QSTRIDE];
    if (type == 8) {
        __global const uchar *blk = row + (ulong)b * 34;
        int q = (int)blk[2 + j] - (blk[2 + j] & 0x80 ? 256 : 0);
        return (float)q * vload_half(0, (__global const half *)blk);
    }
    __global const uchar *blk = row + (ulong)b * (type == 3 ? 20 : 18);
    uint byte = blk[(type == 3 ? 4 : 2) + (j % 16)];
    int q = (int)(j < 16 ? byte & 15u : byte >> 4);
    float d = vload_half(0, (__global const half *)blk);
    if (type == 3) return (float)q * d + vload_half(1, (__global const half *)blk);
    return (float)(q - 8) * d;
}

/* A span of values: those inside one block read its d (and m) once, each value the expression of
 * gguf_weight; a span across blocks goes value by value. */
MP_INLINE void gguf_weights(__global const uchar *qw, __global const uchar *sc, __global const uchar *zp,
                            __global const int *gidx, __global const uint *P, uint n, uint k0, uint cnt, float *w)
{
    uint type = P[P_BITS], b = k0 / 32, j0 = k0 % 32;
    if (cnt == 0 || (k0 + cnt - 1) / 32 != b) {
        for (uint j = 0; j < cnt; j++) w[j] = gguf_weight(qw, sc, zp, gidx, P, n, k0 + j);
        return;
    }
    __global const uchar *row = qw + (ulong)n * P[P_QSTRIDE];
    if (type == 8) {
        __global const uchar *blk = row + (ulong)b * 34;
        float d = vload_half(0, (__global const half *)blk);
        MP_SIMD for (uint j = 0; j < cnt; j++) {
            int q = (int)blk[2 + j0 + j] - (blk[2 + j0 + j] & 0x80 ? 256 : 0);
            w[j] = (float)q * d;
        }
        return;
    }
    __global const uchar *blk = row + (ulong)b * (type == 3 ? 20 : 18), *qs = blk + (type == 3 ? 4 : 2);
    float d = vload_half(0, (__global const half *)blk);
    float m = type == 3 ? vload_half(1, (__global const half *)blk) : 0.0f;
    MP_SIMD for (uint j = 0; j < cnt; j++) {
        uint jj = j0 + j, byte = qs[jj % 16];
        int q = (int)(jj < 16 ? byte & 15u : byte >> 4);
        w[j] = type == 3 ? (float)q * d + m : (float)(q - 8) * d;
    }
}

MP_KERNEL_WEIGHTS_OWN(gguf)
MP_KERNEL_ENTRIES(gguf)
