#!/usr/bin/env python3
"""The FP4 sources against the upstream code itself (PyPI torch, transformers, compressed-tensors,
on the CPU), on checkpoints generated here. Run with the Python of build/venv-torch
(tests/ref/torch_env.sh makes it); MP_BIN is the binary under test.

1. compressed-tensors `NVFP4PackedCompressor.decompress` (zero and subnormal block scales; a NaN
   one, which decompress keeps as NaN, is refused by modelprep as every non-finite scale is,
   a global scale of 448 * 6 / amax that divides, an odd N): modelprep's `convert --to bf16`
   equals it bit for bit.
2. compressed-tensors `MXFP4PackedCompressor.decompress` (E8M0 0 and 254 included): equal.
3. transformers' `convert_moe_packed_tensors` (the gpt-oss MXFP4 dequantization, which returns
   the experts transposed to [E, K, N]): equal, E8M0 0 and 254 included (255, E8M0's NaN, is
   refused, doc/limits.md).
4. A tiny gpt-oss (GptOssForCausalLM, 2 layers, 4 experts) with MXFP4 experts converts to bf16 and
   loads in transformers with no missing, unexpected or mismatched key; its expert weights equal
   (3) and its logits equal those of the model built from the reference weights.
"""
import json
import os
import sys
import tempfile

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import check, run, summary  # noqa: E402

TMP = tempfile.mkdtemp(prefix="mp-fp4-upstream-")
g = torch.Generator().manual_seed(16)
P = "model.layers.0.mlp.up_proj"


def write(name, tensors, qconfig, cfg=None):
    d = os.path.join(TMP, name)
    os.makedirs(d)
    save_file(tensors, os.path.join(d, "model.safetensors"))
    cfg = dict(cfg or {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "bfloat16"})
    cfg["quantization_config"] = qconfig
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    return d


def convert(src, to="bf16"):
    out = src + ".out"
    r = run("convert", src, out, "--to", to, "--quiet")
    check(r.returncode == 0, f"convert {src}: exit {r.returncode}: {r.stderr}")
    from safetensors.torch import load_file
    t = {}
    for f in sorted(os.listdir(out)):
        if f.endswith(".safetensors"):
            t.update(load_file(os.path.join(out, f)))
    return out, t


def same_bits(got, want, what):
    check(got.dtype == want.dtype and got.shape == want.shape, f"{what}: {got.dtype} {tuple(got.shape)}, "
          f"want {want.dtype} {tuple(want.shape)}")
    gb, wb = got.view(torch.int16), want.view(torch.int16)
    # NaN is NaN: torch's CPU casts give NaN payloads of their own (bf16 0xFFFF for any NaN),
    # modelprep the quiet NaN of its operand, as ml_dtypes does (doc/formats/fp4.md §1).
    both_nan = torch.isnan(got.float()) & torch.isnan(want.float())
    bad = ((gb != wb) & ~both_nan).nonzero()
    check(len(bad) == 0, f"{what}: {len(bad)} values differ, first at {bad[:1].tolist()}")


def packed(n, k):
    return torch.randint(0, 256, (n, k // 2), generator=g, dtype=torch.uint8)


def ct_config(fmt, strategy, group):
    w = {"num_bits": 4, "type": "float", "strategy": strategy, "group_size": group, "symmetric": True,
         "dynamic": False}
    return {"quant_method": "compressed-tensors", "format": fmt, "quantization_status": "compressed",
            "config_groups": {"group_0": {"targets": ["Linear"], "weights": w}}, "ignore": ["lm_head"]}


def ct_case(name, compressor, sd, fmt, strategy, group):
    """modelprep's convert of a compressed-tensors checkpoint against `compressor.decompress`."""
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
    scheme = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(
        num_bits=4, type="float", strategy=strategy, group_size=group, symmetric=True, dynamic=False))
    want = compressor.decompress(dict(sd), scheme)["weight"]
    d = write(name, {P + "." + k: v for k, v in sd.items()}, ct_config(fmt, strategy, group))
    got = convert(d, "bf16" if want.dtype == torch.bfloat16 else "f32")[1][P + ".weight"]
    same_bits(got, want, f"{name} vs {compressor.__name__}.decompress")
    return got


def check_ct_nvfp4():
    from compressed_tensors.compressors.nvfp4.base import NVFP4PackedCompressor
    N, K = 45, 96
    s = torch.randint(0x20, 0x50, (N, K // 16), generator=g, dtype=torch.uint8)
    s[0, 0], s[0, 1], s[2, 2] = 0x00, 0x05, 0x80  # zero, subnormal, -0
    sd = {"weight_packed": packed(N, K), "weight_scale": s.view(torch.float8_e4m3fn),
          "weight_global_scale": torch.tensor([448 * 6 / 0.2731], dtype=torch.float32)}
    ct_case("ct-nvfp4", NVFP4PackedCompressor, sd, "nvfp4-pack-quantized", "tensor_group", 16)
    # A NaN block scale: decompress gives NaN weights; modelprep refuses it, naming the scale.
    s[1, 0] = 0x7F
    sd["weight_scale"] = s.view(torch.float8_e4m3fn)
    d = write("ct-nvfp4-nan", {P + "." + k: v for k, v in sd.items()},
              ct_config("nvfp4-pack-quantized", "tensor_group", 16))
    r = run("convert", d, d + ".out", "--to", "bf16")
    check(r.returncode == 4 and f"tensor '{P}.weight_scale': row 1, group 0: the scale is not finite" in r.stderr,
          f"a NaN block scale is refused: exit {r.returncode}: {r.stderr}")


def check_ct_mxfp4():
    from compressed_tensors.compressors.mxfp4.base import MXFP4PackedCompressor
    N, K = 21, 128
    s = torch.randint(100, 140, (N, K // 32), generator=g, dtype=torch.uint8)
    s[0, 0], s[1, 1] = 0, 254
    sd = {"weight_packed": packed(N, K), "weight_scale": s}
    ct_case("ct-mxfp4", MXFP4PackedCompressor, sd, "mxfp4-pack-quantized", "group", 32)


def mxfp4(E, N, K, special=False):
    blocks = torch.randint(0, 256, (E, N, K // 32, 16), generator=g, dtype=torch.uint8)
    scales = torch.randint(118, 124, (E, N, K // 32), generator=g, dtype=torch.uint8)
    if special:
        scales[0, 0, 0], scales[0, 1, 0] = 0, 254
    return blocks, scales


def check_transformers_function():
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors
    x = "model.layers.0.mlp.experts.gate_up_proj"
    b, s = mxfp4(3, 64, 96, special=True)
    want = convert_moe_packed_tensors(b, s, dtype=torch.bfloat16)
    d = write("oss_fn", {x + "_blocks": b, x + "_scales": s}, {"quant_method": "mxfp4"},
              {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "torch_dtype": "bfloat16"})
    same_bits(convert(d)[1][x], want, "mxfp4 vs transformers convert_moe_packed_tensors")


def tiny_gpt_oss():
    from transformers import GptOssConfig
    return GptOssConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=64, num_local_experts=4,
                        num_experts_per_tok=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                        vocab_size=128, max_position_embeddings=64, layer_types=["sliding_attention", "full_attention"],
                        sliding_window=16, dtype="bfloat16")


def check_transformers_loads():
    from transformers import GptOssForCausalLM
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors
    cfg = tiny_gpt_oss()
    torch.manual_seed(16)
    ref = GptOssForCausalLM(cfg).to(torch.bfloat16).eval()
    sd = {k: v.detach().clone().contiguous() for k, v in ref.state_dict().items()}
    ckpt = {k: v for k, v in sd.items() if not k.endswith("experts.gate_up_proj") and not k.endswith("experts.down_proj")}
    for k in [k for k in sd if k.endswith("experts.gate_up_proj") or k.endswith("experts.down_proj")]:
        E, K, N = sd[k].shape
        b, s = mxfp4(E, N, K)
        ckpt[k + "_blocks"], ckpt[k + "_scales"] = b, s
        sd[k] = convert_moe_packed_tensors(b, s, dtype=torch.bfloat16)
    if "lm_head.weight" in ckpt and cfg.tie_word_embeddings:
        del ckpt["lm_head.weight"]
    qc = {"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                                             "model.embed_tokens", "lm_head"]}
    conf = cfg.to_dict()
    conf.pop("quantization_config", None)
    d = write("oss_model", ckpt, qc, conf)
    out, _ = convert(d)
    check("quantization_config" not in json.load(open(os.path.join(out, "config.json"))), "config rewritten")
    model, info = GptOssForCausalLM.from_pretrained(out, output_loading_info=True, dtype=torch.bfloat16)
    check(not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"],
          f"loading info: {info}")
    got = model.state_dict()
    check(sorted(got) == sorted(sd), f"parameters: {sorted(set(got) ^ set(sd))}")
    for k in sd:
        same_bits(got[k], sd[k], f"loaded {k}")
    ref.load_state_dict(sd)
    ref.save_pretrained(os.path.join(TMP, "oss_ref"))
    ref = GptOssForCausalLM.from_pretrained(os.path.join(TMP, "oss_ref"), dtype=torch.bfloat16).eval()
    ids = torch.randint(0, 128, (1, 12), generator=g)
    with torch.no_grad():
        a, b = model.eval()(ids).logits, ref(ids).logits
    check(torch.equal(a, b), f"logits differ by {(a.float() - b.float()).abs().max().item()}")


check_ct_nvfp4()
check_ct_mxfp4()
check_transformers_function()
check_transformers_loads()
summary("fp4_upstream")
