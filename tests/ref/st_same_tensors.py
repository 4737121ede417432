#!/usr/bin/env python3
"""st_same_tensors.py A B: exit 0 when two safetensors files (or checkpoint folders with one
model.safetensors) hold the same tensor names with byte-identical dtype, shape and data;
standard library only. Used by the CLI tests for round trips."""
import json
import os
import sys


def tensors(path):
    if os.path.isdir(path):
        path = os.path.join(path, "model.safetensors")
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    hdr = json.loads(raw[8:8 + n])
    hdr.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in hdr.items()}


a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
if diff:
    print("differ:", ", ".join(diff[:5]))
    sys.exit(1)
print(f"{len(a)} tensors byte-identical")
