/*
 * safetensors_index.c - a safetensors checkpoint as a whole: one file, or a directory of shards
 * named by model.safetensors.index.json, or a lone model.safetensors
 * (doc/formats/safetensors.md §7).
 *
 * Shard names are taken from the index's weight_map, never rebuilt from a count (real repos
 * deviate from the model-0000i-of-0000n pattern), and each must stay inside the directory.
 */
#define _GNU_SOURCE /* madvise */
#include "formats_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define INDEX_NAME "model.safetensors.index.json"
#define ZST_INDEX_NAME "model.safetensors.zst.index.json"
#define LONE_NAME "model.safetensors"
#define INDEX_MAX_BYTES (256u << 20)

struct mp_st_model {
    char *dir;
    int dir_given;         /* opened as a directory: every file read must stay inside it */
    int sharded;
    const char *index_name;   /* INDEX_NAME or ZST_INDEX_NAME when sharded */
    st_shard *files;
    size_t n_files;
    mp_tensor **tensors;   /* natural name order; point into files[].tensors */
    size_t n_tensors;
};

/* Natural order, with strcmp breaking ties ("a01" vs "a1"), so the order is total. */
static int tensor_cmp(const mp_tensor *a, const mp_tensor *b)
{
    int c = mp_natcmp(a->name, b->name);
    return c ? c : strcmp(a->name, b->name);
}

static int tensor_ptr_cmp(const void *pa, const void *pb)
{
    return tensor_cmp(*(mp_tensor *const *)pa, *(mp_tensor *const *)pb);
}

static int str_ptr_natcmp(const void *pa, const void *pb)
{
    const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
    int c = mp_natcmp(a, b);
    return c ? c : strcmp(a, b);
}

static int str_ptr_cmp(const void *pa, const void *pb)
{
    return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

static char *dirname_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return mp_strdup(".");
    if (slash == path) return mp_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

static mp_errcode add_file(mp_st_model *m, const char *rel, mp_err *err)
{
    char *full = mp_path_join(m->dir, rel);
    char *name = mp_strdup(rel);
    mp_errcode rc = MP_OK;
    if (!full || !name) {
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        goto fail;
    }
    if (m->dir_given) {
        char *real = NULL;
        int inside = mp_path_within(m->dir, full, &real);
        if (!inside && real) {
            rc = mp_errf_at(err, MP_E_INPUT, full, NULL, -1,
                            "resolves to '%.300s', outside the checkpoint directory", real);
            free(real);
            goto fail;
        }
        free(real);
    }
    st_shard *sf = &m->files[m->n_files];
    memset(sf, 0, sizeof *sf);
    rc = mp_file_open(&sf->f, full, err);
    if (rc != MP_OK) goto fail;
    sf->name = name;
    m->n_files++;
    free(full);
    return mp_st_file_parse(sf, (uint32_t)(m->n_files - 1), err);
fail:
    free(full);
    free(name);
    return rc;
}

/* Parses the index into `names` (tensor) and `shards` (file) arrays of n entries, the strings
 * pointing into the returned cJSON tree. */
static mp_errcode parse_index(const char *path, cJSON **root_out, const char ***names,
                              const char ***shards, size_t *n, mp_err *err)
{
    *root_out = NULL;
    *names = *shards = NULL;
    *n = 0;
    cJSON *root = NULL;
    MP_FORWARD(mp_json_load_file(path, INDEX_MAX_BYTES, "index", &root, err));
    *root_out = root;
    for (const cJSON *a = root->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (strcmp(a->string, b->string) == 0)
                return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "key '%.64s' appears twice",
                                  a->string);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm))
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "index has no 'weight_map' object");
    size_t cnt = (size_t)cJSON_GetArraySize(wm);
    *names = calloc(cnt + 1, sizeof **names);
    *shards = calloc(cnt + 1, sizeof **shards);
    if (!*names || !*shards) return mp_errf(err, MP_E_NOMEM, "out of memory");
    for (const cJSON *c = wm->child; c; c = c->next) {
        if (!cJSON_IsString(c))
            return mp_errf_at(err, MP_E_INPUT, path, c->string, -1,
                              "weight_map value is not a string");
        if (!mp_name_is_contained(c->valuestring))
            return mp_errf_at(err, MP_E_INPUT, path, c->string, -1,
                              "shard name '%.200s' leaves the checkpoint directory",
                              c->valuestring);
        (*names)[*n] = c->string;
        (*shards)[*n] = c->valuestring;
        (*n)++;
    }
    /* Duplicate keys: cJSON keeps both; serde would keep one and lose the other silently. */
    const char **sorted = malloc((*n + 1) * sizeof *sorted);
    if (!sorted) return mp_errf(err, MP_E_NOMEM, "out of memory");
    memcpy(sorted, *names, *n * sizeof *sorted);
    qsort(sorted, *n, sizeof *sorted, str_ptr_cmp);
    for (size_t i = 1; i < *n; i++) {
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            mp_errf_at(err, MP_E_INPUT, path, sorted[i], -1, "tensor listed twice in weight_map");
            free(sorted);
            return MP_E_INPUT;
        }
    }
    free(sorted);
    return MP_OK;
}

/* Gathers every file's tensors into one list in natural order; a name defined in two files is
 * MP_E_INPUT. */
static mp_errcode build_tensor_list(mp_st_model *m, mp_err *err)
{
    size_t total = 0;
    for (size_t i = 0; i < m->n_files; i++) total += m->files[i].n_tensors;
    m->tensors = malloc((total ? total : 1) * sizeof *m->tensors);
    if (!m->tensors) return mp_errf(err, MP_E_NOMEM, "out of memory");
    for (size_t i = 0; i < m->n_files; i++)
        for (size_t j = 0; j < m->files[i].n_tensors; j++)
            m->tensors[m->n_tensors++] = &m->files[i].tensors[j];
    qsort(m->tensors, m->n_tensors, sizeof *m->tensors, tensor_ptr_cmp);
    for (size_t i = 1; i < m->n_tensors; i++) {
        const mp_tensor *a = m->tensors[i - 1], *b = m->tensors[i];
        if (strcmp(a->name, b->name) == 0)
            return mp_errf_at(err, MP_E_INPUT, m->files[b->file].f->path, b->name, -1,
                              "tensor also defined in '%.200s'", m->files[a->file].name);
    }
    return MP_OK;
}

static mp_errcode open_sharded(mp_st_model *m, const char *index_path, mp_err *err)
{
    cJSON *root = NULL;
    const char **names = NULL, **shards = NULL, **distinct = NULL;
    size_t n = 0, nd = 0;
    mp_errcode rc = parse_index(index_path, &root, &names, &shards, &n, err);
    if (rc != MP_OK) goto cleanup;

    distinct = malloc((n + 1) * sizeof *distinct);
    if (!distinct) {
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        goto cleanup;
    }
    memcpy(distinct, shards, n * sizeof *distinct);
    qsort(distinct, n, sizeof *distinct, str_ptr_natcmp);
    for (size_t i = 0; i < n; i++)
        if (nd == 0 || strcmp(distinct[nd - 1], distinct[i]) != 0) distinct[nd++] = distinct[i];

    m->files = calloc(nd ? nd : 1, sizeof *m->files);
    if (!m->files) {
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < nd; i++) {
        char *full = mp_path_join(m->dir, distinct[i]);
        int there = full && mp_exists(full);
        free(full);
        if (!there) {
            rc = mp_errf_at(err, MP_E_INPUT, index_path, NULL, -1,
                            "weight_map names shard '%.200s', which is missing", distinct[i]);
            goto cleanup;
        }
        rc = add_file(m, distinct[i], err);
        if (rc != MP_OK) goto cleanup;
    }
    m->sharded = 1;
    rc = build_tensor_list(m, err);
    if (rc != MP_OK) goto cleanup;
    for (size_t i = 0; i < n; i++) {
        const mp_tensor *t = mp_st_find(m, names[i]);
        if (!t) {
            rc = mp_errf_at(err, MP_E_INPUT, index_path, names[i], -1,
                            "weight_map puts it in '%.200s', which has no such tensor", shards[i]);
            goto cleanup;
        }
        if (strcmp(m->files[t->file].name, shards[i]) != 0) {
            rc = mp_errf_at(err, MP_E_INPUT, index_path, names[i], -1,
                            "weight_map puts it in '%.200s' but it is in '%.200s'", shards[i],
                            m->files[t->file].name);
            goto cleanup;
        }
    }
cleanup:
    free(distinct);
    free(names);
    free(shards);
    cJSON_Delete(root);
    return rc;
}

static mp_errcode open_single(mp_st_model *m, const char *rel, mp_err *err)
{
    m->files = calloc(1, sizeof *m->files);
    if (!m->files) return mp_errf(err, MP_E_NOMEM, "out of memory");
    MP_FORWARD(add_file(m, rel, err));
    return build_tensor_list(m, err);
}

mp_errcode mp_st_open(mp_st_model **out, const char *path, mp_err *err)
{
    *out = NULL;
    mp_st_model *m = calloc(1, sizeof *m);
    if (!m) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc;
    char *index = NULL, *lone = NULL, *zindex = NULL;
    if (mp_is_dir(path)) {
        m->dir = mp_strdup(path);
        m->dir_given = 1;
        index = mp_path_join(path, INDEX_NAME);
        lone = mp_path_join(path, LONE_NAME);
        zindex = mp_path_join(path, ZST_INDEX_NAME);
        if (!m->dir || !index || !lone || !zindex) {
            rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        } else if (mp_exists(index)) {
            m->index_name = INDEX_NAME;
            rc = open_sharded(m, index, err);
        } else if (mp_exists(lone)) {
            rc = open_single(m, LONE_NAME, err);
        } else if (mp_exists(zindex)) {
            m->index_name = ZST_INDEX_NAME;
            rc = open_sharded(m, zindex, err);
        } else {
            rc = mp_errf_at(err, MP_E_INPUT, path, NULL, -1,
                            "no " INDEX_NAME " or " LONE_NAME " in directory (nor "
                            ZST_INDEX_NAME ")");
        }
    } else if (!mp_exists(path)) {
        rc = mp_errf_at(err, MP_E_IO, path, NULL, -1, "no such file or directory");
    } else {
        m->dir = dirname_of(path);
        const char *slash = strrchr(path, '/');
        rc = m->dir ? open_single(m, slash ? slash + 1 : path, err)
                    : mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    free(index);
    free(lone);
    free(zindex);
    if (rc != MP_OK) {
        mp_st_close(m);
        return rc;
    }
    *out = m;
    return MP_OK;
}

mp_errcode mp_st_open_gguf_view(mp_st_model **out, const mp_gguf *g, mp_err *err)
{
    *out = NULL;
    mp_st_model *m = calloc(1, sizeof *m);
    if (!m || !(m->dir = mp_strdup(mp_gguf_dir(g))) ||
        !(m->files = calloc(mp_gguf_n_files(g) + 1, sizeof *m->files))) {
        mp_st_close(m);
        return mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    m->dir_given = 1;
    mp_errcode rc = MP_OK;
    for (size_t i = 0; i < mp_gguf_n_files(g) && rc == MP_OK; i++) {
        st_shard *sf = &m->files[m->n_files++];
        char *path = mp_path_join(mp_gguf_dir(g), mp_gguf_file_name(g, i));
        sf->name = mp_strdup(mp_gguf_file_name(g, i));
        sf->tensors = calloc(mp_gguf_n_tensors(g) + 1, sizeof *sf->tensors);
        rc = path && sf->name && sf->tensors ? mp_file_open(&sf->f, path, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
        free(path);
        if (rc == MP_OK) sf->size = sf->f->size;
    }
    for (size_t i = 0; i < mp_gguf_n_tensors(g) && rc == MP_OK; i++) {
        const mp_gguf_tensor *gt = mp_gguf_tensor_at(g, i);
        uint32_t block = mp_gguf_type_block(gt->type), bsize = mp_gguf_type_size(gt->type);
        st_shard *sf = &m->files[gt->file];
        mp_tensor *t = &sf->tensors[sf->n_tensors];
        uint64_t row = block ? gt->ne[0] / block * bsize : 0;
        if (!block || !row || gt->n_bytes % row) {
            rc = mp_errf_at(err, MP_E_UNSUPPORTED, sf->name, gt->name, -1, "type %s has no block layout to copy",
                            mp_gguf_type_name(gt->type));
            break;
        }
        *t = (mp_tensor){mp_strdup(gt->name), MP_DTYPE_U8, 2, {gt->n_bytes / row, row}, gt->n_bytes, gt->n_bytes,
                         gt->rel_offset, gt->offset, gt->file};
        if (!t->name) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        sf->n_tensors++;
    }
    if (rc == MP_OK) rc = build_tensor_list(m, err);
    if (rc != MP_OK) {
        mp_st_close(m);
        return rc;
    }
    *out = m;
    return MP_OK;
}

void mp_st_close(mp_st_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n_files; i++) mp_st_file_release(&m->files[i]);
    free(m->files);
    free(m->tensors);
    free(m->dir);
    free(m);
}

size_t mp_st_n_tensors(const mp_st_model *m) { return m->n_tensors; }

const mp_tensor *mp_st_tensor(const mp_st_model *m, size_t i)
{
    assert(i < m->n_tensors);
    return m->tensors[i];
}

size_t mp_st_index_of(const mp_st_model *m, const char *name)
{
    mp_tensor key = {0};
    key.name = (char *)name;
    size_t lo = 0, hi = m->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = tensor_cmp(m->tensors[mid], &key);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return SIZE_MAX;
}

const mp_tensor *mp_st_find(const mp_st_model *m, const char *name)
{
    size_t i = mp_st_index_of(m, name);
    return i == SIZE_MAX ? NULL : m->tensors[i];
}

size_t mp_st_n_files(const mp_st_model *m) { return m->n_files; }
const char *mp_st_file_name(const mp_st_model *m, size_t i) { return m->files[i].name; }
const mp_file *mp_st_file(const mp_st_model *m, size_t i) { return m->files[i].f; }
uint64_t mp_st_header_len(const mp_st_model *m, size_t i) { return m->files[i].header_len; }
size_t mp_st_file_n_meta(const mp_st_model *m, size_t i) { return m->files[i].n_meta; }

void mp_st_file_meta(const mp_st_model *m, size_t i, size_t j, const char **key,
                     const char **value)
{
    assert(j < m->files[i].n_meta);
    *key = m->files[i].meta[2 * j];
    *value = m->files[i].meta[2 * j + 1];
}

const char *mp_st_dir(const mp_st_model *m) { return m->dir; }
int mp_st_is_sharded(const mp_st_model *m) { return m->sharded; }
const char *mp_st_index_name(const mp_st_model *m) { return m->sharded ? m->index_name : NULL; }

mp_compress mp_st_file_compression(const mp_st_model *m, size_t i)
{
    return m->files[i].zst ? MP_COMPRESS_ZSTD : MP_COMPRESS_NONE;
}

uint64_t mp_st_file_raw_size(const mp_st_model *m, size_t i) { return m->files[i].size; }

mp_errcode mp_st_file_load(const mp_st_model *m, size_t i, mp_err *err)
{
    return m->files[i].zst ? mp_zst_src_load(m->files[i].zst, m->files[i].f, err) : MP_OK;
}

void mp_st_file_unload(const mp_st_model *m, size_t i)
{
    mp_zst_src_unload(m->files[i].zst);
}

mp_errcode mp_st_file_read_raw(const mp_st_model *m, size_t i, uint64_t at, void *buf,
                               size_t len, mp_err *err)
{
    assert(at <= m->files[i].size && len <= m->files[i].size - at);
    return mp_st_shard_read(&m->files[i], at, buf, len, err);
}

size_t mp_st_file_n_tensors(const mp_st_model *m, size_t i) { return m->files[i].n_tensors; }

const mp_tensor *mp_st_file_tensor(const mp_st_model *m, size_t i, size_t j)
{
    assert(j < m->files[i].n_tensors);
    return &m->files[i].tensors[j];
}

mp_errcode mp_st_file_digest(const mp_st_model *m, size_t i, uint64_t *tensor_xxh64,
                             uint8_t raw_xxh128[16], void *buf, size_t cap, mp_err *err)
{
    assert(cap > 0);
    const st_shard *sf = &m->files[i];
    XXH3_state_t *whole = XXH3_createState();
    XXH64_state_t *part = XXH64_createState();
    mp_errcode rc = whole && part ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) {
        XXH3_128bits_reset(whole);
        XXH64_reset(part, 0);
    }
    /* The tensors tile the data after the header (safetensors.c), so walking them in order
     * after the header covers every byte once. */
    size_t j = 0;
    uint64_t at = 0, data0 = 8 + sf->header_len;
    while (rc == MP_OK && at < sf->size) {
        size_t len = sf->size - at < cap ? (size_t)(sf->size - at) : cap;
        if (at < data0 && len > data0 - at) len = (size_t)(data0 - at);
        const mp_tensor *t = at >= data0 && j < sf->n_tensors ? &sf->tensors[j] : NULL;
        if (t && len > t->offset + t->n_bytes - at) len = (size_t)(t->offset + t->n_bytes - at);
        rc = mp_st_shard_read(sf, at, buf, len, err);
        if (rc != MP_OK) {
            if (t && !err->tensor[0]) {
                char why[MP_ERR_MSG_MAX];
                memcpy(why, err->msg, sizeof why);
                mp_errf_at(err, rc, sf->f->path, t->name, err->offset, "%s", why);
            }
            break;
        }
        XXH3_128bits_update(whole, buf, len);
        if (t) XXH64_update(part, buf, len);
        at += len;
        /* Close every tensor that ends here, empty ones included. */
        while (at >= data0 && j < sf->n_tensors && sf->tensors[j].offset + sf->tensors[j].n_bytes <= at) {
            if (tensor_xxh64) tensor_xxh64[j] = XXH64_digest(part);
            XXH64_reset(part, 0);
            j++;
        }
    }
    if (rc == MP_OK && raw_xxh128) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(whole));
        memcpy(raw_xxh128, c.digest, 16);
    }
    XXH3_freeState(whole);
    XXH64_freeState(part);
    return rc;
}

mp_errcode mp_st_read(const mp_st_model *m, const mp_tensor *t, uint64_t at, void *buf,
                      size_t len, mp_err *err)
{
    assert(at <= t->n_bytes && len <= t->n_bytes - at);
    const mp_file *f = m->files[t->file].f;
    mp_errcode rc = mp_st_shard_read(&m->files[t->file], t->offset + at, buf, len, err);
    if (rc != MP_OK) {
        char why[MP_ERR_MSG_MAX];
        memcpy(why, err->msg, sizeof why);
        mp_errf_at(err, rc, f->path, t->name, err->offset, "%s", why);
    }
    return rc;
}

int mp_st_map(const mp_st_model *m, const mp_tensor *t, uint64_t at, size_t len, mp_st_span *s)
{
    assert(at <= t->n_bytes && len <= t->n_bytes - at);
    const st_shard *sf = &m->files[t->file];
    memset(s, 0, sizeof *s);
    if (sf->zst || len == 0) return 0;
    uint64_t off = t->offset + at, page = (uint64_t)sysconf(_SC_PAGESIZE), base = off / page * page;
    size_t map_len = (size_t)(off - base) + len;
    /* A file cut short since it was opened would fault (SIGBUS) on the missing pages: such a
     * range goes through mp_st_read(), which reports it. */
    struct stat st;
    if (fstat(sf->f->fd, &st) != 0 || (uint64_t)st.st_size < off + len) return 0;
    void *p = mp_map_file(sf->f->fd, base, map_len, 1, sf->f->path);
    if (!p) return 0;
    madvise(p, map_len, MADV_SEQUENTIAL);
    *s = (mp_st_span){(const uint8_t *)p + (off - base), sf->f->fd, off, sf->f->path, p, map_len};
    return 1;
}

void mp_st_unmap(mp_st_span *s)
{
    if (s->map) mp_unmap(s->map, s->map_len);
    memset(s, 0, sizeof *s);
}

mp_errcode mp_st_read_block(const mp_st_model *m, const mp_tensor *t, uint64_t r0, uint64_t r1,
                            uint64_t c0, uint64_t c1, void *buf, mp_err *err)
{
    assert(t->n_dims == 2 && mp_dtype_bits(t->dtype) % 8 == 0);
    assert(r0 <= r1 && r1 <= t->shape[0] && c0 <= c1 && c1 <= t->shape[1]);
    uint64_t es = mp_dtype_bits(t->dtype) / 8, row = t->shape[1] * es, span = (c1 - c0) * es;
    uint8_t *dst = buf;
    if (c0 == 0 && c1 == t->shape[1])
        return mp_st_read(m, t, r0 * row, dst, (size_t)((r1 - r0) * row), err);
    for (uint64_t r = r0; r < r1; r++, dst += span)
        MP_FORWARD(mp_st_read(m, t, r * row + c0 * es, dst, (size_t)span, err));
    return MP_OK;
}

const uint8_t *mp_st_file_map(const mp_st_model *m, size_t i)
{
    st_shard *sf = &m->files[i];
    void *p = __atomic_load_n(&sf->map, __ATOMIC_ACQUIRE);
    if (p || sf->zst || sf->size == 0) return p;
    struct stat st;
    if (fstat(sf->f->fd, &st) != 0 || (uint64_t)st.st_size < sf->size || sf->size > SIZE_MAX) return NULL;
    p = mp_map_file(sf->f->fd, 0, (size_t)sf->size, 0, sf->f->path);
    if (!p) return NULL;
    void *none = NULL; /* two threads may map at once: the first to publish wins */
    if (!__atomic_compare_exchange_n(&sf->map, &none, p, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        mp_unmap(p, (size_t)sf->size);
        return none;
    }
    sf->map_len = (size_t)sf->size;
    return p;
}

mp_errcode mp_st_gather_block(const mp_st_model *m, const mp_tensor *t, uint64_t r0, uint64_t r1,
                              uint64_t c0, uint64_t c1, void *buf, mp_err *err)
{
    assert(t->n_dims == 2 && mp_dtype_bits(t->dtype) % 8 == 0);
    assert(r0 <= r1 && r1 <= t->shape[0] && c0 <= c1 && c1 <= t->shape[1]);
    const uint8_t *map = r1 - r0 > 1 ? mp_st_file_map(m, t->file) : NULL;
    if (!map) return mp_st_read_block(m, t, r0, r1, c0, c1, buf, err);
    uint64_t es = mp_dtype_bits(t->dtype) / 8, row = t->shape[1] * es, span = (c1 - c0) * es;
    const uint8_t *src = map + t->offset + c0 * es;
    uint8_t *dst = buf;
    if (span == 4) /* a column of words (a sampled row of a [K/8, N] tensor): no call per word */
        for (uint64_t r = r0; r < r1; r++, dst += 4) memcpy(dst, src + r * row, 4);
    else
        for (uint64_t r = r0; r < r1; r++, dst += span) memcpy(dst, src + r * row, (size_t)span);
    return MP_OK;
}
