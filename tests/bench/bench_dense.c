/*
 * bench_dense.c - the fast dense path (repack/dense.c) against the CPU reference (verify/), in
 * memory: every quantized linear of a checkpoint to f16 (or bf16), GB/s of output written, with
 * one thread and with all. The source is read into the page cache by a first pass.
 *
 *   bench_dense MODEL [f16|bf16 [REPS [fast]]]
 *
 * REPS (default 1): each figure is the best of that many runs, the machine being shared; `fast`
 * leaves the reference out.
 */
#include "../../repack/repack.h"
#include "../../verify/verify.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double run(const mp_st_model *m, const mp_qmodel *qm, mp_dtype dt, int ref, uint64_t *bytes)
{
    mp_err err = MP_ERR_INIT;
    double t0 = now();
    *bytes = 0;
    for (size_t i = 0; i < mp_qmodel_n_linears(qm); i++) {
        const mp_qlinear *q = mp_qmodel_linear(qm, i);
        uint64_t rows = (16u << 20) / 4 / q->k_cols;
        rows = rows >= 8 ? rows / 8 * 8 : 8;
        float *tile = malloc((size_t)(rows * q->k_cols) * 4);
        uint16_t *out = malloc((size_t)(rows * q->k_cols) * 2);
        for (uint64_t n0 = 0; n0 < q->n_rows; n0 += rows) {
            uint64_t n1 = n0 + rows < q->n_rows ? n0 + rows : q->n_rows;
            int over = 0;
            mp_errcode rc = ref ? mp_dequant_ref(m, q, n0, n1, tile, &err)
                                : mp_dense_rows(m, q, n0, n1, dt, out, &over, &err);
            if (rc == MP_OK && ref) mp_dense_store(tile, (size_t)((n1 - n0) * q->k_cols), dt, out);
            if (rc != MP_OK) {
                fprintf(stderr, "bench_dense: %s\n", err.msg);
                exit(1);
            }
        }
        *bytes += q->n_rows * q->k_cols * 2;
        free(tile);
        free(out);
    }
    return now() - t0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("usage: bench_dense MODEL [f16|bf16]\n", stderr);
        return 2;
    }
    mp_dtype dt = argc > 2 && strcmp(argv[2], "bf16") == 0 ? MP_DTYPE_BF16 : MP_DTYPE_F16;
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    mp_qmodel *qm = NULL;
    if (mp_st_open(&m, argv[1], &err) != MP_OK || mp_qmodel_open(&qm, m, &err) != MP_OK) {
        fprintf(stderr, "bench_dense: %s\n", err.msg);
        return 1;
    }
    uint64_t bytes;
    int all = omp_get_max_threads(), reps = argc > 3 ? atoi(argv[3]) : 1, no_ref = argc > 4 && !strcmp(argv[4], "fast");
    run(m, qm, dt, 0, &bytes); /* warm the page cache */
    for (int threads = 1; threads <= all; threads = threads == all ? all + 1 : all) {
        omp_set_num_threads(threads);
        double fast = 1e30, ref = 1e30;
        for (int r = 0; r < (reps > 0 ? reps : 1); r++) {
            double f = run(m, qm, dt, 0, &bytes), g = no_ref ? 1e30 : run(m, qm, dt, 1, &bytes);
            fast = f < fast ? f : fast;
            ref = g < ref ? g : ref;
        }
        printf("  %d thread%s: fast path %.2f GB/s of %s written", threads, threads == 1 ? " " : "s",
               (double)bytes / fast / 1e9, dt == MP_DTYPE_F16 ? "f16" : "bf16");
        if (!no_ref) printf(", reference %.2f GB/s (%.1fx)", (double)bytes / ref / 1e9, ref / fast);
        printf(", %.0f MB, best of %d\n", (double)bytes / 1e6, reps > 0 ? reps : 1);
    }
    mp_qmodel_free(qm);
    mp_st_close(m);
    return 0;
}
