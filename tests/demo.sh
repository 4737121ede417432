#!/bin/sh
# make demo: generate a sample checkpoint and run modelprep on it end to end.
# The steps grow as capabilities land; each prints what it did and where the output is.
set -e
BUILD=${1:-build}
MP="$BUILD/modelprep"
out=build/demo
rm -rf "$out"
mkdir -p "$out"

step() { printf '\n== %s\n' "$*"; }

step "1. generate a small Llama-like GPTQ checkpoint (4-bit, asymmetric groups of 64, sharded at 4 MB)"
"$BUILD/tests/mkmodel" "$out/sample-gptq" --layers 4 --hidden 512 --intermediate 1408 \
    --vocab 4096 --group-size 64 --max-shard-size 4000000

step "2. modelprep inspect $out/sample-gptq"
"$MP" inspect "$out/sample-gptq"

step "3. modelprep inspect --json (first 400 bytes)"
"$MP" inspect "$out/sample-gptq" --json | head -c 400
echo

step "4. modelprep convert $out/sample-gptq $out/sample-f16 --to f16 (CPU dequantization reference)"
"$MP" convert "$out/sample-gptq" "$out/sample-f16" --to f16 --max-shard-size 8MB

step "5. modelprep inspect $out/sample-f16 (summary)"
"$MP" inspect "$out/sample-f16" | sed -n '1,6p;/^files:/,$p'

step "6. the manifest: $out/sample-f16/modelprep.json (first lines)"
head -n 12 "$out/sample-f16/modelprep.json"

step "7. modelprep convert $out/sample-gptq $out/sample-onednn --to onednn-int4 (exact repack)"
"$MP" convert "$out/sample-gptq" "$out/sample-onednn" --to onednn-int4

step "8. the repack is exact: both checkpoints dequantize to the same bytes"
"$MP" convert "$out/sample-gptq" "$out/check-a" --to f32 --quiet
"$MP" convert "$out/sample-onednn" "$out/check-b" --to f32 --quiet
for f in "$out"/check-a/*.safetensors; do cmp "$f" "$out/check-b/$(basename "$f")"; done
echo "identical f32 weights: $(ls "$out"/check-a/*.safetensors | wc -l) files compared"
rm -rf "$out/check-a" "$out/check-b"

step "9. a symmetric MoE sample for the XPU grouped GEMM: cutlass-int4, s4, experts stacked"
"$BUILD/tests/mkmodel" "$out/sample-moe" --layers 2 --experts 8 --sym --hidden 512 \
    --intermediate 256 --vocab 4096 --group-size 64
"$MP" convert "$out/sample-moe" "$out/sample-moe-xpu" --to cutlass-int4 --int4 s4 --stack-experts
"$MP" inspect "$out/sample-moe-xpu" | grep -E 'layers\.0\.mlp\.experts\.w'

step "10. modelprep verify $out/sample-onednn: hashes, structure, and every quantized tensor on the best device"
"$MP" verify "$out/sample-onednn" --rows 32

step "11. modelprep split $out/sample-moe-xpu $out/sample-moe-layers (one file per layer)"
"$MP" split "$out/sample-moe-xpu" "$out/sample-moe-layers"
ls "$out/sample-moe-layers"

step "12. modelprep verify $out/sample-moe-layers --rows 16 (stacked experts slice by slice; table abridged)"
"$MP" verify "$out/sample-moe-layers" --rows 16 >"$out/verify-moe.txt" || { cat "$out/verify-moe.txt"; exit 1; }
awk 'NR <= 8 || /experts\.w2_qweight\[7\]/ || !/^model\./' "$out/verify-moe.txt"

printf '\ndemo: done.\n'
printf '  sample GPTQ checkpoint:      %s/sample-gptq\n' "$out"
printf '  dense f16 checkpoint:        %s/sample-f16\n' "$out"
printf '  onednn-int4 checkpoint:      %s/sample-onednn\n' "$out"
printf '  MoE cutlass-int4 (stacked):  %s/sample-moe-xpu\n' "$out"
printf '  its per-layer split:         %s/sample-moe-layers\n' "$out"
