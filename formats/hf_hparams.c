/*
 * hf_hparams.c - the hyperparameters a GGUF export needs from config.json
 * (doc/formats/gguf-export.md §1): sizes, heads, rope and norm parameters, the rope scaling
 * block, gemma3's sliding window, MoE counts, the token ids. Every key is optional here; the
 * exporter decides which ones its architecture requires. A key of the wrong JSON type is
 * MP_E_INPUT naming the file and the key.
 */
#include "formats_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_BYTES (16u << 20)

typedef struct int_key {
    const char *key;
    size_t off;
} int_key;

static const int_key int_keys[] = {
    {"hidden_size", offsetof(mp_hf_hparams, hidden_size)},
    {"intermediate_size", offsetof(mp_hf_hparams, intermediate_size)},
    {"num_hidden_layers", offsetof(mp_hf_hparams, n_layers)},
    {"num_attention_heads", offsetof(mp_hf_hparams, n_heads)},
    {"num_key_value_heads", offsetof(mp_hf_hparams, n_kv_heads)},
    {"head_dim", offsetof(mp_hf_hparams, head_dim)},
    {"max_position_embeddings", offsetof(mp_hf_hparams, context_length)},
    {"vocab_size", offsetof(mp_hf_hparams, vocab_size)},
    {"sliding_window", offsetof(mp_hf_hparams, sliding_window)},
    {"sliding_window_pattern", offsetof(mp_hf_hparams, sliding_window_pattern)},
    {"num_experts", offsetof(mp_hf_hparams, n_experts)},
    {"num_local_experts", offsetof(mp_hf_hparams, n_experts)},
    {"num_experts_per_tok", offsetof(mp_hf_hparams, n_experts_used)},
    {"moe_intermediate_size", offsetof(mp_hf_hparams, expert_ff)},
    {"bos_token_id", offsetof(mp_hf_hparams, bos_token_id)},
    {"eos_token_id", offsetof(mp_hf_hparams, eos_token_id)},
    {"pad_token_id", offsetof(mp_hf_hparams, pad_token_id)},
};

static const int_key float_keys[] = {
    {"rms_norm_eps", offsetof(mp_hf_hparams, rms_norm_eps)},
    {"rope_theta", offsetof(mp_hf_hparams, rope_theta)},
    {"rope_local_base_freq", offsetof(mp_hf_hparams, rope_local_base_freq)},
    {"final_logit_softcapping", offsetof(mp_hf_hparams, final_logit_softcapping)},
    {"attn_logit_softcapping", offsetof(mp_hf_hparams, attn_logit_softcapping)},
    {"swiglu_limit", offsetof(mp_hf_hparams, swiglu_limit)},
};

static const int_key scaling_floats[] = {
    {"factor", offsetof(mp_hf_hparams, rope_factor)},
    {"low_freq_factor", offsetof(mp_hf_hparams, rope_low_freq_factor)},
    {"high_freq_factor", offsetof(mp_hf_hparams, rope_high_freq_factor)},
    {"beta_fast", offsetof(mp_hf_hparams, rope_beta_fast)},
    {"beta_slow", offsetof(mp_hf_hparams, rope_beta_slow)},
};

static mp_errcode read_ints(const cJSON *o, const int_key *keys, size_t n, mp_hf_hparams *h,
                            const char *path, mp_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, keys[i].key);
        if (!v || cJSON_IsNull(v)) continue;
        if (cJSON_IsArray(v) && v->child) v = v->child; /* eos_token_id: [a, b]: the first */
        int64_t x;
        if (!mp_json_get_i64(v, 0, (int64_t)1 << 40, &x))
            return mp_errf_at(err, MP_E_INPUT, path, NULL, -1,
                              "'%s' is not an integer in [0, 2^40]", keys[i].key);
        *(int64_t *)((char *)h + keys[i].off) = x;
    }
    return MP_OK;
}

static mp_errcode read_floats(const cJSON *o, const int_key *keys, size_t n, mp_hf_hparams *h,
                              const char *path, mp_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, keys[i].key);
        if (!v || cJSON_IsNull(v)) continue;
        if (!cJSON_IsNumber(v))
            return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "'%s' is not a number", keys[i].key);
        *(double *)((char *)h + keys[i].off) = v->valuedouble;
    }
    return MP_OK;
}

static mp_errcode read_scaling(const cJSON *root, mp_hf_hparams *h, const char *path, mp_err *err)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (!s || cJSON_IsNull(s)) return MP_OK;
    if (!cJSON_IsObject(s))
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "'rope_scaling' is not an object");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "rope_type");
    if (!t) t = cJSON_GetObjectItemCaseSensitive(s, "type");
    if (t && !cJSON_IsString(t))
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "'rope_scaling.rope_type' is not a string");
    if (t) snprintf(h->rope_type, sizeof h->rope_type, "%s", t->valuestring);
    MP_FORWARD(read_floats(s, scaling_floats, sizeof scaling_floats / sizeof *scaling_floats, h, path, err));
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(s, "original_max_position_embeddings");
    if (o && !mp_json_get_i64(o, 0, (int64_t)1 << 40, &h->rope_orig_context))
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1,
                          "'rope_scaling.original_max_position_embeddings' is not an integer");
    return MP_OK;
}

static mp_errcode read_flags(const cJSON *root, mp_hf_hparams *h, const char *path, mp_err *err)
{
    static const char *const keys[] = {"tie_word_embeddings", "attention_bias", "mlp_bias"};
    int *dst[] = {&h->tie_word_embeddings, &h->attention_bias, &h->mlp_bias};
    for (size_t i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, keys[i]);
        if (!v || cJSON_IsNull(v)) continue;
        if (!cJSON_IsBool(v))
            return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "'%s' is not true or false", keys[i]);
        *dst[i] = cJSON_IsTrue(v);
    }
    static const char *const strs[] = {"model_type", "torch_dtype", "hidden_act", "_name_or_path"};
    char *sdst[] = {h->model_type, h->torch_dtype, h->hidden_act, h->name_or_path};
    size_t cap[] = {sizeof h->model_type, sizeof h->torch_dtype, sizeof h->hidden_act, sizeof h->name_or_path};
    for (size_t i = 0; i < 4; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, strs[i]);
        if (!v || cJSON_IsNull(v)) continue;
        if (!cJSON_IsString(v))
            return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "'%s' is not a string", strs[i]);
        /* A model_type too long is shortened and then refused as unknown; a _name_or_path too
         * long stays "" (unknown), never a shortened id. */
        if (sdst[i] == h->name_or_path && strlen(v->valuestring) >= cap[i]) continue;
        snprintf(sdst[i], cap[i], "%s", v->valuestring);
    }
    return MP_OK;
}

/* layer_types (gpt-oss): whether it alternates sliding_attention and full_attention from layer
 * 0 over all num_hidden_layers. */
static mp_errcode read_layer_types(const cJSON *o, mp_hf_hparams *h, const char *path, mp_err *err)
{
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(o, "layer_types"), *v;
    if (!lt || cJSON_IsNull(lt)) return MP_OK;
    if (!cJSON_IsArray(lt)) return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "'layer_types' is not an array");
    int i = 0, alternate = cJSON_GetArraySize(lt) == h->n_layers;
    cJSON_ArrayForEach(v, lt) {
        if (!cJSON_IsString(v))
            return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "'layer_types' holds something not a string");
        alternate &= strcmp(v->valuestring, i++ % 2 ? "full_attention" : "sliding_attention") == 0;
    }
    h->layer_types_alternate = alternate;
    return MP_OK;
}

static void hparams_init(mp_hf_hparams *h)
{
    memset(h, 0, sizeof *h);
    int64_t *ints[] = {&h->hidden_size, &h->intermediate_size, &h->n_layers, &h->n_heads,
                       &h->n_kv_heads, &h->head_dim, &h->context_length, &h->vocab_size,
                       &h->sliding_window, &h->sliding_window_pattern, &h->n_experts,
                       &h->n_experts_used, &h->expert_ff, &h->bos_token_id, &h->eos_token_id,
                       &h->pad_token_id, &h->rope_orig_context};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) *ints[i] = -1;
    double *fl[] = {&h->rms_norm_eps, &h->rope_theta, &h->rope_local_base_freq,
                    &h->final_logit_softcapping, &h->attn_logit_softcapping, &h->rope_factor,
                    &h->rope_low_freq_factor, &h->rope_high_freq_factor, &h->swiglu_limit,
                    &h->rope_beta_fast, &h->rope_beta_slow};
    for (size_t i = 0; i < sizeof fl / sizeof *fl; i++) *fl[i] = -1.0;
    h->tie_word_embeddings = h->attention_bias = h->mlp_bias = h->layer_types_alternate = -1;
}

mp_errcode mp_hf_hparams_load(mp_hf_hparams *h, const char *dir, mp_err *err)
{
    hparams_init(h);
    char *path = mp_path_join(dir, "config.json");
    if (!path) return mp_errf(err, MP_E_NOMEM, "out of memory");
    cJSON *root = NULL;
    mp_errcode rc = MP_OK;
    if (!mp_exists(path)) {
        rc = mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "missing: a GGUF export needs the model's config.json");
        goto cleanup;
    }
    rc = mp_json_load_file(path, CONFIG_MAX_BYTES, "config", &root, err);
    /* Multimodal configs (gemma3) keep the language model's keys in text_config. */
    const cJSON *text = root ? cJSON_GetObjectItemCaseSensitive(root, "text_config") : NULL;
    const cJSON *o = text && cJSON_IsObject(text) ? text : root;
    if (rc == MP_OK) rc = read_flags(root, h, path, err);
    if (rc == MP_OK && o != root) rc = read_flags(o, h, path, err);
    if (rc == MP_OK) rc = read_ints(o, int_keys, sizeof int_keys / sizeof *int_keys, h, path, err);
    if (rc == MP_OK) rc = read_floats(o, float_keys, sizeof float_keys / sizeof *float_keys, h, path, err);
    if (rc == MP_OK) rc = read_scaling(o, h, path, err);
    if (rc == MP_OK) rc = read_layer_types(o, h, path, err);
cleanup:
    cJSON_Delete(root);
    free(path);
    return rc;
}
