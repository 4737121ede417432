/*
 * bench_safetensors.c - throughput and memory of the safetensors reader and writer.
 *
 *   bench_safetensors MODEL_DIR SCRATCH_DIR
 *
 * Prints one line per measurement. Every timing is the best of 3 runs with a warm page cache,
 * so it measures modelprep, not the disk:
 *   read     every tensor through mp_st_read in 1 MiB chunks, against plain read(2) of the same
 *            files (the `cat > /dev/null` baseline);
 *   copy     read + stream-write one output file (tests/gen/stcopy's loop), against a
 *            read/write copy of the same bytes (the `cp` baseline without reflinks);
 *   open     opening a checkpoint whose header holds 50,000 tensors;
 *   peak RSS of the copy, run as a child process.
 */
#define _GNU_SOURCE
#include "../../formats/formats.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1u << 20)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const mp_err *err)
{
    char line[1400];
    mp_err_format(err, line, sizeof line);
    fprintf(stderr, "bench: %s\n", line);
    exit(1);
}

static uint64_t raw_read(const mp_st_model *m, uint8_t *buf)
{
    uint64_t total = 0;
    for (size_t i = 0; i < mp_st_n_files(m); i++) {
        int fd = open(mp_st_file(m, i)->path, O_RDONLY);
        ssize_t r;
        while ((r = read(fd, buf, CHUNK)) > 0) total += (uint64_t)r;
        close(fd);
    }
    return total;
}

static uint64_t st_read(const mp_st_model *m, uint8_t *buf)
{
    mp_err err = MP_ERR_INIT;
    uint64_t total = 0;
    for (size_t i = 0; i < mp_st_n_tensors(m); i++) {
        const mp_tensor *t = mp_st_tensor(m, i);
        for (uint64_t at = 0; at < t->n_bytes; at += CHUNK) {
            size_t len = t->n_bytes - at < CHUNK ? (size_t)(t->n_bytes - at) : CHUNK;
            if (mp_st_read(m, t, at, buf, len, &err) != MP_OK) die(&err);
            total += len;
        }
    }
    return total;
}

static uint64_t raw_copy(const mp_st_model *m, const char *out, uint8_t *buf)
{
    int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uint64_t total = 0;
    for (size_t i = 0; i < mp_st_n_files(m); i++) {
        int fd = open(mp_st_file(m, i)->path, O_RDONLY);
        ssize_t r;
        while ((r = read(fd, buf, CHUNK)) > 0) {
            if (write(o, buf, (size_t)r) != r) exit(1);
            total += (uint64_t)r;
        }
        close(fd);
    }
    fsync(o);
    close(o);
    unlink(out);
    return total;
}

static uint64_t st_copy(const mp_st_model *m, const char *out, uint8_t *buf)
{
    mp_err err = MP_ERR_INIT;
    size_t n = mp_st_n_tensors(m);
    mp_tensor_spec *specs = calloc(n, sizeof *specs);
    for (size_t i = 0; i < n; i++) {
        const mp_tensor *t = mp_st_tensor(m, i);
        specs[i] = (mp_tensor_spec){t->name, t->dtype, t->n_dims, {0}};
        memcpy(specs[i].shape, t->shape, sizeof t->shape);
    }
    mp_st_writer *w = NULL;
    unlink(out);
    if (mp_st_writer_open(&w, out, specs, n, NULL, 0, &err) != MP_OK) die(&err);
    uint64_t total = 0;
    for (size_t next; (next = mp_st_writer_next(w)) != SIZE_MAX;) {
        const mp_tensor *t = mp_st_tensor(m, next);
        for (uint64_t at = 0; at < t->n_bytes; at += CHUNK) {
            size_t len = t->n_bytes - at < CHUNK ? (size_t)(t->n_bytes - at) : CHUNK;
            if (mp_st_read(m, t, at, buf, len, &err) != MP_OK ||
                mp_st_writer_write(w, buf, len, &err) != MP_OK)
                die(&err);
            total += len;
        }
    }
    if (mp_st_writer_finish(w, &err) != MP_OK) die(&err);
    free(specs);
    unlink(out);
    return total;
}

typedef uint64_t (*job_fn)(const mp_st_model *, const char *, uint8_t *);

static double best_of3(job_fn f, const mp_st_model *m, const char *out, uint8_t *buf, uint64_t *bytes)
{
    double best = 1e30;
    for (int i = 0; i < 3; i++) {
        double t0 = now();
        *bytes = f(m, out, buf);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

static uint64_t job_raw_read(const mp_st_model *m, const char *o, uint8_t *b) { (void)o; return raw_read(m, b); }
static uint64_t job_st_read(const mp_st_model *m, const char *o, uint8_t *b) { (void)o; return st_read(m, b); }

static void bench_open(const char *scratch)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/many.safetensors", scratch);
    unlink(path);
    enum { N = 50000 };
    mp_tensor_spec *specs = calloc(N, sizeof *specs);
    char (*names)[64] = calloc(N, sizeof *names);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "model.layers.%d.mlp.experts.%d.w1.weight", i / 128, i % 128);
        specs[i] = (mp_tensor_spec){names[i], MP_DTYPE_F16, 2, {2, 2}};
    }
    mp_err err = MP_ERR_INIT;
    mp_st_writer *w = NULL;
    if (mp_st_writer_open(&w, path, specs, N, NULL, 0, &err) != MP_OK) die(&err);
    uint8_t zero[8] = {0};
    for (int i = 0; i < N; i++)
        if (mp_st_writer_write(w, zero, 8, &err) != MP_OK) die(&err);
    if (mp_st_writer_finish(w, &err) != MP_OK) die(&err);
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        mp_st_model *m = NULL;
        if (mp_st_open(&m, path, &err) != MP_OK) die(&err);
        double dt = now() - t0;
        if (dt < best) best = dt;
        mp_st_close(m);
    }
    printf("open      %d-tensor header (%s): %.1f ms\n", N, "validated in full", best * 1e3);
    unlink(path);
    free(specs);
    free(names);
}

static long child_peak_rss_kib(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    struct rusage ru;
    wait4(pid, &st, 0, &ru);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? ru.ru_maxrss : -1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fputs("usage: bench_safetensors MODEL_DIR SCRATCH_DIR STCOPY\n", stderr);
        return 2;
    }
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    if (mp_st_open(&m, argv[1], &err) != MP_OK) die(&err);
    uint8_t *buf = malloc(CHUNK);
    char out[4096];
    snprintf(out, sizeof out, "%s/copy.safetensors", argv[2]);
    uint64_t bytes = 0;
    raw_read(m, buf); /* warm the page cache */

    double t_cat = best_of3(job_raw_read, m, out, buf, &bytes);
    uint64_t file_bytes = bytes;
    double t_rd = best_of3(job_st_read, m, out, buf, &bytes);
    printf("read      cat-equivalent %.2f GB/s, mp_st_read %.2f GB/s (%.0f%% of cat) over %.0f MB\n",
           (double)file_bytes / t_cat / 1e9, (double)bytes / t_rd / 1e9,
           100.0 * ((double)bytes / t_rd) / ((double)file_bytes / t_cat), (double)bytes / 1e6);

    double t_cp = best_of3(raw_copy, m, out, buf, &bytes);
    double t_st = best_of3(st_copy, m, out, buf, &bytes);
    printf("copy      read/write copy %.2f s, stream-write safetensors %.2f s (%.2fx the copy), "
           "both with fsync\n", t_cp, t_st, t_st / t_cp);

    bench_open(argv[2]);

    char *cargv[] = {argv[3], argv[1], out, NULL};
    unlink(out);
    long kib = child_peak_rss_kib(cargv);
    unlink(out);
    printf("memory    peak RSS of copying %.0f MB: %.1f MiB (target <= 256 MiB)\n",
           (double)bytes / 1e6, (double)kib / 1024.0);
    mp_st_close(m);
    free(buf);
    return 0;
}
