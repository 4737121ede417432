#!/usr/bin/env python3
"""dsv4gen.py DIR [--variant flash|base|base-implied|v41] [--nan] [--break RULE] - a tiny DeepSeek-V4 FP4/FP8 hybrid
checkpoint (doc/formats/deepseek-v4.md), with the Python standard library only (the CLI tests
have no numpy).

One layer under DeepSeek's bare names, H = 160 (a ragged 128-block grid: [.., 2]):
  - FP8 linears `layers.0.attn.{wq_a,wq_b,wo_b}` and `layers.0.ffn.shared_experts.w1`: F8_E4M3
    [N, K] with `.scale` F8_E8M0 (flash, v41) or F32 (base) on the [ceil(N/128), ceil(K/128)] grid;
  - routed experts `layers.0.ffn.experts.{0,1}.w{1,2,3}`: I8 [N, K/2] with F8_E8M0 [N, K/32] (flash,
    v41), or F8_E4M3 with F32 block scales (base);
  - BF16 tensors that stay so: `embed.weight`, `head.weight`, `norm.weight`, the router
    `layers.0.ffn.gate.weight`, the indexer's `layers.0.attn.indexer.weights_proj.weight`; F32
    `hc_head_fn`, `layers.0.hc_attn_fn` (copied as they are).
flash states expert_dtype "fp4" at the top level of config.json (V4), v41 inside
quantization_config (V4.1), base "fp8"; base-implied is base with no expert_dtype at all (the
model_type alone makes it V4, with transformers' default fp8). The E8M0 scales include 0x00 (2^-127); --nan makes one
block scale of each FP4 expert 0xFF (NaN: the block dequantizes to NaN, and verify's gemm fails).

--break makes one rule fail, for the refusal tests:
  scale-grid      `layers.0.attn.wq_a.scale` one block column short
  expert-k        `layers.0.ffn.experts.1.w2.weight` I8 [160, 48]: K/2 = 48 does not fit the
                  scale's [160, 2] (K = 64)
  missing-scale   `layers.0.ffn.experts.0.w3.scale` left out
  expert-dtype    expert_dtype "fp6"
"""
import json
import os
import struct
import sys

H, I, V = 160, 64, 32
seed = [20261202]
NAN = [False]


def rnd(n):
    """n pseudo-random bytes (an LCG: the same bytes on every machine)."""
    out = bytearray(n)
    s = seed[0]
    for i in range(n):
        s = (s * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = (s >> 16) & 0xFF
    seed[0] = s
    return out


def fp8_codes(n, k):
    b = rnd(n * k)
    return bytes(0x3C if (c & 0x7F) == 0x7F else c for c in b)  # no NaN codes


def e8m0(n, lo=112, span=16):
    b = bytes(lo + c % span for c in rnd(n))
    return b


def f32(vals):
    return struct.pack(f"<{len(vals)}f", *vals)


def bf16(vals):
    return b"".join(struct.pack("<f", v)[2:] for v in vals)


def small(n, scale):
    return [((c - 128) / 128.0) * scale for c in rnd(n)]


def ceil128(x):
    return (x + 127) // 128


def write(path, tensors):
    header, blobs, off = {}, [], 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def fp8_linear(t, name, n, k, base):
    t[name + ".weight"] = ("F8_E4M3", [n, k], fp8_codes(n, k))
    g = ceil128(n) * ceil128(k)
    if base:
        t[name + ".scale"] = ("F32", [ceil128(n), ceil128(k)], f32([2.0 ** -8 * (1 + i / 8) for i in range(g)]))
    else:
        s = bytearray(e8m0(g))
        s[0] = 0x00  # 2^-127
        t[name + ".scale"] = ("F8_E8M0", [ceil128(n), ceil128(k)], bytes(s))


def fp4_linear(t, name, n, k):
    t[name + ".weight"] = ("I8", [n, k // 2], bytes(rnd(n * k // 2)))
    s = bytearray(e8m0(n * k // 32, 118, 8))
    if NAN[0]:
        s[1] = 0xFF  # NaN: every element of the block is NaN
    t[name + ".scale"] = ("F8_E8M0", [n, k // 32], bytes(s))


def tensors(variant):
    base = variant in ("base", "base-implied")
    t = {"embed.weight": ("BF16", [V, H], bf16(small(V * H, 0.5))),
         "head.weight": ("BF16", [V, H], bf16(small(V * H, 0.5))),
         "norm.weight": ("BF16", [H], bf16([1.0] * H)),
         "hc_head_fn": ("F32", [2, 2 * H], f32(small(4 * H, 0.1)))}
    p = "layers.0."
    t[p + "attn_norm.weight"] = ("BF16", [H], bf16([1.0] * H))
    t[p + "hc_attn_fn"] = ("F32", [8, 2 * H], f32(small(16 * H, 0.1)))
    fp8_linear(t, p + "attn.wq_a", 48, H, base)
    fp8_linear(t, p + "attn.wq_b", H, 48, base)
    fp8_linear(t, p + "attn.wo_b", H, 2 * I, base)
    t[p + "attn.indexer.weights_proj.weight"] = ("BF16", [2, H], bf16(small(2 * H, 0.5)))
    t[p + "ffn.gate.weight"] = ("BF16", [2, H], bf16(small(2 * H, 0.5)))
    fp8_linear(t, p + "ffn.shared_experts.w1", I, H, base)
    for e in range(2):
        for w, (n, k) in (("w1", (I, H)), ("w3", (I, H)), ("w2", (H, I))):
            name = f"{p}ffn.experts.{e}.{w}"
            if base:
                fp8_linear(t, name, n, k, True)
            else:
                fp4_linear(t, name, n, k)
    return t


def config(variant):
    qc = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
          "weight_block_size": [128, 128]}
    c = {"architectures": ["DeepseekV4ForCausalLM"], "model_type": "deepseek_v4", "torch_dtype": "bfloat16",
         "hidden_size": H, "vocab_size": V, "num_hidden_layers": 1, "quantization_config": qc}
    if variant == "base":
        c["expert_dtype"] = "fp8"
    elif variant == "base-implied":
        pass
    else:
        qc["scale_fmt"] = "ue8m0"
        if variant == "v41":
            qc["expert_dtype"] = "fp4"
        else:
            c["expert_dtype"] = "fp4"
    return c


def main(argv):
    d, variant, brk = argv[0], "flash", None
    i = 1
    while i < len(argv):
        if argv[i] == "--nan":
            NAN[0] = True
            i += 1
            continue
        if argv[i] == "--variant":
            variant = argv[i + 1]
        elif argv[i] == "--break":
            brk = argv[i + 1]
        else:
            sys.exit(f"dsv4gen: unknown argument {argv[i]}")
        i += 2
    t, c = tensors(variant), config(variant)
    if brk == "scale-grid":
        dt, shape, data = t["layers.0.attn.wq_a.scale"]
        t["layers.0.attn.wq_a.scale"] = (dt, [shape[0], shape[1] - 1], data[:len(data) // 2])
    elif brk == "expert-k":
        t["layers.0.ffn.experts.1.w2.weight"] = ("I8", [H, 48], bytes(rnd(H * 48)))
    elif brk == "missing-scale":
        del t["layers.0.ffn.experts.0.w3.scale"]
    elif brk == "expert-dtype":
        c["expert_dtype"] = "fp6"
    elif brk:
        sys.exit(f"dsv4gen: unknown rule {brk}")
    os.makedirs(d, exist_ok=True)
    write(os.path.join(d, "model.safetensors"), t)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
