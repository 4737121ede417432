#!/usr/bin/env python3
"""Issue 14, class 3: a destination that is a source, contains one or lies inside one (after
resolving links) is refused before anything is removed, whatever the flags, with no hint that
would lose data; --force replaces only a modelprep output or an empty directory, and refuses
anything else naming it (doc/safety.md §4).
Run by `make test` (tests/unit/test_safety.c) with MP_BIN and MP_TOOLS set.
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import TOOLS, check  # noqa: E402
from safety_util import mkmodel, one_line, partials, run, snapshot, summary  # noqa: E402


def overlapping(tmp):
    p = os.path.join(tmp, "P")
    os.makedirs(p)
    s = mkmodel(os.path.join(p, "model"), "--layers", "2", "--max-shard-size", "400000")
    single = mkmodel(os.path.join(tmp, "single"), "--layers", "1")
    os.symlink(s, os.path.join(tmp, "alias"))
    # A Hugging Face cache: the snapshot's files are links into blobs/.
    hub = os.path.join(tmp, "hub", "models--org--m")
    blobs, snap = os.path.join(hub, "blobs"), os.path.join(hub, "snapshots", "rev1")
    os.makedirs(blobs)
    os.makedirs(snap)
    for n in os.listdir(single):
        shutil.copy(os.path.join(single, n), os.path.join(blobs, "blob-" + n))
        os.symlink(os.path.join("..", "..", "blobs", "blob-" + n), os.path.join(snap, n))
    gguf = os.path.join(tmp, "g")
    os.makedirs(gguf)
    r = run("convert", single, os.path.join(tmp, "single-f16"), "--to", "f16", "--quiet")
    check(r.returncode == 0, f"a dense checkpoint: {r.stderr}")
    cases = [  # (command, SRC, DST, how)
        ("convert", s, s, "is"), ("split", s, s, "is"), ("convert", s, p, "contains"), ("split", s, p, "contains"),
        ("convert", s, os.path.join(s, "out"), "lies inside"), ("split", s, os.path.join(s, "..", "model"), "is"),
        ("convert", os.path.join(single, "model.safetensors"), single, "contains"),
        ("split", os.path.join(single, "model.safetensors"), os.path.join(single, "model.safetensors"), "is"),
        ("convert", s, os.path.join(tmp, "alias"), "is"), ("split", os.path.join(tmp, "alias"), p, "contains"),
        ("convert", s, s + "/", "is"), ("split", s, tmp, "contains"),
        ("convert", snap, blobs, "contains"), ("split", snap, hub, "contains"),
        ("convert", os.path.join(snap, "model.safetensors"), os.path.join(blobs, "blob-model.safetensors"), "is"),
    ]
    for cmd, src, dst, how in cases:
        watched = tmp
        before = snapshot(watched)
        for flags in ([], ["--force"], ["--force", "--quiet"]) + ((["--resume", "--force"],) if cmd == "split" else ()):
            extra = ["--to", "f16"] if cmd == "convert" else []
            r = run(cmd, src, dst, *extra, *flags)
            what = f"{cmd} {os.path.relpath(src, tmp)} {os.path.relpath(dst, tmp)} {flags}"
            check(one_line(r, 2, f"destination {how} the source", "nothing was changed"), f"{what}: {r.stderr}")
            check("use --force" not in r.stderr and r.stdout == "", f"{what}: no hint that loses data: {r.stderr}")
            check(snapshot(watched) == before, f"{what}: nothing changed")


def force_rules(tmp):
    s = mkmodel(os.path.join(tmp, "src"), "--layers", "1")
    out = os.path.join(tmp, "out")
    # Things that are not modelprep outputs: refused with or without --force, named, untouched.
    def make_dir():
        os.makedirs(out)
        open(os.path.join(out, "notes.txt"), "w").write("mine\n")

    def make_file():
        open(out, "w").write("a file\n")

    def make_fake_manifest():
        os.makedirs(out)
        json.dump({"tool": "other"}, open(os.path.join(out, "modelprep.json"), "w"))

    def make_manifest_link():
        os.makedirs(out)
        real = os.path.join(tmp, "real-manifest.json")
        json.dump({"tool": "modelprep"}, open(real, "w"), indent=2)
        os.symlink(real, os.path.join(out, "modelprep.json"))

    for name, make, what in (("a directory of the user's", make_dir, "is not a modelprep output"),
                             ("a file", make_file, "is not a directory"),
                             ("another tool's modelprep.json", make_fake_manifest, "is not a modelprep output"),
                             ("a manifest that is a link", make_manifest_link, "is not a modelprep output")):
        make()
        before = snapshot(out)
        # (--resume with nothing to resume: the same description, never "use --force")
        for cmd in (["convert", s, out, "--to", "f16"], ["split", s, out], ["split", s, out, "--resume"]):
            for flags in ([], ["--force"]):
                r = run(*cmd, *flags)
                check(one_line(r, 2, "out: destination exists and " + what, "remove it yourself") and
                      "use --force" not in r.stderr, f"{cmd[0]} into {name} {flags}: {r.stderr}")
                check(snapshot(out) == before and not partials(tmp, "out"), f"{cmd[0]} into {name} {flags}: untouched")
        if os.path.isdir(out) and not os.path.islink(out):
            shutil.rmtree(out)
        else:
            os.unlink(out)
    # An empty directory and a modelprep output are replaced under --force, and only then
    # does the message suggest it.
    os.makedirs(out)
    r = run("convert", s, out, "--to", "f16")
    check(one_line(r, 2, "destination exists; use --force to replace it"), f"empty DST without --force: {r.stderr}")
    r = run("convert", s, out, "--to", "f16", "--force", "--quiet")
    check(r.returncode == 0 and os.path.exists(os.path.join(out, "modelprep.json")), f"empty DST --force: {r.stderr}")
    open(os.path.join(out, "stale"), "w").write("x")
    r = run("split", s, out)
    check(one_line(r, 2, "destination exists; use --force to replace it"), f"modelprep output without --force: {r.stderr}")
    r = run("split", s, out, "--force", "--quiet")
    check(r.returncode == 0 and not os.path.exists(os.path.join(out, "stale")), f"modelprep output --force: {r.stderr}")
    check(sorted(f for f in os.listdir(tmp) if f.startswith("out")) == ["out"], "nothing left beside DST")


def missing_folder(tmp):
    s = os.path.join(tmp, "src")
    for dst, missing in ((os.path.join(tmp, "a", "b", "out"), os.path.join(tmp, "a")),
                         (os.path.join(tmp, "src", "nope", "out"), os.path.join(tmp, "src", "nope")),
                         (os.path.join(tmp, "src", "config.json", "out"), None)):
        for cmd in (["convert", s, dst, "--to", "f16"], ["split", s, dst]):
            r = run(*cmd)
            if missing:
                check(one_line(r, 5, f"folder '{missing}' does not exist"), f"{cmd[0]} into {dst}: {r.stderr}")
            else:
                check(one_line(r, 5, "cannot open the folder", "Not a directory"), f"{cmd[0]} into {dst}: {r.stderr}")
    check(not os.path.exists(os.path.join(tmp, "a")), "no folder was created")


def main():
    check(os.path.isdir(TOOLS), "MP_TOOLS")
    with tempfile.TemporaryDirectory() as tmp:
        overlapping(tmp)
        force_rules(tmp)
        missing_folder(tmp)
    summary("safety overlap")


if __name__ == "__main__":
    main()
