/*
 * stcopy.c - test tool: reads a safetensors checkpoint with the formats/ reader and writes all of
 * its tensors into one file with the formats/ writer, streaming in 1 MiB chunks.
 *
 *   stcopy SRC DST.safetensors
 *
 * The Python cross-check uses it both ways: files written by upstream safetensors go through
 * modelprep's reader, and modelprep's writer produces files upstream must load. The __metadata__
 * of a single-file source is carried over (its "format" is always written as "pt").
 */
#include "../../formats/formats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (1u << 20)

static int fail(const mp_err *err)
{
    char line[1400];
    mp_err_format(err, line, sizeof line);
    fprintf(stderr, "stcopy: %s\n", line);
    return mp_err_exit_code(err->code);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fputs("usage: stcopy SRC DST.safetensors\n", stderr);
        return 2;
    }
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    if (mp_st_open(&m, argv[1], &err) != MP_OK) return fail(&err);
    size_t n = mp_st_n_tensors(m);
    mp_tensor_spec *specs = calloc(n ? n : 1, sizeof *specs);
    const char **meta = calloc(2 * (mp_st_file_n_meta(m, 0) + 1), sizeof *meta);
    uint8_t *buf = malloc(CHUNK);
    if (!specs || !meta || !buf) return 5;
    for (size_t i = 0; i < n; i++) {
        const mp_tensor *t = mp_st_tensor(m, i);
        specs[i].name = t->name;
        specs[i].dtype = t->dtype;
        specs[i].n_dims = t->n_dims;
        memcpy(specs[i].shape, t->shape, sizeof t->shape);
    }
    size_t n_meta = 0;
    if (mp_st_n_files(m) == 1) {
        for (size_t j = 0; j < mp_st_file_n_meta(m, 0); j++) {
            const char *k, *v;
            mp_st_file_meta(m, 0, j, &k, &v);
            if (strcmp(k, "format") == 0) continue;
            meta[2 * n_meta] = k;
            meta[2 * n_meta + 1] = v;
            n_meta++;
        }
    }
    mp_st_writer *w = NULL;
    if (mp_st_writer_open(&w, argv[2], specs, n, meta, n_meta, &err) != MP_OK) return fail(&err);
    for (size_t next; (next = mp_st_writer_next(w)) != SIZE_MAX;) {
        const mp_tensor *t = mp_st_tensor(m, next);
        for (uint64_t at = 0; at < t->n_bytes;) {
            size_t len = t->n_bytes - at < CHUNK ? (size_t)(t->n_bytes - at) : CHUNK;
            if (mp_st_read(m, t, at, buf, len, &err) != MP_OK ||
                mp_st_writer_write(w, buf, len, &err) != MP_OK) {
                mp_st_writer_abort(w);
                return fail(&err);
            }
            at += len;
        }
    }
    if (mp_st_writer_finish(w, &err) != MP_OK) return fail(&err);
    free(buf);
    free(meta);
    free(specs);
    mp_st_close(m);
    return 0;
}
