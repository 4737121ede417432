/*
 * pipeline.h - the engine's convert job, for programs/ and api.c: plan and run a conversion,
 * tensor by tensor and tile by tile, streaming into an atomic destination.
 */
#ifndef MP_PIPELINE_H
#define MP_PIPELINE_H

#include "../formats/formats.h"
#include "dest.h"
#include "manifest.h"
#include "pack_target.h"
#include "partition.h"

typedef enum { MP_TARGET_F32, MP_TARGET_F16, MP_TARGET_BF16, MP_TARGET_COUNT } mp_target;

typedef struct mp_convert_opts {
    mp_target target;      /* dense targets */
    int packed;            /* 1: write pack.fmt instead of a dense dtype */
    mp_pack_opts pack;
    int threads;           /* 0: OpenMP's default */
    uint64_t max_shard;    /* bytes of tensor data per shard; 0: one file */
    int force, quiet;
    int keep_dense_dtype;  /* dense float tensors keep their dtype (default: cast to target) */
    int stack_experts;     /* cutlass-int4: experts as [E, N, K/2], gate and up fused as w13 */
    int argc;              /* the command line, recorded in the manifest */
    char **argv;
    volatile int *interrupted;  /* set by a signal handler; checked between tiles */
    mp_progress_fn progress;    /* progress events and notes; NULL: none (mp_common.h) */
    void *progress_user;        /* passed to progress */
    mp_part_spec part;          /* --part I/N or a merge (partition.h); zero: a whole run */
} mp_convert_opts;

typedef struct mp_convert_result {
    size_t n_dequantized, n_repacked, n_stacks, n_copied, n_cast, n_files, n_side_files;
    size_t n_tensors;      /* tensors written */
    uint64_t bytes;        /* tensor bytes written */
    double seconds;
    /* GGUF sources */
    char arch[64];         /* general.architecture */
    int names_mapped;      /* 1 when the architecture has a Hugging Face name mapping */
    size_t n_unpermuted;   /* q/k tensors whose rope row permutation was undone */
    /* --part I/N and merges */
    char job_id[MP_JOB_ID_MAX + 1];
    unsigned part_count;   /* N */
    size_t part_files;     /* files this part wrote */
    int part_done;         /* 1: the part had finished before; nothing written */
    int merged;            /* 1: this run merged the parts and committed DST */
} mp_convert_result;

/* SRC (file or directory) to DST: a dense checkpoint of f32, f16 or bf16, or (o->packed) the
 * quantized linears repacked into o->pack.fmt with everything else copied. */
mp_errcode mp_convert_run(const char *src, const char *dst, const mp_convert_opts *o,
                            mp_convert_result *res, mp_err *err);

/* Stores n floats as the target dtype (round to nearest even). A value that overflows f16 is
 * MP_E_UNSUPPORTED naming tensor `name` and the element (`first` is the flat index of v[0], `cols`
 * the row length), never a silent infinity. */
mp_errcode mp_convert_store(const float *v, size_t n, mp_target target, uint8_t *out,
                            const char *name, uint64_t first, uint64_t cols, mp_err *err);

/* A safetensors file SRC that an index beside it lists as one shard of several is MP_E_INPUT,
 * saying to pass the directory: converting or splitting it alone would make a partial model.
 * A directory, or a file no index lists, is MP_OK. */
mp_errcode mp_refuse_one_shard(const char *src, const mp_st_model *m, mp_err *err);

/* Index of the first Inf or NaN among v[0..n), or n when all are finite. */
size_t mp_first_nonfinite(const float *v, size_t n);

/* A GGUF file or split set to a Hugging Face checkpoint of f32, f16 or bf16 (gguf_convert.c):
 * tensors renamed for the mapped architectures, llama's q/k rows un-permuted, config.json built
 * from the metadata. Notes about unmapped names go to o->progress. */
/* The outputs of a conversion, as mp_write_shard needs them: an array of the caller's records,
 * each holding an mp_tensor_spec, the uint32_t shard it goes to and a uint64_t xxh64 to fill,
 * at these offsets (offsetof). */
typedef struct mp_out_table {
    void *base;
    size_t n, stride, spec_off, shard_off, xxh64_off;
} mp_out_table;

/* Writes output i's bytes into w, which expects them next. */
typedef mp_errcode (*mp_produce_fn)(void *ctx, mp_st_writer *w, size_t i, mp_err *err);

/* Writes shard s of a conversion as `name` in d: the outputs whose shard is s, in the writer's
 * order, each from produce(); fills their xxh64 and the file's name, size and xxh3-128. */
mp_errcode mp_write_shard(const mp_dest *d, const char *name, const mp_out_table *t, uint32_t s,
                          mp_produce_fn produce, void *ctx, mp_mfile *file, mp_err *err);

mp_errcode mp_gguf_convert_run(const char *src, const char *dst, const mp_convert_opts *o,
                               mp_convert_result *res, mp_err *err);

#endif
