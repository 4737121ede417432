/*
 * region.c - a region of a linear, repacked in parallel: the unit of work the pipeline and the
 * benchmarks hand to repack/.
 */
#include "repack.h"

#include <stdlib.h>
#include <string.h>

/* Sub-tile sizes: 64 rows of n (whole AWQ words, whole bytes), or 256 codes of k (whole words
 * for every bit width: 32 codes of b bits are b words). */
#define SUB_N 64
#define SUB_K 256

/* 4-bit, dense, 32-bit GPTQ columns (word (r, n) = q[n][8r .. 8r+7]) on one side and rows of n
 * along k on the other: the same nibbles in the same order, so a word transpose (plus the XOR
 * of two's complement) moves them with no canonical step. */
static int gptq_cols(const mp_packing *p)
{
    return p->bits == 4 && !p->fields_per_word && !p->awq_order && !p->along_rows &&
           p->string_is_n && p->container_bytes == 4;
}

static int rows_n(const mp_packing *p)
{
    return p->bits == 4 && !p->fields_per_word && !p->awq_order && p->along_rows && p->string_is_n;
}

/* Byte address of q[n][k] (k a multiple of 8) in a rows-of-n block. */
static uint8_t *row_at(const mp_packing *p, const mp_pblock *b, uint64_t n, uint64_t k)
{
    size_t row_bytes = (size_t)((b->c1 - b->c0) * p->container_bytes);
    return b->data + (n - b->r0) * row_bytes + (k / 2 - b->c0 * p->container_bytes);
}

static uint32_t *col_at(const mp_pblock *b, uint64_t r, uint64_t n)
{
    return (uint32_t *)(void *)(b->data + ((r - b->r0) * (b->c1 - b->c0) + (n - b->c0)) * 4);
}

/* Transposes an 8 x 8 matrix of nibbles held as 8 words (row r = word r, column c = nibble c)
 * in three rounds of block swaps: 4 x 4 blocks, then 2 x 2, then single nibbles. */
static void nibble_transpose8(uint32_t r[8])
{
    for (int k = 0; k < 4; k++) {
        uint32_t a = r[k], b = r[k + 4];
        r[k] = (a & 0x0000FFFFu) | (b << 16);
        r[k + 4] = (a >> 16) | (b & 0xFFFF0000u);
    }
    for (int k = 0; k < 8; k += (k % 2) ? 3 : 1) {
        uint32_t a = r[k], b = r[k + 2];
        r[k] = (a & 0x00FF00FFu) | ((b & 0x00FF00FFu) << 8);
        r[k + 2] = ((a >> 8) & 0x00FF00FFu) | (b & 0xFF00FF00u);
    }
    for (int k = 0; k < 8; k += 2) {
        uint32_t a = r[k], b = r[k + 1];
        r[k] = (a & 0x0F0F0F0Fu) | ((b & 0x0F0F0F0Fu) << 4);
        r[k + 1] = ((a >> 4) & 0x0F0F0F0Fu) | (b & 0xF0F0F0F0u);
    }
}

#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* Four 8 x 8 nibble blocks at once: lane j of r[i] is word i of block j. GCC/Clang vector
 * extensions, so SSE2 on x86-64 and NEON on arm64 without intrinsics. */
typedef uint32_t v4u __attribute__((vector_size(16)));

static void nibble_transpose8x4(v4u r[8])
{
    for (int k = 0; k < 4; k++) {
        v4u a = r[k], b = r[k + 4];
        r[k] = (a & 0x0000FFFFu) | (b << 16);
        r[k + 4] = (a >> 16) | (b & 0xFFFF0000u);
    }
    for (int k = 0; k < 8; k += (k % 2) ? 3 : 1) {
        v4u a = r[k], b = r[k + 2];
        r[k] = (a & 0x00FF00FFu) | ((b & 0x00FF00FFu) << 8);
        r[k + 2] = ((a >> 8) & 0x00FF00FFu) | (b & 0xFF00FF00u);
    }
    for (int k = 0; k < 8; k += 2) {
        v4u a = r[k], b = r[k + 1];
        r[k] = (a & 0x0F0F0F0Fu) | ((b & 0x0F0F0F0Fu) << 4);
        r[k + 1] = ((a >> 4) & 0x0F0F0F0Fu) | (b & 0xF0F0F0F0u);
    }
}
#define MP_VEC4 1
#else
#define MP_VEC4 0
#endif

static int direct(const mp_packing *sp, const mp_pblock *src, uint32_t sxor, const mp_packing *dp,
                  mp_pblock *dst, uint32_t dxor, const mp_qtile *t)
{
    if (t->k0 % 8 || t->k1 % 8) return 0;
    uint32_t flip = (sxor ^ dxor) & 8u ? 0x88888888u : 0u;
    uint64_t r0 = t->k0 / 8, r1 = t->k1 / 8;
    if (gptq_cols(sp) && rows_n(dp)) {
        if (r0 < src->r0 || t->n0 < src->c0 || t->n1 > src->c1 || t->k0 < dst->c0 * dp->container_bytes * 2)
            return 0;
        for (uint64_t n = t->n0; n < t->n1; n++) {
            uint8_t *out = row_at(dp, dst, n, t->k0);
            for (uint64_t r = r0; r < r1; r++, out += 4)
                mp_write_le32(out, mp_read_le32(col_at(src, r, n)) ^ flip);
        }
        return 1;
    }
    if (rows_n(sp) && gptq_cols(dp)) {
        if (r0 < dst->r0 || t->n0 < dst->c0 || t->n1 > dst->c1 || t->k0 < src->c0 * sp->container_bytes * 2)
            return 0;
        for (uint64_t r = r0; r < r1; r++)
            for (uint64_t n = t->n0; n < t->n1; n++)
                mp_write_le32(col_at(dst, r, n), mp_read_le32(row_at(sp, src, n, 8 * r)) ^ flip);
        return 1;
    }
    if (sp->bits == 4 && sp->awq_order && sp->along_rows && !sp->string_is_n && rows_n(dp)) {
        /* AWQ [K, N/8] -> rows of n: an 8 x 8 nibble transpose per block of 8 k and 8 n. */
        static const unsigned order[8] = {0, 2, 4, 6, 1, 3, 5, 7};
        if (t->n0 % 8 || t->n1 % 8 || t->n0 / 8 < src->c0 || t->k0 < src->r0 ||
            t->k0 < dst->c0 * dp->container_bytes * 2)
            return 0;
        size_t cols = (size_t)(src->c1 - src->c0);
        uint64_t c0 = t->n0 / 8, c1 = t->n1 / 8;
        /* Each output row's address at k0, once per tile (at most SUB_N rows). */
        uint8_t *rowp[SUB_N];
        if (t->n1 - t->n0 > SUB_N) return 0;
        for (uint64_t n = t->n0; n < t->n1; n++) rowp[n - t->n0] = row_at(dp, dst, n, t->k0);
        /* k outer: each source row segment is read once, contiguously. */
        for (uint64_t k = t->k0; k < t->k1; k += 8) {
            size_t out_at = (size_t)(k - t->k0) / 2;
            uint64_t c = c0;
#if MP_VEC4
            for (; c + 4 <= c1; c += 4) {
                const uint8_t *in = src->data + ((k - src->r0) * cols + (c - src->c0)) * 4;
                v4u w[8];
                for (int kk = 0; kk < 8; kk++) memcpy(&w[kk], in + (size_t)kk * cols * 4, sizeof w[kk]);
                nibble_transpose8x4(w);
                for (int j = 0; j < 4; j++) {
                    uint8_t *const *rows = rowp + (8 * (c + (uint64_t)j) - t->n0);
                    for (int i = 0; i < 8; i++) {
                        uint32_t v = w[i][j] ^ flip;
                        memcpy(rows[order[i]] + out_at, &v, 4);
                    }
                }
            }
#endif
            for (; c < c1; c++) {
                const uint8_t *in = src->data + ((k - src->r0) * cols + (c - src->c0)) * 4;
                uint32_t w[8];
                for (int kk = 0; kk < 8; kk++) w[kk] = mp_read_le32(in + (size_t)kk * cols * 4);
                nibble_transpose8(w); /* w[i] now holds nibble slot i for k .. k+7 */
                uint8_t *const *rows = rowp + (8 * c - t->n0);
                for (int i = 0; i < 8; i++) mp_write_le32(rows[order[i]] + out_at, w[i] ^ flip);
            }
        }
        return 1;
    }
    return 0;
}

mp_errcode mp_repack_region(const mp_packing *sp, const mp_pblock *src, uint32_t sxor,
                            const mp_packing *dp, mp_pblock *dst, uint32_t dxor, uint64_t n0,
                            uint64_t n1, uint64_t k0, uint64_t k1, int by_n, mp_err *err)
{
    uint64_t len = by_n ? n1 - n0 : k1 - k0, sub = by_n ? SUB_N : SUB_K;
    long long parts = (long long)((len + sub - 1) / sub);
    uint64_t other = by_n ? k1 - k0 : n1 - n0;
    int nomem = 0;
    /* Forking threads costs more than it saves on small linears (MoE experts): 4 Mi codes at
     * least. */
    int wide = parts > 1 && len * other >= (4u << 20);
#pragma omp parallel if (wide) reduction(| : nomem)
    {
        uint8_t *q = malloc((size_t)(sub * other) + 1);
        nomem = q == NULL;
#pragma omp for schedule(static)
        for (long long i = 0; i < parts; i++) {
            if (!q) continue;
            uint64_t a = (by_n ? n0 : k0) + (uint64_t)i * sub, end = by_n ? n1 : k1;
            uint64_t b = a + sub < end ? a + sub : end;
            mp_qtile t = by_n ? (mp_qtile){a, b, k0, k1, q} : (mp_qtile){n0, n1, a, b, q};
            if (direct(sp, src, sxor, dp, dst, dxor, &t)) continue;
            mp_unpack(sp, src, &t, sxor);
            mp_pack(dp, dst, &t, dxor);
        }
        free(q);
    }
    if (nomem) return mp_errf(err, MP_E_NOMEM, "out of memory for repack tiles");
    return MP_OK;
}
