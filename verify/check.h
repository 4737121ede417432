/*
 * check.h - internal to verify/: the three stages of `modelprep verify` and the report helpers
 * they share.
 */
#ifndef MP_CHECK_H
#define MP_CHECK_H

#include "verify.h"

#include <cjson/cJSON.h>

/* Appends a finding; counts failures and warnings. Returns MP_E_NOMEM only. */
mp_errcode mp_vfind(mp_verify_report *r, mp_vstatus st, const char *stage, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Integrity: every file of the manifest, size and xxh3-128, and every tensor's xxh64, each
 * file read once. The manifest's names must stay inside the checkpoint. */
mp_errcode mp_check_integrity(const mp_st_model *m, const cJSON *manifest, mp_verify_report *r,
                              mp_err *err);

/* Structure: the manifest's tensors against the checkpoint's, shapes against config.json,
 * NaN/Inf in float tensors and scales, zero scales. */
mp_errcode mp_check_structure(const mp_st_model *m, const mp_qmodel *q, const cJSON *manifest,
                              mp_verify_report *r, mp_err *err);

/* Numerics: every quantized linear on the device against the CPU reference. */
typedef struct mp_numeric_ctx {
    const mp_st_model *out;
    const mp_qmodel *outq;
    const cJSON *manifest;        /* may be NULL */
    const mp_st_model *src;       /* the reference source; NULL: the output's own scheme */
    const mp_qmodel *srcq;
    mp_device *dev;
    const mp_verify_opts *o;
    unsigned char *src_seen;      /* per source linear: 1 once an output tensor was checked against it */
    size_t *out_held, *src_held;  /* the compressed file of each model held in memory, or SIZE_MAX */
} mp_numeric_ctx;

mp_errcode mp_check_numerics(const mp_numeric_ctx *c, mp_verify_report *r, mp_err *err);

/* The reference: rows[0 .. nrows) of the weight to f32, row after row. */
typedef mp_errcode (*mp_ref_rows_fn)(void *ctx, const uint32_t *rows, uint32_t nrows, float *out, mp_err *err);

/* The device check of one weight [N, K] held by kd (already filled): sampled rows dequantized
 * on the device must equal ref's bit for bit, and y = x w^T must stay within the rounding
 * bounds. Fills vt and adds findings to r. */
mp_errcode mp_numeric_compare(mp_device *d, const mp_verify_opts *o, const mp_kernel_data *kd, uint64_t N,
                              uint64_t K, const char *name, mp_ref_rows_fn ref, void *ctx, mp_vtensor *vt,
                              mp_verify_report *r, mp_err *err);

/* A new row of the numeric table. NULL when out of memory. */
mp_vtensor *mp_vtensor_add(mp_verify_report *r, const char *name, const char *layout, uint64_t n, uint64_t k,
                           uint32_t m);

/* Runtime: in the split directory `dir`, the layer files and .done markers the runtime asks for,
 * and no marker without its file (doc/split-runtimes.md). runtime is an mp_runtime, or -1 for
 * the one modelprep.json's layout names; nothing is checked for MP_RUNTIME_PLAIN. */
mp_errcode mp_check_runtime(const char *dir, int runtime, mp_verify_report *r, mp_err *err);

/* The GGUF path of `modelprep verify`: structure and numerics of a GGUF file or split set. */
mp_errcode mp_check_gguf(const char *path, mp_device *d, const mp_verify_opts *o, mp_verify_report *r, mp_err *err);

#endif /* MP_CHECK_H */
