/*
 * test_dense.c - the fast dense path (repack/dense.c) against the CPU reference (verify/), bit
 * for bit: every integer layout modelprep reads (GPTQ v1/v2 at 2/3/4/8 bits, sym and asym,
 * act-order; AWQ, compressed-tensors, cutlass-int4 and oneDNN made from them by `convert`) and
 * the FP8 schemes (DeepSeek blocks on a ragged grid, e5m2, compressed-tensors groups with BF16
 * and F16 scales, ModelOpt's pre-rounded scale, NaN and subnormal codes), to F32, F16 and BF16,
 * whole linears and row ranges. The branch-free f16/bf16 rounding is checked against
 * common/half.c over a sweep of every f32 exponent and the boundary neighbourhoods.
 */
#include "../../repack/repack.h"
#include "../../verify/verify.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

TU_SUITE_WITH_TEMPDIR(unit_dense);

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void check_store(uint32_t u)
{
    float v = u2f(u);
    uint16_t h, b;
    uint32_t over = mp_dense_store(&v, 1, MP_DTYPE_F16, &h);
    mp_dense_store(&v, 1, MP_DTYPE_BF16, &b);
    cr_assert_eq(h, mp_f32_to_f16(v), "f16 of 0x%08x: 0x%04x, want 0x%04x", u, h, mp_f32_to_f16(v));
    cr_assert_eq(b, mp_f32_to_bf16(v), "bf16 of 0x%08x: 0x%04x, want 0x%04x", u, b, mp_f32_to_bf16(v));
    cr_assert_eq(over != 0, mp_f16_overflows(v) != 0, "overflow flag of 0x%08x", u);
}

Test(unit_dense, store_rounds_as_common_half_does)
{
    for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += 0x1003) check_store((uint32_t)u);
    static const uint32_t edges[] = {0x477FEFFF, 0x477FF000, 0x477FF001, 0x47800000, 0x387FFFFF,
                                     0x38800000, 0x33000000, 0x33000001, 0x32FFFFFF, 0x7F800000,
                                     0x7F800001, 0x7FC00000, 0x7FFFFFFF, 0x00000001, 0x3F800000};
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++)
        for (uint32_t d = 0; d < 64; d++) {
            check_store(edges[i] - 32 + d);
            check_store((edges[i] - 32 + d) | 0x80000000u);
        }
}

static const mp_dtype dtypes[] = {MP_DTYPE_F32, MP_DTYPE_F16, MP_DTYPE_BF16};

static uint32_t out_bits(float v, mp_dtype dt)
{
    if (dt == MP_DTYPE_F16) return mp_f32_to_f16(v);
    if (dt == MP_DTYPE_BF16) return mp_f32_to_bf16(v);
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

/* Rows [n0, n1) of q through both paths; returns how many values differ. */
static uint64_t compare_rows(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1, mp_dtype dt)
{
    uint64_t cnt = (n1 - n0) * q->k_cols;
    size_t es = mp_dtype_bits(dt) / 8;
    float *ref = malloc((size_t)cnt * 4 + 4);
    uint8_t *fast = malloc((size_t)cnt * es + 4);
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_dequant_ref(m, q, n0, n1, ref, &err), MP_OK, "%s", err.msg);
    int over = 0;
    cr_assert_eq(mp_dense_rows(m, q, n0, n1, dt, fast, &over, &err), MP_OK, "%s", err.msg);
    uint64_t bad = 0, any_over = 0;
    for (uint64_t i = 0; i < cnt; i++) {
        uint32_t want = out_bits(ref[i], dt), got = 0;
        memcpy(&got, fast + i * es, es);
        bad += got != want;
        any_over |= dt == MP_DTYPE_F16 && mp_f16_overflows(ref[i]);
    }
    cr_assert_eq((uint64_t)over, any_over, "%s: f16 overflow flag %d, want %llu", q->prefix, over,
                 (unsigned long long)any_over);
    free(ref);
    free(fast);
    return bad;
}

static void compare_model(const char *dir, size_t want_linears)
{
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    mp_qmodel *qm = NULL;
    cr_assert_eq(mp_st_open(&m, dir, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(mp_qmodel_open(&qm, m, &err), MP_OK, "%s: %s", err.tensor, err.msg);
    cr_assert_geq(mp_qmodel_n_linears(qm), want_linears, "%s: %zu linears", dir, mp_qmodel_n_linears(qm));
    for (size_t i = 0; i < mp_qmodel_n_linears(qm); i++) {
        const mp_qlinear *q = mp_qmodel_linear(qm, i);
        for (size_t d = 0; d < 3; d++) {
            uint64_t bad = compare_rows(m, q, 0, q->n_rows, dtypes[d]);
            cr_assert_eq(bad, 0, "%s %s: %llu values differ from the reference", dir, q->prefix,
                         (unsigned long long)bad);
            if (q->n_rows > 24)
                cr_assert_eq(compare_rows(m, q, 8, 24, dtypes[d]), 0, "%s %s rows 8..24", dir, q->prefix);
        }
    }
    mp_qmodel_free(qm);
    mp_st_close(m);
}

static char *mkmodel(const char *name, char *const *args)
{
    char *dir = tu_path(tmp, name);
    char *argv[16] = {tu_path(tu_env("MP_TOOLS"), "mkmodel"), dir};
    size_t n = 2;
    for (; args[n - 2]; n++) argv[n] = args[n - 2];
    argv[n] = NULL;
    run_result r = tu_run(NULL, argv, NULL);
    cr_assert_eq(r.status, 0, "mkmodel %s: %s", name, r.err);
    tu_run_free(&r);
    free(argv[0]);
    return dir;
}

static char *convert_to(const char *src, const char *name, const char *fmt)
{
    char *dir = tu_path(tmp, name);
    char *argv[] = {(char *)tu_env("MP_BIN"), "convert", (char *)src, dir, "--to", (char *)fmt, "--quiet", NULL};
    run_result r = tu_run(NULL, argv, NULL);
    cr_assert_eq(r.status, 0, "convert %s --to %s: %s", src, fmt, r.err);
    tu_run_free(&r);
    return dir;
}

Test(unit_dense, integer_layouts_equal_the_reference, .timeout = 300)
{
    char *a1[] = {"--layers", "1", "--bits", "4", "--format", "gptq_v2", NULL};
    char *a2[] = {"--layers", "1", "--bits", "3", "--desc-act", NULL};
    char *a3[] = {"--layers", "1", "--bits", "8", "--group-size", "-1", NULL};
    char *a4[] = {"--layers", "1", "--bits", "2", "--sym", NULL};
    char *a5[] = {"--layers", "1", "--sym", NULL};
    char *v2 = mkmodel("v2", a1), *act = mkmodel("act", a2), *b8 = mkmodel("b8", a3);
    char *b2 = mkmodel("b2", a4), *sym = mkmodel("sym", a5);
    const char *dirs[] = {v2, act, b8, b2, sym};
    for (size_t i = 0; i < 5; i++) compare_model(dirs[i], 7);
    char *made[] = {convert_to(v2, "awq", "awq"), convert_to(v2, "ct", "compressed-tensors"),
                    convert_to(v2, "onednn", "onednn-int4"), convert_to(sym, "cutlass", "cutlass-int4"),
                    convert_to(b8, "ct8", "compressed-tensors")};
    for (size_t i = 0; i < 5; i++) {
        compare_model(made[i], 7);
        free(made[i]);
    }
    for (size_t i = 0; i < 5; i++) free((char *)dirs[i]);
}

/* ------------------------------------------------------------ FP8 checkpoints */

typedef tu_raw_tensor raw_tensor;

static void write_model(const char *dir, const char *config, const raw_tensor *ts, size_t n)
{
    cr_assert_eq(mkdir(dir, 0755), 0);
    tu_write_model(dir, config, ts, n);
}

static uint64_t rng = 88172645463325252ull;
static uint32_t next_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* codes [N, K] with every byte value (NaN codes included), and a scale grid [R, C] of dtype sdt
 * spanning 2^-24 .. 2^3, with one 0 and one f32 subnormal where sdt allows. */
static raw_tensor fp8_codes(const char *name, mp_dtype dt, uint64_t N, uint64_t K)
{
    uint8_t *c = malloc((size_t)(N * K));
    for (uint64_t i = 0; i < N * K; i++) c[i] = (uint8_t)(i < 256 ? i : next_u32());
    return (raw_tensor){{name, dt, 2, {N, K}}, c};
}

static raw_tensor fp8_scales(const char *name, mp_dtype sdt, uint64_t R, uint64_t C)
{
    size_t es = mp_dtype_bits(sdt) / 8;
    uint8_t *s = malloc((size_t)(R * C) * es);
    for (uint64_t i = 0; i < R * C; i++) {
        float v = u2f(0x33800000u + (next_u32() % 0x0D800000u));
        if (i == 1) v = 0.0f;
        if (i == 2 && sdt == MP_DTYPE_F32) v = u2f(0x00012345u);
        uint32_t u = sdt == MP_DTYPE_F16 ? mp_f32_to_f16(v) : sdt == MP_DTYPE_BF16 ? mp_f32_to_bf16(v) : 0;
        if (sdt == MP_DTYPE_F32) memcpy(&u, &v, 4);
        memcpy(s + i * es, &u, es);
    }
    return (raw_tensor){{name, sdt, 2, {R, C}}, s};
}

static void fp8_case(const char *name, const char *config, mp_dtype et, uint64_t N, uint64_t K,
                     const char *sname, mp_dtype sdt, uint64_t R, uint64_t C)
{
    char *dir = tu_path(tmp, name);
    raw_tensor t[2] = {fp8_codes("model.layers.0.mlp.down_proj.weight", et, N, K), {{0}, NULL}};
    char sfull[128];
    snprintf(sfull, sizeof sfull, "model.layers.0.mlp.down_proj.%s", sname);
    t[1] = fp8_scales(sfull, sdt, R, C);
    write_model(dir, config, t, 2);
    compare_model(dir, 1);
    free((void *)t[0].data);
    free((void *)t[1].data);
    free(dir);
}

Test(unit_dense, fp8_schemes_equal_the_reference, .timeout = 120)
{
    const char *ds = "{\"torch_dtype\": \"bfloat16\", \"quantization_config\": {\"quant_method\": \"fp8\", "
                     "\"weight_block_size\": [128, 128]}}";
    fp8_case("ds_ragged", ds, MP_DTYPE_F8_E4M3, 300, 520, "weight_scale_inv", MP_DTYPE_F32, 3, 5);
    fp8_case("ds_e5m2", ds, MP_DTYPE_F8_E5M2, 130, 256, "weight_scale_inv", MP_DTYPE_F32, 2, 2);
    const char *ct = "{\"quantization_config\": {\"quant_method\": \"compressed-tensors\", \"format\": "
                     "\"float-quantized\", \"config_groups\": {\"g\": {\"targets\": [\"Linear\"], \"weights\": "
                     "{\"num_bits\": 8, \"type\": \"float\", \"strategy\": \"group\", \"group_size\": 32}}}}}";
    fp8_case("ct_group_bf16", ct, MP_DTYPE_F8_E4M3, 40, 256, "weight_scale", MP_DTYPE_BF16, 40, 8);
    fp8_case("ct_group_f16", ct, MP_DTYPE_F8_E4M3, 40, 256, "weight_scale", MP_DTYPE_F16, 40, 8);
    const char *ctc = "{\"quantization_config\": {\"quant_method\": \"compressed-tensors\", \"format\": "
                      "\"float-quantized\", \"config_groups\": {\"g\": {\"targets\": [\"Linear\"], \"weights\": "
                      "{\"num_bits\": 8, \"type\": \"float\", \"strategy\": \"channel\"}}}}}";
    fp8_case("ct_channel", ctc, MP_DTYPE_F8_E4M3, 33, 4096, "weight_scale", MP_DTYPE_BF16, 33, 1);
    const char *mo = "{\"torch_dtype\": \"bfloat16\", \"quantization_config\": {\"quant_method\": \"modelopt\", "
                     "\"quant_algo\": \"FP8_PER_CHANNEL_PER_TOKEN\"}}";
    fp8_case("modelopt", mo, MP_DTYPE_F8_E4M3, 64, 300, "weight_scale", MP_DTYPE_F32, 64, 1);
}
