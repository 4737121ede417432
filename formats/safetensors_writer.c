/*
 * safetensors_writer.c - streaming safetensors output, shard planning and the index.
 *
 * The header carries every offset, so the writer needs the full list of tensors up front; after
 * that the data streams through in the order the header fixes, in chunks of any size, and at no
 * point is more than one staging buffer held. The layout is the reference writer's
 * (doc/formats/safetensors.md §5): descending element size then name, compact JSON with
 * __metadata__ first, padded with spaces so 8 + N is a multiple of 8. With the same tensors and
 * metadata the bytes equal those of Python's safetensors.save_file.
 *
 * Compressed output (mp_st_writer_open_zstd): the same bytes go through a zstd streaming
 * compressor on their way to the file, so the file decompresses to exactly what the plain writer
 * writes. The frame declares its content size (the writer knows it from the header) and carries
 * a checksum; with nbWorkers >= 1 and a job size fixed by the level and file size alone, zstd's
 * output is the same whatever the number of workers, so a resumed split writes the same bytes
 * whatever --threads says. Memory stays bounded (ZSTD_MEM_BUDGET): zstd's multithreaded mode
 * holds one compression context per worker (81 MiB each at level 19) and a round buffer of
 * (workers + 3) jobs; its default job of 4 windows (32 MiB at level 19) took a two-worker level-19
 * split to a peak RSS of 316 MiB. Jobs are therefore max(8 MiB, 2 windows), and the workers are
 * reduced until the estimate fits the budget (at level 19: one worker).
 */
#define _GNU_SOURCE
#include "formats_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
/* ZSTD_getCParams and ZSTD_estimateCCtxSize_usingCParams, for the memory bound below: declared
 * only for static linking, but exported by Debian's libzstd.so.1. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#define STAGE_BYTES (1u << 20)

struct mp_st_writer {
    int fd;
    char *path;
    mp_tensor_spec *specs;   /* copies; names owned */
    uint64_t *bytes;         /* per spec */
    size_t *order;           /* write order: indices into specs */
    size_t n;
    size_t cur;              /* position in order[] */
    uint64_t cur_left;       /* bytes still owed to order[cur] */
    uint64_t file_size;
    uint64_t written;          /* bytes that reached the file so far */
    uint8_t *stage;
    size_t staged;
    XXH3_state_t *file_hash;   /* every byte of the file */
    XXH64_state_t *tensor_hash;/* the bytes of order[cur] so far */
    uint64_t *digests;         /* per spec, once complete */
    ZSTD_CCtx *cctx;           /* compressing: every byte of the file goes through it */
    uint8_t *zout;             /* compressed bytes on their way to the file */
    size_t zout_cap;
    XXH3_state_t *disk_hash;   /* compressing: the bytes on disk */
    uint64_t disk_written;     /* bytes that reached the disk */
    uint64_t writeback_from;   /* bytes before this have been handed to writeback */
    int no_copy_range;         /* copy_file_range() refused once: write() from then on */
};

typedef struct order_key {
    mp_dtype dtype;
    const char *name;
    size_t index;
} order_key;

static int cmp_write_order(const void *pa, const void *pb)
{
    const order_key *a = pa, *b = pb;
    if (a->dtype != b->dtype) return a->dtype > b->dtype ? -1 : 1;
    return strcmp(a->name, b->name);
}

static mp_errcode writer_put(mp_st_writer *w, const void *buf, size_t len, mp_err *err);

static void free_writer(mp_st_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    if (w->specs)
        for (size_t i = 0; i < w->n; i++) free((char *)w->specs[i].name);
    free(w->specs);
    free(w->bytes);
    free(w->order);
    free(w->stage);
    free(w->path);
    free(w->digests);
    XXH3_freeState(w->file_hash);
    XXH64_freeState(w->tensor_hash);
    ZSTD_freeCCtx(w->cctx);
    free(w->zout);
    XXH3_freeState(w->disk_hash);
    free(w);
}

/* Moves past every complete tensor, sealing its digest. */
static void skip_empty(mp_st_writer *w)
{
    while (w->cur < w->n && w->cur_left == 0) {
        w->digests[w->order[w->cur]] = XXH64_digest(w->tensor_hash);
        XXH64_reset(w->tensor_hash, 0);
        w->cur++;
        if (w->cur < w->n) w->cur_left = w->bytes[w->order[w->cur]];
    }
}

static mp_errcode build_header(const mp_st_writer *w, const char *const *meta, size_t n_meta,
                               mp_buf *h, mp_err *err)
{
    mp_buf_puts(h, "{\"__metadata__\":{\"format\":\"pt\"");
    for (size_t j = 0; j < n_meta; j++) {
        mp_buf_puts(h, ",");
        mp_buf_json_str(h, meta[2 * j]);
        mp_buf_puts(h, ":");
        mp_buf_json_str(h, meta[2 * j + 1]);
    }
    mp_buf_puts(h, "}");
    uint64_t off = 0;
    for (size_t k = 0; k < w->n; k++) {
        const mp_tensor_spec *s = &w->specs[w->order[k]];
        mp_buf_puts(h, ",");
        mp_buf_json_str(h, s->name);
        mp_buf_printf(h, ":{\"dtype\":\"%s\",\"shape\":[", mp_dtype_name(s->dtype));
        for (uint32_t d = 0; d < s->n_dims; d++)
            mp_buf_printf(h, "%s%llu", d ? "," : "", (unsigned long long)s->shape[d]);
        uint64_t end = off + w->bytes[w->order[k]];
        mp_buf_printf(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                      (unsigned long long)end);
        off = end;
    }
    mp_buf_puts(h, "}");
    while (h->len % 8) mp_buf_puts(h, " ");
    if (h->oom) return mp_errf_at(err, MP_E_NOMEM, w->path, NULL, -1, "out of memory");
    if (h->len > MP_ST_MAX_HEADER)
        return mp_errf_at(err, MP_E_INPUT, w->path, NULL, -1,
                          "header of %zu bytes exceeds the limit of %llu bytes", h->len,
                          MP_ST_MAX_HEADER);
    return MP_OK;
}

/* Level and workers for zstd output; level 0 writes plain safetensors. */
typedef struct zstd_params {
    int level, workers;
} zstd_params;

#define ZSTD_MEM_BUDGET ((size_t)192 << 20)

/* zstd's memory with `workers` workers, by its multithreading's layout (zstdmt_compress.c):
 * a context per worker, its compressed output, and the round buffer of jobs. */
static size_t zstd_mem(size_t cctx, size_t window, size_t job, int workers)
{
    size_t k = (size_t)workers;
    return k * (cctx + ZSTD_compressBound(job)) + window + (k + 3) * job;
}

static mp_errcode setup_zstd(mp_st_writer *w, const zstd_params *z, mp_err *err)
{
    w->cctx = ZSTD_createCCtx();
    w->zout_cap = ZSTD_CStreamOutSize();
    w->zout = malloc(w->zout_cap);
    w->disk_hash = XXH3_createState();
    if (!w->cctx || !w->zout || !w->disk_hash)
        return mp_errf_at(err, MP_E_NOMEM, w->path, NULL, -1, "out of memory");
    XXH3_128bits_reset(w->disk_hash);
    size_t r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, z->level);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setPledgedSrcSize(w->cctx, w->file_size);
    if (ZSTD_isError(r))
        return mp_errf_at(err, MP_E_USAGE, w->path, NULL, -1, "zstd level %d: %s", z->level,
                          ZSTD_getErrorName(r));
    ZSTD_compressionParameters cp = ZSTD_getCParams(z->level, w->file_size, 0);
    size_t window = (size_t)1 << cp.windowLog;
    size_t job = 2 * window > ((size_t)8 << 20) ? 2 * window : (size_t)8 << 20;
    size_t cctx = ZSTD_estimateCCtxSize_usingCParams(cp);
    int workers = z->workers > 0 ? z->workers : 1;
    while (workers > 1 && zstd_mem(cctx, window, job, workers) > ZSTD_MEM_BUDGET) workers--;
    /* A libzstd built without threads refuses workers; it then compresses on this thread, to
     * different but equally valid bytes. */
    if (ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_nbWorkers, workers)))
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_nbWorkers, 0);
    else
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_jobSize, (int)job);
    return MP_OK;
}

/* A writer for n tensors with its buffers and hash states, nothing planned yet; NULL when out
 * of memory. */
static mp_st_writer *writer_alloc(const char *path, size_t n)
{
    mp_st_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->fd = -1;
    w->n = n;
    w->path = mp_strdup(path);
    w->specs = calloc(n ? n : 1, sizeof *w->specs);
    w->bytes = calloc(n ? n : 1, sizeof *w->bytes);
    w->order = calloc(n ? n : 1, sizeof *w->order);
    w->stage = malloc(STAGE_BYTES);
    w->digests = calloc(n ? n : 1, sizeof *w->digests);
    w->file_hash = XXH3_createState();
    w->tensor_hash = XXH64_createState();
    if (!w->path || !w->specs || !w->bytes || !w->order || !w->stage || !w->digests || !w->file_hash ||
        !w->tensor_hash) {
        free_writer(w);
        return NULL;
    }
    return w;
}

/* The specs, validated and copied into w, with each one's byte size and sort key. */
static mp_errcode copy_specs(mp_st_writer *w, const mp_tensor_spec *specs, order_key *keys, mp_err *err)
{
    for (size_t i = 0; i < w->n; i++) {
        const mp_tensor_spec *s = &specs[i];
        if (s->n_dims > MP_MAX_DIMS || (unsigned)s->dtype >= MP_DTYPE_COUNT)
            return mp_errf_at(err, MP_E_INPUT, w->path, s->name, -1, "invalid tensor spec");
        uint64_t elems = 1;
        const char *why = NULL;
        int bad = 0;
        for (uint32_t d = 0; d < s->n_dims; d++) bad |= mp_mul_overflow(elems, s->shape[d], &elems);
        if (bad || mp_dtype_nbytes(s->dtype, elems, &w->bytes[i], &why))
            return mp_errf_at(err, MP_E_INPUT, w->path, s->name, -1, "shape of %s does not give a whole number of bytes",
                              mp_dtype_name(s->dtype));
        w->specs[i] = *s;
        w->specs[i].name = mp_strdup(s->name);
        if (!w->specs[i].name) return mp_errf_at(err, MP_E_NOMEM, w->path, NULL, -1, "out of memory");
        keys[i] = (order_key){s->dtype, w->specs[i].name, i};
    }
    return MP_OK;
}

/* The write order (by dtype, then name: natural alignment) into w->order, refusing duplicate
 * names; *data gets the bytes of all tensors. */
static mp_errcode plan_order(mp_st_writer *w, order_key *keys, uint64_t *data, mp_err *err)
{
    size_t n = w->n;
    qsort(keys, n, sizeof *keys, cmp_write_order);
    *data = 0;
    for (size_t k = 0; k < n; k++) {
        if (k > 0 && strcmp(keys[k - 1].name, keys[k].name) == 0 && keys[k - 1].dtype == keys[k].dtype)
            return mp_errf_at(err, MP_E_INPUT, w->path, keys[k].name, -1, "duplicate tensor name");
        w->order[k] = keys[k].index;
        if (mp_add_overflow(*data, w->bytes[keys[k].index], data))
            return mp_errf_at(err, MP_E_INPUT, w->path, NULL, -1, "total size overflows");
    }
    /* Same name with different dtypes sorts apart: check names globally too. */
    for (size_t k = 0; k < n; k++) keys[k].dtype = MP_DTYPE_BOOL;
    qsort(keys, n, sizeof *keys, cmp_write_order);
    for (size_t k = 1; k < n; k++)
        if (strcmp(keys[k - 1].name, keys[k].name) == 0)
            return mp_errf_at(err, MP_E_INPUT, w->path, keys[k].name, -1, "duplicate tensor name");
    return MP_OK;
}

/* Creates the file and stages its length prefix and header h, hashed as data; the header goes
 * through the stage like data, so small files take one write. */
static mp_errcode start_file(mp_st_writer *w, const mp_buf *h, const zstd_params *zp, mp_err *err)
{
    if (zp && zp->level > 0) MP_FORWARD(setup_zstd(w, zp, err));
    w->fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) return mp_errf_at(err, MP_E_IO, w->path, NULL, -1, "cannot create: %s", strerror(errno));
    XXH3_128bits_reset(w->file_hash);
    XXH64_reset(w->tensor_hash, 0);
    uint8_t len8[8];
    mp_write_le64(len8, h->len);
    XXH3_128bits_update(w->file_hash, len8, 8);
    XXH3_128bits_update(w->file_hash, h->data, h->len);
    memcpy(w->stage, len8, 8);
    w->staged = 8;
    w->cur = 0;
    w->cur_left = w->n ? w->bytes[w->order[0]] : 0;
    for (size_t done = 0; done < h->len;) {
        size_t room = STAGE_BYTES - w->staged, take = h->len - done < room ? h->len - done : room;
        memcpy(w->stage + w->staged, h->data + done, take);
        w->staged += take;
        done += take;
        if (w->staged == STAGE_BYTES) {
            MP_FORWARD(writer_put(w, w->stage, w->staged, err));
            w->staged = 0;
        }
    }
    skip_empty(w);
    return MP_OK;
}

static mp_errcode writer_open(mp_st_writer **out, const char *path, const mp_tensor_spec *specs,
                              size_t n, const char *const *meta, size_t n_meta, int plan_only,
                              const zstd_params *zp, mp_err *err)
{
    *out = NULL;
    mp_buf h = MP_BUF_INIT;
    uint64_t data = 0;
    mp_st_writer *w = writer_alloc(path, n);
    order_key *keys = calloc(n ? n : 1, sizeof *keys);
    mp_errcode rc = !w || !keys ? mp_errf_at(err, MP_E_NOMEM, path, NULL, -1, "out of memory") : MP_OK;
    if (rc == MP_OK) rc = copy_specs(w, specs, keys, err);
    if (rc == MP_OK) rc = plan_order(w, keys, &data, err);
    if (rc == MP_OK) rc = build_header(w, meta, n_meta, &h, err);
    if (rc == MP_OK) w->file_size = 8 + h.len + data;
    if (rc == MP_OK && !plan_only) rc = start_file(w, &h, zp, err);
    free(keys);
    mp_buf_release(&h);
    if (rc != MP_OK) {
        if (w && w->fd >= 0) unlink(path);
        free_writer(w);
        return rc;
    }
    *out = w;
    return MP_OK;
}

mp_errcode mp_st_writer_open(mp_st_writer **out, const char *path, const mp_tensor_spec *specs,
                             size_t n, const char *const *meta, size_t n_meta, mp_err *err)
{
    return writer_open(out, path, specs, n, meta, n_meta, 0, NULL, err);
}

mp_errcode mp_st_writer_open_zstd(mp_st_writer **out, const char *path,
                                  const mp_tensor_spec *specs, size_t n, const char *const *meta,
                                  size_t n_meta, int level, int workers, mp_err *err)
{
    *out = NULL;
    if (level < MP_ZSTD_LEVEL_MIN || level > MP_ZSTD_LEVEL_MAX)
        return mp_errf_at(err, MP_E_USAGE, path, NULL, -1, "zstd level %d is out of range %d..%d",
                          level, MP_ZSTD_LEVEL_MIN, MP_ZSTD_LEVEL_MAX);
    zstd_params zp = {level, workers};
    return writer_open(out, path, specs, n, meta, n_meta, 0, &zp, err);
}

mp_errcode mp_st_file_size_of(const mp_tensor_spec *specs, size_t n, const char *const *meta,
                              size_t n_meta, uint64_t *size, mp_err *err)
{
    mp_st_writer *w = NULL;
    MP_FORWARD(writer_open(&w, "(size)", specs, n, meta, n_meta, 1, NULL, err));
    *size = w->file_size;
    free_writer(w);
    return MP_OK;
}

size_t mp_st_writer_next(const mp_st_writer *w)
{
    return w->cur < w->n ? w->order[w->cur] : SIZE_MAX;
}

uint64_t mp_st_writer_remaining(const mp_st_writer *w) { return w->cur < w->n ? w->cur_left : 0; }

uint64_t mp_st_writer_file_size(const mp_st_writer *w) { return w->file_size; }

void mp_st_writer_digest(const mp_st_writer *w, uint64_t *tensor_xxh64, uint8_t file_xxh128[16])
{
    assert(w->cur >= w->n);
    if (tensor_xxh64) memcpy(tensor_xxh64, w->digests, w->n * sizeof *tensor_xxh64);
    if (file_xxh128) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(w->file_hash));
        memcpy(file_xxh128, c.digest, 16);
    }
}

/* Hands what was written since the last call to the kernel's writeback once WRITEBACK_STEP
 * bytes have gathered, without waiting for it. The fsync at the end then finds most of the file
 * on disk already: the disk works while the next bytes are produced, where otherwise each
 * file's whole flush would sit between it and the next. Advice only: failures are left to fsync
 * to report. */
#define WRITEBACK_STEP (8u << 20)

static void start_writeback(mp_st_writer *w)
{
#ifdef SYNC_FILE_RANGE_WRITE
    if (w->disk_written - w->writeback_from < WRITEBACK_STEP) return;
    sync_file_range(w->fd, (off_t)w->writeback_from, (off_t)(w->disk_written - w->writeback_from),
                    SYNC_FILE_RANGE_WRITE);
    w->writeback_from = w->disk_written;
#else
    (void)w;
#endif
}

/* Every byte on disk goes out here, so a failure can say how far the file got: disk full at
 * 3.1 GB of 4 GB reads differently from a permission error at byte 0. */
static mp_errcode disk_put(mp_st_writer *w, const void *buf, size_t len, mp_err *err)
{
    const uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(w->fd, p + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n < 0 ? errno : ENOSPC;
            if (w->cctx)
                return mp_errf_at(err, MP_E_IO, w->path, NULL, -1,
                                  "cannot write: %s; %llu bytes written (zstd, after compressing "
                                  "%llu of %llu bytes)", strerror(e),
                                  (unsigned long long)(w->disk_written + done),
                                  (unsigned long long)w->written, (unsigned long long)w->file_size);
            return mp_errf_at(err, MP_E_IO, w->path, NULL, -1,
                              "cannot write: %s; %llu of %llu bytes written", strerror(e),
                              (unsigned long long)(w->disk_written + done),
                              (unsigned long long)w->file_size);
        }
        done += (size_t)n;
    }
    if (w->cctx) XXH3_128bits_update(w->disk_hash, buf, len);
    w->disk_written += len;
    start_writeback(w);
    return MP_OK;
}

/* Runs the compressor until `in` is consumed (ZSTD_e_continue) or the frame is complete
 * (ZSTD_e_end), writing what it produces. */
static mp_errcode compress_put(mp_st_writer *w, ZSTD_inBuffer *in, ZSTD_EndDirective mode,
                               mp_err *err)
{
    for (;;) {
        ZSTD_outBuffer o = {w->zout, w->zout_cap, 0};
        size_t left = ZSTD_compressStream2(w->cctx, &o, in, mode);
        if (ZSTD_isError(left))
            return mp_errf_at(err, MP_E_NOMEM, w->path, NULL, -1, "zstd compression failed: %s",
                              ZSTD_getErrorName(left));
        if (o.pos) MP_FORWARD(disk_put(w, w->zout, o.pos, err));
        if (mode == ZSTD_e_end ? left == 0 : in->pos == in->size) return MP_OK;
    }
}

/* Every byte of the safetensors stream goes out here: to the disk, or through zstd. */
static mp_errcode writer_put(mp_st_writer *w, const void *buf, size_t len, mp_err *err)
{
    if (w->cctx) {
        w->written += len; /* bytes handed to the compressor, for messages */
        ZSTD_inBuffer in = {buf, len, 0};
        return compress_put(w, &in, ZSTD_e_continue, err);
    }
    MP_FORWARD(disk_put(w, buf, len, err));
    w->written += len;
    return MP_OK;
}

static mp_errcode flush_stage(mp_st_writer *w, mp_err *err)
{
    if (w->staged == 0) return MP_OK;
    MP_FORWARD(writer_put(w, w->stage, w->staged, err));
    w->staged = 0;
    return MP_OK;
}

/* The kernel copies len bytes at src_off of src_fd to the end of the file; `bytes` are the
 * same bytes, written from user space where copy_file_range() is refused (file systems that
 * cannot, cross-device on older kernels). */
static mp_errcode copy_put(mp_st_writer *w, const mp_st_span *sp, uint64_t at, const uint8_t *bytes, size_t len,
                           mp_err *err)
{
    size_t done = 0;
    off64_t in = (off64_t)(sp->offset + at);
    while (done < len && !w->no_copy_range) {
        ssize_t n = copy_file_range(sp->fd, &in, w->fd, NULL, len - done, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
            w->no_copy_range = 1;
            break;
        }
        if (n == 0) /* the source is shorter than when it was opened and mapped */
            return mp_errf_at(err, MP_E_INPUT, sp->path, NULL, (int64_t)in,
                              "ended at byte %llu while being copied to '%s': changed since it was opened",
                              (unsigned long long)in, w->path);
        if (n < 0)
            return mp_errf_at(err, MP_E_IO, w->path, NULL, -1, "cannot write: %s; %llu of %llu bytes written",
                              strerror(errno), (unsigned long long)w->disk_written,
                              (unsigned long long)w->file_size);
        done += (size_t)n;
        w->disk_written += (uint64_t)n;
        w->written += (uint64_t)n;
        start_writeback(w);
    }
    return done < len ? writer_put(w, bytes + done, len - done, err) : MP_OK;
}

/* Appends len bytes; with a span they are its bytes, and a plain writer has the kernel copy them
 * (copy_put) instead of writing them from buf. */
static mp_errcode append(mp_st_writer *w, const mp_st_span *sp, const void *buf, size_t len, mp_err *err)
{
    uint64_t at = 0; /* into the span */
    const uint8_t *src = buf;
    while (len > 0) {
        if (w->cur >= w->n)
            return mp_errf_at(err, MP_E_INPUT, w->path, NULL, -1,
                              "%zu bytes written past the last tensor", len);
        const char *name = w->specs[w->order[w->cur]].name;
        size_t take = len < w->cur_left ? len : (size_t)w->cur_left;
        if (take < STAGE_BYTES && take > STAGE_BYTES - w->staged) take = STAGE_BYTES - w->staged;
        if (take >= STAGE_BYTES) {
            MP_FORWARD(flush_stage(w, err));
            /* The two hashes run on a second thread while the bytes go to the kernel (or zstd):
             * on a copy job they are the only work the copy itself does not need. */
            mp_errcode rc = MP_OK;
#pragma omp parallel sections num_threads(2)
            {
#pragma omp section
                rc = sp && !w->cctx ? copy_put(w, sp, at, src, take, err) : writer_put(w, src, take, err);
#pragma omp section
                {
                    XXH3_128bits_update(w->file_hash, src, take);
                    XXH64_update(w->tensor_hash, src, take);
                }
            }
            if (rc != MP_OK) { /* the tensor named; the file is the output's, or the source's */
                char why[MP_ERR_MSG_MAX], file[MP_ERR_FILE_MAX];
                memcpy(why, err->msg, sizeof why);
                snprintf(file, sizeof file, "%s", err->file[0] ? err->file : w->path);
                return mp_errf_at(err, rc, file, name, err->offset, "%s", why);
            }
        } else {
            XXH3_128bits_update(w->file_hash, src, take);
            XXH64_update(w->tensor_hash, src, take);
            memcpy(w->stage + w->staged, src, take);
            w->staged += take;
            if (w->staged == STAGE_BYTES) MP_FORWARD(flush_stage(w, err));
        }
        src += take;
        at += take;
        len -= take;
        w->cur_left -= take;
        skip_empty(w);
    }
    return MP_OK;
}

mp_errcode mp_st_writer_write(mp_st_writer *w, const void *buf, size_t len, mp_err *err)
{
    return append(w, NULL, buf, len, err);
}

mp_errcode mp_st_writer_copy(mp_st_writer *w, const mp_st_span *src, size_t len, mp_err *err)
{
    return append(w, src, src->bytes, len, err);
}

mp_errcode mp_st_writer_copy_from(mp_st_writer *w, const mp_st_model *m, const mp_tensor *t, uint64_t at,
                                  size_t len, void *buf, size_t cap, mp_err *err)
{
    mp_st_span span;
    if (mp_st_map(m, t, at, len, &span)) {
        mp_errcode rc = mp_st_writer_copy(w, &span, len, err);
        mp_st_unmap(&span);
        return rc;
    }
    for (size_t done = 0; done < len;) { /* compressed, or not mappable: through buf */
        size_t n = len - done < cap ? len - done : cap;
        MP_FORWARD(mp_st_read(m, t, at + done, buf, n, err));
        MP_FORWARD(mp_st_writer_write(w, buf, n, err));
        done += n;
    }
    return MP_OK;
}



mp_errcode mp_st_writer_finish(mp_st_writer *w, mp_err *err)
{
    return mp_st_writer_finish_stat(w, NULL, err);
}

mp_errcode mp_st_writer_finish_stat(mp_st_writer *w, mp_st_written *out, mp_err *err)
{
    mp_errcode rc = MP_OK;
    if (w->cur < w->n) {
        rc = mp_errf_at(err, MP_E_INPUT, w->path, w->specs[w->order[w->cur]].name, -1,
                        "finished with %llu bytes of this tensor unwritten",
                        (unsigned long long)w->cur_left);
        goto done;
    }
    rc = flush_stage(w, err);
    if (rc != MP_OK) goto done;
    if (w->cctx) {
        ZSTD_inBuffer none = {NULL, 0, 0};
        rc = compress_put(w, &none, ZSTD_e_end, err);
        if (rc != MP_OK) goto done;
    }
    if (fsync(w->fd) != 0) {
        rc = mp_errf_at(err, MP_E_IO, w->path, NULL, -1, "fsync failed: %s", strerror(errno));
        goto done;
    }
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0)
        rc = mp_errf_at(err, MP_E_IO, w->path, NULL, -1, "close failed: %s", strerror(errno));
    if (rc == MP_OK && out) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(w->file_hash));
        memcpy(out->raw_xxh128, c.digest, 16);
        out->raw_size = w->file_size;
        if (w->cctx) XXH128_canonicalFromHash(&c, XXH3_128bits_digest(w->disk_hash));
        memcpy(out->xxh128, c.digest, 16);
        out->size = w->disk_written;
    }
done:
    if (rc != MP_OK) {
        if (w->fd >= 0) close(w->fd);
        w->fd = -1;
        unlink(w->path);
    }
    free_writer(w);
    return rc;
}

void mp_st_writer_abort(mp_st_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
        unlink(w->path);
    }
    free_writer(w);
}

/* ---------------------------------------------------------------- shards and index */

size_t mp_st_plan_shards(const mp_tensor_spec *specs, size_t n, uint64_t max_bytes,
                         uint32_t *shard_of)
{
    uint32_t shard = 0;
    uint64_t used = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t elems = 1, bytes = 0;
        const char *why;
        int over = 0;
        for (uint32_t d = 0; d < specs[i].n_dims; d++)
            over |= mp_mul_overflow(elems, specs[i].shape[d], &elems);
        if (over || mp_dtype_nbytes(specs[i].dtype, elems, &bytes, &why)) bytes = UINT64_MAX;
        if (max_bytes && used > 0 && (bytes > max_bytes - used || used >= max_bytes)) {
            shard++;
            used = 0;
        }
        shard_of[i] = shard;
        used = bytes > UINT64_MAX - used ? UINT64_MAX : used + bytes;
    }
    return n ? (size_t)shard + 1 : 1;
}

void mp_st_shard_name(size_t shard, size_t n_shards, char *buf, size_t cap)
{
    if (n_shards <= 1) snprintf(buf, cap, "model.safetensors");
    else snprintf(buf, cap, "model-%05zu-of-%05zu.safetensors", shard + 1, n_shards);
}

typedef struct name_pair {
    const char *name;
    const char *file;
} name_pair;

static int cmp_pair(const void *pa, const void *pb)
{
    return strcmp(((const name_pair *)pa)->name, ((const name_pair *)pb)->name);
}

mp_errcode mp_st_index_json(mp_buf *out, const char *const *names, const char *const *files,
                            size_t n, uint64_t total_size, mp_err *err)
{
    name_pair *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return mp_errf(err, MP_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) v[i] = (name_pair){names[i], files[i]};
    qsort(v, n, sizeof *v, cmp_pair);
    mp_buf_printf(out, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {",
                  (unsigned long long)total_size);
    for (size_t i = 0; i < n; i++) {
        mp_buf_puts(out, i ? ",\n    " : "\n    ");
        mp_buf_json_str(out, v[i].name);
        mp_buf_puts(out, ": ");
        mp_buf_json_str(out, v[i].file);
    }
    mp_buf_puts(out, n ? "\n  }\n}\n" : "}\n}\n");
    free(v);
    if (out->oom) return mp_errf(err, MP_E_NOMEM, "out of memory");
    return MP_OK;
}
