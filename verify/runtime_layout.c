/*
 * runtime_layout.c - `modelprep verify --for airllm|rabbitllm`: is a per-layer split one the
 * runtime loads as it is, or one it would split again?
 *
 * The runtime streams model.embed_tokens, model.layers.0 .. N-1 (N from config.json), model.norm
 * and lm_head, and counts a layer as present only when NAME.safetensors and NAME.safetensors.done
 * both exist (doc/split-runtimes.md). AirLLM drops modules that own no tensor (a tied head);
 * RabbitLLM asks for lm_head.safetensors whatever the config says. A marker without its file is
 * refused too: it says a layer is done that is not there. That the files hold the bytes the
 * manifest recorded is the integrity stage's check.
 */
#include "check.h"
#include "../formats/formats.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MARKER ".safetensors" MP_RUNTIME_MARKER_SUFFIX

static int is_regular(const char *dir, const char *name)
{
    char *p = mp_path_join(dir, name);
    struct stat st;
    int ok = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return ok;
}

/* 1 when some tensor of the index's weight_map is named "<module>." something. */
static int owns_tensors(const cJSON *weight_map, const char *module)
{
    size_t len = strlen(module);
    const cJSON *e;
    cJSON_ArrayForEach(e, weight_map) {
        if (strncmp(e->string, module, len) == 0 && e->string[len] == '.') return 1;
    }
    return 0;
}

/* One module the runtime asks for: its file and its marker. */
static mp_errcode check_module(const char *dir, const mp_runtime_traits *t, const char *module,
                               mp_verify_report *r, mp_err *err)
{
    char file[200], marker[210], path[4400];
    snprintf(file, sizeof file, "%s.safetensors", module);
    snprintf(marker, sizeof marker, "%s%s", file, MP_RUNTIME_MARKER_SUFFIX);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) /* there, but no file to read: bad input */
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "not a regular file (%s)", mp_file_kind(st.st_mode));
    if (!is_regular(dir, file))
        return mp_vfind(r, MP_VS_FAIL, "runtime", "%s: missing: %s streams %s and would split the checkpoint "
                        "again", file, t->title, module);
    if (t->done_markers && !is_regular(dir, marker))
        return mp_vfind(r, MP_VS_FAIL, "runtime", "%s: missing beside %s: %s counts the layer as absent and "
                        "would split the checkpoint again", marker, file, t->title);
    return MP_OK;
}

/* Every NAME.safetensors.done must have its NAME.safetensors. */
static mp_errcode check_orphans(const char *dir, mp_verify_report *r, mp_err *err)
{
    DIR *d = opendir(dir);
    if (!d) return mp_errf_at(err, MP_E_IO, dir, NULL, -1, "cannot list the directory");
    mp_errcode rc = MP_OK;
    size_t ml = strlen(MARKER);
    for (struct dirent *e; rc == MP_OK && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n <= ml || strcmp(e->d_name + n - ml, MARKER) != 0) continue;
        char file[300];
        snprintf(file, sizeof file, "%.*s", (int)(n - strlen(MP_RUNTIME_MARKER_SUFFIX)), e->d_name);
        if (!is_regular(dir, file))
            rc = mp_vfind(r, MP_VS_FAIL, "runtime", "%s: a completion marker without its layer file %s",
                          e->d_name, file);
    }
    closedir(d);
    return rc;
}

/* The runtime the manifest's layout names (layout.runtime), MP_RUNTIME_PLAIN when none. */
static mp_runtime manifest_runtime(const char *dir)
{
    char *path = mp_path_join(dir, "modelprep.json");
    cJSON *man = NULL;
    mp_err ignore = MP_ERR_INIT;
    mp_runtime rt = MP_RUNTIME_PLAIN;
    if (path && mp_exists(path) && mp_json_load_file(path, 1u << 28, "modelprep.json", &man, &ignore) == MP_OK) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(man, "layout"), "runtime");
        if (!cJSON_IsString(name) || mp_runtime_parse(name->valuestring, &rt) != 0) rt = MP_RUNTIME_PLAIN;
    }
    cJSON_Delete(man);
    free(path);
    return rt;
}

/* The modules the runtime streams, each with its file and marker. */
static mp_errcode check_modules(const char *dir, const mp_runtime_traits *t, const cJSON *weight_map,
                                mp_verify_report *r, mp_err *err)
{
    mp_hf_config cfg;
    MP_FORWARD(mp_hf_config_load(&cfg, dir, err));
    if (cfg.num_hidden_layers < 0)
        return mp_vfind(r, MP_VS_FAIL, "runtime", "config.json: no num_hidden_layers: %s cannot tell how "
                        "many layers to stream", t->title);
    mp_errcode rc = MP_OK;
    static const char *const ends[] = {"model.embed_tokens", "model.norm", "lm_head"};
    for (size_t i = 0; rc == MP_OK && i < 3; i++) {
        /* AirLLM drops a module without tensors: a tied head it takes from the embedding. */
        if (!t->tied_head_file && i == 2 && !owns_tensors(weight_map, ends[i])) continue;
        rc = check_module(dir, t, ends[i], r, err);
    }
    if (rc == MP_OK && t->tied_head_file && !owns_tensors(weight_map, "lm_head") && cfg.tie_word_embeddings != 1)
        rc = mp_vfind(r, MP_VS_FAIL, "runtime", "lm_head.safetensors: holds no tensors, but config.json does not "
                      "tie the head to the embedding: %s would run lm_head without weights", t->title);
    for (int64_t l = 0; rc == MP_OK && l < cfg.num_hidden_layers; l++) {
        char module[64];
        snprintf(module, sizeof module, "model.layers.%lld", (long long)l);
        rc = check_module(dir, t, module, r, err);
    }
    return rc;
}

mp_errcode mp_check_runtime(const char *dir, int runtime, mp_verify_report *r, mp_err *err)
{
    mp_runtime rt = runtime >= 0 ? (mp_runtime)runtime : manifest_runtime(dir);
    const mp_runtime_traits *t = mp_runtime_get(rt);
    if (!t->done_markers) return MP_OK;
    snprintf(r->runtime, sizeof r->runtime, "%s", t->title);
    cJSON *index = NULL;
    char *ipath = mp_path_join(dir, "model.safetensors.index.json");
    mp_errcode rc = ipath ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK && !mp_exists(ipath))
        rc = mp_vfind(r, MP_VS_FAIL, "runtime", "model.safetensors.index.json: missing: not a per-layer split "
                      "%s can load%s", t->title, is_regular(dir, "model.safetensors.zst.index.json")
                      ? " (a --compress zstd split: it reads no .safetensors.zst)" : "");
    else if (rc == MP_OK)
        rc = mp_json_load_file(ipath, 1u << 28, "model.safetensors.index.json", &index, err);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(index, "weight_map");
    if (rc == MP_OK && index && !cJSON_IsObject(wm))
        rc = mp_errf_at(err, MP_E_INPUT, "model.safetensors.index.json", NULL, -1, "'weight_map' must be an object");
    if (rc == MP_OK && index) rc = check_modules(dir, t, wm, r, err);
    if (rc == MP_OK) rc = check_orphans(dir, r, err);
    cJSON_Delete(index);
    free(ipath);
    return rc;
}
