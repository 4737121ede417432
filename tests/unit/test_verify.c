/*
 * test_verify.c - verify/'s pure parts: row sampling, the rounding bound, the cpu backend's
 * half-float load, device selection without a GPU, the kernel families the build generates from
 * the kernels/ file list and the registry's use of them.
 */
#include "testutil.h"
#include "../../kernels/cl_as_c.h"
#include "../../verify/verify.h"
#include "../../verify/check.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Sampled rows come in runs of up to 8 consecutive rows from a multiple of 8 (a column layout's
 * 8 rows share a cache line), the first run from row 0, the last to row n - 1; the default count
 * is n / 64 between 16 and 64 (doc/reference.md section 1.5). */
Test(unit_verify, sampled_rows_come_in_runs_of_8_with_first_and_last)
{
    uint32_t rows[600];
    cr_assert_eq(mp_verify_sample_rows(1000, 5, rows), 5);
    uint32_t five[5] = {0, 1, 997, 998, 999};
    cr_assert_arr_eq(rows, five, sizeof five);
    cr_assert_eq(mp_verify_sample_rows(1000, 24, rows), 24);
    uint32_t runs3[24] = {0, 1, 2, 3, 4, 5, 6, 7, 496, 497, 498, 499, 500, 501, 502, 503,
                          992, 993, 994, 995, 996, 997, 998, 999};
    cr_assert_arr_eq(rows, runs3, sizeof runs3);
    cr_assert_eq(mp_verify_sample_rows(4096, 64, rows), 64);
    for (uint32_t r = 0; r < 8; r++)
        for (uint32_t j = 0; j < 8; j++) cr_assert_eq(rows[r * 8 + j], r * 584 + j, "run %u row %u", r, j);
    cr_assert_eq(mp_verify_sample_rows(3, 64, rows), 3);
    cr_assert(rows[0] == 0 && rows[1] == 1 && rows[2] == 2);
    cr_assert_eq(mp_verify_sample_rows(7, 0, rows), 7); /* --full */
    cr_assert_eq(rows[6], 6);
    cr_assert_eq(mp_verify_sample_rows(100, 1, rows), 1);
    cr_assert_eq(rows[0], 0);
    cr_assert_eq(mp_verify_sample_rows(2, 2, rows), 2);
    cr_assert(rows[0] == 0 && rows[1] == 1);
    /* the default: n / 64 in whole runs of 8, at least 16, at most 64, never more than n */
    cr_assert_eq(mp_verify_sample_count(768, MP_VERIFY_ROWS_AUTO), 16);
    cr_assert_eq(mp_verify_sample_count(2048, MP_VERIFY_ROWS_AUTO), 32);
    cr_assert_eq(mp_verify_sample_count(4096, MP_VERIFY_ROWS_AUTO), 64);
    cr_assert_eq(mp_verify_sample_count(151936, MP_VERIFY_ROWS_AUTO), 64);
    cr_assert_eq(mp_verify_sample_count(10, MP_VERIFY_ROWS_AUTO), 10);
    cr_assert_eq(mp_verify_sample_count(20, MP_VERIFY_ROWS_AUTO), 16);
    cr_assert_eq(mp_verify_sample_count(1500, MP_VERIFY_ROWS_AUTO), 16); /* 23: whole runs of 8 */
    cr_assert_eq(mp_verify_sample_count(2900, MP_VERIFY_ROWS_AUTO), 40); /* 45 */
    cr_assert_eq(mp_verify_sample_count(20, 0), 20);
    cr_assert_eq(mp_verify_sample_count(20, 5), 5);
    /* every n and count: distinct, increasing, inside [0, n), the first and last rows in, and
     * runs from a multiple of 8 wherever the runs around them leave room */
    for (uint32_t n = 1; n <= 300; n++)
        for (uint32_t want = 1; want <= n + 2 && want <= 64; want++) {
            uint32_t c = mp_verify_sample_rows(n, want, rows);
            cr_assert_eq(c, want < n ? want : n, "n %u want %u", n, want);
            cr_assert_eq(rows[0], 0);
            if (c > 1) cr_assert_eq(rows[c - 1], n - 1, "n %u want %u", n, want);
            for (uint32_t i = 1; i < c; i++) cr_assert_gt(rows[i], rows[i - 1], "n %u want %u row %u", n, want, i);
            for (uint32_t i = 0, j; c > 1 && i < c; i = j) { /* the run rows[i, j) */
                for (j = i + 1; j < c && rows[j] == rows[j - 1] + 1 && j - i < 8; j++)
                    ;
                cr_assert_leq(j - i, 8);
                if (n >= 8 * want && i > 0 && rows[j - 1] != n - 1) /* a middle run, with room */
                    cr_assert_eq(rows[i] % 8, 0, "n %u want %u: a run from %u", n, want, rows[i]);
            }
        }
}

/* The family table is the file list: one family per kernels/ .cl, found by its stem, named
 * with '-' for '_'. */
Test(unit_verify, every_kernel_file_is_a_family)
{
    char *dir = tu_path(tu_env("MP_SRC"), "kernels");
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l < 4 || strcmp(e->d_name + l - 3, ".cl") != 0) continue;
        char stem[256], name[256];
        snprintf(stem, sizeof stem, "%.*s", (int)(l - 3), e->d_name);
        snprintf(name, sizeof name, "%s", stem);
        for (char *c = name; *c; c++) *c = *c == '_' ? '-' : *c;
        mp_kfamily f = mp_kfamily_find(stem);
        cr_assert_neq(f, MP_KF_NONE, "kernels/%s is not a family of this build", e->d_name);
        cr_assert_str_eq(mp_kfamily_name(f), name);
        files++;
    }
    closedir(d);
    free(dir);
    cr_assert_eq(mp_kfamily_count(), files);
    cr_assert_leq(files, MP_KF_MAX);
    cr_assert_eq(mp_kfamily_find("no_such_kernel"), MP_KF_NONE);
    cr_assert_eq(mp_kfamily_find(NULL), MP_KF_NONE);
}

/* A registry entry's kernel (mp_scheme.kernel) names a kernel file: verify maps a linear to
 * its family through it, and a misspelt one would leave the layout unchecked. */
Test(unit_verify, every_registry_kernel_is_a_kernel_file)
{
    int named = 0;
    for (size_t i = 0; i < mp_scheme_count(); i++) {
        const mp_scheme *s = mp_scheme_at(i);
        if (!s->kernel) continue;
        cr_expect_neq(mp_kfamily_find(s->kernel), MP_KF_NONE, "'%s' names kernels/%s.cl, which is not there",
                      s->name, s->kernel);
        named++;
    }
    cr_assert_gt(named, 0);
}

Test(unit_verify, gamma_is_the_f32_dot_product_bound)
{
    cr_assert_eq(mp_verify_gamma(0), 0.0);
    double u = 0x1p-24;
    cr_assert_eq(mp_verify_gamma(1), u / (1 - u));
    cr_assert_eq(mp_verify_gamma(4096), 4096 * u / (1 - 4096 * u));
    cr_assert(mp_verify_gamma(11008) > 6.5e-4 && mp_verify_gamma(11008) < 6.6e-4);
}

Test(unit_verify, c_build_of_vload_half_is_exact_for_every_half)
{
    for (uint32_t h = 0; h < 65536; h++) {
        half v = (half)h;
        float got = vload_half(0, &v), want = mp_f16_to_f32((uint16_t)h);
        if (isnan(want)) {
            uint32_t gb, wb;
            memcpy(&gb, &got, 4);
            memcpy(&wb, &want, 4);
            cr_assert_eq(gb, wb, "half 0x%04x: NaN payload 0x%08x, want 0x%08x", h, gb, wb);
        } else {
            cr_assert(memcmp(&got, &want, 4) == 0, "half 0x%04x: %.9g, want %.9g", h, (double)got, (double)want);
        }
    }
}

Test(unit_verify, cpu_device_is_always_there_and_says_what_it_is)
{
    mp_device *d = NULL;
    char why[512];
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_device_open(&d, "cpu", why, sizeof why, &err), MP_OK);
    const mp_device_info *i = mp_device_get_info(d);
    cr_assert_eq(i->backend, MP_BACKEND_CPU);
    cr_assert_str_eq(i->type, "CPU");
    cr_assert_eq(i->is_gpu, 0);
    cr_assert_str_empty(why);
    mp_device_close(d);
    cr_assert_eq(mp_device_open(&d, "tpu:0", why, sizeof why, &err), MP_E_USAGE);
    cr_assert_null(d);
    cr_assert_eq(mp_device_open(&d, "opencl:x", why, sizeof why, &err), MP_E_USAGE);
    cr_assert_str_eq(err.msg, "--device 'opencl:x': the index after ':' must be a number");
}

static mp_device *open_cpu(void)
{
    mp_device *d = NULL;
    char why[64];
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_device_open(&d, "cpu", why, sizeof why, &err), MP_OK, "%s", err.msg);
    return d;
}

/* An N x K cutlass-int4 linear of 4-bit codes qw [N, K/2] and f16 scales sc [N, G]. */
static mp_kernel_data cutlass_data(const uint8_t *qw, size_t qw_bytes, const uint16_t *sc, size_t sc_bytes,
                                   uint32_t N, uint32_t K, uint32_t G)
{
    mp_kernel_data kd = {.family = mp_kfamily_find("cutlass_int4"), .qw = qw, .sc = sc, .qw_bytes = qw_bytes,
                         .sc_bytes = sc_bytes};
    kd.P[MP_P_N] = N, kd.P[MP_P_K] = K, kd.P[MP_P_G] = G, kd.P[MP_P_GSIZE] = K / G, kd.P[MP_P_BITS] = 4;
    kd.P[MP_P_SSTRIDE] = G, kd.P[MP_P_QSTRIDE] = K / 2;
    return kd;
}

/* A 2 x 16 cutlass-int4 linear by hand: the cpu kernels must produce (q - 8) * s. */
Test(unit_verify, cpu_kernels_compute_the_layout_by_hand)
{
    mp_device *d = open_cpu();
    mp_err err = MP_ERR_INIT;
    uint8_t qw[2 * 8];
    for (int i = 0; i < 16; i++) qw[i] = (uint8_t)((i % 16) | ((15 - i % 16) << 4)); /* k even: i, odd: 15-i */
    uint16_t sc[2] = {0x3800, 0xc000}; /* 0.5, -2 (one group of 16 per row) */
    mp_kernel_data kd = cutlass_data(qw, sizeof qw, sc, sizeof sc, 2, 16, 1);
    mp_kernel_job *j = NULL;
    cr_assert_eq(mp_kernel_upload(d, &kd, &j, &err), MP_OK);
    uint32_t rows[2] = {1, 0};
    float out[32];
    cr_assert_eq(mp_kernel_dequant(j, rows, 2, out, &err), MP_OK);
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 16; k++) {
            int n = (int)rows[r], byte = qw[n * 8 + k / 2];
            int q = k % 2 ? byte >> 4 : byte & 15;
            float want = (float)(q - 8) * (n ? -2.0f : 0.5f);
            cr_assert_eq(out[r * 16 + k], want, "row %d k %d: %g, want %g", n, k, (double)out[r * 16 + k], (double)want);
        }
    float x[16], y[2];
    for (int k = 0; k < 16; k++) x[k] = (float)(k + 1);
    cr_assert_eq(mp_kernel_gemm(j, rows, 2, x, 1, y, &err), MP_OK);
    for (int r = 0; r < 2; r++) {
        float want = 0;
        for (int k = 0; k < 16; k++) want += x[k] * out[r * 16 + k];
        cr_assert_eq(y[r], want);
    }
    mp_kernel_job_free(j);
    mp_device_close(d);
}

/* GGUF Q4_0, Q4_1 and Q8_0 rows built by hand: every backend the machine has (cpu, and OpenCL
 * when present) must produce the formulas of doc/formats/gguf.md §6 exactly. */
static void gguf_case(const char *device, uint32_t type, size_t block)
{
    enum { N = 2, K = 64 };
    uint8_t qw[N * (K / 32) * 34];
    memset(qw, 0, sizeof qw);
    size_t row = (K / 32) * block;
    float want[N * K];
    for (int n = 0; n < N; n++)
        for (int b = 0; b < K / 32; b++) {
            uint8_t *blk = qw + (size_t)n * row + (size_t)b * block;
            uint16_t d = (uint16_t)(0x3400 + 0x100 * (n * 2 + b)), m = (uint16_t)(0xb800 + 0x40 * b); /* 0.25.., -0.5.. */
            memcpy(blk, &d, 2);
            if (type == 3) memcpy(blk + 2, &m, 2);
            for (int j = 0; j < 32; j++) {
                uint32_t h = (uint32_t)(j * 7 + n * 3 + b) & 255u;
                float df = mp_f16_to_f32(d), w;
                if (type == 8) {
                    blk[2 + j] = (uint8_t)h;
                    w = (float)(int8_t)h * df;
                } else {
                    uint8_t *q = blk + (type == 3 ? 4 : 2) + (j % 16);
                    uint32_t v = h & 15u;
                    *q = (uint8_t)(j < 16 ? (*q & 0xF0) | v : (*q & 0x0F) | v << 4);
                    w = type == 3 ? (float)v * df + mp_f16_to_f32(m) : (float)((int)v - 8) * df;
                }
                want[n * K + b * 32 + j] = w;
            }
        }
    mp_device *d = NULL;
    char why[512];
    mp_err err = MP_ERR_INIT;
    if (mp_device_open(&d, device, why, sizeof why, &err) != MP_OK) {
        cr_assert_eq(err.code, MP_E_DEVICE, "%s: %s", device, err.msg);
        cr_skip_test("no %s device here: %s", device, err.msg); /* counted as skipped, not passed */
    }
    mp_kernel_data kd = {.family = mp_kfamily_find("gguf"), .qw = qw, .qw_bytes = sizeof qw, .sc = qw, .sc_bytes = 4};
    kd.P[MP_P_N] = N, kd.P[MP_P_K] = K, kd.P[MP_P_BITS] = type, kd.P[MP_P_QSTRIDE] = (uint32_t)row;
    kd.P[MP_P_GSIZE] = 32;
    mp_kernel_job *j = NULL;
    cr_assert_eq(mp_kernel_upload(d, &kd, &j, &err), MP_OK, "%s", err.msg);
    uint32_t rows[N] = {0, 1};
    float out[N * K];
    cr_assert_eq(mp_kernel_dequant(j, rows, N, out, &err), MP_OK, "%s", err.msg);
    for (int i = 0; i < N * K; i++)
        cr_assert(memcmp(&out[i], &want[i], 4) == 0, "%s type %u element %d: %.9g, want %.9g", device, type, i,
                  (double)out[i], (double)want[i]);
    mp_kernel_job_free(j);
    mp_device_close(d);
}

Test(unit_verify, gguf_blocks_by_hand_on_the_cpu_backend)
{
    gguf_case("cpu", 2, 18);
    gguf_case("cpu", 3, 20);
    gguf_case("cpu", 8, 34);
}

/* Skipped, and counted so, where the machine has no OpenCL device. */
Test(unit_verify, gguf_blocks_by_hand_on_the_opencl_backend)
{
    gguf_case("opencl", 2, 18);
    gguf_case("opencl", 3, 20);
    gguf_case("opencl", 8, 34);
}

/* The in-place and prefilled dequantizations run in the caller's buffer and its guard zone, and
 * give the very values of the copying one. */
Test(unit_verify, in_place_dequant_equals_the_copying_one_and_keeps_its_guard)
{
    mp_device *d = open_cpu();
    mp_err err = MP_ERR_INIT;
    uint8_t qw[4 * 16];
    for (int i = 0; i < 64; i++) qw[i] = (uint8_t)(i * 37 + 11);
    uint16_t sc[4 * 2] = {0x3800, 0xc000, 0x3c00, 0x4000, 0xb800, 0x3400, 0x4200, 0xbc00};
    mp_kernel_data kd = cutlass_data(qw, sizeof qw, sc, sizeof sc, 4, 32, 2);
    mp_kernel_job *j = NULL;
    cr_assert_eq(mp_kernel_upload(d, &kd, &j, &err), MP_OK);
    uint32_t rows[3] = {3, 0, 2};
    float copy[3 * 32], place[3 * 32 + MP_KERNEL_GUARD];
    cr_assert_eq(mp_kernel_dequant(j, rows, 3, copy, &err), MP_OK);
    cr_assert_eq(mp_kernel_dequant_in_place(j, rows, 3, place, &err), MP_OK, "%s", err.msg);
    cr_assert(memcmp(copy, place, sizeof copy) == 0);
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 32; k++) {
            int byte = qw[rows[r] * 16 + (uint32_t)k / 2], q = k % 2 ? byte >> 4 : byte & 15;
            float s = mp_f16_to_f32(sc[rows[r] * 2 + (uint32_t)k / 16]);
            cr_assert_eq(place[r * 32 + k], (float)(q - 8) * s, "row %u k %d", rows[r], k);
        }
    /* A prefilled launch (its values already NaN) checks its guard zone and leaves it NaN again,
     * so that the buffer a run of checks reuses (numerics.c) is NaN everywhere between tiles,
     * whatever the next tile's K. */
    for (size_t i = 0; i < sizeof place / sizeof *place; i++) place[i] = nanf("");
    cr_assert_eq(mp_kernel_dequant_prefilled(j, rows, 3, place, &err), MP_OK, "%s", err.msg);
    cr_assert(memcmp(copy, place, sizeof copy) == 0);
    for (int i = 0; i < MP_KERNEL_GUARD; i++) {
        uint32_t bits;
        memcpy(&bits, &place[3 * 32 + i], 4);
        cr_assert_eq(bits & 0x7fffffffu, 0x7fc00000u, "guard word %d: %08x, not the fill's NaN", i, bits);
    }
    mp_kernel_job_free(j);
    mp_device_close(d);
}

/* One fused launch on the cpu backend (each value decoded once for both outputs) gives the
 * values and the product of the two launches bit for bit, with its guards: row-major words
 * (cutlass-int4) and AWQ's 8-row words, every row (a short last block of rows) and spread runs,
 * 11 rows of x (two blocks of 8). */
static void fused_case(mp_device *d, const mp_kernel_data *kd, const uint32_t *rows, uint32_t nr, const char *what)
{
    enum { M = 11 };
    uint32_t K = kd->P[MP_P_K];
    mp_err err = MP_ERR_INIT;
    mp_kernel_job *j = NULL;
    cr_assert_eq(mp_kernel_upload(d, kd, &j, &err), MP_OK, "%s", err.msg);
    uint64_t seed = 3;
    float *x = malloc(M * K * sizeof *x), *xk = malloc(mp_kernel_x_floats(M, K) * sizeof *xk);
    float *v1 = malloc(nr * K * sizeof *v1), *y1 = malloc(M * nr * sizeof *y1);
    float *v2 = malloc((nr * K + MP_KERNEL_GUARD) * sizeof *v2), *y2 = malloc((M * nr + MP_KERNEL_GUARD) * sizeof *y2);
    cr_assert(x && xk && v1 && y1 && v2 && y2);
    for (uint32_t i = 0; i < M * K; i++) x[i] = (float)tu_xorshift(&seed) * 0x1p-31f - 1.0f;
    mp_kernel_block_x(x, M, K, xk);
    mp_kernel_use_x(j, xk, M);
    for (uint32_t i = 0; i < nr * K + MP_KERNEL_GUARD; i++) v2[i] = nanf("");
    cr_assert_eq(mp_kernel_dequant(j, rows, nr, v1, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(mp_kernel_gemm(j, rows, nr, x, M, y1, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(mp_kernel_dequant_gemm_prefilled(j, rows, nr, v2, y2, &err), MP_OK, "%s: %s", what, err.msg);
    for (uint32_t i = 0; i < nr * K; i++)
        cr_assert(memcmp(&v1[i], &v2[i], 4) == 0 && v1[i] == v1[i], "%s: value %u: %.9g, two launches %.9g", what, i,
                  (double)v2[i], (double)v1[i]);
    for (uint32_t i = 0; i < M * nr; i++)
        cr_assert(memcmp(&y1[i], &y2[i], 4) == 0 && y1[i] == y1[i], "%s: y %u: %.9g, two launches %.9g", what, i,
                  (double)y2[i], (double)y1[i]);
    for (uint32_t m = 0; m < M; m++) /* and the plain f32 loop over the values, in k order (no contraction) */
        for (uint32_t r = 0; r < nr; r++) {
            float want = 0;
            for (uint32_t k = 0; k < K; k++) want += x[m * K + k] * v1[r * K + k];
            cr_assert(memcmp(&want, &y2[m * nr + r], 4) == 0, "%s: y[%u][%u]: %.9g, plain loop %.9g", what, m, r,
                      (double)y2[m * nr + r], (double)want);
        }
    for (uint32_t i = 0; i < MP_KERNEL_GUARD; i++)
        cr_assert(v2[nr * K + i] != v2[nr * K + i], "%s: guard %u not NaN", what, i);
    free(x), free(xk), free(v1), free(y1), free(v2), free(y2);
    mp_kernel_job_free(j);
}

Test(unit_verify, fused_launch_equals_the_two_launches_bit_for_bit)
{
    enum { N = 37, K = 256, G = 2, NA = 40, NB = 36, KB = 8192 };
    mp_device *d = open_cpu();
    uint64_t seed = 11;
    static uint8_t qw[NB * KB / 2];
    static uint16_t sc[NB * KB / 128];
    static uint32_t zp[G * NA / 8];
    for (size_t i = 0; i < sizeof qw; i++) qw[i] = (uint8_t)tu_xorshift(&seed);
    for (size_t i = 0; i < sizeof sc / 2; i++) /* f16 scales of both signs, 2^-4 to 2^-2 */
        sc[i] = (uint16_t)(0x2c00 + tu_xorshift(&seed) % 0x1000 + (i % 3 ? 0 : 0x8000));
    for (size_t i = 0; i < G * NA / 8; i++) zp[i] = tu_xorshift(&seed);
    uint32_t all[NA], spread[] = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23, 30, 36};
    for (uint32_t i = 0; i < NA; i++) all[i] = i;
    mp_kernel_data cut = cutlass_data(qw, N * K / 2, sc, N * G * 2, N, K, G);
    fused_case(d, &cut, all, N, "cutlass-int4, every row");
    fused_case(d, &cut, spread, sizeof spread / sizeof *spread, "cutlass-int4, spread rows");
    mp_kernel_data awq = {.family = mp_kfamily_find("awq"), .qw = qw, .qw_bytes = sizeof qw, .sc = sc,
                          .sc_bytes = sizeof sc, .zp = zp, .zp_bytes = sizeof zp};
    awq.P[MP_P_N] = NA, awq.P[MP_P_K] = K, awq.P[MP_P_G] = G, awq.P[MP_P_GSIZE] = K / G, awq.P[MP_P_BITS] = 4;
    awq.P[MP_P_ZMODE] = 1, awq.P[MP_P_SSTRIDE] = NA, awq.P[MP_P_QSTRIDE] = NA / 8, awq.P[MP_P_ZSTRIDE] = NA / 8;
    fused_case(d, &awq, all, NA, "awq, every row");
    fused_case(d, &awq, spread, sizeof spread / sizeof *spread, "awq, spread rows");
    /* 8-row words off the fused pass's blocks of 8 */
    uint32_t off8[] = {5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 39};
    fused_case(d, &awq, off8, sizeof off8 / sizeof *off8, "awq, runs off the blocks of 8");
    /* 36 x 8192 values: past the launch's threading threshold, split between threads off the
     * blocks of 8 when two run */
    mp_kernel_data big = cutlass_data(qw, sizeof qw, sc, sizeof sc, NB, KB, KB / 128);
    fused_case(d, &big, all, NB, "cutlass-int4, threaded launch");
    mp_device_close(d);
}

/* The double reference of y = x w^T (ref_gemm.c: blocks of 8 rows of x, eight rows of w at a
 * time, slices of the columns) gives the plain loop's yr = sum x w in k order, bit for bit, and
 * s = sum |x w| in the 8 interleaved partial sums it documents, bit for bit, on each of its paths
 * that this CPU can run: rows not a multiple of 8, m across two blocks, k across several slices
 * and not a multiple of 8. Activations whose rows differ in more than signs are refused. */
Test(unit_verify, reference_product_equals_the_plain_loop_bit_for_bit)
{
    enum { M = 11, N = 37, K = 701 };
    uint64_t seed = 7;
    float *x = malloc(M * K * sizeof *x), *w = malloc(N * K * sizeof *w);
    uint32_t nb = mp_ref_gemm_blocks(M);
    double *xt = malloc(nb * 8 * K * sizeof *xt), *a = malloc(K * sizeof *a);
    double *yr = malloc(M * N * sizeof *yr), *s = malloc(M * N * sizeof *s);
    cr_assert(x && w && xt && a && yr && s);
    for (int k = 0; k < K; k++) x[k] = (float)tu_xorshift(&seed) * 0x1p-32f;
    for (int i = 0; i < M * K; i++) x[i] = tu_xorshift(&seed) & 1 ? -fabsf(x[i % K]) : fabsf(x[i % K]);
    for (int i = 0; i < N * K; i++) w[i] = ((float)tu_xorshift(&seed) * 0x1p-32f - 0.5f) * 0x1p-6f;
    cr_assert_eq(mp_ref_gemm_x(x, M, K, xt, a), 1);
    int paths = 0;
    for (int path = 0; path <= 2; path++) { /* baseline, AVX2 with FMA, AVX-512F: each this CPU has */
        if (!mp_ref_gemm_path(path)) continue;
        paths++;
        memset(yr, 0xff, M * N * sizeof *yr), memset(s, 0xff, M * N * sizeof *s);
        mp_ref_gemm(w, N, K, xt, a, M, yr, s);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double y = 0, l[8] = {0};
                for (int k = 0; k < K; k++) {
                    double p = (double)x[i * K + k] * (double)w[j * K + k];
                    y += p;
                    l[k % 8] += fabs(p);
                }
                double b = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
                cr_assert(memcmp(&y, &yr[i * N + j], 8) == 0 && memcmp(&b, &s[i * N + j], 8) == 0,
                          "path %d, y[%d][%d]: %.17g %.17g, plain loop %.17g %.17g", path, i, j, yr[i * N + j],
                          s[i * N + j], y, b);
            }
    }
    mp_ref_gemm_path(-1);
    cr_assert_geq(paths, 1);
    x[5 * K + 3] = x[5 * K + 3] * 0.5f + 0x1p-20f; /* row 5's magnitude at k = 3 differs from row 0's */
    cr_assert_eq(mp_ref_gemm_x(x, M, K, xt, a), 0);
    free(x), free(w), free(xt), free(a), free(yr), free(s);
}

/* The reference of the cutlass linears below: (q - 8) * s, with one value made wrong when asked. */
typedef struct hand_ref {
    const uint8_t *qw;
    const uint16_t *sc;
    uint32_t K, G;
    int64_t bad_row, bad_k; /* -1: none */
} hand_ref;

static mp_errcode hand_rows(void *ctx, const uint32_t *rows, uint32_t nrows, float *out, mp_err *err)
{
    (void)err;
    const hand_ref *h = ctx;
    for (uint32_t r = 0; r < nrows; r++)
        for (uint32_t k = 0; k < h->K; k++) {
            int byte = h->qw[(size_t)rows[r] * h->K / 2 + k / 2], q = k % 2 ? byte >> 4 : byte & 15;
            float s = mp_f16_to_f32(h->sc[(size_t)rows[r] * h->G + k / (h->K / h->G)]);
            out[(size_t)r * h->K + k] = (float)(q - 8) * s;
            if (rows[r] == h->bad_row && k == h->bad_k) out[(size_t)r * h->K + k] += 1.0f;
        }
    return MP_OK;
}

/* One mp_numerics checks tensors of different K one after the other, reusing its activations and
 * buffers: each result is the one a fresh mp_numerics gives, a wrong reference value is found and
 * named in every position, and the tensors after it still pass. */
Test(unit_verify, numeric_checks_reuse_buffers_across_tensors_of_any_k)
{
    mp_device *d = open_cpu();
    static uint8_t qw[96 * 512 / 2];
    static uint16_t sc[96 * 4];
    for (size_t i = 0; i < sizeof qw; i++) qw[i] = (uint8_t)(i * 2654435761u >> 13);
    for (size_t i = 0; i < 96 * 4; i++) sc[i] = (uint16_t)(0x3000 + (i * 97) % 0x0c00 + (i % 3 == 0 ? 0x8000 : 0));
    const struct { uint32_t N, K; int64_t bad_row, bad_k; } cases[] = {
        {96, 512, -1, -1}, {40, 64, -1, -1}, {96, 512, 70, 300}, {12, 128, -1, -1}, {40, 64, 39, 63}, {96, 512, -1, -1},
    };
    for (uint32_t rows = 0; rows <= 16; rows += 16) { /* --full, then 16 sampled rows */
        mp_verify_opts o = {.rows = rows, .m = 8, .seed = 7};
        mp_numerics *nu = mp_numerics_new(d, &o, 2);
        cr_assert_not_null(nu);
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
            uint32_t N = cases[c].N, K = cases[c].K, G = 4;
            mp_kernel_data kd = cutlass_data(qw, (size_t)N * K / 2, sc, (size_t)N * G * 2, N, K, G);
            hand_ref h = {qw, sc, K, G, cases[c].bad_row, cases[c].bad_k};
            mp_verify_report r[2];
            memset(r, 0, sizeof r);
            for (int fresh = 0; fresh < 2; fresh++) {
                mp_numerics *one = fresh ? mp_numerics_new(d, &o, 2) : nu;
                mp_vtensor *vt = mp_vtensor_add(&r[fresh], "t", "cutlass-int4", N, K, 8);
                mp_err err = MP_ERR_INIT;
                cr_assert_eq(mp_numeric_compare(one, &kd, N, K, "t", hand_rows, &h, 2, vt, &r[fresh], &err), MP_OK,
                             "%s", err.msg);
                if (fresh) mp_numerics_free(one);
            }
            const mp_vtensor *a = &r[0].numeric[0], *b = &r[1].numeric[0];
            int sampled_bad = cases[c].bad_row >= 0 && (rows == 0 || cases[c].bad_row == N - 1);
            cr_assert_eq(a->bad_values, (uint64_t)sampled_bad, "case %zu rows %u: %llu bad: %s", c, rows, (unsigned long long)a->bad_values, r[0].n_findings ? r[0].findings[0].text : "");
            cr_assert_eq(a->status, sampled_bad ? MP_VS_FAIL : MP_VS_PASS, "case %zu rows %u: %s", c, rows,
                         r[0].n_findings ? r[0].findings[0].text : "(no finding)");
            cr_assert_eq(a->rows, b->rows);
            cr_assert(a->bad_values == b->bad_values && a->bad_outputs == b->bad_outputs && a->nmse == b->nmse &&
                          a->nmse_bound == b->nmse_bound && a->max_abs_err == b->max_abs_err,
                      "case %zu rows %u: reused and fresh buffers disagree", c, rows);
            cr_assert_eq(r[0].n_findings, r[1].n_findings);
            for (size_t f = 0; f < r[0].n_findings; f++) cr_assert_str_eq(r[0].findings[f].text, r[1].findings[f].text);
            if (sampled_bad) {
                char want[120];
                snprintf(want, sizeof want, "first at row %lld, column %lld", (long long)cases[c].bad_row,
                         (long long)cases[c].bad_k);
                cr_assert(r[0].n_findings && strstr(r[0].findings[0].text, want), "case %zu: %s", c,
                          r[0].n_findings ? r[0].findings[0].text : "(no finding)");
            }
            mp_verify_report_free(&r[0]);
            mp_verify_report_free(&r[1]);
        }
        mp_numerics_free(nu);
    }
    mp_device_close(d);
}

/* Sampled rows fill tiles of 8 (runs), full rows tiles of 32: 300 sampled rows of a 640-row
 * linear are 38 tiles in one parallel group, more than full rows ever make; each tile's result
 * has its slot (a fixed array of 32 overflowed here), and a wrong value in the last run is named. */
Test(unit_verify, many_sampled_rows_fill_more_tiles_than_full_rows)
{
    mp_device *d = open_cpu();
    enum { N = 640, K = 64, G = 2 };
    static uint8_t qw[N * K / 2];
    static uint16_t sc[N * G];
    for (size_t i = 0; i < sizeof qw; i++) qw[i] = (uint8_t)(i * 2246822519u >> 11);
    for (size_t i = 0; i < N * G; i++) sc[i] = (uint16_t)(0x3400 + (i * 61) % 0x0800);
    mp_kernel_data kd = cutlass_data(qw, sizeof qw, sc, sizeof sc, N, K, G);
    for (int bad = 0; bad < 2; bad++) {
        mp_verify_opts o = {.rows = 300, .m = 8, .seed = 3};
        mp_numerics *nu = mp_numerics_new(d, &o, 2);
        hand_ref h = {qw, sc, K, G, bad ? N - 1 : -1, bad ? 5 : -1};
        mp_verify_report r;
        memset(&r, 0, sizeof r);
        mp_vtensor *vt = mp_vtensor_add(&r, "t", "cutlass-int4", N, K, 8);
        mp_err err = MP_ERR_INIT;
        cr_assert_eq(mp_numeric_compare(nu, &kd, N, K, "t", hand_rows, &h, 2, vt, &r, &err), MP_OK, "%s", err.msg);
        cr_assert_eq(r.numeric[0].rows, 300);
        cr_assert_eq(r.numeric[0].bad_values, (uint64_t)bad);
        cr_assert_eq(r.numeric[0].status, bad ? MP_VS_FAIL : MP_VS_PASS, "%s", r.n_findings ? r.findings[0].text : "");
        if (bad) cr_assert(strstr(r.findings[0].text, "first at row 639, column 5"), "%s", r.findings[0].text);
        mp_verify_report_free(&r);
        mp_numerics_free(nu);
    }
    mp_device_close(d);
}
