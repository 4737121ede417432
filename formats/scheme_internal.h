/*
 * scheme_internal.h - the quantization config as rules; shared by scheme_config.c and
 * scheme_linear.c only.
 */
#ifndef MP_SCHEME_INTERNAL_H
#define MP_SCHEME_INTERNAL_H

#include "formats_internal.h"

#include <regex.h>

typedef struct qparams {
    int bits;            /* -1 unset */
    int64_t group_size;  /* 0 unset, -1 per-channel */
    int sym;             /* -1 unset */
    int desc_act;        /* -1 unset */
} qparams;

#define QPARAMS_UNSET {-1, 0, -1, -1}

typedef struct qrule {
    char *key;           /* module name, substring or pattern source */
    int is_regex;
    int substring;       /* AWQ modules_to_not_convert */
    int any_linear;      /* compressed-tensors class target such as "Linear" */
    regex_t re;
    int skip;            /* the module stays dense */
    qparams p;           /* overrides; unset fields keep the base */
} qrule;

typedef struct qconfig {
    int present;
    char source[MP_ERR_FILE_MAX];   /* the file the config came from */
    mp_qmethod method;
    char format[48];
    mp_qpack pack;
    uint32_t zero_offset;
    uint32_t code_xor;
    qparams base;
    qrule *rules;
    size_t n_rules;
    int require_rule;    /* compressed-tensors: only targeted modules are quantized */
} qconfig;

mp_errcode mp_qconfig_load(qconfig *c, const char *dir, mp_err *err);
/* Parameters for `module`; returns 0 when the config leaves it unquantized. */
int mp_qconfig_resolve(const qconfig *c, const char *module, qparams *out);
void mp_qconfig_release(qconfig *c);

#endif
