"""Shared by the torch judges (float_upstream.py, bnb_upstream.py): writing a checkpoint and
converting it, and a tiny Llama written as a quantized checkpoint, converted to bf16 by
modelprep, loaded by transformers itself.

`tiny_llama()` gives the config and bf16 model to quantize; `convert_and_load(...)` writes the
quantized tensors with the config's quantization_config, converts, loads the result with no
missing, unexpected or mismatched key, checks each reference weight bit for bit and the logits
against the model built from the reference weights.
"""
import json
import os

import torch
from safetensors.torch import load_file, save_file

from mp_check import check, run, write_config


def write_checkpoint(d, tensors, qconfig, torch_dtype="bfloat16", side=None):
    """A one-file Llama checkpoint in d: the tensors, config.json with qconfig, side files."""
    os.makedirs(d)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(d, "model.safetensors"))
    return write_config(d, qconfig, torch_dtype, side)


def convert(src, to):
    """modelprep convert src -> src.to; the tensors written."""
    out = f"{src}.{to}"
    r = run("convert", src, out, "--to", to, "--quiet")
    check(r.returncode == 0, f"convert {src}: {r.stderr}")
    return load_file(os.path.join(out, "model.safetensors"))


def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=256, hidden_size=96, intermediate_size=200, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      torch_dtype="bfloat16", tie_word_embeddings=False)
    torch.manual_seed(15)
    return cfg, LlamaForCausalLM(cfg).to(torch.bfloat16)


def convert_and_load(tmp, cfg, qconfig, quantized, ref):
    from transformers import LlamaForCausalLM
    d = os.path.join(tmp, "llama")
    cfg.save_pretrained(d)
    c = json.load(open(os.path.join(d, "config.json")))
    c["quantization_config"] = qconfig
    json.dump(c, open(os.path.join(d, "config.json"), "w"))
    save_file(quantized, os.path.join(d, "model.safetensors"))
    out = d + ".bf16"
    r = run("convert", d, out, "--to", "bf16", "--quiet")
    check(r.returncode == 0, f"convert llama: {r.stderr}")
    loaded, info = LlamaForCausalLM.from_pretrained(out, output_loading_info=True, dtype=torch.bfloat16)
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        check(not info.get(key), f"transformers loads the bf16 checkpoint: {key} {info.get(key)}")
    got_sd = loaded.state_dict()
    for k, v in ref.items():
        check(torch.equal(got_sd[k].view(torch.int16), v.view(torch.int16)), f"loaded {k} is the reference")
    # the reference weights, loaded the same way
    d2 = os.path.join(tmp, "llama-ref")
    cfg.save_pretrained(d2)
    save_file(ref, os.path.join(d2, "model.safetensors"))
    reference = LlamaForCausalLM.from_pretrained(d2, dtype=torch.bfloat16)
    ids = torch.tensor([[1, 17, 42, 99, 200, 3, 5, 8]])
    with torch.no_grad():
        a, b = loaded(ids).logits, reference(ids).logits
    check(torch.equal(a, b), f"logits differ: max {float((a.float() - b.float()).abs().max())}")
    check(float(a.float().abs().max()) > 0, "the logits are not all zero")
