/*
 * cmd_merge.c - `modelprep merge DST`, and the --part I/N / --job-id options convert and split
 * share (doc/partitioned.md).
 *
 * A merge runs the job's own command again, from the command line and in the working directory
 * its parts recorded, as a merge: the command's parsing and the library's plan are the same code
 * a part ran, so the plan the records are checked against is the one the parts computed, and the
 * manifest's paths resolve as they would have in a whole run.
 */
#include "cli.h"
#include "../convert/partition.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Options that do not change the output: left out of the job's identity. */
static int identity_neutral(const char *name)
{
    static const char *const names[] = {"threads", "quiet", "json", "part", "job-id", "force"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(names[i], name) == 0) return 1;
    return 0;
}

/* "I/N": two unsigned decimals, no sign, 0 <= I < N <= MP_PART_MAX. Returns 0 when valid. */
static int parse_part(const char *v, unsigned *i, unsigned *n)
{
    const char *slash = strchr(v, '/');
    if (!slash || slash == v || !slash[1] || strspn(v, "0123456789") != (size_t)(slash - v) ||
        strspn(slash + 1, "0123456789") != strlen(slash + 1) || slash - v > 5 || strlen(slash + 1) > 5)
        return 1;
    *i = (unsigned)strtoul(v, NULL, 10);
    *n = (unsigned)strtoul(slash + 1, NULL, 10);
    return *n < 1 || *n > MP_PART_MAX || *i >= *n;
}

/* The command line without --part and --job-id (and their values). */
static int canonical_argv(const mp_args *a, char ***argv, int *argc)
{
    *argv = calloc((size_t)a->argc + 1, sizeof **argv);
    *argc = 0;
    if (!*argv) return 1;
    for (int k = 0; k < a->argc; k++) {
        const char *w = a->argv[k];
        int joined = strncmp(w, "--part=", 7) == 0 || strncmp(w, "--job-id=", 9) == 0;
        int spaced = strcmp(w, "--part") == 0 || strcmp(w, "--job-id") == 0;
        if (spaced) k++;
        else if (!joined) (*argv)[(*argc)++] = a->argv[k];
    }
    return 0;
}

int mp_cli_part(const mp_args *a, mp_part_spec *spec, mp_buf *options, char ***argv, int *argc)
{
    memset(spec, 0, sizeof *spec);
    const char *part = mp_args_get(a, "part"), *id = mp_args_get(a, "job-id");
    if (!part && id && !a->merge_id) return mp_cli_usage_error(a->cmd, "--job-id applies with --part only");
    if (part && parse_part(part, &spec->index, &spec->count))
        return mp_cli_usage_error(a->cmd, "--part wants I/N with 0 <= I < N <= %d, not '%s'", MP_PART_MAX, part);
    if (part && mp_args_has(a, "force"))
        return mp_cli_usage_error(a->cmd, "--force does not apply to --part: remove DST before running the parts");
    if (id && !mp_part_id_valid(id))
        return mp_cli_usage_error(a->cmd, "--job-id wants 1 to %d of the characters A-Z a-z 0-9 . _ -, not "
                                  "starting with '.' or '-', not '%s'", MP_JOB_ID_MAX, id);
    spec->merge = a->merge_id != NULL;
    spec->job_id = a->merge_id ? a->merge_id : id;
    int i = 0;
    for (const mp_opt *o = a->cmd->opts; o->name; o++, i++)
        if (a->value[i] && !identity_neutral(o->name)) mp_buf_printf(options, "%s=%s\n", o->name, a->value[i]);
    mp_buf_puts(options, "");
    if (options->oom || canonical_argv(a, argv, argc)) {
        fprintf(stderr, "modelprep: out of memory\n");
        return 5;
    }
    spec->options = options->data ? options->data : "";
    return -1;
}

void mp_cli_part_summary(const mp_part_spec *spec, const char *job_id, unsigned count, size_t files,
                         size_t total, int done, int merged, const char *dst, int json)
{
    if (json) {
        printf(", \"job_id\": \"%s\", \"parts\": %u, ", job_id, count);
        if (spec->merge) printf("\"part\": null");
        else printf("\"part\": %u, \"part_files\": %zu, \"already_done\": %s", spec->index, files, done ? "true" : "false");
        printf(", \"merged\": %s", merged ? "true" : "false");
        return;
    }
    if (!spec->merge && done)
        printf("part %u/%u of job %s: already done (its record and files verify); nothing written\n", spec->index,
               count, job_id);
    else if (!spec->merge)
        printf("part %u/%u of job %s: %zu of %zu files written\n", spec->index, count, job_id, files, total);
    if (merged) printf("job %s: all %u parts present; merged into %s\n", job_id, count, dst);
    else if (!spec->merge) printf("job %s: waiting for the other parts; the last one, or 'modelprep merge %s', "
                                  "completes %s\n", job_id, dst, dst);
}

int cmd_merge(const mp_args *a)
{
    char **argv = NULL, id[MP_JOB_ID_MAX + 1] = "", cwd[PATH_MAX] = "";
    int argc = 0;
    mp_err err = MP_ERR_INIT;
    const char *want = mp_args_get(a, "job-id");
    if (want && !mp_part_id_valid(want))
        return mp_cli_usage_error(a->cmd, "--job-id wants 1 to %d of the characters A-Z a-z 0-9 . _ -, not "
                                  "starting with '.' or '-', not '%s'", MP_JOB_ID_MAX, want);
    if (mp_part_find_job(a->pos[0], want, &argv, &argc, id, cwd, sizeof cwd, &err) != MP_OK) return mp_cli_fail(&err);
    if (!argv) { /* the last part merged already: what a scheduler's merge job then finds */
        if (mp_args_has(a, "json")) printf("{\"status\": \"ok\", \"merged\": false, \"already_complete\": true}\n");
        else if (!mp_args_has(a, "quiet")) printf("%s is complete (a part merged it); nothing to merge\n", a->pos[0]);
        return 0;
    }
    const mp_cmd *cmd = argc > 0 ? mp_cli_command(argv[0]) : NULL;
    int rc = 4;
    mp_args job;
    if (!cmd || (strcmp(cmd->name, "convert") != 0 && strcmp(cmd->name, "split") != 0)) {
        fprintf(stderr, "modelprep: %s.partial-%s: the part records name no convert or split command\n", a->pos[0], id);
    } else if (chdir(cwd) != 0) {
        fprintf(stderr, "modelprep: %s.partial-%s: cannot enter the parts' working directory '%s': %s\n", a->pos[0],
                id, cwd, strerror(errno));
    } else if ((rc = mp_args_parse(&job, cmd, argc, argv)) < 0) {
        job.merge_id = id;
        rc = cmd->run(&job);
    }
    mp_part_argv_free(argv, argc);
    return rc;
}
