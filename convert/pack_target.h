/*
 * pack_target.h - internal to convert/: writing quantized linears in a packed layout (any
 * registry entry with the MP_SCHEME_TARGET role) through repack/.
 */
#ifndef MP_PACK_TARGET_H
#define MP_PACK_TARGET_H

#include "../formats/formats.h"
#include "../repack/repack.h"

typedef enum { PART_CODES, PART_ZEROS, PART_SCALES, PART_GIDX, PART_SHAPE, PART_COUNT } mp_part;

/* What one quantized linear becomes in the target layout. */
typedef struct mp_lin_plan {
    const mp_qlinear *src;
    mp_packing src_codes, src_zeros;
    mp_packing dst_codes, dst_zeros;
    int write_zeros;
    int write_g_idx;
    mp_dtype scale_dtype;
} mp_lin_plan;

typedef struct mp_pack_opts {
    const mp_scheme *target; /* a registry entry with MP_SCHEME_TARGET */
    int s4;                  /* --int4 s4, where the target has signed_int4 */
    int scale_dtype_given;   /* --scale-dtype */
    mp_dtype scale_dtype;
    const char *torch_dtype; /* config.json's, to default the device layouts' scale dtype */
} mp_pack_opts;

/* Checks that every linear can be expressed in the target (bits, act-order, zero points, group
 * sizes, uniform parameters for one quantization_config) and fills one plan per linear. Reads
 * every zero-point tensor once: a refusal comes before anything is written. */
mp_errcode mp_pack_prepare(const mp_st_model *m, const mp_qmodel *qm, const mp_pack_opts *o,
                           mp_lin_plan *plans, mp_err *err);

/* The output tensor of a part, or 0 when the linear has no such part in the target. */
int mp_pack_part_spec(const mp_pack_opts *o, const mp_lin_plan *p, mp_part part, char *name,
                      size_t cap, mp_tensor_spec *spec);

typedef mp_errcode (*mp_sink)(void *ctx, const void *buf, size_t len, mp_err *err);

/* Buffers reused from tile to tile and linear to linear: fresh multi-megabyte allocations per
 * tile cost a page fault per 4 KiB (measured: 18% of a convert). Start zeroed; free with
 * mp_pack_scratch_release(). */
typedef struct mp_pack_scratch {
    uint8_t *src, *dst;
    size_t src_cap, dst_cap;
} mp_pack_scratch;

void mp_pack_scratch_release(mp_pack_scratch *s);

/* Produces the bytes of one part, in order, through `sink`, in bounded tiles. */
mp_errcode mp_pack_produce(const mp_st_model *m, const mp_pack_opts *o, const mp_lin_plan *p,
                           mp_part part, mp_pack_scratch *scratch, mp_sink sink, void *ctx,
                           mp_err *err);

/* The target's quantization_config as JSON text (an object), from the first plan's parameters;
 * `dense` lists the linears left unquantized. */
mp_errcode mp_pack_config(const mp_pack_opts *o, const mp_lin_plan *plans, size_t n,
                          const mp_qmodel *qm, mp_buf *out, mp_err *err);

#endif
