/*
 * kernels_cpu.c - the cpu backend: kernels/ compiled as C through kernels/cl_as_c.h, every work
 * item run by an OpenMP loop. The same source as the devices run, so a kernel bug shows on the
 * CPU too; the reference it is judged against (dequant_ref.c) shares nothing with it.
 */
#include "device_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../kernels/cl_as_c.h"

#include "../kernels/cutlass_int4.cl"
#include "../kernels/onednn_int4.cl"
#include "../kernels/gptq.cl"
#include "../kernels/awq.cl"
#include "../kernels/compressed_tensors.cl"
#include "../kernels/gguf.cl"

_Thread_local size_t mp_cl_gid[2];

typedef void kernel_fn(const uchar *, const uchar *, const uchar *, const int *, const uint *,
                       const uint *, const float *, float *);

static kernel_fn *const entries[MP_KF_COUNT][2] = {
    [MP_KF_CUTLASS] = {cutlass_dequant, cutlass_gemm},
    [MP_KF_ONEDNN] = {onednn_dequant, onednn_gemm},
    [MP_KF_GPTQ] = {gptq_dequant, gptq_gemm},
    [MP_KF_AWQ] = {awq_dequant, awq_gemm},
    [MP_KF_CT] = {ct_dequant, ct_gemm},
    [MP_KF_GGUF] = {gguf_dequant, gguf_gemm},
};

typedef struct cpu_job {
    mp_kernel_data kd;
} cpu_job;

static const int32_t no_gidx[1];
static const uint8_t no_zeros[4];

static mp_errcode cpu_upload(mp_device *d, const mp_kernel_data *kd, void **job, mp_err *err)
{
    (void)d;
    cpu_job *j = malloc(sizeof *j);
    if (!j) return mp_errf(err, MP_E_NOMEM, "out of memory");
    j->kd = *kd;
    *job = j;
    return MP_OK;
}

static mp_errcode cpu_launch(mp_device *d, void *job, int gemm, const uint32_t *P,
                             const uint32_t *rows, const float *x, size_t x_floats, float *out,
                             size_t out_floats, const size_t global[2], mp_err *err)
{
    (void)d, (void)x_floats, (void)out_floats, (void)err;
    const cpu_job *j = job;
    kernel_fn *fn = entries[j->kd.family][gemm];
    const uchar *zp = j->kd.zp ? j->kd.zp : no_zeros;
    const int *gidx = j->kd.gidx ? j->kd.gidx : no_gidx;
    long long n0 = (long long)global[0], n1 = (long long)global[1];
#pragma omp parallel for collapse(2) schedule(static) if (n0 * n1 >= 4096)
    for (long long b = 0; b < n1; b++)
        for (long long a = 0; a < n0; a++) {
            mp_cl_gid[0] = (size_t)a;
            mp_cl_gid[1] = (size_t)b;
            fn(j->kd.qw, j->kd.sc, zp, gidx, P, rows, x, out);
        }
    return MP_OK;
}

static void cpu_job_free(void *job) { free(job); }
static void cpu_close(mp_device *d) { (void)d; }

static const mp_backend_ops cpu_ops = {cpu_upload, cpu_launch, cpu_job_free, cpu_close};

static mp_errcode cpu_open(mp_device *d, unsigned index, mp_err *err)
{
    (void)index, (void)err;
    d->ops = &cpu_ops;
    return MP_OK;
}

/* The host CPU's model name, for the cpu backend's line. */
static void cpu_probe(mp_backend_report *r)
{
    mp_device_info *d = &r->devices[0];
    memset(d, 0, sizeof *d);
    d->backend = MP_BACKEND_CPU;
    d->usable = 1;
    snprintf(d->type, sizeof d->type, "CPU");
    snprintf(d->name, sizeof d->name, "host CPU");
    snprintf(d->vendor, sizeof d->vendor, "kernels/ compiled as C");
    snprintf(d->driver, sizeof d->driver, "OpenMP");
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || !colon) continue;
        colon += 1 + (ptrdiff_t)strspn(colon + 1, " \t");
        colon[strcspn(colon, "\n")] = 0;
        snprintf(d->name, sizeof d->name, "%.100s", colon);
        break;
    }
    if (f) fclose(f);
    snprintf(d->version, sizeof d->version, "%ld cores", n);
    snprintf(r->status, sizeof r->status, "ok");
    r->n_devices = 1;
}

const mp_backend_def mp_backend_cpu = {"cpu", cpu_probe, cpu_open};
