/*
 * test_dense.c - the fast dense path (repack/dense.c) against the CPU reference (verify/), bit
 * for bit: every integer layout modelprep reads (GPTQ v1/v2 at 2/3/4/8 bits, sym and asym,
 * act-order; AWQ, compressed-tensors, cutlass-int4 (u4 and s4) and oneDNN made from them by
 * `convert`; hand-written GPTQ, AWQ and compressed-tensors linears whose zero points, scales and
 * shapes would show a wrong 16-entry table, see integer_tables_equal_the_reference) and
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

/* The same values 40 at a time: the vector runs (F16C where the CPU has it), not only the tail. */
static void check_store_runs(const float *v, size_t n)
{
    uint16_t h[40], b[40];
    uint32_t over = mp_dense_store(v, n, MP_DTYPE_F16, h), want_over = 0;
    mp_dense_store(v, n, MP_DTYPE_BF16, b);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(h[i], mp_f32_to_f16(v[i]), "f16 of %a in a run: 0x%04x", (double)v[i], h[i]);
        cr_assert_eq(b[i], mp_f32_to_bf16(v[i]), "bf16 of %a in a run: 0x%04x", (double)v[i], b[i]);
        want_over |= mp_f16_overflows(v[i]) != 0;
    }
    cr_assert_eq(over != 0, want_over, "overflow flag of a run");
}

Test(unit_dense, store_rounds_as_common_half_does)
{
    float run[40];
    size_t n = 0;
    for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += 0x1003) {
        check_store((uint32_t)u);
        run[n++] = u2f((uint32_t)u);
        if (n == 40) check_store_runs(run, n), n = 0;
    }
    static const uint32_t edges[] = {0x477FEFFF, 0x477FF000, 0x477FF001, 0x47800000, 0x387FFFFF,
                                     0x38800000, 0x33000000, 0x33000001, 0x32FFFFFF, 0x7F800000,
                                     0x7F800001, 0x7FC00000, 0x7FFFFFFF, 0x00000001, 0x3F800000};
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++)
        for (uint32_t d = 0; d < 64; d++) {
            check_store(edges[i] - 32 + d);
            check_store((edges[i] - 32 + d) | 0x80000000u);
        }
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

/* convert src --to fmt [opt val] into tmp/name. */
static char *convert_with(const char *src, const char *name, const char *fmt, const char *opt, const char *val)
{
    char *dir = tu_path(tmp, name);
    char *argv[] = {(char *)tu_env("MP_BIN"), "convert", (char *)src, dir, "--to", (char *)fmt, "--quiet",
                    (char *)opt, (char *)val, NULL};
    run_result r = tu_run(NULL, argv, NULL);
    cr_assert_eq(r.status, 0, "convert %s --to %s: %s", src, fmt, r.err);
    tu_run_free(&r);
    return dir;
}

static char *convert_to(const char *src, const char *name, const char *fmt)
{
    return convert_with(src, name, fmt, NULL, NULL);
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
    for (size_t i = 0; i < 5; i++) tu_dense_model_vs_ref(dirs[i], 7);
    char *made[] = {convert_to(v2, "awq", "awq"), convert_to(v2, "ct", "compressed-tensors"),
                    convert_to(v2, "onednn", "onednn-int4"), convert_to(sym, "cutlass", "cutlass-int4"),
                    convert_to(b8, "ct8", "compressed-tensors"),
                    convert_with(sym, "cutlass_s4", "cutlass-int4", "--int4", "s4")}; /* code_xor 8 */
    for (size_t i = 0; i < 6; i++) {
        tu_dense_model_vs_ref(made[i], 7);
        free(made[i]);
    }
    for (size_t i = 0; i < 5; i++) free((char *)dirs[i]);
}

/* A fixed xorshift stream: the random codes, zero points and scales of the cases below. */
static uint64_t rng = 88172645463325252ull;
static uint32_t next_u32(void) { return tu_xorshift(&rng); }

/* ------------------------------------------------------------ integer tables, written by hand */

/* The 16-entry tables of the int path (a group's (q - z) * s, rounded once) against the reference
 * where a wrong table shows: zero points 0 and 15, f16 scales of +-0, subnormals, +-inf and NaNs,
 * 2, 3, 4 and 8 bits, act-order with a shuffled g_idx, ragged and odd K, odd group sizes, a group
 * whose unused table entries overflow f16 (the flag must stay clear) and one whose used ones do. */
typedef struct int_case {
    const char *name, *layout; /* gptq, gptq_v2, awq or ct */
    uint32_t bits;
    uint64_t N, K, gs;
    int act;
    uint16_t scale;            /* nonzero: every scale has these f16 bits, and every zero point is 0 */
} int_case;

static const uint16_t special_scales[] = {0x0000, 0x8000, 0x0001, 0x03FF, 0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x7C01};

/* Random words, n of them; zero points (zeros) begin with nibbles 0 and 15 (0 throughout: flat). */
static uint32_t *int_words(uint64_t n, int zeros, int flat)
{
    uint32_t *w = malloc((size_t)n * 4 + 4);
    for (uint64_t i = 0; i < n; i++) w[i] = flat ? 0 : next_u32() ^ (next_u32() << 16);
    if (zeros && !flat) w[0] = 0xF00FF00Fu;
    return w;
}

static uint16_t *int_scales_f16(uint64_t n, uint16_t flat)
{
    uint16_t *s = malloc((size_t)n * 2 + 2);
    for (uint64_t i = 0; i < n; i++) {
        uint16_t r = (uint16_t)(0x1800 + next_u32() % 0x3000 + (next_u32() % 2 ? 0x8000 : 0)); /* 2^-9 .. 2^3 */
        s[i] = flat ? flat : i < sizeof special_scales / 2 ? special_scales[i] : r;
    }
    return s;
}

/* A shuffled g_idx (act) or k / gs. */
static int32_t *int_gidx(uint64_t K, uint64_t gs, int act)
{
    int32_t *g = malloc((size_t)K * 4);
    for (uint64_t k = 0; k < K; k++) g[k] = (int32_t)(k / gs);
    for (uint64_t k = K - 1; act && k > 0; k--) {
        uint64_t j = next_u32() % (k + 1);
        int32_t t = g[k];
        g[k] = g[j];
        g[j] = t;
    }
    return g;
}

static void int_table_case(const int_case *c)
{
    uint64_t N = c->N, K = c->K, G = (K + c->gs - 1) / c->gs, b = c->bits, zc = (N * b + 31) / 32;
    int awq = !strcmp(c->layout, "awq"), ct = !strcmp(c->layout, "ct");
    char config[512], nw[96], nz[96], ns[96], ng[96];
    const char *p = "model.layers.0.mlp.down_proj.";
    snprintf(nw, sizeof nw, "%s%s", p, ct ? "weight_packed" : "qweight");
    snprintf(nz, sizeof nz, "%s%s", p, ct ? "weight_zero_point" : "qzeros");
    snprintf(ns, sizeof ns, "%s%s", p, ct ? "weight_scale" : "scales");
    snprintf(ng, sizeof ng, "%s%s", p, ct ? "weight_shape" : "g_idx");
    tu_tensor t[4] = {
        {{nw, MP_DTYPE_I32, 2, {awq ? K : ct ? N : (K * b + 31) / 32, awq ? N / 8 : ct ? (K * b + 31) / 32 : N}},
         int_words(N * ((K * b + 31) / 32 + 1), 0, 0)},
        {{nz, MP_DTYPE_I32, 2, {ct ? zc : G, ct ? G : zc}}, int_words(G * zc, 1, c->scale != 0)},
        {{ns, MP_DTYPE_F16, 2, {ct ? N : G, ct ? G : N}}, int_scales_f16(N * G, c->scale)},
        {{ng, ct ? MP_DTYPE_I64 : MP_DTYPE_I32, 1, {ct ? 2 : K}}, int_gidx(K, c->gs, c->act)}};
    if (ct) memcpy((void *)t[3].data, (int64_t[]){(int64_t)N, (int64_t)K}, 16);
    if (ct)
        snprintf(config, sizeof config, "{\"quantization_config\": {\"quant_method\": \"compressed-tensors\", "
                 "\"format\": \"pack-quantized\", \"config_groups\": {\"g\": {\"targets\": [\"Linear\"], \"weights\": "
                 "{\"num_bits\": %u, \"type\": \"int\", \"symmetric\": false, \"strategy\": \"group\", "
                 "\"group_size\": %llu}}}}}", c->bits, (unsigned long long)c->gs);
    else if (awq)
        snprintf(config, sizeof config, "{\"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4, "
                 "\"group_size\": %llu, \"zero_point\": true, \"version\": \"gemm\"}}", (unsigned long long)c->gs);
    else
        snprintf(config, sizeof config, "{\"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": %u, "
                 "\"group_size\": %llu, \"desc_act\": %s, \"sym\": false, \"checkpoint_format\": \"%s\"}}", c->bits,
                 (unsigned long long)c->gs, c->act ? "true" : "false", c->layout);
    char *dir = tu_path(tmp, c->name);
    tu_write_model(dir, config, t, awq ? 3 : 4);
    tu_dense_model_vs_ref(dir, 1);
    for (size_t i = 0; i < 4; i++) free((void *)t[i].data);
    free(dir);
}

Test(unit_dense, integer_tables_equal_the_reference, .timeout = 120)
{
    static const int_case cases[] = {
        {"v2_4bit", "gptq_v2", 4, 64, 256, 32, 0, 0},
        {"v1_4bit_act", "gptq", 4, 64, 320, 64, 1, 0},
        {"v2_4bit_ragged_k", "gptq_v2", 4, 64, 204, 68, 0, 0},
        {"v2_4bit_odd_k_odd_group", "gptq_v2", 4, 64, 205, 41, 0, 0},
        {"v2_4bit_act_odd_k", "gptq_v2", 4, 40, 203, 29, 1, 0},
        {"v2_3bit_act", "gptq_v2", 3, 64, 160, 32, 1, 0},
        {"v1_2bit", "gptq", 2, 64, 96, 32, 0, 0},
        {"v2_8bit", "gptq_v2", 8, 64, 96, 32, 0, 0},
        {"v2_2bit_unused_entries_overflow", "gptq_v2", 2, 64, 128, 32, 0, 0x74E2}, /* 20000: 3 x fits, 4 x not */
        {"v2_4bit_overflow", "gptq_v2", 4, 64, 128, 32, 0, 0x7BFF},
        {"awq", "awq", 4, 64, 256, 64, 0, 0},
        {"ct_4bit", "ct", 4, 64, 256, 32, 0, 0},
        {"ct_4bit_ragged_k", "ct", 4, 40, 204, 68, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) int_table_case(&cases[i]);
}

/* ------------------------------------------------------------ FP8 checkpoints */

/* codes [N, K] with every byte value (NaN codes included), and a scale grid [R, C] of dtype sdt
 * spanning 2^-24 .. 2^3, with one 0 and one f32 subnormal where sdt allows. */
static tu_tensor fp8_codes(const char *name, mp_dtype dt, uint64_t N, uint64_t K)
{
    uint8_t *c = malloc((size_t)(N * K));
    for (uint64_t i = 0; i < N * K; i++) c[i] = (uint8_t)(i < 256 ? i : next_u32());
    return (tu_tensor){{name, dt, 2, {N, K}}, c};
}

static tu_tensor fp8_scales(const char *name, mp_dtype sdt, uint64_t R, uint64_t C)
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
    return (tu_tensor){{name, sdt, 2, {R, C}}, s};
}

static void fp8_case(const char *name, const char *config, mp_dtype et, uint64_t N, uint64_t K,
                     const char *sname, mp_dtype sdt, uint64_t R, uint64_t C)
{
    char *dir = tu_path(tmp, name);
    tu_tensor t[2] = {fp8_codes("model.layers.0.mlp.down_proj.weight", et, N, K), {{0}, NULL}};
    char sfull[128];
    snprintf(sfull, sizeof sfull, "model.layers.0.mlp.down_proj.%s", sname);
    t[1] = fp8_scales(sfull, sdt, R, C);
    tu_write_model(dir, config, t, 2);
    tu_dense_model_vs_ref(dir, 1);
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

/* ------------------------------------------------------------ FP4 checkpoints */

static uint64_t n_elems(uint32_t n_dims, const uint64_t *shape)
{
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++) n *= shape[d];
    return n;
}

static tu_tensor u8_tensor(const char *name, mp_dtype dt, uint32_t n_dims, const uint64_t *shape, uint8_t *bytes)
{
    tu_tensor t = {{name, dt, n_dims, {0}}, bytes};
    memcpy(t.spec.shape, shape, n_dims * sizeof *shape);
    return t;
}

/* Packed E2M1 codes [rows, K/2] of every byte value, then random. */
static tu_tensor fp4_codes(const char *name, uint32_t n_dims, const uint64_t *shape)
{
    uint64_t n = n_elems(n_dims, shape);
    uint8_t *c = malloc((size_t)n);
    for (uint64_t i = 0; i < n; i++) c[i] = (uint8_t)(i < 256 ? i : next_u32());
    return u8_tensor(name, MP_DTYPE_U8, n_dims, shape, c);
}

/* Block scale bytes: E4M3 in [2^-6, 2^4] with 0, a subnormal, NaN and -0 (NVFP4), or E8M0
 * exponents around 2^0 with 0, 1, 254 and 255 (MXFP4). */
static tu_tensor fp4_scales(const char *name, mp_dtype dt, int e8m0, uint32_t n_dims, const uint64_t *shape)
{
    uint64_t n = n_elems(n_dims, shape);
    uint8_t *s = malloc((size_t)n), special[4] = {0x00, 0x03, 0x7F, 0x80};
    if (e8m0) memcpy(special, (uint8_t[4]){0, 1, 254, 255}, 4);
    for (uint64_t i = 0; i < n; i++)
        s[i] = i < 4 ? special[i] : (uint8_t)(e8m0 ? 112 + next_u32() % 32 : 0x18 + next_u32() % 0x40);
    return u8_tensor(name, dt, n_dims, shape, s);
}

/* A per-tensor F32 scale's bytes, owned as the other tensors' are. */
static void *f32_copy(float v)
{
    void *p = malloc(4);
    memcpy(p, &v, 4);
    return p;
}

static void fp4_case(const char *name, const char *config, tu_tensor *t, size_t n)
{
    char *dir = tu_path(tmp, name);
    tu_write_model(dir, config, t, n);
    tu_dense_model_vs_ref(dir, 1);
    for (size_t i = 0; i < n; i++) free((void *)t[i].data);
    free(dir);
}

Test(unit_dense, fp4_schemes_equal_the_reference, .timeout = 120)
{
    static float gs = 2345.678f, ws2 = 3.2e-4f;
    const char *p = "model.layers.0.mlp.down_proj.";
    char nw[96], ns[96], ng[96];
    snprintf(nw, sizeof nw, "%sweight_packed", p);
    snprintf(ns, sizeof ns, "%sweight_scale", p);
    snprintf(ng, sizeof ng, "%sweight_global_scale", p);
    const char *ct = "{\"quantization_config\": {\"quant_method\": \"compressed-tensors\", \"format\": "
                     "\"nvfp4-pack-quantized\", \"config_groups\": {\"g\": {\"targets\": [\"Linear\"], "
                     "\"weights\": {\"num_bits\": 4, \"type\": \"float\", \"strategy\": \"tensor_group\", "
                     "\"group_size\": 16}}}}}";
    tu_tensor t[3] = {fp4_codes(nw, 2, (uint64_t[]){67, 88}),
                       fp4_scales(ns, MP_DTYPE_F8_E4M3, 0, 2, (uint64_t[]){67, 11}),
                       {{ng, MP_DTYPE_F32, 1, {1}}, f32_copy(gs)}};
    fp4_case("ct_nvfp4", ct, t, 3);
    const char *mo = "{\"quantization_config\": {\"quant_method\": \"modelopt\", \"quant_algo\": \"NVFP4\"}}";
    snprintf(nw, sizeof nw, "%sweight", p);
    snprintf(ng, sizeof ng, "%sweight_scale_2", p);
    tu_tensor u[3] = {fp4_codes(nw, 2, (uint64_t[]){40, 128}),
                       fp4_scales(ns, MP_DTYPE_F8_E4M3, 0, 2, (uint64_t[]){40, 16}),
                       {{ng, MP_DTYPE_F32, 0, {0}}, f32_copy(ws2)}};
    fp4_case("modelopt_nvfp4", mo, u, 3);
    const char *mx = "{\"quantization_config\": {\"quant_method\": \"compressed-tensors\", \"format\": "
                     "\"mxfp4-pack-quantized\", \"config_groups\": {\"g\": {\"targets\": [\"Linear\"], "
                     "\"weights\": {\"num_bits\": 4, \"type\": \"float\", \"strategy\": \"group\", "
                     "\"group_size\": 32}}}}}";
    snprintf(nw, sizeof nw, "%sweight_packed", p);
    tu_tensor v[2] = {fp4_codes(nw, 2, (uint64_t[]){33, 96}), fp4_scales(ns, MP_DTYPE_U8, 1, 2, (uint64_t[]){33, 6})};
    fp4_case("ct_mxfp4", mx, v, 2);
    const char *oss = "{\"quantization_config\": {\"quant_method\": \"mxfp4\"}}";
    tu_tensor w[2] = {fp4_codes("model.layers.0.mlp.experts.gate_up_proj_blocks", 4, (uint64_t[]){3, 20, 3, 16}),
                       fp4_scales("model.layers.0.mlp.experts.gate_up_proj_scales", MP_DTYPE_U8, 1, 3,
                                  (uint64_t[]){3, 20, 3})};
    fp4_case("gpt_oss", oss, w, 2);
}

/* ------------------------------------------------------------ DeepSeek-V4 */

#define DSV4_CONFIG                                                                                \
    "{\"torch_dtype\": \"bfloat16\", \"expert_dtype\": \"fp4\", \"quantization_config\": "        \
    "{\"quant_method\": \"fp8\", \"fmt\": \"e4m3\", \"scale_fmt\": \"ue8m0\", \"weight_block_size\": [128, 128]}}"

/* FP8 linears with E8M0 block scales on a ragged grid (0, 1, 254 and 255 among them) and I8 FP4
 * experts with E8M0 [N, K/32] scales: the fast path equals the reference (doc/formats/deepseek-v4.md). */
Test(unit_dense, deepseek_v4_equals_the_reference, .timeout = 120)
{
    tu_tensor t[4] = {fp8_codes("layers.0.attn.wq_b.weight", MP_DTYPE_F8_E4M3, 300, 520),
                       fp4_scales("layers.0.attn.wq_b.scale", MP_DTYPE_F8_E8M0, 1, 2, (uint64_t[]){3, 5}),
                       fp4_codes("layers.0.ffn.experts.3.w2.weight", 2, (uint64_t[]){70, 48}),
                       fp4_scales("layers.0.ffn.experts.3.w2.scale", MP_DTYPE_F8_E8M0, 1, 2, (uint64_t[]){70, 3})};
    t[2].spec.dtype = MP_DTYPE_I8;
    fp4_case("dsv4", DSV4_CONFIG, t, 4);
}

/* The worked examples of doc/formats/deepseek-v4.md, both paths: FP4 byte 0x9A with scale 0x7A is
 * bf16 0xBD00 (low nibble, -1.0 * 2^-5) then 0xBC80 (high, -0.5 * 2^-5); FP8 0x5A (20.0) times
 * E8M0 0x76 (2^-9) is 0x3D20; an E8M0 0xFF scale makes its block NaN, a 0 one 2^-127. */
Test(unit_dense, deepseek_v4_worked_examples)
{
    uint8_t c4[16], s4[1] = {0x7A}, c8[2] = {0x5A, 0x5A}, s8[1] = {0x76}, c4n[16], s4n[1] = {0xFF};
    memset(c4, 0x9A, sizeof c4);
    memset(c4n, 0x21, sizeof c4n);
    tu_tensor t[6] = {{{"layers.0.ffn.experts.0.w1.weight", MP_DTYPE_I8, 2, {1, 16}}, c4},
                       {{"layers.0.ffn.experts.0.w1.scale", MP_DTYPE_F8_E8M0, 2, {1, 1}}, s4},
                       {{"layers.0.attn.wo_a.weight", MP_DTYPE_F8_E4M3, 2, {1, 2}}, c8},
                       {{"layers.0.attn.wo_a.scale", MP_DTYPE_F8_E8M0, 2, {1, 1}}, s8},
                       {{"layers.0.ffn.experts.1.w1.weight", MP_DTYPE_I8, 2, {1, 16}}, c4n},
                       {{"layers.0.ffn.experts.1.w1.scale", MP_DTYPE_F8_E8M0, 2, {1, 1}}, s4n}};
    char *dir = tu_path(tmp, "dsv4_worked");
    tu_write_model(dir, DSV4_CONFIG, t, 6);
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    mp_qmodel *qm = NULL;
    cr_assert_eq(mp_st_open(&m, dir, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(mp_qmodel_open(&qm, m, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(mp_qmodel_n_linears(qm), 3);
    for (size_t i = 0; i < 3; i++) {
        const mp_qlinear *q = mp_qmodel_linear(qm, i);
        uint16_t out[32];
        float ref[32];
        int over = 0;
        cr_assert_eq(mp_dense_rows(m, q, 0, 1, MP_DTYPE_BF16, (uint8_t *)out, &over, &err), MP_OK, "%s", err.msg);
        cr_assert_eq(mp_dequant_ref(m, q, 0, 1, ref, &err), MP_OK, "%s", err.msg);
        if (strcmp(q->prefix, "layers.0.ffn.experts.0.w1") == 0) {
            cr_expect_eq(out[0], 0xBD00, "FP4 0x9A low nibble: %04x", out[0]);
            cr_expect_eq(out[1], 0xBC80, "FP4 0x9A high nibble: %04x", out[1]);
            cr_expect_eq(mp_f32_to_bf16(ref[0]), 0xBD00);
            cr_expect_eq(mp_f32_to_bf16(ref[1]), 0xBC80);
        } else if (strcmp(q->prefix, "layers.0.attn.wo_a") == 0) {
            cr_expect_eq(out[0], 0x3D20, "FP8 0x5A x 0x76: %04x", out[0]);
            cr_expect_eq(mp_f32_to_bf16(ref[0]), 0x3D20);
        } else {
            for (size_t k = 0; k < 32; k++) cr_expect((out[k] & 0x7FFF) > 0x7F80, "a 0xFF scale: %04x", out[k]);
        }
    }
    mp_qmodel_free(qm);
    mp_st_close(m);
    free(dir);
}
