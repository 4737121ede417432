/*
 * inspect_gguf.c - `modelprep inspect X.gguf`: the metadata (long arrays summarized) and the
 * tensors of a GGUF file or split set. Shapes are printed as GGUF stores them, ne[0] (the
 * contiguous row) first, as llama.cpp and gguf-py show them; the Hugging Face shape is the
 * reverse.
 */
#include "cli.h"
#include "../formats/formats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Arrays up to this many elements are shown whole; longer ones by their first elements. */
#define ARRAY_SHOWN 16
#define ARRAY_HEAD 8
#define STRING_SHOWN 64

/* A copy fit for one line of text or a JSON string: invalid UTF-8 bytes and NULs become '?'.
 * Owned by the caller. */
static char *printable(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out) return NULL;
    memcpy(out, s, n);
    out[n] = '\0';
    size_t at = 0;
    while (at < n) {
        size_t bad = mp_utf8_invalid_at(out + at, n - at);
        if (bad == SIZE_MAX) break;
        out[at + bad] = '?';
        at += bad + 1;
    }
    for (size_t i = 0; i < n; i++)
        if (out[i] == '\0') out[i] = '?';
    return out;
}

static void text_str(mp_buf *b, const char *s, uint64_t n)
{
    size_t take = n > STRING_SHOWN ? STRING_SHOWN : (size_t)n;
    char *p = printable(s, take);
    if (!p) {
        b->oom = 1;
        return;
    }
    mp_buf_json_str(b, p); /* quoted, control characters escaped: one line */
    if (n > take) mp_buf_printf(b, "... (%llu bytes)", (unsigned long long)n);
    free(p);
}

static void json_str_n(mp_buf *b, const char *s, uint64_t n)
{
    char *p = printable(s, (size_t)n);
    if (!p) {
        b->oom = 1;
        return;
    }
    mp_buf_json_str(b, p);
    free(p);
}

static void put_double(mp_buf *b, double v, int is_f32, int json)
{
    if (json && !isfinite(v)) mp_buf_puts(b, "null");
    else mp_buf_printf(b, is_f32 ? "%.9g" : "%.17g", v);
}

/* One scalar from its raw little-endian bytes. */
static void put_raw_scalar(mp_buf *b, mp_gguf_vtype t, const uint8_t *p, int json)
{
    uint64_t u = 0;
    size_t sz = mp_gguf_vtype_size(t);
    for (size_t i = sz; i-- > 0;) u = (u << 8) | p[i];
    switch (t) {
    case MP_GGUF_V_I8: mp_buf_printf(b, "%d", (int8_t)u); break;
    case MP_GGUF_V_I16: mp_buf_printf(b, "%d", (int16_t)u); break;
    case MP_GGUF_V_I32: mp_buf_printf(b, "%d", (int32_t)u); break;
    case MP_GGUF_V_I64: mp_buf_printf(b, "%lld", (long long)(int64_t)u); break;
    case MP_GGUF_V_BOOL: mp_buf_puts(b, u ? "true" : "false"); break;
    case MP_GGUF_V_F32: {
        float f;
        uint32_t v = (uint32_t)u;
        memcpy(&f, &v, 4);
        put_double(b, f, 1, json);
        break;
    }
    case MP_GGUF_V_F64: {
        double d;
        memcpy(&d, &u, 8);
        put_double(b, d, 0, json);
        break;
    }
    default: mp_buf_printf(b, "%llu", (unsigned long long)u);
    }
}

static void put_scalar(mp_buf *b, const mp_gguf_kv *kv, int json)
{
    switch (kv->type) {
    case MP_GGUF_V_STR:
        if (json) json_str_n(b, kv->str, kv->str_len);
        else text_str(b, kv->str, kv->str_len);
        break;
    case MP_GGUF_V_BOOL: mp_buf_puts(b, kv->v.u ? "true" : "false"); break;
    case MP_GGUF_V_F32: put_double(b, kv->v.f, 1, json); break;
    case MP_GGUF_V_F64: put_double(b, kv->v.f, 0, json); break;
    case MP_GGUF_V_I8: case MP_GGUF_V_I16: case MP_GGUF_V_I32: case MP_GGUF_V_I64:
        mp_buf_printf(b, "%lld", (long long)kv->v.i);
        break;
    default: mp_buf_printf(b, "%llu", (unsigned long long)kv->v.u);
    }
}

/* Elements [0, n) of an array, comma-separated. */
static mp_errcode put_elems(mp_buf *b, const mp_gguf *g, const mp_gguf_kv *kv, uint64_t n,
                            int json, mp_err *err)
{
    for (uint64_t i = 0; i < n; i++) {
        if (i) mp_buf_puts(b, ", ");
        if (kv->elem == MP_GGUF_V_STR) {
            char s[STRING_SHOWN * 4 + 1];
            uint64_t len;
            MP_FORWARD(mp_gguf_arr_get(g, kv, i, s, sizeof s, &len, err));
            size_t have = strlen(s);
            if (json && len < sizeof s) json_str_n(b, s, len);
            else if (json) json_str_n(b, s, have);
            else text_str(b, s, len < sizeof s ? len : have);
        } else {
            uint8_t raw[8];
            MP_FORWARD(mp_gguf_arr_get(g, kv, i, raw, sizeof raw, NULL, err));
            put_raw_scalar(b, kv->elem, raw, json);
        }
    }
    return MP_OK;
}

static int shape_len(const mp_gguf_tensor *t, char *buf, size_t cap)
{
    size_t n = 0;
    uint32_t nd = t->n_dims ? t->n_dims : 1;
    n += (size_t)snprintf(buf, cap, "[");
    for (uint32_t d = 0; d < nd && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%llu", d ? ", " : "", (unsigned long long)t->ne[d]);
    if (n < cap) n += (size_t)snprintf(buf + n, cap - n, "]");
    return (int)n;
}

typedef struct type_total {
    uint64_t tensors, bytes;
} type_total;

/* s made printable, control characters as '?'; NULL when out of memory. */
static char *printable_line(const char *s)
{
    char *p = printable(s, strlen(s));
    for (char *c = p; c && *c; c++)
        if ((unsigned char)*c < 0x20) *c = '?';
    return p;
}

/* The checkpoint, architecture and name lines. */
static mp_errcode human_header(mp_buf *b, const mp_gguf *g, const char *path, mp_err *err)
{
    size_t nf = mp_gguf_n_files(g);
    const char *arch = mp_gguf_get_str(g, "general.architecture");
    mp_buf_printf(b, "checkpoint:      %s (gguf v%u, %zu file%s%s, alignment %u)\n", path,
                  mp_gguf_version(g), nf, nf == 1 ? "" : "s", nf > 1 ? ", split set" : "",
                  mp_gguf_alignment(g));
    const char *name = mp_gguf_get_str(g, "general.name");
    char *pa = arch ? printable_line(arch) : NULL, *pn = name ? printable_line(name) : NULL;
    mp_errcode rc = (arch && !pa) || (name && !pn) ? mp_errf(err, MP_E_NOMEM, "out of memory") : MP_OK;
    if (rc == MP_OK) {
        mp_buf_printf(b, "architecture:    %s", pa ? pa : "unset");
        if (pn) mp_buf_printf(b, "\nname:            %s", pn);
    }
    free(pa);
    free(pn);
    return rc;
}

/* The metadata table: key, type, value (long arrays by their head). */
static mp_errcode human_metadata(mp_buf *b, const mp_gguf *g, mp_err *err)
{
    mp_buf_printf(b, "\n\nmetadata: %zu keys\n", mp_gguf_n_kv(g));
    size_t wk = 3;
    for (size_t i = 0; i < mp_gguf_n_kv(g); i++)
        if (strlen(mp_gguf_kv_at(g, i)->key) > wk) wk = strlen(mp_gguf_kv_at(g, i)->key);
    if (wk > 48) wk = 48;
    mp_buf_printf(b, "%-*s  %-9s  %s\n", (int)wk, "KEY", "TYPE", "VALUE");
    for (size_t i = 0; i < mp_gguf_n_kv(g); i++) {
        const mp_gguf_kv *kv = mp_gguf_kv_at(g, i);
        char *key = printable(kv->key, strlen(kv->key));
        if (!key) return mp_errf(err, MP_E_NOMEM, "out of memory");
        char type[16];
        if (kv->type == MP_GGUF_V_ARR) snprintf(type, sizeof type, "arr[%s]", mp_gguf_vtype_name(kv->elem));
        else snprintf(type, sizeof type, "%s", mp_gguf_vtype_name(kv->type));
        mp_buf_printf(b, "%-*s  %-9s  ", (int)wk, key, type);
        free(key);
        if (kv->type != MP_GGUF_V_ARR) {
            put_scalar(b, kv, 0);
        } else if (kv->n <= ARRAY_HEAD) {
            mp_buf_puts(b, "[");
            MP_FORWARD(put_elems(b, g, kv, kv->n, 0, err));
            mp_buf_puts(b, "]");
        } else {
            mp_buf_printf(b, "%llu items: [", (unsigned long long)kv->n);
            MP_FORWARD(put_elems(b, g, kv, 3, 0, err));
            mp_buf_puts(b, ", ...]");
        }
        mp_buf_puts(b, "\n");
    }
    return MP_OK;
}

/* The tensor table, then the files and the totals by type. */
static mp_errcode human_tensors(mp_buf *b, const mp_gguf *g, mp_err *err)
{
    size_t nt = mp_gguf_n_tensors(g), nf = mp_gguf_n_files(g);
    size_t wn = 4, ws = 5, wf = 4;
    char shape[128];
    for (size_t i = 0; i < nt; i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(g, i);
        size_t ls = (size_t)shape_len(t, shape, sizeof shape);
        if (strlen(t->name) > wn) wn = strlen(t->name);
        if (ls > ws) ws = ls;
    }
    for (size_t i = 0; i < nf; i++)
        if (strlen(mp_gguf_file_name(g, i)) > wf) wf = strlen(mp_gguf_file_name(g, i));
    type_total by_type[MP_GGUF_TYPE_COUNT];
    memset(by_type, 0, sizeof by_type);
    uint64_t elems = 0, bytes = 0;
    mp_buf_printf(b, "\n%-*s  %-7s  %-*s  %14s  %s\n", (int)wn, "NAME", "TYPE", (int)ws, "SHAPE", "BYTES", "FILE");
    for (size_t i = 0; i < nt; i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(g, i);
        shape_len(t, shape, sizeof shape);
        char *nm = printable(t->name, strlen(t->name));
        if (!nm) return mp_errf(err, MP_E_NOMEM, "out of memory");
        mp_buf_printf(b, "%-*s  %-7s  %-*s  %14llu  %s\n", (int)wn, nm, mp_gguf_type_name(t->type),
                      (int)ws, shape, (unsigned long long)t->n_bytes, mp_gguf_file_name(g, t->file));
        free(nm);
        by_type[t->type].tensors++;
        by_type[t->type].bytes += t->n_bytes;
        elems += t->n_elems;
        bytes += t->n_bytes;
    }
    mp_buf_puts(b, "\nfiles:\n");
    for (size_t i = 0; i < nf; i++)
        mp_buf_printf(b, "  %-*s  %14llu bytes\n", (int)wf, mp_gguf_file_name(g, i),
                      (unsigned long long)mp_gguf_file(g, i)->size);
    char hb[32];
    mp_fmt_bytes(bytes, hb, sizeof hb);
    mp_buf_printf(b, "\ntotals: %zu tensors, %llu parameters, %llu bytes (%s)\n", nt,
                  (unsigned long long)elems, (unsigned long long)bytes, hb);
    for (uint32_t t = 0; t < MP_GGUF_TYPE_COUNT; t++)
        if (by_type[t].tensors)
            mp_buf_printf(b, "  %-11s  %8llu tensors  %14llu bytes\n", mp_gguf_type_name(t),
                          (unsigned long long)by_type[t].tensors, (unsigned long long)by_type[t].bytes);
    return MP_OK;
}

static mp_errcode human(mp_buf *b, const mp_gguf *g, const char *path, mp_err *err)
{
    MP_FORWARD(human_header(b, g, path, err));
    MP_FORWARD(human_metadata(b, g, err));
    return human_tensors(b, g, err);
}

static mp_errcode json(mp_buf *b, const mp_gguf *g, const char *path, mp_err *err)
{
    size_t nt = mp_gguf_n_tensors(g), nf = mp_gguf_n_files(g);
    mp_buf_puts(b, "{\"path\": ");
    mp_buf_json_str(b, path);
    mp_buf_printf(b, ", \"format\": \"gguf\", \"version\": %u, \"alignment\": %u, \"split\": %s, "
                     "\"files\": [", mp_gguf_version(g), mp_gguf_alignment(g), nf > 1 ? "true" : "false");
    for (size_t i = 0; i < nf; i++) {
        mp_buf_puts(b, i ? ", {\"name\": " : "{\"name\": ");
        mp_buf_json_str(b, mp_gguf_file_name(g, i));
        mp_buf_printf(b, ", \"size\": %llu, \"data_offset\": %llu}",
                      (unsigned long long)mp_gguf_file(g, i)->size,
                      (unsigned long long)mp_gguf_data_offset(g, i));
    }
    mp_buf_puts(b, "],\n \"metadata\": {");
    for (size_t i = 0; i < mp_gguf_n_kv(g); i++) {
        const mp_gguf_kv *kv = mp_gguf_kv_at(g, i);
        mp_buf_puts(b, i ? ",\n  " : "\n  ");
        json_str_n(b, kv->key, strlen(kv->key));
        mp_buf_printf(b, ": {\"type\": \"%s\"", mp_gguf_vtype_name(kv->type));
        if (kv->type != MP_GGUF_V_ARR) {
            mp_buf_puts(b, ", \"value\": ");
            put_scalar(b, kv, 1);
        } else {
            mp_buf_printf(b, ", \"elem\": \"%s\", \"n\": %llu, \"%s\": [", mp_gguf_vtype_name(kv->elem),
                          (unsigned long long)kv->n, kv->n <= ARRAY_SHOWN ? "value" : "head");
            MP_FORWARD(put_elems(b, g, kv, kv->n <= ARRAY_SHOWN ? kv->n : ARRAY_HEAD, 1, err));
            mp_buf_puts(b, "]");
        }
        mp_buf_puts(b, "}");
    }
    mp_buf_puts(b, "},\n \"tensors\": [");
    type_total by_type[MP_GGUF_TYPE_COUNT];
    memset(by_type, 0, sizeof by_type);
    uint64_t elems = 0, bytes = 0;
    for (size_t i = 0; i < nt; i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(g, i);
        mp_buf_puts(b, i ? ",\n  {\"name\": " : "\n  {\"name\": ");
        json_str_n(b, t->name, strlen(t->name));
        mp_buf_printf(b, ", \"type\": \"%s\", \"shape\": [", mp_gguf_type_name(t->type));
        for (uint32_t d = 0; d < t->n_dims; d++)
            mp_buf_printf(b, "%s%llu", d ? ", " : "", (unsigned long long)t->ne[d]);
        mp_buf_printf(b, "], \"bytes\": %llu, \"file\": ", (unsigned long long)t->n_bytes);
        mp_buf_json_str(b, mp_gguf_file_name(g, t->file));
        mp_buf_printf(b, ", \"offset\": %llu}", (unsigned long long)t->offset);
        by_type[t->type].tensors++;
        by_type[t->type].bytes += t->n_bytes;
        elems += t->n_elems;
        bytes += t->n_bytes;
    }
    mp_buf_printf(b, "],\n \"totals\": {\"tensors\": %zu, \"parameters\": %llu, \"bytes\": %llu, "
                     "\"by_type\": {", nt, (unsigned long long)elems, (unsigned long long)bytes);
    int first = 1;
    for (uint32_t t = 0; t < MP_GGUF_TYPE_COUNT; t++) {
        if (!by_type[t].tensors) continue;
        mp_buf_printf(b, "%s\"%s\": {\"tensors\": %llu, \"bytes\": %llu}", first ? "" : ", ",
                      mp_gguf_type_name(t), (unsigned long long)by_type[t].tensors,
                      (unsigned long long)by_type[t].bytes);
        first = 0;
    }
    mp_buf_puts(b, "}}}\n");
    return MP_OK;
}

int mp_inspect_gguf(const mp_args *args, const char *path)
{
    mp_err err = MP_ERR_INIT;
    mp_gguf *g = NULL;
    if (mp_gguf_open(&g, path, &err) != MP_OK) return mp_cli_fail(&err);
    mp_buf b = MP_BUF_INIT;
    mp_errcode rc = mp_args_has(args, "json") ? json(&b, g, path, &err) : human(&b, g, path, &err);
    if (rc == MP_OK && b.oom) rc = mp_errf(&err, MP_E_NOMEM, "out of memory building the output");
    int code = 0;
    if (rc != MP_OK) code = mp_cli_fail(&err);
    else fwrite(b.data, 1, b.len, stdout);
    mp_buf_release(&b);
    mp_gguf_close(g);
    return code;
}
