/*
 * modelprep.h - the public interface of libmodelprep.
 *
 * libmodelprep reads LLM weight checkpoints (safetensors files, sharded directories, GGUF files
 * and split sets, with their GPTQ, AWQ, AutoRound and compressed-tensors quantized linears) and
 * runs the jobs of the modelprep command: convert, split and verify. This header is the whole
 * contract a program outside the source tree relies on; build against it with
 *     cc prog.c $(pkg-config --cflags --libs modelprep)
 *
 * Errors. Every function that can fail returns an mp_errcode (MP_OK is 0) and fills the
 * caller's mp_err with a one-line reason and, where known, the file, the tensor and the byte
 * offset (mp_err_format() joins them). An err argument may be NULL when the caller does not want
 * the detail. The library never prints, never exits and never aborts on bad input: a file that
 * is malformed, truncated or hostile is MP_E_INPUT (or MP_E_UNSUPPORTED for well-formed input it
 * cannot handle), naming what is wrong. Sizes read from files are checked before anything is
 * allocated for them.
 *
 * Memory. Handles are opaque: mp_model_open() creates one, mp_model_close() frees it (and
 * accepts NULL). Strings returned in info structs belong to the model and stay valid until it is
 * closed. Buffers passed in (out arrays, options) stay the caller's; the library keeps no
 * pointer to them after the call returns, except the progress callback's `user`, used only
 * during the call it was given to.
 *
 * Threads. A model handle may be read from several threads at once (reads use pread). The jobs
 * (mp_convert, mp_split, mp_verify) use OpenMP threads internally and call the progress
 * callback on the calling thread. No function keeps global state between calls.
 */
#ifndef MODELPREP_H
#define MODELPREP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MP_VERSION_MAJOR 0
#define MP_VERSION_MINOR 1
#define MP_VERSION_PATCH 0
#define MP_VERSION "0.1.0"

/* ---------------------------------------------------------------- errors */

/* Stable values: scripts and the manifest may record them. Each maps to one exit code of the
 * modelprep command through mp_err_exit_code(). */
typedef enum {
    MP_OK = 0,
    MP_E_MISMATCH = 1,    /* verification found a mismatch or corruption  -> exit 1 */
    MP_E_USAGE = 2,       /* bad command line or options                 -> exit 2 */
    MP_E_DEVICE = 3,      /* requested device unavailable                -> exit 3 */
    MP_E_INPUT = 4,       /* bad or malformed input                      -> exit 4 */
    MP_E_UNSUPPORTED = 5, /* well-formed input modelprep cannot handle   -> exit 4 */
    MP_E_IO = 6,          /* read/write/disk-full/permission             -> exit 5 */
    MP_E_NOMEM = 7,       /* allocation failed                           -> exit 5 */
    MP_E_INTERRUPTED = 8, /* the job's interrupt flag was set            -> exit 130 */
    MP_E_COUNT
} mp_errcode;

#define MP_ERR_FILE_MAX 512
#define MP_ERR_TENSOR_MAX 256
#define MP_ERR_MSG_MAX 512

/* Caller-owned error context. Zero-initialise with MP_ERR_INIT. */
typedef struct mp_err {
    mp_errcode code;
    int64_t offset;                  /* byte offset in `file`, -1 when unknown */
    char file[MP_ERR_FILE_MAX];      /* file the error is about, "" when none */
    char tensor[MP_ERR_TENSOR_MAX];  /* tensor the error is about, "" when none */
    char msg[MP_ERR_MSG_MAX];        /* reason: lowercase, no final period */
} mp_err;

#define MP_ERR_INIT {MP_OK, -1, "", "", ""}

const char *mp_err_name(mp_errcode code);  /* "input", "io", ... */
int mp_err_exit_code(mp_errcode code);      /* the modelprep command's exit code for it */
/* "FILE: byte N: tensor 'T': reason" (the parts present only when set) into buf. */
void mp_err_format(const mp_err *err, char *buf, size_t cap);

/* ---------------------------------------------------------------- progress */

/* A long job tells its caller how far it is, and what it noticed, through one callback in its
 * options. NULL means silence; the library never prints. */
typedef enum {
    MP_EVENT_START,    /* a phase begins: label, total */
    MP_EVENT_ADVANCE,  /* done grew (bytes written so far, of total) */
    MP_EVENT_END,      /* the phase is over, whether it succeeded or not */
    MP_EVENT_NOTE,     /* note: one line for the user, lowercase, without a newline */
    MP_EVENT_COUNT
} mp_event_kind;

typedef struct mp_event {
    mp_event_kind kind;
    const char *label;   /* the phase: "convert", "split", "verify" */
    uint64_t total;      /* bytes the phase writes, or items of `unit` */
    uint64_t done;       /* bytes written (items done) so far, at most total */
    const char *note;    /* MP_EVENT_NOTE only; valid during the call */
    const char *unit;    /* NULL: done and total are bytes; else what they count ("steps") */
} mp_event;

/* Called on the job's own thread, between tiles (never from its worker threads); it must
 * return quickly. `user` is the pointer given beside it in the options. */
typedef void (*mp_progress_fn)(void *user, const mp_event *ev);

/* ---------------------------------------------------------------- checkpoints */

typedef struct mp_model mp_model;

/* Opens a checkpoint: a .safetensors file, a directory of safetensors shards (named by
 * model.safetensors.index.json) or a lone model.safetensors, a .gguf file, or a directory or
 * first file of a GGUF split set. Every header is validated in full, and a safetensors
 * checkpoint's quantization config (config.json, quantize_config.json, quant_config.json) is
 * read and checked against the tensors' shapes. Tensor data stays in the files: nothing is read
 * until asked for. *out is NULL on failure; free it with mp_model_close(). */
mp_errcode mp_model_open(mp_model **out, const char *path, mp_err *err);
void mp_model_close(mp_model *m);

typedef struct mp_tensor_info {
    const char *name;        /* as stored ("model.layers.0.mlp.up_proj.qweight", "blk.0.ffn_up.weight") */
    const char *dtype;       /* safetensors: "F16", "I32", ...; GGUF: ggml's type name, "Q4_0", "F32" */
    uint32_t n_dims;
    uint64_t shape[8];       /* outermost first, as PyTorch prints it (GGUF's ne reversed) */
    uint64_t n_bytes;        /* of its data in the file */
    const char *file;        /* the file holding it, relative to the checkpoint's directory */
} mp_tensor_info;

/* Tensors in the checkpoint's order: safetensors sorted by name; GGUF in file order. */
size_t mp_model_n_tensors(const mp_model *m);
/* Fills *out for tensor i; MP_E_USAGE when i >= mp_model_n_tensors(m). */
mp_errcode mp_model_tensor(const mp_model *m, size_t i, mp_tensor_info *out, mp_err *err);
/* Copies len bytes of tensor i's stored data, from byte `offset` of it, into buf. */
mp_errcode mp_model_read(const mp_model *m, size_t i, uint64_t offset, void *buf, size_t len,
                         mp_err *err);

/* A quantized linear W [n_rows out, k_cols in]: for safetensors, the qweight/scales/qzeros/...
 * group of one layer; for GGUF, each two-dimensional tensor of a block-quantized type (Q4_0,
 * Q8_0, Q4_K, ...). */
typedef struct mp_linear_info {
    const char *name;        /* safetensors: the prefix ("model.layers.0.mlp.up_proj"); GGUF: the tensor */
    const char *method;      /* "gptq", "awq", "auto-round", "compressed-tensors", "modelprep", "gguf" */
    const char *format;      /* "gptq", "gptq_v2", "gemm", ..., or the GGUF type name */
    uint32_t bits;           /* code width; 0 for GGUF types, whose blocks mix widths */
    uint64_t n_rows;         /* N */
    uint64_t k_cols;         /* K */
    uint64_t group_size;     /* K for per-channel; the block size for GGUF */
    int symmetric;           /* 1 or 0 as the quantization config says; -1 for GGUF block types */
    int act_order;           /* 1: a non-trivial g_idx reorders the groups */
} mp_linear_info;

size_t mp_model_n_linears(const mp_model *m);
mp_errcode mp_model_linear(const mp_model *m, size_t i, mp_linear_info *out, mp_err *err);

/* Dequantizes rows [row0, row1) of linear i to f32, row-major [row1 - row0][k_cols], into out
 * (the caller's, of that many floats): w = s * (q - z) as the source scheme defines it, or as
 * ggml's dequantize_row_* does for GGUF, bit for bit. row0 <= row1 <= n_rows, else MP_E_USAGE.
 * For AWQ GEMM checkpoints row0 must be a multiple of 8. Reads only those rows' bytes. */
mp_errcode mp_model_dequantize_rows(const mp_model *m, size_t i, uint64_t row0, uint64_t row1,
                                    float *out, mp_err *err);

/* ---------------------------------------------------------------- jobs */

/*
 * Every job writes DST inside DST.partial-XXXXXX beside it and renames it into place only when
 * it is complete, with a modelprep.json manifest (the source and output files' sizes and
 * hashes, every tensor's xxh64). An existing DST is refused (MP_E_USAGE) unless `force`. On
 * failure nothing is left behind (split keeps its partial directory for `resume`). Setting
 * *interrupted to non-zero from another thread or a signal handler stops the job between
 * tiles with MP_E_INTERRUPTED.
 */

/* A job run as `count` parts (doc/partitioned.md): part `index` writes only the output files
 * the plan gives it (largest first onto the lightest part, by bytes) into the shared
 * DST.partial-<job id>, with a record of them; the part that finds every record present, or a
 * call with `merge` set and the same options, checks the records, writes the index, config and
 * manifest and commits DST, byte for byte what the whole job writes. Not for GGUF sources,
 * `force`, `resume` or `gguf_split` (MP_E_USAGE). The job id defaults to a hash of the source
 * files and the options, as the library sees them: the command line's `--part` derives another
 * one for the same job, so give `job_id` to mix the two. */
typedef struct mp_part_options {
    unsigned index, count;   /* 0 <= index < count <= 4096; count 0: the whole job */
    int merge;               /* 1: merge the parts (count is read from their records) */
    const char *job_id;      /* NULL: derived; else 1-64 of A-Z a-z 0-9 . _ -, not first . or - */
} mp_part_options;

#define MP_PART_OPTIONS_INIT {0, 0, 0, NULL}

typedef struct mp_convert_options {
    const char *to;          /* "f32", "f16", "bf16", or a layout the registry can write
                                ("cutlass-int4", "gptq", ...: `modelprep convert --help` lists
                                them); a GGUF source converts to f32, f16 or bf16 only */
    int int4_s4;             /* cutlass-int4: two's complement codes instead of zero-8 nibbles */
    int stack_experts;       /* cutlass-int4: MoE experts stacked [E, N, K/2], gate+up as w13 */
    const char *scale_dtype; /* packed targets: "f16", "bf16", "f32"; NULL: the model's dtype */
    int keep_dense_dtype;    /* dense targets: unquantized floats keep their dtype (default: cast) */
    uint64_t max_shard_size; /* bytes of tensor data per shard; 0: one file */
    int threads;             /* 0: OpenMP's default; else set with omp_set_num_threads, which
                                stays in effect for the calling thread after the call */
    int force;               /* replace an existing DST */
    mp_progress_fn progress; /* may be NULL */
    void *progress_user;
    volatile int *interrupted; /* may be NULL */
    mp_part_options part;    /* one part of a job run as several (below); zero: the whole job */
} mp_convert_options;

#define MP_CONVERT_OPTIONS_INIT {NULL, 0, 0, NULL, 0, 0, 0, 0, NULL, NULL, NULL, MP_PART_OPTIONS_INIT}

typedef struct mp_split_options {
    int zstd_level;          /* 0: plain .safetensors files; 1..19: .safetensors.zst */
    int materialize_tied;    /* write lm_head from the tied embedding */
    unsigned gguf_split;     /* GGUF source: a gguf-split set of this many files instead */
    int resume;              /* continue the newest DST.partial-* of an interrupted split */
    int threads;             /* zstd workers; 0: one */
    int force;
    mp_progress_fn progress;
    void *progress_user;
    volatile int *interrupted;
    mp_part_options part;    /* one part of a job run as several (below); zero: the whole job */
} mp_split_options;

#define MP_SPLIT_OPTIONS_INIT {0, 0, 0, 0, 0, 0, NULL, NULL, NULL, MP_PART_OPTIONS_INIT}

/* What a convert or split wrote. */
typedef struct mp_job_summary {
    size_t n_files;          /* weight files (shards, layer files) */
    size_t n_tensors;
    uint64_t bytes;          /* tensor bytes written */
    double seconds;
} mp_job_summary;

/* SRC (a checkpoint, as mp_model_open takes) to DST in another format: quantized linears
 * repacked exactly, or refused before anything is written when the target cannot hold them
 * (MP_E_INPUT or MP_E_UNSUPPORTED, naming the tensor: an asymmetric source for cutlass-int4, act
 * order for the device layouts, z = 0 for GPTQ v1), or dequantized to a dense target; everything
 * else copied byte for byte, side files (tokenizer, generation config) copied, config.json
 * updated. An unknown `to` is MP_E_USAGE. summary may be NULL. */
mp_errcode mp_convert(const char *src, const char *dst, const mp_convert_options *o,
                      mp_job_summary *summary, mp_err *err);

/* SRC to one safetensors file per layer (model.layers.N.safetensors, plus embeddings, norm and
 * head files) with an index, as layer-streaming runtimes load them. summary may be NULL. */
mp_errcode mp_split(const char *src, const char *dst, const mp_split_options *o,
                    mp_job_summary *summary, mp_err *err);

typedef struct mp_verify_options {
    const char *against;     /* the source to compare with; NULL: the manifest's, if it exists */
    const char *device;      /* "auto", "gpu", "cpu", "opencl[:I]", "level-zero[:I]"; NULL: "cpu" */
    uint32_t rows;           /* rows checked per tensor; 0: every row; MP_VERIFY_ROWS_AUTO: n / 64
                              * of a tensor's n rows in runs of 8, 16 to 64 (doc/reference.md) */
    /* The numeric checks as phase "verify" counting "steps" (a quantized linear, a dense
     * weight, a stacked tensor, a file of GGUF blocks; in a GGUF file, a tensor). */
    mp_progress_fn progress; /* may be NULL */
    void *progress_user;
} mp_verify_options;

#define MP_VERIFY_ROWS_AUTO UINT32_MAX
#define MP_VERIFY_OPTIONS_INIT {NULL, NULL, MP_VERIFY_ROWS_AUTO, NULL, NULL}

typedef struct mp_verify_summary {
    size_t n_fail, n_warn;   /* findings */
    size_t n_tensors;        /* tensors of the checkpoint */
    size_t n_numeric;        /* quantized tensors checked on the device against the reference */
    int manifest;            /* 1: modelprep.json was found and checked */
    char device[160];        /* the device the kernels ran on */
} mp_verify_summary;

/* Checks PATH: file hashes against its manifest, structure against its config, and every
 * quantized tensor's device kernel against the CPU reference of the source. Returns MP_OK when
 * everything passed, MP_E_MISMATCH when a check failed (err names the first failure),
 * MP_E_DEVICE when the requested device is unavailable, or the error that stopped it. summary
 * (may be NULL) is filled whenever the checks ran. */
mp_errcode mp_verify(const char *path, const mp_verify_options *o, mp_verify_summary *summary,
                     mp_err *err);

#ifdef __cplusplus
}
#endif

#endif /* MODELPREP_H */
