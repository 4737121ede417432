#!/usr/bin/env python3
"""No .done marker ever stands beside an incomplete layer file (issue 19).

AirLLM and RabbitLLM take NAME.safetensors.done as "this layer is complete" and then load the
file as it is. modelprep writes each marker only after its layer file is fsynced and renamed into
place, also when a killed split is resumed. Checked here:
- while uninterrupted splits run, the partial directory is listed continuously: every marker
  seen has its file, at its final size;
- SIGKILL at seeded random moments: in whatever is left (DST.partial-*, or DST), every marker's
  file holds exactly the bytes of an uninterrupted split; half of the killed runs are resumed
  (some killed again while resuming), half redone with --force, each to the same tree;
- a resumed split writes the marker of a file that was kept without one (a run killed between
  the rename and the marker) and drops a marker whose file is not kept;
- the result passes `modelprep verify --for rabbitllm`.
Run by `make test` with MP_BIN and MP_TOOLS set.
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import BIN, check, count  # noqa: E402
import safety_util  # noqa: E402
from safety_util import job_tree as tree, kill_after, mkmodel  # noqa: E402

MARK = ".safetensors.done"


def markers_honest(d, want, what):
    """Every marker in d stands beside its layer file with the complete, final bytes."""
    n = 0
    for f in os.listdir(d):
        if not f.endswith(MARK):
            continue
        layer = f[:-len(".done")]
        p = os.path.join(d, layer)
        check(os.path.exists(p), f"{what}: {f} without {layer}")
        check(open(p, "rb").read() == want[layer], f"{what}: {f} beside an incomplete or wrong {layer}")
        n += 1
    return n


def partials(tmp, base):
    return [os.path.join(tmp, f) for f in safety_util.partials(tmp, base)]


def watch(tmp, argv, want):
    """Runs a split to completion while listing its partial directory; returns markers seen."""
    p = subprocess.Popen([BIN, *argv, "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = set()
    while p.poll() is None:
        for d in partials(tmp, "out"):
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue  # committed meanwhile
            for f in names:
                if not f.endswith(MARK) or f in seen:
                    continue
                try:
                    size = os.path.getsize(os.path.join(d, f[:-len(".done")]))
                except FileNotFoundError:
                    if os.path.isdir(d):
                        check(False, f"while splitting: {f} without its file")
                    continue
                check(size == len(want[f[:-len(".done")]]), f"while splitting: {f} beside a file of {size} bytes")
                seen.add(f)
    check(p.returncode == 0, f"watched split: {p.stderr.read()}")
    return len(seen)


def main():
    rng = random.Random(19)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        mkmodel(src, "--layers", "12", "--hidden", "512", "--intermediate", "1408", "--vocab", "4096", "--tied",
                "--max-shard-size", "3000000")
        ref = os.path.join(tmp, "ref")
        t0 = time.monotonic()
        check(subprocess.run([BIN, "split", src, ref, "--quiet"]).returncode == 0, "reference split")
        full = time.monotonic() - t0
        want = tree(ref)
        n_layers = sum(f.endswith(".safetensors") for f in want)
        check(markers_honest(ref, want, "reference") == n_layers == 15, f"a marker per layer file: {sorted(want)}")
        r = subprocess.run([BIN, "verify", ref, "--device", "cpu", "--rows", "2"], capture_output=True, text=True)
        check(r.returncode == 0 and "checked for RabbitLLM" in r.stdout, f"verify the reference: {r.stdout}{r.stderr}")

        dst = os.path.join(tmp, "out")
        seen = 0
        for _ in range(3):
            seen += watch(tmp, ["split", src, dst], want)
            check(tree(dst) == want, "a watched split equals the reference")
            shutil.rmtree(dst)
        check(seen > 0, "the watcher saw markers appear in the partial directory")

        kills = resumed = 0
        for i in range(24):
            kills += kill_after(["split", src, dst], rng.uniform(0, full * 1.1))
            for d in partials(tmp, "out") + ([dst] if os.path.exists(dst) else []):
                markers_honest(d, want, f"kill {i}")
            if os.path.exists(dst):
                check(tree(dst) == want, f"kill {i}: DST exists but differs from the reference")
            elif i % 2 == 0 and partials(tmp, "out"):
                if i % 4 == 0:  # killed again while resuming
                    kill_after(["split", src, dst, "--resume"], rng.uniform(0, full * 0.8))
                    for d in partials(tmp, "out") + ([dst] if os.path.exists(dst) else []):
                        markers_honest(d, want, f"kill {i}, then during --resume")
                if not os.path.exists(dst):
                    r = subprocess.run([BIN, "split", src, dst, "--quiet", "--resume"], capture_output=True, text=True)
                    check(r.returncode == 0, f"resume after kill {i}: {r.stderr}")
                    resumed += 1
                check(tree(dst) == want, f"kill {i}: the resumed split differs from the reference")
            else:
                r = subprocess.run([BIN, "split", src, dst, "--quiet", "--force"], capture_output=True, text=True)
                check(r.returncode == 0 and tree(dst) == want, f"kill {i}: --force redoes it: {r.stderr}")
            shutil.rmtree(dst, ignore_errors=True)
            for d in partials(tmp, "out"):
                shutil.rmtree(d)
        check(kills >= 8 and resumed >= 3, f"a third of the runs killed mid-way ({kills}), some resumed ({resumed})")

        # A kept file without its marker, and a marker whose file is not kept: --resume repairs both.
        for delay in (0.5, 0.7, 0.9, 0.4, 0.6, 0.8, 0.3, 0.95, 0.55, 0.65):
            kill_after(["split", src, dst], full * delay)
            if os.path.exists(dst):
                shutil.rmtree(dst)
                continue
            part = partials(tmp, "out")[0]
            done = sorted(f for f in os.listdir(part) if f.endswith(MARK))
            if not done:
                shutil.rmtree(part)
                continue
            os.unlink(os.path.join(part, done[0]))
            open(os.path.join(part, "model.layers.11" + MARK), "w").close()
            if os.path.exists(os.path.join(part, "model.layers.11.safetensors")):
                os.unlink(os.path.join(part, "model.layers.11.safetensors"))
            r = subprocess.run([BIN, "split", src, dst, "--quiet", "--resume"], capture_output=True, text=True)
            check(r.returncode == 0 and tree(dst) == want, f"resume repairs the markers: {r.stderr}")
            shutil.rmtree(dst)
            break
        else:
            check(False, "no kill left a partial split with markers to repair")
    print(f"split markers ok: {count()} checks passed ({kills} runs killed mid-way, {resumed} resumed, "
          f"{seen} markers watched appearing)")


if __name__ == "__main__":
    main()
