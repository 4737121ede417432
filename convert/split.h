/*
 * split.h - the engine's per-layer split job (split.c), for programs/ and api.c.
 */
#ifndef MP_SPLIT_H
#define MP_SPLIT_H

#include "../formats/formats.h"

typedef struct mp_split_opts {
    int materialize_tied;   /* write lm_head.safetensors from the embedding when tied */
    int resume;             /* continue the newest DST.partial-* of an interrupted run */
    int force, quiet;
    int zstd_level;         /* 0: plain .safetensors files; 1..19: .safetensors.zst */
    int threads;            /* zstd workers (0: one) */
    unsigned gguf_split;    /* GGUF source: write a gguf-split set of this many files instead */
    int argc;               /* recorded in the manifest */
    char **argv;
    volatile int *interrupted;
    mp_progress_fn progress;    /* progress events and notes; NULL: none (mp_common.h) */
    void *progress_user;        /* passed to progress */
} mp_split_opts;

typedef struct mp_split_result {
    size_t n_files, n_tensors, n_extra, n_resumed;
    int tied;               /* lm_head was an alias of the embedding */
    const char *tied_name;  /* the head's name: "lm_head.weight", or "output.weight" in GGUF */
    uint64_t bytes;         /* output bytes (uncompressed) */
    uint64_t disk_bytes;    /* bytes of the layer files on disk (compressed, or = bytes) */
    uint64_t layer_bytes;   /* bytes of the layer files uncompressed */
    uint64_t written;       /* uncompressed bytes written by this run (resumed files excluded) */
    double write_seconds;   /* time spent writing them */
    double seconds;
} mp_split_result;

mp_errcode mp_split_run(const char *src, const char *dst, const mp_split_opts *o,
                        mp_split_result *res, mp_err *err);

#endif
