#!/bin/sh
# make bench: generates a ~0.7 GB sample checkpoint once (build/bench/model), then measures.
# Figures are machine-specific: make bench writes them, with the date and machine, into
# doc/benchmarks.md (tests/bench/report.py).
set -e
BUILD=${1:-build}
make --no-print-directory pyref >/dev/null 2>&1 || echo "bench: no Python reference environment; numpy baseline skipped"
dir=build/bench
mkdir -p "$dir"
. "$(dirname "$0")/model.sh"
bench_model "$BUILD" "$dir"
mkdir -p "$dir/scratch"
echo "bench: safetensors reader and writer"
"$BUILD/tests/bench_safetensors" "$dir/model" "$dir/scratch" "$BUILD/tests/stcopy"
echo "bench: convert (CPU dequantization reference) against cp"
"$BUILD/tests/bench_convert" "$BUILD/modelprep" "$dir/model" "$dir/scratch"
if [ ! -f "$dir/sym/model.safetensors.index.json" ]; then
    rm -rf "$dir/sym"
    echo "bench: generating the symmetric benchmark model..."
    "$BUILD/tests/mkmodel" "$dir/sym" --layers 16 --hidden 2048 --intermediate 5632 \
        --vocab 32000 --kv-heads 8 --group-size 128 --sym --max-shard-size 200000000 >/dev/null
fi
echo "bench: repack in memory and convert to packed layouts against cp (figures also in build/bench.json)"
numpy_gbs=0
if [ -x build/venv/bin/python ]; then numpy_gbs=$(build/venv/bin/python tests/bench/numpy_repack.py); fi
"$BUILD/tests/bench_repack" "$BUILD/modelprep" "$dir/model" "$dir/sym" "$dir/scratch" build/bench.json "$numpy_gbs"
echo "bench: split of the 691 MB checkpoint against cp -r + fsync of the same bytes"
rm -rf "$dir/scratch/split" "$dir/scratch/cp"
"$BUILD/tests/bench_peak_rss" cp sh -c "cp -r '$dir/model' '$dir/scratch/cp' && sync '$dir/scratch/cp'/*"
"$BUILD/tests/bench_peak_rss" split "$BUILD/modelprep" split "$dir/model" "$dir/scratch/split" --quiet
rm -rf "$dir/scratch/split" "$dir/scratch/cp"
if [ ! -f "$dir/moe/model.safetensors.index.json" ]; then
    rm -rf "$dir/moe"
    echo "bench: generating a Qwen3-30B-A3B-like MoE slice (4 layers, 128 experts of 2048 x 768)..."
    "$BUILD/tests/mkmodel" "$dir/moe" --layers 4 --experts 128 --hidden 2048 --intermediate 768 \
        --vocab 32000 --kv-heads 4 --group-size 128 --sym --max-shard-size 500000000 >/dev/null
fi
echo "bench: MoE to cutlass-int4 with --stack-experts against cp -r + fsync"
rm -rf "$dir/scratch/moe-out" "$dir/scratch/moe-cp"
"$BUILD/tests/bench_peak_rss" cp sh -c "cp -r '$dir/moe' '$dir/scratch/moe-cp' && sync '$dir/scratch/moe-cp'/*"
"$BUILD/tests/bench_peak_rss" stack "$BUILD/modelprep" convert "$dir/moe" "$dir/scratch/moe-out" --to cutlass-int4 --int4 s4 --stack-experts --quiet
rm -rf "$dir/scratch/moe-out" "$dir/scratch/moe-cp"
if [ ! -f "$dir/large/model.safetensors.index.json" ]; then
    rm -rf "$dir/large"
    echo "bench: generating a checkpoint larger than 2 GB (72 layers)..."
    "$BUILD/tests/mkmodel" "$dir/large" --layers 72 --hidden 2048 --intermediate 5632 \
        --vocab 32000 --kv-heads 8 --group-size 128 --max-shard-size 1000000000 >/dev/null
fi
echo "bench: peak memory on $(du -sh "$dir/large" | cut -f1) of GPTQ"
rm -rf "$dir/scratch/large-out"
"$BUILD/tests/bench_peak_rss" onednn "$BUILD/modelprep" convert "$dir/large" "$dir/scratch/large-out" --to onednn-int4 --quiet
rm -rf "$dir/scratch/large-out"
"$BUILD/tests/bench_peak_rss" bf16 "$BUILD/modelprep" convert "$dir/large" "$dir/scratch/large-out" --to bf16 --quiet
rm -rf "$dir/scratch/large-out"
"$BUILD/tests/bench_peak_rss" split "$BUILD/modelprep" split "$dir/large" "$dir/scratch/large-out" --quiet
rm -rf "$dir/scratch/large-out"
if [ ! -f "$dir/bf16/model.safetensors.index.json" ]; then
    rm -rf "$dir/bf16"
    echo "bench: generating a bf16 checkpoint with normal-like weights (4 layers, hidden 2048)..."
    "$BUILD/tests/mkmodel" "$dir/bf16" --dense-bf16 --layers 4 --hidden 2048 --intermediate 5632 \
        --vocab 32000 --kv-heads 8 --max-shard-size 200000000 >/dev/null
fi
# The zstd line of each split says the ratio and MB/s (uncompressed bytes per second of writing).
echo "bench: split --compress zstd of $(du -sh "$dir/bf16" | cut -f1) of bf16 weights (mean 0, deviation 0.02), $(nproc) zstd workers"
rm -rf "$dir/scratch/zst"
"$BUILD/tests/bench_peak_rss" plain "$BUILD/modelprep" split "$dir/bf16" "$dir/scratch/zst" | grep -v '^split '
rm -rf "$dir/scratch/zst"
for level in 1 3 9; do
    "$BUILD/tests/bench_peak_rss" "zstd:$level" "$BUILD/modelprep" split "$dir/bf16" "$dir/scratch/zst" \
        --compress "zstd:$level" | grep -v '^split '
    rm -rf "$dir/scratch/zst"
done
echo "bench: split --compress zstd:3 of the 691 MB GPTQ checkpoint (random packed codes: near-incompressible)"
"$BUILD/tests/bench_peak_rss" "zstd:3" "$BUILD/modelprep" split "$dir/model" "$dir/scratch/zst" \
    --compress zstd:3 | grep -v '^split '
rm -rf "$dir/scratch/zst"
echo "bench: peak memory of split --compress zstd:3 on $(du -sh "$dir/large" | cut -f1) of GPTQ"
"$BUILD/tests/bench_peak_rss" "zstd:3" "$BUILD/modelprep" split "$dir/large" "$dir/scratch/zst" \
    --compress zstd:3 | grep -v '^split '
rm -rf "$dir/scratch/zst"
# Level 19 has zstd's largest contexts and jobs (its speed is about 1-2 MB/s here, so a small
# model; its 23 MB layer file holds more than one 16 MiB job, which is what sets the peak).
if [ ! -f "$dir/bf16-small/model.safetensors" ]; then
    rm -rf "$dir/bf16-small"
    "$BUILD/tests/mkmodel" "$dir/bf16-small" --dense-bf16 --layers 1 --hidden 1024 --intermediate 2816 \
        --vocab 8000 >/dev/null
fi
echo "bench: peak memory of split --compress zstd:19 (largest zstd contexts) on $(du -sh "$dir/bf16-small" | cut -f1) of bf16"
"$BUILD/tests/bench_peak_rss" "zstd:19" "$BUILD/modelprep" split "$dir/bf16-small" "$dir/scratch/zst" \
    --compress zstd:19 | grep -v '^split '
rm -rf "$dir/scratch/zst"
echo "bench: GGUF dequantization to f32, per type (GB/s of f32 written; 32M elements, best of 5), against gguf-py's numpy"
np_file=build/bench-gguf-numpy.txt
rm -f "$np_file"
if [ -x build/venv/bin/python ]; then build/venv/bin/python tests/bench/gguf_numpy.py > "$np_file" || rm -f "$np_file"; fi
"$BUILD/tests/bench_gguf" "$np_file"
echo "bench: verify (integrity against cat; numeric check time per GB on cpu and PoCL)"
sh tests/bench/bench_verify.sh "$BUILD" "$dir"
