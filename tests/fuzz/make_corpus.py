#!/usr/bin/env python3
"""Rebuilds the seed corpus in tests/fuzz/corpus/<target>/ from the valid and hostile suites and
the golden quantized fixtures (standard library, plus the zstd CLI for the compressed seeds).
Each seed is named by its content hash, so reruns are stable."""
import hashlib
import json
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")


def add(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def header_json(raw):
    if len(raw) < 8:
        return None
    n = int.from_bytes(raw[:8], "little")
    return raw[8:8 + n] if 8 + n <= len(raw) else None


shutil.rmtree(OUT, ignore_errors=True)
for suite in ("golden", "golden-errors"):
    cases = os.path.join(ROOT, suite, "cases")
    for dirpath, _, files in os.walk(cases):
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            raw = open(p, "rb").read()
            if len(raw) > 4096:
                continue
            if f.endswith(".gguf"):
                add("gguf", raw)
            elif f.endswith(".safetensors") and dirpath == cases:
                add("st_header", raw)
                if suite == "golden" and shutil.which("zstd"):
                    # The same file in a zstd frame, with and without a declared content size.
                    for flag in ("--content-size", "--no-content-size"):
                        z = subprocess.run(["zstd", "-q", "-c", "-3", flag], input=raw, capture_output=True)
                        add("st_header", z.stdout)
                h = header_json(raw)
                if h:
                    add("json", h)
            elif f == "model.safetensors.index.json":
                add("index", raw)
                add("json", raw)
            elif f == "config.json":
                add("config", raw)
quant = os.path.join(ROOT, "golden", "quant")
for name in sorted(os.listdir(quant)):
    p = os.path.join(quant, name, "config.json")
    if os.path.isfile(p):
        raw = open(p, "rb").read()
        add("config", raw)
        add("json", raw)
# zstd frames with an absurd window (2^41) and with a dictionary id.
add("st_header", bytes([0x28, 0xB5, 0x2F, 0xFD, 0x00, 0xF8, 0x01, 0x00, 0x00]))
add("st_header", bytes([0x28, 0xB5, 0x2F, 0xFD, 0x01, 0x50, 0x07, 0x01, 0x00, 0x00]))
# The fuzz_config checkpoint is GPTQ-shaped: seed the dialects that fit it.
for cfg in ({"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 8, "sym": False,
                                     "checkpoint_format": "gptq", "dynamic": {"-:^lm.*": {}, "+:^l$": {"bits": 4}}}},
            {"quantization_config": {"quant_method": "auto-round", "packing_format": "auto_round", "bits": 4,
                                     "group_size": 8, "extra_config": {"l": {"bits": 4}}}}):
    add("config", json.dumps(cfg).encode())
# Journals of partial splits (convert/journal.h): a real one, and the edge cases of each record.
H = "0123456789abcdef0123456789abcdef"
journal = ("modelprep-journal 1\ncommand split\noption compress none\noption materialize-tied no\n"
           "option gguf-split 0\nsource model-00001-of-00002.safetensors 601144 1796195616507920069 " + H + "\n"
           "source config.json 661 1796195616495716323 " + H + "\n"
           "file model.embed_tokens.safetensors 524456 " + H + " plain " + H + "\n"
           "file model.layers.0.safetensors.zst 330296 " + H + " zstd:3 " + H + "\n")
for text in (journal, journal[:-7], journal.replace("601144", "-1"), journal.replace("601144", "18446744073709551616"),
             journal + "file ../escape 1 " + H + " plain " + H + "\n", journal + "file a%20b%25 0 " + H + " %00 " + H + "\n",
             journal.replace("1796195616507920069", "-1796195616507920069"), "modelprep-journal 1\n",
             "modelprep-journal 1\ncommand %00\n", journal.replace(" plain ", "  plain "), journal.upper(),
             "modelprep-journal 1\n" + "option k v\n" * 17 + "command split\n"):
    add("journal", text.encode())
print("corpus:", {t: len(os.listdir(os.path.join(OUT, t))) for t in sorted(os.listdir(OUT))})
