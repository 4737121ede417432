/*
 * formats_internal.h - shared between the files of formats/; not part of the public API.
 */
#ifndef MP_FORMATS_INTERNAL_H
#define MP_FORMATS_INTERNAL_H

#include "formats.h"

#include <cjson/cJSON.h>

typedef struct mp_zst_src mp_zst_src;

/* One safetensors file with its validated header. */
typedef struct st_shard {
    mp_file *f;
    mp_zst_src *zst;         /* a zstd-compressed file: its decoder (safetensors_zst.c); owned */
    uint64_t size;           /* bytes of the safetensors stream: f->size, or decompressed */
    char *name;              /* relative to the checkpoint directory; owned */
    uint64_t header_len;     /* N */
    mp_tensor *tensors;      /* in data-offset order; owned */
    size_t n_tensors;
    char **meta;             /* __metadata__ as key, value, key, value ...; owned */
    size_t n_meta;
    void *map;               /* the whole file mapped by mp_st_file_map, once; owned */
    size_t map_len;
} st_shard;

/* The safetensors header limit (doc/formats/safetensors.md §4). */
#define MP_ST_MAX_HEADER 100000000ull

/* Reads and validates sf->f's header (checks 1-12 of doc/formats/safetensors.md §6) and
 * fills the tensors, tagging each with file index `file`. */
mp_errcode mp_st_file_parse(st_shard *sf, uint32_t file, mp_err *err);
void mp_st_file_release(st_shard *sf);

/* Reads len bytes at byte `offset` of the safetensors stream: pread for a plain file, streaming
 * decompression for a zstd one. */
mp_errcode mp_st_shard_read(const st_shard *sf, uint64_t offset, void *buf, size_t len,
                            mp_err *err);

/* ---- zstd-compressed files (safetensors_zst.c) */

/* 1 when the file starts with the zstd frame magic 28 B5 2F FD. A plain safetensors file cannot:
 * its first four bytes would make a header length above 4 GB, beyond MP_ST_MAX_HEADER. */
int mp_zst_is_zstd(const mp_file *f);
/* Walks the frame's block headers (no decompression) to check that the file is exactly one
 * complete zstd frame, refuses windows above MP_ZST_WINDOW_LOG_MAX and dictionaries, and finds
 * the decompressed size: the frame's content size, or, when the frame does not declare one, by
 * decompressing it once. *out is freed with mp_zst_src_free(). */
mp_errcode mp_zst_src_open(mp_zst_src **out, const mp_file *f, uint64_t *raw_size, mp_err *err);
/* Sequential reads of the decompressed stream: a read at or after the previous one's end skips
 * forward; one before it restarts decompression from the frame's start. Reaching the end checks
 * the frame's checksum and frees the decoder's memory. Thread-safe (one lock per file). */
mp_errcode mp_zst_src_read(mp_zst_src *z, const mp_file *f, uint64_t offset, void *buf,
                           size_t len, mp_err *err);
/* Frees the decoder's buffers and window until the next read (which restarts at the frame's
 * start when it is not ahead of the last); keeps what _open learnt. */
void mp_zst_src_idle(mp_zst_src *z);
/* Decompresses the whole file into memory (checking the frame's checksum), so that reads in
 * any order are copies; _unload gives the memory back. */
mp_errcode mp_zst_src_load(mp_zst_src *z, const mp_file *f, mp_err *err);
void mp_zst_src_unload(mp_zst_src *z);
void mp_zst_src_free(mp_zst_src *z);

/* ---- GGUF encoding (gguf_writer.c): a little-endian u64, and a GGUF string (u64 length, then
 * the n bytes), appended to b. */
void mp_gguf_put_u64(mp_buf *b, uint64_t v);
void mp_gguf_put_str(mp_buf *b, const char *s, size_t n);

#endif /* MP_FORMATS_INTERNAL_H */
