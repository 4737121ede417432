#!/usr/bin/env python3
"""bnbgen.py DIR nf4|fp4|int8 [--nested] [--corrupt-blob]: a small bitsandbytes checkpoint written
byte by byte with the standard library only (for the CLI tests, which have no numpy), laid out as
Linear4bit / Linear8bitLt save it (doc/formats/bitsandbytes.md §2, §4): two quantized linears,
one of 48 x 40 (blocks straddle rows, a ragged last block), a bf16 lm_head left dense by
llm_int8_skip_modules, and a config.json. Values come from a fixed LCG.
"""
import json
import os
import struct
import sys

NF4 = "BF800000 BF3239B1 BF066B30 BECA32A0 BE91A24D BE3D353F BDBA7871 00000000 " \
      "3DA2FAFF 3E24CAE3 3E7C04DD 3EAD033A 3EE1A4B8 3F1007AB 3F3913B3 3F800000"
FP4 = "00000000 3BAAAAAB 3F2AAAAB 3F800000 3EAAAAAB 3F000000 3E2AAAAB 3E800000 " \
      "00000000 BBAAAAAB BF2AAAAB BF800000 BEAAAAAB BF000000 BE2AAAAB BE800000"
state = [12345]


def rnd():
    state[0] = (state[0] * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    return state[0] >> 33


def f32s(values):
    return b"".join(struct.pack("<f", v) for v in values)


def bits(table):
    return b"".join(struct.pack("<I", int(h, 16)) for h in table.split())


def linear4(t, p, n, k, kind, nested, corrupt):
    bs, cnt = 64, n * k
    nb = (cnt + bs - 1) // bs
    t[p + ".weight"] = ("U8", [(cnt + 1) // 2, 1], bytes(rnd() & 255 for _ in range((cnt + 1) // 2)))
    t[p + ".weight.quant_map"] = ("F32", [16], bits(NF4 if kind == "nf4" else FP4))
    blob = {"quant_type": kind, "blocksize": bs, "dtype": "bfloat16", "shape": [n, k]}
    if nested:
        t[p + ".weight.absmax"] = ("U8", [nb], bytes(rnd() & 255 for _ in range(nb)))
        t[p + ".weight.nested_absmax"] = ("F32", [(nb + 255) // 256], f32s([0.0625] * ((nb + 255) // 256)))
        t[p + ".weight.nested_quant_map"] = ("F32", [256], f32s([(i - 127.5) / 128 for i in range(256)]))
        blob.update(nested_blocksize=256, nested_dtype="float32", nested_offset=0.03125)
    else:
        t[p + ".weight.absmax"] = ("F32", [nb], f32s([(rnd() % 1000 + 1) / 16384 for _ in range(nb)]))
    text = json.dumps(blob).encode()
    t[p + ".weight.quant_state.bitsandbytes__" + kind] = ("U8", [len(text) - corrupt], text[:len(text) - corrupt])


def linear8(t, p, n, k):
    t[p + ".weight"] = ("I8", [n, k], bytes(rnd() & 255 for _ in range(n * k)))
    t[p + ".SCB"] = ("F32", [n], f32s([(rnd() % 1000 + 1) / 256 for _ in range(n)]))
    t[p + ".weight_format"] = ("U8", [], b"\0")


def save(path, t):
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name in sorted(t):
        dtype, shape, raw = t[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def main():
    d, kind = sys.argv[1], sys.argv[2]
    nested, corrupt = "--nested" in sys.argv, 5 if "--corrupt-blob" in sys.argv else 0
    os.makedirs(d)
    t = {"lm_head.weight": ("BF16", [32, 64], bytes(rnd() & 127 for _ in range(32 * 64 * 2)))}
    for p, n, k in (("model.layers.0.self_attn.q_proj", 64, 64), ("model.layers.0.mlp.down_proj", 48, 40)):
        if kind == "int8":
            linear8(t, p, n, k)
        else:
            linear4(t, p, n, k, kind, nested, corrupt)
    save(os.path.join(d, "model.safetensors"), t)
    q = {"quant_method": "bitsandbytes", "load_in_4bit": kind != "int8", "load_in_8bit": kind == "int8",
         "bnb_4bit_quant_type": "nf4" if kind == "int8" else kind, "bnb_4bit_use_double_quant": nested,
         "llm_int8_skip_modules": ["lm_head"]}
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "bfloat16",
           "quantization_config": q}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)


main()
