/*
 * fp4_linear.c - what the FP4 registry entries share (NVFP4 and MXFP4, doc/formats/fp4.md):
 * their config parameters and the shape rules of their codes, block scales and per-tensor
 * scale. Each entry (scheme_ct_nvfp4.c, scheme_modelopt_nvfp4.c, scheme_mxfp4.c,
 * scheme_ct_mxfp4.c) says which dtypes its scales take and calls these.
 *
 * Codes are E2M1, two a byte along K, element 2i in the low nibble (doc/formats/fp4.md §2), so a
 * row of K elements is K/2 bytes; one block scale covers `fp4_group` consecutive elements of a
 * row (16 for NVFP4, 32 for MXFP4), and K must be a multiple of it: no producer writes a
 * partial block (§2).
 */
#include "scheme_internal.h"

#include <stdio.h>
#include <string.h>

#define REFUSE MP_REFUSE_LINEAR

mp_errcode mp_qc_fp4_params(qconfig *c, const mp_scheme *L, int64_t group_size, const char *where,
                            qparams *p, mp_err *err)
{
    if (group_size > 0 && (uint64_t)group_size != L->fp4_group)
        return MP_UNSUPPORTED_CONFIG(err, c, "%s%sgroup_size %lld is not %s's (%u)", where,
                                     where[0] ? ": " : "", (long long)group_size, L->name, L->fp4_group);
    if (p->bits > 0 && p->bits != 4)
        return MP_UNSUPPORTED_CONFIG(err, c, "%s%s%d-bit weights in %s (4 is)", where,
                                     where[0] ? ": " : "", p->bits, L->name);
    p->bits = 4;
    p->sym = 1;
    p->group_size = (int64_t)L->fp4_group;
    p->fscale = MP_FSCALE_GROUP;
    p->block_n = 1;
    p->block_k = (int64_t)L->fp4_group;
    c->layout = L;
    return MP_OK;
}

mp_errcode mp_ct_fp4_group(qconfig *c, const cJSON *g, const cJSON *w, const mp_scheme *L,
                           qparams *p, mp_err *err)
{
    if (p->sym == 0)
        return MP_UNSUPPORTED_CONFIG(err, c, "config group '%.100s': asymmetric float weights are "
                                             "not supported", g->string);
    if (c->layout->elem != MP_ELEM_INT && c->layout != L) /* one layout a checkpoint (mixed-precision) */
        return MP_UNSUPPORTED_CONFIG(err, c, "config group '%.100s': %s beside %s; one float format per "
                                             "checkpoint is supported", g->string, L->name, c->layout->name);
    const char *strategy = mp_qc_str(w, "strategy");
    if (strategy && strcmp(strategy, "tensor_group") != 0 && strcmp(strategy, "group") != 0)
        return MP_UNSUPPORTED_CONFIG(err, c, "config group '%.100s': strategy '%.20s' of %s "
                                             "(tensor_group or group)", g->string, strategy, L->name);
    char where[128];
    snprintf(where, sizeof where, "config group '%.100s'", g->string);
    MP_FORWARD(mp_qc_fp4_params(c, L, p->group_size, where, p, err));
    snprintf(c->format, sizeof c->format, "%s", L->format_name);
    return MP_OK;
}

mp_errcode mp_qc_fp4_codes(mp_qlinear *q, int64_t group_size, mp_err *err)
{
    const mp_tensor *w = q->qweight;
    const char *part = q->scheme->codes_name;
    uint64_t g = q->scheme->fp4_group, E = 0, N, K;
    if (group_size > 0 && (uint64_t)group_size != g)
        return REFUSE(q, "group size %lld, expected %llu", (long long)group_size, (unsigned long long)g);
    mp_dtype want = q->scheme->fp4_codes_i8 ? MP_DTYPE_I8 : MP_DTYPE_U8;
    if (w->dtype != want)
        return REFUSE(q, "'%s' is %s, expected %s (two E2M1 codes a byte)", part, mp_dtype_name(w->dtype),
                      mp_dtype_name(want));
    char got[96];
    mp_shape_format(w, got, sizeof got);
    if (q->scheme->dense_experts_kn) {
        if (w->n_dims != 4 || w->shape[3] * 2 != g)
            return REFUSE(q, "'%s' is %s, expected [E, N, K/%llu, %llu]", part, got,
                          (unsigned long long)g, (unsigned long long)g / 2);
        E = w->shape[0];
        N = w->shape[0] * w->shape[1];
        K = w->shape[2] * g;
    } else {
        if (w->n_dims != 2)
            return REFUSE(q, "'%s' is %s, expected [N, K/2] (2 dimensions)", part, got);
        N = w->shape[0];
        K = w->shape[1] * 2;
        if (K % g)
            return REFUSE(q, "'%s' is %s: K = %llu is not a multiple of the block of %llu", part,
                          got, (unsigned long long)K, (unsigned long long)g);
    }
    if (N == 0 || K == 0) return REFUSE(q, "'%s' is empty", part);
    q->n_rows = N;
    q->k_cols = K;
    q->n_experts = E;
    q->elem_dtype = MP_DTYPE_F4;
    q->group_size = g;
    q->n_groups = K / g;
    q->scale_kind = MP_FSCALE_GROUP;
    q->block_n = 1;
    q->block_k = g;
    q->scale_rows = N;
    q->scale_cols = K / g;
    q->zero = MP_QZERO_IMPLIED;
    q->sym = 1;
    return MP_OK;
}

mp_errcode mp_qc_fp4_scales(const mp_qlinear *q, int (*ok)(const mp_tensor *), const char *dtypes,
                            mp_err *err)
{
    const mp_tensor *s = q->scales, *w = q->qweight;
    const char *part = q->scheme->scales_name;
    if (!ok(s)) return REFUSE(q, "'%s' is %s, expected %s", part, mp_dtype_name(s->dtype), dtypes);
    char got[96], want[96];
    mp_shape_format(s, got, sizeof got);
    int fits;
    if (q->n_experts) {
        fits = s->n_dims == 3 && s->shape[0] == w->shape[0] && s->shape[1] == w->shape[1] &&
               s->shape[2] == w->shape[2];
        snprintf(want, sizeof want, "[%llu, %llu, %llu]", (unsigned long long)w->shape[0],
                 (unsigned long long)w->shape[1], (unsigned long long)w->shape[2]);
    } else {
        fits = s->n_dims == 2 && s->shape[0] == q->n_rows && s->shape[1] == q->scale_cols;
        snprintf(want, sizeof want, "[%llu, %llu]", (unsigned long long)q->n_rows,
                 (unsigned long long)q->scale_cols);
    }
    if (fits) return MP_OK;
    return REFUSE(q, "'%s' is %s, expected %s: one scale per %llu elements of a row (K = %llu)", part,
                  got, want, (unsigned long long)q->block_k, (unsigned long long)q->k_cols);
}

mp_errcode mp_qc_fp4_global(const mp_qlinear *q, int scalar_ok, mp_err *err)
{
    const mp_tensor *g = q->global_scale;
    const char *part = q->scheme->global_scale_name;
    if (!g) return REFUSE(q, "missing part '%s'", part);
    if (g->dtype != MP_DTYPE_F32) return REFUSE(q, "'%s' is %s, expected F32", part, mp_dtype_name(g->dtype));
    if (g->n_elems == 1 && (g->n_dims == 1 || (scalar_ok && g->n_dims == 0))) return MP_OK;
    char got[96];
    mp_shape_format(g, got, sizeof got);
    return REFUSE(q, "'%s' is %s, expected %s (one per tensor)", part, got, scalar_ok ? "[] or [1]" : "[1]");
}

mp_errcode mp_qc_fp4_weight_shape(const mp_st_model *m, const mp_qlinear *q, mp_err *err)
{
    if (!q->shape) return MP_OK;
    uint64_t nk[2];
    MP_FORWARD(mp_ct_weight_shape(m, q, nk, err));
    if (nk[0] == q->n_rows && nk[1] == q->k_cols) return MP_OK;
    return REFUSE(q, "'weight_shape' says [%llu, %llu] but the codes are [%llu, %llu]", (unsigned long long)nk[0],
                  (unsigned long long)nk[1], (unsigned long long)q->n_rows, (unsigned long long)q->k_cols);
}
