"""Reference packers and dequantizers for the quantized-checkpoint cross-check.

The packers follow the upstream packing loops (doc/formats/gptq.md §2, §3, awq.md §1,
§2, compressed-tensors.md §2): AutoGPTQ's `QuantLinear.pack` (including its 3-bit branch), AutoAWQ's
`WQLinear_GEMM.from_linear` and `WQLinear_GEMV`, and compressed-tensors' `pack_to_int32`.
The dequantizers are written separately, from the formulas of doc/formats/README.md §3, with numpy bit unpacking, so
a packer bug and a dequantizer bug cannot cancel out.
"""
import numpy as np

AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]
AWQ_REVERSE = [0, 4, 1, 5, 2, 6, 3, 7]


# ---------------------------------------------------------------- packers (upstream loops)

def pack_gptq_rows(intweight, b):
    """AutoGPTQ QuantLinear.pack: intweight [K, N] -> qweight [K*b/32, N] (K % 32 == 0 for 3-bit)."""
    intweight = intweight.astype(np.uint32)
    K, N = intweight.shape
    qweight = np.zeros((K * b // 32, N), dtype=np.uint32)
    i = row = 0
    if b in (2, 4, 8):
        while row < qweight.shape[0]:
            for j in range(i, i + 32 // b):
                qweight[row] |= intweight[j] << np.uint32(b * (j - i))
            i += 32 // b
            row += 1
    elif b == 3:
        while row < qweight.shape[0]:
            for j in range(i, i + 10):
                qweight[row] |= intweight[j] << np.uint32(3 * (j - i))
            i += 10
            qweight[row] |= intweight[i] << np.uint32(30)
            row += 1
            qweight[row] |= (intweight[i] >> np.uint32(2)) & np.uint32(1)
            i += 1
            for j in range(i, i + 10):
                qweight[row] |= intweight[j] << np.uint32(3 * (j - i) + 1)
            i += 10
            qweight[row] |= intweight[i] << np.uint32(31)
            row += 1
            qweight[row] |= (intweight[i] >> np.uint32(1)) & np.uint32(3)
            i += 1
            for j in range(i, i + 10):
                qweight[row] |= intweight[j] << np.uint32(3 * (j - i) + 2)
            i += 10
            row += 1
    else:
        raise ValueError(b)
    return qweight


def pack_bitstream_rows(codes, b):
    """GPTQModel-style ceil packing along axis 0: code i of a column at bits [i*b, i*b+b)."""
    codes = codes.astype(np.uint64)
    K, N = codes.shape
    words = (K * b + 31) // 32
    out = np.zeros((words + 1, N), dtype=np.uint64)
    for i in range(K):
        bit = i * b
        w, s = divmod(bit, 32)
        v = codes[i] << np.uint64(s)
        out[w] |= v & np.uint64(0xFFFFFFFF)
        out[w + 1] |= v >> np.uint64(32)
    return out[:words].astype(np.uint32)


def pack_gptq_zeros(zeros, b, v1):
    """AutoGPTQ qzeros [G, N*b/32] packed along N; v1 stores z - 1."""
    z = zeros.astype(np.int64) - (1 if v1 else 0)
    assert (z >= 0).all(), "v1 cannot store z = 0"
    if b == 3 and zeros.shape[1] % 32 == 0:
        return pack_gptq_rows(z.T.astype(np.uint32), 3).T.copy()
    if b in (2, 4, 8):
        return pack_gptq_rows(z.T.astype(np.uint32), b).T.copy()
    return pack_bitstream_rows(z.T, b).T.copy()


def pack_awq_gemm(intweight):
    """AutoAWQ WQLinear_GEMM.from_linear: intweight [K, N] -> [K, N/8] with AWQ_ORDER."""
    intweight = intweight.astype(np.uint32)
    K, N = intweight.shape
    out = np.zeros((K, N // 8), dtype=np.uint32)
    for col in range(N // 8):
        for i in range(8):
            out[:, col] |= intweight[:, col * 8 + AWQ_ORDER[i]] << np.uint32(4 * i)
    return out


def pack_sequential_cols(codes, b=4):
    """Sequential packing along axis 1: [R, C] -> [R, ceil(C*b/32)] (AWQ GEMV, CT)."""
    return pack_bitstream_rows(codes.T, b).T.copy()


def pack_padded_cols(codes, b):
    """compressed-tensors before dense packing: 32//b codes a word at shifts b*i, no straddling."""
    per = 32 // b
    R, C = codes.shape
    W = (C + per - 1) // per
    out = np.zeros((R, W), dtype=np.uint32)
    for c in range(C):
        out[:, c // per] |= codes[:, c].astype(np.uint32) << np.uint32(b * (c % per))
    return out


# ---------------------------------------------------------------- dequantizers (formulas, §7)

def bits_of(words, axis):
    """Little-endian bit matrix of uint32 words taken along `axis`: returns [..., nbits]."""
    w = np.moveaxis(words.astype(np.uint32), axis, -1)
    b = np.ascontiguousarray(w.astype('<u4')).view(np.uint8)
    return np.unpackbits(b, axis=-1, bitorder='little')


def codes_from_bits(bits, count, b, start=0):
    idx = start + np.arange(count)[:, None] * b + np.arange(b)[None, :]
    sel = bits[..., idx]                      # [..., count, b]
    return (sel.astype(np.int64) << np.arange(b)).sum(-1)


def dq_gptq(qweight, qzeros, scales, g_idx, b, zero_offset, K):
    N = qweight.shape[1]
    q = codes_from_bits(bits_of(qweight, 0), K, b)                 # [N, K]
    z = codes_from_bits(bits_of(qzeros, 1), N, b) + zero_offset    # [G, N]
    g = g_idx
    s = scales.astype(np.float32)                                  # [G, N]
    return s[g, :].T * (q - z[g, :].T).astype(np.float32)


def dq_awq_gemm(qweight, qzeros, scales, group_size):
    K, N = qweight.shape[0], qweight.shape[1] * 8
    n = np.arange(N)
    shift = 4 * np.array(AWQ_REVERSE)[n % 8]
    q = (qweight[:, n // 8].astype(np.int64) >> shift) & 15        # [K, N]
    z = (qzeros[:, n // 8].astype(np.int64) >> shift) & 15         # [G, N]
    g = np.arange(K) // group_size
    return (scales.astype(np.float32)[g, :] * (q - z[g, :]).astype(np.float32)).T


def dq_awq_gemv(qweight, qzeros, scales, group_size):
    N, K = qweight.shape[0], qweight.shape[1] * 8
    k = np.arange(K)
    q = (qweight[:, k // 8].astype(np.int64) >> (4 * (k % 8))) & 15   # [N, K]
    g = k // group_size
    z = (qzeros[:, g // 8].astype(np.int64) >> (4 * (g % 8))) & 15
    return scales.astype(np.float32)[:, g] * (q - z).astype(np.float32)


def dq_ct(packed, scale, shape, b, group_size, zp=None, g_idx=None, padded=False):
    N, K = shape
    off = 1 << (b - 1)
    if padded:
        per = 32 // b
        k = np.arange(K)
        q = ((packed[:, k // per].astype(np.int64) >> (b * (k % per))) & ((1 << b) - 1)) - off
    else:
        q = codes_from_bits(bits_of(packed, 1), K, b) - off
    g = g_idx if g_idx is not None else np.arange(K) // group_size
    if zp is None:
        z = np.zeros((N, scale.shape[1]), dtype=np.int64)
    elif padded:
        per = 32 // b
        n = np.arange(N)
        z = ((zp[n // per, :].astype(np.int64) >> (b * (n % per))[:, None]) & ((1 << b) - 1)) - off
    else:
        z = codes_from_bits(bits_of(zp, 0), N, b) - off       # [G, N] -> transpose
        z = z.T
    return scale.astype(np.float32)[:, g] * (q - z[:, g]).astype(np.float32)


# ---------------------------------------------------------------- nibbles of int32 words
# For the tests that tamper with a packed layout (swap nibbles, transpose codes) to prove that
# verify catches it.

def nibbles(words, count):
    """int32 words -> their `count` nibbles each, LSB first."""
    u = words.view(np.uint32)
    return np.stack([(u >> (4 * i)) & 15 for i in range(count)], axis=-1)


def pack8(codes):
    """[..., 8] nibbles -> int32 words."""
    w = np.zeros(codes.shape[:-1], dtype=np.uint32)
    for i in range(8):
        w |= (codes[..., i].astype(np.uint32) & 15) << (4 * i)
    return w.view(np.int32)
