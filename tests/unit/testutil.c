/*
 * testutil.c - see testutil.h.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include "../../repack/repack.h"
#include "../../verify/verify.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

const char *tu_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v, "environment variable %s is not set (run through make test)", name);
    return v;
}

char *tu_path(const char *a, const char *b)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/%s", a, b) > 0);
    return p;
}

char *tu_tempdir(void)
{
    const char *base = getenv("TMPDIR");
    char *tmpl = tu_path(base && *base ? base : "/tmp", "modelprep-test-XXXXXX");
    cr_assert(mkdtemp(tmpl), "mkdtemp failed");
    return tmpl;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tu_rmtree(const char *path)
{
    if (path) nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 4096 + 1 > cap) buf = realloc(buf, cap *= 2);
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r == 0) break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

int tu_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

uint32_t tu_xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 16);
}

size_t tu_count_lines(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        if (*p == '\n') n++;
    if (*s && s[strlen(s) - 1] != '\n') n++;
    return n;
}

run_result tu_run(const char *cwd, char *const argv[], char *const extra_env[])
{
    run_result r = {0};
    char *dir = tu_tempdir();
    char *out_path = tu_path(dir, "stdout"), *err_path = tu_path(dir, "stderr");

    size_t n_env = 0, n_extra = 0;
    while (environ[n_env]) n_env++;
    while (extra_env && extra_env[n_extra]) n_extra++;
    char **env = calloc(n_env + n_extra + 1, sizeof *env);
    memcpy(env, environ, n_env * sizeof *env);
    if (n_extra) memcpy(env + n_env, extra_env, n_extra * sizeof *env);

    pid_t pid = fork();
    cr_assert(pid >= 0, "fork failed");
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int in = open("/dev/null", O_RDONLY);
        if (o < 0 || e < 0 || in < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0 || dup2(in, 0) < 0)
            _exit(126);
        if (cwd && chdir(cwd) != 0) _exit(126);
        execve(argv[0], argv, env);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
    }
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = tu_read(out_path, &r.out_len);
    r.err = tu_read(err_path, &r.err_len);
    cr_assert(r.out && r.err);
    free(env);
    free(out_path);
    free(err_path);
    tu_rmtree(dir);
    free(dir);
    return r;
}

void tu_run_free(run_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* The closing lines of a run: Criterion's synthesis leaves skipped tests out of "Tested", so each
 * test that ran and skipped (cr_skip_test, which always gives a reason) is listed with its reason
 * and counted here, after the synthesis: a skip is never a silent pass. Tests left out by
 * --filter are skipped without a message and are not listed. */
static size_t n_skipped;

static void say_skipped(void) { fprintf(stderr, "[====] Skipped: %zu (not counted in Tested above)\n", n_skipped); }

ReportHook(POST_ALL)(struct criterion_global_stats *st)
{
    for (struct criterion_suite_stats *s = st->suites; s; s = s->next)
        for (struct criterion_test_stats *t = s->tests; t; t = t->next)
            if (t->test_status == CR_STATUS_SKIPPED && t->message && *t->message) {
                fprintf(stderr, "[SKIP] %s::%s: %s\n", t->test->category, t->test->name, t->message);
                n_skipped++;
            }
    atexit(say_skipped);
}

run_result tu_run_script(const char *python, const char *rel, const char *arg)
{
    char *script = tu_path(tu_env("MP_SRC"), rel);
    char *cwd = tu_tempdir();
    char *argv[] = {(char *)python, script, (char *)arg, NULL};
    run_result r = tu_run(cwd, argv, NULL);
    tu_rmtree(cwd);
    free(cwd);
    free(script);
    return r;
}

void tu_write_model(const char *dir, const char *config, const tu_tensor *ts, size_t n)
{
    cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST, "mkdir %s", dir);
    char *cp = tu_path(dir, "config.json");
    cr_assert(tu_write(cp, config, strlen(config)));
    free(cp);
    mp_tensor_spec specs[16];
    cr_assert_leq(n, 16);
    for (size_t i = 0; i < n; i++) specs[i] = ts[i].spec;
    char *path = tu_path(dir, "model.safetensors");
    mp_err err = MP_ERR_INIT;
    mp_st_writer *w = NULL;
    cr_assert_eq(mp_st_writer_open(&w, path, specs, n, NULL, 0, &err), MP_OK, "%s", err.msg);
    for (size_t next; (next = mp_st_writer_next(w)) != SIZE_MAX;)
        cr_assert_eq(mp_st_writer_write(w, ts[next].data, mp_st_writer_remaining(w), &err), MP_OK);
    cr_assert_eq(mp_st_writer_finish(w, &err), MP_OK);
    free(path);
}

static const mp_dtype dtypes[] = {MP_DTYPE_F32, MP_DTYPE_F16, MP_DTYPE_BF16};

static uint32_t out_bits(float v, mp_dtype dt)
{
    if (dt == MP_DTYPE_F16) return mp_f32_to_f16(v);
    if (dt == MP_DTYPE_BF16) return mp_f32_to_bf16(v);
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

/* Rows [n0, n1) of q through both paths; returns how many values differ. */
uint64_t tu_dense_vs_ref(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1, mp_dtype dt)
{
    uint64_t cnt = (n1 - n0) * q->k_cols;
    size_t es = mp_dtype_bits(dt) / 8;
    float *ref = malloc((size_t)cnt * 4 + 4);
    uint8_t *fast = malloc((size_t)cnt * es + 4);
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_dequant_ref(m, q, n0, n1, ref, &err), MP_OK, "%s", err.msg);
    int over = 0;
    cr_assert_eq(mp_dense_rows(m, q, n0, n1, dt, fast, &over, &err), MP_OK, "%s", err.msg);
    uint64_t bad = 0, any_over = 0;
    for (uint64_t i = 0; i < cnt; i++) {
        uint32_t want = out_bits(ref[i], dt), got = 0;
        memcpy(&got, fast + i * es, es);
        bad += got != want;
        any_over |= dt == MP_DTYPE_F16 && mp_f16_overflows(ref[i]);
    }
    cr_assert_eq((uint64_t)over, any_over, "%s: f16 overflow flag %d, want %llu", q->prefix, over,
                 (unsigned long long)any_over);
    free(ref);
    free(fast);
    return bad;
}

void tu_dense_model_vs_ref(const char *dir, size_t want_linears)
{
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    mp_qmodel *qm = NULL;
    cr_assert_eq(mp_st_open(&m, dir, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(mp_qmodel_open(&qm, m, &err), MP_OK, "%s: %s", err.tensor, err.msg);
    cr_assert_geq(mp_qmodel_n_linears(qm), want_linears, "%s: %zu linears", dir, mp_qmodel_n_linears(qm));
    for (size_t i = 0; i < mp_qmodel_n_linears(qm); i++) {
        const mp_qlinear *q = mp_qmodel_linear(qm, i);
        for (size_t d = 0; d < 3; d++) {
            uint64_t bad = tu_dense_vs_ref(m, q, 0, q->n_rows, dtypes[d]);
            cr_assert_eq(bad, 0, "%s %s: %llu values differ from the reference", dir, q->prefix,
                         (unsigned long long)bad);
            if (q->n_rows > 24)
                cr_assert_eq(tu_dense_vs_ref(m, q, 8, 24, dtypes[d]), 0, "%s %s rows 8..24", dir, q->prefix);
        }
    }
    mp_qmodel_free(qm);
    mp_st_close(m);
}

