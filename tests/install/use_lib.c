/*
 * use_lib.c - a program outside the tree, built against an installed libmodelprep with nothing
 * but `pkg-config --cflags --libs modelprep` (tests/install/check.sh): it may include only
 * <modelprep.h>.
 *
 *   use_lib MODEL WORKDIR
 *
 * MODEL is tests/gen/mkmodel's GPTQ v1 checkpoint (--layers 1 --hidden 64 --intermediate 128
 * --vocab 32 --bits 4 --group-size 32). Prints what it finds, one fact a line, for check.sh to
 * compare with use_lib.expected; any failed expectation inside is a line starting "FAIL".
 * The dequantized rows are checked against this file's own GPTQ decode of the raw tensors, read
 * through mp_model_read: codes LSB-first down each column of qweight int32 [K/8, N], zero points
 * z - 1 packed along N in qzeros int32 [G, N/8], scales f16 [G, N], w = (float)(q - z) * s.
 */
#include <modelprep.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed;

static void fail(const char *what, const mp_err *err)
{
    char buf[1200];
    mp_err_format(err, buf, sizeof buf);
    printf("FAIL %s: %s (%s)\n", what, buf, mp_err_name(err->code));
    failed = 1;
}

static float half_to_float(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 0x400), e - 25);
    return h & 0x8000 ? -v : v;
}

static size_t find_tensor(const mp_model *m, const char *name)
{
    mp_tensor_info ti;
    for (size_t i = 0; i < mp_model_n_tensors(m); i++)
        if (mp_model_tensor(m, i, &ti, NULL) == MP_OK && strcmp(ti.name, name) == 0) return i;
    return (size_t)-1;
}

static void *read_all(const mp_model *m, const char *prefix, const char *suffix)
{
    char name[256];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    mp_err err = MP_ERR_INIT;
    mp_tensor_info ti;
    size_t i = find_tensor(m, name);
    void *buf = NULL;
    if (i == (size_t)-1 || mp_model_tensor(m, i, &ti, &err) != MP_OK || !(buf = malloc(ti.n_bytes)) ||
        mp_model_read(m, i, 0, buf, ti.n_bytes, &err) != MP_OK) {
        fail(name, &err);
        free(buf);
        return NULL;
    }
    return buf;
}

/* Linear `li` decoded from its raw tensors, compared bit for bit with the library's rows. */
static void check_dequant(const mp_model *m, size_t lin)
{
    mp_linear_info li;
    mp_err err = MP_ERR_INIT;
    if (mp_model_linear(m, lin, &li, &err) != MP_OK) return fail("mp_model_linear", &err);
    uint64_t N = li.n_rows, K = li.k_cols, gs = li.group_size;
    uint32_t *qw = read_all(m, li.name, "qweight"), *qz = read_all(m, li.name, "qzeros");
    uint16_t *sc = read_all(m, li.name, "scales");
    float *w = malloc(N * K * sizeof *w);
    if (!qw || !qz || !sc || !w) goto done;
    if (mp_model_dequantize_rows(m, lin, 0, N, w, &err) != MP_OK) {
        fail("mp_model_dequantize_rows", &err);
        goto done;
    }
    uint64_t differ = 0;
    for (uint64_t n = 0; n < N; n++)
        for (uint64_t k = 0; k < K; k++) {
            uint64_t g = k / gs;
            int q = (int)(qw[(k / 8) * N + n] >> (4 * (k % 8)) & 15);
            int z = (int)(qz[g * (N / 8) + n / 8] >> (4 * (n % 8)) & 15) + 1;
            float want = (float)(q - z) * half_to_float(sc[g * N + n]);
            differ += memcmp(&want, &w[n * K + k], sizeof want) != 0;
        }
    printf("linear %s: %llux%llu, %u bits, group %llu, %s %s, %s\n", li.name, (unsigned long long)N,
           (unsigned long long)K, li.bits, (unsigned long long)gs, li.method, li.format,
           li.symmetric == 1 ? "symmetric" : "asymmetric");
    printf("dequantized rows equal the independent decode: %s (%llu of %llu differ); w[3][5] = %.9g\n",
           differ ? "no" : "yes", (unsigned long long)differ, (unsigned long long)(N * K), (double)w[3 * K + 5]);
    if (differ) failed = 1;
    float one;
    if (mp_model_dequantize_rows(m, lin, N, N + 1, &one, &err) == MP_OK) {
        printf("FAIL rows past N were accepted\n");
        failed = 1;
    } else {
        printf("rows [N, N+1): %s\n", mp_err_name(err.code));
    }
done:
    free(qw);
    free(qz);
    free(sc);
    free(w);
}

static void print_model(const char *label, const mp_model *m)
{
    mp_tensor_info first, last;
    size_t n = mp_model_n_tensors(m);
    mp_err err = MP_ERR_INIT;
    if (mp_model_tensor(m, 0, &first, &err) != MP_OK || mp_model_tensor(m, n - 1, &last, &err) != MP_OK)
        return fail("mp_model_tensor", &err);
    printf("%s: %zu tensors, %zu linears, first %s %s [%llu, %llu] in %s, last %s\n", label, n,
           mp_model_n_linears(m), first.name, first.dtype, (unsigned long long)first.shape[0],
           (unsigned long long)first.shape[1], first.file, last.name);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: use_lib MODEL WORKDIR\n");
        return 2;
    }
    char dst[1024], split_dst[1024], packed[1024];
    snprintf(dst, sizeof dst, "%s/f32", argv[2]);
    snprintf(split_dst, sizeof split_dst, "%s/layers", argv[2]);
    snprintf(packed, sizeof packed, "%s/cutlass", argv[2]);
    mp_err err = MP_ERR_INIT;
    mp_model *m = NULL;

    if (mp_model_open(&m, "/nonexistent/model", &err) == MP_OK || m) printf("FAIL a missing path opened\n");
    else printf("open a missing path: %s\n", mp_err_name(err.code));

    if (mp_model_open(&m, argv[1], &err) != MP_OK) {
        fail("mp_model_open", &err);
        return 1;
    }
    printf("library %s\n", MP_VERSION);
    print_model("source", m);
    size_t q = 0;
    mp_linear_info li;
    while (q < mp_model_n_linears(m) && mp_model_linear(m, q, &li, NULL) == MP_OK &&
           strcmp(li.name, "model.layers.0.self_attn.q_proj") != 0)
        q++;
    check_dequant(m, q);

    /* The same value through a job: convert to f32, then read the weight back. */
    mp_convert_options co = MP_CONVERT_OPTIONS_INIT;
    co.to = "f32";
    mp_job_summary js;
    if (mp_convert(argv[1], dst, &co, &js, &err) != MP_OK) fail("mp_convert", &err);
    else printf("convert f32: %zu file, %zu tensors, %llu bytes\n", js.n_files, js.n_tensors, (unsigned long long)js.bytes);
    mp_model *out = NULL;
    if (mp_model_open(&out, dst, &err) != MP_OK) {
        fail("open the converted model", &err);
    } else {
        print_model("converted", out);
        float v;
        size_t i = find_tensor(out, "model.layers.0.self_attn.q_proj.weight");
        if (mp_model_read(out, i, (3 * 64 + 5) * sizeof v, &v, sizeof v, &err) != MP_OK) fail("mp_model_read", &err);
        else printf("converted q_proj.weight[3][5] = %.9g\n", (double)v);
    }
    mp_model_close(out);
    co.to = "no-such-format";
    if (mp_convert(argv[1], dst, &co, NULL, &err) == MP_OK) printf("FAIL an unknown format converted\n");
    else printf("convert to an unknown format: %s: %s\n", mp_err_name(err.code), err.msg);
    co.to = "f32";
    if (mp_convert(argv[1], dst, &co, NULL, &err) == MP_OK) printf("FAIL an existing destination was replaced\n");
    else printf("convert onto an existing destination: %s\n", mp_err_name(err.code));

    mp_split_options so = MP_SPLIT_OPTIONS_INIT;
    if (mp_split(argv[1], split_dst, &so, &js, &err) != MP_OK) fail("mp_split", &err);
    else printf("split: %zu files, %zu tensors\n", js.n_files, js.n_tensors);

    co.to = "cutlass-int4";
    if (mp_convert(argv[1], packed, &co, NULL, &err) == MP_OK) printf("FAIL asymmetric GPTQ became cutlass-int4\n");
    else printf("convert asymmetric to cutlass-int4: %s\n", mp_err_name(err.code));
    co.to = "onednn-int4";
    if (mp_convert(argv[1], packed, &co, NULL, &err) != MP_OK) fail("mp_convert onednn-int4", &err);
    mp_verify_options vo = MP_VERIFY_OPTIONS_INIT;
    mp_verify_summary vs;
    if (mp_verify(packed, &vo, &vs, &err) != MP_OK) fail("mp_verify", &err);
    else printf("verify onednn-int4: %zu failed, %zu numeric checks, manifest %s, device %.3s\n", vs.n_fail,
                vs.n_numeric, vs.manifest ? "checked" : "absent", vs.device);
    mp_model_close(m);
    return failed;
}
