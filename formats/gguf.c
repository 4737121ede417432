/*
 * gguf.c - GGUF files and split sets: parsing and validation (doc/formats/gguf.md §1-§3).
 *
 * Byte layout (little-endian; v2 and v3 share it):
 *
 *   offset 0   "GGUF"                 magic
 *              u32 version            2 or 3 (1 had 32-bit counts and is refused)
 *              i64 n_tensors, i64 n_kv
 *              n_kv x    { str key; i32 type; value }   value of ARR: i32 elem, u64 n, n elems
 *              n_tensors x { str name; u32 n_dims; i64 ne[n_dims]; i32 type; u64 offset }
 *              zero padding to the alignment (only when n_tensors > 0)
 *   data       each tensor at data + offset, padded to the alignment
 *
 *   str = u64 length + bytes (no NUL). general.alignment (u32, a power of two) overrides 32.
 *
 * The checks are gguf.cpp's gguf_init_from_reader, in its order (§1.8), and the loader's
 * (§1.9): offsets must be exactly the running sum of padded tensor sizes, so gaps, reordering
 * and overlaps are all refused, and every tensor must lie inside its file. Every count and
 * length is bounded by the bytes left in the file before it is used to allocate or to loop.
 */
#define _GNU_SOURCE
#include "formats_internal.h"

#include <dirent.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- type tables */

static const struct {
    const char *name;
    uint32_t block;  /* elements per block; 0: removed from ggml */
    uint32_t size;   /* bytes per block */
} type_traits[MP_GGUF_TYPE_COUNT] = {
    [0] = {"F32", 1, 4},        [1] = {"F16", 1, 2},        [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},     [4] = {"Q4_2", 0, 0},       [5] = {"Q4_3", 0, 0},
    [6] = {"Q5_0", 32, 22},     [7] = {"Q5_1", 32, 24},     [8] = {"Q8_0", 32, 34},
    [9] = {"Q8_1", 32, 36},     [10] = {"Q2_K", 256, 84},   [11] = {"Q3_K", 256, 110},
    [12] = {"Q4_K", 256, 144},  [13] = {"Q5_K", 256, 176},  [14] = {"Q6_K", 256, 210},
    [15] = {"Q8_K", 256, 292},  [16] = {"IQ2_XXS", 256, 66}, [17] = {"IQ2_XS", 256, 74},
    [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50}, [20] = {"IQ4_NL", 32, 18},
    [21] = {"IQ3_S", 256, 110}, [22] = {"IQ2_S", 256, 82},  [23] = {"IQ4_XS", 256, 136},
    [24] = {"I8", 1, 1},        [25] = {"I16", 1, 2},       [26] = {"I32", 1, 4},
    [27] = {"I64", 1, 8},       [28] = {"F64", 1, 8},       [29] = {"IQ1_M", 256, 56},
    [30] = {"BF16", 1, 2},      [31] = {"Q4_0_4_4", 0, 0},  [32] = {"Q4_0_4_8", 0, 0},
    [33] = {"Q4_0_8_8", 0, 0},  [34] = {"TQ1_0", 256, 54},  [35] = {"TQ2_0", 256, 66},
    [36] = {"IQ4_NL_4_4", 0, 0}, [37] = {"IQ4_NL_4_8", 0, 0}, [38] = {"IQ4_NL_8_8", 0, 0},
    [39] = {"MXFP4", 32, 17},   [40] = {"NVFP4", 64, 36},   [41] = {"Q1_0", 128, 18},
    [42] = {"Q2_0", 64, 18},
};
_Static_assert(sizeof type_traits / sizeof type_traits[0] == MP_GGUF_TYPE_COUNT,
               "one entry per ggml type id");

const char *mp_gguf_type_name(uint32_t type)
{
    return type < MP_GGUF_TYPE_COUNT ? type_traits[type].name : NULL;
}

uint32_t mp_gguf_type_block(uint32_t type)
{
    return type < MP_GGUF_TYPE_COUNT ? type_traits[type].block : 0;
}

uint32_t mp_gguf_type_size(uint32_t type)
{
    return type < MP_GGUF_TYPE_COUNT ? type_traits[type].size : 0;
}

static const struct {
    const char *name;
    size_t size;
} vtype_traits[MP_GGUF_V_COUNT] = {
    [MP_GGUF_V_U8] = {"u8", 1},   [MP_GGUF_V_I8] = {"i8", 1},     [MP_GGUF_V_U16] = {"u16", 2},
    [MP_GGUF_V_I16] = {"i16", 2}, [MP_GGUF_V_U32] = {"u32", 4},   [MP_GGUF_V_I32] = {"i32", 4},
    [MP_GGUF_V_F32] = {"f32", 4}, [MP_GGUF_V_BOOL] = {"bool", 1}, [MP_GGUF_V_STR] = {"str", 0},
    [MP_GGUF_V_ARR] = {"arr", 0}, [MP_GGUF_V_U64] = {"u64", 8},   [MP_GGUF_V_I64] = {"i64", 8},
    [MP_GGUF_V_F64] = {"f64", 8},
};
_Static_assert(sizeof vtype_traits / sizeof vtype_traits[0] == MP_GGUF_V_COUNT,
               "one entry per GGUF value type");

const char *mp_gguf_vtype_name(mp_gguf_vtype t)
{
    return (unsigned)t < MP_GGUF_V_COUNT ? vtype_traits[t].name : "invalid";
}

size_t mp_gguf_vtype_size(mp_gguf_vtype t)
{
    return (unsigned)t < MP_GGUF_V_COUNT ? vtype_traits[t].size : 0;
}

/* ---------------------------------------------------------------- the model */

typedef struct gguf_file {
    mp_file *f;
    char *name;              /* relative to the model directory */
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    mp_gguf_kv *kv;
    size_t n_kv;
    size_t first_tensor, n_tensors;  /* a range of the model's tensors */
    void *map;                       /* the whole file mapped by mp_gguf_file_map, once; owned */
    size_t map_len;
} gguf_file;

struct mp_gguf {
    char *dir;
    gguf_file *files;
    size_t n_files;
    mp_gguf_tensor *tensors;
    size_t n_tensors, cap_tensors;
    const mp_gguf_tensor **by_name;  /* sorted by name, for lookups */
};

/* ---------------------------------------------------------------- bounded cursor */

#define CURSOR_BUF (64u << 10)

/* Reads a file front to back through a buffer; every read is checked against the bytes left. */
typedef struct cursor {
    const mp_file *f;
    uint64_t pos;            /* absolute position of the next byte */
    uint64_t buf_at;         /* file offset of buf[0] */
    size_t buf_len;
    uint8_t *buf;
} cursor;

static uint64_t cur_left(const cursor *c) { return c->f->size - c->pos; }

static mp_errcode cur_get(cursor *c, void *out, size_t n, const char *what, mp_err *err)
{
    if (n > cur_left(c))
        return mp_errf_at(err, MP_E_INPUT, c->f->path, NULL, (int64_t)c->pos,
                          "unexpected end of file reading %s (%zu bytes wanted, %llu left)", what,
                          n, (unsigned long long)cur_left(c));
    uint8_t *dst = out;
    while (n > 0) {
        if (c->pos >= c->buf_at && c->pos < c->buf_at + c->buf_len) {
            size_t at = (size_t)(c->pos - c->buf_at);
            size_t k = c->buf_len - at < n ? c->buf_len - at : n;
            if (dst) memcpy(dst, c->buf + at, k);
            if (dst) dst += k;
            c->pos += k;
            n -= k;
            continue;
        }
        if (!dst) { /* skipping: no need to read what nobody looks at */
            c->pos += n;
            return MP_OK;
        }
        uint64_t left = cur_left(c);
        size_t want = left < CURSOR_BUF ? (size_t)left : CURSOR_BUF;
        MP_FORWARD(mp_file_pread(c->f, c->pos, c->buf, want, err));
        c->buf_at = c->pos;
        c->buf_len = want;
    }
    return MP_OK;
}

static mp_errcode cur_u32(cursor *c, uint32_t *v, const char *what, mp_err *err)
{
    uint8_t b[4];
    MP_FORWARD(cur_get(c, b, 4, what, err));
    *v = mp_read_le32(b);
    return MP_OK;
}

static mp_errcode cur_u64(cursor *c, uint64_t *v, const char *what, mp_err *err)
{
    uint8_t b[8];
    MP_FORWARD(cur_get(c, b, 8, what, err));
    *v = mp_read_le64(b);
    return MP_OK;
}

/* A string's length, checked against the 1 GiB limit and the bytes left. `whose` names it. */
static mp_errcode cur_str_len(cursor *c, uint64_t *len, const char *whose, const char *tensor,
                              mp_err *err)
{
    uint64_t at = c->pos;
    MP_FORWARD(cur_u64(c, len, whose, err));
    if (*len > MP_GGUF_MAX_STRING)
        return mp_errf_at(err, MP_E_INPUT, c->f->path, tensor, (int64_t)at,
                          "%s: string length %llu exceeds the limit of %llu bytes", whose,
                          (unsigned long long)*len, MP_GGUF_MAX_STRING);
    if (*len > cur_left(c))
        return mp_errf_at(err, MP_E_INPUT, c->f->path, tensor, (int64_t)at,
                          "%s: string length %llu runs past the end of the file (%llu bytes left)",
                          whose, (unsigned long long)*len, (unsigned long long)cur_left(c));
    return MP_OK;
}

static mp_errcode cur_str(cursor *c, char **out, uint64_t *out_len, const char *whose,
                          mp_err *err)
{
    uint64_t len;
    MP_FORWARD(cur_str_len(c, &len, whose, NULL, err));
    char *s = malloc((size_t)len + 1);
    if (!s) return mp_errf_at(err, MP_E_NOMEM, c->f->path, NULL, -1, "out of memory");
    mp_errcode rc = cur_get(c, s, (size_t)len, whose, err);
    if (rc != MP_OK) {
        free(s);
        return rc;
    }
    s[len] = '\0';
    *out = s;
    if (out_len) *out_len = len;
    return MP_OK;
}

/* ---------------------------------------------------------------- metadata */

static int64_t sign_extend(uint64_t u, size_t bytes)
{
    if (bytes == 8) return (int64_t)u;
    uint64_t m = 1ull << (8 * bytes - 1);
    return (int64_t)((u ^ m) - m);
}

static void decode_scalar(mp_gguf_kv *kv, const uint8_t *b)
{
    size_t sz = vtype_traits[kv->type].size;
    uint64_t u = 0;
    for (size_t i = sz; i-- > 0;) u = (u << 8) | b[i];
    switch (kv->type) {
    case MP_GGUF_V_I8: case MP_GGUF_V_I16: case MP_GGUF_V_I32: case MP_GGUF_V_I64:
        kv->v.i = sign_extend(u, sz);
        break;
    case MP_GGUF_V_F32: {
        float f;
        uint32_t u32 = (uint32_t)u;
        memcpy(&f, &u32, 4);
        kv->v.f = f;
        break;
    }
    case MP_GGUF_V_F64:
        memcpy(&kv->v.f, &u, 8);
        break;
    default:
        kv->v.u = u;
    }
}

static mp_errcode parse_kv(cursor *c, int64_t index, mp_gguf_kv *kv, mp_err *err)
{
    const char *path = c->f->path;
    char whose[64];
    snprintf(whose, sizeof whose, "key %lld", (long long)index);
    uint64_t key_at = c->pos, key_len;
    MP_FORWARD(cur_str(c, &kv->key, &key_len, whose, err));
    if (key_len == 0)
        return mp_errf_at(err, MP_E_INPUT, path, NULL, (int64_t)key_at, "key %lld is empty",
                          (long long)index);
    /* Stricter than gguf.cpp, which keeps the bytes: a key is text, and a NUL would make two
     * different keys the same C string. */
    if (strlen(kv->key) != key_len)
        return mp_errf_at(err, MP_E_INPUT, path, NULL, (int64_t)key_at, "key %lld holds a NUL byte",
                          (long long)index);
    uint32_t t;
    MP_FORWARD(cur_u32(c, &t, "a value type", err));
    if ((int32_t)t < 0 || t >= MP_GGUF_V_COUNT)
        return mp_errf_at(err, MP_E_INPUT, path, NULL, (int64_t)(c->pos - 4),
                          "key '%s' has invalid GGUF type %d", kv->key, (int32_t)t);
    kv->type = (mp_gguf_vtype)t;
    kv->n = 1;
    if (kv->type == MP_GGUF_V_ARR) {
        uint32_t e;
        MP_FORWARD(cur_u32(c, &e, "an array element type", err));
        if (e == MP_GGUF_V_ARR)
            return mp_errf_at(err, MP_E_INPUT, path, NULL, (int64_t)(c->pos - 4),
                              "key '%s': nested arrays are not supported", kv->key);
        if ((int32_t)e < 0 || e >= MP_GGUF_V_COUNT)
            return mp_errf_at(err, MP_E_INPUT, path, NULL, (int64_t)(c->pos - 4),
                              "key '%s' has invalid GGUF type %d", kv->key, (int32_t)e);
        kv->elem = (mp_gguf_vtype)e;
        kv->value_offset = c->pos;
        uint64_t n_at = c->pos;
        MP_FORWARD(cur_u64(c, &kv->n, "an array length", err));
        if (kv->n > MP_GGUF_MAX_ARRAY)
            return mp_errf_at(err, MP_E_INPUT, path, NULL, (int64_t)n_at,
                              "key '%s': array of %llu elements exceeds the limit of %llu",
                              kv->key, (unsigned long long)kv->n, MP_GGUF_MAX_ARRAY);
        /* Strings take 8 bytes of length each at least. */
        uint64_t each = kv->elem == MP_GGUF_V_STR ? 8 : vtype_traits[kv->elem].size;
        uint64_t need = kv->n * each; /* <= 2^30 * 8: no overflow */
        if (need > cur_left(c))
            return mp_errf_at(err, MP_E_INPUT, path, NULL, (int64_t)n_at,
                              "key '%s': array of %llu %s needs %llu bytes but %llu are left",
                              kv->key, (unsigned long long)kv->n, vtype_traits[kv->elem].name,
                              (unsigned long long)need, (unsigned long long)cur_left(c));
        if (kv->elem != MP_GGUF_V_STR) {
            MP_FORWARD(cur_get(c, NULL, (size_t)need, "array elements", err));
        } else {
            char elem_whose[MP_ERR_MSG_MAX / 2];
            snprintf(elem_whose, sizeof elem_whose, "key '%.100s' element", kv->key);
            for (uint64_t i = 0; i < kv->n; i++) {
                uint64_t len;
                MP_FORWARD(cur_str_len(c, &len, elem_whose, NULL, err));
                MP_FORWARD(cur_get(c, NULL, (size_t)len, "a string", err));
            }
        }
        kv->value_len = c->pos - kv->value_offset;
        return MP_OK;
    }
    kv->value_offset = c->pos;
    if (kv->type == MP_GGUF_V_STR) {
        char kw[MP_ERR_MSG_MAX / 2];
        snprintf(kw, sizeof kw, "key '%.100s'", kv->key);
        MP_FORWARD(cur_str(c, &kv->str, &kv->str_len, kw, err));
    } else {
        uint8_t b[8];
        MP_FORWARD(cur_get(c, b, vtype_traits[kv->type].size, "a value", err));
        decode_scalar(kv, b);
    }
    kv->value_len = c->pos - kv->value_offset;
    return MP_OK;
}

static int cmp_kv_ptr(const void *pa, const void *pb)
{
    const mp_gguf_kv *const *a = pa, *const *b = pb;
    return strcmp((*a)->key, (*b)->key);
}

static mp_errcode check_unique_keys(const gguf_file *gf, mp_err *err)
{
    if (gf->n_kv < 2) return MP_OK;
    const mp_gguf_kv **v = malloc(gf->n_kv * sizeof *v);
    if (!v) return mp_errf_at(err, MP_E_NOMEM, gf->f->path, NULL, -1, "out of memory");
    for (size_t i = 0; i < gf->n_kv; i++) v[i] = &gf->kv[i];
    qsort(v, gf->n_kv, sizeof *v, cmp_kv_ptr);
    mp_errcode rc = MP_OK;
    for (size_t i = 1; i < gf->n_kv && rc == MP_OK; i++)
        if (strcmp(v[i - 1]->key, v[i]->key) == 0)
            rc = mp_errf_at(err, MP_E_INPUT, gf->f->path, NULL, -1, "duplicate key '%s'",
                            v[i]->key);
    free(v);
    return rc;
}

static const mp_gguf_kv *file_kv(const gguf_file *gf, const char *key)
{
    for (size_t i = 0; i < gf->n_kv; i++)
        if (strcmp(gf->kv[i].key, key) == 0) return &gf->kv[i];
    return NULL;
}

/* ---------------------------------------------------------------- tensor infos */

static mp_errcode grow_tensors(mp_gguf *g, mp_err *err)
{
    if (g->n_tensors < g->cap_tensors) return MP_OK;
    size_t cap = g->cap_tensors ? 2 * g->cap_tensors : 64;
    mp_gguf_tensor *t = realloc(g->tensors, cap * sizeof *t);
    if (!t) return mp_errf(err, MP_E_NOMEM, "out of memory");
    memset(t + g->cap_tensors, 0, (cap - g->cap_tensors) * sizeof *t);
    g->tensors = t;
    g->cap_tensors = cap;
    return MP_OK;
}

static mp_errcode parse_tensor_info(cursor *c, int64_t index, mp_gguf_tensor *t, mp_err *err)
{
    const char *path = c->f->path;
    char whose[64];
    snprintf(whose, sizeof whose, "tensor %lld name", (long long)index);
    uint64_t at = c->pos, len;
    MP_FORWARD(cur_str(c, &t->name, &len, whose, err));
    const char *nm = t->name;
    if (len >= MP_GGUF_MAX_NAME)
        return mp_errf_at(err, MP_E_INPUT, path, nm, (int64_t)at,
                          "tensor name of %llu bytes is too long (%d at most)",
                          (unsigned long long)len, MP_GGUF_MAX_NAME - 1);
    if (strlen(nm) != len)
        return mp_errf_at(err, MP_E_INPUT, path, nm, (int64_t)at, "tensor name holds a NUL byte");
    MP_FORWARD(cur_u32(c, &t->n_dims, "n_dims", err));
    if (t->n_dims > MP_GGUF_MAX_DIMS)
        return mp_errf_at(err, MP_E_INPUT, path, nm, (int64_t)(c->pos - 4),
                          "n_dims %u exceeds the maximum of %d", t->n_dims, MP_GGUF_MAX_DIMS);
    for (uint32_t d = 0; d < MP_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        MP_FORWARD(cur_u64(c, &t->ne[d], "a dimension", err));
        if ((int64_t)t->ne[d] < 0)
            return mp_errf_at(err, MP_E_INPUT, path, nm, (int64_t)(c->pos - 8),
                              "dimension %u is negative (%lld)", d, (long long)(int64_t)t->ne[d]);
    }
    /* The element count must stay below INT64_MAX (gguf.cpp); zero-sized dims are legal. */
    uint64_t n = 1;
    int zero = 0, over = 0;
    for (uint32_t d = 0; d < MP_GGUF_MAX_DIMS; d++) {
        if (t->ne[d] == 0) zero = 1;
        if (mp_mul_overflow(n, t->ne[d], &n) || n >= (uint64_t)INT64_MAX) over = 1;
    }
    if (over && !zero)
        return mp_errf_at(err, MP_E_INPUT, path, nm, -1,
                          "element count of [%llu, %llu, %llu, %llu] overflows int64",
                          (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                          (unsigned long long)t->ne[2], (unsigned long long)t->ne[3]);
    t->n_elems = zero ? 0 : n;
    uint32_t type;
    MP_FORWARD(cur_u32(c, &type, "a tensor type", err));
    if ((int32_t)type < 0 || type >= MP_GGUF_TYPE_COUNT)
        return mp_errf_at(err, MP_E_INPUT, path, nm, (int64_t)(c->pos - 4),
                          "invalid tensor type id %d (0 to %d)", (int32_t)type,
                          MP_GGUF_TYPE_COUNT - 1);
    if (type_traits[type].block == 0)
        return mp_errf_at(err, MP_E_INPUT, path, nm, (int64_t)(c->pos - 4),
                          "tensor type id %u (%s) was removed from ggml", type,
                          type_traits[type].name);
    t->type = type;
    uint32_t blk = type_traits[type].block;
    if (t->ne[0] % blk != 0)
        return mp_errf_at(err, MP_E_INPUT, path, nm, -1,
                          "row length %llu is not a multiple of the %s block size %u",
                          (unsigned long long)t->ne[0], type_traits[type].name, blk);
    if (mp_mul_overflow(t->n_elems / blk, type_traits[type].size, &t->n_bytes))
        return mp_errf_at(err, MP_E_INPUT, path, nm, -1, "byte size of %llu %s elements overflows",
                          (unsigned long long)t->n_elems, type_traits[type].name);
    MP_FORWARD(cur_u64(c, &t->rel_offset, "a tensor offset", err));
    return MP_OK;
}

static int cmp_tensor_ptr(const void *pa, const void *pb)
{
    const mp_gguf_tensor *const *a = pa, *const *b = pb;
    int r = strcmp((*a)->name, (*b)->name);
    if (r) return r;
    return *a < *b ? -1 : *a > *b;
}

static int pad_to(uint64_t x, uint64_t align, uint64_t *out)
{
    uint64_t y;
    if (mp_add_overflow(x, align - 1, &y)) return 1;
    *out = y & ~(align - 1);
    return 0;
}

/* Offsets: aligned, in order, then exactly the running sum of padded sizes, each tensor inside
 * the file (§1.5, §1.9). Order is checked first so that a swapped pair is called that, not a gap. */
static mp_errcode check_offsets(const mp_gguf *g, const gguf_file *gf, mp_err *err)
{
    if (gf->n_tensors == 0) return MP_OK;
    const char *path = gf->f->path;
    const mp_gguf_tensor *ts = &g->tensors[gf->first_tensor];
    uint64_t expect = 0, a = gf->alignment;
    for (size_t i = 0; i < gf->n_tensors; i++) {
        const mp_gguf_tensor *t = &ts[i];
        if (t->rel_offset % a != 0)
            return mp_errf_at(err, MP_E_INPUT, path, t->name, -1,
                              "offset %llu is not a multiple of the alignment %llu",
                              (unsigned long long)t->rel_offset, (unsigned long long)a);
        if (i > 0 && t->rel_offset < ts[i - 1].rel_offset)
            return mp_errf_at(err, MP_E_INPUT, path, t->name, -1,
                              "offset %llu is out of order: the tensor before it, '%s', is at %llu",
                              (unsigned long long)t->rel_offset, ts[i - 1].name,
                              (unsigned long long)ts[i - 1].rel_offset);
    }
    for (size_t i = 0; i < gf->n_tensors; i++) {
        const mp_gguf_tensor *t = &ts[i];
        unsigned long long off = (unsigned long long)t->rel_offset;
        if (t->rel_offset < expect)
            return mp_errf_at(err, MP_E_INPUT, path, t->name, -1,
                              "offset %llu overlaps the previous tensor '%s', which ends at %llu",
                              off, ts[i - 1].name, (unsigned long long)expect);
        if (t->rel_offset > expect)
            return mp_errf_at(err, MP_E_INPUT, path, t->name, -1,
                              "offset %llu leaves a gap after the previous tensor: expected %llu",
                              off, (unsigned long long)expect);
        uint64_t abs, end;
        if (mp_add_overflow(gf->data_offset, t->rel_offset, &abs) ||
            mp_add_overflow(abs, t->n_bytes, &end) || end > gf->f->size)
            return mp_errf_at(err, MP_E_INPUT, path, t->name, -1,
                              "data at offset %llu (%llu bytes) runs past the end of the file "
                              "(%llu bytes, data section at %llu)", off,
                              (unsigned long long)t->n_bytes, (unsigned long long)gf->f->size,
                              (unsigned long long)gf->data_offset);
        if (pad_to(t->n_bytes, a, &end) || mp_add_overflow(expect, end, &expect))
            return mp_errf_at(err, MP_E_INPUT, path, t->name, -1, "data size overflows");
    }
    return MP_OK;
}

static void release_file(gguf_file *gf)
{
    for (size_t i = 0; i < gf->n_kv; i++) {
        free(gf->kv[i].key);
        free(gf->kv[i].str);
    }
    free(gf->kv);
    free(gf->name);
    if (gf->map) mp_unmap(gf->map, gf->map_len);
    mp_file_close(gf->f);
    memset(gf, 0, sizeof *gf);
}

/* The magic "GGUF" and a supported version (2 or 3); leaves the cursor after the version. */
static mp_errcode parse_magic_version(cursor *c, gguf_file *gf, mp_err *err)
{
    const char *path = gf->f->path;
    uint8_t magic[4] = {0};
    size_t have = gf->f->size < 4 ? (size_t)gf->f->size : 4;
    MP_FORWARD(mp_file_pread(gf->f, 0, magic, have, err));
    if (have < 4 || memcmp(magic, "GGUF", 4) != 0) {
        char shown[20];
        size_t k = 0;
        for (size_t i = 0; i < have; i++) {
            if (magic[i] >= 0x20 && magic[i] < 0x7f) shown[k++] = (char)magic[i];
            else k += (size_t)snprintf(shown + k, sizeof shown - k, "\\x%02x", magic[i]);
        }
        shown[k] = '\0';
        return mp_errf_at(err, MP_E_INPUT, path, NULL, 0, "invalid magic characters '%s' (want 'GGUF')", shown);
    }
    c->pos = 4;
    MP_FORWARD(cur_u32(c, &gf->version, "the version", err));
    if (gf->version == 0) return mp_errf_at(err, MP_E_INPUT, path, NULL, 4, "bad GGUF version 0");
    if ((gf->version & 0xFFFFu) == 0)
        return mp_errf_at(err, MP_E_INPUT, path, NULL, 4,
                          "GGUF version %u is extremely large: a big-endian file? only "
                          "little-endian GGUF is supported", gf->version);
    if (gf->version == 1)
        return mp_errf_at(err, MP_E_INPUT, path, NULL, 4, "GGUF version 1 is no longer supported (versions 2 and 3 are)");
    if (gf->version > 3)
        return mp_errf_at(err, MP_E_INPUT, path, NULL, 4, "GGUF version %u is newer than the supported 3", gf->version);
    return MP_OK;
}

/* The tensor and key/value counts, bounded by the bytes left: a tensor info takes 24 bytes at
 * least and a key/value 13, so larger counts cannot be real. */
static mp_errcode parse_counts(cursor *c, const char *path, uint64_t *n_t, uint64_t *n_kv, mp_err *err)
{
    MP_FORWARD(cur_u64(c, n_t, "the tensor count", err));
    MP_FORWARD(cur_u64(c, n_kv, "the key/value count", err));
    if ((int64_t)*n_t < 0 || *n_t > cur_left(c) / 24)
        return mp_errf_at(err, MP_E_INPUT, path, NULL, 8,
                          (int64_t)*n_t < 0 ? "tensor count %lld is negative"
                                            : "tensor count %lld cannot fit in the %llu bytes left",
                          (long long)*n_t, (unsigned long long)cur_left(c));
    if ((int64_t)*n_kv < 0 || *n_kv > cur_left(c) / 13)
        return mp_errf_at(err, MP_E_INPUT, path, NULL, 16,
                          (int64_t)*n_kv < 0 ? "key/value count %lld is negative"
                                             : "key/value count %lld cannot fit in the %llu bytes left",
                          (long long)*n_kv, (unsigned long long)cur_left(c));
    return MP_OK;
}

/* The n_kv key/value pairs, unique keys, and general.alignment (a power of two) into gf. */
static mp_errcode parse_kvs(cursor *c, gguf_file *gf, uint64_t n_kv, mp_err *err)
{
    size_t cap = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (gf->n_kv == cap) {
            cap = cap ? 2 * cap : 16;
            mp_gguf_kv *kv = realloc(gf->kv, cap * sizeof *kv);
            if (!kv) return mp_errf(err, MP_E_NOMEM, "out of memory");
            gf->kv = kv;
        }
        mp_gguf_kv *kv = &gf->kv[gf->n_kv];
        memset(kv, 0, sizeof *kv);
        gf->n_kv++;
        MP_FORWARD(parse_kv(c, (int64_t)i, kv, err));
    }
    MP_FORWARD(check_unique_keys(gf, err));
    gf->alignment = MP_GGUF_DEFAULT_ALIGNMENT;
    const mp_gguf_kv *al = file_kv(gf, "general.alignment");
    if (!al) return MP_OK;
    if (al->type != MP_GGUF_V_U32)
        return mp_errf_at(err, MP_E_INPUT, gf->f->path, NULL, (int64_t)al->value_offset,
                          "key 'general.alignment' must be of type u32 but is %s", mp_gguf_vtype_name(al->type));
    if (al->v.u == 0 || (al->v.u & (al->v.u - 1)) != 0)
        return mp_errf_at(err, MP_E_INPUT, gf->f->path, NULL, (int64_t)al->value_offset,
                          "alignment %llu is not a power of two", (unsigned long long)al->v.u);
    gf->alignment = (uint32_t)al->v.u;
    return MP_OK;
}

/* The n_t tensor infos, appended to g, then the data section and each tensor's offset in it. */
static mp_errcode parse_tensors(mp_gguf *g, gguf_file *gf, cursor *c, uint32_t file_index, uint64_t n_t, mp_err *err)
{
    gf->first_tensor = g->n_tensors;
    for (uint64_t i = 0; i < n_t; i++) {
        MP_FORWARD(grow_tensors(g, err));
        mp_gguf_tensor *t = &g->tensors[g->n_tensors];
        memset(t, 0, sizeof *t);
        g->n_tensors++;
        gf->n_tensors++;
        t->file = file_index;
        MP_FORWARD(parse_tensor_info(c, (int64_t)i, t, err));
    }
    gf->data_offset = c->pos;
    if (n_t > 0 && (pad_to(c->pos, gf->alignment, &gf->data_offset) || gf->data_offset > gf->f->size))
        return mp_errf_at(err, MP_E_INPUT, gf->f->path, NULL, (int64_t)c->pos,
                          "data section at %llu (padded to %u) starts past the end of the file "
                          "(%llu bytes)", (unsigned long long)c->pos, gf->alignment,
                          (unsigned long long)gf->f->size);
    MP_FORWARD(check_offsets(g, gf, err));
    for (size_t i = 0; i < gf->n_tensors; i++) {
        mp_gguf_tensor *t = &g->tensors[gf->first_tensor + i];
        t->offset = gf->data_offset + t->rel_offset;
    }
    return MP_OK;
}

/* Parses and validates one file, appending its tensors to g. */
static mp_errcode parse_file(mp_gguf *g, gguf_file *gf, uint32_t file_index, mp_err *err)
{
    cursor c = {gf->f, 0, 0, 0, NULL};
    c.buf = malloc(CURSOR_BUF);
    if (!c.buf) return mp_errf(err, MP_E_NOMEM, "out of memory");
    uint64_t n_t = 0, n_kv = 0;
    mp_errcode rc = parse_magic_version(&c, gf, err);
    if (rc == MP_OK) rc = parse_counts(&c, gf->f->path, &n_t, &n_kv, err);
    if (rc == MP_OK) rc = parse_kvs(&c, gf, n_kv, err);
    if (rc == MP_OK) rc = parse_tensors(g, gf, &c, file_index, n_t, err);
    free(c.buf);
    return rc;
}

/* ---------------------------------------------------------------- split sets */

void mp_gguf_split_name(const char *prefix, size_t shard, size_t n_shards, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s-%05zu-of-%05zu.gguf", prefix, shard, n_shards);
}

/* "<prefix>-NNNNN-of-MMMMM.gguf" -> prefix length, NNNNN, MMMMM. 0 when the name is not one. */
static int parse_split_name(const char *name, size_t *prefix_len, unsigned *no, unsigned *count)
{
    size_t n = strlen(name);
    const char *tail = "-00000-of-00000.gguf";
    size_t tl = strlen(tail);
    if (n <= tl) return 0;
    const char *s = name + n - tl;
    unsigned a = 0, b = 0;
    for (size_t i = 0; i < tl; i++) {
        if (tail[i] == '0') {
            if (s[i] < '0' || s[i] > '9') return 0;
            if (i < 6) a = a * 10 + (unsigned)(s[i] - '0');
            else b = b * 10 + (unsigned)(s[i] - '0');
        } else if (s[i] != tail[i]) {
            return 0;
        }
    }
    *prefix_len = n - tl;
    *no = a;
    *count = b;
    return 1;
}

static mp_errcode open_one(mp_gguf *g, const char *name, mp_err *err)
{
    gguf_file *gf = &g->files[g->n_files];
    memset(gf, 0, sizeof *gf);
    char *path = strcmp(g->dir, ".") == 0 ? mp_strdup(name) : mp_path_join(g->dir, name);
    gf->name = mp_strdup(name);
    if (!path || !gf->name) {
        free(path);
        free(gf->name);
        gf->name = NULL;
        return mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    mp_errcode rc = mp_file_open(&gf->f, path, err);
    free(path);
    if (rc != MP_OK) {
        free(gf->name);
        gf->name = NULL;
        return rc;
    }
    g->n_files++;
    return parse_file(g, gf, (uint32_t)(g->n_files - 1), err);
}

/* The split keys must have gguf-split's types (llama.cpp asserts them). */
static mp_errcode split_key(const gguf_file *gf, const char *key, mp_gguf_vtype want,
                            int64_t *out, mp_err *err)
{
    const mp_gguf_kv *kv = file_kv(gf, key);
    if (!kv) return MP_E_COUNT; /* absent */
    if (kv->type != want)
        return mp_errf_at(err, MP_E_INPUT, gf->f->path, NULL, (int64_t)kv->value_offset,
                          "key '%s' must be of type %s but is %s", key, mp_gguf_vtype_name(want),
                          mp_gguf_vtype_name(kv->type));
    *out = want == MP_GGUF_V_I32 ? kv->v.i : (int64_t)kv->v.u;
    return MP_OK;
}

/* Split k (from 0) of count, named from prefix: present, inside the directory, opened, and
 * saying it is split k of count. *total gets split 0's split.tensors.count (-1: absent). */
static mp_errcode open_split(mp_gguf *g, const char *prefix, int64_t k, int64_t count, int64_t *total, mp_err *err)
{
    char name[1024];
    mp_gguf_split_name(prefix, (size_t)k + 1, (size_t)count, name, sizeof name);
    char *path = mp_path_join(g->dir, name);
    if (!path) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = MP_OK;
    if (!mp_exists(path))
        rc = mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "split %lld of %lld is missing", (long long)k + 1,
                        (long long)count);
    else if (!mp_path_within(g->dir, path, NULL))
        rc = mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "split %lld of %lld resolves outside '%s'", (long long)k + 1,
                        (long long)count, g->dir);
    free(path);
    MP_FORWARD(rc);
    MP_FORWARD(open_one(g, name, err));
    gguf_file *sf = &g->files[k];
    int64_t sno = -1, scount = -1;
    rc = split_key(sf, "split.no", MP_GGUF_V_U16, &sno, err);
    if (rc == MP_OK) rc = split_key(sf, "split.count", MP_GGUF_V_U16, &scount, err);
    if (rc == MP_E_COUNT || (rc == MP_OK && (sno != k || scount != count)))
        return mp_errf_at(err, MP_E_INPUT, sf->f->path, NULL, -1, "split.no %lld and split.count %lld, expected %lld and %lld",
                          (long long)sno, (long long)scount, (long long)k, (long long)count);
    MP_FORWARD(rc);
    if (k != 0) return MP_OK;
    rc = split_key(sf, "split.tensors.count", MP_GGUF_V_I32, total, err);
    if (rc == MP_E_COUNT) *total = -1, rc = MP_OK;
    return rc;
}

/* The first file's split.count and split.no, against its name; *count 0 or 1 for a lone file
 * (a merged set says 0). *prefix_len: the name's prefix before "-NNNNN-of-MMMMM.gguf". */
static mp_errcode split_of_first(const gguf_file *gf, const char *first_name, int64_t *count, size_t *prefix_len,
                                 mp_err *err)
{
    int64_t no = 0;
    *count = 0;
    mp_errcode rc = split_key(gf, "split.count", MP_GGUF_V_U16, count, err);
    if (rc == MP_E_COUNT || (rc == MP_OK && *count <= 1)) {
        *count = 1;
        return MP_OK;
    }
    MP_FORWARD(rc);
    rc = split_key(gf, "split.no", MP_GGUF_V_U16, &no, err);
    if (rc == MP_E_COUNT)
        return mp_errf_at(err, MP_E_INPUT, gf->f->path, NULL, -1, "key 'split.count' is %lld but 'split.no' is missing",
                          (long long)*count);
    MP_FORWARD(rc);
    unsigned name_no, name_count;
    if (!parse_split_name(first_name, prefix_len, &name_no, &name_count) || name_count != (unsigned)*count ||
        name_no != (unsigned)no + 1)
        return mp_errf_at(err, MP_E_INPUT, gf->f->path, NULL, -1,
                          "split.no %lld and split.count %lld do not match the file name (want "
                          "'<prefix>-%05lld-of-%05lld.gguf')", (long long)no, (long long)*count,
                          (long long)no + 1, (long long)*count);
    return MP_OK;
}

static mp_errcode open_split_set(mp_gguf *g, const char *first_name, mp_err *err)
{
    /* The first file given decides; a split set is reopened from its first split. */
    g->files = calloc(1, sizeof *g->files);
    if (!g->files) return mp_errf(err, MP_E_NOMEM, "out of memory");
    MP_FORWARD(open_one(g, first_name, err));
    gguf_file *gf = &g->files[0];
    int64_t count;
    size_t plen = 0;
    MP_FORWARD(split_of_first(gf, first_name, &count, &plen, err));
    if (count <= 1) return MP_OK;
    char *prefix = malloc(plen + 1);
    if (!prefix) return mp_errf(err, MP_E_NOMEM, "out of memory");
    memcpy(prefix, first_name, plen);
    prefix[plen] = '\0';
    /* Start again from split 00001, in order. */
    g->n_tensors = 0;
    for (size_t i = 0; i < g->cap_tensors; i++) free(g->tensors[i].name);
    if (g->tensors) memset(g->tensors, 0, g->cap_tensors * sizeof *g->tensors);
    release_file(gf);
    g->n_files = 0;
    free(g->files);
    g->files = calloc((size_t)count, sizeof *g->files);
    int64_t total = -1;
    mp_errcode rc = g->files ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    for (int64_t k = 0; k < count && rc == MP_OK; k++) rc = open_split(g, prefix, k, count, &total, err);
    free(prefix);
    if (rc != MP_OK) return rc;
    if (total >= 0 && (uint64_t)total != g->n_tensors)
        return mp_errf_at(err, MP_E_INPUT, g->files[0].f->path, NULL, -1,
                          "split.tensors.count is %lld but the %lld splits hold %zu tensors",
                          (long long)total, (long long)count, g->n_tensors);
    return MP_OK;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int cmp_str_ptr(const void *pa, const void *pb)
{
    return strcmp(*(char *const *)pa, *(char *const *)pb);
}

/* The GGUF file of a directory: the only one, or the first split of the only split set. */
static mp_errcode pick_in_dir(const char *dir, char **out, mp_err *err)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) return mp_errf_at(err, MP_E_IO, dir, NULL, -1, "cannot open directory");
    char **names = NULL;
    size_t n = 0, cap = 0;
    mp_errcode rc = MP_OK;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || !has_suffix(e->d_name, ".gguf")) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            char **v = realloc(names, cap * sizeof *v);
            if (!v) {
                rc = mp_errf(err, MP_E_NOMEM, "out of memory");
                break;
            }
            names = v;
        }
        if (!(names[n] = mp_strdup(e->d_name))) {
            rc = mp_errf(err, MP_E_NOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == MP_OK && n == 0) rc = mp_errf_at(err, MP_E_INPUT, dir, NULL, -1, "no GGUF file in directory");
    if (rc == MP_OK) {
        qsort(names, n, sizeof *names, cmp_str_ptr);
        size_t plen0 = 0, plen;
        unsigned no, count0 = 0, count;
        int set = n > 0;
        for (size_t i = 0; i < n && set; i++) {
            if (!parse_split_name(names[i], &plen, &no, &count) || no != i + 1 ||
                (i > 0 && (count != count0 || plen != plen0 ||
                           strncmp(names[i], names[0], plen) != 0)))
                set = 0;
            plen0 = plen;
            count0 = count;
        }
        if (n == 1 || set) {
            *out = names[0];
            names[0] = NULL;
        } else {
            rc = mp_errf_at(err, MP_E_INPUT, dir, NULL, -1,
                            "directory holds %zu GGUF files that are not one split set: name the "
                            "file", n);
        }
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

int mp_gguf_probe(const char *path)
{
    if (mp_is_dir(path)) {
        char *a = mp_path_join(path, "model.safetensors");
        char *b = mp_path_join(path, "model.safetensors.index.json");
        int st = (a && mp_exists(a)) || (b && mp_exists(b));
        free(a);
        free(b);
        if (st) return 0;
        DIR *d = opendir(path);
        if (!d) return 0;
        int found = 0;
        for (struct dirent *e; !found && (e = readdir(d));)
            found = e->d_name[0] != '.' && has_suffix(e->d_name, ".gguf");
        closedir(d);
        return found;
    }
    if (has_suffix(path, ".gguf")) return 1;
    mp_file *f = NULL;
    mp_err err = MP_ERR_INIT;
    if (mp_file_open(&f, path, &err) != MP_OK) return 0;
    uint8_t m[4];
    int yes = f->size >= 4 && mp_file_pread(f, 0, m, 4, &err) == MP_OK && memcmp(m, "GGUF", 4) == 0;
    mp_file_close(f);
    return yes;
}

mp_errcode mp_gguf_open(mp_gguf **out, const char *path, mp_err *err)
{
    *out = NULL;
    mp_gguf *g = calloc(1, sizeof *g);
    if (!g) return mp_errf(err, MP_E_NOMEM, "out of memory");
    char *first = NULL;
    mp_errcode rc = MP_OK;
    if (mp_is_dir(path)) {
        g->dir = mp_strdup(path);
        if (!g->dir) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        else rc = pick_in_dir(path, &first, err);
    } else {
        const char *slash = strrchr(path, '/');
        g->dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : mp_strdup(".");
        first = mp_strdup(slash ? slash + 1 : path);
        if (!g->dir || !first) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    if (rc == MP_OK) rc = open_split_set(g, first, err);
    free(first);
    if (rc == MP_OK && g->n_tensors) {
        g->by_name = malloc(g->n_tensors * sizeof *g->by_name);
        if (!g->by_name) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    if (rc == MP_OK && g->n_tensors) {
        for (size_t i = 0; i < g->n_tensors; i++) g->by_name[i] = &g->tensors[i];
        qsort(g->by_name, g->n_tensors, sizeof *g->by_name, cmp_tensor_ptr);
        for (size_t i = 1; i < g->n_tensors && rc == MP_OK; i++) {
            const mp_gguf_tensor *a = g->by_name[i - 1], *b = g->by_name[i];
            if (strcmp(a->name, b->name) != 0) continue;
            if (a->file == b->file)
                rc = mp_errf_at(err, MP_E_INPUT, g->files[b->file].f->path, b->name, -1,
                                "duplicate tensor name");
            else
                rc = mp_errf_at(err, MP_E_INPUT, g->files[b->file].f->path, b->name, -1,
                                "tensor is duplicated: also in '%s'", g->files[a->file].name);
        }
    }
    if (rc != MP_OK) {
        mp_gguf_close(g);
        return rc;
    }
    *out = g;
    return MP_OK;
}

void mp_gguf_close(mp_gguf *g)
{
    if (!g) return;
    for (size_t i = 0; i < g->n_files; i++) release_file(&g->files[i]);
    free(g->files);
    for (size_t i = 0; i < g->cap_tensors; i++) free(g->tensors[i].name);
    free(g->tensors);
    free(g->by_name);
    free(g->dir);
    free(g);
}

/* ---------------------------------------------------------------- accessors */

uint32_t mp_gguf_version(const mp_gguf *g) { return g->files[0].version; }
uint32_t mp_gguf_alignment(const mp_gguf *g) { return g->files[0].alignment; }
const char *mp_gguf_dir(const mp_gguf *g) { return g->dir; }
size_t mp_gguf_n_kv(const mp_gguf *g) { return g->files[0].n_kv; }
const mp_gguf_kv *mp_gguf_kv_at(const mp_gguf *g, size_t i) { return &g->files[0].kv[i]; }

const mp_gguf_kv *mp_gguf_find_kv(const mp_gguf *g, const char *key)
{
    return file_kv(&g->files[0], key);
}

int mp_gguf_get_int(const mp_gguf *g, const char *key, int64_t *out)
{
    const mp_gguf_kv *kv = mp_gguf_find_kv(g, key);
    if (!kv) return 0;
    switch (kv->type) {
    case MP_GGUF_V_U8: case MP_GGUF_V_U16: case MP_GGUF_V_U32: case MP_GGUF_V_U64:
        if (kv->v.u > (uint64_t)INT64_MAX) return 0;
        *out = (int64_t)kv->v.u;
        return 1;
    case MP_GGUF_V_I8: case MP_GGUF_V_I16: case MP_GGUF_V_I32: case MP_GGUF_V_I64:
        *out = kv->v.i;
        return 1;
    default:
        return 0;
    }
}

int mp_gguf_get_float(const mp_gguf *g, const char *key, double *out)
{
    const mp_gguf_kv *kv = mp_gguf_find_kv(g, key);
    if (!kv) return 0;
    if (kv->type == MP_GGUF_V_F32 || kv->type == MP_GGUF_V_F64) {
        *out = kv->v.f;
        return 1;
    }
    int64_t i;
    if (!mp_gguf_get_int(g, key, &i)) return 0;
    *out = (double)i;
    return 1;
}

const char *mp_gguf_get_str(const mp_gguf *g, const char *key)
{
    const mp_gguf_kv *kv = mp_gguf_find_kv(g, key);
    return kv && kv->type == MP_GGUF_V_STR ? kv->str : NULL;
}

static const gguf_file *kv_file(const mp_gguf *g, const mp_gguf_kv *kv)
{
    for (size_t i = 0; i < g->n_files; i++)
        if (kv >= g->files[i].kv && kv < g->files[i].kv + g->files[i].n_kv) return &g->files[i];
    return &g->files[0];
}

mp_errcode mp_gguf_arr_get(const mp_gguf *g, const mp_gguf_kv *kv, uint64_t i, void *buf,
                           size_t cap, uint64_t *len, mp_err *err)
{
    const mp_file *f = kv_file(g, kv)->f;
    if (kv->type != MP_GGUF_V_ARR || i >= kv->n)
        return mp_errf_at(err, MP_E_INPUT, f->path, NULL, -1, "key '%s' has no element %llu",
                          kv->key, (unsigned long long)i);
    uint64_t at = kv->value_offset + 8;
    if (kv->elem != MP_GGUF_V_STR) {
        size_t s = vtype_traits[kv->elem].size;
        if (len) *len = s;
        return mp_file_pread(f, at + i * s, buf, s < cap ? s : cap, err);
    }
    uint8_t b[8];
    uint64_t n = 0;
    for (uint64_t k = 0;; k++) {
        MP_FORWARD(mp_file_pread(f, at, b, 8, err));
        n = mp_read_le64(b);
        at += 8;
        if (k == i) break;
        at += n; /* validated on open: inside the file */
    }
    if (len) *len = n;
    if (cap == 0) return MP_OK;
    size_t take = n < cap - 1 ? (size_t)n : cap - 1;
    MP_FORWARD(mp_file_pread(f, at, buf, take, err));
    ((char *)buf)[take] = '\0';
    return MP_OK;
}

size_t mp_gguf_n_tensors(const mp_gguf *g) { return g->n_tensors; }
const mp_gguf_tensor *mp_gguf_tensor_at(const mp_gguf *g, size_t i) { return &g->tensors[i]; }

const mp_gguf_tensor *mp_gguf_find(const mp_gguf *g, const char *name)
{
    size_t lo = 0, hi = g->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(g->by_name[mid]->name, name);
        if (r == 0) return g->by_name[mid];
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

size_t mp_gguf_n_files(const mp_gguf *g) { return g->n_files; }
const char *mp_gguf_file_name(const mp_gguf *g, size_t i) { return g->files[i].name; }
const mp_file *mp_gguf_file(const mp_gguf *g, size_t i) { return g->files[i].f; }
uint64_t mp_gguf_data_offset(const mp_gguf *g, size_t i) { return g->files[i].data_offset; }

const uint8_t *mp_gguf_file_map(const mp_gguf *g, size_t i)
{
    gguf_file *gf = &g->files[i];
    void *p = __atomic_load_n(&gf->map, __ATOMIC_ACQUIRE);
    if (p || gf->f->size == 0 || gf->f->size > SIZE_MAX) return p;
    struct stat st;
    if (fstat(gf->f->fd, &st) != 0 || (uint64_t)st.st_size < gf->f->size) return NULL;
    if (!(p = mp_map_file(gf->f->fd, 0, (size_t)gf->f->size, 0, gf->f->path))) return NULL;
    void *none = NULL; /* two threads may map at once: the first to publish wins */
    if (!__atomic_compare_exchange_n(&gf->map, &none, p, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        mp_unmap(p, (size_t)gf->f->size);
        return none;
    }
    gf->map_len = (size_t)gf->f->size;
    return p;
}

mp_errcode mp_gguf_read(const mp_gguf *g, const mp_gguf_tensor *t, uint64_t at, void *buf,
                        size_t len, mp_err *err)
{
    if (at > t->n_bytes || len > t->n_bytes - at)
        return mp_errf_at(err, MP_E_INPUT, g->files[t->file].f->path, t->name, -1,
                          "read of %zu bytes at %llu is outside the tensor (%llu bytes)", len,
                          (unsigned long long)at, (unsigned long long)t->n_bytes);
    mp_errcode rc = mp_file_pread(g->files[t->file].f, t->offset + at, buf, len, err);
    if (rc != MP_OK && err && !err->tensor[0])
        snprintf(err->tensor, sizeof err->tensor, "%s", t->name);
    return rc;
}
