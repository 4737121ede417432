/*
 * test_repack.c - the layout descriptors and the fast pack/unpack paths against the _ref path.
 */
#include "../../repack/repack.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Packs random codes with the fast path and with _ref over a tile, compares bytes, then unpacks
 * both ways and compares with the codes. */
static void roundtrip(const mp_packing *p, uint64_t N, uint64_t K, uint64_t n0, uint64_t n1,
                      uint64_t k0, uint64_t k1, uint32_t xor_)
{
    uint64_t shape[2];
    mp_packing_shape(p, N, K, shape);
    mp_pblock a = mp_packing_block(p, shape, n0, n1, k0, k1), b = a;
    uint64_t bytes = (a.r1 - a.r0) * (a.c1 - a.c0) * p->container_bytes;
    a.data = calloc(bytes + 1, 1);
    b.data = calloc(bytes + 1, 1);
    uint64_t cnt = (n1 - n0) * (k1 - k0);
    uint8_t *q = malloc(cnt + 1), *u1 = malloc(cnt + 1), *u2 = malloc(cnt + 1);
    uint32_t seed = (uint32_t)(N * 31 + K * 7 + n0 + k0);
    for (uint64_t i = 0; i < cnt; i++) q[i] = (uint8_t)(lcg(&seed) & ((1u << p->bits) - 1u));
    mp_qtile t = {n0, n1, k0, k1, q};
    mp_pack(p, &a, &t, xor_);
    mp_pack_ref(p, &b, &t, xor_);
    cr_assert(memcmp(a.data, b.data, bytes) == 0, "pack differs: bits %u rows %d awq %d tile [%llu,%llu)x[%llu,%llu)",
              p->bits, p->along_rows, p->awq_order, (unsigned long long)n0, (unsigned long long)n1,
              (unsigned long long)k0, (unsigned long long)k1);
    mp_qtile t1 = {n0, n1, k0, k1, u1}, t2 = {n0, n1, k0, k1, u2};
    mp_unpack(p, &a, &t1, xor_);
    mp_unpack_ref(p, &a, &t2, xor_);
    cr_assert(memcmp(u1, q, cnt) == 0, "fast unpack does not give the codes back");
    cr_assert(memcmp(u2, q, cnt) == 0, "reference unpack does not give the codes back");
    free(a.data);
    free(b.data);
    free(q);
    free(u1);
    free(u2);
}

Test(unit_repack, fast_paths_equal_the_reference_for_every_layout_and_tile)
{
    for (size_t f = 0; f < mp_scheme_count(); f++) {
        const mp_scheme *L = mp_scheme_at(f);
        if (L->pack == MP_QPACK_COUNT) continue; /* a recognition entry, not a layout */
        for (uint32_t bits = 2; bits <= 8; bits++) {
            if (!((L->bits_mask >> bits) & 1u)) continue;
            mp_packing p = L->codes;
            p.bits = bits;
            const uint64_t N = 48, K = 96;
            /* whole matrix, row tiles, k tiles aligned to 32 */
            roundtrip(&p, N, K, 0, N, 0, K, 0);
            roundtrip(&p, N, K, 8, 24, 0, K, 0);
            roundtrip(&p, N, K, 0, N, 32, 64, 0);
            if (bits == 4) roundtrip(&p, N, K, 16, 40, 0, K, 8);
            /* zero points: an N x G matrix in the layout's zeros packing */
            if (!L->zeros.container_bytes) continue;
            mp_packing z = L->zeros;
            z.bits = bits;
            roundtrip(&z, N, 12, 0, N, 0, 12, 0);
            roundtrip(&z, N, 12, 8, 40, 0, 12, 0);
            roundtrip(&z, N, 12, 0, N, 3, 9, 0);
        }
    }
}

Test(unit_repack, padded_and_straddling_packings_round_trip)
{
    mp_packing dense3 = {4, 3, 1, 1, 0, 0}, padded3 = {4, 3, 1, 1, 0, 10}, col3 = {4, 3, 0, 1, 0, 0};
    roundtrip(&dense3, 5, 50, 0, 5, 0, 50, 0);
    roundtrip(&padded3, 5, 50, 0, 5, 0, 50, 0);
    roundtrip(&col3, 7, 64, 0, 7, 0, 64, 0);
    roundtrip(&col3, 7, 64, 0, 7, 32, 64, 0);
}

Test(unit_repack, descriptors_match_the_layout_table)
{
    /* doc/reference.md §3.1 shapes for N = 64, K = 128, 4-bit. */
    uint64_t s[2];
    mp_packing p;
    p = mp_scheme_find("gptq")->codes;
    p.bits = 4;
    mp_packing_shape(&p, 64, 128, s);
    cr_expect(s[0] == 16 && s[1] == 64, "gptq qweight [K/8, N]");
    p = mp_scheme_find("awq")->codes;
    mp_packing_shape(&p, 64, 128, s);
    cr_expect(s[0] == 128 && s[1] == 8, "awq qweight [K, N/8]");
    p = mp_scheme_find("cutlass-int4")->codes;
    mp_packing_shape(&p, 64, 128, s);
    cr_expect(s[0] == 64 && s[1] == 64, "cutlass qweight [N, K/2] bytes");
    p = mp_scheme_find("onednn-int4")->codes;
    p.bits = 4;
    mp_packing_shape(&p, 64, 128, s);
    cr_expect(s[0] == 64 && s[1] == 16, "onednn qweight [N, K/8]");
    p = mp_scheme_find("compressed-tensors")->zeros;
    p.bits = 4;
    mp_packing_shape(&p, 64, 4, s);
    cr_expect(s[0] == 8 && s[1] == 4, "ct weight_zero_point [N/8, G]");
    /* The AWQ interleave puts column 1 at shift 16, column 2 at shift 4 (§3.5). */
    p = mp_scheme_find("awq")->codes;
    cr_expect_eq(mp_packing_bit(&p, 1), 16);
    cr_expect_eq(mp_packing_bit(&p, 2), 4);
    cr_expect_eq(mp_packing_bit(&p, 9), 48);
    cr_expect_str_eq(mp_scheme_find("cutlass-int4")->name, "cutlass-int4");
    cr_expect_null(mp_scheme_find("int3"));
}

Test(unit_repack, cutlass_s4_is_u4_xor_8)
{
    /* implement_zp(b) == b ^ 0x88 for every byte (doc/formats/cutlass-int4.md §3). */
    mp_packing p = mp_scheme_find("cutlass-int4")->codes;
    uint8_t q[2] = {3, 12};
    uint8_t u4 = 0, s4 = 0;
    mp_pblock bu = {&u4, 0, 1, 0, 1}, bs = {&s4, 0, 1, 0, 1};
    mp_qtile t = {0, 1, 0, 2, q};
    mp_pack(&p, &bu, &t, 0);
    mp_pack(&p, &bs, &t, 8);
    cr_expect_eq(u4, 0xC3);
    cr_expect_eq(s4, 0xC3 ^ 0x88);
}

/* A region larger than one sub-tile, through the parallel path, equals packing the same codes
 * with the reference: sub-tiles land at offsets inside the blocks, the destination starts as
 * garbage (the region writes every container whole), and two's complement flips on either
 * side. Shapes cover the word-transpose edges: N not a multiple of 4 or 8, K/8 words not a
 * multiple of 4, and more rows than one panel or one sub-tile. */
static void region_case_at(const char *from, const char *to, int by_n, uint64_t N, uint64_t K, uint32_t sxor,
                           uint32_t dxor, size_t off)
{
    mp_packing sp = mp_scheme_find(from)->codes, dp = mp_scheme_find(to)->codes;
    sp.bits = dp.bits = 4;
    uint64_t ss[2], ds[2];
    mp_packing_shape(&sp, N, K, ss);
    mp_packing_shape(&dp, N, K, ds);
    mp_pblock src = mp_packing_block(&sp, ss, 0, N, 0, K), dst = mp_packing_block(&dp, ds, 0, N, 0, K);
    mp_pblock want = dst;
    size_t sb = (size_t)(ss[0] * ss[1] * sp.container_bytes), db = (size_t)(ds[0] * ds[1] * dp.container_bytes);
    src.data = calloc(sb, 1);
    uint8_t *dst_mem = malloc(db + off);
    dst.data = dst_mem + off; /* streaming stores start where rows meet a 64-byte line */
    want.data = calloc(db, 1);
    memset(dst.data, 0xA5, db);
    uint8_t *q = malloc(N * K);
    uint32_t seed = (uint32_t)(N * 31 + K);
    for (uint64_t i = 0; i < N * K; i++) q[i] = (uint8_t)(lcg(&seed) & 15u);
    mp_qtile t = {0, N, 0, K, q};
    mp_pack_ref(&sp, &src, &t, sxor);
    mp_pack_ref(&dp, &want, &t, dxor);
    mp_err err = MP_ERR_INIT;
    cr_assert_eq(mp_repack_region(&sp, &src, sxor, &dp, &dst, dxor, 0, N, 0, K, by_n, &err), MP_OK);
    cr_assert(memcmp(dst.data, want.data, db) == 0, "%s -> %s by %s, N %llu K %llu, xor %u/%u, offset %zu differs",
              from, to, by_n ? "n" : "k",
              (unsigned long long)N, (unsigned long long)K, sxor, dxor, off);
    free(src.data);
    free(dst_mem);
    free(want.data);
    free(q);
}

static void region_case(const char *from, const char *to, int by_n, uint64_t N, uint64_t K, uint32_t sxor,
                        uint32_t dxor)
{
    static const size_t offsets[] = {0, 4, 20, 1};
    for (size_t i = 0; i < sizeof offsets / sizeof *offsets; i++)
        region_case_at(from, to, by_n, N, K, sxor, dxor, offsets[i]);
}

Test(unit_repack, parallel_regions_equal_the_reference)
{
    static const uint64_t shapes[][2] = {{200, 512}, {8, 8}, {24, 40}, {1000, 264}, {264, 2048}};
    static const struct {
        const char *from, *to;
        int by_n;
        uint32_t sxor, dxor;
    } pairs[] = {
        {"gptq", "cutlass-int4", 1, 0, 0},  {"gptq", "cutlass-int4", 1, 0, 8},
        {"awq", "cutlass-int4", 1, 0, 0},   {"awq", "cutlass-int4", 1, 0, 8},
        {"compressed-tensors", "gptq-v2", 0, 0, 0},         {"cutlass-int4", "awq", 0, 8, 0},
        {"cutlass-int4", "gptq", 0, 8, 0},  {"onednn-int4", "gptq", 0, 0, 0},
        {"gptq", "onednn-int4", 1, 0, 0},   {"awq", "onednn-int4", 1, 0, 0},
        {"awq", "compressed-tensors", 1, 0, 0},             {"gptq", "awq", 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (size_t p = 0; p < sizeof pairs / sizeof *pairs; p++)
            region_case(pairs[p].from, pairs[p].to, pairs[p].by_n, shapes[i][0], shapes[i][1], pairs[p].sxor,
                        pairs[p].dxor);
}
