#!/usr/bin/env python3
"""Cross-check modelprep's safetensors reader and writer against upstream (PyPI safetensors).

1. Upstream writes files of every dtype and awkward shape; modelprep's reader (through
   `stcopy`, which reads with formats/ and writes with formats/) must reproduce them byte for
   byte, and `modelprep inspect --json` must report each tensor's dtype, shape and size.
2. modelprep writes the sample model (tests/gen/mkmodel) and a copy of it; upstream must load
   every shard, and the arrays must equal what the index and inspect say.
3. Every hostile file modelprep refuses (tests/golden-errors) upstream refuses too, unless the
   case is listed as stricter-than-upstream with the reason; every valid edge file
   (tests/golden) upstream accepts.

Run by `make test` (tests/unit/test_cli.c) with MP_BIN, MP_TOOLS and MP_SRC set.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import BIN, TOOLS, check, summary  # noqa: E402

SRC = os.environ["MP_SRC"]

# modelprep is deliberately stricter than the crate in these cases (the crate's behaviour from
# doc/formats/safetensors.md §2, §6).
STRICTER = {
    "duplicate": "serde keeps the last duplicate key; modelprep refuses duplicate names",
    "index": "directory-level checks: upstream safe_open reads single files only",
    "escaped_nul": "serde keeps an escaped NUL in a name; modelprep refuses \\u0000",
}


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True)


def inspect_json(path):
    r = run(BIN, "inspect", path, "--json")
    check(r.returncode == 0, f"inspect {path}: exit {r.returncode}: {r.stderr}")
    return json.loads(r.stdout)


def upstream_to_modelprep(tmp):
    rng = np.random.default_rng(7)
    arrays = {
        "bool": rng.integers(0, 2, (3, 5)).astype(np.bool_),
        "u8": rng.integers(0, 256, (17,), dtype=np.uint8),
        "i8": rng.integers(-128, 128, (4, 4), dtype=np.int8),
        "i16": rng.integers(-30000, 30000, (3, 3), dtype=np.int16),
        "u16": rng.integers(0, 65535, (5,), dtype=np.uint16),
        "f16": rng.standard_normal((7, 9)).astype(np.float16),
        "i32": rng.integers(-2**31, 2**31 - 1, (2, 3, 4), dtype=np.int32),
        "u32": rng.integers(0, 2**32 - 1, (6,), dtype=np.uint32),
        "f32": rng.standard_normal((33, 65)).astype(np.float32),
        "f64": rng.standard_normal((5, 2)),
        "i64": rng.integers(-2**62, 2**62, (3,), dtype=np.int64),
        "u64": rng.integers(0, 2**63, (2, 2), dtype=np.uint64),
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float16),
        "big": rng.standard_normal((1024, 1024)).astype(np.float32),
        "model.layers.10.mlp.down_proj.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
        "unicode.\u00e9\u4e2d": np.ones((2,), dtype=np.int16),
    }
    try:
        arrays["c64"] = (rng.standard_normal(4) + 1j * rng.standard_normal(4)).astype(np.complex64)
    except TypeError:
        pass
    many = {f"t.{i}": np.full((3,), i, dtype=np.int32) for i in range(1500)}
    for label, tensors in (("mixed", arrays), ("many", many)):
        src = os.path.join(tmp, f"up_{label}.safetensors")
        try:
            save_file(tensors, src, metadata={"format": "pt"})
        except Exception as e:  # c64 unsupported by an older numpy binding
            tensors.pop("c64", None)
            save_file(tensors, src, metadata={"format": "pt"})
        dst = os.path.join(tmp, f"mp_{label}.safetensors")
        r = run(os.path.join(TOOLS, "stcopy"), src, dst)
        check(r.returncode == 0, f"stcopy {label}: {r.stderr}")
        check(open(src, "rb").read() == open(dst, "rb").read(),
              f"{label}: modelprep's rewrite differs from upstream's bytes")
        back = load_file(dst)
        check(set(back) == set(tensors), f"{label}: tensor names differ")
        for k, v in tensors.items():
            check(back[k].dtype == v.dtype and back[k].shape == v.shape and
                  back[k].tobytes() == v.tobytes(), f"{label}: {k} differs")
        doc = inspect_json(src)
        got = {t["name"]: t for t in doc["tensors"]}
        check(len(got) == len(tensors), f"{label}: inspect lists {len(got)} tensors")
        with open(src, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
        for k, v in tensors.items():
            t = got[k]
            check(t["shape"] == list(v.shape), f"{label}: {k} shape {t['shape']}")
            check(t["bytes"] == v.nbytes, f"{label}: {k} bytes {t['bytes']}")
            check(t["dtype"] == header[k]["dtype"], f"{label}: {k} dtype {t['dtype']}")
            check(t["offset"] == 8 + n + header[k]["data_offsets"][0], f"{label}: {k} offset")


def modelprep_to_upstream(tmp):
    model = os.path.join(tmp, "sample")
    r = run(os.path.join(TOOLS, "mkmodel"), model, "--max-shard-size", "300000", "--desc-act")
    check(r.returncode == 0, f"mkmodel: {r.stderr}")
    index = json.load(open(os.path.join(model, "model.safetensors.index.json")))
    shards = sorted(set(index["weight_map"].values()))
    check(len(shards) > 2, "sample is sharded")
    loaded = {}
    total = 0
    for s in shards:
        d = load_file(os.path.join(model, s))
        for k, v in d.items():
            check(index["weight_map"][k] == s, f"{k} is in {s}, index says otherwise")
            loaded[k] = v
            total += v.nbytes
        with safe_open(os.path.join(model, s), "numpy") as f:
            check(f.metadata() == {"format": "pt", "producer": "modelprep tests/gen/mkmodel"},
                  f"{s}: metadata {f.metadata()}")
    check(set(loaded) == set(index["weight_map"]), "index and shards disagree")
    check(index["metadata"]["total_size"] == total, "total_size is the sum of tensor bytes")
    doc = inspect_json(model)
    for t in doc["tensors"]:
        v = loaded[t["name"]]
        check(t["shape"] == list(v.shape) and t["bytes"] == v.nbytes, f"inspect {t['name']}")
    one = os.path.join(tmp, "sample_one.safetensors")
    r = run(os.path.join(TOOLS, "stcopy"), model, one)
    check(r.returncode == 0, f"stcopy sample: {r.stderr}")
    back = load_file(one)
    for k, v in loaded.items():
        check(back[k].tobytes() == v.tobytes(), f"copied {k} differs")
    # Spot-check the GPTQ packing the generator wrote: g_idx is a permutation's groups.
    g = loaded["model.layers.0.mlp.down_proj.g_idx"]
    counts = np.bincount(g)
    check(len(set(counts.tolist())) == 1 and not np.all(np.diff(g) >= 0),
          "desc_act g_idx: every group equally sized, order non-monotonic")


def hostile_and_golden():
    for kind, must_open in (("golden-errors", False), ("golden", True)):
        cases = os.path.join(SRC, "tests", kind, "cases")
        if not os.path.isdir(cases):
            continue
        for name in sorted(os.listdir(cases)):
            if not name.endswith(".safetensors"):
                continue
            if not must_open and any(word in name for word in STRICTER):
                continue
            path = os.path.join(cases, name)
            try:
                with safe_open(path, "numpy") as f:
                    list(f.keys())
                ok = True
            except Exception:
                ok = False
            check(ok == must_open, f"upstream {'rejects' if must_open else 'accepts'} {kind}/{name}")


with tempfile.TemporaryDirectory() as tmp:
    upstream_to_modelprep(tmp)
    modelprep_to_upstream(tmp)
    hostile_and_golden()
summary("crosscheck")
