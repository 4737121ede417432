/*
 * test_verify_progress.c - verify's progress callback: the library reports its numeric steps
 * through mp_verify_opts.progress (the command line draws the bar), in order, to the total.
 */
#include "testutil.h"
#include "../../verify/verify.h"

#include <criterion/criterion.h>
#include <stdlib.h>

typedef struct calls {
    uint64_t done[64], total[64];
    size_t n;
} calls;

static void record(void *user, uint64_t done, uint64_t total)
{
    calls *c = user;
    if (c->n < 64) c->done[c->n] = done, c->total[c->n] = total;
    c->n++;
}

static char *sample(const char *dir, const char *name, char *const extra[])
{
    char *path = tu_path(dir, name), *tool = tu_path(tu_env("MP_TOOLS"), "mkmodel");
    char *argv[12] = {tool, path, "--layers", "1", "--sym"};
    for (int i = 0; extra[i]; i++) argv[5 + i] = extra[i];
    run_result r = tu_run(NULL, argv, NULL);
    cr_assert_eq(r.status, 0, "mkmodel: %s", r.err);
    tu_run_free(&r);
    free(tool);
    return path;
}

/* One step per quantized linear (7 in a one-layer sample) plus one per weight file (the GGUF
 * block check), reported from 0 to the total, never past it, the total never changing. */
Test(unit_verify, progress_counts_every_numeric_step_in_order)
{
    char *dir = tu_tempdir();
    char *path = sample(dir, "sample", (char *[]){NULL});
    calls c = {0};
    mp_verify_opts o = {.path = path, .device = "cpu", .rows = 4, .m = 8, .seed = 1, .progress = record,
                        .progress_user = &c};
    mp_verify_report r;
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_verify_run(&o, &r, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(r.n_numeric, 7);
    cr_assert_eq(c.n, 9, "calls: %zu", c.n);
    for (size_t i = 0; i < c.n; i++) {
        cr_assert_eq(c.total[i], 8);
        cr_assert_eq(c.done[i], i, "call %zu reported %llu", i, (unsigned long long)c.done[i]);
    }
    mp_verify_report_free(&r);
    o.progress = NULL; /* no callback: no calls, the same report */
    c.n = 0;
    cr_assert_eq(mp_verify_run(&o, &r, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(c.n, 0);
    cr_assert_eq(r.n_numeric, 7);
    mp_verify_report_free(&r);
    tu_rmtree(dir);
    free(dir);
    free(path);
}

/* Stacked experts count one step per stacked tensor (w13 and w2 of each MoE block), not per
 * expert slice. */
Test(unit_verify, progress_counts_a_stacked_tensor_as_one_step)
{
    char *dir = tu_tempdir();
    char *src = sample(dir, "moe", (char *[]){"--experts", "4", NULL});
    char *out = tu_path(dir, "stacked");
    char *argv[] = {(char *)tu_env("MP_BIN"), "convert", src, out, "--to", "cutlass-int4", "--stack-experts",
                    "--quiet", NULL};
    run_result rr = tu_run(NULL, argv, NULL);
    cr_assert_eq(rr.status, 0, "convert: %s", rr.err);
    tu_run_free(&rr);
    calls c = {0};
    mp_verify_opts o = {.path = out, .device = "cpu", .rows = 2, .m = 8, .seed = 1, .progress = record,
                        .progress_user = &c};
    mp_verify_report r;
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_verify_run(&o, &r, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(r.n_fail, 0);
    /* 1 file + 4 attention linears + w13 and w2; the 4 experts x 3 slices are 12 checks. */
    cr_assert_eq(c.n, 1 + 7, "calls: %zu", c.n);
    cr_assert_eq(c.total[0], 7);
    cr_assert_eq(c.done[c.n - 1], 7);
    cr_assert_eq(r.n_numeric, 4 + 12);
    mp_verify_report_free(&r);
    tu_rmtree(dir);
    free(dir);
    free(src);
    free(out);
}
