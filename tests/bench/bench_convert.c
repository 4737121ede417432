/*
 * bench_convert.c - end-to-end `modelprep convert --to f16` against `cp -r` of the same source,
 * and the CPU reference's dequantization throughput.
 *
 *   bench_convert MODELPREP MODEL_DIR SCRATCH_DIR
 *
 * Each command runs as a child (best of 3, warm page cache); its peak RSS comes from wait4.
 */
#define _GNU_SOURCE
#include "../../verify/verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double run(char *const argv[], long *rss_kib)
{
    double t0 = now();
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    struct rusage ru;
    wait4(pid, &st, 0, &ru);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench: %s failed\n", argv[0]);
        exit(1);
    }
    *rss_kib = ru.ru_maxrss;
    return now() - t0;
}

static void rmrf(const char *p)
{
    char *argv[] = {"rm", "-rf", (char *)p, NULL};
    long rss;
    run(argv, &rss);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fputs("usage: bench_convert MODELPREP MODEL_DIR SCRATCH_DIR\n", stderr);
        return 2;
    }
    char out[4096], cpout[4096];
    snprintf(out, sizeof out, "%s/f16", argv[3]);
    snprintf(cpout, sizeof cpout, "%s/cp", argv[3]);
    double best_cv = 1e30, best_cp = 1e30;
    long rss = 0, max_rss = 0;
    for (int i = 0; i < 3; i++) {
        rmrf(out);
        rmrf(cpout);
        char *cp[] = {"cp", "-r", argv[2], cpout, NULL};
        double t = run(cp, &rss);
        if (t < best_cp) best_cp = t;
        char *cv[] = {argv[1], "convert", argv[2], out, "--to", "f16", "--quiet", NULL};
        t = run(cv, &rss);
        if (t < best_cv) best_cv = t;
        if (rss > max_rss) max_rss = rss;
    }
    rmrf(cpout);

    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    mp_qmodel *qm = NULL;
    uint64_t in_bytes = 0, out_bytes = 0, packed = 0;
    if (mp_st_open(&m, argv[2], &err) != MP_OK || mp_qmodel_open(&qm, m, &err) != MP_OK) return 1;
    for (size_t i = 0; i < mp_st_n_tensors(m); i++) in_bytes += mp_st_tensor(m, i)->n_bytes;
    double t_dq = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        packed = 0;
        for (size_t i = 0; i < mp_qmodel_n_linears(qm); i++) {
            const mp_qlinear *q = mp_qmodel_linear(qm, i);
            float *buf = malloc((size_t)(q->n_rows * q->k_cols * 4));
            if (mp_dequant_ref(m, q, 0, q->n_rows, buf, &err) != MP_OK) return 1;
            free(buf);
            packed += q->qweight->n_bytes;
        }
        double t = now() - t0;
        if (t < t_dq) t_dq = t;
    }
    mp_st_model *o = NULL;
    if (mp_st_open(&o, out, &err) != MP_OK) return 1;
    for (size_t i = 0; i < mp_st_n_tensors(o); i++) out_bytes += mp_st_tensor(o, i)->n_bytes;
    printf("convert   --to f16: %.2f s for %.0f MB in, %.0f MB out; cp -r of the source %.2f s "
           "(%.2fx); peak RSS %.1f MiB (target <= 256 MiB)\n",
           best_cv, (double)in_bytes / 1e6, (double)out_bytes / 1e6, best_cp, best_cv / best_cp,
           (double)max_rss / 1024.0);
    printf("dequant   CPU reference: %.2f GB/s of packed weights (%.0f MB packed -> %.0f MB f32)\n",
           (double)packed / t_dq / 1e9, (double)packed / 1e6, (double)packed * 8 / 1e6);
    mp_st_close(o);
    mp_qmodel_free(qm);
    mp_st_close(m);
    rmrf(out);
    return 0;
}
