/*
 * gguf_convert.c - `modelprep convert MODEL.gguf DST --to f32|f16|bf16`: a GGUF file or split
 * set becomes a Hugging Face safetensors checkpoint.
 *
 * - Names: the tensor names of llama, mistral, qwen2, qwen3 and gemma3 are mapped back to
 *   transformers' (`blk.N.attn_q.weight` -> `model.layers.N.self_attn.q_proj.weight`, ...).
 *   Other architectures, and tensors with no Hugging Face counterpart (llama3's rope_freqs),
 *   keep their GGUF names, and a note (to the progress callback) says so.
 * - Values: every tensor is dequantized (mp_gguf_dequantize, bit-exact with ggml) and stored in
 *   the target dtype. convert_hf_to_gguf permutes the rows of llama's and mistral's q and k
 *   projections for its rope layout (LlamaModel.permute: per head, the two rotary halves
 *   interleaved); that is undone here. qwen2, qwen3 and gemma3 are not permuted upstream.
 *   Gemma3's converter stores RMSNorm weights as 1 + w (Gemma3Model.norm_shift); 1 is
 *   subtracted again.
 * - Shapes: GGUF stores ne[0] (the contiguous row) first; the Hugging Face shape is the reverse.
 * - config.json comes from the metadata (architecture, sizes, heads, rope theta, rms eps,
 *   vocabulary, context length, tie_word_embeddings when there is no output tensor).
 *
 * Memory: tensors are processed in tiles of TILE_ELEMS elements, permuted projections included
 * (in runs of rows, produce_rope), read by pread, so the peak does not grow with the model nor
 * with the size of a head (doc/limits.md).
 */
#define _GNU_SOURCE
#include "pipeline.h"
#include "dest.h"
#include "gguf_names.h"
#include "job.h"
#include "journal.h"
#include "manifest.h"

#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TILE_ELEMS (2u << 20)

/* ------------------------------------------------------------ architectures */

typedef struct arch_desc {
    const char *gguf;          /* general.architecture */
    const char *hf_class;      /* config.json architectures[0] */
    const char *model_type;
    int permute_qk;            /* convert_hf_to_gguf permuted q/k rows (LlamaModel) */
    int norm_shift;            /* norms stored as 1 + w (Gemma3Model.norm_shift) */
    int gemma_norms;           /* gemma3's four norms per layer */
    int attn_bias_all;         /* config "attention_bias" gives q, k, v and o a bias together */
    int mlp_bias_all;          /* config "mlp_bias" gives gate, up and down a bias together */
} arch_desc;

/* transformers' classes: Llama, Qwen3 and Gemma3 attention take attention_bias for all four
 * projections, Llama's MLP mlp_bias for all three; Qwen2 has q/k/v biases always and o none;
 * Mistral has none (doc/reference.md, "GGUF to Hugging Face"). */
static const arch_desc archs[] = {
    {.gguf = "llama", .hf_class = "LlamaForCausalLM", .model_type = "llama", .permute_qk = 1,
     .attn_bias_all = 1, .mlp_bias_all = 1},
    {.gguf = "mistral", .hf_class = "MistralForCausalLM", .model_type = "mistral", .permute_qk = 1},
    {.gguf = "qwen2", .hf_class = "Qwen2ForCausalLM", .model_type = "qwen2"},
    {.gguf = "qwen3", .hf_class = "Qwen3ForCausalLM", .model_type = "qwen3", .attn_bias_all = 1},
    {.gguf = "gemma3", .hf_class = "Gemma3ForCausalLM", .model_type = "gemma3_text", .norm_shift = 1,
     .gemma_norms = 1, .attn_bias_all = 1},
};

/* The Hugging Face name of GGUF tensor t into *out (owned by the caller), or NULL when it has
 * none. The N of "blk.N." is a bounded decimal below n_layers ('<arch>.block_count'; 0: not
 * given), else MP_E_INPUT naming the tensor (doc/limits.md, "numbers in names"). */
static mp_errcode hf_name(const arch_desc *a, const mp_gguf_tensor *t, const char *path, uint64_t n_layers,
                          char **out, mp_err *err)
{
    const char *name = t->name, *dot = strrchr(name, '.');
    *out = NULL;
    if (!dot || (strcmp(dot, ".weight") != 0 && strcmp(dot, ".bias") != 0)) return MP_OK;
    size_t stem = (size_t)(dot - name);
    for (size_t i = 0; i < mp_gguf_n_top_names; i++)
        if (strlen(mp_gguf_top_names[i].gguf) == stem && strncmp(name, mp_gguf_top_names[i].gguf, stem) == 0)
            return asprintf(out, "%s%s", mp_gguf_top_names[i].hf, dot) < 0 ? mp_errf(err, MP_E_NOMEM, "out of memory")
                                                                            : MP_OK;
    if (strncmp(name, "blk.", 4) != 0) return MP_OK;
    uint64_t layer;
    const char *why;
    size_t nd = mp_parse_name_index(name + 4, UINT32_MAX, &layer, &why);
    if (nd == 0 || name[4 + nd] != '.')
        return mp_errf_at(err, MP_E_INPUT, path, name, -1, "the layer number after 'blk.' %s",
                          nd == 0 ? why : "is not followed by '.'");
    if (n_layers > 0 && layer >= n_layers)
        return mp_errf_at(err, MP_E_INPUT, path, name, -1, "layer %llu is beyond the %llu layers of '%s.block_count'",
                          (unsigned long long)layer, (unsigned long long)n_layers, a->gguf);
    const char *part = name + 4 + nd + 1;
    size_t plen = dot > part ? (size_t)(dot - part) : 0;
    for (size_t i = 0; i < mp_gguf_n_layer_names; i++) {
        const mp_gguf_name *ln = &mp_gguf_layer_names[i];
        if (ln->export_only || !(ln->fam & (a->gemma_norms ? MP_GGUF_FAM_GEMMA : MP_GGUF_FAM_PLAIN))) continue;
        if (strlen(ln->gguf) == plen && strncmp(part, ln->gguf, plen) == 0)
            return asprintf(out, "model.layers.%llu.%s%s", (unsigned long long)layer, ln->hf, dot) < 0
                       ? mp_errf(err, MP_E_NOMEM, "out of memory")
                       : MP_OK;
    }
    return MP_OK;
}

/* ------------------------------------------------------------ the plan */

typedef struct gout {
    const mp_gguf_tensor *t;   /* NULL: a zero bias that completes a set (complete_biases) */
    char *name;                /* output name, owned */
    mp_tensor_spec spec;
    uint64_t bytes;
    uint32_t shard;
    uint64_t head_dim;         /* > 0: undo the q/k permutation in groups of head_dim rows */
    int minus_one;             /* gemma3 norm */
    uint64_t xxh64;
    const char *origin;
} gout;

typedef struct gjob {
    const mp_convert_opts *o;
    const mp_gguf *g;
    const arch_desc *arch;
    gout *outs;
    size_t n_outs;
    size_t n_shards;
    char (*shard_names)[64];
    mp_dest dest;
    mp_mfile *files;
    size_t n_files;
    mp_reporter progress;
    uint8_t *raw;              /* packed input of one tile */
    float *tile, *perm;
    uint8_t *out;
    size_t tile_cap;           /* elements the buffers hold */
    size_t n_tokenizer_files;  /* tokenizer.json and tokenizer_config.json written */
} gjob;

static const mp_dtype target_dtype[MP_TARGET_COUNT] = {MP_DTYPE_F32, MP_DTYPE_F16, MP_DTYPE_BF16};
static const char *const target_torch[MP_TARGET_COUNT] = {"float32", "float16", "bfloat16"};

static int cmp_out(const void *pa, const void *pb)
{
    return mp_natcmp(((const gout *)pa)->name, ((const gout *)pb)->name);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int64_t meta_int(const mp_gguf *g, const char *arch, const char *key, int64_t dflt)
{
    char k[160];
    int64_t v;
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return mp_gguf_get_int(g, k, &v) ? v : dflt;
}

/* A bias set that transformers builds whole from one config flag (arch_desc.attn_bias_all,
 * mlp_bias_all), completed with zeros where the GGUF holds only some of it: a llama whose q, k
 * and v have biases and o has none gets o_proj.bias = 0, which is what the GGUF computes, and
 * transformers reports no missing key. The bias length is its weight's row count. */
static mp_errcode complete_set(gjob *j, uint64_t n_layers, mp_dtype dt, const char *const *parts,
                               const char *const *hf, size_t n_parts, mp_err *err)
{
    const mp_gguf *g = j->g;
    char gn[96];
    int any = 0;
    for (uint64_t l = 0; l < n_layers && !any; l++)
        for (size_t p = 0; p < n_parts && !any; p++) {
            snprintf(gn, sizeof gn, "blk.%llu.%s.bias", (unsigned long long)l, parts[p]);
            any = mp_gguf_find(g, gn) != NULL;
        }
    for (uint64_t l = 0; any && l < n_layers; l++)
        for (size_t p = 0; p < n_parts; p++) {
            snprintf(gn, sizeof gn, "blk.%llu.%s.bias", (unsigned long long)l, parts[p]);
            if (mp_gguf_find(g, gn)) continue;
            snprintf(gn, sizeof gn, "blk.%llu.%s.weight", (unsigned long long)l, parts[p]);
            const mp_gguf_tensor *w = mp_gguf_find(g, gn);
            if (!w || w->n_dims != 2) continue;
            gout *o = &j->outs[j->n_outs++];
            memset(o, 0, sizeof *o);
            if (asprintf(&o->name, "model.layers.%llu.%s.bias", (unsigned long long)l, hf[p]) < 0) {
                o->name = NULL;
                return mp_errf(err, MP_E_NOMEM, "out of memory");
            }
            o->spec = (mp_tensor_spec){.name = o->name, .dtype = dt, .n_dims = 1, .shape = {w->ne[1]}};
            o->bytes = w->ne[1] * (mp_dtype_bits(dt) / 8);
            o->origin = "zeros";
        }
    return MP_OK;
}

static mp_errcode complete_biases(gjob *j, uint64_t n_layers, mp_dtype dt, mp_err *err)
{
    static const char *const attn[] = {"attn_q", "attn_k", "attn_v", "attn_output"};
    static const char *const attn_hf[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                          "self_attn.o_proj"};
    static const char *const ffn[] = {"ffn_gate", "ffn_up", "ffn_down"};
    static const char *const ffn_hf[] = {"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
    if (j->arch->attn_bias_all) MP_FORWARD(complete_set(j, n_layers, dt, attn, attn_hf, 4, err));
    if (j->arch->mlp_bias_all) MP_FORWARD(complete_set(j, n_layers, dt, ffn, ffn_hf, 3, err));
    return MP_OK;
}

/* The heads the rope permutation of attn_q / attn_k is undone with, and the layer count. */
typedef struct arch_dims {
    int64_t n_head, n_head_kv;
    uint64_t n_layers;
} arch_dims;

/* o->head_dim for a Q or K projection whose rope permutation the architecture undoes. */
static mp_errcode plan_unpermute(const gjob *j, const arch_dims *h, gout *o, mp_err *err)
{
    const mp_gguf_tensor *t = o->t;
    int is_q = ends_with(t->name, "attn_q.weight") || ends_with(t->name, "attn_q.bias");
    int is_k = ends_with(t->name, "attn_k.weight") || ends_with(t->name, "attn_k.bias");
    if (!j->arch || !j->arch->permute_qk || !(is_q || is_k) || strncmp(t->name, "blk.", 4) != 0) return MP_OK;
    int64_t n = is_q ? h->n_head : h->n_head_kv;
    uint64_t rows = t->n_dims >= 2 ? t->ne[1] : t->ne[0];
    if (n <= 0 || rows % (2 * (uint64_t)n) != 0 || t->n_dims > 2)
        return mp_errf_at(err, MP_E_INPUT, mp_gguf_file(j->g, t->file)->path, t->name, -1,
                          "cannot undo the rope permutation: %llu rows and %lld heads "
                          "('%s.attention.head_count%s')", (unsigned long long)rows,
                          (long long)n, j->arch->gguf, is_q ? "" : "_kv");
    o->head_dim = rows / (uint64_t)n;
    return MP_OK;
}

/* The output of GGUF tensor t: its Hugging Face name, spec, size and transforms. */
static mp_errcode plan_output(gjob *j, const arch_dims *h, const mp_gguf_tensor *t, gout *o, size_t *n_unmapped,
                              mp_err *err)
{
    const mp_gguf *g = j->g;
    mp_dtype dt = target_dtype[j->o->target];
    o->t = t;
    o->name = NULL;
    if (j->arch) MP_FORWARD(hf_name(j->arch, t, mp_gguf_file(g, t->file)->path, h->n_layers, &o->name, err));
    if (!o->name) {
        if (j->arch) (*n_unmapped)++;
        o->name = mp_strdup(t->name);
        if (!o->name) return mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    if (!mp_gguf_type_dequantizable(t->type))
        return mp_errf_at(err, MP_E_UNSUPPORTED, mp_gguf_file(g, t->file)->path, t->name, -1,
                          "type %s (id %u) is not supported for dequantization (supported: "
                          "F32 F16 BF16 F64 I8 I16 I32 I64 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K "
                          "Q4_K Q5_K Q6_K TQ1_0 TQ2_0 MXFP4 IQ4_NL IQ4_XS Q1_0 Q2_0)",
                          mp_gguf_type_name(t->type), t->type);
    o->spec.name = o->name;
    o->spec.dtype = dt;
    o->spec.n_dims = t->n_dims;
    for (uint32_t d = 0; d < t->n_dims; d++) o->spec.shape[d] = t->ne[t->n_dims - 1 - d];
    const char *why;
    if (mp_dtype_nbytes(dt, t->n_elems, &o->bytes, &why))
        return mp_errf_at(err, MP_E_INPUT, NULL, t->name, -1, "size overflows");
    MP_FORWARD(plan_unpermute(j, h, o, err));
    o->minus_one = j->arch && j->arch->norm_shift && ends_with(o->name, "norm.weight");
    o->origin = mp_gguf_type_block(t->type) > 1 ? "dequantize"
                : (t->type == MP_GGUF_F32 && dt == MP_DTYPE_F32 && !o->head_dim && !o->minus_one) ? "copy"
                                                                                            : "cast";
    return MP_OK;
}

/* The tile buffers, and the outputs' shards and shard names. */
static mp_errcode plan_buffers_and_shards(gjob *j, mp_err *err)
{
    const size_t need = TILE_ELEMS;
    j->tile_cap = need;
    /* raw holds up to 8 bytes per element (F64, I64); a block never takes more. */
    j->raw = malloc(need * 8);
    j->tile = malloc(need * sizeof(float));
    j->perm = malloc(need * sizeof(float));
    j->out = malloc(need * sizeof(float));
    if (!j->raw || !j->tile || !j->perm || !j->out) return mp_errf(err, MP_E_NOMEM, "out of memory");
    return mp_job_plan_shards(j->outs, j->n_outs, sizeof *j->outs, offsetof(gout, spec), offsetof(gout, shard),
                              j->o->max_shard, &j->n_shards, &j->shard_names, err);
}

static mp_errcode plan(gjob *j, size_t *n_unmapped, mp_err *err)
{
    const mp_gguf *g = j->g;
    size_t n = mp_gguf_n_tensors(g);
    arch_dims h = {0, 0, 0};
    if (j->arch) {
        h.n_head = meta_int(g, j->arch->gguf, "attention.head_count", 0);
        h.n_head_kv = meta_int(g, j->arch->gguf, "attention.head_count_kv", h.n_head);
        int64_t block_count = meta_int(g, j->arch->gguf, "block_count", 0);
        h.n_layers = block_count > 0 ? (uint64_t)block_count : 0;
    }
    /* room for the zero biases: at most 7 a layer, and n_layers is bounded by the tensors */
    size_t cap = n + (h.n_layers <= n ? 7 * (size_t)h.n_layers : 0);
    j->outs = calloc(cap ? cap : 1, sizeof *j->outs);
    if (!j->outs) return mp_errf(err, MP_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        MP_FORWARD(plan_output(j, &h, mp_gguf_tensor_at(g, i), &j->outs[j->n_outs++], n_unmapped, err));
    if (j->arch && h.n_layers <= n) MP_FORWARD(complete_biases(j, h.n_layers, target_dtype[j->o->target], err));
    qsort(j->outs, j->n_outs, sizeof *j->outs, cmp_out);
    for (size_t i = 1; i < j->n_outs; i++)
        if (strcmp(j->outs[i - 1].name, j->outs[i].name) == 0)
            return mp_errf_at(err, MP_E_INPUT, NULL, j->outs[i].name, -1,
                              "two GGUF tensors ('%s' and '%s') map to this name",
                              j->outs[i - 1].t ? j->outs[i - 1].t->name : "(zero bias)",
                              j->outs[i].t ? j->outs[i].t->name : "(zero bias)");
    return plan_buffers_and_shards(j, err);
}

/* ------------------------------------------------------------ one tensor */

/* The tile's values, once dequantized (and unpermuted): Gemma's norm shift, the cast to the
 * target, the write. `at` is the element of the output tensor the values start at. */
static mp_errcode emit(gjob *j, mp_st_writer *w, const gout *o, float *v, uint64_t cnt, uint64_t at,
                       mp_err *err)
{
    const size_t oes = mp_dtype_bits(o->spec.dtype) / 8;
    const uint64_t cols = o->t->ne[0] ? o->t->ne[0] : 1;
    if (o->minus_one)
        for (uint64_t i = 0; i < cnt; i++) v[i] -= 1.0f;
    MP_FORWARD(mp_convert_store(v, (size_t)cnt, j->o->target, j->out, o->name, at, cols, err));
    MP_FORWARD(mp_st_writer_write(w, j->out, (size_t)cnt * oes, err));
    mp_report_add(&j->progress, cnt * oes);
    return MP_OK;
}

/* Dequantizes elements [e, e + cnt) of t (whole blocks) into j->tile. */
static mp_errcode load(gjob *j, const mp_gguf_tensor *t, uint64_t e, uint64_t cnt, mp_err *err)
{
    const uint64_t blk = mp_gguf_type_block(t->type), bsz = mp_gguf_type_size(t->type);
    if (j->o->interrupted && *j->o->interrupted)
        return mp_errf(err, MP_E_INTERRUPTED, "interrupted; the partial output was removed");
    MP_FORWARD(mp_gguf_read(j->g, t, e / blk * bsz, j->raw, (size_t)(cnt / blk * bsz), err));
    mp_errcode rc = mp_gguf_dequantize(t->type, j->raw, j->tile, cnt, err);
    if (rc != MP_OK) {
        char why[MP_ERR_MSG_MAX];
        snprintf(why, sizeof why, "%s", err->msg);
        return mp_errf_at(err, rc, mp_gguf_file(j->g, t->file)->path, t->name, -1, "%s", why);
    }
    /* A block's scale (d, dmin) that is Inf or NaN: refused, naming the block (doc/limits.md). */
    size_t bad = blk > 1 ? mp_first_nonfinite(j->tile, (size_t)cnt) : (size_t)cnt;
    if (bad < cnt)
        return mp_errf_at(err, MP_E_INPUT, mp_gguf_file(j->g, t->file)->path, t->name, -1,
                          "block %llu (%s): the scale is not finite (element %llu would be %g)",
                          (unsigned long long)((e + bad) / blk), mp_gguf_type_name(t->type),
                          (unsigned long long)(e + bad), (double)j->tile[bad]);
    return MP_OK;
}

/* LlamaModel.permute undone: Hugging Face row (head h, half s, pair i) is GGUF row
 * h * head_dim + 2i + s. Output rows are taken in runs of one (h, s), so a run of nb rows reads
 * the 2nb - 1 source rows it picks from: the tile bounds the memory whatever the head's size
 * (doc/limits.md). A row longer than half the tile is taken alone, in column pieces. */
static mp_errcode produce_rope(gjob *j, mp_st_writer *w, const gout *o, mp_err *err)
{
    const mp_gguf_tensor *t = o->t;
    const uint64_t len = t->n_dims >= 2 ? t->ne[0] : 1, rows = t->n_elems / len;
    const uint64_t hd = o->head_dim, half = hd / 2, blk = mp_gguf_type_block(t->type);
    const uint64_t per = j->tile_cap / (2 * len); /* rows of a run; 0: rows in pieces */
    for (uint64_t r = 0; r < rows;) {
        uint64_t h = r / hd, s = (r % hd) / half, i = (r % hd) % half;
        uint64_t src = h * hd + 2 * i + s;
        if (per == 0) {
            uint64_t piece = j->tile_cap / blk * blk;
            for (uint64_t c = 0; c < len; c += piece) {
                uint64_t cnt = len - c < piece ? len - c : piece;
                MP_FORWARD(load(j, t, src * len + c, cnt, err));
                MP_FORWARD(emit(j, w, o, j->tile, cnt, r * len + c, err));
            }
            r++;
            continue;
        }
        uint64_t nb = per < half - i ? per : half - i;
        MP_FORWARD(load(j, t, src * len, (2 * nb - 1) * len, err));
        for (uint64_t k = 0; k < nb; k++) memcpy(j->perm + k * len, j->tile + 2 * k * len, len * sizeof(float));
        MP_FORWARD(emit(j, w, o, j->perm, nb * len, r * len, err));
        r += nb;
    }
    return MP_OK;
}

static mp_errcode produce(gjob *j, mp_st_writer *w, const gout *o, mp_err *err)
{
    const mp_gguf_tensor *t = o->t;
    if (!t) { /* a zero bias: its length is a weight's row count, far below the tile */
        memset(j->out, 0, (size_t)o->bytes);
        MP_FORWARD(mp_st_writer_write(w, j->out, (size_t)o->bytes, err));
        mp_report_add(&j->progress, o->bytes);
        return MP_OK;
    }
    if (o->head_dim) return produce_rope(j, w, o, err);
    const uint64_t step = j->tile_cap / mp_gguf_type_block(t->type) * mp_gguf_type_block(t->type);
    for (uint64_t e = 0; e < t->n_elems; e += step) {
        uint64_t cnt = t->n_elems - e < step ? t->n_elems - e : step;
        MP_FORWARD(load(j, t, e, cnt, err));
        MP_FORWARD(emit(j, w, o, j->tile, cnt, e, err));
    }
    return MP_OK;
}

static mp_errcode produce_out(void *ctx, mp_st_writer *w, size_t i, mp_err *err)
{
    gjob *j = ctx;
    return produce(j, w, &j->outs[i], err);
}

static mp_errcode write_shard(gjob *j, size_t s, mp_err *err)
{
    mp_out_table t = {j->outs, j->n_outs, sizeof *j->outs, offsetof(gout, spec), offsetof(gout, shard),
                      offsetof(gout, xxh64)};
    return mp_write_shard(&j->dest, j->shard_names[s], &t, (uint32_t)s, produce_out, j, &j->files[j->n_files++], err);
}

/* ------------------------------------------------------------ config.json */

/* The shortest decimal that reads back as the same float (metadata floats are mostly f32). */
static void put_num(mp_buf *b, double v, int is_f32)
{
    char s[40];
    if (v == floor(v) && fabs(v) < 1e15) { /* 500000.0, as Python's json writes it */
        mp_buf_printf(b, "%.1f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        double back = strtod(s, NULL);
        if (is_f32 ? (float)back == (float)v : back == v) break;
    }
    if (!strpbrk(s, ".eEn")) strcat(s, ".0");
    mp_buf_puts(b, s);
}

static void cfg_int(mp_buf *b, const char *key, int64_t v)
{
    if (v >= 0) mp_buf_printf(b, ",\n  \"%s\": %lld", key, (long long)v);
}

static void cfg_float(mp_buf *b, const mp_gguf *g, const char *arch, const char *gkey,
                      const char *key, double dflt)
{
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch, gkey);
    const mp_gguf_kv *kv = mp_gguf_find_kv(g, k);
    double v;
    if (!mp_gguf_get_float(g, k, &v)) v = dflt;
    if (!isfinite(v) || v < 0) return;
    mp_buf_printf(b, ",\n  \"%s\": ", key);
    put_num(b, v, kv && kv->type == MP_GGUF_V_F32);
}

static mp_errcode write_config(gjob *j, mp_err *err)
{
    const mp_gguf *g = j->g;
    const arch_desc *a = j->arch;
    const char *an = a->gguf;
    mp_buf b = MP_BUF_INIT;
    mp_buf_printf(&b, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\"", a->hf_class,
                  a->model_type);
    int64_t hidden = meta_int(g, an, "embedding_length", -1);
    cfg_int(&b, "hidden_size", hidden);
    cfg_int(&b, "intermediate_size", meta_int(g, an, "feed_forward_length", -1));
    cfg_int(&b, "num_hidden_layers", meta_int(g, an, "block_count", -1));
    int64_t heads = meta_int(g, an, "attention.head_count", -1);
    cfg_int(&b, "num_attention_heads", heads);
    cfg_int(&b, "num_key_value_heads", meta_int(g, an, "attention.head_count_kv", heads));
    /* llama.cpp's head size is key_length, else embedding_length / head_count; transformers'
     * defaults differ (qwen3 128, gemma3 256), so it is always written. */
    int64_t head_dim = meta_int(g, an, "attention.key_length", hidden > 0 && heads > 0 ? hidden / heads : -1);
    cfg_int(&b, "head_dim", head_dim);
    cfg_int(&b, "max_position_embeddings", meta_int(g, an, "context_length", -1));
    cfg_float(&b, g, an, "rope.freq_base", "rope_theta", 10000.0);
    cfg_float(&b, g, an, "attention.layer_norm_rms_epsilon", "rms_norm_eps", -1.0);
    if (a->gemma_norms) {
        cfg_int(&b, "sliding_window", meta_int(g, an, "attention.sliding_window", -1));
        cfg_float(&b, g, an, "rope.freq_base_swa", "rope_local_base_freq", 10000.0);
        /* llama.cpp scales attention by 1/sqrt(head_dim) (the 27B model aside). */
        cfg_int(&b, "query_pre_attn_scalar", head_dim);
    }
    const mp_gguf_tensor *emb = mp_gguf_find(g, "token_embd.weight");
    const mp_gguf_kv *tokens = mp_gguf_find_kv(g, "tokenizer.ggml.tokens");
    int64_t vocab = meta_int(g, an, "vocab_size", -1);
    if (emb && emb->n_dims == 2) vocab = (int64_t)emb->ne[1];
    else if (vocab < 0 && tokens && tokens->type == MP_GGUF_V_ARR) vocab = (int64_t)tokens->n;
    cfg_int(&b, "vocab_size", vocab);
    int64_t id;
    if (mp_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &id)) cfg_int(&b, "bos_token_id", id);
    if (mp_gguf_get_int(g, "tokenizer.ggml.eos_token_id", &id)) cfg_int(&b, "eos_token_id", id);
    /* transformers builds biases only when the config says so, and drops the rest as unexpected
     * keys: every bias the tensors hold must be announced. */
    int attn_bias = 0, mlp_bias = 0;
    for (size_t i = 0; i < mp_gguf_n_tensors(g); i++) {
        const char *tn = mp_gguf_tensor_at(g, i)->name;
        if (strncmp(tn, "blk.", 4) != 0 || !ends_with(tn, ".bias")) continue;
        attn_bias |= strstr(tn, ".attn_") != NULL;
        mlp_bias |= strstr(tn, ".ffn_") != NULL;
    }
    if (attn_bias) mp_buf_puts(&b, ",\n  \"attention_bias\": true");
    if (mlp_bias) mp_buf_puts(&b, ",\n  \"mlp_bias\": true");
    mp_buf_printf(&b, ",\n  \"tie_word_embeddings\": %s",
                  mp_gguf_find(g, "output.weight") ? "false" : "true");
    mp_buf_printf(&b, ",\n  \"torch_dtype\": \"%s\"\n}\n", target_torch[j->o->target]);
    mp_errcode rc = b.oom ? mp_errf(err, MP_E_NOMEM, "out of memory")
                          : mp_dest_write_file(&j->dest, "config.json", b.data, b.len, err);
    mp_buf_release(&b);
    return rc;
}

/* ------------------------------------------------------------ index and manifest */

/* tokenizer.json (byte-level BPE) or tokenizer.model (SentencePiece), and tokenizer_config.json,
 * from the tokenizer metadata; a note says when neither can be written. */
static mp_errcode write_tokenizer(gjob *j, mp_err *err)
{
    if (!mp_gguf_find_kv(j->g, "tokenizer.ggml.model")) return MP_OK;
    mp_buf tok = MP_BUF_INIT, cfg = MP_BUF_INIT;
    const char *why = NULL, *why_spm = NULL, *name = "tokenizer.json";
    mp_errcode rc = mp_gguf_tokenizer_to_hf(j->g, &tok, &cfg, &why, err);
    if (rc == MP_OK && why) {
        name = "tokenizer.model";
        rc = mp_gguf_tokenizer_to_spm(j->g, &tok, &cfg, &why_spm, err);
        why = why_spm;
    }
    if (rc == MP_OK && why)
        mp_report_note(&j->progress, "note: no tokenizer written: only byte-level BPE (llama-bpe, "
                                     "qwen2) and SentencePiece tokenizers are");
    if (rc == MP_OK && !why) rc = mp_dest_write_file(&j->dest, name, tok.data, tok.len, err);
    if (rc == MP_OK && !why) rc = mp_dest_write_file(&j->dest, "tokenizer_config.json", cfg.data, cfg.len, err);
    if (rc == MP_OK && !why) j->n_tokenizer_files = 2;
    mp_buf_release(&tok);
    mp_buf_release(&cfg);
    return rc;
}

static mp_errcode finish_dest(gjob *j, const char *src, size_t n_unpermuted, mp_err *err)
{
    const mp_gguf *g = j->g;
    if (j->arch) MP_FORWARD(write_config(j, err));
    size_t nf = mp_gguf_n_files(g);
    mp_mfile *src_files = calloc(nf, sizeof *src_files);
    mp_mtensor *mt = calloc(j->n_outs ? j->n_outs : 1, sizeof *mt);
    mp_buf layout = MP_BUF_INIT;
    mp_errcode rc = MP_OK;
    if (!src_files || !mt) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    for (size_t i = 0; rc == MP_OK && i < nf; i++) {
        snprintf(src_files[i].name, sizeof src_files[i].name, "%s", mp_gguf_file_name(g, i));
        src_files[i].size = mp_gguf_file(g, i)->size;
        rc = mp_file_xxh128(mp_gguf_file(g, i), src_files[i].xxh128, err);
    }
    uint64_t bytes = 0;
    if (rc == MP_OK) rc = write_tokenizer(j, err);
    for (size_t i = 0; rc == MP_OK && i < j->n_outs; i++) {
        const gout *o = &j->outs[i];
        mt[i] = (mp_mtensor){o->name, j->shard_names[o->shard], o->spec.dtype, o->spec.n_dims,
                             o->spec.shape, o->xxh64, o->origin};
        bytes += o->bytes;
    }
    const char *arch = mp_gguf_get_str(g, "general.architecture");
    mp_buf_printf(&layout, "{\"name\": \"%s\", \"dtype\": \"%s\", \"dense\": true, \"source\": \"gguf\", "
                           "\"architecture\": ", target_torch[j->o->target],
                  mp_dtype_name(target_dtype[j->o->target]));
    if (arch) mp_buf_json_str(&layout, arch);
    else mp_buf_puts(&layout, "null");
    mp_buf_printf(&layout, ", \"names_mapped\": %s, \"qk_unpermuted\": %zu, \"norm_shift_undone\": %s}",
                  j->arch ? "true" : "false", n_unpermuted,
                  j->arch && j->arch->norm_shift ? "true" : "false");
    if (rc == MP_OK && layout.oom) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    static const char *const extra[] = {"config.json", "tokenizer.json", "tokenizer.model",
                                        "tokenizer_config.json", NULL};
    mp_job_tail t = {.src = src, .argc = j->o->argc, .argv = j->o->argv, .source_quant = "gguf",
                     .tensors = mt, .n_tensors = j->n_outs,
                     .index_name = j->n_shards > 1 ? "model.safetensors.index.json" : NULL,
                     .tensor_bytes = bytes, .files = j->files, .n_files = j->n_files, .extra = extra,
                     .src_files = src_files, .n_src_files = nf, .layout_json = layout.data};
    if (rc == MP_OK) rc = mp_job_finish(&j->dest, &t, err);
    j->n_files = t.n_files;
    mp_buf_release(&layout);
    free(src_files);
    free(mt);
    return rc;
}

/* ------------------------------------------------------------ the run */

mp_errcode mp_gguf_convert_run(const char *src, const char *dst, const mp_convert_opts *o,
                               mp_convert_result *res, mp_err *err)
{
    gjob j;
    memset(&j, 0, sizeof j);
    j.dest = (mp_dest)MP_DEST_INIT;
    memset(res, 0, sizeof *res);
    j.o = o;
    j.progress = (mp_reporter){.fn = o->progress, .user = o->progress_user, .quiet = o->quiet};
    double t0 = mp_now();
    if (o->threads > 0) omp_set_num_threads(o->threads);
    mp_gguf *g = NULL;
    mp_errcode rc = mp_gguf_open(&g, src, err);
    if (rc != MP_OK) return rc;
    j.g = g;
    const char *arch = mp_gguf_get_str(g, "general.architecture");
    snprintf(res->arch, sizeof res->arch, "%s", arch ? arch : "");
    for (size_t i = 0; arch && i < sizeof archs / sizeof *archs; i++)
        if (strcmp(archs[i].gguf, arch) == 0) j.arch = &archs[i];
    size_t n_unmapped = 0;
    rc = plan(&j, &n_unmapped, err);
    if (rc != MP_OK) goto cleanup;
    j.files = calloc(j.n_shards + 6, sizeof *j.files);
    if (!j.files) {
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        goto cleanup;
    }
    if (!j.arch)
        mp_report_note(&j.progress, "note: architecture '%s' has no Hugging Face name mapping (llama, "
                                    "mistral, qwen2, qwen3, gemma3): the checkpoint keeps its GGUF "
                                    "tensor names and gets no config.json", arch ? arch : "(unset)");
    for (size_t i = 0; j.arch && i < j.n_outs; i++)
        if (j.outs[i].t && strcmp(j.outs[i].name, j.outs[i].t->name) == 0)
            mp_report_note(&j.progress, "note: tensor '%s' has no Hugging Face counterpart in %s "
                                        "and keeps its GGUF name", j.outs[i].name, j.arch->gguf);
    rc = mp_journal_begin_dest(&j.dest, dst, src, "convert", NULL, g, o->force, &j.progress, err);
    if (rc != MP_OK) goto cleanup;
    uint64_t total = 0;
    for (size_t i = 0; i < j.n_outs; i++) total += j.outs[i].bytes;
    size_t n_unpermuted = 0;
    for (size_t i = 0; i < j.n_outs; i++) n_unpermuted += j.outs[i].head_dim > 0;
    mp_report_start(&j.progress, "convert", total);
    for (size_t s = 0; s < j.n_shards && rc == MP_OK; s++) rc = write_shard(&j, s, err);
    mp_report_end(&j.progress);
    if (rc == MP_OK) rc = finish_dest(&j, src, n_unpermuted, err);
    if (rc == MP_OK) rc = mp_dest_commit(&j.dest, err);
    if (rc != MP_OK) {
        mp_dest_abort(&j.dest);
        goto cleanup;
    }
    for (size_t i = 0; i < j.n_outs; i++) {
        const char *org = j.outs[i].origin;
        res->n_dequantized += strcmp(org, "dequantize") == 0;
        res->n_cast += strcmp(org, "cast") == 0;
        res->n_copied += strcmp(org, "copy") == 0;
    }
    res->n_files = j.n_shards;
    res->n_side_files = (j.arch ? 1 : 0) + j.n_tokenizer_files;
    res->bytes = total;
    res->names_mapped = j.arch != NULL;
    res->n_unpermuted = n_unpermuted;
    res->seconds = mp_now() - t0;
cleanup:
    for (size_t i = 0; i < j.n_outs; i++) free(j.outs[i].name);
    free(j.outs);
    free(j.shard_names);
    free(j.files);
    free(j.raw);
    free(j.tile);
    free(j.perm);
    free(j.out);
    mp_gguf_close(g);
    return rc;
}
