# Issue 14: a scale that is Inf or NaN would dequantize to non-finite weights: every dequantizing
# path refuses it, exit 4, naming the scale tensor and the group (or the GGUF block), and no
# output is left behind.
try() {
    label=$1; shift
    set +e; "$@" >out.txt 2>err.txt; rc=$?; set -e
    echo "$label: exit $rc: $(cat err.txt)"
    [ ! -e dst ] || echo "$label: dst was written"
    rm -rf dst dst.partial-*
}
poke() { # FILE TENSOR ELEMENT HEX: overwrite element ELEMENT (of HEX's size) of a safetensors tensor
python3 - "$@" <<'PY'
import json, struct, sys
path, name, elem, val = sys.argv[1], sys.argv[2], int(sys.argv[3]), bytes.fromhex(sys.argv[4])
with open(path, "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
    f.seek(8 + n + h[name]["data_offsets"][0] + len(val) * elem)
    f.write(val)
PY
}
for v in 007c:inf 00fc:-inf 007e:nan; do
    rm -rf m && $MKMODEL m --layers 1 --group-size 32 >/dev/null
    # element 197 of the f16 scales [G, N] (N > 197): group 0 of row 197
    poke m/model.safetensors model.layers.0.self_attn.q_proj.scales 197 ${v%%:*}
    for to in f16 bf16 f32; do try "${v#*:} scale, --to $to" $MODELPREP convert m dst --to $to; done
done
rm -rf m && $MKMODEL m --layers 1 --group-size 32 >/dev/null
try "finite scales" $MODELPREP convert m dst --to f16
# A GGUF Q8_0 block whose f16 d is NaN: block 2 of blk.0.attn_q.weight.
python3 - <<'PY'
import sys, os, struct
sys.path.insert(0, os.path.join(os.environ["SRC"], "tests", "golden-errors"))
import gguf_cases as g
kvs = [g.kv("general.architecture", g.STR, "llama"), g.kv("llama.block_count", g.U32, 1),
       g.kv("llama.attention.head_count", g.U32, 1)]
blocks = b"".join(struct.pack("<e", 0.5) + bytes(range(32)) for _ in range(4))
bad = bytearray(blocks)
bad[2 * 34:2 * 34 + 2] = b"\x00\x7e"
tensors = [("blk.0.attn_v.weight", [64, 2], 8, None, len(blocks))]
open("q8.gguf", "wb").write(g.gguf(kvs, tensors, data=bytes(bad)))
PY
try "gguf q8_0 nan d" $MODELPREP convert q8.gguf dst --to f16
# FP8: a block of weight_scale_inv (F32) that is Inf or NaN; FP8 NaN codes are values and kept.
for v in 0000807f:inf 0000c07f:nan; do
    rm -rf m && $MKMODEL m --layers 1 --fp8-block >/dev/null
    poke m/model.safetensors model.layers.0.self_attn.q_proj.weight_scale_inv 3 ${v%%:*}
    for to in f16 bf16 f32; do try "fp8 ${v#*:} scale, --to $to" $MODELPREP convert m dst --to $to; done
done
# bitsandbytes: an absmax (NF4) or SCB (LLM.int8) that is NaN
for kind in nf4:weight.absmax int8:SCB; do
    rm -rf m && python3 $SRC/tests/gen/bnbgen.py m ${kind%%:*}
    poke m/model.safetensors model.layers.0.mlp.down_proj.${kind#*:} 1 0000c07f
    for to in bf16 f32; do try "bnb ${kind%%:*} nan ${kind#*:}, --to $to" $MODELPREP convert m dst --to $to; done
done
# DeepSeek-V4: an E8M0 0xFF (NaN) block scale of an FP4 expert (--nan), or of an FP8 linear
rm -rf m && python3 $SRC/tests/gen/dsv4gen.py m --variant flash --nan >/dev/null
try "dsv4 fp4 expert 0xFF scale" $MODELPREP convert m dst --to bf16
rm -rf m && python3 $SRC/tests/gen/dsv4gen.py m --variant flash >/dev/null
python3 - <<'PY'
import json, struct
with open("m/model.safetensors", "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
    f.seek(8 + n + h["layers.0.attn.wq_a.scale"]["data_offsets"][0] + 1)
    f.write(b"\xff")
PY
for to in f16 bf16 f32; do try "dsv4 fp8 0xFF scale, --to $to" $MODELPREP convert m dst --to $to; done
