/*
 * test_verify_progress.c - verify's progress callback: the library reports its numeric steps
 * through mp_verify_opts.progress as convert and split report (mp_progress_fn, mp_event; the
 * command line draws one bar for all): START with the total, an ADVANCE per step in order, END.
 */
#include "testutil.h"
#include "../../verify/verify.h"
#include "../../include/modelprep.h"

#include <criterion/criterion.h>
#include <stdlib.h>

typedef struct calls {
    uint64_t done[64], total[64];
    mp_event_kind kind[64];
    size_t n;
} calls;

static void record(void *user, const mp_event *ev)
{
    calls *c = user;
    cr_assert_str_eq(ev->label, "verify");
    cr_assert_str_eq(ev->unit, "steps");
    if (c->n < 64) c->done[c->n] = ev->done, c->total[c->n] = ev->total, c->kind[c->n] = ev->kind;
    c->n++;
}

/* c holds START, ADVANCE 1..steps, END, the total always `steps`. */
static void assert_phase(const calls *c, uint64_t steps)
{
    cr_assert_eq(c->n, steps + 2, "calls: %zu", c->n);
    for (size_t i = 0; i < c->n; i++) {
        mp_event_kind want = i == 0 ? MP_EVENT_START : i == c->n - 1 ? MP_EVENT_END : MP_EVENT_ADVANCE;
        cr_assert_eq(c->kind[i], want, "call %zu is kind %d", i, (int)c->kind[i]);
        cr_assert_eq(c->total[i], steps);
        cr_assert_eq(c->done[i], i == c->n - 1 ? steps : i, "call %zu reported %llu", i, (unsigned long long)c->done[i]);
    }
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

/* Verifies path on the cpu backend, recording into c (NULL: no callback). */
static void verify_cpu(const char *path, uint32_t rows, calls *c, mp_verify_report *r)
{
    mp_verify_opts o = {.path = path, .device = "cpu", .rows = rows, .m = 8, .seed = 1,
                        .progress = c ? record : NULL, .progress_user = c};
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_verify_run(&o, r, &err), MP_OK, "%s", err.msg);
}

/* One step per quantized linear (7 in a one-layer sample) plus one per weight file (the GGUF
 * block check), reported from 0 to the total, never past it, the total never changing. */
Test(unit_verify, progress_counts_every_numeric_step_in_order)
{
    char *dir = tu_tempdir();
    char *path = sample(dir, "sample", (char *[]){NULL});
    calls c = {0};
    mp_verify_report r;
    verify_cpu(path, 4, &c, &r);
    cr_assert_eq(r.n_numeric, 7);
    assert_phase(&c, 8);
    mp_verify_report_free(&r);
    verify_cpu(path, 4, NULL, &r); /* no callback: the same report */
    cr_assert_eq(r.n_numeric, 7);
    mp_verify_report_free(&r);
    /* The public mp_verify() passes its callback through. */
    c.n = 0;
    mp_verify_options po = MP_VERIFY_OPTIONS_INIT;
    po.rows = 4, po.progress = record, po.progress_user = &c;
    mp_verify_summary sum;
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_verify(path, &po, &sum, &err), MP_OK, "%s", err.msg);
    assert_phase(&c, 8);
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
    mp_verify_report r;
    verify_cpu(out, 2, &c, &r);
    cr_assert_eq(r.n_fail, 0);
    /* 1 file + 4 attention linears + w13 and w2; the 4 experts x 3 slices are 12 checks. */
    assert_phase(&c, 7);
    cr_assert_eq(r.n_numeric, 4 + 12);
    mp_verify_report_free(&r);
    tu_rmtree(dir);
    free(dir);
    free(src);
    free(out);
}
