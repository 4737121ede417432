"""Shared by the float-format checks (tests/ref/float_crosscheck.py, fp4_crosscheck.py): writing a
checkpoint, converting it with modelprep, reading the output, comparing bits, expecting refusals.
"""
import os
import tempfile

import ml_dtypes
import numpy as np
from safetensors.numpy import load_file, save_file

from mp_check import check, run, write_config

BF16 = ml_dtypes.bfloat16
E4M3 = ml_dtypes.float8_e4m3fn
E5M2 = ml_dtypes.float8_e5m2
TMP = tempfile.mkdtemp(prefix="mp-float-")


def save(name, tensors, qconfig, torch_dtype="bfloat16", side=None, arch="LlamaForCausalLM"):
    d = os.path.join(TMP, name)
    os.makedirs(d, exist_ok=True)
    save_file(tensors, os.path.join(d, "model.safetensors"))
    return write_config(d, qconfig, torch_dtype, side, arch)


def convert(src, to, *extra):
    out = src + ".out-" + to
    r = run("convert", src, out, "--to", to, "--force", "--quiet", *extra)
    check(r.returncode == 0, f"convert {src} --to {to}: exit {r.returncode}: {r.stderr}")
    return out


def out_tensors(out):
    t = {}
    for f in sorted(os.listdir(out)):
        if f.endswith(".safetensors"):
            t.update(load_file(os.path.join(out, f)))
    return t


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view({1: np.uint8, 2: np.uint16, 4: np.uint32}[a.dtype.itemsize])


def to_dtype(v32, to):
    """The reference's f32 value rounded once to the output dtype (RNE, as numpy/ml_dtypes do)."""
    return v32.astype({"f32": np.float32, "f16": np.float16, "bf16": BF16}[to])


def same_bits(got, want, what):
    g, w = bits(got), bits(want)
    check(g.shape == w.shape, f"{what}: shape {g.shape}, want {w.shape}")
    bad = np.argwhere(g != w)
    check(len(bad) == 0, f"{what}: {len(bad)} values differ, first at {bad[:1].tolist()}: "
          f"{hex(int(g[tuple(bad[0])])) if len(bad) else ''} vs {hex(int(w[tuple(bad[0])])) if len(bad) else ''}")


def refuse(src, needle, to="bf16"):
    r = run("convert", src, src + ".refused", "--to", to)
    check(r.returncode == 4, f"{src}: exit {r.returncode}, want 4; stderr: {r.stderr}")
    check(needle in r.stderr, f"{src}: stderr {r.stderr!r} lacks {needle!r}")
    check(not os.path.exists(src + ".refused"), f"{src}: a refused conversion left output")
