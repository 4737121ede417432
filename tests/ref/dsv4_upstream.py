#!/usr/bin/env python3
"""DeepSeek-V4 FP4/FP8 hybrids against transformers itself (PyPI torch and transformers 5.24 on
the CPU, build/venv-torch), on checkpoints generated here (doc/formats/deepseek-v4.md). MP_BIN is
the binary under test.

1. Dequantization, bit for bit, against transformers' `Fp8Dequantize._dequantize_one` (what its
   FP8 quantizer runs with dequantize=True) to bf16, f16 and f32:
   - FP8 linears, F8_E4M3 with F8_E8M0 scales (Flash/Pro; 0x00 = 2^-127 among them, NaN codes
     too) and with F32 scales (-Base), on an aligned grid;
   - a ragged grid (N, K not multiples of 128): transformers derives the block from the grid
     (200 rows over 2 scale rows: 100-row blocks) or raises, so it is run on each 128 x 128 tile,
     and the whole-tensor call is shown to differ; a float64 evaluation of the formula agrees;
   - FP4 experts, I8 [N, K/2] with F8_E8M0 [N, K/32] (code 8 = -0.0, scale 0x00);
   - a 0xFF (NaN) scale, FP8 or FP4, is refused by convert for every target, named (transformers
     would give a NaN block);
   - the worked examples of doc/formats/deepseek-v4.md.
2. A tiny DeepseekV4ForCausalLM (2 layers, FP8 attention and shared experts, FP4 routed experts,
   BF16 router, indexer weights_proj, embeddings, head and hc_* tensors; and a -Base copy with FP8
   routed experts and F32 scales everywhere) written as a V4
   checkpoint under DeepSeek's bare names: `convert --to bf16` gives a config without
   quantization_config and expert_dtype and a checkpoint that transformers loads with no
   missing, unexpected or mismatched key, whose weights are transformers' own dequantization of
   the source and whose logits equal the model loaded from that reference. transformers' own load
   of the FP8 source needs `accelerate`: where it is missing that sub-check is SKIP with the
   reason, and the reference is built from transformers' dequant function instead.
3. The V4.1 spelling (expert_dtype inside quantization_config) converts to the same bytes.
4. `verify --device cpu --full` of the source and of the converted output passes; a copy with one
   FP4 scale byte made 0xFF (NaN) fails naming the linear.
"""
import json
import os
import re
import shutil
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import check, run, skip, summary  # noqa: E402

TMP = tempfile.mkdtemp(prefix="mp-dsv4-")
g = torch.Generator().manual_seed(4)
E4M3, E8M0 = torch.float8_e4m3fn, torch.float8_e8m0fnu
QC = {"quant_method": "fp8", "fmt": "e4m3", "scale_fmt": "ue8m0", "activation_scheme": "dynamic",
      "weight_block_size": [128, 128]}
TO = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}


def deq():
    from transformers.integrations.finegrained_fp8 import Fp8Dequantize
    return Fp8Dequantize(None)


def write(name, tensors, cfg):
    d = os.path.join(TMP, name)
    os.makedirs(d)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(d, "model.safetensors"))
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=1)
    return d


def v4_config(extra=None, nested=False):
    c = {"architectures": ["DeepseekV4ForCausalLM"], "model_type": "deepseek_v4", "torch_dtype": "bfloat16"}
    c.update(extra or {})
    c["quantization_config"] = dict(QC, expert_dtype="fp4") if nested else dict(QC)
    if not nested:
        c["expert_dtype"] = "fp4"
    return c


def convert(src, to):
    out = f"{src}.{to}"
    shutil.rmtree(out, ignore_errors=True)
    r = run("convert", src, out, "--to", to, "--quiet")
    check(r.returncode == 0, f"convert {src} --to {to}: exit {r.returncode}: {r.stderr}")
    return out, load_file(os.path.join(out, "model.safetensors"))


def same(a, b, what):
    check(a.dtype == b.dtype and a.shape == b.shape, f"{what}: {a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}")
    iv = torch.int16 if a.element_size() == 2 else torch.int32
    ia, ib = a.contiguous().view(iv), b.contiguous().view(iv)
    # NaN is NaN: torch's CPU casts give NaN payloads of their own (doc/formats/fp8.md).
    both_nan = torch.isnan(a.float()) & torch.isnan(b.float())
    n = int(((ia != ib) & ~both_nan).sum())
    check(n == 0, f"{what}: {n} of {a.numel()} values differ from transformers")


def fp8_codes(n, k, nan=False):
    c = torch.randint(0, 256, (n, k), generator=g, dtype=torch.uint8)
    if not nan:
        c[(c & 0x7F) == 0x7F] = 0x3C
    return c.view(E4M3)


def e8m0(shape, lo, hi, specials=True):
    s = torch.randint(lo, hi, shape, generator=g, dtype=torch.uint8)
    if specials:  # 2^-127; 0xFF (NaN) is a non-finite scale, refused by convert: check_nonfinite
        s.view(-1)[0] = 0x00
    return s.view(E8M0)


def tiled(w, s, dt):
    """transformers' _dequantize_one on each 128 x 128 tile with its one scale (a ragged grid)."""
    n, k = w.shape
    y = torch.empty(n, k, dtype=dt)
    for i in range(0, n, 128):
        for j in range(0, k, 128):
            y[i:i + 128, j:j + 128] = deq()._dequantize_one(w[i:i + 128, j:j + 128],
                                                             s[i // 128:i // 128 + 1, j // 128:j // 128 + 1], dt)
    return y


def f64_fp8(w, s):
    """The formula in float64: code * 2^(e-127) (E8M0) or code * scale (F32), per 128 x 128 block."""
    sf = s.to(torch.float64) if s.dtype != E8M0 else s.to(torch.float32).to(torch.float64)
    full = sf.repeat_interleave(128, 0).repeat_interleave(128, 1)[:w.shape[0], :w.shape[1]]
    return w.to(torch.float64) * full


def check_fp8():
    p = "layers.0.attn.wq_b"
    for name, (N, K), scale in (("e8m0", (256, 384), "e8m0"), ("f32", (256, 384), "f32"),
                                ("ragged_e8m0", (200, 300), "e8m0"), ("ragged_f32", (130, 260), "f32")):
        w = fp8_codes(N, K, nan=name == "e8m0")
        grid = ((N + 127) // 128, (K + 127) // 128)
        s = e8m0(grid, 112, 124) if scale == "e8m0" else (torch.rand(grid, generator=g) * 1e-2 + 1e-5)
        d = write(f"fp8_{name}", {p + ".weight": w, p + ".scale": s}, v4_config())
        for to, dt in TO.items():
            got = convert(d, to)[1][p + ".weight"]
            if N % 128 == 0 and K % 128 == 0:
                same(got, deq()._dequantize_one(w, s, dt), f"FP8 {name} --to {to}")
            else:
                same(got, tiled(w, s, dt), f"FP8 {name} --to {to} (transformers per 128 x 128 tile)")
                same(got, f64_fp8(w, s).to(torch.float32).to(dt), f"FP8 {name} --to {to} (float64)")
        if N % 128 or K % 128:
            try:
                whole = deq()._dequantize_one(w, s, torch.bfloat16)
                check(not torch.equal(whole.view(torch.int16), tiled(w, s, torch.bfloat16).view(torch.int16)),
                      f"transformers derives {N // grid[0]}-row blocks from the ragged grid of {name}")
            except ValueError:
                check(True, "")


def check_fp4():
    p = "layers.0.ffn.experts.3.w2"
    N, K = 96, 256
    w = torch.randint(0, 256, (N, K // 2), generator=g, dtype=torch.uint8)
    w[0, :4] = torch.tensor([0x88, 0x08, 0x80, 0x9A], dtype=torch.uint8)  # code 8 = -0.0
    w = w.view(torch.int8)
    s = e8m0((N, K // 32), 118, 130)
    d = write("fp4", {p + ".weight": w, p + ".scale": s}, v4_config())
    for to, dt in TO.items():
        got = convert(d, to)[1][p + ".weight"]
        want = deq()._dequantize_one(w, s, dt)
        same(got, want, f"FP4 experts --to {to}")
    got = convert(d, "bf16")[1][p + ".weight"]
    check(got[0, 0].view(torch.int16).item() & 0xFFFF == 0x8000 or torch.isnan(got[0, 0]).item(),
          "FP4 code 8 is -0.0 (transformers' table)")


def check_nonfinite():
    """An E8M0 0xFF scale (NaN; transformers dequantizes its block to NaN) is refused by convert for
    every target, FP8 linear or FP4 expert, naming the scale tensor, its row and group
    (doc/limits.md, "Non-finite scales")."""
    for p, w, grid, where in (("layers.0.attn.wq_b", fp8_codes(256, 384), (2, 3), "row 128, group 2"),
                              ("layers.0.ffn.experts.3.w2",
                               torch.randint(0, 256, (96, 128), generator=g, dtype=torch.uint8).view(torch.int8),
                               (96, 8), "row 95, group 7")):
        s = e8m0(grid, 118, 124).view(torch.uint8).clone()
        s.view(-1)[-1] = 0xFF
        d = write("nonfinite_" + p.split(".")[-1], {p + ".weight": w, p + ".scale": s.view(E8M0)}, v4_config())
        for to in TO:
            r = run("convert", d, d + ".out", "--to", to)
            check(r.returncode == 4 and f"tensor '{p}.scale': {where}: the scale is not finite" in r.stderr
                  and not os.path.exists(d + ".out"), f"{p} 0xFF scale --to {to}: exit {r.returncode}: {r.stderr}")


def check_worked_examples():
    """doc/formats/deepseek-v4.md: FP4 byte 0x9A with scale 0x7A -> bf16 0xBD00, 0xBC80; FP8 0x5A
    times E8M0 0x76 -> 0x3D20."""
    w4 = torch.tensor([[0x9A] * 16], dtype=torch.uint8).view(torch.int8)
    s4 = torch.tensor([[0x7A]], dtype=torch.uint8).view(E8M0)
    w8 = torch.full((1, 1), 0x5A, dtype=torch.uint8).view(E4M3)
    s8 = torch.tensor([[0x76]], dtype=torch.uint8).view(E8M0)
    d = write("worked", {"layers.0.ffn.experts.0.w1.weight": w4, "layers.0.ffn.experts.0.w1.scale": s4,
                         "layers.0.attn.wo_a.weight": w8, "layers.0.attn.wo_a.scale": s8}, v4_config())
    t = convert(d, "bf16")[1]
    b4 = [v & 0xFFFF for v in t["layers.0.ffn.experts.0.w1.weight"].view(torch.int16)[0, :2].tolist()]
    check(b4 == [0xBD00, 0xBC80], f"FP4 0x9A x 0x7A: {[hex(v) for v in b4]}")
    check(deq()._dequantize_one(w4, s4, torch.bfloat16).view(torch.int16)[0, :2].tolist() ==
          [0xBD00 - 0x10000, 0xBC80 - 0x10000], "transformers agrees on the FP4 example")
    b8 = t["layers.0.attn.wo_a.weight"].view(torch.int16).item() & 0xFFFF
    check(b8 == 0x3D20, f"FP8 0x5A x 0x76: {hex(b8)}")


# ---- the tiny model

def tiny_model():
    from transformers import DeepseekV4Config, DeepseekV4ForCausalLM
    cfg = DeepseekV4Config(vocab_size=64, hidden_size=64, moe_intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=32, q_lora_rank=32,
                           num_experts_per_tok=2, n_routed_experts=2, n_shared_experts=1, o_groups=2,
                           o_lora_rank=32, index_n_heads=2, index_head_dim=32, index_topk=4, sliding_window=8,
                           hc_mult=2, layer_types=["sliding_attention", "compressed_sparse_attention"],
                           mlp_layer_types=["moe", "moe"], num_nextn_predict_layers=0,
                           max_position_embeddings=64, torch_dtype="bfloat16")
    torch.manual_seed(4)
    return cfg, DeepseekV4ForCausalLM(cfg).to(torch.bfloat16)


# HF names back to DeepSeek's bare ones: the inverse of transformers' conversion_mapping.py
# "deepseek_v4" renames, for this model's tensors.
BARE = [(r"^model\.embed_tokens\.", "embed."), (r"^lm_head\.", "head."), (r"^model\.hc_head\.hc_", "hc_head_"),
        (r"^model\.", ""),
        (r"\.self_attn\.compressor\.indexer\.scorer\.weights_proj\.", ".attn.indexer.weights_proj."),
        (r"\.self_attn\.compressor\.indexer\.q_b_proj\.", ".attn.indexer.wq_b."),
        (r"\.self_attn\.compressor\.indexer\.", ".attn.indexer.compressor."),
        (r"\.self_attn\.", ".attn."), (r"\.mlp\.", ".ffn."), (r"\.input_layernorm\.", ".attn_norm."),
        (r"\.post_attention_layernorm\.", ".ffn_norm."), (r"\.attn_hc\.", ".hc_attn_"), (r"\.ffn_hc\.", ".hc_ffn_"),
        (r"\.sinks$", ".attn_sink"), (r"compressor\.kv_norm\.", "compressor.norm."), (r"\.position_bias$", ".ape"),
        (r"\.q_a_proj\.", ".wq_a."), (r"\.q_b_proj\.", ".wq_b."), (r"\.kv_proj\.", ".wkv."),
        (r"\.gate_proj\.", ".wgate."), (r"\.o_a_proj\.", ".wo_a."), (r"\.o_b_proj\.", ".wo_b."),
        (r"\.q_a_norm\.", ".q_norm."), (r"\.gate\.e_score_correction_bias", ".gate.bias"),
        (r"\.shared_experts\.wgate\.", ".shared_experts.w1."), (r"\.shared_experts\.down_proj\.", ".shared_experts.w2."),
        (r"\.shared_experts\.up_proj\.", ".shared_experts.w3.")]
FP8_LINEAR = re.compile(r"\.(wq_a|wq_b|wkv|wo_a|wo_b|wgate|shared_experts\.w[123])\.weight$")
EXPERT = re.compile(r"\.experts\.\d+\.w[123]\.weight$")


def bare_names(sd):
    out = {}
    for k, v in sd.items():
        n = k
        for a, b in BARE:
            n = re.sub(a, b, n)
        if n.endswith("experts.gate_up_proj"):
            half = v.shape[1] // 2
            for e in range(v.shape[0]):
                out[n.replace("gate_up_proj", f"{e}.w1.weight")] = v[e, :half].clone()
                out[n.replace("gate_up_proj", f"{e}.w3.weight")] = v[e, half:].clone()
        elif n.endswith("experts.down_proj"):
            for e in range(v.shape[0]):
                out[n.replace("down_proj", f"{e}.w2.weight")] = v[e].clone()
        else:
            out[n] = v.clone()
    return out


def quant_fp8(w, f32_scales=False):
    """E4M3 codes and block scales: E8M0, the power of two over amax / 448 (Flash/Pro), or F32
    amax / 448 (-Base)."""
    n, k = w.shape
    gn, gk = (n + 127) // 128, (k + 127) // 128
    e = torch.empty(gn, gk, dtype=torch.uint8)
    f = torch.empty(gn, gk, dtype=torch.float32)
    q = torch.empty(n, k, dtype=E4M3)
    for i in range(gn):
        for j in range(gk):
            blk = w[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128].float()
            amax = blk.abs().max().clamp(min=1e-30) / 448.0
            x = int(torch.ceil(torch.log2(amax)).item())
            e[i, j], f[i, j] = x + 127, amax
            q[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128] = (blk / (amax if f32_scales else 2.0 ** x)).to(E4M3)
    return q, f if f32_scales else e.view(E8M0)


LUT = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0])


def quant_fp4(w):
    """I8 codes (nearest E2M1, low nibble first) and E8M0 scales per 32: 2^ceil(log2(amax / 6))."""
    n, k = w.shape
    blk = w.float().reshape(n, k // 32, 32)
    x = torch.ceil(torch.log2(blk.abs().amax(-1).clamp(min=1e-30) / 6.0))
    codes = (blk / torch.exp2(x).unsqueeze(-1)).unsqueeze(-1).sub(LUT).abs().argmin(-1).reshape(n, k).to(torch.uint8)
    packed = codes[:, 0::2] | (codes[:, 1::2] << 4)
    return packed.view(torch.int8), (x + 127).to(torch.uint8).view(E8M0)


def v4_checkpoint(cfg, model, nested, base=False):
    """The model as a V4 source (FP8 linears, FP4 experts; -Base: FP8 everywhere with F32 scales)
    and transformers' dequantization of it."""
    src, ref = {}, {}
    for k, v in bare_names(model.state_dict()).items():
        if EXPERT.search(k) and not base:
            q, s = quant_fp4(v)
        elif FP8_LINEAR.search(k) or EXPERT.search(k):
            q, s = quant_fp8(v, base)
        else:
            src[k] = ref[k] = v
            continue
        src[k], src[k[:-len("weight")] + "scale"] = q, s
        ref[k] = deq()._dequantize_one(q, s, torch.bfloat16)
    name = ("v41" if nested else "v4") + ("-base" if base else "")
    d = os.path.join(TMP, name)
    cfg.save_pretrained(d)
    c = json.load(open(os.path.join(d, "config.json")))
    experts = "fp8" if base else "fp4"
    c["quantization_config"] = dict(QC, expert_dtype=experts) if nested else dict(QC)
    if not nested:
        c["expert_dtype"] = experts
    json.dump(c, open(os.path.join(d, "config.json"), "w"), indent=1)
    save_file(src, os.path.join(d, "model.safetensors"))
    return d, ref


def transformers_fp8_load(d):
    """transformers' own load of the FP8 source, dequantized on the CPU, or None with the reason."""
    from transformers import DeepseekV4ForCausalLM, FineGrainedFP8Config
    try:
        return DeepseekV4ForCausalLM.from_pretrained(d, dtype=torch.bfloat16,
                                                     quantization_config=FineGrainedFP8Config(dequantize=True)), None
    except ImportError as e:
        return None, f"transformers cannot load the FP8 source on the CPU here: {e}"


def check_model():
    cfg, model = tiny_model()
    d, out, got = check_loads(cfg, model, base=False)
    check_loads(cfg, model, base=True)
    d41, _ = v4_checkpoint(cfg, model, nested=True)
    out41, got41 = convert(d41, "bf16")
    check(set(got41) == set(got) and all(torch.equal(got41[k], got[k]) for k in got),
          "V4.1 (expert_dtype in quantization_config) converts to the same tensors")
    c41 = json.load(open(os.path.join(out41, "config.json")))
    check("quantization_config" not in c41 and "expert_dtype" not in c41, "the V4.1 config is dense")
    return d, out


def check_loads(cfg, model, base):
    """The V4 source (Flash, or -Base) converted, loaded, and compared with transformers' own
    dequantization."""
    from transformers import DeepseekV4ForCausalLM
    d, ref = v4_checkpoint(cfg, model, nested=False, base=base)
    out, got = convert(d, "bf16")
    c = json.load(open(os.path.join(out, "config.json")))
    check("quantization_config" not in c and "expert_dtype" not in c,
          f"the converted config keeps {sorted(set(c) & {'quantization_config', 'expert_dtype'})}")
    check(set(got) == set(ref), f"converted names: {sorted(set(got) ^ set(ref))}")
    for k, v in ref.items():
        same(got[k], v.to(torch.bfloat16) if v.dtype != torch.float32 else v, f"converted {k}")
    loaded, info = DeepseekV4ForCausalLM.from_pretrained(out, output_loading_info=True, dtype=torch.bfloat16)
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        check(not info.get(key), f"transformers loads the bf16 checkpoint: {key} {info.get(key)}")
    # the reference: transformers' dequantization of every pair, loaded the same way
    d2 = d + "-ref"
    cfg.save_pretrained(d2)
    save_file(ref, os.path.join(d2, "model.safetensors"))
    reference = DeepseekV4ForCausalLM.from_pretrained(d2, dtype=torch.bfloat16)
    a_sd, b_sd = loaded.state_dict(), reference.state_dict()
    for k in b_sd:
        same(a_sd[k], b_sd[k], f"loaded {k}")
    ids = torch.tensor([[1, 17, 42, 9, 20, 3, 5, 8]])
    with torch.no_grad():
        a, b = loaded(ids).logits, reference(ids).logits
        check(torch.equal(a, b), f"logits differ: max {float((a.float() - b.float()).abs().max())}")
        check(float(a.float().abs().max()) > 0 and torch.isfinite(a).all(), "the logits are finite and not zero")
        hf, why = transformers_fp8_load(d)
        if hf is None:
            skip(f"{why}; the logits are compared with the model built from transformers' Fp8Dequantize instead")
        else:
            check(torch.equal(hf(ids).logits, a), "logits equal transformers' own load of the FP8 source")
    return d, out, got


def check_verify(src, out):
    for what, d in (("source", src), ("converted", out)):
        r = run("verify", d, "--device", "cpu", "--full", "--quiet")
        check(r.returncode == 0, f"verify {what}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    bad = src + "-nan"
    shutil.copytree(src, bad)
    t = load_file(os.path.join(bad, "model.safetensors"))
    k = "layers.0.ffn.experts.1.w2.scale"
    s = t[k].view(torch.uint8).clone()
    s[3, 1] = 0xFF
    t[k] = s.view(E8M0)
    save_file(t, os.path.join(bad, "model.safetensors"))
    r = run("verify", bad, "--device", "cpu", "--full", "--quiet")
    check(r.returncode == 1 and "layers.0.ffn.experts.1.w2" in r.stdout + r.stderr,
          f"verify of a NaN scale fails naming the linear: exit {r.returncode}\n{r.stdout}{r.stderr}")


check_fp8()
check_fp4()
check_nonfinite()
check_worked_examples()
src, out = check_model()
check_verify(src, out)
summary("dsv4_upstream")
