#!/usr/bin/env python3
"""`modelprep verify` on the float formats: kernels/fp8.cl, fp4.cl, bnb4.cl and bnb8.cl run on the
cpu backend and on OpenCL (PoCL, a package of `make deps`), every row (--full),
and must equal the CPU reference bit for bit (doc/reference.md "verify").

- FP8: DeepSeek block scales on a ragged grid (E4M3 and E5M2, a zero and a subnormal scale),
  compressed-tensors per tensor (BF16), channel (F16), group (F32) and block (BF16: the product
  rounded in the scale's dtype), ModelOpt per tensor and per channel (the scale rounded to BF16
  first).
- FP4: compressed-tensors NVFP4 (divided by the global scale; zero, subnormal and -0 block
  scales), ModelOpt NVFP4 (multiplied; code 8 is +0.0), compressed-tensors MXFP4 and gpt-oss
  stacked MXFP4 experts (E8M0 0); DeepSeek-V4 (tests/gen/dsv4gen.py): FP8 with E8M0 block scales
  on a ragged grid and I8 FP4 experts, and -Base's F32 scales.
- bitsandbytes: NF4 and FP4, plain and double-quantized absmax, LLM.int8 (tests/gen/bnbgen.py).
- A planted corruption: one byte of one scale flipped in a copy; `verify COPY --against ORIG`
  exits 1 naming the linear, the row, the column and both values.
- `convert --to bf16` of FP8, NVFP4 and nested NF4: verify (against the manifest's source) checks
  the dense rows on the CPU and runs the source's kernel on the device, both bit for bit.
Run by `make test` (tests/unit/test_cli.c) with MP_BIN set.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import float_util  # noqa: E402
from float_util import BF16, E4M3, E5M2, save  # noqa: E402
from mp_check import check, run, summary  # noqa: E402

rng = np.random.default_rng(22)


def codes(shape):
    c = rng.integers(0, 256, shape, dtype=np.uint8)
    c[(c & 0x7F) >= 0x7C] = 0x3C  # no NaN or infinity: y = x w^T must stay finite
    return c


def pack(c):
    return (c[..., 0::2] | (c[..., 1::2] << 4)).astype(np.uint8)


def fp8_block(name, dt, bn, bk):
    t = {}
    for i, (N, K) in enumerate([(200, 300), (72, 136)]):
        p = f"model.layers.{i}.mlp.down_proj"
        s = rng.uniform(1e-4, 1e-2, (-(-N // bn), -(-K // bk))).astype(np.float32)
        s.flat[0], s.flat[-1] = 0.0, np.float32(1e-40)
        t[p + ".weight"], t[p + ".weight_scale_inv"] = codes((N, K)).view(dt), s
    qc = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic", "weight_block_size": [bn, bk]}
    return save(name, t, qc)


def ct_fp8(strategy, sdt, **w):
    N, K = 96, 256
    shape = {"tensor": (1,), "channel": (N, 1), "group": (N, K // w.get("group_size", 1)),
             "block": (-(-N // w.get("block_structure", [1, 1])[0]), -(-K // w.get("block_structure", [1, 1])[1]))}
    weights = {"num_bits": 8, "type": "float", "strategy": strategy, "symmetric": True, "dynamic": False, **w}
    qc = {"quant_method": "compressed-tensors", "format": "float-quantized", "quantization_status": "compressed",
          "config_groups": {"group_0": {"targets": ["Linear"], "weights": weights}}, "ignore": ["lm_head"]}
    p = "model.layers.0.self_attn.o_proj"
    t = {p + ".weight": codes((N, K)).view(E4M3),
         p + ".weight_scale": rng.uniform(1e-4, 2e-2, shape[strategy]).astype(np.float32).astype(sdt)}
    return save(f"ct_{strategy}", t, qc)


def modelopt_fp8(algo, shape):
    N, K = 64, 512
    p = "model.layers.0.mlp.up_proj"
    t = {p + ".weight": codes((N, K)).view(E4M3), p + ".weight_scale": rng.uniform(1e-4, 1e-2, shape).astype(np.float32)}
    hf = {"producer": {"name": "modelopt"}, "quantization": {"quant_algo": algo, "exclude_modules": ["lm_head"]}}
    return save(f"modelopt_{algo}", t, None, side={"hf_quant_config.json": hf})


def fp4_ct(fmt, group, scales, strategy, extra):
    N, K = 37, 96
    w = {"num_bits": 4, "type": "float", "strategy": strategy, "group_size": group, "symmetric": True,
         "dynamic": False}
    qc = {"quant_method": "compressed-tensors", "format": fmt, "quantization_status": "compressed",
          "config_groups": {"group_0": {"targets": ["Linear"], "weights": w}}, "ignore": ["lm_head"]}
    p = "model.layers.0.mlp.up_proj"
    t = {p + ".weight_packed": pack(rng.integers(0, 16, (N, K), dtype=np.uint8)), p + ".weight_scale": scales(N, K // group)}
    t.update({p + k: v for k, v in extra.items()})
    return save(fmt, t, qc)


def nvfp4_scales(N, G):
    s = rng.integers(0x20, 0x50, (N, G), dtype=np.uint8)
    s[0, 0], s[0, 1], s[2, 0] = 0x00, 0x03, 0x80  # zero, subnormal, -0
    return s.view(E4M3)


def mxfp4_scales(N, G):
    s = rng.integers(110, 135, (N, G), dtype=np.uint8)
    s[0, 0] = 0
    return s


def modelopt_nvfp4():
    N, K = 24, 64
    p = "model.layers.0.mlp.up_proj"
    t = {p + ".weight": pack(rng.integers(0, 16, (N, K), dtype=np.uint8)), p + ".weight_scale": nvfp4_scales(N, K // 16),
         p + ".weight_scale_2": np.array(np.float32(0.4471 / (6 * 448)))}
    hf = {"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "NVFP4", "group_size": 16,
                                                             "exclude_modules": ["lm_head"]}}
    return save("mo_nvfp4", t, None, side={"hf_quant_config.json": hf})


def gpt_oss():
    E, H, I = 2, 64, 32
    x = "model.layers.0.mlp.experts."
    t = {}
    for proj, N, K in (("gate_up_proj", 2 * I, H), ("down_proj", H, I)):
        t[x + proj + "_blocks"] = pack(rng.integers(0, 16, (E, N, K), dtype=np.uint8)).reshape(E, N, K // 32, 16)
        sc = rng.integers(110, 135, (E, N, K // 32), dtype=np.uint8)
        sc[0, 0, 0] = 0
        t[x + proj + "_scales"] = sc
    qc = {"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn", "lm_head"]}
    return save("gpt_oss", t, qc, arch="GptOssForCausalLM")


def bnb(name, *args):
    d = os.path.join(float_util.TMP, name)
    subprocess.run([sys.executable, os.path.join(HERE, "..", "gen", "bnbgen.py"), d, *args], check=True)
    return d


def dsv4(name, variant):
    """DeepSeek-V4 (tests/gen/dsv4gen.py): E8M0-scaled FP8 linears on a ragged grid and I8 FP4
    experts (flash), or F32 scales and FP8 experts (base)."""
    d = os.path.join(float_util.TMP, name)
    subprocess.run([sys.executable, os.path.join(HERE, "..", "gen", "dsv4gen.py"), d, "--variant", variant], check=True)
    return d


def cases():
    yield "fp8-block e4m3", fp8_block("fp8_e4m3", E4M3, 128, 128), "fp8", 2
    yield "fp8-block e5m2", fp8_block("fp8_e5m2", E5M2, 64, 32), "fp8", 2
    yield "ct-float tensor bf16", ct_fp8("tensor", BF16), "fp8", 1
    yield "ct-float channel f16", ct_fp8("channel", np.float16), "fp8", 1
    yield "ct-float group f32", ct_fp8("group", np.float32, group_size=64), "fp8", 1
    yield "ct-float block bf16", ct_fp8("block", BF16, block_structure=[64, 96]), "fp8", 1
    yield "modelopt-fp8 tensor", modelopt_fp8("FP8", ()), "fp8", 1
    yield "modelopt-fp8 channel", modelopt_fp8("FP8_PER_CHANNEL_PER_TOKEN", (64,)), "fp8", 1
    yield "ct-nvfp4", fp4_ct("nvfp4-pack-quantized", 16, nvfp4_scales, "tensor_group",
                             {".weight_global_scale": np.array([448 * 6 / 0.3172], np.float32)}), "fp4", 1
    yield "modelopt-nvfp4", modelopt_nvfp4(), "fp4", 1
    yield "ct-mxfp4", fp4_ct("mxfp4-pack-quantized", 32, mxfp4_scales, "group", {}), "fp4", 1
    yield "mxfp4 gpt-oss", gpt_oss(), "fp4", 2
    yield "deepseek-v4 flash", dsv4("dsv4_flash", "flash"), "fp4", 10
    yield "deepseek-v4 base", dsv4("dsv4_base", "base"), "fp8", 10
    yield "bnb nf4", bnb("bnb_nf4", "nf4"), "bnb4", 2
    yield "bnb nf4 nested", bnb("bnb_nf4n", "nf4", "--nested"), "bnb4", 2
    yield "bnb fp4 nested", bnb("bnb_fp4n", "fp4", "--nested"), "bnb4", 2
    yield "bnb fp4", bnb("bnb_fp4", "fp4"), "bnb4", 2
    yield "bnb int8", bnb("bnb_int8", "int8"), "bnb8", 2


def values(out):
    """The values the report says it compared bit for bit."""
    m = re.search(r"([0-9]+) dequantized values compared bit for bit", out)
    return int(m.group(1)) if m else -1


def check_all(devs):
    done = []
    for what, d, family, n in cases():
        for dev in devs:
            r = run("verify", d, "--device", dev, "--full", "--quiet")
            check(r.returncode == 0, f"{what} on {dev}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
            check(r.stdout.count(f"PASS  ") == n and f" {family} " in r.stdout,
                  f"{what} on {dev}: {n} linears of {family}:\n{r.stdout}")
            check(r.stdout.startswith(f"device:    {dev}") and values(r.stdout) > 0,
                  f"{what} on {dev}: the device and the count of values:\n{r.stdout}")
        done.append(d)
    return done


def flip_scale(src, dst, tensor, index):
    """A copy of src with bit 4 of byte `index` of `tensor` flipped in place in the file."""
    shutil.copytree(src, dst)
    with open(os.path.join(dst, "model.safetensors"), "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        at = 8 + n + json.loads(f.read(n))[tensor]["data_offsets"][0] + index
        f.seek(at)
        b = f.read(1)[0]
        f.seek(at)
        f.write(bytes([b ^ 0x10]))


def corruptions():
    """Flipped copies of four checkpoints: (what, source, copy, linear, row, column of the first
    value that differs)."""
    out = []
    for what, d, tensor, byte, linear, row, col in [
            ("fp8", fp8_block("fp8_c", E4M3, 128, 128), "model.layers.1.mlp.down_proj.weight_scale_inv", 2,
             "model.layers.1.mlp.down_proj", 0, 0),
            ("nvfp4", modelopt_nvfp4(), "model.layers.0.mlp.up_proj.weight_scale", 4 * 3 + 1,
             "model.layers.0.mlp.up_proj", 3, 16),
            ("nf4", bnb("bnb_c", "nf4"), "model.layers.0.mlp.down_proj.weight.absmax", 4 * 5 + 2,
             "model.layers.0.mlp.down_proj", 8, 0),
            ("deepseek-v4 fp4", dsv4("dsv4_c", "flash"), "layers.0.ffn.experts.0.w2.scale", 2 * 3 + 1,
             "layers.0.ffn.experts.0.w2", 3, 32)]:
        flip_scale(d, d + ".flipped", tensor, byte)
        out.append((what, d, d + ".flipped", linear, row, col))
    return out


def check_corruption(devs):
    for what, d, bad, linear, row, col in corruptions():
        for dev in devs:
            r = run("verify", bad, "--against", d, "--device", dev, "--full", "--quiet")
            check(r.returncode == 1, f"{what} with a flipped scale byte on {dev}: exit {r.returncode}\n{r.stdout}")
            m = re.search(re.escape(linear) + r": [0-9]+ of [0-9]+ dequantized values differ from the reference; "
                          r"first at row ([0-9]+), column ([0-9]+): device (\S+), reference (\S+)", r.stdout)
            check(m and int(m.group(1)) == row and int(m.group(2)) == col and m.group(3) != m.group(4),
                  f"{what} on {dev}: the failure names {linear}, row {row}, column {col} and both values:\n{r.stdout}")


def check_converted(devs):
    """A dense output of a float source: its rows against the reference rounded (cpu), and the
    source's kernel on the device, both bit for bit."""
    for what, d, family in (("fp8", fp8_block("fp8_d", E4M3, 128, 128), "fp8"), ("nvfp4", modelopt_nvfp4(), "fp4"),
                            ("nf4", bnb("bnb_d", "nf4", "--nested"), "bnb4")):
        out = d + ".bf16"
        r = run("convert", d, out, "--to", "bf16", "--quiet")
        check(r.returncode == 0, f"convert {what}: {r.stderr}")
        for dev in devs:
            r = run("verify", out, "--device", dev, "--full", "--quiet")
            n = r.stdout.count(" (source) ")
            check(r.returncode == 0 and n >= 1 and len(re.findall(rf" \(source\) +{family} ", r.stdout)) == n
                  and r.stdout.count("dense BF16 (cpu)") == n and r.stdout.startswith(f"device:    {dev}"),
                  f"{what} --to bf16 on {dev}: the dense rows and the source's kernel:\n{r.stdout}\n{r.stderr}")


if __name__ == "__main__":
    devs = ["cpu", "opencl"]  # PoCL is one of `make deps`' packages, as tests/ref/verify_check.py assumes
    check_all(devs)
    check_corruption(devs)
    check_converted(devs)
    summary("float_verify")
