/*
 * kfamily.c - the kernel families of kernels/: names, entry prefixes, and the sources and SPIR-V
 * modules embedded at build time, from the table kernels/embed.sh generates out of the
 * list of kernels/<stem>.cl files. The backends ask this file for what they build; device.c asks the
 * backends' table for everything else, so neither calls the other.
 */
#include "device_internal.h"
#include "kernels_blob.h"

#include <assert.h>
#include <string.h>

int mp_kfamily_count(void) { return mp_n_kfamilies; }

mp_kfamily mp_kfamily_find(const char *stem)
{
    for (int f = 0; stem && f < mp_n_kfamilies; f++)
        if (strcmp(mp_kfamilies[f].stem, stem) == 0) return f;
    return MP_KF_NONE;
}

static const mp_kfamily_def *def(mp_kfamily f)
{
    assert(f >= 0 && f < mp_n_kfamilies);
    return &mp_kfamilies[f];
}

const char *mp_kfamily_name(mp_kfamily f) { return def(f)->name; }
const char *mp_kfamily_prefix(mp_kfamily f) { return def(f)->prefix; }

const char *mp_kfamily_source(mp_kfamily f, size_t *len)
{
    *len = def(f)->src_len;
    return (const char *)def(f)->src;
}

const unsigned char *mp_kfamily_spirv(mp_kfamily f, size_t *len)
{
    *len = def(f)->spv_len;
    return def(f)->spv;
}

const char *mp_kernel_cuda_prelude(size_t *len)
{
    *len = mp_kernel_cuda_prelude_src_len;
    return (const char *)mp_kernel_cuda_prelude_src;
}
