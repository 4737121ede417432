/*
 * fuzz_manifest.c - modelprep.json as verify reads it, beside a small valid checkpoint: the
 * integrity check (file names that try to leave the directory, sizes, hashes, the blame pass)
 * and the structure check (tensor entries against the checkpoint and config.json). The manifest
 * of a split has the same shape, so this is also the split-manifest reader.
 */
#include "fuzz_common.h"
#include "../../formats/formats.h"
#include "../../verify/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mp_st_model *model;
static mp_qmodel *qmodel;

static void setup(void)
{
    static const char config[] = "{\"hidden_size\": 8, \"num_hidden_layers\": 1, \"vocab_size\": 4}";
    fuzz_put("config.json", (const uint8_t *)config, sizeof config - 1);
    mp_tensor_spec specs[3] = {{"model.embed_tokens.weight", MP_DTYPE_F16, 2, {4, 8}},
                               {"model.layers.0.input_layernorm.weight", MP_DTYPE_F16, 1, {8}},
                               {"model.norm.weight", MP_DTYPE_F32, 1, {8}}};
    char path[4096];
    strcpy(path, fuzz_put("model.safetensors", (const uint8_t *)"", 0));
    remove(path);
    mp_err err = MP_ERR_INIT;
    mp_st_writer *w = NULL;
    if (mp_st_writer_open(&w, path, specs, 3, NULL, 0, &err) != MP_OK) abort();
    uint8_t bytes[64];
    for (int i = 0; i < 64; i++) bytes[i] = (uint8_t)(i * 37);
    for (size_t t; (t = mp_st_writer_next(w)) != SIZE_MAX;)
        if (mp_st_writer_write(w, bytes, (size_t)mp_st_writer_remaining(w), &err) != MP_OK) abort();
    if (mp_st_writer_finish(w, &err) != MP_OK) abort();
    if (mp_st_open(&model, fuzz_dir(), &err) != MP_OK || mp_qmodel_open(&qmodel, model, &err) != MP_OK) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!model) setup();
    const char *path = fuzz_put("modelprep.json", data, size);
    mp_err err = MP_ERR_INIT;
    cJSON *manifest = NULL;
    if (mp_json_load_file(path, 1u << 20, "modelprep.json", &manifest, &err) != MP_OK) return 0;
    mp_verify_report r;
    memset(&r, 0, sizeof r);
    if (mp_check_integrity(model, manifest, &r, &err) == MP_OK) mp_check_structure(model, qmodel, manifest, &r, &err);
    free(r.findings);
    free(r.numeric);
    cJSON_Delete(manifest);
    return 0;
}
