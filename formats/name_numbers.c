/*
 * name_numbers.c - the numbers in tensor names (layers, experts), checked once for every reader
 * of a safetensors checkpoint (doc/limits.md, "Numbers in names"; issue 14, class 6). A number
 * that two spellings could write ("07", "+7"), that wraps ("18446744073709551617") or that lies
 * beyond config.json's counts would otherwise land in another layer's slot or outside a table.
 */
#include "formats_internal.h"

#include <string.h>

/* Where a numbered component may follow, and what it numbers. */
static const struct {
    const char *word;   /* the component before the number */
    int expert;         /* 1: an expert; 0: a layer */
} markers[] = {
    {"layers", 0},
    {"h", 0},
    {"blk", 0},
    {"experts", 1},
};

/* The decoder stack, whose layers config.json counts. */
static const char *const stacks[] = {"model.layers.", "model.language_model.layers.", "transformer.h.", "layers."};

static int starts_number(char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == ' ' || c == '\t';
}

static mp_errcode check_one(const mp_st_model *m, const mp_tensor *t, const mp_hf_config *cfg, mp_err *err)
{
    const char *path = mp_st_file(m, t->file)->path;
    uint64_t layers = cfg->num_hidden_layers > 0
                          ? (uint64_t)cfg->num_hidden_layers +
                                (uint64_t)(cfg->num_nextn_predict_layers > 0 ? cfg->num_nextn_predict_layers : 0)
                          : 0;
    for (const char *c = t->name; c; c = strchr(c, '.'), c = c ? c + 1 : NULL) {
        for (size_t k = 0; k < sizeof markers / sizeof *markers; k++) {
            size_t wl = strlen(markers[k].word);
            if (strncmp(c, markers[k].word, wl) != 0 || c[wl] != '.' || !starts_number(c[wl + 1])) continue;
            const char *num = c + wl + 1;
            const char *kind = markers[k].expert ? "expert" : "layer";
            uint64_t v;
            const char *why = NULL;
            size_t nd = mp_parse_name_index(num, markers[k].expert ? UINT32_MAX : INT32_MAX, &v, &why);
            if (nd && num[nd] != '.' && num[nd] != '\0') nd = 0, why = "is not a decimal number";
            if (!nd)
                return mp_errf_at(err, MP_E_INPUT, path, t->name, -1, "the %s number after '%.*s' %s", kind,
                                  (int)(num - t->name), t->name, why);
            if (markers[k].expert && cfg->num_experts > 0 && v >= (uint64_t)cfg->num_experts)
                return mp_errf_at(err, MP_E_INPUT, path, t->name, -1, "expert %llu is beyond the %lld experts of "
                                  "config.json", (unsigned long long)v, (long long)cfg->num_experts);
            for (size_t s = 0; s < sizeof stacks / sizeof *stacks && !markers[k].expert && layers; s++)
                if ((size_t)(num - t->name) == strlen(stacks[s]) && strncmp(t->name, stacks[s], strlen(stacks[s])) == 0 &&
                    v >= layers)
                    return mp_errf_at(err, MP_E_INPUT, path, t->name, -1, "layer %llu is beyond the %llu layers of "
                                      "config.json", (unsigned long long)v, (unsigned long long)layers);
        }
    }
    return MP_OK;
}

mp_errcode mp_st_check_name_numbers(const mp_st_model *m, const mp_hf_config *cfg, mp_err *err)
{
    for (size_t i = 0; i < mp_st_n_tensors(m); i++) MP_FORWARD(check_one(m, mp_st_tensor(m, i), cfg, err));
    return MP_OK;
}
