/*
 * kernels_cpu.c - the cpu backend: kernels/ compiled as C through kernels/cl_as_c.h, every work
 * item run by an OpenMP loop. The same source as the devices run, so a kernel bug shows on the
 * CPU too; the reference it is judged against (dequant_ref.c) shares nothing with it.
 */
#include "device_internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <omp.h>

/* The kernels are the hot loop of verify --full on this backend (doc/verify-speed.md). */
#pragma GCC optimize("O3")
#ifdef MP_NO_TARGET_CLONES
#define KERNEL_LOOP static void
#else
#define KERNEL_LOOP static __attribute__((target_clones("arch=skylake-avx512", "avx512f", "avx2", "default"))) void
#endif

#include "../kernels/cl_as_c.h"
#include "../kernels/mp_kernel.h"

_Thread_local size_t mp_cl_gid[2];

_Static_assert(MP_SPAN == MP_KSPAN && MP_GEMM_MB == MP_KMB, "kernels/mp_kernel.h and device_internal.h disagree");

/* One launch: the kernel arguments and the global size. */
typedef struct cpu_args {
    const uchar *qw, *sc, *zp;
    const int *gidx;
    const uint *P, *rows;
    const float *x;
    float *out, *y; /* y: the product, when a launch computes both (cpu_launch_both) */
    long long n0, n1;
    int parallel;
} cpu_args;

/* F_E_items: the work items of rows [r0, r1) of a launch of F_E, as one loop per row
 * (F_E_rows, kernels/mp_kernel.h), built for AVX-512 and AVX2 as well as the baseline and picked
 * at load time. F_E_run spreads the rows over the threads in one contiguous range each, or runs
 * them on the calling thread when the caller is already one of several (numerics.c's tiles). */
#define CPU_RUN(F, E, ...)                                                                        \
    KERNEL_LOOP F##_##E##_items(const cpu_args *a, uint r0, uint r1)                              \
    {                                                                                             \
        F##_##E##_rows(a->qw, a->sc, a->zp, a->gidx, a->P, a->rows, __VA_ARGS__, r0, r1);         \
    }                                                                                             \
    static void F##_##E##_run(const cpu_args *a)                                                  \
    {                                                                                             \
        long long n = a->P[P_NROWS];                                                              \
        _Pragma("omp parallel if (a->parallel)")                                                  \
        {                                                                                         \
            long long t = omp_get_thread_num(), nt = omp_get_num_threads();                       \
            F##_##E##_items(a, (uint)(n * t / nt), (uint)(n * (t + 1) / nt));                     \
        }                                                                                         \
    }
#define CPU_RUNS(F)                                                                               \
    CPU_RUN(F, dequant, a->out) CPU_RUN(F, gemm, a->x, a->out) CPU_RUN(F, dequant_gemm, a->x, a->out, a->y)

/* Generated from the list of kernels/<stem>.cl files (kernels/embed.sh cpu): every source included,
 * CPU_RUNS(prefix) for each, and MP_CPU_ENTRIES in the order of mp_kfamilies[]. */
#include "gen/kernels_cpu.h"

typedef void run_fn(const cpu_args *);

static run_fn *const entries[][3] = {MP_CPU_ENTRIES}; /* dequant, gemm, both */

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

/* Launch `what` (0 dequant into out, 1 gemm into out, 2 both: values into out, product into y). */
static void cpu_run(const cpu_job *j, int what, const uint32_t *P, const uint32_t *rows, const float *x, float *out,
                    float *y, const size_t global[2])
{
    cpu_args a = {j->kd.qw, j->kd.sc, j->kd.zp ? j->kd.zp : no_zeros, j->kd.gidx ? j->kd.gidx : no_gidx,
                  P, rows, x, out, y, (long long)global[0], (long long)global[1], 0};
    /* Threads pay off from a few hundred thousand weights on (waking a team costs tens of
     * microseconds, more on a loaded machine). */
    a.parallel = !omp_in_parallel() && (double)P[MP_P_NROWS] * (double)P[MP_P_K] >= 262144.0;
    assert(j->kd.family >= 0 && j->kd.family < (int)(sizeof entries / sizeof *entries));
    entries[j->kd.family][what](&a);
}

static mp_errcode cpu_launch(mp_device *d, void *job, int gemm, const uint32_t *P,
                             const uint32_t *rows, const float *x, size_t x_floats, float *out,
                             size_t out_floats, const size_t global[2], mp_err *err)
{
    (void)d, (void)x_floats, (void)out_floats, (void)err;
    cpu_run(job, gemm, P, rows, x, out, NULL, global);
    return MP_OK;
}

static mp_errcode cpu_launch_both(mp_device *d, void *job, const uint32_t *P, const uint32_t *rows,
                                  const float *x, float *vals, float *y, mp_err *err)
{
    (void)d, (void)err;
    size_t global[2] = {P[MP_P_NROWS], 1};
    cpu_run(job, 2, P, rows, x, vals, y, global);
    return MP_OK;
}

static void cpu_job_free(void *job) { free(job); }
static void cpu_close(mp_device *d) { (void)d; }

static const mp_backend_ops cpu_ops = {cpu_upload, cpu_launch, cpu_launch_both, cpu_job_free, cpu_close};

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
