/*
 * kfamily.c - the kernel families of kernels/: names, entry prefixes, and the sources and SPIR-V
 * modules embedded at build time (kernels/embed.sh). The backends ask this file for what they
 * build; device.c asks the backends' table for everything else, so neither calls the other.
 */
#include "device_internal.h"
#include "kernels_blob.h"

static const struct {
    const char *name, *prefix;
    const unsigned char *src, *spv;
    const size_t *src_len, *spv_len;
} families[MP_KF_COUNT] = {
#define FAMILY(e, name, prefix, f)                                                       \
    [e] = {name, prefix, mp_kernel_src_##f, mp_kernel_spv_##f, &mp_kernel_src_##f##_len, \
           &mp_kernel_spv_##f##_len}
    FAMILY(MP_KF_CUTLASS, "cutlass-int4", "cutlass", cutlass_int4),
    FAMILY(MP_KF_ONEDNN, "onednn-int4", "onednn", onednn_int4),
    FAMILY(MP_KF_GPTQ, "gptq", "gptq", gptq),
    FAMILY(MP_KF_AWQ, "awq", "awq", awq),
    FAMILY(MP_KF_CT, "compressed-tensors", "ct", compressed_tensors),
    FAMILY(MP_KF_GGUF, "gguf", "gguf", gguf),
#undef FAMILY
};

const char *mp_kfamily_name(mp_kfamily f) { return families[f].name; }
const char *mp_kfamily_prefix(mp_kfamily f) { return families[f].prefix; }

const char *mp_kfamily_source(mp_kfamily f, size_t *len)
{
    *len = *families[f].src_len;
    return (const char *)families[f].src;
}

const unsigned char *mp_kfamily_spirv(mp_kfamily f, size_t *len)
{
    *len = *families[f].spv_len;
    return families[f].spv;
}

const char *mp_kernel_cuda_prelude(size_t *len)
{
    *len = mp_kernel_cuda_prelude_src_len;
    return (const char *)mp_kernel_cuda_prelude_src;
}
