/*
 * half.c - binary16 and bfloat16 conversions, bit-exact and round-to-nearest-even.
 */
#include "mp_common.h"

#include <string.h>

float mp_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    if (exp == 0x1F) return mp_bits_f32(sign | 0x7F800000u | (man << 13));
    if (exp == 0) {
        if (man == 0) return mp_bits_f32(sign);
        /* Subnormal: value = man * 2^-24, exact in f32. */
        float v = (float)man * mp_bits_f32(0x33800000u);
        return sign ? -v : v;
    }
    return mp_bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t mp_f32_to_f16(float f)
{
    uint32_t u = mp_f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t abs = u & 0x7FFFFFFFu;
    if (abs > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));
    if (abs >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* rounds past 65504 */
    if (abs < 0x38800000u) {
        /* Result is subnormal or zero: scale to units of 2^-24 and round to nearest even. */
        if (abs < 0x33000000u) return sign; /* below half the smallest subnormal */
        uint32_t exp = abs >> 23;
        uint32_t man = (abs & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126u - exp; /* 14..24 */
        uint32_t q = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = abs - 0x38000000u; /* rebias exponent 127 -> 15, keep all mantissa bits */
    uint32_t q = r >> 13;
    uint32_t rem = r & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

int mp_f16_overflows(float f)
{
    uint32_t abs = mp_f32_bits(f) & 0x7FFFFFFFu;
    return abs < 0x7F800000u && abs >= 0x477FF000u;
}

uint16_t mp_f32_to_bf16(float f)
{
    uint32_t u = mp_f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float mp_bf16_to_f32(uint16_t h) { return mp_bits_f32((uint32_t)h << 16); }

/* E4M3FN (doc/formats/fp8.md §elements): bias 7, subnormals m * 2^-9, no infinity, NaN only
 * for S.1111.111. Exponent 1111 is an ordinary binade (256..448). */
float mp_e4m3_to_f32(uint8_t b)
{
    uint32_t sign = (uint32_t)(b & 0x80u) << 24;
    uint32_t exp = (b >> 3) & 0xFu, man = b & 7u;
    if (exp == 0xF && man == 7) return mp_bits_f32(sign | 0x7FC00000u);
    if (exp == 0) {
        float v = (float)man * mp_bits_f32(0x3B000000u); /* man * 2^-9, exact */
        return sign ? -v : v;
    }
    return mp_bits_f32(sign | ((exp + 120u) << 23) | (man << 20));
}

/* E5M2: IEEE-style, bias 15, subnormals m * 2^-16, infinity S.11111.00, NaN S.11111.xx (made
 * the quiet NaN of its sign, as ml_dtypes and torch do). It is the upper byte of a binary16. */
float mp_e5m2_to_f32(uint8_t b)
{
    if ((b & 0x7Cu) == 0x7Cu && (b & 3u)) return mp_bits_f32((uint32_t)(b & 0x80u) << 24 | 0x7FC00000u);
    return mp_f16_to_f32((uint16_t)(b << 8));
}

/* E2M1 (doc/formats/fp4.md §1): s ee m, bias 1, code 1 the subnormal 0.5. Code 8 is -0.0. */
float mp_e2m1_to_f32(uint8_t code)
{
    static const float mag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    float v = mag[code & 7u];
    return code & 8u ? -v : v;
}

/* E8M0 (doc/formats/fp4.md §1): a biased exponent alone, 2^(e-127); 0 is 2^-127 (an f32
 * subnormal), 0xFF the only NaN. */
float mp_e8m0_to_f32(uint8_t e)
{
    if (e == 0xFF) return mp_bits_f32(0x7FC00000u);
    if (e == 0) return mp_bits_f32(0x00400000u);
    return mp_bits_f32((uint32_t)e << 23);
}
