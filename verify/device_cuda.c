/*
 * device_cuda.c - the cuda backend: NVIDIA GPUs through the driver API and NVRTC, both loaded at
 * run time with dlopen, so that nothing links CUDA at build time and a machine without it runs
 * every other backend unchanged (doc/cuda.md).
 *
 * - The driver is "libcuda.so.1", never "libcuda.so": in a CUDA toolkit that name is the stub,
 *   which fails every call with CUDA_ERROR_STUB_LIBRARY.
 * - Entry points are looked up by their versioned ABI names (cuMemAlloc_v2, ...): the plain
 *   names are the legacy 32-bit ABI and would truncate pointers and sizes.
 * - The context is the device's primary context (retain, set current, release), whose calls
 *   kept their names across CUDA 11 to 13, unlike cuCtxCreate.
 * - The kernels are the kernels/ sources, compiled by NVRTC for the device's sm_XY behind
 *   kernels/cl_as_cuda.h, and loaded as a CUBIN (a PTX from an NVRTC newer than the driver
 *   would not load). NVRTC's warnings count as failures in the compile check.
 * - Our own table of CUresult names: cuGetErrorName fails on the stub and without a driver.
 */
#include "device_internal.h"

#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef void *CUstream;
typedef unsigned long long CUdeviceptr; /* CUdeviceptr_v2 */
typedef void *nvrtcProgram;

enum { CU_STUB_LIBRARY = 34, CU_NO_DEVICE = 100, CU_CC_MAJOR = 75, CU_CC_MINOR = 76 };
enum { CU_JIT_ERROR_LOG_BUFFER = 5, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6 };

/* The driver's entry points, each under its versioned ABI name (cu_syms). */
typedef struct cu_api {
    void *lib;
    int version; /* cuDriverGetVersion: 13000 = 13.0; 0 before it is asked */
    CUresult (*Init)(unsigned);
    CUresult (*DriverGetVersion)(int *);
    CUresult (*DeviceGetCount)(int *);
    CUresult (*DeviceGet)(CUdevice *, int);
    CUresult (*DeviceGetName)(char *, int, CUdevice);
    CUresult (*DeviceGetAttribute)(int *, int, CUdevice);
    CUresult (*DeviceTotalMem)(size_t *, CUdevice);
    CUresult (*PrimaryCtxRetain)(CUcontext *, CUdevice);
    CUresult (*PrimaryCtxRelease)(CUdevice);
    CUresult (*CtxSetCurrent)(CUcontext);
    CUresult (*CtxSynchronize)(void);
    CUresult (*ModuleLoadDataEx)(CUmodule *, const void *, unsigned, int *, void **);
    CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
    CUresult (*ModuleUnload)(CUmodule);
    CUresult (*MemAlloc)(CUdeviceptr *, size_t);
    CUresult (*MemFree)(CUdeviceptr);
    CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, size_t);
    CUresult (*MemcpyDtoH)(void *, CUdeviceptr, size_t);
    CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             CUstream, void **, void **);
} cu_api;

typedef struct sym {
    const char *name;
    size_t off;
} sym;

static const sym cu_syms[] = {
    {"cuInit", offsetof(cu_api, Init)},
    {"cuDriverGetVersion", offsetof(cu_api, DriverGetVersion)},
    {"cuDeviceGetCount", offsetof(cu_api, DeviceGetCount)},
    {"cuDeviceGet", offsetof(cu_api, DeviceGet)},
    {"cuDeviceGetName", offsetof(cu_api, DeviceGetName)},
    {"cuDeviceGetAttribute", offsetof(cu_api, DeviceGetAttribute)},
    {"cuDeviceTotalMem_v2", offsetof(cu_api, DeviceTotalMem)},
    {"cuDevicePrimaryCtxRetain", offsetof(cu_api, PrimaryCtxRetain)},
    {"cuDevicePrimaryCtxRelease_v2", offsetof(cu_api, PrimaryCtxRelease)},
    {"cuCtxSetCurrent", offsetof(cu_api, CtxSetCurrent)},
    {"cuCtxSynchronize", offsetof(cu_api, CtxSynchronize)},
    {"cuModuleLoadDataEx", offsetof(cu_api, ModuleLoadDataEx)},
    {"cuModuleGetFunction", offsetof(cu_api, ModuleGetFunction)},
    {"cuModuleUnload", offsetof(cu_api, ModuleUnload)},
    {"cuMemAlloc_v2", offsetof(cu_api, MemAlloc)},
    {"cuMemFree_v2", offsetof(cu_api, MemFree)},
    {"cuMemcpyHtoD_v2", offsetof(cu_api, MemcpyHtoD)},
    {"cuMemcpyDtoH_v2", offsetof(cu_api, MemcpyDtoH)},
    {"cuLaunchKernel", offsetof(cu_api, LaunchKernel)},
};

/* NVRTC's entry points (nvrtc_syms); GetSupportedArchs may be missing in NVRTC before 11.2. */
typedef struct nvrtc_api {
    void *lib;
    char soname[40];
    int major, minor;
    int (*Version)(int *, int *);
    int (*CreateProgram)(nvrtcProgram *, const char *, const char *, int, const char *const *,
                         const char *const *);
    int (*CompileProgram)(nvrtcProgram, int, const char *const *);
    int (*GetProgramLogSize)(nvrtcProgram, size_t *);
    int (*GetProgramLog)(nvrtcProgram, char *);
    int (*GetCUBINSize)(nvrtcProgram, size_t *);
    int (*GetCUBIN)(nvrtcProgram, char *);
    int (*DestroyProgram)(nvrtcProgram *);
    const char *(*GetErrorString)(int);
    int (*GetNumSupportedArchs)(int *);
    int (*GetSupportedArchs)(int *);
} nvrtc_api;

static const sym nvrtc_syms[] = {
    {"nvrtcVersion", offsetof(nvrtc_api, Version)},
    {"nvrtcCreateProgram", offsetof(nvrtc_api, CreateProgram)},
    {"nvrtcCompileProgram", offsetof(nvrtc_api, CompileProgram)},
    {"nvrtcGetProgramLogSize", offsetof(nvrtc_api, GetProgramLogSize)},
    {"nvrtcGetProgramLog", offsetof(nvrtc_api, GetProgramLog)},
    {"nvrtcGetCUBINSize", offsetof(nvrtc_api, GetCUBINSize)},
    {"nvrtcGetCUBIN", offsetof(nvrtc_api, GetCUBIN)},
    {"nvrtcDestroyProgram", offsetof(nvrtc_api, DestroyProgram)},
    {"nvrtcGetErrorString", offsetof(nvrtc_api, GetErrorString)},
};

static const char *cu_name(CUresult e)
{
    switch (e) {
    case 0: return "CUDA_SUCCESS";
    case 1: return "CUDA_ERROR_INVALID_VALUE";
    case 2: return "CUDA_ERROR_OUT_OF_MEMORY";
    case 3: return "CUDA_ERROR_NOT_INITIALIZED";
    case 4: return "CUDA_ERROR_DEINITIALIZED";
    case 34: return "CUDA_ERROR_STUB_LIBRARY";
    case 36: return "CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER";
    case 46: return "CUDA_ERROR_DEVICE_UNAVAILABLE";
    case 100: return "CUDA_ERROR_NO_DEVICE";
    case 101: return "CUDA_ERROR_INVALID_DEVICE";
    case 200: return "CUDA_ERROR_INVALID_IMAGE";
    case 209: return "CUDA_ERROR_NO_BINARY_FOR_GPU";
    case 218: return "CUDA_ERROR_INVALID_PTX";
    case 221: return "CUDA_ERROR_JIT_COMPILER_NOT_FOUND";
    case 222: return "CUDA_ERROR_UNSUPPORTED_PTX_VERSION";
    case 223: return "CUDA_ERROR_JIT_COMPILATION_DISABLED";
    case 500: return "CUDA_ERROR_NOT_FOUND";
    case 700: return "CUDA_ERROR_ILLEGAL_ADDRESS";
    case 701: return "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
    case 719: return "CUDA_ERROR_LAUNCH_FAILED";
    case 803: return "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH";
    case 804: return "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE";
    default: return "CUresult";
    }
}

#define CU_FAIL(err, call, e) \
    mp_errf((err), MP_E_DEVICE, "cuda: %s failed: %s (%d)", (call), cu_name(e), (int)(e))

/* dlsym into the slots of api; the name of the first missing symbol, or NULL. */
static const char *bind(void *lib, void *api, const sym *syms, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        void *p = dlsym(lib, syms[i].name);
        if (!p) return syms[i].name;
        memcpy((char *)api + syms[i].off, &p, sizeof p); /* POSIX: a data pointer holds a function */
    }
    return NULL;
}

/* The driver library. RTLD_NODELETE: the driver is never unmapped under its own threads. */
static int cu_load(cu_api *cu, char *why, size_t cap)
{
    memset(cu, 0, sizeof *cu);
    cu->lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!cu->lib) {
        const char *e = dlerror();
        snprintf(why, cap, "no CUDA driver (%s)", e ? e : "libcuda.so.1 not found");
        return 0;
    }
    const char *missing = bind(cu->lib, cu, cu_syms, sizeof cu_syms / sizeof *cu_syms);
    if (missing) {
        snprintf(why, cap, "libcuda.so.1 has no %s: not a CUDA driver of version 11 or later", missing);
        dlclose(cu->lib);
        cu->lib = NULL;
        return 0;
    }
    if (cu->DriverGetVersion(&cu->version) != 0) cu->version = 0;
    return 1;
}

static void cu_unload(cu_api *cu)
{
    if (cu->lib) dlclose(cu->lib);
    cu->lib = NULL;
}

static int rtc_try(nvrtc_api *rtc, const char *name)
{
    rtc->lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!rtc->lib) return 0;
    if (bind(rtc->lib, rtc, nvrtc_syms, sizeof nvrtc_syms / sizeof *nvrtc_syms) ||
        rtc->Version(&rtc->major, &rtc->minor) != 0) {
        dlclose(rtc->lib);
        rtc->lib = NULL;
        return 0;
    }
    void *p = dlsym(rtc->lib, "nvrtcGetNumSupportedArchs"), *q = dlsym(rtc->lib, "nvrtcGetSupportedArchs");
    if (p && q) {
        memcpy(&rtc->GetNumSupportedArchs, &p, sizeof p);
        memcpy(&rtc->GetSupportedArchs, &q, sizeof q);
    }
    const char *slash = strrchr(name, '/');
    snprintf(rtc->soname, sizeof rtc->soname, "%s", slash ? slash + 1 : name);
    return 1;
}

/* NVRTC: $MODELPREP_NVRTC when set (a path), else libnvrtc.so.13 then .12, the one matching a
 * CUDA 12 driver first (an NVRTC newer than the driver can make code it refuses). */
static int rtc_load(nvrtc_api *rtc, int driver_version, char *why, size_t cap)
{
    memset(rtc, 0, sizeof *rtc);
    const char *env = getenv("MODELPREP_NVRTC");
    if (env && *env) {
        if (rtc_try(rtc, env)) return 1;
        const char *e = dlerror();
        snprintf(why, cap, "no NVRTC: MODELPREP_NVRTC='%.100s' does not load (%.120s)", env, e ? e : "no nvrtcVersion");
        return 0;
    }
    const char *order[2] = {"libnvrtc.so.13", "libnvrtc.so.12"};
    if (driver_version && driver_version / 1000 == 12) order[0] = "libnvrtc.so.12", order[1] = "libnvrtc.so.13";
    for (int i = 0; i < 2; i++)
        if (rtc_try(rtc, order[i])) return 1;
    snprintf(why, cap, "no NVRTC (%s, %s: not found; set MODELPREP_NVRTC to its path)", order[0], order[1]);
    return 0;
}

/* NVRTC stays loaded once it has compiled: it keeps caches for the life of the process, which
 * dlclose would turn into leaks (the sanitizer build reports them). */
static void rtc_unload(nvrtc_api *rtc)
{
    rtc->lib = NULL;
}

/* 1 when NVRTC lists sm_<cc> (or cannot say), else 0 with the oldest and newest it can. */
static int rtc_targets(const nvrtc_api *rtc, int cc, char *why, size_t cap)
{
    int n = 0, archs[64];
    if (!rtc->GetSupportedArchs || rtc->GetNumSupportedArchs(&n) != 0 || n <= 0 || n > 64 ||
        rtc->GetSupportedArchs(archs) != 0)
        return 1;
    for (int i = 0; i < n; i++)
        if (archs[i] == cc) return 1;
    snprintf(why, cap, "NVRTC %d.%d (%s) cannot target sm_%d: it knows sm_%d to sm_%d", rtc->major, rtc->minor,
             rtc->soname, cc, archs[0], archs[n - 1]);
    return 0;
}

/* The source NVRTC compiles: the prelude, then the family's source with its own line numbers. */
static char *cuda_source(mp_kfamily f)
{
    size_t plen, slen;
    const char *pre = mp_kernel_cuda_prelude(&plen), *src = mp_kfamily_source(f, &slen);
    char line[96];
    int l = snprintf(line, sizeof line, "\n#line 1 \"%s.cl\"\n", mp_kfamily_name(f));
    char *s = malloc(plen + (size_t)l + slen + 1);
    if (!s) return NULL;
    memcpy(s, pre, plen);
    memcpy(s + plen, line, (size_t)l);
    memcpy(s + plen + (size_t)l, src, slen + 1);
    return s;
}

/* NVRTC's log, newlines folded, into log (empty when NVRTC said nothing). */
static void rtc_log(const nvrtc_api *rtc, nvrtcProgram p, char *log, size_t cap)
{
    size_t n = 0;
    log[0] = 0;
    if (rtc->GetProgramLogSize(p, &n) != 0 || n <= 1) return;
    char *all = malloc(n);
    if (all && rtc->GetProgramLog(p, all) == 0) {
        size_t e = strlen(all);
        while (e && (all[e - 1] == '\n' || all[e - 1] == ' ')) all[--e] = 0;
        for (char *c = all; *c; c++)
            if (*c == '\n') *c = ' ';
        snprintf(log, cap, "%s", all);
    }
    free(all);
}

/* Compiles family f for arch ("sm_90") to a CUBIN (malloc'd into *cubin when cubin != NULL). */
static mp_errcode rtc_compile(const nvrtc_api *rtc, mp_kfamily f, const char *arch, void **cubin, size_t *bytes,
                              char *log, size_t cap, mp_err *err)
{
    char opt_arch[48];
    snprintf(opt_arch, sizeof opt_arch, "--gpu-architecture=%s", arch);
    /* -diag-suppress=177 ("function declared but never referenced") only: mp_kernel.h's shared
     * helpers are static inline and not every family calls each; C compilers accept that
     * silently. Every other warning stays on, and check-nvrtc fails on it. */
    const char *opts[] = {opt_arch, "--fmad=false", "-default-device", "-diag-suppress=177"};
    char *src = cuda_source(f), name[64];
    if (!src) return mp_errf(err, MP_E_NOMEM, "out of memory");
    snprintf(name, sizeof name, "%s.cl", mp_kfamily_name(f));
    nvrtcProgram p = NULL;
    mp_errcode rc = MP_OK;
    int e = rtc->CreateProgram(&p, src, name, 0, NULL, NULL);
    if (e != 0) {
        rc = mp_errf(err, MP_E_DEVICE, "cuda: nvrtcCreateProgram failed: %s", rtc->GetErrorString(e));
        goto cleanup;
    }
    e = rtc->CompileProgram(p, (int)(sizeof opts / sizeof *opts), opts);
    rtc_log(rtc, p, log, cap);
    if (e != 0) {
        rc = mp_errf(err, MP_E_DEVICE, "cuda: NVRTC %d.%d cannot compile the %s kernels for %s: %s: %.300s", rtc->major,
                     rtc->minor, mp_kfamily_name(f), arch, rtc->GetErrorString(e), log);
        goto cleanup;
    }
    if (rtc->GetCUBINSize(p, bytes) != 0 || *bytes == 0) {
        rc = mp_errf(err, MP_E_DEVICE, "cuda: NVRTC made no CUBIN of the %s kernels for %s", mp_kfamily_name(f), arch);
        goto cleanup;
    }
    if (cubin) {
        *cubin = malloc(*bytes);
        if (!*cubin) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        else if (rtc->GetCUBIN(p, *cubin) != 0) {
            free(*cubin), *cubin = NULL;
            rc = mp_errf(err, MP_E_DEVICE, "cuda: nvrtcGetCUBIN failed for the %s kernels", mp_kfamily_name(f));
        }
    }
cleanup:
    if (p) rtc->DestroyProgram(&p);
    free(src);
    return rc;
}

mp_errcode mp_cuda_compile_check(mp_kfamily f, const char *arch, char *nvrtc, size_t nvrtc_cap, char *log,
                                 size_t log_cap, mp_err *err)
{
    nvrtc_api rtc;
    char why[300];
    log[0] = 0;
    if (!rtc_load(&rtc, 0, why, sizeof why)) return mp_errf(err, MP_E_DEVICE, "%s", why);
    snprintf(nvrtc, nvrtc_cap, "NVRTC %d.%d (%s)", rtc.major, rtc.minor, rtc.soname);
    size_t bytes = 0;
    int cc = 0;
    mp_errcode rc = MP_OK;
    if (sscanf(arch, "sm_%d", &cc) == 1 && !rtc_targets(&rtc, cc, why, sizeof why))
        rc = mp_errf(err, MP_E_DEVICE, "%s", why);
    if (rc == MP_OK) rc = rtc_compile(&rtc, f, arch, NULL, &bytes, log, log_cap, err);
    rtc_unload(&rtc);
    return rc;
}

/* ---------------------------------------------------------------- probe */

static void version_text(int v, char *buf, size_t cap) { snprintf(buf, cap, "%d.%d", v / 1000, v % 1000 / 10); }

static void describe(const cu_api *cu, const nvrtc_api *rtc, const char *rtc_why, CUdevice dev, unsigned i,
                     mp_device_info *o)
{
    memset(o, 0, sizeof *o);
    o->backend = MP_BACKEND_CUDA;
    o->index = i;
    o->is_gpu = 1;
    o->vendor_id = 0x10de;
    snprintf(o->type, sizeof o->type, "GPU");
    snprintf(o->vendor, sizeof o->vendor, "NVIDIA");
    if (cu->DeviceGetName(o->name, (int)sizeof o->name, dev) != 0) snprintf(o->name, sizeof o->name, "?");
    int maj = 0, min = 0;
    size_t mem = 0;
    cu->DeviceGetAttribute(&maj, CU_CC_MAJOR, dev);
    cu->DeviceGetAttribute(&min, CU_CC_MINOR, dev);
    cu->DeviceTotalMem(&mem, dev);
    snprintf(o->version, sizeof o->version, "compute %d.%d (sm_%d%d), %.1f GiB", maj, min, maj, min,
             (double)mem / (1024.0 * 1024.0 * 1024.0));
    version_text(cu->version, o->driver, sizeof o->driver);
    if (!rtc->lib) {
        snprintf(o->platform, sizeof o->platform, "no NVRTC");
        snprintf(o->note, sizeof o->note, "%.*s", (int)sizeof o->note - 1, rtc_why);
        return;
    }
    snprintf(o->platform, sizeof o->platform, "NVRTC %d.%d", rtc->major, rtc->minor);
    o->usable = rtc_targets(rtc, maj * 10 + min, o->note, sizeof o->note);
}

static void cuda_probe(mp_backend_report *r)
{
    cu_api cu;
    if (!cu_load(&cu, r->status, sizeof r->status)) return;
    char ver[16];
    version_text(cu.version, ver, sizeof ver);
    CUresult e = cu.Init(0);
    int n = 0;
    if (e == CU_STUB_LIBRARY)
        snprintf(r->status, sizeof r->status,
                 "libcuda.so.1 is the CUDA toolkit's stub, not a driver (CUDA_ERROR_STUB_LIBRARY): no NVIDIA driver");
    else if (e == CU_NO_DEVICE)
        snprintf(r->status, sizeof r->status, "driver %s present, no CUDA device (CUDA_ERROR_NO_DEVICE)", ver);
    else if (e != 0)
        snprintf(r->status, sizeof r->status, "driver %s: cuInit failed: %s (%d)", ver, cu_name(e), e);
    else if ((e = cu.DeviceGetCount(&n)) != 0 || n <= 0)
        snprintf(r->status, sizeof r->status, "driver %s present, no CUDA device", ver);
    if (r->status[0]) {
        cu_unload(&cu);
        return;
    }
    nvrtc_api rtc;
    char rtc_why[200] = "";
    rtc_load(&rtc, cu.version, rtc_why, sizeof rtc_why);
    for (int i = 0; i < n && r->n_devices < sizeof r->devices / sizeof *r->devices; i++) {
        CUdevice dev;
        if (cu.DeviceGet(&dev, i) != 0) continue;
        describe(&cu, &rtc, rtc_why, dev, (unsigned)r->n_devices, &r->devices[r->n_devices]);
        r->n_devices++;
    }
    snprintf(r->status, sizeof r->status, "ok");
    rtc_unload(&rtc);
    cu_unload(&cu);
}

/* ---------------------------------------------------------------- device */

typedef struct cuda_impl {
    cu_api cu;
    nvrtc_api rtc;
    CUdevice dev;
    CUcontext ctx;
    char arch[16];
    CUmodule module[MP_KF_MAX];
} cuda_impl;

typedef struct cuda_job {
    cuda_impl *im;
    CUfunction fn[2];
    CUdeviceptr qw, sc, zp, gidx;
} cuda_job;

static void cuda_close(mp_device *d)
{
    cuda_impl *im = d->impl;
    if (!im) return;
    for (int f = 0; f < mp_kfamily_count(); f++)
        if (im->module[f]) im->cu.ModuleUnload(im->module[f]);
    if (im->ctx) im->cu.PrimaryCtxRelease(im->dev);
    rtc_unload(&im->rtc);
    cu_unload(&im->cu);
    free(im);
    d->impl = NULL;
}

/* A device buffer holding bytes of data (4 zero bytes when there is none). */
static CUresult dev_buffer(const cu_api *cu, const void *data, size_t bytes, CUdeviceptr *out)
{
    static const uint32_t dummy = 0;
    if (!data || !bytes) data = &dummy, bytes = sizeof dummy;
    CUresult e = cu->MemAlloc(out, bytes);
    if (e != 0) {
        *out = 0;
        return e;
    }
    return cu->MemcpyHtoD(*out, data, bytes);
}

/* The family's module: NVRTC's CUBIN for this device, loaded with the JIT error log. */
static mp_errcode build(cuda_impl *im, mp_kfamily f, mp_err *err)
{
    if (im->module[f]) return MP_OK;
    void *cubin = NULL;
    size_t bytes = 0;
    char log[512];
    MP_FORWARD(rtc_compile(&im->rtc, f, im->arch, &cubin, &bytes, log, sizeof log, err));
    char elog[1024] = "";
    int opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *vals[2] = {elog, (void *)(uintptr_t)sizeof elog};
    CUresult e = im->cu.ModuleLoadDataEx(&im->module[f], cubin, 2, opts, vals);
    free(cubin);
    if (e != 0) {
        im->module[f] = NULL;
        return mp_errf(err, MP_E_DEVICE, "cuda: loading the %s kernels (%s CUBIN of NVRTC %d.%d) failed: %s (%d)%s%.200s",
                       mp_kfamily_name(f), im->arch, im->rtc.major, im->rtc.minor, cu_name(e), (int)e,
                       elog[0] ? ": " : "", elog);
    }
    return MP_OK;
}

static void cuda_job_free(void *job)
{
    cuda_job *j = job;
    if (!j) return;
    CUdeviceptr m[4] = {j->qw, j->sc, j->zp, j->gidx};
    for (int i = 0; i < 4; i++)
        if (m[i]) j->im->cu.MemFree(m[i]);
    free(j);
}

static mp_errcode cuda_upload(mp_device *d, const mp_kernel_data *kd, void **job, mp_err *err)
{
    cuda_impl *im = d->impl;
    MP_FORWARD(build(im, kd->family, err));
    cuda_job *j = calloc(1, sizeof *j);
    if (!j) return mp_errf(err, MP_E_NOMEM, "out of memory");
    j->im = im;
    const char *step = "cuModuleGetFunction";
    CUresult e = 0;
    for (int g = 0; g < 2 && e == 0; g++) {
        char name[64];
        snprintf(name, sizeof name, "%s_%s", mp_kfamily_prefix(kd->family), g ? "gemm" : "dequant");
        e = im->cu.ModuleGetFunction(&j->fn[g], im->module[kd->family], name);
    }
    if (e == 0) step = "uploading the weights (cuMemAlloc_v2, cuMemcpyHtoD_v2)";
    if (e == 0) e = dev_buffer(&im->cu, kd->qw, kd->qw_bytes, &j->qw);
    if (e == 0) e = dev_buffer(&im->cu, kd->sc, kd->sc_bytes, &j->sc);
    if (e == 0) e = dev_buffer(&im->cu, kd->zp, kd->zp_bytes, &j->zp);
    if (e == 0) e = dev_buffer(&im->cu, kd->gidx, kd->gidx_bytes, &j->gidx);
    if (e != 0) {
        cuda_job_free(j);
        return CU_FAIL(err, step, e);
    }
    *job = j;
    return MP_OK;
}

#define CUDA_LOCAL 256u /* threads per block along the first dimension */

static mp_errcode cuda_launch(mp_device *d, void *job, int gemm, const uint32_t *P, const uint32_t *rows,
                              const float *x, size_t x_floats, float *out, size_t out_floats, const size_t global[2],
                              mp_err *err)
{
    cuda_impl *im = d->impl;
    cuda_job *j = job;
    const cu_api *cu = &im->cu;
    if (global[1] > 65535 || global[0] / CUDA_LOCAL >= INT32_MAX)
        return mp_errf(err, MP_E_DEVICE, "cuda: a launch of %zu x %zu work items is beyond the grid limits", global[0],
                       global[1]);
    CUdeviceptr pb = 0, rb = 0, xb = 0, ob = 0;
    const char *step = "cuMemAlloc_v2 / cuMemcpyHtoD_v2";
    CUresult e = dev_buffer(cu, P, MP_P_COUNT * sizeof *P, &pb);
    if (e == 0) e = dev_buffer(cu, rows, P[MP_P_NROWS] * sizeof *rows, &rb);
    if (e == 0) e = dev_buffer(cu, x, x_floats * sizeof *x, &xb);
    if (e == 0) e = dev_buffer(cu, out, out_floats * sizeof *out, &ob);
    if (e == 0 && global[0] && global[1]) {
        void *args[8] = {&j->qw, &j->sc, &j->zp, &j->gidx, &pb, &rb, &xb, &ob};
        unsigned gx = (unsigned)((global[0] + CUDA_LOCAL - 1) / CUDA_LOCAL);
        step = "cuLaunchKernel";
        e = cu->LaunchKernel(j->fn[gemm], gx, (unsigned)global[1], 1, CUDA_LOCAL, 1, 1, 0, NULL, args, NULL);
        if (e == 0) step = "cuCtxSynchronize (the kernel)", e = cu->CtxSynchronize();
    }
    if (e == 0) step = "cuMemcpyDtoH_v2", e = cu->MemcpyDtoH(out, ob, out_floats * sizeof *out);
    CUdeviceptr all[4] = {pb, rb, xb, ob};
    for (int i = 0; i < 4; i++)
        if (all[i]) cu->MemFree(all[i]);
    return e == 0 ? MP_OK : CU_FAIL(err, step, e);
}

static const mp_backend_ops cuda_ops = {cuda_upload, cuda_launch, NULL, cuda_job_free, cuda_close};

static mp_errcode cuda_open(mp_device *d, unsigned index, mp_err *err)
{
    cuda_impl *im = calloc(1, sizeof *im);
    if (!im) return mp_errf(err, MP_E_NOMEM, "out of memory");
    d->impl = im;
    d->ops = &cuda_ops;
    char why[300];
    if (!cu_load(&im->cu, why, sizeof why)) {
        cuda_close(d);
        return mp_errf(err, MP_E_DEVICE, "cuda: %s", why);
    }
    if (!rtc_load(&im->rtc, im->cu.version, why, sizeof why)) {
        cuda_close(d);
        return mp_errf(err, MP_E_DEVICE, "cuda: %s", why);
    }
    const char *step = "cuInit";
    int maj = 0, min = 0;
    CUresult e = im->cu.Init(0);
    if (e == 0) step = "cuDeviceGet", e = im->cu.DeviceGet(&im->dev, (int)index);
    if (e == 0) e = im->cu.DeviceGetAttribute(&maj, CU_CC_MAJOR, im->dev);
    if (e == 0) e = im->cu.DeviceGetAttribute(&min, CU_CC_MINOR, im->dev);
    if (e == 0) step = "cuDevicePrimaryCtxRetain", e = im->cu.PrimaryCtxRetain(&im->ctx, im->dev);
    if (e == 0) step = "cuCtxSetCurrent", e = im->cu.CtxSetCurrent(im->ctx);
    if (e != 0) {
        cuda_close(d);
        return CU_FAIL(err, step, e);
    }
    snprintf(im->arch, sizeof im->arch, "sm_%d%d", maj, min);
    return MP_OK;
}

const mp_backend_def mp_backend_cuda = {"cuda", cuda_probe, cuda_open};
