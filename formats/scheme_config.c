/*
 * scheme_config.c - what a checkpoint's quantization config says, per linear.
 *
 * The four config dialects (doc/formats/gptq.md §5, awq.md §4, autoround.md §2,
 * compressed-tensors.md §3, and doc/formats/README.md §4) become one
 * base parameter set plus an ordered list of rules; the first rule whose pattern matches a
 * module decides whether it is quantized and with which bits, group size and symmetry:
 *   GPTQ        `dynamic`: "+:re" (or bare "re") overrides, "-:re" leaves the module dense;
 *   AutoRound   `extra_config`: exact names, then patterns; bits >= 16 means dense;
 *   AWQ         `modules_to_not_convert`: substrings left dense;
 *   CT          `ignore` (names or "re:" patterns), then `config_groups` by `targets`.
 * Patterns follow Python's re.match: anchored at the start only.
 */
#define _GNU_SOURCE
#include "scheme_internal.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const method_names[MP_QM_COUNT] = {
    [MP_QM_GPTQ] = "gptq",
    [MP_QM_AWQ] = "awq",
    [MP_QM_AUTOROUND] = "auto-round",
    [MP_QM_CT] = "compressed-tensors",
    [MP_QM_MODELPREP] = "modelprep",
};

const char *mp_qmethod_name(mp_qmethod m)
{
    return (unsigned)m < MP_QM_COUNT ? method_names[m] : "?";
}

#define BAD(err, c, ...) mp_errf_at((err), MP_E_INPUT, (c)->source, NULL, -1, __VA_ARGS__)

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

static qrule *add_rule(qconfig *c, mp_err *err)
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

static mp_errcode rule_pattern(qconfig *c, qrule *r, const char *key, int is_regex, mp_err *err)
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

static const char *get_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* bits / w_bit / num_bits, group_size / q_group_size, sym / zero_point / symmetric, desc_act. */
static mp_errcode read_params(const qconfig *c, const cJSON *o, qparams *p, mp_err *err)
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

/* ------------------------------------------------------------ dialects */

static mp_errcode load_gptq(qconfig *c, const cJSON *q, mp_err *err)
{
    const char *fmt = get_str(q, "checkpoint_format");
    if (!fmt) fmt = get_str(q, "format");
    if (!fmt) fmt = "gptq";
    snprintf(c->format, sizeof c->format, "%s", fmt);
    if (strcmp(fmt, "gptq") == 0) c->zero_offset = 1;
    else if (strcmp(fmt, "gptq_v2") == 0) c->zero_offset = 0;
    else
        return mp_errf_at(err, MP_E_UNSUPPORTED, c->source, NULL, -1,
                          "GPTQ checkpoint_format '%.40s' is not supported (gptq and gptq_v2 are)",
                          fmt);
    const char *pack_dtype = get_str(q, "pack_dtype");
    if (pack_dtype && strcmp(pack_dtype, "int32") != 0)
        return mp_errf_at(err, MP_E_UNSUPPORTED, c->source, NULL, -1,
                          "pack_dtype '%.20s' is not supported (int32 is)", pack_dtype);
    if (c->base.group_size == 0) c->base.group_size = 128;
    if (c->base.sym < 0) c->base.sym = 1; /* the loaders' default, §2.6 */
    c->pack = MP_QPACK_GPTQ;
    const cJSON *dyn = cJSON_GetObjectItemCaseSensitive(q, "dynamic");
    if (dyn && !cJSON_IsNull(dyn)) {
        if (!cJSON_IsObject(dyn)) return BAD(err, c, "'%s' is not an object", "dynamic");
        for (const cJSON *e = dyn->child; e; e = e->next) {
            qrule *r = add_rule(c, err);
            if (!r) return MP_E_NOMEM;
            const char *key = e->string;
            if (strncmp(key, "-:", 2) == 0) {
                r->skip = 1;
                key += 2;
            } else if (strncmp(key, "+:", 2) == 0) {
                key += 2;
            }
            MP_FORWARD(rule_pattern(c, r, key, 1, err));
            if (!r->skip) {
                if (!cJSON_IsObject(e)) return BAD(err, c, "dynamic entry '%.200s' is not an object", key);
                MP_FORWARD(read_params(c, e, &r->p, err));
            }
        }
    }
    return MP_OK;
}

static mp_errcode load_awq(qconfig *c, const cJSON *q, mp_err *err)
{
    const char *ver = get_str(q, "version");
    if (!ver) ver = "gemm";
    snprintf(c->format, sizeof c->format, "%s", ver);
    for (char *p = c->format; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    if (strcmp(c->format, "gemm") == 0) c->pack = MP_QPACK_AWQ_GEMM;
    else if (strcmp(c->format, "gemv") == 0) c->pack = MP_QPACK_AWQ_GEMV;
    else
        return mp_errf_at(err, MP_E_UNSUPPORTED, c->source, NULL, -1,
                          "AWQ version '%.40s' is not supported (gemm and gemv are)", ver);
    if (c->base.sym < 0) c->base.sym = 0; /* zero_point defaults to true */
    if (c->base.group_size == 0) c->base.group_size = 128;
    const cJSON *skip = cJSON_GetObjectItemCaseSensitive(q, "modules_to_not_convert");
    if (skip && !cJSON_IsNull(skip)) {
        if (!cJSON_IsArray(skip)) return BAD(err, c, "'%s' is not a list", "modules_to_not_convert");
        for (const cJSON *e = skip->child; e; e = e->next) {
            if (!cJSON_IsString(e)) return BAD(err, c, "'%s' holds a non-string", "modules_to_not_convert");
            qrule *r = add_rule(c, err);
            if (!r) return MP_E_NOMEM;
            r->skip = 1;
            r->substring = 1;
            MP_FORWARD(rule_pattern(c, r, e->valuestring, 0, err));
        }
    }
    return MP_OK;
}

static int has_regex_chars(const char *s) { return strpbrk(s, "*+?[](){}|^$\\") != NULL; }

static mp_errcode load_autoround(qconfig *c, const cJSON *q, mp_err *err)
{
    const char *pf = get_str(q, "packing_format");
    const char *dt = get_str(q, "data_type");
    if (dt && strcmp(dt, "int") != 0)
        return mp_errf_at(err, MP_E_UNSUPPORTED, c->source, NULL, -1,
                          "AutoRound data_type '%.40s' is not supported (int is)", dt);
    if (!pf || strcmp(pf, "auto") == 0 || strcmp(pf, "auto_round:gptq") == 0) pf = "auto_round:auto_gptq";
    if (strcmp(pf, "auto_round:awq") == 0) pf = "auto_round:auto_awq";
    snprintf(c->format, sizeof c->format, "%s", pf);
    if (strcmp(pf, "auto_round:auto_gptq") == 0) {
        c->pack = MP_QPACK_GPTQ;
        c->zero_offset = 1;
    } else if (strcmp(pf, "auto_round") == 0 || strcmp(pf, "auto_round:gptqmodel") == 0) {
        c->pack = MP_QPACK_GPTQ;
        c->zero_offset = 0;
    } else if (strcmp(pf, "auto_round:auto_awq") == 0) {
        c->pack = MP_QPACK_AWQ_GEMM;
    } else {
        return mp_errf_at(err, MP_E_UNSUPPORTED, c->source, NULL, -1,
                          "AutoRound packing_format '%.60s' is not supported", pf);
    }
    if (c->base.sym < 0) c->base.sym = 1;
    if (c->base.group_size == 0) c->base.group_size = 128;
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(q, "extra_config");
    if (!extra || cJSON_IsNull(extra)) return MP_OK;
    if (!cJSON_IsObject(extra)) return BAD(err, c, "'%s' is not an object", "extra_config");
    /* Exact names first, patterns after: a name must not lose to a broader pattern. */
    for (int pass = 0; pass < 2; pass++) {
        for (const cJSON *e = extra->child; e; e = e->next) {
            int is_re = has_regex_chars(e->string);
            if (is_re != pass) continue;
            if (!cJSON_IsObject(e)) return BAD(err, c, "extra_config entry '%.200s' is not an object", e->string);
            qrule *r = add_rule(c, err);
            if (!r) return MP_E_NOMEM;
            MP_FORWARD(rule_pattern(c, r, e->string, is_re, err));
            MP_FORWARD(read_params(c, e, &r->p, err));
            const char *edt = get_str(e, "data_type");
            if (r->p.bits >= 16 || (edt && strcmp(edt, "int") != 0 && r->p.bits < 0)) r->skip = 1;
        }
    }
    return MP_OK;
}

static mp_errcode load_ct(qconfig *c, const cJSON *q, mp_err *err)
{
    const char *gfmt = get_str(q, "format");
    snprintf(c->format, sizeof c->format, "%s", gfmt ? gfmt : "pack-quantized");
    c->pack = MP_QPACK_CT;
    const cJSON *ign = cJSON_GetObjectItemCaseSensitive(q, "ignore");
    if (ign && !cJSON_IsNull(ign)) {
        if (!cJSON_IsArray(ign)) return BAD(err, c, "'%s' is not a list", "ignore");
        for (const cJSON *e = ign->child; e; e = e->next) {
            if (!cJSON_IsString(e)) return BAD(err, c, "'%s' holds a non-string", "ignore");
            qrule *r = add_rule(c, err);
            if (!r) return MP_E_NOMEM;
            r->skip = 1;
            int is_re = strncmp(e->valuestring, "re:", 3) == 0;
            MP_FORWARD(rule_pattern(c, r, e->valuestring + (is_re ? 3 : 0), is_re, err));
        }
    }
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(q, "config_groups");
    if (!cJSON_IsObject(groups) || !groups->child)
        return BAD(err, c, "'%s' is missing or empty", "config_groups");
    for (const cJSON *g = groups->child; g; g = g->next) {
        if (!cJSON_IsObject(g)) return BAD(err, c, "config group '%.100s' is not an object", g->string);
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(g, "weights");
        if (!cJSON_IsObject(w)) return BAD(err, c, "config group '%.100s' has no 'weights'", g->string);
        const char *type = get_str(w, "type");
        if (type && strcmp(type, "int") != 0)
            return mp_errf_at(err, MP_E_UNSUPPORTED, c->source, NULL, -1,
                              "config group '%.100s': weight type '%.20s' is not supported (int is)",
                              g->string, type);
        const char *fmt = get_str(g, "format");
        if (!fmt) fmt = c->format;
        if (strcmp(fmt, "pack-quantized") != 0)
            return mp_errf_at(err, MP_E_UNSUPPORTED, c->source, NULL, -1,
                              "config group '%.100s': format '%.40s' is not supported "
                              "(pack-quantized is)", g->string, fmt);
        qparams p = QPARAMS_UNSET;
        MP_FORWARD(read_params(c, w, &p, err));
        const char *strategy = get_str(w, "strategy");
        if (!strategy) strategy = p.group_size > 0 ? "group" : "channel";
        if (strcmp(strategy, "channel") == 0) p.group_size = -1;
        else if (strcmp(strategy, "group") != 0 || p.group_size <= 0)
            return mp_errf_at(err, MP_E_UNSUPPORTED, c->source, NULL, -1,
                              "config group '%.100s': strategy '%.20s' is not supported (group "
                              "with a group_size, or channel)", g->string, strategy);
        if (p.sym < 0) p.sym = 1;
        const cJSON *targets = cJSON_GetObjectItemCaseSensitive(g, "targets");
        if (!cJSON_IsArray(targets) || !targets->child)
            return BAD(err, c, "config group '%.100s' has no targets", g->string);
        for (const cJSON *t = targets->child; t; t = t->next) {
            if (!cJSON_IsString(t)) return BAD(err, c, "config group '%.100s' has a non-string target", g->string);
            qrule *r = add_rule(c, err);
            if (!r) return MP_E_NOMEM;
            r->p = p;
            const char *tv = t->valuestring;
            if (strncmp(tv, "re:", 3) == 0) {
                MP_FORWARD(rule_pattern(c, r, tv + 3, 1, err));
            } else {
                /* A bare word is a module class ("Linear"); a dotted name is a module. */
                MP_FORWARD(rule_pattern(c, r, tv, 0, err));
                r->any_linear = strchr(tv, '.') == NULL;
            }
        }
    }
    c->require_rule = 1; /* a linear no group targets is dense */
    return MP_OK;
}

/* modelprep's device layouts, written by `convert --to cutlass-int4|onednn-int4`, so that every
 * layout modelprep writes can be read back as a source (doc/reference.md §3.1). */
static mp_errcode load_modelprep(qconfig *c, const cJSON *q, mp_err *err)
{
    const char *fmt = get_str(q, "format");
    if (!fmt) return BAD(err, c, "'%s' is missing", "format");
    snprintf(c->format, sizeof c->format, "%s", fmt);
    if (strcmp(fmt, "cutlass-int4") == 0) {
        c->pack = MP_QPACK_CUTLASS;
        const char *int4 = get_str(q, "int4");
        if (int4 && strcmp(int4, "s4") == 0) c->code_xor = 8;
        else if (int4 && strcmp(int4, "u4") != 0)
            return BAD(err, c, "'int4' is '%.20s', expected u4 or s4", int4);
    } else if (strcmp(fmt, "onednn-int4") == 0) {
        c->pack = MP_QPACK_ONEDNN;
    } else {
        return mp_errf_at(err, MP_E_UNSUPPORTED, c->source, NULL, -1,
                          "modelprep format '%.40s' is not known", fmt);
    }
    if (c->base.sym < 0) c->base.sym = 1;
    if (c->base.group_size == 0) return BAD(err, c, "'%s' is missing", "group_size");
    return MP_OK;
}

mp_errcode mp_qconfig_load(qconfig *c, const char *dir, mp_err *err)
{
    memset(c, 0, sizeof *c);
    c->base = (qparams)QPARAMS_UNSET;
    c->base.group_size = 0;
    static const char *const files[] = {"config.json", "quantize_config.json", "quant_config.json"};
    cJSON *root = NULL;
    const cJSON *q = NULL;
    mp_errcode rc = MP_OK;
    for (size_t i = 0; i < 3 && !q; i++) {
        char *path = mp_path_join(dir, files[i]);
        if (!path) return mp_errf(err, MP_E_NOMEM, "out of memory");
        if (mp_exists(path)) {
            rc = mp_json_load_file(path, 16u << 20, "config", &root, err);
            if (rc != MP_OK) {
                free(path);
                return rc;
            }
            q = i == 0 ? cJSON_GetObjectItemCaseSensitive(root, "quantization_config") : root;
            if (q && cJSON_IsNull(q)) q = NULL;
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
    rc = read_params(c, q, &c->base, err);
    if (rc != MP_OK) goto done;
    const char *method = get_str(q, "quant_method");
    if (!method) method = get_str(q, "method");
    if (!method) method = get_str(q, "version") ? "awq" : "gptq";
    if (strcmp(method, "gptq") == 0) {
        c->method = MP_QM_GPTQ;
        rc = load_gptq(c, q, err);
    } else if (strcmp(method, "awq") == 0) {
        c->method = MP_QM_AWQ;
        rc = load_awq(c, q, err);
    } else if (strcmp(method, "auto-round") == 0 || strcmp(method, "intel/auto-round") == 0) {
        c->method = MP_QM_AUTOROUND;
        rc = load_autoround(c, q, err);
    } else if (strcmp(method, "compressed-tensors") == 0) {
        c->method = MP_QM_CT;
        rc = load_ct(c, q, err);
    } else if (strcmp(method, "modelprep") == 0) {
        c->method = MP_QM_MODELPREP;
        rc = load_modelprep(c, q, err);
    } else {
        rc = mp_errf_at(err, MP_E_UNSUPPORTED, c->source, NULL, -1,
                        "quant_method '%.60s' is not supported (gptq, awq, auto-round, "
                        "compressed-tensors are)", method);
    }
done:
    cJSON_Delete(root);
    return rc;
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
