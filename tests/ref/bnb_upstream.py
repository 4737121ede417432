#!/usr/bin/env python3
"""The bitsandbytes sources against bitsandbytes itself (PyPI, on the CPU), on checkpoints that
bitsandbytes' own modules write (Linear4bit / Linear8bitLt state_dict, as transformers saves
them). Run with the Python of build/venv-torch (tests/ref/torch_env.sh, then the Makefile's
bitsandbytes stamp); MP_BIN is the binary under test.

1. 4-bit, NF4 and FP4, plain and nested absmax, bf16/f16/f32 quant_state dtypes, blocks that
   straddle rows, ragged last blocks, odd K, an all-zero block (absmax 0), a packed weight
   stored as BF16 (bnb_4bit_quant_storage):
   `convert --to <the state's dtype>` equals bitsandbytes' `dequantize_4bit` bit for bit. The
   judge is bitsandbytes' CPU backend (its C++ kernel) where it handles the shape, and its
   PyTorch reference `_dequantize_4bit_compute` (backends/default/ops.py) everywhere; where
   the C++ kernel disagrees with the reference (blocks that straddle rows) that is shown, and
   modelprep follows the reference (doc/formats/bitsandbytes.md §6).
2. LLM.int8: `convert --to f32` equals `int8_vectorwise_dequant`, and bf16 its cast.
3. modules_to_not_convert: the skipped module stays dense and is only cast; a sharded source
   converts to a sharded output whose rebuilt index names no quant_state part.
4. A tiny Llama quantized with Linear4bit (nested NF4) converts to bf16, loads in transformers
   with no missing, unexpected or mismatched key, holds the dequantized weights, and gives the
   same logits as the model built from the reference weights.
"""
import json
import os
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import check, run, summary  # noqa: E402
from hf_judge import convert, write_checkpoint  # noqa: E402

import bitsandbytes as bnb  # noqa: E402
import bitsandbytes.functional as F  # noqa: E402
from bitsandbytes.backends.default.ops import _dequantize_4bit_compute  # noqa: E402

TMP = tempfile.mkdtemp(prefix="mp-bnb-")
DT = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
TO = {"bfloat16": "bf16", "float16": "f16", "float32": "f32"}
print(f"bitsandbytes {bnb.__version__}, torch {torch.__version__}")


def linear4(w, qt, nested, bs, storage=torch.uint8):
    """A Linear4bit holding w, quantized by bitsandbytes on the CPU; its state_dict."""
    n, k = w.shape
    lin = bnb.nn.Linear4bit(k, n, bias=False, compute_dtype=w.dtype, quant_type=qt,
                            compress_statistics=nested, quant_storage=storage)
    lin.weight = bnb.nn.Params4bit(w, requires_grad=False, quant_type=qt, blocksize=bs,
                                   compress_statistics=nested, quant_storage=storage)
    lin = lin.to("cpu")
    check(lin.weight.bnb_quantized, "Params4bit quantized on the CPU")
    return lin, lin.state_dict()


def write(name, tensors, qconfig, torch_dtype="bfloat16"):
    return write_checkpoint(os.path.join(TMP, name), tensors, qconfig, torch_dtype)


def ndiff(a, b):
    check(a.dtype == b.dtype and a.shape == b.shape, f"{a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}")
    ia = a.contiguous().view(torch.int16 if a.element_size() == 2 else torch.int32)
    ib = b.contiguous().view(torch.int16 if b.element_size() == 2 else torch.int32)
    return int((ia != ib).sum())


def qcfg4(qt, nested, skip=None):
    return {"quant_method": "bitsandbytes", "load_in_4bit": True, "load_in_8bit": False,
            "bnb_4bit_quant_type": qt, "bnb_4bit_use_double_quant": nested,
            "bnb_4bit_compute_dtype": "bfloat16", "bnb_4bit_quant_storage": "uint8",
            "llm_int8_skip_modules": skip}


def zero_signs(a, b):
    """Values that differ only as +0.0 against -0.0."""
    fa, fb = a.float().reshape(-1), b.float().reshape(-1)
    return int(((fa == 0) & (fb == 0) & (torch.signbit(fa) != torch.signbit(fb))).sum())


def reference4(w_packed, st, qt, shape):
    """bitsandbytes' PyTorch reference of dequantize_4bit (backends/default/ops.py)."""
    absmax = F.dequantize_blockwise(st.absmax, st.state2) + st.offset if st.nested else st.absmax
    return _dequantize_4bit_compute(w_packed.reshape(-1), absmax.float(), F.get_4bit_type(qt, device="cpu"),
                                    st.blocksize, shape, st.dtype)


def check_4bit_case(qt, nested, n, k, bs, dtype, storage=torch.uint8):
    g = torch.Generator().manual_seed(n * 1000 + k)
    w = (torch.randn(n, k, generator=g) * 0.05).to(DT[dtype])
    w.view(-1)[bs:2 * bs] = 0  # one all-zero block: absmax 0
    lin, sd = linear4(w, qt, nested, bs, storage)
    check(sd["weight"].dtype == storage, f"the packed weight is stored as {storage}")
    p = "model.layers.0.mlp.down_proj"
    name = f"{qt}_{'nested' if nested else 'plain'}_{n}x{k}_b{bs}_{dtype}_{str(storage)[6:]}"
    d = write(name, {f"{p}.{key}": v for key, v in sd.items()}, qcfg4(qt, nested))
    got = convert(d, TO[dtype])[p + ".weight"]
    st = lin.weight.quant_state
    cpu = F.dequantize_4bit(lin.weight.data.view(torch.uint8), st)  # the CPU backend (its C++ kernel where it applies)
    ref = reference4(lin.weight.data.view(torch.uint8), st, qt, (n, k))
    check(ndiff(got, ref) == 0, f"{name}: {ndiff(got, ref)} values differ from _dequantize_4bit_compute")
    diff, zeros = ndiff(got, cpu), zero_signs(got, cpu)
    straddle = k % bs != 0 and k % 2 == 0  # odd K: the CPU backend runs the PyTorch reference
    if not straddle:
        check(diff == zeros, f"{name}: {diff - zeros} values differ from bitsandbytes' CPU dequantize_4bit")
    print(f"  {name}: equal to _dequantize_4bit_compute; against the CPU kernel {diff - zeros} differ"
          f"{' (blocks straddle rows)' if straddle else ''}, {zeros} only in the sign of zero")
    return straddle and diff > zeros


def check_4bit():
    shown = False
    for qt in ("nf4", "fp4"):
        for nested in (False, True):
            for (n, k, bs, dt) in ((16, 256, 64, "bfloat16"), (7, 130, 64, "float16"), (5, 33, 64, "float32"),
                                   (130, 256, 32, "bfloat16"), (9, 100, 128, "bfloat16"), (5, 96, 64, "float32")):
                shown |= check_4bit_case(qt, nested, n, k, bs, dt)
    check_4bit_case("nf4", True, 16, 256, 64, "bfloat16", torch.bfloat16)  # bnb_4bit_quant_storage
    check_4bit_case("fp4", True, 3, 3000, 4096, "float16")  # the largest block: 3 blocks for 9000 elements
    check(shown, "the CPU kernel's disagreement on blocks that straddle rows is shown (else the note is stale)")


def check_int8():
    g = torch.Generator().manual_seed(8)
    w = (torch.randn(37, 300, generator=g) * 0.05).to(torch.float16)
    lin = bnb.nn.Linear8bitLt(300, 37, bias=True, has_fp16_weights=False)
    lin.weight = bnb.nn.Int8Params(w, requires_grad=False, has_fp16_weights=False)
    lin = lin.to("cpu")
    sd = lin.state_dict()
    check(sd["weight"].dtype == torch.int8 and "SCB" in sd, f"Linear8bitLt saves int8 weight and SCB: {list(sd)}")
    p = "model.layers.0.self_attn.o_proj"
    q = {"quant_method": "bitsandbytes", "load_in_8bit": True, "load_in_4bit": False, "llm_int8_skip_modules": None}
    d = write("int8", {f"{p}.{key}": v for key, v in sd.items()}, q, torch_dtype="float16")
    ref = torch.ops.bitsandbytes.int8_vectorwise_dequant(sd["weight"], sd["SCB"])
    got = convert(d, "f32")
    check(ndiff(got[p + ".weight"], ref) == 0, "LLM.int8 to f32 equals int8_vectorwise_dequant")
    check(set(got) == {p + ".weight", p + ".bias"}, f"SCB and weight_format dropped: {sorted(got)}")
    got = convert(d, "bf16")[p + ".weight"]
    check(ndiff(got, ref.to(torch.bfloat16)) == 0, "LLM.int8 to bf16 equals int8_vectorwise_dequant, cast")


def check_skip():
    g = torch.Generator().manual_seed(3)
    w = (torch.randn(64, 128, generator=g) * 0.05).to(torch.bfloat16)
    _, sd = linear4(w, "nf4", False, 64)
    head = torch.randn(32, 128, generator=g).to(torch.float16)
    t = {f"model.layers.0.mlp.up_proj.{key}": v for key, v in sd.items()}
    t["lm_head.weight"] = head
    d = write("skip", t, qcfg4("nf4", False, ["lm_head"]))
    got = convert(d, "bf16")
    check(torch.equal(got["lm_head.weight"], head.to(torch.bfloat16)), "modules_to_not_convert: lm_head cast only")
    check(sorted(got) == ["lm_head.weight", "model.layers.0.mlp.up_proj.weight"], f"keys {sorted(got)}")
    cfg = json.load(open(d + ".bf16/config.json"))
    check("quantization_config" not in cfg and cfg["torch_dtype"] == "bfloat16", f"config {cfg}")
    # sharded, both ways: the source's index names the quant_state parts, the output's must not
    idx = {"metadata": {"total_size": 0}, "weight_map": {}}
    for i, name in enumerate(sorted(t)):
        idx["weight_map"][name] = f"model-0000{i % 2 + 1}-of-00002.safetensors"
    d2 = os.path.join(TMP, "skip-sharded")
    os.makedirs(d2)
    for f in sorted(set(idx["weight_map"].values())):
        save_file({k: v.contiguous() for k, v in t.items() if idx["weight_map"][k] == f}, os.path.join(d2, f))
    json.dump(idx, open(os.path.join(d2, "model.safetensors.index.json"), "w"))
    json.dump(json.load(open(os.path.join(d, "config.json"))), open(os.path.join(d2, "config.json"), "w"))
    r = run("convert", d2, d2 + ".bf16", "--to", "bf16", "--max-shard-size", "10000", "--quiet")
    check(r.returncode == 0, f"convert sharded: {r.stderr}")
    wm = json.load(open(os.path.join(d2 + ".bf16", "model.safetensors.index.json")))["weight_map"]
    check(sorted(wm) == ["lm_head.weight", "model.layers.0.mlp.up_proj.weight"], f"rebuilt index {sorted(wm)}")
    sharded = {}
    for f in set(wm.values()):
        sharded.update(load_file(os.path.join(d2 + ".bf16", f)))
    check(all(torch.equal(sharded[k], got[k]) for k in got), "the sharded conversion holds the same tensors")


def check_llama_loads():
    from hf_judge import convert_and_load, tiny_llama
    cfg, model = tiny_llama()
    q4, ref = {}, {}
    for key, v in model.state_dict().items():
        if key.endswith("proj.weight"):
            lin, sd = linear4(v.contiguous(), "nf4", True, 64)
            q4.update({key[: -len("weight")] + k2: t for k2, t in sd.items()})
            ref[key] = reference4(lin.weight.data, lin.weight.quant_state, "nf4", tuple(v.shape))
        else:
            q4[key] = v.contiguous()
            ref[key] = v
    convert_and_load(TMP, cfg, qcfg4("nf4", True), q4, ref)


check_4bit()
check_int8()
check_skip()
check_llama_loads()
summary("bnb_upstream")
