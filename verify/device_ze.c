/*
 * device_ze.c - the Level Zero backend (loader 1.8 = API 1.4), the host flow of
 * doc/devices.md §1: zeInit(GPU_ONLY), drivers and devices, a context, a module from
 * the embedded SPIR-V (build log on failure), device allocations, an immediate synchronous
 * command list, copies, launch, barrier, copy back.
 *
 * Only Intel GPUs are accepted: the loader's null driver reports a "GPU" with vendor 0 that
 * runs nothing (§1.5), and it is listed as refused. The NaN-filled output of device.c catches
 * any other device that runs nothing.
 */
#include "device_internal.h"

#include <level_zero/loader/ze_loader.h>
#include <level_zero/ze_api.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MP_ZE_LOADER_VERSION
#define MP_ZE_LOADER_VERSION "?"
#endif

static const char *ze_name(ze_result_t r)
{
    switch (r) {
    case ZE_RESULT_ERROR_UNINITIALIZED: return "ZE_RESULT_ERROR_UNINITIALIZED";
    case ZE_RESULT_ERROR_DEVICE_LOST: return "ZE_RESULT_ERROR_DEVICE_LOST";
    case ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY: return "ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY";
    case ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY: return "ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY";
    case ZE_RESULT_ERROR_MODULE_BUILD_FAILURE: return "ZE_RESULT_ERROR_MODULE_BUILD_FAILURE";
    case ZE_RESULT_ERROR_INVALID_ARGUMENT: return "ZE_RESULT_ERROR_INVALID_ARGUMENT";
    case ZE_RESULT_ERROR_UNSUPPORTED_FEATURE: return "ZE_RESULT_ERROR_UNSUPPORTED_FEATURE";
    default: return "ze_result_t";
    }
}

#define ZE_FAIL(err, call, r) \
    mp_errf((err), MP_E_DEVICE, "level-zero: %s failed: %s (0x%08x)", (call), ze_name(r), (unsigned)(r))

/* The loader's own version, as zelLoaderGetVersions reports it. */
static void loader_version(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", MP_ZE_LOADER_VERSION);
    zel_component_version_t v[8];
    size_t n = 0;
    if (zelLoaderGetVersions(&n, NULL) != ZE_RESULT_SUCCESS || n == 0) return;
    if (n > 8) n = 8;
    if (zelLoaderGetVersions(&n, v) != ZE_RESULT_SUCCESS) return;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].component_name, "loader") == 0)
            snprintf(buf, cap, "%d.%d.%d", v[i].component_lib_version.major, v[i].component_lib_version.minor,
                     v[i].component_lib_version.patch);
}

typedef struct ze_found {
    ze_driver_handle_t driver;
    ze_device_handle_t device;
} ze_found;

/* Lists up to 16 devices of every driver; fills info when non-NULL. */
static ze_result_t enumerate(mp_device_info *info, ze_found *found, size_t *n)
{
    *n = 0;
    ze_result_t r = zeInit(ZE_INIT_FLAG_GPU_ONLY);
    if (r != ZE_RESULT_SUCCESS) return r;
    uint32_t nd = 0;
    if ((r = zeDriverGet(&nd, NULL)) != ZE_RESULT_SUCCESS) return r;
    ze_driver_handle_t drivers[8];
    if (nd > 8) nd = 8;
    if ((r = zeDriverGet(&nd, drivers)) != ZE_RESULT_SUCCESS) return r;
    for (uint32_t d = 0; d < nd; d++) {
        uint32_t nv = 0;
        ze_device_handle_t devs[16];
        if (zeDeviceGet(drivers[d], &nv, NULL) != ZE_RESULT_SUCCESS) continue;
        if (nv > 16) nv = 16;
        if (zeDeviceGet(drivers[d], &nv, devs) != ZE_RESULT_SUCCESS) continue;
        for (uint32_t i = 0; i < nv && *n < 16; i++) {
            found[*n] = (ze_found){drivers[d], devs[i]};
            if (info) {
                mp_device_info *o = &info[*n];
                memset(o, 0, sizeof *o);
                o->backend = MP_BACKEND_LEVEL_ZERO;
                o->index = (unsigned)*n;
                ze_device_properties_t p = {.stype = ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES};
                zeDeviceGetProperties(devs[i], &p);
                ze_driver_properties_t dp = {.stype = ZE_STRUCTURE_TYPE_DRIVER_PROPERTIES};
                zeDriverGetProperties(drivers[d], &dp);
                ze_api_version_t api = 0;
                zeDriverGetApiVersion(drivers[d], &api);
                ze_device_module_properties_t mp = {.stype = ZE_STRUCTURE_TYPE_DEVICE_MODULE_PROPERTIES};
                zeDeviceGetModuleProperties(devs[i], &mp);
                o->is_gpu = p.type == ZE_DEVICE_TYPE_GPU;
                snprintf(o->type, sizeof o->type, "%s", o->is_gpu ? "GPU" : "OTHER");
                snprintf(o->name, sizeof o->name, "%.100s", p.name);
                o->vendor_id = p.vendorId;
                snprintf(o->vendor, sizeof o->vendor, "%s", p.vendorId == 0x8086 ? "Intel" : "unknown");
                snprintf(o->version, sizeof o->version, "API %u.%u", ZE_MAJOR_VERSION(api), ZE_MINOR_VERSION(api));
                snprintf(o->driver, sizeof o->driver, "%u", dp.driverVersion);
                snprintf(o->platform, sizeof o->platform, "SPIR-V %u.%u", ZE_MAJOR_VERSION(mp.spirvVersionSupported),
                         ZE_MINOR_VERSION(mp.spirvVersionSupported));
                int intel = o->is_gpu && p.vendorId == 0x8086 && strcmp(o->name, "Null Device") != 0;
                const char *any = getenv("MODELPREP_ZE_ANY_VENDOR");
                o->usable = intel || (o->is_gpu && any && strcmp(any, "1") == 0);
                if (!intel)
                    snprintf(o->note, sizeof o->note, "%s vendor 0x%04x '%.40s' is not an Intel GPU%s", o->type,
                             (unsigned)p.vendorId, o->name,
                             o->usable ? "; accepted because MODELPREP_ZE_ANY_VENDOR=1"
                                       : " (the loader's null driver runs nothing)");
            }
            (*n)++;
        }
    }
    return ZE_RESULT_SUCCESS;
}

static void ze_probe(mp_backend_report *r)
{
    char ver[32];
    loader_version(ver, sizeof ver);
    ze_found found[16];
    ze_result_t z = enumerate(r->devices, found, &r->n_devices);
    if (z == ZE_RESULT_ERROR_UNINITIALIZED)
        snprintf(r->status, sizeof r->status, "loader %s present, no driver (ZE_RESULT_ERROR_UNINITIALIZED)", ver);
    else if (z != ZE_RESULT_SUCCESS)
        snprintf(r->status, sizeof r->status, "loader %s: zeInit failed: %s (0x%08x)", ver, ze_name(z), (unsigned)z);
    else if (r->n_devices == 0)
        snprintf(r->status, sizeof r->status, "loader %s, driver present, no device", ver);
    else
        snprintf(r->status, sizeof r->status, "ok");
}

typedef struct ze_impl {
    ze_driver_handle_t driver;
    ze_device_handle_t device;
    ze_context_handle_t ctx;
    ze_command_list_handle_t list;
    ze_module_handle_t module[MP_KF_MAX];
} ze_impl;

typedef struct ze_job {
    ze_context_handle_t ctx;   /* frees the allocations */
    ze_kernel_handle_t kernel[2];
    void *qw, *sc, *zp, *gidx;
} ze_job;

static mp_errcode ze_upload(mp_device *d, const mp_kernel_data *kd, void **job, mp_err *err);
static mp_errcode ze_launch(mp_device *d, void *job, int gemm, const uint32_t *P, const uint32_t *rows,
                            const float *x, size_t x_floats, float *out, size_t out_floats,
                            const size_t global[2], mp_err *err);
static void ze_job_free_impl(void *job);
static void ze_close(mp_device *d);

static const mp_backend_ops ze_ops = {ze_upload, ze_launch, NULL, ze_job_free_impl, ze_close};

static uint32_t compute_ordinal(ze_device_handle_t dev)
{
    uint32_t n = 0;
    ze_command_queue_group_properties_t g[8];
    if (zeDeviceGetCommandQueueGroupProperties(dev, &n, NULL) != ZE_RESULT_SUCCESS) return 0;
    if (n > 8) n = 8;
    for (uint32_t i = 0; i < n; i++) g[i] = (ze_command_queue_group_properties_t){.stype = ZE_STRUCTURE_TYPE_COMMAND_QUEUE_GROUP_PROPERTIES};
    if (zeDeviceGetCommandQueueGroupProperties(dev, &n, g) != ZE_RESULT_SUCCESS) return 0;
    for (uint32_t i = 0; i < n; i++)
        if (g[i].flags & ZE_COMMAND_QUEUE_GROUP_PROPERTY_FLAG_COMPUTE) return i;
    return 0;
}

static mp_errcode ze_open(mp_device *d, unsigned index, mp_err *err)
{
    ze_found found[16];
    size_t n = 0;
    ze_result_t r = enumerate(NULL, found, &n);
    if (r != ZE_RESULT_SUCCESS) return ZE_FAIL(err, "zeInit", r);
    if (index >= n) return mp_errf(err, MP_E_DEVICE, "level-zero: device %u is gone", index);
    ze_impl *im = calloc(1, sizeof *im);
    if (!im) return mp_errf(err, MP_E_NOMEM, "out of memory");
    im->driver = found[index].driver;
    im->device = found[index].device;
    ze_context_desc_t cd = {.stype = ZE_STRUCTURE_TYPE_CONTEXT_DESC};
    if ((r = zeContextCreate(im->driver, &cd, &im->ctx)) != ZE_RESULT_SUCCESS) {
        free(im);
        return ZE_FAIL(err, "zeContextCreate", r);
    }
    ze_command_queue_desc_t qd = {.stype = ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC,
                                  .ordinal = compute_ordinal(im->device),
                                  .mode = ZE_COMMAND_QUEUE_MODE_SYNCHRONOUS};
    if ((r = zeCommandListCreateImmediate(im->ctx, im->device, &qd, &im->list)) != ZE_RESULT_SUCCESS) {
        zeContextDestroy(im->ctx);
        free(im);
        return ZE_FAIL(err, "zeCommandListCreateImmediate", r);
    }
    d->impl = im;
    d->ops = &ze_ops;
    return MP_OK;
}

static mp_errcode build(ze_impl *im, mp_kfamily f, mp_err *err)
{
    if (im->module[f]) return MP_OK;
    size_t len;
    const unsigned char *spv = mp_kfamily_spirv(f, &len);
    if (len < 20 || spv[0] != 0x03 || spv[1] != 0x02 || spv[2] != 0x23 || spv[3] != 0x07)
        return mp_errf(err, MP_E_DEVICE, "level-zero: the embedded %s SPIR-V module is damaged", mp_kfamily_name(f));
    /* f32 division correctly rounded (kernels/fp4.cl divides as the CPU does); a driver that
     * refuses the option builds without it, and a float family may then differ, loudly. */
    ze_module_desc_t md = {.stype = ZE_STRUCTURE_TYPE_MODULE_DESC, .format = ZE_MODULE_FORMAT_IL_SPIRV,
                           .inputSize = len, .pInputModule = spv,
                           .pBuildFlags = "-cl-fp32-correctly-rounded-divide-sqrt"};
    ze_module_build_log_handle_t log = NULL;
    ze_result_t r = zeModuleCreate(im->ctx, im->device, &md, &im->module[f], &log);
    if (r != ZE_RESULT_SUCCESS) {
        if (log) zeModuleBuildLogDestroy(log);
        log = NULL;
        md.pBuildFlags = "";
        r = zeModuleCreate(im->ctx, im->device, &md, &im->module[f], &log);
    }
    if (r != ZE_RESULT_SUCCESS) {
        char text[400] = "";
        size_t n = 0;
        if (log && zeModuleBuildLogGetString(log, &n, NULL) == ZE_RESULT_SUCCESS && n > 0) {
            char *s = calloc(n + 1, 1);
            if (s && zeModuleBuildLogGetString(log, &n, s) == ZE_RESULT_SUCCESS) snprintf(text, sizeof text, "%s", s);
            free(s);
        }
        if (log) zeModuleBuildLogDestroy(log);
        for (char *c = text; *c; c++)
            if (*c == '\n') *c = ' ';
        im->module[f] = NULL;
        return mp_errf(err, MP_E_DEVICE, "level-zero: zeModuleCreate (%s, SPIR-V %u.%u) failed: %s (0x%08x): %s",
                       mp_kfamily_name(f), spv[6], spv[5], ze_name(r), (unsigned)r, text);
    }
    if (log) zeModuleBuildLogDestroy(log);
    return MP_OK;
}

/* Copies between the host and the device go through host allocations the driver made
 * (zeMemAllocHost): the spec does not promise that ordinary malloc memory is reachable. */
static ze_result_t staged_copy(ze_impl *im, void *dst_dev, const void *src_host, void *dst_host,
                               const void *src_dev, size_t bytes)
{
    ze_host_mem_alloc_desc_t hd = {.stype = ZE_STRUCTURE_TYPE_HOST_MEM_ALLOC_DESC};
    void *stage = NULL;
    ze_result_t r = zeMemAllocHost(im->ctx, &hd, bytes, 64, &stage);
    if (r != ZE_RESULT_SUCCESS) return r;
    if (src_host) {
        memcpy(stage, src_host, bytes);
        r = zeCommandListAppendMemoryCopy(im->list, dst_dev, stage, bytes, NULL, 0, NULL);
    } else {
        /* The stage starts as the caller's NaN-filled buffer, so a copy that never happens
         * brings back NaN, not whatever the allocation held. */
        memcpy(stage, dst_host, bytes);
        r = zeCommandListAppendMemoryCopy(im->list, stage, src_dev, bytes, NULL, 0, NULL);
        if (r == ZE_RESULT_SUCCESS) memcpy(dst_host, stage, bytes); /* synchronous list: done */
    }
    zeMemFree(im->ctx, stage);
    return r;
}

static ze_result_t dev_copy_in(ze_impl *im, const void *data, size_t bytes, void **out)
{
    static const uint32_t dummy = 0;
    if (!data || !bytes) {
        data = &dummy;
        bytes = sizeof dummy;
    }
    ze_device_mem_alloc_desc_t dd = {.stype = ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC};
    ze_result_t r = zeMemAllocDevice(im->ctx, &dd, bytes, 64, im->device, out);
    if (r == ZE_RESULT_SUCCESS) r = staged_copy(im, *out, data, NULL, NULL, bytes);
    return r;
}

static mp_errcode ze_upload(mp_device *d, const mp_kernel_data *kd, void **job, mp_err *err)
{
    ze_impl *im = d->impl;
    MP_FORWARD(build(im, kd->family, err));
    ze_job *j = calloc(1, sizeof *j);
    if (!j) return mp_errf(err, MP_E_NOMEM, "out of memory");
    j->ctx = im->ctx;
    ze_result_t r = ZE_RESULT_SUCCESS;
    char name[64];
    for (int g = 0; g < 2 && r == ZE_RESULT_SUCCESS; g++) {
        snprintf(name, sizeof name, "%s_%s", mp_kfamily_prefix(kd->family), g ? "gemm" : "dequant");
        ze_kernel_desc_t kdsc = {.stype = ZE_STRUCTURE_TYPE_KERNEL_DESC, .pKernelName = name};
        r = zeKernelCreate(im->module[kd->family], &kdsc, &j->kernel[g]);
    }
    if (r == ZE_RESULT_SUCCESS) r = dev_copy_in(im, kd->qw, kd->qw_bytes, &j->qw);
    if (r == ZE_RESULT_SUCCESS) r = dev_copy_in(im, kd->sc, kd->sc_bytes, &j->sc);
    if (r == ZE_RESULT_SUCCESS) r = dev_copy_in(im, kd->zp, kd->zp_bytes, &j->zp);
    if (r == ZE_RESULT_SUCCESS) r = dev_copy_in(im, kd->gidx, kd->gidx_bytes, &j->gidx);
    if (r != ZE_RESULT_SUCCESS) {
        ze_job_free_impl(j);
        return ZE_FAIL(err, "uploading the weights", r);
    }
    *job = j;
    return MP_OK;
}

static mp_errcode ze_launch(mp_device *d, void *job, int gemm, const uint32_t *P, const uint32_t *rows,
                            const float *x, size_t x_floats, float *out, size_t out_floats,
                            const size_t global[2], mp_err *err)
{
    ze_impl *im = d->impl;
    ze_job *j = job;
    void *pb = NULL, *rb = NULL, *xb = NULL, *ob = NULL;
    const char *step = "zeMemAllocDevice";
    ze_result_t r = dev_copy_in(im, P, MP_P_COUNT * sizeof *P, &pb);
    if (r == ZE_RESULT_SUCCESS) r = dev_copy_in(im, rows, P[MP_P_NROWS] * sizeof *rows, &rb);
    if (r == ZE_RESULT_SUCCESS) r = dev_copy_in(im, x, x_floats * sizeof *x, &xb);
    if (r == ZE_RESULT_SUCCESS) r = dev_copy_in(im, out, out_floats * sizeof *out, &ob);
    ze_kernel_handle_t k = j->kernel[gemm];
    uint32_t gx = 1, gy = 1, gz = 1;
    if (r == ZE_RESULT_SUCCESS) {
        step = "zeKernelSuggestGroupSize";
        r = zeKernelSuggestGroupSize(k, (uint32_t)global[0], (uint32_t)global[1], 1, &gx, &gy, &gz);
    }
    if (r == ZE_RESULT_SUCCESS) {
        step = "zeKernelSetGroupSize";
        r = zeKernelSetGroupSize(k, gx, gy, gz);
    }
    void *args[8] = {j->qw, j->sc, j->zp, j->gidx, pb, rb, xb, ob};
    for (uint32_t a = 0; a < 8 && r == ZE_RESULT_SUCCESS; a++) {
        step = "zeKernelSetArgumentValue";
        r = zeKernelSetArgumentValue(k, a, sizeof(void *), &args[a]);
    }
    if (r == ZE_RESULT_SUCCESS && global[0] && global[1] && gx && gy) {
        ze_group_count_t gc = {(uint32_t)((global[0] + gx - 1) / gx), (uint32_t)((global[1] + gy - 1) / gy), 1};
        step = "zeCommandListAppendLaunchKernel";
        r = zeCommandListAppendLaunchKernel(im->list, k, &gc, NULL, 0, NULL);
    }
    if (r == ZE_RESULT_SUCCESS) {
        step = "zeCommandListAppendBarrier";
        r = zeCommandListAppendBarrier(im->list, NULL, 0, NULL);
    }
    if (r == ZE_RESULT_SUCCESS) {
        step = "zeCommandListAppendMemoryCopy";
        r = staged_copy(im, NULL, NULL, out, ob, out_floats * sizeof *out);
    }
    void *all[4] = {pb, rb, xb, ob};
    for (int i = 0; i < 4; i++)
        if (all[i]) zeMemFree(im->ctx, all[i]);
    return r == ZE_RESULT_SUCCESS ? MP_OK : ZE_FAIL(err, step, r);
}

static void ze_job_free_impl(void *job)
{
    ze_job *j = job;
    if (!j) return;
    for (int g = 0; g < 2; g++)
        if (j->kernel[g]) zeKernelDestroy(j->kernel[g]);
    void *m[4] = {j->qw, j->sc, j->zp, j->gidx};
    for (int i = 0; i < 4; i++)
        if (m[i]) zeMemFree(j->ctx, m[i]);
    free(j);
}

static void ze_close(mp_device *d)
{
    ze_impl *im = d->impl;
    if (!im) return;
    for (int f = 0; f < mp_kfamily_count(); f++)
        if (im->module[f]) zeModuleDestroy(im->module[f]);
    zeCommandListDestroy(im->list);
    zeContextDestroy(im->ctx);
    free(im);
}

const mp_backend_def mp_backend_level_zero = {"level-zero", ze_probe, ze_open};
