/*
 * options.c - table-driven option parsing and --help for every subcommand.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <assert.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPTS 31
#define OPT_HELP 1000

static void print_help(const mp_cmd *cmd, FILE *out)
{
    fprintf(out, "usage: modelprep %s %s\n\n%s\n", cmd->name, cmd->synopsis, cmd->summary);
    if (!cmd->opts[0].name) return;
    fputs("\noptions:\n", out);
    for (const mp_opt *o = cmd->opts; o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(out, "  %-28s %s\n", left, o->help);
    }
    fprintf(out, "  %-28s %s\n", "--help", "show this help and exit");
}

int mp_cli_usage_error(const mp_cmd *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "modelprep %s: ", cmd->name);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: modelprep %s %s\n", cmd->name, cmd->synopsis);
    return 2;
}

int mp_args_parse(mp_args *a, const mp_cmd *cmd, int argc, char **argv)
{
    struct option longopts[MAX_OPTS + 2];
    int n = 0;
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    for (const mp_opt *o = cmd->opts; o->name; o++, n++) {
        assert(n < MAX_OPTS);
        longopts[n] = (struct option){o->name, o->arg ? required_argument : no_argument, NULL, n};
    }
    longopts[n] = (struct option){"help", no_argument, NULL, OPT_HELP};
    longopts[n + 1] = (struct option){NULL, 0, NULL, 0};

    optind = 1;
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, ":", longopts, NULL);
        if (c == -1) break;
        if (c == OPT_HELP) {
            print_help(cmd, stdout);
            return 0;
        }
        if (c == '?')
            return mp_cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        if (c == ':')
            return mp_cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        a->value[c] = optarg ? optarg : "";
    }
    a->argc = argc;
    a->argv = argv;
    a->pos = argv + optind;
    a->n_pos = argc - optind;
    if (a->n_pos < cmd->min_pos)
        return mp_cli_usage_error(cmd, "missing argument");
    if (a->n_pos > cmd->max_pos)
        return mp_cli_usage_error(cmd, "unexpected argument '%s'", a->pos[cmd->max_pos]);
    return -1;
}

const char *mp_args_get(const mp_args *a, const char *name)
{
    int i = 0;
    for (const mp_opt *o = a->cmd->opts; o->name; o++, i++)
        if (strcmp(o->name, name) == 0) return a->value[i];
    assert(!"option not declared by this command");
    return NULL;
}

int mp_args_has(const mp_args *a, const char *name) { return mp_args_get(a, name) != NULL; }

int mp_cli_fail(const mp_err *err)
{
    char line[MP_ERR_FILE_MAX + MP_ERR_TENSOR_MAX + MP_ERR_MSG_MAX + 64];
    mp_err_format(err, line, sizeof line);
    fprintf(stderr, "modelprep: %s\n", line);
    return mp_err_exit_code(err->code);
}

int mp_parse_size(const char *s, uint64_t *out)
{
    char *end = NULL;
    if (!s || !*s || *s == '-') return 1;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s) return 1;
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"K", 1000ull},
                 {"KB", 1000ull},
                 {"KiB", 1ull << 10},
                 {"M", 1000000ull},
                 {"MB", 1000000ull},
                 {"MiB", 1ull << 20},
                 {"G", 1000000000ull},
                 {"GB", 1000000000ull},
                 {"GiB", 1ull << 30},
                 {"T", 1000000000000ull},
                 {"TB", 1000000000000ull},
                 {"TiB", 1ull << 40}};
    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        if (strcmp(end, units[i].suffix) != 0) continue;
        return mp_mul_overflow(v, units[i].mult, out);
    }
    return 1;
}

static volatile int caught_signal;

static void on_signal(int sig) { caught_signal = sig; }

volatile int *mp_cli_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return &caught_signal;
}

int mp_cli_fail_job(const mp_err *err)
{
    int rc = mp_cli_fail(err);
    if (err->code == MP_E_INTERRUPTED) return caught_signal == SIGTERM ? 143 : 130;
    return rc;
}
