/*
 * test_safetensors.c - the safetensors reader and writer, in process.
 */
#include "../../formats/formats.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TU_SUITE_WITH_TEMPDIR(unit_safetensors);

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* Writes specs with pattern data, chunk bytes at a time. */
static void write_file(const char *path, const mp_tensor_spec *specs, size_t n, size_t chunk)
{
    mp_err err = MP_ERR_INIT;
    mp_st_writer *w = NULL;
    const char *meta[] = {"producer", "test"};
    cr_assert_eq(mp_st_writer_open(&w, path, specs, n, meta, 1, &err), MP_OK, "%s", err.msg);
    for (size_t next; (next = mp_st_writer_next(w)) != SIZE_MAX;) {
        uint64_t left = mp_st_writer_remaining(w);
        uint8_t *buf = malloc(left);
        fill_pattern(buf, left, (uint32_t)next);
        for (uint64_t at = 0; at < left; at += chunk) {
            size_t len = left - at < chunk ? (size_t)(left - at) : chunk;
            cr_assert_eq(mp_st_writer_write(w, buf + at, len, &err), MP_OK, "%s", err.msg);
        }
        free(buf);
    }
    cr_assert_eq(mp_st_writer_finish(w, &err), MP_OK, "%s", err.msg);
}

static const mp_tensor_spec mixed[] = {
    {"b.bias", MP_DTYPE_F16, 1, {3}},
    {"a.weight", MP_DTYPE_F32, 2, {5, 7}},
    {"c.qweight", MP_DTYPE_I32, 2, {4, 3}},
    {"d.flags", MP_DTYPE_BOOL, 1, {5}},
    {"e.scalar", MP_DTYPE_F64, 0, {0}},
    {"f.empty", MP_DTYPE_BF16, 2, {0, 9}},
    {"g.fp4", MP_DTYPE_F4, 2, {3, 6}},
    {"h.u8", MP_DTYPE_U8, 1, {7}},
};
#define N_MIXED (sizeof mixed / sizeof *mixed)

Test(unit_safetensors, round_trip_gives_identical_tensor_bytes)
{
    char *path = tu_path(tmp, "rt.safetensors");
    write_file(path, mixed, N_MIXED, 3);
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    cr_assert_eq(mp_st_open(&m, path, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(mp_st_n_tensors(m), N_MIXED);
    for (size_t i = 0; i < N_MIXED; i++) {
        const mp_tensor *t = mp_st_find(m, mixed[i].name);
        cr_assert(t, "%s missing", mixed[i].name);
        cr_expect_eq(t->dtype, mixed[i].dtype);
        cr_expect_eq(t->n_dims, mixed[i].n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) cr_expect_eq(t->shape[d], mixed[i].shape[d]);
        uint8_t *want = malloc(t->n_bytes + 1), *got = malloc(t->n_bytes + 1);
        fill_pattern(want, t->n_bytes, (uint32_t)i);
        cr_assert_eq(mp_st_read(m, t, 0, got, t->n_bytes, &err), MP_OK);
        cr_expect_arr_eq(got, want, t->n_bytes, "%s bytes differ", t->name);
        free(want);
        free(got);
    }
    const mp_tensor *fp4 = mp_st_find(m, "g.fp4");
    cr_expect_eq(fp4->n_elems, 18);
    cr_expect_eq(fp4->n_bytes, 9);
    cr_expect_eq(mp_st_find(m, "e.scalar")->n_bytes, 8);
    cr_expect_eq(mp_st_find(m, "f.empty")->n_bytes, 0);
    cr_expect_null(mp_st_find(m, "nope"));
    size_t nm = mp_st_file_n_meta(m, 0);
    cr_assert_eq(nm, 2);
    const char *k, *v;
    mp_st_file_meta(m, 0, 0, &k, &v);
    cr_expect_str_eq(k, "format");
    cr_expect_str_eq(v, "pt");
    mp_st_file_meta(m, 0, 1, &k, &v);
    cr_expect_str_eq(k, "producer");
    mp_st_close(m);
    free(path);
}

/* The strided gather through the file's mapping gives the bytes of one read per element: every
 * column block (a first, last and middle column alone, edge ranges, the whole width), first
 * and last rows included, of I32 and odd-width U8 and F16 tensors. */
Test(unit_safetensors, gather_block_is_the_bytes_of_one_read_per_element)
{
    static const mp_tensor_spec g[] = {
        {"a.qweight", MP_DTYPE_I32, 2, {37, 29}},
        {"b.bytes", MP_DTYPE_U8, 2, {11, 13}},
        {"c.scales", MP_DTYPE_F16, 2, {9, 5}},
    };
    char *path = tu_path(tmp, "gather.safetensors");
    write_file(path, g, 3, 7);
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    cr_assert_eq(mp_st_open(&m, path, &err), MP_OK, "%s", err.msg);
    cr_assert_not_null(mp_st_file_map(m, 0), "a plain file maps");
    for (size_t i = 0; i < 3; i++) {
        const mp_tensor *t = mp_st_find(m, g[i].name);
        uint64_t R = t->shape[0], C = t->shape[1], es = mp_dtype_bits(t->dtype) / 8;
        uint64_t rr[][2] = {{0, R}, {0, 1}, {R - 1, R}, {1, R - 1}, {2, 2}};
        uint64_t cc[][2] = {{0, 1}, {C - 1, C}, {C / 2, C / 2 + 1}, {0, C}, {1, C - 1}, {3, 3}};
        uint8_t *want = malloc(R * C * es + 1), *got = malloc(R * C * es + 1);
        for (size_t a = 0; a < sizeof rr / sizeof *rr; a++)
            for (size_t b = 0; b < sizeof cc / sizeof *cc; b++) {
                uint64_t r0 = rr[a][0], r1 = rr[a][1], c0 = cc[b][0], c1 = cc[b][1];
                uint8_t *w = want;
                for (uint64_t r = r0; r < r1; r++)
                    for (uint64_t c = c0; c < c1; c++, w += es)
                        cr_assert_eq(mp_st_read(m, t, (r * C + c) * es, w, (size_t)es, &err), MP_OK);
                memset(got, 0xA5, R * C * es + 1);
                cr_assert_eq(mp_st_gather_block(m, t, r0, r1, c0, c1, got, &err), MP_OK, "%s", err.msg);
                cr_expect_arr_eq(got, want, (size_t)(w - want), "%s rows [%llu, %llu) cols [%llu, %llu)", t->name,
                                 (unsigned long long)r0, (unsigned long long)r1, (unsigned long long)c0,
                                 (unsigned long long)c1);
                cr_expect_eq(got[w - want], 0xA5, "%s: a byte written past the block", t->name);
            }
        free(want);
        free(got);
    }
    mp_st_close(m);
    free(path);
}

Test(unit_safetensors, writer_aligns_every_tensor_and_pads_header_to_8)
{
    char *path = tu_path(tmp, "al.safetensors");
    write_file(path, mixed, N_MIXED, 1u << 20);
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    cr_assert_eq(mp_st_open(&m, path, &err), MP_OK, "%s", err.msg);
    cr_expect_eq((8 + mp_st_header_len(m, 0)) % 8, 0);
    for (size_t i = 0; i < mp_st_n_tensors(m); i++) {
        const mp_tensor *t = mp_st_tensor(m, i);
        unsigned bytes = mp_dtype_bits(t->dtype) >= 8 ? mp_dtype_bits(t->dtype) / 8 : 1;
        if (t->dtype == MP_DTYPE_C64) bytes = 4;
        cr_expect_eq(t->offset % bytes, 0, "%s at %llu", t->name, (unsigned long long)t->offset);
    }
    /* Descending element size then name: F64 scalar first, BOOL last. */
    size_t len = 0;
    char *raw = tu_read(path, &len);
    const char *hdr = raw + 8; /* the length word holds NUL bytes */
    const char *first = strstr(hdr, "\"e.scalar\""), *i32 = strstr(hdr, "\"c.qweight\"");
    const char *boolean = strstr(hdr, "\"d.flags\"");
    cr_expect(first && i32 && boolean && first < i32 && i32 < boolean);
    cr_expect(strncmp(raw + 8, "{\"__metadata__\":{\"format\":\"pt\",\"producer\":\"test\"}", 49) == 0);
    free(raw);
    mp_st_close(m);
    free(path);
}

Test(unit_safetensors, writer_matches_reference_bytes_for_a_known_file)
{
    /* The crate's test_serialization: one F32 [1,1,2,3] tensor "attn0" without metadata is 65
     * JSON bytes padded to 72. With our {"format":"pt"} metadata the exact bytes are pinned. */
    const mp_tensor_spec one[] = {{"attn0", MP_DTYPE_F32, 4, {1, 1, 2, 3}}};
    char *path = tu_path(tmp, "k.safetensors");
    mp_err err = MP_ERR_INIT;
    mp_st_writer *w = NULL;
    cr_assert_eq(mp_st_writer_open(&w, path, one, 1, NULL, 0, &err), MP_OK);
    float data[6] = {0, 1, 2, 3, 4, 5};
    cr_assert_eq(mp_st_writer_write(w, data, sizeof data, &err), MP_OK);
    cr_assert_eq(mp_st_writer_finish(w, &err), MP_OK);
    size_t len = 0;
    char *raw = tu_read(path, &len);
    const char *json = "{\"__metadata__\":{\"format\":\"pt\"},\"attn0\":{\"dtype\":\"F32\",\"shape\":"
                       "[1,1,2,3],\"data_offsets\":[0,24]}}";
    size_t jl = strlen(json), padded = (jl + 7) / 8 * 8;
    cr_assert_eq(len, 8 + padded + 24);
    cr_expect_eq(mp_read_le64(raw), padded);
    cr_expect(memcmp(raw + 8, json, jl) == 0);
    for (size_t i = jl; i < padded; i++) cr_expect_eq(raw[8 + i], ' ');
    cr_expect(memcmp(raw + 8 + padded, data, 24) == 0);
    free(raw);
    free(path);
}

Test(unit_safetensors, writer_refuses_duplicate_names_and_leaves_no_file)
{
    const mp_tensor_spec dup[] = {{"x", MP_DTYPE_F32, 1, {2}}, {"x", MP_DTYPE_F16, 1, {2}}};
    char *path = tu_path(tmp, "dup.safetensors");
    mp_err err = MP_ERR_INIT;
    mp_st_writer *w = NULL;
    cr_expect_eq(mp_st_writer_open(&w, path, dup, 2, NULL, 0, &err), MP_E_INPUT);
    cr_expect_str_eq(err.tensor, "x");
    cr_expect_str_eq(err.msg, "duplicate tensor name");
    cr_expect_null(w);
    cr_expect_neq(access(path, F_OK), 0);
    free(path);
}

Test(unit_safetensors, writer_finish_with_missing_bytes_fails_and_removes_file)
{
    const mp_tensor_spec one[] = {{"x", MP_DTYPE_F32, 1, {4}}};
    char *path = tu_path(tmp, "short.safetensors");
    mp_err err = MP_ERR_INIT;
    mp_st_writer *w = NULL;
    cr_assert_eq(mp_st_writer_open(&w, path, one, 1, NULL, 0, &err), MP_OK);
    float v[2] = {1, 2};
    cr_assert_eq(mp_st_writer_write(w, v, sizeof v, &err), MP_OK);
    cr_expect_eq(mp_st_writer_finish(w, &err), MP_E_INPUT);
    cr_expect_str_eq(err.msg, "finished with 8 bytes of this tensor unwritten");
    cr_expect_neq(access(path, F_OK), 0);
    free(path);
}

Test(unit_safetensors, writer_refuses_bytes_past_the_last_tensor)
{
    const mp_tensor_spec one[] = {{"x", MP_DTYPE_U8, 1, {2}}};
    char *path = tu_path(tmp, "long.safetensors");
    mp_err err = MP_ERR_INIT;
    mp_st_writer *w = NULL;
    cr_assert_eq(mp_st_writer_open(&w, path, one, 1, NULL, 0, &err), MP_OK);
    cr_expect_eq(mp_st_writer_write(w, "abc", 3, &err), MP_E_INPUT);
    cr_expect_str_eq(err.msg, "1 bytes written past the last tensor");
    mp_st_writer_abort(w);
    cr_expect_neq(access(path, F_OK), 0);
    free(path);
}

Test(unit_safetensors, writer_never_overwrites_an_existing_file)
{
    char *path = tu_path(tmp, "exists.safetensors");
    cr_assert(tu_write(path, "keep", 4));
    mp_err err = MP_ERR_INIT;
    mp_st_writer *w = NULL;
    cr_expect_eq(mp_st_writer_open(&w, path, mixed, 1, NULL, 0, &err), MP_E_IO);
    cr_expect(strstr(err.msg, "cannot create: File exists"));
    size_t len;
    char *raw = tu_read(path, &len);
    cr_expect_str_eq(raw, "keep");
    free(raw);
    free(path);
}

Test(unit_safetensors, empty_checkpoint_is_valid)
{
    char *path = tu_path(tmp, "empty.safetensors");
    write_file(path, NULL, 0, 1);
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    cr_assert_eq(mp_st_open(&m, path, &err), MP_OK, "%s", err.msg);
    cr_expect_eq(mp_st_n_tensors(m), 0);
    mp_st_close(m);
    free(path);
}

Test(unit_safetensors, every_dtype_has_its_size)
{
    const unsigned bits[MP_DTYPE_COUNT] = {8, 4, 6, 6, 8, 8, 8, 8, 8, 8, 8,
                                           16, 16, 16, 16, 32, 32, 32, 64, 64, 64, 64};
    for (int t = 0; t < MP_DTYPE_COUNT; t++) {
        mp_dtype back;
        cr_expect(mp_dtype_parse(mp_dtype_name((mp_dtype)t), &back));
        cr_expect_eq(back, (mp_dtype)t);
        cr_expect_eq(mp_dtype_bits((mp_dtype)t), bits[t], "%s", mp_dtype_name((mp_dtype)t));
    }
    mp_dtype x;
    cr_expect_not(mp_dtype_parse("f32", &x));
    cr_expect_not(mp_dtype_parse("F8", &x));
    uint64_t n;
    const char *why = NULL;
    cr_expect(mp_dtype_nbytes(MP_DTYPE_F4, 3, &n, &why));
    cr_expect_str_eq(why, "partial byte");
    cr_expect_not(mp_dtype_nbytes(MP_DTYPE_F6_E2M3, 4, &n, &why));
    cr_expect_eq(n, 3);
    cr_expect(mp_dtype_nbytes(MP_DTYPE_F64, 1ull << 62, &n, &why));
    cr_expect_str_eq(why, "overflow");
}

Test(unit_safetensors, shards_are_cut_greedily_in_key_order)
{
    const mp_tensor_spec s[] = {
        {"a", MP_DTYPE_U8, 1, {40}}, {"b", MP_DTYPE_U8, 1, {40}}, {"c", MP_DTYPE_U8, 1, {30}},
        {"d", MP_DTYPE_U8, 1, {500}}, {"e", MP_DTYPE_U8, 1, {1}},
    };
    uint32_t shard[5];
    /* a+b = 80; c would make 110: new shard; d (500) exceeds the limit alone: its own shard;
     * e would push d's shard further past the limit: new shard. */
    cr_expect_eq(mp_st_plan_shards(s, 5, 100, shard), 4);
    const uint32_t want[5] = {0, 0, 1, 2, 3};
    cr_expect_arr_eq(shard, want, sizeof want);
    cr_expect_eq(mp_st_plan_shards(s, 5, 0, shard), 1);
    char name[64];
    mp_st_shard_name(1, 3, name, sizeof name);
    cr_expect_str_eq(name, "model-00002-of-00003.safetensors");
    mp_st_shard_name(0, 1, name, sizeof name);
    cr_expect_str_eq(name, "model.safetensors");
}

Test(unit_safetensors, index_json_is_sorted_with_total_size)
{
    const char *names[] = {"b.weight", "a.weight"};
    const char *files[] = {"model-00002-of-00002.safetensors", "model-00001-of-00002.safetensors"};
    mp_buf b = MP_BUF_INIT;
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_st_index_json(&b, names, files, 2, 1234, &err), MP_OK);
    cr_expect_str_eq(b.data, "{\n  \"metadata\": {\n    \"total_size\": 1234\n  },\n"
                             "  \"weight_map\": {\n"
                             "    \"a.weight\": \"model-00001-of-00002.safetensors\",\n"
                             "    \"b.weight\": \"model-00002-of-00002.safetensors\"\n  }\n}\n");
    mp_buf_release(&b);
}

Test(unit_safetensors, sharded_directory_opens_through_its_index)
{
    const mp_tensor_spec s1[] = {{"a", MP_DTYPE_F32, 1, {4}}, {"b", MP_DTYPE_F16, 1, {2}}};
    const mp_tensor_spec s2[] = {{"c", MP_DTYPE_I32, 2, {2, 2}}};
    char *p1 = tu_path(tmp, "model-00001-of-00002.safetensors");
    char *p2 = tu_path(tmp, "model-00002-of-00002.safetensors");
    write_file(p1, s1, 2, 5);
    write_file(p2, s2, 1, 5);
    const char *names[] = {"a", "b", "c"};
    const char *files[] = {"model-00001-of-00002.safetensors", "model-00001-of-00002.safetensors",
                           "model-00002-of-00002.safetensors"};
    mp_buf b = MP_BUF_INIT;
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_st_index_json(&b, names, files, 3, 36, &err), MP_OK);
    char *ip = tu_path(tmp, "model.safetensors.index.json");
    cr_assert(tu_write(ip, b.data, b.len));
    mp_buf_release(&b);
    mp_st_model *m = NULL;
    cr_assert_eq(mp_st_open(&m, tmp, &err), MP_OK, "%s", err.msg);
    cr_expect(mp_st_is_sharded(m));
    cr_expect_eq(mp_st_n_files(m), 2);
    cr_expect_eq(mp_st_n_tensors(m), 3);
    cr_expect_str_eq(mp_st_file_name(m, mp_st_find(m, "c")->file), "model-00002-of-00002.safetensors");
    cr_expect_str_eq(mp_st_dir(m), tmp);
    mp_st_close(m);
    free(p1);
    free(p2);
    free(ip);
}

Test(unit_safetensors, reading_a_truncated_tensor_names_file_and_tensor)
{
    const mp_tensor_spec one[] = {{"w", MP_DTYPE_F32, 1, {1024}}};
    char *path = tu_path(tmp, "t.safetensors");
    write_file(path, one, 1, 4096);
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    cr_assert_eq(mp_st_open(&m, path, &err), MP_OK);
    /* The file shrinks under an open reader (a concurrent writer, a failing disk). */
    cr_assert_eq(truncate(path, 1000), 0);
    uint8_t buf[4096];
    const mp_tensor *t = mp_st_find(m, "w");
    cr_expect_eq(mp_st_read(m, t, 0, buf, sizeof buf, &err), MP_E_INPUT);
    cr_expect_str_eq(err.tensor, "w");
    cr_expect_str_eq(err.file, path);
    cr_expect(strstr(err.msg, "unexpected end of file"));
    mp_st_close(m);
    free(path);
}

Test(unit_safetensors, config_summary_reads_gptq_and_awq_spellings)
{
    char *cfgp = tu_path(tmp, "config.json");
    const char *cfg = "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\","
                      "\"num_hidden_layers\":32,\"tie_word_embeddings\":false,"
                      "\"quantization_config\":{\"quant_method\":\"awq\",\"w_bit\":4,"
                      "\"q_group_size\":128,\"zero_point\":true,\"version\":\"gemm\"}}";
    cr_assert(tu_write(cfgp, cfg, strlen(cfg)));
    mp_hf_config c;
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_hf_config_load(&c, tmp, &err), MP_OK, "%s", err.msg);
    cr_expect_str_eq(c.architecture, "LlamaForCausalLM");
    cr_expect_eq(c.num_hidden_layers, 32);
    cr_expect_eq(c.tie_word_embeddings, 0);
    cr_expect_str_eq(c.quant.quant_method, "awq");
    cr_expect_eq(c.quant.bits, 4);
    cr_expect_eq(c.quant.group_size, 128);
    cr_expect_eq(c.quant.sym, 0);
    cr_expect_str_eq(c.quant.format, "gemm");
    const char *bad = "{\"num_hidden_layers\":\"32\"}";
    unlink(cfgp);
    cr_assert(tu_write(cfgp, bad, strlen(bad)));
    cr_expect_eq(mp_hf_config_load(&c, tmp, &err), MP_E_INPUT);
    cr_expect_str_eq(err.msg, "'num_hidden_layers' is not an integer in [0, 1048576]");
    cr_expect_str_eq(err.file, cfgp);
    free(cfgp);
}

Test(unit_safetensors, quantize_config_json_is_read_when_config_has_none)
{
    char *p = tu_path(tmp, "quantize_config.json");
    const char *q = "{\"bits\":3,\"group_size\":-1,\"sym\":false,\"desc_act\":true,"
                    "\"checkpoint_format\":\"gptq\",\"quant_method\":\"gptq\"}";
    cr_assert(tu_write(p, q, strlen(q)));
    mp_hf_config c;
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_hf_config_load(&c, tmp, &err), MP_OK, "%s", err.msg);
    cr_expect_eq(c.present, 0);
    cr_expect(c.quant.present);
    cr_expect_str_eq(c.quant.source, "quantize_config.json");
    cr_expect_eq(c.quant.bits, 3);
    cr_expect_eq(c.quant.group_size, -1);
    cr_expect_eq(c.quant.desc_act, 1);
    free(p);
}

/* mp_st_writer_copy (split and convert's pass-through): the same file as writing the bytes,
 * when the kernel copies them (same file system) and when it refuses and write() takes over
 * (a source on /dev/shm, another device); small tensors go through the stage either way. */
static void copy_case(const char *src_dir, const char *out_name)
{
    const mp_tensor_spec specs[] = {{"big", MP_DTYPE_U8, 2, {3, 1000003}}, {"small", MP_DTYPE_F32, 1, {5}}};
    char *src = tu_path(src_dir, "src.safetensors"), *out = tu_path(tmp, out_name);
    write_file(src, specs, 2, 1u << 20);
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    cr_assert_eq(mp_st_open(&m, src, &err), MP_OK, "%s", err.msg);
    mp_st_writer *w = NULL;
    const char *meta[] = {"producer", "test"};
    cr_assert_eq(mp_st_writer_open(&w, out, specs, 2, meta, 1, &err), MP_OK, "%s", err.msg);
    for (size_t next; (next = mp_st_writer_next(w)) != SIZE_MAX;) {
        const mp_tensor *t = mp_st_tensor(m, mp_st_index_of(m, specs[next].name));
        /* two pieces: the first ends mid-tensor, so the file offset must carry on from it */
        uint64_t half = t->n_bytes / 2;
        for (uint64_t at = 0; at < t->n_bytes; at = at ? t->n_bytes : half) {
            uint64_t len = (at ? t->n_bytes : half) - at;
            mp_st_span span;
            cr_assert(mp_st_map(m, t, at, (size_t)len, &span), "a plain file maps");
            cr_assert_eq(mp_st_writer_copy(w, &span, (size_t)len, &err), MP_OK,
                         "%s", err.msg);
            mp_st_unmap(&span);
        }
    }
    uint64_t d_copy[2];
    uint8_t h_copy[16];
    mp_st_writer_digest(w, d_copy, h_copy);
    cr_assert_eq(mp_st_writer_finish(w, &err), MP_OK, "%s", err.msg);
    uint64_t d_src[2];
    uint8_t h_src[16], buf[4096];
    cr_assert_eq(mp_st_file_digest(m, 0, d_src, h_src, buf, sizeof buf, &err), MP_OK);
    cr_expect(memcmp(h_copy, h_src, 16) == 0, "the file hash is the source's");
    size_t a_len = 0, b_len = 0;
    char *a = tu_read(src, &a_len), *b = tu_read(out, &b_len);
    cr_assert(a && b && a_len == b_len && memcmp(a, b, a_len) == 0, "copied file equals the written one");
    free(a);
    free(b);
    mp_st_close(m);
    unlink(src);
    free(src);
    free(out);
}

Test(unit_safetensors, writer_copy_is_byte_identical_by_kernel_copy_or_write)
{
    copy_case(tmp, "same-fs.safetensors");
    char shm[] = "/dev/shm/modelprep-test-XXXXXX";
    if (access("/dev/shm", W_OK) == 0 && mkdtemp(shm)) {
        copy_case(shm, "cross-fs.safetensors");
        rmdir(shm);
    }
}

Test(unit_safetensors, writer_copy_of_a_source_cut_short_names_the_source)
{
    /* A source that lost bytes after it was mapped: copy_file_range() reaches its end early. */
    const mp_tensor_spec one[] = {{"w", MP_DTYPE_U8, 1, {2u << 20}}};
    char *src = tu_path(tmp, "short.bin"), *out = tu_path(tmp, "cut.safetensors");
    FILE *f = fopen(src, "wb");
    cr_assert(f);
    static uint8_t bytes[2u << 20];
    cr_assert_eq(fwrite(bytes, 1, 1u << 20, f), 1u << 20); /* half of what the span claims */
    fclose(f);
    int fd = open(src, O_RDONLY);
    cr_assert(fd >= 0);
    mp_st_span span = {bytes, fd, 0, src, NULL, 0};
    mp_err err = MP_ERR_INIT;
    mp_st_writer *w = NULL;
    cr_assert_eq(mp_st_writer_open(&w, out, one, 1, NULL, 0, &err), MP_OK);
    cr_assert_eq(mp_st_writer_copy(w, &span, sizeof bytes, &err), MP_E_INPUT);
    cr_expect_str_eq(err.file, src);
    cr_expect_str_eq(err.tensor, "w");
    char want[1200];
    snprintf(want, sizeof want, "ended at byte 1048576 while being copied to '%s': changed since it was opened", out);
    cr_expect_str_eq(err.msg, want);
    mp_st_writer_abort(w);
    close(fd);
    cr_expect(access(out, F_OK) != 0, "no output left");
    free(src);
    free(out);
}
