/*
 * test_kernel_float.c - the float families' decoders and roundings (kernels/mp_kernel.h,
 * kernels/fp4.cl, kernels/bnb4.cl), compiled as C exactly as the cpu backend compiles them
 * (kernels/cl_as_c.h), against common/half.c and the registry's bitsandbytes tables, bit for bit:
 * every E4M3 and E5M2 code (NaN payloads included), every E2M1 code with and without ModelOpt's
 * +0.0, every FP4 block-scale byte (E4M3, E8M0 with 0xFF as inf, ldexp or NaN, global / or *),
 * every E8M0 FP8 block scale (DeepSeek-V4) times every E4M3 code, both
 * bnb tables, and f32 -> BF16/F16 -> f32 over a sweep of 2^20 bit patterns spread
 * over all 2^32 plus the rounding edges (ties, subnormal halves, overflow, NaN, inf).
 * tests/ref/float_verify.py runs the same sources on the devices.
 */
#include "../../formats/formats.h"
#include "../../kernels/cl_as_c.h"
#include "../../kernels/fp4.cl"
#include "../../kernels/fp8.cl"
#include "../../kernels/bnb4.cl"

#include <criterion/criterion.h>
#include <string.h>

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

Test(unit_kernel_float, fp8_codes_decode_as_the_reference)
{
    for (uint32_t b = 0; b < 256; b++) {
        cr_expect_eq(bits_of(mp_e4m3(b)), bits_of(mp_e4m3_to_f32((uint8_t)b)), "E4M3 0x%02x", b);
        cr_expect_eq(bits_of(mp_e5m2(b)), bits_of(mp_e5m2_to_f32((uint8_t)b)), "E5M2 0x%02x", b);
    }
}

Test(unit_kernel_float, e2m1_codes_decode_as_the_reference)
{
    for (uint32_t c = 0; c < 16; c++) {
        cr_expect_eq(bits_of(fp4_e2m1(c, 0)), bits_of(mp_e2m1_to_f32((uint8_t)c)), "E2M1 %u", c);
        float zpos = c == 8 ? 0.0f : mp_e2m1_to_f32((uint8_t)c);
        cr_expect_eq(bits_of(fp4_e2m1(c, MP_FL_ZPOS)), bits_of(zpos), "E2M1 %u, +0.0 for code 8", c);
    }
}

/* dequant_fp4.c's effective scale: the byte decoded (mp_fp4_scale_to_f32), 2^127 for an E8M0
 * 0xFF under fp4_ldexp, then / or * the global scale. */
static float ref_eff(uint8_t b, int e8m0, int ldexp, int nan, int global, int divides, float g)
{
    float s = mp_fp4_scale_to_f32(b, e8m0 ? MP_DTYPE_U8 : MP_DTYPE_F8_E4M3);
    if (nan && e8m0) s = mp_e8m0_to_f32(b); /* e8m0_nan: 0xFF is NaN (DeepSeek-V4) */
    if (ldexp && b == 0xFF && e8m0) s = mp_e8m0_to_f32(0xFE);
    if (global) s = divides ? s / g : s * g;
    return s;
}

Test(unit_kernel_float, fp4_block_scales_decode_as_the_reference)
{
    const float g = 448.0f * 6.0f / 0.3172f;
    for (uint32_t flags = 0; flags < 64; flags++) {
        if (flags & MP_FL_NESTED) continue; /* bnb4's */
        uint32_t P[MP_P_COUNT] = {0};
        P[P_FLAGS] = flags;
        P[P_GLOBAL] = bits_of(g);
        for (uint32_t e8m0 = 0; e8m0 < 2; e8m0++) {
            P[P_ELEM] = e8m0;
            for (uint32_t b = 0; b < 256; b++) {
                float want = ref_eff((uint8_t)b, (int)e8m0, !!(flags & MP_FL_LDEXP), !!(flags & MP_FL_E8NAN),
                                     !!(flags & MP_FL_GLOBAL), !!(flags & MP_FL_GDIV), g);
                cr_expect_eq(bits_of(fp4_scale(b, P)), bits_of(want), "scale 0x%02x, E8M0 %u, flags %u", b, e8m0,
                             flags);
            }
        }
    }
}

/* fp8.cl with E8M0 block scales (P_SDT 3, DeepSeek-V4): every scale byte times every E4M3 code
 * is dequant_float.c's f32(code) * 2^(e - 127) (0 is 2^-127, 0xFF NaN). */
Test(unit_kernel_float, fp8_e8m0_block_scales_decode_as_the_reference)
{
    uint8_t qw[256], sc[256];
    uint32_t P[MP_P_COUNT] = {0};
    P[P_BN] = 1, P[P_GSIZE] = 256, P[P_SSTRIDE] = 1, P[P_QSTRIDE] = 0, P[P_SDT] = 3; /* row e: scale e, codes 0..255 */
    for (uint32_t c = 0; c < 256; c++) qw[c] = (uint8_t)c, sc[c] = (uint8_t)c;
    for (uint32_t e = 0; e < 256; e++)
        for (uint32_t c = 0; c < 256; c++) {
            float want = mp_e4m3_to_f32((uint8_t)c) * mp_dtype_load_f32(&sc[e], MP_DTYPE_F8_E8M0);
            float got = fp8_weight(qw, sc, NULL, NULL, P, e, c);
            cr_expect(bits_of(got) == bits_of(want) || (got != got && want != want), "E8M0 0x%02x x E4M3 0x%02x", e,
                      c);
        }
}

/* The registry's tables, as bnbgen.py writes them (f32 bits). */
static const uint32_t nf4[16] = {0xBF800000u, 0xBF3239B1u, 0xBF066B30u, 0xBECA32A0u, 0xBE91A24Du, 0xBE3D353Fu,
                                 0xBDBA7871u, 0x00000000u, 0x3DA2FAFFu, 0x3E24CAE3u, 0x3E7C04DDu, 0x3EAD033Au,
                                 0x3EE1A4B8u, 0x3F1007ABu, 0x3F3913B3u, 0x3F800000u};

Test(unit_kernel_float, bnb_tables_are_bitsandbytes)
{
    for (uint32_t c = 0; c < 16; c++) {
        cr_expect_eq(bits_of(bnb4_table(c, 0)), nf4[c], "NF4 %u", c);
        float fp4 = bnb4_table(c, 1), mag = bnb4_table(c & 7u, 1);
        cr_expect(c == 8 ? bits_of(fp4) == 0 : fp4 == (c & 8u ? -mag : mag), "FP4 %u", c);
    }
    cr_expect_eq(bits_of(bnb4_table(1, 1)), 0x3BAAAAABu, "FP4 1 is f32(0.0052083)");
}

static void one_rounding(uint32_t u)
{
    float v;
    memcpy(&v, &u, sizeof v);
    cr_expect_eq(bits_of(mp_round_to(v, 1)), bits_of(mp_bf16_to_f32(mp_f32_to_bf16(v))), "BF16 of 0x%08x", u);
    cr_expect_eq(bits_of(mp_round_to(v, 2)), bits_of(mp_f16_to_f32(mp_f32_to_f16(v))), "F16 of 0x%08x", u);
    cr_expect_eq(bits_of(mp_round_to(v, 0)), u, "no rounding of 0x%08x", u);
}

Test(unit_kernel_float, bf16_and_f16_roundings_are_the_reference)
{
    static const uint32_t edges[] = {0x00000000u, 0x80000000u, 0x33000000u, 0x33000001u, 0x32FFFFFFu, 0x33800000u,
                                     0x33C00000u, 0x38800000u, 0x387FE000u, 0x387FF000u, 0x387FFFFFu, 0x38801000u,
                                     0x38803000u, 0x477FEFFFu, 0x477FF000u, 0x7F7FFFFFu, 0x7F800000u, 0xFF800000u,
                                     0x7FC00000u, 0x7F800001u, 0xFFA00001u, 0x3F808000u, 0x3F818000u, 0x3F800001u};
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) one_rounding(edges[i]);
    for (uint64_t u = 0; u < (1ull << 32); u += 4093) one_rounding((uint32_t)u);
}
