#!/usr/bin/env python3
"""The FP8 sources against the upstream code itself (PyPI torch, transformers, compressed-tensors,
on the CPU), on checkpoints generated here. Run with the Python of build/venv-torch
(tests/ref/torch_env.sh makes it); MP_BIN is the binary under test.

1. compressed-tensors `dequantize` (quantization/lifecycle/forward.py) for tensor, channel,
   group and block strategies, BF16/F16/F32 scales, a ragged block grid: modelprep's
   `convert --to bf16|f32` equals it bit for bit.
2. DeepSeek's `weight_dequant` (a CPU torch port of the Triton kernel: f32 product per
   128 x 128 block, one cast) on ragged grids, e5m2, NaN codes: equal.
3. transformers' `Fp8Dequantize._dequantize_one` (the fine-grained FP8 conversion): equal where
   the block divides the shape; where it does not, it raises (576 rows, grid 5) or derives a
   wrong block from the grid (200 rows, grid 2): both shown, and modelprep follows DeepSeek.
4. ModelOpt's `from_quantized_weight` expression (code and scale cast to the model dtype, then
   multiplied): equal, and different from the f32 path somewhere.
5. A tiny Llama quantized to FP8 blocks converts to bf16, loads in transformers with no
   missing, unexpected or mismatched key, and gives the same logits as the model built from the
   reference weights.
"""
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import check, summary  # noqa: E402
from hf_judge import convert, write_checkpoint  # noqa: E402

TMP = tempfile.mkdtemp(prefix="mp-upstream-")
g = torch.Generator().manual_seed(15)
E4M3, E5M2 = torch.float8_e4m3fn, torch.float8_e5m2


def rand_codes(n, k, dt=E4M3, nan=False):
    c = torch.randint(0, 256, (n, k), generator=g, dtype=torch.uint8)
    if not nan:
        c[(c & 0x7F) == 0x7F] = 0x3C
    return c.view(dt)


def rand_scales(shape, dtype=torch.float32):
    return (torch.rand(shape, generator=g) * 1e-2 + 1e-5).to(dtype)


def write(name, tensors, qconfig, torch_dtype="bfloat16", side=None):
    return write_checkpoint(os.path.join(TMP, name), tensors, qconfig, torch_dtype, side)


def same(a, b, what):
    check(a.dtype == b.dtype and a.shape == b.shape, f"{what}: {a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}")
    ia, ib = a.contiguous().view(torch.int16 if a.element_size() == 2 else torch.int32), \
        b.contiguous().view(torch.int16 if b.element_size() == 2 else torch.int32)
    # NaN is NaN: torch's CPU casts give NaN payloads of their own (bf16 0xFFFF for any NaN),
    # modelprep the quiet NaN of the code's sign, as ml_dtypes does (doc/formats/fp8.md).
    both_nan = torch.isnan(a.float()) & torch.isnan(b.float())
    n = int(((ia != ib) & ~both_nan).sum())
    check(n == 0, f"{what}: {n} values differ from upstream")


def deepseek_weight_dequant(x, s, bn=128, bk=128):
    """inference/kernel.py weight_dequant, on the CPU: f32 product per block, cast to bf16."""
    n, k = x.shape
    y = torch.empty(n, k, dtype=torch.bfloat16)
    for i in range(0, n, bn):
        for j in range(0, k, bk):
            y[i:i + bn, j:j + bk] = (x[i:i + bn, j:j + bk].to(torch.float32) * s[i // bn, j // bk]).to(torch.bfloat16)
    return y


def check_ct():
    from compressed_tensors.quantization import QuantizationArgs
    from compressed_tensors.quantization.lifecycle.forward import dequantize
    N, K = 200, 384
    cases = [("tensor", {}, (1,)), ("channel", {}, (N, 1)), ("group", {"group_size": 128}, (N, 3)),
             ("block", {"block_structure": [128, 128]}, (2, 3))]
    for sdt in (torch.bfloat16, torch.float16, torch.float32):
        for strategy, extra, sshape in cases:
            p = "model.layers.0.self_attn.o_proj"
            w, s = rand_codes(N, K), rand_scales(sshape, sdt)
            qc = {"quant_method": "compressed-tensors", "format": "float-quantized",
                  "config_groups": {"group_0": {"targets": ["Linear"], "weights": dict(
                      num_bits=8, type="float", strategy=strategy, symmetric=True, **extra)}}}
            d = write(f"ct_{strategy}_{str(sdt)[6:]}", {p + ".weight": w, p + ".weight_scale": s}, qc)
            args = QuantizationArgs(num_bits=8, type="float", strategy=strategy, symmetric=True, **extra)
            want = dequantize(w, s, args=args)
            for to, tdt in (("bf16", torch.bfloat16), ("f32", torch.float32)):
                got = convert(d, to)[p + ".weight"]
                same(got, want.to(tdt), f"compressed-tensors {strategy} {sdt} --to {to}")


def check_deepseek_and_transformers():
    from transformers.integrations.finegrained_fp8 import Fp8Dequantize
    deq = Fp8Dequantize(None)
    cases = [("aligned", 256, 384, E4M3, False), ("ragged", 576, 448, E4M3, False),
             ("ragged_divides", 200, 256, E4M3, False), ("e5m2_nan", 130, 260, E5M2, True)]
    for name, N, K, dt, nan in cases:
        p = "model.layers.0.mlp.down_proj"
        w, s = rand_codes(N, K, dt, nan), rand_scales(((N + 127) // 128, (K + 127) // 128))
        d = write(f"ds_{name}", {p + ".weight": w, p + ".weight_scale_inv": s},
                  {"quant_method": "fp8", "weight_block_size": [128, 128], "activation_scheme": "dynamic"})
        got = convert(d, "bf16")[p + ".weight"]
        same(got, deepseek_weight_dequant(w, s), f"DeepSeek weight_dequant {name}")
        if N % 128 == 0 and K % 128 == 0:
            same(got, deq._dequantize_one(w, s, torch.bfloat16), f"transformers Fp8Dequantize {name}")
        elif N % s.shape[0] or K % s.shape[1]:
            try:
                deq._dequantize_one(w, s, torch.bfloat16)
                check(False, f"transformers accepted the ragged grid of {name}")
            except ValueError:
                check(True, "")
        else:
            t = deq._dequantize_one(w, s, torch.bfloat16)
            check(not torch.equal(t.view(torch.int16), got.view(torch.int16)),
                  f"transformers derives {N // s.shape[0]}-row blocks from the grid of {name}")


def check_modelopt():
    N, K = 64, 512
    p = "model.layers.0.mlp.up_proj"
    w, s = rand_codes(N, K), rand_scales(())
    hf = {"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "FP8", "exclude_modules": ["lm_head"]}}
    d = write("modelopt", {p + ".weight": w, p + ".weight_scale": s, p + ".input_scale": torch.tensor(1.0)},
              None, side={"hf_quant_config.json": hf})
    got = convert(d, "bf16")[p + ".weight"]
    want = w.to(torch.bfloat16) * s.to(torch.bfloat16)  # modelopt from_quantized_weight
    same(got, want, "ModelOpt from_quantized_weight")
    f32_path = (w.to(torch.float32) * s).to(torch.bfloat16)
    check(not torch.equal(f32_path.view(torch.int16), want.view(torch.int16)), "the ModelOpt case is not the f32 path")


def quantize_block(wt, bn, bk):
    n, k = wt.shape
    s = torch.empty((n + bn - 1) // bn, (k + bk - 1) // bk)
    q = torch.empty(n, k, dtype=E4M3)
    for i in range(0, n, bn):
        for j in range(0, k, bk):
            blk = wt[i:i + bn, j:j + bk].float()
            sc = blk.abs().max().clamp(min=1e-12) / 448.0
            s[i // bn, j // bk] = sc
            q[i:i + bn, j:j + bk] = (blk / sc).to(E4M3)
    return q, s


def check_llama_loads():
    from hf_judge import convert_and_load, tiny_llama
    cfg, model = tiny_llama()
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    fp8, ref = {}, {}
    for k, v in sd.items():
        if k.endswith("proj.weight"):
            q, s = quantize_block(v, 64, 64)
            fp8[k], fp8[k + "_scale_inv"] = q, s
            ref[k] = deepseek_weight_dequant(q, s, 64, 64)
        else:
            fp8[k] = v
            ref[k] = v
    convert_and_load(TMP, cfg, {"quant_method": "fp8", "weight_block_size": [64, 64], "activation_scheme": "dynamic"},
                     fp8, ref)


check_ct()
check_deepseek_and_transformers()
check_modelopt()
check_llama_loads()
summary("float_upstream")
