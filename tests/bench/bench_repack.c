/*
 * bench_repack.c - in-memory repack throughput (GB/s of packed input) through the same
 * mp_repack_region() the pipeline uses, and end-to-end `convert` against `cp`.
 *
 *   bench_repack MODELPREP ASYM_MODEL SYM_MODEL SCRATCH JSON_OUT
 *
 * In memory: a 4096 x 11008 4-bit linear (Llama-7B's MLP), GPTQ -> cutlass-int4 and AWQ GEMM ->
 * cutlass-int4, at 1 and 2 threads, best of 5. End to end: `convert --to onednn-int4` of the
 * asymmetric model and `--to cutlass-int4` of the symmetric one, best of 3, against `cp -r` of
 * the same source in the same run, with the peak RSS of the convert.
 */
#define _GNU_SOURCE
#include "../../repack/repack.h"

#include <omp.h>
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

static double in_memory(const char *from, int threads, double *gbs)
{
    const uint64_t N = 11008, K = 4096;
    mp_packing sp = mp_scheme_find(from)->codes, dp = mp_scheme_find("cutlass-int4")->codes;
    sp.bits = dp.bits = 4;
    uint64_t ss[2], ds[2];
    mp_packing_shape(&sp, N, K, ss);
    mp_packing_shape(&dp, N, K, ds);
    mp_pblock src = mp_packing_block(&sp, ss, 0, N, 0, K), dst = mp_packing_block(&dp, ds, 0, N, 0, K);
    size_t sb = (size_t)(ss[0] * ss[1] * 4), db = (size_t)(ds[0] * ds[1]);
    /* On 64-byte lines, as the pipeline's scratch buffers are (convert/pack_target.c). */
    src.data = aligned_alloc(64, (sb + 63) / 64 * 64);
    dst.data = aligned_alloc(64, (db + 63) / 64 * 64);
    memset(dst.data, 0, db); /* fault the pages in before timing: the pipeline reuses its buffer */
    uint32_t x = 1;
    for (size_t i = 0; i < sb; i++) src.data[i] = (uint8_t)((x = x * 1664525u + 1013904223u) >> 24);
    omp_set_num_threads(threads);
    mp_err err = MP_ERR_INIT;
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        if (mp_repack_region(&sp, &src, 0, &dp, &dst, 0, 0, N, 0, K, 1, &err) != MP_OK) exit(1);
        double t = now() - t0;
        if (t < best) best = t;
    }
    free(src.data);
    free(dst.data);
    *gbs = (double)sb / best / 1e9;
    return best;
}

static double run(char *const argv[], long *rss)
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
        fprintf(stderr, "bench: %s %s failed\n", argv[0], argv[1]);
        exit(1);
    }
    *rss = ru.ru_maxrss;
    return now() - t0;
}

static void e2e(const char *mp, const char *model, const char *fmt, const char *scratch,
                double *t_cv, double *t_cp, long *rss)
{
    char out[4096], cp[4096];
    snprintf(out, sizeof out, "%s/e2e-%s", scratch, fmt);
    snprintf(cp, sizeof cp, "%s/e2e-cp", scratch);
    *t_cv = *t_cp = 1e30;
    *rss = 0;
    for (int i = 0; i < 3; i++) {
        long r;
        char *rm[] = {"rm", "-rf", out, cp, NULL};
        run(rm, &r);
        /* cp, then fsync of what it wrote: convert fsyncs every file it commits. */
        char script[8400];
        snprintf(script, sizeof script, "cp -r '%s' '%s' && sync '%s'/*", model, cp, cp);
        char *c1[] = {"sh", "-c", script, NULL};
        double t = run(c1, &r);
        if (t < *t_cp) *t_cp = t;
        char *c2[] = {(char *)mp, "convert", (char *)model, out, "--to", (char *)fmt, "--quiet", NULL};
        t = run(c2, &r);
        if (t < *t_cv) *t_cv = t;
        if (r > *rss) *rss = r;
    }
    char *rm[] = {"rm", "-rf", out, cp, NULL};
    long r;
    run(rm, &r);
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fputs("usage: bench_repack MODELPREP ASYM_MODEL SYM_MODEL SCRATCH JSON_OUT [NUMPY_GBS]\n", stderr);
        return 2;
    }
    double numpy_gbs = argc == 7 ? atof(argv[6]) : 0.0;
    /* End to end first: a child's peak RSS starts from its parent's at fork(), and the in-memory
     * runs leave this process larger. */
    double cv1, cp1, cv2, cp2;
    long rss1, rss2;
    e2e(argv[1], argv[2], "onednn-int4", argv[4], &cv1, &cp1, &rss1);
    e2e(argv[1], argv[3], "cutlass-int4", argv[4], &cv2, &cp2, &rss2);
    double g[4];
    in_memory("gptq", 1, &g[0]);
    in_memory("gptq", 2, &g[1]);
    in_memory("awq", 1, &g[2]);
    in_memory("awq", 2, &g[3]);
    printf("repack    in memory, 4096 x 11008 4-bit: GPTQ -> cutlass-int4 %.2f GB/s (1 thread), "
           "%.2f GB/s (2 threads); AWQ -> cutlass-int4 %.2f / %.2f GB/s (target >= 4 GB/s)\n",
           g[0], g[1], g[2], g[3]);
    if (numpy_gbs > 0)
        printf("numpy     the same GPTQ -> cutlass-int4 job in numpy: %.3f GB/s; modelprep is %.0fx "
               "faster (2 threads)\n", numpy_gbs, g[1] / numpy_gbs);
    printf("convert   --to onednn-int4 (asym model) %.2f s vs cp -r + fsync %.2f s: %.2fx; peak RSS %.1f MiB\n",
           cv1, cp1, cv1 / cp1, (double)rss1 / 1024.0);
    printf("convert   --to cutlass-int4 (sym model) %.2f s vs cp -r + fsync %.2f s: %.2fx; peak RSS %.1f MiB "
           "(targets <= 1.3x, <= 256 MiB)\n", cv2, cp2, cv2 / cp2, (double)rss2 / 1024.0);
    FILE *f = fopen(argv[5], "w");
    if (!f) return 1;
    fprintf(f, "{\"numpy_gptq_to_cutlass_gbs\": %.4f, \"repack_gbs\": {", numpy_gbs);
    fprintf(f, "\"gptq_to_cutlass_1t\": %.3f, \"gptq_to_cutlass_2t\": %.3f, "
               "\"awq_to_cutlass_1t\": %.3f, \"awq_to_cutlass_2t\": %.3f},\n"
               " \"convert\": {\"onednn_int4_s\": %.3f, \"cp_s\": %.3f, \"ratio\": %.3f, \"peak_rss_mib\": %.1f,\n"
               "             \"cutlass_int4_s\": %.3f, \"cp_sym_s\": %.3f, \"ratio_sym\": %.3f, "
               "\"peak_rss_sym_mib\": %.1f}}\n",
            g[0], g[1], g[2], g[3], cv1, cp1, cv1 / cp1, (double)rss1 / 1024.0, cv2, cp2, cv2 / cp2,
            (double)rss2 / 1024.0);
    return fclose(f) == 0 ? 0 : 1;
}
