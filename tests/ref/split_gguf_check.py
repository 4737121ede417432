#!/usr/bin/env python3
"""Check `modelprep split` of GGUF sources against upstream gguf-py.

A llama-like GGUF (token_embd, four blocks with Q4_0/Q4_1/Q8_0/F16/F32 tensors, output_norm, no
output.weight: tied) written by gguf-py's GGUFWriter:
- the default split writes blk.N.safetensors etc.: each tensor a U8 [rows, row bytes] whose bytes
  are gguf-py's raw tensor data, with `gguf.type.<name>` and `gguf.ne.<name>` in the metadata;
  gguf-metadata.gguf holds every key of the source and no tensor; the index loads with PyPI
  safetensors; the tied head is an alias in the manifest, or output.safetensors with
  --materialize-tied; a killed split resumes to identical files;
- --gguf-split 3 writes three files gguf-py reads, with gguf-split's keys, the source's tensors
  in order with equal types and bytes, no block cut in two, and `modelprep hash` equal to the
  source's; verify passes and a flipped byte fails;
- --gguf-split beyond the number of modules, with a safetensors source, or with --resume is a
  usage error.
Run by `make test` (tests/unit/test_cli.c) with MP_BIN and MP_TOOLS set.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import gguf
import numpy as np
from gguf.quants import quantize
from safetensors import safe_open

T = gguf.GGMLQuantizationType

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import BIN, TOOLS, check, run, summary  # noqa: E402


def write_source(path):
    rng = np.random.default_rng(3)
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(4)
    w.add_embedding_length(64)
    w.add_token_list([f"t{i}" for i in range(32)])
    tensors = {}

    def add(name, arr, qt=None):
        data = quantize(arr, qt) if qt is not None else arr
        w.add_tensor(name, data, raw_dtype=qt)
        tensors[name] = (data, qt)
    add("token_embd.weight", rng.standard_normal((32, 64)).astype(np.float32), T.Q8_0)
    types = [T.Q4_0, T.Q4_1, T.Q8_0, T.F16]
    for b in range(4):
        for k, proj in enumerate(["attn_q", "attn_k", "ffn_up"]):
            a = rng.standard_normal((64, 64)).astype(np.float32)
            qt = types[(b + k) % 4]
            add(f"blk.{b}.{proj}.weight", a.astype(np.float16) if qt == T.F16 else a, None if qt == T.F16 else qt)
        add(f"blk.{b}.attn_norm.weight", rng.standard_normal(64).astype(np.float32))
    add("output_norm.weight", rng.standard_normal(64).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tensors


def raw_bytes(reader, name):
    t = next(t for t in reader.tensors if t.name == name)
    return bytes(np.asarray(t.data).tobytes()), t


def main():
    tmp = tempfile.mkdtemp(prefix="mp-split-gguf-")
    os.chdir(tmp)
    try:
        write_source("src.gguf")
        src = gguf.GGUFReader("src.gguf")
        names = [t.name for t in src.tensors]

        p = run("split", "src.gguf", "layers", "--json")
        check(p.returncode == 0, f"split: {p.stderr}")
        doc = json.loads(p.stdout)
        check(doc["files"] == 6 and doc["tensors"] == len(names) and doc["tied_alias"], f"summary {doc}")
        files = sorted(f for f in os.listdir("layers") if f.endswith(".safetensors"))
        check(files == sorted(["token_embd.safetensors", "output_norm.safetensors"] +
                              [f"blk.{b}.safetensors" for b in range(4)]), f"files {files}")
        seen = set()
        for f in files:
            with safe_open(os.path.join("layers", f), "np") as st:
                meta = st.metadata()
                for name in st.keys():
                    seen.add(name)
                    want, t = raw_bytes(src, name)
                    got = st.get_tensor(name)
                    check(got.dtype == np.uint8 and got.tobytes() == want, f"{f}: {name} bytes")
                    check(meta[f"gguf.type.{name}"] == t.tensor_type.name, f"{name} type {meta.get('gguf.type.' + name)}")
                    check(meta[f"gguf.ne.{name}"] == ",".join(str(int(x)) for x in t.shape), f"{name} ne")
                    stem = f[:-len(".safetensors")]
                    check(name.startswith(stem + "."), f"{name} in {f}")
        check(seen == set(names), "every tensor in exactly one layer file")
        idx = json.load(open("layers/model.safetensors.index.json"))
        check(set(idx["weight_map"]) == set(names), "index covers every tensor")
        meta = gguf.GGUFReader("layers/gguf-metadata.gguf")
        check(len(meta.tensors) == 0, "metadata file has no tensors")
        check(set(meta.fields) >= {k for k in src.fields if not k.startswith("GGUF.")} - {"split.no"},
              f"metadata keys {set(src.fields) - set(meta.fields)}")
        man = json.load(open("layers/modelprep.json"))
        check(man["layout"]["tied"] == {"output.weight": "token_embd.weight"}, f"tied {man['layout']['tied']}")
        check("gguf-metadata.gguf" in [f["name"] for f in man["files"]], "metadata file in the manifest")
        v = run("verify", "layers", "--device", "opencl", "--json")
        vd = json.loads(v.stdout) if v.stdout else {}
        check(v.returncode == 0 and sorted({t["layout"] for t in vd["tensors"]}) == ["Q4_0", "Q4_1", "Q8_0"]
              and len(vd["tensors"]) == 10 and all(t["bad_values"] == 0 for t in vd["tensors"]),
              f"verify of the split runs the gguf kernel: {v.stderr} {vd.get('findings')}")

        p = run("split", "src.gguf", "mat", "--materialize-tied", "--quiet")
        with safe_open("mat/output.safetensors", "np") as st:
            check(list(st.keys()) == ["output.weight"] and
                  st.get_tensor("output.weight").tobytes() == raw_bytes(src, "token_embd.weight")[0], "materialized")

        # A killed split resumes to the same files.
        p = subprocess.Popen([BIN, "split", "src.gguf", "killed", "--quiet"])
        p.kill()
        p.wait()
        p = run("split", "src.gguf", "killed", "--resume", "--quiet")
        if p.returncode != 0:  # killed before the partial directory existed: nothing to resume
            check("no partial split" in p.stderr or "does not exist" in p.stderr or p.returncode == 0, p.stderr)
            p = run("split", "src.gguf", "killed", "--quiet", "--force")
        for f in files:
            check(open(f"killed/{f}", "rb").read() == open(f"layers/{f}", "rb").read(), f"resumed {f}")

        # gguf-split sets.
        p = run("split", "src.gguf", "set", "--gguf-split", "3")
        check(p.returncode == 0, f"--gguf-split: {p.stderr}")
        parts = sorted(f for f in os.listdir("set") if f.endswith(".gguf"))
        check(parts == [f"src-0000{i}-of-00003.gguf" for i in (1, 2, 3)], f"parts {parts}")
        got = []
        for i, f in enumerate(parts):
            r = gguf.GGUFReader(os.path.join("set", f))
            check(int(r.fields["split.no"].parts[-1][0]) == i and int(r.fields["split.count"].parts[-1][0]) == 3
                  and int(r.fields["split.tensors.count"].parts[-1][0]) == len(names), f"{f} split keys")
            blocks = {t.name.split(".")[1] for t in r.tensors if t.name.startswith("blk.")}
            for b in blocks:
                got_names = [t.name for t in r.tensors if t.name.startswith(f"blk.{b}.")]
                check(len(got_names) == 4, f"block {b} whole in {f}")
            for t in r.tensors:
                want, st = raw_bytes(src, t.name)
                check(bytes(np.asarray(t.data).tobytes()) == want and t.tensor_type == st.tensor_type, f"{t.name}")
                got.append(t.name)
        check(got == names, "tensors in source order")
        check("tokenizer.ggml.tokens" in gguf.GGUFReader(os.path.join("set", parts[0])).fields, "metadata in split 1")
        h1, h2 = run("hash", "src.gguf"), run("hash", "set")
        check(h1.stdout.splitlines()[-1].split()[1] == h2.stdout.splitlines()[-1].split()[1], "hash of the set")
        v = run("verify", "set", "--device", "cpu", "--json")
        vd = json.loads(v.stdout)
        check(v.returncode == 0 and vd["integrity"]["files"] == 3 and len(vd["tensors"]) == 10, f"verify set {vd['findings']}")
        with open(os.path.join("set", parts[1]), "r+b") as f:
            f.seek(-10, 2)
            b = f.read(1)[0]
            f.seek(-10, 2)
            f.write(bytes([b ^ 1]))
        v = run("verify", "set", "--device", "cpu", "--json")
        vd = json.loads(v.stdout)
        check(v.returncode == 1 and any(x["text"].startswith(parts[1] + ": xxh3-128 ") for x in vd["findings"]),
              f"flipped byte in a split: {vd['findings']}")

        p = run("split", "src.gguf", "too-many", "--gguf-split", "9")
        check(p.returncode == 2 and "has only 6 modules to cut between" in p.stderr and not os.path.exists("too-many")
              and not any(f.startswith("too-many.partial") for f in os.listdir(".")),
              f"too many: {p.returncode} {p.stderr}")
        subprocess.run([os.path.join(TOOLS, "mkmodel"), "st", "--layers", "1"], check=True, capture_output=True)
        p = run("split", "st", "x", "--gguf-split", "2")
        check(p.returncode == 2 and "needs a GGUF source" in p.stderr, f"safetensors: {p.stderr}")
        p = run("split", "src.gguf", "y", "--gguf-split", "2", "--resume")
        check(p.returncode == 2 and "--resume and --compress do not apply" in p.stderr, f"resume: {p.stderr}")
        p = run("split", "src.gguf", "z", "--gguf-split", "0")
        check(p.returncode == 2, "--gguf-split 0")
    finally:
        os.chdir("/")
        shutil.rmtree(tmp, ignore_errors=True)
    summary("split gguf check")


main()
