/*
 * job.h - internal to convert/: the tail every job shares. A job (convert, GGUF convert, split,
 * GGUF split) plans its outputs, produces its weight files into an mp_dest, writes what only it
 * knows (config.json, GGUF metadata), then hands the rest to mp_job_finish(): the index, the
 * side files, the hashes of what lies in the destination, and modelprep.json. The caller then
 * commits the destination (or keeps it for --resume).
 */
#ifndef MP_JOB_H
#define MP_JOB_H

#include "manifest.h"

typedef struct mp_job_tail {
    const char *src;                /* SRC as given, recorded in the manifest */
    int argc;                       /* the command line, recorded in the manifest */
    char **argv;
    const char *source_quant;       /* "gptq gptq", "gguf", or NULL for a dense source */

    /* The tensors written, in manifest order: the index lists them (name -> file). */
    const mp_mtensor *tensors;
    size_t n_tensors;
    const char *index_name;         /* the index to write, or NULL for none */
    uint64_t tensor_bytes;          /* the index's total_size */

    /* Side files (tokenizer, ...) copied from side_dir unless listed in side_skip
     * (NULL-terminated); none when side_dir is NULL. n_side receives the count. */
    const char *side_dir;
    int src_is_dir;
    const char *const *side_skip;
    size_t n_side;

    /* The destination's files: the first n_files already hashed (the weight files); then the
     * index and each of `extra` (NULL-terminated) that exists, appended in that order, so
     * `files` has room for 1 + the number of extras beyond n_files. */
    mp_mfile *files;
    size_t n_files;
    const char *const *extra;

    /* The source's files: finished (joined and freed) here, whatever happens, when src_hash is
     * not NULL; otherwise src_files (the caller's) are recorded as they are. */
    mp_src_hash *src_hash;
    const mp_mfile *src_files;
    size_t n_src_files;

    const char *layout_json;        /* a JSON object describing what was written */
} mp_job_tail;

/* Writes the index (when t->index_name), copies the side files, hashes the index and the extra
 * files, collects the source hashes and writes modelprep.json into d. Updates t->n_side,
 * t->n_files and sets t->src_hash to NULL. */
mp_errcode mp_job_finish(const mp_dest *d, mp_job_tail *t, mp_err *err);

/* The shards of a job's n planned outputs, as huggingface_hub cuts them (mp_st_plan_shards):
 * the outputs lie `stride` bytes apart from `outs`, each with its mp_tensor_spec at spec_off and
 * a uint32_t shard number at shard_off, which this fills. *names receives the n_shards shard
 * names ("model-00001-of-00002.safetensors"); the caller frees it. */
mp_errcode mp_job_plan_shards(void *outs, size_t n, size_t stride, size_t spec_off, size_t shard_off,
                              uint64_t max_bytes, size_t *n_shards, char (**names)[64], mp_err *err);

#endif
