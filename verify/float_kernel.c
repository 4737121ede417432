/*
 * float_kernel.c - what the float families of kernels/ (fp8.cl, fp4.cl, bnb4.cl, bnb8.cl) are
 * given for one linear: its codes and scales as the files hold them, and the parameter words
 * that say how to decode them (kernels/mp_kernel.h, "float families"). Nothing is decoded here:
 * the kernel decodes every code and scale itself, the reference (dequant_float.c, dequant_fp4.c,
 * dequant_bnb.c) on its own, and numerics.c compares the two bit for bit.
 */
#include "check.h"

#include <stdlib.h>
#include <string.h>

/* 1 for BF16, 2 for F16, 0 for anything else (no rounding): the kernels' P_PRE / P_POST. */
static uint32_t round_code(mp_dtype t) { return t == MP_DTYPE_BF16 ? 1u : t == MP_DTYPE_F16 ? 2u : 0u; }

static mp_errcode fp8_params(const mp_qlinear *q, uint32_t *P, mp_err *err)
{
    mp_dtype sdt = q->scales->dtype;
    if (sdt != MP_DTYPE_F16 && sdt != MP_DTYPE_BF16 && sdt != MP_DTYPE_F32 && sdt != MP_DTYPE_F8_E8M0)
        return mp_errf_at(err, MP_E_UNSUPPORTED, NULL, q->scales->name, -1, "FP8 scales of dtype %s",
                          mp_dtype_name(sdt));
    P[MP_P_ELEM] = q->elem_dtype == MP_DTYPE_F8_E5M2;
    P[MP_P_BN] = (uint32_t)q->block_n;
    P[MP_P_GSIZE] = (uint32_t)q->block_k;
    P[MP_P_SDT] = sdt == MP_DTYPE_F16 ? 0 : sdt == MP_DTYPE_BF16 ? 1 : sdt == MP_DTYPE_F32 ? 2 : 3;
    P[MP_P_SSTRIDE] = (uint32_t)q->scale_cols;
    P[MP_P_QSTRIDE] = (uint32_t)q->k_cols;
    P[MP_P_PRE] = q->scheme->fround == MP_FROUND_MODEL_DTYPE ? round_code(q->round_dtype) : 0;
    P[MP_P_POST] = q->scheme->fround == MP_FROUND_SCALE_DTYPE ? round_code(sdt) : 0;
    return q->block_n && q->block_k ? MP_OK
                                    : mp_errf_at(err, MP_E_INPUT, NULL, q->scales->name, -1, "an empty scale block");
}

static mp_errcode fp4_params(const mp_st_model *m, const mp_qlinear *q, uint32_t *P, mp_err *err)
{
    const mp_scheme *s = q->scheme;
    P[MP_P_ELEM] = q->scales->dtype != MP_DTYPE_F8_E4M3;
    P[MP_P_GSIZE] = (uint32_t)q->block_k;
    P[MP_P_SSTRIDE] = (uint32_t)q->scale_cols;
    P[MP_P_QSTRIDE] = (uint32_t)(q->k_cols / 2);
    P[MP_P_FLAGS] = (s->global_divides ? MP_FL_GDIV : 0) | (s->fp4_zero_positive ? MP_FL_ZPOS : 0) |
                    (s->fp4_ldexp ? MP_FL_LDEXP : 0) | (s->e8m0_nan ? MP_FL_E8NAN : 0);
    if (!q->global_scale) return MP_OK;
    uint8_t g[4];
    MP_FORWARD(mp_st_read(m, q->global_scale, 0, g, 4, err));
    P[MP_P_FLAGS] |= MP_FL_GLOBAL;
    P[MP_P_GLOBAL] = mp_read_le32(g);
    return MP_OK;
}

/* bnb4's zp: the nested quant map (256 f32), then the nested absmax. */
static mp_errcode bnb4_nested(const mp_st_model *m, const mp_qlinear *q, mp_kernel_data *kd, void **own,
                              mp_err *err)
{
    const mp_tensor *nabs = q->aux[1], *map = q->aux[2];
    size_t bytes = 1024 + (size_t)nabs->n_bytes;
    uint8_t *zp = malloc(bytes);
    if (!zp) return mp_errf(err, MP_E_NOMEM, "out of memory");
    *own = zp;
    MP_FORWARD(mp_st_read(m, map, 0, zp, 1024, err));
    MP_FORWARD(mp_st_read(m, nabs, 0, zp + 1024, (size_t)nabs->n_bytes, err));
    kd->zp = zp, kd->zp_bytes = bytes;
    kd->P[MP_P_FLAGS] = MP_FL_NESTED;
    kd->P[MP_P_BN] = (uint32_t)q->nested_block;
    kd->P[MP_P_GLOBAL] = mp_f32_bits(q->nested_offset);
    return MP_OK;
}

mp_errcode mp_float_kernel_data(const mp_st_model *m, const mp_qlinear *q, mp_kernel_data *kd, void *own[4],
                                mp_err *err)
{
    uint32_t *P = kd->P;
    P[MP_P_N] = (uint32_t)q->n_rows;
    P[MP_P_K] = (uint32_t)q->k_cols;
    P[MP_P_G] = (uint32_t)q->scale_cols;
    MP_FORWARD(mp_verify_read_whole(m, q->qweight, &own[0], &kd->qw_bytes, err));
    MP_FORWARD(mp_verify_read_whole(m, q->scales, &own[1], &kd->sc_bytes, err));
    kd->qw = own[0], kd->sc = own[1];
    switch (q->scheme->elem) {
    case MP_ELEM_FLOAT8: return fp8_params(q, P, err);
    case MP_ELEM_FP4: return fp4_params(m, q, P, err);
    case MP_ELEM_LUT4:
        P[MP_P_ELEM] = q->elem_text && strcmp(q->elem_text, "FP4") == 0;
        P[MP_P_GSIZE] = (uint32_t)q->block_k;
        P[MP_P_POST] = round_code(q->round_dtype);
        return q->nested ? bnb4_nested(m, q, kd, &own[2], err) : MP_OK;
    case MP_ELEM_INT8_ABSMAX:
        P[MP_P_QSTRIDE] = (uint32_t)q->k_cols;
        return MP_OK;
    default:
        return mp_errf_at(err, MP_E_UNSUPPORTED, NULL, q->prefix, -1, "no float kernel for this element kind");
    }
}
