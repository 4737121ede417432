/*
 * gguf_check.c - `modelprep verify` of a GGUF file or split set.
 *
 *   - structure: sampled rows of every tensor are dequantized on the CPU and must be finite;
 *   - numerics: every Q4_0, Q4_1 and Q8_0 matrix runs kernels/gguf.cl on the device against
 *     formats/gguf_dequant.c (ggml's dequantize_row_*), bit for bit, plus y = x w^T within the
 *     rounding bounds (mp_numeric_compare). Tensors of types no kernel reads are counted by type
 *     in one warning, never passed over in silence.
 * GGUF has no manifest: integrity is `modelprep hash`'s business, and the report says so.
 */
#include "check.h"
#include "../formats/formats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct gref {
    const mp_gguf *g;
    const mp_gguf_tensor *t;
    uint64_t row_bytes, k;
    uint8_t *buf;
} gref;

static mp_errcode gref_rows(void *ctx, const uint32_t *rows, uint32_t nrows, float *out, mp_err *err)
{
    const gref *q = ctx;
    for (uint32_t i = 0; i < nrows; i++) {
        MP_FORWARD(mp_gguf_read(q->g, q->t, rows[i] * q->row_bytes, q->buf, (size_t)q->row_bytes, err));
        MP_FORWARD(mp_gguf_dequantize(q->t->type, q->buf, out + (uint64_t)i * q->k, q->k, err));
    }
    return MP_OK;
}

static int has_kernel(uint32_t type)
{
    return type == MP_GGUF_Q4_0 || type == MP_GGUF_Q4_1 || type == MP_GGUF_Q8_0;
}

/* Sampled rows dequantized on the CPU: NaN or Inf anywhere fails. */
static mp_errcode finite_rows(const mp_gguf *g, const mp_gguf_tensor *t, const mp_verify_opts *o, gref *q,
                              mp_verify_report *r, mp_err *err)
{
    uint64_t n = t->n_elems / q->k;
    uint32_t *rows = malloc(((size_t)mp_verify_sample_count(n, o->rows) + 1) * sizeof *rows);
    float *vals = malloc((size_t)q->k * sizeof *vals);
    mp_errcode rc = rows && vals ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    uint32_t nr = rc == MP_OK ? mp_verify_sample_rows(n, o->rows, rows) : 0;
    for (uint32_t i = 0; i < nr && rc == MP_OK; i++) {
        rc = gref_rows(q, rows + i, 1, vals, err);
        uint64_t k = 0;
        while (rc == MP_OK && k < q->k && isfinite(vals[k])) k++;
        if (rc == MP_OK && k < q->k) {
            rc = mp_vfind(r, MP_VS_FAIL, "structure", "%s: tensor '%s' (%s): row %u, column %llu is %g",
                          mp_gguf_file_name(g, t->file), t->name, mp_gguf_type_name(t->type), rows[i],
                          (unsigned long long)k, (double)vals[k]) == MP_OK
                     ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
            break;
        }
    }
    free(rows);
    free(vals);
    if (rc != MP_OK && !err->tensor[0]) snprintf(err->tensor, sizeof err->tensor, "%s", t->name);
    return rc;
}

static mp_errcode on_device(const mp_gguf *g, const mp_gguf_tensor *t, mp_numerics *nu, const mp_verify_opts *o,
                            gref *q, mp_verify_report *r, mp_err *err)
{
    uint64_t n = t->n_elems / q->k;
    if (n > INT32_MAX || q->k > INT32_MAX || q->row_bytes > UINT32_MAX)
        return mp_errf_at(err, MP_E_UNSUPPORTED, mp_gguf_file_name(g, t->file), t->name, -1,
                          "dimensions beyond 2^31: the kernels index with 32 bits");
    mp_vtensor *vt = mp_vtensor_add(r, t->name, mp_gguf_type_name(t->type), n, q->k, o->m);
    if (!vt) return mp_errf(err, MP_E_NOMEM, "out of memory");
    /* In place in the file's mapping (a sampled check reads the pages of its rows, not the
     * tensor), else read whole. */
    const uint8_t *map = mp_gguf_file_map(g, t->file), *at = NULL;
    uint8_t *bytes = NULL;
    mp_errcode rc = MP_OK;
    if (map && (uintptr_t)(map + t->offset) % 4 == 0) {
        at = map + t->offset;
    } else if (!(bytes = malloc(t->n_bytes ? (size_t)t->n_bytes : 1))) {
        return mp_errf(err, MP_E_NOMEM, "out of memory reading '%s'", t->name);
    } else {
        rc = mp_gguf_read(g, t, 0, bytes, (size_t)t->n_bytes, err);
        at = bytes;
    }
    if (rc == MP_OK) {
        static const uint16_t no_scales[2];
        mp_kernel_data kd = {.family = mp_kfamily_find("gguf"), .qw = at, .qw_bytes = (size_t)t->n_bytes,
                             .sc = no_scales, .sc_bytes = sizeof no_scales};
        kd.P[MP_P_N] = (uint32_t)n;
        kd.P[MP_P_K] = (uint32_t)q->k;
        kd.P[MP_P_BITS] = t->type;
        kd.P[MP_P_QSTRIDE] = (uint32_t)q->row_bytes;
        kd.P[MP_P_GSIZE] = 32;
        rc = mp_numeric_compare(nu, &kd, n, q->k, t->name, gref_rows, q, 0, vt, r, err);
    }
    free(bytes);
    return rc;
}

/* A gguf-split set written by `modelprep split --gguf-split` has a modelprep.json: every file
 * of the set must be listed with its size and xxh3-128. */
static mp_errcode gguf_manifest(const mp_gguf *g, const char *mpath, mp_verify_report *r, mp_err *err)
{
    cJSON *man = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    MP_FORWARD(mp_json_load_file(mpath, 1u << 28, "modelprep.json", &man, err));
    r->manifest = 1;
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(man, "files"), *fe;
    mp_errcode rc = cJSON_IsArray(files) ? MP_OK
                                          : mp_errf_at(err, MP_E_INPUT, "modelprep.json", NULL, -1, "'files' must be an array");
    for (size_t i = 0; rc == MP_OK && i < mp_gguf_n_files(g); i++) {
        const char *name = mp_gguf_file_name(g, i);
        const cJSON *hit = NULL;
        cJSON_ArrayForEach(fe, files) {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(fe, "name");
            if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0) hit = fe;
        }
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(hit, "xxh3_128");
        uint64_t size = 0;
        uint8_t canon[16];
        char hex[33] = "";
        if (!hit || !cJSON_IsString(h) || !mp_json_get_u64(cJSON_GetObjectItemCaseSensitive(hit, "size"), &size)) {
            if (mp_vfind(r, MP_VS_FAIL, "integrity", "%s: not in the manifest's files, so not checked", name) != MP_OK)
                rc = mp_errf(err, MP_E_NOMEM, "out of memory");
            continue;
        }
        const mp_file *f = mp_gguf_file(g, i);
        if (f->size != size) {
            if (mp_vfind(r, MP_VS_FAIL, "integrity", "%s: %llu bytes, the manifest says %llu", name,
                         (unsigned long long)f->size, (unsigned long long)size) != MP_OK)
                rc = mp_errf(err, MP_E_NOMEM, "out of memory");
            continue;
        }
        rc = mp_file_xxh128(f, canon, err);
        if (rc != MP_OK) break;
        mp_hex128(canon, hex);
        r->files_hashed++;
        r->bytes_hashed += f->size;
        if (strcmp(hex, h->valuestring) != 0 &&
            mp_vfind(r, MP_VS_FAIL, "integrity", "%s: xxh3-128 %s, the manifest says %.40s", name, hex,
                     h->valuestring) != MP_OK)
            rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    cJSON_Delete(man);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r->hash_seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    return rc;
}

mp_errcode mp_check_gguf(const char *path, mp_device *d, const mp_verify_opts *o, mp_reporter *progress,
                         mp_verify_report *r, mp_err *err)
{
    mp_gguf *g = NULL;
    MP_FORWARD(mp_gguf_open(&g, path, err));
    r->n_tensors_checked = mp_gguf_n_tensors(g);
    snprintf(r->reference, sizeof r->reference,
             "CPU dequantization of the GGUF blocks (formats/gguf_dequant.c, ggml's dequantize_row_*)");
    char *mpath = mp_path_join(mp_gguf_dir(g), "modelprep.json");
    mp_errcode rc = !mpath ? mp_errf(err, MP_E_NOMEM, "out of memory")
                    : mp_is_dir(path) && mp_exists(mpath)
                        ? gguf_manifest(g, mpath, r, err)
                        : mp_vfind(r, MP_VS_WARN, "integrity", "GGUF has no modelprep.json: hashes not checked "
                                                              "(modelprep hash prints them)");
    free(mpath);
    uint64_t no_kernel[MP_GGUF_TYPE_COUNT] = {0}, no_dequant[MP_GGUF_TYPE_COUNT] = {0};
    mp_numerics *nu = mp_numerics_new(d, o, 0);
    if (!nu && rc == MP_OK) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_report_start(progress, "verify", mp_gguf_n_tensors(g));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < mp_gguf_n_tensors(g) && rc == MP_OK; i++, mp_report_add(progress, 1)) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(g, i);
        uint32_t block = mp_gguf_type_block(t->type), size = mp_gguf_type_size(t->type);
        if (!mp_gguf_type_dequantizable(t->type) || !block || t->ne[0] == 0) {
            if (t->type < MP_GGUF_TYPE_COUNT) no_dequant[t->type]++;
            continue;
        }
        gref q = {g, t, t->ne[0] / block * size, t->ne[0], NULL};
        q.buf = malloc(q.row_bytes ? (size_t)q.row_bytes : 1);
        if (!q.buf) {
            rc = mp_errf(err, MP_E_NOMEM, "out of memory");
            break;
        }
        rc = finite_rows(g, t, o, &q, r, err);
        if (rc == MP_OK && has_kernel(t->type) && t->n_dims >= 2) rc = on_device(g, t, nu, o, &q, r, err);
        else if (rc == MP_OK && block > 1) no_kernel[t->type]++;
        free(q.buf);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r->numeric_seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    char list[400] = "";
    uint64_t total = 0;
    for (uint32_t ty = 0; ty < MP_GGUF_TYPE_COUNT; ty++)
        if (no_kernel[ty]) {
            total += no_kernel[ty];
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, "%s%s %llu", len ? ", " : "", mp_gguf_type_name(ty),
                     (unsigned long long)no_kernel[ty]);
        }
    if (rc == MP_OK && total &&
        mp_vfind(r, MP_VS_WARN, "numerics",
                 "%llu quantized tensors have no device kernel (%s): only their CPU dequantization was checked",
                 (unsigned long long)total, list) != MP_OK)
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    for (uint32_t ty = 0; rc == MP_OK && ty < MP_GGUF_TYPE_COUNT; ty++)
        if (no_dequant[ty] &&
            mp_vfind(r, MP_VS_WARN, "structure", "%llu tensors of type %s cannot be dequantized: not checked",
                     (unsigned long long)no_dequant[ty], mp_gguf_type_name(ty)) != MP_OK)
            rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_numerics_free(nu);
    mp_gguf_close(g);
    return rc;
}
