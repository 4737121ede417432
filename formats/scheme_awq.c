/*
 * scheme_awq.c - AWQ (AutoAWQ; AutoRound's AWQ exports): the GEMM layout, and GEMV as a source.
 *
 * Bytes (GEMM): qweight int32 [K, N/8]; nibble i of word c holds column 8c + [0,2,4,6,1,3,5,7][i];
 * qzeros int32 [G, N/8] in the same interleave, storing z; scales [G, N]. Always asymmetric, 4-bit,
 * no g_idx. GEMV: qweight int32 [N, K/8] and qzeros [N, >= G/8], row n sequential, 8 nibbles a
 * word; scales [N, >= G]. The config dialect: `version` picks the layout, `zero_point`,
 * `q_group_size`, `w_bit`, and `modules_to_not_convert` (substrings left dense).
 * Facts: doc/formats/awq.md.
 */
#include "scheme_internal.h"

#include <stdio.h>
#include <string.h>

extern const mp_scheme mp_scheme_awq, mp_scheme_awq_gemv;

static mp_errcode read_awq(qconfig *c, const cJSON *q, mp_err *err)
{
    const char *ver = mp_qc_str(q, "version");
    if (!ver) ver = "gemm";
    snprintf(c->format, sizeof c->format, "%s", ver);
    for (char *p = c->format; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    if (strcmp(c->format, "gemm") == 0) c->layout = &mp_scheme_awq;
    else if (strcmp(c->format, "gemv") == 0) c->layout = &mp_scheme_awq_gemv;
    else
        return MP_UNSUPPORTED_CONFIG(err, c,
                                     "AWQ version '%.40s' is not supported (gemm and gemv are)", ver);
    if (c->base.sym < 0) c->base.sym = 0; /* zero_point defaults to true */
    if (c->base.group_size == 0) c->base.group_size = 128;
    const cJSON *skip = cJSON_GetObjectItemCaseSensitive(q, "modules_to_not_convert");
    if (skip && !cJSON_IsNull(skip)) {
        if (!cJSON_IsArray(skip)) return MP_BAD_CONFIG(err, c, "'%s' is not a list", "modules_to_not_convert");
        for (const cJSON *e = skip->child; e; e = e->next) {
            if (!cJSON_IsString(e)) return MP_BAD_CONFIG(err, c, "'%s' holds a non-string", "modules_to_not_convert");
            qrule *r = mp_qc_add_rule(c, err);
            if (!r) return MP_E_NOMEM;
            r->skip = 1;
            r->substring = 1;
            MP_FORWARD(mp_qc_rule_pattern(c, r, e->valuestring, 0, err));
        }
    }
    return MP_OK;
}

static mp_errcode shape_awq_gemm(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    (void)m;
    const mp_tensor *w = q->qweight, *s = q->scales;
    MP_FORWARD(mp_qc_want_codes_scales(q, mp_t_is_int32, "I32", err));
    q->n_rows = s->shape[1];
    q->k_cols = w->shape[0];
    if (w->shape[1] * 8 != q->n_rows) {
        if (w->shape[1] == q->n_rows)
            return MP_REFUSE_LINEAR(q, "shapes are GPTQ's (qweight [K*b/32, N]) but the config says AWQ %s",
                                    q->format);
        return MP_REFUSE_LINEAR(q, "qweight has %llu columns but N = %llu needs N/8 = %llu",
                                (unsigned long long)w->shape[1], (unsigned long long)q->n_rows,
                                (unsigned long long)(q->n_rows / 8));
    }
    MP_FORWARD(mp_qc_derive_groups(q, gs, err));
    if (s->shape[0] != q->n_groups)
        return MP_REFUSE_LINEAR(q, "scales have %llu groups but K = %llu with group size %llu gives %llu",
                                (unsigned long long)s->shape[0], (unsigned long long)q->k_cols,
                                (unsigned long long)q->group_size, (unsigned long long)q->n_groups);
    if (!q->qzeros) return MP_REFUSE_LINEAR(q, "missing part 'qzeros' (AWQ GEMM is always asymmetric)");
    MP_FORWARD(mp_qc_want_2d(q, q->qzeros, "qzeros", mp_t_is_int32, "I32", err));
    MP_FORWARD(mp_qc_want_dims(q, q->qzeros, "qzeros", q->n_groups, w->shape[1], err));
    q->zero = MP_QZERO_AWQ_GEMM;
    return MP_OK;
}

static mp_errcode shape_awq_gemv(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    (void)m;
    const mp_tensor *w = q->qweight, *s = q->scales;
    MP_FORWARD(mp_qc_want_codes_scales(q, mp_t_is_int32, "I32", err));
    q->n_rows = w->shape[0];
    q->k_cols = w->shape[1] * 8;
    MP_FORWARD(mp_qc_derive_groups(q, gs, err));
    if (s->shape[0] != q->n_rows || s->shape[1] < q->n_groups)
        return MP_REFUSE_LINEAR(q, "scales is [%llu, %llu], expected [%llu, >= %llu]",
                                (unsigned long long)s->shape[0], (unsigned long long)s->shape[1],
                                (unsigned long long)q->n_rows, (unsigned long long)q->n_groups);
    q->scales_nk = 1;
    if (!q->qzeros) return MP_REFUSE_LINEAR(q, "missing part 'qzeros'");
    MP_FORWARD(mp_qc_want_2d(q, q->qzeros, "qzeros", mp_t_is_int32, "I32", err));
    if (q->qzeros->shape[0] != q->n_rows || q->qzeros->shape[1] * 8 < q->n_groups)
        return MP_REFUSE_LINEAR(q, "qzeros is [%llu, %llu], expected [%llu, >= %llu]",
                                (unsigned long long)q->qzeros->shape[0], (unsigned long long)q->qzeros->shape[1],
                                (unsigned long long)q->n_rows, (unsigned long long)mp_ceil_div(q->n_groups, 8));
    q->zero = MP_QZERO_AWQ_GEMV;
    return MP_OK;
}

static mp_errcode write_awq(mp_buf *b, const mp_scheme *s, const mp_scheme_job *j, mp_err *err)
{
    (void)s;
    (void)err;
    mp_buf_printf(b, "{\"quant_method\": \"awq\", \"bits\": 4, \"group_size\": %lld, "
                     "\"zero_point\": true, \"version\": \"gemm\", \"modules_to_not_convert\": ",
                  (long long)j->group_size);
    mp_scheme_json_dense(b, j->qm);
    mp_buf_puts(b, "}");
    return MP_OK;
}

static const char *const methods[] = {"awq", NULL};

const mp_scheme mp_scheme_awq = {
    .name = "awq",
    .summary = "AWQ GEMM: qweight [K, N/8] interleaved [0,2,4,6,1,3,5,7], qzeros [G, N/8] (AutoAWQ)",
    .roles = MP_SCHEME_SOURCE | MP_SCHEME_TARGET,
    .methods = methods,
    .method = MP_QM_AWQ,
    .read_config = read_awq,
    .pack = MP_QPACK_N8_INTERLEAVED,
    MP_QWEIGHT_NAMES,
    .codes = {.container_bytes = 4, .bits = 4, .along_rows = 1, .string_is_n = 0, .awq_order = 1},
    .zeros = {.container_bytes = 4, .bits = 4, .along_rows = 1, .string_is_n = 0, .awq_order = 1},
    .zenc = MP_ZENC_RAW,
    .scales_nk = 0,
    MP_4BIT_ONLY,
    .act_order_ok = 0,
    .check_shapes = shape_awq_gemm,
    .zeros_when_sym = 1,
    .n_multiple = 8,
    .k_multiple = 1,
    .scales = MP_SCALES_F16,
    .write_config = write_awq,
    .kernel = "awq",
};

const mp_scheme mp_scheme_awq_gemv = {
    .name = "awq-gemv",
    .summary = "AWQ GEMV: qweight [N, K/8] sequential, qzeros [N, G/8], scales [N, G] (read only)",
    .roles = MP_SCHEME_SOURCE,
    .methods = NULL, /* announced as awq with version gemv */
    .method = MP_QM_AWQ,
    .read_config = read_awq,
    .pack = MP_QPACK_K8_WORDS,
    MP_QWEIGHT_NAMES,
    .codes = {.container_bytes = 4, .bits = 4, .along_rows = 1, .string_is_n = 1},
    .zeros = {.container_bytes = 4, .bits = 4, .along_rows = 1, .string_is_n = 1},
    .zenc = MP_ZENC_RAW,
    .scales_nk = 1,
    MP_4BIT_ONLY,
    .act_order_ok = 0,
    .check_shapes = shape_awq_gemv,
    .kernel = NULL, /* no device layout reads GEMV; convert it to one that does */
};
