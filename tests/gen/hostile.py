#!/usr/bin/env python3
"""Small hostile checkpoints for the CLI tests of issue 14 (tests/cli/*.sh), stdlib only.

  hostile.py st FILE NAME...            a safetensors file: each NAME an F32 [2] tensor of ones
  hostile.py config DIR KEY=INT...      DIR/config.json with these integer keys (llama)
  hostile.py gguf FILE BLOCKS NAME...   a llama GGUF (block_count BLOCKS), each NAME an F32 [8]
"""
import json
import os
import struct
import sys


def st(path, names, dtype="F32", data=None):
    hdr, blob = {}, b""
    for n in names:
        raw = data if data is not None else struct.pack("<2f", 1.0, 1.0)
        hdr[n] = {"dtype": dtype, "shape": [len(raw) // 4], "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)


def config(d, pairs):
    c = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    for p in pairs:
        k, v = p.split("=", 1)
        c[k] = int(v)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f)


def gguf(path, blocks, names):
    def s(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b
    kvs = s("general.architecture") + struct.pack("<I", 8) + s("llama")
    kvs += s("llama.block_count") + struct.pack("<II", 4, blocks)
    infos, data = b"", b""
    for n in names:
        infos += s(n) + struct.pack("<I", 1) + struct.pack("<Q", 8) + struct.pack("<I", 0) + struct.pack("<Q", len(data))
        data += struct.pack("<8f", *([1.0] * 8))
    head = b"GGUF" + struct.pack("<IQQ", 3, len(names), 2) + kvs + infos
    head += b"\0" * (-len(head) % 32)
    with open(path, "wb") as f:
        f.write(head + data)


if __name__ == "__main__":
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "st":
        st(a[0], a[1:])
    elif cmd == "config":
        config(a[0], a[1:])
    elif cmd == "gguf":
        gguf(a[0], int(a[1]), a[2:])
    else:
        sys.exit("unknown command " + cmd)
