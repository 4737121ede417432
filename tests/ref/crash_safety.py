#!/usr/bin/env python3
"""Crash safety and disk-full behaviour of `convert` and `split` (issue 8).

- SIGKILL at 116 pseudo-random moments (seeded) during convert --to onednn-int4, convert --to f16,
  split and split --compress zstd:3 of a synthetic model. Afterwards exactly one of two things
  holds: no DST exists (at most a DST.partial-* that the next run reports, and --force removes),
  or DST is complete and byte-identical to an uninterrupted run. A killed split resumes
  (--resume) to the same bytes.
- Disk full (an LD_PRELOAD shim makes write(2) fail with ENOSPC after N bytes) at several points:
  exit 5, one line naming the file, the bytes written and the bytes needed, nothing left behind.
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
from mp_check import BIN, TOOLS, check, count  # noqa: E402
from safety_util import job_tree as tree, kill_after, mkmodel, partials  # noqa: E402


def main():
    rng = random.Random(8)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        mkmodel(src, "--layers", "6", "--hidden", "512", "--intermediate", "1408", "--vocab", "4096",
                "--max-shard-size", "3000000")
        jobs = [("onednn", ["convert", src, None, "--to", "onednn-int4"]),
                ("f16", ["convert", src, None, "--to", "f16"]),
                ("split", ["split", src, None]),
                ("split-zst", ["split", src, None, "--compress", "zstd:3"])]
        kills = {name: 0 for name, _ in jobs}
        for name, argv in jobs:
            ref = os.path.join(tmp, f"ref-{name}")
            a = [x if x is not None else ref for x in argv]
            t0 = time.monotonic()
            check(subprocess.run([BIN, *a, "--quiet"]).returncode == 0, f"{name}: reference run")
            full = time.monotonic() - t0
            want = tree(ref)
            for i in range({"split": 32, "split-zst": 16}.get(name, 34)):
                dst = os.path.join(tmp, f"out-{name}")
                a = [x if x is not None else dst for x in argv]
                kills[name] += kill_after(a, rng.uniform(0, full * 1.1))
                if os.path.exists(dst):
                    check(tree(dst) == want, f"{name} kill {i}: DST exists but differs from a complete run")
                else:
                    left = partials(tmp, f"out-{name}")
                    if name.startswith("split") and left and i % 2 == 0:
                        r = subprocess.run([BIN, *a, "--quiet", "--resume"], capture_output=True, text=True)
                        check(r.returncode == 0, f"split resume after kill {i}: {r.stderr}")
                        check(tree(dst) == want, f"split kill {i}: resumed output differs")
                    elif left:
                        r = subprocess.run([BIN, *a, "--quiet"], capture_output=True, text=True)
                        check(r.returncode == 0 and "was left by an interrupted run" in r.stderr,
                              f"{name} kill {i}: the next run reports the partial output: {r.stderr}")
                        r = subprocess.run([BIN, *a, "--quiet", "--force"], capture_output=True, text=True)
                        check(r.returncode == 0 and "removed" in r.stderr, f"{name}: --force cleans up: {r.stderr}")
                        check(tree(dst) == want, f"{name} kill {i}: rerun differs")
                        check(not partials(tmp, f"out-{name}"), f"{name}: no partial after --force")
                shutil.rmtree(dst, ignore_errors=True)
                for f in partials(tmp, f"out-{name}"):
                    shutil.rmtree(os.path.join(tmp, f))
        check(sum(kills.values()) >= 60, f"most runs were killed while running: {kills}")

        # Disk full at several points of each job.
        shim = os.path.join(TOOLS, "libenospc.so")
        env = dict(os.environ, LD_PRELOAD=shim, ASAN_OPTIONS="verify_asan_link_order=0")
        for name, argv in jobs:
            for budget in (0, 4096, 1000000, 5000000):
                dst = os.path.join(tmp, f"full-{name}")
                a = [x if x is not None else dst for x in argv]
                r = subprocess.run([BIN, *a, "--quiet"], capture_output=True, text=True,
                                   env=dict(env, MP_ENOSPC_AFTER=str(budget)))
                check(r.returncode == 5, f"{name} disk full at {budget}: exit {r.returncode}: {r.stderr}")
                check(r.stderr.count("\n") == 1 and "No space left on device" in r.stderr,
                      f"{name} disk full at {budget}: {r.stderr}")
                check(not os.path.exists(dst) and not partials(tmp, f"full-{name}"),
                      f"{name} disk full at {budget}: something was left behind")
                if budget >= 4096:
                    check("bytes written" in r.stderr and ".safetensors" in r.stderr,
                          f"{name}: the message names the file and the bytes: {r.stderr}")
    print(f"crash safety ok: {count()} checks passed ({sum(kills.values())} runs killed mid-way)")


if __name__ == "__main__":
    main()
