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

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && strcmp(s + a - b, suffix) == 0 && s[a - b - 1] == '.';
}

static const mp_tensor *sibling(const mp_st_model *m, const char *prefix, const char *suffix)
{
    char name[1024];
    if ((size_t)snprintf(name, sizeof name, "%s.%s", prefix, suffix) >= sizeof name) return NULL;
    return mp_st_find(m, name);
}

static uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

static int is_int32(const mp_tensor *t) { return t->dtype == MP_DTYPE_I32 || t->dtype == MP_DTYPE_U32; }
static int is_byte(const mp_tensor *t) { return t->dtype == MP_DTYPE_U8 || t->dtype == MP_DTYPE_I8; }
static int is_float(const mp_tensor *t)
{
    return t->dtype == MP_DTYPE_F16 || t->dtype == MP_DTYPE_BF16 || t->dtype == MP_DTYPE_F32;
}

#define REFUSE(q, ...) mp_errf_at(err, MP_E_INPUT, NULL, (q)->prefix, -1, __VA_ARGS__)

static mp_errcode want_2d(const mp_qlinear *q, const mp_tensor *t, const char *part, int (*ok)(const mp_tensor *),
                          const char *dtypes, mp_err *err)
{
    if (!t) return REFUSE(q, "missing part '%s'", part);
    if (t->n_dims != 2) return REFUSE(q, "'%s' has %u dimensions, expected 2", part, t->n_dims);
    if (!ok(t)) return REFUSE(q, "'%s' is %s, expected %s", part, mp_dtype_name(t->dtype), dtypes);
    return MP_OK;
}

static mp_errcode check_bits(const mp_qlinear *q, mp_err *err)
{
    int ok;
    switch (q->pack) {
    case MP_QPACK_AWQ_GEMM:
    case MP_QPACK_AWQ_GEMV:
    case MP_QPACK_CUTLASS:
    case MP_QPACK_ONEDNN: ok = q->bits == 4; break;
    case MP_QPACK_CT: ok = q->bits >= 1 && q->bits <= 8; break;
    default: ok = q->bits == 2 || q->bits == 3 || q->bits == 4 || q->bits == 8; break;
    }
    if (!ok)
        return REFUSE(q, "%u-bit codes are not valid for %s (%s)", q->bits, mp_qmethod_name(q->method),
                      q->pack == MP_QPACK_CT ? "1 to 8 bits" :
                      q->pack == MP_QPACK_GPTQ ? "2, 3, 4 or 8 bits" : "4 bits only");
    return MP_OK;
}

/* Group count for K; the group size must divide K (a partial last group is refused: no real
 * packer writes one, and a reference that guessed would hide corruption). */
static mp_errcode derive_groups(mp_qlinear *q, int64_t group_size, mp_err *err)
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

static mp_errcode shape_gptq(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    const mp_tensor *w = q->qweight, *s = q->scales;
    MP_FORWARD(want_2d(q, w, "qweight", is_int32, "I32", err));
    MP_FORWARD(want_2d(q, s, "scales", is_float, "F16, BF16 or F32", err));
    q->n_rows = w->shape[1];
    if (s->shape[1] != q->n_rows) {
        if (s->shape[1] == 8 * w->shape[1])
            return REFUSE(q, "shapes are AWQ GEMM's (qweight [K, N/8]) but the config says %s",
                          q->format);
        return REFUSE(q, "scales have %llu columns but qweight has N = %llu",
                      (unsigned long long)s->shape[1], (unsigned long long)q->n_rows);
    }
    if (q->g_idx) q->k_cols = q->g_idx->shape[0];
    else if (gs > 0) q->k_cols = s->shape[0] * (uint64_t)gs;
    else if (w->shape[0] * 32 % q->bits == 0) q->k_cols = w->shape[0] * 32 / q->bits;
    else return REFUSE(q, "cannot infer K from qweight [%llu, %llu] at %u bits",
                      (unsigned long long)w->shape[0], (unsigned long long)w->shape[1], q->bits);
    if (ceil_div(q->k_cols * q->bits, 32) != w->shape[0])
        return REFUSE(q, "qweight has %llu rows but K = %llu at %u bits needs %llu",
                      (unsigned long long)w->shape[0], (unsigned long long)q->k_cols, q->bits,
                      (unsigned long long)ceil_div(q->k_cols * q->bits, 32));
    MP_FORWARD(derive_groups(q, gs, err));
    if (s->shape[0] != q->n_groups)
        return REFUSE(q, "scales have %llu groups but K = %llu with group size %llu gives %llu",
                      (unsigned long long)s->shape[0], (unsigned long long)q->k_cols,
                      (unsigned long long)q->group_size, (unsigned long long)q->n_groups);
    (void)m;
    if (!q->qzeros) {
        if (!q->sym) return REFUSE(q, "missing part 'qzeros' of an asymmetric linear");
        q->zero = MP_QZERO_IMPLIED;
        return MP_OK;
    }
    MP_FORWARD(want_2d(q, q->qzeros, "qzeros", is_int32, "I32", err));
    uint64_t zw = ceil_div(q->n_rows * q->bits, 32);
    if (q->qzeros->shape[0] != q->n_groups || q->qzeros->shape[1] != zw)
        return REFUSE(q, "qzeros is [%llu, %llu], expected [%llu, %llu]",
                      (unsigned long long)q->qzeros->shape[0], (unsigned long long)q->qzeros->shape[1],
                      (unsigned long long)q->n_groups, (unsigned long long)zw);
    q->zero = MP_QZERO_GPTQ;
    return MP_OK;
}

static mp_errcode shape_awq_gemm(mp_qlinear *q, int64_t gs, mp_err *err)
{
    const mp_tensor *w = q->qweight, *s = q->scales;
    MP_FORWARD(want_2d(q, w, "qweight", is_int32, "I32", err));
    MP_FORWARD(want_2d(q, s, "scales", is_float, "F16, BF16 or F32", err));
    q->n_rows = s->shape[1];
    q->k_cols = w->shape[0];
    if (w->shape[1] * 8 != q->n_rows) {
        if (w->shape[1] == q->n_rows)
            return REFUSE(q, "shapes are GPTQ's (qweight [K*b/32, N]) but the config says AWQ %s",
                          q->format);
        return REFUSE(q, "qweight has %llu columns but N = %llu needs N/8 = %llu",
                      (unsigned long long)w->shape[1], (unsigned long long)q->n_rows,
                      (unsigned long long)(q->n_rows / 8));
    }
    MP_FORWARD(derive_groups(q, gs, err));
    if (s->shape[0] != q->n_groups)
        return REFUSE(q, "scales have %llu groups but K = %llu with group size %llu gives %llu",
                      (unsigned long long)s->shape[0], (unsigned long long)q->k_cols,
                      (unsigned long long)q->group_size, (unsigned long long)q->n_groups);
    if (!q->qzeros) return REFUSE(q, "missing part 'qzeros' (AWQ GEMM is always asymmetric)");
    MP_FORWARD(want_2d(q, q->qzeros, "qzeros", is_int32, "I32", err));
    if (q->qzeros->shape[0] != q->n_groups || q->qzeros->shape[1] != w->shape[1])
        return REFUSE(q, "qzeros is [%llu, %llu], expected [%llu, %llu]",
                      (unsigned long long)q->qzeros->shape[0], (unsigned long long)q->qzeros->shape[1],
                      (unsigned long long)q->n_groups, (unsigned long long)w->shape[1]);
    q->zero = MP_QZERO_AWQ_GEMM;
    return MP_OK;
}

static mp_errcode shape_awq_gemv(mp_qlinear *q, int64_t gs, mp_err *err)
{
    const mp_tensor *w = q->qweight, *s = q->scales;
    MP_FORWARD(want_2d(q, w, "qweight", is_int32, "I32", err));
    MP_FORWARD(want_2d(q, s, "scales", is_float, "F16, BF16 or F32", err));
    q->n_rows = w->shape[0];
    q->k_cols = w->shape[1] * 8;
    MP_FORWARD(derive_groups(q, gs, err));
    if (s->shape[0] != q->n_rows || s->shape[1] < q->n_groups)
        return REFUSE(q, "scales are [%llu, %llu], expected [%llu, >= %llu]",
                      (unsigned long long)s->shape[0], (unsigned long long)s->shape[1],
                      (unsigned long long)q->n_rows, (unsigned long long)q->n_groups);
    q->scales_nk = 1;
    if (!q->qzeros) return REFUSE(q, "missing part 'qzeros'");
    MP_FORWARD(want_2d(q, q->qzeros, "qzeros", is_int32, "I32", err));
    if (q->qzeros->shape[0] != q->n_rows || q->qzeros->shape[1] * 8 < q->n_groups)
        return REFUSE(q, "qzeros are [%llu, %llu], expected [%llu, >= %llu]",
                      (unsigned long long)q->qzeros->shape[0], (unsigned long long)q->qzeros->shape[1],
                      (unsigned long long)q->n_rows, (unsigned long long)ceil_div(q->n_groups, 8));
    q->zero = MP_QZERO_AWQ_GEMV;
    return MP_OK;
}

static mp_errcode shape_ct(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    const mp_tensor *w = q->qweight, *s = q->scales, *ws = q->shape;
    if (!ws) return REFUSE(q, "missing part 'weight_shape'");
    if (ws->n_dims != 1 || ws->shape[0] != 2 ||
        (ws->dtype != MP_DTYPE_I64 && ws->dtype != MP_DTYPE_I32))
        return REFUSE(q, "'weight_shape' must be 2 integers (I64 or I32)");
    uint8_t raw[16];
    MP_FORWARD(mp_st_read(m, ws, 0, raw, (size_t)ws->n_bytes, err));
    uint64_t nk[2];
    for (int i = 0; i < 2; i++) {
        int64_t v = ws->dtype == MP_DTYPE_I64 ? (int64_t)mp_read_le64(raw + 8 * i)
                                              : (int32_t)mp_read_le32(raw + 4 * i);
        if (v <= 0 || v > (int64_t)1 << 40) return REFUSE(q, "'weight_shape' holds %lld", (long long)v);
        nk[i] = (uint64_t)v;
    }
    q->n_rows = nk[0];
    q->k_cols = nk[1];
    MP_FORWARD(want_2d(q, w, "weight_packed", is_int32, "I32", err));
    MP_FORWARD(want_2d(q, s, "weight_scale", is_float, "F16, BF16 or F32", err));
    uint64_t dense = ceil_div(q->k_cols * q->bits, 32), per = 32 / q->bits;
    if (w->shape[0] != q->n_rows)
        return REFUSE(q, "weight_packed has %llu rows but weight_shape says N = %llu",
                      (unsigned long long)w->shape[0], (unsigned long long)q->n_rows);
    if (w->shape[1] == dense) q->fields_per_word = 0;
    else if (w->shape[1] == ceil_div(q->k_cols, per)) q->fields_per_word = (uint32_t)per;
    else
        return REFUSE(q, "weight_packed has %llu words a row but K = %llu at %u bits needs %llu",
                      (unsigned long long)w->shape[1], (unsigned long long)q->k_cols, q->bits,
                      (unsigned long long)dense);
    MP_FORWARD(derive_groups(q, gs, err));
    if (s->shape[0] != q->n_rows || s->shape[1] != q->n_groups)
        return REFUSE(q, "weight_scale is [%llu, %llu], expected [%llu, %llu]",
                      (unsigned long long)s->shape[0], (unsigned long long)s->shape[1],
                      (unsigned long long)q->n_rows, (unsigned long long)q->n_groups);
    q->scales_nk = 1;
    if (!q->qzeros) {
        if (!q->sym) return REFUSE(q, "missing part 'weight_zero_point' of an asymmetric linear");
        q->zero = MP_QZERO_IMPLIED;
        return MP_OK;
    }
    MP_FORWARD(want_2d(q, q->qzeros, "weight_zero_point", is_int32, "I32", err));
    uint64_t rows = q->fields_per_word ? ceil_div(q->n_rows, per) : ceil_div(q->n_rows * q->bits, 32);
    if (q->qzeros->shape[0] != rows || q->qzeros->shape[1] != q->n_groups)
        return REFUSE(q, "weight_zero_point is [%llu, %llu], expected [%llu, %llu]",
                      (unsigned long long)q->qzeros->shape[0], (unsigned long long)q->qzeros->shape[1],
                      (unsigned long long)rows, (unsigned long long)q->n_groups);
    q->zero = MP_QZERO_CT;
    return MP_OK;
}

/* cutlass-int4: qweight uint8 [N, K/2], scales [N, G], zero implied 8. */
static mp_errcode shape_cutlass(mp_qlinear *q, int64_t gs, mp_err *err)
{
    const mp_tensor *w = q->qweight, *s = q->scales;
    MP_FORWARD(want_2d(q, w, "qweight", is_byte, "U8", err));
    MP_FORWARD(want_2d(q, s, "scales", is_float, "F16, BF16 or F32", err));
    q->n_rows = w->shape[0];
    q->k_cols = w->shape[1] * 2;
    MP_FORWARD(derive_groups(q, gs, err));
    if (s->shape[0] != q->n_rows || s->shape[1] != q->n_groups)
        return REFUSE(q, "scales are [%llu, %llu], expected [%llu, %llu]",
                      (unsigned long long)s->shape[0], (unsigned long long)s->shape[1],
                      (unsigned long long)q->n_rows, (unsigned long long)q->n_groups);
    if (q->qzeros) return REFUSE(q, "cutlass-int4 has no zero points, but the checkpoint has some");
    q->scales_nk = 1;
    q->zero = MP_QZERO_IMPLIED;
    return MP_OK;
}

/* onednn-int4: qweight int32 [N, K/8], scales [G, N], qzeros int32 [G, N/8] (raw z) if asym. */
static mp_errcode shape_onednn(mp_qlinear *q, int64_t gs, mp_err *err)
{
    const mp_tensor *w = q->qweight, *s = q->scales;
    MP_FORWARD(want_2d(q, w, "qweight", is_int32, "I32", err));
    MP_FORWARD(want_2d(q, s, "scales", is_float, "F16, BF16 or F32", err));
    q->n_rows = w->shape[0];
    q->k_cols = w->shape[1] * 8;
    MP_FORWARD(derive_groups(q, gs, err));
    if (s->shape[0] != q->n_groups || s->shape[1] != q->n_rows)
        return REFUSE(q, "scales are [%llu, %llu], expected [%llu, %llu]",
                      (unsigned long long)s->shape[0], (unsigned long long)s->shape[1],
                      (unsigned long long)q->n_groups, (unsigned long long)q->n_rows);
    if (!q->qzeros) {
        if (!q->sym) return REFUSE(q, "missing part 'qzeros' of an asymmetric linear");
        q->zero = MP_QZERO_IMPLIED;
        return MP_OK;
    }
    MP_FORWARD(want_2d(q, q->qzeros, "qzeros", is_int32, "I32", err));
    if (q->qzeros->shape[0] != q->n_groups || q->qzeros->shape[1] * 8 != q->n_rows)
        return REFUSE(q, "qzeros is [%llu, %llu], expected [%llu, %llu]",
                      (unsigned long long)q->qzeros->shape[0], (unsigned long long)q->qzeros->shape[1],
                      (unsigned long long)q->n_groups, (unsigned long long)(q->n_rows / 8));
    q->zero = MP_QZERO_GPTQ;
    return MP_OK;
}

/* g_idx must name existing groups; act-order is any k whose group is not k / group_size. */
static mp_errcode check_g_idx(const mp_st_model *m, mp_qlinear *q, mp_err *err)
{
    const mp_tensor *g = q->g_idx;
    if (!g) return MP_OK;
    if (g->n_dims != 1 || g->shape[0] != q->k_cols || !is_int32(g))
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

static mp_errcode build_linear(mp_qmodel *qm, const mp_st_model *m, const char *prefix, mp_err *err)
{
    const qconfig *c = &qm->cfg;
    qparams p;
    int ct = c->pack == MP_QPACK_CT;
    const char *wname = ct ? "weight_packed" : "qweight";
    if (!mp_qconfig_resolve(c, prefix, &p))
        return mp_errf_at(err, MP_E_INPUT, c->source, prefix, -1,
                          "the config leaves this linear unquantized but the checkpoint has "
                          "'%s.%s'", prefix, wname);
    mp_qlinear *v = realloc(qm->linears, (qm->n_linears + 1) * sizeof *v);
    if (!v) return mp_errf(err, MP_E_NOMEM, "out of memory");
    qm->linears = v;
    mp_qlinear *q = &qm->linears[qm->n_linears];
    memset(q, 0, sizeof *q);
    q->prefix = mp_strdup(prefix);
    if (!q->prefix) return mp_errf(err, MP_E_NOMEM, "out of memory");
    qm->n_linears++;
    q->method = c->method;
    q->pack = c->pack;
    q->format = c->format;
    q->zero_offset = c->zero_offset;
    q->code_xor = c->code_xor;
    q->sym = p.sym > 0;
    if (p.bits < 0) return REFUSE(q, "the config gives no bit width");
    q->bits = (uint32_t)p.bits;
    q->qweight = sibling(m, prefix, wname);
    q->scales = sibling(m, prefix, ct ? "weight_scale" : "scales");
    q->qzeros = sibling(m, prefix, ct ? "weight_zero_point" : "qzeros");
    q->g_idx = sibling(m, prefix, ct ? "weight_g_idx" : "g_idx");
    q->shape = ct ? sibling(m, prefix, "weight_shape") : NULL;
    q->bias = sibling(m, prefix, "bias");
    MP_FORWARD(check_bits(q, err));
    if (!q->scales) return REFUSE(q, "missing part '%s'", ct ? "weight_scale" : "scales");
    mp_errcode rc;
    switch (q->pack) {
    case MP_QPACK_GPTQ: rc = shape_gptq(m, q, p.group_size, err); break;
    case MP_QPACK_AWQ_GEMM: rc = shape_awq_gemm(q, p.group_size, err); break;
    case MP_QPACK_AWQ_GEMV: rc = shape_awq_gemv(q, p.group_size, err); break;
    case MP_QPACK_CUTLASS: rc = shape_cutlass(q, p.group_size, err); break;
    case MP_QPACK_ONEDNN: rc = shape_onednn(q, p.group_size, err); break;
    default: rc = shape_ct(m, q, p.group_size, err); break;
    }
    if (rc == MP_OK && q->g_idx && q->pack != MP_QPACK_GPTQ && q->pack != MP_QPACK_CT)
        rc = REFUSE(q, "this layout has no g_idx, but the checkpoint has one");
    if (rc == MP_OK) rc = check_g_idx(m, q, err);
    if (rc != MP_OK) {
        if (err->file[0] == '\0') mp_err_set_file(err, c->source);
        return rc;
    }
    size_t idx = qm->n_linears - 1;
    const mp_tensor *parts[] = {q->qweight, q->scales, q->qzeros, q->g_idx, q->bias, q->shape};
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
                              qm->cfg.pack == MP_QPACK_CT ? "weight_packed" : "qweight");
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

mp_errcode mp_qmodel_open(mp_qmodel **out, const mp_st_model *m, mp_err *err)
{
    *out = NULL;
    mp_qmodel *qm = calloc(1, sizeof *qm);
    if (!qm) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = mp_qconfig_load(&qm->cfg, mp_st_dir(m), err);
    if (rc == MP_OK && qm->cfg.present) {
        const char *suffix = qm->cfg.pack == MP_QPACK_CT ? "weight_packed" : "qweight";
        for (size_t i = 0; i < mp_st_n_tensors(m) && rc == MP_OK; i++) {
            const char *name = mp_st_tensor(m, i)->name;
            if (!ends_with(name, suffix)) continue;
            size_t len = strlen(name) - strlen(suffix) - 1;
            char prefix[1024];
            if (len >= sizeof prefix) {
                rc = mp_errf_at(err, MP_E_UNSUPPORTED, NULL, name, -1, "tensor name too long");
                break;
            }
            memcpy(prefix, name, len);
            prefix[len] = '\0';
            rc = build_linear(qm, m, prefix, err);
        }
    }
    if (rc == MP_OK && qm->n_owners) qsort(qm->owners, qm->n_owners, sizeof *qm->owners, cmp_owner);
    if (rc == MP_OK) rc = check_orphans(qm, m, err);
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
