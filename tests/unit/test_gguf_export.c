/*
 * test_gguf_export.c - `convert --to gguf`, checked by tests/ref/gguf_export_check.py: against
 * gguf-py (always), and against llama.cpp itself (the judge, when `make llama-judge` could build
 * llama-cpp-python into build/llama-venv; skipped with the reason otherwise).
 */
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SKIP_STATUS 77

static run_result run_check(const char *python, const char *flag)
{
    return tu_run_script(python, "tests/ref/gguf_export_check.py", flag);
}

Test(python_crosscheck, gguf_export_is_exact_per_gguf_py_and_refuses_what_it_cannot_keep, .timeout = 900)
{
    run_result r = run_check(tu_env("MP_PYTHON"), NULL);
    cr_expect_eq(r.status, 0, "gguf export check failed (exit %d):\n%s\n%s", r.status, r.out, r.err);
    cr_expect(strstr(r.out, "gguf export ok: ") && strstr(r.out, " checks passed"), "no summary:\n%s\n%s", r.out, r.err);
    tu_run_free(&r);
}

Test(llama_cpp_judge, llama_cpp_loads_tokenizes_and_runs_every_exported_gguf, .timeout = 1800)
{
    TU_JUDGES_OR_SKIP();
    const char *py = getenv("MP_JUDGE_PYTHON");
    if (!py || access(py, X_OK) != 0)
        cr_skip_test("SKIP: the llama.cpp judge is not built (%s missing): `make llama-judge` builds "
                     "llama-cpp-python from PyPI into build/llama-venv", py ? py : "MP_JUDGE_PYTHON unset");
    run_result r = run_check(py, "--judge");
    if (r.status == SKIP_STATUS) {
        char reason[512];
        snprintf(reason, sizeof reason, "%s", r.out);
        tu_run_free(&r);
        cr_skip_test("%s", reason);
    }
    cr_expect_eq(r.status, 0, "llama.cpp judge failed (exit %d):\n%s\n%s", r.status, r.out, r.err);
    cr_expect(strstr(r.out, "gguf export judge (llama.cpp) ok: ") != NULL, "no summary:\n%s\n%s", r.out, r.err);
    cr_log_info("%s", r.out);
    tu_run_free(&r);
}
