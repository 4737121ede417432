/*
 * test_dequant.c - the CPU reference against hand-computed values: the worked examples of
 * doc/formats/gptq.md §6 (GPTQ v1/v2), awq.md §5 (AWQ GEMM) and compressed-tensors.md §4,
 * whose packed words are written here literally, not computed.
 */
#include "../../verify/verify.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TU_SUITE_WITH_TEMPDIR(unit_dequant);

typedef tu_tensor raw_tensor;

static void write_model(const char *config, const raw_tensor *ts, size_t n) { tu_write_model(tmp, config, ts, n); }

/* q[n][k] = (n + k) mod 16, z[n] = n + 1, s[n] = 0.25 * (n + 1): every product exact. */
static float expected(unsigned n, unsigned k) { return 0.25f * (float)(n + 1) * (float)((int)((n + k) % 16) - (int)(n + 1)); }

static const uint32_t gptq_qweight[8] = {0x76543210, 0x87654321, 0x98765432, 0xA9876543,
                                         0xBA987654, 0xCBA98765, 0xDCBA9876, 0xEDCBA987};

static uint16_t scales_f16[8];

static void init_scales(void)
{
    for (unsigned n = 0; n < 8; n++) scales_f16[n] = mp_f32_to_f16(0.25f * (float)(n + 1));
}

static void check_all(const char *prefix)
{
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    mp_qmodel *qm = NULL;
    cr_assert_eq(mp_st_open(&m, tmp, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(mp_qmodel_open(&qm, m, &err), MP_OK, "%s: %s", err.tensor, err.msg);
    cr_assert_eq(mp_qmodel_n_linears(qm), 1);
    const mp_qlinear *q = mp_qmodel_linear(qm, 0);
    cr_expect_str_eq(q->prefix, prefix);
    cr_expect_eq(q->n_rows, 8);
    cr_expect_eq(q->k_cols, 8);
    float out[64];
    cr_assert_eq(mp_dequant_ref(m, q, 0, 8, out, &err), MP_OK, "%s", err.msg);
    for (unsigned n = 0; n < 8; n++)
        for (unsigned k = 0; k < 8; k++)
            cr_expect_eq(out[n * 8 + k], expected(n, k), "w[%u][%u] = %g, want %g", n, k,
                         (double)out[n * 8 + k], (double)expected(n, k));
    /* A tile in the middle reads only its rows and agrees. */
    float mid[24];
    cr_assert_eq(mp_dequant_ref(m, q, q->pack == MP_QPACK_N8_INTERLEAVED ? 0 : 3, q->pack == MP_QPACK_N8_INTERLEAVED ? 3 : 6, mid, &err), MP_OK);
    unsigned first = q->pack == MP_QPACK_N8_INTERLEAVED ? 0 : 3;
    for (unsigned j = 0; j < 3; j++)
        for (unsigned k = 0; k < 8; k++) cr_expect_eq(mid[j * 8 + k], expected(first + j, k));
    mp_qmodel_free(qm);
    mp_st_close(m);
}

static void gptq_case(const char *format, uint32_t qzeros_word)
{
    init_scales();
    static int32_t g_idx[8];
    uint32_t qz = qzeros_word;
    const raw_tensor ts[] = {
        {{"layer.qweight", MP_DTYPE_I32, 2, {1, 8}}, gptq_qweight},
        {{"layer.qzeros", MP_DTYPE_I32, 2, {1, 1}}, &qz},
        {{"layer.scales", MP_DTYPE_F16, 2, {1, 8}}, scales_f16},
        {{"layer.g_idx", MP_DTYPE_I32, 1, {8}}, g_idx},
    };
    char config[256];
    snprintf(config, sizeof config,
             "{\"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 4, "
             "\"group_size\": 8, \"sym\": false, \"checkpoint_format\": \"%s\"}}", format);
    write_model(config, ts, 4);
    check_all("layer");
}

Test(unit_dequant, gptq_v1_worked_example_stores_zero_minus_one)
{
    gptq_case("gptq", 0x76543210);
}

Test(unit_dequant, gptq_v2_worked_example_stores_raw_zero)
{
    gptq_case("gptq_v2", 0x87654321);
}

Test(unit_dequant, awq_gemm_worked_example_uses_the_interleave)
{
    init_scales();
    static const uint32_t qweight[8] = {0x75316420, 0x86427531, 0x97538642, 0xA8649753,
                                        0xB975A864, 0xCA86B975, 0xDB97CA86, 0xECA8DB97};
    uint32_t qz = 0x86427531;
    const raw_tensor ts[] = {
        {{"layer.qweight", MP_DTYPE_I32, 2, {8, 1}}, qweight},
        {{"layer.qzeros", MP_DTYPE_I32, 2, {1, 1}}, &qz},
        {{"layer.scales", MP_DTYPE_F16, 2, {1, 8}}, scales_f16},
    };
    write_model("{\"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4, "
                "\"group_size\": 8, \"zero_point\": true, \"version\": \"gemm\"}}", ts, 3);
    check_all("layer");
}

Test(unit_dequant, compressed_tensors_worked_example_packs_zero_points_along_n)
{
    init_scales();
    uint32_t zp = 0x87654321;
    static const int64_t shape[2] = {8, 8};
    const raw_tensor ts[] = {
        {{"layer.weight_packed", MP_DTYPE_I32, 2, {8, 1}}, gptq_qweight},
        {{"layer.weight_zero_point", MP_DTYPE_I32, 2, {1, 1}}, &zp},
        {{"layer.weight_scale", MP_DTYPE_F16, 2, {8, 1}}, scales_f16},
        {{"layer.weight_shape", MP_DTYPE_I64, 1, {2}}, shape},
    };
    write_model("{\"quantization_config\": {\"quant_method\": \"compressed-tensors\", "
                "\"format\": \"pack-quantized\", \"config_groups\": {\"group_0\": {\"targets\": "
                "[\"Linear\"], \"weights\": {\"num_bits\": 4, \"type\": \"int\", \"symmetric\": "
                "false, \"strategy\": \"group\", \"group_size\": 8}}}, \"ignore\": []}}", ts, 4);
    check_all("layer");
}

Test(unit_dequant, checkpoint_without_quantization_config_has_no_linears)
{
    static const uint16_t w[4] = {0x3C00, 0x4000, 0x4200, 0x4400};
    const raw_tensor ts[] = {{{"lm_head.weight", MP_DTYPE_F16, 2, {2, 2}}, w}};
    write_model("{\"architectures\": [\"X\"]}", ts, 1);
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    mp_qmodel *qm = NULL;
    cr_assert_eq(mp_st_open(&m, tmp, &err), MP_OK);
    cr_assert_eq(mp_qmodel_open(&qm, m, &err), MP_OK);
    cr_expect_not(mp_qmodel_quantized(qm));
    cr_expect_eq(mp_qmodel_n_linears(qm), 0);
    cr_expect_null(mp_qmodel_owner(qm, mp_st_find(m, "lm_head.weight")));
    mp_qmodel_free(qm);
    mp_st_close(m);
}

/* doc/formats/fp4.md §1, written literally: E2M1 codes 0..15 (code 8 is -0.0) and E8M0 bytes. */
Test(unit_dequant, fp4_e2m1_and_e8m0_decode_as_the_tables_say)
{
    static const uint32_t e2m1[16] = {0x00000000, 0x3F000000, 0x3F800000, 0x3FC00000, 0x40000000, 0x40400000,
                                      0x40800000, 0x40C00000, 0x80000000, 0xBF000000, 0xBF800000, 0xBFC00000,
                                      0xC0000000, 0xC0400000, 0xC0800000, 0xC0C00000};
    for (uint8_t c = 0; c < 16; c++) {
        float v = mp_e2m1_to_f32(c);
        uint32_t u;
        memcpy(&u, &v, 4);
        cr_assert_eq(u, e2m1[c], "E2M1 code %u: 0x%08x, want 0x%08x", c, u, e2m1[c]);
        cr_assert_eq(mp_e2m1_to_f32((uint8_t)(c | 0xF0)), v, "only the low nibble counts");
    }
    static const struct { uint8_t b; uint32_t bits; } e8m0[] = {
        {0x00, 0x00400000}, {0x01, 0x00800000}, {0x7A, 0x3D000000}, {0x7F, 0x3F800000},
        {0x80, 0x40000000}, {0xFE, 0x7F000000}};
    for (size_t i = 0; i < sizeof e8m0 / sizeof *e8m0; i++) {
        float v = mp_e8m0_to_f32(e8m0[i].b);
        uint32_t u;
        memcpy(&u, &v, 4);
        cr_assert_eq(u, e8m0[i].bits, "E8M0 0x%02x: 0x%08x, want 0x%08x", e8m0[i].b, u, e8m0[i].bits);
    }
    cr_assert(mp_e8m0_to_f32(0xFF) != mp_e8m0_to_f32(0xFF), "E8M0 0xFF is NaN");
    cr_assert(mp_fp4_scale_to_f32(0xFF, MP_DTYPE_U8) > 3.0e38f, "a 0xFF MX scale is 2^128 = inf for the producers");
    cr_assert_eq(mp_fp4_scale_to_f32(0x38, MP_DTYPE_F8_E4M3), 1.0f, "an NVFP4 scale is E4M3");
}
