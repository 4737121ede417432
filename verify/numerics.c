/*
 * numerics.c - every quantized linear of the output, run on the device, against the CPU
 * reference.
 *
 * For each linear (and each expert slice of a stacked MoE tensor):
 *   1. the device dequantizes the sampled rows; each value must equal the reference bit for bit
 *      (both compute (float)(q - z) * s once, or a float format's decoding with its producer's
 *      roundings (float_kernel.c), so any difference is a layout bug);
 *   2. the device computes y = x w^T for M seeded activation rows with f32 accumulation; the
 *      reference yref is computed in double from the reference rows. It fails on NaN/Inf, on
 *      more than 90 % exact zeros, on any |y - yref| above gamma_(K+1) * sum|x w| + (K+1) 2^-149
 *      (the worst case of any summation order; the second term is what products that fall
 *      below f32's normal range may lose, as float formats' tiny scales make them), and on
 *      NMSE = sum (y - yref)^2 / sum yref^2 above sum (4 sqrt(K) u * sum|x w|)^2 / sum yref^2,
 *      the probabilistic bound of Higham and Mary (2019) that rounding errors of a real f32 sum
 *      stay inside (doc/devices.md §5).
 * The reference is the source's linear of the same name when a source is given, else the
 * output's own linear, decoded by dequant_ref.c, which shares no code with kernels/.
 */
#include "check.h"

#pragma GCC optimize("O3") /* a hot loop of verify --full (doc/verify-speed.md) */

#include <assert.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_ROWS 256u
#define GROUP_CHUNKS 4u /* chunks the cpu backend's threads check in one parallel region (fewer wake-ups
                         * and barriers); their outputs are still judged chunk by chunk, in order */

double mp_verify_gamma(uint64_t k)
{
    double u = 0x1p-24, ku = (double)k * u;
    return ku / (1.0 - ku);
}

double mp_verify_gamma_prob(uint64_t k)
{
    return 4.0 * sqrt((double)k) * 0x1p-24;
}

uint32_t mp_verify_sample_count(uint64_t n, uint32_t want)
{
    n = n < UINT32_MAX ? n : UINT32_MAX;
    if (want == MP_VERIFY_ROWS_AUTO) /* whole runs of 8, so that each tile of 8 is one run */
        want = n / 64 < 16 ? 16 : n / 64 > 64 ? 64 : (uint32_t)(n / 64) / 8 * 8;
    return want == 0 || want >= n ? (uint32_t)n : want;
}

uint32_t mp_verify_sample_rows(uint64_t n, uint32_t want, uint32_t *rows)
{
    uint32_t c = mp_verify_sample_count(n, want), k = 0;
    if (c == n || c == UINT32_MAX) {
        for (uint32_t i = 0; i < c; i++) rows[i] = i;
        return c;
    }
    if (c == 1) {
        rows[0] = 0;
        return 1;
    }
    /* Runs of up to 8 consecutive rows, at least 2 (the first run starts at row 0, the last ends
     * at n - 1), the others spread evenly from a multiple of 8: 8 rows of a column layout (GPTQ
     * [K/8, N]: 32 bytes of one cache line; AWQ [K, N/8]: one word) are read together. Each run
     * starts after the one before and leaves room for the runs after it, so the rows are distinct
     * and increasing. */
    uint32_t R = c < 16 ? 2 : (c + 7) / 8;
    uint64_t at = 0, left = c;
    for (uint32_t r = 0; r < R; r++) {
        uint32_t len = (uint32_t)((uint64_t)c * (r + 1) / R - (uint64_t)c * r / R);
        uint64_t s = r == R - 1 ? n - len : ((uint64_t)r * (n - 8) / (R - 1)) & ~(uint64_t)7;
        if (s < at) s = at;
        if (s > n - left) s = n - left;
        for (uint32_t j = 0; j < len; j++) rows[k++] = (uint32_t)(s + j);
        at = s + len, left -= len;
    }
    return c;
}

/* The kernel family that reads q's layout: the one its registry entry names (mp_scheme.kernel). */
static int family_of(const mp_qlinear *q, mp_kfamily *f)
{
    *f = q->scheme ? mp_kfamily_find(q->scheme->kernel) : MP_KF_NONE;
    return *f != MP_KF_NONE;
}

/* A compressed file is decompressed once and held while its tensors are read in any order; one
 * file per model at a time (a split keeps each layer's tensors in one file). */
static mp_errcode hold(const mp_st_model *m, const mp_tensor *t, size_t *held, mp_err *err)
{
    if (!m || !t || !held || mp_st_file_compression(m, t->file) == MP_COMPRESS_NONE || *held == t->file)
        return MP_OK;
    if (*held != SIZE_MAX) mp_st_file_unload(m, *held);
    *held = SIZE_MAX;
    MP_FORWARD(mp_st_file_load(m, t->file, err));
    *held = t->file;
    return MP_OK;
}

mp_errcode mp_verify_read_whole(const mp_st_model *m, const mp_tensor *t, void **out, size_t *bytes, mp_err *err)
{
    *out = NULL;
    *bytes = 0;
    if (!t) return MP_OK;
    *out = malloc(t->n_bytes ? (size_t)t->n_bytes : 1);
    if (!*out) return mp_errf(err, MP_E_NOMEM, "out of memory reading '%s'", t->name);
    *bytes = (size_t)t->n_bytes;
    return mp_st_read(m, t, 0, *out, (size_t)t->n_bytes, err);
}

/* Reference rows: consecutive runs in one call each. AWQ GEMM decodes runs from a multiple of 8:
 * a run that starts elsewhere goes through *tmp, made on first use ((CHUNK_ROWS + 8) * K floats,
 * the caller frees it), so the calls that never need it (every aligned run) share nothing. */
static mp_errcode ref_rows(const mp_st_model *m, const mp_qlinear *q, const mp_ref_groups *grp, const uint32_t *rows,
                           uint32_t nrows, float *out, float **tmp, mp_err *err)
{
    uint64_t K = q->k_cols;
    for (uint32_t i = 0; i < nrows;) {
        uint32_t j = i + 1;
        while (j < nrows && rows[j] == rows[j - 1] + 1 && j - i < CHUNK_ROWS) j++;
        uint64_t a = rows[i], b = (uint64_t)rows[j - 1] + 1;
        uint64_t a0 = q->pack == MP_QPACK_N8_INTERLEAVED ? a & ~(uint64_t)7 : a;
        if (a0 == a) { /* straight into place */
            MP_FORWARD(mp_dequant_ref_with(m, q, grp, a, b, out + (uint64_t)i * K, err));
        } else {
            if (!*tmp && !(*tmp = malloc((size_t)((CHUNK_ROWS + 8) * K) * sizeof **tmp)))
                return mp_errf(err, MP_E_NOMEM, "out of memory");
            MP_FORWARD(mp_dequant_ref_with(m, q, grp, a0, b, *tmp, err));
            memcpy(out + (uint64_t)i * K, *tmp + (a - a0) * K, (size_t)((b - a) * K) * sizeof *out);
        }
        i = j;
    }
    return MP_OK;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

mp_vtensor *mp_vtensor_add(mp_verify_report *r, const char *name, const char *layout, uint64_t n, uint64_t k,
                           uint32_t m)
{
    mp_vtensor *vt = realloc(r->numeric, (r->n_numeric + 1) * sizeof *vt);
    if (!vt) return NULL;
    r->numeric = vt;
    vt += r->n_numeric++;
    memset(vt, 0, sizeof *vt);
    snprintf(vt->name, sizeof vt->name, "%s", name);
    snprintf(vt->layout, sizeof vt->layout, "%s", layout);
    vt->n = n, vt->k = k, vt->m = m;
    return vt;
}

typedef struct acc {
    double err2, ref2, bound2, dot, y2, max_abs;
    uint64_t zeros, outputs, bad;
    int64_t first_row, first_k;   /* the first differing value */
    float first_got, first_want;
    int all_nan;                  /* every dequantized value is still the NaN it was filled with */
} acc;

/* One tile of rows, checked by one thread: its values against the reference (bad, and when
 * any differ, the first difference and whether the device left its NaN filling untouched), its
 * launches' error, and its outputs, put into the chunk's [M][cn] arrays. */
typedef struct tile_res {
    mp_errcode rc;
    mp_err err;
    uint64_t bad, first;
    float got, want;
    int all_nan;
} tile_res;

/* The dequantized values of one tile against the reference, bit for bit: a counting pass the
 * compiler vectorizes, then, only when something differs, a pass for the first difference and
 * for whether every value is still NaN. With refill, dev[0, n) is left NaN again for the next
 * launch (mp_kernel_dequant_prefilled): each block of values refilled as soon as it is counted,
 * while it is in the L1 cache, instead of a fill pass before the launch. */
#ifdef MP_NO_TARGET_CLONES
#define CMP_CLONES
#else
#define CMP_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static CMP_CLONES void compare_values(float *restrict dev, const float *restrict ref, uint64_t n, int refill,
                                      tile_res *t)
{
    const float nan = __builtin_nanf("");
    uint64_t bad = 0, kept = 0; /* dev[0, kept) refilled */
    for (uint64_t i0 = 0; i0 < n; i0 += 1024) { /* 32-bit counts, the vector lanes' width */
        uint32_t b = 0;
        uint64_t i1 = n - i0 < 1024 ? n : i0 + 1024;
        for (uint64_t i = i0; i < i1; i++) {
            uint32_t d, r;
            memcpy(&d, &dev[i], sizeof d);
            memcpy(&r, &ref[i], sizeof r);
            b += d != r;
        }
        bad += b;
        if (refill && !bad) {
            for (uint64_t i = i0; i < i1; i++) dev[i] = nan;
            kept = i1;
        }
    }
    t->bad = bad, t->first = UINT64_MAX, t->all_nan = bad != 0;
    for (uint64_t i = 0; bad && i < kept && t->all_nan; i++) { /* refilled, but equal to ref[i] bit for bit */
        uint32_t r;
        memcpy(&r, &ref[i], sizeof r);
        t->all_nan &= (r & 0x7fffffffu) > 0x7f800000u;
    }
    for (uint64_t i = kept; bad && i < n && (t->first == UINT64_MAX || t->all_nan); i++) {
        uint32_t d, r;
        memcpy(&d, &dev[i], sizeof d);
        memcpy(&r, &ref[i], sizeof r);
        t->all_nan &= (d & 0x7fffffffu) > 0x7f800000u;
        if (d != r && t->first == UINT64_MAX) t->first = i, t->got = dev[i], t->want = ref[i];
    }
    for (uint64_t i = kept; refill && i < n; i++) dev[i] = nan;
}

/* The chunk's outputs y [M][cn] against yr and the bounds gamma * s, in the same order as ever. */
static void compare_outputs(const float *y, const double *yr, const double *s, uint64_t M, uint32_t cn,
                            double gamma, double eta, double gamma_p, mp_vtensor *vt, acc *a)
{
    for (uint64_t i = 0; i < M * cn; i++) {
        double yd = y[i], ref = yr[i], d = yd - ref, lim = gamma * s[i] + eta;
        a->outputs++;
        if (!isfinite(yd) || fabs(d) > lim) a->bad++;
        if (yd == 0) a->zeros++;
        if (isfinite(yd)) {
            a->err2 += d * d;
            a->dot += yd * ref;
            a->y2 += yd * yd;
            if (fabs(d) > a->max_abs) a->max_abs = fabs(d);
            if (yd < vt->y_min) vt->y_min = yd;
            if (yd > vt->y_max) vt->y_max = yd;
        } else {
            a->max_abs = INFINITY;
        }
        a->ref2 += ref * ref;
        a->bound2 += gamma_p * s[i] * gamma_p * s[i];
        if (ref < vt->ref_min) vt->ref_min = ref;
        if (ref > vt->ref_max) vt->ref_max = ref;
    }
}

/* The metrics of vt from a, and the findings they call for. */
static mp_errcode judge(const acc *a, uint32_t nrows, uint64_t K, const char *name, mp_vtensor *vt,
                        mp_verify_report *r, mp_err *err)
{
    vt->bad_outputs = a->bad;
    vt->max_abs_err = a->max_abs;
    vt->nmse = a->max_abs == INFINITY ? INFINITY : a->ref2 > 0 ? a->err2 / a->ref2 : (a->err2 > 0 ? INFINITY : 0);
    vt->nmse_bound = a->ref2 > 0 ? a->bound2 / a->ref2 : 0;
    vt->cosine = a->y2 > 0 && a->ref2 > 0 ? a->dot / sqrt(a->y2 * a->ref2) : 0;
    vt->zero_frac = a->outputs ? (double)a->zeros / (double)a->outputs : 0;
    vt->status = MP_VS_PASS;
    mp_errcode fr = MP_OK;
    if (vt->bad_values && a->all_nan) {
        vt->status = MP_VS_FAIL;
        fr = mp_vfind(r, MP_VS_FAIL, "numerics",
                      "%s: the device left all %llu outputs as the NaN they were filled with: it ran nothing", name,
                      (unsigned long long)nrows * K);
    } else if (vt->bad_values) {
        vt->status = MP_VS_FAIL;
        fr = mp_vfind(r, MP_VS_FAIL, "numerics",
                      "%s: %llu of %llu dequantized values differ from the reference; first at row %lld, "
                      "column %lld: device %.9g, reference %.9g",
                      name, (unsigned long long)vt->bad_values, (unsigned long long)nrows * K, (long long)a->first_row,
                      (long long)a->first_k, (double)a->first_got, (double)a->first_want);
    }
    if (fr == MP_OK && (a->bad || !(vt->nmse <= vt->nmse_bound))) {
        vt->status = MP_VS_FAIL;
        fr = mp_vfind(r, MP_VS_FAIL, "numerics",
                      "%s: y = x w^T: %llu of %llu outputs NaN/Inf or beyond the f32 rounding bound; "
                      "NMSE %.3g (bound %.3g)",
                      name, (unsigned long long)a->bad, (unsigned long long)a->outputs, vt->nmse, vt->nmse_bound);
    }
    if (fr == MP_OK && vt->zero_frac > 0.9) {
        vt->status = MP_VS_FAIL;
        fr = mp_vfind(r, MP_VS_FAIL, "numerics", "%s: %.1f %% of the outputs are exactly zero", name,
                      100.0 * vt->zero_frac);
    }
    return fr == MP_OK ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
}

#define TILE_ROWS 32u /* rows a thread checks at once: their values stay in its L2 (32: a column layout,
                       * AWQ [K, N/8] or GPTQ [K/8, N], then reads each cache line of codes 4 times, not 8;
                       * 64 was slower) */
#define TILE_SPREAD 8u /* the same for sampled rows (mp_verify_sample_rows): 8 rows, one run when the runs
                        * are 8 long, so that the few rows of a small tensor still spread over the threads */
#define TILE_MAX 32u   /* the larger of the two: what the per-thread buffers hold */

/* The buffers of one compare, sized for chunks of `chunk` rows: the chunk's reference values and
 * outputs, and per thread a tile's device values and products. Where the device's launches may
 * run in several threads (the cpu backend), each tile launches its own; else the chunk is
 * launched whole into dev and y, and the tiles only compare. Grown as needed and kept from
 * tensor to tensor (mp_numerics). */
#define MAX_TILES (GROUP_CHUNKS * CHUNK_ROWS / TILE_SPREAD) /* in a group of chunks: the smallest tile's */

typedef struct bufs {
    tile_res *res; /* MAX_TILES */
    uint32_t *rows;
    float *dev, *refv, *y, *ty, *trefv;
    double *yr, *s, *tyr, *ts;
    uint64_t n_want, chunk, group, K; /* what they hold room for */
    uint64_t dev_stride;              /* per_tile: floats from one thread's tile values to the next's */
    int nthreads, per_tile;           /* per_tile: launches per tile */
    int nan;                          /* per_tile: dev holds NaN everywhere (compare_values keeps it so) */
    uint32_t tile;                    /* rows per tile, TILE_ROWS or TILE_SPREAD */
} bufs;

static void bufs_free(bufs *b)
{
    free(b->res), free(b->rows), free(b->dev), free(b->refv), free(b->y), free(b->ty), free(b->trefv);
    free(b->yr), free(b->s), free(b->tyr), free(b->ts);
    memset(b, 0, sizeof *b);
}

/* Room for n_want rows in chunks of `chunk`, groups of `group` and K columns; what b holds is
 * kept when it is enough. */
static int bufs_reserve(bufs *b, uint64_t n_want, uint64_t chunk, uint64_t group, uint64_t M, uint64_t K)
{
    if (b->dev && n_want <= b->n_want && chunk <= b->chunk && group <= b->group && K <= b->K) {
        if (!b->nan) {
            float nan = nanf("");
            for (uint64_t i = 0; b->per_tile && i < (uint64_t)b->nthreads * b->dev_stride; i++) b->dev[i] = nan;
            b->nan = 1;
        }
        return 1;
    }
    int nthreads = b->nthreads, per_tile = b->per_tile;
    n_want = n_want > b->n_want ? n_want : b->n_want, chunk = chunk > b->chunk ? chunk : b->chunk;
    group = group > b->group ? group : b->group, K = K > b->K ? K : b->K;
    bufs_free(b);
    b->nthreads = nthreads, b->per_tile = per_tile;
    b->n_want = n_want, b->chunk = chunk, b->group = group, b->K = K;
    uint64_t T = (uint64_t)nthreads;
    b->dev_stride = TILE_MAX * K + MP_KERNEL_GUARD;
    uint64_t dev = per_tile ? T * b->dev_stride : chunk * K + MP_KERNEL_GUARD;
    b->res = malloc(MAX_TILES * sizeof *b->res);
    b->rows = malloc((size_t)(n_want ? n_want : 1) * sizeof *b->rows);
    b->dev = malloc((size_t)dev * sizeof *b->dev);
    b->refv = malloc((size_t)(chunk * K + 1) * sizeof *b->refv);
    b->y = malloc((size_t)(group * M + MP_KERNEL_GUARD) * sizeof *b->y);
    b->ty = malloc((size_t)(T * (TILE_MAX * M + MP_KERNEL_GUARD)) * sizeof *b->ty);
    b->trefv = malloc((size_t)(per_tile ? T * TILE_MAX * K + 1 : 1) * sizeof *b->trefv);
    b->yr = malloc((size_t)(group * M + 1) * sizeof *b->yr);
    b->s = malloc((size_t)(group * M + 1) * sizeof *b->s);
    b->tyr = malloc((size_t)(T * TILE_MAX * M + 1) * sizeof *b->tyr);
    b->ts = malloc((size_t)(T * TILE_MAX * M + 1) * sizeof *b->ts);
    if (!(b->res && b->rows && b->dev && b->refv && b->y && b->ty && b->trefv && b->yr && b->s && b->tyr && b->ts)) {
        bufs_free(b);
        b->nthreads = nthreads, b->per_tile = per_tile;
        return 0;
    }
    float nan = nanf("");
    for (uint64_t i = 0; per_tile && i < dev; i++) b->dev[i] = nan; /* kept NaN by compare_values */
    b->nan = 1;
    return 1;
}

/* The activations for one K: x [M][K] from the seeded generator (a magnitude per column, uniform
 * in [0.5, 1), and a sign per value: the rows share |x|, so the reference sums |x w| once per row
 * of w, ref_gemm.c; no magnitude near 0, so that a term the product drops or doubles moves every
 * row's output by at least half its weight), blocked for the reference (xt, and |x| in a) and for
 * the kernels (xk). The same for every tensor of that K. */
typedef struct xset {
    uint64_t K, used;
    float *x, *xk;
    double *xt, *a;
} xset;

#define XSETS 4 /* the K of a model's linears: hidden, intermediate, a MoE's expert width, heads */

struct mp_numerics {
    mp_device *dev;
    const mp_verify_opts *o;
    bufs b;
    xset xs[XSETS];
    uint64_t clock;
};

mp_numerics *mp_numerics_new(mp_device *d, const mp_verify_opts *o, int threads)
{
    mp_numerics *nu = calloc(1, sizeof *nu);
    if (!nu) return NULL;
    nu->dev = d, nu->o = o;
    nu->b.nthreads = threads > 0 ? threads : omp_get_max_threads();
    nu->b.per_tile = mp_device_threadsafe(d);
    return nu;
}

static void xset_free(xset *x)
{
    free(x->x), free(x->xk), free(x->xt), free(x->a);
    memset(x, 0, sizeof *x);
}

void mp_numerics_free(mp_numerics *nu)
{
    if (!nu) return;
    bufs_free(&nu->b);
    for (int i = 0; i < XSETS; i++) xset_free(&nu->xs[i]);
    free(nu);
}

mp_device *mp_numerics_device(const mp_numerics *nu) { return nu->dev; }

/* The activations of K: made when no set holds them, in place of the least recently used. */
static const xset *xset_for(mp_numerics *nu, uint64_t K)
{
    xset *x = &nu->xs[0];
    for (int i = 0; i < XSETS; i++) {
        if (nu->xs[i].x && nu->xs[i].K == K) {
            nu->xs[i].used = ++nu->clock;
            return &nu->xs[i];
        }
        if (!nu->xs[i].x || nu->xs[i].used < x->used) x = &nu->xs[i];
    }
    xset_free(x);
    uint64_t M = nu->o->m, xb = (uint64_t)mp_ref_gemm_blocks((uint32_t)M) * 8 * K;
    x->x = malloc((size_t)((M ? M : 1) * K + 1) * sizeof *x->x); /* row 0 holds the magnitudes first */
    x->xk = malloc((mp_kernel_x_floats((uint32_t)M, (size_t)K) + 1) * sizeof *x->xk);
    x->xt = malloc((size_t)(xb + 1) * sizeof *x->xt);
    x->a = malloc((size_t)(K + 1) * sizeof *x->a);
    if (!(x->x && x->xk && x->xt && x->a)) {
        xset_free(x);
        return NULL;
    }
    uint64_t seed = nu->o->seed, bits = 0;
    for (uint64_t c = 0; c < K; c++) x->x[c] = 0.5f + (float)(splitmix(&seed) >> 41) * 0x1p-24f; /* exact */
    for (uint64_t i = 0; i < M * K; i++) {
        if (i % 64 == 0) bits = splitmix(&seed);
        float v = fabsf(x->x[i % K]); /* row 0 holds the magnitudes until it is signed itself */
        x->x[i] = (bits >> i % 64) & 1 ? -v : v;
    }
    int shared = mp_ref_gemm_x(x->x, (uint32_t)M, K, x->xt, x->a);
    assert(shared);
    (void)shared;
    mp_kernel_block_x(x->x, (uint32_t)M, (size_t)K, x->xk);
    x->K = K, x->used = ++nu->clock;
    return x;
}

/* The reference, when each tile computes its own rows' (mp_numeric_compare's ref_threadsafe). */
typedef struct tile_ref {
    mp_ref_rows_fn ref;
    void *ctx;
} tile_ref;

/* Tile i of a group of cn rows (its rows cr: one chunk, or up to GROUP_CHUNKS of them when each
 * tile launches its own and computes its own reference) by thread t: the device's values and
 * products (its own launches, or the chunk's), compared with the reference; y, yr and s into
 * the arrays [M][rows of the chunk] of its chunk, chunk c's at c * CHUNK_ROWS * M. */
_Static_assert(CHUNK_ROWS % TILE_ROWS == 0 && CHUNK_ROWS % TILE_SPREAD == 0, "a tile lies in one chunk");
_Static_assert(TILE_ROWS <= TILE_MAX && TILE_SPREAD <= TILE_MAX, "the per-thread buffers hold a tile");
static void run_tile(mp_kernel_job *job, bufs *b, const xset *xs, const uint32_t *cr, uint32_t cn, uint32_t i, int t,
                     uint64_t K, uint32_t M, const tile_ref *tr, tile_res *res)
{
    uint32_t t0 = i * b->tile, tn = cn - t0 < b->tile ? cn - t0 : b->tile;
    float *dev = b->dev + (uint64_t)t0 * K, *y = b->ty + (uint64_t)t * (TILE_MAX * M + MP_KERNEL_GUARD);
    double *yr = b->tyr + (uint64_t)t * TILE_MAX * M, *s = b->ts + (uint64_t)t * TILE_MAX * M;
    const float *refv = b->refv + (uint64_t)t0 * K;
    res->rc = MP_OK;
    if (tr) {
        float *own = b->trefv + (uint64_t)t * TILE_MAX * K;
        res->rc = tr->ref(tr->ctx, cr + t0, tn, own, &res->err);
        if (res->rc != MP_OK) return;
        refv = own;
    }
    if (b->per_tile) {
        dev = b->dev + (uint64_t)t * b->dev_stride;
        /* dev is NaN (bufs_alloc, compare_values); one decode for both kernels */
        res->rc = mp_kernel_dequant_gemm_prefilled(job, cr + t0, tn, dev, y, &res->err);
        if (res->rc != MP_OK) return;
    }
    compare_values(dev, refv, (uint64_t)tn * K, b->per_tile, res);
    if (res->first != UINT64_MAX) res->first += (uint64_t)t0 * K;
    mp_ref_gemm(refv, tn, K, xs->xt, xs->a, M, yr, s);
    uint32_t c0 = t0 / CHUNK_ROWS * CHUNK_ROWS, ccn = cn - c0 < CHUNK_ROWS ? cn - c0 : CHUNK_ROWS;
    uint64_t at = (uint64_t)c0 * M + (t0 - c0);
    for (uint64_t m = 0; m < M; m++)
        for (uint32_t j = 0; j < tn; j++) {
            if (b->per_tile) b->y[at + m * ccn + j] = y[m * tn + j];
            b->yr[at + m * ccn + j] = yr[m * tn + j], b->s[at + m * ccn + j] = s[m * tn + j];
        }
}

/* The rows of a tile of cr (cn rows of a group of chunks): TILE_ROWS when they are consecutive
 * (--full), else TILE_SPREAD (runs of sampled rows). */
static uint32_t tile_of(const uint32_t *cr, uint32_t cn)
{
    return cr[cn - 1] - cr[0] + 1 == cn ? TILE_ROWS : TILE_SPREAD;
}

#define MIN_PARALLEL 32768u /* values a launch of tiles needs to wake the other threads for */

/* Whether each run of consecutive rows that a tile of cr hands the reference starts at a
 * multiple of 8 (ref_threadsafe 1). */
static int runs_from_8(const uint32_t *cr, uint32_t cn)
{
    uint32_t tile = tile_of(cr, cn);
    for (uint32_t i = 0; i < cn; i++)
        if ((i % tile == 0 || cr[i] != cr[i - 1] + 1) && cr[i] % 8 != 0) return 0;
    return 1;
}

/* The tiles of one group of chunks, over the threads; then their results in row order, as one
 * pass over the chunks would have found them. */
static mp_errcode run_chunk(mp_kernel_job *job, bufs *b, const xset *xs, const uint32_t *cr, uint32_t cn, uint64_t K,
                            uint32_t M, const tile_ref *tr, mp_vtensor *vt, acc *a, mp_err *err)
{
    tile_res *res = b->res;
    b->tile = tile_of(cr, cn);
    long long nt = (cn + b->tile - 1) / b->tile;
    assert(nt <= (long long)MAX_TILES);
#pragma omp parallel num_threads(b->nthreads) if (nt > 1 && (uint64_t)cn * K >= MIN_PARALLEL)
    {
        int t = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (long long i = 0; i < nt; i++) run_tile(job, b, xs, cr, cn, (uint32_t)i, t, K, M, tr, &res[i]);
    }
    uint64_t bad = 0;
    int all_nan = 1;
    for (long long i = 0; i < nt; i++) {
        if (res[i].rc != MP_OK) {
            *err = res[i].err;
            return res[i].rc;
        }
        bad += res[i].bad;
        all_nan &= res[i].all_nan;
        if (res[i].first != UINT64_MAX && a->first_row < 0) {
            a->first_row = cr[res[i].first / K];
            a->first_k = (int64_t)(res[i].first % K);
            a->first_got = res[i].got, a->first_want = res[i].want;
        }
    }
    vt->bad_values += bad;
    a->all_nan &= bad != 0 && all_nan;
    return MP_OK;
}

mp_errcode mp_numeric_compare(mp_numerics *nu, const mp_kernel_data *kd, uint64_t N, uint64_t K, const char *name,
                              mp_ref_rows_fn ref, void *ctx, int ref_threadsafe, mp_vtensor *vt,
                              mp_verify_report *r, mp_err *err)
{
    uint64_t M = nu->o->m;
    uint32_t want = nu->o->rows;
    bufs *b = &nu->b;
    mp_kernel_job *job = NULL;
    mp_errcode rc = mp_kernel_upload(nu->dev, kd, &job, err);
    if (rc != MP_OK) {
        if (!err->tensor[0]) snprintf(err->tensor, sizeof err->tensor, "%s", name);
        return rc;
    }
    uint64_t n_want = mp_verify_sample_count(N, want), chunk = n_want < CHUNK_ROWS ? n_want : CHUNK_ROWS;
    uint32_t gmax = b->per_tile ? GROUP_CHUNKS * CHUNK_ROWS : CHUNK_ROWS;
    const xset *xs = xset_for(nu, K);
    if (!xs || !bufs_reserve(b, n_want, chunk, n_want < gmax ? n_want : gmax, M, K)) {
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        goto done;
    }
    mp_kernel_use_x(job, xs->xk, (uint32_t)M);
    uint32_t nrows = mp_verify_sample_rows(N, want, b->rows);
    vt->rows = nrows;
    if (nrows == 0) {
        vt->status = MP_VS_FAIL;
        rc = mp_vfind(r, MP_VS_FAIL, "numerics", "%s: no rows to check (N = 0)", name) == MP_OK
                 ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
        goto done;
    }
    vt->y_min = vt->ref_min = INFINITY;
    vt->y_max = vt->ref_max = -INFINITY;
    double gamma = mp_verify_gamma(K + 1), gamma_p = mp_verify_gamma_prob(K + 1);
    double eta = (double)(K + 1) * 0x1p-149; /* underflow: each f32 product may lose up to 2^-150 */
    acc a = {.first_row = -1, .all_nan = 1};
    b->nan = 0; /* until every tile has compared (and so refilled) its values */
    for (uint32_t c0 = 0, cn = 0; c0 < nrows && rc == MP_OK; c0 += cn) {
        const uint32_t *cr = b->rows + c0;
        tile_ref tr = {ref, ctx};
        int own_ref = 0;
        for (int pass = 0; pass < 2 && !own_ref; pass++) { /* a group of chunks when each tile has its own reference */
            uint32_t lim = pass == 0 ? gmax : CHUNK_ROWS;
            cn = nrows - c0 < lim ? nrows - c0 : lim;
            own_ref = b->per_tile && (ref_threadsafe == 2 || (ref_threadsafe == 1 && runs_from_8(cr, cn)));
        }
        if (!own_ref) rc = ref(ctx, cr, cn, b->refv, err);
        if (rc == MP_OK && !b->per_tile) rc = mp_kernel_dequant_in_place(job, cr, cn, b->dev, err);
        if (rc == MP_OK && !b->per_tile) rc = mp_kernel_gemm_in_place(job, cr, cn, b->y, err);
        if (rc == MP_OK) rc = run_chunk(job, b, xs, cr, cn, K, (uint32_t)M, own_ref ? &tr : NULL, vt, &a, err);
        if (rc != MP_OK) {
            if (!err->tensor[0]) snprintf(err->tensor, sizeof err->tensor, "%s", name);
            break;
        }
        for (uint32_t s0 = 0; s0 < cn; s0 += CHUNK_ROWS) /* judged chunk by chunk, as ever */
            compare_outputs(b->y + (uint64_t)s0 * M, b->yr + (uint64_t)s0 * M, b->s + (uint64_t)s0 * M, M,
                            cn - s0 < CHUNK_ROWS ? cn - s0 : CHUNK_ROWS, gamma, eta, gamma_p, vt, &a);
    }
    if (rc == MP_OK) rc = judge(&a, nrows, K, name, vt, r, err);
    b->nan = rc == MP_OK;
done:
    mp_kernel_job_free(job);
    return rc;
}


/* The reference rows of a quantized linear, for mp_numeric_compare. */
typedef struct qref {
    const mp_st_model *m;
    const mp_qlinear *q;
    const mp_ref_groups *grp; /* read once per linear */
    float *tmp;               /* ref_rows' */
} qref;

static mp_errcode qref_rows(void *ctx, const uint32_t *rows, uint32_t nrows, float *out, mp_err *err)
{
    qref *q = ctx;
    return ref_rows(q->m, q->q, q->grp, rows, nrows, out, &q->tmp, err);
}

/* Tensor t's bytes for a kernel: in place in its file's mapping (mp_st_file_map) when there is
 * one and they lie 4-byte aligned, so that a sampled check reads the pages of its rows, not the
 * tensor; else read into *own (the caller frees it). */
static mp_errcode kernel_bytes(const mp_st_model *m, const mp_tensor *t, void **own, const void **at, size_t *bytes,
                               mp_err *err)
{
    const uint8_t *map = t ? mp_st_file_map(m, t->file) : NULL;
    *own = NULL, *at = NULL, *bytes = 0;
    if (map && (uintptr_t)(map + t->offset) % 4 == 0) {
        *at = map + t->offset, *bytes = (size_t)t->n_bytes;
        return MP_OK;
    }
    MP_FORWARD(mp_verify_read_whole(m, t, own, bytes, err));
    *at = *own;
    return MP_OK;
}

/* Whether the reference rows of rl may be read by several threads at once (mp_numeric_compare's
 * ref_threadsafe): plain files are read by pread or from a mapping (a compressed file is a
 * stream); AWQ's runs from a multiple of 8 need no shared scratch (qref.tmp), other layouts'
 * runs never do. */
static int qref_threadsafe(const mp_st_model *m, const mp_qlinear *q)
{
    const mp_tensor *t[] = {q->qweight, q->scales, q->qzeros, q->g_idx};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (t[i] && mp_st_file_compression(m, t[i]->file) != MP_COMPRESS_NONE) return 0;
    return q->pack == MP_QPACK_N8_INTERLEAVED ? 1 : 2;
}

/* The kernel data of a packed-integer linear: codes, scales, zero points and g_idx as stored,
 * in place or read into own[0..3] (the caller frees them). */
static mp_errcode int_kernel_data(const mp_st_model *om, const mp_qlinear *ol, mp_kernel_data *kd, void *own[4],
                                  mp_err *err)
{
    mp_dtype sdt = ol->scales->dtype;
    if (sdt != MP_DTYPE_F16 && sdt != MP_DTYPE_BF16 && sdt != MP_DTYPE_F32)
        return mp_errf_at(err, MP_E_UNSUPPORTED, NULL, ol->scales->name, -1, "scales of dtype %s", mp_dtype_name(sdt));
    MP_FORWARD(kernel_bytes(om, ol->qweight, &own[0], &kd->qw, &kd->qw_bytes, err));
    MP_FORWARD(kernel_bytes(om, ol->scales, &own[1], &kd->sc, &kd->sc_bytes, err));
    if (ol->zero != MP_QZERO_IMPLIED) MP_FORWARD(kernel_bytes(om, ol->qzeros, &own[2], &kd->zp, &kd->zp_bytes, err));
    MP_FORWARD(kernel_bytes(om, ol->g_idx, &own[3], &kd->gidx, &kd->gidx_bytes, err));
    uint32_t *P = kd->P;
    P[MP_P_N] = (uint32_t)ol->n_rows;
    P[MP_P_K] = (uint32_t)ol->k_cols;
    P[MP_P_G] = (uint32_t)ol->n_groups;
    P[MP_P_GSIZE] = (uint32_t)ol->group_size;
    P[MP_P_BITS] = ol->bits;
    P[MP_P_ZOFF] = ol->zero_offset;
    P[MP_P_XOR] = ol->code_xor;
    P[MP_P_ZMODE] = ol->zero != MP_QZERO_IMPLIED;
    P[MP_P_PER] = ol->fields_per_word;
    P[MP_P_SDT] = sdt == MP_DTYPE_F16 ? 0 : sdt == MP_DTYPE_BF16 ? 1 : 2;
    P[MP_P_SSTRIDE] = (uint32_t)ol->scales->shape[1];
    P[MP_P_QSTRIDE] = (uint32_t)ol->qweight->shape[1];
    P[MP_P_ZSTRIDE] = ol->qzeros && P[MP_P_ZMODE] ? (uint32_t)ol->qzeros->shape[1] : 0;
    P[MP_P_GIDX] = ol->g_idx != NULL;
    return MP_OK;
}

static mp_errcode check_linear(const mp_numeric_ctx *c, const mp_st_model *om, const mp_qlinear *ol,
                               const mp_st_model *rm, const mp_qlinear *rl, const char *name,
                               mp_verify_report *r, mp_err *err)
{
    mp_kfamily fam;
    if (!family_of(ol, &fam))
        return mp_errf_at(err, MP_E_UNSUPPORTED, NULL, ol->prefix, -1,
                          "no device kernel reads this layout (%s, %s); numerics cannot be checked",
                          mp_qmethod_name(ol->method), ol->format ? ol->format : "?");
    mp_vtensor *vt = mp_vtensor_add(r, name, mp_kfamily_name(fam), ol->n_rows, ol->k_cols, c->o->m);
    if (!vt) return mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rl->n_rows != ol->n_rows || rl->k_cols != ol->k_cols) {
        vt->status = MP_VS_FAIL;
        return mp_vfind(r, MP_VS_FAIL, "numerics", "%s: [%llu, %llu], the reference '%s' is [%llu, %llu]", name,
                        (unsigned long long)ol->n_rows, (unsigned long long)ol->k_cols, rl->prefix,
                        (unsigned long long)rl->n_rows, (unsigned long long)rl->k_cols) == MP_OK
                   ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    uint64_t big = ol->n_rows | ol->k_cols | ol->qweight->shape[1] | ol->scales->shape[1] |
                   (ol->qzeros ? ol->qzeros->shape[1] : 0);
    if (big > INT32_MAX)
        return mp_errf_at(err, MP_E_UNSUPPORTED, NULL, ol->prefix, -1,
                          "dimensions beyond 2^31 (N %llu, K %llu): the kernels index with 32 bits",
                          (unsigned long long)ol->n_rows, (unsigned long long)ol->k_cols);
    MP_FORWARD(hold(om, ol->qweight, om == c->out ? c->out_held : c->src_held, err));
    MP_FORWARD(hold(rm, rl->qweight, rm == c->out ? c->out_held : c->src_held, err));
    mp_kernel_data kd = {.family = fam};
    void *own[4] = {NULL, NULL, NULL, NULL};
    mp_errcode rc = ol->scheme && ol->scheme->elem != MP_ELEM_INT ? mp_float_kernel_data(om, ol, &kd, own, err)
                                                                  : int_kernel_data(om, ol, &kd, own, err);
    if (rc == MP_OK) {
        mp_ref_groups *grp = NULL;
        qref qr = {rm, rl, NULL, NULL};
        rc = mp_ref_groups_read(rm, rl, &grp, err);
        qr.grp = grp;
        if (rc == MP_OK)
            rc = mp_numeric_compare(c->nu, &kd, ol->n_rows, ol->k_cols, name, qref_rows, &qr,
                                    qref_threadsafe(rm, rl), vt, r, err);
        mp_ref_groups_free(grp);
        free(qr.tmp);
    }
    for (int i = 0; i < 4; i++) free(own[i]);
    return rc;
}


/* The index of the linear named `prefix` (linears are in natural prefix order), or SIZE_MAX. */
static size_t find_linear(const mp_qmodel *q, const char *prefix)
{
    size_t lo = 0, hi = mp_qmodel_n_linears(q);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *p = mp_qmodel_linear(q, mid)->prefix;
        int cmp = mp_natcmp(p, prefix);
        if (cmp == 0) {
            if (strcmp(p, prefix) == 0) return mid;
            break; /* equal in natural order only ("x01" and "x1"): scan */
        }
        if (cmp < 0) lo = mid + 1;
        else hi = mid;
    }
    for (size_t i = 0; lo < hi && i < mp_qmodel_n_linears(q); i++)
        if (strcmp(mp_qmodel_linear(q, i)->prefix, prefix) == 0) return i;
    return SIZE_MAX;
}

/* The reference linear for an output linear: the source's of the same name, or itself. */
static mp_errcode check_with_reference(const mp_numeric_ctx *c, const mp_st_model *om, const mp_qlinear *ol,
                                       const char *src_prefix, const char *name, mp_verify_report *r, mp_err *err)
{
    if (!c->src) return check_linear(c, om, ol, om, ol, name, r, err);
    size_t si = find_linear(c->srcq, src_prefix);
    const mp_qlinear *sl = si == SIZE_MAX ? NULL : mp_qmodel_linear(c->srcq, si);
    if (sl && c->src_seen) c->src_seen[si] = 1;
    if (!sl)
        return mp_vfind(r, MP_VS_FAIL, "numerics", "%s: the source has no quantized linear '%s'", name, src_prefix) == MP_OK
                   ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    return check_linear(c, om, ol, c->src, sl, name, r, err);
}

/* A row range [r0, r0 + rows) of expert e of a stacked cutlass tensor, as a linear of its own. */
static void slice(const mp_tensor *t, uint64_t e, uint64_t r0, uint64_t rows, mp_tensor *out)
{
    *out = *t;
    uint64_t row_bytes = t->shape[2] * (mp_dtype_bits(t->dtype) / 8);
    uint64_t at = (e * t->shape[1] + r0) * row_bytes;
    out->n_dims = 2;
    out->shape[0] = rows;
    out->shape[1] = t->shape[2];
    out->n_elems = rows * t->shape[2];
    out->n_bytes = rows * row_bytes;
    out->begin += at;
    out->offset += at;
}

/* Stacked experts ([E, N, K/2], --stack-experts) exist in one layout only. */
static const mp_scheme *stacked_scheme(void) { return mp_scheme_find("cutlass-int4"); }

/* Expert e's row range [r0, r0 + rows) of a stacked cutlass pair, as a linear of its own. */
static void stacked_linear(const mp_tensor *qw, const mp_tensor *sc, uint64_t e, uint64_t r0, uint64_t rows,
                           uint32_t code_xor, const char *name, mp_tensor *q, mp_tensor *s, mp_qlinear *l)
{
    uint64_t K = qw->shape[2] * 2, G = sc->shape[2];
    slice(qw, e, r0, rows, q);
    slice(sc, e, r0, rows, s);
    *l = (mp_qlinear){.prefix = (char *)name, .method = MP_QM_MODELPREP, .scheme = stacked_scheme(),
                      .pack = MP_QPACK_K2_BYTES,
                      .zero = MP_QZERO_IMPLIED, .format = "cutlass-int4", .bits = 4, .code_xor = code_xor,
                      .n_rows = rows, .k_cols = K, .group_size = K / G, .n_groups = G, .sym = 1,
                      .scales_nk = 1, .qweight = q, .scales = s};
}

static int stacked_pair_ok(const mp_tensor *qw, const mp_tensor *sc)
{
    return qw->n_dims == 3 && sc->n_dims == 3 && sc->shape[0] == qw->shape[0] && sc->shape[1] == qw->shape[1] &&
           sc->shape[2] > 0 && (qw->shape[2] * 2) % sc->shape[2] == 0;
}

/* Each expert slice of a stacked tensor against the source: the same stacked tensor when the
 * source has it (a split of a converted checkpoint), else the source's per-expert linears. */
static void step(const mp_numeric_ctx *c) { mp_report_add(c->progress, 1); }

/* Whether the quantized linears may be checked several at once, one per thread: sampled
 * checks on the cpu backend (whose launches run in any thread) of checkpoints whose files are
 * read in place (hold() loads a compressed file for one linear at a time). A sampled check of a
 * small linear has too few rows to spread over the threads, and a MoE model has thousands. */
static int linears_in_parallel(const mp_numeric_ctx *c, int threads)
{
    if (threads < 2 || c->o->rows == 0 || !mp_device_threadsafe(mp_numerics_device(c->nu))) return 0;
    const mp_st_model *ms[2] = {c->out, c->src};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; ms[k] && i < mp_st_n_files(ms[k]); i++)
            if (mp_st_file_compression(ms[k], i) != MP_COMPRESS_NONE) return 0;
    return 1;
}

#define LINEAR_BATCH 64u /* linears checked at once, then merged into the report in order */

typedef struct linear_res {
    mp_verify_report r; /* its findings and table rows */
    mp_errcode rc;
    mp_err err;
} linear_res;

/* r += the findings and table rows of o, in order. */
static mp_errcode report_append(mp_verify_report *r, const mp_verify_report *o, mp_err *err)
{
    mp_vfinding *f = o->n_findings ? realloc(r->findings, (r->n_findings + o->n_findings) * sizeof *f) : r->findings;
    mp_vtensor *t = o->n_numeric ? realloc(r->numeric, (r->n_numeric + o->n_numeric) * sizeof *t) : r->numeric;
    if (f) r->findings = f;
    if (t) r->numeric = t;
    if ((o->n_findings && !f) || (o->n_numeric && !t)) return mp_errf(err, MP_E_NOMEM, "out of memory");
    if (o->n_findings) memcpy(r->findings + r->n_findings, o->findings, o->n_findings * sizeof *f);
    if (o->n_numeric) memcpy(r->numeric + r->n_numeric, o->numeric, o->n_numeric * sizeof *t);
    r->n_findings += o->n_findings, r->n_numeric += o->n_numeric;
    r->n_fail += o->n_fail, r->n_warn += o->n_warn;
    return MP_OK;
}

/* One check of a list (a linear, an expert slice), into r: check_items's work. */
typedef mp_errcode (*item_fn)(const mp_numeric_ctx *c, const void *arg, size_t i, mp_verify_report *r, mp_err *err);

/* Items 0 .. n-1 of fn, in order (a progress step after each when `steps`); or, where
 * linears_in_parallel, LINEAR_BATCH at a time over the threads, each into a report of its own
 * (one mp_numerics per thread), merged in order: the same report, and the same first error
 * (with what its item had found), as one after the other. */
static mp_errcode check_items(const mp_numeric_ctx *c, size_t n, item_fn fn, const void *arg, int steps,
                              mp_verify_report *r, mp_err *err)
{
    int T = omp_get_max_threads();
    if (!linears_in_parallel(c, T) || n < 2) {
        for (size_t i = 0; i < n; i++) {
            MP_FORWARD(fn(c, arg, i, r, err));
            if (steps) step(c);
        }
        return MP_OK;
    }
    linear_res *res = calloc(LINEAR_BATCH, sizeof *res);
    mp_numerics **nus = calloc((size_t)T, sizeof *nus);
    mp_errcode rc = res && nus ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    for (int t = 0; rc == MP_OK && t < T; t++)
        if (!(nus[t] = mp_numerics_new(mp_numerics_device(c->nu), c->o, 1)))
            rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    for (size_t b0 = 0; rc == MP_OK && b0 < n; b0 += LINEAR_BATCH) {
        long long bn = (long long)(n - b0 < LINEAR_BATCH ? n - b0 : LINEAR_BATCH);
#pragma omp parallel num_threads(T)
        {
            mp_numeric_ctx tc = *c;
            tc.nu = nus[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 1)
            for (long long i = 0; i < bn; i++) {
                res[i].err = (mp_err)MP_ERR_INIT;
                res[i].rc = fn(&tc, arg, b0 + (size_t)i, &res[i].r, &res[i].err);
            }
        }
        for (long long i = 0; i < bn; i++) {
            if (rc == MP_OK) rc = report_append(r, &res[i].r, err);
            if (rc == MP_OK && res[i].rc != MP_OK) *err = res[i].err, rc = res[i].rc;
            if (rc == MP_OK && steps) step(c);
            mp_verify_report_free(&res[i].r);
        }
    }
    for (int t = 0; nus && t < T; t++) mp_numerics_free(nus[t]);
    free(nus);
    free(res);
    return rc;
}

/* The expert slices of one stacked tensor (check_stacked), for check_items: item i is expert
 * i / parts, part i % parts (gate and up of w13, or down of w2). */
typedef struct stacked_job {
    const mp_tensor *qw, *sc, *sq, *ss; /* the output's codes and scales; the source's, or NULL */
    int w13;
    size_t plen;                        /* the block prefix's length in qw->name */
    uint32_t code_xor, src_xor;
} stacked_job;

static mp_errcode stacked_item(const mp_numeric_ctx *c, const void *arg, size_t i, mp_verify_report *r, mp_err *err)
{
    static const char *const parts13[2] = {"gate_proj", "up_proj"};
    const stacked_job *j = arg;
    int nparts = j->w13 ? 2 : 1, p = (int)(i % (size_t)nparts);
    uint64_t e = i / (size_t)nparts, rows = j->qw->shape[1] / (uint64_t)nparts;
    const char *part = j->w13 ? parts13[p] : "down_proj";
    char name[200], src[256];
    snprintf(name, sizeof name, "%s[%llu].%s", j->qw->name, (unsigned long long)e, part);
    snprintf(src, sizeof src, "%.*s.%llu.%s", (int)j->plen, j->qw->name, (unsigned long long)e, part);
    mp_tensor q, s, q2, s2;
    mp_qlinear l, l2;
    stacked_linear(j->qw, j->sc, e, (uint64_t)p * rows, rows, j->code_xor, name, &q, &s, &l);
    if (j->sq && e >= j->sq->shape[0])
        return mp_errf_at(err, MP_E_INPUT, mp_st_dir(c->src), j->qw->name, -1,
                          "the source's stacked tensor has another shape");
    if (!j->sq) return check_with_reference(c, c->out, &l, src, name, r, err);
    stacked_linear(j->sq, j->ss, e, (uint64_t)p * rows, rows, j->src_xor, name, &q2, &s2, &l2);
    return check_linear(c, c->out, &l, c->src, &l2, name, r, err);
}

static mp_errcode check_stacked(const mp_numeric_ctx *c, const mp_tensor *qw, const mp_tensor *sc, int w13,
                                uint32_t code_xor, uint32_t src_xor, mp_verify_report *r, mp_err *err)
{
    size_t plen = strlen(qw->name) - strlen(w13 ? ".w13_qweight" : ".w2_qweight");
    if (!stacked_pair_ok(qw, sc))
        return mp_errf_at(err, MP_E_INPUT, NULL, sc->name, -1, "stacked scales do not match '%s'", qw->name);
    if (w13 && qw->shape[1] % 2)
        return mp_errf_at(err, MP_E_INPUT, NULL, qw->name, -1, "w13 has an odd number of rows (%llu): not gate + up",
                          (unsigned long long)qw->shape[1]);
    const mp_tensor *sq = c->src ? mp_st_find(c->src, qw->name) : NULL;
    const mp_tensor *ss = c->src ? mp_st_find(c->src, sc->name) : NULL;
    if (sq && (!ss || !stacked_pair_ok(sq, ss) || sq->dtype != MP_DTYPE_U8))
        return mp_errf_at(err, MP_E_INPUT, c->src ? mp_st_dir(c->src) : NULL, qw->name, -1,
                          "the source's stacked tensor does not match the output's");
    if (sq && sq->shape[1] != qw->shape[1])
        return mp_errf_at(err, MP_E_INPUT, mp_st_dir(c->src), qw->name, -1, "the source's stacked tensor has another shape");
    stacked_job j = {qw, sc, sq, ss, w13, plen, code_xor, src_xor};
    return check_items(c, qw->shape[0] * (w13 ? 2u : 1u), stacked_item, &j, 0, r, err);
}

static uint32_t stacked_code_xor(const mp_st_model *m)
{
    if (!m) return 0;
    char *path = mp_path_join(mp_st_dir(m), "config.json"), *text = NULL;
    size_t len;
    mp_err e = MP_ERR_INIT;
    uint32_t x = 0;
    if (path && mp_read_small_file(path, 1u << 24, &text, &len, &e) == MP_OK) {
        cJSON *j = cJSON_Parse(text);
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "quantization_config");
        const cJSON *i4 = cJSON_GetObjectItemCaseSensitive(q, "int4");
        if (cJSON_IsString(i4) && strcmp(i4->valuestring, "s4") == 0) x = 8;
        cJSON_Delete(j);
    }
    free(path);
    free(text);
    return x;
}

/* One expert's [K, np] of a stacked dense output, read whole when a row of it is first asked for. */
typedef struct kn_slab {
    uint64_t e;
    uint8_t *bytes;
} kn_slab;

/* Row n of the source linear's W [N, K] in the dense output w: w itself, or stacked gpt-oss
 * experts [E, K, np] (doc/formats/fp4.md §5), where row n is expert n / np, column n % np. */
static mp_errcode read_dense_row(const mp_st_model *m, const mp_tensor *w, uint64_t np, uint64_t n, uint64_t K,
                                 unsigned es, kn_slab *slab, uint8_t *got, mp_err *err)
{
    if (!np) return mp_st_read(m, w, n * K * es, got, (size_t)(K * es), err);
    uint64_t e = n / np, j = n % np;
    size_t bytes = (size_t)(K * np * es);
    if (!slab->bytes && !(slab->bytes = malloc(bytes))) return mp_errf(err, MP_E_NOMEM, "out of memory");
    if (slab->e != e) {
        slab->e = UINT64_MAX;
        MP_FORWARD(mp_st_read(m, w, e * bytes, slab->bytes, bytes, err));
        slab->e = e;
    }
    for (uint64_t k = 0; k < K; k++) memcpy(got + k * es, slab->bytes + (k * np + j) * es, es);
    return MP_OK;
}

/* A dense output weight that was dequantized from a quantized source linear (`convert --to
 * f32|f16|bf16`): its sampled rows must equal the reference rounded once to the output dtype,
 * bit for bit. There is no kernel to run: the check is the CPU's, and says so. */
static mp_errcode check_dense(const mp_numeric_ctx *c, const mp_tensor *w, const mp_qlinear *sl, mp_verify_report *r,
                              mp_err *err)
{
    uint64_t N = sl->n_rows, K = sl->k_cols;
    char layout[24];
    snprintf(layout, sizeof layout, "dense %s (cpu)", mp_dtype_name(w->dtype));
    mp_vtensor *vt = mp_vtensor_add(r, w->name, layout, N, K, 0);
    if (!vt) return mp_errf(err, MP_E_NOMEM, "out of memory");
    vt->y_min = vt->y_max = vt->ref_min = vt->ref_max = NAN; /* m = 0: no y = x w^T here */
    vt->max_abs_err = vt->nmse = vt->nmse_bound = vt->cosine = vt->zero_frac = NAN;
    uint64_t np = sl->scheme->dense_experts_kn && sl->n_experts ? N / sl->n_experts : 0;
    int fits = np ? w->n_dims == 3 && w->shape[0] == sl->n_experts && w->shape[1] == K && w->shape[2] == np
                  : w->n_dims == 2 && w->shape[0] == N && w->shape[1] == K;
    if (!fits) {
        vt->status = MP_VS_FAIL;
        char want[96];
        if (np) snprintf(want, sizeof want, "[%llu, %llu, %llu]", (unsigned long long)sl->n_experts,
                         (unsigned long long)K, (unsigned long long)np);
        else snprintf(want, sizeof want, "[%llu, %llu]", (unsigned long long)N, (unsigned long long)K);
        return mp_vfind(r, MP_VS_FAIL, "numerics", "%s: not %s like the source's '%s'", w->name, want,
                        sl->prefix) == MP_OK
                   ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    unsigned es = mp_dtype_bits(w->dtype) / 8;
    MP_FORWARD(hold(c->out, w, c->out_held, err));
    MP_FORWARD(hold(c->src, sl->qweight, c->src_held, err));
    uint32_t *rows = malloc(((size_t)mp_verify_sample_count(N, c->o->rows) + 1) * sizeof *rows);
    float *ref = malloc((size_t)K * sizeof *ref), *tmp = NULL;
    uint8_t *got = malloc((size_t)K * es);
    mp_errcode rc = rows && ref && got ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    uint32_t nrows = rc == MP_OK ? mp_verify_sample_rows(N, c->o->rows, rows) : 0;
    int64_t first = -1, first_k = 0;
    kn_slab slab = {UINT64_MAX, NULL};
    for (uint32_t i = 0; i < nrows && rc == MP_OK; i++) {
        rc = ref_rows(c->src, sl, NULL, rows + i, 1, ref, &tmp, err);
        if (rc == MP_OK) rc = read_dense_row(c->out, w, np, rows[i], K, es, &slab, got, err);
        for (uint64_t k = 0; rc == MP_OK && k < K; k++) {
            uint32_t want, have = es == 2 ? (uint32_t)(got[2 * k] | got[2 * k + 1] << 8) : mp_read_le32(got + 4 * k);
            if (w->dtype == MP_DTYPE_F16) want = mp_f32_to_f16(ref[k]);
            else if (w->dtype == MP_DTYPE_BF16) want = mp_f32_to_bf16(ref[k]);
            else memcpy(&want, &ref[k], 4);
            if (have != want && vt->bad_values++ == 0) first = rows[i], first_k = (int64_t)k;
        }
    }
    vt->rows = nrows;
    free(rows), free(ref), free(tmp), free(got), free(slab.bytes);
    if (rc != MP_OK) return rc;
    vt->status = vt->bad_values ? MP_VS_FAIL : MP_VS_PASS;
    if (vt->bad_values &&
        mp_vfind(r, MP_VS_FAIL, "numerics",
                 "%s: %llu of %llu values differ from the source's dequantization rounded to %s; first at row %lld, "
                 "column %lld",
                 w->name, (unsigned long long)vt->bad_values, (unsigned long long)nrows * K, mp_dtype_name(w->dtype),
                 (long long)first, (long long)first_k) != MP_OK)
        return mp_errf(err, MP_E_NOMEM, "out of memory");
    return MP_OK;
}

/* ---------------------------------------------------------------- raw GGUF blocks in safetensors */

/* The rows of a U8 [rows, row bytes] tensor holding ggml blocks, dequantized by formats/. */
typedef struct blockref {
    const mp_st_model *m;
    const mp_tensor *t;
    uint32_t type;
    uint64_t k;
    uint8_t *buf;
} blockref;

static mp_errcode blockref_rows(void *ctx, const uint32_t *rows, uint32_t nrows, float *out, mp_err *err)
{
    const blockref *b = ctx;
    uint64_t rb = b->t->shape[1];
    for (uint32_t i = 0; i < nrows; i++) {
        MP_FORWARD(mp_st_read(b->m, b->t, rows[i] * rb, b->buf, (size_t)rb, err));
        MP_FORWARD(mp_gguf_dequantize(b->type, b->buf, out + (uint64_t)i * b->k, b->k, err));
    }
    return MP_OK;
}

/* A layer file of a GGUF split names each tensor's ggml type ("gguf.type.<name>") and ne
 * ("gguf.ne.<name>"): Q4_0, Q4_1 and Q8_0 run kernels/gguf.cl on the device; other types are
 * counted into *no_kernel. */
static mp_errcode check_gguf_blocks(const mp_numeric_ctx *c, size_t fi, uint64_t *no_kernel, mp_verify_report *r,
                                    mp_err *err)
{
    const mp_st_model *m = c->out;
    for (size_t j = 0; j < mp_st_file_n_meta(m, fi); j++) {
        const char *key, *value;
        mp_st_file_meta(m, fi, j, &key, &value);
        if (strncmp(key, "gguf.type.", 10) != 0) continue;
        const mp_tensor *t = mp_st_find(m, key + 10);
        uint32_t type = MP_GGUF_TYPE_COUNT;
        for (uint32_t ty = 0; ty < MP_GGUF_TYPE_COUNT && type == MP_GGUF_TYPE_COUNT; ty++)
            if (mp_gguf_type_block(ty) && strcmp(mp_gguf_type_name(ty), value) == 0) type = ty;
        if (!t || t->dtype != MP_DTYPE_U8 || t->n_dims != 2 || type == MP_GGUF_TYPE_COUNT)
            return mp_errf_at(err, MP_E_INPUT, mp_st_file_name(m, fi), key + 10, -1,
                              "metadata names a ggml type '%.40s' for no U8 [rows, row bytes] tensor", value);
        if (type != MP_GGUF_Q4_0 && type != MP_GGUF_Q4_1 && type != MP_GGUF_Q8_0) {
            if (mp_gguf_type_block(type) > 1) (*no_kernel)++;
            continue;
        }
        uint64_t k = t->shape[1] / mp_gguf_type_size(type) * mp_gguf_type_block(type);
        if (t->shape[1] % mp_gguf_type_size(type) || t->shape[0] > INT32_MAX || k > INT32_MAX)
            return mp_errf_at(err, MP_E_INPUT, mp_st_file_name(m, fi), t->name, -1,
                              "rows of %llu bytes are not whole %s blocks", (unsigned long long)t->shape[1], value);
        MP_FORWARD(hold(m, t, c->out_held, err));
        mp_vtensor *vt = mp_vtensor_add(r, t->name, value, t->shape[0], k, c->o->m);
        void *bytes = NULL;
        size_t nb = 0;
        blockref br = {m, t, type, k, malloc((size_t)t->shape[1] + 1)};
        mp_errcode rc = vt && br.buf ? mp_verify_read_whole(m, t, &bytes, &nb, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
        if (rc == MP_OK) {
            static const uint16_t no_scales[2];
            mp_kernel_data kd = {.family = mp_kfamily_find("gguf"), .qw = bytes, .qw_bytes = nb, .sc = no_scales,
                                 .sc_bytes = sizeof no_scales};
            kd.P[MP_P_N] = (uint32_t)t->shape[0];
            kd.P[MP_P_K] = (uint32_t)k;
            kd.P[MP_P_BITS] = type;
            kd.P[MP_P_QSTRIDE] = (uint32_t)t->shape[1];
            kd.P[MP_P_GSIZE] = 32;
            rc = mp_numeric_compare(c->nu, &kd, t->shape[0], k, t->name, blockref_rows, &br, 0, vt, r,
                                    err);
        }
        free(bytes);
        free(br.buf);
        MP_FORWARD(rc);
    }
    return MP_OK;
}

/* The output's dense weight of source linear i, when the output holds it dequantized. */
static const mp_tensor *dense_weight(const mp_numeric_ctx *c, size_t i)
{
    const mp_qlinear *sl = mp_qmodel_linear(c->srcq, i);
    char name[300];
    snprintf(name, sizeof name, "%s%s", sl->prefix, sl->scheme->dense_experts_kn ? "" : ".weight");
    const mp_tensor *w = mp_st_find(c->out, name);
    if (!w || find_linear(c->outq, sl->prefix) != SIZE_MAX || mp_qmodel_owner(c->outq, w)) return NULL;
    if (w->dtype != MP_DTYPE_F16 && w->dtype != MP_DTYPE_BF16 && w->dtype != MP_DTYPE_F32) return NULL;
    return w;
}

/* A dense output of a float-format source (FP8, FP4, bitsandbytes) was made on the CPU, so the
 * source linear's own kernel runs on the device too, against the same reference, bit for bit:
 * the device's dequantization, rounded once, is then the output's (doc/reference.md). */
static mp_errcode check_float_source(const mp_numeric_ctx *c, const mp_qlinear *sl, mp_verify_report *r,
                                     mp_err *err)
{
    mp_kfamily fam;
    if (!sl->scheme || sl->scheme->elem == MP_ELEM_INT || !family_of(sl, &fam)) return MP_OK;
    char name[240];
    snprintf(name, sizeof name, "%s (source)", sl->prefix);
    return check_linear(c, c->src, sl, c->src, sl, name, r, err);
}

/* 1 for a stacked w13 codes tensor, 2 for w2, 0 for anything else. */
static int stacked_kind(const mp_tensor *t)
{
    size_t n = strlen(t->name);
    if (n > 12 && strcmp(t->name + n - 12, ".w13_qweight") == 0) return 1;
    if (n > 11 && strcmp(t->name + n - 11, ".w2_qweight") == 0) return 2;
    return 0;
}

/* Progress: one step per file of GGUF blocks, dense weight, quantized linear and stacked
 * tensor, in the order mp_check_numerics takes them. */
static void steps_start(const mp_numeric_ctx *c)
{
    uint64_t total = mp_st_n_files(c->out) + mp_qmodel_n_linears(c->outq);
    for (size_t i = 0; c->src && i < mp_qmodel_n_linears(c->srcq); i++) total += dense_weight(c, i) != NULL;
    for (size_t i = 0; i < mp_st_n_tensors(c->out); i++) total += stacked_kind(mp_st_tensor(c->out, i)) != 0;
    mp_report_start(c->progress, "verify", total);
}

static mp_errcode linear_item(const mp_numeric_ctx *c, const void *arg, size_t i, mp_verify_report *r, mp_err *err)
{
    (void)arg;
    const mp_qlinear *l = mp_qmodel_linear(c->outq, i);
    return check_with_reference(c, c->out, l, l->prefix, l->prefix, r, err);
}

mp_errcode mp_check_numerics(const mp_numeric_ctx *c, mp_verify_report *r, mp_err *err)
{
    uint64_t no_kernel = 0;
    steps_start(c);
    for (size_t fi = 0; fi < mp_st_n_files(c->out); fi++, step(c))
        MP_FORWARD(check_gguf_blocks(c, fi, &no_kernel, r, err));
    if (no_kernel && mp_vfind(r, MP_VS_WARN, "numerics",
                              "%llu tensors of ggml block types have no device kernel: only their bytes were checked",
                              (unsigned long long)no_kernel) != MP_OK)
        return mp_errf(err, MP_E_NOMEM, "out of memory");
    /* Dense outputs of quantized source linears. */
    for (size_t i = 0; c->src && i < mp_qmodel_n_linears(c->srcq); i++) {
        const mp_tensor *w = dense_weight(c, i);
        if (!w) continue;
        if (c->src_seen) c->src_seen[i] = 1;
        MP_FORWARD(check_dense(c, w, mp_qmodel_linear(c->srcq, i), r, err));
        MP_FORWARD(check_float_source(c, mp_qmodel_linear(c->srcq, i), r, err));
        step(c);
    }
    MP_FORWARD(check_items(c, mp_qmodel_n_linears(c->outq), linear_item, NULL, 1, r, err));
    uint32_t code_xor = 0, src_xor = 0;
    int have_xor = 0;
    for (size_t i = 0; i < mp_st_n_tensors(c->out); i++) {
        const mp_tensor *t = mp_st_tensor(c->out, i);
        int kind = stacked_kind(t);
        if (!kind) continue;
        step(c);
        if (t->n_dims != 3 || t->dtype != MP_DTYPE_U8) {
            char sh[160];
            mp_shape_format(t, sh, sizeof sh);
            if (mp_vfind(r, MP_VS_FAIL, "numerics", "%s: a stacked expert tensor of %s %s: no kernel reads it",
                         t->name, mp_dtype_name(t->dtype), sh) != MP_OK)
                return mp_errf(err, MP_E_NOMEM, "out of memory");
            continue;
        }
        size_t n = strlen(t->name);
        char sname[300];
        snprintf(sname, sizeof sname, "%.*s_scales", (int)(n - 8), t->name);
        const mp_tensor *s = mp_st_find(c->out, sname);
        if (!s) return mp_errf_at(err, MP_E_INPUT, NULL, t->name, -1, "stacked codes without '%s'", sname);
        if (!have_xor) code_xor = stacked_code_xor(c->out), src_xor = stacked_code_xor(c->src), have_xor = 1;
        MP_FORWARD(check_stacked(c, t, s, kind == 1, code_xor, src_xor, r, err));
    }
    /* Every quantized linear of the source must have been met in the output. */
    for (size_t i = 0; c->src_seen && i < mp_qmodel_n_linears(c->srcq); i++)
        if (!c->src_seen[i] &&
            mp_vfind(r, MP_VS_FAIL, "numerics", "%s: a quantized linear of the source with no counterpart in the output",
                     mp_qmodel_linear(c->srcq, i)->prefix) != MP_OK)
            return mp_errf(err, MP_E_NOMEM, "out of memory");
    return MP_OK;
}
