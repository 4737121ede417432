# Neither AirLLM nor RabbitLLM reads .safetensors.zst or a GGUF-source split (raw ggml blocks):
# --for with either is exit 2 and one line saying why; without --for such a split is plain and
# says which runtimes do not read it. An unknown runtime is a usage error.
$MKMODEL m --layers 1 >/dev/null
$MODELPREP split m a --for airllm --compress zstd || echo "--for airllm --compress zstd: exit $?"
$MODELPREP split m b --for rabbitllm --compress zstd:3 || echo "--for rabbitllm --compress zstd:3: exit $?"
$MODELPREP split m c --for vllm || echo "--for vllm: exit $?"
$MODELPREP split m d --compress zstd | sed -n 3p
python3 - <<'PY'
import sys, os, struct
sys.path.insert(0, os.path.join(os.environ["SRC"], "tests", "golden-errors"))
import gguf_cases as g
kvs = [g.kv("general.architecture", g.STR, "llama"), g.kv("llama.block_count", g.U32, 1)]
blob = struct.pack("<8f", *range(8))
tensors = [("token_embd.weight", [8], g.T_F32, None, len(blob)), ("blk.0.attn_norm.weight", [8], g.T_F32, None, len(blob))]
open("m.gguf", "wb").write(g.gguf(kvs, tensors, data=blob + b"\0" * g.pad(len(blob)) + blob))
PY
$MODELPREP split m.gguf e --for airllm || echo "GGUF --for airllm: exit $?"
$MODELPREP split m.gguf f | sed -n 2p
ls
