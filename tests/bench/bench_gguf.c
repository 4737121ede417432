/*
 * bench_gguf.c - GGUF dequantization throughput in GB/s of f32 output, per type, at 1 and 2
 * threads (best of 5 over 32M elements, so the output does not fit in cache), as ggml's
 * test-quantize-perf reports it; one thread on 256K elements again and again (in cache: the
 * arithmetic alone); memset of the same output as the memory anchor; and the ratios to gguf-py's
 * numpy dequantization of the same 32M elements, measured in the same run
 * (tests/bench/gguf_numpy.py writes "TYPE GB/s" lines to the file given).
 *
 *   bench_gguf [NUMPY_RESULTS]
 */
#include "../../formats/formats.h"

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

/* Offsets of the fp16 scale fields per block (doc/formats/gguf.md §5): kept finite. */
static const struct {
    uint32_t type;
    int off[2];
} scales[] = {
    {MP_GGUF_Q4_0, {0, -1}}, {MP_GGUF_Q4_1, {0, 2}}, {MP_GGUF_Q5_0, {0, -1}}, {MP_GGUF_Q5_1, {0, 2}},
    {MP_GGUF_Q8_0, {0, -1}}, {MP_GGUF_Q2_K, {80, 82}}, {MP_GGUF_Q3_K, {108, -1}}, {MP_GGUF_Q4_K, {0, 2}},
    {MP_GGUF_Q5_K, {0, 2}}, {MP_GGUF_Q6_K, {208, -1}}, {MP_GGUF_TQ1_0, {52, -1}}, {MP_GGUF_TQ2_0, {64, -1}},
    {MP_GGUF_IQ4_NL, {0, -1}}, {MP_GGUF_IQ4_XS, {0, -1}}, {MP_GGUF_MXFP4, {-1, -1}},
    {MP_GGUF_F16, {-1, -1}}, {MP_GGUF_BF16, {-1, -1}},
};

static double numpy_gbs(const char *file, const char *type)
{
    FILE *f = file ? fopen(file, "r") : NULL;
    if (!f) return 0;
    char name[32];
    double v, found = 0;
    while (fscanf(f, "%31s %lf", name, &v) == 2)
        if (strcmp(name, type) == 0) found = v;
    fclose(f);
    return found;
}

int main(int argc, char **argv)
{
    const uint64_t n = 32u << 20;
    float *out = malloc(n * sizeof *out);
    uint8_t *raw = malloc(n * 2 + 64); /* the most bytes per element: F16/BF16 */
    if (!out || !raw) return 5;
    /* The memory anchor: writing the same 128 MiB of f32 with memset. */
    double mbest = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        memset(out, r, n * sizeof *out);
        if (now() - t0 < mbest) mbest = now() - t0;
    }
    printf("memset of the %llu MiB output: %.2f GB/s\n", (unsigned long long)(n * 4 >> 20), (double)n * 4 / mbest / 1e9);
    printf("%-8s %12s %12s %12s %12s %8s %9s\n", "type", "1 thread", "2 threads", "in cache", "gguf-py",
           "ratio", "in cache");
    for (size_t s = 0; s < sizeof scales / sizeof *scales; s++) {
        uint32_t t = scales[s].type, blk = mp_gguf_type_block(t), bsz = mp_gguf_type_size(t);
        uint64_t nb = n / blk;
        uint32_t x = 7;
        for (uint64_t i = 0; i < nb * bsz; i++) raw[i] = (uint8_t)((x = x * 1664525u + 1013904223u) >> 24);
        for (uint64_t b = 0; b < nb; b++) {
            uint8_t *p = raw + b * bsz;
            for (int k = 0; k < 2; k++)
                if (scales[s].off[k] >= 0) p[scales[s].off[k] + 1] = (uint8_t)(0x30 + (p[scales[s].off[k] + 1] & 7));
            if (t == MP_GGUF_MXFP4) p[0] = (uint8_t)(120 + (p[0] & 15));
        }
        if (t == MP_GGUF_F16 || t == MP_GGUF_BF16)
            for (uint64_t i = 1; i < n * 2; i += 2) raw[i] &= 0x3F;
        /* In cache: 256K elements (1 MiB of f32) again and again, one thread: the arithmetic. */
        omp_set_num_threads(1);
        double hot = 1e30;
        for (int r = 0; r < 5; r++) {
            mp_err err = MP_ERR_INIT;
            double t0 = now();
            for (int k = 0; k < 32; k++)
                if (mp_gguf_dequantize(t, raw, out, 1u << 18, &err) != MP_OK) return 4;
            double dt = (now() - t0) / 32;
            if (dt < hot) hot = dt;
        }
        double hot_gbs = (double)(1u << 18) * 4 / hot / 1e9;
        double gbs[2];
        for (int th = 1; th <= 2; th++) {
            omp_set_num_threads(th);
            double best = 1e30;
            for (int r = 0; r < 5; r++) {
                mp_err err = MP_ERR_INIT;
                double t0 = now();
                if (mp_gguf_dequantize(t, raw, out, n, &err) != MP_OK) return 4;
                double dt = now() - t0;
                if (dt < best) best = dt;
            }
            gbs[th - 1] = (double)n * 4 / best / 1e9;
        }
        double np = numpy_gbs(argc > 1 ? argv[1] : NULL, mp_gguf_type_name(t));
        if (np > 0)
            printf("%-8s %7.2f GB/s %7.2f GB/s %7.2f GB/s %7.3f GB/s %7.0fx %8.0fx\n", mp_gguf_type_name(t),
                   gbs[0], gbs[1], hot_gbs, np, gbs[0] / np, hot_gbs / np);
        else
            printf("%-8s %7.2f GB/s %7.2f GB/s %7.2f GB/s %12s %8s\n", mp_gguf_type_name(t), gbs[0], gbs[1],
                   hot_gbs, "-", "-");
        fflush(stdout);
    }
    free(out);
    free(raw);
    return 0;
}
