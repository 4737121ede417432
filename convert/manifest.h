/*
 * manifest.h - internal to convert/: modelprep.json, the record of what a run read and wrote
 * (doc/reference.md §4): tool and version, the command line, the source files with sizes and xxh3-128,
 * the layout written, every output file with size and xxh3-128, and every tensor with file,
 * dtype, shape, xxh64 and where it came from.
 */
#ifndef MP_MANIFEST_H
#define MP_MANIFEST_H

#include "../formats/formats.h"
#include "dest.h"

typedef struct mp_mfile {
    char name[512];
    uint64_t size;              /* on disk */
    uint8_t xxh128[16];         /* of the bytes on disk */
    const char *compression;    /* NULL, or "zstd": then the two below are recorded too */
    uint64_t raw_size;          /* decompressed */
    uint8_t raw_xxh128[16];
} mp_mfile;

typedef struct mp_mtensor {
    const char *name;
    const char *file;
    mp_dtype dtype;
    uint32_t n_dims;
    const uint64_t *shape;
    uint64_t xxh64;
    const char *origin;   /* "copy", "cast", "dequantize" */
} mp_mtensor;

typedef struct mp_manifest {
    int argc;
    char **argv;
    const char *source_path;
    const char *source_quant;      /* "gptq gptq" ..., or NULL for dense */
    const mp_mfile *source_files;
    size_t n_source_files;
    const char *layout_json;       /* a JSON object describing the written layout */
    const mp_mfile *files;
    size_t n_files;
    const mp_mtensor *tensors;
    size_t n_tensors;
} mp_manifest;

/* Writes modelprep.json into the destination. */
mp_errcode mp_manifest_write(const mp_dest *d, const mp_manifest *m, mp_err *err);

/* The source files' sizes and xxh3-128, computed on a background thread while the job runs
 * (the hashes need one more pass over the sources; overlapping it with the conversion keeps it
 * off the critical path). Start after opening the source; finish before writing the manifest.
 * finish() always joins and frees the job; on success *files (caller frees) holds one entry per
 * source file. */
typedef struct mp_src_hash mp_src_hash;
mp_errcode mp_src_hash_start(mp_src_hash **out, const mp_st_model *m, mp_err *err);
mp_errcode mp_src_hash_finish(mp_src_hash *h, mp_mfile **files, mp_err *err);

/* Size and xxh3-128 of a file already in the destination. */
mp_errcode mp_manifest_hash_file(const mp_dest *d, const char *name, mp_mfile *out, mp_err *err);

#endif
