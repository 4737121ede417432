/*
 * test_bnb.c - bitsandbytes checkpoints (doc/formats/bitsandbytes.md): NF4 and FP4, nested and
 * plain absmax, ragged last blocks, blocks that straddle rows, odd K, absmax of 0, LLM.int8; the
 * fast dense path equals the CPU reference bit for bit, the reference equals hand-computed
 * values of the note's worked examples, and every malformed part is refused as MP_E_INPUT
 * naming the tensor and the rule. The judge against bitsandbytes itself is
 * tests/ref/bnb_upstream.py.
 */
#include "../../verify/verify.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *tmp;
static void setup(void) { tmp = tu_tempdir(); }
static void teardown(void)
{
    tu_rmtree(tmp);
    free(tmp);
}
TestSuite(unit_bnb, .init = setup, .fini = teardown);

/* bitsandbytes' tables as f32 bits (doc/formats/bitsandbytes.md §3), written out here apart
 * from the entry's own. */
static const uint32_t nf4_bits[16] = {
    0xBF800000, 0xBF3239B1, 0xBF066B30, 0xBECA32A0, 0xBE91A24D, 0xBE3D353F, 0xBDBA7871, 0x00000000,
    0x3DA2FAFF, 0x3E24CAE3, 0x3E7C04DD, 0x3EAD033A, 0x3EE1A4B8, 0x3F1007AB, 0x3F3913B3, 0x3F800000};
static const uint32_t fp4_bits[16] = {
    0x00000000, 0x3BAAAAAB, 0x3F2AAAAB, 0x3F800000, 0x3EAAAAAB, 0x3F000000, 0x3E2AAAAB, 0x3E800000,
    0x00000000, 0xBBAAAAAB, 0xBF2AAAAB, 0xBF800000, 0xBEAAAAAB, 0xBF000000, 0xBE2AAAAB, 0xBE800000};

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void) { return tu_xorshift(&rng); }

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#define LIN "model.layers.0.mlp.down_proj"

/* One 4-bit linear; the fields left 0 take the right values, the others break one rule. */
typedef struct bnb4_case {
    const char *type;          /* "nf4", "fp4" */
    int nested;
    uint64_t N, K, bs;
    const char *dtype;         /* the blob's: "bfloat16", "float16", "float32" */
    const char *blob;          /* written instead of the right blob */
    mp_dtype absmax_dt;        /* written instead of F32 (or U8 when nested) */
    int bad_quant_map;         /* quant_map[3] off by one ulp */
    int no_blob;               /* the blob left out */
} bnb4_case;

static const char *cfg4 = "{\"torch_dtype\": \"bfloat16\", \"quantization_config\": {\"quant_method\": "
                          "\"bitsandbytes\", \"load_in_4bit\": true, \"bnb_4bit_quant_type\": \"nf4\", "
                          "\"bnb_4bit_use_double_quant\": true, \"llm_int8_skip_modules\": [\"lm_head\"]}}";

static uint32_t *random_f32(uint64_t n, uint32_t lo, uint32_t span, uint64_t zero_at)
{
    uint32_t *v = malloc((size_t)n * 4 + 4);
    for (uint64_t i = 0; i < n; i++) v[i] = i == zero_at ? 0 : lo + next_u32() % span;
    return v;
}

static void *random_bytes(uint64_t n)
{
    uint8_t *b = malloc((size_t)n + 1);
    for (uint64_t i = 0; i < n; i++) b[i] = (uint8_t)next_u32();
    return b;
}

static char *write_bnb4(const char *name, const bnb4_case *c, const char *config)
{
    char *dir = tu_path(tmp, name), blob[512], qs[128];
    uint64_t n = c->N * c->K, nb = (n + c->bs - 1) / c->bs, ng = (nb + 255) / 256;
    float offset = 0.0123f;
    int len = c->blob ? snprintf(blob, sizeof blob, "%s", c->blob)
                      : snprintf(blob, sizeof blob, "{\"quant_type\": \"%s\", \"blocksize\": %llu, \"dtype\": \"%s\", "
                                 "\"shape\": [%llu, %llu]%s", c->type, (unsigned long long)c->bs,
                                 c->dtype ? c->dtype : "bfloat16", (unsigned long long)c->N,
                                 (unsigned long long)c->K, c->nested ? "" : "}");
    if (!c->blob && c->nested)
        len += snprintf(blob + len, sizeof blob - (size_t)len, ", \"nested_blocksize\": 256, \"nested_dtype\": "
                        "\"float32\", \"nested_offset\": %.9g}", (double)offset);
    snprintf(qs, sizeof qs, LIN ".weight.quant_state.bitsandbytes__%s", c->type);
    uint32_t *map = malloc(64);
    memcpy(map, strcmp(c->type, "nf4") == 0 ? nf4_bits : fp4_bits, 64);
    map[3] += (uint32_t)c->bad_quant_map;
    uint32_t *nqm = random_f32(256, 0x3C000000, 0x03800000, 0);
    mp_dtype adt = c->absmax_dt ? c->absmax_dt : c->nested ? MP_DTYPE_U8 : MP_DTYPE_F32;
    tu_tensor t[8] = {
        {{LIN ".weight", MP_DTYPE_U8, 2, {(n + 1) / 2, 1}}, random_bytes((n + 1) / 2)},
        {{LIN ".weight.absmax", adt, 1, {nb}},
         c->nested || adt != MP_DTYPE_F32 ? random_bytes(nb * 4) : random_f32(nb, 0x3A800000, 0x05000000, 1)},
        {{LIN ".weight.quant_map", MP_DTYPE_F32, 1, {16}}, map},
        {{"lm_head.weight", MP_DTYPE_BF16, 2, {4, c->K}}, random_bytes(8 * c->K)},
        {{LIN ".bias", MP_DTYPE_BF16, 1, {c->N}}, random_bytes(2 * c->N)},
        {{qs, MP_DTYPE_U8, 1, {(uint64_t)len}}, mp_strdup(blob)},
        {{LIN ".weight.nested_absmax", MP_DTYPE_F32, 1, {ng}}, random_f32(ng, 0x3B000000, 0x04000000, 99)},
        {{LIN ".weight.nested_quant_map", MP_DTYPE_F32, 1, {256}}, nqm},
    };
    for (unsigned i = 0; i < 128; i++) nqm[i] |= 0x80000000u; /* a signed code, as bnb's dynamic map */
    size_t nt = c->nested ? 8 : 6;
    if (c->no_blob) t[5] = t[--nt];
    tu_write_model(dir, config ? config : cfg4, t, nt);
    for (size_t i = 0; i < 8; i++) free((void *)t[i].data);
    return dir;
}

Test(unit_bnb, four_bit_fast_path_equals_the_reference, .timeout = 120)
{
    const bnb4_case cases[] = {
        {.type = "nf4", .N = 7, .K = 130, .bs = 64},                      /* blocks straddle rows, ragged end */
        {.type = "fp4", .N = 5, .K = 33, .bs = 64, .dtype = "float16"},   /* odd K: rows start mid-byte */
        {.type = "nf4", .nested = 1, .N = 130, .K = 256, .bs = 32},       /* 1040 blocks: 5 nested groups */
        {.type = "fp4", .nested = 1, .N = 9, .K = 100, .bs = 128, .dtype = "float32"},
        {.type = "nf4", .nested = 1, .N = 3, .K = 3001, .bs = 4096, .dtype = "float16"}, /* the largest block */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%zu", i);
        char *dir = write_bnb4(name, &cases[i], NULL);
        tu_dense_model_vs_ref(dir, 1);
        free(dir);
    }
}

static mp_qmodel *open_q(const char *dir, mp_st_model **m)
{
    mp_err err = MP_ERR_INIT;
    mp_qmodel *qm = NULL;
    cr_assert_eq(mp_st_open(m, dir, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(mp_qmodel_open(&qm, *m, &err), MP_OK, "%s: %s", err.tensor, err.msg);
    return qm;
}

/* The note's worked example: absmax 0x3D87FCB9, bytes 7F 0E C3, BF16 output. */
Test(unit_bnb, nf4_worked_example_and_high_nibble_first)
{
    const bnb4_case c = {.type = "nf4", .N = 1, .K = 64, .bs = 64};
    char *dir = write_bnb4("ex", &c, NULL);
    mp_st_model *m = NULL;
    mp_qmodel *qm = open_q(dir, &m);
    const mp_qlinear *q = mp_qmodel_linear(qm, 0);
    cr_assert_eq(mp_qmodel_n_linears(qm), 1);
    cr_assert_str_eq(q->elem_text, "NF4");
    cr_assert_eq(q->n_rows, 1);
    cr_assert_eq(q->k_cols, 64);
    cr_assert_eq(mp_qmodel_n_dense_linears(qm), 1, "lm_head stays dense");
    /* Rewrite the bytes in place: the file's data start is the tensor's offset. */
    char *path = tu_path(dir, "model.safetensors");
    size_t len = 0;
    uint8_t *file = (uint8_t *)tu_read(path, &len);
    static const uint8_t ex[3] = {0x7F, 0x0E, 0xC3};
    memcpy(file + q->qweight->offset, ex, 3);
    uint32_t a = 0x3D87FCB9;
    memcpy(file + q->scales->offset, &a, 4);
    cr_assert(tu_write(path, file, len));
    float out[64];
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_dequant_ref(m, q, 0, 1, out, &err), MP_OK, "%s", err.msg);
    static const uint16_t want[6] = {0x0000, 0x3D88, 0xBD88, 0x3D45, 0x3CF0, 0xBCD7};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(mp_f32_to_bf16(out[i]), want[i], "element %d: 0x%04x, want 0x%04x", i,
                     mp_f32_to_bf16(out[i]), want[i]);
    free(file);
    free(path);
    mp_qmodel_free(qm);
    mp_st_close(m);
    free(dir);
}

static void expect_refusal(const char *name, const bnb4_case *c, const char *config, const char *tensor,
                           const char *why)
{
    char *dir = write_bnb4(name, c, config);
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    mp_qmodel *qm = NULL;
    cr_assert_eq(mp_st_open(&m, dir, &err), MP_OK, "%s", err.msg);
    mp_errcode rc = mp_qmodel_open(&qm, m, &err);
    cr_expect_eq(rc, MP_E_INPUT, "%s: rc %d (%s)", name, rc, err.msg);
    cr_expect_str_eq(err.tensor, tensor, "%s: names '%s'", name, err.tensor);
    cr_expect(strstr(err.msg, why), "%s: message '%s' lacks '%s'", name, err.msg, why);
    mp_qmodel_free(qm);
    mp_st_close(m);
    free(dir);
}

#define QS4 LIN ".weight.quant_state.bitsandbytes__nf4"

Test(unit_bnb, malformed_four_bit_parts_are_refused_naming_tensor_and_rule)
{
    bnb4_case c = {.type = "nf4", .N = 4, .K = 64, .bs = 64};
    c.blob = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [4, 64]";
    expect_refusal("corrupt", &c, NULL, QS4, "quant_state is not valid JSON");
    c.blob = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [8, 64]}";
    expect_refusal("shape", &c, NULL, LIN ".weight", "expected 256 bytes as [n, 1] for the quant_state's shape [8, 64]");
    c.blob = "{\"quant_type\": \"nf4\", \"blocksize\": 48, \"dtype\": \"bfloat16\", \"shape\": [4, 64]}";
    expect_refusal("blocksize", &c, NULL, QS4, "'blocksize' is not a power of two in [32, 4096]");
    c.blob = "{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [4, 64]}";
    expect_refusal("type", &c, NULL, QS4, "'quant_type' is not \"nf4\"");
    c.blob = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [4, 64], \"x\": 1}";
    expect_refusal("unknown", &c, NULL, QS4, "unknown key 'x'");
    c.blob = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [4, 64], "
             "\"nested_offset\": 0.5}";
    expect_refusal("half_nested", &c, NULL, QS4, "all three or none");
    c.blob = NULL;
    c.absmax_dt = MP_DTYPE_F16;
    expect_refusal("absmax", &c, NULL, LIN ".weight.absmax", "'weight.absmax' is F16 [4], expected F32 [4]");
    c.absmax_dt = 0;
    c.bad_quant_map = 1;
    expect_refusal("qmap", &c, NULL, LIN ".weight.quant_map", "quant_map[3] = ");
    c.bad_quant_map = 0;
    c.no_blob = 1;
    expect_refusal("orphan", &c, NULL, LIN ".weight.absmax", "missing part: no '" QS4 "' or");
    c.no_blob = 0;
    const char *skip = "{\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true, "
                       "\"modules_to_not_convert\": [\"down_proj\"]}}";
    expect_refusal("skipped", &c, skip, LIN, "the config leaves this linear unquantized");
}

/* ------------------------------------------------------------ LLM.int8 */

static const char *cfg8 = "{\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_8bit\": true, "
                          "\"llm_int8_skip_modules\": null}}";

static char *write_bnb8(const char *name, uint64_t N, uint64_t K, mp_dtype scb_dt, uint8_t format)
{
    char *dir = tu_path(tmp, name);
    uint8_t *fmt = malloc(1);
    fmt[0] = format;
    tu_tensor t[3] = {
        {{LIN ".weight", MP_DTYPE_I8, 2, {N, K}}, random_bytes(N * K)},
        {{LIN ".SCB", scb_dt, 1, {N}}, random_f32(N, 0x3C000000, 0x04000000, 2)},
        {{LIN ".weight_format", MP_DTYPE_U8, 0, {0}}, fmt},
    };
    tu_write_model(dir, cfg8, t, 3);
    for (size_t i = 0; i < 3; i++) free((void *)t[i].data);
    return dir;
}

Test(unit_bnb, int8_fast_path_equals_the_reference_and_the_worked_example, .timeout = 60)
{
    char *dir = write_bnb8("i8", 37, 300, MP_DTYPE_F32, 0);
    tu_dense_model_vs_ref(dir, 1);
    mp_st_model *m = NULL;
    mp_qmodel *qm = open_q(dir, &m);
    const mp_qlinear *q = mp_qmodel_linear(qm, 0);
    cr_assert_eq(q->n_rows, 37);
    cr_assert_eq(q->k_cols, 300);
    float row[300];
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_dequant_ref(m, q, 5, 6, row, &err), MP_OK, "%s", err.msg);
    /* q = 100, SCB = 0x3D2C710D -> 0x3D07C7E2 (the note's example), by the formula's own order */
    float v = 100.0f * u2f(0x3D2C710D) * u2f(0x3C010204);
    uint32_t bits;
    memcpy(&bits, &v, 4);
    cr_assert_eq(bits, 0x3D07C7E2);
    mp_qmodel_free(qm);
    mp_st_close(m);
    free(dir);
}

/* The tensors decide: LLM.int8 tensors under a config that says 4-bit are refused, not copied. */
Test(unit_bnb, int8_tensors_under_a_four_bit_config_are_refused)
{
    char *dir = write_bnb8("mixed", 4, 64, MP_DTYPE_F32, 0);
    char *cp = tu_path(dir, "config.json");
    const char *cfg = "{\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true}}";
    cr_assert(tu_write(cp, cfg, strlen(cfg)));
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    mp_qmodel *qm = NULL;
    cr_assert_eq(mp_st_open(&m, dir, &err), MP_OK, "%s", err.msg);
    cr_expect_eq(mp_qmodel_open(&qm, m, &err), MP_E_INPUT);
    cr_expect_str_eq(err.tensor, LIN ".SCB");
    cr_expect(strstr(err.msg, "makes a bnb-int8 linear, but the config announces bnb-4bit"), "%s", err.msg);
    mp_qmodel_free(qm);
    mp_st_close(m);
    free(cp);
    free(dir);
}

Test(unit_bnb, malformed_int8_parts_are_refused)
{
    const char *cases[][3] = {{"scb", LIN ".SCB", "'SCB' is F16 [6], expected F32 [6]"},
                              {"fmt", LIN ".weight_format", "'weight_format' is 1"}};
    for (int i = 0; i < 2; i++) {
        char *dir = write_bnb8(cases[i][0], 6, 64, i == 0 ? MP_DTYPE_F16 : MP_DTYPE_F32, (uint8_t)i);
        mp_err err = MP_ERR_INIT;
        mp_st_model *m = NULL;
        mp_qmodel *qm = NULL;
        cr_assert_eq(mp_st_open(&m, dir, &err), MP_OK, "%s", err.msg);
        cr_expect_eq(mp_qmodel_open(&qm, m, &err), MP_E_INPUT, "%s", cases[i][0]);
        cr_expect_str_eq(err.tensor, cases[i][1]);
        cr_expect(strstr(err.msg, cases[i][2]), "%s: '%s'", cases[i][0], err.msg);
        mp_qmodel_free(qm);
        mp_st_close(m);
        free(dir);
    }
}

/* The CLI: exit 4, the message names the file, the tensor and the rule. */
Test(unit_bnb, cli_refusal_is_exit_4_naming_file_tensor_and_rule)
{
    bnb4_case c = {.type = "nf4", .N = 4, .K = 64, .bs = 64,
                   .blob = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [4, 64]"};
    char *dir = write_bnb4("cli", &c, NULL), *out = tu_path(tmp, "out");
    char *argv[] = {(char *)tu_env("MP_BIN"), "convert", dir, out, "--to", "bf16", "--quiet", NULL};
    run_result r = tu_run(NULL, argv, NULL);
    cr_expect_eq(r.status, 4, "exit %d: %s", r.status, r.err);
    cr_expect(strstr(r.err, "model.safetensors"), "no file named: %s", r.err);
    cr_expect(strstr(r.err, QS4), "no tensor named: %s", r.err);
    cr_expect(strstr(r.err, "quant_state is not valid JSON"), "no rule named: %s", r.err);
    tu_run_free(&r);
    free(out);
    free(dir);
}

/* No ggml block holds table codes: `--to gguf` refuses (it read the absmax as an integer
 * layout's scale grid and aborted before), naming the layout and the dequantizing choices. */
Test(unit_bnb, lossless_gguf_export_is_refused_with_the_alternatives)
{
    const bnb4_case c = {.type = "nf4", .N = 16, .K = 256, .bs = 64};
    char *dir = write_bnb4("gguf", &c, "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", "
                                       "\"quantization_config\": {\"quant_method\": \"bitsandbytes\", "
                                       "\"load_in_4bit\": true}}");
    char *out = tu_path(tmp, "out.gguf");
    char *argv[] = {(char *)tu_env("MP_BIN"), "convert", dir, out, "--to", "gguf", "--no-tokenizer", NULL};
    run_result r = tu_run(NULL, argv, NULL);
    cr_expect_eq(r.status, 4, "exit %d: %s", r.status, r.err);
    cr_expect(strstr(r.err, "its layout (bnb-4bit) has no exact ggml block type"), "%s", r.err);
    cr_expect(strstr(r.err, "gguf:bf16"), "%s", r.err);
    tu_run_free(&r);
    free(out);
    free(dir);
}
