/*
 * dense.c - the fast dense path: rows of a quantized linear straight to F32, F16 or BF16 bytes,
 * for `convert --to f32|f16|bf16`. The CPU reference in verify/ (mp_dequant_ref, then one
 * rounding) defines every bit; this path computes the same formulas, in the same order, only
 * faster, and tests/unit/test_dense.c holds it to the reference bit for bit on every scheme.
 *
 * - Packed integers of at most 4 bits to F16 or BF16: a group has at most 16 outputs, so each
 *   row's groups get a 16-entry table of the reference's own product (float)(q - z) * s rounded
 *   once to the output (code_xor folded into the index), and the row is a table look-up of its
 *   nibble stream by byte shuffles (repack/nibble.c). The stream is the packed row itself for
 *   rows of n along k (compressed-tensors), GPTQ's [K/8, N] word columns once transposed, and
 *   otherwise (AWQ, 2 and 3 bits) the unpacked codes packed two a byte. Act-order rows look each
 *   element up in its own group's table. An f16 overflow is flagged only for a table entry that
 *   a code of the group uses.
 * - Wider codes, and F32 output: the codes unpacked by repack's fast unpackers (tile.c), then
 *   w = (float)(q - z) * s per group segment, a loop the vectorizer turns into int->float, sub,
 *   mul and the output rounding.
 * - FP8 with large scale tiles (a DeepSeek 128 x 128 block, a channel of K >= 4096): the 256
 *   possible outputs of a tile are computed once, with the reference's own formula, and the
 *   tile is a table lookup. Small tiles (groups) decode the codes by their bits in a vectorized
 *   loop (checked against the 256-entry table, which it falls back to) and multiply.
 * - FP4 (NVFP4, MXFP4): each row's codes through a 16-entry table, then each block of 16 or 32
 *   times its effective scale (block scale with the per-tensor one applied, once per block).
 * Rows are split over OpenMP threads. The loops are also compiled for AVX2 and AVX-512 and
 * picked at load time, as formats/gguf_dequant.c does; f16 rounding uses F16C where the CPU has
 * it (bit for bit the branch-free code, which the baseline build keeps).
 */
#include "repack.h"

#include <stdlib.h>
#include <string.h>

#pragma GCC optimize("O3")
#ifdef MP_NO_TARGET_CLONES
#define CLONES
#else
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default"))) /* feature names: "arch=" clones test the CPU model, and pick default on AMD */
#endif

/* f32 to bf16, round to nearest even, NaN quieted (common/half.c mp_f32_to_bf16, branch-free). */
static inline uint16_t to_bf16(float f)
{
    uint32_t u = mp_f32_bits(f);
    uint32_t nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
    uint32_t r = nan ? (u >> 16) | 0x40u : (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)r;
}

/* f32 to f16, round to nearest even, bit-identical to common/half.c mp_f32_to_f16 but without
 * branches, so that it vectorizes: normal results by integer rounding, subnormal ones by adding
 * 0.5 (the FPU's own round to nearest even aligns the bits), overflow to infinity, NaN quieted
 * with its top payload bits. */
static inline uint16_t to_f16(float f)
{
    uint32_t u = mp_f32_bits(f), a = u & 0x7FFFFFFFu, sign = (u >> 16) & 0x8000u;
    uint32_t normal = (a + 0xC8000FFFu + ((a >> 13) & 1u)) >> 13;
    uint32_t sub = mp_f32_bits(mp_bits_f32(a) + 0.5f) - 0x3F000000u;
    uint32_t is_big = 0u - (uint32_t)(a >= 0x47800000u), is_sub = 0u - (uint32_t)(a < 0x38800000u);
    uint32_t is_nan = 0u - (uint32_t)(a > 0x7F800000u);
    uint32_t big = 0x7C00u | (is_nan & (0x200u | ((a >> 13) & 0x3FFu)));
    uint32_t r = (big & is_big) | (sub & is_sub) | (normal & ~(is_sub | is_big));
    return (uint16_t)(sign | r);
}

#if !defined(MP_NO_TARGET_CLONES) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
#include <immintrin.h>

/* The CPU has F16C and the OS keeps the AVX registers: CPUID leaf 1 once (clang's
 * __builtin_cpu_supports knows no "f16c"), the answer kept; 1 yes, 2 no. */
static int have_f16c(void)
{
    static int state;
    int s = __atomic_load_n(&state, __ATOMIC_RELAXED);
    if (!s) {
        unsigned a, b, c = 0, d;
        s = __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) ? 1 : 2;
        __atomic_store_n(&state, s, __ATOMIC_RELAXED);
    }
    return s == 1;
}

/* Whole runs of 8 floats to f16 by the F16C instruction, round to nearest even: bit for bit what
 * to_f16 gives for every one of the 2^32 inputs (NaN quieted with its top payload bits, the
 * subnormals rounded; checked exhaustively when this was written, and test_dense's sweep checks
 * mp_dense_store). Returns how many it did. */
__attribute__((target("avx,f16c"))) static size_t f16c_run(const float *v, size_t n, uint16_t *o)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(o + i), _mm256_cvtps_ph(_mm256_loadu_ps(v + i), _MM_FROUND_TO_NEAREST_INT));
    return i;
}
#define F16C_RUN(v, n, o) (have_f16c() ? f16c_run(v, n, o) : 0)
#else
#define F16C_RUN(v, n, o) 0
#endif

/* n floats to f16 bits: by F16C where the CPU has it, else (and for the tail) to_f16. */
CLONES static void to_f16_n(const float *v, size_t n, uint16_t *o)
{
    for (size_t i = F16C_RUN(v, n, o); i < n; i++) o[i] = to_f16(v[i]);
}

/* 1 when a finite f rounds past the largest f16 (common/half.c mp_f16_overflows). */
static inline uint32_t f16_overflow(float f)
{
    uint32_t a = mp_f32_bits(f) & 0x7FFFFFFFu;
    return a >= 0x477FF000u && a < 0x7F800000u;
}

CLONES uint32_t mp_dense_store(const float *v, size_t n, mp_dtype dt, void *outv)
{
    uint8_t *out = outv;
    uint32_t over = 0;
    if (dt == MP_DTYPE_F32) {
        memcpy(out, v, n * 4);
    } else if (dt == MP_DTYPE_BF16) {
        uint16_t *o = (uint16_t *)(void *)out;
        for (size_t i = 0; i < n; i++) o[i] = to_bf16(v[i]);
    } else {
        uint16_t *o = (uint16_t *)(void *)out;
        for (size_t i = 0; i < n; i++) over |= f16_overflow(v[i]);
        to_f16_n(v, n, o);
    }
    return over;
}

/* ------------------------------------------------------------ packed integers */

/* One row: w[k] = (float)(q[k] - z[g]) * s[g], as verify/dequant_ref.c computes it (the f32 output
 * and codes wider than 4 bits). */
CLONES static void int_row(const uint8_t *codes, const int32_t *z, const float *s, uint64_t K,
                           uint64_t gsize, const uint32_t *gk, float *out)
{
    if (gk) {
        for (uint64_t k = 0; k < K; k++) out[k] = (float)((int32_t)codes[k] - z[gk[k]]) * s[gk[k]];
        return;
    }
    for (uint64_t k0 = 0, g = 0; k0 < K; k0 += gsize, g++) {
        uint64_t k1 = k0 + gsize < K ? k0 + gsize : K;
        int32_t zg = z[g];
        float sg = s[g];
        for (uint64_t k = k0; k < k1; k++) out[k] = (float)((int32_t)codes[k] - zg) * sg;
    }
}

/* Rows [0, rows) of K values: row(ctx, j, scratch, dt, out) writes row j as dt at out and returns
 * nonzero when an f16 value overflowed; over OpenMP threads, each with its own scratch of
 * scratch_bytes. */
typedef uint32_t (*row_fn)(const void *ctx, uint64_t j, void *scratch, mp_dtype dt, uint8_t *out);

static mp_errcode store_rows(uint64_t rows, uint64_t K, size_t scratch_bytes, mp_dtype dt, uint8_t *out,
                             row_fn fn, const void *ctx, int *overflow, mp_err *err)
{
    size_t oes = mp_dtype_bits(dt) / 8;
    uint32_t over = 0;
    int nomem = 0;
#pragma omp parallel if (rows * K >= (1u << 18)) reduction(| : over, nomem)
    {
        void *scratch = malloc(scratch_bytes);
        nomem = !scratch;
#pragma omp for schedule(static)
        for (long long j = 0; j < (long long)rows; j++)
            if (scratch) over |= fn(ctx, (uint64_t)j, scratch, dt, out + (uint64_t)j * K * oes);
        free(scratch);
    }
    *overflow = over != 0;
    return nomem ? mp_errf(err, MP_E_NOMEM, "out of memory") : MP_OK;
}

/* How a row's codes are found: as bytes unpacked up front, or (4-bit, 16-bit output) as a
 * stream of nibbles, element k in byte k / 2, the low nibble first, read from the packed block. */
typedef enum { INT_BYTES, INT_NIB_BYTES, INT_NIB_GPTQ, INT_NIB_ROWS } int_kind;

typedef struct int_parts {
    int_kind kind;
    mp_pblock raw;    /* the packed codes (INT_NIB_ROWS; INT_NIB_GPTQ: transposed to rows of n) */
    size_t row_bytes; /* a row's stride in raw.data */
    uint8_t *codes;   /* [rows][K] canonical (INT_BYTES: code_xor applied; INT_NIB_BYTES: not) */
    int32_t *z;       /* [rows][G] with the scheme's offset */
    float *s;         /* [rows][G] */
    uint32_t *gk;     /* [K] or NULL */
} int_parts;

/* Which way suits q's rows as dt: nibble streams need at most 4 bits, a 16-bit output and byte
 * aligned groups; GPTQ's [K/8, N] word columns and rows of n along k are read as they lie. */
static int_kind int_kind_of(const mp_qlinear *q, const mp_packing *cp, mp_dtype dt)
{
    if (dt == MP_DTYPE_F32 || q->bits > 4 || (!q->act_order && q->group_size % 2)) return INT_BYTES;
    int plain = q->bits == 4 && !cp->awq_order && cp->string_is_n && (!cp->fields_per_word || cp->fields_per_word == 8);
    if (plain && cp->along_rows) return INT_NIB_ROWS;
    if (plain && cp->container_bytes == 4) return INT_NIB_GPTQ;
    return INT_NIB_BYTES;
}

static mp_errcode read_block(const mp_st_model *m, const mp_tensor *t, mp_pblock *b, size_t cb,
                             mp_err *err)
{
    size_t bytes = (size_t)((b->r1 - b->r0) * (b->c1 - b->c0) * cb);
    b->data = malloc(bytes ? bytes : 1);
    if (!b->data) return mp_errf(err, MP_E_NOMEM, "out of memory");
    return mp_st_read_block(m, t, b->r0, b->r1, b->c0, b->c1, b->data, err);
}

static mp_errcode int_zeros(const mp_st_model *m, const mp_qlinear *q, const mp_packing *zp,
                            uint64_t n0, uint64_t n1, int32_t *z, mp_err *err)
{
    uint64_t rows = n1 - n0, G = q->n_groups;
    if (q->zero == MP_QZERO_IMPLIED) {
        for (uint64_t i = 0; i < rows * G; i++) z[i] = (int32_t)(1u << (q->bits - 1));
        return MP_OK;
    }
    mp_pblock b = mp_packing_block(zp, q->qzeros->shape, n0, n1, 0, G);
    uint8_t *t8 = malloc((size_t)(rows * G) + 1);
    mp_errcode rc = t8 ? read_block(m, q->qzeros, &b, zp->container_bytes, err)
                       : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) {
        mp_qtile t = {n0, n1, 0, G, t8};
        mp_unpack(zp, &b, &t, 0);
        for (uint64_t i = 0; i < rows * G; i++) z[i] = (int32_t)(t8[i] + q->zero_offset);
    }
    free(b.data);
    free(t8);
    return rc;
}

static mp_errcode int_scales(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1,
                             float *s, mp_err *err)
{
    uint64_t rows = n1 - n0, G = q->n_groups;
    const mp_tensor *t = q->scales;
    size_t es = mp_dtype_bits(t->dtype) / 8;
    mp_pblock b = q->scales_nk ? (mp_pblock){NULL, n0, n1, 0, t->shape[1]}
                               : (mp_pblock){NULL, 0, t->shape[0], n0, n1};
    mp_errcode rc = read_block(m, t, &b, es, err);
    size_t cols = (size_t)(b.c1 - b.c0);
    for (uint64_t j = 0; rc == MP_OK && j < rows; j++)
        for (uint64_t g = 0; g < G; g++)
            s[j * G + g] = mp_dtype_load_f32(b.data + (q->scales_nk ? j * cols + g : g * cols + j) * es, t->dtype);
    free(b.data);
    return rc;
}

static mp_errcode int_gidx(const mp_st_model *m, const mp_qlinear *q, uint32_t **gk, mp_err *err)
{
    *gk = NULL;
    if (!q->act_order) return MP_OK; /* a trivial g_idx is k / group_size */
    *gk = malloc((size_t)q->k_cols * 4);
    if (!*gk) return mp_errf(err, MP_E_NOMEM, "out of memory");
    MP_FORWARD(mp_st_read(m, q->g_idx, 0, *gk, (size_t)q->k_cols * 4, err));
    for (uint64_t k = 0; k < q->k_cols; k++) (*gk)[k] = mp_read_le32(&(*gk)[k]);
    return MP_OK;
}

/* GPTQ's word columns [nw, N] (the block's rows x columns) as rows of n, [N][nw], a cache line
 * of 16 columns at a time over OpenMP threads: each row is then its K codes' nibble stream. */
static mp_errcode gptq_rows(mp_pblock *b, size_t *row_bytes, mp_err *err)
{
    const uint64_t nw = b->r1 - b->r0, cols = b->c1 - b->c0;
    const uint32_t *src = (const uint32_t *)(const void *)b->data; /* little-endian host */
    uint32_t *dst = malloc((size_t)(nw * cols) * 4 + 4);
    if (!dst) return mp_errf(err, MP_E_NOMEM, "out of memory");
    long long tiles = (long long)((cols + 15) / 16);
#pragma omp parallel for schedule(static) if (nw * cols >= (1u << 16))
    for (long long t = 0; t < tiles; t++) {
        uint64_t j0 = (uint64_t)t * 16, j1 = j0 + 16 < cols ? j0 + 16 : cols;
        for (uint64_t r = 0; r < nw; r++)
            for (uint64_t j = j0; j < j1; j++) dst[j * nw + r] = src[r * cols + j];
    }
    free(b->data);
    b->data = (uint8_t *)dst;
    *row_bytes = (size_t)nw * 4;
    return MP_OK;
}

static mp_errcode int_read(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1, mp_dtype dt,
                           int_parts *p, mp_err *err)
{
    uint64_t rows = n1 - n0, K = q->k_cols, G = q->n_groups;
    mp_packing cp, zp;
    mp_layout_source(q, &cp, &zp);
    p->kind = int_kind_of(q, &cp, dt);
    int keep = p->kind == INT_NIB_GPTQ || p->kind == INT_NIB_ROWS;
    p->codes = keep ? NULL : malloc((size_t)(rows * K) + 1);
    p->z = malloc((size_t)(rows * G) * sizeof *p->z + 1);
    p->s = malloc((size_t)(rows * G) * sizeof *p->s + 1);
    if ((!keep && !p->codes) || !p->z || !p->s) return mp_errf(err, MP_E_NOMEM, "out of memory");
    p->raw = mp_packing_block(&cp, q->qweight->shape, n0, n1, 0, K);
    p->row_bytes = (size_t)(p->raw.c1 - p->raw.c0) * cp.container_bytes;
    mp_errcode rc = read_block(m, q->qweight, &p->raw, cp.container_bytes, err);
    if (rc == MP_OK && p->kind == INT_NIB_GPTQ) rc = gptq_rows(&p->raw, &p->row_bytes, err);
    if (rc == MP_OK && !keep) {
        mp_qtile t = {n0, n1, 0, K, p->codes};
        mp_unpack(&cp, &p->raw, &t, p->kind == INT_BYTES ? q->code_xor : 0);
        free(p->raw.data);
        p->raw.data = NULL;
    }
    if (rc == MP_OK) rc = int_zeros(m, q, &zp, n0, n1, p->z, err);
    if (rc == MP_OK) rc = int_scales(m, q, n0, n1, p->s, err);
    if (rc == MP_OK) rc = int_gidx(m, q, &p->gk, err);
    return rc;
}

typedef struct int_ctx {
    const mp_qlinear *q;
    const int_parts *p;
} int_ctx;

static uint32_t int_row_at(const void *ctx, uint64_t j, void *scratch, mp_dtype dt, uint8_t *out)
{
    const int_ctx *c = ctx;
    uint64_t K = c->q->k_cols, G = c->q->n_groups;
    int_row(c->p->codes + j * K, c->p->z + j * G, c->p->s + j * G, K, c->q->group_size, c->p->gk, scratch);
    return mp_dense_store(scratch, (size_t)K, dt, out);
}

/* The 16 outputs of each of a row's G groups, indexed by the stored code (code_xor folded in):
 * tab[16g + c] is dt's bits of (float)((c ^ xor) - z[g]) * s[g], the reference's product, rounded
 * once. ovf[16g + c]: that f16 output overflows. Returns nonzero when any does. */
CLONES static uint32_t int_tables(const int32_t *z, const float *s, uint64_t G, uint32_t xor_, mp_dtype dt,
                                  float *v, uint16_t *tab, uint8_t *ovf)
{
    uint32_t any = 0;
    for (uint64_t g = 0; g < G; g++)
        for (uint32_t c = 0; c < 16; c++) v[16 * g + c] = (float)((int32_t)(c ^ xor_) - z[g]) * s[g];
    if (dt == MP_DTYPE_BF16) {
        for (uint64_t i = 0; i < 16 * G; i++) tab[i] = to_bf16(v[i]);
        return 0;
    }
    to_f16_n(v, (size_t)(16 * G), tab);
    for (uint64_t i = 0; i < 16 * G; i++) {
        ovf[i] = (uint8_t)f16_overflow(v[i]);
        any |= ovf[i];
    }
    return any;
}

static inline unsigned nib_at(const uint8_t *nib, uint64_t k)
{
    return ((unsigned)nib[k / 2] >> (4u * (unsigned)(k & 1u))) & 15u;
}

/* Act-order: each element through its own group's table. */
CLONES static void int_gather(const uint8_t *nib, const uint32_t *gk, const uint16_t *tab, uint64_t K, uint16_t *o)
{
    for (uint64_t i = 0; i < K / 2; i++) {
        uint32_t b = nib[i];
        o[2 * i] = tab[16 * gk[2 * i] + (b & 15u)];
        o[2 * i + 1] = tab[16 * gk[2 * i + 1] + (b >> 4)];
    }
    if (K % 2) o[K - 1] = tab[16 * gk[K - 1] + nib_at(nib, K - 1)];
}

/* Row j's codes as a nibble stream: in the block as it lies (rows of n, GPTQ's columns once
 * transposed), or its byte codes packed two a byte into buf (K / 2 + 1 bytes). */
static const uint8_t *int_nibbles(const int_ctx *c, uint64_t j, uint8_t *buf)
{
    const int_parts *p = c->p;
    uint64_t K = c->q->k_cols;
    if (p->kind == INT_NIB_ROWS || p->kind == INT_NIB_GPTQ) return p->raw.data + j * p->row_bytes;
    const uint8_t *q = p->codes + j * K;
    for (uint64_t i = 0; i < K / 2; i++) buf[i] = (uint8_t)(q[2 * i] | (q[2 * i + 1] << 4));
    if (K % 2) buf[K / 2] = q[K - 1];
    return buf;
}

/* The scratch of one thread's nibble rows: the stream, and the row's tables. */
typedef struct int_lut_scratch {
    uint8_t *nib, *ovf;
    float *v;
    uint16_t *tab;
} int_lut_scratch;

static size_t int_lut_split(uint64_t K, uint64_t G, void *scratch, int_lut_scratch *s)
{
    size_t nb = (size_t)(K / 2 + 64) & ~(size_t)63, t = (size_t)(16 * G);
    if (s) {
        s->v = scratch;
        s->tab = (uint16_t *)(void *)((uint8_t *)scratch + t * 4);
        s->nib = (uint8_t *)scratch + t * 6;
        s->ovf = s->nib + nb;
    }
    return t * 4 + t * 2 + nb + t;
}

/* Row j through its groups' tables: the nibble shuffles a group at a time (byte-aligned groups),
 * or one table look-up an element (act-order). */
static uint32_t int_lut_row_at(const void *ctx, uint64_t j, void *scratch, mp_dtype dt, uint8_t *out)
{
    const int_ctx *c = ctx;
    const mp_qlinear *q = c->q;
    const uint64_t K = q->k_cols, G = q->n_groups, gs = q->group_size;
    int_lut_scratch s;
    int_lut_split(K, G, scratch, &s);
    const uint8_t *nib = int_nibbles(c, j, s.nib);
    uint32_t any = int_tables(c->p->z + j * G, c->p->s + j * G, G, q->code_xor, dt, s.v, s.tab, s.ovf), over = 0;
    uint16_t *o = (uint16_t *)(void *)out;
    if (c->p->gk) int_gather(nib, c->p->gk, s.tab, K, o);
    for (uint64_t k0 = 0, g = 0; !c->p->gk && k0 < K; k0 += gs, g++) {
        uint64_t k1 = k0 + gs < K ? k0 + gs : K;
        mp_nibble_lookup16(nib + k0 / 2, (size_t)((k1 - k0) / 2), 0, s.tab + 16 * g, o + k0);
        if ((k1 - k0) % 2) o[k1 - 1] = s.tab[16 * g + nib_at(nib, k1 - 1)];
    }
    for (uint64_t k = 0; any && k < K; k++) over |= s.ovf[16 * (c->p->gk ? c->p->gk[k] : k / gs) + nib_at(nib, k)];
    return over;
}

static mp_errcode int_rows(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1,
                           mp_dtype dt, uint8_t *out, int *overflow, mp_err *err)
{
    int_parts p = {0};
    mp_errcode rc = int_read(m, q, n0, n1, dt, &p, err);
    int_ctx c = {q, &p};
    size_t lut = int_lut_split(q->k_cols, q->n_groups, NULL, NULL);
    if (rc == MP_OK && p.kind == INT_BYTES)
        rc = store_rows(n1 - n0, q->k_cols, (size_t)q->k_cols * 4, dt, out, int_row_at, &c, overflow, err);
    else if (rc == MP_OK)
        rc = store_rows(n1 - n0, q->k_cols, lut, dt, out, int_lut_row_at, &c, overflow, err);
    free(p.raw.data);
    free(p.codes);
    free(p.z);
    free(p.s);
    free(p.gk);
    return rc;
}

/* ------------------------------------------------------------ FP8 */

static float round_to(float v, mp_dtype t)
{
    if (t == MP_DTYPE_BF16) return mp_bf16_to_f32(mp_f32_to_bf16(v));
    if (t == MP_DTYPE_F16) return mp_f16_to_f32(mp_f32_to_f16(v));
    return v;
}

typedef struct f8_job {
    const mp_qlinear *q;
    float lut[256];          /* the codes, decoded */
    const float *scales;     /* grid rows [r0, ...), pre-rounded (ModelOpt) */
    uint64_t r0;
    mp_dtype post, dt;       /* the producer's product rounding; the output */
    int dec;                 /* f8_decoder's answer */
} f8_job;

/* The 256 outputs of one scale, by the reference's formula, as output bits. */
static uint32_t f8_table(const f8_job *f, float s, uint32_t *tab)
{
    uint32_t over = 0;
    for (unsigned c = 0; c < 256; c++) {
        float v = round_to(mp_mul_nan_first(f->lut[c], s), f->post);
        if (f->dt == MP_DTYPE_F32) tab[c] = mp_f32_bits(v);
        else if (f->dt == MP_DTYPE_BF16) tab[c] = to_bf16(v);
        else {
            tab[c] = to_f16(v);
            over |= f16_overflow(v);
        }
    }
    return over;
}

CLONES static void lookup(const uint8_t *c, size_t n, const uint32_t *tab, mp_dtype dt, uint8_t *out)
{
    if (dt == MP_DTYPE_F32) {
        uint32_t *o = (uint32_t *)(void *)out;
        for (size_t i = 0; i < n; i++) o[i] = tab[c[i]];
    } else {
        uint16_t *o = (uint16_t *)(void *)out;
        for (size_t i = 0; i < n; i++) o[i] = (uint16_t)tab[c[i]];
    }
}

/* An FP8 code's f32 by its bits, a loop the vectorizer takes where the table is a gather, with
 * no subnormal f32 operand (each costs a microcode assist): normal codes by moving the bits and
 * rebiasing the exponent, subnormal ones m * 2^-9 (E4M3) or m * 2^-16 (E5M2), infinity and NaN as
 * common/half.c gives them (f8_decoder checks all 256 codes). */
static inline float f8_decode(uint32_t c, int e5m2)
{
    uint32_t a = c & 0x7Fu, sign = (c & 0x80u) << 24, top = e5m2 ? 0x7Cu : 0x7Fu;
    uint32_t normal = (a << (e5m2 ? 21 : 20)) + ((e5m2 ? 112u : 120u) << 23);
    uint32_t sub = mp_f32_bits((float)(int32_t)a * (e5m2 ? 0x1p-16f : 0x1p-9f));
    uint32_t inf = 0u - ((uint32_t)(a == top) & (uint32_t)e5m2), special = 0x7FC00000u ^ (inf & 0x00400000u);
    uint32_t is_sub = 0u - (uint32_t)(a < (e5m2 ? 4u : 8u)), is_special = 0u - (uint32_t)(a >= top);
    uint32_t bits = (sub & is_sub) | (special & is_special) | (normal & ~(is_sub | is_special)); /* branch-free */
    return mp_bits_f32(bits | sign);
}

/* 1 (E4M3) or 2 (E5M2) when f8_decode gives the table's bits for every code, else 0: the table. */
static int f8_decoder(const float *lut, mp_dtype elem)
{
    int e5m2 = elem == MP_DTYPE_F8_E5M2;
    for (uint32_t c = 0; c < 256; c++)
        if (mp_f32_bits(f8_decode(c, e5m2)) != mp_f32_bits(lut[c])) return 0;
    return 1 + e5m2;
}

/* One row of FP8 codes with small scale tiles: decoded (by bits, or by the table when dec is 0),
 * times each tile's scale, rounded to the producer's product dtype (BF16 branch-free). */
CLONES static void f8_small(const float *lut, int dec, const uint8_t *c, const float *s, uint64_t K, uint64_t bk,
                            mp_dtype post, float *row)
{
    for (uint64_t k0 = 0, j = 0; k0 < K; k0 += bk, j++) {
        uint64_t k1 = k0 + bk < K ? k0 + bk : K;
        float sj = s[j];
        if (dec == 1)
            for (uint64_t k = k0; k < k1; k++) row[k] = mp_mul_nan_first(f8_decode(c[k], 0), sj);
        else if (dec == 2)
            for (uint64_t k = k0; k < k1; k++) row[k] = mp_mul_nan_first(f8_decode(c[k], 1), sj);
        else
            for (uint64_t k = k0; k < k1; k++) row[k] = mp_mul_nan_first(lut[c[k]], sj);
    }
    if (post == MP_DTYPE_BF16)
        for (uint64_t k = 0; k < K; k++) row[k] = mp_bits_f32((uint32_t)to_bf16(row[k]) << 16);
    else if (post != MP_DTYPE_COUNT)
        for (uint64_t k = 0; k < K; k++) row[k] = round_to(row[k], post);
}

/* One row of FP8 codes; `tabs` holds scale_cols tables, rebuilt when the grid row changes. */
static uint32_t f8_row(const f8_job *f, uint64_t n, const uint8_t *c, uint8_t *out, uint32_t *tabs,
                       uint64_t *tab_row, float *row)
{
    const mp_qlinear *q = f->q;
    uint64_t K = q->k_cols, bk = q->block_k, gr = n / q->block_n;
    const float *s = f->scales + (gr - f->r0) * q->scale_cols;
    size_t oes = mp_dtype_bits(f->dt) / 8;
    uint32_t over = 0;
    if (tabs) {
        if (*tab_row != gr)
            for (uint64_t j = 0; j < q->scale_cols; j++) over |= f8_table(f, s[j], tabs + 256 * j);
        *tab_row = gr;
        for (uint64_t k0 = 0, j = 0; k0 < K; k0 += bk, j++)
            lookup(c + k0, (size_t)((k0 + bk < K ? bk : K - k0)), tabs + 256 * j, f->dt, out + k0 * oes);
        return over;
    }
    f8_small(f->lut, f->dec, c, s, K, bk, f->post, row);
    return mp_dense_store(row, (size_t)K, f->dt, out);
}

static mp_errcode f8_rows(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1,
                          mp_dtype dt, uint8_t *out, int *overflow, mp_err *err)
{
    f8_job f = {.q = q, .dt = dt, .r0 = n0 / q->block_n};
    f.post = q->scheme->fround == MP_FROUND_SCALE_DTYPE ? q->scales->dtype : MP_DTYPE_COUNT;
    mp_dtype pre = q->scheme->fround == MP_FROUND_MODEL_DTYPE ? q->round_dtype : MP_DTYPE_COUNT;
    for (unsigned c = 0; c < 256; c++)
        f.lut[c] = q->elem_dtype == MP_DTYPE_F8_E5M2 ? mp_e5m2_to_f32((uint8_t)c) : mp_e4m3_to_f32((uint8_t)c);
    f.dec = f8_decoder(f.lut, q->elem_dtype);
    uint64_t K = q->k_cols, r1 = (n1 - 1) / q->block_n + 1, ns = (r1 - f.r0) * q->scale_cols;
    const mp_tensor *st = q->scales;
    size_t es = mp_dtype_bits(st->dtype) / 8;
    float *sc = malloc((size_t)ns * sizeof *sc + 1);
    uint8_t *raw = malloc((size_t)ns * es + 1), *codes = malloc((size_t)((n1 - n0) * K) + 1);
    mp_errcode rc = sc && raw && codes ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = mp_st_read(m, st, f.r0 * q->scale_cols * es, raw, (size_t)ns * es, err);
    if (rc == MP_OK) rc = mp_st_read(m, q->qweight, n0 * K, codes, (size_t)((n1 - n0) * K), err);
    for (uint64_t i = 0; rc == MP_OK && i < ns; i++) sc[i] = round_to(mp_dtype_load_f32(raw + i * es, st->dtype), pre);
    f.scales = sc;
    int use_tab = q->block_n * q->block_k >= 4096;
    long long rows = (long long)(n1 - n0);
    uint32_t over = 0;
    int nomem = 0;
#pragma omp parallel if (rc == MP_OK && (uint64_t)rows * K >= (1u << 18)) reduction(| : over, nomem)
    {
        uint32_t *tabs = rc == MP_OK && use_tab ? malloc((size_t)q->scale_cols * 256 * 4) : NULL;
        float *row = rc == MP_OK && !use_tab ? malloc((size_t)K * sizeof *row) : NULL;
        uint64_t tab_row = UINT64_MAX;
        nomem = rc == MP_OK && !tabs && !row;
#pragma omp for schedule(static)
        for (long long j = 0; j < rows; j++)
            if (tabs || row)
                over |= f8_row(&f, n0 + (uint64_t)j, codes + (uint64_t)j * K,
                               out + (uint64_t)j * K * (mp_dtype_bits(dt) / 8), tabs, &tab_row, row);
        free(tabs);
        free(row);
    }
    if (rc == MP_OK && nomem) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    *overflow = over != 0;
    free(sc);
    free(raw);
    free(codes);
    return rc;
}

/* ------------------------------------------------------------ FP4 (NVFP4, MXFP4) */

/* One row: the codes' values by the 16-entry table (gather), then each block of g times its
 * effective scale (a loop the vectorizer takes whole), as verify/dequant_fp4.c computes them. */
CLONES static void fp4_row(const uint8_t *c, const float *lut, const float *eff, const uint8_t *twice,
                           uint64_t K, uint64_t g, float *row)
{
    for (uint64_t i = 0; i < K / 2; i++) {
        row[2 * i] = lut[c[i] & 0xFu];
        row[2 * i + 1] = lut[c[i] >> 4];
    }
    for (uint64_t k0 = 0, j = 0; k0 < K; k0 += g, j++) {
        float e = eff[j];
        for (uint64_t k = k0; k < k0 + g; k++) row[k] *= e;
        if (twice[j]) /* an exact ldexp by 128: 2^127, then 2 (rare: an E8M0 NaN byte) */
            for (uint64_t k = k0; k < k0 + g; k++) row[k] *= 2.0f;
    }
}

/* The block scales of rows [n0, n1) with the per-tensor scale applied, in the reference's order. */
static mp_errcode fp4_eff(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1, float *eff,
                          uint8_t *twice, mp_err *err)
{
    size_t n = (size_t)((n1 - n0) * q->scale_cols);
    uint8_t *raw = malloc(n + 1), gb[4];
    mp_errcode rc = raw ? mp_st_read(m, q->scales, n0 * q->scale_cols, raw, n, err)
                        : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK && q->global_scale) rc = mp_st_read(m, q->global_scale, 0, gb, 4, err);
    float gs = rc == MP_OK && q->global_scale ? mp_dtype_load_f32(gb, MP_DTYPE_F32) : 1.0f;
    int div = q->scheme->global_divides, mul = q->global_scale && !div;
    div = div && q->global_scale;
    for (size_t i = 0; rc == MP_OK && i < n; i++) {
        twice[i] = q->scheme->fp4_ldexp && raw[i] == 0xFF && q->scales->dtype != MP_DTYPE_F8_E4M3;
        float s = twice[i]               ? mp_e8m0_to_f32(0xFE)
                  : q->scheme->e8m0_nan ? mp_e8m0_to_f32(raw[i]) /* 0xFF NaN (DeepSeek-V4) */
                                        : mp_fp4_scale_to_f32(raw[i], q->scales->dtype);
        eff[i] = div ? s / gs : mul ? s * gs : s;
    }
    free(raw);
    return rc;
}

typedef struct fp4_ctx {
    const mp_qlinear *q;
    float lut[16];
    const uint8_t *codes, *twice;
    const float *eff;
} fp4_ctx;

static uint32_t fp4_row_at(const void *ctx, uint64_t j, void *row, mp_dtype dt, uint8_t *out)
{
    const fp4_ctx *c = ctx;
    uint64_t K = c->q->k_cols, cols = c->q->scale_cols;
    fp4_row(c->codes + j * (K / 2), c->lut, c->eff + j * cols, c->twice + j * cols, K, c->q->block_k, row);
    return mp_dense_store(row, (size_t)K, dt, out);
}

static mp_errcode fp4_rows(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1,
                           mp_dtype dt, uint8_t *out, int *overflow, mp_err *err)
{
    uint64_t rb = q->k_cols / 2, cols = q->scale_cols;
    fp4_ctx c = {.q = q};
    for (uint8_t i = 0; i < 16; i++) c.lut[i] = mp_e2m1_to_f32(i);
    if (q->scheme->fp4_zero_positive) c.lut[8] = 0.0f;
    float *eff = malloc((size_t)((n1 - n0) * cols) * sizeof *eff + 1);
    uint8_t *codes = malloc((size_t)((n1 - n0) * rb) + 1), *twice = malloc((size_t)((n1 - n0) * cols) + 1);
    mp_errcode rc = eff && codes && twice ? fp4_eff(m, q, n0, n1, eff, twice, err)
                                          : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = mp_st_read(m, q->qweight, n0 * rb, codes, (size_t)((n1 - n0) * rb), err);
    c.codes = codes, c.twice = twice, c.eff = eff;
    if (rc == MP_OK) rc = store_rows(n1 - n0, q->k_cols, (size_t)q->k_cols * 4, dt, out, fp4_row_at, &c, overflow, err);
    free(eff);
    free(codes);
    free(twice);
    return rc;
}

/* ------------------------------------------------------------ bitsandbytes 4-bit */

/* The blocks' absmax as f32, the nested ones decoded as bitsandbytes does: the product of the
 * code's value and the group's scale rounded to f32, then the offset added. */
static mp_errcode lut4_absmax(const mp_st_model *m, const mp_qlinear *q, uint64_t b0, uint64_t b1, float *a,
                              mp_err *err)
{
    size_t n = (size_t)(b1 - b0);
    if (!q->nested) return mp_st_read(m, q->scales, b0 * 4, a, n * 4, err); /* little-endian host */
    uint64_t nb = q->nested_block, g0 = b0 / nb, g1 = (b1 - 1) / nb + 1;
    float map[256], *nabs = malloc((size_t)(g1 - g0) * 4 + 4);
    uint8_t *c = malloc(n + 1);
    mp_errcode rc = nabs && c ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = mp_st_read(m, q->aux[2], 0, map, sizeof map, err);
    if (rc == MP_OK) rc = mp_st_read(m, q->aux[1], g0 * 4, nabs, (size_t)(g1 - g0) * 4, err);
    if (rc == MP_OK) rc = mp_st_read(m, q->scales, b0, c, n, err);
    for (uint64_t b = b0; rc == MP_OK && b < b1; b++) {
        float prod = map[c[b - b0]] * nabs[b / nb - g0];
        a[b - b0] = prod + q->nested_offset;
    }
    free(nabs);
    free(c);
    return rc;
}

/* Code of element t, whose byte is bytes[t / 2 - y0]. */
static inline unsigned lut4_code(const uint8_t *bytes, uint64_t y0, uint64_t t)
{
    return ((unsigned)bytes[t / 2 - y0] >> (4u * (unsigned)(~t & 1u))) & 15u; /* high nibble first */
}

/* The 16 outputs of one block's absmax a, by the reference's formula, as output bits; bit c of
 * *ovf set when output c overflows f16. */
CLONES static void lut4_table(const mp_qlinear *q, float a, mp_dtype dt, uint32_t *tab, uint32_t *ovf)
{
    float v[16];
    *ovf = 0;
    for (unsigned c = 0; c < 16; c++) v[c] = q->code_table[c] * a;
    if (q->round_dtype == MP_DTYPE_BF16) /* round_to, branch-free: each loop is a vector or two */
        for (unsigned c = 0; c < 16; c++) v[c] = mp_bits_f32((uint32_t)to_bf16(v[c]) << 16);
    else if (q->round_dtype != MP_DTYPE_COUNT)
        for (unsigned c = 0; c < 16; c++) v[c] = round_to(v[c], q->round_dtype);
    if (dt == MP_DTYPE_F32)
        for (unsigned c = 0; c < 16; c++) tab[c] = mp_f32_bits(v[c]);
    else if (dt == MP_DTYPE_BF16)
        for (unsigned c = 0; c < 16; c++) tab[c] = to_bf16(v[c]);
    else
        for (unsigned c = 0; c < 16; c++) {
            tab[c] = to_f16(v[c]);
            *ovf |= f16_overflow(v[c]) << c;
        }
}

/* Elements [t0, t1) of one block, all with absmax a, looked up in its 16 outputs. Returns 1
 * when an f16 output overflows. */
static uint32_t lut4_block(const mp_qlinear *q, float a, const uint8_t *bytes, uint64_t y0, uint64_t t0,
                           uint64_t t1, mp_dtype dt, uint8_t *out)
{
    uint32_t tab[16], ovf, over = 0;
    lut4_table(q, a, dt, tab, &ovf);
    for (uint64_t t = t0; ovf && t < t1; t++) over |= (ovf >> lut4_code(bytes, y0, t)) & 1u;
    if (dt == MP_DTYPE_F32) {
        uint32_t *o = (uint32_t *)(void *)out;
        for (uint64_t t = t0; t < t1; t++) o[t - t0] = tab[lut4_code(bytes, y0, t)];
        return over;
    }
    uint16_t tab16[16], *o = (uint16_t *)(void *)out;
    for (unsigned c = 0; c < 16; c++) tab16[c] = (uint16_t)tab[c];
    if (t0 % 2) *o++ = tab16[lut4_code(bytes, y0, t0++)];
    size_t pairs = (size_t)((t1 - t0) / 2);
    mp_nibble_lookup16(bytes + (t0 / 2 - y0), pairs, 1, tab16, o);
    if ((t1 - t0) % 2) o[2 * pairs] = tab16[lut4_code(bytes, y0, t1 - 1)];
    return over;
}

static mp_errcode lut4_rows(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1, mp_dtype dt,
                            uint8_t *out, int *overflow, mp_err *err)
{
    const uint64_t bs = q->block_k, t0 = n0 * q->k_cols, t1 = n1 * q->k_cols;
    const uint64_t b0 = t0 / bs, b1 = (t1 - 1) / bs + 1, y0 = t0 / 2, y1 = (t1 - 1) / 2 + 1;
    float *a = malloc((size_t)(b1 - b0) * 4 + 4);
    uint8_t *bytes = malloc((size_t)(y1 - y0) + 1);
    mp_errcode rc = a && bytes ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = lut4_absmax(m, q, b0, b1, a, err);
    if (rc == MP_OK) rc = mp_st_read(m, q->qweight, y0, bytes, (size_t)(y1 - y0), err);
    size_t oes = mp_dtype_bits(dt) / 8;
    uint32_t over = 0;
    long long nblocks = rc == MP_OK ? (long long)(b1 - b0) : 0;
#pragma omp parallel for schedule(static) reduction(| : over) if (t1 - t0 >= (1u << 18))
    for (long long i = 0; i < nblocks; i++) {
        uint64_t b = b0 + (uint64_t)i, s = b * bs > t0 ? b * bs : t0, e = (b + 1) * bs < t1 ? (b + 1) * bs : t1;
        over |= lut4_block(q, a[i], bytes, y0, s, e, dt, out + (s - t0) * oes);
    }
    *overflow = over != 0;
    free(a);
    free(bytes);
    return rc;
}

/* ------------------------------------------------------------ bitsandbytes LLM.int8 */

CLONES static void int8_row(const int8_t *c, float s, uint64_t K, float *row)
{
    const float inv127 = 0x1.020408p-7f; /* f32(1/127), as int8_vectorwise_dequant multiplies */
    for (uint64_t k = 0; k < K; k++) row[k] = (float)c[k] * s * inv127;
}

static mp_errcode int8_rows(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1, mp_dtype dt,
                            uint8_t *out, int *overflow, mp_err *err)
{
    const uint64_t K = q->k_cols, rows = n1 - n0;
    float *scb = malloc((size_t)rows * 4 + 4);
    int8_t *codes = malloc((size_t)(rows * K) + 1);
    mp_errcode rc = scb && codes ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = mp_st_read(m, q->scales, n0 * 4, scb, (size_t)rows * 4, err);
    if (rc == MP_OK) rc = mp_st_read(m, q->qweight, n0 * K, codes, (size_t)(rows * K), err);
    size_t oes = mp_dtype_bits(dt) / 8;
    uint32_t over = 0;
    int nomem = 0;
    long long nr = rc == MP_OK ? (long long)rows : 0;
#pragma omp parallel if (rows * K >= (1u << 18)) reduction(| : over, nomem)
    {
        float *row = nr ? malloc((size_t)K * sizeof *row) : NULL;
        nomem = nr && !row;
#pragma omp for schedule(static)
        for (long long j = 0; j < nr; j++) {
            if (!row) continue;
            int8_row(codes + (uint64_t)j * K, scb[j], K, row);
            over |= mp_dense_store(row, (size_t)K, dt, out + (uint64_t)j * K * oes);
        }
        free(row);
    }
    if (rc == MP_OK && nomem) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    *overflow = over != 0;
    free(scb);
    free(codes);
    return rc;
}

/* The fast path of each element kind (mp_elem). */
typedef mp_errcode (*rows_fn)(const mp_st_model *, const mp_qlinear *, uint64_t, uint64_t, mp_dtype, uint8_t *,
                              int *, mp_err *);
static const rows_fn rows_of_elem[MP_ELEM_COUNT] = {
    [MP_ELEM_INT] = int_rows,
    [MP_ELEM_FLOAT8] = f8_rows,
    [MP_ELEM_FP4] = fp4_rows,
    [MP_ELEM_LUT4] = lut4_rows,
    [MP_ELEM_INT8_ABSMAX] = int8_rows,
};

mp_errcode mp_dense_rows(const mp_st_model *m, const mp_qlinear *q, uint64_t n0, uint64_t n1,
                         mp_dtype dt, void *out, int *overflow, mp_err *err)
{
    *overflow = 0;
    if (n0 == n1) return MP_OK;
    return rows_of_elem[q->scheme ? q->scheme->elem : MP_ELEM_INT](m, q, n0, n1, dt, out, overflow, err);
}
