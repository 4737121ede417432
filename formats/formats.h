/*
 * formats.h - the public header of formats/: bytes on disk become typed tensors.
 *
 * Contents
 *   - mp_dtype: the 22 safetensors element types and their sizes;
 *   - mp_st_model: a safetensors checkpoint (one file, or a directory of shards named by
 *     model.safetensors.index.json, or a lone model.safetensors), validated on open; any file
 *     may be a zstd frame holding a safetensors file, read transparently but sequentially
 *     ("compressed files" below);
 *   - mp_st_writer: a streaming safetensors writer (plain, or through zstd), plus shard
 *     planning and the index;
 *   - mp_hf_config: the facts modelprep reads from config.json.
 *
 * Untrusted input: every byte of every file is treated as hostile. Opening validates the whole
 * header of every file (doc/formats/safetensors.md §6) before any tensor
 * is handed out; a violation is MP_E_INPUT with the file and tensor named. Nothing here prints,
 * exits or aborts on bad input.
 *
 * Memory: headers live in RAM (capped at 100,000,000 bytes each, the safetensors limit); tensor
 * data is never loaded, only read on demand by pread into caller buffers.
 */
#ifndef MP_FORMATS_H
#define MP_FORMATS_H

#include "../common/mp_common.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------- element types */

/* Order is the safetensors crate's `enum Dtype` (increasing alignment): the writer sorts by
 * descending value, as the reference writer does (doc/formats/safetensors.md §5). */
typedef enum {
    MP_DTYPE_BOOL,
    MP_DTYPE_F4,
    MP_DTYPE_F6_E2M3,
    MP_DTYPE_F6_E3M2,
    MP_DTYPE_U8,
    MP_DTYPE_I8,
    MP_DTYPE_F8_E5M2,
    MP_DTYPE_F8_E4M3,
    MP_DTYPE_F8_E8M0,
    MP_DTYPE_F8_E4M3FNUZ,
    MP_DTYPE_F8_E5M2FNUZ,
    MP_DTYPE_I16,
    MP_DTYPE_U16,
    MP_DTYPE_F16,
    MP_DTYPE_BF16,
    MP_DTYPE_I32,
    MP_DTYPE_U32,
    MP_DTYPE_F32,
    MP_DTYPE_C64,
    MP_DTYPE_F64,
    MP_DTYPE_I64,
    MP_DTYPE_U64,
    MP_DTYPE_COUNT
} mp_dtype;

const char *mp_dtype_name(mp_dtype t);   /* "BF16" */
unsigned mp_dtype_bits(mp_dtype t);      /* bits per element: 4 for F4, 64 for C64 */
/* Looks a safetensors dtype string up, exact and case-sensitive. Returns 0 when unknown. */
int mp_dtype_parse(const char *s, mp_dtype *out);

/* Bytes of `n_elems` elements; 1 on overflow or when sub-byte elements do not fill whole bytes
 * (*why is then "overflow" or "partial byte"). */
int mp_dtype_nbytes(mp_dtype t, uint64_t n_elems, uint64_t *out, const char **why);

/* One little-endian F16, BF16, F32 or F64 value at p as f32 (F64 rounded to nearest); any other
 * t is read as F32. Inline: the dequantizers call it per scale or element. */
static inline float mp_dtype_load_f32(const uint8_t *p, mp_dtype t)
{
    if (t == MP_DTYPE_F16) return mp_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
    if (t == MP_DTYPE_BF16) return mp_bf16_to_f32((uint16_t)(p[0] | p[1] << 8));
    if (t == MP_DTYPE_F8_E8M0) return mp_e8m0_to_f32(p[0]); /* 0xFF is NaN, as torch reads it */
    if (t == MP_DTYPE_F64) {
        uint64_t u = mp_read_le64(p);
        double d;
        memcpy(&d, &u, sizeof d);
        return (float)d;
    }
    uint32_t u = mp_read_le32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---------------------------------------------------------------- tensors */

#define MP_MAX_DIMS 8

typedef struct mp_tensor {
    char *name;
    mp_dtype dtype;
    uint32_t n_dims;
    uint64_t shape[MP_MAX_DIMS];  /* logical elements per axis, outermost first */
    uint64_t n_elems;
    uint64_t n_bytes;
    uint64_t begin;               /* data_offsets[0], relative to the data buffer */
    uint64_t offset;              /* absolute byte offset in its file: 8 + header_len + begin */
    uint32_t file;                /* index into the model's files */
} mp_tensor;

/* "[4096, 11008]" into buf. */
void mp_shape_format(const mp_tensor *t, char *buf, size_t cap);

/* ---------------------------------------------------------------- safetensors reader */

typedef struct mp_st_model mp_st_model;

/* Opens a .safetensors file, or a directory holding model.safetensors.index.json (shards named
 * by its weight_map) or a lone model.safetensors. Every file's header is validated in full; an
 * index naming a missing shard, a tensor absent from its shard, a shard name that would leave
 * the directory, or a tensor defined in two shards is MP_E_INPUT. *out is NULL on failure;
 * free with mp_st_close(). */
mp_errcode mp_st_open(mp_st_model **out, const char *path, mp_err *err);
void mp_st_close(mp_st_model *m);

/* Tensors in natural name order ("layers.2" before "layers.10"). Pointers stay valid until
 * mp_st_close(). */
size_t mp_st_n_tensors(const mp_st_model *m);
const mp_tensor *mp_st_tensor(const mp_st_model *m, size_t i);
const mp_tensor *mp_st_find(const mp_st_model *m, const char *name);
/* The i of mp_st_tensor(m, i) named `name`, or SIZE_MAX (a binary search). */
size_t mp_st_index_of(const mp_st_model *m, const char *name);

/* Files in the order opened (index order for a sharded checkpoint). */
size_t mp_st_n_files(const mp_st_model *m);
const char *mp_st_file_name(const mp_st_model *m, size_t i);  /* relative to mp_st_dir() */
const mp_file *mp_st_file(const mp_st_model *m, size_t i);
uint64_t mp_st_header_len(const mp_st_model *m, size_t i);    /* N of file i */
size_t mp_st_file_n_meta(const mp_st_model *m, size_t i);
void mp_st_file_meta(const mp_st_model *m, size_t i, size_t j, const char **key,
                     const char **value);

/* The directory holding the checkpoint (config.json lives there); "." for a bare file name. */
const char *mp_st_dir(const mp_st_model *m);
/* 1 when opened through an index (model.safetensors.index.json, or
 * model.safetensors.zst.index.json for a compressed split). */
int mp_st_is_sharded(const mp_st_model *m);
/* The index's file name, or NULL when not sharded. */
const char *mp_st_index_name(const mp_st_model *m);

/* Reads len bytes of tensor t starting at byte `at` of the tensor. Asking past the tensor's end
 * is a programmer error (assert). For a zstd-compressed file the read is a streaming
 * decompression: reads in file order (mp_st_file_tensor) cost one pass, a read before the
 * previous one restarts the file's frame (see "compressed files" below). */
mp_errcode mp_st_read(const mp_st_model *m, const mp_tensor *t, uint64_t at, void *buf,
                      size_t len, mp_err *err);

/* len bytes of tensor t from byte `at`, mapped read-only from a plain file (MAP_POPULATE): for
 * zero-copy paths, which also need where they lie (fd, offset) to hand to the kernel. */
typedef struct mp_st_span {
    const uint8_t *bytes;
    int fd;
    uint64_t offset;
    const char *path; /* the file's, for messages */
    void *map;       /* the page-aligned mapping */
    size_t map_len;
} mp_st_span;

/* 1 with *s filled; 0 for a compressed file, a file now shorter than the range (it would fault)
 * or when the mapping fails: read with mp_st_read() then, which reports what is wrong. */
int mp_st_map(const mp_st_model *m, const mp_tensor *t, uint64_t at, size_t len, mp_st_span *s);
void mp_st_unmap(mp_st_span *s);

/* Reads rows [r0, r1) x columns [c0, c1) of a 2-D tensor of whole-byte elements into buf,
 * packed row after row: one read when the columns span whole rows, else one per row. */
mp_errcode mp_st_read_block(const mp_st_model *m, const mp_tensor *t, uint64_t r0, uint64_t r1,
                            uint64_t c0, uint64_t c1, void *buf, mp_err *err);

/* File i mapped whole and read-only, made on the first call (from any thread) and kept until
 * mp_st_close: nothing is read ahead, so a sparse reader (verify's sampled rows, a column of a
 * [K/8, N] code tensor) costs the pages it touches, not the file, and no read call per piece;
 * those pages count in the resident set while mapped (file pages, which the kernel may drop).
 * NULL for a compressed file, a file now shorter than it was when opened, or when mapping
 * fails. A file cut short while mapped would fault (SIGBUS) on the lost pages: use this for
 * files that are not being written. Tensor t lies at mp_st_file_map(m, t->file) + t->offset. */
const uint8_t *mp_st_file_map(const mp_st_model *m, size_t i);
/* mp_st_read_block gathered from the file's mapping (mp_st_file_map) when it has one: a block
 * of many short rows (the columns of a few rows of W in a [K/8, N] tensor) is one copy per row
 * from memory, not one read call per row; else exactly mp_st_read_block. */
mp_errcode mp_st_gather_block(const mp_st_model *m, const mp_tensor *t, uint64_t r0, uint64_t r1,
                              uint64_t c0, uint64_t c1, void *buf, mp_err *err);

/* ---------------------------------------------------------------- compressed files
 *
 * A checkpoint file may be one zstd frame holding a safetensors file (`X.safetensors.zst`, as
 * `modelprep split --compress zstd` writes them); it is recognised by the zstd magic, whatever
 * its name, and a directory may be opened through model.safetensors.zst.index.json, whose
 * weight_map names such files. Everything above then works on the decompressed bytes: header,
 * tensors (offsets are in the decompressed stream), mp_st_read.
 *
 * Reads of a compressed file are sequential, never random access: reading in file order costs
 * one decompression pass in bounded memory (the frame's window, at most
 * 2^MP_ZST_WINDOW_LOG_MAX and never more than the file's decompressed size, plus 256 KiB),
 * which is freed when the end of the file is reached. A read before the previous read's end
 * restarts decompression from the start of the file. Opening validates the frame structure
 * (one complete frame, no trailing bytes, no dictionary, window within the limit) and the
 * safetensors header against the decompressed size; corruption inside the compressed data is
 * found when it is read (and the frame checksum, when present, when its end is read): all of
 * these are MP_E_INPUT or MP_E_UNSUPPORTED naming the file (and the tensor, for mp_st_read).
 */

#define MP_ZST_WINDOW_LOG_MAX 27   /* 128 MiB, zstd's own default limit, set explicitly */

typedef enum {
    MP_COMPRESS_NONE,
    MP_COMPRESS_ZSTD,
    MP_COMPRESS_COUNT
} mp_compress;

mp_compress mp_st_file_compression(const mp_st_model *m, size_t i);
/* Bytes of file i's safetensors stream: its size on disk, or decompressed. */
uint64_t mp_st_file_raw_size(const mp_st_model *m, size_t i);
/* Holds a compressed file's decompressed bytes in memory, so that reads in any order cost a copy
 * instead of a restarted decompression (verify's random row reads); a plain file is left alone.
 * The memory is the file's decompressed size, until mp_st_file_unload(). */
mp_errcode mp_st_file_load(const mp_st_model *m, size_t i, mp_err *err);
void mp_st_file_unload(const mp_st_model *m, size_t i);
/* Reads len bytes at `at` of file i's (decompressed) safetensors stream, header included. */
mp_errcode mp_st_file_read_raw(const mp_st_model *m, size_t i, uint64_t at, void *buf,
                               size_t len, mp_err *err);
/* File i's tensors in data-offset order, the order to read a compressed file in. */
size_t mp_st_file_n_tensors(const mp_st_model *m, size_t i);
const mp_tensor *mp_st_file_tensor(const mp_st_model *m, size_t i, size_t j);

/* One sequential pass over file i's safetensors stream (decompressed when compressed), through
 * the caller's buffer buf of cap bytes (any size > 0): the xxh3-128 of the whole stream in
 * canonical bytes (raw_xxh128, may be NULL) and the xxh64 of each tensor (tensor_xxh64[j] for
 * mp_st_file_tensor(m, i, j); may be NULL). For `hash` and `verify`: on a compressed split, the
 * first equals the manifest's uncompressed_xxh3_128, the second its per-tensor xxh64. */
mp_errcode mp_st_file_digest(const mp_st_model *m, size_t i, uint64_t *tensor_xxh64,
                             uint8_t raw_xxh128[16], void *buf, size_t cap, mp_err *err);

/* ---------------------------------------------------------------- safetensors writer */

/* What a writer needs to know of a tensor before any byte is written. */
typedef struct mp_tensor_spec {
    const char *name;
    mp_dtype dtype;
    uint32_t n_dims;
    uint64_t shape[MP_MAX_DIMS];
} mp_tensor_spec;

typedef struct mp_st_writer mp_st_writer;

/* Creates `path` (O_EXCL: an existing file is MP_E_IO) and writes its header at once:
 * tensors sorted by descending element size then name, so each is naturally aligned; the JSON
 * compact and padded with spaces to a multiple of 8; __metadata__ = {"format": "pt"} followed
 * by the n_meta extra string pairs meta[2j] -> meta[2j+1]. Duplicate names, overflowing shapes
 * and more than MP_MAX_DIMS dims are MP_E_INPUT. The specs are copied. */
mp_errcode mp_st_writer_open(mp_st_writer **out, const char *path, const mp_tensor_spec *specs,
                             size_t n, const char *const *meta, size_t n_meta, mp_err *err);

/* Index (into the specs given to _open) of the tensor whose bytes come next, or SIZE_MAX when
 * every tensor is complete. Tensors are written in this order, each in as many calls to
 * mp_st_writer_write() as the caller likes. */
size_t mp_st_writer_next(const mp_st_writer *w);
/* Bytes still owed to the current tensor. */
uint64_t mp_st_writer_remaining(const mp_st_writer *w);

/* Appends bytes to the current tensor; more than it has room for is MP_E_INPUT (a caller bug
 * reported, not asserted, since sizes may come from a source file). */
mp_errcode mp_st_writer_write(mp_st_writer *w, const void *buf, size_t len, mp_err *err);
/* Like mp_st_writer_write() for the len bytes of a mapped span (mp_st_map): the kernel copies
 * them from the span's file (copy_file_range, no byte through user space) while the hashes read
 * the mapping. Falls back to write() where the file systems refuse; a compressing writer always
 * writes. */
mp_errcode mp_st_writer_copy(mp_st_writer *w, const mp_st_span *src, size_t len, mp_err *err);
/* Appends bytes [at, at + len) of tensor t of m: mapped and copied by the kernel from a plain
 * file (mp_st_map, mp_st_writer_copy), read through buf (cap bytes) otherwise. What split and
 * convert use for every byte they pass through unchanged. */
mp_errcode mp_st_writer_copy_from(mp_st_writer *w, const mp_st_model *m, const mp_tensor *t, uint64_t at,
                                  size_t len, void *buf, size_t cap, mp_err *err);

/* Once every tensor is complete: the xxh64 of each tensor's bytes (indexed like the specs given
 * to _open; the llama-gguf-hash convention, seed 0) and the xxh3-128 of the whole file in
 * canonical bytes. Either output may be NULL. */
void mp_st_writer_digest(const mp_st_writer *w, uint64_t *tensor_xxh64, uint8_t file_xxh128[16]);

/* Checks every byte was written, flushes and fsyncs, closes. The writer is freed either way. */
mp_errcode mp_st_writer_finish(mp_st_writer *w, mp_err *err);

/* zstd output: like mp_st_writer_open(), but the file is one zstd frame (content size declared,
 * checksum on) whose decompressed bytes are exactly those mp_st_writer_open() would write.
 * Compression streams as the bytes come; `workers` >= 1 zstd threads (ZSTD_c_nbWorkers; the
 * output does not depend on their number). A level outside MP_ZSTD_LEVEL_MIN..MAX is
 * MP_E_USAGE. A failed write names the file, the compressed bytes written and how many of the
 * uncompressed bytes the compressor had been given. */
#define MP_ZSTD_LEVEL_MIN 1
#define MP_ZSTD_LEVEL_MAX 19
#define MP_ZSTD_LEVEL_DEFAULT 3
mp_errcode mp_st_writer_open_zstd(mp_st_writer **out, const char *path,
                                  const mp_tensor_spec *specs, size_t n, const char *const *meta,
                                  size_t n_meta, int level, int workers, mp_err *err);

/* What a finished file holds: size and xxh3-128 (canonical) of the bytes on disk, and of the
 * safetensors stream (the same for a plain file; the decompressed bytes for zstd). */
typedef struct mp_st_written {
    uint64_t size;
    uint8_t xxh128[16];
    uint64_t raw_size;
    uint8_t raw_xxh128[16];
} mp_st_written;

/* mp_st_writer_finish() that also reports what was written (out may be NULL). */
mp_errcode mp_st_writer_finish_stat(mp_st_writer *w, mp_st_written *out, mp_err *err);

/* Closes without finishing and unlinks the partial file. Accepts NULL. */
void mp_st_writer_abort(mp_st_writer *w);

/* The exact size of the file mp_st_writer_open() would write for these tensors, without
 * creating anything: for free-space checks before a long job. */
mp_errcode mp_st_file_size_of(const mp_tensor_spec *specs, size_t n, const char *const *meta,
                              size_t n_meta, uint64_t *size, mp_err *err);

/* Total file size the writer will produce (header included). */
uint64_t mp_st_writer_file_size(const mp_st_writer *w);

/* ---------------------------------------------------------------- sharded checkpoints */

/* Greedy cut in the given order, as huggingface_hub does: a new shard starts when the next
 * tensor would push the current one past max_bytes; a tensor larger than max_bytes gets a shard
 * of its own. max_bytes = 0 means one shard. shard_of[i] receives the shard of tensor i.
 * Returns the number of shards. */
size_t mp_st_plan_shards(const mp_tensor_spec *specs, size_t n, uint64_t max_bytes,
                         uint32_t *shard_of);

/* "model-00002-of-00005.safetensors", or "model.safetensors" when n_shards == 1. */
void mp_st_shard_name(size_t shard, size_t n_shards, char *buf, size_t cap);

/* Writes model.safetensors.index.json text: {"metadata": {"total_size": T}, "weight_map":
 * {...}} with keys sorted and two-space indent, as transformers writes it. total_size is the sum
 * of tensor bytes, headers excluded. */
mp_errcode mp_st_index_json(mp_buf *out, const char *const *names, const char *const *files,
                            size_t n, uint64_t total_size, mp_err *err);

/* ---------------------------------------------------------------- config.json */

typedef struct mp_quant_summary {
    int present;                 /* 1 when a quantization config was found */
    char source[32];             /* "config.json", "quantize_config.json", "quant_config.json" */
    char quant_method[32];       /* "gptq", "awq", "auto-round", "compressed-tensors", ... */
    char format[48];             /* checkpoint_format / version / packing_format / format */
    int bits;                    /* -1 when absent */
    int group_size;              /* -1 means per-channel (one group over K); 0 when absent */
    int sym;                     /* 1, 0, or -1 when absent */
    int desc_act;                /* 1, 0, or -1 when absent */
    int config_groups;           /* compressed-tensors: config groups read (0: none) */
    int mixed;                   /* 1 when they disagree: bits, group, sym, desc_act unset */
    struct mp_quant_group {      /* the first MP_QUANT_GROUPS_SHOWN config groups, in file order */
        char name[32];           /* "group_0" */
        char targets[96];        /* its targets, comma-separated (cut short) */
        int bits, group_size, sym, desc_act; /* as above, for this group */
    } groups[8];
} mp_quant_summary;

#define MP_QUANT_GROUPS_SHOWN 8

typedef struct mp_hf_config {
    int present;                 /* 1 when config.json exists */
    char architecture[128];      /* architectures[0] */
    char model_type[64];
    char torch_dtype[16];
    int64_t num_hidden_layers;   /* -1 when absent */
    int64_t num_nextn_predict_layers; /* DeepSeek's MTP layers, numbered after the others; 0 when absent */
    int tie_word_embeddings;     /* 1, 0, or -1 when absent */
    int64_t num_experts;         /* routed experts (n_routed_experts, num_local_experts or num_experts);
                                    0 when absent or not a count */
    mp_quant_summary quant;
} mp_hf_config;

/* Reads config.json (and quantize_config.json / quant_config.json when config.json has no
 * quantization_config) from `dir`. A missing config.json is not an error: present stays 0.
 * Malformed JSON or a wrongly typed field is MP_E_INPUT naming the file and the key. */
mp_errcode mp_hf_config_load(mp_hf_config *cfg, const char *dir, mp_err *err);

/* Every number in a tensor name of m (doc/limits.md, "Numbers in names"): the component after
 * "layers", "h" or "blk", or after "experts", that starts with a digit, a sign or a space must be
 * a decimal with no sign and no leading zero, at most 2^31 - 1 (layers) or 2^32 - 1 (experts),
 * followed by '.' or the end of the name. A layer of the decoder stack ("model.layers.N",
 * "model.language_model.layers.N", "transformer.h.N", DeepSeek-V4's "layers.N") is below cfg's num_hidden_layers (plus
 * num_nextn_predict_layers), an expert below cfg's num_experts, where config.json gives them.
 * MP_E_INPUT naming the file and the tensor otherwise. */
mp_errcode mp_st_check_name_numbers(const mp_st_model *m, const mp_hf_config *cfg, mp_err *err);

/* ---------------------------------------------------------------- JSON values (cJSON) */

struct cJSON;

/* A JSON number that is an integer in [0, 2^53]: exact in a double, and beyond any real file. */
int mp_json_get_u64(const struct cJSON *item, uint64_t *out);
/* A JSON number that is an integer in [lo, hi] (both within +-2^53); the range is checked
 * before any conversion, so huge values are refused, not cast. */
int mp_json_get_i64(const struct cJSON *item, int64_t lo, int64_t hi, int64_t *out);

/* Reads a JSON file of at most max_bytes, checks it strictly (mp_json_check) and parses it; it
 * must hold an object ("<what> is not a JSON object" otherwise). *out is freed with
 * cJSON_Delete. */
mp_errcode mp_json_load_file(const char *path, size_t max_bytes, const char *what,
                             struct cJSON **out, mp_err *err);

/* ---------------------------------------------------------------- quantization schemes */

/*
 * A quantized linear W [N out, K in] is stored as packed integer codes q, scales s and zero
 * points z, with w[n][k] = s[n][g] * (q[n][k] - z[n][g]) and g = g_idx[k] (default k / group).
 * The scheme readers group a checkpoint's raw tensors into such linears and say exactly where
 * each part lives and how it is packed (doc/formats/README.md §2). They do not decode
 * anything: the CPU reference in verify/ and the layout transformer in repack/ do, each on its
 * own, so that one can judge the other.
 */

typedef enum {
    MP_QM_GPTQ,        /* AutoGPTQ / GPTQModel, and AutoRound's GPTQ exports */
    MP_QM_AWQ,         /* AutoAWQ, and AutoRound's AWQ exports */
    MP_QM_AUTOROUND,   /* quant_method "auto-round" / "intel/auto-round" */
    MP_QM_CT,          /* compressed-tensors pack-quantized */
    MP_QM_MODELPREP,   /* modelprep's own device layouts (quant_method "modelprep") */
    MP_QM_FP8,         /* DeepSeek / transformers fine-grained FP8 (quant_method "fp8") */
    MP_QM_MODELOPT,    /* NVIDIA ModelOpt (hf_quant_config.json, quant_method "modelopt") */
    MP_QM_MXFP4,       /* gpt-oss MXFP4 experts (quant_method "mxfp4") */
    MP_QM_BNB,         /* bitsandbytes 4-bit and LLM.int8 (quant_method "bitsandbytes") */
    MP_QM_COUNT
} mp_qmethod;

/* Where the codes are. "bitstream" means LSB-first: code i at bits [i*b, i*b+b) of the words
 * read as one little-endian bit string, so 3-bit codes straddle words (§2.2). */
typedef enum {
    MP_QPACK_KSTREAM_COLS,   /* int32 [ceil(K*b/32), N]: column n is a bitstream over k */
    MP_QPACK_KSTREAM_ROWS,   /* int32 [N, words]: row n is a bitstream over k (or padded, below) */
    MP_QPACK_K8_WORDS,       /* int32 [N, K/8], K-major: row n holds k sequentially, 8 nibbles a word */
    MP_QPACK_K2_BYTES,       /* uint8 [N, K/2], K-major: byte j of row n holds k = 2j (low nibble),
                                2j+1 (high) */
    MP_QPACK_N8_INTERLEAVED, /* int32 [K, N/8], N-major: nibble i of word c is column
                                8c + [0,2,4,6,1,3,5,7][i] */
    MP_QPACK_FLOAT8,         /* one-byte float codes [N, K] (F8_E4M3 or F8_E5M2), row-major */
    MP_QPACK_FP4,            /* E2M1 codes, two a byte along K, element 2i in the low nibble: uint8
                                rows of K/2 bytes (NVFP4, MXFP4; doc/formats/fp4.md) */
    MP_QPACK_NIBBLES_FLAT,   /* bytes of two 4-bit codes over the flattened [N * K], element 2i in
                                the high nibble of byte i (bitsandbytes 4-bit) */
    MP_QPACK_INT8_ROWS,      /* signed bytes [N, K], row-major (bitsandbytes LLM.int8) */
    MP_QPACK_COUNT
} mp_qpack;

/* Where the zero points are. */
typedef enum {
    MP_QZERO_IMPLIED,   /* symmetric without a tensor: z = 2^(b-1) */
    MP_QZERO_GPTQ,      /* qzeros int32 [G, ceil(N*b/32)]: row g is a bitstream over n */
    MP_QZERO_AWQ_GEMM,  /* qzeros int32 [G, N/8], AWQ interleave */
    MP_QZERO_AWQ_GEMV,  /* qzeros int32 [N, W]: row n holds g sequentially, 8 nibbles a word */
    MP_QZERO_CT,        /* weight_zero_point int32 [ceil(N*b/32), G]: column g is a bitstream
                           over n (packed along dim 0) */
    MP_QZERO_COUNT
} mp_qzero;

typedef struct mp_scheme mp_scheme;

/* What one scale of a float-quantized linear covers (doc/formats/fp8.md). Every kind is a
 * block_n x block_k tile of W on a row-major grid [ceil(N/block_n), ceil(K/block_k)]: tensor is
 * one N x K tile, channel 1 x K, group 1 x group_size, block the config's block (ragged edges:
 * the last tile row or column covers fewer elements). */
typedef enum {
    MP_FSCALE_TENSOR,
    MP_FSCALE_CHANNEL,
    MP_FSCALE_GROUP,
    MP_FSCALE_BLOCK,
    MP_FSCALE_FLAT,     /* runs of block_k elements of the flattened N x K tensor (bitsandbytes
                           4-bit): the last may be shorter; block_n is 0, the grid [1, runs] */
    MP_FSCALE_COUNT
} mp_fscale;

const char *mp_fscale_name(mp_fscale s);   /* "tensor", "channel", "group", "block" */

/* Where a float format's producer rounds when it dequantizes (doc/formats/fp8.md "rounding"):
 * the reference reproduces it, and the value it returns in f32 rounds once more, to the
 * output dtype. */
typedef enum {
    MP_FROUND_F32,          /* f32(code) * f32(scale), rounded once to the output (DeepSeek) */
    MP_FROUND_SCALE_DTYPE,  /* the product rounded to the scale's dtype (compressed-tensors) */
    MP_FROUND_MODEL_DTYPE,  /* the scale rounded to the model's dtype first (ModelOpt) */
    MP_FROUND_OUT_DTYPE,    /* the f32 product rounded to round_dtype, the dtype the producer
                               dequantizes to (bitsandbytes QuantState.dtype) */
    MP_FROUND_COUNT
} mp_fround;

#define MP_QAUX_MAX 4

typedef struct mp_qlinear {
    char *prefix;                 /* "model.layers.0.mlp.down_proj" */
    mp_qmethod method;
    const mp_scheme *scheme;      /* the registry entry of its layout (below) */
    mp_qpack pack;                /* = scheme->pack */
    mp_qzero zero;
    const char *format;           /* "gptq", "gptq_v2", "gemm", "auto_round:auto_gptq", ... */
    uint32_t bits;
    uint32_t fields_per_word;     /* 0: dense bitstream; else codes per int32 word, high bits
                                     unused (compressed-tensors before dense packing) */
    uint32_t zero_offset;         /* added to a stored zero: 1 for GPTQ v1 ("z - 1"), else 0 */
    uint32_t code_xor;            /* stored code = q ^ code_xor: 8 for two's complement s4 */
    uint64_t n_rows;              /* N, out features */
    uint64_t k_cols;              /* K, in features */
    uint64_t group_size;          /* K for per-channel */
    uint64_t n_groups;            /* G */
    int sym;                      /* the config says symmetric */
    int act_order;                /* g_idx present and not k / group_size */
    int scales_nk;                /* 1: scales [N, >=G] (CT, GEMV); 0: [G, N] */
    const mp_tensor *qweight, *qzeros, *scales, *g_idx, *bias, *shape;
    /* Float layouts (scheme->elem != MP_ELEM_INT): qweight holds the codes [N, K], scales the
     * grid of scale_kind; each scale covers block_n rows x block_k columns. */
    mp_dtype elem_dtype;          /* F8_E4M3 or F8_E5M2, from the file (never from the config) */
    mp_fscale scale_kind;
    uint64_t block_n, block_k;
    uint64_t scale_rows, scale_cols; /* the grid: ceil(N / block_n), ceil(K / block_k) */
    mp_dtype round_dtype;         /* MP_FROUND_MODEL_DTYPE: the model's dtype; MP_FROUND_OUT_DTYPE:
                                     the producer's output dtype (BF16, F16); else COUNT */
    const mp_tensor *input_scale; /* activation scale: recognised, not used by dequantization */
    /* FP4 layouts (scheme->elem == MP_ELEM_FP4): the per-tensor F32 scale beside the block
     * scales (NVFP4), or NULL; and the experts of a stacked tensor (gpt-oss [E, N, K/32, 16]):
     * rows are then numbered e * (n_rows / n_experts) + n. 0 when not stacked. */
    const mp_tensor *global_scale;
    uint64_t n_experts;
    const mp_tensor *kv_scales[2]; /* KV-cache scales beside it (ModelOpt's k_scale, v_scale): not
                                      weights, dropped with the linear's scales by a dense convert */
    /* Layouts found by a marker tensor (scheme->markers; bitsandbytes). */
    const mp_tensor *marker;      /* the marker: bnb's quant_state JSON blob, or SCB */
    const mp_tensor *aux[MP_QAUX_MAX]; /* scheme->aux_names' tensors; NULL where absent */
    const char *elem_text;        /* inspect's element when it is not a dtype ("NF4"), or NULL */
    const float *code_table;      /* MP_ELEM_LUT4: the 16 values the codes decode to */
    int nested;                   /* bnb double quantization: scales are U8 codes into aux[2], */
    uint64_t nested_block;        /* times aux[1][b / nested_block], */
    float nested_offset;          /* plus this (f32) */
} mp_qlinear;

/* One FP4 block-scale byte as f32 (doc/formats/fp4.md §1): F8_E4M3 decoded (NVFP4); U8 or
 * F8_E8M0 as 2^(e - 127), computed as the producers' dequantizers compute it (torch's ldexp, CT's
 * 2.0 ** (e - 127)), so that 0xFF is 2^128 = +inf there, not E8M0's NaN (MXFP4). */
static inline float mp_fp4_scale_to_f32(uint8_t b, mp_dtype t)
{
    if (t == MP_DTYPE_F8_E4M3) return mp_e4m3_to_f32(b);
    if (b != 0xFF) return mp_e8m0_to_f32(b);
    uint32_t inf = 0x7F800000u;
    float f;
    memcpy(&f, &inf, sizeof f);
    return f;
}

typedef struct mp_qmodel mp_qmodel;

/* Reads the quantization config (config.json quantization_config, quantize_config.json,
 * quant_config.json in the checkpoint's directory), groups the tensors into quantized linears
 * and checks every shape against the config and against each other. A checkpoint without a
 * quantization config opens with no linears. Inconsistent input is MP_E_INPUT naming the linear
 * and the problem; a known but unhandled variant (Marlin, fp8, ...) is MP_E_UNSUPPORTED.
 * `m` must outlive the result. Free with mp_qmodel_free(). */
mp_errcode mp_qmodel_open(mp_qmodel **out, const mp_st_model *m, mp_err *err);
void mp_qmodel_free(mp_qmodel *q);

int mp_qmodel_quantized(const mp_qmodel *q);       /* 1 when a quantization config was found */
mp_qmethod mp_qmodel_method(const mp_qmodel *q);
/* The layout entry the quantization config picked (its linears' scheme, or its companion's), or
 * NULL when the checkpoint has no quantization config. */
const mp_scheme *mp_qmodel_layout(const mp_qmodel *q);
size_t mp_qmodel_n_linears(const mp_qmodel *q);
const mp_qlinear *mp_qmodel_linear(const mp_qmodel *q, size_t i);  /* natural prefix order */
/* The linear a tensor belongs to, or NULL for a dense tensor (embeddings, norms, biases that
 * stand alone, unquantized linears' weights, act.scales). A bias beside a qweight belongs to
 * its linear. */
const mp_qlinear *mp_qmodel_owner(const mp_qmodel *q, const mp_tensor *t);
/* Linears left unquantized: prefixes of ".weight" tensors of 2 dims not owned by any linear. */
size_t mp_qmodel_n_dense_linears(const mp_qmodel *q);
const char *mp_qmodel_dense_linear(const mp_qmodel *q, size_t i);

/* "gptq", "awq", "auto-round", "compressed-tensors", "modelprep" */
const char *mp_qmethod_name(mp_qmethod m);

/* ---------------------------------------------------------------- the scheme registry
 *
 * Everything modelprep knows about one quantization scheme or packed layout lives in one
 * registry entry, defined in its own file (formats/scheme_<name>.c) and listed once in
 * formats/registry.c: how a config announces it, its tensor names and shape rules, how its
 * codes and zero points are packed, its scale and zero conventions, what it can be as a target,
 * the quantization_config it writes, and the device kernel that runs it. The --to choices,
 * inspect's names, verify's kernel family and the help texts all come from the table; code
 * elsewhere asks the entry and never branches on which scheme it is. doc/adding-a-format.md
 * says how to add one.
 */

/* How b-bit fields lie in a 2-D tensor of containers. A "string" is one tensor row (along_rows)
 * or one tensor column; its fields are numbered from its first container, LSB first. The
 * logical element (n, x), where x is k for codes and g for zero points, lives in string n at
 * field x (string_is_n) or in string x at field n. */
typedef struct mp_packing {
    uint32_t container_bytes;  /* 4: int32 words; 1: uint8 */
    uint32_t bits;
    int along_rows;            /* 1: a string is a tensor row; 0: a tensor column */
    int string_is_n;           /* 1: string index n, field index x; 0: the reverse */
    int awq_order;             /* within each 32-bit word, field i holds element [0,2,4,6,1,3,5,7][i] */
    uint32_t fields_per_word;  /* 0: dense bitstream (fields may straddle); else padded words */
} mp_packing;

/* What a layout's codes are: packed integers, or float elements decoded by their bits. */
typedef enum {
    MP_ELEM_INT,
    MP_ELEM_FLOAT8,
    MP_ELEM_FP4,           /* E2M1 codes times a block scale (NVFP4, MXFP4) */
    MP_ELEM_LUT4,          /* 4-bit codes decoded through a 16-value f32 table (bnb NF4/FP4) */
    MP_ELEM_INT8_ABSMAX,   /* int8 codes times a row absmax / 127 (bnb LLM.int8) */
    MP_ELEM_COUNT
} mp_elem;

/* How stored zero points relate to z. */
typedef enum { MP_ZENC_IMPLIED, MP_ZENC_RAW, MP_ZENC_MINUS1 } mp_zenc;

/* What a scheme can be. */
enum { MP_SCHEME_SOURCE = 1, MP_SCHEME_TARGET = 2 };

/* Which dtype a target's scales take by default (--scale-dtype overrides). */
typedef enum {
    MP_SCALES_F16,         /* what GPTQ and AWQ loaders and kernels take */
    MP_SCALES_SOURCE,      /* the source's scale dtype */
    MP_SCALES_ACTIVATION   /* config.json's torch_dtype (the XPU kernels read scales so) */
} mp_scale_policy;

/* What the quantization_config writer of a target is given: the linears as planned, in order. */
typedef struct mp_scheme_job {
    const mp_qlinear *const *linears;
    size_t n_linears;
    const mp_qmodel *qm;          /* for its dense linears */
    uint32_t bits;                /* the first linear's */
    int64_t group_size;           /* the first grouped linear's, or -1 */
    int act_order;                /* any linear has a non-trivial g_idx */
    int zeros_written;            /* zero points are written (the target is asymmetric) */
    int s4;                       /* --int4 s4 */
    mp_dtype scale_dtype;         /* the first linear's written scale dtype */
} mp_scheme_job;

struct mp_qconfig;
struct cJSON;

struct mp_scheme {
    const char *name;             /* "gptq-v2": the --to spelling and inspect's name */
    const char *summary;          /* one line for help texts and the format table */
    unsigned roles;               /* MP_SCHEME_SOURCE | MP_SCHEME_TARGET */
    /* Recognition: the quant_method values that announce the scheme (NULL-terminated; NULL for
     * a layout only reached through another entry), and the reader of its config dialect, which
     * fills the base parameters and the per-module rules and picks the layout. */
    const char *const *methods;
    mp_qmethod method;
    mp_errcode (*read_config)(struct mp_qconfig *c, const struct cJSON *q, mp_err *err);
    /* Layout entries (pack != MP_QPACK_COUNT) describe the tensors of one linear. */
    mp_qpack pack;                /* geometry kind, for verify's independent reference */
    const char *codes_name, *zeros_name, *scales_name, *g_idx_name, *shape_name;
    mp_packing codes, zeros;      /* bits (and fields_per_word) filled in per linear */
    mp_zenc zenc;
    int scales_nk;                /* 1: scales [N, G]; 0: [G, N] */
    uint32_t bits_mask;           /* bit b set: b-bit codes are valid */
    const char *bits_text;        /* the same in words, for refusals */
    int act_order_ok;             /* can store a non-trivial g_idx */
    /* Checks the shapes of a linear whose parts were found by name, and fills N, K, G and the
     * zero-point kind. */
    mp_errcode (*check_shapes)(const mp_st_model *m, mp_qlinear *q, int64_t group_size,
                               mp_err *err);
    /* As a target. */
    int zeros_when_sym;           /* writes zeros even for a symmetric source (GPTQ, AWQ) */
    uint32_t n_multiple, k_multiple; /* N and K must be multiples of these */
    const uint32_t *group_sizes;  /* the group sizes its consumer takes, 0-terminated; NULL: any */
    const char *group_hint;       /* why other group sizes are refused (the consumer's limit) */
    mp_scale_policy scales;
    int per_module_params;        /* the config can give linears their own bits and groups */
    int g_idx_only_if_act;        /* g_idx written only when some linear needs one */
    int signed_int4;              /* --int4 s4 applies */
    mp_errcode (*write_config)(mp_buf *b, const mp_scheme *s, const mp_scheme_job *j,
                               mp_err *err);
    /* Verification: the kernel family, kernels/<kernel>.cl; NULL when there is none. */
    const char *kernel;
    /* Float layouts (doc/adding-a-format.md "float formats"). */
    mp_elem elem;                 /* MP_ELEM_INT for the packed-integer layouts */
    int (*is_codes)(const mp_tensor *t); /* a `codes_name` tensor is this layout's codes */
    const char *input_scale_name; /* the activation scale a linear may carry, or NULL */
    mp_fround fround;             /* where its producer's dequantization rounds */
    const char *scale_text;       /* scale semantics for inspect: "multiply" */
    const char *kv_scale_names[2]; /* KV-cache scales a linear may carry (ModelOpt), or NULL */
    /* FP4 layouts (MP_ELEM_FP4; doc/adding-a-format.md "FP4 formats"). */
    const char *format_name;      /* the value that picks it inside its method's dialect:
                                     compressed-tensors' "format", ModelOpt's "quant_algo" */
    uint32_t fp4_group;           /* K elements per block scale: 16 (NVFP4) or 32 (MXFP4) */
    const char *global_scale_name; /* the per-tensor F32 scale, or NULL */
    int global_divides;           /* 1: block scale / global (CT); 0: block scale * global */
    int fp4_zero_positive;        /* code 8 decodes to +0.0 (ModelOpt), not -0.0 */
    int fp4_ldexp;                /* an E8M0 0xFF scale is an exact ldexp by 128 (transformers:
                                     0.5 -> 2^127, 0 stays 0), not 2^128 = inf (compressed-tensors):
                                     applied as * 2^127 * 2 */
    int e8m0_nan;                 /* an E8M0 0xFF block scale is NaN, as torch's float8_e8m0fnu
                                     reads it (transformers' DeepSeek-V4 load), not 2^128 = inf */
    int fp4_codes_i8;             /* the codes are stored as I8 (DeepSeek-V4), not U8 */
    char name_sep;                /* between prefix and part names: '_' (gpt-oss), 0 for '.' */
    int dense_experts_kn;         /* the dense weight is `<prefix>` [E, K, N] (transformers'
                                     GptOssExperts), not `<prefix>.weight` [N, K] */
    /* Layouts whose linears are found by a marker tensor, `<prefix>.<marker>` (bitsandbytes:
     * the quant_state blob, SCB), not by the codes' name and dtype; NULL-terminated, or NULL. */
    const char *const *markers;
    const char *aux_names[MP_QAUX_MAX]; /* further parts a linear owns (NULL-padded) */
    /* A second layout the same checkpoint's linears take (DeepSeek-V4: FP4 routed experts beside
     * FP8 linears, doc/formats/deepseek-v4.md): a `codes_name` tensor this entry's is_codes
     * refuses but the companion's accepts makes a linear of the companion, with its own
     * parameters; NULL for none. */
    const struct mp_scheme *companion;
    /* A top-level config.json key that belongs to the quantization (DeepSeek-V4's expert_dtype):
     * a dense convert removes it with quantization_config; NULL for none. */
    const char *config_drop;
};

/* The table, in listing order; every entry is complete (tests/unit/test_registry.c walks it). */
size_t mp_scheme_count(void);
const mp_scheme *mp_scheme_at(size_t i);
/* The entry named `name`, or NULL. */
const mp_scheme *mp_scheme_find(const char *name);
/* The entry announced by a quant_method value, or NULL. */
const mp_scheme *mp_scheme_for_method(const char *quant_method);
/* The names of the entries with `role`, ", "-separated, into buf. */
void mp_scheme_names(unsigned role, char *buf, size_t cap);
/* NULL when entry s is complete, else what is missing ("no summary"): every entry has a name,
 * summary and role; a layout has its tensor names, packing, bit widths and shape check; a source
 * is announced (methods and a config reader) or reached through another entry's reader; a
 * target has its config writer, geometry limits and kernel family. tests/unit/test_registry.c
 * runs it over the table. */
const char *mp_scheme_check(const mp_scheme *s);
/* The entry with a name closest to `name` (edit distance at most 3) and `role`, or NULL: for
 * "did you mean". */
const mp_scheme *mp_scheme_nearest(const char *name, unsigned role);

/* ---------------------------------------------------------------- GGUF */

/*
 * GGUF, llama.cpp's container (doc/formats/gguf.md §1): v2 and v3, little-endian. A model is one
 * file or a split set "<prefix>-0000i-of-0000N.gguf" (split.no u16, split.count u16,
 * split.tensors.count i32). Opening validates every rule gguf.cpp's gguf_init_from_reader
 * enforces (§1.8) plus the model loader's split and bounds checks (§1.9): a violation is
 * MP_E_INPUT naming the file, the key or tensor, and the value against the allowed range.
 * Counts, lengths and sizes from the file go through checked arithmetic and are bounded by the
 * bytes left in the file before anything is allocated for them.
 *
 * Memory: the key/value metadata (strings and scalars) and tensor infos live in RAM; array
 * elements and tensor data stay in the file and are read on demand by pread.
 */

#define MP_GGUF_MAX_DIMS 4
#define MP_GGUF_MAX_NAME 64                  /* tensor names are at most 63 bytes */
#define MP_GGUF_DEFAULT_ALIGNMENT 32
#define MP_GGUF_MAX_STRING (1ull << 30)      /* bytes of one string */
#define MP_GGUF_MAX_ARRAY (1ull << 30)       /* elements of one array */

/* ggml_type ids (doc/formats/gguf.md §4). Ids 4, 5, 31-33 and 36-38 were removed from ggml. */
typedef enum {
    MP_GGUF_F32 = 0, MP_GGUF_F16 = 1, MP_GGUF_Q4_0 = 2, MP_GGUF_Q4_1 = 3, MP_GGUF_Q5_0 = 6,
    MP_GGUF_Q5_1 = 7, MP_GGUF_Q8_0 = 8, MP_GGUF_Q8_1 = 9, MP_GGUF_Q2_K = 10, MP_GGUF_Q3_K = 11,
    MP_GGUF_Q4_K = 12, MP_GGUF_Q5_K = 13, MP_GGUF_Q6_K = 14, MP_GGUF_Q8_K = 15,
    MP_GGUF_IQ2_XXS = 16, MP_GGUF_IQ2_XS = 17, MP_GGUF_IQ3_XXS = 18, MP_GGUF_IQ1_S = 19,
    MP_GGUF_IQ4_NL = 20, MP_GGUF_IQ3_S = 21, MP_GGUF_IQ2_S = 22, MP_GGUF_IQ4_XS = 23,
    MP_GGUF_I8 = 24, MP_GGUF_I16 = 25, MP_GGUF_I32 = 26, MP_GGUF_I64 = 27, MP_GGUF_F64 = 28,
    MP_GGUF_IQ1_M = 29, MP_GGUF_BF16 = 30, MP_GGUF_TQ1_0 = 34, MP_GGUF_TQ2_0 = 35,
    MP_GGUF_MXFP4 = 39, MP_GGUF_NVFP4 = 40, MP_GGUF_Q1_0 = 41, MP_GGUF_Q2_0 = 42,
    MP_GGUF_TYPE_COUNT = 43
} mp_gguf_type;

/* "Q4_K"; "type 99" style names are the caller's business: NULL for ids >= COUNT. */
const char *mp_gguf_type_name(uint32_t type);
/* Elements per block and bytes per block; 0 for removed and unknown ids. */
uint32_t mp_gguf_type_block(uint32_t type);
uint32_t mp_gguf_type_size(uint32_t type);
/* 1 when mp_gguf_dequantize() handles the type. */
int mp_gguf_type_dequantizable(uint32_t type);

/* Metadata value types (doc/formats/gguf.md §1.2), stored as int32 in the file. */
typedef enum {
    MP_GGUF_V_U8, MP_GGUF_V_I8, MP_GGUF_V_U16, MP_GGUF_V_I16, MP_GGUF_V_U32, MP_GGUF_V_I32,
    MP_GGUF_V_F32, MP_GGUF_V_BOOL, MP_GGUF_V_STR, MP_GGUF_V_ARR, MP_GGUF_V_U64, MP_GGUF_V_I64,
    MP_GGUF_V_F64, MP_GGUF_V_COUNT
} mp_gguf_vtype;

const char *mp_gguf_vtype_name(mp_gguf_vtype t);  /* "u32", "str", "arr", ... as gguf.cpp */
/* Bytes of one scalar of the type; 0 for STR and ARR. */
size_t mp_gguf_vtype_size(mp_gguf_vtype t);

typedef struct mp_gguf_kv {
    char *key;                 /* NUL-terminated; never empty */
    mp_gguf_vtype type;
    mp_gguf_vtype elem;        /* arrays: the element type (never ARR) */
    uint64_t n;                /* arrays: element count; 1 otherwise */
    union {
        uint64_t u;            /* U8..U64 and BOOL (0 or the stored byte) */
        int64_t i;             /* I8..I64, sign-extended */
        double f;              /* F32, F64 */
    } v;
    char *str;                 /* STR: the bytes plus a NUL (the string may hold NULs) */
    uint64_t str_len;
    uint64_t value_offset;     /* absolute offset of the encoded value after its type field(s) */
    uint64_t value_len;        /* its length in bytes: what a writer copies verbatim */
} mp_gguf_kv;

typedef struct mp_gguf_tensor {
    char *name;
    uint32_t type;             /* mp_gguf_type */
    uint32_t n_dims;           /* as stored, 0..4 */
    uint64_t ne[MP_GGUF_MAX_DIMS];  /* ne[0] innermost (the row); missing dims are 1 */
    uint64_t n_elems;
    uint64_t n_bytes;          /* ggml_nbytes: rows * ne[0] / block * block bytes */
    uint64_t rel_offset;       /* as stored: relative to the file's data section */
    uint64_t offset;           /* absolute offset in its file */
    uint32_t file;             /* index into the model's files */
} mp_gguf_tensor;

typedef struct mp_gguf mp_gguf;

/* 1 when `path` looks like GGUF: a file named *.gguf or starting with "GGUF", or a directory
 * with a *.gguf file and no safetensors weights. Reads at most 4 bytes; never fails. */
int mp_gguf_probe(const char *path);

/* Opens a GGUF file, the split set it belongs to (every split, from 00001, in the same
 * directory), or a directory holding one GGUF file or one split set. Every file is validated in
 * full; a split set is checked as llama.cpp's loader does (split.no of each file, one
 * split.count, the tensor total, names unique across splits) and no split may resolve outside
 * the directory. *out is NULL on failure; free with mp_gguf_close(). */
mp_errcode mp_gguf_open(mp_gguf **out, const char *path, mp_err *err);
void mp_gguf_close(mp_gguf *g);

uint32_t mp_gguf_version(const mp_gguf *g);      /* of the first file */
uint32_t mp_gguf_alignment(const mp_gguf *g);    /* of the first file */
const char *mp_gguf_dir(const mp_gguf *g);

/* Metadata of the first file, in file order. Pointers stay valid until mp_gguf_close(). */
size_t mp_gguf_n_kv(const mp_gguf *g);
const mp_gguf_kv *mp_gguf_kv_at(const mp_gguf *g, size_t i);
const mp_gguf_kv *mp_gguf_find_kv(const mp_gguf *g, const char *key);
/* The value of an integer-typed scalar key (any of U8..I64, BOOL excluded); 0 when the key is
 * absent or of another type, 1 on success. Unsigned values above INT64_MAX are refused. */
int mp_gguf_get_int(const mp_gguf *g, const char *key, int64_t *out);
/* F32, F64 or any integer type as a double. */
int mp_gguf_get_float(const mp_gguf *g, const char *key, double *out);
/* A STR value, or NULL. */
const char *mp_gguf_get_str(const mp_gguf *g, const char *key);

/* Element i of an array of numbers or bools: the raw little-endian bytes (elem size) into buf.
 * Element i of an array of strings: up to cap-1 bytes and a NUL into buf, the full length in
 * *len (may be NULL). Reads the file; O(i) for strings. */
mp_errcode mp_gguf_arr_get(const mp_gguf *g, const mp_gguf_kv *kv, uint64_t i, void *buf,
                           size_t cap, uint64_t *len, mp_err *err);

/* Tensors in file order (split after split). */
size_t mp_gguf_n_tensors(const mp_gguf *g);
const mp_gguf_tensor *mp_gguf_tensor_at(const mp_gguf *g, size_t i);
const mp_gguf_tensor *mp_gguf_find(const mp_gguf *g, const char *name);

size_t mp_gguf_n_files(const mp_gguf *g);
const char *mp_gguf_file_name(const mp_gguf *g, size_t i);   /* relative to mp_gguf_dir() */
const mp_file *mp_gguf_file(const mp_gguf *g, size_t i);
uint64_t mp_gguf_data_offset(const mp_gguf *g, size_t i);    /* start of file i's data */

/* File i mapped whole and read-only, as mp_st_file_map does for safetensors (made on the first
 * call, from any thread, kept until mp_gguf_close; NULL for an empty file, one now shorter than
 * when opened, or when mapping fails). Tensor t lies at mp_gguf_file_map(g, t->file) + t->offset. */
const uint8_t *mp_gguf_file_map(const mp_gguf *g, size_t i);
/* Reads len bytes of tensor t starting at byte `at` of the tensor (at + len within it). */
mp_errcode mp_gguf_read(const mp_gguf *g, const mp_gguf_tensor *t, uint64_t at, void *buf,
                        size_t len, mp_err *err);

/* Dequantizes n_elems elements (a whole number of blocks) of `type` from src to f32, exactly as
 * ggml's dequantize_row_* (doc/formats/gguf.md §6). Integer types convert to the nearest float.
 * Runs on OpenMP threads when the span is large. A type without a dequantizer is
 * MP_E_UNSUPPORTED; n_elems not a multiple of the block is MP_E_INPUT. */
mp_errcode mp_gguf_dequantize(uint32_t type, const void *src, float *dst, uint64_t n_elems,
                              mp_err *err);

/* ---------------------------------------------------------------- GGUF writer */

/*
 * Writes GGUF v3: header, metadata, tensor infos, zero padding to the alignment, then each
 * tensor's bytes padded to the alignment, the last one included (doc/formats/gguf.md §1.3).
 * A "general.alignment" key (u32, power of two) sets the alignment the offsets and padding use,
 * unlike upstream's writer that ignores it. Usage: add metadata and tensors, begin, then write
 * the tensors' bytes in the order added, then finish (or abort).
 */
typedef struct mp_gguf_writer mp_gguf_writer;

/* Creates `path` (O_EXCL). */
mp_errcode mp_gguf_writer_open(mp_gguf_writer **out, const char *path, mp_err *err);
/* A key with its encoded value (the bytes after the type field(s), as mp_gguf_kv's value_len
 * describes them). elem is the element type of arrays, else ignored. Duplicate and empty keys,
 * nested arrays and a bad general.alignment are MP_E_INPUT. */
mp_errcode mp_gguf_writer_add_kv(mp_gguf_writer *w, const char *key, mp_gguf_vtype type,
                                 mp_gguf_vtype elem, const void *value, size_t len, mp_err *err);
mp_errcode mp_gguf_writer_add_u32(mp_gguf_writer *w, const char *key, uint32_t v, mp_err *err);
mp_errcode mp_gguf_writer_add_u16(mp_gguf_writer *w, const char *key, uint16_t v, mp_err *err);
mp_errcode mp_gguf_writer_add_i32(mp_gguf_writer *w, const char *key, int32_t v, mp_err *err);
mp_errcode mp_gguf_writer_add_str(mp_gguf_writer *w, const char *key, const char *s, mp_err *err);
/* Declares the next tensor: its bytes follow in this order. n_dims is written as given. */
mp_errcode mp_gguf_writer_add_tensor(mp_gguf_writer *w, const char *name, uint32_t type,
                                     uint32_t n_dims, const uint64_t *ne, mp_err *err);
/* Writes header, metadata and infos; after it, only tensor bytes. */
mp_errcode mp_gguf_writer_begin(mp_gguf_writer *w, mp_err *err);
/* Appends bytes to the current tensor (padding is inserted between tensors). */
mp_errcode mp_gguf_writer_write(mp_gguf_writer *w, const void *buf, size_t len, mp_err *err);
/* Like mp_gguf_writer_write() for the len bytes of a mapped span (mp_st_map) that lie within the
 * current tensor: the kernel copies them from the span's file (copy_file_range), write() of the
 * mapping where the file systems refuse. */
mp_errcode mp_gguf_writer_copy(mp_gguf_writer *w, const mp_st_span *src, size_t len, mp_err *err);
/* Checks every byte was written, pads, fsyncs, closes; frees w either way. */
mp_errcode mp_gguf_writer_finish(mp_gguf_writer *w, mp_err *err);
/* Closes and unlinks a partial file; accepts NULL. */
void mp_gguf_writer_abort(mp_gguf_writer *w);

typedef struct mp_gguf_copy_opts {
    uint32_t alignment;          /* 0: the source's */
    uint64_t split_max_tensors;  /* > 0: a new split every N tensors (gguf-split's default: 128) */
    uint64_t split_max_bytes;    /* > 0: a new split before the padded data passes N bytes */
    const uint64_t *cut_before;  /* or: a new split before each of these tensor indices (ascending) */
    size_t n_cuts;
    int metadata_only;           /* the metadata alone, no tensor (a split's side file) */
} mp_gguf_copy_opts;

/* Rewrites model g (metadata verbatim, tensors byte for byte, in order) as the GGUF file `dst`,
 * or, when either split limit is set, as the split set "<dst minus .gguf>-0000i-of-0000N.gguf"
 * with gguf-split's keys: split.no u16, split.count u16, split.tensors.count i32 in every split
 * and the other metadata in the first. Files are created with O_EXCL. */
mp_errcode mp_gguf_copy(const mp_gguf *g, const char *dst, const mp_gguf_copy_opts *o, mp_err *err);

/* "<prefix>-00002-of-00005.gguf" (1-based shard, as llama_split_path). */
void mp_gguf_split_name(const char *prefix, size_t shard, size_t n_shards, char *buf, size_t cap);

/* A GGUF model seen as a safetensors checkpoint: each tensor a U8 [rows, row bytes] of its raw
 * ggml blocks (rows = elements / ne[0]), read in place from the GGUF files; names as in the
 * GGUF. What the per-layer split copies for a GGUF source (the ggml type travels in the
 * output's metadata). g must outlive nothing: the view opens the files itself. */
mp_errcode mp_st_open_gguf_view(mp_st_model **out, const mp_gguf *g, mp_err *err);

/* ------------------------------------------------------------ layer-streaming runtimes */

/* The runtimes a per-layer split is written for, and what each one's loader expects of it
 * (doc/split-runtimes.md: AirLLM 4.0.0 and RabbitLLM 1.1.0 as read from PyPI). */
typedef enum {
    MP_RUNTIME_PLAIN,      /* standard loaders only: no markers, a tied head is an alias */
    MP_RUNTIME_AIRLLM,
    MP_RUNTIME_RABBITLLM,
    MP_RUNTIME_COUNT
} mp_runtime;

typedef struct mp_runtime_traits {
    const char *name;       /* "airllm" */
    const char *title;      /* "AirLLM" */
    int done_markers;       /* counts a layer present only with NAME.safetensors.done beside it */
    int tied_head_file;     /* asks for lm_head.safetensors even when the head is tied: an empty
                               file ({} of tensors) unless --materialize-tied */
    int reads_zstd;         /* loads NAME.safetensors.zst */
    int reads_gguf_source;  /* loads a split of a GGUF source (U8 rows of raw ggml blocks) */
} mp_runtime_traits;

/* The traits of rt (rt < MP_RUNTIME_COUNT). */
const mp_runtime_traits *mp_runtime_get(mp_runtime rt);
/* "airllm", "rabbitllm" or "plain" to its enum; returns 0 on success, -1 for another name. */
int mp_runtime_parse(const char *name, mp_runtime *out);
/* The suffix of a layer file's completion marker: "NAME.safetensors" + ".done". */
#define MP_RUNTIME_MARKER_SUFFIX ".done"

/* ---------------------------------------------------------------- config.json for GGUF export */

/* The hyperparameters of config.json a GGUF export writes as metadata (hf_hparams.c;
 * doc/formats/gguf-export.md §1). Integers are -1, floats -1.0 and flags -1 when absent; a
 * multimodal config's text_config is read in place of the top level. */
typedef struct mp_hf_hparams {
    char model_type[64], torch_dtype[64], hidden_act[64];
    int64_t hidden_size, intermediate_size, n_layers, n_heads, n_kv_heads, head_dim;
    int64_t context_length, vocab_size, sliding_window, sliding_window_pattern;
    int64_t n_experts, n_experts_used, expert_ff;
    int64_t bos_token_id, eos_token_id, pad_token_id;
    double rms_norm_eps, rope_theta, rope_local_base_freq;
    double final_logit_softcapping, attn_logit_softcapping;
    double swiglu_limit;       /* gpt-oss: the clamp of its SwiGLU */
    char rope_type[32];        /* rope_scaling.rope_type (or .type); "" when none */
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    double rope_beta_fast, rope_beta_slow; /* rope_scaling.beta_fast, .beta_slow (yarn) */
    int64_t rope_orig_context; /* rope_scaling.original_max_position_embeddings */
    int tie_word_embeddings, attention_bias, mlp_bias;
    int layer_types_alternate; /* layer_types: 1 when it alternates sliding_attention and
                                  full_attention from layer 0 over every layer, else 0 */
    char name_or_path[256];    /* _name_or_path, as transformers saved it; "" when absent */
} mp_hf_hparams;

/* Reads dir/config.json. A missing file, malformed JSON or a key of the wrong type is
 * MP_E_INPUT naming the file (and the key). */
mp_errcode mp_hf_hparams_load(mp_hf_hparams *h, const char *dir, mp_err *err);

/* The model card's provenance (hf_card.c; doc/formats/gguf-export.md §1.4): the YAML front
 * matter of dir/README.md, its `license` and `base_model` (one id or a list). */
#define MP_HF_CARD_MAX_BASE 8
typedef struct mp_hf_card {
    char license[64];
    size_t n_base;
    char base[MP_HF_CARD_MAX_BASE][128];
} mp_hf_card;

/* Reads the front matter at the start of dir/README.md into c. No README, or one without front
 * matter, is an empty card; a value too long for its field, or more than MP_HF_CARD_MAX_BASE base
 * models, is MP_E_INPUT naming the file and the key (never a silently shortened id). */
mp_errcode mp_hf_card_load(mp_hf_card *c, const char *dir, mp_err *err);

/* 1 when s is a Hugging Face Hub model id ("org/name": one slash, [A-Za-z0-9._-], no "..",
 * neither part starting with '.'), 0 for anything else (a local path, a URL). */
int mp_hf_is_hub_id(const char *s);

/* What mp_gguf_tokenizer_add() wrote. */
typedef struct mp_gguf_tok_info {
    char model[16];            /* tokenizer.ggml.model: "gpt2" */
    char pre[32];              /* tokenizer.ggml.pre: "llama-bpe", "qwen2" */
    uint64_t n_tokens;
} mp_gguf_tok_info;

/* Adds the tokenizer.* keys of dir/tokenizer.json (a byte-level BPE), tokenizer_config.json
 * and config.json (h) to w (gguf_tokenizer.c, doc/formats/gguf-export.md §4): n_vocab tokens
 * (the embedding's rows; holes become "[PAD<i>]"), token types, merges, the pre-tokenizer llama.cpp
 * knows by the same regex, bos/eos/unk/pad ids, add_bos/add_eos and the chat template. A missing
 * tokenizer.json is MP_E_INPUT; a tokenizer llama.cpp would run differently (another model type,
 * a normalizer, an unknown pre-tokenizer regex, named) is MP_E_UNSUPPORTED. */
mp_errcode mp_gguf_tokenizer_add(mp_gguf_writer *w, const char *dir, uint64_t n_vocab,
                                 const mp_hf_hparams *h, mp_gguf_tok_info *info, mp_err *err);

/* The inverse, for GGUF -> Hugging Face: tokenizer.json and tokenizer_config.json text from a
 * GGUF's byte-level BPE tokenizer metadata (gpt2 with the llama-bpe or qwen2 pre-tokenizer):
 * vocabulary, merges, added tokens (CONTROL and USER_DEFINED), the pre-tokenizer's regex, a
 * TemplateProcessing that adds BOS when add_bos_token, the special tokens and chat template.
 * Any other tokenizer leaves both buffers empty and *why saying so. */
mp_errcode mp_gguf_tokenizer_to_hf(const mp_gguf *g, mp_buf *tok, mp_buf *cfg, const char **why,
                                   mp_err *err);

/* The same for a SentencePiece (tokenizer.ggml.model "llama") tokenizer: tokenizer.model bytes
 * (the pieces, scores and types in id order, a BPE TrainerSpec with the special ids, an identity
 * NormalizerSpec with add_dummy_prefix = add_space_prefix) and tokenizer_config.json text. Any
 * other tokenizer leaves both empty and *why saying so. */
mp_errcode mp_gguf_tokenizer_to_spm(const mp_gguf *g, mp_buf *model, mp_buf *cfg, const char **why,
                                    mp_err *err);

#endif /* MP_FORMATS_H */
