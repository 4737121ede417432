/*
 * gguf_dequant.c - ggml block types to f32, bit for bit as ggml's dequantize_row_* and gguf-py's
 * gguf.quants.dequantize (doc/formats/gguf.md §5, §6).
 *
 * Why the results are exact whatever the compiler does: in every formula each product of an
 * fp16 scale (11 significant bits) with a sub-scale and a code is exact in f32 until the last
 * operation, so contraction into FMA or reordering of the exact part rounds the same (§2.5).
 * The evaluation order is still kept as ggml writes it: (d * sc) * q, then - m.
 *
 * Fields are read byte by byte (little-endian), never through struct casts, so the code does
 * not depend on the host's byte order or alignment. Each block loop has a fixed trip count so
 * the compiler vectorizes it; large spans are split over OpenMP threads by blocks.
 */
#include "formats.h"

#include <string.h>

/* The loops below are written for the vectorizer; -O2 alone leaves most of them scalar. Each
 * block function is also compiled for AVX2 (256-bit lanes, gathers for the codebook types) and
 * for Skylake-AVX512 (512-bit lanes, byte shuffles: Q8_0 in cache 16 -> 25 GB/s), picked at
 * load time on CPUs that have them. That build has FMA; contraction cannot change a result
 * (see above: the products are exact). */
#pragma GCC optimize("O3")
#ifdef MP_NO_TARGET_CLONES /* the baseline build alone, e.g. to test it on an AVX2 machine */
#define DEQ_FN static void
#else
#define DEQ_FN static __attribute__((target_clones("arch=skylake-avx512", "avx2", "default"))) void
#endif

/* binary16 -> binary32, exact for every input, NaN payloads kept. Written with integer selects
 * only, so it vectorizes: normal numbers and Inf/NaN move their exponent by an integer add,
 * subnormals are the integer mantissa times 2^-24 (exact). */
static inline float h2f(uint32_t h)
{
    const uint32_t sign = (h & 0x8000u) << 16, em = h & 0x7FFFu;
    const uint32_t norm = (em << 13) + (112u << 23) + (uint32_t)(em >= 0x7C00u) * (112u << 23);
    const uint32_t sub = mp_f32_bits((float)(int32_t)em * 0x1p-24f);
    const uint32_t is_sub = 0u - (uint32_t)(em < 0x400u); /* all ones for zero and subnormals */
    return mp_bits_f32(((sub & is_sub) | (norm & ~is_sub)) | sign);
}

static inline float f16at(const uint8_t *p) { return h2f((uint32_t)p[0] | (uint32_t)p[1] << 8); }

/* E8M0 scale, halved (MXFP4's codebook is doubled): 2^(e - 128); e < 2 gives subnormals. */
static inline float e8m0_half(uint8_t e)
{
    return mp_bits_f32(e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23);
}

/* 1 << i: the bit of element i in Q5's qh, tested with a load instead of a variable shift. */
static const uint32_t bit32[32] = {
    1u << 0,  1u << 1,  1u << 2,  1u << 3,  1u << 4,  1u << 5,  1u << 6,  1u << 7,
    1u << 8,  1u << 9,  1u << 10, 1u << 11, 1u << 12, 1u << 13, 1u << 14, 1u << 15,
    1u << 16, 1u << 17, 1u << 18, 1u << 19, 1u << 20, 1u << 21, 1u << 22, 1u << 23,
    1u << 24, 1u << 25, 1u << 26, 1u << 27, 1u << 28, 1u << 29, 1u << 30, 1u << 31};

/* As floats (exact small integers), so an AVX2 build can gather them 32 bits at a time. */
static const float kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                        1,    13,   25,  38,  53,  69,  89,  113};

/* ---------------------------------------------------------------- plain types */

DEQ_FN deq_f32(const uint8_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = mp_bits_f32(mp_read_le32(x + 4 * i));
}

/* Little-endian 16-bit fields: on a little-endian host a plain load, which the vectorizer
 * widens; the byte-by-byte form elsewhere (it does not vectorize the pair of byte loads). */
static inline uint32_t le16at(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
#else
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
#endif
}

DEQ_FN deq_f16(const uint8_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = h2f(le16at(x + 2 * i));
}

DEQ_FN deq_bf16(const uint8_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = mp_bits_f32(le16at(x + 2 * i) << 16);
}

DEQ_FN deq_f64(const uint8_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t u = mp_read_le64(x + 8 * i);
        double v;
        memcpy(&v, &u, 8);
        y[i] = (float)v;
    }
}

DEQ_FN deq_i8(const uint8_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = (float)(int8_t)x[i];
}

DEQ_FN deq_i16(const uint8_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = (float)(int16_t)(uint16_t)(x[2 * i] | x[2 * i + 1] << 8);
}

DEQ_FN deq_i32(const uint8_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = (float)(int32_t)mp_read_le32(x + 4 * i);
}

DEQ_FN deq_i64(const uint8_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = (float)(int64_t)mp_read_le64(x + 8 * i);
}

/* ---------------------------------------------------------------- 32-element blocks */

/* Q4_0 (18 bytes): d f16, qs[16]; element j in the low nibble of qs[j], j+16 in the high. */
DEQ_FN deq_q4_0(const uint8_t *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += 18, y += 32) {
        const float d = f16at(x);
        const uint8_t *qs = x + 2;
        #pragma omp simd
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((qs[j] & 0x0F) - 8) * d;
            y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
        }
    }
}

/* Q4_1 (20): d, m, qs[16]; y = q*d + m. */
DEQ_FN deq_q4_1(const uint8_t *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += 20, y += 32) {
        const float d = f16at(x), m = f16at(x + 2);
        const uint8_t *qs = x + 4;
        #pragma omp simd
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(qs[j] & 0x0F) * d + m;
            y[j + 16] = (float)(qs[j] >> 4) * d + m;
        }
    }
}

/* Q5_0 (22): d, qh u32 (bit i = 5th bit of element i), qs[16]; codes - 16. */
DEQ_FN deq_q5_0(const uint8_t *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += 22, y += 32) {
        const float d = f16at(x);
        const uint32_t qh = mp_read_le32(x + 2);
        const uint8_t *qs = x + 6;
        #pragma omp simd
        for (int j = 0; j < 16; j++) {
            const int x0 = (int)((qs[j] & 0x0F) | ((qh & bit32[j]) ? 0x10 : 0)) - 16;
            const int x1 = (int)((qs[j] >> 4) | ((qh & bit32[j + 16]) ? 0x10 : 0)) - 16;
            y[j] = (float)x0 * d;
            y[j + 16] = (float)x1 * d;
        }
    }
}

/* Q5_1 (24): d, m, qh, qs[16]; y = q*d + m. */
DEQ_FN deq_q5_1(const uint8_t *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += 24, y += 32) {
        const float d = f16at(x), m = f16at(x + 2);
        const uint32_t qh = mp_read_le32(x + 4);
        const uint8_t *qs = x + 8;
        #pragma omp simd
        for (int j = 0; j < 16; j++) {
            const uint32_t x0 = (qs[j] & 0x0Fu) | ((qh & bit32[j]) ? 0x10u : 0);
            const uint32_t x1 = (qs[j] >> 4) | ((qh & bit32[j + 16]) ? 0x10u : 0);
            y[j] = (float)x0 * d + m;
            y[j + 16] = (float)x1 * d + m;
        }
    }
}

/* Q8_0 (34): d, qs int8[32]. */
DEQ_FN deq_q8_0(const uint8_t *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += 34, y += 32) {
        const float d = f16at(x);
        #pragma omp simd
        for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)x[2 + j] * d;
    }
}

/* MXFP4's doubled FP4 (E2M1) codebook, ggml's kvalues_mxfp4, as floats for AVX2 gathers. */
static const float kvalues_fp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/* MXFP4 (17): e (E8M0), qs[16]; nibble order as Q4_0, values from the doubled FP4 codebook. */
DEQ_FN deq_mxfp4(const uint8_t *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += 17, y += 32) {
        const float d = e8m0_half(x[0]);
        const uint8_t *qs = x + 1;
        #pragma omp simd
        for (int j = 0; j < 16; j++) {
            y[j] = kvalues_fp4[qs[j] & 0x0F] * d;
            y[j + 16] = kvalues_fp4[qs[j] >> 4] * d;
        }
    }
}

/* IQ4_NL (18): d, qs[16]; non-linear codebook. */
DEQ_FN deq_iq4_nl(const uint8_t *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += 18, y += 32) {
        const float d = f16at(x);
        const uint8_t *qs = x + 2;
        #pragma omp simd
        for (int j = 0; j < 16; j++) {
            y[j] = d * kvalues_iq4nl[qs[j] & 0x0F];
            y[j + 16] = d * kvalues_iq4nl[qs[j] >> 4];
        }
    }
}

/* ---------------------------------------------------------------- 256-element super-blocks */

/* Q2_K (84): scales[16] (low nibble scale, high nibble min) @0, qs[64] @16, d @80, dmin @82.
 * Two halves of 128; in each, four 2-bit planes of the same 32 bytes, 16 elements per scale. */
DEQ_FN deq_q2_k(const uint8_t *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += 84) {
        const float d = f16at(x + 80), dmin = f16at(x + 82);
        const uint8_t *sc = x, *q = x + 16;
        int is = 0;
        for (int h = 0; h < 2; h++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++, is++, y += 16) {
                    const float dl = d * (float)(sc[is] & 0x0F), ml = dmin * (float)(sc[is] >> 4);
                    const uint8_t *qq = q + 16 * half;
                    #pragma omp simd
                    for (int l = 0; l < 16; l++) y[l] = dl * (float)((qq[l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

/* Q3_K (110): hmask[32] @0, qs[64] @32, scales[12] @96, d @108. 16 signed 6-bit scales; the
 * high bit set means no -4 (doc/formats/gguf.md §6, portable scale unpacking). */
DEQ_FN deq_q3_k(const uint8_t *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += 110) {
        const float d_all = f16at(x + 108);
        const uint8_t *hm = x, *q = x + 32, *s = x + 96;
        int8_t sc[16];
        for (int is = 0; is < 16; is++) {
            const int low4 = is < 8 ? (s[is] & 0x0F) : (s[is - 8] >> 4);
            const int hi2 = (s[8 + is % 4] >> (2 * (is / 4))) & 3;
            sc[is] = (int8_t)((low4 | hi2 << 4) - 32);
        }
        int is = 0;
        uint8_t m = 1;
        for (int h = 0; h < 2; h++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1)) {
                for (int half = 0; half < 2; half++, is++, y += 16) {
                    const float dl = d_all * (float)sc[is];
                    const uint8_t *qq = q + 16 * half, *hh = hm + 16 * half;
                    #pragma omp simd
                    for (int l = 0; l < 16; l++) {
                        const int v = ((qq[l] >> shift) & 3) - ((hh[l] & m) ? 0 : 4);
                        y[l] = dl * (float)v;
                    }
                }
            }
        }
    }
}

/* The 6-bit scale and min j (0..7) of Q4_K and Q5_K, packed in 12 bytes (§2.4). */
static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *mn)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
        *mn = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Q4_K (144): d @0, dmin @2, scales[12] @4, qs[128] @16. Each 32 bytes hold 64 elements: low
 * nibbles, then high nibbles, each half with its own scale and min. */
DEQ_FN deq_q4_k(const uint8_t *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += 144) {
        const float d = f16at(x), dmin = f16at(x + 2);
        const uint8_t *s = x + 4, *q = x + 16;
        for (int is = 0; is < 8; is += 2, q += 32, y += 64) {
            uint8_t sc, mn;
            scale_min_k4(is, s, &sc, &mn);
            const float d1 = d * (float)sc, m1 = dmin * (float)mn;
            scale_min_k4(is + 1, s, &sc, &mn);
            const float d2 = d * (float)sc, m2 = dmin * (float)mn;
            #pragma omp simd
            for (int l = 0; l < 32; l++) y[l] = d1 * (float)(q[l] & 0x0F) - m1;
            #pragma omp simd
            for (int l = 0; l < 32; l++) y[l + 32] = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

/* Q5_K (176): d, dmin, scales[12] @4, qh[32] @16, qs[128] @48; the 5th bit of element e is bit
 * 2c + (high half) of qh[e % 32], c the 64-element chunk. */
DEQ_FN deq_q5_k(const uint8_t *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += 176) {
        const float d = f16at(x), dmin = f16at(x + 2);
        const uint8_t *s = x + 4, *qh = x + 16, *ql = x + 48;
        uint8_t u1 = 1, u2 = 2;
        for (int is = 0; is < 8; is += 2, ql += 32, y += 64) {
            uint8_t sc, mn;
            scale_min_k4(is, s, &sc, &mn);
            const float d1 = d * (float)sc, m1 = dmin * (float)mn;
            scale_min_k4(is + 1, s, &sc, &mn);
            const float d2 = d * (float)sc, m2 = dmin * (float)mn;
            #pragma omp simd
            for (int l = 0; l < 32; l++)
                y[l] = d1 * (float)((ql[l] & 0x0F) + ((qh[l] & u1) ? 16 : 0)) - m1;
            #pragma omp simd
            for (int l = 0; l < 32; l++)
                y[l + 32] = d2 * (float)((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
    }
}

/* Q6_K (210): ql[128] @0, qh[64] @128, scales int8[16] @192, d @208; codes - 32. Each half of
 * 128 holds four runs of 32, each run two sub-blocks of 16 with their own scale. */
DEQ_FN deq_q6_k(const uint8_t *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += 210) {
        const float d = f16at(x + 208);
        const uint8_t *ql = x, *qh = x + 128;
        const int8_t *sc = (const int8_t *)(x + 192);
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8, y += 128) {
            for (int is = 0; is < 2; is++) {
                const float d1 = d * (float)sc[is], d2 = d * (float)sc[is + 2];
                const float d3 = d * (float)sc[is + 4], d4 = d * (float)sc[is + 6];
                const uint8_t *a = ql + 16 * is, *b = ql + 32 + 16 * is, *hh = qh + 16 * is;
                float *o = y + 16 * is;
#pragma omp simd
                for (int l = 0; l < 16; l++) {
                    o[l] = d1 * (float)((int)((a[l] & 0x0F) | ((hh[l] & 3) << 4)) - 32);
                    o[l + 32] = d2 * (float)((int)((b[l] & 0x0F) | (((hh[l] >> 2) & 3) << 4)) - 32);
                    o[l + 64] = d3 * (float)((int)((a[l] >> 4) | (((hh[l] >> 4) & 3) << 4)) - 32);
                    o[l + 96] = d4 * (float)((int)((b[l] >> 4) | (((hh[l] >> 6) & 3) << 4)) - 32);
                }
            }
        }
    }
}

/* TQ1_0 (54): qs[48] @0, qh[4] @48, d @52. Five base-3 digits per byte, read by multiplying
 * with 3^n in wrapping uint8 arithmetic and taking the top two bits of q * 3. */
static const uint8_t pow3[6] = {1, 3, 9, 27, 81, 243};

static inline float trit(uint8_t byte, int n, float d)
{
    const uint8_t q = (uint8_t)(byte * pow3[n]);
    const int xi = (int)(((uint16_t)q * 3) >> 8);
    return (float)(xi - 1) * d;
}

DEQ_FN deq_tq1_0(const uint8_t *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += 54) {
        const float d = f16at(x + 52);
        const uint8_t *qs = x, *qh = x + 48;
        for (int n = 0; n < 5; n++, y += 32)
            #pragma omp simd
            for (int m = 0; m < 32; m++) y[m] = trit(qs[m], n, d);
        for (int n = 0; n < 5; n++, y += 16)
            #pragma omp simd
            for (int m = 0; m < 16; m++) y[m] = trit(qs[32 + m], n, d);
        for (int n = 0; n < 4; n++, y += 4)
            for (int j = 0; j < 4; j++) y[j] = trit(qh[j], n, d);
    }
}

/* TQ2_0 (66): qs[64] @0, d @64; four 2-bit planes over 32 bytes, codes - 1. */
DEQ_FN deq_tq2_0(const uint8_t *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += 66) {
        const float d = f16at(x + 64);
        for (int j = 0; j < 64; j += 32)
            for (int l = 0; l < 4; l++, y += 32)
                #pragma omp simd
                for (int m = 0; m < 32; m++) y[m] = (float)(((x[j + m] >> (2 * l)) & 3) - 1) * d;
    }
}

/* Q1_0 (18): d @0, qs[16] @2; element j is +d when bit j%8 of byte j/8 is set, else -d. */
DEQ_FN deq_q1_0(const uint8_t *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += 18, y += 128) {
        const float d = f16at(x);
        #pragma omp simd
        for (int j = 0; j < 128; j++) y[j] = (x[2 + j / 8] >> (j % 8)) & 1 ? d : -d;
    }
}

/* Q2_0 (18): d @0, qs[16] @2; element j is bits 2(j%4) of byte j/4, value (q - 1) d. */
DEQ_FN deq_q2_0(const uint8_t *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += 18, y += 64) {
        const float d = f16at(x);
        #pragma omp simd
        for (int j = 0; j < 64; j++) y[j] = (float)(((x[2 + j / 4] >> (2 * (j % 4))) & 3) - 1) * d;
    }
}

/* IQ4_XS (136): d @0, scales_h u16 @2, scales_l[4] @4, qs[128] @8; eight 6-bit scales - 32. */
DEQ_FN deq_iq4_xs(const uint8_t *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += 136) {
        const float d = f16at(x);
        const uint32_t sh = (uint32_t)x[2] | (uint32_t)x[3] << 8;
        const uint8_t *sl = x + 4, *qs = x + 8;
        for (int ib = 0; ib < 8; ib++, qs += 16, y += 32) {
            const int ls = ((sl[ib / 2] >> (4 * (ib % 2))) & 0x0F) | (int)(((sh >> (2 * ib)) & 3) << 4);
            const float dl = d * (float)(ls - 32);
            #pragma omp simd
            for (int j = 0; j < 16; j++) {
                y[j] = dl * kvalues_iq4nl[qs[j] & 0x0F];
                y[j + 16] = dl * kvalues_iq4nl[qs[j] >> 4];
            }
        }
    }
}

/* ---------------------------------------------------------------- dispatch */

/* Converts nb blocks (n elements for the plain types, whose block is 1). */
typedef void (*deq_fn)(const uint8_t *x, float *y, size_t nb);

static const deq_fn deq_table[MP_GGUF_TYPE_COUNT] = {
    [MP_GGUF_F32] = deq_f32,       [MP_GGUF_F16] = deq_f16,       [MP_GGUF_BF16] = deq_bf16,
    [MP_GGUF_F64] = deq_f64,       [MP_GGUF_I8] = deq_i8,         [MP_GGUF_I16] = deq_i16,
    [MP_GGUF_I32] = deq_i32,       [MP_GGUF_I64] = deq_i64,       [MP_GGUF_Q4_0] = deq_q4_0,
    [MP_GGUF_Q4_1] = deq_q4_1,     [MP_GGUF_Q5_0] = deq_q5_0,     [MP_GGUF_Q5_1] = deq_q5_1,
    [MP_GGUF_Q8_0] = deq_q8_0,     [MP_GGUF_Q2_K] = deq_q2_k,     [MP_GGUF_Q3_K] = deq_q3_k,
    [MP_GGUF_Q4_K] = deq_q4_k,     [MP_GGUF_Q5_K] = deq_q5_k,     [MP_GGUF_Q6_K] = deq_q6_k,
    [MP_GGUF_TQ1_0] = deq_tq1_0,   [MP_GGUF_TQ2_0] = deq_tq2_0,   [MP_GGUF_MXFP4] = deq_mxfp4,
    [MP_GGUF_IQ4_NL] = deq_iq4_nl, [MP_GGUF_IQ4_XS] = deq_iq4_xs, [MP_GGUF_Q1_0] = deq_q1_0,
    [MP_GGUF_Q2_0] = deq_q2_0,
};

int mp_gguf_type_dequantizable(uint32_t type)
{
    return type < MP_GGUF_TYPE_COUNT && deq_table[type] != NULL;
}

/* Spans below this many elements stay on the calling thread (no fork for small tensors). */
#define PARALLEL_MIN (1u << 18)
/* Blocks per OpenMP work item: about 16K elements. */
#define CHUNK_ELEMS (1u << 14)

mp_errcode mp_gguf_dequantize(uint32_t type, const void *src, float *dst, uint64_t n_elems,
                              mp_err *err)
{
    if (!mp_gguf_type_dequantizable(type)) {
        const char *name = mp_gguf_type_name(type);
        return mp_errf(err, MP_E_UNSUPPORTED, "type %s (id %u) cannot be dequantized: not supported",
                       name ? name : "unknown", type);
    }
    const uint64_t blk = mp_gguf_type_block(type), bsize = mp_gguf_type_size(type);
    if (n_elems % blk != 0)
        return mp_errf(err, MP_E_INPUT, "%llu elements are not a whole number of %s blocks of %llu",
                       (unsigned long long)n_elems, mp_gguf_type_name(type),
                       (unsigned long long)blk);
    const deq_fn fn = deq_table[type];
    const uint8_t *x = src;
    const uint64_t nb = n_elems / blk;
    const uint64_t per = CHUNK_ELEMS / blk ? CHUNK_ELEMS / blk : 1;
    const long long n_chunks = (long long)((nb + per - 1) / per);
#pragma omp parallel for schedule(static) if (n_elems >= PARALLEL_MIN)
    for (long long c = 0; c < n_chunks; c++) {
        const uint64_t b0 = (uint64_t)c * per;
        const uint64_t b1 = b0 + per < nb ? b0 + per : nb;
        fn(x + b0 * bsize, dst + b0 * blk, (size_t)(b1 - b0));
    }
    return MP_OK;
}
