/*
 * cmd_split.c - `modelprep split SRC DST`: one safetensors file per module.
 */
#include "cli.h"
#include "progress.h"
#include "../convert/split.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "zstd" or "zstd:LEVEL" with LEVEL in 1..19; returns the level, or 0 after a usage error
 * (reported). */
static int parse_compress(const mp_args *a, const char *v)
{
    if (strcmp(v, "zstd") == 0) return MP_ZSTD_LEVEL_DEFAULT;
    if (strncmp(v, "zstd:", 5) != 0) {
        mp_cli_usage_error(a->cmd, "--compress wants zstd or zstd:LEVEL, not '%s'", v);
        return 0;
    }
    const char *lv = v + 5;
    char *end = NULL;
    long level = strtol(lv, &end, 10);
    if (*lv < '0' || *lv > '9' || *end != '\0' || level < MP_ZSTD_LEVEL_MIN || level > MP_ZSTD_LEVEL_MAX) {
        mp_cli_usage_error(a->cmd, "--compress zstd:LEVEL wants a level from %d to %d, not '%s'",
                           MP_ZSTD_LEVEL_MIN, MP_ZSTD_LEVEL_MAX, lv);
        return 0;
    }
    return (int)level;
}

/* DST from the command line: the second argument, or <SRC>/splitted_model with
 * --into-checkpoint (SRC a directory: the checkpoint folder the runtimes are given). NULL after a
 * usage error (reported); the caller frees it. */
static char *destination(const mp_args *a, int into)
{
    if (!into && a->n_pos < 2) {
        mp_cli_usage_error(a->cmd, "missing argument");
        return NULL;
    }
    if (!into) return mp_strdup(a->pos[1]);
    if (a->n_pos > 1) {
        mp_cli_usage_error(a->cmd, "--into-checkpoint writes SRC/splitted_model; give no DST ('%s')", a->pos[1]);
        return NULL;
    }
    if (!mp_is_dir(a->pos[0])) {
        mp_cli_usage_error(a->cmd, "--into-checkpoint needs SRC to be the checkpoint directory, not '%s'",
                           a->pos[0]);
        return NULL;
    }
    return mp_path_join(a->pos[0], "splitted_model");
}

/* What the layout is for, on stdout after the summary (doc/split-runtimes.md). */
static void layout_line(const mp_split_opts *o, const mp_split_result *r)
{
    const mp_runtime_traits *t = mp_runtime_get(r->runtime);
    if (r->runtime == MP_RUNTIME_PLAIN)
        printf("layout: plain, without .done markers%s\n",
               o->zstd_level ? "; AirLLM and RabbitLLM read no .safetensors.zst"
               : r->gguf_source ? "; AirLLM and RabbitLLM do not load a GGUF-source split (raw ggml blocks): "
                                  "convert it first (--to f16)"
                                : "; AirLLM and RabbitLLM would split the checkpoint again");
    else
        printf("layout: %s's%s: a .done marker beside each layer file%s\n", t->title,
               r->runtime == MP_RUNTIME_RABBITLLM ? " (AirLLM loads it too)" : "",
               r->empty_head ? "; lm_head.safetensors holds no tensors (the runtime takes the tied embedding)" : "");
}

/* The options into o. -1, or the exit code. */
static int parse_options(const mp_args *a, mp_split_opts *o)
{
    const char *rt = mp_args_get(a, "for");
    if (rt && mp_runtime_parse(rt, &o->runtime) != 0)
        return mp_cli_usage_error(a->cmd, "--for wants airllm, rabbitllm or plain, not '%s'", rt);
    o->runtime_given = rt != NULL;
    o->into_checkpoint = mp_args_has(a, "into-checkpoint");
    o->materialize_tied = mp_args_has(a, "materialize-tied");
    o->resume = mp_args_has(a, "resume");
    o->force = mp_args_has(a, "force");
    o->quiet = mp_args_has(a, "quiet"); /* argc/argv: mp_cli_part's canonical copy */
    const char *compress = mp_args_get(a, "compress");
    if (compress && !(o->zstd_level = parse_compress(a, compress))) return 2;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = cores > 0 ? (int)(cores < 1024 ? cores : 1024) : 1;
    const char *gs = mp_args_get(a, "gguf-split");
    if (gs) {
        char *end;
        long v = strtol(gs, &end, 10);
        if (*gs == '\0' || *end != '\0' || v < 1 || v > 9999)
            return mp_cli_usage_error(a->cmd, "--gguf-split wants a number of files from 1 to 9999, not '%s'", gs);
        o->gguf_split = (unsigned)v;
    }
    return mp_cli_threads(a, &o->threads);
}

static void print_json(const char *dst, const mp_split_opts *o, const mp_split_result *r, double ratio, double mbs)
{
    printf("{\"status\": \"ok\", \"destination\": ");
    mp_buf b = MP_BUF_INIT;
    mp_buf_json_str(&b, dst);
    fwrite(b.data, 1, b.len, stdout);
    mp_buf_release(&b);
    printf(", \"files\": %zu, \"tensors\": %zu, \"extra_tensors\": %zu, \"resumed_files\": %zu, "
           "\"tied_alias\": %s, \"bytes\": %llu, \"seconds\": %.3f",
           r->n_files, r->n_tensors, r->n_extra, r->n_resumed, r->tied ? "true" : "false",
           (unsigned long long)r->bytes, r->seconds);
    printf(", \"for\": \"%s\", \"done_markers\": %s, \"empty_head\": %s", mp_runtime_get(r->runtime)->name,
           mp_runtime_get(r->runtime)->done_markers ? "true" : "false", r->empty_head ? "true" : "false");
    if (o->zstd_level)
        printf(", \"compression\": {\"format\": \"zstd\", \"level\": %d, \"uncompressed_bytes\": %llu, "
               "\"compressed_bytes\": %llu, \"ratio\": %.3f, \"mb_per_s\": %.1f}",
               o->zstd_level, (unsigned long long)r->layer_bytes, (unsigned long long)r->disk_bytes,
               ratio, mbs);
    else
        printf(", \"compression\": null, \"mb_per_s\": %.1f", mbs);
    printf("}\n");
}

static void print_summary(const mp_args *a, const char *dst, const mp_split_opts *o, const mp_split_result *r,
                          double ratio, double mbs)
{
    char human[32];
    mp_fmt_bytes(r->bytes, human, sizeof human);
    printf("split %s into %s: %zu files, %zu tensors (%s)%s%s%s%s\n", a->pos[0], dst,
           r->n_files, r->n_tensors, human,
           r->tied ? "; " : "", r->tied ? r->tied_name : "",
           r->tied ? (o->materialize_tied ? " written from the tied embedding"
                                          : " recorded as an alias of the embedding")
                   : "",
           r->n_extra ? "; tensors that match no layer rule are in extra.safetensors" : "");
    if (o->zstd_level) {
        char packed[32];
        mp_fmt_bytes(r->disk_bytes, packed, sizeof packed);
        mp_fmt_bytes(r->layer_bytes, human, sizeof human);
        printf("zstd level %d: %s -> %s (ratio %.2f), %.1f MB/s\n", o->zstd_level, human, packed,
               ratio, mbs);
    }
    if (!o->gguf_split) layout_line(o, r);
    if (r->n_resumed) printf("resumed: %zu files kept from the interrupted run\n", r->n_resumed);
}

int cmd_split(const mp_args *a)
{
    mp_split_opts o;
    memset(&o, 0, sizeof o);
    int prc = parse_options(a, &o);
    if (prc >= 0) return prc;
    char *dst = destination(a, o.into_checkpoint);
    if (!dst) return 2;
    o.interrupted = mp_cli_catch_signals();
    mp_progress bar = {0};
    o.progress = mp_progress_event;
    o.progress_user = &bar;

    mp_buf opts = MP_BUF_INIT;
    prc = mp_cli_part(a, &o.part, &opts, &o.argv, &o.argc);
    if (prc >= 0) {
        mp_buf_release(&opts);
        free(o.argv);
        free(dst);
        return prc;
    }
    mp_err err = MP_ERR_INIT;
    mp_split_result r;
    mp_errcode rc = mp_split_run(a->pos[0], dst, &o, &r, &err);
    mp_buf_release(&opts);
    free(o.argv);
    if (rc != MP_OK) {
        free(dst);
        return mp_cli_fail_job(&err);
    }
    if (o.part.count || o.part.merge) {
        int json = mp_args_has(a, "json");
        if (json) printf("{\"status\": \"ok\"");
        if (json || !o.quiet)
            mp_cli_part_summary(&o.part, r.job_id, r.part_count, r.part_files, r.n_files, r.part_done, r.merged, dst,
                                json);
        if (json) printf("}\n");
        free(dst);
        return 0;
    }
    /* Compression ratio over the layer files; speed over the bytes this run wrote. */
    double ratio = r.disk_bytes ? (double)r.layer_bytes / (double)r.disk_bytes : 0.0;
    double mbs = r.write_seconds > 0 ? (double)r.written / r.write_seconds / 1e6 : 0.0;
    if (mp_args_has(a, "json")) print_json(dst, &o, &r, ratio, mbs);
    else if (!o.quiet) print_summary(a, dst, &o, &r, ratio, mbs);
    free(dst);
    return 0;
}
