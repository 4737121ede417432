/*
 * split.c - `modelprep split`: one safetensors file per module for layer-streaming runtimes
 * (doc/split.md).
 *
 * Tensors are assigned by exact prefix from a rule table, never by substring; every tensor lands
 * in some file (unmatched ones in extra.safetensors). Bytes are streamed from the source by
 * range, one bounded chunk at a time. The output is built in DST.partial-XXXXXX: each file is
 * written under a temporary name, fsynced, renamed and then recorded in a journal, so a killed
 * run can be resumed (--resume) by keeping only the files whose size and hash match the journal.
 * The manifest comes last, then the directory is renamed into place.
 *
 * With --compress zstd each file is written through the writer's zstd stream as
 * NAME.safetensors.zst (decompressing to exactly the plain file), the journal records the
 * compressed file's size and hash, and the index is model.safetensors.zst.index.json: standard
 * loaders cannot read .zst, so the standard index name is not used for files they would fail on.
 */
#define _GNU_SOURCE
#include "split.h"
#include "dest.h"
#include "job.h"
#include "journal.h"
#include "partition.h"
#include "pipeline.h"
#include "manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#define CHUNK (4u << 20)
#define COPY_WINDOW (16u << 20) /* bytes of a plain source mapped at a time */
#define GGUF_META "gguf-metadata.gguf"

/* Module rules, in order. '#' matches a run of digits. The module is the matched prefix less
 * its final dot; the rank orders files: embeddings, layers by number, final norm, head, others. */
static const struct {
    const char *prefix;
    int rank;
} rules[] = {
    {"model.embed_tokens.", 0},
    {"model.language_model.embed_tokens.", 0},
    {"transformer.wte.", 0},
    {"transformer.word_embeddings.", 0},
    {"transformer.word_embeddings_layernorm.", 0},
    {"model.layers.#.", 1},
    {"model.language_model.layers.#.", 1},
    {"transformer.h.#.", 1},
    {"model.norm.", 2},
    {"model.language_model.norm.", 2},
    {"transformer.ln_f.", 2},
    {"lm_head.", 3},
    {"model.visual.", 4},
    {"visual.", 4},
    {"vision_tower.", 4},
    {"model.vision_tower.", 4},
    {"multi_modal_projector.", 4},
    {"model.multi_modal_projector.", 4},
    {"mtp.", 4},
    /* GGUF names (llama.cpp's tensor map) */
    {"token_embd.", 0},
    {"blk.#.", 1},
    {"output_norm.", 2},
    {"output.", 3},
};

/* Length of the matched prefix (dot included), or 0; *num receives the layer number. When the
 * text before '#' matched but what stands at '#' is not a bounded decimal (doc/limits.md), 0
 * with *bad saying why. */
static size_t match_rule(const char *pat, const char *name, long *num, const char **bad)
{
    const char *p = pat, *n = name;
    *num = -1;
    *bad = NULL;
    while (*p) {
        if (*p == '#') {
            uint64_t v;
            size_t nd = mp_parse_name_index(n, INT32_MAX, &v, bad);
            if (nd == 0) return 0;
            *num = (long)v;
            n += nd;
            p++;
            continue;
        }
        if (*p != *n) return 0;
        p++;
        n++;
    }
    return (size_t)(n - name);
}

typedef struct module {
    char name[160];            /* file stem: "model.layers.7" */
    int rank;
    long layer;
    const mp_tensor **src;     /* tensors in natural order */
    const char **out_names;    /* names written (the source's, or lm_head.weight when tied) */
    size_t n;
    uint64_t file_size;        /* the safetensors bytes (before compression) */
    uint64_t *xxh64;           /* per tensor, once written */
    uint8_t xxh128[16];        /* of the safetensors bytes */
    uint64_t disk_size;        /* of the file on disk: compressed, or file_size */
    uint8_t disk_xxh128[16];
    int done;
} module;

static int module_cmp(const void *pa, const void *pb)
{
    const module *a = pa, *b = pb;
    if (a->rank != b->rank) return a->rank < b->rank ? -1 : 1;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    return mp_natcmp(a->name, b->name);
}

typedef struct split_job {
    const mp_split_opts *o;
    mp_gguf *g;             /* a GGUF source; m is then its view (U8 rows of raw ggml blocks) */
    mp_st_model *m;
    module *mods;
    size_t n_mods;
    const char *alias_from, *alias_to;   /* tied: lm_head.weight -> embedding */
    mp_runtime runtime;                  /* whose loader the layout is for */
    const mp_runtime_traits *rt;         /* its traits */
    int empty_head;                      /* tied: lm_head.safetensors with no tensors */
    mp_dest dest;
    mp_reporter progress;
    uint8_t *chunk;
    mp_src_hash *src_hash;  /* hashing the sources in the background */
    int argc;               /* the command line the manifest records */
    char **argv;
    mp_part_job *part;      /* --part I/N or a merge (partition.h); NULL: a whole run */
    char **part_names;      /* per module: its file */
    uint64_t *part_bytes;   /* per module: its bytes, what the plan balances */
} split_job;

/* One tensor on its way into a module: grouping sorts these, O(T log T) in time and 48 bytes
 * a tensor in memory (doc/limits.md, "memory"). */
typedef struct slot {
    const mp_tensor *t;
    const char *out_name;
    const char *stem;       /* the module's name: stem_len bytes of this */
    uint32_t stem_len;
    int rank;
    long layer;
    size_t seq;             /* source order, kept within a module */
} slot;

static int slot_cmp(const void *pa, const void *pb)
{
    const slot *a = pa, *b = pb;
    if (a->rank != b->rank) return a->rank < b->rank ? -1 : 1;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    uint32_t l = a->stem_len < b->stem_len ? a->stem_len : b->stem_len;
    int c = memcmp(a->stem, b->stem, l);
    if (c || a->stem_len != b->stem_len) return c ? c : a->stem_len < b->stem_len ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The layers a name may number: config.json's num_hidden_layers (plus DeepSeek's
 * num_nextn_predict_layers, stored after them), or a GGUF's '<arch>.block_count'; 0 unknown. */
static uint64_t layer_bound(const split_job *j, const mp_hf_config *cfg)
{
    if (j->g) {
        const char *arch = mp_gguf_get_str(j->g, "general.architecture");
        char key[160];
        int64_t v;
        snprintf(key, sizeof key, "%s.block_count", arch ? arch : "");
        return arch && mp_gguf_get_int(j->g, key, &v) && v > 0 ? (uint64_t)v : 0;
    }
    if (cfg->num_hidden_layers <= 0) return 0;
    return (uint64_t)cfg->num_hidden_layers + (uint64_t)(cfg->num_nextn_predict_layers > 0 ? cfg->num_nextn_predict_layers : 0);
}

static mp_errcode classify(const split_job *j, const mp_tensor *t, uint64_t bound, slot *sl, mp_err *err)
{
    *sl = (slot){t, t->name, "extra", 5, 5, -1, 0};
    for (size_t r = 0; r < sizeof rules / sizeof *rules; r++) {
        long num;
        const char *bad;
        size_t len = match_rule(rules[r].prefix, t->name, &num, &bad);
        const char *path = mp_st_file(j->m, t->file)->path;
        if (bad)
            return mp_errf_at(err, MP_E_INPUT, path, t->name, -1, "the layer number after '%.*s' %s",
                              (int)(strchr(rules[r].prefix, '#') - rules[r].prefix), rules[r].prefix, bad);
        if (!len || len - 1 >= sizeof ((module *)0)->name) continue;
        if (num >= 0 && bound > 0 && (uint64_t)num >= bound)
            return mp_errf_at(err, MP_E_INPUT, path, t->name, -1, "layer %ld is beyond the %llu layers of %s", num,
                              (unsigned long long)bound, j->g ? "the GGUF's block_count" : "config.json");
        *sl = (slot){t, t->name, t->name, (uint32_t)(len - 1), rules[r].rank, num, 0};
        break;
    }
    return MP_OK;
}

/* Tied embeddings: the head reuses the embedding (doc/split.md §3);
 * with --materialize-tied it becomes a slot of its own in *extra. */
static void plan_tied(split_job *j, const mp_hf_config *cfg, slot *extra, size_t *n_extra)
{
    static const char *const embeds[] = {"model.embed_tokens.weight",
                                         "model.language_model.embed_tokens.weight",
                                         "transformer.wte.weight"};
    /* GGUF: no output.weight means the head is the embedding, as llama.cpp loads it. */
    if (j->g && !mp_st_find(j->m, "output.weight") && mp_st_find(j->m, "token_embd.weight")) {
        j->alias_from = "output.weight";
        j->alias_to = "token_embd.weight";
        if (j->o->materialize_tied)
            extra[(*n_extra)++] = (slot){mp_st_find(j->m, "token_embd.weight"), "output.weight", "output", 6, 3, -1, 0};
    }
    if (!j->g && cfg->tie_word_embeddings == 1 && !mp_st_find(j->m, "lm_head.weight")) {
        for (size_t e = 0; e < 3 && !j->alias_to; e++) {
            const mp_tensor *emb = mp_st_find(j->m, embeds[e]);
            if (!emb) continue;
            j->alias_from = "lm_head.weight";
            j->alias_to = embeds[e];
            if (j->o->materialize_tied) extra[(*n_extra)++] = (slot){emb, "lm_head.weight", "lm_head", 7, 3, -1, 0};
            /* RabbitLLM loads lm_head.safetensors even when tied, and then takes the embedding:
             * its own splitter writes the file with no tensors (a module without slots). */
            else if (j->rt->tied_head_file) j->empty_head = 1;
        }
    }
}

static int same_module(const slot *a, const slot *b)
{
    return a->rank == b->rank && a->layer == b->layer && a->stem_len == b->stem_len &&
           memcmp(a->stem, b->stem, a->stem_len) == 0;
}

/* Modules from the sorted slots: one per run of equal (rank, layer, stem). */
static mp_errcode build_modules(split_job *j, const slot *v, size_t n, int empty_head, mp_err *err)
{
    size_t n_mods = 0;
    for (size_t i = 0; i < n; i++) n_mods += i == 0 || !same_module(&v[i - 1], &v[i]);
    j->mods = calloc(n_mods + 1, sizeof *j->mods);
    if (!j->mods) return mp_errf(err, MP_E_NOMEM, "out of memory");
    if (empty_head) { /* lm_head with no tensors: sorted into place with the others */
        module *m = &j->mods[j->n_mods++];
        snprintf(m->name, sizeof m->name, "lm_head");
        m->rank = 3;
        m->layer = -1;
    }
    for (size_t i = 0, end; i < n; i = end) {
        for (end = i + 1; end < n && same_module(&v[i], &v[end]);) end++;
        module *m = &j->mods[j->n_mods++];
        snprintf(m->name, sizeof m->name, "%.*s", (int)v[i].stem_len, v[i].stem);
        m->rank = v[i].rank;
        m->layer = v[i].layer;
        m->src = calloc(end - i, sizeof *m->src);
        m->out_names = calloc(end - i, sizeof *m->out_names);
        m->xxh64 = calloc(end - i, sizeof *m->xxh64);
        if (!m->src || !m->out_names || !m->xxh64) return mp_errf(err, MP_E_NOMEM, "out of memory");
        for (size_t k = i; k < end; k++) {
            m->src[m->n] = v[k].t;
            m->out_names[m->n++] = v[k].out_name;
        }
    }
    return MP_OK;
}

/* Every tensor to its module by the rule table, grouped by sorting (O(T log T)), then the
 * modules in file order. A layer number that is not a bounded decimal, or beyond the model's
 * layers, is MP_E_INPUT naming the tensor. */
static mp_errcode assign(split_job *j, const mp_hf_config *cfg, mp_err *err)
{
    size_t n = mp_st_n_tensors(j->m), n_slots = 0;
    uint64_t bound = layer_bound(j, cfg);
    slot *v = malloc((n + 2) * sizeof *v);
    if (!v) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = MP_OK;
    for (size_t i = 0; rc == MP_OK && i < n; i++) rc = classify(j, mp_st_tensor(j->m, i), bound, &v[n_slots++], err);
    if (rc == MP_OK) {
        plan_tied(j, cfg, v, &n_slots);
        for (size_t i = 0; i < n_slots; i++) v[i].seq = i;
        qsort(v, n_slots, sizeof *v, slot_cmp);
        rc = build_modules(j, v, n_slots, j->empty_head, err);
    }
    free(v);
    if (rc == MP_OK) qsort(j->mods, j->n_mods, sizeof *j->mods, module_cmp);
    return rc;
}

static void specs_of(const module *m, mp_tensor_spec *specs)
{
    for (size_t k = 0; k < m->n; k++) {
        const mp_tensor *t = m->src[k];
        specs[k] = (mp_tensor_spec){m->out_names[k], t->dtype, t->n_dims, {0}};
        memcpy(specs[k].shape, t->shape, sizeof t->shape);
    }
}

static const char *const split_meta[] = {"producer", "modelprep " MP_VERSION " split"};

/* The __metadata__ pairs of a module's file: the producer, and for a GGUF source each tensor's
 * ggml type and ne ("gguf.type.<name>": "Q4_K", "gguf.ne.<name>": "4096,4096"), so that a
 * streaming runtime can hand the raw blocks to ggml. Free with free_meta. */
static mp_errcode module_meta(const split_job *j, const module *m, char ***meta, size_t *n_meta, mp_err *err)
{
    size_t n = 1 + (j->g ? 2 * m->n : 0);
    char **kv = calloc(2 * n, sizeof *kv);
    if (!kv) return mp_errf(err, MP_E_NOMEM, "out of memory");
    *meta = kv;
    *n_meta = n;
    kv[0] = mp_strdup(split_meta[0]);
    kv[1] = mp_strdup(split_meta[1]);
    for (size_t k = 0; j->g && k < m->n; k++) {
        const mp_gguf_tensor *t = mp_gguf_find(j->g, m->src[k]->name);
        char ne[128] = "";
        for (uint32_t d = 0; t && d < (t->n_dims ? t->n_dims : 1); d++)
            snprintf(ne + strlen(ne), sizeof ne - strlen(ne), "%s%llu", d ? "," : "", (unsigned long long)t->ne[d]);
        if (asprintf(&kv[2 + 4 * k], "gguf.type.%s", m->out_names[k]) < 0) kv[2 + 4 * k] = NULL;
        kv[3 + 4 * k] = mp_strdup(t ? mp_gguf_type_name(t->type) : "?");
        if (asprintf(&kv[4 + 4 * k], "gguf.ne.%s", m->out_names[k]) < 0) kv[4 + 4 * k] = NULL;
        kv[5 + 4 * k] = mp_strdup(ne);
    }
    for (size_t i = 0; i < 2 * n; i++)
        if (!kv[i]) return mp_errf(err, MP_E_NOMEM, "out of memory");
    return MP_OK;
}

static void free_meta(char **meta, size_t n_meta)
{
    for (size_t i = 0; meta && i < 2 * n_meta; i++) free(meta[i]);
    free(meta);
}

static mp_errcode plan_sizes(split_job *j, uint64_t *total, mp_err *err)
{
    *total = 0;
    for (size_t i = 0; i < j->n_mods; i++) {
        module *m = &j->mods[i];
        mp_tensor_spec *specs = calloc(m->n ? m->n : 1, sizeof *specs);
        if (!specs) return mp_errf(err, MP_E_NOMEM, "out of memory");
        specs_of(m, specs);
        char **meta = NULL;
        size_t n_meta = 0;
        mp_errcode rc = module_meta(j, m, &meta, &n_meta, err);
        if (rc == MP_OK)
            rc = mp_st_file_size_of(specs, m->n, (const char *const *)meta, n_meta, &m->file_size, err);
        free_meta(meta, n_meta);
        free(specs);
        MP_FORWARD(rc);
        *total += m->file_size;
    }
    return MP_OK;
}

static mp_errcode check_space(const char *dst, uint64_t need, mp_err *err)
{
    char *dir = mp_strdup(dst);
    if (!dir) return mp_errf(err, MP_E_NOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) slash[1] = '\0';
    else *slash = '\0';
    struct statvfs sv;
    mp_errcode rc = MP_OK;
    if (statvfs(dir, &sv) == 0) {
        uint64_t have = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
        if (have < need)
            rc = mp_errf_at(err, MP_E_IO, dir, NULL, -1,
                            "not enough free space: the split needs %llu bytes, %llu are free",
                            (unsigned long long)need, (unsigned long long)have);
    }
    free(dir);
    return rc;
}

/* ------------------------------------------------------------ journal and resume */

static char *file_name(const split_job *j, const module *m)
{
    char *s = NULL;
    return asprintf(&s, "%s.safetensors%s", m->name, j->o->zstd_level ? ".zst" : "") < 0 ? NULL : s;
}

/* The journal's fourth field: what the file was written as. A resumed run keeps only files
 * written the way it would write them. */
static void encoding_of(const split_job *j, char *buf, size_t cap)
{
    if (j->o->zstd_level) snprintf(buf, cap, "zstd:%d", j->o->zstd_level);
    else snprintf(buf, cap, "plain");
}

/* What the journal records of a module's source bytes: the xxh3-128 of each source tensor's
 * name and xxh64 (little-endian), in the module's order. */
static void source_digest(const module *m, const uint64_t *xxh64, uint8_t out[16])
{
    XXH3_state_t *h = XXH3_createState();
    memset(out, 0, 16);
    if (!h) return;
    XXH3_128bits_reset(h);
    for (size_t k = 0; k < m->n; k++) {
        uint8_t le[8];
        mp_write_le64(le, xxh64[k]);
        XXH3_128bits_update(h, m->src[k]->name, strlen(m->src[k]->name) + 1);
        XXH3_128bits_update(h, le, 8);
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h));
    memcpy(out, c.digest, 16);
    XXH3_freeState(h);
}

/* The journal's `file` record of a finished module: the file on disk, how it was written, and
 * the source bytes it came from (doc/safety.md §3). */
static mp_errcode journal_add(const split_job *j, const module *m, mp_err *err)
{
    mp_journal_file f;
    memset(&f, 0, sizeof f);
    char *name = file_name(j, m);
    if (!name) return mp_errf(err, MP_E_NOMEM, "out of memory");
    snprintf(f.name, sizeof f.name, "%s", name);
    free(name);
    f.size = m->disk_size;
    memcpy(f.xxh128, m->disk_xxh128, 16);
    encoding_of(j, f.encoding, sizeof f.encoding);
    source_digest(m, m->xxh64, f.source);
    mp_buf b = MP_BUF_INIT;
    mp_journal_format_file(&f, &b);
    mp_errcode rc = b.oom ? mp_errf(err, MP_E_NOMEM, "out of memory") : mp_dest_journal_append(&j->dest, b.data, b.len, err);
    mp_buf_release(&b);
    return rc;
}

/* The xxh64 of each of the module's source tensors, read from the source as it is now. */
static mp_errcode hash_sources_of(split_job *j, const module *m, uint64_t *out, mp_err *err)
{
    for (size_t k = 0; k < m->n; k++) {
        const mp_tensor *t = m->src[k];
        XXH64_state_t *h = XXH64_createState();
        if (!h) return mp_errf(err, MP_E_NOMEM, "out of memory");
        XXH64_reset(h, 0);
        mp_errcode rc = MP_OK;
        for (uint64_t at = 0; rc == MP_OK && at < t->n_bytes; at += CHUNK) {
            size_t len = t->n_bytes - at < CHUNK ? (size_t)(t->n_bytes - at) : CHUNK;
            rc = mp_st_read(j->m, t, at, j->chunk, len, err);
            if (rc == MP_OK) XXH64_update(h, j->chunk, len);
        }
        out[k] = XXH64_digest(h);
        XXH64_freeState(h);
        MP_FORWARD(rc);
    }
    return MP_OK;
}

/* A journaled file is kept only if its size and xxh3-128 on disk still match, it reads as
 * the file this run would write (decompressed size, every tensor), and every tensor in it
 * equals the source tensor it came from as the source is now, whose digest must also be the
 * one the journal recorded; its per-tensor hashes and, for a compressed file, the uncompressed
 * hash are recomputed from it for the manifest, in one sequential pass. */
static mp_errcode resume_one(split_job *j, module *m, const mp_journal_file *rec, mp_err *err)
{
    char *name = file_name(j, m);
    char *path = name ? mp_dest_path(&j->dest, name) : NULL;
    mp_st_model *f = NULL;
    mp_file *raw = NULL;
    uint64_t *in_file = NULL, *in_src = NULL;
    mp_errcode rc = MP_OK;
    char enc[32];
    encoding_of(j, enc, sizeof enc);
    if (!path) {
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        goto done;
    }
    mp_err ignore = MP_ERR_INIT;
    if (strcmp(rec->encoding, enc) != 0 || mp_file_open(&raw, path, &ignore) != MP_OK || raw->size != rec->size ||
        (!j->o->zstd_level && rec->size != m->file_size))
        goto done;
    uint8_t h[16], rh[16], digest[16];
    if (mp_file_xxh128(raw, h, &ignore) != MP_OK) goto done;
    if (memcmp(h, rec->xxh128, 16) != 0 || mp_st_open(&f, path, &ignore) != MP_OK) goto done;
    if (mp_st_file_compression(f, 0) != (j->o->zstd_level ? MP_COMPRESS_ZSTD : MP_COMPRESS_NONE) ||
        mp_st_file_raw_size(f, 0) != m->file_size || mp_st_file_n_tensors(f, 0) != m->n)
        goto done;
    in_file = calloc(m->n + 1, sizeof *in_file);
    in_src = calloc(m->n + 1, sizeof *in_src);
    if (!in_file || !in_src) {
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        goto done;
    }
    /* A corrupt stream behind a matching hash cannot happen short of a hash collision; still,
     * a file that does not read back is redone, not fatal. */
    if (mp_st_file_digest(f, 0, in_file, rh, j->chunk, CHUNK, &ignore) != MP_OK) goto done;
    rc = hash_sources_of(j, m, in_src, err);
    if (rc != MP_OK) goto done;
    source_digest(m, in_src, digest);
    if (memcmp(digest, rec->source, 16) != 0) {
        mp_report_note(&j->progress, "note: '%s' was made from source bytes that have changed since; "
                                     "writing it again", name);
        goto done;
    }
    for (size_t k = 0; k < m->n; k++) {
        size_t at = SIZE_MAX;
        for (size_t q = 0; q < m->n && at == SIZE_MAX; q++)
            if (strcmp(mp_st_file_tensor(f, 0, q)->name, m->out_names[k]) == 0) at = q;
        if (at == SIZE_MAX || in_file[at] != in_src[k]) goto done;
        m->xxh64[k] = in_file[at];
    }
    memcpy(m->xxh128, rh, 16);
    memcpy(m->disk_xxh128, h, 16);
    m->disk_size = raw->size;
    m->done = 1;
done:
    free(in_file);
    free(in_src);
    mp_st_close(f);
    mp_file_close(raw);
    free(path);
    free(name);
    return rc;
}

/* The job's identity (doc/safety.md §3): the command, every option that changes the output,
 * and each source file with its size, modification time and header hash (config.json too,
 * whose tie_word_embeddings changes the split). */
static mp_errcode job_identity(const split_job *j, mp_journal *id, mp_err *err)
{
    char level[16];
    snprintf(level, sizeof level, "zstd:%d", j->o->zstd_level);
    char gs[16];
    snprintf(gs, sizeof gs, "%u", j->o->gguf_split);
    MP_FORWARD(mp_journal_set_command(id, "split", err));
    MP_FORWARD(mp_journal_add_option(id, "compress", j->o->zstd_level ? level : "none", err));
    MP_FORWARD(mp_journal_add_option(id, "materialize-tied", j->o->materialize_tied ? "yes" : "no", err));
    MP_FORWARD(mp_journal_add_option(id, "gguf-split", gs, err));
    /* --for: the markers and RabbitLLM's empty head differ between layouts */
    MP_FORWARD(mp_journal_add_option(id, "for", j->rt->name, err));
    MP_FORWARD(j->g ? mp_journal_add_gguf_sources(id, j->g, err) : mp_journal_add_st_sources(id, j->m, err));
    char *cfg = j->g ? NULL : mp_path_join(mp_st_dir(j->m), "config.json");
    struct stat st;
    mp_file *f = NULL;
    mp_errcode rc = MP_OK;
    if (cfg && lstat(cfg, &st) == 0 && S_ISREG(st.st_mode) && (rc = mp_file_open(&f, cfg, err)) == MP_OK)
        rc = mp_journal_add_source(id, "config.json", f, UINT64_MAX, err);
    mp_file_close(f);
    free(cfg);
    return rc;
}

/* 1 when `name` is the file of a module the journal verified, or that file's marker. */
static int is_kept(const split_job *j, const char *name)
{
    int hit = 0;
    for (size_t i = 0; i < j->n_mods && !hit; i++) {
        if (!j->mods[i].done) continue;
        char *want = file_name(j, &j->mods[i]);
        size_t wl = want ? strlen(want) : 0;
        hit = want && strncmp(want, name, wl) == 0 &&
              (name[wl] == '\0' || (j->rt->done_markers && strcmp(name + wl, MP_RUNTIME_MARKER_SUFFIX) == 0));
        free(want);
    }
    return hit;
}

static int is_marker(const char *name)
{
    size_t n = strlen(name), s = strlen(".safetensors" MP_RUNTIME_MARKER_SUFFIX);
    return n > s && strcmp(name + n - s, ".safetensors" MP_RUNTIME_MARKER_SUFFIX) == 0;
}

/* After the journal is read, only the journal and the files that verified (with their markers)
 * stay: the index, side files and manifest of a run killed just before its commit are written
 * anew. Markers go first, so that a run killed during this loop leaves no marker whose file is
 * gone. Every entry is a regular file (mp_dest_resume checked), removed by name inside the
 * locked directory. */
static mp_errcode clean_unverified(split_job *j, mp_err *err)
{
    for (int pass = 0; pass < 2; pass++) {
        int fd = openat(j->dest.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
            if (fd >= 0) close(fd);
            return mp_errf_at(err, MP_E_IO, j->dest.partial, NULL, -1, "cannot list: %s", strerror(errno));
        }
        for (struct dirent *e; (e = readdir(d));) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
                strcmp(e->d_name, MP_JOURNAL_NAME) == 0 || (pass == 0 && !is_marker(e->d_name)) ||
                is_kept(j, e->d_name))
                continue;
            mp_dest_remove(&j->dest, e->d_name);
        }
        closedir(d);
    }
    return MP_OK;
}

/* --resume: the newest partial directory of DST, if it belongs to this very job, with every
 * journaled file that still verifies kept and everything else in it removed. *found is 0 when
 * there is none to resume. */
static mp_errcode restore_markers(const split_job *j, mp_err *err);

static mp_errcode resume_partial(split_job *j, const mp_journal *id, const char *dst, const char *const *srcs,
                                 size_t n_srcs, int *found, mp_err *err)
{
    char *text = NULL;
    size_t len = 0;
    mp_journal was = MP_JOURNAL_INIT;
    MP_FORWARD(mp_dest_resume(&j->dest, dst, srcs, n_srcs, j->o->force, found, &text, &len, &j->progress, err));
    if (!*found) return MP_OK;
    char journal_path[PATH_MAX], why[700];
    snprintf(journal_path, sizeof journal_path, "%s/%s", j->dest.partial, MP_JOURNAL_NAME);
    mp_errcode rc = mp_journal_parse(text, len, journal_path, &was, err);
    free(text);
    if (rc == MP_OK && !mp_journal_same_job(&was, id, why, sizeof why))
        rc = mp_errf_at(err, MP_E_INPUT, j->dest.partial, NULL, -1, "not resumed: it belongs to another job: %s; "
                        "nothing was removed (run without --resume, with --force, to start over)", why);
    if (rc == MP_OK) mp_report_note(&j->progress, "resuming into '%s'", j->dest.partial);
    for (size_t i = 0; rc == MP_OK && i < j->n_mods; i++) {
        char *name = file_name(j, &j->mods[i]);
        const mp_journal_file *rec = name ? mp_journal_find_file(&was, name) : NULL;
        if (!name) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        else if (rec) rc = resume_one(j, &j->mods[i], rec, err);
        free(name);
    }
    mp_journal_release(&was);
    if (rc == MP_OK) rc = clean_unverified(j, err);
    if (rc == MP_OK) rc = restore_markers(j, err); /* a kept file whose marker was not yet written */
    return rc;
}

/* ------------------------------------------------------------ writing */

/* NAME.safetensors.done, which the runtimes take as "this layer is complete". Called only once
 * the layer file is fsynced and renamed into place; the directory is fsynced first, so that not
 * even a power cut can leave a marker whose file is missing or partial. */
static mp_errcode write_marker(const split_job *j, const module *m, mp_err *err)
{
    if (!j->rt->done_markers) return MP_OK;
    char *name = NULL;
    mp_errcode rc = MP_OK;
    int fd = -1;
    if (asprintf(&name, "%s.safetensors" MP_RUNTIME_MARKER_SUFFIX, m->name) < 0) name = NULL;
    if (!name) return mp_errf(err, MP_E_NOMEM, "out of memory");
    /* The layer file's rename is on disk before its marker exists. */
    if (fsync(j->dest.fd) != 0) {
        rc = mp_errf_at(err, MP_E_IO, j->dest.partial, NULL, -1, "fsync failed: %s", strerror(errno));
        goto cleanup;
    }
    fd = openat(j->dest.fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 || fsync(fd) != 0)
        rc = mp_errf_at(err, MP_E_IO, j->dest.partial, name, -1, "cannot write the marker: %s", strerror(errno));
cleanup:
    if (fd >= 0) close(fd);
    free(name);
    return rc;
}

static mp_errcode write_module(split_job *j, module *m, mp_err *err)
{
    char *name = file_name(j, m), *tmp = NULL, *path = NULL;
    mp_tensor_spec *specs = calloc(m->n ? m->n : 1, sizeof *specs);
    mp_st_writer *w = NULL;
    mp_errcode rc = MP_OK;
    if (!name || !specs || asprintf(&tmp, "%s/%s.tmp", j->dest.partial, name) < 0 ||
        !(path = mp_dest_path(&j->dest, name))) {
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        goto done;
    }
    mp_dest_remove(&j->dest, tmp + strlen(j->dest.partial) + 1); /* a leftover of a killed run */
    specs_of(m, specs);
    char **meta = NULL;
    size_t n_meta = 0;
    rc = module_meta(j, m, &meta, &n_meta, err);
    if (rc == MP_OK && j->o->zstd_level)
        rc = mp_st_writer_open_zstd(&w, tmp, specs, m->n, (const char *const *)meta, n_meta, j->o->zstd_level,
                                    j->o->threads, err);
    else if (rc == MP_OK)
        rc = mp_st_writer_open(&w, tmp, specs, m->n, (const char *const *)meta, n_meta, err);
    free_meta(meta, n_meta);
    for (size_t next; rc == MP_OK && (next = mp_st_writer_next(w)) != SIZE_MAX;) {
        const mp_tensor *t = m->src[next];
        for (uint64_t at = 0, len; at < t->n_bytes && rc == MP_OK; at += len) {
            len = t->n_bytes - at < COPY_WINDOW ? t->n_bytes - at : COPY_WINDOW;
            if (j->o->interrupted && *j->o->interrupted) {
                rc = mp_errf(err, MP_E_INTERRUPTED, j->part ? "interrupted; run this part again to finish it"
                                                            : "interrupted; resume with --resume");
                break;
            }
            /* A plain source goes kernel to kernel (copy_file_range) while the hashes read a
             * mapping of the same bytes; a compressed one is decompressed a chunk at a time. */
            rc = mp_st_writer_copy_from(w, j->m, t, at, (size_t)len, j->chunk, CHUNK, err);
            mp_report_add(&j->progress, len);
        }
    }
    if (rc == MP_OK) {
        mp_st_written st;
        mp_st_writer_digest(w, m->xxh64, m->xxh128);
        rc = mp_st_writer_finish_stat(w, &st, err);
        w = NULL;
        m->disk_size = st.size;
        memcpy(m->disk_xxh128, st.xxh128, 16);
    }
    if (rc == MP_OK && renameat(j->dest.fd, tmp + strlen(j->dest.partial) + 1, j->dest.fd, name) != 0)
        rc = mp_errf_at(err, MP_E_IO, path, NULL, -1, "cannot rename into place: %s", strerror(errno));
    if (rc == MP_OK && !j->part) rc = journal_add(j, m, err); /* a part has its record instead */
    if (rc == MP_OK) rc = write_marker(j, m, err);
done:
    mp_st_writer_abort(w);
    free(specs);
    free(name);
    free(tmp);
    free(path);
    return rc;
}

/* What the manifest (and a part's record) says of the modules: one file each, with its
 * tensors. The arrays are the caller's (free_tables). */
typedef struct split_tables {
    char **fnames;      /* per module */
    mp_mtensor *mt;
    size_t n_mt;
    mp_mfile *mf;       /* per module, then room for 4 more (job.h) */
    uint64_t bytes;
} split_tables;

static void free_tables(const split_job *j, split_tables *t)
{
    for (size_t i = 0; t->fnames && i < j->n_mods; i++) free(t->fnames[i]);
    free(t->fnames);
    free(t->mt);
    free(t->mf);
}

static mp_errcode tables(const split_job *j, split_tables *tb, mp_err *err)
{
    size_t total = 0;
    for (size_t i = 0; i < j->n_mods; i++) total += j->mods[i].n;
    memset(tb, 0, sizeof *tb);
    tb->fnames = calloc(j->n_mods + 1, sizeof *tb->fnames);
    tb->mt = calloc(total + 1, sizeof *tb->mt);
    tb->mf = calloc(j->n_mods + 5, sizeof *tb->mf);
    mp_errcode rc = tb->fnames && tb->mt && tb->mf ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    for (size_t i = 0; rc == MP_OK && i < j->n_mods; i++) {
        const module *m = &j->mods[i];
        mp_mfile *f = &tb->mf[i];
        if (!(tb->fnames[i] = file_name(j, m))) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        snprintf(f->name, sizeof f->name, "%s", tb->fnames[i] ? tb->fnames[i] : "");
        f->size = m->disk_size;
        memcpy(f->xxh128, m->disk_xxh128, 16);
        f->compression = j->o->zstd_level ? "zstd" : NULL;
        f->raw_size = m->file_size;
        memcpy(f->raw_xxh128, m->xxh128, 16);
        for (size_t t = 0; rc == MP_OK && t < m->n; t++) {
            tb->bytes += m->src[t]->n_bytes;
            tb->mt[tb->n_mt++] = (mp_mtensor){m->out_names[t], tb->fnames[i], m->src[t]->dtype, m->src[t]->n_dims,
                                              m->src[t]->shape, m->xxh64[t], "copy"};
        }
    }
    return rc;
}

static mp_errcode write_index_and_manifest(split_job *j, const char *src, mp_err *err)
{
    split_tables tb;
    mp_buf layout = MP_BUF_INIT;
    mp_errcode rc = tables(j, &tb, err);
    const char *index_name = j->o->zstd_level ? "model.safetensors.zst.index.json"
                                              : "model.safetensors.index.json";
    /* A GGUF source's metadata (vocabulary, hyperparameters, chat template) travels as a GGUF
     * file without tensors, beside the layer files. */
    if (rc == MP_OK && j->g) {
        char *meta_path = mp_dest_path(&j->dest, GGUF_META);
        mp_gguf_copy_opts co = {.metadata_only = 1};
        rc = meta_path ? mp_gguf_copy(j->g, meta_path, &co, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
        free(meta_path);
    }
    mp_buf_puts(&layout, "{\"name\": \"per-layer split\", \"modules\": [");
    for (size_t i = 0; i < j->n_mods; i++) {
        if (i) mp_buf_puts(&layout, ", ");
        mp_buf_json_str(&layout, j->mods[i].name);
    }
    mp_buf_puts(&layout, "], \"tied\": ");
    if (j->alias_to) {
        mp_buf_puts(&layout, "{");
        mp_buf_json_str(&layout, j->alias_from);
        mp_buf_puts(&layout, ": ");
        mp_buf_json_str(&layout, j->alias_to);
        mp_buf_printf(&layout, "}, \"tied_materialized\": %s", j->o->materialize_tied ? "true" : "false");
    } else {
        mp_buf_puts(&layout, "{}, \"tied_materialized\": false");
    }
    mp_buf_printf(&layout, ", \"runtime\": \"%s\", \"done_markers\": %s", j->rt->name,
                  j->rt->done_markers ? "true" : "false");
    if (j->empty_head) mp_buf_puts(&layout, ", \"empty_modules\": [\"lm_head\"]");
    if (j->o->zstd_level)
        mp_buf_printf(&layout, ", \"compression\": {\"format\": \"zstd\", \"level\": %d}",
                      j->o->zstd_level);
    mp_buf_puts(&layout, "}");
    if (rc == MP_OK && layout.oom) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    static const char *const skip[] = {"modelprep.json", NULL};
    static const char *const extra[] = {GGUF_META, NULL};
    mp_job_tail t = {.src = src, .argc = j->argc, .argv = j->argv, .tensors = tb.mt, .n_tensors = tb.n_mt,
                     .index_name = index_name, .tensor_bytes = tb.bytes, .side_dir = mp_st_dir(j->m),
                     .src_is_dir = mp_is_dir(src), .side_skip = skip, .files = tb.mf, .n_files = j->n_mods,
                     .extra = extra, .src_hash = j->src_hash, .n_src_files = mp_st_n_files(j->m),
                     .src_files = j->part ? mp_part_sources(j->part) : NULL,
                     .layout_json = layout.data};
    j->src_hash = NULL;
    if (rc == MP_OK) rc = mp_job_finish(&j->dest, &t, err);
    else mp_src_hash_finish(t.src_hash, NULL, NULL);
    free_tables(j, &tb);
    mp_buf_release(&layout);
    return rc;
}

/* The markers of the files a resumed run keeps. A run killed between a file's rename and its
 * marker left the file without one: the file verified, so the marker follows it now, in the
 * same order as in a run that is not interrupted. */
static mp_errcode restore_markers(const split_job *j, mp_err *err)
{
    for (size_t i = 0; i < j->n_mods; i++)
        if (j->mods[i].done) MP_FORWARD(write_marker(j, &j->mods[i], err));
    return MP_OK;
}

/* ------------------------------------------------------------ GGUF: gguf-split sets */

/* The module stem of a tensor name, by the rule table ("extra" for none). */
static void stem_of(const char *name, char *stem, size_t cap)
{
    snprintf(stem, cap, "extra");
    for (size_t r = 0; r < sizeof rules / sizeof *rules; r++) {
        long num;
        const char *bad; /* refused earlier, by assign */
        size_t len = match_rule(rules[r].prefix, name, &num, &bad);
        if (!len || len - 1 >= cap) continue;
        memcpy(stem, name, len - 1);
        stem[len - 1] = '\0';
        return;
    }
}

/* Where `--gguf-split N` cuts the GGUF's tensors: only where one module ends and the next
 * begins, each cut at the boundary nearest an equal share of the bytes left, leaving room for
 * the cuts after it. cuts gets the first tensor of splits 2..N (N - 1 of them). */
static mp_errcode plan_gguf_cuts(const mp_gguf *g, size_t n_split, const char *src, uint64_t *cuts, mp_err *err)
{
    size_t n = mp_gguf_n_tensors(g);
    uint64_t *bound = calloc(n + 1, sizeof *bound), *before = calloc(n + 1, sizeof *before); /* bytes before tensor i */
    mp_errcode rc = bound && before ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    size_t nb = 0;
    char prev[160] = "", cur[160];
    for (size_t i = 0; rc == MP_OK && i < n; i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(g, i);
        before[i + 1] = before[i] + t->n_bytes;
        stem_of(t->name, cur, sizeof cur);
        if (i > 0 && strcmp(cur, prev) != 0) bound[nb++] = i;
        snprintf(prev, sizeof prev, "%s", cur);
    }
    if (rc == MP_OK && nb + 1 < n_split)
        rc = mp_errf(err, MP_E_USAGE, "--gguf-split %zu: '%s' has only %zu modules to cut between", n_split, src,
                     nb + 1);
    size_t from = 0;
    uint64_t placed = 0;
    for (size_t k = 1; rc == MP_OK && k < n_split; k++) {
        uint64_t target = placed + (before[n] - placed) / (n_split - k + 1);
        size_t best = from, last = nb - (n_split - 1 - k) - 1;
        for (size_t b = from; b <= last; b++) {
            uint64_t d = before[bound[b]] > target ? before[bound[b]] - target : target - before[bound[b]];
            uint64_t db = before[bound[best]] > target ? before[bound[best]] - target : target - before[bound[best]];
            if (d < db) best = b;
        }
        cuts[k - 1] = bound[best];
        placed = before[bound[best]];
        from = best + 1;
    }
    free(bound);
    free(before);
    return rc;
}

/* The name of the output set: the source's first file without ".gguf" and, for a source that is
 * itself a split set, without its "-0000i-of-0000N". */
static void gguf_split_stem(const mp_gguf *g, char *stem, size_t cap)
{
    const char *base = strrchr(mp_gguf_file_name(g, 0), '/');
    snprintf(stem, cap, "%s", base ? base + 1 : mp_gguf_file_name(g, 0));
    size_t sl = strlen(stem);
    if (sl > 5 && strcmp(stem + sl - 5, ".gguf") == 0) stem[sl -= 5] = '\0';
    if (sl > 15 && strncmp(stem + sl - 15, "-0000", 5) == 0 && strstr(stem + sl - 15, "-of-")) stem[sl - 15] = '\0';
}

/* The manifest's record of every tensor of the written set: its xxh64 read back, and its shape
 * as U8 [rows, row bytes]. mt and shapes (2 a tensor) are sized by the caller; buf holds CHUNK. */
static mp_errcode record_written(const mp_gguf *outg, mp_mtensor *mt, uint64_t *shapes, uint8_t *buf, mp_err *err)
{
    XXH64_state_t *h = XXH64_createState();
    if (!h) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = MP_OK;
    for (size_t i = 0; rc == MP_OK && i < mp_gguf_n_tensors(outg); i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(outg, i);
        XXH64_reset(h, 0);
        for (uint64_t at = 0; rc == MP_OK && at < t->n_bytes; at += CHUNK) {
            size_t len = t->n_bytes - at < CHUNK ? (size_t)(t->n_bytes - at) : CHUNK;
            rc = mp_gguf_read(outg, t, at, buf, len, err);
            if (rc == MP_OK) XXH64_update(h, buf, len);
        }
        uint64_t row = t->ne[0] / mp_gguf_type_block(t->type) * mp_gguf_type_size(t->type);
        shapes[2 * i] = row ? t->n_bytes / row : 0;
        shapes[2 * i + 1] = row;
        mt[i] = (mp_mtensor){t->name, mp_gguf_file_name(outg, t->file), MP_DTYPE_U8, 2, &shapes[2 * i],
                             XXH64_digest(h), "copy"};
    }
    XXH64_freeState(h);
    return rc;
}

/* `--gguf-split N`: the GGUF's tensors, in their order, as N files of a gguf-split set cut
 * between modules (plan_gguf_cuts); metadata verbatim in the first file, gguf-split's keys in
 * all (mp_gguf_copy). */
static mp_errcode write_gguf_split(split_job *j, const char *src, mp_split_result *res, mp_err *err)
{
    const mp_gguf *g = j->g;
    size_t n = mp_gguf_n_tensors(g), n_split = j->o->gguf_split, n_cuts = n_split - 1;
    uint64_t *cuts = calloc(n_split + 1, sizeof *cuts);
    mp_mtensor *mt = calloc(n + 1, sizeof *mt);
    uint64_t *shapes = calloc(2 * n + 2, sizeof *shapes);
    mp_mfile *mf = calloc(n_split + 2, sizeof *mf);
    mp_buf layout = MP_BUF_INIT;
    mp_gguf *outg = NULL;
    uint8_t *buf = malloc(CHUNK);
    char *dst_stem = NULL, *first_path = NULL, stem[256], first_name[300];
    mp_errcode rc = cuts && mt && shapes && mf && buf ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = plan_gguf_cuts(g, n_split, src, cuts, err);
    gguf_split_stem(g, stem, sizeof stem);
    if (rc == MP_OK && asprintf(&dst_stem, "%s/%s.gguf", j->dest.partial, stem) < 0)
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_gguf_copy_opts co = {.cut_before = cuts, .n_cuts = n_cuts};
    if (rc == MP_OK) rc = mp_gguf_copy(g, dst_stem, &co, err);
    /* The manifest: every file, and every tensor's xxh64 read back from the written set. */
    if (n_split > 1) mp_gguf_split_name(stem, 1, n_split, first_name, sizeof first_name);
    else snprintf(first_name, sizeof first_name, "%s.gguf", stem);
    if (rc == MP_OK) first_path = mp_dest_path(&j->dest, first_name);
    if (rc == MP_OK) rc = first_path ? mp_gguf_open(&outg, first_path, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
    size_t nf = 0;
    for (size_t i = 0; rc == MP_OK && i < mp_gguf_n_files(outg); i++)
        rc = mp_manifest_hash_file(&j->dest, mp_gguf_file_name(outg, i), &mf[nf++], err);
    if (rc == MP_OK) rc = record_written(outg, mt, shapes, buf, err);
    mp_buf_printf(&layout, "{\"name\": \"gguf-split\", \"splits\": %zu, \"first_tensor\": [0", n_split);
    for (size_t k = 0; cuts && k < n_cuts; k++) mp_buf_printf(&layout, ", %llu", (unsigned long long)cuts[k]);
    mp_buf_puts(&layout, "]}");
    if (rc == MP_OK && layout.oom) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    static const char *const skip[] = {"modelprep.json", NULL};
    mp_job_tail t = {.src = src, .argc = j->o->argc, .argv = j->o->argv, .tensors = mt,
                     .n_tensors = outg ? mp_gguf_n_tensors(outg) : 0, .side_dir = mp_gguf_dir(g),
                     .src_is_dir = mp_is_dir(src), .side_skip = skip, .files = mf, .n_files = nf,
                     .src_hash = j->src_hash, .n_src_files = mp_st_n_files(j->m), .layout_json = layout.data};
    j->src_hash = NULL;
    if (rc == MP_OK) rc = mp_job_finish(&j->dest, &t, err);
    else mp_src_hash_finish(t.src_hash, NULL, NULL);
    if (rc == MP_OK) {
        res->n_files = nf;
        res->n_tensors = mp_gguf_n_tensors(outg);
        for (size_t i = 0; i < nf; i++) res->bytes += mf[i].size;
        res->disk_bytes = res->layer_bytes = res->written = res->bytes;
    }
    mp_gguf_close(outg);
    free(first_path);
    free(dst_stem);
    free(cuts), free(mt), free(shapes), free(mf), free(buf);
    mp_buf_release(&layout);
    return rc;
}

/* The paths the job reads, for the overlap check (doc/safety.md §4): SRC as given and every
 * source file (resolved there: a Hugging Face snapshot's links lead to its blobs). Caller frees
 * the array, not the strings. */
static const char **source_paths(const split_job *j, const char *src, size_t *n)
{
    size_t nf = j->g ? mp_gguf_n_files(j->g) : mp_st_n_files(j->m);
    const char **v = calloc(nf + 1, sizeof *v);
    if (!v) return NULL;
    /* --into-checkpoint writes SRC/splitted_model, the one place inside SRC modelprep writes
     * (doc/split-runtimes.md): the source's files, not its folder, are then what DST must not
     * be, contain or lie in. */
    size_t k = 0;
    if (!j->o->into_checkpoint) v[k++] = src;
    for (size_t i = 0; i < nf; i++) v[k++] = (j->g ? mp_gguf_file(j->g, i) : mp_st_file(j->m, i))->path;
    *n = k;
    return v;
}

/* Resumes the partial directory of this job (--resume), or begins a new one. */
static mp_errcode open_dest(split_job *j, const char *src, const char *dst, uint64_t total, mp_err *err)
{
    const mp_split_opts *o = j->o;
    mp_journal id = MP_JOURNAL_INIT;
    mp_buf text = MP_BUF_INIT;
    size_t n_srcs = 0;
    const char **srcs = source_paths(j, src, &n_srcs);
    mp_errcode rc = srcs ? job_identity(j, &id, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
    int found = 0;
    if (rc == MP_OK && o->resume) {
        rc = resume_partial(j, &id, dst, srcs, n_srcs, &found, err);
        if (rc != MP_OK) mp_dest_keep(&j->dest);
    }
    if (rc == MP_OK && !found) {
        struct stat st;
        /* Anything else that stands at DST is described by mp_dest_begin, which offers --force
         * only where --force would be accepted (doc/safety.md §4). */
        if (o->resume && lstat(dst, &st) == 0 && !o->force && mp_dest_is_output(dst))
            rc = mp_errf_at(err, MP_E_USAGE, dst, NULL, -1,
                            "destination is complete and there is no partial split to resume; "
                            "use --force to redo it");
        /* Compressed files may, for incompressible data, exceed their input by zstd's bound. */
        uint64_t need = total;
        if (o->zstd_level) {
            need = 0;
            for (size_t i = 0; i < j->n_mods; i++) need += ZSTD_compressBound(j->mods[i].file_size);
        }
        if (rc == MP_OK) rc = check_space(dst, need, err);
        mp_journal_format_id(&id, &text);
        if (rc == MP_OK && text.oom) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        if (rc == MP_OK) rc = mp_dest_begin(&j->dest, dst, srcs, n_srcs, o->force, text.data, text.len, &j->progress, err);
    }
    mp_buf_release(&text);
    mp_journal_release(&id);
    free(srcs);
    return rc;
}

/* The layout: the runtime asked for, if it can read this split; else RabbitLLM's, which AirLLM
 * loads too (doc/split-runtimes.md), unless the split is of a kind neither reads. */
static mp_errcode choose_runtime(split_job *j, const char *src, mp_err *err)
{
    const mp_split_opts *o = j->o;
    j->runtime = o->runtime;
    if (!o->runtime_given) j->runtime = j->g || o->zstd_level ? MP_RUNTIME_PLAIN : MP_RUNTIME_RABBITLLM;
    const mp_runtime_traits *rt = j->rt = mp_runtime_get(j->runtime);
    if (j->g && !rt->reads_gguf_source && o->runtime != MP_RUNTIME_PLAIN)
        return mp_errf_at(err, MP_E_USAGE, src, NULL, -1,
                          "--for %s: a split of a GGUF source holds raw ggml blocks, which %s does not "
                          "load (it reads safetensors checkpoints); convert it first (--to f16) or split "
                          "with --for plain",
                          rt->name, rt->title);
    if (o->zstd_level && !rt->reads_zstd && o->runtime != MP_RUNTIME_PLAIN)
        return mp_errf(err, MP_E_USAGE,
                       "--for %s with --compress zstd: %s reads plain .safetensors layer files only, "
                       "not .safetensors.zst; drop --compress, or use --for plain",
                       rt->name, rt->title);
    if (o->into_checkpoint && !rt->done_markers)
        return mp_errf(err, MP_E_USAGE,
                       "--into-checkpoint puts the split where AirLLM and RabbitLLM look for it, but a "
                       "%s split is one they would split again: use --for airllm or --for rabbitllm%s",
                       j->g ? "GGUF-source" : o->zstd_level ? "compressed" : "plain",
                       j->g || o->zstd_level ? " with a plain safetensors split" : "");
    return MP_OK;
}

/* ------------------------------------------------------------ parts (partition.h) */

/* This part's share of DST, or the merge: the plan gives each module's file to a part by its
 * bytes. */
static mp_errcode open_part(split_job *j, const char *src, const char *dst, mp_split_result *res, mp_err *err)
{
    j->part_names = calloc(j->n_mods + 1, sizeof *j->part_names);
    j->part_bytes = calloc(j->n_mods + 1, sizeof *j->part_bytes);
    if (!j->part_names || !j->part_bytes) return mp_errf(err, MP_E_NOMEM, "out of memory");
    for (size_t i = 0; i < j->n_mods; i++) {
        if (!(j->part_names[i] = file_name(j, &j->mods[i]))) return mp_errf(err, MP_E_NOMEM, "out of memory");
        j->part_bytes[i] = j->mods[i].file_size;
    }
    MP_FORWARD(mp_part_open(&j->part, &j->dest, &j->o->part, dst, src, "split", j->m,
                            (const char *const *)j->part_names, j->part_bytes, j->n_mods, err));
    for (size_t i = 0; i < j->n_mods; i++) res->part_files += (size_t)mp_part_owns(j->part, i);
    snprintf(res->job_id, sizeof res->job_id, "%s", mp_part_id(j->part));
    res->part_count = mp_part_count(j->part);
    res->part_done = mp_part_done(j->part);
    return MP_OK;
}

/* The modules the records hold and this run did not write. */
static mp_errcode take_records(split_job *j, mp_err *err)
{
    for (size_t i = 0; i < j->n_mods; i++) {
        module *m = &j->mods[i];
        mp_mfile f;
        if (mp_part_owns(j->part, i)) continue;
        MP_FORWARD(mp_part_file(j->part, i, &f, err));
        m->disk_size = f.size;
        memcpy(m->disk_xxh128, f.xxh128, 16);
        m->file_size = f.raw_size;
        memcpy(m->xxh128, f.raw_xxh128, 16);
        for (size_t t = 0; t < m->n; t++) MP_FORWARD(mp_part_tensor_xxh64(j->part, i, m->out_names[t], &m->xxh64[t], err));
    }
    return MP_OK;
}

/* This part's record, then, when this run merges, the tail from every record and the commit. */
static mp_errcode part_tail(split_job *j, const char *src, int *merged, mp_err *err)
{
    split_tables tb;
    mp_errcode rc = tables(j, &tb, err);
    if (rc == MP_OK) rc = mp_part_write_record(j->part, &j->dest, tb.mf, tb.mt, tb.n_mt, j->argc, j->argv, err);
    free_tables(j, &tb);
    if (rc == MP_OK) rc = mp_part_try_merge(j->part, &j->dest, merged, err);
    if (rc != MP_OK || !*merged) return rc;
    j->argv = mp_part_argv(j->part, &j->argc); /* the same manifest whichever task merges */
    MP_FORWARD(take_records(j, err));
    mp_part_sweep(j->part, &j->dest);
    MP_FORWARD(write_index_and_manifest(j, src, err));
    mp_part_unmark(j->part, &j->dest);
    return mp_dest_commit(&j->dest, err);
}

/* The end of a run that failed or was a part: a part's directory is shared and always kept;
 * a whole run's is removed, or kept for --resume when interrupted or resuming. */
static void settle_dest(split_job *j, mp_errcode rc, int merged)
{
    if (j->part) {
        if (rc != MP_OK || !merged) mp_dest_keep(&j->dest);
    } else if (rc != MP_OK && rc != MP_E_INTERRUPTED && j->dest.partial && !j->o->resume) {
        mp_dest_abort(&j->dest);
    } else if (rc != MP_OK) {
        /* Keep the partial directory for --resume; say where it is. */
        if (j->dest.partial) mp_report_note(&j->progress, "partial split kept in '%s' for --resume", j->dest.partial);
        mp_dest_keep(&j->dest);
    }
}

/* Opens the source, chooses the layout, assigns every tensor, sizes the files and opens the
 * destination (a part's share of it, partition.h); *total gets the bytes of the layer files. */
static mp_errcode open_and_plan(split_job *j, const char *src, const char *dst, uint64_t *total,
                                mp_split_result *res, mp_err *err)
{
    const mp_split_opts *o = j->o;
    mp_hf_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (mp_gguf_probe(src)) {
        MP_FORWARD(mp_gguf_open(&j->g, src, err));
        MP_FORWARD(mp_st_open_gguf_view(&j->m, j->g, err));
    } else {
        MP_FORWARD(mp_st_open(&j->m, src, err));
        MP_FORWARD(mp_refuse_one_shard(src, j->m, err));
        MP_FORWARD(mp_hf_config_load(&cfg, mp_st_dir(j->m), err));
        MP_FORWARD(mp_st_check_name_numbers(j->m, &cfg, err));
    }
    MP_FORWARD(choose_runtime(j, src, err));
    MP_FORWARD(assign(j, &cfg, err));
    MP_FORWARD(plan_sizes(j, total, err));
    j->chunk = malloc(CHUNK);
    if (!j->chunk) return mp_errf(err, MP_E_NOMEM, "out of memory");
    if (o->gguf_split && !j->g)
        return mp_errf(err, MP_E_USAGE, "--gguf-split needs a GGUF source; '%s' is safetensors", src);
    if (o->gguf_split && (o->resume || o->zstd_level))
        return mp_errf(err, MP_E_USAGE, "--gguf-split writes a GGUF set: --resume and --compress do not apply");
    if (o->part.count || o->part.merge) {
        if (j->g || o->resume || o->into_checkpoint)
            return mp_errf(err, MP_E_USAGE, "--part takes a safetensors source and a DST: %s does not apply",
                           j->g ? "a GGUF source"
                           : o->resume ? "--resume (running a part again resumes it)" : "--into-checkpoint");
        return open_part(j, src, dst, res, err);
    }
    MP_FORWARD(open_dest(j, src, dst, *total, err));
    return mp_src_hash_start(&j->src_hash, j->m, err);
}

/* Every layer file not already done by an interrupted run (and, for a part, its own), under one
 * progress phase. */
static mp_errcode write_modules(split_job *j, mp_split_result *res, mp_err *err)
{
    uint64_t pending = 0;
    for (size_t i = 0; i < j->n_mods; i++)
        if (!j->mods[i].done && (!j->part || mp_part_owns(j->part, i))) pending += j->mods[i].file_size;
    mp_report_start(&j->progress, "split", pending);
    double w0 = mp_now();
    mp_errcode rc = MP_OK;
    for (size_t i = 0; rc == MP_OK && i < j->n_mods; i++) {
        if (j->mods[i].done) {
            res->n_resumed++;
            continue;
        }
        if (j->part && !mp_part_owns(j->part, i)) continue;
        rc = write_module(j, &j->mods[i], err);
        if (rc == MP_OK) res->written += j->mods[i].file_size;
    }
    res->write_seconds = mp_now() - w0;
    mp_report_end(&j->progress);
    return rc;
}

/* The index and manifest, then the commit (a part: its record, and the merge when it is the
 * last); then settle_dest() on the partial directory. */
static mp_errcode finish_layers(split_job *j, const char *src, mp_errcode rc, int *merged, mp_err *err)
{
    if (rc == MP_OK && j->part) rc = part_tail(j, src, merged, err);
    if (rc == MP_OK && !j->part) rc = write_index_and_manifest(j, src, err);
    if (rc == MP_OK && !j->part) rc = mp_dest_commit(&j->dest, err);
    settle_dest(j, rc, *merged);
    return rc;
}

static void fill_result(const split_job *j, uint64_t total, double seconds, mp_split_result *res)
{
    res->n_files = j->n_mods;
    for (size_t i = 0; i < j->n_mods; i++) {
        res->n_tensors += j->mods[i].n;
        if (strcmp(j->mods[i].name, "extra") == 0) res->n_extra = j->mods[i].n;
        res->disk_bytes += j->mods[i].disk_size;
        res->layer_bytes += j->mods[i].file_size;
    }
    res->bytes = total;
    res->tied = j->alias_to != NULL;
    res->runtime = j->runtime;
    res->empty_head = j->empty_head;
    res->gguf_source = j->g != NULL;
    res->seconds = seconds;
}

static void split_job_release(split_job *j)
{
    for (size_t i = 0; i < j->n_mods; i++) {
        free(j->mods[i].src);
        free(j->mods[i].out_names);
        free(j->mods[i].xxh64);
    }
    free(j->mods);
    free(j->chunk);
    mp_part_close(j->part);
    for (size_t i = 0; j->part_names && i < j->n_mods; i++) free(j->part_names[i]);
    free(j->part_names);
    free(j->part_bytes);
    mp_st_close(j->m);
    mp_gguf_close(j->g);
}

mp_errcode mp_split_run(const char *src, const char *dst, const mp_split_opts *o,
                        mp_split_result *res, mp_err *err)
{
    split_job j;
    memset(&j, 0, sizeof j);
    memset(res, 0, sizeof *res);
    j.dest = (mp_dest)MP_DEST_INIT;
    j.o = o;
    j.argc = o->argc;
    j.argv = o->argv;
    j.progress = (mp_reporter){.fn = o->progress, .user = o->progress_user, .quiet = o->quiet};
    double t0 = mp_now();
    uint64_t total = 0;
    mp_errcode rc = open_and_plan(&j, src, dst, &total, res, err);
    if (rc == MP_OK && o->gguf_split) {
        double g0 = mp_now();
        rc = write_gguf_split(&j, src, res, err);
        res->write_seconds = mp_now() - g0;
        if (rc == MP_OK) rc = mp_dest_commit(&j.dest, err);
        else mp_dest_abort(&j.dest);
        if (rc == MP_OK) res->seconds = mp_now() - t0;
    } else {
        if (rc == MP_OK) rc = write_modules(&j, res, err);
        rc = finish_layers(&j, src, rc, &res->merged, err);
        if (rc == MP_OK) fill_result(&j, total, mp_now() - t0, res);
    }
    mp_src_hash_finish(j.src_hash, NULL, NULL);
    res->tied_name = j.g ? "output.weight" : "lm_head.weight";
    split_job_release(&j);
    return rc;
}
