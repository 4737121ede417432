/*
 * ggufcopy.c - test tool: reads a GGUF model with the formats/ reader and rewrites it with the
 * formats/ writer (mp_gguf_copy), as one file or as a split set.
 *
 *   ggufcopy SRC DST.gguf [--alignment N] [--split-max-tensors N] [--split-max-size BYTES]
 *
 * tests/ref/gguf_crosscheck.py checks that gguf-py's GGUFReader reads what it writes with
 * equal metadata and tensor bytes, and that a split set reads back as the original model.
 */
#include "../../formats/formats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const mp_err *err)
{
    char line[1400];
    mp_err_format(err, line, sizeof line);
    fprintf(stderr, "ggufcopy: %s\n", line);
    return mp_err_exit_code(err->code);
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc % 2 == 0) {
        fputs("usage: ggufcopy SRC DST.gguf [--alignment N] [--split-max-tensors N] "
              "[--split-max-size BYTES]\n", stderr);
        return 2;
    }
    mp_gguf_copy_opts o = {0};
    for (int i = 3; i + 1 < argc; i += 2) {
        unsigned long long v = strtoull(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--alignment") == 0) o.alignment = (uint32_t)v;
        else if (strcmp(argv[i], "--split-max-tensors") == 0) o.split_max_tensors = v;
        else if (strcmp(argv[i], "--split-max-size") == 0) o.split_max_bytes = v;
        else return 2;
    }
    mp_err err = MP_ERR_INIT;
    mp_gguf *g = NULL;
    if (mp_gguf_open(&g, argv[1], &err) != MP_OK) return fail(&err);
    int rc = mp_gguf_copy(g, argv[2], &o, &err) == MP_OK ? 0 : fail(&err);
    mp_gguf_close(g);
    return rc;
}
