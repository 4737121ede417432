/*
 * region.c - a region of a linear, repacked in parallel: the unit of work the pipeline and the
 * benchmarks hand to repack/.
 */
#include "repack.h"

#include <stdlib.h>

/* Sub-tile sizes: 64 rows of n (whole AWQ words, whole bytes), or 256 codes of k (whole words
 * for every bit width: 32 codes of b bits are b words). */
#define SUB_N 64
#define SUB_K 256

mp_errcode mp_repack_region(const mp_packing *sp, const mp_pblock *src, uint32_t sxor,
                            const mp_packing *dp, mp_pblock *dst, uint32_t dxor, uint64_t n0,
                            uint64_t n1, uint64_t k0, uint64_t k1, int by_n, mp_err *err)
{
    uint64_t len = by_n ? n1 - n0 : k1 - k0, sub = by_n ? SUB_N : SUB_K;
    long long parts = (long long)((len + sub - 1) / sub);
    uint64_t other = by_n ? k1 - k0 : n1 - n0;
    int nomem = 0;
#pragma omp parallel reduction(| : nomem)
    {
        uint8_t *q = malloc((size_t)(sub * other) + 1);
        nomem = q == NULL;
#pragma omp for schedule(static)
        for (long long i = 0; i < parts; i++) {
            if (!q) continue;
            uint64_t a = (by_n ? n0 : k0) + (uint64_t)i * sub, end = by_n ? n1 : k1;
            uint64_t b = a + sub < end ? a + sub : end;
            mp_qtile t = by_n ? (mp_qtile){a, b, k0, k1, q} : (mp_qtile){n0, n1, a, b, q};
            mp_unpack(sp, src, &t, sxor);
            mp_pack(dp, dst, &t, dxor);
        }
        free(q);
    }
    if (nomem) return mp_errf(err, MP_E_NOMEM, "out of memory for repack tiles");
    return MP_OK;
}
