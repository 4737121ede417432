#!/usr/bin/env python3
"""Cross-check `modelprep split`.

- Llama-like (sharded so that layers straddle shards), Gemma-like (tied, single file), Qwen-like
  MoE and a model with vision-tower and stray tensors: every tensor's bytes equal its source's,
  the union of the files is exactly the source, each file holds only its module's tensors, and
  the index loads with PyPI safetensors (every file and every weight_map entry).
- Tied embeddings with and without --materialize-tied.
- Hostile tensor names (../../x, /abs) never produce a path outside DST.
- A split killed with SIGKILL leaves no DST, and --resume completes it to files byte-identical to
  an uninterrupted split.
- A write that fails (RLIMIT_FSIZE) is exit 5 naming the file, with no DST left behind.
Run by `make test` (tests/unit/test_cli.c) with MP_BIN and MP_TOOLS set.
"""
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import BIN, TOOLS, check, summary  # noqa: E402


def raw_tensors(path):
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    hdr = json.loads(raw[8:8 + n])
    hdr.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in hdr.items()}


def source_tensors(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else ["model.safetensors"]
    out = {}
    for f in files:
        out.update(raw_tensors(os.path.join(d, f)))
    return out


def module_of(name):
    for pat in (r"^(model\.layers\.\d+)\.", r"^(model\.embed_tokens)\.", r"^(model\.norm)\.", r"^(lm_head)\.",
                r"^(model\.visual)\.", r"^(transformer\.h\.\d+)\."):
        m = re.match(pat, name)
        if m:
            return m.group(1)
    return "extra"


def split(src, dst, *extra, **kw):
    return subprocess.run([BIN, "split", src, dst, "--quiet", *extra], capture_output=True, text=True, **kw)


def verify_split(name, src, dst, materialized=False, tied=False):
    want = source_tensors(src)
    index = json.load(open(os.path.join(dst, "model.safetensors.index.json")))
    got = {}
    for f in sorted(set(index["weight_map"].values())):
        t = raw_tensors(os.path.join(dst, f))
        for k in t:
            mod = "lm_head" if k == "lm_head.weight" else module_of(k)
            check(f == mod + ".safetensors", f"{name}: {k} is in {f}, expected {mod}.safetensors")
            check(index["weight_map"][k] == f, f"{name}: index puts {k} elsewhere")
        got.update(t)
        with safe_open(os.path.join(dst, f), "numpy") as s:
            check(set(s.keys()) == set(t), f"{name}: upstream reads {f}")
            check(s.metadata().get("format") == "pt", f"{name}: {f} metadata format pt")
    expect = dict(want)
    if materialized:
        expect["lm_head.weight"] = want["model.embed_tokens.weight"]
    check(set(got) == set(expect), f"{name}: the union of the files is not the source: {sorted(set(got) ^ set(expect))[:5]}")
    for k, v in expect.items():
        check(got[k] == v, f"{name}: {k} bytes differ")
    check(set(index["weight_map"]) == set(expect), f"{name}: index lists exactly the tensors")
    man = json.load(open(os.path.join(dst, "modelprep.json")))
    check(len(man["tensors"]) == len(expect), f"{name}: manifest lists every tensor")
    if tied and not materialized:
        check(man["layout"]["tied"] == {"lm_head.weight": "model.embed_tokens.weight"}, f"{name}: alias recorded")
        head = os.path.join(dst, "lm_head.safetensors")  # RabbitLLM's empty file, by default
        check(not os.path.exists(head) or raw_tensors(head) == {}, f"{name}: no lm_head tensor")
    mods = man["layout"]["modules"]
    layers = [int(m.split(".")[2]) for m in mods if m.startswith("model.layers.")]
    check(layers == sorted(layers), f"{name}: layers in numeric order")


def make(tmp, name, *args):
    d = os.path.join(tmp, name)
    r = subprocess.run([os.path.join(TOOLS, "mkmodel"), d, *args], capture_output=True, text=True)
    check(r.returncode == 0, f"mkmodel {name}: {r.stderr}")
    return d


def main():
    with tempfile.TemporaryDirectory() as tmp:
        llama = make(tmp, "llama", "--layers", "12", "--max-shard-size", "150000")
        shards = json.load(open(os.path.join(llama, "model.safetensors.index.json")))["weight_map"]
        by_layer = {}
        for k, f in shards.items():
            by_layer.setdefault(module_of(k), set()).add(f)
        check(any(len(v) > 1 for v in by_layer.values()), "the llama sample has layers straddling shards")
        r = split(llama, os.path.join(tmp, "llama-split"))
        check(r.returncode == 0, f"split llama: {r.stderr}")
        verify_split("llama", llama, os.path.join(tmp, "llama-split"))

        gemma = make(tmp, "gemma", "--layers", "2", "--tied")
        for mat in (False, True):
            out = os.path.join(tmp, f"gemma-split-{mat}")
            r = split(gemma, out, *(["--materialize-tied"] if mat else []))
            check(r.returncode == 0, f"split gemma: {r.stderr}")
            verify_split("gemma", gemma, out, materialized=mat, tied=True)

        moe = make(tmp, "moe", "--layers", "2", "--experts", "4", "--max-shard-size", "400000")
        r = split(moe, os.path.join(tmp, "moe-split"))
        check(r.returncode == 0, f"split moe: {r.stderr}")
        verify_split("moe", moe, os.path.join(tmp, "moe-split"))

        # Vision tower, stray and hostile names: placed by rule or in extra, never outside DST.
        odd = os.path.join(tmp, "odd")
        os.makedirs(odd)
        t = {"model.embed_tokens.weight": np.ones((4, 4), np.float16),
             "model.layers.0.mlp.up_proj.weight": np.ones((4, 4), np.float16),
             "model.layers.10.mlp.up_proj.weight": np.full((4, 4), 2, np.float16),
             "model.layersX.0.w": np.ones(2, np.float32),
             "model.visual.blocks.0.attn.qkv.weight": np.ones((2, 2), np.float32),
             "rotary_emb.inv_freq": np.ones(4, np.float32),
             "../../escape": np.ones(2, np.int8),
             "/abs/path": np.ones(2, np.int8),
             "model.norm.weight": np.ones(4, np.float16)}
        save_file(t, os.path.join(odd, "model.safetensors"), metadata={"format": "pt"})
        json.dump({"num_hidden_layers": 11}, open(os.path.join(odd, "config.json"), "w"))
        out = os.path.join(tmp, "odd-split")
        before = set(os.listdir(tmp))
        r = split(odd, out)
        check(r.returncode == 0, f"split odd: {r.stderr}")
        check(set(os.listdir(tmp)) - before == {"odd-split"}, "nothing written beside DST")
        check(os.listdir(out) and all("/" not in f and not f.startswith("..") for f in os.listdir(out)), "flat DST")
        extra = raw_tensors(os.path.join(out, "extra.safetensors"))
        check(set(extra) == {"model.layersX.0.w", "rotary_emb.inv_freq", "../../escape", "/abs/path"},
              f"extra holds exactly the unmatched tensors: {sorted(extra)}")
        verify_split("odd", odd, out)

        # --compress zstd: the zstd CLI decompresses every file to the plain split's bytes, the
        # manifest records both sizes and hashes, and --resume over a compressed partial split
        # with one file corrupted (same size) and one half-written redoes exactly those two.
        plain = os.path.join(tmp, "llama-split")
        packed = os.path.join(tmp, "llama-zst")
        r = split(llama, packed, "--compress", "zstd:3")
        check(r.returncode == 0, f"split --compress: {r.stderr}")
        check(not os.path.exists(os.path.join(packed, "model.safetensors.index.json")),
              "no standard index over .zst files")
        pm = json.load(open(os.path.join(plain, "modelprep.json")))
        zm = json.load(open(os.path.join(packed, "modelprep.json")))
        plain_files = {f["name"]: f for f in pm["files"]}
        layer_files = [f for f in zm["files"] if f["name"].endswith(".safetensors.zst")]
        check(len(layer_files) == len([f for f in os.listdir(plain) if f.endswith(".safetensors")]),
              "one .zst per plain layer file")
        for f in layer_files:
            base = f["name"][:-4]
            raw = subprocess.run(["zstd", "-q", "-d", "-c", os.path.join(packed, f["name"])],
                                 capture_output=True).stdout
            check(raw == open(os.path.join(plain, base), "rb").read(), f"zstd -d {f['name']} equals {base}")
            check(f["compression"] == "zstd" and f["size"] == os.path.getsize(os.path.join(packed, f["name"])),
                  f"{f['name']}: compressed size")
            check(f["uncompressed_size"] == len(raw) and f["uncompressed_xxh3_128"] == plain_files[base]["xxh3_128"],
                  f"{f['name']}: uncompressed size and hash")
        check({t["name"]: t["xxh64"] for t in zm["tensors"]} == {t["name"]: t["xxh64"] for t in pm["tensors"]},
              "per-tensor xxh64 as for the plain split")
        # The partial split of a run that ran out of disk space before its last two files
        # (--resume keeps it); then one journaled file corrupted (same size) and one half-written.
        shim = os.path.join(TOOLS, "libenospc.so")
        budget = sum(f["size"] for f in layer_files[:-2]) + 20000
        env = dict(os.environ, LD_PRELOAD=shim, ASAN_OPTIONS="verify_asan_link_order=0", MP_ENOSPC_AFTER=str(budget))
        resumed = os.path.join(tmp, "llama-resumed")
        r = subprocess.run([BIN, "split", llama, resumed, "--compress", "zstd:3", "--resume", "--quiet"],
                           capture_output=True, text=True, env=env)
        check(r.returncode == 5 and "kept in" in r.stderr, f"disk full with --resume keeps the partial: {r.stderr}")
        parts = [f for f in os.listdir(tmp) if f.startswith("llama-resumed.partial-")]
        check(len(parts) == 1, f"one partial split: {parts}")
        partial = os.path.join(tmp, parts[0])
        journaled = [ln.split()[1] for ln in open(os.path.join(partial, ".modelprep-journal")) if ln.startswith("file ")]
        check({"model.layers.3.safetensors.zst", "model.layers.7.safetensors.zst"} <= set(journaled),
              f"layers 3 and 7 were finished: {journaled}")
        os.rename(os.path.join(partial, "model.layers.7.safetensors.zst"),
                  os.path.join(partial, "model.layers.7.safetensors.zst.tmp"))
        with open(os.path.join(partial, "model.layers.7.safetensors.zst.tmp"), "r+b") as t:
            t.truncate(1000)
        bad = os.path.join(partial, "model.layers.3.safetensors.zst")
        b = bytearray(open(bad, "rb").read())
        b[len(b) // 2] ^= 0xFF
        open(bad, "wb").write(bytes(b))
        # A file kept is the same inode, untouched since; a rewritten one may reuse the number.
        def ident(path):
            st = os.stat(path)
            return st.st_ino, st.st_mtime_ns
        inodes = {f: ident(os.path.join(partial, f)) for f in os.listdir(partial)}
        time.sleep(0.02)
        r = subprocess.run([BIN, "split", llama, resumed, "--compress", "zstd:3", "--resume"],
                           capture_output=True, text=True)
        check(r.returncode == 0, f"compressed resume: {r.stderr}")
        check(f"resumed: {len(journaled) - 2} files kept" in r.stdout, f"kept all but two: {r.stdout}")
        for f in layer_files:
            n = f["name"]
            same = ident(os.path.join(resumed, n)) == inodes.get(n)
            check(same == (n in journaled and n not in ("model.layers.3.safetensors.zst", "model.layers.7.safetensors.zst")),
                  f"{n}: {'kept' if same else 'rewritten'}")
            check(open(os.path.join(resumed, n), "rb").read() == open(os.path.join(packed, n), "rb").read(),
                  f"{n}: byte-identical after resume")
        check(sorted(os.listdir(resumed)) == sorted(os.listdir(packed)), "same files after a compressed resume")
        check(json.load(open(os.path.join(resumed, "modelprep.json")))["files"] == zm["files"], "same manifest files")

        # SIGKILL mid-split, then --resume: byte-identical to an uninterrupted split.
        big = make(tmp, "big", "--layers", "24", "--hidden", "512", "--intermediate", "1408", "--vocab", "8192")
        clean = os.path.join(tmp, "big-clean")
        check(split(big, clean).returncode == 0, "clean split")
        killed = False
        dst = os.path.join(tmp, "big-split")
        for attempt in range(20):
            p = subprocess.Popen([BIN, "split", big, dst, "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            done = 0
            while p.poll() is None and done < 3:
                parts = [f for f in os.listdir(tmp) if f.startswith("big-split.partial-")]
                if parts:
                    done = len([f for f in os.listdir(os.path.join(tmp, parts[0])) if f.endswith(".safetensors")])
                time.sleep(0.0005)
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
                killed = True
                break
            shutil.rmtree(dst)
        check(killed, "split was killed while running, after some files were complete")
        check(not os.path.exists(dst), "a killed split leaves no DST")
        partials = [f for f in os.listdir(tmp) if f.startswith("big-split.partial-")]
        check(len(partials) == 1, f"one partial directory: {partials}")
        r = subprocess.run([BIN, "split", big, dst, "--resume"], capture_output=True, text=True)
        check(r.returncode == 0, f"resume: {r.stderr}")
        kept = re.search(r"resumed: (\d+) files kept", r.stdout)
        check(kept and int(kept.group(1)) >= 3, f"resume kept the verified files: {r.stdout}")
        check(not [f for f in os.listdir(tmp) if f.startswith("big-split.partial-")], "resume consumed the partial")
        for f in os.listdir(clean):
            if f.endswith(".safetensors") or f.endswith(".index.json"):
                check(open(os.path.join(clean, f), "rb").read() == open(os.path.join(dst, f), "rb").read(),
                      f"resumed {f} is byte-identical to an uninterrupted split")
        check(sorted(os.listdir(clean)) == sorted(os.listdir(dst)), "same files after resume")

        # SIGINT: convert removes its partial output and exits 130; split keeps it for --resume.
        for cmd, keeps in ((["convert", big, os.path.join(tmp, "int-conv"), "--to", "f32"], False),
                           (["split", big, os.path.join(tmp, "int-split")], True)):
            dst = cmd[2]
            base = os.path.basename(dst)
            for attempt in range(20):
                p = subprocess.Popen([BIN, *cmd, "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                while p.poll() is None and not [f for f in os.listdir(tmp) if f.startswith(base + ".partial-")]:
                    time.sleep(0.0005)
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
                    err = p.communicate()[1]
                    break
                p.communicate()
                shutil.rmtree(dst, ignore_errors=True)
            check(p.returncode == 130 and "interrupted" in err, f"{cmd[0]} on SIGINT: exit {p.returncode}: {err}")
            partial = [f for f in os.listdir(tmp) if f.startswith(base + ".partial-")]
            check(not os.path.exists(dst) and bool(partial) == keeps,
                  f"{cmd[0]} on SIGINT: DST absent, partial kept={keeps}: {partial}")

        # A write failure (file size limit): exit 5, the file named, nothing left behind.
        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (200000, 200000))
        out = os.path.join(tmp, "limited")
        r = split(big, out, preexec_fn=limit)
        check(r.returncode == 5 and "File too large" in r.stderr and r.stderr.count("\n") == 1,
              f"EFBIG: exit {r.returncode}: {r.stderr}")
        check(not os.path.exists(out) and not [f for f in os.listdir(tmp) if f.startswith("limited.partial")],
              "a failed write leaves nothing behind")
    summary("crosscheck")


if __name__ == "__main__":
    main()
