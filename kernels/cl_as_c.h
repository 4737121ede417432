/*
 * cl_as_c.h - just enough OpenCL C, in C11, to compile the kernel sources for the cpu backend.
 *
 * Included once, before the .cl files, by verify/kernels_cpu.c. The address-space qualifiers
 * vanish, the vector-free scalar types become typedefs, a kernel becomes a static function, and
 * get_global_id() reads the work-item index the caller's loop sets. vload_half converts exactly
 * (every f16 is an f32), so the C build computes the very values an OpenCL device must.
 */
#ifndef MP_CL_AS_C_H
#define MP_CL_AS_C_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define __kernel static inline __attribute__((always_inline))
#define __global
#define MP_SIMD _Pragma("omp simd")
#define MP_PREFETCH(p) __builtin_prefetch(p)
#define MP_INLINE static inline __attribute__((always_inline))

typedef uint8_t uchar;
typedef uint16_t ushort;
typedef unsigned int uint;
typedef uint64_t ulong;
typedef uint16_t half;

/* The work item being run, per thread. */
extern _Thread_local size_t mp_cl_gid[2];
#define get_global_id(d) mp_cl_gid[(d)]

static inline float as_float(uint u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint as_uint(float f)
{
    uint u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float vload_half(size_t i, const half *p)
{
    half bits;
    memcpy(&bits, (const unsigned char *)p + 2 * i, sizeof bits); /* any alignment, no aliasing */
    uint h = bits, sign = (h & 0x8000u) << 16, exp = (h >> 10) & 31u, man = h & 0x3ffu;
    if (exp == 31) return as_float(sign | 0x7f800000u | man << 13);      /* Inf, NaN */
    if (exp == 0) {
        if (man == 0) return as_float(sign);                              /* +-0 */
        int e = -1;                                                       /* subnormal: normalize */
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400u));
        return as_float(sign | (uint)(127 - 15 - e) << 23 | (man & 0x3ffu) << 13);
    }
    return as_float(sign | (exp + 112u) << 23 | man << 13);
}

#endif /* MP_CL_AS_C_H */
