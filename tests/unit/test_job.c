/*
 * test_job.c - the engine as a library: convert and split called in-process through
 * include/modelprep.h, their progress events and notes (the library prints nothing), and
 * the job tail's files.
 */
#define _GNU_SOURCE
#include "testutil.h"
#include "../../include/modelprep.h"
#include "../../formats/formats.h"

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

/* A GGUF file written here: "norm" F32 [4], and "w" Q8_0 with ne = {64, 3} (3 rows of two blocks),
 * block b of row r holding d = 0.5 * (r + 1) (f16) and codes q[i] = i - 16 + b, so that
 * w[r][32 b + i] = d * q[i], a known answer independent of the dequantizer. */
static char *write_q8_gguf(const char *dir)
{
    char *path = tu_path(dir, "m.gguf");
    mp_err err = MP_ERR_INIT;
    mp_gguf_writer *w = NULL;
    cr_assert_eq(mp_gguf_writer_open(&w, path, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(mp_gguf_writer_add_str(w, "general.architecture", "llama", &err), MP_OK);
    const uint64_t ne_norm[] = {4}, ne_w[] = {64, 3};
    cr_assert_eq(mp_gguf_writer_add_tensor(w, "norm", MP_GGUF_F32, 1, ne_norm, &err), MP_OK);
    cr_assert_eq(mp_gguf_writer_add_tensor(w, "w", MP_GGUF_Q8_0, 2, ne_w, &err), MP_OK);
    cr_assert_eq(mp_gguf_writer_begin(w, &err), MP_OK, "%s", err.msg);
    const float norm[4] = {1, 2, 3, 4};
    cr_assert_eq(mp_gguf_writer_write(w, norm, sizeof norm, &err), MP_OK);
    static const uint16_t d_f16[3] = {0x3800, 0x3C00, 0x3E00}; /* 0.5, 1.0, 1.5 */
    for (int r = 0; r < 3; r++)
        for (int b = 0; b < 2; b++) {
            uint8_t block[34] = {(uint8_t)(d_f16[r] & 0xff), (uint8_t)(d_f16[r] >> 8)};
            for (int i = 0; i < 32; i++) block[2 + i] = (uint8_t)(int8_t)(i - 16 + b);
            cr_assert_eq(mp_gguf_writer_write(w, block, sizeof block, &err), MP_OK);
        }
    cr_assert_eq(mp_gguf_writer_finish(w, &err), MP_OK, "%s", err.msg);
    return path;
}

Test(unit_job, a_gguf_model_lists_its_tensors_and_dequantizes_block_rows)
{
    char *dir = tu_tempdir(), *path = write_q8_gguf(dir);
    mp_model *m = NULL;
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_model_open(&m, path, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(mp_model_n_tensors(m), 2);
    mp_tensor_info ti;
    cr_assert_eq(mp_model_tensor(m, 1, &ti, &err), MP_OK);
    cr_expect_str_eq(ti.name, "w");
    cr_expect_str_eq(ti.dtype, "Q8_0");
    cr_expect_eq(ti.n_dims, 2);
    cr_expect(ti.shape[0] == 3 && ti.shape[1] == 64, "shape [%llu, %llu], not [3, 64]",
              (unsigned long long)ti.shape[0], (unsigned long long)ti.shape[1]);
    cr_expect_eq(ti.n_bytes, 3 * 2 * 34);
    cr_expect_str_eq(ti.file, "m.gguf");
    cr_expect_eq(mp_model_tensor(m, 2, &ti, &err), MP_E_USAGE);

    cr_assert_eq(mp_model_n_linears(m), 1, "the F32 vector is no linear");
    mp_linear_info li;
    cr_assert_eq(mp_model_linear(m, 0, &li, &err), MP_OK);
    cr_expect_str_eq(li.name, "w");
    cr_expect_str_eq(li.method, "gguf");
    cr_expect_str_eq(li.format, "Q8_0");
    cr_expect(li.n_rows == 3 && li.k_cols == 64 && li.group_size == 32 && li.symmetric == -1);

    float rows[2][64];
    cr_assert_eq(mp_model_dequantize_rows(m, 0, 1, 3, &rows[0][0], &err), MP_OK, "%s", err.msg);
    size_t differ = 0;
    for (int r = 1; r < 3; r++)
        for (int k = 0; k < 64; k++)
            differ += rows[r - 1][k] != 0.5f * (float)(r + 1) * (float)(k % 32 - 16 + k / 32);
    cr_expect_eq(differ, 0, "%zu of 128 values differ from d * q", differ);
    cr_expect_eq(mp_model_dequantize_rows(m, 0, 2, 4, &rows[0][0], &err), MP_E_USAGE);

    int8_t q[2];
    cr_assert_eq(mp_model_read(m, 1, 34 + 2, q, sizeof q, &err), MP_OK, "%s", err.msg);
    cr_expect(q[0] == -15 && q[1] == -14, "row 0 block 1 codes %d %d", q[0], q[1]);
    cr_expect_eq(mp_model_read(m, 1, 3 * 2 * 34 - 1, q, 2, &err), MP_E_USAGE, "a read past the tensor");
    mp_model_close(m);
    release(dir, path, NULL);
}

Test(unit_job, safetensors_linears_dequantize_and_bad_rows_are_usage_errors)
{
    char *model, *dir = make_model(&model, "--sym");
    mp_model *m = NULL;
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_model_open(&m, model, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(mp_model_n_linears(m), 14, "7 linears a layer");
    mp_linear_info li;
    cr_assert_eq(mp_model_linear(m, 0, &li, &err), MP_OK);
    cr_expect_str_eq(li.name, "model.layers.0.mlp.down_proj");
    cr_expect_str_eq(li.method, "gptq");
    cr_expect(li.symmetric && li.bits == 4 && li.n_rows == 64 && li.k_cols == 128);
    float *all = malloc(64 * 128 * sizeof *all), part[2 * 128];
    cr_assert_eq(mp_model_dequantize_rows(m, 0, 0, 64, all, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(mp_model_dequantize_rows(m, 0, 10, 12, part, &err), MP_OK, "%s", err.msg);
    cr_expect_eq(memcmp(part, all + 10 * 128, sizeof part), 0, "rows 10-11 alone differ from the same rows of all");
    cr_expect_eq(mp_model_dequantize_rows(m, 0, 12, 10, part, &err), MP_E_USAGE);
    cr_expect_eq(mp_model_linear(m, 14, &li, &err), MP_E_USAGE);
    free(all);
    mp_model_close(m);
    release(dir, model, NULL);
}

/* mp_part_options: the parts of a job, run through the library in any order, write byte for
 * byte what the whole job writes, manifest included (the last part merges); a part outside
 * 0 <= index < count is a usage error. */
Test(unit_job, parts_through_the_library_equal_the_whole_job)
{
    char *model, *dir = make_model(&model, NULL);
    char *one = tu_path(dir, "one"), *parts = tu_path(dir, "parts");
    cr_assert(mkdir(one, 0755) == 0 && mkdir(parts, 0755) == 0);
    char *a = tu_path(one, "out"), *b = tu_path(parts, "out");
    mp_convert_options o = MP_CONVERT_OPTIONS_INIT;
    o.to = "f16";
    o.max_shard_size = 20000;
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_convert(model, a, &o, NULL, &err), MP_OK, "%s", err.msg);
    o.part.count = 3;
    for (unsigned i = 3; i-- > 0;) {
        o.part.index = i;
        cr_assert_eq(mp_convert(model, b, &o, NULL, &err), MP_OK, "part %u: %s", i, err.msg);
    }
    char *argv[] = {"/usr/bin/diff", "-r", a, b, NULL};
    run_result r = tu_run(NULL, argv, NULL);
    cr_expect_eq(r.status, 0, "the parts' output differs from the whole job's:\n%s", r.out);
    tu_run_free(&r);
    o.part.index = 3;
    cr_expect_eq(mp_convert(model, b, &o, NULL, &err), MP_E_USAGE);
    cr_expect(strstr(err.msg, "part 3 of 3") != NULL, "%s", err.msg);
    release(dir, model, one, parts, a, b, NULL);
}
