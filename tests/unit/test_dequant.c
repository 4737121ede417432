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

/* The reference's word-at-a-time path (4-bit layouts whose words hold 8 consecutive k of a row:
 * GPTQ columns, cutlass-int4 and onednn-int4 bytes, compressed-tensors words) against its plain
 * path (each code extracted alone, then scaled: mp_ref_groups_plain), bit for bit, on every
 * linear of generated models of every layout and of GPTQ at 2, 3, 4 and 8 bits, act-order too,
 * each linear whole and in row ranges that start and end off any multiple of 8. */
static void fast_equals_plain(const char *dir)
{
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    mp_qmodel *qm = NULL;
    cr_assert_eq(mp_st_open(&m, dir, &err), MP_OK, "%s: %s", dir, err.msg);
    cr_assert_eq(mp_qmodel_open(&qm, m, &err), MP_OK, "%s: %s: %s", dir, err.tensor, err.msg);
    cr_assert_gt(mp_qmodel_n_linears(qm), 0);
    for (size_t i = 0; i < mp_qmodel_n_linears(qm); i++) {
        const mp_qlinear *q = mp_qmodel_linear(qm, i);
        mp_ref_groups *g = NULL, *p = NULL;
        cr_assert_eq(mp_ref_groups_read(m, q, &g, &err), MP_OK, "%s", err.msg);
        cr_assert_eq(mp_ref_groups_read(m, q, &p, &err), MP_OK, "%s", err.msg);
        mp_ref_groups_plain(p);
        uint64_t N = q->n_rows, K = q->k_cols;
        float *a = malloc((size_t)(N * K) * sizeof *a), *b = malloc((size_t)(N * K) * sizeof *b);
        cr_assert(a && b);
        uint64_t ranges[][2] = {{0, N}, {N / 3 / 8 * 8 + 3, N - 5}, {N - 1, N}};
        for (size_t r = 0; r < sizeof ranges / sizeof *ranges; r++) {
            uint64_t n0 = ranges[r][0], n1 = ranges[r][1];
            if (q->pack == MP_QPACK_N8_INTERLEAVED) n0 &= ~(uint64_t)7;
            cr_assert_eq(mp_dequant_ref_with(m, q, g, n0, n1, a, &err), MP_OK, "%s", err.msg);
            cr_assert_eq(mp_dequant_ref_with(m, q, p, n0, n1, b, &err), MP_OK, "%s", err.msg);
            for (uint64_t j = 0; j < (n1 - n0) * K; j++) {
                uint32_t x, y;
                memcpy(&x, &a[j], 4), memcpy(&y, &b[j], 4);
                cr_assert_eq(x, y, "%s %s (%s, %u bits) row %llu column %llu: 0x%08x, plain 0x%08x", dir, q->prefix,
                             q->format ? q->format : "?", q->bits, (unsigned long long)(n0 + j / K),
                             (unsigned long long)(j % K), x, y);
            }
        }
        free(a), free(b);
        mp_ref_groups_free(g), mp_ref_groups_free(p);
    }
    mp_qmodel_free(qm);
    mp_st_close(m);
}

static char *make_model(const char *name, char *const extra[])
{
    char *dir = tu_path(tmp, name), mk[4096];
    snprintf(mk, sizeof mk, "%s/mkmodel", tu_env("MP_TOOLS"));
    char *argv[24] = {mk, dir, "--layers", "1", "--hidden", "256", "--intermediate", "768", "--vocab", "64",
                      "--heads", "4", "--kv-heads", "2"};
    size_t n = 14;
    for (size_t i = 0; extra[i] && n < 23; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    run_result r = tu_run(NULL, argv, NULL);
    cr_assert_eq(r.status, 0, "mkmodel: %s", r.err);
    tu_run_free(&r);
    return dir;
}

Test(unit_dequant, word_path_equals_plain_decode_for_every_layout_and_width)
{
    static const char *const bits[] = {"2", "3", "4", "8"};
    for (size_t i = 0; i < sizeof bits / sizeof *bits; i++) {
        char name[32];
        snprintf(name, sizeof name, "gptq%s", bits[i]);
        char *extra[] = {"--bits", (char *)bits[i], "--group-size", "64", NULL};
        char *dir = make_model(name, extra);
        fast_equals_plain(dir);
        free(dir);
    }
    char *extra_act[] = {"--group-size", "128", "--desc-act", NULL};
    char *act = make_model("act", extra_act);
    fast_equals_plain(act);
    char *extra_sym[] = {"--group-size", "64", "--sym", NULL};
    char *sym = make_model("sym", extra_sym);
    static const char *const layouts[] = {"cutlass-int4", "onednn-int4", "compressed-tensors", "awq", "gptq-v2"};
    for (size_t i = 0; i < sizeof layouts / sizeof *layouts; i++)
        for (int s = 0; s < 2; s++) {
            char name[64];
            snprintf(name, sizeof name, "%s-from-%s", layouts[i], s ? "act" : "sym");
            char *d = tu_path(tmp, name);
            char *argv[] = {(char *)tu_env("MP_BIN"), "convert", s ? act : sym, d, "--to", (char *)layouts[i],
                            "--quiet", NULL};
            run_result r = tu_run(NULL, argv, NULL);
            if (r.status == 0) fast_equals_plain(d); /* a layout refuses act-order: that is the CLI's test */
            else cr_assert(s == 1, "convert --to %s: %s", layouts[i], r.err);
            tu_run_free(&r);
            free(d);
        }
    free(act), free(sym);
}
