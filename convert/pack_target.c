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

static const char *scale_torch_name(mp_dtype t)
{
    return t == MP_DTYPE_BF16 ? "bfloat16" : t == MP_DTYPE_F32 ? "float32" : "float16";
}

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
    switch (o->fmt) {
    case MP_FMT_GPTQ:
    case MP_FMT_GPTQ_V2:
    case MP_FMT_AWQ: return MP_DTYPE_F16; /* what their loaders and kernels take */
    case MP_FMT_CT: return q->scales->dtype;
    default:
        /* The XPU kernels read scales as the activation dtype (doc/formats/cutlass-int4.md §2). */
        if (o->torch_dtype && strcmp(o->torch_dtype, "bfloat16") == 0) return MP_DTYPE_BF16;
        if (o->torch_dtype && strcmp(o->torch_dtype, "float16") == 0) return MP_DTYPE_F16;
        return q->scales->dtype;
    }
}

static const uint32_t cutlass_groups[] = {32, 64, 128, 256};

mp_errcode mp_pack_prepare(const mp_st_model *m, const mp_qmodel *qm, const mp_pack_opts *o,
                           mp_lin_plan *plans, mp_err *err)
{
    const mp_layout *L = mp_layout_get(o->fmt);
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
        if ((o->fmt == MP_FMT_AWQ || o->fmt == MP_FMT_ONEDNN_INT4) && q->n_rows % 8)
            return REFUSE(q, "N = %llu is not a multiple of 8, which %s needs",
                          (unsigned long long)q->n_rows, L->name);
        if ((o->fmt == MP_FMT_ONEDNN_INT4 && q->k_cols % 8) || (o->fmt == MP_FMT_CUTLASS_INT4 && q->k_cols % 2))
            return REFUSE(q, "K = %llu does not fill whole %s words", (unsigned long long)q->k_cols, L->name);
        if (o->fmt == MP_FMT_CUTLASS_INT4) {
            int ok = 0;
            for (size_t g = 0; g < 4; g++) ok |= q->group_size == cutlass_groups[g];
            if (!ok)
                return REFUSE(q, "group size %llu: the XPU grouped GEMM takes 32, 64, 128 or 256; "
                                 "use --to onednn-int4 or --to bf16", (unsigned long long)q->group_size);
        }
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
                               "implied); use --to onednn-int4 or --to bf16", zv, row, grp, L->name);
            else if (L->zenc == MP_ZENC_MINUS1 && zv == 0)
                rc = REFUSE(q, "zero point 0 at row %llu, group %llu cannot be stored in GPTQ v1, "
                               "which stores z - 1; use --to gptq-v2", row, grp);
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
        int per_module = o->fmt == MP_FMT_GPTQ || o->fmt == MP_FMT_GPTQ_V2; /* "dynamic" overrides */
        if (!per_module &&
            (q->bits != f->bits || (q->n_groups > 1 && f->n_groups > 1 && q->group_size != f->group_size)))
            return REFUSE(q, "%u bits, group size %llu differ from '%s' (%u bits, group size %llu): "
                             "mixed parameters need per-module overrides, which only gptq and gptq-v2 write; convert with --to gptq-v2 or --to bf16",
                          q->bits, (unsigned long long)q->group_size, f->prefix, f->bits,
                          (unsigned long long)f->group_size);
    }
    for (size_t i = 0; i < n; i++) {
        plans[i].write_zeros = L->zenc != MP_ZENC_IMPLIED && (L->zeros_when_sym || !all_sym);
        plans[i].write_g_idx = L->g_idx_name && (o->fmt != MP_FMT_CT || any_act);
    }
    return MP_OK;
}

int mp_pack_part_spec(const mp_pack_opts *o, const mp_lin_plan *p, mp_part part, char *name,
                      size_t cap, mp_tensor_spec *spec)
{
    const mp_layout *L = mp_layout_get(o->fmt);
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
        if (o->fmt != MP_FMT_CT) return 0;
        suffix = "weight_shape";
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
    uint32_t dxor = o->fmt == MP_FMT_CUTLASS_INT4 && o->s4 ? 8u : 0u;
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
    int minus1 = mp_layout_get(o->fmt)->zenc == MP_ZENC_MINUS1;
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

static float load_scale(const uint8_t *p, mp_dtype t)
{
    if (t == MP_DTYPE_F16) return mp_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
    if (t == MP_DTYPE_BF16) return mp_bf16_to_f32((uint16_t)(p[0] | p[1] << 8));
    uint32_t u = mp_read_le32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
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
    int out_nk = mp_layout_get(o->fmt)->scales_nk;
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
            float v = load_scale(in + si * ies, s->dtype);
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

static void json_names(mp_buf *b, const mp_qmodel *qm)
{
    mp_buf_puts(b, "[");
    for (size_t i = 0; i < mp_qmodel_n_dense_linears(qm); i++) {
        if (i) mp_buf_puts(b, ", ");
        mp_buf_json_str(b, mp_qmodel_dense_linear(qm, i));
    }
    mp_buf_puts(b, "]");
}

/* A regex that matches exactly `name` (Python re syntax): dots escaped, anchored. */
static void regex_of(const char *name, char *out, size_t cap)
{
    size_t o = 0;
    if (cap < 4) return;
    out[o++] = '^';
    for (const char *c = name; *c && o + 3 < cap; c++) {
        if (strchr(".^$*+?()[]{}|\\", *c)) out[o++] = '\\';
        out[o++] = *c;
    }
    out[o++] = '$';
    out[o] = '\0';
}

mp_errcode mp_pack_config(const mp_pack_opts *o, const mp_lin_plan *plans, size_t n,
                          const mp_qmodel *qm, mp_buf *b, mp_err *err)
{
    int act = 0;
    uint32_t bits = n ? plans[0].src->bits : 4;
    int64_t group = -1;
    for (size_t i = 0; i < n; i++) {
        act |= plans[i].src->act_order;
        if (plans[i].src->n_groups > 1 && group < 0) group = (int64_t)plans[i].src->group_size;
    }
    switch (o->fmt) {
    case MP_FMT_GPTQ:
    case MP_FMT_GPTQ_V2: {
        int v2 = o->fmt == MP_FMT_GPTQ_V2;
        int symmetric = n > 0;
        for (size_t i = 0; i < n; i++) symmetric &= plans[i].src->sym;
        mp_buf_printf(b, "{\"quant_method\": \"gptq\", \"bits\": %u, \"group_size\": %lld, "
                         "\"desc_act\": %s, \"sym\": %s, \"checkpoint_format\": \"%s\", "
                         "\"format\": \"%s\", \"pack_dtype\": \"int32\", \"lm_head\": false",
                      bits, (long long)group, act ? "true" : "false", symmetric ? "true" : "false",
                      v2 ? "gptq_v2" : "gptq", v2 ? "gptq_v2" : "gptq");
        size_t nd = mp_qmodel_n_dense_linears(qm);
        int any = 0;
        /* Linears whose bits or groups differ from the top-level ones get a "+:" override, as
         * GPTQModel's `dynamic` writes them. */
        for (size_t i = 0; i < n; i++) {
            const mp_qlinear *q = plans[i].src;
            uint64_t g_base = group > 0 ? (q->k_cols + (uint64_t)group - 1) / (uint64_t)group : 1;
            int same = q->bits == bits && q->n_groups == g_base &&
                       (q->n_groups == 1 || (int64_t)q->group_size == group);
            if (same) continue;
            char re[600], key[640];
            regex_of(q->prefix, re, sizeof re);
            snprintf(key, sizeof key, "+:%s", re);
            mp_buf_puts(b, any ? ", " : ", \"dynamic\": {");
            mp_buf_json_str(b, key);
            mp_buf_printf(b, ": {\"bits\": %u, \"group_size\": %lld}", q->bits,
                          q->n_groups > 1 ? (long long)q->group_size : -1LL);
            any = 1;
        }
        for (size_t i = 0; i < nd; i++) {
            const char *d = mp_qmodel_dense_linear(qm, i);
            if (strcmp(d, "lm_head") == 0) continue;
            char re[600];
            regex_of(d, re, sizeof re);
            mp_buf_puts(b, any ? ", " : ", \"dynamic\": {");
            char key[640];
            snprintf(key, sizeof key, "-:%s", re);
            mp_buf_json_str(b, key);
            mp_buf_puts(b, ": {}");
            any = 1;
        }
        if (any) mp_buf_puts(b, "}");
        mp_buf_puts(b, ", \"meta\": {\"quantizer\": [\"modelprep:" MP_VERSION "\"]}}");
        break;
    }
    case MP_FMT_AWQ:
        mp_buf_printf(b, "{\"quant_method\": \"awq\", \"bits\": 4, \"group_size\": %lld, "
                         "\"zero_point\": true, \"version\": \"gemm\", \"modules_to_not_convert\": ",
                      (long long)group);
        json_names(b, qm);
        mp_buf_puts(b, "}");
        break;
    case MP_FMT_CT:
        mp_buf_printf(b, "{\"quant_method\": \"compressed-tensors\", \"format\": \"pack-quantized\", "
                         "\"quantization_status\": \"compressed\", \"config_groups\": {\"group_0\": "
                         "{\"targets\": [\"Linear\"], \"weights\": {\"num_bits\": %u, \"type\": \"int\", "
                         "\"symmetric\": %s, \"strategy\": \"%s\", \"group_size\": ",
                      bits, n && plans[0].write_zeros ? "false" : "true",
                      group > 0 ? "group" : "channel");
        if (group > 0) mp_buf_printf(b, "%lld", (long long)group);
        else mp_buf_puts(b, "null");
        mp_buf_printf(b, ", \"actorder\": %s, \"dynamic\": false, \"observer\": \"minmax\"}, "
                         "\"input_activations\": null, \"output_activations\": null, "
                         "\"format\": \"pack-quantized\"}}, \"ignore\": ",
                      act ? "\"group\"" : "null");
        json_names(b, qm);
        mp_buf_puts(b, ", \"kv_cache_scheme\": null, \"version\": \"modelprep-" MP_VERSION "\"}");
        break;
    default:
        mp_buf_printf(b, "{\"quant_method\": \"modelprep\", \"format\": \"%s\", \"bits\": 4, "
                         "\"group_size\": %lld, \"sym\": %s",
                      mp_layout_get(o->fmt)->name, (long long)group,
                      n && plans[0].write_zeros ? "false" : "true");
        if (o->fmt == MP_FMT_CUTLASS_INT4) mp_buf_printf(b, ", \"int4\": \"%s\"", o->s4 ? "s4" : "u4");
        mp_buf_printf(b, ", \"scale_dtype\": \"%s\", \"modules_not_converted\": ",
                      scale_torch_name(n ? plans[0].scale_dtype : MP_DTYPE_F16));
        json_names(b, qm);
        mp_buf_puts(b, "}");
    }
    if (b->oom) return mp_errf(err, MP_E_NOMEM, "out of memory");
    return MP_OK;
}
