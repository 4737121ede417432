/*
 * hash.c - xxHash digests in the canonical form xxhsum and llama-gguf-hash print.
 */
#define _GNU_SOURCE /* madvise */
#include "mp_common.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <xxhash.h>

static const char hexdig[] = "0123456789abcdef";

void mp_hex64(uint64_t h, char *buf)
{
    for (int i = 15; i >= 0; i--, h >>= 4) buf[i] = hexdig[h & 15];
    buf[16] = '\0';
}

void mp_hex128(const uint8_t canon[16], char *buf)
{
    for (int i = 0; i < 16; i++) {
        buf[2 * i] = hexdig[canon[i] >> 4];
        buf[2 * i + 1] = hexdig[canon[i] & 15];
    }
    buf[32] = '\0';
}

#define CHUNK (4u << 20)
#define WINDOW (16u << 20) /* mapped at a time; a multiple of the page size */

/* xxh3-128 of a whole file, hashed straight from the page cache: the file is mapped WINDOW
 * bytes at a time (MAP_POPULATE, so the mapping costs one batched fault per window) and each
 * window unmapped before the next, so the resident set stays at one window. No byte is copied;
 * the hash reads each byte once, which is what `cat` costs too (measured in make bench). A
 * window that cannot be mapped is read with pread instead. */
mp_errcode mp_file_xxh128(const mp_file *f, uint8_t canon[16], mp_err *err)
{
    XXH3_state_t *st = XXH3_createState();
    uint8_t *buf = NULL;
    mp_errcode rc = st ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (st) XXH3_128bits_reset(st);
    for (uint64_t at = 0; at < f->size && rc == MP_OK;) {
        size_t len = (size_t)(f->size - at < WINDOW ? f->size - at : WINDOW);
        void *p = mp_map_file(f->fd, at, len, 1, f->path);
        if (p) {
            madvise(p, len, MADV_SEQUENTIAL);
            XXH3_128bits_update(st, p, len);
            mp_unmap(p, len);
            at += len;
            continue;
        }
        len = len < CHUNK ? len : CHUNK;
        if (!buf && !(buf = malloc(CHUNK))) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        if (rc == MP_OK) rc = mp_file_pread(f, at, buf, len, err);
        if (rc == MP_OK) XXH3_128bits_update(st, buf, len);
        at += len;
    }
    if (rc == MP_OK) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
        for (int i = 0; i < 16; i++) canon[i] = c.digest[i];
    }
    XXH3_freeState(st);
    free(buf);
    return rc;
}
