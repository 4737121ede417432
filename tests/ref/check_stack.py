#!/usr/bin/env python3
"""check_stack.py STACKED PER_EXPERT: every expert slice of the stacked cutlass-int4 tensors
equals that expert's own cutlass-int4 tensors, byte for byte (standard library only):
w13_qweight[e] = gate_proj.qweight ++ up_proj.qweight, w13_scales[e] likewise,
w2_qweight[e] = down_proj.qweight, w2_scales[e] = down_proj.scales."""
import json
import os
import re
import sys


def load(d):
    raw = open(os.path.join(d, "model.safetensors"), "rb").read()
    n = int.from_bytes(raw[:8], "little")
    hdr = json.loads(raw[8:8 + n])
    hdr.pop("__metadata__", None)
    return {k: (v["shape"], raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in hdr.items()}


stacked, single = load(sys.argv[1]), load(sys.argv[2])
slices = 0
for name, (shape, data) in stacked.items():
    m = re.match(r"(.*\.experts)\.(w13|w2)_(qweight|scales)$", name)
    if not m:
        assert single.get(name) == (shape, data), f"{name}: not copied as is"
        continue
    block, which, part = m.groups()
    E = shape[0]
    per = len(data) // E
    for e in range(E):
        want = b"".join(single[f"{block}.{e}.{p}.{part}"][1] for p in (["gate_proj", "up_proj"] if which == "w13" else ["down_proj"]))
        assert data[e * per:(e + 1) * per] == want, f"{name}[{e}] differs from expert {e}"
        slices += 1
experts = {k for k in single if ".experts." in k}
assert not any(k in stacked for k in experts), "per-expert tensors left beside the stacks"
print(f"{slices} expert slices equal their experts")
