#!/usr/bin/env python3
"""Peak memory on pathological headers (issue 14, class 5; the bounds are doc/limits.md's:
256 MiB for the tiles plus a cost per tensor entry).

Each command runs as a child of a fresh Python process, whose RUSAGE_CHILDREN ru_maxrss is that
command's peak RSS alone.
  - split of 6,000 one-byte layers: modules grouped by sorting, arrays sized to each module
    (before: 545 MiB; 20,000 layers took 5.3 GiB before and 40 MiB now, measured by hand);
  - GGUF convert of one attention head of 256 MiB (a sparse file): the rope un-permutation on
    bounded runs of rows (before: 916 MiB; the runs' order is tests/cli/
    gguf_convert_rope_runs_keep_hugging_face_order.sh);
  - inspect, split and convert of a header of 10^6 zero-size tensors, and inspect and hash of
    a GGUF of as many: the costs per entry (safetensors inspect before: 907 MiB).
Under AddressSanitizer (make test SAN=1) peak RSS measures the sanitizer's shadow memory and
quarantine, not modelprep: the script says SKIP with that reason and counts nothing.
Stdlib only. Run by `make test` (tests/unit/test_cli.c) with MP_BIN set.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import BIN, check, skip, summary  # noqa: E402

MIB = 1 << 20
TILE_BOUND = 256 * MIB  # doc/limits.md: the largest tile, 256 MiB by default
ENTRY = {"inspect": 400, "split": 400, "convert": 640}  # doc/limits.md: bytes per tensor entry


def peak(*args):
    """Runs modelprep with args in a child; returns (exit code, peak RSS in bytes, stderr)."""
    code = ("import resource, subprocess, sys\n"
            "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
            "sys.stderr.write(p.stderr.decode(errors='replace'))\n"
            "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    p = subprocess.run([sys.executable, "-c", code, BIN, *args], capture_output=True, text=True)
    rc, kib = p.stdout.split()
    return int(rc), int(kib) * 1024, p.stderr


def safetensors(path, entries, data_len):
    h = json.dumps(entries, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        f.truncate(8 + len(h) + data_len)


def gguf_llama(path, cols, rows, n_head):
    """A llama GGUF holding one F32 blk.0.attn_q.weight [rows, cols] of zeros, a sparse file."""
    def s(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b
    kvs = s("general.architecture") + struct.pack("<I", 8) + s("llama")
    kvs += s("llama.block_count") + struct.pack("<II", 4, 1)
    kvs += s("llama.attention.head_count") + struct.pack("<II", 4, n_head)
    info = s("blk.0.attn_q.weight") + struct.pack("<I", 2) + struct.pack("<QQ", cols, rows)
    info += struct.pack("<I", 0) + struct.pack("<Q", 0)
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, 3) + kvs + info
    head += b"\0" * (-len(head) % 32)
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(len(head) + cols * rows * 4)


def gguf_zero(path, n):
    """A GGUF of n tensors of zero elements (F32, one dimension of 0)."""
    def s(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b
    kvs = s("general.architecture") + struct.pack("<I", 8) + s("llama")
    infos = b"".join(s(f"t{i}") + struct.pack("<IQIQ", 1, 0, 0, 0) for i in range(n))
    head = b"GGUF" + struct.pack("<IQQ", 3, n, 1) + kvs + infos
    with open(path, "wb") as f:
        f.write(head + b"\0" * (-len(head) % 32))


def main():
    with open(BIN, "rb") as f:
        if b"__asan_init" in f.read():
            skip("peak RSS under AddressSanitizer measures its shadow memory and quarantine, not modelprep")
            summary("limits memory")
            return
    tmp = tempfile.mkdtemp(prefix="mp-limits-")
    os.chdir(tmp)
    try:
        layers = 6000  # 545 MiB before; each file is fsynced, so more costs minutes of I/O
        os.mkdir("layers")
        with open("layers/config.json", "w") as f:
            json.dump({"architectures": ["LlamaForCausalLM"], "num_hidden_layers": layers}, f)
        safetensors("layers/model.safetensors", {f"model.layers.{i}.w": {"dtype": "U8", "shape": [1],
                    "data_offsets": [i, i + 1]} for i in range(layers)}, layers)
        rc, rss, err = peak("split", "layers", "split-out")
        check(rc == 0, f"split of {layers} layers: exit {rc}: {err}")
        check(len([f for f in os.listdir("split-out")
                   if f.startswith("model.layers.") and f.endswith(".safetensors")]) == layers,
              "one file per layer")
        check(rss < TILE_BOUND, f"split of {layers} layers: peak {rss // MIB} MiB, bound {TILE_BOUND // MIB} MiB")
        shutil.rmtree("split-out")

        gguf_llama("head.gguf", 1024, 65536, 1)
        rc, rss, err = peak("convert", "head.gguf", "head-out", "--to", "f16")
        check(rc == 0, f"convert of one 256 MiB head: exit {rc}: {err}")
        check(rss < TILE_BOUND, f"convert of one 256 MiB head: peak {rss // MIB} MiB, bound {TILE_BOUND // MIB} MiB")
        shutil.rmtree("head-out")

        n = 10 ** 6
        safetensors("zero.safetensors", {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
                                         for i in range(n)}, 0)
        for cmd, args, tile in [("inspect", ["zero.safetensors"], 0),
                                ("split", ["zero.safetensors", "zero-split"], TILE_BOUND),
                                ("convert", ["zero.safetensors", "zero-f16", "--to", "f16"], TILE_BOUND)]:
            rc, rss, err = peak(cmd, *args)
            check(rc == 0, f"{cmd} of {n} entries: exit {rc}: {err}")
            bound = tile + n * ENTRY[cmd]
            check(rss < bound, f"{cmd} of {n} entries: peak {rss // MIB} MiB, bound {bound // MIB} MiB")
            if len(args) > 1:
                shutil.rmtree(args[1], ignore_errors=True)
        gguf_zero("zero.gguf", n)
        for cmd in ["inspect", "hash"]:
            rc, rss, err = peak(cmd, "zero.gguf")
            check(rc == 0, f"{cmd} of a GGUF of {n} tensors: exit {rc}: {err}")
            check(rss < n * ENTRY["inspect"], f"{cmd} of a GGUF of {n} tensors: peak {rss // MIB} MiB")
    finally:
        os.chdir("/")
        shutil.rmtree(tmp, ignore_errors=True)
    summary("limits memory")


main()
