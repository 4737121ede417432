/*
 * structure.c - does the checkpoint hold what it says it holds?
 *
 *   - the manifest's tensors are exactly the checkpoint's, with the same file, dtype and shape
 *     (for a split: the per-layer files cover every tensor once);
 *   - shapes agree with config.json: layers, hidden and intermediate sizes, experts;
 *   - float tensors and scales hold no NaN or Inf; zero scales are flagged, all-zero ones fail.
 */
#include "check.h"
#include "../formats/formats.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mp_errcode mp_vfind(mp_verify_report *r, mp_vstatus st, const char *stage, const char *fmt, ...)
{
    mp_vfinding *f = realloc(r->findings, (r->n_findings + 1) * sizeof *f);
    if (!f) return MP_E_NOMEM;
    r->findings = f;
    f += r->n_findings++;
    f->status = st;
    snprintf(f->stage, sizeof f->stage, "%s", stage);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->text, sizeof f->text, fmt, ap);
    va_end(ap);
    if (st == MP_VS_FAIL) r->n_fail++;
    if (st == MP_VS_WARN) r->n_warn++;
    return MP_OK;
}

#define FIND(...) MP_FORWARD(mp_vfind(r, __VA_ARGS__) == MP_OK ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory"))

static mp_errcode check_manifest(const mp_st_model *m, const cJSON *manifest, mp_verify_report *r, mp_err *err)
{
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(manifest, "tensors"), *t;
    size_t nt = mp_st_n_tensors(m);
    unsigned char *seen = calloc(nt ? nt : 1, 1);
    if (!seen) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = MP_OK;
    cJSON_ArrayForEach(t, tensors) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
        const cJSON *file = cJSON_GetObjectItemCaseSensitive(t, "file");
        const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(t, "dtype");
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
        if (!cJSON_IsString(name) || !cJSON_IsString(file) || !cJSON_IsString(dtype) || !cJSON_IsArray(shape)) {
            rc = mp_errf_at(err, MP_E_INPUT, "modelprep.json", NULL, -1,
                            "a 'tensors' entry needs string name, file and dtype and a shape array");
            break;
        }
        size_t i = mp_st_index_of(m, name->valuestring);
        const mp_tensor *x = i == SIZE_MAX ? NULL : mp_st_tensor(m, i);
        if (!x) {
            rc = mp_vfind(r, MP_VS_FAIL, "structure", "%s: tensor '%s' of the manifest is missing",
                          file->valuestring, name->valuestring);
        } else {
            char sh[160] = "[";
            const cJSON *d;
            int k = 0, same = (uint32_t)cJSON_GetArraySize(shape) == x->n_dims;
            cJSON_ArrayForEach(d, shape) {
                uint64_t v = 0;
                if (!mp_json_get_u64(d, &v) || (k < (int)x->n_dims && v != x->shape[k])) same = 0;
                snprintf(sh + strlen(sh), sizeof sh - strlen(sh), "%s%llu", k++ ? ", " : "", (unsigned long long)v);
            }
            strncat(sh, "]", sizeof sh - strlen(sh) - 1);
            char got[160];
            mp_shape_format(x, got, sizeof got);
            if (seen[i]++)
                rc = mp_vfind(r, MP_VS_FAIL, "structure", "modelprep.json: tensor '%s' is listed twice", x->name);
            else if (strcmp(mp_st_file_name(m, x->file), file->valuestring) != 0)
                rc = mp_vfind(r, MP_VS_FAIL, "structure", "tensor '%s' is in %s, the manifest says %.200s", x->name,
                              mp_st_file_name(m, x->file), file->valuestring);
            else if (strcmp(mp_dtype_name(x->dtype), dtype->valuestring) != 0 || !same)
                rc = mp_vfind(r, MP_VS_FAIL, "structure", "%s: tensor '%s' is %s %s, the manifest says %.16s %s",
                              file->valuestring, x->name, mp_dtype_name(x->dtype), got, dtype->valuestring, sh);
        }
        if (rc != MP_OK) break;
    }
    for (size_t i = 0; i < nt && rc == MP_OK; i++)
        if (!seen[i])
            rc = mp_vfind(r, MP_VS_FAIL, "structure", "%s: tensor '%s' is not in the manifest",
                          mp_st_file_name(m, mp_st_tensor(m, i)->file), mp_st_tensor(m, i)->name);
    free(seen);
    return rc == MP_E_NOMEM && err->code == MP_OK ? mp_errf(err, MP_E_NOMEM, "out of memory") : rc;
}

/* ---------------------------------------------------------------- config.json */

typedef struct dims {
    int64_t hidden, inter, layers, experts, moe_inter, vocab;
} dims;

static int64_t cfg_int(const cJSON *c, const char *key)
{
    int64_t v;
    return mp_json_get_i64(cJSON_GetObjectItemCaseSensitive(c, key), 1, (int64_t)1 << 40, &v) ? v : -1;
}

/* The part of a name after "model.layers.<i>.", with the layer in *layer; NULL when none, *bad
 * then saying why when "layers." is followed by a number that is not a bounded decimal
 * (doc/limits.md, "numbers in names"). */
static const char *layer_rest(const char *name, int64_t *layer, const char **bad)
{
    *bad = NULL;
    const char *p = strstr(name, "layers.");
    if (!p) return NULL;
    p += 7;
    uint64_t v;
    const char *why;
    size_t nd = mp_parse_name_index(p, INT32_MAX, &v, &why);
    if (nd == 0) {
        if (*p == '-' || *p == '+' || (*p >= '0' && *p <= '9')) *bad = why;
        return NULL;
    }
    if (p[nd] != '.') return NULL;
    *layer = (int64_t)v;
    return p + nd + 1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Expected [N, K] of a linear by its name; 0 when the name is not a known projection. */
static int expected_nk(const dims *d, const char *prefix, int64_t *n, int64_t *k)
{
    int64_t layer;
    const char *bad;
    const char *rest = layer_rest(prefix, &layer, &bad);
    if (!rest) return 0;
    int expert = strstr(rest, "experts.") != NULL;
    int64_t inter = expert && d->moe_inter > 0 ? d->moe_inter : d->inter;
    *n = *k = -1;
    if (ends_with(rest, "self_attn.q_proj") || ends_with(rest, "self_attn.k_proj") || ends_with(rest, "self_attn.v_proj"))
        *k = d->hidden;
    else if (ends_with(rest, "self_attn.o_proj")) *n = d->hidden;
    else if (ends_with(rest, "gate_proj") || ends_with(rest, "up_proj")) *n = inter, *k = d->hidden;
    else if (ends_with(rest, "down_proj")) *n = d->hidden, *k = inter;
    else return 0;
    if (strstr(rest, "shared_expert")) *n = *k = -1; /* sized by its own key */
    return 1;
}

/* config.json's dimensions into *d (*found 0 when there is no config.json), with the warning
 * about cutlass-int4 scales that differ from the model's dtype. */
static mp_errcode read_dims(const mp_st_model *m, dims *d, int *found, mp_verify_report *r, mp_err *err)
{
    *found = 0;
    char *path = mp_path_join(mp_st_dir(m), "config.json");
    if (!path) return mp_errf(err, MP_E_NOMEM, "out of memory");
    if (!mp_exists(path)) {
        free(path);
        FIND(MP_VS_WARN, "structure", "config.json: missing, shapes not checked against it");
        return MP_OK;
    }
    cJSON *c = NULL;
    mp_errcode rc = mp_json_load_file(path, 1u << 24, "config.json", &c, err);
    free(path);
    if (rc != MP_OK) return rc;
    *found = 1;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(c, "text_config");
    const cJSON *cfg = cJSON_IsObject(text) ? text : c;
    *d = (dims){cfg_int(cfg, "hidden_size"), cfg_int(cfg, "intermediate_size"), cfg_int(cfg, "num_hidden_layers"),
                cfg_int(cfg, "num_experts"), cfg_int(cfg, "moe_intermediate_size"), cfg_int(cfg, "vocab_size")};
    if (d->experts < 0) d->experts = cfg_int(cfg, "num_local_experts");
    if (d->experts < 0) d->experts = cfg_int(cfg, "n_routed_experts");
    /* The XPU grouped GEMM reads cutlass-int4 scales as the activation dtype (doc/formats/cutlass-int4.md §2). */
    const cJSON *qc = cJSON_GetObjectItemCaseSensitive(c, "quantization_config");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(qc, "format");
    const cJSON *sdt = cJSON_GetObjectItemCaseSensitive(qc, "scale_dtype");
    const cJSON *tdt = cJSON_GetObjectItemCaseSensitive(cfg, "torch_dtype");
    if (cJSON_IsString(fmt) && strcmp(fmt->valuestring, "cutlass-int4") == 0 && cJSON_IsString(sdt) &&
        cJSON_IsString(tdt) && strcmp(sdt->valuestring, tdt->valuestring) != 0)
        rc = mp_vfind(r, MP_VS_WARN, "structure",
                      "config.json: cutlass-int4 scales are %.20s but torch_dtype is %.20s; the XPU kernels read "
                      "scales as the activation dtype",
                      sdt->valuestring, tdt->valuestring);
    cJSON_Delete(c);
    return rc == MP_OK ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
}

/* Norms, the embedding and unquantized linears against the dimensions. */
static mp_errcode check_dense_shape(const dims *d, const mp_qmodel *q, const mp_tensor *t, const char *got,
                                    mp_verify_report *r, mp_err *err)
{
    if (d->hidden > 0 && (ends_with(t->name, "layernorm.weight") || strcmp(t->name, "model.norm.weight") == 0) &&
        (t->n_dims != 1 || (int64_t)t->shape[0] != d->hidden))
        FIND(MP_VS_FAIL, "structure", "tensor '%s' is %s, config.json's hidden_size is %lld", t->name, got,
             (long long)d->hidden);
    if (strcmp(t->name, "model.embed_tokens.weight") == 0 && t->n_dims == 2 &&
        ((d->hidden > 0 && (int64_t)t->shape[1] != d->hidden) || (d->vocab > 0 && (int64_t)t->shape[0] != d->vocab)))
        FIND(MP_VS_FAIL, "structure", "tensor '%s' is %s, config.json says [%lld, %lld] (vocab_size, hidden_size)",
             t->name, got, (long long)d->vocab, (long long)d->hidden);
    /* Unquantized linears: "<prefix>.weight" of 2 dims that no quantized linear owns. */
    int64_t n, k;
    if (t->n_dims == 2 && ends_with(t->name, ".weight") && !mp_qmodel_owner(q, t)) {
        char prefix[256];
        snprintf(prefix, sizeof prefix, "%.*s", (int)(strlen(t->name) - 7), t->name);
        if (expected_nk(d, prefix, &n, &k) && ((n > 0 && (int64_t)t->shape[0] != n) || (k > 0 && (int64_t)t->shape[1] != k)))
            FIND(MP_VS_FAIL, "structure", "tensor '%s' is %s, config.json implies [%lld, %lld]", t->name, got,
                 (long long)n, (long long)k);
    }
    return MP_OK;
}

/* Stacked experts [E, ...] with E from config.json, and expert numbers in names. */
static mp_errcode check_experts(const dims *d, const mp_tensor *t, const char *got, mp_verify_report *r, mp_err *err)
{
    if (d->experts > 0 && t->n_dims == 3 && strstr(t->name, ".experts.w") && (int64_t)t->shape[0] != d->experts)
        FIND(MP_VS_FAIL, "structure", "tensor '%s' is %s, config.json has %lld experts", t->name, got,
             (long long)d->experts);
    const char *e = strstr(t->name, ".experts.");
    uint64_t ei;
    const char *why;
    if (e && (e[9] == '-' || e[9] == '+' || (e[9] >= '0' && e[9] <= '9')) &&
        mp_parse_name_index(e + 9, UINT32_MAX, &ei, &why) == 0)
        FIND(MP_VS_FAIL, "structure", "tensor '%s': the expert number after '.experts.' %s", t->name, why);
    else if (e && d->experts > 0 && e[9] >= '0' && e[9] <= '9' && ei >= (uint64_t)d->experts)
        FIND(MP_VS_FAIL, "structure", "tensor '%s': expert index beyond config.json's %lld experts", t->name,
             (long long)d->experts);
    return MP_OK;
}

/* Every layer 0 .. num_hidden_layers - 1 has tensors, and none is beyond (has: per layer, seen). */
static mp_errcode check_layers(const dims *d, int64_t max_layer, const unsigned char *has, mp_verify_report *r,
                               mp_err *err)
{
    if (d->layers <= 0 || max_layer < 0) return MP_OK;
    if (max_layer >= d->layers)
        FIND(MP_VS_FAIL, "structure", "tensors of layer %lld, config.json's num_hidden_layers is %lld",
             (long long)max_layer, (long long)d->layers);
    for (int64_t l = 0; has && l < d->layers; l++)
        if (!has[l]) {
            FIND(MP_VS_FAIL, "structure", "layer %lld of %lld has no tensors", (long long)l, (long long)d->layers);
            break;
        }
    return MP_OK;
}

/* Each tensor's shape and layer number; has[layer] marks the layers seen. */
static mp_errcode check_tensors(const mp_st_model *m, const mp_qmodel *q, const dims *d, unsigned char *has,
                                int64_t *max_layer, mp_verify_report *r, mp_err *err)
{
    for (size_t i = 0; i < mp_st_n_tensors(m); i++) {
        const mp_tensor *t = mp_st_tensor(m, i);
        int64_t layer;
        const char *bad;
        const char *rest = layer_rest(t->name, &layer, &bad);
        if (bad) FIND(MP_VS_FAIL, "structure", "tensor '%s': the layer number after 'layers.' %s", t->name, bad);
        if (rest && strncmp(t->name, "model.", 6) == 0) {
            if (layer > *max_layer) *max_layer = layer;
            if (has && layer < d->layers) has[layer] = 1;
        }
        char got[160];
        mp_shape_format(t, got, sizeof got);
        MP_FORWARD(check_dense_shape(d, q, t, got, r, err));
        MP_FORWARD(check_experts(d, t, got, r, err));
    }
    for (size_t i = 0; i < mp_qmodel_n_linears(q); i++) {
        const mp_qlinear *l = mp_qmodel_linear(q, i);
        int64_t n, k;
        if (expected_nk(d, l->prefix, &n, &k) && ((n > 0 && (int64_t)l->n_rows != n) || (k > 0 && (int64_t)l->k_cols != k)))
            FIND(MP_VS_FAIL, "structure", "quantized linear '%s' is [%llu, %llu], config.json implies [%lld, %lld]",
                 l->prefix, (unsigned long long)l->n_rows, (unsigned long long)l->k_cols, (long long)n, (long long)k);
    }
    return MP_OK;
}

static mp_errcode check_config(const mp_st_model *m, const mp_qmodel *q, mp_verify_report *r, mp_err *err)
{
    dims d;
    int found;
    MP_FORWARD(read_dims(m, &d, &found, r, err));
    if (!found) return MP_OK;
    if (d.layers > (1 << 20)) {
        FIND(MP_VS_FAIL, "structure", "config.json: num_hidden_layers %lld is not plausible", (long long)d.layers);
        d.layers = -1;
    }
    int64_t max_layer = -1;
    unsigned char *has = d.layers > 0 ? calloc((size_t)d.layers, 1) : NULL;
    mp_errcode rc = check_tensors(m, q, &d, has, &max_layer, r, err);
    if (rc == MP_OK) rc = check_layers(&d, max_layer, has, r, err);
    free(has);
    return rc;
}

/* ---------------------------------------------------------------- values */

static int is_scale(const mp_qmodel *q, const mp_tensor *t)
{
    const mp_qlinear *l = mp_qmodel_owner(q, t);
    if (l) return l->scales == t;
    return ends_with(t->name, "_scales") || ends_with(t->name, ".scales") || ends_with(t->name, "weight_scale");
}

/* NaN/Inf anywhere in a float tensor; for scales also the count of zeros. */
static mp_errcode scan_floats(const mp_st_model *m, const mp_tensor *t, int scale, mp_verify_report *r, mp_err *err)
{
    unsigned es = mp_dtype_bits(t->dtype) / 8;
    enum { CH = 1 << 22 };
    uint8_t *buf = malloc(CH);
    if (!buf) return mp_errf(err, MP_E_NOMEM, "out of memory");
    uint64_t zeros = 0, bad_at = UINT64_MAX, n = t->n_elems;
    mp_errcode rc = MP_OK;
    for (uint64_t e0 = 0; e0 < n && rc == MP_OK; e0 += CH / es) {
        uint64_t cnt = n - e0 < CH / es ? n - e0 : CH / es;
        rc = mp_st_read(m, t, e0 * es, buf, (size_t)(cnt * es), err);
        for (uint64_t i = 0; rc == MP_OK && i < cnt; i++) {
            int nonfinite, zero;
            if (es == 2) {
                uint16_t h = (uint16_t)(buf[2 * i] | buf[2 * i + 1] << 8);
                uint16_t expmask = t->dtype == MP_DTYPE_F16 ? 0x7c00 : 0x7f80;
                nonfinite = (h & expmask) == expmask;
                zero = (h & 0x7fff) == 0;
            } else {
                uint32_t u = mp_read_le32(buf + 4 * i);
                nonfinite = (u & 0x7f800000u) == 0x7f800000u;
                zero = (u & 0x7fffffffu) == 0;
            }
            if (nonfinite && bad_at == UINT64_MAX) bad_at = e0 + i;
            zeros += (uint64_t)zero;
        }
    }
    free(buf);
    if (rc != MP_OK) return rc;
    const char *file = mp_st_file_name(m, t->file);
    if (bad_at != UINT64_MAX)
        FIND(MP_VS_FAIL, "structure", "%s: tensor '%s': element %llu is NaN or Inf", file, t->name,
             (unsigned long long)bad_at);
    if (scale && n && zeros == n)
        FIND(MP_VS_FAIL, "structure", "%s: tensor '%s': all %llu scales are zero", file, t->name, (unsigned long long)n);
    else if (scale && zeros)
        FIND(MP_VS_WARN, "structure", "%s: tensor '%s': %llu of %llu scales are zero", file, t->name,
             (unsigned long long)zeros, (unsigned long long)n);
    return MP_OK;
}

mp_errcode mp_check_structure(const mp_st_model *m, const mp_qmodel *q, const cJSON *manifest,
                              mp_verify_report *r, mp_err *err)
{
    if (manifest) MP_FORWARD(check_manifest(m, manifest, r, err));
    MP_FORWARD(check_config(m, q, r, err));
    /* In file order, so that a compressed file is decompressed once, front to back. */
    for (size_t fi = 0; fi < mp_st_n_files(m); fi++)
        for (size_t j = 0; j < mp_st_file_n_tensors(m, fi); j++) {
            const mp_tensor *t = mp_st_file_tensor(m, fi, j);
            if (t->dtype == MP_DTYPE_F16 || t->dtype == MP_DTYPE_BF16 || t->dtype == MP_DTYPE_F32)
                MP_FORWARD(scan_floats(m, t, is_scale(q, t), r, err));
        }
    return MP_OK;
}
