/*
 * device_cl.c - the OpenCL backend: every platform and device the ICD loader knows, the kernel
 * sources built at run time with clCreateProgramWithSource (-cl-std=CL1.2), as PoCL needs
 * (doc/devices.md §4: Debian's PoCL cannot take SPIR-V).
 */
#define CL_TARGET_OPENCL_VERSION 120
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include "device_internal.h"

#include <CL/cl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Device index i counted over all platforms, in ICD order. */
typedef struct cl_pick {
    cl_platform_id platform;
    cl_device_id device;
} cl_pick;

typedef struct cl_impl {
    cl_context ctx;
    cl_command_queue queue;
    cl_program prog[MP_KF_MAX];
} cl_impl;

typedef struct cl_job {
    cl_kernel kernel[2];
    cl_mem qw, sc, zp, gidx;
} cl_job;

static const char *cl_status_name(cl_int e)
{
    switch (e) {
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND";
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
    case CL_INVALID_VALUE: return "CL_INVALID_VALUE";
    case CL_INVALID_KERNEL_ARGS: return "CL_INVALID_KERNEL_ARGS";
    case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE";
    case CL_INVALID_BUFFER_SIZE: return "CL_INVALID_BUFFER_SIZE";
    default: return "OpenCL error";
    }
}

#define CL_FAIL(err, call, e) \
    mp_errf((err), MP_E_DEVICE, "opencl: %s failed: %s (%d)", (call), cl_status_name(e), (int)(e))

static void str_info(cl_device_id d, cl_device_info what, char *buf, size_t cap)
{
    if (clGetDeviceInfo(d, what, cap, buf, NULL) != CL_SUCCESS) snprintf(buf, cap, "?");
    buf[cap - 1] = 0;
}

/* Calls fn for each device; stops when it returns nonzero. Returns the platform error, if any. */
static cl_int each_device(int (*fn)(void *, cl_platform_id, cl_device_id), void *arg)
{
    cl_uint np = 0;
    cl_int e = clGetPlatformIDs(0, NULL, &np);
    if (e != CL_SUCCESS) return e;
    if (np == 0) return -1001;
    cl_platform_id plats[16];
    if (np > 16) np = 16;
    if ((e = clGetPlatformIDs(np, plats, NULL)) != CL_SUCCESS) return e;
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        cl_device_id devs[16];
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 16, devs, &nd) != CL_SUCCESS) continue;
        for (cl_uint i = 0; i < nd && i < 16; i++)
            if (fn(arg, plats[p], devs[i])) return CL_SUCCESS;
    }
    return CL_SUCCESS;
}

static void describe(cl_platform_id p, cl_device_id d, mp_device_info *o)
{
    memset(o, 0, sizeof *o);
    o->backend = MP_BACKEND_OPENCL;
    o->usable = 1;
    cl_device_type t = 0;
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof t, &t, NULL);
    o->is_gpu = (t & CL_DEVICE_TYPE_GPU) != 0;
    snprintf(o->type, sizeof o->type, "%s",
             o->is_gpu ? "GPU" : t & CL_DEVICE_TYPE_CPU ? "CPU" : t & CL_DEVICE_TYPE_ACCELERATOR ? "ACCELERATOR" : "OTHER");
    str_info(d, CL_DEVICE_NAME, o->name, sizeof o->name);
    str_info(d, CL_DEVICE_VENDOR, o->vendor, sizeof o->vendor);
    str_info(d, CL_DEVICE_VERSION, o->version, sizeof o->version);
    str_info(d, CL_DRIVER_VERSION, o->driver, sizeof o->driver);
    cl_uint vid = 0;
    clGetDeviceInfo(d, CL_DEVICE_VENDOR_ID, sizeof vid, &vid, NULL);
    o->vendor_id = vid;
    if (clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof o->platform, o->platform, NULL) != CL_SUCCESS)
        snprintf(o->platform, sizeof o->platform, "?");
    o->platform[sizeof o->platform - 1] = 0;
}

typedef struct probe_ctx {
    mp_backend_report *r;
} probe_ctx;

static int probe_one(void *arg, cl_platform_id p, cl_device_id d)
{
    mp_backend_report *r = ((probe_ctx *)arg)->r;
    if (r->n_devices == sizeof r->devices / sizeof *r->devices) return 1;
    describe(p, d, &r->devices[r->n_devices]);
    r->devices[r->n_devices].index = (unsigned)r->n_devices;
    r->n_devices++;
    return 0;
}

static void cl_probe(mp_backend_report *r)
{
    probe_ctx c = {r};
    cl_int e = each_device(probe_one, &c);
    if (e != CL_SUCCESS)
        snprintf(r->status, sizeof r->status, "no OpenCL platform (ICD loader: %s, %d)", cl_status_name(e), (int)e);
    else if (r->n_devices == 0)
        snprintf(r->status, sizeof r->status, "no OpenCL device");
    else
        snprintf(r->status, sizeof r->status, "ok");
}

typedef struct find_ctx {
    unsigned want, seen;
    cl_pick pick;
    int found;
} find_ctx;

static int find_one(void *arg, cl_platform_id p, cl_device_id d)
{
    find_ctx *c = arg;
    if (c->seen++ != c->want) return 0;
    c->pick = (cl_pick){p, d};
    c->found = 1;
    return 1;
}

static mp_errcode cl_upload(mp_device *d, const mp_kernel_data *kd, void **job, mp_err *err);
static mp_errcode cl_launch(mp_device *d, void *job, int gemm, const uint32_t *P, const uint32_t *rows,
                            const float *x, size_t x_floats, float *out, size_t out_floats,
                            const size_t global[2], mp_err *err);
static void cl_job_free(void *job);
static void cl_close(mp_device *d);

static const mp_backend_ops cl_ops = {cl_upload, cl_launch, NULL, cl_job_free, cl_close};

static mp_errcode cl_open(mp_device *d, unsigned index, mp_err *err)
{
    find_ctx c = {index, 0, {0, 0}, 0};
    cl_int e = each_device(find_one, &c);
    if (e != CL_SUCCESS) return CL_FAIL(err, "clGetPlatformIDs", e);
    if (!c.found) return mp_errf(err, MP_E_DEVICE, "opencl: device %u is gone", index);
    cl_impl *im = calloc(1, sizeof *im);
    if (!im) return mp_errf(err, MP_E_NOMEM, "out of memory");
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)c.pick.platform, 0};
    const char *step = "clCreateContext";
    im->ctx = clCreateContext(props, 1, &c.pick.device, NULL, NULL, &e);
    if (e == CL_SUCCESS) {
        step = "clCreateCommandQueue";
        im->queue = clCreateCommandQueue(im->ctx, c.pick.device, 0, &e);
    }
    if (e != CL_SUCCESS) {
        if (im->ctx) clReleaseContext(im->ctx);
        free(im);
        return CL_FAIL(err, step, e);
    }
    d->impl = im;
    d->ops = &cl_ops;
    return MP_OK;
}

static cl_device_id queue_device(const cl_impl *im)
{
    cl_device_id dev = NULL;
    clGetCommandQueueInfo(im->queue, CL_QUEUE_DEVICE, sizeof dev, &dev, NULL);
    return dev;
}

static mp_errcode build(mp_device *d, mp_kfamily f, mp_err *err)
{
    cl_impl *im = d->impl;
    if (im->prog[f]) return MP_OK;
    size_t len;
    const char *src = mp_kfamily_source(f, &len);
    cl_int e;
    cl_program p = clCreateProgramWithSource(im->ctx, 1, &src, &len, &e);
    if (e != CL_SUCCESS) return CL_FAIL(err, "clCreateProgramWithSource", e);
    cl_device_id dev = queue_device(im);
    /* f32 division correctly rounded where the device offers it (kernels/fp4.cl divides by
     * the global scale as the CPU does); a device without it may differ there, and verify says so. */
    cl_device_fp_config fp = 0;
    clGetDeviceInfo(dev, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL);
    const char *opts = fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT ? "-cl-std=CL1.2 -cl-fp32-correctly-rounded-divide-sqrt"
                                                               : "-cl-std=CL1.2";
    e = clBuildProgram(p, 1, &dev, opts, NULL, NULL);
    if (e != CL_SUCCESS) {
        char log[512] = "";
        clGetProgramBuildInfo(p, dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        log[sizeof log - 1] = 0;
        for (char *c = log; *c; c++)
            if (*c == '\n') *c = ' ';
        clReleaseProgram(p);
        return mp_errf(err, MP_E_DEVICE, "opencl: building the %s kernels failed: %s (%d): %.300s",
                       mp_kfamily_name(f), cl_status_name(e), (int)e, log);
    }
    im->prog[f] = p;
    return MP_OK;
}

static cl_mem buffer(cl_context ctx, const void *data, size_t bytes, cl_mem_flags flags, cl_int *e)
{
    static const uint32_t dummy = 0;
    if (!data || !bytes) {
        data = &dummy;
        bytes = sizeof dummy;
    }
    return clCreateBuffer(ctx, flags | CL_MEM_COPY_HOST_PTR, bytes, (void *)data, e);
}

static mp_errcode cl_upload(mp_device *d, const mp_kernel_data *kd, void **job, mp_err *err)
{
    cl_impl *im = d->impl;
    MP_FORWARD(build(d, kd->family, err));
    cl_job *j = calloc(1, sizeof *j);
    if (!j) return mp_errf(err, MP_E_NOMEM, "out of memory");
    cl_int e = CL_SUCCESS;
    char name[64];
    for (int g = 0; g < 2 && e == CL_SUCCESS; g++) {
        snprintf(name, sizeof name, "%s_%s", mp_kfamily_prefix(kd->family), g ? "gemm" : "dequant");
        j->kernel[g] = clCreateKernel(im->prog[kd->family], name, &e);
    }
    if (e == CL_SUCCESS) j->qw = buffer(im->ctx, kd->qw, kd->qw_bytes, CL_MEM_READ_ONLY, &e);
    if (e == CL_SUCCESS) j->sc = buffer(im->ctx, kd->sc, kd->sc_bytes, CL_MEM_READ_ONLY, &e);
    if (e == CL_SUCCESS) j->zp = buffer(im->ctx, kd->zp, kd->zp_bytes, CL_MEM_READ_ONLY, &e);
    if (e == CL_SUCCESS) j->gidx = buffer(im->ctx, kd->gidx, kd->gidx_bytes, CL_MEM_READ_ONLY, &e);
    if (e != CL_SUCCESS) {
        cl_job_free(j);
        return CL_FAIL(err, "uploading the weights", e);
    }
    *job = j;
    return MP_OK;
}

static mp_errcode cl_launch(mp_device *d, void *job, int gemm, const uint32_t *P, const uint32_t *rows,
                            const float *x, size_t x_floats, float *out, size_t out_floats,
                            const size_t global[2], mp_err *err)
{
    cl_impl *im = d->impl;
    cl_job *j = job;
    cl_int e = CL_SUCCESS;
    cl_mem pb = buffer(im->ctx, P, MP_P_COUNT * sizeof *P, CL_MEM_READ_ONLY, &e), rb = NULL, xb = NULL, ob = NULL;
    if (e == CL_SUCCESS) rb = buffer(im->ctx, rows, P[MP_P_NROWS] * sizeof *rows, CL_MEM_READ_ONLY, &e);
    if (e == CL_SUCCESS) xb = buffer(im->ctx, x, x_floats * sizeof *x, CL_MEM_READ_ONLY, &e);
    if (e == CL_SUCCESS) ob = buffer(im->ctx, out, out_floats * sizeof *out, CL_MEM_READ_WRITE, &e);
    const char *step = "clCreateBuffer";
    cl_kernel k = j->kernel[gemm];
    cl_mem args[8] = {j->qw, j->sc, j->zp, j->gidx, pb, rb, xb, ob};
    for (cl_uint a = 0; a < 8 && e == CL_SUCCESS; a++) {
        step = "clSetKernelArg";
        e = clSetKernelArg(k, a, sizeof(cl_mem), &args[a]);
    }
    if (e == CL_SUCCESS && global[0] && global[1]) {
        step = "clEnqueueNDRangeKernel";
        e = clEnqueueNDRangeKernel(im->queue, k, 2, NULL, global, NULL, 0, NULL, NULL);
    }
    if (e == CL_SUCCESS) {
        step = "clEnqueueReadBuffer";
        e = clEnqueueReadBuffer(im->queue, ob, CL_TRUE, 0, out_floats * sizeof *out, out, 0, NULL, NULL);
    }
    if (e == CL_SUCCESS) {
        step = "clFinish";
        e = clFinish(im->queue);
    }
    cl_mem all[4] = {pb, rb, xb, ob};
    for (int i = 0; i < 4; i++)
        if (all[i]) clReleaseMemObject(all[i]);
    return e == CL_SUCCESS ? MP_OK : CL_FAIL(err, step, e);
}

static void cl_job_free(void *job)
{
    cl_job *j = job;
    if (!j) return;
    for (int g = 0; g < 2; g++)
        if (j->kernel[g]) clReleaseKernel(j->kernel[g]);
    cl_mem m[4] = {j->qw, j->sc, j->zp, j->gidx};
    for (int i = 0; i < 4; i++)
        if (m[i]) clReleaseMemObject(m[i]);
    free(j);
}

static void cl_close(mp_device *d)
{
    cl_impl *im = d->impl;
    if (!im) return;
    for (int f = 0; f < mp_kfamily_count(); f++)
        if (im->prog[f]) clReleaseProgram(im->prog[f]);
    clReleaseCommandQueue(im->queue);
    clReleaseContext(im->ctx);
    free(im);
}

const mp_backend_def mp_backend_opencl = {"opencl", cl_probe, cl_open};
