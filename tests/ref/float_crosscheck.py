#!/usr/bin/env python3
"""Cross-check the FP8 sources (fp8-block, ct-float, modelopt-fp8) against numpy + ml_dtypes.

- Element decoders: all 256 codes of E4M3FN and of E5M2, through `convert --to f32` of a
  per-tensor checkpoint whose scale is 1.0, against ml_dtypes' float32 bits (NaN included).
- The worked examples of doc/formats/fp8.md, as literal bf16 bits (no numpy in the loop).
- DeepSeek block scales on ragged grids ([200, 300] with 128x128 blocks, [576, 7168]-style
  edges), e5m2 weights, scales of 0 and subnormal scales, NaN codes, f32/f16/bf16 outputs:
  modelprep's bytes equal round(f32(code) * f32(scale)) computed by numpy, bit for bit.
- compressed-tensors float-quantized, every strategy, BF16/F16/F32 scales (the product in the
  scale's dtype), input_scale dropped, an ignore list with a name and a "re:" pattern, a file
  mixing FP8 and BF16 linears.
- ModelOpt FP8 per tensor and per channel: the scale rounded to the model's dtype first; the
  data is chosen so that this differs from the f32 path somewhere (the check can fail).
- The output: no quantization_config, torch_dtype the target, hf_quant_config.json not copied,
  dense floats cast, the index rebuilt without scale tensors; inspect's float columns.
- Refusals, exit 4 with the reason: scale grids of the wrong shape, wrong scale dtypes, E8M0
  scales, an FP8 weight without its scale, a scale without its FP8 weight, an ignored module
  stored as FP8, a group that does not divide K, asymmetric float weights.
Run by `make test` (tests/unit/test_cli.c) with MP_BIN set.
"""
import json
import os
import sys

import ml_dtypes
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import check, run, summary  # noqa: E402
from float_util import bits, convert, out_tensors, refuse, same_bits, save, to_dtype  # noqa: E402

E4M3 = ml_dtypes.float8_e4m3fn
E5M2 = ml_dtypes.float8_e5m2
BF16 = ml_dtypes.bfloat16
rng = np.random.default_rng(15)


def codes(shape, nan=False):
    c = rng.integers(0, 256, shape, dtype=np.uint8)
    if not nan:
        c[(c & 0x7F) == 0x7F] = 0x3C
    return c


def expect_block(c, dt, s, bn, bk):
    """f32(code) * s[n // bn][k // bk] in f32, numpy's RNE multiply."""
    v = c.view(dt).astype(np.float32)
    full = np.repeat(np.repeat(s.astype(np.float32), bn, 0), bk, 1)[: c.shape[0], : c.shape[1]]
    return (v * full).astype(np.float32)


FP8_BLOCK = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
             "weight_block_size": [128, 128]}


def check_decoders():
    for dt, name in ((E4M3, "e4m3"), (E5M2, "e5m2")):
        c = np.arange(256, dtype=np.uint8).reshape(16, 16)
        d = save(f"codes_{name}", {"model.layers.0.mlp.up_proj.weight": c.view(dt),
                                   "model.layers.0.mlp.up_proj.weight_scale_inv": np.ones([1], np.float32)},
                 dict(FP8_BLOCK, weight_block_size=None), torch_dtype="float32")
        got = out_tensors(convert(d, "f32"))["model.layers.0.mlp.up_proj.weight"]
        same_bits(got, c.view(dt).astype(np.float32), f"all 256 {name} codes")


def check_worked_examples():
    # doc/formats/fp8.md: scale 0x39A2F8C0, codes 38 C4 5A 7E 01 -> bf16 39A3 BA74 3BCC 3E0F 3523.
    c = np.array([[0x38, 0xC4, 0x5A, 0x7E, 0x01]], dtype=np.uint8)
    s = np.array([[0x39A2F8C0]], dtype=np.uint32).view(np.float32)
    d = save("worked", {"model.layers.0.mlp.up_proj.weight": c.view(E4M3),
                        "model.layers.0.mlp.up_proj.weight_scale_inv": s}, FP8_BLOCK)
    got = bits(out_tensors(convert(d, "bf16"))["model.layers.0.mlp.up_proj.weight"]).tolist()
    check(got == [[0x39A3, 0xBA74, 0x3BCC, 0x3E0F, 0x3523]], f"worked example: {[hex(x) for x in got[0]]}")


def block_model(name, shapes, dt=E4M3, bn=128, bk=128, special=False):
    t, want = {}, {}
    for i, (N, K) in enumerate(shapes):
        p = f"model.layers.{i}.mlp.down_proj"
        c = codes((N, K), nan=special)
        s = rng.uniform(1e-5, 1e-2, (-(-N // bn), -(-K // bk))).astype(np.float32)
        if special:
            s.flat[0] = 0.0
            s.flat[-1] = np.float32(1e-40)  # subnormal
            c[0, :4] = [0x7F, 0xFF, 0x01, 0x80]
        t[p + ".weight"] = c.view(dt)
        t[p + ".weight_scale_inv"] = s
        want[p + ".weight"] = expect_block(c, dt, s, bn, bk)
    t["model.norm.weight"] = rng.standard_normal(shapes[0][1]).astype(np.float16)
    want["model.norm.weight"] = t["model.norm.weight"].astype(np.float32)
    t["lm_head.weight"] = rng.standard_normal((16, shapes[0][1])).astype(BF16)
    want["lm_head.weight"] = t["lm_head.weight"].astype(np.float32)
    return save(name, t, dict(FP8_BLOCK, weight_block_size=[bn, bk])), want


def check_block():
    cases = [("ragged", [(200, 300), (576, 448)], E4M3, 128, 128, False),
             ("special", [(130, 260)], E4M3, 128, 128, True),
             ("e5m2", [(96, 200)], E5M2, 64, 32, False)]
    for name, shapes, dt, bn, bk, special in cases:
        d, want = block_model(name, shapes, dt, bn, bk, special)
        for to in ("bf16", "f16", "f32"):
            got = out_tensors(convert(d, to))
            check(sorted(got) == sorted(want), f"{name} {to}: tensors {sorted(got)}")
            for k, v in want.items():
                same_bits(got[k], to_dtype(v, to), f"{name} --to {to}: {k}")
        if special:
            w = out_tensors(d + ".out-bf16")["model.layers.0.mlp.down_proj.weight"]
            check(np.isnan(w[0, 0].astype(np.float32)) and np.isnan(w[0, 1].astype(np.float32)),
                  "NaN codes stay NaN")
            check(bits(w)[0, 1] == 0xFFC0, "code 0xFF is the negative quiet NaN")


def check_output_files():
    d, want = block_model("sharded", [(256, 256), (256, 256), (128, 256)])
    json.dump({"producer": {"name": "modelopt"}}, open(os.path.join(d, "tokenizer_config.json"), "w"))
    out = d + ".out"
    r = run("convert", d, out, "--to", "bfloat16", "--max-shard-size", "150KB", "--quiet", "--force")
    check(r.returncode == 0, f"sharded convert: {r.stderr}")
    cfg = json.load(open(os.path.join(out, "config.json")))
    check("quantization_config" not in cfg and cfg["torch_dtype"] == "bfloat16", f"config: {cfg}")
    idx = json.load(open(os.path.join(out, "model.safetensors.index.json")))
    check(sorted(idx["weight_map"]) == sorted(want), f"index: {sorted(idx['weight_map'])}")
    check(os.path.exists(os.path.join(out, "tokenizer_config.json")), "side files are copied")
    got = out_tensors(out)
    check(all(v.dtype == BF16 for v in got.values()), "every float tensor is bf16")
    keep = d + ".keep"
    r = run("convert", d, keep, "--to", "bf16", "--keep-dense-dtype", "--quiet")
    check(r.returncode == 0 and out_tensors(keep)["model.norm.weight"].dtype == np.float16,
          "--keep-dense-dtype copies dense tensors as they are")


def ct_config(strategy, ignore=None, **w):
    weights = {"num_bits": 8, "type": "float", "strategy": strategy, "symmetric": True, "dynamic": False}
    weights.update(w)
    return {"quant_method": "compressed-tensors", "format": "float-quantized",
            "quantization_status": "compressed",
            "config_groups": {"group_0": {"targets": ["Linear"], "weights": weights,
                                          "input_activations": None}},
            "ignore": ignore if ignore is not None else ["lm_head"]}


def ct_scale(strategy, N, K, sdt, g=None, blk=None):
    shape = {"tensor": (1,), "channel": (N, 1), "group": (N, K // (g or 1)),
             "block": (-(-N // (blk or [1, 1])[0]), -(-K // (blk or [1, 1])[1]))}[strategy]
    return rng.uniform(1e-4, 2e-2, shape).astype(np.float32).astype(sdt)


def ct_expect(c, s, strategy, g=None, blk=None):
    v = c.view(E4M3).astype(np.float32)
    s32 = s.astype(np.float32)
    N, K = c.shape
    if strategy == "tensor":
        full = np.full((N, K), s32.reshape(-1)[0], np.float32)
    elif strategy == "channel":
        full = np.repeat(s32.reshape(N, 1), K, 1)
    elif strategy == "group":
        full = np.repeat(s32, g, 1)
    else:
        full = np.repeat(np.repeat(s32, blk[0], 0), blk[1], 1)[:N, :K]
    prod = (v * full).astype(np.float32)
    return prod.astype(s.dtype).astype(np.float32)  # computed in the scale's dtype


def check_ct():
    N, K = 96, 256
    cases = [("tensor", BF16, {}), ("channel", np.float16, {}), ("group", np.float32, {"group_size": 64}),
             ("block", BF16, {"block_structure": [64, 96]})]
    for strategy, sdt, extra in cases:
        g, blk = extra.get("group_size"), extra.get("block_structure")
        t, want = {}, {}
        for i in range(2):
            p = f"model.layers.{i}.self_attn.o_proj"
            c = codes((N, K))
            s = ct_scale(strategy, N, K, sdt, g, blk)
            t[p + ".weight"], t[p + ".weight_scale"] = c.view(E4M3), s
            t[p + ".input_scale"] = np.array([0.5], np.float32).astype(sdt)
            want[p + ".weight"] = ct_expect(c, s, strategy, g, blk)
        # ignored: a BF16 linear by name and one by "re:" pattern, beside the FP8 ones
        t["lm_head.weight"] = rng.standard_normal((8, K)).astype(BF16)
        t["model.layers.0.mlp.gate.weight"] = rng.standard_normal((4, K)).astype(BF16)
        for k in ("lm_head.weight", "model.layers.0.mlp.gate.weight"):
            want[k] = t[k].astype(np.float32)
        d = save(f"ct_{strategy}", t, ct_config(strategy, ["lm_head", "re:.*mlp[.]gate$"], **extra))
        for to in ("bf16", "f32"):
            got = out_tensors(convert(d, to))
            check(sorted(got) == sorted(want), f"ct {strategy}: tensors {sorted(got)} (input_scale dropped)")
            for k, v in want.items():
                same_bits(got[k], to_dtype(v, to), f"ct {strategy} --to {to}: {k}")
    r = run("inspect", d, "--json")
    lin = json.loads(r.stdout)["linears"][0]
    check(lin["layout"] == "ct-float" and lin["element"] == "F8_E4M3" and lin["scale_kind"] == "block"
          and lin["block"] == [64, 96] and lin["scale_grid"] == [2, 3] and lin["scale_dtype"] == "BF16",
          f"inspect --json: {lin}")


def check_modelopt():
    N, K = 64, 512
    for algo, shape in (("FP8", ()), ("FP8_PER_CHANNEL_PER_TOKEN", (N,))):
        t, want, differs = {}, {}, False
        for i in range(2):
            p = f"model.layers.{i}.mlp.up_proj"
            c = codes((N, K))
            s = rng.uniform(1e-4, 1e-2, shape).astype(np.float32)
            t[p + ".weight"], t[p + ".weight_scale"] = c.view(E4M3), s
            t[p + ".input_scale"] = np.array(1.0, np.float32)
            s_b = s.astype(BF16).astype(np.float32).reshape(-1, 1) if shape else s.astype(BF16).astype(np.float32)
            want[p + ".weight"] = (c.view(E4M3).astype(np.float32) * s_b).astype(np.float32)
            f32_path = (c.view(E4M3).astype(np.float32) * (s.reshape(-1, 1) if shape else s)).astype(BF16)
            differs |= bool(np.any(bits(f32_path) != bits(want[p + ".weight"].astype(BF16))))
        check(differs, "the ModelOpt data exercises the bf16-scale rounding")
        t["model.layers.0.mlp.gate.weight"] = rng.standard_normal((4, K)).astype(BF16)
        want["model.layers.0.mlp.gate.weight"] = t["model.layers.0.mlp.gate.weight"].astype(np.float32)
        hf = {"producer": {"name": "modelopt", "version": "0.35"},
              "quantization": {"quant_algo": algo, "kv_cache_quant_algo": None,
                               "exclude_modules": ["lm_head", "model.layers.*.mlp.gate"]}}
        d = save(f"modelopt_{algo}", t, None, side={"hf_quant_config.json": hf})
        out = convert(d, "bf16")
        got = out_tensors(out)
        check(sorted(got) == sorted(want), f"modelopt {algo}: tensors {sorted(got)}")
        for k, v in want.items():
            same_bits(got[k], v.astype(BF16), f"modelopt {algo}: {k}")
        check(not os.path.exists(os.path.join(out, "hf_quant_config.json")), "hf_quant_config.json is dropped")
        r = run("inspect", d)
        check("modelopt-fp8" in r.stdout and "F32 multiply" in r.stdout, f"inspect: {r.stdout}")


def check_refusals():
    def one(name, tensors, qc=FP8_BLOCK, side=None):
        return save("bad_" + name, tensors, qc, side=side)

    c = codes((200, 300)).view(E4M3)
    p = "model.layers.0.mlp.up_proj"
    ok_s = np.ones((2, 3), np.float32)
    refuse(one("grid", {p + ".weight": c, p + ".weight_scale_inv": np.ones((2, 2), np.float32)}),
           "'weight_scale_inv' is [2, 2], expected [2, 3]: block scales of 128 x 128 over [200, 300]")
    refuse(one("floor_grid", {p + ".weight": c, p + ".weight_scale_inv": np.ones((1, 2), np.float32)}),
           "expected [2, 3]")
    refuse(one("bf16_scale", {p + ".weight": c, p + ".weight_scale_inv": ok_s.astype(BF16)}),
           "'weight_scale_inv' is BF16, expected F32")
    refuse(one("e8m0", {p + ".weight": c, p + ".weight_scale_inv": np.full((2, 3), 127, np.uint8).view(ml_dtypes.float8_e8m0fnu)}),
           "F8_E8M0 (DeepSeek-V4 ue8m0 scales)")
    refuse(one("no_scale", {p + ".weight": c}), "missing part 'weight_scale_inv'")
    refuse(one("orphan_scale", {p + ".weight": np.zeros((200, 300), BF16), p + ".weight_scale_inv": ok_s}),
           f"missing part: no F8_E4M3 or F8_E5M2 '{p}.weight' beside it, it is BF16")
    refuse(one("skipped_fp8", {p + ".weight": c, p + ".weight_scale_inv": ok_s},
               dict(FP8_BLOCK, modules_to_not_convert=["up_proj"])),
           "the config leaves this linear unquantized")
    refuse(one("block_size", {p + ".weight": c, p + ".weight_scale_inv": ok_s},
               dict(FP8_BLOCK, weight_block_size=[128])), "'weight_block_size' is not two integers")
    # expert_dtype makes it DeepSeek-V4 (doc/formats/deepseek-v4.md), whose scales are `<m>.scale`
    refuse(one("v4", {p + ".weight": c, p + ".weight_scale_inv": ok_s}, dict(FP8_BLOCK, expert_dtype="fp4")),
           f"model.safetensors: tensor '{p}': missing part 'scale'")
    refuse(one("v4_dtype", {p + ".weight": c, p + ".scale": ok_s}, dict(FP8_BLOCK, expert_dtype="fp6")),
           "expert_dtype 'fp6' is not known (DeepSeek-V4 has fp4 or fp8)")
    v4 = one("v4_top", {p + ".weight": c, p + ".weight_scale_inv": ok_s})  # V4: expert_dtype at the top level
    cfg = json.load(open(os.path.join(v4, "config.json")))
    json.dump(dict(cfg, expert_dtype="fp4"), open(os.path.join(v4, "config.json"), "w"))
    refuse(v4, "missing part 'scale'")
    cs = np.ones((200, 3), np.float32).astype(BF16)
    refuse(one("ct_group", {p + ".weight": c, p + ".weight_scale": cs}, ct_config("group", group_size=128)),
           "group size 128 does not divide K = 300")
    refuse(one("ct_asym", {p + ".weight": c, p + ".weight_scale": cs}, ct_config("channel", symmetric=False)),
           "asymmetric float weights are not supported")
    refuse(one("ct_channel_shape", {p + ".weight": c, p + ".weight_scale": cs}, ct_config("channel")),
           "'weight_scale' is [200, 3], expected [200, 1]")
    hf = {"quantization": {"quant_algo": "W4A8_NVFP4_FP8", "group_size": 16}}
    refuse(one("modelopt_algo", {p + ".weight": c, p + ".weight_scale": np.array(1.0, np.float32)}, None,
               side={"hf_quant_config.json": hf}), "ModelOpt quant_algo 'W4A8_NVFP4_FP8' is not supported")


check_decoders()
check_worked_examples()
check_block()
check_output_files()
check_ct()
check_modelopt()
check_refusals()
summary("float_crosscheck")
