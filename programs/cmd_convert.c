/*
 * cmd_convert.c - `modelprep convert SRC DST --to FORMAT`.
 *
 * FORMAT is f32, f16 or bf16 (every quantized linear dequantized by the CPU reference), or any
 * registry entry with the target role (formats.h): the codes, scales and zero points repacked
 * exactly into that layout. A GGUF source converts to the dense types. This file parses the
 * options and prints the summary.
 */
#include "cli.h"
#include "progress.h"
#include "../convert/pipeline.h"
#include "../convert/gguf_export.h"
#include "../repack/repack.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>


static const struct {
    const char *name;
    mp_target target;
} dense_targets[] = {{"f32", MP_TARGET_F32},     {"f16", MP_TARGET_F16},
                     {"bf16", MP_TARGET_BF16},    {"float32", MP_TARGET_F32}, /* torch spellings */
                     {"float16", MP_TARGET_F16},  {"bfloat16", MP_TARGET_BF16}};


/* --to gguf[:WEIGHTS]: a Hugging Face checkpoint as one GGUF file (gguf_export.c). */
/* `{"status": "ok", "destination": DST` of a --json summary; the caller adds the rest. */
static mp_buf json_head(const mp_args *a)
{
    mp_buf b = MP_BUF_INIT;
    mp_buf_puts(&b, "{\"status\": \"ok\", \"destination\": ");
    mp_buf_json_str(&b, a->pos[1]);
    return b;
}

static int cmd_convert_gguf(const mp_args *a, mp_gguf_to to)
{
    if (mp_gguf_probe(a->pos[0]))
        return mp_cli_usage_error(a->cmd, "the source is GGUF already; --to gguf takes a Hugging Face checkpoint");
    size_t dl = strlen(a->pos[1]);
    if (dl == 0 || a->pos[1][dl - 1] == '/')
        return mp_cli_usage_error(a->cmd, "--to gguf writes one file: DST must name it, as in OUT.gguf");
    static const char *const packed_only[] = {"int4", "scale-dtype", "stack-experts", "cast-dense", "part", "job-id"};
    for (size_t i = 0; i < sizeof packed_only / sizeof *packed_only; i++)
        if (mp_args_has(a, packed_only[i]))
            return mp_cli_usage_error(a->cmd, "--%s does not apply to --to gguf", packed_only[i]);
    mp_convert_opts o;
    memset(&o, 0, sizeof o);
    int trc = mp_cli_threads(a, &o.threads);
    if (trc >= 0) return trc;
    if (o.threads > 0) omp_set_num_threads(o.threads);
    o.force = mp_args_has(a, "force");
    o.quiet = mp_args_has(a, "quiet");
    o.argc = a->argc;
    o.argv = a->argv;
    o.interrupted = mp_cli_catch_signals();
    mp_gguf_export_opts x = {to, mp_args_has(a, "no-tokenizer"), 0};
    const char *shard = mp_args_get(a, "max-shard-size");
    if (shard && (mp_parse_size(shard, &x.split_bytes) || x.split_bytes == 0))
        return mp_cli_usage_error(a->cmd, "--max-shard-size wants a size such as 5GB or 500MiB, not '%s'", shard);
    mp_gguf_export_result r;
    mp_err err = MP_ERR_INIT;
    if (mp_gguf_export_run(a->pos[0], a->pos[1], &o, &x, &r, &err) != MP_OK) return mp_cli_fail_job(&err);
    if (mp_args_has(a, "json")) {
        mp_buf b = json_head(a);
        mp_buf_printf(&b, ", \"format\": \"gguf\", \"weights\": \"%s\", \"architecture\": \"%s\", "
                          "\"tokenizer_pre\": %s%s%s, \"file_type\": %u, \"lossless\": %s, "
                          "\"tensors\": %zu, \"repacked\": %zu, \"copied\": %zu, \"cast\": %zu, "
                          "\"dequantized\": %zu, \"quantized\": %zu, \"qk_permuted\": %zu, "
                          "\"files\": %zu, \"bytes\": %llu, \"seconds\": %.3f}\n",
                      mp_gguf_to_name(to), r.arch, r.pre[0] ? "\"" : "", r.pre[0] ? r.pre : "null",
                      r.pre[0] ? "\"" : "", r.file_type, r.lossless ? "true" : "false", r.n_tensors,
                      r.n_repacked, r.n_copied, r.n_cast, r.n_dequantized, r.n_quantized, r.n_permuted,
                      r.n_files, (unsigned long long)r.bytes, r.seconds);
        fwrite(b.data, 1, b.len, stdout);
        mp_buf_release(&b);
    } else if (!o.quiet) {
        char human[32];
        mp_fmt_bytes(r.bytes, human, sizeof human);
        printf("converted %s to %s (gguf %s, %s, file type %u%s): %zu tensors: %zu repacked, %zu copied, "
               "%zu cast, %zu dequantized, %zu quantized, %zu q/k permuted; tokenizer %s; %zu file%s, %s, "
               "%s.modelprep.json\n",
               a->pos[0], a->pos[1], r.arch, mp_gguf_to_name(to), r.file_type, r.lossless ? ", lossless" : "",
               r.n_tensors, r.n_repacked, r.n_copied, r.n_cast, r.n_dequantized, r.n_quantized,
               r.n_permuted, r.pre[0] ? r.pre : "none", r.n_files, r.n_files == 1 ? "" : "s", human, a->pos[1]);
    }
    return 0;
}

/* "--int4 wants u4 or s4, not 'x4'; did you mean 'u4'?" */
static int bad_choice(const mp_cmd *cmd, const char *what, const char *given, const char *const *choices, size_t n)
{
    const char *hint = mp_cli_suggest(given, choices, n);
    if (hint) return mp_cli_usage_error(cmd, "%s, not '%s'; did you mean '%s'?", what, given, hint);
    return mp_cli_usage_error(cmd, "%s, not '%s'", what, given);
}

static int unknown_format(const mp_cmd *cmd, const char *to)
{
    const char *names[sizeof dense_targets / sizeof *dense_targets + 64];
    char list[512] = "";
    size_t n = 0;
    for (size_t i = 0; i < 3; i++) names[n++] = dense_targets[i].name; /* not the torch aliases */
    for (size_t i = 0; i < mp_scheme_count() && n < sizeof names / sizeof *names; i++)
        if (mp_scheme_at(i)->roles & MP_SCHEME_TARGET) names[n++] = mp_scheme_at(i)->name;
    for (size_t i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    const char *hint = mp_cli_suggest(to, names, n);
    if (hint) return mp_cli_usage_error(cmd, "unknown format '%s'; did you mean '%s'? (%s)", to, hint, list);
    return mp_cli_usage_error(cmd, "unknown format '%s' (%s)", to, list);
}

/* --to into o: a dense target or a registry entry with the target role. -1, or the exit code. */
static int parse_target(const mp_args *a, const char *to, mp_convert_opts *o)
{
    size_t t = 0;
    while (t < sizeof dense_targets / sizeof *dense_targets && strcmp(dense_targets[t].name, to) != 0) t++;
    if (t < sizeof dense_targets / sizeof *dense_targets) {
        o->target = dense_targets[t].target;
        return -1;
    }
    if ((o->pack.target = mp_scheme_find(to)) && (o->pack.target->roles & MP_SCHEME_TARGET)) {
        o->packed = 1;
        return -1;
    }
    return unknown_format(a->cmd, to);
}

/* --int4, --stack-experts and --scale-dtype, which apply to packed targets. -1, or the exit code. */
static int parse_packed_options(const mp_args *a, mp_convert_opts *o)
{
    const char *int4 = mp_args_get(a, "int4");
    if (int4) {
        if (!o->packed || !o->pack.target->signed_int4)
            return mp_cli_usage_error(a->cmd, "--int4 applies to --to cutlass-int4 only");
        if (strcmp(int4, "s4") == 0) o->pack.s4 = 1;
        else if (strcmp(int4, "u4") != 0)
            return bad_choice(a->cmd, "--int4 wants u4 or s4", int4, (const char *const[]){"u4", "s4"}, 2);
    }
    if (mp_args_has(a, "stack-experts")) {
        if (!o->packed || !o->pack.target->signed_int4)
            return mp_cli_usage_error(a->cmd, "--stack-experts applies to --to cutlass-int4 only");
        o->stack_experts = 1;
    }
    const char *sd = mp_args_get(a, "scale-dtype");
    if (!sd) return -1;
    if (!o->packed) return mp_cli_usage_error(a->cmd, "--scale-dtype applies to packed formats only");
    o->pack.scale_dtype_given = 1;
    if (strcmp(sd, "f16") == 0) o->pack.scale_dtype = MP_DTYPE_F16;
    else if (strcmp(sd, "bf16") == 0) o->pack.scale_dtype = MP_DTYPE_BF16;
    else if (strcmp(sd, "f32") == 0) o->pack.scale_dtype = MP_DTYPE_F32;
    else return bad_choice(a->cmd, "--scale-dtype wants f16, bf16 or f32", sd, (const char *const[]){"f16", "bf16", "f32"}, 3);
    return -1;
}

/* --threads, --max-shard-size and the flags of the job itself. -1, or the exit code. */
static int parse_job_options(const mp_args *a, mp_convert_opts *o)
{
    int trc = mp_cli_threads(a, &o->threads);
    if (trc >= 0) return trc;
    o->max_shard = 5000000000ull;
    const char *shard = mp_args_get(a, "max-shard-size");
    if (shard && mp_parse_size(shard, &o->max_shard))
        return mp_cli_usage_error(a->cmd, "--max-shard-size wants a size such as 5GB or 500MiB, not '%s'", shard);
    o->force = mp_args_has(a, "force");
    o->quiet = mp_args_has(a, "quiet");
    o->keep_dense_dtype = mp_args_has(a, "keep-dense-dtype");
    if (o->keep_dense_dtype && mp_args_has(a, "cast-dense"))
        return mp_cli_usage_error(a->cmd, "--cast-dense and --keep-dense-dtype contradict each other");
    o->interrupted = mp_cli_catch_signals(); /* argc/argv: mp_cli_part's canonical copy */
    return -1;
}

static void print_json(const mp_args *a, const char *to, const mp_convert_result *r, int gguf)
{
    mp_buf b = json_head(a);
    mp_buf_printf(&b, ", \"format\": \"%s\", \"dequantized\": %zu, \"repacked\": %zu, "
                      "\"copied\": %zu, \"cast\": %zu, \"weight_files\": %zu, "
                      "\"side_files\": %zu, \"bytes\": %llu, \"seconds\": %.3f, "
                      "\"gb_per_s\": %.3f",
                  to, r->n_dequantized, r->n_repacked, r->n_copied, r->n_cast, r->n_files,
                  r->n_side_files, (unsigned long long)r->bytes, r->seconds,
                  r->seconds > 0 ? (double)r->bytes / r->seconds / 1e9 : 0.0);
    if (gguf) {
        mp_buf_puts(&b, ", \"source\": \"gguf\", \"architecture\": ");
        mp_buf_json_str(&b, r->arch);
        mp_buf_printf(&b, ", \"names_mapped\": %s, \"qk_unpermuted\": %zu",
                      r->names_mapped ? "true" : "false", r->n_unpermuted);
    }
    mp_buf_puts(&b, "}\n");
    fwrite(b.data, 1, b.len, stdout);
    mp_buf_release(&b);
}

static void print_summary(const mp_args *a, const char *to, const mp_convert_opts *o, const mp_convert_result *r,
                          int gguf)
{
    char human[32];
    mp_fmt_bytes(r->bytes, human, sizeof human);
    if (gguf)
        printf("converted %s (gguf, %s) to %s in %s: %zu tensors dequantized, %zu cast, %zu "
               "copied%s, %zu q/k un-permuted; %zu weight file%s (%s), %s modelprep.json\n",
               a->pos[0], r->arch[0] ? r->arch : "no architecture", to, a->pos[1], r->n_dequantized,
               r->n_cast, r->n_copied, r->names_mapped ? ", names mapped" : ", GGUF names kept",
               r->n_unpermuted, r->n_files, r->n_files == 1 ? "" : "s", human,
               r->n_side_files ? "config.json," : "");
    else if (o->packed)
        printf("converted %s to %s in %s: %zu linears repacked, %zu expert blocks stacked, %zu "
               "tensors copied; %zu weight file%s (%s), %zu side files, modelprep.json\n",
               a->pos[0], to, a->pos[1], r->n_repacked, r->n_stacks, r->n_copied, r->n_files,
               r->n_files == 1 ? "" : "s", human, r->n_side_files);
    else
        printf("converted %s to %s in %s: %zu linears dequantized, %zu tensors copied, %zu cast; "
               "%zu weight file%s (%s), %zu side files, modelprep.json\n",
               a->pos[0], to, a->pos[1], r->n_dequantized, r->n_copied, r->n_cast, r->n_files,
               r->n_files == 1 ? "" : "s", human, r->n_side_files);
}

/* A part's or a merge's summary; a merge that committed DST adds the whole run's. */
static int part_summary(const mp_args *a, const mp_convert_opts *o, const mp_convert_result *r)
{
    int json = mp_args_has(a, "json");
    if (json) printf("{\"status\": \"ok\"");
    if (json || !o->quiet)
        mp_cli_part_summary(&o->part, r->job_id, r->part_count, r->part_files, r->n_files, r->part_done, r->merged,
                            a->pos[1], json);
    if (json) printf("}\n");
    return 0;
}

int cmd_convert(const mp_args *a)
{
    const char *to = mp_args_get(a, "to");
    if (!to) return mp_cli_usage_error(a->cmd, "--to FORMAT is required");
    mp_convert_opts o;
    memset(&o, 0, sizeof o);
    mp_gguf_to gguf_to;
    int is_gguf = mp_gguf_to_parse(to, &gguf_to);
    if (is_gguf < 0)
        return mp_cli_usage_error(a->cmd, "unknown GGUF weights '%s' (gguf, gguf:auto, gguf:f32, "
                                          "gguf:f16, gguf:bf16, gguf:q8_0)", to);
    if (is_gguf) return cmd_convert_gguf(a, gguf_to);
    if (mp_args_has(a, "no-tokenizer"))
        return mp_cli_usage_error(a->cmd, "--no-tokenizer applies to --to gguf only");
    int prc = parse_target(a, to, &o);
    if (prc < 0) prc = parse_packed_options(a, &o);
    if (prc < 0) prc = parse_job_options(a, &o);
    if (prc >= 0) return prc;
    mp_progress bar = {0};
    o.progress = mp_progress_event;
    o.progress_user = &bar;
    int gguf = mp_gguf_probe(a->pos[0]);
    if (gguf && o.packed)
        return mp_cli_usage_error(a->cmd, "a GGUF source converts to f32, f16 or bf16 only, not '%s'", to);
    mp_buf opts = MP_BUF_INIT;
    prc = mp_cli_part(a, &o.part, &opts, &o.argv, &o.argc);
    if (prc < 0 && gguf && (o.part.count || o.part.merge))
        prc = mp_cli_usage_error(a->cmd, "--part takes a safetensors source; a GGUF source converts in one process");
    if (prc >= 0) {
        mp_buf_release(&opts);
        free(o.argv);
        return prc;
    }
    mp_err err = MP_ERR_INIT;
    mp_convert_result r;
    mp_errcode rc = gguf ? mp_gguf_convert_run(a->pos[0], a->pos[1], &o, &r, &err)
                         : mp_convert_run(a->pos[0], a->pos[1], &o, &r, &err);
    mp_buf_release(&opts);
    free(o.argv);
    if (rc != MP_OK) return mp_cli_fail_job(&err);
    if (o.part.count || o.part.merge) return part_summary(a, &o, &r);
    if (mp_args_has(a, "json")) print_json(a, to, &r, gguf);
    else if (!o.quiet) print_summary(a, to, &o, &r, gguf);
    return 0;
}
