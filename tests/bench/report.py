#!/usr/bin/env python3
"""Writes make bench's figures into doc/benchmarks.md, between the markers
<!-- bench:begin --> and <!-- bench:end -->: the date, the machine (CPU, cores, memory, kernel,
load average while reporting), the figures of build/bench.json as a table against their
targets, and the full output of the run (build/bench.log) as it was printed.

usage: report.py BENCH_JSON BENCH_LOG DOC_MD   (run by `make bench` right after the run)
"""
import datetime
import json
import os
import platform
import sys

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = f", {int(line.split()[1]) / 1048576:.1f} GiB memory"
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores{mem}, Linux {platform.release()}; "
            f"load average {load:.2f} when reported")


def table(b):
    r, c = b["repack_gbs"], b["convert"]
    rows = [
        ("GPTQ → cutlass-int4 in memory, 4096 × 11008 4-bit (GB/s of packed input)",
         f"{r['gptq_to_cutlass_1t']:.2f} (1 thread), {r['gptq_to_cutlass_2t']:.2f} (2 threads)", "≥ 4"),
        ("AWQ → cutlass-int4 in memory (GB/s)",
         f"{r['awq_to_cutlass_1t']:.2f} (1 thread), {r['awq_to_cutlass_2t']:.2f} (2 threads)", "≥ 4"),
    ]
    if b.get("numpy_gptq_to_cutlass_gbs", 0) > 0:
        n = b["numpy_gptq_to_cutlass_gbs"]
        rows.append(("numpy, the same GPTQ job (GB/s)",
                     f"{n:.3f} (modelprep {r['gptq_to_cutlass_2t'] / n:.0f}× faster on 2 threads)", ""))
    rows += [
        ("`convert --to onednn-int4`, asymmetric GPTQ, against `cp -r` + fsync",
         f"{c['onednn_int4_s']:.2f} s vs {c['cp_s']:.2f} s: {c['ratio']:.2f}×; peak RSS {c['peak_rss_mib']:.1f} MiB",
         "≤ 1.3×, ≤ 256 MiB"),
        ("`convert --to cutlass-int4`, symmetric GPTQ, against `cp -r` + fsync",
         f"{c['cutlass_int4_s']:.2f} s vs {c['cp_sym_s']:.2f} s: {c['ratio_sym']:.2f}×; "
         f"peak RSS {c['peak_rss_sym_mib']:.1f} MiB", "≤ 1.3×, ≤ 256 MiB"),
    ]
    out = ["| job | figure | target |", "|---|---|---|"]
    out += [f"| {a} | {b_} | {t} |" for a, b_, t in rows]
    return out


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    bench_json, bench_log, doc = sys.argv[1:]
    try:
        b = json.load(open(bench_json))
    except (OSError, ValueError) as e:
        sys.exit(f"report.py: {bench_json}: {e}")
    when = datetime.datetime.now(datetime.timezone.utc)
    lines = [BEGIN,
             f"`make bench` run ending {when:%Y-%m-%d %H:%M} UTC, on: {machine()}. A load average "
             "above the core count means other work shared the machine: such figures are not "
             "comparable with an idle run's.",
             "Written by `tests/bench/report.py` from `build/bench.json` and the run's output; "
             "do not edit by hand.", ""]
    lines += table(b)
    try:
        log = open(bench_log).read().rstrip("\n")
        lines += ["", "The run's full output:", "", "```", log, "```"]
    except OSError:
        lines += ["", f"({bench_log} not found: only the figures of {bench_json} are shown.)"]
    lines.append(END)
    text = open(doc).read() if os.path.exists(doc) else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        sys.exit(f"report.py: {doc} has no {BEGIN} ... {END} section")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    open(doc, "w").write(head + "\n".join(lines) + tail)
    print(f"report.py: {doc} updated from {bench_json} and {bench_log}")


if __name__ == "__main__":
    main()
