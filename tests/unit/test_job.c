/*
 * test_job.c - the engine as a library: convert and split called in-process through
 * include/modelprep.h, their progress events and notes (the library prints nothing), and
 * the job tail's files.
 */
#define _GNU_SOURCE
#include "testutil.h"
#include "../../include/modelprep.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct events {
    size_t n_start, n_advance, n_end, n_note;
    uint64_t total, last_done;
    int monotone;             /* every ADVANCE grew done and stayed within total */
    char label[16];
    char notes[4][600];
} events;

static void record(void *user, const mp_event *ev)
{
    events *e = user;
    switch (ev->kind) {
    case MP_EVENT_START:
        e->n_start++;
        e->total = ev->total;
        e->last_done = 0;
        snprintf(e->label, sizeof e->label, "%s", ev->label);
        break;
    case MP_EVENT_ADVANCE:
        if (ev->done <= e->last_done || ev->done > e->total) e->monotone = 0;
        e->last_done = ev->done;
        e->n_advance++;
        break;
    case MP_EVENT_END: e->n_end++; break;
    case MP_EVENT_NOTE:
        if (e->n_note < 4) snprintf(e->notes[e->n_note], sizeof e->notes[0], "%s", ev->note);
        e->n_note++;
        break;
    case MP_EVENT_COUNT: break;
    }
}

/* A 2-layer GPTQ model from mkmodel in a new temp dir; returns the dir (owned). */
static char *make_model(char **model, const char *extra)
{
    char *dir = tu_tempdir();
    *model = tu_path(dir, "m");
    char *mk = tu_path(tu_env("MP_TOOLS"), "mkmodel");
    char *argv[] = {mk, *model, "--layers", "2", "--hidden", "64", "--intermediate", "128", "--vocab", "32",
                    (char *)extra, NULL};
    run_result r = tu_run(NULL, argv, NULL);
    cr_assert_eq(r.status, 0, "mkmodel failed: %s", r.err);
    tu_run_free(&r);
    free(mk);
    return dir;
}

/* Removes the test's temp dir and frees its paths (NULL-terminated). */
static void release(char *dir, ...)
{
    tu_rmtree(dir);
    free(dir);
    va_list ap;
    va_start(ap, dir);
    for (char *p; (p = va_arg(ap, char *));) free(p);
    va_end(ap);
}

static int exists(const char *dir, const char *name)
{
    char *p = tu_path(dir, name);
    struct stat st;
    int ok = stat(p, &st) == 0;
    free(p);
    return ok;
}

Test(unit_job, convert_reports_progress_through_the_callback_up_to_the_bytes_written)
{
    char *model, *dir = make_model(&model, NULL);
    char *dst = tu_path(dir, "out");
    events e = {.monotone = 1};
    mp_convert_options o = MP_CONVERT_OPTIONS_INIT;
    o.to = "f16";
    o.max_shard_size = 20000;
    o.progress = record;
    o.progress_user = &e;
    mp_job_summary s;
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_convert(model, dst, &o, &s, &err), MP_OK, "%s", err.msg);
    cr_expect_eq(e.n_start, 1);
    cr_expect_str_eq(e.label, "convert");
    cr_expect_eq(e.total, s.bytes, "START's total %llu, bytes written %llu", (unsigned long long)e.total,
                 (unsigned long long)s.bytes);
    cr_expect(e.n_advance > 1);
    cr_expect(e.monotone, "done went backwards or past total");
    cr_expect_eq(e.last_done, e.total);
    cr_expect_eq(e.n_end, 1);
    cr_expect_eq(e.n_note, 0, "a clean run has nothing to say: %s", e.notes[0]);
    /* The shared job tail: an index for several shards, the manifest, side files. */
    cr_expect(s.n_files > 1);
    cr_expect(exists(dst, "model.safetensors.index.json"));
    cr_expect(exists(dst, "modelprep.json"));
    cr_expect(exists(dst, "tokenizer_config.json"));
    release(dir, dst, model, NULL);
}

Test(unit_job, stale_partial_output_is_a_note_not_a_line_on_stderr)
{
    char *model, *dir = make_model(&model, NULL);
    char *dst = tu_path(dir, "out"), *stale = tu_path(dir, "out.partial-abc123");
    cr_assert_eq(mkdir(stale, 0755), 0);
    events e = {.monotone = 1};
    mp_convert_options o = MP_CONVERT_OPTIONS_INIT;
    o.to = "bf16";
    o.force = 1;
    o.progress = record;
    o.progress_user = &e;
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_convert(model, dst, &o, NULL, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(e.n_note, 1);
    char want[600];
    snprintf(want, sizeof want, "removed '%s', left by an interrupted run", stale);
    cr_expect_str_eq(e.notes[0], want);
    struct stat st;
    cr_expect_neq(stat(stale, &st), 0, "the stale partial directory is still there");
    release(dir, stale, dst, model, NULL);
}

Test(unit_job, without_a_callback_jobs_run_silently)
{
    char *model, *dir = make_model(&model, NULL);
    char *dst = tu_path(dir, "layers");
    mp_split_options o = MP_SPLIT_OPTIONS_INIT;
    mp_job_summary s;
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_split(model, dst, &o, &s, &err), MP_OK, "%s", err.msg);
    cr_expect_eq(s.n_files, 5, "embed, 2 layers, norm, lm_head: got %zu", s.n_files);
    cr_expect(exists(dst, "model.layers.1.safetensors"));
    cr_expect(exists(dst, "model.safetensors.index.json"));
    cr_expect(exists(dst, "modelprep.json"));
    release(dir, dst, model, NULL);
}

Test(unit_job, an_interrupted_split_keeps_its_partial_directory_and_says_where)
{
    char *model, *dir = make_model(&model, NULL);
    char *dst = tu_path(dir, "layers");
    volatile int stop = 1;
    events e = {.monotone = 1};
    mp_split_options o = MP_SPLIT_OPTIONS_INIT;
    o.interrupted = &stop;
    o.progress = record;
    o.progress_user = &e;
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_split(model, dst, &o, NULL, &err), MP_E_INTERRUPTED, "%s", err.msg);
    cr_assert_eq(e.n_note, 1, "notes: %zu", e.n_note);
    cr_expect(strncmp(e.notes[0], "partial split kept in '", 23) == 0, "%s", e.notes[0]);
    cr_expect(strstr(e.notes[0], "layers.partial-") && strstr(e.notes[0], "' for --resume"), "%s", e.notes[0]);
    cr_expect_eq(e.n_end, 1, "END follows START even when the job stops");
    release(dir, dst, model, NULL);
}
