/*
 * manifest.c - see manifest.h.
 */
#define _GNU_SOURCE /* realpath */
#include "manifest.h"

#include <pthread.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_files(mp_buf *b, const mp_mfile *f, size_t n)
{
    mp_buf_puts(b, "[");
    for (size_t i = 0; i < n; i++) {
        char hex[33];
        mp_hex128(f[i].xxh128, hex);
        mp_buf_puts(b, i ? ",\n    {\"name\": " : "\n    {\"name\": ");
        mp_buf_json_str(b, f[i].name);
        mp_buf_printf(b, ", \"size\": %llu, \"xxh3_128\": \"%s\"", (unsigned long long)f[i].size, hex);
        if (f[i].compression) {
            mp_hex128(f[i].raw_xxh128, hex);
            mp_buf_puts(b, ", \"compression\": ");
            mp_buf_json_str(b, f[i].compression);
            mp_buf_printf(b, ", \"uncompressed_size\": %llu, \"uncompressed_xxh3_128\": \"%s\"",
                          (unsigned long long)f[i].raw_size, hex);
        }
        mp_buf_puts(b, "}");
    }
    mp_buf_puts(b, n ? "\n  ]" : "]");
}

mp_errcode mp_manifest_write(const mp_dest *d, const mp_manifest *m, mp_err *err)
{
    mp_buf b = MP_BUF_INIT;
    mp_buf_printf(&b, "{\n  \"tool\": \"modelprep\",\n  \"version\": \"%s\",\n  \"argv\": [", MP_VERSION);
    for (int i = 0; i < m->argc; i++) {
        if (i) mp_buf_puts(&b, ", ");
        mp_buf_json_str(&b, m->argv[i]);
    }
    mp_buf_puts(&b, "],\n  \"source\": {\"path\": ");
    mp_buf_json_str(&b, m->source_path);
    /* As given (portable when DST and SRC move together) and absolute (found from anywhere). */
    char *abs = realpath(m->source_path, NULL);
    mp_buf_puts(&b, ", \"absolute_path\": ");
    if (abs) mp_buf_json_str(&b, abs);
    else mp_buf_puts(&b, "null");
    free(abs);
    mp_buf_puts(&b, ", \"quantization\": ");
    if (m->source_quant) mp_buf_json_str(&b, m->source_quant);
    else mp_buf_puts(&b, "null");
    mp_buf_puts(&b, ", \"files\": ");
    put_files(&b, m->source_files, m->n_source_files);
    mp_buf_puts(&b, "},\n  \"layout\": ");
    mp_buf_puts(&b, m->layout_json);
    mp_buf_puts(&b, ",\n  \"files\": ");
    put_files(&b, m->files, m->n_files);
    mp_buf_puts(&b, ",\n  \"tensors\": [");
    for (size_t i = 0; i < m->n_tensors; i++) {
        const mp_mtensor *t = &m->tensors[i];
        char hex[17];
        mp_hex64(t->xxh64, hex);
        mp_buf_puts(&b, i ? ",\n    {\"name\": " : "\n    {\"name\": ");
        mp_buf_json_str(&b, t->name);
        mp_buf_puts(&b, ", \"file\": ");
        mp_buf_json_str(&b, t->file);
        mp_buf_printf(&b, ", \"dtype\": \"%s\", \"shape\": [", mp_dtype_name(t->dtype));
        for (uint32_t k = 0; k < t->n_dims; k++)
            mp_buf_printf(&b, "%s%llu", k ? ", " : "", (unsigned long long)t->shape[k]);
        mp_buf_printf(&b, "], \"xxh64\": \"%s\", \"origin\": \"%s\"}", hex, t->origin);
    }
    mp_buf_puts(&b, m->n_tensors ? "\n  ]\n}\n" : "]\n}\n");
    mp_errcode rc = b.oom ? mp_errf(err, MP_E_NOMEM, "out of memory")
                          : mp_dest_write_file(d, "modelprep.json", b.data, b.len, err);
    mp_buf_release(&b);
    return rc;
}

mp_errcode mp_manifest_hash_file(const mp_dest *d, const char *name, mp_mfile *out, mp_err *err)
{
    char *path = mp_dest_path(d, name);
    if (!path) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_file *f = NULL;
    mp_errcode rc = mp_file_open(&f, path, err);
    if (rc == MP_OK) {
        snprintf(out->name, sizeof out->name, "%s", name);
        out->size = f->size;
        rc = mp_file_xxh128(f, out->xxh128, err);
    }
    mp_file_close(f);
    free(path);
    return rc;
}

struct mp_src_hash {
    const mp_st_model *m;
    mp_mfile *files;
    mp_err err;
    mp_errcode rc;
    pthread_t thread;
};

static void *hash_sources(void *arg)
{
    mp_src_hash *h = arg;
    for (size_t i = 0; i < mp_st_n_files(h->m) && h->rc == MP_OK; i++) {
        mp_mfile *f = &h->files[i];
        snprintf(f->name, sizeof f->name, "%s", mp_st_file_name(h->m, i));
        f->size = mp_st_file(h->m, i)->size;
        h->rc = mp_file_xxh128(mp_st_file(h->m, i), f->xxh128, &h->err);
    }
    return NULL;
}

mp_errcode mp_src_hash_start(mp_src_hash **out, const mp_st_model *m, mp_err *err)
{
    *out = NULL;
    mp_src_hash *h = calloc(1, sizeof *h);
    if (h) h->files = calloc(mp_st_n_files(m) + 1, sizeof *h->files);
    if (!h || !h->files) {
        if (h) free(h->files);
        free(h);
        return mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    h->m = m;
    h->rc = MP_OK;
    mp_err_clear(&h->err);
    if (pthread_create(&h->thread, NULL, hash_sources, h) != 0) {
        free(h->files);
        free(h);
        return mp_errf(err, MP_E_NOMEM, "cannot start the source-hashing thread");
    }
    *out = h;
    return MP_OK;
}

mp_errcode mp_src_hash_finish(mp_src_hash *h, mp_mfile **files, mp_err *err)
{
    if (files) *files = NULL;
    if (!h) return MP_OK;
    pthread_join(h->thread, NULL);
    mp_errcode rc = h->rc;
    if (rc != MP_OK && err) *err = h->err;
    if (rc == MP_OK && files) *files = h->files;
    else free(h->files);
    free(h);
    return rc;
}
