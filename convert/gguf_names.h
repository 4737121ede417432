/*
 * gguf_names.h - internal to convert/: the names llama.cpp's GGUF and Hugging Face give one
 * tensor, in one table for both directions: Hugging Face -> GGUF (gguf_export.c) and GGUF ->
 * Hugging Face (gguf_convert.c). Facts: doc/formats/gguf-export.md.
 */
#ifndef MP_GGUF_NAMES_H
#define MP_GGUF_NAMES_H

#include <stddef.h>

typedef struct mp_gguf_name {
    const char *hf, *gguf;
    int gemma;          /* -1: any architecture; 0: not gemma3; 1: gemma3 only */
    int export_only;    /* 1: Hugging Face -> GGUF only (a GGUF source keeps the name) */
} mp_gguf_name;

/* The names inside a layer, after "model.layers.N." and "blk.N.". A name may stand twice with
 * different `gemma`: the first entry that matches the architecture wins. */
extern const mp_gguf_name mp_gguf_layer_names[];
extern const size_t mp_gguf_n_layer_names;

/* The names outside the layers (any architecture, both directions). */
extern const mp_gguf_name mp_gguf_top_names[];
extern const size_t mp_gguf_n_top_names;

#endif /* MP_GGUF_NAMES_H */
