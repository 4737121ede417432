/*
 * fuzz_st_header.c - the safetensors reader on a single hostile file: header length, JSON,
 * dtypes, shapes, offsets, coverage. Every input must give MP_OK or an error, never a crash,
 * leak or undefined behaviour; when it opens, every tensor must be readable within the file.
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
            if (mp_st_read(m, t, 0, buf, n, &err) != MP_OK) abort(); /* validated, so readable */
        }
        mp_st_close(m);
    }
    return 0;
}
