/*
 * cmd_inspect.c - `modelprep inspect PATH [--json]`: what a checkpoint holds.
 */
#include "cli.h"
#include "../formats/formats.h"
#include "../convert/pipeline.h"

#include <string.h>

typedef struct dtype_total {
    uint64_t tensors, bytes;
} dtype_total;

typedef struct totals {
    uint64_t tensors, elements, bytes;
    dtype_total by_dtype[MP_DTYPE_COUNT];
} totals;

static void count(const mp_st_model *m, totals *t)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < mp_st_n_tensors(m); i++) {
        const mp_tensor *x = mp_st_tensor(m, i);
        t->tensors++;
        t->elements += x->n_elems;
        t->bytes += x->n_bytes;
        t->by_dtype[x->dtype].tensors++;
        t->by_dtype[x->dtype].bytes += x->n_bytes;
    }
}

/* Compressed files (zstd): how many, and their bytes on disk and decompressed. */
typedef struct packed_totals {
    size_t files;
    uint64_t disk, raw;
} packed_totals;

static void count_packed(const mp_st_model *m, packed_totals *p)
{
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < mp_st_n_files(m); i++) {
        if (mp_st_file_compression(m, i) == MP_COMPRESS_NONE) continue;
        p->files++;
        p->disk += mp_st_file(m, i)->size;
        p->raw += mp_st_file_raw_size(m, i);
    }
}

static double ratio_of(uint64_t raw, uint64_t disk) { return disk ? (double)raw / (double)disk : 0.0; }

static const char *tri(int v, const char *yes, const char *no)
{
    return v < 0 ? "unset" : v ? yes : no;
}

static void quant_line(const mp_quant_summary *q, char *buf, size_t cap)
{
    if (!q->present) {
        snprintf(buf, cap, "none");
        return;
    }
    char group[32];
    if (q->group_size == -1) snprintf(group, sizeof group, "per-channel");
    else if (q->group_size > 0) snprintf(group, sizeof group, "group %d", q->group_size);
    else snprintf(group, sizeof group, "group unset");
    char bits[48];
    if (q->mixed) {
        /* compressed-tensors groups that disagree: each one, as config.json gives it */
        int n = snprintf(buf, cap, "%s, %d config groups:", q->quant_method, q->config_groups);
        for (int i = 0; i < q->config_groups && i < MP_QUANT_GROUPS_SHOWN && n > 0 && (size_t)n < cap; i++) {
            const struct mp_quant_group *g = &q->groups[i];
            char gs[32];
            if (g->group_size == -1) snprintf(gs, sizeof gs, "per-channel");
            else if (g->group_size > 0) snprintf(gs, sizeof gs, "group %d", g->group_size);
            else snprintf(gs, sizeof gs, "group unset");
            n += snprintf(buf + n, cap - (size_t)n, " %s %d bits, %s, %s, actorder %s (targets %s);", g->name, g->bits, gs,
                          tri(g->sym, "symmetric", "asymmetric"), tri(g->desc_act, "on", "off"),
                          g->targets[0] ? g->targets : "none");
        }
        if (n > 0 && (size_t)n < cap && q->config_groups > MP_QUANT_GROUPS_SHOWN)
            n += snprintf(buf + n, cap - (size_t)n, " and %d more;", q->config_groups - MP_QUANT_GROUPS_SHOWN);
        if (n > 0 && (size_t)n < cap)
            snprintf(buf + n, cap - (size_t)n, " format %s (from %s)", q->format[0] ? q->format : "unset", q->source);
        return;
    }
    if (q->bits >= 0) snprintf(bits, sizeof bits, "%d bits", q->bits);
    else snprintf(bits, sizeof bits, "bits unset");
    snprintf(buf, cap, "%s, %s, %s, %s, desc_act %s, format %s (from %s)",
             q->quant_method[0] ? q->quant_method : "unknown method", bits, group,
             tri(q->sym, "symmetric", "asymmetric"), tri(q->desc_act, "on", "off"),
             q->format[0] ? q->format : "unset", q->source);
}

static const char *zero_desc(const mp_qlinear *q)
{
    if (q->zero == MP_QZERO_IMPLIED) return "implied";
    return q->zero_offset ? "z-1" : "z";
}

static const char *pack_desc(const mp_qlinear *q) { return q->scheme->name; }

/* The element: the codes' dtype, or what they decode through ("NF4"). */
static const char *elem_desc(const mp_qlinear *q) { return q->elem_text ? q->elem_text : mp_dtype_name(q->elem_dtype); }

/* "block 128x128", "group 32", "flat 64", "channel", "tensor" */
static void scale_grid_desc(const mp_qlinear *q, char *buf, size_t cap)
{
    if (q->scale_kind == MP_FSCALE_BLOCK)
        snprintf(buf, cap, "block %llux%llu", (unsigned long long)q->block_n, (unsigned long long)q->block_k);
    else if (q->scale_kind == MP_FSCALE_GROUP || q->scale_kind == MP_FSCALE_FLAT)
        snprintf(buf, cap, "%s %llu", mp_fscale_name(q->scale_kind), (unsigned long long)q->block_k);
    else
        snprintf(buf, cap, "%s", mp_fscale_name(q->scale_kind));
}

/* Float-quantized linears: element type, scale grid, scale dtype and what the scale does. */
/* "F32 multiply", "U8 nested multiply": the scale's dtype and what it does. */
static void scale_kind_desc(const mp_qlinear *q, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s %s", mp_dtype_name(q->scales->dtype), q->nested ? " nested" : "", q->scheme->scale_text);
}

static void print_float_linears(const mp_qmodel *qm, size_t w)
{
    size_t n = mp_qmodel_n_linears(qm);
    int sw = 13; /* the SCALE column: as wide as its longest entry */
    char kind[48];
    for (size_t i = 0; i < n; i++) {
        scale_kind_desc(mp_qmodel_linear(qm, i), kind, sizeof kind);
        sw = (int)strlen(kind) > sw ? (int)strlen(kind) : sw;
    }
    printf("\nfloat-quantized linears: %zu\n", n);
    printf("%-*s  %8s  %8s  %-8s  %-14s  %-11s  %-*s  %-13s  %s\n", (int)w, "LINEAR", "N", "K", "ELEMENT",
           "SCALES", "GRID", sw, "SCALE", "LAYOUT", "FORMAT");
    for (size_t i = 0; i < n; i++) {
        const mp_qlinear *q = mp_qmodel_linear(qm, i);
        char grid[40], cells[48];
        scale_grid_desc(q, grid, sizeof grid);
        snprintf(cells, sizeof cells, "[%llu, %llu]", (unsigned long long)q->scale_rows,
                 (unsigned long long)q->scale_cols);
        scale_kind_desc(q, kind, sizeof kind);
        printf("%-*s  %8llu  %8llu  %-8s  %-14s  %-11s  %-*s  %-13s  %s %s\n", (int)w, q->prefix,
               (unsigned long long)q->n_rows, (unsigned long long)q->k_cols, elem_desc(q),
               grid, cells, sw, kind, pack_desc(q), mp_qmethod_name(q->method), q->format);
    }
}

static void print_linears(const mp_qmodel *qm)
{
    size_t n = mp_qmodel_n_linears(qm);
    if (n && mp_qmodel_linear(qm, 0)->scheme->elem != MP_ELEM_INT) {
        size_t w = 6;
        for (size_t i = 0; i < n; i++)
            if (strlen(mp_qmodel_linear(qm, i)->prefix) > w) w = strlen(mp_qmodel_linear(qm, i)->prefix);
        print_float_linears(qm, w);
    } else if (n) {
        size_t w = 6;
        for (size_t i = 0; i < n; i++)
            if (strlen(mp_qmodel_linear(qm, i)->prefix) > w) w = strlen(mp_qmodel_linear(qm, i)->prefix);
        printf("\nquantized linears: %zu\n", n);
        printf("%-*s  %8s  %8s  %4s  %6s  %-4s  %-9s  %-18s  %-7s  %s\n", (int)w, "LINEAR", "N", "K", "BITS",
               "GROUP", "SYM", "ACT-ORDER", "LAYOUT", "ZEROS", "FORMAT");
        for (size_t i = 0; i < n; i++) {
            const mp_qlinear *q = mp_qmodel_linear(qm, i);
            printf("%-*s  %8llu  %8llu  %4u  %6llu  %-4s  %-9s  %-18s  %-7s  %s %s\n", (int)w, q->prefix,
                   (unsigned long long)q->n_rows, (unsigned long long)q->k_cols, q->bits,
                   (unsigned long long)q->group_size, q->sym ? "yes" : "no",
                   q->act_order ? "yes" : "no", pack_desc(q), zero_desc(q),
                   mp_qmethod_name(q->method), q->format);
        }
    }
    size_t d = mp_qmodel_n_dense_linears(qm);
    if (mp_qmodel_quantized(qm) && d) {
        printf("\nunquantized linears: %zu\n", d);
        for (size_t i = 0; i < d; i++) printf("  %s\n", mp_qmodel_dense_linear(qm, i));
    }
}

static void print_human(const mp_st_model *m, const mp_qmodel *qm, const char *path,
                        const mp_hf_config *cfg)
{
    totals t;
    count(m, &t);
    packed_totals pk;
    count_packed(m, &pk);
    printf("checkpoint:      %s (safetensors, %zu file%s%s%s)\n", path, mp_st_n_files(m),
           mp_st_n_files(m) == 1 ? "" : "s", mp_st_is_sharded(m) ? ", " : "",
           mp_st_is_sharded(m) ? mp_st_index_name(m) : "");
    if (pk.files)
        printf("compression:     zstd, %zu of %zu files, %llu bytes on disk for %llu (ratio %.2f)\n",
               pk.files, mp_st_n_files(m), (unsigned long long)pk.disk, (unsigned long long)pk.raw,
               ratio_of(pk.raw, pk.disk));
    if (cfg->present) {
        printf("architecture:    %s (model_type %s)\n",
               cfg->architecture[0] ? cfg->architecture : "unknown",
               cfg->model_type[0] ? cfg->model_type : "unset");
        if (cfg->num_hidden_layers >= 0) printf("layers:          %lld\n", (long long)cfg->num_hidden_layers);
        else printf("layers:          unset\n");
        printf("tied embeddings: %s\n", tri(cfg->tie_word_embeddings, "yes", "no"));
        if (cfg->torch_dtype[0]) printf("torch_dtype:     %s\n", cfg->torch_dtype);
    } else {
        printf("config.json:     none\n");
    }
    char q[2048];
    quant_line(&cfg->quant, q, sizeof q);
    printf("quantization:    %s\n\n", q);

    size_t wn = 4, wd = 5, ws = 5, wf = 4;
    char shape[160];
    for (size_t i = 0; i < mp_st_n_tensors(m); i++) {
        const mp_tensor *x = mp_st_tensor(m, i);
        mp_shape_format(x, shape, sizeof shape);
        size_t ln = strlen(x->name), ls = strlen(shape), lf = strlen(mp_st_file_name(m, x->file));
        if (ln > wn) wn = ln;
        if (strlen(mp_dtype_name(x->dtype)) > wd) wd = strlen(mp_dtype_name(x->dtype));
        if (ls > ws) ws = ls;
        if (lf > wf) wf = lf;
    }
    printf("%-*s  %-*s  %-*s  %14s  %s\n", (int)wn, "NAME", (int)wd, "DTYPE", (int)ws, "SHAPE", "BYTES", "FILE");
    for (size_t i = 0; i < mp_st_n_tensors(m); i++) {
        const mp_tensor *x = mp_st_tensor(m, i);
        mp_shape_format(x, shape, sizeof shape);
        printf("%-*s  %-*s  %-*s  %14llu  %s\n", (int)wn, x->name, (int)wd, mp_dtype_name(x->dtype), (int)ws,
               shape, (unsigned long long)x->n_bytes, mp_st_file_name(m, x->file));
    }
    printf("\nfiles:\n");
    for (size_t i = 0; i < mp_st_n_files(m); i++) {
        printf("  %-*s  %14llu bytes", (int)wf, mp_st_file_name(m, i),
               (unsigned long long)mp_st_file(m, i)->size);
        if (mp_st_file_compression(m, i) == MP_COMPRESS_ZSTD)
            printf("  zstd, %llu uncompressed (ratio %.2f)", (unsigned long long)mp_st_file_raw_size(m, i),
                   ratio_of(mp_st_file_raw_size(m, i), mp_st_file(m, i)->size));
        printf("\n");
    }
    char human[32];
    mp_fmt_bytes(t.bytes, human, sizeof human);
    printf("\ntotals: %llu tensors, %llu parameters, %llu bytes (%s)\n",
           (unsigned long long)t.tensors, (unsigned long long)t.elements,
           (unsigned long long)t.bytes, human);
    for (int d = MP_DTYPE_COUNT - 1; d >= 0; d--) {
        if (!t.by_dtype[d].tensors) continue;
        printf("  %-11s  %8llu tensors  %14llu bytes\n", mp_dtype_name((mp_dtype)d),
               (unsigned long long)t.by_dtype[d].tensors, (unsigned long long)t.by_dtype[d].bytes);
    }
    print_linears(qm);
}

static void json_tri(mp_buf *b, int v)
{
    mp_buf_puts(b, v < 0 ? "null" : v ? "true" : "false");
}

/* ", "bits": B, "group_size": G, "sym": S, "desc_act": D' (null where unknown: bits < 0, group 0). */
static void json_quant_params(mp_buf *b, int bits, int group_size, int sym, int desc_act)
{
    mp_buf_puts(b, ", \"bits\": ");
    if (bits >= 0) mp_buf_printf(b, "%d", bits);
    else mp_buf_puts(b, "null");
    mp_buf_puts(b, ", \"group_size\": ");
    if (group_size != 0) mp_buf_printf(b, "%d", group_size);
    else mp_buf_puts(b, "null");
    mp_buf_puts(b, ", \"sym\": ");
    json_tri(b, sym);
    mp_buf_puts(b, ", \"desc_act\": ");
    json_tri(b, desc_act);
}

static void json_str_or_null(mp_buf *b, const char *s)
{
    if (s[0]) mp_buf_json_str(b, s);
    else mp_buf_puts(b, "null");
}

static void json_config(mp_buf *b, const mp_hf_config *cfg)
{
    if (!cfg->present && !cfg->quant.present) {
        mp_buf_puts(b, "null");
        return;
    }
    mp_buf_puts(b, "{\"architecture\": ");
    json_str_or_null(b, cfg->architecture);
    mp_buf_puts(b, ", \"model_type\": ");
    json_str_or_null(b, cfg->model_type);
    mp_buf_puts(b, ", \"num_hidden_layers\": ");
    if (cfg->num_hidden_layers >= 0) mp_buf_printf(b, "%lld", (long long)cfg->num_hidden_layers);
    else mp_buf_puts(b, "null");
    mp_buf_puts(b, ", \"tie_word_embeddings\": ");
    json_tri(b, cfg->tie_word_embeddings);
    mp_buf_puts(b, ", \"torch_dtype\": ");
    json_str_or_null(b, cfg->torch_dtype);
    mp_buf_puts(b, ", \"quantization\": ");
    const mp_quant_summary *q = &cfg->quant;
    if (!q->present) {
        mp_buf_puts(b, "null}");
        return;
    }
    mp_buf_puts(b, "{\"source\": ");
    mp_buf_json_str(b, q->source);
    mp_buf_puts(b, ", \"quant_method\": ");
    json_str_or_null(b, q->quant_method);
    mp_buf_puts(b, ", \"format\": ");
    json_str_or_null(b, q->format);
    json_quant_params(b, q->bits, q->group_size, q->sym, q->desc_act);
    if (q->config_groups) {
        mp_buf_printf(b, ", \"n_config_groups\": %d, \"config_groups\": [", q->config_groups);
        for (int i = 0; i < q->config_groups && i < MP_QUANT_GROUPS_SHOWN; i++) {
            const struct mp_quant_group *g = &q->groups[i];
            mp_buf_puts(b, i ? ", {\"name\": " : "{\"name\": ");
            mp_buf_json_str(b, g->name);
            mp_buf_puts(b, ", \"targets\": ");
            mp_buf_json_str(b, g->targets);
            json_quant_params(b, g->bits, g->group_size, g->sym, g->desc_act);
            mp_buf_puts(b, "}");
        }
        mp_buf_puts(b, "]");
    }
    mp_buf_puts(b, "}}");
}

static void json_linears(mp_buf *b, const mp_qmodel *qm)
{
    mp_buf_puts(b, ",\n \"linears\": [");
    for (size_t i = 0; i < mp_qmodel_n_linears(qm); i++) {
        const mp_qlinear *q = mp_qmodel_linear(qm, i);
        mp_buf_puts(b, i ? ",\n  {\"prefix\": " : "\n  {\"prefix\": ");
        mp_buf_json_str(b, q->prefix);
        mp_buf_printf(b, ", \"method\": \"%s\", \"format\": ", mp_qmethod_name(q->method));
        mp_buf_json_str(b, q->format);
        mp_buf_printf(b, ", \"layout\": \"%s\", \"zeros\": \"%s\", \"n\": %llu, \"k\": %llu, "
                         "\"bits\": %u, \"group_size\": %llu, \"groups\": %llu, \"sym\": %s, "
                         "\"act_order\": %s}",
                      pack_desc(q), zero_desc(q), (unsigned long long)q->n_rows,
                      (unsigned long long)q->k_cols, q->bits, (unsigned long long)q->group_size,
                      (unsigned long long)q->n_groups, q->sym ? "true" : "false",
                      q->act_order ? "true" : "false");
        if (q->scheme->elem != MP_ELEM_INT) {
            b->len--; /* reopen the object */
            mp_buf_printf(b, ", \"element\": \"%s\", \"scale_kind\": \"%s\", \"block\": [%llu, %llu], "
                             "\"scale_grid\": [%llu, %llu], \"scale_dtype\": \"%s\", \"scale_op\": \"%s\", "
                             "\"nested\": %s}",
                          elem_desc(q), mp_fscale_name(q->scale_kind),
                          (unsigned long long)q->block_n, (unsigned long long)q->block_k,
                          (unsigned long long)q->scale_rows, (unsigned long long)q->scale_cols,
                          mp_dtype_name(q->scales->dtype), q->scheme->scale_text, q->nested ? "true" : "false");
        }
    }
    mp_buf_puts(b, "],\n \"unquantized_linears\": [");
    for (size_t i = 0; i < mp_qmodel_n_dense_linears(qm); i++) {
        if (i) mp_buf_puts(b, ", ");
        mp_buf_json_str(b, mp_qmodel_dense_linear(qm, i));
    }
    mp_buf_puts(b, "]");
}

static void json_doc(mp_buf *b, const mp_st_model *m, const mp_qmodel *qm, const char *path,
                     const mp_hf_config *cfg)
{
    totals t;
    count(m, &t);
    mp_buf_puts(b, "{\"path\": ");
    mp_buf_json_str(b, path);
    mp_buf_printf(b, ", \"format\": \"safetensors\", \"sharded\": %s, \"files\": [",
                  mp_st_is_sharded(m) ? "true" : "false");
    for (size_t i = 0; i < mp_st_n_files(m); i++) {
        mp_buf_puts(b, i ? ", {\"name\": " : "{\"name\": ");
        mp_buf_json_str(b, mp_st_file_name(m, i));
        mp_buf_printf(b, ", \"size\": %llu, ", (unsigned long long)mp_st_file(m, i)->size);
        if (mp_st_file_compression(m, i) == MP_COMPRESS_ZSTD)
            mp_buf_printf(b, "\"compression\": \"zstd\", \"uncompressed_size\": %llu, ",
                          (unsigned long long)mp_st_file_raw_size(m, i));
        mp_buf_printf(b, "\"header_bytes\": %llu, \"metadata\": {",
                      (unsigned long long)mp_st_header_len(m, i));
        for (size_t j = 0; j < mp_st_file_n_meta(m, i); j++) {
            const char *k, *v;
            mp_st_file_meta(m, i, j, &k, &v);
            if (j) mp_buf_puts(b, ", ");
            mp_buf_json_str(b, k);
            mp_buf_puts(b, ": ");
            mp_buf_json_str(b, v);
        }
        mp_buf_puts(b, "}}");
    }
    mp_buf_puts(b, "], ");
    packed_totals pk;
    count_packed(m, &pk);
    if (pk.files)
        mp_buf_printf(b, "\"compression\": {\"format\": \"zstd\", \"files\": %zu, \"compressed_bytes\": "
                         "%llu, \"uncompressed_bytes\": %llu, \"ratio\": %.3f}, ",
                      pk.files, (unsigned long long)pk.disk, (unsigned long long)pk.raw,
                      ratio_of(pk.raw, pk.disk));
    mp_buf_puts(b, "\"config\": ");
    json_config(b, cfg);
    mp_buf_puts(b, ", \"tensors\": [");
    for (size_t i = 0; i < mp_st_n_tensors(m); i++) {
        const mp_tensor *x = mp_st_tensor(m, i);
        mp_buf_puts(b, i ? ",\n  {\"name\": " : "\n  {\"name\": ");
        mp_buf_json_str(b, x->name);
        mp_buf_printf(b, ", \"dtype\": \"%s\", \"shape\": [", mp_dtype_name(x->dtype));
        for (uint32_t d = 0; d < x->n_dims; d++)
            mp_buf_printf(b, "%s%llu", d ? ", " : "", (unsigned long long)x->shape[d]);
        mp_buf_printf(b, "], \"bytes\": %llu, \"file\": ", (unsigned long long)x->n_bytes);
        mp_buf_json_str(b, mp_st_file_name(m, x->file));
        mp_buf_printf(b, ", \"offset\": %llu}", (unsigned long long)x->offset);
    }
    mp_buf_printf(b, "]");
    json_linears(b, qm);
    mp_buf_printf(b, ",\n \"totals\": {\"tensors\": %llu, \"parameters\": %llu, \"bytes\": %llu, "
                     "\"by_dtype\": {",
                  (unsigned long long)t.tensors, (unsigned long long)t.elements,
                  (unsigned long long)t.bytes);
    int first = 1;
    for (int d = MP_DTYPE_COUNT - 1; d >= 0; d--) {
        if (!t.by_dtype[d].tensors) continue;
        mp_buf_printf(b, "%s\"%s\": {\"tensors\": %llu, \"bytes\": %llu}", first ? "" : ", ",
                      mp_dtype_name((mp_dtype)d), (unsigned long long)t.by_dtype[d].tensors,
                      (unsigned long long)t.by_dtype[d].bytes);
        first = 0;
    }
    mp_buf_puts(b, "}}}\n");
}

int cmd_inspect(const mp_args *args)
{
    const char *path = args->pos[0];
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    mp_qmodel *qm = NULL;
    mp_hf_config cfg;
    if (mp_gguf_probe(path)) return mp_inspect_gguf(args, path);
    if (mp_st_open(&m, path, &err) != MP_OK) return mp_cli_fail(&err);
    if (mp_refuse_one_shard(path, m, &err) != MP_OK || mp_hf_config_load(&cfg, mp_st_dir(m), &err) != MP_OK ||
        mp_st_check_name_numbers(m, &cfg, &err) != MP_OK ||
        mp_qmodel_open(&qm, m, &err) != MP_OK) {
        mp_st_close(m);
        return mp_cli_fail(&err);
    }
    int rc = 0;
    if (mp_args_has(args, "json")) {
        mp_buf b = MP_BUF_INIT;
        json_doc(&b, m, qm, path, &cfg);
        if (b.oom) {
            mp_errf(&err, MP_E_NOMEM, "out of memory building the JSON document");
            rc = mp_cli_fail(&err);
        } else {
            fwrite(b.data, 1, b.len, stdout);
        }
        mp_buf_release(&b);
    } else {
        print_human(m, qm, path, &cfg);
    }
    mp_qmodel_free(qm);
    mp_st_close(m);
    return rc;
}
