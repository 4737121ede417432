/*
 * scheme_bnb8.c - bitsandbytes LLM.int8 checkpoints (quant_method "bitsandbytes", load_in_8bit),
 * reached through the bitsandbytes config reader in scheme_bnb4.c.
 *
 * Bytes, per quantized linear <m> (doc/formats/bitsandbytes.md §4):
 *   <m>.weight          I8 [N, K], row-major
 *   <m>.SCB             F32 [N]: each row's absmax, the marker that makes a linear
 *   <m>.weight_format   U8 [] (optional): 0 = "row", the only layout bitsandbytes still loads
 * w[n][k] = f32(f32(q * SCB[n]) * f32(1/127)), as bitsandbytes' int8_vectorwise_dequant
 * computes it, then one rounding to the output dtype (§5).
 */
#include "scheme_internal.h"

#include <stdio.h>
#include <string.h>

static int is_i8(const mp_tensor *t) { return t->dtype == MP_DTYPE_I8; }

static mp_errcode check_format(const mp_st_model *m, const mp_qlinear *q, mp_err *err)
{
    const mp_tensor *f = q->aux[0];
    if (!f) return MP_OK;
    if (f->dtype != MP_DTYPE_U8 || f->n_elems != 1)
        return mp_errf_at(err, MP_E_INPUT, mp_st_file_name(m, f->file), f->name, -1,
                          "'weight_format' is %s of %llu elements, expected one U8", mp_dtype_name(f->dtype),
                          (unsigned long long)f->n_elems);
    uint8_t v = 0;
    MP_FORWARD(mp_st_read(m, f, 0, &v, 1, err));
    if (v != 0)
        return mp_errf_at(err, MP_E_INPUT, mp_st_file_name(m, f->file), f->name, -1,
                          "'weight_format' is %u (a legacy col32/turing/ampere layout); only 0 (row) "
                          "is supported, as bitsandbytes itself loads", v);
    return MP_OK;
}

static mp_errcode shape_bnb8(const mp_st_model *m, mp_qlinear *q, int64_t gs, mp_err *err)
{
    (void)gs;
    MP_FORWARD(mp_qc_want_2d(q, q->qweight, "weight", is_i8, "I8", err));
    q->n_rows = q->qweight->shape[0];
    q->k_cols = q->qweight->shape[1];
    if (!q->n_rows || !q->k_cols) return MP_REFUSE_LINEAR(q, "'weight' is empty");
    const mp_tensor *s = q->scales;
    if (s->dtype != MP_DTYPE_F32 || s->n_dims != 1 || s->shape[0] != q->n_rows) {
        char got[96];
        mp_shape_format(s, got, sizeof got);
        return mp_errf_at(err, MP_E_INPUT, mp_st_file_name(m, s->file), s->name, -1,
                          "'SCB' is %s %s, expected F32 [%llu] (one absmax per row of weight)",
                          mp_dtype_name(s->dtype), got, (unsigned long long)q->n_rows);
    }
    MP_FORWARD(check_format(m, q, err));
    q->group_size = q->k_cols;
    q->n_groups = 1;
    q->elem_dtype = MP_DTYPE_I8;
    q->scale_kind = MP_FSCALE_CHANNEL;
    q->block_n = 1;
    q->block_k = q->k_cols;
    q->scale_rows = q->n_rows;
    q->scale_cols = 1;
    q->zero = MP_QZERO_IMPLIED;
    q->sym = 1;
    return MP_OK;
}

static const char *const markers[] = {"SCB", NULL};

const mp_scheme mp_scheme_bnb8 = {
    .name = "bnb-int8",
    .summary = "bitsandbytes LLM.int8 (load_in_8bit): weight I8 [N, K], SCB F32 [N] row absmax",
    .roles = MP_SCHEME_SOURCE,
    .methods = NULL, /* announced as bitsandbytes with load_in_8bit */
    .method = MP_QM_BNB,
    .pack = MP_QPACK_INT8_ROWS,
    .codes_name = "weight",
    .scales_name = "SCB",
    .codes = {.container_bytes = 1, .bits = 8, .along_rows = 1, .string_is_n = 1},
    .zenc = MP_ZENC_IMPLIED,
    .scales_nk = 1,
    .bits_mask = 1u << 8,
    .bits_text = "8-bit integers",
    .check_shapes = shape_bnb8,
    .elem = MP_ELEM_INT8_ABSMAX,
    .is_codes = is_i8,
    .fround = MP_FROUND_F32,
    .scale_text = "multiply /127",
    .markers = markers,
    .aux_names = {"weight_format"},
    .kernel = "bnb8",
};
