/*
 * verify.h - the public header of verify/: the CPU dequantization reference, the device
 * backends that run kernels/ (Level Zero, OpenCL, cpu), and `modelprep verify`'s checks.
 *
 * The reference reads the *source* scheme's bits directly (doc/formats/README.md §3), with
 * no code shared with repack/, so that it can judge the layout transformer: a repack bug cannot
 * hide by being repeated here.
 */
#ifndef MP_VERIFY_H
#define MP_VERIFY_H

#include "../formats/formats.h"

/* Dequantizes rows [n0, n1) of linear q to f32, row-major [n1 - n0][K]:
 *   w[n][k] = s[n][g] * (q[n][k] - z[n][g]),  g = g_idx[k] (or k / group_size),
 * with z the stored zero plus the scheme's offset (GPTQ v1 stores z - 1), or 2^(b-1) when
 * implied. Exactly one f32 rounding: (float)(q - z) * (float)s, as numpy computes it. For AWQ
 * GEMM, n0 must be a multiple of 8. Reads only the bytes those rows need; the work is split
 * over rows with OpenMP. Scratch is at most mp_dequant_ref_scratch(q, n1 - n0) bytes. */
mp_errcode mp_dequant_ref(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1,
                          float *out, mp_err *err);
uint64_t mp_dequant_ref_scratch(const mp_qlinear *q, uint64_t rows);
/* What mp_dequant_ref reads once per linear whatever the rows: g_idx and the runs of columns of
 * one group. Read it once for many calls (a sampled check asks for one row at a time) and pass
 * it to mp_dequant_ref_with; NULL *out, and MP_OK, for a linear that is not packed integers.
 * Read-only once made: calls from several threads may share it. */
typedef struct mp_ref_groups mp_ref_groups;
mp_errcode mp_ref_groups_read(const mp_st_model *m, const mp_qlinear *q, mp_ref_groups **out, mp_err *err);
void mp_ref_groups_free(mp_ref_groups *g);
/* For the tests: the reference through g then decodes every row code by code and scales it in a
 * second pass (the plain formulas), never by its word-at-a-time path for 4-bit layouts; the
 * values must be the same, bit for bit (tests/unit/test_dequant.c). */
void mp_ref_groups_plain(mp_ref_groups *g);
/* mp_dequant_ref with g from mp_ref_groups_read (of the same linear), or NULL. */
mp_errcode mp_dequant_ref_with(const mp_st_model *m, const mp_qlinear *q, const mp_ref_groups *g, uint64_t n0,
                               uint64_t n1, float *out, mp_err *err);
/* The same for a float-quantized linear (q->scheme->elem != MP_ELEM_INT), which
 * mp_dequant_ref() hands over to: codes decoded exactly, times the scale of their grid cell,
 * rounded where the format's producer rounds (verify/dequant_float.c, doc/formats/fp8.md);
 * the caller's one rounding to the output dtype then gives the producer's bits. */
mp_errcode mp_dequant_ref_float(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1,
                                float *out, mp_err *err);
/* An FP4 linear (MP_ELEM_FP4: NVFP4, MXFP4), by mp_dequant_ref()'s table of element kinds:
 * w = e2m1(code) * (block scale [/ or *] per-tensor scale), one f32 product, exactly as each
 * producer's reference computes it (verify/dequant_fp4.c, doc/formats/fp4.md). Rows are the
 * linear's (e * N + n for stacked experts). */
mp_errcode mp_dequant_ref_fp4(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1,
                              float *out, mp_err *err);
/* The same for bitsandbytes linears (verify/dequant_bnb.c, doc/formats/bitsandbytes.md):
 * 4-bit NF4/FP4 codes through their table times the (nested) absmax of their flat block,
 * rounded to the quant_state's dtype; LLM.int8 codes times SCB / 127. */
mp_errcode mp_dequant_ref_lut4(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1,
                               float *out, mp_err *err);
mp_errcode mp_dequant_ref_int8_absmax(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1,
                                      float *out, mp_err *err);

/* ---------------------------------------------------------------- devices */

typedef enum {
    MP_BACKEND_LEVEL_ZERO,
    MP_BACKEND_OPENCL,
    MP_BACKEND_CUDA,
    MP_BACKEND_CPU,
    MP_BACKEND_COUNT
} mp_backend;

const char *mp_backend_name(mp_backend b); /* "level-zero", "opencl", "cuda", "cpu" */

typedef struct mp_device_info {
    mp_backend backend;
    unsigned index;          /* within its backend, as --device BACKEND:I counts */
    int is_gpu;
    int usable;              /* 0: listed but refused (the reason is in `note`) */
    char type[16];           /* "GPU", "CPU", "ACCELERATOR", "OTHER" */
    char name[128];
    char vendor[96];
    uint32_t vendor_id;
    char version[96];        /* OpenCL: device version; Level Zero: API version;
                                CUDA: "sm_90, 139.8 GiB" (compute capability, memory) */
    char driver[96];         /* driver version */
    char platform[96];       /* OpenCL: platform; Level Zero: "SPIR-V x.y" supported;
                                CUDA: "NVRTC 13.0" */
    char note[160];
} mp_device_info;

typedef struct mp_backend_report {
    mp_backend backend;
    char status[256];        /* "ok", or why the backend cannot be used */
    size_t n_devices;
    mp_device_info devices[16];
} mp_backend_report;

/* Probes every backend. Never fails: an unusable backend says why in its status, for example
 * "loader 1.8.0 present, no driver (ZE_RESULT_ERROR_UNINITIALIZED)". */
void mp_devices_list(mp_backend_report out[MP_BACKEND_COUNT]);

typedef struct mp_device mp_device;

/* Opens a device by spec: "auto", "gpu", "cpu", "opencl[:I]", "level-zero[:I]", "cuda[:I]".
 * - auto: the first usable GPU of any backend (CUDA, then Level Zero, then OpenCL); else an
 *   OpenCL CPU device; else the cpu backend. When it is not a GPU, `why` says why (no silent
 *   fallback).
 * - gpu, opencl, level-zero, cuda: that or MP_E_DEVICE, naming the reason. Never a substitute. */
mp_errcode mp_device_open(mp_device **out, const char *spec, char *why, size_t why_cap, mp_err *err);
const mp_device_info *mp_device_get_info(const mp_device *d);
void mp_device_close(mp_device *d);

/* The layout families of kernels/: one per kernels/<stem>.cl file, listed by the build from the
 * files themselves (kernels/embed.sh), so adding a kernel file needs no edit here. A family is
 * its index in that list, 0 to mp_kfamily_count() - 1; a registry entry names its family by
 * stem (mp_scheme.kernel), and mp_kfamily_find() turns the stem into the index. */
typedef int mp_kfamily;
#define MP_KF_NONE (-1)
#define MP_KF_MAX 16   /* room the backends keep per family; the generated table checks it */

int mp_kfamily_count(void);
mp_kfamily mp_kfamily_find(const char *stem);   /* "cutlass_int4"; MP_KF_NONE when no such file */
const char *mp_kfamily_name(mp_kfamily f);      /* "cutlass-int4", ... */

/* Compiles family f's kernels with NVRTC for arch ("sm_90") exactly as the cuda backend does,
 * and needs no driver or GPU: the build-time check of kernels/ (doc/cuda.md). `nvrtc` gets
 * "NVRTC 13.0 (libnvrtc.so.13)"; `log` gets NVRTC's log, empty when it had nothing to say (a
 * warning is a failure for the caller to report). MP_E_DEVICE: no NVRTC (the reason in err), an
 * arch NVRTC does not know, or a compile error (the log in err). */
mp_errcode mp_cuda_compile_check(mp_kfamily f, const char *arch, char *nvrtc, size_t nvrtc_cap, char *log,
                                 size_t log_cap, mp_err *err);

/* Parameter block indices, as kernels/mp_kernel.h numbers them. */
enum {
    MP_P_N, MP_P_K, MP_P_G, MP_P_GSIZE, MP_P_BITS, MP_P_ZOFF, MP_P_XOR, MP_P_ZMODE, MP_P_PER,
    MP_P_SDT, MP_P_SSTRIDE, MP_P_QSTRIDE, MP_P_ZSTRIDE, MP_P_GIDX, MP_P_NROWS, MP_P_M, MP_P_COUNT
};
/* The words the float families read under other names (kernels/mp_kernel.h, "float families"). */
enum {
    MP_P_ELEM = MP_P_BITS, MP_P_BN = MP_P_ZOFF, MP_P_PRE = MP_P_XOR, MP_P_POST = MP_P_ZMODE, MP_P_FLAGS = MP_P_PER,
    MP_P_GLOBAL = MP_P_ZSTRIDE
};
enum { MP_FL_GLOBAL = 1, MP_FL_GDIV = 2, MP_FL_ZPOS = 4, MP_FL_LDEXP = 8, MP_FL_NESTED = 16, MP_FL_E8NAN = 32 };

/* One packed linear, in host memory, as its files hold it (little-endian). */
typedef struct mp_kernel_data {
    mp_kfamily family;
    const void *qw, *sc, *zp, *gidx;   /* zp, gidx may be NULL */
    size_t qw_bytes, sc_bytes, zp_bytes, gidx_bytes;
    uint32_t P[MP_P_COUNT];            /* P_NROWS and P_M are set per launch */
} mp_kernel_data;

typedef struct mp_kernel_job mp_kernel_job;

/* Copies a linear to the device (the data may be freed afterwards on every backend but cpu,
 * which reads it in place: keep it alive until mp_kernel_job_free). */
mp_errcode mp_kernel_upload(mp_device *d, const mp_kernel_data *kd, mp_kernel_job **out, mp_err *err);
/* out[r][k] = w[rows[r]][k] (dequant), or out[m][r] = sum_k x[m][k] w[rows[r]][k] (gemm, M rows
 * of x). The output buffer goes to the device pre-filled with NaN and a guard zone after it;
 * a launch that leaves the guard changed is MP_E_MISMATCH (out-of-bounds write). */
mp_errcode mp_kernel_dequant(mp_kernel_job *j, const uint32_t *rows, uint32_t nrows, float *out,
                             mp_err *err);
mp_errcode mp_kernel_gemm(mp_kernel_job *j, const uint32_t *rows, uint32_t nrows, const float *x,
                          uint32_t m, float *out, mp_err *err);
/* mp_kernel_dequant run in the caller's buffer, with no copy: out holds nrows * K +
 * MP_KERNEL_GUARD floats, the last MP_KERNEL_GUARD of them the guard zone (overwritten). */
#define MP_KERNEL_GUARD 64
mp_errcode mp_kernel_dequant_in_place(mp_kernel_job *j, const uint32_t *rows, uint32_t nrows, float *out,
                                      mp_err *err);
/* The same, when the caller already holds its first nrows * K floats filled with NaN (any NaN
 * bits: a value the kernel leaves unwritten then still differs from every reference value), so
 * the launch does not fill them again; the guard zone is written and checked as always, then
 * left NaN, so the whole buffer is NaN again once the caller has refilled the values it
 * compared (numerics.c refills each value with NaN as it compares it, while the value is in the
 * L1 cache, and reuses the buffer for the next tensor, whatever its K). */
mp_errcode mp_kernel_dequant_prefilled(mp_kernel_job *j, const uint32_t *rows, uint32_t nrows, float *out,
                                       mp_err *err);
/* x [m][K] in the kernels' blocks (mp_kernel_x_floats(m, K) floats in xb), and the same given
 * to a job already blocked (xk, the caller's, read until the job is freed) for the
 * mp_kernel_gemm_in_place launches that follow: the activations of one K serve every tensor of
 * that K. */
size_t mp_kernel_x_floats(uint32_t m, size_t K);
void mp_kernel_block_x(const float *x, uint32_t m, size_t K, float *xb);
void mp_kernel_use_x(mp_kernel_job *j, const float *xk, uint32_t m);
/* mp_kernel_gemm with the x of mp_kernel_use_x, run in the caller's buffer: out holds
 * m * nrows + MP_KERNEL_GUARD floats. The in-place launches of one job touch nothing of the
 * job's but read: on the cpu backend (mp_kernel_threadsafe), several threads may run them at
 * once, each with its own out. */
mp_errcode mp_kernel_gemm_in_place(mp_kernel_job *j, const uint32_t *rows, uint32_t nrows, float *out,
                                   mp_err *err);
/* mp_kernel_dequant_prefilled into vals and mp_kernel_gemm_in_place into y, the same outputs
 * and guards; on the cpu backend one launch decodes each value once for both (the product is
 * taken from the values just written: the two kernels' decodes are the same C, so a second
 * decode could only repeat the first). */
mp_errcode mp_kernel_dequant_gemm_prefilled(mp_kernel_job *j, const uint32_t *rows, uint32_t nrows, float *vals,
                                           float *y, mp_err *err);
/* 1 when the job's in-place launches may run in several host threads at once (the cpu backend):
 * for every job of device d (mp_device_threadsafe), or of the job's device. */
int mp_device_threadsafe(const mp_device *d);
int mp_kernel_threadsafe(const mp_kernel_job *j);
void mp_kernel_job_free(mp_kernel_job *j);

/* ---------------------------------------------------------------- modelprep verify */

typedef enum { MP_VS_PASS, MP_VS_WARN, MP_VS_FAIL } mp_vstatus;

/* One line of the report: what failed or deserves a warning, where. */
typedef struct mp_vfinding {
    mp_vstatus status;
    char stage[12];          /* "integrity", "runtime", "structure", "numerics" */
    char text[400];          /* "model.safetensors: tensor 'x': xxh64 ... differs from the manifest" */
} mp_vfinding;

/* The numeric check of one quantized tensor (or one expert slice of a stacked one). */
typedef struct mp_vtensor {
    char name[200];          /* the output linear, "prefix.w13_qweight[3].gate" for a slice */
    char layout[24];         /* kernel family */
    uint64_t n, k;
    uint32_t rows, m;        /* rows checked, activation rows */
    uint64_t bad_values;     /* dequantized values that differ from the reference, bitwise */
    uint64_t bad_outputs;    /* outputs beyond the per-element rounding bound, or NaN/Inf */
    double max_abs_err, nmse, nmse_bound, cosine, zero_frac;
    double y_min, y_max, ref_min, ref_max;
    mp_vstatus status;
} mp_vtensor;

typedef struct mp_verify_opts {
    const char *path;        /* the checkpoint to verify */
    const char *against;     /* the source to compare with; NULL: the manifest's (path from the
                                working directory, else absolute_path, else from beside the
                                output): when the output has quantized tensors and none of these
                                exists, MP_E_IO naming them, unless no_source */
    int no_source;           /* compare with the output's own layout, whatever the manifest says */
    const char *device;      /* see mp_device_open */
    uint32_t rows;           /* rows per tensor (mp_verify_sample_count); 0 = every row */
    uint32_t m;              /* activation rows (8) */
    uint64_t seed;
    /* The numeric checks report as convert and split do (mp_event, include/modelprep.h), from
     * the calling thread: START of phase "verify" with the total in "steps" (a step is one
     * quantized linear, dense weight, stacked tensor or file of GGUF blocks; for a GGUF file,
     * one tensor), an ADVANCE per step, and END once the run is over, whether it succeeded or
     * not. NULL: no calls. The library never draws anything itself. */
    mp_progress_fn progress;
    void *progress_user;
    int runtime;             /* an mp_runtime to check the split for; -1: the one its manifest names */
} mp_verify_opts;

typedef struct mp_verify_report {
    mp_device_info device;
    char device_note[700];   /* why auto did not pick a GPU; empty when it did */
    char reference[600];     /* what the numerics were compared with */
    int manifest;            /* 1: modelprep.json was found and checked */
    char runtime[24];        /* the runtime the split was checked for ("AirLLM"), or "" */
    size_t files_hashed;
    uint64_t bytes_hashed;
    double hash_seconds;
    double numeric_seconds;   /* the numeric stage alone: reading, reference, device, comparison */
    size_t n_tensors_checked; /* tensors of the checkpoint */
    size_t n_findings;
    mp_vfinding *findings;
    size_t n_numeric;
    mp_vtensor *numeric;
    size_t n_fail, n_warn;
    int stopped;             /* unreadable data ended the checks early (a failure says where) */
    double seconds;
} mp_verify_report;

/* Runs integrity, structure and numeric checks. MP_OK means the checks ran: failures are in
 * the report (n_fail). Bad input that cannot be checked at all is MP_E_INPUT/MP_E_UNSUPPORTED,
 * a missing requested device MP_E_DEVICE. Free the report with mp_verify_report_free. */
mp_errcode mp_verify_run(const mp_verify_opts *o, mp_verify_report *r, mp_err *err);
void mp_verify_report_free(mp_verify_report *r);

/* How many rows of a tensor of n rows are checked (n at most 2^32 - 1 counted): every row when
 * want is 0 or >= n; for MP_VERIFY_ROWS_AUTO (the default) n / 64 rounded down to a multiple of
 * 8, at least 16 and at most 64;
 * else want. doc/reference.md section 1.5. */
uint32_t mp_verify_sample_count(uint64_t n, uint32_t want);
/* Those rows, increasing, into rows (mp_verify_sample_count(n, want) of them, returned): all
 * rows, or row 0 alone for a count of 1, else runs of up to 8 consecutive rows, at least two,
 * the first starting at row 0, the last ending at row n - 1, the others spread evenly, each
 * from a multiple of 8 where the runs around it leave room. */
uint32_t mp_verify_sample_rows(uint64_t n, uint32_t want, uint32_t *rows);

/* The bound on |y - yref| for an f32 dot product of length k, in any order, with or without
 * FMA: gamma_k * sum |x w|, gamma_k = k u / (1 - k u), u = 2^-24 (Higham, Accuracy and
 * Stability of Numerical Algorithms, 3.1). */
double mp_verify_gamma(uint64_t k);
/* The probabilistic counterpart for NMSE: 4 sqrt(k) u (Higham and Mary, "A New Approach to
 * Probabilistic Rounding Error Analysis", SIAM J. Sci. Comput. 41(5), 2019: the error of a
 * length-k sum exceeds lambda sqrt(k) u only with probability below 2 exp(-lambda^2 (1-u)^2 / 2)). */
double mp_verify_gamma_prob(uint64_t k);

#endif /* MP_VERIFY_H */
