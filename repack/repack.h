/*
 * repack.h - the public header of repack/: the layout transformer.
 *
 * A packed-integer layout is data, not code (doc/reference.md §3.2): an mp_packing says how b-bit fields
 * sit in a 2-D tensor of containers, and an mp_layout adds the zero-point and scale conventions
 * and the tensor names. GPTQ v1/v2, AWQ GEMM, compressed-tensors pack-quantized, cutlass-int4
 * and onednn-int4 are rows of one table (layout.c). Every conversion runs one path: a tile of the
 * source is unpacked to canonical codes q[n][k], then packed into the target. There are no
 * per-pair loops; fast paths for hot pairs are tested against the generic `_ref` path.
 *
 * Nothing here prints or exits; errors come back as mp_err.
 */
#ifndef MP_REPACK_H
#define MP_REPACK_H

#include "../formats/formats.h"

/* ---------------------------------------------------------------- packings */

/* How b-bit fields lie in a 2-D tensor of containers. A "string" is one tensor row (along_rows)
 * or one tensor column; its fields are numbered from its first container, LSB first. The
 * logical element (n, x), where x is k for codes and g for zero points, lives in string n at
 * field x (string_is_n) or in string x at field n. */
typedef struct mp_packing {
    uint32_t container_bytes;  /* 4: int32 words; 1: uint8 */
    uint32_t bits;
    int along_rows;            /* 1: a string is a tensor row; 0: a tensor column */
    int string_is_n;           /* 1: string index n, field index x; 0: the reverse */
    int awq_order;             /* within each 32-bit word, field i holds element [0,2,4,6,1,3,5,7][i] */
    uint32_t fields_per_word;  /* 0: dense bitstream (fields may straddle); else padded words */
} mp_packing;

/* Bit position of field f within its string. */
uint64_t mp_packing_bit(const mp_packing *p, uint64_t f);

/* ---------------------------------------------------------------- layouts */

typedef enum {
    MP_FMT_GPTQ,           /* qweight [K*b/32, N], qzeros [G, N*b/32] storing z-1, scales [G, N] */
    MP_FMT_GPTQ_V2,        /* the same, qzeros storing z */
    MP_FMT_AWQ,            /* AWQ GEMM: qweight [K, N/8] interleaved, qzeros [G, N/8], scales [G, N] */
    MP_FMT_CT,             /* compressed-tensors pack-quantized */
    MP_FMT_CUTLASS_INT4,   /* qweight uint8 [N, K/2], scales [N, G], zero implied 8 */
    MP_FMT_ONEDNN_INT4,    /* qweight int32 [N, K/8], scales [G, N], qzeros [G, N/8] storing z */
    MP_FMT_COUNT
} mp_fmt;

typedef enum { MP_ZENC_IMPLIED, MP_ZENC_RAW, MP_ZENC_MINUS1 } mp_zenc;

typedef struct mp_layout {
    const char *name;          /* the --to spelling */
    mp_packing codes;          /* bits filled in per linear */
    mp_packing zeros;
    mp_zenc zenc;              /* how stored zero points relate to z */
    int zeros_when_sym;        /* 1: write zeros even for a symmetric source (GPTQ, AWQ) */
    int scales_nk;             /* 1: scales [N, G]; 0: [G, N] */
    uint32_t bits_mask;        /* allowed widths: bit b set for b bits */
    int act_order_ok;          /* can store a non-trivial g_idx */
    const char *codes_name;    /* "qweight", "weight_packed" */
    const char *zeros_name;
    const char *scales_name;
    const char *g_idx_name;    /* NULL: the layout has no g_idx */
} mp_layout;

const mp_layout *mp_layout_get(mp_fmt f);
/* Looks up a --to name; 0 when unknown. */
int mp_layout_parse(const char *name, mp_fmt *out);

/* The packing of a source linear's codes and zeros, as read by formats/. */
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

#endif /* MP_REPACK_H */
