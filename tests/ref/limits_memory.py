#!/usr/bin/env python3
"""Peak memory on pathological headers (issue 14, class 5; the bounds are doc/limits.md's).

Each command runs as a child of its own; its peak RSS is ru_maxrss of RUSAGE_CHILDREN, read
after each run in a fresh process so one run's peak cannot hide another's.
  - split of 6,000 one-byte layers: modules grouped by sorting, arrays sized to each module
    (before: 545 MiB; 20,000 layers took 5.3 GiB before and 40 MiB now, measured by hand);
  - GGUF convert of one attention head of 256 MiB (a sparse file): the rope un-permutation on
    bounded runs of rows (before: 916 MiB); and, on real values, the runs' boundaries: a head
    longer than a run, and rows longer than half a tile, come out in Hugging Face order;
  - inspect of 10^6 zero-size tensors: the header reader's documented cost per entry.
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
from mp_check import BIN, check, summary  # noqa: E402

MIB = 1 << 20
TILE_BOUND = 256 * MIB          # doc/limits.md: the largest tile, 256 MiB by default
HEADER_ENTRY_BYTES = 1024       # doc/limits.md: the safetensors header reader, per entry


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


def gguf_llama(path, cols, rows, n_head, values=None):
    """A llama GGUF holding one F32 blk.0.attn_q.weight [rows, cols]; sparse zeros unless values
    (a function of the row) are given."""
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
        if values is None:
            f.truncate(len(head) + cols * rows * 4)
        else:
            for r in range(rows):
                f.write(struct.pack("<f", values(r)) * cols)


def first_of_rows(path, name, rows, cols):
    """The first f32 of each row of tensor `name` in a safetensors file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        t = json.loads(f.read(n))[name]
        out = []
        for r in range(rows):
            f.seek(8 + n + t["data_offsets"][0] + r * cols * 4)
            out.append(struct.unpack("<f", f.read(4))[0])
        return t["shape"], out


def hf_order(rows, n_head):
    """Source row of each Hugging Face row: LlamaModel.permute undone."""
    hd = rows // n_head
    return [(r // hd) * hd + 2 * ((r % hd) % (hd // 2)) + (r % hd) // (hd // 2) for r in range(rows)]


def main():
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
        check(len([f for f in os.listdir("split-out") if f.startswith("model.layers.")]) == layers,
              "one file per layer")
        check(rss < TILE_BOUND, f"split of {layers} layers: peak {rss // MIB} MiB, bound {TILE_BOUND // MIB} MiB")
        shutil.rmtree("split-out")

        gguf_llama("head.gguf", 1024, 65536, 1)
        rc, rss, err = peak("convert", "head.gguf", "head-out", "--to", "f16")
        check(rc == 0, f"convert of one 256 MiB head: exit {rc}: {err}")
        check(rss < TILE_BOUND, f"convert of one 256 MiB head: peak {rss // MIB} MiB, bound {TILE_BOUND // MIB} MiB")
        shutil.rmtree("head-out")

        # Run boundaries on real values: row r of the GGUF holds r. A head of 4096 rows of 1024
        # is 4 runs of 1024 rows (half a 2 Mi-element tile each); rows of 2^21 + 32 elements
        # exceed half a tile and are taken in pieces.
        for cols, rows, n_head in [(1024, 8192, 2), ((1 << 21) + 32, 4, 2)]:
            gguf_llama("v.gguf", cols, rows, n_head, values=float)
            rc, rss, err = peak("convert", "v.gguf", "v-out", "--to", "f32")
            check(rc == 0, f"convert [{rows}, {cols}]: exit {rc}: {err}")
            shape, got = first_of_rows("v-out/model.safetensors", "model.layers.0.self_attn.q_proj.weight", rows, cols)
            check(shape == [rows, cols], f"shape {shape}")
            check(got == [float(x) for x in hf_order(rows, n_head)], f"[{rows}, {cols}]: rows in Hugging Face order")
            with open("v-out/model.safetensors", "rb") as f:
                n = struct.unpack("<Q", f.read(8))[0]
                f.seek(8 + n + (rows - 1) * cols * 4 + (cols - 1) * 4)
                last = struct.unpack("<f", f.read(4))[0]
            check(last == float(hf_order(rows, n_head)[-1]), f"[{rows}, {cols}]: the last element of the last row")
            shutil.rmtree("v-out")
            os.unlink("v.gguf")

        n = 10 ** 6
        safetensors("zero.safetensors", {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
                                         for i in range(n)}, 0)
        rc, rss, err = peak("inspect", "zero.safetensors")
        check(rc == 0, f"inspect of {n} entries: exit {rc}: {err}")
        check(rss < n * HEADER_ENTRY_BYTES, f"inspect of {n} entries: peak {rss // MIB} MiB, bound {n * HEADER_ENTRY_BYTES // MIB} MiB")
    finally:
        os.chdir("/")
        shutil.rmtree(tmp, ignore_errors=True)
    summary("limits memory")


main()
