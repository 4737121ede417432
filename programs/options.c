/*
 * options.c - table-driven option parsing and --help for every subcommand.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <assert.h>
#include <ctype.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_OPTS 31
#define OPT_HELP 1000

/* Optimal string alignment distance (Levenshtein plus swapped neighbours), case-insensitive,
 * stopping early once it exceeds `limit`: the measure behind "did you mean". */
static size_t edit_distance(const char *a, const char *b, size_t limit)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return limit + 1;
    size_t d[66][66];
    for (size_t i = 0; i <= la; i++) d[i][0] = i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t row_min = SIZE_MAX;
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t v = d[i - 1][j - 1] + (ca != cb);
            if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                cb == tolower((unsigned char)a[i - 2]) && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
            if (v < row_min) row_min = v;
        }
        if (row_min > limit) return limit + 1;
    }
    return d[la][lb];
}

const char *mp_cli_suggest(const char *word, const char *const *choices, size_t n)
{
    size_t wl = strlen(word);
    size_t limit = wl < 4 ? 1 : wl < 9 ? 2 : 3;
    const char *best = NULL;
    size_t best_d = limit + 1;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, choices[i], limit);
        /* A word that starts a longer choice ("cutlass" for "cutlass-int4") is one step away. */
        if (d > 1 && wl >= 3 && strncasecmp(choices[i], word, wl) == 0) d = 1;
        if (d < best_d) best_d = d, best = choices[i];
    }
    return best;
}

/* The names of the positional arguments, read from the synopsis ("SRC DST --to FORMAT ..."):
 * the leading words before the first option or bracket. */
static void positional_name(const mp_cmd *cmd, int index, char *buf, size_t cap)
{
    const char *s = cmd->synopsis;
    snprintf(buf, cap, "argument");
    for (int i = 0; *s && *s != '-' && *s != '['; i++) {
        size_t len = strcspn(s, " ");
        if (i == index) {
            snprintf(buf, cap, "%.*s", (int)len, s);
            return;
        }
        s += len;
        s += strspn(s, " ");
    }
}

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
    fprintf(out, "  %-28s %s\n", "-h, --help", "show this help and exit");
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

static int unknown_option(const mp_cmd *cmd, const char *arg)
{
    const char *names[MAX_OPTS + 1];
    size_t n = 0;
    for (const mp_opt *o = cmd->opts; o->name && n < MAX_OPTS; o++) names[n++] = o->name;
    names[n++] = "help";
    char word[80];
    snprintf(word, sizeof word, "%.*s", (int)strcspn(arg + strspn(arg, "-"), "="), arg + strspn(arg, "-"));
    const char *hint = arg[0] == '-' && arg[1] == '-' ? mp_cli_suggest(word, names, n) : NULL;
    if (hint) return mp_cli_usage_error(cmd, "unknown option '%s'; did you mean '--%s'?", arg, hint);
    return mp_cli_usage_error(cmd, "unknown option '%s'", arg);
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
        int c = getopt_long(argc, argv, ":h", longopts, NULL);
        if (c == -1) break;
        if (c == OPT_HELP || c == 'h') {
            print_help(cmd, stdout);
            return 0;
        }
        if (c == '?') return unknown_option(cmd, argv[optind - 1]);
        if (c == ':')
            return mp_cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        a->value[c] = optarg ? optarg : "";
    }
    a->argc = argc;
    a->argv = argv;
    a->pos = argv + optind;
    a->n_pos = argc - optind;
    if (a->n_pos < cmd->min_pos) {
        char what[32];
        positional_name(cmd, a->n_pos, what, sizeof what);
        return mp_cli_usage_error(cmd, "missing argument %s", what);
    }
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

static void put(const char *s) { (void)!write(2, s, strlen(s)); }

static void on_fault(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    const char *path = mp_map_owner(si->si_addr);
    if (!path) { /* not a mapped input: the default action, when the faulting access runs again */
        signal(sig, SIG_DFL);
        return;
    }
    static int reporting; /* threads that fault at once: one line, from the first */
    if (__atomic_exchange_n(&reporting, 1, __ATOMIC_ACQ_REL))
        for (;;) pause(); /* until the first one's _exit */
    put("modelprep: ");
    put(path);
    put(": cut short while being read (it changed since it was opened); stopped\n");
    _exit(4);
}

void mp_cli_catch_faults(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, NULL);
}

int mp_cli_fail_job(const mp_err *err)
{
    int rc = mp_cli_fail(err);
    if (err->code == MP_E_INTERRUPTED) return caught_signal == SIGTERM ? 143 : 130;
    return rc;
}

int mp_cli_threads(const mp_args *a, int *threads)
{
    const char *v = mp_args_get(a, "threads");
    if (!v) return -1;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 1 || n > 1024)
        return mp_cli_usage_error(a->cmd, "--threads wants a number from 1 to 1024, not '%s'", v);
    *threads = (int)n;
    return -1;
}
