#!/usr/bin/env python3
"""Cross-check the FP4 sources (ct-nvfp4, modelopt-nvfp4, mxfp4, ct-mxfp4) against numpy + ml_dtypes.

- Element decoders: all 16 E2M1 codes (float4_e2m1fn, -0.0 for code 8; +0.0 for ModelOpt, whose
  table has it) and all 256 E8M0 scale bytes (float8_e8m0fnu; 0xFF is 2^128 = inf as the
  producers compute it, not ml_dtypes' NaN), through `convert --to f32`.
- The worked examples of doc/formats/fp4.md, as literal bf16 bits.
- compressed-tensors NVFP4: f32(code) * (f32(scale) / global) on random data with zero,
  subnormal and NaN block scales, to f32/f16/bf16 bit for bit; the multiply/divide trap (the
  product with the global scale multiplied is checked to differ).
- ModelOpt NVFP4 (hf_quant_config.json, exclude_modules): f32(code) * (f32(scale) * scale_2).
- gpt-oss MXFP4: stacked experts [E, N, K/32, 16] become [E, K, N] (transformers' layout),
  biases, router and attention (modules_to_not_convert) copied; E8M0 0 and 255 (an exact
  ldexp, as transformers' torch.ldexp computes it, where compressed-tensors gives inf).
- compressed-tensors MXFP4 with an ignore list.
- A sharded file mixing NVFP4 and BF16 linears: index rebuilt without scales, config without
  quantization_config, inspect's columns.
- Refusals, exit 4 naming the file, tensor and rule.
Run by `make test` (tests/unit/test_cli.c) with MP_BIN set.
"""
import json
import os
import re
import sys

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import check, run, summary  # noqa: E402
from float_util import TMP, bits, convert, out_tensors, refuse, same_bits, save, to_dtype  # noqa: E402

E4M3 = ml_dtypes.float8_e4m3fn
E2M1 = ml_dtypes.float4_e2m1fn
E8M0 = ml_dtypes.float8_e8m0fnu
BF16 = ml_dtypes.bfloat16
rng = np.random.default_rng(16)
FP4_TABLE = np.arange(16, dtype=np.uint8).view(E2M1).astype(np.float32)  # code 8 is -0.0


def fp4_values(codes, zero_positive=False):
    """E2M1 codes (0..15) as f32 by ml_dtypes; +0.0 for code 8 where the producer's table has it."""
    v = FP4_TABLE[np.asarray(codes)]
    return np.where(np.asarray(codes) == 8, np.float32(0.0), v) if zero_positive else v


def pack(codes):
    """[.., K] codes 0..15 -> [.., K/2] bytes, element 2i in the low nibble."""
    c = np.asarray(codes, np.uint8)
    return (c[..., 0::2] | (c[..., 1::2] << 4)).astype(np.uint8)


def ct_config(fmt, group, ignore=None, strategy="tensor_group"):
    w = {"num_bits": 4, "type": "float", "strategy": strategy, "group_size": group, "symmetric": True,
         "dynamic": False}
    return {"quant_method": "compressed-tensors", "format": fmt, "quantization_status": "compressed",
            "config_groups": {"group_0": {"targets": ["Linear"], "weights": w}},
            "ignore": ignore if ignore is not None else ["lm_head"]}


NVFP4 = ct_config("nvfp4-pack-quantized", 16)
MXFP4 = ct_config("mxfp4-pack-quantized", 32, strategy="group")
P = "model.layers.0.mlp.up_proj"


def ct_nvfp4_expect(codes, s_e4m3, gs):
    eff = s_e4m3.view(E4M3).astype(np.float32) / np.float32(gs)
    return fp4_values(codes) * np.repeat(eff, 16, 1)


def check_decoders():
    codes = np.arange(16, dtype=np.uint8)[None, :].repeat(2, 0)
    t = {P + ".weight_packed": pack(codes), P + ".weight_scale": np.full((2, 1), 0x38, np.uint8).view(E4M3),
         P + ".weight_global_scale": np.ones([1], np.float32)}
    got = out_tensors(convert(save("codes_ct", t, NVFP4), "f32"))[P + ".weight"]
    want = np.arange(16, dtype=np.uint8).view(E2M1).astype(np.float32)[None, :].repeat(2, 0)
    same_bits(got, want, "all 16 E2M1 codes (compressed-tensors: code 8 is -0.0)")
    check(bits(got)[0, 8] == 0x80000000, "code 8 is -0.0")
    mo = {P + ".weight": pack(codes), P + ".weight_scale": np.full((2, 1), 0x38, np.uint8).view(E4M3),
          P + ".weight_scale_2": np.array(1.0, np.float32)}
    hf = {"quantization": {"quant_algo": "NVFP4", "group_size": 16}}
    got = out_tensors(convert(save("codes_mo", mo, None, side={"hf_quant_config.json": hf}), "f32"))[P + ".weight"]
    want[:, 8] = 0.0
    same_bits(got, want, "all 16 E2M1 codes (ModelOpt: code 8 is +0.0)")
    # E8M0: row i has scale byte i and the codes 2 (1.0) and 0 (0.0).
    e = np.arange(255, dtype=np.uint8)
    c = np.zeros((255, 32), np.uint8)
    c[:, 0] = 2
    t = {P + ".weight_packed": pack(c), P + ".weight_scale": e[:, None]}
    got = out_tensors(convert(save("codes_e8m0", t, MXFP4), "f32"))[P + ".weight"]
    want = e.view(E8M0).astype(np.float32)
    same_bits(got[:, 0], want, "E8M0 bytes 0..254 against float8_e8m0fnu")
    # 0xFF (E8M0's NaN; 2^128 = inf as the producers compute it) is a non-finite scale: refused
    # for every target, naming the scale tensor, its row and group (doc/limits.md).
    t[P + ".weight_scale"] = np.append(e, np.uint8(0xFF))[:, None]
    t[P + ".weight_packed"] = pack(np.zeros((256, 32), np.uint8))
    for to in ("f32", "f16", "bf16"):
        refuse(save("codes_e8m0_ff", t, MXFP4), "tensor '" + P + ".weight_scale': row 255, group 0: the scale is not "
               "finite", to=to)


def check_worked_examples():
    # doc/formats/fp4.md §4: byte 0x2F (low F = -6, high 2 = 1), E4M3 scale 0x36 (0.875).
    row = np.array([[0x2F] + [0] * 7], np.uint8)
    sc = np.array([[0x36]], np.uint8).view(E4M3)
    ct = {P + ".weight_packed": row, P + ".weight_scale": sc, P + ".weight_global_scale": np.array([3584.0], np.float32)}
    got = bits(out_tensors(convert(save("worked_ct", ct, NVFP4), "bf16"))[P + ".weight"])[0, :2].tolist()
    check(got == [0xBAC0, 0x3980], f"CT worked example: {[hex(x) for x in got]}")
    ws2 = np.array([0x39924925], np.uint32).view(np.float32).reshape(())
    mo = {P + ".weight": row, P + ".weight_scale": sc, P + ".weight_scale_2": ws2}
    hf = {"quantization": {"quant_algo": "NVFP4", "group_size": 16}}
    got = bits(out_tensors(convert(save("worked_mo", mo, None, side={"hf_quant_config.json": hf}), "bf16"))[P + ".weight"])
    check(got[0, :2].tolist() == [0xBAC0, 0x3980], f"ModelOpt worked example: {got[0, :2]}")
    # §5: gpt-oss block 21 43 .. FE with scale 0x7E (2^-1), as [E=1, N=1, 1, 16].
    blk = np.array([0x21, 0x43, 0x65, 0x87, 0xA9, 0xCB, 0xED, 0x0F, 0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE],
                   np.uint8).reshape(1, 1, 1, 16)
    x = "model.layers.0.mlp.experts.down_proj"
    d = save("worked_oss", {x + "_blocks": blk, x + "_scales": np.array([[[0x7E]]], np.uint8)},
             {"quant_method": "mxfp4"}, arch="GptOssForCausalLM")
    got = out_tensors(convert(d, "f32"))[x]
    want = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, -0.0, -0.25, -0.5, -0.75, -1.0, -1.5, -2.0, -3.0, 0.0,
            0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, -0.0, -0.25, -0.5, -0.75, -1.0, -1.5, -2.0, -3.0]
    check(got.shape == (1, 32, 1), f"gpt-oss [E, K, N]: {got.shape}")
    same_bits(got.reshape(32), np.array(want, np.float32), "gpt-oss worked example (signed zeros)")


def nvfp4_scales(N, G):
    s = rng.integers(0x20, 0x50, (N, G), dtype=np.uint8)
    s[0, 0], s[0, 1], s[2, 0] = 0x00, 0x03, 0x80  # zero, subnormal, -0 (a NaN is refused: check_ct_nvfp4)
    return s


def check_ct_nvfp4():
    N, K = 37, 80
    codes = rng.integers(0, 16, (N, K), dtype=np.uint8)
    s = nvfp4_scales(N, K // 16)
    gs = np.float32(448 * 6 / 0.3172)
    t = {P + ".weight_packed": pack(codes), P + ".weight_scale": s.view(E4M3),
         P + ".weight_global_scale": np.array([gs], np.float32),
         P + ".input_global_scale": np.array([123.5], np.float32),
         "model.layers.0.mlp.gate_proj.weight": rng.standard_normal((N, K)).astype(BF16),
         "lm_head.weight": rng.standard_normal((16, K)).astype(BF16)}
    d = save("ct_nvfp4", t, NVFP4)
    want = ct_nvfp4_expect(codes, s, gs)
    for to in ("f32", "f16", "bf16"):
        got = out_tensors(convert(d, to))[P + ".weight"]
        same_bits(got, to_dtype(want, to), f"ct-nvfp4 --to {to}")
    trap = (fp4_values(codes) * np.repeat(s.view(E4M3).astype(np.float32) * gs, 16, 1)).astype(BF16)
    got = out_tensors(convert(d, "bf16"))
    check((bits(got[P + ".weight"]) != bits(trap)).mean() > 0.8, "the global scale divides (multiplying differs)")
    check(P + ".input_global_scale" not in got and "lm_head.weight" in got, f"outputs: {sorted(got)}")
    # A NaN block scale (E4M3 0x7F or 0xFF) or a non-finite global scale is refused, naming it.
    for k, v, needle in ((P + ".weight_scale", None, "row 1, group 2: the scale is not finite"),
                         (P + ".weight_global_scale", np.array([np.inf], np.float32), "the per-tensor scale is not finite")):
        bad = dict(t)
        if v is None:
            b = s.copy()
            b[1, 2] = 0xFF
            v = b.view(E4M3)
        bad[k] = v
        for to in ("f32", "bf16"):
            refuse(save("ct_nvfp4_nonfinite", bad, NVFP4), f"tensor '{k}': {needle}", to=to)
    r = run("inspect", d)
    check("ct-nvfp4" in r.stdout and "F4" in r.stdout and "group 16" in r.stdout and "F8_E4M3" in r.stdout,
          f"inspect: {r.stdout}")
    r = run("inspect", d, "--json")
    lin = json.loads(r.stdout)["linears"][0] if r.returncode == 0 else {}
    check(lin.get("element") == "F4" and lin.get("block") == [1, 16] and lin.get("scale_kind") == "group",
          f"inspect --json: {lin}")


def check_modelopt_nvfp4():
    N, K = 24, 64
    codes = rng.integers(0, 16, (N, K), dtype=np.uint8)
    s = nvfp4_scales(N, K // 16)
    ws2 = np.float32(0.4471 / (6 * 448))
    t = {P + ".weight": pack(codes), P + ".weight_scale": s.view(E4M3), P + ".weight_scale_2": np.array(ws2),
         P + ".input_scale": np.array(0.01, np.float32),
         "model.layers.0.self_attn.o_proj.weight": rng.standard_normal((K, K)).astype(BF16),
         "lm_head.weight": rng.standard_normal((8, K)).astype(BF16)}
    k = "model.layers.0.self_attn.k_proj"
    t.update({k + ".weight": pack(codes), k + ".weight_scale": s.view(E4M3), k + ".weight_scale_2": np.array(ws2),
              k + ".k_scale": np.array(0.02, np.float32)})
    hf = {"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "NVFP4", "group_size": 16,
                                                             "kv_cache_quant_algo": "FP8",
                                                             "exclude_modules": ["lm_head", "*o_proj"]}}
    d = save("mo_nvfp4", t, None, side={"hf_quant_config.json": hf})
    eff = s.view(E4M3).astype(np.float32) * ws2
    want = fp4_values(codes, zero_positive=True) * np.repeat(eff, 16, 1)
    for to in ("f32", "bf16"):
        out = convert(d, to)
        got = out_tensors(out)
        same_bits(got[P + ".weight"], to_dtype(want, to), f"modelopt-nvfp4 --to {to}")
    check(not os.path.exists(os.path.join(out, "hf_quant_config.json")), "hf_quant_config.json is dropped")
    check(sorted(got) == sorted([P + ".weight", k + ".weight", "model.layers.0.self_attn.o_proj.weight", "lm_head.weight"]),
          f"outputs (input_scale and the KV-cache k_scale dropped): {sorted(got)}")
    same_bits(got[k + ".weight"], to_dtype(want, "bf16"), "modelopt-nvfp4 k_proj")


def gpt_oss(name, E=3, H=64, I=32, special=True):
    """A gpt-oss MoE block: gate_up [E, 2I, H], down [E, H, I], with biases, router, attention."""
    x = "model.layers.0.mlp.experts."
    t, w = {}, {}
    for proj, N, K in (("gate_up_proj", 2 * I, H), ("down_proj", H, I)):
        codes = rng.integers(0, 16, (E, N, K), dtype=np.uint8)
        sc = rng.integers(110, 135, (E, N, K // 32), dtype=np.uint8)
        if special:
            sc[0, 0, 0], sc[0, 1, 0], sc[1, 0, 0] = 0, 254, 1  # 255 is refused: check_gpt_oss
        t[x + proj + "_blocks"] = pack(codes).reshape(E, N, K // 32, 16)
        t[x + proj + "_scales"] = sc
        t[x + proj + "_bias"] = rng.standard_normal((E, N)).astype(BF16)
        # transformers' torch.ldexp is exact: a 0xFE scale makes 0.5 2^126 and keeps 0 (§5)
        with np.errstate(over="ignore"):
            v = np.ldexp(fp4_values(codes), np.repeat(sc.astype(np.int32) - 127, 32, 2)).astype(np.float32)
        w[x + proj] = v.transpose(0, 2, 1)
    t["model.layers.0.mlp.router.weight"] = rng.standard_normal((E, H)).astype(BF16)
    t["model.layers.0.self_attn.q_proj.weight"] = rng.standard_normal((H, H)).astype(BF16)
    qc = {"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                                             "model.embed_tokens", "lm_head"]}
    return save(name, t, qc, arch="GptOssForCausalLM"), t, w


def check_gpt_oss():
    d, src, want = gpt_oss("gpt_oss")
    for to in ("f32", "bf16"):
        got = out_tensors(convert(d, to))
        for k, v in want.items():
            same_bits(got[k], to_dtype(v, to), f"mxfp4 {k} --to {to}")
    refuse(d, "overflows f16", to="f16")  # the 0xFE scale's 2^127
    # 0xFF, E8M0's NaN (2^128 by transformers' ldexp), is a non-finite scale: refused, named.
    bad = dict(src)
    sc = src["model.layers.0.mlp.experts.down_proj_scales"].copy()
    sc[1, 2, 0] = 255
    bad["model.layers.0.mlp.experts.down_proj_scales"] = sc
    qc = {"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                                             "model.embed_tokens", "lm_head"]}
    for to in ("f32", "bf16"):
        refuse(save("gpt_oss_ff", bad, qc, arch="GptOssForCausalLM"),
               "tensor 'model.layers.0.mlp.experts.down_proj_scales': row 66, group 0: the scale is not finite", to=to)
    plain, _, pw = gpt_oss("gpt_oss_plain", special=False)
    out = convert(plain, "f16")
    for k, v in out_tensors(out).items():
        if k in pw:
            same_bits(v, to_dtype(pw[k], "f16"), f"mxfp4 {k} --to f16")
    r = run("verify", out, "--against", plain)
    check(r.returncode == 0 and r.stdout.count("PASS  ") == 4 and "dense F16 (cpu)" in r.stdout
          and len(re.findall(r" \(source\) +fp4 ", r.stdout)) == 2,
          f"verify --against reads the [E, K, N] experts: {r.stdout} {r.stderr}")
    # The experts written [E, N, K] (not transposed) into the same shape: verify must see it.
    t = out_tensors(out)
    g = "model.layers.0.mlp.experts.gate_up_proj"
    t[g] = np.ascontiguousarray(t[g].transpose(0, 2, 1)).reshape(t[g].shape)
    save_file(t, os.path.join(out, "model.safetensors"))
    r = run("verify", out, "--against", plain, "--full")
    check(r.returncode == 1 and f"{g}: " in r.stdout and "differ from the source's dequantization" in r.stdout,
          f"verify --against finds experts left untransposed: {r.stdout} {r.stderr}")
    check(not any(k.endswith("_blocks") or k.endswith("_scales") for k in got), f"outputs: {sorted(got)}")
    same_bits(got["model.layers.0.mlp.experts.down_proj_bias"].astype(np.float32).astype(np.float16),
              src["model.layers.0.mlp.experts.down_proj_bias"].astype(np.float32).astype(np.float16), "bias kept")
    r = run("inspect", d)
    check(r.returncode == 0 and "mxfp4" in r.stdout and "group 32" in r.stdout, f"inspect: {r.stdout}")


def check_ct_mxfp4():
    N, K = 19, 96
    codes = rng.integers(0, 16, (N, K), dtype=np.uint8)
    sc = rng.integers(100, 140, (N, K // 32), dtype=np.uint8)
    sc[0, 0] = 0
    t = {P + ".weight_packed": pack(codes), P + ".weight_scale": sc, P + ".weight_shape": np.array([N, K], np.int64),
         "lm_head.weight": rng.standard_normal((8, K)).astype(BF16)}
    d = save("ct_mxfp4", t, MXFP4)
    check(sorted(out_tensors(convert(d, "bf16"))) == ["lm_head.weight", P + ".weight"], "weight_shape is consumed")
    want = fp4_values(codes) * np.repeat(np.ldexp(np.float32(1), sc.astype(np.int32) - 127).astype(np.float32), 32, 1)
    for to in ("f32", "bf16"):
        same_bits(out_tensors(convert(d, to))[P + ".weight"], to_dtype(want, to), f"ct-mxfp4 --to {to}")


def check_mixed_sharded():
    t, want = {}, []
    for i in range(3):
        p = f"model.layers.{i}.mlp.down_proj"
        t[p + ".weight_packed"] = rng.integers(0, 256, (64, 64), dtype=np.uint8)
        t[p + ".weight_scale"] = rng.integers(0x30, 0x40, (64, 8), dtype=np.uint8).view(E4M3)
        t[p + ".weight_global_scale"] = np.array([100.0], np.float32)
        want.append(p + ".weight")
    t["model.layers.0.mlp.gate_proj.weight"] = rng.standard_normal((64, 128)).astype(BF16)
    want.append("model.layers.0.mlp.gate_proj.weight")
    cfg = dict(NVFP4, ignore=["model.layers.0.mlp.gate_proj", "lm_head"])
    d = save("mixed", {}, cfg)
    os.remove(os.path.join(d, "model.safetensors"))
    names = sorted(t)
    halves = (names[: len(names) // 2], names[len(names) // 2:])
    wm = {}
    for j, part in enumerate(halves):
        f = f"model-0000{j + 1}-of-00002.safetensors"
        save_file({k: t[k] for k in part}, os.path.join(d, f))
        wm.update({k: f for k in part})
    json.dump({"metadata": {}, "weight_map": wm}, open(os.path.join(d, "model.safetensors.index.json"), "w"))
    out = d + ".out"
    r = run("convert", d, out, "--to", "bf16", "--max-shard-size", "20KB", "--quiet")
    check(r.returncode == 0, f"mixed convert: {r.stderr}")
    cfg = json.load(open(os.path.join(out, "config.json")))
    check("quantization_config" not in cfg and cfg["torch_dtype"] == "bfloat16", f"config: {cfg}")
    idx = json.load(open(os.path.join(out, "model.safetensors.index.json")))
    check(sorted(idx["weight_map"]) == sorted(want), f"index: {sorted(idx['weight_map'])}")


def check_refusals():
    def one(name, tensors, qc=NVFP4, side=None):
        return save("bad_" + name, tensors, qc, side=side)
    codes = pack(rng.integers(0, 16, (32, 64), dtype=np.uint8))
    s16 = np.full((32, 4), 0x38, np.uint8).view(E4M3)
    g = np.array([1.0], np.float32)
    refuse(one("grid", {P + ".weight_packed": codes, P + ".weight_scale": s16[:, :2], P + ".weight_global_scale": g}),
           "'weight_scale' is [32, 2], expected [32, 4]")
    refuse(one("sdtype", {P + ".weight_packed": codes, P + ".weight_scale": np.ones((32, 4), np.float32),
                          P + ".weight_global_scale": g}), "'weight_scale' is F32, expected F8_E4M3")
    refuse(one("noglobal", {P + ".weight_packed": codes, P + ".weight_scale": s16}),
           "missing part 'weight_global_scale'")
    refuse(one("scalar_global", {P + ".weight_packed": codes, P + ".weight_scale": s16,
                                 P + ".weight_global_scale": np.array(1.0, np.float32)}),
           "'weight_global_scale' is [], expected [1]")
    refuse(one("ragged_k", {P + ".weight_packed": codes[:, :7], P + ".weight_scale": s16[:, :1],
                            P + ".weight_global_scale": g}), "K = 14 is not a multiple of the block of 16")
    refuse(one("group32", {P + ".weight_packed": codes, P + ".weight_scale": s16, P + ".weight_global_scale": g},
               qc=ct_config("nvfp4-pack-quantized", 32)), "group_size 32 is not ct-nvfp4's (16)")
    refuse(one("weight_shape", {P + ".weight_packed": codes, P + ".weight_scale": s16, P + ".weight_global_scale": g,
                                P + ".weight_shape": np.array([32, 60], np.int64)}),
           "'weight_shape' says [32, 60] but the codes are [32, 64]")
    mixed = ct_config("nvfp4-pack-quantized", 16)
    mixed["format"] = "mixed-precision"
    mixed["config_groups"]["group_0"]["format"] = "nvfp4-pack-quantized"
    mixed["config_groups"]["group_1"] = {"targets": ["re:.*down_proj"], "format": "mxfp4-pack-quantized",
                                         "weights": {"num_bits": 4, "type": "float", "strategy": "group", "group_size": 32}}
    refuse(one("mixed_formats", {P + ".weight_packed": codes, P + ".weight_scale": s16, P + ".weight_global_scale": g},
               qc=mixed), "config group 'group_1': ct-mxfp4 beside ct-nvfp4; one float format per checkpoint")
    refuse(one("orphan_scale", {P + ".weight_scale": s16, "model.norm.weight": np.ones(4, np.float32)}),
           "missing part: no U8 'model.layers.0.mlp.up_proj.weight_packed' beside it")
    x = "model.layers.0.mlp.experts.down_proj"
    oss = {"quant_method": "mxfp4"}
    refuse(one("oss_3d", {x + "_blocks": codes.reshape(32, 2, 16), x + "_scales": np.zeros((32, 2), np.uint8)}, oss),
           "expected [E, N, K/32, 16]")
    refuse(one("oss_scales", {x + "_blocks": codes.reshape(2, 16, 2, 16), x + "_scales": np.zeros((2, 16, 1), np.uint8)}, oss),
           "'scales' is [2, 16, 1], expected [2, 16, 2]")
    refuse(one("oss_orphan", {x + "_scales": np.zeros((2, 16, 1), np.uint8)}, oss),
           "missing part: no U8 'model.layers.0.mlp.experts.down_proj_blocks' beside it")
    hf = {"quantization": {"quant_algo": "NVFP4", "group_size": 16}}
    refuse(one("mo_moe_transposed", {P + ".weight": codes.reshape(2, 16, 32), P + ".weight_scale": s16,
                                     P + ".weight_scale_2": np.array(1.0, np.float32)}, None,
               side={"hf_quant_config.json": hf}), "expected [N, K/2] (2 dimensions)")
    r = run("convert", os.path.join(TMP, "bad_grid"), os.path.join(TMP, "x"), "--to", "bf16")
    check("config.json" in r.stderr and "tensor 'model.layers.0.mlp.up_proj'" in r.stderr,
          f"the refusal names the file and the tensor: {r.stderr}")


check_decoders()
check_worked_examples()
check_ct_nvfp4()
check_modelopt_nvfp4()
check_gpt_oss()
check_ct_mxfp4()
check_mixed_sharded()
check_refusals()
summary("fp4_crosscheck")
