/*
 * safetensors_zst.c - reading a zstd-compressed safetensors file (`X.safetensors.zst`, as
 * `modelprep split --compress zstd` writes) as if it were the plain file.
 *
 * Byte layout of the one frame accepted (RFC 8878 §3.1.1):
 *
 *   4 bytes   magic 28 B5 2F FD
 *   1 byte    frame header descriptor: bits 7-6 content-size field flag, bit 5 single segment,
 *             bit 3 reserved (0), bit 2 checksum flag, bits 1-0 dictionary-id flag
 *   0-1 byte  window descriptor (absent for a single segment): exponent << 3 | mantissa
 *   0-4 bytes dictionary id (must be absent or 0: no dictionaries)
 *   0-8 bytes content size, little-endian (2-byte form stores size - 256)
 *   blocks    3-byte little-endian header: bit 0 last block, bits 1-2 type (raw, RLE,
 *             compressed, reserved), bits 3-23 size; then size bytes (1 for RLE), size <= 128 KiB
 *   0/4 bytes checksum (low 32 bits of the xxh64 of the content) when flagged
 *
 * Opening walks the block headers without decompressing: a truncated file, trailing bytes, a
 * reserved block type or an oversized block are refused before any header is believed. The
 * decompressed size comes from the content-size field (modelprep always writes it); without one
 * the frame is decompressed once to count. The safetensors header inside is then validated like
 * any other (safetensors.c), against the decompressed size, so a stream that decompresses to
 * more than the header's tensors cover is refused as trailing bytes.
 *
 * Reads are sequential: a read at or beyond the last one's end decompresses forward (skipping
 * what lies between); a read before it restarts the frame. Random access is not offered: it
 * would need a seekable format, and the users (split, hash, verify) read in file order. Memory is
 * the decoder's window (at most 2^MP_ZST_WINDOW_LOG_MAX, and never more than the content size)
 * plus two 128 KiB buffers, held only while a file is being read: reaching the end, or
 * mp_zst_src_idle(), frees them.
 */
#define _GNU_SOURCE
#include "formats_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define ZST_MAGIC 0xFD2FB528u
#define ZST_BLOCK_MAX (128u << 10)

struct mp_zst_src {
    uint64_t raw_size;       /* decompressed bytes */
    uint64_t frame_size;     /* compressed bytes: the whole file */
    int checksum;            /* the frame carries one */
    ZSTD_DCtx *dctx;         /* NULL while idle */
    uint8_t *in, *scratch;
    size_t in_cap, scratch_cap;
    ZSTD_inBuffer inb;
    uint64_t comp_pos;       /* compressed bytes loaded into `in` so far */
    uint64_t raw_pos;        /* decompressed bytes produced so far */
    int ended;               /* the decoder reported the end of the frame */
    uint8_t *whole;          /* mp_zst_src_load: every decompressed byte, for reads in any order */
    pthread_mutex_t lock;
};

int mp_zst_is_zstd(const mp_file *f)
{
    uint8_t b[4];
    mp_err ignore = MP_ERR_INIT;
    return f->size >= 4 && mp_file_pread(f, 0, b, 4, &ignore) == MP_OK && mp_read_le32(b) == ZST_MAGIC;
}

#define BAD(off, ...) mp_errf_at(err, MP_E_INPUT, f->path, NULL, (int64_t)(off), __VA_ARGS__)

/* The frame header and the block walk; sets raw_size when the frame declares it, else
 * UINT64_MAX. */
static mp_errcode walk_frame(mp_zst_src *z, const mp_file *f, mp_err *err)
{
    uint8_t h[18] = {0};
    size_t have = f->size < sizeof h ? (size_t)f->size : sizeof h;
    if (have < 6) return BAD(-1, "truncated zstd frame: %zu bytes cannot hold a frame header", have);
    MP_FORWARD(mp_file_pread(f, 0, h, have, err));
    uint8_t fhd = h[4];
    unsigned fcs_flag = fhd >> 6, single = (fhd >> 5) & 1u, dict_flag = fhd & 3u;
    z->checksum = (fhd >> 2) & 1;
    if (fhd & 0x08u) return BAD(4, "invalid zstd frame header: reserved bit set");
    size_t pos = 5;
    if (!single) {
        unsigned wlog = 10u + (h[pos] >> 3);
        if (wlog > MP_ZST_WINDOW_LOG_MAX)
            return mp_errf_at(err, MP_E_UNSUPPORTED, f->path, NULL, (int64_t)pos,
                              "zstd frame needs a window of 2^%u bytes, above the limit of 2^%d",
                              wlog, MP_ZST_WINDOW_LOG_MAX);
        pos++;
    }
    static const size_t dict_len[4] = {0, 1, 2, 4};
    uint64_t dict = 0;
    for (size_t i = 0; i < dict_len[dict_flag]; i++) dict |= (uint64_t)h[pos + i] << (8 * i);
    pos += dict_len[dict_flag];
    if (dict)
        return mp_errf_at(err, MP_E_UNSUPPORTED, f->path, NULL, 5,
                          "zstd frame needs dictionary %llu; dictionaries are not supported",
                          (unsigned long long)dict);
    static const size_t fcs_len[4] = {0, 2, 4, 8};
    size_t fl = fcs_flag == 0 && single ? 1 : fcs_len[fcs_flag];
    z->raw_size = UINT64_MAX;
    if (fl) {
        if (pos + fl > have) return BAD(-1, "truncated zstd frame header");
        uint64_t v = 0;
        for (size_t i = 0; i < fl; i++) v |= (uint64_t)h[pos + i] << (8 * i);
        z->raw_size = fl == 2 ? v + 256 : v;
        pos += fl;
    }
    /* Blocks, by their headers alone. */
    uint64_t at = pos;
    for (;;) {
        uint8_t bh[3];
        if (at + 3 > f->size)
            return BAD(at, "truncated zstd frame: it ends after %llu of its bytes, inside a block "
                           "header", (unsigned long long)f->size);
        MP_FORWARD(mp_file_pread(f, at, bh, 3, err));
        uint32_t v = (uint32_t)bh[0] | (uint32_t)bh[1] << 8 | (uint32_t)bh[2] << 16;
        unsigned last = v & 1u, type = (v >> 1) & 3u;
        uint32_t size = v >> 3;
        if (type == 3) return BAD(at, "corrupt zstd frame: reserved block type");
        if (size > ZST_BLOCK_MAX)
            return BAD(at, "corrupt zstd frame: block of %u bytes exceeds the 131072-byte maximum",
                       size);
        uint64_t payload = type == 1 ? 1 : size;
        at += 3;
        if (payload > f->size - at)
            return BAD(at, "truncated zstd frame: a block of %llu bytes runs past the end of the "
                           "file (%llu bytes)", (unsigned long long)payload,
                       (unsigned long long)f->size);
        at += payload;
        if (last) break;
    }
    if (z->checksum) {
        if (f->size - at < 4)
            return BAD(at, "truncated zstd frame: the 4-byte checksum is missing");
        at += 4;
    }
    if (at != f->size)
        return BAD(at, "%llu bytes after the end of the zstd frame (modelprep reads exactly one "
                       "frame)", (unsigned long long)(f->size - at));
    z->frame_size = at;
    return MP_OK;
}

static void release_ctx(mp_zst_src *z)
{
    ZSTD_freeDCtx(z->dctx);
    free(z->in);
    free(z->scratch);
    z->dctx = NULL;
    z->in = z->scratch = NULL;
    z->raw_pos = z->comp_pos = 0;
    z->inb = (ZSTD_inBuffer){NULL, 0, 0};
    z->ended = 0;
}

/* Creates the decoder (or rewinds it) so that the next byte produced is byte 0. */
static mp_errcode restart(mp_zst_src *z, const mp_file *f, mp_err *err)
{
    if (!z->dctx) {
        z->in_cap = ZSTD_DStreamInSize();
        z->scratch_cap = ZSTD_DStreamOutSize();
        z->dctx = ZSTD_createDCtx();
        z->in = malloc(z->in_cap);
        z->scratch = malloc(z->scratch_cap);
        if (!z->dctx || !z->in || !z->scratch) {
            release_ctx(z);
            return mp_errf_at(err, MP_E_NOMEM, f->path, NULL, -1, "out of memory");
        }
        if (ZSTD_isError(ZSTD_DCtx_setParameter(z->dctx, ZSTD_d_windowLogMax, MP_ZST_WINDOW_LOG_MAX))) {
            release_ctx(z);
            return mp_errf_at(err, MP_E_NOMEM, f->path, NULL, -1, "cannot limit the zstd window");
        }
    } else {
        ZSTD_DCtx_reset(z->dctx, ZSTD_reset_session_only);
    }
    z->raw_pos = z->comp_pos = 0;
    z->inb = (ZSTD_inBuffer){z->in, 0, 0};
    z->ended = 0;
    return MP_OK;
}

/* Decompresses exactly len bytes into out (len may be 0: then only the frame's end, checksum
 * included, is consumed when want_end). */
static mp_errcode decode(mp_zst_src *z, const mp_file *f, uint8_t *out, size_t len, int want_end,
                         mp_err *err)
{
    ZSTD_outBuffer ob = {out, len, 0};
    while (ob.pos < ob.size || (want_end && !z->ended)) {
        if (z->ended) {
            if (z->raw_size == UINT64_MAX) break; /* counting: the caller sees the shortfall */
            return mp_errf_at(err, MP_E_INPUT, f->path, NULL, -1,
                              "zstd data ends after %llu decompressed bytes, before the %llu its "
                              "frame declares", (unsigned long long)(z->raw_pos + ob.pos),
                              (unsigned long long)z->raw_size);
        }
        /* Refill when the input is used up; at the end of the file the decoder may still hold
         * output, so it is called with empty input until it makes no progress. */
        if (z->inb.pos == z->inb.size && z->comp_pos < z->frame_size) {
            size_t take = z->frame_size - z->comp_pos < z->in_cap ? (size_t)(z->frame_size - z->comp_pos)
                                                                  : z->in_cap;
            MP_FORWARD(mp_file_pread(f, z->comp_pos, z->in, take, err));
            z->comp_pos += take;
            z->inb = (ZSTD_inBuffer){z->in, take, 0};
        }
        /* At the end of the content, a one-byte window tells trailing data from the epilogue. */
        uint8_t extra;
        ZSTD_outBuffer tail = {&extra, 1, 0};
        ZSTD_outBuffer *o = ob.pos < ob.size ? &ob : &tail;
        size_t out0 = o->pos, in0 = z->inb.pos;
        size_t ret = ZSTD_decompressStream(z->dctx, o, &z->inb);
        if (ZSTD_isError(ret))
            return mp_errf_at(err, MP_E_INPUT, f->path, NULL,
                              (int64_t)(z->comp_pos - (z->inb.size - z->inb.pos)),
                              "corrupt zstd data after %llu decompressed bytes: %s",
                              (unsigned long long)(z->raw_pos + ob.pos), ZSTD_getErrorName(ret));
        if (tail.pos)
            return mp_errf_at(err, MP_E_INPUT, f->path, NULL, -1,
                              "zstd data decompresses to more than the %llu bytes declared",
                              (unsigned long long)(z->raw_pos + ob.pos));
        if (ret == 0) z->ended = 1;
        else if (o->pos == out0 && z->inb.pos == in0 && z->comp_pos >= z->frame_size)
            return mp_errf_at(err, MP_E_INPUT, f->path, NULL, (int64_t)z->comp_pos,
                              "truncated zstd data: the frame ends after %llu decompressed bytes",
                              (unsigned long long)(z->raw_pos + ob.pos));
    }
    z->raw_pos += ob.pos;
    return MP_OK;
}

mp_errcode mp_zst_src_open(mp_zst_src **out, const mp_file *f, uint64_t *raw_size, mp_err *err)
{
    *out = NULL;
    mp_zst_src *z = calloc(1, sizeof *z);
    if (!z) return mp_errf_at(err, MP_E_NOMEM, f->path, NULL, -1, "out of memory");
    pthread_mutex_init(&z->lock, NULL);
    mp_errcode rc = walk_frame(z, f, err);
    if (rc == MP_OK && z->raw_size == UINT64_MAX) {
        /* No declared size: count it, in bounded memory. */
        rc = restart(z, f, err);
        while (rc == MP_OK && !z->ended) rc = decode(z, f, z->scratch, z->scratch_cap, 0, err);
        if (rc == MP_OK) z->raw_size = z->raw_pos;
        release_ctx(z);
    }
    if (rc != MP_OK) {
        mp_zst_src_free(z);
        return rc;
    }
    *raw_size = z->raw_size;
    *out = z;
    return MP_OK;
}

mp_errcode mp_zst_src_read(mp_zst_src *z, const mp_file *f, uint64_t offset, void *buf,
                           size_t len, mp_err *err)
{
    pthread_mutex_lock(&z->lock);
    mp_errcode rc = MP_OK;
    if (offset > z->raw_size || len > z->raw_size - offset) {
        rc = mp_errf_at(err, MP_E_INPUT, f->path, NULL, (int64_t)offset,
                        "read of %zu bytes past the end of the decompressed data (%llu bytes)",
                        len, (unsigned long long)z->raw_size);
        goto done;
    }
    if (z->whole) {
        memcpy(buf, z->whole + offset, len);
        pthread_mutex_unlock(&z->lock);
        return MP_OK;
    }
    if (!z->dctx || offset < z->raw_pos) rc = restart(z, f, err);
    while (rc == MP_OK && z->raw_pos < offset) {
        uint64_t gap = offset - z->raw_pos;
        rc = decode(z, f, z->scratch, gap < z->scratch_cap ? (size_t)gap : z->scratch_cap, 0, err);
    }
    if (rc == MP_OK) rc = decode(z, f, buf, len, 0, err);
    /* At the end: consume the epilogue (the checksum is verified here), then let go of memory. */
    if (rc == MP_OK && z->raw_pos == z->raw_size) {
        rc = decode(z, f, NULL, 0, 1, err);
        if (rc == MP_OK) release_ctx(z);
    }
done:
    if (rc != MP_OK) release_ctx(z); /* a later read starts over */
    pthread_mutex_unlock(&z->lock);
    return rc;
}

mp_errcode mp_zst_src_load(mp_zst_src *z, const mp_file *f, mp_err *err)
{
    if (z->whole) return MP_OK;
    if (z->raw_size > SIZE_MAX - 1) return mp_errf_at(err, MP_E_NOMEM, f->path, NULL, -1, "too large to hold");
    uint8_t *w = malloc(z->raw_size ? (size_t)z->raw_size : 1);
    if (!w)
        return mp_errf_at(err, MP_E_NOMEM, f->path, NULL, -1, "out of memory holding %llu decompressed bytes",
                          (unsigned long long)z->raw_size);
    mp_errcode rc = mp_zst_src_read(z, f, 0, w, (size_t)z->raw_size, err); /* checks the frame's checksum */
    if (rc != MP_OK) {
        free(w);
        return rc;
    }
    pthread_mutex_lock(&z->lock);
    z->whole = w;
    pthread_mutex_unlock(&z->lock);
    return MP_OK;
}

void mp_zst_src_unload(mp_zst_src *z)
{
    if (!z) return;
    pthread_mutex_lock(&z->lock);
    free(z->whole);
    z->whole = NULL;
    pthread_mutex_unlock(&z->lock);
}

void mp_zst_src_idle(mp_zst_src *z)
{
    if (!z) return;
    pthread_mutex_lock(&z->lock);
    release_ctx(z);
    pthread_mutex_unlock(&z->lock);
}

void mp_zst_src_free(mp_zst_src *z)
{
    if (!z) return;
    release_ctx(z);
    free(z->whole);
    pthread_mutex_destroy(&z->lock);
    free(z);
}
