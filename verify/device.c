/*
 * device.c - device listing and selection, and the launch harness every backend runs under.
 *
 * Honesty rules (doc/devices.md §6): a requested backend or device type that is
 * missing is MP_E_DEVICE with the reason, never a substitute; `auto` may settle for a CPU
 * device but says so; every output goes to the device filled with NaN and followed by a guard
 * zone, so a device that runs nothing (the Level Zero null driver) or writes out of bounds
 * cannot pass.
 */
#include "device_internal.h"
#include "kernels_blob.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const backend_names[MP_BACKEND_COUNT] = {"level-zero", "opencl", "cpu"};

const char *mp_backend_name(mp_backend b) { return backend_names[b]; }

static const struct {
    const char *name, *prefix;
    const unsigned char *src, *spv;
    const size_t *src_len, *spv_len;
} families[MP_KF_COUNT] = {
#define FAMILY(e, name, prefix, f)                                                       \
    [e] = {name, prefix, mp_kernel_src_##f, mp_kernel_spv_##f, &mp_kernel_src_##f##_len, \
           &mp_kernel_spv_##f##_len}
    FAMILY(MP_KF_CUTLASS, "cutlass-int4", "cutlass", cutlass_int4),
    FAMILY(MP_KF_ONEDNN, "onednn-int4", "onednn", onednn_int4),
    FAMILY(MP_KF_GPTQ, "gptq", "gptq", gptq),
    FAMILY(MP_KF_AWQ, "awq", "awq", awq),
    FAMILY(MP_KF_CT, "compressed-tensors", "ct", compressed_tensors),
    FAMILY(MP_KF_GGUF, "gguf", "gguf", gguf),
#undef FAMILY
};

const char *mp_kfamily_name(mp_kfamily f) { return families[f].name; }
const char *mp_kfamily_prefix(mp_kfamily f) { return families[f].prefix; }

const char *mp_kfamily_source(mp_kfamily f, size_t *len)
{
    *len = *families[f].src_len;
    return (const char *)families[f].src;
}

const unsigned char *mp_kfamily_spirv(mp_kfamily f, size_t *len)
{
    *len = *families[f].spv_len;
    return families[f].spv;
}

/* The host CPU's model name, for the cpu backend's line. */
static void cpu_info(mp_device_info *d)
{
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
}

void mp_devices_list(mp_backend_report out[MP_BACKEND_COUNT])
{
    memset(out, 0, sizeof *out * MP_BACKEND_COUNT);
    out[MP_BACKEND_LEVEL_ZERO].backend = MP_BACKEND_LEVEL_ZERO;
    mp_ze_probe(&out[MP_BACKEND_LEVEL_ZERO]);
    out[MP_BACKEND_OPENCL].backend = MP_BACKEND_OPENCL;
    mp_cl_probe(&out[MP_BACKEND_OPENCL]);
    out[MP_BACKEND_CPU].backend = MP_BACKEND_CPU;
    snprintf(out[MP_BACKEND_CPU].status, sizeof out[MP_BACKEND_CPU].status, "ok");
    out[MP_BACKEND_CPU].n_devices = 1;
    cpu_info(&out[MP_BACKEND_CPU].devices[0]);
}

/* "level-zero: <status>" or "level-zero: N device(s), none a usable GPU". */
static void gpu_absence(const mp_backend_report *r, char *buf, size_t cap)
{
    size_t n_gpu = 0;
    for (size_t i = 0; i < r->n_devices; i++) n_gpu += r->devices[i].is_gpu != 0;
    if (strcmp(r->status, "ok") != 0) snprintf(buf, cap, "%s: %s", mp_backend_name(r->backend), r->status);
    else if (n_gpu) snprintf(buf, cap, "%s: %zu GPU(s), none usable (%s)", mp_backend_name(r->backend), n_gpu,
                             r->devices[0].note);
    else snprintf(buf, cap, "%s: %zu device(s), none a GPU", mp_backend_name(r->backend), r->n_devices);
}

static mp_errcode open_listed(mp_device **out, const mp_device_info *info, mp_err *err)
{
    mp_device *d = calloc(1, sizeof *d);
    if (!d) return mp_errf(err, MP_E_NOMEM, "out of memory");
    d->info = *info;
    mp_errcode rc = info->backend == MP_BACKEND_LEVEL_ZERO ? mp_ze_open(d, info->index, err)
                    : info->backend == MP_BACKEND_OPENCL   ? mp_cl_open(d, info->index, err)
                                                           : mp_cpu_open(d, err);
    if (rc != MP_OK) {
        free(d);
        return rc;
    }
    *out = d;
    return MP_OK;
}

static const mp_device_info *first_gpu(const mp_backend_report *r)
{
    for (size_t i = 0; i < r->n_devices; i++)
        if (r->devices[i].is_gpu && r->devices[i].usable) return &r->devices[i];
    return NULL;
}

mp_errcode mp_device_open(mp_device **out, const char *spec, char *why, size_t why_cap, mp_err *err)
{
    *out = NULL;
    if (why_cap) why[0] = 0;
    mp_backend_report *r = calloc(MP_BACKEND_COUNT, sizeof *r);
    if (!r) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_devices_list(r);
    mp_errcode rc;
    const mp_device_info *pick = NULL;
    char ze_why[300], cl_why[300];
    gpu_absence(&r[MP_BACKEND_LEVEL_ZERO], ze_why, sizeof ze_why);
    gpu_absence(&r[MP_BACKEND_OPENCL], cl_why, sizeof cl_why);
    const char *colon = strchr(spec, ':');
    size_t base = colon ? (size_t)(colon - spec) : strlen(spec);
    unsigned index = 0;
    if (colon) {
        char *end;
        unsigned long v = strtoul(colon + 1, &end, 10);
        if (!colon[1] || *end || v > 1000) {
            rc = mp_errf(err, MP_E_USAGE, "--device '%s': the index after ':' must be a number", spec);
            goto done;
        }
        index = (unsigned)v;
    }
    if (!colon && (strcmp(spec, "auto") == 0 || strcmp(spec, "gpu") == 0)) {
        pick = first_gpu(&r[MP_BACKEND_LEVEL_ZERO]);
        if (!pick) pick = first_gpu(&r[MP_BACKEND_OPENCL]);
        if (!pick && strcmp(spec, "gpu") == 0) {
            rc = mp_errf(err, MP_E_DEVICE, "--device gpu: no GPU (%s; %s)", ze_why, cl_why);
            goto done;
        }
        if (!pick) {
            const mp_backend_report *cl = &r[MP_BACKEND_OPENCL];
            for (size_t i = 0; i < cl->n_devices && !pick; i++)
                if (cl->devices[i].usable) pick = &cl->devices[i];
            if (!pick) pick = &r[MP_BACKEND_CPU].devices[0];
            snprintf(why, why_cap, "no GPU found (%s; %s): running on the CPU", ze_why, cl_why);
        }
    } else if (!colon && strcmp(spec, "cpu") == 0) {
        pick = &r[MP_BACKEND_CPU].devices[0];
    } else if ((base == 6 && strncmp(spec, "opencl", 6) == 0) ||
               (base == 10 && strncmp(spec, "level-zero", 10) == 0)) {
        const mp_backend_report *b = &r[base == 6 ? MP_BACKEND_OPENCL : MP_BACKEND_LEVEL_ZERO];
        if (strcmp(b->status, "ok") != 0) {
            rc = mp_errf(err, MP_E_DEVICE, "--device %s: %s: %s", spec, mp_backend_name(b->backend), b->status);
            goto done;
        }
        if (index >= b->n_devices) {
            rc = mp_errf(err, MP_E_DEVICE, "--device %s: %s has %zu device(s)", spec,
                         mp_backend_name(b->backend), b->n_devices);
            goto done;
        }
        pick = &b->devices[index];
        if (!pick->usable) {
            rc = mp_errf(err, MP_E_DEVICE, "--device %s: '%s' refused: %s", spec, pick->name, pick->note);
            goto done;
        }
    } else {
        rc = mp_errf(err, MP_E_USAGE,
                     "--device '%s': expected auto, gpu, cpu, opencl[:I] or level-zero[:I]", spec);
        goto done;
    }
    rc = open_listed(out, pick, err);
done:
    free(r);
    return rc;
}

const mp_device_info *mp_device_get_info(const mp_device *d) { return &d->info; }

void mp_device_close(mp_device *d)
{
    if (!d) return;
    d->ops->close(d);
    free(d);
}

/* ---------------------------------------------------------------- launches */

struct mp_kernel_job {
    mp_device *d;
    mp_kernel_data kd;
    void *impl;
};

mp_errcode mp_kernel_upload(mp_device *d, const mp_kernel_data *kd, mp_kernel_job **out, mp_err *err)
{
    *out = NULL;
    mp_kernel_job *j = calloc(1, sizeof *j);
    if (!j) return mp_errf(err, MP_E_NOMEM, "out of memory");
    j->d = d;
    j->kd = *kd;
    mp_errcode rc = d->ops->upload(d, kd, &j->impl, err);
    if (rc != MP_OK) {
        free(j);
        return rc;
    }
    *out = j;
    return MP_OK;
}

void mp_kernel_job_free(mp_kernel_job *j)
{
    if (!j) return;
    j->d->ops->job_free(j->impl);
    free(j);
}

static const uint32_t guard_bits = 0x7fc0dead; /* a NaN no arithmetic produces */

static mp_errcode launch(mp_kernel_job *j, int gemm, const uint32_t *rows, uint32_t nrows,
                         const float *x, uint32_t m, float *out, size_t count, mp_err *err)
{
    uint32_t P[MP_P_COUNT];
    memcpy(P, j->kd.P, sizeof P);
    P[MP_P_NROWS] = nrows;
    P[MP_P_M] = m;
    float *buf = malloc((count + MP_GUARD) * sizeof *buf);
    if (!buf) return mp_errf(err, MP_E_NOMEM, "out of memory");
    float nan = nanf("");
    float guard;
    memcpy(&guard, &guard_bits, sizeof guard);
    for (size_t i = 0; i < count; i++) buf[i] = nan;
    for (size_t i = 0; i < MP_GUARD; i++) buf[count + i] = guard;
    size_t global[2] = {gemm ? nrows : P[MP_P_K], gemm ? m : nrows};
    mp_errcode rc = j->d->ops->launch(j->d, j->impl, gemm, P, rows, x, gemm ? (size_t)m * P[MP_P_K] : 0,
                                      buf, count + MP_GUARD, global, err);
    for (size_t i = 0; rc == MP_OK && i < MP_GUARD; i++)
        if (memcmp(&buf[count + i], &guard_bits, sizeof guard_bits) != 0)
            rc = mp_errf(err, MP_E_MISMATCH, "%s kernel wrote past the end of its output (guard word %zu)",
                         mp_kfamily_name(j->kd.family), i);
    if (rc == MP_OK) memcpy(out, buf, count * sizeof *out);
    free(buf);
    return rc;
}

mp_errcode mp_kernel_dequant(mp_kernel_job *j, const uint32_t *rows, uint32_t nrows, float *out,
                             mp_err *err)
{
    return launch(j, 0, rows, nrows, NULL, 0, out, (size_t)nrows * j->kd.P[MP_P_K], err);
}

mp_errcode mp_kernel_gemm(mp_kernel_job *j, const uint32_t *rows, uint32_t nrows, const float *x,
                          uint32_t m, float *out, mp_err *err)
{
    return launch(j, 1, rows, nrows, x, m, out, (size_t)m * nrows, err);
}
