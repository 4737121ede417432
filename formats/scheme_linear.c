/*
 * scheme_linear.c - grouping raw tensors into quantized linears and checking their shapes.
 *
 * A linear is found by its packed weight (`qweight`, or `weight_packed` for compressed-tensors);
 * its siblings (`qzeros`, `scales`, `g_idx`, `bias`; `weight_scale`, `weight_zero_point`,
 * `weight_g_idx`, `weight_shape`) complete it. The scheme is never guessed from whether `g_idx`
 * exists (AutoRound files have none, doc/formats/autoround.md §3): the config names
 * it and the shapes must agree, or the linear is refused with the reason.
 */
#include "scheme_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct owner {
    const mp_tensor *t;
    size_t linear;
} owner;

struct mp_qmodel {
    qconfig cfg;
    mp_qlinear *linears;
    size_t n_linears;
    owner *owners;
    size_t n_owners;
    char **dense;
    size_t n_dense;
};

#define MAX_G_IDX_CHUNK 65536

/* s is "<prefix><sep><suffix>" with a non-empty prefix. */
static int ends_with_sep(const char *s, const char *suffix, char sep)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && strcmp(s + a - b, suffix) == 0 && s[a - b - 1] == sep;
}

static int ends_with(const char *s, const char *suffix) { return ends_with_sep(s, suffix, '.'); }

static const mp_tensor *sibling_sep(const mp_st_model *m, const char *prefix, char sep, const char *suffix)
{
    char name[1024];
    if ((size_t)snprintf(name, sizeof name, "%s%c%s", prefix, sep, suffix) >= sizeof name) return NULL;
    return mp_st_find(m, name);
}

static const mp_tensor *sibling(const mp_st_model *m, const char *prefix, const char *suffix)
{
    return sibling_sep(m, prefix, '.', suffix);
}

/* The separator between a layout's prefix and its part names ('.' unless the entry says). */
static char part_sep(const mp_scheme *L) { return L->name_sep ? L->name_sep : '.'; }

int mp_t_is_int32(const mp_tensor *t) { return t->dtype == MP_DTYPE_I32 || t->dtype == MP_DTYPE_U32; }
int mp_t_is_byte(const mp_tensor *t) { return t->dtype == MP_DTYPE_U8 || t->dtype == MP_DTYPE_I8; }
int mp_t_is_float(const mp_tensor *t)
{
    return t->dtype == MP_DTYPE_F16 || t->dtype == MP_DTYPE_BF16 || t->dtype == MP_DTYPE_F32;
}

int mp_t_is_float8(const mp_tensor *t)
{
    return t->dtype == MP_DTYPE_F8_E4M3 || t->dtype == MP_DTYPE_F8_E5M2;
}

#define REFUSE MP_REFUSE_LINEAR

mp_errcode mp_qc_check_scale_grid(const mp_qlinear *q, const mp_tensor *s, const char *part, mp_err *err)
{
    if (!s) return REFUSE(q, "missing part '%s'", part);
    if (!mp_t_is_float(s))
        return REFUSE(q, "'%s' is %s, expected F32, BF16 or F16", part, mp_dtype_name(s->dtype));
    return mp_qc_check_scale_shape(q, s, part, err);
}

mp_errcode mp_qc_check_scale_shape(const mp_qlinear *q, const mp_tensor *s, const char *part, mp_err *err)
{
    uint64_t R = q->scale_rows, C = q->scale_cols;
    int ok = s->n_dims == 2 && s->shape[0] == R && s->shape[1] == C;
    ok |= R == 1 && C == 1 && s->n_elems == 1 && s->n_dims <= 2;   /* [], [1], [1, 1] */
    ok |= C == 1 && s->n_dims == 1 && s->shape[0] == R;            /* [N] per channel */
    if (ok) return MP_OK;
    char got[96];
    mp_shape_format(s, got, sizeof got);
    return REFUSE(q, "'%s' is %s, expected [%llu, %llu]: %s scales of %llu x %llu over [%llu, %llu]", part,
                  got, (unsigned long long)R, (unsigned long long)C, mp_fscale_name(q->scale_kind),
                  (unsigned long long)q->block_n, (unsigned long long)q->block_k,
                  (unsigned long long)q->n_rows, (unsigned long long)q->k_cols);
}

mp_errcode mp_qc_float_codes(mp_qlinear *q, int64_t group_size, mp_err *err)
{
    const mp_tensor *w = q->qweight;
    MP_FORWARD(mp_qc_want_2d(q, w, "weight", mp_t_is_float8, "F8_E4M3 or F8_E5M2", err));
    uint64_t N = w->shape[0], K = w->shape[1];
    q->n_rows = N;
    q->k_cols = K;
    q->elem_dtype = w->dtype;
    q->group_size = K;
    q->n_groups = 1;
    switch (q->scale_kind) {
    case MP_FSCALE_TENSOR: q->block_n = N, q->block_k = K; break;
    case MP_FSCALE_CHANNEL: q->block_n = 1, q->block_k = K; break;
    case MP_FSCALE_GROUP:
        if (group_size <= 0) return REFUSE(q, "group scales without a group size");
        if (K % (uint64_t)group_size)
            return REFUSE(q, "group size %lld does not divide K = %llu", (long long)group_size,
                          (unsigned long long)K);
        q->block_n = 1, q->block_k = (uint64_t)group_size;
        q->group_size = (uint64_t)group_size;
        q->n_groups = K / (uint64_t)group_size;
        break;
    case MP_FSCALE_BLOCK:
        if (!q->block_n || !q->block_k) return REFUSE(q, "block scales without a block size");
        break;
    default: return REFUSE(q, "the config gives no scale granularity");
    }
    if (N == 0 || K == 0) return REFUSE(q, "'weight' is empty");
    q->scale_rows = mp_ceil_div(N, q->block_n);
    q->scale_cols = mp_ceil_div(K, q->block_k);
    q->zero = MP_QZERO_IMPLIED;
    q->sym = 1;
    return MP_OK;
}

const char *mp_fscale_name(mp_fscale s)
{
    static const char *const names[MP_FSCALE_COUNT] = {
        [MP_FSCALE_TENSOR] = "tensor", [MP_FSCALE_CHANNEL] = "channel",
        [MP_FSCALE_GROUP] = "group", [MP_FSCALE_BLOCK] = "block", [MP_FSCALE_FLAT] = "flat"};
    return s < MP_FSCALE_COUNT ? names[s] : "?";
}

mp_errcode mp_qc_want_2d(const mp_qlinear *q, const mp_tensor *t, const char *part,
                         int (*ok)(const mp_tensor *), const char *dtypes, mp_err *err)
{
    if (!t) return REFUSE(q, "missing part '%s'", part);
    if (t->n_dims != 2) return REFUSE(q, "'%s' has %u dimensions, expected 2", part, t->n_dims);
    if (!ok(t)) return REFUSE(q, "'%s' is %s, expected %s", part, mp_dtype_name(t->dtype), dtypes);
    return MP_OK;
}

static mp_errcode check_bits(const mp_qlinear *q, mp_err *err)
{
    if (q->bits >= 32 || !((q->scheme->bits_mask >> q->bits) & 1u))
        return REFUSE(q, "%u-bit codes are not valid for %s (%s)", q->bits, mp_qmethod_name(q->method),
                      q->scheme->bits_text);
    return MP_OK;
}

mp_errcode mp_qc_want_codes_scales(const mp_qlinear *q, int (*ok)(const mp_tensor *),
                                   const char *dtypes, mp_err *err)
{
    MP_FORWARD(mp_qc_want_2d(q, q->qweight, q->scheme->codes_name, ok, dtypes, err));
    return mp_qc_want_2d(q, q->scales, q->scheme->scales_name, mp_t_is_float, "F16, BF16 or F32", err);
}

mp_errcode mp_qc_want_dims(const mp_qlinear *q, const mp_tensor *t, const char *part, uint64_t rows,
                           uint64_t cols, mp_err *err)
{
    if (t->shape[0] == rows && t->shape[1] == cols) return MP_OK;
    return REFUSE(q, "%s is [%llu, %llu], expected [%llu, %llu]", part, (unsigned long long)t->shape[0],
                  (unsigned long long)t->shape[1], (unsigned long long)rows, (unsigned long long)cols);
}

mp_errcode mp_qc_optional_zeros(mp_qlinear *q, int *implied, mp_err *err)
{
    const char *part = q->scheme->zeros_name;
    *implied = !q->qzeros;
    if (q->qzeros) return mp_qc_want_2d(q, q->qzeros, part, mp_t_is_int32, "I32", err);
    if (!q->sym) return REFUSE(q, "missing part '%s' of an asymmetric linear", part);
    q->zero = MP_QZERO_IMPLIED;
    return MP_OK;
}

/* Group count for K; the group size must divide K (a partial last group is refused: no real
 * packer writes one, and a reference that guessed would hide corruption). */
mp_errcode mp_qc_derive_groups(mp_qlinear *q, int64_t group_size, mp_err *err)
{
    if (group_size < 0) {
        q->group_size = q->k_cols;
        q->n_groups = 1;
        return MP_OK;
    }
    if (group_size == 0) return REFUSE(q, "group size is 0");
    if (q->k_cols % (uint64_t)group_size != 0)
        return REFUSE(q, "group size %lld does not divide K = %llu", (long long)group_size,
                      (unsigned long long)q->k_cols);
    q->group_size = (uint64_t)group_size;
    q->n_groups = q->k_cols / (uint64_t)group_size;
    return MP_OK;
}

/* g_idx must name existing groups; act-order is any k whose group is not k / group_size. */
static mp_errcode check_g_idx(const mp_st_model *m, mp_qlinear *q, mp_err *err)
{
    const mp_tensor *g = q->g_idx;
    if (!g) return MP_OK;
    if (g->n_dims != 1 || g->shape[0] != q->k_cols || !mp_t_is_int32(g))
        return REFUSE(q, "g_idx must be I32 [%llu]", (unsigned long long)q->k_cols);
    int32_t *buf = malloc(MAX_G_IDX_CHUNK * sizeof *buf);
    if (!buf) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = MP_OK;
    for (uint64_t k0 = 0; k0 < q->k_cols && rc == MP_OK; k0 += MAX_G_IDX_CHUNK) {
        size_t n = (size_t)(q->k_cols - k0 < MAX_G_IDX_CHUNK ? q->k_cols - k0 : MAX_G_IDX_CHUNK);
        rc = mp_st_read(m, g, k0 * 4, buf, n * 4, err);
        for (size_t i = 0; i < n && rc == MP_OK; i++) {
            int32_t v = (int32_t)mp_read_le32(&buf[i]);
            if (v < 0 || (uint64_t)v >= q->n_groups)
                rc = REFUSE(q, "g_idx[%llu] = %d is outside [0, %llu)",
                            (unsigned long long)(k0 + i), v, (unsigned long long)q->n_groups);
            else if ((uint64_t)v != (k0 + i) / q->group_size)
                q->act_order = 1;
        }
    }
    free(buf);
    return rc;
}

static mp_errcode add_owner(mp_qmodel *qm, const mp_tensor *t, size_t linear, mp_err *err)
{
    if (!t) return MP_OK;
    owner *o = realloc(qm->owners, (qm->n_owners + 1) * sizeof *o);
    if (!o) return mp_errf(err, MP_E_NOMEM, "out of memory");
    qm->owners = o;
    qm->owners[qm->n_owners++] = (owner){t, linear};
    return MP_OK;
}

static int cmp_owner(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const owner *)a)->t, y = (uintptr_t)((const owner *)b)->t;
    return x < y ? -1 : x > y;
}

/* The dtype a producer that rounds to the model's dtype rounds to: config.json's torch_dtype
 * (bfloat16 or float16); COUNT (no rounding) for float32 or none. */
static mp_dtype model_dtype(const qconfig *c)
{
    if (strcmp(c->torch_dtype, "bfloat16") == 0) return MP_DTYPE_BF16;
    if (strcmp(c->torch_dtype, "float16") == 0) return MP_DTYPE_F16;
    return MP_DTYPE_COUNT;
}

/* The parts beyond codes, scales, zeros and g_idx: bias, activation scale, marker, aux. */
static void find_parts(const mp_st_model *m, const mp_scheme *L, mp_qlinear *q)
{
    q->qzeros = L->zeros_name ? sibling(m, q->prefix, L->zeros_name) : NULL;
    q->g_idx = L->g_idx_name ? sibling(m, q->prefix, L->g_idx_name) : NULL;
    q->shape = L->shape_name ? sibling(m, q->prefix, L->shape_name) : NULL;
    q->bias = sibling(m, q->prefix, "bias");
    q->input_scale = L->input_scale_name ? sibling(m, q->prefix, L->input_scale_name) : NULL;
    for (int i = 0; i < 2; i++)
        q->kv_scales[i] = L->kv_scale_names[i] ? sibling(m, q->prefix, L->kv_scale_names[i]) : NULL;
    for (size_t i = 0; i < MP_QAUX_MAX; i++)
        q->aux[i] = L->aux_names[i] ? sibling(m, q->prefix, L->aux_names[i]) : NULL;
}

/* A companion layout's linear takes the companion's parameters, not the config's: its bit width,
 * and the block its shape check sets. */
static void companion_params(const mp_scheme *L, qparams *p)
{
    int bits = 0;
    while (bits < 31 && !(L->bits_mask & (1u << bits))) bits++;
    *p = (qparams)QPARAMS_UNSET;
    p->bits = bits;
    p->sym = 1;
}

static mp_errcode build_linear(mp_qmodel *qm, const mp_st_model *m, const char *prefix,
                               const mp_tensor *marker, const mp_scheme *L, mp_err *err)
{
    const qconfig *c = &qm->cfg;
    qparams p;
    const char *wname = L->codes_name;
    if (!mp_qconfig_resolve(c, prefix, &p))
        return mp_errf_at(err, MP_E_INPUT, c->source, prefix, -1,
                          "the config leaves this linear unquantized but the checkpoint has "
                          "'%s%c%s'", prefix, part_sep(L), wname);
    if (L != c->layout) companion_params(L, &p);
    mp_qlinear *v = realloc(qm->linears, (qm->n_linears + 1) * sizeof *v);
    if (!v) return mp_errf(err, MP_E_NOMEM, "out of memory");
    qm->linears = v;
    mp_qlinear *q = &qm->linears[qm->n_linears];
    memset(q, 0, sizeof *q);
    q->prefix = mp_strdup(prefix);
    if (!q->prefix) return mp_errf(err, MP_E_NOMEM, "out of memory");
    qm->n_linears++;
    q->method = c->method;
    q->scheme = L;
    q->pack = L->pack;
    q->format = c->format;
    q->zero_offset = L->zenc == MP_ZENC_MINUS1;
    q->code_xor = c->code_xor;
    q->sym = p.sym > 0;
    if (p.bits < 0) return REFUSE(q, "the config gives no bit width");
    q->bits = (uint32_t)p.bits;
    char sep = part_sep(L);
    q->qweight = sibling_sep(m, prefix, sep, wname);
    q->scales = sibling_sep(m, prefix, sep, L->scales_name);
    q->global_scale = L->global_scale_name ? sibling_sep(m, prefix, sep, L->global_scale_name) : NULL;
    q->marker = marker;
    find_parts(m, L, q);
    q->scale_kind = p.fscale < 0 ? MP_FSCALE_COUNT : (mp_fscale)p.fscale;
    q->block_n = p.block_n > 0 ? (uint64_t)p.block_n : 0;
    q->block_k = p.block_k > 0 ? (uint64_t)p.block_k : 0;
    q->round_dtype = MP_DTYPE_COUNT;
    if (L->fround == MP_FROUND_MODEL_DTYPE) q->round_dtype = model_dtype(c);
    MP_FORWARD(check_bits(q, err));
    const mp_tensor *found = q->qweight ? q->qweight : marker;
    if (!q->scales) /* named in the file of the tensor that found it: the tensors lack it, not the config */
        return mp_errf_at(err, MP_E_INPUT, found ? mp_st_file_name(m, found->file) : NULL, q->prefix, -1,
                          "missing part '%s'", L->scales_name);
    mp_errcode rc = L->check_shapes(m, q, p.group_size, err);
    if (rc == MP_OK && q->g_idx && !L->act_order_ok)
        rc = REFUSE(q, "this layout has no g_idx, but the checkpoint has one");
    if (rc == MP_OK) rc = check_g_idx(m, q, err);
    if (rc != MP_OK) {
        if (err->file[0] == '\0') mp_err_set_file(err, c->source);
        return rc;
    }
    size_t idx = qm->n_linears - 1;
    const mp_tensor *parts[] = {q->qweight, q->scales, q->qzeros, q->g_idx, q->bias, q->shape,
                                q->input_scale, q->global_scale, q->kv_scales[0], q->kv_scales[1],
                                q->marker, q->aux[0], q->aux[1], q->aux[2], q->aux[3]};
    _Static_assert(MP_QAUX_MAX == 4, "list every aux part above");
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) MP_FORWARD(add_owner(qm, parts[i], idx, err));
    return MP_OK;
}

/* Why a packed weight has no scheme: the config names another, or there is no quantization
 * config, or (the likeliest slip) no config.json at all beside the weights. */
static const char *no_scheme_reason(const mp_qmodel *qm, const mp_st_model *m)
{
    if (qm->cfg.present) return "the config names another scheme";
    char *path = mp_path_join(mp_st_dir(m), "config.json");
    int has_config = path && mp_exists(path);
    free(path);
    return has_config ? "the checkpoint has no quantization config"
                      : "config.json is missing beside the weights, so the quantization scheme is unknown";
}

/* Parts that cannot stand alone: finding one without its packed weight is a missing part. */
static mp_errcode check_orphans(const mp_qmodel *qm, const mp_st_model *m, mp_err *err)
{
    static const char *const parts[] = {"qzeros", "g_idx", "weight_zero_point", "weight_g_idx",
                                        "weight_packed", "qweight"};
    /* Packed weights first: without a config, "no quantization config" is the reason, not a
     * missing part. */
    const char *why = no_scheme_reason(qm, m);
    for (size_t i = 0; i < mp_st_n_tensors(m); i++) {
        const mp_tensor *t = mp_st_tensor(m, i);
        if (!mp_qmodel_owner(qm, t) && (ends_with(t->name, "qweight") || ends_with(t->name, "weight_packed")))
            return mp_errf_at(err, MP_E_INPUT, qm->cfg.present ? qm->cfg.source : NULL, t->name, -1,
                              "packed weight found but %s", why);
    }
    for (size_t i = 0; i < mp_st_n_tensors(m); i++) {
        const mp_tensor *t = mp_st_tensor(m, i);
        if (mp_qmodel_owner(qm, t)) continue;
        for (size_t j = 0; j < sizeof parts / sizeof *parts; j++) {
            if (!ends_with(t->name, parts[j])) continue;
            size_t plen = strlen(t->name) - strlen(parts[j]) - 1;
            if (j >= 4)
                return mp_errf_at(err, MP_E_INPUT, qm->cfg.present ? qm->cfg.source : NULL, t->name, -1,
                                  "packed weight found but %s", why);
            return mp_errf_at(err, MP_E_INPUT, NULL, t->name, -1,
                              "missing part: no '%.*s.%s' beside it", (int)plen, t->name,
                              qm->cfg.layout->codes_name);
        }
    }
    return MP_OK;
}

/* A float layout's scales (and activation scales) beside no float codes: a scale whose weight
 * is missing, or is not of the layout's element type, cannot stand alone. */
static mp_errcode check_float_orphans(const mp_qmodel *qm, const mp_st_model *m, mp_err *err)
{
    const mp_scheme *L = qm->cfg.layout;
    const char *parts[] = {L->scales_name, L->input_scale_name, L->global_scale_name};
    const char *codes = L->elem == MP_ELEM_FP4 ? "U8" : "F8_E4M3 or F8_E5M2";
    char sep = part_sep(L);
    for (size_t i = 0; i < mp_st_n_tensors(m); i++) {
        const mp_tensor *t = mp_st_tensor(m, i);
        for (size_t j = 0; j < 3; j++) {
            if (!parts[j] || !ends_with_sep(t->name, parts[j], sep) || mp_qmodel_owner(qm, t)) continue;
            size_t plen = strlen(t->name) - strlen(parts[j]) - 1;
            char wname[1100];
            snprintf(wname, sizeof wname, "%.*s%c%s", (int)plen, t->name, sep, L->codes_name);
            const mp_tensor *w = mp_st_find(m, wname);
            return mp_errf_at(err, MP_E_INPUT, NULL, t->name, -1,
                              "missing part: no %s '%s' beside it%s%s", codes, wname,
                              w ? ", it is " : "", w ? mp_dtype_name(w->dtype) : "");
        }
    }
    return MP_OK;
}

/* A marker layout's parts (scales, aux) beside no marker: "missing part", naming the markers. */
static mp_errcode check_marker_orphans(const mp_qmodel *qm, const mp_st_model *m, mp_err *err)
{
    const mp_scheme *L = qm->cfg.layout;
    const char *parts[1 + MP_QAUX_MAX] = {L->scales_name};
    memcpy(parts + 1, L->aux_names, sizeof L->aux_names);
    for (size_t i = 0; i < mp_st_n_tensors(m); i++) {
        const mp_tensor *t = mp_st_tensor(m, i);
        for (size_t j = 0; j < 1 + MP_QAUX_MAX; j++) {
            if (!parts[j] || !ends_with(t->name, parts[j]) || mp_qmodel_owner(qm, t)) continue;
            int plen = (int)(strlen(t->name) - strlen(parts[j]) - 1);
            char want[2048] = "";
            for (const char *const *k = L->markers; *k; k++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s'%.*s.%s'",
                         k == L->markers ? "" : " or ", plen, t->name, *k);
            return mp_errf_at(err, MP_E_INPUT, NULL, t->name, -1, "missing part: no %s beside it", want);
        }
    }
    return MP_OK;
}

/* A marker of another layout of the same method (bnb-int8's SCB in a checkpoint whose config
 * says 4-bit): the config and the tensors disagree. */
static mp_errcode check_sibling_markers(const mp_qmodel *qm, const mp_st_model *m, mp_err *err)
{
    const mp_scheme *L = qm->cfg.layout;
    for (size_t e = 0; e < mp_scheme_count(); e++) {
        const mp_scheme *S = mp_scheme_at(e);
        if (S == L || S->method != L->method || !S->markers) continue;
        for (size_t i = 0; i < mp_st_n_tensors(m); i++) {
            const mp_tensor *t = mp_st_tensor(m, i);
            for (const char *const *k = S->markers; *k; k++)
                if (ends_with(t->name, *k))
                    return mp_errf_at(err, MP_E_INPUT, qm->cfg.source, t->name, -1,
                                      "this tensor makes a %s linear, but the config announces %s", S->name,
                                      L->name);
        }
    }
    return MP_OK;
}

static mp_errcode list_dense(mp_qmodel *qm, const mp_st_model *m, mp_err *err)
{
    for (size_t i = 0; i < mp_st_n_tensors(m); i++) {
        const mp_tensor *t = mp_st_tensor(m, i);
        if (t->n_dims != 2 || !ends_with(t->name, "weight") || mp_qmodel_owner(qm, t)) continue;
        if (strstr(t->name, "embed") || strstr(t->name, "norm")) continue;
        char **v = realloc(qm->dense, (qm->n_dense + 1) * sizeof *v);
        if (!v) return mp_errf(err, MP_E_NOMEM, "out of memory");
        qm->dense = v;
        size_t len = strlen(t->name) - strlen(".weight");
        char *name = malloc(len + 1);
        if (!name) return mp_errf(err, MP_E_NOMEM, "out of memory");
        memcpy(name, t->name, len);
        name[len] = '\0';
        qm->dense[qm->n_dense++] = name;
    }
    return MP_OK;
}

/* The suffix of tensor t that finds a linear of layout L: one of its markers, or its codes'
 * name when t is its codes; NULL when t finds none. */
static const char *finding_suffix(const mp_scheme *L, const mp_tensor *t)
{
    if (L->markers) {
        for (const char *const *k = L->markers; *k; k++)
            if (ends_with(t->name, *k)) return *k;
        return NULL;
    }
    if (!ends_with_sep(t->name, L->codes_name, part_sep(L))) return NULL;
    return !L->is_codes || L->is_codes(t) ? L->codes_name : NULL;
}

static mp_errcode find_linears(mp_qmodel *qm, const mp_st_model *m, mp_err *err)
{
    for (size_t i = 0; i < mp_st_n_tensors(m); i++) {
        const mp_tensor *t = mp_st_tensor(m, i);
        const mp_scheme *L = qm->cfg.layout;
        const char *suffix = finding_suffix(L, t);
        if (!suffix && L->companion) suffix = finding_suffix(L = L->companion, t);
        if (!suffix) continue;
        size_t len = strlen(t->name) - strlen(suffix) - 1;
        char prefix[1024];
        if (len >= sizeof prefix) return mp_errf_at(err, MP_E_UNSUPPORTED, NULL, t->name, -1, "tensor name too long");
        memcpy(prefix, t->name, len);
        prefix[len] = '\0';
        MP_FORWARD(build_linear(qm, m, prefix, L->markers ? t : NULL, L, err));
    }
    return MP_OK;
}

mp_errcode mp_qmodel_open(mp_qmodel **out, const mp_st_model *m, mp_err *err)
{
    *out = NULL;
    mp_qmodel *qm = calloc(1, sizeof *qm);
    if (!qm) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = mp_qconfig_load(&qm->cfg, mp_st_dir(m), err);
    if (rc == MP_OK && qm->cfg.present) rc = find_linears(qm, m, err);
    if (rc == MP_OK && qm->n_owners) qsort(qm->owners, qm->n_owners, sizeof *qm->owners, cmp_owner);
    if (rc == MP_OK) rc = check_orphans(qm, m, err);
    if (rc == MP_OK && qm->cfg.present && qm->cfg.layout->elem != MP_ELEM_INT)
        rc = qm->cfg.layout->markers ? check_marker_orphans(qm, m, err) : check_float_orphans(qm, m, err);
    if (rc == MP_OK && qm->cfg.present && qm->cfg.layout->markers) rc = check_sibling_markers(qm, m, err);
    if (rc == MP_OK) rc = list_dense(qm, m, err);
    if (rc != MP_OK) {
        mp_qmodel_free(qm);
        return rc;
    }
    *out = qm;
    return MP_OK;
}

void mp_qmodel_free(mp_qmodel *qm)
{
    if (!qm) return;
    for (size_t i = 0; i < qm->n_linears; i++) free(qm->linears[i].prefix);
    free(qm->linears);
    free(qm->owners);
    for (size_t i = 0; i < qm->n_dense; i++) free(qm->dense[i]);
    free(qm->dense);
    mp_qconfig_release(&qm->cfg);
    free(qm);
}

int mp_qmodel_quantized(const mp_qmodel *qm) { return qm->cfg.present; }
mp_qmethod mp_qmodel_method(const mp_qmodel *qm) { return qm->cfg.method; }
const mp_scheme *mp_qmodel_layout(const mp_qmodel *qm) { return qm->cfg.present ? qm->cfg.layout : NULL; }
size_t mp_qmodel_n_linears(const mp_qmodel *qm) { return qm->n_linears; }
const mp_qlinear *mp_qmodel_linear(const mp_qmodel *qm, size_t i) { return &qm->linears[i]; }
size_t mp_qmodel_n_dense_linears(const mp_qmodel *qm) { return qm->n_dense; }
const char *mp_qmodel_dense_linear(const mp_qmodel *qm, size_t i) { return qm->dense[i]; }

const mp_qlinear *mp_qmodel_owner(const mp_qmodel *qm, const mp_tensor *t)
{
    size_t lo = 0, hi = qm->n_owners;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (qm->owners[mid].t == t) return &qm->linears[qm->owners[mid].linear];
        if ((uintptr_t)qm->owners[mid].t < (uintptr_t)t) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}
