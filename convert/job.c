/*
 * job.c - the index and manifest tail of every job (job.h). The drivers used to repeat it: the
 * index writer twice and the manifest assembly three times, with drifting orders of files.
 */
#include "job.h"

#include <stdlib.h>
#include <string.h>

static mp_errcode write_index(const mp_dest *d, const mp_job_tail *t, mp_err *err)
{
    size_t n = t->n_tensors ? t->n_tensors : 1;
    const char **names = malloc(n * sizeof *names), **files = malloc(n * sizeof *files);
    mp_buf b = MP_BUF_INIT;
    mp_errcode rc = names && files ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    for (size_t i = 0; rc == MP_OK && i < t->n_tensors; i++) {
        names[i] = t->tensors[i].name;
        files[i] = t->tensors[i].file;
    }
    if (rc == MP_OK) rc = mp_st_index_json(&b, names, files, t->n_tensors, t->tensor_bytes, err);
    if (rc == MP_OK) rc = mp_dest_write_file(d, t->index_name, b.data, b.len, err);
    mp_buf_release(&b);
    free(names);
    free(files);
    return rc;
}

/* Appends `name` to t->files when the destination holds it. */
static mp_errcode hash_if_present(const mp_dest *d, mp_job_tail *t, const char *name, mp_err *err)
{
    char *p = mp_dest_path(d, name);
    if (!p) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = MP_OK;
    if (mp_exists(p)) rc = mp_manifest_hash_file(d, name, &t->files[t->n_files++], err);
    free(p);
    return rc;
}

mp_errcode mp_job_finish(const mp_dest *d, mp_job_tail *t, mp_err *err)
{
    static const char *const no_skip[] = {NULL};
    mp_mfile *src_files = NULL;
    mp_errcode rc = MP_OK;
    t->n_side = 0;
    if (t->index_name) rc = write_index(d, t, err);
    if (rc == MP_OK && t->side_dir)
        rc = mp_dest_copy_side_files(d, t->side_dir, t->src_is_dir, t->side_skip ? t->side_skip : no_skip,
                                     &t->n_side, err);
    if (rc == MP_OK && t->index_name) rc = hash_if_present(d, t, t->index_name, err);
    for (const char *const *x = t->extra; rc == MP_OK && x && *x; x++) rc = hash_if_present(d, t, *x, err);
    mp_errcode hrc = mp_src_hash_finish(t->src_hash, &src_files, rc == MP_OK ? err : NULL);
    if (rc == MP_OK) rc = hrc;
    t->src_hash = NULL;
    if (rc == MP_OK) {
        mp_manifest man = {t->argc, t->argv, t->src, t->source_quant,
                           src_files ? src_files : t->src_files, t->n_src_files, t->layout_json,
                           t->files, t->n_files, t->tensors, t->n_tensors};
        rc = mp_manifest_write(d, &man, err);
    }
    free(src_files);
    return rc;
}

mp_errcode mp_job_plan_shards(void *outs, size_t n, size_t stride, size_t spec_off, size_t shard_off,
                              uint64_t max_bytes, size_t *n_shards, char (**names)[64], mp_err *err)
{
    unsigned char *base = outs;
    mp_tensor_spec *specs = malloc((n ? n : 1) * sizeof *specs);
    uint32_t *shard = malloc((n ? n : 1) * sizeof *shard);
    mp_errcode rc = specs && shard ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) {
        for (size_t i = 0; i < n; i++) memcpy(&specs[i], base + i * stride + spec_off, sizeof *specs);
        *n_shards = mp_st_plan_shards(specs, n, max_bytes, shard);
        for (size_t i = 0; i < n; i++) memcpy(base + i * stride + shard_off, &shard[i], sizeof *shard);
    }
    free(specs);
    free(shard);
    MP_FORWARD(rc);
    *names = calloc(*n_shards ? *n_shards : 1, sizeof **names);
    if (!*names) return mp_errf(err, MP_E_NOMEM, "out of memory");
    for (size_t s = 0; s < *n_shards; s++) mp_st_shard_name(s, *n_shards, (*names)[s], sizeof (*names)[s]);
    return MP_OK;
}
