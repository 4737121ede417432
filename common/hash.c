/*
 * hash.c - xxHash digests in the canonical form xxhsum and llama-gguf-hash print.
 */
#include "mp_common.h"

#include <stdlib.h>
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

mp_errcode mp_file_xxh128(const mp_file *f, uint8_t canon[16], mp_err *err)
{
    XXH3_state_t *st = XXH3_createState();
    uint8_t *buf = malloc(CHUNK);
    mp_errcode rc = MP_OK;
    if (!st || !buf) {
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        goto cleanup;
    }
    XXH3_128bits_reset(st);
    for (uint64_t at = 0; at < f->size;) {
        size_t n = f->size - at < CHUNK ? (size_t)(f->size - at) : CHUNK;
        rc = mp_file_pread(f, at, buf, n, err);
        if (rc != MP_OK) goto cleanup;
        XXH3_128bits_update(st, buf, n);
        at += n;
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
    for (int i = 0; i < 16; i++) canon[i] = c.digest[i];
cleanup:
    XXH3_freeState(st);
    free(buf);
    return rc;
}
