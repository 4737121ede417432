/*
 * scheme_gptq.c - GPTQ (AutoGPTQ, GPTQModel; AutoRound's GPTQ exports), v1 and v2.
 *
 * Bytes: qweight int32 [ceil(K*b/32), N], column n a little-endian bitstream of K b-bit codes
 * (LSB first; 3-bit codes straddle words); qzeros int32 [G, ceil(N*b/32)], row g a bitstream
 * over n; scales [G, N]; g_idx int32 [K] optional (act-order). v1 ("gptq") stores z - 1 in
 * qzeros, v2 ("gptq_v2") stores z. Symmetric checkpoints still carry qzeros (z = 2^(b-1)).
 * The config dialect: `dynamic` maps "+:re" (or a bare re) to per-module overrides and "-:re"
 * to modules left dense. Facts: doc/formats/gptq.md.
 */
#include "scheme_internal.h"

#include <stdio.h>
#include <string.h>

extern const mp_scheme mp_scheme_gptq, mp_scheme_gptq_v2;

static mp_errcode read_gptq(qconfig *c, const cJSON *q, mp_err *err)
{
    const char *fmt = mp_qc_str(q, "checkpoint_format");
    if (!fmt) fmt = mp_qc_str(q, "format");
    if (!fmt) fmt = "gptq";
    snprintf(c->format, sizeof c->format, "%s", fmt);
    if (strcmp(fmt, "gptq") == 0) c->layout = &mp_scheme_gptq;
    else if (strcmp(fmt, "gptq_v2") == 0) c->layout = &mp_scheme_gptq_v2;
    else
        return MP_UNSUPPORTED_CONFIG(err, c,
                                     "GPTQ checkpoint_format '%.40s' is not supported (gptq and gptq_v2 are)",
                                     fmt);
    const char *pack_dtype = mp_qc_str(q, "pack_dtype");
    if (pack_dtype && strcmp(pack_dtype, "int32") != 0)
        return MP_UNSUPPORTED_CONFIG(err, c,
                                     "pack_dtype '%.20s' is not supported (int32 is)", pack_dtype);
    if (c->base.group_size == 0) c->base.group_size = 128;
    if (c->base.sym < 0) c->base.sym = 1; /* the loaders' default (doc/formats/gptq.md §5) */
    const cJSON *dyn = cJSON_GetObjectItemCaseSensitive(q, "dynamic");
    if (dyn && !cJSON_IsNull(dyn)) {
        if (!cJSON_IsObject(dyn)) return MP_BAD_CONFIG(err, c, "'%s' is not an object", "dynamic");
        for (const cJSON *e = dyn->child; e; e = e->next) {
            qrule *r = mp_qc_add_rule(c, err);
            if (!r) return MP_E_NOMEM;
            const char *key = e->string;
            if (strncmp(key, "-:", 2) == 0) {
                r->skip = 1;
                key += 2;
            } else if (strncmp(key, "+:", 2) == 0) {
                key += 2;
            }
            MP_FORWARD(mp_qc_rule_pattern(c, r, key, 1, err));
            if (!r->skip) {
                if (!cJSON_IsObject(e)) return MP_BAD_CONFIG(err, c, "dynamic entry '%.200s' is not an object", key);
                MP_FORWARD(mp_qc_params(c, e, &r->p, err));
            }
        }
    }
    return MP_OK;
}

static mp_errcode shape_gptq(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    (void)m;
    const mp_tensor *w = q->qweight, *s = q->scales;
    MP_FORWARD(mp_qc_want_codes_scales(q, mp_t_is_int32, "I32", err));
    q->n_rows = w->shape[1];
    if (s->shape[1] != q->n_rows) {
        if (s->shape[1] == 8 * w->shape[1])
            return MP_REFUSE_LINEAR(q, "shapes are AWQ GEMM's (qweight [K, N/8]) but the config says %s",
                                    q->format);
        return MP_REFUSE_LINEAR(q, "scales have %llu columns but qweight has N = %llu",
                                (unsigned long long)s->shape[1], (unsigned long long)q->n_rows);
    }
    if (q->g_idx) q->k_cols = q->g_idx->shape[0];
    else if (gs > 0) q->k_cols = s->shape[0] * (uint64_t)gs;
    else if (w->shape[0] * 32 % q->bits == 0) q->k_cols = w->shape[0] * 32 / q->bits;
    else return MP_REFUSE_LINEAR(q, "cannot infer K from qweight [%llu, %llu] at %u bits",
                                 (unsigned long long)w->shape[0], (unsigned long long)w->shape[1], q->bits);
    if (mp_ceil_div(q->k_cols * q->bits, 32) != w->shape[0])
        return MP_REFUSE_LINEAR(q, "qweight has %llu rows but K = %llu at %u bits needs %llu",
                                (unsigned long long)w->shape[0], (unsigned long long)q->k_cols, q->bits,
                                (unsigned long long)mp_ceil_div(q->k_cols * q->bits, 32));
    MP_FORWARD(mp_qc_derive_groups(q, gs, err));
    if (s->shape[0] != q->n_groups)
        return MP_REFUSE_LINEAR(q, "scales have %llu groups but K = %llu with group size %llu gives %llu",
                                (unsigned long long)s->shape[0], (unsigned long long)q->k_cols,
                                (unsigned long long)q->group_size, (unsigned long long)q->n_groups);
    int implied;
    MP_FORWARD(mp_qc_optional_zeros(q, &implied, err));
    if (implied) return MP_OK;
    MP_FORWARD(mp_qc_want_dims(q, q->qzeros, "qzeros", q->n_groups, mp_ceil_div(q->n_rows * q->bits, 32), err));
    q->zero = MP_QZERO_GPTQ;
    return MP_OK;
}

/* A regex that matches exactly `name` (Python re syntax): dots escaped, anchored. */
static void regex_of(const char *name, char *out, size_t cap)
{
    size_t o = 0;
    if (cap < 4) return;
    out[o++] = '^';
    for (const char *c = name; *c && o + 3 < cap; c++) {
        if (strchr(".^$*+?()[]{}|\\", *c)) out[o++] = '\\';
        out[o++] = *c;
    }
    out[o++] = '$';
    out[o] = '\0';
}

/* One "dynamic" entry: "+:re" with the linear's own parameters, or "-:re" for a dense one. */
static void dynamic_entry(mp_buf *b, int *any, char sign, const char *module)
{
    char re[600], key[640];
    regex_of(module, re, sizeof re);
    snprintf(key, sizeof key, "%c:%s", sign, re);
    mp_buf_puts(b, *any ? ", " : ", \"dynamic\": {");
    mp_buf_json_str(b, key);
    *any = 1;
}

static mp_errcode write_gptq(mp_buf *b, const mp_scheme *s, const mp_scheme_job *j, mp_err *err)
{
    (void)err;
    int v2 = s->zenc == MP_ZENC_RAW;
    int symmetric = j->n_linears > 0;
    for (size_t i = 0; i < j->n_linears; i++) symmetric &= j->linears[i]->sym;
    int64_t group = j->group_size;
    mp_buf_printf(b, "{\"quant_method\": \"gptq\", \"bits\": %u, \"group_size\": %lld, "
                     "\"desc_act\": %s, \"sym\": %s, \"checkpoint_format\": \"%s\", "
                     "\"format\": \"%s\", \"pack_dtype\": \"int32\", \"lm_head\": false",
                  j->bits, (long long)group, j->act_order ? "true" : "false",
                  symmetric ? "true" : "false", v2 ? "gptq_v2" : "gptq", v2 ? "gptq_v2" : "gptq");
    int any = 0;
    /* Linears whose bits or groups differ from the top-level ones get a "+:" override, as
     * GPTQModel's `dynamic` writes them. */
    for (size_t i = 0; i < j->n_linears; i++) {
        const mp_qlinear *q = j->linears[i];
        uint64_t g_base = group > 0 ? (q->k_cols + (uint64_t)group - 1) / (uint64_t)group : 1;
        int same = q->bits == j->bits && q->n_groups == g_base &&
                   (q->n_groups == 1 || (int64_t)q->group_size == group);
        if (same) continue;
        dynamic_entry(b, &any, '+', q->prefix);
        mp_buf_printf(b, ": {\"bits\": %u, \"group_size\": %lld}", q->bits,
                      q->n_groups > 1 ? (long long)q->group_size : -1LL);
    }
    for (size_t i = 0; i < mp_qmodel_n_dense_linears(j->qm); i++) {
        const char *d = mp_qmodel_dense_linear(j->qm, i);
        if (strcmp(d, "lm_head") == 0) continue;
        dynamic_entry(b, &any, '-', d);
        mp_buf_puts(b, ": {}");
    }
    if (any) mp_buf_puts(b, "}");
    mp_buf_puts(b, ", \"meta\": {\"quantizer\": [\"modelprep:" MP_VERSION "\"]}}");
    return MP_OK;
}

static const char *const methods[] = {"gptq", NULL};

#define GPTQ_COMMON                                                                        \
    .roles = MP_SCHEME_SOURCE | MP_SCHEME_TARGET, .method = MP_QM_GPTQ,                      \
    .read_config = read_gptq, .pack = MP_QPACK_KSTREAM_COLS, MP_QWEIGHT_NAMES,                      \
    /* codes: column n, field k; zeros: row g, field n */                                     \
    .codes = {.container_bytes = 4, .along_rows = 0, .string_is_n = 1},                      \
    .zeros = {.container_bytes = 4, .along_rows = 1, .string_is_n = 0},                      \
    .scales_nk = 0, .bits_mask = (1u << 2) | (1u << 3) | (1u << 4) | (1u << 8),              \
    .bits_text = "2, 3, 4 or 8 bits", .act_order_ok = 1, .check_shapes = shape_gptq,         \
    .zeros_when_sym = 1, .n_multiple = 1, .k_multiple = 1, .scales = MP_SCALES_F16,          \
    .per_module_params = 1, .write_config = write_gptq, .kernel = "gptq"

const mp_scheme mp_scheme_gptq = {
    .name = "gptq",
    .summary = "GPTQ v1: qweight [K*b/32, N], qzeros storing z - 1 (AutoGPTQ, GPTQModel)",
    .methods = methods,
    .zenc = MP_ZENC_MINUS1,
    GPTQ_COMMON,
};

const mp_scheme mp_scheme_gptq_v2 = {
    .name = "gptq-v2",
    .summary = "GPTQ v2: as gptq, qzeros storing z (GPTQModel's checkpoint_format gptq_v2)",
    .methods = NULL, /* announced as gptq with checkpoint_format gptq_v2 */
    .zenc = MP_ZENC_RAW,
    GPTQ_COMMON,
};
