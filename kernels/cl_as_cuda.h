/*
 * cl_as_cuda.h - just enough OpenCL C, in CUDA C++, for NVRTC to compile the kernel sources for
 * the cuda backend (verify/device_cuda.c puts this text before each source), as cl_as_c.h does
 * for the cpu backend. No header is included: NVRTC ships none (doc/cuda.md, "The prelude").
 *
 * - A kernel is `extern "C" __global__`, so its entry keeps its OpenCL name (no C++ mangling).
 * - __global vanishes; the sources never write the unprefixed `global`, which CUDA's own
 *   __global__ expands to.
 * - get_global_id(d) is block index times block size plus thread index, widened before the
 *   multiplication; the backend launches ceil(global / local) blocks and every entry checks
 *   its bounds.
 * - vload_half converts with cvt.f32.f16, exact for every half (subnormals included), as the
 *   OpenCL built-in and cl_as_c.h are.
 * NVRTC runs with -default-device, so the sources' static inline helpers are device functions.
 */
#ifndef MP_CL_AS_CUDA_H
#define MP_CL_AS_CUDA_H

#define __kernel extern "C" __global__
#define __global

typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong; /* 64 bits on LP64, as in OpenCL */
typedef unsigned short half; /* storage only, as OpenCL 1.2 without cl_khr_fp16 */

static __device__ __forceinline__ size_t get_global_id(uint d)
{
    if (d == 0) return (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (d == 1) return (size_t)blockIdx.y * blockDim.y + threadIdx.y;
    return (size_t)blockIdx.z * blockDim.z + threadIdx.z;
}

static __device__ __forceinline__ float as_float(uint u) { return __uint_as_float(u); }
static __device__ __forceinline__ uint as_uint(float f) { return __float_as_uint(f); }

static __device__ __forceinline__ float vload_half(size_t i, const half *p)
{
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(p[i]));
    return f;
}

#endif /* MP_CL_AS_CUDA_H */
