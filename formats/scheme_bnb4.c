/*
 * scheme_bnb4.c - bitsandbytes 4-bit checkpoints (NF4 and FP4, with or without double
 * quantization; quant_method "bitsandbytes", load_in_4bit). This entry also reads the
 * bitsandbytes config dialect, and picks bnb-int8 (scheme_bnb8.c) for load_in_8bit.
 *
 * Bytes, per quantized linear <m> (doc/formats/bitsandbytes.md §2):
 *   <m>.weight                             [ceil(N*K/2) / elsize, 1], U8 or any dtype
 *                                          (bnb_4bit_quant_storage): the raw bytes are two 4-bit
 *                                          codes each over the flattened row-major [N, K],
 *                                          element 2i in the HIGH nibble of byte i
 *   <m>.weight.absmax                      F32 [ceil(N*K/blocksize)]; nested: U8 codes
 *   <m>.weight.quant_map                   F32 [16], the code table
 *   <m>.weight.nested_absmax               F32 [ceil(n_absmax/nested_blocksize)] (nested only)
 *   <m>.weight.nested_quant_map            F32 [256] (nested only)
 *   <m>.weight.quant_state.bitsandbytes__nf4 (or __fp4)  U8 [len]: a JSON object with
 *       quant_type, blocksize, dtype, shape [N, K] and, when nested, nested_blocksize,
 *       nested_dtype, nested_offset.
 * The blob is the marker that makes a linear (never the config) and its shape is the logical
 * weight's. w[t] = round_dtype(table[code(t)] * absmax[t / blocksize]), with
 * absmax[b] = f32(nested_quant_map[c[b]] * nested_absmax[b / nested_blocksize]) + offset
 * when nested (§3).
 */
#include "scheme_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const mp_scheme mp_scheme_bnb4;

/* The code tables of bitsandbytes' dequantizers, f32 (doc/formats/bitsandbytes.md §3). */
static const float nf4_table[16] = {
    -0x1p+0f, -0x1.647362p-1f, -0x1.0cd66p-1f, -0x1.94654p-2f, -0x1.23449ap-2f, -0x1.7a6a7ep-3f,
    -0x1.74f0e2p-4f, 0x0p+0f, 0x1.45f5fep-4f, 0x1.4995c6p-3f, 0x1.f809bap-3f, 0x1.5a0674p-2f,
    0x1.c3497p-2f, 0x1.200f56p-1f, 0x1.722766p-1f, 0x1p+0f};
static const float fp4_table[16] = {
    0x0p+0f, 0x1.555556p-8f, 0x1.555556p-1f, 0x1p+0f, 0x1.555556p-2f, 0x1p-1f, 0x1.555556p-3f, 0x1p-2f,
    0x0p+0f, -0x1.555556p-8f, -0x1.555556p-1f, -0x1p+0f, -0x1.555556p-2f, -0x1p-1f, -0x1.555556p-3f,
    -0x1p-2f};

#define BLOB_MAX 4096      /* a real blob is under 200 bytes */
#define QS_PREFIX "weight.quant_state.bitsandbytes__"

/* ------------------------------------------------------------ the config */

static mp_errcode get_flag(qconfig *c, const cJSON *q, const char *key, int *out, mp_err *err)
{
    char priv[64];
    snprintf(priv, sizeof priv, "_%s", key); /* transformers also writes the private copy */
    const char *keys[2] = {key, priv};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(q, keys[i]);
        if (!v || cJSON_IsNull(v)) continue;
        if (!cJSON_IsBool(v)) return MP_BAD_CONFIG(err, c, "'%s' is not true or false", keys[i]);
        *out |= cJSON_IsTrue(v);
    }
    return MP_OK;
}

static mp_errcode read_bnb(qconfig *c, const cJSON *q, mp_err *err)
{
    int b4 = 0, b8 = 0;
    MP_FORWARD(get_flag(c, q, "load_in_4bit", &b4, err));
    MP_FORWARD(get_flag(c, q, "load_in_8bit", &b8, err));
    if (b4 == b8)
        return MP_BAD_CONFIG(err, c, "%s: exactly one of 'load_in_4bit' and 'load_in_8bit' must be true",
                             b4 ? "both are true" : "neither is true");
    const char *qt = mp_qc_str(q, "bnb_4bit_quant_type");
    if (b4 && qt && strcmp(qt, "nf4") != 0 && strcmp(qt, "fp4") != 0)
        return MP_BAD_CONFIG(err, c, "'bnb_4bit_quant_type' is '%.20s', expected nf4 or fp4", qt);
    snprintf(c->format, sizeof c->format, "%s", b8 ? "int8" : qt ? qt : "fp4");
    c->layout = b4 ? &mp_scheme_bnb4 : mp_scheme_find("bnb-int8");
    c->base.bits = b4 ? 4 : 8;
    c->base.fscale = b4 ? MP_FSCALE_FLAT : MP_FSCALE_CHANNEL;
    MP_FORWARD(mp_qc_skip_list(c, q, "llm_int8_skip_modules", err));
    return mp_qc_skip_list(c, q, "modules_to_not_convert", err);
}

/* ------------------------------------------------------------ the quant_state blob */

typedef struct bnb_state {
    const float *table;
    const char *type;           /* "nf4", "fp4" */
    uint64_t blocksize, shape[2], nested_blocksize;
    mp_dtype dtype;
    int nested;
    double offset;
} bnb_state;

#define REFUSE_T(t, ...) mp_errf_at(err, MP_E_INPUT, mp_st_file_name(m, (t)->file), (t)->name, -1, __VA_ARGS__)

static int blocksize_ok(uint64_t b) { return b >= 32 && b <= 4096 && (b & (b - 1)) == 0; }

static int dtype_of(const char *s, mp_dtype *out)
{
    static const struct { const char *name; mp_dtype t; } known[] = {
        {"bfloat16", MP_DTYPE_BF16}, {"float16", MP_DTYPE_F16}, {"float32", MP_DTYPE_F32}};
    for (size_t i = 0; s && i < sizeof known / sizeof *known; i++)
        if (strcmp(s, known[i].name) == 0) return *out = known[i].t, 1;
    return 0;
}

/* The blob's keys, one rule each; a key not listed is refused. */
static mp_errcode blob_key(const mp_st_model *m, const mp_tensor *t, const cJSON *v, bnb_state *s,
                           mp_err *err)
{
    const char *k = v->string, *str = cJSON_IsString(v) ? v->valuestring : NULL;
    uint64_t u = 0;
    if (strcmp(k, "quant_type") == 0) {
        if (!str || strcmp(str, s->type) != 0)
            return REFUSE_T(t, "quant_state: 'quant_type' is not \"%s\", as the tensor's name says", s->type);
    } else if (strcmp(k, "blocksize") == 0 || strcmp(k, "nested_blocksize") == 0) {
        if (!mp_json_get_u64(v, &u) || !blocksize_ok(u))
            return REFUSE_T(t, "quant_state: '%s' is not a power of two in [32, 4096]", k);
        *(k[0] == 'b' ? &s->blocksize : &s->nested_blocksize) = u;
    } else if (strcmp(k, "dtype") == 0) {
        if (!dtype_of(str, &s->dtype))
            return REFUSE_T(t, "quant_state: 'dtype' is not \"bfloat16\", \"float16\" or \"float32\"");
    } else if (strcmp(k, "nested_dtype") == 0) {
        if (!str || strcmp(str, "float32") != 0) return REFUSE_T(t, "quant_state: 'nested_dtype' is not \"float32\"");
    } else if (strcmp(k, "nested_offset") == 0) {
        if (!cJSON_IsNumber(v)) return REFUSE_T(t, "quant_state: 'nested_offset' is not a number");
        s->offset = v->valuedouble;
        s->nested = 1;
    } else if (strcmp(k, "shape") == 0) {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !mp_json_get_u64(v->child, &s->shape[0]) ||
            !mp_json_get_u64(v->child->next, &s->shape[1]) || !s->shape[0] || !s->shape[1] ||
            s->shape[0] > (1ull << 40) / s->shape[1])
            return REFUSE_T(t, "quant_state: 'shape' is not [N, K] of two integers >= 1 (at most 2^40 elements)");
    } else {
        return REFUSE_T(t, "quant_state: unknown key '%.60s'", k);
    }
    return MP_OK;
}

static mp_errcode parse_blob(const mp_st_model *m, const mp_tensor *t, const char *text, size_t len,
                             bnb_state *s, mp_err *err)
{
    size_t at = 0;
    char why[128];
    if (!mp_json_check(text, len, 0, &at, why, sizeof why))
        return REFUSE_T(t, "quant_state is not valid JSON: %s at byte %zu", why, at);
    cJSON *o = cJSON_ParseWithLength(text, len);
    mp_errcode rc = o && cJSON_IsObject(o) ? MP_OK : REFUSE_T(t, "quant_state is not a JSON object");
    for (const cJSON *v = o ? o->child : NULL; v && rc == MP_OK; v = v->next) rc = blob_key(m, t, v, s, err);
    int n_nested = cJSON_HasObjectItem(o, "nested_blocksize") + cJSON_HasObjectItem(o, "nested_dtype") +
                   cJSON_HasObjectItem(o, "nested_offset");
    if (rc == MP_OK && (!s->blocksize || !s->shape[0] || s->dtype == MP_DTYPE_COUNT ||
                        !cJSON_HasObjectItem(o, "quant_type")))
        rc = REFUSE_T(t, "quant_state lacks one of 'quant_type', 'blocksize', 'dtype', 'shape'");
    if (rc == MP_OK && n_nested % 3)
        rc = REFUSE_T(t, "quant_state has %d of 'nested_blocksize', 'nested_dtype', 'nested_offset': "
                         "all three or none", n_nested);
    cJSON_Delete(o);
    return rc;
}

static mp_errcode read_blob(const mp_st_model *m, const mp_qlinear *q, bnb_state *s, mp_err *err)
{
    const mp_tensor *t = q->marker;
    const char *type = t->name + strlen(t->name) - 3;
    *s = (bnb_state){.type = type, .table = strcmp(type, "nf4") == 0 ? nf4_table : fp4_table,
                     .dtype = MP_DTYPE_COUNT};
    if (t->dtype != MP_DTYPE_U8 || t->n_dims != 1 || t->n_bytes == 0 || t->n_bytes > BLOB_MAX)
        return REFUSE_T(t, "quant_state must be U8 [n] with 1 <= n <= %d, not %s of %llu bytes", BLOB_MAX,
                        mp_dtype_name(t->dtype), (unsigned long long)t->n_bytes);
    char text[BLOB_MAX];
    MP_FORWARD(mp_st_read(m, t, 0, text, (size_t)t->n_bytes, err));
    return parse_blob(m, t, text, (size_t)t->n_bytes, s, err);
}

/* ------------------------------------------------------------ the tensors */

static mp_errcode want_1d(const mp_st_model *m, const mp_qlinear *q, const mp_tensor *t, const char *part,
                          mp_dtype dt, uint64_t n, mp_err *err)
{
    if (!t) return MP_REFUSE_LINEAR(q, "missing part '%s'", part);
    if (t->dtype == dt && t->n_dims == 1 && t->shape[0] == n) return MP_OK;
    char got[96];
    mp_shape_format(t, got, sizeof got);
    return REFUSE_T(t, "'%s' is %s %s, expected %s [%llu]", part, mp_dtype_name(t->dtype), got, mp_dtype_name(dt),
                    (unsigned long long)n);
}

/* The stored code table must be bitsandbytes' own for the type (its dequantizers use theirs). */
static mp_errcode check_quant_map(const mp_st_model *m, const mp_qlinear *q, const bnb_state *s, mp_err *err)
{
    MP_FORWARD(want_1d(m, q, q->aux[0], "weight.quant_map", MP_DTYPE_F32, 16, err));
    uint8_t raw[64];
    MP_FORWARD(mp_st_read(m, q->aux[0], 0, raw, sizeof raw, err));
    for (unsigned i = 0; i < 16; i++) {
        float v = mp_dtype_load_f32(raw + 4 * i, MP_DTYPE_F32);
        if (v != s->table[i])
            return REFUSE_T(q->aux[0], "quant_map[%u] = %.9g is not bitsandbytes' %s value %.9g", i, (double)v,
                            s->type, (double)s->table[i]);
    }
    return MP_OK;
}

static mp_errcode check_parts(const mp_st_model *m, mp_qlinear *q, const bnb_state *s, mp_err *err)
{
    uint64_t n = s->shape[0] * s->shape[1], n_absmax = mp_ceil_div(n, s->blocksize);
    const mp_tensor *w = q->qweight;
    if (!w) return MP_REFUSE_LINEAR(q, "missing part 'weight'");
    if (w->n_dims != 2 || w->shape[1] != 1 || w->n_bytes != mp_ceil_div(n, 2))
        return REFUSE_T(w, "packed weight holds %llu bytes in %u dimensions, expected %llu bytes as [n, 1] "
                           "for the quant_state's shape [%llu, %llu]", (unsigned long long)w->n_bytes, w->n_dims,
                        (unsigned long long)mp_ceil_div(n, 2), (unsigned long long)s->shape[0],
                        (unsigned long long)s->shape[1]);
    MP_FORWARD(want_1d(m, q, q->scales, "weight.absmax", s->nested ? MP_DTYPE_U8 : MP_DTYPE_F32, n_absmax, err));
    MP_FORWARD(check_quant_map(m, q, s, err));
    if (!s->nested) {
        const mp_tensor *extra = q->aux[1] ? q->aux[1] : q->aux[2];
        return extra ? REFUSE_T(extra, "nested part beside a quant_state without nested fields") : MP_OK;
    }
    MP_FORWARD(want_1d(m, q, q->aux[1], "weight.nested_absmax", MP_DTYPE_F32,
                       mp_ceil_div(n_absmax, s->nested_blocksize), err));
    return want_1d(m, q, q->aux[2], "weight.nested_quant_map", MP_DTYPE_F32, 256, err);
}

static mp_errcode shape_bnb4(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    (void)gs;
    bnb_state s;
    MP_FORWARD(read_blob(m, q, &s, err));
    MP_FORWARD(check_parts(m, q, &s, err));
    q->n_rows = s.shape[0];
    q->k_cols = s.shape[1];
    q->group_size = q->k_cols;
    q->n_groups = 1;
    q->elem_dtype = MP_DTYPE_U8;
    q->elem_text = s.table == nf4_table ? "NF4" : "FP4";
    q->code_table = s.table;
    q->scale_kind = MP_FSCALE_FLAT;
    q->block_n = 0;
    q->block_k = s.blocksize;
    q->scale_rows = 1;
    q->scale_cols = q->scales->shape[0];
    q->round_dtype = s.dtype == MP_DTYPE_F32 ? MP_DTYPE_COUNT : s.dtype;
    q->nested = s.nested;
    q->nested_block = s.nested_blocksize;
    q->nested_offset = (float)s.offset;
    q->zero = MP_QZERO_IMPLIED;
    q->sym = 1;
    return MP_OK;
}

static int any_dtype(const mp_tensor *t) { return t != NULL; }

static const char *const methods[] = {"bitsandbytes", NULL};
static const char *const markers[] = {QS_PREFIX "nf4", QS_PREFIX "fp4", NULL};

const mp_scheme mp_scheme_bnb4 = {
    .name = "bnb-4bit",
    .summary = "bitsandbytes NF4/FP4 (load_in_4bit): packed weight, absmax per flat block (nested or "
               "not), quant_state JSON",
    .roles = MP_SCHEME_SOURCE,
    .methods = methods,
    .method = MP_QM_BNB,
    .read_config = read_bnb,
    .pack = MP_QPACK_NIBBLES_FLAT,
    .codes_name = "weight",
    .scales_name = "weight.absmax",
    .codes = {.container_bytes = 1, .bits = 4},
    .zenc = MP_ZENC_IMPLIED,
    .scales_nk = 1,
    .bits_mask = 1u << 4,
    .bits_text = "4-bit NF4 or FP4 codes",
    .check_shapes = shape_bnb4,
    .elem = MP_ELEM_LUT4,
    .is_codes = any_dtype,
    .fround = MP_FROUND_OUT_DTYPE,
    .scale_text = "multiply",
    .markers = markers,
    .aux_names = {"weight.quant_map", "weight.nested_absmax", "weight.nested_quant_map"},
    .kernel = "bnb4",
};
