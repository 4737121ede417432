/*
 * scheme_config.c - what a checkpoint's quantization config says, per linear.
 *
 * The config is found (config.json's quantization_config, quantize_config.json or
 * quant_config.json), its quant_method picks a registry entry, and the entry's reader turns its
 * dialect into one base parameter set plus an ordered list of rules (the readers live in the
 * entries' files, formats/scheme_*.c). The first rule whose pattern matches a module decides
 * whether it is quantized and with which bits, group size and symmetry. Patterns follow
 * Python's re.match: anchored at the start only.
 */
#define _GNU_SOURCE
#include "scheme_internal.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD MP_BAD_CONFIG

/* Python regex to POSIX ERE for the subset configs use: (?:...) groups and \d. */
static char *translate_regex(const char *py)
{
    size_t n = strlen(py);
    char *out = malloc(4 * n + 8);
    if (!out) return NULL;
    char *o = out;
    *o++ = '^';
    *o++ = '(';
    for (size_t i = 0; i < n; i++) {
        if (py[i] == '(' && py[i + 1] == '?' && py[i + 2] == ':') {
            *o++ = '(';
            i += 2;
        } else if (py[i] == '\\' && py[i + 1] == 'd') {
            memcpy(o, "[0-9]", 5);
            o += 5;
            i++;
        } else if (py[i] == '\\' && py[i + 1]) {
            *o++ = py[i++];
            *o++ = py[i];
        } else {
            *o++ = py[i];
        }
    }
    *o++ = ')';
    *o = '\0';
    return out;
}

qrule *mp_qc_add_rule(qconfig *c, mp_err *err)
{
    qrule *r = realloc(c->rules, (c->n_rules + 1) * sizeof *r);
    if (!r) {
        mp_errf(err, MP_E_NOMEM, "out of memory");
        return NULL;
    }
    c->rules = r;
    r = &c->rules[c->n_rules++];
    memset(r, 0, sizeof *r);
    r->p = (qparams)QPARAMS_UNSET;
    return r;
}

/* Why a pattern is refused before regcomp sees it, or NULL. glibc's regcomp builds automata
 * whose size multiplies with stacked quantifiers ("a+++++...") and large bounded repeats; a
 * config from a stranger must not make it allocate gigabytes (found by fuzz_config: 36 '+' in a
 * row took 24 GB). Real module patterns ("model.layers.[0-9]+.mlp.*") need neither. */
static const char *pattern_hazard(const char *p)
{
    if (strlen(p) > 1024) return "longer than 1024 bytes";
    int prev_quant = 0, in_class = 0;
    for (const char *q = p; *q; q++) {
        if (in_class) {
            if (*q == ']') in_class = 0;
            continue;
        }
        if (*q == '\\' && q[1]) {
            q++;
            prev_quant = 0;
            continue;
        }
        if (*q == '[') {
            in_class = 1;
            if (q[1] == ']') q++; /* "[]...]": the first ']' is a member */
            prev_quant = 0;
            continue;
        }
        int quant = *q == '*' || *q == '+' || *q == '?' || *q == '{';
        if (quant && prev_quant && *q != '?') return "has a quantifier on a quantifier";
        if (*q == '{') {
            char *end;
            unsigned long lo = strtoul(q + 1, &end, 10), hi = lo;
            if (*end == ',') hi = end[1] == '}' ? 0 : strtoul(end + 1, &end, 10);
            if (lo > 64 || hi > 64) return "has a repeat count above 64";
        }
        prev_quant = quant || (*q == '}' && prev_quant);
    }
    return NULL;
}

mp_errcode mp_qc_rule_pattern(qconfig *c, qrule *r, const char *key, int is_regex, mp_err *err)
{
    r->key = mp_strdup(key);
    if (!r->key) return mp_errf(err, MP_E_NOMEM, "out of memory");
    if (!is_regex) return MP_OK;
    const char *hazard = pattern_hazard(key);
    if (hazard)
        return mp_errf_at(err, MP_E_UNSUPPORTED, c->source, NULL, -1, "pattern '%.200s' %s", key, hazard);
    char *ere = translate_regex(key);
    if (!ere) return mp_errf(err, MP_E_NOMEM, "out of memory");
    int rc = regcomp(&r->re, ere, REG_EXTENDED | REG_NOSUB);
    free(ere);
    if (rc != 0)
        return mp_errf_at(err, MP_E_UNSUPPORTED, c->source, NULL, -1,
                          "pattern '%.200s' is not a regular expression modelprep can read", key);
    r->is_regex = 1;
    return MP_OK;
}

/* ------------------------------------------------------------ typed fields */

static mp_errcode get_int(const qconfig *c, const cJSON *o, const char *key, int64_t *dst,
                          mp_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return MP_OK;
    if (!mp_json_get_i64(v, -1, 1 << 30, dst))
        return BAD(err, c, "'%s' is not an integer in [-1, 2^30]", key);
    return MP_OK;
}

static mp_errcode get_bool(const qconfig *c, const cJSON *o, const char *key, int *dst,
                           mp_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return MP_OK;
    if (!cJSON_IsBool(v)) return BAD(err, c, "'%s' is not true or false", key);
    *dst = cJSON_IsTrue(v);
    return MP_OK;
}

const char *mp_qc_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

mp_errcode mp_qc_params(const qconfig *c, const cJSON *o, qparams *p, mp_err *err)
{
    int64_t v = INT64_MIN;
    MP_FORWARD(get_int(c, o, "bits", &v, err));
    MP_FORWARD(get_int(c, o, "w_bit", &v, err));
    MP_FORWARD(get_int(c, o, "num_bits", &v, err));
    if (v != INT64_MIN) p->bits = (int)v;
    v = INT64_MIN;
    MP_FORWARD(get_int(c, o, "group_size", &v, err));
    MP_FORWARD(get_int(c, o, "q_group_size", &v, err));
    if (v != INT64_MIN) p->group_size = v == 0 ? -1 : v;
    int b = -1;
    MP_FORWARD(get_bool(c, o, "sym", &b, err));
    MP_FORWARD(get_bool(c, o, "symmetric", &b, err));
    if (b >= 0) p->sym = b;
    b = -1;
    MP_FORWARD(get_bool(c, o, "zero_point", &b, err));
    if (b >= 0) p->sym = !b;
    b = -1;
    MP_FORWARD(get_bool(c, o, "desc_act", &b, err));
    if (b >= 0) p->desc_act = b;
    return MP_OK;
}

/* config.json's torch_dtype, for the readers whose producer rounds to the model's dtype. */
static void note_torch_dtype(qconfig *c, const cJSON *root)
{
    const char *d = mp_qc_str(root, "torch_dtype");
    if (!d) d = mp_qc_str(root, "dtype");
    if (d) snprintf(c->torch_dtype, sizeof c->torch_dtype, "%s", d);
    /* DeepSeek-V4 states it at the top level, V4.1 inside quantization_config (doc/formats/fp8.md). */
    const char *e = mp_qc_str(root, "expert_dtype");
    /* A V4 config that names no expert dtype has transformers' default, fp8 (the -Base layout). */
    const char *type = mp_qc_str(root, "model_type");
    if (!e && type && strcmp(type, "deepseek_v4") == 0) e = "fp8";
    if (e) snprintf(c->expert_dtype, sizeof c->expert_dtype, "%s", e);
}

/* The quantization object of config file i: config.json's quantization_config, the whole of
 * quantize_config.json or quant_config.json, or hf_quant_config.json's "quantization" (ModelOpt,
 * whose method it implies), or NULL. */
static const cJSON *quant_object(size_t i, const cJSON *root, const char **implied)
{
    const cJSON *q = root;
    *implied = NULL;
    if (i == 0) q = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    if (i == 3) {
        q = cJSON_GetObjectItemCaseSensitive(root, "quantization");
        *implied = "modelopt";
    }
    return q && cJSON_IsNull(q) ? NULL : q;
}

mp_errcode mp_qconfig_load(qconfig *c, const char *dir, mp_err *err)
{
    memset(c, 0, sizeof *c);
    c->base = (qparams)QPARAMS_UNSET;
    c->base.group_size = 0;
    static const char *const files[] = {"config.json", "quantize_config.json", "quant_config.json",
                                        "hf_quant_config.json"};
    cJSON *root = NULL;
    const cJSON *q = NULL;
    const char *implied = NULL;
    mp_errcode rc = MP_OK;
    for (size_t i = 0; i < sizeof files / sizeof *files && !q; i++) {
        char *path = mp_path_join(dir, files[i]);
        if (!path) return mp_errf(err, MP_E_NOMEM, "out of memory");
        if (mp_exists(path)) {
            rc = mp_json_load_file(path, 16u << 20, "config", &root, err);
            if (rc != MP_OK) {
                free(path);
                return rc;
            }
            if (i == 0) note_torch_dtype(c, root);
            q = quant_object(i, root, &implied);
            if (q) snprintf(c->source, sizeof c->source, "%s", path);
            else {
                cJSON_Delete(root);
                root = NULL;
            }
        }
        free(path);
    }
    if (!q) return MP_OK;
    c->present = 1;
    if (!cJSON_IsObject(q)) {
        rc = BAD(err, c, "%s is not an object", "the quantization config");
        goto done;
    }
    rc = mp_qc_params(c, q, &c->base, err);
    if (rc != MP_OK) goto done;
    const char *method = mp_qc_str(q, "quant_method");
    if (!method) method = mp_qc_str(q, "method");
    if (!method) method = implied;
    if (!method) method = mp_qc_str(q, "version") ? "awq" : "gptq";
    const mp_scheme *e = mp_scheme_for_method(method);
    if (e) {
        c->method = e->method;
        rc = e->read_config(c, q, err);
    } else {
        char known[256];
        mp_scheme_methods(known, sizeof known);
        rc = mp_errf_at(err, MP_E_UNSUPPORTED, c->source, NULL, -1,
                        "quant_method '%.60s' is not supported (%s are)", method, known);
    }
done:
    cJSON_Delete(root);
    return rc;
}

mp_errcode mp_qc_skip_list(qconfig *c, const cJSON *q, const char *key, mp_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(q, key);
    if (!v || cJSON_IsNull(v)) return MP_OK;
    if (!cJSON_IsArray(v)) return BAD(err, c, "'%s' is not a list", key);
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!cJSON_IsString(e)) return BAD(err, c, "'%s' holds a non-string", key);
        qrule *r = mp_qc_add_rule(c, err);
        if (!r) return MP_E_NOMEM;
        r->skip = 1;
        r->substring = 1; /* transformers matches these names inside module names */
        MP_FORWARD(mp_qc_rule_pattern(c, r, e->valuestring, 0, err));
    }
    return MP_OK;
}

mp_errcode mp_qc_glob_rule(qconfig *c, const char *glob, mp_err *err)
{
    size_t n = strlen(glob);
    char *re = malloc(2 * n + 2);
    if (!re) return mp_errf(err, MP_E_NOMEM, "out of memory");
    char *o = re;
    for (const char *g = glob; *g; g++) {
        if (*g == '*') {
            *o++ = '.';
            *o++ = '*';
        } else if (*g == '?') {
            *o++ = '.';
        } else {
            if (strchr(".^$+()[]{}|\\", *g)) *o++ = '\\';
            *o++ = *g;
        }
    }
    *o++ = '$';
    *o = '\0';
    qrule *r = mp_qc_add_rule(c, err);
    mp_errcode rc = r ? MP_OK : MP_E_NOMEM;
    if (r) {
        r->skip = 1;
        rc = mp_qc_rule_pattern(c, r, re, 1, err);
    }
    free(re);
    return rc;
}

mp_errcode mp_qc_glob_list(qconfig *c, const cJSON *q, const char *key, mp_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(q, key);
    if (!v || cJSON_IsNull(v)) return MP_OK;
    if (!cJSON_IsArray(v)) return MP_BAD_CONFIG(err, c, "'%s' is not a list", key);
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!cJSON_IsString(e)) return MP_BAD_CONFIG(err, c, "'%s' holds a non-string", key);
        MP_FORWARD(mp_qc_glob_rule(c, e->valuestring, err));
    }
    return MP_OK;
}

static int rule_matches(const qrule *r, const char *module)
{
    if (r->any_linear) return 1;
    if (r->substring) return strstr(module, r->key) != NULL;
    if (r->is_regex) return regexec(&r->re, module, 0, NULL, 0) == 0;
    return strcmp(r->key, module) == 0;
}

int mp_qconfig_resolve(const qconfig *c, const char *module, qparams *out)
{
    *out = c->base;
    for (size_t i = 0; i < c->n_rules; i++) {
        const qrule *r = &c->rules[i];
        if (!rule_matches(r, module)) continue;
        if (r->skip) return 0;
        if (r->p.bits >= 0) out->bits = r->p.bits;
        if (r->p.group_size != 0) out->group_size = r->p.group_size;
        if (r->p.sym >= 0) out->sym = r->p.sym;
        if (r->p.desc_act >= 0) out->desc_act = r->p.desc_act;
        if (r->p.fscale >= 0) {
            out->fscale = r->p.fscale;
            out->block_n = r->p.block_n;
            out->block_k = r->p.block_k;
        }
        return 1;
    }
    return !c->require_rule;
}

void mp_qconfig_release(qconfig *c)
{
    for (size_t i = 0; i < c->n_rules; i++) {
        if (c->rules[i].is_regex) regfree(&c->rules[i].re);
        free(c->rules[i].key);
    }
    free(c->rules);
    memset(c, 0, sizeof *c);
}
