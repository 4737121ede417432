/*
 * nibble.c - two 4-bit codes a byte through a 16-entry table of 16-bit outputs: the inner loop
 * of the fast dense path for table-coded formats (bitsandbytes NF4/FP4, doc/formats/bitsandbytes.md
 * §3). On x86 with SSSE3, 16 bytes at a time by byte shuffles (the table split into its low and
 * high bytes, looked up by the nibbles, interleaved back into 16-bit outputs); elsewhere, and for
 * the tail, a scalar loop that defines the result.
 */
#include "repack.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MP_NIBBLE_SSSE3 1
#endif

static void lookup_scalar(const uint8_t *b, size_t nbytes, int high_first, const uint16_t *tab, uint16_t *o)
{
    unsigned first = high_first ? 4u : 0u, second = 4u - first;
    for (size_t i = 0; i < nbytes; i++) {
        o[2 * i] = tab[(b[i] >> first) & 15u];
        o[2 * i + 1] = tab[(b[i] >> second) & 15u];
    }
}

#ifdef MP_NIBBLE_SSSE3
/* Whole 16-byte chunks; returns the bytes done. */
__attribute__((target("ssse3"))) static size_t lookup_ssse3(const uint8_t *b, size_t nbytes, int high_first,
                                                           const uint16_t *tab, uint16_t *o)
{
    uint8_t lo[16], hi[16];
    for (unsigned c = 0; c < 16; c++) {
        lo[c] = (uint8_t)(tab[c] & 0xFFu);
        hi[c] = (uint8_t)(tab[c] >> 8);
    }
    const __m128i tlo = _mm_loadu_si128((const __m128i *)(const void *)lo);
    const __m128i thi = _mm_loadu_si128((const __m128i *)(const void *)hi), m = _mm_set1_epi8(0x0F);
    size_t i = 0;
    for (; i + 16 <= nbytes; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
        __m128i h = _mm_and_si128(_mm_srli_epi16(x, 4), m), l = _mm_and_si128(x, m);
        __m128i f = high_first ? h : l, s = high_first ? l : h;
        __m128i c0 = _mm_unpacklo_epi8(f, s), c1 = _mm_unpackhi_epi8(f, s); /* codes in element order */
        __m128i l0 = _mm_shuffle_epi8(tlo, c0), h0 = _mm_shuffle_epi8(thi, c0);
        __m128i l1 = _mm_shuffle_epi8(tlo, c1), h1 = _mm_shuffle_epi8(thi, c1);
        __m128i *d = (__m128i *)(void *)(o + 2 * i);
        _mm_storeu_si128(d, _mm_unpacklo_epi8(l0, h0));
        _mm_storeu_si128(d + 1, _mm_unpackhi_epi8(l0, h0));
        _mm_storeu_si128(d + 2, _mm_unpacklo_epi8(l1, h1));
        _mm_storeu_si128(d + 3, _mm_unpackhi_epi8(l1, h1));
    }
    return i;
}
#endif

void mp_nibble_lookup16(const uint8_t *b, size_t nbytes, int high_first, const uint16_t tab[16], uint16_t *out)
{
    size_t done = 0;
#ifdef MP_NIBBLE_SSSE3
    if (__builtin_cpu_supports("ssse3")) done = lookup_ssse3(b, nbytes, high_first, tab, out);
#endif
    lookup_scalar(b + done, nbytes - done, high_first, tab, out + 2 * done);
}
