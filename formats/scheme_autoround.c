/*
 * scheme_autoround.c - AutoRound (quant_method "auto-round" / "intel/auto-round").
 *
 * A recognition entry, not a layout: AutoRound writes its codes in GPTQ v1 ("auto_round:auto_gptq",
 * the default), GPTQ v2 ("auto_round", "auto_round:gptqmodel") or AWQ GEMM
 * ("auto_round:auto_awq") layout, chosen by `packing_format`. Its files often have no g_idx, so a
 * scheme is never guessed from whether g_idx exists. The dialect: `extra_config` by exact module
 * name first, then by pattern; bits >= 16 (or a non-int data_type) leaves a module dense.
 * Facts: doc/formats/autoround.md.
 */
#include "scheme_internal.h"

#include <stdio.h>
#include <string.h>

static int has_regex_chars(const char *s) { return strpbrk(s, "*+?[](){}|^$\\") != NULL; }

static mp_errcode read_autoround(qconfig *c, const cJSON *q, mp_err *err)
{
    const char *pf = mp_qc_str(q, "packing_format");
    const char *dt = mp_qc_str(q, "data_type");
    if (dt && strcmp(dt, "int") != 0)
        return MP_UNSUPPORTED_CONFIG(err, c,
                                     "AutoRound data_type '%.40s' is not supported (int is)", dt);
    if (!pf || strcmp(pf, "auto") == 0 || strcmp(pf, "auto_round:gptq") == 0) pf = "auto_round:auto_gptq";
    if (strcmp(pf, "auto_round:awq") == 0) pf = "auto_round:auto_awq";
    snprintf(c->format, sizeof c->format, "%s", pf);
    if (strcmp(pf, "auto_round:auto_gptq") == 0) {
        c->layout = mp_scheme_find("gptq");
    } else if (strcmp(pf, "auto_round") == 0 || strcmp(pf, "auto_round:gptqmodel") == 0) {
        c->layout = mp_scheme_find("gptq-v2");
    } else if (strcmp(pf, "auto_round:auto_awq") == 0) {
        c->layout = mp_scheme_find("awq");
    } else {
        return MP_UNSUPPORTED_CONFIG(err, c,
                                     "AutoRound packing_format '%.60s' is not supported", pf);
    }
    if (c->base.sym < 0) c->base.sym = 1;
    if (c->base.group_size == 0) c->base.group_size = 128;
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(q, "extra_config");
    if (!extra || cJSON_IsNull(extra)) return MP_OK;
    if (!cJSON_IsObject(extra)) return MP_BAD_CONFIG(err, c, "'%s' is not an object", "extra_config");
    /* Exact names first, patterns after: a name must not lose to a broader pattern. */
    for (int pass = 0; pass < 2; pass++) {
        for (const cJSON *e = extra->child; e; e = e->next) {
            int is_re = has_regex_chars(e->string);
            if (is_re != pass) continue;
            if (!cJSON_IsObject(e)) return MP_BAD_CONFIG(err, c, "extra_config entry '%.200s' is not an object", e->string);
            qrule *r = mp_qc_add_rule(c, err);
            if (!r) return MP_E_NOMEM;
            MP_FORWARD(mp_qc_rule_pattern(c, r, e->string, is_re, err));
            MP_FORWARD(mp_qc_params(c, e, &r->p, err));
            const char *edt = mp_qc_str(e, "data_type");
            if (r->p.bits >= 16 || (edt && strcmp(edt, "int") != 0 && r->p.bits < 0)) r->skip = 1;
        }
    }
    return MP_OK;
}

static const char *const methods[] = {"auto-round", "intel/auto-round", NULL};

const mp_scheme mp_scheme_autoround = {
    .name = "auto-round",
    .summary = "AutoRound: GPTQ v1, GPTQ v2 or AWQ GEMM layout by packing_format (read only)",
    .roles = MP_SCHEME_SOURCE,
    .methods = methods,
    .method = MP_QM_AUTOROUND,
    .read_config = read_autoround,
    .pack = MP_QPACK_COUNT, /* not a layout: its linears take the layout it names */
};
