#!/usr/bin/env python3
"""Cross-check `modelprep convert --to <packed layout>` for every source variant x target.

For each source checkpoint of quant_crosscheck.py (GPTQ v1/v2 2/3/4/8-bit, AWQ GEMM/GEMV,
AutoRound, compressed-tensors, ...) and each target (gptq, gptq-v2, awq, compressed-tensors,
cutlass-int4 u4 and s4, onednn-int4):
  - if the target can express the source, convert; read the output back with an independent
    numpy reader written from the layout definitions of doc/reference.md §3.1 (below); its codes, zero
    points and scales must equal the source's exactly; and `convert --to f32` of the output
    must equal the source's numpy dequantization bit for bit;
  - if it cannot (bits, act-order, asymmetric zeros into cutlass-int4, z = 0 into GPTQ v1,
    mixed bit widths), the conversion must fail with exit 4, its reason, and no output.
Then round trips: gptq -> awq -> gptq and gptq-v2 -> compressed-tensors -> gptq-v2 are
byte-identical.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quant_crosscheck as X  # noqa: E402
import quant_ref as Q  # noqa: E402
from mp_check import BIN, check, count  # noqa: E402

pairs = {"converted": 0, "refused": 0}


def f16(a):
    return a.view(np.float16).astype(np.float32) if a.dtype == np.uint16 else a.astype(np.float32)


def scales_f32(arr, dtype):
    if dtype == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.astype(np.float32)


# ---------------------------------------------------------------- readers, from doc/reference.md §3.1

def read_layout(fmt, t, hdr, prefix, N, K, G, b, s4):
    """Returns q [N,K], z [N,G] (true zeros) and s [N,G] float32 of one linear."""
    def T(name):
        return t[prefix + "." + name]

    def dt(name):
        return hdr[prefix + "." + name]["dtype"]
    if fmt in ("gptq", "gptq-v2"):
        q = Q.codes_from_bits(Q.bits_of(T("qweight").view(np.uint32), 0), K, b)
        z = Q.codes_from_bits(Q.bits_of(T("qzeros").view(np.uint32), 1), N, b).T + (1 if fmt == "gptq" else 0)
        s = scales_f32(T("scales"), dt("scales")).T
        return q, z, s
    if fmt == "awq":
        w, zq = T("qweight").view(np.uint32).astype(np.int64), T("qzeros").view(np.uint32).astype(np.int64)
        n = np.arange(N)
        shift = 4 * np.array(Q.AWQ_REVERSE)[n % 8]
        q = ((w[:, n // 8] >> shift) & 15).T
        z = ((zq[:, n // 8] >> shift) & 15).T
        return q, z, scales_f32(T("scales"), dt("scales")).T
    if fmt == "compressed-tensors":
        check(list(T("weight_shape")) == [N, K], f"{prefix}: weight_shape")
        q = Q.codes_from_bits(Q.bits_of(T("weight_packed").view(np.uint32), 1), K, b)
        if prefix + ".weight_zero_point" in t:
            z = Q.codes_from_bits(Q.bits_of(T("weight_zero_point").view(np.uint32), 0), N, b).T
        else:
            z = np.full((N, G), 1 << (b - 1))
        return q, z, scales_f32(T("weight_scale"), dt("weight_scale"))
    if fmt == "cutlass-int4":
        check(dt("qweight") == "U8" and T("qweight").shape == (N, K // 2), f"{prefix}: cutlass qweight uint8 [N, K/2]")
        B = T("qweight").astype(np.int64)
        k = np.arange(K)
        q = (B[:, k // 2] >> (4 * (k % 2))) & 15
        if s4:
            q = q ^ 8
        return q, np.full((N, G), 8), scales_f32(T("scales"), dt("scales"))
    if fmt == "onednn-int4":
        check(T("qweight").shape == (N, K // 8), f"{prefix}: onednn qweight [N, K/8]")
        w = T("qweight").view(np.uint32).astype(np.int64)
        k = np.arange(K)
        q = (w[:, k // 8] >> (4 * (k % 8))) & 15
        if prefix + ".qzeros" in t:
            zq = T("qzeros").view(np.uint32).astype(np.int64)
            n = np.arange(N)
            z = ((zq[:, n // 8] >> (4 * (n % 8))) & 15).T
        else:
            z = np.full((N, G), 8)
        return q, z, scales_f32(T("scales"), dt("scales")).T
    raise ValueError(fmt)


def load_all(out):
    idx = os.path.join(out, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else ["model.safetensors"]
    t, hdr = {}, {}
    X.NP.update({"U8": np.uint8, "I8": np.int8})
    for f in files:
        p = os.path.join(out, f)
        raw = open(p, "rb").read()
        n = int.from_bytes(raw[:8], "little")
        h = json.loads(raw[8:8 + n])
        h.pop("__metadata__", None)
        hdr.update(h)
        t.update(X.load_raw(p))
    return t, hdr


# ---------------------------------------------------------------- expectations

TARGETS = [("gptq", False), ("gptq-v2", False), ("awq", False), ("compressed-tensors", False),
           ("cutlass-int4", False), ("cutlass-int4", True), ("onednn-int4", False)]


def refusal(model, fmt):
    """The reason a target cannot hold this source, as modelprep words it, or None."""
    bits = {p: c[0].max() for p, c in model.canon.items()}
    widths = set()
    for prefix, (q, z, s, g) in sorted(model.canon.items()):
        N, K = q.shape
        G = z.shape[1]
        gs = K // G
        b = model_bits(model, prefix)
        widths.add((b, gs if G > 1 else None))
        act = not np.array_equal(g, np.arange(K) // gs)
        if fmt in ("awq", "cutlass-int4", "onednn-int4") and b != 4:
            return f"{b}-bit codes cannot be written as {fmt}"
        if fmt in ("awq", "cutlass-int4", "onednn-int4") and act:
            return "act-order (a non-trivial g_idx) cannot be expressed"
        if fmt == "cutlass-int4" and gs not in (32, 64, 128, 256):
            return "the XPU grouped GEMM takes 32, 64, 128 or 256"
        if fmt == "cutlass-int4" and (z != 8).any():
            return "has no zero points (8 is implied)"
        if fmt == "gptq" and (z == 0).any():
            return "cannot be stored in GPTQ v1"
    mixed = len({w[0] for w in widths}) > 1 or len({w[1] for w in widths if w[1]}) > 1
    if mixed and fmt not in ("gptq", "gptq-v2"):  # GPTQ writes per-module `dynamic` overrides
        return "mixed parameters need per-module overrides"
    del bits
    return None


def model_bits(model, prefix):
    cfg = model.config["quantization_config"]
    b = cfg.get("bits", cfg.get("w_bit"))
    if b is None:
        b = next(iter(cfg["config_groups"].values()))["weights"]["num_bits"]
    for key, over in cfg.get("dynamic", {}).items():
        import re
        if re.match(key.split(":", 1)[-1], prefix) and "bits" in over:
            b = over["bits"]
    for key, over in cfg.get("extra_config", {}).items():
        import re
        if (key == prefix or re.match(key, prefix)) and "bits" in over and over["bits"] < 16:
            b = over["bits"]
    return b


def convert(src, out, fmt, s4=False, extra=()):
    args = [BIN, "convert", src, out, "--to", fmt, "--quiet", *extra]
    if s4:
        args += ["--int4", "s4"]
    return subprocess.run(args, capture_output=True, text=True)


def run_pair(tmp, name, model, src, fmt, s4):
    out = os.path.join(tmp, f"{name}--{fmt}{'-s4' if s4 else ''}")
    why = refusal(model, fmt)
    extra = ["--scale-dtype", "f32"] if fmt in ("gptq", "gptq-v2", "awq") and has_bf16(model) else []
    r = convert(src, out, fmt, s4, extra)
    if why:
        check(r.returncode == 4 and why in r.stderr, f"{name} -> {fmt}: want exit 4 '{why}', got {r.returncode}: {r.stderr}")
        check(not os.path.exists(out), f"{name} -> {fmt}: refusal left an output")
        pairs["refused"] += 1
        return
    check(r.returncode == 0, f"{name} -> {fmt}: exit {r.returncode}: {r.stderr}")
    t, hdr = load_all(out)
    for prefix, (q, z, s, g) in model.canon.items():
        N, K = q.shape
        G = z.shape[1]
        qo, zo, so = read_layout(fmt, t, hdr, prefix, N, K, G, model_bits(model, prefix), s4)
        check(np.array_equal(qo, q), f"{name} -> {fmt}: {prefix} codes differ")
        check(np.array_equal(np.asarray(zo), z), f"{name} -> {fmt}: {prefix} zero points differ")
        check(np.array_equal(so.view(np.uint32), np.ascontiguousarray(s).view(np.uint32)),
              f"{name} -> {fmt}: {prefix} scales differ")
    for dense, ref in model.expect.items():
        if ref is None:
            check(t[dense].tobytes() == model.tensors[dense].tobytes(), f"{name} -> {fmt}: {dense} not copied")
    f32 = out + "-f32"
    r = convert(out, f32, "f32")
    check(r.returncode == 0, f"{name} -> {fmt} -> f32: {r.stderr}")
    got = X.load_output(f32)
    for wname, ref in model.expect.items():
        if ref is not None:
            check(np.array_equal(got[wname].view(np.uint32), np.ascontiguousarray(ref).view(np.uint32)),
                  f"{name} -> {fmt} -> f32: {wname} differs from the source's dequantization")
    cfg = json.load(open(os.path.join(out, "config.json")))["quantization_config"]
    method = {"gptq": "gptq", "gptq-v2": "gptq", "awq": "awq", "compressed-tensors": "compressed-tensors"}.get(fmt, "modelprep")
    check(cfg["quant_method"] == method, f"{name} -> {fmt}: quant_method {cfg['quant_method']}")
    shutil.rmtree(out)
    shutil.rmtree(f32)
    pairs["converted"] += 1


def has_bf16(model):
    return any(isinstance(v, np.ndarray) and v.dtype == np.uint16 for k, v in model.tensors.items()
               if k.endswith("weight_scale"))


def round_trips(tmp):
    L = "model.layers.0."
    m = X.Model({"quant_method": "gptq", "bits": 4, "group_size": 32, "sym": False,
                 "desc_act": False, "checkpoint_format": "gptq"})
    m.gptq(L + "mlp.up_proj", 64, 128, 4, 32, True, False)
    m.gptq(L + "mlp.down_proj", 128, 64, 4, 32, True, False)
    src = os.path.join(tmp, "rt_gptq")
    m.write(src)
    a, b_ = os.path.join(tmp, "rt_gptq_awq"), os.path.join(tmp, "rt_gptq_awq_gptq")
    check(convert(src, a, "awq").returncode == 0, "gptq -> awq")
    check(convert(a, b_, "gptq").returncode == 0, "awq -> gptq")
    t0, _ = load_all(src)
    t1, _ = load_all(b_)
    for k in t0:
        check(k in t1 and t0[k].tobytes() == t1[k].tobytes(), f"gptq -> awq -> gptq: {k} not byte-identical")

    m = X.Model({"quant_method": "gptq", "bits": 4, "group_size": 32, "sym": False, "desc_act": True,
                 "checkpoint_format": "gptq_v2"})
    m.gptq(L + "mlp.up_proj", 64, 128, 4, 32, False, False, act_order=True)
    src = os.path.join(tmp, "rt_v2")
    m.write(src)
    a, b_ = os.path.join(tmp, "rt_v2_ct"), os.path.join(tmp, "rt_v2_ct_v2")
    check(convert(src, a, "compressed-tensors").returncode == 0, "gptq-v2 -> ct")
    check(convert(a, b_, "gptq-v2").returncode == 0, "ct -> gptq-v2")
    t0, _ = load_all(src)
    t1, _ = load_all(b_)
    for k in t0:
        check(k in t1 and t0[k].tobytes() == t1[k].tobytes(), f"gptq-v2 -> ct -> gptq-v2: {k} not byte-identical")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, bf16) in X.variants().items():
            src = os.path.join(tmp, name)
            model.write(src, bf16)
            for fmt, s4 in TARGETS:
                run_pair(tmp, name, model, src, fmt, s4)
            print("ok", name)
        round_trips(tmp)
    check(pairs["converted"] > 100 and pairs["refused"] > 20, f"pairs exercised: {pairs}")
    print(f"crosscheck ok: {count()} checks passed ({pairs['converted']} pairs converted, "
          f"{pairs['refused']} refused with their reason)")


if __name__ == "__main__":
    main()
