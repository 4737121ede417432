/*
 * kernels_blob.h - internal to verify/: the kernel families built into the binary, one per
 * kernels/ .cl file, and the CUDA prelude. kernels/embed.sh writes the definitions at build
 * time from the file list, so adding a kernel file adds its family here with no edit.
 */
#ifndef MP_KERNELS_BLOB_H
#define MP_KERNELS_BLOB_H

#include "verify.h"

#include <stddef.h>

typedef struct mp_kfamily_def {
    const char *stem;            /* the file kernels/<stem>.cl; a registry entry's .kernel */
    const char *name;            /* the stem with '-' for '_': "cutlass-int4", for reports */
    const char *prefix;          /* of its entry points <prefix>_dequant and <prefix>_gemm */
    const unsigned char *src;    /* OpenCL C, mp_kernel.h folded in, NUL-terminated */
    size_t src_len;              /* without the NUL */
    const unsigned char *spv;    /* its SPIR-V module (Level Zero) */
    size_t spv_len;
} mp_kfamily_def;

/* In the order of the file list; mp_kfamily values index it. */
extern const mp_kfamily_def mp_kfamilies[];
extern const int mp_n_kfamilies;

/* kernels/cl_as_cuda.h, which NVRTC reads before a source (the cuda backend). */
extern const unsigned char *const mp_kernel_cuda_prelude_src;
extern const size_t mp_kernel_cuda_prelude_src_len;

#endif /* MP_KERNELS_BLOB_H */
