#!/usr/bin/env python3
"""The baseline for `make bench`: GPTQ [K/8, N] int32 -> cutlass-int4 [N, K/2] uint8 done the
straightforward numpy way (unpack nibbles, transpose, repack pairs), as engines do at load time.
Prints the throughput in GB/s of packed input (best of 3) on one line."""
import time

import numpy as np

N, K = 11008, 4096
rng = np.random.default_rng(0)
qweight = rng.integers(0, 2**32, (K // 8, N), dtype=np.uint64).astype(np.uint32)
best = 1e30
for _ in range(3):
    t0 = time.perf_counter()
    shifts = (np.arange(8, dtype=np.uint32) * 4)[None, :, None]
    q = ((qweight[:, None, :] >> shifts) & 15).reshape(K, N).astype(np.uint8)   # [K, N]
    qt = q.T                                                                    # [N, K]
    out = (qt[:, 0::2] | (qt[:, 1::2] << 4)).astype(np.uint8)                   # [N, K/2]
    best = min(best, time.perf_counter() - t0)
assert out.shape == (N, K // 2)
print(f"{qweight.nbytes / best / 1e9:.4f}")
