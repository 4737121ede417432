/*
 * mp_kernel.h - what every kernel source shares: the parameter block, scale loading, and the two
 * entry points each layout family gets.
 *
 * A family source (cutlass_int4.cl, ...) defines two readers, exactly as an inference kernel
 * reads its packed layout:
 *     int  F_code(qw, P, n, k)   the b-bit code of element (n, k), after any two's complement
 *     int  F_zero(zp, P, n, g)   the stored zero point of (n, g), before the scheme's offset
 *     uint F_scale_index(P, n, g)
 *     int  F_word8(qw, P, n, k0, &v)  for 4-bit codes and k0 % 8 == 0: 1 when one 32-bit word
 *                                holds codes k0..k0+7 of row n, code k0+j at bits 4j (as stored,
 *                                before P_XOR), into v; 0 when the layout has no such word
 *     int  F_col8(qw, P, n0, k, &v, sh)  for 4-bit codes and n0 % 8 == 0: 1 when one 32-bit
 *                                word holds the codes of rows n0..n0+7 at column k (as stored,
 *                                before P_XOR), row n0+j at bits sh[j], into v and sh[0..7]; 0
 *                                when the layout has no such word (read by the cpu backend's row
 *                                loops only)
 * and then says MP_KERNELS(F), which defines (a block format that is not (q - z) * s defines
 * F_weight itself and says MP_KERNEL_WEIGHTS_EACH(F) MP_KERNEL_ENTRIES(F))
 *     F_dequant: global size (ceil(K / MP_SPAN), P_NROWS): out[r][k] = w[rows[r]][k], MP_SPAN
 *                consecutive k per work item;
 *     F_gemm:    global size (P_NROWS, 1): out[m][r] = sum_k x[m][k] * w[rows[r]][k] for every
 *                m < P_M, each weight read once per MP_GEMM_MB rows of x (x blocked, below),
 * with w = (float)(q - z) * s, one f32 rounding, and f32 accumulation in k order.
 *
 * The text is OpenCL C 1.2: the OpenCL backend builds it at run time, clang-14 builds it to
 * SPIR-V for Level Zero, and kernels/cl_as_c.h makes it C11 for the cpu backend. Scales are
 * read with vload_half (core, no cl_khr_fp16 needed), bf16 by its bits, or as f32; no double
 * and no half arithmetic anywhere (doc/devices.md §3, §4).
 */
#ifndef MP_KERNEL_H
#define MP_KERNEL_H

/* The parameter block: a __global uint array of MP_P_COUNT words. */
#define P_N 0        /* rows of W (out features) */
#define P_K 1        /* columns of W (in features) */
#define P_G 2        /* groups along K */
#define P_GSIZE 3    /* group size (K for per-channel) */
#define P_BITS 4     /* code width */
#define P_ZOFF 5     /* added to a stored zero (1 for GPTQ v1) */
#define P_XOR 6      /* stored code = q ^ xor (8 for two's complement s4) */
#define P_ZMODE 7    /* 0: zero implied 2^(b-1); 1: read from zp */
#define P_PER 8      /* compressed-tensors: codes per word (0: dense bitstream) */
#define P_SDT 9      /* scale element type: 0 f16, 1 bf16, 2 f32; fp8 also 3 E8M0 (one byte) */
#define P_SSTRIDE 10 /* elements per row of the scale tensor */
#define P_QSTRIDE 11 /* containers per row of the code tensor */
#define P_ZSTRIDE 12 /* words per row of the zero-point tensor */
#define P_GIDX 13    /* 1: group of column k is gidx[k] */
#define P_NROWS 14   /* rows asked for (length of rows[]) */
#define P_M 15       /* activation rows (gemm) */
#define MP_P_COUNT 16

/* The float families (fp8.cl, fp4.cl, bnb4.cl, bnb8.cl) have no zero points, code XOR or g_idx
 * and read some of those words under these names instead (verify/float_kernel.c fills them). */
#define P_ELEM P_BITS    /* fp8: 0 E4M3, 1 E5M2; fp4: block scale 0 E4M3, 1 E8M0; bnb4: 0 NF4, 1 FP4 */
#define P_BN P_ZOFF      /* fp8: rows per scale row; bnb4: absmax per nested absmax */
#define P_PRE P_XOR      /* fp8: the scale rounded to 1 BF16 / 2 F16 first (0: as stored) */
#define P_POST P_ZMODE   /* the product rounded to 1 BF16 / 2 F16 (0: f32) */
#define P_FLAGS P_PER    /* MP_FL_* */
#define P_GLOBAL P_ZSTRIDE /* f32 bits: fp4's global scale; bnb4's nested offset */
#define MP_FL_GLOBAL 1u  /* fp4: a global scale is applied to each block scale, */
#define MP_FL_GDIV 2u    /*      by division (compressed-tensors), else by product (ModelOpt) */
#define MP_FL_ZPOS 4u    /* fp4: code 8 is +0.0, not -0.0 */
#define MP_FL_LDEXP 8u   /* fp4: an E8M0 0xFF scale is 2^127, then the product doubled */
#define MP_FL_NESTED 16u /* bnb4: absmax are U8 codes into zp[0..255] times zp[256 + b / P_BN], + offset */
#define MP_FL_E8NAN 32u  /* fp4: an E8M0 0xFF scale is NaN (DeepSeek-V4 as transformers loads it) */

/* A loop the compiler should vectorize: `omp simd` in the C build (cl_as_c.h), nothing for the
 * device compilers, which vectorize across work items instead. */
#ifndef MP_SIMD
#define MP_SIMD
#endif
/* A hint that a word will be read soon: a prefetch in the C build (cl_as_c.h), nothing for the
 * device compilers. */
#ifndef MP_PREFETCH
#define MP_PREFETCH(p) ((void)0)
#endif
/* The helpers every entry inlines: forced in the C build, where each entry is built for several
 * targets (verify/kernels_cpu.c) and a helper left out of line would run the baseline's code. */
#ifndef MP_INLINE
#define MP_INLINE static inline
#endif

#define MP_GEMM_MB 8 /* rows of x a gemm work item carries at once (registers) */
#define MP_SPAN 8    /* consecutive k a dequant work item writes; the gemm's step */

MP_INLINE float mp_scale(__global const uchar *sc, ulong i, uint dt)
{
    if (dt == 0) return vload_half(i, (__global const half *)sc);
    if (dt == 1) return as_float((uint)((__global const ushort *)sc)[i] << 16);
    return ((__global const float *)sc)[i];
}

/* Float element decoders and roundings, bit for bit as common/half.c computes them (the CPU
 * reference), written again here so that the kernels share no code with it. */
/* Codes are decoded as (implicit bit + mantissa) * 2^(max(e, 1) - bias - mbits), exact, with no
 * two equality tests on one exponent field: clang makes those a switch on an odd-width integer
 * (i5, i15), which llvm-spirv-14 cannot translate. */
static inline float mp_e4m3(uint b)
{
    uint sign = (b & 0x80u) << 24, e = (b >> 3) & 15u, m = b & 7u;
    if ((b & 0x7Fu) == 0x7Fu) return as_float(sign | 0x7FC00000u); /* S.1111.111, the only NaN */
    float v = (float)(e ? m + 8u : m) * as_float((e ? e + 117u : 118u) << 23);
    return sign ? -v : v;
}

static inline float mp_e5m2(uint b)
{
    uint sign = (b & 0x80u) << 24, e = (b >> 2) & 31u, m = b & 3u;
    if (e == 31u) return as_float(sign | (m ? 0x7FC00000u : 0x7F800000u));
    float v = (float)(e ? m + 4u : m) * as_float((e ? e + 110u : 111u) << 23);
    return sign ? -v : v;
}

/* v rounded to nearest even binary16 and back (NaN quieted, overflow to inf), as
 * mp_f32_to_f16 then mp_f16_to_f32 compute it. */
static inline float mp_round_f16(float v)
{
    uint u = as_uint(v), sign = u & 0x80000000u, a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return as_float(sign | 0x7FC00000u | ((a >> 13) & 0x3FFu) << 13);
    if (a >= 0x477FF000u) return as_float(sign | 0x7F800000u);
    if (a < 0x38800000u) { /* a subnormal binary16 or zero: q units of 2^-24 */
        uint q = 0;
        if (a >= 0x33000000u) {
            uint shift = 126u - (a >> 23), m = (a & 0x7FFFFFu) | 0x800000u, half_ = 1u << (shift - 1u);
            uint rem = m & ((1u << shift) - 1u);
            q = m >> shift;
            q += rem > half_ || (rem == half_ && (q & 1u));
        }
        float f = (float)q * as_float(0x33800000u);
        return sign ? -f : f;
    }
    uint r = a - 0x38000000u, q = r >> 13, rem = r & 0x1FFFu;
    q += rem > 0x1000u || (rem == 0x1000u && (q & 1u));
    return as_float(sign | ((q << 13) + 0x38000000u));
}

/* v rounded to 1 BF16 or 2 F16 and back (0: v itself). */
static inline float mp_round_to(float v, uint to)
{
    if (to == 2u) return mp_round_f16(v);
    if (to != 1u) return v;
    uint u = as_uint(v);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return as_float((u | 0x400000u) & 0xFFFF0000u);
    return as_float((u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u);
}

/* b bits at bit position `bit` of a little-endian bit string whose consecutive 32-bit words are
 * `stride` words apart (a tensor column when stride is the row length). */
static inline uint mp_bits(__global const uint *w, ulong stride, ulong bit, uint b)
{
    ulong word = bit / 32;
    uint shift = (uint)(bit % 32);
    ulong v = (ulong)w[word * stride] >> shift;
    if (shift + b > 32) v |= (ulong)w[(word + 1) * stride] << (32 - shift);
    return (uint)(v & ((1u << b) - 1u));
}

/* The group of every k in [k0, k0 + cnt) when they share one (by g_idx when there is one: an
 * act-order g_idx splits spans, a trivial one does not), else -1. It depends on the span only,
 * so the cpu backend's row loops ask it once per span for all their rows. */
MP_INLINE int mp_span_group(__global const int *gidx, __global const uint *P, uint k0, uint cnt)
{
    uint gs = P[P_GSIZE];
    if (!P[P_GIDX] && gs == 0) return -1; /* no groups (a row or block format): never divide by 0 */
    uint g = P[P_GIDX] ? (uint)gidx[k0] : k0 / gs, one = 1;
    if (P[P_GIDX])
        for (uint j = 1; j < cnt; j++) one &= (uint)gidx[k0 + j] == g;
    else
        one = k0 - g * gs + cnt <= gs;
    return one ? (int)g : -1;
}

/* w = (float)(q - z) * s from a family's code, zero and scale readers; F_weights fills w[j] =
 * F_weight(n, k0 + j) for j < cnt, the group's zero and scale read once when the span lies in
 * one group (by g_idx, when there is one: an act-order g_idx splits spans, a trivial one does
 * not): the same value, bit for bit, with one division per span. A span may be
 * longer than MP_SPAN (the cpu backend's row loops below ask for up to a group at a time); the
 * device entries ask for MP_SPAN at most. */
#define MP_KERNEL_WEIGHT(F)                                                                       \
    MP_INLINE float F##_weight(__global const uchar *qw, __global const uchar *sc,           \
                                   __global const uchar *zp, __global const int *gidx,           \
                                   __global const uint *P, uint n, uint k)                       \
    {                                                                                             \
        uint g = P[P_GIDX] ? (uint)gidx[k] : k / P[P_GSIZE];                                      \
        int q = F##_code(qw, P, n, k);                                                            \
        int z = P[P_ZMODE] ? F##_zero(zp, P, n, g) + (int)P[P_ZOFF] : (int)(1u << (P[P_BITS] - 1)); \
        return (float)(q - z) * mp_scale(sc, F##_scale_index(P, n, g), P[P_SDT]);                 \
    }                                                                                             \
    MP_INLINE void F##_weights_g(__global const uchar *qw, __global const uchar *sc,         \
                                 __global const uchar *zp, __global const int *gidx,             \
                                 __global const uint *P, uint n, uint k0, uint cnt, float *w,    \
                                 int g1)                                                         \
    {                                                                                             \
        uint g = (uint)g1, v8 = 0;                                                                \
        if (g1 < 0) {                                                                             \
            for (uint j = 0; j < cnt; j++) w[j] = F##_weight(qw, sc, zp, gidx, P, n, k0 + j);     \
            return;                                                                               \
        }                                                                                         \
        int z = P[P_ZMODE] ? F##_zero(zp, P, n, g) + (int)P[P_ZOFF] : (int)(1u << (P[P_BITS] - 1)); \
        float s = mp_scale(sc, F##_scale_index(P, n, g), P[P_SDT]);                               \
        if (cnt % 8 == 0 && P[P_BITS] == 4 && k0 % 8 == 0 && F##_word8(qw, P, n, k0, &v8)) {      \
            uint x8 = P[P_XOR] * 0x11111111u;                                                     \
            for (uint j0 = 0; j0 < cnt; j0 += 8) {                                                \
                if (j0) F##_word8(qw, P, n, k0 + j0, &v8);                                        \
                v8 ^= x8;                                                                         \
                MP_SIMD for (uint j = 0; j < 8; j++)                                              \
                    w[j0 + j] = (float)((int)((v8 >> (4 * j)) & 15u) - z) * s;                    \
            }                                                                                     \
            return;                                                                               \
        }                                                                                         \
        for (uint j = 0; j < cnt; j++) w[j] = (float)(F##_code(qw, P, n, k0 + j) - z) * s;        \
    }                                                                                             \
    MP_INLINE void F##_weights(__global const uchar *qw, __global const uchar *sc,           \
                                   __global const uchar *zp, __global const int *gidx,           \
                                   __global const uint *P, uint n, uint k0, uint cnt, float *w)  \
    {                                                                                             \
        F##_weights_g(qw, sc, zp, gidx, P, n, k0, cnt, w, mp_span_group(gidx, P, k0, cnt));       \
    }

/* The head of F_weight for a family that defines it itself (a block or float format), and what
 * its body starts with: f32 expressions are not contracted to fused multiply-adds, so that each
 * product and sum rounds as the CPU reference's do (clang contracts within an expression by
 * default in OpenCL C; NVRTC runs with --fmad=false; C11 never contracts). */
#define MP_WEIGHT_FN(F)                                                                           \
    MP_INLINE float F##_weight(__global const uchar *qw, __global const uchar *sc,           \
                                   __global const uchar *zp, __global const int *gidx,           \
                                   __global const uint *P, uint n, uint k)
#ifdef __OPENCL_C_VERSION__
#define MP_NO_CONTRACT _Pragma("OPENCL FP_CONTRACT OFF")
#else
#define MP_NO_CONTRACT
#endif

/* F_weights_g (and F_weights8) for a family that defines F_weights itself (a block format that
 * reads a block's scale once per span). */
#define MP_KERNEL_WEIGHTS_OWN(F)                                                                  \
    MP_INLINE void F##_weights_g(__global const uchar *qw, __global const uchar *sc,         \
                                 __global const uchar *zp, __global const int *gidx,             \
                                 __global const uint *P, uint n, uint k0, uint cnt, float *w,    \
                                 int g1)                                                         \
    {                                                                                             \
        (void)g1;                                                                                 \
        F##_weights(qw, sc, zp, gidx, P, n, k0, cnt, w);                                          \
    }                                                                                             \
    MP_KERNEL_WEIGHTS8_NONE(F)

/* F_weights for a family that defines F_weight alone (a float format). */
#define MP_KERNEL_WEIGHTS_EACH(F)                                                                 \
    MP_INLINE void F##_weights(__global const uchar *qw, __global const uchar *sc,           \
                                   __global const uchar *zp, __global const int *gidx,           \
                                   __global const uint *P, uint n, uint k0, uint cnt, float *w)  \
    {                                                                                             \
        for (uint j = 0; j < cnt; j++) w[j] = F##_weight(qw, sc, zp, gidx, P, n, k0 + j);         \
    }                                                                                             \
    MP_KERNEL_WEIGHTS_OWN(F)

/* The two entry points, from F_weights. x comes in blocks of MP_GEMM_MB rows, transposed:
 * x[(m / MB) * K * MB + k * MB + m % MB], rows past P_M zero. */
#define MP_KERNEL_ENTRIES(F)                                                                      \
    __kernel void F##_dequant(__global const uchar *qw, __global const uchar *sc,                 \
                              __global const uchar *zp, __global const int *gidx,                 \
                              __global const uint *P, __global const uint *rows,                  \
                              __global const float *x, __global float *out)                       \
    {                                                                                             \
        uint k0 = (uint)get_global_id(0) * MP_SPAN, r = (uint)get_global_id(1), K = P[P_K];       \
        (void)x;                                                                                  \
        if (k0 >= K || r >= P[P_NROWS]) return;                                                   \
        uint cnt = K - k0 < MP_SPAN ? K - k0 : MP_SPAN;                                           \
        float w[MP_SPAN];                                                                         \
        F##_weights(qw, sc, zp, gidx, P, rows[r], k0, cnt, w);                                    \
        for (uint j = 0; j < cnt; j++) out[(ulong)r * K + k0 + j] = w[j];                         \
    }                                                                                             \
    __kernel void F##_gemm(__global const uchar *qw, __global const uchar *sc,                    \
                           __global const uchar *zp, __global const int *gidx,                    \
                           __global const uint *P, __global const uint *rows,                     \
                           __global const float *x, __global float *out)                          \
    {                                                                                             \
        uint r = (uint)get_global_id(0);                                                          \
        if (r >= P[P_NROWS] || get_global_id(1) != 0) return;                                    \
        uint n = rows[r], K = P[P_K], M = P[P_M];                                                 \
        for (uint m0 = 0; m0 < M; m0 += MP_GEMM_MB) {                                             \
            __global const float *xb = x + (ulong)m0 * K;                                         \
            float acc[MP_GEMM_MB], w[MP_SPAN];                                                    \
            for (uint i = 0; i < MP_GEMM_MB; i++) acc[i] = 0.0f;                                  \
            for (uint k0 = 0; k0 < K; k0 += MP_SPAN) {                                            \
                uint cnt = K - k0 < MP_SPAN ? K - k0 : MP_SPAN;                                   \
                F##_weights(qw, sc, zp, gidx, P, n, k0, cnt, w);                                  \
                for (uint j = 0; j < cnt; j++) {                                                  \
                    MP_SIMD for (uint i = 0; i < MP_GEMM_MB; i++)                                 \
                        acc[i] += xb[(ulong)(k0 + j) * MP_GEMM_MB + i] * w[j];                    \
                }                                                                                 \
            }                                                                                     \
            for (uint i = 0; i < MP_GEMM_MB; i++)                                                 \
                if (m0 + i < M) out[(ulong)(m0 + i) * P[P_NROWS] + r] = acc[i];                   \
        }                                                                                         \
    }                                                                                             \
    MP_KERNEL_CPU_ROWS(F)

/* The cpu backend (kernels/cl_as_c.h) runs the work items of rows [r0, r1) of a launch as one
 * loop per row instead of one call per item: F_dequant_rows writes each row's spans of one
 * group straight into out, and F_gemm_rows carries MP_CPU_RB rows of w at a time, so that the
 * row's f32 sums, each still taken in k order exactly as F_gemm takes it, run side by side
 * instead of one dependent add after another. Both take a few k of every row before the next
 * few k, so that sampled rows of a column-major layout ([K/8, N] words) read each page once,
 * not once per row. The same F_weights computes every value. F_dequant_gemm_rows is both in
 * one pass: each value decoded once, written where F_dequant_rows writes it and multiplied from
 * there (the same values and the same sums as the two launches give). */
#ifdef MP_CL_AS_C_H
#define MP_CPU_RB 8  /* rows of w a cpu gemm loop carries at once: 8 independent sums per k, and
                      * the 8 rows of one AWQ word (F_weights8) in one block */
#define MP_CPU_KCH 64 /* consecutive k decoded at once per row */
typedef uint mp_v8u __attribute__((vector_size(32))); /* GCC vectors: the C build only */
typedef int mp_v8i __attribute__((vector_size(32)));
typedef float mp_v8f __attribute__((vector_size(32)));
#define MP_CPU_SB 64  /* rows whose sums a cpu gemm loop carries through k together (on the stack) */
MP_INLINE uint mp_cpu_span(uint K, uint gs, uint k0)
{
    uint cnt = K - k0 < MP_CPU_KCH ? K - k0 : MP_CPU_KCH, left = gs ? gs - k0 % gs : cnt;
    return cnt < left ? cnt : left;
}
/* F_weights8: rows rows[0..7] = n0..n0+7 (n0 % 8 == 0) of a span of one group g1 from the words
 * F_col8 reads, w[j * ldw + k] = F_weight(n0 + j, k0 + k), the same (float)(q - z) * s; 0 (and
 * nothing written) when the rows, the span or the layout do not allow it. */
#define MP_KERNEL_WEIGHTS8(F)                                                                     \
    MP_INLINE int F##_weights8(const uchar *qw, const uchar *sc, const uchar *zp, const uint *P,   \
                               const uint *rows, uint nr, uint k0, uint cnt, int g1, float *w,    \
                               ulong ldw)                                                        \
    {                                                                                             \
        uint n0 = rows[0], v = 0, sh[8];                                                          \
        if (nr < 8 || g1 < 0 || P[P_BITS] != 4 || n0 % 8 || rows[7] != n0 + 7 ||                  \
            !F##_col8(qw, P, n0, k0, &v, sh))                                                     \
            return 0;                                                                             \
        for (uint j = 1; j < 7; j++)                                                              \
            if (rows[j] != n0 + j) return 0;                                                      \
        int z[8];                                                                                 \
        float s[8];                                                                               \
        for (uint j = 0; j < 8; j++) {                                                            \
            z[j] = P[P_ZMODE] ? F##_zero(zp, P, n0 + j, (uint)g1) + (int)P[P_ZOFF]               \
                              : (int)(1u << (P[P_BITS] - 1));                                     \
            s[j] = mp_scale(sc, F##_scale_index(P, n0 + j, (uint)g1), P[P_SDT]);                  \
        }                                                                                         \
        uint x8 = P[P_XOR] * 0x11111111u, k = 0;                                                  \
        for (; k + 8 <= cnt; k += 8) { /* 8 k of 8 rows: each row's 8 values in one store */      \
            uint c[8];                                                                            \
            for (uint t = 0; t < 8; t++) F##_col8(qw, P, n0, k0 + k + t, &c[t], sh);              \
            mp_v8u V = {c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]}; /* in registers */      \
            V ^= x8;                                                                              \
            for (uint j = 0; j < 8; j++) {                                                        \
                mp_v8f f = __builtin_convertvector((mp_v8i)((V >> sh[j]) & 15u) - z[j], mp_v8f) * s[j]; \
                memcpy(w + j * ldw + k, &f, sizeof f);                                            \
            }                                                                                     \
        }                                                                                         \
        for (; k < cnt; k++) {                                                                    \
            F##_col8(qw, P, n0, k0 + k, &v, sh);                                                  \
            v ^= x8;                                                                              \
            for (uint j = 0; j < 8; j++) w[j * ldw + k] = (float)((int)((v >> sh[j]) & 15u) - z[j]) * s[j]; \
        }                                                                                         \
        return 1;                                                                                 \
    }
#define MP_KERNEL_WEIGHTS8_NONE(F)                                                                \
    MP_INLINE int F##_weights8(const uchar *qw, const uchar *sc, const uchar *zp, const uint *P,   \
                               const uint *rows, uint nr, uint k0, uint cnt, int g1, float *w,    \
                               ulong ldw)                                                        \
    {                                                                                             \
        (void)qw, (void)sc, (void)zp, (void)P, (void)rows, (void)nr, (void)k0, (void)cnt, (void)g1; \
        (void)w, (void)ldw;                                                                       \
        return 0;                                                                                 \
    }
#define MP_KERNEL_CPU_ROWS(F)                                                                     \
    MP_INLINE void F##_dequant_rows(const uchar *qw, const uchar *sc, const uchar *zp,       \
                                        const int *gidx, const uint *P, const uint *rows,        \
                                        float *out, uint r0, uint r1)                             \
    {                                                                                             \
        uint K = P[P_K], gs = P[P_GSIZE];                                                         \
        for (uint k0 = 0, cnt = 0; k0 < K; k0 += cnt) { /* the rows' codes of a few k together */ \
            cnt = mp_cpu_span(K, gs, k0);                                                         \
            int g1 = mp_span_group(gidx, P, k0, cnt);                                             \
            for (uint r = r0; r < r1; r++) {                                                      \
                if (F##_weights8(qw, sc, zp, P, rows + r, r1 - r, k0, cnt, g1,                    \
                                 out + (ulong)r * K + k0, K)) {                                   \
                    r += 7; /* 8 rows from one word per k (AWQ) */                                \
                    continue;                                                                     \
                }                                                                                 \
                F##_weights_g(qw, sc, zp, gidx, P, rows[r], k0, cnt, out + (ulong)r * K + k0, g1); \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    MP_INLINE void F##_gemm_mul(uint nr, const float *xb, uint k0, uint cnt,                      \
                                float acc[][MP_GEMM_MB], const float *const wq[MP_CPU_RB])       \
    {                                                                                             \
        float a[MP_CPU_RB][MP_GEMM_MB];                                                           \
        for (uint q = 0; q < MP_CPU_RB; q++) /* a short block repeats its last row */            \
            for (uint i = 0; i < MP_GEMM_MB; i++) a[q][i] = acc[q < nr ? q : nr - 1][i];           \
        for (uint j = 0; j < cnt; j++) {                                                          \
            const float *xk = xb + (ulong)(k0 + j) * MP_GEMM_MB;                                  \
            for (uint q = 0; q < MP_CPU_RB; q++) {                                                \
                MP_SIMD for (uint i = 0; i < MP_GEMM_MB; i++) a[q][i] += xk[i] * wq[q][j];        \
            }                                                                                     \
        }                                                                                         \
        for (uint q = 0; q < MP_CPU_RB && q < nr; q++)                                            \
            for (uint i = 0; i < MP_GEMM_MB; i++) acc[q][i] = a[q][i];                            \
    }                                                                                             \
    /* The product of rows [r0, r1) into y; with vals, each value decoded once, into vals as      \
     * F_dequant_rows writes it, and multiplied from there (the cpu backend's fused launch). */   \
    MP_INLINE void F##_dequant_gemm_rows(const uchar *qw, const uchar *sc, const uchar *zp,      \
                                         const int *gidx, const uint *P, const uint *rows,       \
                                         const float *x, float *vals, float *y, uint r0, uint r1) \
    {                                                                                             \
        uint K = P[P_K], M = P[P_M], NR = P[P_NROWS], gs = P[P_GSIZE];                            \
        float acc[MP_CPU_SB][MP_GEMM_MB], w[MP_CPU_RB][MP_CPU_KCH];                               \
        for (uint s0 = r0; s0 < r1; s0 += MP_CPU_SB) {                                            \
            uint ns = r1 - s0 < MP_CPU_SB ? r1 - s0 : MP_CPU_SB;                                  \
            for (uint m0 = 0; m0 < M; m0 += MP_GEMM_MB) {                                         \
                const float *xb = x + (ulong)m0 * K;                                              \
                for (uint q = 0; q < MP_CPU_SB; q++)                                              \
                    for (uint i = 0; i < MP_GEMM_MB; i++) acc[q][i] = 0.0f;                       \
                for (uint k0 = 0, cnt = 0; k0 < K; k0 += cnt) {                                   \
                    cnt = mp_cpu_span(K, gs, k0);                                                 \
                    int g1 = mp_span_group(gidx, P, k0, cnt);                                     \
                    for (uint ra = 0; ra < ns; ra += MP_CPU_RB) {                                 \
                        const uint *rr = rows + s0 + ra;                                          \
                        uint nr = ns - ra < MP_CPU_RB ? ns - ra : MP_CPU_RB;                      \
                        const float *wq[MP_CPU_RB];                                               \
                        float *at = vals ? vals + (ulong)(s0 + ra) * K + k0 : w[0];               \
                        ulong ld = vals ? K : MP_CPU_KCH;                                         \
                        for (uint q = 0; q < MP_CPU_RB; q++) /* a short block repeats its last row */ \
                            wq[q] = at + (q < nr ? q : nr - 1) * ld;                              \
                        if ((!vals || m0 == 0) &&                                                 \
                            !F##_weights8(qw, sc, zp, P, rr, ns - ra, k0, cnt, g1, at, ld))       \
                            for (uint q = 0; q < nr; q++) /* else 8 rows, one word per k (AWQ) */ \
                                F##_weights_g(qw, sc, zp, gidx, P, rr[q], k0, cnt, at + q * ld, g1); \
                        F##_gemm_mul(nr, xb, k0, cnt, acc + ra, wq);                              \
                    }                                                                             \
                }                                                                                 \
                for (uint q = 0; q < ns; q++)                                                     \
                    for (uint i = 0; i < MP_GEMM_MB && m0 + i < M; i++)                           \
                        y[(ulong)(m0 + i) * NR + s0 + q] = acc[q][i];                             \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    MP_INLINE void F##_gemm_rows(const uchar *qw, const uchar *sc, const uchar *zp,              \
                                 const int *gidx, const uint *P, const uint *rows,               \
                                 const float *x, float *out, uint r0, uint r1)                   \
    {                                                                                             \
        F##_dequant_gemm_rows(qw, sc, zp, gidx, P, rows, x, NULL, out, r0, r1);                   \
    }
#else
#define MP_KERNEL_CPU_ROWS(F)
#define MP_KERNEL_WEIGHTS8(F)
#define MP_KERNEL_WEIGHTS8_NONE(F)
#endif

#define MP_KERNELS(F) MP_KERNEL_WEIGHT(F) MP_KERNEL_WEIGHTS8(F) MP_KERNEL_ENTRIES(F)

#endif /* MP_KERNEL_H */
