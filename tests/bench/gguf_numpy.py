#!/usr/bin/env python3
"""gguf-py's numpy dequantization throughput (GB/s of f32 output), per type, best of 2 over 32M (the size bench_gguf uses)
elements of random blocks with finite scales. Prints "TYPE GB/s" lines for bench_gguf."""
import time

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

SCALES = {T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0], T.Q2_K: [80, 82],
          T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208], T.TQ1_0: [52], T.TQ2_0: [64],
          T.IQ4_NL: [0], T.IQ4_XS: [0], T.MXFP4: [], T.F16: [], T.BF16: []}
N = 32 << 20
rng = np.random.default_rng(1)
for qtype, offs in SCALES.items():
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (N // block, size), dtype=np.uint8)
    for o in offs:
        raw[:, o + 1] = 0x30 + (raw[:, o + 1] & 7)
    if qtype == T.MXFP4:
        raw[:, 0] = 120 + (raw[:, 0] & 15)
    if qtype in (T.F16, T.BF16):
        raw[:, 1::2] &= 0x3F
    raw = raw.reshape(1024, -1)
    best = 1e30
    for _ in range(2):
        t0 = time.perf_counter()
        dequantize(raw, qtype)
        best = min(best, time.perf_counter() - t0)
    print(qtype.name, N * 4 / best / 1e9)
