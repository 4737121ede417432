#!/usr/bin/env python3
"""GGUF -> Hugging Face, judged by transformers itself (tests/ref/hf_load.py in build/venv-torch):

1. GGUF files written the way convert_hf_to_gguf writes them (gguf_crosscheck.hf_to_gguf_model:
   llama with q/k/v biases, mistral, qwen2 with biases and tied embeddings, qwen3, gemma3), each
   converted by `modelprep convert X.gguf DIR --to f32`, load in transformers with no missing,
   unexpected or mismatched key, and its logits on a prompt of several tokens equal a float64
   forward pass over the GGUF's weights with the hyperparameters the GGUF states (llama.cpp's
   defaults where it states none). So config.json must say all that the tensors imply: a llama
   whose biases were dropped for want of "attention_bias" is off by far more than the tolerance,
   and the test shows it.
2. Checkpoints with a tokenizer (byte-level BPE: llama-bpe and qwen2; SentencePiece: llama and
   gemma3) exported to GGUF by modelprep and converted back: transformers loads the model, and
   AutoTokenizer on the written tokenizer gives the same ids for a multilingual text as
   AutoTokenizer on the source checkpoint (tests/ref/gguf_export_check.py shows llama.cpp gives
   the source's ids on the GGUF), and with special tokens it puts BOS first exactly when the
   GGUF's add_bos_token says llama.cpp does.

Run by `make test` (tests/unit/test_cli.c) with MP_BIN, MP_TOOLS, MP_SRC and MP_TORCH_PYTHON set;
a SKIP line when MP_TORCH_PYTHON is not set.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGUFReader

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import BIN, check, count  # noqa: E402
from gguf_crosscheck import hf_to_gguf_model  # noqa: E402
from gguf_export_check import TEXT, forward, mk  # noqa: E402

TORCH = os.environ.get("MP_TORCH_PYTHON")
LOADER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf_load.py")
PROMPT = [1, 5, 17, 33, 2, 9, 21, 38]
TOL = 1e-4  # transformers' float32 against float64, relative to the largest logit (measured ~1e-6)
# What the GGUFs of hf_to_gguf_model state, and llama.cpp's defaults for what they do not:
# gemma3's attention scale 1/sqrt(head_dim) and its local rope base 10000.
TRUE_CFG = {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "head_dim": 16, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            "query_pre_attn_scalar": 16, "rope_local_base_freq": 10000.0}
MODEL_TYPE = {"llama": "llama", "mistral": "mistral", "qwen2": "qwen2", "qwen3": "qwen3", "gemma3": "gemma3_text"}


def to_hf(src, dst, *extra):
    r = subprocess.run([BIN, "convert", src, dst, *extra, "--quiet"], capture_output=True, text=True)
    check(r.returncode == 0 and r.stderr == "", f"convert {src} -> {dst}: {r.stderr}")


def transformers(requests, tmp):
    path = os.path.join(tmp, "request.json")
    json.dump(requests, open(path, "w"))
    r = subprocess.run([TORCH, LOADER, path], capture_output=True, text=True)
    if r.returncode != 0:
        check(False, f"transformers failed: {r.stderr[-3000:]}")
        sys.exit(1)
    return json.loads(r.stdout)


def loaded_cleanly(got, name):
    for k in ("missing", "unexpected", "mismatched"):
        check(got[k] == [], f"{name}: transformers reports {k} keys {got[k]}")


def from_gguf(tmp):
    cases, requests = [], []
    for arch, tied in (("llama", False), ("mistral", False), ("qwen2", True), ("qwen3", True), ("gemma3", True)):
        path, hf = hf_to_gguf_model(tmp, arch, tied)
        dst = os.path.join(tmp, arch + "-hf")
        to_hf(path, dst, "--to", "f32")
        cases.append((arch, hf))
        requests.append({"dir": dst, "ids": PROMPT})
    for (arch, hf), got in zip(cases, transformers(requests, tmp)):
        loaded_cleanly(got, arch)
        cfg = dict(TRUE_CFG, model_type=MODEL_TYPE[arch])
        exact = forward(cfg, hf, PROMPT)
        scale = np.abs(exact).max()
        err = np.abs(np.array(got["logits"]) - exact).max() / scale
        check(err < TOL, f"{arch}: transformers' logits off the GGUF's by {err:.2e} (tolerance {TOL:.0e})")
        biases = [k for k in hf if k.endswith(".bias")]
        if biases:  # the check can fail: the same model without its biases is far off
            off = np.abs(forward(cfg, {k: v for k, v in hf.items() if k not in biases}, PROMPT) - exact).max() / scale
            check(off > 100 * TOL, f"{arch}: dropping the biases moves the logits by only {off:.2e}")


def with_tokenizer(tmp):
    cases, requests = [], []
    for name, arch, pre in (("bpe-llama", "llama", "llama-bpe"), ("bpe-qwen2", "qwen2", "qwen2"),
                            ("spm-llama", "llama", "spm"), ("spm-gemma3", "gemma3", "spm")):
        src = mk(tmp, name, arch, pre, True, "--dense-bf16")
        out = os.path.join(tmp, name + ".gguf")
        to_hf(src, out, "--to", "gguf")
        dst = os.path.join(tmp, name + "-hf")
        to_hf(out, dst, "--to", "f32")
        cases.append(name)
        requests.append({"dir": dst, "ids": PROMPT, "text": TEXT, "ref": src})
    for name, got in zip(cases, transformers(requests, tmp)):
        loaded_cleanly(got, name)
        check(len(got["ids"]) > 8 and got["ids"] == got["ref_ids"],
              f"{name}: AutoTokenizer on the written tokenizer gives {got['ids']}, on the source {got['ref_ids']}")
        # With special tokens, as llama.cpp tokenizes the GGUF: BOS first when add_bos_token says so.
        f = GGUFReader(os.path.join(tmp, name + ".gguf")).fields
        add_bos = bool(f["tokenizer.ggml.add_bos_token"].contents()) if "tokenizer.ggml.add_bos_token" in f else False
        bos = f["tokenizer.ggml.bos_token_id"].contents()
        want = [bos] * add_bos + got["ids"]
        check(got["bos"] == bos and got["ids_special"] == want,
              f"{name}: with special tokens {got['ids_special'][:4]}..., want {want[:4]}... (add_bos_token {add_bos})")


def main():
    if not TORCH:
        print("SKIP: MP_TORCH_PYTHON is not set (build/venv-torch, make torchref)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        from_gguf(tmp)
        with_tokenizer(tmp)
    print(f"gguf_hf_transformers ok: {count()} checks passed")


if __name__ == "__main__":
    main()
