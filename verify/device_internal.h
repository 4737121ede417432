/*
 * device_internal.h - internal to verify/: what a backend provides. device.c lists the backends
 * in one table, selects a device and runs every launch through the same NaN-and-guard harness, so no backend can pass by
 * doing nothing.
 */
#ifndef MP_DEVICE_INTERNAL_H
#define MP_DEVICE_INTERNAL_H

#include "verify.h"

/* Floats after each output that no kernel may touch. */
#define MP_GUARD MP_KERNEL_GUARD

/* kernels/mp_kernel.h's MP_SPAN (k per dequant work item) and MP_GEMM_MB (rows of x per block of
 * the gemm's x), which launches size and lay out by (kernels_cpu.c asserts they agree). */
#define MP_KSPAN 8
#define MP_KMB 8

typedef struct mp_backend_ops {
    mp_errcode (*upload)(mp_device *d, const mp_kernel_data *kd, void **job, mp_err *err);
    /* Runs <family>_dequant (gemm = 0, global size {ceil(K / MP_KSPAN), nrows}) or <family>_gemm
     * (global size {nrows, 1}; x blocked as kernels/mp_kernel.h says) with parameter block P. `out` holds out_floats values (the guard included):
     * all of it goes to the device and comes back. */
    mp_errcode (*launch)(mp_device *d, void *job, int gemm, const uint32_t *P, const uint32_t *rows,
                         const float *x, size_t x_floats, float *out, size_t out_floats,
                         const size_t global[2], mp_err *err);
    /* Optional (NULL: two launches): both kernels' outputs from one decode of each value, values
     * [nrows][K] into vals and the product [M][nrows] into y, as the two launches give them (the
     * cpu backend: F_dequant_gemm_rows). The caller sets and checks the guards after both. */
    mp_errcode (*launch_both)(mp_device *d, void *job, const uint32_t *P, const uint32_t *rows, const float *x,
                              float *vals, float *y, mp_err *err);
    void (*job_free)(void *job);
    void (*close)(mp_device *d);
} mp_backend_ops;

struct mp_device {
    mp_device_info info;
    const mp_backend_ops *ops;
    void *impl;
};

/* One backend, as device.c's table lists it. A backend file defines one of these and nothing
 * else public; it never calls device.c. */
typedef struct mp_backend_def {
    const char *name;  /* as --device and `devices` spell it: "cuda" */
    /* Fills r->status ("ok" or why not), r->devices and r->n_devices (r->backend is set). */
    void (*probe)(mp_backend_report *r);
    /* Opens device `index` of the probe's list into d (d->info is filled): sets d->ops, d->impl. */
    mp_errcode (*open)(mp_device *d, unsigned index, mp_err *err);
} mp_backend_def;

extern const mp_backend_def mp_backend_level_zero, mp_backend_opencl, mp_backend_cuda, mp_backend_cpu;

/* kfamily.c: the kernel entry names "<prefix>_dequant" / "<prefix>_gemm", the embedded OpenCL C
 * source (NUL-terminated) and SPIR-V module of a family, and kernels/cl_as_cuda.h. */
const char *mp_kfamily_prefix(mp_kfamily f);
const char *mp_kfamily_source(mp_kfamily f, size_t *len);
const unsigned char *mp_kfamily_spirv(mp_kfamily f, size_t *len);
const char *mp_kernel_cuda_prelude(size_t *len);

#endif /* MP_DEVICE_INTERNAL_H */
