/*
 * pipeline.c - the dense conversion: every quantized linear becomes `<prefix>.weight` [N, K]
 * (stacked gpt-oss experts `<prefix>` [E, K, N], as transformers loads them)
 * through the fast dense path (repack/dense.c, held bit for bit to the CPU reference in
 * verify/dequant_ref.c, which still reports an f16 overflow), every other float tensor is cast to the
 * target dtype (copied byte for byte with --keep-dense-dtype, and always for other dtypes), in the natural order of names, cut into shards, each written by
 * the streaming writer into DST.partial-XXXXXX and committed with the manifest.
 *
 * Memory is bounded by one dequantization tile (TILE_BYTES of f32 plus its packed inputs) and
 * one copy chunk, whatever the size of the model.
 */
#define _GNU_SOURCE
#include "pipeline.h"
#include "dest.h"
#include "journal.h"
#include "json_edit.h"
#include "job.h"
#include "manifest.h"
#include "../verify/verify.h"

#include <cJSON.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TILE_BYTES (16u << 20)
#define CHUNK_BYTES (4u << 20)
#define COPY_WINDOW (16u << 20) /* bytes of a plain source mapped at a time */

typedef enum { ORIGIN_COPY, ORIGIN_CAST, ORIGIN_DEQUANT, ORIGIN_REPACK, ORIGIN_STACK } origin;

static const char *const origin_names[] = {"copy", "cast", "dequantize", "repack", "stack"};

/* The experts of one MoE block, stacked: w13 = gate rows then up rows per expert, w2 = down. */
typedef struct expert_stack {
    char prefix[512];            /* "model.layers.3.mlp.experts" */
    size_t n;                    /* E */
    const mp_lin_plan **gate, **up, **down;
} expert_stack;

typedef struct out_tensor {
    mp_tensor_spec spec;
    char *owned_name;
    origin from;
    const mp_tensor *src;
    const mp_qlinear *lin;
    const mp_lin_plan *plan;  /* ORIGIN_REPACK */
    mp_part part;
    const expert_stack *stack;  /* ORIGIN_STACK: part is codes or scales, w2 says which half */
    int w2;
    uint32_t shard;
    uint64_t bytes;
    uint64_t xxh64;
} out_tensor;

static const struct {
    mp_dtype dtype;
    const char *torch;
} target_traits[MP_TARGET_COUNT] = {
    [MP_TARGET_F32] = {MP_DTYPE_F32, "float32"},
    [MP_TARGET_F16] = {MP_DTYPE_F16, "float16"},
    [MP_TARGET_BF16] = {MP_DTYPE_BF16, "bfloat16"},
};

typedef struct job {
    const mp_convert_opts *o;
    const mp_st_model *m;
    const mp_qmodel *qm;
    mp_lin_plan *plans;     /* packed targets: one per linear, in mp_qmodel order */
    expert_stack *stacks;
    size_t n_stacks;
    unsigned char *stacked; /* per linear: 1 when it goes into a stack */
    mp_dest dest;
    out_tensor *outs;
    size_t n_outs;
    size_t n_shards;
    char (*shard_names)[64];
    mp_mfile *files;
    size_t n_files;
    mp_reporter progress;
    uint8_t *chunk;     /* CHUNK_BYTES */
    float *tile;        /* TILE_BYTES */
    uint8_t *tile_out;  /* TILE_BYTES */
    mp_pack_scratch scratch;
    mp_src_hash *src_hash;  /* hashing the sources in the background */
    mp_part_job *part;      /* --part I/N or a merge; NULL: a whole run */
    const char **part_names;
    uint64_t *part_bytes;   /* per shard: its tensor bytes, what the plan balances */
} job;

static int is_float_dtype(mp_dtype t)
{
    return t == MP_DTYPE_F16 || t == MP_DTYPE_BF16 || t == MP_DTYPE_F32 || t == MP_DTYPE_F64;
}

/* ------------------------------------------------------------ plan */

static size_t linear_index(const job *j, const mp_qlinear *lin)
{
    return (size_t)(lin - mp_qmodel_linear(j->qm, 0));
}

/* "<block>.experts.<e>.<proj>" with proj gate_proj/w1 (0), up_proj/w3 (1), down_proj/w2 (2):
 * 1; 0 when the prefix is no expert's projection; -1 when the expert number is not a bounded
 * decimal (doc/limits.md), *why then saying how. */
static int parse_expert(const char *prefix, char *block, size_t cap, unsigned long *e, int *proj, const char **why)
{
    const char *x = strstr(prefix, ".experts.");
    if (!x) return 0;
    const char *num = x + strlen(".experts.");
    uint64_t v;
    size_t nd = mp_parse_name_index(num, UINT32_MAX, &v, why);
    if (nd == 0) return *num == '-' || *num == '+' || (*num >= '0' && *num <= '9') ? -1 : 0;
    const char *end = num + nd;
    if (*end != '.') return 0;
    *e = (unsigned long)v;
    static const char *const names[3][2] = {{"gate_proj", "w1"}, {"up_proj", "w3"}, {"down_proj", "w2"}};
    *proj = -1;
    for (int p = 0; p < 3; p++)
        if (strcmp(end + 1, names[p][0]) == 0 || strcmp(end + 1, names[p][1]) == 0) *proj = p;
    if (*proj < 0 || (size_t)(x - prefix) + 9 > cap) return 0;
    snprintf(block, cap, "%.*s.experts", (int)(x - prefix), prefix);
    return 1;
}

static mp_errcode plan_stacks(job *j, mp_err *err)
{
    size_t nl = mp_qmodel_n_linears(j->qm);
    j->stacked = calloc(nl ? nl : 1, 1);
    j->stacks = calloc(nl ? nl : 1, sizeof *j->stacks);
    if (!j->stacked || !j->stacks) return mp_errf(err, MP_E_NOMEM, "out of memory");
    for (size_t i = 0; i < nl; i++) {
        char block[512];
        unsigned long e;
        int proj;
        const char *why = NULL, *prefix = mp_qmodel_linear(j->qm, i)->prefix;
        int is = parse_expert(prefix, block, sizeof block, &e, &proj, &why);
        if (is < 0) return mp_errf_at(err, MP_E_INPUT, NULL, prefix, -1, "the expert number after '.experts.' %s", why);
        if (!is) continue;
        expert_stack *st = NULL;
        for (size_t s = 0; s < j->n_stacks && !st; s++)
            if (strcmp(j->stacks[s].prefix, block) == 0) st = &j->stacks[s];
        if (!st) {
            st = &j->stacks[j->n_stacks++];
            snprintf(st->prefix, sizeof st->prefix, "%s", block);
            st->gate = calloc(nl, sizeof *st->gate);
            st->up = calloc(nl, sizeof *st->up);
            st->down = calloc(nl, sizeof *st->down);
            if (!st->gate || !st->up || !st->down) return mp_errf(err, MP_E_NOMEM, "out of memory");
        }
        if (e >= nl) return mp_errf_at(err, MP_E_INPUT, NULL, block, -1, "expert index %lu is out of range", e);
        const mp_lin_plan **slot = proj == 0 ? &st->gate[e] : proj == 1 ? &st->up[e] : &st->down[e];
        *slot = &j->plans[i];
        if (e + 1 > st->n) st->n = e + 1;
        j->stacked[i] = 1;
    }
    for (size_t s = 0; s < j->n_stacks; s++) {
        expert_stack *st = &j->stacks[s];
        const mp_qlinear *g0 = st->gate[0] ? st->gate[0]->src : NULL, *d0 = st->down[0] ? st->down[0]->src : NULL;
        for (size_t e = 0; e < st->n; e++) {
            if (!st->gate[e] || !st->up[e] || !st->down[e])
                return mp_errf_at(err, MP_E_INPUT, NULL, st->prefix, -1,
                                  "expert %zu lacks its %s projection: cannot stack %zu experts", e,
                                  !st->gate[e] ? "gate" : !st->up[e] ? "up" : "down", st->n);
            const mp_qlinear *g = st->gate[e]->src, *u = st->up[e]->src, *d = st->down[e]->src;
            if (g->n_rows != g0->n_rows || g->k_cols != g0->k_cols || u->n_rows != g0->n_rows ||
                u->k_cols != g0->k_cols || u->n_groups != g0->n_groups || g->n_groups != g0->n_groups ||
                d->n_rows != d0->n_rows || d->k_cols != d0->k_cols || d->n_groups != d0->n_groups)
                return mp_errf_at(err, MP_E_INPUT, NULL, st->prefix, -1,
                                  "expert %zu has other shapes than expert 0: cannot stack", e);
        }
    }
    return MP_OK;
}

static mp_errcode add_stack_outputs(job *j, const expert_stack *st, mp_err *err)
{
    for (int w2 = 0; w2 < 2; w2++) {
        for (int part = PART_CODES; part <= PART_SCALES; part += PART_SCALES - PART_CODES) {
            const mp_lin_plan *p0 = w2 ? st->down[0] : st->gate[0];
            char one[1100];
            mp_tensor_spec spec;
            mp_pack_part_spec(&j->o->pack, p0, (mp_part)part, one, sizeof one, &spec);
            out_tensor *o = &j->outs[j->n_outs++];
            if (asprintf(&o->owned_name, "%s.%s_%s", st->prefix, w2 ? "w2" : "w13",
                         part == PART_CODES ? "qweight" : "scales") < 0)
                return mp_errf(err, MP_E_NOMEM, "out of memory");
            o->spec = spec;
            o->spec.name = o->owned_name;
            o->spec.n_dims = 3;
            o->spec.shape[2] = spec.shape[1];
            o->spec.shape[1] = spec.shape[0] * (w2 ? 1u : 2u);
            o->spec.shape[0] = st->n;
            o->from = ORIGIN_STACK;
            o->stack = st;
            o->part = (mp_part)part;
            o->w2 = w2;
            const char *why;
            if (mp_dtype_nbytes(spec.dtype, st->n * o->spec.shape[1] * o->spec.shape[2], &o->bytes, &why))
                return mp_errf_at(err, MP_E_INPUT, NULL, o->owned_name, -1, "size overflows");
        }
    }
    return MP_OK;
}

/* A packed target: each quantized linear's plan, and the expert stacks of --stack-experts. */
static mp_errcode plan_packed(job *j, mp_err *err)
{
    size_t nl = mp_qmodel_n_linears(j->qm);
    if (!mp_qmodel_quantized(j->qm) || nl == 0)
        return mp_errf_at(err, MP_E_INPUT, mp_st_dir(j->m), NULL, -1,
                          "the checkpoint has no quantized linears to repack; use --to "
                          "f32, f16 or bf16 for a dense copy");
    j->plans = calloc(nl, sizeof *j->plans);
    if (!j->plans) return mp_errf(err, MP_E_NOMEM, "out of memory");
    MP_FORWARD(mp_pack_prepare(j->m, j->qm, &j->o->pack, j->plans, err));
    if (!j->o->stack_experts) return MP_OK;
    MP_FORWARD(plan_stacks(j, err));
    if (j->n_stacks == 0)
        return mp_errf_at(err, MP_E_INPUT, mp_st_dir(j->m), NULL, -1,
                          "--stack-experts: no '.experts.<e>.gate_proj|up_proj|down_proj' "
                          "(or w1|w3|w2) linears in this checkpoint");
    return MP_OK;
}

/* o->bytes from o->spec. */
static mp_errcode size_output(out_tensor *o, mp_err *err)
{
    uint64_t elems = 1;
    for (uint32_t d = 0; d < o->spec.n_dims; d++) elems *= o->spec.shape[d];
    const char *why;
    if (mp_dtype_nbytes(o->spec.dtype, elems, &o->bytes, &why))
        return mp_errf_at(err, MP_E_INPUT, NULL, o->spec.name, -1, "size overflows");
    return MP_OK;
}

/* The parts of a repacked linear (codes, scales, zeros, ...) the target writes. */
static mp_errcode plan_repacked(job *j, const mp_qlinear *lin, mp_err *err)
{
    const mp_lin_plan *p = &j->plans[linear_index(j, lin)];
    for (int part = 0; part < PART_COUNT; part++) {
        char name[1100];
        mp_tensor_spec spec;
        if (!mp_pack_part_spec(&j->o->pack, p, (mp_part)part, name, sizeof name, &spec)) continue;
        out_tensor *o = &j->outs[j->n_outs++];
        o->owned_name = mp_strdup(name);
        if (!o->owned_name) return mp_errf(err, MP_E_NOMEM, "out of memory");
        o->spec = spec;
        o->spec.name = o->owned_name;
        o->from = ORIGIN_REPACK;
        o->lin = lin;
        o->plan = p;
        o->part = (mp_part)part;
        MP_FORWARD(size_output(o, err));
    }
    return MP_OK;
}

/* Tensor t of the source (owned by lin, or NULL) as an output of a dense target, or copied:
 * a quantized linear dequantized, a float tensor cast to the target, anything else copied.
 * The parts a linear consumes (qzeros, scales, g_idx, ...) make no output. */
static mp_errcode plan_dense(job *j, const mp_tensor *t, const mp_qlinear *lin, mp_err *err)
{
    mp_dtype target = target_traits[j->o->target].dtype;
    out_tensor *o = &j->outs[j->n_outs];
    if (lin && t == lin->qweight && lin->scheme->dense_experts_kn) {
        /* transformers' GptOssExperts: `<prefix>` [E, K, N], each expert transposed */
        o->owned_name = mp_strdup(lin->prefix);
        if (!o->owned_name) return mp_errf(err, MP_E_NOMEM, "out of memory");
        uint64_t E = lin->n_experts;
        o->spec = (mp_tensor_spec){o->owned_name, target, 3, {E, lin->k_cols, lin->n_rows / E}};
        o->from = ORIGIN_DEQUANT;
        o->lin = lin;
    } else if (lin && t == lin->qweight) {
        if (asprintf(&o->owned_name, "%s.weight", lin->prefix) < 0) return mp_errf(err, MP_E_NOMEM, "out of memory");
        o->spec = (mp_tensor_spec){o->owned_name, target, 2, {lin->n_rows, lin->k_cols}};
        o->from = ORIGIN_DEQUANT;
        o->lin = lin;
    } else if (lin && t != lin->bias) {
        return MP_OK;
    } else {
        o->spec = (mp_tensor_spec){t->name, t->dtype, t->n_dims, {0}};
        memcpy(o->spec.shape, t->shape, sizeof t->shape);
        o->src = t;
        o->from = ORIGIN_COPY;
        if (!j->o->packed && !j->o->keep_dense_dtype && is_float_dtype(t->dtype) && t->dtype != target) {
            o->spec.dtype = target;
            o->from = ORIGIN_CAST;
        }
    }
    MP_FORWARD(size_output(o, err));
    j->n_outs++;
    return MP_OK;
}

static mp_errcode plan(job *j, mp_err *err)
{
    size_t n = mp_st_n_tensors(j->m);
    j->outs = calloc(n ? n * PART_COUNT : 1, sizeof *j->outs);
    if (!j->outs) return mp_errf(err, MP_E_NOMEM, "out of memory");
    if (j->o->packed) MP_FORWARD(plan_packed(j, err));
    for (size_t i = 0; i < n; i++) {
        const mp_tensor *t = mp_st_tensor(j->m, i);
        const mp_qlinear *lin = mp_qmodel_owner(j->qm, t);
        int packed_codes = lin && t == lin->qweight && j->o->packed;
        if (packed_codes && j->stacked && j->stacked[linear_index(j, lin)]) {
            /* Stacked: its block's four tensors come with the block's first expert linear. */
            for (size_t s2 = 0; s2 < j->n_stacks; s2++) {
                expert_stack *st = &j->stacks[s2];
                if (st->n && (st->gate[0]->src == lin)) MP_FORWARD(add_stack_outputs(j, st, err));
            }
        } else if (packed_codes) {
            MP_FORWARD(plan_repacked(j, lin, err));
        } else {
            MP_FORWARD(plan_dense(j, t, lin, err));
        }
    }
    return mp_job_plan_shards(j->outs, j->n_outs, sizeof *j->outs, offsetof(out_tensor, spec),
                              offsetof(out_tensor, shard), j->o->max_shard, &j->n_shards, &j->shard_names, err);
}

/* ------------------------------------------------------------ producers */

static mp_errcode check_interrupt(const job *j, mp_err *err)
{
    if (j->o->interrupted && *j->o->interrupted)
        return mp_errf(err, MP_E_INTERRUPTED, j->part ? "interrupted; run this part again to finish it"
                                                      : "interrupted; the partial output was removed");
    return MP_OK;
}

/* Dense tensors pass through unchanged: kernel to kernel from a plain source, the hashes reading
 * a mapping of the same bytes (mp_st_writer_copy_from). */
static mp_errcode produce_copy(job *j, mp_st_writer *w, const out_tensor *o, mp_err *err)
{
    for (uint64_t at = 0, len; at < o->bytes; at += len) {
        len = o->bytes - at < COPY_WINDOW ? o->bytes - at : COPY_WINDOW;
        MP_FORWARD(check_interrupt(j, err));
        MP_FORWARD(mp_st_writer_copy_from(w, j->m, o->src, at, (size_t)len, j->chunk, CHUNK_BYTES, err));
        mp_report_add(&j->progress, len);
    }
    return MP_OK;
}

/* Stores n floats as the target dtype. An f16 overflow is an error naming the element, never a
 * silent infinity. `first` is the flat index of v[0] in the tensor, `cols` its row length. */
mp_errcode mp_convert_store(const float *v, size_t n, mp_target target, uint8_t *out, const char *name,
                        uint64_t first, uint64_t cols, mp_err *err)
{
    long long cnt = (long long)n, bad = cnt; /* first element that overflows f16 */
    switch (target) {
    case MP_TARGET_F32:
#pragma omp parallel for schedule(static) if (cnt >= (1 << 20))
        for (long long i = 0; i < cnt; i++) {
            uint32_t u;
            memcpy(&u, &v[i], 4);
            mp_write_le32(out + 4 * i, u);
        }
        break;
    case MP_TARGET_F16:
#pragma omp parallel for schedule(static) reduction(min : bad) if (cnt >= (1 << 20))
        for (long long i = 0; i < cnt; i++) {
            if (mp_f16_overflows(v[i]) && i < bad) bad = i;
            uint16_t h = mp_f32_to_f16(v[i]);
            out[2 * i] = (uint8_t)h;
            out[2 * i + 1] = (uint8_t)(h >> 8);
        }
        break;
    default:
#pragma omp parallel for schedule(static) if (cnt >= (1 << 20))
        for (long long i = 0; i < cnt; i++) {
            uint16_t h = mp_f32_to_bf16(v[i]);
            out[2 * i] = (uint8_t)h;
            out[2 * i + 1] = (uint8_t)(h >> 8);
        }
    }
    if (bad < cnt) {
        uint64_t at = first + (uint64_t)bad;
        return mp_errf_at(err, MP_E_UNSUPPORTED, NULL, name, -1,
                          "value %g at [%llu, %llu] overflows f16 (largest 65504); convert with "
                          "--to bf16 or --to f32", (double)v[bad], (unsigned long long)(at / cols),
                          (unsigned long long)(at % cols));
    }
    return MP_OK;
}

size_t mp_first_nonfinite(const float *v, size_t n)
{
    long long cnt = (long long)n, bad = cnt;
#pragma omp parallel for schedule(static) reduction(min : bad) if (cnt >= (1 << 20))
    for (long long i = 0; i < cnt; i++)
        if (!isfinite(v[i]) && i < bad) bad = i;
    return (size_t)bad;
}

/* Codes and zero points are integers: a weight that dequantizes to Inf or NaN comes from its
 * scale. Refused, naming the scale tensor and the group, as an f16 overflow is (doc/limits.md). */
/* 1 when one of the cnt values of dtype dt (F32, F16 or BF16) at p is Inf or NaN. */
static int any_nonfinite(const uint8_t *p, size_t cnt, mp_dtype dt)
{
    if (dt == MP_DTYPE_F32) {
        for (size_t i = 0; i < cnt; i++)
            if ((mp_read_le32(p + 4 * i) & 0x7F800000u) == 0x7F800000u) return 1;
        return 0;
    }
    uint16_t mask = dt == MP_DTYPE_F16 ? 0x7C00u : 0x7F80u;
    for (size_t i = 0; i < cnt; i++)
        if (((uint16_t)(p[2 * i] | p[2 * i + 1] << 8) & mask) == mask) return 1;
    return 0;
}

/* 1 when a non-finite weight can come only from a non-finite scale: integer codes, bnb's code
 * table (|v| <= 1) and int8 / 127. FP8 codes hold NaN (and E5M2 Inf) as values, kept as they are,
 * and a finite FP4 block scale times E2M1 can still overflow f32: their scales are checked one by
 * one instead (check_block_scales). */
static int scale_decides_finite(const mp_qlinear *q)
{
    return q->scheme->elem == MP_ELEM_INT || q->scheme->elem == MP_ELEM_LUT4 || q->scheme->elem == MP_ELEM_INT8_ABSMAX;
}

/* The group of element [n, k] under the scale that covers it. */
static uint64_t group_of(const mp_qlinear *q, uint64_t n, uint64_t k)
{
    if (q->scheme->elem == MP_ELEM_INT) return q->group_size ? k / q->group_size : 0;
    if (q->scale_kind == MP_FSCALE_FLAT) return q->block_k ? (n * q->k_cols + k) / q->block_k : 0;
    if (q->scale_kind == MP_FSCALE_TENSOR || q->scale_kind == MP_FSCALE_CHANNEL) return 0;
    return q->block_k ? k / q->block_k : 0;
}

static mp_errcode check_finite(const mp_qlinear *q, const float *tile, size_t cnt, uint64_t n0, mp_err *err)
{
    size_t bad = mp_first_nonfinite(tile, cnt);
    if (bad == cnt) return MP_OK;
    uint64_t n = n0 + bad / q->k_cols, k = bad % q->k_cols;
    const mp_tensor *s = q->scales;
    return mp_errf_at(err, MP_E_INPUT, NULL, s ? s->name : q->prefix, -1,
                      "row %llu, group %llu: the scale is not finite (weight [%llu, %llu] would be %g)",
                      (unsigned long long)n, (unsigned long long)group_of(q, n, k), (unsigned long long)n,
                      (unsigned long long)k, (double)tile[bad]);
}

/* One scale of a float layout: F32, BF16, F16; an FP4 block scale (E4M3, or E8M0 whose 0xFF is
 * NaN in the OCP format and 2^128 in the producers' code: not finite either way). */
static float scale_value(const uint8_t *p, mp_dtype dt, int fp4)
{
    if (fp4) return p[0] == 0xFF && dt != MP_DTYPE_F8_E4M3 ? NAN : mp_fp4_scale_to_f32(p[0], dt);
    if (dt == MP_DTYPE_F8_E8M0) return p[0] == 0xFF ? NAN : 1.0f; /* DeepSeek-V4's ue8m0: only 0xFF is not a power of two */
    return mp_dtype_load_f32(p, dt);
}

/* FP8 and FP4: each scale of the grid and the per-tensor scale, read in chunks; a non-finite one
 * is refused, naming the scale tensor, the first row it covers and its group (doc/limits.md). */
static mp_errcode check_block_scales(job *j, const mp_qlinear *q, mp_err *err)
{
    int fp4 = q->scheme->elem == MP_ELEM_FP4;
    if (q->scheme->elem != MP_ELEM_FLOAT8 && !fp4) return MP_OK;
    uint8_t gb[4];
    if (q->global_scale && q->global_scale->dtype == MP_DTYPE_F32 && q->global_scale->n_elems >= 1) {
        MP_FORWARD(mp_st_read(j->m, q->global_scale, 0, gb, 4, err));
        float g = mp_dtype_load_f32(gb, MP_DTYPE_F32);
        if (!isfinite(g))
            return mp_errf_at(err, MP_E_INPUT, NULL, q->global_scale->name, -1,
                              "the per-tensor scale is not finite (%g; every weight of '%s' would be too)", (double)g,
                              q->prefix);
    }
    const mp_tensor *s = q->scales;
    if (!s || (fp4 ? mp_dtype_bits(s->dtype) != 8
                   : s->dtype != MP_DTYPE_F32 && s->dtype != MP_DTYPE_BF16 && s->dtype != MP_DTYPE_F16 &&
                         s->dtype != MP_DTYPE_F8_E8M0))
        return MP_OK;
    size_t es = mp_dtype_bits(s->dtype) / 8, per = CHUNK_BYTES / es;
    uint64_t cols = s->n_dims ? s->shape[s->n_dims - 1] : 1;
    for (uint64_t e = 0; e < s->n_elems; e += per) {
        size_t cnt = s->n_elems - e < per ? (size_t)(s->n_elems - e) : per;
        MP_FORWARD(mp_st_read(j->m, s, e * es, j->chunk, cnt * es, err));
        for (size_t i = 0; i < cnt; i++) {
            float v = scale_value(j->chunk + i * es, s->dtype, fp4);
            if (isfinite(v)) continue;
            uint64_t at = e + i, r = cols ? at / cols : 0, c = cols ? at % cols : 0;
            return mp_errf_at(err, MP_E_INPUT, NULL, s->name, -1,
                              "row %llu, group %llu: the scale is not finite (%g; the weights it covers would be too)",
                              (unsigned long long)(r * (q->block_n ? q->block_n : 1)), (unsigned long long)c,
                              (double)v);
        }
    }
    return MP_OK;
}

static mp_errcode produce_cast(job *j, mp_st_writer *w, const out_tensor *o, mp_err *err)
{
    const mp_tensor *t = o->src;
    size_t ies = mp_dtype_bits(t->dtype) / 8;
    uint64_t cols = t->n_dims ? t->shape[t->n_dims - 1] : 1;
    size_t per = TILE_BYTES / 4;
    if (per > CHUNK_BYTES / ies) per = CHUNK_BYTES / ies;
    for (uint64_t e = 0; e < t->n_elems; e += per) {
        size_t cnt = t->n_elems - e < per ? (size_t)(t->n_elems - e) : per;
        MP_FORWARD(check_interrupt(j, err));
        MP_FORWARD(mp_st_read(j->m, t, e * ies, j->chunk, cnt * ies, err));
        for (size_t i = 0; i < cnt; i++) j->tile[i] = mp_dtype_load_f32(j->chunk + i * ies, t->dtype);
        MP_FORWARD(mp_convert_store(j->tile, cnt, j->o->target, j->tile_out, t->name, e, cols ? cols : 1, err));
        size_t oes = mp_dtype_bits(o->spec.dtype) / 8;
        MP_FORWARD(mp_st_writer_write(w, j->tile_out, cnt * oes, err));
        mp_report_add(&j->progress, cnt * oes);
    }
    return MP_OK;
}

/* Rows [n0, n1) of the linear to the output dtype in bytes: the fast path, and the reference
 * where it must name what went wrong (an f16 overflow, an integer scheme's non-finite scale; a
 * float format's NaN codes are values, kept as they are). tile holds (n1 - n0) * K floats. */
static mp_errcode dequant_rows(job *j, const out_tensor *o, uint64_t n0, uint64_t n1, float *tile,
                               uint8_t *bytes, mp_err *err)
{
    const mp_qlinear *q = o->lin;
    uint64_t K = q->k_cols;
    size_t cnt = (size_t)((n1 - n0) * K);
    int overflow = 0;
    MP_FORWARD(mp_dense_rows(j->m, q, n0, n1, o->spec.dtype, bytes, &overflow, err));
    if (!overflow && (!scale_decides_finite(q) || !any_nonfinite(bytes, cnt, o->spec.dtype))) return MP_OK;
    MP_FORWARD(mp_dequant_ref(j->m, q, n0, n1, tile, err));
    if (scale_decides_finite(q)) MP_FORWARD(check_finite(q, tile, cnt, n0, err));
    return mp_convert_store(tile, cnt, j->o->target, bytes, o->spec.name, n0 * K, K, err);
}

static mp_errcode produce_dequant(job *j, mp_st_writer *w, const out_tensor *o, mp_err *err)
{
    const mp_qlinear *q = o->lin;
    uint64_t K = q->k_cols, rows = TILE_BYTES / 4 / K;
    rows = rows >= 8 ? rows / 8 * 8 : 8;
    float *tile = j->tile;
    uint8_t *bytes = j->tile_out;
    int owned = 0;
    if (rows * K * 4 > TILE_BYTES) { /* K beyond 512 Ki columns: one 8-row tile of its own */
        tile = malloc((size_t)(rows * K * 4));
        bytes = malloc((size_t)(rows * K * 4));
        owned = 1;
        if (!tile || !bytes) {
            free(tile);
            free(bytes);
            return mp_errf(err, MP_E_NOMEM, "out of memory");
        }
    }
    size_t oes = mp_dtype_bits(o->spec.dtype) / 8;
    mp_errcode rc = check_block_scales(j, q, err);
    for (uint64_t n0 = 0; n0 < q->n_rows && rc == MP_OK; n0 += rows) {
        uint64_t n1 = n0 + rows < q->n_rows ? n0 + rows : q->n_rows;
        size_t cnt = (size_t)((n1 - n0) * K);
        rc = check_interrupt(j, err);
        if (rc == MP_OK) rc = dequant_rows(j, o, n0, n1, tile, bytes, err);
        if (rc == MP_OK) rc = mp_st_writer_write(w, bytes, cnt * oes, err);
        mp_report_add(&j->progress, cnt * oes);
    }
    if (owned) {
        free(tile);
        free(bytes);
    }
    return rc;
}

/* [N, K] elements of ES bytes to [K, N], in 32 x 32 tiles, the strips of K over threads. */
#define TRANSPOSE(ES)                                                                              \
    _Pragma("omp parallel for schedule(static) if (N * K >= (1u << 20))")                          \
    for (long long b = 0; b < (long long)((K + 31) / 32); b++)                                     \
        for (uint64_t n0 = 0; n0 < N; n0 += 32)                                                    \
            for (uint64_t k = (uint64_t)b * 32; k < K && k < (uint64_t)b * 32 + 32; k++)           \
                for (uint64_t n = n0; n < N && n < n0 + 32; n++) memcpy(out + (k * N + n) * ES, in + (n * K + k) * ES, ES)

static void transpose(const uint8_t *in, uint8_t *out, uint64_t N, uint64_t K, size_t es)
{
    if (es == 2) TRANSPOSE(2);
    else TRANSPOSE(4);
}

/* Stacked experts to what transformers' GptOssExperts loads: expert by expert, W [N, K]
 * dequantized, then written as [K, N] (doc/formats/fp4.md §5). Memory: one expert's W, twice
 * in the output dtype and once in f32. */
static mp_errcode produce_experts_kn(job *j, mp_st_writer *w, const out_tensor *o, mp_err *err)
{
    const mp_qlinear *q = o->lin;
    uint64_t E = q->n_experts, N = q->n_rows / E, K = q->k_cols;
    size_t oes = mp_dtype_bits(o->spec.dtype) / 8, cnt = (size_t)(N * K);
    float *tile = malloc(cnt * sizeof *tile);
    uint8_t *bytes = malloc(cnt * oes), *kn = malloc(cnt * oes);
    mp_errcode rc = tile && bytes && kn ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = check_block_scales(j, q, err);
    for (uint64_t e = 0; e < E && rc == MP_OK; e++) {
        rc = check_interrupt(j, err);
        if (rc == MP_OK) rc = dequant_rows(j, o, e * N, (e + 1) * N, tile, bytes, err);
        if (rc != MP_OK) break;
        transpose(bytes, kn, N, K, oes);
        rc = mp_st_writer_write(w, kn, cnt * oes, err);
        mp_report_add(&j->progress, cnt * oes);
    }
    free(tile);
    free(bytes);
    free(kn);
    return rc;
}

typedef struct sink_ctx {
    job *j;
    mp_st_writer *w;
} sink_ctx;

static mp_errcode write_sink(void *ctx, const void *buf, size_t len, mp_err *err)
{
    sink_ctx *c = ctx;
    MP_FORWARD(check_interrupt(c->j, err));
    MP_FORWARD(mp_st_writer_write(c->w, buf, len, err));
    mp_report_add(&c->j->progress, len);
    return MP_OK;
}

static mp_errcode produce_repack(job *j, mp_st_writer *w, const out_tensor *o, mp_err *err)
{
    sink_ctx c = {j, w};
    return mp_pack_produce(j->m, &j->o->pack, o->plan, o->part, &j->scratch, write_sink, &c, err);
}

/* cutlass-int4 codes and scales are rows of n, so stacking is concatenation in file order:
 * per expert, the gate rows then the up rows (w13), or the down rows (w2). */
static mp_errcode produce_stack(job *j, mp_st_writer *w, const out_tensor *o, mp_err *err)
{
    sink_ctx c = {j, w};
    const expert_stack *st = o->stack;
    for (size_t e = 0; e < st->n; e++) {
        if (o->w2) {
            MP_FORWARD(mp_pack_produce(j->m, &j->o->pack, st->down[e], o->part, &j->scratch, write_sink, &c, err));
        } else {
            MP_FORWARD(mp_pack_produce(j->m, &j->o->pack, st->gate[e], o->part, &j->scratch, write_sink, &c, err));
            MP_FORWARD(mp_pack_produce(j->m, &j->o->pack, st->up[e], o->part, &j->scratch, write_sink, &c, err));
        }
    }
    return MP_OK;
}

/* ------------------------------------------------------------ shards */

mp_errcode mp_write_shard(const mp_dest *d, const char *name, const mp_out_table *t, uint32_t s,
                          mp_produce_fn produce, void *ctx, mp_mfile *file, mp_err *err)
{
#define OUT_AT(i, off) ((char *)t->base + (i) * t->stride + (off))
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) n += *(uint32_t *)OUT_AT(i, t->shard_off) == s;
    mp_tensor_spec *specs = malloc((n ? n : 1) * sizeof *specs);
    size_t *map = malloc((n ? n : 1) * sizeof *map);
    uint64_t *digests = malloc((n ? n : 1) * sizeof *digests);
    char *path = mp_dest_path(d, name);
    mp_st_writer *w = NULL;
    mp_errcode rc = MP_OK;
    if (!specs || !map || !digests || !path) {
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        goto cleanup;
    }
    n = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (*(uint32_t *)OUT_AT(i, t->shard_off) != s) continue;
        specs[n] = *(mp_tensor_spec *)OUT_AT(i, t->spec_off);
        map[n++] = i;
    }
    const char *meta[] = {"producer", "modelprep " MP_VERSION};
    rc = mp_st_writer_open(&w, path, specs, n, meta, 1, err);
    free(specs); /* the writer keeps its own copy: not held twice while the shard is written */
    specs = NULL;
    for (size_t next; rc == MP_OK && (next = mp_st_writer_next(w)) != SIZE_MAX;) rc = produce(ctx, w, map[next], err);
    if (rc == MP_OK) {
        uint8_t h[16];
        mp_st_writer_digest(w, digests, h);
        for (size_t k = 0; k < n; k++) *(uint64_t *)OUT_AT(map[k], t->xxh64_off) = digests[k];
        snprintf(file->name, sizeof file->name, "%s", name);
        file->size = mp_st_writer_file_size(w);
        memcpy(file->xxh128, h, 16);
        rc = mp_st_writer_finish(w, err);
        w = NULL;
    }
cleanup:
    mp_st_writer_abort(w);
    free(specs);
    free(map);
    free(digests);
    free(path);
    return rc;
#undef OUT_AT
}

static mp_errcode produce_out(void *ctx, mp_st_writer *w, size_t i, mp_err *err)
{
    job *j = ctx;
    const out_tensor *o = &j->outs[i];
    if (o->from == ORIGIN_DEQUANT && o->lin->scheme->dense_experts_kn) return produce_experts_kn(j, w, o, err);
    if (o->from == ORIGIN_DEQUANT) return produce_dequant(j, w, o, err);
    if (o->from == ORIGIN_REPACK) return produce_repack(j, w, o, err);
    if (o->from == ORIGIN_STACK) return produce_stack(j, w, o, err);
    if (o->from == ORIGIN_CAST) return produce_cast(j, w, o, err);
    return produce_copy(j, w, o, err);
}

static mp_errcode write_shard(job *j, size_t s, mp_err *err)
{
    mp_out_table t = {j->outs, j->n_outs, sizeof *j->outs, offsetof(out_tensor, spec), offsetof(out_tensor, shard),
                      offsetof(out_tensor, xxh64)};
    return mp_write_shard(&j->dest, j->shard_names[s], &t, (uint32_t)s, produce_out, j, &j->files[s], err);
}

/* ------------------------------------------------------------ side files, index, manifest */

static mp_errcode write_config(job *j, mp_err *err)
{
    char *path = mp_path_join(mp_st_dir(j->m), "config.json");
    if (!path) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = MP_OK;
    if (!mp_exists(path)) {
        free(path);
        return MP_OK;
    }
    char *text = NULL;
    size_t len = 0;
    mp_buf a = MP_BUF_INIT, b = MP_BUF_INIT;
    char dtype[32];
    snprintf(dtype, sizeof dtype, "\"%s\"", target_traits[j->o->target].torch);
    mp_buf qc = MP_BUF_INIT;
    rc = mp_read_small_file(path, 16u << 20, &text, &len, err);
    if (rc == MP_OK && j->o->packed)
        rc = mp_pack_config(&j->o->pack, j->plans, mp_qmodel_n_linears(j->qm), j->qm, &qc, err);
    if (rc == MP_OK)
        rc = mp_json_set_member(text, len, "quantization_config", j->o->packed ? qc.data : NULL, &a, err);
    if (rc == MP_OK && j->o->packed) {
        mp_buf_put(&b, a.data, a.len);
        if (b.oom) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    } else if (rc == MP_OK) {
        rc = mp_json_set_member(a.data, a.len, "torch_dtype", dtype, &b, err);
        const mp_scheme *L = mp_qmodel_layout(j->qm);
        if (rc == MP_OK && L && L->config_drop) { /* DeepSeek-V4's expert_dtype goes with the quantization */
            mp_buf_release(&a);
            rc = mp_json_set_member(b.data, b.len, L->config_drop, NULL, &a, err);
            mp_buf_release(&b);
            mp_buf_put(&b, a.data, a.len);
            if (b.oom) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        }
    }
    mp_buf_release(&qc);
    if (rc == MP_OK) rc = mp_dest_write_file(&j->dest, "config.json", b.data, b.len, err);
    if (rc != MP_OK) mp_err_set_file(err, path);
    mp_buf_release(&a);
    mp_buf_release(&b);
    free(text);
    free(path);
    return rc;
}

/* The manifest's view of the outputs (caller frees); *bytes receives their total. */
static mp_mtensor *tensor_table(const job *j, uint64_t *bytes)
{
    mp_mtensor *mt = calloc(j->n_outs ? j->n_outs : 1, sizeof *mt);
    for (size_t i = 0; mt && i < j->n_outs; i++) {
        const out_tensor *o = &j->outs[i];
        mt[i] = (mp_mtensor){o->spec.name, j->shard_names[o->shard], o->spec.dtype, o->spec.n_dims,
                             o->spec.shape, o->xxh64, origin_names[o->from]};
        *bytes += o->bytes;
    }
    return mt;
}

static mp_errcode finish_dest(job *j, const char *src, size_t *n_side, mp_err *err)
{
    MP_FORWARD(write_config(j, err));
    uint64_t bytes = 0;
    mp_mtensor *mt = tensor_table(j, &bytes);
    mp_errcode rc = mt ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    char quant[160] = "";
    if (mp_qmodel_quantized(j->qm) && mp_qmodel_n_linears(j->qm))
        snprintf(quant, sizeof quant, "%s %s", mp_qmethod_name(mp_qmodel_method(j->qm)),
                 mp_qmodel_linear(j->qm, 0)->format);
    mp_buf layout = MP_BUF_INIT;
    if (j->o->packed) {
        mp_buf_printf(&layout, "{\"name\": \"%s\", \"dense\": false, \"quantization_config\": ",
                      j->o->pack.target->name);
        if (rc == MP_OK)
            rc = mp_pack_config(&j->o->pack, j->plans, mp_qmodel_n_linears(j->qm), j->qm, &layout, err);
        mp_buf_puts(&layout, ", \"stacked_experts\": [");
        for (size_t s2 = 0; s2 < j->n_stacks; s2++) {
            mp_buf_puts(&layout, s2 ? ", {\"prefix\": " : "{\"prefix\": ");
            mp_buf_json_str(&layout, j->stacks[s2].prefix);
            mp_buf_printf(&layout, ", \"experts\": %zu, \"w13\": [\"gate\", \"up\"], \"w2\": \"down\"}",
                          j->stacks[s2].n);
        }
        mp_buf_puts(&layout, "]}");
    } else {
        mp_buf_printf(&layout, "{\"name\": \"%s\", \"dtype\": \"%s\", \"dense\": true}",
                      target_traits[j->o->target].torch, mp_dtype_name(target_traits[j->o->target].dtype));
    }
    if (rc == MP_OK && layout.oom) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    /* The quantization side files describe weights the output no longer has (ModelOpt's
     * hf_quant_config.json would make loaders expect FP8 again). */
    static const char *const skip[] = {"config.json", "quantize_config.json", "quant_config.json",
                                       "hf_quant_config.json", "modelprep.json", NULL};
    static const char *const extra[] = {"config.json", NULL};
    mp_job_tail t = {.src = src, .argc = j->o->argc, .argv = j->o->argv,
                     .source_quant = quant[0] ? quant : NULL, .tensors = mt, .n_tensors = j->n_outs,
                     .index_name = j->n_shards > 1 ? "model.safetensors.index.json" : NULL,
                     .tensor_bytes = bytes, .side_dir = mp_st_dir(j->m), .src_is_dir = mp_is_dir(src),
                     .side_skip = skip, .files = j->files, .n_files = j->n_files, .extra = extra,
                     .src_hash = j->src_hash, .n_src_files = mp_st_n_files(j->m),
                     .src_files = j->part ? mp_part_sources(j->part) : NULL,
                     .layout_json = layout.data};
    j->src_hash = NULL;
    if (rc == MP_OK) rc = mp_job_finish(&j->dest, &t, err);
    else mp_src_hash_finish(t.src_hash, NULL, NULL);
    j->n_files = t.n_files;
    *n_side = t.n_side;
    mp_buf_release(&layout);
    free(mt);
    return rc;
}

/* 1 when the index text's weight_map lists `base` and some other file too. */
static int lists_as_one_of_several(const char *text, size_t len, const char *base)
{
    cJSON *root = cJSON_ParseWithLength(text, len);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map"), *e;
    int listed = 0, other = 0;
    cJSON_ArrayForEach(e, map)
    {
        if (!cJSON_IsString(e)) continue;
        const char *f = e->valuestring, *slash = strrchr(f, '/');
        if (strcmp(slash ? slash + 1 : f, base) == 0) listed = 1;
        else other = 1;
    }
    cJSON_Delete(root);
    return listed && other;
}

mp_errcode mp_refuse_one_shard(const char *src, const mp_st_model *m, mp_err *err)
{
    if (mp_is_dir(src) || mp_st_is_sharded(m)) return MP_OK;
    const char *slash = strrchr(src, '/'), *base = slash ? slash + 1 : src;
    static const char *const names[] = {"model.safetensors.index.json", "model.safetensors.zst.index.json"};
    for (size_t i = 0; i < 2; i++) {
        char *path = mp_path_join(mp_st_dir(m), names[i]), *text = NULL;
        size_t len = 0;
        mp_err ignored = MP_ERR_INIT; /* an unreadable index beside a file says nothing of it */
        int one = path && mp_read_small_file(path, 64u << 20, &text, &len, &ignored) == MP_OK &&
                  lists_as_one_of_several(text, len, base);
        free(text);
        free(path);
        if (one)
            return mp_errf_at(err, MP_E_INPUT, src, NULL, -1,
                              "is one shard of a sharded model (%s beside it lists other files); pass "
                              "the directory '%s' to read the whole model", names[i], mp_st_dir(m));
    }
    return MP_OK;
}

/* Opens the source (*m, *qm: the caller closes them), its quantized linears and config.json,
 * then plans every output and allocates the job's buffers. oc is the job's copy of the options
 * (it takes torch_dtype). */
static mp_errcode open_and_plan(job *j, const char *src, mp_convert_opts *oc, mp_st_model **m, mp_qmodel **qm,
                                mp_err *err)
{
    mp_hf_config cfg;
    MP_FORWARD(mp_st_open(m, src, err));
    MP_FORWARD(mp_refuse_one_shard(src, *m, err));
    MP_FORWARD(mp_qmodel_open(qm, *m, err));
    MP_FORWARD(mp_hf_config_load(&cfg, mp_st_dir(*m), err));
    MP_FORWARD(mp_st_check_name_numbers(*m, &cfg, err));
    j->m = *m;
    j->qm = *qm;
    if (cfg.torch_dtype[0]) oc->pack.torch_dtype = cfg.torch_dtype;
    MP_FORWARD(plan(j, err));
    j->files = calloc(j->n_shards + 3, sizeof *j->files);
    j->chunk = malloc(CHUNK_BYTES);
    j->tile = malloc(TILE_BYTES);
    j->tile_out = malloc(TILE_BYTES);
    if (!j->files || !j->chunk || !j->tile || !j->tile_out) return mp_errf(err, MP_E_NOMEM, "out of memory");
    return MP_OK;
}

/* ------------------------------------------------------------ running the job */

static mp_errcode write_shards(job *j, mp_err *err)
{
    uint64_t total = 0;
    for (size_t i = 0; i < j->n_outs; i++)
        if (!j->part || mp_part_owns(j->part, j->outs[i].shard)) total += j->outs[i].bytes;
    mp_report_start(&j->progress, "convert", total);
    mp_errcode rc = MP_OK;
    for (size_t s = 0; s < j->n_shards && rc == MP_OK; s++)
        if (!j->part || mp_part_owns(j->part, s)) rc = write_shard(j, s, err);
    mp_report_end(&j->progress);
    j->n_files = j->n_shards;
    return rc;
}

/* A whole run: a fresh partial directory, every shard, the tail, the commit. */
static mp_errcode run_whole(job *j, const char *dst, const char *src, size_t *n_side, mp_err *err)
{
    MP_FORWARD(mp_journal_begin_dest(&j->dest, dst, src, "convert", j->m, NULL, j->o->force, &j->progress, err));
    mp_errcode rc = mp_src_hash_start(&j->src_hash, j->m, err);
    if (rc == MP_OK) rc = write_shards(j, err);
    if (rc == MP_OK) rc = finish_dest(j, src, n_side, err);
    if (rc == MP_OK) rc = mp_dest_commit(&j->dest, err);
    if (rc != MP_OK) mp_dest_abort(&j->dest);
    return rc;
}

static void count_outputs(const job *j, mp_convert_result *res)
{
    for (size_t i = 0; i < j->n_outs; i++) {
        const out_tensor *o = &j->outs[i];
        res->n_dequantized += o->from == ORIGIN_DEQUANT;
        res->n_repacked += o->from == ORIGIN_REPACK && o->part == PART_CODES;
        res->n_stacks += o->from == ORIGIN_STACK && o->part == PART_CODES && !o->w2;
        res->n_cast += o->from == ORIGIN_CAST;
        res->n_copied += o->from == ORIGIN_COPY;
    }
    res->n_files = j->n_shards;
    res->n_tensors = j->n_outs;
}

static void job_release(job *j)
{
    mp_src_hash_finish(j->src_hash, NULL, NULL); /* joins the thread if still running */
    for (size_t i = 0; i < j->n_outs; i++) free(j->outs[i].owned_name);
    free(j->outs);
    for (size_t s2 = 0; s2 < j->n_stacks; s2++) {
        free(j->stacks[s2].gate);
        free(j->stacks[s2].up);
        free(j->stacks[s2].down);
    }
    free(j->stacks);
    free(j->stacked);
    free(j->plans);
    free(j->shard_names);
    free(j->files);
    free(j->chunk);
    free(j->tile);
    free(j->tile_out);
    mp_part_close(j->part);
    free(j->part_names);
    free(j->part_bytes);
    mp_pack_scratch_release(&j->scratch);
}

/* The shards the records hold and this run did not write: their entries and tensor hashes. */
static mp_errcode take_records(job *j, mp_err *err)
{
    for (size_t s = 0; s < j->n_shards; s++)
        if (!mp_part_owns(j->part, s)) MP_FORWARD(mp_part_file(j->part, s, &j->files[s], err));
    for (size_t i = 0; i < j->n_outs; i++) {
        out_tensor *o = &j->outs[i];
        if (!mp_part_owns(j->part, o->shard))
            MP_FORWARD(mp_part_tensor_xxh64(j->part, o->shard, o->spec.name, &o->xxh64, err));
    }
    return MP_OK;
}

/* This part's record, then, when this run merges, the tail from every record and the commit. */
static mp_errcode part_tail(job *j, mp_convert_opts *oc, const char *src, size_t *n_side, int *merged, mp_err *err)
{
    uint64_t bytes = 0;
    mp_mtensor *mt = tensor_table(j, &bytes);
    mp_errcode rc = mt ? mp_part_write_record(j->part, &j->dest, j->files, mt, j->n_outs, oc->argc, oc->argv, err)
                       : mp_errf(err, MP_E_NOMEM, "out of memory");
    free(mt);
    if (rc == MP_OK) rc = mp_part_try_merge(j->part, &j->dest, merged, err);
    if (rc != MP_OK || !*merged) return rc;
    oc->argv = mp_part_argv(j->part, &oc->argc); /* the same manifest whichever task merges */
    MP_FORWARD(take_records(j, err));
    mp_part_sweep(j->part, &j->dest);
    MP_FORWARD(finish_dest(j, src, n_side, err));
    mp_part_unmark(j->part, &j->dest);
    return mp_dest_commit(&j->dest, err);
}

/* --part I/N, or a merge: the shared partial directory is kept, never removed, on failure. */
static mp_errcode run_part(job *j, mp_convert_opts *oc, const char *dst, const char *src, size_t *n_side,
                           mp_convert_result *res, mp_err *err)
{
    j->part_names = calloc(j->n_shards ? j->n_shards : 1, sizeof *j->part_names);
    j->part_bytes = calloc(j->n_shards ? j->n_shards : 1, sizeof *j->part_bytes);
    if (!j->part_names || !j->part_bytes) return mp_errf(err, MP_E_NOMEM, "out of memory");
    for (size_t s = 0; s < j->n_shards; s++) j->part_names[s] = j->shard_names[s];
    for (size_t i = 0; i < j->n_outs; i++) j->part_bytes[j->outs[i].shard] += j->outs[i].bytes;
    MP_FORWARD(mp_part_open(&j->part, &j->dest, &oc->part, dst, src, "convert", j->m, j->part_names, j->part_bytes,
                            j->n_shards, err));
    for (size_t s = 0; s < j->n_shards; s++) res->part_files += (size_t)mp_part_owns(j->part, s);
    snprintf(res->job_id, sizeof res->job_id, "%s", mp_part_id(j->part));
    res->part_count = mp_part_count(j->part);
    res->part_done = mp_part_done(j->part);
    mp_errcode rc = write_shards(j, err);
    if (rc == MP_OK) rc = part_tail(j, oc, src, n_side, &res->merged, err);
    if (rc != MP_OK || !res->merged) mp_dest_keep(&j->dest);
    return rc;
}

mp_errcode mp_convert_run(const char *src, const char *dst, const mp_convert_opts *o,
                            mp_convert_result *res, mp_err *err)
{
    job j;
    memset(&j, 0, sizeof j);
    j.dest = (mp_dest)MP_DEST_INIT;
    memset(res, 0, sizeof *res);
    mp_convert_opts oc = *o;
    j.o = &oc;
    j.progress = (mp_reporter){.fn = o->progress, .user = o->progress_user, .quiet = o->quiet};
    double t0 = mp_now();
    if (o->threads > 0) omp_set_num_threads(o->threads);
    size_t n_side = 0;
    mp_st_model *m = NULL;
    mp_qmodel *qm = NULL;
    mp_errcode rc = open_and_plan(&j, src, &oc, &m, &qm, err);
    if (rc == MP_OK)
        rc = j.o->part.count || j.o->part.merge ? run_part(&j, &oc, dst, src, &n_side, res, err)
                                                : run_whole(&j, dst, src, &n_side, err);
    if (rc == MP_OK) {
        count_outputs(&j, res);
        res->n_side_files = n_side;
        for (size_t i = 0; i < j.n_outs; i++) res->bytes += j.outs[i].bytes;
        res->seconds = mp_now() - t0;
    }
    job_release(&j);
    mp_qmodel_free(qm);
    mp_st_close(m);
    return rc;
}
