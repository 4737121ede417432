/*
 * scheme_ct.c - compressed-tensors pack-quantized (llm-compressor), int 1 to 8 bits.
 *
 * Bytes: weight_packed int32 [N, ceil(K*b/32)], row n a little-endian bitstream over k (older
 * files: 32/b codes a word, high bits unused); weight_scale [N, G]; weight_zero_point int32
 * [ceil(N*b/32), G] packed along dim 0 when asymmetric; weight_g_idx int32 [K] optional;
 * weight_shape [2] = (N, K). The dialect: `ignore` (names or "re:" patterns), then
 * `config_groups`, each with weights {num_bits, type int, symmetric, strategy group|channel,
 * group_size} and `targets` (module classes such as "Linear", names or "re:" patterns); a linear
 * no group targets stays dense. Facts: doc/formats/compressed-tensors.md.
 */
#include "scheme_internal.h"

#include <stdio.h>
#include <string.h>

extern const mp_scheme mp_scheme_ct;

/* The weights of one int config group: pack-quantized, group or channel. */
static mp_errcode int_group(qconfig *c, const cJSON *g, const cJSON *w, const char *fmt, qparams *p,
                            mp_err *err)
{
    if (strcmp(fmt, "pack-quantized") != 0)
        return MP_UNSUPPORTED_CONFIG(err, c,
                          "config group '%.100s': format '%.40s' is not supported "
                          "(pack-quantized is)", g->string, fmt);
    const char *strategy = mp_qc_str(w, "strategy");
    if (!strategy) strategy = p->group_size > 0 ? "group" : "channel";
    if (strcmp(strategy, "channel") == 0) p->group_size = -1;
    else if (strcmp(strategy, "group") != 0 || p->group_size <= 0)
        return MP_UNSUPPORTED_CONFIG(err, c,
                          "config group '%.100s': strategy '%.20s' is not supported (group "
                          "with a group_size, or channel)", g->string, strategy);
    if (p->sym < 0) p->sym = 1;
    return MP_OK;
}

static mp_errcode read_ignore(qconfig *c, const cJSON *q, mp_err *err)
{
    const cJSON *ign = cJSON_GetObjectItemCaseSensitive(q, "ignore");
    if (!ign || cJSON_IsNull(ign)) return MP_OK;
    if (!cJSON_IsArray(ign)) return MP_BAD_CONFIG(err, c, "'%s' is not a list", "ignore");
    for (const cJSON *e = ign->child; e; e = e->next) {
        if (!cJSON_IsString(e)) return MP_BAD_CONFIG(err, c, "'%s' holds a non-string", "ignore");
        qrule *r = mp_qc_add_rule(c, err);
        if (!r) return MP_E_NOMEM;
        r->skip = 1;
        int is_re = strncmp(e->valuestring, "re:", 3) == 0;
        MP_FORWARD(mp_qc_rule_pattern(c, r, e->valuestring + (is_re ? 3 : 0), is_re, err));
    }
    return MP_OK;
}

static mp_errcode read_targets(qconfig *c, const cJSON *g, const qparams *p, mp_err *err)
{
    const cJSON *targets = cJSON_GetObjectItemCaseSensitive(g, "targets");
    if (!cJSON_IsArray(targets) || !targets->child)
        return MP_BAD_CONFIG(err, c, "config group '%.100s' has no targets", g->string);
    for (const cJSON *t = targets->child; t; t = t->next) {
        if (!cJSON_IsString(t)) return MP_BAD_CONFIG(err, c, "config group '%.100s' has a non-string target", g->string);
        qrule *r = mp_qc_add_rule(c, err);
        if (!r) return MP_E_NOMEM;
        r->p = *p;
        const char *tv = t->valuestring;
        if (strncmp(tv, "re:", 3) == 0) {
            MP_FORWARD(mp_qc_rule_pattern(c, r, tv + 3, 1, err));
        } else {
            /* A bare word is a module class ("Linear"); a dotted name is a module. */
            MP_FORWARD(mp_qc_rule_pattern(c, r, tv, 0, err));
            r->any_linear = strchr(tv, '.') == NULL;
        }
    }
    return MP_OK;
}

static mp_errcode read_ct(qconfig *c, const cJSON *q, mp_err *err)
{
    const char *gfmt = mp_qc_str(q, "format");
    snprintf(c->format, sizeof c->format, "%s", gfmt ? gfmt : "pack-quantized");
    c->layout = &mp_scheme_ct;
    MP_FORWARD(read_ignore(c, q, err));
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(q, "config_groups");
    if (!cJSON_IsObject(groups) || !groups->child)
        return MP_BAD_CONFIG(err, c, "'%s' is missing or empty", "config_groups");
    int kinds = 0; /* 1: int groups, 2: float groups */
    for (const cJSON *g = groups->child; g; g = g->next) {
        if (!cJSON_IsObject(g)) return MP_BAD_CONFIG(err, c, "config group '%.100s' is not an object", g->string);
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(g, "weights");
        if (!cJSON_IsObject(w)) return MP_BAD_CONFIG(err, c, "config group '%.100s' has no 'weights'", g->string);
        const char *type = mp_qc_str(w, "type");
        const char *fmt = mp_qc_str(g, "format");
        if (!fmt) fmt = c->format;
        qparams p = QPARAMS_UNSET;
        MP_FORWARD(mp_qc_params(c, w, &p, err));
        int is_float = type && strcmp(type, "float") == 0;
        if (type && !is_float && strcmp(type, "int") != 0)
            return MP_UNSUPPORTED_CONFIG(err, c,
                              "config group '%.100s': weight type '%.20s' is not supported (int "
                              "and float are)", g->string, type);
        if (is_float) MP_FORWARD(mp_ct_float_group(c, g, w, fmt, &p, err));
        else MP_FORWARD(int_group(c, g, w, fmt, &p, err));
        kinds |= is_float ? 2 : 1;
        if (kinds == 3)
            return MP_UNSUPPORTED_CONFIG(err, c,
                              "config groups mix int and float weights; one kind per checkpoint "
                              "is supported");
        MP_FORWARD(read_targets(c, g, &p, err));
    }
    c->require_rule = 1; /* a linear no group targets is dense */
    return MP_OK;
}

mp_errcode mp_ct_weight_shape(const mp_st_model *m, const mp_qlinear *q, uint64_t nk[2], mp_err *err)
{
    const mp_tensor *ws = q->shape;
    if (!ws) return MP_REFUSE_LINEAR(q, "missing part 'weight_shape'");
    if (ws->n_dims != 1 || ws->shape[0] != 2 ||
        (ws->dtype != MP_DTYPE_I64 && ws->dtype != MP_DTYPE_I32))
        return MP_REFUSE_LINEAR(q, "'weight_shape' must be 2 integers (I64 or I32)");
    uint8_t raw[16];
    MP_FORWARD(mp_st_read(m, ws, 0, raw, (size_t)ws->n_bytes, err));
    for (int i = 0; i < 2; i++) {
        int64_t v = ws->dtype == MP_DTYPE_I64 ? (int64_t)mp_read_le64(raw + 8 * i)
                                              : (int32_t)mp_read_le32(raw + 4 * i);
        if (v <= 0 || v > (int64_t)1 << 40) return MP_REFUSE_LINEAR(q, "'weight_shape' holds %lld", (long long)v);
        nk[i] = (uint64_t)v;
    }
    return MP_OK;
}

static mp_errcode shape_ct(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    const mp_tensor *w = q->qweight, *s = q->scales;
    uint64_t nk[2];
    MP_FORWARD(mp_ct_weight_shape(m, q, nk, err));
    q->n_rows = nk[0];
    q->k_cols = nk[1];
    MP_FORWARD(mp_qc_want_codes_scales(q, mp_t_is_int32, "I32", err));
    uint64_t dense = mp_ceil_div(q->k_cols * q->bits, 32), per = 32 / q->bits;
    if (w->shape[0] != q->n_rows)
        return MP_REFUSE_LINEAR(q, "weight_packed has %llu rows but weight_shape says N = %llu",
                                (unsigned long long)w->shape[0], (unsigned long long)q->n_rows);
    if (w->shape[1] == dense) q->fields_per_word = 0;
    else if (w->shape[1] == mp_ceil_div(q->k_cols, per)) q->fields_per_word = (uint32_t)per;
    else
        return MP_REFUSE_LINEAR(q, "weight_packed has %llu words a row but K = %llu at %u bits needs %llu",
                                (unsigned long long)w->shape[1], (unsigned long long)q->k_cols, q->bits,
                                (unsigned long long)dense);
    MP_FORWARD(mp_qc_derive_groups(q, gs, err));
    MP_FORWARD(mp_qc_want_dims(q, s, "weight_scale", q->n_rows, q->n_groups, err));
    q->scales_nk = 1;
    int implied;
    MP_FORWARD(mp_qc_optional_zeros(q, &implied, err));
    if (implied) return MP_OK;
    uint64_t rows = q->fields_per_word ? mp_ceil_div(q->n_rows, per) : mp_ceil_div(q->n_rows * q->bits, 32);
    MP_FORWARD(mp_qc_want_dims(q, q->qzeros, "weight_zero_point", rows, q->n_groups, err));
    q->zero = MP_QZERO_CT;
    return MP_OK;
}

static mp_errcode write_ct(mp_buf *b, const mp_scheme *s, const mp_scheme_job *j, mp_err *err)
{
    (void)s;
    (void)err;
    int64_t group = j->group_size;
    mp_buf_printf(b, "{\"quant_method\": \"compressed-tensors\", \"format\": \"pack-quantized\", "
                     "\"quantization_status\": \"compressed\", \"config_groups\": {\"group_0\": "
                     "{\"targets\": [\"Linear\"], \"weights\": {\"num_bits\": %u, \"type\": \"int\", "
                     "\"symmetric\": %s, \"strategy\": \"%s\", \"group_size\": ",
                  j->bits, j->zeros_written ? "false" : "true", group > 0 ? "group" : "channel");
    if (group > 0) mp_buf_printf(b, "%lld", (long long)group);
    else mp_buf_puts(b, "null");
    mp_buf_printf(b, ", \"actorder\": %s, \"dynamic\": false, \"observer\": \"minmax\"}, "
                     "\"input_activations\": null, \"output_activations\": null, "
                     "\"format\": \"pack-quantized\"}}, \"ignore\": ",
                  j->act_order ? "\"group\"" : "null");
    mp_scheme_json_dense(b, j->qm);
    mp_buf_puts(b, ", \"kv_cache_scheme\": null, \"version\": \"modelprep-" MP_VERSION "\"}");
    return MP_OK;
}

static const char *const methods[] = {"compressed-tensors", NULL};

const mp_scheme mp_scheme_ct = {
    .name = "compressed-tensors",
    .summary = "compressed-tensors pack-quantized: weight_packed [N, K*b/32], 1 to 8 bits",
    .roles = MP_SCHEME_SOURCE | MP_SCHEME_TARGET,
    .methods = methods,
    .method = MP_QM_CT,
    .read_config = read_ct,
    .pack = MP_QPACK_KSTREAM_ROWS,
    .codes_name = "weight_packed",
    .zeros_name = "weight_zero_point",
    .scales_name = "weight_scale",
    .g_idx_name = "weight_g_idx",
    .shape_name = "weight_shape",
    /* codes: row n, field k; zeros: column g, field n */
    .codes = {.container_bytes = 4, .along_rows = 1, .string_is_n = 1},
    .zeros = {.container_bytes = 4, .along_rows = 0, .string_is_n = 0},
    .zenc = MP_ZENC_RAW,
    .scales_nk = 1,
    .bits_mask = 0x1FEu,
    .bits_text = "1 to 8 bits",
    .act_order_ok = 1,
    .check_shapes = shape_ct,
    .zeros_when_sym = 0,
    .n_multiple = 1,
    .k_multiple = 1,
    .scales = MP_SCALES_SOURCE,
    .g_idx_only_if_act = 1,
    .write_config = write_ct,
    .kernel = "compressed_tensors",
};
