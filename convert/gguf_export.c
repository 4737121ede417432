/*
 * gguf_export.c - `modelprep convert SRC DST.gguf --to gguf[:auto|f32|f16|bf16|q8_0]`: a
 * Hugging Face checkpoint as a GGUF file that llama.cpp loads (doc/gguf-export.md; the facts
 * are in doc/formats/gguf-export.md).
 *
 * - Architectures: llama and mistral (written as "llama", q/k rows permuted per head for its
 *   rope layout), qwen2, qwen3, qwen3_moe (experts stacked into ffn_*_exps {K, N, E}, the router
 *   F32), gemma3 (norm weights stored as 1 + w), gpt-oss (MXFP4 experts moved into ggml's MXFP4
 *   byte for byte, gate_up split by rows; doc/formats/gguf-export.md §5). Others are refused.
 * - Names: transformers' names mapped to llama.cpp's; a tensor with no llama.cpp counterpart is
 *   refused (llama.cpp fails on a tensor it does not expect); a tied lm_head is left out.
 * - Values, per tensor: 1-D tensors F32; quantized linears under `auto` moved into the ggml
 *   block type that holds their codes exactly (repack/gguf_blocks.c), under f32/f16/bf16
 *   dequantized by the CPU reference (verify/), under q8_0 quantized like gguf-py; dense 2-D
 *   tensors keep their float type under `auto`, else are cast or quantized.
 * - Refusals come before the output exists: every linear is checked (act-order, group and K
 *   against the 32-element block, bit width and zero points, scales that f16 holds exactly).
 *
 * Memory: tensors stream in tiles of about TILE_ELEMS elements (whole heads when permuted); a
 * linear's zero points and scales (N x G each) are held while it is written.
 */
#define _GNU_SOURCE
#include "gguf_export.h"
#include "gguf_names.h"
#include "journal.h"
#include "pipeline.h"
#include "../repack/repack.h"
#include "../verify/verify.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define TILE_ELEMS (4u << 20)

/* ------------------------------------------------------------ architectures and names */

typedef struct xarch {
    const char *model_type;   /* config.json */
    const char *gguf;         /* general.architecture */
    int permute_qk;           /* LlamaModel.permute (doc/formats/gguf-export.md §2.3) */
    int gemma;                /* norms stored as 1 + w, gemma3's four norms and keys */
    int oss;                  /* gpt-oss: sinks, router, MXFP4 experts split and stacked, SWA */
} xarch;

static const xarch archs[] = {
    {"llama", "llama", 1, 0, 0},       {"mistral", "llama", 1, 0, 0},
    {"qwen2", "qwen2", 0, 0, 0},       {"qwen3", "qwen3", 0, 0, 0},
    {"qwen3_moe", "qwen3moe", 0, 0, 0}, {"gemma3_text", "gemma3", 0, 1, 0},
    {"gpt_oss", "gpt-oss", 0, 0, 1},
};

static unsigned family(const xarch *a)
{
    return a->gemma ? MP_GGUF_FAM_GEMMA : a->oss ? MP_GGUF_FAM_OSS : MP_GGUF_FAM_PLAIN;
}

/* The GGUF name of Hugging Face tensor `name` (a ".weight" or ".bias", or gpt-oss's bare
 * parameter "sinks", which becomes a ".weight"), into out; 0 when it has none. */
static int gguf_name(const xarch *a, const char *name, char *out, size_t cap)
{
    const char *dot = strrchr(name, '.'), *kind = dot;
    if (dot && strcmp(dot, ".sinks") == 0) {
        dot = name + strlen(name);
        kind = ".weight";
    } else if (!dot || (strcmp(dot, ".weight") != 0 && strcmp(dot, ".bias") != 0)) {
        return 0;
    }
    size_t stem = (size_t)(dot - name);
    for (size_t i = 0; i < mp_gguf_n_top_names; i++)
        if (strlen(mp_gguf_top_names[i].hf) == stem && strncmp(name, mp_gguf_top_names[i].hf, stem) == 0)
            return snprintf(out, cap, "%s%s", mp_gguf_top_names[i].gguf, kind) < (int)cap;
    static const char pfx[] = "model.layers.";
    if (strncmp(name, pfx, sizeof pfx - 1) != 0) return 0;
    const char *num = name + sizeof pfx - 1;
    uint64_t layer;
    const char *why;
    size_t nd = mp_parse_name_index(num, INT32_MAX, &layer, &why); /* doc/limits.md */
    if (nd == 0 || num[nd] != '.') return 0;
    const char *part = num + nd + 1;
    size_t plen = (size_t)(dot - part);
    for (size_t i = 0; i < mp_gguf_n_layer_names; i++) {
        const mp_gguf_name *n = &mp_gguf_layer_names[i];
        if (!(n->fam & family(a))) continue;
        if (strlen(n->hf) == plen && strncmp(part, n->hf, plen) == 0)
            return snprintf(out, cap, "blk.%llu.%s%s", (unsigned long long)layer, n->gguf, kind) < (int)cap;
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ------------------------------------------------------------ targets */

static const char *const to_names[MP_GGUF_TO_COUNT] = {
    [MP_GGUF_TO_AUTO] = "auto", [MP_GGUF_TO_F32] = "f32", [MP_GGUF_TO_F16] = "f16",
    [MP_GGUF_TO_BF16] = "bf16", [MP_GGUF_TO_Q8_0] = "q8_0",
};

const char *mp_gguf_to_name(mp_gguf_to t) { return t < MP_GGUF_TO_COUNT ? to_names[t] : "?"; }

int mp_gguf_to_parse(const char *to, mp_gguf_to *out)
{
    if (strcmp(to, "gguf") == 0) {
        *out = MP_GGUF_TO_AUTO;
        return 1;
    }
    if (strncmp(to, "gguf:", 5) != 0) return 0;
    for (int t = 0; t < MP_GGUF_TO_COUNT; t++)
        if (strcmp(to + 5, to_names[t]) == 0) {
            *out = (mp_gguf_to)t;
            return 1;
        }
    return -1;
}

/* llama_ftype of a file whose weights are mostly `type` (doc/formats/gguf-export.md §1.2). */
static uint32_t file_type_of(uint32_t type)
{
    switch (type) {
    case MP_GGUF_F32: return 0;
    case MP_GGUF_F16: return 1;
    case MP_GGUF_Q4_0: return 2;
    case MP_GGUF_Q8_0: return 7;
    case MP_GGUF_Q5_0: return 8;
    default: return 32; /* BF16 */
    }
}

static uint32_t float_type(mp_dtype d)
{
    return d == MP_DTYPE_F16 ? MP_GGUF_F16 : d == MP_DTYPE_BF16 ? MP_GGUF_BF16 : MP_GGUF_F32;
}

/* ------------------------------------------------------------ the plan */

typedef enum { ENC_COPY, ENC_FLOAT, ENC_BLOCKS, ENC_Q8, ENC_MXFP4 } xenc;

typedef struct xout {
    char name[MP_GGUF_MAX_NAME];
    const mp_tensor *t;           /* a dense source tensor, or */
    const mp_qlinear *lin;        /* a quantized linear */
    uint32_t type;                /* ggml type written */
    uint32_t n_dims;
    uint64_t ne[MP_GGUF_MAX_DIMS];
    uint64_t rows, cols;          /* processed as rows of cols elements */
    uint64_t head_dim;            /* > 0: rows permuted per head of head_dim rows */
    int norm_shift;               /* gemma3: 1 + w */
    xenc enc;
    const mp_gguf_block_rule *rule;
    float *gen;                   /* a generated tensor's values (rope_freqs), owned */
    const mp_tensor **et;         /* MoE: the experts' dense tensors, or */
    const mp_qlinear **el;        /* their quantized linears, [n_exp], owned */
    uint32_t n_exp;               /* > 0: experts stacked as ne {K, N, n_exp} */
    uint64_t exp_rows;            /* N of one expert */
    uint64_t exp_src_rows;        /* > 0: the experts are one stacked source linear (gpt-oss
                                     MXFP4), this many rows each */
    uint64_t src_base;            /* the current expert's first row in that linear */
    uint32_t row_step, row_first; /* > 1: output row r is source row r * step + first (gpt-oss
                                     gate_up de-interleaved: 0 gate, 1 up) */
    uint32_t col_step, col_first; /* the same along a row (gate_up's bias) */
    uint64_t xxh64;
    const char *origin;           /* copy, cast, repack, dequantize, quantize, generate */
} xout;

static uint64_t row_step(const xout *o) { return o->row_step > 1 ? o->row_step : 1; }

/* Elements of a source row: cols, or cols * col_step when a row is de-interleaved. */
static uint64_t src_cols(const xout *o) { return o->col_step > 1 ? o->cols * o->col_step : o->cols; }

typedef struct xmember xmember;

typedef struct xjob {
    const mp_convert_opts *o;
    const mp_gguf_export_opts *x;
    const mp_st_model *m;
    const mp_qmodel *qm;
    mp_hf_hparams h;
    const xarch *arch;
    xout *outs;
    size_t n_outs;
    xmember *members;             /* MoE expert tensors, stacked by plan_stacks */
    size_t n_members;
    uint64_t head_dim;
    size_t tile_cap;              /* elements the buffers hold */
    uint8_t *raw, *codes, *enc;
    float *fl, *perm;
    uint16_t *z, *d;              /* the current linear's zero points and f16 scales, [N][G] */
    mp_gguf_writer *w;
    char (*files)[512];           /* the files written: the GGUF, or its splits */
    size_t n_files;
    size_t *tensor_file;          /* index into files of each output */
    XXH64_state_t *xxh;
    mp_reporter progress;
} xjob;

static int cmp_out(const void *pa, const void *pb)
{
    return mp_natcmp(((const xout *)pa)->name, ((const xout *)pb)->name);
}

/* The stored zero points of a linear as z[n][g], with the scheme's offset (GPTQ v1's z - 1)
 * applied; 2^(b-1) when implied. */
static mp_errcode read_zeros(const mp_st_model *m, const mp_qlinear *q, uint16_t *z, mp_err *err)
{
    uint64_t N = q->n_rows, G = q->n_groups;
    if (q->zero == MP_QZERO_IMPLIED) {
        for (uint64_t i = 0; i < N * G; i++) z[i] = (uint16_t)(1u << (q->bits - 1));
        return MP_OK;
    }
    mp_packing cp, zp;
    mp_layout_source(q, &cp, &zp);
    const mp_tensor *t = q->qzeros;
    mp_pblock b = mp_packing_block(&zp, t->shape, 0, N, 0, G);
    uint64_t bytes = (b.r1 - b.r0) * (b.c1 - b.c0) * zp.container_bytes;
    b.data = malloc(bytes ? (size_t)bytes : 1);
    uint8_t *codes = malloc((size_t)(N * G));
    mp_errcode rc = b.data && codes ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = mp_st_read_block(m, t, b.r0, b.r1, b.c0, b.c1, b.data, err);
    if (rc == MP_OK) {
        mp_qtile tile = {0, N, 0, G, codes};
        mp_unpack(&zp, &b, &tile, 0);
        for (uint64_t i = 0; i < N * G; i++) z[i] = (uint16_t)(codes[i] + q->zero_offset);
    }
    free(b.data);
    free(codes);
    return rc;
}

/* The scales of a linear as f16 bits d[n][g]. *bad is the first index n * G + g whose scale is
 * not an f16 value (f32 or bf16 scales, doc/formats/gguf-export.md §3), or UINT64_MAX. */
static mp_errcode read_scales(const mp_st_model *m, const mp_qlinear *q, uint16_t *d, uint64_t *bad,
                              mp_err *err)
{
    uint64_t N = q->n_rows, G = q->n_groups;
    const mp_tensor *t = q->scales;
    size_t es = mp_dtype_bits(t->dtype) / 8;
    uint64_t r1 = q->scales_nk ? N : G, c1 = q->scales_nk ? G : N;
    uint8_t *buf = malloc((size_t)(r1 * c1 * es) + 1);
    if (!buf) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = mp_st_read_block(m, t, 0, r1, 0, c1, buf, err);
    *bad = UINT64_MAX;
    for (uint64_t n = 0; rc == MP_OK && n < N; n++)
        for (uint64_t g = 0; g < G; g++) {
            const uint8_t *p = buf + (q->scales_nk ? n * G + g : g * N + n) * es;
            uint16_t h;
            if (t->dtype == MP_DTYPE_F16) {
                h = (uint16_t)(p[0] | p[1] << 8);
            } else {
                float f;
                if (t->dtype == MP_DTYPE_BF16) {
                    f = mp_bf16_to_f32((uint16_t)(p[0] | p[1] << 8));
                } else {
                    uint32_t u = mp_read_le32(p);
                    memcpy(&f, &u, 4);
                }
                h = mp_f32_to_f16(f);
                float back = mp_f16_to_f32(h);
                if (memcmp(&back, &f, 4) != 0 && *bad == UINT64_MAX) *bad = n * G + g;
            }
            d[n * G + g] = h;
        }
    free(buf);
    return rc;
}

/* Why linear q has no exact ggml block type (into why), or NULL with *rule set. */
static mp_errcode exact_rule(const xjob *j, const mp_qlinear *q, const mp_gguf_block_rule **rule,
                             char *why, size_t cap, mp_err *err)
{
    static const int cmin[] = {[MP_GGUF_Q4_0] = 0, [MP_GGUF_Q5_0] = 0, [MP_GGUF_Q8_0] = -128};
    static const int cmax[] = {[MP_GGUF_Q4_0] = 15, [MP_GGUF_Q5_0] = 31, [MP_GGUF_Q8_0] = 127};
    *rule = NULL;
    why[0] = '\0';
    if (q->scheme->elem != MP_ELEM_INT) /* float and table codes: no integer block holds them */
        return snprintf(why, cap, "its layout (%s) has no exact ggml block type", q->scheme->name), MP_OK;
    if (q->act_order)
        return snprintf(why, cap, "act-order (g_idx is not k / group size), so a 32-element "
                                  "block would mix groups"), MP_OK;
    if (q->k_cols % 32)
        return snprintf(why, cap, "K = %llu is not a multiple of the 32-element ggml block",
                        (unsigned long long)q->k_cols), MP_OK;
    if (q->group_size % 32)
        return snprintf(why, cap, "group size %llu is not a multiple of the 32-element ggml block",
                        (unsigned long long)q->group_size), MP_OK;
    uint64_t N = q->n_rows, G = q->n_groups, bad;
    uint16_t *z = malloc((size_t)(N * G) * 2 + 2), *d = malloc((size_t)(N * G) * 2 + 2);
    mp_errcode rc = z && d ? read_zeros(j->m, q, z, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = read_scales(j->m, q, d, &bad, err);
    int mid = 1, lo = 1 << 30, hi = -1;
    for (uint64_t i = 0; rc == MP_OK && i < N * G; i++) {
        mid &= z[i] == 1u << (q->bits - 1);
        lo = z[i] < lo ? z[i] : lo;
        hi = z[i] > hi ? z[i] : hi;
    }
    const mp_gguf_block_rule *r = rc == MP_OK ? mp_gguf_block_rule_for(q->bits, mid) : NULL;
    int maxq = (1 << q->bits) - 1;
    if (rc != MP_OK) {
    } else if (!r) {
        snprintf(why, cap, "%u-bit codes with zero points other than %u (asymmetric) fit no ggml "
                           "block type exactly", q->bits, 1u << (q->bits - 1));
    } else if (r->offset - hi < cmin[r->type] || maxq - lo + r->offset > cmax[r->type]) {
        snprintf(why, cap, "zero points from %d to %d put codes outside %s's range", lo, hi,
                 mp_gguf_type_name(r->type));
    } else if (bad != UINT64_MAX) {
        snprintf(why, cap, "the %s scale at row %llu, group %llu is not an f16 value",
                 mp_dtype_name(q->scales->dtype), (unsigned long long)(bad / G),
                 (unsigned long long)(bad % G));
    } else {
        *rule = r;
    }
    free(z);
    free(d);
    return rc;
}

static mp_errcode plan_linear(xjob *j, xout *o, mp_err *err)
{
    const mp_qlinear *q = o->lin;
    switch (j->x->to) {
    case MP_GGUF_TO_AUTO: {
        char why[256];
        MP_FORWARD(exact_rule(j, q, &o->rule, why, sizeof why, err));
        if (!o->rule)
            return mp_errf_at(err, MP_E_INPUT, NULL, q->prefix, -1,
                              "%s; it cannot go into GGUF unchanged: use --to gguf:f16, gguf:bf16 or "
                              "gguf:f32 (dequantized) or --to gguf:q8_0 (re-quantized)", why);
        o->type = o->rule->type;
        o->enc = ENC_BLOCKS;
        o->origin = "repack";
        return MP_OK;
    }
    case MP_GGUF_TO_Q8_0:
        o->type = o->cols % 32 ? MP_GGUF_F16 : MP_GGUF_Q8_0;
        o->enc = o->cols % 32 ? ENC_FLOAT : ENC_Q8;
        o->origin = o->cols % 32 ? "dequantize" : "quantize";
        return MP_OK;
    default:
        o->type = j->x->to == MP_GGUF_TO_F32 ? MP_GGUF_F32 : j->x->to == MP_GGUF_TO_F16 ? MP_GGUF_F16 : MP_GGUF_BF16;
        o->enc = ENC_FLOAT;
        o->origin = "dequantize";
        return MP_OK;
    }
}

static mp_errcode plan_dense(xjob *j, xout *o, mp_err *err)
{
    const mp_tensor *t = o->t;
    int is_float = t->dtype == MP_DTYPE_F32 || t->dtype == MP_DTYPE_F16 || t->dtype == MP_DTYPE_BF16 ||
                   t->dtype == MP_DTYPE_F64;
    if (!is_float)
        return mp_errf_at(err, MP_E_INPUT, mp_st_file_name(j->m, t->file), t->name, -1,
                          "dtype %s is not a float type, and the tensor is not part of a quantized linear",
                          mp_dtype_name(t->dtype));
    uint32_t src_type = float_type(t->dtype);
    if (o->n_dims == 1 || strstr(o->name, ".ffn_gate_inp.") || ends_with(o->name, ".bias")) { /* norms, biases, routers */
        o->type = MP_GGUF_F32;
    } else {
        switch (j->x->to) {
        case MP_GGUF_TO_AUTO: o->type = src_type; break;
        case MP_GGUF_TO_F32: o->type = MP_GGUF_F32; break;
        case MP_GGUF_TO_F16: o->type = MP_GGUF_F16; break;
        case MP_GGUF_TO_BF16: o->type = MP_GGUF_BF16; break;
        default: o->type = o->cols % 32 ? MP_GGUF_F16 : MP_GGUF_Q8_0;
        }
    }
    int same = o->type == src_type && t->dtype != MP_DTYPE_F64 && !o->norm_shift && o->col_step <= 1;
    o->enc = o->type == MP_GGUF_Q8_0 ? ENC_Q8 : same ? ENC_COPY : ENC_FLOAT;
    o->origin = o->enc == ENC_Q8 ? "quantize" : same ? "copy" : "cast";
    return MP_OK;
}

/* Shape, permutation and encoding of one output. */
static mp_errcode plan_one(xjob *j, xout *o, const mp_tensor *t, const mp_qlinear *lin, mp_err *err)
{
    o->lin = lin;
    o->t = lin ? NULL : t;
    uint64_t rows = lin ? lin->n_rows : t->n_dims == 2 ? t->shape[0] : 1;
    uint64_t cols = lin ? lin->k_cols : t->shape[t->n_dims - 1];
    if (!lin && (t->n_dims < 1 || t->n_dims > 2))
        return mp_errf_at(err, MP_E_INPUT, mp_st_file_name(j->m, t->file), t->name, -1,
                          "%u dimensions: only vectors and matrices are exported", t->n_dims);
    o->n_dims = rows > 1 || (lin || t->n_dims == 2) ? 2 : 1;
    o->ne[0] = cols;
    o->ne[1] = rows;
    o->rows = rows;
    o->cols = cols;
    int is_q = strstr(o->name, ".attn_q.") != NULL, is_k = strstr(o->name, ".attn_k.") != NULL;
    if (j->arch->permute_qk && (is_q || is_k)) {
        int64_t heads = is_q ? j->h.n_heads : j->h.n_kv_heads > 0 ? j->h.n_kv_heads : j->h.n_heads;
        uint64_t n = o->n_dims == 2 ? rows : cols;
        if (heads <= 0 || n % (2 * (uint64_t)heads))
            return mp_errf_at(err, MP_E_INPUT, NULL, o->name, -1,
                              "%llu rows do not split into %lld heads of an even size",
                              (unsigned long long)n, (long long)heads);
        o->head_dim = n / (uint64_t)heads;
        if (o->n_dims == 1) { /* a bias: its elements are the rows */
            o->rows = cols;
            o->cols = 1;
        }
    }
    o->norm_shift = j->arch->gemma && ends_with(o->name, "norm.weight");
    return lin ? plan_linear(j, o, err) : plan_dense(j, o, err);
}

/* ------------------------------------------------------------ MoE experts, stacked */

struct xmember {
    unsigned long layer, expert;
    int proj;                     /* 0 gate, 1 up, 2 down */
    const mp_tensor *t;
    const mp_qlinear *lin;
};

static const char *const proj_names[] = {"gate", "up", "down"};

/* What follows "model.layers.L.mlp.experts." in hf, with *layer = L; NULL when hf is not that. */
static const char *after_experts(const char *hf, unsigned long *layer)
{
    static const char pfx[] = "model.layers.", mid[] = ".mlp.experts.";
    if (strncmp(hf, pfx, sizeof pfx - 1) != 0) return NULL;
    uint64_t v;
    const char *why, *num = hf + sizeof pfx - 1;
    size_t nd = mp_parse_name_index(num, INT32_MAX, &v, &why); /* doc/limits.md */
    if (nd == 0 || strncmp(num + nd, mid, sizeof mid - 1) != 0) return NULL;
    *layer = (unsigned long)v;
    return num + nd + sizeof mid - 1;
}

/* 1 when hf is "model.layers.L.mlp.experts.E.{gate,up,down}_proj.weight". */
static int parse_expert(const char *hf, xmember *m)
{
    const char *p = after_experts(hf, &m->layer);
    if (!p) return 0;
    uint64_t v;
    const char *why;
    size_t nd = mp_parse_name_index(p, UINT32_MAX, &v, &why);
    const char *end2 = p + nd;
    if (nd == 0 || *end2 != '.') return 0;
    m->expert = (unsigned long)v;
    for (int i = 0; i < 3; i++) {
        char want[32];
        snprintf(want, sizeof want, "%s_proj.weight", proj_names[i]);
        if (strcmp(end2 + 1, want) == 0) {
            m->proj = i;
            return 1;
        }
    }
    return 0;
}

static int cmp_member(const void *pa, const void *pb)
{
    const xmember *a = pa, *b = pb;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    if (a->proj != b->proj) return a->proj < b->proj ? -1 : 1;
    return a->expert < b->expert ? -1 : a->expert > b->expert;
}

/* One rule for every expert of a stack: theirs when they agree, else the asymmetric rule of
 * their bit width (Q5_0 holds symmetric 4-bit codes as well). */
static mp_errcode stack_rule(xjob *j, xout *o, mp_err *err)
{
    for (uint32_t e = 0; e < o->n_exp; e++) {
        const mp_gguf_block_rule *r = NULL;
        char why[256];
        MP_FORWARD(exact_rule(j, o->el[e], &r, why, sizeof why, err));
        if (!r)
            return mp_errf_at(err, MP_E_INPUT, NULL, o->el[e]->prefix, -1,
                              "%s; it cannot go into GGUF unchanged: use --to gguf:f16, gguf:bf16 or "
                              "gguf:f32 (dequantized) or --to gguf:q8_0 (re-quantized)", why);
        if (e == 0) o->rule = r;
        else if (r != o->rule) o->rule = mp_gguf_block_rule_for(o->el[e]->bits, 0);
        if (!o->rule || o->el[e]->bits != o->el[0]->bits)
            return mp_errf_at(err, MP_E_INPUT, NULL, o->name, -1, "experts of different bit widths "
                              "cannot share one ggml tensor; use --to gguf:q8_0 or gguf:bf16");
    }
    o->type = o->rule->type;
    o->enc = ENC_BLOCKS;
    o->origin = "repack";
    return MP_OK;
}

/* The stack of members m[0..n) (one layer and projection, experts in order) as one output. */
static mp_errcode plan_stack(xjob *j, xout *o, const xmember *m, size_t n, mp_err *err)
{
    snprintf(o->name, sizeof o->name, "blk.%lu.ffn_%s_exps.weight", m[0].layer, proj_names[m[0].proj]);
    o->n_exp = (uint32_t)n;
    if (m[0].lin) o->el = calloc(n, sizeof *o->el);
    else o->et = calloc(n, sizeof *o->et);
    if (!o->el && !o->et) return mp_errf(err, MP_E_NOMEM, "out of memory");
    uint64_t N = m[0].lin ? m[0].lin->n_rows : m[0].t->shape[0];
    uint64_t K = m[0].lin ? m[0].lin->k_cols : m[0].t->shape[m[0].t->n_dims - 1];
    for (size_t e = 0; e < n; e++) {
        uint64_t Ne = m[e].lin ? m[e].lin->n_rows : m[e].t->shape[0];
        uint64_t Ke = m[e].lin ? m[e].lin->k_cols : m[e].t->shape[m[e].t->n_dims - 1];
        if (m[e].expert != e || !m[e].lin != !m[0].lin || Ne != N || Ke != K || (!m[e].lin && m[e].t->n_dims != 2))
            return mp_errf_at(err, MP_E_INPUT, NULL, o->name, -1, "expert %zu is missing, or differs in "
                              "shape or kind from expert 0", e);
        if (o->el) o->el[e] = m[e].lin;
        else o->et[e] = m[e].t;
    }
    o->exp_rows = N;
    o->rows = N * n;
    o->cols = K;
    o->n_dims = 3;
    o->ne[0] = K;
    o->ne[1] = N;
    o->ne[2] = n;
    o->lin = o->el ? o->el[0] : NULL;
    o->t = o->et ? o->et[0] : NULL;
    if (o->el && j->x->to == MP_GGUF_TO_AUTO) return stack_rule(j, o, err);
    return o->el ? plan_linear(j, o, err) : plan_dense(j, o, err);
}

static mp_errcode plan_stacks(xjob *j, xmember *m, size_t n, mp_err *err)
{
    qsort(m, n, sizeof *m, cmp_member);
    for (size_t a = 0, b; a < n; a = b) {
        for (b = a + 1; b < n && m[b].layer == m[a].layer && m[b].proj == m[a].proj; b++) {}
        MP_FORWARD(plan_stack(j, &j->outs[j->n_outs++], m + a, b - a, err));
    }
    return MP_OK;
}

/* ------------------------------------------------------------ gpt-oss: stacked experts, split */

/* 1 when hf is "model.layers.L.mlp.experts.{gate_up,down}_proj<tail>"; *gate_up says which. */
static int parse_packed(const char *hf, const char *tail, unsigned long *layer, int *gate_up)
{
    const char *p = after_experts(hf, layer);
    char want[32];
    for (int g = 0; p && g < 2; g++) {
        snprintf(want, sizeof want, "%s%s", g ? "gate_up_proj" : "down_proj", tail);
        if (strcmp(p, want) == 0) return (*gate_up = g), 1;
    }
    return 0;
}

/* gpt-oss's stacked linear q (MXFP4 [E, N, K/32, 16]) or its bias t ([E, N]) as llama.cpp's
 * ffn_{gate,up,down}_exps: gate_up's rows (of the bias: its elements) alternate gate, up and are
 * split; MXFP4 moves into ggml's block_mxfp4 under `auto` (doc/formats/gguf-export.md §5). */
static mp_errcode plan_packed(xjob *j, const mp_qlinear *q, const mp_tensor *t, unsigned long layer,
                              int gate_up, mp_err *err)
{
    const uint64_t parts = gate_up ? 2 : 1;
    if (t && t->n_dims != 2)
        return mp_errf_at(err, MP_E_INPUT, NULL, t->name, -1, "%u dimensions, expected [experts, outputs]", t->n_dims);
    uint64_t E = q ? q->n_experts : t->shape[0], N = q ? q->n_rows / E : t->shape[1];
    if (N % parts)
        return mp_errf_at(err, MP_E_INPUT, NULL, q ? q->prefix : t->name, -1, "%llu outputs an expert: gate "
                          "and up alternate, so gate_up needs an even count", (unsigned long long)N);
    for (uint64_t s = 0; s < parts; s++) {
        xout *o = &j->outs[j->n_outs++];
        snprintf(o->name, sizeof o->name, "blk.%lu.ffn_%s_exps.%s", layer, gate_up ? proj_names[s] : "down",
                 q ? "weight" : "bias");
        o->lin = q;
        o->t = t;
        o->cols = q ? q->k_cols : N / parts;
        o->rows = q ? N / parts * E : E;
        o->n_dims = q ? 3 : 2;
        o->ne[0] = o->cols;
        o->ne[1] = q ? N / parts : E;
        o->ne[2] = E;
        *(q ? &o->row_step : &o->col_step) = (uint32_t)parts;
        *(q ? &o->row_first : &o->col_first) = (uint32_t)s;
        if (!q) {
            MP_FORWARD(plan_dense(j, o, err));
            continue;
        }
        o->n_exp = (uint32_t)E;
        o->exp_src_rows = N;
        o->exp_rows = N / parts;
        if (j->x->to != MP_GGUF_TO_AUTO) {
            MP_FORWARD(plan_linear(j, o, err));
            continue;
        }
        o->type = MP_GGUF_MXFP4;
        o->enc = ENC_MXFP4;
        o->origin = "repack";
    }
    return MP_OK;
}

/* A gpt-oss expert tensor planned (*done), or refused when dense (transformers' [E, K, N]). */
static mp_errcode plan_oss_experts(xjob *j, const char *hf, const mp_tensor *t, const mp_qlinear *lin,
                                   int *done, mp_err *err)
{
    unsigned long layer;
    int gu;
    *done = 0;
    if (!j->arch->oss) return MP_OK;
    if ((lin && lin->n_experts && parse_packed(lin->prefix, "", &layer, &gu)) ||
        (!lin && parse_packed(hf, "_bias", &layer, &gu))) {
        *done = 1;
        return plan_packed(j, lin, lin ? NULL : t, layer, gu, err);
    }
    if (!lin && parse_packed(hf, "", &layer, &gu))
        return mp_errf_at(err, MP_E_UNSUPPORTED, mp_st_file_name(j->m, t->file), hf, -1, "dense gpt-oss "
                          "experts (stored transposed, [experts, in, out]) are not exported to GGUF; the "
                          "MXFP4 checkpoint is");
    return MP_OK;
}

static mp_errcode add_rope_freqs(xjob *j, mp_err *err);

static mp_errcode plan(xjob *j, mp_err *err)
{
    size_t n = mp_st_n_tensors(j->m);
    j->outs = calloc(2 * n + 1, sizeof *j->outs); /* gpt-oss's gate_up splits in two; + rope_freqs */
    j->members = calloc(n + 1, sizeof *j->members);
    if (!j->outs || !j->members) return mp_errf(err, MP_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const mp_tensor *t = mp_st_tensor(j->m, i);
        const mp_qlinear *lin = mp_qmodel_owner(j->qm, t);
        if (lin && t != lin->qweight && t != lin->bias) continue; /* zeros, scales, g_idx */
        if (ends_with(t->name, ".rotary_emb.inv_freq")) continue;  /* recomputed by llama.cpp */
        char hf[512];
        int whole = lin && t == lin->qweight;
        snprintf(hf, sizeof hf, whole ? "%s.weight" : "%s", whole ? lin->prefix : t->name);
        xmember em = {0, 0, 0, whole ? NULL : t, whole ? lin : NULL};
        int done;
        MP_FORWARD(plan_oss_experts(j, hf, t, whole ? lin : NULL, &done, err));
        if (done) continue;
        if (parse_expert(hf, &em)) {
            j->members[j->n_members++] = em;
            continue;
        }
        xout *o = &j->outs[j->n_outs];
        if (!gguf_name(j->arch, hf, o->name, sizeof o->name))
            return mp_errf_at(err, MP_E_UNSUPPORTED, mp_st_file_name(j->m, t->file), hf, -1,
                              "no counterpart in llama.cpp's '%s' architecture, which would refuse "
                              "a file holding it", j->arch->gguf);
        if (strcmp(o->name, "output.weight") == 0 && j->h.tie_word_embeddings == 1) continue;
        j->n_outs++;
        MP_FORWARD(plan_one(j, o, t, whole ? lin : NULL, err));
    }
    MP_FORWARD(plan_stacks(j, j->members, j->n_members, err));
    MP_FORWARD(add_rope_freqs(j, err));
    qsort(j->outs, j->n_outs, sizeof *j->outs, cmp_out);
    for (size_t i = 1; i < j->n_outs; i++)
        if (strcmp(j->outs[i - 1].name, j->outs[i].name) == 0)
            return mp_errf_at(err, MP_E_INPUT, NULL, j->outs[i].name, -1, "two source tensors map to this name");
    size_t need = TILE_ELEMS;
    for (size_t i = 0; i < j->n_outs; i++) {
        const xout *o = &j->outs[i];
        uint64_t unit = (o->head_dim ? o->head_dim * 8 : 8) * row_step(o);
        if (unit * src_cols(o) > need) need = (size_t)(unit * src_cols(o));
    }
    j->tile_cap = need;
    j->raw = malloc(need * 8);
    j->codes = malloc(need);
    j->enc = malloc(need * 4);
    j->fl = malloc(need * sizeof(float));
    j->perm = malloc(need * sizeof(float));
    if (!j->raw || !j->codes || !j->enc || !j->fl || !j->perm) return mp_errf(err, MP_E_NOMEM, "out of memory");
    return MP_OK;
}

/* ------------------------------------------------------------ producing one tensor */

/* The source row of output row r: LlamaModel.permute's inverse within each head, or gpt-oss's
 * de-interleave (doc/formats/gguf-export.md §5), in the current expert's rows. */
static uint64_t src_row(const xout *o, uint64_t r)
{
    if (o->head_dim) {
        uint64_t h = r / o->head_dim, i = r % o->head_dim;
        r = h * o->head_dim + (i % 2) * (o->head_dim / 2) + i / 2;
    }
    return o->src_base + r * row_step(o) + o->row_first;
}

/* The source rows [*lo, *hi) that output rows [r0, r1) (whole heads when permuted) come from. */
static void src_span(const xout *o, uint64_t r0, uint64_t r1, uint64_t *lo, uint64_t *hi)
{
    *lo = src_row(o, r0);
    *hi = *lo + (r1 - r0 - 1) * row_step(o) + 1;
}

/* gpt-oss MXFP4 rows [lo, hi): their code bytes into j->raw, their E8M0 scale bytes into
 * j->codes (doc/formats/gguf-export.md §5). */
static mp_errcode fetch_mxfp4(xjob *j, const mp_qlinear *q, uint64_t lo, uint64_t hi, mp_err *err)
{
    uint64_t cb = q->k_cols / 2, sb = q->k_cols / 32;
    MP_FORWARD(mp_st_read(j->m, q->qweight, lo * cb, j->raw, (size_t)((hi - lo) * cb), err));
    return mp_st_read(j->m, q->scales, lo * sb, j->codes, (size_t)((hi - lo) * sb), err);
}

/* Source rows [lo, hi) into j->raw (dense bytes), j->codes (canonical codes) or j->fl (floats),
 * in source order. */
static mp_errcode fetch(xjob *j, const xout *o, uint64_t lo, uint64_t hi, mp_err *err)
{
    if (o->gen) {
        memcpy(j->fl, o->gen + lo * o->cols, (size_t)((hi - lo) * o->cols) * sizeof(float));
        return MP_OK;
    }
    if (o->t) {
        const mp_tensor *t = o->t;
        size_t es = mp_dtype_bits(t->dtype) / 8;
        uint64_t n = (hi - lo) * src_cols(o);
        MP_FORWARD(mp_st_read(j->m, t, lo * src_cols(o) * es, j->raw, (size_t)(n * es), err));
        if (o->enc != ENC_COPY)
            for (uint64_t i = 0; i < n; i++) j->fl[i] = mp_dtype_load_f32(j->raw + i * es, t->dtype);
        return MP_OK;
    }
    const mp_qlinear *q = o->lin;
    if (o->enc == ENC_MXFP4) return fetch_mxfp4(j, q, lo, hi, err);
    if (o->enc != ENC_BLOCKS) return mp_dequant_ref(j->m, q, lo, hi, j->fl, err);
    mp_packing cp, zp;
    mp_layout_source(q, &cp, &zp);
    mp_pblock b = mp_packing_block(&cp, q->qweight->shape, lo, hi, 0, q->k_cols);
    b.data = j->raw;
    MP_FORWARD(mp_st_read_block(j->m, q->qweight, b.r0, b.r1, b.c0, b.c1, b.data, err));
    mp_qtile tile = {lo, hi, 0, q->k_cols, j->codes};
    mp_unpack(&cp, &b, &tile, q->code_xor);
    return MP_OK;
}

static size_t row_bytes(const xout *o)
{
    return (size_t)(o->cols / mp_gguf_type_block(o->type) * mp_gguf_type_size(o->type));
}

/* Output rows [r0, r1) of a block type (GPTQ-style codes or gpt-oss MXFP4) into j->enc, from
 * what fetch() left of the source rows from lo. */
static void encode_blocks(xjob *j, const xout *o, uint64_t r0, uint64_t r1, uint64_t lo)
{
    const uint64_t C = o->cols;
    const size_t rb = row_bytes(o);
    long long cnt = (long long)(r1 - r0);
#pragma omp parallel for schedule(static) if (cnt * (long long)C >= (1 << 20))
    for (long long i = 0; i < cnt; i++) {
        uint64_t s = src_row(o, r0 + (uint64_t)i), f = s - lo;
        uint8_t *out = j->enc + (uint64_t)i * rb;
        if (o->enc == ENC_MXFP4) {
            mp_gguf_pack_mxfp4_row(j->raw + f * (C / 2), j->codes + f * (C / 32), C, out);
        } else {
            const uint64_t G = o->lin->n_groups;
            mp_gguf_pack_row(o->rule, j->codes + f * C, j->z + s * G, j->d + s * G, C, o->lin->group_size, out);
        }
    }
}

/* Output rows [r0, r1) as floats, from the source rows from lo that fetch() left in j->fl:
 * permuted or de-interleaved (into j->perm), gemma's 1 + w applied. */
static float *output_floats(xjob *j, const xout *o, uint64_t r0, uint64_t r1, uint64_t lo)
{
    const uint64_t C = o->cols, SC = src_cols(o), n = (r1 - r0) * C;
    float *v = j->fl;
    if (o->head_dim || row_step(o) > 1 || SC != C) {
        for (uint64_t r = r0; r < r1; r++) {
            const float *from = j->fl + (src_row(o, r) - lo) * SC + o->col_first;
            float *to = j->perm + (r - r0) * C;
            for (uint64_t c = 0; c < C; c++) to[c] = from[c * (SC / C)];
        }
        v = j->perm;
    }
    if (o->norm_shift)
        for (uint64_t i = 0; i < n; i++) v[i] += 1.0f;
    return v;
}

/* Output rows [r0, r1) from what fetch() left, into j->enc. */
static mp_errcode encode(xjob *j, const xout *o, uint64_t r0, uint64_t r1, mp_err *err)
{
    const uint64_t C = o->cols, n = (r1 - r0) * C;
    const size_t rb = row_bytes(o);
    uint64_t lo, hi;
    src_span(o, r0, r1, &lo, &hi);
    if (o->enc == ENC_COPY) {
        size_t es = mp_dtype_bits(o->t->dtype) / 8;
        for (uint64_t r = r0; r < r1; r++)
            memcpy(j->enc + (r - r0) * rb, j->raw + (src_row(o, r) - lo) * C * es, rb);
        return MP_OK;
    }
    if (o->enc == ENC_BLOCKS || o->enc == ENC_MXFP4) {
        encode_blocks(j, o, r0, r1, lo);
        return MP_OK;
    }
    float *v = output_floats(j, o, r0, r1, lo);
    if (o->enc == ENC_Q8) {
        long long cnt = (long long)(r1 - r0);
#pragma omp parallel for schedule(static) if (cnt * (long long)C >= (1 << 20))
        for (long long i = 0; i < cnt; i++)
            mp_gguf_quantize_q8_0_ref(v + (uint64_t)i * C, C, j->enc + (uint64_t)i * rb);
        return MP_OK;
    }
    mp_target tg = o->type == MP_GGUF_F32 ? MP_TARGET_F32 : o->type == MP_GGUF_F16 ? MP_TARGET_F16 : MP_TARGET_BF16;
    return mp_convert_store(v, (size_t)n, tg, j->enc, o->name, r0 * C, C, err);
}

static mp_errcode emit(xjob *j, const void *buf, size_t len, mp_err *err)
{
    XXH64_update(j->xxh, buf, len);
    mp_report_add(&j->progress, len);
    return mp_gguf_writer_write(j->w, buf, len, err);
}

/* Rows [0, rows) of the current source of o (one expert of a stack). */
static mp_errcode produce_rows(xjob *j, xout *o, uint64_t rows, mp_err *err)
{
    uint64_t unit = o->head_dim ? o->head_dim * 8 : 8;
    uint64_t step = j->tile_cap / (src_cols(o) * row_step(o)) / unit * unit;
    if (step < unit) step = unit;
    mp_errcode rc = MP_OK;
    if (o->enc == ENC_BLOCKS) {
        uint64_t NG = o->lin->n_rows * o->lin->n_groups, bad;
        j->z = malloc((size_t)NG * 2 + 2);
        j->d = malloc((size_t)NG * 2 + 2);
        rc = j->z && j->d ? read_zeros(j->m, o->lin, j->z, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
        if (rc == MP_OK) rc = read_scales(j->m, o->lin, j->d, &bad, err);
    }
    for (uint64_t r0 = 0; r0 < rows && rc == MP_OK; r0 += step) {
        uint64_t r1 = r0 + step < rows ? r0 + step : rows;
        if (j->o->interrupted && *j->o->interrupted)
            rc = mp_errf(err, MP_E_INTERRUPTED, "interrupted; the partial output was removed");
        uint64_t lo, hi;
        src_span(o, r0, r1, &lo, &hi);
        if (rc == MP_OK) rc = fetch(j, o, lo, hi, err);
        if (rc == MP_OK) rc = encode(j, o, r0, r1, err);
        if (rc == MP_OK) rc = emit(j, j->enc, (r1 - r0) * row_bytes(o), err);
    }
    free(j->z);
    free(j->d);
    j->z = j->d = NULL;
    return rc;
}

/* A tensor written as it is stored (ENC_COPY, rows in order, one source tensor): mapped a
 * window at a time, hashed from the mapping, and copied by the kernel, so its bytes never pass
 * through a user-space write. 0 when it cannot be mapped (a compressed source): *done stays 0. */
static mp_errcode produce_copy(xjob *j, const xout *o, int *done, mp_err *err)
{
    const size_t window = 16u << 20; /* mapped, so resident: bounded as a tile is */
    const mp_tensor *t = o->t;
    mp_st_span sp;
    *done = 0;
    if (!mp_st_map(j->m, t, 0, (size_t)(t->n_bytes < window ? t->n_bytes : window), &sp)) return MP_OK;
    for (uint64_t at = 0; at < t->n_bytes;) {
        size_t n = (size_t)(t->n_bytes - at < window ? t->n_bytes - at : window);
        if (at && !mp_st_map(j->m, t, at, n, &sp))
            return mp_errf_at(err, MP_E_IO, mp_st_file_name(j->m, t->file), t->name, -1,
                              "cannot map bytes %llu to %llu", (unsigned long long)at,
                              (unsigned long long)(at + n));
        XXH64_update(j->xxh, sp.bytes, n);
        mp_errcode rc = mp_gguf_writer_copy(j->w, &sp, n, err);
        mp_st_unmap(&sp);
        MP_FORWARD(rc);
        mp_report_add(&j->progress, n);
        at += n;
    }
    *done = 1;
    return MP_OK;
}

static mp_errcode produce(xjob *j, xout *o, mp_err *err)
{
    mp_errcode rc = MP_OK;
    XXH64_reset(j->xxh, 0);
    int copied = 0;
    if (o->enc == ENC_COPY && !o->n_exp && !o->head_dim && row_step(o) == 1 && !o->row_first && !o->src_base &&
        o->t && o->t->n_bytes == o->rows * row_bytes(o)) {
        rc = produce_copy(j, o, &copied, err);
        if (rc != MP_OK || copied) {
            o->xxh64 = XXH64_digest(j->xxh);
            return rc;
        }
    }
    if (!o->n_exp) {
        rc = produce_rows(j, o, o->rows, err);
    } else {
        for (uint32_t e = 0; e < o->n_exp && rc == MP_OK; e++) {
            if (o->exp_src_rows) { /* one stacked linear: the expert's rows in it */
                o->src_base = e * o->exp_src_rows;
            } else {
                o->t = o->et ? o->et[e] : NULL;
                o->lin = o->el ? o->el[e] : NULL;
            }
            rc = produce_rows(j, o, o->exp_rows, err);
        }
    }
    o->xxh64 = XXH64_digest(j->xxh);
    return rc;
}

/* ------------------------------------------------------------ metadata */

static mp_errcode add_f32(mp_gguf_writer *w, const char *key, double v, mp_err *err)
{
    uint8_t x[4];
    mp_write_le32(x, mp_f32_bits((float)v));
    return mp_gguf_writer_add_kv(w, key, MP_GGUF_V_F32, MP_GGUF_V_U8, x, 4, err);
}

static mp_errcode add_bool(mp_gguf_writer *w, const char *key, int v, mp_err *err)
{
    uint8_t x = v ? 1 : 0;
    return mp_gguf_writer_add_kv(w, key, MP_GGUF_V_BOOL, MP_GGUF_V_U8, &x, 1, err);
}

/* "{arch}.<key>" */
static const char *akey(const xjob *j, const char *key, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s.%s", j->arch->gguf, key);
    return buf;
}

static mp_errcode need(const xjob *j, int64_t v, const char *key, mp_err *err)
{
    if (v > 0 && v <= UINT32_MAX) return MP_OK;
    return mp_errf_at(err, MP_E_INPUT, "config.json", NULL, -1, "'%s' is missing or out of range, and "
                      "llama.cpp's '%s' needs it", key, j->arch->gguf);
}

/* The hyperparameters: doc/formats/gguf-export.md §1.3, with the key types llama.cpp checks. */
static mp_errcode meta_hparams(xjob *j, mp_err *err)
{
    const mp_hf_hparams *h = &j->h;
    mp_gguf_writer *w = j->w;
    char k[128];
    int64_t ctx = h->context_length > 0 ? h->context_length : j->arch->gemma ? 131072 : -1;
    MP_FORWARD(need(j, ctx, "max_position_embeddings", err));
    MP_FORWARD(need(j, h->hidden_size, "hidden_size", err));
    MP_FORWARD(need(j, h->n_layers, "num_hidden_layers", err));
    MP_FORWARD(need(j, h->intermediate_size, "intermediate_size", err));
    MP_FORWARD(need(j, h->n_heads, "num_attention_heads", err));
    MP_FORWARD(mp_gguf_writer_add_u32(w, akey(j, "context_length", k, sizeof k), (uint32_t)ctx, err));
    MP_FORWARD(mp_gguf_writer_add_u32(w, akey(j, "embedding_length", k, sizeof k), (uint32_t)h->hidden_size, err));
    MP_FORWARD(mp_gguf_writer_add_u32(w, akey(j, "block_count", k, sizeof k), (uint32_t)h->n_layers, err));
    MP_FORWARD(mp_gguf_writer_add_u32(w, akey(j, "feed_forward_length", k, sizeof k), (uint32_t)h->intermediate_size, err));
    MP_FORWARD(mp_gguf_writer_add_u32(w, akey(j, "attention.head_count", k, sizeof k), (uint32_t)h->n_heads, err));
    int64_t kv = h->n_kv_heads > 0 ? h->n_kv_heads : h->n_heads;
    MP_FORWARD(mp_gguf_writer_add_u32(w, akey(j, "attention.head_count_kv", k, sizeof k), (uint32_t)kv, err));
    if (h->head_dim > 0) {
        MP_FORWARD(mp_gguf_writer_add_u32(w, akey(j, "attention.key_length", k, sizeof k), (uint32_t)h->head_dim, err));
        MP_FORWARD(mp_gguf_writer_add_u32(w, akey(j, "attention.value_length", k, sizeof k), (uint32_t)h->head_dim, err));
    }
    if (j->arch->permute_qk) {
        MP_FORWARD(mp_gguf_writer_add_u32(w, akey(j, "rope.dimension_count", k, sizeof k), (uint32_t)j->head_dim, err));
        if (h->vocab_size > 0)
            MP_FORWARD(mp_gguf_writer_add_u32(w, akey(j, "vocab_size", k, sizeof k), (uint32_t)h->vocab_size, err));
    }
    if (h->n_experts > 0) {
        MP_FORWARD(need(j, h->n_experts_used, "num_experts_per_tok", err));
        MP_FORWARD(mp_gguf_writer_add_u32(w, akey(j, "expert_count", k, sizeof k), (uint32_t)h->n_experts, err));
        MP_FORWARD(mp_gguf_writer_add_u32(w, akey(j, "expert_used_count", k, sizeof k), (uint32_t)h->n_experts_used, err));
        if (h->expert_ff > 0)
            MP_FORWARD(mp_gguf_writer_add_u32(w, akey(j, "expert_feed_forward_length", k, sizeof k), (uint32_t)h->expert_ff, err));
    }
    double theta = h->rope_theta > 0 ? h->rope_theta : j->arch->gemma ? 1e6 : 10000.0;
    MP_FORWARD(add_f32(w, akey(j, "rope.freq_base", k, sizeof k), theta, err));
    double eps = h->rms_norm_eps > 0 ? h->rms_norm_eps : 1e-6;
    MP_FORWARD(add_f32(w, akey(j, "attention.layer_norm_rms_epsilon", k, sizeof k), eps, err));
    return MP_OK;
}

/* Rope scaling (linear, yarn) and gemma3's keys. llama3's scaling is the rope_freqs tensor. */
static mp_errcode meta_extra(xjob *j, mp_err *err)
{
    const mp_hf_hparams *h = &j->h;
    mp_gguf_writer *w = j->w;
    char k[128];
    const char *rt = h->rope_type;
    if ((!strcmp(rt, "linear") || !strcmp(rt, "yarn")) && h->rope_factor > 0) {
        MP_FORWARD(mp_gguf_writer_add_str(w, akey(j, "rope.scaling.type", k, sizeof k), rt, err));
        MP_FORWARD(add_f32(w, akey(j, "rope.scaling.factor", k, sizeof k), h->rope_factor, err));
        if (!strcmp(rt, "yarn") && h->rope_beta_fast > 0)
            MP_FORWARD(add_f32(w, akey(j, "rope.scaling.yarn_beta_fast", k, sizeof k), h->rope_beta_fast, err));
        if (!strcmp(rt, "yarn") && h->rope_beta_slow > 0)
            MP_FORWARD(add_f32(w, akey(j, "rope.scaling.yarn_beta_slow", k, sizeof k), h->rope_beta_slow, err));
        if (h->rope_orig_context > 0)
            MP_FORWARD(mp_gguf_writer_add_u32(w, akey(j, "rope.scaling.original_context_length", k, sizeof k),
                                              (uint32_t)h->rope_orig_context, err));
    } else if (rt[0] && strcmp(rt, "default") != 0 && strcmp(rt, "llama3") != 0) {
        return mp_errf_at(err, MP_E_UNSUPPORTED, "config.json", NULL, -1,
                          "rope_scaling type '%s' is not exported (linear, yarn, llama3)", rt);
    }
    if (!j->arch->gemma) return MP_OK;
    if (h->attn_logit_softcapping > 0)
        return mp_errf_at(err, MP_E_UNSUPPORTED, "config.json", NULL, -1,
                          "'attn_logit_softcapping' is set, which llama.cpp's gemma3 does not apply");
    if (h->sliding_window > 0 && h->sliding_window_pattern != 1)
        MP_FORWARD(mp_gguf_writer_add_u32(w, akey(j, "attention.sliding_window", k, sizeof k), (uint32_t)h->sliding_window, err));
    double swa = h->rope_local_base_freq > 0 ? h->rope_local_base_freq : 10000.0;
    MP_FORWARD(add_f32(w, akey(j, "rope.freq_base_swa", k, sizeof k), swa, err));
    if (h->final_logit_softcapping > 0)
        MP_FORWARD(add_f32(w, akey(j, "final_logit_softcapping", k, sizeof k), h->final_logit_softcapping, err));
    return MP_OK;
}

/* gpt-oss's keys: the sliding window (llama.cpp's gpt-oss makes every other layer, the first
 * included, sliding) and the expert FFN length (doc/formats/gguf-export.md §5). */
static mp_errcode meta_oss(xjob *j, mp_err *err)
{
    char k[128];
    if (!j->arch->oss) return MP_OK;
    MP_FORWARD(need(j, j->h.n_experts, "num_local_experts", err));
    MP_FORWARD(mp_gguf_writer_add_u32(j->w, akey(j, "attention.sliding_window", k, sizeof k),
                                      (uint32_t)j->h.sliding_window, err));
    return mp_gguf_writer_add_u32(j->w, akey(j, "expert_feed_forward_length", k, sizeof k),
                                  (uint32_t)j->h.intermediate_size, err);
}

/* general.source.repo_url from config.json's _name_or_path when it is a Hub id, and the model
 * card's license and base models as general.license and general.base_model.* (the keys gguf-py's
 * Metadata writes; doc/formats/gguf-export.md §1.4). */
static mp_errcode meta_provenance(xjob *j, mp_err *err)
{
    mp_gguf_writer *w = j->w;
    char v[320], k[64];
    if (mp_hf_is_hub_id(j->h.name_or_path)) {
        snprintf(v, sizeof v, "https://huggingface.co/%s", j->h.name_or_path);
        MP_FORWARD(mp_gguf_writer_add_str(w, "general.source.repo_url", v, err));
    }
    mp_hf_card c;
    MP_FORWARD(mp_hf_card_load(&c, mp_st_dir(j->m), err));
    if (c.license[0]) MP_FORWARD(mp_gguf_writer_add_str(w, "general.license", c.license, err));
    if (!c.n_base) return MP_OK;
    MP_FORWARD(mp_gguf_writer_add_u32(w, "general.base_model.count", (uint32_t)c.n_base, err));
    for (size_t i = 0; i < c.n_base; i++) {
        const char *id = c.base[i], *slash = strchr(id, '/');
        int hub = mp_hf_is_hub_id(id);
        snprintf(k, sizeof k, "general.base_model.%zu.name", i);
        MP_FORWARD(mp_gguf_writer_add_str(w, k, hub ? slash + 1 : id, err));
        if (!hub) continue;
        snprintf(k, sizeof k, "general.base_model.%zu.organization", i);
        snprintf(v, sizeof v, "%.*s", (int)(slash - id), id);
        MP_FORWARD(mp_gguf_writer_add_str(w, k, v, err));
        snprintf(k, sizeof k, "general.base_model.%zu.repo_url", i);
        snprintf(v, sizeof v, "https://huggingface.co/%s", id);
        MP_FORWARD(mp_gguf_writer_add_str(w, k, v, err));
    }
    return MP_OK;
}

/* general.*, and modelprep.* provenance: the source's scheme and whether every value was kept. */
static mp_errcode meta_general(xjob *j, const char *src, uint32_t file_type, int lossless, mp_err *err)
{
    mp_gguf_writer *w = j->w;
    MP_FORWARD(mp_gguf_writer_add_str(w, "general.architecture", j->arch->gguf, err));
    MP_FORWARD(mp_gguf_writer_add_str(w, "general.type", "model", err));
    char name[256];
    const char *base = strrchr(mp_st_dir(j->m), '/');
    snprintf(name, sizeof name, "%s", base ? base + 1 : mp_st_dir(j->m));
    if (name[0] && strcmp(name, ".") != 0) MP_FORWARD(mp_gguf_writer_add_str(w, "general.name", name, err));
    MP_FORWARD(mp_gguf_writer_add_u32(w, "general.file_type", file_type, err));
    MP_FORWARD(mp_gguf_writer_add_u32(w, "general.quantization_version", 2, err));
    MP_FORWARD(meta_provenance(j, err));
    MP_FORWARD(mp_gguf_writer_add_str(w, "modelprep.source.path", src, err));
    MP_FORWARD(mp_gguf_writer_add_str(w, "modelprep.version", MP_VERSION, err));
    char scheme[160] = "dense";
    if (mp_qmodel_quantized(j->qm) && mp_qmodel_n_linears(j->qm)) {
        const mp_qlinear *q = mp_qmodel_linear(j->qm, 0);
        snprintf(scheme, sizeof scheme, "%s %s %u-bit group %llu%s", mp_qmethod_name(mp_qmodel_method(j->qm)),
                 q->format, q->bits, (unsigned long long)q->group_size, q->sym ? " sym" : "");
    }
    MP_FORWARD(mp_gguf_writer_add_str(w, "modelprep.source.scheme", scheme, err));
    MP_FORWARD(mp_gguf_writer_add_str(w, "modelprep.weights", mp_gguf_to_name(j->x->to), err));
    return add_bool(w, "modelprep.lossless", lossless, err);
}

/* llama3 rope scaling as the rope_freqs tensor, computed as LlamaModel.generate_extra_tensors
 * does (doc/formats/gguf-export.md §1.3). */
static mp_errcode add_rope_freqs(xjob *j, mp_err *err)
{
    const mp_hf_hparams *h = &j->h;
    if (strcmp(h->rope_type, "llama3") != 0 || !j->head_dim) return MP_OK;
    uint64_t dim = j->head_dim, n = dim / 2;
    xout *o = &j->outs[j->n_outs];
    memset(o, 0, sizeof *o);
    if (!(o->gen = malloc((size_t)n * sizeof(float)))) return mp_errf(err, MP_E_NOMEM, "out of memory");
    j->n_outs++;
    double base = h->rope_theta > 0 ? h->rope_theta : 10000.0;
    double factor = h->rope_factor > 0 ? h->rope_factor : 8.0;
    double lo = h->rope_low_freq_factor > 0 ? h->rope_low_freq_factor : 1.0;
    double hi = h->rope_high_freq_factor > 0 ? h->rope_high_freq_factor : 4.0;
    double old = h->rope_orig_context > 0 ? (double)h->rope_orig_context : 8192.0;
    for (uint64_t i = 0; i < n; i++) {
        float freq = 1.0f / powf((float)base, (float)(2 * i) / (float)dim);
        double wavelen = 2 * M_PI / freq;
        double f = 1.0;
        if (wavelen > old / lo) {
            f = factor;
        } else if (wavelen >= old / hi) {
            double smooth = (old / wavelen - lo) / (hi - lo);
            f = 1.0 / ((1 - smooth) / factor + smooth);
        }
        o->gen[i] = (float)f;
    }
    snprintf(o->name, sizeof o->name, "rope_freqs.weight");
    o->type = MP_GGUF_F32;
    o->n_dims = 1;
    o->ne[0] = o->cols = n;
    o->ne[1] = o->rows = 1;
    o->enc = ENC_FLOAT;
    o->origin = "generate";
    return MP_OK;
}

/* The majority type of the 2-D tensors, as llama-quantize reports a mixed file. */
static uint32_t majority_file_type(const xjob *j)
{
    size_t count[MP_GGUF_TYPE_COUNT] = {0};
    for (size_t i = 0; i < j->n_outs; i++)
        if (j->outs[i].type == MP_GGUF_MXFP4) return 38; /* MOSTLY_MXFP4_MOE: llama-quantize's name for it */
    for (size_t i = 0; i < j->n_outs; i++)
        if (j->outs[i].n_dims == 2 && j->outs[i].type < MP_GGUF_TYPE_COUNT) count[j->outs[i].type]++;
    uint32_t best = MP_GGUF_F32;
    for (uint32_t t = 0; t < MP_GGUF_TYPE_COUNT; t++)
        if (count[t] > count[best]) best = t;
    return file_type_of(best);
}

static int is_lossless(const xjob *j)
{
    if (j->x->to != MP_GGUF_TO_AUTO && j->x->to != MP_GGUF_TO_F32) return 0;
    for (size_t i = 0; i < j->n_outs; i++)
        if (j->outs[i].t && j->outs[i].t->dtype == MP_DTYPE_F64) return 0;
    return 1;
}

/* ------------------------------------------------------------ manifest and commit */

static mp_errcode write_manifest(xjob *j, mp_dest *d, const char *src, const char *base,
                                 mp_src_hash *sh, const mp_gguf_tok_info *tok, mp_err *err)
{
    mp_mfile *src_files = NULL, *out_files = calloc(j->n_files, sizeof *out_files);
    (void)base;
    mp_errcode rc = mp_src_hash_finish(sh, &src_files, err);
    if (rc == MP_OK && !out_files) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    for (size_t f = 0; rc == MP_OK && f < j->n_files; f++) rc = mp_manifest_hash_file(d, j->files[f], &out_files[f], err);
    mp_mtensor *mt = calloc(j->n_outs + 1, sizeof *mt);
    uint64_t *shapes = calloc(2 * j->n_outs + 2, sizeof *shapes);
    if (rc == MP_OK && (!mt || !shapes)) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_buf layout = MP_BUF_INIT;
    mp_buf_printf(&layout, "{\"name\": \"gguf\", \"weights\": \"%s\", \"architecture\": \"%s\", "
                           "\"tokenizer\": ", mp_gguf_to_name(j->x->to), j->arch->gguf);
    if (tok->pre[0]) mp_buf_printf(&layout, "{\"model\": \"%s\", \"pre\": \"%s\"}", tok->model, tok->pre);
    else mp_buf_puts(&layout, "null");
    mp_buf_printf(&layout, ", \"lossless\": %s, \"ggml_types\": {", is_lossless(j) ? "true" : "false");
    for (size_t i = 0; rc == MP_OK && i < j->n_outs; i++) {
        const xout *o = &j->outs[i];
        shapes[2 * i] = o->rows;
        shapes[2 * i + 1] = row_bytes(o);
        if (o->head_dim && o->n_dims == 1) { /* a permuted bias: one row */
            shapes[2 * i] = 1;
            shapes[2 * i + 1] = row_bytes(o) * o->rows;
        }
        mt[i] = (mp_mtensor){o->name, j->files[j->tensor_file[i]], MP_DTYPE_U8, 2, &shapes[2 * i], o->xxh64, o->origin};
        mp_buf_printf(&layout, "%s\"%s\": \"%s\"", i ? ", " : "", o->name, mp_gguf_type_name(o->type));
    }
    mp_buf_puts(&layout, "}}");
    if (rc == MP_OK && layout.oom) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    char quant[160] = "";
    if (mp_qmodel_quantized(j->qm) && mp_qmodel_n_linears(j->qm))
        snprintf(quant, sizeof quant, "%s %s", mp_qmethod_name(mp_qmodel_method(j->qm)),
                 mp_qmodel_linear(j->qm, 0)->format);
    if (rc == MP_OK) {
        mp_manifest man = {j->o->argc, j->o->argv, src, quant[0] ? quant : NULL, src_files,
                           mp_st_n_files(j->m), layout.data, out_files, j->n_files, mt, j->n_outs};
        rc = mp_manifest_write(d, &man, err);
    }
    mp_buf_release(&layout);
    free(src_files);
    free(out_files);
    free(mt);
    free(shapes);
    return rc;
}

/* The GGUF file and its manifest leave the partial directory for DST and DST.modelprep.json:
 * the manifest first, so that a GGUF in place always has its record. */
/* Where file f of the output goes: DST itself, or a split beside it. */
static char *final_path(const xjob *j, const char *dst, size_t f)
{
    char *out = NULL;
    if (j->n_files == 1) return mp_strdup(dst);
    const char *slash = strrchr(dst, '/');
    int dir_len = slash ? (int)(slash - dst + 1) : 0;
    return asprintf(&out, "%.*s%s", dir_len, dst, j->files[f]) < 0 ? NULL : out;
}

static mp_errcode rename_in(const char *from, const char *to, mp_err *err)
{
    if (rename(from, to) == 0) return MP_OK;
    return mp_errf_at(err, MP_E_IO, to, NULL, -1, "cannot rename '%s' into place: %s", from, strerror(errno));
}

static mp_errcode commit_file(const xjob *j, mp_dest *d, const char *dst, mp_err *err)
{
    char *man = mp_dest_path(d, "modelprep.json"), *man_dst = NULL;
    mp_errcode rc = MP_OK;
    if (!man || asprintf(&man_dst, "%s.modelprep.json", dst) < 0) {
        man_dst = NULL;
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    for (size_t f = 0; rc == MP_OK && f < j->n_files; f++) {
        char *fin = final_path(j, dst, f);
        if (!fin) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        else if (mp_exists(fin) && !d->force)
            rc = mp_errf_at(err, MP_E_USAGE, fin, NULL, -1, "destination exists; use --force to replace it");
        free(fin);
    }
    if (rc == MP_OK) rc = rename_in(man, man_dst, err);
    for (size_t f = 0; rc == MP_OK && f < j->n_files; f++) {
        char *from = mp_dest_path(d, j->files[f]), *fin = final_path(j, dst, f);
        rc = from && fin ? rename_in(from, fin, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
        free(from);
        free(fin);
    }
    if (rc == MP_OK) mp_dest_abort(d); /* the partial directory, emptied of the output, and its journal */
    free(man);
    free(man_dst);
    return rc;
}

/* ------------------------------------------------------------ the run */

/* What llama.cpp's gpt-oss fixes or requires of config.json, checked before anything is written
 * (doc/formats/gguf-export.md §5). */
static mp_errcode check_oss(const mp_hf_hparams *h, mp_err *err)
{
    const char *why = NULL;
    if (h->swiglu_limit > 0 && h->swiglu_limit != 7.0)
        why = "'swiglu_limit' is not 7.0, the clamp llama.cpp's gpt-oss applies";
    else if (h->sliding_window <= 0)
        why = "'sliding_window' is missing, and llama.cpp's gpt-oss requires it";
    else if (h->tie_word_embeddings == 1)
        why = "'tie_word_embeddings' is true, but llama.cpp's gpt-oss requires an output.weight of its own";
    else if (h->n_experts <= 0 || h->n_experts_used <= 0)
        why = "'num_local_experts' or 'num_experts_per_tok' is missing";
    else if (h->layer_types_alternate == 0)
        why = "'layer_types' does not alternate sliding_attention and full_attention from layer 0, "
              "the pattern llama.cpp's gpt-oss applies";
    return why ? mp_errf_at(err, MP_E_UNSUPPORTED, "config.json", NULL, -1, "%s", why) : MP_OK;
}

static mp_errcode open_source(xjob *j, const char *src, mp_st_model **m, mp_qmodel **qm, mp_err *err)
{
    mp_hf_config cfg;
    MP_FORWARD(mp_st_open(m, src, err));
    j->m = *m;
    MP_FORWARD(mp_refuse_one_shard(src, *m, err));
    MP_FORWARD(mp_hf_config_load(&cfg, mp_st_dir(*m), err));
    MP_FORWARD(mp_st_check_name_numbers(*m, &cfg, err));
    MP_FORWARD(mp_qmodel_open(qm, *m, err));
    j->qm = *qm;
    MP_FORWARD(mp_hf_hparams_load(&j->h, mp_st_dir(*m), err));
    for (size_t i = 0; i < sizeof archs / sizeof *archs; i++)
        if (strcmp(archs[i].model_type, j->h.model_type) == 0) j->arch = &archs[i];
    if (!j->arch)
        return mp_errf_at(err, MP_E_UNSUPPORTED, "config.json", NULL, -1,
                          "model_type '%s' is not exported to GGUF (llama, mistral, qwen2, qwen3, "
                          "qwen3_moe, gemma3_text, gpt_oss)", j->h.model_type[0] ? j->h.model_type : "(none)");
    if (j->h.n_heads > 0 && j->h.hidden_size > 0)
        j->head_dim = (uint64_t)(j->h.head_dim > 0 ? j->h.head_dim : j->h.hidden_size / j->h.n_heads);
    return j->arch->oss ? check_oss(&j->h, err) : MP_OK;
}

static const xout *find_out(const xjob *j, const char *name)
{
    for (size_t i = 0; i < j->n_outs; i++)
        if (strcmp(j->outs[i].name, name) == 0) return &j->outs[i];
    return NULL;
}

/* Metadata, tokenizer and tensor infos: everything before the first tensor byte. */
static mp_errcode declare(xjob *j, const char *src, mp_gguf_tok_info *tok, mp_err *err)
{
    MP_FORWARD(meta_general(j, src, majority_file_type(j), is_lossless(j), err));
    MP_FORWARD(meta_hparams(j, err));
    MP_FORWARD(meta_extra(j, err));
    MP_FORWARD(meta_oss(j, err));
    const xout *emb = find_out(j, "token_embd.weight");
    if (!emb) return mp_errf_at(err, MP_E_INPUT, src, "model.embed_tokens.weight", -1, "missing");
    if (j->arch->oss && !find_out(j, "output.weight"))
        return mp_errf_at(err, MP_E_INPUT, src, "lm_head.weight", -1, "missing, and llama.cpp's gpt-oss requires it");
    if (!j->x->no_tokenizer) MP_FORWARD(mp_gguf_tokenizer_add(j->w, mp_st_dir(j->m), emb->rows, &j->h, tok, err));
    for (size_t i = 0; i < j->n_outs; i++)
        MP_FORWARD(mp_gguf_writer_add_tensor(j->w, j->outs[i].name, j->outs[i].type, j->outs[i].n_dims, j->outs[i].ne, err));
    return mp_gguf_writer_begin(j->w, err);
}

/* The output's files: the one GGUF, or (--max-shard-size) the split set mp_gguf_copy makes of
 * it as llama-gguf-split does ("<stem>-0000i-of-0000N.gguf", split.* keys, metadata in the
 * first), the single file then removed; and which file holds each tensor. */
static mp_errcode place_files(xjob *j, mp_dest *d, const char *base, mp_err *err)
{
    j->tensor_file = calloc(j->n_outs + 1, sizeof *j->tensor_file);
    if (!j->tensor_file) return mp_errf(err, MP_E_NOMEM, "out of memory");
    if (!j->x->split_bytes) {
        j->files = calloc(1, sizeof *j->files);
        if (!j->files) return mp_errf(err, MP_E_NOMEM, "out of memory");
        snprintf(j->files[0], sizeof j->files[0], "%s", base);
        j->n_files = 1;
        return MP_OK;
    }
    char *path = mp_dest_path(d, base);
    mp_gguf *whole = NULL, *set = NULL;
    mp_gguf_copy_opts co;
    memset(&co, 0, sizeof co);
    co.split_max_bytes = j->x->split_bytes;
    mp_errcode rc = path ? mp_gguf_open(&whole, path, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = mp_gguf_copy(whole, path, &co, err);
    mp_gguf_close(whole);
    if (rc == MP_OK && unlink(path) != 0) rc = mp_errf_at(err, MP_E_IO, path, NULL, -1, "cannot remove: %s", strerror(errno));
    /* The partial directory now holds the split set alone: open it as the loader would. */
    if (rc == MP_OK) rc = mp_gguf_open(&set, d->partial, err);
    if (rc == MP_OK) {
        j->n_files = mp_gguf_n_files(set);
        j->files = calloc(j->n_files, sizeof *j->files);
        if (!j->files) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        for (size_t f = 0; rc == MP_OK && f < j->n_files; f++)
            snprintf(j->files[f], sizeof j->files[f], "%s", mp_gguf_file_name(set, f));
        for (size_t i = 0; rc == MP_OK && i < j->n_outs; i++)
            j->tensor_file[i] = mp_gguf_find(set, j->outs[i].name)->file;
    }
    mp_gguf_close(set);
    free(path);
    return rc;
}

static mp_errcode write_all(xjob *j, mp_dest *d, const char *src, const char *base, mp_src_hash *sh,
                            mp_gguf_tok_info *tok, mp_err *err)
{
    char *path = mp_dest_path(d, base);
    mp_errcode rc = path ? mp_gguf_writer_open(&j->w, path, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
    free(path);
    if (rc == MP_OK) rc = declare(j, src, tok, err);
    uint64_t total = 0;
    for (size_t i = 0; i < j->n_outs; i++) total += row_bytes(&j->outs[i]) * j->outs[i].rows;
    mp_report_start(&j->progress, "convert", total);
    for (size_t i = 0; i < j->n_outs && rc == MP_OK; i++) rc = produce(j, &j->outs[i], err);
    mp_report_end(&j->progress);
    if (rc == MP_OK) rc = mp_gguf_writer_finish(j->w, err);
    else mp_gguf_writer_abort(j->w);
    j->w = NULL;
    if (rc == MP_OK) rc = place_files(j, d, base, err);
    if (rc == MP_OK) rc = write_manifest(j, d, src, base, sh, tok, err);
    else mp_src_hash_finish(sh, NULL, NULL);
    return rc;
}

static void fill_result(const xjob *j, const mp_gguf_tok_info *tok, mp_gguf_export_result *res)
{
    snprintf(res->arch, sizeof res->arch, "%s", j->arch->gguf);
    snprintf(res->pre, sizeof res->pre, "%s", tok->pre);
    res->file_type = majority_file_type(j);
    res->lossless = is_lossless(j);
    res->n_tensors = j->n_outs;
    for (size_t i = 0; i < j->n_outs; i++) {
        const char *org = j->outs[i].origin;
        res->n_repacked += !strcmp(org, "repack");
        res->n_copied += !strcmp(org, "copy");
        res->n_cast += !strcmp(org, "cast") || !strcmp(org, "generate");
        res->n_dequantized += !strcmp(org, "dequantize");
        res->n_quantized += !strcmp(org, "quantize");
        res->n_permuted += j->outs[i].head_dim > 0;
    }
}

mp_errcode mp_gguf_export_run(const char *src, const char *dst, const mp_convert_opts *o,
                              const mp_gguf_export_opts *x, mp_gguf_export_result *res, mp_err *err)
{
    xjob j;
    memset(&j, 0, sizeof j);
    memset(res, 0, sizeof *res);
    j.o = o;
    j.progress = (mp_reporter){.fn = o->progress, .user = o->progress_user, .quiet = o->quiet};
    j.x = x;
    double t0 = mp_now();
    mp_st_model *m = NULL;
    mp_qmodel *qm = NULL;
    mp_src_hash *sh = NULL;
    mp_dest d = MP_DEST_INIT;
    mp_gguf_tok_info tok;
    memset(&tok, 0, sizeof tok);
    char bb[512];
    const char *slash = strrchr(dst, '/');
    snprintf(bb, sizeof bb, "%s", slash ? slash + 1 : dst);
    mp_errcode rc = open_source(&j, src, &m, &qm, err);
    if (rc == MP_OK) rc = plan(&j, err);
    if (rc == MP_OK && !(j.xxh = XXH64_createState())) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    char *man_dst = NULL;
    if (rc == MP_OK && asprintf(&man_dst, "%s.modelprep.json", dst) < 0) man_dst = NULL;
    if (rc == MP_OK && !man_dst) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK && !o->force && mp_exists(man_dst)) /* a split set's files are named later */
        rc = mp_errf_at(err, MP_E_USAGE, man_dst, NULL, -1, "destination exists; use --force to replace it");
    free(man_dst);
    if (rc == MP_OK) rc = mp_journal_begin_dest(&d, dst, src, "convert", m, NULL, o->force, &j.progress, err);
    if (rc == MP_OK) rc = mp_src_hash_start(&sh, m, err);
    if (rc == MP_OK) rc = write_all(&j, &d, src, bb, sh, &tok, err);
    if (rc == MP_OK) rc = commit_file(&j, &d, dst, err);
    if (d.partial) mp_dest_abort(&d);
    if (rc == MP_OK) {
        fill_result(&j, &tok, res);
        res->n_files = j.n_files;
        for (size_t f = 0; f < j.n_files; f++) {
            struct stat st;
            char *fin = final_path(&j, dst, f);
            if (fin && stat(fin, &st) == 0) res->bytes += (uint64_t)st.st_size;
            free(fin);
        }
        res->seconds = mp_now() - t0;
    }
    for (size_t i = 0; j.outs && i < j.n_outs; i++) {
        free(j.outs[i].gen);
        free(j.outs[i].et);
        free(j.outs[i].el);
    }
    free(j.members);
    free(j.outs);
    free(j.files);
    free(j.tensor_file);
    free(j.raw);
    free(j.codes);
    free(j.enc);
    free(j.fl);
    free(j.perm);
    if (j.xxh) XXH64_freeState(j.xxh);
    mp_qmodel_free(qm);
    mp_st_close(m);
    return rc;
}
