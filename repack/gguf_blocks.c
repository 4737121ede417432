/*
 * gguf_blocks.c - ggml block types packed from canonical codes, and the Q8_0 quantizer.
 *
 * A block holds 32 consecutive elements of a row (along K) and one f16 scale d
 * (doc/formats/gguf-export.md §3):
 *   Q4_0 {d; qs[16]}       x = d * (c - 8),  c in [0, 15]: byte j = c[j] | c[j + 16] << 4
 *   Q5_0 {d; qh[4]; qs[16]} x = d * (c - 16), c in [0, 31]: low nibbles as Q4_0, bit j of the
 *                          little-endian u32 qh = bit 4 of c[j]
 *   Q8_0 {d; qs[32]}       x = d * c, c an int8
 * A source code q with zero z becomes c = q - z + offset (8, 16, 0), so d * (c - offset) =
 * s * (q - z) with d = s: the same value, bit for bit, when s is an f16 value.
 *   MXFP4 {e; qs[16]}      x = kvalues_mxfp4[c] * 2^(e - 128): byte j = c[j] | c[j + 16] << 4;
 *                          from gpt-oss's block (byte i = c[2i] | c[2i + 1] << 4, scale 2^(e - 127)
 *                          on E2M1) by moving nibbles alone, e copied (doc/formats/gguf-export.md §5)
 */
#include "repack.h"

#include <math.h>
#include <string.h>

/* The lossless rules, first match wins (doc/formats/gguf-export.md §3). */
static const mp_gguf_block_rule rules[] = {
    {(1u << 2) | (1u << 3), 0, MP_GGUF_Q4_0, 8},
    {1u << 4, 1, MP_GGUF_Q4_0, 8},
    {1u << 4, 0, MP_GGUF_Q5_0, 16},
    {1u << 8, 1, MP_GGUF_Q8_0, 0},
};

const mp_gguf_block_rule *mp_gguf_block_rule_for(uint32_t bits, int zeros_mid)
{
    for (size_t i = 0; i < sizeof rules / sizeof *rules; i++)
        if (((rules[i].bits_mask >> bits) & 1u) && (!rules[i].needs_mid_zero || zeros_mid))
            return &rules[i];
    return NULL;
}

static void put_d(uint8_t *p, uint16_t d)
{
    p[0] = (uint8_t)d;
    p[1] = (uint8_t)(d >> 8);
}

void mp_gguf_pack_row(const mp_gguf_block_rule *r, const uint8_t *q, const uint16_t *z,
                      const uint16_t *d, uint64_t k_cols, uint64_t group_size, uint8_t *out)
{
    const uint32_t bsz = mp_gguf_type_size(r->type);
    for (uint64_t b = 0; b < k_cols / 32; b++) {
        uint64_t g = b * 32 / group_size;
        const uint8_t *qb = q + b * 32;
        uint8_t *o = out + b * bsz;
        int c[32];
        for (int j = 0; j < 32; j++) c[j] = (int)qb[j] - (int)z[g] + r->offset;
        put_d(o, d[g]);
        if (r->type == MP_GGUF_Q8_0) {
            for (int j = 0; j < 32; j++) o[2 + j] = (uint8_t)(int8_t)c[j];
            continue;
        }
        uint8_t *qs = o + (r->type == MP_GGUF_Q5_0 ? 6 : 2);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            qs[j] = (uint8_t)((c[j] & 15) | (c[j + 16] & 15) << 4);
            qh |= (uint32_t)((c[j] >> 4) & 1) << j;
            qh |= (uint32_t)((c[j + 16] >> 4) & 1) << (j + 16);
        }
        if (r->type == MP_GGUF_Q5_0) mp_write_le32(o + 2, qh);
    }
}

void mp_gguf_quantize_q8_0_ref(const float *x, uint64_t n, uint8_t *out)
{
    for (uint64_t b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32;
        uint8_t *o = out + b * 34;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        put_d(o, mp_f32_to_f16(d));
        for (int j = 0; j < 32; j++) o[2 + j] = (uint8_t)(int8_t)roundf(xb[j] * id);
    }
}

void mp_gguf_pack_mxfp4_row(const uint8_t *codes, const uint8_t *e8m0, uint64_t k_cols, uint8_t *out)
{
    for (uint64_t b = 0; b < k_cols / 32; b++) {
        const uint8_t *in = codes + b * 16;
        uint8_t *o = out + b * 17, c[32];
        for (int i = 0; i < 16; i++) {
            c[2 * i] = in[i] & 15;
            c[2 * i + 1] = in[i] >> 4;
        }
        o[0] = e8m0[b];
        for (int j = 0; j < 16; j++) o[1 + j] = (uint8_t)(c[j] | c[j + 16] << 4);
    }
}
