/*
 * cmd_split.c - `modelprep split SRC DST`: one safetensors file per module.
 */
#include "cli.h"
#include "split.h"

#include <string.h>


int cmd_split(const mp_args *a)
{
    mp_split_opts o;
    memset(&o, 0, sizeof o);
    o.materialize_tied = mp_args_has(a, "materialize-tied");
    o.resume = mp_args_has(a, "resume");
    o.force = mp_args_has(a, "force");
    o.quiet = mp_args_has(a, "quiet");
    o.argc = a->argc;
    o.argv = a->argv;
    o.interrupted = mp_cli_catch_signals();
    if (mp_args_has(a, "compress"))
        return mp_cli_usage_error(a->cmd, "--compress is not available in this version");

    mp_err err = MP_ERR_INIT;
    mp_split_result r;
    mp_errcode rc = mp_split_run(a->pos[0], a->pos[1], &o, &r, &err);
    if (rc != MP_OK) return mp_cli_fail_job(&err);
    char human[32];
    mp_fmt_bytes(r.bytes, human, sizeof human);
    if (mp_args_has(a, "json")) {
        printf("{\"status\": \"ok\", \"destination\": ");
        mp_buf b = MP_BUF_INIT;
        mp_buf_json_str(&b, a->pos[1]);
        fwrite(b.data, 1, b.len, stdout);
        mp_buf_release(&b);
        printf(", \"files\": %zu, \"tensors\": %zu, \"extra_tensors\": %zu, \"resumed_files\": %zu, "
               "\"tied_alias\": %s, \"bytes\": %llu, \"seconds\": %.3f}\n",
               r.n_files, r.n_tensors, r.n_extra, r.n_resumed, r.tied ? "true" : "false",
               (unsigned long long)r.bytes, r.seconds);
    } else if (!o.quiet) {
        printf("split %s into %s: %zu files, %zu tensors (%s)%s%s\n", a->pos[0], a->pos[1],
               r.n_files, r.n_tensors, human,
               r.tied ? (o.materialize_tied ? "; tied lm_head written from the embedding"
                                            : "; lm_head.weight recorded as an alias of the embedding")
                      : "",
               r.n_extra ? "; tensors that match no layer rule are in extra.safetensors" : "");
        if (r.n_resumed) printf("resumed: %zu files kept from the interrupted run\n", r.n_resumed);
    }
    return 0;
}
