/*
 * formats_internal.h - shared between the files of formats/; not part of the public API.
 */
#ifndef MP_FORMATS_INTERNAL_H
#define MP_FORMATS_INTERNAL_H

#include "formats.h"

#include <cjson/cJSON.h>

/* One safetensors file with its validated header. */
typedef struct st_shard {
    mp_file *f;
    char *name;              /* relative to the checkpoint directory; owned */
    uint64_t header_len;     /* N */
    mp_tensor *tensors;      /* in data-offset order; owned */
    size_t n_tensors;
    char **meta;             /* __metadata__ as key, value, key, value ...; owned */
    size_t n_meta;
} st_shard;

/* The safetensors header limit (research/split-safetensors.md §1.4). */
#define MP_ST_MAX_HEADER 100000000ull

/* Reads and validates sf->f's header (checks 1-12 of research/split-safetensors.md §1.6) and
 * fills the tensors, tagging each with file index `file`. */
mp_errcode mp_st_file_parse(st_shard *sf, uint32_t file, mp_err *err);
void mp_st_file_release(st_shard *sf);

/* A JSON number that is an integer in [0, 2^53]: exact in a double, and beyond any real file. */
int mp_json_get_u64(const cJSON *item, uint64_t *out);
/* A JSON number that is an integer in [lo, hi] (both within +-2^53); the range is checked
 * before any conversion, so huge values are refused, not cast. */
int mp_json_get_i64(const cJSON *item, int64_t lo, int64_t hi, int64_t *out);

/* Reads a JSON file of at most max_bytes, checks it strictly (mp_json_check) and parses it; it
 * must hold an object ("<what> is not a JSON object" otherwise). *out is freed with
 * cJSON_Delete. */
mp_errcode mp_json_load_file(const char *path, size_t max_bytes, const char *what, cJSON **out,
                             mp_err *err);

#endif /* MP_FORMATS_INTERNAL_H */
