"""Shared by the tests/ref/safety_*.py scripts and the crash tests (doc/safety.md): small models,
snapshots of directory trees to prove nothing changed, interrupted and killed runs, and the SKIP
counter (a check that cannot run says why and is counted as skipped, never as passed)."""
import hashlib
import json
import os
import signal
import subprocess
import time

from mp_check import BIN, TOOLS, check, count

_skipped = []


def skip(reason):
    """Counts one skipped check and prints why."""
    _skipped.append(reason)
    print(f"SKIP: {reason}")


def summary(name):
    print(f"{name} ok: {count()} checks passed, {len(_skipped)} skipped")


def mkmodel(path, *args):
    r = subprocess.run([os.path.join(TOOLS, "mkmodel"), path, *args], capture_output=True, text=True)
    check(r.returncode == 0, f"mkmodel {path}: {r.stderr}")
    return path


def run(*args, env=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=env)


def snapshot(path):
    """Every entry under path (links not followed) with its kind and content hash."""
    out = {}
    if os.path.islink(path) or not os.path.isdir(path):
        st = os.lstat(path)
        return {".": ("link", os.readlink(path)) if os.path.islink(path) else ("file", _digest(path), st.st_ino, st.st_mtime_ns)}
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            p = os.path.join(root, n)
            rel = os.path.relpath(p, path)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", _digest(p), os.lstat(p).st_ino, os.lstat(p).st_mtime_ns)
    return out


def _digest(p):
    with open(p, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def one_line(r, code, *needles):
    """The run failed with `code` and one line on stderr that holds every needle."""
    ok = r.returncode == code and r.stderr.count("\n") == 1 and r.stderr.startswith("modelprep: ")
    ok = ok and all(n in r.stderr for n in needles)
    return ok


def partials(folder, base):
    return sorted(f for f in os.listdir(folder) if f.startswith(base + ".partial-"))


def interrupted_split(src, dst, *args, budget=1300000):
    """A partial split of src into dst, as a run that ran out of disk space leaves it (--resume
    keeps it): an LD_PRELOAD shim fails write(2) after `budget` bytes. Returns its path."""
    env = dict(os.environ, LD_PRELOAD=os.path.join(TOOLS, "libenospc.so"), MP_ENOSPC_AFTER=str(budget),
               ASAN_OPTIONS="verify_asan_link_order=0")
    r = run("split", src, dst, "--resume", "--quiet", *args, env=env)
    check(r.returncode == 5 and "kept in" in r.stderr, f"interrupted split of {src}: exit {r.returncode}: {r.stderr}")
    folder, base = os.path.split(dst)
    left = partials(folder or ".", base)
    check(len(left) == 1, f"one partial split of {dst}: {left}")
    return os.path.join(folder, left[0])


def journaled(partial):
    return [ln.split()[1] for ln in open(os.path.join(partial, ".modelprep-journal")) if ln.startswith("file ")]


def same_files(a, b):
    """The weight files and index of two splits are byte-identical, and they hold the same names."""
    names = sorted(os.listdir(a))
    if names != sorted(os.listdir(b)):
        return False
    for n in names:
        if n.endswith(".safetensors") or n.endswith(".index.json") or n.endswith(".zst"):
            if open(os.path.join(a, n), "rb").read() != open(os.path.join(b, n), "rb").read():
                return False
    return True


def job_tree(d):
    """Every file's bytes in a job's output; the manifest without its argv (a rerun adds --force
    or --resume), so that two runs of one job compare equal."""
    out = {}
    for f in sorted(os.listdir(d)):
        raw = open(os.path.join(d, f), "rb").read()
        if f == "modelprep.json":
            m = json.loads(raw)
            m.pop("argv")
            raw = json.dumps(m, sort_keys=True).encode()
        out[f] = raw
    return out


def kill_after(argv, seconds):
    """Runs modelprep with argv and --quiet, and SIGKILLs it after `seconds`. True when the kill
    landed while it ran."""
    p = subprocess.Popen([BIN, *argv, "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    p.send_signal(signal.SIGKILL)
    p.wait()
    return p.returncode == -signal.SIGKILL
