/*
 * dequant_ref.c - the CPU dequantization reference: any quantized linear, any row range, to f32.
 *
 * Every layout is decoded with its own scalar formula from doc/formats/gptq.md §2 (GPTQ
 * bitstream down a column), awq.md §1 (AWQ GEMM interleave, reverse order [0,4,1,5,2,6,3,7]),
 * awq.md §2 (AWQ GEMV, sequential along k), compressed-tensors.md §2 (bitstream along k; zero
 * points packed along n) and doc/formats/README.md §3. Clarity over speed: this is the ground
 * truth the fast paths are held to, so each code is extracted independently from its word(s).
 */
#include "verify.h"

#pragma GCC optimize("O3") /* a hot loop of verify --full (doc/verify-speed.md) */

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static const unsigned awq_reverse[8] = {0, 4, 1, 5, 2, 6, 3, 7};

/* The b bits at position `bit` of a little-endian bit string of 32-bit words, LSB first;
 * `stride` is the distance in words between consecutive words of the string (a column of a
 * row-major block). */
static inline uint32_t bits_at(const uint32_t *w, size_t stride, uint64_t bit, uint32_t b)
{
    uint64_t word = bit / 32;
    uint32_t shift = (uint32_t)(bit % 32);
    uint64_t v = w[word * stride] >> shift;
    if (shift + b > 32) v |= (uint64_t)w[(word + 1) * stride] << (32 - shift);
    return (uint32_t)(v & ((1u << b) - 1u));
}

/* Code i where each word holds `per` codes at shifts b * (i % per) (the padded layout). */
static inline uint32_t padded_get(const uint32_t *w, size_t stride, uint64_t i, uint32_t b, uint32_t per)
{
    return (w[(i / per) * stride] >> (b * (i % per))) & ((1u << b) - 1u);
}


/* Words as read are little-endian on disk; make them host words once. */
static void words_from_le(uint32_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++) w[i] = mp_read_le32(&w[i]);
}

static uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* The block of each part a tile of rows needs, as [rows, cols] of its tensor. */
typedef struct block {
    uint64_t r0, r1, c0, c1;
} block;

static block code_block(const mp_qlinear *q, uint64_t n0, uint64_t n1)
{
    const mp_tensor *w = q->qweight;
    switch (q->pack) {
    case MP_QPACK_KSTREAM_COLS: return (block){0, w->shape[0], n0, n1};
    case MP_QPACK_N8_INTERLEAVED: return (block){0, w->shape[0], n0 / 8, ceil_div(n1, 8)};
    default: return (block){n0, n1, 0, w->shape[1]}; /* row-major [N, ...] layouts */
    }
}

static block zero_block(const mp_qlinear *q, uint64_t n0, uint64_t n1)
{
    const mp_tensor *z = q->qzeros;
    uint32_t per = q->fields_per_word;
    switch (q->zero) {
    case MP_QZERO_GPTQ: return (block){0, z->shape[0], n0 * q->bits / 32, ceil_div(n1 * q->bits, 32)};
    case MP_QZERO_AWQ_GEMM: return (block){0, z->shape[0], n0 / 8, ceil_div(n1, 8)};
    case MP_QZERO_AWQ_GEMV: return (block){n0, n1, 0, z->shape[1]};
    case MP_QZERO_CT:
        return per ? (block){n0 / per, ceil_div(n1, per), 0, z->shape[1]}
                   : (block){n0 * q->bits / 32, ceil_div(n1 * q->bits, 32), 0, z->shape[1]};
    default: return (block){0, 0, 0, 0};
    }
}

static block scale_block(const mp_qlinear *q, uint64_t n0, uint64_t n1)
{
    return q->scales_nk ? (block){n0, n1, 0, q->scales->shape[1]}
                        : (block){0, q->scales->shape[0], n0, n1};
}

static uint64_t block_bytes(block b, const mp_tensor *t)
{
    return t ? (b.r1 - b.r0) * (b.c1 - b.c0) * (mp_dtype_bits(t->dtype) / 8) : 0;
}

uint64_t mp_dequant_ref_scratch(const mp_qlinear *q, uint64_t rows)
{
    if (q->scheme && q->scheme->elem != MP_ELEM_INT) /* a linear made by hand may have no entry */
        return (rows < q->n_rows ? rows : q->n_rows) * q->k_cols + q->scales->n_bytes;
    uint64_t n1 = rows < q->n_rows ? rows + 8 : q->n_rows; /* worst-case alignment slack */
    return block_bytes(code_block(q, 0, n1), q->qweight) +
           (q->zero == MP_QZERO_IMPLIED ? 0 : block_bytes(zero_block(q, 0, n1), q->qzeros)) +
           block_bytes(scale_block(q, 0, n1), q->scales) + (q->g_idx ? q->k_cols * 4 : 0);
}

static mp_errcode read_block(const mp_st_model *m, const mp_tensor *t, block b, void **out,
                             mp_err *err)
{
    uint64_t bytes = block_bytes(b, t);
    *out = malloc(bytes ? (size_t)bytes : 1);
    if (!*out) return mp_errf(err, MP_E_NOMEM, "out of memory reading '%s'", t->name);
    return mp_st_gather_block(m, t, b.r0, b.r1, b.c0, b.c1, *out, err); /* a sampled row's column: no read per word */
}

/* The stored zero of (row n, group g), before the scheme's offset. */
static uint32_t zero_at(const mp_qlinear *q, const uint32_t *zw, block zb, uint64_t n, uint64_t g)
{
    uint32_t b = q->bits;
    size_t cols = (size_t)(zb.c1 - zb.c0);
    switch (q->zero) {
    case MP_QZERO_GPTQ:
        return bits_at(zw + g * cols, 1, n * b - zb.c0 * 32, b);
    case MP_QZERO_AWQ_GEMM:
        return (zw[g * cols + (n / 8 - zb.c0)] >> (4 * awq_reverse[n % 8])) & 15u;
    case MP_QZERO_AWQ_GEMV:
        return (zw[(n - zb.r0) * cols + g / 8] >> (4 * (g % 8))) & 15u;
    case MP_QZERO_CT: {
        uint32_t per = q->fields_per_word;
        if (per) return padded_get(zw + g, cols, n - zb.r0 * per, b, per);
        return bits_at(zw + g, cols, n * b - zb.r0 * 32, b);
    }
    default:
        return 1u << (b - 1);
    }
}

/* Row n's codes, k = 0..K-1. One switch per row, not per element. */
static inline __attribute__((always_inline)) void decode_row(const mp_qlinear *q, const uint32_t *w, block cb, uint64_t n, int32_t *codes)
{
    size_t cols = (size_t)(cb.c1 - cb.c0);
    uint64_t K = q->k_cols;
    uint32_t b = q->bits;
    switch (q->pack) {
    case MP_QPACK_KSTREAM_COLS:
        if (32 % b == 0) { /* no code straddles two words: the same bits, a word at a time */
            const uint32_t *col = w + (n - cb.c0), per = 32 / b, mask = (1u << b) - 1u;
            uint64_t whole = K / per * per;
            for (uint64_t k = 0; b == 4 && k < whole; k += 8) { /* the common width, unrolled */
                uint32_t v = col[(k / 8) * cols];
                for (uint32_t f = 0; f < 8; f++) codes[k + f] = (int32_t)((v >> (f * 4)) & 15u);
            }
            for (uint64_t k = 0; b != 4 && k < whole; k += per) {
                uint32_t v = col[(k / per) * cols];
                for (uint32_t f = 0; f < per; f++) codes[k + f] = (int32_t)((v >> (f * b)) & mask);
            }
            for (uint64_t k = whole; k < K; k++) codes[k] = (int32_t)bits_at(col, cols, k * b, b);
        } else {
            for (uint64_t k = 0; k < K; k++) codes[k] = (int32_t)bits_at(w + (n - cb.c0), cols, k * b, b);
        }
        break;
    case MP_QPACK_N8_INTERLEAVED: {
        const uint32_t *col = w + (n / 8 - cb.c0);
        uint32_t shift = 4 * awq_reverse[n % 8];
        for (uint64_t k = 0; k < K; k++) codes[k] = (int32_t)((col[k * cols] >> shift) & 15u);
        break;
    }
    case MP_QPACK_K8_WORDS: {
        const uint32_t *row = w + (n - cb.r0) * cols;
        uint64_t k = 0;
        for (; k + 8 <= K; k += 8) /* a word at a time: code k + f at bits 4f */
            for (uint32_t f = 0; f < 8; f++) codes[k + f] = (int32_t)((row[k / 8] >> (4 * f)) & 15u);
        for (; k < K; k++) codes[k] = (int32_t)((row[k / 8] >> (4 * (k % 8))) & 15u);
        break;
    }
    case MP_QPACK_K2_BYTES: {
        const uint8_t *row = (const uint8_t *)w + (n - cb.r0) * cols;
        uint64_t k = 0;
        for (; k + 2 <= K; k += 2) /* a byte at a time: the low nibble first */
            codes[k] = (int32_t)((unsigned)row[k / 2] & 15u), codes[k + 1] = (int32_t)((unsigned)row[k / 2] >> 4);
        if (k < K) codes[k] = (int32_t)((unsigned)row[k / 2] & 15u);
        break;
    }
    default: {
        const uint32_t *row = w + (n - cb.r0) * cols;
        if (q->fields_per_word)
            for (uint64_t k = 0; k < K; k++) codes[k] = (int32_t)padded_get(row, 1, k, b, q->fields_per_word);
        else
            for (uint64_t k = 0; k < K; k++) codes[k] = (int32_t)bits_at(row, 1, k * b, b);
    }
    }
}

/* row[k] = (float)((codes[k] ^ x) - z) * s with the zero and scale of column k's group, one run
 * of columns of one group at a time (columns runs[i] .. runs[i + 1] - 1 of group rg[i], nruns
 * of them): a loop the compiler vectorizes. */
static inline __attribute__((always_inline)) void scale_row(const int32_t *codes, int32_t x, const int32_t *zrow,
                                                            const float *srow, const uint32_t *rg,
                                                            const uint32_t *runs, uint64_t nruns, float *row)
{
    for (uint64_t i = 0; i < nruns; i++) {
        uint64_t k0 = runs[i], k1 = runs[i + 1];
        int32_t z = zrow[rg[i]];
        float s = srow[rg[i]];
        for (uint64_t k = k0; k < k1; k++) row[k] = (float)((codes[k] ^ x) - z) * s;
    }
}

/* Where the 4-bit codes k .. k + 7 of row n lie in one 32-bit word, code k + f at bits 4f:
 * word k / 8 of a run `stride` words apart from `base` (bytes: little-endian, read as they lie),
 * or NULL when the layout has no such word (AWQ GEMM's words hold 8 rows; other widths). */
static const uint32_t *word8_base(const mp_qlinear *q, const uint32_t *w, block cb, uint64_t n, size_t *stride)
{
    size_t cols = (size_t)(cb.c1 - cb.c0);
    if (q->bits != 4 || q->k_cols % 8) return NULL;
    switch (q->pack) {
    case MP_QPACK_KSTREAM_COLS: *stride = cols; return w + (n - cb.c0); /* bitstream down a column */
    case MP_QPACK_N8_INTERLEAVED: return NULL;
    case MP_QPACK_K2_BYTES: *stride = 0; return (const uint32_t *)((const uint8_t *)w + (n - cb.r0) * cols);
    case MP_QPACK_K8_WORDS: *stride = 1; return w + (n - cb.r0) * cols;
    default: /* a bitstream along k, or 8 fields per word: the same bits for b = 4 */
        if (q->fields_per_word != 0 && q->fields_per_word != 8) return NULL;
        *stride = 1;
        return w + (n - cb.r0) * cols;
    }
}

typedef uint32_t v8u __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef float v8f __attribute__((vector_size(32)));

/* Row n decoded and scaled, built for AVX-512 and AVX2 as well as the baseline: the word
 * decode's shifts by 4f and the scaling vectorize there. A 4-bit layout whose words hold 8
 * consecutive k of a row, with runs of one group that start at multiples of 8, is decoded and
 * scaled in one pass, 8 values at a time: each value is still (float)((q ^ x) - z) * s, one
 * conversion of a small integer (exact) and one f32 product, the very expression of scale_row. */
#ifdef MP_NO_TARGET_CLONES
#define REF_CLONES
#else
#define REF_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static REF_CLONES void ref_row(const mp_qlinear *q, const uint32_t *w, block cb, uint64_t n, int32_t *codes,
                               const int32_t *zrow, const float *srow, const uint32_t *rg, const uint32_t *runs,
                               uint64_t nruns, int plain, float *row)
{
    size_t stride = 0;
    const uint32_t *base = plain ? NULL : word8_base(q, w, cb, n, &stride);
    for (uint64_t i = 0; base && i < nruns; i++)
        if (runs[i] % 8) base = NULL;
    if (!base) {
        decode_row(q, w, cb, n, codes);
        scale_row(codes, (int32_t)q->code_xor, zrow, srow, rg, runs, nruns, row);
        return;
    }
    const v8u shifts = {0, 4, 8, 12, 16, 20, 24, 28};
    const uint32_t x = q->code_xor;
    for (uint64_t i = 0; i < nruns; i++) {
        uint64_t k0 = runs[i], k1 = runs[i + 1];
        int32_t z = zrow[rg[i]];
        float s = srow[rg[i]];
        for (uint64_t k = k0; k < k1; k += 8) {
            uint32_t v = stride ? base[(k / 8) * stride] : mp_read_le32((const uint8_t *)base + k / 2);
            v8u c = (((v8u){0} + v) >> shifts & 15u) ^ x;
            v8f f = __builtin_convertvector((v8i)c - z, v8f) * s;
            memcpy(row + k, &f, sizeof f);
        }
    }
}

/* The reference of each element kind but packed integers (below). */
typedef mp_errcode (*ref_fn)(const mp_st_model *, const mp_qlinear *, uint64_t, uint64_t, float *, mp_err *);
static const ref_fn ref_of_elem[MP_ELEM_COUNT] = {
    [MP_ELEM_FLOAT8] = mp_dequant_ref_float,
    [MP_ELEM_FP4] = mp_dequant_ref_fp4,
    [MP_ELEM_LUT4] = mp_dequant_ref_lut4,
    [MP_ELEM_INT8_ABSMAX] = mp_dequant_ref_int8_absmax,
};

struct mp_ref_groups {
    uint32_t *rg, *runs; /* runs[i] .. runs[i + 1] - 1 are columns of group rg[i] */
    uint64_t nruns;
    int plain; /* mp_ref_groups_plain */
};

void mp_ref_groups_plain(mp_ref_groups *g)
{
    if (g) g->plain = 1;
}

void mp_ref_groups_free(mp_ref_groups *g)
{
    if (!g) return;
    free(g->rg);
    free(g->runs);
    free(g);
}

mp_errcode mp_ref_groups_read(const mp_st_model *m, const mp_qlinear *q, mp_ref_groups **out, mp_err *err)
{
    *out = NULL;
    if (q->scheme && q->scheme->elem != MP_ELEM_INT) return MP_OK;
    uint64_t K = q->k_cols;
    mp_ref_groups *g = calloc(1, sizeof *g);
    int32_t *gidx = q->g_idx ? malloc((size_t)K * 4) : NULL;
    mp_errcode rc = g && (gidx || !q->g_idx) ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK && g && !((g->rg = malloc((size_t)K * sizeof *g->rg)) && (g->runs = malloc((size_t)(K + 1) * 4))))
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK && gidx) rc = mp_st_read(m, q->g_idx, 0, gidx, (size_t)K * 4, err);
    for (uint64_t k = 0; rc == MP_OK && gidx && k < K; k++) {
        gidx[k] = (int32_t)mp_read_le32(&gidx[k]);
        if (k == 0 || gidx[k] != gidx[k - 1]) g->rg[g->nruns] = (uint32_t)gidx[k], g->runs[g->nruns++] = (uint32_t)k;
    }
    for (uint64_t k = 0; rc == MP_OK && !gidx && k < K; k += q->group_size)
        g->rg[g->nruns] = (uint32_t)g->nruns, g->runs[g->nruns++] = (uint32_t)k;
    if (rc == MP_OK) g->runs[g->nruns] = (uint32_t)K;
    free(gidx);
    if (rc != MP_OK) mp_ref_groups_free(g);
    else *out = g;
    return rc;
}

mp_errcode mp_dequant_ref(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1, float *out,
                          mp_err *err)
{
    if ((q->scheme && q->scheme->elem != MP_ELEM_INT) || n0 == n1) return mp_dequant_ref_with(m, q, NULL, n0, n1, out, err);
    mp_ref_groups *g = NULL;
    mp_errcode rc = mp_ref_groups_read(m, q, &g, err);
    if (rc == MP_OK) rc = mp_dequant_ref_with(m, q, g, n0, n1, out, err);
    mp_ref_groups_free(g);
    return rc;
}

/* Rows [n0, n1) of the blocks wbuf, zbuf, sbuf (cb, zb, sb) into out, over the threads. */
static mp_errcode ref_rows_of(const mp_qlinear *q, const mp_ref_groups *grp, const uint32_t *wbuf, block cb,
                              const uint32_t *zbuf, block zb, const uint8_t *sb8, block sb, uint64_t n0, uint64_t n1,
                              float *out, mp_err *err)
{
    size_t es = mp_dtype_bits(q->scales->dtype) / 8, scols = (size_t)(sb.c1 - sb.c0);
    const uint64_t K = q->k_cols, G = q->n_groups;
    const int64_t offset = q->zero == MP_QZERO_IMPLIED ? 0 : (int64_t)q->zero_offset;
    long long rows = (long long)(n1 - n0);
    int nomem = 0;
#pragma omp parallel if (rows >= 2 && (uint64_t)rows * K >= (1u << 16)) reduction(| : nomem)
    {
        int32_t *codes = malloc((size_t)K * sizeof *codes);
        int32_t *zrow = malloc((size_t)G * sizeof *zrow);
        float *srow = malloc((size_t)G * sizeof *srow);
        nomem = !codes || !zrow || !srow;
#pragma omp for schedule(static)
        for (long long j = 0; j < rows; j++) {
            if (nomem) continue;
            uint64_t n = n0 + (uint64_t)j;
            for (uint64_t g = 0; g < G; g++) {
                uint64_t si = q->scales_nk ? (uint64_t)j * scols + g : g * scols + (uint64_t)j;
                srow[g] = mp_dtype_load_f32(sb8 + si * es, q->scales->dtype);
                zrow[g] = (int32_t)((int64_t)zero_at(q, zbuf, zb, n, g) + offset);
            }
            ref_row(q, wbuf, cb, n, codes, zrow, srow, grp->rg, grp->runs, grp->nruns, grp->plain,
                    out + (uint64_t)j * K);
        }
        free(codes);
        free(zrow);
        free(srow);
    }
    return nomem ? mp_errf(err, MP_E_NOMEM, "out of memory") : MP_OK;
}

mp_errcode mp_dequant_ref_with(const mp_st_model *m, const mp_qlinear *q, const mp_ref_groups *g, uint64_t n0,
                               uint64_t n1, float *out, mp_err *err)
{
    if (q->scheme && q->scheme->elem != MP_ELEM_INT) return ref_of_elem[q->scheme->elem](m, q, n0, n1, out, err);
    assert(n0 <= n1 && n1 <= q->n_rows);
    assert(q->pack != MP_QPACK_N8_INTERLEAVED || n0 % 8 == 0);
    if (n0 == n1) return MP_OK;
    if (!g) return mp_dequant_ref(m, q, n0, n1, out, err);
    void *wbuf = NULL, *zbuf = NULL, *sbuf = NULL;
    block cb = code_block(q, n0, n1), zb = zero_block(q, n0, n1), sb = scale_block(q, n0, n1);
    mp_errcode rc = read_block(m, q->qweight, cb, &wbuf, err);
    if (rc == MP_OK && q->zero != MP_QZERO_IMPLIED) rc = read_block(m, q->qzeros, zb, &zbuf, err);
    if (rc == MP_OK) rc = read_block(m, q->scales, sb, &sbuf, err);
    if (rc == MP_OK) {
        if (q->pack != MP_QPACK_K2_BYTES) words_from_le(wbuf, (size_t)((cb.r1 - cb.r0) * (cb.c1 - cb.c0)));
        if (zbuf) words_from_le(zbuf, (size_t)((zb.r1 - zb.r0) * (zb.c1 - zb.c0)));
        rc = ref_rows_of(q, g, wbuf, cb, zbuf, zb, sbuf, sb, n0, n1, out, err);
    }
    free(wbuf);
    free(zbuf);
    free(sbuf);
    return rc;
}
