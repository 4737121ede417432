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

#include <assert.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every backend, indexed by its enum: the one place that names them. */
static const mp_backend_def *const backends[MP_BACKEND_COUNT] = {
    [MP_BACKEND_LEVEL_ZERO] = &mp_backend_level_zero,
    [MP_BACKEND_OPENCL] = &mp_backend_opencl,
    [MP_BACKEND_CUDA] = &mp_backend_cuda,
    [MP_BACKEND_CPU] = &mp_backend_cpu,
};

/* The order in which auto and gpu look for a GPU: a CUDA device before the same GPU seen
 * through another vendor's OpenCL. The cpu backend has no GPU. */
static const mp_backend gpu_order[] = {MP_BACKEND_CUDA, MP_BACKEND_LEVEL_ZERO, MP_BACKEND_OPENCL};

const char *mp_backend_name(mp_backend b) { return backends[b]->name; }

/* A backend's libraries may install signal handlers of their own when first used: PoCL's LLVM
 * does while probing (RemoveFileOnSignal), for SIGBUS, SIGINT and SIGTERM among others, with
 * SA_RESETHAND, so that a fault on a second thread while the first is in LLVM's handler gets
 * the default action. The handlers the program had (the CLI's: a mapped input cut short,
 * SIGBUS, names its file; SIGINT and SIGTERM stop a job cleanly) are put back after every call
 * into a backend's library that may load or initialize it: probe, open, upload. */
static const int kept_signals[] = {SIGBUS, SIGINT, SIGTERM};
#define N_KEPT (sizeof kept_signals / sizeof *kept_signals)
typedef struct {
    struct sigaction sa[N_KEPT];
} sig_kept;

static void signals_keep(sig_kept *k)
{
    for (size_t i = 0; i < N_KEPT; i++) sigaction(kept_signals[i], NULL, &k->sa[i]);
}

static void signals_restore(const sig_kept *k)
{
    for (size_t i = 0; i < N_KEPT; i++) sigaction(kept_signals[i], &k->sa[i], NULL);
}

void mp_devices_list(mp_backend_report out[MP_BACKEND_COUNT])
{
    memset(out, 0, sizeof *out * MP_BACKEND_COUNT);
    sig_kept k;
    signals_keep(&k);
    for (int b = 0; b < MP_BACKEND_COUNT; b++) {
        out[b].backend = (mp_backend)b;
        backends[b]->probe(&out[b]);
    }
    signals_restore(&k);
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
    sig_kept k;
    signals_keep(&k);
    mp_errcode rc = backends[info->backend]->open(d, info->index, err);
    signals_restore(&k);
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

/* auto and gpu: the first usable GPU in gpu_order; auto settles for an OpenCL CPU device or the
 * cpu backend, and says why in `why`. */
static mp_errcode pick_gpu(const mp_backend_report *r, int required, const mp_device_info **pick, char *why,
                           size_t why_cap, mp_err *err)
{
    size_t n_order = sizeof gpu_order / sizeof *gpu_order;
    for (size_t i = 0; i < n_order && !*pick; i++) *pick = first_gpu(&r[gpu_order[i]]);
    if (*pick) return MP_OK;
    char reasons[1000] = "", one[300];
    for (size_t i = 0; i < n_order; i++) {
        gpu_absence(&r[gpu_order[i]], one, sizeof one);
        size_t l = strlen(reasons);
        snprintf(reasons + l, sizeof reasons - l, "%s%s", i ? "; " : "", one);
    }
    if (required) return mp_errf(err, MP_E_DEVICE, "--device gpu: no GPU (%s)", reasons);
    const mp_backend_report *cl = &r[MP_BACKEND_OPENCL];
    for (size_t i = 0; i < cl->n_devices && !*pick; i++)
        if (cl->devices[i].usable) *pick = &cl->devices[i];
    if (!*pick) *pick = &r[MP_BACKEND_CPU].devices[0];
    snprintf(why, why_cap, "no GPU found (%s): running on the CPU", reasons);
    return MP_OK;
}

/* BACKEND[:I] for a backend of the table other than cpu. */
static mp_errcode pick_named(const mp_backend_report *b, const char *spec, unsigned index,
                             const mp_device_info **pick, mp_err *err)
{
    if (strcmp(b->status, "ok") != 0)
        return mp_errf(err, MP_E_DEVICE, "--device %s: %s: %s", spec, mp_backend_name(b->backend), b->status);
    if (index >= b->n_devices)
        return mp_errf(err, MP_E_DEVICE, "--device %s: %s has %zu device(s)", spec, mp_backend_name(b->backend),
                       b->n_devices);
    *pick = &b->devices[index];
    if (!(*pick)->usable)
        return mp_errf(err, MP_E_DEVICE, "--device %s: '%s' refused: %s", spec, (*pick)->name, (*pick)->note);
    return MP_OK;
}

mp_errcode mp_device_open(mp_device **out, const char *spec, char *why, size_t why_cap, mp_err *err)
{
    *out = NULL;
    if (why_cap) why[0] = 0;
    const char *colon = strchr(spec, ':');
    size_t base = colon ? (size_t)(colon - spec) : strlen(spec);
    unsigned index = 0;
    if (colon) {
        char *end;
        unsigned long v = strtoul(colon + 1, &end, 10);
        if (!colon[1] || *end || v > 1000)
            return mp_errf(err, MP_E_USAGE, "--device '%s': the index after ':' must be a number", spec);
        index = (unsigned)v;
    }
    int b = 0;
    while (b < MP_BACKEND_COUNT && (b == MP_BACKEND_CPU || strlen(backends[b]->name) != base ||
                                    strncmp(spec, backends[b]->name, base) != 0))
        b++;
    int any = !colon && (strcmp(spec, "auto") == 0 || strcmp(spec, "gpu") == 0);
    if (!any && b == MP_BACKEND_COUNT && !(!colon && strcmp(spec, "cpu") == 0))
        return mp_errf(err, MP_E_USAGE, "--device '%s': expected auto, gpu, cpu, opencl[:I], level-zero[:I] or cuda[:I]",
                       spec);
    mp_backend_report *r = calloc(MP_BACKEND_COUNT, sizeof *r);
    if (!r) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_devices_list(r);
    const mp_device_info *pick = NULL;
    mp_errcode rc = MP_OK;
    if (any) rc = pick_gpu(r, strcmp(spec, "gpu") == 0, &pick, why, why_cap, err);
    else if (b == MP_BACKEND_COUNT) pick = &r[MP_BACKEND_CPU].devices[0];
    else rc = pick_named(&r[b], spec, index, &pick, err);
    if (rc == MP_OK) rc = open_listed(out, pick, err);
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
    float *buf, *xb;          /* launch scratch, kept between launches (no page faults each time) */
    size_t buf_cap, xb_cap;   /* floats */
    const float *xk;          /* x blocked, the caller's (mp_kernel_use_x) */
    uint32_t xk_m;
};

/* *p holds at least n floats. */
static int reserve(float **p, size_t *cap, size_t n)
{
    if (*cap >= n) return 1;
    float *q = realloc(*p, n * sizeof *q);
    if (!q) return 0;
    *p = q, *cap = n;
    return 1;
}

mp_errcode mp_kernel_upload(mp_device *d, const mp_kernel_data *kd, mp_kernel_job **out, mp_err *err)
{
    *out = NULL;
    if (kd->family < 0 || kd->family >= mp_kfamily_count())
        return mp_errf(err, MP_E_UNSUPPORTED, "no kernel file of this build reads the layout");
    mp_kernel_job *j = calloc(1, sizeof *j);
    if (!j) return mp_errf(err, MP_E_NOMEM, "out of memory");
    j->d = d;
    j->kd = *kd;
    sig_kept k;
    int keep = !mp_device_threadsafe(d); /* the cpu backend calls no library */
    if (keep) signals_keep(&k);
    mp_errcode rc = d->ops->upload(d, kd, &j->impl, err);
    if (keep) signals_restore(&k);
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
    free(j->buf);
    free(j->xb);
    free(j);
}

static const uint32_t guard_bits = 0x7fc0dead; /* a NaN no arithmetic produces */

size_t mp_kernel_x_floats(uint32_t m, size_t K) { return (size_t)(m + MP_KMB - 1) / MP_KMB * MP_KMB * K; }

void mp_kernel_block_x(const float *x, uint32_t m, size_t K, float *xb)
{
    memset(xb, 0, (m + MP_KMB - 1) / MP_KMB * MP_KMB * K * sizeof *xb);
    for (size_t i = 0; i < m; i++)
        for (size_t k = 0; k < K; k++) xb[(i / MP_KMB * K + k) * MP_KMB + i % MP_KMB] = x[i * K + k];
}

/* buf[0 .. count) = NaN, by doubling copies: the fill runs at memcpy speed. */
static void fill_nan(float *buf, size_t count)
{
    if (count) buf[0] = nanf("");
    for (size_t have = 1; have < count; have *= 2)
        memcpy(buf + have, buf, (count - have < have ? count - have : have) * sizeof *buf);
}

static void guard_set(float *g)
{
    for (size_t i = 0; i < MP_GUARD; i++) memcpy(&g[i], &guard_bits, sizeof guard_bits);
}

/* MP_E_MISMATCH when a kernel of j wrote into the guard zone g. */
static mp_errcode guard_check(const mp_kernel_job *j, const float *g, mp_err *err)
{
    for (size_t i = 0; i < MP_GUARD; i++)
        if (memcmp(&g[i], &guard_bits, sizeof guard_bits) != 0)
            return mp_errf(err, MP_E_MISMATCH, "%s kernel wrote past the end of its output (guard word %zu)",
                           mp_kfamily_name(j->kd.family), i);
    return MP_OK;
}

/* out: count floats; when in_place, count + MP_KERNEL_GUARD floats that the launch runs in
 * directly (no copy; in_place 2: its count floats already NaN, not filled again), else the
 * launch runs in the job's scratch and copies the result out. A
 * gemm with x NULL runs on the job's blocked x (mp_kernel_use_x); an in-place launch with no x
 * to block writes nothing of the job's. */
static mp_errcode launch(mp_kernel_job *j, int gemm, const uint32_t *rows, uint32_t nrows,
                         const float *x, uint32_t m, float *out, size_t count, int in_place, mp_err *err)
{
    uint32_t P[MP_P_COUNT];
    memcpy(P, j->kd.P, sizeof P);
    P[MP_P_NROWS] = nrows;
    P[MP_P_M] = m;
    size_t K = P[MP_P_K], xb_floats = gemm ? mp_kernel_x_floats(m, K) : 0;
    if ((!in_place && !reserve(&j->buf, &j->buf_cap, count + MP_GUARD)) ||
        (gemm && x && !reserve(&j->xb, &j->xb_cap, xb_floats + 1)))
        return mp_errf(err, MP_E_NOMEM, "out of memory");
    float *buf = in_place ? out : j->buf;
    const float *xb = !gemm ? NULL : x ? j->xb : j->xk;
    if (gemm && x) mp_kernel_block_x(x, m, K, j->xb);
    if (in_place != 2) fill_nan(buf, count);
    guard_set(buf + count);
    size_t global[2] = {gemm ? nrows : (K + MP_KSPAN - 1) / MP_KSPAN, gemm ? 1 : nrows};
    mp_errcode rc =
        j->d->ops->launch(j->d, j->impl, gemm, P, rows, xb, xb_floats, buf, count + MP_GUARD, global, err);
    if (rc == MP_OK) rc = guard_check(j, buf + count, err);
    if (in_place == 2) fill_nan(buf + count, MP_GUARD); /* NaN again, as it came */
    if (rc == MP_OK && !in_place) memcpy(out, buf, count * sizeof *out);
    return rc;
}

mp_errcode mp_kernel_dequant(mp_kernel_job *j, const uint32_t *rows, uint32_t nrows, float *out,
                             mp_err *err)
{
    return launch(j, 0, rows, nrows, NULL, 0, out, (size_t)nrows * j->kd.P[MP_P_K], 0, err);
}

mp_errcode mp_kernel_dequant_in_place(mp_kernel_job *j, const uint32_t *rows, uint32_t nrows, float *out,
                                      mp_err *err)
{
    return launch(j, 0, rows, nrows, NULL, 0, out, (size_t)nrows * j->kd.P[MP_P_K], 1, err);
}

mp_errcode mp_kernel_dequant_prefilled(mp_kernel_job *j, const uint32_t *rows, uint32_t nrows, float *out,
                                       mp_err *err)
{
    return launch(j, 0, rows, nrows, NULL, 0, out, (size_t)nrows * j->kd.P[MP_P_K], 2, err);
}

mp_errcode mp_kernel_gemm(mp_kernel_job *j, const uint32_t *rows, uint32_t nrows, const float *x,
                          uint32_t m, float *out, mp_err *err)
{
    return launch(j, 1, rows, nrows, x, m, out, (size_t)m * nrows, 0, err);
}

void mp_kernel_use_x(mp_kernel_job *j, const float *xk, uint32_t m) { j->xk = xk, j->xk_m = m; }

mp_errcode mp_kernel_gemm_in_place(mp_kernel_job *j, const uint32_t *rows, uint32_t nrows, float *out,
                                   mp_err *err)
{
    assert(j->xk);
    return launch(j, 1, rows, nrows, NULL, j->xk_m, out, (size_t)j->xk_m * nrows, 1, err);
}

mp_errcode mp_kernel_dequant_gemm_prefilled(mp_kernel_job *j, const uint32_t *rows, uint32_t nrows, float *vals,
                                           float *y, mp_err *err)
{
    if (!j->d->ops->launch_both || j->xk_m == 0) { /* no rows of x: the fused pass would write no values */
        mp_errcode rc = mp_kernel_dequant_prefilled(j, rows, nrows, vals, err);
        return rc != MP_OK ? rc : mp_kernel_gemm_in_place(j, rows, nrows, y, err);
    }
    assert(j->xk);
    uint32_t P[MP_P_COUNT];
    memcpy(P, j->kd.P, sizeof P);
    P[MP_P_NROWS] = nrows;
    P[MP_P_M] = j->xk_m;
    size_t nv = (size_t)nrows * P[MP_P_K], ny = (size_t)j->xk_m * nrows;
    fill_nan(y, ny);
    guard_set(vals + nv), guard_set(y + ny);
    mp_errcode rc = j->d->ops->launch_both(j->d, j->impl, P, rows, j->xk, vals, y, err);
    if (rc == MP_OK) rc = guard_check(j, vals + nv, err);
    if (rc == MP_OK) rc = guard_check(j, y + ny, err);
    fill_nan(vals + nv, MP_GUARD); /* NaN again, as it came */
    return rc;
}

int mp_device_threadsafe(const mp_device *d) { return d->info.backend == MP_BACKEND_CPU; }

int mp_kernel_threadsafe(const mp_kernel_job *j) { return mp_device_threadsafe(j->d); }
