/*
 * cli.h - internal to programs/: the subcommand table and the option parser every command uses.
 *
 * Each command declares its options once, in an mp_opt table; the same table drives parsing
 * (getopt_long) and --help, as git's parse-options does.
 */
#ifndef MP_CLI_H
#define MP_CLI_H

#include "../common/mp_common.h"

#include <stdio.h>

typedef struct mp_opt {
    const char *name;      /* long name without "--" */
    const char *arg;       /* metavariable ("N") when the option takes a value, else NULL */
    const char *help;
} mp_opt;

typedef struct mp_cmd mp_cmd;

/* Parsed command line. value[i] is NULL when option i was not given, "" for a given flag, or
 * the argument of a valued option (the last one wins). */
typedef struct mp_args {
    const mp_cmd *cmd;
    const char *value[32];
    char **pos;
    int n_pos;
    int argc;          /* the whole command line, for the manifest */
    char **argv;
    const char *merge_id;  /* set by `merge`: run as the merge of that partitioned job */
} mp_args;

struct mp_cmd {
    const char *name;
    int (*run)(const mp_args *args);
    const char *synopsis;  /* "PATH [--json]" */
    const char *brief;     /* one whole sentence of at most 66 columns, for `modelprep --help` */
    const char *summary;   /* the paragraph of `modelprep COMMAND --help` */
    int min_pos, max_pos;  /* positional argument counts */
    const mp_opt *opts;    /* terminated by {NULL} */
};

/* Parses argv (argv[0] is the command name). Returns -1 on success; otherwise the exit code to
 * use right away (0 after --help, 2 after a usage error, already reported on stderr). */
int mp_args_parse(mp_args *a, const mp_cmd *cmd, int argc, char **argv);

/* Value of the option called `name`, or NULL. Asking for an option the command does not declare
 * is a programmer error. */
const char *mp_args_get(const mp_args *a, const char *name);
int mp_args_has(const mp_args *a, const char *name);

/* Prints "modelprep: <formatted error>" on stderr and returns the exit code for it. */
int mp_cli_fail(const mp_err *err);

/* One-line usage error plus the command's synopsis on stderr; returns 2. */
int mp_cli_usage_error(const mp_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --threads N (1 to 1024) into *threads, left as it is when the option is absent. Returns -1,
 * or the usage error's exit code (2, already reported). */
int mp_cli_threads(const mp_args *a, int *threads);

/* The choice closest to `word` by edit distance (case-insensitive, swaps count once; a word that
 * begins a choice counts as one step), or NULL when none is close enough to be a likely typo:
 * what "did you mean" offers. */
const char *mp_cli_suggest(const char *word, const char *const *choices, size_t n);

/* SIGINT and SIGTERM set the returned flag (the signal number) instead of killing the process:
 * long jobs check it between tiles, remove their partial output and stop. */
volatile int *mp_cli_catch_signals(void);
/* A fault on a mapped input file's lost page (SIGBUS: it was cut short while read) ends the run
 * with one line naming the file and exit 4, as any input that changed under the run; a partial
 * directory stays for --resume, as after a kill. Other faults keep their default action. */
void mp_cli_catch_faults(void);
/* The exit code for an error: 130 / 143 when interrupted by SIGINT / SIGTERM, else the code's
 * documented one. Prints the error line. */
int mp_cli_fail_job(const mp_err *err);

/* Parses "5GB" (10^9), "5GiB" (2^30), "500M", "4096"; returns 0 on success. */
int mp_parse_size(const char *s, uint64_t *out);

/* The subcommand called `name`, or NULL (main.c's table). */
const mp_cmd *mp_cli_command(const char *name);

/* --part I/N, --job-id ID (or a merge, a->merge_id) into *spec, with *options (caller releases)
 * the options that change the output as text and *argv / *argc (caller frees *argv) the
 * command line without --part and --job-id: what a whole run of the job records. Returns -1,
 * or the usage error's exit code (2, already reported). */
struct mp_part_spec;
int mp_cli_part(const mp_args *a, struct mp_part_spec *spec, mp_buf *options, char ***argv, int *argc);

/* The summary of a part (stdout; JSON members with json): which part of which job, the files
 * it wrote, and whether it merged. */
void mp_cli_part_summary(const struct mp_part_spec *spec, const char *job_id, unsigned count, size_t files,
                         size_t total, int done, int merged, const char *dst, int json);

int cmd_merge(const mp_args *args);
int cmd_inspect(const mp_args *args);
int cmd_convert(const mp_args *args);
int cmd_split(const mp_args *args);
int cmd_hash(const mp_args *args);
int cmd_verify(const mp_args *args);
int cmd_devices(const mp_args *args);

/* GGUF sources (inspect_gguf.c): the inspect output of a GGUF file or split set. */
int mp_inspect_gguf(const mp_args *args, const char *path);

#endif /* MP_CLI_H */
