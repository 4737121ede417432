/*
 * safetensors.c - one safetensors file: header parsing and validation.
 *
 * Byte layout (doc/formats/safetensors.md §1):
 *
 *   offset 0      u64 LE  N, the header length
 *   offset 8      N bytes of UTF-8 JSON:
 *                   {"__metadata__": {str: str},
 *                    NAME: {"dtype": D, "shape": [d0, ...], "data_offsets": [begin, end]}, ...}
 *                 optionally padded with spaces
 *   offset 8 + N  the data buffer; tensor NAME lives at [8 + N + begin, 8 + N + end)
 *
 * The tensors must tile the data buffer exactly: contiguous from 0, no gaps or overlaps, each
 * end - begin equal to the size its shape and dtype imply, and the file ending at the last end.
 * Checks run in the reference crate's order, so a file it rejects is rejected here for the same
 * reason (§1.6).
 */
#include "formats_internal.h"

#include <stdlib.h>
#include <string.h>

#define JSON_SAFE_INT 9007199254740992.0 /* 2^53 */

int mp_json_get_u64(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item)) return 0;
    double d = item->valuedouble;
    if (!(d >= 0.0 && d <= JSON_SAFE_INT)) return 0;
    uint64_t v = (uint64_t)d;
    if ((double)v != d) return 0;
    *out = v;
    return 1;
}

int mp_json_get_i64(const cJSON *item, int64_t lo, int64_t hi, int64_t *out)
{
    if (!cJSON_IsNumber(item)) return 0;
    double d = item->valuedouble;
    if (!(d >= (double)lo && d <= (double)hi)) return 0; /* also refuses NaN */
    int64_t v = (int64_t)d;
    if ((double)v != d) return 0;
    *out = v;
    return 1;
}

static const cJSON *unique_field(const cJSON *obj, const char *key, int *dup)
{
    const cJSON *found = NULL;
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (c->string && strcmp(c->string, key) == 0) {
            if (found) *dup = 1;
            else found = c;
        }
    }
    return found;
}

static mp_errcode parse_tensor(const st_shard *sf, const cJSON *e, mp_tensor *t, mp_err *err)
{
    const char *path = sf->f->path;
    const char *name = e->string;
#define BAD(...) mp_errf_at(err, MP_E_INPUT, path, name, -1, __VA_ARGS__)
    if (!cJSON_IsObject(e)) return BAD("header entry is not an object");
    int dup = 0;
    const cJSON *dt = unique_field(e, "dtype", &dup);
    const cJSON *sh = unique_field(e, "shape", &dup);
    const cJSON *off = unique_field(e, "data_offsets", &dup);
    if (dup) return BAD("header entry repeats a field");
    if (!dt) return BAD("missing 'dtype'");
    if (!sh) return BAD("missing 'shape'");
    if (!off) return BAD("missing 'data_offsets'");
    if (!cJSON_IsString(dt)) return BAD("'dtype' is not a string");
    if (!mp_dtype_parse(dt->valuestring, &t->dtype))
        return BAD("unknown dtype '%.32s'", dt->valuestring);
    if (!cJSON_IsArray(sh)) return BAD("'shape' is not an array");
    int nd = cJSON_GetArraySize(sh);
    if (nd > MP_MAX_DIMS)
        return mp_errf_at(err, MP_E_UNSUPPORTED, path, name, -1,
                          "%d dimensions exceed the supported %d", nd, MP_MAX_DIMS);
    t->n_dims = (uint32_t)nd;
    uint32_t d = 0;
    uint64_t elems = 1;
    int overflow = 0;
    for (const cJSON *c = sh->child; c; c = c->next, d++) {
        if (!mp_json_get_u64(c, &t->shape[d]))
            return BAD("'shape' must hold non-negative integers");
        if (mp_mul_overflow(elems, t->shape[d], &elems)) overflow = 1;
    }
    uint64_t ob[2];
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 ||
        !mp_json_get_u64(off->child, &ob[0]) || !mp_json_get_u64(off->child->next, &ob[1]))
        return BAD("'data_offsets' must be two non-negative integers");
    t->begin = ob[0];
    /* end is kept in n_bytes until the tiling check; the shape check comes after it (§1.6). */
    t->n_bytes = ob[1];
    /* An overflowing shape is reported after the offsets, as the crate does (§1.6 #9). */
    t->n_elems = overflow ? UINT64_MAX : elems;
    t->name = mp_strdup(name);
    if (!t->name) return mp_errf_at(err, MP_E_NOMEM, path, name, -1, "out of memory");
    return MP_OK;
#undef BAD
}

static int cmp_by_offsets(const void *pa, const void *pb)
{
    const mp_tensor *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->n_bytes != b->n_bytes) return a->n_bytes < b->n_bytes ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int cmp_name_ptr(const void *pa, const void *pb)
{
    const mp_tensor *const *a = pa, *const *b = pb;
    return strcmp((*a)->name, (*b)->name);
}

static mp_errcode check_duplicates(const st_shard *sf, mp_err *err)
{
    if (sf->n_tensors < 2) return MP_OK;
    const mp_tensor **v = malloc(sf->n_tensors * sizeof *v);
    if (!v) return mp_errf_at(err, MP_E_NOMEM, sf->f->path, NULL, -1, "out of memory");
    for (size_t i = 0; i < sf->n_tensors; i++) v[i] = &sf->tensors[i];
    qsort(v, sf->n_tensors, sizeof *v, cmp_name_ptr);
    mp_errcode rc = MP_OK;
    for (size_t i = 1; i < sf->n_tensors; i++) {
        if (strcmp(v[i - 1]->name, v[i]->name) == 0) {
            rc = mp_errf_at(err, MP_E_INPUT, sf->f->path, v[i]->name, -1,
                            "duplicate tensor name in header");
            break;
        }
    }
    free(v);
    return rc;
}

/* Checks 8-12: tiling, overflow, sub-byte alignment, size, coverage. On entry n_bytes holds
 * data_offsets[1]; on success it holds the tensor's byte count. */
static mp_errcode check_tiling(st_shard *sf, uint64_t data_size, mp_err *err)
{
    const char *path = sf->f->path;
    qsort(sf->tensors, sf->n_tensors, sizeof *sf->tensors, cmp_by_offsets);
    uint64_t expect = 0;
    for (size_t i = 0; i < sf->n_tensors; i++) {
        mp_tensor *t = &sf->tensors[i];
        uint64_t b = t->begin, e = t->n_bytes;
        unsigned long long ub = (unsigned long long)b, ue = (unsigned long long)e;
        if (e < b)
            return mp_errf_at(err, MP_E_INPUT, path, t->name, -1,
                              "data_offsets [%llu, %llu) end before they begin", ub, ue);
        if (b > expect)
            return mp_errf_at(err, MP_E_INPUT, path, t->name, -1,
                              "data_offsets [%llu, %llu) leave a gap of %llu bytes after byte %llu",
                              ub, ue, (unsigned long long)(b - expect),
                              (unsigned long long)expect);
        if (b < expect)
            return mp_errf_at(err, MP_E_INPUT, path, t->name, -1,
                              "data_offsets [%llu, %llu) overlap the previous tensor, which ends "
                              "at %llu", ub, ue, (unsigned long long)expect);
        const char *why = NULL;
        uint64_t need = 0;
        if (t->n_elems == UINT64_MAX || mp_dtype_nbytes(t->dtype, t->n_elems, &need, &why)) {
            if (why && strcmp(why, "partial byte") == 0)
                return mp_errf_at(err, MP_E_INPUT, path, t->name, -1,
                                  "%llu elements of %s do not end on a byte boundary",
                                  (unsigned long long)t->n_elems, mp_dtype_name(t->dtype));
            return mp_errf_at(err, MP_E_INPUT, path, t->name, -1,
                              "shape times %s element size overflows", mp_dtype_name(t->dtype));
        }
        if (need != e - b) {
            char shape[160];
            mp_shape_format(t, shape, sizeof shape);
            return mp_errf_at(err, MP_E_INPUT, path, t->name, -1,
                              "shape %s of %s needs %llu bytes but data_offsets [%llu, %llu) "
                              "hold %llu", shape, mp_dtype_name(t->dtype),
                              (unsigned long long)need, ub, ue, (unsigned long long)(e - b));
        }
        if (e > data_size)
            return mp_errf_at(err, MP_E_INPUT, path, t->name, -1,
                              "data_offsets [%llu, %llu) run past end of data (%llu bytes)", ub,
                              ue, (unsigned long long)data_size);
        t->n_bytes = need;
        t->offset = 8 + sf->header_len + b;
        expect = e;
    }
    if (expect != data_size)
        return mp_errf_at(err, MP_E_INPUT, path, NULL, (int64_t)(8 + sf->header_len + expect),
                          "%llu trailing bytes after the last tensor (file is %llu bytes, tensors "
                          "end at %llu)", (unsigned long long)(data_size - expect),
                          (unsigned long long)sf->size,
                          (unsigned long long)(8 + sf->header_len + expect));
    return MP_OK;
}

static mp_errcode parse_metadata(st_shard *sf, const cJSON *md, mp_err *err)
{
    const char *path = sf->f->path;
    if (sf->meta)
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "'__metadata__' appears twice");
    if (cJSON_IsNull(md)) { /* optional in the crate: null means none */
        sf->meta = calloc(1, sizeof *sf->meta);
        return sf->meta ? MP_OK : mp_errf_at(err, MP_E_NOMEM, path, NULL, -1, "out of memory");
    }
    if (!cJSON_IsObject(md))
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "'__metadata__' is not an object");
    size_t n = (size_t)cJSON_GetArraySize(md);
    sf->meta = calloc(2 * n + 1, sizeof *sf->meta);
    if (!sf->meta) return mp_errf_at(err, MP_E_NOMEM, path, NULL, -1, "out of memory");
    for (const cJSON *c = md->child; c; c = c->next) {
        if (!cJSON_IsString(c))
            return mp_errf_at(err, MP_E_INPUT, path, NULL, -1,
                              "'__metadata__' value of '%.64s' is not a string", c->string);
        char *k = mp_strdup(c->string), *v = mp_strdup(c->valuestring);
        sf->meta[2 * sf->n_meta] = k;
        sf->meta[2 * sf->n_meta + 1] = v;
        sf->n_meta++;
        if (!k || !v) return mp_errf_at(err, MP_E_NOMEM, path, NULL, -1, "out of memory");
    }
    return MP_OK;
}

/* ------------------------------------------------------------ the header, one member at a time
 *
 * The header text is checked by mp_json_check first (strict grammar, integers only); then its
 * top-level object is walked member by member and only each member's value is parsed by cJSON,
 * then freed: the JSON tree never holds more than one entry, so memory is the text plus the
 * tensor records (doc/limits.md, "memory"), not a tree of the whole header. */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* Past the end of the (valid) JSON value starting at p. */
static const char *value_end(const char *p, const char *end)
{
    int depth = 0;
    do {
        if (*p == '"') {
            for (p++; p < end && *p != '"'; p++)
                if (*p == '\\') p++;
            p++;
        } else if (*p == '{' || *p == '[') {
            depth++, p++;
        } else if (*p == '}' || *p == ']') {
            depth--, p++;
        } else if (depth > 0) {
            p++;
        } else {
            while (p < end && !strchr(",}] \t\n\r", *p)) p++;
        }
        if (depth > 0) p = skip_ws(p, end);
    } while (depth > 0 && p < end);
    return p;
}

/* One member: its key into e->string (the tensor name, unescaped) and its value. */
static cJSON *parse_member(const char **pp, const char *end)
{
    const char *k = *pp, *kend = value_end(k, end);
    const char *v = skip_ws(kend, end);
    v = skip_ws(v + 1, end); /* ':' */
    const char *vend = value_end(v, end);
    cJSON *key = cJSON_ParseWithLength(k, (size_t)(kend - k));
    cJSON *val = cJSON_ParseWithLength(v, (size_t)(vend - v));
    if (!key || !val || !cJSON_IsString(key)) {
        cJSON_Delete(key);
        cJSON_Delete(val);
        return NULL;
    }
    val->string = key->valuestring; /* freed with val */
    key->valuestring = NULL;
    cJSON_Delete(key);
    *pp = skip_ws(vend, end);
    return val;
}

static size_t count_members(const char *p, const char *end)
{
    size_t n = 0;
    p = skip_ws(p + 1, end);
    while (p < end && *p == '"') {
        n++;
        p = skip_ws(value_end(p, end), end) + 1;
        p = skip_ws(value_end(skip_ws(p, end), end), end);
        if (p < end && *p == ',') p = skip_ws(p + 1, end);
    }
    return n;
}

static mp_errcode parse_members(st_shard *sf, uint32_t file, const char *hdr, size_t n, mp_err *err)
{
    const char *path = sf->f->path, *end = hdr + n, *p = skip_ws(hdr, end);
    if (p == end || *p != '{') return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "header is not a JSON object");
    size_t cap = count_members(p, end);
    sf->tensors = calloc(cap ? cap : 1, sizeof *sf->tensors);
    if (!sf->tensors) return mp_errf_at(err, MP_E_NOMEM, path, NULL, -1, "out of memory");
    p = skip_ws(p + 1, end);
    for (size_t i = 0; i < cap; i++) {
        cJSON *e = parse_member(&p, end);
        if (!e) return mp_errf_at(err, MP_E_NOMEM, path, NULL, 8 + (int64_t)(p - hdr), "out of memory");
        mp_errcode rc;
        if (strcmp(e->string, "__metadata__") == 0) {
            rc = parse_metadata(sf, e, err);
        } else {
            mp_tensor *t = &sf->tensors[sf->n_tensors];
            rc = parse_tensor(sf, e, t, err);
            if (rc == MP_OK) {
                t->file = file;
                sf->n_tensors++;
            }
        }
        cJSON_Delete(e);
        MP_FORWARD(rc);
        if (p < end && *p == ',') p = skip_ws(p + 1, end);
    }
    return MP_OK;
}

mp_errcode mp_st_file_parse(st_shard *sf, uint32_t file, mp_err *err)
{
    const mp_file *f = sf->f;
    const char *path = f->path;
    char *hdr = NULL;
    mp_errcode rc = MP_OK;

    sf->size = f->size;
    if (!sf->zst && mp_zst_is_zstd(f)) MP_FORWARD(mp_zst_src_open(&sf->zst, f, &sf->size, err));
    if (sf->size < 8)
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1,
                          "header too small: file of %llu bytes cannot hold the 8-byte length",
                          (unsigned long long)sf->size);
    uint8_t lenbuf[8];
    MP_FORWARD(mp_st_shard_read(sf, 0, lenbuf, 8, err));
    uint64_t n = mp_read_le64(lenbuf);
    if (n > MP_ST_MAX_HEADER)
        return mp_errf_at(err, MP_E_INPUT, path, NULL, 0,
                          "header too large: length %llu exceeds the limit of %llu bytes",
                          (unsigned long long)n, MP_ST_MAX_HEADER);
    if (8 + n > sf->size)
        return mp_errf_at(err, MP_E_INPUT, path, NULL, 0,
                          "header length %llu runs past end of file (%llu bytes)",
                          (unsigned long long)n, (unsigned long long)sf->size);
    sf->header_len = n;
    hdr = malloc((size_t)n + 1);
    if (!hdr) return mp_errf_at(err, MP_E_NOMEM, path, NULL, -1, "out of memory");
    rc = mp_st_shard_read(sf, 8, hdr, (size_t)n, err);
    if (rc != MP_OK) goto cleanup;
    hdr[n] = '\0';

    if (!mp_utf8_valid(hdr, (size_t)n)) {
        rc = mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "invalid UTF-8 in header");
        goto cleanup;
    }
    size_t bad_at = 0;
    char why[128];
    if (!mp_json_check(hdr, (size_t)n, 1, &bad_at, why, sizeof why)) {
        rc = mp_errf_at(err, MP_E_INPUT, path, NULL, (int64_t)(8 + bad_at),
                        "invalid JSON in header: %s", why);
        goto cleanup;
    }
    rc = parse_members(sf, file, hdr, (size_t)n, err);
    if (rc != MP_OK) goto cleanup;
    rc = check_duplicates(sf, err);
    if (rc != MP_OK) goto cleanup;
    rc = check_tiling(sf, sf->size - 8 - n, err);

cleanup:
    mp_zst_src_idle(sf->zst); /* the tensors may be read much later, or never */
    free(hdr);
    return rc;
}

mp_errcode mp_st_shard_read(const st_shard *sf, uint64_t offset, void *buf, size_t len,
                            mp_err *err)
{
    if (sf->zst) return mp_zst_src_read(sf->zst, sf->f, offset, buf, len, err);
    return mp_file_pread(sf->f, offset, buf, len, err);
}

void mp_st_file_release(st_shard *sf)
{
    if (!sf) return;
    for (size_t i = 0; i < sf->n_tensors; i++) free(sf->tensors[i].name);
    free(sf->tensors);
    for (size_t i = 0; i < 2 * sf->n_meta; i++) free(sf->meta[i]);
    free(sf->meta);
    free(sf->name);
    mp_zst_src_free(sf->zst);
    if (sf->map) mp_unmap(sf->map, sf->map_len);
    mp_file_close(sf->f);
    memset(sf, 0, sizeof *sf);
}
