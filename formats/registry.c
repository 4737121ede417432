/*
 * registry.c - the one table of schemes and layouts (formats.h, "the scheme registry").
 *
 * Each entry lives in its own file, formats/scheme_<name>.c; this file lists them, answers
 * lookups by name and by quant_method, and holds what modelprep's own device layouts share
 * (the "modelprep" config dialect they write and read back). doc/adding-a-format.md says how an
 * entry is added.
 */
#include "scheme_internal.h"

#include <stdio.h>
#include <string.h>

extern const mp_scheme mp_scheme_cutlass_int4, mp_scheme_onednn_int4, mp_scheme_gptq,
    mp_scheme_gptq_v2, mp_scheme_awq, mp_scheme_awq_gemv, mp_scheme_autoround, mp_scheme_ct,
    mp_scheme_fp8_block, mp_scheme_ct_float, mp_scheme_modelopt_fp8;
extern const mp_scheme mp_scheme_ct_nvfp4, mp_scheme_modelopt_nvfp4, mp_scheme_mxfp4,
    mp_scheme_ct_mxfp4, mp_scheme_bnb4, mp_scheme_bnb8, mp_scheme_dsv4, mp_scheme_dsv4_fp4;

/* Listing order: --help and the docs show the entries so, the device layouts first. */
static const mp_scheme *const entries[] = {
    &mp_scheme_cutlass_int4,
    &mp_scheme_onednn_int4,
    &mp_scheme_gptq,
    &mp_scheme_gptq_v2,
    &mp_scheme_awq,
    &mp_scheme_awq_gemv,
    &mp_scheme_autoround,
    &mp_scheme_ct,
    &mp_scheme_fp8_block,
    &mp_scheme_ct_float,
    &mp_scheme_modelopt_fp8,
    &mp_scheme_dsv4,
    &mp_scheme_dsv4_fp4,
    &mp_scheme_ct_nvfp4,
    &mp_scheme_modelopt_nvfp4,
    &mp_scheme_mxfp4,
    &mp_scheme_ct_mxfp4,
    &mp_scheme_bnb4,
    &mp_scheme_bnb8,
};
/* A literal, as ggml checks GGML_TYPE_COUNT: whoever adds an entry comes here and looks. */
_Static_assert(sizeof entries / sizeof *entries == 19, "a registry entry was added or removed");

size_t mp_scheme_count(void) { return sizeof entries / sizeof *entries; }

const mp_scheme *mp_scheme_at(size_t i) { return i < mp_scheme_count() ? entries[i] : NULL; }

const mp_scheme *mp_scheme_find(const char *name)
{
    for (size_t i = 0; i < mp_scheme_count(); i++)
        if (strcmp(entries[i]->name, name) == 0) return entries[i];
    return NULL;
}

const mp_scheme *mp_scheme_for_method(const char *quant_method)
{
    for (size_t i = 0; i < mp_scheme_count(); i++)
        for (const char *const *m = entries[i]->methods; m && *m; m++)
            if (strcmp(*m, quant_method) == 0) return entries[i];
    return NULL;
}

const mp_scheme *mp_scheme_for_format(mp_qmethod method, const char *name)
{
    for (size_t i = 0; i < mp_scheme_count(); i++)
        if (entries[i]->method == method && entries[i]->format_name &&
            strcmp(entries[i]->format_name, name) == 0)
            return entries[i];
    return NULL;
}

const char *mp_qmethod_name(mp_qmethod method)
{
    for (size_t i = 0; i < mp_scheme_count(); i++)
        if (entries[i]->method == method && entries[i]->methods) return entries[i]->methods[0];
    return "?";
}

static void append(char *buf, size_t cap, size_t *len, const char *s)
{
    int n = snprintf(buf + *len, cap - *len, "%s%s", *len ? ", " : "", s);
    if (n > 0) *len += (size_t)n < cap - *len ? (size_t)n : cap - *len - 1;
}

void mp_scheme_names(unsigned role, char *buf, size_t cap)
{
    size_t len = 0;
    if (cap) buf[0] = '\0';
    for (size_t i = 0; i < mp_scheme_count() && cap; i++)
        if (entries[i]->roles & role) append(buf, cap, &len, entries[i]->name);
}

void mp_scheme_methods(char *buf, size_t cap)
{
    size_t len = 0;
    if (cap) buf[0] = '\0';
    for (size_t i = 0; i < mp_scheme_count() && cap; i++) {
        const char *const *m = entries[i]->methods;
        if (!m || strcmp(m[0], "modelprep") == 0) continue; /* modelprep's own, not announced */
        if (mp_scheme_for_method(m[0]) == entries[i]) append(buf, cap, &len, m[0]);
    }
}

/* Levenshtein distance of two short strings, capped at 99 for longer ones. */
static unsigned edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    unsigned row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const mp_scheme *mp_scheme_nearest(const char *name, unsigned role)
{
    const mp_scheme *best = NULL;
    unsigned best_d = 4;
    for (size_t i = 0; i < mp_scheme_count(); i++) {
        if (!(entries[i]->roles & role)) continue;
        unsigned d = edit_distance(name, entries[i]->name);
        if (d < best_d) {
            best_d = d;
            best = entries[i];
        }
    }
    return best;
}

/* ------------------------------------------------------------ completeness */

static const char *check_layout(const mp_scheme *s)
{
    if (!s->codes_name || !s->scales_name) return "a layout without its tensor names";
    if (!s->codes.container_bytes) return "a layout without a codes packing";
    if (s->zenc != MP_ZENC_IMPLIED && (!s->zeros_name || !s->zeros.container_bytes))
        return "stored zero points without a zeros packing";
    if (!s->bits_mask || !s->bits_text) return "a layout without its bit widths";
    if (!s->check_shapes) return "a layout without a shape check";
    if (s->act_order_ok && !s->g_idx_name) return "act-order without a g_idx name";
    if (s->elem != MP_ELEM_INT && (!(s->is_codes || s->markers) || !s->scale_text))
        return "a float layout without its codes test or scale semantics";
    if (s->elem == MP_ELEM_FP4 && (!s->fp4_group || s->fp4_group % 2))
        return "an FP4 layout without an even block size";
    return NULL;
}

static const char *check_target(const mp_scheme *s)
{
    if (s->pack == MP_QPACK_COUNT) return "a target that is not a layout";
    if (!s->write_config) return "a target without a config writer";
    if (!s->n_multiple || !s->k_multiple) return "a target without its N and K multiples";
    if (s->group_sizes && !s->group_hint) return "group sizes without the reason others are refused";
    if (!s->kernel) return "a target without a kernel family";
    return NULL;
}

/* A source layout is reached through some entry's config reader. */
static int reachable(const mp_scheme *s)
{
    if (s->methods && s->read_config) return 1;
    for (size_t i = 0; i < mp_scheme_count(); i++)
        if (entries[i] != s && entries[i]->methods && entries[i]->read_config &&
            entries[i]->method == s->method)
            return 1;
    return 0;
}

const char *mp_scheme_check(const mp_scheme *s)
{
    if (!s->name || !s->name[0]) return "no name";
    if (!s->summary || !s->summary[0]) return "no summary";
    if (!s->roles) return "no role (source or target)";
    if (s->methods && (!s->methods[0] || !s->read_config)) return "methods without a config reader";
    if (s->pack != MP_QPACK_COUNT) {
        const char *why = check_layout(s);
        if (why) return why;
    } else if (!s->methods) {
        return "neither a layout nor announced by a quant_method";
    }
    if ((s->roles & MP_SCHEME_SOURCE) && !reachable(s)) return "a source no config reader reaches";
    if (s->roles & MP_SCHEME_TARGET) return check_target(s);
    return NULL;
}

/* ------------------------------------------------------------ shared by the writers */

void mp_scheme_json_dense(mp_buf *b, const mp_qmodel *qm)
{
    mp_buf_puts(b, "[");
    for (size_t i = 0; i < mp_qmodel_n_dense_linears(qm); i++) {
        if (i) mp_buf_puts(b, ", ");
        mp_buf_json_str(b, mp_qmodel_dense_linear(qm, i));
    }
    mp_buf_puts(b, "]");
}

const char *mp_scheme_torch_dtype(mp_dtype t)
{
    return t == MP_DTYPE_BF16 ? "bfloat16" : t == MP_DTYPE_F32 ? "float32" : "float16";
}

/* ------------------------------------------------------------ modelprep's own layouts */

/* The config `convert --to` writes for modelprep's own layouts (MP_QM_MODELPREP), so that every layout modelprep
 * writes can be read back as a source. */
mp_errcode mp_scheme_write_native(mp_buf *b, const mp_scheme *s, const mp_scheme_job *j,
                                  mp_err *err)
{
    (void)err;
    mp_buf_printf(b, "{\"quant_method\": \"modelprep\", \"format\": \"%s\", \"bits\": 4, "
                     "\"group_size\": %lld, \"sym\": %s",
                  s->name, (long long)j->group_size, j->zeros_written ? "false" : "true");
    if (s->signed_int4) mp_buf_printf(b, ", \"int4\": \"%s\"", j->s4 ? "s4" : "u4");
    mp_buf_printf(b, ", \"scale_dtype\": \"%s\", \"modules_not_converted\": ",
                  mp_scheme_torch_dtype(j->scale_dtype));
    mp_scheme_json_dense(b, j->qm);
    mp_buf_puts(b, "}");
    return MP_OK;
}

mp_errcode mp_scheme_read_native(qconfig *c, const cJSON *q, mp_err *err)
{
    const char *fmt = mp_qc_str(q, "format");
    if (!fmt) return MP_BAD_CONFIG(err, c, "'%s' is missing", "format");
    snprintf(c->format, sizeof c->format, "%s", fmt);
    const mp_scheme *s = mp_scheme_find(fmt);
    if (!s || s->read_config != mp_scheme_read_native)
        return MP_UNSUPPORTED_CONFIG(err, c, "modelprep format '%.40s' is not known", fmt);
    c->layout = s;
    const char *int4 = mp_qc_str(q, "int4");
    if (s->signed_int4 && int4 && strcmp(int4, "s4") == 0) c->code_xor = 8;
    else if (s->signed_int4 && int4 && strcmp(int4, "u4") != 0)
        return MP_BAD_CONFIG(err, c, "'int4' is '%.20s', expected u4 or s4", int4);
    if (c->base.sym < 0) c->base.sym = 1;
    if (c->base.group_size == 0) return MP_BAD_CONFIG(err, c, "'%s' is missing", "group_size");
    return MP_OK;
}
