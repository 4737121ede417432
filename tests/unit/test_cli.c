/*
 * test_cli.c - the modelprep binary from the outside: golden files that must pass, hostile files
 * that must fail with a named exit code and reason, CLI scripts with exact expected output, and
 * the cross-check against upstream Python safetensors.
 *
 * Fixtures live in the source tree:
 *   tests/golden/cases/NAME[.safetensors]          + NAME.expect: "0" and a stdout substring
 *   tests/golden-errors/cases/NAME[.safetensors]   + NAME.expect: exit code and stderr substring
 *   tests/cli/NAME.sh  + NAME.stdout (exact), NAME.stderr (fnmatch glob), NAME.exit
 * MP_REFRESH=1 rewrites the CLI expectations from the actual output.
 */
#define _GNU_SOURCE
#include "testutil.h"
#include "../../formats/formats.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct case_param {
    char name[128];
    char dir[512];
} case_param;

static int cmp_param(const void *a, const void *b)
{
    return strcmp(((const case_param *)a)->name, ((const case_param *)b)->name);
}

/* Lists every NAME with a NAME<suffix> file in dir, sorted. Memory from cr_malloc so the
 * parameters survive into the forked test processes. */
static case_param *list_cases(const char *dir, const char *suffix, size_t *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    size_t cap = 256;
    case_param *v = cr_malloc(cap * sizeof *v);
    size_t sl = strlen(suffix);
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l <= sl || strcmp(e->d_name + l - sl, suffix) != 0 || l - sl >= sizeof v->name) continue;
        if (*n == cap) { /* no cap on the cases: every file is a test */
            case_param *w = cr_realloc(v, 2 * cap * sizeof *v);
            cr_assert(w, "out of memory listing %s", dir);
            v = w;
            cap *= 2;
        }
        snprintf(v[*n].name, sizeof v[*n].name, "%.*s", (int)(l - sl), e->d_name);
        snprintf(v[*n].dir, sizeof v[*n].dir, "%s", dir);
        (*n)++;
    }
    closedir(d);
    qsort(v, *n, sizeof *v, cmp_param);
    return v;
}

static void free_params(struct criterion_test_params *p) { cr_free(p->params); }

static char *src_path(const char *rel) { return tu_path(tu_env("MP_SRC"), rel); }

/* The thing a case names: NAME.safetensors or NAME.gguf when it exists, else the directory
 * NAME. */
static char *case_target(const case_param *p)
{
    char *base = tu_path(p->dir, p->name);
    static const char *const exts[] = {"safetensors", "gguf"};
    for (size_t i = 0; i < 2; i++) {
        char *file = NULL;
        cr_assert(asprintf(&file, "%s.%s", base, exts[i]) > 0);
        struct stat st;
        if (stat(file, &st) == 0) {
            free(base);
            return file;
        }
        free(file);
    }
    return base;
}

static void read_expect(const case_param *p, int *code, char *needle, size_t cap)
{
    char *path = NULL;
    cr_assert(asprintf(&path, "%s/%s.expect", p->dir, p->name) > 0);
    char *text = tu_read(path, NULL);
    cr_assert(text, "cannot read %s", path);
    char *nl = strchr(text, '\n');
    cr_assert(nl, "%s: want two lines", path);
    *code = atoi(text);
    char *second = nl + 1;
    second[strcspn(second, "\n")] = '\0';
    snprintf(needle, cap, "%s", second);
    free(text);
    free(path);
}

static run_result run_inspect(const char *target, int json)
{
    char *argv[] = {(char *)tu_env("MP_BIN"), "inspect", (char *)target, json ? "--json" : NULL,
                    NULL};
    return tu_run(NULL, argv, NULL);
}

ParameterizedTestParameters(golden_errors, hostile_input_fails_with_named_exit_and_reason)
{
    size_t n;
    char *dir = src_path("tests/golden-errors/cases");
    case_param *v = list_cases(dir, ".expect", &n);
    free(dir);
    return cr_make_param_array(case_param, v, n, free_params);
}

ParameterizedTest(case_param *p, golden_errors, hostile_input_fails_with_named_exit_and_reason)
{
    int code;
    char needle[512];
    read_expect(p, &code, needle, sizeof needle);
    char *target = case_target(p);
    for (int json = 0; json < 2; json++) {
        run_result r = run_inspect(target, json);
        cr_expect_eq(r.status, code, "%s: exit %d, want %d; stderr: %s", p->name, r.status,
                     code, r.err);
        cr_expect_eq(r.out_len, 0, "%s: stdout not empty: %s", p->name, r.out);
        cr_expect_eq(tu_count_lines(r.err), 1, "%s: stderr is not one line: %s", p->name, r.err);
        cr_expect(strncmp(r.err, "modelprep: ", 11) == 0, "%s: %s", p->name, r.err);
        cr_expect(strstr(r.err, needle), "%s: stderr lacks '%s': %s", p->name, needle, r.err);
        tu_run_free(&r);
    }
    free(target);
}

ParameterizedTestParameters(golden, valid_edge_files_are_read)
{
    size_t n;
    char *dir = src_path("tests/golden/cases");
    case_param *v = list_cases(dir, ".expect", &n);
    free(dir);
    return cr_make_param_array(case_param, v, n, free_params);
}

ParameterizedTest(case_param *p, golden, valid_edge_files_are_read)
{
    int code;
    char needle[512];
    read_expect(p, &code, needle, sizeof needle);
    char *target = case_target(p);
    run_result r = run_inspect(target, 1);
    cr_expect_eq(r.status, code, "%s: exit %d; stderr: %s", p->name, r.status, r.err);
    cr_expect(strstr(r.out, needle), "%s: stdout lacks '%s': %s", p->name, needle, r.out);
    cr_expect_eq(r.err_len, 0, "%s: stderr: %s", p->name, r.err);
    tu_run_free(&r);
    r = run_inspect(target, 0);
    cr_expect_eq(r.status, code, "%s (table): exit %d; stderr: %s", p->name, r.status, r.err);
    tu_run_free(&r);
    free(target);
}

ParameterizedTestParameters(cli, script_output_matches_expectation)
{
    size_t n;
    char *dir = src_path("tests/cli");
    case_param *v = list_cases(dir, ".sh", &n);
    free(dir);
    return cr_make_param_array(case_param, v, n, free_params);
}

static char *sibling(const case_param *p, const char *ext)
{
    char *path = NULL;
    cr_assert(asprintf(&path, "%s/%s%s", p->dir, p->name, ext) > 0);
    return path;
}

ParameterizedTest(case_param *p, cli, script_output_matches_expectation)
{
    char *script = sibling(p, ".sh");
    char *cwd = tu_tempdir();
    char *argv[] = {"/bin/bash", "-e", script, NULL};
    char *env[6];
    char *tools = (char *)tu_env("MP_TOOLS");
    cr_assert(asprintf(&env[0], "MODELPREP=%s", tu_env("MP_BIN")) > 0);
    cr_assert(asprintf(&env[1], "MKMODEL=%s/mkmodel", tools) > 0);
    cr_assert(asprintf(&env[2], "STCOPY=%s/stcopy", tools) > 0);
    cr_assert(asprintf(&env[3], "SRC=%s", tu_env("MP_SRC")) > 0);
    env[4] = "LC_ALL=C";
    env[5] = NULL;
    run_result r = tu_run(cwd, argv, env);

    char *exit_path = sibling(p, ".exit"), *out_path = sibling(p, ".stdout");
    char *err_path = sibling(p, ".stderr");
    const char *refresh = getenv("MP_REFRESH");
    if (refresh && strcmp(refresh, "1") == 0) {
        char code[16];
        int l = snprintf(code, sizeof code, "%d\n", r.status);
        tu_write(exit_path, code, (size_t)l);
        tu_write(out_path, r.out, r.out_len);
        /* Written as a glob that matches exactly; edit in '*' where output may vary. */
        char *glob = malloc(2 * r.err_len + 1), *g = glob;
        for (const char *c = r.err; *c; c++) {
            if (strchr("*?[\\", *c)) *g++ = '\\';
            *g++ = *c;
        }
        tu_write(err_path, glob, (size_t)(g - glob));
        free(glob);
    }
    char *want_exit = tu_read(exit_path, NULL);
    char *want_out = tu_read(out_path, NULL);
    char *want_err = tu_read(err_path, NULL);
    int code = want_exit ? atoi(want_exit) : 0;
    cr_expect_eq(r.status, code, "%s: exit %d, want %d; stderr: %s", p->name, r.status, code, r.err);
    if (want_out) cr_expect_str_eq(r.out, want_out, "%s: stdout differs", p->name);
    if (want_err) {
        cr_expect_eq(fnmatch(want_err, r.err, 0), 0, "%s: stderr '%s' does not match '%s'",
                     p->name, r.err, want_err);
    }
    cr_expect(want_out || want_err || want_exit, "%s: no expectation files", p->name);
    free(want_exit);
    free(want_out);
    free(want_err);
    free(exit_path);
    free(out_path);
    free(err_path);
    tu_run_free(&r);
    tu_rmtree(cwd);
    free(cwd);
    free(script);
    for (int i = 0; i < 4; i++) free(env[i]);
}

static void judge_summary(run_result *r);

/* Runs a tests/ref script (with one optional argument). Its summary line "NAME ok: N checks
 * passed[, M skipped]" decides: a failure fails; a script that passed nothing and skipped
 * something is a skipped test, with its "SKIP: reason" lines as the reason (cr_skip_test, counted
 * in the closing line by the report hook below), never a pass. */
static void run_python_check_arg(const char *rel, const char *arg)
{
    if (access(tu_env("MP_PYTHON"), X_OK) != 0) {
        fprintf(stderr, "SKIP %s: no Python reference environment at %s (make pyref installs it from PyPI)\n",
                rel, tu_env("MP_PYTHON"));
        cr_skip_test("no Python reference environment");
    }
    run_result r = tu_run_script(tu_env("MP_PYTHON"), rel, arg);
    judge_summary(&r);
}

static void run_python_check(const char *rel) { run_python_check_arg(rel, NULL); }

/* tests/sched: the partitioned jobs under GNU parallel, a one-node Slurm cluster and the
 * Kubernetes manifest's schema check, judged by the same summary line; each prints SKIP with its
 * reason where its scheduler cannot run here (counted as skipped, never passed). */
static void run_sched_check(const char *interpreter /* found on PATH */, const char *rel)
{
    char *script = src_path(rel);
    char *cwd = tu_tempdir();
    char *argv[] = {"/usr/bin/env", (char *)interpreter, script, NULL};
    char *env[3];
    cr_assert(asprintf(&env[0], "MODELPREP=%s", tu_env("MP_BIN")) > 0);
    cr_assert(asprintf(&env[1], "MKMODEL=%s/mkmodel", tu_env("MP_TOOLS")) > 0);
    env[2] = NULL;
    run_result r = tu_run(cwd, argv, env);
    tu_rmtree(cwd);
    free(cwd);
    free(script);
    free(env[0]);
    free(env[1]);
    judge_summary(&r);
}

Test(schedulers, gnu_parallel_parts_equal_one_process, .timeout = 600)
{
    run_sched_check("sh", "tests/sched/parallel.sh");
}

Test(schedulers, slurm_array_parts_and_merge_equal_one_process_and_recover, .timeout = 900)
{
    run_sched_check("sh", "tests/sched/slurm.sh");
}

Test(schedulers, kubernetes_indexed_job_matches_the_job_schema, .timeout = 120)
{
    run_sched_check("python3", "tests/sched/k8s_check.py");
}

/* A check script's verdict from its exit status and its summary line "NAME ok: N checks passed[,
 * M skipped]": a failure fails; a script that passed nothing and skipped something is a skipped
 * test, with its "SKIP: reason" lines as the reason (cr_skip_test, counted in the closing line by
 * the report hook below), never a pass. Frees r. */
static void judge_summary(run_result *rr)
{
    run_result r = *rr;
    cr_expect_eq(r.status, 0, "check failed (exit %d):\n%s\n%s", r.status, r.out, r.err);
    const char *ok = strstr(r.out, " ok: ");
    const char *skip_line = strncmp(r.out, "SKIP: ", 6) == 0 ? r.out : strstr(r.out, "\nSKIP: ");
    if (r.status == 0 && !ok && skip_line) { /* skipped whole, before any check (make test OFFLINE=1) */
        char why[512];
        snprintf(why, sizeof why, "%s", skip_line + (skip_line[0] == '\n') + 6);
        why[strcspn(why, "\n")] = '\0';
        tu_run_free(&r);
        cr_skip_test("%s", why);
    }
    unsigned long passed = 0, skipped = 0;
    int n = ok ? sscanf(ok, " ok: %lu checks passed, %lu skipped", &passed, &skipped) : 0;
    cr_assert(n >= 1 && strstr(ok, " checks passed"), "no summary line:\n%s\n%s", r.out, r.err);
    if (r.status == 0 && passed == 0) {
        cr_assert_gt(skipped, 0, "the script passed no check and skipped none:\n%s", r.out);
        char why[1024] = "";
        for (const char *s = strstr(r.out, "SKIP: "); s; s = strstr(s + 1, "SKIP: "))
            snprintf(why + strlen(why), sizeof why - strlen(why), "%s%.*s", why[0] ? "; " : "",
                     (int)strcspn(s + 6, "\n"), s + 6);
        tu_run_free(&r);
        cr_skip_test("%s", why);
    }
    cr_expect_eq(skipped, 0, "checks skipped among passed ones (give them a test of their own):\n%s", r.out);
    tu_run_free(&r);
}

Test(python_crosscheck, upstream_safetensors_agrees_both_ways, .timeout = 300)
{
    run_python_check("tests/ref/st_crosscheck.py");
}

Test(python_crosscheck, dequantization_equals_numpy_bit_for_bit, .timeout = 600)
{
    run_python_check("tests/ref/quant_crosscheck.py");
}

Test(python_crosscheck, fp8_sources_dequantize_as_their_producers_round, .timeout = 600)
{
    run_python_check("tests/ref/float_crosscheck.py");
}

Test(python_crosscheck, float_formats_verify_bit_for_bit_on_the_device, .timeout = 600)
{
    run_python_check("tests/ref/float_verify.py");
}

/* The torch venv's python (owned by the caller), or the test skipped with the reason
 * tests/ref/torch_env.sh left in `skip_file` (".skip": torch itself; ".skip-bnb": bitsandbytes). */
static char *torch_python(const char *skip_file)
{
    TU_JUDGES_OR_SKIP();
    const char *venv = getenv("MP_TORCH_VENV");
    if (!venv) cr_skip_test("MP_TORCH_VENV is not set (run through make test)");
    const char *files[] = {".skip", skip_file};
    for (size_t i = 0; i < 2; i++) {
        char *skip = tu_path(venv, files[i]), *why = tu_read(skip, NULL);
        free(skip);
        if (why) cr_skip_test("%s", why);
    }
    char *py = tu_path(venv, "bin/python");
    if (access(py, X_OK) != 0) cr_skip_test("no torch venv at %s (make torchref)", venv);
    return py;
}

/* A script in the torch venv, judged by the consumers' own code (torch, transformers,
 * compressed-tensors, bitsandbytes); its summary line starts with `name ok: `. */
static void run_torch_judge(const char *rel, const char *skip_file, const char *name)
{
    char *py = torch_python(skip_file);
    char line[64];
    snprintf(line, sizeof line, "%s ok: ", name);
    run_result r = tu_run_script(py, rel, NULL);
    cr_expect_eq(r.status, 0, "%s failed (exit %d):\n%s\n%s", rel, r.status, r.out, r.err);
    cr_expect(strstr(r.out, line), "no summary line:\n%s", r.out);
    tu_run_free(&r);
    free(py);
}

/* Against torch, transformers and compressed-tensors themselves. */
Test(python_crosscheck, fp8_sources_equal_transformers_compressed_tensors_and_deepseek, .timeout = 900)
{
    run_torch_judge("tests/ref/float_upstream.py", ".skip", "float_upstream");
}

Test(python_crosscheck, fp4_sources_dequantize_as_their_producers_round, .timeout = 600)
{
    run_python_check("tests/ref/fp4_crosscheck.py");
}

/* compressed-tensors' NVFP4/MXFP4 decompressors, transformers' gpt-oss MXFP4 conversion and a
 * tiny GptOssForCausalLM loaded from the converted output. */
Test(python_crosscheck, fp4_sources_equal_compressed_tensors_and_transformers_gpt_oss, .timeout = 900)
{
    run_torch_judge("tests/ref/fp4_upstream.py", ".skip", "fp4_upstream");
}

/* DeepSeek-V4 FP4/FP8 hybrids: transformers' Fp8Dequantize bit for bit, a tiny DeepseekV4ForCausalLM
 * loaded from the converted output, and verify on the cpu backend. */
Test(python_crosscheck, deepseek_v4_sources_equal_transformers_and_load_in_deepseek_v4, .timeout = 900)
{
    run_torch_judge("tests/ref/dsv4_upstream.py", ".skip", "dsv4_upstream");
}

/* Against bitsandbytes' own CPU dequantization (PyPI, in the torch venv), and transformers'
 * loading of the converted checkpoint. */
Test(python_crosscheck, bitsandbytes_sources_equal_bitsandbytes_and_load_in_transformers, .timeout = 900)
{
    run_torch_judge("tests/ref/bnb_upstream.py", ".skip-bnb", "bnb_upstream");
}

/* GGUF -> Hugging Face judged by transformers: the driver runs in build/venv (gguf-py writes the
 * GGUFs), transformers in the torch venv (tests/ref/hf_load.py). */
Test(python_crosscheck, gguf_to_hf_loads_in_transformers_with_the_gguf_logits_and_tokens, .timeout = 900)
{
    char *py = torch_python(".skip");
    setenv("MP_TORCH_PYTHON", py, 1);
    free(py);
    run_python_check("tests/ref/gguf_hf_transformers.py");
}

Test(python_crosscheck, split_is_exact_resumable_and_contained, .timeout = 600)
{
    run_python_check("tests/ref/split_crosscheck.py");
}

Test(robustness, killed_or_disk_full_jobs_leave_nothing_half_done, .timeout = 900)
{
    run_python_check("tests/ref/crash_safety.py");
}

Test(robustness, no_done_marker_stands_beside_an_incomplete_layer_file, .timeout = 600)
{
    run_python_check("tests/ref/split_markers_crash.py");
}

Test(python_crosscheck, gguf_reads_dequantizes_and_converts_as_gguf_py_does, .timeout = 600)
{
    run_python_check("tests/ref/gguf_crosscheck.py");
}

Test(python_crosscheck, real_gguf_model_dequantizes_and_converts_as_gguf_py_does, .timeout = 900)
{
    run_python_check("tests/ref/gguf_real_model.py");
}

Test(python_crosscheck, gguf_sources_split_into_layers_or_gguf_split_sets, .timeout = 600)
{
    run_python_check("tests/ref/split_gguf_check.py");
}

Test(python_crosscheck, verify_passes_good_outputs_and_fails_broken_ones, .timeout = 600)
{
    run_python_check("tests/ref/verify_check.py");
}

Test(robustness, peak_memory_is_bounded_on_pathological_headers, .timeout = 900)
{
    run_python_check("tests/ref/limits_memory.py");
}

Test(python_crosscheck, verify_refuses_the_level_zero_null_driver, .timeout = 300)
{
    run_python_check_arg("tests/ref/verify_check.py", "--null-driver");
}

Test(python_crosscheck, every_repack_pair_is_exact_or_refused, .timeout = 600)
{
    run_python_check("tests/ref/repack_crosscheck.py");
}

/* tests/ref/split_runtimes.py runs in build/rtvenv, where `make runtimes` installs AirLLM and
 * RabbitLLM from PyPI; when that install failed, or the runtimes do not import, the test is
 * skipped with the reason, never passed. */
Test(runtimes, airllm_and_rabbitllm_use_the_split_as_it_is, .timeout = 1800)
{
    TU_JUDGES_OR_SKIP();
    const char *stamp = getenv("MP_RT_STAMP");
    if (!stamp || access(stamp, F_OK) != 0) {
        char *why = getenv("MP_RT_SKIP") ? tu_read(getenv("MP_RT_SKIP"), NULL) : NULL;
        cr_log_warn("SKIP: %s", why ? why : "build/rtvenv is not installed (make runtimes)");
        cr_skip_test("SKIP: %s", why ? why : "build/rtvenv is not installed (make runtimes)");
    }
    run_result r = tu_run_script(tu_env("MP_RT_PYTHON"), "tests/ref/split_runtimes.py", NULL);
    char *skip = strstr(r.out, "SKIP: ");
    if (skip && r.status == 0) {
        cr_log_warn("%s", skip);
        cr_skip_test("%s", skip);
    }
    cr_expect_eq(r.status, 0, "split_runtimes.py failed (exit %d):\n%s\n%s", r.status, r.out, r.err);
    cr_expect(strstr(r.out, " ok: ") && strstr(r.out, " checks passed"), "no summary line:\n%s\n%s", r.out, r.err);
    tu_run_free(&r);
}

ParameterizedTestParameters(golden_quant, dequantizes_to_the_checked_in_f32)
{
    size_t n;
    char *dir = src_path("tests/golden/quant");
    case_param *v = list_cases(dir, ".expected.safetensors", &n);
    free(dir);
    return cr_make_param_array(case_param, v, n, free_params);
}

/* A fixture made by tests/ref/quant_crosscheck.py --write-fixtures: the checkpoint NAME/ and
 * NAME.expected.safetensors, numpy's f32 dequantization plus the dense tensors as they are
 * (hence --keep-dense-dtype; the cast is checked by quant_crosscheck.py). */
ParameterizedTest(case_param *p, golden_quant, dequantizes_to_the_checked_in_f32)
{
    char *src = tu_path(p->dir, p->name);
    char *expected = NULL;
    cr_assert(asprintf(&expected, "%s.expected.safetensors", src) > 0);
    char *tmp = tu_tempdir();
    char *out = tu_path(tmp, "out");
    char *argv[] = {(char *)tu_env("MP_BIN"), "convert", src, out, "--to", "f32", "--quiet",
                    "--keep-dense-dtype", NULL};
    run_result r = tu_run(NULL, argv, NULL);
    cr_assert_eq(r.status, 0, "%s: exit %d: %s", p->name, r.status, r.err);
    tu_run_free(&r);
    mp_err err = MP_ERR_INIT;
    mp_st_model *got = NULL, *want = NULL;
    cr_assert_eq(mp_st_open(&got, out, &err), MP_OK, "%s: %s", p->name, err.msg);
    cr_assert_eq(mp_st_open(&want, expected, &err), MP_OK, "%s: %s", p->name, err.msg);
    cr_expect_eq(mp_st_n_tensors(got), mp_st_n_tensors(want), "%s: tensor count", p->name);
    for (size_t i = 0; i < mp_st_n_tensors(want); i++) {
        const mp_tensor *w = mp_st_tensor(want, i), *g = mp_st_find(got, w->name);
        cr_assert(g, "%s: '%s' missing from the output", p->name, w->name);
        cr_expect_eq(g->dtype, w->dtype, "%s: '%s' dtype", p->name, w->name);
        cr_assert_eq(g->n_bytes, w->n_bytes, "%s: '%s' size", p->name, w->name);
        uint8_t *a = malloc(w->n_bytes + 1), *b = malloc(w->n_bytes + 1);
        cr_assert_eq(mp_st_read(want, w, 0, a, w->n_bytes, &err), MP_OK);
        cr_assert_eq(mp_st_read(got, g, 0, b, g->n_bytes, &err), MP_OK);
        cr_expect(memcmp(a, b, w->n_bytes) == 0, "%s: '%s' differs from numpy", p->name, w->name);
        free(a);
        free(b);
    }
    mp_st_close(got);
    mp_st_close(want);
    tu_rmtree(tmp);
    free(tmp);
    free(out);
    free(src);
    free(expected);
}
