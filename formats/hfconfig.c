/*
 * hfconfig.c - the facts modelprep needs from a Hugging Face config.json, and a summary of the
 * quantization config wherever it lives (config.json quantization_config, quantize_config.json,
 * quant_config.json; doc/formats/gptq.md §5, awq.md §4, autoround.md §2, compressed-tensors.md §3).
 *
 * The scheme readers interpret the quantization config in full; this file only reports it.
 */
#include "formats_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_BYTES (16u << 20)

static void copy_field(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

/* A wrongly typed known key is bad input: a checkpoint whose config lies about itself must not
 * be half-understood. */
static mp_errcode get_str(const cJSON *o, const char *key, char *dst, size_t cap,
                          const char *path, mp_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return MP_OK;
    if (!cJSON_IsString(v))
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "'%s' is not a string", key);
    copy_field(dst, cap, v->valuestring);
    return MP_OK;
}

static mp_errcode get_bool(const cJSON *o, const char *key, int *dst, const char *path,
                           mp_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return MP_OK;
    if (!cJSON_IsBool(v))
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "'%s' is not true or false", key);
    *dst = cJSON_IsTrue(v);
    return MP_OK;
}

static mp_errcode get_int(const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t *dst,
                          const char *path, mp_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return MP_OK;
    if (!mp_json_get_i64(v, lo, hi, dst))
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1,
                          "'%s' is not an integer in [%lld, %lld]", key, (long long)lo,
                          (long long)hi);
    return MP_OK;
}

/* One compressed-tensors config group's "weights": bits, group size (-1 for the "channel"
 * strategy), symmetric, actorder. */
static mp_errcode read_ct_weights(const cJSON *w, const char *path, int64_t *bits, int64_t *group, int *sym,
                                  int *act, mp_err *err)
{
    MP_FORWARD(get_int(w, "num_bits", 1, 64, bits, path, err));
    MP_FORWARD(get_int(w, "group_size", 1, 1 << 30, group, path, err));
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(w, "strategy");
    if (cJSON_IsString(st) && strcmp(st->valuestring, "channel") == 0) *group = -1;
    MP_FORWARD(get_bool(w, "symmetric", sym, path, err));
    const cJSON *ao = cJSON_GetObjectItemCaseSensitive(w, "actorder");
    *act = !ao || cJSON_IsNull(ao) || cJSON_IsFalse(ao) ? 0 : 1; /* "group", "weight", true */
    return MP_OK;
}

/* compressed-tensors keeps bits, group and symmetry per config group ("config_groups":
 * {"group_0": {"weights": {...}, "targets": [...]}}): the summary takes them when every group
 * agrees, and says "mixed" (fields unset) when they do not. */
static mp_errcode read_ct_groups(const cJSON *q, const char *path, mp_quant_summary *s, mp_err *err)
{
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(q, "config_groups"), *g;
    if (!cJSON_IsObject(groups)) return MP_OK;
    cJSON_ArrayForEach(g, groups)
    {
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(g, "weights");
        if (!cJSON_IsObject(w)) continue;
        int64_t bits = -1, group = 0;
        int sym = -1, act = 0;
        MP_FORWARD(read_ct_weights(w, path, &bits, &group, &sym, &act, err));
        if (s->config_groups < MP_QUANT_GROUPS_SHOWN) {
            struct mp_quant_group *d = &s->groups[s->config_groups];
            *d = (struct mp_quant_group){.bits = (int)bits, .group_size = (int)group, .sym = sym, .desc_act = act};
            copy_field(d->name, sizeof d->name, g->string ? g->string : "");
            const cJSON *t;
            size_t used = 0;
            cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(g, "targets"))
                if (cJSON_IsString(t) && used + 1 < sizeof d->targets) {
                    int n = snprintf(d->targets + used, sizeof d->targets - used, "%s%s", used ? "," : "", t->valuestring);
                    used = n < 0 ? used : used + (size_t)n < sizeof d->targets ? used + (size_t)n : sizeof d->targets - 1;
                }
        }
        if (s->config_groups++ == 0) {
            s->bits = (int)bits, s->group_size = (int)group, s->sym = sym, s->desc_act = act;
        } else if (s->bits != (int)bits || s->group_size != (int)group || s->sym != sym || s->desc_act != act) {
            s->mixed = 1;
        }
    }
    if (s->mixed) s->bits = -1, s->group_size = 0, s->sym = -1, s->desc_act = -1;
    return MP_OK;
}

static mp_errcode read_quant(const cJSON *q, const char *path, mp_quant_summary *s, mp_err *err)
{
    if (!cJSON_IsObject(q))
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "quantization config is not an object");
    s->present = 1;
    MP_FORWARD(get_str(q, "quant_method", s->quant_method, sizeof s->quant_method, path, err));
    static const char *const format_keys[] = {"checkpoint_format", "format", "packing_format",
                                              "version", "fmt", "quant_algo"};
    for (size_t i = 0; i < sizeof format_keys / sizeof *format_keys && !s->format[0]; i++)
        MP_FORWARD(get_str(q, format_keys[i], s->format, sizeof s->format, path, err));
    int64_t bits = -1, group = 0;
    MP_FORWARD(get_int(q, "bits", 1, 64, &bits, path, err));
    MP_FORWARD(get_int(q, "w_bit", 1, 64, &bits, path, err));
    MP_FORWARD(get_int(q, "group_size", -1, 1 << 30, &group, path, err));
    MP_FORWARD(get_int(q, "q_group_size", -1, 1 << 30, &group, path, err));
    s->bits = (int)bits;
    s->group_size = (int)group;
    MP_FORWARD(get_bool(q, "sym", &s->sym, path, err));
    int zero_point = -1;
    MP_FORWARD(get_bool(q, "zero_point", &zero_point, path, err));  /* AWQ: asym when true */
    if (s->sym < 0 && zero_point >= 0) s->sym = !zero_point;
    MP_FORWARD(get_bool(q, "desc_act", &s->desc_act, path, err));
    if (s->bits < 0) MP_FORWARD(read_ct_groups(q, path, s, err));
    return MP_OK;
}

mp_errcode mp_json_load_file(const char *path, size_t max_bytes, const char *what, cJSON **out,
                             mp_err *err)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    MP_FORWARD(mp_read_small_file(path, max_bytes, &text, &len, err));
    size_t bad_at = 0;
    char why[128];
    if (!mp_json_check(text, len, 0, &bad_at, why, sizeof why)) {
        free(text);
        return mp_errf_at(err, MP_E_INPUT, path, NULL, (int64_t)bad_at, "invalid JSON: %s", why);
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    long at = end ? (long)(end - text) : -1;
    free(text);
    if (!root) return mp_errf_at(err, MP_E_INPUT, path, NULL, at, "invalid JSON");
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "%s is not a JSON object", what);
    }
    *out = root;
    return MP_OK;
}

static void quant_init(mp_quant_summary *s)
{
    memset(s, 0, sizeof *s);
    s->bits = -1;
    s->sym = -1;
    s->desc_act = -1;
}

mp_errcode mp_hf_config_load(mp_hf_config *cfg, const char *dir, mp_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->num_hidden_layers = -1;
    cfg->tie_word_embeddings = -1;
    quant_init(&cfg->quant);

    cJSON *root = NULL;
    char *path = mp_path_join(dir, "config.json");
    mp_errcode rc = MP_OK;
    if (!path) return mp_errf(err, MP_E_NOMEM, "out of memory");
    if (mp_exists(path)) {
        rc = mp_json_load_file(path, CONFIG_MAX_BYTES, "config", &root, err);
        if (rc != MP_OK) goto cleanup;
        cfg->present = 1;
        const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
        if (arch && !cJSON_IsNull(arch)) {
            if (!cJSON_IsArray(arch) || (arch->child && !cJSON_IsString(arch->child))) {
                rc = mp_errf_at(err, MP_E_INPUT, path, NULL, -1,
                                "'architectures' is not a list of strings");
                goto cleanup;
            }
            if (arch->child)
                copy_field(cfg->architecture, sizeof cfg->architecture, arch->child->valuestring);
        }
        rc = get_str(root, "model_type", cfg->model_type, sizeof cfg->model_type, path, err);
        if (rc == MP_OK)
            rc = get_str(root, "torch_dtype", cfg->torch_dtype, sizeof cfg->torch_dtype, path, err);
        if (rc == MP_OK)
            rc = get_int(root, "num_hidden_layers", 0, 1 << 20, &cfg->num_hidden_layers, path, err);
        if (rc == MP_OK)
            rc = get_int(root, "num_nextn_predict_layers", 0, 1 << 20, &cfg->num_nextn_predict_layers, path, err);
        if (rc == MP_OK)
            rc = get_bool(root, "tie_word_embeddings", &cfg->tie_word_embeddings, path, err);
        static const char *const experts[] = {"n_routed_experts", "num_local_experts", "num_experts"};
        for (size_t i = 0; i < 3 && cfg->num_experts <= 0; i++)
            if (!mp_json_get_i64(cJSON_GetObjectItemCaseSensitive(root, experts[i]), 1, 1 << 20, &cfg->num_experts))
                cfg->num_experts = 0;
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
        if (rc == MP_OK && q && !cJSON_IsNull(q)) {
            rc = read_quant(q, path, &cfg->quant, err);
            copy_field(cfg->quant.source, sizeof cfg->quant.source, "config.json");
        }
        if (rc != MP_OK) goto cleanup;
    }
    static const char *const side_files[] = {"quantize_config.json", "quant_config.json"};
    for (size_t i = 0; i < 2 && !cfg->quant.present; i++) {
        char *side = mp_path_join(dir, side_files[i]);
        if (!side) {
            rc = mp_errf(err, MP_E_NOMEM, "out of memory");
            goto cleanup;
        }
        if (mp_exists(side)) {
            cJSON *sroot = NULL;
            rc = mp_json_load_file(side, CONFIG_MAX_BYTES, "config", &sroot, err);
            if (rc == MP_OK) rc = read_quant(sroot, side, &cfg->quant, err);
            if (rc == MP_OK) copy_field(cfg->quant.source, sizeof cfg->quant.source, side_files[i]);
            cJSON_Delete(sroot);
        }
        free(side);
        if (rc != MP_OK) goto cleanup;
    }
cleanup:
    cJSON_Delete(root);
    free(path);
    return rc;
}
