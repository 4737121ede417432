/*
 * fuzz_st_header.c - the safetensors reader on a single hostile file: header length, JSON,
 * dtypes, shapes, offsets, coverage, and the same inside a zstd frame (frame header, block walk,
 * streaming decompression). Every input must give MP_OK or an error, never a crash, leak or
 * undefined behaviour; when a plain file opens, every tensor must be readable within the file.
 * A compressed file's data is only decompressed when read, so there a read may fail, but only
 * with MP_E_INPUT; the whole stream is then read once more through mp_st_file_digest().
 */
#include "fuzz_common.h"
#include "../../formats/formats.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_put("model.safetensors", data, size);
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    if (mp_st_open(&m, path, &err) == MP_OK) {
        uint8_t buf[64];
        for (size_t i = 0; i < mp_st_n_tensors(m); i++) {
            const mp_tensor *t = mp_st_tensor(m, i);
            size_t n = t->n_bytes < sizeof buf ? (size_t)t->n_bytes : sizeof buf;
            mp_errcode rc = mp_st_read(m, t, 0, buf, n, &err);
            if (rc != MP_OK && (mp_st_file_compression(m, t->file) == MP_COMPRESS_NONE || rc != MP_E_INPUT))
                abort(); /* validated, so readable */
        }
        if (mp_st_file_compression(m, 0) == MP_COMPRESS_ZSTD) {
            mp_errcode rc = mp_st_file_digest(m, 0, NULL, NULL, buf, sizeof buf, &err);
            if (rc != MP_OK && rc != MP_E_INPUT) abort();
        }
        mp_st_close(m);
    }
    return 0;
}
