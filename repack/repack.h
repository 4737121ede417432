/*
 * repack.h - the public header of repack/: the layout transformer.
 *
 * A packed-integer layout is data, not code (doc/reference.md §3.2): an mp_packing says how b-bit fields
 * sit in a 2-D tensor of containers, and the layout's registry entry (formats.h) adds the
 * zero-point and scale conventions and the tensor names. Every conversion runs one path: a tile
 * of the source is unpacked to canonical codes q[n][k], then packed into the target. There are
 * no per-pair loops; fast paths for hot geometries are tested against the generic `_ref` path.
 *
 * Nothing here prints or exits; errors come back as mp_err.
 */
#ifndef MP_REPACK_H
#define MP_REPACK_H

#include "../formats/formats.h"

/* ---------------------------------------------------------------- packings */

/* mp_packing, the geometry of a packed tensor, is in formats.h beside the registry entries
 * that hold one per layout. */

/* Bit position of field f within its string. */
uint64_t mp_packing_bit(const mp_packing *p, uint64_t f);

/* ---------------------------------------------------------------- layouts */

/* The packing of a source linear's codes and zeros, as read by formats/: its entry's, with the
 * linear's bits. */
void mp_layout_source(const mp_qlinear *q, mp_packing *codes, mp_packing *zeros);

/* Shape [rows, cols] in containers of a packed tensor holding an n_strings x n_fields matrix
 * of logical elements (N x K codes, or N x G zeros). */
void mp_packing_shape(const mp_packing *p, uint64_t n, uint64_t x, uint64_t shape[2]);

/* ---------------------------------------------------------------- canonical tiles */

/* A block of canonical codes: q[n][k] for n in [n0, n1), k in [k0, k1), one byte each, row
 * stride ldq = k1 - k0. */
typedef struct mp_qtile {
    uint64_t n0, n1, k0, k1;
    uint8_t *q;
} mp_qtile;

/* A packed block: containers [r0, r1) x [c0, c1) of a tensor, row-major, little-endian. */
typedef struct mp_pblock {
    uint8_t *data;
    uint64_t r0, r1, c0, c1;
} mp_pblock;

/* The containers of a packed tensor that hold the elements of a tile (n-range x x-range),
 * widened to whole containers. `shape` is the tensor's shape in containers. */
mp_pblock mp_packing_block(const mp_packing *p, const uint64_t shape[2], uint64_t n0, uint64_t n1,
                           uint64_t x0, uint64_t x1);

/* Reference unpack / pack: one field at a time, for any packing. `xor` is applied to each
 * code. Pack ORs into the block, which must start zeroed. */
void mp_unpack_ref(const mp_packing *p, const mp_pblock *b, mp_qtile *t, uint32_t xor_);
void mp_pack_ref(const mp_packing *p, mp_pblock *b, const mp_qtile *t, uint32_t xor_);

/* The same through the fast paths where one applies (4-bit sequential and AWQ packings, bytes
 * and words); falls back to the reference otherwise. Bit-identical to the _ref functions. */
void mp_unpack(const mp_packing *p, const mp_pblock *b, mp_qtile *t, uint32_t xor_);
void mp_pack(const mp_packing *p, mp_pblock *b, const mp_qtile *t, uint32_t xor_);

/* ---------------------------------------------------------------- regions */

/* Repacks the elements [n0, n1) x [k0, k1) from the source block to the destination block,
 * split over OpenMP threads into sub-tiles along n (by_n) or k, each aligned so that no two
 * threads touch one destination container. Every destination container the region covers is
 * written whole (padding bits zero), so the block need not be cleared first. Pairs that differ
 * only in how whole words are laid out (GPTQ columns <-> rows of n, AWQ -> rows of n) move
 * words, not codes; the rest go through canonical codes. Scratch is per thread, bounded by one
 * sub-tile of codes. MP_E_NOMEM is the only failure. */
mp_errcode mp_repack_region(const mp_packing *sp, const mp_pblock *src, uint32_t sxor,
                            const mp_packing *dp, mp_pblock *dst, uint32_t dxor, uint64_t n0,
                            uint64_t n1, uint64_t k0, uint64_t k1, int by_n, mp_err *err);

/* ---------------------------------------------------------------- the fast dense path */

/* Rows [n0, n1) of quantized linear q as dtype dt (F32, F16 or BF16) into out, row-major
 * [n1 - n0][K]: bit for bit what verify's reference (mp_dequant_ref) gives rounded once to dt,
 * for every scheme, integer or float (repack/dense.c). Rows are split over OpenMP threads. When
 * a value overflows f16, *overflow is set and out is unusable: the caller lets the reference
 * path name the element. For AWQ GEMM, n0 must be a multiple of 8. Memory: the packed parts of
 * the rows plus at most one byte a code (4-bit codes to F16/BF16: none for rows of n along k, a
 * transposed copy of the words for GPTQ's columns, half a byte a code). */
mp_errcode mp_dense_rows(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1,
                         mp_dtype dt, void *out, int *overflow, mp_err *err);

/* n floats as dt (F32, F16, BF16), rounded to nearest even exactly as common/half.c rounds;
 * returns nonzero when a finite value overflows f16. */
uint32_t mp_dense_store(const float *v, size_t n, mp_dtype dt, void *out);

/* out[2i], out[2i + 1] = tab[the codes of byte b[i]], i < nbytes: the high nibble first when
 * high_first (bitsandbytes), else the low nibble first (repack/nibble.c). */
void mp_nibble_lookup16(const uint8_t *b, size_t nbytes, int high_first, const uint16_t tab[16], uint16_t *out);

/* ---------------------------------------------------------------- GGUF block types */

/* How canonical b-bit codes go into a ggml block type without changing a value
 * (doc/formats/gguf-export.md §3): bit widths it takes, whether every zero point must be
 * 2^(b-1) (symmetric), the ggml type, and the offset c = q - z + offset. */
typedef struct mp_gguf_block_rule {
    uint32_t bits_mask;    /* bit b set: b-bit codes */
    int needs_mid_zero;    /* 1: only when every z = 2^(b-1) */
    uint32_t type;         /* mp_gguf_type */
    int offset;
} mp_gguf_block_rule;

/* The first rule that holds b-bit codes (zeros_mid: every zero point is 2^(b-1)), or NULL. */
const mp_gguf_block_rule *mp_gguf_block_rule_for(uint32_t bits, int zeros_mid);

/* Packs one row of k_cols canonical codes q (k_cols and group_size multiples of 32) into
 * k_cols/32 blocks of r->type: z and d are the row's zero points and f16 scale bits, one per
 * group. The caller has checked that every q - z + offset fits the type. */
void mp_gguf_pack_row(const mp_gguf_block_rule *r, const uint8_t *q, const uint16_t *z,
                      const uint16_t *d, uint64_t k_cols, uint64_t group_size, uint8_t *out);

/* Quantizes n floats (n a multiple of 32) to Q8_0 exactly as ggml's quantize_row_q8_0_ref and
 * gguf-py's gguf.quants.quantize: d = amax / 127 in f32, codes roundf(x / d) (x * (1 / d)). */
void mp_gguf_quantize_q8_0_ref(const float *x, uint64_t n, uint8_t *out);

/* One row of K gpt-oss MXFP4 codes (K/2 bytes, element 2i in the low nibble of byte i) and its
 * K/32 E8M0 scale bytes as K/32 ggml block_mxfp4 (17 bytes: the scale byte, then byte j holding
 * elements j and j + 16): a pure byte move, the values equal but for code 8's sign of zero
 * (doc/formats/gguf-export.md §5). */
void mp_gguf_pack_mxfp4_row(const uint8_t *codes, const uint8_t *e8m0, uint64_t k_cols, uint8_t *out);

#endif /* MP_REPACK_H */
