/*
 * integrity.c - recompute the hashes of modelprep.json.
 *
 * Each file's xxh3-128 is computed in one pass straight from the page cache (mp_file_xxh128:
 * mapped 16 MiB at a time), at about the speed of `cat`, and several files at once. When a
 * file's hash differs, a second pass over that file recomputes each tensor's xxh64 to name the
 * tensors that changed; when all of them match, the header or the padding changed. A file whose bytes match its xxh3-128 holds exactly
 * the tensors the manifest's xxh64 were computed from.
 */
#include "check.h"
#include "../formats/formats.h"

#include <xxhash.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BLOCK (8u << 20)   /* reads of the blame pass */

/* The manifest's tensor hashes, sorted by name for lookups. */
typedef struct named_hash {
    const char *name, *xxh64;
} named_hash;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const named_hash *)a)->name, ((const named_hash *)b)->name);
}

static const char *manifest_xxh64(const named_hash *h, size_t n, const char *name)
{
    named_hash key = {name, NULL};
    const named_hash *hit = bsearch(&key, h, n, sizeof *h, by_name);
    return hit ? hit->xxh64 : NULL;
}

/* One manifest file's xxh3-128, computed before the checks (in parallel across files). */
typedef struct pre_hash {
    char *path;          /* NULL: the name is refused below */
    int done;
    mp_errcode rc;
    mp_err err;
    uint8_t canon[16];
} pre_hash;

static mp_errcode tensor_xxh64(const mp_st_model *m, const mp_tensor *t, uint8_t *buf, size_t cap, uint64_t *out,
                               mp_err *err)
{
    XXH64_state_t *st = XXH64_createState();
    if (!st) return mp_errf(err, MP_E_NOMEM, "out of memory");
    XXH64_reset(st, 0);
    mp_errcode rc = MP_OK;
    for (uint64_t at = 0; at < t->n_bytes && rc == MP_OK; at += cap) {
        size_t len = (size_t)(t->n_bytes - at < cap ? t->n_bytes - at : cap);
        rc = mp_st_read(m, t, at, buf, len, err);
        if (rc == MP_OK) XXH64_update(st, buf, len);
    }
    *out = XXH64_digest(st);
    XXH64_freeState(st);
    return rc;
}

/* The second pass, only over a file whose xxh3-128 differs: each tensor's xxh64, to name the
 * ones that changed. Returns how many differ in *bad. */
static mp_errcode blame_tensors(const mp_st_model *m, size_t fi, const char *name, const named_hash *h,
                                size_t nh, uint8_t *buf, size_t cap, size_t *bad, mp_verify_report *r, mp_err *err)
{
    *bad = 0;
    for (size_t j = 0; j < mp_st_file_n_tensors(m, fi); j++) { /* file order: one pass if compressed */
        const mp_tensor *t = mp_st_file_tensor(m, fi, j);
        uint64_t x;
        MP_FORWARD(tensor_xxh64(m, t, buf, cap, &x, err));
        char hex[17];
        mp_hex64(x, hex);
        const char *want = manifest_xxh64(h, nh, t->name);
        if (want && strcmp(hex, want) == 0) continue;
        (*bad)++;
        mp_errcode rc = want ? mp_vfind(r, MP_VS_FAIL, "integrity", "%s: tensor '%s': xxh64 %s, the manifest says %.20s",
                                        name, t->name, hex, want)
                             : mp_vfind(r, MP_VS_FAIL, "integrity", "%s: tensor '%s' is not in the manifest", name, t->name);
        if (rc != MP_OK) return mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    return MP_OK;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* One integrity check's state, released by integ_release(). */
typedef struct integ {
    const mp_st_model *m;
    named_hash *h;               /* the manifest's tensor hashes, sorted by name */
    size_t nh;
    unsigned char *listed;       /* per file of m: named by the manifest */
    size_t n_listed;
    pre_hash *pre;               /* per 'files' entry */
    long long n_entries;
    uint8_t *buf;                /* the blame pass's reads; grows to BLOCK with the files */
    size_t cap;
} integ;

static void integ_release(integ *c)
{
    for (long long i = 0; c->pre && i < c->n_entries; i++) free(c->pre[i].path);
    free(c->pre);
    free(c->buf);
    free(c->h);
    free(c->listed);
}

static mp_errcode load_tensor_hashes(integ *c, const cJSON *tensors, mp_err *err)
{
    c->h = malloc(((size_t)cJSON_GetArraySize(tensors) + 1) * sizeof *c->h);
    c->listed = calloc(mp_st_n_files(c->m) + 1, 1);
    if (!c->h || !c->listed) return mp_errf(err, MP_E_NOMEM, "out of memory");
    const cJSON *te;
    cJSON_ArrayForEach(te, tensors) {
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(te, "name");
        const cJSON *tx = cJSON_GetObjectItemCaseSensitive(te, "xxh64");
        if (cJSON_IsString(tn) && cJSON_IsString(tx)) c->h[c->nh++] = (named_hash){tn->valuestring, tx->valuestring};
    }
    qsort(c->h, c->nh, sizeof *c->h, by_name);
    return MP_OK;
}

/* The files' xxh3-128 first, several files at once; the checks then read the results in
 * manifest order. Names are vetted here too: nothing outside the checkpoint is opened. */
static mp_errcode prehash_files(integ *c, const cJSON *files, mp_err *err)
{
    c->n_entries = cJSON_GetArraySize(files);
    pre_hash *pre = c->pre = calloc((size_t)c->n_entries + 1, sizeof *c->pre);
    if (!pre) return mp_errf(err, MP_E_NOMEM, "out of memory");
    long long k = 0;
    const cJSON *fe;
    cJSON_ArrayForEach(fe, files) {
        const cJSON *jn = cJSON_GetObjectItemCaseSensitive(fe, "name");
        if (cJSON_IsString(jn) && mp_name_is_contained(jn->valuestring)) {
            pre[k].path = mp_path_join(mp_st_dir(c->m), jn->valuestring);
            if (pre[k].path && !mp_path_within(mp_st_dir(c->m), pre[k].path, NULL)) {
                free(pre[k].path);
                pre[k].path = NULL;
            }
        }
        k++;
    }
#pragma omp parallel for schedule(dynamic, 1) if (c->n_entries > 1)
    for (long long i = 0; i < c->n_entries; i++) {
        mp_file *f = NULL;
        pre[i].err = (mp_err)MP_ERR_INIT;
        if (!pre[i].path || mp_file_open(&f, pre[i].path, &pre[i].err) != MP_OK) continue;
        pre[i].rc = mp_file_xxh128(f, pre[i].canon, &pre[i].err);
        pre[i].done = 1;
        mp_file_close(f);
    }
    return MP_OK;
}

/* A file whose xxh3-128 differs: name the tensors that changed, or say that none did. */
static mp_errcode blame_file(integ *c, size_t fi, const char *name, const char *hex, const char *want,
                             mp_verify_report *r, mp_err *err)
{
    size_t bad = 0;
    mp_err berr = MP_ERR_INIT;
    mp_errcode rc = fi == SIZE_MAX ? MP_OK : blame_tensors(c->m, fi, name, c->h, c->nh, c->buf, c->cap, &bad, r, &berr);
    if (rc == MP_E_NOMEM) {
        *err = berr;
        return rc;
    }
    if (rc != MP_OK) { /* e.g. a damaged zstd frame: the finding says it */
        char msg[600];
        mp_err_format(&berr, msg, sizeof msg);
        return mp_vfind(r, MP_VS_FAIL, "integrity", "%s: xxh3-128 %s, the manifest says %.40s, and reading its tensors "
                        "fails: %s", name, hex, want, msg);
    }
    if (bad) return MP_OK;
    return mp_vfind(r, MP_VS_FAIL, "integrity", "%s: xxh3-128 %s, the manifest says %.40s (%s)", name, hex, want,
                    fi != SIZE_MAX ? "every tensor matches: the header or padding changed" : "the file changed");
}

/* An opened manifest file against its entry: size, then the xxh3-128 the first pass computed. */
static mp_errcode check_hash(integ *c, const mp_file *f, size_t fi, const char *name, const char *want,
                             uint64_t want_size, const pre_hash *pre, mp_verify_report *r, mp_err *err)
{
    size_t need = f->size < BLOCK ? (size_t)f->size + 1 : BLOCK;
    if (need > c->cap) {
        uint8_t *nb = realloc(c->buf, need);
        if (!nb) return mp_errf(err, MP_E_NOMEM, "out of memory");
        c->buf = nb, c->cap = need;
    }
    if (f->size != want_size)
        return mp_vfind(r, MP_VS_FAIL, "integrity", "%s: %llu bytes, the manifest says %llu", name,
                        (unsigned long long)f->size, (unsigned long long)want_size);
    if (!pre->done) return mp_vfind(r, MP_VS_FAIL, "integrity", "%s: could not be read for hashing: %s", name, pre->err.msg);
    if (pre->rc != MP_OK) {
        *err = pre->err;
        return pre->rc;
    }
    r->files_hashed++;
    r->bytes_hashed += f->size;
    char hex[33];
    mp_hex128(pre->canon, hex);
    return strcmp(hex, want) == 0 ? MP_OK : blame_file(c, fi, name, hex, want, r, err);
}

/* The k-th 'files' entry of the manifest. */
static mp_errcode check_file(integ *c, const cJSON *fe, long long k, mp_verify_report *r, mp_err *err)
{
    const cJSON *jn = cJSON_GetObjectItemCaseSensitive(fe, "name");
    const cJSON *jh = cJSON_GetObjectItemCaseSensitive(fe, "xxh3_128");
    uint64_t want_size;
    if (!cJSON_IsString(jn) || !cJSON_IsString(jh) ||
        !mp_json_get_u64(cJSON_GetObjectItemCaseSensitive(fe, "size"), &want_size))
        return mp_errf_at(err, MP_E_INPUT, "modelprep.json", NULL, -1,
                          "a 'files' entry needs a string name, an integer size and a string xxh3_128");
    const char *name = jn->valuestring;
    if (!mp_name_is_contained(name))
        return mp_errf_at(err, MP_E_INPUT, "modelprep.json", NULL, -1, "file name '%.200s' would leave the checkpoint", name);
    char *path = mp_path_join(mp_st_dir(c->m), name);
    if (!path) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_file *f = NULL;
    mp_err ferr = MP_ERR_INIT;
    int opened = mp_path_within(mp_st_dir(c->m), path, NULL) && mp_file_open(&f, path, &ferr) == MP_OK;
    free(path);
    if (!opened)
        return mp_vfind(r, MP_VS_FAIL, "integrity", "%s: missing, unreadable or outside the checkpoint%s%s", name,
                        ferr.code ? ": " : "", ferr.code ? ferr.msg : "");
    size_t fi = SIZE_MAX; /* the checkpoint's file of that name, if it is one */
    for (size_t i = 0; i < mp_st_n_files(c->m) && fi == SIZE_MAX; i++)
        if (strcmp(mp_st_file_name(c->m, i), name) == 0) fi = i;
    if (fi != SIZE_MAX && !c->listed[fi]++) c->n_listed++;
    mp_errcode rc = check_hash(c, f, fi, name, jh->valuestring, want_size, &c->pre[k], r, err);
    mp_file_close(f);
    return rc;
}

mp_errcode mp_check_integrity(const mp_st_model *m, const cJSON *manifest, mp_verify_report *r, mp_err *err)
{
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(manifest, "files");
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(manifest, "tensors");
    if (!cJSON_IsArray(files) || !cJSON_IsArray(tensors))
        return mp_errf_at(err, MP_E_INPUT, "modelprep.json", NULL, -1, "'files' and 'tensors' must be arrays");
    integ c = {.m = m};
    double t0 = now();
    mp_errcode rc = load_tensor_hashes(&c, tensors, err);
    if (rc == MP_OK) rc = prehash_files(&c, files, err);
    long long k = 0;
    const cJSON *fe;
    cJSON_ArrayForEach(fe, files) {
        if (rc != MP_OK) break;
        rc = check_file(&c, fe, k++, r, err);
        if (rc == MP_E_NOMEM && err->code == MP_OK) mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    /* Every weight file must be covered: a manifest that leaves one out checks nothing there. */
    for (size_t i = 0; rc == MP_OK && c.n_listed < mp_st_n_files(m) && i < mp_st_n_files(m); i++)
        if (!c.listed[i] && mp_vfind(r, MP_VS_FAIL, "integrity", "%s: not in the manifest's files, so not checked",
                                     mp_st_file_name(m, i)) != MP_OK)
            rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    r->hash_seconds = now() - t0;
    integ_release(&c);
    return rc;
}

/* The source tensor an output tensor was copied from: the same name, or for a tied head the
 * embedding the manifest's layout names (layout.tied {"lm_head.weight": "model.embed..."}). */
static const mp_tensor *copied_from(const mp_st_model *src, const cJSON *manifest, const char *name)
{
    const mp_tensor *t = mp_st_find(src, name);
    if (t) return t;
    const cJSON *tied = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(manifest, "layout"), "tied");
    const cJSON *to = cJSON_IsObject(tied) ? cJSON_GetObjectItemCaseSensitive(tied, name) : NULL;
    return cJSON_IsString(to) ? mp_st_find(src, to->valuestring) : NULL;
}

mp_errcode mp_check_copies(const mp_st_model *out, const cJSON *manifest, const mp_st_model *src, mp_verify_report *r,
                           mp_err *err)
{
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(manifest, "tensors");
    if (!cJSON_IsArray(tensors)) return MP_OK; /* mp_check_integrity reported it */
    uint8_t *buf = malloc(BLOCK);
    if (!buf) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = MP_OK;
    const cJSON *te;
    cJSON_ArrayForEach(te, tensors) {
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(te, "name");
        const cJSON *tx = cJSON_GetObjectItemCaseSensitive(te, "xxh64");
        const cJSON *to = cJSON_GetObjectItemCaseSensitive(te, "origin");
        if (!cJSON_IsString(tn) || !cJSON_IsString(tx) || !cJSON_IsString(to) || strcmp(to->valuestring, "copy") != 0)
            continue;
        const mp_tensor *t = copied_from(src, manifest, tn->valuestring);
        uint64_t h = 0;
        char hex[17];
        if (!t) {
            rc = mp_vfind(r, MP_VS_FAIL, "integrity", "tensor '%s': recorded as copied from the source, which has no "
                          "such tensor", tn->valuestring);
        } else if ((rc = tensor_xxh64(src, t, buf, BLOCK, &h, err)) == MP_OK) {
            mp_hex64(h, hex);
            /* On a mismatch, the output's own bytes say which of the two is wrong. */
            const mp_tensor *o = strcmp(hex, tx->valuestring) != 0 ? mp_st_find(out, tn->valuestring) : NULL;
            uint64_t oh = 0;
            if (o) rc = tensor_xxh64(out, o, buf, BLOCK, &oh, err);
            if (rc == MP_OK && o && oh == h)
                rc = mp_vfind(r, MP_VS_FAIL, "integrity", "tensor '%s': the manifest's xxh64 %.20s is wrong: the "
                              "tensor holds the source's bytes (xxh64 %s)", tn->valuestring, tx->valuestring, hex);
            else if (rc == MP_OK && strcmp(hex, tx->valuestring) != 0)
                rc = mp_vfind(r, MP_VS_FAIL, "integrity", "tensor '%s': xxh64 %.20s in the manifest, but the source's "
                              "'%s' hashes to %s: the output does not hold the source's bytes", tn->valuestring,
                              tx->valuestring, t->name, hex);
        }
        if (rc != MP_OK) break;
    }
    free(buf);
    return rc;
}
