#!/usr/bin/env python3
"""A bitsandbytes NF4 checkpoint (nested absmax, blocksize 64) for make bench, quantized by PyPI
bitsandbytes itself on the CPU and saved as Linear4bit.state_dict() is: LAYERS linears of
[N, K] plus a bf16 head. Run with build/venv-torch's Python.

    bnb_model.py DIR [LAYERS N K]
"""
import json
import os
import sys

import torch
import bitsandbytes.functional as F
from safetensors.torch import save_file

d = sys.argv[1]
layers, n, k = (int(a) for a in (sys.argv[2:5] if len(sys.argv) > 4 else (4, 11008, 4096)))
os.makedirs(d, exist_ok=True)
g = torch.Generator().manual_seed(64)
t = {}
for i in range(layers):
    p = f"model.layers.{i}.mlp.up_proj.weight"
    w = (torch.randn(n, k, generator=g) * 0.02).to(torch.bfloat16)
    q, st = F.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=True)
    t[p] = q
    t.update({f"{p}.{key}": v for key, v in st.as_dict(packed=True).items()})
t["lm_head.weight"] = torch.zeros(256, k, dtype=torch.bfloat16)
save_file(t, os.path.join(d, "model.safetensors"))
cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "bfloat16",
       "quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": True,
                               "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}}
json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
