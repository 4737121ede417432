#!/usr/bin/env python3
"""mktokenizer.py DIR PRE [VOCAB]: writes a small, valid byte-level BPE tokenizer.json and
tokenizer_config.json into DIR, with the pre-tokenizer regex of llama.cpp's PRE ("llama-bpe",
"qwen2" or "gpt-4o", the o200k regex of gpt-oss; anything else is written as given, to test refusals). VOCAB (default 320) tokens: the 256
byte tokens, merges learnt greedily from a fixed text (standard library only), and two special
tokens at the end. With PRE "spm" it writes a SentencePiece tokenizer.model instead (BPE type,
byte fallback: <unk> <s> </s>, the 256 byte pieces, the text's characters and merged pieces with
scores by merge order), protobuf encoded here. Deterministic."""
import json, os, re, sys
from collections import Counter

REGEX = {
    "llama-bpe": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "gpt-4o": (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
               r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
               r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
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


def varint(v):
    v &= (1 << 64) - 1
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def best_pair(words, seqs):
    """The adjacent pair of symbols most frequent over the words (ties: the greater pair), or
    None when no word has two symbols left."""
    pairs = Counter()
    for w, n in words.items():
        for a, b in zip(seqs[w], seqs[w][1:]):
            pairs[(a, b)] += n
    return max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0] if pairs else None


def merge_pair(seqs, a, b):
    """Every occurrence of the pair (a, b) in every word's symbols becomes the one symbol a + b."""
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


def spm_pieces(size):
    """[(piece, score, type)]: SentencePiece types NORMAL 1, UNKNOWN 2, CONTROL 3, BYTE 6."""
    pieces = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)]
    pieces += [(f"<0x{b:02X}>", 0.0, 6) for b in range(256)]
    words = Counter("\u2581" + w for w in TEXT.split())
    chars = sorted({c for w in words for c in w})
    normal = list(chars)
    seqs = {w: list(w) for w in words}
    while len(pieces) + len(normal) < size:
        a, b = best_pair(words, seqs)
        if a + b not in normal:
            normal.append(a + b)
        merge_pair(seqs, a, b)
    merged = [p for p in normal if len(p) > 1]
    pieces += [(p, -float(i), 1) for i, p in enumerate(merged)]
    pieces += [(c, -float(len(merged) + i), 1) for i, c in enumerate(chars)]
    return pieces


def write_spm(out, size):
    import struct
    model = b""
    for piece, score, typ in spm_pieces(size):
        model += field(1, 2, field(1, 2, piece.encode()) + field(2, 5, struct.pack("<f", score)) + field(3, 0, varint(typ)))
    trainer = (field(3, 0, varint(2)) + field(35, 0, varint(1)) + field(40, 0, varint(0)) +
               field(41, 0, varint(1)) + field(42, 0, varint(2)) + field(43, 0, varint(-1)))
    norm = field(1, 2, b"identity") + field(3, 0, varint(1)) + field(4, 0, varint(0)) + field(5, 0, varint(1))
    model += field(2, 2, trainer) + field(3, 2, norm)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.model"), "wb") as f:
        f.write(model)
    cfg = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
           "add_eos_token": False, "tokenizer_class": "LlamaTokenizer"}
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=1)
    print(f"{out}: tokenizer.model, {size} pieces")


def main():
    out, pre = sys.argv[1], sys.argv[2]
    if pre == "spm":
        return write_spm(out, int(sys.argv[3]) if len(sys.argv) > 3 else 320)
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 320
    enc = byte_alphabet()
    vocab = {enc[b]: b for b in range(256)}
    words = Counter("".join(enc[b] for b in w.encode()) for w in re.findall(r" ?\w+|[^\w\s]", TEXT))
    seqs = {w: list(w) for w in words}
    merges = []
    while len(vocab) < size - 2:
        pair = best_pair(words, seqs)
        if not pair:
            break
        a, b = pair
        merges.append(f"{a} {b}")
        vocab[a + b] = len(vocab)
        merge_pair(seqs, a, b)
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
