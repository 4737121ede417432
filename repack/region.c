/*
 * region.c - a region of a linear, repacked in parallel: the unit of work the pipeline and the
 * benchmarks hand to repack/.
 */
#include "repack.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Sub-tile sizes: 64 rows of n (whole AWQ words, whole bytes), or 256 codes of k (whole words
 * for every bit width: 32 codes of b bits are b words). The word-transpose paths take 2048 rows
 * of n, so each pass reads long runs of every source row (the generic path still works on 64). */
#define SUB_N 64
#define SUB_N_DIRECT 2048
#define SUB_K 256

/* Rows of a word-transpose panel: 32 words = two cache lines of each output row per pass. */
#define PANEL 32
/* k-blocks of 8 codes staged per AWQ pass: 16 words = one cache line of each output row. */
#define AWQ_PANEL 16

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

static int awq_rows_k(const mp_packing *p)
{
    return p->bits == 4 && p->awq_order && p->along_rows && !p->string_is_n && p->container_bytes == 4;
}

typedef enum { DIRECT_NONE, DIRECT_COLS_TO_ROWS, DIRECT_ROWS_TO_COLS, DIRECT_AWQ_TO_ROWS } direct_kind;

static direct_kind direct_pair(const mp_packing *sp, const mp_packing *dp)
{
    if (gptq_cols(sp) && rows_n(dp)) return DIRECT_COLS_TO_ROWS;
    if (rows_n(sp) && gptq_cols(dp)) return DIRECT_ROWS_TO_COLS;
    if (awq_rows_k(sp) && rows_n(dp)) return DIRECT_AWQ_TO_ROWS;
    return DIRECT_NONE;
}

/* Byte address of q[n][k] (k a multiple of 8) in a rows-of-n block. */
static uint8_t *row_at(const mp_packing *p, const mp_pblock *b, uint64_t n, uint64_t k)
{
    size_t row_bytes = (size_t)((b->c1 - b->c0) * p->container_bytes);
    return b->data + (n - b->r0) * row_bytes + (k / 2 - b->c0 * p->container_bytes);
}

static uint8_t *word_at(const mp_pblock *b, uint64_t r, uint64_t c)
{
    return b->data + ((r - b->r0) * (b->c1 - b->c0) + (c - b->c0)) * 4;
}

/* ---------------------------------------------------------------- word transpose */

#if defined(__SSE2__)
/* A 4 x 4 block of words: d row j = s column j. With nt, streaming stores (d 16-byte aligned):
 * the output is not read again soon, and skipping the read-for-ownership doubles the rate. */
static inline void t4(const uint8_t *s, size_t ss, uint8_t *d, size_t ds, __m128i x, int nt)
{
    __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)s), x);
    __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(s + ss)), x);
    __m128i c = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(s + 2 * ss)), x);
    __m128i e = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(s + 3 * ss)), x);
    __m128i t0 = _mm_unpacklo_epi32(a, b), t1 = _mm_unpackhi_epi32(a, b);
    __m128i t2 = _mm_unpacklo_epi32(c, e), t3 = _mm_unpackhi_epi32(c, e);
    __m128i o0 = _mm_unpacklo_epi64(t0, t2), o1 = _mm_unpackhi_epi64(t0, t2);
    __m128i o2 = _mm_unpacklo_epi64(t1, t3), o3 = _mm_unpackhi_epi64(t1, t3);
    if (nt) {
        _mm_stream_si128((__m128i *)(void *)d, o0);
        _mm_stream_si128((__m128i *)(void *)(d + ds), o1);
        _mm_stream_si128((__m128i *)(void *)(d + 2 * ds), o2);
        _mm_stream_si128((__m128i *)(void *)(d + 3 * ds), o3);
    } else {
        _mm_storeu_si128((__m128i *)(void *)d, o0);
        _mm_storeu_si128((__m128i *)(void *)(d + ds), o1);
        _mm_storeu_si128((__m128i *)(void *)(d + 2 * ds), o2);
        _mm_storeu_si128((__m128i *)(void *)(d + 3 * ds), o3);
    }
}
#endif

#if defined(__SSE2__)
/* Source rows [r0, r1) (a multiple of 4 apart) by columns [0, c4) in 4 x 4 blocks, PANEL rows a
 * pass. */
static void transpose_rows(const uint8_t *s, size_t ss, uint8_t *d, size_t ds, uint64_t r0, uint64_t r1,
                           uint64_t c4, __m128i x, int nt)
{
    for (uint64_t p = r0; p < r1; p += PANEL) {
        uint64_t e = p + PANEL < r1 ? p + PANEL : r1;
        for (uint64_t c = 0; c < c4; c += 4)
            for (uint64_t r = p; r < e; r += 4) t4(s + r * ss + c * 4, ss, d + c * ds + r * 4, ds, x, nt);
    }
}
#endif

/* d[c][r] = s[r][c] ^ flip for a rows x cols matrix of little-endian words; ss and ds are the
 * row strides in bytes. Panels of PANEL source rows keep both sides sequential: each pass reads
 * PANEL short runs and writes whole lines of 4 output rows. Streaming stores pay only on whole
 * 64-byte lines (a partial one costs a read back and defeats the next pass), so they cover the
 * source rows [v0, v1) that fill whole lines of every output row; the rows before and after
 * take ordinary stores, and the edges are scalar. */
static void word_transpose(const uint8_t *s, size_t ss, uint8_t *d, size_t ds, uint64_t rows,
                           uint64_t cols, uint32_t flip)
{
    uint64_t c4 = 0, h = 0, v0 = 0, t = 0; /* rows [0, h) and [v0, t) go 4 x 4, columns [0, c4) */
#if defined(__SSE2__)
    __m128i x = _mm_set1_epi32((int)flip);
    uint64_t v1 = 0;
    if ((uintptr_t)d % 4 == 0 && ds % 64 == 0) {
        v0 = ((64 - (uintptr_t)d % 64) % 64) / 4;
        if (v0 > rows) v0 = rows;
        v1 = v0 + (rows - v0) / 16 * 16;
    }
    h = v0 / 4 * 4;
    t = v1 + (rows - v1) / 4 * 4;
    c4 = cols / 4 * 4;
    transpose_rows(s, ss, d, ds, 0, h, c4, x, 0);
    transpose_rows(s, ss, d, ds, v0, v1, c4, x, 1);
    transpose_rows(s, ss, d, ds, v1, t, c4, x, 0);
    if (v1 > v0) _mm_sfence();
#endif
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t c = r < h || (r >= v0 && r < t) ? c4 : 0; c < cols; c++)
            mp_write_le32(d + c * ds + r * 4, mp_read_le32(s + r * ss + c * 4) ^ flip);
}

/* ---------------------------------------------------------------- nibble transpose */

/* One round of block swaps between rows a and b (of type T): the high `bits` of each
 * 2*bits-wide column group of a trade places with the low `bits` of b's. */
#define SWAP_BLOCKS(T, a, b, bits, lo)                             \
    do {                                                           \
        T x_ = (a), y_ = (b);                                      \
        (a) = (x_ & (lo)) | ((y_ & (lo)) << (bits));               \
        (b) = ((x_ >> (bits)) & (lo)) | (y_ & ~(lo));              \
    } while (0)

/* Transposes an 8 x 8 matrix of nibbles held as 8 values of type T (row r = word r, column
 * c = nibble c; for a vector type, lane by lane) in three rounds of block swaps: 4 x 4 blocks,
 * then 2 x 2, then single nibbles. Written out per pair so the eight stay in registers. */
#define NIBBLE_TRANSPOSE8(T, r0, r1, r2, r3, r4, r5, r6, r7)                                   \
    do {                                                                                        \
        const uint32_t m16 = 0x0000FFFFu, m8 = 0x00FF00FFu, m4 = 0x0F0F0F0Fu;                    \
        SWAP_BLOCKS(T, r0, r4, 16, m16); SWAP_BLOCKS(T, r1, r5, 16, m16);                       \
        SWAP_BLOCKS(T, r2, r6, 16, m16); SWAP_BLOCKS(T, r3, r7, 16, m16);                       \
        SWAP_BLOCKS(T, r0, r2, 8, m8); SWAP_BLOCKS(T, r1, r3, 8, m8);                           \
        SWAP_BLOCKS(T, r4, r6, 8, m8); SWAP_BLOCKS(T, r5, r7, 8, m8);                           \
        SWAP_BLOCKS(T, r0, r1, 4, m4); SWAP_BLOCKS(T, r2, r3, 4, m4);                           \
        SWAP_BLOCKS(T, r4, r5, 4, m4); SWAP_BLOCKS(T, r6, r7, 4, m4);                           \
    } while (0)

static void nibble_transpose8(uint32_t r[8])
{
    NIBBLE_TRANSPOSE8(uint32_t, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
}

#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* Eight 8 x 8 nibble blocks at once: lane j of r[i] is word i of block j. GCC/Clang vector
 * extensions: AVX2 in the clone for CPUs that have it, SSE2 pairs on other x86-64, NEON on
 * arm64, without intrinsics. */
#define MP_VEC 1
typedef uint32_t v8u __attribute__((vector_size(32)));
#if defined(__x86_64__)
#define AWQ_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#else
#define MP_VEC 0
#endif
#ifndef AWQ_CLONES
#define AWQ_CLONES
#endif

/* The nibble-transpose step of awq_to_rows for one k-block: the 8 rows from `in` (row stride
 * src_row), nc words each, into slot i's row at st + i * slot_stride. Eight blocks per step on
 * 256-bit vectors (AVX2 where the CPU has it; two SSE2 halves otherwise), then one at a time. */
AWQ_CLONES static void awq_kblock(const uint8_t *in, size_t src_row, uint32_t *st, size_t slot_stride, uint64_t nc)
{
    uint64_t c = 0;
#if MP_VEC
    for (; c + 8 <= nc; c += 8) {
        const uint8_t *p = in + c * 4;
        v8u w0, w1, w2, w3, w4, w5, w6, w7; /* named, not an array: they stay in registers */
        memcpy(&w0, p, 32), memcpy(&w1, p + src_row, 32), memcpy(&w2, p + 2 * src_row, 32);
        memcpy(&w3, p + 3 * src_row, 32), memcpy(&w4, p + 4 * src_row, 32);
        memcpy(&w5, p + 5 * src_row, 32), memcpy(&w6, p + 6 * src_row, 32);
        memcpy(&w7, p + 7 * src_row, 32);
        if (c % 16 == 0) /* the next k-block's rows, a few lines ahead */
            for (int kk = 8; kk < 16; kk++) __builtin_prefetch(p + (size_t)kk * src_row + 256);
        NIBBLE_TRANSPOSE8(v8u, w0, w1, w2, w3, w4, w5, w6, w7);
        uint32_t *o = st + c;
        memcpy(o, &w0, 32), memcpy(o + slot_stride, &w1, 32), memcpy(o + 2 * slot_stride, &w2, 32);
        memcpy(o + 3 * slot_stride, &w3, 32), memcpy(o + 4 * slot_stride, &w4, 32);
        memcpy(o + 5 * slot_stride, &w5, 32), memcpy(o + 6 * slot_stride, &w6, 32);
        memcpy(o + 7 * slot_stride, &w7, 32);
    }
#endif
    for (; c < nc; c++) {
        uint32_t w[8];
        for (int kk = 0; kk < 8; kk++) w[kk] = mp_read_le32(in + (size_t)kk * src_row + c * 4);
        nibble_transpose8(w);
        for (int i = 0; i < 8; i++) st[(size_t)i * slot_stride + c] = w[i];
    }
}

/* AWQ [K, N/8] -> rows of n, in two steps through a stage. An 8 x 8 nibble transpose of the
 * words (k .. k+7, c) gives, in slot i, the 8 codes of row n = 8c + order[i] for that k-block
 * as one word, so the stage holds, per slot i, a [k-block][c] matrix of finished output words;
 * a word transpose then moves each to row 8c + order[i]. The source rows are read across the
 * whole sub-tile (1 KiB runs): shorter runs per pass measured slower, the prefetcher losing
 * them across pages. */
static void awq_to_rows(const mp_pblock *src, const mp_packing *dp, mp_pblock *dst, uint32_t flip,
                        const mp_qtile *t, uint32_t *stage)
{
    static const unsigned order[8] = {0, 2, 4, 6, 1, 3, 5, 7};
    size_t src_row = (size_t)(src->c1 - src->c0) * 4;
    size_t dst_row = (size_t)((dst->c1 - dst->c0) * dp->container_bytes);
    uint64_t c0 = t->n0 / 8, nc = t->n1 / 8 - c0;
    for (uint64_t k0 = t->k0; k0 < t->k1; k0 += 8 * AWQ_PANEL) {
        uint64_t nkb = (t->k1 - k0) / 8 < AWQ_PANEL ? (t->k1 - k0) / 8 : AWQ_PANEL;
        for (uint64_t kb = 0; kb < nkb; kb++)
            awq_kblock(src->data + (k0 + 8 * kb - src->r0) * src_row + (c0 - src->c0) * 4, src_row,
                       stage + kb * nc, (size_t)(AWQ_PANEL * nc), nc);
        for (int i = 0; i < 8; i++)
            word_transpose((const uint8_t *)(stage + (size_t)i * AWQ_PANEL * nc), nc * 4,
                           row_at(dp, dst, 8 * c0 + order[i], k0), 8 * dst_row, nkb, nc, flip);
    }
}

/* The tile through a path that needs no canonical codes, when the pair and the tile's edges
 * allow one; 0 otherwise. Every destination container of the tile is written whole. */
static int direct(direct_kind kind, const mp_packing *sp, const mp_pblock *src, uint32_t sxor,
                  const mp_packing *dp, mp_pblock *dst, uint32_t dxor, const mp_qtile *t,
                  uint32_t *stage)
{
    if (kind == DIRECT_NONE || t->k0 % 8 || t->k1 % 8) return 0;
    uint32_t flip = (sxor ^ dxor) & 8u ? 0x88888888u : 0u;
    uint64_t r0 = t->k0 / 8, r1 = t->k1 / 8, nn = t->n1 - t->n0;
    switch (kind) {
    case DIRECT_COLS_TO_ROWS:
        if (r0 < src->r0 || t->n0 < src->c0 || t->n1 > src->c1 || t->k0 < dst->c0 * dp->container_bytes * 2)
            return 0;
        word_transpose(word_at(src, r0, t->n0), (size_t)(src->c1 - src->c0) * 4,
                       row_at(dp, dst, t->n0, t->k0), (size_t)((dst->c1 - dst->c0) * dp->container_bytes),
                       r1 - r0, nn, flip);
        return 1;
    case DIRECT_ROWS_TO_COLS:
        if (r0 < dst->r0 || t->n0 < dst->c0 || t->n1 > dst->c1 || t->k0 < src->c0 * sp->container_bytes * 2)
            return 0;
        word_transpose(row_at(sp, src, t->n0, t->k0), (size_t)((src->c1 - src->c0) * sp->container_bytes),
                       word_at(dst, r0, t->n0), (size_t)(dst->c1 - dst->c0) * 4, nn, r1 - r0, flip);
        return 1;
    case DIRECT_AWQ_TO_ROWS:
        if (!stage || t->n0 % 8 || t->n1 % 8 || t->n0 / 8 < src->c0 || t->k0 < src->r0 ||
            t->k0 < dst->c0 * dp->container_bytes * 2 || nn > SUB_N_DIRECT)
            return 0;
        awq_to_rows(src, dp, dst, flip, t, stage);
        return 1;
    default:
        return 0;
    }
}

/* Zeroes the destination containers of a tile: the generic pack ORs codes into them. Tiles are
 * aligned to whole containers, so this touches no other thread's. */
static void zero_tile(const mp_packing *dp, mp_pblock *dst, const mp_qtile *t)
{
    uint64_t clamp[2] = {dst->r1, dst->c1};
    mp_pblock z = mp_packing_block(dp, clamp, t->n0, t->n1, t->k0, t->k1);
    size_t cb = dp->container_bytes, width = (size_t)(dst->c1 - dst->c0);
    if (z.r0 < dst->r0) z.r0 = dst->r0;
    if (z.c0 < dst->c0) z.c0 = dst->c0;
    if (z.r1 > dst->r1) z.r1 = dst->r1;
    if (z.c1 <= z.c0) return;
    for (uint64_t r = z.r0; r < z.r1; r++)
        memset(dst->data + ((r - dst->r0) * width + (z.c0 - dst->c0)) * cb, 0, (size_t)(z.c1 - z.c0) * cb);
}

mp_errcode mp_repack_region(const mp_packing *sp, const mp_pblock *src, uint32_t sxor,
                            const mp_packing *dp, mp_pblock *dst, uint32_t dxor, uint64_t n0,
                            uint64_t n1, uint64_t k0, uint64_t k1, int by_n, mp_err *err)
{
    direct_kind kind = direct_pair(sp, dp);
    uint64_t len = by_n ? n1 - n0 : k1 - k0;
    uint64_t gen = by_n ? SUB_N : SUB_K, sub = by_n && kind != DIRECT_NONE ? SUB_N_DIRECT : gen;
    long long parts = (long long)((len + sub - 1) / sub);
    uint64_t other = by_n ? k1 - k0 : n1 - n0;
    int nomem = 0;
    /* Forking threads costs more than it saves on small linears (MoE experts): 4 Mi codes at
     * least. */
    int wide = parts > 1 && len * other >= (4u << 20);
#pragma omp parallel if (wide) reduction(| : nomem)
    {
        /* Canonical codes for the generic path, allocated on first use; the AWQ stage. */
        uint8_t *q = NULL;
        uint32_t *stage = kind == DIRECT_AWQ_TO_ROWS ? malloc(8u * AWQ_PANEL * (SUB_N_DIRECT / 8) * 4) : NULL;
#pragma omp for schedule(static)
        for (long long i = 0; i < parts; i++) {
            if (nomem) continue;
            uint64_t a = (by_n ? n0 : k0) + (uint64_t)i * sub, end = by_n ? n1 : k1;
            uint64_t b = a + sub < end ? a + sub : end;
            mp_qtile t = by_n ? (mp_qtile){a, b, k0, k1, NULL} : (mp_qtile){n0, n1, a, b, NULL};
            if (direct(kind, sp, src, sxor, dp, dst, dxor, &t, stage)) continue;
            if (!q && !(q = malloc((size_t)(gen * other) + 1))) {
                nomem = 1;
                continue;
            }
            /* The generic path, gen rows of n (or codes of k) at a time. */
            for (uint64_t g = a; g < b; g += gen) {
                uint64_t h = g + gen < b ? g + gen : b;
                mp_qtile u = by_n ? (mp_qtile){g, h, k0, k1, q} : (mp_qtile){n0, n1, g, h, q};
                zero_tile(dp, dst, &u);
                mp_unpack(sp, src, &u, sxor);
                mp_pack(dp, dst, &u, dxor);
            }
        }
        free(q);
        free(stage);
    }
    if (nomem) return mp_errf(err, MP_E_NOMEM, "out of memory for repack tiles");
    return MP_OK;
}
