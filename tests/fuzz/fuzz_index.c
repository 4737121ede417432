/*
 * fuzz_index.c - a sharded directory whose model.safetensors.index.json is the input, beside
 * two valid shards: weight_map parsing, shard names that try to leave the directory, missing
 * and misplaced tensors.
 */
#include "fuzz_common.h"
#include "../../formats/formats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void shard(const char *name, const char *tensor)
{
    /* One F32 [2] tensor; the header padded with spaces to 8 bytes. */
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", tensor);
    while (n % 8) hdr[n++] = ' ';
    uint8_t file[300];
    for (int i = 0; i < 8; i++) file[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(file + 8, hdr, (size_t)n);
    memset(file + 8 + n, 0, 8);
    fuzz_put(name, file, (size_t)n + 16);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        shard("model-00001-of-00002.safetensors", "a");
        shard("model-00002-of-00002.safetensors", "b");
        ready = 1;
    }
    fuzz_put("model.safetensors.index.json", data, size);
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    if (mp_st_open(&m, fuzz_dir(), &err) == MP_OK) mp_st_close(m);
    return 0;
}
