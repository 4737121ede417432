#!/usr/bin/env python3
"""bench: DeepSeek's fp8_cast_bf16.py as people run it without a GPU: each shard loaded whole,
every FP8 weight with a weight_scale_inv dequantized by a CPU torch port of
inference/kernel.py weight_dequant (f32 product per 128 x 128 block, cast to bf16), the shard
saved. Usage: torch_weight_dequant.py SRC DST"""
import os
import sys

import torch
from safetensors.torch import load_file, save_file


def weight_dequant(x, s, block=128):
    n, k = x.shape
    full = s.repeat_interleave(block, 0)[:n].repeat_interleave(block, 1)[:, :k]
    return (x.to(torch.float32) * full).to(torch.bfloat16)


src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst)
torch.set_num_threads(os.cpu_count())
for f in sorted(os.listdir(src)):
    if not f.endswith(".safetensors"):
        continue
    t = load_file(os.path.join(src, f))
    out = {}
    for name, v in t.items():
        if name.endswith("_scale_inv"):
            continue
        s = t.get(name + "_scale_inv")
        out[name] = weight_dequant(v, s) if s is not None and v.element_size() == 1 else v
    save_file(out, os.path.join(dst, f))
