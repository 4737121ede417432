#!/usr/bin/env python3
"""Check `modelprep verify` and `modelprep devices`.

- Correct conversions of asymmetric, non-uniform GPTQ checkpoints (group 32, so scales have more
  than one group) to every packed layout, and of symmetric ones to cutlass-int4 u4/s4 and
  stacked MoE experts, pass on the OpenCL device (PoCL here) and on the cpu backend: exit 0,
  every dequantized value bit-exact, the device named in the report.
- Deliberately broken outputs fail with exit 1 and name the tensor, with the manifest removed so
  that only the numeric check can catch them: the K<->N transpose left out, nibbles swapped
  within a byte, the AWQ order not applied, v1 zeros read as v2, scales transposed.
- One flipped byte in a weight or in a scale fails integrity (naming file and tensor) and numerics.
- `--device level-zero` and `--device gpu` without a GPU are exit 3 naming the reason; `devices
  --json` follows its schema.
Run by `make test` (tests/unit/test_cli.c) with MP_BIN and MP_TOOLS set.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import BIN, TOOLS, check, run, skip, summary  # noqa: E402
from quant_ref import nibbles, pack8  # noqa: E402



def mkmodel(d, *args):
    subprocess.run([os.path.join(TOOLS, "mkmodel"), d, "--layers", "1", "--hidden", "64",
                    "--intermediate", "128", *args], check=True, capture_output=True)


def verify(path, device, *extra):
    p = run("verify", path, "--device", device, "--json", *extra)
    try:
        doc = json.loads(p.stdout) if p.stdout else None
    except json.JSONDecodeError:
        doc = None
    return p, doc


def verify_threads(path, against, threads):
    """verify --json of path against a source on the cpu backend with OMP_NUM_THREADS=threads,
    the timings left out so that two runs compare equal."""
    p = subprocess.run([BIN, "verify", path, "--against", against, "--device", "cpu", "--json"],
                       capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": threads})
    doc = json.loads(p.stdout) if p.stdout else {}
    for k in ("seconds", "integrity", "numerics"):
        doc.pop(k, None)
    return p, doc


def expect_pass(path, device, backend, what):
    p, doc = verify(path, device)
    check(p.returncode == 0 and doc and doc["status"] == "pass",
          f"{what} on {device}: exit {p.returncode}, {p.stderr.strip()} {doc and doc['findings']}")
    check(doc["device"]["backend"] == backend, f"{what}: ran on {doc['device']['backend']}, not {backend}")
    check(len(doc["tensors"]) > 0, f"{what}: no tensor was checked")
    for t in doc["tensors"]:
        check(t["bad_values"] == 0 and t["bad_outputs"] == 0 and t["status"] == "PASS", f"{what}: {t}")
        check(t["nmse"] <= t["nmse_bound"] and t["cosine"] > 0.999999, f"{what}: {t['name']} metrics {t}")
    return doc


def expect_fail(path, needle, what, *extra):
    p, doc = verify(path, "cpu", *extra)
    texts = [f["stage"] + ": " + f["text"] for f in (doc["findings"] if doc else []) if f["status"] == "FAIL"]
    check(p.returncode == 1 and doc and doc["status"] == "fail", f"{what}: exit {p.returncode} {p.stderr.strip()}")
    check(any(needle in t for t in texts), f"{what}: no failure mentions {needle!r}: {texts}")
    return texts


def rewrite(path, fn):
    """Loads a safetensors file, lets fn edit the dict of arrays, saves it back (format pt)."""
    t = load_file(path)
    fn(t)
    save_file(t, path, metadata={"format": "pt"})


def gguf_checks():
    """GGUF files from gguf-py: Q4_0, Q4_1 and Q8_0 matrices run on the device against the CPU
    dequantization, bit for bit; a NaN scale fails; other quantized types are named in a warning."""
    import gguf
    from gguf.quants import quantize
    T = gguf.GGMLQuantizationType
    rng = np.random.default_rng(5)
    w = gguf.GGUFWriter("m.gguf", "llama")
    for name, qt in [("blk.0.q4_0.weight", T.Q4_0), ("blk.0.q4_1.weight", T.Q4_1), ("blk.0.q8_0.weight", T.Q8_0),
                     ("blk.0.q5_0.weight", T.Q5_0)]:
        a = (rng.standard_normal((48, 256)) * rng.uniform(0.01, 2.0, (48, 1))).astype(np.float32)
        w.add_tensor(name, quantize(a, qt), raw_dtype=qt)
    w.add_tensor("blk.0.norm.weight", rng.standard_normal(256).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    for device, backend in [("cpu", "cpu"), ("opencl", "opencl")]:
        doc = expect_pass("m.gguf", device, backend, "gguf " + device)
        check(sorted(t["layout"] for t in doc["tensors"]) == ["Q4_0", "Q4_1", "Q8_0"], f"gguf kernels: {doc['tensors']}")
        check(any(f["status"] == "WARN" and "1 quantized tensors have no device kernel (Q5_0 1)" in f["text"]
                  for f in doc["findings"]), f"gguf warns of Q5_0: {doc['findings']}")
    p, doc = verify("m.gguf", "cpu", "--full")
    check(all(t["rows"] == 48 for t in doc["tensors"]), "gguf --full")
    r = gguf.GGUFReader("m.gguf")
    t = next(t for t in r.tensors if t.name == "blk.0.q8_0.weight")
    off = int(t.data_offset) + 5 * (256 // 32) * 34  # row 5, block 0: its f16 d
    with open("m.gguf", "r+b") as f:
        f.seek(off)
        f.write(b"\x00\x7e")  # f16 NaN
    expect_fail("m.gguf", "tensor 'blk.0.q8_0.weight' (Q8_0): row 5, column 0 is nan", "gguf NaN scale", "--full")
    p = run("verify", "m.gguf", "--against", "asym")
    check(p.returncode == 2 and "--against applies to safetensors" in p.stderr, f"gguf --against: {p.stderr}")


def null_driver(src):
    """The loader's null driver claims a GPU and runs nothing: listed as refused, exit 3 when asked
    for, and when forced through MODELPREP_ZE_ANY_VENDOR=1 the NaN-filled outputs fail verify."""
    lib = os.path.join(src, "build", "ze-null", "lib")
    if not os.path.exists(os.path.join(lib, "libze_null.so.1")):
        why = "not built"
        try:
            why = open(os.path.join(src, "build", "ze-null", "skipped")).read().strip()
        except OSError:
            pass
        skip(f"the null-driver checks: {why}")
        return
    env = dict(os.environ, ZE_ENABLE_NULL_DRIVER="1",
               LD_LIBRARY_PATH=lib + ":" + os.environ.get("LD_LIBRARY_PATH", ""))
    def nrun(*args, **extra):
        return subprocess.run([BIN, *args], capture_output=True, text=True, env=dict(env, **extra))
    doc = json.loads(nrun("devices", "--json").stdout)
    ze = doc["backends"][0]
    check(ze["status"] == "ok" and len(ze["devices"]) == 1, f"null driver listed: {ze}")
    d = ze["devices"][0]
    check(d["name"] == "Null Device" and d["gpu"] and not d["usable"] and d["vendor_id"] == 0
          and "is not an Intel GPU" in d["note"], f"null device refused: {d}")
    p = nrun("verify", "asym-gptq", "--device", "level-zero")
    check(p.returncode == 3 and "'Null Device' refused: GPU vendor 0x0000" in p.stderr, f"null: {p.stderr}")
    p = nrun("verify", "asym-gptq")
    check(p.returncode == 0 and p.stdout.startswith("device:    opencl:0 ") and "none usable" in p.stdout,
          f"auto skips the null device: {p.stdout[:300]}")
    p = nrun("verify", "asym-gptq", "--device", "level-zero", "--json", MODELPREP_ZE_ANY_VENDOR="1")
    doc = json.loads(p.stdout)
    check(p.returncode == 1 and doc["device"]["name"] == "Null Device", f"forced null: {p.returncode}")
    check(all(t["status"] == "FAIL" for t in doc["tensors"]) and
          any("it ran nothing" in f["text"] for f in doc["findings"]), "null driver outputs stay NaN and fail")


def main_null_driver():
    """`verify_check.py --null-driver`: the null-driver checks alone, so that when the driver
    cannot be built they are reported as skipped (tests/unit/test_cli.c) apart from the rest."""
    tmp = tempfile.mkdtemp(prefix="mp-verify-null-")
    os.chdir(tmp)
    try:
        mkmodel("asym", "--group-size", "32", "--seed", "7")
        p = run("convert", "asym", "asym-gptq", "--to", "gptq", "--quiet")
        if p.returncode != 0:  # setup, not a check: a skip must not pass on its setup alone
            print("FAIL: convert to gptq:", p.stderr)
            sys.exit(1)
        null_driver(os.environ.get("MP_SRC", "."))
    finally:
        os.chdir("/")
        shutil.rmtree(tmp, ignore_errors=True)
    summary("verify null driver")


def main():
    tmp = tempfile.mkdtemp(prefix="mp-verify-")
    os.chdir(tmp)
    try:
        mkmodel("asym", "--group-size", "32", "--seed", "7")
        mkmodel("sym", "--group-size", "32", "--sym", "--seed", "8")
        mkmodel("moe", "--group-size", "32", "--sym", "--experts", "4", "--seed", "9")
        mkmodel("g3", "--bits", "3", "--desc-act", "--group-size", "32", "--seed", "10")
        mkmodel("g8", "--bits", "8", "--format", "gptq_v2", "--seed", "11")
        outs = []
        for fmt in ["onednn-int4", "gptq", "gptq-v2", "awq", "compressed-tensors"]:
            d = "asym-" + fmt
            check(run("convert", "asym", d, "--to", fmt, "--quiet").returncode == 0, f"convert to {fmt}")
            outs.append(d)
        for extra in [[], ["--int4", "s4"]]:
            d = "sym-cutlass" + "".join(extra)
            check(run("convert", "sym", d, "--to", "cutlass-int4", "--quiet", *extra).returncode == 0, d)
            outs.append(d)
        check(run("convert", "moe", "moe-stacked", "--to", "cutlass-int4", "--stack-experts",
                  "--quiet").returncode == 0, "stacked convert")
        outs.append("moe-stacked")

        for d in outs:
            for device, backend in [("cpu", "cpu"), ("opencl", "opencl")]:
                doc = expect_pass(d, device, backend, d)
                check(doc["reference"].startswith("CPU dequantization of the source"), f"{d}: {doc['reference']}")
        doc = expect_pass("moe-stacked", "cpu", "cpu", "stacked")
        names = {t["name"] for t in doc["tensors"]}
        check("model.layers.0.mlp.experts.w13_qweight[3].up_proj" in names and
              "model.layers.0.mlp.experts.w2_qweight[0].down_proj" in names, f"stacked slices: {sorted(names)[:5]}")
        # A split of the stacked output checks each slice against the stacked source.
        check(run("split", "moe-stacked", "moe-split", "--quiet").returncode == 0, "split of stacked")
        doc = expect_pass("moe-split", "cpu", "cpu", "split of stacked")
        check(len(doc["tensors"]) == 4 * 3 + 4 and "moe-stacked" in doc["reference"], f"split: {doc['reference']}")
        # Dense outputs of quantized linears: rows equal the reference rounded to f16 / bf16.
        for dt in ("f16", "bf16"):
            check(run("convert", "asym", "dense-" + dt, "--to", dt, "--quiet").returncode == 0, f"convert {dt}")
            p, doc = verify("dense-" + dt, "cpu")
            check(p.returncode == 0 and len(doc["tensors"]) == 7 and
                  all(t["layout"] == f"dense {dt.upper()} (cpu)" and t["bad_values"] == 0 and t["m"] == 0
                      and t["nmse"] is None for t in doc["tensors"]), f"dense {dt}: {p.stderr} {doc and doc['tensors'][:1]}")
        shutil.copytree("dense-f16", "dense-bad")
        os.remove(os.path.join("dense-bad", "modelprep.json"))
        def bump(t):
            w = t["model.layers.0.mlp.up_proj.weight"]
            w.view(np.uint16)[5, 7] ^= 1
        rewrite(os.path.join("dense-bad", "model.safetensors"), bump)
        texts = expect_fail("dense-bad", "model.layers.0.mlp.up_proj.weight: 1 of ", "dense value off by one ulp",
                            "--against", "asym", "--full")
        check(any("first at row 5, column 7" in t for t in texts), f"dense: names the value {texts}")
        # Ways a verify could pass while checking nothing: each must fail or say so.
        def edit_manifest(d, fn):
            mp = os.path.join(d, "modelprep.json")
            m = json.load(open(mp))
            fn(m)
            json.dump(m, open(mp, "w"))
        gone = lambda m: m["source"].update(path="gone", absolute_path="/nonexistent/gone")
        shutil.copytree("dense-f16", "dense-gone")
        edit_manifest("dense-gone", gone)
        p, doc = verify("dense-gone", "cpu")
        check(p.returncode == 0 and any(f["status"] == "WARN" and "nothing ran on the device" in f["text"]
                                        for f in doc["findings"]), f"dense without source warns: {doc['findings']}")
        shutil.copytree("asym-gptq", "gptq-gone")
        edit_manifest("gptq-gone", gone)
        p = run("verify", "gptq-gone", "--device", "cpu")
        check(p.returncode == 5 and p.stderr == "modelprep: gptq-gone: the manifest's source gone is not there, nor at "
              "/nonexistent/gone; pass --against SRC to compare with the source, or --no-source to compare the output "
              "with its own layout\n", f"a lost source is an error, not a silent self-check: {p.returncode} {p.stderr}")
        p, doc = verify("gptq-gone", "cpu", "--no-source")
        check(p.returncode == 0 and any(f["status"] == "WARN" and "no source to compare with (--no-source)" in f["text"]
                                        for f in doc["findings"]), f"own-layout check asked for warns: {doc['findings']}")
        shutil.copytree("asym-gptq", "no-files")
        edit_manifest("no-files", lambda m: m.__setitem__("files", []))
        expect_fail("no-files", "model.safetensors: not in the manifest's files", "empty files list")
        shutil.copytree("asym-gptq", "self-source")
        edit_manifest("self-source", lambda m: m["source"].update(path="self-source", absolute_path=None))
        p, doc = verify("self-source", "cpu")
        check(p.returncode == 0 and "is the checkpoint itself" in doc["reference"], f"self source: {doc['reference']}")
        p = run("verify", "self-source", "--against", "self-source")
        check(p.returncode == 2 and "is the checkpoint being verified" in p.stderr, f"--against itself: {p.stderr}")
        shutil.copytree("asym", "asym-changed")
        shutil.copytree("asym-gptq", "changed-out")
        edit_manifest("changed-out", lambda m: m["source"].update(path="asym-changed", absolute_path=None))
        with open(os.path.join("asym-changed", "model.safetensors"), "r+b") as f:
            f.seek(-1, 2)
            f.write(b"\x01")
        p, doc = verify("changed-out", "cpu")
        check(p.returncode == 0 and "differs from the manifest's record" in doc["reference"],
              f"changed source not used: {doc['reference']}")
        # A linear the source has and the output lost.
        qn = "model.layers.0.self_attn.q_proj"
        shutil.copytree("asym-gptq", "lost-linear")
        os.remove(os.path.join("lost-linear", "modelprep.json"))
        rewrite(os.path.join("lost-linear", "model.safetensors"),
                lambda t: [t.pop(k) for k in list(t) if k.startswith(qn + ".")])
        expect_fail("lost-linear", qn + ": a quantized linear of the source with no counterpart", "lost linear",
                    "--against", "asym")
        # Stacked experts in a dtype no kernel reads.
        shutil.copytree("moe-stacked", "stacked-i8")
        os.remove(os.path.join("stacked-i8", "modelprep.json"))
        rewrite(os.path.join("stacked-i8", "model.safetensors"),
                lambda t: t.__setitem__("model.layers.0.mlp.experts.w2_qweight",
                                        t["model.layers.0.mlp.experts.w2_qweight"].view(np.int8)))
        expect_fail("stacked-i8", "model.layers.0.mlp.experts.w2_qweight: a stacked expert tensor of I8",
                    "stacked I8", "--against", "moe")

        # A stacked source with fewer experts than the output: the slices it has are checked, then
        # the first it lacks stops the checks naming the tensor, the same with one thread or two.
        mkmodel("moe2", "--group-size", "32", "--sym", "--experts", "2", "--seed", "9")
        check(run("convert", "moe2", "moe2-stacked", "--to", "cutlass-int4", "--stack-experts",
                  "--quiet").returncode == 0, "stacked convert of 2 experts")
        docs = []
        for threads in ("1", "2"):
            p, doc = verify_threads("moe-stacked", "moe2-stacked", threads)
            docs.append(doc)
            stop = [f["text"] for f in doc.get("findings", []) if f["stage"] == "numerics"]
            check(p.returncode == 1 and len(stop) == 1 and stop[0].endswith(
                "tensor 'model.layers.0.mlp.experts.w2_qweight': the source's stacked tensor has another shape"),
                f"fewer experts: {p.returncode} {stop}")
            check([t["name"] for t in doc["tensors"]][-2:] == ["model.layers.0.mlp.experts.w2_qweight[0].down_proj",
                                                               "model.layers.0.mlp.experts.w2_qweight[1].down_proj"],
                  f"the slices the source has are checked: {[t['name'] for t in doc['tensors']]}")
        check(docs[0] == docs[1], "fewer experts: the report of two threads is the report of one")

        gguf_checks()

        # Mixed bit widths (GPTQ `dynamic`): 8-bit and 4-bit linears in one gptq-v2 output.
        fixture = os.path.join(os.environ.get("MP_SRC", "."), "tests/golden/quant/gptq_dynamic_overrides")
        check(run("convert", fixture, "mixed", "--to", "gptq-v2", "--quiet").returncode == 0, "mixed convert")
        doc = expect_pass("mixed", "opencl", "opencl", "mixed bits")
        check(len(doc["tensors"]) == 2, f"mixed: {len(doc['tensors'])} tensors")
        # A zstd-compressed split: checked the same way; a flipped byte in a frame fails integrity.
        check(run("split", "moe-stacked", "moe-zst", "--compress", "zstd", "--quiet").returncode == 0, "zst split")
        doc = expect_pass("moe-zst", "opencl", "opencl", "compressed split")
        check(len(doc["tensors"]) == 16 and doc["integrity"]["files"] >= 4, f"zst: {doc['integrity']}")
        zf = os.path.join("moe-zst", "model.layers.0.safetensors.zst")
        with open(zf, "r+b") as f:
            f.seek(os.path.getsize(zf) // 2)
            b = f.read(1)[0]
            f.seek(os.path.getsize(zf) // 2)
            f.write(bytes([b ^ 0x40]))
        p, doc = verify("moe-zst", "cpu")
        fails = [f["text"] for f in (doc["findings"] if doc else []) if f["status"] == "FAIL"]
        check(p.returncode == 1 and any(t.startswith("model.layers.0.safetensors.zst: xxh3-128 ") for t in fails)
              and any(t.startswith("cannot read the data, checks stopped: ") and "checksum" in t for t in fails),
              f"flipped zst byte: {p.returncode} {p.stderr} {fails}")
        # Sources verify against their own layout: 3-bit act-order, 8-bit v2.
        for d in ["g3", "g8"]:
            doc = expect_pass(d, "opencl", "opencl", d)
            check("own layout" in doc["reference"], f"{d}: reference {doc['reference']}")
        # --full checks every row.
        doc = expect_pass("asym-awq", "cpu", "cpu", "full")
        p, doc = verify("asym-awq", "cpu", "--full")
        check(all(t["rows"] == t["n"] for t in doc["tensors"]), "--full checks every row")
        p, doc = verify("asym-awq", "cpu", "--rows", "5")
        check(all(t["rows"] == 5 for t in doc["tensors"]), "--rows 5")
        # The default: n / 64 rows of each tensor in whole runs of 8, at least 16, at most 64 (never more
        # than n).
        p, doc = verify("asym-awq", "cpu")
        p2, doc2 = verify("asym-awq", "cpu", "--rows", "auto")
        check(doc2["rows"] == "auto" and [t["rows"] for t in doc2["tensors"]] == [t["rows"] for t in doc["tensors"]],
              "--rows auto is the default")
        p2 = run("verify", "asym-awq", "--rows", "0")
        check(p2.returncode == 2 and "--rows '0': expected auto or a count from 1 to 1000000" in p2.stderr,
              f"--rows 0: {p2.returncode} {p2.stderr}")
        check(doc["rows"] == "auto" and all(t["rows"] == min(t["n"], max(16, min(64, t["n"] // 64 // 8 * 8)))
                                            for t in doc["tensors"]), f"default rows {doc['rows']}")

        # Sampled linears run several at once on the cpu backend (64 per batch), merged in order:
        # the report of a 10-layer model (70 linears) with wrong values in two of them, one in
        # each batch, is the one-thread report, finding for finding and row for row.
        mkmodel("many", "--layers", "10", "--group-size", "32", "--sym", "--seed", "12")
        check(run("convert", "many", "many-cutlass", "--to", "cutlass-int4", "--quiet").returncode == 0, "many")
        os.remove(os.path.join("many-cutlass", "modelprep.json"))

        def two_wrong(t):
            for layer in (1, 9):
                k = f"model.layers.{layer}.self_attn.o_proj.qweight"
                t[k] = t[k].copy()
                t[k][-1, :] ^= 0x11  # the last row: in every sample
        rewrite(os.path.join("many-cutlass", "model.safetensors"), two_wrong)
        docs = []
        for threads in ("1", "2"):
            p, doc = verify_threads("many-cutlass", "many", threads)
            check(p.returncode == 1 and len(doc.get("tensors", [])) == 70, f"{threads} threads: exit {p.returncode}")
            docs.append(doc)
        check(docs[0] == docs[1], "the report of two threads is the report of one")
        fails = [f["text"] for f in docs[1]["findings"] if f["status"] == "FAIL"]
        named = [f.split(": ")[0] for f in fails]
        check(named[0] == "model.layers.1.self_attn.o_proj" and named[-1] == "model.layers.9.self_attn.o_proj" and
              set(named) == {named[0], named[-1]} and named == sorted(named), f"two wrong linears, in order: {fails}")

        # Broken outputs: no manifest, so only numerics can tell.
        def broken(src, name, fn, needle, what):
            shutil.copytree(src, name)
            os.remove(os.path.join(name, "modelprep.json"))
            rewrite(os.path.join(name, "model.safetensors"), fn)
            expect_fail(name, needle, what, "--against", "asym" if src.startswith("asym") else "sym")

        q = "model.layers.0.self_attn.q_proj"

        def no_transpose(t):  # onednn [N, K/8]: write the codes of W^T (square q_proj)
            c = nibbles(t[q + ".qweight"], 8).reshape(64, 64)
            t[q + ".qweight"] = pack8(c.T.reshape(64, 8, 8))
        broken("asym-onednn-int4", "bad-transpose", no_transpose, q + ": ", "K<->N transpose left out")

        def swap_nibbles(t):
            for k in t:
                if k.endswith(".qweight"):
                    b = t[k]
                    t[k] = ((b & 15) << 4 | b >> 4).astype(np.uint8)
        broken("sym-cutlass", "bad-nibbles", swap_nibbles, "dequantized values differ", "nibbles swapped")

        def swap_nibbles_words(t):  # the same bug on asymmetric onednn-int4 words
            for k in t:
                if k.endswith(".qweight"):
                    u = t[k].view(np.uint32)
                    t[k] = (((u & 0x0F0F0F0F) << 4) | ((u >> 4) & 0x0F0F0F0F)).view(np.int32)
        broken("asym-onednn-int4", "bad-nibbles-asym", swap_nibbles_words, "dequantized values differ",
               "nibbles swapped (asymmetric)")

        def awq_sequential(t):  # AWQ words written in plain order instead of [0,2,4,6,1,3,5,7]
            order = [0, 2, 4, 6, 1, 3, 5, 7]
            for k in list(t):
                if k.endswith(".qweight") or k.endswith(".qzeros"):
                    nib = nibbles(t[k], 8)            # nib[..., i] holds column order[i]
                    cols = np.empty_like(nib)
                    cols[..., order] = nib            # cols[..., j] = column j
                    t[k] = pack8(cols)
        broken("asym-awq", "bad-awq-order", awq_sequential, "dequantized values differ", "AWQ order lost")

        def v1_as_v2(t):  # v1 stores z - 1; a writer that took v1 zeros for v2 stores them one lower
            for k in list(t):
                if k.endswith(".qzeros"):
                    nib = nibbles(t[k], 8)
                    t[k] = pack8((nib + 1) & 15)
        broken("asym-gptq", "bad-zeros", v1_as_v2, "dequantized values differ", "v1 zeros read as v2")

        def transpose_scales(t):
            s = t[q + ".scales"]
            t[q + ".scales"] = np.ascontiguousarray(s.T).reshape(s.shape)
        broken("asym-onednn-int4", "bad-scales", transpose_scales, q + ": ", "scales transposed")

        # cutlass-int4 scales that differ from the activation dtype: a warning, not a failure.
        shutil.copytree("sym-cutlass", "dtype-warn")
        cfgp = os.path.join("dtype-warn", "config.json")
        cfg = json.load(open(cfgp))
        cfg["torch_dtype"] = "bfloat16"
        json.dump(cfg, open(cfgp, "w"))
        os.remove(os.path.join("dtype-warn", "modelprep.json"))
        p, doc = verify("dtype-warn", "cpu", "--against", "sym")
        check(p.returncode == 0 and any(f["status"] == "WARN" and f["text"] ==
              "config.json: cutlass-int4 scales are float16 but torch_dtype is bfloat16; the XPU kernels read "
              "scales as the activation dtype" for f in doc["findings"]), f"scale dtype warning: {doc['findings']}")

        # One flipped byte, with the manifest: integrity names file and tensor, numerics agree.
        for part, what in [("qweight", "weight"), ("scales", "scale")]:
            d = "flip-" + part
            shutil.copytree("asym-onednn-int4", d)
            with open(os.path.join(d, "model.safetensors"), "r+b") as f:
                n = int.from_bytes(f.read(8), "little")
                hdr = json.loads(f.read(n))
                off = 8 + n + hdr[q + "." + part]["data_offsets"][0] + 1
                f.seek(off)
                b = f.read(1)[0]
                f.seek(off)
                f.write(bytes([b ^ 0x10]))
            texts = expect_fail(d, f"tensor '{q}.{part}': xxh64", f"flipped {what} byte")
            check(any(t.startswith("integrity: model.safetensors: ") for t in texts), f"{what}: names the file")
            check(any(t.startswith("numerics: " + q) for t in texts), f"flipped {what} byte: numerics {texts}")

        # Devices that are not there: exit 3, with the reason.
        p = run("verify", "asym-gptq", "--device", "level-zero")
        check(p.returncode == 3 and "no driver (ZE_RESULT_ERROR_UNINITIALIZED)" in p.stderr,
              f"level-zero without a driver: {p.returncode} {p.stderr}")
        p = run("verify", "asym-gptq", "--device", "gpu")
        check(p.returncode == 3 and p.stderr.startswith("modelprep: --device gpu: no GPU (cuda: ") and "; level-zero: " in p.stderr,
              f"gpu without a GPU: {p.returncode} {p.stderr}")
        p = run("verify", "asym-gptq", "--device", "opencl:7")
        check(p.returncode == 3 and "opencl has 1 device(s)" in p.stderr, f"opencl:7: {p.stderr}")
        # auto without a GPU says so on the report's first lines.
        p = run("verify", "asym-gptq")
        lines = p.stdout.splitlines()
        check(p.returncode == 0 and lines[0].startswith("device:    opencl:0 ") and "(CPU;" in lines[0]
              and "no GPU found" in lines[1] and "running on the CPU" in lines[1], f"auto report: {lines[:2]}")

        p = run("devices", "--json")
        doc = json.loads(p.stdout)
        check(p.returncode == 0 and [b["name"] for b in doc["backends"]] == ["level-zero", "opencl", "cuda", "cpu"],
              "devices --json backends")
        keys = {"backend", "index", "gpu", "usable", "type", "name", "vendor", "vendor_id", "version", "driver",
                "platform", "note"}
        for b in doc["backends"]:
            check(set(b) == {"name", "usable", "status", "devices"}, f"backend keys {set(b)}")
            check(isinstance(b["usable"], bool) and isinstance(b["status"], str), "backend value types")
            for dv in b["devices"]:
                check(set(dv) == keys and dv["type"] in ("GPU", "CPU", "ACCELERATOR", "OTHER"), f"device {dv}")
        ze = doc["backends"][0]
        check(not ze["usable"] and ze["status"].endswith("present, no driver (ZE_RESULT_ERROR_UNINITIALIZED)"),
              f"level-zero status {ze['status']}")
        check(doc["backends"][3]["devices"][0]["type"] == "CPU", "cpu backend is a CPU")
    finally:
        os.chdir("/")
        shutil.rmtree(tmp, ignore_errors=True)
    summary("verify check")


if "--null-driver" in sys.argv[1:]:
    main_null_driver()
else:
    main()
