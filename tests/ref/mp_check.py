"""Shared by the tests/ref scripts: the binary under test, its tools, and the check counter.

Each script does `from mp_check import BIN, TOOLS, check, run, summary` and ends with
`summary("name")`, the line tests/unit/test_cli.c looks for: "NAME ok: N checks passed" and,
when some could not run, ", M skipped", each skipped group having printed "SKIP: reason" (a
skip is never counted as passed: test_cli.c reports a script that passed nothing as skipped).
A script whose summary line says more prints it itself with `count()` and `skipped()`.
"""
import json
import os
import subprocess
import sys

BIN = os.environ["MP_BIN"]
TOOLS = os.environ.get("MP_TOOLS", "")
_checks = 0
_skipped = 0


def check(cond, msg):
    """Counts one check; on failure prints why and exits 1."""
    global _checks
    _checks += 1
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


def run(*args, **kw):
    """Runs modelprep with args, capturing text output."""
    return subprocess.run([BIN, *args], capture_output=True, text=True, **kw)


def skip(reason):
    """Counts one group of checks that cannot run here, and says why."""
    global _skipped
    _skipped += 1
    print(f"SKIP: {reason}")


def skipped():
    """The summary's tail: ", M skipped" when some were, else ""."""
    return f", {_skipped} skipped" if _skipped else ""


def count():
    """The number of checks made so far."""
    return _checks


def summary(name):
    print(f"{name} ok: {_checks} checks passed{skipped()}")


def write_config(d, qconfig, torch_dtype="bfloat16", side=None, arch="LlamaForCausalLM"):
    """config.json of a Llama checkpoint in d, with qconfig (None: none), and side JSON files."""
    cfg = {"architectures": [arch], "model_type": "llama", "torch_dtype": torch_dtype}
    if qconfig is not None:
        cfg["quantization_config"] = qconfig
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    for fname, obj in (side or {}).items():
        json.dump(obj, open(os.path.join(d, fname), "w"))
    return d
