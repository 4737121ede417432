/*
 * test_gguf.c - GGUF dequantization against hand-built blocks whose values are worked out by
 * hand from the block layouts of doc/formats/gguf.md §5 and the formulas of §6: every field is
 * written literally, and the expected floats are literals, not recomputed by the code under test.
 * Also: the fp16 conversion on all 65536 inputs, the parallel path against the serial one, the
 * writer's layout and its read-back, and the refusal of types without a dequantizer.
 */
#include "../../formats/formats.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

TU_SUITE_WITH_TEMPDIR(unit_gguf);

#define F16_ONE 0x00, 0x3C    /* 1.0 little-endian */
#define F16_HALF 0x00, 0x38   /* 0.5 */
#define F16_TWO 0x00, 0x40    /* 2.0 */

static void deq(uint32_t type, const uint8_t *blk, float *y, uint64_t n)
{
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_gguf_dequantize(type, blk, y, n, &err), MP_OK, "%s: %s", mp_gguf_type_name(type), err.msg);
}

static void expect_at(const float *y, size_t i, float want, const char *what)
{
    uint32_t a, b;
    memcpy(&a, &y[i], 4);
    memcpy(&b, &want, 4);
    cr_expect_eq(a, b, "%s: y[%zu] = %.9g, want %.9g", what, i, (double)y[i], (double)want);
}

Test(unit_gguf, q4_0_low_nibbles_first_then_high)
{
    uint8_t b[18] = {F16_HALF};
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(j | (15 - j) << 4);
    float y[32];
    deq(MP_GGUF_Q4_0, b, y, 32);
    expect_at(y, 0, -4.0f, "q4_0");
    expect_at(y, 9, 0.5f, "q4_0");
    expect_at(y, 15, 3.5f, "q4_0");
    expect_at(y, 16, 3.5f, "q4_0");
    expect_at(y, 31, -4.0f, "q4_0");
}

Test(unit_gguf, q4_1_adds_the_min)
{
    uint8_t b[20] = {F16_HALF, 0x00, 0xBC}; /* d 0.5, m -1 */
    for (int j = 0; j < 16; j++) b[4 + j] = (uint8_t)(j | (15 - j) << 4);
    float y[32];
    deq(MP_GGUF_Q4_1, b, y, 32);
    expect_at(y, 3, 0.5f, "q4_1");
    expect_at(y, 16, 6.5f, "q4_1");
    expect_at(y, 31, -1.0f, "q4_1");
}

Test(unit_gguf, q5_0_fifth_bit_from_qh)
{
    uint8_t b[22] = {F16_ONE, 0xFF, 0xFF, 0x00, 0x00}; /* qh: elements 0..15 have bit 4 */
    for (int j = 0; j < 16; j++) b[6 + j] = (uint8_t)(j | j << 4);
    float y[32];
    deq(MP_GGUF_Q5_0, b, y, 32);
    expect_at(y, 5, 5.0f, "q5_0");
    expect_at(y, 21, -11.0f, "q5_0");
    expect_at(y, 16, -16.0f, "q5_0");
}

Test(unit_gguf, q5_1_fifth_bit_and_min)
{
    uint8_t b[24] = {0x00, 0x34, F16_TWO, 0x00, 0x00, 0xFF, 0xFF}; /* d .25, m 2, qh 16..31 */
    for (int j = 0; j < 16; j++) b[8 + j] = (uint8_t)(j | j << 4);
    float y[32];
    deq(MP_GGUF_Q5_1, b, y, 32);
    expect_at(y, 1, 2.25f, "q5_1");
    expect_at(y, 31, 9.75f, "q5_1");
    expect_at(y, 16, 6.0f, "q5_1");
}

Test(unit_gguf, q8_0_signed_codes)
{
    uint8_t b[34] = {0x00, 0x30}; /* d 0.125 */
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)(j - 16);
    float y[32];
    deq(MP_GGUF_Q8_0, b, y, 32);
    expect_at(y, 0, -2.0f, "q8_0");
    expect_at(y, 16, 0.0f, "q8_0");
    expect_at(y, 31, 1.875f, "q8_0");
}

Test(unit_gguf, mxfp4_e8m0_scale_and_fp4_codebook)
{
    uint8_t b[2 * 17] = {128};
    for (int j = 0; j < 16; j++) b[1 + j] = (uint8_t)(j | (15 - j) << 4);
    b[17] = 1; /* 2^-127: a subnormal scale */
    b[18] = 0x07;
    float y[64];
    deq(MP_GGUF_MXFP4, b, y, 64);
    expect_at(y, 7, 12.0f, "mxfp4");
    expect_at(y, 5, 6.0f, "mxfp4");
    expect_at(y, 16, -12.0f, "mxfp4");
    expect_at(y, 31, 0.0f, "mxfp4");
    expect_at(y, 32, 12.0f * 0x1p-127f, "mxfp4 subnormal");
    static const float fp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    for (int j = 0; j < 16; j++) {
        expect_at(y, (size_t)j, fp4[j], "mxfp4 low nibble");
        expect_at(y, (size_t)j + 16, fp4[15 - j], "mxfp4 high nibble");
    }
}

Test(unit_gguf, iq4_nl_codebook)
{
    uint8_t b[18] = {F16_ONE};
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(j | (15 - j) << 4);
    float y[32];
    deq(MP_GGUF_IQ4_NL, b, y, 32);
    expect_at(y, 0, -127.0f, "iq4_nl");
    expect_at(y, 8, 1.0f, "iq4_nl");
    expect_at(y, 16, 113.0f, "iq4_nl");
}

Test(unit_gguf, q2_k_planes_scales_and_mins)
{
    uint8_t b[84];
    memset(b, 0x21, 16);          /* scale 1, min 2 */
    b[3] = 0x05;                  /* sub-block 3 (elements 48..63): scale 5, min 0 */
    memset(b + 16, 0xE4, 64);     /* codes 0,1,2,3 at shifts 0,2,4,6 */
    b[80] = 0x00, b[81] = 0x3C;   /* d 1 */
    b[82] = 0x00, b[83] = 0x38;   /* dmin 0.5 */
    float y[256];
    deq(MP_GGUF_Q2_K, b, y, 256);
    expect_at(y, 0, -1.0f, "q2_k");
    expect_at(y, 32, 0.0f, "q2_k");
    expect_at(y, 48, 5.0f, "q2_k");
    expect_at(y, 64, 1.0f, "q2_k");
    expect_at(y, 96, 2.0f, "q2_k");
    expect_at(y, 128, -1.0f, "q2_k");
}

Test(unit_gguf, q3_k_hmask_and_signed_6bit_scales)
{
    uint8_t b[110];
    memset(b, 0xFF, 32);          /* high bits set: no -4 */
    b[0] = 0xFE;                  /* element 0 (bit 0) gets -4 */
    memset(b + 32, 0xE4, 64);
    memset(b + 96, 0x11, 8);      /* low 4 bits of every scale: 1 */
    memset(b + 104, 0xAA, 3);     /* high 2 bits: 2 -> scale (1 | 32) - 32 = 1 */
    b[107] = 0x2A;                /* scale 15: high bits 0 -> 1 - 32 = -31 */
    b[108] = 0x00, b[109] = 0x3C; /* d 1 */
    float y[256];
    deq(MP_GGUF_Q3_K, b, y, 256);
    expect_at(y, 0, -4.0f, "q3_k");
    expect_at(y, 1, 0.0f, "q3_k");
    expect_at(y, 32, 1.0f, "q3_k");
    expect_at(y, 224, 3.0f, "q3_k");
    expect_at(y, 255, -93.0f, "q3_k");
}

static void k4_scales(uint8_t *s)
{
    static const uint8_t v[12] = {0x41, 2, 3, 4, 2, 2, 2, 2, 0x25, 0x26, 0x27, 0x28};
    memcpy(s, v, 12); /* scales 1,2,3,4,21,6,7,8 (scale 4 takes 16 from byte 0's top bits); mins 2 */
}

Test(unit_gguf, q4_k_packed_6bit_scales_and_mins)
{
    uint8_t b[144] = {F16_ONE, F16_HALF};
    k4_scales(b + 4);
    memset(b + 16, 0x73, 128);
    float y[256];
    deq(MP_GGUF_Q4_K, b, y, 256);
    expect_at(y, 0, 2.0f, "q4_k");
    expect_at(y, 32, 13.0f, "q4_k");
    expect_at(y, 128, 62.0f, "q4_k");
    expect_at(y, 255, 55.0f, "q4_k");
}

Test(unit_gguf, q5_k_high_bit_per_chunk)
{
    uint8_t b[176] = {F16_ONE, F16_HALF};
    k4_scales(b + 4);
    b[4] = 1;                     /* no high bits here: scale 4 is 5 */
    memset(b + 16, 0x01, 32);     /* qh bit 0: the low half of chunk 0 gets +16 */
    memset(b + 48, 0x73, 128);
    float y[256];
    deq(MP_GGUF_Q5_K, b, y, 256);
    expect_at(y, 0, 18.0f, "q5_k");
    expect_at(y, 32, 13.0f, "q5_k");
    expect_at(y, 64, 8.0f, "q5_k");
    expect_at(y, 128, 14.0f, "q5_k");
}

Test(unit_gguf, q6_k_signed_scales_and_codes)
{
    uint8_t b[210];
    memset(b, 0x21, 128);         /* ql: low 1, high 2 */
    memset(b + 128, 0xE4, 64);    /* qh: 0, 1, 2, 3 */
    for (int i = 0; i < 16; i++) b[192 + i] = (uint8_t)(int8_t)(i - 8);
    b[208] = 0x00, b[209] = 0x38; /* d 0.5 */
    float y[256];
    deq(MP_GGUF_Q6_K, b, y, 256);
    expect_at(y, 0, 124.0f, "q6_k");
    expect_at(y, 32, 45.0f, "q6_k");
    expect_at(y, 64, -4.0f, "q6_k");
    expect_at(y, 96, -18.0f, "q6_k");
    expect_at(y, 144, -15.5f, "q6_k");
}

Test(unit_gguf, tq2_0_two_bit_planes)
{
    uint8_t b[66];
    memset(b, 0xE4, 64);
    b[64] = 0x00, b[65] = 0x40; /* d 2 */
    float y[256];
    deq(MP_GGUF_TQ2_0, b, y, 256);
    expect_at(y, 0, -2.0f, "tq2_0");
    expect_at(y, 32, 0.0f, "tq2_0");
    expect_at(y, 64, 2.0f, "tq2_0");
    expect_at(y, 96, 4.0f, "tq2_0");
    expect_at(y, 128, -2.0f, "tq2_0");
}

Test(unit_gguf, tq1_0_base3_digits_in_order)
{
    uint8_t b[54];
    memset(b, 128, 48);           /* 128: five zero digits */
    memset(b + 48, 128, 4);
    b[0] = 81;                    /* digits -1, 1, 1, 0, 0 */
    b[32] = 255;                  /* digits 1, 1, 1, 1, 1 */
    b[50] = 81;                   /* qh[2] */
    b[52] = 0x00, b[53] = 0x40;   /* d 2 */
    float y[256];
    deq(MP_GGUF_TQ1_0, b, y, 256);
    expect_at(y, 0, -2.0f, "tq1_0");
    expect_at(y, 1, 0.0f, "tq1_0");
    expect_at(y, 32, 2.0f, "tq1_0");
    expect_at(y, 64, 2.0f, "tq1_0");
    expect_at(y, 96, 0.0f, "tq1_0");
    expect_at(y, 160, 2.0f, "tq1_0");
    expect_at(y, 176, 2.0f, "tq1_0");
    expect_at(y, 242, -2.0f, "tq1_0");
    expect_at(y, 246, 2.0f, "tq1_0");
    expect_at(y, 254, 0.0f, "tq1_0");
}

Test(unit_gguf, iq4_xs_six_bit_scales)
{
    uint8_t b[136] = {F16_ONE, 0x08, 0x00}; /* scales_h: sub-block 1 gets high bits 2 */
    memset(b + 4, 0x21, 4);
    memset(b + 8, 0x80, 128);
    float y[256];
    deq(MP_GGUF_IQ4_XS, b, y, 256);
    expect_at(y, 0, 3937.0f, "iq4_xs");
    expect_at(y, 16, -31.0f, "iq4_xs");
    expect_at(y, 32, -254.0f, "iq4_xs");
    expect_at(y, 64, 3937.0f, "iq4_xs");
}

Test(unit_gguf, plain_types)
{
    float y[4];
    const uint8_t bf[] = {0x80, 0x3F, 0x00, 0xC0};
    deq(MP_GGUF_BF16, bf, y, 2);
    expect_at(y, 0, 1.0f, "bf16");
    expect_at(y, 1, -2.0f, "bf16");
    const uint8_t f64[] = {0, 0, 0, 0, 0, 0, 0xF0, 0x3F, 0, 0, 0, 0, 0, 0, 0x04, 0xC0};
    deq(MP_GGUF_F64, f64, y, 2);
    expect_at(y, 0, 1.0f, "f64");
    expect_at(y, 1, -2.5f, "f64");
    const uint8_t i8[] = {0xFF, 0x7F, 0x80};
    deq(MP_GGUF_I8, i8, y, 3);
    expect_at(y, 0, -1.0f, "i8");
    expect_at(y, 2, -128.0f, "i8");
    const uint8_t i16[] = {0x00, 0x80, 0x01, 0x00};
    deq(MP_GGUF_I16, i16, y, 2);
    expect_at(y, 0, -32768.0f, "i16");
    const uint8_t i32[] = {0xFF, 0xFF, 0xFF, 0xFF};
    deq(MP_GGUF_I32, i32, y, 1);
    expect_at(y, 0, -1.0f, "i32");
    const uint8_t i64[] = {0, 0, 0, 0, 0, 0, 0, 0x80};
    deq(MP_GGUF_I64, i64, y, 1);
    expect_at(y, 0, -0x1p63f, "i64");
    const uint8_t f32[] = {0x00, 0x00, 0xC0, 0x7F};
    deq(MP_GGUF_F32, f32, y, 1);
    cr_expect(isnan(y[0]), "f32 NaN kept");
}

Test(unit_gguf, f16_every_bit_pattern_matches_the_reference_conversion)
{
    uint8_t *h = malloc(2 << 16);
    float *y = malloc(sizeof(float) << 16);
    for (uint32_t i = 0; i < 1u << 16; i++) h[2 * i] = (uint8_t)i, h[2 * i + 1] = (uint8_t)(i >> 8);
    deq(MP_GGUF_F16, h, y, 1u << 16);
    for (uint32_t i = 0; i < 1u << 16; i++) {
        float want = mp_f16_to_f32((uint16_t)i);
        uint32_t a, b;
        memcpy(&a, &y[i], 4);
        memcpy(&b, &want, 4);
        cr_assert_eq(a, b, "f16 0x%04x: 0x%08x, want 0x%08x", i, a, b);
    }
    expect_at(y, 0x0001, 0x1p-24f, "f16 smallest subnormal");
    expect_at(y, 0x7BFF, 65504.0f, "f16 largest");
    free(h);
    free(y);
}

Test(unit_gguf, parallel_span_equals_block_by_block)
{
    const uint64_t n = 3u << 20; /* above the threading threshold */
    uint8_t *raw = malloc(n / 256 * 144);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    uint32_t x = 12345;
    for (size_t i = 0; i < n / 256 * 144; i++) {
        x = x * 1103515245u + 12345u;
        raw[i] = (uint8_t)(x >> 16);
    }
    for (size_t i = 0; i < n / 256; i++) raw[i * 144 + 1] = 0x3C, raw[i * 144 + 3] = 0x38; /* finite */
    deq(MP_GGUF_Q4_K, raw, a, n);
    for (uint64_t i = 0; i < n; i += 256) deq(MP_GGUF_Q4_K, raw + i / 256 * 144, b + i, 256);
    cr_expect(memcmp(a, b, n * sizeof *a) == 0, "threaded result differs");
    free(raw);
    free(a);
    free(b);
}

Test(unit_gguf, types_without_a_dequantizer_are_refused_by_name)
{
    uint8_t b[300] = {0};
    float y[256];
    mp_err err = MP_ERR_INIT;
    cr_expect_eq(mp_gguf_dequantize(MP_GGUF_IQ2_XXS, b, y, 256, &err), MP_E_UNSUPPORTED);
    cr_expect(strstr(err.msg, "IQ2_XXS") && strstr(err.msg, "not supported"), "%s", err.msg);
    cr_expect_eq(mp_gguf_dequantize(MP_GGUF_Q8_1, b, y, 32, &err), MP_E_UNSUPPORTED);
    cr_expect_eq(mp_gguf_dequantize(4, b, y, 32, &err), MP_E_UNSUPPORTED);
    cr_expect_eq(mp_gguf_dequantize(MP_GGUF_Q4_0, b, y, 33, &err), MP_E_INPUT);
    size_t n = 0;
    for (uint32_t t = 0; t < MP_GGUF_TYPE_COUNT; t++) n += (size_t)mp_gguf_type_dequantizable(t);
    cr_expect_eq(n, 25, "25 supported types, got %zu", n);
}

/* ------------------------------------------------------------ writer and reader API */

static char *tmpdir_path(const char *name) { return tu_path(tmp, name); }

Test(unit_gguf, writer_round_trip_with_custom_alignment)
{
    char *path = tmpdir_path("rt.gguf");
    mp_err err = MP_ERR_INIT;
    mp_gguf_writer *w = NULL;
    cr_assert_eq(mp_gguf_writer_open(&w, path, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(mp_gguf_writer_add_str(w, "general.architecture", "llama", &err), MP_OK);
    cr_assert_eq(mp_gguf_writer_add_u32(w, "general.alignment", 64, &err), MP_OK);
    cr_assert_eq(mp_gguf_writer_add_i32(w, "t.i32", -7, &err), MP_OK);
    cr_assert_eq(mp_gguf_writer_add_u16(w, "t.u16", 65535, &err), MP_OK);
    /* arr[str] ["ab", ""] and arr[i16] [-2, 3], encoded by hand: u64 count, then elements */
    const uint8_t strs[] = {2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 0, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(mp_gguf_writer_add_kv(w, "t.strs", MP_GGUF_V_ARR, MP_GGUF_V_STR, strs, sizeof strs, &err), MP_OK);
    const uint8_t i16s[] = {2, 0, 0, 0, 0, 0, 0, 0, 0xFE, 0xFF, 3, 0};
    cr_assert_eq(mp_gguf_writer_add_kv(w, "t.i16s", MP_GGUF_V_ARR, MP_GGUF_V_I16, i16s, sizeof i16s, &err), MP_OK);
    const uint64_t ne_a[] = {3}, ne_b[] = {32, 2};
    cr_assert_eq(mp_gguf_writer_add_tensor(w, "a", MP_GGUF_F32, 1, ne_a, &err), MP_OK);
    cr_assert_eq(mp_gguf_writer_add_tensor(w, "b", MP_GGUF_Q8_0, 2, ne_b, &err), MP_OK);
    cr_assert_eq(mp_gguf_writer_begin(w, &err), MP_OK, "%s", err.msg);
    uint8_t a[12], b[68];
    for (size_t i = 0; i < sizeof a; i++) a[i] = (uint8_t)(i + 1);
    for (size_t i = 0; i < sizeof b; i++) b[i] = (uint8_t)(200 - i);
    cr_assert_eq(mp_gguf_writer_write(w, a, 5, &err), MP_OK);
    cr_assert_eq(mp_gguf_writer_write(w, a + 5, 7, &err), MP_OK);
    cr_assert_eq(mp_gguf_writer_write(w, b, sizeof b, &err), MP_OK);
    cr_assert_eq(mp_gguf_writer_finish(w, &err), MP_OK, "%s", err.msg);

    mp_gguf *g = NULL;
    cr_assert_eq(mp_gguf_open(&g, path, &err), MP_OK, "%s", err.msg);
    cr_expect_eq(mp_gguf_version(g), 3);
    cr_expect_eq(mp_gguf_alignment(g), 64);
    int64_t v;
    double f;
    cr_expect(mp_gguf_get_int(g, "t.i32", &v) && v == -7);
    cr_expect(mp_gguf_get_int(g, "t.u16", &v) && v == 65535);
    cr_expect(mp_gguf_get_float(g, "t.i32", &f) && f == -7.0);
    cr_expect(!mp_gguf_get_int(g, "general.architecture", &v), "a string is not an integer");
    cr_expect_str_eq(mp_gguf_get_str(g, "general.architecture"), "llama");
    const mp_gguf_kv *kv = mp_gguf_find_kv(g, "t.strs");
    cr_assert(kv && kv->type == MP_GGUF_V_ARR && kv->elem == MP_GGUF_V_STR && kv->n == 2);
    char s[8];
    uint64_t len;
    cr_assert_eq(mp_gguf_arr_get(g, kv, 0, s, sizeof s, &len, &err), MP_OK);
    cr_expect_str_eq(s, "ab");
    cr_assert_eq(mp_gguf_arr_get(g, kv, 1, s, sizeof s, &len, &err), MP_OK);
    cr_expect(len == 0 && s[0] == '\0');
    cr_expect_eq(mp_gguf_arr_get(g, kv, 2, s, sizeof s, &len, &err), MP_E_INPUT, "past the end");
    kv = mp_gguf_find_kv(g, "t.i16s");
    uint8_t raw[2];
    cr_assert_eq(mp_gguf_arr_get(g, kv, 1, raw, sizeof raw, NULL, &err), MP_OK);
    cr_expect(raw[0] == 3 && raw[1] == 0);
    const mp_gguf_tensor *ta = mp_gguf_find(g, "a"), *tb = mp_gguf_find(g, "b");
    cr_assert(ta && tb && !mp_gguf_find(g, "c"));
    cr_expect_eq(ta->offset % 64, 0);
    cr_expect_eq(tb->rel_offset, 64, "a (12 bytes) padded to 64");
    cr_expect_eq(tb->n_bytes, 68);
    cr_expect_eq(mp_gguf_file(g, 0)->size % 64, 0, "padding after the last tensor");
    uint8_t back[68];
    cr_assert_eq(mp_gguf_read(g, tb, 0, back, sizeof back, &err), MP_OK);
    cr_expect(memcmp(back, b, sizeof b) == 0);
    cr_expect_eq(mp_gguf_read(g, tb, 60, back, 9, &err), MP_E_INPUT, "a read past the tensor is refused");
    mp_gguf_close(g);
    free(path);
}

Test(unit_gguf, writer_refuses_what_the_reader_would)
{
    char *path = tmpdir_path("bad.gguf");
    mp_err err = MP_ERR_INIT;
    mp_gguf_writer *w = NULL;
    cr_assert_eq(mp_gguf_writer_open(&w, path, &err), MP_OK);
    cr_expect_eq(mp_gguf_writer_add_u32(w, "", 1, &err), MP_E_INPUT, "empty key");
    cr_assert_eq(mp_gguf_writer_add_u32(w, "k", 1, &err), MP_OK);
    cr_expect_eq(mp_gguf_writer_add_u32(w, "k", 2, &err), MP_E_INPUT, "duplicate key");
    cr_expect_eq(mp_gguf_writer_add_u32(w, "general.alignment", 48, &err), MP_E_INPUT, "not a power of two");
    cr_expect_eq(mp_gguf_writer_add_u16(w, "general.alignment", 64, &err), MP_E_INPUT, "not u32");
    const uint8_t empty[8] = {0};
    cr_expect_eq(mp_gguf_writer_add_kv(w, "n", MP_GGUF_V_ARR, MP_GGUF_V_ARR, empty, 8, &err), MP_E_INPUT,
                 "nested array");
    char name[70];
    memset(name, 'x', 64);
    name[64] = '\0';
    const uint64_t ne[] = {32}, odd[] = {33};
    cr_expect_eq(mp_gguf_writer_add_tensor(w, name, MP_GGUF_F32, 1, ne, &err), MP_E_INPUT, "64-byte name");
    cr_expect_eq(mp_gguf_writer_add_tensor(w, "q", MP_GGUF_Q4_0, 1, odd, &err), MP_E_INPUT, "partial block");
    cr_expect_eq(mp_gguf_writer_add_tensor(w, "r", 4, 1, ne, &err), MP_E_INPUT, "removed type");
    cr_assert_eq(mp_gguf_writer_add_tensor(w, "t", MP_GGUF_F32, 1, ne, &err), MP_OK);
    cr_expect_eq(mp_gguf_writer_add_tensor(w, "t", MP_GGUF_F32, 1, ne, &err), MP_E_INPUT, "duplicate tensor");
    cr_assert_eq(mp_gguf_writer_begin(w, &err), MP_OK);
    cr_expect_eq(mp_gguf_writer_add_u32(w, "late", 1, &err), MP_E_INPUT, "metadata after the data began");
    uint8_t buf[200] = {0};
    cr_assert_eq(mp_gguf_writer_write(w, buf, 100, &err), MP_OK);
    cr_expect_eq(mp_gguf_writer_finish(w, &err), MP_E_INPUT, "28 bytes missing");
    cr_expect(strstr(err.msg, "100 of 128"), "%s", err.msg);
    cr_expect(!mp_exists(path), "an unfinished file is removed");
    cr_assert_eq(mp_gguf_writer_open(&w, path, &err), MP_OK);
    cr_assert_eq(mp_gguf_writer_add_tensor(w, "t", MP_GGUF_F32, 1, ne, &err), MP_OK);
    cr_assert_eq(mp_gguf_writer_begin(w, &err), MP_OK);
    cr_expect_eq(mp_gguf_writer_write(w, buf, 129, &err), MP_E_INPUT, "a byte past the last tensor");
    mp_gguf_writer_abort(w);
    cr_expect(!mp_exists(path), "abort removes the file");
    char split[64];
    mp_gguf_split_name("m", 2, 5, split, sizeof split);
    cr_expect_str_eq(split, "m-00002-of-00005.gguf");
    free(path);
}
