/*
 * test_cuda.c - the backend table and the cuda backend without a GPU: every kernel family
 * compiled by NVRTC for sm_80 and sm_90 (no driver needed), an architecture NVRTC cannot target,
 * and the toolkit's stub driver refused with exit 3. What needs NVRTC or the stub is skipped,
 * and says why, where they are absent.
 */
#define _GNU_SOURCE
#include "testutil.h"
#include "../../verify/verify.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Test(unit_cuda, backend_table_lists_every_backend_once_with_a_status)
{
    mp_backend_report r[MP_BACKEND_COUNT];
    mp_devices_list(r);
    static const char *const want[MP_BACKEND_COUNT] = {"level-zero", "opencl", "cuda", "cpu"};
    for (int b = 0; b < MP_BACKEND_COUNT; b++) {
        cr_assert_eq(r[b].backend, (mp_backend)b);
        cr_assert_str_eq(mp_backend_name((mp_backend)b), want[b]);
        cr_assert(r[b].status[0], "backend %s has no status", want[b]);
        for (size_t i = 0; i < r[b].n_devices; i++) {
            cr_assert_eq(r[b].devices[i].backend, (mp_backend)b);
            cr_assert_eq(r[b].devices[i].index, i);
            cr_assert(r[b].devices[i].name[0] && r[b].devices[i].type[0]);
        }
    }
    cr_assert_str_eq(r[MP_BACKEND_CPU].status, "ok");
}

/* NULL when this machine has no NVRTC (the test is then skipped with the reason). */
static const char *nvrtc_or_skip(char *nvrtc, size_t cap)
{
    char log[64];
    mp_err err = MP_ERR_INIT;
    if (mp_cuda_compile_check(mp_kfamily_find("cutlass_int4"), "sm_90", nvrtc, cap, log, sizeof log, &err) != MP_OK && !nvrtc[0])
        cr_skip_test("SKIP: %s", err.msg);
    return nvrtc;
}

Test(unit_cuda, every_kernel_compiles_with_nvrtc_for_sm80_and_sm90_without_warnings)
{
    char nvrtc[96] = "";
    nvrtc_or_skip(nvrtc, sizeof nvrtc);
    static const char *const archs[2] = {"sm_80", "sm_90"};
    for (int a = 0; a < 2; a++)
        for (int f = 0; f < mp_kfamily_count(); f++) {
            char log[2048];
            mp_err err = MP_ERR_INIT;
            mp_errcode rc = mp_cuda_compile_check(f, archs[a], nvrtc, sizeof nvrtc, log, sizeof log, &err);
            cr_assert_eq(rc, MP_OK, "%s for %s: %s", mp_kfamily_name(f), archs[a], err.msg);
            cr_assert_str_eq(log, "", "%s for %s: NVRTC warns: %s", mp_kfamily_name(f), archs[a], log);
        }
}

Test(unit_cuda, an_architecture_nvrtc_cannot_target_is_a_device_error)
{
    char nvrtc[96] = "", log[256];
    nvrtc_or_skip(nvrtc, sizeof nvrtc);
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_cuda_compile_check(mp_kfamily_find("gptq"), "sm_30", nvrtc, sizeof nvrtc, log, sizeof log, &err), MP_E_DEVICE);
    cr_assert(strstr(err.msg, "cannot target sm_30: it knows sm_"), "%s", err.msg);
}

Test(unit_cuda, missing_nvrtc_library_is_a_device_error_naming_it)
{
    char nvrtc[96] = "", log[64];
    mp_err err = MP_ERR_INIT;
    setenv("MODELPREP_NVRTC", "/nonexistent/libnvrtc.so.13", 1);
    cr_assert_eq(mp_cuda_compile_check(mp_kfamily_find("gptq"), "sm_90", nvrtc, sizeof nvrtc, log, sizeof log, &err), MP_E_DEVICE);
    unsetenv("MODELPREP_NVRTC");
    cr_assert_str_eq(err.msg, "no NVRTC: MODELPREP_NVRTC='/nonexistent/libnvrtc.so.13' does not load "
                              "(/nonexistent/libnvrtc.so.13: cannot open shared object file: No such file or directory)");
    cr_assert_str_eq(nvrtc, "");
}

/* The toolkit's stub, made visible as libcuda.so.1: every backend call fails with
 * CUDA_ERROR_STUB_LIBRARY, and modelprep must say it is no driver (exit 3), not run anything. */
Test(unit_cuda, toolkit_stub_as_libcuda_is_refused_with_exit_3)
{
    const char *home = getenv("CUDA_HOME");
    char stub[512];
    snprintf(stub, sizeof stub, "%s/lib64/stubs/libcuda.so", home && *home ? home : "/usr/local/cuda");
    if (access(stub, R_OK) != 0) cr_skip_test("SKIP: no CUDA toolkit stub at %s", stub);
    char *dir = tu_tempdir(), *link = tu_path(dir, "libcuda.so.1"), *env = NULL;
    cr_assert_eq(symlink(stub, link), 0);
    cr_assert(asprintf(&env, "LD_LIBRARY_PATH=%s", dir) > 0);
    char *extra[] = {env, NULL};
    char *mk[] = {tu_path(tu_env("MP_TOOLS"), "mkmodel"), "m", "--layers", "1", NULL};
    run_result r = tu_run(dir, mk, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    tu_run_free(&r);
    const char *why = "cuda: libcuda.so.1 is the CUDA toolkit's stub, not a driver (CUDA_ERROR_STUB_LIBRARY): no "
                      "NVIDIA driver";
    char *dev[] = {(char *)tu_env("MP_BIN"), "devices", NULL};
    r = tu_run(dir, dev, extra);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, why), "%s", r.out);
    tu_run_free(&r);
    char *ver[] = {(char *)tu_env("MP_BIN"), "verify", "m", "--device", "cuda", NULL};
    r = tu_run(dir, ver, extra);
    cr_assert_eq(r.status, 3, "exit %d: %s", r.status, r.err);
    char want[300];
    snprintf(want, sizeof want, "modelprep: --device cuda: %s\nhint: for an NVIDIA GPU, install its driver", why);
    cr_assert_eq(strncmp(r.err, want, strlen(want)), 0, "%s", r.err); /* the reason, then the hint */
    cr_assert_str_eq(r.out, "");
    tu_run_free(&r);
    free(mk[0]), free(env), free(link);
    tu_rmtree(dir);
    free(dir);
}
