/*
 * fuzz_common.h - shared by the libFuzzer harnesses: inputs reach the parsers as real files in a
 * private scratch directory, because the readers take paths (as the CLI does).
 */
#ifndef MP_FUZZ_COMMON_H
#define MP_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* A scratch directory made once per process. */
const char *fuzz_dir(void);
/* Writes data to dir/name (replacing it); returns the path (static buffer). */
const char *fuzz_put(const char *name, const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
