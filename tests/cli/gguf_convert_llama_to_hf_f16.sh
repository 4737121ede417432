# A llama GGUF becomes a Hugging Face checkpoint: names mapped, q/k rows un-permuted,
# config.json from the metadata; rope_freqs has no Hugging Face counterpart and says so.
python3 - <<'PY'
import sys, os, struct
sys.path.insert(0, os.path.join(os.environ["SRC"], "tests", "golden-errors"))
import gguf_cases as g
kvs = [g.kv("general.architecture", g.STR, "llama"), g.kv("llama.block_count", g.U32, 1),
       g.kv("llama.embedding_length", g.U32, 8), g.kv("llama.feed_forward_length", g.U32, 16),
       g.kv("llama.attention.head_count", g.U32, 2), g.kv("llama.attention.head_count_kv", g.U32, 1),
       g.kv("llama.context_length", g.U32, 4096), g.kv("llama.rope.freq_base", g.F32, 500000.0),
       g.kv("llama.attention.layer_norm_rms_epsilon", g.F32, 1e-5),
       g.kv("tokenizer.ggml.bos_token_id", g.U32, 1), g.kv("tokenizer.ggml.eos_token_id", g.U32, 2)]
shapes = [("token_embd.weight", [8, 16]), ("output_norm.weight", [8]), ("rope_freqs.weight", [2]),
          ("blk.0.attn_norm.weight", [8]), ("blk.0.attn_q.weight", [8, 8]), ("blk.0.attn_k.weight", [8, 4]),
          ("blk.0.attn_v.weight", [8, 4]), ("blk.0.attn_output.weight", [8, 8]),
          ("blk.0.ffn_norm.weight", [8]), ("blk.0.ffn_gate.weight", [8, 16]),
          ("blk.0.ffn_up.weight", [8, 16]), ("blk.0.ffn_down.weight", [16, 8])]
tensors, data, at = [], b"", 0
for name, dims in shapes:
    n = 1
    for d in dims:
        n *= d
    # row r of q holds r, so the un-permuted order is visible: GGUF rows (0,1,2,3) per head
    rows = n // dims[0]
    vals = [float(i // dims[0]) for i in range(n)]
    blob = struct.pack("<%df" % n, *vals)
    tensors.append((name, dims, g.T_F32, None, len(blob)))
    data += blob + b"\0" * g.pad(len(blob))
open("llama.gguf", "wb").write(g.gguf(kvs, tensors, data=data))
PY
$MODELPREP convert llama.gguf hf --to f16
ls hf
cat hf/config.json
python3 - <<'PY'
import json, struct
raw = open("hf/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
t = h["model.layers.0.self_attn.q_proj.weight"]
b, e = t["data_offsets"]
vals = struct.unpack("<%de" % ((e - b) // 2), raw[8 + n + b:8 + n + e])
print("q_proj", t["shape"], "row sources:", [vals[r * 8] for r in range(8)])
t = h["model.layers.0.self_attn.k_proj.weight"]
b, e = t["data_offsets"]
vals = struct.unpack("<%de" % ((e - b) // 2), raw[8 + n + b:8 + n + e])
print("k_proj", t["shape"], "row sources:", [vals[r * 8] for r in range(4)])
PY
