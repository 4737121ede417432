#!/usr/bin/env python3
"""Issue 14, class 1: modelprep never follows a symbolic link for anything it creates, removes
or resumes (doc/safety.md §2). Symbolic links are put at every path component of DST and of the
partial directory, and inside a partial directory; a partial directory that is not a real
directory of this user marked by its journal is refused (exit 4), nothing removed. After every
case the victim directory, which holds files named like the ones modelprep writes, is unchanged.
Run by `make test` (tests/unit/test_safety.c) with MP_BIN and MP_TOOLS set.
"""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import check  # noqa: E402
from safety_util import (interrupted_split, journaled, mkmodel, one_line, partials, run, same_files, skip,  # noqa: E402
                         snapshot, summary)


def make_victim(tmp):
    v = os.path.join(tmp, "victim")
    os.makedirs(os.path.join(v, "sub"))
    for n in ("precious.txt", "model.layers.0.safetensors", ".modelprep-journal", "modelprep.json", "sub/keep"):
        with open(os.path.join(v, n), "w") as f:
            f.write(f"victim's {n}\n")
    return v


def partial_links(tmp, m, victim, want):
    """DST.partial-* is a symbolic link (to a directory, to a file, dangling): --resume and
    --force refuse it naming it, a plain run leaves it alone; the link and its target stay."""
    targets = {"dir": victim, "file": os.path.join(victim, "precious.txt"), "dangling": os.path.join(tmp, "nowhere")}
    for kind, target in targets.items():
        for cmd, flags, code in ((["split"], ["--resume"], 4), (["split"], ["--force"], 4),
                                 (["convert"], ["--to", "f16", "--force"], 4), (["split"], [], 0)):
            dst = os.path.join(tmp, f"out-{kind}")
            link = dst + ".partial-evil1"
            os.symlink(target, link)
            r = run(cmd[0], m, dst, "--quiet", *flags)
            what = f"{cmd[0]} {' '.join(flags)} with {os.path.basename(link)} -> {kind}"
            if code:
                check(one_line(r, 4, os.path.basename(link), "symbolic link", "nothing was removed"),
                      f"{what}: exit {r.returncode}: {r.stderr}")
                check(not os.path.exists(dst), f"{what}: no DST")
            else:
                check(r.returncode == 0 and "is a symbolic link" in r.stderr and "left alone" in r.stderr,
                      f"{what}: a plain run notes the link and goes on: {r.returncode}: {r.stderr}")
                check(same_files(dst, want), f"{what}: the split is complete")
                shutil.rmtree(dst)
            check(os.path.islink(link) and os.readlink(link) == target, f"{what}: the link is still there")
            check(snapshot(targets["dir"]) == victim_state, f"{what}: the victim is unchanged")
            os.unlink(link)


def partial_contents(tmp, m, victim):
    """A real partial directory with a link inside: a journal that is a link, a layer file that
    is a link, a subdirectory; each is refused by --resume naming it, nothing removed."""
    dst = os.path.join(tmp, "inside")
    cases = []
    p = interrupted_split(m, dst)
    done = journaled(p)
    check(len(done) >= 2, f"the interrupted split finished some files: {done}")
    os.unlink(os.path.join(p, done[0]))
    os.symlink(os.path.join(victim, "model.layers.0.safetensors"), os.path.join(p, done[0]))
    cases.append((p, done[0], "not a regular file"))
    for p, name, why in cases:
        before = snapshot(p)
        for flags in (["--resume"], ["--resume", "--force"]):
            r = run("split", m, dst, "--quiet", *flags)
            check(one_line(r, 4, name, why, "nothing was removed"), f"link '{name}' in a partial {flags}: {r.stderr}")
            check(snapshot(p) == before and snapshot(victim) == victim_state, f"{name} {flags}: nothing changed")
        shutil.rmtree(p)
    # The journal itself a link to a file that reads as a journal: not followed, so not marked.
    p = interrupted_split(m, dst)
    shutil.copy(os.path.join(p, ".modelprep-journal"), os.path.join(victim, "journal-copy"))
    os.unlink(os.path.join(p, ".modelprep-journal"))
    os.symlink(os.path.join(victim, "journal-copy"), os.path.join(p, ".modelprep-journal"))
    before, vbefore = snapshot(p), snapshot(victim)
    for flags in (["--resume"], ["--force"]):
        r = run("split", m, dst, "--quiet", *flags)
        check(one_line(r, 4, os.path.basename(p), "no modelprep journal", "nothing was removed"),
              f"journal link {flags}: {r.stderr}")
        check(snapshot(p) == before and snapshot(victim) == vbefore, f"journal link {flags}: nothing changed")
    shutil.rmtree(p)
    os.unlink(os.path.join(victim, "journal-copy"))


def foreign_partials(tmp, m):
    """A real directory that is not modelprep's (no journal, files in it), or not this user's:
    --resume and --force refuse it, a plain run notes it and leaves it."""
    dst = os.path.join(tmp, "foreign")
    p = dst + ".partial-abc123"
    os.makedirs(p)
    with open(os.path.join(p, "model.layers.0.safetensors"), "w") as f:
        f.write("someone else's\n")
    before = snapshot(p)
    for flags, code in ((["--resume"], 4), (["--force"], 4), ([], 0)):
        r = run("split", m, dst, "--quiet", *flags)
        if code:
            check(one_line(r, 4, "partial-abc123", "no modelprep journal", "nothing was removed"),
                  f"foreign partial {flags}: {r.stderr}")
        else:
            check(r.returncode == 0 and "left alone" in r.stderr, f"foreign partial, plain run: {r.stderr}")
            shutil.rmtree(dst)
        check(snapshot(p) == before, f"foreign partial {flags}: untouched")
    shutil.rmtree(p)
    if os.geteuid() != 0:
        skip("a partial directory owned by another user needs root to chown it")
        return
    p = interrupted_split(m, dst)
    os.chown(p, 65534, 65534)
    before = snapshot(p)
    for flags in (["--resume"], ["--force"]):
        r = run("split", m, dst, "--quiet", *flags)
        check(one_line(r, 4, "belongs to user 65534", "nothing was removed"), f"other user's partial {flags}: {r.stderr}")
        check(snapshot(p) == before, f"other user's partial {flags}: untouched")
    shutil.rmtree(p)


def dst_links(tmp, m, victim, want):
    """DST itself a link (to the victim, to a modelprep output, to a file): refused with or
    without --force, no hint to use --force, the link and its target unchanged."""
    real_out = os.path.join(tmp, "real-out")
    check(run("convert", m, real_out, "--to", "f16", "--quiet").returncode == 0, "a modelprep output to link to")
    out_state = snapshot(real_out)
    for target in (victim, real_out, os.path.join(victim, "precious.txt")):
        link = os.path.join(tmp, "dst-link")
        os.symlink(target, link)
        for flags in ([], ["--force"]):
            r = run("convert", m, link, "--to", "f16", "--quiet", *flags)
            check(one_line(r, 2, "dst-link", "is a symbolic link", "remove it yourself") and "use --force" not in r.stderr,
                  f"DST link to {target} {flags}: {r.stderr}")
            check(os.readlink(link) == target and snapshot(victim) == victim_state and snapshot(real_out) == out_state,
                  f"DST link to {target} {flags}: nothing changed")
            check(not partials(tmp, "dst-link"), "no partial directory left")
        os.unlink(link)


def parent_links(tmp, m, victim, want):
    """A link among DST's folders is the user's path and is used as such: the output lands
    inside the target, nothing else there changes; a link that leads into the source is
    refused (exit 2); a missing folder is named."""
    vlink = os.path.join(tmp, "vlink")
    os.symlink(victim, vlink)
    r = run("split", m, os.path.join(vlink, "sub", "deep-out"), "--quiet")
    check(r.returncode == 0 and same_files(os.path.join(victim, "sub", "deep-out"), want), f"split through a link: {r.stderr}")
    shutil.rmtree(os.path.join(victim, "sub", "deep-out"))
    check(snapshot(victim) == victim_state, "the link's target holds only the new output, now removed")
    mlink = os.path.join(tmp, "mlink")
    os.symlink(m, mlink)
    msnap = snapshot(m)
    for dst in (os.path.join(mlink, "out"), mlink, os.path.join(tmp, "vlink", "..", "m")):
        for flags in ([], ["--force"]):
            r = run("split", m, dst, "--quiet", *flags)
            check(one_line(r, 2, "the source") and "use --force" not in r.stderr, f"split into {dst} {flags}: {r.stderr}")
            check(snapshot(m) == msnap, f"split into {dst} {flags}: the source is unchanged")
    r = run("convert", m, os.path.join(vlink, "no", "such", "out"), "--to", "f16", "--quiet")
    check(one_line(r, 5, "folder '" + os.path.join(vlink, "no") + "' does not exist"), f"missing folder: {r.stderr}")
    os.unlink(vlink)
    os.unlink(mlink)


victim_state = None


def main():
    global victim_state
    with tempfile.TemporaryDirectory() as tmp:
        m = mkmodel(os.path.join(tmp, "m"), "--layers", "4", "--max-shard-size", "600000")
        want = os.path.join(tmp, "want")
        check(run("split", m, want, "--quiet").returncode == 0, "reference split")
        victim = make_victim(tmp)
        victim_state = snapshot(victim)
        partial_links(tmp, m, victim, want)
        partial_contents(tmp, m, victim)
        foreign_partials(tmp, m)
        dst_links(tmp, m, victim, want)
        parent_links(tmp, m, victim, want)
        check(snapshot(victim) == victim_state, "the victim is unchanged at the end")
    summary("safety symlinks")


if __name__ == "__main__":
    main()
