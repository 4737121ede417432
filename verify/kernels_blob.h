/*
 * kernels_blob.h - internal to verify/: the kernel sources, their SPIR-V modules and the CUDA
 * prelude built into the binary (kernels/embed.sh writes the definitions at build time).
 */
#ifndef MP_KERNELS_BLOB_H
#define MP_KERNELS_BLOB_H

#include <stddef.h>

#define MP_BLOB(f)                                    \
    extern const unsigned char mp_kernel_src_##f[];   \
    extern const size_t mp_kernel_src_##f##_len;      \
    extern const unsigned char mp_kernel_spv_##f[];   \
    extern const size_t mp_kernel_spv_##f##_len;
MP_BLOB(cutlass_int4)
MP_BLOB(onednn_int4)
MP_BLOB(gptq)
MP_BLOB(awq)
MP_BLOB(compressed_tensors)
MP_BLOB(gguf)
#undef MP_BLOB

/* kernels/cl_as_cuda.h, which NVRTC reads before a source (the cuda backend). */
extern const unsigned char mp_kernel_cuda_prelude_src[];
extern const size_t mp_kernel_cuda_prelude_src_len;

#endif /* MP_KERNELS_BLOB_H */
