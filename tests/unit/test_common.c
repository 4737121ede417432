/*
 * test_common.c - errors, strings, half precision, path containment.
 */
#include "../../common/mp_common.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

Test(unit_common, every_error_code_maps_to_a_documented_exit_code)
{
    const int expect[MP_E_COUNT] = {0, 1, 2, 3, 4, 4, 5, 5, 130};
    for (int c = 0; c < MP_E_COUNT; c++) {
        cr_expect_eq(mp_err_exit_code((mp_errcode)c), expect[c], "code %d", c);
        cr_expect_str_neq(mp_err_name((mp_errcode)c), "unknown");
    }
    cr_expect_eq(mp_err_exit_code(MP_E_COUNT), 5);
    cr_expect_str_eq(mp_err_name(MP_E_INPUT), "input");
}

Test(unit_common, error_line_names_file_offset_tensor_and_reason)
{
    mp_err err = MP_ERR_INIT;
    mp_errcode rc = mp_errf_at(&err, MP_E_INPUT, "model-00002-of-00004.safetensors",
                               "model.layers.3.mlp.up_proj.qweight", -1,
                               "data_offsets [%d, %d) run past end of data (%d bytes)", 1024,
                               9000, 8192);
    cr_assert_eq(rc, MP_E_INPUT);
    char line[1400];
    mp_err_format(&err, line, sizeof line);
    cr_expect_str_eq(line, "model-00002-of-00004.safetensors: tensor "
                           "'model.layers.3.mlp.up_proj.qweight': data_offsets [1024, 9000) run "
                           "past end of data (8192 bytes)");
    mp_errf_at(&err, MP_E_INPUT, "a.safetensors", NULL, 77, "invalid JSON in header");
    mp_err_format(&err, line, sizeof line);
    cr_expect_str_eq(line, "a.safetensors: byte 77: invalid JSON in header");
}

Test(unit_common, error_line_stays_one_line_for_hostile_names)
{
    mp_err err = MP_ERR_INIT;
    mp_errf_at(&err, MP_E_INPUT, "f", "evil\nname", -1, "bad\rthing");
    char line[1400];
    mp_err_format(&err, line, sizeof line);
    cr_expect_str_eq(line, "f: tensor 'evil?name': bad?thing");
}

Test(unit_common, error_message_is_truncated_not_overflowed)
{
    mp_err err = MP_ERR_INIT;
    char big[4000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    mp_errf_at(&err, MP_E_INPUT, big, big, 1, "%s", big);
    char line[100];
    mp_err_format(&err, line, sizeof line);
    cr_expect_eq(strlen(line), 99);
}

static mp_errcode forwards(mp_err *err, int fail)
{
    MP_RETURN_ERR_IF(fail, err, MP_E_IO, "failed %d", fail);
    return MP_OK;
}

static mp_errcode outer(mp_err *err, int fail)
{
    MP_FORWARD(forwards(err, fail));
    return MP_OK;
}

Test(unit_common, error_macros_return_and_forward)
{
    mp_err err = MP_ERR_INIT;
    cr_expect_eq(outer(&err, 0), MP_OK);
    cr_expect_eq(outer(&err, 3), MP_E_IO);
    cr_expect_str_eq(err.msg, "failed 3");
}

Test(unit_common, natural_order_puts_layer_2_before_layer_10)
{
    cr_expect_lt(mp_natcmp("model.layers.2.mlp", "model.layers.10.mlp"), 0);
    cr_expect_gt(mp_natcmp("model.layers.10", "model.layers.9"), 0);
    cr_expect_lt(mp_natcmp("a", "b"), 0);
    cr_expect_lt(mp_natcmp("a", "a.b"), 0);
    cr_expect_eq(mp_natcmp("x.007", "x.7"), 0);
    cr_expect_eq(mp_natcmp("same", "same"), 0);
}

Test(unit_common, utf8_validation_rejects_overlongs_surrogates_and_truncation)
{
    cr_expect(mp_utf8_valid("plain", 5));
    cr_expect(mp_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
    cr_expect_not(mp_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    cr_expect_not(mp_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
    cr_expect_not(mp_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    cr_expect_not(mp_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    cr_expect_not(mp_utf8_valid("\xe2\x82", 2));         /* truncated */
    cr_expect_not(mp_utf8_valid("\xff", 1));
    cr_expect_not(mp_utf8_valid("\x80", 1));
}

Test(unit_common, contained_names_never_leave_the_directory)
{
    cr_expect(mp_name_is_contained("model-00001-of-00002.safetensors"));
    cr_expect(mp_name_is_contained("sub/dir/x.safetensors"));
    cr_expect_not(mp_name_is_contained(""));
    cr_expect_not(mp_name_is_contained("/etc/passwd"));
    cr_expect_not(mp_name_is_contained("../x"));
    cr_expect_not(mp_name_is_contained("a/../../x"));
    cr_expect_not(mp_name_is_contained("a/.."));
    cr_expect_not(mp_name_is_contained("."));
    cr_expect_not(mp_name_is_contained("a//b"));
    cr_expect_not(mp_name_is_contained("a\\..\\b"));
    cr_expect_not(mp_name_is_contained("a\nb"));
    cr_expect(mp_name_is_contained("..a"));
}

Test(unit_common, checked_arithmetic_reports_overflow)
{
    uint64_t r;
    cr_expect_not(mp_add_overflow(1, 2, &r));
    cr_expect_eq(r, 3);
    cr_expect(mp_add_overflow(UINT64_MAX, 1, &r));
    cr_expect(mp_mul_overflow(1ull << 32, 1ull << 32, &r));
    cr_expect_not(mp_mul_overflow(1ull << 31, 1ull << 32, &r));
    cr_expect_eq(r, 1ull << 63);
}

Test(unit_common, little_endian_decode_is_explicit)
{
    const uint8_t b[8] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
    cr_expect_eq(mp_read_le64(b), 0x0807060504030201ull);
    cr_expect_eq(mp_read_le32(b), 0x04030201u);
    uint8_t w[8];
    mp_write_le64(w, 0x0807060504030201ull);
    cr_expect_arr_eq(w, b, 8);
}

/* The reference: exact rounding through double, which holds every f16 and f32 value. */
static uint16_t f16_ref(float f)
{
    if (isnan(f)) return 0x7E00;
    double best = INFINITY;
    uint16_t pick = 0;
    for (uint32_t h = 0; h < 0x7C00; h++) {
        double d = fabs((double)mp_f16_to_f32((uint16_t)h) - fabs((double)f));
        if (d < best || (d == best && (h & 1) == 0)) {
            best = d;
            pick = (uint16_t)h;
        }
    }
    /* Beyond 65504 + half an ulp (65520) the value rounds to infinity. */
    if (fabs((double)f) >= 65520.0) pick = 0x7C00;
    return (uint16_t)(pick | (signbit(f) ? 0x8000 : 0));
}

Test(unit_common, f16_round_trips_every_half_value)
{
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = mp_f16_to_f32((uint16_t)h);
        uint16_t back = mp_f32_to_f16(f);
        if (((h >> 10) & 0x1F) == 0x1F && (h & 0x3FF)) {
            cr_assert(isnan(f));
            cr_assert_eq(back & 0x7C00, 0x7C00);
            cr_assert_neq(back & 0x3FF, 0);
        } else {
            cr_assert_eq(back, h, "half 0x%04x -> %g -> 0x%04x", h, (double)f, back);
        }
    }
}

Test(unit_common, f16_rounds_to_nearest_even_like_the_reference)
{
    /* Ties, subnormal ties, the overflow edge and random values. */
    const float probes[] = {1.0f + 1.0f / 2048,  1.0f + 3.0f / 2048, 65504.0f, 65519.99f,
                            65520.0f,            -65520.0f,          5.9604645e-8f,
                            2.9802322e-8f,       2.9802326e-8f,      8.940697e-8f,
                            6.1035156e-5f,       6.1032e-5f,         0.1f,
                            -0.33333334f,        1e-10f,             3.14159f};
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++)
        cr_expect_eq(mp_f32_to_f16(probes[i]), f16_ref(probes[i]), "value %.9g",
                     (double)probes[i]);
    uint32_t x = 12345;
    for (int i = 0; i < 300; i++) {
        x = x * 1664525u + 1013904223u;
        float f;
        uint32_t bits = (x & 0x807FFFFFu) | ((100u + (x >> 24) % 48u) << 23);
        memcpy(&f, &bits, 4);
        cr_assert_eq(mp_f32_to_f16(f), f16_ref(f), "value %.9g", (double)f);
    }
    cr_expect(mp_f16_overflows(65520.0f));
    cr_expect_not(mp_f16_overflows(65519.0f));
    cr_expect_not(mp_f16_overflows(INFINITY));
}

Test(unit_common, bf16_rounds_to_nearest_even)
{
    cr_expect_eq(mp_f32_to_bf16(1.0f), 0x3F80);
    float tie;
    uint32_t b = 0x3F808000u; /* halfway between 0x3F80 and 0x3F81: stays even */
    memcpy(&tie, &b, 4);
    cr_expect_eq(mp_f32_to_bf16(tie), 0x3F80);
    b = 0x3F818000u; /* halfway, odd below: rounds up */
    memcpy(&tie, &b, 4);
    cr_expect_eq(mp_f32_to_bf16(tie), 0x3F82);
    cr_expect_eq(mp_f32_to_bf16(NAN) & 0x7FC0, 0x7FC0);
    cr_expect_eq(mp_bf16_to_f32(0xC000), -2.0f);
}

Test(unit_common, byte_counts_for_humans)
{
    char buf[32];
    mp_fmt_bytes(512, buf, sizeof buf);
    cr_expect_str_eq(buf, "512 B");
    mp_fmt_bytes(3u << 20, buf, sizeof buf);
    cr_expect_str_eq(buf, "3.00 MiB");
}

Test(unit_common, json_strings_are_escaped_as_serde_json_does)
{
    mp_buf b = MP_BUF_INIT;
    mp_buf_json_str(&b, "a\"b\\c\n\t\x01\xc3\xa9");
    cr_expect_str_eq(b.data, "\"a\\\"b\\\\c\\n\\t\\u0001\xc3\xa9\"");
    mp_buf_release(&b);
}
