#!/bin/sh
# make bench (and make bench-float alone): the float sources and the fast dense path.
#   - an FP8 block-scaled checkpoint of about 1 GB (mkmodel --fp8-block): convert --to bf16
#     against cp -r + sync of the output's bytes, with peak memory; then a CPU torch port of
#     DeepSeek's weight_dequant over the same shards (PyPI torch, when build/venv-torch has it);
#   - the fast dense path in memory (best of 3), GPTQ 4-bit -> f16 (also act-order) and FP8 -> bf16
#     (128 x 128 blocks, and compressed-tensors groups of 32), against the reference;
#   - convert --to f16 of the 691 MB GPTQ checkpoint against cp of its output, three times each;
#   - a bitsandbytes NF4 checkpoint (nested absmax, 4 x [11008, 4096]) quantized by PyPI
#     bitsandbytes itself (tests/bench/bnb_model.py, when build/venv-torch has it): the fast dense
#     path in memory, and convert --to bf16 against cp -r + sync of the output.
set -e
BUILD=${1:-build}
dir=build/bench
mkdir -p "$dir/scratch"
if [ ! -f "$dir/fp8/model.safetensors.index.json" ]; then
    rm -rf "$dir/fp8"
    echo "bench: generating a 1 GB FP8 block-scaled checkpoint (5 layers, hidden 4096, intermediate 11008)..."
    "$BUILD/tests/mkmodel" "$dir/fp8" --fp8-block --layers 5 --hidden 4096 --intermediate 11008 \
        --vocab 32000 --kv-heads 8 --max-shard-size 500000000 >/dev/null
fi
out="$dir/scratch/fp8-bf16" cpd="$dir/scratch/fp8-cp"
rm -rf "$out" "$cpd"
echo "bench: FP8 ($(du -sh "$dir/fp8" | cut -f1)) convert --to bf16 against cp -r + sync of the output"
"$BUILD/tests/bench_peak_rss" fp8-to-bf16 "$BUILD/modelprep" convert "$dir/fp8" "$out" --to bf16 --quiet
"$BUILD/tests/bench_peak_rss" cp-output sh -c "cp -r '$out' '$cpd' && sync '$cpd'/*"
echo "  output: $(du -sh "$out" | cut -f1)"
rm -rf "$cpd"
if [ -x build/venv-torch/bin/python ] && [ ! -f build/venv-torch/.skip ]; then
    rm -rf "$dir/scratch/fp8-torch"
    # modelprep fsyncs what it writes, so the port's output is synced inside the timed command too.
    echo "bench: the same shards through a CPU torch port of DeepSeek's weight_dequant (PyPI torch), + sync"
    "$BUILD/tests/bench_peak_rss" torch-weight_dequant sh -c "build/venv-torch/bin/python \
        tests/bench/torch_weight_dequant.py '$dir/fp8' '$dir/scratch/fp8-torch' && sync '$dir/scratch/fp8-torch'/*"
    rm -rf "$dir/scratch/fp8-torch"
else
    echo "bench: SKIP torch weight_dequant: no build/venv-torch (make torchref)"
fi
rm -rf "$out"
echo "bench: the fast dense path in memory, FP8 -> bf16"
"$BUILD/tests/bench_dense" "$dir/fp8" bf16 3
[ -f "$dir/fp8group/config.json" ] || python3 tests/bench/fp8_group_model.py "$dir/fp8group" 4
echo "bench: the fast dense path in memory, compressed-tensors FP8 groups of 32 (BF16 scales) -> bf16"
"$BUILD/tests/bench_dense" "$dir/fp8group" bf16 3
if [ ! -f "$dir/model/model.safetensors.index.json" ]; then
    rm -rf "$dir/model"
    echo "bench: generating the benchmark model (16 layers, hidden 2048, vocab 32000)..."
    "$BUILD/tests/mkmodel" "$dir/model" --layers 16 --hidden 2048 --intermediate 5632 \
        --vocab 32000 --kv-heads 8 --group-size 128 --max-shard-size 200000000 >/dev/null
fi
if [ -f "$dir/model/model.safetensors.index.json" ]; then
    echo "bench: the fast dense path in memory, GPTQ 4-bit -> f16 (the 691 MB checkpoint)"
    "$BUILD/tests/bench_dense" "$dir/model" f16 3
    echo "bench: convert --to f16 of the 691 MB GPTQ checkpoint against cp -r + sync of its output, three times"
    for run in 1 2 3; do
        rm -rf "$dir/scratch/gptq-f16" "$dir/scratch/gptq-cp"
        "$BUILD/tests/bench_peak_rss" gptq-to-f16 "$BUILD/modelprep" convert "$dir/model" "$dir/scratch/gptq-f16" --to f16 --quiet
        "$BUILD/tests/bench_peak_rss" cp-output sh -c "cp -r '$dir/scratch/gptq-f16' '$dir/scratch/gptq-cp' && sync '$dir/scratch/gptq-cp'/*"
    done
    rm -rf "$dir/scratch/gptq-f16" "$dir/scratch/gptq-cp"
fi
if [ ! -f "$dir/actorder/model.safetensors.index.json" ]; then
    rm -rf "$dir/actorder"
    "$BUILD/tests/mkmodel" "$dir/actorder" --layers 4 --hidden 2048 --intermediate 5632 --vocab 32000 \
        --kv-heads 8 --group-size 128 --desc-act --max-shard-size 200000000 >/dev/null
fi
echo "bench: the fast dense path in memory, GPTQ 4-bit act-order (shuffled g_idx) -> f16"
"$BUILD/tests/bench_dense" "$dir/actorder" f16 3
if [ -x build/venv-torch/bin/python ] && build/venv-torch/bin/python -c "import bitsandbytes" 2>/dev/null; then
    [ -f "$dir/bnb/config.json" ] || build/venv-torch/bin/python tests/bench/bnb_model.py "$dir/bnb" 2>/dev/null
    echo "bench: the fast dense path in memory, bitsandbytes NF4 (nested) -> bf16"
    "$BUILD/tests/bench_dense" "$dir/bnb" bf16 3
    rm -rf "$dir/scratch/bnb-bf16" "$dir/scratch/bnb-cp"
    echo "bench: bitsandbytes NF4 ($(du -sh "$dir/bnb" | cut -f1)) convert --to bf16 against cp -r + sync of the output"
    "$BUILD/tests/bench_peak_rss" bnb-to-bf16 "$BUILD/modelprep" convert "$dir/bnb" "$dir/scratch/bnb-bf16" --to bf16 --quiet
    "$BUILD/tests/bench_peak_rss" cp-output sh -c "cp -r '$dir/scratch/bnb-bf16' '$dir/scratch/bnb-cp' && sync '$dir/scratch/bnb-cp'/*"
    rm -rf "$dir/scratch/bnb-bf16" "$dir/scratch/bnb-cp"
else
    echo "bench: SKIP bitsandbytes: no bitsandbytes in build/venv-torch (make torchref)"
fi
