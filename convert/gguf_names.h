/*
 * gguf_names.h - internal to convert/: the names llama.cpp's GGUF and Hugging Face give one
 * tensor, in one table for both directions: Hugging Face -> GGUF (gguf_export.c) and GGUF ->
 * Hugging Face (gguf_convert.c). Facts: doc/formats/gguf-export.md.
 */
#ifndef MP_GGUF_NAMES_H
#define MP_GGUF_NAMES_H

#include <stddef.h>

/* The families of architectures a name belongs to, a mask: gemma3's norms, gpt-oss's sinks,
 * router and post-attention norm, and the plain others. */
enum { MP_GGUF_FAM_PLAIN = 1, MP_GGUF_FAM_GEMMA = 2, MP_GGUF_FAM_OSS = 4, MP_GGUF_FAM_ANY = 7 };

typedef struct mp_gguf_name {
    const char *hf, *gguf;
    unsigned fam;       /* MP_GGUF_FAM_* the name is used in */
    int export_only;    /* 1: Hugging Face -> GGUF only (a GGUF source keeps the name) */
} mp_gguf_name;

/* The names inside a layer, after "model.layers.N." and "blk.N.". A name may stand twice with
 * different families: the first entry that matches the architecture wins. */
extern const mp_gguf_name mp_gguf_layer_names[];
extern const size_t mp_gguf_n_layer_names;

/* The names outside the layers (any architecture, both directions). */
extern const mp_gguf_name mp_gguf_top_names[];
extern const size_t mp_gguf_n_top_names;

#endif /* MP_GGUF_NAMES_H */
