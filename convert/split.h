/*
 * split.h - the engine's per-layer split job (split.c), for programs/ and api.c.
 */
#ifndef MP_SPLIT_H
#define MP_SPLIT_H

#include "../formats/formats.h"

#include "partition.h"

typedef struct mp_split_opts {
    int materialize_tied;   /* write lm_head.safetensors from the embedding when tied */
    int runtime_given;      /* runtime was chosen (--for); else the default, see mp_split_run */
    mp_runtime runtime;     /* whose loader the layout is for (doc/split-runtimes.md) */
    int into_checkpoint;    /* dst is <SRC>/splitted_model, where the runtimes look for it */
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
    mp_part_spec part;          /* --part I/N or a merge (partition.h); zero: a whole run */
} mp_split_opts;

typedef struct mp_split_result {
    size_t n_files, n_tensors, n_extra, n_resumed;
    int tied;               /* lm_head was an alias of the embedding */
    mp_runtime runtime;     /* the layout written */
    int empty_head;         /* lm_head.safetensors was written with no tensors (tied) */
    int gguf_source;        /* the source was GGUF */
    const char *tied_name;  /* the head's name: "lm_head.weight", or "output.weight" in GGUF */
    uint64_t bytes;         /* output bytes (uncompressed) */
    uint64_t disk_bytes;    /* bytes of the layer files on disk (compressed, or = bytes) */
    uint64_t layer_bytes;   /* bytes of the layer files uncompressed */
    uint64_t written;       /* uncompressed bytes written by this run (resumed files excluded) */
    double write_seconds;   /* time spent writing them */
    double seconds;
    /* --part I/N and merges */
    char job_id[MP_JOB_ID_MAX + 1];
    unsigned part_count;    /* N */
    size_t part_files;      /* files this part wrote */
    int part_done;          /* 1: the part had finished before; nothing written */
    int merged;             /* 1: this run merged the parts and committed DST */
} mp_split_result;

/* Splits src into dst. Without runtime_given, the layout is RabbitLLM's (which AirLLM loads as
 * well) for a safetensors source written plain, and plain for a GGUF source or --compress, which
 * neither runtime reads; with it, a runtime that cannot read the source or the compression is
 * MP_E_USAGE. */
mp_errcode mp_split_run(const char *src, const char *dst, const mp_split_opts *o,
                        mp_split_result *res, mp_err *err);

#endif
