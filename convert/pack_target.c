/*
 * pack_target.c - quantized linears into a packed target layout, one descriptor-driven path:
 * source tile -> canonical codes (repack/tile.c) -> target tile, for any pair of layouts.
 *
 * Refusals (doc/reference.md §3.1) are decided up front, from every linear's zero points and g_idx,
 * before a byte is written: asymmetric zeros into cutlass-int4, act-order into layouts without
 * g_idx, z = 0 into GPTQ v1, bit widths a layout cannot hold.
 */
#define _GNU_SOURCE
#include "pack_target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TILE_CODES (16u << 20) /* canonical codes per tile: one byte each */

#define REFUSE(q, ...) mp_errf_at(err, MP_E_INPUT, NULL, (q)->prefix, -1, __VA_ARGS__)

/* Canonical zero points z[n][g] of a linear, with the scheme's offset applied. */
static mp_errcode read_zeros(const mp_st_model *m, const mp_qlinear *q, const mp_packing *zp,
                             uint16_t *z, mp_err *err)
{
    uint64_t N = q->n_rows, G = q->n_groups;
    if (q->zero == MP_QZERO_IMPLIED) {
        for (uint64_t i = 0; i < N * G; i++) z[i] = (uint16_t)(1u << (q->bits - 1));
        return MP_OK;
    }
    const mp_tensor *t = q->qzeros;
    mp_pblock b = mp_packing_block(zp, t->shape, 0, N, 0, G);
    uint64_t bytes = (b.r1 - b.r0) * (b.c1 - b.c0) * zp->container_bytes;
    b.data = malloc(bytes ? (size_t)bytes : 1);
    uint8_t *codes = malloc((size_t)(N * G));
    mp_errcode rc = MP_OK;
    if (!b.data || !codes) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = mp_st_read_block(m, t, b.r0, b.r1, b.c0, b.c1, b.data, err);
    if (rc == MP_OK) {
        mp_qtile tile = {0, N, 0, G, codes};
        mp_unpack(zp, &b, &tile, 0);
        for (uint64_t i = 0; i < N * G; i++) z[i] = (uint16_t)(codes[i] + q->zero_offset);
    }
    free(b.data);
    free(codes);
    return rc;
}

static mp_dtype default_scale_dtype(const mp_pack_opts *o, const mp_qlinear *q)
{
    if (o->scale_dtype_given) return o->scale_dtype;
    switch (o->target->scales) {
    case MP_SCALES_F16: return MP_DTYPE_F16;
    case MP_SCALES_SOURCE: return q->scales->dtype;
    case MP_SCALES_ACTIVATION:
        /* The XPU kernels read scales as the activation dtype (doc/formats/cutlass-int4.md §2). */
        if (o->torch_dtype && strcmp(o->torch_dtype, "bfloat16") == 0) return MP_DTYPE_BF16;
        if (o->torch_dtype && strcmp(o->torch_dtype, "float16") == 0) return MP_DTYPE_F16;
        return q->scales->dtype;
    }
    return q->scales->dtype;
}

/* The target to suggest when L cannot store linear q: another target that holds its bits and
 * group size and, when `zeros` is set, stores zero points as they are; of L's own kernel family
 * when there is one (gptq -> gptq-v2), else the first in the table. */
static const char *alternative(const mp_scheme *L, const mp_qlinear *q, int zeros)
{
    const mp_scheme *any = NULL;
    for (size_t i = 0; i < mp_scheme_count(); i++) {
        const mp_scheme *s = mp_scheme_at(i);
        int groups_ok = !s->group_sizes;
        for (const uint32_t *g = s->group_sizes; g && *g; g++) groups_ok |= q->group_size == *g;
        if (s == L || !(s->roles & MP_SCHEME_TARGET) || !((s->bits_mask >> q->bits) & 1u) ||
            !groups_ok || (zeros && s->zenc != MP_ZENC_RAW))
            continue;
        if (L->kernel && s->kernel && strcmp(s->kernel, L->kernel) == 0) return s->name;
        if (!any) any = s;
    }
    return any ? any->name : "bf16";
}

/* The target's geometric limits on one linear: N and K multiples, the group sizes its consumer
 * takes. */
static mp_errcode check_geometry(const mp_scheme *L, const mp_qlinear *q, mp_err *err)
{
    if (q->n_rows % L->n_multiple)
        return REFUSE(q, "N = %llu is not a multiple of %u, which %s needs",
                      (unsigned long long)q->n_rows, L->n_multiple, L->name);
    if (q->k_cols % L->k_multiple)
        return REFUSE(q, "K = %llu does not fill whole %s words", (unsigned long long)q->k_cols, L->name);
    if (!L->group_sizes) return MP_OK;
    for (const uint32_t *g = L->group_sizes; *g; g++)
        if (q->group_size == *g) return MP_OK;
    return REFUSE(q, "group size %llu: %s; use --to %s or --to bf16", (unsigned long long)q->group_size,
                  L->group_hint, alternative(L, q, 0));
}

mp_errcode mp_pack_prepare(const mp_st_model *m, const mp_qmodel *qm, const mp_pack_opts *o,
                           mp_lin_plan *plans, mp_err *err)
{
    const mp_scheme *L = o->target;
    size_t n = mp_qmodel_n_linears(qm);
    int all_sym = 1, any_act = 0;
    for (size_t i = 0; i < n; i++) {
        const mp_qlinear *q = mp_qmodel_linear(qm, i);
        mp_lin_plan *p = &plans[i];
        memset(p, 0, sizeof *p);
        p->src = q;
        mp_layout_source(q, &p->src_codes, &p->src_zeros);
        if (!((L->bits_mask >> q->bits) & 1u))
            return REFUSE(q, "%u-bit codes cannot be written as %s; convert with --to bf16", q->bits,
                          L->name);
        if (q->act_order && !L->act_order_ok)
            return REFUSE(q, "act-order (a non-trivial g_idx) cannot be expressed in %s; use "
                             "--to gptq-v2, --to compressed-tensors or --to bf16", L->name);
        MP_FORWARD(check_geometry(L, q, err));
        uint64_t N = q->n_rows, G = q->n_groups;
        uint16_t *z = malloc((size_t)(N * G) * sizeof *z);
        if (!z) return mp_errf(err, MP_E_NOMEM, "out of memory");
        mp_errcode rc = read_zeros(m, q, &p->src_zeros, z, err);
        uint32_t mid = 1u << (q->bits - 1), mask = (1u << q->bits) - 1u;
        int sym_here = 1;
        for (uint64_t e = 0; rc == MP_OK && e < N * G; e++) {
            uint32_t zv = z[e];
            unsigned long long row = (unsigned long long)(e / G), grp = (unsigned long long)(e % G);
            sym_here &= zv == mid;
            if (L->zenc == MP_ZENC_IMPLIED && zv != mid)
                rc = REFUSE(q, "zero point %u at row %llu, group %llu: %s has no zero points (8 is "
                               "implied); use --to %s or --to bf16", zv, row, grp, L->name,
                            alternative(L, q, 1));
            else if (L->zenc == MP_ZENC_MINUS1 && zv == 0)
                rc = REFUSE(q, "zero point 0 at row %llu, group %llu cannot be stored in GPTQ v1, "
                               "which stores z - 1; use --to %s", row, grp,
                            alternative(L, q, 1));
            else if (zv > (L->zenc == MP_ZENC_MINUS1 ? mask + 1 : mask))
                rc = REFUSE(q, "zero point %u at row %llu, group %llu does not fit in %u bits "
                               "(a GPTQ v1 field of %u)", zv, row, grp, q->bits, zv - 1);
        }
        free(z);
        if (rc != MP_OK) return rc;
        all_sym &= sym_here;
        any_act |= q->act_order;
        p->dst_codes = L->codes;
        p->dst_codes.bits = q->bits;
        p->dst_zeros = L->zeros;
        p->dst_zeros.bits = q->bits;
        p->scale_dtype = default_scale_dtype(o, q);
        const mp_qlinear *f = plans[0].src;
        if (!L->per_module_params &&
            (q->bits != f->bits || (q->n_groups > 1 && f->n_groups > 1 && q->group_size != f->group_size)))
            return REFUSE(q, "%u bits, group size %llu differ from '%s' (%u bits, group size %llu): "
                             "mixed parameters need per-module overrides, which only gptq and gptq-v2 write; "
                             "convert with --to gptq-v2 or --to bf16",
                          q->bits, (unsigned long long)q->group_size, f->prefix, f->bits,
                          (unsigned long long)f->group_size);
    }
    for (size_t i = 0; i < n; i++) {
        plans[i].write_zeros = L->zenc != MP_ZENC_IMPLIED && (L->zeros_when_sym || !all_sym);
        plans[i].write_g_idx = L->act_order_ok && (!L->g_idx_only_if_act || any_act);
    }
    return MP_OK;
}

int mp_pack_part_spec(const mp_pack_opts *o, const mp_lin_plan *p, mp_part part, char *name,
                      size_t cap, mp_tensor_spec *spec)
{
    const mp_scheme *L = o->target;
    const mp_qlinear *q = p->src;
    const char *suffix = NULL;
    memset(spec, 0, sizeof *spec);
    spec->n_dims = 2;
    switch (part) {
    case PART_CODES:
        suffix = L->codes_name;
        spec->dtype = p->dst_codes.container_bytes == 1 ? MP_DTYPE_U8 : MP_DTYPE_I32;
        mp_packing_shape(&p->dst_codes, q->n_rows, q->k_cols, spec->shape);
        break;
    case PART_ZEROS:
        if (!p->write_zeros) return 0;
        suffix = L->zeros_name;
        spec->dtype = MP_DTYPE_I32;
        mp_packing_shape(&p->dst_zeros, q->n_rows, q->n_groups, spec->shape);
        break;
    case PART_SCALES:
        suffix = L->scales_name;
        spec->dtype = p->scale_dtype;
        spec->shape[0] = L->scales_nk ? q->n_rows : q->n_groups;
        spec->shape[1] = L->scales_nk ? q->n_groups : q->n_rows;
        break;
    case PART_GIDX:
        if (!p->write_g_idx) return 0;
        suffix = L->g_idx_name;
        spec->dtype = MP_DTYPE_I32;
        spec->n_dims = 1;
        spec->shape[0] = q->k_cols;
        break;
    default:
        if (!L->shape_name) return 0;
        suffix = L->shape_name;
        spec->dtype = MP_DTYPE_I64;
        spec->n_dims = 1;
        spec->shape[0] = 2;
        break;
    }
    snprintf(name, cap, "%s.%s", q->prefix, suffix);
    spec->name = name;
    return 1;
}

/* ------------------------------------------------------------ producers */

/* A scratch buffer of at least `need` bytes, contents not kept, on a 64-byte line boundary: the
 * repack's streaming stores write whole lines only where its rows start on one. */
static uint8_t *grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (need > *cap) {
        size_t size = (need + 63) / 64 * 64;
        uint8_t *p = aligned_alloc(64, size);
        if (!p) return NULL;
        free(*buf);
        *buf = p;
        *cap = size;
    }
    return *buf;
}

void mp_pack_scratch_release(mp_pack_scratch *s)
{
    free(s->src);
    free(s->dst);
    memset(s, 0, sizeof *s);
}

static mp_errcode produce_codes(const mp_st_model *m, const mp_pack_opts *o, const mp_lin_plan *p,
                                mp_pack_scratch *sc, mp_sink sink, void *ctx, mp_err *err)
{
    const mp_qlinear *q = p->src;
    const mp_packing *sp = &p->src_codes, *dp = &p->dst_codes;
    uint64_t N = q->n_rows, K = q->k_cols, dshape[2];
    mp_packing_shape(dp, N, K, dshape);
    uint32_t dxor = o->target->signed_int4 && o->s4 ? 8u : 0u;
    /* Tiles follow the target's rows so that its bytes come out in file order. */
    int by_n = dp->along_rows && dp->string_is_n;
    uint64_t step;
    if (by_n) {
        step = TILE_CODES / K;
        step = step >= 8 ? step / 8 * 8 : 8;
    } else {
        step = TILE_CODES / N;
        step = step >= 32 ? step / 32 * 32 : 32; /* 32 codes = b whole words, any b */
    }
    uint64_t total = by_n ? N : K;
    mp_errcode rc = MP_OK;
    for (uint64_t a = 0; a < total && rc == MP_OK; a += step) {
        uint64_t b_ = a + step < total ? a + step : total;
        mp_qtile t = by_n ? (mp_qtile){a, b_, 0, K, NULL} : (mp_qtile){0, N, a, b_, NULL};
        mp_pblock src = mp_packing_block(sp, q->qweight->shape, t.n0, t.n1, t.k0, t.k1);
        mp_pblock dst = mp_packing_block(dp, dshape, t.n0, t.n1, t.k0, t.k1);
        uint64_t sbytes = (src.r1 - src.r0) * (src.c1 - src.c0) * sp->container_bytes;
        uint64_t dbytes = (dst.r1 - dst.r0) * (dst.c1 - dst.c0) * dp->container_bytes;
        src.data = grow(&sc->src, &sc->src_cap, sbytes ? (size_t)sbytes : 1);
        dst.data = grow(&sc->dst, &sc->dst_cap, dbytes ? (size_t)dbytes : 1);
        if (!src.data || !dst.data) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        if (rc == MP_OK) rc = mp_st_read_block(m, q->qweight, src.r0, src.r1, src.c0, src.c1, src.data, err);
        if (rc == MP_OK)
            rc = mp_repack_region(sp, &src, q->code_xor, dp, &dst, dxor, t.n0, t.n1, t.k0, t.k1,
                                  by_n, err);
        if (rc == MP_OK) rc = sink(ctx, dst.data, (size_t)dbytes, err);
    }
    return rc;
}

static mp_errcode produce_zeros(const mp_st_model *m, const mp_pack_opts *o, const mp_lin_plan *p,
                                mp_sink sink, void *ctx, mp_err *err)
{
    const mp_qlinear *q = p->src;
    uint64_t N = q->n_rows, G = q->n_groups, shape[2];
    int minus1 = o->target->zenc == MP_ZENC_MINUS1;
    uint16_t *z = malloc((size_t)(N * G) * sizeof *z);
    uint8_t *codes = malloc((size_t)(N * G));
    mp_pblock dst = {NULL, 0, 0, 0, 0};
    mp_errcode rc = z && codes ? read_zeros(m, q, &p->src_zeros, z, err)
                               : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) {
        for (uint64_t i = 0; i < N * G; i++) codes[i] = (uint8_t)(z[i] - (minus1 ? 1 : 0));
        mp_packing_shape(&p->dst_zeros, N, G, shape);
        dst = mp_packing_block(&p->dst_zeros, shape, 0, N, 0, G);
        uint64_t bytes = (dst.r1 - dst.r0) * (dst.c1 - dst.c0) * 4;
        dst.data = calloc(bytes ? (size_t)bytes : 1, 1);
        if (!dst.data) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        if (rc == MP_OK) {
            mp_qtile t = {0, N, 0, G, codes};
            mp_pack(&p->dst_zeros, &dst, &t, 0);
            rc = sink(ctx, dst.data, (size_t)bytes, err);
        }
    }
    free(z);
    free(codes);
    free(dst.data);
    return rc;
}

/* Stores v as dtype t; 0 when that would change its value. */
static int store_scale(float v, mp_dtype t, uint8_t *out)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    if (t == MP_DTYPE_F32) {
        mp_write_le32(out, u);
        return 1;
    }
    uint16_t h = t == MP_DTYPE_F16 ? mp_f32_to_f16(v) : mp_f32_to_bf16(v);
    float back = t == MP_DTYPE_F16 ? mp_f16_to_f32(h) : mp_bf16_to_f32(h);
    out[0] = (uint8_t)h;
    out[1] = (uint8_t)(h >> 8);
    return memcmp(&back, &v, 4) == 0;
}

static mp_errcode produce_scales(const mp_st_model *m, const mp_pack_opts *o, const mp_lin_plan *p,
                                 mp_sink sink, void *ctx, mp_err *err)
{
    const mp_qlinear *q = p->src;
    const mp_tensor *s = q->scales;
    uint64_t N = q->n_rows, G = q->n_groups;
    size_t ies = mp_dtype_bits(s->dtype) / 8, oes = mp_dtype_bits(p->scale_dtype) / 8;
    int out_nk = o->target->scales_nk;
    uint8_t *in = malloc((size_t)s->n_bytes + 1), *out = malloc((size_t)(N * G * oes) + 1);
    mp_errcode rc = in && out ? mp_st_read(m, s, 0, in, (size_t)s->n_bytes, err)
                              : mp_errf(err, MP_E_NOMEM, "out of memory");
    uint64_t scols = s->shape[1];
    if (rc == MP_OK && s->dtype == p->scale_dtype) { /* the same type: the bits move unchanged */
        if (q->scales_nk == out_nk && scols == (out_nk ? G : N) && s->n_bytes == N * G * oes)
            rc = sink(ctx, in, (size_t)(N * G * oes), err);
        else {
            for (uint64_t n = 0; n < N; n++)
                for (uint64_t g = 0; g < G; g++)
                    memcpy(out + (out_nk ? n * G + g : g * N + n) * oes,
                           in + (q->scales_nk ? n * scols + g : g * scols + n) * ies, oes);
            rc = sink(ctx, out, (size_t)(N * G * oes), err);
        }
        free(in);
        free(out);
        return rc;
    }
    for (uint64_t n = 0; rc == MP_OK && n < N; n++) {
        for (uint64_t g = 0; g < G; g++) {
            uint64_t si = q->scales_nk ? n * scols + g : g * scols + n;
            uint64_t oi = out_nk ? n * G + g : g * N + n;
            float v = mp_dtype_load_f32(in + si * ies, s->dtype);
            if (!store_scale(v, p->scale_dtype, out + oi * oes)) {
                rc = REFUSE(q, "scale %.9g at row %llu, group %llu is not exactly representable "
                               "in %s; pass --scale-dtype %s or convert with --to bf16",
                            (double)v, (unsigned long long)n, (unsigned long long)g,
                            mp_dtype_name(p->scale_dtype),
                            s->dtype == MP_DTYPE_BF16 ? "bf16" : "f32");
                break;
            }
        }
    }
    if (rc == MP_OK) rc = sink(ctx, out, (size_t)(N * G * oes), err);
    free(in);
    free(out);
    return rc;
}

static mp_errcode produce_gidx(const mp_st_model *m, const mp_lin_plan *p, mp_sink sink, void *ctx,
                               mp_err *err)
{
    const mp_qlinear *q = p->src;
    uint8_t *buf = malloc((size_t)q->k_cols * 4 + 1);
    if (!buf) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = MP_OK;
    if (q->g_idx) rc = mp_st_read(m, q->g_idx, 0, buf, (size_t)q->k_cols * 4, err);
    else
        for (uint64_t k = 0; k < q->k_cols; k++) mp_write_le32(buf + 4 * k, (uint32_t)(k / q->group_size));
    if (rc == MP_OK) rc = sink(ctx, buf, (size_t)q->k_cols * 4, err);
    free(buf);
    return rc;
}

mp_errcode mp_pack_produce(const mp_st_model *m, const mp_pack_opts *o, const mp_lin_plan *p,
                           mp_part part, mp_pack_scratch *scratch, mp_sink sink, void *ctx,
                           mp_err *err)
{
    switch (part) {
    case PART_CODES: return produce_codes(m, o, p, scratch, sink, ctx, err);
    case PART_ZEROS: return produce_zeros(m, o, p, sink, ctx, err);
    case PART_SCALES: return produce_scales(m, o, p, sink, ctx, err);
    case PART_GIDX: return produce_gidx(m, p, sink, ctx, err);
    default: {
        uint8_t nk[16];
        mp_write_le64(nk, p->src->n_rows);
        mp_write_le64(nk + 8, p->src->k_cols);
        return sink(ctx, nk, 16, err);
    }
    }
}

/* ------------------------------------------------------------ quantization_config */

mp_errcode mp_pack_config(const mp_pack_opts *o, const mp_lin_plan *plans, size_t n,
                          const mp_qmodel *qm, mp_buf *b, mp_err *err)
{
    const mp_qlinear **linears = malloc((n ? n : 1) * sizeof *linears);
    if (!linears) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_scheme_job j = {.linears = linears, .n_linears = n, .qm = qm, .bits = n ? plans[0].src->bits : 4,
                       .group_size = -1, .zeros_written = n && plans[0].write_zeros, .s4 = o->s4,
                       .scale_dtype = n ? plans[0].scale_dtype : MP_DTYPE_F16};
    for (size_t i = 0; i < n; i++) {
        linears[i] = plans[i].src;
        j.act_order |= plans[i].src->act_order;
        if (plans[i].src->n_groups > 1 && j.group_size < 0) j.group_size = (int64_t)plans[i].src->group_size;
    }
    mp_errcode rc = o->target->write_config(b, o->target, &j, err);
    free(linears);
    if (rc == MP_OK && b->oom) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    return rc;
}
