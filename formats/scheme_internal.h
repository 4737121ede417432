/*
 * scheme_internal.h - what the scheme registry's entries share: the quantization config as
 * rules (scheme_config.c), the helpers their config readers and shape checks use
 * (scheme_config.c, scheme_linear.c), and the entries themselves (formats/scheme_*.c, listed
 * in registry.c). Not part of the public API.
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
    int fscale;          /* float layouts: mp_fscale, -1 unset */
    int64_t block_n, block_k; /* float layouts: rows x columns one scale covers; 0 unset */
} qparams;

#define QPARAMS_UNSET {-1, 0, -1, -1, -1, 0, 0}

typedef struct qrule {
    char *key;           /* module name, substring or pattern source */
    int is_regex;
    int substring;       /* AWQ modules_to_not_convert */
    int any_linear;      /* compressed-tensors class target such as "Linear" */
    regex_t re;
    int skip;            /* the module stays dense */
    qparams p;           /* overrides; unset fields keep the base */
} qrule;

typedef struct mp_qconfig {
    int present;
    char source[MP_ERR_FILE_MAX];   /* the file the config came from */
    mp_qmethod method;
    char format[48];
    const mp_scheme *layout;        /* the layout entry the dialect reader picked */
    uint32_t code_xor;
    qparams base;
    qrule *rules;
    size_t n_rules;
    int require_rule;    /* compressed-tensors: only targeted modules are quantized */
    char torch_dtype[16]; /* config.json's, for readers whose producer rounds to it */
    char expert_dtype[16]; /* config.json's top-level expert_dtype (DeepSeek-V4), or "" */
} qconfig;

mp_errcode mp_qconfig_load(qconfig *c, const char *dir, mp_err *err);
/* Parameters for `module`; returns 0 when the config leaves it unquantized. */
int mp_qconfig_resolve(const qconfig *c, const char *module, qparams *out);
void mp_qconfig_release(qconfig *c);

/* ---- for the config readers of the entries (scheme_config.c) */

#define MP_BAD_CONFIG(err, c, ...) mp_errf_at((err), MP_E_INPUT, (c)->source, NULL, -1, __VA_ARGS__)
#define MP_UNSUPPORTED_CONFIG(err, c, ...) \
    mp_errf_at((err), MP_E_UNSUPPORTED, (c)->source, NULL, -1, __VA_ARGS__)

/* A string field, or NULL when absent or not a string. */
const char *mp_qc_str(const cJSON *o, const char *key);
/* bits / w_bit / num_bits, group_size / q_group_size, sym / zero_point / symmetric, desc_act. */
mp_errcode mp_qc_params(const qconfig *c, const cJSON *o, qparams *p, mp_err *err);
/* A new rule at the end of the list, its parameters unset; NULL (err set) when out of memory. */
qrule *mp_qc_add_rule(qconfig *c, mp_err *err);
/* The rule matches `key`: exactly, or as a Python regex (re.match) when is_regex. */
mp_errcode mp_qc_rule_pattern(qconfig *c, qrule *r, const char *key, int is_regex, mp_err *err);

/* A list of module names under `key` (absent or null: none) becomes skip rules matching them
 * inside module names, as transformers' modules_to_not_convert does. */
mp_errcode mp_qc_skip_list(qconfig *c, const cJSON *q, const char *key, mp_err *err);
/* Python fnmatch-style module globs ("model.layers.*.mlp", ModelOpt's exclude_modules) become
 * skip rules: '*' any run of characters, the whole name matched. */
mp_errcode mp_qc_glob_rule(qconfig *c, const char *glob, mp_err *err);
/* The same for each string of the list q[key] (absent or null: none). */
mp_errcode mp_qc_glob_list(qconfig *c, const cJSON *q, const char *key, mp_err *err);
/* A compressed-tensors config group whose weights are floats (scheme_ct_float.c): checks
 * num_bits, format and strategy and fills p; picks the ct-float layout. */
mp_errcode mp_ct_float_group(qconfig *c, const cJSON *g, const cJSON *w, const char *fmt, qparams *p,
                             mp_err *err);

/* DeepSeek-V4 (scheme_dsv4.c): the fp8 reader hands over a config that states expert_dtype
 * (`experts`), after it has read the block size; picks the V4 layout or refuses the value. */
mp_errcode mp_dsv4_read_config(qconfig *c, const cJSON *q, const char *experts, mp_err *err);

/* ---- the FP4 layouts' shared pieces (fp4_linear.c; doc/formats/fp4.md) */

/* The entry of `method` whose format_name is `name` (CT's "nvfp4-pack-quantized", ModelOpt's
 * "NVFP4"), or NULL (registry.c). */
const mp_scheme *mp_scheme_for_format(mp_qmethod method, const char *name);
/* An FP4 layout picked by a config: 4-bit float codes, one scale per fp4_group elements of a
 * row; a group size the config gives must be the entry's. `where` names the config group in
 * refusals ("" at the top level). */
mp_errcode mp_qc_fp4_params(qconfig *c, const mp_scheme *L, int64_t group_size, const char *where,
                            qparams *p, mp_err *err);
/* The two integers of a compressed-tensors linear's `weight_shape` (I64 or I32 [2], each in
 * [1, 2^40]); its absence or any other form is a refusal (scheme_ct.c). */
mp_errcode mp_ct_weight_shape(const mp_st_model *m, const mp_qlinear *q, uint64_t nk[2], mp_err *err);
/* An FP4 linear's optional `weight_shape` (compressed-tensors): absent, or [N, K] as the codes say. */
mp_errcode mp_qc_fp4_weight_shape(const mp_st_model *m, const mp_qlinear *q, mp_err *err);
/* A compressed-tensors config group in an FP4 format (nvfp4-/mxfp4-pack-quantized). */
mp_errcode mp_ct_fp4_group(qconfig *c, const cJSON *g, const cJSON *w, const mp_scheme *L,
                           qparams *p, mp_err *err);
/* The codes: U8 [N, K/2], or stacked experts U8 [E, N, K/g, g/2] for a dense_experts_kn layout;
 * fills N (E * N when stacked), K, the experts, the group grid [N, K/g] and elem_dtype F4. */
mp_errcode mp_qc_fp4_codes(mp_qlinear *q, int64_t group_size, mp_err *err);
/* The block scales: of a dtype `ok` accepts (named in `dtypes`), shaped as the codes with K
 * counted in groups ([N, K/g], or [E, N, K/g] stacked). */
mp_errcode mp_qc_fp4_scales(const mp_qlinear *q, int (*ok)(const mp_tensor *), const char *dtypes,
                            mp_err *err);
/* The per-tensor scale: F32 [1] (or [] too when `scalar_ok`). */
mp_errcode mp_qc_fp4_global(const mp_qlinear *q, int scalar_ok, mp_err *err);

/* ---- for the shape checks of the entries (scheme_linear.c) */

#define MP_REFUSE_LINEAR(q, ...) mp_errf_at(err, MP_E_INPUT, NULL, (q)->prefix, -1, __VA_ARGS__)

int mp_t_is_int32(const mp_tensor *t);
int mp_t_is_byte(const mp_tensor *t);
int mp_t_is_float(const mp_tensor *t);
int mp_t_is_float8(const mp_tensor *t);   /* F8_E4M3 or F8_E5M2 */
/* A float linear's scale tensor against its grid [scale_rows, scale_cols] (set by the caller):
 * accepts the grid's shape, or [], [1] for one scale and [N] for a channel grid. */
/* A float linear's codes: a 2-D F8_E4M3 or F8_E5M2 [N, K]; fills N, K, elem_dtype, and the
 * block and grid of q->scale_kind (tensor, channel, group of group_size, block of block_n x
 * block_k as the config set them). */
mp_errcode mp_qc_float_codes(mp_qlinear *q, int64_t group_size, mp_err *err);
mp_errcode mp_qc_check_scale_grid(const mp_qlinear *q, const mp_tensor *s, const char *part, mp_err *err);
/* The same for the shape alone, for a layout that checks the scale's dtype itself. */
mp_errcode mp_qc_check_scale_shape(const mp_qlinear *q, const mp_tensor *s, const char *part, mp_err *err);
/* A 2-D tensor of the dtypes `ok` accepts, or a refusal naming the part. */
mp_errcode mp_qc_want_2d(const mp_qlinear *q, const mp_tensor *t, const char *part,
                         int (*ok)(const mp_tensor *), const char *dtypes, mp_err *err);
/* The codes (2-D, of the dtypes `ok` accepts, named in `dtypes`) and the scales (2-D float)
 * under the layout's tensor names. */
mp_errcode mp_qc_want_codes_scales(const mp_qlinear *q, int (*ok)(const mp_tensor *),
                                   const char *dtypes, mp_err *err);
/* t is [rows, cols], or a refusal "<part> is [a, b], expected [rows, cols]". */
mp_errcode mp_qc_want_dims(const mp_qlinear *q, const mp_tensor *t, const char *part, uint64_t rows,
                           uint64_t cols, mp_err *err);
/* Zero points a layout may leave out: absent, a symmetric linear's are implied (q->zero set,
 * *implied = 1) and an asymmetric one is refused; present, they must be a 2-D int32 tensor. */
mp_errcode mp_qc_optional_zeros(mp_qlinear *q, int *implied, mp_err *err);
/* Group size and count for K (group_size -1: per channel); the group size must divide K. */
mp_errcode mp_qc_derive_groups(mp_qlinear *q, int64_t group_size, mp_err *err);
static inline uint64_t mp_ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* The tensor names AutoGPTQ introduced, which GPTQ, AWQ and modelprep's layouts share. A layout
 * that cannot store zero points or g_idx still names them, so that a source carrying them is
 * refused by its shape check instead of leaving orphans. */
#define MP_QWEIGHT_NAMES \
    .codes_name = "qweight", .zeros_name = "qzeros", .scales_name = "scales", .g_idx_name = "g_idx"
#define MP_4BIT_ONLY .bits_mask = 1u << 4, .bits_text = "4 bits only"
/* What every FP4 layout entry holds alike (doc/adding-a-format.md "FP4 formats"): E2M1 codes two
 * a byte along K, no zero points, scales [N, K/g], products rounded once, in f32. */
#define MP_FP4_LAYOUT                                                                              \
    .roles = MP_SCHEME_SOURCE, .pack = MP_QPACK_FP4,                                               \
    .codes = {.container_bytes = 1, .along_rows = 1, .string_is_n = 1}, .zenc = MP_ZENC_IMPLIED,   \
    .scales_nk = 1, .bits_mask = 1u << 4, .bits_text = "4-bit floats (E2M1)",                     \
    .elem = MP_ELEM_FP4, .is_codes = mp_t_is_byte, .fround = MP_FROUND_F32

/* The fields every one-byte-float (FP8) entry shares: codes F8_E4M3/F8_E5M2 [N, K] row-major,
 * scales [N-ish, K-ish] beside them, no zero points. */
#define MP_FP8_LAYOUT                                                                              \
    .pack = MP_QPACK_FLOAT8, .codes = {.container_bytes = 1, .along_rows = 1, .string_is_n = 1},    \
    .zenc = MP_ZENC_IMPLIED, .scales_nk = 1, .bits_mask = 1u << 8, .bits_text = "8-bit floats",    \
    .elem = MP_ELEM_FLOAT8, .is_codes = mp_t_is_float8, .input_scale_name = "input_scale"

/* ---- the entries: one file each, formats/scheme_<name>.c, each defining one or two
 * `const mp_scheme mp_scheme_<name>` that registry.c lists. A config reader that picks another
 * entry's layout finds it by name (mp_scheme_find). */

/* The first quant_method of each announced entry, ", "-separated (registry.c). */
void mp_scheme_methods(char *buf, size_t cap);
/* The quantization_config writers' shared pieces (registry.c). */
void mp_scheme_json_dense(mp_buf *b, const mp_qmodel *qm);            /* ["lm_head", ...] */
const char *mp_scheme_torch_dtype(mp_dtype t);                          /* "bfloat16" */
/* modelprep's own device layouts (the entries whose read_config is mp_scheme_read_native) write
 * this one config, quant_method "modelprep" with the entry's name as its format, and read it
 * back. */
mp_errcode mp_scheme_write_native(mp_buf *b, const mp_scheme *s, const mp_scheme_job *j,
                                  mp_err *err);
mp_errcode mp_scheme_read_native(qconfig *c, const cJSON *q, mp_err *err);

#endif
