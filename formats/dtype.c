/*
 * dtype.c - the safetensors element types: names and sizes in one table
 * (doc/formats/safetensors.md §3).
 */
#include "formats.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    unsigned bits;
} dtype_traits[MP_DTYPE_COUNT] = {
    [MP_DTYPE_BOOL] = {"BOOL", 8},
    [MP_DTYPE_F4] = {"F4", 4},
    [MP_DTYPE_F6_E2M3] = {"F6_E2M3", 6},
    [MP_DTYPE_F6_E3M2] = {"F6_E3M2", 6},
    [MP_DTYPE_U8] = {"U8", 8},
    [MP_DTYPE_I8] = {"I8", 8},
    [MP_DTYPE_F8_E5M2] = {"F8_E5M2", 8},
    [MP_DTYPE_F8_E4M3] = {"F8_E4M3", 8},
    [MP_DTYPE_F8_E8M0] = {"F8_E8M0", 8},
    [MP_DTYPE_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
    [MP_DTYPE_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
    [MP_DTYPE_I16] = {"I16", 16},
    [MP_DTYPE_U16] = {"U16", 16},
    [MP_DTYPE_F16] = {"F16", 16},
    [MP_DTYPE_BF16] = {"BF16", 16},
    [MP_DTYPE_I32] = {"I32", 32},
    [MP_DTYPE_U32] = {"U32", 32},
    [MP_DTYPE_F32] = {"F32", 32},
    [MP_DTYPE_C64] = {"C64", 64},
    [MP_DTYPE_F64] = {"F64", 64},
    [MP_DTYPE_I64] = {"I64", 64},
    [MP_DTYPE_U64] = {"U64", 64},
};
_Static_assert(sizeof dtype_traits / sizeof dtype_traits[0] == MP_DTYPE_COUNT,
               "one entry per dtype");
_Static_assert(MP_DTYPE_COUNT == 22, "safetensors defines 22 dtype names");

const char *mp_dtype_name(mp_dtype t)
{
    return (unsigned)t < MP_DTYPE_COUNT ? dtype_traits[t].name : "?";
}

unsigned mp_dtype_bits(mp_dtype t)
{
    return (unsigned)t < MP_DTYPE_COUNT ? dtype_traits[t].bits : 0;
}

int mp_dtype_parse(const char *s, mp_dtype *out)
{
    for (int i = 0; i < MP_DTYPE_COUNT; i++) {
        if (strcmp(s, dtype_traits[i].name) == 0) {
            *out = (mp_dtype)i;
            return 1;
        }
    }
    return 0;
}

int mp_dtype_nbytes(mp_dtype t, uint64_t n_elems, uint64_t *out, const char **why)
{
    uint64_t bits;
    if (mp_mul_overflow(n_elems, mp_dtype_bits(t), &bits)) {
        *why = "overflow";
        return 1;
    }
    if (bits % 8 != 0) {
        *why = "partial byte";
        return 1;
    }
    *out = bits / 8;
    return 0;
}

void mp_shape_format(const mp_tensor *t, char *buf, size_t cap)
{
    size_t n = 0;
    int w = snprintf(buf, cap, "[");
    n = (size_t)w;
    for (uint32_t d = 0; d < t->n_dims && n < cap; d++) {
        w = snprintf(buf + n, cap - n, "%s%llu", d ? ", " : "", (unsigned long long)t->shape[d]);
        if (w < 0) return;
        n += (size_t)w;
    }
    if (n < cap) snprintf(buf + n, cap - n, "]");
}
