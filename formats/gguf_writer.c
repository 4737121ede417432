/*
 * gguf_writer.c - GGUF v3 output (doc/formats/gguf.md §1.3, §3).
 *
 * The file is the reader's layout (gguf.c): header, key/values, tensor infos, zeros up to the
 * alignment, then every tensor followed by zeros up to the alignment, the last one included,
 * as both upstream writers do. Offsets are the running sum of padded sizes computed with the
 * alignment actually written: a "general.alignment" key sets it (upstream's C writer keeps 32
 * whatever the key says, and its files then fail to load).
 *
 * mp_gguf_copy() rewrites a model as one file or as a split set that llama.cpp's loader and
 * gguf-split read: "<prefix>-0000i-of-0000N.gguf", split.no (u16, 0-based), split.count (u16)
 * and split.tensors.count (i32) in every split, the other metadata in the first one only.
 */
#define _GNU_SOURCE
#include "formats_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[MP_GGUF_MAX_DIMS];
    uint64_t n_bytes, offset;
} wtensor;

struct mp_gguf_writer {
    int fd;
    char *path;
    mp_buf kv;               /* encoded key/value records */
    uint64_t n_kv;
    char **keys;
    size_t cap_keys;
    uint32_t alignment;
    wtensor *t;
    size_t n_t, cap_t;
    int begun;
    size_t cur;              /* tensor receiving bytes */
    uint64_t cur_done;
    int no_copy_range;       /* copy_file_range() refused once: write() from then on */
};

static const uint8_t zeros[256];

mp_errcode mp_gguf_writer_open(mp_gguf_writer **out, const char *path, mp_err *err)
{
    *out = NULL;
    mp_gguf_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->path = mp_strdup(path))) {
        free(w);
        return mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int e = errno;
        free(w->path);
        free(w);
        return mp_errf_at(err, MP_E_IO, path, NULL, -1, "cannot create: %s", strerror(e));
    }
    w->alignment = MP_GGUF_DEFAULT_ALIGNMENT;
    *out = w;
    return MP_OK;
}

static void put_u32(mp_buf *b, uint32_t v)
{
    uint8_t x[4];
    mp_write_le32(x, v);
    mp_buf_put(b, x, 4);
}

void mp_gguf_put_u64(mp_buf *b, uint64_t v)
{
    uint8_t x[8];
    mp_write_le64(x, v);
    mp_buf_put(b, x, 8);
}

void mp_gguf_put_str(mp_buf *b, const char *s, size_t n)
{
    mp_gguf_put_u64(b, n);
    mp_buf_put(b, s, n);
}

mp_errcode mp_gguf_writer_add_kv(mp_gguf_writer *w, const char *key, mp_gguf_vtype type,
                                 mp_gguf_vtype elem, const void *value, size_t len, mp_err *err)
{
    const char *path = w->path;
    if (w->begun) return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "key '%s' added after the data began", key);
    if (!key[0]) return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "empty key");
    if ((unsigned)type >= MP_GGUF_V_COUNT || (type == MP_GGUF_V_ARR && ((unsigned)elem >= MP_GGUF_V_COUNT || elem == MP_GGUF_V_ARR)))
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "key '%s': invalid value type", key);
    size_t sz = mp_gguf_vtype_size(type);
    if ((sz && len != sz) || (!sz && len < 8))
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "key '%s': %zu value bytes for a %s",
                          key, len, mp_gguf_vtype_name(type));
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0)
            return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "duplicate key '%s'", key);
    if (strcmp(key, "general.alignment") == 0) {
        uint32_t a = type == MP_GGUF_V_U32 ? mp_read_le32(value) : 0;
        if (type != MP_GGUF_V_U32 || a == 0 || (a & (a - 1)) != 0)
            return mp_errf_at(err, MP_E_INPUT, path, NULL, -1,
                              "'general.alignment' must be a u32 power of two");
        w->alignment = a;
    }
    if (w->n_kv == w->cap_keys) {
        size_t cap = w->cap_keys ? 2 * w->cap_keys : 16;
        char **k = realloc(w->keys, cap * sizeof *k);
        if (!k) return mp_errf(err, MP_E_NOMEM, "out of memory");
        w->keys = k;
        w->cap_keys = cap;
    }
    if (!(w->keys[w->n_kv] = mp_strdup(key))) return mp_errf(err, MP_E_NOMEM, "out of memory");
    w->n_kv++;
    mp_gguf_put_str(&w->kv, key, strlen(key));
    put_u32(&w->kv, (uint32_t)type);
    if (type == MP_GGUF_V_ARR) put_u32(&w->kv, (uint32_t)elem);
    mp_buf_put(&w->kv, value, len);
    return w->kv.oom ? mp_errf(err, MP_E_NOMEM, "out of memory") : MP_OK;
}

mp_errcode mp_gguf_writer_add_u32(mp_gguf_writer *w, const char *key, uint32_t v, mp_err *err)
{
    uint8_t x[4];
    mp_write_le32(x, v);
    return mp_gguf_writer_add_kv(w, key, MP_GGUF_V_U32, MP_GGUF_V_U8, x, 4, err);
}

mp_errcode mp_gguf_writer_add_u16(mp_gguf_writer *w, const char *key, uint16_t v, mp_err *err)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return mp_gguf_writer_add_kv(w, key, MP_GGUF_V_U16, MP_GGUF_V_U8, x, 2, err);
}

mp_errcode mp_gguf_writer_add_i32(mp_gguf_writer *w, const char *key, int32_t v, mp_err *err)
{
    uint8_t x[4];
    mp_write_le32(x, (uint32_t)v);
    return mp_gguf_writer_add_kv(w, key, MP_GGUF_V_I32, MP_GGUF_V_U8, x, 4, err);
}

mp_errcode mp_gguf_writer_add_str(mp_gguf_writer *w, const char *key, const char *s, mp_err *err)
{
    mp_buf b = MP_BUF_INIT;
    mp_gguf_put_str(&b, s, strlen(s));
    mp_errcode rc = b.oom ? mp_errf(err, MP_E_NOMEM, "out of memory")
                          : mp_gguf_writer_add_kv(w, key, MP_GGUF_V_STR, MP_GGUF_V_U8, b.data, b.len, err);
    mp_buf_release(&b);
    return rc;
}

mp_errcode mp_gguf_writer_add_tensor(mp_gguf_writer *w, const char *name, uint32_t type,
                                     uint32_t n_dims, const uint64_t *ne, mp_err *err)
{
    const char *path = w->path;
    size_t len = strlen(name);
    if (w->begun) return mp_errf_at(err, MP_E_INPUT, path, name, -1, "tensor added after the data began");
    if (len >= MP_GGUF_MAX_NAME) /* empty is legal, as in gguf.cpp's reader */
        return mp_errf_at(err, MP_E_INPUT, path, name, -1, "tensor name of %zu bytes (%d at most)", len,
                          MP_GGUF_MAX_NAME - 1);
    if (n_dims > MP_GGUF_MAX_DIMS)
        return mp_errf_at(err, MP_E_INPUT, path, name, -1, "n_dims %u exceeds %d", n_dims, MP_GGUF_MAX_DIMS);
    uint32_t blk = mp_gguf_type_block(type);
    if (!blk) return mp_errf_at(err, MP_E_INPUT, path, name, -1, "invalid tensor type id %u", type);
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return mp_errf_at(err, MP_E_INPUT, path, name, -1, "duplicate tensor name");
    wtensor t = {NULL, type, n_dims, {1, 1, 1, 1}, 0, 0};
    uint64_t n = 1;
    int zero = 0, over = 0;
    for (uint32_t d = 0; d < n_dims; d++) {
        t.ne[d] = ne[d];
        if (ne[d] > (uint64_t)INT64_MAX) /* read back as a negative dim */
            return mp_errf_at(err, MP_E_INPUT, path, name, -1, "dimension %u exceeds int64", d);
        if (ne[d] == 0) zero = 1;
        if (mp_mul_overflow(n, ne[d], &n) || n >= (uint64_t)INT64_MAX) over = 1;
    }
    if (over && !zero) /* as the reader: a zero-sized dim makes any other size legal */
        return mp_errf_at(err, MP_E_INPUT, path, name, -1, "element count overflows");
    if (zero) n = 0;
    if (t.ne[0] % blk != 0)
        return mp_errf_at(err, MP_E_INPUT, path, name, -1, "row length %llu is not a multiple of the %s block size %u",
                          (unsigned long long)t.ne[0], mp_gguf_type_name(type), blk);
    if (mp_mul_overflow(n / blk, mp_gguf_type_size(type), &t.n_bytes))
        return mp_errf_at(err, MP_E_INPUT, path, name, -1, "byte size overflows");
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *v = realloc(w->t, cap * sizeof *v);
        if (!v) return mp_errf(err, MP_E_NOMEM, "out of memory");
        w->t = v;
        w->cap_t = cap;
    }
    if (!(t.name = mp_strdup(name))) return mp_errf(err, MP_E_NOMEM, "out of memory");
    w->t[w->n_t++] = t;
    return MP_OK;
}

static uint64_t padded(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

static mp_errcode write_zeros(mp_gguf_writer *w, uint64_t n, mp_err *err)
{
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        MP_FORWARD(mp_write_all(w->fd, zeros, k, w->path, err));
        n -= k;
    }
    return MP_OK;
}

/* Moves past finished (and empty) tensors, padding each. */
static mp_errcode advance(mp_gguf_writer *w, mp_err *err)
{
    while (w->cur < w->n_t && w->cur_done == w->t[w->cur].n_bytes) {
        uint64_t n = w->t[w->cur].n_bytes;
        MP_FORWARD(write_zeros(w, padded(n, w->alignment) - n, err));
        w->cur++;
        w->cur_done = 0;
    }
    return MP_OK;
}

mp_errcode mp_gguf_writer_begin(mp_gguf_writer *w, mp_err *err)
{
    mp_buf h = MP_BUF_INIT;
    mp_buf_put(&h, "GGUF", 4);
    put_u32(&h, 3);
    mp_gguf_put_u64(&h, w->n_t);
    mp_gguf_put_u64(&h, w->n_kv);
    if (w->kv.len) mp_buf_put(&h, w->kv.data, w->kv.len);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        t->offset = off;
        off += padded(t->n_bytes, w->alignment);
        mp_gguf_put_str(&h, t->name, strlen(t->name));
        put_u32(&h, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) mp_gguf_put_u64(&h, t->ne[d]);
        put_u32(&h, t->type);
        mp_gguf_put_u64(&h, t->offset);
    }
    for (uint64_t pad = padded(h.len, w->alignment) - h.len; pad > 0 && !h.oom;) {
        size_t k = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        mp_buf_put(&h, zeros, k);
        pad -= k;
    }
    mp_errcode rc = h.oom ? mp_errf(err, MP_E_NOMEM, "out of memory")
                          : mp_write_all(w->fd, h.data, h.len, w->path, err);
    mp_buf_release(&h);
    w->begun = 1;
    if (rc == MP_OK) rc = advance(w, err);
    return rc;
}

mp_errcode mp_gguf_writer_write(mp_gguf_writer *w, const void *buf, size_t len, mp_err *err)
{
    const uint8_t *p = buf;
    while (len > 0) {
        if (w->cur >= w->n_t)
            return mp_errf_at(err, MP_E_INPUT, w->path, NULL, -1, "%zu bytes beyond the last tensor", len);
        uint64_t room = w->t[w->cur].n_bytes - w->cur_done;
        size_t k = len < room ? len : (size_t)room;
        MP_FORWARD(mp_write_all(w->fd, p, k, w->path, err));
        w->cur_done += k;
        p += k;
        len -= k;
        MP_FORWARD(advance(w, err));
    }
    return MP_OK;
}

/* The kernel copies what it can of src's first len bytes (copy_file_range: no byte through user
 * space); *done says how many. Refused by the file systems (EXDEV, EINVAL, ...): 0 bytes, and
 * write() from then on. */
static mp_errcode copy_range(mp_gguf_writer *w, const mp_st_span *src, size_t len, size_t *done, mp_err *err)
{
    off64_t in = (off64_t)src->offset;
    *done = 0;
    while (*done < len && !w->no_copy_range) {
        ssize_t n = copy_file_range(src->fd, &in, w->fd, NULL, len - *done, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
            w->no_copy_range = 1;
            break;
        }
        if (n == 0) /* the source is shorter than when it was mapped */
            return mp_errf_at(err, MP_E_INPUT, src->path, NULL, (int64_t)in,
                              "ended at byte %llu while being copied to '%s': changed since it was opened",
                              (unsigned long long)in, w->path);
        if (n < 0)
            return mp_errf_at(err, MP_E_IO, w->path, NULL, -1, "write failed after %zu of %zu bytes: %s", *done, len,
                              strerror(errno)); /* as mp_write_all() says it */
        *done += (size_t)n;
    }
    return MP_OK;
}

mp_errcode mp_gguf_writer_copy(mp_gguf_writer *w, const mp_st_span *src, size_t len, mp_err *err)
{
    if (w->cur >= w->n_t || len > w->t[w->cur].n_bytes - w->cur_done)
        return mp_gguf_writer_write(w, src->bytes, len, err); /* reports the overrun */
    size_t done;
    MP_FORWARD(copy_range(w, src, len, &done, err));
    if (done < len) MP_FORWARD(mp_write_all(w->fd, src->bytes + done, len - done, w->path, err));
    w->cur_done += len;
    return advance(w, err);
}

mp_errcode mp_gguf_writer_finish(mp_gguf_writer *w, mp_err *err)
{
    mp_errcode rc = MP_OK;
    if (!w->begun) rc = mp_gguf_writer_begin(w, err);
    if (rc == MP_OK && w->cur < w->n_t)
        rc = mp_errf_at(err, MP_E_INPUT, w->path, w->t[w->cur].name, -1,
                        "tensor incomplete: %llu of %llu bytes written",
                        (unsigned long long)w->cur_done, (unsigned long long)w->t[w->cur].n_bytes);
    if (rc == MP_OK && fsync(w->fd) != 0)
        rc = mp_errf_at(err, MP_E_IO, w->path, NULL, -1, "fsync failed: %s", strerror(errno));
    if (close(w->fd) != 0 && rc == MP_OK)
        rc = mp_errf_at(err, MP_E_IO, w->path, NULL, -1, "close failed: %s", strerror(errno));
    w->fd = -1;
    if (rc != MP_OK) unlink(w->path);
    mp_gguf_writer_abort(w);
    return rc;
}

void mp_gguf_writer_abort(mp_gguf_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) {
        close(w->fd);
        unlink(w->path);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t);
    for (uint64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    free(w->keys);
    mp_buf_release(&w->kv);
    free(w->path);
    free(w);
}

/* ---------------------------------------------------------------- rewriting a model */

#define COPY_CHUNK (4u << 20)

static int is_split_key(const char *k)
{
    return strcmp(k, "split.no") == 0 || strcmp(k, "split.count") == 0 ||
           strcmp(k, "split.tensors.count") == 0;
}

/* Copies the encoded value of a source key verbatim. */
static mp_errcode copy_kv(mp_gguf_writer *w, const mp_gguf *g, const mp_gguf_kv *kv, mp_err *err)
{
    uint8_t *v = malloc(kv->value_len ? (size_t)kv->value_len : 1);
    if (!v) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = mp_file_pread(mp_gguf_file(g, 0), kv->value_offset, v, (size_t)kv->value_len, err);
    if (rc == MP_OK) rc = mp_gguf_writer_add_kv(w, kv->key, kv->type, kv->elem, v, (size_t)kv->value_len, err);
    free(v);
    return rc;
}

/* Plans the splits as gguf-split does: by tensor count, or before the size would pass the
 * limit (a split always takes at least one tensor). first[s] is split s's first tensor and
 * first[n_splits] = n; first has room for n + 2. Returns n_splits. */
static size_t plan_splits(const mp_gguf *g, size_t n, uint32_t align, const mp_gguf_copy_opts *o, size_t *first)
{
    size_t n_splits = 0, next_cut = 0;
    uint64_t size = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t b = padded(mp_gguf_tensor_at(g, i)->n_bytes, align);
        int at_cut = next_cut < o->n_cuts && o->cut_before[next_cut] == i;
        if (at_cut) next_cut++;
        int cut = i == 0 || (at_cut && i > first[n_splits - 1]) ||
                  (o->split_max_tensors && (i - first[n_splits - 1]) >= o->split_max_tensors) ||
                  (o->split_max_bytes && size + b > o->split_max_bytes && i > first[n_splits - 1]);
        if (cut) {
            first[n_splits++] = i;
            size = 0;
        }
        size += b;
    }
    if (n_splits == 0) first[n_splits++] = 0;
    first[n_splits] = n;
    return n_splits;
}

/* What mp_gguf_copy writes: n tensors in n_splits files, split s holding [first[s], first[s + 1]). */
typedef struct copy_plan {
    size_t n, n_splits;
    const size_t *first;
    int split;        /* a split set (split.* keys, numbered names), else one file */
    uint32_t align;
} copy_plan;

/* Split s of the plan into the writer: the source's keys in the first, the alignment and split
 * keys, and its tensors with their bytes (buf: COPY_CHUNK). */
static mp_errcode write_split(mp_gguf_writer *w, const mp_gguf *g, const copy_plan *p, size_t s, uint8_t *buf,
                              mp_err *err)
{
    uint32_t align = p->align;
    size_t t0 = p->first[s], t1 = p->first[s + 1];
    for (size_t i = 0; s == 0 && i < mp_gguf_n_kv(g); i++) {
        const mp_gguf_kv *kv = mp_gguf_kv_at(g, i);
        if (is_split_key(kv->key) || strcmp(kv->key, "general.alignment") == 0) continue;
        MP_FORWARD(copy_kv(w, g, kv, err));
    }
    /* The key goes wherever the offsets need it, and stays where the source had it. */
    if (align != MP_GGUF_DEFAULT_ALIGNMENT || (s == 0 && mp_gguf_find_kv(g, "general.alignment")))
        MP_FORWARD(mp_gguf_writer_add_u32(w, "general.alignment", align, err));
    if (p->split) {
        MP_FORWARD(mp_gguf_writer_add_u16(w, "split.no", (uint16_t)s, err));
        MP_FORWARD(mp_gguf_writer_add_u16(w, "split.count", (uint16_t)p->n_splits, err));
        MP_FORWARD(mp_gguf_writer_add_i32(w, "split.tensors.count", (int32_t)p->n, err));
    }
    for (size_t i = t0; i < t1; i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(g, i);
        MP_FORWARD(mp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, err));
    }
    MP_FORWARD(mp_gguf_writer_begin(w, err));
    for (size_t i = t0; i < t1; i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(g, i);
        for (uint64_t at = 0; at < t->n_bytes; at += COPY_CHUNK) {
            size_t len = t->n_bytes - at < COPY_CHUNK ? (size_t)(t->n_bytes - at) : COPY_CHUNK;
            MP_FORWARD(mp_gguf_read(g, t, at, buf, len, err));
            MP_FORWARD(mp_gguf_writer_write(w, buf, len, err));
        }
    }
    return MP_OK;
}

mp_errcode mp_gguf_copy(const mp_gguf *g, const char *dst, const mp_gguf_copy_opts *o, mp_err *err)
{
    size_t n = o->metadata_only ? 0 : mp_gguf_n_tensors(g);
    uint32_t align = o->alignment ? o->alignment : mp_gguf_alignment(g);
    if (align == 0 || (align & (align - 1)))
        return mp_errf(err, MP_E_USAGE, "alignment %u is not a power of two", align);
    size_t *first = malloc((n + 2) * sizeof *first);
    if (!first) return mp_errf(err, MP_E_NOMEM, "out of memory");
    size_t n_splits = plan_splits(g, n, align, o, first);
    int split = o->split_max_tensors || o->split_max_bytes || o->n_cuts;
    char prefix[4096];
    snprintf(prefix, sizeof prefix, "%s", dst);
    size_t pl = strlen(prefix);
    if (pl > 5 && strcmp(prefix + pl - 5, ".gguf") == 0) prefix[pl - 5] = '\0';
    uint8_t *buf = malloc(COPY_CHUNK);
    mp_errcode rc = buf ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK && split && n_splits > 65535)
        rc = mp_errf(err, MP_E_INPUT, "%zu splits exceed split.count's u16", n_splits);
    if (rc == MP_OK && split && n > INT32_MAX)
        rc = mp_errf(err, MP_E_INPUT, "%zu tensors exceed split.tensors.count's i32", n);
    for (size_t s = 0; s < n_splits && rc == MP_OK; s++) {
        char path[4200];
        if (split) mp_gguf_split_name(prefix, s + 1, n_splits, path, sizeof path);
        else snprintf(path, sizeof path, "%s", dst);
        mp_gguf_writer *w = NULL;
        rc = mp_gguf_writer_open(&w, path, err);
        if (rc != MP_OK) break;
        copy_plan plan = {n, n_splits, first, split, align};
        rc = write_split(w, g, &plan, s, buf, err);
        if (rc == MP_OK) rc = mp_gguf_writer_finish(w, err);
        else mp_gguf_writer_abort(w);
    }
    free(buf);
    free(first);
    return rc;
}
