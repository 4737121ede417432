#!/usr/bin/env python3
"""Loads Hugging Face checkpoints with transformers itself (CPU, float32) and reports what it
saw, as JSON on stdout, for tests/ref/gguf_hf_transformers.py (which runs in build/venv and has no
torch). Runs in build/venv-torch.

usage: hf_load.py REQUEST_JSON
  request: [{"dir": D, "ids": [..] or null, "text": T or null, "ref": R or null}, ...]
  reply:   [{"missing": [..], "unexpected": [..], "mismatched": [..], "logits": [[..]],
             "ids": [..], "ids_special": [..], "bos": B, "ref_ids": [..]}, ...]
"ids" runs the model on those token ids; "text" tokenizes T with AutoTokenizer from D, without
special tokens ("ids") and with them ("ids_special", "bos" its BOS id), and from R, the source
checkpoint, without ("ref_ids")."""
import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def load(d, ids):
    model, info = AutoModelForCausalLM.from_pretrained(d, output_loading_info=True, dtype=torch.float32)
    out = {k: sorted(str(x) for x in info.get(k + "_keys", [])) for k in ("missing", "unexpected", "mismatched")}
    with torch.no_grad():
        out["logits"] = model(torch.tensor([ids])).logits[0].tolist()
    return out


def main():
    reply = []
    for r in json.load(open(sys.argv[1])):
        out = load(r["dir"], r["ids"]) if r.get("ids") is not None else {}
        if r.get("text") is not None:
            tok = AutoTokenizer.from_pretrained(r["dir"])
            out["ids"] = tok.encode(r["text"], add_special_tokens=False)
            out["ids_special"] = tok.encode(r["text"])
            out["bos"] = tok.bos_token_id
            out["ref_ids"] = AutoTokenizer.from_pretrained(r["ref"]).encode(r["text"], add_special_tokens=False)
        reply.append(out)
    json.dump(reply, sys.stdout)


if __name__ == "__main__":
    main()
