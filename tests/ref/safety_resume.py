#!/usr/bin/env python3
"""Issue 14, class 2: `split --resume` continues only the same job (doc/safety.md §3). A partial
split is resumed with another source, other options, a changed config, a source with other
files, a journal that was tampered with, and a one-byte change in one shard (with and without
its modification time restored): each is refused naming what differs (exit 4, nothing removed)
or, where the journal's identity still holds, the files made from changed source bytes are
written again, so the result always equals a fresh split. `verify` checks every tensor the
manifest records as copied against the source, dense ones included.
Run by `make test` (tests/unit/test_safety.c) with MP_BIN and MP_TOOLS set.
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import check  # noqa: E402
from safety_util import (interrupted_split, journaled, mkmodel, one_line, partials, run, same_files,  # noqa: E402
                         snapshot, summary)

SHARD1 = "model-00001-of-00004.safetensors"


def refused(tmp, src, dst, args, *needles):
    """Resuming dst's partial split from src with args is refused naming the difference; the
    partial directory is left exactly as it was and no DST appears."""
    p = os.path.join(tmp, partials(tmp, os.path.basename(dst))[0])
    before = snapshot(p)
    r = run("split", src, dst, "--resume", "--quiet", *args)
    check(one_line(r, 4, os.path.basename(p), "belongs to another job", "nothing was removed", *needles),
          f"resume of {src} {args} over another job: exit {r.returncode}: {r.stderr}")
    check(snapshot(p) == before and not os.path.exists(dst), f"{src} {args}: the partial split is untouched")
    shutil.rmtree(p)


def flip_byte(path, keep_mtime):
    st = os.stat(path)
    b = bytearray(open(path, "rb").read())
    b[-3] ^= 0x01  # tensor data: the header, and so the header hash, stays the same
    open(path, "wb").write(bytes(b))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    else:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1000000000))


def other_jobs(tmp, a, b):
    d = os.path.join(tmp, "d")
    interrupted_split(a, d)
    refused(tmp, b, d, [], f"source file '{SHARD1}' changed since (its modification time differs)")
    interrupted_split(a, d, "--compress", "zstd:3")
    refused(tmp, a, d, [], "option compress was 'zstd:3', now 'none'")
    interrupted_split(a, d)
    refused(tmp, a, d, ["--compress", "zstd:1"], "option compress was 'none', now 'zstd:1'")
    interrupted_split(a, d)
    refused(tmp, a, d, ["--materialize-tied"], "option materialize-tied was 'no', now 'yes'")
    # --for decides the markers and RabbitLLM's empty head: another runtime is another job.
    interrupted_split(a, d, "--for", "airllm")
    refused(tmp, a, d, [], "option for was 'airllm', now 'rabbitllm'")
    interrupted_split(a, d)
    refused(tmp, a, d, ["--for", "plain"], "option for was 'rabbitllm', now 'plain'")
    interrupted_split(a, d, "--for", "plain")
    refused(tmp, a, d, ["--for", "airllm"], "option for was 'plain', now 'airllm'")
    few = mkmodel(os.path.join(tmp, "few"), "--layers", "4", "--seed", "1", "--max-shard-size", "900000")
    interrupted_split(a, d)
    refused(tmp, few, d, [], "other source files")
    # config.json decides the tied head: a changed config is another job.
    cfg = os.path.join(tmp, "cfg")
    shutil.copytree(a, cfg)
    interrupted_split(cfg, d)
    c = json.load(open(os.path.join(cfg, "config.json")))
    c["tie_word_embeddings"] = not c.get("tie_word_embeddings", False)
    json.dump(c, open(os.path.join(cfg, "config.json"), "w"))
    refused(tmp, cfg, d, [], "source file 'config.json' changed since")
    # A shard whose byte changed and whose mtime moved: refused, naming the shard and the mtime.
    interrupted_split(cfg, d)
    flip_byte(os.path.join(cfg, SHARD1), keep_mtime=False)
    refused(tmp, cfg, d, [], f"source file '{SHARD1}' changed since (its modification time differs)")


def changed_bytes_same_identity(tmp, a):
    """One byte of one shard changes and its mtime is put back: names, sizes, mtimes and
    headers all match, so the job is the same; the journal's source digest catches the files
    made from the changed bytes, which are written again; the result equals a fresh split."""
    src = os.path.join(tmp, "flip")
    shutil.copytree(a, src)
    d = os.path.join(tmp, "d-flip")
    p = interrupted_split(src, d, budget=1700000)
    kept = journaled(p)
    check("model.embed_tokens.safetensors" in kept and len(kept) >= 3, f"journaled: {kept}")
    flip_byte(os.path.join(src, SHARD1), keep_mtime=True)
    r = run("split", src, d, "--resume")
    check(r.returncode == 0, f"resume after a silent one-byte change: {r.stderr}")
    redone = [ln for ln in r.stderr.splitlines() if "source bytes that have changed" in ln]
    check(len(redone) >= 1 and all("writing it again" in ln for ln in redone), f"the changed files are named: {r.stderr}")
    check(f"resumed: {len(kept) - len(redone)} files kept" in r.stdout, f"kept the others: {r.stdout}")
    fresh = os.path.join(tmp, "fresh-flip")
    check(run("split", src, fresh, "--quiet").returncode == 0, "fresh split of the changed source")
    check(same_files(d, fresh), "the resumed split equals a fresh split of the source as it is now")
    r = run("verify", d, "--device", "cpu")
    check(r.returncode == 0, f"verify passes the resumed split: {r.stdout[-400:]}")


def tampered_journal(tmp, a, want):
    d = os.path.join(tmp, "d-tamper")
    # A file record whose hash no longer matches the file: that file is redone, the rest kept.
    p = interrupted_split(a, d)
    kept = journaled(p)
    jp = os.path.join(p, ".modelprep-journal")
    lines = open(jp).read().splitlines(True)
    i = next(k for k, ln in enumerate(lines) if ln.startswith("file "))
    f = lines[i].split(" ")
    f[3] = "0" * 32
    lines[i] = " ".join(f)
    open(jp, "w").write("".join(lines))
    r = run("split", a, d, "--resume")
    check(r.returncode == 0 and f"resumed: {len(kept) - 1} files kept" in r.stdout, f"tampered record: {r.stdout} {r.stderr}")
    check(same_files(d, want), "byte-identical to an uninterrupted split")
    shutil.rmtree(d)
    # Malformed journals are refused naming the journal and the line.
    for name, edit, why in (("garbage", lambda t: "not a journal\n" + t, "no modelprep journal"),
                            ("torn magic", lambda t: "modelprep-journal 2\n" + t.split("\n", 1)[1], "no modelprep journal"),
                            ("no command", lambda t: t.replace("command split\n", "", 1), "no command record"),
                            ("bad size", lambda t: t.replace(" 601144 ", " 60114x ", 1), "line 7: bad source record"),
                            ("negative size", lambda t: t.replace(" 601144 ", " -601144 ", 1), "line 7: bad source record"),
                            ("overflow", lambda t: t.replace(" 601144 ", " 184467440737095516160 ", 1),
                             "line 7: bad source record"),
                            ("escape", lambda t: t + "file ../x 1 " + "0" * 32 + " plain " + "0" * 32 + "\n",
                             "bad file record"),
                            ("unknown", lambda t: t + "delete /etc\n", "unknown record")):
        p = interrupted_split(a, d)
        jp = os.path.join(p, ".modelprep-journal")
        text = edit(open(jp).read())
        open(jp, "w").write(text)
        before = snapshot(p)
        r = run("split", a, d, "--resume", "--quiet")
        check(one_line(r, 4, ".modelprep-journal", why), f"journal with {name}: {r.stderr}")
        check(snapshot(p) == before, f"journal with {name}: nothing removed")
        shutil.rmtree(p)


def mixed_outputs(tmp, a, b, name, culprit):
    """An output whose manifest names source b but that holds one of a's files, with that
    file's hashes in the manifest (what a resume that mixed two jobs left): integrity alone
    passes; verify must still fail, naming the tensor, because it checks the source's bytes."""
    da, db, mixed = (os.path.join(tmp, f"{name}-{x}") for x in ("a", "b", "mixed"))
    check(run("split", a, da, "--quiet").returncode == 0 and run("split", b, db, "--quiet").returncode == 0, "splits")
    shutil.copytree(db, mixed)
    shutil.copy(os.path.join(da, culprit), os.path.join(mixed, culprit))
    ma, mm = json.load(open(os.path.join(da, "modelprep.json"))), json.load(open(os.path.join(mixed, "modelprep.json")))
    fa = {f["name"]: f for f in ma["files"]}
    ta = {t["name"]: t for t in ma["tensors"]}
    mm["files"] = [fa[f["name"]] if f["name"] == culprit else f for f in mm["files"]]
    mm["tensors"] = [ta[t["name"]] if t["file"] == culprit else t for t in mm["tensors"]]
    json.dump(mm, open(os.path.join(mixed, "modelprep.json"), "w"), indent=2)
    r = run("verify", db, "--device", "cpu")
    check(r.returncode == 0, f"{name}: the honest output passes: {r.stdout[-300:]}")
    r = run("verify", mixed, "--device", "cpu")
    tensors = [t["name"] for t in ma["tensors"] if t["file"] == culprit]
    check(r.returncode == 1, f"{name}: a mixed output fails: {r.stdout[-500:]}")
    for t in tensors:
        check(f"FAIL integrity: tensor '{t}': xxh64" in r.stdout and "does not hold the source's bytes" in r.stdout,
              f"{name}: '{t}' is named: {r.stdout[-800:]}")
    check("xxh3-128" not in r.stdout, f"{name}: the files' own hashes match their manifest: {r.stdout[-500:]}")


def wrong_manifest_hash(tmp, a):
    """A manifest whose file hashes hold but whose xxh64 of a copied tensor is wrong: verify
    says that the manifest, not the tensor, is wrong."""
    d = os.path.join(tmp, "wrong-hash")
    check(run("split", a, d, "--quiet").returncode == 0, "split")
    m = json.load(open(os.path.join(d, "modelprep.json")))
    t = next(t for t in m["tensors"] if t["name"] == "model.norm.weight")
    t["xxh64"] = "0123456789abcdef"
    json.dump(m, open(os.path.join(d, "modelprep.json"), "w"), indent=2)
    r = run("verify", d, "--device", "cpu")
    check(r.returncode == 1 and "FAIL integrity: tensor 'model.norm.weight': the manifest's xxh64 0123456789abcdef is "
          "wrong: the tensor holds the source's bytes" in r.stdout, f"wrong manifest hash: {r.stdout[-600:]}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        a = mkmodel(os.path.join(tmp, "a"), "--layers", "4", "--seed", "1", "--max-shard-size", "600000")
        b = mkmodel(os.path.join(tmp, "b"), "--layers", "4", "--seed", "2", "--max-shard-size", "600000")
        want = os.path.join(tmp, "want")
        check(run("split", a, want, "--quiet").returncode == 0, "reference split")
        # The control: the same job resumes to the bytes of an uninterrupted split.
        d = os.path.join(tmp, "same")
        interrupted_split(a, d)
        r = run("split", a, d, "--resume")
        check(r.returncode == 0 and "resumed: " in r.stdout and same_files(d, want), f"same job: {r.stderr}")
        other_jobs(tmp, a, b)
        changed_bytes_same_identity(tmp, a)
        tampered_journal(tmp, a, want)
        mixed_outputs(tmp, a, b, "gptq", "model.embed_tokens.safetensors")
        mixed_outputs(tmp, a, b, "gptq-norm", "model.norm.safetensors")
        da = mkmodel(os.path.join(tmp, "dense-a"), "--layers", "2", "--seed", "3", "--dense-bf16")
        db = mkmodel(os.path.join(tmp, "dense-b"), "--layers", "2", "--seed", "4", "--dense-bf16")
        mixed_outputs(tmp, da, db, "bf16", "model.layers.1.safetensors")
        wrong_manifest_hash(tmp, a)
    summary("safety resume")


if __name__ == "__main__":
    main()
