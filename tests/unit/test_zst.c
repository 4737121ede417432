/*
 * test_zst.c - zstd-compressed safetensors: the writer's zstd stream and the transparent reader
 * (formats/safetensors_zst.c), in process, against libzstd's one-shot API as the reference.
 */
#include "../../formats/formats.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

TU_SUITE_WITH_TEMPDIR(unit_zst);

/* Half random bytes, half a repeating ramp: some blocks compress, some are stored raw. */
static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (i / 4096) % 2 ? (uint8_t)(seed >> 16) : (uint8_t)(i % 251);
    }
}

static const mp_tensor_spec specs[] = {
    {"model.layers.0.mlp.up_proj.weight", MP_DTYPE_BF16, 2, {256, 700}},
    {"model.layers.0.input_layernorm.weight", MP_DTYPE_F32, 1, {256}},
    {"model.layers.0.empty", MP_DTYPE_F16, 2, {0, 4}},
    {"model.layers.0.self_attn.q_proj.qweight", MP_DTYPE_I32, 2, {64, 300}},
};
#define N_SPECS (sizeof specs / sizeof *specs)

/* Writes the specs (plain when level is 0), in 1000-byte chunks; returns what finish reports and
 * the writer's per-tensor digests (indexed like specs). */
static mp_st_written write_it(const char *path, int level, uint64_t *xxh64)
{
    mp_err err = MP_ERR_INIT;
    mp_st_writer *w = NULL;
    const char *meta[] = {"producer", "test"};
    mp_errcode rc = level ? mp_st_writer_open_zstd(&w, path, specs, N_SPECS, meta, 1, level, 2, &err)
                          : mp_st_writer_open(&w, path, specs, N_SPECS, meta, 1, &err);
    cr_assert_eq(rc, MP_OK, "%s", err.msg);
    for (size_t next; (next = mp_st_writer_next(w)) != SIZE_MAX;) {
        uint64_t left = mp_st_writer_remaining(w);
        uint8_t *buf = malloc(left + 1);
        fill(buf, left, (uint32_t)next);
        for (uint64_t at = 0; at < left; at += 1000) {
            size_t len = left - at < 1000 ? (size_t)(left - at) : 1000;
            cr_assert_eq(mp_st_writer_write(w, buf + at, len, &err), MP_OK, "%s", err.msg);
        }
        free(buf);
    }
    if (xxh64) mp_st_writer_digest(w, xxh64, NULL);
    mp_st_written st;
    cr_assert_eq(mp_st_writer_finish_stat(w, &st, &err), MP_OK, "%s", err.msg);
    return st;
}

static void canon128(const void *p, size_t n, uint8_t out[16])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(p, n));
    memcpy(out, c.digest, 16);
}

/* A plain file and its zstd twin under tmp; the caller frees the paths. */
static void make_pair(char **plain, char **zst, uint64_t *plain_xxh64)
{
    *plain = tu_path(tmp, "a.safetensors");
    *zst = tu_path(tmp, "a.safetensors.zst");
    write_it(*plain, 0, plain_xxh64);
    write_it(*zst, 3, NULL);
}

Test(unit_zst, zstd_writer_output_decompresses_to_the_plain_writers_bytes)
{
    char *plain = tu_path(tmp, "p.safetensors"), *zst = tu_path(tmp, "p.safetensors.zst");
    uint64_t hp[N_SPECS], hz[N_SPECS];
    mp_st_written sp = write_it(plain, 0, hp), sz = write_it(zst, 7, hz);
    size_t np = 0, nz = 0;
    char *bp = tu_read(plain, &np), *bz = tu_read(zst, &nz);
    cr_assert(bp && bz);
    cr_expect_eq(ZSTD_getFrameContentSize(bz, nz), np, "the frame declares the content size");
    char *back = malloc(np + 1);
    size_t got = ZSTD_decompress(back, np + 1, bz, nz);
    cr_assert(!ZSTD_isError(got), "%s", ZSTD_getErrorName(got));
    cr_assert_eq(got, np);
    cr_expect_arr_eq(back, bp, np, "decompressed bytes differ from the plain file");
    cr_expect_arr_eq(hp, hz, sizeof hp, "per-tensor xxh64 differ");
    uint8_t h[16];
    cr_expect_eq(sp.size, np);
    cr_expect_eq(sp.raw_size, np);
    cr_expect_eq(sz.size, nz);
    cr_expect_eq(sz.raw_size, np);
    canon128(bp, np, h);
    cr_expect_arr_eq(sp.xxh128, h, 16);
    cr_expect_arr_eq(sp.raw_xxh128, h, 16);
    cr_expect_arr_eq(sz.raw_xxh128, h, 16, "uncompressed hash of the zstd file");
    canon128(bz, nz, h);
    cr_expect_arr_eq(sz.xxh128, h, 16, "hash of the bytes on disk");
    cr_expect_lt(nz, np, "the ramps compress");
    free(back);
    free(bp);
    free(bz);
    free(plain);
    free(zst);
}

Test(unit_zst, compressed_file_reads_like_the_plain_one_in_any_order)
{
    char *plain, *zst;
    uint64_t want[N_SPECS];
    make_pair(&plain, &zst, want);
    mp_err err = MP_ERR_INIT;
    mp_st_model *p = NULL, *z = NULL;
    cr_assert_eq(mp_st_open(&p, plain, &err), MP_OK, "%s", err.msg);
    cr_assert_eq(mp_st_open(&z, zst, &err), MP_OK, "%s", err.msg);
    cr_expect_eq(mp_st_file_compression(p, 0), MP_COMPRESS_NONE);
    cr_expect_eq(mp_st_file_compression(z, 0), MP_COMPRESS_ZSTD);
    cr_expect_eq(mp_st_file_raw_size(z, 0), mp_st_file(p, 0)->size);
    cr_expect_lt(mp_st_file(z, 0)->size, mp_st_file(p, 0)->size);
    cr_assert_eq(mp_st_n_tensors(z), N_SPECS);
    /* Backwards, then a middle piece: each read restarts or skips, and must still be exact. */
    for (size_t r = N_SPECS; r-- > 0;) {
        const mp_tensor *tz = mp_st_tensor(z, r), *tp = mp_st_find(p, tz->name);
        cr_assert(tp);
        cr_assert_eq(tz->n_bytes, tp->n_bytes);
        cr_expect_eq(tz->offset, tp->offset);
        uint8_t *a = malloc(tp->n_bytes + 1), *b = malloc(tp->n_bytes + 1);
        cr_assert_eq(mp_st_read(p, tp, 0, a, tp->n_bytes, &err), MP_OK, "%s", err.msg);
        cr_assert_eq(mp_st_read(z, tz, 0, b, tz->n_bytes, &err), MP_OK, "%s", err.msg);
        cr_expect_arr_eq(a, b, tp->n_bytes, "%s", tz->name);
        if (tz->n_bytes > 100) {
            cr_assert_eq(mp_st_read(z, tz, 37, b, 50, &err), MP_OK, "%s", err.msg);
            cr_expect_arr_eq(a + 37, b, 50, "%s [37, 87)", tz->name);
        }
        free(a);
        free(b);
    }
    /* The raw stream in small pieces to the very end: the decoder may have consumed all its
     * input while output is still pending. */
    size_t np = 0;
    char *pb = tu_read(plain, &np);
    cr_assert_eq(mp_st_file_raw_size(z, 0), np);
    char piece[7];
    for (size_t at = 0; at < np; at += sizeof piece) {
        size_t len = np - at < sizeof piece ? np - at : sizeof piece;
        cr_assert_eq(mp_st_file_read_raw(z, 0, at, piece, len, &err), MP_OK, "at %zu: %s", at, err.msg);
        if (memcmp(piece, pb + at, len) != 0) cr_assert_fail("raw bytes differ at %zu", at);
    }
    free(pb);
    /* The digest pass: per tensor in file order, and the whole uncompressed stream. */
    uint64_t got[N_SPECS];
    uint8_t raw[16], ref[16];
    char buf[333];
    cr_assert_eq(mp_st_file_n_tensors(z, 0), N_SPECS);
    cr_assert_eq(mp_st_file_digest(z, 0, got, raw, buf, sizeof buf, &err), MP_OK, "%s", err.msg);
    for (size_t j = 0; j < N_SPECS; j++) {
        const char *name = mp_st_file_tensor(z, 0, j)->name;
        for (size_t s = 0; s < N_SPECS; s++)
            if (strcmp(specs[s].name, name) == 0)
                cr_expect_eq(got[j], want[s], "xxh64 of %s", name);
    }
    cr_assert_eq(mp_file_xxh128(mp_st_file(p, 0), ref, &err), MP_OK);
    cr_expect_arr_eq(raw, ref, 16, "xxh3-128 of the decompressed stream");
    mp_st_close(p);
    mp_st_close(z);
    free(plain);
    free(zst);
}

/* Compresses `data` into path with the given content-size flag. */
static void zstd_to(const char *path, const void *data, size_t n, int content_size)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, content_size);
    size_t cap = ZSTD_compressBound(n);
    char *out = malloc(cap);
    size_t len = ZSTD_compress2(c, out, cap, data, n);
    cr_assert(!ZSTD_isError(len));
    cr_assert(tu_write(path, out, len));
    free(out);
    ZSTD_freeCCtx(c);
}

Test(unit_zst, frame_without_content_size_is_measured_by_decompressing)
{
    char *plain, *zst;
    make_pair(&plain, &zst, NULL);
    size_t n = 0;
    char *bytes = tu_read(plain, &n);
    char *nosize = tu_path(tmp, "nosize.zst");
    zstd_to(nosize, bytes, n, 0);
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    cr_assert_eq(mp_st_open(&m, nosize, &err), MP_OK, "%s", err.msg);
    cr_expect_eq(mp_st_file_raw_size(m, 0), n);
    cr_expect_eq(mp_st_n_tensors(m), N_SPECS);
    /* No checksum either: small reads to the end, where all input may be used up first. */
    char piece[7];
    for (size_t at = 0; at < n; at += sizeof piece) {
        size_t len = n - at < sizeof piece ? n - at : sizeof piece;
        cr_assert_eq(mp_st_file_read_raw(m, 0, at, piece, len, &err), MP_OK, "at %zu: %s", at, err.msg);
        if (memcmp(piece, bytes + at, len) != 0) cr_assert_fail("raw bytes differ at %zu", at);
    }
    mp_st_close(m);
    free(bytes);
    free(nosize);
    free(plain);
    free(zst);
}

static mp_errcode open_bytes(const char *name, const void *data, size_t n, mp_err *err)
{
    char *path = tu_path(tmp, name);
    cr_assert(tu_write(path, data, n));
    mp_st_model *m = NULL;
    mp_errcode rc = mp_st_open(&m, path, err);
    mp_st_close(m);
    free(path);
    return rc;
}

Test(unit_zst, frames_with_absurd_windows_are_refused_before_allocating)
{
    /* magic, descriptor (no content size, not single segment), window descriptor, then an
     * empty last raw block: windows of 2^41, 2^31 and 2^28 bytes. */
    static const uint8_t windows[] = {0xF8, 0xA8, 0x90};
    for (size_t i = 0; i < sizeof windows; i++) {
        uint8_t frame[] = {0x28, 0xB5, 0x2F, 0xFD, 0x00, windows[i], 0x01, 0x00, 0x00};
        mp_err err = MP_ERR_INIT;
        cr_expect_eq(open_bytes("window.zst", frame, sizeof frame, &err), MP_E_UNSUPPORTED,
                     "window descriptor %#x: %s", windows[i], err.msg);
        cr_expect(strstr(err.msg, "window") && strstr(err.msg, "above the limit of 2^27"), "%s", err.msg);
        cr_expect(strstr(err.file, "window.zst"), "names the file: %s", err.file);
    }
    /* A dictionary is refused too (descriptor: 1-byte dictionary id 7). */
    uint8_t dict[] = {0x28, 0xB5, 0x2F, 0xFD, 0x01, 0x50, 0x07, 0x01, 0x00, 0x00};
    mp_err err = MP_ERR_INIT;
    cr_expect_eq(open_bytes("dict.zst", dict, sizeof dict, &err), MP_E_UNSUPPORTED, "%s", err.msg);
    cr_expect(strstr(err.msg, "dictionary 7"), "%s", err.msg);
}

Test(unit_zst, truncated_frames_and_trailing_bytes_are_refused)
{
    char *plain, *zst;
    make_pair(&plain, &zst, NULL);
    size_t n = 0;
    char *bytes = tu_read(zst, &n);
    static const size_t cuts[] = {3, 5, 12, 1000};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        mp_err err = MP_ERR_INIT;
        cr_expect_eq(open_bytes("cut.zst", bytes, n - cuts[i], &err), MP_E_INPUT, "cut %zu: %s",
                     cuts[i], err.msg);
        cr_expect(strstr(err.msg, "truncated zstd frame"), "cut %zu: %s", cuts[i], err.msg);
    }
    char *more = malloc(n + 3);
    memcpy(more, bytes, n);
    memcpy(more + n, "abc", 3);
    mp_err err = MP_ERR_INIT;
    cr_expect_eq(open_bytes("more.zst", more, n + 3, &err), MP_E_INPUT);
    cr_expect_str_eq(err.msg, "3 bytes after the end of the zstd frame (modelprep reads exactly one frame)");
    free(more);
    free(bytes);
    free(plain);
    free(zst);
}

Test(unit_zst, decompressed_data_beyond_the_header_is_refused)
{
    char *plain, *zst;
    make_pair(&plain, &zst, NULL);
    size_t n = 0;
    char *bytes = tu_read(plain, &n);
    char *longer = malloc(n + 5);
    memcpy(longer, bytes, n);
    memset(longer + n, 0, 5);
    for (int declared = 0; declared < 2; declared++) {
        char *path = tu_path(tmp, declared ? "long1.zst" : "long0.zst");
        zstd_to(path, longer, n + 5, declared);
        mp_err err = MP_ERR_INIT;
        mp_st_model *m = NULL;
        cr_expect_eq(mp_st_open(&m, path, &err), MP_E_INPUT);
        cr_expect(strstr(err.msg, "5 trailing bytes after the last tensor"), "%s", err.msg);
        free(path);
    }
    free(longer);
    free(bytes);
    free(plain);
    free(zst);
}

Test(unit_zst, corrupt_data_is_found_on_read_and_names_file_and_tensor)
{
    char *plain, *zst;
    make_pair(&plain, &zst, NULL);
    size_t n = 0;
    char *bytes = tu_read(zst, &n);
    bytes[n - 1] ^= 0x40; /* the frame checksum */
    cr_assert(tu_write(zst, bytes, n));
    mp_err err = MP_ERR_INIT;
    mp_st_model *m = NULL;
    cr_assert_eq(mp_st_open(&m, zst, &err), MP_OK, "the header still reads: %s", err.msg);
    char buf[4096];
    mp_errcode rc = mp_st_file_digest(m, 0, NULL, NULL, buf, sizeof buf, &err);
    cr_expect_eq(rc, MP_E_INPUT);
    cr_expect(strstr(err.msg, "checksum"), "%s", err.msg);
    cr_expect(strstr(err.file, "a.safetensors.zst"), "%s", err.file);
    /* The read that reaches the end is that of the last tensor holding bytes. */
    const mp_tensor *last = NULL;
    for (size_t j = 0; j < mp_st_file_n_tensors(m, 0); j++)
        if (mp_st_file_tensor(m, 0, j)->n_bytes) last = mp_st_file_tensor(m, 0, j);
    cr_assert(last);
    cr_expect_str_eq(err.tensor, last->name);
    mp_st_close(m);
    free(bytes);
    free(plain);
    free(zst);
}

Test(unit_zst, zstd_level_out_of_range_is_a_usage_error_and_creates_nothing)
{
    char *path = tu_path(tmp, "lvl.safetensors.zst");
    mp_err err = MP_ERR_INIT;
    mp_st_writer *w = NULL;
    cr_expect_eq(mp_st_writer_open_zstd(&w, path, specs, N_SPECS, NULL, 0, 20, 1, &err), MP_E_USAGE);
    cr_expect_null(w);
    cr_expect_eq(mp_st_writer_open_zstd(&w, path, specs, N_SPECS, NULL, 0, 0, 1, &err), MP_E_USAGE);
    cr_expect_neq(access(path, F_OK), 0);
    free(path);
}
