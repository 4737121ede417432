/*
 * test_gguf_blocks.c - ggml blocks packed from canonical codes (repack/gguf_blocks.c): the
 * worked Q4_0 block of doc/formats/gguf-export.md, Q5_0's fifth bits, Q8_0's q ^ 0x80, the
 * choice of type, and every block dequantizing (formats' ggml-exact dequantizer) to s * (q - z).
 */
#include "../../repack/repack.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

Test(unit_gguf_blocks, worked_q4_0_block_has_the_documented_bytes)
{
    uint8_t q[32], out[18];
    for (int j = 0; j < 32; j++) q[j] = (uint8_t)(5 * j % 16);
    uint16_t z = 8, d = mp_f32_to_f16(0.01f);
    cr_assert_eq(d, 0x211F);
    const mp_gguf_block_rule *r = mp_gguf_block_rule_for(4, 1);
    cr_assert(r && r->type == MP_GGUF_Q4_0);
    mp_gguf_pack_row(r, q, &z, &d, 32, 32, out);
    static const uint8_t want[18] = {0x1f, 0x21, 0x00, 0x55, 0xaa, 0xff, 0x44, 0x99, 0xee, 0x33, 0x88,
                                     0xdd, 0x22, 0x77, 0xcc, 0x11, 0x66, 0xbb};
    cr_assert_arr_eq(out, want, 18);
}

Test(unit_gguf_blocks, the_type_follows_bits_and_zero_points)
{
    cr_assert_eq(mp_gguf_block_rule_for(2, 0)->type, MP_GGUF_Q4_0);
    cr_assert_eq(mp_gguf_block_rule_for(3, 1)->type, MP_GGUF_Q4_0);
    cr_assert_eq(mp_gguf_block_rule_for(4, 1)->type, MP_GGUF_Q4_0);
    cr_assert_eq(mp_gguf_block_rule_for(4, 0)->type, MP_GGUF_Q5_0);
    cr_assert_eq(mp_gguf_block_rule_for(8, 1)->type, MP_GGUF_Q8_0);
    cr_assert_null(mp_gguf_block_rule_for(8, 0), "asymmetric int8 fits no block");
    cr_assert_null(mp_gguf_block_rule_for(5, 1));
}

/* Every rule, on codes and zero points over their whole range and two groups per row: the
 * block dequantizes to exactly (float)(q - z) * s, the reference's one rounding. */
static void exact_for(uint32_t bits, int mid)
{
    const mp_gguf_block_rule *r = mp_gguf_block_rule_for(bits, mid);
    cr_assert_not_null(r);
    enum { K = 128, GS = 64 };
    uint8_t q[K], out[4 * 34];
    uint16_t z[2], d[2] = {mp_f32_to_f16(0.0123f), mp_f32_to_f16(-0.5f)};
    uint32_t maxq = (1u << bits) - 1;
    for (uint32_t zz = 0; zz <= (mid ? 0 : maxq); zz++) {
        z[0] = (uint16_t)(mid ? 1u << (bits - 1) : zz);
        z[1] = (uint16_t)(mid ? 1u << (bits - 1) : maxq - zz);
        for (int k = 0; k < K; k++) q[k] = (uint8_t)(((uint32_t)k * 7u + zz) % (maxq + 1));
        mp_gguf_pack_row(r, q, z, d, K, GS, out);
        float v[K];
        mp_err err = MP_ERR_INIT;
        cr_assert_eq(mp_gguf_dequantize(r->type, out, v, K, &err), MP_OK);
        for (int k = 0; k < K; k++) {
            float want = (float)((int)q[k] - (int)z[k / GS]) * mp_f16_to_f32(d[k / GS]);
            cr_assert(memcmp(&v[k], &want, 4) == 0, "%u-bit z %u k %d: %g != %g", bits, z[k / GS], k, (double)v[k], (double)want);
        }
    }
}

Test(unit_gguf_blocks, every_rule_dequantizes_to_the_reference_bit_for_bit)
{
    exact_for(2, 0);
    exact_for(3, 0);
    exact_for(4, 1);
    exact_for(4, 0);
    exact_for(8, 1);
}

Test(unit_gguf_blocks, q8_0_codes_are_q_xor_0x80)
{
    uint8_t q[32], out[34];
    uint16_t z = 128, d = 0x3c00;
    for (int j = 0; j < 32; j++) q[j] = (uint8_t)(j * 8);
    mp_gguf_pack_row(mp_gguf_block_rule_for(8, 1), q, &z, &d, 32, 32, out);
    for (int j = 0; j < 32; j++) cr_assert_eq(out[2 + j], (uint8_t)(q[j] ^ 0x80));
}

Test(unit_gguf_blocks, q8_0_quantizer_matches_ggml_on_ties_and_zero_blocks)
{
    float x[64] = {0};
    uint8_t out[68];
    for (int j = 0; j < 32; j++) x[32 + j] = (float)(j - 16) * 0.5f; /* amax 8: d = 8/127 */
    x[32 + 5] = 8.0f * 63.5f / 127.0f;                                 /* near a tie */
    mp_gguf_quantize_q8_0_ref(x, 64, out);
    cr_assert_eq(out[0] | out[1] << 8, 0, "a zero block has d = 0");
    for (int j = 0; j < 32; j++) cr_assert_eq(out[2 + j], 0);
    float d = 8.0f / 127.0f, id = 1.0f / d;
    cr_assert_eq(out[34] | out[35] << 8, mp_f32_to_f16(d));
    for (int j = 0; j < 32; j++) cr_assert_eq((int8_t)out[36 + j], (int8_t)roundf(x[32 + j] * id), "element %d", j);
}

/* ggml's dequantize_row_q1_0 and _q2_0 (doc/formats/gguf-export.md §3): one f16 d, then bits. */
Test(unit_gguf_blocks, q1_0_and_q2_0_dequantize_as_ggml)
{
    uint8_t b1[18], b2[18];
    uint16_t d = mp_f32_to_f16(0.375f);
    b1[0] = b2[0] = (uint8_t)d;
    b1[1] = b2[1] = (uint8_t)(d >> 8);
    for (int i = 0; i < 16; i++) b1[2 + i] = b2[2 + i] = (uint8_t)(i * 29 + 3);
    float y1[128], y2[64];
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_gguf_dequantize(MP_GGUF_Q1_0, b1, y1, 128, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(mp_gguf_dequantize(MP_GGUF_Q2_0, b2, y2, 64, &err), MP_OK, "%s", err.msg);
    for (int j = 0; j < 128; j++)
        cr_assert_eq(y1[j], (b1[2 + j / 8] >> (j % 8)) & 1 ? 0.375f : -0.375f, "q1_0 element %d", j);
    for (int j = 0; j < 64; j++)
        cr_assert_eq(y2[j], (float)((b2[2 + j / 4] >> (2 * (j % 4)) & 3) - 1) * 0.375f, "q2_0 element %d", j);
}

/* gpt-oss's MXFP4 block moves into block_mxfp4 as the worked example of
 * doc/formats/gguf-export.md §5 says: the scale byte first, then byte j = code j | code j+16 << 4;
 * and over every code and every E8M0 byte, ggml's dequantizer gives the values
 * ldexp(E2M1 value, e - 127) of the source, -0 (code 8) read as +0. */
Test(unit_gguf_blocks, mxfp4_block_is_the_documented_byte_move)
{
    static const uint8_t codes[16] = {0x21, 0x43, 0x65, 0x87, 0xA9, 0xCB, 0xED, 0x0F,
                                      0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE};
    static const uint8_t want[17] = {0x7E, 0x01, 0x12, 0x23, 0x34, 0x45, 0x56, 0x67, 0x78,
                                     0x89, 0x9A, 0xAB, 0xBC, 0xCD, 0xDE, 0xEF, 0xF0};
    uint8_t e = 0x7E, out[17];
    mp_gguf_pack_mxfp4_row(codes, &e, 32, out);
    cr_assert_arr_eq(out, want, 17);
    static const float fp4[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
    for (int s = 0; s < 256; s++) {
        uint8_t in[16], sc = (uint8_t)s, blk[17];
        for (int i = 0; i < 16; i++) in[i] = (uint8_t)((2 * i) | (2 * i + 1 + s) % 16 << 4);
        mp_gguf_pack_mxfp4_row(in, &sc, 32, blk);
        float v[32];
        mp_err err = MP_ERR_INIT;
        cr_assert_eq(mp_gguf_dequantize(MP_GGUF_MXFP4, blk, v, 32, &err), MP_OK);
        for (int k = 0; k < 32; k++) {
            int c = k % 2 ? in[k / 2] >> 4 : in[k / 2] & 15;
            float ref = ldexpf(fp4[c], s - 127);
            cr_assert(v[k] == ref, "e %d k %d code %d: %g != %g", s, k, c,
                      (double)v[k], (double)ref);
        }
    }
}
