/*
 * api.c - include/modelprep.h over the stages: a checkpoint handle on formats/ (safetensors with
 * its quantization scheme, or GGUF), dequantization through verify/'s CPU reference or ggml's
 * block decoders, and the jobs of convert/ and verify/ behind options structs that name formats
 * by string. The internal option structs stay free to change; this file absorbs it.
 *
 * Arguments a caller gets wrong (an index or row range out of bounds, an unknown format name) are
 * MP_E_USAGE here, never an assert inside the stages below.
 */
#include "pipeline.h"
#include "split.h"
#include "../verify/verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mp_model {
    mp_st_model *st;      /* safetensors checkpoint, or NULL */
    mp_qmodel *qm;
    mp_gguf *g;           /* GGUF checkpoint, or NULL */
    size_t *glin;         /* GGUF: the tensor index of each linear */
    size_t n_glin;
};

static int gguf_is_linear(const mp_gguf_tensor *t)
{
    return t->n_dims == 2 && mp_gguf_type_block(t->type) > 1 && mp_gguf_type_dequantizable(t->type);
}

mp_errcode mp_model_open(mp_model **out, const char *path, mp_err *err)
{
    *out = NULL;
    mp_model *m = calloc(1, sizeof *m);
    if (!m) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc;
    if (mp_gguf_probe(path)) {
        rc = mp_gguf_open(&m->g, path, err);
        size_t n = rc == MP_OK ? mp_gguf_n_tensors(m->g) : 0;
        if (rc == MP_OK && !(m->glin = malloc((n ? n : 1) * sizeof *m->glin)))
            rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        for (size_t i = 0; rc == MP_OK && i < n; i++)
            if (gguf_is_linear(mp_gguf_tensor_at(m->g, i))) m->glin[m->n_glin++] = i;
    } else {
        rc = mp_st_open(&m->st, path, err);
        if (rc == MP_OK) rc = mp_qmodel_open(&m->qm, m->st, err);
    }
    if (rc != MP_OK) {
        mp_model_close(m);
        return rc;
    }
    *out = m;
    return MP_OK;
}

void mp_model_close(mp_model *m)
{
    if (!m) return;
    mp_qmodel_free(m->qm);
    mp_st_close(m->st);
    mp_gguf_close(m->g);
    free(m->glin);
    free(m);
}

size_t mp_model_n_tensors(const mp_model *m)
{
    return m->g ? mp_gguf_n_tensors(m->g) : mp_st_n_tensors(m->st);
}

mp_errcode mp_model_tensor(const mp_model *m, size_t i, mp_tensor_info *out, mp_err *err)
{
    memset(out, 0, sizeof *out);
    if (i >= mp_model_n_tensors(m))
        return mp_errf(err, MP_E_USAGE, "tensor %zu out of range (%zu tensors)", i, mp_model_n_tensors(m));
    if (m->g) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(m->g, i);
        out->name = t->name;
        out->dtype = mp_gguf_type_name(t->type);
        out->n_dims = t->n_dims;
        for (uint32_t d = 0; d < t->n_dims; d++) out->shape[d] = t->ne[t->n_dims - 1 - d];
        out->n_bytes = t->n_bytes;
        out->file = mp_gguf_file_name(m->g, t->file);
    } else {
        const mp_tensor *t = mp_st_tensor(m->st, i);
        out->name = t->name;
        out->dtype = mp_dtype_name(t->dtype);
        out->n_dims = t->n_dims;
        memcpy(out->shape, t->shape, sizeof t->shape);
        out->n_bytes = t->n_bytes;
        out->file = mp_st_file_name(m->st, t->file);
    }
    return MP_OK;
}

mp_errcode mp_model_read(const mp_model *m, size_t i, uint64_t offset, void *buf, size_t len,
                         mp_err *err)
{
    mp_tensor_info ti;
    MP_FORWARD(mp_model_tensor(m, i, &ti, err));
    if (offset > ti.n_bytes || len > ti.n_bytes - offset)
        return mp_errf_at(err, MP_E_USAGE, NULL, ti.name, -1, "bytes [%llu, +%zu) beyond the tensor's %llu",
                          (unsigned long long)offset, len, (unsigned long long)ti.n_bytes);
    if (m->g) return mp_gguf_read(m->g, mp_gguf_tensor_at(m->g, i), offset, buf, len, err);
    return mp_st_read(m->st, mp_st_tensor(m->st, i), offset, buf, len, err);
}

size_t mp_model_n_linears(const mp_model *m)
{
    return m->g ? m->n_glin : mp_qmodel_n_linears(m->qm);
}

mp_errcode mp_model_linear(const mp_model *m, size_t i, mp_linear_info *out, mp_err *err)
{
    memset(out, 0, sizeof *out);
    if (i >= mp_model_n_linears(m))
        return mp_errf(err, MP_E_USAGE, "linear %zu out of range (%zu linears)", i, mp_model_n_linears(m));
    if (m->g) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(m->g, m->glin[i]);
        *out = (mp_linear_info){.name = t->name, .method = "gguf", .format = mp_gguf_type_name(t->type),
                                .n_rows = t->ne[1], .k_cols = t->ne[0],
                                .group_size = mp_gguf_type_block(t->type), .symmetric = -1};
    } else {
        const mp_qlinear *q = mp_qmodel_linear(m->qm, i);
        *out = (mp_linear_info){.name = q->prefix, .method = mp_qmethod_name(q->method), .format = q->format,
                                .bits = q->bits, .n_rows = q->n_rows, .k_cols = q->k_cols,
                                .group_size = q->group_size, .symmetric = q->sym,
                                .act_order = q->act_order};
    }
    return MP_OK;
}

static mp_errcode gguf_rows(const mp_model *m, const mp_gguf_tensor *t, uint64_t row0, uint64_t row1,
                            float *out, mp_err *err)
{
    uint64_t row_bytes = t->ne[0] / mp_gguf_type_block(t->type) * mp_gguf_type_size(t->type);
    enum { ROWS_MAX_BYTES = 1 << 22 };
    uint64_t step = row_bytes && row_bytes < ROWS_MAX_BYTES ? ROWS_MAX_BYTES / row_bytes : 1;
    void *buf = malloc(row_bytes ? (size_t)(step * row_bytes) : 1);
    if (!buf) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = MP_OK;
    for (uint64_t r = row0; r < row1 && rc == MP_OK; r += step) {
        uint64_t n = row1 - r < step ? row1 - r : step;
        rc = mp_gguf_read(m->g, t, r * row_bytes, buf, (size_t)(n * row_bytes), err);
        if (rc == MP_OK) rc = mp_gguf_dequantize(t->type, buf, out + (r - row0) * t->ne[0], n * t->ne[0], err);
    }
    free(buf);
    return rc;
}

mp_errcode mp_model_dequantize_rows(const mp_model *m, size_t i, uint64_t row0, uint64_t row1,
                                    float *out, mp_err *err)
{
    mp_linear_info li;
    MP_FORWARD(mp_model_linear(m, i, &li, err));
    if (row0 > row1 || row1 > li.n_rows)
        return mp_errf_at(err, MP_E_USAGE, NULL, li.name, -1, "rows [%llu, %llu) outside [0, %llu)",
                          (unsigned long long)row0, (unsigned long long)row1, (unsigned long long)li.n_rows);
    if (m->g) return gguf_rows(m, mp_gguf_tensor_at(m->g, m->glin[i]), row0, row1, out, err);
    const mp_qlinear *q = mp_qmodel_linear(m->qm, i);
    if (q->pack == MP_QPACK_N8_INTERLEAVED && row0 % 8 != 0)
        return mp_errf_at(err, MP_E_USAGE, NULL, li.name, -1, "AWQ GEMM rows start at a multiple of 8, not %llu",
                          (unsigned long long)row0);
    return mp_dequant_ref(m->st, q, row0, row1, out, err);
}

/* ---------------------------------------------------------------- jobs */

static mp_errcode convert_opts(const mp_convert_options *o, mp_convert_opts *c, mp_err *err)
{
    static const struct {
        const char *name;
        mp_target target;
    } dense[] = {{"f32", MP_TARGET_F32}, {"f16", MP_TARGET_F16}, {"bf16", MP_TARGET_BF16}};
    memset(c, 0, sizeof *c);
    if (!o->to) return mp_errf(err, MP_E_USAGE, "no target format given");
    size_t t = 0;
    while (t < sizeof dense / sizeof *dense && strcmp(dense[t].name, o->to) != 0) t++;
    if (t < sizeof dense / sizeof *dense) c->target = dense[t].target;
    else if ((c->pack.target = mp_scheme_find(o->to)) && (c->pack.target->roles & MP_SCHEME_TARGET))
        c->packed = 1;
    else {
        char names[192];
        mp_scheme_names(MP_SCHEME_TARGET, names, sizeof names);
        return mp_errf(err, MP_E_USAGE, "unknown format '%s' (f32, f16, bf16, %s)", o->to, names);
    }
    int cutlass = c->packed && c->pack.target->signed_int4;
    if ((o->int4_s4 || o->stack_experts) && !cutlass)
        return mp_errf(err, MP_E_USAGE, "%s applies to cutlass-int4 only", o->int4_s4 ? "int4_s4" : "stack_experts");
    c->pack.s4 = o->int4_s4;
    c->stack_experts = o->stack_experts;
    if (o->scale_dtype) {
        if (!c->packed) return mp_errf(err, MP_E_USAGE, "scale_dtype applies to packed formats only");
        c->pack.scale_dtype_given = 1;
        if (strcmp(o->scale_dtype, "f16") == 0) c->pack.scale_dtype = MP_DTYPE_F16;
        else if (strcmp(o->scale_dtype, "bf16") == 0) c->pack.scale_dtype = MP_DTYPE_BF16;
        else if (strcmp(o->scale_dtype, "f32") == 0) c->pack.scale_dtype = MP_DTYPE_F32;
        else return mp_errf(err, MP_E_USAGE, "scale_dtype wants f16, bf16 or f32, not '%s'", o->scale_dtype);
    }
    if (o->threads < 0) return mp_errf(err, MP_E_USAGE, "threads must not be negative, not %d", o->threads);
    c->keep_dense_dtype = o->keep_dense_dtype;
    c->max_shard = o->max_shard_size;
    c->threads = o->threads;
    c->force = o->force;
    c->progress = o->progress;
    c->progress_user = o->progress_user;
    c->interrupted = o->interrupted;
    return MP_OK;
}

/* The public part options into the engine's; `options` (the job's identity, kept by the caller
 * for the run) names what changes the output. */
static mp_errcode part_spec(const mp_part_options *in, int force, const char *options, mp_part_spec *out,
                            mp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!in->count && !in->merge) return in->job_id ? mp_errf(err, MP_E_USAGE, "job_id applies to parts only") : MP_OK;
    if (!in->merge && (in->count > MP_PART_MAX || in->index >= in->count))
        return mp_errf(err, MP_E_USAGE, "part %u of %u: want 0 <= index < count <= %d", in->index, in->count, MP_PART_MAX);
    if (in->job_id && !mp_part_id_valid(in->job_id))
        return mp_errf(err, MP_E_USAGE, "job_id wants 1 to %d of A-Z a-z 0-9 . _ -, not first '.' or '-', not '%s'",
                       MP_JOB_ID_MAX, in->job_id);
    if (force) return mp_errf(err, MP_E_USAGE, "force does not apply to parts: remove DST first");
    *out = (mp_part_spec){in->merge ? 0 : in->index, in->merge ? 0 : in->count, in->merge, in->job_id, options};
    return MP_OK;
}

mp_errcode mp_convert(const char *src, const char *dst, const mp_convert_options *o,
                      mp_job_summary *summary, mp_err *err)
{
    mp_convert_opts c;
    mp_convert_result r;
    char identity[320];
    if (summary) memset(summary, 0, sizeof *summary);
    MP_FORWARD(convert_opts(o, &c, err));
    snprintf(identity, sizeof identity, "to=%s\nint4_s4=%d\nstack_experts=%d\nscale_dtype=%s\nkeep_dense_dtype=%d\n"
             "max_shard_size=%llu\n", o->to, o->int4_s4, o->stack_experts, o->scale_dtype ? o->scale_dtype : "",
             o->keep_dense_dtype, (unsigned long long)o->max_shard_size);
    MP_FORWARD(part_spec(&o->part, o->force, identity, &c.part, err));
    int gguf = mp_gguf_probe(src);
    if (gguf && (c.part.count || c.part.merge))
        return mp_errf(err, MP_E_USAGE, "parts take a safetensors source; a GGUF source converts in one process");
    if (gguf && c.packed)
        return mp_errf(err, MP_E_USAGE, "a GGUF source converts to f32, f16 or bf16 only, not '%s'", o->to);
    MP_FORWARD(gguf ? mp_gguf_convert_run(src, dst, &c, &r, err) : mp_convert_run(src, dst, &c, &r, err));
    if (summary) *summary = (mp_job_summary){r.n_files, r.n_tensors, r.bytes, r.seconds};
    return MP_OK;
}

mp_errcode mp_split(const char *src, const char *dst, const mp_split_options *o,
                    mp_job_summary *summary, mp_err *err)
{
    if (summary) memset(summary, 0, sizeof *summary);
    if (o->zstd_level < 0 || o->zstd_level > 19)
        return mp_errf(err, MP_E_USAGE, "zstd_level wants 0 to 19, not %d", o->zstd_level);
    if (o->threads < 0) return mp_errf(err, MP_E_USAGE, "threads must not be negative, not %d", o->threads);
    mp_split_opts s = {.materialize_tied = o->materialize_tied, .resume = o->resume, .force = o->force,
                       .zstd_level = o->zstd_level, .threads = o->threads, .gguf_split = o->gguf_split,
                       .interrupted = o->interrupted, .progress = o->progress,
                       .progress_user = o->progress_user};
    char identity[96];
    snprintf(identity, sizeof identity, "zstd_level=%d\nmaterialize_tied=%d\ngguf_split=%u\n", o->zstd_level,
             o->materialize_tied, o->gguf_split);
    MP_FORWARD(part_spec(&o->part, o->force, identity, &s.part, err));
    mp_split_result r;
    MP_FORWARD(mp_split_run(src, dst, &s, &r, err));
    if (summary) *summary = (mp_job_summary){r.n_files, r.n_tensors, r.bytes, r.seconds};
    return MP_OK;
}

mp_errcode mp_verify(const char *path, const mp_verify_options *o, mp_verify_summary *summary,
                     mp_err *err)
{
    if (summary) memset(summary, 0, sizeof *summary);
    mp_verify_opts v = {.path = path, .against = o->against, .device = o->device ? o->device : "cpu",
                        .rows = o->rows, .m = 8, .seed = 0x6d6f64656c707265ull, .progress = o->progress,
                        .progress_user = o->progress_user};
    mp_verify_report r;
    memset(&r, 0, sizeof r);
    mp_errcode rc = mp_verify_run(&v, &r, err);
    if (rc == MP_OK && summary) {
        *summary = (mp_verify_summary){.n_fail = r.n_fail, .n_warn = r.n_warn, .n_tensors = r.n_tensors_checked,
                                       .n_numeric = r.n_numeric, .manifest = r.manifest};
        snprintf(summary->device, sizeof summary->device, "%s %s", mp_backend_name(r.device.backend),
                 r.device.name);
    }
    if (rc == MP_OK && r.n_fail) {
        const char *first = NULL;
        for (size_t i = 0; !first && i < r.n_findings; i++)
            if (r.findings[i].status == MP_VS_FAIL) first = r.findings[i].text;
        for (size_t i = 0; !first && i < r.n_numeric; i++)
            if (r.numeric[i].status == MP_VS_FAIL) first = r.numeric[i].name;
        rc = mp_errf_at(err, MP_E_MISMATCH, path, NULL, -1, "%zu check%s failed; the first: %.400s", r.n_fail,
                        r.n_fail == 1 ? "" : "s", first ? first : "(unnamed)");
    }
    mp_verify_report_free(&r);
    return rc;
}
