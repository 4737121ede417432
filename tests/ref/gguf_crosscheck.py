#!/usr/bin/env python3
"""Cross-check modelprep's GGUF reader, dequantization and writer against upstream gguf-py
(PyPI `gguf`).

1. gguf-py's GGUFWriter writes files holding tensors of every type gguf.quants.quantize
   supports (quantized from awkward data: a zero row, a constant row, huge and tiny values),
   and of every type modelprep dequantizes, as random blocks with finite fp16 scales. The
   plain types (F32, F16, BF16, F64, I8..I64) come from numpy.
2. modelprep reads them (tests/gen/ggufdeq: the formats/ reader plus mp_gguf_dequantize; and
   ggufdeq-baseline, the same without the AVX2 clones) and its f32 must equal
   gguf.quants.dequantize bit for bit (numpy's astype for the integer
   types and F64, which gguf-py keeps raw). `modelprep inspect --json` must report each
   tensor's type, shape and bytes as gguf.GGUFReader does.
3. `modelprep convert --to f32` of such a file gives the same bits (unknown architecture:
   names kept, no permutation); llama, mistral, qwen2 (with q/k/v biases), qwen3 and gemma3 models written
   the way convert_hf_to_gguf writes them (q/k rows and biases permuted for llama and mistral,
   norms + 1 for gemma3) convert back
   to the original Hugging Face tensors, names and config.json.
4. Files modelprep writes (tests/gen/ggufcopy: alignment 32, 64 and 1, and a split set) are
   read by gguf.GGUFReader with equal metadata and tensor bytes, with gguf-split's key types.
5. `modelprep hash` prints llama-gguf-hash's lines, checked with an XXH64 written here from
   its specification.

Run by `make test` (tests/unit/test_cli.c) with MP_BIN, MP_TOOLS and MP_SRC set.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize, dequantize
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import BIN, TOOLS, check, summary  # noqa: E402

QUANTIZABLE = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.TQ1_0,
               T.TQ2_0, T.MXFP4]
# Byte offsets of the fp16 scale fields of each block type (doc/formats/gguf.md §5): random
# blocks keep those finite, as a real file has them.
SCALES = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
    T.TQ1_0: [52], T.TQ2_0: [64], T.MXFP4: [], T.IQ4_NL: [0], T.IQ4_XS: [0],
}


def run(*args):
    return subprocess.run([str(a) for a in args], capture_output=True)


def awkward(rng, rows, cols):
    a = rng.standard_normal((rows, cols)).astype(np.float32)
    a[0] = 0.0
    if rows > 1:
        a[1] = 0.75
    if rows > 2:
        a[2] *= 1e4
    if rows > 3:
        a[3] *= 1e-5
    return a


def random_blocks(rng, qtype, rows, cols):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    nb = rows * cols // block
    raw = rng.integers(0, 256, (nb, size), dtype=np.uint8)
    for off in SCALES[qtype]:
        d = (rng.standard_normal(nb) * rng.choice([1e-3, 0.1, 3.0], nb)).astype(np.float16)
        d[::7] = np.float16(-0.0)
        d[1::11] = np.float16(6.1e-5)  # around the smallest normal
        d[2::13] = np.float16(3e-7)    # a subnormal scale
        raw[:, off:off + 2] = d.view(np.uint8).reshape(nb, 2)
    if qtype == T.MXFP4:
        # The e8m0 scale byte: 255 is an infinite scale and 254 times the largest code (6)
        # overflows f32; modelprep refuses both (doc/limits.md), so random blocks stay below.
        raw[:, 0] = rng.integers(0, 254, nb, dtype=np.uint8)
    return raw.reshape(rows, cols // block * size)


def write_file(path, tensors, arch="modelprep-test"):
    w = gguf.GGUFWriter(path, arch)
    w.add_uint32("test.u32", 7)
    w.add_string("test.name", "cross-check")
    w.add_array("test.list", [1, 2, 3])
    for name, (arr, qtype) in tensors.items():
        if qtype is None:
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, arr, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def build(rng):
    t = {}
    for q in QUANTIZABLE:
        block, _ = gguf.GGML_QUANT_SIZES[q]
        cols = max(block, 256) * 2
        data = awkward(rng, 5, cols)
        if q == T.F32:
            t["q.f32"] = (data, None)
        elif q == T.F16:
            t["q.f16"] = (data.astype(np.float16), None)
        else:
            t["q." + q.name.lower()] = (quantize(data, q), q)
    for q in SCALES:
        block, _ = gguf.GGML_QUANT_SIZES[q]
        cols = max(block, 256) * 3
        t["r." + q.name.lower()] = (random_blocks(rng, q, 4, cols), q)
    # Raw BF16 patterns (gguf-py dequantizes by shifting; every bit pattern but NaNs).
    bf = rng.integers(0, 1 << 16, (3, 64), dtype=np.uint16)
    bf[(bf & 0x7F80) == 0x7F80] = 0x3F80
    t["r.bf16"] = (bf.view(np.uint8), T.BF16)
    # Every finite fp16 bit pattern, subnormals and zeros included.
    h = np.arange(1 << 16, dtype=np.uint16)
    h = h[(h & 0x7C00) != 0x7C00]
    t["r.f16"] = (h.view(np.float16).reshape(1, -1), None)
    t["p.f64"] = (rng.standard_normal((2, 33)) * 1e30, None)
    t["p.i8"] = (rng.integers(-128, 128, (3, 7), dtype=np.int8), None)
    t["p.i16"] = (rng.integers(-32768, 32768, (3, 7), dtype=np.int16), None)
    t["p.i32"] = (rng.integers(-(1 << 31), 1 << 31, (3, 7), dtype=np.int32), None)
    t["p.i64"] = (rng.integers(-(1 << 62), 1 << 62, (3, 7), dtype=np.int64), None)
    return t


def expected_f32(rt):
    if rt.tensor_type in (T.F64, T.I8, T.I16, T.I32, T.I64):
        return np.asarray(rt.data).astype(np.float32)
    return dequantize(np.asarray(rt.data), rt.tensor_type)


def compare_dequant(tmp, path, reader, tool):
    out = os.path.join(tmp, "all.f32")
    r = run(os.path.join(TOOLS, tool), path, out)
    check(r.returncode == 0, f"{tool}: exit {r.returncode}: {r.stderr.decode()}")
    got = np.fromfile(out, dtype="<f4")
    at = 0
    for rt in reader.tensors:
        want = expected_f32(rt).reshape(-1)
        mine = got[at:at + want.size]
        at += want.size
        same = np.array_equal(want.view(np.uint32), mine.view(np.uint32))
        if not same:
            bad = np.nonzero(want.view(np.uint32) != mine.view(np.uint32))[0]
            i = bad[0]
            check(False, f"{tool}: {rt.name} ({rt.tensor_type.name}): {bad.size} elements differ, "
                         f"first at {i}: modelprep {mine[i]!r} vs gguf-py {want[i]!r}")
        check(same, f"{tool}: {rt.name}")
    check(at == got.size, f"{tool} wrote as many floats as the tensors hold")


def modelprep_to_upstream_dequant(tmp):
    rng = np.random.default_rng(5)
    path = os.path.join(tmp, "all-types.gguf")
    write_file(path, build(rng))
    reader = gguf.GGUFReader(path)
    for tool in ("ggufdeq", "ggufdeq-baseline"):  # with the AVX2 clones, and without
        compare_dequant(tmp, path, reader, tool)

    inspect = run(BIN, "inspect", path, "--json")
    check(inspect.returncode == 0, f"inspect: {inspect.stderr.decode()}")
    doc = json.loads(inspect.stdout)
    by_name = {t["name"]: t for t in doc["tensors"]}
    for rt in reader.tensors:
        t = by_name.get(rt.name)
        check(t is not None, f"inspect lists {rt.name}")
        check(t["type"] == rt.tensor_type.name, f"{rt.name}: type {t['type']}")
        check(t["shape"] == [int(x) for x in rt.shape], f"{rt.name}: shape {t['shape']} vs {list(rt.shape)}")
        check(t["bytes"] == int(rt.n_bytes), f"{rt.name}: bytes")
        check(t["offset"] == int(rt.data_offset), f"{rt.name}: offset")
    meta = doc["metadata"]
    check(meta["test.u32"]["value"] == 7 and meta["test.name"]["value"] == "cross-check",
          "scalar metadata as written")
    check(meta["test.list"]["value"] == [1, 2, 3], "array metadata as written")
    return path, reader


def convert_to_f32(tmp, path, reader):
    dst = os.path.join(tmp, "hf")
    r = run(BIN, "convert", path, dst, "--to", "f32", "--json")
    check(r.returncode == 0, f"convert --to f32: exit {r.returncode}: {r.stderr.decode()}")
    summary = json.loads(r.stdout)
    check(summary["source"] == "gguf" and summary["architecture"] == "modelprep-test"
          and summary["names_mapped"] is False and summary["weight_files"] == 1, f"--json summary {summary}")
    check(b"keeps its GGUF tensor names" in r.stderr, f"unmapped architecture is reported: {r.stderr!r}")
    tensors = load_file(os.path.join(dst, "model.safetensors"))
    for rt in reader.tensors:
        want = expected_f32(rt).reshape([int(x) for x in reversed(rt.shape)])
        mine = tensors.get(rt.name)
        check(mine is not None, f"convert wrote {rt.name}")
        check(mine.shape == want.shape, f"{rt.name}: HF shape {mine.shape} vs {want.shape}")
        check(np.array_equal(mine.view(np.uint32), want.view(np.uint32)), f"{rt.name}: convert bits")


def permute(w, n_head):
    """convert_hf_to_gguf's LlamaModel.permute: per head, the two rotary halves interleaved."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


LAYER = {  # HF suffix -> GGUF suffix, per family (research: convert_hf_to_gguf tensor map)
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
}
EXTRA = {
    "llama": {"post_attention_layernorm": "ffn_norm"},
    "mistral": {"post_attention_layernorm": "ffn_norm"},
    "qwen2": {"post_attention_layernorm": "ffn_norm"},
    "qwen3": {"post_attention_layernorm": "ffn_norm", "self_attn.q_norm": "attn_q_norm",
              "self_attn.k_norm": "attn_k_norm"},
    "gemma3": {"post_attention_layernorm": "post_attention_norm", "pre_feedforward_layernorm": "ffn_norm",
               "post_feedforward_layernorm": "post_ffw_norm", "self_attn.q_norm": "attn_q_norm",
               "self_attn.k_norm": "attn_k_norm"},
}


def hf_to_gguf_model(tmp, arch, tied):
    """A small HF-shaped model written the way convert_hf_to_gguf writes it."""
    rng = np.random.default_rng(11)
    hidden, inter, n_head, n_kv, hd, vocab, layers = 64, 96, 4, 2, 16, 40, 2
    hf = {"model.embed_tokens.weight": rng.standard_normal((vocab, hidden)).astype(np.float32),
          "model.norm.weight": rng.standard_normal(hidden).astype(np.float32)}
    if not tied:
        hf["lm_head.weight"] = rng.standard_normal((vocab, hidden)).astype(np.float32)
    shapes = {"self_attn.q_proj": (n_head * hd, hidden), "self_attn.k_proj": (n_kv * hd, hidden),
              "self_attn.v_proj": (n_kv * hd, hidden), "self_attn.o_proj": (hidden, n_head * hd),
              "mlp.gate_proj": (inter, hidden), "mlp.up_proj": (inter, hidden),
              "mlp.down_proj": (hidden, inter), "input_layernorm": (hidden,),
              "post_attention_layernorm": (hidden,), "pre_feedforward_layernorm": (hidden,),
              "post_feedforward_layernorm": (hidden,), "self_attn.q_norm": (hd,), "self_attn.k_norm": (hd,)}
    names = dict(LAYER, **EXTRA[arch])
    permuted = arch in ("llama", "mistral")
    for i in range(layers):
        for suffix in names:
            hf[f"model.layers.{i}.{suffix}.weight"] = rng.standard_normal(shapes[suffix]).astype(np.float32)
        if arch in ("qwen2", "llama"):  # qwen2's q/k/v biases; llama's attention_bias variant
            for suffix in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                hf[f"model.layers.{i}.{suffix}.bias"] = rng.standard_normal(shapes[suffix][0]).astype(np.float32)
    w = gguf.GGUFWriter(os.path.join(tmp, f"{arch}.gguf"), arch)
    w.add_block_count(layers)
    w.add_uint32(f"{arch}.embedding_length", hidden)
    w.add_uint32(f"{arch}.feed_forward_length", inter)
    w.add_uint32(f"{arch}.attention.head_count", n_head)
    w.add_uint32(f"{arch}.attention.head_count_kv", n_kv)
    w.add_uint32(f"{arch}.context_length", 2048)
    w.add_float32(f"{arch}.rope.freq_base", 1000000.0)
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-6)
    for name, arr in hf.items():
        g = arr
        if permuted and (name.endswith("q_proj.weight") or name.endswith("q_proj.bias")):
            g = permute(arr, n_head)
        if permuted and (name.endswith("k_proj.weight") or name.endswith("k_proj.bias")):
            g = permute(arr, n_kv)
        if arch == "gemma3" and name.endswith("norm.weight"):
            g = arr + np.float32(1)
        gname = name.replace("model.embed_tokens", "token_embd").replace("model.norm", "output_norm")
        gname = gname.replace("lm_head", "output")
        if gname.startswith("model.layers."):
            _, _, i, rest = gname.split(".", 3)
            suffix, kind = rest.rsplit(".", 1)
            gname = f"blk.{i}.{names[suffix]}.{kind}"
        if g.ndim == 2 and "ffn_up" in gname:  # one quantized tensor: bits must still match
            w.add_tensor(gname, quantize(g, T.Q8_0), raw_dtype=T.Q8_0)
            hf[name] = dequantize(quantize(g, T.Q8_0), T.Q8_0).reshape(g.shape)
        else:
            w.add_tensor(gname, g)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return os.path.join(tmp, f"{arch}.gguf"), hf


def names_permutation_and_config(tmp):
    for arch, tied in (("llama", False), ("mistral", False), ("qwen2", True), ("qwen3", True),
                       ("gemma3", True)):
        path, hf = hf_to_gguf_model(tmp, arch, tied)
        dst = os.path.join(tmp, arch + "-hf")
        r = run(BIN, "convert", path, dst, "--to", "f32", "--max-shard-size", "20KB")
        check(r.returncode == 0, f"{arch}: convert: {r.stderr.decode()}")
        check(r.stderr == b"", f"{arch}: every tensor mapped: {r.stderr.decode()}")
        index = json.load(open(os.path.join(dst, "model.safetensors.index.json")))
        got = {}
        for f in sorted(set(index["weight_map"].values())):
            got.update(load_file(os.path.join(dst, f)))
        if arch == "llama":  # transformers' Llama biases q, k, v and o together: o's is written as 0
            hf = dict(hf, **{f"model.layers.{i}.self_attn.o_proj.bias": np.zeros(64, np.float32) for i in range(2)})
        check(sorted(got) == sorted(hf), f"{arch}: names {sorted(set(got) ^ set(hf))}")
        for name, want in hf.items():
            mine = got[name]
            if arch == "gemma3" and name.endswith("norm.weight"):
                want = (want + np.float32(1)) - np.float32(1)
            check(mine.shape == want.shape and np.array_equal(mine, want), f"{arch}: {name} equals the HF tensor")
        cfg = json.load(open(os.path.join(dst, "config.json")))
        want_cfg = {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
                    "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 40,
                    "max_position_embeddings": 2048, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
                    "tie_word_embeddings": tied, "torch_dtype": "float32"}
        for k, v in want_cfg.items():
            check(cfg.get(k) == v, f"{arch}: config.json {k} = {cfg.get(k)!r}, want {v!r}")
        check(cfg.get("attention_bias", False) == (arch in ("qwen2", "llama")),
              f"{arch}: attention_bias {cfg.get('attention_bias')!r}: the q/k/v biases need it")
        check("mlp_bias" not in cfg, f"{arch}: mlp_bias without ffn biases")
        check(cfg["architectures"] == [{"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
                                        "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM",
                                        "gemma3": "Gemma3ForCausalLM"}[arch]], f"{arch}: architectures")
        man = json.load(open(os.path.join(dst, "modelprep.json")))
        want_perm = {"llama": 8, "mistral": 4}.get(arch, 0)  # q and k of 2 layers, biases too
        check(man["layout"]["qk_unpermuted"] == want_perm, f"{arch}: manifest says {want_perm} un-permuted")


def fields(reader):
    skip = ("GGUF.", "split.", "general.alignment")
    return {k: (f.types, f.contents()) for k, f in reader.fields.items() if not k.startswith(skip)}


def same_tensors(a, b, what):
    check([t.name for t in a] == [t.name for t in b], f"{what}: tensor names and order")
    for x, y in zip(a, b):
        check(x.tensor_type == y.tensor_type and list(x.shape) == list(y.shape), f"{what}: {x.name} type/shape")
        check(bytes(np.asarray(x.data).tobytes()) == bytes(np.asarray(y.data).tobytes()), f"{what}: {x.name} bytes")


def writer_to_upstream(tmp, path, reader):
    """3. Files modelprep writes: gguf-py reads the same metadata and bytes."""
    tool = os.path.join(TOOLS, "ggufcopy")
    for align in (32, 64, 1):
        out = os.path.join(tmp, f"copy-{align}.gguf")
        r = run(tool, path, out, "--alignment", align)
        check(r.returncode == 0, f"ggufcopy --alignment {align}: {r.stderr.decode()}")
        back = gguf.GGUFReader(out)
        check(back.alignment == align, f"alignment {align} honoured: reader says {back.alignment}")
        check(all(t.data_offset % align == 0 for t in back.tensors), f"alignment {align}: offsets aligned")
        check(os.path.getsize(out) % align == 0, f"alignment {align}: padding after the last tensor")
        check(fields(back) == fields(reader), f"alignment {align}: metadata equal")
        same_tensors(reader.tensors, back.tensors, f"alignment {align}")
        r = run(BIN, "inspect", out)
        check(r.returncode == 0, f"modelprep reads its own file: {r.stderr.decode()}")
    outdir = os.path.join(tmp, "split")
    os.mkdir(outdir)
    r = run(tool, path, os.path.join(outdir, "model.gguf"), "--split-max-tensors", 7)
    check(r.returncode == 0, f"ggufcopy split: {r.stderr.decode()}")
    parts = sorted(os.listdir(outdir))
    n = (len(reader.tensors) + 6) // 7
    check(parts == [f"model-{i:05d}-of-{n:05d}.gguf" for i in range(1, n + 1)], f"split names {parts}")
    tensors = []
    for i, name in enumerate(parts):
        part = gguf.GGUFReader(os.path.join(outdir, name))
        check(part.fields["split.no"].contents() == i and part.fields["split.no"].types == [gguf.GGUFValueType.UINT16],
              f"{name}: split.no u16 {i}")
        check(part.fields["split.count"].contents() == n and part.fields["split.count"].types == [gguf.GGUFValueType.UINT16],
              f"{name}: split.count u16")
        check(part.fields["split.tensors.count"].contents() == len(reader.tensors)
              and part.fields["split.tensors.count"].types == [gguf.GGUFValueType.INT32], f"{name}: split.tensors.count i32")
        check(("test.name" in part.fields) == (i == 0), f"{name}: metadata in the first split only")
        tensors += part.tensors
    same_tensors(reader.tensors, tensors, "split set")
    a = run(os.path.join(TOOLS, "ggufdeq"), path, os.path.join(tmp, "a.f32"))
    b = run(os.path.join(TOOLS, "ggufdeq"), outdir, os.path.join(tmp, "b.f32"))
    check(a.returncode == 0 and b.returncode == 0, f"ggufdeq of the split set: {b.stderr.decode()}")
    check(open(os.path.join(tmp, "a.f32"), "rb").read() == open(os.path.join(tmp, "b.f32"), "rb").read(),
          "the split set dequantizes as the original")
    return outdir


M64 = (1 << 64) - 1
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)


def xxh64(data, seed=0):
    """XXH64 from its specification, independent of the C library modelprep links."""
    def rotl(x, r):
        return ((x << r) | (x >> (64 - r))) & M64

    def rnd(acc, lane):
        return (rotl((acc + lane * P2) & M64, 31) * P1) & M64

    n, i = len(data), 0
    if n >= 32:
        v = [(seed + P1 + P2) & M64, (seed + P2) & M64, seed, (seed - P1) & M64]
        while i + 32 <= n:
            for k in range(4):
                v[k] = rnd(v[k], int.from_bytes(data[i + 8 * k:i + 8 * k + 8], "little"))
            i += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M64
        for k in range(4):
            h = ((h ^ rnd(0, v[k])) * P1 + P4) & M64
    else:
        h = (seed + P5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        h = (rotl(h ^ rnd(0, int.from_bytes(data[i:i + 8], "little")), 27) * P1 + P4) & M64
        i += 8
    if i + 4 <= n:
        h = (rotl(h ^ ((int.from_bytes(data[i:i + 4], "little") * P1) & M64), 23) * P2 + P3) & M64
        i += 4
    while i < n:
        h = (rotl(h ^ ((data[i] * P5) & M64), 11) * P1) & M64
        i += 1
    h = ((h ^ (h >> 33)) * P2) & M64
    h = ((h ^ (h >> 29)) * P3) & M64
    return h ^ (h >> 32)


def hash_lines(tmp, path, reader, split_dir):
    check(xxh64(b"") == 0xEF46DB3751D8E999 and xxh64(b"a") == 0xD24EC4F1A98C6E5B, "xxh64 known answers")
    r = run(BIN, "hash", path)
    check(r.returncode == 0, f"hash: {r.stderr.decode()}")
    lines = r.stdout.decode().splitlines()
    blobs = [bytes(np.asarray(t.data).tobytes()) for t in reader.tensors]
    want = [f"xxh64     {xxh64(b):016x}  {path}:{t.name}" for b, t in zip(blobs, reader.tensors)]
    want.append(f"xxh64     {xxh64(b''.join(blobs)):016x}  {path}")
    check(lines == want, "hash prints llama-gguf-hash's lines:\n" + "\n".join(lines[:3]) + "\nwant\n" + "\n".join(want[:3]))
    r = run(BIN, "hash", split_dir)
    check(r.returncode == 0 and r.stdout.decode().splitlines()[-1] == f"xxh64     {xxh64(b''.join(blobs)):016x}  {split_dir}",
          "a split set hashes to the same whole-model xxh64")
    doc = json.loads(run(BIN, "hash", path, "--json").stdout)
    check(doc["model_xxh64"] == f"{xxh64(b''.join(blobs)):016x}", "hash --json model_xxh64")


if __name__ == "__main__":  # tests/ref/gguf_hf_transformers.py imports hf_to_gguf_model
    with tempfile.TemporaryDirectory() as tmp:
        path, reader = modelprep_to_upstream_dequant(tmp)
        convert_to_f32(tmp, path, reader)
        names_permutation_and_config(tmp)
        split_dir = writer_to_upstream(tmp, path, reader)
        hash_lines(tmp, path, reader, split_dir)
    summary("gguf crosscheck")
