/*
 * split_runtime.c - what the layer-streaming runtimes expect of a per-layer split, one row per
 * runtime (doc/split-runtimes.md has the code each fact was read from).
 *
 * Both runtimes count a layer as present only when NAME.safetensors and NAME.safetensors.done
 * both exist (their SafetensorModelPersister.model_persist_exist); without every marker they
 * re-split the checkpoint over the files. RabbitLLM always streams an lm_head module and loads
 * lm_head.safetensors even for a tied head (its own splitter writes it with no tensors); AirLLM
 * drops modules without tensors and keeps a tied embedding resident instead. Neither reads
 * zstd frames nor the raw ggml blocks of a GGUF source.
 */
#include "formats.h"

#include <string.h>

static const mp_runtime_traits runtimes[MP_RUNTIME_COUNT] = {
    [MP_RUNTIME_PLAIN] = {.name = "plain", .title = "standard loaders", .done_markers = 0,
                          .tied_head_file = 0, .reads_zstd = 0, .reads_gguf_source = 0},
    [MP_RUNTIME_AIRLLM] = {.name = "airllm", .title = "AirLLM", .done_markers = 1,
                           .tied_head_file = 0, .reads_zstd = 0, .reads_gguf_source = 0},
    [MP_RUNTIME_RABBITLLM] = {.name = "rabbitllm", .title = "RabbitLLM", .done_markers = 1,
                              .tied_head_file = 1, .reads_zstd = 0, .reads_gguf_source = 0},
};

const mp_runtime_traits *mp_runtime_get(mp_runtime rt) { return &runtimes[rt]; }

int mp_runtime_parse(const char *name, mp_runtime *out)
{
    for (int i = 0; i < MP_RUNTIME_COUNT; i++) {
        if (strcmp(runtimes[i].name, name) != 0) continue;
        *out = (mp_runtime)i;
        return 0;
    }
    return -1;
}
