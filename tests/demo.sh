#!/bin/sh
# make demo: generate sample checkpoints and run modelprep on them end to end, printing each
# step's command and summary (not the full tables) and, at the end, where every output is.
set -e
BUILD=${1:-build}
MP="$BUILD/modelprep"
out=build/demo
rm -rf "$out"
mkdir -p "$out"

step() { printf '\n== %s\n' "$*"; }

step "1. a small Llama-like GPTQ checkpoint: 4-bit, asymmetric groups of 64, 4 shards"
"$BUILD/tests/mkmodel" "$out/sample-gptq" --layers 4 --hidden 512 --intermediate 1408 \
    --vocab 4096 --group-size 64 --max-shard-size 4000000 >/dev/null
echo "written $out/sample-gptq ($(du -sh "$out/sample-gptq" | cut -f1))"

step "2. modelprep inspect $out/sample-gptq (header; the tensor table is in $out/inspect.txt)"
"$MP" inspect "$out/sample-gptq" >"$out/inspect.txt"
sed -n '2,6p' "$out/inspect.txt"
grep -E '^(totals|quantized linears):' "$out/inspect.txt"

step "3. modelprep convert $out/sample-gptq $out/sample-f16 --to f16 (dequantized by the CPU reference)"
"$MP" convert "$out/sample-gptq" "$out/sample-f16" --to f16 --max-shard-size 8MB

step "4. modelprep convert $out/sample-gptq $out/sample-onednn --to onednn-int4 (an exact repack)"
"$MP" convert "$out/sample-gptq" "$out/sample-onednn" --to onednn-int4

step "5. the repack is exact: both checkpoints dequantize to the same bytes"
"$MP" convert "$out/sample-gptq" "$out/check-a" --to f32 --quiet
"$MP" convert "$out/sample-onednn" "$out/check-b" --to f32 --quiet
for f in "$out"/check-a/*.safetensors; do cmp "$f" "$out/check-b/$(basename "$f")"; done
n=$(ls "$out"/check-a/*.safetensors | wc -l)
echo "identical f32 weights ($n weight file$([ "$n" = 1 ] || echo s) compared)"
rm -rf "$out/check-a" "$out/check-b"

step "6. a symmetric MoE checkpoint to cutlass-int4 with experts stacked, for the XPU fused MoE"
"$BUILD/tests/mkmodel" "$out/sample-moe" --layers 2 --experts 8 --sym --hidden 512 \
    --intermediate 256 --vocab 4096 --group-size 64 >/dev/null
"$MP" convert "$out/sample-moe" "$out/sample-moe-xpu" --to cutlass-int4 --stack-experts
"$MP" inspect "$out/sample-moe-xpu" | grep -E 'layers\.0\.mlp\.experts\.w'

step "7. modelprep verify $out/sample-onednn --rows 32 (the report is in $out/verify-onednn.txt)"
"$MP" verify "$out/sample-onednn" --rows 32 >"$out/verify-onednn.txt" || { cat "$out/verify-onednn.txt"; exit 1; }
grep -E '^(reference|integrity):|^(PASS|FAIL):' "$out/verify-onednn.txt"

step "8. modelprep split $out/sample-moe-xpu $out/sample-moe-layers (one file per layer)"
"$MP" split "$out/sample-moe-xpu" "$out/sample-moe-layers"
ls "$out/sample-moe-layers" | grep safetensors | tr '\n' ' '
echo

step "9. modelprep verify $out/sample-moe-layers --rows 16 (stacked experts slice by slice)"
"$MP" verify "$out/sample-moe-layers" --rows 16 >"$out/verify-moe.txt" || { cat "$out/verify-moe.txt"; exit 1; }
grep -E '^(PASS|FAIL):' "$out/verify-moe.txt"

printf '\ndemo: done. Outputs:\n'
printf '  %-34s %s\n' "$out/sample-gptq" "the GPTQ sample (source of 3-5)" \
    "$out/sample-f16" "dense f16 checkpoint" \
    "$out/sample-onednn" "onednn-int4 checkpoint" \
    "$out/sample-moe-xpu" "MoE in cutlass-int4, experts stacked" \
    "$out/sample-moe-layers" "its per-layer split" \
    "$out/inspect.txt" "inspect's full table of the sample" \
    "$out/verify-onednn.txt" "verify's full report (step 7)" \
    "$out/verify-moe.txt" "verify's full report (step 9)"
