# Issue 14: GGUF convert undoes llama's q/k rope permutation on bounded runs of rows (a tile of
# 2 Mi elements), not whole heads. Row r of each GGUF tensor holds the value r; the output must
# hold the Hugging Face order (head h, half s, pair i) <- GGUF row h*hd + 2i + s, at the joins
# between runs too: a head of 4096 rows of 1024 (runs of 1024 rows), rows of 2^21 + 32 elements
# (longer than half a tile: taken alone, in pieces), and heads of 6 rows.
python3 - <<'PY'
import struct
def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b
def gguf(path, cols, rows, n_head):
    kvs = s("general.architecture") + struct.pack("<I", 8) + s("llama")
    kvs += s("llama.block_count") + struct.pack("<II", 4, 1)
    kvs += s("llama.attention.head_count") + struct.pack("<II", 4, n_head)
    info = s("blk.0.attn_q.weight") + struct.pack("<I", 2) + struct.pack("<QQ", cols, rows)
    info += struct.pack("<I", 0) + struct.pack("<Q", 0)
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, 3) + kvs + info
    head += b"\0" * (-len(head) % 32)
    with open(path, "wb") as f:
        f.write(head)
        for r in range(rows):
            f.write(struct.pack("<f", float(r)) * cols)
gguf("a.gguf", 1024, 8192, 2)
gguf("b.gguf", (1 << 21) + 32, 4, 1)
gguf("c.gguf", 16, 12, 2)
PY
for m in a b c; do $MODELPREP convert $m.gguf $m --to f32 --quiet; done
python3 - <<'PY'
import json, struct
for name, cols, rows, n_head in [("a", 1024, 8192, 2), ("b", (1 << 21) + 32, 4, 1), ("c", 16, 12, 2)]:
    hd = rows // n_head
    want = [(r // hd) * hd + 2 * ((r % hd) % (hd // 2)) + (r % hd) // (hd // 2) for r in range(rows)]
    with open(name + "/model.safetensors", "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        t = json.loads(f.read(n))["model.layers.0.self_attn.q_proj.weight"]
        bad = 0
        for r in range(rows):
            f.seek(8 + n + t["data_offsets"][0] + r * cols * 4)
            row = struct.unpack("<%df" % cols, f.read(cols * 4))
            bad += any(v != float(want[r]) for v in row)
    print(name, t["shape"], "rows out of order:", bad, "first rows from:", want[:6])
PY
