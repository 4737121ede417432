#!/usr/bin/env python3
"""mktokenizer.py DIR PRE [VOCAB]: writes a small, valid byte-level BPE tokenizer.json and
tokenizer_config.json into DIR, with the pre-tokenizer regex of llama.cpp's PRE ("llama-bpe" or
"qwen2"; anything else is written as given, to test refusals). VOCAB (default 320) tokens: the 256
byte tokens, merges learnt greedily from a fixed text (standard library only), and two special
tokens at the end. Deterministic."""
import json, os, re, sys
from collections import Counter

REGEX = {
    "llama-bpe": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
}
TEXT = ("the quick brown fox jumps over the lazy dog. the dog sleeps; the fox runs. "
        "models convert weights, and tokens become ids. there is a theory that the other "
        "thing is the one that matters, then and there. " * 3)


def byte_alphabet():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def main():
    out, pre = sys.argv[1], sys.argv[2]
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 320
    enc = byte_alphabet()
    vocab = {enc[b]: b for b in range(256)}
    words = Counter("".join(enc[b] for b in w.encode()) for w in re.findall(r" ?\w+|[^\w\s]", TEXT))
    seqs = {w: list(w) for w in words}
    merges = []
    while len(vocab) < size - 2:
        pairs = Counter()
        for w, n in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append(f"{a} {b}")
        vocab[a + b] = len(vocab)
        for w in seqs:
            s, i, t = seqs[w], 0, []
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    t.append(a + b)
                    i += 2
                else:
                    t.append(s[i])
                    i += 1
            seqs[w] = t
    specials = ["<|begin_of_text|>", "<|end_of_text|>"]
    added = [{"id": len(vocab) + i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, s in enumerate(specials)]
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": REGEX.get(pre, pre)}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": pre == "llama-bpe", "vocab": vocab, "merges": merges},
    }
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
    cfg = {"bos_token": specials[0], "eos_token": specials[1], "add_bos_token": True, "add_eos_token": False,
           "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}",
           "model_max_length": 2048, "tokenizer_class": "PreTrainedTokenizerFast"}
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=1)
    print(f"{out}: {len(vocab) + len(specials)} tokens, {len(merges)} merges, pre {pre}")


if __name__ == "__main__":
    main()
