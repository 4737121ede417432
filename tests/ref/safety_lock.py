#!/usr/bin/env python3
"""Issue 14, class 7: a run holds a lock (flock) on its partial directory for as long as it
lives; no other run (--resume, --force, or a plain one into the same DST) removes or reuses a
locked one, and the message says that another run is using it (doc/safety.md §5). The lock is
held by this script (flock, as another modelprep would), then by a real run that is stopped
mid-way (SIGSTOP), continued, or killed (SIGKILL) while another run waits for it: the kernel
drops the lock of a dead run, and the waiting run then resumes to the bytes of an uninterrupted
split.
Run by `make test` (tests/unit/test_safety.c) with MP_BIN and MP_TOOLS set.
"""
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import BIN, check  # noqa: E402
from safety_util import interrupted_split, mkmodel, one_line, partials, run, same_files, snapshot, summary  # noqa: E402

BUSY = "another run is using it"


def refused_while_locked(tmp, m, dst, p):
    before = snapshot(p)
    for cmd in (["split", m, dst, "--resume"], ["split", m, dst, "--force"], ["split", m, dst],
                ["split", m, dst, "--resume", "--force"], ["convert", m, dst, "--to", "f16", "--force"],
                ["convert", m, dst, "--to", "f16"]):
        r = run(*cmd, "--quiet")
        check(one_line(r, 4, os.path.basename(p), BUSY, "nothing was removed", "wait for that run"),
              f"{' '.join(cmd[3:])} while {os.path.basename(p)} is locked: exit {r.returncode}: {r.stderr}")
        check("interrupted run" not in r.stderr, f"a live partial is not called interrupted: {r.stderr}")
        check(snapshot(p) == before and not os.path.exists(dst), f"{cmd[0]} {cmd[3:]}: nothing changed")
        check(partials(tmp, os.path.basename(dst)) == [os.path.basename(p)], f"{cmd[3:]}: no second partial")


def held_by_this_script(tmp, m, want):
    dst = os.path.join(tmp, "held")
    # A partial split with files in it, and an empty partial directory just created.
    for make in ("journaled", "empty"):
        if make == "journaled":
            p = interrupted_split(m, dst)
        else:
            p = dst + ".partial-fresh1"
            os.mkdir(p)
        fd = os.open(p, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        refused_while_locked(tmp, m, dst, p)
        os.close(fd)  # the holder ends: the partial is free again
        r = run("split", m, dst, "--resume") if make == "journaled" else run("split", m, dst, "--force")
        check(r.returncode == 0 and same_files(dst, want), f"after the lock is gone ({make}): {r.stderr}")
        check(not partials(tmp, "held"), f"{make}: the partial was consumed")
        shutil.rmtree(dst)


def start_and_stop(m, dst):
    """Starts a split and stops it (SIGSTOP) once its partial directory holds a journal and a
    finished file: one with its .done marker, which is written after the file's journal entry
    (a renamed file without it may not be journaled yet). Returns the process and the partial
    directory, or (None, None)."""
    folder, base = os.path.split(dst)
    for _ in range(30):
        p = subprocess.Popen([BIN, "split", m, dst, "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while p.poll() is None:
            left = partials(folder, base)
            if left and any(f.endswith(".safetensors.done") for f in os.listdir(os.path.join(folder, left[0]))):
                p.send_signal(signal.SIGSTOP)
                return p, os.path.join(folder, left[0])
            time.sleep(0.0005)
        p.communicate()
        shutil.rmtree(dst, ignore_errors=True)
    return None, None


def live_runs(tmp, want_big, big):
    # Stopped, refused by the others, continued: the live run completes as if alone.
    dst = os.path.join(tmp, "live")
    p, part = start_and_stop(big, dst)
    check(p is not None, "a split was stopped while running")
    refused_while_locked(tmp, big, dst, part)
    p.send_signal(signal.SIGCONT)
    err = p.communicate()[1]
    check(p.returncode == 0 and same_files(dst, want_big), f"the live run completes: {err}")
    shutil.rmtree(dst)
    # Killed while another run waits for it: the waiter is refused until the kill, then resumes.
    dst = os.path.join(tmp, "killed")
    p, part = start_and_stop(big, dst)
    check(p is not None, "a second split was stopped while running")
    waits = 0
    for attempt in range(3):
        r = run("split", big, dst, "--resume", "--quiet")
        check(one_line(r, 4, BUSY), f"waiting run, attempt {attempt}: {r.stderr}")
        waits += 1
    p.send_signal(signal.SIGKILL)
    p.wait()
    check(p.returncode == -signal.SIGKILL, f"killed: {p.returncode}")
    r = run("split", big, dst, "--resume")
    check(r.returncode == 0 and "resumed: " in r.stdout, f"the waiting run resumes after the kill: {r.stdout} {r.stderr}")
    check(same_files(dst, want_big) and not partials(tmp, "killed"), "byte-identical to an uninterrupted split")
    check(waits == 3, "the waiter was refused while the run lived")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        m = mkmodel(os.path.join(tmp, "m"), "--layers", "4", "--max-shard-size", "600000")
        want = os.path.join(tmp, "want")
        check(run("split", m, want, "--quiet").returncode == 0, "reference split")
        held_by_this_script(tmp, m, want)
        big = mkmodel(os.path.join(tmp, "big"), "--layers", "24", "--hidden", "512", "--intermediate", "1408",
                      "--vocab", "8192")
        want_big = os.path.join(tmp, "want-big")
        check(run("split", big, want_big, "--quiet").returncode == 0, "reference split of the big model")
        live_runs(tmp, want_big, big)
    summary("safety lock")


if __name__ == "__main__":
    main()
