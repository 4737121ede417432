/*
 * run.c - `modelprep verify`: open the device, then integrity, structure and numerics, in that
 * order, into one report. The device is opened first so that a missing one fails before any
 * work; the report's first line is the device that actually ran.
 */
#include "check.h"
#include "../formats/formats_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* The manifest's source, as recorded (relative to where convert ran), else beside the output. */
static char *recorded_source(const cJSON *manifest, const char *out_dir)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(manifest, "source");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(s, "path");
    if (!cJSON_IsString(p) || !p->valuestring[0]) return NULL;
    if (mp_exists(p->valuestring)) return strdup(p->valuestring);
    if (p->valuestring[0] == '/') return NULL;
    char *parent = mp_path_join(out_dir, "..");
    char *alt = parent ? mp_path_join(parent, p->valuestring) : NULL;
    free(parent);
    if (alt && mp_exists(alt)) return alt;
    free(alt);
    return NULL;
}

void mp_verify_report_free(mp_verify_report *r)
{
    free(r->findings);
    free(r->numeric);
    memset(r, 0, sizeof *r);
}

mp_errcode mp_verify_run(const mp_verify_opts *o, mp_verify_report *r, mp_err *err)
{
    memset(r, 0, sizeof *r);
    double t0 = now();
    mp_device *dev = NULL;
    mp_st_model *out = NULL, *src = NULL;
    mp_qmodel *outq = NULL, *srcq = NULL;
    cJSON *manifest = NULL;
    char *src_path = NULL;
    mp_errcode rc = mp_device_open(&dev, o->device, r->device_note, sizeof r->device_note, err);
    if (rc != MP_OK) return rc;
    r->device = *mp_device_get_info(dev);
    rc = mp_st_open(&out, o->path, err);
    if (rc != MP_OK) goto done;
    r->n_tensors_checked = mp_st_n_tensors(out);

    char *mpath = mp_path_join(mp_st_dir(out), "modelprep.json");
    if (!mpath) {
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        goto done;
    }
    if (mp_is_dir(o->path) && mp_exists(mpath)) {
        rc = mp_json_load_file(mpath, 1u << 28, "modelprep.json", &manifest, err);
        r->manifest = rc == MP_OK;
    }
    free(mpath);
    if (rc != MP_OK) goto done;
    if (manifest) rc = mp_check_integrity(out, manifest, r, err);
    else rc = mp_vfind(r, MP_VS_WARN, "integrity", "no modelprep.json: hashes not checked");
    if (rc != MP_OK) goto done;

    rc = mp_qmodel_open(&outq, out, err);
    if (rc == MP_OK) rc = mp_check_structure(out, outq, manifest, r, err);
    if (rc != MP_OK) goto done;

    const char *why_own = NULL;
    if (o->against) {
        src_path = strdup(o->against);
        if (!src_path) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    } else if (manifest) {
        src_path = recorded_source(manifest, mp_st_dir(out));
        if (!src_path) why_own = "the manifest's source is not there";
    } else {
        why_own = "no --against and no manifest";
    }
    if (rc == MP_OK && src_path) {
        rc = mp_st_open(&src, src_path, err);
        if (rc == MP_OK) rc = mp_qmodel_open(&srcq, src, err);
        if (rc == MP_OK && !mp_qmodel_quantized(srcq)) {
            why_own = "the source is not quantized";
            mp_qmodel_free(srcq);
            mp_st_close(src);
            srcq = NULL, src = NULL;
        }
        if (rc != MP_OK) goto done;
    }
    if (src)
        snprintf(r->reference, sizeof r->reference, "CPU dequantization of the source %.400s (%s)", src_path,
                 mp_qmethod_name(mp_qmodel_method(srcq)));
    else
        snprintf(r->reference, sizeof r->reference,
                 "CPU dequantization of the output's own layout, independent of the kernels (%s)", why_own);
    mp_numeric_ctx c = {out, outq, manifest, src, srcq, dev, o};
    rc = mp_check_numerics(&c, r, err);
done:
    r->seconds = now() - t0;
    mp_qmodel_free(srcq);
    mp_st_close(src);
    mp_qmodel_free(outq);
    mp_st_close(out);
    cJSON_Delete(manifest);
    free(src_path);
    mp_device_close(dev);
    return rc;
}
