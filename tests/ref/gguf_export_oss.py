#!/usr/bin/env python3
"""`modelprep convert GPTOSS OUT.gguf --to gguf[:...]` for gpt-oss (MXFP4 experts), checked against
upstream references; the sibling of gguf_export_check.py, whose helpers it reuses.

A tiny gpt-oss checkpoint is written here with numpy, as transformers' GptOssForCausalLM saves one
with Mxfp4Config (2 layers, 4 experts, 2 used, head_dim 16 with 8 heads over a hidden size of 64,
q/k/v/o biases, attention sinks, a router with its bias, experts `*_blocks` [E, N, K/32, 16] /
`*_scales` [E, N, K/32] / `*_bias` [E, N], yarn rope as gpt-oss ships it, a sliding window of 4 on
every other layer), with a byte-level BPE tokenizer.json using the o200k regex (pre "gpt-4o",
tests/gen/mktokenizer.py) and its chat template in chat_template.jinja. Then, with PyPI's gguf
(gguf-py):
  1. the metadata llama.cpp's gpt-oss loader reads, with its types (counts UINT32, floats
     FLOAT32), general.file_type 38 (MOSTLY_MXFP4_MOE), tokenizer.ggml.pre "gpt-4o", the chat
     template from chat_template.jinja;
  2. every tensor's name, shape (ne) and type; the experts MXFP4 (39), their bytes equal to the
     source's blocks moved as the repack says (E8M0 byte first, byte j = code j | code j+16 << 4,
     gate rows ::2, up rows 1::2), gguf-py's dequantization equal to transformers' (ldexp of the
     E2M1 value) with -0 and +0 equal, and differing in bits only there (code 8);
  3. --to gguf:f32 (experts dequantized, bit for bit), gguf:q8_0 (bytes equal
     gguf.quants.quantize), the manifest against `modelprep hash`;
  4. E8M0 scales 0, 254 and 255 move across with equal values (ggml's 2^(e-128) on doubled codes
     is transformers' ldexp there too);
  5. refusals, exit 4, one line: gate_up with an odd number of rows, a swiglu_limit llama.cpp does
     not apply, dense (un-quantized) experts, tied embeddings, layer_types other than llama.cpp's
     sliding/full alternation.
With --judge (run under build/llama-venv), llama.cpp loads the file, tokenizes a fixed text as the
`tokenizers` library does, and its logits on prompts of 8 tokens match a float64 numpy forward
pass of gpt-oss (Hugging Face semantics: sinks, sliding window, yarn, top-k softmax routing,
clamped SwiGLU with alpha 1.702 and up + 1) within TOL_GAP x the activation conversion's own
effect + TOL_FLOOR (gguf_export_check.py); llama.cpp must not also match the model without sinks
or without the sliding window.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_export_check as gx  # noqa: E402  (exits 77 itself when --judge lacks llama_cpp)
from gguf_export_check import GGUFReader, T, check, dequantize, gguf, np, quantize  # noqa: E402

JUDGE = gx.JUDGE
E, L, H, I_, NH, KV, D, V = 4, 2, 64, 96, 8, 2, 16, 320
WINDOW = 4
TEMPLATE = "{% for m in messages %}<|start|>{{ m['role'] }}<|message|>{{ m['content'] }}<|end|>{% endfor %}\n"
rng = np.random.default_rng(21)
FP4 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0], np.float32)
QCONF = {"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                                             "model.embed_tokens", "lm_head"]}
CONFIG = {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "hidden_size": H, "intermediate_size": I_,
          "num_hidden_layers": L, "num_attention_heads": NH, "num_key_value_heads": KV, "head_dim": D,
          "num_local_experts": E, "num_experts_per_tok": 2, "experts_per_token": 2, "vocab_size": V,
          "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 150000.0,
          # gpt-oss's rope_scaling, but for truncate: it ships false, and llama.cpp always truncates
          # (floor/ceil of the ramp ends, ggml_rope_yarn_corr_dims): the judge reports what false
          # would cost (doc/gguf-export.md "gpt-oss").
          "rope_scaling": {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                           "truncate": True, "original_max_position_embeddings": 4096},
          "sliding_window": WINDOW, "layer_types": ["sliding_attention", "full_attention"], "swiglu_limit": 7.0,
          "attention_bias": True, "tie_word_embeddings": False, "hidden_act": "silu", "torch_dtype": "bfloat16",
          "quantization_config": QCONF}


def bf16(a):
    """float32 values rounded to bf16 (nearest even), as uint16 bits."""
    u = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    return (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF).astype(np.uint16)


def save_st(path, tensors):
    """tensors: name -> (safetensors dtype, array)."""
    hdr, blobs, off = {}, [], 0
    for name, (dt, a) in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        hdr[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))


def mxfp4_values(blocks, scales):
    """transformers' dequantization: ldexp(E2M1 value, e - 127), element 2i in the low nibble;
    [..., N, K/32, 16] -> [..., N, K] float32 (exact)."""
    codes = np.stack([blocks & 15, blocks >> 4], -1).reshape(*blocks.shape[:-1], 32)
    with np.errstate(over="ignore"):  # E8M0 255: 2^128 times 1 or more is inf, as in transformers
        v = np.ldexp(FP4[codes], scales.astype(np.int32)[..., None] - 127)
    check(v.dtype == np.float32, "ldexp in float32")
    return v.reshape(*blocks.shape[:-2], -1)


def repacked(blocks, scales):
    """The GGUF bytes the note's repack gives: [.., N, K/32, 16] -> [.., N, K/32 * 17]."""
    c = np.stack([blocks & 15, blocks >> 4], -1).reshape(*blocks.shape[:-1], 32)
    qs = (c[..., :16] | (c[..., 16:] << 4)).astype(np.uint8)
    return np.concatenate([scales[..., None], qs], -1).reshape(*blocks.shape[:-2], -1)


def make(tmp, name, edit=None, cfg_edit=None):
    """A tiny gpt-oss MXFP4 checkpoint: returns (dir, tensors as saved, reference float32 values
    under Hugging Face names with the experts as [E, N, K])."""
    d = os.path.join(tmp, name)
    os.makedirs(d)
    st, ref = {}, {}

    def dense(n, shape, scale, offset=0.0):
        a = bf16(rng.standard_normal(shape).astype(np.float32) * np.float32(scale) + np.float32(offset))
        st[n] = ("BF16", a)
        ref[n] = (a.astype(np.uint32) << 16).view(np.float32)

    dense("model.embed_tokens.weight", (V, H), 1.0)
    dense("lm_head.weight", (V, H), 0.15)
    dense("model.norm.weight", (H,), 0.1, 1.0)
    for layer in range(L):
        p = f"model.layers.{layer}."
        for n in ("input_layernorm", "post_attention_layernorm"):
            dense(p + n + ".weight", (H,), 0.1, 1.0)
        for n, rows in (("q", NH * D), ("k", KV * D), ("v", KV * D)):
            dense(p + f"self_attn.{n}_proj.weight", (rows, H), 0.25)
            dense(p + f"self_attn.{n}_proj.bias", (rows,), 0.1)
        dense(p + "self_attn.o_proj.weight", (H, NH * D), 0.1)
        dense(p + "self_attn.o_proj.bias", (H,), 0.1)
        dense(p + "self_attn.sinks", (NH,), 1.0)
        dense(p + "mlp.router.weight", (E, H), 0.3)
        dense(p + "mlp.router.bias", (E,), 0.3)
        for proj, n, k in (("gate_up_proj", 2 * I_, H), ("down_proj", H, I_)):
            x = p + "mlp.experts." + proj
            blocks = rng.integers(0, 256, (E, n, k // 32, 16), dtype=np.uint8)
            scales = rng.integers(121, 125, (E, n, k // 32), dtype=np.uint8)
            st[x + "_blocks"], st[x + "_scales"] = ("U8", blocks), ("U8", scales)
            dense(x + "_bias", (E, n), 0.1)
    if edit:
        edit(st)
    for x in [k[:-len("_blocks")] for k in st if k.endswith("_blocks")]:
        ref[x] = mxfp4_values(st[x + "_blocks"][1], st[x + "_scales"][1])
    save_st(os.path.join(d, "model.safetensors"), st)
    cfg = json.loads(json.dumps(CONFIG))
    if cfg_edit:
        cfg_edit(cfg)
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    r = subprocess.run([sys.executable, gx.MKTOK, d, "gpt-4o"], capture_output=True, text=True)
    check(r.returncode == 0, f"mktokenizer {name}: {r.stderr}")
    tc = json.load(open(os.path.join(d, "tokenizer_config.json")))  # the template beside it, as gpt-oss has it
    del tc["chat_template"]
    json.dump(tc, open(os.path.join(d, "tokenizer_config.json"), "w"))
    open(os.path.join(d, "chat_template.jinja"), "w").write(TEMPLATE)
    return d, st, ref


# ---------------------------------------------------------------- gguf-py

U32, F32 = [gguf.GGUFValueType.UINT32], [gguf.GGUFValueType.FLOAT32]
KEYS = {"context_length": (U32, 131072), "embedding_length": (U32, H), "block_count": (U32, L),
        "feed_forward_length": (U32, I_), "attention.head_count": (U32, NH), "attention.head_count_kv": (U32, KV),
        "attention.key_length": (U32, D), "attention.value_length": (U32, D), "expert_count": (U32, E),
        "expert_used_count": (U32, 2), "expert_feed_forward_length": (U32, I_),
        "attention.sliding_window": (U32, WINDOW), "rope.freq_base": (F32, 150000.0),
        "attention.layer_norm_rms_epsilon": (F32, np.float32(1e-5)), "rope.scaling.factor": (F32, 32.0),
        "rope.scaling.original_context_length": (U32, 4096), "rope.scaling.yarn_beta_fast": (F32, 32.0),
        "rope.scaling.yarn_beta_slow": (F32, 1.0)}


def check_metadata(r, ftype, name):
    f = r.fields
    check(f["general.architecture"].contents() == "gpt-oss", f"{name}: architecture")
    for k, (types, want) in KEYS.items():
        key = "gpt-oss." + k
        check(key in f and f[key].types == types and f[key].contents() == want,
              f"{name}: {key} is {f[key].types if key in f else 'missing'} {f[key].contents() if key in f else ''}")
    check(f["gpt-oss.rope.scaling.type"].contents() == "yarn", f"{name}: rope.scaling.type")
    check(f["general.file_type"].contents() == ftype and f["general.file_type"].types == U32, f"{name}: file_type")
    check(f["tokenizer.ggml.pre"].contents() == "gpt-4o" and f["tokenizer.ggml.model"].contents() == "gpt2",
          f"{name}: tokenizer pre {f['tokenizer.ggml.pre'].contents()}")
    check(len(f["tokenizer.ggml.tokens"].contents()) == V, f"{name}: tokens")
    check(f["tokenizer.chat_template"].contents() == TEMPLATE, f"{name}: chat template from chat_template.jinja")


LAYER = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "post_attention_norm.weight",
         "self_attn.sinks": "attn_sinks.weight", "mlp.router.weight": "ffn_gate_inp.weight",
         "mlp.router.bias": "ffn_gate_inp.bias"}
for _n, _g in (("q", "attn_q"), ("k", "attn_k"), ("v", "attn_v"), ("o", "attn_output")):
    LAYER[f"self_attn.{_n}_proj.weight"], LAYER[f"self_attn.{_n}_proj.bias"] = _g + ".weight", _g + ".bias"


def expected(ref):
    """GGUF name -> float32 values, numpy shape (ne reversed); experts split and stacked."""
    out = {"token_embd.weight": ref["model.embed_tokens.weight"], "output.weight": ref["lm_head.weight"],
           "output_norm.weight": ref["model.norm.weight"]}
    for layer in range(L):
        p = f"model.layers.{layer}."
        for hf, g in LAYER.items():
            out[f"blk.{layer}.{g}"] = ref[p + hf]
        gu, gub = ref[p + "mlp.experts.gate_up_proj"], ref[p + "mlp.experts.gate_up_proj_bias"]
        b = f"blk.{layer}.ffn_"
        out[b + "gate_exps.weight"], out[b + "up_exps.weight"] = gu[:, ::2], gu[:, 1::2]
        out[b + "gate_exps.bias"], out[b + "up_exps.bias"] = gub[:, ::2], gub[:, 1::2]
        out[b + "down_exps.weight"] = ref[p + "mlp.experts.down_proj"]
        out[b + "down_exps.bias"] = ref[p + "mlp.experts.down_proj_bias"]
    return out


def want_type(g, to):
    if g.endswith(".bias") or ".attn_sinks." in g or "norm" in g or ".ffn_gate_inp." in g:
        return T.F32
    if "_exps." in g:
        return {"gguf": T.MXFP4, "gguf:f32": T.F32, "gguf:q8_0": T.Q8_0}[to]
    return {"gguf": T.BF16, "gguf:f32": T.F32, "gguf:q8_0": T.Q8_0}[to]


def check_tensors(r, st, ref, to, name):
    got = {t.name: t for t in r.tensors}
    want = expected(ref)
    check(set(got) == set(want), f"{name}: tensors {sorted(set(got) ^ set(want))}")
    for g, a in want.items():
        t = got[g]
        check(list(t.shape[::-1]) == list(a.shape), f"{name}: {g} ne {list(t.shape)} vs {list(a.shape[::-1])}")
        check(t.tensor_type == want_type(g, to), f"{name}: {g} is {t.tensor_type.name}")
        if t.tensor_type == T.Q8_0:
            check(np.array_equal(t.data.reshape(-1), quantize(a.astype(np.float32), T.Q8_0).reshape(-1)),
                  f"{name}: {g} Q8_0 bytes differ from gguf.quants.quantize")
            continue
        with np.errstate(over="ignore"):
            v = dequantize(t.data, t.tensor_type).reshape(a.shape)
        if t.tensor_type != T.MXFP4:
            check(np.array_equal(v.view(np.uint32), a.view(np.uint32)), f"{name}: {g} differs in bits")
            continue
        check(np.array_equal(v, a), f"{name}: {g}: gguf-py's MXFP4 values differ from transformers' (+-0 equal)")
        odd = v.view(np.uint32) != a.view(np.uint32)
        check(np.all(a[odd] == 0) and np.all(np.signbit(a[odd])) and odd.any(),
              f"{name}: {g}: bits differ other than at code 8 (-0 in transformers, +0 in ggml)")
    if to == "gguf":
        for layer in range(L):
            p, b = f"model.layers.{layer}.mlp.experts.", f"blk.{layer}.ffn_"
            gu = repacked(st[p + "gate_up_proj_blocks"][1], st[p + "gate_up_proj_scales"][1])
            dn = repacked(st[p + "down_proj_blocks"][1], st[p + "down_proj_scales"][1])
            for g, want_bytes in (("gate", gu[:, ::2]), ("up", gu[:, 1::2]), ("down", dn)):
                data = got[b + g + "_exps.weight"].data
                check(np.array_equal(data.reshape(-1), want_bytes.reshape(-1)),
                      f"{name}: {b}{g}_exps bytes differ from the nibble-permuted source blocks")
    return {g: t.tensor_type for g, t in got.items()}


# ---------------------------------------------------------------- the reference forward pass

def yarn_inv_freq(cfg, truncate):
    """transformers' _compute_yarn_parameters: inverse frequencies and the attention factor."""
    rs, base, dim = cfg["rope_scaling"], cfg["rope_theta"], cfg["head_dim"]
    factor, orig = rs["factor"], rs["original_max_position_embeddings"]

    def corr(rot):
        return dim * np.log(orig / (rot * 2 * np.pi)) / (2 * np.log(base))
    lo, hi = corr(rs["beta_fast"]), corr(rs["beta_slow"])
    if truncate:
        lo, hi = np.floor(lo), np.ceil(hi)
    lo, hi = max(lo, 0), min(hi, dim - 1)
    pos = base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    ramp = np.clip((np.arange(dim // 2) - lo) / (hi - lo if hi != lo else 0.001), 0, 1)
    extra = 1 - ramp
    inv = (1 / (factor * pos)) * (1 - extra) + (1 / pos) * extra
    return inv, 0.1 * np.log(factor) + 1.0


def rope(x, inv, mscale):
    ang = np.outer(np.arange(x.shape[0]), inv)
    cos = (np.concatenate([np.cos(ang)] * 2, -1) * mscale)[:, None, :]
    sin = (np.concatenate([np.sin(ang)] * 2, -1) * mscale)[:, None, :]
    d = x.shape[-1]
    return x * cos + np.concatenate([-x[..., d // 2:], x[..., :d // 2]], -1) * sin


def attention(q, k, v, sinks, window):
    T_ = q.shape[0]
    i, j = np.arange(T_)[:, None], np.arange(T_)[None, :]
    masked = (j > i) | ((i - j >= window) if window else False)
    out = np.zeros((T_, NH, D))
    for h in range(NH):
        s = q[:, h] @ k[:, h // (NH // KV)].T / np.sqrt(D)
        s = np.where(masked, -np.inf, s)
        s = np.concatenate([s, np.full((T_, 1), sinks[h] if sinks is not None else -np.inf)], 1)
        p = np.exp(s - s.max(-1, keepdims=True))
        out[:, h] = (p / p.sum(-1, keepdims=True))[:, :T_] @ v[:, h // (NH // KV)]
    return out.reshape(T_, -1)


def experts(W, p, h, k, swap=False):
    """gpt-oss's MoE: router with bias, softmax over the top-k logits, SwiGLU clamped at 7 with
    alpha 1.702 and up + 1; gate on even rows of gate_up (odd with swap: a negative control)."""
    logits = h @ W[p + "mlp.router.weight"].T + W[p + "mlp.router.bias"]
    out = np.zeros_like(h)
    for t in range(h.shape[0]):
        top = np.argsort(-logits[t], kind="stable")[:k]
        w = np.exp(logits[t, top] - logits[t, top].max())
        w /= w.sum()
        for e, we in zip(top, w):
            x = h[t:t + 1]
            gu = gx.mm(x, W, p + f"mlp.experts.gate_up_proj.{e}") + W[p + "mlp.experts.gate_up_proj_bias"][e]
            gate, up = np.minimum(gu[:, int(swap)::2], 7.0), np.clip(gu[:, 1 - int(swap)::2], -7.0, 7.0)
            y = (up + 1) * (gate / (1 + np.exp(-1.702 * gate)))
            out[t] += we * (gx.mm(y, W, p + f"mlp.experts.down_proj.{e}") + W[p + "mlp.experts.down_proj_bias"][e])[0]
    return out


def forward(cfg, ref, ids, sinks=True, window=True, truncate=True, swap=False):
    """Float64 logits [T, V] of GptOssForCausalLM over ref."""
    W = {k: v.astype(np.float64) for k, v in ref.items()}
    for k in [k for k in W if k.endswith(("experts.gate_up_proj", "experts.down_proj"))]:
        for e in range(E):
            W[f"{k}.{e}"] = W[k][e]
    inv, mscale = yarn_inv_freq(cfg, truncate and cfg["rope_scaling"]["truncate"])
    eps, T_ = cfg["rms_norm_eps"], len(ids)
    x = W["model.embed_tokens.weight"][ids]
    for layer in range(L):
        p = f"model.layers.{layer}."
        h = gx.rmsnorm(x, W[p + "input_layernorm.weight"], eps)
        q, k, v = ((gx.mm(h, W, p + f"self_attn.{n}_proj.weight") + W[p + f"self_attn.{n}_proj.bias"]).reshape(T_, -1, D)
                   for n in "qkv")
        sliding = cfg["layer_types"][layer] == "sliding_attention" and window
        a = attention(rope(q, inv, mscale), rope(k, inv, mscale), v, W[p + "self_attn.sinks"] if sinks else None,
                      cfg["sliding_window"] if sliding else 0)
        x = x + gx.mm(a, W, p + "self_attn.o_proj.weight") + W[p + "self_attn.o_proj.bias"]
        x = x + experts(W, p, gx.rmsnorm(x, W[p + "post_attention_layernorm.weight"], eps), cfg["num_experts_per_tok"], swap)
    return gx.mm(gx.rmsnorm(x, W["model.norm.weight"], eps), W, "lm_head.weight")


def seen(ref, types):
    """The weights as the file holds them (check_tensors proved it): re-quantized under gguf:q8_0
    (every matrix but the router and the biases)."""
    out = dict(ref)
    if types.get("blk.0.ffn_down_exps.weight") == T.Q8_0:
        for k, a in ref.items():
            if a.ndim >= 2 and not k.endswith("_bias") and "router" not in k:
                out[k] = dequantize(quantize(a, T.Q8_0), T.Q8_0).reshape(a.shape)
    return out


def gguf_of(hf):
    """The GGUF tensor a weight of forward() went into (layer 0's: the layers share their types)."""
    if hf == "lm_head.weight":
        return "output.weight"
    if ".experts." in hf:
        return "blk.0.ffn_down_exps.weight" if ".down_proj" in hf else "blk.0.ffn_gate_exps.weight"
    return "blk.0." + LAYER[hf.split(".", 3)[-1]]


def judge(path, src, cfg, ref, types, name, worst):
    """llama.cpp loads the file, tokenizes as `tokenizers` does, and its logits match forward()
    within TOL_GAP x the activation conversion's effect + TOL_FLOOR; the negative controls."""
    from llama_cpp import Llama
    from tokenizers import Tokenizer
    llm = Llama(model_path=path, n_ctx=64, n_batch=64, logits_all=True, n_threads=2, n_gpu_layers=0, verbose=False)
    want = Tokenizer.from_file(os.path.join(src, "tokenizer.json")).encode(gx.TEXT, add_special_tokens=False).ids
    got = llm.tokenize(gx.TEXT.encode(), add_bos=False, special=False)
    check(got == want, f"{name}: llama.cpp tokenizes {got} where the source tokenizer gives {want}")
    w = seen(ref, types)
    kinds = {T.MXFP4: "q8", T.Q8_0: "q8", T.BF16: "bf16"}  # ggml's CPU vec_dot types (gx.mm)

    def kind(hf):
        return kinds.get(types[gguf_of(hf)])
    for prompt in ([5, 100, 200, 31, 7, 250, 64, 9], [318, 40, 41, 42, 43, 300, 12, 77]):
        llm.reset()
        llm.eval(prompt)
        got = np.array(llm.scores[:len(prompt)], dtype=np.float64)
        gx.QACT = kind
        emul = forward(cfg, w, prompt)
        gx.QACT = None
        exact = forward(cfg, w, prompt)
        scale = np.abs(exact).max()
        rel = np.abs(got - exact).max() / scale
        gap = np.abs(emul - exact).max() / scale
        tol = gx.TOL_GAP * gap + gx.TOL_FLOOR
        trunc = np.abs(forward(cfg, w, prompt, truncate=False) - exact).max() / scale
        worst[name] = max(worst.get(name, (0.0,) * 4), (rel, gap, tol, trunc))
        check(rel < tol, f"{name}: logits off by {rel:.3g} relative (activation conversion moves them by {gap:.3g}; "
                         f"tolerance {tol:.3g})")
        check((got.argmax(-1) == exact.argmax(-1)).mean() >= 0.5, f"{name}: argmax agrees on too few positions")
        for what, kw in (("without attention sinks", {"sinks": False}), ("without the sliding window", {"window": False}),
                         ("with gate and up swapped", {"swap": True})):
            other = forward(cfg, w, prompt, **kw)
            off = np.abs(other - exact).max() / scale
            check(off > 2 * tol, f"{name}: the model {what} is within {off:.3g} of the reference: the prompt cannot tell")
            check(np.abs(got - other).max() / scale > tol, f"{name}: llama.cpp's logits also match the model {what}")
    del llm


# ---------------------------------------------------------------- the cases

def edge_scales(tmp):
    """E8M0 0, 254 and 255 move across too: ggml's halved scale 2^(e - 128) times its doubled
    codes equals transformers' ldexp(value, e - 127) there as well (255: 0.5 -> 2^127, 0 -> 0,
    larger -> inf in both), so nothing is refused; gguf-py's values equal the reference's."""
    def edges(st):
        s_ = st["model.layers.1.mlp.experts.down_proj_scales"][1]
        s_[2, 5, 1], s_[0, 0, 0], s_[3, 7, 2] = 255, 0, 254
    d, st, ref = make(tmp, "edge", edges)
    out = os.path.join(tmp, "edge.gguf")
    r = gx.convert(d, out)
    check(r.returncode == 0, f"edge scales: {r.stderr}")
    check_tensors(GGUFReader(out), st, ref, "gguf", "edge scales")
    check(np.isinf(ref["model.layers.1.mlp.experts.down_proj"][2, 5, 32:64]).any(), "edge scales: 255 gives inf")


def refusals(tmp):
    def odd(st):
        for k in ("blocks", "scales", "bias"):
            n = "model.layers.0.mlp.experts.gate_up_proj_" + k
            st[n] = (st[n][0], np.ascontiguousarray(st[n][1][:, :-1]))
    d, _, _ = make(tmp, "odd", odd)
    gx.refused(tmp, d, ["model.layers.0.mlp.experts.gate_up_proj", "191 outputs an expert"], "odd")
    d, _, _ = make(tmp, "limit", cfg_edit=lambda c: c.update(swiglu_limit=5.0))
    gx.refused(tmp, d, ["config.json", "'swiglu_limit' is not 7.0"], "limit")
    d, _, _ = make(tmp, "tied", cfg_edit=lambda c: c.update(tie_word_embeddings=True))
    gx.refused(tmp, d, ["'tie_word_embeddings' is true"], "tied")
    d, _, _ = make(tmp, "full_first", cfg_edit=lambda c: c.update(layer_types=["full_attention", "sliding_attention"]))
    gx.refused(tmp, d, ["'layer_types' does not alternate"], "full_first")

    def densify(st):
        st["model.layers.0.mlp.experts.down_proj"] = ("BF16", np.zeros((E, I_, H), np.uint16))
        del st["model.layers.0.mlp.experts.down_proj_blocks"], st["model.layers.0.mlp.experts.down_proj_scales"]
    d, _, _ = make(tmp, "dense", densify)
    gx.refused(tmp, d, ["'model.layers.0.mlp.experts.down_proj'", "dense gpt-oss experts"], "dense")


def main():
    worst = {}
    with tempfile.TemporaryDirectory() as tmp:
        src, st, ref = make(tmp, "oss")
        for to, ftype in (("gguf", 38), ("gguf:f32", 0), ("gguf:q8_0", 7)):
            name = "gpt_oss_" + (to.split(":")[1] if ":" in to else "mxfp4")
            out = os.path.join(tmp, name + ".gguf")
            r = gx.convert(src, out, to)
            check(r.returncode == 0, f"{name}: convert failed: {r.stderr}")
            rd = GGUFReader(out)
            check_metadata(rd, ftype, name)
            types = check_tensors(rd, st, ref, to, name)
            gx.check_manifest(out, name)
            if JUDGE:
                judge(out, src, CONFIG, ref, types, name, worst)
        if not JUDGE:
            edge_scales(tmp)
            refusals(tmp)
    gx.summary("gguf export gpt-oss", worst, "activation conversion's own effect, tolerance, what yarn's "
               "truncate: false would add")


if __name__ == "__main__":
    main()
