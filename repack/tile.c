/*
 * tile.c - unpack a packed block into canonical codes, and pack canonical codes into a block.
 *
 * The _ref functions handle every packing one field at a time through mp_packing_bit(). The
 * fast paths cover the 4-bit geometries that carry nearly all real weights:
 *   rows of n along k (bytes [N, K/2], or words [N, K/8]):
 *     the row's bytes are the little-endian bit string, so each byte is two codes;
 *   columns of n along k ([K/8, N]): word (r, n) holds q[n][8r .. 8r+7];
 *   rows of k along n with the AWQ order ([K, N/8]): word (k, c) holds
 *     q[8c + [0,2,4,6,1,3,5,7][i]][k] in nibble i;
 *   rows of x along n in order (zero points [G, N/8]): word (g, c) holds z[8c + i][g] in
 *     nibble i.
 * Each is tested against the _ref path on every alignment (tests/unit/test_repack.c).
 */
#include "repack.h"

#include <string.h>

static const unsigned awq_order[8] = {0, 2, 4, 6, 1, 3, 5, 7};

static uint64_t load(const uint8_t *p, uint32_t cb)
{
    return cb == 4 ? mp_read_le32(p) : p[0];
}

static void store_or(uint8_t *p, uint32_t cb, uint64_t v)
{
    if (cb == 4) mp_write_le32(p, mp_read_le32(p) | (uint32_t)v);
    else p[0] = (uint8_t)(p[0] | v);
}

/* Byte offset of container (row, col) of the tensor inside the block. */
static size_t at(const mp_pblock *b, uint32_t cb, uint64_t row, uint64_t col)
{
    return (size_t)(((row - b->r0) * (b->c1 - b->c0) + (col - b->c0)) * cb);
}

typedef struct where {
    uint64_t row, col;     /* first container */
    uint64_t row2, col2;   /* the next container along the string */
    uint32_t shift;
} where;

static where locate(const mp_packing *p, uint64_t n, uint64_t x)
{
    uint64_t s = p->string_is_n ? n : x, f = p->string_is_n ? x : n;
    uint64_t cbits = 8ull * p->container_bytes, bit = mp_packing_bit(p, f), c = bit / cbits;
    where w;
    w.shift = (uint32_t)(bit % cbits);
    if (p->along_rows) {
        w.row = w.row2 = s;
        w.col = c;
        w.col2 = c + 1;
    } else {
        w.col = w.col2 = s;
        w.row = c;
        w.row2 = c + 1;
    }
    return w;
}

void mp_unpack_ref(const mp_packing *p, const mp_pblock *b, mp_qtile *t, uint32_t xor_)
{
    uint32_t cb = p->container_bytes, cbits = 8 * cb, mask = (1u << p->bits) - 1u;
    uint64_t ld = t->k1 - t->k0;
    for (uint64_t n = t->n0; n < t->n1; n++) {
        for (uint64_t x = t->k0; x < t->k1; x++) {
            where w = locate(p, n, x);
            uint64_t v = load(b->data + at(b, cb, w.row, w.col), cb) >> w.shift;
            if (w.shift + p->bits > cbits)
                v |= load(b->data + at(b, cb, w.row2, w.col2), cb) << (cbits - w.shift);
            t->q[(n - t->n0) * ld + (x - t->k0)] = (uint8_t)(((uint32_t)v & mask) ^ xor_);
        }
    }
}

void mp_pack_ref(const mp_packing *p, mp_pblock *b, const mp_qtile *t, uint32_t xor_)
{
    uint32_t cb = p->container_bytes, cbits = 8 * cb, mask = (1u << p->bits) - 1u;
    uint64_t ld = t->k1 - t->k0;
    for (uint64_t n = t->n0; n < t->n1; n++) {
        for (uint64_t x = t->k0; x < t->k1; x++) {
            where w = locate(p, n, x);
            uint64_t v = (uint64_t)((t->q[(n - t->n0) * ld + (x - t->k0)] ^ xor_) & mask);
            store_or(b->data + at(b, cb, w.row, w.col), cb, (v << w.shift) & ((1ull << cbits) - 1));
            if (w.shift + p->bits > cbits)
                store_or(b->data + at(b, cb, w.row2, w.col2), cb, v >> (cbits - w.shift));
        }
    }
}

/* ---------------------------------------------------------------- fast paths (4-bit) */

typedef enum { GEO_NONE, GEO_ROWS_N, GEO_COLS_N, GEO_AWQ, GEO_ROWS_X } geometry;

/* Which fast path fits: the tile's edges must fall on container boundaries inside the block. */
static geometry fast_geometry(const mp_packing *p, const mp_pblock *b, const mp_qtile *t)
{
    if (p->bits != 4 || p->fields_per_word) return GEO_NONE;
    uint64_t per = 2ull * p->container_bytes; /* codes per container */
    if (p->along_rows && p->string_is_n && !p->awq_order) {
        if (t->k0 < b->c0 * per || (t->k0 - b->c0 * per) % 2 || (t->k1 - t->k0) % 2) return GEO_NONE;
        if (t->n0 < b->r0 || t->n1 > b->r1) return GEO_NONE;
        return GEO_ROWS_N;
    }
    if (!p->along_rows && p->string_is_n && !p->awq_order && p->container_bytes == 4) {
        if (t->k0 % 8 || t->k1 % 8 || t->k0 / 8 < b->r0 || t->n0 < b->c0 || t->n1 > b->c1) return GEO_NONE;
        return GEO_COLS_N;
    }
    if (p->along_rows && !p->string_is_n && p->container_bytes == 4) {
        if (t->n0 % 8 || t->n1 % 8 || t->n0 / 8 < b->c0 || t->k0 < b->r0) return GEO_NONE;
        return p->awq_order ? GEO_AWQ : GEO_ROWS_X;
    }
    return GEO_NONE;
}

void mp_unpack(const mp_packing *p, const mp_pblock *b, mp_qtile *t, uint32_t xor_)
{
    uint64_t ld = t->k1 - t->k0, rows = t->n1 - t->n0;
    size_t cols = (size_t)(b->c1 - b->c0);
    uint8_t x8 = (uint8_t)xor_;
    switch (fast_geometry(p, b, t)) {
    case GEO_ROWS_N: {
        size_t row_bytes = cols * p->container_bytes;
        size_t first = (size_t)((t->k0 - b->c0 * 2 * p->container_bytes) / 2);
        for (uint64_t j = 0; j < rows; j++) {
            const uint8_t *src = b->data + (t->n0 - b->r0 + j) * row_bytes + first;
            uint8_t *dst = t->q + j * ld;
            for (uint64_t i = 0; i < ld / 2; i++) {
                dst[2 * i] = (uint8_t)((src[i] & 15u) ^ x8);
                dst[2 * i + 1] = (uint8_t)((src[i] >> 4) ^ x8);
            }
        }
        return;
    }
    case GEO_COLS_N: {
        /* Word rows outer: the reads are sequential, and the 8-byte writes of one word row land
         * in as many output rows as the tile has, lines that stay cached for the next 7. */
        const uint8_t *base = b->data + ((t->k0 / 8 - b->r0) * cols + (t->n0 - b->c0)) * 4;
        for (uint64_t r = 0; r < ld / 8; r++) {
            const uint8_t *src = base + r * cols * 4;
            for (uint64_t j = 0; j < rows; j++) {
                uint32_t w = mp_read_le32(src + j * 4);
                uint8_t *dst = t->q + j * ld + 8 * r;
                for (int i = 0; i < 8; i++) dst[i] = (uint8_t)(((w >> (4 * i)) & 15u) ^ x8);
            }
        }
        return;
    }
    case GEO_AWQ: {
        /* One packed column (8 rows of n) at a time, k inner: eight sequential output rows. */
        for (uint64_t c = 0; c < rows / 8; c++) {
            const uint8_t *src = b->data + ((t->k0 - b->r0) * cols + (t->n0 / 8 - b->c0 + c)) * 4;
            uint8_t *row[8];
            for (int i = 0; i < 8; i++) row[i] = t->q + (8 * c + awq_order[i]) * ld;
            for (uint64_t k = 0; k < ld; k++) {
                uint32_t w = mp_read_le32(src + k * cols * 4);
                for (int i = 0; i < 8; i++) row[i][k] = (uint8_t)(((w >> (4 * i)) & 15u) ^ x8);
            }
        }
        return;
    }
    case GEO_ROWS_X: {
        /* Word (x, c) holds q[8c .. 8c+7][x] (zero points [G, N/8]). */
        for (uint64_t x = t->k0; x < t->k1; x++) {
            const uint8_t *src = b->data + ((x - b->r0) * cols + (t->n0 / 8 - b->c0)) * 4;
            uint8_t *dst = t->q + (x - t->k0);
            for (uint64_t c = 0; c < rows / 8; c++) {
                uint32_t w = mp_read_le32(src + 4 * c);
                for (int i = 0; i < 8; i++) dst[(8 * c + (uint64_t)i) * ld] = (uint8_t)(((w >> (4 * i)) & 15u) ^ x8);
            }
        }
        return;
    }
    default:
        mp_unpack_ref(p, b, t, xor_);
    }
}

void mp_pack(const mp_packing *p, mp_pblock *b, const mp_qtile *t, uint32_t xor_)
{
    uint64_t ld = t->k1 - t->k0, rows = t->n1 - t->n0;
    size_t cols = (size_t)(b->c1 - b->c0);
    uint8_t x8 = (uint8_t)xor_;
    switch (fast_geometry(p, b, t)) {
    case GEO_ROWS_N: {
        size_t row_bytes = cols * p->container_bytes;
        size_t first = (size_t)((t->k0 - b->c0 * 2 * p->container_bytes) / 2);
        for (uint64_t j = 0; j < rows; j++) {
            uint8_t *dst = b->data + (t->n0 - b->r0 + j) * row_bytes + first;
            const uint8_t *src = t->q + j * ld;
            for (uint64_t i = 0; i < ld / 2; i++)
                dst[i] |= (uint8_t)(((src[2 * i] ^ x8) & 15u) | (((src[2 * i + 1] ^ x8) & 15u) << 4));
        }
        return;
    }
    case GEO_COLS_N: {
        for (uint64_t r = 0; r < ld / 8; r++) {
            uint8_t *dst = b->data + ((t->k0 / 8 - b->r0 + r) * cols + (t->n0 - b->c0)) * 4;
            for (uint64_t j = 0; j < rows; j++) {
                const uint8_t *src = t->q + j * ld + 8 * r;
                uint32_t w = 0;
                for (int i = 0; i < 8; i++) w |= (uint32_t)((src[i] ^ x8) & 15u) << (4 * i);
                mp_write_le32(dst + 4 * j, mp_read_le32(dst + 4 * j) | w);
            }
        }
        return;
    }
    case GEO_AWQ: {
        for (uint64_t c = 0; c < rows / 8; c++) {
            uint8_t *dst = b->data + ((t->k0 - b->r0) * cols + (t->n0 / 8 - b->c0 + c)) * 4;
            const uint8_t *row[8];
            for (int i = 0; i < 8; i++) row[i] = t->q + (8 * c + awq_order[i]) * ld;
            for (uint64_t k = 0; k < ld; k++) {
                uint32_t w = 0;
                for (int i = 0; i < 8; i++) w |= (uint32_t)((row[i][k] ^ x8) & 15u) << (4 * i);
                uint8_t *d = dst + k * cols * 4;
                mp_write_le32(d, mp_read_le32(d) | w);
            }
        }
        return;
    }
    case GEO_ROWS_X: {
        for (uint64_t x = t->k0; x < t->k1; x++) {
            uint8_t *dst = b->data + ((x - b->r0) * cols + (t->n0 / 8 - b->c0)) * 4;
            const uint8_t *src = t->q + (x - t->k0);
            for (uint64_t c = 0; c < rows / 8; c++) {
                uint32_t w = 0;
                for (int i = 0; i < 8; i++) w |= (uint32_t)((src[(8 * c + (uint64_t)i) * ld] ^ x8) & 15u) << (4 * i);
                mp_write_le32(dst + 4 * c, mp_read_le32(dst + 4 * c) | w);
            }
        }
        return;
    }
    default:
        mp_pack_ref(p, b, t, xor_);
    }
}
