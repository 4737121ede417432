/*
 * layout.c - the packed layouts as one table of descriptors (doc/reference.md §3.1,
 * doc/formats/README.md §2, cutlass-int4.md §2, onednn-int4.md §2).
 */
#include "repack.h"

#include <assert.h>
#include <string.h>

static const unsigned awq_reverse[8] = {0, 4, 1, 5, 2, 6, 3, 7};

/* Codes and zeros packings. Bits are filled in per linear. */
#define GPTQ_CODES {4, 0, 0, 1, 0, 0}   /* down column n, field k */
#define ALONG_N_ROWS {4, 0, 1, 0, 0, 0} /* row g (or k), field n */
#define AWQ_ALONG_N {4, 4, 1, 0, 1, 0}
#define ROW_N_ALONG_K {4, 0, 1, 1, 0, 0}
#define COL_G_DOWN_N {4, 0, 0, 0, 0, 0}

static const mp_layout layouts[MP_FMT_COUNT] = {
    [MP_FMT_GPTQ] = {"gptq", GPTQ_CODES, ALONG_N_ROWS, MP_ZENC_MINUS1, 1, 0,
                     (1u << 2) | (1u << 3) | (1u << 4) | (1u << 8), 1,
                     "qweight", "qzeros", "scales", "g_idx"},
    [MP_FMT_GPTQ_V2] = {"gptq-v2", GPTQ_CODES, ALONG_N_ROWS, MP_ZENC_RAW, 1, 0,
                        (1u << 2) | (1u << 3) | (1u << 4) | (1u << 8), 1,
                        "qweight", "qzeros", "scales", "g_idx"},
    [MP_FMT_AWQ] = {"awq", AWQ_ALONG_N, AWQ_ALONG_N, MP_ZENC_RAW, 1, 0, 1u << 4, 0,
                    "qweight", "qzeros", "scales", NULL},
    [MP_FMT_CT] = {"compressed-tensors", ROW_N_ALONG_K, COL_G_DOWN_N, MP_ZENC_RAW, 0, 1, 0x1FEu, 1,
                   "weight_packed", "weight_zero_point", "weight_scale", "weight_g_idx"},
    [MP_FMT_CUTLASS_INT4] = {"cutlass-int4", {1, 4, 1, 1, 0, 0}, {0, 0, 0, 0, 0, 0},
                             MP_ZENC_IMPLIED, 0, 1, 1u << 4, 0, "qweight", NULL, "scales", NULL},
    [MP_FMT_ONEDNN_INT4] = {"onednn-int4", ROW_N_ALONG_K, ALONG_N_ROWS, MP_ZENC_RAW, 0, 0,
                            1u << 4, 0, "qweight", "qzeros", "scales", NULL},
};
_Static_assert(sizeof layouts / sizeof *layouts == MP_FMT_COUNT, "one layout per format");

const mp_layout *mp_layout_get(mp_fmt f)
{
    assert((unsigned)f < MP_FMT_COUNT);
    return &layouts[f];
}

int mp_layout_parse(const char *name, mp_fmt *out)
{
    for (int i = 0; i < MP_FMT_COUNT; i++) {
        if (strcmp(layouts[i].name, name) == 0) {
            *out = (mp_fmt)i;
            return 1;
        }
    }
    return 0;
}

void mp_layout_source(const mp_qlinear *q, mp_packing *codes, mp_packing *zeros)
{
    static const mp_packing gptq = GPTQ_CODES, along_n = ALONG_N_ROWS, awq = AWQ_ALONG_N,
                            row_n = ROW_N_ALONG_K, col_g = COL_G_DOWN_N;
    switch (q->pack) {
    case MP_QPACK_GPTQ: *codes = gptq; break;
    case MP_QPACK_AWQ_GEMM: *codes = awq; break;
    case MP_QPACK_CUTLASS: *codes = (mp_packing){1, 4, 1, 1, 0, 0}; break;
    default: *codes = row_n; break; /* CT, onednn, AWQ GEMV: row n along k */
    }
    codes->bits = q->bits;
    codes->fields_per_word = q->fields_per_word;
    memset(zeros, 0, sizeof *zeros);
    switch (q->zero) {
    case MP_QZERO_GPTQ: *zeros = along_n; break;
    case MP_QZERO_AWQ_GEMM: *zeros = awq; break;
    case MP_QZERO_AWQ_GEMV: *zeros = row_n; break;
    case MP_QZERO_CT: *zeros = col_g; zeros->fields_per_word = q->fields_per_word; break;
    default: return;
    }
    zeros->bits = q->bits;
}

uint64_t mp_packing_bit(const mp_packing *p, uint64_t f)
{
    if (p->awq_order) return (f / 8) * 32 + 4 * awq_reverse[f % 8];
    if (p->fields_per_word) return (f / p->fields_per_word) * 32 + p->bits * (f % p->fields_per_word);
    return f * p->bits;
}

static uint64_t containers_for(const mp_packing *p, uint64_t fields)
{
    uint64_t cbits = 8ull * p->container_bytes;
    if (p->awq_order) return (fields + 7) / 8;
    if (p->fields_per_word) return (fields + p->fields_per_word - 1) / p->fields_per_word;
    return (fields * p->bits + cbits - 1) / cbits;
}

void mp_packing_shape(const mp_packing *p, uint64_t n, uint64_t x, uint64_t shape[2])
{
    uint64_t strings = p->string_is_n ? n : x, fields = p->string_is_n ? x : n;
    uint64_t per = containers_for(p, fields);
    shape[0] = p->along_rows ? strings : per;
    shape[1] = p->along_rows ? per : strings;
}

mp_pblock mp_packing_block(const mp_packing *p, const uint64_t shape[2], uint64_t n0, uint64_t n1,
                           uint64_t x0, uint64_t x1)
{
    uint64_t s0 = p->string_is_n ? n0 : x0, s1 = p->string_is_n ? n1 : x1;
    uint64_t f0 = p->string_is_n ? x0 : n0, f1 = p->string_is_n ? x1 : n1;
    uint64_t cbits = 8ull * p->container_bytes, c0, c1;
    if (p->awq_order) {
        c0 = f0 / 8;
        c1 = (f1 + 7) / 8;
    } else if (p->fields_per_word) {
        c0 = f0 / p->fields_per_word;
        c1 = (f1 + p->fields_per_word - 1) / p->fields_per_word;
    } else {
        c0 = f0 * p->bits / cbits;
        c1 = (f1 * p->bits + cbits - 1) / cbits;
    }
    uint64_t along = p->along_rows ? shape[1] : shape[0];
    if (c1 > along) c1 = along;
    mp_pblock b = {NULL, 0, 0, 0, 0};
    if (p->along_rows) {
        b.r0 = s0; b.r1 = s1; b.c0 = c0; b.c1 = c1;
    } else {
        b.r0 = c0; b.r1 = c1; b.c0 = s0; b.c1 = s1;
    }
    return b;
}
