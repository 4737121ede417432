/*
 * layout.c - the geometry of packed tensors: where field f of a string lies, how many containers
 * a matrix takes, and which containers hold a tile. The layouts themselves are registry entries
 * (formats.h, formats/scheme_*.c); this file only does their arithmetic.
 */
#include "repack.h"

#include <string.h>

static const unsigned awq_reverse[8] = {0, 4, 1, 5, 2, 6, 3, 7};

void mp_layout_source(const mp_qlinear *q, mp_packing *codes, mp_packing *zeros)
{
    *codes = q->scheme->codes;
    codes->bits = q->bits;
    codes->fields_per_word = q->fields_per_word;
    memset(zeros, 0, sizeof *zeros);
    if (q->zero == MP_QZERO_IMPLIED) return;
    *zeros = q->scheme->zeros;
    zeros->bits = q->bits;
    zeros->fields_per_word = q->fields_per_word; /* padded zero points beside padded codes (CT) */
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
