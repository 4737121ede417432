/*
 * ggufdeq.c - test tool: opens a GGUF file or split set with the formats/ reader and writes the
 * f32 dequantization of every tensor, in file order, as raw little-endian floats.
 *
 *   ggufdeq SRC OUT.f32 [NAME]     (NAME: only that tensor)
 *
 * Each tensor is read and dequantized whole, which is fine for the test files it serves; the
 * streaming, bounded-memory path is `modelprep convert`. tests/ref/gguf_crosscheck.py compares
 * the output with gguf-py's gguf.quants.dequantize bit for bit.
 */
#include "../../formats/formats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const mp_err *err)
{
    char line[1400];
    mp_err_format(err, line, sizeof line);
    fprintf(stderr, "ggufdeq: %s\n", line);
    return mp_err_exit_code(err->code);
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fputs("usage: ggufdeq SRC OUT.f32 [NAME]\n", stderr);
        return 2;
    }
    mp_err err = MP_ERR_INIT;
    mp_gguf *g = NULL;
    if (mp_gguf_open(&g, argv[1], &err) != MP_OK) return fail(&err);
    FILE *out = fopen(argv[2], "wb");
    if (!out) {
        perror(argv[2]);
        return 5;
    }
    int rc = 0;
    for (size_t i = 0; i < mp_gguf_n_tensors(g) && rc == 0; i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(g, i);
        if (argc == 4 && strcmp(argv[3], t->name) != 0) continue;
        uint8_t *raw = malloc(t->n_bytes ? t->n_bytes : 1);
        float *f = malloc(t->n_elems ? t->n_elems * sizeof *f : 1);
        if (!raw || !f) {
            rc = 5;
        } else if (mp_gguf_read(g, t, 0, raw, t->n_bytes, &err) != MP_OK ||
                   mp_gguf_dequantize(t->type, raw, f, t->n_elems, &err) != MP_OK) {
            if (!err.tensor[0]) snprintf(err.tensor, sizeof err.tensor, "%s", t->name);
            rc = fail(&err);
        } else if (fwrite(f, sizeof *f, t->n_elems, out) != t->n_elems) {
            rc = 5;
        }
        free(raw);
        free(f);
    }
    if (fclose(out) != 0) rc = 5;
    mp_gguf_close(g);
    return rc;
}
