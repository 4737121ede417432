/*
 * device_internal.h - internal to verify/: what a backend provides. device.c selects a device
 * and runs every launch through the same NaN-and-guard harness, so no backend can pass by
 * doing nothing.
 */
#ifndef MP_DEVICE_INTERNAL_H
#define MP_DEVICE_INTERNAL_H

#include "verify.h"

/* Floats after each output that no kernel may touch. */
#define MP_GUARD 64

typedef struct mp_backend_ops {
    mp_errcode (*upload)(mp_device *d, const mp_kernel_data *kd, void **job, mp_err *err);
    /* Runs <family>_dequant (gemm = 0, global size {K, nrows}) or <family>_gemm (global size
     * {nrows, M}) with parameter block P. `out` holds out_floats values (the guard included):
     * all of it goes to the device and comes back. */
    mp_errcode (*launch)(mp_device *d, void *job, int gemm, const uint32_t *P, const uint32_t *rows,
                         const float *x, size_t x_floats, float *out, size_t out_floats,
                         const size_t global[2], mp_err *err);
    void (*job_free)(void *job);
    void (*close)(mp_device *d);
} mp_backend_ops;

struct mp_device {
    mp_device_info info;
    const mp_backend_ops *ops;
    void *impl;
};

/* The kernel entry names: "<prefix>_dequant" / "<prefix>_gemm". */
const char *mp_kfamily_prefix(mp_kfamily f);
/* The embedded OpenCL C source (NUL-terminated) and SPIR-V module of a family. */
const char *mp_kfamily_source(mp_kfamily f, size_t *len);
const unsigned char *mp_kfamily_spirv(mp_kfamily f, size_t *len);

void mp_ze_probe(mp_backend_report *r);
mp_errcode mp_ze_open(mp_device *d, unsigned index, mp_err *err);
void mp_cl_probe(mp_backend_report *r);
mp_errcode mp_cl_open(mp_device *d, unsigned index, mp_err *err);
mp_errcode mp_cpu_open(mp_device *d, mp_err *err);

#endif /* MP_DEVICE_INTERNAL_H */
