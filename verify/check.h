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

/* Every tensor the manifest records as copied ("origin": "copy": embeddings, norms, lm_head,
 * every tensor of a split) against the source's bytes: its xxh64 must be the source tensor's.
 * A failure names the tensor, and whether the output's bytes or the manifest's hash differ. */
mp_errcode mp_check_copies(const mp_st_model *out, const cJSON *manifest, const mp_st_model *src,
                           mp_verify_report *r, mp_err *err);

/* Structure: the manifest's tensors against the checkpoint's, shapes against config.json,
 * NaN/Inf in float tensors and scales, zero scales. */
mp_errcode mp_check_structure(const mp_st_model *m, const mp_qmodel *q, const cJSON *manifest,
                              mp_verify_report *r, mp_err *err);

/* Numerics: every quantized linear on the device against the CPU reference. */
/* The numeric stage of one verify run: its device and options, and what its checks reuse from
 * tensor to tensor: the activations of each K and the buffers (a MoE model has thousands of
 * small tensors; doc/verify-speed.md), its checks spread over `threads` threads (0: OpenMP's
 * count). NULL when out of memory. */
typedef struct mp_numerics mp_numerics;
mp_numerics *mp_numerics_new(mp_device *d, const mp_verify_opts *o, int threads);
void mp_numerics_free(mp_numerics *nu);
mp_device *mp_numerics_device(const mp_numerics *nu);

typedef struct mp_numeric_ctx {
    const mp_st_model *out;
    const mp_qmodel *outq;
    const cJSON *manifest;        /* may be NULL */
    const mp_st_model *src;       /* the reference source; NULL: the output's own scheme */
    const mp_qmodel *srcq;
    mp_numerics *nu;              /* the device, and what the checks reuse from tensor to tensor */
    const mp_verify_opts *o;
    unsigned char *src_seen;      /* per source linear: 1 once an output tensor was checked against it */
    size_t *out_held, *src_held;  /* the compressed file of each model held in memory, or SIZE_MAX */
    mp_reporter *progress;        /* started here with the step count, one step added per check */
} mp_numeric_ctx;

/* Tensor t (NULL: nothing) read whole into a new buffer *out of *bytes bytes. */
mp_errcode mp_verify_read_whole(const mp_st_model *m, const mp_tensor *t, void **out, size_t *bytes, mp_err *err);

/* float_kernel.c: the kernel data of a float-quantized linear q (q->scheme->elem != MP_ELEM_INT)
 * of model m for kernels/fp8.cl, fp4.cl, bnb4.cl or bnb8.cl: kd's buffers and parameter words;
 * the buffers it allocates go to own[0..3], for the caller to free (also on failure). */
mp_errcode mp_float_kernel_data(const mp_st_model *m, const mp_qlinear *q, mp_kernel_data *kd, void *own[4],
                                mp_err *err);

mp_errcode mp_check_numerics(const mp_numeric_ctx *c, mp_verify_report *r, mp_err *err);

/* The reference: rows[0 .. nrows) of the weight to f32, row after row. */
typedef mp_errcode (*mp_ref_rows_fn)(void *ctx, const uint32_t *rows, uint32_t nrows, float *out, mp_err *err);

/* The device check of one weight [N, K] held by kd (already filled): sampled rows dequantized
 * on the device must equal ref's bit for bit, and y = x w^T must stay within the rounding
 * bounds. Fills vt and adds findings to r. ref_threadsafe: 2 when ref may run in several
 * threads at once on any rows, 1 when only on runs of consecutive rows from a multiple of 8, 0
 * never (then each thread computes the reference of the rows it checks, while they are in its
 * cache). */
mp_errcode mp_numeric_compare(mp_numerics *nu, const mp_kernel_data *kd, uint64_t N, uint64_t K, const char *name,
                              mp_ref_rows_fn ref, void *ctx, int ref_threadsafe, mp_vtensor *vt,
                              mp_verify_report *r, mp_err *err);

/* ref_gemm.c: the reference of y = x w^T in double. mp_ref_gemm_x transposes x [m][k] into
 * mp_ref_gemm_blocks(m) blocks of [k][8] doubles (xt; rows past m are 0) and gives a[c] =
 * |x[0][c]|; every row of x must have those magnitudes (the rows differ in signs only), else it
 * returns 0. mp_ref_gemm then gives, for each of the nrows rows j of w (f32 [nrows][k]) and
 * i < m, yr[i * nrows + j] = sum_c x[i][c] w[j][c], summed in c order in double (the products
 * are exact), and s[i * nrows + j] = sum_c a[c] |w[j][c]| = sum_c |x[i][c] w[j][c]| in 8
 * interleaved partial sums (ref_gemm.c), threaded over rows. */
uint32_t mp_ref_gemm_blocks(uint32_t m);
int mp_ref_gemm_x(const float *x, uint32_t m, uint64_t k, double *xt, double *a);
void mp_ref_gemm(const float *w, uint32_t nrows, uint64_t k, const double *xt, const double *a, uint32_t m,
                 double *yr, double *s);
/* Tests: run mp_ref_gemm through path 0 (baseline), 1 (AVX2 with FMA) or 2 (AVX-512F) from now
 * on, or through the best this CPU has (-1, the default); 0 when the CPU lacks that path. Every
 * path gives the same doubles. */
int mp_ref_gemm_path(int path);

/* A new row of the numeric table. NULL when out of memory. */
mp_vtensor *mp_vtensor_add(mp_verify_report *r, const char *name, const char *layout, uint64_t n, uint64_t k,
                           uint32_t m);

/* Runtime: in the split directory `dir`, the layer files and .done markers the runtime asks for,
 * and no marker without its file (doc/split-runtimes.md). runtime is an mp_runtime, or -1 for
 * the one modelprep.json's layout names; nothing is checked for MP_RUNTIME_PLAIN. */
mp_errcode mp_check_runtime(const char *dir, int runtime, mp_verify_report *r, mp_err *err);

/* The GGUF path of `modelprep verify`: structure and numerics of a GGUF file or split set. */
mp_errcode mp_check_gguf(const char *path, mp_device *d, const mp_verify_opts *o, mp_reporter *progress,
                         mp_verify_report *r, mp_err *err);

#endif /* MP_CHECK_H */
