#!/usr/bin/env python3
"""make_cases.py MODELPREP MKMODEL OUT: the small checkpoints tests/device/run.sh verifies on a GPU.

Made here (numpy and safetensors from build/venv), carried there, so that the bare device machine
needs nothing but the bundle:
- the sources asym (asymmetric GPTQ, groups of 32), sym (symmetric) and moe (8 experts);
- one conversion to every packed layout: onednn-int4, gptq, gptq-v2, awq, compressed-tensors
  (from asym), cutlass-int4 u4 and s4 (from sym), stacked MoE experts (from moe);
- the float-format sources of tests/ref/float_verify.py (FP8, NVFP4, MXFP4, bitsandbytes), checked
  against their own layout ("-" in good.txt), and its copies with one scale byte flipped;
- broken outputs with their manifest removed, so that only the numeric check can catch them:
  the K<->N transpose left out, nibbles swapped, the AWQ order lost, v1 zeros read as v2, scales
  transposed. OUT/cases.txt lists each as `name against needle`: run.sh requires exit 1 and a
  FAIL line holding the needle (the tensor's name, or what differs).
"""
import os
import shutil
import subprocess
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
from quant_ref import nibbles, pack8  # noqa: E402

MP, MK, OUT = sys.argv[1:4]
H = 256  # hidden size: q_proj is H x H
Q = "model.layers.0.self_attn.q_proj"


def run(*args):
    subprocess.run(args, check=True, capture_output=True)


def no_transpose(t):
    c = nibbles(t[Q + ".qweight"], 8).reshape(H, H)
    t[Q + ".qweight"] = pack8(c.T.reshape(H, H // 8, 8))


def swap_nibbles(t):
    for k in t:
        if k.endswith(".qweight"):
            b = t[k]
            t[k] = ((b & 15) << 4 | b >> 4).astype(np.uint8)


def awq_sequential(t):
    order = [0, 2, 4, 6, 1, 3, 5, 7]
    for k in list(t):
        if k.endswith(".qweight") or k.endswith(".qzeros"):
            nib = nibbles(t[k], 8)
            cols = np.empty_like(nib)
            cols[..., order] = nib
            t[k] = pack8(cols)


def v1_as_v2(t):
    for k in list(t):
        if k.endswith(".qzeros"):
            t[k] = pack8((nibbles(t[k], 8) + 1) & 15)


def transpose_scales(t):
    s = t[Q + ".scales"]
    t[Q + ".scales"] = np.ascontiguousarray(s.T).reshape(s.shape)


def main():
    os.makedirs(OUT, exist_ok=True)
    os.chdir(OUT)
    common = ["--layers", "1", "--hidden", str(H), "--intermediate", "512", "--vocab", "1024", "--group-size", "32"]
    run(MK, "asym", *common, "--seed", "7")
    run(MK, "sym", *common, "--sym", "--seed", "8")
    run(MK, "moe", *common, "--sym", "--experts", "8", "--seed", "9")
    good = []
    for fmt in ["onednn-int4", "gptq", "gptq-v2", "awq", "compressed-tensors"]:
        run(MP, "convert", "asym", "asym-" + fmt, "--to", fmt, "--quiet")
        good.append(("asym-" + fmt, "asym"))
    run(MP, "convert", "sym", "sym-cutlass-u4", "--to", "cutlass-int4", "--quiet")
    run(MP, "convert", "sym", "sym-cutlass-s4", "--to", "cutlass-int4", "--int4", "s4", "--quiet")
    run(MP, "convert", "moe", "moe-stacked", "--to", "cutlass-int4", "--stack-experts", "--quiet")
    good += [("sym-cutlass-u4", "sym"), ("sym-cutlass-s4", "sym"), ("moe-stacked", "moe")]
    with open("good.txt", "w") as f:
        for name, src in good:
            f.write(f"{name} {src}\n")
    cases = [("asym-onednn-int4", "bad-transpose", no_transpose, Q + ":"),
             ("sym-cutlass-u4", "bad-nibbles", swap_nibbles, "dequantized values differ"),
             ("asym-awq", "bad-awq-order", awq_sequential, "dequantized values differ"),
             ("asym-gptq", "bad-zeros", v1_as_v2, "dequantized values differ"),
             ("asym-onednn-int4", "bad-scales", transpose_scales, Q + ":")]
    with open("cases.txt", "w") as f:
        for src, name, fn, needle in cases:
            shutil.copytree(src, name)
            os.remove(os.path.join(name, "modelprep.json"))
            path = os.path.join(name, "model.safetensors")
            t = load_file(path)
            fn(t)
            save_file(t, path, metadata={"format": "pt"})
            f.write(f"{name} {'asym' if src.startswith('asym') else 'sym'} {needle}\n")
        n = float_cases(f)
    print(f"make_cases: {len(good)} good outputs, {len(cases)} broken ones, {n} float checkpoints in {OUT}")


def float_cases(cases_txt):
    """The float formats (tests/ref/float_verify.py's checkpoints, each verified with --no-source:
    kernels/fp8.cl, fp4.cl, bnb4.cl, bnb8.cl against the CPU reference) into good.txt, and its
    flipped scale bytes into cases.txt."""
    os.environ.setdefault("MP_BIN", MP)
    import float_util
    import float_verify
    float_util.TMP = os.path.join(OUT, "float")
    os.makedirs(float_util.TMP, exist_ok=True)
    n = 0
    with open("good.txt", "a") as f:
        for _, d, _, _ in float_verify.cases():
            rel = os.path.relpath(d, OUT)
            f.write(f"{rel} -\n")
            n += 1
    for _, d, bad, linear, row, col in float_verify.corruptions():
        cases_txt.write(f"{os.path.relpath(bad, OUT)} {os.path.relpath(d, OUT)} "
                        f"{linear}: .* differ from the reference; first at row {row}, column {col}:\n")
    return n


main()
