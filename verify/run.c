/*
 * run.c - `modelprep verify`: open the device, then integrity, structure and numerics, in that
 * order, into one report. The device is opened first so that a missing one fails before any
 * work; the report's first line is the device that actually ran.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "check.h"
#include "../formats/formats.h"

#include <limits.h>
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

/* 1 when a and b are the same directory or file. */
static int same_path(const char *a, const char *b)
{
    char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
    int same = ra && rb && strcmp(ra, rb) == 0;
    free(ra);
    free(rb);
    return same;
}

/* Whether the checkpoint at `path` is the one the manifest's source.files describe: the same
 * files, sizes and xxh3-128. Sets *why when not. */
static int source_matches(const char *path, const cJSON *files, char *why, size_t cap)
{
    mp_st_model *m = NULL;
    mp_err e = MP_ERR_INIT;
    if (mp_st_open(&m, path, &e) != MP_OK) {
        snprintf(why, cap, "%.200s does not open: %.200s", path, e.msg);
        return 0;
    }
    int ok = cJSON_IsArray(files) && (size_t)cJSON_GetArraySize(files) == mp_st_n_files(m);
    if (!ok) snprintf(why, cap, "%.200s has other files than the manifest records", path);
    for (size_t i = 0; ok && i < mp_st_n_files(m); i++) {
        const cJSON *f = cJSON_GetArrayItem(files, (int)i);
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(f, "name");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(f, "xxh3_128");
        uint64_t size = 0;
        uint8_t canon[16];
        char hex[33];
        ok = cJSON_IsString(n) && cJSON_IsString(h) && mp_json_get_u64(cJSON_GetObjectItemCaseSensitive(f, "size"), &size) &&
             strcmp(n->valuestring, mp_st_file_name(m, i)) == 0 && size == mp_st_file(m, i)->size &&
             mp_file_xxh128(mp_st_file(m, i), canon, &e) == MP_OK;
        if (ok) {
            mp_hex128(canon, hex);
            ok = strcmp(hex, h->valuestring) == 0;
        }
        if (!ok) snprintf(why, cap, "%.200s: %.200s differs from the manifest's record", path, mp_st_file_name(m, i));
    }
    mp_st_close(m);
    return ok;
}

/* The manifest's source: its path from the working directory, else its absolute_path, else from
 * beside the output; only if it is still the checkpoint the manifest hashed, and not the output
 * itself. *found says whether any of these exists at all (why says which were tried). */
static char *recorded_source(const cJSON *manifest, const char *out_dir, char *why, size_t cap, int *found)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(manifest, "source");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(s, "path");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(s, "absolute_path");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(s, "files");
    *found = 0;
    snprintf(why, cap, "the manifest names no source");
    if (!cJSON_IsString(p) || !p->valuestring[0]) return NULL;
    const char *abs = cJSON_IsString(a) && a->valuestring[0] == '/' ? a->valuestring : NULL;
    snprintf(why, cap, "the manifest's source %.300s is not there%s%.200s", p->valuestring, abs ? ", nor at " : "",
             abs ? abs : "");
    char *parent = mp_path_join(out_dir, "..");
    char *cand[3] = {strdup(p->valuestring), abs ? strdup(abs) : NULL,
                     p->valuestring[0] != '/' && parent ? mp_path_join(parent, p->valuestring) : NULL};
    free(parent);
    char *pick = NULL;
    for (int i = 0; i < 3 && !pick; i++) {
        if (!cand[i] || !mp_exists(cand[i])) continue;
        *found = 1;
        if (same_path(cand[i], out_dir)) {
            snprintf(why, cap, "the manifest's source %.300s is the checkpoint itself", p->valuestring);
            continue;
        }
        if (source_matches(cand[i], files, why, cap)) pick = cand[i], cand[i] = NULL;
    }
    for (int i = 0; i < 3; i++) free(cand[i]);
    return pick;
}

/* The source the numerics compare with: --against, else the manifest's; *src_path NULL with
 * *why_own saying why when there is none. Never a silent self-check: a recorded source that
 * would be used and cannot be found is MP_E_IO, unless --no-source asks for the self-check. */
static mp_errcode pick_source(const mp_verify_opts *o, const cJSON *manifest, const mp_st_model *out,
                              const mp_qmodel *outq, char **src_path, const char **why_own, char *why, size_t cap,
                              mp_err *err)
{
    *src_path = NULL;
    if (o->against) {
        if (same_path(o->against, o->path))
            return mp_errf(err, MP_E_USAGE, "--against %.300s is the checkpoint being verified", o->against);
        *src_path = strdup(o->against);
        return *src_path ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    if (!manifest) {
        *why_own = "no --against and no manifest";
        return MP_OK;
    }
    if (o->no_source) {
        *why_own = "--no-source";
        return MP_OK;
    }
    int found = 0;
    *src_path = recorded_source(manifest, mp_st_dir(out), why, cap, &found);
    if (*src_path) return MP_OK;
    *why_own = why;
    if (!found && mp_qmodel_n_linears(outq) > 0 && strncmp(why, "the manifest names no", 21) != 0)
        return mp_errf_at(err, MP_E_IO, o->path, NULL, -1,
                          "%s; pass --against SRC to compare with the source, or --no-source to compare the "
                          "output with its own layout", why);
    return MP_OK;
}

/* Data that cannot be read in a checkpoint that opened (a damaged zstd frame, a truncated file)
 * is what verify is for: a failure in the report, which then stops, not a bare error. */
static mp_errcode damaged(mp_errcode rc, const char *stage, mp_verify_report *r, mp_err *err)
{
    if (rc != MP_E_INPUT) return rc;
    char msg[700];
    mp_err_format(err, msg, sizeof msg);
    mp_err_clear(err);
    r->stopped = 1;
    return mp_vfind(r, MP_VS_FAIL, stage, "cannot read the data, checks stopped: %s", msg) == MP_OK
               ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
}

/* The runtime stage of a split directory, which needs no readable model, then the model. A split
 * the runtime stage already failed (a layer file gone) is reported, not an error. */
static mp_errcode runtime_then_open(const mp_verify_opts *o, mp_st_model **out, mp_verify_report *r, mp_err *err)
{
    if (o->runtime > MP_RUNTIME_PLAIN && !mp_is_dir(o->path))
        return mp_errf(err, MP_E_USAGE, "--for checks a split directory; %.300s is not one", o->path);
    if (mp_is_dir(o->path)) MP_FORWARD(mp_check_runtime(o->path, o->runtime, r, err));
    mp_errcode rc = mp_st_open(out, o->path, err);
    if (rc != MP_OK && r->n_fail) rc = damaged(rc == MP_E_IO ? MP_E_INPUT : rc, "runtime", r, err);
    return rc;
}

void mp_verify_report_free(mp_verify_report *r)
{
    free(r->findings);
    free(r->numeric);
    memset(r, 0, sizeof *r);
}

/* What one verify of a safetensors checkpoint holds, released by session_release(). */
typedef struct session {
    const mp_verify_opts *o;
    mp_device *dev;
    mp_reporter *progress;
    mp_st_model *out, *src;
    mp_qmodel *outq, *srcq;
    cJSON *manifest;
    char *src_path;
} session;

static void session_release(session *v)
{
    mp_qmodel_free(v->srcq);
    mp_st_close(v->src);
    mp_qmodel_free(v->outq);
    mp_st_close(v->out);
    cJSON_Delete(v->manifest);
    free(v->src_path);
}

/* A GGUF file is checked against its own blocks. */
static mp_errcode verify_gguf(const mp_verify_opts *o, mp_device *dev, mp_reporter *progress, mp_verify_report *r,
                              mp_err *err)
{
    if (o->runtime > MP_RUNTIME_PLAIN)
        return mp_errf(err, MP_E_USAGE, "--for checks a per-layer split of a safetensors checkpoint; neither "
                                        "runtime loads a GGUF file");
    if (o->against)
        return mp_errf(err, MP_E_USAGE, "--against applies to safetensors checkpoints; a GGUF file is checked "
                                        "against its own blocks");
    MP_FORWARD(mp_check_gguf(o->path, dev, o, progress, r, err));
    if (r->n_numeric == 0 &&
        mp_vfind(r, MP_VS_WARN, "numerics", "no Q4_0, Q4_1 or Q8_0 matrix: nothing ran on the device") != MP_OK)
        return mp_errf(err, MP_E_NOMEM, "out of memory");
    return MP_OK;
}

/* The output, its manifest (when it has one) and the hashes the manifest records. */
static mp_errcode open_output(session *v, mp_verify_report *r, mp_err *err)
{
    MP_FORWARD(runtime_then_open(v->o, &v->out, r, err));
    if (r->stopped) return MP_OK;
    r->n_tensors_checked = mp_st_n_tensors(v->out);
    char *mpath = mp_path_join(mp_st_dir(v->out), "modelprep.json");
    if (!mpath) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = MP_OK;
    if (mp_is_dir(v->o->path) && mp_exists(mpath)) {
        rc = mp_json_load_file(mpath, 1u << 28, "modelprep.json", &v->manifest, err);
        r->manifest = rc == MP_OK;
    }
    free(mpath);
    MP_FORWARD(rc);
    if (v->manifest) return mp_check_integrity(v->out, v->manifest, r, err);
    return mp_vfind(r, MP_VS_WARN, "integrity", "no modelprep.json: hashes not checked");
}

/* The source to compare with, opened, with its copies checked; none (v->src NULL) when there is
 * no source or it is not quantized, *why_own saying why. */
/* Tensors the manifest says came from the source (copied or dequantized), which only the source
 * can vouch for. */
static size_t from_source(const cJSON *manifest)
{
    size_t n = 0;
    const cJSON *te;
    cJSON_ArrayForEach(te, cJSON_GetObjectItemCaseSensitive(manifest, "tensors")) {
        const cJSON *to = cJSON_GetObjectItemCaseSensitive(te, "origin");
        n += cJSON_IsString(to) && (strcmp(to->valuestring, "copy") == 0 || strcmp(to->valuestring, "dequantize") == 0);
    }
    return n;
}

static mp_errcode open_source(session *v, const char **why_own, char *why, size_t cap, mp_verify_report *r,
                              mp_err *err)
{
    MP_FORWARD(pick_source(v->o, v->manifest, v->out, v->outq, &v->src_path, why_own, why, cap, err));
    size_t n = !v->src_path && v->manifest && !v->o->no_source ? from_source(v->manifest) : 0;
    /* Said as a warning, never passed over: these tensors were not compared with anything. */
    if (n && mp_vfind(r, MP_VS_WARN, "integrity", "%zu tensors the manifest records as copied or dequantized from the "
                      "source were not checked against it: %s; pass --against SRC", n, *why_own) != MP_OK)
        return mp_errf(err, MP_E_NOMEM, "out of memory");
    if (!v->src_path) return MP_OK;
    MP_FORWARD(mp_st_open(&v->src, v->src_path, err));
    /* Every copied tensor against the source, quantized or not (doc/safety.md §3). */
    if (v->manifest) MP_FORWARD(damaged(mp_check_copies(v->out, v->manifest, v->src, r, err), "integrity", r, err));
    if (r->stopped) return MP_OK;
    MP_FORWARD(mp_qmodel_open(&v->srcq, v->src, err));
    if (!mp_qmodel_quantized(v->srcq)) {
        *why_own = v->o->against ? "--against names a checkpoint that is not quantized" : "the source is not quantized";
        mp_qmodel_free(v->srcq);
        mp_st_close(v->src);
        v->srcq = NULL, v->src = NULL;
    }
    return MP_OK;
}

/* The report's reference line, and the warning when the output is judged by its own layout. */
static mp_errcode describe_reference(const session *v, const char *why_own, mp_verify_report *r)
{
    if (v->src) {
        snprintf(r->reference, sizeof r->reference, "CPU dequantization of the source %.400s (%s)", v->src_path,
                 mp_qmethod_name(mp_qmodel_method(v->srcq)));
        return MP_OK;
    }
    if (mp_qmodel_n_linears(v->outq) == 0) {
        snprintf(r->reference, sizeof r->reference, "none: no quantized tensor in the checkpoint, and %.400s", why_own);
        return MP_OK;
    }
    snprintf(r->reference, sizeof r->reference,
             "CPU dequantization of the output's own layout, independent of the kernels (%.400s)", why_own);
    return mp_vfind(r, MP_VS_WARN, "numerics", "no source to compare with (%s): the output is compared with its own layout",
                    why_own);
}

static mp_errcode run_numerics(const session *v, mp_verify_report *r, mp_err *err)
{
    unsigned char *seen = v->srcq ? calloc(mp_qmodel_n_linears(v->srcq) + 1, 1) : NULL;
    if (v->srcq && !seen) return mp_errf(err, MP_E_NOMEM, "out of memory");
    size_t out_held = SIZE_MAX, src_held = SIZE_MAX;
    mp_numerics *nu = mp_numerics_new(v->dev, v->o, 0);
    if (!nu) {
        free(seen);
        return mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    mp_numeric_ctx c = {v->out, v->outq, v->manifest, v->src, v->srcq, nu, v->o, seen, &out_held, &src_held,
                        v->progress};
    double tn = now();
    mp_errcode rc = damaged(mp_check_numerics(&c, r, err), "numerics", r, err);
    r->numeric_seconds = now() - tn;
    mp_numerics_free(nu);
    if (out_held != SIZE_MAX) mp_st_file_unload(v->out, out_held);
    if (src_held != SIZE_MAX) mp_st_file_unload(v->src, src_held);
    free(seen);
    if (rc == MP_OK && r->n_numeric == 0 &&
        mp_vfind(r, MP_VS_WARN, "numerics", "no quantized tensor was checked: nothing ran on the device") != MP_OK)
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    return rc;
}

/* Integrity, structure, the copies against the source, then numerics; a stage that finds the
 * data unreadable stops the run with what it found (r->stopped). */
static mp_errcode verify_safetensors(session *v, mp_verify_report *r, mp_err *err)
{
    MP_FORWARD(open_output(v, r, err));
    if (r->stopped) return MP_OK;
    MP_FORWARD(mp_qmodel_open(&v->outq, v->out, err));
    MP_FORWARD(damaged(mp_check_structure(v->out, v->outq, v->manifest, r, err), "structure", r, err));
    if (r->stopped) return MP_OK;
    const char *why_own = NULL;
    char why[600] = "";
    MP_FORWARD(open_source(v, &why_own, why, sizeof why, r, err));
    if (r->stopped) return MP_OK;
    if (describe_reference(v, why_own, r) != MP_OK) return mp_errf(err, MP_E_NOMEM, "out of memory");
    return run_numerics(v, r, err);
}

mp_errcode mp_verify_run(const mp_verify_opts *o, mp_verify_report *r, mp_err *err)
{
    memset(r, 0, sizeof *r);
    double t0 = now();
    mp_device *dev = NULL;
    mp_errcode rc = mp_device_open(&dev, o->device, r->device_note, sizeof r->device_note, err);
    if (rc != MP_OK) return rc;
    r->device = *mp_device_get_info(dev);
    mp_reporter progress = {.fn = o->progress, .user = o->progress_user, .unit = "steps"};
    if (mp_gguf_probe(o->path)) {
        rc = verify_gguf(o, dev, &progress, r, err);
    } else {
        session v = {.o = o, .dev = dev, .progress = &progress};
        rc = verify_safetensors(&v, r, err);
        session_release(&v);
    }
    if (progress.label) mp_report_end(&progress);
    r->seconds = now() - t0;
    mp_device_close(dev);
    return rc;
}
