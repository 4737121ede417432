/*
 * fuzz_gguf.c - the GGUF reader on a single hostile file: header, counts, strings, arrays,
 * alignment, tensor infos, offsets. Every input must give MP_OK or an error, never a crash, leak
 * or undefined behaviour. When it opens: every array element and the first bytes of every
 * tensor must be readable, the first block of every supported type must dequantize, and the
 * writer must rewrite the model into a file that opens again with the same tensors (a round
 * trip, as zstd's simple_round_trip does).
 */
#include "fuzz_common.h"
#include "../../formats/formats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_put("model.gguf", data, size);
    mp_err err = MP_ERR_INIT;
    mp_gguf *g = NULL;
    if (mp_gguf_open(&g, path, &err) != MP_OK) return 0;
    uint8_t buf[512];
    float f[256];
    for (size_t i = 0; i < mp_gguf_n_kv(g); i++) {
        const mp_gguf_kv *kv = mp_gguf_kv_at(g, i);
        if (kv->type != MP_GGUF_V_ARR || kv->n == 0) continue;
        if (mp_gguf_arr_get(g, kv, 0, buf, sizeof buf, NULL, &err) != MP_OK) abort();
        if (mp_gguf_arr_get(g, kv, kv->n - 1, buf, sizeof buf, NULL, &err) != MP_OK) abort();
    }
    for (size_t i = 0; i < mp_gguf_n_tensors(g); i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(g, i);
        uint32_t blk = mp_gguf_type_block(t->type), bsz = mp_gguf_type_size(t->type);
        size_t n = t->n_bytes < sizeof buf ? (size_t)t->n_bytes : sizeof buf;
        if (mp_gguf_read(g, t, 0, buf, n, &err) != MP_OK) abort(); /* validated, so readable */
        if (t->n_bytes >= bsz && mp_gguf_type_dequantizable(t->type) && blk <= 256 && bsz <= sizeof buf)
            if (mp_gguf_dequantize(t->type, buf, f, blk, &err) != MP_OK) abort();
    }
    char copy[600];
    snprintf(copy, sizeof copy, "%s/copy.gguf", fuzz_dir());
    unlink(copy);
    mp_gguf_copy_opts o = {0};
    if (mp_gguf_copy(g, copy, &o, &err) != MP_OK) abort();
    mp_gguf *back = NULL;
    if (mp_gguf_open(&back, copy, &err) != MP_OK) abort();
    if (mp_gguf_n_tensors(back) != mp_gguf_n_tensors(g)) abort();
    for (size_t i = 0; i < mp_gguf_n_kv(g); i++) { /* split.* keys are not copied into one file */
        const mp_gguf_kv *a = mp_gguf_kv_at(g, i), *b = mp_gguf_find_kv(back, a->key);
        if (strncmp(a->key, "split.", 6) == 0) continue;
        if (!b || b->type != a->type || b->value_len != a->value_len) abort();
    }
    for (size_t i = 0; i < mp_gguf_n_tensors(g); i++) {
        const mp_gguf_tensor *a = mp_gguf_tensor_at(g, i), *b = mp_gguf_tensor_at(back, i);
        if (strcmp(a->name, b->name) != 0 || a->type != b->type || a->n_bytes != b->n_bytes) abort();
    }
    mp_gguf_close(back);
    unlink(copy);
    mp_gguf_close(g);
    return 0;
}
