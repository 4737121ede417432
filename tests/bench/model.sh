# tests/bench/model.sh - sourced by run.sh and partitioned.sh: bench_model BUILD DIR generates
# the ~0.7 GB GPTQ benchmark checkpoint in DIR/model once.
bench_model() {
    if [ ! -f "$2/model/model.safetensors.index.json" ]; then
        rm -rf "$2/model"
        echo "bench: generating the benchmark model (16 layers, hidden 2048, vocab 32000)..."
        "$1/tests/mkmodel" "$2/model" --layers 16 --hidden 2048 --intermediate 5632 \
            --vocab 32000 --kv-heads 8 --group-size 128 --max-shard-size 200000000 >/dev/null
    fi
}
