/*
 * gguf_export.h - internal to convert/: a Hugging Face checkpoint (dense, or GPTQ, AWQ,
 * AutoRound, compressed-tensors) as a GGUF file that llama.cpp loads (gguf_export.c;
 * doc/gguf-export.md).
 */
#ifndef MP_GGUF_EXPORT_H
#define MP_GGUF_EXPORT_H

#include "pipeline.h"

/* What the weights of quantized linears and 2-D tensors become. */
typedef enum {
    MP_GGUF_TO_AUTO,   /* quantized linears exactly as Q4_0/Q5_0/Q8_0, or refused; dense as is */
    MP_GGUF_TO_F32,
    MP_GGUF_TO_F16,
    MP_GGUF_TO_BF16,
    MP_GGUF_TO_Q8_0,   /* re-quantized as gguf-py's gguf.quants.quantize does */
    MP_GGUF_TO_COUNT
} mp_gguf_to;

/* "auto", "f32", ...: the spelling after "gguf:". */
const char *mp_gguf_to_name(mp_gguf_to t);
/* Parses "gguf" or "gguf:<name>"; 0 when `to` is not a GGUF target, 1 with *out set, -1 when
 * it is "gguf:" followed by an unknown name. */
int mp_gguf_to_parse(const char *to, mp_gguf_to *out);

typedef struct mp_gguf_export_opts {
    mp_gguf_to to;
    int no_tokenizer;
    uint64_t split_bytes;     /* > 0: a split set as llama-gguf-split writes, cut before a split's
                                 padded tensor data passes this many bytes */
} mp_gguf_export_opts;

typedef struct mp_gguf_export_result {
    char arch[32];            /* general.architecture */
    char pre[32];             /* tokenizer.ggml.pre, "" without a tokenizer */
    uint32_t file_type;       /* general.file_type */
    int lossless;             /* every value written equals the source's (reference) value */
    size_t n_tensors, n_repacked, n_copied, n_cast, n_dequantized, n_quantized, n_permuted;
    size_t n_files;           /* 1, or the splits */
    uint64_t bytes;           /* size of the GGUF file(s) */
    double seconds;
} mp_gguf_export_result;

/* SRC (a safetensors checkpoint directory with config.json) to the GGUF file DST (or, with
 * split_bytes, the split set "<DST minus .gguf>-0000i-of-0000N.gguf"), written atomically per file
 * (built inside DST.partial-XXXXXX, then renamed), with its manifest beside it as
 * DST.modelprep.json. Everything that can refuse (architecture, every linear's mapping, the
 * tokenizer) is checked before the file is created. */
mp_errcode mp_gguf_export_run(const char *src, const char *dst, const mp_convert_opts *o,
                              const mp_gguf_export_opts *x, mp_gguf_export_result *res,
                              mp_err *err);

#endif
