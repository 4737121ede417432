"""Shared by the tests/ref scripts: the binary under test, its tools, and the check counter.

Each script does `from mp_check import BIN, TOOLS, check, run, summary` and ends with
`summary("name")`, the line tests/unit/test_cli.c looks for; a script whose summary line says
more prints it itself with `count()`.
"""
import os
import subprocess
import sys

BIN = os.environ["MP_BIN"]
TOOLS = os.environ.get("MP_TOOLS", "")
_checks = 0


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


def count():
    """The number of checks made so far."""
    return _checks


def summary(name):
    print(f"{name} ok: {_checks} checks passed")
