/*
 * integrity.c - recompute every hash of modelprep.json, reading each file once.
 *
 * A file is mapped 64 MiB at a time; per window, one thread runs xxh3-128 over it while the
 * other runs xxh64 over the tensors it holds, so the two hashes cost about the time of the
 * slower one, and no byte is copied. A flipped byte shows as a tensor whose xxh64 differs (named), or, in a
 * header or padding, as a file whose xxh3-128 differs while every tensor matches.
 */
#define _DEFAULT_SOURCE /* MAP_POPULATE */
#include "check.h"
#include "../formats/formats_internal.h"

#include <xxhash.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define WINDOW (64u << 20) /* a multiple of the page size */

typedef struct span {
    uint64_t begin, end;         /* byte range in the file */
    XXH64_state_t *st;
    const char *name;
    const char *want;            /* the manifest's hex, or NULL when it does not list the tensor */
} span;

static int by_begin(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static const char *manifest_xxh64(const cJSON *tensors, const char *name)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, tensors) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(t, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0) {
            const cJSON *h = cJSON_GetObjectItemCaseSensitive(t, "xxh64");
            return cJSON_IsString(h) ? h->valuestring : NULL;
        }
    }
    return NULL;
}

/* Hashes one file; spans are its tensors, sorted by offset. The file is mapped a window at a
 * time (no copy out of the page cache); xxh3-128 of the window runs on one thread while the
 * tensors' xxh64 run on the other, and the window is unmapped before the next. */
static mp_errcode hash_file(const mp_file *f, span *sp, size_t n_sp, uint8_t canon[16], mp_err *err)
{
    XXH3_state_t *s3 = XXH3_createState();
    if (!s3) return mp_errf(err, MP_E_NOMEM, "out of memory");
    XXH3_128bits_reset(s3);
    for (size_t i = 0; i < n_sp; i++) XXH64_reset(sp[i].st, 0);
    mp_errcode rc = MP_OK;
    size_t first = 0;
    for (uint64_t at = 0; at < f->size && rc == MP_OK; at += WINDOW) {
        size_t len = (size_t)(f->size - at < WINDOW ? f->size - at : WINDOW);
        const uint8_t *buf = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, f->fd, (off_t)at);
        if (buf == MAP_FAILED) {
            rc = mp_errf(err, MP_E_IO, "cannot map %zu bytes at offset %llu: %s", len, (unsigned long long)at,
                         strerror(errno));
            break;
        }
        uint64_t end = at + len;
#pragma omp parallel sections num_threads(2)
        {
#pragma omp section
            XXH3_128bits_update(s3, buf, len);
#pragma omp section
            for (size_t i = first; i < n_sp && sp[i].begin < end; i++) {
                uint64_t b = sp[i].begin > at ? sp[i].begin : at, e = sp[i].end < end ? sp[i].end : end;
                if (b < e) XXH64_update(sp[i].st, buf + (b - at), (size_t)(e - b));
            }
        }
        munmap((void *)buf, len);
        while (first < n_sp && sp[first].end <= end) first++;
    }
    if (rc == MP_OK) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(s3));
        memcpy(canon, c.digest, 16);
    }
    XXH3_freeState(s3);
    return rc;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

mp_errcode mp_check_integrity(const mp_st_model *m, const cJSON *manifest, mp_verify_report *r, mp_err *err)
{
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(manifest, "files");
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(manifest, "tensors");
    if (!cJSON_IsArray(files) || !cJSON_IsArray(tensors))
        return mp_errf_at(err, MP_E_INPUT, "modelprep.json", NULL, -1, "'files' and 'tensors' must be arrays");
    size_t nt = mp_st_n_tensors(m);
    span *sp = calloc(nt ? nt : 1, sizeof *sp);
    if (!sp) {
        return mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    double t0 = now();
    mp_errcode rc = MP_OK;
    const cJSON *fe;
    cJSON_ArrayForEach(fe, files) {
        const cJSON *jn = cJSON_GetObjectItemCaseSensitive(fe, "name");
        const cJSON *jh = cJSON_GetObjectItemCaseSensitive(fe, "xxh3_128");
        uint64_t want_size;
        if (!cJSON_IsString(jn) || !cJSON_IsString(jh) ||
            !mp_json_get_u64(cJSON_GetObjectItemCaseSensitive(fe, "size"), &want_size)) {
            rc = mp_errf_at(err, MP_E_INPUT, "modelprep.json", NULL, -1,
                            "a 'files' entry needs a string name, an integer size and a string xxh3_128");
            break;
        }
        const char *name = jn->valuestring;
        if (!mp_name_is_contained(name)) {
            rc = mp_errf_at(err, MP_E_INPUT, "modelprep.json", NULL, -1,
                            "file name '%.200s' would leave the checkpoint", name);
            break;
        }
        char *path = mp_path_join(mp_st_dir(m), name);
        if (!path) {
            rc = mp_errf(err, MP_E_NOMEM, "out of memory");
            break;
        }
        mp_file *f = NULL;
        mp_err ferr = MP_ERR_INIT;
        if (!mp_path_within(mp_st_dir(m), path, NULL) || mp_file_open(&f, path, &ferr) != MP_OK) {
            rc = mp_vfind(r, MP_VS_FAIL, "integrity", "%s: missing or unreadable%s%s", name,
                          ferr.code ? ": " : "", ferr.code ? ferr.msg : "");
            free(path);
            if (rc != MP_OK) break;
            continue;
        }
        free(path);
        /* The tensors this file holds, when it is one of the checkpoint's safetensors files. */
        size_t n_sp = 0;
        for (size_t fi = 0; fi < mp_st_n_files(m); fi++) {
            if (strcmp(mp_st_file_name(m, fi), name) != 0) continue;
            for (size_t i = 0; i < nt; i++) {
                const mp_tensor *t = mp_st_tensor(m, i);
                if (t->file != fi) continue;
                sp[n_sp] = (span){t->offset, t->offset + t->n_bytes, XXH64_createState(), t->name,
                                  manifest_xxh64(tensors, t->name)};
                if (!sp[n_sp++].st) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
            }
        }
        qsort(sp, n_sp, sizeof *sp, by_begin);
        uint8_t canon[16];
        if (rc == MP_OK && f->size != want_size)
            rc = mp_vfind(r, MP_VS_FAIL, "integrity", "%s: %llu bytes, the manifest says %llu", name,
                          (unsigned long long)f->size, (unsigned long long)want_size);
        else if (rc == MP_OK && (rc = hash_file(f, sp, n_sp, canon, err)) == MP_OK) {
            r->files_hashed++;
            r->bytes_hashed += f->size;
            size_t bad = 0;
            for (size_t i = 0; i < n_sp && rc == MP_OK; i++) {
                char hex[17];
                mp_hex64(XXH64_digest(sp[i].st), hex);
                if (!sp[i].want)
                    rc = mp_vfind(r, MP_VS_FAIL, "integrity", "%s: tensor '%s' is not in the manifest", name, sp[i].name);
                else if (strcmp(hex, sp[i].want) != 0) {
                    bad++;
                    rc = mp_vfind(r, MP_VS_FAIL, "integrity", "%s: tensor '%s': xxh64 %s, the manifest says %.20s",
                                  name, sp[i].name, hex, sp[i].want);
                }
            }
            char hex[33];
            mp_hex128(canon, hex);
            if (rc == MP_OK && strcmp(hex, jh->valuestring) != 0 && bad == 0)
                rc = mp_vfind(r, MP_VS_FAIL, "integrity", "%s: xxh3-128 %s, the manifest says %.40s (%s)", name, hex,
                              jh->valuestring, n_sp ? "the header or padding changed" : "the file changed");
        }
        for (size_t i = 0; i < n_sp; i++) XXH64_freeState(sp[i].st);
        mp_file_close(f);
        if (rc != MP_OK) break;
    }
    r->hash_seconds = now() - t0;
    free(sp);
    return rc;
}
